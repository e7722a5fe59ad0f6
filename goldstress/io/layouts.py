"""Layout detection, the raw (string) view and standardisation to the curated schemas.

:func:`detect_layout`, :func:`raw_view` and :func:`standardise` work on raw snapshot bytes;
nothing here touches the network or the store.
Curated schemas and clock conventions: docs/platform/data-layouts.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from goldstress.settings import PROJECT_ROOT
from models.units import TROY_OUNCE_G

__all__ = [
    "DATE_DTYPE",
    "GOLD_COLUMNS",
    "LAYOUTS",
    "QUIRKS_PATH",
    "TOKEN_COLUMNS",
    "Layout",
    "Quirks",
    "StandardiseResult",
    "detect_layout",
    "load_quirks",
    "parse_coingecko_market_chart",
    "parse_lbma_json",
    "raw_view",
    "standardise",
]

DATE_DTYPE = "datetime64[ns, UTC]"
"""dtype of the curated ``date`` column."""
GOLD_COLUMNS = ("date", "usd_per_oz", "usd_per_g", "source")
TOKEN_COLUMNS = ("date", "token", "close_usd", "source")
RAW_COLUMNS = ("row", "date", "price")
QUIRKS_PATH = PROJECT_ROOT / "goldstress" / "data_quirks.toml"
"""Default known-quirks registry."""

LBMA_PM_START = date(1968, 4, 1)
"""First London PM fix (SOURCES.md): earlier LBMA rows have a morning fix only."""


@dataclass(frozen=True)
class Layout:
    """One source layout of the contract.

    ``columns`` is the header (for JSON layouts: the columns of the raw table built from the
    records), ``optional`` trailing header columns that may be absent, ``price`` the price
    column, ``kind`` the dataset family it feeds (``"gold"`` or ``"token"``),
    ``blank_price_ok`` whether a blank price is documented (dropped on purpose), ``tag`` the
    prefix of the curated ``source`` string, ``date_shift_days`` the calendar shift applied to
    the file's dates, ``fmt`` ``"csv"`` or ``"json"``.
    """

    name: str
    columns: tuple[str, ...]
    price: str
    kind: Literal["gold", "token"]
    blank_price_ok: bool
    tag: str
    optional: tuple[str, ...] = ()
    date_shift_days: int = 0
    fmt: Literal["csv", "json"] = "csv"
    blank_reason: str = ""


_LBMA_BLANK = "no PM fix that day (London half day, or before the PM fix started on 1968-04-01)"

LAYOUTS: dict[str, Layout] = {
    lay.name: lay
    for lay in (
        Layout(
            "lbma_am_pm",
            ("date", "usd_am", "usd_pm", "gbp_am", "gbp_pm", "eur_am", "eur_pm"),
            "usd_pm",
            "gold",
            True,
            "lbma_pm",
            blank_reason=_LBMA_BLANK,
        ),
        Layout("lbma_pm", ("date", "usd_pm"), "usd_pm", "gold", True, "lbma_pm", blank_reason=_LBMA_BLANK),
        Layout(
            "lbma_merged",
            ("date", "usd_am", "usd_pm", "source"),
            "usd_pm",
            "gold",
            True,
            "lbma_pm",
            blank_reason=_LBMA_BLANK,
        ),
        Layout(
            "broker_ohlc",
            ("date", "open", "high", "low", "close", "tick_volume"),
            "close",
            "gold",
            False,
            "broker_close",
            optional=("bar_note",),
        ),
        Layout(
            "cmc_ohlc",
            ("date", "open_usd", "high_usd", "low_usd", "close_usd", "volume_usd", "market_cap_usd"),
            "close_usd",
            "token",
            False,
            "cmc_close_usd",
        ),
        Layout(
            "ohlc_usd",
            ("date", "open_usd", "high_usd", "low_usd", "close_usd"),
            "close_usd",
            "token",
            False,
            "ohlc_close_usd",
        ),
        Layout(
            "binance_usdt",
            ("date", "open_usdt", "high_usdt", "low_usdt", "close_usdt", "volume_paxg"),
            "close_usdt",
            "token",
            False,
            "binance_close_usdt_as_usd",
        ),
        Layout(
            "coingecko_csv",
            ("date", "price_usd", "market_cap_usd", "total_volume_usd"),
            "price_usd",
            "token",
            False,
            "coingecko_0000utc_as_prev_day_close",
            date_shift_days=-1,
        ),
        Layout(
            "lbma_json",
            ("date", "usd", "gbp", "eur"),
            "usd",
            "gold",
            True,
            "lbma_pm",
            fmt="json",
            blank_reason="USD value null in the feed: no fix that day",
        ),
        Layout(
            "coingecko_market_chart",
            ("date", "time_utc", "price"),
            "price",
            "token",
            False,
            "coingecko_0000utc_as_prev_day_close",
            date_shift_days=-1,
            fmt="json",
        ),
    )
}
_CSV_LAYOUTS = {k: v for k, v in LAYOUTS.items() if v.fmt == "csv"}

_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_DATE = r"^(\d{4}-\d{2}-\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?(?: ?UTC|Z|\+00:00)?)?$"
_TOKEN_DATASET = re.compile(r"^token_([a-z0-9]+)$")


# --------------------------------------------------------------------------------------------
# quirks registry
# --------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BadTick(_Strict):
    """A known bad value on one day of one file: drop the row or null the listed columns."""

    file: str
    date: date
    columns: list[str]
    action: Literal["drop_row", "null"]
    reason: str


class BadFlag(_Strict):
    """Rows whose ``column`` equals ``value`` are dropped (optionally only in ``file``)."""

    column: str
    value: str
    action: Literal["drop_row"]
    reason: str
    file: str | None = None


class Stale(_Strict):
    """Inclusive date range of stale quotes in one file: rows dropped."""

    file: str
    start: date
    end: date
    action: Literal["drop_row"]
    reason: str

    @model_validator(mode="after")
    def _ordered(self) -> Stale:
        if self.end < self.start:
            raise ValueError(f"stale {self.file}: end {self.end} before start {self.start}")
        return self


class KnownGap(_Strict):
    """Inclusive date range of a documented hole in one file (accepted by validation)."""

    file: str
    start: date
    end: date
    reason: str

    @model_validator(mode="after")
    def _ordered(self) -> KnownGap:
        if self.end < self.start:
            raise ValueError(f"known_gap {self.file}: end {self.end} before start {self.start}")
        return self


class SupplyRevision(_Strict):
    """A step in a token's reported circulating supply on ``date`` that is a revision of the
    reported figure, not net redemptions: supply-outflow measures remove it."""

    file: str
    date: date
    reason: str


class Quirks(_Strict):
    """Typed content of ``goldstress/data_quirks.toml``. ``Quirks()`` is the empty registry."""

    quirks_version: int = 1
    bad_tick: list[BadTick] = []
    bad_flag: list[BadFlag] = []
    stale: list[Stale] = []
    known_gap: list[KnownGap] = []
    supply_revision: list[SupplyRevision] = []

    def for_file(self, file_name: str) -> Quirks:
        """The entries that apply to ``file_name`` (a base name).

        ``bad_flag`` entries without a ``file`` apply to every file.
        """
        return Quirks(
            quirks_version=self.quirks_version,
            bad_tick=[q for q in self.bad_tick if q.file == file_name],
            bad_flag=[q for q in self.bad_flag if q.file in (None, file_name)],
            stale=[q for q in self.stale if q.file == file_name],
            known_gap=[q for q in self.known_gap if q.file == file_name],
            supply_revision=[q for q in self.supply_revision if q.file == file_name],
        )


def load_quirks(path: str | Path | None = None) -> Quirks:
    """Read the known-quirks registry (TOML) into a typed :class:`Quirks`.

    Parameters
    ----------
    path : str | Path | None
        TOML file; default :data:`QUIRKS_PATH` (``goldstress/data_quirks.toml``).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Invalid TOML, an unknown key or action, a bad date, or ``end`` before ``start``; the
        message names the file and the entry.
    """
    path = Path(path) if path is not None else QUIRKS_PATH
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"quirks file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    try:
        return Quirks.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from None


# --------------------------------------------------------------------------------------------
# layout detection and reading
# --------------------------------------------------------------------------------------------
def _norm_header(header: list[str]) -> list[str]:
    return [str(h).strip().lstrip("\ufeff").strip().lower() for h in header]


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _layout_list() -> str:
    return "; ".join(f"{k}: {','.join(v.columns + v.optional)}" for k, v in _CSV_LAYOUTS.items())


def _header_matches(header: list[str], lay: Layout) -> bool:
    cols = list(lay.columns)
    return header == cols or (bool(lay.optional) and header == cols + list(lay.optional))


def detect_layout(header: list[str]) -> str:
    """Name of the CSV layout whose header equals ``header`` (contract "CSV layouts" table).

    Header cells are compared after stripping whitespace/BOM and lower-casing; the broker
    layout's trailing ``bar_note`` column is optional.

    Raises
    ------
    ValueError
        No layout matches; the message lists the header and every known layout's header.
    """
    norm = _norm_header(list(header))
    for name, lay in _CSV_LAYOUTS.items():
        if _header_matches(norm, lay):
            return name
    raise ValueError(
        f"header {_short(','.join(norm)) or '<empty>'} matches no known layout; known layouts: {_layout_list()}"
    )


def _decode(data: bytes) -> str:
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"data: expected bytes, got {type(data).__name__}")
    if not data.strip():
        raise ValueError("empty file (no header, no rows)")
    head = bytes(data[:4096])
    if b"\x00" in head or head.startswith(b"\x89PNG"):
        raise ValueError(f"not a text file: binary content starting {head[:8]!r}")
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: undecodable byte at offset {exc.start}") from None


def _read_csv(text: str, layout: str | None) -> tuple[Layout, pd.DataFrame]:
    if text.lstrip()[:1] in ("[", "{"):
        raise ValueError(
            "content is JSON, not CSV (for a JSON feed use layout 'lbma_json' or 'coingecko_market_chart')"
        )
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ValueError(f"not a readable CSV: {exc}") from None
    if not rows:
        raise ValueError("empty file (no header, no rows)")
    header = _norm_header(rows[0])
    if layout is None:
        lay = LAYOUTS[detect_layout(header)]
    else:
        lay = LAYOUTS[layout]
        if not _header_matches(header, lay):
            raise ValueError(
                f"header {_short(','.join(header))} does not match layout {lay.name} "
                f"(expected {','.join(lay.columns + lay.optional)})"
            )
    width = len(header)
    # skip empty lines (and whitespace-only lines), nothing else
    body = [r for r in rows[1:] if r and not (len(r) == 1 and not r[0].strip())]
    for i, r in enumerate(body, start=1):
        if len(r) != width:
            raise ValueError(f"row {i}: {len(r)} fields, the header has {width}")
    arr = np.array(body, dtype=object).reshape(len(body), width)
    table = pd.DataFrame({c: pd.Series(arr[:, j], dtype=str).str.strip() for j, c in enumerate(header)})
    for c in lay.optional:
        if c not in table:
            table[c] = pd.Series([""] * len(table), dtype=str)
    table.insert(0, "row", np.arange(1, len(table) + 1, dtype=np.int64))
    return lay, table


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _read_lbma_json(text: str) -> pd.DataFrame:
    try:
        recs = json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(recs, list):
        raise ValueError(f"LBMA JSON must be a list of {{d, v}} records, got {type(recs).__name__}")
    out: dict[str, list[str]] = {"date": [], "usd": [], "gbp": [], "eur": []}
    for i, rec in enumerate(recs, start=1):
        if not isinstance(rec, dict) or "d" not in rec or not isinstance(rec.get("v"), list):
            raise ValueError(f"record {i}: expected {{'d': date, 'v': [usd, gbp, eur]}}, got {_text(rec)[:80]}")
        v = list(rec["v"]) + [None] * 3
        out["date"].append(_text(rec["d"]).strip())
        for key, val in zip(("usd", "gbp", "eur"), v[:3], strict=True):
            out[key].append(_text(val).strip())
    table = pd.DataFrame({k: pd.Series(v, dtype=str) for k, v in out.items()})
    table.insert(0, "row", np.arange(1, len(table) + 1, dtype=np.int64))
    return table


def _read_market_chart(text: str) -> pd.DataFrame:
    try:
        obj = json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("prices"), list):
        raise ValueError("CoinGecko market_chart JSON must be an object with a 'prices' list")
    dates, times, prices = [], [], []
    for i, point in enumerate(obj["prices"], start=1):
        if not isinstance(point, list) or len(point) != 2:
            raise ValueError(f"prices[{i}]: expected [unix_ms, price], got {_text(point)[:80]}")
        ts_text, price = _text(point[0]), _text(point[1])
        try:
            ts = datetime.fromtimestamp(float(ts_text) / 1000.0, tz=UTC)
            dates.append(ts.strftime("%Y-%m-%d"))
            times.append(ts.strftime("%H:%M:%S"))
        except (ValueError, OverflowError, OSError):
            dates.append(ts_text)
            times.append("")
        prices.append(price.strip())
    table = pd.DataFrame(
        {
            "date": pd.Series(dates, dtype=str),
            "time_utc": pd.Series(times, dtype=str),
            "price": pd.Series(prices, dtype=str),
        }
    )
    table.insert(0, "row", np.arange(1, len(table) + 1, dtype=np.int64))
    return table


def _read_table(data: bytes, layout: str | None) -> tuple[Layout, pd.DataFrame]:
    """Decode and split ``data`` into a string table (``row`` + the layout's columns)."""
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout: {layout!r} is unknown; known layouts: {', '.join(LAYOUTS)}")
    text = _decode(data)
    if layout == "lbma_json":
        return LAYOUTS[layout], _read_lbma_json(text)
    if layout == "coingecko_market_chart":
        return LAYOUTS[layout], _read_market_chart(text)
    return _read_csv(text, layout)


def _empty_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {"row": pd.Series([], dtype=np.int64), "date": pd.Series([], dtype=str), "price": pd.Series([], dtype=str)}
    )


