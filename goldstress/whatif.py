"""What-if runs: one token spec under a user-chosen gold shock and a Monte Carlo of gold paths.

Only glue around the pipeline's numerics: the request model, the shock path, chunking with a
deadline, model loading (:func:`load_model`), :func:`compute_whatif` and result storage.
Where what-ifs run and which Monte Carlo model they use: docs/platform/whatif.md.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from goldstress.catalog import Catalog
from goldstress.io import storage
from goldstress.records import json_safe
from goldstress.settings import Settings
from models.metrics import distribution_metrics, market_column_names, path_metrics, summarise_paths
from models.scenarios import (
    TRADING_DAYS_PER_YEAR,
    business_days,
    monte_carlo_chunks,
    on_calendar_days,
    stress_drift_per_day,
    to_price_paths,
)
from models.token.protocol import build_token_model
from models.token.spec import (
    CdpStablecoinSpec,
    ReserveBackedTokenSpec,
    TokenSpec,
    load_token_spec,
    parse_token_spec,
)

log = logging.getLogger("goldstress.service.whatif")

MAX_SPEC_BYTES = 16 * 1024
"""Largest ``token_spec`` accepted, as compact JSON (UTF-8 bytes)."""

MAX_N_PATHS = 1_000_000
MAX_DAYS = 250

_MC_COLUMNS = (
    "holder_value_usd_per_token_d0",
    "reserve_value_usd_d0",
    "reserve_usd_per_token_d0",
    "horizon_days",
    "holder_loss_frac_end",
    "holder_max_drawdown_frac",
    "reserve_per_token_loss_frac_end",
    "reserve_per_token_max_drawdown_frac",
    "redeemed_frac_of_day0_supply_end",
    "redemption_outflow_usd_end",
    "redemption_outflow_frac_of_day0_liabilities_end",
    "issuer_fee_revenue_usd_end",
    "reserve_fee_income_usd_end",
    "backing_ratio_end",
    "backing_ratio_min",
    "supply_tokens_end",
    "backing_below_1",
    "liquidated",
    "bad_debt_usd",
    "unbacked_frac_of_day0_liabilities",
)
_MC_HORIZON_COLUMNS = (
    "holder_loss_frac",
    "reserve_per_token_loss_frac",
    "backing_ratio",
    "redeemed_frac_of_day0_supply",
)
_MODEL_RECHECK_S = 60.0


class WhatIfInputError(ValueError):
    """A what-if input that passed the schema but cannot be used; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class NoModelError(RuntimeError):
    """Neither a registered champion nor a curated gold series to fit the fallback model."""


class WhatIfTimeout(TimeoutError):
    """The computation passed its deadline or was cancelled."""


