"""Killed flow runs are marked Crashed: a real Prefect API (the test harness), a flow run in a
subprocess that is killed with SIGKILL after its first heartbeat, and the installed automation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from goldstress.orchestration import crash_automation, ensure_crash_detection
from goldstress.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

SLEEPER = textwrap.dedent(
    """
    import time
    from prefect import flow, tags

    @flow(name="sleeper", flow_run_name="sleeper-for-crash-test")
    def sleeper():
        time.sleep(600)

    with tags("goldstress"):
        sleeper()
    """
)


def _settings(**orchestration: int) -> Settings:
    return Settings(orchestration=orchestration)


def test_the_automation_follows_the_documented_trigger():
    auto = crash_automation(_settings(unresponsive_after_s=90))
    trig = auto.trigger
    assert trig.posture.value == "Proactive"
    assert trig.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Crashed"} <= trig.expect
    assert trig.within.total_seconds() == 90 and trig.for_each == {"prefect.resource.id"}
    assert auto.actions[0].state.value == "CRASHED"


def test_heartbeat_below_prefects_minimum_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="heartbeat_s"):
        _settings(heartbeat_s=5)


def test_a_window_shorter_than_two_heartbeats_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least twice heartbeat_s"):
        _settings(heartbeat_s=60, unresponsive_after_s=90)


def test_only_goldstress_runs_are_watched():
    related = crash_automation(_settings()).trigger.match_related.root
    assert related == {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.goldstress"}


async def _flow_runs(name: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    async with get_client() as client:
        return await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


@pytest.mark.usefixtures("prefect_api")
def test_a_killed_flow_run_is_marked_crashed():
    from prefect.settings import PREFECT_API_URL

    # a 20 s window keeps the test short; it is below the 2 x heartbeat the settings require of a
    # real deployment, which does not matter here: the run is killed, no healthy gap is at stake
    base = _settings()
    settings = base.model_copy(
        update={"orchestration": base.orchestration.model_copy(update={"unresponsive_after_s": 20})}
    )
    first = ensure_crash_detection(settings)
    assert ensure_crash_detection(settings) == first  # idempotent: one automation per server
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
    }
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 90
        while True:  # running, and its first heartbeat (sent at start) had time to arrive
            runs = asyncio.run(_flow_runs("sleeper-for-crash-test"))
            if runs and runs[0].state and runs[0].state.is_running():
                break
            assert proc.poll() is None and time.monotonic() < deadline, "the flow run never started running"
            time.sleep(0.5)
        time.sleep(3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    killed_at = time.monotonic()
    while True:
        state = asyncio.run(_flow_runs("sleeper-for-crash-test"))[0].state
        if state.is_crashed():
            break
        assert state.is_running(), f"unexpected state {state.type}"
        assert time.monotonic() - killed_at < 150, "the killed flow run was not marked Crashed within 150 s"
        time.sleep(2)
    assert "No heartbeat for 20 s" in (state.message or "")


ORPHAN = textwrap.dedent(
    """
    import time
    from prefect import flow, tags, task
    from goldstress.orchestration import process_tag

    @task
    def hang():
        time.sleep(600)

    @flow(name="orphan", flow_run_name="orphan-for-sweep-test")
    def orphan():
        hang()

    with tags("goldstress", process_tag()):
        orphan()
    """
)


@pytest.mark.usefixtures("prefect_api")
def test_runs_of_a_killed_process_are_crashed_and_live_ones_left_alone():
    """The ephemeral-server case: a run whose process (on this host) is gone is marked Crashed
    by the next start's sweep; a running run of a live process, and one of another host, stay."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Running

    from goldstress.orchestration import crash_orphans, process_tag

    @flow(name="orphan-sweep-peer")
    def peer() -> None:
        return None

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 90
        while True:
            runs = asyncio.run(_flow_runs("orphan-for-sweep-test"))
            if runs and runs[0].state and runs[0].state.is_running():
                with get_client(sync_client=True) as client:
                    flt = FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id]))
                    # A task run can be read before its first state is recorded (state None).
                    states = [t.state and t.state.type.value for t in client.read_task_runs(flow_run_filter=flt)]
                    if states == ["RUNNING"]:
                        break
            assert proc.poll() is None and time.monotonic() < deadline, "the flow run never started running"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with get_client(sync_client=True) as client:
        live = client.create_flow_run(peer, tags=["goldstress", process_tag()], state=Running())
        other = client.create_flow_run(peer, tags=["goldstress", "process:another-host:1"], state=Running())
    marked = crash_orphans()
    orphan_run = asyncio.run(_flow_runs("orphan-for-sweep-test"))[0]
    assert marked == [str(orphan_run.id)]
    assert orphan_run.state.is_crashed() and f"pid {proc.pid}" in orphan_run.state.message
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[orphan_run.id])))
        assert [t.state.type.value for t in tasks] == ["CRASHED"]  # the task it was in, too
        assert client.read_flow_run(live.id).state.is_running()
        assert client.read_flow_run(other.id).state.is_running()
    assert crash_orphans() == []  # already marked