def raw_view(data: bytes, layout: str | None) -> tuple[pd.DataFrame, str | None]:
    """String view of a raw snapshot, the input of the GX raw suite (contract "Raw view").

    Parameters
    ----------
    data : bytes
        Raw snapshot bytes (CSV text, LBMA JSON or CoinGecko market_chart JSON).
    layout : str | None
        Layout name; None detects a CSV layout from the header (JSON is never guessed: a JSON
        body with ``layout=None`` is reported as a problem).

    Returns
    -------
    (frame, problem) : tuple[pd.DataFrame, str | None]
        ``frame`` has exactly the columns ``row`` (int64, 1-based data row / JSON record
        number), ``date`` (str, as written; for the market chart the UTC calendar day of the
        timestamp, unshifted) and ``price`` (str, the layout's price column, ``""`` when
        blank). ``problem`` is None when the content could be read; otherwise the frame is
        EMPTY and ``problem`` says why (empty file, binary, not UTF-8, JSON where CSV was
        expected, header matching no layout, ragged row, ...).

    Never raises on bad content (an unknown ``layout`` name is reported as a problem too).
    """
    try:
        lay, table = _read_table(data, layout)
    except Exception as exc:  # noqa: BLE001 - the contract: never raise, report instead
        return _empty_raw(), str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    frame = pd.DataFrame(
        {"row": table["row"].astype(np.int64), "date": table["date"].astype(str), "price": table[lay.price].astype(str)}
    ).reset_index(drop=True)
    problem = None if len(frame) else "no data rows (header only)"
    return frame, problem


