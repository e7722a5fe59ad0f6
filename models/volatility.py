"""GARCH-family volatility models with Student-t innovations (pure numerics, no I/O).

:func:`fit_garch` fits GARCH(1,1) or GJR-GARCH(1,1,1) with the ``arch`` library and returns a
:class:`GarchFit` in decimal units (simulation, 1-day VaR/ES); :func:`conditional_sigma_forecasts`
and :func:`one_day_var_forecasts` forecast out of sample.
Equations, estimation and sources: docs/models/volatility.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd
from numba import njit
from scipy import special, stats

from models.checks import check_int, check_level

__all__ = [
    "MIN_GARCH_OBS",
    "GarchFit",
    "fit_garch",
    "one_day_var_forecasts",
    "standardised_t",
    "symmetric_tail_probability",
    "t_quantiles",
    "tail_side",
    "student_t_var_es",
]

MIN_GARCH_OBS = 250
"""Fewest returns accepted by :func:`fit_garch` (about one trading year)."""

_KINDS = ("garch", "gjr")
_PARAM_KEYS = ("mu", "omega", "alpha", "gamma", "beta", "nu")
_SCALE = 100.0  # arch is fitted on percent returns


def _as_returns(returns: Any, name: str, min_obs: int) -> np.ndarray:
    """1-D finite float array from a Series/array; ValueError naming the bad row."""
    labels = returns.index if isinstance(returns, pd.Series) else None
    try:
        x = np.asarray(returns, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: cannot be read as an array of floats") from None
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of daily log returns, got shape {x.shape}")
    if x.shape[0] < min_obs:
        raise ValueError(f"{name}: need at least {min_obs} observations, got {x.shape[0]}")
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"row {labels[i]!r}" if labels is not None else f"position {i}"
        raise ValueError(f"{name}: {where} is {x[i]} (NaN/inf not allowed)")
    return x


def student_t_var_es(level: float, nu: float, mu: float = 0.0, sigma: float = 1.0) -> tuple[float, float]:
    """One-period VaR and ES (positive losses) of ``r = mu + sigma * z``, z standardised t(nu).

    Closed form (McNeil, Frey & Embrechts 2005, *Quantitative Risk Management*, Example 2.19):
    with ``q = t_nu^{-1}(level)`` and ``s = sqrt((nu - 2) / nu)``,
    ``VaR = sigma * s * q - mu`` and
    ``ES = sigma * s * f_nu(q) / (1 - level) * (nu + q^2) / (nu - 1) - mu``,
    where ``f_nu`` is the Student-t density. The loss is ``L = -r`` (z is symmetric).

    Parameters
    ----------
    level : float   confidence level as a fraction in (0, 1), e.g. 0.99.
    nu : float      degrees of freedom, > 2 (unit variance needs a finite second moment).
    mu, sigma : float   mean and conditional sd of the return (fractions), sigma > 0.

    Returns
    -------
    (var, es) : tuple of float, positive numbers are losses (fractions of value).

    Raises
    ------
    ValueError  if level is not in (0, 1), nu <= 2 or sigma <= 0.
    """
    level = check_level(level)
    if not (np.isfinite(nu) and nu > 2.0):
        raise ValueError(f"nu: standardised Student-t needs nu > 2, got {nu}")
    if not (np.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"sigma: must be > 0, got {sigma}")
    s = math.sqrt((nu - 2.0) / nu)
    q = float(stats.t.ppf(level, nu))
    es_std = float(stats.t.pdf(q, nu)) / (1.0 - level) * (nu + q * q) / (nu - 1.0)
    return sigma * s * q - mu, sigma * s * es_std - mu


_T_TABLE_LOW = 2.0**-10
"""Below this tail probability :func:`t_quantiles` evaluates ``scipy.special.stdtrit`` itself."""
_T_TABLE_INTERVALS = 2**14
"""Hermite intervals of the quantile table on ``[_T_TABLE_LOW, 0.5]``."""
_T_TABLE_STEP = (0.5 - _T_TABLE_LOW) / _T_TABLE_INTERVALS
"""Width of one interval of the quantile table, in tail probability."""
_HALF_STEP = 2.0**-54
"""Half the spacing of ``Generator.random``'s doubles (multiples of 2**-53 in [0, 1))."""


