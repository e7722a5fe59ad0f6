"""Champion selection on a validation window and the backtest on the later hold-out
(models.selection), on a synthetic GJR-GARCH-t series.

Independent references: business-day arithmetic with numpy (window dates), a direct ``arch``
fit (the backtested parameters), a scalar-loop GJR recursion with scipy's t quantile (the
hold-out VaR and its breaches), the binomial likelihood ratio (Kupiec 1995) and the Basel
Committee (1996) Table 2 zones.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from scipy import stats

from models.risk import select_champion
from models.selection import (
    MIN_FIT_DAYS,
    backtest_on_holdout,
    score_on_validation,
    split_windows,
    var_backtest,
)

N, VALIDATION, HOLDOUT = 2000, 500, 500
START = "2010-01-04"
LEVELS = (0.95, 0.99)
CANDIDATES = (("garch", "t"), ("gjr", "t"), ("garch", "fhs"), ("gjr", "fhs"))
TRUE = dict(mu=2e-4, omega=2e-6, alpha=0.05, gamma=0.05, beta=0.90, nu=6.0)


def simulate(n: int, seed: int) -> np.ndarray:
    """GJR-GARCH(1,1,1) with standardised t shocks, scalar loop, 500 days of burn-in."""
    rng = np.random.default_rng(seed)
    p = TRUE
    z = rng.standard_t(p["nu"], n + 500) * math.sqrt((p["nu"] - 2) / p["nu"])
    s2 = p["omega"] / (1 - p["alpha"] - p["gamma"] / 2 - p["beta"])
    r = np.empty(n + 500)
    for t in range(n + 500):
        e = math.sqrt(s2) * z[t]
        r[t] = p["mu"] + e
        s2 = p["omega"] + (p["alpha"] + p["gamma"] * (e < 0)) * e * e + p["beta"] * s2
    return r[500:]


@pytest.fixture(scope="module")
def series() -> pd.Series:
    return pd.Series(simulate(N, seed=3), index=pd.bdate_range(START, periods=N, tz="UTC"))


@pytest.fixture(scope="module")
def windows(series):
    return split_windows(series.index, VALIDATION, HOLDOUT)


@pytest.fixture(scope="module")
def wild(series, windows) -> pd.Series:
    """The same series with its hold-out replaced by reversed returns five times as large, plus
    a -15% and a +12% day: nothing like the data before it."""
    r = series.to_numpy().copy()
    h = slice(windows.holdout.start, windows.holdout.stop)
    r[h] = 5.0 * r[h][::-1]
    r[windows.holdout.start + 10] = -0.15
    r[windows.holdout.start + 200] = 0.12
    return pd.Series(r, index=series.index)


def _iso(day: np.datetime64) -> str:
    return str(day.astype("datetime64[D]"))


def busday(offset: int) -> str:
    return _iso(np.busday_offset(np.datetime64(START), offset, roll="forward"))


# ----------------------------------------------------------------------------- windows


def test_windows_are_consecutive_disjoint_and_in_order(windows):
    """Fitting, validation, hold-out: lengths from the settings, dates from numpy's business-day
    calendar (return k is on business day k from the start), no day shared, no day skipped."""
    n_fit = N - VALIDATION - HOLDOUT
    assert (windows.fit.n_returns, windows.validation.n_returns, windows.holdout.n_returns) == (
        n_fit,
        VALIDATION,
        HOLDOUT,
    )
    assert (windows.fit.first_date, windows.fit.last_date) == (busday(0), busday(n_fit - 1))
    assert (windows.validation.first_date, windows.validation.last_date) == (busday(n_fit), busday(N - HOLDOUT - 1))
    assert (windows.holdout.first_date, windows.holdout.last_date) == (busday(N - HOLDOUT), busday(N - 1))
    # the hold-out starts on the business day right after the validation window ends
    next_day = np.busday_offset(np.datetime64(windows.validation.last_date), 1, roll="forward")
    assert windows.holdout.first_date == _iso(next_day)
    assert windows.fit.last_date < windows.validation.first_date <= windows.validation.last_date
    assert windows.validation.last_date < windows.holdout.first_date <= windows.holdout.last_date
    assert windows.fit.stop == windows.validation.start and windows.validation.stop == windows.holdout.start
    assert windows.pre_holdout.to_dict() == {
        "first_date": busday(0),
        "last_date": busday(N - HOLDOUT - 1),
        "n_returns": N - HOLDOUT,
    }
    assert windows.full_sample.to_dict() == {"first_date": busday(0), "last_date": busday(N - 1), "n_returns": N}


def test_too_short_a_series_is_refused_with_the_numbers(series):
    n = VALIDATION + HOLDOUT + MIN_FIT_DAYS
    split_windows(series.index[:n], VALIDATION, HOLDOUT)  # exactly enough
    with pytest.raises(
        ValueError, match=rf"{n - 1} returns less validation_days=500 and holdout_days=500 leave {MIN_FIT_DAYS - 1}"
    ):
        split_windows(series.index[: n - 1], VALIDATION, HOLDOUT)
    with pytest.raises(ValueError, match="strictly increasing"):
        split_windows(series.index[::-1], VALIDATION, HOLDOUT)
    with pytest.raises(ValueError, match="validation_days"):
        split_windows(series.index, 0, HOLDOUT)


# ----------------------------------------------------------------------------- selection


def _scores(returns, windows):
    return {f"{k}_{i}": score_on_validation(returns, windows, k, i, LEVELS) for k, i in CANDIDATES}


def _pick(scores) -> str:
    return select_champion(
        [{"name": n, "score": s.score, "passes_kupiec": s.passes_kupiec} for n, s in scores.items()]
    )["name"]


def test_selection_never_sees_the_holdout(series, wild, windows):
    """A wild hold-out leaves every fit, validation score and the champion unchanged; the
    hold-out backtest of that champion changes."""
    before, after = _scores(series, windows), _scores(wild, windows)
    for name in before:
        assert after[name].score == before[name].score, name
        assert after[name].passes_kupiec == before[name].passes_kupiec, name
        assert after[name].backtests == before[name].backtests, name
        assert after[name].fit.params == before[name].fit.params, name
    champion = _pick(before)
    assert _pick(after) == champion
    kind, innovations = champion.split("_")
    held, held_wild = (backtest_on_holdout(r, windows, kind, innovations, LEVELS) for r in (series, wild))
    assert held_wild.fit.params == held.fit.params  # fitted before the hold-out
    for level in ("0.95", "0.99"):
        assert held_wild.backtests[level]["n_exceptions"] > held.backtests[level]["n_exceptions"]
        assert held_wild.backtests[level]["kupiec_p_value"] != held.backtests[level]["kupiec_p_value"]


def test_the_validation_window_does_move_the_scores(series, windows):
    """The converse: the scores are computed from the validation returns (tripled here)."""
    r = series.to_numpy().copy()
    r[windows.validation.start : windows.validation.stop] *= 3.0
    base = score_on_validation(series, windows, "gjr", "t", LEVELS)
    moved = score_on_validation(r, windows, "gjr", "t", LEVELS)
    assert moved.fit.params == base.fit.params  # fitted before the validation window
    assert moved.score > base.score
    assert moved.backtests["0.99"]["n_exceptions"] > base.backtests["0.99"]["n_exceptions"]


# ----------------------------------------------------------------------------- hold-out backtest


@pytest.mark.parametrize("kind", ["garch", "gjr"])
def test_backtest_is_of_an_independent_fit_on_the_pre_holdout_data(series, windows, kind):
    """Parameters equal a direct arch fit on the returns before the hold-out; breaches equal a
    scalar-loop VaR from that fit; Kupiec's LR is the binomial likelihood ratio."""
    held = backtest_on_holdout(series, windows, kind, "t", LEVELS)
    x = series.to_numpy()[: N - HOLDOUT]
    res = arch_model(
        100 * x, mean="Constant", vol="GARCH", p=1, o=int(kind == "gjr"), q=1, dist="t", rescale=False
    ).fit(disp=False)
    raw = res.params
    p = {
        "mu": raw["mu"] / 100,
        "omega": raw["omega"] / 1e4,
        "alpha": raw["alpha[1]"],
        "gamma": raw["gamma[1]"] if kind == "gjr" else 0.0,
        "beta": raw["beta[1]"],
        "nu": raw["nu"],
    }
    for name, value in p.items():
        assert held.fit.params[name] == pytest.approx(value, rel=1e-9, abs=1e-15), name
    assert held.fit.n_obs == N - HOLDOUT

    e = float(res.resid[-1]) / 100
    s2 = (float(res.conditional_volatility[-1]) / 100) ** 2
    out = series.to_numpy()[N - HOLDOUT :]
    sig = []
    for r_t in out:
        s2 = p["omega"] + (p["alpha"] + p["gamma"] * (e < 0)) * e * e + p["beta"] * s2
        sig.append(math.sqrt(s2))
        e = r_t - p["mu"]
    sig = np.array(sig)
    for level in LEVELS:
        var = sig * math.sqrt((p["nu"] - 2) / p["nu"]) * stats.t.ppf(level, p["nu"]) - p["mu"]
        breaches = int(np.sum(-out > var))
        bt = held.backtests[f"{level:.2f}"]
        assert bt["n_exceptions"] == breaches
        assert bt["expected_exceptions"] == pytest.approx(HOLDOUT * (1 - level))
        lr = -2 * (
            stats.binom.logpmf(breaches, HOLDOUT, 1 - level) - stats.binom.logpmf(breaches, HOLDOUT, breaches / HOLDOUT)
        )
        assert bt["kupiec_lr"] == pytest.approx(lr, rel=1e-9, abs=1e-12)
        assert bt["kupiec_p_value"] == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-9)


