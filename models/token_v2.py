"""Token model v2: issuer balance sheet, primary market, redemption runs and secondary market.

Pure numerics: the only I/O is :func:`load_token_spec_v2` reading one TOML spec file. v1
(:mod:`models.token`) is unchanged; :class:`TokenV2Outcome` extends its :class:`TokenOutcome`, so
code written for v1 outcomes (``models.metrics.summarise_paths``, ``breached``, ``describe``)
keeps working.

``TokenV2(spec).run(gold_usd_per_oz, calendar, rng)`` takes gold paths ``(n_paths, H + 1)``
(day 0 first), loops over the ``H`` days and is vectorised over paths. Every outcome array is
``(n_paths, H + 1)``; column 0 is the initial state (no flows on day 0).

Calendar and market hours
-------------------------
``calendar`` is a ``pd.DatetimeIndex`` of the ``H + 1`` model days, or ``None``. Both clocks
are supported: **trading days** (no weekend dates; every day is open) and **calendar days**
(Saturdays and Sundays present). The primary market (mints, redemptions, asset sales for cash)
is open on a day when ``primary.market_hours`` is ``"always"``, or, for ``"weekdays_only"`` and
``"london_hours"``, when the date is Monday-Friday. ``"london_hours"`` is the weekday clock of
the London gold market (Paxos: PAXG "purchases and sales ... during the operational hours of the
London gold market", closed at weekends, https://www.paxos.com/paxg-user-guide/); UK bank
holidays are not modelled. ``primary.cutoff_share`` is the share of a day's requests received
before the processing cut-off (arrivals uniform over the day); the rest count from the next open
day (Paxos: orders after 5 pm ET settle a business day later). With ``calendar=None`` every day
is open and one model day is ``1 / days_per_year`` years; with a calendar, the opex of a step is
``opex_usd_per_year * (elapsed calendar days) / 365.25``. Requests made on a closed day are
recorded that day and queue to the next open day (Monday). Holders' flows (base rate, drawdown,
runs) arrive every model day; peg arbitrage redemptions and mints only on open days.

Reserve and liquidity
---------------------
The reserve is a list of assets ``k`` of kind ``allocated_gold`` / ``unallocated_gold`` (amount
in grams, valued at the day's gold price) or ``usd_cash`` / ``tbills`` (amount in USD at par).
On an open day asset ``k`` converts to cash at most ``cap_k = liquidity_per_day * holding`` units
(``liquidity_unit = "fraction"``, of the start-of-day holding, so an untouched asset runs down
geometrically: after ``d`` days at most ``A (1 - (1 - l)^d)`` is sold) or
``cap_k = min(liquidity_per_day, holding)`` (``"amount"``, grams or USD per day), and each unit
sold raises ``unit_value * (1 - stressed_haircut)``; the haircut is the fire-sale loss. Cash is
raised by a waterfall in the order the assets are listed (the issuer's liquidation order).
Redemptions in gold (whole bars) draw allocated gold directly (no sale, no haircut), then
unallocated gold is allocated within its daily capacity at its haircut (a credit/allocation
cost). Cash redemptions pay ``NAV * (1 - redeem_fee)`` per token from the waterfall.

Each day ``t >= 1``, in this order:

1. **Demand.** ``dd_t = 1 - P_t / max_{s<=t} P_s``, ``p = premium_{t-1}``, ``free = supply -
   queue`` (tokens not already waiting). Flow share ``min(base_rate_per_day`` (0 after day
   ``base_rate_until_day`` when set) ``+
   drawdown_sensitivity * dd_t + [open] peg_sensitivity * max(0, -p - redeem_fee),
   max_share_per_day)`` of ``free``. **Run** (global game, below): the cumulative share ``R_t`` of
   the run-prone mass ``M = run_prone_share * supply_0`` that has run rises to
   ``max(R_{t-1}, Phi((theta*_t - theta_t) / sigma))``; ``(R_t - R_{t-1}) * M`` tokens run, a
   share ``market_sell_share`` of them by selling on the secondary market, the rest by asking
   the issuer. Requests are capped at ``free``. With a redemption gate
   (``primary.redemption_limit_share_per_day = L``) at most ``L * supply_{t-1}`` of them are
   accepted; the rest are refused, count as returned and are sold on the secondary market (the
   holders stay ``free`` and may ask again the next day).
2. **Whole bars.** With granularity ``g`` and minimum ``m`` (``granularity_applies_to =
   "all"``, XAUT): the day's requests, pooled as one order, are accepted in whole bars,
   ``a = floor(D / g) * g`` if ``a >= m`` else 0; the remainder ``D - a`` is **returned** to the
   holders, who sell it on the secondary market (a 1000-token request with ``g = m = 430``
   redeems 860 and returns 140). Accepted tokens split into a gold part, whole bars of
   ``(1 - cash_redemption_share) * a``, and a cash part (the rest, also whole bars). With
   ``"gold"`` (PAXG) only the gold part is in bars; its sub-bar remainder is redeemed in cash.
3. **Pipeline.** Accepted tokens wait ``settlement_lag_days`` open days (``cutoff_share`` of
   them; the rest one open day more), then join the FIFO queue of eligible claims ("backlog"
   when unserved). On a closed day nothing moves.
4. **Service (open days).** Gold claims first (allocated gold, then unallocated within its
   capacity, whole bars), then opex payable (senior), then cash claims by the waterfall, whole
   bars where ``g`` applies to all. First come, first served at par (sequential service,
   Diamond & Dybvig (1983), "Bank runs, deposit insurance, and liquidity", J. Political Economy
   91(3), 401-419): while assets last, early redeemers are paid in full.
5. **Mints (open days).** ``(base_mint_rate_per_day * max(0, 1 - mint_drawdown_sensitivity *
   dd_t) + mint_premium_sensitivity * max(0, p - mint_fee))`` times the start-of-day supply;
   minters deliver
   ``grams_per_token`` grams each into the first allocated-gold asset. Fees (mint, and redeem
   fees of gold redemptions) are paid in USD into the first ``usd_cash`` asset.
6. **Opex** accrues every day into a payable (a senior claim, deducted from the reserve value)
   paid on open days.
7. **Secondary market.** The premium to NAV follows the premium process of
   :class:`models.market.PremiumProcess`, stepped daily with feedback
   (:meth:`~models.market.PremiumProcess.step`): ``p_t = m + phi (p_{t-1} - m) + sigma e_t + J_t
   + shock_t`` (jump intensity rising with the gold drawdown), with ``shock_t = (pool price after
   selling S_t) - 1 - queue_discount_weight * backlog_t / supply_t``: ``S_t`` the tokens sold
   today (run sells and returned sub-bar remainders), on the AMM pool from the fair price, in
   units where the fair price is 1 (:class:`models.market.ConstantProductPool` or
   :class:`models.market.ConcentratedLiquidityPool`; beyond a concentrated range the price stops
   at its lower bound and the unfilled sells are not executed); the deviation then decays at
   rate ``phi``. The no-arbitrage band (:func:`models.market.arbitrage_band` from the primary
   market's fees and lag, unless the spec gives one) binds only on open days on paths without a
   backlog: the discount arbitrage needs redemptions to be paid. A patient arbitrageur still
   buys and queues when the discount pays for the wait: ``p_t >= floor_t = -(redeem_fee +
   wait_cost_per_day * (d_t + settlement_lag_days + 1 / liquidity_coverage_t))``, ``d_t`` the
   days to the next open day (0 when open) and ``1 / liquidity_coverage`` the days the waiting
   claims take at today's liquidity. Arbitrage capital is limited (Shleifer & Vishny (1997),
   "The limits of arbitrage", J. Finance 52(1)): arbitrageurs hold the price at the floor for at
   most ``K = arbitrage_capacity_tokens_per_day`` tokens a day, and the sells beyond ``K`` push
   it down the pool curve from there: ``p_t >= floor_t + (pool price after selling
   (S_t - K)+) - 1`` (continuous and monotone in ``S_t`` and in the pool depth). Without a
   premium process in the spec ``p_t = shock_t`` (``phi = 0``, no noise, no band), floored
   likewise.

Redemption runs (global game)
-----------------------------
A holder of the run-prone mass observes ``x_i = theta + sigma * e_i``, ``e_i ~ N(0, 1)``, of the
fundamental ``theta_t = (B_j - 1) + premium_weight * min(p_{t-1} + redeem_fee, 0) -
queue_weight * backlog_{t-1} / supply_{t-1}`` (the discount beyond the fee, not day-to-day
premium noise, which the ratchet below would accumulate), with ``B_j`` the backing ratio of the
last attestation, ``j = max(0, t - 1 - attestation_lag_days)``. Redeeming pays ``-c`` (``c = redeem_fee +
switching_cost``); staying pays ``theta - lambda * l`` when a share ``l`` of holders runs, where
``lambda_j = sum_k value_k * h_k / liabilities`` is the run externality: what stayers lose if
everyone runs and the reserve is sold at its stressed haircuts (allocated gold counts only for
the cash-redemption share, the rest is delivered in kind). This is the linear global game of
Morris & Shin (1998), "Unique equilibrium in a model of self-fulfilling currency attacks", AER
88(3), 587-597, applied to redemptions as in Goldstein & Pauzner (2005), "Demand-deposit
contracts and the probability of bank runs", J. Finance 60(3), 1293-1327 (there with the
non-linear payoffs of a Diamond-Dybvig bank). With a diffuse prior the marginal holder at the
threshold believes ``l`` is uniform on [0, 1] (the Laplacian belief, Morris & Shin (2003),
"Global games: theory and applications", in Advances in Economics and Econometrics, 8th World
Congress, Cambridge University Press, sec. 2), so the unique equilibrium threshold is
``theta* = lambda / 2 - c`` (:func:`laplacian_threshold`) and the share of holders whose signal
is below it is ``Phi((theta* - theta) / sigma)`` (:func:`run_share`). ``R`` never falls (a
holder who has redeemed is gone); the day-0 level ``R_0`` is the steady state (no demand).

Reported
--------
``backing_ratio = (sum_k value_k - opex payable) / (supply * NAV)``; ``backing_ratio_g =
gold grams / (supply * grams_per_token)``; ``holder_value_usd_per_token = NAV * min(1, B) *
(1 + p)`` (what a holder realises on the market today); ``redemption_value_usd_per_token =
NAV * (1 - redeem_fee) * min(1, B)`` (v1's measure); ``bad_debt_usd = max(0, supply * NAV -
reserve)``, the uncovered liabilities (a level, not cumulative); ``liquidated`` is all False.
Liquidity: ``liquid_reserve_usd`` = allocated gold deliverable in kind (if any redemption is in
gold) plus one open day's cash-raising capacity (after haircuts), from start-of-day holdings;
``stressed_outflow_usd`` = all waiting claims (queue and pipeline, after the day's requests) at
NAV plus the opex payable; ``liquidity_coverage`` = the smaller of the gold-side and cash-side
ratios of resources to claims (a side without claims does not bind; ``inf`` without any claim;
on a closed day the coverage the issuer would have if the market opened).
:meth:`TokenV2Outcome.wait_days`: model days until the last token accepted up to day t is paid
(FIFO), NaN if not within the horizon: the days needed to meet a redemption wave.

Identities (tested): ``redemption_demand = accepted + returned``; ``queue_t - queue_{t-1} =
accepted_t - redeemed_t``; ``supply_t - supply_{t-1} = minted_t - redeemed_t``; gold:
``gold_t - gold_0 = gold_in - gold_out``; cash (``usd_cash`` assets): ``cash_t - cash_0 =
cash_in - cash_out``.

Limitations: intraday timing, individual (non-pooled) bar requests and actual bar weights
(385-415 oz for 430-token XAUT requests), UK holidays, price impact of fire sales on gold,
feedback of the queue into the premium process's own parameters, issuer equity/backstops.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.special import ndtr

from models.checks import check_price_paths
from models.market import (
    ConcentratedLiquidityPool,
    ConstantProductPool,
    PremiumProcess,
    arbitrage_band,
)
from models.token import TokenOutcome, _format_errors
from models.units import TROY_OUNCE_G

__all__ = [
    "ASSET_KINDS",
    "AmmSpec",
    "ConcentratedAmmSpec",
    "ConfidenceSpec",
    "ConstantProductAmmSpec",
    "PrimaryMarketSpec",
    "RedemptionBehaviourSpec",
    "ReserveAssetSpec",
    "SecondaryMarketSpec",
    "TokenV2",
    "TokenV2Outcome",
    "TokenV2Spec",
    "laplacian_threshold",
    "load_token_spec_v2",
    "market_open_days",
    "parse_token_spec_v2",
    "run_share",
    "whole_bar_split",
    "with_redemption_share",
]

SPEC_VERSION = 2
"""The only spec-file version this module reads."""

ASSET_KINDS = ("allocated_gold", "unallocated_gold", "usd_cash", "tbills")
"""Reserve asset kinds; gold kinds are in grams, the others in USD."""

_GOLD_KINDS = ("allocated_gold", "unallocated_gold")
_BAR_EPS = 1e-9  # absorbs float noise when counting whole bars (859.9999999 tokens = 2 bars of 430)

_Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
_Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ReserveAssetSpec(_Spec):
    """One reserve asset.

    ``amount`` is grams for ``allocated_gold``/``unallocated_gold`` and USD for
    ``usd_cash``/``tbills``. ``liquidity_per_day``: with ``liquidity_unit = "fraction"`` the
    share (0..1) of the start-of-day holding convertible to cash per open day; with
    ``"amount"`` the grams or USD convertible per open day. ``stressed_haircut`` is the fraction
    of the value lost when converting (fire-sale discount). ``custodian`` is a label.
    Raises ``pydantic.ValidationError`` naming the field.
    """

    name: str = Field(min_length=1)
    kind: Literal["allocated_gold", "unallocated_gold", "usd_cash", "tbills"]
    amount: float = Field(ge=0, description="Grams (gold kinds) or USD (usd_cash, tbills) at day 0.")
    liquidity_per_day: float = Field(ge=0, description="Daily conversion capacity (see liquidity_unit).")
    liquidity_unit: Literal["fraction", "amount"] = "fraction"
    stressed_haircut: _Fraction = Field(description="Value lost per unit converted, fraction.")
    custodian: str = ""

    @model_validator(mode="after")
    def _fraction_le_one(self) -> ReserveAssetSpec:
        if self.liquidity_unit == "fraction" and self.liquidity_per_day > 1.0:
            raise ValueError(
                f"liquidity_per_day={self.liquidity_per_day} must be <= 1 when liquidity_unit is 'fraction'"
            )
        return self

    @property
    def is_gold(self) -> bool:
        """True for gold kinds (amount in grams)."""
        return self.kind in _GOLD_KINDS


class PrimaryMarketSpec(_Spec):
    """Primary market: fees (fractions of NAV), bar rules, settlement lag, market hours.

    ``min_redemption_tokens``/``redemption_granularity_tokens`` (0 = none): XAUT 430/430 (one
    ~400 oz London Good Delivery bar, whole bars only). ``granularity_applies_to``: ``"all"``
    (every redemption in whole bars, the remainder returned) or ``"gold"`` (only in-kind gold
    redemptions; the sub-bar remainder is redeemed in cash). ``settlement_lag_days``: open days
    between acceptance and eligibility. ``cutoff_share``: share of a day's requests before the
    processing cut-off. ``cash_redemption_share``: share of redemptions paid in USD.
    ``redemption_limit_share_per_day`` (``None`` = no limit): the issuer's redemption gate, the
    most it accepts on one model day as a share of the day's opening supply; requests beyond it
    are refused and their holders sell them on the secondary market (counted as returned).
    """

    mint_fee: _Fraction
    redeem_fee: _Fraction
    min_redemption_tokens: float = Field(default=0.0, ge=0)
    redemption_granularity_tokens: float = Field(default=0.0, ge=0)
    granularity_applies_to: Literal["all", "gold"] = "all"
    settlement_lag_days: int = Field(default=0, ge=0, le=60)
    market_hours: Literal["always", "weekdays_only", "london_hours"] = "weekdays_only"
    cutoff_share: float = Field(default=1.0, gt=0.0, le=1.0)
    cash_redemption_share: _Share = 0.0
    redemption_limit_share_per_day: float | None = Field(default=None, gt=0.0, le=1.0)


class ConstantProductAmmSpec(_Spec):
    """Constant-product pool (Uniswap v2) with ``reserve_tokens`` tokens at the fair price."""

    kind: Literal["constant_product"]
    reserve_tokens: float = Field(gt=0)
    fee: _Fraction = 0.003


class ConcentratedAmmSpec(_Spec):
    """Uniswap v3 single-range position; prices relative to fair value (fair = 1).

    ``liquidity`` ``L`` equals the virtual token reserve at the fair price (``x = L / sqrt(P)``);
    ``price_lower < 1 < price_upper``.
    """

    kind: Literal["concentrated"]
    liquidity: float = Field(gt=0)
    price_lower: float = Field(gt=0, lt=1)
    price_upper: float = Field(gt=1)
    fee: _Fraction = 0.003


AmmSpec = Annotated[ConstantProductAmmSpec | ConcentratedAmmSpec, Field(discriminator="kind")]
"""Either AMM pool spec, discriminated on ``kind``."""


class SecondaryMarketSpec(_Spec):
    """Secondary market: premium process parameters (``PremiumProcess.to_dict`` form of
    :mod:`models.market`; ``None`` = premium 0 plus feedback terms), optional AMM pool, the
    daily premium pressure per unit of backlog share of supply, ``wait_cost_per_day``, the
    return (fraction of NAV per day) a patient arbitrageur needs to buy and queue for redemption
    (sets the discount floor; ``None``: no floor), and ``arbitrage_capacity_tokens_per_day``, the
    tokens such arbitrageurs can absorb per day (``None``: unlimited; limited arbitrage capital,
    Shleifer & Vishny (1997), "The limits of arbitrage", J. Finance 52(1), 35-55)."""

    premium: dict[str, Any] | None = None
    amm: AmmSpec | None = None
    queue_discount_weight: float = Field(default=0.0, ge=0)
    wait_cost_per_day: float | None = Field(
        default=0.0005, ge=0, description="Patient-arbitrage floor: required return per day waited (None: no floor)."
    )
    arbitrage_capacity_tokens_per_day: float | None = Field(
        default=None, ge=0, description="Tokens patient arbitrageurs absorb per day at the floor (None: unlimited)."
    )

    @model_validator(mode="after")
    def _premium_parses(self) -> SecondaryMarketSpec:
        if self.premium is not None:
            _premium_process(self.premium)  # raises ValueError naming the problem
        return self


class ConfidenceSpec(_Spec):
    """Global-game run parameters (see module docstring).

    ``run_prone_share``: share of day-0 supply held by holders who play the run game;
    ``signal_noise_sd``: sigma of private signals of the fundamental (NAV fractions);
    ``premium_weight``/``queue_weight``: weights of the discount beyond the redeem fee and of the
    backlog share in the fundamental; ``switching_cost``: cost of redeeming beyond the fee;
    ``market_sell_share``: share of runners who sell on the market instead of redeeming.
    """

    run_prone_share: _Share = 0.0
    signal_noise_sd: float = Field(default=0.01, gt=0)
    premium_weight: float = Field(default=0.0, ge=0)
    queue_weight: float = Field(default=1.0, ge=0)
    switching_cost: float = Field(default=0.0, ge=0)
    market_sell_share: _Share = 0.0


class RedemptionBehaviourSpec(_Spec):
    """Holder flows: daily shares of supply (fractions) and their sensitivities."""

    base_rate_per_day: _Share
    base_rate_until_day: int | None = Field(
        default=None, ge=1, description="Last model day of the base flow (None: every day); a wave that ends."
    )
    drawdown_sensitivity: float = Field(default=0.0, ge=0)
    peg_sensitivity: float = Field(default=0.0, ge=0, description="Extra share per unit of discount beyond the fee.")
    max_share_per_day: _Share = 1.0
    base_mint_rate_per_day: _Share = 0.0
    mint_drawdown_sensitivity: float = Field(default=0.0, ge=0)
    mint_premium_sensitivity: float = Field(default=0.0, ge=0)
    confidence: ConfidenceSpec = ConfidenceSpec()


class TokenV2Spec(_Spec):
    """Spec v2 of a gold-backed token (TOML ``spec_version = 2``; tables ``[[reserve]]``,
    ``[primary]``, ``[secondary]``, ``[secondary.amm]``, ``[redemption]``,
    ``[redemption.confidence]``).

    Needs at least one ``allocated_gold`` asset (mints deliver into the first) and one
    ``usd_cash`` asset (fees are paid into the first; its amount may be 0); asset names unique.
    Raises ``pydantic.ValidationError`` (a ValueError) naming the field otherwise.
    """

    spec_version: Literal[2]
    kind: Literal["gold_backed"]
    name: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    description: str = ""
    grams_per_token: float = Field(gt=0, description="Grams per token (31.1034768 for 1 troy oz).")
    supply_tokens: float = Field(gt=0)
    opex_usd_per_year: float = Field(default=0.0, ge=0)
    days_per_year: float = Field(default=252.0, gt=0, description="Model days per year without a calendar.")
    attestation_lag_days: int = Field(default=0, ge=0, le=366)
    reserve: list[ReserveAssetSpec] = Field(min_length=1)
    primary: PrimaryMarketSpec
    secondary: SecondaryMarketSpec = SecondaryMarketSpec()
    redemption: RedemptionBehaviourSpec

    @model_validator(mode="after")
    def _check_reserve(self) -> TokenV2Spec:
        names = [a.name for a in self.reserve]
        if len(set(names)) != len(names):
            raise ValueError(f"reserve: asset names must be unique, got {names}")
        kinds = {a.kind for a in self.reserve}
        for need in ("allocated_gold", "usd_cash"):
            if need not in kinds:
                raise ValueError(f"reserve: needs at least one asset of kind '{need}' (amount may be 0)")
        return self

    @property
    def initial_gold_coverage(self) -> float:
        """Gold grams in the reserve over grams owed at day 0 (1.0 = fully gold-backed)."""
        g = math.fsum(a.amount for a in self.reserve if a.is_gold)
        return g / (self.supply_tokens * self.grams_per_token)


def with_redemption_share(spec: TokenV2Spec, share: float, horizon_days: int) -> TokenV2Spec:
    """A copy of ``spec`` in which holders request exactly ``share`` of the day-0 supply over
    ``horizon_days`` model days and nothing after (the redemption axis of a reverse stress test,
    and the redemption wave of the liquidity stress test: run the copy for longer to see the
    claims of the wave settle).

    Holders request ``base_rate_per_day * free`` a day (``free`` = supply not already waiting;
    see the module docstring, step 1). Without other flows ``free`` shrinks by the accepted
    requests only, so after ``h`` days the cumulative request is ``supply_0 * (1 - (1 - r)^h)``;
    the copy sets ``r = 1 - (1 - share)^(1 / h)`` (computed as ``-expm1(log1p(-share) / h)``) so
    this equals ``share * supply_0``; ``base_rate_until_day = h`` ends the flow there. To keep
    the share exactly the one requested it also sets
    to 0 every other source of requests or supply: ``drawdown_sensitivity``,
    ``peg_sensitivity``, ``confidence.run_prone_share`` (no runs), ``base_mint_rate_per_day``
    and ``mint_premium_sensitivity`` (no mints), and raises ``max_share_per_day`` to ``r`` if it
    was lower. Everything else (reserve, primary market, secondary market, opex) is unchanged.
    Caveat: with whole-bar redemptions (``redemption_granularity_tokens > 0``,
    ``granularity_applies_to = "all"``) the sub-bar remainder of a day's request is returned,
    stays ``free`` and is requested again later, so the accepted share can differ slightly.

    Parameters
    ----------
    spec : TokenV2Spec
    share : float
        Fraction of the day-0 supply requested over the horizon, in [0, 1].
    horizon_days : int
        Model days, >= 1.

    Returns
    -------
    TokenV2Spec
        A new (frozen) spec; ``spec`` is not modified.

    Raises
    ------
    ValueError
        If ``spec`` is not a TokenV2Spec, ``share`` is not in [0, 1] or ``horizon_days`` is not
        an integer >= 1.
    """
    if not isinstance(spec, TokenV2Spec):
        raise ValueError(f"spec: expected TokenV2Spec, got {type(spec).__name__}")
    if isinstance(share, bool) or not isinstance(share, (int, float, np.floating)) or not 0.0 <= float(share) <= 1.0:
        raise ValueError(f"share: expected a fraction in [0, 1], got {share!r}")
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, np.integer)) or horizon_days < 1:
        raise ValueError(f"horizon_days: expected an integer >= 1, got {horizon_days!r}")
    rate = float(-np.expm1(np.log1p(-float(share)) / int(horizon_days))) if share < 1.0 else 1.0
    rate = min(max(rate, 0.0), 1.0)
    rb = spec.redemption
    redemption = rb.model_copy(
        update={
            "base_rate_per_day": rate,
            "base_rate_until_day": int(horizon_days),
            "drawdown_sensitivity": 0.0,
            "peg_sensitivity": 0.0,
            "max_share_per_day": max(rb.max_share_per_day, rate),
            "base_mint_rate_per_day": 0.0,
            "mint_premium_sensitivity": 0.0,
            "confidence": rb.confidence.model_copy(update={"run_prone_share": 0.0}),
        }
    )
    return spec.model_copy(update={"redemption": redemption})


def _premium_process(params: dict[str, Any]) -> PremiumProcess:
    try:
        return PremiumProcess.from_dict(dict(params))
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"premium: {exc}") from exc


def parse_token_spec_v2(data: dict[str, Any], where: str = "spec") -> TokenV2Spec:
    """Validate a v2 token spec given as a mapping (same rules as :func:`load_token_spec_v2`).

    Raises ValueError naming ``where`` and the field.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    if "spec_version" not in data:
        raise ValueError(f"{where}: field 'spec_version' is missing (expected {SPEC_VERSION})")
    v = data["spec_version"]
    if v == 1 and not isinstance(v, bool):
        raise ValueError(
            f"{where}: field 'spec_version' = 1 is a v1 spec; read it with models.token.load_token_spec"
        )
    if v != SPEC_VERSION or isinstance(v, bool):
        raise ValueError(
            f"{where}: field 'spec_version' = {v!r} is not supported (this code reads version {SPEC_VERSION})"
        )
    try:
        return TokenV2Spec.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{where}: {_format_errors(exc)}") from exc


