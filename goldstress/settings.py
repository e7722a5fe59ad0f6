"""The one typed place for goldstress configuration.

Every value can be set from the environment with the prefix ``GOLDSTRESS_`` (for example
``GOLDSTRESS_DATA_DIR``, ``GOLDSTRESS_REPORT_URL``, ``GOLDSTRESS_MC_PATHS``) or from a ``.env``
file in the working directory. Nested mappings (``storage_options``) take JSON.

Conventions used across the project (docs/platform/pipeline.md, "Conventions"):
- returns are daily *log* returns as fractions (0.01 = 1%), arrays shaped ``(n_paths, horizon_days)``;
- prices carry their unit in the name: ``usd_per_oz`` (troy ounce, 31.1034768 g), ``usd_per_g``;
- rates and fees are fractions, not percent; confidence levels are fractions (0.99).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Repository root; defaults for local storage live under it."""


ServiceRole = Literal["viewer", "analyst"]
"""Roles of the stakeholder service, lowest first: ``viewer`` reads reports, ``analyst`` also
submits what-if runs."""

PASSWORD_HASH_RE = re.compile(r"^pbkdf2_sha256\$([1-9][0-9]{0,8})\$([0-9a-f]{16,128})\$([0-9a-f]{64})$")
"""``pbkdf2_sha256$<iterations>$<salt hex>$<sha256 digest hex>`` (made by ``python -m service.hashpw``)."""


class ServiceUser(BaseModel):
    """One user of the stakeholder service: a PBKDF2-SHA256 password hash and a role.

    ``password_hash`` is a ``SecretStr`` so it never shows in a repr or log. Raises
    ``pydantic.ValidationError`` naming the field for a malformed hash, an unknown role or an
    unknown key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    password_hash: SecretStr
    role: ServiceRole

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, v: SecretStr) -> SecretStr:
        if not PASSWORD_HASH_RE.match(v.get_secret_value()):
            raise ValueError(
                "password_hash: expected pbkdf2_sha256$<iterations>$<salt hex>$<64 hex digits> (python -m service.hashpw)"
            )
        return v


class CalibrationSet(BaseModel):
    """One premium calibration: a token price file measured against the gold close.

    ``token`` is the lower-case symbol (``token_<token>`` curated dataset), ``file`` the token CSV
    inside ``data_dir``, ``oz_per_token`` the troy ounces one token represents (> 0). The premium
    process is fitted on ``fit_start..fit_end`` and scored out of sample on
    ``test_start..test_end`` (inclusive UTC days; the fit window must end before the test window
    starts). Raises ``pydantic.ValidationError`` naming the field otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(pattern=r"^[a-z0-9]+$")
    file: str = Field(min_length=1)
    oz_per_token: float = Field(default=1.0, gt=0)
    fit_start: date
    fit_end: date
    test_start: date
    test_end: date

    @model_validator(mode="after")
    def _ordered(self) -> CalibrationSet:
        if not self.fit_start <= self.fit_end < self.test_start <= self.test_end:
            raise ValueError(
                "calibration windows: need fit_start <= fit_end < test_start <= test_end, got "
                f"{self.fit_start}..{self.fit_end} then {self.test_start}..{self.test_end}"
            )
        return self


