"""The full ``stress_test`` with every table and report on S3 (moto's S3 server on localhost).

Only the storage settings change (``GOLDSTRESS_STORE_URL``/``GOLDSTRESS_REPORT_URL`` as
``s3://`` URLs, credentials and endpoint in ``GOLDSTRESS_STORAGE_OPTIONS``); MLflow stays on a
local SQLite store. The test lists the bucket with s3fs (an independent client) and reads the
results back.
"""

from __future__ import annotations

import io
import json
import math
import socket
import tomllib
import uuid
from pathlib import Path

import pandas as pd
import pytest

from goldstress.settings import RunOptions, get_settings

pytestmark = pytest.mark.slow

# moto keeps one process-wide backend: a bucket name of its own keeps this test independent
BUCKET = f"goldstress-flows-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's threaded S3 server on a free local port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_stress_test_writes_everything_to_s3(prefect_api, s3_endpoint, tmp_path, flowkit):
    import s3fs

    from flows.stress_test import stress_test

    creds = {"key": "testing", "secret": "testing", "endpoint_url": s3_endpoint}
    fs = s3fs.S3FileSystem(**creds)
    fs.mkdir(BUCKET)
    data_dir = tmp_path / "data"
    env = {
        **flowkit.isolated_env(tmp_path),
        **flowkit.write_synthetic_data(data_dir),
        "GOLDSTRESS_DATA_DIR": str(data_dir),
        "GOLDSTRESS_STORE_URL": f"s3://{BUCKET}/store",
        "GOLDSTRESS_REPORT_URL": f"s3://{BUCKET}/reports",
        "GOLDSTRESS_STORAGE_OPTIONS": json.dumps(creds),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with flowkit.env(env):
        settings = get_settings()
        out = stress_test(options=RunOptions(data_dir=str(data_dir)))

    run_id = out["run_id"]
    prefix = f"{BUCKET}/reports/{run_id}"
    assert out["report_html"] == f"s3://{prefix}/report.html"
    fs.invalidate_cache()
    files = set(fs.find(f"{BUCKET}/"))
    for name in ("report.html", "summary.json", "manifest.json", "published.json"):
        assert f"{prefix}/{name}" in files, name
    with flowkit.env(env):
        from goldstress.publish import published

        marker = published(run_id, get_settings())
    assert marker is not None  # published whole: every file at its recorded size
    assert {f["name"] for f in marker["files"]} == {
        p.removeprefix(f"{prefix}/") for p in files if p.startswith(f"{prefix}/") and not p.endswith("published.json")
    }
    parquets = sorted(p for p in files if p.startswith(f"{prefix}/results/") and p.endswith(".parquet"))
    expected = (
        {"mc_champion"}
        | {f"hist_{n}" for n in flowkit.replay_windows}
        | {f"shock_{round(s * 100):+d}pct" for s in settings.scenarios.shock_sizes}
    )
    assert {p.rsplit("/", 1)[-1].removesuffix(".parquet") for p in parquets} == expected

    summary = json.loads(fs.cat(f"{prefix}/summary.json"))
    symbols = set(summary["tokens"])
    # the configured spec files' symbols, read independently of the model code
    assert symbols == {tomllib.loads(Path(p).read_text())["symbol"] for p in settings.scenarios.token_specs}
    with fs.open(f"{prefix}/results/mc_champion.parquet", "rb") as fh:
        mc = pd.read_parquet(io.BytesIO(fh.read()))
    required = {
        "scenario",
        "kind",
        "token",
        "path",
        "horizon_days",
        "gold_log_return_end",
        "gold_max_drawdown",
        "backing_ratio_end",
        "backing_ratio_min",
        "liquidated",
        "bad_debt_usd",
        "holder_max_drawdown_frac",
        "reserve_per_token_max_drawdown_frac",
    }
    for h in settings.risk.horizons_days:
        required |= {
            f"gold_log_return_{h}d",
            f"holder_loss_frac_{h}d",
            f"reserve_per_token_loss_frac_{h}d",
            f"backing_ratio_{h}d",
        }
    assert required <= set(mc.columns)
    assert len(mc) == settings.monte_carlo.paths * len(symbols)
    assert set(mc["token"]) == symbols and (mc["scenario"] == "mc_champion").all()
    assert mc.groupby("token")["path"].nunique().eq(settings.monte_carlo.paths).all()
    with fs.open(f"{prefix}/results/shock_-20pct.parquet", "rb") as fh:
        shock = pd.read_parquet(io.BytesIO(fh.read()))
    assert shock["gold_log_return_1d"].tolist() == pytest.approx([math.log(0.8)] * len(symbols), abs=1e-12)

    store = f"{BUCKET}/store"
    raw = [p for p in files if p.startswith(f"{store}/raw/")]
    for source in (settings.data.gold_file, *settings.data.token_files.values()):
        assert any(source.removesuffix(".csv") in p and p.endswith(".meta.json") for p in raw), source
    assert f"{store}/curated/gold.parquet" in files
    for symbol in settings.data.token_files:
        assert f"{store}/curated/token_{symbol}.parquet" in files
    with fs.open(f"{store}/curated/gold.parquet", "rb") as fh:
        gold = pd.read_parquet(io.BytesIO(fh.read()))
    assert len(gold) == len(pd.read_csv(data_dir / settings.data.gold_file))
    assert any(p.startswith(f"{store}/validation/") and p.endswith("report.md") for p in files)
