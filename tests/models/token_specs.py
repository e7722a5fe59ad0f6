"""Small token specs shared by the token tests."""

from __future__ import annotations

from models.token.spec import ReserveBackedTokenSpec, parse_token_spec


def simple_reserve_backed(
    *,
    supply_tokens: float = 1000.0,
    gold_reserve_g: float = 1000.0,
    cash_buffer_usd: float = 0.0,
    grams_per_token: float = 1.0,
    opex_usd_per_year: float = 0.0,
    days_per_year: float = 252.0,
    mint_fee: float = 0.0,
    redeem_fee: float = 0.0,
    fees_to_reserve: bool = False,
    base_redeem_rate_per_day: float = 0.0,
    redeem_drawdown_sensitivity: float = 0.0,
    max_redeem_share_per_day: float = 0.5,
    base_mint_rate_per_day: float = 0.0,
    mint_drawdown_sensitivity: float = 0.0,
    symbol: str = "T",
) -> ReserveBackedTokenSpec:
    """A reserve-backed token with the simplest reserve: USD cash, then allocated gold, both
    convertible in full every day without haircut; redemptions in gold, paid the day they are
    asked, every day open; no premium process and no arbitrage floor. Opex is paid from cash
    first, then by selling gold at the day's price; mint and redeem fees go to the issuer, or
    into cash with ``fees_to_reserve``.
    Amounts: grams, USD, USD per year; rates: shares of supply per day."""
    return parse_token_spec(
        {
            "spec_version": 2,
            "kind": "gold_backed",
            "name": symbol,
            "symbol": symbol,
            "grams_per_token": grams_per_token,
            "supply_tokens": supply_tokens,
            "opex_usd_per_year": opex_usd_per_year,
            "days_per_year": days_per_year,
            "reserve": [
                {
                    "name": "cash",
                    "kind": "usd_cash",
                    "amount": cash_buffer_usd,
                    "liquidity_per_day": 1.0,
                    "stressed_haircut": 0.0,
                },
                {
                    "name": "gold",
                    "kind": "allocated_gold",
                    "amount": gold_reserve_g,
                    "liquidity_per_day": 1.0,
                    "stressed_haircut": 0.0,
                },
            ],
            "primary": {
                "mint_fee": mint_fee,
                "redeem_fee": redeem_fee,
                "market_hours": "always",
                "fees_to_reserve": fees_to_reserve,
            },
            "secondary": {"wait_cost_per_day": None},
            "redemption": {
                "base_rate_per_day": base_redeem_rate_per_day,
                "drawdown_sensitivity": redeem_drawdown_sensitivity,
                "max_share_per_day": max_redeem_share_per_day,
                "base_mint_rate_per_day": base_mint_rate_per_day,
                "mint_drawdown_sensitivity": mint_drawdown_sensitivity,
            },
        }
    )


GRAM_SIMPLE = {
    "supply_tokens": 10_000_000.0,
    "gold_reserve_g": 10_000_000.0,
    "cash_buffer_usd": 4_000_000.0,
    "opex_usd_per_year": 3_000_000.0,
    "days_per_year": 252.0,
    "mint_fee": 0.0025,
    "redeem_fee": 0.0025,
    "base_redeem_rate_per_day": 0.0005,
    "redeem_drawdown_sensitivity": 0.02,
    "max_redeem_share_per_day": 0.05,
    "base_mint_rate_per_day": 0.0005,
    "mint_drawdown_sensitivity": 5.0,
    "symbol": "GRAM",
}
"""A GRAM-sized issuer for :func:`simple_reserve_backed`: 1 g per token, fully gold-backed plus a
USD operating buffer that pays the opex (then gold is sold)."""
