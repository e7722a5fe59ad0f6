"""Scenario generators vs exact expectations, and Monte Carlo reproducibility."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.scenarios import (
    BLOCK_PATHS,
    historical_replay,
    instant_shock,
    monte_carlo_chunks,
    to_price_paths,
)


@pytest.fixture
def returns() -> pd.Series:
    """Business days 2020-01-01 .. 2020-03-31 (UTC); the value encodes the date: 203 = Feb 3
    (exact integers, so a selection can be compared exactly)."""
    idx = pd.bdate_range("2020-01-01", "2020-03-31", tz="UTC")
    values = np.array([d.month * 100.0 + d.day for d in idx])
    return pd.Series(values, index=idx, name="log_return")


# --------------------------------------------------------------------------- historical replay


def test_replay_selects_inclusive_window(returns: pd.Series) -> None:
    out = historical_replay(returns, "2020-02-03", "2020-02-07")  # Monday .. Friday
    np.testing.assert_array_equal(out, [[203.0, 204.0, 205.0, 206.0, 207.0]])
    assert out.shape == (1, 5)
    # a window with weekend edges keeps the business days inside it
    out2 = historical_replay(returns, pd.Timestamp("2020-02-01"), "2020-02-09")
    np.testing.assert_array_equal(out2, out)
    # whole data range
    assert historical_replay(returns, "2020-01-01", "2020-03-31").shape == (1, len(returns))


def test_replay_accepts_naive_and_timestamped_series(returns: pd.Series) -> None:
    naive = returns.copy()
    naive.index = naive.index.tz_localize(None) + pd.Timedelta(hours=16)  # time of day ignored
    np.testing.assert_array_equal(historical_replay(naive, "2020-03-02", "2020-03-03"), [[302.0, 303.0]])
    np.testing.assert_array_equal(
        historical_replay(returns, pd.Timestamp("2020-03-02", tz="UTC"), "2020-03-03"),
        [[302.0, 303.0]],
    )


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        ("2019-12-20", "2020-01-10", "outside the data"),
        ("2020-03-20", "2020-04-10", "outside the data"),
        ("2021-01-01", "2021-02-01", "outside the data"),
        ("2020-02-08", "2020-02-09", "holds no returns"),  # a weekend
        ("2020-02-10", "2020-02-01", "start is after end"),
    ],
)
def test_replay_rejects_bad_windows(returns: pd.Series, start: str, end: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as exc:
        historical_replay(returns, start, end)
    assert "window" in str(exc.value)


def test_replay_rejects_bad_inputs(returns: pd.Series) -> None:
    with pytest.raises(ValueError, match="returns"):
        historical_replay(returns.to_numpy(), "2020-01-02", "2020-01-03")  # type: ignore[arg-type]
    gappy = returns.copy()
    gappy.iloc[3] = np.nan
    with pytest.raises(ValueError, match="NaN") as info:
        historical_replay(gappy, "2020-01-01", "2020-01-10")
    assert f"return at {gappy.index[3]} is NaN" in str(info.value)  # names the day
    with pytest.raises(ValueError, match="start"):
        historical_replay(returns, "not a date", "2020-01-10")


# --------------------------------------------------------------------------- instant shock


@pytest.mark.parametrize("size", [-0.3, -0.999, 0.0, 0.25, 3.0])
def test_instant_shock_is_one_jump_then_flat(size: float) -> None:
    out = instant_shock(size, 30)
    assert out.shape == (1, 30)
    assert out[0, 0] == pytest.approx(math.log(1 + size), rel=1e-15, abs=0)
    assert not out[0, 1:].any()
    prices = to_price_paths(2000.0, out)
    np.testing.assert_allclose(prices[0, 1:], 2000.0 * (1 + size), rtol=1e-12)


@pytest.mark.parametrize(
    ("size", "horizon"),
    [(-1.0, 5), (-1.5, 5), (float("nan"), 5), ("0.1", 5), (0.1, 0), (0.1, 2.5)],
)
def test_instant_shock_rejects_bad_input(size, horizon) -> None:
    with pytest.raises(ValueError, match="size|horizon_days"):
        instant_shock(size, horizon)


# --------------------------------------------------------------------------- Monte Carlo


def normal_sim(n: int, h: int, rng: np.random.Generator) -> np.ndarray:
    return 0.01 * rng.standard_normal((n, h))


def collect(**kw) -> tuple[np.ndarray, list[int]]:
    chunks = list(monte_carlo_chunks(normal_sim, **kw))
    return np.concatenate(chunks), [c.shape[0] for c in chunks]


@pytest.mark.parametrize("n_paths", [2 * BLOCK_PATHS, 2_345])
def test_mc_output_does_not_depend_on_chunk_size(n_paths: int) -> None:
    ref, _ = collect(n_paths=n_paths, horizon_days=20, seed=5, chunk_paths=n_paths)
    assert ref.shape == (n_paths, 20)
    for chunk in (1, 100, BLOCK_PATHS, 333, 1_000, 10_000):
        out, sizes = collect(n_paths=n_paths, horizon_days=20, seed=5, chunk_paths=chunk)
        np.testing.assert_array_equal(out, ref)
        assert sum(sizes) == n_paths
        assert max(sizes) <= max(BLOCK_PATHS, chunk)  # memory bounded by the chunk


def test_mc_same_seed_same_paths_other_seed_other_paths() -> None:
    a, _ = collect(n_paths=600, horizon_days=10, seed=1, chunk_paths=300)
    b, _ = collect(n_paths=600, horizon_days=10, seed=1, chunk_paths=300)
    c, _ = collect(n_paths=600, horizon_days=10, seed=2, chunk_paths=300)
    np.testing.assert_array_equal(a, b)
    assert (a != c).all()  # continuous draws from other streams: no exact coincidence
    # blocks use independent streams: no block repeats another
    assert (a[:BLOCK_PATHS] != a[BLOCK_PATHS : 2 * BLOCK_PATHS]).all()


def test_mc_blocks_are_fixed_so_fewer_paths_is_a_prefix() -> None:
    small, _ = collect(n_paths=BLOCK_PATHS, horizon_days=5, seed=9, chunk_paths=2_000)
    big, _ = collect(n_paths=4 * BLOCK_PATHS, horizon_days=5, seed=9, chunk_paths=2_000)
    np.testing.assert_array_equal(big[:BLOCK_PATHS], small)


@pytest.mark.parametrize("cuts", [(0, 1_000, 2_050), (0, 250, 500, 1_750, 2_050), (0, 2_000, 2_050)])
def test_mc_split_into_parts_gives_the_run_paths(cuts: tuple[int, ...]) -> None:
    """Parts starting at whole blocks (the tasks of a distributed run) concatenate to the run."""
    whole, _ = collect(n_paths=2_050, horizon_days=7, seed=11, chunk_paths=2_000)
    parts = [
        np.concatenate(list(monte_carlo_chunks(normal_sim, b - a, 7, 11, 500, first_path=a)))
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_mc_part_must_start_at_a_block() -> None:
    with pytest.raises(ValueError, match=f"first_path: expected a multiple of {BLOCK_PATHS}"):
        monte_carlo_chunks(normal_sim, 10, 5, 1, 100, first_path=7)
    with pytest.raises(ValueError, match="first_path: expected an integer >= 0"):
        monte_carlo_chunks(normal_sim, 10, 5, 1, 100, first_path=-250)


def test_mc_is_lazy_and_statistically_sane() -> None:
    calls: list[int] = []

    def sim(n: int, h: int, rng: np.random.Generator) -> np.ndarray:
        calls.append(n)
        return normal_sim(n, h, rng)

    it = monte_carlo_chunks(sim, n_paths=10_000, horizon_days=50, seed=3, chunk_paths=2_000)
    first = next(it)
    assert first.shape == (2_000, 50) and sum(calls) == 2_000  # nothing beyond one chunk yet
    # 100,000 N(0, 0.01^2) draws: the sample sd is within 4 SE (SE = 0.01/sqrt(2*1e5))
    assert abs(first.std() - 0.01) < 4 * 0.01 / math.sqrt(2 * first.size)


def test_mc_validates_arguments_and_simulator_output() -> None:
    with pytest.raises(ValueError, match="n_paths"):
        monte_carlo_chunks(normal_sim, 0, 10, 1, 100)
    with pytest.raises(ValueError, match="seed"):
        monte_carlo_chunks(normal_sim, 10, 10, -1, 100)
    with pytest.raises(ValueError, match="chunk_paths"):
        monte_carlo_chunks(normal_sim, 10, 10, 1, 0)
    with pytest.raises(ValueError, match="simulate"):
        monte_carlo_chunks("garch", 10, 10, 1, 100)  # type: ignore[arg-type]
    bad = monte_carlo_chunks(lambda n, h, rng: np.zeros((n, h + 1)), 10, 10, 1, 100)
    with pytest.raises(ValueError, match=r"simulate: block 0 returned shape \(10, 11\), expected \(10, 10\)"):
        next(bad)
    nan = monte_carlo_chunks(lambda n, h, rng: np.full((n, h), np.nan), 10, 10, 1, 100)
    with pytest.raises(ValueError, match="simulate: block 0 returned NaN"):
        next(nan)


# --------------------------------------------------------------------------- price paths


def test_price_paths_round_trip() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.02, (4, 30))
    p = to_price_paths(np.array([1000.0, 1500.0, 2000.0, 2500.0]), r)
    assert p.shape == (4, 31)
    np.testing.assert_array_equal(p[:, 0], [1000.0, 1500.0, 2000.0, 2500.0])
    np.testing.assert_allclose(np.diff(np.log(p), axis=1), r, atol=1e-12)
    np.testing.assert_allclose(p[:, -1], p[:, 0] * np.exp(r.sum(axis=1)), rtol=1e-12)


def test_price_paths_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="log_returns"):
        to_price_paths(100.0, np.zeros(5))
    with pytest.raises(ValueError, match="p0_usd_per_oz"):
        to_price_paths(-1.0, np.zeros((1, 5)))
    with pytest.raises(ValueError, match="p0_usd_per_oz"):
        to_price_paths(np.array([1.0, 2.0]), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="log_returns"):
        to_price_paths(1.0, np.array([[np.inf]]))


def test_calendar_day_paths_insert_weekends_at_fridays_price():
    from models.scenarios import calendar_day_paths

    prices = np.array([[10.0, 11.0, 12.0, 13.0, 14.0, 15.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    # day 0 Thursday 2026-08-13: trading days Thu, Fri, Mon, Tue, Wed, Thu
    got, cal = calendar_day_paths(prices, "2026-08-13")
    assert [d.strftime("%a %d") for d in cal] == [
        "Thu 13",
        "Fri 14",
        "Sat 15",
        "Sun 16",
        "Mon 17",
        "Tue 18",
        "Wed 19",
        "Thu 20",
    ]
    np.testing.assert_array_equal(got[0], [10.0, 11.0, 11.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    np.testing.assert_array_equal(got[1], [1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # a Saturday day 0 starts on the next Monday; tz-aware dates are accepted
    _, cal = calendar_day_paths(prices[:, :2], pd.Timestamp("2026-08-15", tz="UTC"))
    assert list(cal.strftime("%Y-%m-%d")) == ["2026-08-17", "2026-08-18"]
    with pytest.raises(ValueError, match="prices_usd_per_oz"):
        calendar_day_paths(np.ones(3), "2026-08-13")
    with pytest.raises(ValueError, match="first_day"):
        calendar_day_paths(prices, "not a date")


def test_stress_drift_per_day_closed_forms() -> None:
    """'zero' is no drift, 'historical' the fitted mu, a number an annual log return / 252."""
    from models.scenarios import TRADING_DAYS_PER_YEAR, stress_drift_per_day

    assert stress_drift_per_day("zero", 4e-4) == 0.0
    assert stress_drift_per_day("historical", 4e-4) == 4e-4
    assert stress_drift_per_day(-0.126, 4e-4) == pytest.approx(-0.126 / TRADING_DAYS_PER_YEAR, rel=1e-15)
    assert TRADING_DAYS_PER_YEAR == 252
    with pytest.raises(ValueError, match="^drift: expected 'zero', 'historical'"):
        stress_drift_per_day("up", 4e-4)
    with pytest.raises(ValueError, match="^drift: expected a finite annual log return"):
        stress_drift_per_day(float("nan"), 4e-4)


def test_episode_window_finds_the_largest_fall_and_its_peak() -> None:
    """Closes 100, 120, 90, 110, 60, 80 (first close the window's first day): the deepest fall
    from the running maximum is 120 -> 60 (-50%, 3 returns later), not 120 -> 90; a replay from
    the day after the peak to the trough starts from 120 and ends at 60."""
    from models.scenarios import episode_window

    closes = np.array([100.0, 100.0, 120.0, 90.0, 110.0, 60.0, 80.0])
    dates = pd.bdate_range("2024-01-01", periods=closes.size, tz="UTC")
    returns = pd.Series(np.log(closes[1:] / closes[:-1]), index=dates[1:])
    ep = episode_window(returns, "2024-01-02", "2024-01-09")
    assert (ep["peak_date"], ep["trough_date"], ep["replay_start"]) == ("2024-01-03", "2024-01-08", "2024-01-04")
    assert ep["trading_days"] == 3
    assert ep["peak_to_trough_frac"] == pytest.approx(60.0 / 120.0 - 1.0, rel=1e-12)
    replay = historical_replay(returns, ep["replay_start"], ep["trough_date"])
    assert math.exp(replay.sum()) == pytest.approx(0.5, rel=1e-12)
    with pytest.raises(ValueError, match="never fell"):
        episode_window(returns, "2024-01-02", "2024-01-03")


def test_on_calendar_days_fills_weekends_and_holidays_with_the_last_close():
    """Fri 2024-03-01, Mon 04, Tue 05, (Wed 06 a holiday), Thu 07: every calendar day from Friday
    to Thursday, Saturday and Sunday at Friday's price, Wednesday at Tuesday's; the trading
    columns pick the input back."""
    from models.scenarios import on_calendar_days

    prices = np.array([[100.0, 101.0, 102.0, 104.0], [10.0, 9.0, 8.0, 7.0]])
    dates = ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-07"]
    out, cal, cols = on_calendar_days(prices, dates)
    assert list(cal.strftime("%a %d")) == ["Fri 01", "Sat 02", "Sun 03", "Mon 04", "Tue 05", "Wed 06", "Thu 07"]
    np.testing.assert_array_equal(cols, [0, 3, 4, 6])
    np.testing.assert_array_equal(out[0], [100.0, 100.0, 100.0, 101.0, 102.0, 102.0, 104.0])
    np.testing.assert_array_equal(out[:, cols], prices)
    assert out.flags.c_contiguous  # each path's days adjacent, as the token kernels read them
    with pytest.raises(ValueError, match="trading_dates"):
        on_calendar_days(prices, dates[:3])
    with pytest.raises(ValueError, match="trading_dates"):
        on_calendar_days(prices, [dates[0], dates[2], dates[1], dates[3]])


def test_summarise_paths_reads_trading_day_horizons_at_their_calendar_columns():
    """On the calendar-day clock horizon h (trading days) is read at calendar column
    trading_columns[h]: a 1-day horizon from a Friday is Monday's column, 3 days Wednesday's;
    path extremes run over every calendar day."""
    from models.metrics import summarise_paths
    from models.scenarios import business_days, on_calendar_days
    from models.token.reserve_backed import ReserveBackedToken
    from models.token.spec import load_token_spec

    gold = np.array([[4000.0, 3600.0, 3500.0, 3400.0, 3300.0, 3200.0]])
    prices, cal, cols = on_calendar_days(gold, business_days("2025-01-03", 6))  # Fri .. next Fri
    assert cal[0].day_name() == "Friday" and list(cols) == [0, 3, 4, 5, 6, 7]
    spec = load_token_spec(Path(__file__).resolve().parents[2] / "specs" / "paxg.toml")
    out = ReserveBackedToken(spec).run(prices, calendar=cal, rng=np.random.default_rng(1))
    df = summarise_paths(out, prices, (1, 3), trading_columns=cols)
    hv = out.holder_value_usd_per_token[0]
    assert df["gold_log_return_1d"][0] == pytest.approx(np.log(3600 / 4000))
    assert df["holder_loss_frac_1d"][0] == pytest.approx(1 - hv[3] / hv[0])
    assert df["holder_loss_frac_3d"][0] == pytest.approx(1 - hv[5] / hv[0])
    assert df["horizon_days"][0] == 5 and df["horizon_calendar_days"][0] == 7
    assert df["premium_min_frac"][0] == pytest.approx(out.premium_frac[0].min())
    with pytest.raises(ValueError, match="trading_columns"):
        summarise_paths(out, prices, (1,), trading_columns=np.array([1, 2]))
