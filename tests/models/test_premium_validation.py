"""models/premium_validation.py against hand-worked cases, closed forms (Gaussian AR(1)
quantiles, Kupiec's statistic) and independent numpy/scipy computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models import premium_validation as pv
from models.premium import PremiumProcess
from models.token.spec import load_token_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_premium_statistics_on_a_hand_worked_path():
    """Ten days: |p| > 1% on days 3, 4, 5 and 8 (run of three), > 0.5% also on day 9."""
    p = np.array([0.0, 0.002, -0.004, 0.012, 0.015, -0.011, 0.001, 0.0, 0.02, 0.006])
    st = pv.premium_statistics_on(p)
    assert st["sd"][0] == pytest.approx(np.std(p, ddof=1))
    assert st["share_abs_gt_1pct"][0] == pytest.approx(0.4)
    assert st["share_abs_gt_0.5pct"][0] == pytest.approx(0.5)
    assert st["longest_run_abs_gt_1pct"][0] == 3
    assert st["q99"][0] == pytest.approx(np.quantile(p, 0.99)) and st["q05"][0] == pytest.approx(np.quantile(p, 0.05))
    with pytest.raises(ValueError, match="premia"):
        pv.premium_statistics_on(np.array([0.1]))


def test_distribution_comparison_reads_the_observed_days_and_flags_outliers():
    """Simulated paths = the observed path plus small noise on weekdays, wild values at weekends
    (not observed, so not compared): the observed statistics sit inside the simulated range; a
    doubled observed path does not."""
    days = pd.date_range("2024-01-01", periods=70, freq="D")
    rng = np.random.default_rng(3)
    weekdays = days[days.day_of_week < 5]
    obs = pd.Series(rng.normal(0, 0.006, weekdays.size), index=weekdays)
    sim = pd.DataFrame(obs.reindex(days).fillna(0.5).to_numpy()[:, None] + rng.normal(0, 1e-4, (70, 200)), index=days)
    out = pv.distribution_comparison(sim, obs)
    assert out["n_days"] == weekdays.size and out["n_paths"] == 200
    assert all(s["within"] for s in out["statistics"].values())
    assert out["statistics"]["sd"]["simulated_median"] == pytest.approx(obs.std(), rel=0.01)
    wide = pv.distribution_comparison(sim, 2 * obs)
    assert not wide["statistics"]["sd"]["within"]
    with pytest.raises(ValueError, match="band"):
        pv.distribution_comparison(sim, obs, band=1.5)


def test_band_backtest_counts_match_the_gaussian_ar1_closed_form_and_kupiec():
    """Normal AR(1): the one-day 1%/99% quantiles are m + phi (p - m) -+ 2.326 sigma; the counts
    outside, their share and Kupiec's LR (chi2 with 1 df) are recomputed here independently."""
    proc = PremiumProcess(mean=0.001, phi=0.6, sigma=0.003)
    x = proc.simulate(1, 1500, np.random.default_rng(5), p0=0.001)[0]
    s = pd.Series(x, index=pd.bdate_range("2020-01-06", periods=x.size))
    out = pv.premium_band_backtest(proc, s)
    prev, curr = x[:-1], x[1:]
    cond = 0.001 + 0.6 * (prev - 0.001)
    lo, hi = cond + 0.003 * stats.norm.ppf(0.01), cond + 0.003 * stats.norm.ppf(0.99)
    below, above = int((curr < lo).sum()), int((curr > hi).sum())
    n, k = curr.size, below + above
    assert (out["n_steps"], out["below"], out["above"]) == (n, below, above)
    lr = -2 * (k * math.log(0.02) + (n - k) * math.log(0.98) - k * math.log(k / n) - (n - k) * math.log(1 - k / n))
    assert out["kupiec_p"] == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-9)
    assert out["kupiec_p"] > 0.01  # the true process passes
    too_narrow = PremiumProcess(mean=0.001, phi=0.6, sigma=0.0015)
    assert pv.premium_band_backtest(too_narrow, s)["kupiec_p"] < 1e-6


def test_clock_noise_recovers_a_common_component():
    """p_a = q_a + c, p_b = q_b + c with independent q_a, q_b (sd 0.4%, 0.5%) and c (sd 0.3%):
    the covariance gives the clock noise's sd, the net sds the premia's own, within the sampling
    error of 20,000 days; the log price ratio carries no c."""
    rng = np.random.default_rng(11)
    n = 20_000
    days = pd.date_range("1970-01-01", periods=n, freq="D")
    c = rng.normal(0, 0.003, n)
    qa, qb = rng.normal(0, 0.004, n), rng.normal(0, 0.005, n)
    out = pv.clock_noise(pd.Series(qa + c, index=days), pd.Series(qb + c, index=days))
    assert out["clock_noise_sd"] == pytest.approx(0.003, rel=0.05)
    assert out["premium_sd_net_a"] == pytest.approx(0.004, rel=0.05)
    assert out["premium_sd_net_b"] == pytest.approx(0.005, rel=0.05)
    assert out["clock_noise_share_of_variance_a"] == pytest.approx(9 / 25, rel=0.1)
    assert out["ratio_sd"] == pytest.approx(np.std(np.log1p(qa + c) - np.log1p(qb + c), ddof=1), rel=1e-12)
    assert out["ratio_sd"] == pytest.approx(math.sqrt(0.004**2 + 0.005**2), rel=0.05)
    with pytest.raises(ValueError, match="common"):
        pv.clock_noise(pd.Series(qa[:5], index=days[:5]), pd.Series(qb[:5], index=days[:5]))


def test_replay_premium_runs_the_gold_path_on_calendar_days():
    """Five weekday gold closes from a Friday: the replay covers every calendar day, one column
    per path, and holds the token model's day-0 premium on day 0."""
    spec = load_token_spec(SPECS / "paxg.toml")
    gold = pd.Series(
        [4000.0, 3950.0, 3900.0, 3980.0, 4010.0], index=pd.bdate_range("2025-01-03", periods=5)
    )  # Fri .. Thu
    sim = pv.replay_premium(spec, gold, "2025-01-01", "2025-01-31", 50, np.random.default_rng(2))
    assert sim.shape == (7, 50) and list(sim.index) == list(pd.date_range("2025-01-03", "2025-01-09"))
    assert np.isfinite(sim.to_numpy()).all() and sim.iloc[1:].std(axis=1).gt(0).all()
    with pytest.raises(ValueError, match="fewer than 2"):
        pv.replay_premium(spec, gold, "2025-02-01", "2025-02-10", 5, np.random.default_rng(2))


def test_verdict_passes_only_when_every_check_holds():
    comp = {
        "band": 0.9,
        "statistics": {
            "sd": {"observed": 0.005, "simulated_lo": 0.004, "simulated_hi": 0.006, "within": True},
            "share_abs_gt_1pct": {"observed": 0.1, "simulated_lo": 0.05, "simulated_hi": 0.2, "within": True},
        },
    }
    bt = {"kupiec_p": 0.3, "share_outside": 0.025, "band_probs": [0.01, 0.99], "expected_share_outside": 0.02}
    assert pv.verdict(bt, comp)["verdict"] == "pass"
    assert pv.verdict({**bt, "kupiec_p": 0.01}, comp)["verdict"] == "fail"
    off = {**comp, "statistics": {**comp["statistics"], "sd": {**comp["statistics"]["sd"], "within": False}}}
    out = pv.verdict(bt, off)
    assert out["verdict"] == "fail" and len(out["reasons"]) == 1 and out["reasons"][0].startswith("sd")
