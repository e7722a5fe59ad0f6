"""Reserve-backed token model vs closed forms, scipy and brute-force loops written independently of
the model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from goldstress.settings import PROJECT_ROOT
from models.token.outcome import ReserveBackedOutcome
from models.token.reserve_backed import (
    ReserveBackedToken,
    laplacian_threshold,
    market_open_days,
    run_share,
    whole_bar_split,
)
from models.token.spec import (
    CdpStablecoinSpec,
    ReserveBackedTokenSpec,
    load_token_spec,
    parse_token_spec,
    with_redemption_share,
)
from models.units import TROY_OUNCE_G

SPECS = PROJECT_ROOT / "specs"
P0 = 4400.0
PRESETS = ["gram", "paxg", "xaut", "dgx"]


def spec(**over: Any):
    """A small gold-only token; nested sections are merged with ``over``."""
    base: dict[str, Any] = dict(
        spec_version=2,
        kind="gold_backed",
        name="T",
        symbol="T",
        grams_per_token=1.0,
        supply_tokens=100_000.0,
        opex_usd_per_year=0.0,
        attestation_lag_days=0,
        reserve=[
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=1.0, stressed_haircut=0.0),
        ],
        primary=dict(mint_fee=0.0, redeem_fee=0.0, market_hours="always"),
        secondary=dict(wait_cost_per_day=None),
        redemption=dict(base_rate_per_day=0.0),
    )
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return parse_token_spec(base)


def flat(n_days: int, n_paths: int = 1, price: float = P0) -> np.ndarray:
    return np.full((n_paths, n_days + 1), price)


def wild_paths(n: int, days: int, seed: int, vol: float = 0.03) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = vol * rng.standard_t(3, size=(n, days))
    return P0 * np.exp(np.c_[np.zeros(n), np.cumsum(r, axis=1)])


# --------------------------------------------------------------------------- spec loading


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_are_fully_gold_backed(name: str) -> None:
    s = load_token_spec(SPECS / f"{name}.toml")
    assert s.symbol == name.upper()
    assert s.initial_gold_coverage == pytest.approx(1.0, rel=1e-12)


def test_presets_encode_the_documented_bar_rules() -> None:
    xaut = load_token_spec(SPECS / "xaut.toml").primary
    paxg = load_token_spec(SPECS / "paxg.toml").primary
    # Tether Gold whitepaper: whole bars, 430-token requests; PAXG: 430-token bar minimum, London hours
    assert (xaut.min_redemption_tokens, xaut.redemption_granularity_tokens, xaut.granularity_applies_to) == (
        430,
        430,
        "all",
    )
    assert (paxg.min_redemption_tokens, paxg.granularity_applies_to, paxg.market_hours) == (430, "gold", "london_hours")
    assert load_token_spec(SPECS / "paxg.toml").grams_per_token == TROY_OUNCE_G


def test_one_loader_reads_both_kinds_and_refuses_the_retired_v1_gold_token(tmp_path: Path) -> None:
    assert isinstance(load_token_spec(SPECS / "xaut.toml"), ReserveBackedTokenSpec)
    gusd = load_token_spec(PROJECT_ROOT / "specs" / "gusd_cdp.toml")
    assert isinstance(gusd, CdpStablecoinSpec) and gusd.spec_version == 2
    v1 = tmp_path / "old_gram.toml"
    v1.write_text('spec_version = 1\nkind = "gold_backed"\nname = "G"\nsymbol = "G"\ngrams_per_token = 1.0\n')
    with pytest.raises(ValueError) as exc:
        load_token_spec(v1)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(v1))
    assert "retired" in msg and 'kind = "gold_backed" with spec_version = 2' in msg and "specs/gram.toml" in msg
    cdp_v1 = _write(
        tmp_path, (PROJECT_ROOT / "specs" / "gusd_cdp.toml").read_text().replace("spec_version = 2", "spec_version = 1")
    )
    with pytest.raises(ValueError, match=r"field 'spec_version' = 1 is not supported \(this code reads version 2\)"):
        load_token_spec(cdp_v1)
    with pytest.raises(ValueError, match=r"where: expected a mapping"):
        parse_token_spec([1], where="where")  # type: ignore[arg-type]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (("stressed_haircut = 0.005", "stressed_haircut = 1.5"), r"field 'reserve\[1\]\.stressed_haircut'"),
        (
            ("liquidity_per_day = 0.05", "liquidity_per_day = 2.0"),
            r"field 'reserve\[1\]'.*liquidity_per_day=2.0 must be <= 1",
        ),
        (("cutoff_share = 1.0", "cutoff_share = 1.0\nbogus = 3"), r"field 'primary\.bogus': unknown field"),
        (('market_hours = "weekdays_only"', 'market_hours = "nights"'), r"field 'primary\.market_hours'"),
        (("phi = 0.7,", "phi = 0.7, wobble = 1.0,"), r"field 'secondary'.*unknown field\(s\) \['wobble'\]"),
        (("phi = 0.7,", "phi = 1.5,"), r"field 'secondary'.*phi"),
        (('kind = "allocated_gold"', 'kind = "tbills"'), r"reserve: needs at least one asset of kind 'allocated_gold'"),
        (("supply_tokens = 10_000_000.0", ""), r"field 'supply_tokens': Field required"),
    ],
)
def test_loader_errors_name_file_and_field(tmp_path: Path, edit: tuple[str, str], pattern: str) -> None:
    text = (SPECS / "gram.toml").read_text()
    assert edit[0] in text
    p = _write(tmp_path, text.replace(edit[0], edit[1], 1))
    with pytest.raises(ValueError, match=pattern) as exc:
        load_token_spec(p)
    assert str(exc.value).startswith(str(p))


def test_loader_rejects_bad_toml_and_missing_version(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not valid TOML"):
        load_token_spec(_write(tmp_path, "spec_version = = 2"))
    with pytest.raises(ValueError, match="field 'spec_version' is missing"):
        load_token_spec(_write(tmp_path, 'kind = "gold_backed"'))
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_token_spec(tmp_path / "nope.toml")


# --------------------------------------------------------------------------- closed-form pieces


def test_run_share_is_the_normal_cdf() -> None:
    theta = np.linspace(-0.2, 0.2, 41)
    got = run_share(theta, 0.01, 0.03)
    np.testing.assert_allclose(got, stats.norm.cdf((0.01 - theta) / 0.03), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="sigma"):
        run_share(0.0, 0.0, 0.0)


@pytest.mark.parametrize(("lam", "c", "sigma"), [(0.0, 0.0025, 0.01), (0.06, 0.01, 0.02), (0.3, 0.0, 0.05)])
def test_laplacian_threshold_makes_the_marginal_holder_indifferent(lam: float, c: float, sigma: float) -> None:
    """Independent check of theta* = lambda / 2 - c: with a diffuse prior the holder who sees
    x* = theta* has posterior theta ~ N(x*, sigma^2); everyone with a signal below x* runs, so
    l(theta) = Phi((x* - theta) / sigma). Staying minus redeeming, E[theta - lambda l(theta)] + c,
    integrated numerically, must be 0 at the threshold and change sign around it."""

    def gain(x: float) -> float:
        f = lambda th: (th - lam * stats.norm.cdf((x - th) / sigma) + c) * stats.norm.pdf(th, x, sigma)  # noqa: E731
        return integrate.quad(f, x - 12 * sigma, x + 12 * sigma, epsabs=1e-13)[0]

    ts = laplacian_threshold(lam, c)
    assert ts == pytest.approx(lam / 2 - c)
    assert abs(gain(ts)) < 1e-10
    assert gain(ts - 0.01) < 0 < gain(ts + 0.01)


def test_whole_bar_split_matches_a_brute_force_count() -> None:
    acc, ret = whole_bar_split(np.array([1000.0, 430.0, 429.0, 0.0, 860.0, 1289.9]), 430.0, 430.0)
    np.testing.assert_array_equal(acc, [860, 430, 0, 0, 860, 860])
    np.testing.assert_allclose(ret, [140, 0, 429, 0, 0, 429.9])
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 5000, 500)
    for g, m in ((430.0, 430.0), (100.0, 250.0), (0.0, 50.0)):
        acc, ret = whole_bar_split(d, g, m)
        for x, a in zip(d, acc):
            bars = 0
            while g > 0 and (bars + 1) * g <= x:  # count whole bars one by one
                bars += 1
            want = bars * g if g > 0 else x
            assert a == pytest.approx(want if want >= m else 0.0)
        np.testing.assert_allclose(acc + ret, d)
    with pytest.raises(ValueError, match="demand_tokens"):
        whole_bar_split(np.array([-1.0]), 430.0)


def test_market_open_days() -> None:
    cal = pd.date_range("2025-01-03", periods=10)  # Friday .. Sunday next week
    np.testing.assert_array_equal(market_open_days(cal, "weekdays_only", 10), cal.day_of_week < 5)
    assert not market_open_days(cal, "london_hours", 10)[[1, 2, 8, 9]].any()
    assert market_open_days(cal, "always", 10).all()
    assert market_open_days(pd.bdate_range("2025-01-03", periods=10), "weekdays_only", 10).all()
    assert market_open_days(None, "weekdays_only", 4).all()
    with pytest.raises(ValueError, match="calendar: expected 11 dates"):
        market_open_days(cal, "weekdays_only", 11)
    with pytest.raises(ValueError, match="strictly increasing"):
        market_open_days(cal[::-1], "weekdays_only", 10)
    with pytest.raises(ValueError, match="DatetimeIndex"):
        market_open_days(list(cal), "weekdays_only", 10)  # type: ignore[arg-type]


def test_run_rejects_bad_input() -> None:
    m = ReserveBackedToken(spec())
    with pytest.raises(ValueError, match="gold_usd_per_oz"):
        m.run(np.array([P0, P0]))
    with pytest.raises(ValueError, match="gold_usd_per_oz"):
        m.run(np.array([[P0, -1.0]]))
    with pytest.raises(ValueError, match="calendar"):
        m.run(flat(3), calendar=pd.date_range("2025-01-01", periods=3))
    with pytest.raises(ValueError, match="spec"):
        ReserveBackedToken(load_token_spec(PROJECT_ROOT / "specs" / "gusd_cdp.toml"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- whole bars


def test_xaut_whole_bars_request_of_1000_redeems_860_and_returns_140() -> None:
    """One day, demand 1% of 100,000 = 1000 tokens, bars of 430 (minimum 430): 860 accepted and
    paid (2 bars), 140 returned to the holders, who sell them on the market."""
    s = spec(
        grams_per_token=TROY_OUNCE_G,
        reserve=[
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(
                name="bars",
                kind="allocated_gold",
                amount=100_000.0 * TROY_OUNCE_G,
                liquidity_per_day=1.0,
                stressed_haircut=0.0,
            ),
        ],
        primary=dict(min_redemption_tokens=430.0, redemption_granularity_tokens=430.0, cash_redemption_share=0.5),
        redemption=dict(base_rate_per_day=0.01),
    )
    o = ReserveBackedToken(s).run(flat(1))
    assert o.redemption_demand_tokens[0, 1] == pytest.approx(1000.0)
    assert o.accepted_tokens[0, 1] == pytest.approx(860.0)
    assert o.returned_tokens[0, 1] == pytest.approx(140.0)
    assert o.market_sell_tokens[0, 1] == pytest.approx(140.0)
    # half in gold, rounded to whole bars: one bar delivered, one bar sold for USD
    assert o.redeemed_gold_tokens[0, 1] == pytest.approx(430.0)
    assert o.redeemed_cash_tokens[0, 1] == pytest.approx(430.0)
    assert o.supply_tokens[0, 1] == pytest.approx(100_000.0 - 860.0)
    # a request below one bar is returned entirely
    small = ReserveBackedToken(
        s.model_copy(update=dict(redemption=s.redemption.model_copy(update=dict(base_rate_per_day=0.004))))
    ).run(flat(1))
    assert small.accepted_tokens[0, 1] == 0.0 and small.returned_tokens[0, 1] == pytest.approx(400.0)


def test_paxg_style_bars_apply_to_gold_only_and_the_remainder_is_paid_in_usd() -> None:
    s = spec(
        primary=dict(
            min_redemption_tokens=430.0,
            redemption_granularity_tokens=430.0,
            granularity_applies_to="gold",
            cash_redemption_share=0.1,
        ),
        redemption=dict(base_rate_per_day=0.01),
    )
    o = ReserveBackedToken(s).run(flat(1))
    # gold part 0.9 * 1000 = 900 -> 2 bars = 860; the other 140 tokens are redeemed in USD
    assert o.redeemed_gold_tokens[0, 1] == pytest.approx(860.0)
    assert o.redeemed_cash_tokens[0, 1] == pytest.approx(140.0)
    assert o.returned_tokens[0, 1] == 0.0


# --------------------------------------------------------------------------- identities


@pytest.mark.parametrize("name", PRESETS)
def test_queue_identity_and_conservation_on_presets(name: str) -> None:
    s = load_token_spec(SPECS / f"{name}.toml")
    prices = wild_paths(40, 90, seed=3)
    o = ReserveBackedToken(s).run(
        prices, calendar=pd.date_range("2025-01-01", periods=91), rng=np.random.default_rng(1)
    )
    assert isinstance(o, ReserveBackedOutcome) and o.liquidity_coverage.shape == prices.shape
    # demand = accepted + returned; queue change = accepted - redeemed (queue incl. pipeline)
    np.testing.assert_allclose(o.redemption_demand_tokens, o.accepted_tokens + o.returned_tokens, atol=1e-6)
    dq = np.diff(o.queue_tokens, axis=1)
    np.testing.assert_allclose(dq, (o.accepted_tokens - o.redeemed_tokens)[:, 1:], atol=1e-6 * s.supply_tokens * 1e-3)
    # supply moves only by mints and redemptions
    ds = np.diff(o.supply_tokens, axis=1)
    np.testing.assert_allclose(ds, (o.minted_tokens - o.redeemed_tokens)[:, 1:], atol=1e-6)
    # gold and cash conservation
    np.testing.assert_allclose(
        o.gold_reserve_g - o.gold_reserve_g[:, :1], o.gold_in_g - o.gold_out_g, atol=1e-6 * s.supply_tokens
    )
    np.testing.assert_allclose(o.cash_usd - o.cash_usd[:, :1], o.cash_in_usd - o.cash_out_usd, atol=1e-3)
    # mints deliver grams_per_token grams each; gold leaves at least for the gold redeemed in kind
    np.testing.assert_allclose(
        o.gold_in_g, s.grams_per_token * np.cumsum(o.minted_tokens, axis=1), rtol=1e-12, atol=1e-9
    )
    assert (o.gold_out_g >= s.grams_per_token * np.cumsum(o.redeemed_gold_tokens, axis=1) * (1 - 1e-12) - 1e-9).all()
    assert (o.asset_amounts >= 0).all() and (o.queue_tokens >= -1e-9).all()
    assert (o.backlog_tokens <= o.queue_tokens + 1e-9).all()


@pytest.mark.parametrize("fees_to_reserve", [False, True])
def test_gold_out_equals_delivered_plus_sold_with_a_hand_ledger(fees_to_reserve: bool) -> None:
    """Gold-only reserve, haircut h, cash share 1/2: grams out = delivered (1 g per gold-redeemed
    token) + sold for the USD payouts (NAV per token, of which NAV f is the issuer's fee, or NAV
    (1 - f) when the fees stay in the reserve, at P (1 - h) per gram); and the USD fire-sale loss
    is the haircut on the grams sold. Flat price, no mints; bars are listed before cash, so the
    redeem fees paid into cash (fees to the reserve) stay there."""
    h, f = 0.02, 0.003
    s = spec(
        reserve=[  # bars first in the liquidation order: the fee cash is never spent
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=0.5, stressed_haircut=h),
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
        ],
        primary=dict(
            redeem_fee=f, cash_redemption_share=0.5, fees_to_reserve=fees_to_reserve, cash_redemption_haircut="reserve"
        ),
        redemption=dict(base_rate_per_day=0.01),
    )
    o = ReserveBackedToken(s).run(flat(30))
    pg = P0 / TROY_OUNCE_G
    cash_tokens = np.cumsum(o.redeemed_cash_tokens, axis=1)
    sold = cash_tokens * ((1 - f) if fees_to_reserve else 1.0) / (1 - h)
    delivered = np.cumsum(o.redeemed_gold_tokens, axis=1)
    np.testing.assert_allclose(o.gold_out_g, delivered + sold, rtol=1e-10)
    np.testing.assert_allclose(o.fire_sale_loss_usd, sold * pg * h, rtol=1e-10)
    fees = f * pg * (delivered + cash_tokens)  # every redeem fee, USD
    if fees_to_reserve:  # redeem fees of gold redemptions are paid into cash
        np.testing.assert_allclose(o.cash_usd[:, -1], f * pg * delivered[:, -1], rtol=1e-10)
        np.testing.assert_allclose(o.reserve_fee_income_usd, fees, rtol=1e-10)
        assert not o.issuer_fee_revenue_usd.any()
    else:  # the issuer's revenue: nothing enters the reserve
        np.testing.assert_allclose(o.cash_usd[:, -1], 0.0, atol=1e-9)
        np.testing.assert_allclose(o.issuer_fee_revenue_usd, fees, rtol=1e-10)
        assert not o.reserve_fee_income_usd.any()


# --------------------------------------------------------------------------- full backing


def test_fully_backed_token_without_frictions_stays_backed_one_gram_per_token() -> None:
    """Zero fees, haircuts and opex, gold-only reserve: whatever the gold path, runs, queues,
    weekends, cash or gold redemptions and mints, every token keeps exactly 1 g behind it."""
    s = spec(
        primary=dict(cash_redemption_share=0.5, settlement_lag_days=1, market_hours="weekdays_only"),
        reserve=[
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=0.03, stressed_haircut=0.0),
        ],
        secondary=dict(
            premium=dict(mean=0.0, phi=0.5, sigma=0.01), amm=dict(kind="constant_product", reserve_tokens=500.0)
        ),
        redemption=dict(
            base_rate_per_day=0.002,
            drawdown_sensitivity=0.1,
            peg_sensitivity=1.0,
            base_mint_rate_per_day=0.001,
            mint_premium_sensitivity=1.0,
            confidence=dict(run_prone_share=0.5, signal_noise_sd=0.001, queue_weight=5.0, market_sell_share=0.3),
        ),
    )
    prices = wild_paths(200, 120, seed=7, vol=0.05)
    o = ReserveBackedToken(s).run(prices, calendar=pd.date_range("2025-01-01", periods=121), rng=2)
    assert o.redeemed_cash_tokens.sum() > 0 and o.redeemed_gold_tokens.sum() > 0 and o.minted_tokens.sum() > 0
    assert o.backlog_tokens.max() > 0  # the stress is real: claims waited for liquidity
    np.testing.assert_allclose(o.backing_ratio_g, 1.0, rtol=1e-12)
    np.testing.assert_allclose(o.backing_ratio, 1.0, rtol=1e-12)
    assert (o.bad_debt_usd <= 1e-9 * o.reserve_value_usd).all()


# --------------------------------------------------------------------------- global game


def test_run_demand_matches_the_global_game_share_computed_with_scipy() -> None:
    """A token backed by USD cash only: gold +10 % on day 1 leaves backing 1/1.1. Day 1 sees the
    day-0 attestation (no run); day 2 sees B_1 - 1, lambda = 0 (cash has no haircut), so
    theta* = -c and the run-prone mass M redeems (Phi((theta* - theta)/sigma) - R_0) M. Day 3
    repeats with the backing after the day-2 run paid at par (sequential service)."""
    sigma, mass_share, c = 0.05, 0.5, 0.001
    s0, nav0 = 100_000.0, P0 / TROY_OUNCE_G
    s = spec(
        reserve=[
            dict(name="cash", kind="usd_cash", amount=s0 * nav0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
        ],
        primary=dict(redeem_fee=c, cash_redemption_share=1.0),
        redemption=dict(
            base_rate_per_day=0.0, confidence=dict(run_prone_share=mass_share, signal_noise_sd=sigma, queue_weight=0.0)
        ),
    )
    prices = np.array([[P0, 1.1 * P0, 1.1 * P0, 1.1 * P0]])
    o = ReserveBackedToken(s).run(prices)
    mass = mass_share * s0
    r0 = stats.norm.cdf((-c - 0.0) / sigma)
    assert o.run_share[0, 0] == pytest.approx(r0)
    assert o.redemption_demand_tokens[0, 1] == pytest.approx(0.0, abs=1e-9)
    b1 = 1.0 / 1.1
    assert o.backing_ratio[0, 1] == pytest.approx(b1, rel=1e-12)
    r2 = stats.norm.cdf((-c - (b1 - 1.0)) / sigma)
    d2 = (r2 - r0) * mass
    assert o.theta[0, 2] == pytest.approx(b1 - 1.0) and o.theta_star[0, 2] == pytest.approx(-c)
    assert o.redemption_demand_tokens[0, 2] == pytest.approx(d2, rel=1e-10)
    # day 2: the run is paid in USD at NAV from the reserve (NAV (1 - c) to the holders, the fee
    # to the issuer); the stayers' backing falls
    nav = 1.1 * nav0
    cash2 = s0 * nav0 - d2 * nav
    b2 = cash2 / ((s0 - d2) * nav)
    assert o.backing_ratio[0, 2] == pytest.approx(b2, rel=1e-10)
    r3 = max(r2, stats.norm.cdf((-c - (b2 - 1.0)) / sigma))
    assert o.redemption_demand_tokens[0, 3] == pytest.approx((r3 - r2) * mass, rel=1e-9)


def test_backlog_and_attestation_lag_enter_the_fundamental() -> None:
    """theta_t = B_{t-1-lag} - 1 - queue_weight * backlog_{t-1} / supply_{t-1}, checked against
    the outcome's own state arrays on an illiquid token with a queue."""
    s = spec(
        attestation_lag_days=3,
        reserve=[
            dict(name="cash", kind="usd_cash", amount=1e6, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=0.002, stressed_haircut=0.05),
        ],
        opex_usd_per_year=5e6,
        primary=dict(cash_redemption_share=1.0, redeem_fee=0.002),
        redemption=dict(
            base_rate_per_day=0.003, confidence=dict(run_prone_share=0.3, signal_noise_sd=0.01, queue_weight=2.0)
        ),
    )
    o = ReserveBackedToken(s).run(wild_paths(5, 40, seed=11))
    t = np.arange(1, 41)
    j = np.maximum(0, t - 1 - 3)
    want = o.backing_ratio[:, j] - 1.0 - 2.0 * o.backlog_tokens[:, t - 1] / o.supply_tokens[:, t - 1]
    np.testing.assert_allclose(o.theta[:, 1:], want, rtol=1e-12, atol=1e-15)
    assert o.backlog_tokens.max() > 0
    np.testing.assert_allclose(o.theta_star[:, 1:], o.run_externality[:, j] / 2.0 - 0.002, rtol=1e-12)


