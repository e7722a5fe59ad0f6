"""Champion selection on a validation window, VaR backtest on a later hold-out (pure numerics).

Daily log returns are cut into three consecutive windows: fitting, validation, hold-out. Each
candidate is fitted on the fitting window and scored on the validation window; the champion is
refitted on everything before the hold-out and backtested on it, so the backtest's p-values are
not conditioned on having been the best on the same days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from models.checks import check_int, check_level
from models.risk import basel_traffic_light, christoffersen_independence, kupiec_pof, quantile_loss
from models.volatility import MIN_GARCH_OBS, GarchFit, fit_garch, one_day_var_forecasts

__all__ = [
    "BASEL_DAYS",
    "KUPIEC_SIZE",
    "MIN_FIT_DAYS",
    "CandidateScore",
    "HoldoutBacktest",
    "TrainingWindows",
    "Window",
    "backtest_on_holdout",
    "level_key",
    "score_on_validation",
    "split_windows",
    "var_backtest",
]

MIN_FIT_DAYS = 500
"""Fewest returns the fitting window may keep (two trading years; ``fit_garch`` needs 250)."""

KUPIEC_SIZE = 0.05
"""Size of Kupiec's test a candidate must pass on the validation window to be preferred."""

BASEL_DAYS = 250
"""Days of the Basel traffic-light count (the last 250 days of a backtest, at 99 %)."""


def level_key(level: float) -> str:
    """The key of a confidence level in backtest mappings: ``level_key(0.99) == "0.99"``."""
    return f"{check_level(level):.2f}"


@dataclass(frozen=True)
class Window:
    """Consecutive returns at positions ``start .. stop - 1`` of a series, with the ISO dates
    (``YYYY-MM-DD``) of the first and last of them."""

    start: int
    stop: int
    first_date: str
    last_date: str

    @property
    def n_returns(self) -> int:
        """Number of returns in the window, ``stop - start``."""
        return self.stop - self.start

    def to_dict(self) -> dict[str, Any]:
        """``{"first_date", "last_date", "n_returns"}`` (JSON types)."""
        return {"first_date": self.first_date, "last_date": self.last_date, "n_returns": self.n_returns}


