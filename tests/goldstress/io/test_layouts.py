"""Standardiser tests on small synthetic files written at test time, one per layout.

Expected values: the inputs themselves, the closed form usd_per_g = usd_per_oz / 31.1034768,
the contract's layout table (typed here, not read from the code) and the quirks registry read
independently with tomllib.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from goldstress.io.layouts import (
    QUIRKS_PATH,
    Quirks,
    detect_layout,
    load_quirks,
    parse_coingecko_market_chart,
    parse_lbma_json,
    raw_view,
    standardise,
)
from tests.goldstress.io.http_fixtures import coingecko_market_chart_bytes, lbma_json_bytes

NO_QUIRKS = Quirks()

# The contract's layout table, typed independently of tasks/standardise.py.
CONTRACT_HEADERS = {
    "lbma_am_pm": "date,usd_am,usd_pm,gbp_am,gbp_pm,eur_am,eur_pm",
    "lbma_pm": "date,usd_pm",
    "lbma_merged": "date,usd_am,usd_pm,source",
    "broker_ohlc": "date,open,high,low,close,tick_volume,bar_note",
    "cmc_ohlc": "date,open_usd,high_usd,low_usd,close_usd,volume_usd,market_cap_usd",
    "ohlc_usd": "date,open_usd,high_usd,low_usd,close_usd",
    "binance_usdt": "date,open_usdt,high_usdt,low_usdt,close_usdt,volume_paxg",
    "coingecko_csv": "date,price_usd,market_cap_usd,total_volume_usd",
}


def csv_bytes(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def days(frame: pd.DataFrame) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in frame["date"]]


def assert_gold_schema(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["date", "usd_per_oz", "usd_per_g", "source"]
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert frame["usd_per_oz"].dtype == np.float64 and frame["usd_per_g"].dtype == np.float64
    assert pd.api.types.is_string_dtype(frame["source"])
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    assert (frame["date"] == frame["date"].dt.normalize()).all()  # UTC midnight
    assert frame["date"].is_monotonic_increasing


def assert_token_schema(frame: pd.DataFrame, token: str) -> None:
    assert list(frame.columns) == ["date", "token", "close_usd", "source"]
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert frame["close_usd"].dtype == np.float64
    assert set(frame["token"]) == {token}
    assert isinstance(frame.index, pd.RangeIndex)
    assert (frame["date"] == frame["date"].dt.normalize()).all()
    assert frame["date"].is_monotonic_increasing


# -- layout detection -------------------------------------------------------------------------
@pytest.mark.parametrize(("layout", "header"), sorted(CONTRACT_HEADERS.items()))
def test_detect_layout_matches_contract_table(layout, header):
    assert detect_layout(header.split(",")) == layout


def test_detect_layout_broker_without_bar_note_and_loose_spelling():
    assert detect_layout("date,open,high,low,close,tick_volume".split(",")) == "broker_ohlc"
    assert detect_layout(["\ufeffDate", " USD_PM "]) == "lbma_pm"


def test_detect_layout_unknown_lists_header_and_layouts():
    with pytest.raises(ValueError) as info:
        detect_layout(["month", "price_usd_per_oz"])
    msg = str(info.value)
    assert "month,price_usd_per_oz" in msg
    for name in CONTRACT_HEADERS:
        assert name in msg


# -- gold layouts -----------------------------------------------------------------------------
def test_lbma_am_pm_drops_blank_pm_and_converts_to_grams():
    data = csv_bytes(
        CONTRACT_HEADERS["lbma_am_pm"],
        [
            "1968-03-14,35.2,,14.6,,,",  # before the first PM fix
            "1968-04-01,37.5,37.7,15.6,15.68,,",
            "1999-12-23,288.3,288.6,178.5,178.9,285.0,286.2",
            "1999-12-24,288.0,,178.3,,284.9,",  # Christmas Eve half day
            "1999-12-29,290.25,311.034768,179.4,179.8,288.2,288.8",
        ],
    )
    res = standardise(data, "lbma_am_pm", "gold", "/somewhere/gold_lbma_am_pm_daily_1968_2023.csv", NO_QUIRKS)
    frame = res.frame
    assert_gold_schema(frame)
    assert days(frame) == ["1968-04-01", "1999-12-23", "1999-12-29"]
    np.testing.assert_array_equal(frame["usd_per_oz"], [37.7, 288.6, 311.034768])
    np.testing.assert_allclose(frame["usd_per_g"], np.array([37.7, 288.6, 311.034768]) / 31.1034768, rtol=1e-15)
    assert frame["usd_per_g"].iloc[-1] == pytest.approx(10.0, rel=1e-15)  # 311.034768 / 31.1034768
    assert set(frame["source"]) == {"lbma_pm:gold_lbma_am_pm_daily_1968_2023.csv"}
    dropped = [(e["row"], e["action"]) for e in res.log]
    assert dropped == [(1, "drop_row"), (4, "drop_row")]
    assert "1968-04-01" in res.log[0]["reason"] and "half day" in res.log[1]["reason"]
    assert res.n_rows_in == 5


def test_lbma_merged_and_pm_layouts():
    merged = csv_bytes(
        CONTRACT_HEADERS["lbma_merged"],
        [
            "2023-09-01,1940.2,1942.35,gold_lbma_am_pm_daily_1968_2023.csv",
            "2023-09-04,,1938.6,gold_lbma_pm_usd_daily_2023_2026.csv",  # AM blank in later rows: fine
        ],
    )
    frame = standardise(merged, "lbma_merged", "gold", "merged.csv", NO_QUIRKS).frame
    assert_gold_schema(frame)
    np.testing.assert_array_equal(frame["usd_per_oz"], [1942.35, 1938.6])
    pm = standardise(csv_bytes("date,usd_pm", ["2026-08-17,4815.5"]), "lbma_pm", "gold", "x.csv", NO_QUIRKS)
    assert days(pm.frame) == ["2026-08-17"] and pm.frame["usd_per_oz"].iloc[0] == 4815.5


def test_broker_flags_dropped_and_logged():
    data = csv_bytes(
        CONTRACT_HEADERS["broker_ohlc"],
        [
            "2012-09-07,1700.1,1740.2,1695.0,1735.5,50000,",
            "2012-09-09,1735.6,1737.0,1733.0,1736.1,900,sunday_open_session",
            "2012-09-10,1736.1,1738.0,1725.0,1730.3,48000,",
            "2026-04-22,4700.0,4710.0,4690.0,4701.0,2500,partial_day_snapshot_close_unreliable",
        ],
    )
    res = standardise(data, "broker_ohlc", "gold", "xauusd_broker_mt5_daily_2007_2026.csv", load_quirks())
    assert_gold_schema(res.frame)
    assert days(res.frame) == ["2012-09-07", "2012-09-10"]
    np.testing.assert_array_equal(res.frame["usd_per_oz"], [1735.5, 1730.3])
    # (the registry's bad-open entries for this file name match no row here: logged as not applied)
    assert [(e["row"], e["column"], e["action"]) for e in res.log if e["action"] != "quirk_not_applied"] == [
        (2, "bar_note", "drop_row"),
        (4, "bar_note", "drop_row"),
    ]
    assert res.frame["source"].iloc[0].startswith("broker_close:")


def test_broker_without_bar_note_column():
    data = csv_bytes("date,open,high,low,close,tick_volume", ["2025-06-05,3370,3403,3340,3352.5,120000"])
    frame = standardise(data, "broker_ohlc", "gold", "xauusd_broker_mt4_daily_2004_2025.csv").frame
    np.testing.assert_array_equal(frame["usd_per_oz"], [3352.5])


# -- token layouts ----------------------------------------------------------------------------
def test_xaut_quirks_applied_for_the_named_file_only():
    rows = [
        "2022-05-13,1810.0,1812.0,1805.0,1808.0",
        "2022-05-14,1799.6,1799.6,1799.6,1799.6",  # stale range 05-14..05-21
        "2022-05-21,1840.0,1840.1,1839.9,1840.0",  # stale range end (inclusive)
        "2022-05-22,1845.0,1850.0,1840.0,1848.2",
        "2023-05-25,1942.0,1950.0,1938.0,1945.1",
        "2023-05-26,1945.1,2290.0,1940.0,2273.19",  # bad print: dropped
        "2023-05-27,2249.93,2300.54,1938.0,1941.25",  # open/high nulled, close kept
    ]
    data = csv_bytes(CONTRACT_HEADERS["ohlc_usd"], rows)
    res = standardise(data, "ohlc_usd", "token_xaut", "/data/xaut_usd_daily_2022_2026.csv", load_quirks())
    assert_token_schema(res.frame, "XAUT")
    assert days(res.frame) == ["2022-05-13", "2022-05-22", "2023-05-25", "2023-05-27"]
    np.testing.assert_array_equal(res.frame["close_usd"], [1808.0, 1848.2, 1945.1, 1941.25])
    acts = [(e["row"], e["column"], e["action"]) for e in res.log]
    assert (2, "close_usd", "drop_row") in acts and (3, "close_usd", "drop_row") in acts
    assert (6, "open_usd,high_usd,low_usd,close_usd", "drop_row") in acts
    assert (7, "open_usd", "null") in acts and (7, "high_usd", "null") in acts
    assert len([a for a in acts if a[2] == "drop_row"]) == 3

    # the same bytes under another file name: no quirk applies
    other = standardise(data, "ohlc_usd", "token_xaut", "some_other_file.csv", load_quirks())
    assert len(other.frame) == len(rows) and other.log == []


def test_quirk_entry_that_matches_no_row_is_logged():
    data = csv_bytes(CONTRACT_HEADERS["ohlc_usd"], ["2024-01-02,2050,2060,2040,2055"])
    res = standardise(data, "ohlc_usd", "token_xaut", "xaut_usd_daily_2022_2026.csv", load_quirks())
    assert len(res.frame) == 1
    assert {e["action"] for e in res.log} == {"quirk_not_applied"}


def test_cmc_layout_and_dgx_stays_per_token():
    data = csv_bytes(
        CONTRACT_HEADERS["cmc_ohlc"],
        [
            "2018-05-16,44.39,44.90,41.89,42.16,137569,0",
            "2018-05-15,44.44,44.66,41.71,44.37,41865.20,0",  # unsorted input
        ],
    )
    res = standardise(data, "cmc_ohlc", "token_dgx", "dgx_usd_daily_cmc_2018_2020.csv")
    assert_token_schema(res.frame, "DGX")
    assert days(res.frame) == ["2018-05-15", "2018-05-16"]
    np.testing.assert_array_equal(res.frame["close_usd"], [44.37, 42.16])  # per token (1 g), unconverted


def test_binance_usdt_kept_and_labelled_usdt():
    data = csv_bytes(CONTRACT_HEADERS["binance_usdt"], ["2020-08-28,1945.95,2049.69,1945.95,1977.99,105.408271"])
    frame = standardise(data, "binance_usdt", "token_paxg", "paxg_usdt_daily_binance_2020_2022.csv").frame
    assert_token_schema(frame, "PAXG")
    assert frame["close_usd"].iloc[0] == 1977.99
    assert "usdt" in frame["source"].iloc[0]


def test_coingecko_csv_snapshot_shifted_to_previous_day():
    data = csv_bytes(
        CONTRACT_HEADERS["coingecko_csv"],
        [
            "2020-01-26,1575.9582599738656,0.0,30350.78",
            "2020-01-27 00:00:00 UTC,1585.137326483012,6324697.93,1031042.56",  # CoinGecko export style
        ],
    )
    res = standardise(data, "coingecko_csv", "token_xaut", "xaut_usd_daily_coingecko_2020_2023.csv")
    assert days(res.frame) == ["2020-01-25", "2020-01-26"]
    np.testing.assert_array_equal(res.frame["close_usd"], [1575.9582599738656, 1585.137326483012])
    assert any(e["action"] == "shift_date" for e in res.log)


def test_market_chart_and_lbma_json_layouts():
    t0 = datetime(2024, 2, 29, tzinfo=UTC)
    chart = coingecko_market_chart_bytes(
        [(t0, 2030.5), (t0 + timedelta(days=1), 2041.0), (t0 + timedelta(days=1, hours=9), 2050.0)]
    )
    res = parse_coingecko_market_chart(chart, "xaut")
    assert_token_schema(res.frame, "XAUT")
    assert days(res.frame) == ["2024-02-28", "2024-02-29"]
    assert [e["row"] for e in res.log if e["action"] == "drop_row"] == [3]

    lbma = lbma_json_bytes(
        [("1968-04-01", 37.7, 15.68, None), ("1968-04-02", None, 15.6, None), ("1968-04-03", 37.6, 15.63, None)]
    )
    frame = parse_lbma_json(lbma).frame
    assert_gold_schema(frame)
    assert days(frame) == ["1968-04-01", "1968-04-03"]
    assert set(frame["source"]) == {"lbma_pm:gold_pm.json"}
    am = parse_lbma_json(lbma, origin_name="https://prices.lbma.org.uk/json/gold_am.json").frame
    assert am["source"].iloc[0] == "lbma_am:https://prices.lbma.org.uk/json/gold_am.json"


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["n/a", "1,942.35", "$1942", "nan", "inf", "12..5"])
def test_text_in_price_column_raises_with_row_column_and_text(text):
    data = csv_bytes(
        CONTRACT_HEADERS["ohlc_usd"],
        ["2024-01-02,2050,2060,2040,2055", "2024-01-03,2055,2070,2050,2066", f'2024-01-04,2066,2070,2050,"{text}"'],
    )
    with pytest.raises(ValueError) as info:
        standardise(data, "ohlc_usd", "token_paxg", "paxg.csv", NO_QUIRKS)
    msg = str(info.value)
    assert "row 3" in msg and "close_usd" in msg and repr(text) in msg and "paxg.csv" in msg


def test_text_in_lbma_json_raises():
    data = json.dumps([{"d": "2024-01-02", "v": [2064.4, 1, 1]}, {"d": "2024-01-03", "v": ["2034,25", 1, 1]}])
    with pytest.raises(ValueError, match=r"row 2 .*column usd.*'2034,25'"):
        parse_lbma_json(data.encode())


def test_blank_price_in_layout_without_blanks_raises():
    data = csv_bytes(CONTRACT_HEADERS["cmc_ohlc"], ["2020-03-11,1645.37,1652.57,1635.10,,72580.51,0"])
    with pytest.raises(ValueError, match=r"row 1 .*close_usd: blank price"):
        standardise(data, "cmc_ohlc", "token_pmgt", "pmgt.csv", NO_QUIRKS)


@pytest.mark.parametrize("bad_date", ["2024-02-30", "02/01/2024", "2024-01-02 13:00:00"])
def test_bad_date_raises_naming_row(bad_date):
    data = csv_bytes("date,usd_pm", ["2024-01-01,2060", f"{bad_date},2064.4"])
    with pytest.raises(ValueError, match=r"row 2, column date"):
        standardise(data, "lbma_pm", "gold", "x.csv", NO_QUIRKS)


def test_dataset_must_fit_layout():
    data = csv_bytes("date,usd_pm", ["2024-01-02,2064.4"])
    with pytest.raises(ValueError, match="^dataset: 'token_paxg' does not fit layout 'lbma_pm'"):
        standardise(data, "lbma_pm", "token_paxg", "x.csv", NO_QUIRKS)
    with pytest.raises(ValueError, match="^dataset: 'silver' is neither"):
        standardise(data, "lbma_pm", "silver", "x.csv", NO_QUIRKS)
    with pytest.raises(
        ValueError, match="^layout: 'lbma_csv' is unknown"
    ):  # "layout" alone fits the dataset errors too
        standardise(data, "lbma_csv", "gold", "x.csv", NO_QUIRKS)


def test_header_not_matching_given_layout_raises():
    data = csv_bytes("date,usd_pm", ["2024-01-02,2064.4"])
    with pytest.raises(ValueError, match="does not match layout lbma_am_pm"):
        standardise(data, "lbma_am_pm", "gold", "x.csv", NO_QUIRKS)


# -- raw view ---------------------------------------------------------------------------------
def test_raw_view_is_strings_with_blanks_kept():
    data = csv_bytes(
        CONTRACT_HEADERS["lbma_am_pm"],
        ["1968-03-14,35.2,,14.6,,,", "1968-04-01,37.5,37.7,15.6,15.68,,", "1968-04-02,37.4,abc,15.6,37.3,,"],
    )
    frame, problem = raw_view(data, None)
    assert problem is None
    assert list(frame.columns) == ["row", "date", "price"]
    assert frame["row"].dtype == np.int64
    assert frame.to_dict("list") == {
        "row": [1, 2, 3],
        "date": ["1968-03-14", "1968-04-01", "1968-04-02"],
        "price": ["", "37.7", "abc"],
    }


def test_raw_view_json_layouts_keep_the_literal_text():
    lbma = b'[{"is_cms_locked":0,"d":"1968-04-01","v":[37.70,15.68,null]},{"d":"1968-04-02","v":[null,1,null]}]'
    frame, problem = raw_view(lbma, "lbma_json")
    assert problem is None
    assert frame.to_dict("list") == {"row": [1, 2], "date": ["1968-04-01", "1968-04-02"], "price": ["37.70", ""]}
    chart = coingecko_market_chart_bytes([(datetime(2024, 3, 1, tzinfo=UTC), 2041.5)])
    frame, problem = raw_view(chart, "coingecko_market_chart")
    assert problem is None and frame.to_dict("list") == {"row": [1], "date": ["2024-03-01"], "price": ["2041.5"]}


@pytest.mark.parametrize(
    ("data", "layout", "needle"),
    [
        (b"", None, "empty"),
        (b"   \n", "lbma_pm", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "binary"),
        (b"\xff\xfe\xfd not utf8 at all", None, "UTF-8"),
        (b'[{"d":"2024-01-02","v":[2064.4,1,1]}]', None, "JSON"),
        (b'[{"d":"2024-01-02","v":[2064.4,1,1]}]', "ohlc_usd", "JSON"),
        (b"month,price_usd_per_oz\n2024-01,2030\n", None, "matches no known layout"),
        (b"date,usd_pm\n2024-01-02,2064.4\n", "lbma_am_pm", "does not match layout"),
        (b"date,usd_pm\n2024-01-02,2064.4,extra\n", None, "row 1"),
        (b'{"prices": 3}', "coingecko_market_chart", "prices"),
        (b'{"not": "a list"}', "lbma_json", "list"),
        (b"date,usd_pm\n", None, "no data rows"),
        (b"date,usd_pm\n2024-01-02,1\n", "no_such_layout", "unknown"),
    ],
)
def test_raw_view_never_raises_on_bad_content(data, layout, needle):
    frame, problem = raw_view(data, layout)
    assert list(frame.columns) == ["row", "date", "price"] and len(frame) == 0
    assert problem is not None and needle in problem


# -- quirks registry --------------------------------------------------------------------------
def test_load_quirks_matches_the_toml():
    raw = tomllib.loads(QUIRKS_PATH.read_text())
    q = load_quirks()
    assert q.quirks_version == raw["quirks_version"]
    for key in ("bad_tick", "bad_flag", "stale", "known_gap"):
        assert len(getattr(q, key)) == len(raw.get(key, []))
    assert [(t.file, t.date.isoformat(), t.action) for t in q.bad_tick] == [
        (t["file"], t["date"], t["action"]) for t in raw["bad_tick"]
    ]
    xaut = q.for_file("xaut_usd_daily_2022_2026.csv")
    raw_xaut_stale = [(e["start"], e["end"]) for e in raw["stale"] if e["file"] == "xaut_usd_daily_2022_2026.csv"]
    assert len(raw_xaut_stale) == 5  # 2022-05-14..21 (SOURCES.md) and four measured pinned stretches
    assert [(t.start.isoformat(), t.end.isoformat()) for t in xaut.stale] == raw_xaut_stale
    assert len(xaut.bad_tick) == 2 and len(xaut.bad_flag) == len(raw["bad_flag"])


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            'quirks_version = 1\n[[bad_tick]]\nfile="a.csv"\ndate="2024-01-02"\ncolumns=["x"]\naction="delete"\nreason="r"\n',
            "action",
        ),
        (
            'quirks_version = 1\n[[stale]]\nfile="a.csv"\nstart="2024-01-05"\nend="2024-01-02"\naction="drop_row"\nreason="r"\n',
            "before start",
        ),
        (
            'quirks_version = 1\n[[bad_flag]]\ncolumn="bar_note"\nvalue="x"\naction="drop_row"\nreason="r"\ntypo=1\n',
            "typo",
        ),
        ("quirks_version = [", "invalid TOML"),
    ],
)
def test_load_quirks_rejects_bad_entries_naming_the_file(tmp_path, toml, needle):
    path = tmp_path / "quirks.toml"
    path.write_text(toml)
    with pytest.raises(ValueError) as info:
        load_quirks(path)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_crlf_bom_and_trailing_blank_lines_are_read():
    data = "\ufeffdate,usd_pm\r\n2024-01-02,2064.4\r\n2024-01-03,2034.25\r\n\r\n   \r\n".encode()
    frame = standardise(data, "lbma_pm", "gold", "x.csv", NO_QUIRKS).frame
    assert days(frame) == ["2024-01-02", "2024-01-03"]
    np.testing.assert_array_equal(frame["usd_per_oz"], [2064.4, 2034.25])


def test_unknown_broker_flag_is_kept_and_logged():
    data = csv_bytes(CONTRACT_HEADERS["broker_ohlc"], ["2013-03-29,1600,1601,1595,1598,300,thin_holiday"])
    res = standardise(data, "broker_ohlc", "gold", "xauusd_broker_mt5_daily_2007_2026.csv", load_quirks())
    assert len(res.frame) == 1
    assert [(e["row"], e["action"]) for e in res.log if e["action"] != "quirk_not_applied"] == [
        (1, "unknown_flag_kept")
    ]
