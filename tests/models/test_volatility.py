"""Unit tests of models.returns and models.volatility against independent computations.

Independent references used here: a scalar Python loop for the GJR-GARCH-t recursion (data
generation, hold-out VaR), scipy.stats.t for densities/quantiles/tail expectations, and the
closed-form variance term structure of a GJR-GARCH process.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from scipy import stats

from models.returns import log_returns
from models.volatility import (
    MIN_GARCH_OBS,
    GarchFit,
    fit_garch,
    one_day_var_forecasts,
    student_t_var_es,
)

# ----------------------------------------------------------------------------- helpers


def simulate_gjr_t(n, mu, omega, alpha, gamma, beta, nu, seed, burn=500):
    """Independent scalar-loop simulator of a GJR-GARCH(1,1,1) with standardised t errors."""
    rng = np.random.default_rng(seed)
    scale = math.sqrt((nu - 2.0) / nu)
    z = rng.standard_t(nu, size=n + burn) * scale
    r = np.empty(n + burn)
    s2 = omega / (1.0 - alpha - gamma / 2.0 - beta)
    for t in range(n + burn):
        e = math.sqrt(s2) * z[t]
        r[t] = mu + e
        s2 = omega + (alpha + (gamma if e < 0 else 0.0)) * e * e + beta * s2
    return r[burn:]


def make_fit(params, std_resid=None, last_resid=0.0, last_variance=None, kind="gjr"):
    """A GarchFit with chosen parameters and end-of-sample state (no estimation)."""
    p = {"mu": 0.0, "omega": 1e-6, "alpha": 0.05, "gamma": 0.0, "beta": 0.9, "nu": 6.0}
    p.update(params)
    if std_resid is None:
        std_resid = np.array([-1.0, 1.0])
    if last_variance is None:
        last_variance = p["omega"] / (1 - p["alpha"] - p["gamma"] / 2 - p["beta"])
    e, v = last_resid, last_variance
    sigma_next = math.sqrt(p["omega"] + (p["alpha"] + p["gamma"] * (e < 0)) * e * e + p["beta"] * v)
    return GarchFit(
        kind=kind,
        params=p,
        std_errors={k: 0.0 for k in p},
        loglik=0.0,
        loglik_decimal=0.0,
        aic=0.0,
        bic=0.0,
        n_obs=len(std_resid),
        std_resid=np.asarray(std_resid, dtype=float),
        last_resid=e,
        last_variance=v,
        sigma_next=sigma_next,
    )


GJR_TRUE = dict(mu=3e-4, omega=2e-6, alpha=0.05, gamma=0.06, beta=0.90, nu=6.0)
GARCH_TRUE = dict(mu=2e-4, omega=1.5e-6, alpha=0.08, gamma=0.0, beta=0.90, nu=5.0)


@pytest.fixture(scope="module")
def gjr_data():
    return simulate_gjr_t(15_000, seed=11, **GJR_TRUE)


@pytest.fixture(scope="module")
def gjr_fit(gjr_data):
    return fit_garch(gjr_data, "gjr")


# ----------------------------------------------------------------------------- returns


def test_log_returns_matches_hand_computation():
    idx = pd.date_range("2024-01-01", periods=4, freq="B")
    prices = pd.Series([100.0, 110.0, 99.0, 99.0], index=idx)
    r = log_returns(prices)
    assert list(r.index) == list(idx[1:])
    np.testing.assert_allclose(r.to_numpy(), [math.log(1.1), math.log(0.9), 0.0], rtol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan])
def test_log_returns_rejects_bad_price_naming_row(bad):
    idx = pd.date_range("2024-01-01", periods=4, freq="B")
    prices = pd.Series([100.0, 101.0, bad, 102.0], index=idx)
    with pytest.raises(ValueError, match="2024-01-03"):
        log_returns(prices)


def test_log_returns_rejects_unsorted_and_short():
    idx = pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-03"])
    with pytest.raises(ValueError, match="increasing"):
        log_returns(pd.Series([1.0, 2.0, 3.0], index=idx))
    with pytest.raises(ValueError, match="at least 2"):
        log_returns(pd.Series([1.0], index=idx[:1]))


# ----------------------------------------------------------------------------- estimation


def test_fit_gjr_recovers_known_params(gjr_fit):
    # n = 15,000: arch's robust SEs at these values are about mu 6e-5, omega 2e-7 (~10 %),
    # alpha 0.005, gamma 0.008, beta 0.006, nu 0.3. Tolerances are ~5 SE.
    p = gjr_fit.params
    assert gjr_fit.kind == "gjr" and gjr_fit.n_obs == 15_000 and gjr_fit.converged
    assert abs(p["mu"] - GJR_TRUE["mu"]) < 3.5e-4
    assert abs(p["omega"] / GJR_TRUE["omega"] - 1) < 0.5
    assert abs(p["alpha"] - GJR_TRUE["alpha"]) < 0.03
    assert abs(p["gamma"] - GJR_TRUE["gamma"]) < 0.04
    assert abs(p["beta"] - GJR_TRUE["beta"]) < 0.035
    assert abs(p["nu"] - GJR_TRUE["nu"]) < 1.5
    assert abs(gjr_fit.persistence - 0.98) < 0.015
    # standard errors are reported in decimal units too (same order as the parameter scale)
    assert 0 < gjr_fit.std_errors["omega"] < GJR_TRUE["omega"]
    assert 0 < gjr_fit.std_errors["mu"] < 1e-3


def test_fit_garch_recovers_known_params_and_gamma_zero():
    x = simulate_gjr_t(10_000, seed=12, **GARCH_TRUE)
    f = fit_garch(pd.Series(x), "garch")
    p = f.params
    assert p["gamma"] == 0.0 and f.std_errors["gamma"] == 0.0
    # n = 10,000: SEs about alpha 0.0065, beta 0.008, nu 0.28, mu 6e-5
    assert abs(p["mu"] - GARCH_TRUE["mu"]) < 3.5e-4
    assert abs(p["alpha"] - GARCH_TRUE["alpha"]) < 0.035
    assert abs(p["beta"] - GARCH_TRUE["beta"]) < 0.04
    assert abs(p["nu"] - GARCH_TRUE["nu"]) < 1.5
    assert abs(p["omega"] / GARCH_TRUE["omega"] - 1) < 0.5


def test_loglik_decimal_equals_scipy_t_density(gjr_fit, gjr_data):
    """Recompute the decimal-units log-likelihood with scipy from std_resid (sigma_t derived)."""
    p = gjr_fit.params
    z = gjr_fit.std_resid
    eps = gjr_data - p["mu"]
    sigma = eps / z  # conditional sd, decimal units
    scale = sigma * math.sqrt((p["nu"] - 2) / p["nu"])
    ll = np.sum(stats.t.logpdf(eps, p["nu"], loc=0.0, scale=np.abs(scale)))
    assert gjr_fit.loglik_decimal == pytest.approx(ll, rel=1e-7)
    # the percent-scale value differs by the Jacobian of y = 100 x
    assert gjr_fit.loglik == pytest.approx(ll - gjr_data.size * math.log(100.0), rel=1e-7)
    # unit-variance standardised residuals (t errors): sample variance near 1
    assert abs(np.var(z) - 1.0) < 0.1


def test_sigma_next_matches_arch_forecast(gjr_fit, gjr_data):
    res = arch_model(100 * gjr_data, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t", rescale=False).fit(
        disp=False
    )
    var_pct = float(res.forecast(horizon=1).variance.iloc[-1, 0])
    assert gjr_fit.sigma_next == pytest.approx(math.sqrt(var_pct) / 100.0, rel=1e-6)
    assert gjr_fit.last_resid == pytest.approx(gjr_data[-1] - gjr_fit.params["mu"], rel=1e-9)


# ----------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("innovations", ["t", "fhs"])
def test_simulated_variance_term_structure_matches_closed_form(innovations):
    """E[eps_h^2] = m2 * E[sigma2_h], E[sigma2_{h+1}] = omega + k E[sigma2_h] with
    k = alpha m2 + gamma E[z^2 1(z<0)] + beta; for the t: m2 = 1, E[z^2 1(z<0)] = 1/2, so the
    long-run level is omega / (1 - alpha - gamma/2 - beta)."""
    rng_z = np.random.default_rng(5)
    skewed = np.concatenate([rng_z.normal(0, 1.3, 400) * -1, rng_z.normal(0, 0.6, 600)])
    skewed = np.where(skewed < 0, -np.abs(skewed), np.abs(skewed))
    params = dict(mu=1e-4, omega=2e-6, alpha=0.06, gamma=0.08, beta=0.88, nu=7.0)
    uv = params["omega"] / (1 - params["alpha"] - params["gamma"] / 2 - params["beta"])
    fit = make_fit(params, std_resid=skewed, last_resid=-0.03, last_variance=3 * uv)
    if innovations == "t":
        m2, mneg = 1.0, 0.5
    else:
        m2, mneg = np.mean(skewed**2), np.mean(skewed**2 * (skewed < 0))
    k = params["alpha"] * m2 + params["gamma"] * mneg + params["beta"]
    n_paths, horizon = 20_000, 300
    r = fit.simulate(n_paths, horizon, np.random.default_rng(99), innovations=innovations)
    assert r.shape == (n_paths, horizon)
    expected_s2 = np.empty(horizon)
    s2 = fit.sigma_next**2
    for h in range(horizon):
        expected_s2[h] = s2
        s2 = params["omega"] + k * s2
    expected_e2 = m2 * expected_s2
    # per-path average of (eps^2 - E eps^2) / E eps^2: iid across paths, mean 0
    stat = np.mean((r - params["mu"]) ** 2 / expected_e2 - 1.0, axis=1)
    se = stat.std(ddof=1) / math.sqrt(n_paths)
    assert abs(stat.mean()) < 4 * se
    if innovations == "t":
        # the recursion's fixed point is the brief's closed form omega / (1 - alpha - gamma/2 - beta)
        assert params["omega"] / (1 - k) == pytest.approx(uv, rel=1e-12)
        # late days (k^200 ~ 0.02 of the initial excess) are near that level: pooled check
        late = np.mean((r[:, 200:] - params["mu"]) ** 2, axis=1)
        se_late = late.std(ddof=1) / math.sqrt(n_paths)
        assert abs(late.mean() - expected_e2[200:].mean()) < 4 * se_late
        assert abs(expected_e2[200:].mean() / uv - 1) < 0.05


def test_t_innovations_have_unit_variance_and_t_shape():
    nu, omega = 5.0, 1e-4
    fit = make_fit(dict(mu=0.0, omega=omega, alpha=0.0, gamma=0.0, beta=0.0, nu=nu), last_variance=omega)
    z = fit.simulate(2_000, 500, np.random.default_rng(3)).ravel() / math.sqrt(omega)
    # Var(z^2) = E z^4 - 1 = 3 (nu-2)/(nu-4) - 1 = 8 for nu = 5; n = 1e6 -> SE of mean 0.0028
    assert abs(np.mean(z**2) - 1.0) < 5 * math.sqrt(8.0 / z.size)
    ks = stats.kstest(z[:200_000] / math.sqrt((nu - 2) / nu), stats.t(nu).cdf)
    assert ks.pvalue > 1e-3


def test_fhs_draws_only_from_std_resid_and_gjr_indicator():
    pool = np.array([-2.1, -0.7, -0.2, 0.1, 0.5, 0.9, 1.6])
    params = dict(mu=2e-4, omega=1e-6, alpha=0.05, gamma=0.1, beta=0.85, nu=6.0)
    fit = make_fit(params, std_resid=pool, last_resid=0.01, last_variance=1e-4)
    r = fit.simulate(500, 40, np.random.default_rng(8), innovations="fhs")
    # recover z with an independent per-path loop over the recursion
    s2 = np.full(r.shape[0], fit.sigma_next**2)
    zs = np.empty_like(r)
    for d in range(r.shape[1]):
        eps = r[:, d] - params["mu"]
        zs[:, d] = eps / np.sqrt(s2)
        s2 = (
            params["omega"]
            + np.where(eps < 0, params["alpha"] + params["gamma"], params["alpha"]) * eps**2
            + params["beta"] * s2
        )
    nearest = pool[np.abs(zs[..., None] - pool).argmin(axis=-1)]
    np.testing.assert_allclose(zs, nearest, atol=1e-9)
    assert set(np.unique(nearest)) == set(pool)


@pytest.mark.parametrize("z0", [-1.0, 1.0])
def test_gjr_asymmetry_applies_to_negative_shocks_only(z0):
    params = dict(mu=0.0, omega=1e-6, alpha=0.05, gamma=0.1, beta=0.85, nu=6.0)
    fit = make_fit(params, std_resid=[z0], last_resid=0.0, last_variance=1e-4)
    r = fit.simulate(3, 5, np.random.default_rng(0), innovations="fhs")
    a = params["alpha"] + (params["gamma"] if z0 < 0 else 0.0)
    s2, expected = fit.sigma_next**2, []
    for _ in range(5):
        expected.append(z0 * math.sqrt(s2))
        s2 = params["omega"] + a * s2 + params["beta"] * s2  # eps^2 = s2 since |z0| = 1
    np.testing.assert_allclose(r, np.tile(expected, (3, 1)), rtol=1e-12)


def test_simulate_is_seeded_and_reproducible(gjr_fit):
    a = gjr_fit.simulate(100, 20, np.random.default_rng(1))
    b = gjr_fit.simulate(100, 20, np.random.default_rng(1))
    c = gjr_fit.simulate(100, 20, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    f1 = gjr_fit.simulate(50, 10, np.random.default_rng(4), innovations="fhs")
    f2 = gjr_fit.simulate(50, 10, np.random.default_rng(4), innovations="fhs")
    np.testing.assert_array_equal(f1, f2)


# ----------------------------------------------------------------------------- risk measures


@pytest.mark.parametrize("level", [0.95, 0.99, 0.995])
def test_var_es_1d_matches_scipy(gjr_fit, level):
    p = gjr_fit.params
    nu, mu, sig = p["nu"], p["mu"], gjr_fit.sigma_next
    scale = sig * math.sqrt((nu - 2) / nu)
    ret = stats.t(nu, loc=mu, scale=scale)
    var_ref = -ret.ppf(1 - level)
    es_ref = -ret.expect(lambda x: x, ub=-var_ref, conditional=True)
    var, es = gjr_fit.var_es_1d(level)
    assert var == pytest.approx(var_ref, rel=1e-9)
    assert es == pytest.approx(es_ref, rel=1e-6)
    assert es > var > 0


def test_student_t_var_es_normal_limit():
    """As nu -> inf the standardised t tends to N(0,1): VaR -> 2.3263, ES -> phi(q)/(1-p)."""
    var, es = student_t_var_es(0.99, 1e7)
    q = stats.norm.ppf(0.99)
    assert var == pytest.approx(q, rel=1e-5)
    assert es == pytest.approx(stats.norm.pdf(q) / 0.01, rel=1e-5)


def test_one_day_var_forecasts_equals_hand_recursion(gjr_fit):
    rng = np.random.default_rng(21)
    r_out = rng.standard_t(5, 300) * 0.01
    r_out[:3] = [-0.05, 0.04, -0.001]
    level = 0.99
    got = one_day_var_forecasts(gjr_fit, pd.Series(r_out), level)
    p = gjr_fit.params
    q = stats.t.ppf(level, p["nu"]) * math.sqrt((p["nu"] - 2) / p["nu"])
    # independent loop, starting from the end-of-sample state (last_resid, last_variance)
    e_prev, s2_prev, ref = gjr_fit.last_resid, gjr_fit.last_variance, []
    for x in r_out:
        ind = 1.0 if e_prev < 0 else 0.0
        s2 = p["omega"] + (p["alpha"] + p["gamma"] * ind) * e_prev**2 + p["beta"] * s2_prev
        ref.append(math.sqrt(s2) * q - p["mu"])
        e_prev, s2_prev = x - p["mu"], s2
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[0] == pytest.approx(gjr_fit.var_es_1d(level)[0], rel=1e-12)
    # no look-ahead: changing returns from day 100 on leaves forecasts 0..100 unchanged
    r2 = r_out.copy()
    r2[100:] *= 3.0
    got2 = one_day_var_forecasts(gjr_fit, r2, level)
    np.testing.assert_array_equal(got[:101], got2[:101])
    assert not np.allclose(got[101:], got2[101:])


# ----------------------------------------------------------------------------- serialisation


def test_to_dict_round_trip_through_json(gjr_fit):
    d = json.loads(json.dumps(gjr_fit.to_dict()))
    back = GarchFit.from_dict(d)
    for name in (
        "kind",
        "params",
        "std_errors",
        "loglik",
        "loglik_decimal",
        "aic",
        "bic",
        "n_obs",
        "last_resid",
        "last_variance",
        "sigma_next",
        "converged",
    ):
        assert getattr(back, name) == getattr(gjr_fit, name), name
    np.testing.assert_array_equal(back.std_resid, gjr_fit.std_resid)
    np.testing.assert_array_equal(
        back.simulate(10, 5, np.random.default_rng(0), "fhs"),
        gjr_fit.simulate(10, 5, np.random.default_rng(0), "fhs"),
    )


# ----------------------------------------------------------------------------- errors


def test_fit_garch_rejects_bad_input():
    x = simulate_gjr_t(MIN_GARCH_OBS, seed=1, **GARCH_TRUE)
    with pytest.raises(ValueError, match="at least 250"):
        fit_garch(x[:-1], "garch")
    y = pd.Series(x.copy(), index=pd.date_range("2000-01-03", periods=x.size, freq="B"))
    y.iloc[7] = np.nan
    with pytest.raises(ValueError, match="2000-01-12"):
        fit_garch(y, "garch")
    with pytest.raises(ValueError, match="kind"):
        fit_garch(x, "egarch")
    with pytest.raises(ValueError, match="dist"):
        fit_garch(x, "garch", dist="normal")
    with pytest.raises(ValueError, match="1-D"):
        fit_garch(np.vstack([x, x]), "garch")
    with pytest.raises(ValueError, match="zero variance"):
        fit_garch(np.full(300, 0.001), "garch")


def test_methods_reject_bad_arguments(gjr_fit):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="innovations"):
        gjr_fit.simulate(10, 5, rng, innovations="normal")
    with pytest.raises(ValueError, match="n_paths"):
        gjr_fit.simulate(0, 5, rng)
    with pytest.raises(ValueError, match="horizon_days"):
        gjr_fit.simulate(10, 2.5, rng)
    with pytest.raises(ValueError, match="rng"):
        gjr_fit.simulate(10, 5, 42)
    with pytest.raises(ValueError, match="level"):
        gjr_fit.var_es_1d(99)
    with pytest.raises(ValueError, match="level"):
        one_day_var_forecasts(gjr_fit, np.zeros(5), 1.0)
    with pytest.raises(ValueError, match="position 2"):
        one_day_var_forecasts(gjr_fit, np.array([0.0, 0.01, np.inf]), 0.99)
    d = gjr_fit.to_dict()
    del d["params"]
    with pytest.raises(ValueError, match=r"missing keys \['params'\]"):
        GarchFit.from_dict(d)
    d = gjr_fit.to_dict()
    d["sigma_next"] *= 1.01
    with pytest.raises(ValueError, match="sigma_next"):
        GarchFit.from_dict(d)
    d = gjr_fit.to_dict()
    d["params"]["nu"] = 2.0
    with pytest.raises(ValueError, match="params: nu must be > 2"):
        GarchFit.from_dict(d)


def test_fhs_var_forecasts_use_empirical_residual_quantile():
    """FHS VaR = -(mu + sigma_t * empirical 1% quantile of the standardised residuals), with
    sigma_t from a hand recursion; here residuals are 1..100 shifted so the quantile is exact."""
    resid = (np.arange(100) - 49.5) / 29.0  # mean 0; numpy's linear quantile at 1%: see below
    fit = make_fit(
        {"mu": 0.0002, "omega": 2e-6, "alpha": 0.06, "gamma": 0.0, "beta": 0.92}, std_resid=resid, kind="garch"
    )
    r_out = np.array([0.01, -0.02, 0.003, -0.001, 0.015])
    var = one_day_var_forecasts(fit, r_out, 0.99, innovations="fhs")
    # numpy 'linear' quantile at p=0.01 of 100 sorted values: position 0.99 -> x0 + 0.99*(x1-x0)
    z = resid[0] + 0.99 * (resid[1] - resid[0])
    p = fit.params
    s2, expected = fit.sigma_next**2, []
    for r in r_out:
        expected.append(-(p["mu"] + math.sqrt(s2) * z))
        e = r - p["mu"]
        s2 = p["omega"] + p["alpha"] * e * e + p["beta"] * s2
    np.testing.assert_allclose(var, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="innovations"):
        one_day_var_forecasts(fit, r_out, 0.99, innovations="normal")


@pytest.mark.parametrize("level", [0.975, 0.99])
def test_fhs_var_is_the_loss_tail_quantile_of_skewed_residuals(level):
    """Strongly left-skewed standardised residuals (960 small positive, 40 large negative), so
    the loss tail and the gain tail differ by an order of magnitude and taking the wrong tail
    cannot pass (the symmetric residuals above cannot tell them apart). Reference: the
    empirical ``level`` quantile of the one-day LOSS ``-(mu + sigma_t z)`` over the residuals,
    computed directly with numpy for each hold-out day, sigma_t from a hand recursion."""
    rng = np.random.default_rng(17)
    raw = np.concatenate([rng.uniform(0.05, 0.6, 960), -rng.uniform(3.0, 8.0, 40)])
    resid = (raw - raw.mean()) / raw.std()  # mean 0, variance 1, skewed to the left
    # the two tails differ a lot: loss-side quantile > 4, gain-side quantile < 0.5
    assert -np.quantile(resid, 1 - level) > 4.0 > 0.5 > np.quantile(resid, level)
    params = {"mu": 0.0003, "omega": 2e-6, "alpha": 0.06, "gamma": 0.0, "beta": 0.92}
    fit = make_fit(params, std_resid=rng.permutation(resid), kind="garch")
    r_out = np.array([0.01, -0.03, 0.002, -0.001, 0.02, -0.015])
    var = one_day_var_forecasts(fit, r_out, level, innovations="fhs")
    p = fit.params
    s2, expected, wrong_tail = fit.sigma_next**2, [], []
    for r in r_out:
        losses = -(p["mu"] + math.sqrt(s2) * resid)
        expected.append(np.quantile(losses, level))
        wrong_tail.append(np.quantile(-losses, level))  # the gain tail, as a loss
        e = r - p["mu"]
        s2 = p["omega"] + p["alpha"] * e * e + p["beta"] * s2
    np.testing.assert_allclose(var, expected, rtol=1e-10)
    assert (var > 4 * np.abs(wrong_tail)).all()
    # an exception is a loss beyond VaR: about (1 - level) of the residual-implied losses are
    assert np.mean(-(p["mu"] + math.sqrt(fit.sigma_next**2) * resid) > var[0]) <= 1 - level


@pytest.mark.parametrize("innovations", ["t", "fhs"])
def test_drift_per_day_replaces_mu_and_moves_nothing_else(gjr_fit, innovations):
    """With the same random numbers, a drift ``m`` shifts every simulated daily log return by
    exactly ``m - mu`` (the variance recursion sees the shocks, not the mean); None keeps the
    fitted ``mu``; a non-finite drift is refused."""
    base = gjr_fit.simulate(300, 40, np.random.default_rng(3), innovations=innovations)
    same = gjr_fit.simulate(300, 40, np.random.default_rng(3), innovations=innovations, drift_per_day=None)
    np.testing.assert_array_equal(base, same)
    for m in (0.0, -0.002):
        got = gjr_fit.simulate(300, 40, np.random.default_rng(3), innovations=innovations, drift_per_day=m)
        np.testing.assert_allclose(got - base, m - gjr_fit.params["mu"], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="^drift_per_day: expected a finite number"):
        gjr_fit.simulate(3, 4, np.random.default_rng(3), drift_per_day=float("inf"))
