"""Weekend gap measures (models/weekend.py) on small weekends built here by hand.

Expected numbers are written out from the prices below: log returns as ``ln(price ratio)``,
sample sd from Python's ``statistics.stdev``, Pearson correlation from its textbook sum formula,
quantiles by Hyndman & Fan (1996) type 7 (``h = (n - 1) p``, ``x_(floor h) + frac(h) * (next -
x_(floor h))``, numpy's default), VaR as the lower empirical quantile of the losses and ES by
Acerbi & Tasche (2002): ``(sum of the losses above rank c + (c - n a) l_(c)) / (n (1 - a))``
with ``c = ceil(n a)``.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from models import weekend as w

D = pd.Timestamp


def _series(prices: dict[str, float]) -> pd.Series:
    idx = pd.DatetimeIndex([D(k, tz="UTC") for k in sorted(prices)], name="date")
    return pd.Series([prices[k] for k in sorted(prices)], index=idx, dtype=float)


def _bars(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
    idx = pd.DatetimeIndex([D(k, tz="UTC") for k in sorted(rows)], name="date")
    return pd.DataFrame(
        {"open": [rows[k][0] for k in sorted(rows)], "close": [rows[k][1] for k in sorted(rows)]}, index=idx
    )


def _calendar(first: str, last: str, value: float, **overrides: float) -> dict[str, float]:
    days = {str(d.date()): value for d in pd.date_range(first, last)}
    days.update({k.replace("_", "-")[1:]: v for k, v in overrides.items()})
    return days


# Weekends (Friday -> Sunday token close, Friday close -> Monday open gold):
#   2024-01-05  token 2000 -> 2040 (+2%)      gold 2000 -> 2010 (+0.5%)   compared
#   2024-01-12  token 2000 -> 1985 (-0.75%)   gold 2000 -> 1990 (-0.5%)   compared
#   2024-01-19  token 2000 -> 2010            no Monday bar (holiday)      skipped: gold_holiday_monday
#   2024-01-26  token 2000 -> (no Sunday)                                  skipped: no_token_close_sunday
#   2024-02-02  (no Friday) -> 2000                                        skipped: no_token_close_friday
#   2024-02-09  token 2000 -> 1900 (-5%)      gold 2000 -> 1910 (-4.5%)   compared
#   2024-02-16  token 2000 -> 2000            Friday bar removed on import  skipped: gold_bar_removed_friday
#   2024-02-23  token 2000 -> 1980            no Friday bar (holiday)       skipped: gold_holiday_friday
#   2024-03-01  token 2000 -> 1990            Monday open removed           skipped: gold_open_removed_monday
TOKEN = _calendar(
    "2024-01-05",
    "2024-03-03",
    2000.0,
    d2024_01_07=2040.0,
    d2024_01_14=1985.0,
    d2024_01_21=2010.0,
    d2024_02_11=1900.0,
    d2024_02_25=1980.0,
    d2024_03_03=1990.0,
)
del TOKEN["2024-01-28"], TOKEN["2024-02-02"]
BARS = {str(d.date()): (2000.0, 2000.0) for d in pd.bdate_range("2024-01-05", "2024-03-08")}
BARS["2024-01-08"] = (2010.0, 2000.0)
BARS["2024-01-15"] = (1990.0, 2000.0)
BARS["2024-02-12"] = (1910.0, 2000.0)
BARS["2024-03-04"] = (float("nan"), 2000.0)
for gone in ("2024-01-22", "2024-02-16", "2024-02-23"):
    del BARS[gone]
REMOVED = ["2024-02-16"]

TOK_R = [math.log(2040 / 2000), math.log(1985 / 2000), math.log(1900 / 2000)]
GOLD_R = [math.log(2010 / 2000), math.log(1990 / 2000), math.log(1910 / 2000)]


def _pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return sxy / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def test_weekend_table_legs_and_skip_reasons():
    t = w.weekend_table(_series(TOKEN), _bars(BARS), REMOVED)
    assert [str(d.date()) for d in t.index] == [
        "2024-01-05",
        "2024-01-12",
        "2024-01-19",
        "2024-01-26",
        "2024-02-02",
        "2024-02-09",
        "2024-02-16",
        "2024-02-23",
        "2024-03-01",
    ]
    assert t["skip"].tolist() == [
        "",
        "",
        "gold_holiday_monday",
        "no_token_close_sunday",
        "no_token_close_friday",
        "",
        "gold_bar_removed_friday",
        "gold_holiday_friday",
        "gold_open_removed_monday",
    ]
    ok = t[t["skip"] == ""]
    np.testing.assert_allclose(ok["token_log_return"], TOK_R, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ok["gold_gap_log_return"], GOLD_R, rtol=0, atol=1e-15)
    assert t.loc[D("2024-01-19", tz="UTC"), "token_log_return"] == pytest.approx(math.log(2010 / 2000))
    assert math.isnan(t.loc[D("2024-01-26", tz="UTC"), "token_log_return"])


def test_tracking_error_by_hand():
    t = w.weekend_table(_series(TOKEN), _bars(BARS), REMOVED)
    got = w.weekend_tracking(t)
    d = [math.log(2040 / 2010), math.log(1985 / 1990), math.log(1900 / 1910)]  # token / gold price ratios
    assert got["n_weekends"] == 3
    assert got["first_friday"] == "2024-01-05" and got["last_friday"] == "2024-02-09"
    assert got["tracking_error_mean"] == pytest.approx(sum(d) / 3, abs=1e-15)
    assert got["tracking_error_sd"] == pytest.approx(statistics.stdev(d), rel=1e-12)
    assert got["correlation"] == pytest.approx(_pearson(TOK_R, GOLD_R), rel=1e-12)
    assert got["token_sd"] == pytest.approx(statistics.stdev(TOK_R), rel=1e-12)
    assert got["gold_sd"] == pytest.approx(statistics.stdev(GOLD_R), rel=1e-12)
    # |d| = 1.48%, 0.25%, 0.52%: two weekends beyond 0.5%, one beyond 1%
    assert got["share_abs_difference_above_0.5pct"] == pytest.approx(2 / 3)
    assert got["share_abs_difference_above_1pct"] == pytest.approx(1 / 3)
    assert got["max_abs_difference"] == pytest.approx(math.log(2040 / 2010))
    assert got["max_abs_difference_friday"] == "2024-01-05"
    assert got["skipped"] == {
        "no_token_close_friday": 1,
        "no_token_close_sunday": 1,
        "gold_bar_removed_friday": 1,
        "gold_holiday_friday": 1,
        "gold_holiday_monday": 1,
        "gold_open_removed_monday": 1,
    }


def test_without_bars_every_weekend_is_outside_gold_history_but_token_legs_stay():
    t = w.weekend_table(_series(TOKEN))
    assert set(t["skip"]) == {"outside_gold_history", "no_token_close_friday", "no_token_close_sunday"}
    assert t["token_log_return"].notna().sum() == 7
    assert w.weekend_tracking(t)["n_weekends"] == 0


def test_weekends_before_the_first_bar_are_outside_gold_history():
    bars = {k: v for k, v in BARS.items() if k >= "2024-01-10"}
    t = w.weekend_table(_series(TOKEN), _bars(bars), REMOVED)
    assert t["skip"].iloc[0] == "outside_gold_history"
    assert t["skip"].iloc[1] == ""


def test_a_removed_last_monday_is_a_removed_bar_not_the_end_of_the_history():
    bars = {k: v for k, v in BARS.items() if k <= "2024-01-12"}  # the bar of Monday 01-15 was removed
    t = w.weekend_table(_series(TOKEN), _bars(bars), ["2024-01-15"])
    assert t["skip"].iloc[:3].tolist() == ["", "gold_bar_removed_monday", "outside_gold_history"]
    g = w.gold_gap_table(_bars(bars), ["2024-01-15"])
    assert g["skip"].tolist() == ["", "gold_bar_removed_monday"]


def test_var_es_lower_quantile_and_acerbi_tasche_by_hand():
    losses = [i / 1000 for i in range(-14, 16)]  # n = 30 losses -1.4% .. +1.5%, one per weekend
    r = pd.Series([math.log(1 - x) for x in losses], index=pd.date_range("2020-01-03", periods=30, freq="7D", tz="UTC"))
    got = w.weekend_var_es(r, (0.95, 0.99))
    s = sorted(losses)
    # 95%: n a = 28.5, c = 29 -> VaR = l_(29); ES = (l_(30) + (29 - 28.5) l_(29)) / 1.5
    assert got["var_95"] == pytest.approx(s[28], abs=1e-15)
    assert got["es_95"] == pytest.approx((s[29] + 0.5 * s[28]) / 1.5, abs=1e-15)
    # 99%: n a = 29.7, c = 30 -> VaR = l_(30); ES = (0 + (30 - 29.7) l_(30)) / 0.3 = l_(30)
    assert got["var_99"] == pytest.approx(s[29], abs=1e-15)
    assert got["es_99"] == pytest.approx(s[29], abs=1e-15)
    assert got["n_weekends"] == 30
    assert got["tail_weekends_95"] == pytest.approx(1.5)
    assert got["worst_loss"] == pytest.approx(0.015) and got["worst_loss_friday"] == str(r.index[-1].date())


def test_var_es_skips_nan_weekends_and_reads_losses_as_value_fractions():
    r = pd.Series([math.log(0.9), float("nan"), math.log(1.1)], index=pd.date_range("2024-01-05", periods=3, freq="7D"))
    got = w.weekend_var_es(r, (0.5,))
    assert got["n_weekends"] == 2
    # losses 1 - 0.9 = 0.10 and 1 - 1.1 = -0.10; n a = 1 -> c = 1 -> VaR = -0.10; ES = (0.10 + 0) / 1
    assert got["var_50"] == pytest.approx(-0.10)
    assert got["es_50"] == pytest.approx(0.10)


def test_gold_gap_table_over_the_bar_history():
    g = w.gold_gap_table(_bars(BARS), REMOVED)
    assert str(g.index[0].date()) == "2024-01-05" and str(g.index[-1].date()) == "2024-03-01"
    ok = g[g["skip"] == ""]["gold_gap_log_return"]
    # every other weekend has Friday close 2000 and Monday open 2000 (gap 0)
    expected = {
        "2024-01-05": math.log(2010 / 2000),
        "2024-01-12": math.log(1990 / 2000),
        "2024-02-09": math.log(1910 / 2000),
    }
    for day, value in ok.items():
        assert value == pytest.approx(expected.get(str(day.date()), 0.0), abs=1e-15)
    assert len(ok) == 9 - 4  # 9 Fridays, 4 skipped
    var = w.weekend_var_es(ok, (0.95,))
    assert var["var_95"] == pytest.approx(1 - 1910 / 2000)  # n a = 4.75 -> c = 5: the largest loss


def _stats_by_hand(p: list[float]) -> dict[str, float]:
    s = sorted(p)
    n = len(s)

    def q(prob: float) -> float:
        h = (n - 1) * prob
        lo = math.floor(h)
        return s[lo] + (h - lo) * (s[min(lo + 1, n - 1)] - s[lo])

    return {
        "n_days": n,
        "mean": sum(p) / n,
        "sd": statistics.stdev(p),
        "q01": q(0.01),
        "q99": q(0.99),
        "share_abs_above_0.5pct": sum(abs(x) > 0.005 for x in p) / n,
        "share_abs_above_1pct": sum(abs(x) > 0.01 for x in p) / n,
    }


def _check(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


def test_weekend_and_weekday_premium_by_hand():
    # Span 2024-01-05 (Fri) .. 2024-01-21 (Sun). Gold closes are 2000 every weekday; Monday opens
    # 2010 (01-08) and 1990 (01-15); no bar on Monday 01-22, so the weekend of 01-19 is out of the
    # weekend sample (its Saturday/Sunday prices, 2500, would show if it were not).
    token = _calendar(
        "2024-01-05",
        "2024-01-21",
        2000.0,
        d2024_01_06=2010.0,
        d2024_01_07=2030.0,
        d2024_01_10=2030.0,
        d2024_01_11=2012.0,
        d2024_01_13=1980.0,
        d2024_01_14=1990.0,
        d2024_01_17=1991.0,
        d2024_01_20=2500.0,
        d2024_01_21=2500.0,
    )
    bars = {str(d.date()): (2000.0, 2000.0) for d in pd.bdate_range("2024-01-05", "2024-01-19")}
    bars["2024-01-08"] = (2010.0, 2000.0)
    bars["2024-01-15"] = (1990.0, 2000.0)
    got = w.weekend_premium(_series(token), _bars(bars), 1.0)
    assert got["n_weekends"] == 2
    # 11 weekdays: +1.5% (01-10), +0.6% (01-11), -0.45% (01-17), 0 otherwise
    weekday = [0.0, 0.0, 0.0, 0.015, 0.006, 0.0, 0.0, 0.0, -0.0045, 0.0, 0.0]
    _check(got["weekday_vs_same_day_close"], _stats_by_hand(weekday))
    assert got["weekday_vs_same_day_close"]["q01"] == pytest.approx(-0.00405)  # h = 0.1: -0.0045 + 0.1 * 0.0045
    assert got["weekday_vs_same_day_close"]["q99"] == pytest.approx(0.0141)  # h = 9.9: 0.006 + 0.9 * 0.009
    sat_fri, sun_fri = [2010 / 2000 - 1, 1980 / 2000 - 1], [2030 / 2000 - 1, 1990 / 2000 - 1]
    sat_mon, sun_mon = [2010 / 2010 - 1, 1980 / 1990 - 1], [2030 / 2010 - 1, 1990 / 1990 - 1]
    _check(got["saturday_vs_friday_close"], _stats_by_hand(sat_fri))
    _check(got["sunday_vs_friday_close"], _stats_by_hand(sun_fri))
    _check(got["weekend_vs_friday_close"], _stats_by_hand(sat_fri + sun_fri))
    _check(got["saturday_vs_monday_open"], _stats_by_hand(sat_mon))
    _check(got["sunday_vs_monday_open"], _stats_by_hand(sun_mon))
    _check(got["weekend_vs_monday_open"], _stats_by_hand(sat_mon + sun_mon))


def test_premium_of_a_one_gram_token_uses_its_gold_content():
    oz = 1 / 31.1034768
    token = {"2024-01-05": 2000 * oz, "2024-01-06": 2020 * oz, "2024-01-07": 2000 * oz}
    bars = {"2024-01-05": (2000.0, 2000.0), "2024-01-08": (2000.0, 2000.0)}
    got = w.weekend_premium(_series(token), _bars(bars), oz)
    assert got["saturday_vs_friday_close"]["mean"] == pytest.approx(0.01)
    assert got["weekday_vs_same_day_close"]["mean"] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: w.weekend_table(_series({"2024-01-05": float("nan")})), "token_close: row"),
        (lambda: w.weekend_table(_series(TOKEN), pd.DataFrame({"close": [1.0]})), "bars: no column 'open'"),
        (
            lambda: w.weekend_table(_series(TOKEN), _bars(BARS).tz_convert(None)),
            "token_close/bars: time zones differ",
        ),
        (lambda: w.weekend_table(_series(TOKEN), _bars({"2024-01-05": (-1.0, 2000.0)})), r"bars\.open: row"),
        (lambda: w.weekend_premium(_series(TOKEN), _bars(BARS), 0.0), "oz_per_token"),
        (lambda: w.weekend_var_es(pd.Series([math.inf])), "infinite"),
        (lambda: w.weekend_var_es(pd.Series([0.01]), (99,)), "level"),
        (lambda: w.weekend_tracking(pd.DataFrame({"skip": []})), "no column 'token_log_return'"),
    ],
)
def test_bad_input_gives_one_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
