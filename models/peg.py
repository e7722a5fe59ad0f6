"""Peg metrics of simulated token paths (plain numerics).

All inputs are arrays shaped ``(n_paths, horizon_days + 1)`` (day 0 first); outputs are per path
``(n_paths,)``. Premium/discount to NAV is a fraction (``-0.02`` = a 2% discount); a depeg is
``|premium| > threshold``. Definitions follow the usual ones for ETF/stablecoin deviations from
NAV (e.g. Petajisto 2017, FAJ 73(1); Lyons & Viswanath-Natraj 2023, JIE 141: depth = largest
absolute deviation, duration = consecutive days beyond a threshold, recovery = days from the
deepest point until the deviation is back inside the threshold).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def _as_paths(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"{name}: expected shape (n_paths, horizon_days + 1), got {a.shape}")
    return a


def depeg_depth(premium: np.ndarray) -> np.ndarray:
    """Largest absolute premium/discount on each path (fraction), shape ``(n_paths,)``."""
    return _depth_rows(_as_paths(premium, "premium"))


@njit(cache=True, nogil=True, error_model="numpy")
def _depth_rows(p: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Row maxima of ``|p|`` (NaN when the row has a NaN, as ``np.max``)."""
    n, t1 = p.shape
    out = np.empty(n)
    for i in range(n):
        best = abs(p[i, 0])
        for t in range(1, t1):
            a = abs(p[i, t])
            if a > best or a != a:
                best = a
                if a != a:
                    break
        out[i] = best
    return out


def longest_depeg_days(premium: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Longest run of consecutive days with ``|premium| > threshold`` on each path (days).

    ``ValueError`` for a negative threshold or a badly shaped array.
    """
    p = _as_paths(premium, "premium")
    if not threshold >= 0:
        raise ValueError(f"threshold: expected >= 0, got {threshold!r}")
    return _longest_rows(p, float(threshold))


@njit(cache=True, nogil=True, error_model="numpy")
def _longest_rows(p: np.ndarray, threshold: float) -> np.ndarray:  # pragma: no cover - compiled
    """Longest run of ``|p| > threshold`` per row (int64)."""
    n, t1 = p.shape
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        run = 0
        best = 0
        for t in range(t1):
            run = run + 1 if abs(p[i, t]) > threshold else 0
            best = max(best, run)
        out[i] = best
    return out


def days_to_recovery(premium: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Days from the deepest deviation until ``|premium| <= threshold`` again, per path.

    0 when the deepest point is already inside the threshold; ``nan`` when the path never comes
    back inside it before the horizon ends.
    """
    p = _as_paths(premium, "premium")
    return _recovery_rows(p, float(threshold))


@njit(cache=True, nogil=True, error_model="numpy")
def _recovery_rows(p: np.ndarray, threshold: float) -> np.ndarray:  # pragma: no cover - compiled
    """Per row: days from the first largest ``|p|`` (the first NaN if any, as ``np.argmax``) to
    the first day at or after it with ``|p| <= threshold``; NaN if none."""
    n, t1 = p.shape
    out = np.empty(n)
    for i in range(n):
        worst = 0
        best = abs(p[i, 0])
        if best == best:
            for t in range(1, t1):
                a = abs(p[i, t])
                if a != a:
                    worst = t
                    break
                if a > best:
                    best, worst = a, t
        out[i] = math.nan
        for t in range(worst, t1):
            if abs(p[i, t]) <= threshold:
                out[i] = float(t - worst)
                break
    return out


def share_of_days_beyond(premium: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of days 1..H with ``|premium| > threshold`` on each path."""
    p = _as_paths(premium, "premium")
    if p.shape[1] < 2:
        raise ValueError("premium: needs at least one day after day 0")
    return _share_rows(p, float(threshold))


@njit(cache=True, nogil=True, error_model="numpy")
def _share_rows(p: np.ndarray, threshold: float) -> np.ndarray:  # pragma: no cover - compiled
    """Per row: the count of days ``1..H`` with ``|p| > threshold`` over ``H``."""
    n, t1 = p.shape
    out = np.empty(n)
    for i in range(n):
        k = 0
        for t in range(1, t1):
            if abs(p[i, t]) > threshold:
                k += 1
        out[i] = float(k) / float(t1 - 1)
    return out
