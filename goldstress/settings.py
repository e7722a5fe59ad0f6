"""The one typed place for goldstress configuration.

Every value can be set from the environment with the prefix ``GOLDSTRESS_`` (for example
``GOLDSTRESS_DATA_DIR``, ``GOLDSTRESS_REPORT_URL``, ``GOLDSTRESS_MC_PATHS``) or from a ``.env``
file in the working directory. Nested mappings (``storage_options``) take JSON.

Conventions used across the project (see README, "Conventions"):
- returns are daily *log* returns as fractions (0.01 = 1%), arrays shaped ``(n_paths, horizon_days)``;
- prices carry their unit in the name: ``usd_per_oz`` (troy ounce, 31.1034768 g), ``usd_per_g``;
- rates and fees are fractions, not percent; confidence levels are fractions (0.99).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Repository root; defaults for local storage live under it."""

TROY_OUNCE_G = 31.1034768
"""Grams per troy ounce (exact, by definition: International Yard and Pound Agreement, 1959)."""


class Settings(BaseSettings):
    """goldstress settings.

    Raises ``pydantic.ValidationError`` naming the field when a value has the wrong type or is
    out of range (for example ``GOLDSTRESS_MC_PATHS=-1``).
    """

    model_config = SettingsConfigDict(env_prefix="GOLDSTRESS_", env_file=".env", extra="ignore")

    # --- data acquisition -------------------------------------------------------------------
    data_dir: Path | None = Field(
        default=None,
        description="Folder of CSV files to import (layouts of SOURCES.md). None: fetch online.",
    )
    gold_file: str = Field(
        default="gold_lbma_usd_daily_1968_2026_merged.csv",
        description="Gold price CSV inside data_dir (LBMA fix layouts or broker XAU/USD layout).",
    )
    token_files: dict[str, str] = Field(
        default={"paxg": "paxg_usd_daily_2022_2026.csv", "xaut": "xaut_usd_daily_2022_2026.csv"},
        description="Token symbol -> token price CSV inside data_dir.",
    )
    lbma_pm_url: str = "https://prices.lbma.org.uk/json/gold_pm.json"
    lbma_am_url: str = "https://prices.lbma.org.uk/json/gold_am.json"
    coingecko_url: str = "https://api.coingecko.com/api/v3"
    coingecko_api_key: str | None = Field(default=None, description="Optional CoinGecko demo key.")
    coingecko_ids: dict[str, str] = {"paxg": "pax-gold", "xaut": "tether-gold"}
    coingecko_days: str = Field(
        default="365", description="market_chart history; 'max' needs a paid key (else HTTP 401)."
    )
    http_timeout_s: float = Field(default=20.0, gt=0)
    http_retries: int = Field(default=3, ge=0, le=10)
    http_backoff_s: float = Field(default=1.0, ge=0)
    freshness_max_age_days: int = Field(
        default=7,
        ge=1,
        description=(
            "Online fetches only: the newest curated row may be at most this many calendar days "
            "older than the fetch time (LBMA Christmas closures leave up to 5 days without a PM "
            "fix). Files a user points at are never rejected for being old."
        ),
    )

    # --- storage ---------------------------------------------------------------------------
    store_url: str = Field(
        default=str(PROJECT_ROOT / "var" / "store"),
        description="fsspec URL for raw snapshots, staging, curated tables and validation reports.",
    )
    report_url: str = Field(
        default=str(PROJECT_ROOT / "reports"),
        description="fsspec URL under which each run writes reports/<run id>/ (s3:// works).",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options (JSON), e.g. key/secret/endpoint_url for S3.",
    )

    # --- tracking --------------------------------------------------------------------------
    mlflow_tracking_uri: str = Field(default=f"sqlite:///{PROJECT_ROOT / 'var' / 'mlflow.db'}")
    mlflow_artifact_location: str = Field(default=str(PROJECT_ROOT / "var" / "mlartifacts"))
    mlflow_experiment: str = "goldstress"
    registered_model: str = "goldstress-gold-returns"
    champion_alias: str = "champion"

    # --- modelling -------------------------------------------------------------------------
    vol_train_start: str | None = Field(
        default="2000-01-01",
        description=(
            "First date of the GARCH-family training sample. On gold since 1968 (and any start "
            "before ~1990) the fitted persistence sits on the stationarity bound (IGARCH), the "
            "known bias from volatility regime shifts (Lamoureux & Lastrapes 1990, JBES 8(2)); "
            "from 2000 it is 0.99. The EVT tail and the predictor use the full history."
        ),
    )
    evt_threshold_quantile: float = Field(default=0.95, gt=0.5, lt=1.0)
    backtest_holdout_days: int = Field(
        default=1000, ge=250, description="Most recent trading days kept out of GARCH fitting."
    )
    var_levels: tuple[float, ...] = (0.95, 0.99)
    horizons_days: tuple[int, ...] = (1, 10, 30)
    rv_window_days: int = Field(default=20, ge=5, description="Forward realised-vol window.")

    # --- prediction ------------------------------------------------------------------------
    mc_paths: int = Field(default=10_000, ge=100, le=5_000_000)
    mc_horizon_days: int = Field(default=250, ge=30, le=2_520)
    mc_chunk_paths: int = Field(default=2_000, ge=100)
    mc_seed: int = 20_261_121
    replay_windows: dict[str, tuple[str, str]] = Field(
        default={
            "1980_bubble_burst": ("1980-01-01", "1982-06-30"),
            "gfc_2008": ("2008-03-01", "2008-10-31"),
            "bear_2011_2015": ("2011-09-01", "2015-12-31"),
            "crash_apr_2013": ("2013-04-01", "2013-04-30"),
            "covid_mar_2020": ("2020-03-01", "2020-03-31"),
            "selloff_2026_q1": ("2026-01-29", "2026-03-31"),
        },
        description="Historical replay windows (inclusive ISO dates) cut from the gold series.",
    )
    shock_sizes: tuple[float, ...] = (-0.10, -0.20, -0.30, -0.40)
    shock_horizon_days: int = Field(default=30, ge=30)
    token_specs: tuple[Path, ...] = (
        PROJECT_ROOT / "specs" / "gram.toml",
        PROJECT_ROOT / "specs" / "gusd_cdp.toml",
    )
    token_oz_per_token: dict[str, float] = Field(
        default={"paxg": 1.0, "xaut": 1.0},
        description="Troy ounces of gold one token represents, for the observed premium to NAV.",
    )
    fan_chart_paths: int = Field(default=1_000, ge=10, description="Paths kept for the fan chart.")

    @field_validator("var_levels")
    @classmethod
    def _levels_are_fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        for level in v:
            if not 0.5 < level < 1.0:
                raise ValueError(f"var_levels: {level} is not a fraction in (0.5, 1)")
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()


def settings_with(**overrides: Any) -> Settings:
    """Settings from the environment with some fields replaced (``None`` values are ignored).

    Used by flows whose parameters (for example ``data_dir``) override the environment. The
    result is validated like the environment's own values: ``pydantic.ValidationError`` names a
    bad field.
    """
    base = get_settings().model_dump()
    base.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(base)


def new_run_id() -> str:
    """A sortable, unique run id: ``YYYYMMDDTHHMMSSZ-xxxxxx`` (UTC time and 6 hex digits)."""
    import secrets
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
