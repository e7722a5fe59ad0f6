"""The stakeholder service: ``create_app`` builds the FastAPI app (``make serve``).

Authentication, rate limits and the body-size limit are ASGI middleware in front of every route;
the role checks are route dependencies.
Routes and their roles: docs/platform/service.md.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyCookie, APIKeyHeader, OAuth2PasswordBearer
from pydantic import BaseModel, Field
from starlette.requests import cookie_parser
from starlette.staticfiles import StaticFiles

from goldstress import whatif as wi
from goldstress.settings import Settings, get_settings
from goldstress.telemetry import switch_off
from service.auth import COOKIE_NAME, Authenticator, Principal, is_loopback
from service.cache import LRUCache
from service.dashboard_api import add_dashboard_routes
from service.headers import SecurityHeadersMiddleware, dashboard_csp, inline_script_hashes
from service.limits import (
    ASGIApp,
    BodySizeLimitMiddleware,
    FailureBackoff,
    Receive,
    Scope,
    Send,
    TokenBucketLimiter,
    client_address,
    retry_after_header,
    send_json,
)
from service.metrics import CONTENT_TYPE, HTTPMetricsMiddleware, ServiceMetrics
from service.runs import RUN_ID_RE, SCENARIO_RE, ReportStoreUnavailable, RunIndex
from service.whatif_queue import Job, JobError, QueueFull, WhatIfQueue

log = logging.getLogger("goldstress.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Dashboard files (static, in service/static): ``dashboard.html`` at ``/``, ``login.html`` at ``/login``."""

PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/health"),
        ("HEAD", "/api/health"),
        ("POST", "/api/token"),
        ("POST", "/api/logout"),
        ("GET", "/login"),
        ("HEAD", "/login"),
        ("GET", "/metrics"),  # reachable inside the cluster only (docs/platform/deploy.md)
    }
)
"""(method, path) pairs reachable without credentials."""

DEV_PUBLIC_PATHS = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect"})
"""Paths public in development mode only."""

_RUN_ID_PATTERN = RUN_ID_RE.pattern
_SCENARIO_PATTERN = SCENARIO_RE.pattern


# ---------------------------------------------------------------------- response models (docs)
class HealthOut(BaseModel):
    """``GET /api/health`` and ``POST /api/logout`` answer."""

    status: str


class TokenOut(BaseModel):
    """``POST /api/token`` answer (RFC 6749 section 5.1 access token response)."""

    access_token: str
    token_type: str = "bearer"
    role: str
    expires_in: int = Field(description="Seconds until the token expires.")


class HeadlineOut(BaseModel):
    """Headline figures of one token in a run listing (Monte Carlo scenario; losses positive)."""

    holder_value_var_99_10d_frac: float | str | None = Field(
        None, description="99% 10-day VaR of holder value, fraction of day-0 value (Monte Carlo)."
    )
    reserve_per_token_var_99_10d_frac: float | str | None = Field(
        None, description="99% 10-day VaR of the reserve value per token outstanding, fraction of day-0 value."
    )
    p_backing_below_1: float | str | None = None
    p_liquidation: float | str | None = None
    expected_bad_debt_usd: float | str | None = None
    worst_scenario: str | None = Field(None, description="Worst single-path scenario (historical replay or shock).")
    worst_scenario_by: str | None = Field(None, description="Summary key of the figure that ranks the scenarios.")
    worst_scenario_value: float | str | None = Field(None, description="That figure for the worst scenario, fraction.")
    worst_scenario_window_days: int | None = Field(None, description="Days of the worst scenario's window.")
    monte_carlo_tail_figure: str | None = Field(None, description="Summary key of the Monte Carlo tail figure.")
    monte_carlo_tail_value: float | str | None = Field(None, description="The Monte Carlo tail figure, fraction.")
    monte_carlo_tail_horizon_days: int | None = Field(None, description="Horizon of the Monte Carlo tail figure.")


class RunItemOut(BaseModel):
    """One run in ``GET /api/runs`` (see ``service.runs.listing_item``)."""

    run_id: str
    created_at: str
    generated_at: str | None = None
    champion_version: str | None = None
    champion_candidate: str | None = None
    tokens: list[str]
    headline: dict[str, HeadlineOut]
    basel_zone_last_250d: str | None = None


class RunListOut(BaseModel):
    """``GET /api/runs`` answer, newest run first."""

    runs: list[RunItemOut]


