"""models/calibration.py against independent computations (pandas merges, loops, scipy, closed
forms of the Gaussian AR(1)) on small synthetic series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models import calibration as cal
from models.units import TROY_OUNCE_G


# ----------------------------------------------------------------------------------------------
# synthetic inputs
# ----------------------------------------------------------------------------------------------
def _gold_and_token(n_days: int = 120, seed: int = 3, oz: float = 1.0):
    """Gold on weekdays (minus two holidays), token every calendar day with a known premium."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=n_days, freq="D", tz="UTC")
    gold_all = pd.Series(2000 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days))), index=days)
    weekday = days[days.day_of_week < 5]
    holidays = weekday[[10, 40]]
    gold = gold_all[weekday.difference(holidays)]
    prem = pd.Series(rng.normal(0.001, 0.004, n_days), index=days)
    token = oz * gold_all * (1 + prem)
    return token, gold, prem


def test_premium_frame_drop_matches_an_inner_merge():
    oz = 1 / TROY_OUNCE_G  # a 1-gram token
    token, gold, _ = _gold_and_token(oz=oz)
    frame = cal.premium_frame(token, gold, oz, weekend="drop")
    merged = pd.merge(
        token.rename("tok").rename_axis("date").reset_index(),
        gold.rename("g").rename_axis("date").reset_index(),
        on="date",
        how="inner",
    )
    expected = merged["tok"] / (merged["g"] * oz) - 1
    assert list(frame.index) == list(merged["date"])
    np.testing.assert_allclose(frame["premium_frac"].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-14)
    assert not frame["gold_stale"].any() and (frame["gold_age_days"] == 0).all()
    s = cal.premium_series(token, gold, oz)
    assert s.name == "premium_frac"
    pd.testing.assert_series_equal(s, frame["premium_frac"], check_names=False)


def test_premium_frame_last_gold_close_matches_merge_asof():
    token, gold, _ = _gold_and_token()
    frame = cal.premium_frame(token, gold, 1.0, weekend="last_gold_close", max_gold_age_days=4)
    t = token.rename("tok").rename_axis("date").reset_index()
    g = gold.rename("g").rename_axis("date").reset_index().assign(gdate=lambda d: d["date"])
    asof = pd.merge_asof(t, g, on="date", direction="backward", tolerance=pd.Timedelta(days=4)).dropna()
    assert list(frame.index) == list(asof["date"])
    np.testing.assert_allclose(frame["premium_frac"].to_numpy(), (asof["tok"] / asof["g"] - 1).to_numpy(), atol=1e-14)
    age = (asof["date"] - asof["gdate"]).dt.days.to_numpy()
    np.testing.assert_array_equal(frame["gold_age_days"].to_numpy(), age)
    # every weekend row is flagged; weekday flags are exactly the two holidays
    stale = frame.index[frame["gold_stale"].to_numpy()]
    assert set(frame.index[frame.index.day_of_week >= 5]) <= set(stale)
    assert len(stale[stale.day_of_week < 5]) == 2
    # the token's first day (2024-01-01, Monday) has its own gold close; no row precedes gold
    assert frame.index[0] >= gold.index[0]


def test_premium_frame_drops_rows_with_too_old_gold():
    token, gold, _ = _gold_and_token()
    gold = gold.drop(gold.index[20:30])  # a two-week hole in gold
    frame = cal.premium_frame(token, gold, 1.0, weekend="last_gold_close", max_gold_age_days=4)
    assert frame["gold_age_days"].max() <= 4
    hole_start = gold.index[19]
    assert not ((frame.index > hole_start + pd.Timedelta(days=4)) & (frame.index < gold.index[20])).any()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t, g: (t.iloc[[0, 0, 1]], g), "token_close: duplicate"),
        (lambda t, g: (t.iloc[::-1], g), "token_close: dates not increasing"),
        (lambda t, g: (t.where(t.index != t.index[5], -1.0), g), "token_close: row .* price"),
        (lambda t, g: (t, g.where(g.index != g.index[3], np.nan)), "gold_close: row .* price"),
        (lambda t, g: (t, g.tz_convert(None)), "time zones differ"),
        (lambda t, g: (t.set_axis(t.index + pd.Timedelta(hours=1)), g), "not a midnight date"),
        (lambda t, g: (t.to_numpy(), g), "token_close: expected a pandas Series"),
        (lambda t, g: (t.reset_index(drop=True), g), "DatetimeIndex"),
    ],
)
def test_premium_frame_rejects_bad_input(mutate, match):
    token, gold, _ = _gold_and_token()
    t, g = mutate(token, gold)
    with pytest.raises(ValueError, match=match):
        cal.premium_frame(t, g, 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"oz_per_token": 0.0}, "oz_per_token"),
        ({"oz_per_token": "x"}, "oz_per_token"),
        ({"weekend": "friday"}, "weekend"),
        ({"max_gold_age_days": 0}, "max_gold_age_days"),
    ],
)
def test_premium_frame_rejects_bad_arguments(kwargs, match):
    token, gold, _ = _gold_and_token()
    args = {"oz_per_token": 1.0, **kwargs}
    oz = args.pop("oz_per_token")
    with pytest.raises(ValueError, match=match):
        cal.premium_frame(token, gold, oz, **args)


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
def _series_with_hole(seed: int = 5) -> pd.Series:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2023-01-02", periods=300, tz="UTC")
    days = days.delete(slice(150, 180))  # a six-week hole
    x = np.empty(days.size)
    x[0] = 0.0
    for t in range(1, days.size):
        x[t] = 0.001 + 0.7 * (x[t - 1] - 0.001) + rng.standard_t(5) * 0.002
    return pd.Series(x, index=days)


