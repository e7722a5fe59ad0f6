"""Frozen reference (tests only): the step-by-step NumPy engine of the reserve-backed gold token
(issuer balance sheet, primary market, redemption runs, secondary market) that the compiled
engine of models/token/reserve_backed.py reproduces.

``ReserveBackedToken(spec).run(gold_usd_per_oz, calendar=..., rng=...)`` runs gold paths
``(n_paths, H + 1)`` through the daily steps of :data:`DAILY_STEPS` and returns a
:class:`models.token.outcome.ReserveBackedOutcome`.
Equations, assumptions and sources: docs/models/reserve-backed-token.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from models.amm import ConcentratedLiquidityPool, ConstantProductPool
from models.checks import check_price_paths
from models.premium import PremiumProcess, arbitrage_band
from models.token.outcome import ReserveBackedOutcome
from models.token.spec import (
    ConstantProductAmmSpec,
    ReserveBackedTokenSpec,
    premium_process_from_params,
)
from models.units import TROY_OUNCE_G

__all__ = [
    "DAILY_STEPS",
    "ROW_FIELDS",
    "STATE_FIELDS",
    "DayState",
    "ReserveBackedToken",
    "RunSetup",
    "capacity",
    "costs",
    "demand",
    "eligibility",
    "gate",
    "gold_resources",
    "laplacian_threshold",
    "liquidity",
    "market_open_days",
    "mint",
    "outcome",
    "pay_cash",
    "pay_gold",
    "pool_price_ratio",
    "record",
    "refused_sold",
    "run_share",
    "secondary_market",
    "settlement",
    "spec_pool",
    "spec_arbitrage_band",
    "spec_premium_process",
    "start_day",
    "whole_bar_split",
    "whole_bars",
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


def _before(r: np.ndarray) -> np.ndarray:
    """Exclusive prefix sum over the (few) rows of ``r`` (K, n): ``out[k] = sum_{i<k} r[i]``.
    A loop over K rows: ``np.cumsum(axis=0)`` on a short leading axis is ~30x slower."""
    out = np.zeros_like(r)
    for k in range(1, r.shape[0]):
        np.add(out[k - 1], r[k - 1], out=out[k])
    return out


# --------------------------------------------------------------------------- engine: setup


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


STATE_FIELDS = ("supply", "gin", "gout", "cin", "cout", "fsl", "pay", "run", "q", "fee", "outfl")
"""Running-state fields of the day-major buffer (then one ``amt<k>`` per reserve asset)."""

ROW_FIELDS = (
    "B",
    "V",
    "gold",
    "cash",
    "lam",
    "prem",
    "dem",
    "ret",
    "acc_g",
    "sell",
    "red_g",
    "red_c",
    "mint",
    "theta",
    "liq",
    "outf",
    "lcr",
    "bl",
)
"""Per-day fields of the day-major buffer written in place by the steps."""


@dataclass(frozen=True)
class RunSetup:
    """Constants of one run: the spec's numbers, the price paths in day-major layout and index
    helpers. Built by :meth:`from_spec`; read (never written) by the daily steps, except ``gen``
    (the premium process's random stream), which the secondary market draws from.

    ``cash_claim`` is what a cash redemption takes from the reserve per token, as a fraction of
    NAV: 1 when the fees go to the issuer (``NAV * (1 - redeem_fee)`` to the holder, the fee to
    the issuer), ``1 - redeem_fee`` when ``primary.fees_to_reserve`` (the fee stays in the reserve).
    ``redeemer_bears_haircut``: ``primary.cash_redemption_haircut == "redeemer"``. ``stress_rho``:
    the daily persistence of the sell-driven part of the premium (:func:`secondary_market`).
    Arrays: ``pg``, ``nav``, ``dd`` are ``(H + 1, n_paths)`` (USD per gram, USD per token,
    gold drawdown fraction); ``open_``, ``dt_years``, ``to_open`` are ``(H + 1,)``; reserve
    asset columns ``keep``, ``liq``, ``liq_frac`` are ``(K, 1)`` and the ``w_*`` weights ``(K,)``
    for ``(K,) @ (K, n_paths)`` sums. ``field`` maps a field name of :data:`STATE_FIELDS` /
    :data:`ROW_FIELDS` / ``amt<k>`` to its row in :attr:`DayState.block`.
    """

    spec: ReserveBackedTokenSpec
    n: int
    t1: int
    open_: np.ndarray
    dt_years: np.ndarray
    to_open: np.ndarray
    pg: np.ndarray
    nav: np.ndarray
    dd: np.ndarray
    k_n: int
    gold_idx: np.ndarray
    alloc_idx: np.ndarray
    unalloc_idx: np.ndarray
    first_alloc: int
    first_cash: int
    keep: np.ndarray
    liq: np.ndarray
    liq_frac: np.ndarray
    all_frac: bool
    has_unalloc: bool
    cs: float
    g: float
    m_min: float
    bars_all: bool
    granularity_all: bool
    fee_r: float
    fee_m: float
    fees_to_reserve: bool
    cash_claim: float
    redeemer_bears_haircut: bool
    gate_limit: float | None
    lag: int
    cut: float
    opex_year: float
    c_run: float
    run_mass: float
    sig: float
    minting: bool
    qdw: float
    wait_cost: float | None
    arb_cap: float | None
    proc: PremiumProcess | None
    stress_rho: float
    gen: np.random.Generator
    p0: float
    pool: ConstantProductPool | ConcentratedLiquidityPool | None
    w_gold: np.ndarray
    w_cash: np.ndarray
    w_noncash: np.ndarray
    w_alloc: np.ndarray
    w_unalloc_keep: np.ndarray
    w_hcut: np.ndarray
    w_hcut_cash: np.ndarray
    w_heff: np.ndarray
    ones_k: np.ndarray
    zeros_n: np.ndarray
    field: dict[str, int]
    n_state: int

    @classmethod
    def from_spec(
        cls,
        spec: ReserveBackedTokenSpec,
        gold_usd_per_oz: np.ndarray,
        calendar: pd.DatetimeIndex | None = None,
        rng: np.random.Generator | int | None = None,
        premium_process: PremiumProcess | None = None,
    ) -> RunSetup:
        """Constants for running ``spec`` on ``gold_usd_per_oz`` ``(n_paths, H + 1)`` (USD per
        troy ounce) with the given calendar (``None``: every day open, ``1/days_per_year``
        years a day) and premium process (used as given; ``None``: no process). ``rng``: a
        Generator, a seed, or ``None`` (seed 0). Raises ValueError for bad prices or calendar
        (:func:`models.checks.check_price_paths`, :func:`market_open_days`)."""
        s = spec
        pm, rb, cf = s.primary, s.redemption, s.redemption.confidence
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
        gpt = s.grams_per_token
        # day-major buffers (t1, n): each day reads and writes one contiguous row
        pg = np.ascontiguousarray(price_oz.T) / TROY_OUNCE_G  # USD per gram
        nav = gpt * pg
        dd = 1.0 - pg / np.maximum.accumulate(pg, axis=0)

        assets = s.reserve
        k_n = len(assets)
        kind = [a.kind for a in assets]
        is_gold = np.array([a.is_gold for a in assets])
        is_cash = np.array([k == "usd_cash" for k in kind])
        is_alloc = np.array([k == "allocated_gold" for k in kind])
        is_unalloc = np.array([k == "unallocated_gold" for k in kind])
        gold_idx = np.flatnonzero(is_gold)
        alloc_idx, unalloc_idx, cash_idx = (np.flatnonzero(x) for x in (is_alloc, is_unalloc, is_cash))
        hcut = np.array([a.stressed_haircut for a in assets])[:, None]
        keep = 1.0 - hcut
        liq = np.array([a.liquidity_per_day for a in assets])[:, None]
        liq_frac = np.array([a.liquidity_unit == "fraction" for a in assets])[:, None]
        cs = pm.cash_redemption_share
        h_eff = np.where(is_alloc[:, None], hcut * cs, hcut)
        g = pm.redemption_granularity_tokens

        proc = premium_process
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
        p0 = 0.0
        if proc is not None:
            p0 = float(proc.stationary_mean())
            if proc.band_lower is not None and proc.band_upper is not None:  # set together (with_band)
                p0 = min(max(p0, float(proc.band_lower)), float(proc.band_upper))

        names = list(STATE_FIELDS) + [f"amt{k}" for k in range(k_n)] + list(ROW_FIELDS)

        def f(mask: np.ndarray) -> np.ndarray:
            return mask.astype(float)

        w_cash = f(is_cash)
        return cls(
            spec=s,
            n=n,
            t1=t1,
            open_=open_,
            dt_years=dt_years,
            to_open=to_open,
            pg=pg,
            nav=nav,
            dd=dd,
            k_n=k_n,
            gold_idx=gold_idx,
            alloc_idx=alloc_idx,
            unalloc_idx=unalloc_idx,
            first_alloc=int(alloc_idx[0]),
            first_cash=int(cash_idx[0]),
            keep=keep,
            liq=liq,
            liq_frac=liq_frac,
            all_frac=bool(liq_frac.all()),
            has_unalloc=bool(unalloc_idx.size),
            cs=cs,
            g=g,
            m_min=pm.min_redemption_tokens,
            bars_all=g > 0 and pm.granularity_applies_to == "all",
            granularity_all=pm.granularity_applies_to == "all",
            fee_r=pm.redeem_fee,
            fee_m=pm.mint_fee,
            fees_to_reserve=pm.fees_to_reserve,
            cash_claim=1.0 - pm.redeem_fee if pm.fees_to_reserve else 1.0,
            redeemer_bears_haircut=pm.cash_redemption_haircut == "redeemer",
            gate_limit=pm.redemption_limit_share_per_day,
            lag=pm.settlement_lag_days,
            cut=pm.cutoff_share,
            opex_year=s.opex_usd_per_year,
            c_run=pm.redeem_fee + cf.switching_cost,
            run_mass=cf.run_prone_share * s.supply_tokens,
            sig=cf.signal_noise_sd,
            minting=rb.base_mint_rate_per_day > 0 or rb.mint_premium_sensitivity > 0,
            qdw=s.secondary.queue_discount_weight,
            wait_cost=s.secondary.wait_cost_per_day,
            arb_cap=s.secondary.arbitrage_capacity_tokens_per_day,
            proc=proc,
            stress_rho=0.0 if proc is None else float(min(max(proc.phi - proc.band_pull, 0.0), 0.999)),
            gen=gen,
            p0=p0,
            pool=spec_pool(s),
            w_gold=f(is_gold),
            w_cash=w_cash,
            w_noncash=f(~is_cash),
            w_alloc=f(is_alloc),
            w_unalloc_keep=f(is_unalloc) * keep[:, 0],
            w_hcut=hcut[:, 0],
            w_hcut_cash=hcut[:, 0] * w_cash,
            w_heff=h_eff[:, 0],
            ones_k=np.ones(k_n),
            zeros_n=np.zeros(n),
            field={k: i for i, k in enumerate(names)},
            n_state=len(STATE_FIELDS) + k_n,
        )


# --------------------------------------------------------------------------- engine: state


def _unset() -> np.ndarray:
    """Placeholder of a day field until its step sets it (an empty array)."""
    return np.empty(0)


@dataclass(eq=False)
class DayState:
    """Mutable state of a run, vectorised over paths (every ``(n,)`` array is per path).

    Running state (views into ``S``, recorded into ``block`` once a day by :func:`record`):
    ``sup`` supply (tokens), ``gin``/``gout`` cumulative gold in/out (g), ``cin``/``cout``
    cumulative USD in/out of the ``usd_cash`` assets, ``fsl`` cumulative fire-sale loss (USD),
    ``payable`` unpaid opex (USD), ``run_cum`` cumulative run share ``R_t``, ``waiting``
    accepted tokens not yet paid, ``fee_cum`` cumulative mint and redeem fees (USD; the issuer's
    revenue, or credited to the reserve when ``primary.fees_to_reserve``), ``outflow``
    cumulative value taken from the reserve to pay redemptions (USD at each day's prices: gold
    delivered, USD paid for cash redemptions), ``amt`` ``(K, n)`` asset holdings (grams or USD). Also
    ``q_g``/``q_c`` eligible unpaid claims (tokens; gold, cash), ``pend`` ``(2, lag + 2, n)``
    accepted claims by open days until eligible, ``unit`` ``(K, n)`` USD value of one unit of
    each asset today, and ``block`` ``(H + 1, fields, n)``, the day-major record (see
    :attr:`RunSetup.field`).

    Day fields (set by the steps, valid within day ``t``): ``t``, ``is_open``, ``row``/``prev``
    (today's/yesterday's ``block`` rows), ``p_prev`` yesterday's premium, ``p_anchor`` the
    premium process's value on the last open day (its clock), ``stress`` the sell-driven part of
    the premium (fraction, <= 0), ``supply_prev``
    yesterday's supply (floored at 1e-300), ``navt`` NAV (USD per token), ``ukeep`` USD raised
    per unit sold, ``cap``/``usable`` units convertible today, ``demand`` requests to the issuer,
    ``request`` requests before the gate, ``refused`` requests over the gate (None without one),
    ``sells`` tokens sold on the market, ``returned``/``acc``/``acc_g``/``acc_c`` tokens returned
    / accepted (total, gold, cash), ``gold_res_g`` grams deliverable in kind, ``fees`` USD fees
    paid in from outside the reserve today (mint fees and the redeem fees of gold redemptions;
    None: none).
    """

    block: np.ndarray
    S: np.ndarray
    sup: np.ndarray
    gin: np.ndarray
    gout: np.ndarray
    cin: np.ndarray
    cout: np.ndarray
    fsl: np.ndarray
    payable: np.ndarray
    run_cum: np.ndarray
    waiting: np.ndarray
    fee_cum: np.ndarray
    outflow: np.ndarray
    amt: np.ndarray
    q_g: np.ndarray
    q_c: np.ndarray
    pend: np.ndarray
    unit: np.ndarray
    t: int = 0
    is_open: bool = True
    row: np.ndarray = field(default_factory=_unset)
    prev: np.ndarray = field(default_factory=_unset)
    p_prev: np.ndarray = field(default_factory=_unset)
    p_anchor: np.ndarray = field(default_factory=_unset)
    stress: np.ndarray = field(default_factory=_unset)
    supply_prev: np.ndarray = field(default_factory=_unset)
    navt: np.ndarray = field(default_factory=_unset)
    ukeep: np.ndarray = field(default_factory=_unset)
    cap: np.ndarray = field(default_factory=_unset)
    usable: np.ndarray = field(default_factory=_unset)
    demand: np.ndarray = field(default_factory=_unset)
    request: np.ndarray = field(default_factory=_unset)
    refused: np.ndarray | None = None
    sells: np.ndarray = field(default_factory=_unset)
    returned: np.ndarray = field(default_factory=_unset)
    acc: np.ndarray = field(default_factory=_unset)
    acc_g: np.ndarray = field(default_factory=_unset)
    acc_c: np.ndarray = field(default_factory=_unset)
    gold_res_g: np.ndarray = field(default_factory=_unset)
    fees: np.ndarray | None = None

    @classmethod
    def initial(cls, r: RunSetup) -> DayState:
        """Day 0: the spec's holdings and supply, nothing waiting, day-0 liquidity, premium
        ``r.p0`` and the steady-state run share ``R_0`` recorded in ``block[0]``."""
        s = r.spec
        F = r.field
        n, k_n = r.n, r.k_n
        # one large allocation (transparent huge pages; many 4 MB arrays fill ~3x slower)
        block = np.zeros((r.t1, len(F), n))
        S = np.zeros((r.n_state, n))
        sup, gin, gout, cin, cout, fsl, payable, run_cum, waiting, fee_cum, outflow = (S[F[k]] for k in STATE_FIELDS)
        amt = S[F["amt0"] : F["amt0"] + k_n]
        amt[:] = np.array([a.amount for a in s.reserve], dtype=float)[:, None]
        sup[:] = s.supply_tokens
        st = cls(
            block=block,
            S=S,
            sup=sup,
            gin=gin,
            gout=gout,
            cin=cin,
            cout=cout,
            fsl=fsl,
            payable=payable,
            run_cum=run_cum,
            waiting=waiting,
            fee_cum=fee_cum,
            outflow=outflow,
            amt=amt,
            q_g=np.zeros(n),
            q_c=np.zeros(n),
            pend=np.zeros((2, r.lag + 2, n)),
            unit=np.ones((k_n, n)),
        )
        st.t = 0
        st.row = block[0]
        st.unit[r.gold_idx] = r.pg[0]
        cap0 = capacity(r, st)
        row0 = block[0]
        row0[F["liq"]] = r.ones_k @ (cap0 * st.unit * r.keep) + (
            gold_resources(r, st, cap0) * r.pg[0] if r.cs < 1.0 else 0.0
        )
        row0[F["lcr"]] = np.inf
        row0[F["prem"]] = r.p0
        record(r, st)
        cf = s.redemption.confidence
        row0[F["theta"]] = row0[F["B"]] - 1.0 + cf.premium_weight * min(r.p0 + r.fee_r, 0.0)
        run_cum[:] = ndtr((row0[F["lam"]] / 2.0 - r.c_run - row0[F["theta"]]) / r.sig)
        row0[F["run"]] = run_cum
        st.p_anchor = row0[F["prem"]].copy()
        st.stress = np.zeros(r.n)
        return st


def capacity(r: RunSetup, st: DayState) -> np.ndarray:
    """Units of each asset convertible to cash today, ``(K, n)``: ``liquidity_per_day * amt``
    (fraction liquidity, never above the holding) or ``min(liquidity_per_day, amt)`` (amount).
    Reads ``st.amt``."""
    amt = st.amt
    return r.liq * amt if r.all_frac else np.where(r.liq_frac, r.liq * amt, np.minimum(r.liq, amt))


def gold_resources(r: RunSetup, st: DayState, usable: np.ndarray) -> np.ndarray:
    """Grams deliverable in kind today, ``(n,)``: allocated gold plus unallocated gold within
    ``usable`` (``(K, n)`` units) after its haircut. Reads ``st.amt``."""
    gr = r.w_alloc @ st.amt
    return gr + r.w_unalloc_keep @ usable if r.has_unalloc else gr


# --------------------------------------------------------------------------- engine: daily steps


def start_day(r: RunSetup, st: DayState, t: int) -> None:
    """Open day ``t``: today's prices and capacities.

    Reads ``r.open_[t]``, ``r.pg[t]``, ``r.nav[t]``, ``st.block[t - 1]``, ``st.amt``.
    Writes ``st.t``, ``st.is_open``, ``st.row``/``st.prev``, ``st.p_prev`` (yesterday's
    premium), ``st.supply_prev`` (yesterday's supply floored at 1e-300), ``st.navt``, the gold
    rows of ``st.unit`` (USD per gram), ``st.ukeep`` (USD raised per unit sold), ``st.cap`` and
    ``st.usable`` (units convertible today, :func:`capacity`), and clears ``st.fees``.
    """
    F = r.field
    st.t = t
    st.is_open = bool(r.open_[t])
    st.row = st.block[t]
    st.prev = st.block[t - 1]
    st.p_prev = st.prev[F["prem"]]
    st.supply_prev = np.maximum(st.prev[F["supply"]], 1e-300)
    st.navt = r.nav[t]
    st.unit[r.gold_idx] = r.pg[t]
    st.ukeep = st.unit * r.keep
    st.cap = capacity(r, st)
    st.usable = st.cap if r.all_frac else np.minimum(st.cap, st.amt)
    st.fees = None


def demand(r: RunSetup, st: DayState) -> None:
    """1. Demand: holders' flows, peg-arbitrage redemptions (open days) and the run.

    ``free = supply - waiting``; flow ``min(base + drawdown_sensitivity * dd_t + [open]
    peg_sensitivity * max(0, -p_{t-1} - redeem_fee), max_share_per_day) * free``. Run (global
    game): fundamental ``theta_t = (B_j - 1) - queue_weight * backlog_{t-1} / supply_{t-1} +
    premium_weight * min(p_{t-1} + redeem_fee, 0)`` with ``j = max(0, t - 1 -
    attestation_lag_days)``; ``R_t = max(R_{t-1}, Phi((lambda_j / 2 - c - theta_t) / sigma))``;
    ``(R_t - R_{t-1}) * run_mass`` tokens run, a share ``market_sell_share`` by selling.

    Reads ``st.sup``, ``st.waiting``, ``st.p_prev``, ``st.supply_prev``, ``st.prev`` (backlog),
    ``st.block[j]`` (B, lambda), ``st.run_cum``, ``r.dd[t]``. Writes ``st.demand`` (requests to
    the issuer, at most ``free``), ``st.sells`` (runners selling), ``st.run_cum`` and the
    ``theta`` row of ``st.row``.
    """
    t, F = st.t, r.field
    rb = r.spec.redemption
    cf = rb.confidence
    row, prev, p_prev = st.row, st.prev, st.p_prev
    free = np.maximum(st.sup - st.waiting, 0.0)
    base = rb.base_rate_per_day if rb.base_rate_until_day is None or t <= rb.base_rate_until_day else 0.0
    share = base + rb.drawdown_sensitivity * r.dd[t] if rb.drawdown_sensitivity > 0 else base
    if st.is_open and rb.peg_sensitivity > 0:
        share = share + rb.peg_sensitivity * np.maximum(-p_prev - r.fee_r, 0.0)
    flow = np.minimum(share, rb.max_share_per_day) * free
    j = max(0, t - 1 - r.spec.attestation_lag_days)
    theta = np.subtract(st.block[j, F["B"]], 1.0, out=row[F["theta"]])
    if cf.queue_weight > 0:  # supply_prev > 0 (floored at 1e-300)
        theta -= (cf.queue_weight * prev[F["bl"]]) / st.supply_prev
    if cf.premium_weight > 0:
        theta += cf.premium_weight * np.minimum(p_prev + r.fee_r, 0.0)
    tstar = st.block[j, F["lam"]] / 2.0 - r.c_run
    if r.run_mass > 0:
        new_cum = np.maximum(st.run_cum, ndtr((tstar - theta) / r.sig))
        runners = (new_cum - st.run_cum) * r.run_mass
        st.run_cum[:] = new_cum
        st.demand = np.minimum(flow + runners * (1.0 - cf.market_sell_share), free)
        st.sells = (
            np.clip(free - st.demand, 0.0, runners * cf.market_sell_share) if cf.market_sell_share > 0 else r.zeros_n
        )
    else:
        st.demand = np.minimum(flow, free)
        st.sells = r.zeros_n


def gate(r: RunSetup, st: DayState) -> None:
    """1b. The issuer's redemption gate: at most ``L * supply_{t-1}`` requests are accepted
    (``L = primary.redemption_limit_share_per_day``); the rest are refused.

    Reads ``st.demand``, ``st.supply_prev``. Writes ``st.refused`` (``max(0, demand - L *
    supply_{t-1})``; None without a gate), ``st.request`` (the requests before the gate) and
    ``st.demand`` (the requests let through).
    """
    st.refused = None
    if r.gate_limit is not None:
        st.refused = np.maximum(st.demand - r.gate_limit * st.supply_prev, 0.0)
        st.request, st.demand = st.demand, st.demand - st.refused


def whole_bars(r: RunSetup, st: DayState) -> None:
    """2. Whole bars: accept the day's (pooled) requests in whole bars and split them into a
    gold part and a cash part.

    ``granularity_applies_to = "all"``: accepted ``a = floor(D / g) * g`` (0 below the minimum
    ``m``), the remainder returned and sold on the market when bars or a minimum apply; gold
    part whole bars of ``(1 - cash_redemption_share) * a``. ``"gold"``: every request accepted,
    gold part :func:`whole_bar_split` of ``(1 - cash_redemption_share) * D``, the rest in cash.

    Reads ``st.demand``, ``st.sells``. Writes ``st.acc``, ``st.acc_g``, ``st.acc_c`` (tokens
    accepted: total, gold, cash), ``st.returned`` and ``st.sells`` (plus the returned tokens).
    """
    d, g, m_min, cs, zeros_n = st.demand, r.g, r.m_min, r.cs, r.zeros_n
    if r.granularity_all:
        if g > 0:
            acc = np.minimum(_floor_bars(d, g), d)
            if m_min > 0:
                acc = np.where(acc >= m_min * (1 - _BAR_EPS), acc, 0.0)
        elif m_min > 0:
            acc = np.where(d >= m_min * (1 - _BAR_EPS), d, 0.0)
        else:
            acc = d
        returned = d - acc
        acc_g = (
            (np.minimum(_floor_bars(acc * (1.0 - cs), g), acc) if g > 0 else acc * (1.0 - cs)) if cs < 1.0 else zeros_n
        )
        acc_c = acc - acc_g
        if g > 0 or m_min > 0:
            st.sells = st.sells + returned
    else:
        returned = zeros_n
        acc_g, _ = whole_bar_split(d * (1.0 - cs), g, m_min)
        acc_c = d - acc_g
        acc = d
    st.acc, st.acc_g, st.acc_c, st.returned = acc, acc_g, acc_c, returned


def refused_sold(r: RunSetup, st: DayState) -> None:
    """1b (continued). Requests refused by the gate count as returned, their holders sell them
    on the market, and the day's recorded demand is the request before the gate.

    Reads ``st.refused``, ``st.request``. Writes ``st.returned``, ``st.sells`` (both plus the
    refused tokens) and ``st.demand`` (= ``st.request``). No-op without a gate.
    """
    if st.refused is not None:
        st.returned = st.returned + st.refused
        st.sells = st.sells + st.refused
        st.demand = st.request


def settlement(r: RunSetup, st: DayState) -> None:
    """3. Pipeline: accepted tokens wait; ``cutoff_share`` of them become eligible after
    ``settlement_lag_days`` open days, the rest one open day later.

    Reads ``st.acc``, ``st.acc_g``, ``st.acc_c``. Writes ``st.waiting`` (plus ``acc``) and
    ``st.pend[:, lag]``, ``st.pend[:, lag + 1]`` ([gold, cash] claims by open days to go).
    """
    st.waiting += st.acc
    pend, lag, cut = st.pend, r.lag, r.cut
    pend[0, lag] += cut * st.acc_g
    pend[1, lag] += cut * st.acc_c
    if cut < 1.0:
        pend[0, lag + 1] += (1.0 - cut) * st.acc_g
        pend[1, lag + 1] += (1.0 - cut) * st.acc_c


def costs(r: RunSetup, st: DayState) -> None:
    """6. Opex accrues every model day into a payable (a senior claim, paid on open days by
    :func:`pay_cash`): ``opex_usd_per_year * dt_years[t]`` (``1/days_per_year`` a model day
    without a calendar; elapsed calendar days / 365.25 with one).

    Reads ``r.dt_years[t]``. Writes ``st.payable`` (USD).
    """
    st.payable += r.opex_year * r.dt_years[st.t]


def liquidity(r: RunSetup, st: DayState) -> None:
    """Liquidity coverage from start-of-day resources against all waiting claims plus the opex
    payable (the coverage the issuer would have if the market opened, on a closed day).

    Cash side: ``sum_k usable_k * unit_k * (1 - h_k)`` against ``(queue + pipeline) cash claims *
    NAV * cash_claim + payable`` (``cash_claim`` of :class:`RunSetup`: 1, or ``1 - redeem_fee``
    when the fees stay in the reserve); gold side (when any redemption is in gold): grams
    deliverable in kind (:func:`gold_resources`) at the gold price against gold claims at NAV.
    Coverage is the smaller side ratio; a side without claims (0/0) does not bind; ``inf``
    without any claim.

    Reads ``st.usable``, ``st.ukeep``, ``st.q_g``, ``st.q_c``, ``st.pend``, ``st.navt``,
    ``st.payable``, ``st.amt``. Writes the ``lcr``, ``liq`` and ``outf`` rows of ``st.row``
    (coverage, liquid reserve USD, stressed outflow USD) and ``st.gold_res_g`` (grams).
    """
    F, row, t = r.field, st.row, st.t
    cash_res = r.ones_k @ (st.usable * st.ukeep)
    claim_c = (st.q_c + st.pend[1].sum(axis=0)) * st.navt * r.cash_claim + st.payable
    # resources / claims per side; a side without claims (0/0 = nan) does not bind (fmin)
    lcr = row[F["lcr"]]
    np.divide(cash_res, claim_c, out=lcr)
    if r.cs < 1.0:
        gold_res_g = st.gold_res_g = gold_resources(r, st, st.usable)
        gold_res = gold_res_g * r.pg[t]
        claim_g = (st.q_g + st.pend[0].sum(axis=0)) * st.navt
        np.fmin(lcr, gold_res / claim_g, out=lcr)
        np.add(gold_res, cash_res, out=row[F["liq"]])
        np.add(claim_g, claim_c, out=row[F["outf"]])
    else:
        row[F["liq"]] = cash_res
        row[F["outf"]] = claim_c
    lcr[np.isnan(lcr)] = np.inf


def eligibility(r: RunSetup, st: DayState) -> None:
    """3 (continued), open days only: the pipeline advances one open day; claims due today
    join the FIFO queues of eligible claims.

    Reads and writes ``st.pend``; writes ``st.q_g``, ``st.q_c`` (tokens). No-op on a closed day.
    """
    if not st.is_open:
        return
    pend = st.pend
    st.q_g += pend[0, 0]
    st.q_c += pend[1, 0]
    pend[:, :-1] = pend[:, 1:]
    pend[:, -1] = 0.0


def pay_gold(r: RunSetup, st: DayState) -> None:
    """4a, open days only: gold claims are paid in kind, first come first served (Diamond &
    Dybvig 1983): allocated gold directly (no sale), then unallocated gold within its daily
    capacity at its haircut; whole bars when the granularity applies.

    ``served = min(q_g, floor_bars(gold_res_g / grams_per_token))``; the holder receives
    ``grams_per_token`` grams per token and pays the redeem fee in USD on top. Reads ``st.q_g``,
    ``st.gold_res_g``, ``st.amt``, ``st.usable``, ``st.navt``. Writes ``st.amt`` (gold assets),
    ``st.cap`` (unallocated capacity used), ``st.gout``, ``st.fsl``, ``st.q_g``, ``st.sup``,
    ``st.waiting`` (minus served), ``st.outflow`` (plus ``served * NAV``, the gold delivered),
    ``st.fees`` (redeem fee of the served tokens, USD, credited by :func:`mint`) and the
    ``red_g`` row of ``st.row``. No-op on a closed day or without gold claims.
    """
    if not st.is_open or not st.q_g.any():
        return
    F, g, gpt = r.field, r.g, r.spec.grams_per_token
    amt, q_g = st.amt, st.q_g
    want = np.minimum(q_g, st.gold_res_g / gpt)
    served_g = np.minimum(_floor_bars(want, g) if g > 0 else want, q_g)
    need = served_g * gpt
    from_alloc = np.minimum(need, r.w_alloc @ amt)
    if r.alloc_idx.size == 1:
        amt[r.first_alloc] -= from_alloc
    else:
        a = amt[r.alloc_idx]
        take = np.minimum(np.maximum(from_alloc - _before(a), 0.0), a)
        amt[r.alloc_idx] = a - take
    st.gout += from_alloc
    rest = need - from_alloc
    if r.has_unalloc and rest.any():
        ui = r.unalloc_idx
        gr = st.usable[ui] * r.keep[ui]
        take = np.minimum(np.maximum(rest - _before(gr), 0.0), gr)
        sold = take / r.keep[ui]
        amt[ui] = np.maximum(amt[ui] - sold, 0.0)
        st.cap[ui] -= sold
        st.gout += sold.sum(axis=0)
        st.fsl += (sold - take).sum(axis=0) * r.pg[st.t]
    np.maximum(amt[r.first_alloc], 0.0, out=amt[r.first_alloc])
    q_g -= served_g
    st.outflow += served_g * st.navt
    st.fees = r.fee_r * served_g * st.navt
    st.sup -= served_g
    st.waiting -= served_g
    st.row[F["red_g"]] = served_g


def pay_cash(r: RunSetup, st: DayState) -> None:
    """4b, open days only: one cash waterfall in the spec's asset order pays the opex payable
    first (senior), then cash claims at ``NAV * cash_claim`` per token (the holder receives
    ``NAV * (1 - redeem_fee)``; with the fees to the issuer the fee ``NAV * redeem_fee`` is paid
    to it from the same sale, with ``primary.fees_to_reserve`` it stays in the reserve), first
    come first served (whole bars when the granularity applies to all); asset ``k`` sells at
    most ``min(cap_k, amt_k)`` units, each raising ``unit_k * (1 - h_k)``.

    Reads ``st.cap``, ``st.amt``, ``st.ukeep``, ``st.unit``, ``st.payable``, ``st.q_c``,
    ``st.navt``. Writes ``st.amt``, ``st.q_c``, ``st.sup``, ``st.waiting``, ``st.gout``,
    ``st.cin``, ``st.cout``, ``st.fsl``, ``st.payable``, ``st.outflow`` (plus ``served * NAV *
    cash_claim``), ``st.fee_cum`` (plus ``served * NAV * redeem_fee``) and the ``red_c`` row of
    ``st.row``. No-op on a closed day, or without opex and cash claims.
    """
    if not st.is_open:
        return
    has_cash_claims = bool(st.q_c.any())
    if not (r.opex_year > 0 or has_cash_claims):
        return
    F, amt, ukeep = r.field, st.amt, st.ukeep
    rr = np.minimum(st.cap, amt) * ukeep
    raisable = r.ones_k @ rr
    pay_opex = np.minimum(st.payable, raisable) if r.opex_year > 0 else r.zeros_n
    need = pay_opex
    if has_cash_claims:
        payout = st.navt * r.cash_claim
        want = np.minimum(st.q_c, (raisable - pay_opex) / payout)
        served_c = np.minimum(_floor_bars(want, r.g) if r.bars_all else want, st.q_c)
        need = pay_opex + served_c * payout
        st.outflow += served_c * payout
        if r.fee_r > 0:
            st.fee_cum += served_c * st.navt * r.fee_r
        st.q_c -= served_c
        st.sup -= served_c
        st.waiting -= served_c
        st.row[F["red_c"]] = served_c
    take = np.minimum(np.maximum(need - _before(rr), 0.0), rr)
    sold = take / ukeep
    np.maximum(amt - sold, 0.0, out=amt)
    paid = r.ones_k @ take
    st.gout += r.w_gold @ sold
    st.cin += r.w_noncash @ take
    st.cout += paid + r.w_hcut_cash @ sold
    haircut = r.w_hcut @ (sold * st.unit)
    if has_cash_claims and r.redeemer_bears_haircut:
        # the redeemers are paid the proceeds of the assets sold for them: their share of the
        # day's fire-sale haircut is deducted from the payout and stays in the reserve's cash
        share = np.divide(served_c * payout, need, out=np.zeros_like(need), where=need > 0)
        borne = haircut * share
        st.amt[r.first_cash] += borne
        st.cout -= borne
        st.outflow -= borne
        haircut = haircut - borne
    st.fsl += haircut
    st.payable -= pay_opex
    np.maximum(st.payable, 0.0, out=st.payable)


def mint(r: RunSetup, st: DayState) -> None:
    """5, open days only: mints, then the day's fees paid from outside the reserve are booked.

    Minted ``(base_mint_rate_per_day * max(0, 1 - mint_drawdown_sensitivity * dd_t) +
    mint_premium_sensitivity * max(0, p_{t-1} - mint_fee)) * supply_{t-1}`` tokens; minters
    deliver ``grams_per_token`` grams each into the first allocated-gold asset and pay
    ``mint_fee * NAV`` each. These fees and the redeem fees of :func:`pay_gold` are added to
    ``st.fee_cum``; they go to the issuer (not into the reserve) unless
    ``primary.fees_to_reserve``, in which case they are paid into the first ``usd_cash`` asset.

    Reads ``r.dd[t]``, ``st.p_prev``, ``st.supply_prev``, ``st.navt``, ``st.fees``. Writes the
    ``mint`` row of ``st.row``, ``st.amt`` (first allocated gold; first cash when the fees go to
    the reserve), ``st.gin``, ``st.sup``, ``st.cin``, ``st.fees``, ``st.fee_cum``. No-op on a
    closed day.
    """
    if not st.is_open:
        return
    rb, gpt = r.spec.redemption, r.spec.grams_per_token
    if r.minting:
        mshare = rb.base_mint_rate_per_day * np.maximum(0.0, 1.0 - rb.mint_drawdown_sensitivity * r.dd[st.t])
        if rb.mint_premium_sensitivity > 0:
            mshare = mshare + rb.mint_premium_sensitivity * np.maximum(0.0, st.p_prev - r.fee_m)
        minted = np.multiply(mshare, st.supply_prev, out=st.row[r.field["mint"]])
        st.amt[r.first_alloc] += minted * gpt
        st.gin += minted * gpt
        st.sup += minted
        f_m = r.fee_m * minted * st.navt
        st.fees = f_m if st.fees is None else st.fees + f_m
    if st.fees is not None:
        st.fee_cum += st.fees
        if r.fees_to_reserve:
            st.amt[r.first_cash] += st.fees
            st.cin += st.fees


def secondary_market(r: RunSetup, st: DayState) -> None:
    """7. Secondary market: the premium is the premium process's value plus a sell-driven part.

    *Process.* :meth:`models.premium.PremiumProcess.step` runs on the primary market's open days
    (the clock it is fitted on: one step per gold trading day), its band pulling on paths without
    a backlog and never clipping. On a closed day the process is one free step (no pull) from its
    value on the last open day, ``st.p_anchor``, and the next open day steps from that anchor
    again: a weekend's premia move like a day's, and Friday to Monday is one step.

    *Sell pressure.* Today's sells on the AMM pool and the redemption backlog push the price:
    ``shock_t = (pool price after the sells) - 1 - queue_discount_weight * backlog / supply``.
    The sell-driven part ``s_t = rho * s_{t-1} + shock_t`` decays at ``rho``, the process's
    reversion outside the band (``phi - band_pull``, 0 without a process), and patient
    arbitrageurs who buy, queue and redeem hold it at a floor ``-(redeem_fee + wait_cost_per_day
    * (d_t + lag + 1 / coverage))``, lowered along the pool curve by the sells beyond the
    arbitrage capacity (Shleifer & Vishny 1997): ``s_t >= floor_t``. The floor bounds the sell-
    driven discount, not the calibrated noise. Premium > -1.

    Reads ``st.q_g``, ``st.q_c``, ``st.sells``, ``st.sup``, ``st.p_anchor``, ``st.stress``, the
    ``lcr`` row, ``r.dd[t]``, ``r.to_open[t]``, ``r.gen``. Writes the ``bl`` (backlog, tokens) and
    ``prem`` (premium fraction) rows of ``st.row``, ``st.stress`` and, on an open day,
    ``st.p_anchor``.
    """
    F, t, row, sells, pool, zeros_n = r.field, st.t, st.row, st.sells, r.pool, r.zeros_n
    backlog = np.add(st.q_g, st.q_c, out=row[F["bl"]])
    shock = pool_price_ratio(pool, sells) - 1.0 if pool is not None and sells.any() else zeros_n
    if r.qdw > 0:
        shock = shock - (r.qdw * backlog) / np.maximum(st.sup, 1e-300)
    stress = r.stress_rho * st.stress + shock
    if r.wait_cost is not None:  # patient arbitrage: buy, queue, redeem after the wait
        floor = -(r.fee_r + r.wait_cost * (r.to_open[t] + r.lag + 1.0 / row[F["lcr"]]))
        if r.arb_cap is not None and pool is not None:  # capital for arb_cap tokens a day;
            excess = np.maximum(sells - r.arb_cap, 0.0)  # the rest slide down the pool curve
            if excess.any():
                floor = floor + pool_price_ratio(pool, excess) - 1.0
        stress = np.maximum(stress, np.minimum(floor, 0.0))
    st.stress = stress
    prem = row[F["prem"]]
    if r.proc is not None:
        band_open = (backlog <= 0) if st.is_open else False
        noise = r.proc.step(st.p_anchor, r.gen, drawdown=r.dd[t], market_open=band_open)
        if st.is_open:
            st.p_anchor = noise
        np.add(noise, stress, out=prem)
    else:
        prem[:] = stress
    np.maximum(prem, -1.0 + 1e-9, out=prem)


def record(r: RunSetup, st: DayState) -> None:
    """Record day ``st.t``: the day's flows (``dem``, ``ret``, ``acc_g``, ``sell``; skipped on
    day 0) and the end-of-day state into ``st.block[t]``.

    ``V = sum_k amt_k * unit_k - payable``; ``B = V / (supply * NAV)``; ``lambda = sum_k
    amt_k * unit_k * h_eff_k / (supply * NAV)`` (``h_eff`` = haircut, times the cash-redemption
    share for allocated gold); without liabilities ``B = inf``, ``lambda = 0``. Reads ``st.amt``,
    ``st.unit``, ``st.sup``, ``st.payable``, ``st.S``, the day fields. Writes ``st.row``'s
    ``V``, ``gold``, ``cash``, ``B``, ``lam`` rows and the running-state rows.
    """
    F, t = r.field, st.t
    row = st.block[t]
    if t > 0:
        row[F["dem"]], row[F["ret"]], row[F["acc_g"]], row[F["sell"]] = st.demand, st.returned, st.acc_g, st.sells
    amt = st.amt
    val = amt * st.unit
    liab = st.sup * r.nav[t]
    np.subtract(r.ones_k @ val, st.payable, out=row[F["V"]])
    np.dot(r.w_gold, amt, out=row[F["gold"]])
    np.dot(r.w_cash, amt, out=row[F["cash"]])
    np.divide(row[F["V"]], liab, out=row[F["B"]])
    np.divide(r.w_heff @ val, liab, out=row[F["lam"]])
    if not (liab > 0).all():  # every token redeemed: no liabilities
        gone = liab <= 0
        row[F["B"]][gone] = np.inf
        row[F["lam"]][gone] = 0.0
    row[: r.n_state] = st.S


DAILY_STEPS: tuple[Callable[[RunSetup, DayState], None], ...] = (
    demand,
    gate,
    whole_bars,
    refused_sold,
    settlement,
    costs,
    liquidity,
    eligibility,
    pay_gold,
    pay_cash,
    mint,
    secondary_market,
    record,
)
"""The steps of each model day ``t >= 1`` after :func:`start_day`, in order."""


def outcome(r: RunSetup, st: DayState) -> ReserveBackedOutcome:
    """The outcome of a finished run: ``(n_paths, H + 1)`` transposed views of ``st.block``
    (holder value and bad debt derived in one pass)."""
    s = r.spec
    F = r.field
    T = {k: st.block[:, i, :].T for k, i in F.items()}
    nav = r.nav.T
    n, t1, k_n = r.n, r.t1, r.k_n
    return ReserveBackedOutcome(
        backing_ratio=T["B"],
        reserve_value_usd=T["V"],
        holder_value_usd_per_token=nav * np.minimum(1.0, T["B"]) * (1.0 + T["prem"]),
        supply_tokens=T["supply"],
        liquidated=np.zeros((n, t1), dtype=bool),
        bad_debt_usd=np.maximum(0.0, T["supply"] * nav - T["V"]),
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
        asset_amounts=st.block[:, F["amt0"] : F["amt0"] + k_n, :].transpose(1, 2, 0),
        asset_names=tuple(a.name for a in s.reserve),
        market_open=r.open_.copy(),
        nav_usd_per_token=nav,
        grams_per_token=s.grams_per_token,
        redeem_fee=r.fee_r,
        redeem_cost=r.c_run,
        attestation_lag_days=s.attestation_lag_days,
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

    def run(
        self,
        gold_usd_per_oz: np.ndarray,
        *,
        calendar: pd.DatetimeIndex | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> ReserveBackedOutcome:
        """Run the token along gold price paths.

        Parameters
        ----------
        gold_usd_per_oz : ndarray, shape (n_paths, horizon_days + 1)
            Gold prices, USD per troy ounce, day 0 first.
        calendar : pd.DatetimeIndex of length horizon_days + 1, or None
            Dates of the model days (trading days or calendar days); decides when the primary
            market is open and the opex accrual. ``None``: every day open, ``1/days_per_year``.
        rng : numpy Generator, int seed or None
            Randomness of the premium process only (``None``: seed 0, reproducible; pass a
            distinct Generator per Monte Carlo chunk).

        Returns
        -------
        ReserveBackedOutcome
            Arrays ``(n_paths, horizon_days + 1)`` (returned as transposed views of day-major
            buffers).

        Raises
        ------
        ValueError
            If prices are not a 2-D array of finite positive numbers, or the calendar is not a
            strictly increasing DatetimeIndex of length horizon_days + 1.
        """
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 and x/0 are handled explicitly
            r = RunSetup.from_spec(self.spec, gold_usd_per_oz, calendar, rng, self.premium_process)
            st = DayState.initial(r)
            for t in range(1, r.t1):
                start_day(r, st, t)
                for step in DAILY_STEPS:
                    step(r, st)
            return outcome(r, st)
