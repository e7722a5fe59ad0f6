"""Gold-collateralised USD stablecoin (``kind = "gold_cdp"``, :class:`CdpStablecoin`).

Pure numerics (no I/O): ``CdpStablecoin(spec).run(gold_usd_per_oz)`` liquidates vault tranches at
the daily close and returns a :class:`models.token.outcome.TokenOutcome` (MakerDAO MCD design).
Equations, assumptions and sources: docs/models/cdp.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from models.checks import check_price_paths
from models.token.outcome import BREACH_TOL, TokenOutcome
from models.token.spec import CdpStablecoinSpec
from models.units import TROY_OUNCE_G

__all__ = ["CdpStablecoin"]


class CdpStablecoin:
    """Gold-collateralised USD stablecoin (CDP) model; mechanics in docs/models/cdp.md
    (MakerDAO MCD liquidation design).

    Parameters
    ----------
    spec : CdpStablecoinSpec

    Raises
    ------
    ValueError
        If ``spec`` is not a CdpStablecoinSpec.
    """

    def __init__(self, spec: CdpStablecoinSpec) -> None:
        if not isinstance(spec, CdpStablecoinSpec):
            raise ValueError(f"spec: expected CdpStablecoinSpec, got {type(spec).__name__}")
        self.spec = spec

    def run(
        self,
        gold_usd_per_oz: np.ndarray,
        *,
        calendar: pd.DatetimeIndex | None = None,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
        first_path: int = 0,
    ) -> TokenOutcome:
        """Run the stablecoin along gold price paths.

        Parameters
        ----------
        gold_usd_per_oz : ndarray, shape (n_paths, horizon_days + 1)
            Gold prices, USD per troy ounce, day 0 first. Day 0 sets each tranche's collateral.
        calendar : pd.DatetimeIndex or None
            Accepted for the :class:`models.token.protocol.TokenModel` signature and ignored:
            liquidations depend only on each day's closing price, not on the date.
        rng : numpy Generator, SeedSequence, int seed or None; first_path : int
            Accepted and ignored: the model is deterministic in the prices.

        Returns
        -------
        TokenOutcome
            Arrays shaped ``(n_paths, horizon_days + 1)``; ``supply_tokens`` in coins (USD face).

        Raises
        ------
        ValueError
            If the array is not 2-D or holds a non-finite or non-positive price.
        """
        s = self.spec
        p = check_price_paths(gold_usd_per_oz)
        n, t1 = p.shape
        haircut = s.liquidation_haircut
        debt0 = np.array([tr.debt_share for tr in s.tranches]) * s.supply_usd
        cr0 = np.array([tr.collateral_ratio for tr in s.tranches])

        # Tranches do not interact (no price feedback), so each tranche's liquidation day is
        # the first day t >= 1 with Q_i * P_t < L * D_i; states are step functions of t.
        coll_a = np.empty((n, t1))  # live collateral, oz
        debt_a = np.empty((n, t1))  # live debt, USD
        bad_a = np.empty((n, t1))  # cumulative bad debt, USD
        pen_a = np.empty((n, t1))  # cumulative penalty income, USD
        out_a = np.empty((n, t1))  # cumulative collateral out, oz
        liq_a = np.empty((n, t1), dtype=np.bool_)
        _liquidate(
            p,
            debt0,
            cr0,
            s.liquidation_ratio,
            haircut,
            s.liquidation_penalty,
            coll_a,
            debt_a,
            bad_a,
            pen_a,
            out_a,
            liq_a,
        )
        supply, reserve, backing, holder = (np.empty((n, t1)) for _ in range(4))
        _records(p, debt_a, bad_a, coll_a, out_a, TROY_OUNCE_G, supply, reserve, backing, holder)
        return TokenOutcome(
            backing_ratio=backing,
            reserve_value_usd=reserve,
            holder_value_usd_per_token=holder,
            supply_tokens=supply,
            liquidated=liq_a,
            bad_debt_usd=bad_a,
            gold_reserve_g=coll_a,
            cash_usd=pen_a,
            gold_in_g=np.zeros((n, t1)),
            gold_out_g=out_a,
            symbol=s.symbol,
        )


@njit(cache=True, nogil=True)
def _records(
    p: np.ndarray,
    debt_a: np.ndarray,
    bad_a: np.ndarray,
    coll_a: np.ndarray,
    out_a: np.ndarray,
    g_per_oz: float,
    supply: np.ndarray,
    reserve: np.ndarray,
    backing: np.ndarray,
    holder: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """In one pass over ``(n, t1)`` arrays: ``supply = debt + bad`` (USD), ``reserve = coll * p``
    (USD), ``backing = reserve / supply`` (inf without supply), ``holder = max(0, 1 - bad /
    supply)`` (1 without supply); ``coll_a`` and ``out_a`` turned from oz into grams in place."""
    n, t1 = p.shape
    for r in range(n):
        for t in range(t1):
            sup = debt_a[r, t] + bad_a[r, t]
            res = coll_a[r, t] * p[r, t]
            supply[r, t] = sup
            reserve[r, t] = res
            if sup > 0:
                backing[r, t] = res / sup
                holder[r, t] = max(0.0, 1.0 - bad_a[r, t] / sup)
            else:
                backing[r, t] = np.inf
                holder[r, t] = 1.0
            coll_a[r, t] = coll_a[r, t] * g_per_oz
            out_a[r, t] = out_a[r, t] * g_per_oz


@njit(cache=True, nogil=True)
def _liquidate(
    p: np.ndarray,
    debt0: np.ndarray,
    cr0: np.ndarray,
    ratio: float,
    haircut: float,
    penalty: float,
    coll_a: np.ndarray,
    debt_a: np.ndarray,
    bad_a: np.ndarray,
    pen_a: np.ndarray,
    out_a: np.ndarray,
    liq_a: np.ndarray,
) -> None:  # pragma: no cover - compiled; checked against the reference engine in the tests
    """Fill the ``(n, t1)`` state arrays path by path: tranche ``i`` holds ``cr0_i * D_i / P_0``
    oz and is liquidated on the first day ``t >= 1`` with ``value < ratio * D_i * (1 - BREACH_TOL)``, selling its
    collateral at ``value * (1 - haircut)``: bad debt ``max(0, D_i - gross)``, penalty income
    ``clip(gross - D_i, 0, D_i * penalty)``, its collateral out; live tranches add their
    collateral and debt."""
    n, t1 = p.shape
    for r in range(n):
        for t in range(t1):
            coll_a[r, t] = 0.0
            debt_a[r, t] = 0.0
            bad_a[r, t] = 0.0
            pen_a[r, t] = 0.0
            out_a[r, t] = 0.0
            liq_a[r, t] = False
        for i in range(debt0.shape[0]):
            d = debt0[i]
            coll = cr0[i] * d / p[r, 0]
            tau = t1
            for t in range(1, t1):
                if coll * p[r, t] < ratio * d * (1.0 - BREACH_TOL):
                    tau = t
                    break
            bad, pen = 0.0, 0.0
            if tau < t1:
                gross = coll * p[r, tau] * (1.0 - haircut)
                bad = max(0.0, d - gross)
                pen = min(max(gross - d, 0.0), d * penalty)
            for t in range(tau):
                coll_a[r, t] += coll
                debt_a[r, t] += d
            for t in range(tau, t1):
                bad_a[r, t] += bad
                pen_a[r, t] += pen
                out_a[r, t] += coll
                liq_a[r, t] = True
