"""Calibration of the token premium to gold on real data (pure numerics, no I/O).

Aligns token and gold closes into premia (:func:`premium_frame`, :func:`premium_series`), describes
them (:func:`premium_statistics`, :func:`find_episodes`, :func:`clock_comparison`), fits the premium
process (:func:`fit_premium_process`) and checks the fit (:func:`score_out_of_sample`,
:func:`reproduction_check`).
Clocks, weekend rules, steps and estimation: docs/models/premium-calibration.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize

from models.checks import check_daily_index, check_daily_prices, check_int, check_rng
from models.risk import kupiec_pof

if TYPE_CHECKING:  # pragma: no cover - typing only
    from models.premium import PremiumProcess

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
    "DF_MIN",
    "DF_MAX",
    "JUMP_INTENSITY_MAX",
    "PREMIUM_SPECS",
    "PremiumCandidate",
    "PremiumSelection",
    "fit_premium_process",
]

DEFAULT_MAX_STEP_GAP_DAYS = 4
"""Longest calendar gap (days) between two observations still counted as one step of the
trading-day clock: Friday -> Monday is 3, a Friday or Monday holiday makes 4."""

WeekendRule = Literal["drop", "last_gold_close"]
"""How a token row on a day without a gold close is treated (see docs/models/premium-calibration.md)."""


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _check_premia(premia: pd.Series, name: str = "premia", min_obs: int = 1) -> np.ndarray:
    check_daily_index(premia, name)
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
    tok = check_daily_prices(token_close, "token_close")
    gold = check_daily_prices(gold_close, "gold_close")
    if str(token_close.index.tz) != str(gold_close.index.tz):
        raise ValueError(f"token_close/gold_close: time zones differ ({token_close.index.tz} vs {gold_close.index.tz})")
    try:
        oz = float(oz_per_token)
    except (TypeError, ValueError):
        raise ValueError(f"oz_per_token: expected a number > 0, got {oz_per_token!r}") from None
    if not math.isfinite(oz) or oz <= 0:
        raise ValueError(f"oz_per_token: must be a finite number > 0, got {oz_per_token!r}")
    if weekend not in ("drop", "last_gold_close"):
        raise ValueError(f"weekend: {weekend!r} is not 'drop' or 'last_gold_close'")
    max_age = check_int(max_gold_age_days, "max_gold_age_days")

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
    frame = premium_frame(token_close, gold_close, oz_per_token, weekend=weekend, max_gold_age_days=max_gold_age_days)
    return frame["premium_frac"].rename("premium_frac")


def select_window(premia: pd.Series, start: Any, end: Any) -> pd.Series:
    """Rows of ``premia`` dated ``start <= date <= end`` (inclusive whole days).

    ``start``/``end`` are ISO strings, dates or Timestamps (naive ones are read in the index's
    time zone); ``None`` leaves that side open. ``ValueError`` for an unreadable date or
    ``end < start``.
    """
    check_daily_index(premia, "premia")
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
    check_daily_index(premia, "premia")
    gap = check_int(max_step_gap_days, "max_step_gap_days")
    if len(premia) == 0:
        return []
    seg = _segment_ids(premia.index, gap)
    cuts = np.flatnonzero(np.diff(seg)) + 1
    bounds = np.concatenate([[0], cuts, [len(premia)]])
    return [premia.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def step_pairs(premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """``(previous, current)`` values of every one-step transition, shapes ``(k,)`` and ``(k,)``.

    A transition joins consecutive observations at most ``max_step_gap_days`` calendar days
    apart (no transition crosses a longer hole). ``ValueError`` for non-finite values or a
    bad index.
    """
    values = _check_premia(premia, "premia", min_obs=0)
    gap = check_int(max_step_gap_days, "max_step_gap_days")
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


def premium_statistics(premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS) -> PremiumStats:
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
    gap = check_int(max_step_gap_days, "max_step_gap_days")
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
    gap = check_int(max_step_gap_days, "max_step_gap_days")
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
    episodes: list[dict[str, Any]] = []
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
    gap = check_int(max_step_gap_days, "max_step_gap_days")
    common = premia_aligned.index.intersection(premia_reference.index)
    a = premia_aligned.reindex(common)
    r = premia_reference.reindex(common)
    n = int(len(common))
    nan = math.nan
    if n < 3:
        return {
            "n_common": n,
            "sd_aligned": nan,
            "sd_reference": nan,
            "lag1_aligned": nan,
            "lag1_reference": nan,
            "median_abs_diff": nan,
            "sd_diff": nan,
            "max_abs_diff": nan,
            "corr": nan,
        }
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


def gap_marked(premia: pd.Series, max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS) -> pd.Series:
    """``premia`` with a NaN row inserted one day after the start of every hole longer than
    ``max_step_gap_days`` calendar days.

    ``models.premium.PremiumProcess`` takes consecutive non-missing values as one step and a NaN
    as a break of the chain; the marker makes it skip exactly the transitions that
    :func:`step_pairs` skips. Shape ``(n + number of holes,)``; ``ValueError`` as
    :func:`step_pairs`.
    """
    _check_premia(premia, "premia", min_obs=0)
    gap = check_int(max_step_gap_days, "max_step_gap_days")
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
    check_rng(rng)
    n_paths = check_int(n_paths, "n_paths", 1)
    n_obs = check_int(n_obs, "n_obs", 1)
    if burn_in is None:
        phi = abs(float(process.phi))
        burn_in = (
            5000
            if phi >= 1
            else 50
            if phi < 1e-3
            else int(min(5000, max(50, math.ceil(math.log(1e-6) / math.log(phi)))))
        )
    burn_in = check_int(burn_in, "burn_in", 0)
    sims = np.asarray(process.simulate(n_paths, burn_in + n_obs, rng, p0=float(process.stationary_mean())), dtype=float)
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
        out[key] = {
            "sample": s,
            "sim_median": float(med),
            "sim_lo": float(lo),
            "sim_hi": float(hi),
            "p_value": float(p),
            "within": bool(lo <= s <= hi),
        }
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
    check_rng(rng)
    values = _check_premia(premia, "premia", min_obs=2)
    interval = float(interval)
    if not 0 < interval < 1:
        raise ValueError(f"interval: must be in (0, 1), got {interval}")
    tails = tuple(float(a) for a in tail_levels)
    if not all(0 < a < 1 for a in tails):
        raise ValueError(f"tail_levels: expected levels in (0, 1), got {tail_levels!r}")
    gap = check_int(max_step_gap_days, "max_step_gap_days")
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


# --------------------------------------------------------------------------------------------
# estimation: identified conditional MLE over the nested premium models
# --------------------------------------------------------------------------------------------
DF_MIN = 4.0
"""Lower bound of the Student-t degrees of freedom in :func:`fit_premium_process`.

