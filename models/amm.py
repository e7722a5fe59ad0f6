"""AMM pools of the secondary market of a gold-backed token: constant-product and concentrated liquidity.

Pure numerics (NumPy), no I/O: :class:`ConstantProductPool` (Uniswap v2) and
:class:`ConcentratedLiquidityPool` (one Uniswap v3 position); prices are ``y`` per ``x``, fees
fractions of the input, parameters may be arrays (one pool per path).
Equations and sources: docs/models/amm.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.checks import check_fraction

__all__ = [
    "ConcentratedLiquidityPool",
    "ConstantProductPool",
    "SwapResult",
    "pool_from_dict",
]


# --------------------------------------------------------------------------- AMM pools


@dataclass(frozen=True)
class SwapResult:
    """Result of a swap on a pool; all arrays broadcast to the common shape of the input and
    the pool parameters.

    Attributes
    ----------
    amount_in : ndarray
        Input actually used, gross of the fee (units of the input asset).
    amount_out : ndarray
        Output paid by the pool (units of the other asset).
    unfilled_in : ndarray
        Input left unfilled because the pool ran out of liquidity (0 for a constant-product
        pool); ``amount_in + unfilled_in`` is the requested input.
    price_before, price_after : ndarray
        Pool price (y per x) before and after.
    """

    amount_in: np.ndarray
    amount_out: np.ndarray
    unfilled_in: np.ndarray
    price_before: np.ndarray
    price_after: np.ndarray

    @property
    def price_impact(self) -> np.ndarray:
        """Relative move of the pool price, a positive fraction ``|1 - price_after / price_before|``."""
        return np.abs(1.0 - self.price_after / self.price_before)


def _positive(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise ValueError(f"{name}: must be finite and > 0")
    return arr


def _amount(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name}: amounts must be finite and >= 0")
    return arr


def _fee(fee: Any) -> float:
    return check_fraction(fee, "fee")


class _Pool:
    """Shared conveniences; subclasses implement ``price``, ``sell_x`` and ``sell_y``."""

    fee: float

    @property
    def price(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def sell_x(self, dx: Any) -> SwapResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def sell_y(self, dy: Any) -> SwapResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def swap_x_for_y(self, dx: Any) -> np.ndarray:
        """Amount of y received for selling ``dx >= 0`` of x (``sell_x(dx).amount_out``)."""
        return self.sell_x(dx).amount_out

    def swap_y_for_x(self, dy: Any) -> np.ndarray:
        """Amount of x received for selling ``dy >= 0`` of y (``sell_y(dy).amount_out``)."""
        return self.sell_y(dy).amount_out

    def price_impact(self, dx: Any) -> np.ndarray:
        """Relative fall of the pool price for a sale of ``dx`` of x: ``1 - P_after / P_before``,
        a positive fraction in [0, 1)."""
        return self.sell_x(dx).price_impact

    def sell_pressure_impact(self, sell_amounts: Any) -> np.ndarray:
        """Pool price (y per x) after selling ``sell_amounts`` of x, each element from the
        current state (e.g. one pool per path and that path's day of sales); any shape that
        broadcasts with the pool parameters. ValueError for negative or non-finite amounts."""
        return self.sell_x(sell_amounts).price_after


class ConstantProductPool(_Pool):
    """Constant-product pool ``x * y = k`` (Uniswap v2; formulas in docs/models/amm.md).

    x is the token, y the quote asset (e.g. a USD stablecoin); the pool price is ``y / x``
    (y per x). The fee is charged on the input and stays in the reserves.

    Parameters
    ----------
    reserve_x, reserve_y : float or ndarray
        Reserves (> 0); arrays give one pool per element (broadcast together).
    fee : float
        Swap fee, fraction in [0, 1) (0.003 = Uniswap v2's 0.30 %).

    Raises
    ------
    ValueError
        Naming the argument for a non-positive reserve or a fee outside [0, 1).
    """

    def __init__(self, reserve_x: float | np.ndarray, reserve_y: float | np.ndarray, fee: float = 0.003) -> None:
        x = _positive(reserve_x, "reserve_x")
        y = _positive(reserve_y, "reserve_y")
        self.reserve_x, self.reserve_y = np.broadcast_arrays(x, y)
        self.fee = _fee(fee)

    def __repr__(self) -> str:
        return f"ConstantProductPool(reserve_x={self.reserve_x!r}, reserve_y={self.reserve_y!r}, fee={self.fee!r})"

    @property
    def price(self) -> np.ndarray:
        """Marginal price ``y / x`` (y per x), before fees."""
        return self.reserve_y / self.reserve_x

    @property
    def k(self) -> np.ndarray:
        """Invariant ``x * y``."""
        return self.reserve_x * self.reserve_y

    def sell_x(self, dx: Any) -> SwapResult:
        """Sell ``dx >= 0`` of x: ``a = dx (1 - fee)``, ``dy = y a / (x + a)``; reserves become
        ``(x + dx, y - dy)`` (fee kept). Never unfilled (the curve has liquidity at every price)."""
        dx = _amount(dx, "dx")
        x, y = self.reserve_x, self.reserve_y
        a = dx * (1.0 - self.fee)
        dy = y * a / (x + a)
        p0 = np.broadcast_to(self.price, np.broadcast(dx, x).shape)
        p1 = (y - dy) / (x + dx)
        zero = np.zeros(np.broadcast(dx, x).shape)
        return SwapResult(np.broadcast_to(dx, zero.shape).copy(), dy + zero, zero, p0.copy(), p1 + zero)

    def sell_y(self, dy: Any) -> SwapResult:
        """Sell ``dy >= 0`` of y (buy x): ``b = dy (1 - fee)``, ``dx = x b / (y + b)``; reserves
        become ``(x - dx, y + dy)``."""
        dy = _amount(dy, "dy")
        x, y = self.reserve_x, self.reserve_y
        b = dy * (1.0 - self.fee)
        dx = x * b / (y + b)
        shape = np.broadcast(dy, x).shape
        zero = np.zeros(shape)
        p1 = (y + dy) / (x - dx)
        return SwapResult(
            np.broadcast_to(dy, shape).copy(), dx + zero, zero, np.broadcast_to(self.price, shape).copy(), p1 + zero
        )

    def after_sell_x(self, dx: Any) -> ConstantProductPool:
        """The pool after selling ``dx`` of x (new arrays; this pool is unchanged)."""
        r = self.sell_x(dx)
        return ConstantProductPool(self.reserve_x + r.amount_in, self.reserve_y - r.amount_out, self.fee)

    def after_sell_y(self, dy: Any) -> ConstantProductPool:
        """The pool after selling ``dy`` of y."""
        r = self.sell_y(dy)
        return ConstantProductPool(self.reserve_x - r.amount_out, self.reserve_y + r.amount_in, self.fee)

    def with_price(self, price: Any) -> ConstantProductPool:
        """The pool moved along its curve (same ``k``) to ``price`` (> 0), as frictionless
        arbitrage against an outside market would: ``x = sqrt(k / P)``, ``y = sqrt(k P)``."""
        p = _positive(price, "price")
        k = self.k
        return ConstantProductPool(np.sqrt(k / p), np.sqrt(k * p), self.fee)

    def x_in_to_price(self, target_price: Any) -> np.ndarray:
        """Gross amount of x to sell to bring the price down to ``target_price`` (0 where the
        target is at or above the current price). Solves ``(x + a)(x + a / g) = x y / T`` with
        ``g = 1 - fee``, ``a = g dx`` (fee kept in the reserves)."""
        t = _positive(target_price, "target_price")
        x, y = self.reserve_x, self.reserve_y
        return _cp_amount_to(x, y, x * y / t, 1.0 - self.fee, t < self.price)

    def y_in_to_price(self, target_price: Any) -> np.ndarray:
        """Gross amount of y to sell (buying x) to bring the price up to ``target_price``
        (0 where the target is at or below the current price)."""
        t = _positive(target_price, "target_price")
        x, y = self.reserve_x, self.reserve_y
        return _cp_amount_to(y, x, x * y * t, 1.0 - self.fee, t > self.price)

    def to_dict(self) -> dict[str, Any]:
        """Scalar pool as ``{"kind": "constant_product", "reserve_x", "reserve_y", "fee"}``;
        ValueError for a pool of arrays."""
        if self.reserve_x.ndim:
            raise ValueError("to_dict: only a scalar pool can be serialised")
        return {
            "kind": "constant_product",
            "reserve_x": float(self.reserve_x),
            "reserve_y": float(self.reserve_y),
            "fee": self.fee,
        }


def _cp_amount_to(r_in: np.ndarray, r_out: np.ndarray, rhs: np.ndarray, g: float, need: np.ndarray) -> np.ndarray:
    """Positive root a of ``(r + a)(r + a/g) = rhs`` (g in (0, 1]), returned as gross a / g."""
    b = r_in * (g + 1.0)
    c = g * (r_in * r_in - rhs)  # < 0 where a move is needed
    disc = np.sqrt(np.maximum(b * b - 4.0 * c, 0.0))
    a = -2.0 * c / (b + disc)  # stable form of (-b + disc) / 2
    return np.where(need, np.maximum(a, 0.0) / g, 0.0)


class ConcentratedLiquidityPool(_Pool):
    """One Uniswap v3 position: liquidity ``L`` on the price range ``[pa, pb]`` (Adams et al.
    (2021), "Uniswap v3 Core"; formulas in docs/models/amm.md).

    Prices are y per x (USD per token for a token/USD pool). Inside the range the pool behaves
    as a constant-product pool with virtual reserves ``(L / sqrt(P), L sqrt(P))``; the fee is
    taken from the input and kept outside the liquidity (v3). A sale that would push the price
    below ``pa`` fills only down to ``pa`` (all real y paid out); the rest is ``unfilled_in``.
    Likewise a purchase stops at ``pb``. When the current price is outside the range the swap
    first crosses the empty region at no cost.

    Parameters
    ----------
    liquidity : float or ndarray
        ``L > 0`` (units sqrt(x * y)).
    price_lower, price_upper : float or ndarray
        ``0 < pa < pb``.
    price : float or ndarray
        Current pool price ``P > 0``.
    fee : float
        Swap fee, fraction in [0, 1) (v3 tiers: 0.0001, 0.0005, 0.003, 0.01).

    Raises
    ------
    ValueError
        Naming the argument for non-positive values, ``pa >= pb`` or a bad fee.
    """

    def __init__(
        self,
        liquidity: float | np.ndarray,
        price_lower: float | np.ndarray,
        price_upper: float | np.ndarray,
        price: float | np.ndarray,
        fee: float = 0.003,
    ) -> None:
        big_l = _positive(liquidity, "liquidity")
        pa = _positive(price_lower, "price_lower")
        pb = _positive(price_upper, "price_upper")
        p = _positive(price, "price")
        if not (pa < pb).all():
            raise ValueError("price_lower: must be < price_upper")
        self.liquidity, self.price_lower, self.price_upper, self._price = np.broadcast_arrays(big_l, pa, pb, p)
        self.fee = _fee(fee)

    def __repr__(self) -> str:
        return (
            f"ConcentratedLiquidityPool(liquidity={self.liquidity!r}, price_lower={self.price_lower!r}, "
            f"price_upper={self.price_upper!r}, price={self._price!r}, fee={self.fee!r})"
        )

    @property
    def price(self) -> np.ndarray:
        """Current pool price P (y per x)."""
        return self._price

    def real_reserves(self) -> tuple[np.ndarray, np.ndarray]:
        """Tokens the position holds, ``(x, y)`` = ``(L (1/sqrt(P') - 1/sqrt(pb)), L (sqrt(P') -
        sqrt(pa)))`` with ``P'`` the price clipped to the range (whitepaper eqs. 6.29-6.30)."""
        sp = np.sqrt(np.clip(self._price, self.price_lower, self.price_upper))
        x = self.liquidity * (1.0 / sp - 1.0 / np.sqrt(self.price_upper))
        y = self.liquidity * (sp - np.sqrt(self.price_lower))
        return x, y

    def virtual_reserves(self) -> tuple[np.ndarray, np.ndarray]:
        """Virtual reserves ``(L / sqrt(P), L sqrt(P))`` (whitepaper eqs. 6.5-6.6) of the
        equivalent constant-product curve at the current price (valid for swaps that stay inside
        the range)."""
        sp = np.sqrt(self._price)
        return self.liquidity / sp, self.liquidity * sp

    def sell_x(self, dx: Any) -> SwapResult:
        """Sell ``dx >= 0`` of x. With ``a = dx (1 - fee)`` and ``s0 = min(sqrt(P), sqrt(pb))``:
        ``1/sqrt(P1) = 1/s0 + a_fill / L`` with ``a_fill = min(a, L (1/sqrt(pa) - 1/s0))``,
        output ``L (s0 - sqrt(P1)) = s0 sqrt(P1) a_fill``; any rest is returned as ``unfilled_in`` (gross) and the
        price stops at ``pa``."""
        dx = _amount(dx, "dx")
        big_l, pa, pb, p = self.liquidity, self.price_lower, self.price_upper, self._price
        g = 1.0 - self.fee
        a = dx * g
        s0 = np.sqrt(np.minimum(p, pb))
        cap = np.maximum(big_l * (1.0 / np.sqrt(pa) - 1.0 / s0), 0.0)
        a_fill = np.minimum(a, cap)
        exhausted = a >= cap
        inv1 = 1.0 / s0 + a_fill / big_l
        s1 = np.where(exhausted & (cap > 0), np.sqrt(pa), 1.0 / inv1)
        s1 = np.where(exhausted & (cap <= 0), np.sqrt(np.minimum(p, pb)), s1)
        dy = s0 * s1 * a_fill  # = L (s0 - s1), without the cancellation
        unfilled = np.where(exhausted, (a - a_fill) / g, 0.0)
        used = dx - unfilled
        p1 = np.where(a > 0, s1 * s1, p)
        shape = np.broadcast(dx, big_l).shape
        z = np.zeros(shape)
        return SwapResult(used + z, dy + z, unfilled + z, np.broadcast_to(p, shape).copy(), p1 + z)

    def sell_y(self, dy: Any) -> SwapResult:
        """Sell ``dy >= 0`` of y (buy x). With ``b = dy (1 - fee)`` and ``s0 = max(sqrt(P),
        sqrt(pa))``: ``sqrt(P1) = s0 + b_fill / L``, capped at ``sqrt(pb)``; output
        ``L (1/s0 - 1/sqrt(P1))``; the rest is ``unfilled_in``."""
        dy = _amount(dy, "dy")
        big_l, pa, pb, p = self.liquidity, self.price_lower, self.price_upper, self._price
        g = 1.0 - self.fee
        b = dy * g
        s0 = np.sqrt(np.maximum(p, pa))
        cap = np.maximum(big_l * (np.sqrt(pb) - s0), 0.0)
        b_fill = np.minimum(b, cap)
        exhausted = b >= cap
        s1 = np.where(exhausted & (cap > 0), np.sqrt(pb), s0 + b_fill / big_l)
        dx = b_fill / (s0 * s1)  # = L (1/s0 - 1/s1), without the cancellation
        unfilled = np.where(exhausted, (b - b_fill) / g, 0.0)
        used = dy - unfilled
        p1 = np.where(b > 0, s1 * s1, p)
        shape = np.broadcast(dy, big_l).shape
        z = np.zeros(shape)
        return SwapResult(used + z, dx + z, unfilled + z, np.broadcast_to(p, shape).copy(), p1 + z)

    def after_sell_x(self, dx: Any) -> ConcentratedLiquidityPool:
        """The pool after selling ``dx`` of x (same liquidity and range, new price)."""
        return self.with_price(self.sell_x(dx).price_after)

    def after_sell_y(self, dy: Any) -> ConcentratedLiquidityPool:
        """The pool after selling ``dy`` of y."""
        return self.with_price(self.sell_y(dy).price_after)

    def with_price(self, price: Any) -> ConcentratedLiquidityPool:
        """Same position at another price (e.g. after arbitrage to an outside market)."""
        return ConcentratedLiquidityPool(self.liquidity, self.price_lower, self.price_upper, price, self.fee)

    def x_in_to_price(self, target_price: Any) -> np.ndarray:
        """Gross x to sell to move the price down to ``max(target_price, pa)``:
        ``L (1/sqrt(T) - 1/s0) / (1 - fee)``, 0 where the target is not below the price.
        ``x_in_to_price(pa)`` is the most the position can absorb."""
        t = np.maximum(_positive(target_price, "target_price"), self.price_lower)
        s0 = np.sqrt(np.minimum(self._price, self.price_upper))
        a = self.liquidity * (1.0 / np.sqrt(t) - 1.0 / s0)
        return np.where(t < self._price, np.maximum(a, 0.0) / (1.0 - self.fee), 0.0)

    def y_in_to_price(self, target_price: Any) -> np.ndarray:
        """Gross y to sell to move the price up to ``min(target_price, pb)``."""
        t = np.minimum(_positive(target_price, "target_price"), self.price_upper)
        s0 = np.sqrt(np.maximum(self._price, self.price_lower))
        b = self.liquidity * (np.sqrt(t) - s0)
        return np.where(t > self._price, np.maximum(b, 0.0) / (1.0 - self.fee), 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Scalar pool as ``{"kind": "concentrated", "liquidity", "price_lower", "price_upper",
        "price", "fee"}``; ValueError for a pool of arrays."""
        if self.liquidity.ndim:
            raise ValueError("to_dict: only a scalar pool can be serialised")
        return {
            "kind": "concentrated",
            "liquidity": float(self.liquidity),
            "price_lower": float(self.price_lower),
            "price_upper": float(self.price_upper),
            "price": float(self._price),
            "fee": self.fee,
        }


def pool_from_dict(data: dict[str, Any]) -> ConstantProductPool | ConcentratedLiquidityPool:
    """Build a pool from a mapping (e.g. a spec table): ``kind = "constant_product"`` with
    ``reserve_x, reserve_y[, fee]``, or ``kind = "concentrated"`` with ``liquidity, price_lower,
    price_upper, price[, fee]``. Raises ValueError naming a missing/unknown field or kind."""
    if not isinstance(data, dict):
        raise ValueError(f"pool: expected a mapping, got {type(data).__name__}")
    kinds = {
        "constant_product": (ConstantProductPool, ("reserve_x", "reserve_y"), ("fee",)),
        "concentrated": (ConcentratedLiquidityPool, ("liquidity", "price_lower", "price_upper", "price"), ("fee",)),
    }
    kind = data.get("kind")
    if kind not in kinds:
        raise ValueError(f"pool: field 'kind' = {kind!r} is not one of {sorted(kinds)}")
    cls, req, opt = kinds[kind]
    rest = {k: v for k, v in data.items() if k != "kind"}
    missing = [k for k in req if k not in rest]
    if missing:
        raise ValueError(f"pool: missing field(s) {missing} for kind {kind!r}")
    unknown = sorted(set(rest) - set(req) - set(opt))
    if unknown:
        raise ValueError(f"pool: unknown field(s) {unknown} for kind {kind!r}")
    return cls(**rest)
