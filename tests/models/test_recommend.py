"""Recommendations (models/recommend.py) and the redemption gate (models/token/reserve_backed.py) against
closed forms and brute-force re-runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.recommend import (
    PremiumNoise,
    SettingResult,
    cash_buffer_for_coverage,
    choose_setting,
    evaluate_settings,
    gate_never_binds,
    liquidity_stats,
    with_cash_buffer,
    with_primary,
)
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import load_token_spec, parse_token_spec, with_redemption_share
from models.units import TROY_OUNCE_G

SPECS = Path(__file__).resolve().parents[2] / "specs"
P0 = 2_000.0
GPT = TROY_OUNCE_G  # 1 oz per token: NAV = P0


def cash_only_spec(cash_usd: float, fee: float = 0.0, fees_to_reserve: bool = False) -> object:
    """A token whose gold cannot be sold (liquidity 0) and whose redemptions are all in USD,
    paid the same day (lag 0), every day open, no premium noise: only cash meets claims. The
    redeem fee goes to the issuer (each claim takes NAV from the reserve) unless
    ``fees_to_reserve`` (each claim takes NAV (1 - fee))."""
    return parse_token_spec(
        {
            "spec_version": 2,
            "kind": "gold_backed",
            "name": "cash-only test token",
            "symbol": "TST",
            "grams_per_token": GPT,
            "supply_tokens": 10_000.0,
            "reserve": [
                {
                    "name": "cash",
                    "kind": "usd_cash",
                    "amount": cash_usd,
                    "liquidity_per_day": 1.0,
                    "stressed_haircut": 0.0,
                },
                {
                    "name": "bars",
                    "kind": "allocated_gold",
                    "amount": 10_000.0 * GPT,
                    "liquidity_per_day": 0.0,
                    "stressed_haircut": 0.0,
                },
            ],
            "primary": {
                "mint_fee": 0.0,
                "redeem_fee": fee,
                "settlement_lag_days": 0,
                "market_hours": "always",
                "cash_redemption_share": 1.0,
                "fees_to_reserve": fees_to_reserve,
            },
            "secondary": {"wait_cost_per_day": None},
            "redemption": {"base_rate_per_day": 0.0},
        }
    )


def flat_gold(n_paths: int, days: int, p0: float = P0) -> np.ndarray:
    return np.full((n_paths, days + 1), p0)


# ---------------------------------------------------------------------------------------------
# redemption gate
# ---------------------------------------------------------------------------------------------
def test_gate_accepts_exactly_the_limit_and_refuses_the_rest():
    # requests r * free a day; the gate accepts L * supply_{t-1}; the refused part is sold and
    # requested again, so free = supply (nothing waits with lag 0 and enough cash)
    spec = with_redemption_share(cash_only_spec(cash_usd=1e12), 0.5, 10)
    r = spec.redemption.base_rate_per_day
    L = 0.02
    assert r > L
    out = ReserveBackedToken(with_primary(spec, redemption_limit_share_per_day=L)).run(flat_gold(1, 10))
    supply = out.supply_tokens[0]
    for t in range(1, 11):
        expect_req = r * supply[t - 1]
        assert out.redemption_demand_tokens[0, t] == pytest.approx(expect_req, rel=1e-12)
        assert out.accepted_tokens[0, t] == pytest.approx(L * supply[t - 1], rel=1e-12)
        assert out.returned_tokens[0, t] == pytest.approx(expect_req - L * supply[t - 1], rel=1e-12)
        assert out.market_sell_tokens[0, t] == pytest.approx(expect_req - L * supply[t - 1], rel=1e-12)
    # supply after 10 days of a binding gate: S0 (1 - L)^10
    assert supply[-1] == pytest.approx(10_000.0 * (1 - L) ** 10, rel=1e-12)


def test_gate_above_the_requests_changes_nothing():
    spec = with_redemption_share(cash_only_spec(cash_usd=1e12), 0.1, 10)
    free_run = ReserveBackedToken(spec).run(flat_gold(1, 10))
    gated = ReserveBackedToken(with_primary(spec, redemption_limit_share_per_day=0.5)).run(flat_gold(1, 10))
    np.testing.assert_array_equal(free_run.supply_tokens, gated.supply_tokens)
    np.testing.assert_array_equal(free_run.liquidity_coverage, gated.liquidity_coverage)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_gate_out_of_range_names_the_field(bad):
    with pytest.raises(ValueError, match="redemption_limit_share_per_day"):
        with_primary(cash_only_spec(1.0), redemption_limit_share_per_day=bad)


# ---------------------------------------------------------------------------------------------
# cash buffer
# ---------------------------------------------------------------------------------------------
def test_with_cash_buffer_raises_backing_by_buffer_over_liabilities():
    spec = cash_only_spec(cash_usd=0.0)
    b = 1_234_567.0
    base = ReserveBackedToken(spec).run(flat_gold(1, 1))
    buffered = ReserveBackedToken(with_cash_buffer(spec, b)).run(flat_gold(1, 1))
    liab = 10_000.0 * P0
    assert buffered.backing_ratio[0, 0] - base.backing_ratio[0, 0] == pytest.approx(b / liab, rel=1e-12)


@pytest.mark.parametrize(
    ("share", "horizon", "fee", "cash", "to_reserve"),
    [
        (0.2, 5, 0.0, 0.0, False),
        (0.3, 10, 0.0025, 1_000_000.0, False),
        (0.05, 1, 0.01, 0.0, False),
        (0.3, 10, 0.0025, 1_000_000.0, True),
    ],
)
def test_cash_buffer_equals_closed_form_when_only_cash_pays(share, horizon, fee, cash, to_reserve):
    # Gold illiquid, lag 0: on day t the claims r S0 (1-r)^(t-1) meet cash C + b less what was
    # paid before, so coverage_t >= 1 <=> C + b >= NAV k S0 (1 - (1 - r)^t), k the share of NAV a
    # claim takes from the reserve (1: the fee is paid to the issuer from it; 1 - fee: the fee
    # stays in the reserve); the worst day is the last, where 1 - (1 - r)^h = share
    # (with_redemption_share), hence b* = share * S0 * NAV * k - C.
    spec = with_redemption_share(cash_only_spec(cash, fee, to_reserve), share, horizon)
    res = cash_buffer_for_coverage(spec, flat_gold(3, horizon), horizon_days=horizon, confidence=0.99, tol_frac=1e-6)
    expect = share * 10_000.0 * P0 * ((1 - fee) if to_reserve else 1.0) - cash
    liab = 10_000.0 * P0
    assert res.reachable
    assert res.buffer_usd == pytest.approx(expect, abs=2e-6 * liab)
    assert res.buffer_usd >= expect - 1e-6  # the reported buffer meets the criterion (upper end)
    assert res.after["meets_target"] == 1.0 and res.before["meets_target"] == 0.0
    assert res.after["coverage_q"] >= 1.0
    # ITP never needs more than bisection's ceil(log2(1 / tol_frac)) steps plus one (Oliveira and
    # Takahashi 2020), besides the runs at 0 and at the upper end
    assert res.evaluations <= 2 + math.ceil(math.log2(1 / 1e-6)) + 1
    # and just below it the criterion fails
    below = liquidity_stats(
        ReserveBackedToken(with_cash_buffer(spec, expect * (1 - 1e-3))).run(flat_gold(3, horizon)), horizon, 0.99
    )
    assert below["meets_target"] == 0.0


def test_cash_buffer_closed_form_holds_on_a_calendar_with_weekends():
    # weekdays-only primary market on a calendar-day clock: weekend requests wait for Monday,
    # yet every claim is still met from cash only if C + b >= all claims of the horizon, so the
    # closed form b* = share * S0 * NAV - C (the fee is the issuer's) is unchanged; 8 trading days from a
    # Thursday span 12 calendar days with two weekends
    import pandas as pd

    from models.scenarios import calendar_day_paths

    share, fee = 0.25, 0.0025
    spec = with_redemption_share(with_primary(cash_only_spec(0.0, fee), market_hours="weekdays_only"), share, 12)
    gold, cal = calendar_day_paths(flat_gold(2, 8), "2026-08-13")
    assert len(cal) == 13 and (cal.day_of_week >= 5).sum() == 4
    res = cash_buffer_for_coverage(spec, gold, horizon_days=12, tol_frac=1e-6, calendar=cal)
    assert res.buffer_usd == pytest.approx(share * 10_000.0 * P0, abs=2e-6 * 10_000.0 * P0)
    # without a buffer the weekend pile-up shows on the Monday: claims of Sat, Sun and Mon wait
    out = ReserveBackedToken(spec).run(gold, calendar=cal)
    monday = int(np.flatnonzero(cal == pd.Timestamp("2026-08-17"))[0])
    assert (
        out.redemption_demand_tokens[0, monday - 2 : monday].sum() > 0
        and out.redeemed_cash_tokens[0, monday - 2 : monday].sum() == 0
    )


def test_cash_buffer_zero_when_already_covered_and_none_when_unreachable():
    covered = with_redemption_share(cash_only_spec(cash_usd=1e12), 0.2, 5)
    res = cash_buffer_for_coverage(covered, flat_gold(2, 5), horizon_days=5)
    assert res.buffer_usd == 0.0 and res.evaluations == 1
    # share 0.6 of S0 * NAV needs 0.6 * liabilities of cash: not reachable with at most 0.5
    hard = with_redemption_share(cash_only_spec(cash_usd=0.0), 0.6, 5)
    res = cash_buffer_for_coverage(hard, flat_gold(2, 5), horizon_days=5, max_buffer_frac=0.5)
    assert not res.reachable and res.buffer_usd is None and res.after["meets_target"] == 0.0


def test_cash_buffer_on_a_preset_matches_a_brute_force_grid():
    # XAUT-like preset under a 20 %-in-5-days wave on random gold paths: the bisection answer
    # lies between the last failing and the first meeting buffer of an independent grid of
    # re-runs, and the criterion is monotone on that grid (the bisection's assumption)
    spec = with_redemption_share(load_token_spec(SPECS / "xaut.toml"), 0.2, 5)
    rng = np.random.default_rng(7)
    r = rng.normal(0.0, 0.012, size=(400, 10))
    gold = 4_000.0 * np.exp(np.c_[np.zeros(400), np.cumsum(r, axis=1)])
    res = cash_buffer_for_coverage(spec, gold, horizon_days=10, seed=11, tol_frac=1e-4)
    liab = spec.supply_tokens * 4_000.0
    grid = np.linspace(0.0, 0.5, 51) * liab
    meets = [
        liquidity_stats(
            ReserveBackedToken(with_cash_buffer(spec, b)).run(gold, rng=np.random.default_rng(11)), 10, 0.99
        )["meets_target"]
        for b in grid
    ]
    assert all(a <= b for a, b in zip(meets, meets[1:])), "criterion not monotone in the buffer"
    first = int(np.argmax(np.array(meets) > 0))
    assert meets[first] == 1.0 and first > 0
    assert grid[first - 1] < res.buffer_usd <= grid[first] + 1e-4 * liab
    # the final bracket: its lower end fails, its upper end (the answer) meets, within the tolerance
    lo, hi = res.bracket_usd
    assert hi == res.buffer_usd and 0 < hi - lo <= 1e-4 * liab
    at_lo = liquidity_stats(
        ReserveBackedToken(with_cash_buffer(spec, lo)).run(gold, rng=np.random.default_rng(11)), 10, 0.99
    )
    assert at_lo["meets_target"] == 0.0 and res.after["meets_target"] == 1.0
    assert res.evaluations <= 2 + math.ceil(math.log2(1e4)) + 1  # ITP's worst case: bisection + 1
    # the caller's b = 0 run is taken as is: the same answer, one run less
    again = cash_buffer_for_coverage(spec, gold, horizon_days=10, seed=11, tol_frac=1e-4, before=res.before)
    assert again.buffer_usd == res.buffer_usd and again.evaluations == res.evaluations - 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 99}, "horizon_days"),
        ({"horizon_days": 5, "confidence": 1.0}, "confidence"),
        ({"horizon_days": 5, "max_buffer_frac": -1.0}, "max_buffer_frac"),
    ],
)
def test_cash_buffer_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cash_buffer_for_coverage(cash_only_spec(0.0), flat_gold(2, 5), **kwargs)


def test_buffer_and_primary_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="buffer_usd"):
        with_cash_buffer(cash_only_spec(0.0), -1.0)
    with pytest.raises(ValueError, match="unknown field"):
        with_primary(cash_only_spec(0.0), redeem_fees=0.01)
    with pytest.raises(ValueError, match="ReserveBackedTokenSpec"):
        with_cash_buffer({"symbol": "X"}, 1.0)


# ---------------------------------------------------------------------------------------------
# fee and gate grid
# ---------------------------------------------------------------------------------------------
def test_tighter_gate_never_lowers_coverage_and_refuses_more():
    spec = load_token_spec(SPECS / "xaut.toml")
    rng = np.random.default_rng(3)
    gold = 4_000.0 * np.exp(np.c_[np.zeros(300), np.cumsum(rng.normal(0, 0.012, (300, 10)), axis=1)])
    rows = evaluate_settings(
        spec,
        gold,
        redeem_fees=[0.0025],
        redemption_limits=[None, 0.1, 0.05, 0.02, 0.01],
        horizon_days=10,
        seed=5,
        transform=lambda s: with_redemption_share(s, 0.2, 10),
    )
    cov = [r.stats["coverage_q"] for r in rows]
    refused = [r.stats["refused_share_mean"] for r in rows]
    assert all(b >= a - 1e-12 for a, b in zip(cov, cov[1:]))
    assert all(b >= a - 1e-12 for a, b in zip(refused, refused[1:]))
    assert refused[-1] > refused[0]
    # the transform is applied after the setting: every row got the same wave
    assert {r.redeem_fee for r in rows} == {0.0025}


def test_gate_that_refuses_nothing_takes_the_ungated_run_and_others_are_re_run(monkeypatch):
    # a 20% wave over 10 days asks about 2% of the supply a day: gates of 10% and 5% refuse
    # nothing, 1% refuses; each row must equal a direct run of its own gated spec
    spec = load_token_spec(SPECS / "xaut.toml")
    rng = np.random.default_rng(3)
    gold = 4_000.0 * np.exp(np.c_[np.zeros(300), np.cumsum(rng.normal(0, 0.012, (300, 10)), axis=1)])

    def wave(s):
        return with_redemption_share(s, 0.2, 10)

    limits = [None, 0.1, 0.05, 0.01]
    direct, refused = {}, {}
    for lim in limits:
        out = ReserveBackedToken(wave(with_primary(spec, redemption_limit_share_per_day=lim))).run(
            gold, rng=np.random.default_rng(5)
        )
        direct[lim] = liquidity_stats(out, 10, 0.99)
        refused[lim] = float(out.returned_tokens.sum())
    assert refused[0.1] == refused[0.05] == refused[None] and refused[0.01] > refused[None]
    runs = []
    run = ReserveBackedToken.run
    monkeypatch.setattr(ReserveBackedToken, "run", lambda self, *a, **k: runs.append(1) or run(self, *a, **k))
    rows = evaluate_settings(
        spec, gold, redeem_fees=[0.0025], redemption_limits=limits, horizon_days=10, seed=5, transform=wave
    )
    assert [r.redemption_limit_share_per_day for r in rows] == limits
    for r in rows:
        assert r.stats == direct[r.redemption_limit_share_per_day]
    assert len(runs) == 2  # the ungated run and the 1% gate


def test_gate_never_binds_is_the_engines_comparison():
    spec = with_redemption_share(load_token_spec(SPECS / "xaut.toml"), 0.2, 10)
    rng = np.random.default_rng(4)
    gold = 4_000.0 * np.exp(np.c_[np.zeros(50), np.cumsum(rng.normal(0, 0.012, (50, 10)), axis=1)])
    out = ReserveBackedToken(spec).run(gold, rng=np.random.default_rng(1))
    # the largest day's request over the previous day's supply: a gate there refuses nothing,
    # one a little tighter refuses something (and the engine agrees)
    top = float(np.max(out.redemption_demand_tokens[:, 1:] / out.supply_tokens[:, :-1]))
    assert gate_never_binds(out, top * (1 + 1e-9)) and not gate_never_binds(out, top * (1 - 1e-6))
    tighter = ReserveBackedToken(with_primary(spec, redemption_limit_share_per_day=top * (1 - 1e-6))).run(
        gold, rng=np.random.default_rng(1)
    )
    assert tighter.returned_tokens.sum() > 0
    with pytest.raises(ValueError, match="limit"):
        gate_never_binds(out, 0.0)


def test_choose_setting_rule():
    def row(fee, lim, meets, refused=0.0, p1=0.0, depth=0.0, cov=1.0):
        return SettingResult(
            fee,
            lim,
            {
                "meets_target": meets,
                "refused_share_mean": refused,
                "p_abs_premium_gt_1pct": p1,
                "depeg_depth_q": depth,
                "coverage_q": cov,
            },
        )

    # meeting rows only; then no refusals beats a gate; then fewer days off the peg; then low fee
    rows = [
        row(0.0, None, 0.0, cov=0.8),
        row(0.0, 0.02, 1.0, refused=0.3),
        row(0.01, None, 1.0, p1=0.05),
        row(0.0025, None, 1.0, p1=0.01),
        row(0.001, None, 1.0, p1=0.01),
    ]
    best = choose_setting(rows)
    assert (best.redeem_fee, best.redemption_limit_share_per_day) == (0.001, None)
    # the peg is judged on the peg rows when given: there the 0.25% fee is better
    peg = [
        row(r.redeem_fee, r.redemption_limit_share_per_day, 1.0, p1=(0.0 if r.redeem_fee == 0.0025 else 0.02))
        for r in rows
    ]
    assert choose_setting(rows, peg).redeem_fee == 0.0025
    # nothing meets: highest coverage
    none_meet = [row(0.0, None, 0.0, cov=0.7), row(0.0, 0.02, 0.0, cov=0.9, refused=0.5)]
    assert choose_setting(none_meet).redemption_limit_share_per_day == 0.02
    # equal on every figure: the current setting is kept rather than the lowest fee
    ties = [row(0.0, None, 1.0), row(0.0025, None, 1.0), row(0.0025, 0.05, 1.0), row(0.01, None, 1.0)]
    assert (choose_setting(ties).redeem_fee, choose_setting(ties).redemption_limit_share_per_day) == (0.0, None)
    kept = choose_setting(ties, current=(0.0025, None))
    assert (kept.redeem_fee, kept.redemption_limit_share_per_day) == (0.0025, None)
    near = choose_setting([row(0.0, None, 1.0), row(0.005, None, 1.0)], current=(0.004, None))
    assert near.redeem_fee == 0.005
    # a peg gain below the resolution (0.5 pp of days, 0.1% of depth) does not move the setting;
    # one above it does
    small = [row(0.0025, None, 1.0, p1=0.0044, depth=0.0250), row(0.005, None, 1.0, p1=0.0036, depth=0.0245)]
    assert choose_setting(small, current=(0.0025, None)).redeem_fee == 0.0025
    large = [row(0.0025, None, 1.0, p1=0.0600), row(0.005, None, 1.0, p1=0.0100)]
    assert choose_setting(large, current=(0.0025, None)).redeem_fee == 0.005
    with pytest.raises(ValueError, match="peg_resolution"):
        choose_setting(large, peg_resolution=0.0)
    with pytest.raises(ValueError, match="^rows: expected at least one setting"):  # not peg_rows
        choose_setting([])
    with pytest.raises(ValueError, match="peg_rows"):
        choose_setting(rows, peg[:1])


def test_liquidity_stats_against_direct_computation():
    spec = load_token_spec(SPECS / "paxg.toml")
    rng = np.random.default_rng(1)
    gold = 4_000.0 * np.exp(np.c_[np.zeros(200), np.cumsum(rng.normal(0, 0.015, (200, 20)), axis=1)])
    out = ReserveBackedToken(with_redemption_share(spec, 0.3, 20)).run(gold, rng=np.random.default_rng(2))
    st = liquidity_stats(out, 20, 0.95)
    mins = np.sort(out.liquidity_coverage[:, 1:21].min(axis=1))
    assert st["coverage_q"] == mins[math.ceil(0.05 * 200) - 1]  # inverted-cdf quantile: the 10th smallest
    assert st["p_coverage_below_target"] == np.mean(mins < 1.0)
    assert st["p_abs_premium_gt_1pct"] == np.mean(np.abs(out.premium_frac[:, 1:]) > 0.01)


def test_a_supply_revision_is_not_an_outflow() -> None:
    """Supply 100, 100, 80 (a revision), 80, 70: with the revision removed the level 80 is
    carried back, so the worst one-day fall is 70/80 - 1 = -12.5%, not the -20% step."""
    from models.recommend import without_supply_revisions, worst_supply_falls

    s = pd.Series([100.0, 100.0, 80.0, 80.0, 70.0], index=pd.date_range("2020-07-01", periods=5))
    assert worst_supply_falls(s, (1,))["worst"]["1d"]["fall_frac"] == pytest.approx(-0.2, rel=1e-12)
    adjusted = without_supply_revisions(s, ["2020-07-03"])
    np.testing.assert_allclose(adjusted.to_numpy(), [80.0, 80.0, 80.0, 80.0, 70.0], rtol=1e-15)
    worst = worst_supply_falls(adjusted, (1,))["worst"]["1d"]
    assert worst == {"fall_frac": pytest.approx(-0.125, rel=1e-12), "end_date": "2020-07-05"}
    assert without_supply_revisions(s, ["2021-01-01"]).equals(s)  # a date outside the series changes nothing


def test_shared_noise_is_drawn_once_and_belongs_to_its_paths_and_seed(monkeypatch):
    spec = load_token_spec(SPECS / "xaut.toml")
    rng = np.random.default_rng(8)
    gold = 4_000.0 * np.exp(np.c_[np.zeros(200), np.cumsum(rng.normal(0, 0.012, (200, 10)), axis=1)])
    draws = []
    draw = ReserveBackedToken.innovations
    monkeypatch.setattr(ReserveBackedToken, "innovations", lambda self, *a, **k: draws.append(1) or draw(self, *a, **k))
    noise = PremiumNoise(gold, 5)
    grid = dict(redeem_fees=[0.0, 0.01], redemption_limits=[None, 0.01], horizon_days=10, seed=5, noise=noise)
    rows = evaluate_settings(spec, gold, **grid)
    buf = cash_buffer_for_coverage(spec, gold, horizon_days=10, seed=5, noise=noise)
    assert len(draws) == 1  # fees, gates and buffers share the draw
    # on a shorter horizon the innovations are another draw (fewer days from the same stream)
    cash_buffer_for_coverage(spec, gold, horizon_days=6, seed=5, noise=noise)
    assert len(draws) == 2
    # each row is the run of its own spec drawing its noise from the seed
    for r in rows:
        s = with_primary(spec, redeem_fee=r.redeem_fee, redemption_limit_share_per_day=r.redemption_limit_share_per_day)
        assert r.stats == liquidity_stats(ReserveBackedToken(s).run(gold, rng=np.random.default_rng(5)), 10, 0.99)
    assert buf.before == liquidity_stats(ReserveBackedToken(spec).run(gold, rng=np.random.default_rng(5)), 10, 0.99)
    with pytest.raises(ValueError, match="noise: drawn for other gold paths or another seed"):
        evaluate_settings(spec, gold, **{**grid, "seed": 6})
    with pytest.raises(ValueError, match="noise: drawn for other gold paths"):
        cash_buffer_for_coverage(spec, gold * 1.01, horizon_days=10, seed=5, noise=noise)
    with pytest.raises(ValueError, match="noise: expected a PremiumNoise"):
        cash_buffer_for_coverage(spec, gold, horizon_days=10, seed=5, noise=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed: expected an integer"):
        PremiumNoise(gold, 1.5)  # type: ignore[arg-type]
