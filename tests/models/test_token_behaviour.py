"""Behaviour of the token models: monotonicity, full backing, bad-debt threshold, conservation."""

from __future__ import annotations

import numpy as np
import pytest

from goldstress.settings import PROJECT_ROOT
from models.scenarios import instant_shock, to_price_paths
from models.token.cdp import CdpStablecoin
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import CdpStablecoinSpec, ReserveBackedTokenSpec, load_token_spec
from models.units import TROY_OUNCE_G
from tests.models.token_specs import GRAM_SIMPLE, simple_reserve_backed

P0 = 4400.0
GRAM = simple_reserve_backed(**GRAM_SIMPLE)  # gold reserve + USD buffer, no market frictions
GUSD = load_token_spec(PROJECT_ROOT / "specs" / "gusd_cdp.toml")
assert isinstance(GUSD, CdpStablecoinSpec)


def shock_paths(sizes: np.ndarray, horizon_days: int = 30) -> np.ndarray:
    """One instant-shock price path per size, stacked: (len(sizes), horizon_days + 1)."""
    r = np.vstack([instant_shock(float(s), horizon_days) for s in sizes])
    return to_price_paths(P0, r)


def wild_paths(n: int, days: int, seed: int, vol: float = 0.04) -> np.ndarray:
    """Fat-tailed (Student t, 3 df) random walks with big gaps and deep drawdowns."""
    rng = np.random.default_rng(seed)
    return to_price_paths(P0, vol * rng.standard_t(3, size=(n, days)))


def gram(**kw: float) -> ReserveBackedTokenSpec:
    """GRAM_SIMPLE with some numbers changed."""
    return simple_reserve_backed(**{**GRAM_SIMPLE, **kw})


def frictionless(**kw: float) -> ReserveBackedTokenSpec:
    """GRAM_SIMPLE without opex and fees, exactly gold-backed, no cash (changes in ``kw``)."""
    upd = dict(
        opex_usd_per_year=0.0,
        mint_fee=0.0,
        redeem_fee=0.0,
        cash_buffer_usd=0.0,
        gold_reserve_g=GRAM_SIMPLE["supply_tokens"],
    )
    upd.update(kw)
    return gram(**upd)


# --------------------------------------------------------------------------- monotonicity

FALLS = -np.linspace(0.01, 0.6, 60)  # increasing severity


def test_cdp_larger_fall_never_gives_lower_loss() -> None:
    out = CdpStablecoin(GUSD).run(shock_paths(FALLS))
    holder = out.holder_value_usd_per_token[:, -1]
    bad = out.bad_debt_usd[:, -1]
    liquidated_debt = GUSD.supply_usd - (out.supply_tokens[:, -1] - bad)
    assert (np.diff(holder) <= 1e-15).all()
    assert (np.diff(bad) >= 0).all()
    assert (np.diff(liquidated_debt) >= -1e-6).all()
    assert (np.diff(out.liquidated[:, -1].astype(int)) >= 0).all()
    # and the range is exercised: from nothing to every tranche liquidated with bad debt
    assert bad[0] == 0 and not out.liquidated[0, -1] and holder[-1] < 0.9


def test_cdp_backing_ratio_is_not_monotone_in_the_shock() -> None:
    """Liquidating the weakest tranche raises the average collateral ratio, so backing is NOT a
    monotone loss measure (holder value and bad debt are). Closed forms: at -7 % nothing is
    liquidated, backing = (0.9 + 0.45 + 0.26) * 0.93; at -8 % the 1.3 tranche (20 % of debt)
    is gone, backing = (0.9 + 0.45) * 0.92 / 0.8."""
    out = CdpStablecoin(GUSD).run(shock_paths(np.array([-0.07, -0.08])))
    np.testing.assert_allclose(out.backing_ratio[:, -1], [1.61 * 0.93, 1.35 * 0.92 / 0.8], rtol=1e-12)
    assert out.backing_ratio[1, -1] > out.backing_ratio[0, -1]


def test_gold_token_larger_fall_never_gives_higher_holder_value() -> None:
    out = ReserveBackedToken(GRAM).run(shock_paths(FALLS))
    assert (np.diff(out.holder_value_usd_per_token[:, -1]) < 0).all()
    assert (np.diff(out.holder_loss()) > 0).all()
    # fully gold-backed plus cash: no fall breaks it within the horizon
    assert not out.breached().any()


@pytest.mark.parametrize("spec", [GRAM, frictionless(gold_reserve_g=0.95e7, cash_buffer_usd=1e8)])
def test_gold_token_larger_rise_never_gives_higher_backing(spec: ReserveBackedTokenSpec) -> None:
    """Cash is in USD: the higher gold goes, the smaller its share of the liabilities."""
    out = ReserveBackedToken(spec).run(shock_paths(np.linspace(0.0, 3.0, 61)))
    assert (np.diff(out.backing_ratio[:, -1]) < 0).all()


