"""Prove a refactor changed no numbers: run ``python -m goldstress run`` at two git commits on the
same data and seed, then compare every value of ``summary.json`` and every column of every
results Parquet, ignoring only run ids, timestamps and what is derived from them.

    python bench/compare_runs.py BASE_COMMIT NEW_COMMIT --data DIR [--python PY] [--workdir DIR]
                                 [--rtol 1e-12] [--keep] [--env-base K=V] [--env-new K=V]
    python bench/compare_runs.py --compare-only BASE_RUN_DIR NEW_RUN_DIR [--rtol 1e-12]

Exit codes: 0 nothing differs beyond ``--rtol``; 1 differences; 2 a run failed / bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
"""Repository whose commits are exported (the folder containing ``bench/``)."""

# Keys (summary.json) and columns (Parquet) that are never compared, matched case-insensitively
# against the last component of the key path (``re.search``). Each is a run id, a timestamp, a
# wall-clock duration, or an MLflow / storage location derived from them. Everything else is
# compared; the keys actually skipped are printed with the report.
IGNORED_KEYS: dict[str, str] = {
    r"mlflow.*(run|uuid)|(^|_)mlflow_|(^|_)(parent|fit_window|full_sample)_run_id$": "MLflow run id",
    r"(^|_)run_ids?$": "run id (new per run: UTC time + random hex)",
    r"(^|_)(uuid|flow_run|task_run)(_id)?$": "Prefect / random ids",
    r"_at$|_at_utc$": "timestamp (created_at, generated_at, fetched_at, ...)",
    r"(^|_)(timestamp|datetime|time|ts|created|generated|modified|updated|started|finished|ended)$": "timestamp",
    r"(^|_)(duration|elapsed|wall|wallclock|runtime|took)(_|$)": "wall-clock duration",
    r"(^|_)(fit|train|run|wall|elapsed|compute)_(time|seconds|secs|s|ms)$": "wall-clock duration",
}
_IGNORED_RE = [(re.compile(p, re.IGNORECASE), why) for p, why in IGNORED_KEYS.items()]

# A key whose name looks like a location is ignored when its value holds the run id (the
# brief: "path or URL containing the run id"); other strings get the run id replaced.
LOCATION_KEY_RE = re.compile(r"(^|_)(url|uri|path|dir|file|location)s?$", re.IGNORECASE)

RUN_ID_PLACEHOLDER = "<RUN_ID>"
ROOT_PLACEHOLDER = "<RUN_ROOT>"

TELEMETRY_OFF = {
    # this checkout's switches (goldstress/telemetry.env), applied to both commits' runs
    **dict(
        line.split("=", 1)
        for line in (Path(__file__).resolve().parents[1] / "goldstress" / "telemetry.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ),
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}

# Inherited variables that would point a run at a shared store/server: dropped from the child env.
DROP_INHERITED = re.compile(
    r"^(GOLDSTRESS_.*|PYTHONPATH|PREFECT_API_URL|PREFECT_API_KEY|PREFECT_HOME|PREFECT_PROFILES_PATH|"
    r"MLFLOW_TRACKING_URI|MLFLOW_REGISTRY_URI|MLFLOW_ARTIFACT_URI|MLFLOW_EXPERIMENT_.*)$"
)


# --------------------------------------------------------------------------------------------
# running the two commits
# --------------------------------------------------------------------------------------------


def export_commit(commit: str, dest: Path) -> str:
    """Export ``commit`` of :data:`REPO` into ``dest`` with ``git archive | tar -x`` (touches
    neither the working tree nor the index). Returns the full commit hash."""
    full = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dest.mkdir(parents=True, exist_ok=False)
    archive = subprocess.Popen(["git", "-C", str(REPO), "archive", full], stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() != 0 or tar.returncode != 0:
        raise RuntimeError(f"git archive {full} | tar -x -C {dest} failed")
    return full


def run_env(root: Path, data: Path, overrides: list[str]) -> tuple[dict[str, str], list[str]]:
    """Environment of one run: isolated stores under ``root`` (the exported tree), the data folder,
    telemetry off; then ``KEY=VALUE`` overrides (``{root}`` and ``{data}`` are expanded).
    Returns ``(env, names of inherited variables dropped)``."""
    env = {k: v for k, v in os.environ.items() if not DROP_INHERITED.match(k)}
    dropped = sorted(k for k in os.environ if DROP_INHERITED.match(k))
    env.update(TELEMETRY_OFF)
    env.update(
        {
            "PYTHONPATH": str(root),
            "PREFECT_HOME": str(root / "prefect"),
            "GOLDSTRESS_DATA_DIR": str(data),
            "GOLDSTRESS_STORE_URL": str(root / "var" / "store"),
            "GOLDSTRESS_REPORT_URL": str(root / "reports"),
            "GOLDSTRESS_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'var' / 'mlflow.db'}",
            "GOLDSTRESS_MLFLOW_ARTIFACT_LOCATION": str(root / "var" / "mlartifacts"),
        }
    )
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"compare_runs: --env-* expects KEY=VALUE, got {item!r}")
        env[key] = value.replace("{root}", str(root)).replace("{data}", str(data))
    return env, dropped


_PREFLIGHT = r"""
import json, sys
try:
    from goldstress.settings import get_settings
    s = get_settings().model_dump(mode="json")
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"})); sys.exit(0)
import goldstress
print(json.dumps({"settings": s, "goldstress_file": goldstress.__file__}, default=str))
"""


def _flat_strings(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, value)`` of every string in a nested dict/list."""
    if isinstance(obj, dict):
        return [kv for k, v in obj.items() for kv in _flat_strings(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(obj, list):
        return [kv for i, v in enumerate(obj) for kv in _flat_strings(v, f"{prefix}[{i}]")]
    return [(prefix, obj)] if isinstance(obj, str) else []


def preflight(py: str, root: Path, env: dict[str, str], data: Path) -> list[str]:
    """Load the tree's settings in the run's environment and check that the code comes from the
    tree, the data folder is used and no location points into the source repository (which would
    mean a renamed setting was not redirected: pass ``--env-*``). Returns problems found."""
    out = subprocess.run([py, "-c", _PREFLIGHT], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return [f"could not read settings: {out.stderr.strip()[-500:]}"]
    if "error" in info:
        return [f"could not load goldstress.settings: {info['error']}"]
    problems = []
    if not Path(info["goldstress_file"]).resolve().is_relative_to(root.resolve()):
        problems.append(f"goldstress imported from {info['goldstress_file']}, not from the exported tree")
    strings = _flat_strings(info["settings"])
    if not any(str(data) in v for _, v in strings):
        problems.append(f"no setting holds the data folder {data} (data dir setting renamed? use --env-*)")
    repo = str(REPO)
    for key, v in strings:
        if repo in v and not v.startswith(str(root)):
            problems.append(f"setting {key} points into the source repository: {v} (use --env-*)")
    return problems


def run_commit(name: str, commit: str, workdir: Path, data: Path, py: str, overrides: list[str]) -> dict[str, Any]:
    """Export ``commit`` to ``workdir/name``, run ``PY -m goldstress run`` there with isolated
    stores, the log streamed to ``workdir/name.log``. Exits 2 (log tail printed) when the run
    fails. Returns ``{"root", "run_dir", "seconds", "commit"}``."""
    root = workdir / name
    full = export_commit(commit, root)
    env, dropped = run_env(root, data, overrides)
    print(f"[{name}] {full[:12]} exported to {root}")
    if dropped:
        print(f"[{name}] inherited variables not passed on: {', '.join(dropped)}")
    problems = preflight(py, root, env, data)
    for p in problems:
        print(f"[{name}] settings check: {p}", file=sys.stderr)
    if problems:
        sys.exit(2)
    log = workdir / f"{name}.log"
    print(f"[{name}] running {py} -m goldstress run (log: {log}) ...", flush=True)
    t0 = time.monotonic()
    with open(log, "wb") as fh:
        rc = subprocess.run(
            [py, "-m", "goldstress", "run"], cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT
        ).returncode
    seconds = time.monotonic() - t0
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print(f"[{name}] FAILED with exit code {rc} after {seconds:.1f} s; last lines of {log}:", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
        sys.exit(2)
    print(f"[{name}] done in {seconds:.1f} s")
    report_dir = Path(env.get("GOLDSTRESS_REPORT_URL", str(root / "reports")).removeprefix("file://"))
    return {"root": root, "run_dir": find_run_dir(report_dir, log), "seconds": seconds, "commit": full}


def find_run_dir(report_dir: Path, log: Path | None = None) -> Path:
    """The single run folder (holding ``summary.json``) under ``report_dir``; falls back to the
    ``summary: <path>`` line the CLI prints. Exits 2 when none or several are found."""
    runs = sorted(p for p in report_dir.iterdir() if (p / "summary.json").is_file()) if report_dir.is_dir() else []
    if len(runs) == 1:
        return runs[0]
    if not runs and log is not None:
        m = re.findall(r"summary:\s*(\S+summary\.json)", log.read_text(errors="replace"))
        if m and Path(m[-1].removeprefix("file://")).is_file():
            return Path(m[-1].removeprefix("file://")).parent
    print(
        f"compare_runs: expected one run folder with summary.json under {report_dir}, found {len(runs)}",
        file=sys.stderr,
    )
    sys.exit(2)


# --------------------------------------------------------------------------------------------
# comparing
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    """Tally of one comparison."""

    rtol: float
    numbers: int = 0
    identical: int = 0
    json_within: int = 0
    within: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    strings: int = 0
    normalised: list[str] = field(default_factory=list)
    parquet_cols: dict[str, int] = field(default_factory=dict)
    parquet_values: int = 0
    parquet_identical: int = 0
    parquet_within: int = 0


def ignore_reason(key: str) -> str | None:
    """Why ``key`` (a dict key or column name) is never compared, or None."""
    for rx, why in _IGNORED_RE:
        if rx.search(key):
            return why
    return None


def rel_diff(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)`` (0 when equal, inf when one is non-finite and they differ)."""
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


class Normaliser:
    """Replaces a run's id and its root folder in strings by placeholders."""

    def __init__(self, run_ids: set[str], roots: list[Path]):
        self.run_ids = sorted({r for r in run_ids if r}, key=len, reverse=True)
        prefixes = {str(p) for p in roots if len(p.parts) > 2}
        prefixes |= {str(Path(p).resolve()) for p in prefixes}
        self.roots = sorted(prefixes, key=len, reverse=True)

    def has_run_id(self, s: str) -> bool:
        """True when ``s`` contains the run id."""
        return any(r in s for r in self.run_ids)

    def __call__(self, s: str) -> str:
        for r in self.roots:
            s = s.replace(r, ROOT_PLACEHOLDER)
        for r in self.run_ids:
            s = s.replace(r, RUN_ID_PLACEHOLDER)
        return s


def _short(v: Any) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def compare_json(a: Any, b: Any, key: str, rep: Report, na: Normaliser, nb: Normaliser) -> None:
    """Compare two decoded JSON values recursively into ``rep`` (``key`` is the dotted path)."""
    leaf = re.sub(r"\[\d+\]$", "", key.rsplit(".", 1)[-1])
    why = ignore_reason(leaf) if key else None
    if (
        why is None
        and LOCATION_KEY_RE.search(leaf)
        and ((isinstance(a, str) and na.has_run_id(a)) or (isinstance(b, str) and nb.has_run_id(b)))
    ):
        why = "path/URL containing the run id"
    if why is not None:
        rep.ignored.setdefault(re.sub(r"\[\d+\]", "[]", key), why)
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            sub = f"{key}.{k}" if key else str(k)
            if k not in b:
                if ignore_reason(str(k)) is None:
                    rep.differ.append(f"{sub}: removed in new (base {_short(a[k])})")
            elif k not in a:
                if ignore_reason(str(k)) is None:
                    rep.differ.append(f"{sub}: added in new ({_short(b[k])})")
            else:
                compare_json(a[k], b[k], sub, rep, na, nb)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            rep.differ.append(f"{key}: list length {len(a)} -> {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            compare_json(x, y, f"{key}[{i}]", rep, na, nb)
        return
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        rep.numbers += 1
        if type(a) is not type(b) and a == b:
            rep.notes.append(f"{key}: type {type(a).__name__} -> {type(b).__name__}, value equal ({a!r})")
        fa, fb = float(a), float(b)
        if fa == fb or (math.isnan(fa) and math.isnan(fb)):
            rep.identical += 1
        else:
            r = rel_diff(fa, fb)
            line = f"{key}: {a!r} vs {b!r} (rel {r:.3g})"
            if r <= rep.rtol:
                rep.json_within += 1
                rep.within.append(line)
            else:
                rep.differ.append(line)
        return
    if isinstance(a, str) and isinstance(b, str):
        rep.strings += 1
        if na(a) != a or nb(b) != b:
            rep.normalised.append(re.sub(r"\[\d+\]", "[]", key))
        if na(a) != nb(b):
            rep.differ.append(f"{key}: {_short(na(a))} vs {_short(nb(b))}")
        return
    if type(a) is not type(b) or a != b:
        rep.differ.append(f"{key}: {_short(a)} vs {_short(b)}")


def _column_values(col: pa.ChunkedArray) -> np.ndarray:
    """A column as a numpy array (floats as float64, others as Python objects)."""
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
        return col.to_numpy(zero_copy_only=False)
    return np.array(col.to_pylist(), dtype=object)


def compare_column(
    name: str, ca: pa.ChunkedArray, cb: pa.ChunkedArray, label: str, rep: Report, na: Normaliser, nb: Normaliser
) -> None:
    """Compare one Parquet column value by value (nulls, NaN==NaN, floats within rtol)."""
    if ca.null_count or cb.null_count:
        ma, mb = ca.is_null().to_numpy(zero_copy_only=False), cb.is_null().to_numpy(zero_copy_only=False)
        if not np.array_equal(ma, mb):
            rep.differ.append(f"{label}:{name}: null positions differ ({int((ma != mb).sum())} rows)")
            return
    t = ca.type
    n = len(ca)
    rep.parquet_values += n
    if pa.types.is_floating(t):
        a = ca.to_numpy(zero_copy_only=False).astype(np.float64)
        b = cb.to_numpy(zero_copy_only=False).astype(np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        rep.parquet_identical += int(same.sum())
        if same.all():
            return
        idx = np.flatnonzero(~same)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(a[idx] - b[idx]) / np.maximum(np.abs(a[idx]), np.abs(b[idx]))
        rel = np.where(np.isfinite(a[idx]) & np.isfinite(b[idx]), rel, np.inf)
        ok = rel <= rep.rtol
        rep.parquet_within += int(ok.sum())
        if ok.any():
            rep.within.append(
                f"{label}:{name}: {int(ok.sum())} of {n} values within rtol (max rel {rel[ok].max():.3g})"
            )
        if (~ok).any():
            bad = idx[~ok]
            ex = ", ".join(f"row {i}: {float(a[i])!r} vs {float(b[i])!r}" for i in bad[:3])
            rep.differ.append(f"{label}:{name}: {len(bad)} of {n} values differ (max rel {rel[~ok].max():.3g}; {ex})")
        return
    a, b = _column_values(ca), _column_values(cb)
    if a.dtype == object:
        a = np.array([na(x) if isinstance(x, str) else x for x in a], dtype=object)
        b = np.array([nb(x) if isinstance(x, str) else x for x in b], dtype=object)
    same = (
        np.array([x == y or (x is None and y is None) for x, y in zip(a, b)], dtype=bool)
        if a.dtype == object
        else (a == b)
    )
    rep.parquet_identical += int(same.sum())
    if not same.all():
        bad = np.flatnonzero(~same)
        ex = ", ".join(f"row {i}: {_short(a[i])} vs {_short(b[i])}" for i in bad[:3])
        rep.differ.append(f"{label}:{name}: {len(bad)} of {n} values differ ({ex})")


def compare_parquet(run_a: Path, run_b: Path, rep: Report, na: Normaliser, nb: Normaliser) -> None:
    """Compare every ``*.parquet`` under two run folders: file set, columns, dtypes, row count,
    values per column."""
    files_a = {p.relative_to(run_a).as_posix() for p in run_a.rglob("*.parquet")}
    files_b = {p.relative_to(run_b).as_posix() for p in run_b.rglob("*.parquet")}
    for f in sorted(files_a - files_b):
        rep.differ.append(f"{f}: Parquet file missing in new")
    for f in sorted(files_b - files_a):
        rep.differ.append(f"{f}: Parquet file added in new")
    for f in sorted(files_a & files_b):
        ta, tb = pq.read_table(run_a / f), pq.read_table(run_b / f)
        if ta.column_names != tb.column_names:
            gone, new = set(ta.column_names) - set(tb.column_names), set(tb.column_names) - set(ta.column_names)
            rep.differ.append(
                f"{f}: columns differ (removed {sorted(gone)}, added {sorted(new)}"
                + (", order changed" if not gone and not new else "")
                + ")"
            )
        if ta.num_rows != tb.num_rows:
            rep.differ.append(f"{f}: {ta.num_rows} rows -> {tb.num_rows}")
            continue
        compared = 0
        for name in [c for c in ta.column_names if c in set(tb.column_names)]:
            why = ignore_reason(name)
            if why is not None:
                rep.ignored.setdefault(f"{f}:{name}", why)
                continue
            ca, cb = ta.column(name), tb.column(name)
            if ca.type != cb.type:
                rep.differ.append(f"{f}:{name}: dtype {ca.type} -> {cb.type}")
                continue
            compare_column(name, ca, cb, f, rep, na, nb)
            compared += 1
        rep.parquet_cols[f] = compared


def compare_runs(run_a: Path, run_b: Path, rtol: float, roots: tuple[Path, Path]) -> Report:
    """Compare two run folders (``summary.json`` and Parquet results) and return the tally."""
    rep = Report(rtol=rtol)
    sa = json.loads((run_a / "summary.json").read_text(encoding="utf-8"))
    sb = json.loads((run_b / "summary.json").read_text(encoding="utf-8"))
    na = Normaliser({run_a.name, str(sa.get("run_id", ""))}, [run_a, run_a.parent, roots[0]])
    nb = Normaliser({run_b.name, str(sb.get("run_id", ""))}, [run_b, run_b.parent, roots[1]])
    compare_json(sa, sb, "", rep, na, nb)
    compare_parquet(run_a, run_b, rep, na, nb)
    return rep


def print_report(rep: Report, run_a: Path, run_b: Path) -> int:
    """Print the compact report; return the exit code (0 when nothing differs beyond rtol)."""
    print(f"\n=== compare {run_a}\n        vs {run_b}  (rtol {rep.rtol:g})")
    print(
        f"summary.json: {rep.numbers} numbers compared, {rep.identical} identical, "
        f"{rep.json_within} within tolerance; {rep.strings} strings compared"
    )
    print(
        f"Parquet: {len(rep.parquet_cols)} files, {rep.parquet_values} values compared, "
        f"{rep.parquet_identical} identical, {rep.parquet_within} within tolerance"
    )
    for f, n in rep.parquet_cols.items():
        print(f"  {f}: {n} columns compared")
    if rep.normalised:
        keys = sorted(set(rep.normalised))
        print(
            f"compared after replacing the run id / run folder by {RUN_ID_PLACEHOLDER} / {ROOT_PLACEHOLDER}: "
            f"{len(rep.normalised)} strings ({', '.join(keys[:10])}{', ...' if len(keys) > 10 else ''})"
        )
    if rep.ignored:
        print(f"ignored ({len(rep.ignored)} keys/columns, see IGNORED_KEYS):")
        for k, why in rep.ignored.items():
            print(f"  {k}  [{why}]")
    for title, rows in (("notes", rep.notes), ("within tolerance", rep.within), ("DIFFERENCES", rep.differ)):
        if rows:
            print(f"{title} ({len(rows)}):")
            for r in rows[:200]:
                print(f"  {r}")
            if len(rows) > 200:
                print(f"  ... {len(rows) - 200} more")
    print(
        "RESULT: "
        + (
            "identical"
            if not rep.differ and not rep.within
            else "equal within tolerance"
            if not rep.differ
            else f"{len(rep.differ)} differences"
        )
    )
    return 1 if rep.differ else 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("base", nargs="?", help="base commit")
    p.add_argument("new", nargs="?", help="new commit")
    p.add_argument("--data", type=Path, help="data folder (GOLDSTRESS_DATA_DIR) for both runs")
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"), help="interpreter with the deps")
    p.add_argument("--workdir", type=Path, help="where trees, stores and logs go (default: a new temp dir)")
    p.add_argument("--rtol", type=float, default=1e-12, help="relative tolerance for floats (default 1e-12)")
    p.add_argument("--keep", action="store_true", help="keep the exported trees, stores and logs")
    p.add_argument(
        "--env-base",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra/overriding env var for the base run ({root}, {data} expanded); repeatable",
    )
    p.add_argument(
        "--env-new",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra/overriding env var for the new run ({root}, {data} expanded); repeatable",
    )
    p.add_argument(
        "--compare-only",
        nargs=2,
        type=Path,
        metavar=("BASE_RUN_DIR", "NEW_RUN_DIR"),
        help="compare two existing run folders (each holding summary.json); runs nothing",
    )
    args = p.parse_args(argv)

    if args.compare_only:
        run_a, run_b = (d.resolve() for d in args.compare_only)
        for d in (run_a, run_b):
            if not (d / "summary.json").is_file():
                p.error(f"{d} holds no summary.json")
        roots = (run_a.parent.parent, run_b.parent.parent)
        return print_report(compare_runs(run_a, run_b, args.rtol, roots), run_a, run_b)

    if not args.base or not args.new or args.data is None:
        p.error("BASE_COMMIT NEW_COMMIT and --data are required (or use --compare-only)")
    data = args.data.resolve()
    if not data.is_dir():
        p.error(f"--data {data} is not a folder")
    if not Path(args.python).exists():
        p.error(f"--python {args.python} does not exist")
    own_tmp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="compare_runs_")) if own_tmp else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    code = 2
    try:
        a = run_commit("base", args.base, workdir, data, args.python, args.env_base)
        b = run_commit("new", args.new, workdir, data, args.python, args.env_new)
        rep = compare_runs(a["run_dir"], b["run_dir"], args.rtol, (a["root"], b["root"]))
        print(f"\nbase {a['commit'][:12]}: {a['seconds']:.1f} s   new {b['commit'][:12]}: {b['seconds']:.1f} s")
        code = print_report(rep, a["run_dir"], b["run_dir"])
    finally:
        if args.keep or code != 0:
            print(f"kept: {workdir}")
        elif own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for name in ("base", "new"):
                shutil.rmtree(workdir / name, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
