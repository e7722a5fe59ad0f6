"""The Prefect server and MLflow's tracking store on a real PostgreSQL, as compose.yaml and the
Kubernetes manifests run them: a throwaway cluster from Debian's PostgreSQL binaries
(``pg_config --bindir``), run as an unprivileged user in a temporary folder on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from goldstress.telemetry import TELEMETRY_OFF
from tests.conftest import free_port
from tests.service.conftest import running_server

USER = "goldstress"


def _bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
    path = Path(out)
    return path if (path / "initdb").is_file() and (path / "pg_ctl").is_file() else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """``postgresql://goldstress@127.0.0.1:<port>`` of a running throwaway cluster with databases
    ``prefect`` and ``mlflow`` (trust authentication on loopback)."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (pg_config --bindir has no initdb/pg_ctl): apt-get install postgresql"
        )
    # its own folder under the temp root: pytest's tmp folders are private to the current user
    root = Path(tempfile.mkdtemp(prefix="goldstress-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        as_user = ["runuser", "-u", "nobody", "--"]
        os.chmod(root, 0o755)
        shutil.chown(root, "nobody")
        shutil.chown(sock, "nobody")
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, cwd=root, timeout=120, check=False)
        assert done.returncode == 0, f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"

    run(str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--no-sync")
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "pg.log"), "-w", "start")
    try:
        for db in ("prefect", "mlflow"):
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, db)
        yield f"postgresql://{USER}@127.0.0.1:{port}"
    finally:
        try:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _query(url: str, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_prefect_server_runs_on_postgresql(postgres: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(TELEMETRY_OFF)
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": postgres.replace("postgresql://", "postgresql+asyncpg://")
            + "/prefect",
        }
    )
    args = ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with running_server(args, port, env, tmp_path / "prefect.log", timeout_s=120) as url:
        r = httpx.post(url + "/api/flows/", json={"name": "postgres-check"}, timeout=30)
        assert r.status_code in (200, 201), r.text
        flow_id = r.json()["id"]
    # the row is in PostgreSQL, read independently of Prefect
    assert _query(postgres + "/prefect", f"select name from flow where id = '{flow_id}'") == [("postgres-check",)]


def test_mlflow_tracking_store_on_postgresql(postgres: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=postgres + "/mlflow")
    exp = client.create_experiment("goldstress-pg", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "var_99_10d", 0.125)
    assert client.get_run(run.info.run_id).data.metrics == {"var_99_10d": 0.125}
    rows = _query(postgres + "/mlflow", f"select key, value from metrics where run_uuid = '{run.info.run_id}'")
    assert rows == [("var_99_10d", 0.125)]
