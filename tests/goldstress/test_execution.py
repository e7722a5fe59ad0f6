"""The allocator setting of the engine's processes, measured in a fresh interpreter by the page
faults of a block allocated, written and freed over and over; the admission of tasks to Dask
when the scheduler cannot be reached (tests/flows/test_dask.py runs it on a real cluster); the
single allocator arena of a run's threads, counted by glibc's ``malloc_stats``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from goldstress.execution import Admission
from tests.fresh_interpreter import last_json_line

BLOCK_BYTES = 40 << 20
"""Above glibc's largest adaptive mapping threshold (32 MiB), below the tuned one (64 MiB)."""

FAULTS = textwrap.dedent(
    f"""
    import json, resource, threading
    import numpy as np
    from goldstress.execution import tune_allocator

    def faults_per_block(n=20):
        for _ in range(2):
            np.ones({BLOCK_BYTES} // 8)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n):
            block = np.ones({BLOCK_BYTES} // 8)
            del block
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n

    def in_thread():
        got = {{}}
        t = threading.Thread(target=lambda: got.update(faults=faults_per_block()))
        t.start()
        t.join()
        return got["faults"]

    before, before_thread = faults_per_block(), in_thread()
    tuned = tune_allocator()
    print(json.dumps({{"tuned": tuned, "again": tune_allocator(), "before": before,
                      "before_thread": before_thread, "after": faults_per_block(),
                      "after_thread": in_thread()}}))
    """
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tuned_allocator_reuses_freed_blocks_instead_of_faulting_them_in_again(tmp_path: Path) -> None:
    """Before ``tune_allocator`` each 40 MiB block is mapped afresh: at least one page fault per
    2 MiB (the largest page, a transparent huge page) every time. After it, in the main thread
    and in another thread (its own allocator arena, like a Dask worker's task thread), the
    freed block is reused: fewer than one fault per block on average."""
    script = tmp_path / "faults.py"
    script.write_text(FAULTS)
    got = last_json_line(script, timeout=120)
    assert got["tuned"] is True and got["again"] is True
    fresh = BLOCK_BYTES / (2 << 20)
    assert got["before"] >= fresh and got["before_thread"] >= fresh
    assert got["after"] < 1 and got["after_thread"] < 1


class _SchedulerGone:
    """A Dask client whose scheduler no longer answers."""

    status = "running"

    def nthreads(self) -> dict:
        raise OSError("scheduler at tcp://127.0.0.1:8786 does not answer")


class _NotToBeSubmitted:
    def submit(self, *args: object) -> None:
        raise AssertionError("submitted without knowing the cluster's threads")


def test_admission_fails_every_queued_call_when_the_scheduler_cannot_be_asked() -> None:
    """Not a hang: each queued call's future gets the client's error, and a call queued later
    (a new submitting thread) gets it too."""
    admission = Admission(_SchedulerGone())
    queued = [admission.submit(_NotToBeSubmitted(), (k,)) for k in range(3)]
    for admitted in queued:
        exc = admitted.exception(timeout=30)
        assert isinstance(exc, OSError) and "does not answer" in str(exc)
    later = admission.submit(_NotToBeSubmitted(), ())
    assert isinstance(later.exception(timeout=30), OSError)


ARENAS = textwrap.dedent(
    """
    import ctypes, sys, threading
    from goldstress.execution import one_allocator_arena

    if sys.argv[1] == "one":
        assert one_allocator_arena() is True
    def churn():
        keep = [bytearray(4096) for _ in range(2000)]  # small blocks: from the thread's arena
        del keep
    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctypes.CDLL(None).malloc_stats()  # glibc: one "Arena N:" block per arena, on stderr
    """
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="arenas are glibc's")
@pytest.mark.parametrize(("mode", "one"), [("default", False), ("one", True)])
def test_one_allocator_arena_keeps_every_thread_in_the_main_arena(tmp_path: Path, mode: str, one: bool) -> None:
    """Four threads allocating small blocks: glibc gives them arenas of their own by default
    (more than one arena in ``malloc_stats``), and none after :func:`one_allocator_arena`."""
    script = tmp_path / "arenas.py"
    script.write_text(ARENAS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("MALLOC_ARENA_MAX", None)
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    arenas = [line for line in done.stderr.splitlines() if line.startswith("Arena ")]
    assert (len(arenas) == 1) is one and len(arenas) >= 1
