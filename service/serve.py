"""The service's launcher: ``python -m service.serve --host 127.0.0.1 --port 8000`` (``make serve``).

Checks the settings against the address it will bind before starting uvicorn (development
mode only on a loopback address), then runs uvicorn with proxy-header rewriting off.
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


def uvicorn_options(host: str, port: int, log_level: str) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for the service (factory ``service.app:create_app``)."""
    return {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": log_level,
        "proxy_headers": False,  # the service reads X-Forwarded-For itself, from trusted proxies only
        "server_header": False,
    }


def check(host: str) -> str | None:
    """The one-line refusal for serving on ``host`` with the environment's settings, or None.

    ``GOLDSTRESS_SERVICE_HOST`` is set to ``host`` first, so the app's own start-up check and
    this one see the address actually bound. Never raises for bad settings (they become the
    message)."""
    from goldstress.settings import Settings
    from service.auth import ServiceConfigError, check_service_config

    os.environ[HOST_ENV] = host
    try:
        check_service_config(Settings())
    except ServiceConfigError as exc:
        return str(exc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid settings: {where}: {first.get('msg')} ({exc.error_count()} error(s))"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--host``, ``--port``, ``--log-level``, check, and serve until stopped. Returns the
    exit status: 2 for a refusal (message on stderr), 0 after a normal shutdown."""
    parser = argparse.ArgumentParser(prog="python -m service.serve", description="Run the stakeholder service.")
    parser.add_argument("--host", default=os.environ.get(HOST_ENV, "127.0.0.1"))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    refusal = check(args.host)
    if refusal is not None:
        print(f"goldstress service: {refusal}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run("service.app:create_app", **uvicorn_options(args.host, args.port, args.log_level))
    return 0


if __name__ == "__main__":
    sys.exit(main())