class DataSettings(BaseSettings):
    """Data acquisition: the data folder and its files, the online sources, HTTP limits. Environment: ``GOLDSTRESS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

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
    token_oz_per_token: dict[str, float] = Field(
        default={"paxg": 1.0, "xaut": 1.0},
        description="Troy ounces of gold one token represents, for the observed premium to NAV.",
    )
    supply_proxy_files: dict[str, tuple[str, str]] = Field(
        default={
            "PAXG": ("paxg_usd_daily_cmc_2019_2020.csv", "close_usd"),
            "XAUT": ("xaut_usd_daily_coingecko_2020_2023.csv", "price_usd"),
        },
        description="Token -> (file in data_dir, price column): market_cap_usd / price is the "
        "circulating-supply proxy whose worst falls are reported beside the stress wave.",
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
    max_file_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description=(
            "Largest data file or snapshot read, in bytes; checked before reading (default 64 MiB, 70 "
            "times the largest real daily file). Gating a file takes about 13 MB of memory per MiB "
            "(bench/GATE_MEMORY.md), so the limit bounds the memory of a run."
        ),
    )
    gate_overlap_median_log: float = Field(
        default=0.005,
        gt=0,
        description="Gate: largest median |ln(new/old)| of the close on days the new and last good tables share.",
    )
    gate_overlap_far_log: float = Field(
        default=0.02, gt=0, description="Gate: |ln(new/old)| above which an overlapping day counts as far off."
    )
    gate_overlap_far_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Gate: largest share (fraction) of overlapping days that may be far off.",
    )
    gate_level_ratio: tuple[float, float] = Field(
        default=(0.8, 1.25),
        description="Gate: allowed range of the median new/old close ratio on overlapping days.",
    )
    gate_allow_shrink: bool = Field(
        default=False,
        description="Gate: accept a table with fewer rows or an earlier last date than the last good one.",
    )
    gate_future_days: int = Field(
        default=1, ge=0, description="Gate: rows may be dated at most this many days after today (UTC)."
    )
    gate_cross_source_median_log: float = Field(
        default=0.02,
        gt=0,
        description=(
            "Gate: largest median |ln(a/b)| between the gold price per troy ounce of two sources (LBMA "
            "fix, token close / ounces per token) on shared days; LBMA vs PAXG/XAUT closes 2022-26: 0.4-0.6 %."
        ),
    )


class StorageSettings(BaseSettings):
    """Object storage: where snapshots, curated tables and reports live (any fsspec URL). Environment: ``GOLDSTRESS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

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


class TrackingSettings(BaseSettings):
    """MLflow tracking and the model registry. Environment: ``GOLDSTRESS_MLFLOW_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_MLFLOW_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    tracking_uri: str = Field(default=f"sqlite:///{PROJECT_ROOT / 'var' / 'mlflow.db'}")
    artifact_location: str = Field(default=str(PROJECT_ROOT / "var" / "mlartifacts"))
    experiment: str = "goldstress"
    registered_model: str = "goldstress-gold-returns"
    champion_alias: str = "champion"


class OrchestrationSettings(BaseSettings):
    """Prefect run-health settings. Environment: ``GOLDSTRESS_PREFECT_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_PREFECT_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    heartbeat_s: int = Field(
        default=30,
        ge=30,
        le=3600,
        description="Seconds between a flow run's heartbeat events (Prefect's PREFECT_FLOWS_HEARTBEAT_FREQUENCY; 30 at least).",
    )
    unresponsive_after_s: int = Field(
        default=90,
        ge=10,
        le=86400,
        description="A running flow run with no heartbeat for this long is marked Crashed by the automation "
        "the run installs (docs.prefect.io/v3/advanced/detect-zombie-flows); at least twice heartbeat_s.",
    )

    @model_validator(mode="after")
    def _window_spans_heartbeats(self) -> OrchestrationSettings:
        if self.unresponsive_after_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"unresponsive_after_s ({self.unresponsive_after_s}) must be at least twice heartbeat_s "
                f"({self.heartbeat_s}), or healthy runs would be marked Crashed between two heartbeats"
            )
        return self


