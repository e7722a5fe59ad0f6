"""Premium process and arbitrage band (models/premium.py) and AMM pools (models/amm.py) vs closed
forms and independent computations.

* Arbitrage band: the closed form against a brute-force arbitrageur's cash ledger (day loop of
  interest, lot rounding by a loop) written independently here.
* AMM pools: x*y=k, the v3 curve of real reserves (whitepaper eq. 2.2) and eqs. 6.29-6.30,
  outputs against root-finding on the invariant (scipy.optimize.brentq), v3 range exhaustion.
* Premium process: likelihood against scipy densities / numerical convolution, moments of
  simulations against the closed forms with tolerances from the sample size, fits
  (models.calibration.fit_premium_process) recovering known parameters within their reported
  standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from models.amm import ConcentratedLiquidityPool, ConstantProductPool, pool_from_dict
from models.calibration import fit_premium_process
from models.premium import PremiumProcess, arbitrage_band, order_size_tokens

# =========================================================================== arbitrage band


def _lot(wanted: float, min_tokens: float, gran: float) -> float:
    """Smallest allowed order >= wanted, by counting bars one by one."""
    need = max(wanted, min_tokens)
    if gran <= 0:
        return need
    lot = 0.0
    while lot < need - 1e-9:
        lot += gran
    return lot


def _financed(outlay: float, rate: float, days: int, dpy: float) -> float:
    """Outlay plus simple interest accrued day by day on the principal."""
    owed = outlay
    for _ in range(days):
        owed += outlay * rate / dpy
    return owed


def mint_and_sell_pnl(prem: float, p: dict) -> float:
    """USD profit of minting a lot and selling it on the secondary market (ledger)."""
    lot = _lot(p["size"], p["min"], p["gran"])
    nav = p["nav"]
    gold_delivered = lot * nav
    fees = lot * nav * (p["mint_fee"] + p["other"]) + p["fixed"]
    owed = _financed(gold_delivered + fees, p["rate"], p["lag"], p["dpy"])
    sale = lot * nav * (1.0 + prem) * (1.0 - p["sec"])
    return sale - owed


def buy_and_redeem_pnl(prem: float, p: dict) -> float:
    """USD profit of buying a lot on the secondary market and redeeming it (ledger)."""
    lot = _lot(p["size"], p["min"], p["gran"])
    nav = p["nav"]
    purchase = lot * nav * (1.0 + prem) * (1.0 + p["sec"])
    fees = lot * nav * (p["redeem_fee"] + p["other"]) + p["fixed"]
    owed = _financed(purchase + fees, p["rate"], p["lag"], p["dpy"])
    gold_received = lot * nav
    return gold_received - owed


BAND_CASES = [
    dict(
        mint_fee=0.0,
        redeem_fee=0.0,
        other=0.0,
        sec=0.0,
        lag=0,
        rate=0.0,
        dpy=365.0,
        fixed=0.0,
        nav=2000.0,
        size=1.0,
        min=0.0,
        gran=0.0,
    ),
    dict(
        mint_fee=0.0025,
        redeem_fee=0.004,
        other=0.001,
        sec=0.0,
        lag=0,
        rate=0.0,
        dpy=365.0,
        fixed=0.0,
        nav=2000.0,
        size=1.0,
        min=0.0,
        gran=0.0,
    ),
    dict(
        mint_fee=0.001,
        redeem_fee=0.002,
        other=0.0005,
        sec=0.0015,
        lag=3,
        rate=0.05,
        dpy=365.0,
        fixed=0.0,
        nav=2600.0,
        size=10.0,
        min=0.0,
        gran=0.0,
    ),
    # XAUT-like: whole 430-token bars, a fixed cost per order, two-day settlement
    dict(
        mint_fee=0.0025,
        redeem_fee=0.0025,
        other=0.002,
        sec=0.001,
        lag=2,
        rate=0.053,
        dpy=360.0,
        fixed=1500.0,
        nav=3000.0,
        size=500.0,
        min=50.0,
        gran=430.0,
    ),
    # small wanted size rounded up to the minimum
    dict(
        mint_fee=0.0,
        redeem_fee=0.01,
        other=0.0,
        sec=0.0005,
        lag=5,
        rate=0.08,
        dpy=365.0,
        fixed=250.0,
        nav=80.0,
        size=3.0,
        min=100.0,
        gran=0.0,
    ),
]


def _band(p: dict) -> tuple[float, float]:
    return arbitrage_band(
        p["mint_fee"],
        p["redeem_fee"],
        p["other"],
        secondary_fee=p["sec"],
        settlement_lag_days=p["lag"],
        financing_rate_per_year=p["rate"],
        days_per_year=p["dpy"],
        fixed_cost_usd=p["fixed"],
        nav_usd_per_token=p["nav"],
        trade_size_tokens=p["size"],
        min_redemption_tokens=p["min"],
        redemption_granularity_tokens=p["gran"],
    )


@pytest.mark.parametrize("p", BAND_CASES)
def test_band_edges_are_where_the_ledger_arbitrage_turns_profitable(p: dict) -> None:
    lower, upper = _band(p)
    eps = 1e-7
    assert mint_and_sell_pnl(upper + eps, p) > 0 > mint_and_sell_pnl(upper - eps, p)
    assert buy_and_redeem_pnl(lower - eps, p) > 0 > buy_and_redeem_pnl(lower + eps, p)
    # at the edges themselves the profit is zero up to float rounding of the notional
    notional = _lot(p["size"], p["min"], p["gran"]) * p["nav"]
    assert abs(mint_and_sell_pnl(upper, p)) < 1e-9 * notional
    assert abs(buy_and_redeem_pnl(lower, p)) < 1e-9 * notional
    # inside the band neither trade pays (the frictionless band is the single point 0)
    for prem in np.linspace(lower + eps, upper - eps, 41) if upper - lower > 4 * eps else []:
        assert mint_and_sell_pnl(prem, p) < 0 and buy_and_redeem_pnl(prem, p) < 0


def test_band_without_lag_or_fixed_costs_is_the_fees_plus_costs() -> None:
    lo, hi = arbitrage_band(0.0025, 0.004, 0.001)
    assert lo == pytest.approx(-0.005, abs=1e-15) and hi == pytest.approx(0.0035, abs=1e-15)
    assert arbitrage_band(0.0, 0.0) == (0.0, 0.0)


def test_band_lower_floor_when_redemption_never_pays() -> None:
    lo, _ = arbitrage_band(0.0, 0.9, 0.5)
    assert lo == -1.0


def test_default_order_size_is_the_smallest_allowed_lot() -> None:
    # 43 USD per order over one 430-token bar at 2 USD per token: 43 / 860 of NAV per token
    lo, hi = arbitrage_band(0.0, 0.0, fixed_cost_usd=43.0, nav_usd_per_token=2.0, redemption_granularity_tokens=430.0)
    assert hi == pytest.approx(43.0 / (430.0 * 2.0)) and lo == pytest.approx(-43.0 / (430.0 * 2.0))


def test_order_size_rounds_up_to_whole_bars_and_minimum() -> None:
    got = order_size_tokens(np.array([0.0, 1.0, 430.0, 431.0, 860.0000000001, 1000.0]), 50.0, 430.0)
    want = [_lot(w, 50.0, 430.0) if w > 0 else 0.0 for w in [0.0, 1.0, 430.0, 431.0, 860.0, 1000.0]]
    assert np.array_equal(got, want)
    assert order_size_tokens(3.0, 100.0, 0.0) == 100.0
    assert order_size_tokens(120.0, 100.0, 0.0) == 120.0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(mint_fee=-0.1, redeem_fee=0.0), "mint_fee"),
        (dict(mint_fee=0.0, redeem_fee=1.0), "redeem_fee"),
        (dict(mint_fee=0.0, redeem_fee=0.0, other_costs_frac=-1e-3), "other_costs_frac"),
        (dict(mint_fee=0.0, redeem_fee=0.0, secondary_fee=1.0), "secondary_fee"),
        (dict(mint_fee=0.0, redeem_fee=0.0, settlement_lag_days=-1), "settlement_lag_days"),
        (dict(mint_fee=0.0, redeem_fee=0.0, days_per_year=0.0), "days_per_year"),
        (dict(mint_fee=0.0, redeem_fee=0.0, fixed_cost_usd=10.0), "nav_usd_per_token"),
        (dict(mint_fee=0.0, redeem_fee=0.0, fixed_cost_usd=10.0, nav_usd_per_token=1.0), "trade_size_tokens"),
        (dict(mint_fee=float("nan"), redeem_fee=0.0), "mint_fee"),
    ],
)
def test_band_rejects_bad_arguments_by_name(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        arbitrage_band(**kwargs)


# =========================================================================== constant product


def test_constant_product_keeps_k_without_fee_and_price_is_k_over_new_x_squared() -> None:
    x, y = 1_000.0, 2_600_000.0
    pool = ConstantProductPool(x, y, fee=0.0)
    dx = np.array([0.0, 0.1, 5.0, 100.0, 1_000.0, 50_000.0])
    r = pool.sell_x(dx)
    np.testing.assert_allclose((x + dx) * (y - r.amount_out), x * y, rtol=1e-12)
    np.testing.assert_allclose(r.price_after, x * y / (x + dx) ** 2, rtol=1e-12)
    np.testing.assert_allclose(pool.price_impact(dx), 1.0 - (x / (x + dx)) ** 2, rtol=1e-10, atol=1e-15)
    assert np.all(r.unfilled_in == 0) and np.array_equal(r.amount_in, dx)


@pytest.mark.parametrize("fee", [0.0005, 0.003, 0.01])
def test_constant_product_output_solves_the_invariant_on_the_net_input(fee: float) -> None:
    x, y = 750.0, 1_950_000.0
    pool = ConstantProductPool(x, y, fee=fee)
    for dx in (0.5, 20.0, 700.0):
        want = optimize.brentq(
            lambda dy, dx=dx: (x + dx * (1 - fee)) * (y - dy) - x * y, 0.0, y, xtol=1e-10, rtol=1e-14
        )
        r = pool.sell_x(dx)
        assert float(r.amount_out) == pytest.approx(want, rel=1e-10)
        # the fee stays in the pool: k grows
        assert (x + dx) * (y - float(r.amount_out)) > x * y
    for dy in (10.0, 100_000.0):
        want = optimize.brentq(
            lambda dxo, dy=dy: (y + dy * (1 - fee)) * (x - dxo) - x * y, 0.0, x, xtol=1e-12, rtol=1e-14
        )
        assert float(pool.swap_y_for_x(dy)) == pytest.approx(want, rel=1e-10)


def test_constant_product_amount_to_reach_a_price_reaches_it() -> None:
    pool = ConstantProductPool(np.array([500.0, 800.0]), np.array([1_300_000.0, 2_000_000.0]), fee=0.003)
    down = pool.price * np.array([0.97, 0.5])
    dx = pool.x_in_to_price(down)
    np.testing.assert_allclose(pool.after_sell_x(dx).price, down, rtol=1e-10)
    up = pool.price * np.array([1.01, 1.8])
    dy = pool.y_in_to_price(up)
    np.testing.assert_allclose(pool.after_sell_y(dy).price, up, rtol=1e-10)
    assert np.all(pool.x_in_to_price(pool.price * 1.1) == 0.0)


def test_with_price_moves_along_the_curve() -> None:
    pool = ConstantProductPool(400.0, 1_000_000.0, fee=0.003)
    moved = pool.with_price(2_700.0)
    assert float(moved.price) == pytest.approx(2_700.0, rel=1e-12)
    assert float(moved.k) == pytest.approx(float(pool.k), rel=1e-12)


def test_pool_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="reserve_x"):
        ConstantProductPool(0.0, 1.0)
    with pytest.raises(ValueError, match="fee"):
        ConstantProductPool(1.0, 1.0, fee=1.0)
    with pytest.raises(ValueError, match="dx"):
        ConstantProductPool(1.0, 1.0).sell_x(-1.0)
    with pytest.raises(ValueError, match="price_lower"):
        ConcentratedLiquidityPool(10.0, 2.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="liquidity"):
        ConcentratedLiquidityPool(-1.0, 1.0, 2.0, 1.5)


# =========================================================================== concentrated liquidity


def v3_curve(pool: ConcentratedLiquidityPool) -> np.ndarray:
    """Left side of whitepaper eq. 2.2, (x + L/sqrt(pb)) (y + L sqrt(pa)), from real reserves."""
    x, y = pool.real_reserves()
    big_l = pool.liquidity
    return (x + big_l / np.sqrt(pool.price_upper)) * (y + big_l * np.sqrt(pool.price_lower))


def test_v3_real_reserves_follow_eqs_6_29_6_30_and_lie_on_the_curve() -> None:
    big_l, pa, pb, p = 5_000.0, 2_400.0, 2_900.0, 2_650.0
    pool = ConcentratedLiquidityPool(big_l, pa, pb, p, fee=0.0)
    x, y = pool.real_reserves()
    assert float(x) == pytest.approx(big_l * (1 / math.sqrt(p) - 1 / math.sqrt(pb)), rel=1e-14)
    assert float(y) == pytest.approx(big_l * (math.sqrt(p) - math.sqrt(pa)), rel=1e-14)
    assert float(v3_curve(pool)) == pytest.approx(big_l**2, rel=1e-12)
    # the pool price is the ratio of the virtual reserves
    xv, yv = pool.virtual_reserves()
    assert float(yv / xv) == pytest.approx(p, rel=1e-14)


def test_v3_swaps_stay_on_the_curve_and_conserve_tokens_without_fee() -> None:
    pool = ConcentratedLiquidityPool(5_000.0, 2_400.0, 2_900.0, 2_650.0, fee=0.0)
    x0, y0 = pool.real_reserves()
    for dx in (0.01, 1.0, 3.0):
        r = pool.sell_x(dx)
        after = pool.after_sell_x(dx)
        x1, y1 = after.real_reserves()
        assert float(v3_curve(after)) == pytest.approx(5_000.0**2, rel=1e-12)
        assert float(x1 - x0) == pytest.approx(dx, rel=1e-9)
        assert float(y0 - y1) == pytest.approx(float(r.amount_out), rel=1e-9)
    for dy in (10.0, 5_000.0):
        r = pool.sell_y(dy)
        x1, y1 = pool.after_sell_y(dy).real_reserves()
        assert float(y1 - y0) == pytest.approx(dy, rel=1e-9)
        assert float(x0 - x1) == pytest.approx(float(r.amount_out), rel=1e-9)


@pytest.mark.parametrize("fee", [0.0, 0.0005, 0.003])
def test_v3_within_range_equals_constant_product_on_virtual_reserves(fee: float) -> None:
    v3 = ConcentratedLiquidityPool(8_000.0, 2_000.0, 3_400.0, 2_650.0, fee=fee)
    xv, yv = v3.virtual_reserves()
    cp = ConstantProductPool(xv, yv, fee=fee)
    dx = np.array([0.0, 0.5, 5.0, 20.0])
    assert np.all(dx <= v3.x_in_to_price(2_000.0))  # all inside the range
    np.testing.assert_allclose(v3.swap_x_for_y(dx), cp.swap_x_for_y(dx), rtol=1e-11, atol=1e-12)
    dy = np.array([1.0, 1_000.0, 30_000.0])
    np.testing.assert_allclose(v3.swap_y_for_x(dy), cp.swap_y_for_x(dy), rtol=1e-11)
    if fee == 0.0:
        # v2 keeps the fee in the reserves, v3 outside the liquidity: prices agree only without fee
        np.testing.assert_allclose(v3.sell_x(dx).price_after, cp.sell_x(dx).price_after, rtol=1e-11)


@pytest.mark.parametrize("fee", [0.0, 0.003])
def test_v3_sale_exhausting_the_range_stops_at_pa_and_reports_the_rest(fee: float) -> None:
    big_l, pa, pb, p = 8_000.0, 2_500.0, 2_800.0, 2_650.0
    pool = ConcentratedLiquidityPool(big_l, pa, pb, p, fee=fee)
    # independent: gross x that moves 1/sqrt(P) from 1/sqrt(p) to 1/sqrt(pa), and the y held
    dx_max = big_l * (1 / math.sqrt(pa) - 1 / math.sqrt(p)) / (1 - fee)
    y_held = big_l * (math.sqrt(p) - math.sqrt(pa))
    assert float(pool.x_in_to_price(pa)) == pytest.approx(dx_max, rel=1e-12)

    just_below = pool.sell_x(0.999 * dx_max)
    assert float(just_below.unfilled_in) == 0.0
    assert pa < float(just_below.price_after) < p
    assert float(just_below.amount_out) < y_held

    for mult in (1.0, 1.5, 10.0):
        r = pool.sell_x(mult * dx_max)
        assert float(r.price_after) == pytest.approx(pa, rel=1e-12)
        assert float(r.amount_out) == pytest.approx(y_held, rel=1e-12)
        assert float(r.amount_in) == pytest.approx(dx_max, rel=1e-12)
        assert float(r.unfilled_in) == pytest.approx((mult - 1.0) * dx_max, abs=1e-9 * dx_max)
        assert float(r.price_impact) == pytest.approx(1.0 - pa / p, rel=1e-12)
    # after exhaustion the position holds no y: a further sale fills nothing and the price stays
    empty = pool.after_sell_x(2 * dx_max)
    assert float(empty.real_reserves()[1]) == pytest.approx(0.0, abs=1e-9)
    r2 = empty.sell_x(1.0)
    assert float(r2.amount_out) == 0.0 and float(r2.unfilled_in) == 1.0 and float(r2.price_after) == pytest.approx(pa)


def test_v3_purchase_exhausting_the_range_stops_at_pb() -> None:
    big_l, pa, pb, p = 8_000.0, 2_500.0, 2_800.0, 2_650.0
    pool = ConcentratedLiquidityPool(big_l, pa, pb, p, fee=0.0)
    dy_max = big_l * (math.sqrt(pb) - math.sqrt(p))
    x_held = big_l * (1 / math.sqrt(p) - 1 / math.sqrt(pb))
    r = pool.sell_y(3 * dy_max)
    assert float(r.price_after) == pytest.approx(pb, rel=1e-12)
    assert float(r.amount_out) == pytest.approx(x_held, rel=1e-12)
    assert float(r.unfilled_in) == pytest.approx(2 * dy_max, rel=1e-10)


def test_v3_price_above_range_crosses_the_empty_region_for_free() -> None:
    # price above pb: the position is all y; a sale first moves the price to pb at no output
    pool = ConcentratedLiquidityPool(8_000.0, 2_500.0, 2_800.0, 3_000.0, fee=0.0)
    inside = ConcentratedLiquidityPool(8_000.0, 2_500.0, 2_800.0, 2_800.0, fee=0.0)
    np.testing.assert_allclose(pool.sell_x(2.0).amount_out, inside.sell_x(2.0).amount_out, rtol=1e-13)
    np.testing.assert_allclose(pool.sell_x(2.0).price_after, inside.sell_x(2.0).price_after, rtol=1e-13)


def test_pools_vectorise_like_a_scalar_loop() -> None:
    rng = np.random.default_rng(5)
    big_l = rng.uniform(1_000, 10_000, 40)
    p = rng.uniform(2_500, 2_700, 40)
    dx = rng.uniform(0, 30, 40)
    vec = ConcentratedLiquidityPool(big_l, 2_400.0, 2_900.0, p, fee=0.003).sell_x(dx)
    for i in range(40):
        one = ConcentratedLiquidityPool(big_l[i], 2_400.0, 2_900.0, p[i], fee=0.003).sell_x(dx[i])
        for f in ("amount_in", "amount_out", "unfilled_in", "price_after"):
            assert float(getattr(vec, f)[i]) == pytest.approx(float(getattr(one, f)), rel=1e-13, abs=1e-13)
    cp = ConstantProductPool(big_l, big_l * p, fee=0.003)
    got = cp.sell_pressure_impact(dx)
    for i in range(40):
        assert float(got[i]) == pytest.approx(
            float(ConstantProductPool(big_l[i], big_l[i] * p[i], 0.003).sell_x(dx[i]).price_after), rel=1e-13
        )


def test_pool_dicts_round_trip_and_reject_unknown_fields() -> None:
    cp = ConstantProductPool(10.0, 20.0, 0.003)
    v3 = ConcentratedLiquidityPool(100.0, 0.9, 1.1, 1.0, 0.0005)
    assert pool_from_dict(cp.to_dict()).to_dict() == cp.to_dict()
    assert pool_from_dict(v3.to_dict()).to_dict() == v3.to_dict()
    with pytest.raises(ValueError, match="kind"):
        pool_from_dict({"kind": "curve"})
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['depth'\]"):
        pool_from_dict({"kind": "constant_product", "reserve_x": 1.0, "reserve_y": 1.0, "depth": 3})
    with pytest.raises(ValueError, match=r"missing field\(s\) \['price_lower', 'price_upper', 'price'\]"):
        pool_from_dict({"kind": "concentrated", "liquidity": 1.0})


# =========================================================================== premium process


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(phi=1.0), "phi"),
        (dict(phi=-1.2), "phi"),
        (dict(sigma=0.0), "sigma"),
        (dict(df=2.0), "df"),
        (dict(jump_intensity_per_day=-0.1), "jump_intensity_per_day"),
        (dict(jump_sd=-0.1), "jump_sd"),
        (dict(jump_drawdown_sensitivity=-1.0), "jump_drawdown_sensitivity"),
        (dict(band_lower=-0.01), "band_lower"),
        (dict(band_lower=0.01, band_upper=-0.01), "band_lower"),
        (dict(band_pull=-0.1), "band_pull"),
        (dict(band_pull=1.5), "band_pull"),
        (dict(mean=float("inf")), "mean"),
        (dict(sigma="a"), "sigma"),
    ],
)
def test_process_rejects_bad_fields_by_name(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PremiumProcess(**kwargs)


def test_stationary_moments_by_hand() -> None:
    p = PremiumProcess(
        mean=0.001,
        phi=0.5,
        sigma=0.002,
        jump_intensity_per_day=0.1,
        jump_mean=0.01,
        jump_sd=0.02,
        jump_drawdown_sensitivity=0.4,
    )
    # E p = m + lambda mu / (1 - phi) = 0.001 + 0.1 * 0.01 / 0.5
    assert p.stationary_mean() == pytest.approx(0.003, rel=1e-12)
    # Var p = (sigma^2 + lambda (s^2 + mu^2)) / (1 - phi^2) = (4e-6 + 0.1 * 5e-4) / 0.75
    assert p.stationary_variance() == pytest.approx(7.2e-5, rel=1e-12)
    # at drawdown 0.25 the intensity is 0.1 + 0.4 * 0.25 = 0.2
    assert p.stationary_mean(0.25) == pytest.approx(0.001 + 0.2 * 0.01 / 0.5, rel=1e-12)
    assert p.autocorrelation(3) == 0.125 and p.autocorrelation(0) == 1.0
    assert p.half_life_days == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lag"):
        p.autocorrelation(-1)


def _cross_section_checks(proc: PremiumProcess, sims: np.ndarray, drawdown: float) -> None:
    """Day-T cross-section (iid over paths) vs the closed forms, 4.5 standard errors."""
    x, y = sims[:, -2], sims[:, -1]
    n = y.size
    mean, var = proc.stationary_mean(drawdown), proc.stationary_variance(drawdown)
    assert abs(y.mean() - mean) < 4.5 * math.sqrt(var / n)
    m4 = np.mean((y - y.mean()) ** 4)
    assert abs(y.var() - var) < 4.5 * math.sqrt((m4 - y.var() ** 2) / n)
    xs, ys = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    r = float(np.mean(xs * ys))
    # influence function of Pearson's r (valid for non-normal data)
    se_r = float(np.std(xs * ys - r * (xs**2 + ys**2) / 2) / math.sqrt(n))
    assert abs(r - proc.autocorrelation(1)) < 4.5 * se_r


@pytest.mark.parametrize(
    "proc, drawdown",
    [
        (PremiumProcess(mean=0.0005, phi=0.8, sigma=0.002), 0.0),
        (
            PremiumProcess(mean=0.0, phi=0.6, sigma=0.0015, jump_intensity_per_day=0.05, jump_mean=0.01, jump_sd=0.015),
            0.0,
        ),
        # frequent jumps: several per day are common, so the compound-Poisson variance matters
        (
            PremiumProcess(mean=0.0, phi=0.5, sigma=0.001, jump_intensity_per_day=0.8, jump_mean=0.002, jump_sd=0.004),
            0.0,
        ),
        (
            PremiumProcess(
                mean=-0.001,
                phi=0.9,
                sigma=0.001,
                df=4.0,
                jump_intensity_per_day=0.01,
                jump_mean=-0.02,
                jump_sd=0.01,
                jump_drawdown_sensitivity=0.3,
            ),
            0.2,
        ),
    ],
)
def test_simulated_cross_section_matches_stationary_closed_forms(proc: PremiumProcess, drawdown: float) -> None:
    n, h = 40_000, 80  # phi^(2h) < 1e-7: the day-h law is stationary to well within the tolerance
    dd = np.full(h, drawdown)
    sims = proc.simulate(n, h, np.random.default_rng(11), drawdown=dd, p0=proc.stationary_mean(drawdown))
    assert sims.shape == (n, h)
    _cross_section_checks(proc, sims, drawdown)


def test_simulation_is_seeded_and_checks_its_arguments() -> None:
    proc = PremiumProcess(df=5.0, jump_intensity_per_day=0.1, jump_sd=0.01)
    a = proc.simulate(5, 20, np.random.default_rng(3))
    b = proc.simulate(5, 20, np.random.default_rng(3))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="horizon_days"):
        proc.simulate(5, 0, np.random.default_rng(3))
    with pytest.raises(ValueError, match="drawdown"):
        proc.simulate(5, 20, np.random.default_rng(3), drawdown=np.full(20, 1.5))
    with pytest.raises(ValueError, match="market_open"):
        proc.simulate(5, 20, np.random.default_rng(3), market_open=np.ones(19, dtype=bool))
    with pytest.raises(ValueError, match="rng"):
        proc.simulate(5, 20, 3)


def test_step_and_band_against_a_manual_recursion() -> None:
    """Normal innovations, no jumps: p = m + phi (p_prev - m) - kappa open x(p_prev) + sigma e +
    shock, x the excess of yesterday's premium over the band, written out path by path."""
    proc = PremiumProcess(mean=0.001, phi=0.7, sigma=0.004, band_lower=-0.003, band_upper=0.004, band_pull=0.6)
    n, h = 200, 30
    rng_days = np.random.default_rng(21)
    open_ = rng_days.random((n, h)) < 0.7
    shock = rng_days.normal(0, 0.01, (n, h))
    got = proc.simulate(n, h, np.random.default_rng(8), market_open=open_, p0=0.0, shock=shock)
    e = np.random.default_rng(8)
    want = np.empty((n, h))
    p = np.zeros(n)  # the same draws: one standard normal per path per day, day by day
    for t in range(h):
        z = e.standard_normal(n)
        new = np.empty(n)
        for i in range(n):
            excess = p[i] - 0.004 if p[i] > 0.004 else p[i] + 0.003 if p[i] < -0.003 else 0.0
            pull = 0.6 * excess if open_[i, t] else 0.0
            new[i] = 0.001 + 0.7 * (p[i] - 0.001) - pull + 0.004 * z[i] + shock[i, t]
        p = new
        want[:, t] = p
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    # nothing clips: open days leave the band too
    assert (got[open_] > 0.004).any() and (got[open_] < -0.003).any()
    # kappa = 0 is the plain AR(1), whatever the band and the calendar
    free = proc.with_band(-0.003, 0.004, 0.0).simulate(n, h, np.random.default_rng(8), market_open=open_, shock=shock)
    plain = PremiumProcess(mean=0.001, phi=0.7, sigma=0.004).simulate(n, h, np.random.default_rng(8), shock=shock)
    np.testing.assert_array_equal(free, plain)


