"""Risk metrics: VaR/ES, VaR backtests and reverse stress tests (pure numerics, no I/O).

Losses are positive numbers; levels are fractions (0.99).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats
from scipy.special import xlogy

from models.checks import check_level
from models.token.outcome import BREACH_TOL
from models.token.protocol import TokenModel
from models.token.spec import CdpStablecoinSpec, ReserveBackedTokenSpec
from models.units import TROY_OUNCE_G

__all__ = [
    "ReverseStressResult",
    "basel_traffic_light",
    "christoffersen_cc",
    "christoffersen_independence",
    "failure_boundary",
    "kupiec_pof",
    "reverse_stress",
    "token_fails",
    "var_es",
    "var_exceptions",
]

_EPS_RANK = 1e-9  # guards n * level against float noise (0.99 * 1000 -> 990, not 990.0000001)


def var_es(losses: np.ndarray, level: float) -> tuple[float, float]:
    """Empirical Value-at-Risk and Expected Shortfall of a loss sample.

    With ascending order statistics ``l_(1) <= ... <= l_(n)`` and ``c = ceil(n * level)``:
    ``VaR = l_(c)`` (the lower empirical ``level``-quantile, smallest ``x`` with
    ``F_n(x) >= level``) and ``ES = (sum_{j > c} l_(j) + (c - n * level) * l_(c)) /
    (n * (1 - level))``, the consistent ES estimator of Acerbi & Tasche (2002), "On the
    coherence of expected shortfall", J. Banking & Finance 26(7), eq. for ES^(n). It equals
    ``VaR + mean(max(L - VaR, 0)) / (1 - level)`` (Rockafellar & Uryasev, 2002) and, when
    ``n * (1 - level)`` is an integer, the plain mean of the losses beyond VaR.

    Parameters
    ----------
    losses : ndarray, shape (n,)
        Losses as positive numbers (gains negative), finite, n >= 1.
    level : float
        Confidence level in (0, 1), e.g. 0.99.

    Returns
    -------
    (var, es) : tuple of float
        Positive losses (``es >= var``).

    Raises
    ------
    ValueError
        If ``losses`` is not 1-D, is empty or has NaN/inf, or ``level`` is not in (0, 1).
    """
    level = check_level(level)
    x = np.asarray(losses, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"losses: expected a non-empty 1-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("losses: NaN or infinite values")
    n = x.size
    c = max(1, math.ceil(n * level - _EPS_RANK))
    var = float(np.partition(x, c - 1)[c - 1])
    es = var + float(np.maximum(x - var, 0.0).sum()) / (n * (1.0 - level))
    return var, es


def var_exceptions(realised_losses: np.ndarray, var_forecasts: np.ndarray) -> np.ndarray:
    """VaR exceptions: ``realised_losses > var_forecasts``, element-wise.

    Parameters
    ----------
    realised_losses, var_forecasts : ndarray, shape (n,)
        Realised losses and the VaR forecast for the same days (positive losses).

    Returns
    -------
    ndarray of bool, shape (n,)

    Raises
    ------
    ValueError
        If the shapes differ, are not 1-D, or hold NaN/inf.
    """
    r = np.asarray(realised_losses, dtype=float)
    v = np.asarray(var_forecasts, dtype=float)
    if r.ndim != 1 or r.shape != v.shape:
        raise ValueError(f"realised_losses {r.shape} and var_forecasts {v.shape}: need same 1-D")
    if not (np.isfinite(r).all() and np.isfinite(v).all()):
        raise ValueError("realised_losses/var_forecasts: NaN or infinite values")
    return r > v


def _check_counts(n_exceptions: int, n_obs: int) -> tuple[int, int]:
    for name, v in (("n_exceptions", n_exceptions), ("n_obs", n_obs)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name}: expected an integer, got {v!r}")
    if n_obs < 1:
        raise ValueError(f"n_obs: expected >= 1, got {n_obs}")
    if not 0 <= n_exceptions <= n_obs:
        raise ValueError(f"n_exceptions: expected 0..n_obs={n_obs}, got {n_exceptions}")
    return int(n_exceptions), int(n_obs)


def kupiec_pof(n_exceptions: int, n_obs: int, level: float) -> tuple[float, float]:
    """Kupiec proportion-of-failures (unconditional coverage) likelihood-ratio test.

    ``LR = -2 ln[(1-p)^(n-x) p^x / ((1-x/n)^(n-x) (x/n)^x)]`` with ``p = 1 - level``, the
    expected exception rate, ``x`` exceptions in ``n`` days; ``LR ~ chi2(1)`` under correct
    coverage. Kupiec (1995), "Techniques for verifying the accuracy of risk measurement
    models", J. Derivatives 3(2). ``0 ln 0 = 0`` (so ``x = 0`` gives ``LR = -2 n ln(1-p)``).

    Parameters
    ----------
    n_exceptions : int
        Days with loss > VaR, ``0 <= x <= n_obs``.
    n_obs : int
        Days backtested, >= 1.
    level : float
        VaR confidence level in (0, 1).

    Returns
    -------
    (lr_stat, p_value) : tuple of float

    Raises
    ------
    ValueError
        For non-integer or out-of-range counts, or a level outside (0, 1).
    """
    x, n = _check_counts(n_exceptions, n_obs)
    p = 1.0 - check_level(level)
    phat = x / n
    ll_null = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    ll_alt = xlogy(n - x, 1.0 - phat) + xlogy(x, phat)
    lr = max(0.0, float(-2.0 * (ll_null - ll_alt)))
    return lr, float(stats.chi2.sf(lr, df=1))


def _transitions(exceptions: np.ndarray) -> tuple[int, int, int, int]:
    e = np.asarray(exceptions)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"exceptions: expected a 1-D bool array of length >= 2, got {e.shape}")
    if e.dtype != bool:
        if not np.isin(e, (0, 1)).all():
            raise ValueError("exceptions: expected booleans (or 0/1)")
        e = e.astype(bool)
    prev, cur = e[:-1], e[1:]
    n00 = int((~prev & ~cur).sum())
    n01 = int((~prev & cur).sum())
    n10 = int((prev & ~cur).sum())
    n11 = int((prev & cur).sum())
    return n00, n01, n10, n11


def christoffersen_independence(exceptions: np.ndarray) -> tuple[float, float]:
    """Christoffersen's Markov test of independence of VaR exceptions.

    With transition counts ``n_ij`` (state i yesterday, j today; 1 = exception),
    ``pi01 = n01/(n00+n01)``, ``pi11 = n11/(n10+n11)``, ``pi = (n01+n11)/(T-1)``:
    ``LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11) / ((1-pi01)^n00 pi01^n01 (1-pi11)^n10
    pi11^n11)] ~ chi2(1)``. Christoffersen (1998), "Evaluating interval forecasts",
    International Economic Review 39(4). ``0 ln 0 = 0``; with no exception (or no non-exception)
    the statistic is 0.

    Parameters
    ----------
    exceptions : ndarray of bool, shape (T,)
        Exception indicator per day in date order, T >= 2.

    Returns
    -------
    (lr_stat, p_value) : tuple of float

    Raises
    ------
    ValueError
        If ``exceptions`` is not 1-D bool/0-1 of length >= 2.
    """
    n00, n01, n10, n11 = _transitions(exceptions)
    lr = _lr_ind(n00, n01, n10, n11)
    return lr, float(stats.chi2.sf(lr, df=1))


def _lr_ind(n00: int, n01: int, n10: int, n11: int) -> float:
    t = n00 + n01 + n10 + n11
    pi = (n01 + n11) / t
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    ll_null = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    ll_alt = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    return max(0.0, float(-2.0 * (ll_null - ll_alt)))


def christoffersen_cc(exceptions: np.ndarray, level: float) -> tuple[float, float]:
    """Christoffersen's conditional-coverage test: ``LR_cc = LR_uc + LR_ind ~ chi2(2)``.

    Both parts are computed on the ``T - 1`` days that have a predecessor (conditioning on the
    first day, as in Christoffersen (1998), International Economic Review 39(4)), so that
    ``LR_uc`` is :func:`kupiec_pof` of ``(n01 + n11, T - 1, level)`` and the sum is exact.

    Parameters
    ----------
    exceptions : ndarray of bool, shape (T,)
        Exception indicator per day in date order, T >= 2.
    level : float
        VaR confidence level in (0, 1).

    Returns
    -------
    (lr_stat, p_value) : tuple of float

    Raises
    ------
    ValueError
        As :func:`christoffersen_independence` and :func:`kupiec_pof`.
    """
    n00, n01, n10, n11 = _transitions(exceptions)
    lr_uc, _ = kupiec_pof(n01 + n11, n00 + n01 + n10 + n11, level)
    lr = lr_uc + _lr_ind(n00, n01, n10, n11)
    return lr, float(stats.chi2.sf(lr, df=2))


def basel_traffic_light(n_exceptions: int, n_obs: int = 250, level: float = 0.99) -> Literal["green", "yellow", "red"]:
    """Basel traffic-light zone of a VaR backtest.

    The zone follows from the binomial probability of ``n_exceptions`` or fewer exceptions in
    ``n_obs`` days when the true exception rate is ``1 - level``: green below 95 %, yellow below
    99.99 %, red from 99.99 %. Basel Committee on Banking Supervision (1996), "Supervisory
    framework for the use of 'backtesting' in conjunction with the internal models approach to
    market risk capital requirements", Table 2 (250 days at 99 %: 0-4 green, 5-9 yellow, 10+ red).

    Parameters
    ----------
    n_exceptions : int
        Exceptions observed, ``0..n_obs``.
    n_obs : int
        Days backtested (default 250).
    level : float
        VaR confidence level (default 0.99).

    Returns
    -------
    "green", "yellow" or "red"

    Raises
    ------
    ValueError
        For non-integer or out-of-range counts, or a level outside (0, 1).
    """
    x, n = _check_counts(n_exceptions, n_obs)
    cum = float(stats.binom.cdf(x, n, 1.0 - check_level(level)))
    if cum < 0.95:
        return "green"
    if cum < 0.9999:
        return "yellow"
    return "red"


@dataclass(frozen=True)
class ReverseStressResult:
    """Outcome of a reverse stress test over one horizon.

    Attributes
    ----------
    horizon_days : int
        Days over which the gold price moves.
    direction : int
        -1 (gold falls) or +1 (gold rises).
    move : float or None
        Smallest simple gold move (fraction, signed: -0.077 = a 7.7 % fall) found to break the
        token, within ``tol`` of the boundary on the breaking side; ``0.0`` if the token breaks
        with no move at all; None if no move in the searched range breaks it.
    max_move : float
        Largest move searched, signed.
    baseline_breaks : bool
        Whether the token breaks with a flat gold price.
    """

    horizon_days: int
    direction: int
    move: float | None
    max_move: float
    baseline_breaks: bool


def _ramp_paths(p0: float, moves: np.ndarray, h: int, total: int) -> np.ndarray:
    """Prices ``(len(moves), total + 1)``: log-linear from p0 to p0*(1+move) over h days, flat."""
    frac = np.minimum(np.arange(total + 1), h) / h
    return p0 * np.exp(np.log1p(moves)[:, None] * frac[None, :])


def reverse_stress(
    model: TokenModel,
    p0_usd_per_oz: float,
    horizons_days: Sequence[int] = (1, 10, 30),
    direction: int = -1,
    tol: float = 1e-4,
    *,
    max_move: float | None = None,
    total_days: int | None = None,
    n_grid: int = 64,
) -> list[ReverseStressResult]:
    """Reverse stress test: the smallest gold move over each horizon that breaks the token.

    A move ``m`` over ``h`` days is the path ``P_t = P_0 (1 + m)^(min(t, h) / h)`` for
    ``t = 0..total_days`` (linear in log price over ``h`` days, flat after). The token breaks
    when :meth:`TokenOutcome.breached` is true: backing ratio below 1 (less
    :data:`models.token.outcome.BREACH_TOL`) on any day, or any liquidation (CDP). The search scans
    ``n_grid`` equally spaced move sizes in ``(0, |max_move|]`` in one vectorised model run,
    takes the first that breaks, then narrows the bracket below it by repeated 16-way sections
    until it is narrower than ``tol``. This finds the boundary exactly (to ``tol``) when breaking
    is monotone in the move size within the bracket, and otherwise the smallest breaking move at
    the grid resolution. Reverse stress testing as in BCBS (2018), "Stress testing principles"
    and EBA GL/2018/04.

    Parameters
    ----------
    model : models.token.protocol.TokenModel
        ``run(gold_usd_per_oz (n_paths, days + 1)) -> TokenOutcome``, e.g.
        :class:`models.token.reserve_backed.ReserveBackedToken` or
        :class:`models.token.cdp.CdpStablecoin` (run with the default calendar and rng).
    p0_usd_per_oz : float
        Gold price at day 0, > 0.
    horizons_days : sequence of int
        Horizons ``h >= 1`` over which the price moves.
    direction : -1 or +1
        Search falls (-1) or rises (+1).
    tol : float
        Precision of the move (fraction), > 0.
    max_move : float, optional
        Largest move size searched (unsigned): default 0.99 for falls, 4.0 (+400 %) for rises;
        must be < 1 for falls.
    total_days : int, optional
        Days run through the model (default ``max(horizons_days)``); must be >= every horizon.
    n_grid : int
        Grid points of the first scan, >= 2.

    Returns
    -------
    list of ReverseStressResult
        One per horizon, in the order given.

    Raises
    ------
    ValueError
        For a bad direction, tol, price, horizon, max_move, total_days or n_grid.
    """
    if direction not in (-1, 1):
        raise ValueError(f"direction: expected -1 or +1, got {direction!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol: expected a positive number, got {tol!r}")
    if not (isinstance(p0_usd_per_oz, (int, float, np.floating)) and p0_usd_per_oz > 0):
        raise ValueError(f"p0_usd_per_oz: expected a positive number, got {p0_usd_per_oz!r}")
    hs = list(horizons_days)
    if not hs or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hs):
        raise ValueError(f"horizons_days: expected integers >= 1, got {horizons_days!r}")
    total = max(hs) if total_days is None else total_days
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < max(hs):
        raise ValueError(f"total_days: expected an integer >= max(horizons_days), got {total!r}")
    if max_move is None:
        max_move = 0.99 if direction < 0 else 4.0
    if not (math.isfinite(max_move) and max_move > 0 and (direction > 0 or max_move < 1)):
        raise ValueError(f"max_move: expected a size in (0, 1) for falls, > 0 for rises, got {max_move!r}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 2:
        raise ValueError(f"n_grid: expected an integer >= 2, got {n_grid!r}")

    def breaks(sizes: np.ndarray, h: int) -> np.ndarray:
        prices = _ramp_paths(float(p0_usd_per_oz), direction * sizes, h, int(total))
        return model.run(prices).breached(BREACH_TOL)

    results = []
    for h in hs:
        h = int(h)
        grid = np.linspace(0.0, max_move, n_grid + 1)
        hit = breaks(grid, h)
        baseline = bool(hit[0])
        if baseline:
            move: float | None = 0.0
        elif not hit.any():
            move = None
        else:
            k = int(np.argmax(hit))
            lo, hi = grid[k - 1], grid[k]  # lo does not break, hi breaks
            while hi - lo > tol:
                sub = np.linspace(lo, hi, 17)
                sub_hit = breaks(sub[1:-1], h)
                if sub_hit.any():
                    j = int(np.argmax(sub_hit)) + 1
                    lo, hi = sub[j - 1], sub[j]
                else:
                    lo = sub[-2]
            move = float(direction * hi)
        results.append(
            ReverseStressResult(
                horizon_days=h,
                direction=direction,
                move=move,
                max_move=float(direction * max_move),
                baseline_breaks=baseline,
            )
        )
    return results


def token_fails(outcome: Any, tol: float = BREACH_TOL) -> np.ndarray:
    """Per path, whether a reserve-backed token FAILS in the sense of :func:`failure_boundary`.

    A path fails when, on any day, the backing ratio is below ``1 - tol``
    (:meth:`TokenOutcome.breached`) or the liquidity coverage (liquid resources over waiting
    claims, :class:`models.token.outcome.ReserveBackedOutcome`) is below 1, or when eligible redemptions are
    still unpaid at the last day (``backlog_tokens[:, -1] > tol * supply_tokens[:, 0]``).

    Parameters: ``outcome`` with ``backing_ratio``, ``liquidity_coverage``, ``backlog_tokens``,
    ``supply_tokens`` arrays ``(n_paths, horizon_days + 1)`` and ``breached()`` (a
    :class:`models.token.outcome.ReserveBackedOutcome`); ``tol`` > 0. Returns bool ``(n_paths,)``.
    Raises ValueError if the outcome lacks the liquidity fields (e.g. a CDP outcome).
    """
    for name in ("liquidity_coverage", "backlog_tokens"):
        if not hasattr(outcome, name):
            raise ValueError(
                f"outcome: has no '{name}' (a reserve-backed token outcome is needed), got {type(outcome).__name__}"
            )
    fails = outcome.breached(tol)
    fails |= (outcome.liquidity_coverage < 1.0).any(axis=1)
    fails |= outcome.backlog_tokens[:, -1] > tol * outcome.supply_tokens[:, 0]
    return fails


def failure_boundary(
    make_model: Callable[[float], Any],
    p0_usd_per_oz: float,
    shares: Sequence[float],
    horizon_days: int,
    *,
    max_drop: float = 0.99,
    tol: float = 1e-3,
    n_grid: int = 32,
) -> list[dict[str, Any]]:
    """Reverse stress boundary: for each redemption share, the smallest gold fall that makes a
    reserve-backed token fail.

    Commission Delegated Regulation (EU) 2025/1264 (RTS on the liquidity management policy of
    issuers of asset-referenced and e-money tokens under MiCA, Regulation (EU) 2023/1114), Art.
    5(2): the liquidity stress testing "shall include a reverse stress test element to assess
    the limit of resilience of the liquidity profile of each reserve of assets". Here the stress
    has two dimensions, the share ``S`` of the day-0 supply whose holders request redemption over
    ``horizon_days`` and the gold fall ``m`` over the same days, and the limit of resilience is
    the curve ``m*(S)``: the smallest fall in ``(0, max_drop]`` at which the token fails.

    **Failure** (:func:`token_fails`): on any day ``t = 0..horizon_days`` the backing ratio is
    below 1 (less :data:`models.token.outcome.BREACH_TOL`: insolvent) or the liquidity coverage is below
    1 (one open day's liquid resources after haircuts do not cover the waiting claims), or
    eligible redemptions are left unpaid at the horizon end (backlog). Claims still in the
    settlement pipeline at the end are not counted: with a settlement lag they exist at any
    horizon, and the coverage test already checks the resources for them.

    **Search.** The price path of a fall ``m`` is ``P_t = P_0 (1 - m)^(t / h)``, ``t = 0..h``
    (linear in log price, as :func:`reverse_stress`). For each ``S`` the model
    ``make_model(S)`` (e.g. ``ReserveBackedToken(with_redemption_share(spec, S, h))``) is run once on
    ``n_grid + 1`` equally spaced falls in ``[0, max_drop]`` (one vectorised run, falls as
    paths); the first failing fall is then bracketed from below by repeated 16-way sections of
    the last non-failing interval until it is narrower than ``tol``. The result is exact (to
    ``tol``, on the failing side) when failure is monotone in the fall within the bracket, and
    otherwise the smallest failing fall at grid resolution. In a token whose liabilities are
    grams of gold, a fall shrinks the USD claims along with the gold, so it bites only through
    USD-fixed items (opex payable) and fixed-USD cash is worth more tokens: many rows are
    either ``fails_without_drop`` or ``None``.

    Parameters
    ----------
    make_model : callable ``share -> model``
        The model for redemption share ``S``; ``model.run(prices (n_paths, h + 1))`` returns a
        :class:`models.token.outcome.ReserveBackedOutcome` (deterministic in the prices for the failure
        test, e.g. runs switched off as :func:`models.token.spec.with_redemption_share` does).
    p0_usd_per_oz : float
        Gold price at day 0, > 0.
    shares : sequence of float
        Redemption shares in [0, 1], one row each, in the order given.
    horizon_days : int
        Days of the fall and of the redemptions, >= 1.
    max_drop : float
        Largest fall searched, in (0, 1).
    tol : float
        Precision of the fall, > 0.
    n_grid : int
        Grid intervals of the first scan, >= 2.

    Returns
    -------
    list of dict
        ``{"redemption_share", "horizon_days", "gold_drop_frac", "fails_without_drop"}`` per
        share: ``gold_drop_frac`` the smallest failing fall (positive fraction, 0.2 = a 20 %
        fall; 0.0 when the token fails with a flat price; None when no fall up to ``max_drop``
        makes it fail).

    Raises
    ------
    ValueError
        For a non-callable ``make_model``, a bad price, share, horizon, max_drop, tol or
        n_grid, or a model whose outcome lacks the liquidity fields.
    """
    if not callable(make_model):
        raise ValueError(f"make_model: expected a callable share -> model, got {type(make_model).__name__}")
    if not (
        isinstance(p0_usd_per_oz, (int, float, np.floating)) and math.isfinite(p0_usd_per_oz) and p0_usd_per_oz > 0
    ):
        raise ValueError(f"p0_usd_per_oz: expected a positive number, got {p0_usd_per_oz!r}")
    ss = list(shares)
    if not ss or any(
        isinstance(s, bool) or not isinstance(s, (int, float, np.floating)) or not 0.0 <= s <= 1.0 for s in ss
    ):
        raise ValueError(f"shares: expected fractions in [0, 1], got {shares!r}")
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, np.integer)) or horizon_days < 1:
        raise ValueError(f"horizon_days: expected an integer >= 1, got {horizon_days!r}")
    if not (isinstance(max_drop, (int, float)) and 0.0 < max_drop < 1.0):
        raise ValueError(f"max_drop: expected a fraction in (0, 1), got {max_drop!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol: expected a positive number, got {tol!r}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 2:
        raise ValueError(f"n_grid: expected an integer >= 2, got {n_grid!r}")
    h = int(horizon_days)

    rows = []
    for share in ss:
        model = make_model(float(share))

        def fails(drops: np.ndarray, model: Any = model) -> np.ndarray:
            return token_fails(model.run(_ramp_paths(float(p0_usd_per_oz), -drops, h, h)))

        grid = np.linspace(0.0, max_drop, n_grid + 1)
        hit = fails(grid)
        baseline = bool(hit[0])
        if baseline:
            drop: float | None = 0.0
        elif not hit.any():
            drop = None
        else:
            k = int(np.argmax(hit))
            lo, hi = grid[k - 1], grid[k]  # lo does not fail, hi fails
            while hi - lo > tol:
                sub = np.linspace(lo, hi, 17)
                sub_hit = fails(sub[1:-1])
                if sub_hit.any():
                    j = int(np.argmax(sub_hit)) + 1
                    lo, hi = sub[j - 1], sub[j]
                else:
                    lo = sub[-2]
            drop = float(hi)
        rows.append(
            {
                "redemption_share": float(share),
                "horizon_days": h,
                "gold_drop_frac": drop,
                "fails_without_drop": baseline,
            }
        )
    return rows


GOLD_COVERAGE_RTOL = BREACH_TOL
"""Relative tolerance within which a reserve's gold coverage counts as exactly 1: the model's
breach tolerance (grams given as a decimal such as 15,551,738.4 = 500,000 oz need not multiply
out exactly in floating point)."""

CLOSED_FORM_IGNORES = (
    "holder redemptions and mints (paid at NAV, they leave the reserve's surplus over its liabilities unchanged "
    "at the day's price, but a cash redemption paid from cash turns cash surplus into gold surplus, which then "
    "moves with gold)",
    "fire-sale haircuts on assets sold to pay opex or cash redemptions (they lower the surplus)",
    "fees credited to the reserve when primary.fees_to_reserve (they raise the surplus)",
    "runs, premium and settlement timing (they act through redemptions)",
    "the price at which gold is sold to pay the opex once the cash is spent (the closed form charges the opex in "
    "USD against the window's last price)",
)
"""What the reserve-backed closed form of :func:`closed_form_break_move` leaves out."""


def closed_form_break_move(
    spec: ReserveBackedTokenSpec | CdpStablecoinSpec, p0_usd_per_oz: float, *, window_days: int
) -> dict[str, Any]:
    """The gold move that breaks a token when only the price moves and, for a reserve-backed
    token, the operating costs accrue, in closed form, over a window of ``window_days`` model days.

    - Gold CDP stablecoin (:class:`models.token.spec.CdpStablecoinSpec`): the first vault
      tranche is liquidated when ``CR_min * (1 + m) < L``, so ``m* = L / CR_min - 1`` (a fall of
      ``1 - L/CR_min``), at any horizon: liquidation depends only on the price level (MakerDAO
      MCD liquidation rule).
    - Reserve-backed gold token (:class:`models.token.spec.ReserveBackedTokenSpec`): gold =
      allocated + unallocated grams ``G``, cash = USD cash + T-bills ``C``, supply ``S`` of
      ``grams`` each, gold coverage ``g = G / (S * grams)``, opex ``O`` USD a year accruing
      ``O / days_per_year`` a model day as a senior payable. With the gold price ``P_t`` (USD per
      gram) the reserve's surplus over its liabilities after ``t`` days is
      ``E_t = C - O t / days_per_year + (g - 1) S grams P_t`` and the backing breaks when
      ``E_t < 0`` (in the numbers, ``E_t < -BREACH_TOL * S grams P_t``, the model's test
      ``B < 1 - BREACH_TOL``). Over the window (``D = O * window_days / days_per_year``, the opex of the
      whole window; a move is reached by the window's end and the worst day is the last):

      * ``g = 1`` (within :data:`GOLD_COVERAGE_RTOL`): no price dependence; breaks with no gold
        move when ``D > C``, on the first model day ``t* = floor(C days_per_year / O) + 1``
        (operating costs exceed cash); otherwise no gold move breaks it within the window. In
        the numbers, a shortfall ``D - C`` smaller than the tolerance's
        ``(g - 1 + BREACH_TOL) S grams P0`` breaks only after a FALL that shrinks that margin:
        ``m* = (D - C) / ((g - 1 + BREACH_TOL) S grams P0) - 1``, as for ``g > 1``.
      * ``g < 1``: a RISE breaks it: ``m* = (C - D) / ((1 - g) S grams P0) - 1``; broken with no
        move when ``C - D <= (1 - g) S grams P0`` (``m* = 0``).
      * ``g > 1``: a FALL breaks it: ``m* = (D - C) / ((g - 1) S grams P0) - 1`` when ``D > C``;
        broken with no move when ``C - D + (g - 1) S grams P0 < 0``; no fall breaks it when
        ``D <= C``.

    The closed form ignores :data:`CLOSED_FORM_IGNORES`, so the model's own search
    (:func:`reverse_stress`) can differ; :func:`models.metrics.reverse_stress_summary` checks it
    against the search and states the search's result where they differ. For a token without
    holder flows it is exact when ``g = 1`` or when the cash covers the window's opex (``D <= C``:
    no gold is sold to pay it); otherwise the opex paid by selling gold during a price ramp is
    paid at the prices of those days, not the last one.

    Parameters: ``spec``; ``p0_usd_per_oz`` day-0 gold price (> 0); ``window_days`` the model days
    of the window (>= 0; the reverse stress search runs ``max(horizons)`` days).
    Returns ``{"move_frac": float | None, "direction": -1 | 1 | None, "formula": str, "statement":
    str, "window_days": int, "breaks_without_move_day": int | None, "ignores": list[str]}`` (the
    last three for a reserve-backed token): ``move_frac`` 0.0 when broken with no gold move, None
    when no move breaks it within the window. Raises ``ValueError`` for another spec type, a
    non-positive price or a negative window.
    """
    if not p0_usd_per_oz > 0:
        raise ValueError(f"p0_usd_per_oz: expected > 0, got {p0_usd_per_oz!r}")
    if isinstance(window_days, bool) or not isinstance(window_days, (int, np.integer)) or window_days < 0:
        raise ValueError(f"window_days: expected an integer >= 0, got {window_days!r}")
    if isinstance(spec, CdpStablecoinSpec):
        cr = min(t.collateral_ratio for t in spec.tranches)
        m = spec.liquidation_ratio / cr - 1.0
        return {
            "move_frac": m,
            "direction": -1,
            "formula": "L / CR_min - 1",
            "statement": f"the first vault tranche is liquidated at a gold fall of {-m:.2%} (any horizon)",
        }
    if not isinstance(spec, ReserveBackedTokenSpec):
        raise ValueError(f"spec: expected a token spec, got {type(spec).__name__}")
    t_win = int(window_days)
    owed_g = spec.supply_tokens * spec.grams_per_token
    gold_g = math.fsum(a.amount for a in spec.reserve if a.kind in ("allocated_gold", "unallocated_gold"))
    cash = math.fsum(a.amount for a in spec.reserve if a.kind in ("usd_cash", "tbills"))
    g = gold_g / owed_g
    opex, dpy = spec.opex_usd_per_year, spec.days_per_year
    accrued = opex * t_win / dpy
    p0_g = p0_usd_per_oz / TROY_OUNCE_G
    # (g - 1 + tol) S grams P0, USD at day 0: the model breaks when B < 1 - tol (BREACH_TOL), i.e.
    # when C - O t / dpy + (g - 1 + tol) S grams P_t < 0
    excess_gold_usd = (g - (1.0 - BREACH_TOL)) * owed_g * p0_g
    out: dict[str, Any] = {"window_days": t_win, "breaks_without_move_day": None, "ignores": list(CLOSED_FORM_IGNORES)}

    def first_day(surplus0: float) -> int:
        """First model day on which ``surplus0 - O t / dpy < 0`` (0 when already negative)."""
        if surplus0 < 0:
            return 0
        return int(math.floor(surplus0 * dpy / opex)) + 1

    costs = f"USD {opex:,.0f} a year, {opex / dpy:,.2f} a model day"
    covered = (
        f"the cash (USD {cash:,.0f}) covers the operating costs of the window (USD {accrued:,.0f})"
        if opex > 0
        else f"no operating costs are charged to the reserve (cash USD {cash:,.0f})"
    )
    if g < 1.0 - GOLD_COVERAGE_RTOL:
        formula = "g < 1: m* = (C - O T / days_per_year) / ((1 - g) S grams P0_g) - 1 (a rise)"
        shortfall = -excess_gold_usd
        if cash - accrued < shortfall:
            day = first_day(cash - shortfall) if opex > 0 else 0
            return out | {
                "move_frac": 0.0,
                "direction": None,
                "formula": formula,
                "breaks_without_move_day": day,
                "statement": f"backing breaks within {day} days with no gold move: the gold covers {g:.2%} of the "
                f"tokens and the cash (USD {cash:,.0f}"
                + (f", less operating costs of {costs}" if opex > 0 else "")
                + ") does not cover the rest",
            }
        m = (cash - accrued) / shortfall - 1.0
        return out | {
            "move_frac": m,
            "direction": 1,
            "formula": formula,
            "statement": f"backing breaks at a gold rise of {m:.2%} within {t_win} days: the gold covers {g:.2%} of "
            "the tokens and the cash, fixed in USD, covers the rest only up to that price",
        }
    # g >= 1 (g = 1 within GOLD_COVERAGE_RTOL): the gold beyond the tokens, with the tolerance,
    # covers a shortfall of cash against the opex until a fall shrinks it
    full = abs(g - 1.0) <= GOLD_COVERAGE_RTOL
    formula = (
        "g = 1: E_t = C - O t / days_per_year; breaks on day floor(C days_per_year / O) + 1 if within the "
        "window; a shortfall D - C within the tolerance: m* = (D - C) / ((g - 1 + tol) S grams P0_g) - 1"
        if full
        else "g > 1: m* = (O T / days_per_year - C) / ((g - 1) S grams P0_g) - 1 (a fall)"
    )
    beyond = "" if full else " and the gold beyond the tokens"
    if cash - accrued + excess_gold_usd < 0:
        day = first_day(cash + excess_gold_usd)
        return out | {
            "move_frac": 0.0,
            "direction": None,
            "formula": formula,
            "breaks_without_move_day": day,
            "statement": f"backing breaks within {day} days with no gold move: operating costs ({costs}) exceed the "
            f"cash (USD {cash:,.0f}){beyond}",
        }
    if accrued <= cash:
        return out | {
            "move_frac": None,
            "direction": None,
            "formula": formula,
            "statement": f"no gold move breaks the backing within {t_win} days: the gold covers "
            + ("every token" if full else f"{g:.2%} of the tokens")
            + " and "
            + covered,
        }
    m = (accrued - cash) / excess_gold_usd - 1.0
    why = (
        f"exceed the cash by USD {accrued - cash:,.2f}, less than the model's breach tolerance ({BREACH_TOL:g} of "
        "the liabilities) until gold falls that far"
        if full
        else "exceed the cash and the gold beyond the tokens, worth less after the fall"
    )
    return out | {
        "move_frac": m,
        "direction": -1,
        "formula": formula,
        "statement": f"backing breaks at a gold fall of {-m:.2%} within {t_win} days: operating costs ({costs}) {why}",
    }


def quantile_loss(returns: np.ndarray, var: np.ndarray, level: float) -> float:
    """Mean tick loss of the return quantile ``q = -VaR`` at tail probability ``1 - level``.

    ``returns`` and ``var`` are 1-D of equal length (log returns; VaR as positive losses).
    Gneiting (2011), "Making and evaluating point forecasts", JASA 106(494), Thm. 9.
    """
    alpha = 1.0 - level
    q = -np.asarray(var, dtype=float)
    y = np.asarray(returns, dtype=float)
    return float(np.mean((alpha - (y < q)) * (y - q)))


def select_champion(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """Pick the candidate with the lowest ``score`` among those with ``passes_kupiec`` true.

    Each candidate is a mapping with ``score`` (summed quantile loss on the validation window,
    :func:`models.selection.score_on_validation`) and ``passes_kupiec`` (Kupiec 1995 at 5 %).
    Falls back to the lowest score overall (flagged ``passes_kupiec=False``) when none passes;
    ties go to the earliest in the list. ``ValueError`` when the list is empty.
    """
    if not candidates:
        raise ValueError("no candidates to select from")
    pool = [c for c in candidates if c["passes_kupiec"]] or list(candidates)
    return min(pool, key=lambda c: c["score"])