class TrainingSettings(BaseSettings):
    """Fitting the gold-return models: samples, EVT threshold, validation and hold-out windows, predictor window. Environment: ``GOLDSTRESS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

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
    champion_validation_days: int = Field(
        default=500,
        ge=250,
        description=(
            "Trading days, just before the backtest hold-out, on which the GARCH-family candidates "
            "(fitted on the days before) are scored and the champion is picked."
        ),
    )
    backtest_holdout_days: int = Field(
        default=1000,
        ge=250,
        description=(
            "Most recent trading days, after the validation window, on which the champion (refitted on "
            "the days before) is backtested; no candidate fit or selection sees them."
        ),
    )
    rv_window_days: int = Field(default=20, ge=5, description="Forward realised-vol window.")


class RiskSettings(BaseSettings):
    """Risk figures: VaR/ES confidence levels and reporting horizons. Environment: ``GOLDSTRESS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    var_levels: tuple[float, ...] = (0.95, 0.99)
    horizons_days: tuple[int, ...] = (1, 10, 30)
    stale_data_days: int = Field(
        default=7,
        ge=0,
        le=3660,
        description="The report warns when the gold data ends more days than this before the run.",
    )

    @field_validator("var_levels")
    @classmethod
    def _levels_are_fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        for level in v:
            if not 0.5 < level < 1.0:
                raise ValueError(f"risk.var_levels: {level} is not a fraction in (0.5, 1)")
        return v


class ScenarioSettings(BaseSettings):
    """Scenario library and the token specs run through it. Environment: ``GOLDSTRESS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    replay_windows: dict[str, tuple[str, str]] = Field(
        default={
            "1980_bubble_burst": ("1979-12-01", "1982-12-31"),
            "cb_sales_1996_1999": ("1996-01-01", "1999-12-31"),
            "gfc_2008": ("2008-01-01", "2008-12-31"),
            "bear_2011_2015": ("2011-06-01", "2015-12-31"),
            "crash_apr_2013": ("2013-03-15", "2013-07-31"),
            "covid_mar_2020": ("2020-02-15", "2020-04-30"),
            "rate_rise_2022": ("2022-02-15", "2022-12-31"),
            "selloff_2026_q1": ("2026-01-15", "2026-03-31"),
        },
        description="Historical episodes: name -> search window (inclusive ISO dates). Each replay is "
        "the episode's peak close to its trough close inside the window, found from the gold series "
        "(models.scenarios.episode_window).",
    )
    shock_sizes: tuple[float, ...] = (-0.10, -0.20, -0.30, -0.40)
    shock_horizon_days: int = Field(default=30, ge=30)
    token_specs: tuple[Path, ...] = Field(
        default=(
            PROJECT_ROOT / "specs" / "gram.toml",
            PROJECT_ROOT / "specs" / "paxg.toml",
            PROJECT_ROOT / "specs" / "xaut.toml",
            PROJECT_ROOT / "specs" / "dgx.toml",
            PROJECT_ROOT / "specs" / "gusd_cdp.toml",
        ),
        description="Token spec files (TOML, spec_version 2) run through every scenario.",
    )


class MonteCarloSettings(BaseSettings):
    """Monte Carlo size, seed and chunking of the champion's gold paths. Environment: ``GOLDSTRESS_MC_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_MC_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    paths: int = Field(default=10_000, ge=100, le=5_000_000)
    horizon_days: int = Field(default=250, ge=30, le=2_520)
    chunk_paths: int = Field(default=1_000, ge=100)
    seed: int = 20_261_121
    fan_chart_paths: int = Field(default=1_000, ge=10, description="Paths kept for the fan chart.")
    task_paths: int = Field(
        default=25_000,
        ge=250,
        description="Paths per Monte Carlo task (the unit of work sent to a Dask worker); the paths "
        "are the same whatever this and the worker count (per-block random streams). Each task "
        "costs the run's process a fixed share of CPU in Prefect (its submission, its context "
        "serialised) whatever its size (docs/platform/scale.md).",
    )
    keep_path_results: bool = Field(
        default=True,
        description="Keep each scenario's per-path Parquet table with the run (results/<scenario>.parquet). "
        "False: the tables are deleted once the report is written, so disk does not grow with the "
        "runs (about 0.15 GB per 100,000 Monte Carlo paths with five tokens); the figures and the summary are unchanged.",
    )
    drift: Literal["zero", "historical"] | float = Field(
        default="zero",
        description="Mean log return of the Monte Carlo: 'zero' (the stress default: gold is not "
        "assumed to rise), 'historical' (the champion's fitted mu), or an annual log return as a "
        "fraction in [-1, 1] (models.scenarios.stress_drift_per_day).",
    )

    @field_validator("drift")
    @classmethod
    def _drift_range(cls, v: str | float) -> str | float:
        if not isinstance(v, str) and not -1.0 <= v <= 1.0:
            raise ValueError(f"monte_carlo.drift: an annual log return in [-1, 1], got {v}")
        return v


