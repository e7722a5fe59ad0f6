"""Security headers on every answer of the service (ASGI middleware, outermost).

Content-Security-Policy (W3C CSP Level 3): a strict policy for the dashboard and JSON answers,
a ``sandbox`` policy for stored run reports (they run in an opaque origin, away from the
session cookie and the API), and frame-ancestors 'none' on the development API docs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from service.limits import ASGIApp, Receive, Scope, Send

REPORT_PATH_RE = re.compile(r"^/api/runs/[^/]+/report\.html$")
"""Paths of stored run reports (self-contained HTML)."""

REPORT_CSP = (
    "sandbox allow-popups allow-downloads; default-src 'none'; "
    "script-src 'none'; style-src 'unsafe-inline'; img-src data: blob:; "
    "font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""A report is static HTML with inline styles and SVG figures: sandboxed, no script at all, no
same-origin access, no network."""

DOCS_CSP = "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
"""Development API docs (Swagger UI from its CDN): only framing and base URLs are restricted."""

_INLINE_SCRIPT_RE = re.compile(r"<script>(.*?)</script>", re.S)


def inline_script_hashes(pages: Iterable[Path]) -> list[str]:
    """CSP ``'sha256-...'`` sources of the inline ``<script>`` blocks of ``pages`` (missing
    pages are skipped). Never raises for a missing file; OSError for an unreadable one."""
    out = []
    for page in pages:
        if not page.is_file():
            continue
        for body in _INLINE_SCRIPT_RE.findall(page.read_text(encoding="utf-8")):
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
            out.append(f"'sha256-{digest}'")
    return out


def dashboard_csp(script_hashes: Iterable[str] = ()) -> str:
    """The strict policy of the dashboard, the login page and every JSON answer: scripts and
    styles from the service itself (plus the given inline-script hashes; styles may be inline,
    which plotly needs), data from the same origin, no framing, no plugins."""
    scripts = " ".join(["'self'", *script_hashes])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    )


class SecurityHeadersMiddleware:
    """Adds ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
    ``Referrer-Policy: no-referrer``, a ``Content-Security-Policy`` and a default
    ``Cache-Control`` (``no-store`` under ``/api/``) to every HTTP answer, including the 401,
    413, 429 and 404 answers of the middleware inside it and a 500 for an unhandled error
    (answered here, then the error is re-raised to the server).

    Parameters
    ----------
    app : ASGI app
    csp : str
        Policy of every path that is neither a report nor in ``docs_paths``.
    docs_paths : frozenset of str
        Paths answered with :data:`DOCS_CSP` (development-mode API docs).
    """

    def __init__(self, app: ASGIApp, csp: str, docs_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.csp = csp.encode("ascii")
        self.docs_paths = docs_paths

    def policy(self, path: str) -> bytes:
        """The Content-Security-Policy of ``path``."""
        if REPORT_PATH_RE.match(path):
            return REPORT_CSP.encode("ascii")
        if path in self.docs_paths:
            return DOCS_CSP.encode("ascii")
        return self.csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        api = path.startswith("/api/")
        csp = self.policy(path)

        started = False

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                hdrs = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                names = {k.lower() for k, _ in hdrs}
                hdrs += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", csp),
                ]
                if b"cache-control" not in names:
                    hdrs.append((b"cache-control", b"no-store" if api else b"private, no-cache"))
                message = {**message, "headers": hdrs}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # an unhandled error: answer 500 here, with the headers, before the server's own
            # error answer (which would go out without them); the error still propagates
            if not started:
                body = b'{"detail":"internal error"}'
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_headers({"type": "http.response.body", "body": body})
            raise
