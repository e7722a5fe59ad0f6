"""Reserve-backed gold token (``kind = "gold_backed"``): issuer balance sheet, primary market,
redemption runs and secondary market, as pure numerics (no I/O).

``ReserveBackedToken(spec).run(gold_usd_per_oz, calendar=..., rng=...)`` runs gold paths
``(n_paths, H + 1)`` through the daily mechanics (a compiled loop over paths and days) and
returns a :class:`models.token.outcome.ReserveBackedOutcome`.
Equations, assumptions and sources: docs/models/reserve-backed-token.md.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
import pandas as pd
from numba import njit
from scipy.special import ndtr, ndtri

from models.amm import ConcentratedLiquidityPool, ConstantProductPool
from models.checks import check_price_paths
from models.premium import PremiumProcess, arbitrage_band
from models.scenarios import BLOCK_PATHS
from models.token.outcome import ReserveBackedOutcome
from models.token.spec import (
    MAX_RESERVE_ASSETS,
    ConstantProductAmmSpec,
    ReserveBackedTokenSpec,
    premium_process_from_params,
)
from models.units import TROY_OUNCE_G
from models.volatility import standardised_t, tail_side

__all__ = [
    "FIELDS",
    "SUMMARY_FIELDS",
    "ReserveBackedToken",
    "innovation_params",
    "laplacian_threshold",
    "market_open_days",
    "poisson_inverse",
    "pool_price_ratio",
    "premium_innovations",
    "run_share",
    "spec_arbitrage_band",
    "spec_pool",
    "spec_premium_process",
    "whole_bar_split",
]

_BAR_EPS = 1e-9  # absorbs float noise when counting whole bars (859.9999999 tokens = 2 bars of 430)


# --------------------------------------------------------------------------- closed-form pieces


def laplacian_threshold(run_externality: float | np.ndarray, redeem_cost: float | np.ndarray) -> float | np.ndarray:
    """Equilibrium threshold ``theta* = lambda / 2 - c`` of the linear redemption global game.

    Staying pays ``theta - lambda * l`` (``l`` = share running), redeeming pays ``-c``. The
    marginal holder's belief about ``l`` is uniform on [0, 1] (Laplacian belief; Morris & Shin
    (2003), "Global games: theory and applications", sec. 2; the same uniqueness argument as
    Morris & Shin (1998), AER 88(3)), so indifference ``theta* - lambda / 2 = -c``.

    Parameters: ``run_externality`` (``lambda >= 0``) and ``redeem_cost`` (``c >= 0``), NAV
    fractions, scalars or arrays that broadcast. Returns the threshold (same shape).
    Raises ValueError for negative or non-finite inputs.
    """
    lam = np.asarray(run_externality, dtype=float)
    c = np.asarray(redeem_cost, dtype=float)
    if not (np.isfinite(lam).all() and np.isfinite(c).all()) or (lam < 0).any() or (c < 0).any():
        raise ValueError("run_externality and redeem_cost must be finite and >= 0")
    out = lam / 2.0 - c
    return float(out) if out.ndim == 0 else out


def run_share(theta: float | np.ndarray, theta_star: float | np.ndarray, sigma: float) -> float | np.ndarray:
    """Share of holders who redeem: ``Phi((theta* - theta) / sigma)``.

    Holder ``i`` sees ``x_i = theta + sigma * e_i`` (``e_i ~ N(0, 1)``) and redeems when
    ``x_i < theta*`` (Morris & Shin 1998; Goldstein & Pauzner 2005, JF 60(3)); by the law of
    large numbers the share is ``P(x_i < theta*) = Phi((theta* - theta) / sigma)``.

    Parameters: ``theta``, ``theta_star`` (broadcasting arrays or scalars, NAV fractions),
    ``sigma > 0``. Returns a share in [0, 1]. Raises ValueError if ``sigma <= 0``.
    """
    if not (isinstance(sigma, (int, float, np.floating)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a finite number > 0, got {sigma!r}")
    out = ndtr((np.asarray(theta_star, dtype=float) - np.asarray(theta, dtype=float)) / sigma)
    return float(out) if np.ndim(out) == 0 else out


def _floor_bars(x: np.ndarray, g: float) -> np.ndarray:
    return np.floor(x / g + _BAR_EPS) * g


def whole_bar_split(
    demand_tokens: np.ndarray | float, granularity_tokens: float, min_tokens: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Split a (pooled) redemption request into whole bars accepted and a remainder returned.

    ``accepted = floor(D / g) * g`` (``g = 0``: ``D``), set to 0 when below ``min_tokens``;
    ``returned = D - accepted``. E.g. ``D = 1000``, ``g = m = 430`` (XAUT: Tether Gold
    whitepaper 2022, redemptions in whole London Good Delivery bars, minimum 430 XAUT) gives
    (860, 140). Arrays of any shape (tokens >= 0). Raises ValueError for negative or non-finite
    demand or a negative granularity/minimum.
    """
    d = np.asarray(demand_tokens, dtype=float)
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("demand_tokens: must be finite and >= 0")
    if not (granularity_tokens >= 0 and min_tokens >= 0):
        raise ValueError("granularity_tokens and min_tokens must be >= 0")
    acc = _floor_bars(d, granularity_tokens) if granularity_tokens > 0 else d.copy()
    acc = np.minimum(acc, d)
    acc = np.where(acc >= min_tokens * (1 - _BAR_EPS), acc, 0.0)
    return acc, d - acc


def market_open_days(calendar: pd.DatetimeIndex | None, market_hours: str, n_days: int) -> np.ndarray:
    """Primary-market open flags ``(n_days,)`` for the model days.

    ``calendar=None`` or ``market_hours="always"``: all open. ``"weekdays_only"`` and
    ``"london_hours"``: open Monday-Friday (London gold market weekday clock; UK bank holidays
    not modelled). A trading-day calendar (no weekend dates) is thus all open. Raises ValueError
    if the calendar is not a strictly increasing ``DatetimeIndex`` of length ``n_days`` or the
    market hours are unknown.
    """
    if market_hours not in ("always", "weekdays_only", "london_hours"):
        raise ValueError(f"market_hours: unknown value {market_hours!r}")
    if calendar is None:
        return np.ones(n_days, dtype=bool)
    _check_calendar(calendar, n_days)
    if market_hours == "always":
        return np.ones(n_days, dtype=bool)
    return np.asarray(calendar.day_of_week < 5)


def _check_calendar(calendar: Any, n_days: int) -> None:
    if not isinstance(calendar, pd.DatetimeIndex):
        raise ValueError(f"calendar: expected a pandas DatetimeIndex or None, got {type(calendar).__name__}")
    if len(calendar) != n_days:
        raise ValueError(f"calendar: expected {n_days} dates (horizon_days + 1), got {len(calendar)}")
    if calendar.hasnans or not calendar.is_monotonic_increasing or not calendar.is_unique:
        raise ValueError("calendar: dates must be strictly increasing, without NaT")


# --------------------------------------------------------------------------- spec helpers


def spec_arbitrage_band(spec: ReserveBackedTokenSpec) -> tuple[float, float]:
    """The arbitrage band ``(lower, upper)`` (fractions of NAV) a spec's primary market implies:
    :func:`models.premium.arbitrage_band` of its mint and redeem fees and settlement lag, widened
    by 1e-9 each side when the fees are 0 (a frictionless primary market; the premium process
    needs lower < upper). Raises ValueError for invalid fees."""
    lo, hi = arbitrage_band(
        spec.primary.mint_fee,
        spec.primary.redeem_fee,
        settlement_lag_days=float(spec.primary.settlement_lag_days),
    )
    if not hi - lo > 2e-9:
        lo, hi = lo - 1e-9, hi + 1e-9
    return lo, hi


def spec_premium_process(spec: ReserveBackedTokenSpec) -> PremiumProcess | None:
    """The premium process a spec implies: ``spec.secondary.premium`` with, when the spec gives
    no band, the band of :func:`spec_arbitrage_band` (its ``band_pull`` is kept). None when the
    spec has no premium process. Raises ValueError for invalid parameters."""
    if spec.secondary.premium is None:
        return None
    proc = premium_process_from_params(spec.secondary.premium)
    if proc.band_lower is None and proc.band_upper is None:
        proc = proc.with_band(*spec_arbitrage_band(spec))
    return proc


