"""The in-process what-if queue: order, limits and failures on the queue itself, and ten
concurrent what-ifs against the real service over HTTP, each answered 200 or 202 and all
completing with the result a single what-if gives."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from service.whatif_queue import JobError, QueueFull, WhatIfQueue
from tests.conftest import free_port
from tests.service.conftest import API_KEYS, ServiceRoot, running_server, service_env, sha256_hex


def _wait(cond, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_jobs_run_one_at_a_time_in_submission_order():
    q = WhatIfQueue(max_waiting=10)
    order: list[int] = []
    running = []

    def work(i: int):
        def run(job):
            running.append(i)
            assert len(running) - len(order) == 1  # never two at once
            time.sleep(0.01)
            order.append(i)
            return {"i": i}

        return run

    jobs = [q.submit(work(i)) for i in range(6)]
    _wait(lambda: all(j.status == "completed" for j in jobs))
    assert order == list(range(6))
    assert [j.result for j in jobs] == [{"i": i} for i in range(6)]
    assert q.depth() == (0, 0)
    q.close()


def test_a_full_queue_refuses_and_names_the_waiting_count():
    q = WhatIfQueue(max_waiting=2)
    release = threading.Event()
    first = q.submit(lambda job: release.wait(10) and {"ok": True})
    _wait(lambda: first.status == "running")
    waiting = [q.submit(lambda job: {"ok": True}) for _ in range(2)]
    assert q.depth() == (2, 1)
    with pytest.raises(QueueFull) as info:
        q.submit(lambda job: {"ok": True})
    assert info.value.waiting == 2
    release.set()
    _wait(lambda: all(j.status == "completed" for j in [first, *waiting]))
    q.close()


def test_failures_are_recorded_on_the_job_not_raised():
    q = WhatIfQueue(max_waiting=4)

    def expected(job):
        raise JobError(422, "field x: bad")

    def bug(job):
        raise KeyError("internal detail that must not leak")

    a, b = q.submit(expected), q.submit(bug)
    ok = q.submit(lambda job: {"fine": 1})
    _wait(lambda: ok.status == "completed")
    assert (a.status, a.error.status, a.error.detail) == ("failed", 422, "field x: bad")
    assert (b.status, b.error.status) == ("failed", 500)
    assert "internal detail" not in b.error.detail
    q.close()


def test_close_cancels_the_running_job_and_the_queued_ones():
    q = WhatIfQueue(max_waiting=4)
    seen = []

    def long(job):
        job.cancel.wait(10)
        seen.append(job.cancel.is_set())
        raise JobError(503, "cancelled")

    first = q.submit(long)
    _wait(lambda: first.status == "running")
    queued = q.submit(lambda job: {"never": True})
    t0 = time.monotonic()
    q.close()
    assert time.monotonic() - t0 < 5
    assert seen == [True] and first.status == "failed"
    assert (queued.status, queued.error.status, queued.result) == ("failed", 503, None)
    again = q.submit(lambda job: {"after": True})  # a closed queue starts a new worker
    _wait(lambda: again.status == "completed")
    q.close()


def test_forgets_the_oldest_finished_jobs_beyond_keep():
    q = WhatIfQueue(max_waiting=100, keep=3)
    jobs = []
    for i in range(6):
        jobs.append(q.submit(lambda job, i=i: {"i": i}))
        _wait(lambda: jobs[-1].status == "completed")
    assert q.get(jobs[0].id) is None and q.get(jobs[-1].id) is jobs[-1]
    q.close()


@pytest.fixture(scope="module")
def queued_server(service_root: ServiceRoot, tmp_path_factory):
    """The real service (``python -m service.serve``) answering POST /api/whatif at once (wait
    0 s), so every in-process what-if is queued and polled."""
    port = free_port()
    env = service_env(
        service_root,
        GOLDSTRESS_SERVICE_INPROCESS_WAIT_S="0",
        GOLDSTRESS_SERVICE_WHATIF_QUEUE_MAX="32",
        GOLDSTRESS_SERVICE_WHATIF_PER_MINUTE="600",
        GOLDSTRESS_SERVICE_API_KEYS=json.dumps({sha256_hex(API_KEYS["analyst"]): "analyst"}),
    )
    log = tmp_path_factory.mktemp("queued") / "server.log"
    args = ["-m", "service.serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with running_server(args, port, env, log) as url:
        yield url


BODY = {"token_preset": "GRAM", "shock_frac": -0.2, "shock_horizon_days": 2, "n_paths": 300, "horizon_days": 20}


def test_ten_concurrent_whatifs_are_queued_and_all_complete_with_the_same_result(queued_server):
    headers = {"X-API-Key": API_KEYS["analyst"]}
    with httpx.Client(base_url=queued_server, headers=headers, timeout=30) as c:

        def post(_):
            return c.post("/api/whatif", json={**BODY, "seed": 11})

        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(post, range(10)))
        assert all(r.status_code in (200, 202) for r in answers), [r.text for r in answers]
        queued = [r for r in answers if r.status_code == 202]
        assert queued, "with a wait of 0 s at least the later what-ifs must be queued"
        for r in queued:
            assert r.headers["Location"] == f"/api/whatif/{r.json()['id']}"
            assert r.json()["status"] in ("queued", "running")
        results = {}
        deadline = time.monotonic() + 240
        for r in answers:
            wid = r.json()["id"]
            while True:
                doc = c.get(f"/api/whatif/{wid}").json()
                if doc["status"] == "completed":
                    results[wid] = doc["result"]
                    break
                assert doc["status"] in ("queued", "running"), doc
                assert time.monotonic() < deadline, f"what-if {wid} still {doc['status']}"
                time.sleep(0.2)
        assert len(results) == 10
        first = next(iter(results.values()))
        assert all(res == first for res in results.values())  # same request, same seed