# --------------------------------------------------------------------------------------------
# standardisation
# --------------------------------------------------------------------------------------------
@dataclass
class StandardiseResult:
    """Curated frame plus the log of every row dropped / value nulled / date shifted, and why.

    Attributes
    ----------
    frame : pd.DataFrame
        Curated schema (docs/platform/data-layouts.md), sorted by date, RangeIndex.
    log : list[dict]
        Entries ``{"row": int | None, "date": str | None, "column": str | None, "action": str,
        "reason": str}``; ``row`` is the 1-based data row of the input, ``date`` the date as
        written in the input. Actions: ``drop_row``, ``null``, ``shift_date``,
        ``quirk_not_applied`` (a registry entry for this file that matched no row),
        ``unknown_flag_kept``.
    layout, dataset, origin_name : str
        What was standardised.
    n_rows_in : int
        Data rows read from the input.
    """

    frame: pd.DataFrame
    log: list[dict[str, Any]] = field(default_factory=list)
    layout: str = ""
    dataset: str = ""
    origin_name: str = ""
    n_rows_in: int = 0

    def log_frame(self) -> pd.DataFrame:
        """The log as a DataFrame with columns row, date, column, action, reason."""
        return pd.DataFrame(self.log, columns=["row", "date", "column", "action", "reason"])