def test_more_redemption_sensitivity_never_improves_cash_without_redeem_fees() -> None:
    """Fees credited to the reserve (``fees_to_reserve``, the only case where fee income reaches
    its cash): with redeem_fee = 0 redemptions earn nothing, while they shrink the supply and
    hence the mint-fee income; opex is the same. So cash is pathwise non-increasing in the
    sensitivity. (With redeem_fee > 0 the reserve earns on redemptions and this need not hold.)"""
    prices = wild_paths(200, 250, seed=1, vol=0.02)
    cash = []
    for sens in (0.0, 0.005, 0.02, 0.1, 0.5):
        spec = gram(
            redeem_fee=0.0, fees_to_reserve=True, redeem_drawdown_sensitivity=sens, max_redeem_share_per_day=0.2
        )
        cash.append(ReserveBackedToken(spec).run(prices).cash_usd)
    for lower, higher in zip(cash[:-1], cash[1:]):
        assert (higher <= lower + 1e-6).all()
    assert (cash[-1][:, -1] < cash[0][:, -1]).mean() > 0.5  # and it does bite


# --------------------------------------------------------------------------- full backing


@pytest.mark.parametrize("seed", [0, 1])
def test_fully_backed_frictionless_token_stays_fully_backed_in_grams(seed: int) -> None:
    spec = frictionless(
        base_redeem_rate_per_day=0.01,
        redeem_drawdown_sensitivity=0.3,
        max_redeem_share_per_day=0.9,
        base_mint_rate_per_day=0.02,
    )
    prices = wild_paths(500, 250, seed=seed, vol=0.05)
    assert prices.min() < 0.2 * P0 and prices.max() > 5 * P0  # extreme paths included
    out = ReserveBackedToken(spec).run(prices)
    grams_owed = out.supply_tokens * spec.grams_per_token
    # float rounding only: each day adds/subtracts the same grams on both sides
    assert (out.gold_reserve_g >= grams_owed * (1 - 1e-12)).all()
    np.testing.assert_allclose(out.backing_ratio, 1.0, rtol=1e-12)
    assert not out.breached().any()
    np.testing.assert_allclose(out.holder_value_usd_per_token, prices / TROY_OUNCE_G, rtol=1e-12)


# --------------------------------------------------------------------------- CDP bad debt


def one_tranche(cr: float = 1.5, lr: float = 1.2, haircut: float = 0.05) -> CdpStablecoinSpec:
    return GUSD.model_copy(
        update={
            "tranches": [GUSD.tranches[0].model_copy(update={"debt_share": 1.0, "collateral_ratio": cr})],
            "liquidation_ratio": lr,
            "liquidation_haircut": haircut,
        }
    )


@pytest.mark.parametrize(("cr", "haircut"), [(1.5, 0.05), (1.8, 0.13), (1.25, 0.0)])
def test_bad_debt_exactly_when_a_gap_takes_cr_below_one_over_one_minus_haircut(cr: float, haircut: float) -> None:
    """Liquidated at CR_t < L, sold at P_t (1 - h): bad debt iff CR_t (1 - h) < 1, i.e. a day-1
    price ratio x < 1 / (CR_0 (1 - h)); then bad debt = D (1 - CR_0 x (1 - h))."""
    spec = one_tranche(cr, 1.2, haircut)
    x_star = 1 / (cr * (1 - haircut))
    xs = np.array([x_star * (1 - 1e-9), x_star * (1 + 1e-9), 0.5 * x_star, 1.2 / cr * 0.999])
    out = CdpStablecoin(spec).run(P0 * np.column_stack([np.ones(4), xs]))
    bad = out.bad_debt_usd[:, -1]
    assert out.liquidated[:, -1].all()
    assert bad[0] > 0 and bad[1] == 0 and bad[3] == 0
    d = spec.supply_usd
    np.testing.assert_allclose(bad[[0, 2]], d * (1 - cr * xs[[0, 2]] * (1 - haircut)), rtol=1e-6)


def test_no_bad_debt_without_a_large_enough_one_day_gap() -> None:
    """From CR >= L a single day must fall by more than 1 - 1/(L (1 - h)) (12.3 % here) for bad
    debt. A 1 %/day slide to 8 % of the start price liquidates without any; a path that sits
    exactly at CR = L and then gaps 13 % creates it."""
    spec = one_tranche(1.5, 1.2, 0.05)
    slide = P0 * 0.99 ** np.arange(251)
    gap_ratio = 1 / (1.2 * 0.95)
    at_l = P0 * 1.2 / 1.5 * (1 + 1e-12)  # CR = L (a hair above, against float rounding)
    gaps = np.array([[P0, at_l, at_l * gap_ratio * (1 - 1e-9)], [P0, at_l, at_l * gap_ratio * (1 + 1e-9)]])
    out_slide = CdpStablecoin(spec).run(slide[None, :])
    assert out_slide.liquidated[0, -1] and out_slide.bad_debt_usd[0, -1] == 0
    out_gap = CdpStablecoin(spec).run(gaps)
    assert out_gap.bad_debt_usd[0, -1] > 0 and out_gap.bad_debt_usd[1, -1] == 0
    assert not out_gap.liquidated[:, 1].any()  # CR exactly L is not liquidated


