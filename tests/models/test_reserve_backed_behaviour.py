"""Behaviour of the reserve-backed token model: full backing in grams, monotonicity (shock size, liquidity,
pool depth), documented non-monotonicities, the failure-case preset, pipeline compatibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import PROJECT_ROOT
from models.scenarios import instant_shock, to_price_paths
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import ReserveBackedTokenSpec, load_token_spec
from models.units import TROY_OUNCE_G

SPECS = PROJECT_ROOT / "specs"
P0 = 4400.0
PRESETS = ["gram", "paxg", "xaut", "dgx"]
H = 60
CAL = pd.date_range("2025-01-06", periods=H + 1)  # calendar days: weekends closed


def preset(name: str) -> ReserveBackedTokenSpec:
    return load_token_spec(SPECS / f"{name}.toml")


def shock_path(size: float, horizon_days: int = H) -> np.ndarray:
    return to_price_paths(P0, instant_shock(size, horizon_days))


def wild_paths(n: int, days: int, seed: int, vol: float = 0.05) -> np.ndarray:
    """Fat-tailed (Student t, 3 df) random walks with big gaps and deep drawdowns."""
    rng = np.random.default_rng(seed)
    return to_price_paths(P0, vol * rng.standard_t(3, size=(n, days)))


def comparable(spec: ReserveBackedTokenSpec) -> ReserveBackedTokenSpec:
    """The preset with the channels that are not monotone by construction switched off, so that
    "never better" is a property of the mechanics, not of rounding or hedges:
    * USD in the reserve (cash, fees into cash, opex) is a hedge: a larger gold fall raises the
      USD backing (see test_usd_cash_makes_backing_rise_with_a_larger_gold_fall);
    * whole-bar rounding returns a sawtooth remainder of the demand to the market;
    * jump arrivals drawn with intensity rising with the drawdown are not pathwise monotone
      under common random numbers (Poisson draws at different intensities);
    * limited arbitrage capital switches the discount floor on and off with the timing of the
      sells (tested on the pool axis instead, where it is the point): capital is unlimited here;
    * the band's pull acts only on open days without a backlog, so a change in the backlog's
      timing switches it on and off under the same noise: the pull is 0 here.
    Everything else (liquidity limits, haircuts, lags, weekends, runs, pool, premium noise)
    stays as in the preset."""
    reserve = [a.model_copy(update=dict(amount=0.0)) if not a.is_gold else a for a in spec.reserve]
    primary = spec.primary.model_copy(
        update=dict(mint_fee=0.0, redeem_fee=0.0, min_redemption_tokens=0.0, redemption_granularity_tokens=0.0)
    )
    premium = dict(spec.secondary.premium or {})
    premium["jump_drawdown_sensitivity"] = 0.0
    premium["band_pull"] = 0.0
    secondary = spec.secondary.model_copy(update=dict(premium=premium, arbitrage_capacity_tokens_per_day=None))
    return spec.model_copy(update=dict(reserve=reserve, primary=primary, secondary=secondary, opex_usd_per_year=0.0))


def losses(o, i: int = 0) -> dict[str, float]:
    """Measures oriented so that larger = worse for holders (path ``i``)."""
    nav = o.nav_usd_per_token[i]
    fire_sale_tokens = (np.diff(o.fire_sale_loss_usd[i], prepend=0.0) / nav).sum()
    # cohorts that had 20 days to be paid; one never paid counts as an infinite wait
    w = o.wait_days()[i, : o.horizon_days - 20]
    wait = np.inf if np.isnan(w).any() else w.max()
    return {
        "redemption demand": o.redemption_demand_tokens[i].sum(),
        "peak backlog share": (o.backlog_tokens[i] / o.supply_tokens[i]).max(),
        "run share": o.run_share[i, -1],
        "deepest discount": -o.premium_frac[i].min(),
        "lowest holder value / NAV": -(o.holder_value_usd_per_token[i] / nav).min(),
        "lowest liquidity coverage": -o.liquidity_coverage[i].min(),
        "fire-sale loss (tokens)": fire_sale_tokens,
        "longest wait": wait,
        "lowest backing": -o.backing_ratio[i].min(),
        "lowest backing in grams": -o.backing_ratio_g[i].min(),
    }


def mean_losses(o) -> dict[str, float]:
    """:func:`losses` averaged over the paths of ``o`` (an infinite wait on one path: inf)."""
    rows = [losses(o, i) for i in range(o.n_paths)]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def assert_never_better(
    outcomes: list,
    keys: list[str] | None = None,
    label: str = "",
    rel_tol: dict[str, float] | None = None,
    measure=losses,
) -> None:
    rows = [measure(o) for o in outcomes]
    for k in keys or list(rows[0]):
        v = np.array([r[k] for r in rows])
        r = (rel_tol or {}).get(k, 1e-9)
        tol = r * np.maximum(1.0 if r <= 1e-9 else 0.0, np.abs(np.where(np.isfinite(v), v, 0.0)))[:-1]
        ok = v[1:] >= v[:-1] - tol  # inf >= inf holds
        assert ok.all(), f"{label}: '{k}' improves at step {np.flatnonzero(~ok)}: {v}"


# --------------------------------------------------------------------------- full backing


@pytest.mark.parametrize("name", PRESETS)
def test_fully_backed_token_without_frictions_stays_fully_backed_in_grams(name: str) -> None:
    """Each preset with zero fees, haircuts, opex and USD, keeping its bar rules, liquidity limits,
    lags, weekends, run behaviour, pool and premium: any gold path leaves exactly 1 token's
    grams behind every token (redemptions in kind take 1 token's grams; sales at NAV without
    haircut take the same grams; mints bring them)."""
    s = preset(name)
    reserve = [
        a.model_copy(update=dict(amount=0.0 if not a.is_gold else a.amount, stressed_haircut=0.0)) for a in s.reserve
    ]
    primary = s.primary.model_copy(update=dict(mint_fee=0.0, redeem_fee=0.0))
    s = s.model_copy(update=dict(reserve=reserve, primary=primary, opex_usd_per_year=0.0))
    prices = np.vstack([wild_paths(60, 150, seed=21), shock_path(-0.6, 150), shock_path(0.5, 150)])
    o = ReserveBackedToken(s).run(prices, calendar=pd.date_range("2025-01-01", periods=151), rng=5)
    assert o.redeemed_tokens.sum() > 0
    np.testing.assert_allclose(o.backing_ratio_g, 1.0, rtol=1e-12)
    np.testing.assert_allclose(o.backing_ratio, 1.0, rtol=1e-12)


# --------------------------------------------------------------------------- monotonicity


FALLS = -np.linspace(0.01, 0.6, 25)  # increasing severity


@pytest.mark.parametrize("name", PRESETS)
def test_larger_gold_fall_is_never_better(name: str) -> None:
    """Same premium draws for every shock size (one path, same seed): a larger instant fall
    never lowers redemption demand, backlog, run share, discount, fire-sale loss or wait, and
    never raises holder value per NAV, liquidity coverage or backing."""
    m = ReserveBackedToken(comparable(preset(name)))
    outs = [m.run(shock_path(float(f)), calendar=CAL, rng=np.random.default_rng(9)) for f in FALLS]
    assert_never_better(outs, label=f"{name} shock")
    last = losses(outs[-1])
    assert last["redemption demand"] > losses(outs[0])["redemption demand"]  # the range is exercised


@pytest.mark.parametrize("name", PRESETS)
def test_lower_liquidity_is_never_better(name: str) -> None:
    """Scaling every asset's daily conversion capacity down never lowers the peak backlog, run
    share or wait and never raises the liquidity coverage (three shock sizes). The deepest
    discount is not in the list: with less liquidity more holders wait in the queue instead of
    selling on the pool, so the pool's sell pressure, and with it the discount the unclipped
    premium shows, can be smaller later in the path."""
    base = comparable(preset(name))
    keys = ["peak backlog share", "run share", "lowest liquidity coverage", "longest wait"]
    for fall in (-0.1, -0.3, -0.6):
        outs = []
        for fac in np.linspace(1.0, 0.05, 10):
            reserve = [a.model_copy(update=dict(liquidity_per_day=a.liquidity_per_day * fac)) for a in base.reserve]
            outs.append(
                ReserveBackedToken(base.model_copy(update=dict(reserve=reserve))).run(
                    shock_path(fall), calendar=CAL, rng=np.random.default_rng(9)
                )
            )
        assert_never_better(outs, keys, label=f"{name} liquidity, fall {fall}")


def test_lower_liquidity_can_raise_backing_within_the_horizon() -> None:
    """Documented non-monotonicity: less liquidity means fewer forced sales within the horizon,
    hence fewer haircuts realised, so the backing (and the fire-sale loss) is not a monotone
    measure of liquidity stress; the backlog is. (The reserve bears the haircuts here: with the
    default the cash redeemers do, and the backing does not move with them.)"""
    base = comparable(preset("gram"))
    base = base.model_copy(update=dict(primary=base.primary.model_copy(update=dict(cash_redemption_haircut="reserve"))))
    res = {}
    for fac in (1.0, 0.1):
        reserve = [a.model_copy(update=dict(liquidity_per_day=a.liquidity_per_day * fac)) for a in base.reserve]
        res[fac] = ReserveBackedToken(base.model_copy(update=dict(reserve=reserve))).run(
            shock_path(-0.4), calendar=CAL, rng=np.random.default_rng(9)
        )
    assert res[0.1].backlog_tokens.max() > res[1.0].backlog_tokens.max()
    assert res[0.1].fire_sale_loss_usd[0, -1] < res[1.0].fire_sale_loss_usd[0, -1]
    assert res[0.1].backing_ratio[0].min() > res[1.0].backing_ratio[0].min()


def stressed(spec: ReserveBackedTokenSpec) -> ReserveBackedTokenSpec:
    """Bar-free preset (bar remainders are a sawtooth in demand), drawdown-independent jumps,
    sale capacity cut to a tenth, half the runners selling on the market and arbitrage capital
    of 0.05 % of supply a day: backlogs form, runs start and tokens reach the pool. Fees and USD
    stay (they only confound comparisons across gold prices, not across pools). Premium-driven
    mints are off: a deeper pool keeps the premium higher, more tokens are minted, and absolute
    redemptions and fire sales grow with the larger supply (a scale effect, not a worse state).
    The band's pull is off: it acts only on days without a backlog, so it switches on and off with
    the backlog's timing (see :func:`comparable`)."""
    primary = spec.primary.model_copy(update=dict(min_redemption_tokens=0.0, redemption_granularity_tokens=0.0))
    premium = dict(spec.secondary.premium or {})
    premium["jump_drawdown_sensitivity"] = 0.0
    premium["band_pull"] = 0.0
    secondary = spec.secondary.model_copy(
        update=dict(premium=premium, arbitrage_capacity_tokens_per_day=5e-4 * spec.supply_tokens)
    )
    reserve = [a.model_copy(update=dict(liquidity_per_day=a.liquidity_per_day * 0.1)) for a in spec.reserve]
    conf = spec.redemption.confidence.model_copy(update=dict(market_sell_share=0.5))
    red = spec.redemption.model_copy(update=dict(confidence=conf, mint_premium_sensitivity=0.0))
    return spec.model_copy(update=dict(primary=primary, secondary=secondary, reserve=reserve, redemption=red))


