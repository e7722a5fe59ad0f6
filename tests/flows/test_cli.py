"""The command line as a user runs it: ``python -m goldstress run`` in a subprocess.

Exit codes (flows/cli.py): 0 done, 1 data rejected by validation, 2 cannot start. A run
that cannot start must say so in ONE line on stderr and must not start anything heavy (no
Prefect server). Each subprocess gets ``os.environ`` plus isolated GOLDSTRESS_* settings, its
own PREFECT_HOME and a temporary working directory (so no ``.env`` file is picked up).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from goldstress.settings import PROJECT_ROOT, get_settings

SERVER_WORDS = ("temporary server", "Starting temporary", "prefect server")


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without any GOLDSTRESS_*/PREFECT_API_URL, plus isolated settings under root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_") and k != "PREFECT_API_URL"}
    env.update(
        {
            "PYTHONPATH": str(PROJECT_ROOT),
            "PREFECT_HOME": str(root / "prefect_home"),
            "GOLDSTRESS_STORE_URL": str(root / "store"),
            "GOLDSTRESS_REPORT_URL": str(root / "reports"),
            "GOLDSTRESS_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "GOLDSTRESS_MLFLOW_ARTIFACT_LOCATION": str(root / "mlartifacts"),
        }
    )
    env.update(extra or {})
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m goldstress run ...`` with a generous timeout (a guard against hangs only)."""
    return subprocess.run(
        [sys.executable, "-m", "goldstress", "run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_offline_without_data_stops_with_one_line(tmp_path):
    port = closed_port()
    env = cli_env(
        tmp_path,
        {
            "GOLDSTRESS_LBMA_PM_URL": f"http://127.0.0.1:{port}/json/gold_pm.json",
            "GOLDSTRESS_COINGECKO_URL": f"http://127.0.0.1:{port}/api/v3",
        },
    )
    proc = run_cli([], env, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "DATA=" in lines[0]
    assert str(port) in lines[0] or "127.0.0.1" in lines[0], "the line should name the unreachable source"
    for word in SERVER_WORDS:
        assert word not in proc.stderr + proc.stdout
    assert not (tmp_path / "store").exists(), "nothing may be written before the sources answer"


def test_missing_data_dir_stops_with_one_line(tmp_path):
    missing = tmp_path / "no_such_folder"
    proc = run_cli(["--data-dir", str(missing)], cli_env(tmp_path), tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(missing) in lines[0] and "DATA=" in lines[0]
    for word in SERVER_WORDS:
        assert word not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_validate_stage_rejects_bad_data_with_exit_1(prefect_api, tmp_path, flowkit):
    """Raw snapshots of a gold file with a duplicated date are taken first (the ingest step's
    own function), then ``--stage validate`` must exit 1 naming the uniqueness expectation;
    the datasets that pass are still promoted, the gold one is not."""
    import prefect.settings

    from goldstress.io.snapshots import import_file

    data_dir = tmp_path / "data"
    names = flowkit.write_synthetic_data(data_dir)
    gold = pd.read_csv(data_dir / "gold_pm.csv", dtype=str)
    dup_date = gold.loc[1200, "date"]
    pd.concat([gold.iloc[:1201], gold.iloc[[1200]], gold.iloc[1201:]]).to_csv(data_dir / "gold_pm.csv", index=False)

    env = cli_env(tmp_path, {**names, "GOLDSTRESS_DATA_DIR": str(data_dir)})
    with flowkit.env({k: v for k, v in env.items() if k.startswith("GOLDSTRESS_")}):
        settings = get_settings()
        import_file(data_dir / settings.data.gold_file, "gold", settings)
        for symbol, name in settings.data.token_files.items():
            import_file(data_dir / name, f"token_{symbol}", settings)

    # reuse the session's Prefect API server rather than starting another one
    env["PREFECT_API_URL"] = prefect.settings.PREFECT_API_URL.value()
    proc = run_cli(["--stage", "validate", "--data-dir", str(data_dir)], env, tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    rejected = [line for line in proc.stderr.splitlines() if line.startswith("goldstress: data rejected")]
    assert len(rejected) == 1, proc.stderr[-3000:]
    assert "expect_column_values_to_be_unique(date)" in rejected[0]
    assert dup_date in rejected[0]
    curated = tmp_path / "store" / "curated"
    assert not (curated / "gold.parquet").exists()
    assert {p.name for p in curated.glob("token_*.parquet")} == {f"token_{s}.parquet" for s in ("paxg", "xaut")}


@pytest.mark.parametrize("stage", ["analyse", "all"])
def test_unreachable_mlflow_stops_with_one_line_before_writing(tmp_path, stage):
    """An MLflow tracking URI nobody answers at: the stage stops within seconds (not MLflow's
    minutes of retries) with one line naming MLflow and its URL, no Prefect server, and the
    files of the existing run untouched."""
    import time

    port = closed_port()
    run = tmp_path / "reports" / "20260101T000000Z-000000"
    run.mkdir(parents=True)
    files = {name: f"{name} as published\n" for name in ("manifest.json", "summary.json", "report.html")}
    for name, text in files.items():
        (run / name).write_text(text)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = cli_env(tmp_path, {"GOLDSTRESS_MLFLOW_TRACKING_URI": f"http://user:pw@127.0.0.1:{port}"})
    started = time.monotonic()
    proc = run_cli(["--stage", stage, "--data-dir", str(data_dir)], env, tmp_path, timeout=120)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "MLflow" in lines[0] and f"http://127.0.0.1:{port}" in lines[0]
    assert "user:pw@" not in lines[0]  # no credentials
    for word in SERVER_WORDS:
        assert word not in proc.stderr + proc.stdout
    assert {p.name: p.read_text() for p in run.iterdir()} == files
    assert not (tmp_path / "store").exists()


def test_unreachable_object_store_stops_with_one_line_before_writing(tmp_path):
    """A report store on an S3 endpoint nobody answers at: the run stops within 30 s with one
    line naming the setting and the URL, never the credentials, and starts no Prefect server."""
    import json
    import time

    port = closed_port()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    options = {
        "key": "AKIDSECRETKEY",
        "secret": "s3cr3t",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"},
    }
    env = cli_env(
        tmp_path,
        {"GOLDSTRESS_REPORT_URL": "s3://goldstress-reports/runs", "GOLDSTRESS_STORAGE_OPTIONS": json.dumps(options)},
    )
    started = time.monotonic()
    proc = run_cli(["--data-dir", str(data_dir)], env, tmp_path, timeout=120)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "s3://goldstress-reports/runs (GOLDSTRESS_REPORT_URL)" in lines[0] and "nothing was written" in lines[0]
    assert "s3cr3t" not in proc.stderr and "AKIDSECRETKEY" not in proc.stderr
    for word in SERVER_WORDS:
        assert word not in proc.stderr + proc.stdout
    assert not (tmp_path / "store").exists()


def test_validate_stage_rejects_a_unit_change_in_one_line_and_quarantines_it(prefect_api, tmp_path, flowkit):
    """A good gold file is promoted, then the same file in USD per gram: ``--stage validate``
    exits 1 with one line naming the file and the gate check; the curated gold table and its
    history, and raw/, hash the same before and after; the rejected snapshot sits in quarantine/."""
    import hashlib

    import prefect.settings

    from goldstress.io.snapshots import import_file
    from tasks.curate import validate_and_promote

    def tree_hash(folder: Path, pattern: str = "*") -> str:
        h = hashlib.sha256()
        for p in sorted(q for q in folder.rglob(pattern) if q.is_file()):
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
        return h.hexdigest()

    data_dir = tmp_path / "data"
    names = flowkit.write_synthetic_data(data_dir)
    env = cli_env(tmp_path, {**names, "GOLDSTRESS_DATA_DIR": str(data_dir)})
    with flowkit.env({k: v for k, v in env.items() if k.startswith("GOLDSTRESS_")}):
        settings = get_settings()
        validate_and_promote.fn(import_file(data_dir / settings.data.gold_file, "gold", settings), settings)
        gold = pd.read_csv(data_dir / "gold_pm.csv")
        gold["usd_pm"] = (gold["usd_pm"] / 31.1034768).round(4)
        gold.to_csv(data_dir / "gold_pm.csv", index=False)
        for symbol, name in settings.data.token_files.items():
            import_file(data_dir / name, f"token_{symbol}", settings)
        store = tmp_path / "store"
        before = tree_hash(store / "curated", "*gold*"), tree_hash(store / "raw")
        import_file(data_dir / settings.data.gold_file, "gold", settings)

    env["PREFECT_API_URL"] = prefect.settings.PREFECT_API_URL.value()
    proc = run_cli(["--stage", "validate", "--data-dir", str(data_dir)], env, tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    rejected = [line for line in proc.stderr.splitlines() if line.startswith("goldstress: data rejected")]
    assert len(rejected) == 1, proc.stderr[-3000:]
    assert "rejected gold_pm.csv: check level_vs_last_good:" in rejected[0]
    assert "1/31.1: USD per gram?" in rejected[0]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert (tree_hash(store / "curated", "*gold*"), tree_hash(store / "raw")) == before  # tokens promoted
    assert len(list((store / "quarantine").rglob("*.csv"))) == 1
    # the stage's flow run is named after the stage and a run id, tagged with the process that ran it
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="validate-20")))
    assert runs, "no flow run named validate-<run id>"
    host = f"process:{socket.gethostname()}:"
    assert all("goldstress" in r.tags and any(t.startswith(host) for t in r.tags) for r in runs), runs


def goldstress_command() -> list[str]:
    """The ``goldstress`` console script beside this interpreter (``make install`` puts it
    there); ``python -m goldstress`` (the same ``flows.cli:main``) where the project is not installed."""
    script = Path(sys.executable).with_name("goldstress")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "goldstress"]


def test_console_script_is_the_cli_entry_point(tmp_path):
    """``[project.scripts]`` names ``flows.cli:main``, and ``--version`` answers with the package version."""
    import tomllib

    import goldstress
    from flows.cli import main

    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"goldstress": "flows.cli:main"}
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    proc = subprocess.run(
        [*goldstress_command(), "--version"], env=cli_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"goldstress {goldstress.__version__}", proc.stderr


def test_tokens_option_names_a_missing_spec_in_one_line(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    proc = run_cli(["--tokens", "paxg,nosuchtoken", "--data-dir", str(data_dir)], cli_env(tmp_path), tmp_path, 120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--tokens" in lines[0] and "'nosuchtoken'" in lines[0], proc.stderr


@pytest.mark.slow
@pytest.mark.realdata
def test_run_on_the_real_data_reports_each_stage_and_where_the_outputs_are(prefect_api, tmp_path, shared_data_dir):
    """``goldstress run`` on the real data (small Monte Carlo, calibration off, two tokens):
    one line per stage in order with its time, then the run id, report and summary; no traceback,
    no Python warning, and no WARNING record from a library (only the flows' own, and the one line
    of an event the test harness's SQLite-backed server did not take). Prefect: the
    parent flow run is ``stress-<run id>``, tagged, with the report artifact linking the
    service's page; its sub-flow runs are named after the run id. MLflow (the sqlite store of
    the run): the stress run carries the run's settings as parameters and its metrics grouped
    as ``<TOKEN>/<metric>``, equal to the summary's values."""
    import json
    import re

    import prefect.settings
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterParentFlowRunId,
    )

    env = cli_env(
        tmp_path,
        {
            "GOLDSTRESS_CALIBRATION_IN_STRESS_TEST": "false",
            "GOLDSTRESS_MC_HORIZON_DAYS": "60",
            "GOLDSTRESS_SERVICE_PUBLIC_URL": "https://goldstress.example.org",
            "PREFECT_API_URL": prefect.settings.PREFECT_API_URL.value(),
        },
    )
    args = ["run", "--data-dir", str(shared_data_dir), "--paths", "200", "--seed", "7", "--tokens", "paxg,xaut"]
    proc = subprocess.run(
        [*goldstress_command(), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    stage_lines = [line for line in out if line.startswith("[")]
    names = ("ingest", "validate", "calibrate", "train", "simulate", "analyse")
    assert len(stage_lines) == len(names), proc.stdout
    for i, (line, name) in enumerate(zip(stage_lines, names), start=1):
        if name == "calibrate":
            assert re.fullmatch(rf"\[{i}/6\] {name} +\.\.\. skipped \(.+\)", line), line
        else:
            assert re.fullmatch(rf"\[{i}/6\] {name} +\.\.\. done in \d+\.\d s", line), line
    run_id = re.fullmatch(r"goldstress: run (\S+) done", out[-3]).group(1)  # type: ignore[union-attr]
    report = tmp_path / "reports" / run_id / "report.html"
    summary_path = tmp_path / "reports" / run_id / "summary.json"
    assert out[-2] == f"goldstress: report  {report}" and report.is_file()
    assert out[-1] == f"goldstress: summary {summary_path}" and summary_path.is_file()
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both and "Warning" not in both, proc.stderr[-3000:]
    undelivered = re.compile(
        r"\| WARNING \| .*\| prefect\._internal\.concurrency - Prefect event '[^']+' not delivered"
    )
    for line in proc.stderr.splitlines():  # what stays on stderr: the flows' own warnings only
        assert "| WARNING | Task run '" in line or "| WARNING | Flow run '" in line or undelivered.search(line), line

    with get_client(sync_client=True) as client:
        parents = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"stress-{run_id}"]))
        )
        assert len(parents) == 1
        parent = parents[0]
        assert {"goldstress", run_id, "token:paxg", "token:xaut"} <= set(parent.tags)
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id]))
        )
        assert sorted(c.name for c in children) == sorted(f"{s}-{run_id}" for s in names if s != "calibrate")
        assert all({"goldstress", run_id, "token:paxg", "token:xaut"} <= set(c.tags) for c in children)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[parent.id]))
        )
        assert [a.key for a in artifacts] == ["goldstress-report"]
        link = f"(https://goldstress.example.org/api/runs/{run_id}/report.html)"
        assert link in str(artifacts[0].data)

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    mlflow_client = MlflowClient(tracking_uri=env["GOLDSTRESS_MLFLOW_TRACKING_URI"])
    stress = mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name("goldstress").experiment_id],
        filter_string=f"tags.goldstress_run_id = '{run_id}'",
    )
    assert len(stress) == 1
    params, metrics = stress[0].data.params, stress[0].data.metrics
    assert params["mc_paths"] == "200" and params["mc_horizon_days"] == "60" and params["mc_seed"] == "7"
    assert params["mc_drift"] == "zero" and params["tokens"] == "PAXG,XAUT"
    assert params["data_sha256"] == summary["data"]["data_sha256"]
    assert {key.split("/", 1)[0] for key in metrics} == {"PAXG", "XAUT"}
    mc = summary["tokens"]["PAXG"]["scenarios"]["mc_champion"]
    assert metrics["PAXG/holder_value_var_99_10d_frac"] == pytest.approx(mc["holder_value_var_99_10d_frac"], rel=1e-12)

    # `report` renders the page again from the summary and publishes it again: the marker's
    # sha256 of report.html is the new file's, and the summary is untouched
    import hashlib

    summary_bytes = summary_path.read_bytes()
    again = subprocess.run(
        [*goldstress_command(), "report", run_id], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and again.stdout.strip() == f"goldstress: report  {report}", again.stderr
    marker = json.loads((report.parent / "published.json").read_text(encoding="utf-8"))
    recorded = {f["name"]: f["sha256"] for f in marker["files"]}
    assert recorded["report.html"] == hashlib.sha256(report.read_bytes()).hexdigest()
    assert summary_path.read_bytes() == summary_bytes

    # `whatif` on the run's champion: a 30 % gold fall over 30 days takes 30 % of the gold
    # share of PAXG's reserve (gold / (gold + cash) from the preset spec), within redemption effects
    wi = subprocess.run(
        [
            *goldstress_command(),
            "whatif",
            "--token",
            "PAXG",
            "--shock",
            "-0.3",
            "--paths",
            "200",
            "--horizon-days",
            "60",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wi.returncode == 0, wi.stderr[-3000:]
    result = json.loads(wi.stdout)
    spec = result["inputs"]["token_spec"]
    gold_oz = sum(r["amount"] for r in spec["reserve"] if r["kind"] == "allocated_gold") / 31.1034768
    gold_usd = gold_oz * result["inputs"]["start_gold_usd_per_oz"]
    cash_usd = sum(r["amount"] for r in spec["reserve"] if r["kind"] == "usd_cash")
    expected = 0.3 * gold_usd / (gold_usd + cash_usd)
    assert result["shock"]["reserve_per_token_loss_frac_30d"] == pytest.approx(expected, abs=2e-3)