# --------------------------------------------------------------------------- weekends


def test_weekends_have_no_mints_or_redemptions_and_requests_queue_to_monday() -> None:
    s = spec(
        primary=dict(market_hours="weekdays_only", cash_redemption_share=0.5),
        reserve=[
            dict(name="cash", kind="usd_cash", amount=1e7, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=1.0, stressed_haircut=0.0),
        ],
        redemption=dict(base_rate_per_day=0.001, base_mint_rate_per_day=0.002),
    )
    cal = pd.date_range("2025-01-03", periods=11)  # Fri, Sat, Sun, Mon, ..., Sun, Mon
    o = ReserveBackedToken(s).run(flat(10), calendar=cal)
    weekend = np.asarray(cal.day_of_week >= 5)
    assert weekend.sum() == 4
    assert (o.redeemed_tokens[0, weekend] == 0).all() and (o.minted_tokens[0, weekend] == 0).all()
    assert (o.redemption_demand_tokens[0, weekend] > 0).all()  # requests still arrive
    # Monday pays Saturday's, Sunday's and Monday's requests (lag 0, ample liquidity)
    mon = 3
    np.testing.assert_allclose(o.redeemed_tokens[0, mon], o.accepted_tokens[0, 1:4].sum(), rtol=1e-12)
    np.testing.assert_allclose(o.queue_tokens[0, 2], o.accepted_tokens[0, 1:3].sum(), rtol=1e-12)
    assert o.queue_tokens[0, mon] == pytest.approx(0.0, abs=1e-9)
    # weekday requests are paid the same day
    wd = np.flatnonzero(~weekend[1:]) + 1
    wd = wd[wd != mon]
    wd = wd[wd != 10]  # next Monday pays the weekend too
    np.testing.assert_allclose(o.redeemed_tokens[0, wd], o.accepted_tokens[0, wd], rtol=1e-12)
    # trading-day calendar: every day open
    ob = ReserveBackedToken(s).run(flat(10), calendar=pd.bdate_range("2025-01-03", periods=11))
    assert (ob.redeemed_tokens[0, 1:] > 0).all()


