"""The Monte Carlo on a real Dask cluster (``distributed.LocalCluster`` worker processes, through
prefect-dask's ``DaskTaskRunner`` and a real Prefect API) and on threads of the run's process:
the per-path results are those of the run in one thread, whatever the number of workers or
threads and the size of the tasks."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed.diagnostics.plugin import SchedulerPlugin
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from goldstress.execution import local_dask_cluster, results_in_order, task_runner
from goldstress.io.champion import Champion
from goldstress.settings import DaskSettings, Settings, settings_with
from models.scenarios import ScenarioDef
from models.token.spec import load_token_spec
from tasks.simulate import monte_carlo_parts, run_monte_carlo
from tests.fresh_interpreter import last_json_line
from tests.garch_fits import gold_gjr_fit

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _champion() -> Champion:
    return Champion(name="gjr_t", fit=gold_gjr_fit(), innovations="t", tail=None, meta={})


@flow(name="monte-carlo-test")
def _monte_carlo(settings: Settings, run_id: str) -> dict:
    specs = [load_token_spec(ROOT / "specs" / f"{s}.toml") for s in ("paxg", "xaut", "gusd_cdp")]
    sc = ScenarioDef(name="mc_champion", kind="monte_carlo", description="test")
    out = run_monte_carlo(sc, 4000.0, _champion(), specs, settings, run_id, "2026-08-14")
    return {**out, "local_cluster": local_dask_cluster()}


def _table(result: dict) -> pd.DataFrame:
    t = pd.read_parquet(result["url"])
    return t.sort_values(["token", "path"], kind="stable").reset_index(drop=True)


def test_two_workers_or_threads_give_the_paths_of_one_thread(
    prefect_api, workdir: Path, tmp_path: Path, monkeypatch
) -> None:
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a local cluster's tables are handed over
    mc = {"paths": 1_500, "horizon_days": 30, "chunk_paths": 250, "fan_chart_paths": 600}
    one = settings_with(monte_carlo={**mc, "task_paths": 1_500})
    split = settings_with(monte_carlo={**mc, "task_paths": 250})
    assert len(monte_carlo_parts(one)) == 1 and len(monte_carlo_parts(split)) == 6

    ref = _monte_carlo.with_options(task_runner=task_runner(DaskSettings(workers=0, threads=1)))(one, "in-process")
    threads = _monte_carlo.with_options(task_runner=task_runner(DaskSettings(workers=0, threads=2)))(split, "threads")
    local = _monte_carlo.with_options(task_runner=task_runner(DaskSettings(workers=2)))(split, "local-cluster")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        remote = _monte_carlo.with_options(task_runner=task_runner(DaskSettings(address=cluster.scheduler_address)))(
            split, "scheduler"
        )
        with distributed.Client(cluster.scheduler_address) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)

    expected = _table(ref)
    assert len(expected) == 3 * 1_500 and expected["path"].nunique() == 1_500
    # the local workers handed their tables over through files, the scheduler's sent them back
    assert (ref["local_cluster"], local["local_cluster"], remote["local_cluster"]) == (False, True, False)
    assert not list(tmp_path.glob("goldstress-handoff-*"))  # the hand-over folder went with the run
    for res in (threads, local, remote):
        assert res["rows"] == ref["rows"] and res["n_paths"] == 1_500
        pd.testing.assert_frame_equal(_table(res), expected, check_exact=True)
        assert res["fan_quantiles"] == ref["fan_quantiles"]
    # the six tasks ran on the scheduler's two worker processes, both of them
    assert sorted(executed.values()) and all(n > 0 for n in executed.values()) and len(executed) == 2
    assert sum(executed.values()) >= 6


_WORKER_FACTS = """
import json, os, sys

import distributed

from goldstress.execution import local_dask_cluster, start_forkserver, task_runner
from goldstress.settings import DaskSettings