MAX_DEFAULT_THREADS = 4
"""The most threads a run's process uses by default (``DaskSettings.threads`` 0)."""


class DaskSettings(BaseSettings):
    """Where the Monte Carlo tasks run. Environment: ``GOLDSTRESS_DASK_<FIELD>``.

    ``address`` set: an existing Dask scheduler (``tcp://host:8786``); else ``workers`` > 0: a
    ``distributed.LocalCluster`` of that many single-threaded worker processes started for the
    run, through Prefect's ``prefect_dask.DaskTaskRunner`` (docs.prefect.io/integrations/prefect-dask);
    else (0, the default) the tasks run in the run's own process on ``threads`` threads
    (Prefect's ``ThreadPoolTaskRunner``).
    """

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_DASK_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    address: str | None = Field(default=None, description="Dask scheduler address, e.g. tcp://dask-scheduler:8786.")
    workers: int = Field(default=0, ge=0, le=256, description="Local Dask worker processes (0: none, run in process).")
    threads_per_worker: int = Field(default=1, ge=1, le=64)
    memory_limit: str = Field(
        default="auto", description="Memory limit per local worker (Dask's memory_limit: 'auto', '2GiB')."
    )
    threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Threads of the run's own process that run the tasks when no Dask cluster is asked "
        "for (workers 0, no address); 0: one per CPU core this process may use, at most "
        f"{MAX_DEFAULT_THREADS}. Each thread adds about one task's memory (docs/platform/scale.md).",
    )

    def process_threads(self) -> int:
        """The threads the run's own process gives its tasks: ``threads`` when set, else (0) the
        CPU cores this process may use (``os.sched_getaffinity`` where the system has it, else
        ``os.cpu_count()``), at most :data:`MAX_DEFAULT_THREADS`; at least 1. Raises nothing."""
        if self.threads:
            return self.threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(cores, MAX_DEFAULT_THREADS))


