"""Pipeline metrics: each stage's duration and outcome, for Prometheus.

:func:`stage` times one stage of a run; the run's metrics go to the Pushgateway of
``settings.monitoring.pushgateway_url``, else to ``<store_url>/metrics/<run_id>.prom`` (text
format). Names, alerts and the dashboard: docs/platform/deploy.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import push_to_gateway

from goldstress.settings import Settings

log = logging.getLogger("goldstress.metrics")

METRICS_FOLDER = "metrics"
"""Folder under ``store_url`` of the runs' text-format metrics files (no Pushgateway configured):
in the store, not the report folder, so that a run that fails early leaves no report folder."""


def metrics_file(run_id: str, settings: Settings) -> str:
    """URL of run ``run_id``'s metrics file: ``<store_url>/metrics/<run_id>.prom``."""
    from goldstress.catalog import join

    return join(settings.storage.store_url, METRICS_FOLDER, f"{run_id}.prom")


@dataclass
class StageRecord:
    """One finished stage: ``seconds`` of wall time, ``ok`` (False: it raised), ``finished_at``
    (Unix time, seconds)."""

    seconds: float
    ok: bool
    finished_at: float


@dataclass
class RunMetrics:
    """The stages of one run so far, in the order they finished."""

    run_id: str
    stages: dict[str, StageRecord] = field(default_factory=dict)

    def registry(self) -> CollectorRegistry:
        """A fresh registry holding this run's gauges:

        - ``goldstress_pipeline_stage_duration_seconds{stage}``: wall time of each stage;
        - ``goldstress_pipeline_stage_success{stage}``: 1 when the stage finished, 0 when it raised;
        - ``goldstress_pipeline_stage_finished_timestamp_seconds{stage}``: Unix time it ended;
        - ``goldstress_pipeline_run_failed``: 1 once any stage raised, else 0;
        - ``goldstress_pipeline_run_info{run_id}``: 1, naming the run.
        """
        reg = CollectorRegistry()
        duration = Gauge(
            "goldstress_pipeline_stage_duration_seconds", "Wall time of a pipeline stage.", ["stage"], registry=reg
        )
        success = Gauge(
            "goldstress_pipeline_stage_success", "1 if the stage finished, 0 if it failed.", ["stage"], registry=reg
        )
        finished = Gauge(
            "goldstress_pipeline_stage_finished_timestamp_seconds",
            "Unix time the stage ended.",
            ["stage"],
            registry=reg,
        )
        failed = Gauge("goldstress_pipeline_run_failed", "1 if a stage of the run failed.", registry=reg)
        info = Gauge("goldstress_pipeline_run_info", "The run these metrics describe.", ["run_id"], registry=reg)
        for name, rec in self.stages.items():
            duration.labels(name).set(rec.seconds)
            success.labels(name).set(1.0 if rec.ok else 0.0)
            finished.labels(name).set(rec.finished_at)
        failed.set(0.0 if all(r.ok for r in self.stages.values()) else 1.0)
        info.labels(self.run_id).set(1.0)
        return reg


_RUNS: dict[str, RunMetrics] = {}


def record_stage(run_id: str, name: str, seconds: float, ok: bool, settings: Settings) -> RunMetrics:
    """Record one finished stage of run ``run_id`` and publish the run's metrics (Pushgateway, else
    :func:`metrics_file`). Publishing never raises: a failure is one warning line,
    the pipeline goes on. Returns the run's metrics so far."""
    run = _RUNS.setdefault(run_id, RunMetrics(run_id))
    run.stages[name] = StageRecord(seconds=float(seconds), ok=bool(ok), finished_at=time.time())
    try:
        publish(run, settings)
    except Exception as exc:  # metrics must never fail a run
        log.warning("pipeline metrics of run %s not published: %s", run_id, exc)
    return run


def publish(run: RunMetrics, settings: Settings) -> str:
    """Push ``run``'s registry to the Pushgateway (PUT: the job's group is replaced, so it holds
    the latest run only) or write it to :func:`metrics_file`. Returns where it went. Raises the transport's error (``OSError``, ``urllib.error.URLError``)."""
    mon = settings.monitoring
    reg = run.registry()
    if mon.pushgateway_url:
        push_to_gateway(mon.pushgateway_url, job=mon.pushgateway_job, registry=reg, timeout=mon.push_timeout_s)
        return mon.pushgateway_url
    from goldstress.io import storage

    return storage.write_bytes(metrics_file(run.run_id, settings), generate_latest(reg), settings)


@contextmanager
def stage(run_id: str, name: str, settings: Settings) -> Iterator[None]:
    """``with stage(run_id, "simulate", settings): ...`` times the block and records it with
    :func:`record_stage` (``ok=False`` when it raises; the exception propagates)."""
    start = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        record_stage(run_id, name, time.perf_counter() - start, ok, settings)
