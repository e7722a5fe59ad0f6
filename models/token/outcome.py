"""Outcomes of the token models: :class:`TokenOutcome` (every model) and
:class:`ReserveBackedOutcome` (the reserve-backed token's detail on top).

Every array is ``(n_paths, horizon_days + 1)`` (day 0 first) unless stated; column 0 is the
initial state. Pure numerics, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["BREACH_TOL", "ReserveBackedOutcome", "TokenOutcome"]

BREACH_TOL = 1e-9
"""Relative tolerance under 1 for calling a backing ratio broken (absorbs float rounding)."""


@dataclass(frozen=True)
class TokenOutcome:
    """Daily state of a token along each gold path; every array is ``(n_paths, horizon_days + 1)``.

    Attributes
    ----------
    backing_ratio : float array
        Reserve value / liabilities at NAV (definitions in docs/models/reserve-backed-token.md, docs/models/cdp.md).
    reserve_value_usd : float array
        Reserve assets net of senior claims (reserve-backed token) or live collateral (CDP), USD.
    holder_value_usd_per_token : float array
        What one token is worth to a holder, USD.
    supply_tokens : float array
        Tokens (reserve-backed token) or coins of 1 USD face (CDP) outstanding.
    liquidated : bool array
        Any liquidation so far (cumulative); all False for the reserve-backed token.
    bad_debt_usd : float array
        Bad debt, USD: cumulative for the CDP; uncovered liabilities (a level) for the
        reserve-backed token.
    gold_reserve_g : float array
        Gold held as backing (reserve-backed token: gold assets; CDP collateral of live tranches), grams.
    cash_usd : float array
        Reserve-backed token: ``usd_cash`` assets. CDP: cumulative liquidation penalty income
        (not backing).
    gold_in_g, gold_out_g : float arrays
        Cumulative gold into / out of the reserve, grams (minted; redeemed + sold for cash;
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

    @property
    def reserve_usd_per_token(self) -> np.ndarray:
        """Reserve value per token outstanding, ``reserve_value_usd / supply_tokens``, USD per
        token (CDP: collateral per coin), ``(n_paths, horizon_days + 1)``. NaN where no token is
        outstanding (nothing to back). A redemption paid at the backing value leaves it
        unchanged; what moves it is the value of the reserve's assets, costs and losses."""
        s = self.supply_tokens
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, self.reserve_value_usd / np.where(s > 0, s, 1.0), np.nan)

    def holder_loss(self) -> np.ndarray:
        """Per path, the holder's loss over the horizon as a positive fraction of the day-0
        holder value: ``1 - holder_value[:, -1] / holder_value[:, 0]``. Shape ``(n_paths,)``.
        For a gold-backed token this includes the gold price move itself. NaN where the day-0
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


@dataclass(frozen=True, kw_only=True)
class ReserveBackedOutcome(TokenOutcome):
    """Outcome of :meth:`models.token.reserve_backed.ReserveBackedToken.run`: all of
    :class:`TokenOutcome` plus the reserve, primary-market, run and secondary-market detail.

    Arrays are ``(n_paths, horizon_days + 1)`` unless stated; "daily" arrays hold the flow of
    that day (0 in column 0), others the end-of-day state. Definitions in
    docs/models/reserve-backed-token.md.
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
    issuer_fee_revenue_usd : cumulative mint and redeem fees paid to the issuer (its revenue,
        outside the reserve), USD; all zero when the spec credits the fees to the reserve.
    reserve_fee_income_usd : cumulative fees credited to the reserve (``primary.fees_to_reserve``),
        USD; all zero otherwise.
    redemption_outflow_usd : cumulative value taken from the reserve to pay redemptions, USD at
        each day's prices (gold delivered in kind; USD paid for cash redemptions, including the
        redeem fee the issuer takes from it when the fees are its revenue).
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
    issuer_fee_revenue_usd: np.ndarray
    reserve_fee_income_usd: np.ndarray
    redemption_outflow_usd: np.ndarray
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
            return np.where(
                self.supply_tokens > 0, self.gold_reserve_g / (self.supply_tokens * self.grams_per_token), np.inf
            )

    @property
    def redemption_value_usd_per_token(self) -> np.ndarray:
        """What a redeeming holder receives, ``NAV * (1 - redeem_fee) * min(1, B)``, USD per token."""
        return self.nav_usd_per_token * (1.0 - self.redeem_fee) * np.minimum(1.0, self.backing_ratio)

    @property
    def theta_star(self) -> np.ndarray:
        """Global-game threshold used on each day, ``lambda_j / 2 - redeem_cost`` with the
        lagged attestation day ``j = max(0, t - 1 - attestation_lag_days)`` (day 0: ``j = 0``)."""
        t1 = self.run_externality.shape[1]
        j = np.maximum(0, np.arange(t1) - 1 - self.attestation_lag_days)
        j[0] = 0
        return self.run_externality[:, j] / 2.0 - self.redeem_cost

    def cum_redeemed_frac_of_day0_supply(self) -> np.ndarray:
        """Cumulative tokens redeemed (paid and burned) over the day-0 supply, fraction,
        ``(n_paths, horizon_days + 1)`` (0 at day 0). Counts tokens, not value: mints do not
        offset it."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.cumsum(self.redeemed_tokens, axis=1) / self.supply_tokens[:, :1]

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
        (0 = paid the same day). NaN when not paid within the horizon. "Reach" allows a relative
        1e-9 of the row's total acceptance ``A`` for float rounding: on path (row) ``r`` with
        ``c = A * (1 + 1e-9) + 1``, payments ``S`` reach acceptances ``a`` when
        ``min(S, A) / c + r >= (a - 1e-9 * c) / c + r`` (values scaled into ``[r, r + 1)``, so
        all rows could share one sorted search).
        """
        return _fifo_waits(
            self.accepted_gold_tokens,
            self.redemption_demand_tokens,
            self.returned_tokens,
            self.redeemed_gold_tokens,
            self.redeemed_cash_tokens,
        )

    def describe(self) -> dict[str, float]:
        """The :meth:`TokenOutcome.describe` summary plus: mean and 99% quantile of the peak queue share of supply, 1%
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


@njit(cache=True, nogil=True, error_model="numpy")
def _fifo_waits(
    acc_gold: np.ndarray, demand: np.ndarray, returned: np.ndarray, red_gold: np.ndarray, red_cash: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """:meth:`ReserveBackedOutcome.wait_days` from the daily arrays ``(n, T)``: accepted gold,
    demand, returned (cash accepted = ``(demand - returned) - acc_gold``), redeemed gold and cash.
    Per row and queue the cumulative sums run day by day (as ``np.cumsum``), then one pointer
    moves over the days to find each ``s(t)``. Returns ``(n, T)`` floats (NaN: not paid)."""
    n, t1 = acc_gold.shape
    out = np.empty((n, t1))
    acc = np.empty((2, t1))
    srv = np.empty((2, t1))
    waits = np.empty((2, t1))
    for i in range(n):
        ag, ac, sg, sc = 0.0, 0.0, 0.0, 0.0
        for t in range(t1):
            ag += acc_gold[i, t]
            ac += (demand[i, t] - returned[i, t]) - acc_gold[i, t]
            sg += red_gold[i, t]
            sc += red_cash[i, t]
            acc[0, t] = ag
            acc[1, t] = ac
            srv[0, t] = sg
            srv[1, t] = sc
        r = float(i)
        for q in range(2):
            last = acc[q, t1 - 1]
            scale = last * (1.0 + 1e-9) + 1.0
            for t in range(t1):
                srv[q, t] = _served(srv[q, t], last, scale, r)
            p = 0
            for t in range(t1):
                target = (acc[q, t] - 1e-9 * scale) / scale + r
                # first day p whose scaled cumulative service reaches the target: the row's
                # scaled service is non-decreasing, so p only moves back when the target falls
                while p > 0 and srv[q, p - 1] >= target:
                    p -= 1
                while p < t1 and srv[q, p] < target:
                    p += 1
                waits[q, t] = float(max(p, t) - t) if p < t1 else np.nan
        for t in range(t1):
            a, b = waits[0, t], waits[1, t]
            out[i, t] = np.nan if (a != a or b != b) else max(a, b)
    return out


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _served(served: float, last: float, scale: float, r: float) -> float:  # pragma: no cover - compiled
    """Cumulative service capped at the row's total acceptance, scaled into ``[r, r + 1)``
    (``np.minimum``: NaN if either is NaN)."""
    capped = served if (served < last or served != served) else last
    return capped / scale + r
