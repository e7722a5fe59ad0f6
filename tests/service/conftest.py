"""Fixtures for the stakeholder service tests.

``service_root`` builds, once per session and without Prefect or MLflow, a storage tree made by
the pipeline's own code at small size: a curated gold table (synthetic GARCH prices from
``tests/flows/conftest.py``, written by ``goldstress.io.validation.promote``), and three complete run
folders made by the undecorated task functions (``.fn``) of ``tasks.simulate`` and
``tasks.analyse`` plus ``tasks.report.render_html``: ``summary.json``, ``report.html``,
``manifest.json`` and ``results/<scenario>.parquet``. A fourth folder has no summary yet (a run
in progress) and ``whatif/`` holds no run. Tests read these files independently (json, pandas)
to check what the API returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pandas as pd
import pytest

from goldstress.io.champion import RegisteredChampion
from goldstress.settings import Settings
from tests.flows.conftest import SYNTHETIC_REPLAY_WINDOWS, garch_gold_prices

RUN_IDS = ("20260105T120000Z-0a0a0a", "20260106T120000Z-0b0b0b", "20260107T120000Z-0c0c0c")
"""Complete runs, oldest first (different Monte Carlo seeds, so their figures differ)."""

PENDING_RUN = "20260108T120000Z-0d0d0d"
"""A run folder with a manifest but no summary.json (still running)."""

JWT_SECRET = "test-secret-" + "x" * 40
USER_PASSWORDS = {"alice": "alice-pw-1", "victor": "victor-pw-2"}
USER_ROLES = {"alice": "analyst", "victor": "viewer"}
API_KEYS = {"analyst": "ak-analyst-0123456789abcdef", "viewer": "ak-viewer-0123456789abcdef"}
TEST_ITERATIONS = 1_000  # PBKDF2 iterations of the test users (fast; production uses 600k)


@dataclass(frozen=True)
class ServiceRoot:
    """Paths and base settings of the session's storage tree."""

    root: Path
    reports: Path
    store: Path
    base: dict[str, Any]

    def run_dir(self, run_id: str) -> Path:
        return self.reports / run_id


