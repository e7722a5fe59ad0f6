"""Token specs (one schema, one loader), the model dispatcher, the CDP stablecoin and the
reserve-backed token's basic mechanics vs hand-computed examples and brute-force scalar
references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import PROJECT_ROOT
from models.token.cdp import CdpStablecoin
from models.token.outcome import TokenOutcome
from models.token.protocol import TokenModel, build_token_model
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import MAX_RESERVE_ASSETS, CdpStablecoinSpec, ReserveBackedTokenSpec, load_token_spec
from models.units import TROY_OUNCE_G
from tests.models.token_specs import simple_reserve_backed

SPECS = PROJECT_ROOT / "specs"


gold_spec = simple_reserve_backed


def cdp_spec(tranches=((1.0, 1.5),), **kw: float) -> CdpStablecoinSpec:
    base = dict(
        spec_version=2,
        kind="gold_cdp",
        name="C",
        symbol="C",
        supply_usd=1000.0,
        tranches=[{"debt_share": d, "collateral_ratio": c} for d, c in tranches],
        liquidation_ratio=1.2,
        liquidation_penalty=0.13,
        liquidation_haircut=0.05,
    )
    base.update(kw)
    return CdpStablecoinSpec(**base)


def random_prices(n: int, days: int, vol: float, seed: int, p0: float = 2000.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, size=(n, days)) * vol
    return p0 * np.exp(np.concatenate([np.zeros((n, 1)), np.cumsum(r, axis=1)], axis=1))


# --------------------------------------------------------------------------- spec files


def test_committed_specs_load_with_documented_values() -> None:
    gram = load_token_spec(SPECS / "gram.toml")
    gusd = load_token_spec(SPECS / "gusd_cdp.toml")
    assert isinstance(gram, ReserveBackedTokenSpec) and gram.symbol == "GRAM"
    assert gram.grams_per_token == 1.0
    assert gram.initial_gold_coverage >= 1.0  # fully backed
    assert isinstance(gusd, CdpStablecoinSpec) and gusd.symbol == "GUSD" and gusd.spec_version == 2
    assert [(t.debt_share, t.collateral_ratio) for t in gusd.tranches] == [(0.5, 1.8), (0.3, 1.5), (0.2, 1.3)]
    assert gusd.liquidation_ratio == 1.2 and gusd.min_collateral_ratio == 1.3
    assert (gusd.supply_usd, gusd.liquidation_penalty, gusd.liquidation_haircut) == (100_000_000.0, 0.13, 0.05)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(text)
    return p


GRAM_TEXT = (SPECS / "gram.toml").read_text()


def _extra_cash_assets(n: int) -> str:
    """TOML of ``n`` more USD cash reserve assets of 1,000 USD each."""
    return "".join(
        f'[[reserve]]\nname = "cash {k}"\nkind = "usd_cash"\namount = 1000.0\nliquidity_per_day = 1.0\n'
        "stressed_haircut = 0.0\n\n"
        for k in range(n)
    )


def test_a_reserve_of_the_most_assets_loads_and_runs(tmp_path: Path) -> None:
    # 21 assets: the engine reads the last one's kind from bits 60-62 of one int64
    spec = load_token_spec(_write(tmp_path, GRAM_TEXT.replace("[primary]", _extra_cash_assets(19) + "[primary]")))
    assert len(spec.reserve) == MAX_RESERVE_ASSETS == 21
    gold = np.full((3, 6), 4_000.0)
    out = build_token_model(spec).run(gold, rng=1)
    assert out.asset_amounts.shape == (21, 3, 6)
    # the extra cash is read as cash: in the reserve's value and kept (no redemption needs it)
    assert np.array_equal(out.asset_amounts[2:, :, 0], np.full((19, 3), 1000.0))
    assert np.allclose(out.cash_usd[:, 0], 4_000_000.0 + 19 * 1000.0)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace("spec_version = 2\n", ""), "spec_version"),
        (lambda t: t.replace("spec_version = 2", "spec_version = 3"), "spec_version"),
        (lambda t: t.replace("spec_version = 2", "spec_version = true"), "spec_version"),
        (
            lambda t: t.replace("supply_tokens = 10_000_000.0\n", "supply_tokens = 10_000_000.0\nsurprise = 3\n"),
            "surprise",
        ),
        (lambda t: t.replace("mint_fee = 0.0025", "mint_fee = 1.5"), "primary.mint_fee"),
        (lambda t: t.replace("redeem_fee = 0.0025", "redeem_fee = -0.1"), "primary.redeem_fee"),
        (lambda t: t.replace("supply_tokens = 10_000_000.0\n", ""), "supply_tokens"),
        (lambda t: t.replace('kind = "gold_backed"', 'kind = "silver"'), "kind"),
        (lambda t: t.replace("max_share_per_day = 0.05", "max_share_per_day = 1.5"), "redemption.max_share_per_day"),
        (lambda t: t.replace("[primary]", _extra_cash_assets(20) + "[primary]"), "reserve"),  # 22 > 21 assets
    ],
)
def test_bad_gold_spec_raises_naming_file_and_field(tmp_path: Path, edit, field: str) -> None:
    text = edit(GRAM_TEXT)
    assert text != GRAM_TEXT
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as exc:
        load_token_spec(path)
    assert str(exc.value).startswith(f"{path}: ")
    assert f"field '{field}'" in str(exc.value)  # named as the failing field, not only mentioned


GUSD_TEXT = (SPECS / "gusd_cdp.toml").read_text()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace("debt_share = 0.2", "debt_share = 0.3"), "tranches: debt_share must sum to 1"),
        (
            lambda t: t.replace("collateral_ratio = 1.3", "collateral_ratio = 1.1"),
            "tranches[2].collateral_ratio=1.1 must exceed liquidation_ratio=1.2",
        ),
        (lambda t: t.replace("collateral_ratio = 1.5", "collateral_ratio = 1.5\nfoo = 1"), "field 'tranches[1].foo'"),
        (lambda t: t.replace("liquidation_haircut = 0.05", "liquidation_haircut = 1.0"), "field 'liquidation_haircut'"),
        (lambda t: t.replace("liquidation_ratio = 1.2", "liquidation_ratio = nan"), "field 'liquidation_ratio'"),
    ],
)
def test_bad_cdp_spec_raises_naming_file_and_field(tmp_path: Path, edit, field: str) -> None:
    path = _write(tmp_path, edit(GUSD_TEXT))
    with pytest.raises(ValueError) as exc:
        load_token_spec(path)
    assert str(exc.value).startswith(f"{path}: ") and field in str(exc.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not valid TOML"):
        load_token_spec(_write(tmp_path, "spec_version = = 2"))
    with pytest.raises(FileNotFoundError, match="absent.toml"):
        load_token_spec(tmp_path / "absent.toml")


def test_build_token_model_dispatches_on_kind() -> None:
    backed, cdp = build_token_model(gold_spec()), build_token_model(cdp_spec())
    assert isinstance(backed, ReserveBackedToken) and isinstance(cdp, CdpStablecoin)
    assert isinstance(backed, TokenModel) and isinstance(cdp, TokenModel)  # structural type
    with pytest.raises(ValueError, match="spec"):
        build_token_model("gram")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spec"):
        ReserveBackedToken(cdp_spec())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spec"):
        CdpStablecoin(gold_spec())  # type: ignore[arg-type]


def test_cdp_accepts_and_ignores_calendar_and_rng() -> None:
    prices = random_prices(5, 10, 0.05, seed=3)
    m = CdpStablecoin(cdp_spec())
    a = m.run(prices)
    b = m.run(prices, calendar=pd.date_range("2025-01-03", periods=11), rng=np.random.default_rng(1))
    for name in ("backing_ratio", "bad_debt_usd", "liquidated", "supply_tokens", "cash_usd"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


# --------------------------------------------------------------------------- reserve-backed token, basic mechanics


@pytest.mark.parametrize("fees_to_reserve", [False, True])
def test_gold_token_two_day_hand_example(fees_to_reserve: bool) -> None:
    """Opex from cash then gold, drawdown-driven redemptions, mints shrinking with the drawdown,
    fees to the issuer or into cash: every step computed by hand (numbers in the comments)."""
    spec = gold_spec(
        fees_to_reserve=fees_to_reserve,
        supply_tokens=100.0,
        gold_reserve_g=100.0,
        cash_buffer_usd=10.0,
        opex_usd_per_year=15.0,
        days_per_year=1.0,  # 15 USD a day
        mint_fee=0.02,
        redeem_fee=0.01,
        base_redeem_rate_per_day=0.01,
        redeem_drawdown_sensitivity=0.1,
        max_redeem_share_per_day=0.05,
        base_mint_rate_per_day=0.02,
        mint_drawdown_sensitivity=2.0,
    )
    # USD per gram: 10 then 8 (drawdown 0.2) then 12 (new high, drawdown 0)
    prices = np.array([[10.0, 8.0, 12.0]]) * TROY_OUNCE_G
    out = ReserveBackedToken(spec).run(prices)
    # day 1: redeem share 0.01 + 0.1*0.2 = 0.03 of 100 -> 3 tokens, 3 g; fee 0.01*3*8 = 0.24
    # opex 15: cash 10 -> 0, 5 USD of gold sold at 8 -> 0.625 g
    # mint share 0.02*(1 - 2*0.2) = 0.012 of 100 -> 1.2 tokens, 1.2 g; fee 0.02*1.2*8 = 0.192
    # fees 0.432 USD: into cash (fees to the reserve) or to the issuer (cash stays 0)
    fees1 = 0.24 + 0.192
    g1, c1, s1 = 100 - 0.625 - 3 + 1.2, fees1 if fees_to_reserve else 0.0, 100 - 3 + 1.2
    # day 2: redeem 0.01*98.2; opex 15 > cash c1: sell (15-c1)/12 g; mint 0.02*98.2
    sold2 = (15 - c1) / 12
    r2, m2 = 0.01 * s1, 0.02 * s1
    g2 = g1 - sold2 - r2 + m2
    fees2 = 0.01 * r2 * 12 + 0.02 * m2 * 12
    c2 = fees2 if fees_to_reserve else 0.0
    s2 = s1 - r2 + m2
    np.testing.assert_allclose(out.gold_reserve_g[0], [100, g1, g2], rtol=1e-13)
    np.testing.assert_allclose(out.cash_usd[0], [10, c1, c2], rtol=1e-13, atol=1e-15)
    revenue = np.array([0.0, fees1, fees1 + fees2])
    np.testing.assert_allclose(out.reserve_fee_income_usd[0], revenue if fees_to_reserve else 0.0, rtol=1e-13)
    np.testing.assert_allclose(out.issuer_fee_revenue_usd[0], 0.0 if fees_to_reserve else revenue, rtol=1e-13)
    np.testing.assert_allclose(out.supply_tokens[0], [100, s1, s2], rtol=1e-13)
    b1 = (g1 * 8 + c1) / (s1 * 8)
    np.testing.assert_allclose(out.backing_ratio[0, 1], b1, rtol=1e-13)
    np.testing.assert_allclose(out.backing_ratio[0, 0], (1000 + 10) / 1000, rtol=1e-13)
    # b1 < 1: a redeeming holder gets the pro-rata reserve less the fee
    assert b1 < 1
    np.testing.assert_allclose(out.redemption_value_usd_per_token[0, 1], 8 * 0.99 * b1, rtol=1e-13)
    np.testing.assert_allclose(out.redemption_value_usd_per_token[0, 0], 10 * 0.99, rtol=1e-13)
    np.testing.assert_allclose(out.reserve_value_usd[0, 1], g1 * 8 + c1, rtol=1e-13)
    np.testing.assert_allclose(out.gold_out_g[0], [0, 3.625, 3.625 + sold2 + r2], rtol=1e-13)
    np.testing.assert_allclose(out.gold_in_g[0], [0, 1.2, 1.2 + m2], rtol=1e-13)
    assert not out.liquidated.any() and not out.bad_debt_usd[:, 0].any()
    assert out.breached().tolist() == [True]


def gold_reference(spec: ReserveBackedTokenSpec, usd_per_oz: np.ndarray) -> dict[str, np.ndarray]:
    """Scalar, one path at a time, re-implementation of the daily rules of :func:`gold_spec`'s
    token while the gold reserve covers every redemption: redemptions (share of the start-of-day
    supply, drawdown-driven, capped) paid in grams; opex from cash, the rest by selling gold at
    the day's price; mints shrinking with the drawdown; the mint and redeem fees into cash when
    ``primary.fees_to_reserve``, else to the issuer (outside the reserve)."""
    n, t1 = usd_per_oz.shape
    keys = ("gold", "cash", "supply", "gin", "gout")
    res = {k: np.zeros((n, t1)) for k in keys}
    opex = spec.opex_usd_per_year / spec.days_per_year
    g = spec.grams_per_token
    rb, pm = spec.redemption, spec.primary
    cash0, gold0 = (a.amount for a in spec.reserve)
    for i in range(n):
        gold, cash, supply = gold0, cash0, spec.supply_tokens
        gin = gout = 0.0
        peak = usd_per_oz[i, 0]
        for t in range(t1):
            price_oz = usd_per_oz[i, t]
            if t > 0:
                peak = max(peak, price_oz)
                pg = price_oz / TROY_OUNCE_G
                dd = 1 - price_oz / peak
                s0 = supply
                share = min(rb.base_rate_per_day + rb.drawdown_sensitivity * dd, rb.max_share_per_day)
                tokens = share * s0
                assert tokens * g <= gold  # the reference covers the solvent case only
                gold -= tokens * g
                gout += tokens * g
                supply -= tokens
                fees = pm.redeem_fee * tokens * g * pg
                if cash >= opex:
                    cash -= opex
                else:
                    sold = (opex - cash) / pg
                    cash = 0.0
                    gold -= sold
                    gout += sold
                mint = rb.base_mint_rate_per_day * max(0.0, 1 - rb.mint_drawdown_sensitivity * dd) * s0
                gold += mint * g
                gin += mint * g
                supply += mint
                if pm.fees_to_reserve:
                    cash += fees + pm.mint_fee * mint * g * pg
            for k, v in zip(keys, (gold, cash, supply, gin, gout)):
                res[k][i, t] = v
    return res


@pytest.mark.parametrize(("cash", "fees_to_reserve"), [(0.0, False), (50_000.0, False), (2e7, False), (0.0, True)])
def test_gold_token_matches_scalar_reference(cash: float, fees_to_reserve: bool) -> None:
    spec = gold_spec(
        fees_to_reserve=fees_to_reserve,
        grams_per_token=0.5,
        supply_tokens=2e6,
        gold_reserve_g=0.95e6,
        cash_buffer_usd=cash,
        opex_usd_per_year=3e6,
        mint_fee=0.003,
        redeem_fee=0.002,
        base_redeem_rate_per_day=0.001,
        redeem_drawdown_sensitivity=0.08,
        max_redeem_share_per_day=0.02,
        base_mint_rate_per_day=0.0015,
        mint_drawdown_sensitivity=4.0,
    )
    prices = random_prices(40, 120, 0.02, seed=7)
    out = ReserveBackedToken(spec).run(prices)
    ref = gold_reference(spec, prices)
    np.testing.assert_allclose(out.gold_reserve_g, ref["gold"], rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(out.cash_usd, ref["cash"], rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(out.supply_tokens, ref["supply"], rtol=1e-10)
    np.testing.assert_allclose(out.gold_in_g, ref["gin"], rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(out.gold_out_g, ref["gout"], rtol=1e-10, atol=1e-6)
    pg = prices / TROY_OUNCE_G
    backing = (ref["gold"] * pg + ref["cash"]) / (ref["supply"] * 0.5 * pg)
    np.testing.assert_allclose(out.backing_ratio, backing, rtol=1e-10)
    np.testing.assert_allclose(
        out.redemption_value_usd_per_token, 0.5 * pg * 0.998 * np.minimum(1, backing), rtol=1e-10
    )
    assert out.backing_ratio.shape == (40, 121)


def test_gold_token_pays_redemptions_only_from_the_reserve() -> None:
    """A tiny reserve runs dry: grams paid never exceed grams held; gold never negative; the
    unpaid requests wait in the backlog."""
    spec = gold_spec(gold_reserve_g=30.0, base_redeem_rate_per_day=0.01, max_redeem_share_per_day=0.01)
    out = ReserveBackedToken(spec).run(np.full((1, 6), 2000.0))
    # 1 % of the free supply is asked each day: 10, 9.9, 9.801 tokens (1 g each),
    # then 9.70299 asked but only 0.299 g left: that is paid and the reserve is empty
    np.testing.assert_allclose(out.gold_reserve_g[0], [30, 20, 10.1, 0.299, 0, 0], atol=1e-12)
    np.testing.assert_allclose(out.supply_tokens[0], [1000, 990, 980.1, 970.299, 970, 970])
    np.testing.assert_allclose(out.backlog_tokens[0, :5], [0, 0, 0, 0, 9.70299 - 0.299], atol=1e-12)
    np.testing.assert_allclose(out.backlog_tokens[0, 5], 9.40399 + 0.01 * (970 - 9.40399))
    assert (out.gold_reserve_g >= 0).all()
    np.testing.assert_allclose(out.backing_ratio[0, -1], 0.0)
    assert out.breached().tolist() == [True]


# --------------------------------------------------------------------------- CDP


HAND_CDP_PRICES = np.array([[100.0, 99.0, 70.0, 70.0, 55.0]])


def _hand_cdp_run():
    """The hand example: two tranches (60% of 1000 USD at CR 2.0, 40% at CR 1.25), L = 1.2,
    penalty and haircut 10%, on one worked price path."""
    spec = cdp_spec(
        tranches=((0.6, 2.0), (0.4, 1.25)),
        supply_usd=1000.0,
        liquidation_ratio=1.2,
        liquidation_penalty=0.1,
        liquidation_haircut=0.1,
    )
    return HAND_CDP_PRICES, CdpStablecoin(spec).run(HAND_CDP_PRICES)


def test_cdp_hand_example_with_bad_debt_and_penalty() -> None:
    """Two tranches; a gap liquidates the weak one with bad debt, a fall the strong one
    with penalty income. Numbers worked by hand."""
    # P0 = 100: tranche A debt 600, 12 oz; tranche B debt 400, 5 oz
    prices, out = _hand_cdp_run()
    # day 1: B CR = 5*99/400 = 1.2375 >= 1.2, A fine
    # day 2: B CR = 5*70/400 = 0.875 < 1.2 -> proceeds 5*70*0.9 = 315 < 400: bad debt 85
    #        A CR = 12*70/600 = 1.4 fine. supply = 600 + 85 (unbacked coins stay)
    # day 4: A CR = 12*55/600 = 1.1 -> proceeds 12*55*0.9 = 594 < 600: bad debt 6 more
    np.testing.assert_allclose(out.bad_debt_usd[0], [0, 0, 85, 85, 91])
    np.testing.assert_allclose(out.supply_tokens[0], [1000, 1000, 685, 685, 91])
    np.testing.assert_allclose(out.gold_reserve_g[0] / TROY_OUNCE_G, [17, 17, 12, 12, 0])
    np.testing.assert_allclose(out.gold_out_g[0] / TROY_OUNCE_G, [0, 0, 5, 5, 17])
    np.testing.assert_allclose(out.reserve_value_usd[0], [1700, 17 * 99, 840, 840, 0])
    np.testing.assert_allclose(out.backing_ratio[0], [1.7, 17 * 99 / 1000, 840 / 685, 840 / 685, 0])
    np.testing.assert_allclose(out.holder_value_usd_per_token[0], [1, 1, 1 - 85 / 685, 1 - 85 / 685, 0])
    assert out.liquidated[0].tolist() == [False, False, True, True, True]
    np.testing.assert_allclose(out.cash_usd[0], 0.0)  # no auction raised more than the debt


def test_cdp_penalty_income_is_capped_at_the_tab() -> None:
    spec = cdp_spec(
        tranches=((1.0, 1.5),),
        supply_usd=1000.0,
        liquidation_ratio=1.4,
        liquidation_penalty=0.13,
        liquidation_haircut=0.02,
    )
    # P0 = 100 -> 15 oz; day 1 price 90 -> CR 1.35 < 1.4; proceeds 15*90*0.98 = 1323
    # tab = 1130 -> penalty 130 collected, debt 1000 repaid, no bad debt, all coins burned
    out = CdpStablecoin(spec).run(np.array([[100.0, 90.0, 80.0]]))
    np.testing.assert_allclose(out.cash_usd[0], [0, 130, 130])
    np.testing.assert_allclose(out.bad_debt_usd[0], 0)
    np.testing.assert_allclose(out.supply_tokens[0], [1000, 0, 0])
    assert np.isinf(out.backing_ratio[0, 1:]).all()  # no coin outstanding
    np.testing.assert_allclose(out.holder_value_usd_per_token[0], 1.0)
    # with a penalty the proceeds do not reach: 15*90*0.98 = 1323 < 1000*1.5 -> penalty 323
    spec2 = spec.model_copy(update={"liquidation_penalty": 0.5})
    np.testing.assert_allclose(CdpStablecoin(spec2).run(np.array([[100.0, 90.0]])).cash_usd[0], [0, 323])


def cdp_reference(spec: CdpStablecoinSpec, prices: np.ndarray) -> dict[str, np.ndarray]:
    """Day-by-day, path-by-path scalar loop over the documented liquidation rule."""
    n, t1 = prices.shape
    keys = ("coll_oz", "debt", "bad", "pen", "liq")
    res = {k: np.zeros((n, t1)) for k in keys}
    h, pen_rate, lr = spec.liquidation_haircut, spec.liquidation_penalty, spec.liquidation_ratio
    for i in range(n):
        vaults = [
            [tr.collateral_ratio * tr.debt_share * spec.supply_usd / prices[i, 0], tr.debt_share * spec.supply_usd]
            for tr in spec.tranches
        ]
        bad = pen = 0.0
        liq = False
        for t in range(t1):
            if t > 0:
                for v in vaults:
                    q, d = v
                    if d > 0 and q * prices[i, t] / d < lr:
                        proceeds = q * prices[i, t] * (1 - h)
                        if proceeds < d:
                            bad += d - proceeds
                        else:
                            pen += min(proceeds - d, d * pen_rate)
                        v[0], v[1] = 0.0, 0.0
                        liq = True
            res["coll_oz"][i, t] = sum(v[0] for v in vaults)
            res["debt"][i, t] = sum(v[1] for v in vaults)
            res["bad"][i, t], res["pen"][i, t], res["liq"][i, t] = bad, pen, liq
    return res


def test_cdp_matches_scalar_reference_on_random_paths() -> None:
    spec = cdp_spec(
        tranches=((0.5, 1.8), (0.3, 1.5), (0.2, 1.3)),
        supply_usd=1e8,
        liquidation_ratio=1.2,
        liquidation_penalty=0.13,
        liquidation_haircut=0.08,
    )
    prices = random_prices(60, 200, 0.03, seed=11)
    out = CdpStablecoin(spec).run(prices)
    ref = cdp_reference(spec, prices)
    assert ref["bad"][:, -1].max() > 0 and ref["liq"][:, -1].mean() > 0.2  # exercised
    np.testing.assert_allclose(out.gold_reserve_g / TROY_OUNCE_G, ref["coll_oz"], rtol=1e-12)
    np.testing.assert_allclose(out.bad_debt_usd, ref["bad"], rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(out.cash_usd, ref["pen"], rtol=1e-10, atol=1e-6)
    np.testing.assert_array_equal(out.liquidated, ref["liq"].astype(bool))
    supply = ref["debt"] + ref["bad"]
    np.testing.assert_allclose(out.supply_tokens, supply, rtol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        backing = np.where(supply > 0, ref["coll_oz"] * prices / supply, np.inf)
        holder = np.where(supply > 0, np.maximum(0, 1 - ref["bad"] / supply), 1.0)
    np.testing.assert_allclose(out.backing_ratio, backing, rtol=1e-12)
    np.testing.assert_allclose(out.holder_value_usd_per_token, holder, rtol=1e-12, atol=1e-15)


def test_cdp_initial_state_uses_each_paths_day0_price() -> None:
    spec = cdp_spec(tranches=((0.25, 1.6), (0.75, 2.0)), supply_usd=400.0)
    prices = np.array([[100.0, 100.0], [250.0, 250.0]])
    out = CdpStablecoin(spec).run(prices)
    coll_usd = 0.25 * 400 * 1.6 + 0.75 * 400 * 2.0
    np.testing.assert_allclose(out.reserve_value_usd[:, 0], coll_usd)
    np.testing.assert_allclose(out.gold_reserve_g[:, 0], [coll_usd / 100 * TROY_OUNCE_G, coll_usd / 250 * TROY_OUNCE_G])
    np.testing.assert_allclose(out.backing_ratio[:, 0], coll_usd / 400)


# --------------------------------------------------------------------------- outcome helpers


def test_outcome_helpers() -> None:
    spec = cdp_spec(tranches=((1.0, 1.5),), supply_usd=100.0, liquidation_haircut=0.1)
    prices = np.array([[100.0, 100.0, 100.0], [100.0, 60.0, 60.0]])
    out = CdpStablecoin(spec).run(prices)
    assert isinstance(out, TokenOutcome) and out.n_paths == 2 and out.horizon_days == 2
    assert out.breached().tolist() == [False, True]
    # path 2: proceeds 1.5*100*0.6*0.9 = 81, bad debt 19, 19 coins outstanding, all unbacked
    np.testing.assert_allclose(out.holder_loss(), [0.0, 1.0])
    d = out.describe()
    assert d["share_breached"] == 0.5 and d["share_liquidated"] == 0.5
    assert d["bad_debt_usd_mean"] == pytest.approx(19 / 2)


@pytest.mark.parametrize(
    "prices",
    [np.array([2000.0, 2001.0]), np.array([[2000.0, -1.0]]), np.array([[2000.0, np.nan]]), np.zeros((0, 3))],
)
def test_models_reject_bad_prices(prices: np.ndarray) -> None:
    for model in (ReserveBackedToken(gold_spec()), CdpStablecoin(cdp_spec())):
        with pytest.raises(ValueError, match="gold_usd_per_oz"):
            model.run(prices)


def test_spec_validation_in_python() -> None:
    with pytest.raises(ValueError, match="debt_share must sum to 1"):
        cdp_spec(tranches=((0.5, 1.5), (0.4, 1.5)))
    with pytest.raises(ValueError, match="mint_fee"):
        gold_spec(mint_fee=1.0)
    with pytest.raises(ValueError, match="spec_version"):
        CdpStablecoinSpec.model_validate({**cdp_spec().model_dump(), "spec_version": 1})
    assert math.isclose(gold_spec(gold_reserve_g=900.0).initial_gold_coverage, 0.9)


# --------------------------------------------------------------------------- CDP liquidation boundary


def test_cdp_collateral_ratio_exactly_at_the_liquidation_ratio_is_not_liquidated() -> None:
    """The spec (``liquidation_ratio``: "liquidate when CR < L"; docs/models/cdp.md: a tranche
    with ``CR_t < L`` is liquidated) puts CR == L on the SAFE side. The model compares with a
    relative tolerance of BREACH_TOL = 1e-9 so float rounding of the price (a few ulps) never
    decides it. Tranche: D = 1000, CR_0 = 1.5, P_0 = 100 -> Q = 15 oz, boundary price 80."""
    spec = cdp_spec(
        tranches=((1.0, 1.5),),
        supply_usd=1000.0,
        liquidation_ratio=1.2,
        liquidation_penalty=0.13,
        liquidation_haircut=0.05,
    )
    q, lr_d = 1.5 * 1000.0 / 100.0, 1.2 * 1000.0
    assert q * 80.0 == lr_d  # CR is exactly L at P = 80 in floating point
    day1 = np.array(
        [
            80.0,  # CR == L exactly: safe
            np.nextafter(80.0, 0.0),  # one ulp under: rounding, safe
            80.0 * (1 + 1e-6),  # just above: safe
            80.0 * (1 - 1e-6),  # just below: liquidated
            80.0 * (1 - 1e-8),  # below by 10x the rounding tolerance: liquidated
        ]
    )
    assert q * day1[1] < lr_d  # the one-ulp path really is (numerically) under L
    prices = np.c_[np.full(day1.size, 100.0), day1]
    out = CdpStablecoin(spec).run(prices)
    assert out.liquidated[:, 1].tolist() == [False, False, False, True, True]
    assert out.breached().tolist() == [False, False, False, True, True]
    # safe paths keep their debt and collateral; liquidated ones repay the debt in full and
    # collect the full penalty (proceeds 1200 * 0.95 = 1140 > tab 1130): closed form
    np.testing.assert_allclose(out.supply_tokens[:, 1], [1000, 1000, 1000, 0, 0])
    np.testing.assert_allclose(out.gold_reserve_g[:, 1] / TROY_OUNCE_G, [15, 15, 15, 0, 0])
    np.testing.assert_allclose(out.cash_usd[:, 1], [0, 0, 0, 130, 130])
    np.testing.assert_allclose(out.backing_ratio[:3, 1], q * day1[:3] / 1000.0, rtol=1e-15)


def test_cdp_boundary_price_built_from_a_log_return_is_not_liquidated() -> None:
    """GUSD's strongest tranche (CR 1.8, L 1.2): the boundary price built the way return paths
    are, ``P_0 * exp(log1p(L / CR - 1))``, lands one ulp under ``L * D / Q``; that rounding must
    not liquidate the tranche (the reason for the model's tolerance). A move of 1e-6 further
    down does."""
    spec = cdp_spec(tranches=((1.0, 1.8),), supply_usd=1000.0, liquidation_ratio=1.2)
    p_edge = 100.0 * math.exp(math.log1p(1.2 / 1.8 - 1))
    q = 1.8 * 1000.0 / 100.0
    assert q * p_edge < 1.2 * 1000.0  # numerically under L by rounding only
    assert q * p_edge / 1200.0 - 1 > -1e-15
    prices = np.array([[100.0, p_edge, p_edge], [100.0, p_edge * (1 - 1e-6), p_edge]])
    out = CdpStablecoin(spec).run(prices)
    assert out.liquidated[:, -1].tolist() == [False, True]
    assert out.liquidated[1].tolist() == [False, True, True]


def test_cdp_unbacked_share_is_measured_against_the_day0_supply() -> None:
    """In the hand example above 91 USD of the 1000 coins issued end unbacked while 91 coins are
    left outstanding: per remaining coin the holder loses everything (holder loss 1), but only
    9.1% of the day-0 supply is unbacked, which is what the summary reports beside it."""
    from models.metrics import path_metrics, summarise_paths

    prices, out = _hand_cdp_run()
    row = summarise_paths(out, prices, (1,)).iloc[0]
    assert row["holder_loss_frac_end"] == pytest.approx(1.0, abs=1e-12)
    assert row["unbacked_frac_of_day0_liabilities"] == pytest.approx(91.0 / 1000.0, rel=1e-12)
    assert path_metrics(row, (1,))["unbacked_frac_of_day0_liabilities"] == pytest.approx(0.091, rel=1e-12)