def test_settlement_lag_and_cutoff_count_open_days() -> None:
    """Lag 1 open day and 87.5 % of requests before the cut-off: Friday's early requests are paid
    on Monday, its late ones on Tuesday; weekend requests count from Monday (paid Tuesday/Wed)."""
    cut = 0.875
    s = spec(
        primary=dict(market_hours="london_hours", settlement_lag_days=1, cutoff_share=cut, cash_redemption_share=1.0),
        reserve=[
            dict(name="cash", kind="usd_cash", amount=1e8, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=1.0, stressed_haircut=0.0),
        ],
        redemption=dict(base_rate_per_day=0.001),
    )
    cal = pd.date_range("2025-01-03", periods=8)  # Fri Sat Sun Mon Tue Wed Thu Fri
    o = ReserveBackedToken(s).run(flat(7), calendar=cal)
    a = o.accepted_tokens[0]
    # brute force: each request becomes eligible after `lag` (or lag + 1) open days
    is_open = np.asarray(cal.day_of_week < 5)
    paid = np.zeros(8)
    for day in range(1, 8):
        for share, extra in ((cut, 0), (1 - cut, 1)):
            need = 1 + extra  # open days to wait after the request day (lag 1)
            d = day
            # a request on a closed day starts counting at the next open day
            k = 0 if is_open[day] else -1
            while k < need:
                d += 1
                if d >= 8:
                    break
                if is_open[d]:
                    k += 1
            if d < 8:
                paid[d] += share * a[day]
    np.testing.assert_allclose(o.redeemed_tokens[0], paid, rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------------------- liquidity


def test_days_to_meet_a_wave_and_coverage_match_the_geometric_run_down() -> None:
    """A one-day wave W paid in USD from gold sold at most l of the holding per day at haircut h:
    after d days at most A (1 - (1 - l)^d) grams are sold, W needs G = W / (1 - h) grams (NAV per
    token from the reserve: NAV (1 - f) to the holder, NAV f to the issuer), so the wave takes
    d* = ceil(log(1 - G/A) / log(1 - l)) days (paid on days 1..d*). Day-1 coverage is
    l A P (1 - h) / (W NAV). The price dips on day 1 only (drawdown 0.5)."""
    a_g, liq, h, f, sens = 100_000.0, 0.1, 0.01, 0.002, 0.4
    s = spec(
        reserve=[
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=a_g, liquidity_per_day=liq, stressed_haircut=h),
        ],
        primary=dict(redeem_fee=f, cash_redemption_share=1.0, cash_redemption_haircut="reserve"),
        redemption=dict(base_rate_per_day=0.0, drawdown_sensitivity=sens),
    )
    prices = np.r_[P0, 0.5 * P0, np.full(30, P0)][None, :]
    o = ReserveBackedToken(s).run(prices)
    w = sens * 0.5 * 100_000.0
    assert o.redemption_demand_tokens[0, 1] == pytest.approx(w)
    g_need = w / (1 - h)
    d_star = math.ceil(math.log(1 - g_need / a_g) / math.log(1 - liq))
    assert o.wait_days()[0, 1] == d_star - 1
    assert o.redeemed_tokens[0, 1:].sum() == pytest.approx(w)
    assert o.redeemed_tokens[0, d_star] > 0 and o.redeemed_tokens[0, d_star + 1 :].sum() == 0
    pg1 = 0.5 * P0 / TROY_OUNCE_G
    assert o.liquidity_coverage[0, 1] == pytest.approx(liq * a_g * pg1 * (1 - h) / (w * pg1), rel=1e-12)
    assert o.liquidity_coverage[0, d_star + 1] == np.inf  # nothing waiting
    # brute-force ledger of the USD fire-sale loss, day by day, at each day's price
    hold, left, loss = a_g, g_need, 0.0
    for t in range(1, d_star + 1):
        sold = min(liq * hold, left)
        loss += sold * prices[0, t] / TROY_OUNCE_G * h
        hold -= sold
        left -= sold
    assert o.fire_sale_loss_usd[0, -1] == pytest.approx(loss, rel=1e-10)
    assert o.asset_amounts[1, 0, -1] == pytest.approx(a_g - g_need, rel=1e-10)


