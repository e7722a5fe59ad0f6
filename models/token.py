"""Token models v1: a gold-backed token ("GRAM") and a gold-collateralised USD stablecoin ("GUSD").

Pure numerics: the only I/O is :func:`load_token_spec` reading one TOML spec file.

Both models take gold price paths ``gold_usd_per_oz`` shaped ``(n_paths, horizon_days + 1)``
(day 0 included), are vectorised over paths (the gold token loops over days; the CDP, whose
tranches do not interact, finds each tranche's liquidation day in one vectorised pass), and return a
:class:`TokenOutcome` whose arrays are all shaped ``(n_paths, horizon_days + 1)``; column 0 is the
initial state (no flows happen on day 0).

Gold-backed token (``kind = "gold_backed"``, :class:`GoldBackedToken`)
----------------------------------------------------------------------
One token is a claim on ``grams_per_token`` grams of vaulted gold. The issuer holds
``gold_g`` grams and ``cash_usd``. With ``P_g = usd_per_oz / TROY_OUNCE_G`` (USD per gram) the
net asset value of one token is ``NAV = grams_per_token * P_g``. Each day ``t >= 1``, in this order:

1. **Opex.** ``opex_usd_per_year / days_per_year`` is paid from cash; if cash is short the
   issuer sells gold at ``P_g(t)`` (no haircut) for the remainder. If the gold runs out too, the
   unpaid remainder is dropped (the issuer is then insolvent and backing is already < 1).
2. **Redemptions.** With drawdown ``dd_t = 1 - P_t / max_{s<=t} P_s``, the share of the
   start-of-day supply redeemed is ``r_t = min(base_redeem_rate_per_day +
   redeem_drawdown_sensitivity * dd_t, max_redeem_share_per_day)``. Redeemers receive
   ``grams_per_token`` grams per token from the reserve (first come, first served: if the reserve
   holds fewer grams, only what it holds is paid out and only the matching tokens are retired)
   and pay ``redeem_fee * NAV`` per token to the issuer in USD cash.
3. **Mints.** The share of the start-of-day supply minted is ``m_t = base_mint_rate_per_day *
   max(0, 1 - mint_drawdown_sensitivity * dd_t)`` (mints shrink linearly with the drawdown and
   stop at ``dd_t >= 1 / mint_drawdown_sensitivity``). Minters deliver ``grams_per_token`` grams
   per token into the reserve and pay ``mint_fee * NAV`` per token in USD cash.

Reported: ``backing_ratio = (gold_g * P_g + cash_usd) / (supply_tokens * grams_per_token * P_g)``
(reserve value over liabilities at NAV), ``reserve_value_usd = gold_g * P_g + cash_usd`` and
``holder_value_usd_per_token = NAV * (1 - redeem_fee) * min(1, backing_ratio)``: while the
reserve covers every token a redeeming holder gets the full grams less the fee; when it does not,
holders share the reserve pro rata in a wind-down (reserve per token ``= NAV * backing_ratio``),
still paying the fee. ``liquidated`` is all False and ``bad_debt_usd`` all 0 for this token.

Gold-collateralised stablecoin (``kind = "gold_cdp"``, :class:`CdpStablecoin`)
---------------------------------------------------------------------------------
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

Not modelled in v1 (limitations): intraday prices (liquidation only at the daily close), auction
duration and keeper failure, feedback of liquidation volume on the gold price (the deleveraging
spirals of Klages-Mundt & Minca (2021), "(In)stability for the blockchain: deleveraging spirals
and stablecoin attacks", Cryptoeconomic Systems 1(2); here the haircut is a fixed fraction), new
vaults or top-ups, stability fees, surplus buffer and governance-token backstops.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
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

from models.checks import check_price_paths
from models.units import TROY_OUNCE_G

__all__ = [
    "BREACH_TOL",
    "CdpStablecoin",
    "CdpStablecoinSpec",
    "GoldBackedToken",
    "GoldBackedTokenSpec",
    "TokenOutcome",
    "TokenSpec",
    "VaultTranche",
    "build_token_model",
    "load_token_spec",
]

SPEC_VERSION = 1
"""The only spec-file version this module reads."""

BREACH_TOL = 1e-9
"""Relative tolerance under 1 for calling a backing ratio broken (absorbs float rounding)."""

_Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
_Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class GoldBackedTokenSpec(_Spec):
    """Spec of a token redeemable for ``grams_per_token`` grams of vaulted gold (v1).

    Units in the field names; fees and rates are fractions. Field meanings and the daily
    mechanics are in the module docstring. Raises ``pydantic.ValidationError`` (a ValueError)
    naming the field for a missing, unknown or out-of-range field.
    """

    spec_version: Literal[1]
    kind: Literal["gold_backed"]
    name: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    description: str = ""
    grams_per_token: float = Field(gt=0, description="Grams of gold per token (1.0 for GRAM).")
    supply_tokens: float = Field(gt=0, description="Tokens outstanding at day 0.")
    gold_reserve_g: float = Field(ge=0, description="Vaulted gold at day 0, grams.")
    cash_buffer_usd: float = Field(ge=0, description="Issuer cash at day 0, USD.")
    opex_usd_per_year: float = Field(ge=0, description="Operating cost, USD per year.")
    days_per_year: float = Field(
        default=252.0, gt=0, description="Model days per year (trading days) for opex accrual."
    )
    mint_fee: _Fraction = Field(description="Mint fee, fraction of NAV, paid in USD.")
    redeem_fee: _Fraction = Field(description="Redemption fee, fraction of NAV, paid in USD.")
    base_redeem_rate_per_day: _Rate = Field(description="Daily redeemed share with no drawdown.")
    redeem_drawdown_sensitivity: float = Field(
        ge=0, description="Extra daily redeemed share per unit of drawdown."
    )
    max_redeem_share_per_day: _Fraction = Field(description="Cap on the daily redeemed share.")
    base_mint_rate_per_day: _Rate = Field(description="Daily minted share with no drawdown.")
    mint_drawdown_sensitivity: float = Field(
        ge=0, description="Mints scale by max(0, 1 - sensitivity * drawdown)."
    )

    @property
    def initial_gold_coverage(self) -> float:
        """Gold reserve over gold owed at day 0, in grams (1.0 = fully gold-backed)."""
        return self.gold_reserve_g / (self.supply_tokens * self.grams_per_token)


class VaultTranche(_Spec):
    """One tranche of CDP vaults: a share of the debt and its initial collateral ratio."""

    debt_share: float = Field(gt=0, le=1, description="Share of the stablecoin supply (debt).")
    collateral_ratio: float = Field(gt=0, description="Collateral value / debt at day 0.")


class CdpStablecoinSpec(_Spec):
    """Spec of a USD stablecoin over-collateralised by gold in CDP vaults (v1).

    ``tranches[i].debt_share`` must sum to 1 and every ``collateral_ratio`` must exceed
    ``liquidation_ratio``. Mechanics in the module docstring (MakerDAO MCD liquidation design).
    Raises ``pydantic.ValidationError`` (a ValueError) naming the field otherwise.
    """

    spec_version: Literal[1]
    kind: Literal["gold_cdp"]
    name: str = Field(min_length=1)
    symbol: str = Field(min_length=1)
    description: str = ""
    supply_usd: float = Field(gt=0, description="Stablecoins outstanding (= vault debt), USD.")
    tranches: list[VaultTranche] = Field(min_length=1)
    liquidation_ratio: float = Field(ge=1.0, description="L: liquidate when CR < L.")
    liquidation_penalty: _Fraction = Field(description="Penalty on the debt, fraction.")
    liquidation_haircut: _Fraction = Field(description="Sale discount to the market price.")

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


TokenSpec = Annotated[GoldBackedTokenSpec | CdpStablecoinSpec, Field(discriminator="kind")]
"""Either spec, discriminated on ``kind``."""

_SPEC_ADAPTER: TypeAdapter[GoldBackedTokenSpec | CdpStablecoinSpec] = TypeAdapter(TokenSpec)


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


def parse_token_spec(data: dict[str, Any], where: str = "spec") -> GoldBackedTokenSpec | CdpStablecoinSpec:
    """Validate a token spec given as a mapping (e.g. a spec stored in a run manifest).

    Same rules as :func:`load_token_spec`; ``ValueError`` names ``where`` and the field.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    if data.get("spec_version") != SPEC_VERSION:
        raise ValueError(f"{where}: field 'spec_version' = {data.get('spec_version')!r} is not supported (this code reads version {SPEC_VERSION})")
    try:
        return _SPEC_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(f"{where}: {_format_errors(exc)}") from exc


