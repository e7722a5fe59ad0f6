"""The per-path summaries of :func:`models.metrics.summarise_paths` against straightforward loops
written here from their definitions, on the repo's specs, GARCH-like Student-t gold paths on the
calendar-day clock (weekends: primary market closed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.metrics import gold_columns, summarise_paths
from models.scenarios import business_days, on_calendar_days, to_price_paths
from models.token.outcome import ReserveBackedOutcome
from models.token.protocol import build_token_model
from models.token.spec import load_token_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"
RESERVE_BACKED = ("gram", "paxg", "xaut", "dgx")


def garch_like_gold(n: int, days: int, seed: int) -> tuple[np.ndarray, np.ndarray, object]:
    """Gold paths with volatility clustering (a GARCH(1,1) recursion on Student-t(4) shocks, a
    falling drift so runs and queues happen), on calendar days: ``(prices, trading columns,
    calendar)``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(4, (n, days)) / math.sqrt(2.0)
    r = np.empty((n, days))
    var = np.full(n, 0.012**2)
    for d in range(days):
        r[:, d] = -0.0015 + np.sqrt(var) * z[:, d]
        var = 2e-6 + 0.12 * r[:, d] ** 2 + 0.85 * var
    prices, cal, trading = on_calendar_days(to_price_paths(4000.0, r), business_days("2026-08-17", days + 1))
    return prices, trading, cal


def fifo_wait_loop(cum_acc: np.ndarray, cum_paid: np.ndarray) -> np.ndarray:
    """``s(t) - t`` per row, scanning days ``s = t, t + 1, ...`` for the first whose cumulative
    payments reach the cumulative acceptance of day ``t`` (NaN if none), with the tolerance of
    :meth:`ReserveBackedOutcome.wait_days`: ``min(S, A) / c + r >= (a - 1e-9 c) / c + r``."""
    n, t1 = cum_acc.shape
    out = np.full((n, t1), np.nan)
    for r in range(n):
        total = cum_acc[r, -1]
        c = total * (1.0 + 1e-9) + 1.0
        for t in range(t1):
            target = (cum_acc[r, t] - 1e-9 * c) / c + r
            for s in range(t, t1):
                if min(cum_paid[r, s], total) / c + r >= target:
                    out[r, t] = s - t
                    break
    return out


@pytest.fixture(scope="module")
def paths() -> tuple[np.ndarray, np.ndarray, object]:
    return garch_like_gold(160, 250, seed=11)


@pytest.mark.parametrize("name", RESERVE_BACKED)
def test_wait_days_equal_a_scan_over_the_definition(name: str, paths: tuple[np.ndarray, np.ndarray, object]) -> None:
    """Every day's wait (and the NaN of the waves unpaid at the horizon) equals a day-by-day scan
    of the FIFO definition over the two queues (the later of gold and cash), and the summary's
    longest met wait is the row maximum of those waits."""
    prices, trading, cal = paths
    o = build_token_model(load_token_spec(SPECS / f"{name}.toml")).run(prices, calendar=cal, rng=3)
    assert isinstance(o, ReserveBackedOutcome)
    acc_cash = (o.redemption_demand_tokens - o.returned_tokens) - o.accepted_gold_tokens
    gold = fifo_wait_loop(np.cumsum(o.accepted_gold_tokens, axis=1), np.cumsum(o.redeemed_gold_tokens, axis=1))
    cash = fifo_wait_loop(np.cumsum(acc_cash, axis=1), np.cumsum(o.redeemed_cash_tokens, axis=1))
    want = np.where(np.isnan(gold) | np.isnan(cash), np.nan, np.fmax(gold, cash))
    got = o.wait_days()
    np.testing.assert_array_equal(got, want)
    assert (want > 0).sum() > 100 and np.isnan(want).sum() > 100  # waves wait, and some are unpaid
    table = summarise_paths(o, prices, (1, 10, 30), trading_columns=trading)
    met = [max((w for w in row if not np.isnan(w)), default=np.nan) for row in want]
    np.testing.assert_array_equal(table["redemption_wait_max_days"].to_numpy(), np.array(met))


