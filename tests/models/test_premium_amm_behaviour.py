"""Behaviour of the secondary-market models (models/premium.py, models/amm.py): monotonicity and robustness.

* AMM: a thinner pool never gives a smaller price impact; a larger sale never a smaller one;
  a v3 position's impact never exceeds the range floor ``1 - pa / P``.
* Arbitrage band: every friction widens (never narrows) the band.
* Premium process: more jump risk never lowers the stationary variance and raises the simulated
  tails; the band binds only on open days; a drawdown raises the jump frequency; fits on ~1,000
  days stay finite on awkward data; a fitted process reproduces the sample's mean, sd and lag-1
  autocorrelation within their sampling spread (parametric bootstrap).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.amm import ConcentratedLiquidityPool, ConstantProductPool
from models.calibration import fit_premium_process
from models.premium import PremiumProcess, arbitrage_band

RNG = np.random.default_rng(20261121)


# --------------------------------------------------------------------------- AMM


@pytest.mark.parametrize("fee", [0.0, 0.003, 0.01])
def test_thinner_constant_product_pool_never_gives_smaller_impact(fee: float) -> None:
    x = RNG.uniform(10, 5_000, 500)
    price = RNG.uniform(1_500, 3_500, 500)
    dx = RNG.uniform(0, 2_000, 500)
    thin = RNG.uniform(0.01, 1.0, 500)  # reserves scaled down at the same price
    deep = ConstantProductPool(x, x * price, fee).price_impact(dx)
    shallow = ConstantProductPool(x * thin, x * thin * price, fee).price_impact(dx)
    assert np.all(shallow >= deep - 1e-15)
    assert np.all(shallow[dx > 0] > deep[dx > 0])  # strictly, for a non-zero sale


@pytest.mark.parametrize("fee", [0.0, 0.0005, 0.003])
def test_thinner_v3_position_never_gives_smaller_impact(fee: float) -> None:
    big_l = RNG.uniform(100, 50_000, 500)
    pa = RNG.uniform(2_000, 2_600, 500)
    pb = pa + RNG.uniform(50, 1_000, 500)
    p = pa + (pb - pa) * RNG.uniform(0.05, 1.0, 500)
    dx = RNG.uniform(0, 20, 500)
    thin = RNG.uniform(0.01, 1.0, 500)
    deep = ConcentratedLiquidityPool(big_l, pa, pb, p, fee).price_impact(dx)
    shallow = ConcentratedLiquidityPool(big_l * thin, pa, pb, p, fee).price_impact(dx)
    assert np.all(shallow >= deep - 1e-15)


def test_larger_sale_never_gives_smaller_impact_and_v3_impact_stops_at_the_range_floor() -> None:
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 1e6, 400)])
    cp = ConstantProductPool(1_000.0, 2_600_000.0, 0.003)
    imp = cp.price_impact(grid)
    assert np.all(np.diff(imp) >= 0) and imp[0] == 0.0 and imp[-1] < 1.0
    v3 = ConcentratedLiquidityPool(8_000.0, 2_500.0, 2_800.0, 2_650.0, 0.003)
    r = v3.sell_x(grid)
    assert np.all(np.diff(r.price_impact) >= -1e-15)
    assert np.all(np.diff(r.amount_out) >= -1e-9)  # never less output for more input
    assert r.price_impact.max() == pytest.approx(1.0 - 2_500.0 / 2_650.0, rel=1e-12)
    assert np.all(r.price_impact <= 1.0 - 2_500.0 / 2_650.0 + 1e-15)
    # the unfilled remainder grows one for one with the sale once the range is exhausted
    cap = float(v3.x_in_to_price(2_500.0))
    over = grid > cap
    np.testing.assert_allclose(r.unfilled_in[over], grid[over] - cap, rtol=1e-9, atol=1e-9)


def test_larger_purchase_never_gives_smaller_price_rise() -> None:
    grid = np.geomspace(1e-3, 1e9, 300)
    for pool in (
        ConstantProductPool(1_000.0, 2_600_000.0, 0.003),
        ConcentratedLiquidityPool(8_000.0, 2_500.0, 2_800.0, 2_650.0, 0.003),
    ):
        rise = pool.sell_y(grid).price_after
        assert np.all(np.diff(rise) >= -1e-12)
        assert np.all(rise >= pool.price)


# --------------------------------------------------------------------------- band


def test_every_friction_widens_the_band() -> None:
    base = dict(
        mint_fee=0.002,
        redeem_fee=0.003,
        other_costs_frac=0.001,
        secondary_fee=0.001,
        settlement_lag_days=2.0,
        financing_rate_per_year=0.05,
        fixed_cost_usd=500.0,
        nav_usd_per_token=3_000.0,
        trade_size_tokens=100.0,
    )
    lo0, hi0 = arbitrage_band(**base)
    assert lo0 < 0 < hi0
    bumps = {
        "mint_fee": 0.001,
        "redeem_fee": 0.001,
        "other_costs_frac": 0.001,
        "secondary_fee": 0.001,
        "settlement_lag_days": 3.0,
        "financing_rate_per_year": 0.03,
        "fixed_cost_usd": 300.0,
    }
    for k, dv in bumps.items():
        lo, hi = arbitrage_band(**{**base, k: base[k] + dv})
        assert lo <= lo0 and hi >= hi0, k
        assert lo < lo0 or hi > hi0, k  # and strictly on at least one side
    # a smaller order spreads the fixed cost over fewer tokens
    lo, hi = arbitrage_band(**{**base, "trade_size_tokens": 10.0})
    assert lo < lo0 and hi > hi0
    # whole-bar rounding can only enlarge the order, so never widens the band
    lo, hi = arbitrage_band(**base, redemption_granularity_tokens=430.0)
    assert lo >= lo0 and hi <= hi0


# --------------------------------------------------------------------------- premium process


def test_more_jump_risk_never_lowers_variance_and_fattens_simulated_tails() -> None:
    base = PremiumProcess(mean=0.0, phi=0.8, sigma=0.002, jump_intensity_per_day=0.01, jump_mean=-0.01, jump_sd=0.01)
    lams = [0.0, 0.01, 0.03, 0.1]
    variances = [
        PremiumProcess(**{**base.to_dict(), "jump_intensity_per_day": lam}).stationary_variance() for lam in lams
    ]
    assert all(b > a for a, b in zip(variances, variances[1:]))
    q01 = []
    for lam in (0.0, 0.1):
        proc = PremiumProcess(**{**base.to_dict(), "jump_intensity_per_day": lam})
        q01.append(np.quantile(proc.simulate(20_000, 60, np.random.default_rng(1))[:, -1], 0.01))
    assert q01[1] < q01[0]  # deeper 1% discount with frequent negative jumps


def test_drawdown_raises_jump_frequency_in_simulation() -> None:
    proc = PremiumProcess(
        mean=0.0,
        phi=0.5,
        sigma=0.001,
        jump_intensity_per_day=0.01,
        jump_mean=-0.03,
        jump_sd=0.005,
        jump_drawdown_sensitivity=0.5,
    )
    calm = proc.simulate(20_000, 40, np.random.default_rng(2))
    stressed = proc.simulate(20_000, 40, np.random.default_rng(2), drawdown=np.full(40, 0.4))

    # jump days show as residuals far below the diffusion scale
    def share_jumps(x: np.ndarray) -> float:
        u = x[:, 1:] - 0.5 * x[:, :-1]
        return float((u < -0.015).mean())

    lam_calm, lam_stress = 0.01, 0.01 + 0.5 * 0.4
    assert share_jumps(calm) == pytest.approx(1 - math.exp(-lam_calm), rel=0.1)
    assert share_jumps(stressed) == pytest.approx(1 - math.exp(-lam_stress), rel=0.05)


def test_band_pulls_on_open_days_only_and_widens_the_premium_at_weekends() -> None:
    """Weekends (no pull) leave more premium beyond the band than weekdays; Monday's pull
    shrinks Sunday's excess by kappa on top of the AR(1) reversion; a stronger pull narrows the
    weekday distribution; nothing is clipped."""
    lo, hi = arbitrage_band(0.0025, 0.0025, 0.0005)
    proc = PremiumProcess(mean=0.0, phi=0.9, sigma=0.003, df=4.0).with_band(lo, hi, 0.5)
    days = pd.date_range("2025-01-06", periods=70, freq="D")
    weekday = np.asarray(days.day_of_week < 5)
    x = proc.simulate(20_000, 70, np.random.default_rng(4), market_open=weekday)
    beyond = (x > hi) | (x < lo)
    assert beyond[:, ~weekday].mean() > beyond[:, weekday].mean() + 0.05
    assert x[:, weekday].max() > hi and x[:, weekday].min() < lo  # a force, not a clamp
    # Monday given Sunday: p_mon - phi p_sun = -kappa x(p_sun) + noise; regress on the excess
    sun = np.flatnonzero(np.asarray(days.day_of_week == 6))
    sun = sun[sun + 1 < 70]
    p_sun, p_mon = x[:, sun].ravel(), x[:, sun + 1].ravel()
    slope = np.polyfit(proc.band_excess(p_sun), p_mon - 0.9 * p_sun, 1)[0]
    assert -slope == pytest.approx(0.5, abs=0.03)
    stronger = proc.with_band(lo, hi, 1.0).simulate(20_000, 70, np.random.default_rng(4), market_open=weekday)
    free = proc.with_band(lo, hi, 0.0).simulate(20_000, 70, np.random.default_rng(4), market_open=weekday)
    assert stronger[:, weekday].std() < x[:, weekday].std() < free[:, weekday].std()


@pytest.mark.parametrize(
    "name, series",
    [
        ("one bad print", np.r_[np.random.default_rng(1).normal(0, 0.002, 999), 0.5]),
        ("near unit root", np.cumsum(np.random.default_rng(2).normal(0, 0.0005, 1000))),
        ("white noise", np.random.default_rng(3).normal(0.001, 0.003, 1000)),
        ("many jumps", np.random.default_rng(4).standard_t(2.2, 1000) * 0.002),
    ],
)
def test_fit_stays_finite_on_awkward_1000_day_series(name: str, series: np.ndarray) -> None:
    s = pd.Series(series, index=pd.date_range("2022-01-01", periods=series.size, freq="D"))
    fit = fit_premium_process(s).process
    d = fit.to_dict()
    assert all(math.isfinite(v) for v in d.values()), (name, d)
    assert abs(fit.phi) < 1 and fit.sigma > 0
    assert math.isfinite(fit.fit_info.log_likelihood)
    assert math.isfinite(fit.log_likelihood(s))


def test_fitted_process_reproduces_sample_statistics_parametric_bootstrap() -> None:
    true = PremiumProcess(
        mean=0.0015, phi=0.75, sigma=0.002, df=5.0, jump_intensity_per_day=0.02, jump_mean=0.008, jump_sd=0.01
    )
    x = true.simulate(1, 1000, np.random.default_rng(77), p0=true.stationary_mean())[0]
    fit = fit_premium_process(pd.Series(x, index=pd.date_range("2022-01-01", periods=x.size, freq="D"))).process

    def stats3(a: np.ndarray) -> np.ndarray:
        a = np.atleast_2d(a)
        m = a.mean(axis=1)
        d = a - m[:, None]
        sd = a.std(axis=1)
        ac1 = (d[:, 1:] * d[:, :-1]).mean(axis=1) / sd**2
        return np.column_stack([m, sd, ac1])

    obs = stats3(x)[0]
    boot = stats3(fit.simulate(1_000, 1000, np.random.default_rng(5), p0=fit.stationary_mean()))
    lo, hi = np.quantile(boot, [0.0005, 0.9995], axis=0)
    assert np.all((obs >= lo) & (obs <= hi)), (obs, lo, hi)
    # and the bootstrap centre agrees with the closed forms of the fitted process
    assert np.median(boot[:, 0]) == pytest.approx(fit.stationary_mean(), abs=3 * boot[:, 0].std() / math.sqrt(1000))
