"""Validation layer: Great Expectations suites -> readable reports -> gated promotion.

Plain functions: :func:`validate_frame`, :func:`write_report`, :func:`check_frame`, :func:`gate`,
:func:`promote` and :func:`load_curated`; a failed validation never touches the curated table.
Suites, reports and derived columns: docs/platform/validation.md.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import re
import threading
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from goldstress.catalog import Catalog
from goldstress.io import datagate
from goldstress.records import frame_sha256
from goldstress.settings import PROJECT_ROOT, Settings
from models.returns import log_returns
from models.units import TROY_OUNCE_G

__all__ = [
    "SUITES_DIR",
    "QUIRKS_PATH",
    "SUITE_NAMES",
    "FailedRow",
    "ExpectationFailure",
    "ValidationReport",
    "GateResult",
    "ValidationFailed",
    "load_suite_dict",
    "known_gaps_for",
    "add_derived_columns",
    "validate_frame",
    "write_report",
    "check_frame",
    "promote",
    "gate",
    "load_curated",
    "CuratedVersion",
    "curated_history",
    "curated_datasets",
    "rollback",
]

SUITES_DIR = PROJECT_ROOT / "expectations"
"""Folder of the committed GX suites (``<suite>.json``)."""

QUIRKS_PATH = PROJECT_ROOT / "goldstress" / "data_quirks.toml"
"""Known-quirks registry; its ``[[known_gap]]`` entries are the gaps validation accepts."""

SUITE_NAMES = ("raw_csv", "gold", "token")
MAX_ROWS_REPORTED = 20
"""Offending rows kept per failed expectation."""

DERIVED_COLUMNS = (
    "log_return",
    "gap_days",
    "unexplained_gap_days",
    "unchanged_run",
    "time_of_day_s",
    "usd_per_g_rel_error",
    "age_days",
)
_DATASET_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_TOKEN_DATASET_RE = re.compile(r"^token_([a-z0-9]+)$")
_RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": MAX_ROWS_REPORTED,
    "return_unexpected_index_query": False,
}


# ----------------------------------------------------------------------------------------------
# report model
# ----------------------------------------------------------------------------------------------
class FailedRow(BaseModel):
    """One offending row of a failed expectation.

    ``row``: for the raw view the file's 1-based data-row number (the ``row`` column, header
    not counted); for curated frames the 0-based position in the frame (its RangeIndex label).
    ``date``: the row's date as text (``YYYY-MM-DD`` for curated midnight dates).
    ``value``: the value in the expectation's column (a derived column such as ``log_return``
    where the expectation is on one). ``detail``: context such as the neighbouring price.
    """

    row: int | None = None
    date: str | None = None
    value: Any = None
    detail: str | None = None


class ExpectationFailure(BaseModel):
    """One failed expectation with up to 20 offending rows.

    ``unexpected_percent`` is in percent (0-100) as Great Expectations reports it; ``None``
    for table-level expectations, whose finding is in ``observed_value``. ``exception`` holds
    the message when GX could not evaluate the expectation (e.g. the column is missing).
    """

    expectation_type: str
    expectation_id: str | None = None
    column: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    exception: str | None = None
    notes: str | None = None
    rows: list[FailedRow] = Field(default_factory=list)


class ValidationReport(BaseModel):
    """Outcome of validating one frame against one suite.

    ``success`` is False when any expectation failed or ``problem`` is set (e.g. "file is
    empty", "not a CSV"). ``n_rows`` is the frame's row count, ``n_expectations`` how many
    expectations ran (the freshness check only runs with ``as_of``). ``evaluated_at`` is UTC.
    """

    dataset: str
    suite: str
    success: bool
    evaluated_at: datetime
    n_rows: int
    n_expectations: int = 0
    failures: list[ExpectationFailure] = Field(default_factory=list)
    problem: str | None = None
    row_reference: str = ""
    known_gaps: list[tuple[str, str]] = Field(default_factory=list)
    as_of: datetime | None = None
    max_age_days: float | None = None
    run_id: str | None = None

    def failed_expectations(self) -> list[str]:
        """Names ``type(column)`` of the failed expectations, in report order."""
        return [f"{f.expectation_type}({f.column})" if f.column else f.expectation_type for f in self.failures]

    def summary_line(self) -> str:
        """One line: verdict, dataset/suite, failed expectations with their first offending row."""
        head = f"{self.dataset}/{self.suite}: {self.n_rows} rows, {self.n_expectations} expectations"
        if self.success:
            return f"PASSED {head}"
        parts = []
        for f in self.failures:
            name = f"{f.expectation_type}({f.column})" if f.column else f.expectation_type
            if f.rows:
                r = f.rows[0]
                count = f.unexpected_count if f.unexpected_count is not None else len(f.rows)
                name += f" x{count} first row {r.row} {r.date} = {_fmt(r.value)}"
            elif f.exception:
                name += f" [error: {f.exception.splitlines()[0][:120]}]"
            elif f.observed_value is not None:
                name += f" observed {_fmt(f.observed_value)}"
            parts.append(name)
        problem = f" problem: {self.problem};" if self.problem else ""
        return f"FAILED {head};{problem} failed: " + "; ".join(parts or ["(none)"])

    def to_markdown(self) -> str:
        """Readable Markdown: verdict, a table naming each failed expectation with its offending
        rows, then per-expectation detail tables (row, date, value, detail) and their notes."""
        verdict = "PASSED" if self.success else "FAILED"
        lines = [
            f"# Validation report: dataset `{self.dataset}`, suite `{self.suite}`",
            "",
            f"**{verdict}**: {len(self.failures)} of {self.n_expectations} expectations failed "
            f"on {self.n_rows} rows (evaluated {self.evaluated_at.isoformat()}).",
            "",
        ]
        if self.problem:
            lines += [f"**Problem:** {_md(self.problem)}", ""]
        if self.run_id:
            lines += [f"Run: `{self.run_id}`", ""]
        if self.known_gaps:
            gaps = ", ".join(f"{a}..{b}" for a, b in self.known_gaps)
            lines += [f"Accepted known gaps: {gaps}", ""]
        if self.as_of is not None:
            lines += [f"Freshness: as of {self.as_of.isoformat()}, max age {self.max_age_days} days", ""]
        else:
            lines += [
                "Freshness: not checked (no as-of date: a historical file is not rejected for its age)",
                "",
            ]
        if not self.failures:
            return "\n".join(lines)
        lines += [
            f"Rows: {self.row_reference}",
            "",
            "| # | expectation | column | limits | unexpected | offending rows (row: date = value) |",
            "|---|---|---|---|---|---|",
        ]
        for i, f in enumerate(self.failures, 1):
            limits = ", ".join(f"{k}={_fmt(v)}" for k, v in f.kwargs.items() if k not in ("column", "column_set"))
            if "column_set" in f.kwargs:
                limits = f"column_set={_fmt(f.kwargs['column_set'])}"
            if f.unexpected_count is not None:
                unexpected = f"{f.unexpected_count} ({f.unexpected_percent or 0:.3g} %)"
            elif f.exception:
                unexpected = "error: " + f.exception.splitlines()[0][:120]
            else:
                unexpected = f"observed {_fmt(f.observed_value)}"
            shown = "; ".join(f"{r.row}: {r.date} = {_fmt(r.value)}" for r in f.rows[:5])
            if len(f.rows) > 5 or (f.unexpected_count or 0) > len(f.rows[:5]):
                shown += " ..."
            lines.append(
                f"| {i} | {f.expectation_type} | {_md(f.column or '')} | {_md(limits)} | "
                f"{_md(unexpected)} | {_md(shown)} |"
            )
        for i, f in enumerate(self.failures, 1):
            on = f" on `{f.column}`" if f.column else ""
            lines += ["", f"## {i}. {f.expectation_type}{on}", ""]
            if f.notes:
                lines += [f"> {_md(f.notes)}", ""]
            if f.exception:
                lines += ["```", f.exception.strip()[:2000], "```", ""]
            if f.rows:
                more = ""
                if f.unexpected_count is not None and f.unexpected_count > len(f.rows):
                    more = f" (first {len(f.rows)} of {f.unexpected_count})"
                lines += [f"Offending rows{more}:", ""]
                lines += ["| row | date | value | detail |", "|---|---|---|---|"]
                lines += [
                    f"| {r.row} | {_md(r.date or '')} | {_md(_fmt(r.value))} | {_md(r.detail or '')} |" for r in f.rows
                ]
            elif not f.exception:
                lines += [f"Observed: {_md(_fmt(f.observed_value))}"]
        return "\n".join(lines) + "\n"


class GateResult(BaseModel):
    """What :func:`gate` returns after a pass: the report, its URL and the curated table URL.

    Fields read as attributes or as keys (``result["curated_url"]``); an unknown key raises
    ``KeyError``.
    """

    report: ValidationReport
    report_url: str
    curated_url: str | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)


class ValidationFailed(Exception):
    """A frame failed its suite. ``.report`` is the :class:`ValidationReport`, ``.url`` where
    it was written; the message names the failed expectations, first offending rows and URL."""

    def __init__(self, report: ValidationReport, url: str | None = None) -> None:
        self.report = report
        self.url = url
        where = f"; report: {url}" if url else ""
        super().__init__(f"validation failed: {report.summary_line()}{where}")


# ----------------------------------------------------------------------------------------------
# suites and known gaps
# ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _suite_text(name: str) -> str:
    path = SUITES_DIR / f"{name}.json"
    return path.read_text(encoding="utf-8")


def load_suite_dict(name: str) -> dict[str, Any]:
    """Return a fresh copy of the committed suite ``expectations/<name>.json`` as a dict.

    Raises ``ValueError`` naming the suite when it is not one of :data:`SUITE_NAMES`.
    """
    if name not in SUITE_NAMES:
        raise ValueError(f"suite_name: unknown suite {name!r}; expected one of {SUITE_NAMES}")
    return json.loads(_suite_text(name))


def _parse_day(value: Any, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: cannot read {value!r} as a date") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{what}: {value!r} is not a date")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _normalise_gaps(known_gaps: Iterable[Any]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    out = []
    for i, gap in enumerate(known_gaps or ()):
        if isinstance(gap, Mapping):
            start, end = gap.get("start"), gap.get("end")
        else:
            try:
                start, end = gap
            except (TypeError, ValueError) as exc:
                raise ValueError(f"known_gaps[{i}]: expected (start, end) or {{start, end}}, got {gap!r}") from exc
        s = _parse_day(start, f"known_gaps[{i}].start").floor("D")
        e = _parse_day(end, f"known_gaps[{i}].end").floor("D")
        if e < s:
            raise ValueError(f"known_gaps[{i}]: end {e.date()} is before start {s.date()}")
        out.append((s, e))
    return sorted(out)


def known_gaps_for(file_name: str, quirks_path: Path | str = QUIRKS_PATH) -> tuple[tuple[str, str], ...]:
    """Known gaps declared for ``file_name`` in ``data_quirks.toml`` as ``(start, end)`` ISO
    dates, inclusive (the missing days): its ``[[known_gap]]`` entries, and its ``[[stale]]``
    entries with ``action = "drop_row"`` (rows the importer removes on purpose leave a gap that
    is explained by the registry). Empty when none is declared.

    Raises ``FileNotFoundError`` if the quirks file is missing, ``ValueError`` if an entry
    lacks ``start``/``end``.
    """
    with open(quirks_path, "rb") as f:
        quirks = tomllib.load(f)
    name = Path(str(file_name)).name
    out = []
    for i, q in enumerate(quirks.get("known_gap", [])):
        if q.get("file") != name:
            continue
        if "start" not in q or "end" not in q:
            raise ValueError(f"{quirks_path}: known_gap #{i} for {name} lacks start/end")
        out.append((str(q["start"]), str(q["end"])))
    for i, q in enumerate(quirks.get("stale", [])):
        if q.get("file") != name or q.get("action") != "drop_row":
            continue
        if "start" not in q or "end" not in q:
            raise ValueError(f"{quirks_path}: stale #{i} for {name} lacks start/end")
        out.append((str(q["start"]), str(q["end"])))
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# derived columns
# ----------------------------------------------------------------------------------------------
def _utc_dates(col: pd.Series) -> pd.Series:
    """Dates as tz-aware UTC timestamps for derivation only (unparseable -> NaT)."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(col.dtype):
        return col.dt.tz_localize("UTC")
    try:
        return pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
    except (TypeError, ValueError):
        return pd.Series(pd.NaT, index=col.index, dtype="datetime64[us, UTC]")


def add_derived_columns(
    df: pd.DataFrame,
    price_column: str,
    *,
    known_gaps: Iterable[Any] = (),
    as_of: Any = None,
    gold_units: bool = False,
) -> pd.DataFrame:
    """Return a copy of ``df`` (shape (n, k)) with the validation-only derived columns added.

    Rows are taken in the order given (a disordered frame is caught by the date checks).
    Added columns (float64, NaN where undefined, e.g. on the first row):

    - ``log_return``: ``ln(P_t / P_{t-1})`` of ``price_column`` (fraction, not percent);
    - ``gap_days``: calendar days since the previous row;
    - ``unexplained_gap_days``: ``gap_days`` minus the missing days (those strictly between the
      two rows) that fall inside a declared known gap ``[start, end]`` (inclusive);
    - ``unchanged_run``: number of consecutive rows ending here whose price equals the
      previous row's (0 when the price moved; 5 means 6 identical prices in a row);
    - ``time_of_day_s``: seconds after UTC midnight of ``date``;
    - ``usd_per_g_rel_error`` (``gold_units``): ``usd_per_g * 31.1034768 / usd_per_oz - 1``;
    - ``age_days`` (only when ``as_of`` is given): ``(as_of - date)`` in days.

    Missing ``date``/price columns give all-NaN derived columns (the schema checks report
    them). Raises ``ValueError`` for a malformed ``known_gaps`` entry or ``as_of``.
    """
    gaps = _normalise_gaps(known_gaps)
    out = df.copy()
    n = len(out)
    nan = np.full(n, np.nan)
    if "date" in out.columns:
        d = _utc_dates(out["date"])
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        day = (d.dt.floor("D") - epoch).dt.days.to_numpy(dtype=float, na_value=np.nan)
        tod = (d - d.dt.floor("D")).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    else:
        d, day, tod = None, nan, nan
    if price_column in out.columns:
        p = pd.to_numeric(out[price_column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    else:
        p = nan
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), np.nan)
        log_return = np.r_[np.nan, np.diff(log_p)] if n else nan
    gap = np.r_[np.nan, np.diff(day)] if n else nan
    covered = np.zeros(n)
    if n > 1 and gaps:
        prev = np.r_[np.nan, day[:-1]]
        lo, hi = prev + 1.0, day - 1.0  # missing days strictly between the two rows
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        for s, e in gaps:
            s_d, e_d = float((s - epoch).days), float((e - epoch).days)
            with np.errstate(invalid="ignore"):
                overlap = np.minimum(hi, e_d) - np.maximum(lo, s_d) + 1.0
            covered += np.where(np.isfinite(overlap) & (overlap > 0), overlap, 0.0)
    same = np.r_[False, p[1:] == p[:-1]] if n else np.zeros(0, bool)
    block = np.cumsum(~same)
    run = pd.Series(same.astype(float)).groupby(block).cumsum().to_numpy() if n else nan
    out["log_return"] = log_return
    out["gap_days"] = gap
    out["unexplained_gap_days"] = gap - covered
    out["unchanged_run"] = run
    out["time_of_day_s"] = tod
    if gold_units:
        if {"usd_per_g", "usd_per_oz"} <= set(out.columns):
            g = pd.to_numeric(out["usd_per_g"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                out["usd_per_g_rel_error"] = g * TROY_OUNCE_G / p - 1.0
        else:
            out["usd_per_g_rel_error"] = nan
    if as_of is not None:
        ref = _parse_day(as_of, "as_of")
        if d is None:
            out["age_days"] = nan
        else:
            out["age_days"] = (ref - d).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan) / 86400.0
    return out


# ----------------------------------------------------------------------------------------------
# Great Expectations runtime (lazy)
# ----------------------------------------------------------------------------------------------
_GX_LOCK = threading.Lock()
_GX_STATE: dict[str, Any] = {}


def _gx_batch_definition() -> Any:
    """The process-wide GX batch definition (ephemeral context, created on first use)."""
    if "bd" not in _GX_STATE:
        os.environ["GX_ANALYTICS_ENABLED"] = "false"
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_pandas("goldstress").add_dataframe_asset("frame")
        _GX_STATE["gx"] = gx
        _GX_STATE["context"] = context
        _GX_STATE["bd"] = asset.add_batch_definition_whole_dataframe("whole")
    return _GX_STATE["bd"]


def _run_suite(frame: pd.DataFrame, name: str, exps: list[dict], params: dict[str, Any]) -> list[dict]:
    """Validate ``frame`` against the expectation dicts; return GX result dicts (JSON form)."""
    if not exps:
        return []
    with _GX_LOCK:
        bd = _gx_batch_definition()
        suite = _GX_STATE["gx"].ExpectationSuite(name=name, expectations=copy.deepcopy(exps))
        batch = bd.get_batch(batch_parameters={"dataframe": frame})
        res = batch.validate(suite, result_format=_RESULT_FORMAT, expectation_parameters=params or None)
    return res.to_json_dict()["results"]


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return "" if v is None else str(v)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _jsonable(v: Any) -> Any:
    """Scalar -> JSON-friendly Python value (NaN/NaT -> None, timestamps -> ISO text)."""
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp, datetime, date)):
        if pd.isna(v):
            return None
        ts = pd.Timestamp(v)
        if ts.tzinfo is not None and ts == ts.floor("D"):
            return ts.strftime("%Y-%m-%d")
        return ts.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, (int, str, bool)):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _observed(v: Any) -> Any:
    """GX observed_value -> JSON-friendly (lists/dicts kept, scalars via _jsonable)."""
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return _jsonable(v)