def test_step_pairs_and_segments_match_a_loop():
    p = _series_with_hole()
    prev, curr = cal.step_pairs(p, 4)
    loop_prev, loop_curr = [], []
    for i in range(1, len(p)):
        if (p.index[i] - p.index[i - 1]).days <= 4:
            loop_prev.append(p.iloc[i - 1])
            loop_curr.append(p.iloc[i])
    np.testing.assert_array_equal(prev, loop_prev)
    np.testing.assert_array_equal(curr, loop_curr)
    assert prev.size == len(p) - 2  # one hole: one missing step
    segs = cal.split_segments(p, 4)
    assert [len(s) for s in segs] == [150, len(p) - 150]
    assert segs[1].index[0] == p.index[150]


def test_premium_statistics_match_pandas_and_scipy():
    p = _series_with_hole()
    st = cal.premium_statistics(p, 4)
    assert st.n == len(p) and st.n_segments == 2
    assert st.mean == pytest.approx(p.mean(), abs=1e-15)
    assert st.sd == pytest.approx(p.std(), rel=1e-12)  # pandas: ddof=1
    assert st.median == pytest.approx(p.median(), abs=1e-15)
    for key, level in (("q01", 0.01), ("q05", 0.05), ("q25", 0.25), ("q75", 0.75), ("q95", 0.95), ("q99", 0.99)):
        assert st.quantiles[key] == pytest.approx(p.quantile(level), abs=1e-15)
    assert st.p_abs_gt_1pct == pytest.approx((p.abs() > 0.01).mean())
    assert st.p_gt_5pct == pytest.approx((p > 0.05).mean())
    # AR(1) on steps that do not cross the hole: two segments' pairs pooled
    df = pd.DataFrame({"x": p.to_numpy(), "d": p.index})
    df["x_prev"], df["d_prev"] = df["x"].shift(), df["d"].shift()
    df = df[(df["d"] - df["d_prev"]).dt.days <= 4]
    reg = stats.linregress(df["x_prev"], df["x"])
    assert st.n_pairs == len(df)
    assert st.ar1_phi == pytest.approx(reg.slope, rel=1e-10)
    assert st.ar1_intercept == pytest.approx(reg.intercept, rel=1e-9)
    assert st.lag1_autocorr == pytest.approx(reg.rvalue, rel=1e-10)
    assert st.ar1_mean == pytest.approx(reg.intercept / (1 - reg.slope), rel=1e-9)
    resid = df["x"] - reg.intercept - reg.slope * df["x_prev"]
    assert st.ar1_resid_sd == pytest.approx(math.sqrt((resid**2).sum() / (len(df) - 2)), rel=1e-10)
    assert st.half_life_steps == pytest.approx(math.log(0.5) / math.log(reg.slope), rel=1e-10)
    flat = st.flat("s_")
    assert flat["s_q99"] == st.quantiles["q99"] and flat["s_n"] == st.n


def test_lag1_without_holes_equals_pandas_autocorr():
    p = _series_with_hole().iloc[:150]
    assert cal.premium_statistics(p).lag1_autocorr == pytest.approx(p.autocorr(1), rel=1e-10)


