"""goldstress: stress tests for gold-backed tokens and gold-collateralised stablecoins."""

__version__ = "0.1.0"