class LiquidityStressSettings(BaseSettings):
    """The liquidity stress test (redemption wave) and the recommendations' search. Environment: ``GOLDSTRESS_LIQUIDITY_STRESS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_LIQUIDITY_STRESS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    wave_share: float = Field(
        default=0.20,
        gt=0,
        le=1,
        description="Redemption wave of the liquidity stress: share of the supply requested within "
        "wave_days. A hypothetical stress size (wave_basis): the gold-token supply proxies measured in "
        "each run fell at most a few percent in 30 days once revisions of the reported supply are removed.",
    )
    wave_basis: str = Field(
        default="hypothetical: 20% of the supply within 5 days, above any measured gold-token outflow",
        min_length=1,
        description="What the wave size rests on, stated in the summary and the report: 'hypothetical' "
        "or the published episode and its source.",
    )
    wave_days: int = Field(default=5, ge=1, le=60, description="Days of the redemption wave.")
    confidence: float = Field(default=0.99, ge=0.5, lt=1.0, description="Confidence of the coverage target.")
    target_coverage: float = Field(default=1.0, gt=0, description="Liquidity coverage to keep (1.0 = 100%).")
    recommend_paths: int = Field(
        default=20_000,
        ge=100,
        le=100_000,
        description="Monte Carlo gold paths (the first of the main run's) on which recommendations "
        "are searched; the next as many paths are the out-of-sample check.",
    )
    recommend_redeem_fees: tuple[float, ...] = Field(
        default=(0.0, 0.001, 0.0025, 0.005, 0.01), min_length=1, description="Redeem fees (fractions of NAV) re-run."
    )
    recommend_redemption_limits: tuple[float | None, ...] = Field(
        default=(None, 0.10, 0.05, 0.02),
        min_length=1,
        description="Redemption gates re-run: most accepted per day as a share of the supply (None = no gate).",
    )


class CalibrationSettings(BaseSettings):
    """Premium calibration: files, windows, candidate models, and where its fits are used. Environment: ``GOLDSTRESS_CALIBRATION_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_CALIBRATION_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    premium_for: dict[str, str] = Field(
        default={"PAXG": "paxg", "XAUT": "xaut"},
        description="Token symbol -> calibration set whose fitted premium process replaces the "
        "spec's assumed one in simulations, when <store_url>/calibration/<set>.json exists.",
    )
    in_stress_test: bool = Field(
        default=True, description="Run the calibrate flow inside stress_test when data_dir is set."
    )
    gold_file: str = Field(
        default="xauusd_broker_mt5_daily_2007_2026.csv",
        description="Gold close on the token clock inside data_dir: the broker XAU/USD bar closing "
        "24:00 UTC, like crypto daily candles. The premium process is fitted against it.",
    )
    reference_gold_file: str | None = Field(
        default="gold_lbma_usd_daily_1968_2026_merged.csv",
        description="A second gold reference on another clock (LBMA PM, 15:00 London) measured "
        "beside the aligned one to show the clock effect; None skips it.",
    )
    sets: dict[str, CalibrationSet] = Field(
        default={
            "paxg": CalibrationSet(
                token="paxg",
                file="paxg_usd_daily_2022_2026.csv",
                fit_start=date(2022, 3, 1),
                fit_end=date(2024, 6, 30),
                test_start=date(2024, 7, 1),
                test_end=date(2026, 3, 31),
            ),
            "xaut": CalibrationSet(
                token="xaut",
                file="xaut_usd_daily_2022_2026.csv",
                fit_start=date(2022, 3, 1),
                fit_end=date(2024, 6, 30),
                test_start=date(2024, 7, 1),
                test_end=date(2026, 3, 31),
            ),
            "paxg_2019_2020": CalibrationSet(
                token="paxg",
                file="paxg_usd_daily_cmc_2019_2020.csv",
                fit_start=date(2019, 9, 26),
                fit_end=date(2020, 6, 30),
                test_start=date(2020, 7, 1),
                test_end=date(2020, 12, 31),
            ),
        },
        description="Calibration name -> token file, ounces per token, fit and test windows; "
        "parameters are written to <store_url>/calibration/<name>.json.",
    )
    weekend_rule: Literal["drop", "last_gold_close"] = Field(
        default="drop",
        description="Premium series the process is fitted on: 'drop' keeps days with a gold close "
        "(trading-day clock); 'last_gold_close' also compares weekend token rows with Friday's close.",
    )
    max_step_gap_days: int = Field(
        default=4,
        ge=1,
        le=10,
        description="Longest calendar gap still one step of the premium series (Fri->Mon = 3, plus "
        "a holiday): the premium process steps once per gold trading day, the clock the token "
        "model runs it on; longer holes split the series and no AR(1) step crosses them.",
    )
    stress_windows: dict[str, tuple[str, str]] = Field(
        default={
            "covid_mar_apr_2020": ("2020-03-09", "2020-04-30"),
            "ftx_collapse_2022": ("2022-11-06", "2022-12-31"),
            "usdc_depeg_mar_2023": ("2023-03-09", "2023-03-20"),
            "gold_selloff_2026_q1": ("2026-01-29", "2026-03-31"),
        },
        description="Named stress windows (inclusive ISO dates) in which premium statistics are reported.",
    )
    episode_threshold_frac: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="|premium| at which a day counts towards a stress episode (fraction).",
    )
    innovations: Literal["normal", "t"] = Field(
        default="t",
        description="Innovation law of the largest premium model allowed (the fit selects "
        "among nested normal / t / jump candidates by BIC, models.calibration.fit_premium_process).",
    )
    jumps: bool = Field(default=True, description="Allow a jump component among the candidates.")
    sim_paths: int = Field(
        default=1_000,
        ge=100,
        le=100_000,
        description="Simulated paths for the reproduction check (parametric bootstrap of mean, sd, "
        "lag-1 autocorrelation) and, halved, for the model's stationary quantiles.",
    )


