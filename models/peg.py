"""Peg metrics of simulated token paths (plain numerics).

All inputs are arrays shaped ``(n_paths, horizon_days + 1)`` (day 0 first); outputs are per path
``(n_paths,)``. Premium/discount to NAV is a fraction (``-0.02`` = a 2% discount); a depeg is
``|premium| > threshold``. Definitions follow the usual ones for ETF/stablecoin deviations from
NAV (e.g. Petajisto 2017, FAJ 73(1); Lyons & Viswanath-Natraj 2023, JIE 141: depth = largest
absolute deviation, duration = consecutive days beyond a threshold, recovery = days from the
deepest point until the deviation is back inside the threshold).
"""

from __future__ import annotations

import numpy as np


def _as_paths(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"{name}: expected shape (n_paths, horizon_days + 1), got {a.shape}")
    return a


def depeg_depth(premium: np.ndarray) -> np.ndarray:
    """Largest absolute premium/discount on each path (fraction), shape ``(n_paths,)``."""
    return np.abs(_as_paths(premium, "premium")).max(axis=1)


def longest_depeg_days(premium: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Longest run of consecutive days with ``|premium| > threshold`` on each path (days).

    ``ValueError`` for a negative threshold or a badly shaped array.
    """
    p = _as_paths(premium, "premium")
    if not threshold >= 0:
        raise ValueError(f"threshold: expected >= 0, got {threshold!r}")
    out = np.abs(p) > threshold
    run = np.zeros(p.shape[0], dtype=np.int64)
    best = np.zeros(p.shape[0], dtype=np.int64)
    for t in range(p.shape[1]):
        run = np.where(out[:, t], run + 1, 0)
        best = np.maximum(best, run)
    return best


def days_to_recovery(premium: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Days from the deepest deviation until ``|premium| <= threshold`` again, per path.

    0 when the deepest point is already inside the threshold; ``nan`` when the path never comes
    back inside it before the horizon ends.
    """
    p = _as_paths(premium, "premium")
    a = np.abs(p)
    worst = a.argmax(axis=1)
    n, t1 = p.shape
    inside = a <= threshold
    after = np.arange(t1)[None, :] >= worst[:, None]
    candidates = inside & after
    has = candidates.any(axis=1)
    first = np.where(has, candidates.argmax(axis=1), 0)
    return np.where(has, first - worst, np.nan).astype(float)


def share_of_days_beyond(premium: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of days 1..H with ``|premium| > threshold`` on each path."""
    p = _as_paths(premium, "premium")
    if p.shape[1] < 2:
        raise ValueError("premium: needs at least one day after day 0")
    return (np.abs(p[:, 1:]) > threshold).mean(axis=1)
