"""The broker bad-open ``[[bad_tick]]`` entries of goldstress/data_quirks.toml against the real
files (``shared_data_dir`` fixture; skipped without it), read with tomllib and pandas. The rule
stated in the registry: a bar opens at its own low (or high) more than ``SPIKE`` beyond both the
previous close and its own close, and more than ``SPIKE`` from the open of the independent MT4
broker series that day. The entries must be exactly the bars that meet it, each nulling the open
and the low it set.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from goldstress.io.layouts import QUIRKS_PATH

pytestmark = pytest.mark.realdata

BROKER = "xauusd_broker_mt5_daily_2007_2026.csv"
SECOND = "xauusd_broker_mt4_daily_2004_2025.csv"
SPIKE = 0.02


def _bars(d, file: str) -> pd.DataFrame:
    b = pd.read_csv(d / file, keep_default_na=False)
    if "bar_note" in b:
        b = b[b["bar_note"] == ""]
    return b.set_index(pd.to_datetime(b["date"]))[["open", "high", "low", "close"]].astype(float)


def _entries() -> list[dict]:
    ticks = tomllib.loads(QUIRKS_PATH.read_text()).get("bad_tick", [])
    return [t for t in ticks if t["file"] == BROKER]


def test_bad_opens_are_exactly_the_single_print_spikes(shared_data_dir):
    b = _bars(shared_data_dir, BROKER)
    prev = b["close"].shift(1)
    low_spike = (b["open"] == b["low"]) & (b["open"] < prev * (1 - SPIKE)) & (b["open"] < b["close"] * (1 - SPIKE))
    high_spike = (b["open"] == b["high"]) & (b["open"] > prev * (1 + SPIKE)) & (b["open"] > b["close"] * (1 + SPIKE))
    found = sorted(str(d.date()) for d in b.index[low_spike | high_spike])
    assert found == sorted(e["date"] for e in _entries())
    assert len(found) == 4


def test_bad_opens_disagree_with_the_second_broker_and_nothing_else_does(shared_data_dir):
    b = _bars(shared_data_dir, BROKER)
    second = _bars(shared_data_dir, SECOND)
    common = b.index.intersection(second.index)
    diff = np.log(b.loc[common, "open"] / second.loc[common, "open"])
    far = sorted(str(d.date()) for d in common[np.abs(diff.to_numpy()) > SPIKE])
    assert far == sorted(e["date"] for e in _entries())
    mondays = common[common.day_of_week == 0]
    assert np.median(np.abs(diff.loc[mondays])) < 0.001  # the two series' Monday opens agree otherwise


def test_each_entry_nulls_the_open_and_the_low_and_keeps_the_close(shared_data_dir):
    b = _bars(shared_data_dir, BROKER)
    for e in _entries():
        assert e["action"] == "null" and sorted(e["columns"]) == ["low", "open"], e
        row = b.loc[pd.Timestamp(e["date"])]
        assert row["open"] == row["low"]
        assert f"{row['open']:.2f}" in e["reason"] and f"{row['close']:.2f}" in e["reason"]


def test_the_importer_leaves_the_broker_closes_untouched(shared_data_dir):
    from goldstress.io.layouts import load_quirks, standardise

    data = (shared_data_dir / BROKER).read_bytes()
    res = standardise(data, "broker_ohlc", "gold", BROKER, load_quirks())
    nulled = [(e["date"], e["column"]) for e in res.log if e["action"] == "null"]
    assert sorted(nulled) == sorted((e["date"], c) for e in _entries() for c in e["columns"])
    b = _bars(shared_data_dir, BROKER)
    np.testing.assert_array_equal(res.frame["usd_per_oz"].to_numpy(), b["close"].to_numpy())