def test_ar1_persistence_and_half_life_recovered_on_a_long_gaussian_ar1():
    rng = np.random.default_rng(11)
    phi, n = 0.8, 20_000
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + 0.003 * rng.standard_normal()
    p = pd.Series(x, index=pd.date_range("2000-01-01", periods=n, freq="D"))
    st = cal.premium_statistics(p)
    se = math.sqrt((1 - phi**2) / n)  # asymptotic SE of the OLS AR(1) slope
    assert abs(st.ar1_phi - phi) < 4 * se
    assert abs(st.half_life_steps - math.log(0.5) / math.log(phi)) < 0.2  # 3.106 steps
    assert st.sd == pytest.approx(0.003 / math.sqrt(1 - phi**2), rel=0.05)  # stationary sd, ~0.5% SE


def test_statistics_reject_bad_series():
    with pytest.raises(ValueError, match="at least 2"):
        cal.premium_statistics(pd.Series([0.01], index=pd.DatetimeIndex(["2024-01-01"])))
    p = _series_with_hole()
    with pytest.raises(ValueError, match="premia: row .* finite"):
        cal.premium_statistics(p.where(p.index != p.index[7], np.inf))
    with pytest.raises(ValueError, match="max_step_gap_days"):
        cal.premium_statistics(p, 0)


def test_window_statistics_match_pandas_slices():
    p = _series_with_hole()
    windows = {
        "a": ("2023-02-01", "2023-03-15"),
        "empty": ("2030-01-01", "2030-02-01"),
        "one": ("2023-01-02", "2023-01-02"),
    }
    out = cal.window_statistics(p, windows)
    part = p.loc["2023-02-01":"2023-03-15"]
    assert out["a"]["n"] == len(part)
    assert out["a"]["mean"] == pytest.approx(part.mean())
    assert out["a"]["sd"] == pytest.approx(part.std())
    assert out["a"]["max"] == part.max() and out["a"]["max_date"] == str(part.idxmax().date())
    assert out["a"]["min"] == part.min() and out["a"]["min_date"] == str(part.idxmin().date())
    assert out["empty"] == {"n": 0}
    assert out["one"]["n"] == 1 and math.isnan(out["one"]["sd"])
    with pytest.raises(ValueError, match=r"windows\['bad'\].*before start"):
        cal.window_statistics(p, {"bad": ("2023-03-01", "2023-02-01")})
    with pytest.raises(ValueError, match=r"windows\['x'\]"):
        cal.window_statistics(p, {"x": ("2023-03-01",)})


def test_find_episodes_on_a_hand_built_series():
    days = pd.bdate_range("2024-03-04", periods=14, tz="UTC")
    v = [0.0, 0.03, 0.01, 0.025, 0.0, 0.0, 0.0, -0.04, -0.05, 0.001, 0.021, -0.03, 0.0, 0.0]
    p = pd.Series(v, index=days)
    eps = cal.find_episodes(p, 0.02, bridge_obs=1)
    by_start = {e["start_date"]: e for e in eps}
    # premium run: days 1..3 with day 2 bridged (1 obs inside the threshold)
    e1 = by_start[str(days[1].date())]
    assert (e1["end_date"], e1["n_obs"], e1["n_beyond"], e1["sign"]) == (str(days[3].date()), 3, 2, "premium")
    assert e1["peak_frac"] == 0.03 and e1["mean_frac"] == pytest.approx((0.03 + 0.01 + 0.025) / 3)
    assert e1["after_frac"] == 0.0 and e1["after_date"] == str(days[4].date())
    # discount run 7..8; the premium at 10 does not bridge into the discount at 11
    e2 = by_start[str(days[7].date())]
    assert (e2["end_date"], e2["peak_frac"], e2["after_frac"]) == (str(days[8].date()), -0.05, 0.001)
    assert by_start[str(days[10].date())]["n_obs"] == 1 and by_start[str(days[11].date())]["sign"] == "discount"
    assert [abs(e["peak_frac"]) for e in eps] == sorted((abs(e["peak_frac"]) for e in eps), reverse=True)
    # with no bridging, day 2 (1%) splits the premium run
    assert sum(e["sign"] == "premium" for e in cal.find_episodes(p, 0.02, bridge_obs=0)) == 3


def test_find_episodes_never_spans_a_hole():
    days = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-02-01", "2024-02-02"], tz="UTC")
    eps = cal.find_episodes(pd.Series([0.03, 0.03, 0.03, 0.03], index=days), 0.02, bridge_obs=5)
    assert len(eps) == 2
    assert {e["after_date"] for e in eps} == {None}
    with pytest.raises(ValueError, match="threshold_frac"):
        cal.find_episodes(pd.Series([0.0, 0.0], index=days[:2]), 0.0)


