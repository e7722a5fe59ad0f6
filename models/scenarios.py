"""Gold scenario generators (pure numerics, no I/O).

Every generator returns daily LOG returns as fractions shaped ``(n_paths, horizon_days)``;
:func:`to_price_paths` turns them into price paths ``(n_paths, horizon_days + 1)`` with day 0.

* :func:`historical_replay` - one path: the returns of a dated historical window.
* :func:`instant_shock` - one path: a single jump on day 1, then flat.
* :func:`monte_carlo_chunks` - many paths from any simulator callable (e.g. a fitted GARCH's
  ``simulate``), seeded, reproducible and independent of the chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.checks import check_int

__all__ = [
    "business_days",
    "calendar_day_paths",
    "on_calendar_days",
    "BLOCK_PATHS",
    "historical_replay",
    "instant_shock",
    "monte_carlo_chunks",
    "to_price_paths",
]

BLOCK_PATHS = 250
"""Paths per random-number block in :func:`monte_carlo_chunks`. Block ``b`` always covers paths
``[b * BLOCK_PATHS, (b + 1) * BLOCK_PATHS)`` and always uses the ``b``-th child of
``SeedSequence(seed)``; changing this constant changes the simulated numbers."""

Simulator = Callable[[int, int, np.random.Generator], np.ndarray]
"""``simulate(n_paths, horizon_days, rng) -> (n_paths, horizon_days)`` daily log returns."""


def _as_utc_timestamp(value: object, tz: object, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: cannot read {value!r} as a date") from exc
    if tz is not None:
        ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    elif ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def historical_replay(returns: pd.Series, start: object, end: object) -> np.ndarray:
    """The returns of a historical window as one scenario path.

    Parameters
    ----------
    returns : pd.Series
        Daily log returns (fractions) on a sorted ``DatetimeIndex`` (UTC; a naive index is read
        as UTC dates). NaN-free inside the window.
    start, end : str, date or Timestamp
        Inclusive calendar dates of the window (whole days; time of day is ignored).

    Returns
    -------
    ndarray, shape (1, T)
        The ``T`` returns dated ``start <= date <= end``, in date order.

    Raises
    ------
    ValueError
        Naming the window: if ``returns`` is not a Series on a sorted DatetimeIndex, if
        ``start > end``, if the window is not covered by the data (``start`` before the first
        date or ``end`` after the last: a replay is never silently truncated), if the window
        holds no return, or if a return in it is NaN or infinite.
    """
    if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
        raise ValueError("returns: expected a pandas Series on a DatetimeIndex")
    if len(returns) == 0:
        raise ValueError("returns: the series is empty")
    if not returns.index.is_monotonic_increasing:
        raise ValueError("returns: the index must be sorted by date")
    tz = returns.index.tz
    s = _as_utc_timestamp(start, tz, "start")
    e = _as_utc_timestamp(end, tz, "end")
    window = f"window {s.date()}..{e.date()}"
    if s > e:
        raise ValueError(f"{window}: start is after end")
    dates = returns.index.normalize()
    first, last = dates[0], dates[-1]
    if s < first or e > last:
        raise ValueError(f"{window} is outside the data, which covers {first.date()}..{last.date()}")
    mask = (dates >= s) & (dates <= e)
    values = returns.to_numpy(dtype=float)[mask]
    if values.size == 0:
        raise ValueError(f"{window} holds no returns")
    if not np.isfinite(values).all():
        bad = returns.index[mask][~np.isfinite(values)][0]
        raise ValueError(f"{window}: return at {bad} is NaN or infinite")
    return values[None, :]


def instant_shock(size: float, horizon_days: int) -> np.ndarray:
    """A one-off gold price jump of ``size`` on day 1, flat afterwards.

    Parameters
    ----------
    size : float
        Simple return of the jump as a fraction, in ``(-1, inf)`` (``-0.3`` = a 30 % fall).
    horizon_days : int
        Number of days, >= 1.

    Returns
    -------
    ndarray, shape (1, horizon_days)
        ``log(1 + size)`` on day 1, then zeros.

    Raises
    ------
    ValueError
        If ``size`` is not a finite number > -1, or ``horizon_days`` is not an integer >= 1.
    """
    if not isinstance(size, (int, float, np.integer, np.floating)) or not math.isfinite(size):
        raise ValueError(f"size: expected a finite number > -1, got {size!r}")
    if size <= -1.0:
        raise ValueError(f"size: {size} is not > -1 (a price cannot fall by 100 % or more)")
    check_int(horizon_days, "horizon_days")
    out = np.zeros((1, int(horizon_days)))
    out[0, 0] = math.log1p(size)
    return out


def monte_carlo_chunks(
    simulate: Simulator,
    n_paths: int,
    horizon_days: int,
    seed: int,
    chunk_paths: int,
    first_path: int = 0,
) -> Iterator[np.ndarray]:
    """Monte Carlo log-return paths from a simulator, in chunks, reproducibly.

    Paths are produced in fixed blocks of :data:`BLOCK_PATHS` paths (the last block may be
    smaller); block ``b`` is ``simulate(block_size, horizon_days, default_rng(child_b))`` where
    ``child_b`` is the ``b``-th child of ``np.random.SeedSequence(seed)`` (NumPy's recommended way
    to make independent parallel streams). A chunk is a run of whole blocks: ``max(1,
    chunk_paths // BLOCK_PATHS)`` blocks. Hence the concatenated output depends only on
    ``(simulate, n_paths, horizon_days, seed)``, never on ``chunk_paths``, and memory is bounded
    by one chunk whatever ``n_paths``.

    Parameters
    ----------
    simulate : callable ``(n_paths, horizon_days, rng) -> ndarray (n_paths, horizon_days)``
        Daily log returns (fractions); must draw all its randomness from ``rng``.
    n_paths, horizon_days : int
        Total paths and days per path, >= 1.
    seed : int
        Non-negative integer seed.
    chunk_paths : int
        Target paths per chunk, >= 1 (rounded down to whole blocks, at least one block).
    first_path : int
        Index of the first path in the whole run, a multiple of :data:`BLOCK_PATHS` (default 0):
        the paths ``first_path .. first_path + n_paths - 1`` of a run, so that a run split into
        parts (tasks on several workers) gives the same paths as one call.

    Returns
    -------
    Iterator[ndarray]
        Chunks shaped ``(m, horizon_days)``; the ``m`` sum to ``n_paths``.

    Raises
    ------
    ValueError
        Immediately for a bad argument; while iterating, if ``simulate`` returns an array of the
        wrong shape or with non-finite values (naming the block).
    """
    if not callable(simulate):
        raise ValueError("simulate: expected a callable (n_paths, horizon_days, rng) -> ndarray")
    n_paths = check_int(n_paths, "n_paths")
    horizon_days = check_int(horizon_days, "horizon_days")
    chunk_paths = check_int(chunk_paths, "chunk_paths")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if isinstance(first_path, bool) or not isinstance(first_path, (int, np.integer)) or first_path < 0:
        raise ValueError(f"first_path: expected an integer >= 0, got {first_path!r}")
    if first_path % BLOCK_PATHS:
        raise ValueError(f"first_path: expected a multiple of {BLOCK_PATHS} (a whole block), got {first_path}")
    return _chunks(simulate, n_paths, horizon_days, int(seed), chunk_paths, int(first_path) // BLOCK_PATHS)


def _chunks(
    simulate: Simulator, n_paths: int, horizon_days: int, seed: int, chunk_paths: int, first_block: int
) -> Iterator[np.ndarray]:
    root = np.random.SeedSequence(seed)
    n_blocks = -(-n_paths // BLOCK_PATHS)
    per_chunk = max(1, chunk_paths // BLOCK_PATHS)
    b = 0
    while b < n_blocks:
        k = min(per_chunk, n_blocks - b)
        parts = []
        for j in range(k):
            block = first_block + b + j
            # the block-th child of the seed, as root.spawn would give it
            child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, block))
            size = min(BLOCK_PATHS, n_paths - (b + j) * BLOCK_PATHS)
            x = np.asarray(simulate(size, horizon_days, np.random.default_rng(child)), float)
            if x.shape != (size, horizon_days):
                raise ValueError(f"simulate: block {block} returned shape {x.shape}, expected {(size, horizon_days)}")
            if not np.isfinite(x).all():
                raise ValueError(f"simulate: block {block} returned NaN or infinite returns")
            parts.append(x)
        yield parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        b += k


def to_price_paths(p0_usd_per_oz: float | np.ndarray, log_returns: np.ndarray) -> np.ndarray:
    """Price paths from a start price and daily log returns: ``P_t = P_0 * exp(sum_{s<=t} r_s)``.

    Parameters
    ----------
    p0_usd_per_oz : float or ndarray, shape (n_paths,)
        Day-0 price(s), > 0.
    log_returns : ndarray, shape (n_paths, horizon_days)
        Daily log returns as fractions.

    Returns
    -------
    ndarray, shape (n_paths, horizon_days + 1)
        Prices with day 0 in column 0.

    Raises
    ------
    ValueError
        If ``log_returns`` is not 2-D and finite, or ``p0_usd_per_oz`` is not finite and > 0 or
        does not match the number of paths.
    """
    r = np.asarray(log_returns, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"log_returns: expected shape (n_paths, horizon_days), got {r.shape}")
    if not np.isfinite(r).all():
        raise ValueError("log_returns: NaN or infinite values")
    p0 = np.asarray(p0_usd_per_oz, dtype=float)
    if p0.ndim > 1 or (p0.ndim == 1 and p0.shape[0] != r.shape[0]):
        raise ValueError(f"p0_usd_per_oz: expected a scalar or shape ({r.shape[0]},), got {p0.shape}")
    if not np.isfinite(p0).all() or (p0 <= 0).any():
        raise ValueError("p0_usd_per_oz: must be finite and > 0")
    cum = np.zeros((r.shape[0], r.shape[1] + 1))
    np.cumsum(r, axis=1, out=cum[:, 1:])
    return np.reshape(p0, (-1, 1)) * np.exp(cum)


def on_calendar_days(
    prices_usd_per_oz: np.ndarray, trading_dates: object
) -> tuple[np.ndarray, pd.DatetimeIndex, np.ndarray]:
    """Put gold paths dated on trading days on the calendar-day clock of a token that trades
    every day: every calendar day from the first trading date to the last, a day without a gold
    close (weekend, holiday) carrying the last gold price before it (gold does not trade; the
    token, its holders and the AMM do).

    Parameters
    ----------
    prices_usd_per_oz : ndarray, shape (n_paths, T + 1)
        Gold prices on trading days, day 0 first.
    trading_dates : sequence of date-like, length T + 1
        The date of each column, strictly increasing (timezone dropped, normalised to midnight).

    Returns
    -------
    (prices, calendar, trading_columns) : ndarray (n_paths, C + 1), pd.DatetimeIndex (C + 1,),
        int ndarray (T + 1,)
        ``trading_columns[k]`` is the calendar column of trading day ``k`` (``0`` for day 0), so
        ``prices[:, trading_columns]`` gives back the input. ``prices`` is C-contiguous (each
        path's days adjacent in memory, as the token models read them).

    Raises
    ------
    ValueError
        If the prices are not a 2-d array with at least one column, or the dates are not
        ``T + 1`` strictly increasing dates.
    """
    p = np.asarray(prices_usd_per_oz, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"prices_usd_per_oz: expected shape (n_paths, T + 1), got {p.shape}")
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(list(trading_dates)))  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trading_dates: not dates ({exc})") from exc
    if dates.tz is not None:
        dates = dates.tz_convert(None)
    dates = dates.normalize()
    if len(dates) != p.shape[1]:
        raise ValueError(f"trading_dates: expected {p.shape[1]} dates (one per column), got {len(dates)}")
    if dates.hasnans or not (dates[1:] > dates[:-1]).all():
        raise ValueError("trading_dates: must be strictly increasing dates, without NaT")
    calendar = pd.date_range(dates[0], dates[-1], freq="D")
    col = np.searchsorted(dates.values, calendar.values, side="right") - 1
    trading_columns = np.searchsorted(calendar.values, dates.values)
    # np.take keeps each path's days contiguous (p[:, col] would give a column-major array)
    return np.take(p, col, axis=1), calendar, trading_columns


def calendar_day_paths(prices_usd_per_oz: np.ndarray, first_day: object) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Put trading-day gold paths on the calendar-day clock of a token that trades every day.

    Trading day ``k`` of the paths (column ``k``, day 0 first) is the ``k``-th business day
    (Monday-Friday) from ``first_day`` (``pd.bdate_range``; a weekend ``first_day`` starts on the
    next Monday); the Saturdays and Sundays between them carry the last gold price before them
    (:func:`on_calendar_days`). UK bank holidays are not modelled.

    Parameters
    ----------
    prices_usd_per_oz : ndarray, shape (n_paths, T + 1)
        Gold prices on trading days, day 0 first.
    first_day : date-like
        Date of day 0 (timezone dropped).

    Returns
    -------
    (prices, calendar) : ndarray (n_paths, C + 1) and pd.DatetimeIndex of length C + 1
        ``C`` calendar days span the ``T`` trading days; ``calendar[0]`` is day 0.

    Raises
    ------
    ValueError
        If the prices are not a 2-d array with at least one column or ``first_day`` is not a date.
    """
    p = np.asarray(prices_usd_per_oz, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"prices_usd_per_oz: expected shape (n_paths, T + 1), got {p.shape}")
    prices, calendar, _ = on_calendar_days(p, business_days(first_day, p.shape[1]))
    return prices, calendar


def business_days(first_day: object, n_days: int) -> pd.DatetimeIndex:
    """``n_days`` business days (Monday-Friday) from ``first_day`` (timezone dropped, a weekend
    ``first_day`` moves to the next Monday); ``pd.bdate_range``. Raises ValueError when
    ``first_day`` is not a date."""
    try:
        day0 = pd.Timestamp(first_day)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"first_day: not a date: {first_day!r}") from exc
    if day0 is pd.NaT:
        raise ValueError(f"first_day: not a date: {first_day!r}")
    day0 = (day0.tz_convert(None) if day0.tzinfo is not None else day0).normalize()
    return pd.bdate_range(day0, periods=n_days)


@dataclass(frozen=True)
class ScenarioDef:
    """A named scenario: ``kind`` is ``historical``, ``shock`` or ``monte_carlo``."""

    name: str
    kind: str
    description: str
    start: str | None = None
    end: str | None = None
    shock: float | None = None
    episode: dict[str, Any] | None = None


def episode_window(returns: pd.Series, search_start: object, search_end: object) -> dict[str, Any]:
    """The peak-to-trough fall of a price series inside a search window, from its log returns.

    The log price of each day is the running sum of ``returns``; among the closes dated
    ``search_start <= date <= search_end`` the trough is the close with the deepest drawdown from
    the running maximum of the window, and the peak is the highest close before it (so the fall
    from peak to trough is the window's maximum drawdown).

    Returns a dict: ``peak_date``, ``trough_date`` (ISO dates), ``replay_start`` (the first
    trading date after the peak: replaying the returns dated ``replay_start..trough_date`` starts
    from the peak close), ``trading_days`` (returns from peak to trough), ``peak_to_trough_log_return``
    and ``peak_to_trough_frac`` (simple return, negative). Raises ``ValueError`` naming the
    window when it holds fewer than two closes or no fall (:func:`historical_replay` checks the
    dates and values).
    """
    window = historical_replay(returns, search_start, search_end)[0]
    dates = returns.index.normalize()
    s = _as_utc_timestamp(search_start, returns.index.tz, "search_start")
    e = _as_utc_timestamp(search_end, returns.index.tz, "search_end")
    idx = returns.index[(dates >= s) & (dates <= e)]
    if window.size < 2:
        raise ValueError(f"window {s.date()}..{e.date()}: fewer than two closes, no episode")
    log_price = np.cumsum(window)
    drawdown = log_price - np.maximum.accumulate(log_price)
    trough = int(np.argmin(drawdown))
    if drawdown[trough] >= 0.0:
        raise ValueError(f"window {s.date()}..{e.date()}: gold never fell below an earlier close")
    peak = int(np.argmax(log_price[: trough + 1]))
    fall = float(log_price[trough] - log_price[peak])
    return {
        "peak_date": str(idx[peak].date()),
        "trough_date": str(idx[trough].date()),
        "replay_start": str(idx[peak + 1].date()),
        "trading_days": trough - peak,
        "peak_to_trough_log_return": fall,
        "peak_to_trough_frac": math.expm1(fall),
        "search_window": [str(s.date()), str(e.date())],
    }


TRADING_DAYS_PER_YEAR = 252
"""Trading days in a year, for converting an annual drift to a daily one."""


def stress_drift_per_day(drift: float | str, fitted_mu_per_day: float) -> float:
    """Mean daily log return of a stress Monte Carlo under a stated drift assumption.

    ``drift`` is ``"zero"`` (no drift: a stress test should not assume gold rises, the
    default), ``"historical"`` (the fitted ``mu`` of the return model, ``fitted_mu_per_day``), or
    a number: an annual mean log return (fraction per year, e.g. -0.05), divided by
    :data:`TRADING_DAYS_PER_YEAR`. Raises ``ValueError`` for another string, or a non-finite
    number.
    """
    if isinstance(drift, str):
        if drift == "zero":
            return 0.0
        if drift == "historical":
            mu = float(fitted_mu_per_day)
            if not math.isfinite(mu):
                raise ValueError(f"fitted_mu_per_day: expected a finite number, got {fitted_mu_per_day!r}")
            return mu
        raise ValueError(f"drift: expected 'zero', 'historical' or an annual log return, got {drift!r}")
    value = float(drift)
    if not math.isfinite(value):
        raise ValueError(f"drift: expected a finite annual log return, got {drift!r}")
    return value / TRADING_DAYS_PER_YEAR