def _exception_text(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    msgs = [
        v.get("exception_message") or "exception"
        for v in info.values()
        if isinstance(v, dict) and v.get("raised_exception", True)
    ]
    return "; ".join(dict.fromkeys(m for m in msgs if m)) or None


def _detail(work: pd.DataFrame, pos: int, column: str, price: str | None) -> str | None:
    """Context for a derived-column failure (neighbouring price or date)."""
    if pos <= 0 or pos >= len(work):
        prev = None
    else:
        prev = work.iloc[pos - 1]
    cur = work.iloc[pos]
    if column == "log_return" and price and prev is not None:
        before, now = _fmt(_jsonable(prev[price])), _fmt(_jsonable(cur[price]))
        return f"{price} {before} -> {now} (previous row {_jsonable(prev.get('date'))})"
    if column in ("gap_days", "unexplained_gap_days") and prev is not None:
        return f"{_fmt(cur['gap_days'])} calendar days since the previous row {_jsonable(prev.get('date'))}"
    if column == "unchanged_run" and price:
        repeats = int(cur["unchanged_run"])
        return f"{price} = {_fmt(_jsonable(cur[price]))} repeated {repeats} times in a row"
    if column == "usd_per_g_rel_error":
        oz = pd.to_numeric(pd.Series([cur.get("usd_per_oz")]), errors="coerce").iloc[0]
        g = _fmt(_jsonable(cur.get("usd_per_g")))
        return f"usd_per_g {g} vs usd_per_oz / {TROY_OUNCE_G} = {_fmt(float(oz) / TROY_OUNCE_G)}"
    return None


def _map_failure(result: dict, work: pd.DataFrame, row_col: str | None, price: str | None) -> ExpectationFailure:
    """One GX result dict -> ExpectationFailure with up to 20 offending rows of ``work``."""
    cfg = result.get("expectation_config", {})
    kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
    column = kwargs.get("column")
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    res = result.get("result") or {}
    rows: list[FailedRow] = []
    for idx in (res.get("unexpected_index_list") or [])[:MAX_ROWS_REPORTED]:
        if isinstance(idx, dict):  # only if unexpected_index_column_names were requested
            idx = idx.get("index", next(iter(idx.values())))
        pos = int(idx)
        if not 0 <= pos < len(work):
            continue
        rec = work.iloc[pos]
        row = _jsonable(rec[row_col]) if row_col and row_col in work.columns else pos
        try:
            row = int(row) if row is not None else None
        except (TypeError, ValueError):
            row = None
        value = _jsonable(rec[column]) if column in work.columns else None
        when = _jsonable(rec["date"]) if "date" in work.columns else None
        rows.append(
            FailedRow(
                row=row,
                date=None if when is None else str(when),
                value=value,
                detail=_detail(work, pos, column, price) if column in DERIVED_COLUMNS else None,
            )
        )
    notes = cfg.get("notes")
    if isinstance(notes, list):
        notes = " ".join(notes)
    return ExpectationFailure(
        expectation_type=cfg.get("type", "?"),
        expectation_id=cfg.get("id"),
        column=column,
        kwargs=kwargs,
        unexpected_count=res.get("unexpected_count"),
        unexpected_percent=res.get("unexpected_percent"),
        observed_value=_observed(res.get("observed_value")),
        exception=_exception_text(result.get("exception_info")),
        notes=notes,
        rows=rows,
    )


def validate_frame(
    df: pd.DataFrame,
    suite_name: str,
    *,
    dataset: str,
    known_gaps: Iterable[Any] = (),
    as_of: Any = None,
    max_age_days: float | None = None,
    problem: str | None = None,
    run_id: str | None = None,
) -> ValidationReport:
    """Validate ``df`` against ``expectations/<suite_name>.json`` and map failures to rows.

    Parameters
    ----------
    df : DataFrame, shape (n, k)
        ``raw_csv``: the raw view (columns row, date, price as strings); ``gold`` / ``token``:
        a curated frame of the data contract. Not modified.
    suite_name : "raw_csv" | "gold" | "token"
    dataset : str
        Dataset name for the report (``gold``, ``token_paxg``...); for ``token`` it must be
        ``token_<symbol>`` and every row's ``token`` must equal ``<SYMBOL>``.
    known_gaps : iterable of (start, end) or {"start", "end"}
        Inclusive missing-day ranges accepted beyond the gap limit (see :func:`known_gaps_for`).
    as_of, max_age_days :
        Both or neither. Given (online fetch): the newest row must be at most ``max_age_days``
        calendar days older than ``as_of``. Omitted: freshness is not checked, so a historical
        file a user points at is never rejected merely for being old.
    problem : str, optional
        Why the raw view is empty ("file is empty", "not a CSV"...); defaults to
        ``df.attrs["problem"]``. A problem makes the report fail.

    Returns a :class:`ValidationReport`; never raises because of bad data. The schema checks
    (``meta.goldstress.evaluate_on == "input"``) run on ``df`` itself (a tz-aware ``date``
    converted to unit "us", lossless); all other checks on a copy with
    :func:`add_derived_columns`. GX result format COMPLETE gives ``unexpected_index_list``.

    Raises ``ValueError`` for an unknown suite, a non-DataFrame ``df``, a bad ``dataset``,
    ``as_of`` without ``max_age_days`` (or vice versa), or malformed ``known_gaps``.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
    suite = load_suite_dict(suite_name)
    if not _DATASET_RE.match(str(dataset)):
        raise ValueError(f"dataset: {dataset!r} must match {_DATASET_RE.pattern}")
    if (as_of is None) != (max_age_days is None):
        raise ValueError("as_of and max_age_days: give both (online fetch freshness check) or neither")
    if max_age_days is not None and not max_age_days > 0:
        raise ValueError(f"max_age_days: {max_age_days!r} must be > 0")
    params: dict[str, Any] = {}
    if suite_name == "token":
        m = _TOKEN_DATASET_RE.match(dataset)
        if not m:
            raise ValueError(f"dataset: {dataset!r} must be token_<symbol> for the token suite")
        params["token_symbols"] = [m.group(1).upper()]
    if as_of is not None and max_age_days is not None:  # given together (checked above)
        params["max_age_days"] = float(max_age_days)
    gaps = _normalise_gaps(known_gaps)
    as_of_ts = _parse_day(as_of, "as_of") if as_of is not None else None
    problem = problem if problem is not None else df.attrs.get("problem")

    meta = (suite.get("meta") or {}).get("goldstress", {})
    price = meta.get("price_column")
    row_col = meta.get("row_column")
    inputs: list[dict] = []
    derived: list[dict] = []
    for exp in suite["expectations"]:
        flags = (exp.get("meta") or {}).get("goldstress", {})
        if flags.get("applies_when") == "as_of" and as_of is None:
            continue
        (inputs if flags.get("evaluate_on") == "input" else derived).append(exp)

    base = df.reset_index(drop=True).copy()
    if "date" in base.columns and isinstance(base["date"].dtype, pd.DatetimeTZDtype):
        base["date"] = base["date"].dt.as_unit("us")
    if suite_name == "raw_csv":
        work = base
    else:
        work = add_derived_columns(base, price, known_gaps=gaps, as_of=as_of_ts, gold_units=suite_name == "gold")
    evaluated_at = datetime.now(UTC)
    results = _run_suite(base, suite_name, inputs, params) + _run_suite(work, suite_name, derived, params)
    order = {e.get("id"): i for i, e in enumerate(suite["expectations"])}
    results.sort(key=lambda r: order.get(r.get("expectation_config", {}).get("id"), len(order)))
    failures = [_map_failure(r, work, row_col, price) for r in results if not r.get("success")]
    return ValidationReport(
        dataset=dataset,
        suite=suite_name,
        success=not failures and not problem,
        evaluated_at=evaluated_at,
        n_rows=len(df),
        n_expectations=len(results),
        failures=failures,
        problem=problem,
        row_reference=(
            "row = 1-based data-row number in the file (header not counted)"
            if row_col
            else "row = 0-based position in the frame (RangeIndex label)"
        ),
        known_gaps=[(s.strftime("%Y-%m-%d"), e.strftime("%Y-%m-%d")) for s, e in gaps],
        as_of=as_of_ts.to_pydatetime() if as_of_ts is not None else None,
        max_age_days=float(max_age_days) if max_age_days is not None else None,
        run_id=run_id,
    )


# ----------------------------------------------------------------------------------------------
# storage
# ----------------------------------------------------------------------------------------------
def _fs(url: str, settings: Settings) -> tuple[Any, str]:
    from goldstress.io.storage import filesystem

    return filesystem(url, settings)


def _is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _write_bytes(url: str, data: bytes, settings: Settings) -> None:
    """Write ``data`` to ``url`` atomically: local = temp file + fsync + os.replace; object
    stores (s3://, memory://) = a single put, which is atomic per object."""
    fs, path = _fs(url, settings)
    if _is_local(fs):
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    else:
        fs.pipe_file(path, data)


def _check_dataset(dataset: str) -> None:
    if not _DATASET_RE.match(str(dataset)):
        raise ValueError(f"dataset: {dataset!r} must match {_DATASET_RE.pattern}")


def write_report(report: ValidationReport, settings: Settings, run_id: str | None = None) -> str:
    """Write ``report.json`` and ``report.md`` under
    ``<settings.storage.store_url>/validation/<YYYYMMDDTHHMMSS.ffffffZ>_<dataset>/`` (fsspec; local or
    s3:// with ``settings.storage.storage_options``). The timestamp is ``report.evaluated_at`` with
    microseconds, so the raw and curated reports of one run do not collide.

    ``run_id`` (e.g. the Prefect flow-run id) is stored in the report when given.
    Returns the URL of ``report.md`` (``report.json`` sits beside it).
    Raises ``ValueError`` for an unsafe dataset name, ``OSError`` on storage failures.
    """
    _check_dataset(report.dataset)
    if run_id is not None:
        report = report.model_copy(update={"run_id": run_id})
    stamp = report.evaluated_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    catalog = Catalog.of(settings)
    _write_bytes(
        catalog.validation_report(stamp, report.dataset, "report.json"),
        report.model_dump_json(indent=2).encode(),
        settings,
    )
    md = catalog.validation_report(stamp, report.dataset, "report.md")
    _write_bytes(md, report.to_markdown().encode(), settings)
    return md


def check_frame(
    df: pd.DataFrame,
    suite_name: str,
    dataset: str,
    settings: Settings,
    *,
    known_gaps: Iterable[Any] = (),
    as_of: Any = None,
    max_age_days: float | None = None,
    problem: str | None = None,
    run_id: str | None = None,
) -> tuple[ValidationReport, str]:
    """Validate, always write the report, and raise :class:`ValidationFailed` if it failed.

    Use it for the raw view (which is never promoted). ``as_of`` without ``max_age_days``
    takes ``settings.data.freshness_max_age_days``. Returns ``(report, report_url)`` on success.
    Raises ``ValidationFailed`` (carrying the report and its URL) or ``ValueError`` (see
    :func:`validate_frame`).
    """
    if as_of is not None and max_age_days is None:
        max_age_days = settings.data.freshness_max_age_days
    report = validate_frame(
        df,
        suite_name,
        dataset=dataset,
        known_gaps=known_gaps,
        as_of=as_of,
        max_age_days=max_age_days,
        problem=problem,
        run_id=run_id,
    )
    url = write_report(report, settings, run_id=run_id)
    if not report.success:
        raise ValidationFailed(report, url)
    return report, url


def promote(df: pd.DataFrame, dataset: str, settings: Settings) -> str:
    """Write ``df`` as ``curated/<dataset>.parquet`` (atomically replacing the previous good
    table) and a history copy ``curated/history/<dataset>/<YYYYMMDDTHHMMSSZ>_<sha16>.parquet``
    (sha16 = first 16 hex digits of the Parquet bytes' SHA-256). History is written first, so
    the curated table is never newer than its history.

    Call it through :func:`gate` (it does not validate). The index is dropped (curated frames
    have a default RangeIndex). Returns the curated table's URL. Raises ``ValueError`` for an
    unsafe dataset name, ``OSError`` on storage failures.
    """
    _check_dataset(dataset)
    buf = io.BytesIO()
    df.reset_index(drop=True).to_parquet(buf, index=False)
    data = buf.getvalue()
    sha16 = hashlib.sha256(data).hexdigest()[:16]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    catalog = Catalog.of(settings)
    _write_bytes(catalog.curated_version(dataset, stamp, sha16), data, settings)
    curated = catalog.curated(dataset)
    _write_bytes(curated, data, settings)
    return curated


def gate(
    df: pd.DataFrame,
    suite_name: str,
    dataset: str,
    settings: Settings,
    *,
    known_gaps: Iterable[Any] = (),
    as_of: Any = None,
    max_age_days: float | None = None,
    run_id: str | None = None,
    origin: str | None = None,
) -> GateResult:
    """Check a curated frame against its suite and the data gate, write the report, then
    promote it only if both passed.

    After the suite the gate (:mod:`goldstress.io.datagate`) runs: agreement with the last good
    table of ``dataset`` (level, date shift, closes, shrink) and the calendar. ``origin`` names the file
    in messages (default: the file part of the frame's first ``source``).
    Raises :class:`goldstress.io.datagate.DataRejected` (one line naming the file and check; a
    report is written, its URL in ``.url``) or :class:`ValidationFailed` (report written); either
    way ``curated/<dataset>.parquet`` and its history are untouched. On success returns a
    :class:`GateResult`. ``suite_name`` must be ``gold`` or ``token``; ``ValueError`` for the
    raw suite or bad arguments (see :func:`validate_frame`).
    """
    if suite_name == "raw_csv":
        raise ValueError("suite_name: the raw view is never promoted; use check_frame for raw_csv")
    _check_dataset(dataset)
    if origin is None:
        first = str(df["source"].iloc[0]) if "source" in df.columns and len(df) else dataset
        origin = first.split(":", 1)[-1]
    report, url = check_frame(
        df,
        suite_name,
        dataset,
        settings,
        known_gaps=known_gaps,
        as_of=as_of,
        max_age_days=max_age_days,
        run_id=run_id,
    )
    try:
        try:
            previous = load_curated(dataset, settings)
        except FileNotFoundError:
            previous = None
        datagate.check_against_last_good(df, previous, dataset, origin, settings)
        new_oz = _gold_per_oz(df, dataset, settings)
        if new_oz is not None:
            datagate.check_across_sources(new_oz, _other_sources_per_oz(dataset, settings), origin, settings)
        datagate.check_calendar(df, origin, settings)
    except datagate.DataRejected as exc:
        rejected = ValidationReport(
            dataset=dataset,
            suite=suite_name,
            success=False,
            evaluated_at=datetime.now(UTC),
            n_rows=len(df),
            problem=str(exc),
            run_id=run_id,
        )
        exc.url = write_report(rejected, settings, run_id=run_id)
        raise
    return GateResult(report=report, report_url=url, curated_url=promote(df, dataset, settings))


def _gold_per_oz(frame: pd.DataFrame, dataset: str, settings: Settings) -> pd.Series | None:
    """USD per troy ounce of gold by UTC day: the gold fix, or a token's close divided by the
    ounces one token represents (``settings.data.token_oz_per_token``); None for a token whose
    ounces are not configured."""
    if dataset == "gold":
        return datagate.gold_series(frame, "usd_per_oz", 1.0)
    oz = settings.data.token_oz_per_token.get(dataset.removeprefix("token_"))
    return None if not oz else datagate.gold_series(frame, "close_usd", oz)


def _other_sources_per_oz(dataset: str, settings: Settings) -> dict[str, pd.Series]:
    """The last good curated tables of the other gold-price datasets, per troy ounce."""
    out: dict[str, pd.Series] = {}
    names = ["gold", *(f"token_{s}" for s in settings.data.token_oz_per_token)]
    for name in names:
        if name == dataset:
            continue
        try:
            frame = load_curated(name, settings)
        except FileNotFoundError:
            continue
        series = _gold_per_oz(frame, name, settings)
        if series is not None:
            out[name] = series
    return out


def load_curated(dataset: str, settings: Settings) -> pd.DataFrame:
    """Read the last good curated table ``<store_url>/curated/<dataset>.parquet``.

    Returns the frame (shape (n, k), curated schema of the data contract). Raises
    ``FileNotFoundError`` naming the dataset and URL when nothing was promoted yet, and
    ``ValueError`` for an unsafe dataset name.
    """
    _check_dataset(dataset)
    url = Catalog.of(settings).curated(dataset)
    fs, path = _fs(url, settings)
    if not fs.exists(path):
        raise FileNotFoundError(
            f"no curated table for dataset {dataset!r} at {url}: nothing has passed validation "
            "yet (run the validate flow first)"
        )
    with fs.open(path, "rb") as f:
        return pd.read_parquet(f)


class CuratedVersion(BaseModel):
    """One promoted version of a dataset: ``version`` (``<YYYYMMDDTHHMMSSZ>_<sha16>``), its URL,
    its size in bytes and whether it is the current curated table (same sha16)."""

    dataset: str
    version: str
    url: str
    n_bytes: int
    current: bool


def curated_history(dataset: str, settings: Settings) -> list[CuratedVersion]:
    """The promoted versions of ``dataset``, oldest first (empty when none). Raises
    ``ValueError`` for an unsafe dataset name, ``OSError`` on storage failures."""
    _check_dataset(dataset)
    catalog = Catalog.of(settings)
    fs, folder = _fs(catalog.curated_history(dataset), settings)
    if not fs.isdir(folder):
        return []
    current = ""
    fs_cur, cur_path = _fs(catalog.curated(dataset), settings)
    if fs_cur.exists(cur_path):
        current = hashlib.sha256(fs_cur.cat_file(cur_path)).hexdigest()[:16]
    out = []
    for info in sorted(fs.ls(folder, detail=True), key=lambda i: str(i["name"])):
        name = str(info["name"]).rsplit("/", 1)[-1]
        if not name.endswith(".parquet") or name.startswith("."):
            continue
        version = name[: -len(".parquet")]
        out.append(
            CuratedVersion(
                dataset=dataset,
                version=version,
                url=fs.unstrip_protocol(str(info["name"])),
                n_bytes=int(info.get("size") or 0),
                current=version.rsplit("_", 1)[-1] == current,
            )
        )
    return out


def curated_datasets(settings: Settings) -> list[str]:
    """Datasets that have a promoted version, sorted. Raises ``OSError`` on storage failures."""
    fs, folder = _fs(Catalog.of(settings).curated_history("x").rsplit("/", 1)[0], settings)
    if not fs.isdir(folder):
        return []
    return sorted(str(n).rsplit("/", 1)[-1] for n in fs.ls(folder, detail=False) if fs.isdir(n))


def rollback(dataset: str, settings: Settings, version: str | None = None) -> CuratedVersion:
    """Make version ``version`` of ``dataset`` (default: the newest one older than the current
    table) the curated table again; its history is kept. Returns the restored version.

    Raises ``LookupError`` naming the dataset when the version is unknown or there is nothing
    older to return to, ``ValueError`` for an unsafe dataset name, ``OSError`` on storage failures.
    """
    versions = curated_history(dataset, settings)
    if not versions:
        raise LookupError(f"dataset {dataset!r} has no promoted version to roll back to")
    if version is None:
        idx = [i for i, v in enumerate(versions) if v.current]
        if not idx or idx[-1] == 0:
            raise LookupError(f"dataset {dataset!r}: no version older than the current table")
        chosen = versions[idx[-1] - 1]
    else:
        found = [v for v in versions if v.version == version]
        if not found:
            known = ", ".join(v.version for v in versions)
            raise LookupError(f"dataset {dataset!r} has no version {version!r}; known: {known}")
        chosen = found[0]
    fs, path = _fs(chosen.url, settings)
    _write_bytes(Catalog.of(settings).curated(dataset), fs.cat_file(path), settings)
    return chosen.model_copy(update={"current": True})


def curated_gold_returns(settings: Settings) -> tuple[pd.Series, dict[str, Any]]:
    """Daily log returns of the last good curated gold table, and their lineage.

    Returns ``(returns, meta)``: returns date-indexed (UTC), one fewer than the prices; meta with
    the first/last date, count, last price (USD/oz), sources and the sha256 fingerprint of the
    (date, usd_per_oz) pairs. Raises ``FileNotFoundError`` when no gold table was promoted yet.
    """
    gold = load_curated("gold", settings)
    prices = pd.Series(gold["usd_per_oz"].to_numpy(), index=pd.DatetimeIndex(gold["date"]), name="usd_per_oz")
    returns = log_returns(prices)
    meta = {
        "data_first_date": str(prices.index[0].date()),
        "data_last_date": str(prices.index[-1].date()),
        "n_returns": int(returns.size),
        "data_sha256": frame_sha256(gold, "usd_per_oz"),
        "last_usd_per_oz": float(prices.iloc[-1]),
        "data_source": ";".join(sorted(set(gold["source"].astype(str).str.split(":").str[0]))),
    }
    return returns, meta


def suite_for(dataset: str) -> str:
    """Curated suite name for a dataset: ``gold`` or ``token``."""
    return "gold" if dataset == "gold" else "token"