@pytest.mark.parametrize("name", PRESETS)
def test_thinner_pool_is_never_better(name: str) -> None:
    """Shrinking the AMM pool (reserve or liquidity) raises the price impact of every sale, and
    through the premium the peg redemptions, backlog and runs: no state measure improves, and the
    discount gets strictly deeper once tokens are sold. Two timing effects are allowed for:
    totals in tokens are left out (flows are proportional to the tokens still outstanding, so
    redemptions pulled forward by a deeper discount shrink later flows); and the extremes over
    time (deepest discount, lowest holder value, lowest coverage, peak backlog, longest wait) may
    improve by at most 1 % of themselves, because a thinner pool pulls the run forward and leaves
    fewer runners to sell later, when the floor is deeper (seen in the DGX-like collapse). The
    peak backlog and the lowest coverage may improve by up to half of themselves: the sell
    shocks persist in the unclipped premium, and a slightly thinner of two deep pools moves the
    GRAM-like run under a 10% fall from the second week to the first, where the liquidity is
    larger (30% and 40% better peaks measured). The final run share stays strictly monotone.
    The lowest backing (in USD and in grams) may improve by at most 0.2 % of itself (0.1 %
    measured on the DGX-like preset once the premium is unclipped): the
    fire-sale haircuts realised within the horizon depend on when the gold is sold, and a
    thinner pool that pulls the requests forward into a backlog leaves fewer sales inside the
    horizon (the timing effect of test_lower_liquidity_can_raise_backing_within_the_horizon;
    the redeem fees, which are the issuer's, no longer offset the haircuts). Each measure is the
    mean over 100 premium-noise paths on the same gold path (common random numbers across the
    pools): on one noise path an extreme over time moves with which day's noise sets it (a
    1.9 % shallower deepest discount on one PAXG-like path), not with the mechanics."""
    keys = [
        "peak backlog share",
        "run share",
        "deepest discount",
        "lowest holder value / NAV",
        "lowest liquidity coverage",
        "longest wait",
        "lowest backing",
        "lowest backing in grams",
    ]
    timing = {
        k: 0.01
        for k in (
            "deepest discount",
            "lowest holder value / NAV",
            "longest wait",
        )
    } | {
        "peak backlog share": 0.5,
        "lowest liquidity coverage": 0.5,
        "lowest backing": 2e-3,
        "lowest backing in grams": 2e-3,
    }
    base = stressed(preset(name))
    amm = base.secondary.amm
    assert amm is not None
    field = "reserve_tokens" if amm.kind == "constant_product" else "liquidity"
    deeper = []
    for fall in (-0.1, -0.3, -0.6):
        outs = []
        for fac in np.geomspace(30.0, 0.02, 10):  # from deep enough to absorb a run to 50x thinner
            pool = amm.model_copy(update={field: getattr(amm, field) * fac})
            sec = base.secondary.model_copy(update=dict(amm=pool))
            outs.append(
                ReserveBackedToken(base.model_copy(update=dict(secondary=sec))).run(
                    np.repeat(shock_path(fall), 100, axis=0), calendar=CAL, rng=9
                )
            )
        assert_never_better(outs, keys, label=f"{name} pool, fall {fall}", rel_tol=timing, measure=mean_losses)
        deeper.append(outs[-1].premium_frac.mean() < outs[0].premium_frac.mean() - 1e-4)
    assert any(deeper)  # the channel is exercised