def test_clock_comparison_isolates_the_gold_move_between_clocks():
    token, gold, _ = _gold_and_token(n_days=400, seed=9)
    rng = np.random.default_rng(1)
    gold_ref = gold * np.exp(rng.normal(0, 0.005, gold.size))  # the other clock's close
    pa = cal.premium_series(token, gold, 1.0)
    pr = cal.premium_series(token, gold_ref, 1.0)
    out = cal.clock_comparison(pa, pr)
    d = pr - pa
    expected = (1 + pa) * (gold / gold_ref - 1)  # the closed form of the difference
    np.testing.assert_allclose(d.to_numpy(), expected.reindex(d.index).to_numpy(), atol=1e-12)
    assert out["n_common"] == len(pa)
    assert out["median_abs_diff"] == pytest.approx(d.abs().median())
    assert out["sd_diff"] == pytest.approx(d.std())
    assert out["sd_reference"] == pytest.approx(pr.std()) and out["sd_aligned"] == pytest.approx(pa.std())
    assert out["corr"] == pytest.approx(np.corrcoef(pa, pr)[0, 1])
    # independent clock noise inflates the sd (0.4% premium noise + 0.5% clock noise)
    assert out["sd_reference"] > out["sd_aligned"]


def test_path_statistics_match_a_row_loop():
    x = np.random.default_rng(2).normal(size=(7, 50)).cumsum(axis=1)
    out = cal.path_statistics(x)
    for i in range(7):
        assert out["mean"][i] == pytest.approx(x[i].mean())
        assert out["sd"][i] == pytest.approx(np.std(x[i], ddof=1))
        assert out["lag1_autocorr"][i] == pytest.approx(np.corrcoef(x[i, :-1], x[i, 1:])[0, 1])
    with pytest.raises(ValueError, match="paths"):
        cal.path_statistics(np.zeros(5))


def test_select_window_is_inclusive_and_checks_order():
    p = _series_with_hole()
    part = cal.select_window(p, "2023-01-03", "2023-01-05")
    assert list(part.index.strftime("%Y-%m-%d")) == ["2023-01-03", "2023-01-04", "2023-01-05"]
    assert len(cal.select_window(p, None, None)) == len(p)
    with pytest.raises(ValueError, match="before start"):
        cal.select_window(p, "2023-02-01", "2023-01-01")


# ----------------------------------------------------------------------------------------------
# a premium process (models.premium.PremiumProcess) against data: closed forms of the Gaussian AR(1)
# ----------------------------------------------------------------------------------------------
M, PHI, SIGMA = 0.001, 0.7, 0.002


def _gaussian_ar1(n: int, seed: int, phi: float = PHI, hole_at: int | None = None) -> pd.Series:
    """A Gaussian AR(1) on business days (own loop, independent of the process's simulate); with
    ``hole_at`` a 30-business-day hole is cut out after that many observations."""
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = M + rng.standard_normal() * SIGMA / math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = M + phi * (x[t - 1] - M) + SIGMA * rng.standard_normal()
    days = pd.bdate_range("2021-01-04", periods=n + (30 if hole_at else 0), tz="UTC")
    if hole_at:
        days = days.delete(slice(hole_at, hole_at + 30))
    return pd.Series(x, index=days, name="premium_frac")


def _process(phi: float = PHI):
    from models.premium import PremiumProcess

    return PremiumProcess(mean=M, phi=phi, sigma=SIGMA)


def test_gap_marked_inserts_one_break_per_hole():
    p = _gaussian_ar1(200, 1, hole_at=100)
    marked = cal.gap_marked(p)
    assert len(marked) == len(p) + 1 and int(marked.isna().sum()) == 1
    assert marked.index[100] == p.index[99] + pd.Timedelta(days=1)
    pd.testing.assert_series_equal(marked.dropna(), p, check_freq=False)
    assert cal.gap_marked(p.iloc[:100]).equals(p.iloc[:100])