def _origin_file(origin_name: str) -> str:
    """Base file name of a path or URL (what quirk entries are keyed by)."""
    if "://" in origin_name:
        return PurePosixPath(urlparse(origin_name).path).name
    return PurePosixPath(origin_name.replace("\\", "/")).name


def _source_label(origin_name: str) -> str:
    return origin_name if "://" in origin_name else _origin_file(origin_name)


def _entry(row: Any, day: Any, column: str | None, action: str, reason: str) -> dict[str, Any]:
    return {
        "row": None if row is None else int(row),
        "date": None if day is None else str(day),
        "column": column,
        "action": action,
        "reason": reason,
    }


def _parse_dates(table: pd.DataFrame, origin: str) -> pd.Series:
    part = table["date"].str.extract(_DATE, expand=False)
    parsed = pd.to_datetime(part, format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{origin}: row {table['row'].iloc[i]}, column date: {table['date'].iloc[i]!r} "
            "is not a date (YYYY-MM-DD, or YYYY-MM-DD 00:00:00 UTC)"
        )
    return parsed.dt.tz_localize("UTC").astype(DATE_DTYPE)


def _check_numbers(table: pd.DataFrame, col: str, origin: str) -> None:
    s = table[col]
    bad = ((s != "") & ~s.str.fullmatch(_NUMBER)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{origin}: row {table['row'].iloc[i]} (date {table['date'].iloc[i]}), column {col}: "
            f"non-numeric text {s.iloc[i]!r} ({int(bad.sum())} such value(s) in the file)"
        )


