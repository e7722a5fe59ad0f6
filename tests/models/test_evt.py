"""Unit tests of models.evt (POT / GPD tail) against scipy and closed forms."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.evt import MIN_EXCEEDANCES, GpdTail, fit_pot


@pytest.fixture(scope="module")
def gpd_sample():
    # pure GPD(xi=0.3, beta=1) losses; by threshold stability, exceedances over u are
    # GPD(xi, beta + xi * u) (Embrechts, Klueppelberg & Mikosch 1997, Thm 3.4.13(c))
    return stats.genpareto.rvs(0.3, scale=1.0, size=100_000, random_state=np.random.default_rng(7))


def test_fit_pot_recovers_gpd_parameters(gpd_sample):
    tail = fit_pot(gpd_sample, threshold_quantile=0.9)
    u_true = stats.genpareto.ppf(0.9, 0.3)
    assert tail.n_total == 100_000
    assert tail.n_exceed == 10_000  # linear-interpolated quantile, continuous data, no ties
    assert tail.threshold == pytest.approx(u_true, rel=0.02)
    # MLE asymptotics (Smith 1987): sd(xi) = (1+xi)/sqrt(N_u) = 0.013,
    # sd(beta)/beta = sqrt(2(1+xi)/N_u) = 0.016; tolerances ~4 sd
    assert tail.xi == pytest.approx(0.3, abs=0.055)
    assert tail.beta == pytest.approx(1.0 + 0.3 * tail.threshold, rel=0.065)


@pytest.mark.parametrize("level", [0.95, 0.99, 0.999])
def test_var_es_equal_scipy_tail_computation(gpd_sample, level):
    """VaR/ES from the closed forms equal scipy's GPD quantile and conditional expectation
    of the fitted tail model P(L > x) = (N_u/n) * GPD_sf(x - u)."""
    tail = fit_pot(gpd_sample, threshold_quantile=0.9)
    g = stats.genpareto(tail.xi, scale=tail.beta)
    zeta = tail.n_exceed / tail.n_total
    var_ref = tail.threshold + g.ppf(1 - (1 - level) / zeta)
    es_ref = tail.threshold + g.expect(lambda y: y, lb=var_ref - tail.threshold, conditional=True)
    assert tail.var(level) == pytest.approx(var_ref, rel=1e-10)
    assert tail.es(level) == pytest.approx(es_ref, rel=1e-6)
    # and the fitted tail is close to the true GPD quantile (estimation error only)
    assert tail.var(level) == pytest.approx(stats.genpareto.ppf(level, 0.3), rel=0.05)


def test_student_t_tail_quantile_and_es():
    """t(4) losses have a Pareto tail with xi = 1/4; the 99.5 % POT VaR/ES match the true
    t quantile and t ES (McNeil, Frey & Embrechts 2005, Example 2.19)."""
    nu = 4.0
    x = stats.t.rvs(nu, size=200_000, random_state=np.random.default_rng(3))
    tail = fit_pot(pd.Series(x), threshold_quantile=0.95)
    # second-order bias of the t at the 95 % threshold pulls xi below 1/nu (about 0.2 here)
    assert 0.1 < tail.xi < 0.35
    p = 0.995
    q = stats.t.ppf(p, nu)
    es_true = stats.t.pdf(q, nu) / (1 - p) * (nu + q * q) / (nu - 1)
    # sd of the POT quantile with N_u = 10,000 is ~1.5 % here; 5 % tolerance
    assert tail.var(p) == pytest.approx(q, rel=0.05)
    assert tail.es(p) == pytest.approx(es_true, rel=0.07)


def test_exponential_limit_xi_zero():
    """xi = 0: VaR = u + beta * ln(N_u / (n (1 - p))), ES = VaR + beta (exponential tail)."""
    t0 = GpdTail(xi=0.0, beta=0.01, threshold=0.02, n_exceed=50, n_total=1000)
    p = 0.99
    var_ref = 0.02 + 0.01 * math.log(50 / (1000 * (1 - p)))
    assert t0.var(p) == pytest.approx(var_ref, rel=1e-14)
    assert t0.es(p) == pytest.approx(var_ref + 0.01, rel=1e-14)
    # continuity: tiny xi either side gives the same numbers to O(xi)
    for xi in (1e-9, -1e-9):
        t1 = GpdTail(xi=xi, beta=0.01, threshold=0.02, n_exceed=50, n_total=1000)
        assert t1.var(p) == pytest.approx(var_ref, rel=1e-7)
        assert t1.es(p) == pytest.approx(var_ref + 0.01, rel=1e-7)


def test_negative_xi_respects_finite_endpoint():
    t = GpdTail(xi=-0.25, beta=0.01, threshold=0.02, n_exceed=50, n_total=1000)
    endpoint = 0.02 + 0.01 / 0.25
    assert t.threshold < t.var(0.99) < t.var(0.99999) < endpoint
    assert t.var(0.99) < t.es(0.99) < endpoint


def test_round_trip_through_json(gpd_sample):
    tail = fit_pot(gpd_sample, threshold_quantile=0.95)
    back = GpdTail.from_dict(json.loads(json.dumps(tail.to_dict())))
    assert back == tail
    assert back.es(0.99) == tail.es(0.99)


def test_errors():
    t = GpdTail(xi=1.2, beta=0.01, threshold=0.02, n_exceed=50, n_total=1000)
    assert t.var(0.99) > 0  # VaR exists for any xi
    with pytest.raises(ValueError, match="xi"):
        t.es(0.99)
    t = GpdTail(xi=0.2, beta=0.01, threshold=0.02, n_exceed=50, n_total=1000)
    with pytest.raises(ValueError, match="threshold quantile"):
        t.var(0.95)  # = 1 - N_u/n exactly: not beyond the threshold
    with pytest.raises(ValueError, match="threshold quantile"):
        t.es(0.9)
    with pytest.raises(ValueError, match="level"):
        t.var(99.0)
    with pytest.raises(ValueError, match="beta"):
        GpdTail(xi=0.2, beta=0.0, threshold=0.02, n_exceed=50, n_total=1000)
    with pytest.raises(ValueError, match="n_exceed"):
        GpdTail(xi=0.2, beta=0.01, threshold=0.02, n_exceed=1000, n_total=1000)
    with pytest.raises(ValueError, match=r"missing keys \['beta', 'threshold', 'n_exceed', 'n_total'\]"):
        GpdTail.from_dict({"xi": 0.1})
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=f"need at least {MIN_EXCEEDANCES}"):
        fit_pot(rng.standard_normal(200), threshold_quantile=0.95)  # 10 exceedances
    x = pd.Series(rng.standard_normal(2000), index=pd.date_range("2001-01-01", periods=2000))
    x.iloc[4] = np.nan
    with pytest.raises(ValueError, match="2001-01-05"):
        fit_pot(x)
    with pytest.raises(ValueError, match="threshold_quantile"):
        fit_pot(rng.standard_normal(2000), threshold_quantile=95)
