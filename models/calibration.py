"""Calibration of the token premium to gold on real data (pure numerics, no I/O).

The premium (or discount, when negative) of a gold-backed token to its gold content is::

    premium_t = token_close_t / (oz_per_token * gold_close_t) - 1          (a fraction)

Both closes must be on the same clock. Crypto daily candles close at 24:00 UTC (CoinMarketCap
23:59:59 UTC, Binance 24:00 UTC), so the time-aligned gold reference is a broker XAU/USD daily
bar closing at 24:00 UTC; the LBMA PM fix (15:00 London) is 9-10 hours earlier, and the gold
move between the two clocks shows up as spurious premium noise (measured by
:func:`clock_comparison`). Tokens trade 24/7 while gold does not trade on weekends, so a token
row on a day without a gold close is either dropped (``weekend="drop"``: the premium lives on
the gold trading-day clock; the calibration fits this one) or compared with the last gold close
and flagged (``weekend="last_gold_close"``: those rows mix the premium with the gold move the
token has already priced since the last close).

Steps of the series ("lag 1") are consecutive observations at most ``max_step_gap_days``
calendar days apart (default 4: Friday to Monday, plus one holiday); a longer gap (a hole in a
file) splits the series into segments and no step crosses it.

Contents: :func:`premium_frame` / :func:`premium_series` (alignment),
:func:`premium_statistics` (:class:`PremiumStats`), :func:`window_statistics`,
:func:`find_episodes` (stress episodes), :func:`clock_comparison`, and, for a fitted
``models.market.PremiumProcess``, :func:`score_out_of_sample` (one-step-ahead predictive
scores) and :func:`reproduction_check` (parametric-bootstrap check that the fitted process
reproduces the sample's mean, sd and lag-1 autocorrelation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from models.risk import kupiec_pof

if TYPE_CHECKING:  # pragma: no cover - typing only
    from models.market import PremiumProcess

__all__ = [
    "DEFAULT_MAX_STEP_GAP_DAYS",
    "WeekendRule",
    "PremiumStats",
    "premium_frame",
    "premium_series",
    "select_window",
    "split_segments",
    "step_pairs",
    "premium_statistics",
    "describe_premia",
    "window_statistics",
    "find_episodes",
    "clock_comparison",
    "gap_marked",
    "one_step_quantiles",
    "step_log_densities",
    "score_out_of_sample",
    "simulate_like",
    "path_statistics",
    "reproduction_check",
]

DEFAULT_MAX_STEP_GAP_DAYS = 4
"""Longest calendar gap (days) between two observations still counted as one step of the
trading-day clock: Friday -> Monday is 3, a Friday or Monday holiday makes 4."""

WeekendRule = Literal["drop", "last_gold_close"]
"""How a token row on a day without a gold close is treated (see the module docstring)."""


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _check_gap(value: Any, name: str = "max_step_gap_days") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value}")
    return int(value)


def _check_daily_index(s: pd.Series, name: str) -> None:
    if not isinstance(s, pd.Series):
        raise ValueError(f"{name}: expected a pandas Series, got {type(s).__name__}")
    if not isinstance(s.index, pd.DatetimeIndex):
        raise ValueError(f"{name}: index must be a DatetimeIndex of days, got {type(s.index).__name__}")
    if not s.index.is_unique:
        raise ValueError(f"{name}: duplicate date {s.index[s.index.duplicated()][0]!r}")
    if not s.index.is_monotonic_increasing:
        idx = s.index
        pos = next(i for i in range(1, len(idx)) if not idx[i] > idx[i - 1])
        raise ValueError(f"{name}: dates not increasing at row {idx[pos]!r} (follows {idx[pos - 1]!r})")
    off = s.index != s.index.normalize()
    if off.any():
        raise ValueError(f"{name}: row {s.index[np.flatnonzero(off)[0]]!r} is not a midnight date (daily data expected)")


def _check_prices(s: pd.Series, name: str) -> np.ndarray:
    _check_daily_index(s, name)
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: row {s.index[i]!r} has price {s.iloc[i]!r}; prices must be finite and > 0")
    return values


def _check_premia(premia: pd.Series, name: str = "premia", min_obs: int = 1) -> np.ndarray:
    _check_daily_index(premia, name)
    values = pd.to_numeric(premia, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: row {premia.index[i]!r} is {premia.iloc[i]!r}; premia must be finite fractions")
    if (values <= -1).any():
        i = int(np.flatnonzero(values <= -1)[0])
        raise ValueError(f"{name}: row {premia.index[i]!r} = {values[i]} is not a premium fraction (> -1)")
    if values.size < min_obs:
        raise ValueError(f"{name}: need at least {min_obs} observations, got {values.size}")
    return values


def _day_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    """Whole days since the epoch (int64) of a midnight DatetimeIndex (any tz)."""
    naive = index.tz_convert(None) if index.tz is not None else index
    return naive.to_numpy(dtype="datetime64[D]").astype(np.int64)


# --------------------------------------------------------------------------------------------
# alignment
# --------------------------------------------------------------------------------------------
def premium_frame(
    token_close: pd.Series,
    gold_close: pd.Series,
    oz_per_token: float,
    *,
    weekend: WeekendRule = "drop",
    max_gold_age_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> pd.DataFrame:
    """Token close against the gold content of one token, day by day, on the token's clock.

    Parameters
    ----------
    token_close : pd.Series, shape (n,)
        Token closes, USD per token, on a strictly increasing midnight ``DatetimeIndex`` (the
        curated ``token_<symbol>`` ``date``: the UTC day whose close it is).
    gold_close : pd.Series, shape (m,)
        Gold closes, USD per troy ounce, same index type and time zone (for time alignment with
        UTC candles: the broker XAU/USD bar closing 24:00 UTC of that day).
    oz_per_token : float
        Troy ounces of gold per token (PAXG/XAUT 1.0; a 1 g token ``1 / 31.1034768``), > 0.
    weekend : {"drop", "last_gold_close"}
        ``"drop"``: keep only days with a gold close (inner join on dates).
        ``"last_gold_close"``: every token day is compared with the most recent gold close at
        most ``max_gold_age_days`` old (Friday's close on a weekend); such rows are flagged
        ``gold_stale``.
    max_gold_age_days : int
        Oldest gold close (calendar days) a ``"last_gold_close"`` row may use, >= 1; token days
        with no gold close that recent (token dates before the gold series, or inside a gold
        hole) are dropped.

    Returns
    -------
    pd.DataFrame, indexed by the token date (name ``date``), columns
        ``token_usd`` (USD per token), ``gold_usd_per_oz``, ``nav_usd_per_token``
        (``oz_per_token * gold_usd_per_oz``), ``gold_date`` (date of the gold close used),
        ``gold_age_days`` (int, 0 on a gold trading day), ``gold_stale`` (bool, age > 0),
        ``premium_frac`` (``token_usd / nav_usd_per_token - 1``).

    Raises
    ------
    ValueError
        Not a Series, not a midnight DatetimeIndex, duplicate or unsorted dates, a NaN or
        non-positive price (the row is named), different time zones of the two indexes,
        ``oz_per_token`` not > 0, an unknown ``weekend`` rule or a bad ``max_gold_age_days``.
    """
    tok = _check_prices(token_close, "token_close")
    gold = _check_prices(gold_close, "gold_close")
    if str(token_close.index.tz) != str(gold_close.index.tz):
        raise ValueError(
            f"token_close/gold_close: time zones differ ({token_close.index.tz} vs {gold_close.index.tz})"
        )
    try:
        oz = float(oz_per_token)
    except (TypeError, ValueError):
        raise ValueError(f"oz_per_token: expected a number > 0, got {oz_per_token!r}") from None
    if not math.isfinite(oz) or oz <= 0:
        raise ValueError(f"oz_per_token: must be a finite number > 0, got {oz_per_token!r}")
    if weekend not in ("drop", "last_gold_close"):
        raise ValueError(f"weekend: {weekend!r} is not 'drop' or 'last_gold_close'")
    max_age = _check_gap(max_gold_age_days, "max_gold_age_days")

    t_days = _day_numbers(token_close.index)
    g_days = _day_numbers(gold_close.index)
    pos = np.searchsorted(g_days, t_days, side="right") - 1  # last gold day <= token day
    has = pos >= 0
    age = np.full(t_days.size, np.iinfo(np.int64).max, dtype=np.int64)
    age[has] = t_days[has] - g_days[pos[has]]
    keep = has & (age == 0) if weekend == "drop" else has & (age <= max_age)
    gi = pos[keep]
    gold_used = gold[gi]
    nav = oz * gold_used
    frame = pd.DataFrame(
        {
            "token_usd": tok[keep],
            "gold_usd_per_oz": gold_used,
            "nav_usd_per_token": nav,
            "gold_date": gold_close.index[gi],
            "gold_age_days": age[keep],
            "gold_stale": age[keep] > 0,
            "premium_frac": tok[keep] / nav - 1.0,
        },
        index=pd.DatetimeIndex(token_close.index[keep], name="date"),
    )
    return frame


def premium_series(
    token_close: pd.Series,
    gold_close: pd.Series,
    oz_per_token: float,
    *,
    weekend: WeekendRule = "drop",
    max_gold_age_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> pd.Series:
    """The ``premium_frac`` column of :func:`premium_frame` (same arguments, same errors).

    Returns a Series of fractions (0.01 = 1% premium, negative = discount) named
    ``premium_frac`` on the token's dates that have a (recent enough) gold close.
    """
    frame = premium_frame(
        token_close, gold_close, oz_per_token, weekend=weekend, max_gold_age_days=max_gold_age_days
    )
    return frame["premium_frac"].rename("premium_frac")


def select_window(premia: pd.Series, start: Any, end: Any) -> pd.Series:
    """Rows of ``premia`` dated ``start <= date <= end`` (inclusive whole days).

    ``start``/``end`` are ISO strings, dates or Timestamps (naive ones are read in the index's
    time zone); ``None`` leaves that side open. ``ValueError`` for an unreadable date or
    ``end < start``.
    """
    _check_daily_index(premia, "premia")
    tz = premia.index.tz

    def _ts(v: Any, name: str) -> pd.Timestamp | None:
        if v is None:
            return None
        try:
            ts = pd.Timestamp(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: cannot read {v!r} as a date") from None
        if tz is not None:
            ts = ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)
        elif ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.normalize()

    lo, hi = _ts(start, "start"), _ts(end, "end")
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"end {end!r} is before start {start!r}")
    mask = np.ones(len(premia), dtype=bool)
    if lo is not None:
        mask &= premia.index >= lo
    if hi is not None:
        mask &= premia.index <= hi
    return premia[mask]


# --------------------------------------------------------------------------------------------
# steps, segments
# --------------------------------------------------------------------------------------------
def _segment_ids(index: pd.DatetimeIndex, max_gap: int) -> np.ndarray:
    days = _day_numbers(index)
    breaks = np.diff(days) > max_gap
    return np.concatenate([[0], np.cumsum(breaks)]).astype(np.int64)


def split_segments(premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS) -> list[pd.Series]:
    """Split a dated series at gaps longer than ``max_step_gap_days`` calendar days.

    Returns the pieces in date order (each a Series view of ``premia``; an empty input gives
    an empty list). ``ValueError`` for a non-daily index or a bad ``max_step_gap_days``.
    """
    _check_daily_index(premia, "premia")
    gap = _check_gap(max_step_gap_days)
    if len(premia) == 0:
        return []
    seg = _segment_ids(premia.index, gap)
    cuts = np.flatnonzero(np.diff(seg)) + 1
    bounds = np.concatenate([[0], cuts, [len(premia)]])
    return [premia.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def step_pairs(
    premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """``(previous, current)`` values of every one-step transition, shapes ``(k,)`` and ``(k,)``.

    A transition joins consecutive observations at most ``max_step_gap_days`` calendar days
    apart (no transition crosses a longer hole). ``ValueError`` for non-finite values or a
    bad index.
    """
    values = _check_premia(premia, "premia", min_obs=0)
    gap = _check_gap(max_step_gap_days)
    if values.size < 2:
        return np.empty(0), np.empty(0)
    ok = np.diff(_day_numbers(premia.index)) <= gap
    return values[:-1][ok], values[1:][ok]


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.50, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class PremiumStats:
    """Summary statistics of a premium series (all levels are fractions, 0.01 = 1%).

    Attributes
    ----------
    n : int                       observations.
    first_date, last_date : str   ISO dates of the first and last observation.
    n_segments : int              pieces after splitting at holes (``max_step_gap_days``).
    mean, sd, median : float      sample mean, standard deviation (ddof=1), median.
    min, max : float              extremes.
    quantiles : dict[str, float]  ``"q01"``, ``"q05"``, ``"q25"``, ``"q50"``, ``"q75"``,
                                  ``"q95"``, ``"q99"`` (pandas/NumPy linear interpolation).
    p_abs_gt_1pct, p_abs_gt_5pct : float  share of days with ``|premium| > 1%`` / ``> 5%``.
    p_gt_5pct, p_lt_minus_5pct : float    share of days with premium ``> 5%`` / ``< -5%``.
    n_pairs : int                 one-step transitions (:func:`step_pairs`).
    lag1_autocorr : float         Pearson correlation of (previous, current) over the pairs.
    ar1_phi, ar1_intercept : float  OLS slope/intercept of current on previous (AR(1)).
    ar1_mean : float              ``intercept / (1 - phi)`` (NaN when phi >= 1).
    ar1_resid_sd : float          OLS residual sd (ddof=2).
    half_life_steps : float       ``ln(0.5) / ln(phi)`` in steps (trading days on the
                                  ``"drop"`` clock); ``inf`` for phi >= 1, NaN for phi <= 0.
    """

    n: int
    first_date: str | None
    last_date: str | None
    n_segments: int
    mean: float
    sd: float
    median: float
    min: float
    max: float
    quantiles: dict[str, float]
    p_abs_gt_1pct: float
    p_abs_gt_5pct: float
    p_gt_5pct: float
    p_lt_minus_5pct: float
    n_pairs: int
    lag1_autocorr: float
    ar1_phi: float
    ar1_intercept: float
    ar1_mean: float
    ar1_resid_sd: float
    half_life_steps: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready except that NaN/inf floats stay floats)."""
        return asdict(self)

    def flat(self, prefix: str = "") -> dict[str, float]:
        """Numeric fields flattened to ``{prefix + name: float}`` (quantiles as ``q01`` ...),
        for metric logging."""
        out: dict[str, float] = {}
        for key, value in asdict(self).items():
            if key == "quantiles":
                out.update({f"{prefix}{k}": float(v) for k, v in value.items()})
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{prefix}{key}"] = float(value)
        return out


def _half_life(phi: float) -> float:
    if not math.isfinite(phi) or phi <= 0:
        return math.nan
    if phi >= 1:
        return math.inf
    return math.log(0.5) / math.log(phi)


def _ar1_ols(prev: np.ndarray, curr: np.ndarray) -> tuple[float, float, float, float]:
    """(lag1 Pearson corr, phi, intercept, resid sd) of curr on prev; NaN when undefined."""
    if prev.size < 3 or np.std(prev) == 0 or np.std(curr) == 0:
        return (math.nan,) * 4
    xm, ym = prev.mean(), curr.mean()
    sxx = float(np.sum((prev - xm) ** 2))
    sxy = float(np.sum((prev - xm) * (curr - ym)))
    syy = float(np.sum((curr - ym) ** 2))
    phi = sxy / sxx
    intercept = ym - phi * xm
    resid = curr - intercept - phi * prev
    return sxy / math.sqrt(sxx * syy), phi, float(intercept), float(np.sqrt(np.sum(resid**2) / (prev.size - 2)))


def premium_statistics(
    premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS
) -> PremiumStats:
    """Summary statistics, persistence and half-life of a premium series.

    ``premia`` (shape (n,), fractions, n >= 2) on a midnight ``DatetimeIndex``. The AR(1)
    quantities use only the one-step transitions of :func:`step_pairs` (no step across a hole);
    the half-life of a deviation under ``p_t - m = phi (p_{t-1} - m)`` is ``ln 0.5 / ln phi``
    steps (e.g. Hamilton 1994, *Time Series Analysis*, ch. 3).

    Raises
    ------
    ValueError
        Fewer than 2 observations, a non-finite value or a bad index (the row is named).
    """
    values = _check_premia(premia, "premia", min_obs=2)
    gap = _check_gap(max_step_gap_days)
    prev, curr = step_pairs(premia, gap)
    r1, phi, intercept, resid_sd = _ar1_ols(prev, curr)
    q = np.quantile(values, QUANTILE_LEVELS)
    return PremiumStats(
        n=int(values.size),
        first_date=str(premia.index[0].date()),
        last_date=str(premia.index[-1].date()),
        n_segments=int(_segment_ids(premia.index, gap)[-1] + 1),
        mean=float(values.mean()),
        sd=float(values.std(ddof=1)),
        median=float(np.median(values)),
        min=float(values.min()),
        max=float(values.max()),
        quantiles={f"q{round(level * 100):02d}": float(v) for level, v in zip(QUANTILE_LEVELS, q, strict=True)},
        p_abs_gt_1pct=float(np.mean(np.abs(values) > 0.01)),
        p_abs_gt_5pct=float(np.mean(np.abs(values) > 0.05)),
        p_gt_5pct=float(np.mean(values > 0.05)),
        p_lt_minus_5pct=float(np.mean(values < -0.05)),
        n_pairs=int(prev.size),
        lag1_autocorr=float(r1),
        ar1_phi=float(phi),
        ar1_intercept=float(intercept),
        ar1_mean=float(intercept / (1.0 - phi)) if math.isfinite(phi) and phi < 1 else math.nan,
        ar1_resid_sd=float(resid_sd),
        half_life_steps=_half_life(phi),
    )


def describe_premia(part: pd.Series) -> dict[str, Any]:
    """Descriptive statistics of a (possibly empty) premium series: ``n`` and, when ``n > 0``,
    ``first_date``, ``last_date``, ``mean``, ``sd`` (ddof=1, NaN for one row), ``max``/``max_date``,
    ``min``/``min_date``, ``p_abs_gt_1pct``, ``p_abs_gt_5pct`` (fractions of days)."""
    v = part.to_numpy(dtype=float)
    if v.size == 0:
        return {"n": 0}
    imax, imin = int(np.argmax(v)), int(np.argmin(v))
    return {
        "n": int(v.size),
        "first_date": str(part.index[0].date()),
        "last_date": str(part.index[-1].date()),
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if v.size > 1 else math.nan,
        "max": float(v[imax]),
        "max_date": str(part.index[imax].date()),
        "min": float(v[imin]),
        "min_date": str(part.index[imin].date()),
        "p_abs_gt_1pct": float(np.mean(np.abs(v) > 0.01)),
        "p_abs_gt_5pct": float(np.mean(np.abs(v) > 0.05)),
    }


def window_statistics(premia: pd.Series, windows: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """Statistics of ``premia`` inside named date windows (stress windows).

    ``windows`` maps a name to ``(start, end)`` inclusive dates. For each window: ``n`` and,
    when ``n > 0``, ``first_date``, ``last_date``, ``mean``, ``sd`` (ddof=1; NaN for one row),
    ``max``/``max_date``, ``min``/``min_date``, ``p_abs_gt_1pct``, ``p_abs_gt_5pct``.

    Raises ``ValueError`` for a window that is not a ``(start, end)`` pair, an unreadable date,
    ``end < start`` or a bad ``premia``.
    """
    _check_premia(premia, "premia", min_obs=0)
    out: dict[str, dict[str, Any]] = {}
    for name, bounds in windows.items():
        if isinstance(bounds, (str, bytes)) or len(bounds) != 2:
            raise ValueError(f"windows[{name!r}]: expected (start, end), got {bounds!r}")
        try:
            part = select_window(premia, bounds[0], bounds[1])
        except ValueError as exc:
            raise ValueError(f"windows[{name!r}]: {exc}") from None
        out[name] = describe_premia(part)
    return out


def find_episodes(
    premia: pd.Series,
    threshold_frac: float = 0.02,
    *,
    bridge_obs: int = 2,
    max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> list[dict[str, Any]]:
    """Stress episodes: runs of same-sign deviations beyond ``threshold_frac``.

    An episode starts at an observation with ``|premium| >= threshold_frac`` and extends over
    later observations of the same sign beyond the threshold, bridging at most ``bridge_obs``
    observations in between that are inside the threshold (but never a hole longer than
    ``max_step_gap_days`` or an opposite-sign breach). Episodes are returned by decreasing
    ``|peak|``, each a dict: ``start_date``, ``end_date``, ``n_obs`` (observations from start to
    end), ``n_beyond`` (those beyond the threshold), ``sign`` (``"premium"``/``"discount"``),
    ``mean_frac`` (over start..end), ``peak_frac``, ``peak_date``, and ``after_date`` /
    ``after_frac`` (the first observation after the episode in the same segment, how it ended;
    None when there is none).

    Raises ``ValueError`` for ``threshold_frac`` not > 0, ``bridge_obs < 0`` or a bad series.
    """
    values = _check_premia(premia, "premia", min_obs=0)
    gap = _check_gap(max_step_gap_days)
    thr = float(threshold_frac)
    if not math.isfinite(thr) or thr <= 0:
        raise ValueError(f"threshold_frac: must be > 0, got {threshold_frac!r}")
    if isinstance(bridge_obs, bool) or not isinstance(bridge_obs, (int, np.integer)) or bridge_obs < 0:
        raise ValueError(f"bridge_obs: expected an integer >= 0, got {bridge_obs!r}")
    if values.size == 0:
        return []
    seg = _segment_ids(premia.index, gap)
    hits = np.abs(values) >= thr
    sign = np.sign(values)
    runs: list[tuple[int, int, float]] = []  # (first, last, sign)
    cur: list[Any] | None = None
    for i in np.flatnonzero(hits):  # loop over breaches of a 1-D series
        if cur is not None and sign[i] == cur[2] and seg[i] == seg[cur[1]] and i - cur[1] - 1 <= bridge_obs:
            cur[1] = i
            continue
        if cur is not None:
            runs.append(tuple(cur))
        cur = [int(i), int(i), float(sign[i])]
    if cur is not None:
        runs.append(tuple(cur))
    episodes = []
    for a, b, s in runs:
        part = values[a : b + 1]
        k = int(np.argmax(np.abs(part)))
        nxt = b + 1 if b + 1 < values.size and seg[b + 1] == seg[b] else None
        episodes.append(
            {
                "start_date": str(premia.index[a].date()),
                "end_date": str(premia.index[b].date()),
                "n_obs": int(b - a + 1),
                "n_beyond": int(np.sum(np.abs(part) >= thr)),
                "sign": "premium" if s > 0 else "discount",
                "mean_frac": float(part.mean()),
                "peak_frac": float(part[k]),
                "peak_date": str(premia.index[a + k].date()),
                "after_date": None if nxt is None else str(premia.index[nxt].date()),
                "after_frac": None if nxt is None else float(values[nxt]),
            }
        )
    episodes.sort(key=lambda e: -abs(e["peak_frac"]))
    return episodes


def clock_comparison(
    premia_aligned: pd.Series,
    premia_reference: pd.Series,
    max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> dict[str, float]:
    """Compare premia measured against two gold clocks on their common dates.

    ``premia_aligned``: against the time-aligned gold close (broker 24:00 UTC);
    ``premia_reference``: against another clock (LBMA PM, 15:00 London). Their difference
    ``ref - aligned = (1 + p_aligned) (g_aligned / g_ref - 1)`` is essentially the gold move
    between the two clocks, i.e. clock noise, not premium. Returns ``n_common``, ``sd_aligned``,
    ``sd_reference`` (ddof=1), ``lag1_aligned``, ``lag1_reference`` (pair correlations as in
    :func:`premium_statistics`, on the common dates), ``median_abs_diff``, ``sd_diff``,
    ``max_abs_diff`` and ``corr`` (Pearson between the two series); NaN entries where fewer than
    3 common dates exist.

    Raises ``ValueError`` for a bad series or differing time zones.
    """
    _check_premia(premia_aligned, "premia_aligned", min_obs=0)
    _check_premia(premia_reference, "premia_reference", min_obs=0)
    if str(premia_aligned.index.tz) != str(premia_reference.index.tz):
        raise ValueError("premia_aligned/premia_reference: time zones differ")
    gap = _check_gap(max_step_gap_days)
    common = premia_aligned.index.intersection(premia_reference.index)
    a = premia_aligned.reindex(common)
    r = premia_reference.reindex(common)
    n = int(len(common))
    nan = math.nan
    if n < 3:
        return {"n_common": n, "sd_aligned": nan, "sd_reference": nan, "lag1_aligned": nan,
                "lag1_reference": nan, "median_abs_diff": nan, "sd_diff": nan, "max_abs_diff": nan, "corr": nan}
    d = (r - a).to_numpy()
    av, rv = a.to_numpy(), r.to_numpy()
    return {
        "n_common": n,
        "sd_aligned": float(av.std(ddof=1)),
        "sd_reference": float(rv.std(ddof=1)),
        "lag1_aligned": float(_ar1_ols(*step_pairs(a, gap))[0]),
        "lag1_reference": float(_ar1_ols(*step_pairs(r, gap))[0]),
        "median_abs_diff": float(np.median(np.abs(d))),
        "sd_diff": float(d.std(ddof=1)),
        "max_abs_diff": float(np.max(np.abs(d))),
        "corr": float(np.corrcoef(av, rv)[0, 1]),
    }


# --------------------------------------------------------------------------------------------
# a fitted process against data
# --------------------------------------------------------------------------------------------
def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def gap_marked(premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS) -> pd.Series:
    """``premia`` with a NaN row inserted one day after the start of every hole longer than
    ``max_step_gap_days`` calendar days.

    ``models.market.PremiumProcess`` takes consecutive non-missing values as one step and a NaN
    as a break of the chain; the marker makes it skip exactly the transitions that
    :func:`step_pairs` skips. Shape ``(n + number of holes,)``; ``ValueError`` as
    :func:`step_pairs`.
    """
    _check_premia(premia, "premia", min_obs=0)
    gap = _check_gap(max_step_gap_days)
    if len(premia) < 2:
        return premia.astype(float)
    holes = np.flatnonzero(np.diff(_day_numbers(premia.index)) > gap)
    if holes.size == 0:
        return premia.astype(float)
    markers = pd.Series(np.nan, index=premia.index[holes] + pd.Timedelta(days=1))
    return pd.concat([premia.astype(float), markers]).sort_index().rename(premia.name)


def one_step_quantiles(
    process: PremiumProcess,
    premia: pd.Series,
    probs: Sequence[float],
    *,
    max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of the one-step-ahead predictive distribution of every transition.

    For every transition ``(p_{t-1}, p_t)`` of :func:`step_pairs` the process's exact predictive
    quantiles of ``p_t`` given ``p_{t-1}`` (``process.one_step_forecast``: ``m + phi (p_{t-1} -
    m) + F_u^{-1}(q)``, band ignored).

    Returns ``(actual, quantiles)``: ``actual`` shape ``(k,)`` the realised ``p_t``;
    ``quantiles`` shape ``(k, len(probs))``. Raises ``ValueError`` for probabilities outside
    (0, 1) or a bad series.
    """
    p = np.asarray(probs, dtype=float)
    if p.ndim != 1 or p.size == 0 or not np.all((p > 0) & (p < 1)):
        raise ValueError(f"probs: expected probabilities in (0, 1), got {probs!r}")
    marked = gap_marked(premia, max_step_gap_days)
    unique = tuple(sorted({float(v) for v in p}))
    fc = process.one_step_forecast(marked, quantiles=unique)  # columns "mean", "q<level:g>"
    x = marked.to_numpy(dtype=float)
    prev_ok = np.concatenate([[False], np.isfinite(x[:-1])]) & np.isfinite(x)
    q = np.column_stack([fc[f"q{float(v):g}"].to_numpy(dtype=float) for v in p])[prev_ok]
    return x[prev_ok], q


def _pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    """Mean tick loss of quantile forecasts ``q`` at level ``alpha`` (Gneiting 2011, JASA 106(494))."""
    return float(np.mean((alpha - (y < q)) * (y - q)))


def step_log_densities(
    process: PremiumProcess, premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS
) -> np.ndarray:
    """Conditional log density of every one-step transition, shape ``(k,)`` (same transitions
    and order as :func:`step_pairs`): ``process.log_likelihood(gap_marked(premia),
    per_obs=True)`` without the unscored entries."""
    ll = process.log_likelihood(gap_marked(premia, max_step_gap_days), per_obs=True)
    v = np.asarray(ll, dtype=float)
    return v[np.isfinite(v)]


def simulate_like(
    process: PremiumProcess, n_paths: int, n_obs: int, rng: np.random.Generator, *, burn_in: int | None = None
) -> np.ndarray:
    """Stationary simulated premium paths of ``n_obs`` days, shape ``(n_paths, n_obs)``.

    Starts every path at the process's stationary mean and discards ``burn_in`` days (default:
    enough for ``phi ** burn_in < 1e-6``, at least 50 and at most 5000), so the kept days are
    draws from the stationary law.
    """
    _check_rng(rng)
    n_paths = _check_count(n_paths, "n_paths", 1)
    n_obs = _check_count(n_obs, "n_obs", 1)
    if burn_in is None:
        phi = abs(float(process.phi))
        burn_in = 5000 if phi >= 1 else 50 if phi < 1e-3 else int(min(5000, max(50, math.ceil(math.log(1e-6) / math.log(phi)))))
    burn_in = _check_count(burn_in, "burn_in", 0)
    sims = np.asarray(
        process.simulate(n_paths, burn_in + n_obs, rng, p0=float(process.stationary_mean())), dtype=float
    )
    return sims[:, burn_in:]


def path_statistics(paths: np.ndarray) -> dict[str, np.ndarray]:
    """Per-path ``mean``, ``sd`` (ddof=1) and ``lag1_autocorr`` of ``paths`` (n_paths, n_obs).

    ``lag1_autocorr`` is the Pearson correlation of ``x[:, :-1]`` with ``x[:, 1:]`` per row,
    the same estimator :func:`premium_statistics` applies to the data's step pairs. Each entry
    has shape ``(n_paths,)``. ``ValueError`` when ``paths`` is not 2-D with >= 3 columns.
    """
    x = np.asarray(paths, dtype=float)
    if x.ndim != 2 or x.shape[1] < 3:
        raise ValueError(f"paths: expected shape (n_paths, n_obs >= 3), got {x.shape}")
    a, b = x[:, :-1], x[:, 1:]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r1 = np.sum(a * b, axis=1) / np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))
    return {"mean": x.mean(axis=1), "sd": x.std(axis=1, ddof=1), "lag1_autocorr": r1}


def reproduction_check(
    process: PremiumProcess,
    premia: pd.Series,
    rng: np.random.Generator,
    *,
    n_paths: int = 1000,
    level: float = 0.99,
    max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> dict[str, dict[str, float | bool]]:
    """Does the fitted process reproduce the sample's mean, sd and lag-1 autocorrelation?

    Parametric bootstrap: ``n_paths`` stationary paths as long as the sample
    (:func:`simulate_like`), the statistic computed on each (:func:`path_statistics`), and the
    sample value compared with the simulated distribution (its sampling error under the model).
    For each of ``mean``, ``sd``, ``lag1_autocorr`` returns ``sample``, ``sim_median``,
    ``sim_lo``/``sim_hi`` (central ``level`` interval), ``p_value`` (two-sided:
    ``2 min(P(sim <= s), P(sim >= s))``, capped at 1) and ``within`` (lo <= sample <= hi).

    Raises ``ValueError`` for fewer than 10 observations, ``level`` outside (0, 1), a bad
    ``rng`` or series.
    """
    values = _check_premia(premia, "premia", min_obs=10)
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    stats = premium_statistics(premia, max_step_gap_days)
    sample = {"mean": float(values.mean()), "sd": stats.sd, "lag1_autocorr": stats.lag1_autocorr}
    sim = path_statistics(simulate_like(process, n_paths, values.size, rng))
    lo_p, hi_p = (1 - level) / 2, 1 - (1 - level) / 2
    out: dict[str, dict[str, float | bool]] = {}
    for key, s in sample.items():
        draws = sim[key][np.isfinite(sim[key])]
        lo, med, hi = np.quantile(draws, [lo_p, 0.5, hi_p])
        p = min(1.0, 2 * min(np.mean(draws <= s), np.mean(draws >= s)))
        out[key] = {"sample": s, "sim_median": float(med), "sim_lo": float(lo), "sim_hi": float(hi),
                    "p_value": float(p), "within": bool(lo <= s <= hi)}
    return out


def score_out_of_sample(
    process: PremiumProcess,
    premia: pd.Series,
    rng: np.random.Generator,
    *,
    interval: float = 0.95,
    tail_levels: tuple[float, float] = (0.01, 0.99),
    n_paths_stationary: int = 400,
    max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> dict[str, float]:
    """Out-of-sample scores of a fitted premium process on a later series.

    One-step-ahead (each day predicted from the previous observed day, never across a hole):

    - ``mean_log_pred_density``: mean of the process's conditional log density of each scored
      day (:func:`step_log_densities`; the logarithmic score, a proper scoring rule, Gneiting &
      Raftery 2007, JASA 102(477)); ``n_scored`` such days.
    - ``coverage_<95>``: share of days inside the central ``interval`` predictive interval
      (exact quantiles, :func:`one_step_quantiles`); ``coverage_<95>_error`` = share - interval;
      ``interval_width_mean``.
    - for each tail level ``a`` (``q01``, ``q99``): ``<q>_hit_rate`` (share below the ``a``
      quantile for ``a < 0.5``, above it for ``a > 0.5``), ``<q>_hit_error`` (hit rate minus
      ``min(a, 1-a)``), ``<q>_kupiec_p`` (Kupiec 1995, J. Derivatives 3(2), via
      ``models.risk.kupiec_pof``) and ``<q>_pinball`` (mean tick loss, Gneiting 2011,
      JASA 106(494)).

    Unconditional (the stationary law from ``n_paths_stationary`` simulated paths as long as
    the series, against the series' empirical distribution): ``uncond_<q>_model``,
    ``uncond_<q>_sample`` and ``uncond_<q>_error`` (sample minus model), and
    ``uncond_mean_error`` / ``uncond_sd_error`` likewise.

    ``premia`` shape (n,), fractions; returns a flat ``{name: float}`` dict. Raises
    ``ValueError`` for fewer than 10 one-step transitions, ``interval`` or a tail level outside
    (0, 1), a bad ``rng`` or series.
    """
    _check_rng(rng)
    values = _check_premia(premia, "premia", min_obs=2)
    interval = float(interval)
    if not 0 < interval < 1:
        raise ValueError(f"interval: must be in (0, 1), got {interval}")
    tails = tuple(float(a) for a in tail_levels)
    if not all(0 < a < 1 for a in tails):
        raise ValueError(f"tail_levels: expected levels in (0, 1), got {tail_levels!r}")
    gap = _check_gap(max_step_gap_days)
    probs = [(1 - interval) / 2, 1 - (1 - interval) / 2, *tails]
    actual, q = one_step_quantiles(process, premia, probs, max_step_gap_days=gap)
    k = actual.size
    if k < 10:
        raise ValueError(f"premia: need at least 10 one-step transitions to score, got {k}")
    ll = step_log_densities(process, premia, gap)
    tag = f"{round(interval * 100):02d}"
    inside = (actual >= q[:, 0]) & (actual <= q[:, 1])
    out: dict[str, float] = {
        "n_scored": float(k),
        "mean_log_pred_density": float(ll.mean()) if ll.size else math.nan,
        f"coverage_{tag}": float(inside.mean()),
        f"coverage_{tag}_error": float(inside.mean() - interval),
        "interval_width_mean": float(np.mean(q[:, 1] - q[:, 0])),
    }
    stationary = simulate_like(process, n_paths_stationary, values.size, rng)
    for j, a in enumerate(tails):
        name = f"q{round(a * 100):02d}"
        qa = q[:, 2 + j]
        hits = actual < qa if a < 0.5 else actual > qa
        nominal = min(a, 1 - a)
        out[f"{name}_hit_rate"] = float(hits.mean())
        out[f"{name}_hit_error"] = float(hits.mean() - nominal)
        out[f"{name}_kupiec_p"] = float(kupiec_pof(int(hits.sum()), k, 1 - nominal)[1])
        out[f"{name}_pinball"] = _pinball(actual, qa, a)
        model_q = float(np.quantile(stationary, a))
        sample_q = float(np.quantile(values, a))
        out[f"uncond_{name}_model"] = model_q
        out[f"uncond_{name}_sample"] = sample_q
        out[f"uncond_{name}_error"] = sample_q - model_q
    out["uncond_mean_error"] = float(values.mean() - stationary.mean())
    out["uncond_sd_error"] = float(values.std(ddof=1) - stationary.std(ddof=1))
    return out