def spec_pool(spec: ReserveBackedTokenSpec) -> ConstantProductPool | ConcentratedLiquidityPool | None:
    """The AMM pool of ``spec.secondary.amm`` in units where the fair price is 1 (a constant-
    product pool with ``reserve_tokens`` on both sides, or a concentrated range around 1); None
    without a pool."""
    amm = spec.secondary.amm
    if amm is None:
        return None
    if isinstance(amm, ConstantProductAmmSpec):
        return ConstantProductPool(amm.reserve_tokens, amm.reserve_tokens, fee=amm.fee)
    return ConcentratedLiquidityPool(amm.liquidity, amm.price_lower, amm.price_upper, 1.0, fee=amm.fee)


def pool_price_ratio(pool: ConstantProductPool | ConcentratedLiquidityPool, sell_tokens: np.ndarray) -> np.ndarray:
    """Pool price after selling ``sell_tokens`` (``(n_paths,)``, from the pool at the fair price)
    over the price before (:meth:`models.amm.ConstantProductPool.sell_pressure_impact`); a
    fraction, shape ``(n_paths,)``."""
    return pool.sell_pressure_impact(sell_tokens) / pool.price


# --------------------------------------------------------------------------- engine


SUMMARY_FIELDS = (
    # running state, recorded at the end of each day
    "supply",
    "fsl",
    "q",
    "fee",
    "outfl",
    # the day's values
    "B",
    "V",
    "lam",
    "prem",
    "dem",
    "ret",
    "acc_g",
    "red_g",
    "red_c",
    "lcr",
    "bl",
)
"""The daily records a run with ``records="summary"`` keeps: those :func:`models.metrics.summarise_paths`
reads (and the engine reads back), the first rows of its output buffer."""

FIELDS = (
    *SUMMARY_FIELDS,
    # running state, recorded at the end of each day
    "gin",
    "gout",
    "cin",
    "cout",
    "pay",
    "run",
    # the day's values
    "gold",
    "cash",
    "sell",
    "mint",
    "theta",
    "liq",
    "outf",
)
"""Per-path daily records of the engine, in the order of the rows of its output buffer; the
asset holdings ``amt<k>`` follow them (one row per reserve asset)."""

_SUP, _FSL, _Q, _FEE, _OUTFL, _B, _V, _LAM, _PREM, _DEM, _RET, _ACC_G, _RED_G, _RED_C, _LCR, _BL = range(
    len(SUMMARY_FIELDS)
)
_GIN, _GOUT, _CIN, _COUT, _PAY, _RUN, _GOLD, _CASH, _SELL, _MINT, _THETA, _LIQ, _OUTF = range(
    len(SUMMARY_FIELDS), len(FIELDS)
)
_AMT0 = len(FIELDS)

# The run's structure, bits of the kernel's ``flags``: what each spec switches on or off. A
# summary run compiles the kernel once per structure, with these as constants.
_FULL = 1 << 0  # every record, not only SUMMARY_FIELDS
_GATE = 1 << 1
_GRANULARITY_ALL = 1 << 2
_BARS_ALL = 1 << 3
_FEES_TO_RESERVE = 1 << 4
_REDEEMER_BEARS = 1 << 5
_MINTING = 1 << 6
_WAIT = 1 << 7
_POOL = 1 << 8
_ARBITRAGE = 1 << 9
_PROCESS = 1 << 10
_BAND = 1 << 11
_CASH_SPLIT = 1 << 12
_WHOLE_BARS = 1 << 13
_MIN_SIZE = 1 << 14
_SPLIT_CUT = 1 << 15
_OPEX = 1 << 16
_RUN_MASS = 1 << 17
_RUN_SELLS = 1 << 18
_DD_DEMAND = 1 << 19
_PEG_DEMAND = 1 << 20
_QUEUE_SIGNAL = 1 << 21
_PREMIUM_SIGNAL = 1 << 22
_REDEEM_FEE = 1 << 23
_PREMIUM_MINT = 1 << 24
_QUEUE_DISCOUNT = 1 << 25
_GOLD_CLAIMS_ONLY = 1 << 26  # every accepted redemption is paid in gold: the USD-claim pipeline stays empty

_ASSET_CODE = {"usd_cash": 0, "allocated_gold": 1, "unallocated_gold": 2, "tbills": 3}
_ASSET_BITS = 3  # per reserve asset in the kernel's ``assets``: its kind (2 bits), liquidity as a fraction (1)
assert MAX_RESERVE_ASSETS * _ASSET_BITS <= 63  # the spec's limit fits one int64


class _Params(NamedTuple):
    """Scalar parameters of the kernel (NaN: the option is off; flags are 0.0 / 1.0)."""

    gpt: float
    supply0: float
    cs: float
    g: float
    m_min: float
    bars_all: float
    granularity_all: float
    fee_r: float
    fee_m: float
    fees_to_reserve: float
    cash_claim: float
    redeemer_bears_haircut: float
    gate_limit: float
    lag: float
    cut: float
    opex_year: float
    c_run: float
    run_mass: float
    sig: float
    minting: float
    qdw: float
    wait_cost: float
    arb_cap: float
    has_proc: float
    stress_rho: float
    p0: float
    pool_kind: float
    pool_a: float
    pool_b: float
    pool_c: float
    pool_fee: float
    base_rate: float
    base_until: float
    dd_sens: float
    peg_sens: float
    max_share: float
    queue_w: float
    prem_w: float
    sell_share: float
    mint_base: float
    mint_dd_sens: float
    mint_prem_sens: float
    att_lag: float
    proc_mean: float
    proc_phi: float
    band_pull: float
    band_lo: float
    band_hi: float
    has_band: float


def _param_vector(spec: ReserveBackedTokenSpec, proc: PremiumProcess | None) -> _Params:
    """The kernel's scalar parameters from a spec and its premium process."""
    s = spec
    pm, rb, cf, sec = s.primary, s.redemption, s.redemption.confidence, s.secondary
    nan = math.nan
    p0 = 0.0
    if proc is not None:
        p0 = float(proc.stationary_mean())
        if proc.band_lower is not None and proc.band_upper is not None:  # set together (with_band)
            p0 = min(max(p0, float(proc.band_lower)), float(proc.band_upper))
    pool_kind, pool_a, pool_b, pool_c, pool_fee = 0.0, 0.0, 0.0, 0.0, 0.0
    amm = sec.amm
    if isinstance(amm, ConstantProductAmmSpec):
        pool_kind, pool_a, pool_fee = 1.0, amm.reserve_tokens, amm.fee
    elif amm is not None:
        pool_kind, pool_a, pool_b, pool_c, pool_fee = 2.0, amm.liquidity, amm.price_lower, amm.price_upper, amm.fee
    g = pm.redemption_granularity_tokens
    has_band = proc is not None and proc.band_lower is not None and proc.band_pull > 0
    values = {
        "gpt": s.grams_per_token,
        "supply0": s.supply_tokens,
        "cs": pm.cash_redemption_share,
        "g": g,
        "m_min": pm.min_redemption_tokens,
        "bars_all": float(g > 0 and pm.granularity_applies_to == "all"),
        "granularity_all": float(pm.granularity_applies_to == "all"),
        "fee_r": pm.redeem_fee,
        "fee_m": pm.mint_fee,
        "fees_to_reserve": float(pm.fees_to_reserve),
        "cash_claim": 1.0 - pm.redeem_fee if pm.fees_to_reserve else 1.0,
        "redeemer_bears_haircut": float(pm.cash_redemption_haircut == "redeemer"),
        "gate_limit": nan if pm.redemption_limit_share_per_day is None else pm.redemption_limit_share_per_day,
        "lag": float(pm.settlement_lag_days),
        "cut": pm.cutoff_share,
        "opex_year": s.opex_usd_per_year,
        "c_run": pm.redeem_fee + cf.switching_cost,
        "run_mass": cf.run_prone_share * s.supply_tokens,
        "sig": cf.signal_noise_sd,
        "minting": float(rb.base_mint_rate_per_day > 0 or rb.mint_premium_sensitivity > 0),
        "qdw": sec.queue_discount_weight,
        "wait_cost": nan if sec.wait_cost_per_day is None else sec.wait_cost_per_day,
        "arb_cap": nan if sec.arbitrage_capacity_tokens_per_day is None else sec.arbitrage_capacity_tokens_per_day,
        "has_proc": float(proc is not None),
        "stress_rho": 0.0 if proc is None else float(min(max(proc.phi - proc.band_pull, 0.0), 0.999)),
        "p0": p0,
        "pool_kind": pool_kind,
        "pool_a": pool_a,
        "pool_b": pool_b,
        "pool_c": pool_c,
        "pool_fee": pool_fee,
        "base_rate": rb.base_rate_per_day,
        "base_until": math.inf if rb.base_rate_until_day is None else float(rb.base_rate_until_day),
        "dd_sens": rb.drawdown_sensitivity,
        "peg_sens": rb.peg_sensitivity,
        "max_share": rb.max_share_per_day,
        "queue_w": cf.queue_weight,
        "prem_w": cf.premium_weight,
        "sell_share": cf.market_sell_share,
        "mint_base": rb.base_mint_rate_per_day,
        "mint_dd_sens": rb.mint_drawdown_sensitivity,
        "mint_prem_sens": rb.mint_premium_sensitivity,
        "att_lag": float(s.attestation_lag_days),
        "proc_mean": 0.0 if proc is None else proc.mean,
        "proc_phi": 0.0 if proc is None else proc.phi,
        "band_pull": 0.0 if proc is None else proc.band_pull,
        "band_lo": float(proc.band_lower) if has_band and proc is not None and proc.band_lower is not None else 0.0,
        "band_hi": float(proc.band_upper) if has_band and proc is not None and proc.band_upper is not None else 0.0,
        "has_band": float(has_band),
    }
    return _Params(**{k: float(v) for k, v in values.items()})