def facts(dask_worker):
    import dask
    import models.peg

    return {
        "ppid": os.getppid(),
        "compiled": [str(sig) for sig in models.peg._depth_rows.signatures],
        "preloaded": "tasks.simulate" in sys.modules,
        "not_asked": "tasks.report" in sys.modules,
        "profile": dask.config.get("distributed.worker.profile.enabled"),
        "tick_s": dask_worker._tick_interval,
        "trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


if __name__ == "__main__":
    import numpy as np

    import models.peg

    models.peg.depeg_depth(np.zeros((2, 3)))  # one compiled version now in numba's on-disk cache
    cached = [str(sig) for sig in models.peg._depth_rows.signatures]
    early = None
    if sys.argv[1:] == ["early"]:  # the forkserver started before the runner, as the CLI does
        import psutil

        start_forkserver(["tasks.simulate"])
        early = [c.pid for c in psutil.Process().children() if "forkserver" in " ".join(c.cmdline())]
    task_runner(DaskSettings(workers=2), preload=["tasks.simulate"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            workers = list(client.run(facts).values())
            print(json.dumps({"pid": os.getpid(), "early": early, "cached": cached, "workers": workers}))
"""


@pytest.mark.parametrize("start", ["with the cluster", "early"])
def test_local_workers_are_forked_from_one_server_that_imported_the_flow_modules(tmp_path: Path, start: str) -> None:
    """The local cluster of ``task_runner`` (in a fresh interpreter: a process has one forkserver):
    both workers are children of one forkserver, not of the process running the cluster, and
    hold the preloaded module before any task ran, but not a module nobody asked for; Dask's
    profiler is off, the event loop is checked every second, and the environment is the one
    the engine was measured with (thread limits, no ``MALLOC_TRIM_THRESHOLD_``). A compiled function of the preloaded modules that
    numba's cache holds is loaded before the worker's first call of it (the forkserver
    imported ``goldstress.compiled_cache``). Started early (``start_forkserver``), the
    forkserver launched then is the one the cluster forks its workers from."""
    script = tmp_path / "facts.py"
    script.write_text(_WORKER_FACTS)
    got = last_json_line(script, *(["early"] if start == "early" else []), timeout=300)
    workers = got["workers"]
    assert len(workers) == 2
    assert len({w["ppid"] for w in workers}) == 1 and workers[0]["ppid"] != got["pid"]
    if start == "early":
        assert got["early"] == [workers[0]["ppid"]]
    for w in workers:
        assert w["preloaded"] and not w["not_asked"]
        assert w["profile"] is False and w["trim"] is None and w["omp"] == "1"
        assert w["tick_s"] == pytest.approx(1.0)  # its event loop checked every second, not 20 ms
        assert len(got["cached"]) == 1 and got["cached"][0] in w["compiled"]


@task(name="hold", cache_policy=NO_CACHE)
def _hold(name: str, seconds: float) -> dict:
    start = time.time()
    time.sleep(seconds)
    return {"name": name, "pid": os.getpid(), "start": start, "end": time.time()}


class _MostProcessing(SchedulerPlugin):
    """Records the largest number of tasks the scheduler had handed to its workers at once."""

    name = "most-processing"

    def __init__(self) -> None:
        self.most = 0

    def start(self, scheduler) -> None:
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        self.most = max(self.most, sum(len(ws.processing) for ws in self.scheduler.workers.values()))


@flow(name="admission-test")
def _queued_work() -> dict:
    client = FlowRunContext.get().task_runner.client
    client.register_plugin(_MostProcessing())
    long = results_in_order(_hold, [("long", 6.0)], ahead=1)
    short = results_in_order(_hold, [(f"short{i}", 0.1) for i in range(6)], ahead=6)
    ran = [*short, *long]
    try:
        next(results_in_order(_hold, [("no seconds",)]))
        failed = ""
    except TypeError as exc:
        failed = str(exc)
    after = next(results_in_order(_hold, [("after", 0.0)]))
    most = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins["most-processing"].most)
    return {"ran": ran, "failed": failed, "after": after, "most": most, "threads": sum(client.nthreads().values())}


def test_queued_tasks_go_to_the_worker_that_comes_free_in_queue_order(prefect_api) -> None:
    """Two calls of ``results_in_order`` on a local cluster of two one-thread workers, a long
    task queued before six short ones: the short ones start in queue order, all on the worker
    the long one is not on, and are done before it (Dask, given them all at once, places some
    behind the long task by its estimate of 0.5 s for a task it has not timed); the scheduler
    never holds more tasks than the workers have threads; a call whose submission
    fails raises when read and frees its place for the next."""
    got = _queued_work.with_options(task_runner=task_runner(DaskSettings(workers=2)))()
    long, short = got["ran"][-1], got["ran"][:-1]
    assert [r["name"] for r in sorted(short, key=lambda r: r["start"])] == [f"short{i}" for i in range(6)]
    assert all(r["pid"] != long["pid"] for r in short) and max(r["end"] for r in short) < long["end"]
    assert got["threads"] == 2 and got["most"] == 2
    assert "seconds" in got["failed"] and got["after"]["name"] == "after"


_UNPICKLE_FLOW = """
import importlib, json, pickle, sys

from flows.simulate import WORKER_IMPORTS

for name in WORKER_IMPORTS:
    importlib.import_module(name)
before = set(sys.modules)
with open(sys.argv[1], "rb") as fh:
    pickle.load(fh)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_worker_that_imported_the_flow_modules_unpickles_the_tagged_flow_without_further_imports(
    tmp_path: Path,
) -> None:
    """Prefect sends the flow, its hooks included, with every task it submits to Dask. The
    simulate flow as ``goldstress run`` tags it (``on_running`` :func:`tagging_hook`) unpickles,
    in a fresh interpreter that imported ``WORKER_IMPORTS`` (what a local worker's forkserver
    preloads, besides Dask's own packages), without importing another flow module: not the
    whole-pipeline flow and the stages it imports (MLflow, Great Expectations), which cost each
    worker's first task about 0.3 s of CPU."""
    import cloudpickle

    from flows.simulate import simulate_for
    from goldstress.orchestration import RUN_TAG, process_tag, tagging_hook
    from goldstress.settings import RunOptions

    tagged = simulate_for(RunOptions(workers=2)).with_options(
        flow_run_name="simulate-test", on_running=[tagging_hook([RUN_TAG, process_tag()])]
    )
    blob = tmp_path / "flow.pkl"
    blob.write_bytes(cloudpickle.dumps(tagged))
    script = tmp_path / "unpickle.py"
    script.write_text(_UNPICKLE_FLOW)
    imported = last_json_line(script, str(blob), timeout=300)
    assert "goldstress.orchestration" in imported  # the hook's own module, a light one
    assert [m for m in imported if m.startswith(("flows", "mlflow", "great_expectations"))] == []
