"""The ``[[stale]]`` entries of goldstress/data_quirks.toml against the real files.

Reached only through the ``shared_data_dir`` fixture (GOLDSTRESS_DATA_DIR; skipped when absent);
nothing is copied into the repo. The registry is read with tomllib and the files with pandas,
independently of tasks/standardise.py.

The rule the XAUT pinned-close entries were measured with (stated in the registry): a stretch is
stale when its closes, together with the close just before it (the last print that set the level,
kept), stay inside a band of ``BAND`` (max / min - 1) for at least ``MIN_ROWS`` rows, the median
intraday range (high - low) / close is at most ``MAX_MEDIAN_RANGE``, and the broker XAU/USD close
moves over at least ``GOLD_BAND_RATIO`` times that band on the same days. A live gold token cannot
do that: over five or more days gold moves by about 1% a day, and the token with it.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from goldstress.io.layouts import QUIRKS_PATH

pytestmark = pytest.mark.realdata

XAUT = "xaut_usd_daily_2022_2026.csv"
BROKER = "xauusd_broker_mt5_daily_2007_2026.csv"
TOKEN_OHLC_FILES = [
    XAUT,
    "paxg_usd_daily_2022_2026.csv",
    "paxg_usd_daily_cmc_2019_2020.csv",
    "xaut_usd_daily_cmc_2020.csv",
]
FIRST_ENTRY = ("2022-05-14", "2022-05-21")  # documented in SOURCES.md before the measured ones

BAND = 0.005
MIN_ROWS = 5
MAX_MEDIAN_RANGE = 0.0025
GOLD_BAND_RATIO = 5.0


def _stale_entries() -> list[dict]:
    return tomllib.loads(QUIRKS_PATH.read_text()).get("stale", [])


def _ohlc(d, file: str) -> pd.DataFrame:
    t = pd.read_csv(d / file)
    return t.set_index(pd.to_datetime(t["date"]))[["open_usd", "high_usd", "low_usd", "close_usd"]].astype(float)


def _broker_close(d) -> pd.Series:
    b = pd.read_csv(d / BROKER, keep_default_na=False)
    b = b[b["bar_note"] == ""]  # both flag kinds (Sunday bars, partial snapshots) out
    return pd.Series(b["close"].astype(float).to_numpy(), index=pd.to_datetime(b["date"]))


def _band(x: np.ndarray) -> float:
    return float(x.max() / x.min() - 1.0)


def _scan(tok: pd.DataFrame, gold: pd.Series) -> list[tuple[str, str]]:
    """Every stretch meeting the rule, left to right: a run of closes within BAND of each other
    is grown from each row (the anchor) as far as it goes; the rows after the anchor are stale
    when there are at least MIN_ROWS of them and the range and gold conditions hold."""
    close = tok["close_usd"].to_numpy()
    rng = ((tok["high_usd"] - tok["low_usd"]) / tok["close_usd"]).to_numpy()
    found, i, n = [], 0, len(close)
    while i < n:
        j = i
        while j + 1 < n and _band(close[i : j + 2]) <= BAND:
            j += 1
        if j - i >= MIN_ROWS:
            days = tok.index[i + 1 : j + 1]
            g = gold.reindex(days).dropna().to_numpy()
            if (
                np.median(rng[i + 1 : j + 1]) <= MAX_MEDIAN_RANGE
                and g.size >= 2
                and _band(g) >= GOLD_BAND_RATIO * _band(close[i : j + 1])
            ):
                found.append((str(days[0].date()), str(days[-1].date())))
            i = j + 1
        else:
            i += 1
    return found


def test_registry_stale_entries_are_exactly_the_stretches_the_rule_finds(shared_data_dir):
    """The measured XAUT entries are all the rule finds in that file, and it finds none in the
    other token OHLC files (PAXG 2022-26, PAXG and XAUT CMC 2019-20): no stretch is left out."""
    gold = _broker_close(shared_data_dir)
    registered = {(str(e["start"]), str(e["end"])) for e in _stale_entries() if e["file"] == XAUT}
    assert FIRST_ENTRY in registered
    assert set(_scan(_ohlc(shared_data_dir, XAUT), gold)) == registered - {FIRST_ENTRY}
    for file in TOKEN_OHLC_FILES[1:]:
        assert _scan(_ohlc(shared_data_dir, file), gold) == [], file


@pytest.mark.parametrize(
    "entry",
    [e for e in _stale_entries() if e["file"] == XAUT and (str(e["start"]), str(e["end"])) != FIRST_ENTRY],
    ids=lambda e: f"{e['start']}..{e['end']}",
)
def test_each_pinned_stretch_has_the_measured_property(shared_data_dir, entry):
    """Each measured entry: every calendar day present, closes pinned within BAND of the anchor
    close for >= MIN_ROWS rows, tight intraday ranges while the broker gold close moves at least
    GOLD_BAND_RATIO times as much, the run maximal (the close before the anchor and the close
    after the end are outside the band), and the reason quotes the row count and close range."""
    tok = _ohlc(shared_data_dir, XAUT)
    gold = _broker_close(shared_data_dir)
    start, end = pd.Timestamp(entry["start"]), pd.Timestamp(entry["end"])
    rows = tok.loc[start:end]
    assert list(rows.index) == list(pd.date_range(start, end, freq="D"))  # no missing day inside
    assert len(rows) >= MIN_ROWS
    a = tok.index.get_loc(start) - 1  # the anchor: the last print that set the level
    b = tok.index.get_loc(end)
    pinned = tok["close_usd"].iloc[a : b + 1].to_numpy()
    lo, hi = pinned.min(), pinned.max()
    assert _band(pinned) <= BAND
    assert not lo <= tok["close_usd"].iloc[a - 1] <= hi  # nothing of the run before the anchor
    assert not lo <= tok["close_usd"].iloc[b + 1] <= hi  # released the day after the end
    assert ((rows["high_usd"] - rows["low_usd"]) / rows["close_usd"]).median() <= MAX_MEDIAN_RANGE
    g = gold.reindex(rows.index).dropna().to_numpy()
    assert g.size >= 2 and _band(g) >= GOLD_BAND_RATIO * _band(pinned)
    # the token does not follow gold: between the stretch's gold days its close moves by under a
    # tenth of gold's moves (root mean square of the log changes), so the "premium" is minus gold
    days = rows.index[rows.index.isin(gold.index)]
    r_tok = np.diff(np.log(rows["close_usd"].reindex(days).to_numpy()))
    r_gold = np.diff(np.log(gold.reindex(days).to_numpy()))
    assert np.sqrt(np.mean(r_tok**2)) < 0.1 * np.sqrt(np.mean(r_gold**2))
    assert entry["action"] == "drop_row"
    assert f"{len(rows)} rows" in entry["reason"]
    rows_lo, rows_hi = rows["close_usd"].min(), rows["close_usd"].max()
    assert f"{rows_lo:.2f}-{rows_hi:.2f}" in entry["reason"]


def test_first_xaut_entry_matches_sources_md(shared_data_dir):
    """SOURCES.md: 2022-05-14 is a flat O=H=L=C row and 2022-05-18..05-21 have near-zero ranges."""
    tok = _ohlc(shared_data_dir, XAUT)
    first = tok.loc["2022-05-14"]
    assert first["open_usd"] == first["high_usd"] == first["low_usd"] == first["close_usd"]
    late = tok.loc["2022-05-18":"2022-05-21"]
    assert (((late["high_usd"] - late["low_usd"]) / late["close_usd"]) < 0.0015).all()


@pytest.mark.realdata
def test_each_supply_revision_is_a_one_day_step_between_flat_stretches(shared_data_dir):
    """A `supply_revision` entry is a revision of the reported circulating supply, not
    redemptions: market_cap_usd / close steps by more than 5% on that day while it moves less
    than 0.1% a day on the 3 days before and the 3 days after (real net redemptions of that
    size would not stop dead on both sides)."""
    with QUIRKS_PATH.open("rb") as fh:
        entries = tomllib.load(fh).get("supply_revision", [])
    assert entries, "the registry lists the PAXG 2020-07-02 revision"
    for e in entries:
        f = pd.read_csv(shared_data_dir / e["file"])
        price = "close_usd" if "close_usd" in f.columns else "price_usd"
        s = pd.Series(f["market_cap_usd"].to_numpy() / f[price].to_numpy(), index=pd.to_datetime(f["date"]))
        change = s.pct_change()
        i = s.index.get_loc(pd.Timestamp(e["date"]))
        assert abs(change.iloc[i]) > 0.05, e
        assert (change.iloc[i - 3 : i].abs() < 1e-3).all() and (change.iloc[i + 1 : i + 4].abs() < 1e-3).all(), e
