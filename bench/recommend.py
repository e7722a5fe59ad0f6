"""Benchmark of the liquidity recommendations (not a test): per reserve-backed token, the token
re-runs of the search and of its out-of-sample check, the path-days they cover and the CPU seconds
they take, at a given number of search paths (as many again out of sample).

Usage: ``python bench/recommend.py --manifest RUN/manifest.json --champion-db PATH [--paths N]
[--json OUT]``: the token specs of a run's manifest (calibrated premia included) and the champion
registered in an MLflow SQLite file (without it: the GJR-GARCH parameters of bench/engine.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from goldstress.io.champion import Champion  # noqa: E402
from goldstress.settings import Settings  # noqa: E402
from models.token.reserve_backed import ReserveBackedToken  # noqa: E402
from models.token.spec import ReserveBackedTokenSpec, load_token_spec, parse_token_spec  # noqa: E402
from tasks import recommend as rec  # noqa: E402


def _champion(db: str | None) -> Champion:
    if db is None:
        from bench.engine import _fit

        return Champion(name="bench", fit=_fit(), innovations="fhs", tail=None, meta={})
    import mlflow

    from goldstress.io.champion import load_champion

    mlflow.set_tracking_uri(f"sqlite:///{Path(db).resolve()}")
    return load_champion("goldstress-gold-returns", "champion")[0]


def _specs(manifest: str | None) -> list[Any]:
    if manifest is None:
        return [load_token_spec(ROOT / "specs" / f"{s}.toml") for s in ("gram", "paxg", "xaut", "dgx")]
    data = json.loads(Path(manifest).read_text())
    return [parse_token_spec(d, where=f"{manifest} token_specs") for d in data["token_specs"]]


def main() -> None:
    """Time the recommendations per token; print a table and optionally write the results as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=2_000)
    ap.add_argument("--manifest", default=None)
    ap.add_argument("--champion-db", default=None)
    ap.add_argument("--first-day", default="2026-08-17")
    ap.add_argument("--p0", type=float, default=4405.8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    base = Settings()
    settings = base.model_copy(update={"liquidity": base.liquidity.model_copy(update={"recommend_paths": args.paths})})
    specs = [s for s in _specs(args.manifest) if isinstance(s, ReserveBackedTokenSpec)]
    champion = _champion(args.champion_db)
    calls: list[int] = []
    run = ReserveBackedToken.run

    def counted(self: ReserveBackedToken, gold: np.ndarray, **kw: Any) -> Any:
        calls.append(int(gold.shape[0]) * (int(gold.shape[1]) - 1))
        return run(self, gold, **kw)

    ReserveBackedToken.run = counted  # type: ignore[method-assign]
    load0 = os.getloadavg()[0]
    t = time.process_time()
    scenario, gold_in, gold_out, calendar = rec.recommend_inputs(champion, args.p0, args.first_day, settings)
    t_paths = time.process_time() - t
    print(f"gold paths: {2 * args.paths:,} x {len(calendar) - 1} calendar days, {t_paths:.2f} s CPU")
    rec.recommend_for_spec(specs[0], gold_in[:10], gold_out[:10], calendar, settings)  # compile
    out, total = {}, 0.0
    print("| token | re-runs | M path-days | CPU s |")
    print("| --- | ---: | ---: | ---: |")
    for spec in specs:
        calls.clear()
        t = time.process_time()
        out[spec.symbol] = rec.recommend_for_spec(spec, gold_in, gold_out, calendar, settings)
        dt = time.process_time() - t
        total += dt
        print(f"| {spec.symbol} | {len(calls)} | {sum(calls) / 1e6:.1f} | {dt:.2f} |")
    print(f"total {total:.2f} s CPU (+ {t_paths:.2f} s gold paths); 1-min load {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rec.recommend_result(scenario, out), default=str, indent=1))


if __name__ == "__main__":
    main()
