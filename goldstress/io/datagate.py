"""Data gate: checks a new table must pass beside the GX suites before it replaces the last good one.

Size before reading, OHLC consistency of the raw bars, calendar (no future dates, no LBMA
weekend rows) and agreement with the last good curated table (level, shift, closes, shrink).
Each failure raises :class:`DataRejected`, one line naming the file, the row or field and the check.
Checks and limits: docs/platform/validation.md.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from goldstress.settings import Settings

__all__ = [
    "DataRejected",
    "check_size",
    "check_ohlc",
    "check_truncation",
    "check_calendar",
    "check_against_last_good",
    "check_across_sources",
    "gold_series",
    "price_column",
]

_OZ_G = 31.1034768
_FACTORS = (
    (1 / _OZ_G, "USD per gram?"),
    (_OZ_G, "USD per ounce where grams were expected?"),
    (1 / 1000.0, "thousands?"),
    (1000.0, "per kilogram or a misplaced decimal point?"),
    (0.01, "dollars read as cents?"),
    (100.0, "cents read as dollars?"),
)


class DataRejected(ValueError):
    """An input failed a gate check. ``file``: the file or snapshot name; ``check``: the check's
    name (e.g. ``"size"``, ``"level_vs_last_good"``); ``detail``: what was found, with the row
    or field. ``str()`` is one line: ``<file>: <check>: <detail>``. ``url`` is set once a report
    was written for it."""

    def __init__(self, file: str, check: str, detail: str) -> None:
        self.file = file
        self.check = check
        self.detail = detail
        self.url: str | None = None
        super().__init__(file, check, detail)

    def __str__(self) -> str:
        where = f"; report: {self.url}" if self.url else ""
        return f"rejected {self.file}: check {self.check}: {self.detail}{where}"


def price_column(dataset: str) -> str:
    """Close column of a curated dataset: ``usd_per_oz`` for ``gold``, else ``close_usd``."""
    return "usd_per_oz" if dataset == "gold" else "close_usd"


def check_size(n_bytes: int, file: str, settings: Settings) -> None:
    """Refuse a file of ``n_bytes`` bytes above ``settings.data.max_file_bytes`` (call it before
    reading). Raises :class:`DataRejected` (check ``size``) naming both sizes in MiB."""
    limit = settings.data.max_file_bytes
    if n_bytes > limit:
        raise DataRejected(
            file,
            "size",
            f"{n_bytes:,} bytes ({n_bytes / 2**20:,.1f} MiB) exceeds the limit of {limit:,} bytes "
            f"({limit / 2**20:,.1f} MiB, setting data.max_file_bytes); refused",
        )


def check_ohlc(data: bytes, file: str) -> None:
    """OHLC consistency of a raw CSV with open/high/low/close columns (any ``_usd``/``_usdt``
    suffix): on every row ``low <= open, close <= high`` and ``low > 0``. Files without those
    columns, and rows with a blank field, are left to the suites. Raises
    :class:`DataRejected` (check ``ohlc``) naming the first bad 1-based data row, its date and values.
    """
    try:
        head = data.split(b"\n", 1)[0].decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return
    cols = [c.strip() for c in head.split(",")]
    names: dict[str, str] = {}
    for part in ("open", "high", "low", "close"):
        found = [c for c in cols if c == part or c.startswith(part + "_")]
        if not found:
            return
        names[part] = found[0]
    try:
        raw = pd.read_csv(io.BytesIO(data), usecols=["date", *names.values()], dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError):
        return
    num = {k: pd.to_numeric(raw[v], errors="coerce").to_numpy(dtype=float) for k, v in names.items()}
    o, h, lo, c = num["open"], num["high"], num["low"], num["close"]
    with np.errstate(invalid="ignore"):
        bad = (lo > o) | (lo > c) | (o > h) | (c > h) | (lo <= 0)
    hits = np.flatnonzero(bad)
    if hits.size:
        i = int(hits[0])
        raise DataRejected(
            file,
            "ohlc",
            f"row {i + 1} ({raw['date'].iloc[i]}): open={o[i]:g} high={h[i]:g} low={lo[i]:g} close={c[i]:g} "
            f"breaks low <= open, close <= high, low > 0 ({hits.size} row(s) in all)",
        )


def check_truncation(data: bytes, file: str) -> None:
    """Refuse CSV bytes that look cut short: a last row without a line end, or with fewer fields
    than the header (a download or copy that stopped mid-row). Raises :class:`DataRejected`
    (check ``truncated``) naming the 1-based data row. Every complete CSV writer (pandas, Excel,
    the sources in the data folder) ends the last row with a line break."""
    body = data.rstrip(b"\r\n")
    if not body:
        return
    lines = body.split(b"\n")
    n_rows = len(lines) - 1
    if not data.endswith((b"\n", b"\r")):
        raise DataRejected(
            file,
            "truncated",
            f"the last row (data row {n_rows}) ends without a line break: the file looks cut short; "
            "fetch or copy it again (a complete file ends with a newline)",
        )
    header_fields = lines[0].count(b",")
    last_fields = lines[-1].count(b",")
    if n_rows >= 1 and last_fields < header_fields:
        raise DataRejected(
            file,
            "truncated",
            f"the last row (data row {n_rows}) has {last_fields + 1} fields, the header {header_fields + 1}: "
            "the file looks cut short",
        )


def _days(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["date"], utc=True).dt.floor("D")


def check_calendar(frame: pd.DataFrame, file: str, settings: Settings, *, today: Any = None) -> None:
    """Calendar of a curated frame (``date`` column, shape (n, k)): no row dated after today (UTC,
    or ``today``) + ``settings.data.gate_future_days``; a series whose ``source`` starts with
    ``lbma`` has no Saturday or Sunday rows. Raises :class:`DataRejected` (check ``future_date``
    or ``weekend_row``) naming the first offending 0-based row and its date."""
    if frame.empty:
        return
    days = _days(frame)
    now = pd.Timestamp(today if today is not None else datetime.now(UTC))
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    limit = now.floor("D") + pd.Timedelta(days=settings.data.gate_future_days)
    late = np.flatnonzero((days > limit).to_numpy())
    if late.size:
        i = int(late[0])
        raise DataRejected(
            file,
            "future_date",
            f"row {i} dated {days.iloc[i].date()} is after {limit.date()} (today UTC + "
            f"{settings.data.gate_future_days} day); {late.size} such row(s)",
        )
    if "source" in frame.columns and frame["source"].astype(str).str.startswith("lbma").all():
        weekend = np.flatnonzero((days.dt.day_of_week >= 5).to_numpy())
        if weekend.size:
            i = int(weekend[0])
            raise DataRejected(
                file,
                "weekend_row",
                f"row {i} dated {days.iloc[i].date()} ({days.iloc[i].day_name()}) in an LBMA series, "
                f"which fixes on London business days only; {weekend.size} such row(s)",
            )


def _cause(ratio: float) -> str:
    for factor, cause in _FACTORS:
        if abs(math.log(ratio / factor)) < 0.05:
            shown = f"1/{1 / factor:.4g}" if factor < 1 else f"{factor:.4g}"
            return f"a factor of {shown}: {cause}"
    return "unit or series changed?"


def _log_diff(new: pd.Series, old: pd.Series, lag_days: int = 0) -> np.ndarray:
    """ln(new/old) on shared days, with the new dates moved back by ``lag_days``."""
    moved = new.copy()
    moved.index = moved.index - pd.Timedelta(days=lag_days)
    both = pd.concat([moved.rename("new"), old.rename("old")], axis=1, join="inner").dropna()
    both = both[(both["new"] > 0) & (both["old"] > 0)]
    return np.log(both["new"].to_numpy() / both["old"].to_numpy())


def gold_series(frame: pd.DataFrame, col: str, oz_per_unit: float) -> pd.Series:
    """Column ``col`` of a curated frame divided by ``oz_per_unit`` (troy ounces one quoted unit
    holds), indexed by UTC day: USD per troy ounce of gold. Shape (n,), duplicates keep the last."""
    return _series(frame, col) / oz_per_unit


def _series(frame: pd.DataFrame, col: str) -> pd.Series:
    s = pd.Series(pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float), index=_days(frame))
    return s[~s.index.duplicated(keep="last")]


def check_against_last_good(
    new: pd.DataFrame, old: pd.DataFrame | None, dataset: str, file: str, settings: Settings
) -> None:
    """Compare a new curated frame with the last good table of the same dataset (both shape
    (n, k), ``date`` and the dataset's :func:`price_column`, USD). ``old`` None: nothing to compare.

    In order, raises :class:`DataRejected` with check:

    - ``level_vs_last_good``: median new/old close ratio on shared days outside
      ``settings.data.gate_level_ratio`` (names the likely unit error, e.g. 1/31.1: USD per gram);
    - ``date_shift``: new dates moved by one day agree far better (half the median gap or less)
      than as given, while as given they miss the tolerance;
    - ``agreement_vs_last_good``: median |ln(new/old)| above ``gate_overlap_median_log``, or more
      than ``gate_overlap_far_share`` of shared days beyond ``gate_overlap_far_log``;
    - ``shrink``: fewer rows or an earlier last date than the last good table, unless
      ``settings.data.gate_allow_shrink``.
    """
    if old is None or old.empty:
        return
    col = price_column(dataset)
    cfg = settings.data
    new_s, old_s = _series(new, col), _series(old, col)
    d0 = _log_diff(new_s, old_s)
    if d0.size:
        ratio = float(np.exp(np.median(d0)))
        lo, hi = cfg.gate_level_ratio
        if not lo <= ratio <= hi:
            raise DataRejected(
                file,
                "level_vs_last_good",
                f"{col}: median ratio new/old {ratio:.4g} on {d0.size} shared days is outside "
                f"[{lo}, {hi}]: {_cause(ratio)}",
            )
        med0 = float(np.median(np.abs(d0)))
        far0 = float(np.mean(np.abs(d0) > cfg.gate_overlap_far_log))
        off = med0 > cfg.gate_overlap_median_log or far0 > cfg.gate_overlap_far_share
        if off:
            for lag in (1, -1):
                dk = _log_diff(new_s, old_s, lag)
                if dk.size >= max(2, d0.size // 2) and float(np.median(np.abs(dk))) <= med0 / 2:
                    raise DataRejected(
                        file,
                        "date_shift",
                        f"{col}: every date looks moved by {lag:+d} day: median |ln(new/old)| "
                        f"{float(np.median(np.abs(dk))):.3%} at lag {lag} against {med0:.3%} as dated",
                    )
            first_far = int(np.argmax(np.abs(d0) > cfg.gate_overlap_far_log)) if far0 else None
            shared = pd.concat([new_s.rename("n"), old_s.rename("o")], axis=1, join="inner").dropna()
            shared = shared[(shared["n"] > 0) & (shared["o"] > 0)]
            where = f"; first far-off day {shared.index[first_far].date()}" if first_far is not None else ""
            raise DataRejected(
                file,
                "agreement_vs_last_good",
                f"{col}: median |ln(new/old)| {med0:.3%} (limit {cfg.gate_overlap_median_log:.3%}), "
                f"{far0:.2%} of {d0.size} shared days beyond {cfg.gate_overlap_far_log:.0%} "
                f"(limit {cfg.gate_overlap_far_share:.2%}){where}",
            )
    if cfg.gate_allow_shrink:
        return
    new_last, old_last = new_s.index.max(), old_s.index.max()
    if len(new) < len(old) or (pd.notna(old_last) and (pd.isna(new_last) or new_last < old_last)):
        raise DataRejected(
            file,
            "shrink",
            f"{len(new):,} rows up to {None if pd.isna(new_last) else new_last.date()} would replace "
            f"{len(old):,} rows up to {old_last.date()} (set data.gate_allow_shrink to accept)",
        )


def check_across_sources(
    new_per_oz: pd.Series, others_per_oz: dict[str, pd.Series], file: str, settings: Settings
) -> None:
    """Compare a new gold price series with other sources' series on shared days.

    ``new_per_oz`` and each value of ``others_per_oz``: USD per troy ounce of gold indexed by
    UTC day (a token's close divided by the ounces one token represents); keys name the other
    source (e.g. ``"token_paxg"``). Sources that share no day are skipped. Raises
    :class:`DataRejected` with check ``level_vs_<source>`` when the median ratio new/other is
    outside ``settings.data.gate_level_ratio`` (naming the likely unit error), or
    ``agreement_vs_<source>`` when the median |ln(new/other)| exceeds
    ``settings.data.gate_cross_source_median_log``. The tolerance is wider than against the
    last good table of the same series: the LBMA PM fix and a token's daily close are taken
    at different hours and a token trades at a premium or discount to its gold.
    """
    cfg = settings.data
    for source, other in sorted(others_per_oz.items()):
        d = _log_diff(new_per_oz, other)
        if not d.size:
            continue
        ratio = float(np.exp(np.median(d)))
        lo, hi = cfg.gate_level_ratio
        if not lo <= ratio <= hi:
            raise DataRejected(
                file,
                f"level_vs_{source}",
                f"gold per troy ounce: median ratio to {source} {ratio:.4g} on {d.size} shared days is "
                f"outside [{lo}, {hi}]: {_cause(ratio)}",
            )
        med = float(np.median(np.abs(d)))
        if med > cfg.gate_cross_source_median_log:
            raise DataRejected(
                file,
                f"agreement_vs_{source}",
                f"gold per troy ounce: median |ln(new/{source})| {med:.3%} on {d.size} shared days "
                f"(limit {cfg.gate_cross_source_median_log:.3%}, setting data.gate_cross_source_median_log)",
            )
