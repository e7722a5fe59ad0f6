"""Frozen reference (tests only): the NumPy engine of the gold-collateralised USD stablecoin.

Pure numerics (no I/O): ``CdpStablecoin(spec).run(gold_usd_per_oz)`` liquidates vault tranches at
the daily close and returns a :class:`models.token.outcome.TokenOutcome` (MakerDAO MCD design).
Equations, assumptions and sources: docs/models/cdp.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
        rng: np.random.Generator | int | None = None,
    ) -> TokenOutcome:
        """Run the stablecoin along gold price paths.

        Parameters
        ----------
        gold_usd_per_oz : ndarray, shape (n_paths, horizon_days + 1)
            Gold prices, USD per troy ounce, day 0 first. Day 0 sets each tranche's collateral.
        calendar : pd.DatetimeIndex or None
            Accepted for the :class:`models.token.protocol.TokenModel` signature and ignored:
            liquidations depend only on each day's closing price, not on the date.
        rng : numpy Generator, int seed or None
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
        k = len(s.tranches)
        haircut = s.liquidation_haircut
        debt0 = np.array([tr.debt_share for tr in s.tranches]) * s.supply_usd
        cr0 = np.array([tr.collateral_ratio for tr in s.tranches])

        # Tranches do not interact (no price feedback), so each tranche's liquidation day is
        # the first day t >= 1 with Q_i * P_t < L * D_i; states are step functions of t.
        days = np.arange(t1)
        coll_a = np.zeros((n, t1))  # live collateral, oz
        debt_a = np.zeros((n, t1))  # live debt, USD
        bad_a = np.zeros((n, t1))  # cumulative bad debt, USD
        pen_a = np.zeros((n, t1))  # cumulative penalty income, USD
        out_a = np.zeros((n, t1))  # cumulative collateral out, oz
        liq_a = np.zeros((n, t1), dtype=bool)
        for i in range(k):
            coll_oz = cr0[i] * debt0[i] / p[:, 0]  # (n,)
            value = coll_oz[:, None] * p  # (n, t1)
            # CR_t < L, with the same relative tolerance as backing breaches: a price built as
            # p0 * exp(log1p(m)) lands a few ulps off p0 * (1 + m), which must not decide it
            below = value < s.liquidation_ratio * debt0[i] * (1.0 - BREACH_TOL)
            below[:, 0] = False
            hit = below.any(axis=1)
            tau = np.where(hit, below.argmax(axis=1), t1)  # liquidation day, t1 = never
            live = days[None, :] < tau[:, None]  # (n, t1)
            done = ~live
            v_tau = value[np.arange(n), np.minimum(tau, t1 - 1)]
            gross = v_tau * (1.0 - haircut)
            bad = np.where(hit, np.maximum(0.0, debt0[i] - gross), 0.0)
            pen = np.where(hit, np.clip(gross - debt0[i], 0.0, debt0[i] * s.liquidation_penalty), 0.0)
            coll_a += np.where(live, coll_oz[:, None], 0.0)
            debt_a += np.where(live, debt0[i], 0.0)
            bad_a += done * bad[:, None]
            pen_a += done * pen[:, None]
            out_a += done * coll_oz[:, None]
            liq_a |= done

        supply = debt_a + bad_a
        reserve = coll_a * p
        has_supply = supply > 0
        safe = np.where(has_supply, supply, 1.0)
        backing = np.where(has_supply, reserve / safe, np.inf)
        holder = np.where(has_supply, np.maximum(0.0, 1.0 - bad_a / safe), 1.0)
        return TokenOutcome(
            backing_ratio=backing,
            reserve_value_usd=reserve,
            holder_value_usd_per_token=holder,
            supply_tokens=supply,
            liquidated=liq_a,
            bad_debt_usd=bad_a,
            gold_reserve_g=coll_a * TROY_OUNCE_G,
            cash_usd=pen_a,
            gold_in_g=np.zeros((n, t1)),
            gold_out_g=out_a * TROY_OUNCE_G,
            symbol=s.symbol,
        )