class ServiceSettings(BaseSettings):
    """The stakeholder service: authentication, limits, the what-if deployment. Environment: ``GOLDSTRESS_SERVICE_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_SERVICE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 signing key for session JWTs, >= 32 characters. Required unless dev mode.",
    )
    users: dict[str, ServiceUser] = Field(
        default_factory=dict,
        description='JSON {"<username>": {"password_hash": "pbkdf2_sha256$...", "role": "viewer|analyst"}}.',
    )
    api_keys: dict[str, ServiceRole] = Field(
        default_factory=dict,
        description='JSON {"<sha256 hex of the key>": "viewer|analyst"}: hashes only, never keys.',
    )
    dev_mode: bool = Field(
        default=False,
        description="Development only: random JWT secret per start, users dev-viewer/dev-analyst with "
        "password 'dev', public /docs. Refused unless the bound address (service_host, set by the launcher "
        "from --host) is a loopback address.",
    )
    host: str = Field(
        default="127.0.0.1", min_length=1, description="Host the service binds to (checked for dev mode)."
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Base URL users open the service at (e.g. https://goldstress.example.org): the Prefect "
        "artifact of a run links to its report there. None: the artifact names the storage URL.",
    )
    token_ttl_s: int = Field(
        default=3600, ge=60, le=7 * 86400, description="JWT lifetime, seconds (at most token_max_lifetime_s)."
    )
    token_max_lifetime_s: int = Field(
        default=12 * 3600,
        ge=60,
        le=7 * 86400,
        description="Longest JWT lifetime accepted (exp - iat, seconds): longer-lived tokens are refused.",
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=1, le=1_000_000, description="Requests per minute per client (token bucket)."
    )
    whatif_per_minute: int = Field(
        default=10, ge=1, le=10_000, description="What-if submissions per minute per client (token bucket)."
    )
    login_per_minute: int = Field(
        default=20, ge=1, le=10_000, description="Login attempts per minute per client address (token bucket)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description='JSON list of reverse-proxy addresses or networks, e.g. ["10.0.0.5", "10.1.0.0/16"]: '
        "X-Forwarded-For is read only when the direct peer is one of them (default: never).",
    )
    login_free_failures_per_account: int = Field(
        default=5, ge=1, le=1000, description="Login attempts on one account before the back-off starts."
    )
    login_free_failures_per_address: int = Field(
        default=20, ge=1, le=100_000, description="Login attempts from one client address before the back-off starts."
    )
    login_backoff_base_s: float = Field(
        default=1.0, gt=0, le=3600, description="First back-off wait, seconds; doubles with each further attempt."
    )
    login_backoff_max_s: float = Field(
        default=900.0, gt=0, le=86400, description="Longest back-off wait, seconds (a day without attempts resets it)."
    )
    inprocess_max_cells: int = Field(
        default=2_000_000,
        ge=1,
        le=50_000_000,
        description="What-ifs with n_paths * horizon_days up to this run in the service process; larger ones "
        "go to the Prefect deployment.",
    )
    inprocess_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Time limit of an in-process what-if once it runs, seconds (it then fails with 503).",
    )
    inprocess_wait_s: float = Field(
        default=15.0,
        ge=0,
        le=600,
        description="How long POST /api/whatif waits for an in-process what-if before answering 202 "
        "with a Location to poll (it runs on), seconds.",
    )
    whatif_queue_max: int = Field(
        default=16,
        ge=0,
        le=10_000,
        description="Most in-process what-ifs waiting behind the running one; beyond it POST answers 503.",
    )
    max_body_bytes: int = Field(
        default=65_536, ge=1_024, le=10_000_000, description="Largest request body accepted (413 above)."
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1_024,
        le=1_048_576,
        description="Largest request line plus headers accepted by the launcher's HTTP parser (h11), bytes.",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Time a client has to send a request's line and headers, seconds."
    )
    keep_alive_s: int = Field(default=5, ge=1, le=300, description="Idle keep-alive connections are closed after this.")
    body_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="Time a client has to send a request body, seconds (408 after)."
    )
    whatif_deployment: str = Field(
        default="whatif/whatif",
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="Prefect deployment '<flow>/<deployment>' that runs large what-ifs.",
    )
    prefect_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Time limit of one call to the Prefect API, seconds."
    )
    index_ttl_s: float = Field(
        default=2.0, ge=0, le=3600, description="Longest time the run index is reused before re-listing storage."
    )

    @field_validator("jwt_secret")
    @classmethod
    def _secret_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 32:
            raise ValueError(
                "service.jwt_secret: must be at least 32 characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return v

    @field_validator("api_keys")
    @classmethod
    def _api_key_hashes(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for key_hash, role in v.items():
            h = key_hash.strip().lower()
            if not re.fullmatch(r"[0-9a-f]{64}", h):
                raise ValueError(
                    "service.api_keys: every key must be the sha256 hex digest (64 hex digits) of an API key, not the key itself"
                )
            out[h] = role
        return out

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, v: list[str]) -> list[str]:
        import ipaddress

        for item in v:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"service.trusted_proxies: {item!r} is not an IP address or network (e.g. 10.0.0.5, 10.1.0.0/16)"
                ) from None
        return [item.strip() for item in v]

    @model_validator(mode="after")
    def _ttl_within_max(self) -> ServiceSettings:
        if self.login_backoff_max_s < self.login_backoff_base_s:
            raise ValueError("service.login_backoff_max_s: must be at least service.login_backoff_base_s")
        if self.token_ttl_s > self.token_max_lifetime_s:
            raise ValueError(
                f"service.token_ttl_s: {self.token_ttl_s} s is longer than service.token_max_lifetime_s = "
                f"{self.token_max_lifetime_s} s; lower it or raise the maximum"
            )
        return self

    @field_validator("users")
    @classmethod
    def _usernames(cls, v: dict[str, ServiceUser]) -> dict[str, ServiceUser]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
                raise ValueError("service.users: usernames are 1-64 characters of letters, digits and _.@-")
        return v


class MonitoringSettings(BaseSettings):
    """Metrics and logs of the pipeline and the service. Environment: ``GOLDSTRESS_MONITORING_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="GOLDSTRESS_MONITORING_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    pushgateway_url: str | None = Field(
        default=None,
        description="Prometheus Pushgateway (http://host:9091) that receives the pipeline's stage metrics; "
        "None: they are written to <store_url>/metrics/<run_id>.prom.",
    )
    pushgateway_job: str = Field(
        default="goldstress_pipeline", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Pushgateway job label."
    )
    push_timeout_s: float = Field(default=5.0, gt=0, le=60, description="Time limit of one push, seconds.")
    json_logs: bool = Field(
        default=False, description="Log one JSON object per line (python-json-logger) instead of plain text."
    )


