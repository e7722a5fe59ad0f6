"""Tasks on threads of the run's own process (Prefect's ``ThreadPoolTaskRunner`` through a real
Prefect API): they run at once and come back in order; the engine's compiled kernels release
the GIL so that the threads use more than one core."""

from __future__ import annotations

import importlib
import os
import pkgutil
import threading
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

import models
from goldstress.execution import process_threads, results_in_order, task_runner
from goldstress.settings import MAX_DEFAULT_THREADS, DaskSettings
from tests.fresh_interpreter import last_json_line

_meet = threading.Barrier(2)


@task(name="meet", cache_policy=NO_CACHE)
def _meet_another(i: int) -> tuple[int, int]:
    """Wait (at most 30 s) until a second call of this task is waiting too; fail if none comes."""
    _meet.wait(timeout=30)
    if i == 4:
        raise ValueError("call 4 fails")
    return i, threading.get_ident()


@flow(name="threads-test")
def _on_threads(n: int) -> dict:
    results = results_in_order(_meet_another, [(i,) for i in range(n)])
    got = []
    try:
        for r in results:
            got.append(r)
    except ValueError as exc:
        return {"got": got, "error": str(exc), "threads": process_threads(), "flow": threading.get_ident()}
    return {"got": got, "error": None, "threads": process_threads(), "flow": threading.get_ident()}


def test_tasks_on_two_threads_run_in_pairs_and_come_back_in_order(prefect_api) -> None:
    """Each call waits at a barrier of two: on one thread the first call would wait alone and
    time out. The results come in the order of the calls, from two threads other than the
    flow's, up to the call that failed, whose error is raised when its result is reached."""
    _meet.reset()
    out = _on_threads.with_options(task_runner=task_runner(DaskSettings(threads=2)))(6)
    assert out["threads"] == 2
    assert [i for i, _ in out["got"]] == [0, 1, 2, 3]
    threads = {t for _, t in out["got"]}
    assert len(threads) == 2 and out["flow"] not in threads
    assert out["error"] == "call 4 fails"


@flow(name="plain-threads-test")
def _on_plain_threads(n: int) -> dict:
    return {
        "got": list(results_in_order(_square_and_thread, [(i,) for i in range(n)])),
        "threads": process_threads(),
        "flow": threading.get_ident(),
    }


@task(name="square", cache_policy=NO_CACHE)
def _square_and_thread(i: int) -> tuple[int, int]:
    return i * i, threading.get_ident()


def test_the_thread_count_survives_prefects_copy_and_a_plain_runner_counts_none(prefect_api) -> None:
    """The runner of :func:`task_runner` keeps its count through ``duplicate`` (Prefect copies a
    flow's runner for each run). Under Prefect's own ``ThreadPoolTaskRunner``, whose threads
    have no bound, the flow counts no threads of its own and runs the tasks in its own thread,
    in order."""
    from prefect.task_runners import ThreadPoolTaskRunner

    runner = task_runner(DaskSettings(threads=3))
    copy = runner.duplicate()
    assert type(copy) is type(runner) and copy.threads == 3
    out = _on_plain_threads.with_options(task_runner=ThreadPoolTaskRunner())(4)
    assert out["threads"] == 0
    assert [v for v, _ in out["got"]] == [0, 1, 4, 9]
    assert {t for _, t in out["got"]} == {out["flow"]}


ONE_CORE = """
import json, os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from goldstress.settings import DaskSettings
print(json.dumps({"default": DaskSettings().process_threads(), "set": DaskSettings(threads=3).process_threads()}))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_default_threads_are_the_cores_this_process_may_use(tmp_path: Path) -> None:
    """On this machine the default is its cores up to the cap; in a process allowed one core
    (``sched_setaffinity``, as a container's CPU set does), one thread; a set count is kept."""
    assert DaskSettings().process_threads() == max(1, min(len(os.sched_getaffinity(0)), MAX_DEFAULT_THREADS))
    script = tmp_path / "one_core.py"
    script.write_text(ONE_CORE)
    assert last_json_line(script, timeout=120) == {"default": 1, "set": 3}


def _dispatchers() -> list[tuple[str, object]]:
    """Every numba-compiled function defined in the ``models`` package, by qualified name."""
    from numba.core.registry import CPUDispatcher

    found = []
    for info in pkgutil.walk_packages(models.__path__, "models."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", obj))
    return found


def test_every_compiled_kernel_of_the_models_releases_the_gil() -> None:
    """numba's ``nogil=True`` (numba.readthedocs.io, "Compilation options"): without it a
    kernel holds the GIL and threads of one process run the engine one at a time."""
    found = _dispatchers()
    assert len(found) >= 10  # the token, peg, metrics and volatility kernels
    held = [name for name, d in found if not d.targetoptions.get("nogil")]  # type: ignore[attr-defined]
    assert held == []


def test_one_thread_runs_every_call_in_the_flows_thread(prefect_api) -> None:
    @task(name="where", cache_policy=NO_CACHE)
    def where(i: int) -> tuple[int, int]:
        return i, threading.get_ident()

    @flow(name="one-thread-test")
    def one() -> dict:
        return {"got": list(results_in_order(where, [(i,) for i in range(3)])), "flow": threading.get_ident()}

    out = one.with_options(task_runner=task_runner(DaskSettings(threads=1)))()
    assert [i for i, _ in out["got"]] == [0, 1, 2]
    assert {t for _, t in out["got"]} == {out["flow"]}
