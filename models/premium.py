"""Premium of a gold-backed token to its NAV: arbitrage band, primary-market order size, premium process.

Pure numerics, no I/O: :func:`arbitrage_band`, :func:`order_size_tokens` and :class:`PremiumProcess`
(AR(1) with t innovations, jumps and the band; simulation, daily step, likelihood). Premia, fees and
rates are fractions; every random draw comes from a caller-supplied ``numpy.random.Generator``.
Equations, assumptions and sources: docs/models/premium.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from models.checks import check_fraction, check_nonnegative

__all__ = [
    "PremiumFit",
    "PremiumProcess",
    "arbitrage_band",
    "order_size_tokens",
]

# --------------------------------------------------------------------------- arbitrage band


def arbitrage_band(
    mint_fee: float,
    redeem_fee: float,
    other_costs_frac: float = 0.0,
    *,
    secondary_fee: float = 0.0,
    settlement_lag_days: float = 0.0,
    financing_rate_per_year: float = 0.0,
    days_per_year: float = 365.0,
    fixed_cost_usd: float = 0.0,
    nav_usd_per_token: float | None = None,
    trade_size_tokens: float | None = None,
    min_redemption_tokens: float = 0.0,
    redemption_granularity_tokens: float = 0.0,
) -> tuple[float, float]:
    """No-arbitrage band ``(lower, upper)`` of the premium to NAV, as fractions.

    A premium above ``upper`` is profitably arbitraged by minting and selling, a discount below
    ``lower`` by buying and redeeming (derivation in docs/models/premium.md, after Petajisto
    (2017), Financial Analysts Journal 73(1), and Lyons & Viswanath-Natraj (2023), JIMF 131):

    ``upper = (1 + mint_fee + c + phi)(1 + kappa) / (1 - secondary_fee) - 1``,
    ``lower = max(-1, (1 / (1 + kappa) - redeem_fee - c - phi) / (1 + secondary_fee) - 1)``,

    with ``c = other_costs_frac``, ``kappa = financing_rate_per_year * settlement_lag_days /
    days_per_year`` (simple-interest carry of the capital tied up during settlement) and
    ``phi = fixed_cost_usd / (q * nav_usd_per_token)`` the fixed cost per order spread over the
    order size ``q``: ``trade_size_tokens`` rounded up to a whole multiple of
    ``redemption_granularity_tokens`` and to at least ``min_redemption_tokens`` (default: the
    smallest allowed order). The same order rules are applied to mints and redemptions.

    Parameters
    ----------
    mint_fee, redeem_fee : float
        Primary-market fees, fractions of NAV in [0, 1).
    other_costs_frac : float
        Other costs per primary-market leg (gas, dealer spread on the gold leg, bar transport or
        sale), fraction of NAV >= 0, charged on both the mint and the redeem side.
    secondary_fee : float
        Secondary-market fee or half-spread on the token leg, fraction in [0, 1).
    settlement_lag_days, financing_rate_per_year, days_per_year : float
        Settlement lag (days >= 0), financing rate (fraction per year >= 0) and the day count.
    fixed_cost_usd : float
        Fixed cost per primary-market order, USD >= 0 (needs ``nav_usd_per_token`` and an order
        size when > 0).
    nav_usd_per_token : float or None
        NAV of one token, USD > 0 (only used for the fixed cost).
    trade_size_tokens : float or None
        Intended order size, tokens > 0; None: the smallest allowed order.
    min_redemption_tokens, redemption_granularity_tokens : float
        Smallest order and order granularity (whole bars), tokens >= 0 (0 = no rule).

    Returns
    -------
    (lower, upper) : tuple of float
        ``-1 <= lower <= 0 <= upper``.

    Raises
    ------
    ValueError
        Naming the argument: a fee outside [0, 1), a negative cost, lag or rate, a
        non-positive ``days_per_year``, or ``fixed_cost_usd > 0`` without ``nav_usd_per_token``
        or without any order size (no ``trade_size_tokens`` and no minimum or granularity).
    """
    f_m = check_fraction(mint_fee, "mint_fee")
    f_r = check_fraction(redeem_fee, "redeem_fee")
    c = check_nonnegative(other_costs_frac, "other_costs_frac")
    s = check_fraction(secondary_fee, "secondary_fee")
    lag = check_nonnegative(settlement_lag_days, "settlement_lag_days")
    r = check_nonnegative(financing_rate_per_year, "financing_rate_per_year")
    d = check_nonnegative(days_per_year, "days_per_year")
    if d <= 0:
        raise ValueError(f"days_per_year: must be > 0, got {days_per_year!r}")
    fixed = check_nonnegative(fixed_cost_usd, "fixed_cost_usd")
    q_min = check_nonnegative(min_redemption_tokens, "min_redemption_tokens")
    gran = check_nonnegative(redemption_granularity_tokens, "redemption_granularity_tokens")
    phi = 0.0
    if fixed > 0:
        if nav_usd_per_token is None:
            raise ValueError("nav_usd_per_token: required when fixed_cost_usd > 0")
        nav = check_nonnegative(nav_usd_per_token, "nav_usd_per_token")
        if nav <= 0:
            raise ValueError(f"nav_usd_per_token: must be > 0, got {nav_usd_per_token!r}")
        if trade_size_tokens is None:
            q = max(q_min, gran)
            if q <= 0:
                raise ValueError(
                    "trade_size_tokens: required when fixed_cost_usd > 0 and neither "
                    "min_redemption_tokens nor redemption_granularity_tokens is set"
                )
        else:
            q = check_nonnegative(trade_size_tokens, "trade_size_tokens")
            if q <= 0:
                raise ValueError(f"trade_size_tokens: must be > 0, got {trade_size_tokens!r}")
        phi = float(fixed / (order_size_tokens(q, q_min, gran) * nav))
    kappa = r * lag / d
    upper = (1.0 + f_m + c + phi) * (1.0 + kappa) / (1.0 - s) - 1.0
    lower = max(-1.0, (1.0 / (1.0 + kappa) - f_r - c - phi) / (1.0 + s) - 1.0)
    return float(lower), float(upper)


def order_size_tokens(
    wanted_tokens: float | np.ndarray, min_tokens: float = 0.0, granularity_tokens: float = 0.0
) -> float | np.ndarray:
    """Primary-market order size for a wanted size: rounded UP to a whole multiple of
    ``granularity_tokens`` (0 = any size) and to at least ``min_tokens``. Zero stays zero
    (no order). Broadcasts over arrays; tokens in, tokens out. Raises ValueError for a
    negative or non-finite argument.

    (Up, because the arbitrage needs the whole lot: an arbitrageur who wants ``q`` tokens of a
    redemption must buy and redeem the full lot.)
    """
    w = np.asarray(wanted_tokens, dtype=float)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("wanted_tokens: must be finite and >= 0")
    q_min = check_nonnegative(min_tokens, "min_tokens")
    g = check_nonnegative(granularity_tokens, "granularity_tokens")
    q = np.where(w > 0, np.maximum(w, q_min), 0.0)
    if g > 0:
        # a tolerance so that 860.0000000001 / 430 does not become 3 bars
        q = np.ceil(q / g - 1e-9) * g
        q = np.where((w > 0) & (q < q_min), np.ceil(q_min / g - 1e-9) * g, q)
    return float(q) if q.ndim == 0 else q


# --------------------------------------------------------------------------- densities

_GL_X, _GL_W = np.polynomial.legendre.leggauss(32)  # [-1, 1]
_GLT_X, _GLT_W = np.polynomial.legendre.leggauss(32)
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(48)  # weight exp(-x^2 / 2)
_GH_W = _GH_W / math.sqrt(2.0 * math.pi)
_BODY_P = 0.02  # the t body covers probabilities [_BODY_P, 1 - _BODY_P]
_KERNEL_HALF_WIDTH = 10.0  # normal kernel window, in kernel standard deviations
_POISSON_TAIL = 1e-10
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _t_unit_scale(df: float) -> float:
    return math.sqrt((df - 2.0) / df)


def _e_logpdf(e: np.ndarray, df: float | None) -> np.ndarray:
    """Log density of the unit-variance innovation at ``e``."""
    if df is None:
        return -0.5 * e * e - 0.5 * math.log(2.0 * math.pi)
    c = _t_unit_scale(df)
    z = e / c
    const = special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * math.log(df * math.pi) - math.log(c)
    return const - (df + 1) / 2 * np.log1p(z * z / df)


def _e_cdf(e: np.ndarray, df: float | None) -> np.ndarray:
    if df is None:
        return special.ndtr(e)
    return special.stdtr(df, e / _t_unit_scale(df))


def _e_ppf(q: np.ndarray, df: float | None) -> np.ndarray:
    if df is None:
        return special.ndtri(q)
    return special.stdtrit(df, q) * _t_unit_scale(df)


def _conv(x: np.ndarray, sigma: float, df: float | None, s: float, kind: str) -> np.ndarray:
    """Density (``kind="pdf"``) or CDF of ``sigma * e + s * W`` at ``x``; ``e`` unit-variance
    t(df) or normal, ``W`` standard normal independent, ``s >= 0``. Quadrature in
    docs/models/premium.md; exact for normal ``e`` or ``s = 0``."""
    x = np.asarray(x, dtype=float)
    if s == 0.0:
        if kind == "pdf":
            return np.exp(_e_logpdf(x / sigma, df)) / sigma
        return _e_cdf(x / sigma, df)
    if df is None:
        tot = math.hypot(sigma, s)
        return stats.norm.pdf(x, scale=tot) if kind == "pdf" else special.ndtr(x / tot)
    if s < sigma:
        # integrate over the narrower normal: Gauss-Hermite
        arg = (x[..., None] - s * _GH_X) / sigma
        if kind == "pdf":
            vals = np.exp(_e_logpdf(arg, df)) / sigma
        else:
            vals = _e_cdf(arg, df)
        return vals @ _GH_W
    # s >= sigma: integrate over e (the narrower one) in e-units; kernel width w >= 1
    c = x / sigma
    w = s / sigma
    if kind == "pdf":
        kern = lambda e: np.exp(-0.5 * ((c[..., None] - e) / w) ** 2) / (_SQRT2PI * w * sigma)  # noqa: E731
    else:
        kern = lambda e: special.ndtr((c[..., None] - e) / w)  # noqa: E731
    # body: Gauss-Legendre in probability on [P, 1 - P]
    lo_p, hi_p = _BODY_P, 1.0 - _BODY_P
    v = lo_p + (hi_p - lo_p) * (_GL_X + 1.0) / 2.0
    e_body = _e_ppf(v, df)
    b = float(_e_ppf(np.array(hi_p), df))
    out = kern(e_body) @ (_GL_W * (hi_p - lo_p) / 2.0)
    half = _KERNEL_HALF_WIDTH * w
    for sign in (1.0, -1.0):
        # tail e in sign*[b, inf): in mirrored coordinates e' = sign*e >= b, centre c' = sign*c
        cc = sign * c
        a_ = np.maximum(b, cc - half)
        b_ = cc + half
        ok = b_ > a_
        la = np.log(np.where(ok, a_, b))
        lb = np.log(np.where(ok, b_, b * 2.0))
        y = la[..., None] + (lb - la)[..., None] * (_GLT_X + 1.0) / 2.0
        e_t = np.exp(y)  # mirrored tail nodes
        dens = np.exp(_e_logpdf(e_t, df)) * e_t * ((lb - la)[..., None] / 2.0) * _GLT_W
        if kind == "pdf":
            k = np.exp(-0.5 * ((cc[..., None] - e_t) / w) ** 2) / (_SQRT2PI * w * sigma)
        else:
            # CDF kernel in original coordinates: ndtr((c - e)/w) with e = sign * e_t
            k = special.ndtr((c[..., None] - sign * e_t) / w)
        part = np.where(ok, np.sum(dens * k, axis=-1), 0.0)
        if kind == "cdf":
            if sign > 0:
                # e in [b, a_): kernel ~ 1 (e < c - half): mass F(a_) - F(b)
                # (window entirely left of b: the kernel is ~0 on the whole right tail)
                part = part + np.where(ok, _e_cdf(a_, df) - _e_cdf(np.full_like(a_, b), df), 0.0)
            else:
                # left tail e <= -b; kernel ~ 1 for e < c - half i.e. e' > -c + half = cc + half
                part = part + np.where(ok, 1.0 - _e_cdf(b_, df), 0.0)
                part = part + np.where(~ok & (cc + half <= b), 1.0 - _e_cdf(np.full_like(a_, b), df), 0.0)
        out = out + part
    return out


# --------------------------------------------------------------------------- premium process


@dataclass(frozen=True)
class PremiumFit:
    """Diagnostics of a fitted premium process (set by
    :func:`models.calibration.fit_premium_process`).

    Attributes
    ----------
    method : str
        Estimation method (``"mle"``: conditional maximum likelihood).
    n_obs : int
        Number of (p_{t-1}, p_t) pairs used.
    n_jumps : int
        Days identified as jump days (``len(jump_labels)``).
    log_likelihood : float
        Conditional log-likelihood of the fitted process on the pairs.
    standard_errors : dict[str, float]
        Per fitted parameter (names as the :class:`PremiumProcess` fields); NaN where not
        available (parameter on a bound, singular information).
    converged : bool
        Optimiser success.
    message : str
        Notes (optimiser message, fallbacks).
    jump_labels : tuple
        Index labels of the jump days.
    """

    method: str
    n_obs: int
    n_jumps: int
    log_likelihood: float
    standard_errors: dict[str, float]
    converged: bool
    message: str = ""
    jump_labels: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN standard errors as None, labels as strings)."""
        return {
            "method": self.method,
            "n_obs": self.n_obs,
            "n_jumps": self.n_jumps,
            "log_likelihood": self.log_likelihood,
            "standard_errors": {k: (None if not math.isfinite(v) else v) for k, v in self.standard_errors.items()},
            "converged": self.converged,
            "message": self.message,
            "jump_labels": [str(x) for x in self.jump_labels],
        }