class Settings(BaseModel):
    """goldstress settings, in sections; each section reads its own environment variables
    (``GOLDSTRESS_MC_PATHS`` is ``monte_carlo.paths``; docs/platform/configuration.md lists them) and a ``.env`` file.

    Raises ``pydantic.ValidationError`` naming the section and field when a value has the wrong
    type or is out of range (for example ``GOLDSTRESS_MC_PATHS=-1``). Input values are hidden in
    error messages (``hide_input_in_errors``) so that a secret (JWT secret, storage keys) never
    lands in a log through a validation error.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    data: DataSettings = Field(default_factory=DataSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    scenarios: ScenarioSettings = Field(default_factory=ScenarioSettings)
    monte_carlo: MonteCarloSettings = Field(default_factory=MonteCarloSettings)
    dask: DaskSettings = Field(default_factory=DaskSettings)
    liquidity: LiquidityStressSettings = Field(default_factory=LiquidityStressSettings)
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)


class RunOptions(BaseModel):
    """Options of one run, taken by every flow as its typed parameter so that the Prefect UI
    shows and records them per run; each set option overrides the environment's setting.

    ``data_dir`` (folder of CSV files; None: the setting, else fetch online), ``paths``,
    ``horizon_days``, ``seed`` and ``drift`` of the Monte Carlo, ``token_specs`` (spec files run through
    every scenario), ``workers`` and ``threads`` (where the tasks run: :class:`DaskSettings`). Raises ``pydantic.ValidationError`` naming the option when out of range.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: str | None = Field(
        default=None, description="Folder of CSV files to import (overrides GOLDSTRESS_DATA_DIR)."
    )
    paths: int | None = Field(
        default=None, ge=100, le=5_000_000, description="Monte Carlo paths (GOLDSTRESS_MC_PATHS)."
    )
    horizon_days: int | None = Field(default=None, ge=30, le=2_520, description="Monte Carlo horizon, trading days.")
    seed: int | None = Field(default=None, ge=0, description="Monte Carlo seed (GOLDSTRESS_MC_SEED).")
    drift: Literal["zero", "historical"] | float | None = Field(
        default=None, description="Monte Carlo drift assumption (GOLDSTRESS_MC_DRIFT): zero, historical or annual."
    )
    token_specs: list[str] | None = Field(
        default=None, min_length=1, description="Token spec files (GOLDSTRESS_TOKEN_SPECS)."
    )
    workers: int | None = Field(
        default=None, ge=0, le=256, description="Local Dask workers for the Monte Carlo (GOLDSTRESS_DASK_WORKERS)."
    )
    threads: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Threads of the run's process for the Monte Carlo without Dask (GOLDSTRESS_DASK_THREADS).",
    )

    def settings(self) -> Settings:
        """The environment's settings with these options applied (:func:`settings_with`)."""
        return settings_with(
            data={"data_dir": self.data_dir},
            monte_carlo={
                "paths": self.paths,
                "horizon_days": self.horizon_days,
                "seed": self.seed,
                "drift": self.drift,
            },
            scenarios={"token_specs": self.token_specs},
            dask={"workers": self.workers, "threads": self.threads},
        )


