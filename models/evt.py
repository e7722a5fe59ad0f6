"""Peaks-over-threshold (POT) generalised Pareto model of the loss tail (pure numerics).

:func:`fit_pot` fits a GPD to the exceedances of positive losses over a high threshold and returns
a :class:`GpdTail` (tail probability, VaR, ES).
Equations and sources: docs/models/evt.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from models.checks import check_level

__all__ = ["MIN_EXCEEDANCES", "GpdTail", "fit_pot"]

MIN_EXCEEDANCES = 30
"""Fewest threshold exceedances accepted by :func:`fit_pot` (GPD MLE needs a usable sample)."""

_XI_ZERO = 1e-12  # |xi| below this uses the exponential (xi = 0) limit exactly


@dataclass(frozen=True)
class GpdTail:
    """A fitted GPD tail of a loss distribution (peaks over threshold).

    Attributes
    ----------
    xi : float         GPD shape (tail index); > 0 heavy (Pareto-type) tail, 0 exponential,
                       < 0 finite endpoint ``u - beta / xi``.
    beta : float       GPD scale of the exceedances, > 0, in loss units (fractions).
    threshold : float  threshold ``u`` in loss units (fractions).
    n_exceed : int     ``N_u``, number of losses strictly above ``u`` (>= 1).
    n_total : int      ``n``, number of losses in the sample (> n_exceed).

    Raises
    ------
    ValueError  on construction if beta <= 0, a value is not finite, or the counts are not
        ``1 <= n_exceed < n_total``.
    """

    xi: float
    beta: float
    threshold: float
    n_exceed: int
    n_total: int

    def __post_init__(self) -> None:
        for name in ("xi", "beta", "threshold"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"{name}: must be finite, got {v}")
            object.__setattr__(self, name, v)
        if self.beta <= 0:
            raise ValueError(f"beta: GPD scale must be > 0, got {self.beta}")
        n_u, n = int(self.n_exceed), int(self.n_total)
        if not 1 <= n_u < n:
            raise ValueError(f"n_exceed/n_total: need 1 <= n_exceed < n_total, got {n_u}/{n}")
        object.__setattr__(self, "n_exceed", n_u)
        object.__setattr__(self, "n_total", n)

    @property
    def tail_probability(self) -> float:
        """``N_u / n``: empirical probability of exceeding the threshold."""
        return self.n_exceed / self.n_total

    def _check(self, level: float) -> float:
        level = check_level(level)
        floor = 1.0 - self.tail_probability
        if level <= floor:
            raise ValueError(
                f"level: {level} is not above the threshold quantile 1 - N_u/n = {floor:.6g}; "
                "the GPD tail estimator only covers levels beyond the threshold"
            )
        return level

    def var(self, level: float) -> float:
        """Value-at-Risk (positive loss, fraction) at confidence ``level``.

        ``VaR_p = u + beta / xi * (((n / N_u)(1 - p))^(-xi) - 1)``, exponential limit
        ``u - beta * ln((n / N_u)(1 - p))`` for xi = 0 (McNeil & Frey 2000, eq. 10;
        McNeil, Frey & Embrechts 2005, eq. 7.18). Evaluated with ``expm1`` so it is continuous
        in xi near 0.

        Raises
        ------
        ValueError  if level is not in (0, 1) or not above the threshold quantile ``1 - N_u/n``.
        """
        level = self._check(level)
        log_a = math.log((1.0 - level) / self.tail_probability)  # < 0
        if abs(self.xi) < _XI_ZERO:
            return self.threshold - self.beta * log_a
        return self.threshold + self.beta / self.xi * math.expm1(-self.xi * log_a)

    def es(self, level: float) -> float:
        """Expected shortfall (positive loss, fraction) at confidence ``level``.

        ``ES_p = VaR_p / (1 - xi) + (beta - xi * u) / (1 - xi)`` (McNeil & Frey 2000;
        McNeil, Frey & Embrechts 2005, eq. 7.19); equals ``VaR_p + beta`` for xi = 0.

        Raises
        ------
        ValueError  if xi >= 1 (infinite mean: ES does not exist), or as for :meth:`var`.
        """
        if self.xi >= 1.0:
            raise ValueError(f"xi: ES is infinite for xi >= 1 (got xi = {self.xi})")
        v = self.var(level)
        return (v + self.beta - self.xi * self.threshold) / (1.0 - self.xi)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of the fields."""
        return {
            "xi": self.xi,
            "beta": self.beta,
            "threshold": self.threshold,
            "n_exceed": self.n_exceed,
            "n_total": self.n_total,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GpdTail:
        """Inverse of :meth:`to_dict`. Raises ValueError naming a missing key or bad value."""
        keys = ("xi", "beta", "threshold", "n_exceed", "n_total")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"GpdTail.from_dict: missing keys {missing}")
        return cls(**{k: d[k] for k in keys})


def fit_pot(losses: np.ndarray | pd.Series, threshold_quantile: float = 0.95) -> GpdTail:
    """Fit a GPD to the exceedances of ``losses`` over their empirical quantile.

    The threshold ``u`` is ``numpy.quantile(losses, threshold_quantile)`` (linear
    interpolation); exceedances ``losses[losses > u] - u`` are fitted by maximum likelihood
    with ``scipy.stats.genpareto.fit(y, floc=0)`` (scipy's shape ``c`` is xi, ``scale`` is beta).
    Method: McNeil & Frey (2000), J. Empirical Finance 7(3-4); McNeil, Frey & Embrechts (2005),
    QRM section 7.2.

    Parameters
    ----------
    losses : array-like, shape (n,)
        Losses as positive numbers (e.g. ``-log_returns``), all finite.
    threshold_quantile : float in (0, 1)
        Quantile level of the threshold (default 0.95: the top 5 % are exceedances).

    Returns
    -------
    GpdTail

    Raises
    ------
    ValueError  if losses are not 1-D, contain NaN/inf (naming the row), threshold_quantile is
        not in (0, 1), or fewer than ``MIN_EXCEEDANCES`` (30) losses exceed the threshold.
    """
    labels = losses.index if isinstance(losses, pd.Series) else None
    try:
        x = np.asarray(losses, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("losses: cannot be read as an array of floats") from None
    if x.ndim != 1:
        raise ValueError(f"losses: expected a 1-D array, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"row {labels[i]!r}" if labels is not None else f"position {i}"
        raise ValueError(f"losses: {where} is {x[i]} (NaN/inf not allowed)")
    q = check_level(threshold_quantile, "threshold_quantile")
    if x.shape[0] == 0:
        raise ValueError("losses: empty")
    u = float(np.quantile(x, q))
    y = x[x > u] - u
    if y.shape[0] < MIN_EXCEEDANCES:
        raise ValueError(
            f"losses: only {y.shape[0]} values exceed the {q} quantile threshold {u:.6g}; "
            f"need at least {MIN_EXCEEDANCES} (more data or a lower threshold_quantile)"
        )
    xi, _, beta = stats.genpareto.fit(y, floc=0.0)
    return GpdTail(xi=float(xi), beta=float(beta), threshold=u, n_exceed=int(y.shape[0]), n_total=int(x.shape[0]))
