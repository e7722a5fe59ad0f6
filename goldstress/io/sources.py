"""Network connectors and the file importer (raw bytes in, nothing parsed here).

Every online fetch goes through one retrying GET (:func:`_get`): a per-request timeout
(``settings.data.http_timeout_s``), up to ``settings.data.http_retries`` retries with exponential backoff
(``settings.data.http_backoff_s * 2**k`` seconds before retry ``k + 1``), retried on connection
errors, timeouts, HTTP 429 and HTTP 5xx; a ``Retry-After`` header (seconds or an HTTP date,
RFC 9110 section 10.2.3) replaces the backoff for that wait. Other 4xx answers are not retried.
Every failure ends in :class:`SourceUnavailable`, a one-line message naming the URL, the cause
and the offline alternative.

These are plain functions; the Prefect task wrappers live with the flows.
"""

from __future__ import annotations

import email.utils
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import httpx

from goldstress import __version__
from goldstress.settings import Settings

__all__ = [
    "OFFLINE_HINT",
    "SourceUnavailable",
    "fetch_coingecko_market_chart",
    "fetch_lbma",
    "probe_online",
    "read_data_file",
]

OFFLINE_HINT = "run offline with DATA=<dir> (make run DATA=<dir>) or GOLDSTRESS_DATA_DIR=<dir>"
"""Tail of every :class:`SourceUnavailable` message: what to pass instead of going online."""

MAX_RETRY_AFTER_S = 60.0
"""Longest ``Retry-After`` wait honoured; a server asking for more ends the fetch at once."""

PROBE_TIMEOUT_S = 3.0
"""Upper bound of the reachability probe's timeout (the smaller of this and http_timeout_s)."""

USER_AGENT = f"goldstress/{__version__} (+httpx {httpx.__version__})"

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
_COIN_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VS = re.compile(r"^[a-z]{2,10}$")

# Indirection so tests can record the waits instead of sleeping (monkeypatch goldstress.io.sources._sleep).
_sleep = time.sleep


class SourceUnavailable(Exception):
    """An online source could not be fetched.

    ``str(exc)`` is ONE line: ``"cannot fetch <url>: <cause>; run offline with DATA=<dir> ..."``.
    Attributes: ``url`` (str), ``cause`` (str, one line), ``status_code`` (int | None, the last
    HTTP status seen, None for network errors), ``attempts`` (int, requests made).
    """

    def __init__(self, url: str, cause: str, *, status_code: int | None = None, attempts: int = 1) -> None:
        self.url = url
        self.cause = _one_line(cause)
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(f"cannot fetch {url}: {self.cause}; {OFFLINE_HINT}")


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace/newlines to single spaces and cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _describe_transport_error(exc: httpx.TransportError, timeout_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout_s:g} s ({type(exc).__name__})"
    detail = str(exc) or exc.__class__.__doc__ or ""
    return f"{type(exc).__name__}: {detail}"


def _describe_status(resp: httpx.Response) -> str:
    reason = resp.reason_phrase or ""
    text = f"HTTP {resp.status_code} {reason}".strip()
    if 400 <= resp.status_code < 500 and resp.status_code != 429:
        snippet = _one_line(resp.text, 160) if resp.content else ""
        if snippet:
            text += f" (body: {snippet})"
    return text


def _send_bounded(client: httpx.Client, req: httpx.Request, settings: Settings) -> httpx.Response:
    """Send ``req`` and read the body in chunks, refusing (``DataRejected``, check ``size``)
    once it passes ``settings.data.max_file_bytes`` (a larger Content-Length is refused before
    any byte of the body is read). Returns a response whose body is fully read."""
    from goldstress.io.datagate import check_size

    resp = client.send(req, stream=True)
    try:
        name = str(req.url)
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit():
            check_size(int(declared), name, settings)
        chunks, total = [], 0
        for chunk in resp.iter_bytes():
            total += len(chunk)
            check_size(total, name, settings)
            chunks.append(chunk)
    finally:
        resp.close()
    # the body is decoded already: drop the headers that would make httpx decode or size it again
    headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
    return httpx.Response(
        resp.status_code, headers=headers, content=b"".join(chunks), request=req, extensions=resp.extensions
    )


