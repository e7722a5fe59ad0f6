"""Argument checks shared by the models: each returns the checked value (converted) or raises
``ValueError`` with one line naming the argument, what was expected and what was given."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def check_level(value: Any, name: str = "level") -> float:
    """A confidence level as a fraction in the open interval (0, 1), e.g. 0.99 (not 99)."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a fraction in (0, 1) (0.99 not 99), got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a fraction in (0, 1) (0.99 not 99), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name}: expected a fraction in (0, 1) (0.99 not 99), got {value!r}")
    return v


def check_fraction(value: Any, name: str, *, upper_open: bool = True) -> float:
    """A finite fraction in [0, 1) (``upper_open``) or [0, 1]."""
    v = _number(value, name)
    if not math.isfinite(v) or v < 0 or v > 1 or (upper_open and v == 1):
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{name}: must be a fraction in {interval}, got {value!r}")
    return v


def check_nonnegative(value: Any, name: str) -> float:
    """A finite number >= 0."""
    v = _number(value, name)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: must be finite and >= 0, got {value!r}")
    return v


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """An integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_rng(rng: Any) -> np.random.Generator:
    """A ``numpy.random.Generator`` (a seed or legacy ``RandomState`` is refused)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_price_paths(prices: Any, name: str = "gold_usd_per_oz") -> np.ndarray:
    """Price paths as a float array of shape ``(n_paths, horizon_days + 1)``, finite and > 0."""
    p = np.asarray(prices, dtype=float)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"{name}: expected a 2-D array (n_paths, horizon_days + 1), got shape {p.shape}")
    if not np.isfinite(p).all() or (p <= 0).any():
        raise ValueError(f"{name}: prices must be finite and > 0")
    return p


def check_daily_index(s: Any, name: str) -> None:
    """A pandas Series indexed by unique, increasing midnight dates (daily data)."""
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
        raise ValueError(
            f"{name}: row {s.index[np.flatnonzero(off)[0]]!r} is not a midnight date (daily data expected)"
        )


def check_daily_prices(s: Any, name: str) -> np.ndarray:
    """A daily price Series (:func:`check_daily_index`) of finite prices > 0, as a float array."""
    check_daily_index(s, name)
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: row {s.index[i]!r} has price {s.iloc[i]!r}; prices must be finite and > 0")
    return values


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