def load_token_spec(path: str | Path) -> GoldBackedTokenSpec | CdpStablecoinSpec:
    """Read a token spec from a TOML file (stdlib ``tomllib``).

    Parameters
    ----------
    path : str or Path
        A TOML file with top-level keys ``spec_version = 1``, ``kind`` (``"gold_backed"`` or
        ``"gold_cdp"``) and the fields of :class:`GoldBackedTokenSpec` or
        :class:`CdpStablecoinSpec` (tranches as ``[[tranches]]`` tables).

    Returns
    -------
    GoldBackedTokenSpec or CdpStablecoinSpec

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Naming the file and the field: invalid TOML, ``spec_version`` missing or not 1, unknown
        ``kind``, a missing or unknown field, or a value out of range.
    """
    path = Path(path)
    with path.open("rb") as fh:
        try:
            data: dict[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    if "spec_version" not in data:
        raise ValueError(f"{path}: field 'spec_version' is missing (expected {SPEC_VERSION})")
    if data["spec_version"] != SPEC_VERSION or isinstance(data["spec_version"], bool):
        raise ValueError(
            f"{path}: field 'spec_version' = {data['spec_version']!r} is not supported "
            f"(this code reads version {SPEC_VERSION})"
        )
    try:
        return _SPEC_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: {_format_errors(exc)}") from exc


@dataclass(frozen=True)
class TokenOutcome:
    """Daily state of a token along each gold path; every array is ``(n_paths, horizon_days + 1)``.

    Attributes
    ----------
    backing_ratio : float array
        Reserve value / liabilities at NAV (see the module docstring per token kind).
    reserve_value_usd : float array
        Gold (+ cash for the gold token) in the reserve, USD.
    holder_value_usd_per_token : float array
        What one token is worth to a holder, USD.
    supply_tokens : float array
        Tokens (gold token) or coins of 1 USD face (CDP) outstanding.
    liquidated : bool array
        Any liquidation so far (cumulative); all False for the gold token.
    bad_debt_usd : float array
        Cumulative bad debt, USD; all 0 for the gold token.
    gold_reserve_g : float array
        Gold held as backing (gold token reserve; CDP collateral of live tranches), grams.
    cash_usd : float array
        Gold token: issuer cash. CDP: cumulative liquidation penalty income (not backing).
    gold_in_g, gold_out_g : float arrays
        Cumulative gold into / out of the reserve, grams (minted; redeemed + sold for opex;
        CDP: collateral sold or returned at liquidation). Conservation:
        ``gold_reserve_g[:, t] - gold_reserve_g[:, 0] == gold_in_g[:, t] - gold_out_g[:, t]``.
    symbol : str
        Token symbol, for labels.
    """

    backing_ratio: np.ndarray
    reserve_value_usd: np.ndarray
    holder_value_usd_per_token: np.ndarray
    supply_tokens: np.ndarray
    liquidated: np.ndarray
    bad_debt_usd: np.ndarray
    gold_reserve_g: np.ndarray
    cash_usd: np.ndarray
    gold_in_g: np.ndarray
    gold_out_g: np.ndarray
    symbol: str = ""

    @property
    def n_paths(self) -> int:
        """Number of paths."""
        return int(self.backing_ratio.shape[0])

    @property
    def horizon_days(self) -> int:
        """Days simulated after day 0."""
        return int(self.backing_ratio.shape[1] - 1)

    def breached(self, tol: float = BREACH_TOL) -> np.ndarray:
        """Per path, whether the token broke: ``backing_ratio < 1 - tol`` on some day, or a
        liquidation happened (CDP). Returns a bool array ``(n_paths,)``."""
        under = (self.backing_ratio < 1.0 - tol).any(axis=1)
        return under | self.liquidated[:, -1]

    def holder_loss(self) -> np.ndarray:
        """Per path, the holder's loss over the horizon as a positive fraction of the day-0
        holder value: ``1 - holder_value[:, -1] / holder_value[:, 0]``. Shape ``(n_paths,)``.
        For the gold token this includes the gold price move itself. NaN where the day-0
        holder value is 0 (a token with no reserve at all)."""
        hv = self.holder_value_usd_per_token
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(hv[:, 0] > 0, 1.0 - hv[:, -1] / hv[:, 0], np.nan)

    def describe(self) -> dict[str, float]:
        """Small cross-path summary (floats): share of paths breached / liquidated, median and
        1% quantile of each path's minimum backing ratio, mean and 99% quantile of the final bad
        debt (USD) and of the holder loss (fraction)."""
        min_backing = self.backing_ratio.min(axis=1)
        loss = self.holder_loss()
        bad = self.bad_debt_usd[:, -1]
        return {
            "n_paths": float(self.n_paths),
            "horizon_days": float(self.horizon_days),
            "share_breached": float(self.breached().mean()),
            "share_liquidated": float(self.liquidated[:, -1].mean()),
            "min_backing_ratio_median": float(np.median(min_backing)),
            "min_backing_ratio_q01": float(np.quantile(min_backing, 0.01)),
            "bad_debt_usd_mean": float(bad.mean()),
            "bad_debt_usd_q99": float(np.quantile(bad, 0.99)),
            "holder_loss_mean": float(loss.mean()),
            "holder_loss_q99": float(np.quantile(loss, 0.99)),
        }


class GoldBackedToken:
    """Gold-backed token model (daily mechanics in the module docstring).

    Parameters
    ----------
    spec : GoldBackedTokenSpec
    """

    def __init__(self, spec: GoldBackedTokenSpec) -> None:
        if not isinstance(spec, GoldBackedTokenSpec):
            raise ValueError(f"spec: expected GoldBackedTokenSpec, got {type(spec).__name__}")
        self.spec = spec

    def run(self, gold_usd_per_oz: np.ndarray) -> TokenOutcome:
        """Run the token along gold price paths.

        Parameters
        ----------
        gold_usd_per_oz : ndarray, shape (n_paths, horizon_days + 1)
            Gold prices, USD per troy ounce, day 0 first.

        Returns
        -------
        TokenOutcome
            Arrays shaped ``(n_paths, horizon_days + 1)``.

        Raises
        ------
        ValueError
            If the array is not 2-D or holds a non-finite or non-positive price.
        """
        s = self.spec
        pg = check_price_paths(gold_usd_per_oz) / TROY_OUNCE_G  # USD per gram
        n, t1 = pg.shape
        gpt = s.grams_per_token
        opex_day = s.opex_usd_per_year / s.days_per_year

        gold = np.full(n, s.gold_reserve_g)
        cash = np.full(n, s.cash_buffer_usd)
        supply = np.full(n, s.supply_tokens)
        gin = np.zeros(n)
        gout = np.zeros(n)
        run_max = pg[:, 0].copy()

        gold_a = np.empty((n, t1))
        cash_a = np.empty((n, t1))
        supply_a = np.empty((n, t1))
        gin_a = np.empty((n, t1))
        gout_a = np.empty((n, t1))
        gold_a[:, 0], cash_a[:, 0], supply_a[:, 0] = gold, cash, supply
        gin_a[:, 0], gout_a[:, 0] = gin, gout

        for t in range(1, t1):
            price = pg[:, t]
            np.maximum(run_max, price, out=run_max)
            dd = 1.0 - price / run_max
            supply_start = supply.copy()
            # 1. opex: cash first, then gold sold at the day's price
            if opex_day > 0:
                from_cash = np.minimum(cash, opex_day)
                cash -= from_cash
                sold_g = np.minimum(gold, (opex_day - from_cash) / price)
                gold -= sold_g
                gout += sold_g
            # 2. redemptions, paid in gold while the reserve lasts
            share = np.minimum(
                s.base_redeem_rate_per_day + s.redeem_drawdown_sensitivity * dd,
                s.max_redeem_share_per_day,
            )
            wanted = share * supply_start
            redeemed = np.where(wanted * gpt <= gold, wanted, gold / gpt)
            paid_g = redeemed * gpt
            gold -= paid_g
            gout += paid_g
            supply -= redeemed
            cash += s.redeem_fee * paid_g * price
            # 3. mints, shrinking with the drawdown
            if s.base_mint_rate_per_day > 0:
                mshare = s.base_mint_rate_per_day * np.maximum(
                    0.0, 1.0 - s.mint_drawdown_sensitivity * dd
                )
                minted = mshare * supply_start
                in_g = minted * gpt
                gold += in_g
                gin += in_g
                supply += minted
                cash += s.mint_fee * in_g * price
            gold_a[:, t], cash_a[:, t], supply_a[:, t] = gold, cash, supply
            gin_a[:, t], gout_a[:, t] = gin, gout

        reserve = gold_a * pg + cash_a
        liabilities = supply_a * gpt * pg
        backing = reserve / liabilities
        holder = gpt * pg * (1.0 - s.redeem_fee) * np.minimum(1.0, backing)
        return TokenOutcome(
            backing_ratio=backing,
            reserve_value_usd=reserve,
            holder_value_usd_per_token=holder,
            supply_tokens=supply_a,
            liquidated=np.zeros((n, t1), dtype=bool),
            bad_debt_usd=np.zeros((n, t1)),
            gold_reserve_g=gold_a,
            cash_usd=cash_a,
            gold_in_g=gin_a,
            gold_out_g=gout_a,
            symbol=s.symbol,
        )


class CdpStablecoin:
    """Gold-collateralised USD stablecoin (CDP) model; mechanics in the module docstring
    (MakerDAO MCD liquidation design).

    Parameters
    ----------
    spec : CdpStablecoinSpec
    """

    def __init__(self, spec: CdpStablecoinSpec) -> None:
        if not isinstance(spec, CdpStablecoinSpec):
            raise ValueError(f"spec: expected CdpStablecoinSpec, got {type(spec).__name__}")
        self.spec = spec

    def run(self, gold_usd_per_oz: np.ndarray) -> TokenOutcome:
        """Run the stablecoin along gold price paths.

        Parameters
        ----------
        gold_usd_per_oz : ndarray, shape (n_paths, horizon_days + 1)
            Gold prices, USD per troy ounce, day 0 first. Day 0 sets each tranche's collateral.

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
            pen = np.where(
                hit, np.clip(gross - debt0[i], 0.0, debt0[i] * s.liquidation_penalty), 0.0
            )
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


def build_token_model(
    spec: GoldBackedTokenSpec | CdpStablecoinSpec,
) -> GoldBackedToken | CdpStablecoin:
    """The token model for a spec: :class:`GoldBackedToken` or :class:`CdpStablecoin`.

    Raises ValueError for any other object.
    """
    if isinstance(spec, GoldBackedTokenSpec):
        return GoldBackedToken(spec)
    if isinstance(spec, CdpStablecoinSpec):
        return CdpStablecoin(spec)
    raise ValueError(f"spec: expected a token spec, got {type(spec).__name__}")
