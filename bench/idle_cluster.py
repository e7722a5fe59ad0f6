"""Benchmark (not a test): CPU an idle local Dask cluster of two one-thread workers costs the
run's process (its scheduler, nannies and client) and each worker, under Dask's default periodic
checks and under the product's (``goldstress.execution._QUIET_CLUSTER``). Both with Dask's
profiler off, as the product runs its workers. Each round starts a fresh
``distributed.LocalCluster``, waits 3 s, then reads the processes' CPU time over 20 s (psutil);
the rounds alternate between the two settings.

Usage: ``python bench/idle_cluster.py [--rounds 3] [--record]``; ``--record`` appends a dated
section to bench/IDLE_CLUSTER.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dask
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from goldstress.execution import _QUIET_CLUSTER  # noqa: E402

WINDOW_S = 20.0
SETTINGS = {
    "Dask's defaults": {"distributed.worker.profile.enabled": False},
    "goldstress": {"distributed.worker.profile.enabled": False, **_QUIET_CLUSTER},
}


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def idle_round(config: dict[str, object]) -> tuple[float, list[float]]:
    """CPU seconds per second of this process and of each worker process of an idle two-worker
    local cluster started under ``config`` (Dask settings), over :data:`WINDOW_S` seconds."""
    from distributed import Client, LocalCluster

    with dask.config.set(config):
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
            Client(cluster),
        ):
            time.sleep(3.0)
            me = psutil.Process()
            workers = [psutil.Process(nanny.process.pid) for nanny in cluster.workers.values()]
            before, before_w = _cpu(me), [_cpu(w) for w in workers]
            time.sleep(WINDOW_S)
            return (_cpu(me) - before) / WINDOW_S, [(_cpu(w) - b) / WINDOW_S for w, b in zip(workers, before_w)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    runs: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, config in SETTINGS.items():
            runs[name].append(idle_round(config))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit.strip()}",
        "",
        f"Machine: {os.cpu_count()} cores. An idle local cluster of two one-thread workers, "
        f"CPU seconds per second over {WINDOW_S:.0f} s, the median of {args.rounds} rounds (the rounds' range):",
        "",
        "| periodic checks | run's process (scheduler, nannies, client) | each worker |",
        "| --- | ---: | ---: |",
    ]
    for name, rs in runs.items():
        own = [r[0] for r in rs]
        per_worker = [w for r in rs for w in r[1]]
        lines.append(
            f"| {name} | {statistics.median(own):.4f} ({min(own):.4f}-{max(own):.4f}) "
            f"| {statistics.median(per_worker):.4f} ({min(per_worker):.4f}-{max(per_worker):.4f}) |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        out = ROOT / "bench" / "IDLE_CLUSTER.md"
        head = (
            "" if out.exists() else "# Idle local Dask cluster: CPU of its periodic checks (bench/idle_cluster.py)\n\n"
        )
        with out.open("a") as fh:
            fh.write(head + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
