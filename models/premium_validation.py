"""The token model against its own history: the premium the model simulates on the real gold path
beside the premium observed, a VaR-style backtest of the premium, and the clock noise of the
observed premium. Method, rules and sources: docs/models/premium-validation.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.calibration import DEFAULT_MAX_STEP_GAP_DAYS, one_step_quantiles
from models.checks import check_int, check_rng
from models.peg import longest_depeg_days
from models.premium import PremiumProcess
from models.risk import christoffersen_independence, kupiec_pof
from models.scenarios import on_calendar_days
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import ReserveBackedTokenSpec

__all__ = [
    "THRESHOLDS",
    "QUANTILES",
    "premium_statistics_on",
    "replay_premium",
    "distribution_comparison",
    "premium_band_backtest",
    "clock_noise",
    "verdict",
]

THRESHOLDS = (0.005, 0.01)
"""Premium levels (fractions of NAV) whose exceedance share is compared: 0.5% and 1%."""

QUANTILES = (0.01, 0.05, 0.95, 0.99)
"""Premium quantiles compared."""


def _series(x: pd.Series, name: str) -> pd.Series:
    if not isinstance(x, pd.Series) or not isinstance(x.index, pd.DatetimeIndex):
        raise ValueError(f"{name}: expected a pandas Series on a DatetimeIndex")
    s = x.astype(float).dropna()
    if s.index.tz is not None:
        s.index = s.index.tz_convert(None)
    s.index = s.index.normalize()
    if not s.index.is_monotonic_increasing or not s.index.is_unique:
        raise ValueError(f"{name}: dates must be increasing and unique")
    if not np.isfinite(s.to_numpy()).all():
        raise ValueError(f"{name}: infinite values")
    return s


def premium_statistics_on(premia: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of premium paths, one value per path.

    Parameters
    ----------
    premia : ndarray, shape (n_paths, k) or (k,)
        Premia (fractions of NAV) on ``k`` observation days in time order, k >= 2.

    Returns
    -------
    dict of ndarray (n_paths,)
        ``sd`` (ddof=1), ``q01``/``q05``/``q95``/``q99`` (numpy's default linear quantile),
        ``share_abs_gt_0.5pct`` and ``share_abs_gt_1pct`` (share of the days with |premium|
        above the level), ``longest_run_abs_gt_1pct`` (most consecutive observation days beyond
        1%, :func:`models.peg.longest_depeg_days`).

    Raises
    ------
    ValueError
        For fewer than 2 days or non-finite values.
    """
    p = np.atleast_2d(np.asarray(premia, dtype=float))
    if p.ndim != 2 or p.shape[1] < 2 or not np.isfinite(p).all():
        raise ValueError(f"premia: expected finite paths of >= 2 days, got shape {np.shape(premia)}")
    out: dict[str, np.ndarray] = {"sd": p.std(axis=1, ddof=1)}
    qs = np.quantile(p, QUANTILES, axis=1)
    for q, row in zip(QUANTILES, qs, strict=True):
        out[f"q{round(q * 100):02d}"] = row
    for th in THRESHOLDS:
        out[f"share_abs_gt_{th * 100:g}pct"] = (np.abs(p) > th).mean(axis=1)
    out["longest_run_abs_gt_1pct"] = longest_depeg_days(p, 0.01).astype(float)
    return out