def test_gold_redemptions_draw_allocated_gold_without_using_sale_capacity() -> None:
    """In-kind redemptions take allocated bars directly (no haircut, no daily limit); cash
    redemptions are limited by the sale capacity. Zero sale capacity: gold claims are paid at
    once, cash claims wait."""
    s = spec(
        reserve=[
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=0.0, stressed_haircut=0.3),
        ],
        primary=dict(cash_redemption_share=0.25),
        redemption=dict(base_rate_per_day=0.01),
    )
    o = ReserveBackedToken(s).run(flat(5))
    np.testing.assert_allclose(o.redeemed_gold_tokens[0, 1:], o.accepted_gold_tokens[0, 1:])
    assert o.redeemed_cash_tokens.sum() == 0 and o.fire_sale_loss_usd[0, -1] == 0
    np.testing.assert_allclose(o.backlog_tokens[0, 1:], np.cumsum(o.accepted_cash_tokens[0, 1:]))
    assert (o.liquidity_coverage[0, 1:] == 0).all()


def test_unallocated_gold_is_allocated_within_capacity_at_its_haircut() -> None:
    h = 0.1
    s = spec(
        reserve=[
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=1_000.0, liquidity_per_day=0.0, stressed_haircut=0.0),
            dict(name="pool", kind="unallocated_gold", amount=99_000.0, liquidity_per_day=0.01, stressed_haircut=h),
        ],
        redemption=dict(base_rate_per_day=0.02),
    )
    o = ReserveBackedToken(s).run(flat(1))
    # day 1: 2000 tokens asked; 1000 g allocated + 0.01 * 99,000 * 0.9 = 891 g from unallocated
    assert o.redeemed_gold_tokens[0, 1] == pytest.approx(1000.0 + 891.0)
    assert o.gold_out_g[0, 1] == pytest.approx(1000.0 + 990.0)
    assert o.fire_sale_loss_usd[0, 1] == pytest.approx(99.0 * P0 / TROY_OUNCE_G)