def test_usd_cash_makes_backing_rise_with_a_larger_gold_fall() -> None:
    """Documented non-monotonicity: USD in the reserve of a gold-denominated token is a hedge.
    With no flows, B = (G P + C) / (N g P) rises as the gold price P falls."""
    s = preset("gram")
    s = s.model_copy(
        update=dict(
            redemption=s.redemption.model_copy(
                update=dict(
                    base_rate_per_day=0.0,
                    drawdown_sensitivity=0.0,
                    peg_sensitivity=0.0,
                    base_mint_rate_per_day=0.0,
                    mint_premium_sensitivity=0.0,
                    confidence=s.redemption.confidence.model_copy(update=dict(run_prone_share=0.0)),
                )
            ),
            opex_usd_per_year=0.0,
        )
    )
    o = ReserveBackedToken(s).run(np.vstack([shock_path(-0.1, 5), shock_path(-0.5, 5)]))
    cash = s.reserve[0].amount
    for i, f in enumerate((-0.1, -0.5)):
        p = P0 * (1 + f) / TROY_OUNCE_G
        want = (s.supply_tokens * p + cash) / (s.supply_tokens * p)
        assert o.backing_ratio[i, -1] == pytest.approx(want, rel=1e-12)
    assert o.backing_ratio[1, -1] > o.backing_ratio[0, -1]