def test_band_pull_on_a_premium_beyond_the_band_is_a_one_step_closed_form() -> None:
    """From p_prev = U + d above the band, the next conditional mean is m + phi (U + d - m) -
    kappa d on an open day and m + phi (U + d - m) on a closed one; inside the band the pull is 0."""
    proc = PremiumProcess(mean=0.0, phi=0.8, sigma=0.002, band_lower=-0.0025, band_upper=0.0025, band_pull=0.5)
    d = 0.02
    assert proc.conditional_mean(np.array([0.0025 + d]), True)[0] == pytest.approx(0.8 * 0.0225 - 0.5 * d, abs=1e-15)
    assert proc.conditional_mean(np.array([0.0025 + d]), False)[0] == pytest.approx(0.8 * 0.0225, abs=1e-15)
    assert proc.conditional_mean(np.array([-0.0025 - d]), True)[0] == pytest.approx(-0.8 * 0.0225 + 0.5 * d, abs=1e-15)
    assert proc.conditional_mean(np.array([0.001]), True)[0] == pytest.approx(0.8 * 0.001, abs=1e-15)
    np.testing.assert_array_equal(proc.band_excess(np.array([0.01, 0.0, -0.01])), [0.0075, 0.0, -0.0075])


def _mixture_logpdf_normal(u: np.ndarray, sigma: float, lam: np.ndarray, mu: float, s: float) -> np.ndarray:
    """Independent: Poisson-weighted normal mixture summed to 40 terms with scipy.stats."""
    tot = np.zeros_like(u)
    for k in range(40):
        tot += stats.poisson.pmf(k, lam) * stats.norm.pdf(u, loc=k * mu, scale=math.sqrt(sigma**2 + k * s**2))
    return np.log(tot)


