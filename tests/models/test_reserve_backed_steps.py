"""Each daily step of the reserve-backed token alone, against hand-computed cases, on the
step-by-step reference engine (tests/models/reference/reserve_backed.py; the compiled engine
reproduces it, tests/models/test_engine.py): a small spec, the run's constants (``RunSetup``), the day-0 state
(``DayState.initial``), the day opened by ``start_day``, the step's inputs set by hand, then the
step and its outputs checked against numbers worked out in the comments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.amm import ConstantProductPool
from models.premium import PremiumProcess
from models.token.spec import ReserveBackedTokenSpec, parse_token_spec
from models.units import TROY_OUNCE_G
from tests.models.reference.reserve_backed import (
    DAILY_STEPS,
    DayState,
    ReserveBackedToken,
    RunSetup,
    costs,
    demand,
    eligibility,
    gate,
    liquidity,
    mint,
    pay_cash,
    pay_gold,
    record,
    refused_sold,
    secondary_market,
    settlement,
    start_day,
    whole_bars,
)

PG = 50.0  # USD per gram on the hand-worked days
CASH = {"name": "cash", "kind": "usd_cash", "amount": 0.0, "liquidity_per_day": 1.0, "stressed_haircut": 0.0}
BARS = {"name": "bars", "kind": "allocated_gold", "amount": 1000.0, "liquidity_per_day": 1.0, "stressed_haircut": 0.0}


def make(
    reserve: list[dict[str, Any]] | None = None,
    primary: dict[str, Any] | None = None,
    secondary: dict[str, Any] | None = None,
    redemption: dict[str, Any] | None = None,
    **top: Any,
) -> ReserveBackedTokenSpec:
    """1000 tokens of 1 g, fully backed by 1000 g of bars plus an empty cash account, always
    open, no fees, no flows, no premium process, no floor; sections updated by the arguments."""
    return parse_token_spec(
        {
            "spec_version": 2,
            "kind": "gold_backed",
            "name": "S",
            "symbol": "S",
            "grams_per_token": 1.0,
            "supply_tokens": 1000.0,
            **top,
            "reserve": reserve or [CASH, BARS],
            "primary": {"mint_fee": 0.0, "redeem_fee": 0.0, "market_hours": "always", **(primary or {})},
            "secondary": {"wait_cost_per_day": None, **(secondary or {})},
            "redemption": {"base_rate_per_day": 0.0, **(redemption or {})},
        }
    )


def day1(spec: ReserveBackedTokenSpec, usd_per_g: tuple[float, ...] = (PG, PG), calendar=None, rng=None):
    """Constants and state of one path, opened on day 1 (prices in USD per gram)."""
    prices = np.array([usd_per_g]) * TROY_OUNCE_G
    r = RunSetup.from_spec(spec, prices, calendar, rng, ReserveBackedToken(spec).premium_process)
    st = DayState.initial(r)
    start_day(r, st, 1)
    return r, st


def arr(x: float) -> np.ndarray:
    return np.array([float(x)])


# --------------------------------------------------------------------------- start_day


def test_start_day_sets_prices_and_capacities() -> None:
    # cash 1000 USD, half convertible a day; bars 100 g, at most 30 g a day, 2 % haircut
    spec = make(
        reserve=[
            {**CASH, "amount": 1000.0, "liquidity_per_day": 0.5},
            {**BARS, "amount": 100.0, "liquidity_per_day": 30.0, "liquidity_unit": "amount", "stressed_haircut": 0.02},
        ],
        supply_tokens=100.0,
    )
    cal = pd.DatetimeIndex(["2025-01-03", "2025-01-04"])  # Friday, Saturday
    _, st = day1(spec, (PG, 40.0), calendar=cal)
    pg1 = 40.0 * TROY_OUNCE_G / TROY_OUNCE_G
    assert st.t == 1 and st.is_open  # "always"
    np.testing.assert_allclose(st.navt, [pg1], rtol=1e-15)
    np.testing.assert_allclose(st.unit[:, 0], [1.0, pg1], rtol=1e-15)
    np.testing.assert_allclose(st.ukeep[:, 0], [1.0, 0.98 * pg1], rtol=1e-15)
    np.testing.assert_allclose(st.cap[:, 0], [500.0, 30.0])  # 0.5 * 1000 USD; min(30, 100) g
    np.testing.assert_allclose(st.usable[:, 0], [500.0, 30.0])
    np.testing.assert_array_equal(st.supply_prev, [100.0])
    np.testing.assert_array_equal(st.p_prev, [0.0])
    assert st.fees is None
    # weekdays_only: Saturday is closed
    _, st = day1(make(primary={"market_hours": "weekdays_only"}), calendar=cal)
    assert not st.is_open


# --------------------------------------------------------------------------- demand


def test_demand_flows_peg_arbitrage_and_closed_days() -> None:
    spec = make(
        primary={"redeem_fee": 0.005, "market_hours": "weekdays_only"},
        redemption={"base_rate_per_day": 0.01, "drawdown_sensitivity": 0.5, "peg_sensitivity": 2.0},
    )
    for cal, open_ in ((None, True), (pd.DatetimeIndex(["2025-01-03", "2025-01-04"]), False)):
        r, st = day1(spec, (PG, 0.9 * PG), calendar=cal)
        st.p_prev = arr(-0.02)  # yesterday's discount
        st.waiting[:] = 100.0  # already waiting: not free
        demand(r, st)
        # dd = 0.1; share = 0.01 + 0.5 * 0.1 [+ 2 * (0.02 - 0.005) on an open day] = 0.06 [0.09]
        # free = 1000 - 100 = 900
        share = 0.06 + (0.03 if open_ else 0.0)
        np.testing.assert_allclose(st.demand, [share * 900], rtol=1e-12)
        np.testing.assert_array_equal(st.sells, [0.0])


def test_demand_run_of_the_global_game() -> None:
    # run-prone mass 0.5 * 1000; a quarter of the runners sell on the market; sigma 0.01, c 0.01
    spec = make(
        primary={"redeem_fee": 0.01},
        redemption={
            "confidence": {
                "run_prone_share": 0.5,
                "market_sell_share": 0.25,
                "signal_noise_sd": 0.01,
                "queue_weight": 0.0,
            }
        },
    )
    r, st = day1(spec)
    # day 0: theta = B - 1 = 0, lambda = 0 (no haircut): R_0 = Phi((0/2 - 0.01 - 0) / 0.01) = Phi(-1)
    np.testing.assert_allclose(st.run_cum, [stats.norm.cdf(-1.0)], rtol=1e-12)
    st.block[0, r.field["B"]] = 0.98  # the attested backing falls 2 %: theta = -0.02
    demand(r, st)
    r1 = stats.norm.cdf((-0.01 + 0.02) / 0.01)  # Phi(1)
    runners = (r1 - stats.norm.cdf(-1.0)) * 500.0
    np.testing.assert_allclose(st.run_cum, [r1], rtol=1e-12)
    np.testing.assert_allclose(st.row[r.field["theta"]], [-0.02], rtol=1e-12)
    np.testing.assert_allclose(st.demand, [0.75 * runners], rtol=1e-12)
    np.testing.assert_allclose(st.sells, [0.25 * runners], rtol=1e-12)


# --------------------------------------------------------------------------- gate, bars, refused


def test_gate_refuses_requests_above_the_daily_limit() -> None:
    r, st = day1(make(primary={"redemption_limit_share_per_day": 0.02}))
    st.demand = arr(50.0)
    gate(r, st)
    # limit 0.02 * 1000 = 20: 30 refused, 20 let through, the request kept
    np.testing.assert_allclose((st.refused, st.demand, st.request), ([30.0], [20.0], [50.0]))
    r, st = day1(make())
    st.demand = arr(50.0)
    gate(r, st)
    assert st.refused is None and st.demand.tolist() == [50.0]


@pytest.mark.parametrize(
    ("primary", "asked", "accepted", "gold", "returned", "sold"),
    [
        # XAUT: whole bars of 430 for all: 1000 -> 860 accepted, 140 returned and sold;
        # gold part whole bars of half of 860 = 430
        (
            {"redemption_granularity_tokens": 430.0, "min_redemption_tokens": 430.0, "cash_redemption_share": 0.5},
            1000.0,
            860.0,
            430.0,
            140.0,
            140.0,
        ),
        # PAXG: bars for the gold part only: 70 % of 1000 = 700 -> one bar of 430 in gold, 570 in cash
        (
            {
                "redemption_granularity_tokens": 430.0,
                "min_redemption_tokens": 430.0,
                "granularity_applies_to": "gold",
                "cash_redemption_share": 0.3,
            },
            1000.0,
            1000.0,
            430.0,
            0.0,
            0.0,
        ),
        # a minimum without bars: 400 < 500 -> nothing accepted, all returned and sold
        ({"min_redemption_tokens": 500.0}, 400.0, 0.0, 0.0, 400.0, 400.0),
        # no bar rules, all in cash
        ({"cash_redemption_share": 1.0}, 123.0, 123.0, 0.0, 0.0, 0.0),
    ],
)
def test_whole_bars_split(primary, asked, accepted, gold, returned, sold) -> None:
    r, st = day1(make(primary=primary))
    st.demand, st.sells = arr(asked), arr(0.0)
    whole_bars(r, st)
    np.testing.assert_allclose(
        [st.acc[0], st.acc_g[0], st.acc_c[0], st.returned[0], st.sells[0]],
        [accepted, gold, accepted - gold, returned, sold],
        atol=1e-9,
    )


def test_refused_requests_are_returned_and_sold() -> None:
    r, st = day1(make())
    st.refused, st.request, st.demand = arr(30.0), arr(50.0), arr(20.0)
    st.returned, st.sells = arr(5.0), arr(2.0)
    refused_sold(r, st)
    np.testing.assert_allclose((st.returned, st.sells, st.demand), ([35.0], [32.0], [50.0]))
    st.refused = None
    refused_sold(r, st)
    np.testing.assert_allclose((st.returned, st.sells, st.demand), ([35.0], [32.0], [50.0]))


# --------------------------------------------------------------------------- settlement, costs


def test_settlement_queues_by_lag_and_cutoff() -> None:
    r, st = day1(make(primary={"settlement_lag_days": 2, "cutoff_share": 0.6}))
    st.acc, st.acc_g, st.acc_c = arr(15.0), arr(10.0), arr(5.0)
    settlement(r, st)
    # 60 % eligible after 2 open days, 40 % after 3
    np.testing.assert_allclose(st.pend[:, :, 0], [[0, 0, 6, 4], [0, 0, 3, 2]])
    np.testing.assert_allclose(st.waiting, [15.0])


def test_costs_accrue_opex_per_model_day_or_per_calendar_day() -> None:
    spec = make(opex_usd_per_year=36_525.0, days_per_year=250.0)
    r, st = day1(spec)
    costs(r, st)
    np.testing.assert_allclose(st.payable, [36_525.0 / 250.0], rtol=1e-15)
    # on a trading-day calendar Friday -> Monday is 3 calendar days: 3 * 36525 / 365.25 = 300
    r, st = day1(spec, calendar=pd.DatetimeIndex(["2025-01-03", "2025-01-06"]))
    costs(r, st)
    np.testing.assert_allclose(st.payable, [300.0], rtol=1e-14)


# --------------------------------------------------------------------------- liquidity, eligibility


@pytest.mark.parametrize("fees_to_reserve", [False, True])
def test_liquidity_coverage_per_side(fees_to_reserve: bool) -> None:
    # cash 1000 USD, half convertible a day; bars 100 g, 10 % a day, 2 % haircut; half in cash
    spec = make(
        reserve=[
            {**CASH, "amount": 1000.0, "liquidity_per_day": 0.5},
            {**BARS, "amount": 100.0, "liquidity_per_day": 0.1, "stressed_haircut": 0.02},
        ],
        primary={
            "redeem_fee": 0.01,
            "cash_redemption_share": 0.5,
            "settlement_lag_days": 1,
            "fees_to_reserve": fees_to_reserve,
        },
    )
    r, st = day1(spec)
    pg = r.pg[1, 0]
    st.q_g[:], st.q_c[:] = 10.0, 5.0
    st.pend[0, 1], st.pend[1, 1] = 2.0, 1.0
    st.payable[:] = 50.0
    liquidity(r, st)
    cash_res = 0.5 * 1000.0 + 0.1 * 100.0 * pg * 0.98
    # a cash claim takes NAV from the reserve (NAV * 0.99 to the holder, the 1 % fee to the
    # issuer); with the fees kept in the reserve it takes NAV * 0.99
    claim_c = (5.0 + 1.0) * pg * (0.99 if fees_to_reserve else 1.0) + 50.0
    gold_res, claim_g = 100.0 * pg, (10.0 + 2.0) * pg  # allocated gold delivered in kind
    F = r.field
    np.testing.assert_allclose(st.row[F["lcr"]], [min(cash_res / claim_c, gold_res / claim_g)], rtol=1e-13)
    np.testing.assert_allclose(st.row[F["liq"]], [gold_res + cash_res], rtol=1e-13)
    np.testing.assert_allclose(st.row[F["outf"]], [claim_g + claim_c], rtol=1e-13)
    np.testing.assert_allclose(st.gold_res_g, [100.0])
    # no claims at all: coverage is infinite (x / 0, which the run evaluates under np.errstate)
    r, st = day1(spec)
    with np.errstate(divide="ignore", invalid="ignore"):
        liquidity(r, st)
    assert np.isinf(st.row[F["lcr"]]).all()


def test_eligibility_moves_the_pipeline_on_open_days_only() -> None:
    spec = make(primary={"market_hours": "weekdays_only", "settlement_lag_days": 1})
    for cal, moved in (
        (pd.DatetimeIndex(["2025-01-02", "2025-01-03"]), True),
        (pd.DatetimeIndex(["2025-01-03", "2025-01-04"]), False),
    ):
        r, st = day1(spec, calendar=cal)
        st.pend[0, :, 0] = [3.0, 4.0, 0.0]
        st.q_g[:] = 1.0
        eligibility(r, st)
        if moved:
            np.testing.assert_allclose((st.q_g[0], *st.pend[0, :, 0]), (4.0, 4.0, 0.0, 0.0))
        else:
            np.testing.assert_allclose((st.q_g[0], *st.pend[0, :, 0]), (1.0, 3.0, 4.0, 0.0))


# --------------------------------------------------------------------------- payments, mints


def test_pay_gold_from_allocated_then_unallocated_within_capacity() -> None:
    # 20 g allocated; 50 g unallocated, 20 % a day (10 g), 10 % haircut; redeem fee 1 %
    spec = make(
        reserve=[
            CASH,
            {**BARS, "amount": 20.0},
            {
                "name": "pool",
                "kind": "unallocated_gold",
                "amount": 50.0,
                "liquidity_per_day": 0.2,
                "stressed_haircut": 0.1,
            },
        ],
        primary={"redeem_fee": 0.01},
        supply_tokens=70.0,
    )
    r, st = day1(spec)
    pg = r.pg[1, 0]
    st.q_g[:], st.waiting[:] = 40.0, 40.0
    st.gold_res_g = arr(20.0 + 10.0 * 0.9)  # as liquidity() computes it: 29 g deliverable
    pay_gold(r, st)
    # 29 tokens paid: 20 g of bars, then 9 g from 10 g of unallocated gold (1 g lost to the haircut)
    np.testing.assert_allclose(st.amt[:, 0], [0.0, 0.0, 40.0], atol=1e-12)
    np.testing.assert_allclose(st.cap[2], [0.0], atol=1e-12)
    np.testing.assert_allclose((st.gout[0], st.fsl[0]), (30.0, 1.0 * pg), rtol=1e-12)
    np.testing.assert_allclose((st.q_g[0], st.sup[0], st.waiting[0]), (11.0, 41.0, 11.0), rtol=1e-12)
    np.testing.assert_allclose(st.fees, [0.01 * 29.0 * pg], rtol=1e-12)
    np.testing.assert_allclose(st.outflow, [29.0 * pg], rtol=1e-12)  # 29 g delivered at the day's price
    np.testing.assert_allclose(st.row[r.field["red_g"]], [29.0], rtol=1e-12)


def test_pay_gold_in_whole_bars_and_not_on_closed_days() -> None:
    spec = make(primary={"redemption_granularity_tokens": 10.0, "market_hours": "weekdays_only"})
    r, st = day1(spec)
    st.q_g[:], st.waiting[:] = 29.0, 29.0
    st.gold_res_g = arr(1000.0)
    pay_gold(r, st)
    np.testing.assert_allclose((st.q_g[0], st.amt[1, 0]), (9.0, 980.0))  # two bars of 10
    r, st = day1(spec, calendar=pd.DatetimeIndex(["2025-01-03", "2025-01-04"]))
    st.q_g[:], st.gold_res_g = 29.0, arr(1000.0)
    pay_gold(r, st)
    assert st.q_g[0] == 29.0 and st.fees is None


def test_pay_cash_waterfall_pays_opex_first_then_claims() -> None:
    # cash 100 USD; T-bills 1000 USD, 200 USD a day, 1 % haircut; redeem fee 2 % kept by the
    # issuer; NAV 50 USD: each claim takes 50 USD from the reserve, 49 to the holder, 1 to the issuer
    spec = make(
        reserve=[
            {**CASH, "amount": 100.0},
            {
                "name": "bills",
                "kind": "tbills",
                "amount": 1000.0,
                "liquidity_per_day": 200.0,
                "liquidity_unit": "amount",
                "stressed_haircut": 0.01,
            },
            {**BARS, "amount": 0.0},
        ],
        primary={"redeem_fee": 0.02, "cash_redemption_share": 1.0, "cash_redemption_haircut": "reserve"},
        supply_tokens=10.0,
        opex_usd_per_year=1.0,
    )
    r, st = day1(spec)
    st.payable[:] = 30.0
    st.q_c[:], st.waiting[:] = 3.0, 3.0
    pay_cash(r, st)
    # raisable 100 + 200 * 0.99 = 298; opex 30 first; claims: min(3, 268 / 50) = 3 paid 50 each
    # need 30 + 150 = 180: all 100 of cash, then 80 USD from 80 / 0.99 bills
    sold_bills = 80.0 / 0.99
    np.testing.assert_allclose(st.amt[:, 0], [0.0, 1000.0 - sold_bills, 0.0], rtol=1e-12)
    np.testing.assert_allclose((st.q_c[0], st.sup[0], st.waiting[0], st.payable[0]), (0.0, 7.0, 0.0, 0.0), atol=1e-12)
    np.testing.assert_allclose((st.cin[0], st.cout[0], st.fsl[0]), (80.0, 180.0, 0.01 * sold_bills), rtol=1e-12)
    np.testing.assert_allclose((st.outflow[0], st.fee_cum[0]), (150.0, 3.0), rtol=1e-12)  # fee 3 * 50 * 0.02
    np.testing.assert_allclose(st.row[r.field["red_c"]], [3.0])
    # short of cash: 298 - 30 = 268 USD pays 268 / 50 claims
    r, st = day1(spec)
    st.payable[:], st.q_c[:] = 30.0, 10.0
    pay_cash(r, st)
    np.testing.assert_allclose(st.row[r.field["red_c"]], [268.0 / 50.0], rtol=1e-12)


def test_pay_cash_redeemers_bear_the_haircut_of_their_sale() -> None:
    # as the waterfall above, with the default cash_redemption_haircut = "redeemer": the day's
    # sales raise 180 USD (80 of them from bills at a 1 % haircut, 0.01 * 80 / 0.99 = 0.808 USD
    # lost); the claims' share of the need, 150 / 180, of that haircut is deducted from their
    # payout and stays in the reserve's cash; opex bears the rest
    spec = make(
        reserve=[
            {**CASH, "amount": 100.0},
            {
                "name": "bills",
                "kind": "tbills",
                "amount": 1000.0,
                "liquidity_per_day": 200.0,
                "liquidity_unit": "amount",
                "stressed_haircut": 0.01,
            },
            {**BARS, "amount": 0.0},
        ],
        primary={"redeem_fee": 0.02, "cash_redemption_share": 1.0},
        supply_tokens=10.0,
        opex_usd_per_year=1.0,
    )
    r, st = day1(spec)
    st.payable[:] = 30.0
    st.q_c[:], st.waiting[:] = 3.0, 3.0
    pay_cash(r, st)
    sold_bills = 80.0 / 0.99
    haircut = 0.01 * sold_bills
    borne = haircut * 150.0 / 180.0
    np.testing.assert_allclose(st.amt[:, 0], [borne, 1000.0 - sold_bills, 0.0], rtol=1e-12)
    np.testing.assert_allclose((st.cin[0], st.cout[0], st.fsl[0]), (80.0, 180.0 - borne, haircut - borne), rtol=1e-12)
    np.testing.assert_allclose((st.outflow[0], st.fee_cum[0]), (150.0 - borne, 3.0), rtol=1e-12)
    assert st.amt[0, 0] - st.cin[0] + st.cout[0] == pytest.approx(100.0)  # cash: 100 + in - out


def test_pay_cash_with_the_fees_kept_in_the_reserve() -> None:
    # as above with primary.fees_to_reserve: each claim takes 49 USD, the 1 USD fee stays
    spec = make(
        reserve=[
            {**CASH, "amount": 100.0},
            {
                "name": "bills",
                "kind": "tbills",
                "amount": 1000.0,
                "liquidity_per_day": 200.0,
                "liquidity_unit": "amount",
                "stressed_haircut": 0.01,
            },
            {**BARS, "amount": 0.0},
        ],
        primary={
            "redeem_fee": 0.02,
            "cash_redemption_share": 1.0,
            "fees_to_reserve": True,
            "cash_redemption_haircut": "reserve",
        },
        supply_tokens=10.0,
        opex_usd_per_year=1.0,
    )
    r, st = day1(spec)
    st.payable[:] = 30.0
    st.q_c[:], st.waiting[:] = 3.0, 3.0
    pay_cash(r, st)
    # raisable 100 + 200 * 0.99 = 298; opex 30 first; claims: min(3, 268 / 49) = 3 paid 49 each
    # need 30 + 147 = 177: all 100 of cash, then 77 USD from 77 / 0.99 bills
    sold_bills = 77.0 / 0.99
    np.testing.assert_allclose(st.amt[:, 0], [0.0, 1000.0 - sold_bills, 0.0], rtol=1e-12)
    np.testing.assert_allclose((st.q_c[0], st.sup[0], st.waiting[0], st.payable[0]), (0.0, 7.0, 0.0, 0.0), atol=1e-12)
    np.testing.assert_allclose((st.cin[0], st.cout[0], st.fsl[0]), (77.0, 177.0, 0.01 * sold_bills), rtol=1e-12)
    np.testing.assert_allclose((st.outflow[0], st.fee_cum[0]), (147.0, 3.0), rtol=1e-12)
    np.testing.assert_allclose(st.row[r.field["red_c"]], [3.0])
    # short of cash: 298 - 30 = 268 USD pays 268 / 49 claims
    r, st = day1(spec)
    st.payable[:], st.q_c[:] = 30.0, 10.0
    pay_cash(r, st)
    np.testing.assert_allclose(st.row[r.field["red_c"]], [268.0 / 49.0], rtol=1e-12)


@pytest.mark.parametrize("fees_to_reserve", [False, True])
def test_mint_and_fees(fees_to_reserve: bool) -> None:
    spec = make(
        primary={"mint_fee": 0.002, "fees_to_reserve": fees_to_reserve},
        redemption={"base_mint_rate_per_day": 0.01, "mint_drawdown_sensitivity": 2.0, "mint_premium_sensitivity": 0.5},
    )
    r, st = day1(spec, (PG, 0.9 * PG))
    nav = r.nav[1, 0]
    st.p_prev = arr(0.01)
    st.fees = arr(3.0)  # redeem fees of the day's gold redemptions
    mint(r, st)
    # share 0.01 * (1 - 2 * 0.1) + 0.5 * (0.01 - 0.002) = 0.008 + 0.004 = 0.012 of 1000 = 12 tokens
    np.testing.assert_allclose(st.row[r.field["mint"]], [12.0], rtol=1e-12)
    np.testing.assert_allclose((st.amt[1, 0], st.gin[0], st.sup[0]), (1012.0, 12.0, 1012.0), rtol=1e-12)
    fees = 3.0 + 0.002 * 12.0 * nav
    np.testing.assert_allclose(st.fee_cum, [fees], rtol=1e-12)
    # into the reserve's cash only when the spec says so; otherwise the issuer's revenue
    into_cash = fees if fees_to_reserve else 0.0
    np.testing.assert_allclose((st.amt[0, 0], st.cin[0]), (into_cash, into_cash), rtol=1e-12)


# --------------------------------------------------------------------------- secondary market, record


def test_secondary_market_pool_shock_backlog_and_floor() -> None:
    amm = {"kind": "constant_product", "reserve_tokens": 1000.0, "fee": 0.0}
    r, st = day1(make(secondary={"amm": amm, "queue_discount_weight": 0.5}))
    st.sells = arr(100.0)
    st.q_g[:], st.q_c[:] = 6.0, 4.0
    secondary_market(r, st)
    # constant product without fee: price after selling 100 of 1000 = (1000 / 1100)^2
    p = (1000.0 / 1100.0) ** 2 - 1.0 - 0.5 * 10.0 / 1000.0
    np.testing.assert_allclose(st.row[r.field["prem"]], [p], rtol=1e-12)
    np.testing.assert_allclose(st.row[r.field["bl"]], [10.0])
    # patient arbitrage floor: -(fee + wait * (0 + lag + 1 / coverage)), then sells beyond the
    # capacity of 50 slide it down the pool curve
    spec = make(
        primary={"redeem_fee": 0.005, "settlement_lag_days": 2},
        secondary={"amm": amm, "wait_cost_per_day": 0.001, "arbitrage_capacity_tokens_per_day": 50.0},
    )
    r, st = day1(spec)
    st.sells = arr(100.0)
    st.row[r.field["lcr"]] = 0.5
    secondary_market(r, st)
    floor = -(0.005 + 0.001 * (0 + 2 + 2.0)) + (1000.0 / 1050.0) ** 2 - 1.0
    np.testing.assert_allclose(st.row[r.field["prem"]], [floor], rtol=1e-12)


def test_secondary_market_steps_the_premium_process_with_the_shock() -> None:
    proc = {"mean": 0.0, "phi": 0.5, "sigma": 0.001, "band_lower": -0.003, "band_upper": 0.003}
    amm = {"kind": "constant_product", "reserve_tokens": 1000.0, "fee": 0.0}
    r, st = day1(make(secondary={"premium": proc, "amm": amm}), (PG, 0.9 * PG), rng=np.random.default_rng(5))
    st.sells, st.p_prev, st.p_anchor = arr(100.0), arr(0.004), arr(-0.002)  # the step starts from the anchor
    secondary_market(r, st)
    want = PremiumProcess(**proc).step(
        np.array([-0.002]),
        np.random.default_rng(5),
        drawdown=r.dd[1],
        market_open=np.array([True]),
        shock=ConstantProductPool(1000.0, 1000.0, fee=0.0).sell_pressure_impact(np.array([100.0])) - 1.0,
    )
    np.testing.assert_array_equal(st.row[r.field["prem"]], want)


def test_record_values_the_reserve_net_of_payables() -> None:
    # cash 100 USD; 10 g of bars (2 % haircut, half of redemptions in cash): 12 tokens at 50 USD
    spec = make(
        reserve=[{**CASH, "amount": 100.0}, {**BARS, "amount": 10.0, "stressed_haircut": 0.02}],
        primary={"cash_redemption_share": 0.5},
        supply_tokens=12.0,
    )
    r, st = day1(spec)
    st.payable[:] = 20.0
    st.demand, st.returned, st.acc_g, st.sells = arr(1.0), arr(2.0), arr(3.0), arr(4.0)
    record(r, st)
    F, row = r.field, st.block[1]
    pg = r.pg[1, 0]
    np.testing.assert_allclose(row[F["V"]], [100.0 + 10.0 * pg - 20.0], rtol=1e-13)
    np.testing.assert_allclose(row[F["B"]], [(100.0 + 10.0 * pg - 20.0) / (12.0 * pg)], rtol=1e-13)
    np.testing.assert_allclose(row[F["lam"]], [0.01 * 10.0 * pg / (12.0 * pg)], rtol=1e-13)  # h_eff = 0.02 * 0.5
    np.testing.assert_allclose((row[F["gold"]][0], row[F["cash"]][0], row[F["pay"]][0]), (10.0, 100.0, 20.0))
    np.testing.assert_allclose([row[F[k]][0] for k in ("dem", "ret", "acc_g", "sell")], [1.0, 2.0, 3.0, 4.0])
    # every token redeemed: no liabilities, backing inf and no run externality
    st.sup[:] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        record(r, st)
    assert np.isinf(row[F["B"]]).all() and row[F["lam"]][0] == 0.0


def test_daily_steps_in_order_and_run_is_start_day_then_the_steps() -> None:
    assert [f.__name__ for f in DAILY_STEPS] == [
        "demand",
        "gate",
        "whole_bars",
        "refused_sold",
        "settlement",
        "costs",
        "liquidity",
        "eligibility",
        "pay_gold",
        "pay_cash",
        "mint",
        "secondary_market",
        "record",
    ]
    spec = make(
        primary={"redeem_fee": 0.003},
        redemption={"base_rate_per_day": 0.02, "drawdown_sensitivity": 0.3},
        opex_usd_per_year=5000.0,
    )
    prices = np.array([[PG, 0.9 * PG, 1.1 * PG, PG]]) * TROY_OUNCE_G
    r = RunSetup.from_spec(spec, prices)
    st = DayState.initial(r)
    for t in range(1, 4):
        start_day(r, st, t)
        for step in DAILY_STEPS:
            step(r, st)
    out = ReserveBackedToken(spec).run(prices)
    np.testing.assert_array_equal(st.block[:, r.field["B"], 0], out.backing_ratio[0])
    np.testing.assert_array_equal(st.block[:, r.field["supply"], 0], out.supply_tokens[0])


# --------------------------------------------------------------------------- one whole day, fees both ways


@pytest.mark.parametrize("fees_to_reserve", [False, True])
def test_one_day_with_fees_to_the_issuer_or_to_the_reserve(fees_to_reserve: bool) -> None:
    # 1000 tokens of 1 g; reserve 500 USD cash then 1000 g of bars (all convertible, no
    # haircut); mint fee 1 %, redeem fee 2 %, half of redemptions in USD; gold 50 -> 40 USD/g.
    spec = make(
        reserve=[{**CASH, "amount": 500.0}, BARS],
        primary={
            "mint_fee": 0.01,
            "redeem_fee": 0.02,
            "cash_redemption_share": 0.5,
            "fees_to_reserve": fees_to_reserve,
        },
        redemption={"base_rate_per_day": 0.04, "base_mint_rate_per_day": 0.01},
    )
    out = ReserveBackedToken(spec).run(np.array([[50.0, 40.0]]) * TROY_OUNCE_G)
    # Day 1, NAV 40 USD: 0.04 * 1000 = 40 tokens asked and accepted, 20 in gold, 20 in USD;
    # 0.01 * 1000 = 10 tokens minted (10 g in).
    # Gold part: 20 g delivered (800 USD out of the reserve), the holders pay 0.02 * 20 * 40 = 16 USD.
    # Cash part: the holders receive 20 * 40 * 0.98 = 784 USD, the fee is 16 USD.
    #   fees to the issuer: the reserve pays 20 * 40 = 800 USD: 500 of cash, 300 USD = 7.5 g of bars;
    #   fees to the reserve: the reserve pays 784 USD: 500 of cash, 284 USD = 7.1 g of bars.
    # Mint fee 0.01 * 10 * 40 = 4 USD. Fees paid in from outside: 16 + 4 = 20 USD; all fees 36 USD.
    if fees_to_reserve:
        gold, cash, outflow, issuer, reserve_fees = 1000.0 - 20.0 - 7.1 + 10.0, 20.0, 800.0 + 784.0, 0.0, 36.0
    else:
        gold, cash, outflow, issuer, reserve_fees = 1000.0 - 20.0 - 7.5 + 10.0, 0.0, 800.0 + 800.0, 36.0, 0.0
    supply = 1000.0 - 40.0 + 10.0
    value = gold * 40.0 + cash  # 39300 USD (issuer) or 39336 USD (reserve)
    np.testing.assert_allclose(out.gold_reserve_g[0], [1000.0, gold], rtol=1e-12)
    np.testing.assert_allclose(out.cash_usd[0], [500.0, cash], atol=1e-9)
    np.testing.assert_allclose(out.supply_tokens[0], [1000.0, supply], rtol=1e-12)
    np.testing.assert_allclose(out.reserve_value_usd[0], [50_500.0, value], rtol=1e-12)
    np.testing.assert_allclose(out.backing_ratio[0], [50_500.0 / 50_000.0, value / (supply * 40.0)], rtol=1e-12)
    np.testing.assert_allclose(out.reserve_usd_per_token[0], [50.5, value / supply], rtol=1e-12)
    np.testing.assert_allclose(out.redemption_outflow_usd[0], [0.0, outflow], rtol=1e-12)
    np.testing.assert_allclose(out.issuer_fee_revenue_usd[0], [0.0, issuer], atol=1e-12)
    np.testing.assert_allclose(out.reserve_fee_income_usd[0], [0.0, reserve_fees], atol=1e-12)
    np.testing.assert_allclose(out.cum_redeemed_frac_of_day0_supply()[0], [0.0, 0.04], rtol=1e-12)
    # with the fees to the issuer the reserve's surplus over the liabilities (500 USD at day 0)
    # is unchanged by redemptions and mints at NAV; the fees kept in the reserve add 36 USD to it
    np.testing.assert_allclose(value - supply * 40.0, 500.0 + reserve_fees, rtol=1e-12)
    # cash ledger: cash_t - cash_0 = cash_in - cash_out
    np.testing.assert_allclose(out.cash_usd[0, 1] - 500.0, out.cash_in_usd[0, 1] - out.cash_out_usd[0, 1], atol=1e-9)