def merged(*parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Settings sections merged field by field, later parts winning."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for section, fields in part.items():
            out[section] = {**out.get(section, {}), **fields}
    return out


def data_settings(root: Path, **sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Settings sections pointing storage at ``root`` with a small Monte Carlo; ``sections``
    override fields section by section."""
    return merged(
        {
            "storage": {"store_url": str(root / "store"), "report_url": str(root / "reports")},
            # never created: no champion
            "tracking": {
                "tracking_uri": f"sqlite:///{root / 'mlflow-absent.db'}",
                "artifact_location": str(root / "mlartifacts"),
            },
            "data": {"data_dir": None},
            "monte_carlo": {"paths": 300, "horizon_days": 40, "chunk_paths": 250, "fan_chart_paths": 100},
            # inside the 1500 synthetic days
            "scenarios": {
                "replay_windows": {"early": SYNTHETIC_REPLAY_WINDOWS["early"]},
                "shock_sizes": (-0.10, -0.30),
            },
        },
        sections,
    )


def write_curated_gold(settings: Settings, n_days: int = 1500, seed: int = 7) -> pd.DataFrame:
    """Promote a synthetic curated gold table (curated schema) with the pipeline's ``promote``."""
    from goldstress.io.validation import promote
    from models.units import TROY_OUNCE_G

    raw = garch_gold_prices(n_days, seed=seed)
    gold = pd.DataFrame(
        {
            "date": pd.to_datetime(raw["date"]).dt.tz_localize("UTC"),
            "usd_per_oz": raw["usd_pm"].astype(float),
        }
    )
    gold["usd_per_g"] = gold["usd_per_oz"] / TROY_OUNCE_G
    gold["source"] = "lbma_pm:synthetic.csv"
    promote(gold, "gold", settings)
    return gold


def make_run(
    run_id: str,
    settings: Settings,
    champion: RegisteredChampion,
    returns: pd.Series,
    meta: dict[str, Any],
    summary: bool = True,
    recommendations: bool = False,
) -> None:
    """One run folder through the pipeline's task functions (no Prefect engine, no MLflow);
    with ``recommendations``, the liquidity recommendations of ``tasks.recommend`` too (its run
    logger replaced by a plain logger, there being no Prefect run)."""
    from goldstress.catalog import Catalog
    from goldstress.io import storage
    from goldstress.publish import publish_run
    from goldstress.report import figures, render_html
    from tasks.analyse import compute_summary
    from tasks.simulate import load_specs, run_scenarios, scenario_defs, write_manifest

    specs = load_specs.fn(settings)
    results = run_scenarios.fn(
        scenario_defs.fn(settings, returns),
        returns,
        meta["last_usd_per_oz"],
        champion.model,
        specs,
        settings,
        run_id,
        meta["data_last_date"],
    )
    liquidity = None
    if recommendations:
        from tasks import recommend

        with mock.patch.object(recommend, "get_run_logger", lambda: logging.getLogger("tests.recommend")):
            liquidity = {
                "recommendations": recommend.recommend.fn(
                    specs, champion.model, meta["last_usd_per_oz"], meta["data_last_date"], settings
                )
            }
    manifest = write_manifest.fn(run_id, results, champion, meta, specs, settings, liquidity=liquidity)
    if not summary:
        return
    summ, man = compute_summary.fn(manifest, settings).as_json(), manifest.as_json()
    catalog = Catalog.of(settings)
    storage.write_json(catalog.run_file(run_id, "summary.json"), summ, settings)
    page = render_html(summ, man, figures(summ, man, None, None))
    storage.write_bytes(catalog.run_file(run_id, "report.html"), page.encode("utf-8"), settings)
    publish_run(run_id, settings)


def train_test_champion(returns: pd.Series) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """The train flow's steps for one candidate, GARCH(1,1)-t, on short windows (validation 250,
    hold-out 500 returns): ``(windows, candidates, fitted)`` shaped as ``training_windows``,
    ``fit_candidate`` and ``fit_champion`` return them."""
    from models.selection import backtest_on_holdout, score_on_validation, split_windows
    from models.volatility import fit_garch

    windows = split_windows(returns.index, 250, 500)
    scored = score_on_validation(returns, windows, "garch", "t", (0.95, 0.99))
    held = backtest_on_holdout(returns, windows, "garch", "t", (0.95, 0.99))
    candidates = [
        {
            "name": "garch_t",
            "score": scored.score,
            "passes_kupiec": scored.passes_kupiec,
            "validation": scored.backtests,
        }
    ]
    fitted = {
        "backtested_fit": held.fit.to_dict(),
        "full_sample_fit": fit_garch(returns.to_numpy(), kind="garch").to_dict(),
        "holdout_backtest": held.backtests,
    }
    return windows, candidates, fitted


def fit_test_champion(returns: pd.Series, meta: dict[str, Any], version: str) -> RegisteredChampion:
    """A champion like the train flow's (:func:`train_test_champion`: GARCH(1,1)-t fitted on all
    returns, with its windows, validation score and hold-out backtest), as ``load_champion_task``
    returns it."""
    from goldstress.io.champion import Champion, training_meta
    from models.volatility import GarchFit

    windows, candidates, fitted = train_test_champion(returns)
    champion = Champion(
        name="garch_t",
        fit=GarchFit.from_dict(fitted["full_sample_fit"]),
        innovations="t",
        tail=None,
        meta={
            **meta,
            **training_meta(windows, candidates, fitted["backtested_fit"]["params"], fitted["holdout_backtest"]),
        },
    )
    return RegisteredChampion(model=champion, registered_model="goldstress-gold-returns", version=version)


@pytest.fixture(scope="session")
def service_root(tmp_path_factory: pytest.TempPathFactory) -> ServiceRoot:
    """Curated gold + three complete runs + one pending run + a ``whatif/`` folder."""
    from tasks.train import load_gold_returns

    root = tmp_path_factory.mktemp("service")
    base = data_settings(root)
    settings = Settings(**base)
    write_curated_gold(settings)
    returns, meta = load_gold_returns.fn(settings)
    for i, run_id in enumerate(RUN_IDS):
        champion = fit_test_champion(returns, meta, version=str(1 + i // 2))
        make_run(run_id, Settings(**merged(base, {"monte_carlo": {"seed": 1000 + i}})), champion, returns, meta)
    make_run(
        PENDING_RUN,
        Settings(**merged(base, {"monte_carlo": {"seed": 2000}})),
        fit_test_champion(returns, meta, "3"),
        returns,
        meta,
        summary=False,
    )
    (root / "reports" / "whatif").mkdir(parents=True, exist_ok=True)
    return ServiceRoot(root=root, reports=root / "reports", store=root / "store", base=base)


def password_hash(password: str) -> str:
    from service.auth import hash_password

    return hash_password(password, iterations=TEST_ITERATIONS)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def service_settings(base: dict[str, dict[str, Any]], **sections: dict[str, Any]) -> Settings:
    """Settings for a non-dev service over ``base`` storage, with the test users and API keys;
    ``sections`` override fields section by section."""
    service = {
        "jwt_secret": JWT_SECRET,
        "users": {u: {"password_hash": password_hash(p), "role": USER_ROLES[u]} for u, p in USER_PASSWORDS.items()},
        "api_keys": {sha256_hex(k): role for role, k in API_KEYS.items()},
        "dev_mode": False,
        "host": "127.0.0.1",
        "index_ttl_s": 2.0,
    }
    return Settings(**merged(base, {"service": service}, sections))


@pytest.fixture(scope="session")
def settings_factory(service_root: ServiceRoot):
    """``make(**sections) -> Settings`` over the session's storage tree."""
    return lambda **sections: service_settings(service_root.base, **sections)


@pytest.fixture
def make_client(settings_factory):
    """``make(**settings overrides) -> TestClient`` of a fresh app (cookies off by default)."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    clients = []

    def make(settings: Settings | None = None, **overrides: Any) -> TestClient:
        client = TestClient(create_app(settings or settings_factory(**overrides)))
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client):
    """A client of the default test app (the session's runs, no Prefect API needed)."""
    return make_client()


def bearer(client, user: str) -> dict[str, str]:
    """``Authorization`` header of a fresh login of a test user."""
    r = client.post("/api/token", data={"username": user, "password": USER_PASSWORDS[user]})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # keep each request's credential explicit
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def analyst(client) -> dict[str, str]:
    return bearer(client, "alice")


@pytest.fixture
def viewer(client) -> dict[str, str]:
    return bearer(client, "victor")


@pytest.fixture(scope="session")
def whatif_deployment(prefect_api) -> str:
    """A deployment of the ``whatif`` flow registered on the Prefect test harness (no worker:
    its flow runs stay scheduled). Returns its ``<flow>/<deployment>`` name."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        flow_id = c.create_flow_from_name("whatif")
        c.create_deployment(flow_id=flow_id, name="service-tests", entrypoint="flows/whatif.py:whatif")
    return "whatif/service-tests"


def service_env(service_root: ServiceRoot, **extra: str) -> dict[str, str]:
    """Environment for a service subprocess over the session's storage tree: this process's
    environment without its ``GOLDSTRESS_*`` variables, the storage settings, the test users and
    JWT secret, ``PYTHONPATH`` at the project root, then ``extra``."""
    import json

    from goldstress.settings import env_name

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_")}
    for section, fields in data_settings(service_root.root).items():
        for key, value in fields.items():
            if value is not None:
                env[env_name(section, key)] = (
                    json.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value)
                )
    users = {u: {"password_hash": password_hash(p), "role": USER_ROLES[u]} for u, p in USER_PASSWORDS.items()}
    env.update(
        {
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "GOLDSTRESS_SERVICE_JWT_SECRET": JWT_SECRET,
            "GOLDSTRESS_SERVICE_USERS": json.dumps(users),
            **extra,
        }
    )
    return env


@contextlib.contextmanager
def running_server(
    args: list[str], port: int, env: dict[str, str], log_path: Path, timeout_s: float = 60.0
) -> Iterator[str]:
    """``python <args>`` (a server on 127.0.0.1:``port``) started from the project root with its
    output in ``log_path``; yields its base URL once ``/api/health`` answers 200 (AssertionError
    with the log's tail if it exits or does not answer within ``timeout_s``); terminated on exit."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert proc.poll() is None, f"server exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}"
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"server did not answer /api/health within {timeout_s:g} s"
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
