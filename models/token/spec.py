"""Token specs: one schema, discriminated on ``kind``, read from TOML or from a mapping.

:func:`load_token_spec` (the only I/O: one TOML file) and :func:`parse_token_spec` return a
:class:`ReserveBackedTokenSpec` (``kind = "gold_backed"``) or a :class:`CdpStablecoinSpec`
(``kind = "gold_cdp"``); units are in the field names, fees, rates and shares are fractions.
Spec versions and kinds: docs/models/token-spec.md.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from models.checks import check_fraction, check_int
from models.premium import PremiumProcess

__all__ = [
    "ASSET_KINDS",
    "MAX_RESERVE_ASSETS",
    "SPEC_VERSION",
    "AmmSpec",
    "CdpRiskTolerance",
    "CdpStablecoinSpec",
    "ConcentratedAmmSpec",
    "ConfidenceSpec",
    "ConstantProductAmmSpec",
    "PrimaryMarketSpec",
    "RedemptionBehaviourSpec",
    "ReserveAssetSpec",
    "ReserveBackedTokenSpec",
    "ReserveRiskTolerance",
    "RiskTolerance",
    "SecondaryMarketSpec",
    "TokenSpec",
    "VaultTranche",
    "load_token_spec",
    "parse_token_spec",
    "premium_process_from_params",
    "with_redemption_share",
]

SPEC_VERSION = 2
"""The only spec-file version this code reads (every kind)."""

RESERVE_BACKED_EXAMPLE = "specs/gram.toml"
"""A reserve-backed spec file to copy the layout from (named in the v1 refusal)."""

ASSET_KINDS = ("allocated_gold", "unallocated_gold", "usd_cash", "tbills")
"""Reserve asset kinds; gold kinds are in grams, the others in USD."""

_GOLD_KINDS = ("allocated_gold", "unallocated_gold")

_Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
_Share = Annotated[float, Field(ge=0.0, le=1.0)]


MAX_SUPPLY = 1e12
"""Most tokens a spec may have outstanding: a thousand times the largest stablecoin's supply."""
MAX_AMOUNT = 1e15
"""Most grams or USD of one reserve asset, of opex a year, or of a CDP's supply: well above any
issuer's balance sheet and far below where float64 sums lose whole units."""
MAX_GRAMS_PER_TOKEN = 1e6
"""Most grams one token may represent (one tonne)."""
MAX_RESERVE_ASSETS = 21
"""Most assets a reserve-backed spec may list (the engine reads their kinds from one 63-bit
integer, 3 bits each)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RiskTolerance(_Spec):
    """The issuer's risk tolerance for one token (TOML table ``[risk_tolerance]``): the limits its
    verdict is decided against (:func:`models.verdict.token_verdict`).

    The management body of an issuer of an asset-referenced or e-money token sets risk tolerance
    levels for each token (Commission Delegated Regulation (EU) 2025/1264, Art. 2(3), the RTS on
    the liquidity management policy under Regulation (EU) 2023/1114, Art. 45(7)(b)).

    ``confidence``: level of the quantile checks (the summary holds the 0.99 quantiles; another
    level finds no figure); ``horizon_days``: trading days of the liquidity coverage check (the
    summary holds 1, 5, 10 and 30); ``max_backing_shortfall_probability``: most probability that
    the backing ratio ends below 1 over the Monte Carlo horizon; ``watch_share``: a check is
    "watch" once its figure uses more than this share of its limit. Fractions in [0, 1].
    """

    confidence: float = Field(default=0.99, ge=0.9, lt=1.0, description="Confidence level of quantile checks.")
    horizon_days: int = Field(default=30, ge=1, le=366, description="Trading days of the liquidity coverage check.")
    max_backing_shortfall_probability: _Share = Field(
        default=0.01, description="Most probability that the backing ratio falls below 1."
    )
    watch_share: float = Field(
        default=0.8, gt=0.0, le=1.0, description="Share of a limit above which a check is watch."
    )


class ReserveRiskTolerance(RiskTolerance):
    """Risk tolerance of a reserve-backed token (``kind = "gold_backed"``): the fields of
    :class:`RiskTolerance` and ``max_depeg_frac``, the most discount or premium to NAV (fraction)
    at ``confidence`` over the Monte Carlo horizon, and ``min_liquidity_coverage``, the least
    liquidity coverage ratio (liquid resources / stressed outflows) at ``confidence`` over
    ``horizon_days`` and under the liquidity stress test's redemption wave."""

    max_depeg_frac: float = Field(default=0.10, gt=0.0, lt=1.0, description="Most |premium| to NAV, fraction.")
    min_liquidity_coverage: float = Field(default=1.0, gt=0.0, le=100.0, description="Least liquidity coverage ratio.")


