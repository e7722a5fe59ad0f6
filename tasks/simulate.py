"""Prediction tasks: scenarios -> gold price paths -> token models -> per-path results (Parquet).

Scenarios: historical replays cut from the curated gold returns, instantaneous shocks, and Monte
Carlo paths from the registered champion (seeded, chunked: memory is bounded by the chunk size,
not the number of paths). Every scenario starts from the last curated gold price.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.catalog import Catalog
from goldstress.io import storage
from goldstress.io.champion import RegisteredChampion, drift_record, stress_simulator
from goldstress.records import Manifest, RunSettingsRecord, ScenarioResult, json_safe
from goldstress.settings import Settings
from models.metrics import summarise_paths
from models.scenarios import (
    ScenarioDef,
    business_days,
    episode_window,
    historical_replay,
    instant_shock,
    monte_carlo_chunks,
    on_calendar_days,
    to_price_paths,
)
from models.token.protocol import build_token_model
from models.token.spec import load_token_spec

FAN_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@task(name="scenario-set", cache_policy=NO_CACHE)
def scenario_defs(settings: Settings, returns: pd.Series) -> list[ScenarioDef]:
    """The scenario set configured in settings, in report order; each historical episode is its
    peak-to-trough window found in the gold log ``returns`` (:func:`models.scenarios.episode_window`)."""
    defs = [
        ScenarioDef(
            name="mc_champion",
            kind="monte_carlo",
            description=f"Monte Carlo from the champion model: {settings.monte_carlo.paths} paths x "
            f"{settings.monte_carlo.horizon_days} days, seed {settings.monte_carlo.seed}, "
            f"drift {_drift_label(settings.monte_carlo.drift)}",
        )
    ]
    for name, (start, end) in settings.scenarios.replay_windows.items():
        ep = episode_window(returns, start, end)
        defs.append(
            ScenarioDef(
                name=f"hist_{name}",
                kind="historical",
                description=f"Replay of gold from its peak close on {ep['peak_date']} to its trough close on "
                f"{ep['trough_date']} ({ep['trading_days']} trading days, {ep['peak_to_trough_frac']:+.1%}), "
                f"the largest fall inside {start}..{end}",
                start=ep["replay_start"],
                end=ep["trough_date"],
                episode=ep,
            )
        )
    for size in settings.scenarios.shock_sizes:
        defs.append(
            ScenarioDef(
                name=f"shock_{round(size * 100):+d}pct",
                kind="shock",
                description=f"Instantaneous gold move of {size:+.0%} on day 1, flat for {settings.scenarios.shock_horizon_days} days",
                shock=size,
            )
        )
    return defs


def _drift_label(drift: float | str) -> str:
    return drift if isinstance(drift, str) else f"{drift:+.2%} a year (log return)"


def _price_chunks(
    sc: ScenarioDef, returns: pd.Series, p0: float, champion: Any, first_day: str, settings: Settings
) -> Iterator[tuple[np.ndarray, pd.DatetimeIndex, np.ndarray]]:
    """Gold price paths of a scenario on the calendar-day clock, chunk by chunk: ``(prices,
    calendar, trading_columns)`` (:func:`models.scenarios.on_calendar_days`). A replay keeps its
    episode's real dates (day 0 the peak close); shocks and the Monte Carlo start on
    ``first_day`` (the last data date) and run over business days."""
    if sc.kind == "historical":
        prices = to_price_paths(p0, historical_replay(returns, sc.start, sc.end))
        idx = returns.index.tz_localize(None) if returns.index.tz is not None else returns.index
        days = idx[(idx.normalize() >= pd.Timestamp(sc.start)) & (idx.normalize() <= pd.Timestamp(sc.end))].normalize()
        day0 = pd.Timestamp(sc.episode["peak_date"]) if sc.episode else days[0] - pd.Timedelta(days=1)
        yield on_calendar_days(prices, [day0, *days])
    elif sc.kind == "shock":
        prices = to_price_paths(p0, instant_shock(sc.shock, settings.scenarios.shock_horizon_days))
        yield on_calendar_days(prices, business_days(first_day, prices.shape[1]))
    elif sc.kind == "monte_carlo":
        days = business_days(first_day, settings.monte_carlo.horizon_days + 1)
        for chunk in monte_carlo_chunks(
            stress_simulator(champion, settings.monte_carlo.drift),
            settings.monte_carlo.paths,
            settings.monte_carlo.horizon_days,
            settings.monte_carlo.seed,
            settings.monte_carlo.chunk_paths,
        ):
            yield on_calendar_days(to_price_paths(p0, chunk), days)
    else:
        raise ValueError(f"scenario {sc.name}: unknown kind {sc.kind!r}")


@task(name="run-scenario", cache_policy=NO_CACHE)
def run_scenario(
    sc: ScenarioDef,
    returns: pd.Series,
    p0_usd_per_oz: float,
    champion: Any,
    specs: list[Any],
    settings: Settings,
    run_id: str,
    first_day: str,
) -> dict[str, Any]:
    """Run one scenario through every token model on the calendar-day clock (gold shut at
    weekends, the tokens trading every day; ``first_day`` is day 0 of the shocks and the Monte
    Carlo, a replay keeps its dates); write the run's per-path results of the scenario
    (:meth:`goldstress.catalog.Catalog.result`). Horizons are gold trading days.

    The Parquet table has one row per (token, path) with the columns of :func:`summarise_paths`
    plus ``scenario``, ``kind`` and ``token``; it is streamed chunk by chunk (a row group per
    chunk and token), so memory is bounded by ``settings.monte_carlo.chunk_paths``, not the path count. Returns the table's URL, row count and, for the fan
    chart, gold price quantiles per day over the first ``settings.monte_carlo.fan_chart_paths`` paths.
    """
    models = [(spec.symbol, build_token_model(spec)) for spec in specs]
    fan_keep: list[np.ndarray] = []
    kept = 0
    offset = 0
    rows = 0
    url = Catalog.of(settings).result(run_id, sc.name)
    with storage.parquet_writer(url, settings) as write:
        for prices, calendar, trading in _price_chunks(sc, returns, p0_usd_per_oz, champion, first_day, settings):
            if kept < settings.monte_carlo.fan_chart_paths:
                take = prices[: settings.monte_carlo.fan_chart_paths - kept, trading].copy()
                fan_keep.append(take)
                kept += take.shape[0]
            for k, (symbol, model) in enumerate(models):
                # secondary-market noise: one seed per token, each path's draws fixed by its index
                seed = np.random.SeedSequence([settings.monte_carlo.seed, 1, k])
                outcome = model.run(prices, calendar=calendar, rng=seed, first_path=offset)
                df = summarise_paths(outcome, prices, settings.risk.horizons_days, trading_columns=trading)
                df["path"] += offset
                df.insert(0, "token", symbol)
                df.insert(0, "kind", sc.kind)
                df.insert(0, "scenario", sc.name)
                write(df)
                rows += len(df)
            offset += prices.shape[0]
    fan = np.concatenate(fan_keep, axis=0)
    quantiles = np.quantile(fan, FAN_QUANTILES, axis=0)
    return {
        "scenario": asdict(sc),
        "url": url,
        "rows": int(rows),
        "n_paths": int(offset),
        # fan-chart bands only for Monte Carlo (a replay or shock is a single path)
        "fan_quantiles": {f"q{q:g}": quantiles[i].tolist() for i, q in enumerate(FAN_QUANTILES)}
        if sc.kind == "monte_carlo"
        else None,
    }


@task(name="load-token-specs", cache_policy=NO_CACHE)
def load_specs(settings: Settings) -> list[Any]:
    """Load every token spec file named in settings (``models.token.spec.load_token_spec``)."""
    return [load_token_spec(Path(p)) for p in settings.scenarios.token_specs]


@task(name="load-champion", cache_policy=NO_CACHE)
def load_champion_task(settings: Settings) -> RegisteredChampion:
    """Load the registered champion through the MLflow registry (``models:/<name>@champion``).

    Raises MLflow's error when no champion is registered yet (run the ``train`` flow first).
    """
    from goldstress.io import tracking
    from goldstress.io.champion import load_champion

    tracking.configure(settings)
    champion, version = load_champion(settings.tracking.registered_model, settings.tracking.champion_alias)
    return RegisteredChampion(model=champion, registered_model=settings.tracking.registered_model, version=version)


@task(name="write-manifest", cache_policy=NO_CACHE)
def write_manifest(
    run_id: str,
    results: list[dict[str, Any]],
    champion: RegisteredChampion,
    meta: dict[str, Any],
    specs: list[Any],
    settings: Settings,
    liquidity: dict[str, Any] | None = None,
) -> Manifest:
    """Write ``<report_url>/<run_id>/manifest.json`` describing the simulated run; return it.

    ``liquidity`` (``premium_calibration``, ``supply_outflows``, ``recommendations`` from
    :mod:`tasks.recommend`) is stored under ``"liquidity_stress"``, JSON-safe."""
    from datetime import datetime

    manifest = Manifest(
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        run_url=Catalog.of(settings).run(run_id),
        data=meta,
        champion=champion.record(),
        settings=RunSettingsRecord(
            **{
                "mc_paths": settings.monte_carlo.paths,
                "mc_horizon_days": settings.monte_carlo.horizon_days,
                "mc_seed": settings.monte_carlo.seed,
                "mc_chunk_paths": settings.monte_carlo.chunk_paths,
                "fan_chart_paths": settings.monte_carlo.fan_chart_paths,
                "var_levels": list(settings.risk.var_levels),
                "horizons_days": list(settings.risk.horizons_days),
                "replay_windows": settings.scenarios.replay_windows,
                "shock_sizes": list(settings.scenarios.shock_sizes),
                "mc_drift": drift_record(champion.model, settings.monte_carlo.drift),
            }
        ),
        token_specs=[spec.model_dump(mode="json") for spec in specs],
        scenarios=[ScenarioResult(**r) for r in results],
        liquidity_stress=json_safe(liquidity or {}),
    )
    storage.write_json(Catalog.of(settings).run_file(run_id, "manifest.json"), manifest.as_json(), settings)
    return manifest