def _get(
    url: str,
    settings: Settings,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float | None = None,
    retries: int | None = None,
) -> httpx.Response:
    """GET ``url`` with timeout, retries and backoff; return the successful (2xx) response.

    Raises
    ------
    SourceUnavailable
        Non-retryable 4xx (at once), or the last error after ``1 + retries`` attempts, or a
        ``Retry-After`` longer than :data:`MAX_RETRY_AFTER_S`.
    """
    timeout_s = settings.data.http_timeout_s if timeout_s is None else timeout_s
    retries = settings.data.http_retries if retries is None else retries
    hdrs = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    hdrs.update(headers or {})
    shown_url = url
    last_cause = "no attempt made"
    last_status: int | None = None
    attempts = 0
    with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=True, headers=hdrs) as client:
        for attempt in range(retries + 1):
            attempts = attempt + 1
            wait: float | None = None
            try:
                req = client.build_request("GET", url, params=params)
                shown_url = str(req.url)
                resp = _send_bounded(client, req, settings)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise SourceUnavailable(url, f"invalid URL ({exc}), not retried") from None
            except httpx.TransportError as exc:
                last_cause = _describe_transport_error(exc, timeout_s)
                last_status = None
            else:
                last_status = resp.status_code
                if resp.is_success:
                    return resp
                last_cause = _describe_status(resp)
                if resp.status_code not in _RETRY_STATUS:
                    raise SourceUnavailable(
                        shown_url,
                        f"{last_cause}, not retried",
                        status_code=resp.status_code,
                        attempts=attempts,
                    )
                wait = _retry_after_s(resp.headers.get("Retry-After"))
                if wait is not None and wait > MAX_RETRY_AFTER_S:
                    raise SourceUnavailable(
                        shown_url,
                        f"{last_cause}; server asks to retry after {wait:g} s "
                        f"(more than the {MAX_RETRY_AFTER_S:g} s limit)",
                        status_code=resp.status_code,
                        attempts=attempts,
                    )
            if attempt < retries:
                _sleep(wait if wait is not None else settings.data.http_backoff_s * 2**attempt)
    raise SourceUnavailable(
        shown_url,
        f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}; last error: {last_cause}",
        status_code=last_status,
        attempts=attempts,
    )


def _check_json_body(resp: httpx.Response, opener: str) -> bytes:
    """Return the body if it starts (after whitespace) with ``opener`` ('[' or '{'), else raise.

    Catches HTML challenge/error pages served with status 200 before they become snapshots.
    """
    body = resp.content
    head = body.lstrip()[:1].decode("latin-1")
    if head != opener:
        ctype = resp.headers.get("content-type", "unknown content-type")
        start = _one_line(body[:60].decode("utf-8", errors="replace"), 60) or "<empty body>"
        raise SourceUnavailable(
            str(resp.request.url),
            f"HTTP {resp.status_code} but the body is not the expected JSON ({ctype}; starts {start!r})",
            status_code=resp.status_code,
        )
    return body


def fetch_lbma(url: str, settings: Settings) -> bytes:
    """Download an LBMA gold price JSON feed and return its raw bytes (unparsed).

    The feeds are ``https://prices.lbma.org.uk/json/gold_pm.json`` and ``gold_am.json``
    (``settings.data.lbma_pm_url`` / ``lbma_am_url``): a JSON list of records
    ``{"is_cms_locked": 0, "d": "YYYY-MM-DD", "v": [usd, gbp, eur]}``, prices per fine troy
    ounce, ``null`` where a currency has no fix (EUR before 1999). Parse with
    :func:`goldstress.io.layouts.parse_lbma_json`.

    Parameters
    ----------
    url : str
        Feed URL (http/https).
    settings : Settings
        Uses ``http_timeout_s``, ``http_retries``, ``http_backoff_s``.

    Returns
    -------
    bytes
        The response body, exactly as served.

    Raises
    ------
    SourceUnavailable
        Network error, timeout, HTTP error after retries, or a body that is not a JSON list.
    """
    resp = _get(url, settings)
    return _check_json_body(resp, "[")


def fetch_coingecko_market_chart(coin_id: str, settings: Settings, vs: str = "usd", days: int | str = "max") -> bytes:
    """Download CoinGecko ``/coins/{coin_id}/market_chart`` and return its raw bytes.

    Request: ``GET {settings.data.coingecko_url}/coins/{coin_id}/market_chart?vs_currency={vs}
    &days={days}&interval=daily``, with header ``x-cg-demo-api-key`` when
    ``settings.data.coingecko_api_key`` is set. Response (CoinGecko API v3 docs, "Coin Historical
    Chart Data by ID"): ``{"prices": [[unix_ms, price], ...], "market_caps": [...],
    "total_volumes": [...]}``; daily points are 00:00 UTC snapshots and the last point is the
    latest intraday price. Parse with :func:`goldstress.io.layouts.parse_coingecko_market_chart`.

    Note: the keyless/demo API serves only the past 365 days; ``days="max"`` then fails with
    HTTP 401 (not retried). Pass ``days=365`` without a paid key.

    Parameters
    ----------
    coin_id : str
        CoinGecko coin id, e.g. ``"pax-gold"``, ``"tether-gold"`` (``settings.data.coingecko_ids``).
    settings : Settings
        Uses ``coingecko_url``, ``coingecko_api_key`` and the HTTP retry settings.
    vs : str
        Quote currency code, default ``"usd"``.
    days : int | str
        Look-back in days (positive int) or ``"max"``.

    Returns
    -------
    bytes
        The response body, exactly as served.

    Raises
    ------
    ValueError
        ``coin_id``, ``vs`` or ``days`` malformed (names the argument).
    SourceUnavailable
        Network error, timeout, HTTP error after retries, or a body that is not a JSON object.
    """
    if not isinstance(coin_id, str) or not _COIN_ID.match(coin_id):
        raise ValueError(f"coin_id: {coin_id!r} is not a CoinGecko id (lowercase, digits, '-')")
    if not isinstance(vs, str) or not _VS.match(vs):
        raise ValueError(f"vs: {vs!r} is not a currency code such as 'usd'")
    if days != "max" and not (isinstance(days, int) and not isinstance(days, bool) and days > 0):
        raise ValueError(f"days: {days!r} must be a positive int or 'max'")
    url = f"{settings.data.coingecko_url.rstrip('/')}/coins/{coin_id}/market_chart"
    headers = {}
    if settings.data.coingecko_api_key:
        headers["x-cg-demo-api-key"] = settings.data.coingecko_api_key
    params = {"vs_currency": vs, "days": str(days), "interval": "daily"}
    resp = _get(url, settings, params=params, headers=headers)
    return _check_json_body(resp, "{")


