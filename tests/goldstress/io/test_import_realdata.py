"""Real-data import: every price file of the shared folder goes through raw_view and standardise.

Reached only through the ``shared_data_dir`` fixture (GOLDSTRESS_DATA_DIR; skipped when
absent); nothing is copied into the repo. Expected counts and dates come from SOURCES.md or
are recomputed here with the csv module, independently of tasks/standardise.py.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from goldstress.io.layouts import (
    detect_layout,
    parse_coingecko_market_chart,
    parse_lbma_json,
    raw_view,
    standardise,
)
from goldstress.io.sources import fetch_lbma, read_data_file
from models.units import TROY_OUNCE_G
from tests.goldstress.io.http_fixtures import coingecko_market_chart_bytes, lbma_json_bytes, make_settings

pytestmark = pytest.mark.realdata

# file -> (layout, dataset, data rows per SOURCES.md)
PRICE_FILES = {
    "gold_lbma_am_pm_daily_1968_2023.csv": ("lbma_am_pm", "gold", 14068),
    "gold_lbma_pm_usd_daily_2023_2026.csv": ("lbma_pm", "gold", 864),
    "gold_lbma_usd_daily_1968_2026_merged.csv": ("lbma_merged", "gold", 14810),
    "xauusd_broker_mt5_daily_2007_2026.csv": ("broker_ohlc", "gold", 4995),
    "xauusd_broker_mt4_daily_2004_2025.csv": ("broker_ohlc", "gold", 5391),
    # silver has the broker layout; read through the same path to check its flags are handled
    # (the contract has no silver dataset: "gold" here only names the per-ounce schema)
    "xagusd_silver_broker_mt5_daily_2007_2026.csv": ("broker_ohlc", "gold", 5032),
    "paxg_usd_daily_cmc_2019_2020.csv": ("cmc_ohlc", "token_paxg", 448),
    "paxg_usdt_daily_binance_2020_2022.csv": ("binance_usdt", "token_paxg", 594),
    "paxg_usd_daily_2022_2026.csv": ("ohlc_usd", "token_paxg", 1430),
    "xaut_usd_daily_2022_2026.csv": ("ohlc_usd", "token_xaut", 1363),
    "xaut_usd_daily_coingecko_2020_2023.csv": ("coingecko_csv", "token_xaut", 1357),
    "xaut_usd_daily_cmc_2020.csv": ("cmc_ohlc", "token_xaut", 314),
    "dgx_usd_daily_cmc_2018_2020.csv": ("cmc_ohlc", "token_dgx", 947),
    "pmgt_usd_daily_cmc_2020.csv": ("cmc_ohlc", "token_pmgt", 281),
}
# Files with no price layout in the contract: they must be refused clearly, not misread.
OTHER_FILES = [
    "gold_usd_monthly_1833_2026.csv",
    "gvz_cboe_gold_etf_volatility_daily_2008_2026.csv",
    "gld_spdr_gold_trust_holdings_daily_2004_2025.csv",
    "gold_token_reserve_datapoints.csv",
]


def _rows(path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _std(shared_data_dir, name):
    layout, dataset, _ = PRICE_FILES[name]
    return standardise(read_data_file(shared_data_dir / name), layout, dataset, name)


def _days(frame: pd.DataFrame) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in frame["date"]]


@pytest.mark.parametrize("name", sorted(PRICE_FILES))
def test_each_price_file_imports(shared_data_dir, name):
    layout, dataset, n_rows = PRICE_FILES[name]
    data = read_data_file(shared_data_dir / name)
    header = data.decode("utf-8").splitlines()[0].split(",")
    assert detect_layout(header) == layout
    view, problem = raw_view(data, None)
    assert problem is None and len(view) == n_rows
    res = standardise(data, layout, dataset, str(shared_data_dir / name))
    frame = res.frame
    assert res.n_rows_in == n_rows
    assert len(frame) + sum(e["action"] == "drop_row" for e in res.log) == n_rows
    value_col = "usd_per_oz" if dataset == "gold" else "close_usd"
    assert frame[value_col].notna().all() and (frame[value_col] > 0).all()
    assert not frame["date"].duplicated().any()
    assert frame["date"].is_monotonic_increasing
    assert frame["source"].str.endswith(f":{name}").all()  # file name only, no local path
    if dataset == "gold":
        np.testing.assert_allclose(frame["usd_per_g"] * TROY_OUNCE_G, frame["usd_per_oz"], rtol=1e-14)


@pytest.mark.parametrize("name", OTHER_FILES)
def test_files_without_a_price_layout_are_refused_clearly(shared_data_dir, name):
    data = read_data_file(shared_data_dir / name)
    view, problem = raw_view(data, None)
    assert len(view) == 0 and "matches no known layout" in problem
    with pytest.raises(ValueError, match="matches no known layout"):
        detect_layout(data.decode("utf-8").splitlines()[0].split(","))


def test_gold_merged_is_pm_from_1968_04_01_to_2026_08_17(shared_data_dir):
    name = "gold_lbma_usd_daily_1968_2026_merged.csv"
    frame = _std(shared_data_dir, name).frame
    rows = _rows(shared_data_dir / name)
    with_pm = [r for r in rows if r["usd_pm"].strip()]
    assert _days(frame)[0] == "1968-04-01" and _days(frame)[-1] == "2026-08-17"
    assert len(frame) == len(with_pm)  # 14,810 rows minus the 147 blank-PM days
    assert len(rows) - len(with_pm) == 147
    assert frame["usd_per_oz"].notna().all()
    assert not frame["date"].duplicated().any()
    np.testing.assert_array_equal(frame["usd_per_oz"].to_numpy(), [float(r["usd_pm"]) for r in with_pm])


def test_xaut_bad_print_and_stale_quotes_are_gone(shared_data_dir):
    frame = _std(shared_data_dir, "xaut_usd_daily_2022_2026.csv").frame
    got = dict(zip(_days(frame), frame["close_usd"], strict=True))
    assert "2023-05-26" not in got
    assert got["2023-05-27"] == 1941.25  # close of the next day is sound (SOURCES.md)
    assert _days(frame)[0] == "2022-05-22"  # 2022-05-14..21 stale quotes dropped
    r = np.diff(np.log(frame["close_usd"].to_numpy()))
    assert np.abs(r).max() < np.log(1.15)  # no >15% step left once the bad print is gone


def test_broker_has_no_sunday_or_partial_bars(shared_data_dir):
    name = "xauusd_broker_mt5_daily_2007_2026.csv"
    frame = _std(shared_data_dir, name).frame
    rows = _rows(shared_data_dir / name)
    flagged = {r["date"] for r in rows if r["bar_note"]}
    assert len(flagged) == 109 + 15  # SOURCES.md counts
    assert not flagged & set(_days(frame))
    assert (frame["date"].dt.day_of_week < 5).all()  # weekdays only
    assert len(frame) == len(rows) - len(flagged)


def test_dgx_close_stays_per_token_of_one_gram(shared_data_dir):
    """DGX is 1 g per token: close_usd is compared with LBMA USD per gram on common days.

    SOURCES.md: DGX trades between -10% and +24% of gold, so the median ratio to the per-gram
    LBMA PM lies in [0.9, 1.24]; a per-ounce mix-up would give ~31 or ~0.03.
    """
    dgx = _std(shared_data_dir, "dgx_usd_daily_cmc_2018_2020.csv").frame
    gold = _std(shared_data_dir, "gold_lbma_usd_daily_1968_2026_merged.csv").frame
    both = dgx.merge(gold, on="date")
    assert len(both) > 500
    ratio = both["close_usd"] / both["usd_per_g"]
    assert 0.9 <= ratio.median() <= 1.24


def test_lbma_json_served_over_http_equals_csv_import(shared_data_dir, http_source, sleeps):
    """The real CSV values, served in the LBMA JSON wire format, give the same PM series."""
    name = "gold_lbma_am_pm_daily_1968_2023.csv"
    rows = _rows(shared_data_dir / name)

    def num(s: str) -> float | None:
        return float(s) if s.strip() else None

    records = [
        (r["date"], num(r["usd_pm"]), num(r["gbp_pm"]), num(r["eur_pm"])) for r in rows if r["date"] >= "1968-04-01"
    ]  # the feed starts with the PM fix
    url = http_source.add("/json/gold_pm.json", lbma_json_bytes(records))
    from_json = parse_lbma_json(fetch_lbma(url, make_settings()), origin_name=url).frame
    from_csv = _std(shared_data_dir, name).frame
    pd.testing.assert_frame_equal(from_json.drop(columns="source"), from_csv.drop(columns="source"))
    assert len(from_json) == sum(1 for r in rows if r["usd_pm"].strip())


def test_coingecko_market_chart_equals_coingecko_csv_on_same_values(shared_data_dir):
    """Both CoinGecko layouts date the 00:00 UTC snapshot as the previous day's close."""
    name = "xaut_usd_daily_coingecko_2020_2023.csv"
    rows = _rows(shared_data_dir / name)
    points = [(datetime.fromisoformat(r["date"]).replace(tzinfo=UTC), float(r["price_usd"])) for r in rows]
    chart = parse_coingecko_market_chart(coingecko_market_chart_bytes(points), "XAUT").frame
    from_csv = _std(shared_data_dir, name).frame
    pd.testing.assert_frame_equal(chart.drop(columns="source"), from_csv.drop(columns="source"))
    assert _days(from_csv)[0] == "2020-01-25"  # first snapshot 2020-01-26 00:00 UTC
