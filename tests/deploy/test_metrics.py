"""Metrics: the service's /metrics scraped from a real server (run gauges of a published run with
verdict records, request counters, JSON access log), the what-if hook, and the pipeline's stage
metrics written to a run folder and pushed to a real HTTP endpoint."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from goldstress.settings import Settings
from service.runs import mc_scenario_name
from tests.conftest import free_port
from tests.service.conftest import (  # noqa: F401  (fixtures)
    JWT_SECRET,
    RUN_IDS,
    ServiceRoot,
    data_settings,
    merged,
    running_server,
    service_env,
    service_root,
)

API_KEY = "ak-metrics-0123456789abcdef"
VERDICTS = ("fail", "watch", "pass")  # given to the first three tokens; the others get none


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``{sample name: [(labels, value), ...]}`` of a text exposition (prometheus_client's parser)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def by_token(rows: list[tuple[dict[str, str], float]]) -> dict[str, float]:
    return {labels["token"]: value for labels, value in rows}


@pytest.fixture(scope="module")
def verdict_reports(service_root: ServiceRoot, tmp_path_factory) -> tuple[Path, str, dict[str, Any]]:  # noqa: F811
    """A report folder holding one published run (the newest of the service fixture) whose summary
    carries verdict records for its first three tokens and none for the others, republished with the pipeline's
    ``publish_run``. Returns (reports folder, run id, summary)."""
    from goldstress.publish import publish_run

    reports = tmp_path_factory.mktemp("verdicts") / "reports"
    run_id = RUN_IDS[-1]
    shutil.copytree(service_root.run_dir(run_id), reports / run_id)
    path = reports / run_id / "summary.json"
    summary = json.loads(path.read_text())
    tokens = sorted(summary["tokens"])
    assert len(tokens) > len(VERDICTS), tokens
    for symbol in tokens[len(VERDICTS) :]:
        summary["tokens"][symbol].pop("verdict", None)  # as a run written before verdicts existed
    for symbol, word in zip(tokens, VERDICTS):
        summary["tokens"][symbol]["verdict"] = {"verdict": word, "reason": "test record", "checks": []}
    path.write_text(json.dumps(summary))
    publish_run(run_id, Settings(**merged(service_root.base, {"storage": {"report_url": str(reports)}})))
    return reports, run_id, summary


@pytest.fixture(scope="module")
def server(service_root: ServiceRoot, verdict_reports, tmp_path_factory):  # noqa: F811
    """``python -m service.serve`` over the verdict report folder, JSON logs on; yields (url, log path)."""
    reports, _, _ = verdict_reports
    port = free_port()
    env = service_env(
        service_root,
        GOLDSTRESS_REPORT_URL=str(reports),
        GOLDSTRESS_SERVICE_API_KEYS=json.dumps({hashlib.sha256(API_KEY.encode()).hexdigest(): "viewer"}),
        GOLDSTRESS_MONITORING_JSON_LOGS="true",
    )
    log_path = tmp_path_factory.mktemp("metrics-server") / "server.log"
    with running_server(
        ["-m", "service.serve", "--host", "127.0.0.1", "--port", str(port)], port, env, log_path
    ) as url:
        yield url, log_path


def test_scraped_run_gauges_match_the_published_summary(server, verdict_reports) -> None:
    url, _ = server
    _, run_id, summary = verdict_reports
    assert httpx.get(url + "/api/runs", headers={"x-api-key": API_KEY}).status_code == 200
    before = time.time()
    text = httpx.get(url + "/metrics").text  # no credential: public inside the cluster
    got = samples(text)

    assert got["goldstress_latest_run_info"] == [({"run_id": run_id}, 1.0)]
    assert got["goldstress_published_runs"][0][1] == 1.0
    assert got["goldstress_report_store_up"][0][1] == 1.0
    created = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    age = got["goldstress_latest_run_age_seconds"][0][1]
    assert before - created - 5 <= age <= time.time() - created + 5

    tokens = sorted(summary["tokens"])
    want_var, want_backing = {}, {}
    for symbol in tokens:
        t = summary["tokens"][symbol]
        mc = t["scenarios"][mc_scenario_name(t)]
        want_var[symbol] = mc["holder_value_var_99_10d_frac"]
        want_backing[symbol] = mc["backing_ratio_min_q1"]
    assert by_token(got["goldstress_latest_run_var_99_10d_frac"]) == pytest.approx(want_var, rel=1e-12)
    assert by_token(got["goldstress_latest_run_backing_ratio_min_q1"]) == pytest.approx(want_backing, rel=1e-12)
    # pass/watch/fail -> 0/1/2; a token without a verdict record has no sample
    assert by_token(got["goldstress_latest_run_verdict"]) == {tokens[0]: 2.0, tokens[1]: 1.0, tokens[2]: 0.0}
    assert got["goldstress_whatif_waiting"][0][1] == 0.0 and got["goldstress_whatif_running"][0][1] == 0.0


def test_requests_are_counted_by_route_template_and_logged_as_json(server, verdict_reports) -> None:
    url, log_path = server
    _, run_id, _ = verdict_reports
    key = {"x-api-key": API_KEY}
    assert httpx.get(url + "/api/runs/no-such-run/summary", headers=key).status_code == 404
    assert httpx.get(url + f"/api/runs/{run_id}/summary", headers=key).status_code == 200
    assert httpx.get(url + f"/api/runs/{run_id}/summary").status_code == 401
    got = samples(httpx.get(url + "/metrics").text)
    counts = {
        (labels["route"], labels["status"]): value
        for labels, value in got["goldstress_http_requests_total"]
        if labels["method"] == "GET"
    }
    route = "/api/runs/{run_id}/summary"
    assert counts[(route, "404")] >= 1 and counts[(route, "200")] >= 1 and counts[(route, "401")] >= 1
    assert not any("no-such-run" in r or run_id in r for r, _ in counts), "raw paths as labels"
    buckets = [v for labels, v in got["goldstress_http_request_duration_seconds_count"] if labels["route"] == route]
    assert sum(buckets) >= 3

    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        access = [
            r for r in lines if r.get("name") == "uvicorn.access" and f"/api/runs/{run_id}/summary" in r["message"]
        ]
        if len(access) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any('" 401' in r["message"] for r in access) and any('" 200' in r["message"] for r in access), access
    assert all({"time", "level", "name", "message"} <= set(r) for r in lines)


def test_the_whatif_gauges_read_the_queue() -> None:
    import threading
    import time

    import service.metrics as sm
    from service.whatif_queue import WhatIfQueue

    queue = WhatIfQueue(max_waiting=8)
    release = threading.Event()
    jobs = [queue.submit(lambda job: release.wait(10) and {}) for _ in range(3)]
    deadline = time.monotonic() + 10
    while jobs[0].status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    metrics = sm.ServiceMetrics(whatif_probe=queue.depth)
    got = samples(metrics.exposition(None).decode())
    assert got["goldstress_whatif_waiting"][0][1] == 2 and got["goldstress_whatif_running"][0][1] == 1
    assert got["goldstress_report_store_up"][0][1] == 0
    release.set()
    queue.close()


def test_run_families_skip_absent_and_non_finite_figures() -> None:
    from service.metrics import run_families

    summary = {
        "tokens": {
            "A": {"scenarios": {"mc_champion": {"holder_value_var_99_10d_frac": 0.1}}, "verdict": {"verdict": "red"}},
            "B": {"scenarios": {"mc_champion": {"holder_value_var_99_10d_frac": "nan", "backing_ratio_min_q1": 0.9}}},
        }
    }
    fams = {f.name: f for f in run_families("r", "2026-01-01T00:00:00+00:00", summary, now=1767225600.0 + 60)}
    assert fams["goldstress_latest_run_age_seconds"].samples[0].value == 60.0
    assert [(s.labels, s.value) for s in fams["goldstress_latest_run_var_99_10d_frac"].samples] == [
        ({"token": "A"}, 0.1)
    ]
    assert [(s.labels, s.value) for s in fams["goldstress_latest_run_backing_ratio_min_q1"].samples] == [
        ({"token": "B"}, 0.9)
    ]
    assert fams["goldstress_latest_run_verdict"].samples == []  # "red" is not a verdict of the contract


# ------------------------------------------------------------------ pipeline stage metrics
def test_stage_metrics_are_written_to_the_store_not_the_reports(tmp_path: Path) -> None:
    from goldstress import metrics as gm

    reports = tmp_path / "reports"
    settings = Settings(storage={"report_url": str(reports), "store_url": str(tmp_path / "store")})
    run_id = "20260101T000000Z-abcdef"
    with gm.stage(run_id, "ingest", settings):
        time.sleep(0.05)
    with pytest.raises(RuntimeError), gm.stage(run_id, "simulate", settings):
        raise RuntimeError("boom")
    got = samples((tmp_path / "store" / "metrics" / f"{run_id}.prom").read_text())
    assert not reports.exists(), "a failed run must leave no report folder"
    durations = dict((labels["stage"], v) for labels, v in got["goldstress_pipeline_stage_duration_seconds"])
    assert durations["ingest"] >= 0.05 and set(durations) == {"ingest", "simulate"}
    assert dict((labels["stage"], v) for labels, v in got["goldstress_pipeline_stage_success"]) == {
        "ingest": 1.0,
        "simulate": 0.0,
    }
    assert got["goldstress_pipeline_run_failed"][0][1] == 1.0
    assert got["goldstress_pipeline_run_info"] == [({"run_id": run_id}, 1.0)]


def test_stage_metrics_are_pushed_to_the_pushgateway(tmp_path: Path) -> None:
    from goldstress import metrics as gm

    received: list[tuple[str, str, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
            received.append(("PUT", self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        settings = Settings(storage={"store_url": str(tmp_path)}, monitoring={"pushgateway_url": url})
        gm.record_stage("20260101T000000Z-000001", "analyse", 1.5, True, settings)
    finally:
        httpd.shutdown()
    ((method, path, body),) = received
    assert path == "/metrics/job/goldstress_pipeline"
    got = samples(body.decode())
    assert got["goldstress_pipeline_stage_duration_seconds"] == [({"stage": "analyse"}, 1.5)]
    assert got["goldstress_pipeline_run_failed"][0][1] == 0.0
    assert not list(tmp_path.rglob("*.prom")), "pushed, so no file"


def test_a_failing_push_never_fails_the_run(tmp_path: Path, caplog) -> None:
    from goldstress import metrics as gm

    closed = free_port()
    settings = Settings(
        storage={"store_url": str(tmp_path)},
        monitoring={"pushgateway_url": f"http://127.0.0.1:{closed}", "push_timeout_s": 2},
    )
    run = gm.record_stage("20260101T000000Z-000002", "train", 2.0, True, settings)
    assert run.stages["train"].seconds == 2.0
    assert "not published" in caplog.text
