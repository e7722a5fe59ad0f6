"""Helpers for tests against real Prefect services: a `prefect server start` subprocess on a free
port with its own PREFECT_HOME and SQLite database, CLI calls that fail with their captured
output, REST reads with httpx, and a minimal independent cron matcher for schedule checks.

Everything binds to 127.0.0.1; telemetry is off in every child environment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from goldstress.telemetry import TELEMETRY_OFF

PREFECT = Path(sys.executable).parent / "prefect"
"""The venv's prefect CLI (same interpreter as the tests)."""

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Repository root: where prefect.yaml lives and `prefect deploy` runs."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_env(home: Path, api_url: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child environment: the current one without any PREFECT_* variable, plus an isolated
    PREFECT_HOME, a SQLite database inside it, telemetry off, and PREFECT_API_URL if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(TELEMETRY_OFF)
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    env["PYTHONUNBUFFERED"] = "1"
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    env.update(extra or {})
    return env


def _tail(path: Path, n_chars: int = 6000) -> str:
    """The last ``n_chars`` characters of a log file (empty if absent)."""
    try:
        return path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return ""


def _signal_group(proc: subprocess.Popen, sig: int) -> bool:
    """Send ``sig`` to the process group of ``proc`` (started with ``start_new_session=True``,
    so the group is ours alone). False if no process of the group is left."""
    try:
        os.killpg(proc.pid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_process(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """End a child started with ``start_new_session=True`` and everything in its process group
    (uvicorn under `prefect server start`, flow-run processes under a worker): SIGTERM, a second
    SIGTERM (an idle Prefect worker ignores the first for 50+ s), then SIGKILL; finally any
    straggler of the group gets SIGKILL after 5 s. Never raises."""
    if proc.poll() is None:
        for wait_s in (grace_s, 5.0):
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _signal_group(proc, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_group(proc, signal.SIGKILL)


def run_cli(args: list[str], env: Mapping[str, str], cwd: Path, log: Path, timeout_s: float = 180) -> str:
    """Run ``prefect <args>``; return its combined output. Raises ``AssertionError`` with the
    command and its output when it exits non-zero or runs past ``timeout_s``."""
    cmd = [str(PREFECT), *args]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        rc = None
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        finally:  # also on KeyboardInterrupt: leave no process of the group behind
            stop_process(proc, grace_s=5)
    if rc is None:
        raise AssertionError(f"{' '.join(cmd)} timed out after {timeout_s} s; output:\n{_tail(log)}")
    text = log.read_text(errors="replace")
    if rc != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {rc}; output:\n{text[-6000:]}")
    return text


@dataclass
class PrefectServer:
    """A running `prefect server start` subprocess."""

    api_url: str
    home: Path
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        """The tail of the server's captured stdout+stderr (for failure messages)."""
        return _tail(self.log)

    def post(self, path: str, json: Any = None) -> Any:
        """POST to the API; returns the decoded JSON (None for an empty body). Raises
        ``AssertionError`` with the response and the server output on an HTTP error."""
        return self._request("POST", path, json)

    def get(self, path: str) -> Any:
        """GET from the API; see :meth:`post`."""
        return self._request("GET", path, None)

    def patch(self, path: str, json: Any) -> Any:
        """PATCH on the API; see :meth:`post`."""
        return self._request("PATCH", path, json)

    def _request(self, method: str, path: str, json: Any) -> Any:
        r = httpx.request(method, self.api_url + path, json=json, timeout=30)
        if r.is_error:
            raise AssertionError(
                f"{method} {path} -> HTTP {r.status_code}: {r.text[:2000]}\nserver output:\n{self.output()}"
            )
        return r.json() if r.content else None


@contextmanager
def prefect_server(home: Path, startup_timeout_s: float = 90) -> Iterator[PrefectServer]:
    """Start `prefect server start --host 127.0.0.1 --port <free>` with PREFECT_HOME=``home``
    and its SQLite database in ``home``; yield once GET /api/health answers 200. Always stops
    the server on exit (SIGTERM, then SIGKILL). Raises ``AssertionError`` with the server's
    output if it exits or does not answer within ``startup_timeout_s``."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = home / "server.log"
    env = prefect_env(home)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PrefectServer(api_url=api_url, home=home, proc=proc, log=log)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"prefect server exited with {proc.returncode}:\n{server.output()}")
            try:
                if httpx.get(api_url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prefect server: no /api/health within {startup_timeout_s} s:\n{server.output()}")
            time.sleep(0.25)
        yield server
    finally:
        stop_process(proc)


def wait_for(predicate, timeout_s: float, interval_s: float = 0.5, what: str = "condition", details=None):
    """Poll ``predicate()`` until it returns a truthy value; return that value. Raises
    ``AssertionError`` naming ``what`` (plus ``details()`` if given) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{details()}" if details is not None else ""
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{extra}")
        time.sleep(interval_s)


# --- a deliberately small cron matcher, independent of Prefect's (croniter) --------------------


def _cron_field(text: str, lo: int, hi: int) -> set[int]:
    """Values of one cron field: ``*``, ``n``, ``a-b`` and comma lists of those (no steps,
    no names). Raises ``ValueError`` for anything else."""
    if text == "*":
        return set(range(lo, hi + 1))
    values: set[int] = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        if not a.isdigit() or (b and not b.isdigit()):
            raise ValueError(f"cron field {text!r}: only *, n, a-b and lists are supported here")
        values.update(range(int(a), int(b or a) + 1))
    return values


def cron_matches(cron: str, when: datetime, tz: str) -> bool:
    """True if the aware datetime ``when`` is an instant of the 5-field ``cron`` read in time
    zone ``tz`` (day-of-week 0 = Sunday, as in cron(8); both day fields must be ``*`` or one of
    them, as the project's schedules use)."""
    minute, hour, dom, month, dow = cron.split()
    t = when.astimezone(ZoneInfo(tz))
    return (
        t.second == 0
        and t.microsecond == 0
        and t.minute in _cron_field(minute, 0, 59)
        and t.hour in _cron_field(hour, 0, 23)
        and t.day in _cron_field(dom, 1, 31)
        and t.month in _cron_field(month, 1, 12)
        and (t.isoweekday() % 7) in {d % 7 for d in _cron_field(dow, 0, 7)}
    )


def next_cron_instant(cron: str, after: datetime, tz: str) -> datetime:
    """The first instant strictly after ``after`` matching ``cron`` in ``tz``, by brute force
    over whole minutes (at most 8 days ahead, enough for any weekly schedule)."""
    t = after.astimezone(ZoneInfo(tz)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(8 * 24 * 60):
        if cron_matches(cron, t, tz):
            return t
        t += timedelta(minutes=1)
    raise ValueError(f"cron {cron!r}: no instant within 8 days after {after.isoformat()}")