def premium_innovations(
    proc: PremiumProcess | None,
    drawdown: np.ndarray,
    rng: np.random.Generator | np.random.SeedSequence | int | None,
    first_path: int = 0,
) -> np.ndarray:
    """The premium process's innovations ``u = sigma e + N * jump_mean + sqrt(N) * jump_sd * Z``
    (:meth:`models.premium.PremiumProcess.step`: ``e`` unit-variance Student-t(df) or normal,
    ``N ~ Poisson(lambda_0 + k * drawdown_t)`` jumps, ``Z ~ N(0, 1)``) for every path and model
    day ``1..H``: they depend on the gold drawdown only, never on the token's state, so they are
    drawn in bulk before the daily loop.

    Parameters
    ----------
    proc : PremiumProcess or None
        None: zeros (no process).
    drawdown : ndarray, shape (n_paths, H + 1)
        Gold drawdown fractions in [0, 1]; column 0 (day 0) draws nothing.
    rng : Generator, SeedSequence, int or None
        A Generator: every path's draws from it, in one pass (innovations ``e`` for all paths
        and days, then the jump-count uniforms, then the jump-size uniforms). A SeedSequence or int seed (None:
        0): path ``first_path + i`` belongs to block ``b = (first_path + i) // BLOCK_PATHS`` and
        block ``b`` draws its ``BLOCK_PATHS`` paths, in the same order, from
        ``SeedSequence(entropy, spawn_key=spawn_key + (b,))`` (the ``b``-th child of the seed), so
        a path's draws depend on the seed and its index only, never on how paths are chunked.
    first_path : int
        Index of the first path among all the paths of the run (>= 0).

    Returns
    -------
    ndarray, shape (n_paths, H + 1)
        Innovations (fractions of NAV); column 0 is 0.

    Raises
    ------
    ValueError
        For a negative ``first_path`` or an ``rng`` of another type.
    """
    dd = np.asarray(drawdown, dtype=float)
    n, t1 = dd.shape
    out = np.zeros((n, t1))
    if isinstance(first_path, bool) or not isinstance(first_path, (int, np.integer)) or first_path < 0:
        raise ValueError(f"first_path: expected an integer >= 0, got {first_path!r}")
    if not (rng is None or isinstance(rng, (np.random.Generator, np.random.SeedSequence, int, np.integer))):
        raise ValueError(f"rng: expected a Generator, SeedSequence, int seed or None, got {type(rng).__name__}")
    if proc is None or t1 < 2:
        return out
    if isinstance(rng, np.random.Generator):
        out[:, 1:] = _draw_innovations(proc, dd[:, 1:], rng)
        return out
    root = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(0 if rng is None else int(rng))
    first = int(first_path)
    b0, b1 = first // BLOCK_PATHS, (first + n - 1) // BLOCK_PATHS
    days = np.ascontiguousarray(dd[:, 1:])  # a whole block's rows of it are then one contiguous array
    scratch = _JumpScratch(BLOCK_PATHS * (t1 - 1))
    for b in range(b0, b1 + 1):
        lo, hi = max(b * BLOCK_PATHS, first), min((b + 1) * BLOCK_PATHS, first + n)
        start = b * BLOCK_PATHS
        if hi - lo == BLOCK_PATHS:
            block_dd = days[lo - first : hi - first]
        else:
            # a whole block's draws (its drawdowns outside this chunk are unknown: jump counts
            # there are drawn at zero drawdown and discarded), so a path's draws never depend on
            # the chunk
            block_dd = np.zeros((BLOCK_PATHS, t1 - 1))
            block_dd[lo - start : hi - start] = days[lo - first : hi - first]
        child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, b))
        u = _draw_innovations(proc, block_dd, np.random.default_rng(child), scratch)
        out[lo - first : hi - first, 1:] = u[lo - start : hi - start]
    return out


class _JumpScratch:
    """Buffers for the jumps of up to ``size`` innovations (flat index, count, tail probability
    and side of the size uniform), reused from block to block."""

    def __init__(self, size: int) -> None:
        self.index = np.empty(size, dtype=np.int64)
        self.count = np.empty(size)
        self.prob = np.empty(size)
        self.side = np.empty(size)


def _draw_innovations(
    proc: PremiumProcess, dd: np.ndarray, gen: np.random.Generator, scratch: _JumpScratch | None = None
) -> np.ndarray:
    """``(m, H)`` innovations of ``proc`` at drawdowns ``dd`` ``(m, H)`` from ``gen``, each in
    bulk: the ``e`` (unit-variance t by inversion of uniforms, :func:`models.volatility.standardised_t`,
    or normals), then the jump-count uniforms, then the uniforms whose normal quantiles are the
    jump sizes (used only where a jump occurs: ``scipy.special.ndtri`` of the tail probability of
    :func:`models.volatility.tail_side`). ``scratch``: jump buffers of at least
    ``m * H`` elements (None: allocated here)."""
    shape = dd.shape
    e = standardised_t(gen, proc.df, shape) if proc.df is not None else gen.standard_normal(shape)
    u = gen.random(shape)
    v = gen.random(shape)
    js = scratch if scratch is not None and scratch.index.size >= e.size else _JumpScratch(e.size)
    k = _assemble_innovations(
        e,
        u,
        v,
        np.ascontiguousarray(dd),
        proc.sigma,
        proc.jump_intensity_per_day,
        proc.jump_drawdown_sensitivity,
        proc.jump_mean,
        js.index,
        js.count,
        js.prob,
        js.side,
    )
    if k:
        e.reshape(-1)[js.index[:k]] += np.sqrt(js.count[:k]) * proc.jump_sd * (js.side[:k] * -ndtri(js.prob[:k]))
    return e


@njit(cache=True, nogil=True, error_model="numpy")
def _poisson_count(lam: float, u: float) -> float:  # pragma: no cover - compiled
    """Smallest ``k`` with ``u <= P(N <= k)``, ``N ~ Poisson(lam)`` (sequential search). A
    uniform clearly below ``1 - lam <= exp(-lam)`` gives 0 without evaluating ``exp`` (the margin
    of 1e-12 is far above the rounding of both sides, so the count is the same)."""
    if u < (1.0 - lam) - 1e-12:
        return 0.0
    p = math.exp(-lam)
    cdf = p
    k = 0
    while u > cdf and p > 0.0 and k < 100_000:
        k += 1
        p = p * lam / k
        cdf += p
    return float(k)


