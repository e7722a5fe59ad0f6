"""The per-path and Monte Carlo figures of models.metrics against hand-computed cases: reserve value
per token outstanding, the redemption outflow, the fees, the whole-window (end and peak-to-trough)
figures, and the worst-scenario ranking; the peak-to-trough of a replay path against numpy's
running maximum on the outcome arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import PROJECT_ROOT
from models.metrics import (
    distribution_metrics,
    max_drawdown_frac,
    path_metrics,
    scenario_table_row,
    summarise_paths,
    worst_scenario,
)
from models.scenarios import historical_replay, to_price_paths
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import ReserveBackedTokenSpec, load_token_spec, parse_token_spec
from models.units import TROY_OUNCE_G

PRICES_G = (50.0, 40.0, 45.0, 30.0, 35.0)  # USD per gram, days 0..4


def hand_token(fees_to_reserve: bool = False) -> ReserveBackedTokenSpec:
    """1000 tokens of 1 g backed by 1000 g of bars and 500 USD of cash (no haircut, no opex,
    always open, no premium); each day 10 % of the supply is redeemed in gold (paid the same
    day) and 2 % of the opening supply is minted; mint fee 1 %, redeem fee 2 %."""
    return parse_token_spec(
        {
            "spec_version": 2,
            "kind": "gold_backed",
            "name": "hand",
            "symbol": "H",
            "grams_per_token": 1.0,
            "supply_tokens": 1000.0,
            "reserve": [
                {
                    "name": "cash",
                    "kind": "usd_cash",
                    "amount": 500.0,
                    "liquidity_per_day": 1.0,
                    "stressed_haircut": 0.0,
                },
                {
                    "name": "bars",
                    "kind": "allocated_gold",
                    "amount": 1000.0,
                    "liquidity_per_day": 1.0,
                    "stressed_haircut": 0.0,
                },
            ],
            "primary": {
                "mint_fee": 0.01,
                "redeem_fee": 0.02,
                "market_hours": "always",
                "fees_to_reserve": fees_to_reserve,
            },
            "secondary": {"wait_cost_per_day": None},
            "redemption": {"base_rate_per_day": 0.1, "base_mint_rate_per_day": 0.02},
        }
    )


def hand_paths(n: int = 1) -> np.ndarray:
    return np.tile(np.array(PRICES_G) * TROY_OUNCE_G, (n, 1))


# Worked by hand. Each day: redeemed r = 0.1 S, minted m = 0.02 S (S the opening supply), so
# S' = 0.92 S and the grams stay equal to the supply (1 g per token in, 1 g per token out):
SUPPLY = (1000.0, 920.0, 846.4, 778.688, 716.39296)
REDEEMED = (0.0, 100.0, 92.0, 84.64, 77.8688)
MINTED = (0.0, 20.0, 18.4, 16.928, 15.57376)
# redemption outflow r * P (gold delivered at the day's price): 4000, 4140, 2539.2, 2725.408
OUTFLOW_CUM = (0.0, 4000.0, 8140.0, 10679.2, 13404.608)
# fees: redeem 0.02 r P (80, 82.8, 50.784, 54.50816) + mint 0.01 m P (8, 8.28, 5.0784, 5.450816)
FEES_CUM = (0.0, 88.0, 179.08, 234.9424, 294.901376)


def test_hand_example_reserve_per_token_outflow_and_fees_by_hand() -> None:
    out = ReserveBackedToken(hand_token()).run(hand_paths())
    np.testing.assert_allclose(out.supply_tokens[0], SUPPLY, rtol=1e-12)
    np.testing.assert_allclose(out.redeemed_tokens[0], REDEEMED, rtol=1e-12)
    np.testing.assert_allclose(out.minted_tokens[0], MINTED, rtol=1e-12)
    # fees to the issuer: the reserve is the grams of the supply plus the 500 USD of cash, so
    # the reserve per token outstanding is P + 500 / S
    rpt = [p + 500.0 / s for p, s in zip(PRICES_G, SUPPLY)]  # 50.5, 40.5435, 45.5907, 30.6421, 35.6979
    np.testing.assert_allclose(out.reserve_usd_per_token[0], rpt, rtol=1e-12)
    np.testing.assert_allclose(out.redemption_outflow_usd[0], OUTFLOW_CUM, rtol=1e-12)
    np.testing.assert_allclose(out.issuer_fee_revenue_usd[0], FEES_CUM, rtol=1e-12)
    np.testing.assert_array_equal(out.reserve_fee_income_usd[0], 0.0)

    row = summarise_paths(out, hand_paths(), (1, 3)).iloc[0]
    assert row["reserve_usd_per_token_d0"] == pytest.approx(50.5, rel=1e-12)
    assert row["reserve_usd_per_token_1d"] == pytest.approx(40.0 + 500.0 / 920.0, rel=1e-12)
    assert row["reserve_per_token_loss_frac_3d"] == pytest.approx(1.0 - (30.0 + 500.0 / 778.688) / 50.5, rel=1e-12)
    assert row["reserve_usd_per_token_end"] == pytest.approx(35.0 + 500.0 / 716.39296, rel=1e-12)
    assert row["reserve_per_token_loss_frac_end"] == pytest.approx(1.0 - (35.0 + 500.0 / 716.39296) / 50.5, rel=1e-12)
    # peak 50.5 at day 0, trough 30.6421 at day 3
    assert row["reserve_per_token_max_drawdown_frac"] == pytest.approx(1.0 - (30.0 + 500.0 / 778.688) / 50.5, rel=1e-12)
    # holder value = NAV (backing above 1, no premium): 50, 40, 45, 30, 35
    assert row["holder_loss_frac_end"] == pytest.approx(0.3, rel=1e-12)
    assert row["holder_max_drawdown_frac"] == pytest.approx(0.4, rel=1e-12)  # 50 -> 30
    # backing 1 + 500 / (S P): 1.01 at day 0, then higher (the fixed cash against a smaller supply),
    # 1 + 500 / (778.688 * 30) = 1.0214 on day 3
    assert row["backing_ratio_min"] == pytest.approx(1.01, rel=1e-12)
    np.testing.assert_allclose(out.backing_ratio[0, 3], 1.0 + 500.0 / (778.688 * 30.0), rtol=1e-12)
    # redemption outflow: 100 + 92 + 84.64 of 1000 tokens by day 3; 13,404.608 USD of the day-0
    # liabilities 1000 * 50 = 50,000 USD by the end
    assert row["redeemed_frac_of_day0_supply_1d"] == pytest.approx(0.1, rel=1e-12)
    assert row["redeemed_frac_of_day0_supply_3d"] == pytest.approx(0.27664, rel=1e-12)
    assert row["redeemed_frac_of_day0_supply_end"] == pytest.approx(0.3545088, rel=1e-12)
    assert row["redemption_outflow_usd_3d"] == pytest.approx(10679.2, rel=1e-12)
    assert row["redemption_outflow_usd_end"] == pytest.approx(13404.608, rel=1e-12)
    assert row["redemption_outflow_frac_of_day0_liabilities_end"] == pytest.approx(13404.608 / 50_000.0, rel=1e-12)
    assert row["issuer_fee_revenue_usd_end"] == pytest.approx(294.901376, rel=1e-12)
    assert row["reserve_fee_income_usd_end"] == 0.0
    # the whole reserve shrinks with the redemptions; that is not a loss per token
    assert row["reserve_value_usd_d0"] == pytest.approx(50_500.0, rel=1e-12)

    m = path_metrics(row, (1, 3))
    for key in (
        "reserve_per_token_loss_frac_3d",
        "reserve_per_token_max_drawdown_frac",
        "holder_max_drawdown_frac",
        "redeemed_frac_of_day0_supply_3d",
        "redemption_outflow_usd_end",
        "issuer_fee_revenue_usd_end",
    ):
        assert m[key] == pytest.approx(float(row[key]), rel=1e-15), key
    assert m["horizon_days"] == 4 and not any(k.startswith("reserve_loss_frac") for k in m)


def test_hand_example_with_the_fees_kept_in_the_reserve() -> None:
    """Same flows; the fees are paid into the reserve's cash: reserve per token P + (500 + fees) / S."""
    out = ReserveBackedToken(hand_token(fees_to_reserve=True)).run(hand_paths())
    rpt = [p + (500.0 + f) / s for p, s, f in zip(PRICES_G, SUPPLY, FEES_CUM)]
    np.testing.assert_allclose(out.reserve_usd_per_token[0], rpt, rtol=1e-12)
    np.testing.assert_allclose(out.reserve_fee_income_usd[0], FEES_CUM, rtol=1e-12)
    np.testing.assert_array_equal(out.issuer_fee_revenue_usd[0], 0.0)
    np.testing.assert_allclose(out.redemption_outflow_usd[0], OUTFLOW_CUM, rtol=1e-12)  # gold only: same