The innovation ``e_t`` is a unit-variance t, ``e = T sqrt((df - 2) / df)``, whose fourth moment is
finite only for df > 4 (excess kurtosis ``6 / (df - 4)``; Johnson, Kotz & Balakrishnan 1995,
*Continuous Univariate Distributions* vol. 2, ch. 28). The floor sits at that boundary (the
estimation box is closed, so a fit may reach 4 itself; it is then listed in ``on_bound``):

* identification: the Student-t (a normal with inverse-gamma variance; Praetz 1972, J. Business
  45(1); Blattberg & Gonedes 1974, J. Business 47(2)) and the Poisson-normal jump mixture (Press
  1967, J. Business 40(3)) are both scale mixtures of normals, so with df free down to 2 the t
  competes with the jump part for the extreme tail. Where the tail is heavier than any
  finite-variance t, the likelihood keeps rising as df falls: on the XAUT 2022-24 fit window the
  location-scale t fitted to the AR(1) residuals has df ~ 1.0, so a unit-variance fit runs to
  whatever floor it is given, and its sigma = scale * sqrt(df / (df - 2)) inflates (x 6.4 at the
  former floor df = 2.05). With df >= 4 the t keeps a finite kurtosis and the extreme tail goes to
  the jump part, whose moments are all finite;
* the calibration is judged on the sample sd (:func:`reproduction_check`): for the sample variance
  to have a finite sampling variance (a sd that a simulated distribution can be compared with) the
  fourth moment must be finite, i.e. df > 4.