def test_log_likelihood_normal_jumps_matches_the_poisson_normal_mixture() -> None:
    proc = PremiumProcess(
        mean=0.001,
        phi=0.6,
        sigma=0.002,
        jump_intensity_per_day=0.05,
        jump_mean=0.01,
        jump_sd=0.015,
        jump_drawdown_sensitivity=0.5,
    )
    x = proc.simulate(1, 400, np.random.default_rng(4))[0]
    dd = np.clip(np.linspace(0, 0.4, 400), 0, 1)
    s, d = pd.Series(x), pd.Series(dd)
    got = proc.log_likelihood(s, d, per_obs=True)
    u = x[1:] - 0.001 - 0.6 * (x[:-1] - 0.001)
    want = _mixture_logpdf_normal(u, 0.002, 0.05 + 0.5 * dd[1:], 0.01, 0.015)
    assert math.isnan(got.iloc[0])
    np.testing.assert_allclose(got.to_numpy()[1:], want, rtol=1e-10)
    assert proc.log_likelihood(s, d) == pytest.approx(want.sum(), rel=1e-10)


def test_log_likelihood_student_t_without_jumps_is_scipy_t() -> None:
    proc = PremiumProcess(mean=0.0, phi=0.3, sigma=0.003, df=3.5)
    x = proc.simulate(1, 300, np.random.default_rng(2))[0]
    u = x[1:] - 0.3 * x[:-1]
    want = stats.t.logpdf(u, 3.5, scale=0.003 * math.sqrt(1.5 / 3.5)).sum()
    assert proc.log_likelihood(pd.Series(x)) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("df, sigma, s_j", [(3.0, 0.002, 0.02), (6.0, 0.004, 0.001), (2.5, 0.001, 0.001)])