_PARAM_KEYS = (
    "mean",
    "phi",
    "sigma",
    "df",
    "jump_intensity_per_day",
    "jump_mean",
    "jump_sd",
    "jump_drawdown_sensitivity",
    "band_lower",
    "band_upper",
    "band_pull",
)


@dataclass(frozen=True)
class PremiumProcess:
    """AR(1) premium with Student-t or normal innovations, Poisson jumps and an arbitrage band.

    ``p_t = mean + phi (p_{t-1} - mean) - band_pull * open_t * x(p_{t-1}) + sigma e_t + J_t`` with
    ``x(p) = max(p - band_upper, 0) - max(band_lower - p, 0)`` the excess over the arbitrage band
    (a band threshold autoregression: Obstfeld & Taylor 1997, J. Japanese Int. Economies 11(4),
    441-479; Balke & Fomby 1997, Int. Econ. Rev. 38(3), 627-645). The band pulls the premium back
    on days the primary market is open (``open_t``) and does not act when it is shut. All values
    are fractions of NAV (model and references in docs/models/premium.md).

    Parameters
    ----------
    mean : float
        ``m``: the level the premium reverts to, jumps aside (the stationary mean is
        :meth:`stationary_mean`).
    phi : float
        Daily AR(1) coefficient, ``|phi| < 1`` (half-life ``log 0.5 / log phi`` days).
    sigma : float
        Standard deviation of the diffusive innovation ``sigma e_t``, > 0.
    df : float or None
        Student-t degrees of freedom (> 2; ``e_t`` is scaled to unit variance); None: normal.
    jump_intensity_per_day : float
        ``lambda_0 >= 0``: expected jumps per day at zero gold drawdown.
    jump_mean, jump_sd : float
        Jump size ``Y ~ N(jump_mean, jump_sd^2)``, ``jump_sd >= 0``.
    jump_drawdown_sensitivity : float
        ``k >= 0``: ``lambda_t = lambda_0 + k * drawdown_t``.
    band_lower, band_upper : float or None
        Arbitrage band (both or neither), ``band_lower <= band_upper`` (equal: a frictionless
        primary market pins the premium on open days); see :func:`arbitrage_band`.
    band_pull : float
        ``kappa`` in [0, 1]: share of yesterday's excess over the band that arbitrage removes on an
        open day, on top of the AR(1) reversion (0: the band exerts no force; estimated by
        :func:`models.calibration.fit_premium_process` when a band is given).
    fit_info : PremiumFit or None
        Set by :func:`models.calibration.fit_premium_process`; not part of equality or of
        :meth:`to_dict`.

    Raises
    ------
    ValueError
        Naming the field for a value out of range or not finite.
    """

    mean: float = 0.0
    phi: float = 0.5
    sigma: float = 0.002
    df: float | None = None
    jump_intensity_per_day: float = 0.0
    jump_mean: float = 0.0
    jump_sd: float = 0.0
    jump_drawdown_sensitivity: float = 0.0
    band_lower: float | None = None
    band_upper: float | None = None
    band_pull: float = 0.0
    fit_info: PremiumFit | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        def num(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool):
                raise ValueError(f"{name}: expected a number, got {v!r}")
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: expected a number, got {v!r}") from None
            if not math.isfinite(f):
                raise ValueError(f"{name}: must be finite, got {v!r}")
            object.__setattr__(self, name, f)
            return f

        num("mean")
        if not abs(num("phi")) < 1.0:
            raise ValueError(f"phi: must satisfy |phi| < 1 (stationary), got {self.phi!r}")
        if not num("sigma") > 0:
            raise ValueError(f"sigma: must be > 0, got {self.sigma!r}")
        if self.df is not None and not num("df") > 2.0:
            raise ValueError(f"df: must be > 2 (finite variance) or None for normal, got {self.df!r}")
        if num("jump_intensity_per_day") < 0:
            raise ValueError(f"jump_intensity_per_day: must be >= 0, got {self.jump_intensity_per_day!r}")
        num("jump_mean")
        if num("jump_sd") < 0:
            raise ValueError(f"jump_sd: must be >= 0, got {self.jump_sd!r}")
        if num("jump_drawdown_sensitivity") < 0:
            raise ValueError(f"jump_drawdown_sensitivity: must be >= 0, got {self.jump_drawdown_sensitivity!r}")
        if (self.band_lower is None) != (self.band_upper is None):
            raise ValueError("band_lower, band_upper: give both or neither")
        if self.band_lower is not None:
            lo, hi = num("band_lower"), num("band_upper")
            if not lo <= hi:
                raise ValueError(f"band_lower: must be <= band_upper, got {lo!r} > {hi!r}")
        if not 0.0 <= num("band_pull") <= 1.0:
            raise ValueError(f"band_pull: must be in [0, 1], got {self.band_pull!r}")

    # ------------------------------------------------------------------ closed forms

    def intensity(self, drawdown: float | np.ndarray = 0.0) -> float | np.ndarray:
        """Jump intensity ``lambda_0 + k * drawdown`` per day (drawdown a fraction)."""
        lam = self.jump_intensity_per_day + self.jump_drawdown_sensitivity * np.asarray(drawdown, dtype=float)
        return float(lam) if np.ndim(lam) == 0 else lam

    def innovation_mean(self, drawdown: float = 0.0) -> float:
        """``E u = lambda mu_J`` at a constant drawdown."""
        return float(self.intensity(drawdown)) * self.jump_mean

    def innovation_variance(self, drawdown: float = 0.0) -> float:
        """``Var u = sigma^2 + lambda (s_J^2 + mu_J^2)`` (compound Poisson) at a constant drawdown."""
        lam = float(self.intensity(drawdown))
        return self.sigma**2 + lam * (self.jump_sd**2 + self.jump_mean**2)

    def stationary_mean(self, drawdown: float = 0.0) -> float:
        """Stationary mean ``m + lambda mu_J / (1 - phi)`` (no band; constant drawdown, default 0)."""
        return self.mean + self.innovation_mean(drawdown) / (1.0 - self.phi)

    def stationary_variance(self, drawdown: float = 0.0) -> float:
        """Stationary variance ``(sigma^2 + lambda (s_J^2 + mu_J^2)) / (1 - phi^2)`` (no band)."""
        return self.innovation_variance(drawdown) / (1.0 - self.phi**2)

    def stationary_sd(self, drawdown: float = 0.0) -> float:
        """Square root of :meth:`stationary_variance`."""
        return math.sqrt(self.stationary_variance(drawdown))

    def autocorrelation(self, lag: int = 1) -> float:
        """Stationary autocorrelation at ``lag >= 0`` days, ``phi ** lag`` (no band).
        Raises ValueError for a negative or non-integer lag."""
        if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 0:
            raise ValueError(f"lag: must be an integer >= 0, got {lag!r}")
        return float(self.phi ** int(lag))

    @property
    def half_life_days(self) -> float:
        """Days for a deviation from the mean to halve, ``log(0.5) / log(phi)``; inf for
        ``phi <= 0`` is not meaningful, so NaN is returned there."""
        return math.log(0.5) / math.log(self.phi) if self.phi > 0 else float("nan")

    def with_band(self, lower: float, upper: float, pull: float | None = None) -> PremiumProcess:
        """Copy with the arbitrage band ``[lower, upper]`` (e.g. from :func:`arbitrage_band`) and
        ``band_pull`` (None: keep this process's); ValueError as the constructor."""
        kappa = self.band_pull if pull is None else pull
        return replace(self, band_lower=lower, band_upper=upper, band_pull=kappa, fit_info=self.fit_info)

    def band_excess(self, p: np.ndarray) -> np.ndarray:
        """Excess of premia ``p`` (fractions, any shape) over the band: ``p - upper`` above it,
        ``p - lower`` (negative) below it, 0 inside or without a band; same shape as ``p``."""
        x = np.asarray(p, dtype=float)
        if self.band_lower is None or self.band_upper is None:
            return np.zeros_like(x)
        return np.maximum(x - self.band_upper, 0.0) - np.maximum(self.band_lower - x, 0.0)

    def conditional_mean(self, p_prev: np.ndarray, market_open: bool | np.ndarray = True) -> np.ndarray:
        """Conditional mean of ``p_t`` before the jump mean: ``mean + phi (p_{t-1} - mean) -
        band_pull * open_t * x(p_{t-1})`` (:meth:`band_excess`); broadcasts ``p_prev`` (fractions)
        against ``market_open`` (bool)."""
        prev = np.asarray(p_prev, dtype=float)
        cond = self.mean + self.phi * (prev - self.mean)
        if self.band_pull > 0 and self.band_lower is not None:
            cond = cond - self.band_pull * np.asarray(market_open, dtype=float) * self.band_excess(prev)
        return cond

    # ------------------------------------------------------------------ simulation

    def step(
        self,
        p_prev: np.ndarray,
        rng: np.random.Generator,
        drawdown: float | np.ndarray = 0.0,
        market_open: bool | np.ndarray = True,
        shock: float | np.ndarray = 0.0,
    ) -> np.ndarray:
        """One day of the process for every path (for day-by-day models with feedback).

        Parameters
        ----------
        p_prev : ndarray, shape (n_paths,)
            Yesterday's premia (fractions).
        rng : numpy.random.Generator
            Draws, in this order: the innovations ``e`` (n_paths); then, only if some
            intensity is > 0, the jump counts and the jump normals (n_paths each).
        drawdown : float or ndarray (n_paths,)
            Today's gold drawdown, fraction in [0, 1].
        market_open : bool or ndarray (n_paths,)
            Whether the primary market is open today (the band pulls only then).
        shock : float or ndarray (n_paths,)
            Exogenous addition to today's premium (e.g. redemption-queue pressure), fraction.

        Returns
        -------
        ndarray, shape (n_paths,)

        Raises
        ------
        ValueError
            For a non-1-D or non-finite ``p_prev``, a drawdown outside [0, 1], a non-finite
            shock or a wrong ``rng``.
        """
        p_prev = np.asarray(p_prev, dtype=float)
        if p_prev.ndim != 1 or not np.isfinite(p_prev).all():
            raise ValueError(f"p_prev: expected a finite 1-D array (n_paths,), got shape {p_prev.shape}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
        n = p_prev.shape[0]
        dd = np.broadcast_to(np.asarray(drawdown, dtype=float), (n,))
        if not np.isfinite(dd).all() or (dd < 0).any() or (dd > 1).any():
            raise ValueError("drawdown: must be finite fractions in [0, 1]")
        sh = np.broadcast_to(np.asarray(shock, dtype=float), (n,))
        if not np.isfinite(sh).all():
            raise ValueError("shock: must be finite")
        op = np.broadcast_to(np.asarray(market_open, dtype=bool), (n,))
        return self._step(p_prev, rng, dd, op, sh)

    def _step(self, p_prev, rng, dd, op, sh):
        n = p_prev.shape[0]
        if self.df is None:
            e = rng.standard_normal(n)
        else:
            e = rng.standard_t(self.df, n) * _t_unit_scale(self.df)
        u = self.sigma * e
        lam = self.jump_intensity_per_day + self.jump_drawdown_sensitivity * dd
        if (lam > 0).any():
            cnt = rng.poisson(lam)
            z = rng.standard_normal(n)
            u = u + cnt * self.jump_mean + np.sqrt(cnt) * self.jump_sd * z
        return self.conditional_mean(p_prev, op) + u + sh

    def simulate(
        self,
        n_paths: int,
        horizon_days: int,
        rng: np.random.Generator,
        drawdown: np.ndarray | None = None,
        market_open: np.ndarray | None = None,
        p0: float | np.ndarray | None = None,
        shock: np.ndarray | None = None,
    ) -> np.ndarray:
        """Simulate premia for days 1..H on every path (a loop over days of :meth:`step`).

        Parameters
        ----------
        n_paths, horizon_days : int
            >= 1.
        rng : numpy.random.Generator
        drawdown : ndarray or None
            Gold drawdown fractions in [0, 1], shape ``(n_paths, horizon_days)`` or
            ``(horizon_days,)`` (same on every path); None: 0 (jump intensity ``lambda_0``).
        market_open : bool ndarray or None
            Primary market open per day, ``(n_paths, horizon_days)`` or ``(horizon_days,)``
            (e.g. weekdays of a calendar); None: always open. The band pulls only on open days.
        p0 : float, ndarray (n_paths,) or None
            Day-0 premium; None: the stationary mean, clipped into the band if there is one.
        shock : ndarray or None
            Exogenous additive premium term, shape as ``drawdown``; None: 0.

        Returns
        -------
        ndarray, shape (n_paths, horizon_days)
            Premia (fractions) for days 1..H (day 0 is ``p0``, not included).

        Raises
        ------
        ValueError
            Naming the argument for a bad size, shape, value or ``rng``.
        """
        for name, v in (("n_paths", n_paths), ("horizon_days", horizon_days)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected numpy.random.Generator, got {type(rng).__name__}")
        n, h = int(n_paths), int(horizon_days)

        def grid(a: Any, name: str, dtype: type, default: Any) -> np.ndarray:
            if a is None:
                return np.full((n, h), default, dtype=dtype)
            arr: np.ndarray = np.asarray(a, dtype=dtype)
            if arr.shape not in ((h,), (n, h)):
                raise ValueError(f"{name}: expected shape ({n}, {h}) or ({h},), got {arr.shape}")
            return np.broadcast_to(arr, (n, h))

        dd = grid(drawdown, "drawdown", float, 0.0)
        if not np.isfinite(dd).all() or (dd < 0).any() or (dd > 1).any():
            raise ValueError("drawdown: must be finite fractions in [0, 1]")
        op = grid(market_open, "market_open", bool, True)
        sh = grid(shock, "shock", float, 0.0)
        if not np.isfinite(sh).all():
            raise ValueError("shock: must be finite")
        if p0 is None:
            start = self.stationary_mean()
            if self.band_lower is not None and self.band_upper is not None:  # set together (with_band)
                start = min(max(start, self.band_lower), self.band_upper)
            p = np.full(n, start)
        else:
            p = np.broadcast_to(np.asarray(p0, dtype=float), (n,)).copy()
            if not np.isfinite(p).all():
                raise ValueError("p0: must be finite")
        out = np.empty((n, h))
        for t in range(h):
            p = self._step(p, rng, dd[:, t], op[:, t], sh[:, t])
            out[:, t] = p
        return out

    # ------------------------------------------------------------------ likelihood

    def _n_max(self, lam_max: float) -> int:
        if lam_max <= 0:
            return 0
        return int(max(1, stats.poisson.isf(_POISSON_TAIL, lam_max)))

    def innovation_logpdf(self, u: np.ndarray, drawdown: float | np.ndarray = 0.0) -> np.ndarray:
        """Log density of the total innovation ``u = sigma e + J`` (Poisson mixture; quadrature
        for t innovations with jumps, see docs/models/premium.md). Broadcasts ``u`` against
        ``drawdown`` (fractions in [0, 1])."""
        u, dd = np.broadcast_arrays(np.asarray(u, dtype=float), np.asarray(drawdown, dtype=float))
        lam = self.jump_intensity_per_day + self.jump_drawdown_sensitivity * dd
        base = _e_logpdf(u / self.sigma, self.df) - math.log(self.sigma)
        nmax = self._n_max(float(lam.max()) if lam.size else 0.0)
        if nmax == 0:
            return base
        with np.errstate(divide="ignore"):
            loglam = np.log(lam)
        terms = [base - lam]
        for k in range(1, nmax + 1):
            g = _conv(u - k * self.jump_mean, self.sigma, self.df, self.jump_sd * math.sqrt(k), "pdf")
            with np.errstate(divide="ignore"):
                terms.append(k * loglam - lam - special.gammaln(k + 1) + np.log(g))
        return special.logsumexp(np.stack(terms), axis=0)

    def innovation_cdf(self, u: np.ndarray, drawdown: float | np.ndarray = 0.0) -> np.ndarray:
        """CDF of the total innovation ``u`` (same mixture as :meth:`innovation_logpdf`)."""
        u, dd = np.broadcast_arrays(np.asarray(u, dtype=float), np.asarray(drawdown, dtype=float))
        lam = self.jump_intensity_per_day + self.jump_drawdown_sensitivity * dd
        out = np.exp(-lam) * _e_cdf(u / self.sigma, self.df)
        nmax = self._n_max(float(lam.max()) if lam.size else 0.0)
        for k in range(1, nmax + 1):
            w = np.exp(k * np.log(np.where(lam > 0, lam, 1.0)) - lam - special.gammaln(k + 1))
            w = np.where(lam > 0, w, 0.0)
            out = out + w * _conv(u - k * self.jump_mean, self.sigma, self.df, self.jump_sd * math.sqrt(k), "cdf")
        return np.clip(out, 0.0, 1.0)

    def innovation_ppf(self, q: float | np.ndarray, drawdown: float | np.ndarray = 0.0) -> np.ndarray:
        """Quantile of the total innovation for probabilities ``q`` in (0, 1) (vectorised
        bisection on :meth:`innovation_cdf`, 100 halvings). ValueError for ``q`` outside (0, 1)."""
        q, dd = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(drawdown, dtype=float))
        if not np.isfinite(q).all() or (q <= 0).any() or (q >= 1).any():
            raise ValueError("q: probabilities must be in (0, 1)")
        lam = self.jump_intensity_per_day + self.jump_drawdown_sensitivity * dd
        spread = np.sqrt(self.sigma**2 + lam * (self.jump_sd**2 + self.jump_mean**2))
        lo = -1.0 * np.ones_like(q) * spread
        hi = np.ones_like(q) * spread
        # widen until bracketing
        for _ in range(200):
            bad_lo = self.innovation_cdf(lo, dd) > q
            bad_hi = self.innovation_cdf(hi, dd) < q
            if not (bad_lo.any() or bad_hi.any()):
                break
            lo = np.where(bad_lo, lo * 2.0, lo)
            hi = np.where(bad_hi, hi * 2.0, hi)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            below = self.innovation_cdf(mid, dd) < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def log_likelihood(
        self, premia: pd.Series, drawdown: pd.Series | None = None, *, per_obs: bool = False
    ) -> float | pd.Series:
        """Conditional log-likelihood of a daily premium series (the first observation and any
        observation whose predecessor is missing are conditioned on, not scored; every step is
        taken as an open day of the primary market, so the band pulls on all of them).

        Parameters
        ----------
        premia : pandas.Series
            Premia (fractions) in time order; NaN = missing day (breaks the chain).
        drawdown : pandas.Series or None
            Gold drawdown (fractions in [0, 1]) on the same index; None: 0.
        per_obs : bool
            Return the per-observation terms as a Series on ``premia.index`` (NaN where not
            scored) instead of their sum.

        Returns
        -------
        float or pandas.Series

        Raises
        ------
        ValueError
            For a non-numeric or non-1-D series, an infinite value or a premium <= -1, an
            index not in increasing order, a drawdown misaligned or outside [0, 1].
        """
        s = _as_premium_series(premia)
        prev, curr, dd, pos, _ = _pairs(s, _as_drawdown(drawdown, s))
        ll = _loglik_obs(self._as_param_dict(), prev, curr, dd)
        if not per_obs:
            return float(ll.sum())
        out = np.full(len(s), np.nan)
        out[pos] = ll
        return pd.Series(out, index=s.index, name="log_likelihood")

    def one_step_forecast(
        self,
        premia: pd.Series,
        quantiles: tuple[float, ...] = (0.025, 0.975),
        drawdown: pd.Series | None = None,
    ) -> pd.DataFrame:
        """One-day-ahead predictive mean and quantiles of each observation given the previous one.

        Row ``t`` holds the forecast of ``p_t`` made from ``p_{t-1}``:
        ``mean = c(p_{t-1}) + lambda_t mu_J`` and ``c(p_{t-1}) + F_u^{-1}(q)`` with ``c`` the
        :meth:`conditional_mean` of an open day; NaN where ``p_{t-1}`` is missing.

        Returns
        -------
        pandas.DataFrame
            Index ``premia.index``; columns ``"mean"`` and ``f"q{q}"`` per quantile (e.g.
            ``"q0.025"``).

        Raises
        ------
        ValueError
            For quantiles outside (0, 1), or a bad series (as :meth:`log_likelihood`).
        """
        s = _as_premium_series(premia)
        ddf = _as_drawdown(drawdown, s)
        x = s.to_numpy(dtype=float)
        prev = np.concatenate([[np.nan], x[:-1]])
        dd = np.zeros(len(s)) if ddf is None else ddf.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            cond = self.conditional_mean(prev, True)
        out = {"mean": cond + self.intensity(dd) * self.jump_mean}
        qs = tuple(float(q) for q in quantiles)
        for q in qs:
            if not 0.0 < q < 1.0:
                raise ValueError(f"quantiles: {q} is not in (0, 1)")
        ok = np.isfinite(prev)
        for q in qs:
            col = np.full(len(s), np.nan)
            if ok.any():
                if self.jump_drawdown_sensitivity == 0 or ddf is None:
                    uq = float(self.innovation_ppf(q, float(dd[ok][0]) if ddf is not None else 0.0))
                    col[ok] = cond[ok] + uq
                else:
                    col[ok] = cond[ok] + self.innovation_ppf(np.full(ok.sum(), q), dd[ok])
            out[f"q{q:g}"] = col
        return pd.DataFrame(out, index=s.index)

    # ------------------------------------------------------------------ serialisation

    def _as_param_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _PARAM_KEYS}

    def to_dict(self) -> dict[str, Any]:
        """Parameters as a plain dict (floats). Keys whose value is None (``df`` for normal
        innovations, the band when absent) are left out, so the dict fits TOML (no null) and
        JSON alike. ``fit_info`` is not included (see ``fit_info.to_dict()``)."""
        return {k: v for k, v in self._as_param_dict().items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PremiumProcess:
        """Inverse of :meth:`to_dict`; missing keys take the defaults. Raises ValueError for a
        non-mapping, an unknown key (named) or an invalid value (named)."""
        if not isinstance(data, dict):
            raise ValueError(f"premium process: expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_PARAM_KEYS))
        if unknown:
            raise ValueError(f"premium process: unknown field(s) {unknown}; known: {list(_PARAM_KEYS)}")
        return cls(**data)


# --------------------------------------------------------------------------- series helpers


def _as_premium_series(premia: Any) -> pd.Series:
    if isinstance(premia, pd.Series):
        s = premia
    else:
        arr = np.asarray(premia)
        if arr.ndim != 1:
            raise ValueError(f"premia: expected a 1-D series, got shape {arr.shape}")
        s = pd.Series(arr)
    try:
        s = s.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"premia: values must be numeric ({exc})") from None
    x = s.to_numpy()
    bad = np.isinf(x) | (x <= -1.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"premia: value {x[i]!r} at {s.index[i]!r} is infinite or <= -1 (premia are fractions of NAV)")
    if not s.index.is_monotonic_increasing:
        raise ValueError("premia: index must be increasing (time order)")
    return s


def _as_drawdown(drawdown: Any, s: pd.Series) -> pd.Series | None:
    if drawdown is None:
        return None
    if isinstance(drawdown, pd.Series):
        d = drawdown.astype(float).reindex(s.index)
    else:
        arr = np.asarray(drawdown, dtype=float)
        if arr.shape != (len(s),):
            raise ValueError(f"drawdown: expected a Series on the premia index or shape ({len(s)},), got {arr.shape}")
        d = pd.Series(arr, index=s.index)
    x = d.to_numpy()
    fin = np.isfinite(x)
    if ((x[fin] < 0) | (x[fin] > 1)).any():
        raise ValueError("drawdown: values must be fractions in [0, 1]")
    return d


def _pairs(s: pd.Series, d: pd.Series | None):
    x = s.to_numpy(dtype=float)
    prev, curr = x[:-1], x[1:]
    ok = np.isfinite(prev) & np.isfinite(curr)
    if d is not None:
        dv = d.to_numpy(dtype=float)[1:]
        miss = ok & ~np.isfinite(dv)
        if miss.any():
            i = int(np.argmax(miss)) + 1
            raise ValueError(f"drawdown: missing at {s.index[i]!r}, a day with a premium pair")
        dd = dv[ok]
    else:
        dd = np.zeros(int(ok.sum()))
    pos = np.nonzero(ok)[0] + 1
    labels = np.asarray(s.index)[pos]
    return prev[ok], curr[ok], dd, pos, labels


def _loglik_obs(p: dict[str, Any], prev: np.ndarray, curr: np.ndarray, dd: np.ndarray) -> np.ndarray:
    proc = PremiumProcess(**{k: p[k] for k in _PARAM_KEYS if k in p})
    u = curr - proc.conditional_mean(prev, True)
    return proc.innovation_logpdf(u, dd)
