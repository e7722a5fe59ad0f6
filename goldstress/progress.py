"""Stage progress of a run: the flows mark their stages and steps here, a reporter (the command
line's console) shows them; without a reporter (deployments, tests) every call is a no-op."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    """Receives a run's stages: ``start`` then ``advance`` (0..n times) then ``done`` or
    ``failed`` (elapsed seconds), or ``skipped`` alone."""

    def start(self, name: str) -> None:
        """A stage begins."""

    def advance(self, done: int, total: int) -> None:
        """``done`` of ``total`` steps of the current stage are finished."""

    def done(self, name: str, elapsed_s: float) -> None:
        """The stage finished after ``elapsed_s`` seconds."""

    def failed(self, name: str, elapsed_s: float) -> None:
        """The stage raised after ``elapsed_s`` seconds (the error propagates)."""

    def skipped(self, name: str, reason: str) -> None:
        """The stage does not run, for ``reason``."""


_reporter: Reporter | None = None


def install(reporter: Reporter | None) -> None:
    """Send the stages of this process to ``reporter`` (None: stop reporting)."""
    global _reporter
    _reporter = reporter


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark the enclosed block as the stage ``name``; its wall time is measured with
    ``time.monotonic`` and reported when it ends (``failed`` when it raises, then re-raised)."""
    reporter = _reporter
    if reporter is None:
        yield
        return
    reporter.start(name)
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        reporter.failed(name, time.monotonic() - t0)
        raise
    reporter.done(name, time.monotonic() - t0)


def advance(done: int, total: int) -> None:
    """Report ``done`` of ``total`` steps of the current stage (drives the progress bar)."""
    if _reporter is not None:
        _reporter.advance(done, total)


def skipped(name: str, reason: str) -> None:
    """Report that stage ``name`` does not run, for ``reason``."""
    if _reporter is not None:
        _reporter.skipped(name, reason)
