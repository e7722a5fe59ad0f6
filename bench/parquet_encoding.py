"""Benchmark (not a test): CPU and size of encoding a run's per-path Monte Carlo table under the
product's Parquet options (``goldstress.io.storage._stream_encoding``: LZ4, byte-stream split
floats, dictionary pages for text only) against alternatives, on the real table a run wrote.

Every row group of the file is read into memory, then written whole to an in-memory buffer under
each option, the options taking turns, ``--rounds`` times; reported: the least CPU seconds of
the rounds (this process, ``time.process_time``), the file's size, the CPU seconds of reading it
back whole (least of the rounds) and whether the frame read back equals the original (NaN equal
to NaN).

Usage: ``python bench/parquet_encoding.py --results <report_url>/<run id>/results/mc_champion.parquet
[--rounds 3] [--record]``; ``--record`` appends a dated section to bench/PARQUET_ENCODING.md.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from goldstress.io.storage import _stream_encoding  # noqa: E402


def options(schema: pa.Schema) -> dict[str, dict[str, Any]]:
    """The writer options compared, by label; the product's first."""
    product = _stream_encoding(schema)
    text, split = product["use_dictionary"], product["column_encoding"]
    return {
        "product: LZ4, floats byte-stream split": product,
        "zstd, plain": {"compression": "zstd", "use_dictionary": text},
        "zstd, floats byte-stream split": {"compression": "zstd", "use_dictionary": text, "column_encoding": split},
        "LZ4, plain": {"compression": "lz4", "use_dictionary": text},
        "uncompressed, plain": {"compression": "none", "use_dictionary": text},
    }


def encode(groups: list[pa.Table], kwargs: dict[str, Any]) -> tuple[float, bytes]:
    """(CPU seconds, file bytes) of writing ``groups`` as row groups of one Parquet file."""
    buf = io.BytesIO()
    t0 = time.process_time()
    writer = pq.ParquetWriter(buf, groups[0].schema, **kwargs)
    for g in groups:
        writer.write_table(g)
    writer.close()
    return time.process_time() - t0, buf.getvalue()


def main() -> None:
    """Measure, print the markdown section and append it to bench/PARQUET_ENCODING.md with --record."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="a per-path Parquet file of a run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    f = pq.ParquetFile(args.results)
    groups = [f.read_row_group(i) for i in range(f.num_row_groups)]
    original = pa.concat_tables(groups).to_pandas()
    opts = options(groups[0].schema)
    write_s: dict[str, list[float]] = {k: [] for k in opts}
    read_s: dict[str, list[float]] = {k: [] for k in opts}
    size: dict[str, int] = {}
    equal: dict[str, bool] = {}
    for _ in range(args.rounds):
        for label, kwargs in opts.items():
            cpu, data = encode(groups, kwargs)
            write_s[label].append(cpu)
            size[label] = len(data)
            t0 = time.process_time()
            back = pq.read_table(io.BytesIO(data))
            read_s[label].append(time.process_time() - t0)
            if label not in equal:
                equal[label] = back.to_pandas().equals(original)
            del back, data
    rows, cols = original.shape
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit.stdout.strip()}, load {os.getloadavg()[0]:.2f}",
        "",
        f"{rows:,} rows x {cols} columns in {len(groups)} row groups ({args.results.name}, "
        f"{original.memory_usage(deep=True).sum() / 1e6:,.0f} MB in memory); least CPU seconds of "
        f"{args.rounds} rounds:",
        "",
        "| options | write CPU s | size MB | read CPU s | reads back equal |",
        "| --- | ---: | ---: | ---: | --- |",
        *[
            f"| {label} | {min(write_s[label]):.2f} | {size[label] / 1e6:,.1f} | {min(read_s[label]):.2f} | "
            f"{'yes' if equal[label] else 'NO'} |"
            for label in opts
        ],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.record:
        out = ROOT / "bench" / "PARQUET_ENCODING.md"
        head = "" if out.exists() else "# Parquet encoding of the per-path table (bench/parquet_encoding.py)\n\n"
        with out.open("a") as fh:
            fh.write(head + text + "\n")


if __name__ == "__main__":
    main()