class WhatIfRequest(BaseModel):
    """Body of ``POST /api/whatif``. Every input is bounded; unknown fields are refused.

    Exactly one of ``token_spec`` (a token spec as in ``specs/*.toml`` or
    ``specs/gusd_cdp.toml``: ``spec_version = 2``, ``kind`` ``gold_backed`` or ``gold_cdp``, at
    most 16 KB) and ``token_preset`` (the symbol of a spec in ``settings.scenarios.token_specs``, e.g.
    ``GRAM``, ``GUSD``).
    ``shock_frac`` is the simple gold move (-0.2 = a 20 % fall) reached log-linearly over
    ``shock_horizon_days`` days. ``redemption_share_per_day`` (gold-backed tokens only) replaces
    the spec's ``redemption.base_rate_per_day``. The Monte Carlo has ``n_paths`` paths of
    ``horizon_days`` days, seeded by ``seed`` (default ``settings.monte_carlo.seed``: what-ifs with the
    same seed share their random numbers, so their differences come from the inputs).
    Raises ``pydantic.ValidationError`` naming the field.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    token_spec: TokenSpec | None = Field(
        default=None, description="Token spec (spec_version 2; gold_backed or gold_cdp), <= 16 KB."
    )
    token_preset: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Symbol of a configured spec, e.g. GRAM or GUSD."
    )
    shock_frac: float = Field(ge=-0.95, le=1.0, description="Simple gold move over the shock horizon (fraction).")
    shock_horizon_days: int = Field(ge=1, le=MAX_DAYS, description="Days over which the shock unfolds.")
    redemption_share_per_day: float | None = Field(
        default=None,
        ge=0.0,
        le=0.5,
        description="Gold-backed token: daily redeemed share of supply (overrides redemption.base_rate_per_day).",
    )
    n_paths: int = Field(ge=1, le=MAX_N_PATHS, description="Monte Carlo paths.")
    horizon_days: int = Field(ge=1, le=MAX_DAYS, description="Monte Carlo horizon, trading days.")
    seed: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="Monte Carlo seed (default: settings.monte_carlo.seed)."
    )

    @field_validator("token_spec", mode="before")
    @classmethod
    def _spec_size(cls, v: Any) -> Any:
        if v is not None:
            try:
                n = len(json.dumps(v, separators=(",", ":"), default=str).encode("utf-8"))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"token_spec: not JSON-serialisable ({exc})") from exc
            if n > MAX_SPEC_BYTES:
                raise ValueError(f"token_spec: {n} bytes, larger than {MAX_SPEC_BYTES} bytes (16 KB)")
            if isinstance(v, dict) and v.get("spec_version") != 2:
                parse_token_spec(v, where="token_spec")  # one clear line for a retired or unknown version
        return v

    @model_validator(mode="after")
    def _one_token(self) -> WhatIfRequest:
        if (self.token_spec is None) == (self.token_preset is None):
            raise ValueError("token_spec / token_preset: give exactly one of them")
        if self.redemption_share_per_day is not None and isinstance(self.token_spec, CdpStablecoinSpec):
            raise ValueError("redemption_share_per_day: applies to gold_backed tokens only, token_spec is gold_cdp")
        return self

    @property
    def cells(self) -> int:
        """``n_paths * horizon_days``: the size that decides in-process or deployment."""
        return self.n_paths * self.horizon_days


@dataclass(frozen=True)
class WhatIfModel:
    """A gold-return simulator and the start price for what-ifs.

    ``simulate(n_paths, horizon_days, rng)`` returns daily log returns ``(n_paths,
    horizon_days)``; ``p0_usd_per_oz`` is the day-0 gold price (USD per troy ounce); ``info``
    describes the model for the result.
    """

    simulate: Callable[[int, int, np.random.Generator], np.ndarray]
    p0_usd_per_oz: float
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- pure glue
def shock_log_returns(shock_frac: float, horizon_days: int) -> np.ndarray:
    """Daily log returns ``(1, horizon_days)`` of a gold move of ``shock_frac`` spread
    log-linearly over ``horizon_days`` days: each day ``log(1 + shock_frac) / horizon_days``
    (the ramp of ``models.risk.reverse_stress``; one day = ``models.scenarios.instant_shock``).

    Raises ValueError for ``shock_frac <= -1``, a non-finite value, or ``horizon_days < 1``.
    """
    if not (isinstance(shock_frac, (int, float)) and math.isfinite(shock_frac) and shock_frac > -1.0):
        raise ValueError(f"shock_frac: expected a finite number > -1, got {shock_frac!r}")
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 1:
        raise ValueError(f"horizon_days: expected an integer >= 1, got {horizon_days!r}")
    return np.full((1, horizon_days), math.log1p(shock_frac) / horizon_days)


def mc_horizons(horizons_days: tuple[int, ...], horizon_days: int) -> tuple[int, ...]:
    """The metric horizons of a what-if: each configured horizon capped at the Monte Carlo
    horizon, without duplicates, ascending (e.g. (1, 10, 30) with 5 days -> (1, 5))."""
    return tuple(sorted({min(int(h), int(horizon_days)) for h in horizons_days}))


def load_presets(settings: Settings) -> dict[str, ReserveBackedTokenSpec | CdpStablecoinSpec]:
    """The configured token specs (``settings.scenarios.token_specs``) keyed by upper-case symbol."""
    out = {}
    for p in settings.scenarios.token_specs:
        spec = load_token_spec(Path(p))
        out[spec.symbol.upper()] = spec
    return out


def resolve_spec(req: WhatIfRequest, presets: dict[str, Any]) -> ReserveBackedTokenSpec | CdpStablecoinSpec:
    """The token spec a what-if runs: ``token_spec`` or the preset, with
    ``redemption_share_per_day`` applied to a gold-backed token as its
    ``redemption.base_rate_per_day`` (and ``redemption.max_share_per_day`` raised to at least
    that value, so the requested share is actually redeemed).

    Raises :class:`WhatIfInputError` naming ``token_preset`` (unknown symbol) or
    ``redemption_share_per_day`` (given for a CDP stablecoin).
    """
    spec = req.token_spec
    if spec is None:
        spec = presets.get(str(req.token_preset).upper())
        if spec is None:
            raise WhatIfInputError("token_preset", f"unknown preset {req.token_preset!r}; available: {sorted(presets)}")
    x = req.redemption_share_per_day
    if x is not None:
        if not isinstance(spec, ReserveBackedTokenSpec):
            raise WhatIfInputError(
                "redemption_share_per_day", f"applies to gold_backed tokens only, {spec.symbol} is {spec.kind}"
            )
        rb = spec.redemption
        return spec.model_copy(
            update={
                "redemption": rb.model_copy(
                    update={"base_rate_per_day": x, "max_share_per_day": max(rb.max_share_per_day, x)}
                )
            }
        )
    return spec


def compute_whatif(
    req: WhatIfRequest,
    spec: ReserveBackedTokenSpec | CdpStablecoinSpec,
    model: WhatIfModel,
    settings: Settings,
    *,
    deadline: float | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run a what-if; returns the JSON-safe result ``{"inputs", "model", "shock", "monte_carlo"}``.

    - ``shock``: the token along one gold path, ``p0 * (1 + shock_frac) ** (min(t, H) / H)``
      for ``t = 0..H`` (``H = shock_horizon_days``), summarised by
      ``models.metrics.path_metrics`` at horizon ``H``: ``holder_loss_frac_<H>d``,
      ``reserve_per_token_loss_frac_<H>d`` (reserve value per token outstanding),
      ``backing_ratio_<H>d``, ``backing_ratio_min``/``_end``, the peak-to-trough falls,
      ``backing_below_1``, ``liquidated``, ``bad_debt_usd`` (cumulative, USD), the redemption
      outflow and fees (reserve-backed token), plus the inputs.
    - ``monte_carlo``: ``n_paths`` gold paths of ``horizon_days`` days from the model
      (``models.scenarios.monte_carlo_chunks``, chunked by ``settings.monte_carlo.chunk_paths``, so
      memory is one chunk of paths plus one summary row per path), summarised by
      ``models.metrics.distribution_metrics`` at the horizons of :func:`mc_horizons`: empirical
      VaR/ES (Acerbi & Tasche 2002) of holder value and of reserve value per token outstanding
      at ``settings.risk.var_levels`` (at each horizon, the end and peak-to-trough),
      backing-ratio quantiles, ``p_backing_below_1``, ``p_liquidation``,
      ``expected_bad_debt_usd``; for a reserve-backed token also the peg and liquidity figures
      of the main run's summary (``models.metrics.market_metrics``: premium/discount to NAV
      quantiles ``premium_end_q<q>_frac``, ``p_abs_premium_gt_1pct`` / ``_5pct``, depeg depth and
      days, ``liquidity_coverage_<h>d_q01``, ``p_liquidity_coverage_below_1_<h>d``) and the
      redemptions met and queued (``redeemed_frac_of_day0_supply_*``, ``redemption_queue_*``).

    ``deadline`` (``time.monotonic()`` value) and ``cancel`` are checked between chunks:
    :class:`WhatIfTimeout` when passed/set. ValueError from the models for a spec that cannot
    be simulated (e.g. non-finite values from extreme inputs).
    """
    seed = int(settings.monte_carlo.seed if req.seed is None else req.seed)
    p0 = float(model.p0_usd_per_oz)
    token = build_token_model(spec)
    h_shock = int(req.shock_horizon_days)
    horizons = mc_horizons(tuple(settings.risk.horizons_days), req.horizon_days)
    keep = (
        list(_MC_COLUMNS) + [f"{c}_{h}d" for h in horizons for c in _MC_HORIZON_COLUMNS] + market_column_names(horizons)
    )

    def check() -> None:
        if (cancel is not None and cancel.is_set()) or (deadline is not None and time.monotonic() > deadline):
            raise WhatIfTimeout("what-if stopped: time limit reached")

    first_day = ((model.info or {}).get("data") or {}).get("data_last_date")

    def on_clock(paths: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        """Calendar-day clock from the data's last date (as the pipeline's scenarios); without
        a known start date, trading days."""
        if first_day is None:
            return paths, None, None
        return on_calendar_days(paths, business_days(first_day, paths.shape[1]))

    with np.errstate(all="ignore"):
        prices, cal, cols = on_clock(to_price_paths(p0, shock_log_returns(float(req.shock_frac), h_shock)))
        row = summarise_paths(token.run(prices, calendar=cal), prices, (h_shock,), trading_columns=cols).iloc[0]
        shock = {
            "shock_frac": float(req.shock_frac),
            "shock_horizon_days": h_shock,
            "gold_usd_per_oz_d0": p0,
            "gold_usd_per_oz_end": float(prices[0, -1]),
            **path_metrics(row, (h_shock,)),
        }
        frames: list[pd.DataFrame] = []
        for chunk in monte_carlo_chunks(
            model.simulate, int(req.n_paths), int(req.horizon_days), seed, int(settings.monte_carlo.chunk_paths)
        ):
            check()
            paths, cal, cols = on_clock(to_price_paths(p0, chunk))
            # token noise seeded per path (models.token.reserve_backed.premium_innovations): the
            # result does not depend on the chunk size
            first = sum(len(f) for f in frames)
            out = token.run(paths, calendar=cal, rng=np.random.SeedSequence([seed, 1]), first_path=first)
            frames.append(summarise_paths(out, paths, horizons, trading_columns=cols)[keep])
        check()
        g = pd.concat(frames, ignore_index=True)
        # a loss fraction is +/-inf only for a zero day-0 value (a token with nothing behind it):
        # undefined, so NaN (distribution_metrics skips NaN). Infinite backing ratios are kept.
        for col in [c for c in g.columns if "_loss_frac_" in c]:
            g[col] = g[col].replace([np.inf, -np.inf], np.nan)
        mc = distribution_metrics(g, tuple(settings.risk.var_levels), horizons)
    inputs = req.model_dump(mode="json")
    inputs.update(
        token_spec=spec.model_dump(mode="json"),
        seed=seed,
        start_gold_usd_per_oz=p0,
        clock="calendar days from " + str(first_day) if first_day else "trading days (no start date known)",
        var_levels=list(settings.risk.var_levels),
    )
    return json_safe(
        {
            "inputs": inputs,
            "model": model.info,
            "shock": shock,
            "monte_carlo": {"horizon_days": int(req.horizon_days), "horizons_days": list(horizons), "seed": seed, **mc},
        }
    )


# ---------------------------------------------------------------------- model loading (I/O)
class _ModelCache:
    """Process-wide cache of the what-if model: the champion is re-checked at most every
    minute (its alias can move), the fallback fit is redone only when the curated data change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.champion: tuple[tuple[str, str, str], str, Any, float] | None = None  # key, version, champion, checked_at
        self.fallback: tuple[tuple[Any, ...], Any] | None = None
        self.registry_problem: str | None = None  # why the last champion lookup found no registry


_CACHE = _ModelCache()


def _registry_present(uri: str) -> bool:
    """False when the MLflow store is a SQLite file that does not exist (no model can be
    registered there; avoids creating an empty database)."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).exists()
    return True


def _load_champion(settings: Settings) -> tuple[Any, str] | None:
    uri = settings.tracking.tracking_uri
    if not _registry_present(uri):
        return None
    key = (uri, settings.tracking.registered_model, settings.tracking.champion_alias)
    now = time.monotonic()
    cached = _CACHE.champion
    if cached is not None and cached[0] == key and now - cached[3] < _MODEL_RECHECK_S:
        return cached[2], cached[1]
    from goldstress.io.tracking import TrackingUnavailable, require_reachable

    _CACHE.registry_problem = None
    try:
        require_reachable(settings)  # an http(s) server that does not answer: seconds, not MLflow's minutes
    except TrackingUnavailable as exc:
        _CACHE.registry_problem = str(exc).split(": start it", 1)[0]
        log.warning("what-if: %s; using the fallback model", _CACHE.registry_problem)
        return None
    try:
        import mlflow
        from mlflow.tracking import MlflowClient

        from goldstress.io.champion import load_champion

        mlflow.set_tracking_uri(uri)
        version = str(
            MlflowClient(tracking_uri=uri)
            .get_model_version_by_alias(settings.tracking.registered_model, settings.tracking.champion_alias)
            .version
        )
        if cached is not None and cached[0] == key and cached[1] == version:
            _CACHE.champion = (key, version, cached[2], now)
            return cached[2], version
        champion, version = load_champion(settings.tracking.registered_model, settings.tracking.champion_alias)
    except Exception as exc:  # no registered model / alias, or the registry is unreachable
        log.info("what-if: no champion (%s): %s", type(exc).__name__, exc)
        return None
    _CACHE.champion = (key, version, champion, now)
    return champion, version


def _curated_gold(settings: Settings) -> tuple[pd.Series, dict[str, Any]] | None:
    from goldstress.io.validation import curated_gold_returns

    try:
        return curated_gold_returns(settings)
    except FileNotFoundError:
        return None


def load_model(settings: Settings) -> WhatIfModel:
    """The what-if model: the registered champion if one exists, else the GARCH(1,1)-t fallback
    fitted on the curated gold series (``settings.training.vol_train_start`` onwards). The start price is
    the last curated gold price, else the champion's training-data last price. An MLflow server
    that does not answer within seconds is reported in the fallback's ``info`` (its
    ``registry_unavailable`` names the server and URL) rather than waited for.

    Raises :class:`NoModelError` when neither exists ("run the pipeline first").
    """
    with _CACHE.lock:
        gold = _curated_gold(settings)
        champ = _load_champion(settings)
        p0 = None if gold is None else float(gold[1]["last_usd_per_oz"])
        data = (
            None
            if gold is None
            else {k: gold[1][k] for k in ("data_first_date", "data_last_date", "n_returns", "data_sha256")}
        )
        if champ is not None:
            from goldstress.io.champion import drift_record, stress_simulator

            champion, version = champ
            if p0 is None:
                p0 = champion.meta.get("last_usd_per_oz")
            if p0 is not None:
                info = {
                    "source": "champion",
                    "registered_model": settings.tracking.registered_model,
                    "version": version,
                    "candidate": champion.name,
                    "innovations": champion.innovations,
                    "data": data,
                    "start_price_source": "curated gold" if gold is not None else "champion training data",
                    "drift": drift_record(champion, settings.monte_carlo.drift),
                }
                return WhatIfModel(stress_simulator(champion, settings.monte_carlo.drift), float(p0), info)
        if gold is None:
            raise NoModelError("no model: run the pipeline first (no registered champion and no curated gold series)")
        from models.volatility import fit_garch

        returns, meta = gold
        key = (meta["data_sha256"], settings.training.vol_train_start)
        if _CACHE.fallback is None or _CACHE.fallback[0] != key:
            r = returns
            if settings.training.vol_train_start:
                r = r[r.index >= pd.Timestamp(settings.training.vol_train_start, tz="UTC")]
            try:
                fit = fit_garch(r.to_numpy(), kind="garch")
            except ValueError as exc:
                raise NoModelError(
                    f"no model: the curated gold series cannot fit the fallback GARCH ({exc}); run the pipeline first"
                ) from exc
            _CACHE.fallback = (key, fit)
        fit = _CACHE.fallback[1]
        drift = stress_drift_per_day(settings.monte_carlo.drift, fit.params["mu"])
        info = {
            "source": "fallback",
            "description": "GARCH(1,1) with Student-t innovations fitted on the curated gold series ("
            + (
                f"the model registry could not be asked: {_CACHE.registry_problem}"
                if _CACHE.registry_problem
                else "no registered champion"
            )
            + ")",
            "registry_unavailable": _CACHE.registry_problem,
            "params": fit.params,
            "train_start": settings.training.vol_train_start,
            "data": data,
            "start_price_source": "curated gold",
            "drift": {
                "assumption": settings.monte_carlo.drift,
                "log_return_per_day": drift,
                "log_return_per_year": drift * TRADING_DAYS_PER_YEAR,
                "historical_log_return_per_year": float(fit.params["mu"]) * TRADING_DAYS_PER_YEAR,
            },
        }
        return WhatIfModel(
            lambda n, h, rng: fit.simulate(n, h, rng, innovations="t", drift_per_day=drift),
            float(meta["last_usd_per_oz"]),
            info,
        )


# ---------------------------------------------------------------------- storage (I/O)
def whatif_url(settings: Settings, whatif_id: str, name: str) -> str:
    """``<report_url>/whatif/<id>/<name>``."""
    return Catalog.of(settings).whatif(whatif_id, name)


def store_result(whatif_id: str, mode: str, result: dict[str, Any], settings: Settings) -> str:
    """Write ``result.json`` = ``{"id", "status": "completed", "mode", "completed_at",
    "result"}``; returns its URL."""
    doc = {
        "id": whatif_id,
        "status": "completed",
        "mode": mode,
        "completed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "result": result,
    }
    return storage.write_json(whatif_url(settings, whatif_id, "result.json"), doc, settings)


def store_request(whatif_id: str, record: dict[str, Any], settings: Settings) -> str:
    """Write ``request.json`` (a submitted deployment what-if); returns its URL."""
    return storage.write_json(whatif_url(settings, whatif_id, "request.json"), record, settings)


def read_doc(whatif_id: str, name: str, settings: Settings) -> dict[str, Any] | None:
    """``result.json`` or ``request.json`` of a what-if, None when absent."""
    try:
        return storage.read_json(whatif_url(settings, whatif_id, name), settings)
    except FileNotFoundError:
        return None