def test_step_log_densities_equal_the_normal_logpdf_of_the_ar1_residuals():
    p = _gaussian_ar1(300, 2, hole_at=150)
    prev, curr = cal.step_pairs(p)
    expected = stats.norm.logpdf(curr, loc=M + PHI * (prev - M), scale=SIGMA)
    got = cal.step_log_densities(_process(), p)
    assert got.shape == expected.shape == (len(p) - 2,)  # no density across the hole
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_one_step_quantiles_equal_the_normal_closed_form():
    p = _gaussian_ar1(120, 3, hole_at=60)
    probs = (0.01, 0.5, 0.975)
    actual, q = cal.one_step_quantiles(_process(), p, probs)
    prev, curr = cal.step_pairs(p)
    np.testing.assert_array_equal(actual, curr)
    expected = M + PHI * (prev - M)[:, None] + SIGMA * stats.norm.ppf(probs)[None, :]
    np.testing.assert_allclose(q, expected, rtol=1e-9, atol=1e-12)


def test_out_of_sample_scores_of_the_true_process():
    n = 3000
    p = _gaussian_ar1(n, 4, hole_at=1500)
    out = cal.score_out_of_sample(_process(), p, np.random.default_rng(5), n_paths_stationary=200)
    prev, curr = cal.step_pairs(p)
    k = prev.size
    assert out["n_scored"] == k == n - 2
    resid = curr - M - PHI * (prev - M)
    assert out["mean_log_pred_density"] == pytest.approx(stats.norm.logpdf(resid, scale=SIGMA).mean(), rel=1e-10)
    z = resid / SIGMA
    # the score's counts equal an independent count of standardised residuals beyond normal quantiles
    assert out["coverage_95"] == pytest.approx(np.mean(np.abs(z) <= stats.norm.ppf(0.975)), abs=0.5 / k)
    assert out["q01_hit_rate"] == pytest.approx(np.mean(z < stats.norm.ppf(0.01)), abs=0.5 / k)
    assert out["q99_hit_rate"] == pytest.approx(np.mean(z > stats.norm.ppf(0.99)), abs=0.5 / k)
    # ... and, the process being the true one, sit within 3 binomial SEs of the nominal rates
    assert abs(out["coverage_95"] - 0.95) < 3 * math.sqrt(0.95 * 0.05 / k)
    assert abs(out["q01_hit_rate"] - 0.01) < 3 * math.sqrt(0.01 * 0.99 / k)
    q01 = M + PHI * (prev - M) + SIGMA * stats.norm.ppf(0.01)
    assert out["q01_pinball"] == pytest.approx(np.mean((0.01 - (curr < q01)) * (curr - q01)), rel=1e-9)
    # stationary law N(M, SIGMA^2 / (1 - PHI^2)): 200 x 3000 simulated days, quantile to ~3%
    sd_stat = SIGMA / math.sqrt(1 - PHI**2)
    assert out["uncond_q01_model"] == pytest.approx(M + sd_stat * stats.norm.ppf(0.01), rel=0.03)
    assert out["uncond_q01_error"] == pytest.approx(out["uncond_q01_sample"] - out["uncond_q01_model"])
    assert out["uncond_q01_sample"] == pytest.approx(np.quantile(p, 0.01))


def test_out_of_sample_scores_penalise_a_wrong_process():
    p = _gaussian_ar1(2000, 6)
    rng = np.random.default_rng(7)
    right = cal.score_out_of_sample(_process(), p, rng, n_paths_stationary=100)
    wrong = cal.score_out_of_sample(_process(phi=0.0), p, rng, n_paths_stationary=100)
    # phi = 0 ignores persistence: conditional sd is SIGMA too, so it misses far more often
    assert wrong["mean_log_pred_density"] < right["mean_log_pred_density"]
    assert wrong["coverage_95"] < 0.95 - 3 * math.sqrt(0.95 * 0.05 / 2000)
    with pytest.raises(ValueError, match="interval"):
        cal.score_out_of_sample(_process(), p, rng, interval=1.0)
    with pytest.raises(ValueError, match="at least 10"):
        cal.score_out_of_sample(_process(), p.iloc[:5], rng)


def test_reproduction_check_accepts_the_true_process_and_rejects_a_wrong_one():
    p = _gaussian_ar1(800, 8)
    ok = cal.reproduction_check(_process(), p, np.random.default_rng(9), n_paths=1000)
    assert all(v["within"] for v in ok.values()), ok
    assert ok["lag1_autocorr"]["sample"] == pytest.approx(cal.premium_statistics(p).lag1_autocorr)
    # the simulated sd of the sample mean is the AR(1) long-run sd: sigma / (1 - phi) / sqrt(n)
    sd_mean = SIGMA / (1 - PHI) / math.sqrt(800)
    assert (ok["mean"]["sim_hi"] - ok["mean"]["sim_lo"]) == pytest.approx(2 * 2.576 * sd_mean, rel=0.15)
    bad = cal.reproduction_check(_process(phi=0.2), p, np.random.default_rng(9), n_paths=1000)
    assert not bad["lag1_autocorr"]["within"] and bad["lag1_autocorr"]["p_value"] < 0.01
    assert not bad["sd"]["within"]  # stationary sd 0.0020 vs 0.0028