@njit(cache=True, nogil=True, error_model="numpy")
def _assemble_innovations(
    e: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    dd: np.ndarray,
    sigma: float,
    lam0: float,
    lam_dd: float,
    jump_mean: float,
    index: np.ndarray,
    count: np.ndarray,
    prob: np.ndarray,
    side: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """In place, arrays ``(m, H)``: ``e`` becomes ``sigma * e + N * jump_mean`` with ``N`` the
    Poisson(``lam0 + lam_dd * dd``) count of the uniform ``u``. For each element with a jump,
    in row-major order: its flat index, ``N``, and the tail probability and side of its size
    uniform ``v`` (:func:`models.volatility.tail_side`) into the next slot of
    ``index``, ``count``, ``prob`` and ``side`` (flat, at least ``m * H`` long). Returns the
    number of jumps."""
    m, h = e.shape
    k = 0
    for i in range(m):
        for t in range(h):
            cnt = _poisson_count(lam0 + lam_dd * dd[i, t], u[i, t])
            if cnt > 0.0:
                e[i, t] = sigma * e[i, t] + cnt * jump_mean
                index[k] = i * h + t
                count[k] = cnt
                prob[k], side[k] = tail_side(v[i, t])
                k += 1
            else:
                e[i, t] = sigma * e[i, t]
    return k


def poisson_inverse(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson(``lam``) counts by inversion of uniforms ``u`` in [0, 1): the smallest ``k`` with
    ``u <= P(N <= k)`` (Devroye 1986, "Non-Uniform Random Variate Generation", sec. X.3.3,
    sequential search). One uniform per count whatever ``lam``, so the random stream consumed is
    the same for every intensity (``Generator.poisson``'s rejection samplers consume a number
    that depends on ``lam``). ``lam >= 0`` and ``u`` broadcast to one shape; returns float
    counts of that shape. Meant for small intensities (the search takes about ``lam`` steps)."""
    lam, u = np.broadcast_arrays(np.asarray(lam, dtype=float), np.asarray(u, dtype=float))
    out = np.empty(lam.size)
    _poisson_counts(np.ascontiguousarray(lam).ravel(), np.ascontiguousarray(u).ravel(), out)
    return out.reshape(lam.shape)


@njit(cache=True, nogil=True, error_model="numpy")
def _poisson_counts(lam: np.ndarray, u: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in range(lam.shape[0]):
        out[i] = _poisson_count(lam[i], u[i])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ndtr(x: float) -> float:  # pragma: no cover - compiled
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _floor_bars_1(x: float, g: float, inv_g: float) -> float:  # pragma: no cover - compiled
    """:func:`_floor_bars` of one number with ``inv_g = 1 / g`` (a product, not a division: the
    two differ by an ulp at most, inside ``_BAR_EPS``)."""
    return np.floor(x * inv_g + _BAR_EPS) * g  # a float, as _floor_bars (math.floor would round-trip an int)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _code(assets: int, k: int) -> int:  # pragma: no cover - compiled
    return (assets >> (_ASSET_BITS * k)) & 3


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gold(assets: int, k: int) -> bool:  # pragma: no cover - compiled
    c = _code(assets, k)
    return c == 1 or c == 2


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _cash(assets: int, k: int) -> bool:  # pragma: no cover - compiled
    return _code(assets, k) == 0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _alloc(assets: int, k: int) -> bool:  # pragma: no cover - compiled
    return _code(assets, k) == 1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _unalloc(assets: int, k: int) -> bool:  # pragma: no cover - compiled
    return _code(assets, k) == 2


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _liq_frac(assets: int, k: int) -> bool:  # pragma: no cover - compiled
    return (assets >> (_ASSET_BITS * k + 2)) & 1 == 1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _pool_ratio(par: _Params, sell: float) -> float:  # pragma: no cover - compiled
    """Pool price after selling ``sell`` tokens from the fair price, over the fair price (1):
    :meth:`models.amm.ConstantProductPool.sell_x` / :meth:`models.amm.ConcentratedLiquidityPool.sell_x`."""
    kind = par.pool_kind
    fee = par.pool_fee
    if kind == 1.0:
        r = par.pool_a
        a = sell * (1.0 - fee)
        dy = r * a / (r + a)
        return (r - dy) / (r + sell)  # the pool price before the sale is r / r = 1
    big_l, pa, pb = par.pool_a, par.pool_b, par.pool_c
    a = sell * (1.0 - fee)
    s0 = math.sqrt(min(1.0, pb))
    cap = max(big_l * (1.0 / math.sqrt(pa) - 1.0 / s0), 0.0)
    a_fill = min(a, cap)
    exhausted = a >= cap
    if exhausted and cap > 0:
        s1 = math.sqrt(pa)
    elif exhausted:
        s1 = math.sqrt(min(1.0, pb))
    else:
        s1 = 1.0 / (1.0 / s0 + a_fill / big_l)
    return s1 * s1 if a > 0 else 1.0


@njit(cache=True, nogil=True, error_model="numpy")
def _drawdown(pg: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Gold drawdown ``1 - p_t / max_{s <= t} p_s`` per row of ``(n, H + 1)`` prices, a fraction
    (the running maximum as ``np.maximum.accumulate``: a NaN carries on)."""
    n, t1 = pg.shape
    out = np.empty((n, t1))
    for i in range(n):
        peak = pg[i, 0]
        for t in range(t1):
            x = pg[i, t]
            if x > peak or x != x:
                peak = x
            out[i, t] = 1.0 - x / peak
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _run_paths(
    out: np.ndarray,
    pg: np.ndarray,
    dd: np.ndarray,
    innov: np.ndarray,
    open_: np.ndarray,
    dt_years: np.ndarray,
    to_open: np.ndarray,
    par: _Params,
    amount0: np.ndarray,
    liq: np.ndarray,
    hcut: np.ndarray,
    heff: np.ndarray,
    assets: int,
    k_n: int,
    lag: int,
    first_alloc: int,
    first_cash: int,
    flags: int,
) -> None:  # pragma: no cover - compiled; checked against the step-by-step reference in the tests
    """The daily loop of every path (path by path, day by day): fills ``out`` ``(len(FIELDS) +
    K, n, H + 1)`` from gold prices per gram ``pg``, drawdowns ``dd`` and premium innovations
    ``innov`` (all ``(n, H + 1)``), writing every cell of ``out`` (it need not start at zero).
    ``assets`` .. ``flags`` are the run's structure (:func:`_structure`); without ``_FULL`` in
    ``flags``, ``out`` has the ``len(SUMMARY_FIELDS)`` rows of the summary records only. Compiled
    once with them as run-time integers, and once per structure with them as literals
    (:func:`_kernel`). Mechanics: docs/models/reserve-backed-token.md, steps 1-7."""
    n, t1 = pg.shape
    gpt = par.gpt
    cs = par.cs
    g = par.g
    inv_g = 1.0 / g if g > 0 else 0.0
    m_min = par.m_min
    bars_all = flags & _BARS_ALL != 0
    granularity_all = flags & _GRANULARITY_ALL != 0
    fee_r = par.fee_r
    fee_m = par.fee_m
    fees_to_reserve = flags & _FEES_TO_RESERVE != 0
    cash_claim = par.cash_claim
    redeemer_bears = flags & _REDEEMER_BEARS != 0
    gate_limit = par.gate_limit
    has_gate = flags & _GATE != 0
    cut = par.cut
    opex_year = par.opex_year
    c_run = par.c_run
    run_mass = par.run_mass
    sig = par.sig
    minting = flags & _MINTING != 0
    qdw = par.qdw
    wait_cost = par.wait_cost
    has_wait = flags & _WAIT != 0
    arb_cap = par.arb_cap
    has_pool = flags & _POOL != 0
    has_arb = flags & _ARBITRAGE != 0
    has_proc = flags & _PROCESS != 0
    stress_rho = par.stress_rho
    p0 = par.p0
    base_rate = par.base_rate
    base_until = par.base_until
    dd_sens = par.dd_sens
    peg_sens = par.peg_sens
    max_share = par.max_share
    queue_w = par.queue_w
    prem_w = par.prem_w
    sell_share = par.sell_share
    mint_base = par.mint_base
    mint_dd_sens = par.mint_dd_sens
    mint_prem_sens = par.mint_prem_sens
    att_lag = int(par.att_lag)
    pm_mean = par.proc_mean
    pm_phi = par.proc_phi
    band_pull = par.band_pull
    band_lo = par.band_lo
    band_hi = par.band_hi
    has_band = flags & _BAND != 0
    full = flags & _FULL != 0
    cash_split = flags & _CASH_SPLIT != 0  # cs < 1: some redemptions are paid in gold
    whole_bars = flags & _WHOLE_BARS != 0  # g > 0
    cash_claims = flags & _GOLD_CLAIMS_ONLY == 0  # some accepted redemptions are paid in USD
    min_size = flags & _MIN_SIZE != 0  # m_min > 0
    split_cut = flags & _SPLIT_CUT != 0  # cut < 1
    has_opex = flags & _OPEX != 0
    has_run = flags & _RUN_MASS != 0
    run_sells = flags & _RUN_SELLS != 0
    dd_sens_on = flags & _DD_DEMAND != 0
    peg_demand = flags & _PEG_DEMAND != 0
    queue_signal = flags & _QUEUE_SIGNAL != 0
    prem_signal = flags & _PREMIUM_SIGNAL != 0
    redeem_fee = flags & _REDEEM_FEE != 0
    prem_mint = flags & _PREMIUM_MINT != 0
    queue_discount = flags & _QUEUE_DISCOUNT != 0
    all_frac = True
    has_unalloc = False
    n_alloc = 0
    for k in range(k_n):
        all_frac = all_frac and _liq_frac(assets, k)
        has_unalloc = has_unalloc or _unalloc(assets, k)
        n_alloc += 1 if _alloc(assets, k) else 0
    keep = 1.0 - hcut

    amt = np.empty(k_n)
    unit = np.empty(k_n)
    ukeep = np.empty(k_n)
    cap = np.empty(k_n)
    usable = np.empty(k_n)
    rr = np.empty(k_n)
    pend = np.zeros((2, lag + 2))

    # each path's gold price, drawdown and premium innovation, day by day in one small buffer: read
    # in a stride other than the records' own, so that no input stream keeps the same address
    # bits as a record written the day before (4K aliasing stalls every load on x86)
    xin = np.empty((t1, 3))
    for i in range(n):
        o = out[:, i, :]
        for t in range(t1):
            xin[t, 0] = pg[i, t]
            xin[t, 1] = dd[i, t]
            xin[t, 2] = innov[i, t]
        # ---------------------------------------------------------------- day 0
        for k in range(k_n):
            amt[k] = amount0[k]
            unit[k] = xin[0, 0] if _gold(assets, k) else 1.0
        pend[:, :] = 0.0
        sup, gin, gout, cin, cout, fsl = par.supply0, 0.0, 0.0, 0.0, 0.0, 0.0
        payable, run_cum, waiting, fee_cum, outflow = 0.0, 0.0, 0.0, 0.0, 0.0
        q_g, q_c = 0.0, 0.0
        if full:
            liq0, gres_a, gres_u = 0.0, 0.0, 0.0
            for k in range(k_n):
                c0 = liq[k] * amt[k] if _liq_frac(assets, k) else min(liq[k], amt[k])
                liq0 += c0 * unit[k] * keep[k]
                if _alloc(assets, k):
                    gres_a += amt[k]
                elif _unalloc(assets, k):
                    gres_u += keep[k] * c0
            o[_LIQ, 0] = liq0 + ((gres_a + gres_u) * xin[0, 0] if cash_split else 0.0)
            o[_OUTF, 0] = 0.0
            o[_SELL, 0] = 0.0
            o[_MINT, 0] = 0.0
        p_anchor = p0
        stress = 0.0
        x_run = -math.inf
        o[_LCR, 0] = math.inf
        o[_PREM, 0] = p0
        prem_last, bl_last = p0, 0.0  # the day before's premium and backlog
        # day 0 has no flows: every cell is written, so ``out`` need not start at zero
        o[_DEM, 0] = 0.0
        o[_RET, 0] = 0.0
        o[_ACC_G, 0] = 0.0
        o[_BL, 0] = 0.0
        o[_RED_G, 0] = 0.0
        o[_RED_C, 0] = 0.0
        t = 0
        while True:
            # ---------------------------------------------------------- record day t
            val_sum, heff_sum = 0.0, 0.0
            for k in range(k_n):
                v = amt[k] * unit[k]
                val_sum += v
                heff_sum += heff[k] * v
            if full:
                gold_sum, cash_sum = 0.0, 0.0
                for k in range(k_n):
                    if _gold(assets, k):
                        gold_sum += amt[k]
                    if _cash(assets, k):
                        cash_sum += amt[k]
                    o[_AMT0 + k, t] = amt[k]
                o[_GOLD, t] = gold_sum
                o[_CASH, t] = cash_sum
                o[_GIN, t] = gin
                o[_GOUT, t] = gout
                o[_CIN, t] = cin
                o[_COUT, t] = cout
                o[_PAY, t] = payable
            liab = sup * (gpt * xin[t, 0])
            o[_V, t] = val_sum - payable
            if liab <= 0:  # every token redeemed: no liabilities
                o[_B, t] = math.inf
                o[_LAM, t] = 0.0
            else:
                o[_B, t] = (val_sum - payable) / liab
                o[_LAM, t] = heff_sum / liab
            o[_SUP, t] = sup
            o[_FSL, t] = fsl
            o[_Q, t] = waiting
            o[_FEE, t] = fee_cum
            o[_OUTFL, t] = outflow
            if t == 0:
                theta0 = o[_B, 0] - 1.0 + prem_w * min(p0 + fee_r, 0.0)
                x_run = (o[_LAM, 0] / 2.0 - c_run - theta0) / sig
                run_cum = _ndtr(x_run)
                if full:
                    o[_THETA, 0] = theta0
            if full:
                o[_RUN, t] = run_cum
            t += 1
            if t >= t1:
                break
            # ---------------------------------------------------------- open day t
            is_open = open_[t]
            p_prev = prem_last
            supply_prev = max(sup, 1e-300)  # the supply recorded at the end of day t - 1
            navt = gpt * xin[t, 0]
            for k in range(k_n):
                if _gold(assets, k):
                    unit[k] = xin[t, 0]
                ukeep[k] = unit[k] * keep[k]
                cap[k] = liq[k] * amt[k] if _liq_frac(assets, k) else min(liq[k], amt[k])
                usable[k] = cap[k] if all_frac else min(cap[k], amt[k])
            fees = 0.0
            o[_RED_G, t] = 0.0  # set below on days that serve gold, cash or mint
            o[_RED_C, t] = 0.0
            minted = 0.0
            # ---------------------------------------------------------- 1. demand and the run
            free = max(sup - waiting, 0.0)
            base = base_rate if t <= base_until else 0.0
            share = base + dd_sens * xin[t, 1] if dd_sens_on else base
            if is_open and peg_demand:
                share = share + peg_sens * max(-p_prev - fee_r, 0.0)
            flow = min(share, max_share) * free
            j = max(0, t - 1 - att_lag)
            theta = o[_B, j] - 1.0
            if queue_signal:
                theta -= (queue_w * bl_last) / supply_prev
            if prem_signal:
                theta += prem_w * min(p_prev + fee_r, 0.0)
            if full:
                o[_THETA, t] = theta
            tstar = o[_LAM, j] / 2.0 - c_run
            if has_run:
                # Phi is increasing: below the largest argument so far it cannot raise R_t
                x = (tstar - theta) / sig
                new_cum = run_cum
                if not x <= x_run:
                    new_cum = max(run_cum, _ndtr(x))
                    x_run = x
                runners = (new_cum - run_cum) * run_mass
                run_cum = new_cum
                demand = min(flow + runners * (1.0 - sell_share), free)
                sells = min(max(free - demand, 0.0), runners * sell_share) if run_sells else 0.0
            else:
                demand = min(flow, free)
                sells = 0.0
            # ---------------------------------------------------------- 1b. gate
            refused = 0.0
            request = demand
            if has_gate:
                refused = max(demand - gate_limit * supply_prev, 0.0)
                demand = demand - refused
            # ---------------------------------------------------------- 2. whole bars
            d = demand
            if granularity_all:
                if whole_bars:
                    acc = min(_floor_bars_1(d, g, inv_g), d)
                    if min_size and not acc >= m_min * (1 - _BAR_EPS):
                        acc = 0.0
                elif min_size:
                    acc = d if d >= m_min * (1 - _BAR_EPS) else 0.0
                else:
                    acc = d
                returned = d - acc
                if cash_split:
                    acc_g = min(_floor_bars_1(acc * (1.0 - cs), g, inv_g), acc) if whole_bars else acc * (1.0 - cs)
                else:
                    acc_g = 0.0
                acc_c = acc - acc_g
                if whole_bars or min_size:
                    sells = sells + returned
            else:
                returned = 0.0
                x = d * (1.0 - cs)
                acc_g = min(_floor_bars_1(x, g, inv_g) if whole_bars else x, x)
                if not acc_g >= m_min * (1 - _BAR_EPS):
                    acc_g = 0.0
                acc_c = d - acc_g
                acc = d
            if has_gate:  # refused requests are returned and sold; demand is the request
                returned = returned + refused
                sells = sells + refused
                demand = request
            # ---------------------------------------------------------- 3. pipeline
            waiting += acc
            pend[0, lag] += cut * acc_g
            if cash_claims:
                pend[1, lag] += cut * acc_c
            if split_cut:
                pend[0, lag + 1] += (1.0 - cut) * acc_g
                if cash_claims:
                    pend[1, lag + 1] += (1.0 - cut) * acc_c
            # ---------------------------------------------------------- 6. opex accrues
            payable += opex_year * dt_years[t]
            # ---------------------------------------------------------- liquidity coverage
            cash_res = 0.0
            for k in range(k_n):
                cash_res += usable[k] * ukeep[k]
            pend_c, pend_g = 0.0, 0.0
            for m in range(lag + 2):
                pend_g += pend[0, m]
            if cash_claims:
                for m in range(lag + 2):
                    pend_c += pend[1, m]
            claim_c = (q_c + pend_c) * navt * cash_claim + payable
            lcr = cash_res / claim_c
            gold_res_g = 0.0
            if cash_split:
                gres_a, gres_u = 0.0, 0.0
                for k in range(k_n):
                    if _alloc(assets, k):
                        gres_a += amt[k]
                    elif _unalloc(assets, k):
                        gres_u += keep[k] * usable[k]
                gold_res_g = gres_a + gres_u if has_unalloc else gres_a
                gold_res = gold_res_g * xin[t, 0]
                claim_g = (q_g + pend_g) * navt
                ratio_g = gold_res / claim_g
                if math.isnan(lcr) or ratio_g < lcr:  # fmin: a NaN side does not bind
                    lcr = ratio_g if not math.isnan(ratio_g) else lcr
                if full:
                    o[_LIQ, t] = gold_res + cash_res
                    o[_OUTF, t] = claim_g + claim_c
            elif full:
                o[_LIQ, t] = cash_res
                o[_OUTF, t] = claim_c
            if math.isnan(lcr):
                lcr = math.inf
            o[_LCR, t] = lcr
            if is_open:
                # ------------------------------------------------------ 3. claims fall due
                q_g += pend[0, 0]
                for m in range(lag + 1):
                    pend[0, m] = pend[0, m + 1]
                pend[0, lag + 1] = 0.0
                if cash_claims:
                    q_c += pend[1, 0]
                    for m in range(lag + 1):
                        pend[1, m] = pend[1, m + 1]
                    pend[1, lag + 1] = 0.0
                # ------------------------------------------------------ 4a. gold claims
                if q_g != 0.0:
                    want = min(q_g, gold_res_g / gpt)
                    served_g = min(_floor_bars_1(want, g, inv_g) if whole_bars else want, q_g)
                    need = served_g * gpt
                    alloc_sum = 0.0
                    for k in range(k_n):
                        if _alloc(assets, k):
                            alloc_sum += amt[k]
                    from_alloc = min(need, alloc_sum)
                    if n_alloc == 1:
                        amt[first_alloc] -= from_alloc
                    else:
                        before = 0.0
                        for k in range(k_n):
                            if _alloc(assets, k):
                                a = amt[k]
                                take = min(max(from_alloc - before, 0.0), a)
                                amt[k] = a - take
                                before += a
                    gout += from_alloc
                    rest = need - from_alloc
                    if has_unalloc and rest != 0.0:
                        before = 0.0
                        sold_sum, loss_sum = 0.0, 0.0
                        for k in range(k_n):
                            if _unalloc(assets, k):
                                gr = usable[k] * keep[k]
                                take = min(max(rest - before, 0.0), gr)
                                before += gr
                                sold = take / keep[k]
                                amt[k] = max(amt[k] - sold, 0.0)
                                cap[k] -= sold
                                sold_sum += sold
                                loss_sum += sold - take
                        gout += sold_sum
                        fsl += loss_sum * xin[t, 0]
                    amt[first_alloc] = max(amt[first_alloc], 0.0)
                    q_g -= served_g
                    outflow += served_g * navt
                    fees = fee_r * served_g * navt
                    sup -= served_g
                    waiting -= served_g
                    o[_RED_G, t] = served_g
                # ------------------------------------------------------ 4b. cash waterfall
                if has_opex or q_c != 0.0:
                    raisable = 0.0
                    for k in range(k_n):
                        rr[k] = min(cap[k], amt[k]) * ukeep[k]
                        raisable += rr[k]
                    pay_opex = min(payable, raisable) if has_opex else 0.0
                    need = pay_opex
                    served_c = 0.0
                    payout = navt * cash_claim
                    if q_c != 0.0:
                        want = min(q_c, (raisable - pay_opex) / payout)
                        served_c = min(_floor_bars_1(want, g, inv_g) if bars_all else want, q_c)
                        need = pay_opex + served_c * payout
                        outflow += served_c * payout
                        if redeem_fee:
                            fee_cum += served_c * navt * fee_r
                        q_c -= served_c
                        sup -= served_c
                        waiting -= served_c
                        o[_RED_C, t] = served_c
                    before = 0.0
                    paid, haircut, sold_gold, took_noncash, hcut_cash = 0.0, 0.0, 0.0, 0.0, 0.0
                    for k in range(k_n):
                        take = min(max(need - before, 0.0), rr[k])
                        before += rr[k]
                        sold = take / ukeep[k]
                        amt[k] = max(amt[k] - sold, 0.0)
                        paid += take
                        if _gold(assets, k):
                            sold_gold += sold
                        if _cash(assets, k):
                            hcut_cash += hcut[k] * sold
                        else:
                            took_noncash += take
                        haircut += hcut[k] * (sold * unit[k])
                    gout += sold_gold
                    cin += took_noncash
                    cout += paid + hcut_cash
                    if served_c != 0.0 and redeemer_bears:
                        # the redeemers bear their share of the day's fire-sale haircut
                        share_c = served_c * payout / need if need > 0 else 0.0
                        borne = haircut * share_c
                        amt[first_cash] += borne
                        cout -= borne
                        outflow -= borne
                        haircut = haircut - borne
                    fsl += haircut
                    payable -= pay_opex
                    payable = max(payable, 0.0)
                # ------------------------------------------------------ 5. mints and fees
                if minting:
                    mshare = mint_base * max(0.0, 1.0 - mint_dd_sens * xin[t, 1])
                    if prem_mint:
                        mshare = mshare + mint_prem_sens * max(0.0, p_prev - fee_m)
                    minted = mshare * supply_prev
                    amt[first_alloc] += minted * gpt
                    gin += minted * gpt
                    sup += minted
                    fees = fees + fee_m * minted * navt
                fee_cum += fees
                if fees_to_reserve:
                    amt[first_cash] += fees
                    cin += fees
            # ---------------------------------------------------------- 7. secondary market
            backlog = q_g + q_c
            o[_BL, t] = backlog
            bl_last = backlog
            shock = _pool_ratio(par, sells) - 1.0 if has_pool and sells != 0.0 else 0.0
            if queue_discount:
                shock = shock - (qdw * backlog) / max(sup, 1e-300)
            stress = stress_rho * stress + shock
            if has_wait:  # patient arbitrage: buy, queue, redeem after the wait
                floor = -(fee_r + wait_cost * (to_open[t] + lag + 1.0 / lcr))
                if has_arb:
                    excess = max(sells - arb_cap, 0.0)
                    if excess != 0.0:
                        floor = floor + _pool_ratio(par, excess) - 1.0
                stress = max(stress, min(floor, 0.0))
            if has_proc:
                cond = pm_mean + pm_phi * (p_anchor - pm_mean)
                if has_band and is_open and backlog <= 0:
                    cond = cond - band_pull * (max(p_anchor - band_hi, 0.0) - max(band_lo - p_anchor, 0.0))
                noise = cond + xin[t, 2]
                if is_open:
                    p_anchor = noise
                prem = noise + stress
            else:
                prem = stress
            prem_last = max(prem, -1.0 + 1e-9)
            o[_PREM, t] = prem_last
            o[_DEM, t] = demand
            o[_RET, t] = returned
            o[_ACC_G, t] = acc_g
            if full:
                o[_SELL, t] = sells
                o[_MINT, t] = minted


@njit(cache=True, nogil=True, error_model="numpy")
def _holder_value_bad_debt(
    nav: np.ndarray,
    backing: np.ndarray,
    prem: np.ndarray,
    supply: np.ndarray,
    value: np.ndarray,
    holder: np.ndarray,
    bad: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Into ``holder`` and ``bad``: holder value ``nav * min(1, B) * (1 + prem)`` and uncovered
    liabilities ``max(0, supply * nav - V)`` (USD, all arrays ``(n, H + 1)``) in one pass, each
    element bit-identical to numpy's ``nav * np.minimum(1.0, B) * (1.0 + prem)`` and
    ``np.maximum(0.0, supply * nav - V)`` (NaN propagates; a tie keeps the second argument)."""
    n, t1 = nav.shape
    for i in range(n):
        for t in range(t1):
            b = backing[i, t]
            mb = 1.0 if b > 1.0 else b
            holder[i, t] = nav[i, t] * mb * (1.0 + prem[i, t])
            x = supply[i, t] * nav[i, t] - value[i, t]
            bad[i, t] = 0.0 if x < 0.0 else x


def _outcome(
    spec: ReserveBackedTokenSpec,
    out: np.ndarray,
    nav: np.ndarray,
    open_: np.ndarray,
    redeem_fee: float,
    c_run: float,
    full: bool,
) -> ReserveBackedOutcome:
    """The outcome of a finished run from the kernel's buffer ``(len(FIELDS) + K, n, H + 1)``, or
    ``(len(SUMMARY_FIELDS), n, H + 1)`` when not ``full`` (the other records then read NaN)."""
    s = spec
    n, t1 = nav.shape
    k_n = len(s.reserve)
    unrecorded = np.broadcast_to(np.nan, (n, t1))  # read-only, no memory
    T = {k: out[i] if full or i < len(SUMMARY_FIELDS) else unrecorded for i, k in enumerate(FIELDS)}
    holder, bad = np.empty((n, t1)), np.empty((n, t1))
    _holder_value_bad_debt(nav, T["B"], T["prem"], T["supply"], T["V"], holder, bad)
    return ReserveBackedOutcome(
        backing_ratio=T["B"],
        reserve_value_usd=T["V"],
        holder_value_usd_per_token=holder,
        supply_tokens=T["supply"],
        liquidated=np.zeros((n, t1), dtype=bool),
        bad_debt_usd=bad,
        gold_reserve_g=T["gold"],
        cash_usd=T["cash"],
        gold_in_g=T["gin"],
        gold_out_g=T["gout"],
        symbol=s.symbol,
        premium_frac=T["prem"],
        redemption_demand_tokens=T["dem"],
        returned_tokens=T["ret"],
        accepted_gold_tokens=T["acc_g"],
        redeemed_gold_tokens=T["red_g"],
        redeemed_cash_tokens=T["red_c"],
        queue_tokens=T["q"],
        backlog_tokens=T["bl"],
        minted_tokens=T["mint"],
        market_sell_tokens=T["sell"],
        run_share=T["run"],
        theta=T["theta"],
        run_externality=T["lam"],
        liquid_reserve_usd=T["liq"],
        stressed_outflow_usd=T["outf"],
        liquidity_coverage=T["lcr"],
        fire_sale_loss_usd=T["fsl"],
        cash_in_usd=T["cin"],
        cash_out_usd=T["cout"],
        opex_payable_usd=T["pay"],
        issuer_fee_revenue_usd=T["fee"] if not s.primary.fees_to_reserve else np.zeros((n, t1)),
        reserve_fee_income_usd=T["fee"] if s.primary.fees_to_reserve else np.zeros((n, t1)),
        redemption_outflow_usd=T["outfl"],
        asset_amounts=out[_AMT0 : _AMT0 + k_n] if full else np.broadcast_to(np.nan, (k_n, n, t1)),
        asset_names=tuple(a.name for a in s.reserve),
        market_open=open_.copy(),
        nav_usd_per_token=nav,
        grams_per_token=s.grams_per_token,
        redeem_fee=redeem_fee,
        redeem_cost=c_run,
        attestation_lag_days=s.attestation_lag_days,
    )


def _check_innovations(innovations: Any, shape: tuple[int, int]) -> np.ndarray:
    u = np.asarray(innovations, dtype=float)
    if u.shape != shape:
        raise ValueError(f"innovations: expected shape {shape} (the gold paths'), got {u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("innovations: expected finite numbers, got NaN or inf")
    return np.ascontiguousarray(u)


def _check_workspace(workspace: Any, shape: tuple[int, int, int]) -> np.ndarray:
    need = shape[0] * shape[1] * shape[2]
    w = workspace
    if not (isinstance(w, np.ndarray) and w.ndim == 1 and w.dtype == np.float64 and w.flags.c_contiguous):
        raise ValueError("workspace: expected a 1-D C-contiguous float64 numpy array")
    if w.size < need:
        raise ValueError(
            f"workspace: {w.size} elements, the run needs {need} ({shape[0]} records x {shape[1]} paths x {shape[2]} days)"
        )
    if not w.flags.writeable:
        raise ValueError("workspace: expected a writeable array")
    return w[:need].reshape(shape)


def _check_records(records: Any) -> bool:
    """True for ``"all"``, False for ``"summary"``; ValueError otherwise."""
    if records not in ("all", "summary"):
        raise ValueError(f"records: expected 'all' or 'summary', got {records!r}")
    return bool(records == "all")


def _structure(spec: ReserveBackedTokenSpec, par: _Params, full: bool) -> tuple[int, int, int, int, int, int]:
    """The kernel's structure arguments ``(assets, k_n, lag, first_alloc, first_cash, flags)`` of
    a spec and its parameters: the asset kinds (``_ASSET_BITS`` bits each), their number, the
    settlement lag in days, the first allocated-gold and USD-cash asset, and the option bits."""
    assets = spec.reserve
    bits = 0
    for k, a in enumerate(assets):
        bits |= (_ASSET_CODE[a.kind] | (4 if a.liquidity_unit == "fraction" else 0)) << (_ASSET_BITS * k)
    kinds = [a.kind for a in assets]
    # the first allocated-gold and USD-cash assets (a spec has both: models.token.spec)
    first_alloc, first_cash = kinds.index("allocated_gold"), kinds.index("usd_cash")
    p = par
    on = {
        _FULL: full,
        _GATE: not math.isnan(p.gate_limit),
        _GRANULARITY_ALL: p.granularity_all > 0,
        _BARS_ALL: p.bars_all > 0,
        _FEES_TO_RESERVE: p.fees_to_reserve > 0,
        _REDEEMER_BEARS: p.redeemer_bears_haircut > 0,
        _MINTING: p.minting > 0,
        _WAIT: not math.isnan(p.wait_cost),
        _POOL: p.pool_kind > 0,
        _ARBITRAGE: not math.isnan(p.arb_cap) and p.pool_kind > 0,
        _PROCESS: p.has_proc > 0,
        _BAND: p.has_band > 0,
        _CASH_SPLIT: p.cs < 1.0,
        _WHOLE_BARS: p.g > 0,
        _MIN_SIZE: p.m_min > 0,
        _SPLIT_CUT: p.cut < 1.0,
        _OPEX: p.opex_year > 0,
        _RUN_MASS: p.run_mass > 0,
        _RUN_SELLS: p.sell_share > 0,
        _DD_DEMAND: p.dd_sens > 0,
        _PEG_DEMAND: p.peg_sens > 0,
        _QUEUE_SIGNAL: p.queue_w > 0,
        _PREMIUM_SIGNAL: p.prem_w > 0,
        _REDEEM_FEE: p.fee_r > 0,
        _PREMIUM_MINT: p.mint_prem_sens > 0,
        _QUEUE_DISCOUNT: p.qdw > 0,
        # all-gold redemptions in whole bars throughout: the USD share ``acc - acc_g`` is exactly 0
        _GOLD_CLAIMS_ONLY: p.cs == 0.0 and p.granularity_all > 0,
    }
    flags = sum(bit for bit, yes in on.items() if yes)
    return bits, len(assets), int(p.lag), first_alloc, first_cash, flags


_COMPILED: dict[tuple[Any, ...], Any] = {}


def _kernel(args: tuple[Any, ...], structure: tuple[int, ...], specialise: bool = True) -> Any:
    """The daily loop for a run: the general kernel when it keeps every record (``_FULL`` in the
    flags, ``structure[-1]``) or ``specialise`` is False, else the kernel compiled for these argument types with
    ``structure`` as constants (numba literal types: the options' branches and the loops over
    assets fold away), from numba's on-disk cache when it holds it; one compilation per new
    structure and process otherwise."""
    if structure[-1] & _FULL or not specialise:
        return _run_paths
    sig = (*(numba.typeof(a) for a in args), *(numba.types.literal(int(v)) for v in structure))
    kernel = _COMPILED.get(sig)
    if kernel is None:
        _run_paths.compile(sig)
        kernel = _COMPILED[sig] = _run_paths.get_overload(sig)
    return kernel


def innovation_params(proc: PremiumProcess | None) -> tuple[float | None, ...] | None:
    """The parameters of ``proc`` its innovations depend on (:func:`premium_innovations`):
    ``(sigma, df, jump_intensity_per_day, jump_drawdown_sensitivity, jump_mean, jump_sd)``; None
    without a process. Two processes with equal tuples draw the same innovations from the same
    drawdowns and randomness (the band, mean, phi and band pull act in the daily loop only)."""
    if proc is None:
        return None
    return (
        proc.sigma,
        proc.df,
        proc.jump_intensity_per_day,
        proc.jump_drawdown_sensitivity,
        proc.jump_mean,
        proc.jump_sd,
    )


# --------------------------------------------------------------------------- model


class ReserveBackedToken:
    """Reserve-backed gold token: issuer reserve and liquidity, primary market, runs, secondary
    market. Mechanics and sources in docs/models/reserve-backed-token.md.

    Parameters
    ----------
    spec : ReserveBackedTokenSpec
    premium_process : models.premium.PremiumProcess or None
        Overrides the spec's process (e.g. one calibrated by the calibrate flow), used as given.
        None: :func:`spec_premium_process` (the spec's process, with the band of
        :func:`models.premium.arbitrage_band` when the spec gives none; no process when the spec
        has none).

    Raises
    ------
    ValueError
        If ``spec`` is not a ReserveBackedTokenSpec or ``premium_process`` not a PremiumProcess.
    """

    def __init__(self, spec: ReserveBackedTokenSpec, premium_process: PremiumProcess | None = None) -> None:
        if not isinstance(spec, ReserveBackedTokenSpec):
            raise ValueError(f"spec: expected ReserveBackedTokenSpec, got {type(spec).__name__}")
        if premium_process is not None and not isinstance(premium_process, PremiumProcess):
            raise ValueError(
                f"premium_process: expected models.premium.PremiumProcess, got {type(premium_process).__name__}"
            )
        self.spec = spec
        self.premium_process = premium_process if premium_process is not None else spec_premium_process(spec)

    def innovations(
        self,
        gold_usd_per_oz: np.ndarray,
        *,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
        first_path: int = 0,
    ) -> np.ndarray:
        """The premium innovations :meth:`run` draws on these gold paths with this ``rng`` and
        ``first_path`` (:func:`premium_innovations` at the paths' drawdowns), as an array
        ``(n_paths, horizon_days + 1)`` (fractions of NAV; column 0 and, without a premium
        process, all zero) to pass back as ``run(..., innovations=...)``. A Generator is advanced
        as the run would advance it. Raises ValueError as :meth:`run` does for bad prices,
        ``rng`` or ``first_path``."""
        pg = check_price_paths(gold_usd_per_oz) / TROY_OUNCE_G
        return premium_innovations(self.premium_process, _drawdown(pg), rng, first_path)

    def workspace_size(self, n_paths: int, n_days: int, records: str = "all") -> int:
        """Elements (float64) of the ``workspace`` :meth:`run` needs for ``n_paths`` paths of
        ``n_days`` model days counting day 0 (``horizon_days + 1``): ``(len(FIELDS) + K) *
        n_paths * n_days`` with ``K`` the spec's reserve assets, or ``len(SUMMARY_FIELDS) *
        n_paths * n_days`` for ``records="summary"``. Raises ValueError for another ``records``."""
        rows = len(FIELDS) + len(self.spec.reserve) if _check_records(records) else len(SUMMARY_FIELDS)
        return rows * int(n_paths) * int(n_days)

    def run(
        self,
        gold_usd_per_oz: np.ndarray,
        *,
        calendar: pd.DatetimeIndex | None = None,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
        first_path: int = 0,
        innovations: np.ndarray | None = None,
        workspace: np.ndarray | None = None,
        records: str = "all",
        specialise: bool = True,
    ) -> ReserveBackedOutcome:
        """Run the token along gold price paths (compiled: path by path, day by day).

        Parameters
        ----------
        gold_usd_per_oz : ndarray, shape (n_paths, horizon_days + 1)
            Gold prices, USD per troy ounce, day 0 first.
        calendar : pd.DatetimeIndex of length horizon_days + 1, or None
            Dates of the model days (trading days or calendar days); decides when the primary
            market is open and the opex accrual. ``None``: every day open, ``1/days_per_year``.
        rng : numpy Generator, SeedSequence, int seed or None
            Randomness of the premium process only (:func:`premium_innovations`). A
            SeedSequence or seed (None: seed 0) gives every path draws that depend only on the
            seed and the path's index ``first_path + i``, so a Monte Carlo split into chunks gives
            the same paths whatever the chunk size; a Generator draws for this call's paths
            from its stream.
        first_path : int
            Index of the first of these paths in the whole run (>= 0; used with a seed).
        innovations : ndarray, shape (n_paths, horizon_days + 1), or None
            Premium innovations to use instead of drawing them (``rng`` and ``first_path`` are
            then unused): :meth:`innovations` of a model with the same premium innovation
            parameters (:func:`innovation_params`) on the same gold paths and randomness gives
            exactly the run that drawing them would give. Lets re-runs of one scenario under
            other reserve or primary-market settings share one draw. None: drawn.
        workspace : ndarray or None
            A 1-D C-contiguous float64 array of at least :meth:`workspace_size` elements to hold
            the run's daily records, reused from run to run instead of a fresh allocation. The
            outcome's arrays are then views into it: valid only until the next run with the same
            workspace. None: a fresh buffer that the outcome owns.
        records : "all" or "summary"
            ``"all"``: every daily record. ``"summary"``: only :data:`SUMMARY_FIELDS`, what
            :func:`models.metrics.summarise_paths` reads; the outcome's other arrays
            (``gold_in_g``, ``cash_out_usd``, ``theta``, ``asset_amounts``, ...) are then
            read-only NaN. The recorded arrays are the same numbers in both. A summary run uses
            the kernel compiled for the spec's structure (which options are on, the reserve's
            asset kinds, the settlement lag) with those as constants: the first run of a new
            structure compiles it (a few seconds, then cached on disk with the other compiled
            code), and each later one runs about twice as fast as the general kernel.
        specialise : bool
            With ``records="summary"``: True uses the kernel compiled for the spec's structure
            (above); False the general kernel, which gives the same numbers with no compilation
            per structure, for runs too few to repay one (a search over many spec variants on a
            fresh machine). Unused with ``records="all"`` (always the general kernel).

        Returns
        -------
        ReserveBackedOutcome
            Arrays ``(n_paths, horizon_days + 1)``.

        Raises
        ------
        ValueError
            If prices are not a 2-D array of finite positive numbers, the calendar is not a
            strictly increasing DatetimeIndex of length horizon_days + 1, ``rng`` /
            ``first_path`` are of the wrong type, ``innovations`` is not a finite array of the
            prices' shape, ``workspace`` is not a large enough 1-D C-contiguous float64 array,
            or ``records`` is neither "all" nor "summary".
        """
        s = self.spec
        pm = s.primary
        records = "all" if _check_records(records) else "summary"
        price_oz = check_price_paths(gold_usd_per_oz)
        n, t1 = price_oz.shape
        open_ = market_open_days(calendar, pm.market_hours, t1)
        if calendar is None:
            dt_years = np.full(t1, 1.0 / s.days_per_year)
        else:
            step_days = np.asarray((calendar[1:] - calendar[:-1]) / pd.Timedelta(days=1), dtype=float)
            dt_years = np.r_[0.0, step_days / 365.25]
        dt_years[0] = 0.0
        # model days from each day to the next open day (0 when open; past the horizon: to its end + 1)
        to_open = np.zeros(t1)
        nxt = float(t1)
        for t in range(t1 - 1, -1, -1):
            nxt = float(t) if open_[t] else nxt
            to_open[t] = nxt - t
        # USD per gram, each path's days adjacent in memory as the kernel reads them (a column-major
        # input would put every day of a path on another page)
        pg = np.ascontiguousarray(price_oz) / TROY_OUNCE_G
        dd = _drawdown(pg)
        proc = self.premium_process
        if innovations is None:
            innov = premium_innovations(proc, dd, rng, first_path)
        else:
            innov = _check_innovations(innovations, (n, t1))
        assets = s.reserve
        hcut = np.array([a.stressed_haircut for a in assets], dtype=float)
        is_alloc = np.array([a.kind == "allocated_gold" for a in assets])
        heff = np.where(is_alloc, hcut * pm.cash_redemption_share, hcut)
        par = _param_vector(s, proc)
        full = records == "all"
        rows = (len(FIELDS) + len(assets)) if full else len(SUMMARY_FIELDS)
        out = np.zeros((rows, n, t1)) if workspace is None else _check_workspace(workspace, (rows, n, t1))
        args = (
            out,
            pg,
            dd,
            np.ascontiguousarray(innov),
            np.ascontiguousarray(open_, dtype=np.bool_),
            dt_years,
            to_open,
            par,
            np.array([a.amount for a in assets], dtype=float),
            np.array([a.liquidity_per_day for a in assets], dtype=float),
            hcut,
            heff,
        )
        structure = _structure(s, par, full)
        _kernel(args, structure, specialise)(*args, *structure)
        return _outcome(s, out, s.grams_per_token * pg, open_, pm.redeem_fee, par.c_run, full)
