"""Fixtures for flow tests: one Prefect test harness per session (a real Prefect API server on a
temporary SQLite database) and, per test, settings pointing storage and MLflow at a temp folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import get_settings


@pytest.fixture(scope="session")
def prefect_api():
    """Prefect's own test harness: a real API server subprocess on a temporary database.

    Cold start takes 9-15 s on 2 cores, so the timeout is raised well above the 30 s default.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated goldstress settings: store, reports and a real SQLite MLflow store under tmp."""
    monkeypatch.setenv("GOLDSTRESS_STORE_URL", str(tmp_path / "store"))
    monkeypatch.setenv("GOLDSTRESS_REPORT_URL", str(tmp_path / "reports"))
    monkeypatch.setenv("GOLDSTRESS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GOLDSTRESS_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "mlartifacts"))
    monkeypatch.setenv("GOLDSTRESS_MC_PATHS", "600")
    monkeypatch.setenv("GOLDSTRESS_MC_HORIZON_DAYS", "40")
    monkeypatch.setenv("GOLDSTRESS_MC_CHUNK_PATHS", "200")
    monkeypatch.setenv("GOLDSTRESS_FAN_CHART_PATHS", "100")
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


@pytest.fixture
def synthetic_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder in the real layouts: an LBMA PM file and two token OHLC files, plus replay
    windows that fall inside the synthetic dates."""
    d = tmp_path / "data"
    d.mkdir()
    gold = garch_gold_prices(3000, seed=7)
    gold.to_csv(d / "gold_pm.csv", index=False)
    cal = pd.DataFrame({"date": pd.date_range(gold["date"].iloc[-700], gold["date"].iloc[-1], freq="D")})
    g = gold.assign(date=pd.to_datetime(gold["date"])).set_index("date")["usd_pm"].reindex(cal["date"]).ffill()
    for sym, prem in (("paxg", 0.002), ("xaut", -0.001)):
        close = (g * (1 + prem)).round(2).to_numpy()
        pd.DataFrame({"date": cal["date"].dt.strftime("%Y-%m-%d"), "open_usd": close, "high_usd": close * 1.003, "low_usd": close * 0.997, "close_usd": close}).round(2).to_csv(d / f"{sym}.csv", index=False)
    monkeypatch.setenv("GOLDSTRESS_GOLD_FILE", "gold_pm.csv")
    monkeypatch.setenv("GOLDSTRESS_TOKEN_FILES", '{"paxg": "paxg.csv", "xaut": "xaut.csv"}')
    monkeypatch.setenv(
        "GOLDSTRESS_REPLAY_WINDOWS",
        '{"early": ["2006-05-01", "2006-07-31"], "late": ["2015-03-02", "2015-04-30"]}',
    )
    get_settings.cache_clear()
    return d