def max_drawdown_loop(values: np.ndarray) -> np.ndarray:
    """Per row: the running peak over the non-NaN values so far; each day with a positive peak
    and a value gives a fall ``1 - v / peak``; the largest fall floored at 0 (NaN when no fall is
    finite)."""
    out = np.full(values.shape[0], np.nan)
    for r, row in enumerate(values):
        peak = math.nan
        falls = []
        for v in row:
            if not math.isnan(v) and (math.isnan(peak) or v > peak):
                peak = v
            if peak > 0 and not math.isnan(v):
                falls.append(1.0 - v / peak)
        if any(math.isfinite(f) for f in falls):
            out[r] = max(max(falls), 0.0)
    return out


@pytest.mark.parametrize("name", [*RESERVE_BACKED, "gusd_cdp"])
def test_drawdown_and_loss_columns_equal_loops(name: str, paths: tuple[np.ndarray, np.ndarray, object]) -> None:
    """The peak-to-trough columns equal :func:`max_drawdown_loop` of gold, holder value and reserve
    per token (NaN days with no token outstanding skipped), and the reserve-per-token losses equal
    ``1 - v_h / v_0`` read at the horizons' trading columns."""
    prices, trading, cal = paths
    o = build_token_model(load_token_spec(SPECS / f"{name}.toml")).run(prices, calendar=cal, rng=3)
    table = summarise_paths(o, prices, (1, 10, 30), trading_columns=trading)
    rpt = o.reserve_usd_per_token
    for col, values in (
        ("gold_max_drawdown", prices),
        ("holder_max_drawdown_frac", o.holder_value_usd_per_token),
        ("reserve_per_token_max_drawdown_frac", rpt),
    ):
        want = max_drawdown_loop(values)
        if name != "gusd_cdp" or col == "gold_max_drawdown":  # a CDP coin's value per coin stays at par here
            assert (want > 0.05).any(), col
        np.testing.assert_array_equal(table[col].to_numpy(), want, err_msg=col)
    for h, c in ((1, trading[1]), (10, trading[10]), (30, trading[30]), ("end", -1)):
        key = f"reserve_per_token_loss_frac_{h}d" if h != "end" else "reserve_per_token_loss_frac_end"
        want = np.array([1.0 - row[c] / row[0] for row in rpt])
        np.testing.assert_array_equal(table[key].to_numpy(), want, err_msg=key)


def test_max_drawdown_skips_nan_and_gives_nan_without_a_finite_fall() -> None:
    """Hand cases: a NaN day is neither peak nor trough, a row of NaN (or with no positive peak)
    gives NaN, a rise only gives 0, a fall to 0 gives 1."""
    from models.metrics import max_drawdown_frac

    v = np.array(
        [
            [10.0, np.nan, 5.0, 12.0, 6.0],
            [np.nan, np.nan, np.nan, np.nan, np.nan],
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [4.0, 0.0, np.nan, 1.0, 2.0],
            [0.0, 0.0, -1.0, np.nan, 0.0],
        ]
    )
    np.testing.assert_array_equal(max_drawdown_frac(v), [0.5, np.nan, 0.0, 1.0, np.nan])
    np.testing.assert_array_equal(max_drawdown_frac(v), max_drawdown_loop(v))