def test_max_drawdown_frac_by_hand() -> None:
    v = np.array(
        [
            [100.0, 120.0, 90.0, 130.0, 117.0],  # 120 -> 90: 25 %
            [100.0, 101.0, 102.0, 103.0, 104.0],  # never falls
            [10.0, np.nan, 5.0, np.nan, 8.0],  # days without tokens skipped: 10 -> 5
            [np.nan, np.nan, np.nan, np.nan, np.nan],
            [4.0, 0.0, 1.0, 2.0, 3.0],  # to nothing: 100 %
        ]
    )
    got = max_drawdown_frac(v)
    np.testing.assert_allclose(got[:3], [0.25, 0.0, 0.5], rtol=1e-15)
    assert math.isnan(got[3]) and got[4] == 1.0
    with pytest.raises(ValueError, match="2-D"):
        max_drawdown_frac(np.ones(3))


def test_replay_peak_to_trough_equals_numpy_running_maximum_on_the_outcome() -> None:
    """A replay window with a rally and a fall, through the PAXG-like preset (runs, premium, bars,
    fees): the summary's peak-to-trough of holder value and of reserve per token is
    ``max(1 - v / np.maximum.accumulate(v))`` on the outcome arrays."""
    days = pd.bdate_range("2011-01-03", periods=400, tz="UTC")
    t = np.arange(days.size)
    rng = np.random.default_rng(5)
    r = 0.004 * np.sin(t / 40.0) - 0.0015 + 0.012 * rng.standard_t(4, t.size)
    returns = pd.Series(r, index=days)
    prices = to_price_paths(4000.0, historical_replay(returns, "2011-03-01", "2012-04-30"))
    spec = load_token_spec(PROJECT_ROOT / "specs" / "paxg.toml")
    out = ReserveBackedToken(spec).run(prices, rng=3)
    row = summarise_paths(out, prices, (1, 10, 30)).iloc[0]
    hv = out.holder_value_usd_per_token[0]
    rpt = out.reserve_value_usd[0] / out.supply_tokens[0]
    for v, col in ((hv, "holder_max_drawdown_frac"), (rpt, "reserve_per_token_max_drawdown_frac")):
        independent = float(np.max(1.0 - v / np.maximum.accumulate(v)))
        assert independent > 0.05  # the window has a real fall
        assert row[col] == pytest.approx(independent, rel=1e-12, abs=1e-15), col
    g = prices[0]
    assert row["gold_max_drawdown"] == pytest.approx(float(np.max(1.0 - g / np.maximum.accumulate(g))), rel=1e-12)
    assert row["holder_loss_frac_end"] == pytest.approx(1.0 - hv[-1] / hv[0], rel=1e-12)
    assert row["backing_ratio_min"] == pytest.approx(out.backing_ratio[0].min(), rel=1e-15)