class FanOut(BaseModel):
    """``GET /api/runs/{run_id}/fan``: gold price quantiles (USD per troy ounce) by day."""

    scenario: str
    description: str | None = None
    unit: str
    paths: int | None = None
    days: list[int]
    quantiles: dict[str, list[float]]


class PointOut(BaseModel):
    """One run's value of a metric."""

    run_id: str
    created_at: str
    value: float | str | bool | None


class TimeSeriesOut(BaseModel):
    """``GET /api/metrics/timeseries`` answer, oldest run first."""

    token: str
    metric: str
    scenario: str
    points: list[PointOut]


class WhatIfOut(BaseModel):
    """``POST /api/whatif`` and ``GET /api/whatif/{id}`` answer."""

    id: str
    status: str = Field(description="completed, scheduled, pending, running, failed, crashed, cancelled, ...")
    mode: str = Field(description="inprocess or deployment")
    result: dict[str, Any] | None = None
    detail: str | None = None


class ErrorOut(BaseModel):
    """Error answer: ``detail`` is a message, or FastAPI's list of validation errors."""

    detail: Any


_ERRORS = {
    401: {"model": ErrorOut, "description": "no or invalid credentials"},
    403: {"model": ErrorOut, "description": "role too low"},
    429: {"model": ErrorOut, "description": "rate limit (Retry-After)"},
}
_NOT_FOUND = {404: {"model": ErrorOut, "description": "unknown run, scenario or id"}}
_SEC = {"security": [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}, {"APIKeyCookie": []}]}


