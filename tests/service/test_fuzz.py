"""Property-based fuzzing of the service from its own OpenAPI schema (schemathesis 4).

Every operation of ``/openapi.json`` (fetched through an authenticated client: the schema is
behind auth outside dev mode) is called with up to 25 generated requests, as an analyst, and
must never answer 5xx (schemathesis' ``not_a_server_error`` check). The app under test has the
session's run folders, a small in-process what-if budget (so generated what-ifs stay fast) and a
``whatif`` deployment registered on the Prefect test harness (no worker: large what-ifs are
scheduled, not run), so the whole what-if path is exercised, not only its validation.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.service.conftest import API_KEYS, RUN_IDS

pytestmark = pytest.mark.slow

STATUS_SEEN: dict[str, set[int]] = defaultdict(set)
REQUESTS_SENT: dict[str, int] = defaultdict(int)
"""Per operation: HTTP requests that reached the app (counted by the app wrapper below)."""
MAX_EXAMPLES = 25
"""Generated requests per operation and strategy (derandomized: the same requests every run)."""


class CountingApp:
    """ASGI wrapper counting the HTTP requests that reach the app: proof that the fuzz test sent
    requests, not merely that it ran (a generation error or an empty strategy sends none)."""

    def __init__(self, app) -> None:
        self.app = app
        self.http_requests = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.http_requests += 1
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def fuzz_app(settings_factory, whatif_deployment):
    from service.app import create_app

    return create_app(
        settings_factory(
            service={
                "whatif_deployment": whatif_deployment,
                "inprocess_max_cells": 5_000,
                "rate_limit_per_minute": 1_000_000,
                "whatif_per_minute": 10_000,
                "login_per_minute": 10_000,
            }
        )
    )


@pytest.fixture(scope="module")
def auth_headers() -> dict[str, str]:
    return {"X-API-Key": API_KEYS["analyst"]}


@pytest.fixture(scope="module")
def counting_app(fuzz_app) -> CountingApp:
    return CountingApp(fuzz_app)


@pytest.fixture(scope="module")
def api_schema(counting_app, auth_headers):
    return schemathesis.openapi.from_asgi("/openapi.json", counting_app, headers=auth_headers)


def _operations() -> dict[tuple[str, str], bool]:
    """(METHOD, path) of every operation in the app's OpenAPI schema (a throwaway dev-mode app;
    the schema does not depend on settings), mapped to whether it takes any input (parameters or
    a body). Built at collection so each operation is a test."""
    from goldstress.settings import Settings
    from service.app import create_app

    app = create_app(Settings(service={"dev_mode": True, "host": "127.0.0.1"}))
    return {
        (m.upper(), path): bool(op.get("parameters") or op.get("requestBody"))
        for path, ops in app.openapi()["paths"].items()
        for m, op in ops.items()
    }


OPERATION_INPUTS = _operations()
OPERATIONS = list(OPERATION_INPUTS)


def min_requests(method: str, path: str) -> int:
    """Fewest requests an operation's fuzz test must actually send (it fails, never skips, below):
    at least one strategy's worth (MAX_EXAMPLES) for an operation with inputs; an operation
    without any input has exactly one distinct request, which Hypothesis sends once."""
    return MAX_EXAMPLES if OPERATION_INPUTS[(method, path)] else 1


def _sized_whatif(case, preset, small):
    """A generated what-if resized to run in-process (at most 40 paths x 20 days) or on the
    deployment (at least 1,000 paths x 10 days), on a preset unless it carries its own spec."""
    if isinstance(case.body, dict):
        body = dict(case.body)
        n, h = int(body.get("n_paths", 1)), int(body.get("horizon_days", 1))
        body["n_paths"], body["horizon_days"] = (min(n, 40), min(h, 20)) if small else (max(n, 1_000), max(h, 10))
        if preset is not None and body.get("token_spec") is None:
            body["token_preset"] = preset
            if preset == "GUSD":
                body.pop("redemption_share_per_day", None)
        case.body = body
    return case


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(api_schema, counting_app, auth_headers, method, path):
    # schemathesis' own pytest loader (schemathesis.pytest.from_fixture) breaks on pytest 9
    # (Function._nodeid), so the operation's Hypothesis strategy is driven directly here.
    from schemathesis import GenerationMode

    op = api_schema[path][method]
    strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
    if "{run_id}" in path:  # also aim at a real run, so the handlers past the 404 are reached
        strategies.append(op.as_strategy(GenerationMode.POSITIVE, path_parameters={"run_id": RUN_IDS[-1]}))
    if (method, path) == ("POST", "/api/whatif"):  # also what-ifs that pass validation: in-process and deployment
        strategies.append(
            st.builds(
                _sized_whatif,
                op.as_strategy(GenerationMode.POSITIVE),
                st.sampled_from(["GRAM", "GUSD", None]),
                st.booleans(),
            )
        )
    failures: list[str] = []

    @settings(
        max_examples=MAX_EXAMPLES * len(strategies),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def run(case) -> None:
        try:
            response = case.call_and_validate(headers=auth_headers, checks=[not_a_server_error])
        except Exception as exc:  # keep going; report every failure at the end
            failures.append(f"{case.method} {case.formatted_path} body={case.body!r}: {exc}")
            raise
        STATUS_SEEN[f"{method} {path}"].add(response.status_code)

    before = counting_app.http_requests
    try:
        run()
    except Exception as exc:
        # a server error is reported with the generated requests that hit it; anything else
        # (an error while generating or sending requests) propagates: it must not pass silently
        if failures:
            raise AssertionError("\n".join(failures[:5])) from exc
        raise
    assert not failures, "\n".join(failures[:5])
    sent = counting_app.http_requests - before
    REQUESTS_SENT[f"{method} {path}"] += sent
    assert sent >= min_requests(method, path), f"{method} {path}: only {sent} requests reached the app"
    assert STATUS_SEEN[f"{method} {path}"], f"{method} {path}: no response recorded"


def test_fuzzing_reached_the_handlers(request):
    """The generated requests were authenticated and got past validation somewhere: the read
    operations answered 200 and the what-if both ran in-process (200) and was scheduled (202).
    Skips only when no fuzz test was selected in this session; if they were, every operation
    must have sent requests (an empty record fails, it does not skip)."""
    selected = [it for it in request.session.items if getattr(it, "originalname", "") == "test_no_server_errors"]
    if not selected:
        pytest.skip("no test_no_server_errors item was selected in this session")
    ran = {(it.callspec.params["method"], it.callspec.params["path"]) for it in selected}
    short = {
        f"{m} {p}": REQUESTS_SENT.get(f"{m} {p}", 0)
        for m, p in ran
        if REQUESTS_SENT.get(f"{m} {p}", 0) < min_requests(m, p)
    }
    assert not short, f"operations that sent too few requests: {short}"
    if len(ran) < len(OPERATIONS):
        return  # a subset was selected: the checks below need every operation
    assert 200 in STATUS_SEEN["GET /api/runs"], dict(STATUS_SEEN)
    assert 200 in STATUS_SEEN["GET /api/runs/{run_id}/summary"], dict(STATUS_SEEN)
    assert {200, 202} <= STATUS_SEEN["POST /api/whatif"], dict(STATUS_SEEN)
    # the credential was accepted everywhere (401 only from the login form with generated passwords)
    assert all(401 not in codes for op, codes in STATUS_SEEN.items() if op != "POST /api/token"), dict(STATUS_SEEN)