# --------------------------------------------------------------------------- presets


def test_failure_case_breaks_where_allocated_tokens_hold() -> None:
    """A 30 % gold fall over 120 calendar days: the DGX-like preset (illiquid, part of the reserve
    at a weak counterparty, opaque) ends with backing below 1, claims unpaid at the horizon and a
    deep discount; the PAXG- and XAUT-like presets pay every claim, their typical deepest
    discount (the median over 2,000 paths; premium noise and stress jumps, no clamp) stays within 5% (within 8% when the
    reserve bears the haircuts: the PAXG-like median is 5.4-5.5% on 2,000 paths, in the
    reference engine too), and their reserve's
    surplus over the liabilities is the day-0 cash less the fire-sale haircuts the reserve bears
    (the fees are the issuer's; redemptions and mints at NAV leave the surplus unchanged). With
    the default, cash redeemers are paid the sale proceeds: the reserve bears no haircut and both
    keep their backing. With ``cash_redemption_haircut = "reserve"`` it pays NAV and bears them:
    about half the supply is redeemed, PAXG's 2 m USD covers its haircuts, XAUT's 1 m USD does
    not, so XAUT's backing ends a hair (under 0.1%) below 1."""
    h = 120
    prices = np.repeat(shock_path(-0.3, h), 20, axis=0)
    cal = pd.date_range("2025-01-06", periods=h + 1)

    def with_haircut_on(spec: ReserveBackedTokenSpec, who: str) -> ReserveBackedTokenSpec:
        return spec.model_copy(update=dict(primary=spec.primary.model_copy(update=dict(cash_redemption_haircut=who))))

    out = {n: ReserveBackedToken(preset(n)).run(prices, calendar=cal, rng=3) for n in ("paxg", "xaut", "dgx")}
    dgx = out["dgx"]
    assert (dgx.backing_ratio.min(axis=1) < 1.0).all() and dgx.breached().all()
    assert (dgx.backlog_tokens[:, -1] > 0).all()
    assert np.median(dgx.premium_frac.min(axis=1)) < -0.05
    reserve_pays = {
        n: ReserveBackedToken(with_haircut_on(preset(n), "reserve")).run(prices, calendar=cal, rng=3)
        for n in ("paxg", "xaut")
    }
    for n in ("paxg", "xaut"):
        cash0 = preset(n).reserve[0].amount
        for o in (out[n], reserve_pays[n]):
            liabilities = o.supply_tokens * o.nav_usd_per_token
            np.testing.assert_allclose(
                o.reserve_value_usd - liabilities, cash0 - o.fire_sale_loss_usd, rtol=0, atol=1e-9 * liabilities.max()
            )
            np.testing.assert_array_equal(o.breached(), o.fire_sale_loss_usd[:, -1] > cash0 * (1 + 1e-6))
            assert (o.backlog_tokens[:, -1] == 0).all()
        assert not out[n].fire_sale_loss_usd.any() and not out[n].breached().any()
        # the typical deepest discount, on 2,000 paths: a median of 20 paths' deepest discounts
        # falls below -5% for about 5% of seeds (the sampling noise of one premium path's minimum)
        wide = np.repeat(prices[:1], 2000, axis=0)
        for spec, bound in ((preset(n), -0.05), (with_haircut_on(preset(n), "reserve"), -0.08)):
            o = ReserveBackedToken(spec).run(wide, calendar=cal, rng=3)
            assert np.median(o.premium_frac.min(axis=1)) > bound, (n, spec.primary.cash_redemption_haircut)
    assert not reserve_pays["paxg"].breached().any() and reserve_pays["xaut"].breached().all()
    assert reserve_pays["xaut"].backing_ratio.min() > 1.0 - 1e-3


