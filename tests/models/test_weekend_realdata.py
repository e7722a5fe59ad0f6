"""Weekend gap measures on the real files (``shared_data_dir`` fixture; skipped without it),
against a recomputation from the CSVs with plain pandas (no importer, no models.weekend): broker
bars flagged in ``bar_note`` removed as SOURCES.md says, the Monday opens the quirks registry nulls
read with tomllib; a weekend is a token Friday row with a Sunday row two days later, gold's gap the
broker's Friday bar to the bar three days later. VaR = lower empirical quantile of the losses
``1 - P_sun / P_fri``, ES = Acerbi & Tasche (2002), both written out below.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldstress.io.layouts import QUIRKS_PATH
from goldstress.settings import Settings

pytestmark = pytest.mark.realdata

BROKER = "xauusd_broker_mt5_daily_2007_2026.csv"
PAXG = "paxg_usd_daily_2022_2026.csv"
XAUT = "xaut_usd_daily_2022_2026.csv"
FLAGS = ("sunday_open_session", "partial_day_snapshot_close_unreliable")
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def section(shared_data_dir: Path) -> dict:
    from tasks.weekend import measure_weekend

    return measure_weekend.fn(Settings(data={"data_dir": shared_data_dir}))


def _broker(d: Path) -> pd.DataFrame:
    b = pd.read_csv(d / BROKER, keep_default_na=False)
    b = b[~b["bar_note"].isin(FLAGS)]
    b = b.set_index(pd.to_datetime(b["date"]))[["open", "close"]].astype(float)
    ticks = tomllib.loads(QUIRKS_PATH.read_text())["bad_tick"]
    for t in ticks:
        if t["file"] == BROKER and "open" in t["columns"]:
            b.loc[pd.Timestamp(t["date"]), "open"] = np.nan
    return b


def _token_weekends(d: Path, file: str) -> pd.DataFrame:
    t = pd.read_csv(d / file)
    close = pd.Series(t["close_usd"].astype(float).to_numpy(), index=pd.to_datetime(t["date"]))
    fridays = close.index[close.index.day_of_week == 4]
    sunday = close.reindex(fridays + 2 * DAY).to_numpy()
    out = pd.DataFrame({"fri": close.loc[fridays].to_numpy(), "sun": sunday}, index=fridays)
    return out.dropna()


def _var_es(losses: np.ndarray, level: float) -> tuple[float, float]:
    x = np.sort(losses)
    n = x.size
    c = math.ceil(n * level - 1e-9)
    var = x[c - 1]
    es = (x[c:].sum() + (c - n * level) * var) / (n * (1 - level))
    return float(var), float(es)


def test_paxg_weekend_count_and_var_match_a_pandas_recomputation(section, shared_data_dir):
    w = _token_weekends(shared_data_dir, PAXG)
    losses = 1 - (w["sun"] / w["fri"]).to_numpy()
    got = section["tokens"]["paxg"]["holder_weekend"]
    assert got["n_weekends"] == len(w)
    assert len(w) > 190  # four years less the 49-day hole of the file
    for level, key in ((0.95, "95"), (0.99, "99")):
        var, es = _var_es(losses, level)
        assert got[f"var_{key}"] == pytest.approx(var, abs=1e-12)
        assert got[f"es_{key}"] == pytest.approx(es, abs=1e-12)
    assert got["worst_loss"] == pytest.approx(losses.max(), abs=1e-12)


def test_paxg_tracking_against_gold_matches_a_pandas_recomputation(section, shared_data_dir):
    w = _token_weekends(shared_data_dir, PAXG)
    b = _broker(shared_data_dir)
    fri_close = b["close"].reindex(w.index)
    mon_open = b["open"].reindex(w.index + 3 * DAY).to_numpy()
    both = w[fri_close.notna().to_numpy() & ~np.isnan(mon_open)]
    tok = np.log(both["sun"] / both["fri"]).to_numpy()
    gold = np.log(b["open"].reindex(both.index + 3 * DAY).to_numpy() / b["close"].reindex(both.index).to_numpy())
    d = tok - gold
    got = section["tokens"]["paxg"]["tracking"]
    assert got["n_weekends"] == len(both)
    assert got["correlation"] == pytest.approx(pd.Series(tok).corr(pd.Series(gold)), abs=1e-12)
    assert got["tracking_error_mean"] == pytest.approx(d.mean(), abs=1e-12)
    assert got["tracking_error_sd"] == pytest.approx(d.std(ddof=1), abs=1e-12)
    assert got["share_abs_difference_above_1pct"] == pytest.approx(np.mean(np.abs(d) > 0.01), abs=1e-12)
    # holidays: the token weekend has both closes and a Friday bar, but no bar on the Monday
    holidays = fri_close.notna().to_numpy() & ~np.isin(w.index + 3 * DAY, b.index)
    assert got["skipped"].get("gold_holiday_monday", 0) == int(holidays.sum()) > 0


def test_xaut_count_leaves_out_the_quirk_rows(section, shared_data_dir):
    """XAUT's stale stretches and bad print are removed on import (goldstress/data_quirks.toml):
    weekends touching them are not counted, so the count is below the raw file's."""
    raw = _token_weekends(shared_data_dir, XAUT)
    ticks = tomllib.loads(QUIRKS_PATH.read_text())
    gone = set()
    for st in ticks["stale"]:
        if st["file"] == XAUT:
            gone |= set(pd.date_range(st["start"], st["end"]))
    gone |= {pd.Timestamp(t["date"]) for t in ticks["bad_tick"] if t["file"] == XAUT and t["action"] == "drop_row"}
    kept = raw[~raw.index.isin(gone) & ~(raw.index + 2 * DAY).isin(gone)]
    got = section["tokens"]["xaut"]["holder_weekend"]
    assert got["n_weekends"] == len(kept) < len(raw)
    var, _ = _var_es(1 - (kept["sun"] / kept["fri"]).to_numpy(), 0.99)
    assert got["var_99"] == pytest.approx(var, abs=1e-12)


def test_gold_gap_over_the_broker_history_matches_a_pandas_recomputation(section, shared_data_dir):
    b = _broker(shared_data_dir)
    fridays = b.index[b.index.day_of_week == 4]
    mon_open = b["open"].reindex(fridays + 3 * DAY).to_numpy()
    ok = ~np.isnan(mon_open)
    losses = 1 - mon_open[ok] / b.loc[fridays, "close"].to_numpy()[ok]
    got = section["gold"]["gap_var_es"]
    assert got["n_weekends"] == int(ok.sum()) > 900  # 2007-2026
    for level, key in ((0.95, "95"), (0.99, "99")):
        var, es = _var_es(losses, level)
        assert got[f"var_{key}"] == pytest.approx(var, abs=1e-12)
        assert got[f"es_{key}"] == pytest.approx(es, abs=1e-12)
    assert section["gold"]["opens_removed_on_import"] == ["2008-09-15", "2008-10-13", "2008-10-20", "2008-10-27"]