def test_opex_is_paid_from_cash_then_gold_and_accrues_over_weekends() -> None:
    s = spec(
        opex_usd_per_year=365.25e3,
        reserve=[
            dict(name="cash", kind="usd_cash", amount=2_500.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=1.0, stressed_haircut=0.0),
        ],
        primary=dict(market_hours="weekdays_only"),
    )
    cal = pd.date_range("2025-01-03", periods=5)  # Fri Sat Sun Mon Tue
    o = ReserveBackedToken(s).run(flat(4), calendar=cal)
    # 1,000 USD a calendar day; Sat/Sun accrue, Monday pays 3,000: 2,500 cash + 500 of gold
    np.testing.assert_allclose(o.opex_payable_usd[0], [0, 1000, 2000, 0, 0], atol=1e-9)
    assert o.cash_usd[0, 3] == pytest.approx(0.0, abs=1e-9)
    assert o.gold_out_g[0, 3] == pytest.approx(500.0 / (P0 / TROY_OUNCE_G))
    assert o.reserve_value_usd[0, 2] == pytest.approx(2_500.0 + 100_000.0 * P0 / TROY_OUNCE_G - 2_000.0)


# --------------------------------------------------------------------------- secondary market


def test_market_sells_move_the_premium_by_the_constant_product_closed_form() -> None:
    """No premium process: p = pool price after the day's sells - 1. Pool x = y = R at the fair
    price 1; a sale S pays fee phi on the input, a = S (1 - phi): p' = y x / ((x + a)(x + S))."""
    r_pool, fee = 5_000.0, 0.003
    s = spec(
        reserve=[
            dict(name="cash", kind="usd_cash", amount=0.0, liquidity_per_day=1.0, stressed_haircut=0.0),
            dict(name="bars", kind="allocated_gold", amount=100_000.0, liquidity_per_day=1.0, stressed_haircut=0.0),
        ],
        primary=dict(min_redemption_tokens=430.0, redemption_granularity_tokens=430.0),
        secondary=dict(amm=dict(kind="constant_product", reserve_tokens=r_pool, fee=fee)),
        redemption=dict(base_rate_per_day=0.01),
    )
    o = ReserveBackedToken(s).run(flat(1))
    sold = o.market_sell_tokens[0, 1]
    assert sold == pytest.approx(140.0)
    a = sold * (1 - fee)
    assert o.premium_frac[0, 1] == pytest.approx(r_pool * r_pool / ((r_pool + a) * (r_pool + sold)) - 1.0, rel=1e-12)
    nav = P0 / TROY_OUNCE_G
    assert o.holder_value_usd_per_token[0, 1] == pytest.approx(nav * (1 + o.premium_frac[0, 1]))


