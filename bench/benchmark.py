"""Benchmark of the main job (not a test): times each stage of the full stress test on the data
folder named by GOLDSTRESS_DATA_DIR (or DATA=... via ``make bench``), at full size (10,000 paths x
250 days per Monte Carlo scenario unless overridden), in a fresh store, and measures how the
peak memory of the Monte Carlo stage changes with the number of paths.

Writes the results to bench/RESULTS.md (appends a dated section) and prints them.
Target: all stages within 90 s after install on a 2-core machine.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from goldstress.settings import RunOptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_timings(tmp: Path) -> list[tuple[str, float, float]]:
    """Run each stage as its own Prefect flow in one process; (stage, seconds, peak RSS MB)."""
    os.environ.update(
        {
            "GOLDSTRESS_STORE_URL": str(tmp / "store"),
            "GOLDSTRESS_REPORT_URL": str(tmp / "reports"),
            "GOLDSTRESS_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "GOLDSTRESS_MLFLOW_ARTIFACT_LOCATION": str(tmp / "mlartifacts"),
        }
    )
    rows = []
    t0 = time.perf_counter()
    from goldstress.settings import get_settings, new_run_id

    get_settings.cache_clear()
    import prefect  # noqa: F401  (import cost counted in "imports")

    from flows.analyse import analyse
    from flows.calibrate import calibrate
    from flows.ingest import ingest
    from flows.simulate import simulate
    from flows.train import train
    from flows.validate import validate

    rows.append(("imports", time.perf_counter() - t0, _rss_mb()))
    run_id = new_run_id()
    for name, fn in (
        (
            "ingest (incl. Prefect ephemeral server start)",
            lambda: ingest(options=RunOptions(data_dir=os.environ["GOLDSTRESS_DATA_DIR"])),
        ),
        ("validate", lambda: validate()),
        (
            "calibrate (premium fits, as in stress_test with data)",
            lambda: calibrate(options=RunOptions(data_dir=os.environ["GOLDSTRESS_DATA_DIR"])),
        ),
        ("train", lambda: train()),
        ("simulate (incl. liquidity recommendations)", lambda: simulate(run_id=run_id)),
        ("analyse + report", lambda: analyse(run_id=run_id)),
    ):
        t = time.perf_counter()
        fn()
        rows.append((name, time.perf_counter() - t, _rss_mb()))
    return rows


def mc_memory(n_paths_list: tuple[int, ...] = (10_000, 40_000)) -> list[tuple[int, float, float]]:
    """Peak traced memory (MB) and time of Monte Carlo + all configured token models (per-path
    summaries discarded, as the streaming Parquet writer does) for several path counts."""
    import numpy as np

    from goldstress.settings import get_settings
    from models.metrics import summarise_paths
    from models.scenarios import monte_carlo_chunks, to_price_paths
    from models.token.protocol import build_token_model
    from models.volatility import fit_garch
    from tasks.simulate import load_specs

    s = get_settings()
    rng = np.random.default_rng(1)
    r = rng.standard_t(6, 5000) * 0.01 * np.sqrt(4 / 6)
    fit = fit_garch(r, kind="garch")
    models = [build_token_model(spec) for spec in load_specs.fn(s)]
    out = []
    for n in n_paths_list:
        tracemalloc.start()
        t = time.perf_counter()
        rows = 0
        for chunk in monte_carlo_chunks(
            lambda k, h, g: fit.simulate(k, h, g), n, s.monte_carlo.horizon_days, 1, s.monte_carlo.chunk_paths
        ):
            prices = to_price_paths(2000.0, chunk)
            for m in models:
                rows += len(summarise_paths(m.run(prices, rng=rng), prices, s.risk.horizons_days))
        dt = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        out.append((n, dt, peak))
    return out


def main() -> None:
    if not os.environ.get("GOLDSTRESS_DATA_DIR"):
        sys.exit("benchmark: set GOLDSTRESS_DATA_DIR (make bench DATA=<dir>)")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        rows = stage_timings(Path(tmp))
    mem = mc_memory()
    from goldstress.settings import get_settings

    s = get_settings()
    total = sum(r[1] for r in rows)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, {platform.machine()}; "
        f"1-min load average {load_before:.1f} before the run (other work on the machine inflates the times). "
        f"Data: {Path(os.environ['GOLDSTRESS_DATA_DIR']).name}/{s.data.gold_file}. Monte Carlo {s.monte_carlo.paths:,} paths x {s.monte_carlo.horizon_days} days, chunks of {s.monte_carlo.chunk_paths:,}.",
        "",
        "| stage | seconds | peak RSS (MB) |",
        "| --- | ---: | ---: |",
        *[f"| {name} | {sec:.1f} | {rss:.0f} |" for name, sec, rss in rows],
        f"| **total (after install)** | **{total:.1f}** | |",
        "",
        f"Target: all stages within 90 s -> {'met' if total <= 90 else 'NOT met'}.",
        "",
        "Monte Carlo + all configured token models, peak traced memory (tracemalloc, which also slows the run) vs number of paths:",
        "",
        "| paths | seconds | peak traced MB |",
        "| ---: | ---: | ---: |",
        *[f"| {n:,} | {sec:.2f} | {peak:.1f} |" for n, sec, peak in mem],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench" / "RESULTS.md"
    head = "# Benchmark results\n\nProduced by `make bench DATA=<dir>` (bench/benchmark.py). Newest first.\n\n"
    old = out.read_text(encoding="utf-8").removeprefix(head) if out.exists() else ""
    out.write_text(head + text + "\n" + old, encoding="utf-8")


if __name__ == "__main__":
    main()