def test_fitted_process_reproduces_the_sample_statistics():
    """The calibration loop on synthetic data: a t-AR(1) with rare jumps and a hole, fitted with
    ``fit_premium_process``, reproduces mean, sd and lag-1 autocorrelation within their sampling
    error (99% parametric-bootstrap intervals)."""
    rng = np.random.default_rng(10)
    n, phi, sig, df = 700, 0.8, 0.002, 5.0
    x = np.empty(n)
    x[0] = 0.0
    e = rng.standard_t(df, n) * math.sqrt((df - 2) / df)
    jumps = rng.random(n) < 0.01
    for t in range(1, n):
        x[t] = phi * x[t - 1] + sig * e[t] + jumps[t] * rng.normal(0.01, 0.004)
    days = pd.bdate_range("2022-01-03", periods=n + 40, tz="UTC").delete(slice(350, 390))
    p = pd.Series(x, index=days)
    proc = cal.fit_premium_process(p, innovations="t", jumps=True).process
    assert proc.fit_info.n_obs == cal.premium_statistics(p).n_pairs == n - 2  # no step across the hole
    check = cal.reproduction_check(proc, p, np.random.default_rng(11), n_paths=1000)
    assert all(v["within"] for v in check.values()), check


def test_gaussian_conditional_mle_equals_ols_on_the_step_pairs():
    """For normal innovations without jumps the conditional MLE of (m, phi, sigma) is OLS on the
    step pairs (Hamilton 1994, sec. 5.2): the fit must use exactly the pairs of ``step_pairs``."""
    p = _gaussian_ar1(500, 12, hole_at=250)
    proc = cal.fit_premium_process(p, innovations="normal", jumps=False).process
    reg = stats.linregress(*cal.step_pairs(p))
    assert proc.phi == pytest.approx(reg.slope, abs=2e-3)
    assert proc.mean == pytest.approx(reg.intercept / (1 - reg.slope), abs=1e-4)


def test_score_with_an_interval_sharing_the_tail_levels():
    """interval 0.98 asks for the 1% and 99% quantiles twice (interval ends and tails)."""
    p = _gaussian_ar1(500, 13)
    out = cal.score_out_of_sample(_process(), p, np.random.default_rng(1), interval=0.98, n_paths_stationary=50)
    assert out["coverage_98"] == pytest.approx(1 - out["q01_hit_rate"] - out["q99_hit_rate"])


# ----------------------------------------------------------------------------------------------
# fit_premium_process: conditional MLE with identification bounds and BIC selection
# ----------------------------------------------------------------------------------------------
def _ar1_with_innovations(u: np.ndarray, phi: float, mean: float = 0.0, hole_at: int | None = None) -> pd.Series:
    """``x_t = mean + phi (x_{t-1} - mean) + u_t`` (own loop) on business days, optional hole."""
    x = np.empty(u.size)
    x[0] = mean
    for t in range(1, u.size):
        x[t] = mean + phi * (x[t - 1] - mean) + u[t]
    days = pd.bdate_range("2021-01-04", periods=u.size + (30 if hole_at else 0), tz="UTC")
    if hole_at:
        days = days.delete(slice(hole_at, hole_at + 30))
    return pd.Series(x, index=days, name="premium_frac")


