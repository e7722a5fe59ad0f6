"""Broker bars with their opens (goldstress/io/bars.py) on small files written at test time.

Expected values are the rows written here; the flags and the bad open come from the quirks
registry as SOURCES.md and goldstress/data_quirks.toml document them.
"""

from __future__ import annotations

import math

import pytest

from goldstress.io.bars import NoBarOpensError, load_broker_bars
from goldstress.settings import Settings

HEADER = "date,open,high,low,close,tick_volume,bar_note"
BROKER = "xauusd_broker_mt5_daily_2007_2026.csv"


def _settings(tmp_path, name: str, lines: list[str], header: str = HEADER) -> Settings:
    (tmp_path / name).write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return Settings(data={"data_dir": tmp_path})


def test_flagged_bars_dropped_and_opens_kept_beside_closes(tmp_path):
    s = _settings(
        tmp_path,
        "bars.csv",
        [
            "2012-09-07,1700.1,1740.2,1695.0,1735.5,50000,",
            "2012-09-09,1735.6,1737.0,1733.0,1736.1,900,sunday_open_session",
            "2012-09-10,1736.1,1738.0,1725.0,1730.3,48000,",
            "2026-04-22,4700.0,4710.0,4690.0,4701.0,2500,partial_day_snapshot_close_unreliable",
        ],
    )
    got = load_broker_bars("bars.csv", s)
    bars = got["bars"]
    assert [str(d.date()) for d in bars.index] == ["2012-09-07", "2012-09-10"]
    assert bars["open"].tolist() == [1700.1, 1736.1]
    assert bars["close"].tolist() == [1735.5, 1730.3]
    assert str(bars.index.tz) == "UTC"
    assert got["removed_dates"] == ["2012-09-09", "2026-04-22"]
    assert got["n"] == 2 and got["first_date"] == "2012-09-07" and got["last_date"] == "2012-09-10"


def test_registry_bad_open_becomes_nan_and_the_close_stays(tmp_path):
    s = _settings(
        tmp_path,
        BROKER,
        ["2008-10-10,911.75,930.95,824.30,841.85,14341,", "2008-10-13,765.25,871.55,765.25,831.40,14646,"],
    )
    got = load_broker_bars(BROKER, s)
    assert got["bars"]["open"].iloc[0] == 911.75
    assert math.isnan(got["bars"]["open"].iloc[1])
    assert got["bars"]["close"].tolist() == [841.85, 831.40]
    assert [e["date"] for e in got["nulled_opens"]] == ["2008-10-13"]


def test_absent_file_or_no_data_dir_gives_none(tmp_path):
    assert load_broker_bars("missing.csv", Settings(data={"data_dir": tmp_path})) is None
    assert load_broker_bars(BROKER, Settings(data={"data_dir": None})) is None


def test_a_layout_without_opens_is_named(tmp_path):
    s = _settings(tmp_path, "lbma.csv", ["2024-01-02,2064.4"], header="date,usd_pm")
    with pytest.raises(NoBarOpensError, match=r"lbma\.csv: layout lbma_pm has no bar opens"):
        load_broker_bars("lbma.csv", s)


def test_non_numeric_open_names_file_row_and_column(tmp_path):
    s = _settings(
        tmp_path, "bars.csv", ["2024-01-02,2060,2070,2050,2064.4,1000,", "2024-01-03,n/a,2070,2030,2034,1000,"]
    )
    with pytest.raises(ValueError, match=r"bars\.csv: row 2 \(date 2024-01-03\), column open: 'n/a'"):
        load_broker_bars("bars.csv", s)


def test_duplicate_date_is_named(tmp_path):
    s = _settings(
        tmp_path, "bars.csv", ["2024-01-02,2060,2070,2050,2064.4,1000,", "2024-01-02,2061,2071,2051,2065,1000,"]
    )
    with pytest.raises(ValueError, match=r"bars\.csv: column date: duplicate date 2024-01-02"):
        load_broker_bars("bars.csv", s)
