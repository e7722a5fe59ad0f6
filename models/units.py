"""Physical units of the domain."""

TROY_OUNCE_G = 31.1034768
"""Grams per troy ounce (exact by definition: International Yard and Pound Agreement, 1959)."""