def test_bad_debt_matches_gap_condition_on_random_paths() -> None:
    """Independent check path by path: find the first day with CR < L by scanning, then bad
    debt > 0 iff CR that day < 1/(1-h), and that day's gap is below 1/(L(1-h))."""
    spec = one_tranche(1.4, 1.2, 0.05)
    prices = wild_paths(2000, 60, seed=5, vol=0.03)
    out = CdpStablecoin(spec).run(prices)
    cr = 1.4 * prices / prices[:, :1]
    for i in range(prices.shape[0]):
        days = np.flatnonzero(cr[i, 1:] < 1.2)
        if days.size == 0:
            assert not out.liquidated[i, -1] and out.bad_debt_usd[i, -1] == 0
            continue
        tau = days[0] + 1
        has_bad = cr[i, tau] < 1 / 0.95
        assert (out.bad_debt_usd[i, -1] > 0) == has_bad
        assert out.liquidated[i, tau] and not out.liquidated[i, tau - 1]
        if has_bad:
            assert prices[i, tau] / prices[i, tau - 1] < 1 / (1.2 * 0.95)
    assert 0 < (out.bad_debt_usd[:, -1] > 0).sum() < out.liquidated[:, -1].sum()


# --------------------------------------------------------------------------- conservation


def test_gold_token_conserves_gold_and_tokens() -> None:
    prices = wild_paths(300, 250, seed=3, vol=0.02)
    spec = gram(cash_buffer_usd=2e5)  # cash runs out: gold is sold
    out = ReserveBackedToken(spec).run(prices)
    # gold in = gold out + reserve change
    np.testing.assert_allclose(
        out.gold_reserve_g - out.gold_reserve_g[:, :1], out.gold_in_g - out.gold_out_g, rtol=0, atol=1e-6
    )
    assert (np.diff(out.gold_in_g, axis=1) >= 0).all()
    assert (np.diff(out.gold_out_g, axis=1) >= 0).all()
    # without opex, every gram in or out comes with a token minted or redeemed
    no_opex = ReserveBackedToken(gram(cash_buffer_usd=2e5, opex_usd_per_year=0.0)).run(prices)
    d_supply_g = (no_opex.supply_tokens - no_opex.supply_tokens[:, :1]) * spec.grams_per_token
    np.testing.assert_allclose(d_supply_g, no_opex.gold_in_g - no_opex.gold_out_g, rtol=0, atol=1e-5)
    # USD: while the reserve never runs dry, mints and redemptions do not depend on opex, so
    # the extra gold out with opex is the gold sold for it, and
    # total opex = paid from cash (the end-cash gap) + gold sold at each day's price
    assert out.gold_reserve_g.min() > 0
    np.testing.assert_allclose(out.supply_tokens, no_opex.supply_tokens, rtol=1e-13)
    sold_g = (out.gold_out_g - out.gold_in_g) - (no_opex.gold_out_g - no_opex.gold_in_g)
    sold_usd = (np.diff(sold_g, axis=1) * prices[:, 1:] / TROY_OUNCE_G).sum(axis=1)
    from_cash = no_opex.cash_usd[:, -1] - out.cash_usd[:, -1]
    opex_total = spec.opex_usd_per_year / spec.days_per_year * 250
    np.testing.assert_allclose(from_cash + sold_usd, opex_total, rtol=1e-8)
    assert (sold_usd > 0).mean() > 0.9 and (from_cash >= 2e5 - 1e-6).all()


def test_cdp_conserves_collateral_and_coins() -> None:
    prices = wild_paths(500, 120, seed=4, vol=0.03)
    out = CdpStablecoin(GUSD).run(prices)
    # collateral: initial = live + gone (sold or returned), in grams
    np.testing.assert_allclose(
        out.gold_reserve_g + out.gold_out_g,
        np.broadcast_to(out.gold_reserve_g[:, :1], out.gold_out_g.shape),
        rtol=1e-12,
    )
    assert not out.gold_in_g.any()
    # coins: outstanding = initial - burned; burned = liquidated debt - bad debt >= 0
    burned = GUSD.supply_usd - out.supply_tokens
    assert (burned >= -1e-6).all()
    assert (np.diff(out.bad_debt_usd, axis=1) >= 0).all()
    assert (np.diff(out.liquidated.astype(int), axis=1) >= 0).all()  # cumulative flag
    assert out.liquidated[:, -1].mean() > 0.3  # the test exercises liquidations
