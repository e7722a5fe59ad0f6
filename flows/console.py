"""The command line's console: one line per stage with its wall time, a progress bar while a
stage runs on a terminal, and the quieting of Prefect, MLflow and library logs."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

CHATTY_LOGGERS = ("prefect", "great_expectations", "mlflow", "alembic", "httpx", "httpcore", "urllib3", "botocore")
"""Loggers held at WARNING unless ``-v`` (their INFO records are progress chatter)."""
SELF_LEVELLED_LOGGERS = ("great_expectations.data_context.types.base",)
"""Loggers whose module sets their level to INFO on import (Great Expectations' context
module): a filter holds them at WARNING, since a level set before the import is overwritten."""


EVENT_LOGGER = "prefect._internal.concurrency"
"""Logger of Prefect's background services, among them the events worker that sends each flow and
task run's events (state changes, heartbeats) to the Prefect API."""


class UndeliveredEventLine(logging.Filter):
    """Rewrites the events worker's "Service 'EventsWorker' failed to process item Event(...)"
    ERROR (the event's whole repr, some 1,000 characters, logged by
    ``prefect._internal.concurrency.services`` inside its ``except`` block when the API does not
    take an event, e.g. a SQLite-backed server answering "database is locked") as one WARNING
    line naming the event and the exception: ``Prefect event 'prefect.flow-run.heartbeat' not
    delivered to the Prefect API (ReadTimeout: ...); the run goes on``. The run's results never
    depend on an event's delivery; the Prefect UI may miss that one event. Other records pass
    unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (
            record.msg == "Service %r failed to process item %r"
            and isinstance(args, tuple)
            and len(args) == 2
            and args[0] == "EventsWorker"
        ):
            return True
        exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        cause = "no exception recorded"
        if exc is not None:
            first = str(exc).strip().splitlines()
            cause = f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
        record.msg = "Prefect event %r not delivered to the Prefect API (%s); the run goes on"
        record.args = (str(getattr(args[1], "event", "?")), cause)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        return True


class _AtLeast(logging.Filter):
    """Passes records at ``level`` or above."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


def quiet_environment(verbose: bool) -> None:
    """Before Prefect or MLflow is imported: Prefect's log level (``PREFECT_LOGGING_LEVEL``,
    WARNING, or INFO with ``verbose``) and MLflow's artifact download bar off
    (``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``). Values set in the environment are kept."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def quiet_loggers(verbose: bool) -> None:
    """Set :data:`CHATTY_LOGGERS` to WARNING (INFO with ``verbose``) and, unless ``verbose``,
    filter :data:`SELF_LEVELLED_LOGGERS` below WARNING and shorten an undelivered Prefect event
    to one line (:class:`UndeliveredEventLine`). Imports Prefect and MLflow first: both
    configure their loggers on import."""
    import mlflow  # noqa: F401  (configures the "mlflow" logger on import)
    import prefect  # noqa: F401

    # Dask configures its loggers from its config on import, here and in every worker it starts
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "info" if verbose else "warning")
    level = logging.INFO if verbose else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if not verbose:
        for name in SELF_LEVELLED_LOGGERS:
            logging.getLogger(name).addFilter(_AtLeast(logging.WARNING))
        events = logging.getLogger(EVENT_LOGGER)
        if not any(isinstance(f, UndeliveredEventLine) for f in events.filters):
            events.addFilter(UndeliveredEventLine())


class ConsoleReporter:
    """A :class:`goldstress.progress.Reporter` that writes ``[i/n] stage ... done in 12.3 s``
    per stage to ``out`` (``skipped (reason)`` / ``failed after`` likewise). On a terminal a
    transient rich progress bar (steps of the stage, elapsed time) shows while the stage runs;
    otherwise nothing is written until the stage ends, so a log file gets one line per stage."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.total = total
        self.out = out or sys.stdout
        self.index = 0
        self.tty = self.out.isatty()
        self._bar: Any = None
        self._task: Any = None

    def _label(self, name: str) -> str:
        return f"[{self.index}/{self.total}] {name:<9}"

    def _line(self, text: str) -> None:
        self._stop_bar()
        print(text, file=self.out, flush=True)

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def start(self, name: str) -> None:
        """Count the stage; on a terminal, show its bar."""
        self.index += 1
        if not self.tty:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.out),
            transient=True,
        )
        self._task = self._bar.add_task(self._label(name), total=None)
        self._bar.start()

    def advance(self, done: int, total: int) -> None:
        """Move the bar to ``done`` of ``total``."""
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)

    def done(self, name: str, elapsed_s: float) -> None:
        """Write the stage's line."""
        self._line(f"{self._label(name)} ... done in {elapsed_s:.1f} s")

    def failed(self, name: str, elapsed_s: float) -> None:
        """Write the stage's line (the error is reported by the caller)."""
        self._line(f"{self._label(name)} ... failed after {elapsed_s:.1f} s")

    def skipped(self, name: str, reason: str) -> None:
        """Count the stage and write why it does not run."""
        self.index += 1
        self._line(f"{self._label(name)} ... skipped ({reason})")