def _dataset_kind(dataset: str) -> tuple[Literal["gold", "token"], str | None]:
    if dataset == "gold":
        return "gold", None
    m = _TOKEN_DATASET.match(dataset) if isinstance(dataset, str) else None
    if m:
        return "token", m.group(1).upper()
    raise ValueError(f"dataset: {dataset!r} is neither 'gold' nor 'token_<symbol>' (e.g. token_paxg)")


def standardise(
    data: bytes,
    layout: str,
    dataset: str,
    origin_name: str,
    quirks: Quirks | None = None,
) -> StandardiseResult:
    """Turn raw bytes in a known layout into the curated frame of ``dataset``.

    Steps, each logged in :attr:`StandardiseResult.log` when it removes or changes data:

    1. read the layout (CSV header checked; JSON records for ``lbma_json`` /
       ``coingecko_market_chart``); every date must be ``YYYY-MM-DD`` (a ``00:00:00 UTC``
       time part is accepted); every non-blank price must be a plain decimal number;
    2. apply the quirks registry entries for this file name (``bad_tick`` drop/null,
       ``bad_flag`` e.g. broker ``bar_note`` flags, ``stale`` ranges);
    3. drop blank prices where the layout documents them (LBMA ``usd_pm``: none before
       1968-04-01, none on Christmas Eve / New Year's Eve half days), so the LBMA gold series
       starts 1968-04-01; a blank price in any other layout is an error;
    4. CoinGecko: drop market-chart points not at 00:00 UTC (the appended live price), then
       shift the 00:00 UTC snapshot dates back one day (snapshot at 00:00 UTC of day D is
       the close of day D-1);
    5. build the schema: gold ``usd_per_g = usd_per_oz / 31.1034768`` (TROY_OUNCE_G); tokens
       keep ``close_usd`` per token (DGX: 1 g per token, left per token; Binance: USDT at par,
       the source string says so). Dates UTC midnight; sorted by date (stable).

    Duplicated dates and non-positive prices are NOT removed here: the validation layer
    reports them.

    Parameters
    ----------
    data : bytes
        Raw snapshot bytes.
    layout : str
        One of :data:`LAYOUTS` (``detect_layout`` for CSV headers).
    dataset : str
        ``"gold"`` (LBMA/broker layouts) or ``"token_<symbol>"`` (token layouts).
    origin_name : str
        File name/path or URL the bytes came from: its base name selects the quirks; the
        curated ``source`` is ``"<tag>:<file name or URL>"``.
    quirks : Quirks | None
        Registry to apply; None loads ``goldstress/data_quirks.toml``; ``Quirks()`` applies none.

    Returns
    -------
    StandardiseResult

    Raises
    ------
    ValueError
        Unknown layout; dataset incompatible with the layout; unreadable content (empty,
        binary, header mismatch, ragged row, malformed JSON); a bad date; non-numeric text in
        the price column (names row number, date, column and the text); a blank price where
        the layout does not allow one.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: {layout!r} is unknown; known layouts: {', '.join(LAYOUTS)}")
    lay = LAYOUTS[layout]
    kind, symbol = _dataset_kind(dataset)
    if kind != lay.kind:
        raise ValueError(f"dataset: {dataset!r} does not fit layout {layout!r} (a {lay.kind} price layout)")
    origin = str(origin_name)
    file_name = _origin_file(origin)
    try:
        _, table = _read_table(data, layout)
    except ValueError as exc:
        raise ValueError(f"{origin}: {exc}") from None
    n_in = len(table)
    price_col = lay.price
    log: list[dict[str, Any]] = []

    dates = _parse_dates(table, origin)
    _check_numbers(table, price_col, origin)
    raw_day = dates.dt.strftime("%Y-%m-%d")
    keep = np.ones(n_in, dtype=bool)
    nulled_price = np.zeros(n_in, dtype=bool)

    # 2. quirks for this file
    q = (quirks if quirks is not None else load_quirks()).for_file(file_name)
    for tick in q.bad_tick:
        hit = (raw_day == tick.date.isoformat()).to_numpy()
        if not hit.any():
            log.append(
                _entry(
                    None,
                    tick.date,
                    ",".join(tick.columns),
                    "quirk_not_applied",
                    f"bad_tick: no row dated {tick.date} ({tick.reason})",
                )
            )
            continue
        for i in np.flatnonzero(hit):
            if tick.action == "drop_row":
                if keep[i]:
                    keep[i] = False
                    log.append(
                        _entry(
                            table["row"].iloc[i], table["date"].iloc[i], ",".join(tick.columns), "drop_row", tick.reason
                        )
                    )
                continue
            for col in tick.columns:
                if col not in table:
                    log.append(
                        _entry(
                            table["row"].iloc[i],
                            table["date"].iloc[i],
                            col,
                            "quirk_not_applied",
                            f"bad_tick: no column {col} ({tick.reason})",
                        )
                    )
                    continue
                table.loc[table.index[i], col] = ""
                nulled_price[i] |= col == price_col
                log.append(_entry(table["row"].iloc[i], table["date"].iloc[i], col, "null", tick.reason))
    known_flags: dict[str, set[str]] = {}
    for flag in q.bad_flag:
        if flag.column not in table:
            continue
        known_flags.setdefault(flag.column, set()).add(flag.value)
        hit = (table[flag.column] == flag.value).to_numpy() & keep
        for i in np.flatnonzero(hit):
            keep[i] = False
            log.append(
                _entry(
                    table["row"].iloc[i],
                    table["date"].iloc[i],
                    flag.column,
                    "drop_row",
                    f"{flag.column}={flag.value}: {flag.reason}",
                )
            )
    for col, values in known_flags.items():
        odd = ((table[col] != "") & ~table[col].isin(sorted(values))).to_numpy() & keep
        for i in np.flatnonzero(odd):
            log.append(
                _entry(
                    table["row"].iloc[i],
                    table["date"].iloc[i],
                    col,
                    "unknown_flag_kept",
                    f"{col}={table[col].iloc[i]!r} is not in the quirks registry",
                )
            )
    for st in q.stale:
        in_range = ((raw_day >= st.start.isoformat()) & (raw_day <= st.end.isoformat())).to_numpy()
        if not in_range.any():
            log.append(
                _entry(
                    None, st.start, None, "quirk_not_applied", f"stale: no row in {st.start}..{st.end} ({st.reason})"
                )
            )
        for i in np.flatnonzero(in_range & keep):
            keep[i] = False
            log.append(
                _entry(
                    table["row"].iloc[i],
                    table["date"].iloc[i],
                    price_col,
                    "drop_row",
                    f"stale {st.start}..{st.end}: {st.reason}",
                )
            )

    # 3. blank prices
    blank = (table[price_col] == "").to_numpy() & keep
    for i in np.flatnonzero(blank & nulled_price):
        keep[i] = False
        log.append(
            _entry(
                table["row"].iloc[i], table["date"].iloc[i], price_col, "drop_row", "price nulled by a bad_tick quirk"
            )
        )
    blank &= ~nulled_price
    if blank.any():
        if not lay.blank_price_ok:
            first = int(np.flatnonzero(blank)[0])
            raise ValueError(
                f"{origin}: row {table['row'].iloc[first]} (date {table['date'].iloc[first]}), column "
                f"{price_col}: blank price; layout {layout} documents no blank prices"
            )
        for i in np.flatnonzero(blank):
            day = dates.iloc[i].date()
            reason = lay.blank_reason
            if lay.tag == "lbma_pm" and lay.fmt == "csv":
                reason = (
                    "usd_pm blank: before the first PM fix (1968-04-01)"
                    if day < LBMA_PM_START
                    else "usd_pm blank: no PM fix that day (London half day)"
                )
            keep[i] = False
            log.append(_entry(table["row"].iloc[i], table["date"].iloc[i], price_col, "drop_row", reason))

    # 4. CoinGecko clock
    if layout == "coingecko_market_chart":
        live = (table["time_utc"] != "00:00:00").to_numpy() & keep
        for i in np.flatnonzero(live):
            keep[i] = False
            log.append(
                _entry(
                    table["row"].iloc[i],
                    table["date"].iloc[i],
                    "date",
                    "drop_row",
                    f"timestamp {table['time_utc'].iloc[i]} UTC is not a 00:00 UTC daily "
                    "snapshot (CoinGecko appends the latest intraday price)",
                )
            )
    if lay.date_shift_days:
        dates = dates + pd.Timedelta(days=lay.date_shift_days)
        log.append(
            _entry(
                None,
                None,
                "date",
                "shift_date",
                f"dates shifted {lay.date_shift_days:+d} day: the CoinGecko 00:00 UTC "
                "snapshot is taken as the previous UTC day's close",
            )
        )

    # 5. schema
    kept_dates = dates[keep].reset_index(drop=True)
    values = table.loc[keep, price_col].astype(float).to_numpy(dtype=np.float64)
    label = f"{lay.tag}:{_source_label(origin)}"
    if layout == "lbma_json" and file_name.startswith("gold_am"):
        label = f"lbma_am:{_source_label(origin)}"
    n = len(values)
    if kind == "gold":
        frame = pd.DataFrame(
            {
                "date": kept_dates,
                "usd_per_oz": values,
                "usd_per_g": values / TROY_OUNCE_G,
                "source": pd.Series([label] * n, dtype=str),
            }
        )
    else:
        frame = pd.DataFrame(
            {
                "date": kept_dates,
                "token": pd.Series([symbol] * n, dtype=str),
                "close_usd": values,
                "source": pd.Series([label] * n, dtype=str),
            }
        )
    frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
    frame["date"] = frame["date"].astype(DATE_DTYPE)
    log.sort(key=lambda e: (e["row"] is None, e["row"] or 0))
    return StandardiseResult(frame=frame, log=log, layout=layout, dataset=dataset, origin_name=origin, n_rows_in=n_in)


def parse_lbma_json(data: bytes, origin_name: str = "gold_pm.json", quirks: Quirks | None = None) -> StandardiseResult:
    """Standardise an LBMA gold JSON feed (``[{"d": "YYYY-MM-DD", "v": [usd, gbp, eur]}, ...]``).

    Equivalent to ``standardise(data, "lbma_json", "gold", origin_name, quirks)``: the USD value
    ``v[0]`` (USD per troy ounce) becomes ``usd_per_oz``; records whose USD value is null are
    dropped and logged. ``source`` is ``"lbma_pm:<origin>"`` (``"lbma_am:..."`` when the file
    name starts with ``gold_am``).

    Raises
    ------
    ValueError
        As :func:`standardise` (malformed JSON, a bad date, non-numeric USD text).
    """
    return standardise(data, "lbma_json", "gold", origin_name, quirks)


def parse_coingecko_market_chart(
    data: bytes,
    token: str,
    origin_name: str = "coingecko_market_chart.json",
    quirks: Quirks | None = None,
) -> StandardiseResult:
    """Standardise a CoinGecko ``/coins/{id}/market_chart`` response into ``token_<token>``.

    Equivalent to ``standardise(data, "coingecko_market_chart", f"token_{token.lower()}",
    origin_name, quirks)``: ``prices`` points at 00:00 UTC are kept and dated the PREVIOUS UTC
    day (the 00:00 snapshot is that day's close); the trailing intraday point is dropped.

    Raises
    ------
    ValueError
        ``token`` not alphanumeric, or as :func:`standardise`.
    """
    if not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9]+", token):
        raise ValueError(f"token: {token!r} must be an alphanumeric symbol such as 'PAXG'")
    return standardise(data, "coingecko_market_chart", f"token_{token.lower()}", origin_name, quirks)
