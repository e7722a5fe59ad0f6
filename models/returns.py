"""Price -> return transforms (pure numerics, no I/O).

Convention (see COMMON brief): returns are daily *log* returns as fractions (0.01 = 1 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["log_returns"]


def log_returns(prices: pd.Series) -> pd.Series:
    """Daily log returns ``r_t = ln(P_t / P_{t-1})`` of a date-indexed price series.

    Parameters
    ----------
    prices : pd.Series, shape (n,)
        Prices (any currency unit, e.g. ``usd_per_oz``), indexed by strictly increasing dates,
        one row per trading day. At least 2 rows.

    Returns
    -------
    pd.Series, shape (n - 1,)
        Log returns as fractions, indexed by the date of the later price ``t``; the first
        observation (which has no predecessor) is dropped. Named ``"log_return"``.

    Raises
    ------
    ValueError
        If ``prices`` is not a Series, has fewer than 2 rows, its index is not strictly
        increasing (duplicates or unsorted dates), or a price is NaN, infinite or <= 0; the
        message names the offending row (index label).
    """
    if not isinstance(prices, pd.Series):
        raise ValueError(f"prices: expected a pandas Series, got {type(prices).__name__}")
    if len(prices) < 2:
        raise ValueError(f"prices: need at least 2 rows to form a return, got {len(prices)}")
    values = pd.to_numeric(prices, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"prices: row {prices.index[i]!r} has price {prices.iloc[i]!r}; "
            "prices must be finite and > 0 (NaN/blank, zero or negative found)"
        )
    if not prices.index.is_unique:
        dup = prices.index[prices.index.duplicated()][0]
        raise ValueError(f"prices: duplicate index label {dup!r}")
    if not prices.index.is_monotonic_increasing:
        idx = prices.index
        pos = next(i for i in range(1, len(idx)) if not idx[i] > idx[i - 1])
        raise ValueError(f"prices: index is not increasing at row {idx[pos]!r} (follows {idx[pos - 1]!r})")
    r = np.diff(np.log(values))
    return pd.Series(r, index=prices.index[1:], name="log_return")
