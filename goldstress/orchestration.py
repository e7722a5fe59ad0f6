"""Prefect run health: heartbeats and the automation that marks silent (killed) flow runs Crashed.

See docs/platform/orchestration.md.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from goldstress.settings import Settings

__all__ = [
    "CRASH_AUTOMATION",
    "RUN_TAG",
    "crash_automation",
    "crash_orphans",
    "ensure_crash_detection",
    "no_heartbeats",
    "process_tag",
    "run_health",
]

CRASH_AUTOMATION = "goldstress: mark unresponsive flow runs crashed"
"""Name of the automation :func:`ensure_crash_detection` installs (one per Prefect server)."""

RUN_TAG = "goldstress"
"""Tag of every goldstress flow run; the automation watches only runs with it, so other flows on
a shared server (with their own heartbeat frequency) are never touched."""


@contextmanager
def run_health(settings: Settings) -> Iterator[None]:
    """Context for starting flow runs: they are tagged :data:`RUN_TAG` and emit a heartbeat
    event every ``settings.orchestration.heartbeat_s`` seconds (Prefect's
    ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, set with ``prefect.settings.temporary_settings``)."""
    from prefect import tags
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with tags(RUN_TAG), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: settings.orchestration.heartbeat_s}):
        yield


@contextmanager
def no_heartbeats() -> Iterator[None]:
    """Context for flow runs on the ephemeral server: no heartbeat events (nothing watches them,
    and one sent while the server stops at the end of the run fails with an error line)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@contextmanager
def shared_ephemeral_server() -> Iterator[str]:
    """Context in which this process's flow runs and the Dask workers it starts all report to one
    temporary Prefect server: started here (``prefect.server.api.server.SubprocessASGIServer``,
    as Prefect's ephemeral mode does) and set as ``PREFECT_API_URL`` for the context, which
    Prefect passes to the tasks it sends to Dask (without it each worker process starts a
    temporary server of its own: some 15 s each, and their runs never reach the run's
    server). Yields the API URL; the server stops on exit. Raises ``RuntimeError`` (Prefect's)
    when the server does not start within ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        server.stop()


def crash_automation(settings: Settings) -> Any:
    """The automation, as Prefect documents it for self-hosted servers
    (https://docs.prefect.io/v3/advanced/detect-zombie-flows): a proactive trigger per flow run
    tagged :data:`RUN_TAG` that expects a heartbeat or a final state within
    ``settings.orchestration.unresponsive_after_s`` seconds of each heartbeat, and otherwise
    changes the run's state to Crashed. Returns a ``prefect.automations.Automation`` (not yet
    created on a server)."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    after_s = settings.orchestration.unresponsive_after_s
    return Automation(
        name=CRASH_AUTOMATION,
        description=(
            f"A flow run that sent a heartbeat and then nothing for {after_s} s (no heartbeat, no final "
            "state) lost its process: mark it Crashed."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_s),
        ),
        actions=[
            ChangeFlowRunState(
                name=None,
                force=False,
                state=StateType.CRASHED,
                message=f"No heartbeat for {after_s} s: the flow run's process died (killed, evicted or lost its host).",
            )
        ],
    )


def ensure_crash_detection(settings: Settings) -> str:
    """Create the crash automation on the current Prefect API, or update it when its settings
    changed; returns its id. Raises whatever the Prefect client raises when the API cannot be
    reached (callers that only want it best-effort catch ``Exception``)."""
    from prefect.automations import Automation

    wanted = crash_automation(settings)
    found: Any  # Prefect's sync/async dispatch hides the sync return type from mypy
    try:
        found = Automation.read(name=CRASH_AUTOMATION)
    except ValueError:  # Prefect raises ValueError("Automation ... not found")
        found = None
    if found is None:
        return str(wanted.create().id)
    if found.trigger != wanted.trigger or found.actions != wanted.actions or not found.enabled:
        found.trigger, found.actions, found.description, found.enabled = (
            wanted.trigger,
            wanted.actions,
            wanted.description,
            True,
        )
        found.update()
    return str(found.id)


def add_tags(flow_run_id: Any, current: list[str], extra: list[str]) -> None:
    """Add ``extra`` to the tags of flow run ``flow_run_id`` (its tags are ``current``) through
    the Prefect API. Flow runs only: a ``prefect.tags`` context would tag every task run as well,
    and Prefect takes a tag concurrency slot, with a lease, for each tag of each task run."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run_id, tags=sorted(set(current) | set(extra)))


def tagging_hook(extra: list[str]) -> Callable[[Any, Any, Any], None]:
    """An ``on_running`` flow hook adding ``extra`` to the flow run's tags (:func:`add_tags`).
    Defined here, not beside the flows: Prefect sends the flow, hooks included, with every task
    it submits to Dask, and a worker imports the hook's module to unpickle it."""

    def hook(flow: Any, flow_run: Any, state: Any) -> None:
        add_tags(flow_run.id, list(flow_run.tags), extra)

    return hook


def process_tag() -> str:
    """Tag naming the process that runs a flow: ``process:<host name>:<pid>``. With it,
    :func:`crash_orphans` can tell a flow run whose process is gone from one still running."""
    return f"process:{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def crash_orphans() -> list[str]:
    """Mark ``Crashed`` every flow run on the current Prefect API that is tagged :data:`RUN_TAG`,
    still ``Running`` or ``Pending``, and whose :func:`process_tag` names a process of this host
    that no longer exists, with its task runs still running or pending (killed with the ephemeral server it started, which then could not run
    the heartbeat automation). Runs of other hosts, or without a process tag, are left alone.
    Returns the ids of the runs marked. Raises what the Prefect client raises when the API cannot
    be reached."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    host = socket.gethostname()
    open_states = [StateType.RUNNING, StateType.PENDING]
    open_tasks = TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=open_states)))
    marked: list[str] = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[RUN_TAG]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=open_states)),
            )
        )
        for run in runs:
            parts = next((t.split(":") for t in run.tags if t.startswith("process:")), [])
            if len(parts) != 3:
                continue
            _, tag_host, pid = parts
            if tag_host != host or not pid.isdigit() or _alive(int(pid)):
                continue
            message = f"Its process ({tag_host}, pid {pid}) is gone: killed or lost before the run ended."
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            for task_run in client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])), task_run_filter=open_tasks
            ):
                client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
            marked.append(str(run.id))
    return marked