def load_token_spec_v2(path: str | Path) -> TokenV2Spec:
    """Read a v2 token spec from a TOML file (stdlib ``tomllib``).

    Parameters
    ----------
    path : str or Path
        TOML with ``spec_version = 2``, ``kind = "gold_backed"`` and the fields of
        :class:`TokenV2Spec` (see ``specs/v2/*.toml``).

    Returns
    -------
    TokenV2Spec

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Naming the file and the field (e.g. ``reserve[1].stressed_haircut``): invalid TOML,
        ``spec_version`` missing or not 2 (a v1 file is pointed to the v1 loader), a missing,
        unknown or out-of-range field, or premium parameters rejected by
        :meth:`models.market.PremiumProcess.from_dict`.
    """
    path = Path(path)
    with path.open("rb") as fh:
        try:
            data: dict[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    return parse_token_spec_v2(data, where=str(path))


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


def market_open_days(
    calendar: pd.DatetimeIndex | None, market_hours: str, n_days: int
) -> np.ndarray:
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


# --------------------------------------------------------------------------- outcome


@dataclass(frozen=True, kw_only=True)
class TokenV2Outcome(TokenOutcome):
    """Outcome of :meth:`TokenV2.run`: all of :class:`models.token.TokenOutcome` plus v2 detail.

    Arrays are ``(n_paths, horizon_days + 1)`` unless stated; "daily" arrays hold the flow of
    that day (0 in column 0), others the end-of-day state. Definitions in the module docstring.
    Derived arrays are properties computed on access (one vectorised pass each).

    Attributes (beyond TokenOutcome)
    --------------------------------
    premium_frac : premium (+) / discount (-) of the market price to ``NAV * min(1, B)``.
    redemption_demand_tokens, returned_tokens : daily requests to the issuer and the sub-bar
        remainder returned to holders (sold on the market).
    accepted_gold_tokens : daily whole-bar tokens accepted for redemption in gold.
    redeemed_gold_tokens, redeemed_cash_tokens : daily tokens paid (in gold / USD) and burned.
    queue_tokens : accepted, not yet paid (pipeline + eligible), end of day.
    backlog_tokens : eligible but unpaid (liquidity shortfall), end of day.
    minted_tokens, market_sell_tokens : daily mints and tokens sold on the AMM pool.
    run_share : cumulative share ``R_t`` of the run-prone mass that has run.
    theta : the global-game fundamental used on each day.
    run_externality : ``lambda_t`` (NAV fraction stayers lose if everyone runs), end of day.
    liquid_reserve_usd, stressed_outflow_usd, liquidity_coverage : liquidity per day.
    fire_sale_loss_usd : cumulative value lost to stressed haircuts, USD.
    cash_in_usd, cash_out_usd : cumulative USD into / out of the ``usd_cash`` assets.
    opex_payable_usd : accrued, unpaid opex (senior to holders), USD.
    asset_amounts : ``(n_assets, n_paths, horizon_days + 1)`` holdings (grams or USD).
    asset_names : tuple of asset names, in ``asset_amounts`` order.
    market_open : ``(horizon_days + 1,)`` bool, primary market open.
    nav_usd_per_token : ``grams_per_token`` grams at the day's gold price, USD.
    grams_per_token, redeem_fee, redeem_cost, attestation_lag_days : scalars of the spec used by
        the derived properties.
    """

    premium_frac: np.ndarray
    redemption_demand_tokens: np.ndarray
    returned_tokens: np.ndarray
    accepted_gold_tokens: np.ndarray
    redeemed_gold_tokens: np.ndarray
    redeemed_cash_tokens: np.ndarray
    queue_tokens: np.ndarray
    backlog_tokens: np.ndarray
    minted_tokens: np.ndarray
    market_sell_tokens: np.ndarray
    run_share: np.ndarray
    theta: np.ndarray
    run_externality: np.ndarray
    liquid_reserve_usd: np.ndarray
    stressed_outflow_usd: np.ndarray
    liquidity_coverage: np.ndarray
    fire_sale_loss_usd: np.ndarray
    cash_in_usd: np.ndarray
    cash_out_usd: np.ndarray
    opex_payable_usd: np.ndarray
    asset_amounts: np.ndarray
    asset_names: tuple[str, ...]
    market_open: np.ndarray
    nav_usd_per_token: np.ndarray
    grams_per_token: float
    redeem_fee: float
    redeem_cost: float
    attestation_lag_days: int

    @property
    def accepted_tokens(self) -> np.ndarray:
        """Daily tokens accepted (whole bars): ``redemption_demand - returned``."""
        return self.redemption_demand_tokens - self.returned_tokens

    @property
    def accepted_cash_tokens(self) -> np.ndarray:
        """Daily tokens accepted for redemption in USD."""
        return self.accepted_tokens - self.accepted_gold_tokens

    @property
    def redeemed_tokens(self) -> np.ndarray:
        """Daily tokens paid and burned, gold plus cash."""
        return self.redeemed_gold_tokens + self.redeemed_cash_tokens

    @property
    def backing_ratio_g(self) -> np.ndarray:
        """Gold grams over grams owed, ``gold_reserve_g / (supply * grams_per_token)`` (inf
        without supply)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.supply_tokens > 0, self.gold_reserve_g / (self.supply_tokens * self.grams_per_token), np.inf)

    @property
    def redemption_value_usd_per_token(self) -> np.ndarray:
        """v1's holder value ``NAV * (1 - redeem_fee) * min(1, B)``, USD per token."""
        return self.nav_usd_per_token * (1.0 - self.redeem_fee) * np.minimum(1.0, self.backing_ratio)

    @property
    def theta_star(self) -> np.ndarray:
        """Global-game threshold used on each day, ``lambda_j / 2 - redeem_cost`` with the
        lagged attestation day ``j = max(0, t - 1 - attestation_lag_days)`` (day 0: ``j = 0``)."""
        t1 = self.run_externality.shape[1]
        j = np.maximum(0, np.arange(t1) - 1 - self.attestation_lag_days)
        j[0] = 0
        return self.run_externality[:, j] / 2.0 - self.redeem_cost

    def cum_accepted_tokens(self) -> np.ndarray:
        """Cumulative tokens accepted, ``(2, n_paths, horizon_days + 1)``: [gold, cash]."""
        return np.stack([np.cumsum(self.accepted_gold_tokens, axis=1), np.cumsum(self.accepted_cash_tokens, axis=1)])

    def cum_redeemed_tokens(self) -> np.ndarray:
        """Cumulative tokens paid, ``(2, n_paths, horizon_days + 1)``: [gold, cash]."""
        return np.stack([np.cumsum(self.redeemed_gold_tokens, axis=1), np.cumsum(self.redeemed_cash_tokens, axis=1)])

    def wait_days(self) -> np.ndarray:
        """Days needed to meet each day's redemption wave, ``(n_paths, horizon_days + 1)``.

        For day ``t``: model days until the last token accepted up to ``t`` is paid, FIFO within
        each queue (gold, cash), the later of the two: ``s(t) - t`` with ``s(t)`` the first day
        ``>= t`` whose cumulative payments reach the cumulative acceptances of day ``t``
        (0 = paid the same day). NaN when not paid within the horizon.
        """
        acc, srv = self.cum_accepted_tokens(), self.cum_redeemed_tokens()
        return np.maximum(_fifo_wait(acc[0], srv[0]), _fifo_wait(acc[1], srv[1]))

    def describe(self) -> dict[str, float]:
        """v1's summary plus: mean and 99% quantile of the peak queue share of supply, 1%
        quantile of the minimum liquidity coverage, mean final run share, mean and 99% quantile
        of the final fire-sale loss (USD), 1% quantile of the minimum premium, and the share of
        paths with a redemption still unpaid at the horizon."""
        out = super().describe()
        with np.errstate(divide="ignore", invalid="ignore"):
            qshare = np.where(self.supply_tokens > 0, self.queue_tokens / self.supply_tokens, 0.0)
        peak_q = qshare.max(axis=1)
        fs = self.fire_sale_loss_usd[:, -1]
        out.update(
            {
                "queue_share_peak_mean": float(peak_q.mean()),
                "queue_share_peak_q99": float(np.quantile(peak_q, 0.99)),
                "liquidity_coverage_min_q01": float(np.quantile(self.liquidity_coverage.min(axis=1), 0.01)),
                "run_share_end_mean": float(self.run_share[:, -1].mean()),
                "fire_sale_loss_usd_mean": float(fs.mean()),
                "fire_sale_loss_usd_q99": float(np.quantile(fs, 0.99)),
                "premium_min_q01": float(np.quantile(self.premium_frac.min(axis=1), 0.01)),
                "share_unpaid_at_end": float((self.backlog_tokens[:, -1] > 0).mean()),
            }
        )
        return out


# --------------------------------------------------------------------------- model


def _before(r: np.ndarray) -> np.ndarray:
    """Exclusive prefix sum over the (few) rows of ``r`` (K, n): ``out[k] = sum_{i<k} r[i]``.
    A loop over K rows: ``np.cumsum(axis=0)`` on a short leading axis is ~30x slower."""
    out = np.zeros_like(r)
    for k in range(1, r.shape[0]):
        np.add(out[k - 1], r[k - 1], out=out[k])
    return out


def _fifo_wait(cum_acc: np.ndarray, cum_served: np.ndarray) -> np.ndarray:
    """``s(t) - t`` with ``s(t)`` the first day ``>= t`` on which cumulative service reaches the
    cumulative acceptance of day ``t`` (NaN if never). Both ``(n, T)`` non-decreasing rows.
    One ``searchsorted`` on rows scaled into ``[r, r + 1)``."""
    n, t1 = cum_acc.shape
    scale = cum_acc[:, -1:] * (1.0 + 1e-9) + 1.0
    rows = np.arange(n, dtype=float)[:, None]
    flat = (np.minimum(cum_served, cum_acc[:, -1:]) / scale + rows).ravel()
    target = ((cum_acc - 1e-9 * scale) / scale + rows).ravel()
    idx = np.searchsorted(flat, target, side="left").reshape(n, t1) - (np.arange(n) * t1)[:, None]
    days = np.arange(t1)[None, :]
    s = np.maximum(idx, days)
    return np.where(idx < t1, (s - days).astype(float), np.nan)


class TokenV2:
    """Gold-backed token v2: issuer reserve and liquidity, primary market, runs, secondary market.

    Mechanics and sources in the module docstring.

    Parameters
    ----------
    spec : TokenV2Spec
    premium_process : models.market.PremiumProcess or None
        Overrides the spec's process (e.g. one calibrated by the calibrate flow), used as given.
        None: ``spec.secondary.premium``, with the band of :func:`models.market.arbitrage_band`
        (mint and redeem fees, settlement lag) when the spec gives none; no process when the spec
        has none.

    Raises
    ------
    ValueError
        If ``spec`` is not a TokenV2Spec or ``premium_process`` not a PremiumProcess.
    """

    def __init__(self, spec: TokenV2Spec, premium_process: PremiumProcess | None = None) -> None:
        if not isinstance(spec, TokenV2Spec):
            raise ValueError(f"spec: expected TokenV2Spec, got {type(spec).__name__}")
        if premium_process is not None and not isinstance(premium_process, PremiumProcess):
            raise ValueError(f"premium_process: expected models.market.PremiumProcess, got {type(premium_process).__name__}")
        self.spec = spec
        self.premium_process = premium_process if premium_process is not None else self._spec_premium()

    # -- secondary market pieces (models.market, helper M) --------------------------------
    def _spec_premium(self) -> PremiumProcess | None:
        s = self.spec
        if s.secondary.premium is None:
            return None
        proc = _premium_process(s.secondary.premium)
        if proc.band_lower is None and proc.band_upper is None:
            lo, hi = arbitrage_band(
                s.primary.mint_fee,
                s.primary.redeem_fee,
                settlement_lag_days=float(s.primary.settlement_lag_days),
            )
            if not hi - lo > 2e-9:  # a frictionless primary market pins the premium at 0;
                lo, hi = lo - 1e-9, hi + 1e-9  # PremiumProcess needs lower < upper
            proc = proc.with_band(lo, hi, proc.band_strength)
        return proc

    def _pool(self) -> ConstantProductPool | ConcentratedLiquidityPool | None:
        amm = self.spec.secondary.amm
        if amm is None:
            return None
        if isinstance(amm, ConstantProductAmmSpec):
            return ConstantProductPool(amm.reserve_tokens, amm.reserve_tokens, fee=amm.fee)
        return ConcentratedLiquidityPool(amm.liquidity, amm.price_lower, amm.price_upper, 1.0, fee=amm.fee)

    @staticmethod
    def _pool_price_ratio(pool: Any, sell_tokens: np.ndarray) -> np.ndarray:
        """Pool price after selling ``sell_tokens`` (from the pool at the fair price) over the
        price before (:meth:`models.market.ConstantProductPool.sell_pressure_impact`)."""
        return pool.sell_pressure_impact(sell_tokens) / pool.price

    # -- run ------------------------------------------------------------------------------
    def run(
        self,
        gold_usd_per_oz: np.ndarray,
        calendar: pd.DatetimeIndex | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> TokenV2Outcome:
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
        TokenV2Outcome
            Arrays ``(n_paths, horizon_days + 1)`` (returned as transposed views of day-major
            buffers).

        Raises
        ------
        ValueError
            If prices are not a 2-D array of finite positive numbers, or the calendar is not a
            strictly increasing DatetimeIndex of length horizon_days + 1.
        """
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 and x/0 are handled explicitly
            return self._run(gold_usd_per_oz, calendar, rng)

    def _run(
        self,
        gold_usd_per_oz: np.ndarray,
        calendar: pd.DatetimeIndex | None,
        rng: np.random.Generator | int | None,
    ) -> TokenV2Outcome:
        s = self.spec
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
        PG = np.ascontiguousarray(price_oz.T) / TROY_OUNCE_G  # USD per gram
        NAV = gpt * PG
        DD = 1.0 - PG / np.maximum.accumulate(PG, axis=0)

        # reserve assets (K, n)
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
        first_alloc, first_cash = int(alloc_idx[0]), int(cash_idx[0])

        g = pm.redemption_granularity_tokens
        m_min = pm.min_redemption_tokens
        bars_all = g > 0 and pm.granularity_applies_to == "all"
        fee_r, fee_m = pm.redeem_fee, pm.mint_fee
        gate = pm.redemption_limit_share_per_day
        lag = pm.settlement_lag_days
        cut = pm.cutoff_share
        opex_year = s.opex_usd_per_year
        c_run = fee_r + cf.switching_cost
        run_mass = cf.run_prone_share * s.supply_tokens
        sig = cf.signal_noise_sd
        minting = rb.base_mint_rate_per_day > 0 or rb.mint_premium_sensitivity > 0
        qdw = s.secondary.queue_discount_weight
        wait_cost = s.secondary.wait_cost_per_day
        arb_cap = s.secondary.arbitrage_capacity_tokens_per_day

        # secondary market (models.market): premium process stepped daily with feedback, pool
        proc = self.premium_process
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
        p0 = 0.0
        if proc is not None:
            p0 = float(proc.stationary_mean())
            if proc.band_lower is not None:
                p0 = min(max(p0, float(proc.band_lower)), float(proc.band_upper))
        pool = self._pool()

        # Day-major buffer block[t, field, path]: one large allocation (transparent huge pages;
        # many 4 MB arrays fill ~3x slower). The first n_state fields are the running state
        # array S, recorded by one copy per day; the others are written in place.
        state_names = "supply gin gout cin cout fsl pay run q".split() + [f"amt{k}" for k in range(k_n)]
        row_names = "B V gold cash lam prem dem ret acc_g sell red_g red_c mint theta liq outf lcr bl".split()
        n_state = len(state_names)
        block = np.zeros((t1, n_state + len(row_names), n))
        F = {k: i for i, k in enumerate(state_names + row_names)}
        S = np.zeros((n_state, n))
        sup, gin, gout, cin, cout, fsl, payable, run_cum, waiting = (S[F[k]] for k in state_names[:9])
        q_g, q_c = np.zeros(n), np.zeros(n)  # eligible, unpaid claims (FIFO), gold and cash
        amt = S[F["amt0"]:F["amt0"] + k_n]
        amt[:] = np.array([a.amount for a in assets], dtype=float)[:, None]
        sup[:] = s.supply_tokens
        unit = np.ones((k_n, n))

        # indicator rows for (K,) @ (K, n) sums (one BLAS call each)
        f = lambda mask: mask.astype(float)  # noqa: E731
        w_gold, w_cash, w_noncash, w_alloc = f(is_gold), f(is_cash), f(~is_cash), f(is_alloc)
        w_unalloc_keep = f(is_unalloc) * keep[:, 0]
        w_hcut, w_hcut_cash, w_heff = hcut[:, 0], hcut[:, 0] * w_cash, h_eff[:, 0]
        ones_k = np.ones(k_n)
        all_frac = bool(liq_frac.all())
        has_unalloc = bool(unalloc_idx.size)
        pend = np.zeros((2, lag + 2, n))  # [gold, cash] x open days until eligible x paths
        zeros_n = np.zeros(n)
        i_B, i_lam = F["B"], F["lam"]

        def record_state(t: int) -> None:
            row = block[t]
            val = amt * unit
            liab = sup * NAV[t]
            np.subtract(ones_k @ val, payable, out=row[F["V"]])
            np.dot(w_gold, amt, out=row[F["gold"]])
            np.dot(w_cash, amt, out=row[F["cash"]])
            np.divide(row[F["V"]], liab, out=row[i_B])
            np.divide(w_heff @ val, liab, out=row[i_lam])
            if not (liab > 0).all():  # every token redeemed: no liabilities
                gone = liab <= 0
                row[i_B][gone] = np.inf
                row[i_lam][gone] = 0.0
            row[:n_state] = S

        def capacity() -> np.ndarray:
            """Units convertible today; with fraction liquidity (<= 1) never above the holding."""
            return liq * amt if all_frac else np.where(liq_frac, liq * amt, np.minimum(liq, amt))

        def gold_resources(usable: np.ndarray) -> np.ndarray:
            """Grams deliverable in kind today: allocated gold + unallocated within capacity."""
            gr = w_alloc @ amt
            return gr + w_unalloc_keep @ usable if has_unalloc else gr

        unit[gold_idx] = PG[0]
        cap0 = capacity()
        row0 = block[0]
        row0[F["liq"]] = ones_k @ (cap0 * unit * keep) + (gold_resources(cap0) * PG[0] if cs < 1.0 else 0.0)
        row0[F["lcr"]] = np.inf
        row0[F["prem"]] = p0
        record_state(0)
        row0[F["theta"]] = row0[i_B] - 1.0 + cf.premium_weight * min(p0 + fee_r, 0.0)
        run_cum[:] = ndtr((row0[i_lam] / 2.0 - c_run - row0[F["theta"]]) / sig)
        row0[F["run"]] = run_cum

        for t in range(1, t1):
            is_open = bool(open_[t])
            row = block[t]
            prev = block[t - 1]
            p_prev = prev[F["prem"]]
            supply_prev = np.maximum(prev[F["supply"]], 1e-300)
            navt = NAV[t]
            unit[gold_idx] = PG[t]
            ukeep = unit * keep  # USD raised per unit sold
            cap = capacity()
            usable = cap if all_frac else np.minimum(cap, amt)

            # 1. demand: flows, peg arbitrage (open days), run (global game)
            free = np.maximum(sup - waiting, 0.0)
            base = rb.base_rate_per_day if rb.base_rate_until_day is None or t <= rb.base_rate_until_day else 0.0
            share = base + rb.drawdown_sensitivity * DD[t] if rb.drawdown_sensitivity > 0 else base
            if is_open and rb.peg_sensitivity > 0:
                share = share + rb.peg_sensitivity * np.maximum(-p_prev - fee_r, 0.0)
            flow = np.minimum(share, rb.max_share_per_day) * free
            j = max(0, t - 1 - s.attestation_lag_days)
            theta = np.subtract(block[j, i_B], 1.0, out=row[F["theta"]])
            if cf.queue_weight > 0:  # supply_prev > 0 (floored at 1e-300 below)
                theta -= (cf.queue_weight * prev[F["bl"]]) / supply_prev
            if cf.premium_weight > 0:
                theta += cf.premium_weight * np.minimum(p_prev + fee_r, 0.0)
            tstar = block[j, i_lam] / 2.0 - c_run
            if run_mass > 0:
                new_cum = np.maximum(run_cum, ndtr((tstar - theta) / sig))
                runners = (new_cum - run_cum) * run_mass
                run_cum[:] = new_cum
                demand = np.minimum(flow + runners * (1.0 - cf.market_sell_share), free)
                sells = np.clip(free - demand, 0.0, runners * cf.market_sell_share) if cf.market_sell_share > 0 else zeros_n
            else:
                demand = np.minimum(flow, free)
                sells = zeros_n

            # 1b. the issuer's gate: requests above the daily limit are refused and sold instead
            if gate is not None:
                refused = np.maximum(demand - gate * supply_prev, 0.0)
                request, demand = demand, demand - refused
            # 2. whole bars
            if pm.granularity_applies_to == "all":
                if g > 0:
                    acc = np.minimum(_floor_bars(demand, g), demand)
                    if m_min > 0:
                        acc = np.where(acc >= m_min * (1 - _BAR_EPS), acc, 0.0)
                elif m_min > 0:
                    acc = np.where(demand >= m_min * (1 - _BAR_EPS), demand, 0.0)
                else:
                    acc = demand
                returned = demand - acc
                acc_g = (np.minimum(_floor_bars(acc * (1.0 - cs), g), acc) if g > 0 else acc * (1.0 - cs)) if cs < 1.0 else zeros_n
                acc_c = acc - acc_g
                if g > 0 or m_min > 0:
                    sells = sells + returned
            else:
                returned = zeros_n
                acc_g, _ = whole_bar_split(demand * (1.0 - cs), g, m_min)
                acc_c = demand - acc_g
                acc = demand
            if gate is not None:
                returned = returned + refused
                sells = sells + refused
                demand = request
            waiting += acc

            # 3. pipeline: eligible after `lag` open days (after-cut-off share one more)
            pend[0, lag] += cut * acc_g
            pend[1, lag] += cut * acc_c
            if cut < 1.0:
                pend[0, lag + 1] += (1.0 - cut) * acc_g
                pend[1, lag + 1] += (1.0 - cut) * acc_c

            # liquidity coverage: start-of-day resources vs all waiting claims + opex payable
            payable += opex_year * dt_years[t]
            cash_res = ones_k @ (usable * ukeep)
            claim_c = (q_c + pend[1].sum(axis=0)) * navt * (1.0 - fee_r) + payable
            # resources / claims per side; a side without claims (0/0 = nan) does not bind (fmin)
            lcr = row[F["lcr"]]
            np.divide(cash_res, claim_c, out=lcr)
            if cs < 1.0:
                gold_res_g = gold_resources(usable)
                gold_res = gold_res_g * PG[t]
                claim_g = (q_g + pend[0].sum(axis=0)) * navt
                np.fmin(lcr, gold_res / claim_g, out=lcr)
                np.add(gold_res, cash_res, out=row[F["liq"]])
                np.add(claim_g, claim_c, out=row[F["outf"]])
            else:
                row[F["liq"]] = cash_res
                row[F["outf"]] = claim_c
            lcr[np.isnan(lcr)] = np.inf

            if is_open:
                q_g += pend[0, 0]
                q_c += pend[1, 0]
                pend[:, :-1] = pend[:, 1:]
                pend[:, -1] = 0.0
                fees = None

                # 4a. gold claims in kind: allocated gold directly, then unallocated (capacity, haircut)
                if q_g.any():
                    want = np.minimum(q_g, gold_res_g / gpt)
                    served_g = np.minimum(_floor_bars(want, g) if g > 0 else want, q_g)
                    need = served_g * gpt
                    from_alloc = np.minimum(need, w_alloc @ amt)
                    if alloc_idx.size == 1:
                        amt[first_alloc] -= from_alloc
                    else:
                        a = amt[alloc_idx]
                        take = np.minimum(np.maximum(from_alloc - _before(a), 0.0), a)
                        amt[alloc_idx] = a - take
                    gout += from_alloc
                    rest = need - from_alloc
                    if has_unalloc and rest.any():
                        gr = usable[unalloc_idx] * keep[unalloc_idx]
                        take = np.minimum(np.maximum(rest - _before(gr), 0.0), gr)
                        sold = take / keep[unalloc_idx]
                        amt[unalloc_idx] = np.maximum(amt[unalloc_idx] - sold, 0.0)
                        cap[unalloc_idx] -= sold
                        gout += sold.sum(axis=0)
                        fsl += (sold - take).sum(axis=0) * PG[t]
                    np.maximum(amt[first_alloc], 0.0, out=amt[first_alloc])
                    q_g -= served_g
                    fees = fee_r * served_g * navt
                    sup -= served_g
                    waiting -= served_g
                    row[F["red_g"]] = served_g

                # 4b. one waterfall (spec order): opex payable first (senior), then cash claims
                has_cash_claims = bool(q_c.any())
                if opex_year > 0 or has_cash_claims:
                    r = np.minimum(cap, amt) * ukeep
                    raisable = ones_k @ r
                    pay_opex = np.minimum(payable, raisable) if opex_year > 0 else zeros_n
                    need = pay_opex
                    if has_cash_claims:
                        payout = navt * (1.0 - fee_r)
                        want = np.minimum(q_c, (raisable - pay_opex) / payout)
                        served_c = np.minimum(_floor_bars(want, g) if bars_all else want, q_c)
                        need = pay_opex + served_c * payout
                        q_c -= served_c
                        sup -= served_c
                        waiting -= served_c
                        row[F["red_c"]] = served_c
                    take = np.minimum(np.maximum(need - _before(r), 0.0), r)
                    sold = take / ukeep
                    np.maximum(amt - sold, 0.0, out=amt)
                    paid = ones_k @ take
                    gout += w_gold @ sold
                    cin += w_noncash @ take
                    cout += paid + w_hcut_cash @ sold
                    fsl += w_hcut @ (sold * unit)
                    payable -= pay_opex
                    np.maximum(payable, 0.0, out=payable)

                # 5. mints
                if minting:
                    mshare = rb.base_mint_rate_per_day * np.maximum(0.0, 1.0 - rb.mint_drawdown_sensitivity * DD[t])
                    if rb.mint_premium_sensitivity > 0:
                        mshare = mshare + rb.mint_premium_sensitivity * np.maximum(0.0, p_prev - fee_m)
                    minted = np.multiply(mshare, supply_prev, out=row[F["mint"]])
                    amt[first_alloc] += minted * gpt
                    gin += minted * gpt
                    sup += minted
                    f_m = fee_m * minted * navt
                    fees = f_m if fees is None else fees + f_m
                if fees is not None:
                    amt[first_cash] += fees
                    cin += fees

            # 7. secondary market: today's AMM sells and the backlog push the premium (a shock to the
            # premium process); the band binds on open days without a backlog
            backlog = np.add(q_g, q_c, out=row[F["bl"]])
            shock = self._pool_price_ratio(pool, sells) - 1.0 if pool is not None and sells.any() else zeros_n
            if qdw > 0:
                shock = shock - (qdw * backlog) / np.maximum(sup, 1e-300)
            prem = row[F["prem"]]
            if proc is not None:
                band_open = (backlog <= 0) if is_open else False
                prem[:] = proc.step(p_prev, gen, drawdown=DD[t], market_open=band_open, shock=shock)
            else:
                prem[:] = shock
            if wait_cost is not None:  # patient arbitrage: buy, queue, redeem after the wait
                floor = -(fee_r + wait_cost * (to_open[t] + lag + 1.0 / lcr))
                if arb_cap is not None and pool is not None:  # capital for arb_cap tokens a day;
                    excess = np.maximum(sells - arb_cap, 0.0)  # the rest slide down the pool curve
                    if excess.any():
                        floor = floor + self._pool_price_ratio(pool, excess) - 1.0
                np.maximum(prem, floor, out=prem)
            np.maximum(prem, -1.0 + 1e-9, out=prem)

            # record
            row[F["dem"]], row[F["ret"]], row[F["acc_g"]], row[F["sell"]] = demand, returned, acc_g, sells
            record_state(t)

        # outcome: (n, t1) views of the day-major block; two parent fields derived in one pass
        T = {k: block[:, i, :].T for k, i in F.items()}
        nav = NAV.T
        return TokenV2Outcome(
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
            asset_amounts=block[:, F["amt0"]:F["amt0"] + k_n, :].transpose(1, 2, 0),
            asset_names=tuple(a.name for a in assets),
            market_open=open_.copy(),
            nav_usd_per_token=nav,
            grams_per_token=gpt,
            redeem_fee=fee_r,
            redeem_cost=c_run,
            attestation_lag_days=s.attestation_lag_days,
        )


# ---------------------------------------------------------------------------------------------
# one entry point for spec files of either version
# ---------------------------------------------------------------------------------------------
def load_any_token_spec(path: str | Path) -> Any:
    """Load a token spec file of version 1 (``models.token``) or 2 (this module), by its
    ``spec_version``. ``FileNotFoundError`` if absent; ``ValueError`` naming the file and field
    otherwise (including an unknown version)."""
    from models.token import load_token_spec

    path = Path(path)
    with path.open("rb") as fh:
        try:
            version = tomllib.load(fh).get("spec_version")
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    if version == 2:
        return load_token_spec_v2(path)
    return load_token_spec(path)


def parse_any_token_spec(data: dict[str, Any], where: str = "spec") -> Any:
    """Validate a spec mapping of version 1 or 2 (e.g. one stored in a run manifest)."""
    from models.token import parse_token_spec

    if isinstance(data, dict) and data.get("spec_version") == 2:
        return parse_token_spec_v2(data, where=where)
    return parse_token_spec(data, where=where)


def build_any_token_model(spec: Any) -> Any:
    """The token model of a v1 or v2 spec (``TokenV2`` for v2; v1's ``build_token_model``)."""
    from models.token import build_token_model

    if isinstance(spec, TokenV2Spec):
        return TokenV2(spec)
    return build_token_model(spec)


def run_token_model(model: Any, gold_usd_per_oz: np.ndarray, rng: np.random.Generator | None = None) -> TokenOutcome:
    """Run a v1 or v2 token model on price paths ``(n_paths, horizon_days + 1)``; ``rng`` drives
    the v2 secondary market (premium noise) and is ignored by v1 models (deterministic)."""
    if isinstance(model, TokenV2):
        return model.run(gold_usd_per_oz, rng=rng)
    return model.run(gold_usd_per_oz)
