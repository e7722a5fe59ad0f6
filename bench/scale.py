"""Benchmark of the engine at scale (not a test), in one run: the engine rates of bench/engine.py
(GARCH Monte Carlo against arch's simulation forecast, each token model against the frozen
reference), the whole ``goldstress run`` (the job ``make run`` runs, after install), the
``simulate`` stage at 10k, 100k and 1M paths (in process on the default threads, and on two
local Dask workers), the whole run at 1M paths, the speed-up of two threads over one in the
run's process at 200k paths (one pair), and the speed-up of two local Dask workers over one on
the ``simulate`` stage at 200k paths (six pairs, the order within a pair alternating, each
after two rounds of the speed-up two processes of a plain CPU-bound loop get on the machine at
that time, and the time of that loop alone: the speed of a core then).

Each run is the ``goldstress`` command in a subprocess on a fresh store; peak memory is sampled
every 0.2 s over the command's whole process tree (its Prefect server and Dask workers included)
with psutil, and the largest single process is reported beside the tree's sum.

Usage: ``python bench/scale.py --data ../shared/data [--skip-million] [--pairs N] [--record]``; ``--record``
appends a dated section to bench/SCALE.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from goldstress.settings import DaskSettings  # noqa: E402

GARCH_TARGET = 50.0  # M path-steps per second, the GARCH-family Monte Carlo on this machine
LOOP_TARGET = 20.0  # M path-steps per second on one core, each token model's daily loop
SIMULATE_TARGET_S = 120.0  # simulate stage at 1M paths
RSS_TARGET_MB = 1_500.0  # whole run at 1M paths
SPEEDUP_TARGET = 1.7  # 2 workers over 1 at 200k paths
SPEEDUP_PAIRS = 6  # pairs of 1- and 2-worker runs, 1-2, 2-1, ...: the machine's load moves single runs
CEILING_ROUNDS = 2  # rounds of parallel_ceiling before each pair


def engine_verdicts(garch: list[tuple[str, float]], tokens: list[tuple[Any, ...]]) -> list[str]:
    """The engine targets, met or not, from bench/engine.py's rows: ``garch`` as
    ``(label, M path-steps/s)`` (the compiled product rows are judged), ``tokens`` as
    ``(symbol, run, daily loop, all-records loop, reference)`` in M path-steps/s (the daily loop
    the Monte Carlo runs is judged)."""
    product = [(label.split(" Monte Carlo")[0], rate) for label, rate in garch if "product" in label]
    low = [s for s, _, loop, *_ in tokens if loop < LOOP_TARGET]
    return [
        f"- GARCH-family Monte Carlo, compiled (target {GARCH_TARGET:.0f} M path-steps/s): "
        f"{', '.join(f'{name} {rate:.1f}' for name, rate in product)}: "
        f"{'met' if all(rate >= GARCH_TARGET for _, rate in product) else 'missed'}.",
        f"- each token model's daily loop on one core (target {LOOP_TARGET:.0f} M path-steps/s): "
        f"{', '.join(f'{s} {loop:.1f}' for s, _, loop, *_ in tokens)}: "
        + ("met." if not low else f"missed ({', '.join(low)} below)."),
    ]


def _tree_rss(proc: psutil.Process) -> tuple[float, float]:
    """(sum, largest) RSS in MB over ``proc`` and its descendants."""
    rss = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss.append(p.memory_info().rss)
        except psutil.Error:
            continue
    return sum(rss) / 2**20, max(rss, default=0) / 2**20


def _role(p: psutil.Process, root: int) -> str:
    """What a process of the command's tree is: the command itself, its Prefect server, a Dask
    worker (or the forkserver the local workers are forked from, whose imports are theirs), or
    other (Dask's resource tracker)."""
    if p.pid == root:
        return "run"
    cmd = " ".join(p.cmdline())
    if "uvicorn" in cmd:
        return "prefect"
    if ("spawn_main" in cmd or "forkserver" in cmd) and "resource_tracker" not in cmd:
        return "worker"
    return "other"


def _tree_cpu(proc: psutil.Process, seen: dict[int, tuple[str, float]]) -> None:
    """Record in ``seen`` each process's role and CPU seconds (user + system) so far."""
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            role = seen[p.pid][0] if p.pid in seen else _role(p, proc.pid)
            seen[p.pid] = (role, t.user + t.system)
        except psutil.Error:
            continue


def run_command(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``goldstress <args>``; wall seconds, peak tree and single-process RSS (MB), the stage
    lines' seconds, the CPU seconds of the command's process, its Prefect server and its Dask
    workers (as last sampled: a process's CPU after its last sample, at most 0.2 s, is missed) and
    the return code. Raises RuntimeError (with stderr's tail) when it fails."""
    cmd = [str(ROOT / ".venv" / "bin" / "goldstress"), *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = [0.0, 0.0]
    cpu: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                total, single = _tree_rss(ps)
                _tree_cpu(ps, cpu)
            except psutil.Error:
                break
            peak[0], peak[1] = max(peak[0], total), max(peak[1], single)
            done.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    done.set()
    th.join()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {err[-2000:]}")
    stages = {m[0]: float(m[1]) for m in re.findall(r"\] (\w+)\s+\.\.\. done in ([\d.]+) s", out)}
    by_role = {role: sum(t for r, t in cpu.values() if r == role) for role in ("run", "prefect", "worker")}
    return {
        "wall_s": wall,
        "tree_mb": peak[0],
        "single_mb": peak[1],
        "stages": stages,
        "cpu_s": by_role,
        "stderr": err.strip(),
    }


def _env(store: Path, data: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for line in (ROOT / "goldstress" / "telemetry.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k.strip()] = v.strip()
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "PREFECT_HOME": str(store / "prefect"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "GOLDSTRESS_STORE_URL": str(store / "store"),
            "GOLDSTRESS_REPORT_URL": str(store / "reports"),
            "GOLDSTRESS_MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
            "GOLDSTRESS_MLFLOW_ARTIFACT_LOCATION": str(store / "mlartifacts"),
            "GOLDSTRESS_DATA_DIR": str(data),
            **extra,
        }
    )
    return env


_SPIN = "x = 0\nfor i in range(20_000_000):\n    x += i * i & 7\n"
"""A CPU-bound loop of pure Python (2 to 5 s on one core of the development machine, by the
hour: bench/SCALE.md): no memory traffic, no shared state."""


def _threads(n: int) -> str:
    """``"1 thread"``, ``"2 threads"``: the thread count in a run's label."""
    return f"{n} thread{'s' if n > 1 else ''}"


def parallel_ceiling(pairs: int = 5) -> list[tuple[float, float]]:
    """What the machine's cores give at the moment: for each of ``pairs`` rounds, the wall time of
    :data:`_SPIN` in one process, then in two processes at once; returns each round's ratio
    ``2 * alone / pair`` (2.0: two free cores; 1.0: one) and its time alone in seconds (the
    speed of one core at that moment: the same loop, the same interpreter, whatever the
    commit). A reference for the two-worker speed-up, measured beside it, sharing no code with
    goldstress."""
    cmd = [sys.executable, "-c", _SPIN]
    out = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        alone = time.perf_counter() - t0
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd) for _ in range(2)]
        for p in procs:
            p.wait()
        out.append((2 * alone / (time.perf_counter() - t0), alone))
    return out


def main() -> None:
    """Run every measurement, print the markdown section and append it to bench/SCALE.md with --record."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of the historical CSV files")
    ap.add_argument("--skip-million", action="store_true", help="leave out the 1M-path runs")
    ap.add_argument("--skip-engine", action="store_true", help="leave out the engine rates")
    ap.add_argument("--pairs", type=int, default=SPEEDUP_PAIRS, help=f"pairs of 1- and 2-worker runs ({SPEEDUP_PAIRS})")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    load = [os.getloadavg()[0]]
    wall0 = time.perf_counter()
    lines: list[str] = []
    verdicts: list[str] = []
    if not args.skip_engine:
        import engine  # bench/engine.py

        g = engine.garch_rows(10_000)
        tk = engine.token_rows(10_000)
        lines += [
            f"Engine rates, one core, M path-steps per CPU second (bench/engine.py, 10,000 paths; the GARCH "
            f"rows the best of 3 runs, the token models each chunk's fastest of {engine.REPEAT} runs):",
            "",
            "| engine | M path-steps/s |",
            "| --- | ---: |",
            *[f"| {label} | {rate:.1f} |" for label, rate in g],
            "",
            "The product run and daily loop of a reserve-backed token are the Monte Carlo's (the "
            "records the summaries read, the kernel compiled for the token's structure); the "
            "all-records loop is the general kernel of a run that keeps every daily record.",
            "",
            "| token | product run | product daily loop | daily loop, all records | reference run | run speed-up |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *[f"| {s} | {a:.1f} | {b:.1f} | {f:.1f} | {c:.2f} | {a / c:.1f}x |" for s, a, b, f, c in tk],
            "",
        ]
        verdicts += engine_verdicts(g, tk)
        load.append(os.getloadavg()[0])
    rows: list[tuple[str, dict[str, Any]]] = []
    threads = DaskSettings().process_threads()  # the default of a run in process on this machine
    tmp = Path(tempfile.mkdtemp(prefix="goldstress-scale-"))
    try:
        env = _env(tmp, args.data.resolve())
        rows.append(("whole run, 10,000 paths (make run after install)", run_command(["run"], env)))
        load.append(os.getloadavg()[0])
        for n in (10_000, 100_000):
            r = run_command(["run", "--stage", "simulate", "--paths", str(n)], env)
            rows.append((f"simulate stage, {n:,} paths, in process, {_threads(threads)}", r))
            load.append(os.getloadavg()[0])
        for t in (1, 2):
            r = run_command(["run", "--stage", "simulate", "--paths", "200000", "--threads", str(t)], env)
            rows.append((f"simulate stage, 200,000 paths, in process, {_threads(t)}", r))
            load.append(os.getloadavg()[0])
        ceiling: list[tuple[float, float]] = []
        for k in range(args.pairs):
            ceiling += parallel_ceiling(CEILING_ROUNDS)
            for w in (1, 2) if k % 2 == 0 else (2, 1):
                r = run_command(["run", "--stage", "simulate", "--paths", "200000", "--workers", str(w)], env)
                rows.append((f"simulate stage, 200,000 paths, {w} Dask worker{'s' if w > 1 else ''}, pair {k + 1}", r))
                load.append(os.getloadavg()[0])
        if not args.skip_million:
            r = run_command(["run", "--stage", "simulate", "--paths", "1000000", "--workers", "2"], env)
            rows.append(("simulate stage, 1,000,000 paths, 2 Dask workers", r))
            load.append(os.getloadavg()[0])
            env1m = _env(tmp, args.data.resolve(), GOLDSTRESS_MC_KEEP_PATH_RESULTS="false")
            r = run_command(["run", "--stage", "simulate", "--paths", "1000000"], env1m)
            rows.append(
                (f"simulate stage, 1,000,000 paths, in process, {_threads(threads)}, per-path tables not kept", r)
            )
            load.append(os.getloadavg()[0])
            r = run_command(["run", "--paths", "1000000"], env1m)
            rows.append((f"whole run, 1,000,000 paths, in process, {_threads(threads)}, per-path tables not kept", r))
            load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def stage_s(r: dict[str, Any], name: str) -> float:
        return float(r["stages"].get(name, float("nan")))

    table = [
        "| run | stage s | whole command s | peak RSS, process tree MB | peak RSS, largest process MB | CPU s: run process / Prefect server / Dask workers |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, r in rows:
        st = stage_s(r, "simulate")
        table.append(
            f"| {label} | {'' if st != st else f'{st:.1f}'} | {r['wall_s']:.1f} | {r['tree_mb']:,.0f} | {r['single_mb']:,.0f} "
            f"| {' / '.join(f'{v:.0f}' for v in r['cpu_s'].values())} |"
        )
    by = dict(rows)
    ratios = [
        stage_s(by[f"simulate stage, 200,000 paths, 1 Dask worker, pair {k + 1}"], "simulate")
        / stage_s(by[f"simulate stage, 200,000 paths, 2 Dask workers, pair {k + 1}"], "simulate")
        for k in range(args.pairs)
    ]
    speedup = statistics.median(ratios)
    ratio = [x for x, _ in ceiling]
    spin = statistics.median(t for _, t in ceiling)
    one, two = (stage_s(by[f"simulate stage, 200,000 paths, in process, {_threads(t)}"], "simulate") for t in (1, 2))
    verdicts += [
        f"- 2 Dask workers over 1 at 200,000 paths: {speedup:.2f}x, the median of {args.pairs} pairs, one worker "
        f"first in the odd ones, two in the even ones ({', '.join(f'{x:.2f}x' for x in ratios)}; target "
        f"{SPEEDUP_TARGET}x): {'met' if speedup >= SPEEDUP_TARGET else 'missed'}. The machine's own ceiling, "
        f"{CEILING_ROUNDS} rounds before each pair: two processes of a pure-Python loop ran "
        f"{statistics.median(ratio):.2f}x as fast as one, the median of {len(ratio)} rounds "
        f"({min(ratio):.2f}x to {max(ratio):.2f}x). That loop took {spin:.2f} s alone (median; the "
        "speed of one core at the time, the same whatever the commit).",
        f"- 2 threads over 1 in the run's process at 200,000 paths (one pair): {one / two:.2f}x "
        f"({one:.1f} s and {two:.1f} s).",
    ]
    if not args.skip_million:
        s2w = stage_s(by["simulate stage, 1,000,000 paths, 2 Dask workers"], "simulate")
        stage = by[f"simulate stage, 1,000,000 paths, in process, {_threads(threads)}, per-path tables not kept"]
        whole = by[f"whole run, 1,000,000 paths, in process, {_threads(threads)}, per-path tables not kept"]
        s1p, sw = stage_s(stage, "simulate"), stage_s(whole, "simulate")
        both = sw <= SIMULATE_TARGET_S and whole["tree_mb"] <= RSS_TARGET_MB
        verdicts += [
            f"- simulate stage at 1,000,000 paths (target {SIMULATE_TARGET_S:.0f} s): {s1p:.0f} s in process on "
            f"{_threads(threads)} (the default), {s2w:.0f} s on 2 Dask workers, {sw:.0f} s inside the whole run: "
            f"{'met' if min(s1p, sw) <= SIMULATE_TARGET_S else 'missed'}.",
            f"- whole run at 1,000,000 paths in process on {_threads(threads)}: peak RSS {whole['single_mb']:,.0f} MB in "
            f"its largest process, {whole['tree_mb']:,.0f} MB over the process tree with the Prefect server (target "
            f"{RSS_TARGET_MB:,.0f} MB): {'met' if whole['tree_mb'] <= RSS_TARGET_MB else 'missed'}.",
            f"- both million-path targets in that one whole run (simulate {sw:.0f} s, tree "
            f"{whole['tree_mb']:,.0f} MB): {'met' if both else 'missed'}.",
        ]
    stderr = [
        f"- {label}: stderr {len(r['stderr'])} characters, its first line: `{r['stderr'].splitlines()[0][:300]}`"
        for label, r in rows
        if r["stderr"]
    ]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    text = "\n".join(
        [
            f"## {now}, commit {commit.strip()}",
            "",
            f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}. "
            f"1-min load average {min(load):.1f} to {max(load):.1f} over the benchmark (other work on the machine "
            f"slows every figure). Wall clock of the whole benchmark: {time.perf_counter() - wall0:.0f} s.",
            "",
            *lines,
            "Runs (`goldstress run ...` on the real data in a fresh store; the stage column is the command's own "
            "stage line):",
            "",
            *table,
            "",
            *verdicts,
            *stderr,
            "",
        ]
    )
    print(text)
    if args.record:
        out = ROOT / "bench" / "SCALE.md"
        head = "# The engine at scale\n\nProduced by `python bench/scale.py --data ../shared/data --record` (newest last).\n\n"
        out.write_text((out.read_text() if out.exists() else head) + "\n" + text)


if __name__ == "__main__":
    main()