class CdpRiskTolerance(RiskTolerance):
    """Risk tolerance of a CDP stablecoin (``kind = "gold_cdp"``): the fields of
    :class:`RiskTolerance`, ``max_liquidation_probability``, the most probability that a vault is
    liquidated over the Monte Carlo horizon, and ``max_bad_debt_frac``, the most bad debt (share of
    the day-0 supply left without collateral) at ``confidence``."""

    max_liquidation_probability: _Share = Field(default=0.5, description="Most probability of a liquidation.")
    max_bad_debt_frac: float = Field(default=0.01, gt=0.0, lt=1.0, description="Most bad debt, share of supply.")


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
    amount: float = Field(
        ge=0, le=MAX_AMOUNT, description="Grams (gold kinds) or USD (usd_cash, tbills) at day 0, at most 1e15."
    )
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
    ``fees_to_reserve`` (default ``False``): where the mint and redeem fees go. ``False``: they
    are the issuer's revenue, outside the segregated reserve (MiCA, Regulation (EU) 2023/1114,
    Art. 36: the reserve of assets is segregated from the issuer's own assets); a cash
    redemption then takes ``NAV`` per token from the reserve, ``NAV * (1 - redeem_fee)`` to the
    holder and the fee to the issuer. ``True``: every fee is credited to the reserve (paid into
    its first ``usd_cash`` asset; a cash redemption takes only ``NAV * (1 - redeem_fee)``).
    ``cash_redemption_haircut`` (default ``"redeemer"``): who bears the stressed haircut on the
    assets the reserve sells to pay a cash redemption. ``"redeemer"``: the redeemer is paid the
    proceeds of that sale (less the fee), as a holder redeeming for USD is paid the price the
    issuer's gold sale realises; the remaining holders' backing is untouched by it.
    ``"reserve"``: the reserve pays ``NAV`` (less the fee) and bears the haircut, so the backing
    of the remaining tokens falls by it.
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
    fees_to_reserve: bool = Field(
        default=False,
        description="Mint and redeem fees credited to the reserve (True) or kept by the issuer as revenue (False).",
    )
    cash_redemption_haircut: Literal["redeemer", "reserve"] = Field(
        default="redeemer",
        description="Who bears the fire-sale haircut on the assets sold to pay a cash redemption: the redeemer "
        "(paid the sale proceeds, less the fee) or the reserve (pays NAV; the issuer makes good any shortfall).",
    )


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
    :mod:`models.premium`; ``None`` = premium 0 plus feedback terms), optional AMM pool, the
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
            premium_process_from_params(self.premium)  # raises ValueError naming the problem
        return self


