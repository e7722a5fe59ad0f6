"""Gold-collateralised USD stablecoin (``kind = "gold_cdp"``, :class:`CdpStablecoin`).

Pure numerics (no I/O). Takes gold price paths ``gold_usd_per_oz`` shaped
``(n_paths, horizon_days + 1)`` (day 0 included) and returns a
:class:`models.token.outcome.TokenOutcome` whose arrays are all shaped
``(n_paths, horizon_days + 1)``; column 0 is the initial state. The tranches do not interact,
so each tranche's liquidation day is found in one vectorised pass over paths and days.

A USD stablecoin (peg 1 USD) minted against gold in collateralised debt positions, after the
MakerDAO Multi-Collateral Dai design (MakerDAO, "The Maker Protocol: MakerDAO's Multi-Collateral
Dai (MCD) System", 2020: liquidation ratio, liquidation penalty, collateral auctions, bad debt
("sin") when an auction does not cover the debt). The supply ``supply_usd`` equals the vaults'
total debt at day 0 and is split into tranches ``i`` (an aggregate of vaults) with debt
``D_i = debt_share_i * supply_usd`` and initial collateral ratio ``CR_i``; each tranche holds
``Q_i = CR_i * D_i / P_0`` troy ounces (``P_0`` = the path's day-0 price, so CR at day 0 is
exactly ``CR_i``). Each day ``t >= 1``, at the day's (closing) price ``P_t`` only:

* a live tranche with ``CR_t = Q_i * P_t / D_i < L`` (``liquidation_ratio``) is liquidated:
  its collateral is sold at ``P_t * (1 - liquidation_haircut)`` (market impact) until the "tab"
  ``D_i * (1 + liquidation_penalty)`` is raised or the collateral is gone. With gross proceeds
  ``G = Q_i * P_t * (1 - h)``: the debt repaid (coins burned) is ``min(D_i, G)``; the penalty
  collected by the protocol is ``clip(G - D_i, 0, D_i * penalty)``; any collateral left is
  returned to the vault owner; the bad debt is ``max(0, D_i - G)``. The tranche is closed.
  Hence bad debt arises exactly when ``CR_t < 1 / (1 - h)``, which, as ``CR_{t-1} >= L``, needs
  a one-day price gap ``P_t / P_{t-1} < 1 / (L * (1 - h))``.
* Bad debt is not burned: those coins stay in circulation, unbacked. Outstanding supply is
  ``sum of live debt + cumulative bad debt``. The penalty income (``cash_usd``) is reported but,
  conservatively, NOT used to absorb bad debt nor counted as backing.

Reported: ``backing_ratio = collateral value of live tranches / outstanding supply``,
``reserve_value_usd`` = that collateral value, ``holder_value_usd_per_token = max(0, 1 -
cumulative bad debt / outstanding supply)`` (the pro-rata claim in a global settlement: every live
tranche has ``CR >= L >= 1`` and so covers its own debt), ``liquidated`` = any tranche liquidated
so far (cumulative), ``bad_debt_usd`` cumulative. When no coin is outstanding (all debt repaid),
``backing_ratio`` is ``inf`` and holder value 1.

Not modelled (limitations): intraday prices (liquidation only at the daily close), auction
duration and keeper failure, feedback of liquidation volume on the gold price (the deleveraging
spirals of Klages-Mundt & Minca (2021), "(In)stability for the blockchain: deleveraging spirals
and stablecoin attacks", Cryptoeconomic Systems 1(2); here the haircut is a fixed fraction), new
vaults or top-ups, stability fees, surplus buffer and governance-token backstops.
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
    """Gold-collateralised USD stablecoin (CDP) model; mechanics in the module docstring
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
