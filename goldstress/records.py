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


class ChampionRecord(_Record):
    """The registered champion as a run records it: registry coordinates, the fitted parameters
    (daily log-return units), the innovation law, the EVT tail and the hold-out backtest."""

    registered_model: str
    version: str
    candidate: str
    params: dict[str, float]
    innovations: str
    tail: dict[str, Any] | None
    holdout_backtest: dict[str, Any] | None = None
    train_meta: dict[str, Any] = Field(default_factory=dict)


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

    def as_json(self) -> dict[str, Any]:
        """The summary as plain JSON types (the stored form)."""
        return self.model_dump(mode="json")