def replay_premium(
    spec: ReserveBackedTokenSpec,
    gold_usd_per_oz: pd.Series,
    start: Any,
    end: Any,
    n_paths: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Run the real gold path of a window through the reserve-backed token model, ``n_paths``
    times (the premium's own noise, runs and flows drawn afresh on each path).

    The gold closes dated ``start <= date <= end`` are put on the calendar-day clock
    (:func:`models.scenarios.on_calendar_days`: weekends and holidays carry the last close; the
    primary market follows the spec's ``market_hours``) and the model runs from day 0 with its
    own day-0 premium.

    Parameters
    ----------
    spec : ReserveBackedTokenSpec
        The token (its premium process as calibrated or assumed).
    gold_usd_per_oz : pandas.Series
        Gold closes, USD per troy ounce, on a DatetimeIndex (trading days).
    start, end : date-like
        The window, inclusive.
    n_paths : int
        Paths, >= 1.
    rng : numpy.random.Generator

    Returns
    -------
    pandas.DataFrame, shape (C + 1, n_paths)
        Simulated premium (fraction of NAV) per calendar day (index) and path (columns).

    Raises
    ------
    ValueError
        For fewer than 2 gold closes in the window, a bad series, size or ``rng``.
    """
    n = check_int(n_paths, "n_paths", 1)
    check_rng(rng)
    gold = _series(gold_usd_per_oz, "gold_usd_per_oz")
    window = gold.loc[pd.Timestamp(start) : pd.Timestamp(end)]
    if len(window) < 2:
        raise ValueError(f"gold_usd_per_oz: fewer than 2 closes in {start}..{end}")
    prices, calendar, _ = on_calendar_days(np.tile(window.to_numpy(), (n, 1)), window.index)
    out = ReserveBackedToken(spec).run(prices, calendar=calendar, rng=rng)
    return pd.DataFrame(out.premium_frac.T, index=calendar)


def distribution_comparison(simulated: pd.DataFrame, observed: pd.Series, band: float = 0.90) -> dict[str, Any]:
    """Observed premium statistics beside the simulated ones on the same days.

    The simulated paths are read on the observed days (weekdays with a gold close; the
    calendar days between are simulated but not compared, as nothing is observed there). For
    each statistic of :func:`premium_statistics_on` the result gives the observed value, the
    median over the simulated paths and their central ``band`` range, and whether the observed
    value lies in it.

    Parameters
    ----------
    simulated : pandas.DataFrame, shape (days, n_paths)
        :func:`replay_premium`.
    observed : pandas.Series
        Observed premia (fractions), DatetimeIndex.
    band : float
        Central range of the simulated statistics, in (0, 1).

    Returns
    -------
    dict
        ``n_days``, ``first_date``, ``last_date``, ``n_paths``, ``band`` and ``statistics``:
        ``{name: {"observed", "simulated_median", "simulated_lo", "simulated_hi", "within"}}``.

    Raises
    ------
    ValueError
        For fewer than 2 common days, a bad band or series.
    """
    if not 0.0 < band < 1.0:
        raise ValueError(f"band: must be in (0, 1), got {band!r}")
    obs = _series(observed, "observed")
    days = obs.index.intersection(simulated.index)
    if len(days) < 2:
        raise ValueError("observed: fewer than 2 days in common with the simulation")
    o = premium_statistics_on(obs.loc[days].to_numpy())
    s = premium_statistics_on(simulated.loc[days].to_numpy().T)
    lo_q, hi_q = (1 - band) / 2, 1 - (1 - band) / 2
    stats: dict[str, dict[str, Any]] = {}
    for key in o:
        lo, med, hi = np.quantile(s[key], [lo_q, 0.5, hi_q])
        v = float(o[key][0])
        stats[key] = {
            "observed": v,
            "simulated_median": float(med),
            "simulated_lo": float(lo),
            "simulated_hi": float(hi),
            "within": bool(lo <= v <= hi),
        }
    return {
        "n_days": int(len(days)),
        "first_date": str(days[0].date()),
        "last_date": str(days[-1].date()),
        "n_paths": int(simulated.shape[1]),
        "band": band,
        "statistics": stats,
    }


def premium_band_backtest(
    process: PremiumProcess,
    premia: pd.Series,
    *,
    probs: tuple[float, float] = (0.01, 0.99),
    max_step_gap_days: int = DEFAULT_MAX_STEP_GAP_DAYS,
) -> dict[str, Any]:
    """Backtest the premium like a VaR: the share of observed days outside the model's one-day-
    ahead ``probs`` band, with Kupiec's unconditional-coverage test on the whole band and each
    tail and Christoffersen's independence test on the band's exceptions.

    For every one-day step of ``premia`` (:func:`models.calibration.step_pairs`) the band is the
    process's predictive ``probs`` quantiles of today's premium given yesterday's
    (:func:`models.calibration.one_step_quantiles`, an open primary-market day). Kupiec (1995),
    J. Derivatives 3(2); Christoffersen (1998), Int. Econ. Rev. 39(4).

    Parameters
    ----------
    process : PremiumProcess
        The fitted process.
    premia : pandas.Series
        Observed premia (fractions), DatetimeIndex.
    probs : (float, float)
        Lower and upper quantile levels, 0 < lower < upper < 1.
    max_step_gap_days : int
        Longest calendar gap that is one step (default: Friday to Monday and a holiday).

    Returns
    -------
    dict
        ``n_steps``, ``expected_share_outside`` (``1 - (upper - lower)``), ``share_outside``,
        ``below`` / ``above`` (counts), ``kupiec_p`` (whole band), ``kupiec_p_lower``,
        ``kupiec_p_upper``, ``christoffersen_p`` (independence of the exceptions).

    Raises
    ------
    ValueError
        For bad probabilities, fewer than 2 steps or a bad series.
    """
    lo, hi = (float(v) for v in probs)
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"probs: need 0 < lower < upper < 1, got {probs!r}")
    actual, q = one_step_quantiles(process, premia, (lo, hi), max_step_gap_days=max_step_gap_days)
    n = int(actual.size)
    if n < 2:
        raise ValueError(f"premia: fewer than 2 one-day steps (got {n})")
    below, above = actual < q[:, 0], actual > q[:, 1]
    outside = below | above
    expected = 1.0 - (hi - lo)
    return {
        "n_steps": n,
        "band_probs": [lo, hi],
        "expected_share_outside": expected,
        "share_outside": float(outside.mean()),
        "below": int(below.sum()),
        "above": int(above.sum()),
        "kupiec_p": kupiec_pof(int(outside.sum()), n, 1.0 - expected)[1],
        "kupiec_p_lower": kupiec_pof(int(below.sum()), n, 1.0 - lo)[1],
        "kupiec_p_upper": kupiec_pof(int(above.sum()), n, hi)[1],
        "christoffersen_p": christoffersen_independence(outside)[1],
    }


def clock_noise(premia_a: pd.Series, premia_b: pd.Series) -> dict[str, Any]:
    """Clock noise in two tokens' observed premia, measured on the days both are observed.

    Both premia are measured against the same gold close, hours before the tokens' 24:00 UTC
    close, so each carries the gold move between the two clocks, ``c_t``: ``p_i = q_i + c_t``
    with ``q_i`` the premium itself. With ``q_a``, ``q_b`` and ``c`` uncorrelated, ``Cov(p_a,
    p_b) = Var c``: the covariance estimates the clock-noise variance (an upper bound when the
    two premia share a market factor), ``sqrt(Var p_i - Cov)`` the premium's own sd, and the
    log price ratio of the two tokens, ``log((1 + p_a) / (1 + p_b))``, shares one clock and
    carries no clock noise at all.

    Parameters
    ----------
    premia_a, premia_b : pandas.Series
        Premia (fractions) of two tokens of the same gold content, DatetimeIndex.

    Returns
    -------
    dict
        ``n_days``, ``first_date``, ``last_date``, ``sd_a``, ``sd_b``, ``correlation``,
        ``clock_noise_sd`` (``sqrt(max(Cov, 0))``), ``clock_noise_share_of_variance_a`` /
        ``_b``, ``premium_sd_net_a`` / ``_b``, ``ratio_sd`` (sd of the log price ratio) and
        ``ratio_share_abs_gt_1pct``.

    Raises
    ------
    ValueError
        For fewer than 10 common days or a bad series.
    """
    a, b = _series(premia_a, "premia_a"), _series(premia_b, "premia_b")
    days = a.index.intersection(b.index)
    if len(days) < 10:
        raise ValueError(f"premia: fewer than 10 common days (got {len(days)})")
    x, y = a.loc[days].to_numpy(), b.loc[days].to_numpy()
    cov = float(np.cov(x, y, ddof=1)[0, 1])
    va, vb = float(np.var(x, ddof=1)), float(np.var(y, ddof=1))
    noise = max(cov, 0.0)
    ratio = np.log1p(x) - np.log1p(y)
    return {
        "n_days": int(len(days)),
        "first_date": str(days[0].date()),
        "last_date": str(days[-1].date()),
        "sd_a": math.sqrt(va),
        "sd_b": math.sqrt(vb),
        "correlation": cov / math.sqrt(va * vb) if va > 0 and vb > 0 else math.nan,
        "clock_noise_sd": math.sqrt(noise),
        "clock_noise_share_of_variance_a": noise / va if va > 0 else math.nan,
        "clock_noise_share_of_variance_b": noise / vb if vb > 0 else math.nan,
        "premium_sd_net_a": math.sqrt(max(va - noise, 0.0)),
        "premium_sd_net_b": math.sqrt(max(vb - noise, 0.0)),
        "ratio_sd": float(np.std(ratio, ddof=1)),
        "ratio_share_abs_gt_1pct": float((np.abs(ratio) > 0.01).mean()),
    }


def verdict(
    backtest_out_of_sample: dict[str, Any],
    comparison_out_of_sample: dict[str, Any],
    *,
    min_p: float = 0.05,
    statistics: Sequence[str] = ("sd", "share_abs_gt_1pct"),
) -> dict[str, Any]:
    """Pass or fail of the token model against history, out of sample.

    Pass when the premium band backtest's Kupiec p-value (whole band) is at least ``min_p`` and
    each named statistic observed in the test window lies in the simulated central range of
    :func:`distribution_comparison`. Returns ``{"verdict": "pass" | "fail", "rule", "reasons"}``
    (``reasons`` lists each failed check with its numbers). Raises KeyError for a statistic the
    comparison does not hold.
    """
    reasons = []
    p = backtest_out_of_sample["kupiec_p"]
    if not p >= min_p:
        reasons.append(
            f"premium band backtest: {backtest_out_of_sample['share_outside']:.2%} of days outside the "
            f"{backtest_out_of_sample['band_probs'][0]:.0%}-{backtest_out_of_sample['band_probs'][1]:.0%} band, "
            f"expected {backtest_out_of_sample['expected_share_outside']:.0%} (Kupiec p = {p:.3g} < {min_p:g})"
        )
    for key in statistics:
        s = comparison_out_of_sample["statistics"][key]
        if not s["within"]:
            reasons.append(
                f"{key}: observed {s['observed']:.4g} outside the simulated "
                f"{comparison_out_of_sample['band']:.0%} range {s['simulated_lo']:.4g}..{s['simulated_hi']:.4g}"
            )
    rule = (
        f"out of sample: Kupiec p >= {min_p:g} for the premium band, and the observed "
        + ", ".join(statistics)
        + f" inside the simulated {comparison_out_of_sample['band']:.0%} range"
    )
    return {"verdict": "fail" if reasons else "pass", "rule": rule, "reasons": reasons}