def test_band_pulls_on_open_days_only_and_never_clips() -> None:
    """No flows, no sells: the engine's premium is the premium process on the primary market's
    open days (weekdays), and a weekend day is one free step from Friday's premium. Regressing
    ``p_t - phi p_base`` on the excess of ``p_base`` over the band gives ``-kappa`` on Tuesday
    to Friday (base: yesterday) and on Monday (base: Friday), 0 on Saturday and Sunday (base:
    Friday, no pull); open days leave the band too (a force, not a clamp)."""
    from models.premium import arbitrage_band

    fee, kappa = 0.003, 0.6
    s = spec(
        primary=dict(market_hours="weekdays_only", mint_fee=0.002, redeem_fee=fee),
        secondary=dict(premium=dict(mean=0.0, phi=0.5, sigma=0.01, band_pull=kappa), wait_cost_per_day=0.002),
        redemption=dict(base_rate_per_day=0.0),
    )
    lo, hi = arbitrage_band(0.002, fee)
    m = ReserveBackedToken(s)
    assert (m.premium_process.band_lower, m.premium_process.band_upper) == pytest.approx((lo, hi))
    assert m.premium_process.band_pull == kappa
    cal = pd.date_range("2025-01-03", periods=120)  # a Friday
    o = m.run(flat(119, 3000), calendar=cal, rng=4)
    p = o.premium_frac
    dow = np.asarray(cal.day_of_week)
    fridays = np.flatnonzero(dow == 4)
    fridays = fridays[fridays + 3 < len(cal)]
    tue_fri = np.flatnonzero((dow >= 1) & (dow <= 4))
    tue_fri = tue_fri[tue_fri > 0]
    cases = (
        (tue_fri - 1, tue_fri, -kappa),  # Tuesday..Friday from yesterday
        (fridays, fridays + 3, -kappa),  # Monday from Friday
        (fridays, fridays + 1, 0.0),  # Saturday from Friday
        (fridays, fridays + 2, 0.0),  # Sunday from Friday, not from Saturday
    )
    for base, day, want in cases:
        x = m.premium_process.band_excess(p[:, base]).ravel()
        y = (p[:, day] - 0.5 * p[:, base]).ravel()
        assert np.polyfit(x, y, 1)[0] == pytest.approx(want, abs=0.03)
    # Sunday is not a step from Saturday: given Friday, the two weekend days are independent draws
    resid_sat = p[:, fridays + 1] - 0.5 * p[:, fridays]
    resid_sun = p[:, fridays + 2] - 0.5 * p[:, fridays]
    assert abs(np.corrcoef(resid_sat.ravel(), resid_sun.ravel())[0, 1]) < 0.03
    opened = p[:, 1:][:, o.market_open[1:]]
    assert (opened > hi).mean() > 0.1 and (opened < lo).mean() > 0.1