On the default windows the unconstrained df is 3.0 (PAXG 2022-24, t alone) and 3.6 (PAXG 2019-20):
the profile likelihood at df = 4 is within 1.6 and 0.1 log-likelihood units of those optima,
inside their 95% likelihood-ratio intervals (half-width 1.92), so the floor costs no fit there.
"""

DF_MAX = 300.0
"""Upper bound of df (beyond it the t is a normal for any daily sample; the normal is its own
candidate)."""

JUMP_INTENSITY_MAX = 0.5
"""Upper bound of the jump intensity per day: jumps
are rare events (Ball & Torous 1983, JFQA 18(1), allow at most one per day); more frequent
"jumps" are a second variance regime, not separately identified from the diffusion."""

PREMIUM_SPECS = ("normal", "t", "normal+jumps", "t+jumps")
"""The nested candidate models of :func:`fit_premium_process` (innovation law + jump part)."""

_SPEC_PARAMS = {
    "normal": ("mean", "phi", "sigma"),
    "t": ("mean", "phi", "sigma", "df"),
    "normal+jumps": ("mean", "phi", "sigma", "jump_intensity_per_day", "jump_mean", "jump_sd"),
    "t+jumps": ("mean", "phi", "sigma", "df", "jump_intensity_per_day", "jump_mean", "jump_sd"),
}
_NESTED_IN = {"normal+jumps": "normal", "t+jumps": "t"}  # lambda = 0 gives the smaller model exactly


@dataclass(frozen=True)
class PremiumCandidate:
    """One candidate model of :func:`fit_premium_process`, fitted by conditional MLE.

    Attributes
    ----------
    spec : str                     one of :data:`PREMIUM_SPECS`.
    process : PremiumProcess       the fitted process (no band; ``fit_info`` unset).
    log_likelihood : float         conditional log-likelihood on the step pairs.
    n_params : int                 free parameters ``k`` (3, 4, 6 or 7).
    aic, bic : float               ``-2 ll + 2 k`` (Akaike 1974, IEEE TAC 19(6)) and
                                   ``-2 ll + k ln n`` (Schwarz 1978, Ann. Statist. 6(2)).
    on_bound : tuple[str, ...]     parameters at a bound of the estimation box (df at
                                   :data:`DF_MIN`/:data:`DF_MAX`, jump intensity at 0 or
                                   :data:`JUMP_INTENSITY_MAX`, phi at +-0.999).
    converged : bool               optimiser success.
    note : str                     fallbacks taken (empty when none).
    """

    spec: str
    process: PremiumProcess
    log_likelihood: float
    n_params: int
    aic: float
    bic: float
    on_bound: tuple[str, ...]
    converged: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (parameters via ``process.to_dict()``)."""
        return {
            "spec": self.spec,
            "params": self.process.to_dict(),
            "log_likelihood": self.log_likelihood,
            "n_params": self.n_params,
            "aic": self.aic,
            "bic": self.bic,
            "on_bound": list(self.on_bound),
            "converged": self.converged,
            "note": self.note,
        }