def test_fit_premium_process_on_a_gaussian_ar1_selects_the_normal_ols_fit():
    """Gaussian AR(1): the normal candidate is the conditional Gaussian MLE, i.e. OLS on the step
    pairs with sigma^2 = RSS / k (Hamilton 1994, sec. 5.2); the t adds nothing worth its BIC
    penalty (df runs to its upper bound), so the normal is selected. AIC/BIC by their formulas."""
    p = _gaussian_ar1(600, 21, hole_at=300)
    sel = cal.fit_premium_process(p, innovations="t", jumps=False)
    prev, curr = cal.step_pairs(p)
    k = prev.size
    assert sel.n_obs == k == len(p) - 2  # no step across the hole
    assert [c.spec for c in sel.candidates] == ["normal", "t"]
    reg = stats.linregress(prev, curr)
    rss = float(np.sum((curr - reg.intercept - reg.slope * prev) ** 2))
    normal = sel.candidates[0]
    assert normal.process.phi == pytest.approx(reg.slope, rel=1e-9)
    assert normal.process.mean == pytest.approx(reg.intercept / (1 - reg.slope), rel=1e-9)
    assert normal.process.sigma == pytest.approx(math.sqrt(rss / k), rel=1e-9)
    resid = curr - reg.intercept - reg.slope * prev
    assert normal.log_likelihood == pytest.approx(stats.norm.logpdf(resid, scale=math.sqrt(rss / k)).sum(), rel=1e-9)
    for c in sel.candidates:
        assert c.aic == pytest.approx(-2 * c.log_likelihood + 2 * c.n_params)
        assert c.bic == pytest.approx(-2 * c.log_likelihood + c.n_params * math.log(k))
    t = sel.candidates[1]
    assert t.process.df > 30 and t.log_likelihood - normal.log_likelihood < 0.5 * math.log(k)
    assert sel.spec == "normal" and sel.process.df is None and sel.process.jump_intensity_per_day == 0
    assert sel.process.fit_info.n_obs == k and "selected normal by BIC" in sel.process.fit_info.message
    # standard errors of the selected model against the OLS closed form of phi's SE
    assert sel.process.fit_info.standard_errors["phi"] == pytest.approx(reg.stderr, rel=0.05)


def test_fit_premium_process_recovers_rare_normal_jumps():
    """Normal AR(1) plus Poisson(0.03) jumps N(0.012, 0.004^2), 1500 days: the normal+jumps model
    is selected and recovers the intensity within 3 Poisson SEs, sqrt(lambda / n), and the jump
    mean within 3 SEs of a mean of ~lambda n jumps, s_J / sqrt(lambda n)."""
    rng = np.random.default_rng(22)
    n, phi, sig, lam, mu_j, s_j = 1500, 0.6, 0.002, 0.03, 0.012, 0.004
    counts = rng.poisson(lam, n)
    u = sig * rng.standard_normal(n) + mu_j * counts + s_j * np.sqrt(counts) * rng.standard_normal(n)
    p = _ar1_with_innovations(u, phi, mean=0.001)
    sel = cal.fit_premium_process(p, innovations="normal", jumps=True)
    assert [c.spec for c in sel.candidates] == ["normal", "normal+jumps"]
    assert sel.spec == "normal+jumps"
    proc = sel.process
    assert abs(proc.jump_intensity_per_day - lam) < 3 * math.sqrt(lam / n)
    assert abs(proc.jump_mean - mu_j) < 3 * s_j / math.sqrt(lam * n)
    assert abs(proc.phi - phi) < 3 * math.sqrt((1 - phi**2) / n)
    assert proc.sigma == pytest.approx(sig, rel=3 / math.sqrt(2 * n))
    # posterior jump days: the days with a true jump larger than 5 diffusion sds are all found
    big = np.flatnonzero((counts[1:] > 0) & (np.abs(u[1:]) > 5 * sig)) + 1
    assert set(p.index[big]) <= set(proc.fit_info.jump_labels)
    assert proc.fit_info.n_jumps == len(proc.fit_info.jump_labels)