def acerbi_tasche(losses: np.ndarray, level: float) -> tuple[float, float]:
    """VaR = l_(c), c = ceil(n level); ES = (sum_{j>c} l_(j) + (c - n level) l_(c)) / (n (1 - level))."""
    x = np.sort(losses)
    n = x.size
    c = math.ceil(round(n * level, 9))
    return float(x[c - 1]), float((x[c:].sum() + (c - n * level) * x[c - 1]) / (n * (1 - level)))


def test_monte_carlo_reserve_per_token_var_es_outflow_and_fees() -> None:
    """Forty gold paths through the hand token: the reserve-per-token VaR/ES at a horizon, at the
    end and of the peak-to-trough, and the redemption and fee figures, against numpy."""
    rng = np.random.default_rng(8)
    paths = to_price_paths(50.0 * TROY_OUNCE_G, 0.05 * rng.standard_normal((40, 4)))
    out = ReserveBackedToken(hand_token()).run(paths)
    g = summarise_paths(out, paths, (1, 3))
    m = distribution_metrics(g, (0.9, 0.95), (1, 3))
    rpt = out.reserve_value_usd / out.supply_tokens
    loss3 = 1.0 - rpt[:, 3] / rpt[:, 0]
    loss_end = 1.0 - rpt[:, -1] / rpt[:, 0]
    dd = np.max(1.0 - rpt / np.maximum.accumulate(rpt, axis=1), axis=1)
    for level, tag in ((0.9, "90"), (0.95, "95")):
        for got, losses in (("3d", loss3), ("end", loss_end)):
            var, es = acerbi_tasche(losses, level)
            assert m[f"reserve_per_token_var_{tag}_{got}_frac"] == pytest.approx(var, rel=1e-12, abs=1e-15)
            assert m[f"reserve_per_token_es_{tag}_{got}_frac"] == pytest.approx(es, rel=1e-12, abs=1e-15)
            assert m[f"reserve_per_token_var_{tag}_{got}_usd_per_token"] == pytest.approx(var * 50.5, rel=1e-12)
        var, es = acerbi_tasche(dd, level)
        assert m[f"reserve_per_token_max_drawdown_var_{tag}_frac"] == pytest.approx(var, rel=1e-12, abs=1e-15)
        assert m[f"reserve_per_token_max_drawdown_es_{tag}_frac"] == pytest.approx(es, rel=1e-12, abs=1e-15)
    # the redemption flows do not depend on the gold path here: 10 % a day of the supply
    assert m["redeemed_frac_of_day0_supply_end_mean"] == pytest.approx(0.3545088, rel=1e-12)
    assert m["redeemed_frac_of_day0_supply_1d_q99"] == pytest.approx(0.1, rel=1e-12)
    outflow = (np.array(REDEEMED)[None, :] * paths / TROY_OUNCE_G).sum(axis=1)
    assert m["redemption_outflow_usd_end_mean"] == pytest.approx(outflow.mean(), rel=1e-12)
    fees = ((0.02 * np.array(REDEEMED) + 0.01 * np.array(MINTED))[None, :] * paths / TROY_OUNCE_G).sum(axis=1)
    assert m["issuer_fee_revenue_usd_end_mean"] == pytest.approx(fees.mean(), rel=1e-12)
    assert m["reserve_fee_income_usd_end_mean"] == 0.0
    assert m["reserve_usd_per_token_d0"] == pytest.approx(50.5) and m["horizon_days"] == 4
    assert not any(k.startswith("reserve_value_var") or k.startswith("reserve_value_es") for k in m)