def test_var_backtest_hand_example():
    """300 days, VaR 1 %, losses above it on days 10, 11, 120 and on 280..284: 8 breaches, 6 of
    them in the last 250 days (days 50..299) (yellow at 99 %: Basel 1996 Table 2, 5-9 breaches), two runs of
    consecutive breaches (Christoffersen's n11 = 5)."""
    r = np.full(300, 0.001)
    hits = [10, 11, 120, 280, 281, 282, 283, 284]
    r[hits] = -0.02
    bt = var_backtest(r, np.full(300, 0.01), 0.99)
    assert bt["n_exceptions"] == 8 and bt["n_obs"] == 300
    assert bt["expected_exceptions"] == pytest.approx(3.0)
    assert bt["basel_exceptions_last_250d"] == 6 and bt["basel_zone_last_250d"] == "yellow"
    n00, n01, n10, n11 = 288, 3, 3, 5  # transitions of the 299 consecutive pairs
    pi, p01, p11 = 8 / 299, 3 / 291, 5 / 8
    ll0 = (n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)
    ll1 = n00 * math.log(1 - p01) + n01 * math.log(p01) + n10 * math.log(1 - p11) + n11 * math.log(p11)
    assert bt["christoffersen_lr"] == pytest.approx(-2 * (ll0 - ll1), rel=1e-12)
    assert var_backtest(r, np.full(300, 0.01), 0.95)["basel_zone_last_250d"] == "n/a"
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        var_backtest(r, np.full(299, 0.01), 0.99)
