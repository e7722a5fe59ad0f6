"""Request limits: per-client token buckets (rate limit), login back-off after failures, the
client address behind trusted proxies, and an ASGI request-body size limit."""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TokenBucketLimiter:
    """A token bucket per client key (Turner (1986) / the "token bucket" of RFC 2697's meters).

    Each key's bucket holds up to ``per_minute`` tokens (the burst) and refills at
    ``per_minute / 60`` tokens per second; a request takes one token. At most ``max_keys``
    buckets are kept (least recently used evicted: an evicted client starts again with a full
    bucket). Thread-safe.

    Parameters
    ----------
    per_minute : int
        Sustained requests per minute, >= 1.
    max_keys : int
        Buckets kept in memory, >= 1.
    clock : callable returning seconds
        Monotonic clock (injectable for tests).

    Raises ValueError for a non-positive ``per_minute`` or ``max_keys``.
    """

    def __init__(self, per_minute: int, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValueError(f"per_minute: expected an integer >= 1, got {per_minute!r}")
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys: expected an integer >= 1, got {max_keys!r}")
        self.capacity = float(per_minute)
        self.rate_per_s = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token for ``key``. Returns 0.0 if allowed, else the seconds until a token
        is available (nothing is taken then)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate_per_s)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate_per_s
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


class FailureBackoff:
    """Exponential back-off of login attempts per key (an account or a client address).

    Each attempt is counted when it is let through (:meth:`acquire`), so concurrent attempts
    cannot slip past the check together; a successful login gives the attempt back
    (:meth:`succeeded`). The first ``free`` attempts are immediate; attempt ``free + k`` must
    wait ``min(max_s, base_s * 2**k)`` seconds after the previous one. A key idle for
    ``forget_s`` seconds (default one day) is forgotten. At most ``max_keys`` keys are kept (least recently used evicted).
    Thread-safe.

    Raises ValueError for ``free < 0``, ``base_s <= 0``, ``max_s < base_s``, ``forget_s < max_s``
    or ``max_keys < 1``.
    """

    def __init__(
        self,
        free: int,
        base_s: float,
        max_s: float,
        max_keys: int = 10_000,
        forget_s: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if free < 0 or base_s <= 0 or max_s < base_s or forget_s < max_s or max_keys < 1:
            raise ValueError(f"FailureBackoff: bad parameters free={free} base_s={base_s} max_s={max_s}")
        self.free, self.base_s, self.max_s, self.max_keys = int(free), float(base_s), float(max_s), int(max_keys)
        self.forget_s = float(forget_s)
        self._clock = clock
        self._keys: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _delay(self, attempts: int) -> float:
        if attempts < self.free:
            return 0.0
        return min(self.max_s, self.base_s * 2.0 ** min(attempts - self.free, 64))

    def acquire(self, key: str) -> float:
        """Count an attempt for ``key`` and return 0.0, or return the seconds to wait (nothing
        counted then)."""
        now = self._clock()
        with self._lock:
            attempts, last = self._keys.pop(key, (0, now))
            if now - last >= self.forget_s:
                attempts = 0
            wait = last + self._delay(attempts) - now if attempts else 0.0
            if wait > 0:
                self._keys[key] = (attempts, last)
                return wait
            self._keys[key] = (attempts + 1, now)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        return 0.0

    def succeeded(self, key: str, reset: bool = False) -> None:
        """Give back the attempt just counted for ``key`` (all of them when ``reset``)."""
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                return
            if reset or entry[0] <= 1:
                del self._keys[key]
            else:
                self._keys[key] = (entry[0] - 1, entry[1])


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The client's address for rate limits and login back-off.

    The direct peer (``scope["client"]``) unless it is in ``trusted`` (configured reverse
    proxies); then ``X-Forwarded-For`` is read from the right, skipping trusted hops, and the
    first other address is the client. A malformed entry, or a header only of trusted hops,
    gives the peer. With no trusted proxy the header is ignored, so a client cannot pick its
    own address. Never raises.
    """
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    peer_ip = _ip(peer)
    if not trusted or peer_ip is None or not any(peer_ip in net for net in trusted):
        return peer
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-forwarded-for":
            hops.extend(value.decode("latin-1").split(","))
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return peer
        if not any(ip in net for net in trusted):
            return str(ip)
    return peer


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` value (RFC 9110 section 10.2.3): whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response through a raw ASGI ``send``."""
    payload = json.dumps(body).encode("utf-8")
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


class BodySizeLimitMiddleware:
    """ASGI middleware answering 413 when a request body exceeds ``max_bytes``.

    A declared ``Content-Length`` above the limit is refused before reading. Otherwise the body
    (chunked or not) is read here, up to the limit, before the app runs, and replayed to it;
    so the app never sees more than ``max_bytes`` and a 413 never arrives half-way through a
    response. A body not complete within ``timeout_s`` seconds is answered 408.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.timeout_s = float(timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json(send, 400, {"detail": "invalid Content-Length header"})
                    return
                if declared > self.max_bytes:
                    await self._too_large(send)
                    return
        chunks: list[bytes] = []
        size = 0
        complete = False
        with anyio.move_on_after(self.timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body = message.get("body", b"")
                size += len(body)
                if size > self.max_bytes:
                    await self._too_large(send)
                    return
                chunks.append(body)
                if not message.get("more_body", False):
                    complete = True
                    break
        if not complete:
            await send_json(
                send,
                408,
                {"detail": f"request body not received within {self.timeout_s:g} s"},
                [(b"connection", b"close")],
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_json(send, 413, {"detail": f"request body larger than {self.max_bytes} bytes"})