def test_outcome_feeds_the_pipeline_summary() -> None:
    """models.metrics.summarise_paths (the pipeline's per-path table) works on a reserve-backed
    outcome and gives the columns it gives for a CDP outcome."""
    from models.metrics import summarise_paths
    from models.token.cdp import CdpStablecoin
    from tests.models.token_specs import GRAM_SIMPLE, simple_reserve_backed

    prices = wild_paths(30, 40, seed=2, vol=0.02)
    full = summarise_paths(ReserveBackedToken(preset("gram")).run(prices, rng=1), prices, (1, 10, 30))
    cdp = summarise_paths(
        CdpStablecoin(load_token_spec(PROJECT_ROOT / "specs" / "gusd_cdp.toml")).run(prices), prices, (1, 10, 30)
    )
    assert list(full.columns) == list(cdp.columns) and len(full) == 30
    # finite, except the recovery time of a path still depegged at the horizon (NaN by definition)
    recovery = full["depeg_recovery_days_1pct"]
    assert (recovery.isna() | (recovery >= 0)).all()
    num = full.select_dtypes("number").drop(columns="depeg_recovery_days_1pct")
    assert np.isfinite(num.to_numpy()).all()
    # same gold, same issuer without market frictions: holder losses differ only by the premium
    # and the fees
    simple = summarise_paths(ReserveBackedToken(simple_reserve_backed(**GRAM_SIMPLE)).run(prices), prices, (1, 10, 30))
    assert (full["holder_loss_frac_end"] - simple["holder_loss_frac_end"]).abs().max() < 0.02