def scen(kind: str, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, **kw}


def test_worst_scenario_ranks_single_paths_by_peak_to_trough_and_reports_the_mc_tail_apart() -> None:
    scenarios = {
        "mc_champion": scen(
            "monte_carlo", horizon_days=250, holder_value_max_drawdown_es_99_frac=0.7, holder_value_es_99_30d_frac=0.9
        ),
        "hist_1980": scen("historical", horizon_days=604, holder_max_drawdown_frac=0.66, holder_loss_frac_30d=0.1),
        "hist_2013": scen("historical", horizon_days=40, holder_max_drawdown_frac=float("nan")),
        "shock_-40pct": scen("shock", horizon_days=30, holder_max_drawdown_frac=0.40, holder_loss_frac_30d=0.4),
    }
    w = worst_scenario(scenarios, (0.95, 0.99))
    # the 1980 episode, not the larger 30-day shock loss nor the Monte Carlo ES
    assert (w["by"], w["scenario"], w["value"], w["window_days"]) == (
        "holder_max_drawdown_frac",
        "hist_1980",
        0.66,
        604,
    )
    assert [r["scenario"] for r in w["ranking"]] == ["hist_1980", "shock_-40pct", "hist_2013"]  # NaN last
    assert w["monte_carlo_tail"] == {
        "scenario": "mc_champion",
        "figure": "holder_value_max_drawdown_es_99_frac",
        "statistic": w["monte_carlo_tail"]["statistic"],
        "horizon_days": 250,
        "value": 0.7,
    }
    assert "99%" in w["monte_carlo_tail"]["statistic"]
    none = worst_scenario({"mc_champion": scenarios["mc_champion"]}, (0.99,))
    assert none["scenario"] is None and math.isnan(none["value"]) and none["ranking"] == []


def test_scenario_table_rows_use_es_for_the_monte_carlo_and_realised_values_for_single_paths() -> None:
    mc = {
        "kind": "monte_carlo",
        "horizon_days": 250,
        "holder_value_es_99_end_frac": 0.5,
        "holder_value_max_drawdown_es_99_frac": 0.6,
        "reserve_per_token_es_99_end_frac": 0.45,
        "reserve_per_token_max_drawdown_es_99_frac": 0.55,
        "backing_ratio_min_q0.1": 0.98,
    }
    assert scenario_table_row(mc, (0.95, 0.99)) == {
        "kind": "monte_carlo",
        "window_days": 250,
        "holder_loss_frac_end": 0.5,
        "holder_max_drawdown_frac": 0.6,
        "reserve_per_token_loss_frac_end": 0.45,
        "reserve_per_token_max_drawdown_frac": 0.55,
        "backing_ratio_min": 0.98,
    }
    one = {"kind": "shock", "horizon_days": 30, "holder_loss_frac_end": 0.2, "holder_max_drawdown_frac": 0.2}
    row = scenario_table_row(one, (0.99,))
    assert row["window_days"] == 30 and row["holder_max_drawdown_frac"] == 0.2 and row["backing_ratio_min"] is None