@dataclass(frozen=True)
class TrainingWindows:
    """The fitting, validation and hold-out windows of one series, consecutive and disjoint:
    ``fit.stop == validation.start``, ``validation.stop == holdout.start``, and ``holdout.stop``
    is the series length."""

    fit: Window
    validation: Window
    holdout: Window

    @property
    def pre_holdout(self) -> Window:
        """Fitting and validation windows together: the data the backtested fit sees."""
        return Window(self.fit.start, self.validation.stop, self.fit.first_date, self.validation.last_date)

    @property
    def full_sample(self) -> Window:
        """All three windows: the data of the full-sample refit."""
        return Window(self.fit.start, self.holdout.stop, self.fit.first_date, self.holdout.last_date)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{"fit", "validation", "holdout"}``, each :meth:`Window.to_dict`."""
        return {"fit": self.fit.to_dict(), "validation": self.validation.to_dict(), "holdout": self.holdout.to_dict()}


def _iso(stamp: Any) -> str:
    return pd.Timestamp(stamp).date().isoformat()


def split_windows(
    dates: Sequence[Any] | pd.Index,
    validation_days: int,
    holdout_days: int,
    min_fit_days: int = MIN_FIT_DAYS,
) -> TrainingWindows:
    """Cut a daily series into fitting, validation and hold-out windows, in that order.

    The hold-out is the last ``holdout_days`` returns, the validation window the
    ``validation_days`` returns before it, the fitting window everything earlier.

    Parameters
    ----------
    dates : sequence of dates, shape (n,)
        Dates of the returns (anything ``pandas.Timestamp`` reads), strictly increasing.
    validation_days, holdout_days : int
        Window lengths in returns (trading days), each >= 1.
    min_fit_days : int
        Fewest returns the fitting window may keep, >= ``MIN_GARCH_OBS`` (250).

    Returns
    -------
    TrainingWindows

    Raises
    ------
    ValueError
        If a length is not an integer in range, the dates are not strictly increasing, or the
        series is too short: ``n - validation_days - holdout_days < min_fit_days`` (the message
        gives all four numbers).
    """
    v = check_int(validation_days, "validation_days")
    h = check_int(holdout_days, "holdout_days")
    m = check_int(min_fit_days, "min_fit_days", MIN_GARCH_OBS)
    idx = pd.DatetimeIndex(dates)
    if not (idx.is_unique and idx.is_monotonic_increasing):
        raise ValueError("dates: must be strictly increasing (sorted, no duplicates)")
    n = len(idx)
    if n - v - h < m:
        raise ValueError(
            f"series too short: {n} returns less validation_days={v} and holdout_days={h} leave "
            f"{n - v - h} to fit on; need at least min_fit_days={m}"
        )
    cut_v, cut_h = n - h - v, n - h

    def window(a: int, b: int) -> Window:
        return Window(a, b, _iso(idx[a]), _iso(idx[b - 1]))

    return TrainingWindows(fit=window(0, cut_v), validation=window(cut_v, cut_h), holdout=window(cut_h, n))


def var_backtest(returns_out: np.ndarray, var: np.ndarray, level: float) -> dict[str, Any]:
    """Backtest of 1-day VaR forecasts against the realised returns of the same days.

    An exception (breach) is a day with ``-r_t > VaR_t``. Reported: the count and its
    expectation ``n (1 - level)``; Kupiec's (1995) proportion-of-failures LR test,
    "Techniques for verifying the accuracy of risk measurement models", J. Derivatives 3(2);
    Christoffersen's (1998) Markov independence LR test, "Evaluating interval forecasts",
    International Economic Review 39(4); the mean quantile (tick) loss (Gneiting 2011, JASA
    106(494)); and at ``level == 0.99`` the Basel Committee (1996) traffic-light zone of the
    exceptions in the last 250 days ("Supervisory framework for the use of backtesting ...",
    Table 2), ``"n/a"`` at other levels.

    Parameters
    ----------
    returns_out : ndarray, shape (n,)
        Realised daily log returns (fractions), finite, n >= 2.
    var : ndarray, shape (n,)
        VaR forecast of each day (positive loss, fraction), finite.
    level : float
        VaR confidence level in (0, 1).

    Returns
    -------
    dict
        ``n_obs, n_exceptions, expected_exceptions, exception_rate, kupiec_lr, kupiec_p_value,
        christoffersen_lr, christoffersen_p_value, quantile_loss, basel_exceptions_last_250d,
        basel_zone_last_250d``.

    Raises
    ------
    ValueError
        If the arrays are not 1-D of equal length >= 2, hold NaN/inf, or level is not in (0, 1).
    """
    level = check_level(level)
    r = np.asarray(returns_out, dtype=float)
    q = np.asarray(var, dtype=float)
    if r.ndim != 1 or r.shape != q.shape or r.size < 2:
        raise ValueError(f"returns_out {r.shape} and var {q.shape}: need equal 1-D shapes of length >= 2")
    if not (np.isfinite(r).all() and np.isfinite(q).all()):
        raise ValueError("returns_out/var: NaN or infinite values")
    exceptions = -r > q
    n_exc = int(exceptions.sum())
    lr_pof, p_pof = kupiec_pof(n_exc, int(exceptions.size), level)
    lr_ind, p_ind = christoffersen_independence(exceptions)
    last = exceptions[-BASEL_DAYS:]
    return {
        "n_obs": int(exceptions.size),
        "n_exceptions": n_exc,
        "expected_exceptions": float(exceptions.size * (1.0 - level)),
        "exception_rate": n_exc / exceptions.size,
        "kupiec_lr": float(lr_pof),
        "kupiec_p_value": float(p_pof),
        "christoffersen_lr": float(lr_ind),
        "christoffersen_p_value": float(p_ind),
        "quantile_loss": quantile_loss(r, q, level),
        "basel_exceptions_last_250d": int(last.sum()),
        "basel_zone_last_250d": basel_traffic_light(int(last.sum()), int(last.size), 0.99)
        if level_key(level) == "0.99"
        else "n/a",
    }


def _returns(returns: Any, windows: TrainingWindows) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.shape[0] != windows.holdout.stop:
        raise ValueError(f"returns: expected shape ({windows.holdout.stop},) to match the windows, got {r.shape}")
    return r


def _check_levels(levels: Sequence[float]) -> list[float]:
    out = [check_level(lv) for lv in levels]
    if not out:
        raise ValueError("levels: expected at least one confidence level")
    return out


@dataclass(frozen=True)
class CandidateScore:
    """A candidate fitted on the fitting window and scored on the validation window.

    ``fit`` is the fit on the fitting window; ``backtests`` maps :func:`level_key` to
    :func:`var_backtest` on the validation window; ``score`` is the sum over levels of the mean
    quantile loss (lower is better, log-return units); ``passes_kupiec`` says whether Kupiec's
    test keeps every level at size :data:`KUPIEC_SIZE`.
    """

    kind: str
    innovations: str
    fit: GarchFit
    backtests: dict[str, dict[str, Any]]
    score: float
    passes_kupiec: bool

    @property
    def name(self) -> str:
        """``<kind>_<innovations>``, e.g. ``gjr_fhs``."""
        return f"{self.kind}_{self.innovations}"


def score_on_validation(
    returns: np.ndarray | pd.Series,
    windows: TrainingWindows,
    kind: Literal["garch", "gjr"],
    innovations: Literal["t", "fhs"],
    levels: Sequence[float],
) -> CandidateScore:
    """Fit one candidate on the fitting window and score its 1-day VaR on the validation window.

    Only ``returns[windows.fit]`` and ``returns[windows.validation]`` are read: the hold-out
    does not influence the fit, the scores or the selection made from them. The parameters are
    held fixed over the validation window (:func:`models.volatility.one_day_var_forecasts`).
    The score is the sum over ``levels`` of the quantile loss, the consistent scoring function
    for quantiles (Gneiting 2011, JASA 106(494), Thm. 9); :func:`models.risk.select_champion`
    picks the lowest among the candidates passing Kupiec's (1995) test.

    Parameters
    ----------
    returns : array-like, shape (n,)
        Daily log returns (fractions) of the whole series the windows were cut from.
    windows : TrainingWindows
        From :func:`split_windows` on the same series.
    kind : {"garch", "gjr"}
    innovations : {"t", "fhs"}
    levels : sequence of float
        VaR confidence levels in (0, 1), at least one.

    Returns
    -------
    CandidateScore

    Raises
    ------
    ValueError
        If ``returns`` does not match the windows, a level is out of range, or the fit fails
        (:func:`models.volatility.fit_garch`).
    """
    r = _returns(returns, windows)
    lv = _check_levels(levels)
    fit = fit_garch(r[windows.fit.start : windows.fit.stop], kind=kind)
    r_val = r[windows.validation.start : windows.validation.stop]
    backtests = {
        level_key(level): var_backtest(r_val, one_day_var_forecasts(fit, r_val, level, innovations), level)
        for level in lv
    }
    return CandidateScore(
        kind=kind,
        innovations=innovations,
        fit=fit,
        backtests=backtests,
        score=float(sum(bt["quantile_loss"] for bt in backtests.values())),
        passes_kupiec=all(bt["kupiec_p_value"] >= KUPIEC_SIZE for bt in backtests.values()),
    )


@dataclass(frozen=True)
class HoldoutBacktest:
    """The champion refitted on everything before the hold-out (``fit``) and its 1-day VaR
    backtest on the hold-out (``backtests``: :func:`level_key` -> :func:`var_backtest`)."""

    fit: GarchFit
    backtests: dict[str, dict[str, Any]]


def backtest_on_holdout(
    returns: np.ndarray | pd.Series,
    windows: TrainingWindows,
    kind: Literal["garch", "gjr"],
    innovations: Literal["t", "fhs"],
    levels: Sequence[float],
) -> HoldoutBacktest:
    """Refit a (selected) candidate on the fitting and validation windows and backtest its 1-day
    VaR on the hold-out, parameters fixed over it (no look-ahead:
    :func:`models.volatility.one_day_var_forecasts`); tests as :func:`var_backtest` (Kupiec
    1995, Christoffersen 1998, Basel Committee 1996 traffic light).

    Parameters and errors as :func:`score_on_validation`. Returns a :class:`HoldoutBacktest`.
    """
    r = _returns(returns, windows)
    lv = _check_levels(levels)
    pre = windows.pre_holdout
    fit = fit_garch(r[pre.start : pre.stop], kind=kind)
    r_out = r[windows.holdout.start : windows.holdout.stop]
    backtests = {
        level_key(level): var_backtest(r_out, one_day_var_forecasts(fit, r_out, level, innovations), level)
        for level in lv
    }
    return HoldoutBacktest(fit=fit, backtests=backtests)