class ConfidenceSpec(_Spec):
    """Global-game run parameters (see docs/models/reserve-backed-token.md).

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


class ReserveBackedTokenSpec(_Spec):
    """Spec of a reserve-backed gold token (TOML ``kind = "gold_backed"``, ``spec_version = 2``; tables ``[[reserve]]``,
    ``[primary]``, ``[secondary]``, ``[secondary.amm]``, ``[redemption]``,
    ``[redemption.confidence]``, optional ``[risk_tolerance]``).

    Needs at least one ``allocated_gold`` asset (mints deliver into the first) and one
    ``usd_cash`` asset (fees are paid into the first when ``primary.fees_to_reserve``; its
    amount may be 0); asset names unique.
    Raises ``pydantic.ValidationError`` (a ValueError) naming the field otherwise.
    """

    spec_version: Literal[2]
    kind: Literal["gold_backed"]
    name: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    description: str = ""
    grams_per_token: float = Field(
        gt=0, le=MAX_GRAMS_PER_TOKEN, description="Grams per token (31.1034768 for 1 troy oz), at most 1e6."
    )
    supply_tokens: float = Field(gt=0, le=MAX_SUPPLY, description="Tokens outstanding at day 0, at most 1e12.")
    opex_usd_per_year: float = Field(default=0.0, ge=0, le=MAX_AMOUNT, description="USD a year, at most 1e15.")
    days_per_year: float = Field(default=252.0, gt=0, description="Model days per year without a calendar.")
    attestation_lag_days: int = Field(default=0, ge=0, le=366)
    reserve: list[ReserveAssetSpec] = Field(min_length=1, max_length=MAX_RESERVE_ASSETS)
    primary: PrimaryMarketSpec
    secondary: SecondaryMarketSpec = SecondaryMarketSpec()
    redemption: RedemptionBehaviourSpec
    risk_tolerance: ReserveRiskTolerance | None = Field(
        default=None, description="The issuer's risk tolerance (None: the documented defaults)."
    )

    @model_validator(mode="after")
    def _check_reserve(self) -> ReserveBackedTokenSpec:
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


def with_redemption_share(spec: ReserveBackedTokenSpec, share: float, horizon_days: int) -> ReserveBackedTokenSpec:
    """A copy of ``spec`` in which holders request exactly ``share`` of the day-0 supply over
    ``horizon_days`` model days and nothing after (the redemption axis of a reverse stress test,
    and the redemption wave of the liquidity stress test: run the copy for longer to see the
    claims of the wave settle).

    Holders request ``base_rate_per_day * free`` a day (``free`` = supply not already waiting;
    see :func:`models.token.reserve_backed.demand`). Without other flows ``free`` shrinks by the accepted
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
    spec : ReserveBackedTokenSpec
    share : float
        Fraction of the day-0 supply requested over the horizon, in [0, 1].
    horizon_days : int
        Model days, >= 1.

    Returns
    -------
    ReserveBackedTokenSpec
        A new (frozen) spec; ``spec`` is not modified.

    Raises
    ------
    ValueError
        If ``spec`` is not a ReserveBackedTokenSpec, ``share`` is not in [0, 1] or ``horizon_days`` is not
        an integer >= 1.
    """
    if not isinstance(spec, ReserveBackedTokenSpec):
        raise ValueError(f"spec: expected ReserveBackedTokenSpec, got {type(spec).__name__}")
    share = check_fraction(share, "share", upper_open=False)
    horizon_days = check_int(horizon_days, "horizon_days", 1)
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


class VaultTranche(_Spec):
    """One tranche of CDP vaults: a share of the debt and its initial collateral ratio."""

    debt_share: float = Field(gt=0, le=1, description="Share of the stablecoin supply (debt).")
    collateral_ratio: float = Field(gt=0, description="Collateral value / debt at day 0.")


class CdpStablecoinSpec(_Spec):
    """Spec of a USD stablecoin over-collateralised by gold in CDP vaults (``kind = "gold_cdp"``).

    ``tranches[i].debt_share`` must sum to 1 and every ``collateral_ratio`` must exceed
    ``liquidation_ratio``. Mechanics in docs/models/cdp.md (MakerDAO MCD liquidation design);
    the optional ``[risk_tolerance]`` table is a :class:`CdpRiskTolerance`.
    Raises ``pydantic.ValidationError`` (a ValueError) naming the field otherwise.
    """

    spec_version: Literal[2]
    kind: Literal["gold_cdp"]
    name: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    description: str = ""
    supply_usd: float = Field(
        gt=0, le=MAX_AMOUNT, description="Stablecoins outstanding (= vault debt), USD, at most 1e15."
    )
    tranches: list[VaultTranche] = Field(min_length=1)
    liquidation_ratio: float = Field(ge=1.0, description="L: liquidate when CR < L.")
    liquidation_penalty: _Fraction = Field(description="Penalty on the debt, fraction.")
    liquidation_haircut: _Fraction = Field(description="Sale discount to the market price.")
    risk_tolerance: CdpRiskTolerance | None = Field(
        default=None, description="The issuer's risk tolerance (None: the documented defaults)."
    )

    @model_validator(mode="after")
    def _check_tranches(self) -> CdpStablecoinSpec:
        total = math.fsum(t.debt_share for t in self.tranches)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"tranches: debt_share must sum to 1, got {total!r}")
        for i, t in enumerate(self.tranches):
            if not t.collateral_ratio > self.liquidation_ratio:
                raise ValueError(
                    f"tranches[{i}].collateral_ratio={t.collateral_ratio} must exceed "
                    f"liquidation_ratio={self.liquidation_ratio}"
                )
        return self

    @property
    def min_collateral_ratio(self) -> float:
        """Lowest initial collateral ratio over the tranches."""
        return min(t.collateral_ratio for t in self.tranches)


def _format_errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = list(e["loc"])
        if loc and loc[0] in ("gold_backed", "gold_cdp"):
            loc = loc[1:]
        where = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            where, msg = "kind", "missing or not one of 'gold_backed', 'gold_cdp'"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] != "missing" and not isinstance(e.get("input"), (dict, list)):
            msg = f"{msg} (got {e.get('input')!r})"
        parts.append(f"field '{where}': {msg}" if where else msg)
    return "; ".join(parts)


TokenSpec = Annotated[ReserveBackedTokenSpec | CdpStablecoinSpec, Field(discriminator="kind")]
"""Any token spec, discriminated on ``kind`` (``"gold_backed"`` or ``"gold_cdp"``)."""

_SPEC_ADAPTER: TypeAdapter[ReserveBackedTokenSpec | CdpStablecoinSpec] = TypeAdapter(TokenSpec)


def premium_process_from_params(params: dict[str, Any]) -> PremiumProcess:
    """The premium process of a ``[secondary.premium]`` table
    (:meth:`models.premium.PremiumProcess.from_dict` form: ``mean``, ``phi``, ``sigma``, ...).

    Raises ValueError prefixed ``premium:`` for an unknown key or an invalid value.
    """
    try:
        return PremiumProcess.from_dict(dict(params))
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"premium: {exc}") from exc


def parse_token_spec(data: dict[str, Any], where: str = "spec") -> ReserveBackedTokenSpec | CdpStablecoinSpec:
    """Validate a token spec given as a mapping (a parsed TOML file, a spec stored in a run
    manifest, a request body).

    Parameters
    ----------
    data : dict
        Top-level keys ``spec_version = 2``, ``kind`` and the fields of
        :class:`ReserveBackedTokenSpec` (``kind = "gold_backed"``) or
        :class:`CdpStablecoinSpec` (``kind = "gold_cdp"``).
    where : str
        What to name in error messages (a file path, ``"token spec GRAM"``).

    Returns
    -------
    ReserveBackedTokenSpec or CdpStablecoinSpec

    Raises
    ------
    ValueError
        One line starting with ``where``: not a mapping; ``spec_version`` missing or not 2 (a
        ``spec_version = 1`` gold-backed spec is the retired v1 token: the message says to use
        ``kind = "gold_backed"`` with ``spec_version = 2`` and names an example file); unknown
        ``kind``; a missing, unknown or out-of-range field (named, e.g.
        ``reserve[1].stressed_haircut``); premium parameters rejected by
        :meth:`models.premium.PremiumProcess.from_dict`.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    if "spec_version" not in data:
        raise ValueError(f"{where}: field 'spec_version' is missing (expected {SPEC_VERSION})")
    v = data["spec_version"]
    if isinstance(v, bool) or v != SPEC_VERSION:
        if v == 1 and not isinstance(v, bool) and data.get("kind") == "gold_backed":
            raise ValueError(
                f'{where}: the v1 gold-backed token (spec_version = 1, kind = "gold_backed") is retired; '
                f'use kind = "gold_backed" with spec_version = 2 (see {RESERVE_BACKED_EXAMPLE} for the layout)'
            )
        raise ValueError(
            f"{where}: field 'spec_version' = {v!r} is not supported (this code reads version {SPEC_VERSION})"
        )
    try:
        return _SPEC_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(f"{where}: {_format_errors(exc)}") from exc


def load_token_spec(path: str | Path) -> ReserveBackedTokenSpec | CdpStablecoinSpec:
    """Read a token spec from a TOML file (stdlib ``tomllib``); rules of :func:`parse_token_spec`.

    Parameters
    ----------
    path : str or Path
        A TOML file, e.g. ``specs/paxg.toml`` (gold_backed) or ``specs/gusd_cdp.toml``
        (gold_cdp).

    Returns
    -------
    ReserveBackedTokenSpec or CdpStablecoinSpec

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        One line naming the file: invalid TOML, or any error of :func:`parse_token_spec`.
    """
    path = Path(path)
    with path.open("rb") as fh:
        try:
            data: dict[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    return parse_token_spec(data, where=str(path))