@pytest.mark.parametrize("name", RESERVE_BACKED)
def test_redeemed_share_and_peg_columns_equal_loops(name: str, paths: tuple[np.ndarray, np.ndarray, object]) -> None:
    """The cumulative share of the day-0 supply redeemed (gold plus cash, summed day by day) at the
    horizons and the end, and the peg columns (worst |premium|, longest run beyond 1%, days from
    the worst day back within 1%, share of days 1..H beyond 1% and 5%) equal loops over each path."""
    prices, trading, cal = paths
    o = build_token_model(load_token_spec(SPECS / f"{name}.toml")).run(prices, calendar=cal, rng=3)
    assert isinstance(o, ReserveBackedOutcome)
    table = summarise_paths(o, prices, (1, 10, 30), trading_columns=trading)
    for h, c in ((1, trading[1]), (10, trading[10]), (30, trading[30]), ("end", prices.shape[1] - 1)):
        want = []
        for g, k, s0 in zip(o.redeemed_gold_tokens, o.redeemed_cash_tokens, o.supply_tokens[:, 0], strict=True):
            total = g[0] + k[0]
            for t in range(1, c + 1):
                total += g[t] + k[t]
            want.append(total / s0)
        key = f"redeemed_frac_of_day0_supply_{h}d" if h != "end" else "redeemed_frac_of_day0_supply_end"
        assert h != "end" or max(want) > 0.01  # redemptions happen (paid after the settlement lag)
        np.testing.assert_array_equal(table[key].to_numpy(), np.array(want), err_msg=key)
    depth, longest, recovery, share1, share5 = [], [], [], [], []
    for p in o.premium_frac:
        a = [abs(x) for x in p]
        worst = a.index(max(a))
        depth.append(a[worst])
        run = best = 0
        for x in a:
            run = run + 1 if x > 0.01 else 0
            best = max(best, run)
        longest.append(float(best))
        back = [t for t in range(worst, len(a)) if a[t] <= 0.01]
        recovery.append(float(back[0] - worst) if back else np.nan)
        share1.append(sum(x > 0.01 for x in a[1:]) / (len(a) - 1))
        share5.append(sum(x > 0.05 for x in a[1:]) / (len(a) - 1))
    for key, want in (
        ("depeg_depth_frac", depth),
        ("depeg_longest_days_beyond_1pct", longest),
        ("depeg_recovery_days_1pct", recovery),
        ("share_days_abs_premium_gt_1pct", share1),
        ("share_days_abs_premium_gt_5pct", share5),
    ):
        np.testing.assert_array_equal(table[key].to_numpy(), np.array(want), err_msg=key)
    assert max(longest) > 1 and np.isnan(recovery).sum() < len(recovery) and max(share1) > 0


def test_gold_columns_computed_once_give_every_token_the_same_table(
    paths: tuple[np.ndarray, np.ndarray, object],
) -> None:
    """The gold columns passed in (computed once for all tokens on the paths) give each token the
    table it gets when they are computed inside, to the bit and in the same column order; their
    values are the log returns read at the trading columns (NaN past the last trading day) and
    the gold price's peak-to-trough fall computed here by a loop; a gold summary of other paths'
    length is refused."""
    prices, trading, cal = paths
    horizons = (1, 10, 30, 400)  # 400 trading days: past the window
    gold = gold_columns(prices, horizons, trading_columns=trading)
    np.testing.assert_array_equal(gold["gold_log_return_10d"], np.log(prices[:, trading[10]] / prices[:, 0]))
    assert np.isnan(gold["gold_log_return_400d"]).all()
    falls = np.array([max(1.0 - p / max(row[: t + 1]) for t, p in enumerate(row)) for row in prices])
    np.testing.assert_allclose(gold["gold_max_drawdown"], falls, rtol=0, atol=1e-15)
    for name in (*RESERVE_BACKED, "gusd_cdp"):
        o = build_token_model(load_token_spec(SPECS / f"{name}.toml")).run(prices, calendar=cal, rng=3)
        alone = summarise_paths(o, prices, horizons, trading_columns=trading)
        shared = summarise_paths(o, prices, horizons, trading_columns=trading, gold_summary=gold)
        assert list(shared.columns) == list(alone.columns)
        np.testing.assert_array_equal(shared.to_numpy(dtype=float), alone.to_numpy(dtype=float))
    marked = np.full(len(prices), -1.0)  # no drawdown is negative: shows the given column is read
    given = summarise_paths(
        o, prices, horizons, trading_columns=trading, gold_summary={**gold, "gold_max_drawdown": marked}
    )
    np.testing.assert_array_equal(given["gold_max_drawdown"].to_numpy(), marked)
    with pytest.raises(ValueError, match="gold_summary"):
        summarise_paths(o, prices[:-1], horizons, trading_columns=trading, gold_summary=gold)