def test_fit_premium_process_on_a_narrow_core_with_frequent_wide_moves():
    """The XAUT-like case: a narrow core (sd 0.0015) and wide moves (sd 0.009) on a third of the
    days. A Student-t alone wants df ~ 2 here (scipy's location-scale t.fit of these innovations:
    df = 2.0), which a unit-variance t can only follow to its df floor, where its sigma inflates
    (factor sqrt(df / (df - 2))): the t candidate sits on DF_MIN. Under the bounds df >= DF_MIN and a
    jump model never below the no-jump model it nests (lambda = 0): the normal+jumps likelihood
    is the Poisson-normal mixture computed here with scipy, and the selected process reproduces
    the sample's mean, sd and lag-1 autocorrelation (99% bootstrap intervals)."""
    rng = np.random.default_rng(23)
    n, phi = 500, 0.3
    wide = rng.random(n) < 0.33
    u = np.where(wide, 0.009, 0.0015) * rng.standard_normal(n)
    p = _ar1_with_innovations(u, phi, hole_at=250)
    sel = cal.fit_premium_process(p)
    cands = {c.spec: c for c in sel.candidates}
    assert cands["t"].process.df >= cal.DF_MIN and cands["t+jumps"].process.df >= cal.DF_MIN
    assert cands["t"].process.df == pytest.approx(cal.DF_MIN) and "df" in cands["t"].on_bound
    assert cands["normal+jumps"].log_likelihood >= cands["normal"].log_likelihood
    assert cands["t+jumps"].log_likelihood >= cands["t"].log_likelihood
    # independent likelihood of the normal+jumps candidate: sum_k Pois(k; lam) N(u; k mu, sig^2 + k s^2)
    q = cands["normal+jumps"].process
    prev, curr = cal.step_pairs(p)
    resid = curr - q.mean - q.phi * (prev - q.mean)
    ks = np.arange(0, 40)
    dens = stats.poisson.pmf(ks, q.jump_intensity_per_day)[None, :] * stats.norm.pdf(
        resid[:, None], loc=ks * q.jump_mean, scale=np.sqrt(q.sigma**2 + ks * q.jump_sd**2)
    )
    assert cands["normal+jumps"].log_likelihood == pytest.approx(np.log(dens.sum(axis=1)).sum(), rel=1e-9)
    assert sel.spec in ("normal+jumps", "t+jumps")  # the mixture beats any t with df >= 4
    check = cal.reproduction_check(sel.process, p, np.random.default_rng(24), n_paths=1000)
    assert all(v["within"] for v in check.values()), check


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"innovations": "cauchy"}, "innovations"),
        ({"criterion": "hqic"}, "criterion"),
        ({"df_min": 2.0}, "df_min"),
        ({"df_min": "four"}, "df_min"),
        ({"max_iter": 0}, "max_iter"),
        ({"max_step_gap_days": 0}, "max_step_gap_days"),
    ],
)
def test_fit_premium_process_rejects_bad_arguments(kwargs, match):
    p = _gaussian_ar1(100, 25)
    with pytest.raises(ValueError, match=match):
        cal.fit_premium_process(p, **kwargs)


def test_fit_premium_process_rejects_short_or_flat_series():
    p = _gaussian_ar1(100, 26)
    with pytest.raises(ValueError, match="at least 30"):
        cal.fit_premium_process(p.iloc[:25])
    with pytest.raises(ValueError, match="all values are equal"):
        cal.fit_premium_process(p * 0 + 0.001)
    with pytest.raises(ValueError, match="premia") as info:
        cal.fit_premium_process(p.where(p.index != p.index[5]))  # a NaN row is named
    assert f"premia: row {p.index[5]!r} is" in str(info.value)


def test_fit_premium_process_recovers_the_band_pull_of_a_band_threshold_ar1():
    """A band TAR simulated with kappa = 0.4 (every day open): with the band given, the Gaussian
    candidate is OLS of p_t on 1, p_{t-1}, -x(p_{t-1}) (x the excess over the band), computed
    here with numpy, and kappa is recovered within 3 OLS standard errors; the t candidate
    (estimated by L-BFGS-B) lands within the same distance; without the band kappa is 0."""
    from models.premium import PremiumProcess

    lo, hi = -0.0025, 0.0025
    true = PremiumProcess(mean=0.0, phi=0.8, sigma=0.004, band_lower=lo, band_upper=hi, band_pull=0.4)
    x = true.simulate(1, 3000, np.random.default_rng(31), p0=0.0)[0]
    p = pd.Series(x, index=pd.bdate_range("2015-01-05", periods=x.size, tz="UTC"))
    sel = cal.fit_premium_process(p, innovations="t", jumps=False, band=(lo, hi))
    prev, curr = cal.step_pairs(p)
    excess = np.maximum(prev - hi, 0.0) - np.maximum(lo - prev, 0.0)
    design = np.column_stack([np.ones_like(prev), prev, -excess])
    coef, rss, *_ = np.linalg.lstsq(design, curr, rcond=None)
    se = np.sqrt(rss[0] / (prev.size - 3) * np.diag(np.linalg.inv(design.T @ design)))
    normal = sel.candidates[0].process
    assert normal.band_pull == pytest.approx(coef[2], rel=1e-9) and normal.phi == pytest.approx(coef[1], rel=1e-9)
    assert (normal.band_lower, normal.band_upper) == (lo, hi)
    assert abs(normal.band_pull - 0.4) < 3 * se[2]
    assert abs(sel.candidates[1].process.band_pull - 0.4) < 3 * se[2]
    assert all(c.n_params == n for c, n in zip(sel.candidates, (4, 5), strict=True))
    assert cal.fit_premium_process(p, innovations="normal", jumps=False).process.band_pull == 0.0
    with pytest.raises(ValueError, match="band"):
        cal.fit_premium_process(p, band=(0.01, -0.01))