@njit(cache=True, nogil=True, inline="always")
def tail_side(x: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """The tail probability and side ``(p, side)`` of one uniform ``x`` from ``Generator.random``
    (a multiple of 2**-53 in [0, 1)): ``(x + 2**-54, -1)`` below 0.5 and ``(1 - x - 2**-54, +1)``
    from 0.5, both exact in float64, so ``p`` lies in (0, 0.5] and the pair is symmetric in law
    (0 maps to 2**-54, never to 0). Compiled (numba), for compiled callers; arrays:
    :func:`symmetric_tail_probability`."""
    if x < 0.5:
        return x + _HALF_STEP, -1.0
    return (1.0 - x) - _HALF_STEP, 1.0


@njit(cache=True, nogil=True)
def _tail_sides(u: np.ndarray, p: np.ndarray, side: np.ndarray) -> None:  # pragma: no cover - compiled
    """:func:`tail_side` of each element of the flat ``u`` into ``p`` and ``side``."""
    for i in range(u.shape[0]):
        p[i], side[i] = tail_side(u[i])


@lru_cache(maxsize=64)
def _t_quantile_table(nu: float) -> np.ndarray:
    """The cubic Hermite interpolant of the Student-t(``nu``) quantile ``Q(p)`` on
    ``_T_TABLE_INTERVALS`` equal steps of tail probability from ``_T_TABLE_LOW`` to 0.5, in power
    form: row ``k`` holds ``(a, b, c, d)`` with ``Q(p_k + t * step) ~ a + t * (b + t * (c + t * d))``
    for ``t`` in [0, 1], from the knots' quantiles (``scipy.special.stdtrit``) and slopes
    ``dQ/dp = 1 / f(Q(p))`` (``scipy.stats.t.pdf``). Shape ``(_T_TABLE_INTERVALS, 4)``, C order
    (an interval's four coefficients share a cache line), read-only."""
    p = np.linspace(_T_TABLE_LOW, 0.5, _T_TABLE_INTERVALS + 1)
    q = special.stdtrit(nu, p)
    q[-1] = 0.0
    d = _T_TABLE_STEP / stats.t.pdf(q, nu)
    q0, q1, d0, d1 = q[:-1], q[1:], d[:-1], d[1:]
    coef = np.empty((_T_TABLE_INTERVALS, 4))
    coef[:, 0] = q0
    coef[:, 1] = d0
    coef[:, 2] = 3.0 * (q1 - q0) - 2.0 * d0 - d1
    coef[:, 3] = 2.0 * (q0 - q1) + d0 + d1
    coef.flags.writeable = False
    return coef


@njit(cache=True, nogil=True, error_model="numpy")
def _hermite_t_quantiles(
    u: np.ndarray,
    coef: np.ndarray,
    low: float,
    step: float,
    scale: float,
    out: np.ndarray,
    tail: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Into ``out`` (flat, as ``u``; may be ``u`` itself): ``scale * Q(u)`` from the interpolant
    ``coef`` of :func:`_t_quantile_table` (tail probabilities ``low + k * step``), at the
    symmetric tail probability of each uniform (``u + 2**-54`` below 0.5, ``1 - u - 2**-54``
    above, the sign flipped). Where that probability is below ``low``, ``out`` keeps ``u`` and the
    index goes to ``tail``; returns how many did."""
    m = coef.shape[0]
    inv = 1.0 / step
    n_tail = 0
    for i in range(u.shape[0]):
        x = u[i]
        p, side = tail_side(x)
        sign = -side * scale
        if p < low:
            out[i] = x
            tail[n_tail] = i
            n_tail += 1
            continue
        s = (p - low) * inv
        k = min(int(s), m - 1)
        t = s - k
        out[i] = sign * (coef[k, 0] + t * (coef[k, 1] + t * (coef[k, 2] + t * coef[k, 3])))
    return n_tail


def symmetric_tail_probability(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`tail_side` of each of the uniforms ``u`` (any shape, multiples of 2**-53 in
    [0, 1)): the tail probabilities and the sides, float64 arrays of ``u``'s shape."""
    flat = np.ascontiguousarray(u, dtype=float).reshape(-1)
    p, side = np.empty_like(flat), np.empty_like(flat)
    _tail_sides(flat, p, side)
    shape = np.shape(u)
    return p.reshape(shape), side.reshape(shape)


def t_quantiles(u: np.ndarray, nu: float, scale: float = 1.0) -> np.ndarray:
    """``scale`` times the Student-t(``nu``) quantiles of uniforms ``u`` (inverse transform:
    Devroye 1986, "Non-Uniform Random Variate Generation", sec. II.2).

    The quantile is read at the symmetric tail probability of :func:`symmetric_tail_probability`
    (so ``u = 0`` gives a finite draw), by cubic Hermite interpolation of a table of
    ``scipy.special.stdtrit`` and the exact slopes ``1 / f`` on 16,384 equal steps of
    ``[2**-10, 0.5]`` (Hörmann & Leydold 2003, "Continuous random variate generation by fast
    numerical inversion", ACM TOMACS 13(4)); tail probabilities below ``2**-10`` (0.2% of draws)
    call ``stdtrit`` itself. Agrees with ``stdtrit`` to about 1e-8 relative (that function's own
    accuracy). ``u`` any shape, values in [0, 1); ``nu > 0``. Returns float64 of ``u``'s shape.
    Raises ValueError for ``nu <= 0`` or non-finite.
    """
    if not (math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu: expected a finite number > 0, got {nu!r}")
    out = np.array(u, dtype=float, order="C")
    _t_quantiles_inplace(out.reshape(-1), float(nu), float(scale))
    return out


def _t_quantiles_inplace(flat: np.ndarray, nu: float, scale: float) -> None:
    """:func:`t_quantiles` in place on a flat float64 array of uniforms."""
    coef = _t_quantile_table(nu)
    tail = np.empty(flat.shape[0], dtype=np.int64)
    n_tail = _hermite_t_quantiles(flat, coef, _T_TABLE_LOW, _T_TABLE_STEP, scale, flat, tail)
    if n_tail:
        idx = tail[:n_tail]
        p, side = symmetric_tail_probability(flat[idx])
        flat[idx] = side * -special.stdtrit(nu, p) * scale


def standardised_t(rng: np.random.Generator, nu: float, size: tuple[int, ...]) -> np.ndarray:
    """Unit-variance Student-t(``nu``) draws ``t_nu * sqrt((nu - 2) / nu)`` by inversion of
    uniforms (:func:`t_quantiles` of ``rng.random(size)``): one uniform per draw, about three
    times faster than a normal over the root of a gamma.

    ``nu > 2`` (float), ``size`` the output shape. Returns float64 draws of that shape, variance 1.
    Raises ValueError for ``nu <= 2``.
    """
    if not nu > 2.0:
        raise ValueError(f"nu: expected a number > 2 (finite variance), got {nu!r}")
    z = rng.random(size)
    _t_quantiles_inplace(z.reshape(-1), float(nu), math.sqrt((nu - 2.0) / nu))
    return z


@njit(cache=True, nogil=True)
def _gjr_paths(
    z: np.ndarray, mu: float, omega: float, alpha: float, gamma: float, beta: float, sigma2_0: float
) -> None:  # pragma: no cover - compiled
    """In place: standardised shocks ``z`` (n, H) -> log returns ``mu + sqrt(sigma2_t) z_t`` of
    the GJR-GARCH(1,1) recursion started at ``sigma2_0`` (``gamma = 0``: GARCH(1,1)). Day by
    day across the paths: one path's days are a chain of dependent operations, the paths of a
    day are independent (vectorised, about 4x faster than path by path, same numbers)."""
    n, h = z.shape
    s2 = np.full(n, sigma2_0)
    for d in range(h):
        for i in range(n):
            eps = math.sqrt(s2[i]) * z[i, d]
            z[i, d] = mu + eps
            s2[i] = omega + (alpha + (gamma if eps < 0.0 else 0.0)) * eps * eps + beta * s2[i]


@dataclass(frozen=True, eq=False)
class GarchFit:
    """A fitted GARCH(1,1) / GJR-GARCH(1,1,1) model with standardised Student-t innovations.

    Built by :func:`fit_garch`; can be rebuilt from :meth:`to_dict` output with :meth:`from_dict`.

    Attributes
    ----------
    kind : {"garch", "gjr"}
    params : dict[str, float]
        ``mu, omega, alpha, gamma, beta, nu`` in decimal units (mu a daily log-return fraction,
        omega in squared fractions; alpha, gamma, beta, nu unit-free). gamma is 0.0 for "garch".
    std_errors : dict[str, float]
        arch's robust (Bollerslev-Wooldridge) standard errors of ``params``, same keys and units
        (gamma's is 0.0 for "garch": not estimated).
    loglik : float
        Maximised log-likelihood of the fit **on percent returns** (as arch reports it).
    loglik_decimal : float
        Log-likelihood of the same model for the decimal returns: the change of variable
        ``y = 100 x`` gives ``loglik_decimal = loglik + n_obs * ln(100)``.
    aic, bic : float
        arch's information criteria, on the percent scale (``-2 loglik + penalty``). Differences
        between models fitted to the same returns do not depend on the scale.
    n_obs : int
        Number of returns used in the fit.
    std_resid : np.ndarray, shape (n_obs,)
        Standardised residuals ``(r_t - mu) / sigma_t`` (unit-free), used by FHS.
    last_resid : float
        ``eps_T = r_T - mu`` of the last in-sample return (fraction).
    last_variance : float
        Conditional variance ``sigma2_T`` of the last in-sample day (squared fraction).
    sigma_next : float
        One-day-ahead conditional sd ``sigma_{T+1}`` after the last observation (fraction),
        from the recursion applied to ``last_resid`` and ``last_variance``.
    converged : bool
        Whether arch's optimiser reported convergence.

    Raises
    ------
    ValueError  on construction if a field is missing/ill-typed, params are outside the model's
        domain (omega <= 0, alpha < 0, alpha + gamma < 0, beta < 0, nu <= 2), std_resid is not
        finite with n_obs entries, or sigma_next disagrees with the recursion.
    """

    kind: str
    params: dict[str, float]
    std_errors: dict[str, float]
    loglik: float
    loglik_decimal: float
    aic: float
    bic: float
    n_obs: int
    std_resid: np.ndarray = field(repr=False)
    last_resid: float
    last_variance: float
    sigma_next: float
    converged: bool = True

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind: expected one of {_KINDS}, got {self.kind!r}")
        for name in ("params", "std_errors"):
            d = getattr(self, name)
            missing = [k for k in _PARAM_KEYS if k not in d]
            if missing:
                raise ValueError(f"{name}: missing keys {missing}")
            clean = {k: float(d[k]) for k in _PARAM_KEYS}
            bad = [k for k, v in clean.items() if not np.isfinite(v)]
            if bad:
                raise ValueError(f"{name}: non-finite values for {bad}")
            object.__setattr__(self, name, clean)
        p = self.params
        if p["omega"] <= 0:
            raise ValueError(f"params: omega must be > 0, got {p['omega']}")
        if p["alpha"] < 0 or p["beta"] < 0 or p["alpha"] + p["gamma"] < 0:
            raise ValueError(f"params: need alpha >= 0, beta >= 0, alpha + gamma >= 0 (got {p})")
        if self.kind == "garch" and p["gamma"] != 0.0:
            raise ValueError(f"params: gamma must be 0 for kind='garch', got {p['gamma']}")
        if p["nu"] <= 2:
            raise ValueError(f"params: nu must be > 2 for a unit-variance t, got {p['nu']}")
        z = np.asarray(self.std_resid, dtype=float)
        if z.ndim != 1 or z.shape[0] != int(self.n_obs) or z.shape[0] == 0:
            raise ValueError(f"std_resid: expected shape ({self.n_obs},), got {z.shape}")
        if not np.isfinite(z).all():
            raise ValueError("std_resid: contains NaN/inf")
        z = z.copy()
        z.setflags(write=False)
        object.__setattr__(self, "std_resid", z)
        object.__setattr__(self, "n_obs", int(self.n_obs))
        object.__setattr__(self, "converged", bool(self.converged))
        for name in ("loglik", "loglik_decimal", "aic", "bic", "last_resid", "last_variance", "sigma_next"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if not self.last_variance > 0:
            raise ValueError(f"last_variance: must be > 0, got {self.last_variance}")
        expected = math.sqrt(self._next_variance(self.last_resid, self.last_variance))
        if not math.isclose(self.sigma_next, expected, rel_tol=1e-9):
            raise ValueError(f"sigma_next: {self.sigma_next} disagrees with the recursion ({expected})")

    # ------------------------------------------------------------------ helpers
    def _next_variance(self, eps: Any, sigma2: Any) -> Any:
        p = self.params
        return p["omega"] + (p["alpha"] + p["gamma"] * (eps < 0)) * eps * eps + p["beta"] * sigma2

    @property
    def persistence(self) -> float:
        """``alpha + gamma / 2 + beta`` (symmetric innovations: P(z < 0) = 1/2); < 1 for a
        covariance-stationary model (Glosten, Jagannathan & Runkle 1993)."""
        p = self.params
        return p["alpha"] + 0.5 * p["gamma"] + p["beta"]

    @property
    def unconditional_variance(self) -> float:
        """Daily unconditional variance ``omega / (1 - persistence)`` (squared fraction);
        ``inf`` when persistence >= 1 (no finite unconditional variance)."""
        k = self.persistence
        return self.params["omega"] / (1.0 - k) if k < 1.0 else math.inf

    # ------------------------------------------------------------------ public API
    def simulate(
        self,
        n_paths: int,
        horizon_days: int,
        rng: np.random.Generator,
        innovations: Literal["t", "fhs"] = "t",
        drift_per_day: float | None = None,
    ) -> np.ndarray:
        """Simulate future daily log returns from the fitted state at the end of the sample.

        Day 1 uses ``sigma_next``; each later day applies the (GJR-)GARCH recursion to the
        simulated shock, with the GJR indicator on negative shocks ``eps < 0``. The draws are
        made in bulk from ``rng``; the recursion runs compiled (numba), day by day across the paths.

        Parameters
        ----------
        n_paths : int >= 1
        horizon_days : int >= 1
        rng : np.random.Generator   source of all randomness (seed it for reproducibility).
        innovations : {"t", "fhs"}
            "t": standardised Student-t(nu) draws ``t_nu * sqrt((nu - 2) / nu)`` (unit variance,
            :func:`standardised_t`).
            "fhs": filtered historical simulation, draws with replacement from ``std_resid``
            (Barone-Adesi, Giannopoulos & Vosper 1999, J. Futures Markets 19(5):583-602).
        drift_per_day : float or None
            Mean daily log return of the simulation; None: the fitted ``mu`` (the sample's
            drift). A stress test sets it explicitly (``models.scenarios.stress_drift_per_day``).

        Returns
        -------
        np.ndarray, shape (n_paths, horizon_days)
            Daily log returns as fractions.

        Raises
        ------
        ValueError  if n_paths/horizon_days are not positive integers, rng is not a
            ``numpy.random.Generator`` or innovations is unknown.
        """
        n_paths = check_int(n_paths, "n_paths")
        horizon_days = check_int(horizon_days, "horizon_days")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
        p = self.params
        if innovations == "t":
            z = standardised_t(rng, p["nu"], (n_paths, horizon_days))
        elif innovations == "fhs":
            z = self.std_resid[rng.integers(0, self.n_obs, size=(n_paths, horizon_days))]
        else:
            raise ValueError(f"innovations: expected 't' or 'fhs', got {innovations!r}")
        mu = p["mu"] if drift_per_day is None else float(drift_per_day)
        if not math.isfinite(mu):
            raise ValueError(f"drift_per_day: expected a finite number, got {drift_per_day!r}")
        _gjr_paths(z, mu, p["omega"], p["alpha"], p["gamma"], p["beta"], self.sigma_next**2)
        return z

    def var_es_1d(self, level: float) -> tuple[float, float]:
        """Next-day VaR and ES (positive losses, fractions) at confidence ``level``.

        Uses ``sigma_next`` and the standardised-t closed form of :func:`student_t_var_es`
        (McNeil, Frey & Embrechts 2005, Example 2.19). Raises ValueError if level not in (0, 1).
        """
        return student_t_var_es(level, self.params["nu"], self.params["mu"], self.sigma_next)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (``std_resid`` as a list of floats)."""
        return {
            "kind": self.kind,
            "params": dict(self.params),
            "std_errors": dict(self.std_errors),
            "loglik": self.loglik,
            "loglik_decimal": self.loglik_decimal,
            "aic": self.aic,
            "bic": self.bic,
            "n_obs": self.n_obs,
            "std_resid": self.std_resid.tolist(),
            "last_resid": self.last_resid,
            "last_variance": self.last_variance,
            "sigma_next": self.sigma_next,
            "converged": self.converged,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GarchFit:
        """Inverse of :meth:`to_dict`. Raises ValueError naming a missing key or bad value."""
        names = [f for f in cls.__dataclass_fields__]
        missing = [k for k in names if k not in d and k != "converged"]
        if missing:
            raise ValueError(f"GarchFit.from_dict: missing keys {missing}")
        kwargs = {k: d[k] for k in names if k in d}
        kwargs["std_resid"] = np.asarray(d["std_resid"], dtype=float)
        return cls(**kwargs)


def fit_garch(
    returns: np.ndarray | pd.Series,
    kind: Literal["garch", "gjr"],
    dist: Literal["t"] = "t",
) -> GarchFit:
    """Fit a constant-mean GARCH(1,1) or GJR-GARCH(1,1,1) with standardised Student-t errors.

    Maximum likelihood via ``arch.arch_model(100 * returns, mean="Constant", vol="GARCH",
    p=1, o=0|1, q=1, dist="t", rescale=False)`` (arch 8.0 docs, "Univariate Volatility
    Models"); the parameters are converted back to decimal units (mu / 100, omega / 1e4;
    alpha, gamma, beta, nu unchanged). Sources: Bollerslev (1986) J. Econometrics 31(3);
    Glosten, Jagannathan & Runkle (1993) J. Finance 48(5); Bollerslev (1987) Rev. Econ. Stat.
    69(3) for the t innovations.

    Parameters
    ----------
    returns : array-like, shape (n,)
        Daily log returns as fractions, n >= ``MIN_GARCH_OBS`` (250), all finite.
    kind : {"garch", "gjr"}
        "garch": o = 0 (gamma fixed at 0); "gjr": o = 1 (asymmetric term on negative shocks).
    dist : {"t"}
        Innovation distribution; only the standardised Student-t is supported.

    Returns
    -------
    GarchFit  (see its docstring for units). ``converged`` is False if the optimiser did not
        report success (arch also issues a ConvergenceWarning); the estimates are kept.
        arch constrains ``alpha + gamma/2 + beta <= 1``; on the full 1968-2022 gold history the
        estimate sits on that bound (integrated GARCH, ``persistence`` = 1 up to ~1e-9), so
        ``unconditional_variance`` is then infinite or meaningless; simulation still works
        (variance grows by about omega per day).

    Raises
    ------
    ValueError  if kind/dist is unknown, returns are not 1-D, have fewer than 250 values,
        contain NaN/inf (naming the row), or have zero variance.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {_KINDS}, got {kind!r}")
    if dist != "t":
        raise ValueError(f"dist: only 't' (standardised Student-t) is supported, got {dist!r}")
    x = _as_returns(returns, "returns", MIN_GARCH_OBS)
    if x.max() == x.min():
        raise ValueError("returns: zero variance (all returns equal), GARCH is not identified")
    o = 1 if kind == "gjr" else 0
    from arch import arch_model  # imported here: simulating a fit never needs arch

    model = arch_model(_SCALE * x, mean="Constant", vol="GARCH", p=1, o=o, q=1, dist="t", rescale=False)
    res = model.fit(disp=False)
    raw, se = res.params, res.std_err

    def convert(src: pd.Series) -> dict[str, float]:
        return {
            "mu": float(src["mu"]) / _SCALE,
            "omega": float(src["omega"]) / _SCALE**2,
            "alpha": float(src["alpha[1]"]),
            "gamma": float(src["gamma[1]"]) if o else 0.0,
            "beta": float(src["beta[1]"]),
            "nu": float(src["nu"]),
        }

    params = convert(raw)
    n = int(res.nobs)
    last_resid = float(np.asarray(res.resid)[-1]) / _SCALE
    last_variance = (float(np.asarray(res.conditional_volatility)[-1]) / _SCALE) ** 2
    sigma2_next = (
        params["omega"]
        + (params["alpha"] + params["gamma"] * (last_resid < 0)) * last_resid**2
        + params["beta"] * last_variance
    )
    loglik = float(res.loglikelihood)
    return GarchFit(
        kind=kind,
        params=params,
        std_errors={k: abs(v) if np.isfinite(v) else 0.0 for k, v in convert(se).items()},
        loglik=loglik,
        loglik_decimal=loglik + n * math.log(_SCALE),
        aic=float(res.aic),
        bic=float(res.bic),
        n_obs=n,
        std_resid=np.asarray(res.std_resid, dtype=float),
        last_resid=last_resid,
        last_variance=last_variance,
        sigma_next=math.sqrt(sigma2_next),
        converged=res.convergence_flag == 0,
    )


def conditional_sigma_forecasts(fit: GarchFit, returns_out: np.ndarray | pd.Series) -> np.ndarray:
    """One-step-ahead conditional standard deviations over a hold-out sample, parameters FIXED.

    ``sigma_t`` for hold-out day t comes from the recursion run through the training sample
    (state ``fit.sigma_next``) and then through ``returns_out[:t]`` only: no look-ahead.

    Parameters
    ----------
    fit : GarchFit    fitted on returns that end the day before ``returns_out`` starts.
    returns_out : array-like, shape (m,)   hold-out daily log returns (fractions), finite.

    Returns
    -------
    np.ndarray, shape (m,)   conditional sd of each hold-out day's return (fraction).

    Raises
    ------
    ValueError  if fit is not a GarchFit or returns_out is not 1-D/finite/non-empty.
    """
    if not isinstance(fit, GarchFit):
        raise ValueError(f"fit: expected a GarchFit, got {type(fit).__name__}")
    r = _as_returns(returns_out, "returns_out", 1)
    p = fit.params
    sigma2 = np.empty(r.shape[0])
    s2 = fit.sigma_next**2
    omega, alpha, gamma, beta, mu = p["omega"], p["alpha"], p["gamma"], p["beta"], p["mu"]
    for t in range(r.shape[0]):
        sigma2[t] = s2
        eps = r[t] - mu
        s2 = omega + (alpha + gamma * (eps < 0)) * eps * eps + beta * s2
    return np.sqrt(sigma2)


def one_day_var_forecasts(
    fit: GarchFit,
    returns_out: np.ndarray | pd.Series,
    level: float,
    innovations: Literal["t", "fhs"] = "t",
) -> np.ndarray:
    """Out-of-sample one-step-ahead VaR (positive loss) for each day of a hold-out sample.

    The fitted parameters are held FIXED (no refit); ``sigma_t`` comes from
    :func:`conditional_sigma_forecasts` (no look-ahead). With ``innovations="t"``:
    ``VaR_t = sigma_t * sqrt((nu-2)/nu) * t_nu^{-1}(level) - mu``
    (standardised-t quantile, McNeil, Frey & Embrechts 2005, Example 2.19). With
    ``innovations="fhs"`` (filtered historical simulation, Barone-Adesi, Giannopoulos & Vosper
    1999): ``VaR_t = -(mu + sigma_t * z_(1-level))`` with ``z_(1-level)`` the empirical
    quantile of the training standardised residuals. A return ``r_t`` with ``-r_t > VaR_t`` is a
    VaR exception (for backtests such as Kupiec 1995, J. Derivatives 3(2):73-84).

    Parameters
    ----------
    fit : GarchFit    fitted on returns that end the day before ``returns_out`` starts.
    returns_out : array-like, shape (m,)   hold-out daily log returns (fractions), m >= 1, finite.
    level : float     confidence level as a fraction in (0, 1), e.g. 0.99.
    innovations : "t" or "fhs".

    Returns
    -------
    np.ndarray, shape (m,)   VaR forecasts as positive losses (fractions).

    Raises
    ------
    ValueError  if fit is not a GarchFit, returns_out is not 1-D/finite/non-empty, level is
        not in (0, 1), or innovations is unknown.
    """
    level = check_level(level)
    sigma = conditional_sigma_forecasts(fit, returns_out)
    p = fit.params
    if innovations == "t":
        nu = p["nu"]
        q = math.sqrt((nu - 2.0) / nu) * float(stats.t.ppf(level, nu))
    elif innovations == "fhs":
        q = -float(np.quantile(fit.std_resid, 1.0 - level))
    else:
        raise ValueError(f"innovations: expected 't' or 'fhs', got {innovations!r}")
    return sigma * q - p["mu"]