def test_describe_extends_v1_summary() -> None:
    o = ReserveBackedToken(load_token_spec(SPECS / "paxg.toml")).run(wild_paths(50, 30, seed=1), rng=1)
    d = o.describe()
    for k in (
        "share_breached",
        "holder_loss_q99",
        "queue_share_peak_q99",
        "liquidity_coverage_min_q01",
        "run_share_end_mean",
        "fire_sale_loss_usd_mean",
        "premium_min_q01",
        "share_unpaid_at_end",
    ):
        assert k in d and math.isfinite(d[k])


# --------------------------------------------------------------------------- opex closed form


def _preset_without_flows(name: str, days: int, **update: Any):
    """A committed reserve-backed preset with every holder flow, mint and run switched off (the library's
    ``with_redemption_share(spec, 0.0, days)``), opex and reserve untouched unless updated."""
    s = with_redemption_share(load_token_spec(SPECS / f"{name}.toml"), 0.0, days)
    assert s.redemption.base_rate_per_day == 0.0 and s.redemption.confidence.run_prone_share == 0.0
    return s.model_copy(update=update)


@pytest.mark.parametrize("days", [1, 6, 12])
def test_opex_lowers_cash_and_reserve_by_exactly_t_days_of_opex(days: int) -> None:
    """DGX preset (opex 200,000 USD a year over 252 model days; cash 20,000 USD listed first,
    no haircut), gold flat, no flows, no calendar: each day opex accrues and is paid from cash,
    so after T days cash and the reserve value are lower by exactly T * 200,000 / 252 and no
    gold moves. Twice the opex, twice the fall (T <= 12: even twice the opex, 19,048 USD,
    stays within the cash; beyond it gold is sold at a haircut and the fall is larger)."""
    s = _preset_without_flows("dgx", days)
    assert s.opex_usd_per_year == 200_000.0 and s.days_per_year == 252.0
    assert s.reserve[0].kind == "usd_cash" and s.reserve[0].stressed_haircut == 0.0
    opex_day = s.opex_usd_per_year / s.days_per_year
    o = ReserveBackedToken(s).run(flat(days, n_paths=2), rng=1)
    cash0 = s.reserve[0].amount
    np.testing.assert_allclose(o.cash_usd[:, -1], cash0 - days * opex_day, rtol=1e-12)
    np.testing.assert_allclose(o.cash_usd[0], cash0 - opex_day * np.arange(days + 1), rtol=1e-12)
    np.testing.assert_allclose(o.reserve_value_usd[:, 0] - o.reserve_value_usd[:, -1], days * opex_day, rtol=1e-9)
    np.testing.assert_allclose(o.opex_payable_usd, 0.0, atol=1e-9)  # paid the day it accrues
    np.testing.assert_array_equal(o.gold_reserve_g, np.broadcast_to(o.gold_reserve_g[:, :1], o.gold_reserve_g.shape))
    assert not o.gold_out_g.any() and not o.redeemed_tokens.any() and not o.minted_tokens.any()
    o2 = ReserveBackedToken(_preset_without_flows("dgx", days, opex_usd_per_year=2 * s.opex_usd_per_year)).run(
        flat(days), rng=1
    )
    assert cash0 - o2.cash_usd[0, -1] == pytest.approx(2 * days * opex_day, rel=1e-12)
    assert o2.reserve_value_usd[0, 0] - o2.reserve_value_usd[0, -1] == pytest.approx(2 * days * opex_day, rel=1e-9)