def test_t_jump_density_and_cdf_match_numerical_convolution(df: float, sigma: float, s_j: float) -> None:
    proc = PremiumProcess(sigma=sigma, df=df, jump_intensity_per_day=0.3, jump_mean=0.005, jump_sd=s_j)
    c = sigma * math.sqrt((df - 2) / df)
    lam = 0.3
    t_const = math.gamma((df + 1) / 2) / (math.gamma(df / 2) * math.sqrt(df * math.pi) * c)

    def t_pdf(z: float) -> float:  # scalar Student-t density with scale c (fast for quad)
        return t_const * (1.0 + (z / c) ** 2 / df) ** (-(df + 1) / 2)

    def n_pdf(z: float, loc: float, sd: float) -> float:
        return math.exp(-0.5 * ((z - loc) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    def dens(u: float) -> float:
        tot = stats.poisson.pmf(0, lam) * stats.t.pdf(u, df, scale=c)
        for k in range(1, 10):  # P(N > 9) < 1e-11 at lambda = 0.3
            sk = s_j * math.sqrt(k)
            f = lambda z, k=k, sk=sk: t_pdf(z) * n_pdf(u - z, k * 0.005, sk)  # noqa: E731
            centre = u - k * 0.005
            pieces = [(-np.inf, centre - 12 * sk), (centre - 12 * sk, centre + 12 * sk), (centre + 12 * sk, np.inf)]
            tot += stats.poisson.pmf(k, lam) * sum(
                integrate.quad(f, a, b, limit=400, points=None)[0] for a, b in pieces
            )
        return tot

    us = np.array([-0.03, -0.004, 0.0, 0.003, 0.012, 0.05])
    want = np.array([dens(u) for u in us])
    np.testing.assert_allclose(np.exp(proc.innovation_logpdf(us)), want, rtol=2e-5)
    # CDF against Simpson's integral of the (just checked) density from far left; the mass
    # below -0.5 is < 1e-7 for these scales
    for u in (-0.004, 0.003, 0.02):
        far, near = np.linspace(-0.5, -0.06, 4_001), np.linspace(-0.06, u, 8_001)
        cdf_num = sum(integrate.simpson(np.exp(proc.innovation_logpdf(g)), x=g) for g in (far, near))
        assert float(proc.innovation_cdf(u)) == pytest.approx(cdf_num, abs=2e-6)
    q = np.array([0.001, 0.025, 0.5, 0.975, 0.999])
    np.testing.assert_allclose(proc.innovation_cdf(proc.innovation_ppf(q)), q, atol=1e-9)


def test_one_step_forecast_intervals_cover_at_the_nominal_rate() -> None:
    proc = PremiumProcess(mean=0.001, phi=0.8, sigma=0.002, jump_intensity_per_day=0.04, jump_mean=0.008, jump_sd=0.01)
    x = proc.simulate(1, 4000, np.random.default_rng(9))[0]
    s = pd.Series(x, index=pd.date_range("2020-01-01", periods=4000, freq="D"))
    fc = proc.one_step_forecast(s, quantiles=(0.025, 0.975))
    assert list(fc.columns) == ["mean", "q0.025", "q0.975"] and fc.iloc[0].isna().all()
    np.testing.assert_allclose(fc["mean"].to_numpy()[1:], 0.001 + 0.8 * (x[:-1] - 0.001) + 0.04 * 0.008, rtol=1e-12)
    inside = ((s >= fc["q0.025"]) & (s <= fc["q0.975"])).to_numpy()[1:]
    n = inside.size
    assert abs(inside.mean() - 0.95) < 4 * math.sqrt(0.95 * 0.05 / n)


def _series(proc: PremiumProcess, n: int, seed: int, **kw) -> pd.Series:
    x = proc.simulate(1, n, np.random.default_rng(seed), p0=proc.stationary_mean(), **kw)[0]
    return pd.Series(x, index=pd.date_range("2022-03-01", periods=n, freq="D"))


def _within(fit: PremiumProcess, true: PremiumProcess, names: list[str], k: float = 4.0) -> None:
    se = fit.fit_info.standard_errors
    for name in names:
        assert math.isfinite(se[name]) and se[name] > 0, name
        assert abs(getattr(fit, name) - getattr(true, name)) < k * se[name], (
            name,
            getattr(fit, name),
            getattr(true, name),
            se[name],
        )


# The estimator is models.calibration.fit_premium_process (conditional MLE with model selection);
# these check that it recovers processes simulated by PremiumProcess.simulate.


def test_mle_recovers_a_normal_jump_process_on_1000_days_within_its_standard_errors() -> None:
    true = PremiumProcess(mean=0.001, phi=0.8, sigma=0.002, jump_intensity_per_day=0.03, jump_mean=0.006, jump_sd=0.012)
    sel = fit_premium_process(_series(true, 1000, 31), innovations="normal")
    fit = sel.process
    assert sel.spec == "normal+jumps" and fit.fit_info.converged and sel.n_obs == fit.fit_info.n_obs == 999
    _within(fit, true, ["mean", "phi", "sigma", "jump_intensity_per_day", "jump_mean", "jump_sd"])
    assert fit.df is None and fit.band_lower is None


def test_fit_with_student_t_and_jumps_reports_the_likelihood_of_its_process() -> None:
    true = PremiumProcess(
        mean=0.0, phi=0.7, sigma=0.002, df=5.0, jump_intensity_per_day=0.02, jump_mean=0.01, jump_sd=0.01
    )
    s = _series(true, 1000, 5)
    fit = fit_premium_process(s).process
    assert fit.fit_info.log_likelihood == pytest.approx(fit.log_likelihood(s), rel=1e-10)
    _within(fit, true, ["mean", "phi"])
    # the jump days are reported by date
    assert fit.fit_info.n_jumps == len(fit.fit_info.jump_labels)
    assert all(isinstance(d, pd.Timestamp) for d in fit.fit_info.jump_labels)


def test_fit_without_jumps_recovers_persistence_and_scale() -> None:
    true = PremiumProcess(mean=0.002, phi=0.9, sigma=0.001, df=6.0)
    fit = fit_premium_process(_series(true, 1500, 12), jumps=False).process
    _within(fit, true, ["mean", "phi", "sigma"])
    assert fit.jump_intensity_per_day == 0.0


def test_fit_skips_pairs_broken_by_missing_days() -> None:
    true = PremiumProcess(mean=0.0, phi=0.6, sigma=0.002)
    s = _series(true, 700, 3)
    weekdays = s[s.index.day_of_week < 5]  # weekends missing
    sel = fit_premium_process(weekdays, innovations="normal", jumps=False, max_step_gap_days=1)
    gappy = s.where(s.index.day_of_week < 5)
    x = gappy.to_numpy()
    pairs = int((np.isfinite(x[:-1]) & np.isfinite(x[1:])).sum())
    assert sel.n_obs == sel.process.fit_info.n_obs == pairs
    # the likelihood scores the same pairs only
    assert int(sel.process.log_likelihood(gappy, per_obs=True).notna().sum()) == pairs


_DAYS = pd.date_range("2022-01-03", periods=51, freq="D")


@pytest.mark.parametrize(
    "series, match",
    [
        (pd.Series(np.zeros(10), index=_DAYS[:10]), "30"),
        (pd.Series(np.r_[np.linspace(0, 0.01, 50), np.inf], index=_DAYS), "finite"),
        (pd.Series(np.r_[np.linspace(0, 0.01, 50), -1.0], index=_DAYS), "> -1"),
        (pd.Series(np.full(50, 0.001), index=_DAYS[:50]), "equal"),
        (pd.Series(np.linspace(0, 0.01, 50), index=_DAYS[:50][::-1]), "increasing"),
    ],
)
def test_fit_rejects_bad_series(series: pd.Series, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_premium_process(series)


def test_to_dict_round_trips_and_has_no_nulls() -> None:
    proc = PremiumProcess(
        mean=0.001,
        phi=0.7,
        sigma=0.002,
        df=4.0,
        jump_intensity_per_day=0.02,
        jump_mean=0.01,
        jump_sd=0.01,
        band_lower=-0.005,
        band_upper=0.004,
        band_pull=0.3,
    )
    d = proc.to_dict()
    assert None not in d.values()
    assert PremiumProcess.from_dict(d) == proc
    normal = PremiumProcess().to_dict()
    assert "df" not in normal and "band_lower" not in normal
    assert PremiumProcess.from_dict(normal) == PremiumProcess()
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['theta'\]"):
        PremiumProcess.from_dict({"mean": 0.0, "theta": 1.0})
    with pytest.raises(ValueError, match="phi"):
        PremiumProcess.from_dict({"phi": 2.0})