# ---------------------------------------------------------------------- auth middleware
class GuardMiddleware:
    """Authentication and rate limits in front of every route.

    In development mode a request that arrived on a non-loopback local address (the socket's
    own address, ``scope["server"]``; e.g. a server bound to 0.0.0.0 reached from the network)
    is refused with 403 before anything else. Per request: authenticate (``Authenticator.authenticate``), take a token from the client's
    request bucket (identity = user, API key hash, or client address when unauthenticated; the
    address is the peer's, or X-Forwarded-For's behind a trusted proxy: :func:`client_address`),
    and from the what-if / login bucket for those two routes (429 + ``Retry-After`` when
    empty); then refuse non-public routes without a valid credential: 303 to ``/login`` for
    ``GET /``, 401 otherwise. The principal is put in ``scope["state"]["principal"]``. Security
    headers are added outside it (:class:`service.headers.SecurityHeadersMiddleware`).
    """

    def __init__(self, app: ASGIApp, auth: Authenticator, settings: Settings) -> None:
        self.app = app
        self.auth = auth
        self.reads = TokenBucketLimiter(settings.service.rate_limit_per_minute)
        self.whatifs = TokenBucketLimiter(settings.service.whatif_per_minute)
        self.logins = TokenBucketLimiter(settings.service.login_per_minute)
        self.dev_mode = settings.service.dev_mode
        self.public_paths = DEV_PUBLIC_PATHS if self.dev_mode else frozenset()
        self.trusted = tuple(ipaddress.ip_network(p, strict=False) for p in settings.service.trusted_proxies)

    @staticmethod
    def local_socket(scope: Scope) -> bool:
        """Whether the request arrived on a loopback address (or a Unix socket, or a test
        harness whose server is a name rather than an address)."""
        server = scope.get("server")
        if not server:
            return True
        try:
            ipaddress.ip_address(str(server[0]).strip("[]"))
        except ValueError:
            return True
        return is_loopback(str(server[0]))

    def is_public(self, method: str, path: str) -> bool:
        """Whether ``method path`` needs no credentials."""
        return (method, path) in PUBLIC_ROUTES or path in self.public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if self.dev_mode and not self.local_socket(scope):
            await send_json(send, 403, {"detail": "development mode answers on loopback addresses only"})
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", ()):
            headers[k.decode("latin-1").lower()] = v.decode("latin-1")
        cookies = cookie_parser(headers["cookie"]) if "cookie" in headers else {}
        principal, presented = self.auth.authenticate(headers, cookies)
        address = client_address(scope, self.trusted)
        key = principal.rate_key if principal is not None else f"ip:{address}"
        wait = self.reads.acquire(key)
        if not wait and method == "POST" and path == "/api/whatif":
            wait = self.whatifs.acquire(key)
        if not wait and method == "POST" and path == "/api/token":
            wait = self.logins.acquire(f"ip:{address}")
        if wait:
            await send_json(
                send,
                429,
                {"detail": f"rate limit exceeded; retry in {retry_after_header(wait)} s"},
                [(b"retry-after", retry_after_header(wait).encode())],
            )
            return
        if principal is None and not self.is_public(method, path):
            if path == "/" and method in ("GET", "HEAD"):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [
                            (b"location", b"/login"),
                            (b"content-length", b"0"),
                            (b"cache-control", b"no-store"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            detail = "invalid or expired credentials" if presented else "not authenticated"
            await send_json(send, 401, {"detail": detail}, [(b"www-authenticate", b"Bearer")])
            return
        state = scope.setdefault("state", {})
        state["principal"], state["client_address"] = principal, address
        await self.app(scope, receive, send)


_oauth2 = OAuth2PasswordBearer(
    tokenUrl="/api/token", auto_error=False, description="JWT from POST /api/token (OAuth2 password flow)."
)
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key (its sha256 is configured in GOLDSTRESS_SERVICE_API_KEYS)."
)
_cookie = APIKeyCookie(name=COOKIE_NAME, auto_error=False, description="Browser session cookie set by POST /api/token.")


def _principal(request: Request, role: str) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if principal is None:  # the middleware refuses these first; kept as a second line
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    if not principal.has_role(role):
        raise HTTPException(403, f"this needs the {role} role; you have {principal.role}")
    return principal


async def require_viewer(request: Request) -> Principal:
    """Route dependency: the request's principal (set by :class:`GuardMiddleware`), any role.

    Deliberately a single cheap dependency (the hot read routes): the security schemes are
    documented through ``openapi_extra`` and :func:`require_analyst`."""
    return _principal(request, "viewer")


async def require_analyst(
    request: Request,
    _b: str | None = Depends(_oauth2),
    _k: str | None = Depends(_api_key),
    _c: str | None = Depends(_cookie),
) -> Principal:
    """Route dependency: the principal, 403 unless analyst. Its three security parameters only
    declare the schemes in OpenAPI (credentials are checked by the middleware)."""
    return _principal(request, "analyst")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its name (``nan``, ``inf``, ``-inf``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's validation errors as JSON-safe dicts, each naming its field (``loc``): a
    non-finite number (NaN, Infinity; refused by the models' ``allow_inf_nan=False``) is echoed
    as a string instead of breaking the JSON answer."""
    return list(jsonable_encoder(_finite(list(errors))))


def _json(data: bytes, status: int = 200) -> Response:
    return Response(content=data, status_code=status, media_type="application/json")


class _Missing:
    """ASGI app for a missing static folder: 404 (the dashboard files are not installed)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 404, {"detail": "dashboard assets are not installed"})


def plotly_js_path() -> Path | None:
    """``plotly.min.js`` shipped in the installed plotly package (``plotly/package_data``)."""
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def _prefect_api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


# ---------------------------------------------------------------------- the app
def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service app (``uvicorn --factory service.app:create_app``).

    ``settings`` defaults to ``goldstress.settings.get_settings()`` (the environment). Raises
    :class:`service.auth.ServiceConfigError` with a clear message when the settings are unsafe
    (no JWT secret and no dev mode, no users/keys, or dev mode on a non-loopback host).
    """
    switch_off()
    settings = settings or get_settings()
    auth = Authenticator(settings)
    index = RunIndex(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # list the runs before the server accepts connections, so the first wave of readers
        # does not queue behind the first listing
        try:
            await anyio.to_thread.run_sync(index.refresh)
        except Exception as exc:
            log.warning("run index: first listing failed (retried on demand): %s", exc)
        yield
        await anyio.to_thread.run_sync(whatif_queue.close)

    app = FastAPI(
        lifespan=lifespan,
        title="goldstress stakeholder service",
        version="1",
        description="Stress-test reports of gold-backed tokens and what-if runs. Losses are positive fractions of the day-0 value; see summary.json conventions.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.index = index
    refresh_lock = asyncio.Lock()
    whatif_queue = WhatIfQueue(settings.service.whatif_queue_max)
    app.state.whatif_queue = whatif_queue
    presets: dict[str, Any] = {}
    presets_lock = threading.Lock()
    whatif_docs = LRUCache(256)
    svc = settings.service
    account_backoff = FailureBackoff(
        svc.login_free_failures_per_account, svc.login_backoff_base_s, svc.login_backoff_max_s
    )
    address_backoff = FailureBackoff(
        svc.login_free_failures_per_address, svc.login_backoff_base_s, svc.login_backoff_max_s
    )

    background: dict[str, asyncio.Task | None] = {"refresh": None}

    async def _background_refresh() -> None:
        try:
            await anyio.to_thread.run_sync(index.refresh)
        except Exception as exc:  # logged; the previous index keeps being served
            log.warning("run index refresh failed: %s", exc)
        finally:
            background["refresh"] = None

    async def fresh_index() -> RunIndex:
        """The run index, refreshed as needed. Stale-while-revalidate: when only the TTL has
        passed, requests keep the current index while one background task re-lists storage
        (so readers never queue behind a refresh); a first listing, a changed local report
        folder (a new run folder) or ``service_index_ttl_s = 0`` wait for the refresh.
        ``ReportStoreUnavailable`` (503) when the last listing of the report store failed."""
        why = index.staleness()
        if why is None:
            index.check_available()
            return index
        if why == "ttl" and index.ttl_s > 0:
            if background["refresh"] is None:
                background["refresh"] = asyncio.get_running_loop().create_task(_background_refresh())
            index.check_available()
            return index
        async with refresh_lock:
            if index.is_stale():
                await anyio.to_thread.run_sync(index.refresh)
        index.check_available()
        return index

    def get_presets() -> dict[str, Any]:
        with presets_lock:
            if not presets:
                presets.update(wi.load_presets(settings))
            return presets

    # ------------------------------------------------------------------ exceptions
    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_details(exc.errors())}, status_code=422)

    @app.exception_handler(wi.WhatIfInputError)
    async def _input_error(request: Request, exc: wi.WhatIfInputError) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]}, status_code=422
        )

    @app.exception_handler(ReportStoreUnavailable)
    async def _store_unavailable(request: Request, exc: ReportStoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(OSError)
    async def _storage_error(request: Request, exc: OSError) -> JSONResponse:
        log.warning("storage error on %s: %s", request.url.path, exc)
        return JSONResponse({"detail": "storage unavailable, try again later"}, status_code=503)

    # ------------------------------------------------------------------ public
    @app.get("/api/health", response_model=HealthOut, tags=["public"])
    async def health() -> Response:
        """Liveness: ``{"status": "ok"}`` (public)."""
        return _json(b'{"status":"ok"}')

    @app.post(
        "/api/token",
        response_model=TokenOut,
        tags=["public"],
        responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}, 429: {"model": ErrorOut}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["username", "password"],
                            "additionalProperties": False,
                            "properties": {
                                "grant_type": {"type": "string", "pattern": "^password$"},
                                "username": {"type": "string", "maxLength": 64},
                                "password": {"type": "string", "maxLength": 1024},
                            },
                        }
                    }
                },
            }
        },
    )
    async def login(request: Request) -> Response:
        """OAuth2 password flow (RFC 6749 section 4.3): form fields ``username``, ``password``
        (``grant_type=password`` optional). Answers a JWT and also sets it as the HttpOnly,
        SameSite=Strict cookie ``goldstress_session``. 401 for a wrong user or password; 429 with
        ``Retry-After`` while the account or the client address is in back-off
        (:class:`service.limits.FailureBackoff`), checked before the password is."""
        body = await request.body()
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "expected a URL-encoded form (username, password)", "type": "value_error"}]
            ) from None
        errors = []
        values: dict[str, str] = {}
        for name, limit in (("username", 64), ("password", 1024)):
            v = form.get(name)
            if not v or not v[0]:
                errors.append({"loc": ("body", name), "msg": "field required", "type": "missing"})
            elif len(v[0]) > limit:
                errors.append({"loc": ("body", name), "msg": f"at most {limit} characters", "type": "string_too_long"})
            else:
                values[name] = v[0]
        grant = form.get("grant_type")
        if grant is not None and grant[0] != "password":
            errors.append({"loc": ("body", "grant_type"), "msg": "must be 'password'", "type": "value_error"})
        if errors:
            raise RequestValidationError(errors)
        address = f"ip:{request.scope.get('state', {}).get('client_address', 'unknown')}"
        account = f"user:{values['username']}"
        for backoff, key, what in ((address_backoff, address, "address"), (account_backoff, account, "account")):
            wait = backoff.acquire(key)
            if wait:
                return JSONResponse(
                    {"detail": f"too many login attempts for this {what}; retry in {retry_after_header(wait)} s"},
                    status_code=429,
                    headers={"Retry-After": retry_after_header(wait), "Cache-Control": "no-store"},
                )
        principal = await anyio.to_thread.run_sync(auth.login, values["username"], values["password"])
        if principal is not None:
            account_backoff.succeeded(account, reset=True)
            address_backoff.succeeded(address)
        accept = request.headers.get("accept", "")
        html_form = "text/html" in accept and "application/json" not in accept  # a form posted without JavaScript
        if principal is None:
            if html_form:
                return Response(status_code=303, headers={"Location": "/login?error=1", "Cache-Control": "no-store"})
            return JSONResponse(
                {"detail": "incorrect username or password"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"},
            )
        token, ttl = auth.issue_token(principal)
        if html_form:
            response: Response = Response(status_code=303, headers={"Location": "/", "Cache-Control": "no-store"})
        else:
            response = JSONResponse(
                {"access_token": token, "token_type": "bearer", "role": principal.role, "expires_in": ttl},
                headers={"Cache-Control": "no-store"},
            )
        response.set_cookie(
            COOKIE_NAME,
            token,
            max_age=ttl,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.post("/api/logout", response_model=HealthOut, tags=["public"])
    async def logout(request: Request) -> Response:
        """Clear the session cookie (JWTs are stateless: a copied token stays valid until it expires)."""
        response = _json(b'{"status":"logged out"}')
        response.delete_cookie(
            COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    @app.get("/login", include_in_schema=False)
    async def login_page() -> Response:
        page = STATIC_DIR / "login.html"
        if not page.is_file():
            return JSONResponse({"detail": "login page is not installed"}, status_code=404)
        return FileResponse(page, media_type="text/html")

    # ------------------------------------------------------------------ dashboard
    @app.get("/", include_in_schema=False)
    async def dashboard(principal: Principal = Depends(require_viewer)) -> Response:
        page = STATIC_DIR / "dashboard.html"
        if not page.is_file():
            return JSONResponse({"detail": "dashboard is not installed"}, status_code=404)
        return FileResponse(page, media_type="text/html")

    # ------------------------------------------------------------------ runs (viewer)
    @app.get("/api/runs", response_model=RunListOut, tags=["runs"], responses=_ERRORS, openapi_extra=_SEC)
    async def list_runs(
        limit: int = Query(50, ge=1, le=1000, description="Newest runs to list."),
        principal: Principal = Depends(require_viewer),
    ) -> Response:
        """Runs with a summary, newest first, with headline figures per token."""
        return _json((await fresh_index()).listing_bytes(limit))

    @app.get(
        "/api/runs/latest",
        response_model=RunItemOut,
        tags=["runs"],
        responses={**_ERRORS, **_NOT_FOUND},
        openapi_extra=_SEC,
    )
    async def latest_run(principal: Principal = Depends(require_viewer)) -> Response:
        """The newest run's listing item; 404 when there is none."""
        data = (await fresh_index()).latest_bytes()
        if data is None:
            raise HTTPException(404, "no run with a summary yet: run the pipeline first")
        return _json(data)

    async def _indexed(run_id: str) -> RunIndex:
        idx = await fresh_index()
        if idx.get(run_id) is None:
            raise HTTPException(404, f"unknown run {run_id!r}")
        return idx

    run_id_param = PathParam(
        pattern=_RUN_ID_PATTERN, max_length=128, description="Run id, e.g. 20261121T141203Z-e8aa74."
    )

    @app.get(
        "/api/runs/{run_id}/summary",
        tags=["runs"],
        responses={
            200: {"content": {"application/json": {}}, "description": "summary.json as stored"},
            **_ERRORS,
            **_NOT_FOUND,
        },
        openapi_extra=_SEC,
    )
    async def run_summary(run_id: str = run_id_param, principal: Principal = Depends(require_viewer)) -> Response:
        """``summary.json`` of a run, as stored (every figure, units in the key names)."""
        idx = await _indexed(run_id)
        data = idx.summary_cached(run_id)
        if data is None:
            data = await anyio.to_thread.run_sync(idx.summary_bytes, run_id)
        if data is None:
            raise HTTPException(404, f"unknown run {run_id!r}")
        return _json(data)

    @app.get(
        "/api/runs/{run_id}/fan",
        response_model=FanOut,
        tags=["runs"],
        responses={**_ERRORS, **_NOT_FOUND},
        openapi_extra=_SEC,
    )
    async def run_fan(run_id: str = run_id_param, principal: Principal = Depends(require_viewer)) -> Response:
        """Fan chart of the Monte Carlo gold paths (USD/oz quantiles by day) from the manifest."""
        idx = await _indexed(run_id)
        data = idx.fan_cached(run_id)
        if data is None:
            data = await anyio.to_thread.run_sync(idx.fan_bytes, run_id)
        if not data:
            raise HTTPException(404, f"run {run_id!r} has no Monte Carlo fan chart")
        return _json(data)

    @app.get(
        "/api/runs/{run_id}/report.html",
        response_class=Response,
        tags=["runs"],
        responses={200: {"content": {"text/html": {}}}, **_ERRORS, **_NOT_FOUND},
        openapi_extra=_SEC,
    )
    async def run_report(run_id: str = run_id_param, principal: Principal = Depends(require_viewer)) -> Response:
        """The run's self-contained HTML report."""
        idx = await _indexed(run_id)
        found = await anyio.to_thread.run_sync(idx.report_stream, run_id)
        if found is None:
            raise HTTPException(404, f"run {run_id!r} has no report.html")
        chunks, size = found
        return StreamingResponse(chunks, media_type="text/html; charset=utf-8", headers={"Content-Length": str(size)})

    @app.get(
        "/api/runs/{run_id}/results/{scenario}.parquet",
        response_class=Response,
        tags=["runs"],
        responses={200: {"content": {"application/vnd.apache.parquet": {}}}, **_ERRORS, **_NOT_FOUND},
        openapi_extra=_SEC,
    )
    async def run_results(
        run_id: str = run_id_param,
        scenario: str = PathParam(pattern=_SCENARIO_PATTERN, max_length=128),
        principal: Principal = Depends(require_viewer),
    ) -> Response:
        """Per-path results of one scenario (one row per token and path), Parquet."""
        idx = await _indexed(run_id)
        found = await anyio.to_thread.run_sync(idx.results_stream, run_id, scenario)
        if found is None:
            raise HTTPException(404, f"run {run_id!r} has no scenario {scenario!r}")
        chunks, size = found
        return StreamingResponse(
            chunks,
            media_type="application/vnd.apache.parquet",
            headers={
                "Content-Length": str(size),
                "Content-Disposition": f'attachment; filename="{run_id}_{scenario}.parquet"',
            },
        )

    @app.get(
        "/api/metrics/timeseries",
        response_model=TimeSeriesOut,
        tags=["runs"],
        responses={**_ERRORS, **_NOT_FOUND},
        openapi_extra=_SEC,
    )
    async def timeseries(
        token: str = Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Token symbol, e.g. GRAM."),
        metric: str = Query(
            pattern=r"^[A-Za-z0-9_.]{1,128}$", description="Metric key, e.g. holder_value_var_99_10d_frac."
        ),
        scenario: str = Query("mc_champion", pattern=_SCENARIO_PATTERN, max_length=128),
        principal: Principal = Depends(require_viewer),
    ) -> Response:
        """``tokens.<token>.scenarios.<scenario>.<metric>`` across runs, oldest first; 404 when no run has it."""
        idx = await fresh_index()
        data = await anyio.to_thread.run_sync(idx.timeseries_bytes, token, metric, scenario)
        if data is None:
            raise HTTPException(404, f"no run has tokens.{token}.scenarios.{scenario}.{metric}")
        return _json(data)

    # ------------------------------------------------------------------ what-if (analyst)
    @app.post(
        "/api/whatif",
        response_model=WhatIfOut,
        tags=["whatif"],
        responses={
            202: {"model": WhatIfOut, "description": "submitted to the Prefect deployment"},
            409: {"model": ErrorOut, "description": "no model: run the pipeline first"},
            413: {"model": ErrorOut},
            422: {"model": ErrorOut},
            503: {"model": ErrorOut, "description": "Prefect unavailable, or in-process time limit"},
            **_ERRORS,
        },
    )
    async def submit_whatif(req: wi.WhatIfRequest, principal: Principal = Depends(require_analyst)) -> Response:
        """Run a what-if. In-process when ``n_paths * horizon_days <= service.inprocess_max_cells``:
        queued behind earlier what-ifs (one runs at a time), answered 200 with the result when it
        finishes within ``service.inprocess_wait_s``, else 202 with its id and a ``Location`` to
        poll; 503 when ``service.whatif_queue_max`` what-ifs already wait. Larger what-ifs run on
        the Prefect deployment (202 with the flow run id)."""
        if req.token_spec is None:
            try:
                table = await anyio.to_thread.run_sync(get_presets)
            except (OSError, ValueError) as exc:
                raise wi.WhatIfInputError("token_preset", f"presets unavailable: {exc}") from exc
        else:
            table = {}
        spec = wi.resolve_spec(req, table)
        if req.seed is None:
            req = req.model_copy(update={"seed": settings.monte_carlo.seed})
        if req.cells <= settings.service.inprocess_max_cells:
            return await _run_inprocess(req, spec)
        return await _submit_deployment(req, spec)

    def _inprocess_work(req: wi.WhatIfRequest, spec: Any) -> Callable[[Job], dict[str, Any]]:
        timeout = float(settings.service.inprocess_timeout_s)

        def work(job: Job) -> dict[str, Any]:
            deadline = time.monotonic() + timeout
            try:
                model = wi.load_model(settings)
                result = wi.compute_whatif(req, spec, model, settings, deadline=deadline, cancel=job.cancel)
            except wi.WhatIfTimeout:
                raise JobError(
                    503,
                    f"what-if exceeded the in-process time limit of {timeout:g} s (service.inprocess_timeout_s): use fewer paths or days, or more than service.inprocess_max_cells={settings.service.inprocess_max_cells} cells to run it on the Prefect deployment",
                ) from None
            except wi.NoModelError as exc:
                raise JobError(409, str(exc)) from None
            except (ValueError, ArithmeticError) as exc:
                raise JobError(422, f"this token spec cannot be simulated: {exc}") from None
            wi.store_result(job.id, "inprocess", result, settings)
            return result

        return work

    async def _run_inprocess(req: wi.WhatIfRequest, spec: Any) -> Response:
        try:
            job = whatif_queue.submit(_inprocess_work(req, spec))
        except QueueFull as exc:
            raise HTTPException(
                503,
                f"what-if queue full: {exc.waiting} what-ifs waiting (service.whatif_queue_max={whatif_queue.max_waiting}); try again later",
                headers={"Retry-After": "30"},
            ) from None
        assert job.future is not None
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)), settings.service.inprocess_wait_s)
        except TimeoutError:
            pass
        return _job_answer(job, submitted=True)

    def _job_answer(job: Job, submitted: bool = False) -> Response:
        if job.status == "completed":
            return JSONResponse({"id": job.id, "status": "completed", "mode": "inprocess", "result": job.result})
        if job.status == "failed":
            assert job.error is not None
            if submitted:
                headers = {"Retry-After": "30"} if job.error.status == 503 else None
                raise HTTPException(job.error.status, job.error.detail, headers=headers)
            return JSONResponse(
                {"id": job.id, "status": "failed", "mode": "inprocess", "result": None, "detail": job.error.detail}
            )
        return JSONResponse(
            {"id": job.id, "status": job.status, "mode": "inprocess", "result": None},
            status_code=202 if submitted else 200,
            headers={"Location": f"/api/whatif/{job.id}"} if submitted else None,
        )

    async def _submit_deployment(req: wi.WhatIfRequest, spec: Any) -> Response:
        name = settings.service.whatif_deployment
        api = _prefect_api_url()
        why = f"n_paths * horizon_days = {req.cells} > service_inprocess_max_cells = {settings.service.inprocess_max_cells}"
        if not api:
            raise HTTPException(
                503,
                f"this what-if is large ({why}) and runs on the Prefect deployment {name!r}, but no Prefect API is configured (PREFECT_API_URL)",
                headers={"Retry-After": "60"},
            )
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound

        request = {**req.model_dump(mode="json"), "token_spec": spec.model_dump(mode="json"), "token_preset": None}
        try:
            with anyio.fail_after(settings.service.prefect_timeout_s):
                flow_run = run_deployment(
                    name=name,
                    parameters={"request": request},
                    timeout=0,
                    as_subflow=False,
                    tags=["goldstress", "whatif"],
                )
                if inspect.isawaitable(flow_run):
                    flow_run = await flow_run
        except ObjectNotFound:
            raise HTTPException(
                503,
                f"Prefect deployment {name!r} not found at {api}: deploy it (prefect.yaml, deployment 'whatif') and start a worker",
                headers={"Retry-After": "60"},
            ) from None
        except Exception as exc:  # connection refused, timeouts, HTTP errors from the API
            log.warning("what-if: Prefect API %s unavailable: %s", api, exc)
            raise HTTPException(
                503,
                f"Prefect API at {api} is unreachable ({type(exc).__name__}); try again later",
                headers={"Retry-After": "60"},
            ) from None
        wid = str(flow_run.id)
        record = {
            "id": wid,
            "mode": "deployment",
            "deployment": name,
            "flow_run_name": flow_run.name,
            "submitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "request": request,
        }
        await anyio.to_thread.run_sync(wi.store_request, wid, record, settings)
        return JSONResponse({"id": wid, "status": "scheduled", "mode": "deployment"}, status_code=202)

    @app.get(
        "/api/whatif/{whatif_id}",
        response_model=WhatIfOut,
        tags=["whatif"],
        responses={**_ERRORS, **_NOT_FOUND, 503: {"model": ErrorOut}},
    )
    async def get_whatif(whatif_id: uuid.UUID, principal: Principal = Depends(require_analyst)) -> Response:
        """Status and result of a what-if (deployment mode: the Prefect flow run's state until
        ``result.json`` exists)."""
        wid = str(whatif_id)
        job = whatif_queue.get(wid)
        if job is not None:
            return _job_answer(job)
        doc = whatif_docs.get(wid)
        if doc is None:
            doc = await anyio.to_thread.run_sync(wi.read_doc, wid, "result.json", settings)
            if doc is not None:
                whatif_docs.put(wid, doc)
        if doc is not None:
            return JSONResponse(
                {"id": wid, "status": "completed", "mode": doc.get("mode"), "result": doc.get("result")}
            )
        record = await anyio.to_thread.run_sync(wi.read_doc, wid, "request.json", settings)
        if record is None:
            raise HTTPException(404, f"unknown what-if {wid}")
        api = _prefect_api_url()
        if not api:
            raise HTTPException(503, "what-if runs on Prefect, but no Prefect API is configured (PREFECT_API_URL)")
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        try:
            with anyio.fail_after(settings.service.prefect_timeout_s):
                async with get_client() as client:
                    flow_run = await client.read_flow_run(whatif_id)
        except ObjectNotFound:
            raise HTTPException(404, f"flow run {wid} not found in Prefect at {api}") from None
        except Exception as exc:
            log.warning("what-if: Prefect API %s unavailable: %s", api, exc)
            raise HTTPException(
                503,
                f"Prefect API at {api} is unreachable ({type(exc).__name__}); try again later",
                headers={"Retry-After": "30"},
            ) from None
        state = flow_run.state
        status = state.type.value.lower() if state is not None else "unknown"
        detail = state.message if state is not None else None
        if status == "completed":
            doc = await anyio.to_thread.run_sync(wi.read_doc, wid, "result.json", settings)
            if doc is not None:
                whatif_docs.put(wid, doc)
                return JSONResponse(
                    {"id": wid, "status": "completed", "mode": "deployment", "result": doc.get("result")}
                )
            status, detail = "failed", "the flow run completed without writing result.json"
        return JSONResponse({"id": wid, "status": status, "mode": "deployment", "result": None, "detail": detail})

    # ------------------------------------------------------------------ dashboard reads (any role)
    add_dashboard_routes(app, fresh_index, get_presets, require_viewer, {**_ERRORS, **_NOT_FOUND})

    # ------------------------------------------------------------------ static assets
    @app.get("/static/plotly.min.js", include_in_schema=False)
    async def plotly_js(principal: Principal = Depends(require_viewer)) -> Response:
        """plotly.js bundled with the installed plotly package (offline, never a CDN)."""
        path = plotly_js_path()
        if path is None:
            return JSONResponse({"detail": "plotly.min.js not found in the plotly package"}, status_code=404)
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "private, max-age=86400"})

    # ------------------------------------------------------------------ Prometheus metrics
    metrics = ServiceMetrics(whatif_probe=whatif_queue.depth)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition (``service.metrics``); unauthenticated, not routed by the ingress."""
        try:
            idx: RunIndex | None = await fresh_index()
        except (ReportStoreUnavailable, OSError):
            idx = None
        body = await anyio.to_thread.run_sync(metrics.exposition, idx)
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    else:
        app.mount("/static", _Missing(), name="static")

    app.add_middleware(GuardMiddleware, auth=auth, settings=settings)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.service.max_body_bytes, timeout_s=settings.service.body_timeout_s
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        csp=dashboard_csp(inline_script_hashes([STATIC_DIR / "login.html", STATIC_DIR / "dashboard.html"])),
        docs_paths=DEV_PUBLIC_PATHS if settings.service.dev_mode else frozenset(),
    )
    app.add_middleware(HTTPMetricsMiddleware, metrics=metrics, router_app=app)  # outermost: counts every answer
    return app