def env_name(section: str, field: str) -> str:
    """The environment variable that sets ``field`` of ``section``, e.g.
    ``env_name("monte_carlo", "paths") == "GOLDSTRESS_MC_PATHS"``. ``KeyError`` for an unknown
    section or field."""
    cls = Settings.model_fields[section].annotation
    if field not in cls.model_fields:  # type: ignore[union-attr]
        raise KeyError(f"{section}.{field}")
    return f"{cls.model_config['env_prefix']}{field}".upper()  # type: ignore[union-attr]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()


def settings_with(**sections: dict[str, Any] | None) -> Settings:
    """Settings from the environment with some fields of some sections replaced.

    ``settings_with(data={"data_dir": "/data"}, monte_carlo={"paths": 500})``: each keyword is a
    section of :class:`Settings`, each value a mapping of its fields; ``None`` values (and a
    ``None`` section) are ignored, so a flow's optional parameters pass straight through. The
    result is validated like the environment's own values: ``pydantic.ValidationError`` names a
    bad field, ``ValueError`` an unknown section.
    """
    unknown = set(sections) - set(Settings.model_fields)
    if unknown:
        raise ValueError(
            f"settings_with: unknown section(s) {sorted(unknown)}; sections are {sorted(Settings.model_fields)}"
        )
    base = get_settings().model_dump()
    for name, fields in sections.items():
        base[name].update({k: v for k, v in (fields or {}).items() if v is not None})
    return Settings.model_validate(base)


def new_run_id() -> str:
    """A sortable, unique run id: ``YYYYMMDDTHHMMSSZ-xxxxxx`` (UTC time and 6 hex digits)."""
    import secrets
    from datetime import datetime

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