def test_opex_on_the_calendar_clock_lowers_the_reserve_value_every_calendar_day() -> None:
    """With a calendar-day clock opex accrues ``opex * elapsed days / 365.25`` every day,
    weekends included (a senior payable deducted from the reserve value), and is paid from cash
    on weekdays: after d calendar days the reserve value is lower by exactly 200,000 * d / 365.25
    on every day, open or closed; cash moves only on open days."""
    cal = pd.date_range("2025-01-03", periods=22)  # Friday .. Friday three weeks later
    days = len(cal) - 1
    s = _preset_without_flows("dgx", days)
    assert s.primary.market_hours == "weekdays_only"
    o = ReserveBackedToken(s).run(flat(days), calendar=cal, rng=2)
    per_day = s.opex_usd_per_year / 365.25
    elapsed = np.arange(days + 1)
    np.testing.assert_allclose(
        o.reserve_value_usd[0, 0] - o.reserve_value_usd[0], per_day * elapsed, rtol=1e-9, atol=1e-6
    )
    # cash after day t = cash0 - opex of every calendar day up to the last open day <= t
    last_open = np.maximum.accumulate(np.where(o.market_open, elapsed, 0))
    np.testing.assert_allclose(o.cash_usd[0], s.reserve[0].amount - per_day * last_open, rtol=1e-12)
    np.testing.assert_allclose(o.opex_payable_usd[0], per_day * (elapsed - last_open), atol=1e-9)


def test_gram_opex_is_paid_outside_the_segregated_reserve_and_leaves_it_untouched() -> None:
    """GRAM pays vaulting, audits and staff from the issuer's own funds, not from the
    reserve (MiCA Art. 36 segregation; spec comment): opex_usd_per_year = 0, so with gold
    flat and no flows every reserve asset keeps its day-0 amount to the last day. Control: the
    same token paying 3 m USD a year from the reserve loses exactly T days of it."""
    days = 60
    s = _preset_without_flows("gram", days)
    assert s.opex_usd_per_year == 0.0
    o = ReserveBackedToken(s).run(flat(days, n_paths=2), rng=3)
    amounts0 = np.array([a.amount for a in s.reserve])
    np.testing.assert_array_equal(o.asset_amounts, np.broadcast_to(amounts0[:, None, None], o.asset_amounts.shape))
    np.testing.assert_array_equal(
        o.reserve_value_usd, np.broadcast_to(o.reserve_value_usd[:, :1], o.reserve_value_usd.shape)
    )
    assert not o.opex_payable_usd.any()
    opex_paid = 3_000_000.0  # vaulting, insurance, audits, staff: about 0.2% a year of a 1.4 bn USD reserve
    paying = ReserveBackedToken(s.model_copy(update={"opex_usd_per_year": opex_paid})).run(flat(days), rng=3)
    fall = opex_paid / s.days_per_year * days
    assert paying.reserve_value_usd[0, 0] - paying.reserve_value_usd[0, -1] == pytest.approx(fall, rel=1e-9)
    assert amounts0[0] - paying.asset_amounts[0, 0, -1] == pytest.approx(fall, rel=1e-12)  # from operating cash
