"""The service's launcher: ``python -m service.serve --host 127.0.0.1 --port 8000`` (``make serve``).

Checks the settings against the address it will bind before starting uvicorn (development
mode only on a loopback address), then runs uvicorn with proxy-header rewriting off, the h11
parser with a header-size limit, and a deadline for each request's line and headers.
A refusal is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

HOST_ENV = "GOLDSTRESS_SERVICE_HOST"


def bounded_h11(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol with a deadline on each request head: a connection that has not
    sent a complete request line and headers ``header_timeout_s`` seconds after it opened (or
    after the previous response) is closed. uvicorn's own keep-alive timer stops at the first
    byte received, so without this a client dribbling header bytes holds a connection forever."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _head_timer: Any = None
        _head_cycle: Any = None

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_cycle = self.cycle
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timeout)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.cycle is self._head_cycle and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def handle_events(self) -> None:
            super().handle_events()
            if self._head_timer is not None and self.cycle is not self._head_cycle:
                self._cancel_head_timer()  # a complete request head arrived

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():
                self._arm_head_timer()  # for the next request on this connection
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

    return BoundedH11Protocol


def uvicorn_options(
    host: str,
    port: int,
    log_level: str,
    max_header_bytes: int = 16_384,
    header_timeout_s: float = 10.0,
    keep_alive_s: int = 5,
    json_logs: bool = False,
) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for the service (factory ``service.app:create_app``):
    the h11 parser (httptools, uvicorn's default when installed, has no header-size limit)
    with ``max_header_bytes`` as ``h11_max_incomplete_event_size`` (431 above it),
    :func:`bounded_h11`'s head deadline and ``keep_alive_s`` as ``timeout_keep_alive``; the
    access log on (one line per request), as JSON lines when ``json_logs``
    (:func:`goldstress.logs.json_logging_config`)."""
    extra: dict[str, Any] = {}
    if json_logs:
        from goldstress.logs import json_logging_config

        extra["log_config"] = json_logging_config(log_level)
    return {
        **extra,
        "access_log": True,
        "http": bounded_h11(header_timeout_s),
        "h11_max_incomplete_event_size": max_header_bytes,
        "timeout_keep_alive": keep_alive_s,
        "factory": True,
        "host": host,
        "port": port,
        "log_level": log_level,
        "proxy_headers": False,  # the service reads X-Forwarded-For itself, from trusted proxies only
        "server_header": False,
    }


UNCONFIGURED = (
    "no users configured: create one with `python -m service.hashpw` and set GOLDSTRESS_SERVICE_USERS and "
    "GOLDSTRESS_SERVICE_JWT_SECRET (docs/platform/service.md), or try it on this machine in development mode: "
    "GOLDSTRESS_SERVICE_DEV_MODE=true make serve"
)
"""The refusal when nothing is configured: no user, no API key, no JWT secret, no dev mode."""


def start_line(host: str, port: int, dev_mode: bool) -> str:
    """The line printed when the service starts: the URL to open (IPv6 hosts bracketed) and, in
    development mode, its users."""
    where = f"[{host}]" if ":" in host else host
    line = f"goldstress service: open http://{where}:{port}/"
    if dev_mode:
        line += " (development mode: users dev-viewer and dev-analyst, password 'dev')"
    return line


def check(host: str) -> tuple[str | None, Any]:
    """``(refusal, settings)``: the one-line refusal for serving on ``host`` with the
    environment's settings (None when it may start) and those settings (None if invalid).

    ``GOLDSTRESS_SERVICE_HOST`` is set to ``host`` first, so the app's own start-up check and
    this one see the address actually bound. Never raises for bad settings (they become the
    message)."""
    from goldstress.settings import Settings
    from service.auth import ServiceConfigError, check_service_config

    os.environ[HOST_ENV] = host
    try:
        settings = Settings()
        svc = settings.service
        if not svc.dev_mode and svc.jwt_secret is None and not svc.users and not svc.api_keys:
            return UNCONFIGURED, None
        check_service_config(settings)
    except ServiceConfigError as exc:
        return str(exc), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid settings: {where}: {first.get('msg')} ({exc.error_count()} error(s))", None
    return None, settings


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--host``, ``--port``, ``--log-level``, check, print :func:`start_line` and serve
    until stopped. Returns the exit status: 2 for a refusal (one line on stderr, :data:`UNCONFIGURED`
    when nothing is configured), 0 after a normal shutdown."""
    parser = argparse.ArgumentParser(prog="python -m service.serve", description="Run the stakeholder service.")
    parser.add_argument("--host", default=os.environ.get(HOST_ENV, "127.0.0.1"))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    refusal, settings = check(args.host)
    if refusal is not None:
        print(f"goldstress service: {refusal}", file=sys.stderr)
        return 2
    import uvicorn

    svc = settings.service
    options = uvicorn_options(
        args.host,
        args.port,
        args.log_level,
        svc.max_header_bytes,
        svc.header_timeout_s,
        svc.keep_alive_s,
        json_logs=settings.monitoring.json_logs,
    )
    print(start_line(args.host, args.port, svc.dev_mode), flush=True)
    uvicorn.run("service.app:create_app", **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
