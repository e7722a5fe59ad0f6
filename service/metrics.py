"""Prometheus metrics of the service, served at ``GET /metrics`` (text format 0.0.4).

Request counts and latencies by route template and status, the what-if queue, and gauges of
the latest published run (age, headline VaR, backing ratio, verdict). Names, the access
decision and the alert rules: docs/platform/deploy.md.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match

from service.limits import ASGIApp, Receive, Scope, Send
from service.runs import RunIndex, mc_scenario_name

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Media type of the exposition."""

VERDICT_CODES = {"pass": 0, "watch": 1, "fail": 2}
"""Verdict of a token (the verdict record's ``verdict``) -> gauge value; any other value: no sample."""

BACKING_RATIO_KEY = "backing_ratio_min_q1"
"""Monte Carlo figure exported as the backing ratio: the 1% quantile over paths of each path's
lowest reserve/liabilities ratio over the horizon (1.0 = fully backed)."""

VAR_KEY = "holder_value_var_99_10d_frac"
"""Headline VaR exported per token: 99% 10-day VaR of holder value, fraction of day-0 value."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Histogram buckets of request latency, seconds."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def run_families(run_id: str, created_at: str, summary: dict[str, Any], now: float) -> list[GaugeMetricFamily]:
    """Gauges of one published run: ``goldstress_latest_run_age_seconds`` (``now`` minus its
    creation time, Unix seconds), ``goldstress_latest_run_timestamp_seconds``,
    ``goldstress_latest_run_info{run_id}``, and per token ``goldstress_latest_run_var_99_10d_frac``
    (:data:`VAR_KEY` of the Monte Carlo scenario), ``goldstress_latest_run_backing_ratio_min_q1``
    (:data:`BACKING_RATIO_KEY`) and ``goldstress_latest_run_verdict`` (:data:`VERDICT_CODES`).
    A figure absent or not a finite number gives no sample; so does a token without a verdict
    record. Never raises for a malformed summary."""
    info = GaugeMetricFamily("goldstress_latest_run_info", "The latest published run.", labels=["run_id"])
    info.add_metric([run_id], 1.0)
    out = [info]
    try:
        created = datetime.fromisoformat(created_at).timestamp()
    except (TypeError, ValueError):
        created = None
    if created is not None:
        out.append(GaugeMetricFamily("goldstress_latest_run_timestamp_seconds", "Creation time.", value=created))
        out.append(
            GaugeMetricFamily("goldstress_latest_run_age_seconds", "Age of the latest run.", value=now - created)
        )
    var = GaugeMetricFamily(
        "goldstress_latest_run_var_99_10d_frac", "99% 10-day VaR of holder value.", labels=["token"]
    )
    backing = GaugeMetricFamily(
        "goldstress_latest_run_backing_ratio_min_q1", "1% quantile of the path-minimum backing ratio.", labels=["token"]
    )
    verdict = GaugeMetricFamily("goldstress_latest_run_verdict", "Verdict: 0 pass, 1 watch, 2 fail.", labels=["token"])
    tokens = summary.get("tokens") if isinstance(summary, dict) else None
    for symbol, token in (tokens or {}).items():
        if not isinstance(token, dict):
            continue
        name = mc_scenario_name(token)
        mc = (token.get("scenarios") or {}).get(name) if name else None
        if isinstance(mc, dict):
            if (v := _number(mc.get(VAR_KEY))) is not None:
                var.add_metric([symbol], v)
            if (b := _number(mc.get(BACKING_RATIO_KEY))) is not None:
                backing.add_metric([symbol], b)
        record = token.get("verdict")
        word = record.get("verdict") if isinstance(record, dict) else None
        if word in VERDICT_CODES:
            verdict.add_metric([symbol], float(VERDICT_CODES[word]))
    return [*out, var, backing, verdict]


class _Snapshot(Collector):
    """Collector yielding the families computed for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


class ServiceMetrics:
    """The service's metrics: HTTP counters and histograms (recorded by
    :class:`HTTPMetricsMiddleware`), the what-if queue (``whatif_probe() -> (waiting, running)``,
    e.g. ``WhatIfQueue.depth``) and the latest run's gauges, read at scrape time."""

    def __init__(self, whatif_probe: Callable[[], tuple[int, int]] | None = None) -> None:
        self.whatif_probe = whatif_probe
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "goldstress_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "goldstress_http_request_duration_seconds",
            "Time to answer a request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._summary_cache: tuple[str, dict[str, Any]] | None = None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def _latest(self, index: RunIndex) -> list[GaugeMetricFamily]:
        entries = index.entries()
        runs = GaugeMetricFamily("goldstress_published_runs", "Runs listed by the service.", value=len(entries))
        if not entries:
            return [runs]
        entry = entries[0]
        if self._summary_cache is None or self._summary_cache[0] != entry.run_id:
            raw = index.summary_bytes(entry.run_id)
            if raw is None:
                return [runs]
            self._summary_cache = (entry.run_id, json.loads(raw))
        return [runs, *run_families(entry.run_id, entry.created_at, self._summary_cache[1], time.time())]

    def exposition(self, index: RunIndex | None) -> bytes:
        """The text exposition: HTTP metrics, what-if queue, ``goldstress_report_store_up`` (0 when
        ``index`` is None: the report store could not be listed) and the latest run's gauges.
        Blocking (may read the latest summary from storage): call it in a worker thread."""
        families: list[Metric] = []
        queue = self.whatif_probe() if self.whatif_probe is not None else None
        if queue is not None:
            families.append(GaugeMetricFamily("goldstress_whatif_waiting", "What-ifs queued.", value=queue[0]))
            families.append(GaugeMetricFamily("goldstress_whatif_running", "What-ifs running.", value=queue[1]))
        families.append(
            GaugeMetricFamily(
                "goldstress_report_store_up", "1 if the report store was listed.", value=int(index is not None)
            )
        )
        if index is not None:
            families.extend(self._latest(index))
        scrape = CollectorRegistry()
        scrape.register(_Snapshot(families))
        return generate_latest(self.registry) + generate_latest(scrape)


def route_template(app: Any, scope: Scope) -> str:
    """The route template that answers ``scope`` (``/api/runs/{run_id}/summary``, ``/static``
    for the mount), ``<unmatched>`` when none does: bounded label values, never a raw path."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return str(route.path)
    for candidate in getattr(app, "routes", ()):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(candidate.path)
    return "<unmatched>"


class HTTPMetricsMiddleware:
    """ASGI middleware counting every HTTP request (also those refused by the middleware inside
    it: 401, 413, 429) by method, route template and status, with its latency in seconds.
    ``router_app`` is the FastAPI app whose routes give the templates."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, router_app: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.router_app = router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.observe(
                method, route_template(self.router_app, scope), status["code"], time.perf_counter() - start
            )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
