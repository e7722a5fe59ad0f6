"""The command line's log quieting, driven through Prefect's own events worker."""

from __future__ import annotations

import io
import logging

import pytest

from flows.console import CHATTY_LOGGERS, EVENT_LOGGER, SELF_LEVELLED_LOGGERS, UndeliveredEventLine, quiet_loggers


@pytest.fixture
def event_log(monkeypatch: pytest.MonkeyPatch):
    """A handler on Prefect's services logger that keeps its formatted lines; what
    ``quiet_loggers`` changes (loggers' levels and filters, Dask's log level variable) is restored
    afterwards."""
    logger = logging.getLogger(EVENT_LOGGER)
    monkeypatch.setenv("DASK_LOGGING__DISTRIBUTED", "warning")
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    for name in (*SELF_LEVELLED_LOGGERS, EVENT_LOGGER):
        monkeypatch.setattr(logging.getLogger(name), "filters", list(logging.getLogger(name).filters))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s | %(name)s - %(message)s"))
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)  # (setLevel also clears the loggers' level caches)


def _send_undeliverable(message: str) -> None:
    """One heartbeat event through a real ``EventsWorker`` whose client raises
    ``ConnectionError(message)`` on emit, as a refused or timed-out API does."""
    from prefect.events import Event
    from prefect.events.clients import EventsClient
    from prefect.events.worker import EventsWorker

    class RefusingEventsClient(EventsClient):
        async def _emit(self, event: Event) -> None:
            raise ConnectionError(message)

    worker = EventsWorker.instance(client_type=RefusingEventsClient)
    worker.send(Event(event="prefect.flow-run.heartbeat", resource={"prefect.resource.id": "prefect.flow-run.x"}))
    worker.drain()


def test_an_undelivered_event_is_one_warning_line_naming_the_event_and_the_cause(prefect_api, event_log):
    """Prefect's own line is an ERROR with the event's whole repr; after ``quiet_loggers`` it is
    one WARNING line with the event's name and the exception's type and first line."""
    _send_undeliverable("server answered 500\nsecond line")
    prefect_line = event_log.getvalue().strip()
    assert prefect_line.startswith("ERROR | prefect._internal.concurrency - Service 'EventsWorker' failed")
    assert "resource=Resource(" in prefect_line

    event_log.seek(0)
    event_log.truncate()
    quiet_loggers(verbose=False)
    quiet_loggers(verbose=False)  # called again by the command line: one filter, not two
    assert sum(isinstance(f, UndeliveredEventLine) for f in logging.getLogger(EVENT_LOGGER).filters) == 1
    _send_undeliverable("server answered 500\nsecond line")
    assert event_log.getvalue().splitlines() == [
        "WARNING | prefect._internal.concurrency - Prefect event 'prefect.flow-run.heartbeat' not delivered "
        "to the Prefect API (ConnectionError: server answered 500); the run goes on"
    ]


def test_other_service_records_pass_unchanged(event_log):
    """A record of another service, or another message, keeps its level and text."""
    logger = logging.getLogger(EVENT_LOGGER)
    logger.addFilter(UndeliveredEventLine())
    logger.error("Service %r failed to process item %r", "APILogWorker", {"message": "x"})
    logger.error("Still processing items: %s items remaining...", 3)
    assert event_log.getvalue().splitlines() == [
        "ERROR | prefect._internal.concurrency - Service 'APILogWorker' failed to process item {'message': 'x'}",
        "ERROR | prefect._internal.concurrency - Still processing items: 3 items remaining...",
    ]
