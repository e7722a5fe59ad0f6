"""The per-path summaries of :func:`models.metrics.summarise_paths` against straightforward loops
written here from their definitions, on the repo's specs, GARCH-like Student-t gold paths on the
calendar-day clock (weekends: primary market closed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.metrics import summarise_paths
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