def probe_online(settings: Settings) -> None:
    """Fail fast when the online sources cannot be reached (no retries, short timeout).

    Sends one HEAD request to ``settings.data.lbma_pm_url`` (the feed itself is ~1 MB) and one
    GET to ``{settings.data.coingecko_url}/ping`` (CoinGecko's status endpoint), each with
    timeout ``min(PROBE_TIMEOUT_S, settings.data.http_timeout_s)`` and no retry. Any HTTP answer
    below 500 counts as reachable (the real fetch reports HTTP errors itself).

    Raises
    ------
    SourceUnavailable
        On the first unreachable URL (connection refused, DNS failure, timeout, HTTP 5xx);
        the one-line message tells the user to run offline with ``DATA=<dir>``.
    """
    timeout_s = min(PROBE_TIMEOUT_S, settings.data.http_timeout_s)
    targets = [
        ("HEAD", settings.data.lbma_pm_url),
        ("GET", f"{settings.data.coingecko_url.rstrip('/')}/ping"),
    ]
    with httpx.Client(
        timeout=httpx.Timeout(timeout_s), follow_redirects=True, headers={"User-Agent": USER_AGENT}
    ) as client:
        for method, url in targets:
            try:
                resp = client.request(method, url)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise SourceUnavailable(url, f"invalid URL ({exc})") from None
            except httpx.TransportError as exc:
                raise SourceUnavailable(url, _describe_transport_error(exc, timeout_s)) from None
            if resp.status_code >= 500:
                raise SourceUnavailable(url, _describe_status(resp), status_code=resp.status_code)


def read_data_file(path: str | Path, settings: Settings | None = None) -> bytes:
    """Read a local (or fsspec URL, e.g. ``s3://...``) data file and return its raw bytes.

    Parameters
    ----------
    path : str | Path
        File path, e.g. ``<data_dir>/gold_lbma_usd_daily_1968_2026_merged.csv``.

    Returns
    -------
    bytes
        The file content, unchanged.

    Raises
    ------
    FileNotFoundError
        The file does not exist; the message names the path and lists a few files that do
        exist in the same folder.
    IsADirectoryError
        ``path`` is a folder.
    goldstress.io.datagate.DataRejected
        With ``settings``: the file is larger than ``settings.data.max_file_bytes`` (checked
        from its size before reading, check ``size``).
    """
    text = str(path)
    if "://" in text:
        fs, fpath = fsspec.core.url_to_fs(text)
    else:
        fs, fpath = fsspec.filesystem("file"), str(Path(text).expanduser().resolve())
    if not fs.exists(fpath):
        parent = fpath.rsplit("/", 1)[0] if "/" in fpath else ""
        hint = ""
        try:
            if parent and fs.isdir(parent):
                names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(parent, detail=False))
                names = [n for n in names if not n.startswith(".")]
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                hint = f"; that folder holds: {shown or 'nothing'}"
            elif parent:
                hint = f"; the folder {parent} does not exist either"
        except OSError:
            hint = ""
        raise FileNotFoundError(
            f"data file not found: {text}{hint} "
            "(check DATA=<dir> / GOLDSTRESS_DATA_DIR and the gold_file/token_files settings)"
        )
    if fs.isdir(fpath):
        raise IsADirectoryError(f"data file expected, got a folder: {text}")
    if settings is not None:
        from goldstress.io.datagate import check_size

        check_size(int(fs.size(fpath)), text.rsplit("/", 1)[-1], settings)
    return fs.cat_file(fpath)
