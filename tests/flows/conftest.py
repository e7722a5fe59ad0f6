"""Fixtures for flow tests: one Prefect test harness per session (a real Prefect API server on a
temporary SQLite database) and, per test, settings pointing storage and MLflow at a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import get_settings


def isolated_env(root: Path) -> dict[str, str]:
    """GOLDSTRESS_* variables for an isolated run under ``root``: store, reports, a SQLite MLflow
    store and an artifact folder, plus a small Monte Carlo (600 paths x 40 days) and small
    recommendation searches (300 paths, as many out of sample)."""
    return {
        "GOLDSTRESS_STORE_URL": str(root / "store"),
        "GOLDSTRESS_REPORT_URL": str(root / "reports"),
        "GOLDSTRESS_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "GOLDSTRESS_MLFLOW_ARTIFACT_LOCATION": str(root / "mlartifacts"),
        "GOLDSTRESS_MC_PATHS": "600",
        "GOLDSTRESS_MC_HORIZON_DAYS": "40",
        "GOLDSTRESS_MC_CHUNK_PATHS": "200",
        "GOLDSTRESS_MC_FAN_CHART_PATHS": "100",
        "GOLDSTRESS_LIQUIDITY_STRESS_RECOMMEND_PATHS": "300",
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated goldstress settings: store, reports and a real SQLite MLflow store under tmp."""
    for key, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def garch_gold_prices(n_days: int, seed: int, p0: float = 1200.0) -> pd.DataFrame:
    """A synthetic gold series: GARCH(1,1) log returns with Student-t(6) shocks, on business
    days from 2005-01-03; parameters near those fitted to gold (persistence 0.98)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta, nu = 2e-6, 0.05, 0.93, 6.0
    z = rng.standard_t(nu, n_days) * np.sqrt((nu - 2) / nu)
    s2 = omega / (1 - alpha - beta)
    r = np.empty(n_days)
    for t in range(n_days):
        r[t] = np.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    dates = pd.bdate_range("2005-01-03", periods=n_days)
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "usd_pm": np.round(p0 * np.exp(np.cumsum(r)), 2)})


SYNTHETIC_REPLAY_WINDOWS = {"early": ("2006-05-01", "2006-07-31"), "late": ("2015-03-02", "2015-04-30")}
"""Replay windows inside the synthetic dates (2005-01-03 .. 2016-06)."""


def write_synthetic_data(d: Path) -> dict[str, str]:
    """Write an LBMA PM gold file and two token OHLC files (real layouts) into ``d``; return the
    GOLDSTRESS_* variables that point the settings at them (file names, replay windows)."""
    import json

    d.mkdir(parents=True, exist_ok=True)
    gold = garch_gold_prices(3000, seed=7)
    gold.to_csv(d / "gold_pm.csv", index=False)
    cal = pd.DataFrame({"date": pd.date_range(gold["date"].iloc[-700], gold["date"].iloc[-1], freq="D")})
    g = gold.assign(date=pd.to_datetime(gold["date"])).set_index("date")["usd_pm"].reindex(cal["date"]).ffill()
    for sym, prem in (("paxg", 0.002), ("xaut", -0.001)):
        close = (g * (1 + prem)).round(2).to_numpy()
        pd.DataFrame(
            {
                "date": cal["date"].dt.strftime("%Y-%m-%d"),
                "open_usd": close,
                "high_usd": close * 1.003,
                "low_usd": close * 0.997,
                "close_usd": close,
            }
        ).round(2).to_csv(d / f"{sym}.csv", index=False)
    return {
        "GOLDSTRESS_GOLD_FILE": "gold_pm.csv",
        "GOLDSTRESS_TOKEN_FILES": '{"paxg": "paxg.csv", "xaut": "xaut.csv"}',
        "GOLDSTRESS_REPLAY_WINDOWS": json.dumps({k: list(v) for k, v in SYNTHETIC_REPLAY_WINDOWS.items()}),
    }


@pytest.fixture
def synthetic_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder in the real layouts: an LBMA PM file and two token OHLC files, plus replay
    windows that fall inside the synthetic dates."""
    d = tmp_path / "data"
    for key, value in write_synthetic_data(d).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return d


@contextmanager
def goldstress_env(values: dict[str, str | None]) -> Iterator[pytest.MonkeyPatch]:
    """Set (or, for ``None``, remove) environment variables for a block, usable at any fixture
    scope; the settings cache is cleared on entry and exit so ``get_settings`` sees the change."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            yield mp
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def flowkit() -> SimpleNamespace:
    """Helpers for module-scoped runs: ``isolated_env(root)``, ``write_synthetic_data(dir)``,
    ``env(values)`` (context manager) and ``replay_windows`` (the synthetic windows)."""
    return SimpleNamespace(
        isolated_env=isolated_env,
        write_synthetic_data=write_synthetic_data,
        env=goldstress_env,
        replay_windows=SYNTHETIC_REPLAY_WINDOWS,
        garch_gold_prices=garch_gold_prices,
    )
