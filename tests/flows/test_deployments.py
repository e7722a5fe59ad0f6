"""The deployments of prefect.yaml against REAL Prefect services, as the README runs them.

One end-to-end test: `prefect server start` (own PREFECT_HOME and SQLite database, free port on
127.0.0.1) -> `prefect work-pool create` -> `prefect --no-prompt deploy --all` from the
repository root -> deployments read back over the REST API and compared with prefect.yaml parsed
here independently -> the server's scheduler creates SCHEDULED runs on the cron instants (the
behaviour SQLAlchemy 2.1 silently breaks: this guards the `sqlalchemy<2.1` pin) -> a triggered
`refresh_data/daily-ingest-validate` run executed by `prefect worker start --run-once` on a
synthetic data folder reaches COMPLETED and promotes curated tables into a temporary store.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.flows.deploy_helpers import (
    REPO_ROOT,
    cron_matches,
    next_cron_instant,
    prefect_env,
    prefect_server,
    run_cli,
    wait_for,
)

POOL = "goldstress-pool"
TRIGGERED = "refresh_data/daily-ingest-validate"


def _yaml_deployments() -> dict[str, dict]:
    """prefect.yaml's deployments by name, read with yaml.safe_load (anchors resolved)."""
    spec = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def _parse_ts(text: str) -> datetime:
    """An API timestamp (ISO 8601, 'Z' or offset) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.slow
def test_deployments_on_real_prefect_server(tmp_path: Path, workdir: Path, synthetic_data_dir: Path) -> None:
    """README commands on a real server; deployments match prefect.yaml; cron runs appear; a
    triggered refresh completes on a one-shot worker and promotes the synthetic data."""
    expected = _yaml_deployments()
    # three scheduled pipeline deployments plus the on-demand what-if of the stakeholder service
    scheduled = {name: d for name, d in expected.items() if d.get("schedules")}
    assert len(scheduled) == 3, f"prefect.yaml should schedule three deployments, found {sorted(scheduled)}"
    assert set(expected) - set(scheduled) == {"whatif"}, sorted(expected)

    with prefect_server(tmp_path / "prefect_home") as server:
        cli_env = prefect_env(server.home, api_url=server.api_url, extra={"PWD": str(REPO_ROOT)})
        logs = tmp_path / "logs"
        logs.mkdir()

        # 2-3. work pool and deployments, exactly the README's commands
        run_cli(["work-pool", "create", POOL, "--type", "process"], cli_env, REPO_ROOT, logs / "pool.log")
        t_deploy = datetime.now(UTC)
        run_cli(["--no-prompt", "deploy", "--all"], cli_env, REPO_ROOT, logs / "deploy.log")

        # 4. read back through the API and compare with the file
        deployments = server.post("/deployments/filter", {})
        by_name = {d["name"]: d for d in deployments}
        assert sorted(by_name) == sorted(expected), f"deployments on the server: {sorted(by_name)}"
        for name, want in expected.items():
            got = by_name[name]
            assert got["entrypoint"] == want["entrypoint"], name
            assert got["description"] == want["description"], name
            assert got["work_pool_name"] == want["work_pool"]["name"] == POOL, name
            # the README's `prefect deployment run '<flow>/<deployment>'` relies on flow names
            # equal to the entrypoint functions' names
            flow = server.get(f"/flows/{got['flow_id']}")
            assert flow["name"] == want["entrypoint"].rsplit(":", 1)[1], name
            assert got["parameters"] == want.get("parameters", {}), name
            got_sched = sorted(
                (s["schedule"]["cron"], s["schedule"]["timezone"], s["active"]) for s in got["schedules"]
            )
            want_sched = sorted((s["cron"], s["timezone"], True) for s in want.get("schedules", []))
            assert got_sched == want_sched, f"{name}: schedules {got_sched} != {want_sched}"
            # no path of the deploying machine: the run works in the worker's directory ("."),
            # which the one-shot worker below (started in this checkout) resolves
            assert {"prefect.deployments.steps.set_working_directory": {"directory": "."}} in got["pull_steps"], name
            assert got["job_variables"].get("working_dir") == ".", name
            # watched by the crash automation: tagged, and heartbeats well inside its window
            assert "goldstress" in got["tags"], name
            assert got["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30", name
            assert str(REPO_ROOT) not in str(got["pull_steps"]) + str(got["job_variables"]), name

        # 5. the scheduler creates SCHEDULED runs on the cron instants (guards sqlalchemy<2.1)
        dep_ids = {d["id"]: d["name"] for d in deployments}

        def scheduled_runs() -> dict[str, list[dict]]:
            runs = server.post(
                "/flow_runs/filter",
                {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}, "deployment_id": {"any_": list(dep_ids)}}},
            )
            out: dict[str, list[dict]] = {}
            for r in runs:
                out.setdefault(dep_ids[r["deployment_id"]], []).append(r)
            return out

        runs = wait_for(
            lambda: (s := scheduled_runs()) and len(s) == len(scheduled) and s,
            timeout_s=90,
            interval_s=1,
            what="SCHEDULED flow runs for all three deployments (broken scheduler: sqlalchemy>=2.1?)",
            details=lambda: (
                f"have { ({k: len(v) for k, v in scheduled_runs().items()}) }\nserver output:\n{server.output()}"
            ),
        )
        t_seen = datetime.now(UTC)
        for name, want in scheduled.items():
            cron, tz = want["schedules"][0]["cron"], want["schedules"][0]["timezone"]
            starts = sorted(_parse_ts(r["expected_start_time"]) for r in runs[name])
            assert all(r["auto_scheduled"] for r in runs[name]), name
            bad = [t for t in starts if not cron_matches(cron, t, tz)]
            assert not bad, f"{name}: runs off the cron {cron!r} ({tz}): {bad[:3]}"
            # the first run is the next cron instant after deployment (or after now, had a cron
            # instant passed while the test ran)
            firsts = {next_cron_instant(cron, t_deploy, tz), next_cron_instant(cron, t_seen, tz)}
            assert starts[0] in firsts, f"{name}: first scheduled run {starts[0]}, expected one of {firsts}"

        # pause every schedule so the one-shot worker sees only the triggered run
        for d in deployments:
            for s in d["schedules"]:
                server.patch(f"/deployments/{d['id']}/schedules/{s['id']}", {"active": False})

        # 6. trigger the daily refresh and run it on a one-shot worker with synthetic data
        out = run_cli(["deployment", "run", TRIGGERED], cli_env, REPO_ROOT, logs / "trigger.log")
        m = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
        assert m, f"no flow run UUID in `prefect deployment run` output:\n{out}"
        run_id = m.group(1)
        run = server.get(f"/flow_runs/{run_id}")
        assert dep_ids[run["deployment_id"]] == "daily-ingest-validate"

        store = workdir / "store"
        worker_env = dict(cli_env)
        worker_env.update(
            {
                "GOLDSTRESS_DATA_DIR": str(synthetic_data_dir),
                "GOLDSTRESS_STORE_URL": str(store),
                # set by the synthetic_data_dir fixture in this process: name them explicitly
                "GOLDSTRESS_GOLD_FILE": "gold_pm.csv",
                "GOLDSTRESS_TOKEN_FILES": '{"paxg": "paxg.csv", "xaut": "xaut.csv"}',
            }
        )
        worker_log = logs / "worker.log"
        run_cli(["worker", "start", "--pool", POOL, "--run-once"], worker_env, REPO_ROOT, worker_log, timeout_s=240)

        def final_state() -> dict | None:
            state = server.get(f"/flow_runs/{run_id}")["state"]
            return state if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

        state = wait_for(
            final_state,
            timeout_s=120,
            what=f"flow run {run_id} to finish",
            details=lambda: f"worker output:\n{worker_log.read_text()[-6000:]}",
        )
        assert state["type"] == "COMPLETED", (
            f"flow run ended {state['type']}: {state.get('message')}\nworker output:\n{worker_log.read_text()[-6000:]}"
        )

    # the flow run read the synthetic folder and promoted curated tables into the temp store
    curated = store / "curated"
    assert (curated / "gold.parquet").is_file(), (
        f"no curated gold in {store}: {sorted(p.name for p in store.rglob('*'))[:20]}"
    )
    for sym in ("paxg", "xaut"):
        assert (curated / f"token_{sym}.parquet").is_file(), sym
    gold = pd.read_parquet(curated / "gold.parquet")
    src = pd.read_csv(synthetic_data_dir / "gold_pm.csv")
    assert len(gold) == len(src)
    assert gold["date"].dt.strftime("%Y-%m-%d").tolist() == src["date"].tolist()
    assert gold["usd_per_oz"].to_numpy() == pytest.approx(src["usd_pm"].to_numpy(), rel=1e-12)
