"""Benchmark of the Monte Carlo and token engines (not a test): path-steps per second of the GARCH
Monte Carlo (the product's compiled simulation through ``monte_carlo_chunks``, the frozen NumPy
reference of tests/models/reference, and arch 8.0's ``forecast(method="simulation")`` on the same
parameters) and of each token model of specs/ (the product engine, its daily loop alone, and the
frozen reference), on one core.

Usage: ``python bench/engine.py [--paths 10000] [--record]``; ``--record`` appends a dated section
to bench/ENGINE.md. Other work on the machine slows every figure: the load average is recorded.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import models.token.cdp as cdp_mod  # noqa: E402
import models.token.reserve_backed as rb_mod  # noqa: E402
from models.scenarios import business_days, monte_carlo_chunks, on_calendar_days, to_price_paths  # noqa: E402
from models.token.protocol import build_token_model  # noqa: E402
from models.token.reserve_backed import ReserveBackedToken  # noqa: E402
from models.token.spec import load_token_spec  # noqa: E402
from tests.garch_fits import GOLD_GJR_PARAMS as PARAMS  # noqa: E402
from tests.garch_fits import gold_gjr_fit as _fit  # noqa: E402
from tests.models.reference import cdp as ref_cdp  # noqa: E402
from tests.models.reference import garch_simulate  # noqa: E402
from tests.models.reference import reserve_backed as ref_rb  # noqa: E402

HORIZON = 250  # trading days, as the pipeline's Monte Carlo
CHUNK = 2_000  # paths per chunk, the pipeline's default
REPEAT = 9  # runs of each token model over the chunks: each chunk's fastest counts


def _best(f: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of ``repeat`` timings of ``f()`` in CPU seconds of this process (single-threaded:
    one core's time; the time other workers hold the core is left out): the least disturbed."""
    best = math.inf
    for _ in range(repeat):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return best


def garch_rows(n: int) -> list[tuple[str, float]]:
    """(label, M path-steps/s) of the GARCH Monte Carlo variants on ``n`` paths x HORIZON days."""
    fit = _fit()
    steps = n * HORIZON
    rows = []
    for inn in ("t", "fhs"):

        def product(inn: str = inn) -> None:
            for _ in monte_carlo_chunks(lambda m, h, g: fit.simulate(m, h, g, innovations=inn), n, HORIZON, 1, CHUNK):
                pass

        def reference(inn: str = inn) -> None:
            for _ in monte_carlo_chunks(
                lambda m, h, g: garch_simulate(fit, m, h, g, innovations=inn), n, HORIZON, 1, CHUNK
            ):
                pass

        product()  # compile
        rows.append((f"GJR-GARCH-{inn} Monte Carlo, product (compiled)", steps / _best(product) / 1e6))
        rows.append((f"GJR-GARCH-{inn} Monte Carlo, reference (NumPy)", steps / _best(reference) / 1e6))
    from arch import arch_model

    y = 100 * fit.simulate(1, 3000, np.random.default_rng(3))[0]
    p = PARAMS
    res = arch_model(y, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t").fix(
        [100 * p["mu"], 1e4 * p["omega"], p["alpha"], p["gamma"], p["beta"], p["nu"]]
    )
    t_arch = _best(lambda: res.forecast(horizon=HORIZON, method="simulation", simulations=n, reindex=False), 2)
    rows.append(("GJR-GARCH-t, arch 8.0 forecast(method='simulation')", steps / t_arch / 1e6))
    return rows


