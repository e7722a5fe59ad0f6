"""Prediction tasks: scenarios -> gold price paths -> token models -> per-path results (Parquet).

Scenarios: historical replays cut from the curated gold returns, instantaneous shocks, and Monte
Carlo paths from the registered champion (seeded, chunked: memory is bounded by the chunk size,
not the number of paths). Every scenario starts from the last curated gold price.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, nullcontext
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.catalog import Catalog
from goldstress.execution import local_dask_cluster, process_threads, results_in_order, tune_allocator
from goldstress.io import storage
from goldstress.io.champion import RegisteredChampion, drift_record, stress_simulator
from goldstress.records import Manifest, RunSettingsRecord, ScenarioResult, json_safe
from goldstress.settings import Settings
from models.metrics import gold_columns, summary_columns
from models.scenarios import (
    BLOCK_PATHS,
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
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import load_token_spec

FAN_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


WORKER_MODULES = ("tasks.simulate", "tasks.recommend")
"""The modules a Dask worker imports to run the simulate flow's tasks
(:func:`goldstress.execution.start_workers`)."""


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


def _token_columns(
    models: list[tuple[str, Any]],
    prices: np.ndarray,
    calendar: pd.DatetimeIndex,
    trading: np.ndarray,
    offset: int,
    settings: Settings,
    workspace: list[np.ndarray],
) -> list[dict[str, np.ndarray]]:
    """Per-path summary columns of one chunk of gold paths (paths ``offset ..``) through every
    token model, one dict per token in the order of ``models`` (:func:`models.metrics.summary_columns`,
    ``path`` counted from ``offset``; every array owned, ``(n_paths,)``).

    ``workspace``: the caller's holder of one reusable float64 buffer (empty at first; replaced
    here by a larger one when this chunk's runs need more) in which every reserve-backed token runs in turn
    (:meth:`models.token.reserve_backed.ReserveBackedToken.run`), so a stage allocates and
    first-touches its daily records once, not once per chunk and token. The runs keep only the
    records the summaries read (``records="summary"``). Each outcome's columns are copied out
    before the next run overwrites it."""
    out = []
    need = max(
        (m.workspace_size(*prices.shape, records="summary") for _, m in models if isinstance(m, ReserveBackedToken)),
        default=0,
    )
    if need and (not workspace or workspace[0].size < need):
        workspace[:] = [np.empty(need)]
    gold = gold_columns(prices, settings.risk.horizons_days, trading_columns=trading)  # the same for every token
    for k, (_, model) in enumerate(models):
        # secondary-market noise: one seed per token, each path's draws fixed by its index
        seed = np.random.SeedSequence([settings.monte_carlo.seed, 1, k])
        if isinstance(model, ReserveBackedToken):
            outcome = model.run(
                prices, calendar=calendar, rng=seed, first_path=offset, workspace=workspace[0], records="summary"
            )
        else:
            outcome = model.run(prices, calendar=calendar, rng=seed, first_path=offset)
        cols = summary_columns(outcome, prices, settings.risk.horizons_days, trading_columns=trading, gold_summary=gold)
        del outcome
        cols = {name: np.array(v) for name, v in cols.items()}  # some are views of the workspace
        cols["path"] += offset
        out.append(cols)
    return out


def _token_table(sc: ScenarioDef, symbol: str, cols: dict[str, np.ndarray]) -> pa.Table:
    """One token's rows of a scenario's table from its summary columns of one chunk
    (:func:`_token_columns`): ``scenario``, ``kind`` and ``token`` (large strings, as pandas
    writes its ``str`` columns), then the columns, as one Arrow record batch. Arrow wraps the
    float and integer columns without copying them."""
    n = len(cols["path"])
    text = {
        name: pa.array(np.full(n, value, dtype=object), type=pa.large_string())
        for name, value in (("scenario", sc.name), ("kind", sc.kind), ("token", symbol))
    }
    return pa.table({**text, **cols})


def _take_handed_off(path: str) -> Iterator[pa.Table]:
    """The tables of a hand-off file of :func:`simulate_paths`, one per token in the order the
    tokens first appear, each the token's record batches in file order (its paths in order),
    memory-mapped (not copied); the file is deleted once they are read."""
    try:
        with pa.memory_map(path) as source:
            reader = pa.ipc.open_file(source)
            by_token: dict[str, list[pa.RecordBatch]] = {}
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                by_token.setdefault(batch.column("token")[0].as_py(), []).append(batch)
            for batches in by_token.values():
                yield pa.Table.from_batches(batches)
    finally:
        Path(path).unlink(missing_ok=True)


def monte_carlo_parts(settings: Settings) -> list[tuple[int, int]]:
    """The Monte Carlo's tasks as ``(first_path, n_paths)``: runs of ``settings.monte_carlo.task_paths``
    paths rounded down to whole random-number blocks (:data:`models.scenarios.BLOCK_PATHS`), the
    last one shorter; the same whatever the number of workers."""
    size = max(BLOCK_PATHS, settings.monte_carlo.task_paths // BLOCK_PATHS * BLOCK_PATHS)
    n = settings.monte_carlo.paths
    return [(a, min(size, n - a)) for a in range(0, n, size)]


@task(name="simulate-paths", cache_policy=NO_CACHE)
def simulate_paths(
    sc: ScenarioDef,
    p0_usd_per_oz: float,
    champion: Any,
    specs: list[Any],
    settings: Settings,
    first_day: str,
    first_path: int,
    n_paths: int,
    hand_off: str | None = None,
) -> dict[str, Any]:
    """Monte Carlo paths ``first_path .. first_path + n_paths - 1`` of the run through every token
    model (one task: runs on a Dask worker when the flow has a Dask task runner).

    Gold log returns from the champion under the drift assumption (:func:`models.scenarios.monte_carlo_chunks`
    with ``first_path``: a path's draws depend on the seed and its index only), put on the
    calendar-day clock from ``first_day``, in chunks of ``settings.monte_carlo.chunk_paths``.
    Returns ``{"tables": [pyarrow.Table, ...], "fan": ndarray}``: the per-path summaries, one
    table per token with its paths in order (``scenario``, ``kind``, ``token`` then the columns of
    :func:`models.metrics.summarise_paths`; a row group of the scenario's table each; a record
    batch per chunk, joined without copying), and the gold
    prices on trading days of those of its paths among the run's first
    ``settings.monte_carlo.fan_chart_paths`` (``(m, horizon_days + 1)``, USD per oz). With
    ``hand_off`` (a folder the caller's process reads, on the same machine), each chunk's rows go
    to an Arrow IPC file there as soon as they are computed (``<hand_off>/<first_path>.arrow``, a
    record batch per chunk and token, read back per token by :func:`_take_handed_off`) and
    ``"tables"`` is its path: the task then holds one chunk's rows at a time, not all of them,
    and 70 MB of a 25,000-path task never crosses Dask's TCP connection (whose receipt cost the
    run's process about 0.8 s of CPU a task).
    """
    tune_allocator()
    mc = settings.monte_carlo
    models = [(spec.symbol, build_token_model(spec)) for spec in specs]
    days = business_days(first_day, mc.horizon_days + 1)
    per_token: list[list[pa.Table]] = [[] for _ in models]
    fan: list[np.ndarray] = []
    workspace: list[np.ndarray] = []
    offset = first_path
    path = None if hand_off is None else str(Path(hand_off) / f"{first_path}.arrow")
    chunks = monte_carlo_chunks(
        stress_simulator(champion, mc.drift), n_paths, mc.horizon_days, mc.seed, mc.chunk_paths, first_path=first_path
    )
    with ExitStack() as files:
        writer = None
        for chunk in chunks:
            prices, calendar, trading = on_calendar_days(to_price_paths(p0_usd_per_oz, chunk), days)
            if offset < mc.fan_chart_paths:
                fan.append(prices[: mc.fan_chart_paths - offset, trading].copy())
            for k, cols in enumerate(_token_columns(models, prices, calendar, trading, offset, settings, workspace)):
                table = _token_table(sc, models[k][0], cols)
                if path is None:
                    per_token[k].append(table)
                    continue
                if writer is None:
                    sink = files.enter_context(pa.OSFile(path, "wb"))
                    writer = files.enter_context(pa.ipc.new_file(sink, table.schema))
                writer.write_table(table)
            offset += prices.shape[0]
    fan_prices = np.concatenate(fan, axis=0) if fan else np.empty((0, mc.horizon_days + 1))
    if path is not None:
        return {"tables": path, "fan": fan_prices}
    return {"tables": [pa.concat_tables(parts) for parts in per_token], "fan": fan_prices}


def run_monte_carlo(
    sc: ScenarioDef,
    p0_usd_per_oz: float,
    champion: Any,
    specs: list[Any],
    settings: Settings,
    run_id: str,
    first_day: str,
) -> dict[str, Any]:
    """The Monte Carlo scenario as :func:`simulate_paths` tasks (:func:`monte_carlo_parts`), their
    tables streamed in path order into the scenario's table (:meth:`goldstress.catalog.Catalog.result`,
    a row group per task and token). On a Dask task runner or threads of this process the tasks
    are queued a few ahead of the one being written (two per worker thread;
    :func:`goldstress.execution.results_in_order`); with one thread each runs in this thread in turn.
    Workers of a local cluster (:func:`goldstress.execution.local_dask_cluster`) and threads of
    this process (:func:`goldstress.execution.process_threads`) hand their tables over through
    files in a temporary folder of this machine, deleted as they are read and with the folder at
    the end; remote workers send them back over Dask.
    Memory is bounded by the tasks in flight, not the path count, and the table is the same
    whatever the number of workers. Must be called inside a flow run. Returns what
    :func:`run_scenarios` returns for one scenario."""
    tune_allocator()  # this process encodes every task's tables
    parts = monte_carlo_parts(settings)
    url = Catalog.of(settings).result(run_id, sc.name)
    args = (sc, p0_usd_per_oz, champion, specs, settings, first_day)
    fan: list[np.ndarray] = []
    rows = 0
    with (
        tempfile.TemporaryDirectory(prefix="goldstress-handoff-")
        if local_dask_cluster() or process_threads()
        else nullcontext() as folder,
        storage.parquet_writer(url, settings) as write,
    ):
        for out in results_in_order(simulate_paths, [(*args, *part, folder) for part in parts]):
            fan.append(out["fan"])
            tables = out["tables"]
            for table in _take_handed_off(tables) if isinstance(tables, str) else tables:
                write(table)
                rows += table.num_rows
            del out, tables
    quantiles = np.quantile(np.concatenate(fan, axis=0), FAN_QUANTILES, axis=0)
    return {
        "scenario": asdict(sc),
        "url": url,
        "rows": int(rows),
        "n_paths": int(settings.monte_carlo.paths),
        "fan_quantiles": {f"q{q:g}": quantiles[i].tolist() for i, q in enumerate(FAN_QUANTILES)},
    }


@task(name="run-scenarios", cache_policy=NO_CACHE)
def run_scenarios(
    scenarios: list[ScenarioDef],
    returns: pd.Series,
    p0_usd_per_oz: float,
    champion: Any,
    specs: list[Any],
    settings: Settings,
    run_id: str,
    first_day: str,
) -> list[dict[str, Any]]:
    """Run each of ``scenarios`` in turn through every token model on the calendar-day clock
    (gold shut at weekends, the tokens trading every day; ``first_day`` is day 0 of the shocks
    and the Monte Carlo, a replay keeps its dates); write the run's per-path results of each
    (:meth:`goldstress.catalog.Catalog.result`). Horizons are gold trading days. One task: the
    replays and shocks are one path each, and one costs less CPU than Prefect's bookkeeping of a
    task of its own (the twelve default ones: 0.95 s of worker CPU as one task, 3.4 s as twelve).

    Each Parquet table has one row per (token, path) with the columns of :func:`models.metrics.summarise_paths`
    plus ``scenario``, ``kind`` and ``token``; it is streamed chunk by chunk (a row group per
    chunk and token), so memory is bounded by ``settings.monte_carlo.chunk_paths``, not the path
    count. Returns, per scenario in order, the table's URL, row count and, for a Monte Carlo, the
    fan chart's gold price quantiles per day over its first ``settings.monte_carlo.fan_chart_paths``
    paths (None for a replay or shock: a single path).
    """
    tune_allocator()
    models = [(spec.symbol, build_token_model(spec)) for spec in specs]
    workspace: list[np.ndarray] = []
    results = []
    for sc in scenarios:
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
                chunk = _token_columns(models, prices, calendar, trading, offset, settings, workspace)
                for (symbol, _), cols in zip(models, chunk, strict=True):
                    table = _token_table(sc, symbol, cols)
                    write(table)
                    rows += table.num_rows
                offset += prices.shape[0]
        quantiles = np.quantile(np.concatenate(fan_keep, axis=0), FAN_QUANTILES, axis=0)
        results.append(
            {
                "scenario": asdict(sc),
                "url": url,
                "rows": int(rows),
                "n_paths": int(offset),
                "fan_quantiles": {f"q{q:g}": quantiles[i].tolist() for i, q in enumerate(FAN_QUANTILES)}
                if sc.kind == "monte_carlo"
                else None,
            }
        )
    return results


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
                "keep_path_results": settings.monte_carlo.keep_path_results,
            }
        ),
        token_specs=[spec.model_dump(mode="json") for spec in specs],
        scenarios=[ScenarioResult(**r) for r in results],
        liquidity_stress=json_safe(liquidity or {}),
    )
    storage.write_json(Catalog.of(settings).run_file(run_id, "manifest.json"), manifest.as_json(), settings)
    return manifest
