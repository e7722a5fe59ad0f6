"""In-process what-if queue: one worker thread runs jobs in order; callers wait briefly or poll.

See docs/platform/whatif.md (queue, limits, statuses).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Job", "JobError", "QueueFull", "WhatIfQueue"]


class QueueFull(RuntimeError):
    """The queue already holds its most waiting jobs; ``waiting`` is how many."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        super().__init__(f"{waiting} what-ifs already waiting")


class JobError(Exception):
    """A job's expected failure, answered as HTTP ``status`` with ``detail`` (one line)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail)


@dataclass
class Job:
    """One queued what-if. ``status``: ``queued`` -> ``running`` -> ``completed`` | ``failed``.
    ``result``: the what-if result (completed); ``error``: the :class:`JobError` (failed; an
    unexpected exception becomes status 500 with a generic detail). ``cancel`` is set when the
    service stops, and checked by the job between chunks."""

    id: str
    submitted_at: datetime
    status: str = "queued"
    result: dict[str, Any] | None = None
    error: JobError | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None


class WhatIfQueue:
    """First-in first-out what-ifs on one worker thread (a what-if saturates a core; the 2-core
    budget keeps the other for the web server).

    ``max_waiting``: most jobs queued behind the running one (:class:`QueueFull` beyond);
    ``keep``: finished jobs remembered for polling (oldest forgotten first; results are also
    stored in the report store by the job itself). Thread-safe.
    """

    def __init__(self, max_waiting: int, keep: int = 256) -> None:
        if max_waiting < 0 or keep < 1:
            raise ValueError("max_waiting must be >= 0 and keep >= 1")
        self.max_waiting = max_waiting
        self.keep = keep
        self._pool: ThreadPoolExecutor | None = None
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def depth(self) -> tuple[int, int]:
        """``(waiting, running)`` job counts."""
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.status == "queued")
            running = sum(1 for j in self._jobs.values() if j.status == "running")
        return waiting, running

    def submit(self, work: Callable[[Job], dict[str, Any]]) -> Job:
        """Queue ``work(job) -> result``; returns the job at once. ``work`` raises
        :class:`JobError` for an expected failure. Raises :class:`QueueFull` when
        ``max_waiting`` jobs are already queued."""
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.status == "queued")
            if waiting >= self.max_waiting:
                raise QueueFull(waiting)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatif")
            job = Job(id=str(uuid.uuid4()), submitted_at=datetime.now(UTC))
            self._jobs[job.id] = job
            self._forget_finished()
            job.future = self._pool.submit(self._run, job, work)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (unknown or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        """Cancel queued and running jobs and stop the worker (waits for the running job to
        notice its cancel flag); queued jobs end ``failed`` (503). A later :meth:`submit`
        starts a new worker."""
        with self._lock:
            jobs, pool, self._pool = list(self._jobs.values()), self._pool, None
        for job in jobs:
            job.cancel.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for job in jobs:
            if job.status == "queued":
                self._finish(job, "failed", error=JobError(503, "the service stopped before this what-if ran"))

    def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        with self._lock:
            job.status, job.started_at = "running", datetime.now(UTC)
        try:
            if job.cancel.is_set():
                raise JobError(503, "the service stopped before this what-if ran")
            result = work(job)
        except JobError as exc:
            self._finish(job, "failed", error=exc)
        except Exception:  # an unexpected bug: recorded, never raised into the worker thread
            import logging

            logging.getLogger("goldstress.service").exception("what-if %s failed", job.id)
            self._finish(job, "failed", error=JobError(500, "internal error in the what-if"))
        else:
            self._finish(job, "completed", result=result)

    def _finish(
        self, job: Job, status: str, *, result: dict[str, Any] | None = None, error: JobError | None = None
    ) -> None:
        with self._lock:
            job.result, job.error = result, error
            job.status, job.finished_at = status, datetime.now(UTC)

    def _forget_finished(self) -> None:
        done = [k for k, j in self._jobs.items() if j.status in ("completed", "failed")]
        for k in done[: max(0, len(done) - self.keep)]:
            del self._jobs[k]
