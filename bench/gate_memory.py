"""Peak memory of importing and gating a gold CSV of a given size (the data gate's memory bound).

Writes a synthetic file in the merged LBMA layout by repeating the real file's rows (dates and
prices as in the file, so the suites and the gate reject it after reading it whole, which is the
worst case for memory), then imports and gates it in a fresh subprocess and reports the peak RSS
(``resource.getrusage``, kB on Linux). Usage:

    python bench/gate_memory.py --data ../shared/data --mib 16 64 [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime
from pathlib import Path

GOLD = "gold_lbma_usd_daily_1968_2026_merged.csv"

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    from goldstress.settings import Settings
    from goldstress.io.snapshots import import_file
    from goldstress.io.datagate import DataRejected
    from goldstress.io.validation import ValidationFailed
    from tasks.curate import validate_and_promote
    root, path = sys.argv[1], sys.argv[2]
    s = Settings.model_validate({"storage": {"store_url": root + "/store", "report_url": root + "/rep"},
                                 "data": {"data_dir": root}})
    t0 = time.perf_counter(); outcome = "accepted"
    try:
        validate_and_promote.fn(import_file(Path(path), "gold", s), s)
    except (DataRejected, ValidationFailed) as exc:
        outcome = type(exc).__name__ + ": " + str(exc)[:160]
    print(json.dumps({"seconds": time.perf_counter() - t0,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "outcome": outcome}))
    """
)


def build(src: Path, dst: Path, mib: float) -> int:
    """Write ``dst``: the header of ``src`` then its rows repeated up to ``mib`` MiB; returns bytes."""
    lines = src.read_bytes().splitlines(keepends=True)
    header, rows = lines[0], b"".join(lines[1:])
    target = int(mib * 2**20)
    with open(dst, "wb") as f:
        f.write(header)
        n = len(header)
        while n + len(rows) <= target:
            f.write(rows)
            n += len(rows)
    return n


def measure(data_dir: Path, mib: float) -> dict:
    """Import and gate a ``mib`` MiB file in a subprocess; returns its measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / GOLD
        size = build(data_dir / GOLD, path, mib)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        out = subprocess.run([sys.executable, "-c", CHILD, tmp, str(path)], capture_output=True, text=True, env=env)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        row = json.loads(out.stdout.strip().splitlines()[-1])
        return {"file_mib": size / 2**20, **row}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--mib", type=float, nargs="+", default=[8, 32, 64])
    ap.add_argument("--record", action="store_true", help="append the table to bench/GATE_MEMORY.md")
    args = ap.parse_args()
    rows = [measure(args.data, m) for m in args.mib]
    load = os.getloadavg()[0]
    text = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores; 1-min load average {load:.1f} at the end (other work inflates seconds, not memory).",
        "",
        "| file (MiB) | peak RSS (MB) | RSS / file | seconds | outcome |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        text.append(
            f"| {r['file_mib']:.1f} | {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / r['file_mib']:.1f} | {r['seconds']:.1f} | {r['outcome'][:90]} |"
        )
    print("\n".join(text))
    if args.record:
        out = Path(__file__).with_name("GATE_MEMORY.md")
        old = (
            out.read_text()
            if out.exists()
            else "# Data gate: peak memory against file size\n\nProduced by `python bench/gate_memory.py --data <dir> --mib ... --record`. Newest first.\n"
        )
        head, _, rest = old.partition("\n## ")
        out.write_text(head.rstrip() + "\n\n" + "\n".join(text) + "\n" + ("\n## " + rest if rest else ""))


if __name__ == "__main__":
    main()
