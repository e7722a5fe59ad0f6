"""Daily broker gold bars with their opens: the rows the importer keeps for the curated gold
series (flagged Sunday sessions and partial snapshots removed by the quirks registry), with
each bar's open beside its close."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from goldstress.settings import Settings

__all__ = ["BarsInput", "NoBarOpensError", "load_broker_bars"]

BAR_LAYOUT = "broker_ohlc"
"""The importer layout whose rows carry an open (``date,open,high,low,close,tick_volume[,bar_note]``)."""


class NoBarOpensError(ValueError):
    """The file is in a known price layout that has no bar opens (an LBMA fix, a token file)."""


class BarsInput(dict):
    """Broker bars with their lineage: keys ``bars`` (pd.DataFrame indexed by the bar's UTC day,
    midnight UTC, columns ``open`` and ``close`` in USD per troy ounce), ``file``, ``origin`` (the
    path read), ``sha256`` (of the raw file bytes), ``dropped`` (rows the importer removed, with
    reasons), ``removed_dates`` (ISO days of those rows), ``nulled_opens`` (opens removed as known
    bad prints, with reasons; those bars keep their close and have a NaN open), ``first_date``,
    ``last_date``, ``n``."""


def _header(data: bytes) -> list[str]:
    line = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip().lstrip("\ufeff")
    return [h.strip() for h in line.split(",")]


def load_broker_bars(file_name: str, settings: Settings) -> BarsInput | None:
    """The daily bars of a broker OHLC file in ``settings.data.data_dir``; None when ``data_dir``
    is unset or the file is not in it (curated tables keep closes only, so there is no fallback).

    The file goes through :func:`goldstress.io.layouts.standardise` with the quirks registry, so
    exactly the rows the curated gold series keeps are kept; the open of each kept row is read
    from the same bytes and checked against the importer's date and close. An open the registry
    nulls (a ``bad_tick`` on column ``open``) becomes NaN.

    Raises
    ------
    NoBarOpensError
        The header is a known layout other than the broker OHLC one (no opens).
    ValueError
        A header of no known layout, bad content (as the importer), a non-numeric or
        non-positive ``open``, or a duplicate date; the message names the file, and the row and
        column where there is one.
    """
    from goldstress.io.layouts import LAYOUTS, detect_layout, standardise
    from goldstress.io.sources import read_data_file

    if settings.data.data_dir is None or not (Path(settings.data.data_dir) / file_name).is_file():
        return None
    path = Path(settings.data.data_dir) / file_name
    data = read_data_file(path)
    try:
        layout = detect_layout(_header(data))
    except ValueError as exc:
        raise ValueError(f"{file_name}: {exc}") from None
    if layout != BAR_LAYOUT:
        expected = ",".join(LAYOUTS[BAR_LAYOUT].columns + LAYOUTS[BAR_LAYOUT].optional)
        raise NoBarOpensError(
            f"{file_name}: layout {layout} has no bar opens; gold's weekend gap needs a broker bar file ({expected})"
        )
    result = standardise(data, layout, "gold", str(path))
    dropped = [e for e in result.log if e.get("action") == "drop_row"]
    raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    raw.insert(0, "row", np.arange(1, len(raw) + 1))
    kept = raw[~raw["row"].isin({int(e["row"]) for e in dropped if e.get("row") is not None})].copy()
    kept["day"] = pd.to_datetime(kept["date"].str.strip().str[:10], format="%Y-%m-%d", errors="coerce", utc=True)
    kept = kept.sort_values("day", kind="stable")
    frame = result.frame
    same = len(kept) == len(frame) and bool(
        (pd.DatetimeIndex(kept["day"]).as_unit("ns") == pd.DatetimeIndex(frame["date"]).as_unit("ns")).all()
        and np.allclose(pd.to_numeric(kept["close"].str.strip()).to_numpy(), frame["usd_per_oz"].to_numpy())
    )
    if not same:
        raise ValueError(
            f"{file_name}: the rows read for the bar opens ({len(kept)}) do not match the importer's "
            f"{len(frame)} rows (blank or whitespace-only lines inside the file?)"
        )
    nulled = {int(e["row"]) for e in result.log if e.get("action") == "null" and e.get("column") == "open"}
    is_nulled = kept["row"].isin(nulled).to_numpy()
    opens = pd.to_numeric(kept["open"].str.strip(), errors="coerce").to_numpy(dtype=float, copy=True)
    opens[is_nulled] = np.nan
    bad = ~is_nulled & (~np.isfinite(opens) | (opens <= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{file_name}: row {kept['row'].iloc[i]} (date {kept['date'].iloc[i]}), column open: "
            f"{kept['open'].iloc[i]!r} is not a price > 0"
        )
    index = pd.DatetimeIndex(frame["date"], name="date")
    if index.has_duplicates:
        raise ValueError(f"{file_name}: column date: duplicate date {index[index.duplicated()][0].date()}")
    bars = pd.DataFrame({"open": opens, "close": frame["usd_per_oz"].to_numpy(dtype=float)}, index=index)
    if bars.empty:
        raise ValueError(f"{file_name}: no rows left after import")
    return BarsInput(
        bars=bars,
        file=file_name,
        origin=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        dropped=dropped,
        removed_dates=sorted({str(e["date"])[:10] for e in dropped if e.get("date")}),
        nulled_opens=[e for e in result.log if e.get("action") == "null" and e.get("column") == "open"],
        first_date=str(index[0].date()),
        last_date=str(index[-1].date()),
        n=int(len(bars)),
    )
