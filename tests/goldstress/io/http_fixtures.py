"""A local HTTP server that serves responses in the real source formats, built at test time.

``FakeHTTPSource`` runs ``http.server.ThreadingHTTPServer`` on 127.0.0.1 (free port chosen by the
OS) in a daemon thread. Each route has a body and an optional failure plan consumed in order,
one step per request, before the body is served:

- ``fail_status(503)`` / ``fail_status(429, retry_after="7")``: answer that status (and header);
- ``stall(2.0)``: wait that long before answering 200 (the client's timeout fires first).

Unknown paths answer 404. Every request is recorded (method, path, query, headers).

Body builders give the REAL wire formats:

- LBMA ``prices.lbma.org.uk/json/gold_pm.json``: compact JSON list of
  ``{"is_cms_locked":0,"d":"YYYY-MM-DD","v":[usd,gbp,eur]}`` (``null`` where no fix);
- CoinGecko ``/coins/{id}/market_chart``: ``{"prices": [[unix_ms, price], ...],
  "market_caps": [...], "total_volumes": [...]}``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from goldstress.settings import DataSettings, Settings, StorageSettings

__all__ = [
    "FakeHTTPSource",
    "RecordedRequest",
    "coingecko_market_chart_bytes",
    "fail_status",
    "free_port",
    "lbma_json_bytes",
    "make_settings",
    "stall",
]


def make_settings(storage: dict[str, object] | None = None, **data: object) -> Settings:
    """Settings that ignore any ``.env`` file, with HTTP values small enough for tests.

    ``data`` overrides fields of the data section (defaults ``http_timeout_s=2.0``,
    ``http_retries=3``, ``http_backoff_s=0.5``: tests record the backoff waits instead of
    sleeping them); ``storage`` fields of the storage section.
    """
    base: dict[str, object] = {"http_timeout_s": 2.0, "http_retries": 3, "http_backoff_s": 0.5}
    base.update(data)
    return Settings(
        data=DataSettings(_env_file=None, **base), storage=StorageSettings(_env_file=None, **(storage or {}))
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lbma_json_bytes(records: Iterable[tuple[str, float | None, float | None, float | None]]) -> bytes:
    """LBMA feed body from ``(date, usd, gbp, eur)`` tuples, in the feed's compact form."""
    out = [{"is_cms_locked": 0, "d": d, "v": [usd, gbp, eur]} for d, usd, gbp, eur in records]
    return json.dumps(out, separators=(",", ":")).encode()


def _ms(ts: datetime | int) -> int:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return int(round(ts.timestamp() * 1000))
    return int(ts)


def coingecko_market_chart_bytes(
    prices: Sequence[tuple[datetime | int, float]],
    market_caps: Sequence[float] | None = None,
    total_volumes: Sequence[float] | None = None,
) -> bytes:
    """CoinGecko market_chart body from ``(timestamp, price)`` pairs (naive datetimes = UTC)."""
    ms = [_ms(t) for t, _ in prices]
    caps = list(market_caps) if market_caps is not None else [0.0] * len(ms)
    vols = list(total_volumes) if total_volumes is not None else [0.0] * len(ms)
    body = {
        "prices": [[m, p] for m, (_, p) in zip(ms, prices, strict=True)],
        "market_caps": [[m, c] for m, c in zip(ms, caps, strict=True)],
        "total_volumes": [[m, v] for m, v in zip(ms, vols, strict=True)],
    }
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class _Fail:
    kind: str  # "status" or "stall"
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0


def fail_status(status: int, retry_after: str | None = None) -> _Fail:
    """One failing answer with ``status`` (and a ``Retry-After`` header when given)."""
    return _Fail("status", status=status, retry_after=retry_after)


def stall(seconds: float) -> _Fail:
    """One answer delayed by ``seconds`` (longer than the client's timeout -> client times out)."""
    return _Fail("stall", seconds=seconds)


@dataclass
class _Route:
    body: bytes
    content_type: str
    status: int
    delay_s: float
    plan: list[_Fail]
    headers: dict[str, str]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeHTTPSource:
    """Local HTTP server with scripted failures; use as a context manager or call start/close."""

    routes: dict[str, _Route] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeHTTPSource:
        """Bind 127.0.0.1 on a free port (port 0) and serve in a daemon thread; returns self."""
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # silence
                return

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                rec = RecordedRequest(
                    method, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}
                )
                with source._lock:
                    source.requests.append(rec)
                    route = source.routes.get(parts.path)
                    step = route.plan.pop(0) if route is not None and route.plan else None
                try:
                    if route is None:
                        self._reply(404, b'{"error":"not found"}', "application/json", {}, method)
                    elif step is not None and step.kind == "status":
                        extra = {"Retry-After": step.retry_after} if step.retry_after is not None else {}
                        self._reply(step.status, b'{"error":"scripted failure"}', "application/json", extra, method)
                    else:
                        delay = step.seconds if step is not None else route.delay_s
                        if delay and source._stop.wait(delay):
                            return
                        self._reply(route.status, route.body, route.content_type, route.headers, method)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): expected in stall tests

            def _reply(self, status: int, body: bytes, ctype: str, extra: dict[str, str], method: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve("HEAD")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Cut pending stalls short, stop serving and release the port."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHTTPSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routes -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound TCP port."""
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def add(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/json",
        fail: Iterable[_Fail] = (),
        status: int = 200,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve ``body`` at ``path`` after the failure plan ``fail``; return the URL."""
        with self._lock:
            self.routes[path] = _Route(body, content_type, status, delay_s, list(fail), dict(headers or {}))
        return self.url(path)

    def count(self, path: str) -> int:
        """Requests received for ``path`` so far."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """Recorded requests for ``path``, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path == path]
