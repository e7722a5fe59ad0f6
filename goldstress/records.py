"""Records the pipeline writes and reads: the run manifest, the run summary and the champion
record (typed), JSON-safe conversion, and the fingerprints of the data a model was fitted on."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats by strings ``"inf"``, ``"-inf"``, ``"nan"`` so summary.json is
    strict JSON (a backing ratio is +inf when no supply is left outstanding)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return "nan" if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def frame_sha256(frame: pd.DataFrame, value_col: str) -> str:
    """sha256 of the ``date,<value_col>`` CSV of ``frame`` (pandas' default float format): the
    fingerprint of the (date, value) pairs a model was trained on. ``KeyError`` if a column is
    missing."""
    payload = frame[["date", value_col]].to_csv(index=False).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def premia_sha256(premia: pd.Series) -> str:
    """sha256 of the ``date,premium_frac`` CSV (ISO dates, repr floats) of a premium series: the
    fingerprint of exactly the data a process was fitted or scored on."""
    buf = io.StringIO()
    pd.DataFrame({"date": premia.index.strftime("%Y-%m-%d"), "premium_frac": premia.to_numpy()}).to_csv(
        buf, index=False, float_format="%.17g"
    )
    return hashlib.sha256(buf.getvalue().encode("utf-8")).hexdigest()


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SELECTION_RULE = (
    "lowest summed quantile (tick) loss of the 1-day VaR at the VaR levels on the validation window "
    "(Gneiting 2011), among the candidates whose breaches pass Kupiec's test at 5% at every level "
    "(all candidates when none passes); candidates fitted on the fitting window, parameters fixed "
    "over the validation window"
)
"""How the champion is picked, as the summary states it (:func:`models.risk.select_champion`)."""

BACKTEST_METHOD = (
    "1-day VaR of the champion refitted on the fitting and validation windows, parameters fixed over "
    "the hold-out that follows them (no candidate fit or selection sees it); Kupiec (1995) POF, "
    "Christoffersen (1998) independence, Basel Committee (1996) traffic light on the last 250 days "
    "at 99%. The Monte Carlo simulates the full-sample refit."
)
"""How the hold-out backtest is run, as the summary states it (:mod:`models.selection`)."""


class WindowRecord(_Record):
    """A window of consecutive daily log returns: first and last date (ISO) and their count."""

    first_date: str
    last_date: str
    n_returns: int


class TrainingWindowsRecord(_Record):
    """The three consecutive, disjoint windows of the champion's training sample: candidates are
    fitted on ``fit``, scored on ``validation``; the champion is backtested on ``holdout``."""

    fit: WindowRecord
    validation: WindowRecord
    holdout: WindowRecord


class SelectionScoreRecord(_Record):
    """One candidate's scores on the validation window: ``score`` is the sum over VaR levels of
    the mean quantile loss (log-return units, lower is better), ``passes_kupiec`` whether
    Kupiec's test keeps every level at 5 %, ``backtests`` the validation backtest per level."""

    candidate: str
    score: float
    passes_kupiec: bool
    backtests: dict[str, dict[str, Any]]


class FitRecord(_Record):
    """A fit of the champion's model: its window and its parameters (daily log-return units:
    ``mu`` a fraction per day, ``omega`` a squared fraction; ``alpha``, ``gamma``, ``beta``,
    ``nu`` unit-free)."""

    window: WindowRecord
    params: dict[str, float]


class ChampionRecord(_Record):
    """The registered champion as a run records it: registry coordinates, the parameters of the
    full-sample refit the Monte Carlo simulates (daily log-return units), the innovation law,
    the EVT tail, the training windows, the candidates' scores on the validation window, the
    fit before the hold-out and its hold-out backtest. Records of runs trained before the
    validation window existed have ``None`` for the fields they lack."""

    registered_model: str
    version: str
    candidate: str
    params: dict[str, float]
    innovations: str
    tail: dict[str, Any] | None
    holdout_backtest: dict[str, Any] | None = None
    windows: TrainingWindowsRecord | None = None
    selection: list[SelectionScoreRecord] | None = None
    backtested_fit: FitRecord | None = None
    full_sample_fit: FitRecord | None = None
    train_meta: dict[str, Any] = Field(default_factory=dict)

    def var_backtest_summary(self) -> dict[str, Any]:
        """The ``var_backtest`` section of summary.json: the windows, the selection on the
        validation window (rule, champion, every candidate's scores), the hold-out backtest per
        level (breaches, expected breaches, Kupiec 1995 and Christoffersen 1998 p-values, Basel
        Committee 1996 zone), the parameters of the backtested fit and of the full-sample refit
        the Monte Carlo simulates, and the method. Parts the record lacks are ``None``."""
        return {
            "windows": None if self.windows is None else self.windows.model_dump(),
            "selection": {
                "window": "validation",
                "rule": SELECTION_RULE,
                "champion": self.candidate,
                "candidates": None if self.selection is None else [c.model_dump() for c in self.selection],
            },
            "holdout": self.holdout_backtest,
            "parameters": {
                "backtested": None if self.backtested_fit is None else self.backtested_fit.model_dump(),
                "full_sample": None if self.full_sample_fit is None else self.full_sample_fit.model_dump(),
            },
            "method": BACKTEST_METHOD,
        }


class RunSettingsRecord(_Record):
    """The settings a run was simulated with (the keys the summary and report quote)."""

    mc_paths: int
    mc_horizon_days: int
    mc_seed: int
    mc_chunk_paths: int
    fan_chart_paths: int
    var_levels: list[float]
    horizons_days: list[int]
    replay_windows: dict[str, tuple[str, str]]
    shock_sizes: list[float]
    mc_drift: dict[str, Any]
    keep_path_results: bool = True
    """False: the per-path tables were deleted once the report was written (the run lists none)."""


class ScenarioResult(_Record):
    """One scenario of a run: its definition, the URL and row count of its per-path table and,
    for Monte Carlo, gold price quantiles per day (USD/oz) for the fan chart."""

    scenario: dict[str, Any]
    url: str
    rows: int
    n_paths: int
    fan_quantiles: dict[str, list[float]] | None = None


class Manifest(_Record):
    """``manifest.json`` of a simulated run: what the analysis reads. Raises
    ``pydantic.ValidationError`` naming the field when a stored manifest does not match."""

    run_id: str
    created_at: str
    run_url: str
    data: dict[str, Any]
    champion: ChampionRecord
    settings: RunSettingsRecord
    token_specs: list[dict[str, Any]]
    scenarios: list[ScenarioResult]
    liquidity_stress: dict[str, Any] = Field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The manifest as plain JSON types (the stored form)."""
        return self.model_dump(mode="json")


class Summary(_Record):
    """``summary.json`` of an analysed run: every figure of the report, units in the key names
    (see ``conventions``). Non-finite numbers are the strings ``"inf"``, ``"-inf"``, ``"nan"``."""

    run_id: str
    generated_at: str
    conventions: dict[str, str]
    data: dict[str, Any]
    start_gold_usd_per_oz: float
    champion: dict[str, Any]
    var_backtest: dict[str, Any]
    monte_carlo: dict[str, Any]
    tokens: dict[str, dict[str, Any]]
    scenario_table: list[dict[str, Any]]
    observed_token_premia: dict[str, Any]
    liquidity_stress: dict[str, Any]
    weekend: dict[str, Any] = Field(default_factory=dict)
    model_vs_history: dict[str, Any] = Field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The summary as plain JSON types (the stored form)."""
        return self.model_dump(mode="json")