def token_rows(n: int) -> list[tuple[str, float, float, float, float]]:
    """(token, product run, product daily loop, daily loop with every record, reference run) in M
    path-steps/s on ``n`` paths of the calendar-day clock (HORIZON trading days, weekends
    included), in chunks of CHUNK. A reserve-backed token runs as the simulate stage runs it
    (tasks/simulate.py): ``records="summary"`` (the kernel compiled for its structure) in one
    daily-record buffer reused from chunk to chunk, allocated and first-touched once; its last
    loop column is the general kernel of a run with every record (scenario replays, audits)."""
    r = np.random.default_rng(1).standard_t(5, (n, HORIZON)) * 0.01
    prices, cal, _ = on_calendar_days(to_price_paths(4000.0, r), business_days("2026-08-17", HORIZON + 1))
    steps = n * (prices.shape[1] - 1)
    chunks = [prices[a : a + CHUNK] for a in range(0, n, CHUNK)]
    loop_time: list[float] = []

    def timed(f: Callable[..., None]) -> Callable[..., None]:
        def g(*a: object) -> None:
            t = time.process_time()
            f(*a)
            loop_time.append(time.process_time() - t)

        return g

    kernel = rb_mod._kernel
    rb_mod._kernel = lambda args, structure, specialise=True: timed(kernel(args, structure, specialise))  # type: ignore[assignment]
    cdp_mod._liquidate = timed(cdp_mod._liquidate)  # type: ignore[assignment]

    def fastest(run: Callable[[int, np.ndarray], object], repeat: int = REPEAT) -> tuple[float, float]:
        """CPU seconds of the whole runs over the chunks, and of their daily loops: each chunk's
        fastest of ``repeat`` runs, summed over the chunks (the least disturbed: on a shared
        machine a whole pass over the chunks is rarely undisturbed from end to end)."""
        best_run, best_loop = [math.inf] * len(chunks), [math.inf] * len(chunks)
        for _ in range(repeat):
            for k, c in enumerate(chunks):
                loop_time.clear()
                t = time.process_time()
                run(k, c)
                best_run[k] = min(best_run[k], time.process_time() - t)
                best_loop[k] = min(best_loop[k], sum(loop_time))
        return sum(best_run), sum(best_loop)

    rows = []
    for sym in ("gram", "paxg", "xaut", "dgx", "gusd_cdp"):
        spec = load_token_spec(ROOT / "specs" / f"{sym}.toml")
        model = build_token_model(spec)
        ref = ref_cdp.CdpStablecoin(spec) if sym == "gusd_cdp" else ref_rb.ReserveBackedToken(spec)
        if sym == "gusd_cdp":
            kw: dict[str, object] = {}
            model.run(chunks[0], calendar=cal, rng=1)  # compile
        else:
            rb = cast(ReserveBackedToken, model)
            kw = {"records": "summary", "workspace": np.empty(rb.workspace_size(*chunks[0].shape, records="summary"))}
            full_kw = {"workspace": np.empty(rb.workspace_size(*chunks[0].shape))}
            rb.run(chunks[0], calendar=cal, rng=1, **kw)  # compile (or load), and touch the buffers
            rb.run(chunks[0], calendar=cal, rng=1, **full_kw)
            _, full_loop = fastest(
                lambda k, c, m=rb, w=full_kw: m.run(
                    c, calendar=cal, rng=np.random.SeedSequence(1), first_path=k * CHUNK, **w
                )
            )
        best_run, best_loop = fastest(
            lambda k, c, m=model, w=kw: m.run(c, calendar=cal, rng=np.random.SeedSequence(1), first_path=k * CHUNK, **w)
        )
        if sym == "gusd_cdp":
            full_loop = best_loop
        ref_chunks = chunks[: max(1, len(chunks) // 5)]  # the reference is slow: a fifth of the paths
        ref_time = _best(
            lambda r=ref, cs=ref_chunks: [r.run(c, calendar=cal, rng=np.random.default_rng(1)) for c in cs]
        )
        ref_rate = sum(c.shape[0] for c in ref_chunks) * (prices.shape[1] - 1) / ref_time
        rows.append(
            (spec.symbol, steps / best_run / 1e6, steps / best_loop / 1e6, steps / full_loop / 1e6, ref_rate / 1e6)
        )
    return rows


def main() -> None:
    """Run the benchmark, print the markdown section and append it to bench/ENGINE.md with --record."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=10_000)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    wall0 = time.perf_counter()
    g = garch_rows(args.paths)
    tk = token_rows(args.paths)
    load1 = os.getloadavg()[0]
    wall = time.perf_counter() - wall0
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now}",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; one core used. 1-min load average {load0:.1f} at the start, "
        f"{load1:.1f} at the end: other workers share the machine. Rates are per CPU second of the "
        "benchmark's process (single-threaded, so one core's time; the time other workers hold the "
        "core is left out, their cache and memory traffic is not): the GARCH rows the best of 3 runs, "
        f"the token models each chunk's fastest of {REPEAT} runs summed over the chunks (the "
        f"reference: best of 3 runs on a fifth of the paths). Wall clock of the whole benchmark: {wall:.0f} s.",
        "",
        f"GARCH Monte Carlo: {args.paths:,} paths x {HORIZON} trading days, chunks of {CHUNK:,} paths.",
        "",
        "| engine | M path-steps/s |",
        "| --- | ---: |",
        *[f"| {label} | {rate:.1f} |" for label, rate in g],
        "",
        f"Token models: {args.paths:,} paths on the calendar-day clock ({HORIZON} trading days = "
        f"{int(HORIZON * 7 / 5)} days or so), chunks of {CHUNK:,} paths; the daily loop is the compiled "
        "kernel alone, the run adds the premium draws, the checks and the outcome arrays. A "
        "reserve-backed token runs as the simulate stage runs it: the records the summaries read "
        "(the kernel compiled for its structure), in one buffer reused from chunk to chunk; the "
        "all-records loop is the general kernel of a run that keeps every daily record (the "
        "reference always does).",
        "",
        "| token | product run | product daily loop | daily loop, all records | reference run | run speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {s} | {a:.1f} | {b:.1f} | {f:.1f} | {c:.2f} | {a / c:.0f}x |" for s, a, b, f, c in tk],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.record:
        out = ROOT / "bench" / "ENGINE.md"
        head = (
            "# Monte Carlo and token engines: path-steps per second\n\n"
            "Produced by `python bench/engine.py --record` (newest last). A path-step is one path "
            "advanced by one model day.\n\n"
        )
        body = out.read_text() if out.exists() else head
        out.write_text(body + "\n" + text)


if __name__ == "__main__":
    main()
