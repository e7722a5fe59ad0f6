"""Flow ``simulate``: run every scenario through every token model; per-path results as Parquet."""

from __future__ import annotations

from concurrent.futures import wait
from typing import Any

from prefect import flow

from goldstress import progress
from goldstress.execution import results_in_order, start_workers, task_runner
from goldstress.io import tracking
from goldstress.records import Manifest
from goldstress.settings import RunOptions, new_run_id
from tasks.recommend import apply_premium_calibration, submit_recommendations, supply_outflow_anchor
from tasks.simulate import (
    WORKER_MODULES,
    load_champion_task,
    load_specs,
    run_monte_carlo,
    run_scenarios,
    scenario_defs,
    write_manifest,
)
from tasks.train import load_gold_returns

WORKER_IMPORTS = (*WORKER_MODULES, __name__)
"""What a Dask worker of this flow imports before its first task: the tasks' modules and this
one (Prefect sends the flow itself with every task it submits, and unpickling it imports its
module)."""


def simulate_for(options: RunOptions) -> Any:
    """The ``simulate`` flow with the task runner of ``options``' settings
    (:func:`goldstress.execution.task_runner`: in process, a local Dask cluster or a scheduler)."""
    return simulate.with_options(task_runner=task_runner(options.settings().dask, preload=WORKER_IMPORTS))


@flow(name="simulate")
def simulate(run_id: str | None = None, options: RunOptions = RunOptions()) -> Manifest:
    """Generate scenarios from the curated data and the registered champion (reserve-backed specs with their
    calibrated premium process where one passed its checks), search the liquidity
    recommendations, and return the run manifest (also written as
    ``<report_url>/<run_id>/manifest.json``)."""
    settings = options.settings()
    tracking.require_reachable(settings)  # fail fast, before anything is written
    starting = start_workers(WORKER_IMPORTS)  # the Dask cluster starts while this loads the champion
    try:
        run_id = run_id or new_run_id()
        champion = load_champion_task(settings)
        returns, meta = load_gold_returns(settings)
        specs, premium_calibration = apply_premium_calibration(load_specs(settings), settings)
        scenarios = scenario_defs(settings, returns)
        p0, first_day = meta["last_usd_per_oz"], meta["data_last_date"]
    except BaseException:
        wait([starting])  # the task runner stops the cluster at the flow's end: let it finish starting
        raise
    # every scenario's work is tasks on the flow's task runner (Dask workers when configured): the
    # recommendations and the replays and shocks are queued first, so on Dask they run ahead of
    # the Monte Carlo's stream of tasks with no wait between the phases (in process, after it)
    warming = starting.result()  # before the first submission: the runner has one client
    recommendations = submit_recommendations(specs, champion.model, p0, first_day, settings)
    others = [sc for sc in scenarios if sc.kind != "monte_carlo"]
    other_results = results_in_order(
        run_scenarios, [(others, returns, p0, champion.model, specs, settings, run_id, first_day)], ahead=1
    )
    del warming
    by_name = {}
    for sc in scenarios:
        if sc.kind == "monte_carlo":
            by_name[sc.name] = run_monte_carlo(sc, p0, champion.model, specs, settings, run_id, first_day)
            progress.advance(len(by_name), len(scenarios) + 1)
    for sc, res in zip(others, next(other_results), strict=True):
        by_name[sc.name] = res
        progress.advance(len(by_name), len(scenarios) + 1)
    results = [by_name[sc.name] for sc in scenarios]
    liquidity = {
        "premium_calibration": premium_calibration,
        "supply_outflows": supply_outflow_anchor(settings),
        "recommendations": recommendations(),
    }
    progress.advance(len(scenarios) + 1, len(scenarios) + 1)
    return write_manifest(run_id, results, champion, meta, specs, settings, liquidity=liquidity)