@dataclass(frozen=True)
class PremiumSelection:
    """Result of :func:`fit_premium_process`.

    Attributes
    ----------
    process : PremiumProcess         the selected model, ``fit_info`` set (method ``"mle"``,
                                     standard errors from the observed information, jump days =
                                     days whose posterior jump probability exceeds 1/2).
    spec : str                       its name in :data:`PREMIUM_SPECS`.
    criterion : str                  ``"bic"`` or ``"aic"``.
    n_obs : int                      step pairs used (:func:`step_pairs`).
    candidates : tuple[PremiumCandidate, ...]  every model fitted, in :data:`PREMIUM_SPECS` order.
    """

    process: PremiumProcess
    spec: str
    criterion: str
    n_obs: int
    candidates: tuple[PremiumCandidate, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the selection and the candidate table."""
        return {
            "spec": self.spec,
            "criterion": self.criterion,
            "n_obs": self.n_obs,
            "params": self.process.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _robust_start(prev: np.ndarray, curr: np.ndarray, threshold: float = 4.0) -> dict[str, Any]:
    """OLS of ``curr`` on ``prev`` re-run without the pairs whose residual lies more than
    ``threshold`` robust sds (1.4826 MAD) from the median (threshold jump detection, Mancini 2009,
    Scand. J. Statist. 36(2)), until the flags settle (at most 50 rounds)."""
    flags = np.zeros(prev.size, dtype=bool)
    for _ in range(50):
        keep = ~flags
        c_phi = np.polyfit(prev[keep], curr[keep], 1)
        resid = curr - c_phi[1] - c_phi[0] * prev
        med = float(np.median(resid[keep]))
        mad = 1.4826 * float(np.median(np.abs(resid[keep] - med)))
        if not mad > 0:
            mad = float(np.std(resid)) or 1e-12
        new = np.abs(resid - med) > threshold * mad
        if new.sum() > 0.25 * prev.size:  # no separable tail
            new = np.zeros_like(flags)
        if np.array_equal(new, flags):
            break
        flags = new
    phi = float(np.clip(c_phi[0], -0.95, 0.95))
    mean = float(c_phi[1] / (1.0 - c_phi[0])) if abs(c_phi[0]) < 0.95 else float(np.mean(curr))
    return {"mean": mean, "phi": phi, "core_sd": mad, "flags": flags, "resid": resid}


def _premium_nll(params: dict[str, Any], prev: np.ndarray, curr: np.ndarray) -> float:
    from models.premium import PremiumProcess

    try:
        proc = PremiumProcess(**params)
    except ValueError:
        return 1e100
    u = curr - proc.conditional_mean(prev, True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = -float(np.sum(proc.innovation_logpdf(u)))
    return v if math.isfinite(v) else 1e100


class _Box:
    """Scaled, bounded coordinates of one candidate for L-BFGS-B: mean and jump mean in units
    of the residual sd, sigma and jump sd as logs, df as log df, phi and lambda as they are."""

    def __init__(self, spec: str, sd: float, df_min: float, banded: bool = False) -> None:
        self.names = _SPEC_PARAMS[spec] + (("band_pull",) if banded else ())
        self.sd = sd
        lo_s, hi_s = math.log(sd * 1e-3), math.log(sd * 1e2)
        box = {
            "mean": (None, None),
            "phi": (-0.999, 0.999),
            "sigma": (lo_s, hi_s),
            "df": (math.log(df_min), math.log(DF_MAX)),
            "jump_intensity_per_day": (0.0, JUMP_INTENSITY_MAX),
            "jump_mean": (None, None),
            "jump_sd": (lo_s, hi_s),
            "band_pull": (0.0, 1.0),
        }
        self.bounds = [box[k] for k in self.names]

    def encode(self, p: dict[str, float]) -> np.ndarray:
        out = []
        for k in self.names:
            v = float(p[k])
            if k in ("mean", "jump_mean"):
                out.append(v / self.sd)
            elif k in ("sigma", "jump_sd", "df"):
                out.append(math.log(v))
            else:
                out.append(v)
        z = np.array(out)
        for i, (lo, hi) in enumerate(self.bounds):
            z[i] = min(max(z[i], -np.inf if lo is None else lo), np.inf if hi is None else hi)
        return z

    def decode(self, z: np.ndarray) -> dict[str, float]:
        p: dict[str, float] = {}
        for k, v in zip(self.names, z, strict=True):
            if k in ("mean", "jump_mean"):
                p[k] = float(v) * self.sd
            elif k in ("sigma", "jump_sd", "df"):
                p[k] = math.exp(float(v))
            else:
                p[k] = float(v)
        return p

    def on_bound(self, z: np.ndarray) -> tuple[str, ...]:
        hit = []
        for k, v, (lo, hi) in zip(self.names, z, self.bounds, strict=True):
            tol = 1e-3 * max(1.0, abs(v))
            if (lo is not None and v - lo < tol) or (hi is not None and hi - v < tol):
                hit.append(k)
        return tuple(hit)


def _fit_candidate(
    spec: str,
    starts: list[dict[str, float]],
    prev,
    curr,
    sd: float,
    df_min: float,
    max_iter: int,
    n_runs: int,
    band: dict[str, float] | None = None,
):
    """Best L-BFGS-B optimum of the conditional log-likelihood, run from the ``n_runs`` best of
    ``starts`` (ranked by their likelihood); returns ``(params, nll, converged, on_bound)``.
    A run that ends above its start's negative log-likelihood keeps the start. With ``band``
    (``band_lower``/``band_upper``, held fixed) ``band_pull`` is a free parameter in [0, 1]."""
    box = _Box(spec, sd, df_min, banded=band is not None)
    fixed = band or {}

    def f(z: np.ndarray) -> float:
        return _premium_nll({**box.decode(z), **fixed}, prev, curr)

    ranked = sorted(((f(z0), i, z0) for i, z0 in enumerate(box.encode(s) for s in starts)), key=lambda t: t[:2])
    best: tuple[np.ndarray, float, bool] | None = None
    for f0, _, z0 in ranked[:n_runs]:
        res = optimize.minimize(f, z0, method="L-BFGS-B", bounds=box.bounds, options={"maxiter": max_iter})
        z, val, ok = (res.x, float(res.fun), bool(res.success)) if res.fun <= f0 else (z0, f0, False)
        if best is None or val < best[1]:
            best = (z, val, ok)
    if best is None:
        raise ValueError("n_runs: expected at least one start")
    z, val, ok = best
    return {**box.decode(z), **fixed}, val, ok, box.on_bound(z)


def _observed_information_se(params: dict[str, float], free: Sequence[str], prev, curr) -> dict[str, float]:
    """Standard errors from the inverse numerical Hessian of the negative log-likelihood in the
    natural parameters (central differences); NaN when the Hessian is not positive definite."""
    names = list(free)
    se = {k: math.nan for k in names}
    if not names:
        return se
    theta = np.array([params[k] for k in names], dtype=float)
    h = 1e-4 * np.maximum(np.abs(theta), 1e-3)

    def f(t: np.ndarray) -> float:
        return _premium_nll({**params, **dict(zip(names, t, strict=True))}, prev, curr)

    k = len(names)
    hess = np.empty((k, k))
    f0 = f(theta)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        hess[i, i] = (f(theta + ei) - 2 * f0 + f(theta - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            hess[i, j] = hess[j, i] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    if not np.isfinite(hess).all() or np.linalg.eigvalsh(hess).min() <= 0:
        return se
    cov = np.linalg.inv(hess)
    return {name: float(math.sqrt(cov[i, i])) for i, name in enumerate(names)}


def _gaussian_band_ols(
    prev: np.ndarray, curr: np.ndarray, band: dict[str, float] | None
) -> tuple[dict[str, float], tuple[str, ...]]:
    """Gaussian conditional MLE of the (band) AR(1): OLS of ``p_t`` on ``1, p_{t-1}`` and, with a
    band, ``-x(p_{t-1})``; ``sigma^2 = RSS / n`` (Hamilton 1994, sec. 5.2). A kappa outside
    [0, 1] is set to the nearest bound and the rest refitted given it; returns the parameters
    and the names at a bound."""
    if band is None:
        beta = np.polyfit(prev, curr, 1)
        phi = float(np.clip(beta[0], -0.999, 0.999))
        resid = curr - beta[1] - beta[0] * prev
        return {"mean": float(beta[1] / (1.0 - phi)), "phi": phi, "sigma": float(np.sqrt(np.mean(resid**2)))}, ()
    x = np.maximum(prev - band["band_upper"], 0.0) - np.maximum(band["band_lower"] - prev, 0.0)
    design = np.column_stack([np.ones_like(prev), prev, -x])
    coef = (
        np.linalg.lstsq(design, curr, rcond=None)[0] if x.any() else np.array([*np.polyfit(prev, curr, 1)[::-1], 0.0])
    )
    kappa = float(coef[2])
    bound: tuple[str, ...] = ()
    if not 0.0 <= kappa <= 1.0 or not x.any():
        kappa = float(np.clip(kappa, 0.0, 1.0))
        bound = ("band_pull",) if x.any() else ()
        coef = np.array([*np.polyfit(prev, curr + kappa * x, 1)[::-1], kappa])
    phi = float(np.clip(coef[1], -0.999, 0.999))
    resid = curr - coef[0] - coef[1] * prev + kappa * x
    params = {"mean": float(coef[0] / (1.0 - phi)), "phi": phi, "sigma": float(np.sqrt(np.mean(resid**2)))}
    return {**params, **band, "band_pull": kappa}, bound


def fit_premium_process(
    premia: pd.Series,
    *,
    innovations: Literal["normal", "t"] = "t",
    jumps: bool = True,
    criterion: Literal["bic", "aic"] = "bic",
    df_min: float = DF_MIN,
    max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
    max_iter: int = 500,
    band: tuple[float, float] | None = None,
) -> PremiumSelection:
    """Fit the AR(1) premium process by conditional maximum likelihood with its identification
    restrictions, and select among the nested models by an information criterion.

    Model: ``p_t = m + phi (p_{t-1} - m) - kappa x(p_{t-1}) + sigma e_t + J_t``
    (``models.premium.PremiumProcess``; unit-variance Student-t or normal ``e_t``, compound
    Poisson-normal ``J_t``, no drawdown dependence; ``x`` the excess over the arbitrage ``band``
    and ``kappa`` its pull, a band threshold autoregression after Obstfeld & Taylor 1997, J.
    Japanese Int. Economies 11(4), with the thresholds fixed by the fees rather than estimated;
    without ``band`` kappa is 0). Every observed step is taken as an open day. Estimation:

    1. Conditional likelihood of the one-step transitions of :func:`step_pairs` (each segment's
       first observation conditioned on, no step across a hole longer than
       ``max_step_gap_days``): for an AR(1) the exact conditional MLE, Hamilton 1994, *Time Series
       Analysis*, sec. 5.2 (the Gaussian case is OLS on the pairs). The density is the process's
       own :meth:`~models.premium.PremiumProcess.innovation_logpdf`.
    2. Candidates :data:`PREMIUM_SPECS` allowed by the arguments (``innovations="t"`` admits the
       normal as its df -> inf limit, ``jumps=True`` admits lambda = 0): ``normal``, ``t``,
       ``normal+jumps`` (Press 1967 / Ball & Torous 1983), ``t+jumps``. Each is maximised with
       L-BFGS-B from several starting values: robust ones (OLS after removing residuals beyond 4
       robust sds, core scale from the MAD, jump size from the removed residuals) and the optimum
       of the model it nests (the jump models start from their no-jump optimum with a small
       intensity; ``t+jumps`` also from ``normal+jumps`` at df = 30). A larger model's optimum is
       therefore never below the model it contains; if the optimiser still ends lower, the nested
       optimum (lambda = 0) is kept and noted.
    3. Bounds that make the parameters identified: ``df`` in [``df_min``, :data:`DF_MAX`] (see
       :data:`DF_MIN` for why 4: without it df runs to its floor and sigma inflates), the jump
       intensity in [0, :data:`JUMP_INTENSITY_MAX`], ``|phi| <= 0.999``.
    4. Selection: the smallest ``criterion`` (BIC by default: consistent for nested models and,
       unlike a likelihood-ratio test of lambda = 0, not affected by the parameter lying on the
       boundary of its space under the null; Schwarz 1978). When the jump part adds less than its
       three parameters' penalty, or df adds less than one, the smaller model is chosen: the jump
       component is then not identified from the t tail, or the t from the normal.

    Parameters
    ----------
    premia : pd.Series, shape (n,)
        Premia as fractions on a midnight ``DatetimeIndex`` (as :func:`premium_series`).
    innovations : {"t", "normal"}
        Largest innovation law considered.
    jumps : bool
        Consider the jump part.
    criterion : {"bic", "aic"}
        Information criterion of the selection.
    df_min : float
        Lower bound of df, > 2 (default :data:`DF_MIN` = 4).
    max_step_gap_days : int
        Longest calendar gap still one step.
    max_iter : int
        L-BFGS-B iterations per start.
    band : (float, float) or None
        Arbitrage band ``(lower, upper)``, fractions (e.g. :func:`models.premium.arbitrage_band`);
        given, ``band_pull`` is estimated in [0, 1] in every candidate (one more parameter; the
        Gaussian candidate is then OLS on ``1, p_{t-1}, x(p_{t-1})`` with kappa clipped to [0, 1]).

    Returns
    -------
    PremiumSelection
        ``process`` (the selected model, ``fit_info`` set) and the candidate table.

    Raises
    ------
    ValueError
        Fewer than 30 step pairs, all values equal, a bad series (row named), an unknown
        ``innovations``/``criterion``, ``df_min`` not in (2, DF_MAX) or a bad ``max_iter``.
    """
    from models.premium import PremiumFit, PremiumProcess

    if innovations not in ("normal", "t"):
        raise ValueError(f"innovations: must be 'normal' or 't', got {innovations!r}")
    if criterion not in ("bic", "aic"):
        raise ValueError(f"criterion: must be 'bic' or 'aic', got {criterion!r}")
    try:
        df_min = float(df_min)
    except (TypeError, ValueError):
        raise ValueError(f"df_min: expected a number in (2, {DF_MAX}), got {df_min!r}") from None
    if not 2.0 < df_min < DF_MAX:
        raise ValueError(f"df_min: must be in (2, {DF_MAX}), got {df_min!r}")
    max_iter = check_int(max_iter, "max_iter", 1)
    _check_premia(premia, "premia", min_obs=0)
    prev, curr = step_pairs(premia, check_int(max_step_gap_days, "max_step_gap_days"))
    n = int(prev.size)
    if n < 30:
        raise ValueError(f"premia: need at least 30 one-step pairs, got {n}")
    if np.ptp(curr) == 0:
        raise ValueError("premia: all values are equal; nothing to fit")
    fixed: dict[str, float] | None = None
    if band is not None:
        lo_b, hi_b = (float(v) for v in band)
        if not (math.isfinite(lo_b) and math.isfinite(hi_b) and lo_b <= hi_b):
            raise ValueError(f"band: expected finite (lower, upper) with lower <= upper, got {band!r}")
        fixed = {"band_lower": lo_b, "band_upper": hi_b}
    extra = ("band_pull",) if fixed else ()

    rob = _robust_start(prev, curr)
    beta = np.polyfit(prev, curr, 1)
    phi_ols = float(np.clip(beta[0], -0.95, 0.95))
    resid = curr - beta[1] - beta[0] * prev
    sd = float(np.sqrt(np.mean(resid**2))) or 1e-12
    mean_ols = float(beta[1] / (1.0 - beta[0])) if abs(beta[0]) < 0.95 else float(np.mean(curr))
    core = float(min(max(rob["core_sd"], 1e-3 * sd), sd))
    flagged = rob["resid"][rob["flags"]]
    lam0 = float(np.clip(-math.log1p(-rob["flags"].mean()), 0.01, 0.45)) if flagged.size else 0.05
    mu_j0 = float(flagged.mean()) if flagged.size else 0.0
    s_j0 = float(max(flagged.std(ddof=1) if flagged.size > 1 else 0.0, 3.0 * core, 1e-3 * sd))

    specs = [s for s in PREMIUM_SPECS if (innovations == "t" or not s.startswith("t")) and (jumps or "jumps" not in s)]
    fits: dict[str, tuple[dict[str, Any], float, bool, tuple[str, ...], str]] = {}
    small_jump = {"jump_intensity_per_day": 0.01, "jump_mean": mu_j0, "jump_sd": s_j0}
    for spec in specs:
        note = ""
        if spec == "normal":
            # Gaussian conditional MLE = OLS on the pairs, sigma^2 = RSS / n (Hamilton 1994, 5.2)
            params, bound = _gaussian_band_ols(prev, curr, fixed)
            fits[spec] = (params, _premium_nll(params, prev, curr), True, bound, note)
            continue
        starts: list[dict[str, float]] = []
        if spec == "t":
            starts = [
                {"mean": mean_ols, "phi": phi_ols, "sigma": sd, "df": max(8.0, df_min + 1.0)},
                {"mean": rob["mean"], "phi": rob["phi"], "sigma": sd, "df": df_min + 0.5},
            ]
        elif spec == "normal+jumps":
            starts = [
                {
                    "mean": rob["mean"],
                    "phi": rob["phi"],
                    "sigma": core,
                    "jump_intensity_per_day": lam0,
                    "jump_mean": mu_j0,
                    "jump_sd": s_j0,
                },
                {**fits["normal"][0], **small_jump},
            ]
        else:  # t+jumps
            starts = [{**fits["t"][0], **small_jump}]
            if "normal+jumps" in fits:
                starts.append({**fits["normal+jumps"][0], "df": 30.0})
            starts.append(
                {
                    "mean": rob["mean"],
                    "phi": rob["phi"],
                    "sigma": core,
                    "df": 8.0,
                    "jump_intensity_per_day": lam0,
                    "jump_mean": mu_j0,
                    "jump_sd": s_j0,
                }
            )
        # t+jumps: one run from the best start (each density evaluation is a quadrature)
        n_runs = 1 if spec == "t+jumps" else len(starts)
        if fixed:
            kappa0 = fits["normal"][0].get("band_pull", 0.0) if "normal" in fits else 0.0
            starts = [{"band_pull": kappa0, **st} for st in starts]
        params, val, ok, bound = _fit_candidate(spec, starts, prev, curr, sd, df_min, max_iter, n_runs, fixed)
        nested = _NESTED_IN.get(spec)
        if nested in fits and val > fits[nested][1] + 1e-6:
            base = fits[nested][0]
            params = {**base, "jump_intensity_per_day": 0.0, "jump_mean": 0.0, "jump_sd": 0.0}
            val, bound = fits[nested][1], (*fits[nested][3], "jump_intensity_per_day")
            note = f"optimiser ended below the nested {nested} model; its optimum (lambda = 0) kept"
        fits[spec] = (params, val, ok, bound, note)

    cands = []
    for spec in specs:
        fit_params, val, ok, bound, note = fits[spec]
        k = len(_SPEC_PARAMS[spec]) + len(extra)
        ll = -val
        cands.append(
            PremiumCandidate(
                spec=spec,
                process=PremiumProcess(**fit_params),
                log_likelihood=ll,
                n_params=k,
                aic=-2 * ll + 2 * k,
                bic=-2 * ll + k * math.log(n),
                on_bound=bound,
                converged=ok,
                note=note,
            )
        )
    best = min(cands, key=lambda c: (getattr(c, criterion), c.n_params))

    # diagnostics of the selected model: standard errors, posterior jump days
    params = fits[best.spec][0]
    free = [k for k in _SPEC_PARAMS[best.spec] + extra if k not in best.on_bound]
    if "jump_intensity_per_day" in best.on_bound and params.get("jump_intensity_per_day", 0.0) <= 0:
        free = [k for k in free if not k.startswith("jump_")]
    se = _observed_information_se(params, free, prev, curr)
    se.update({k: math.nan for k in _SPEC_PARAMS[best.spec] + extra if k not in se})
    proc = best.process
    jump_days: tuple[Any, ...] = ()
    if proc.jump_intensity_per_day > 0:
        u = curr - proc.conditional_mean(prev, True)
        no_jump = replace(proc, jump_intensity_per_day=0.0, jump_mean=0.0, jump_sd=0.0, fit_info=None)
        post = 1.0 - np.exp(-proc.jump_intensity_per_day + no_jump.innovation_logpdf(u) - proc.innovation_logpdf(u))
        ok_pair = np.diff(_day_numbers(premia.index)) <= check_int(max_step_gap_days, "max_step_gap_days")
        labels = premia.index[1:][ok_pair]
        jump_days = tuple(labels[post > 0.5])
    table = ", ".join(f"{c.spec} {getattr(c, criterion):.1f}" for c in cands)
    notes = [f"selected {best.spec} by {criterion.upper()} ({table})"]
    notes += [f"{c.spec}: on bound {', '.join(c.on_bound)}" for c in cands if c.on_bound]
    notes += [f"{c.spec}: {c.note}" for c in cands if c.note]
    info = PremiumFit("mle", n, len(jump_days), best.log_likelihood, se, best.converged, "; ".join(notes), jump_days)
    return PremiumSelection(
        process=replace(proc, fit_info=info), spec=best.spec, criterion=criterion, n_obs=n, candidates=tuple(cands)
    )
