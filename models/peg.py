"""Peg and liquidity metrics of simulated token paths (plain numerics).

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


def liquidity_coverage(liquid_usd: np.ndarray, outflow_usd: np.ndarray, horizon_days: int) -> np.ndarray:
    """Liquidity coverage over the first ``horizon_days``: liquid resources available by day h
    over the stressed outflows demanded in days 1..h, per path (``inf`` with no outflow).

    ``liquid_usd[:, h]`` is the cumulative cash the issuer can raise by day h (cash plus what the
    reserve assets convert to, after haircuts); ``outflow_usd[:, t]`` the outflow demanded on day t.
    Basel III LCR analogue (BCBS 2013, "Basel III: The Liquidity Coverage Ratio"): stock of liquid
    assets over net outflows over the stress horizon; >= 1 means covered.
    """
    liq = _as_paths(liquid_usd, "liquid_usd")
    out = _as_paths(outflow_usd, "outflow_usd")
    if liq.shape != out.shape:
        raise ValueError(f"liquid_usd {liq.shape} and outflow_usd {out.shape} differ in shape")
    if not 1 <= horizon_days < liq.shape[1]:
        raise ValueError(f"horizon_days: expected 1..{liq.shape[1] - 1}, got {horizon_days!r}")
    demanded = out[:, 1 : horizon_days + 1].sum(axis=1)
    available = liq[:, horizon_days]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(demanded > 0, available / np.where(demanded > 0, demanded, 1.0), np.inf)


def days_to_clear_queue(queue: np.ndarray) -> np.ndarray:
    """Days from the first day a redemption queue forms until it is empty again, per path.

    0 when no queue ever forms; ``nan`` when the queue is still open at the horizon.
    """
    q = _as_paths(queue, "queue")
    pos = q > 0
    formed = pos.any(axis=1)
    start = np.where(formed, pos.argmax(axis=1), 0)
    t1 = q.shape[1]
    after = np.arange(t1)[None, :] > start[:, None]
    cleared = (~pos) & after
    has = cleared.any(axis=1)
    end = np.where(has, cleared.argmax(axis=1), 0)
    return np.where(formed, np.where(has, end - start, np.nan), 0.0).astype(float)
