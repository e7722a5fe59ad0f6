"""Load test of the stakeholder service (not a test): N concurrent readers on the read API.

Starts the service (or targets one with ``--url``), runs ``--readers`` concurrent readers and
appends per-endpoint throughput, latency percentiles, errors and CPU to ``bench/LOAD.md``.
Generators, target and usage: docs/platform/load-test.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LOAD_MD = ROOT / "bench" / "LOAD.md"
TARGET_P99_MS = 250.0
TARGET_READERS = 200
REQUEST_TIMEOUT_S = 10.0


# ------------------------------------------------------------------------------------------- setup


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound then released: a small race, fine for a bench)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_loopback(url: str) -> tuple[str, int]:
    """(host, port) of an http:// URL on a loopback address; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"--url: only http:// on loopback is supported, got {url!r}")
    host = parts.hostname or ""
    try:
        loop = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    if not loop:
        raise ValueError(
            f"--url: {host!r} is not a loopback address (this load test only targets 127.0.0.1/::1/localhost)"
        )
    return host, parts.port or 80


@dataclass
class Server:
    """A uvicorn subprocess started by this script."""

    proc: subprocess.Popen
    url: str
    cmd: list[str]
    log: Path
    user: str
    password: str

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by the server process and its live children
        (uvicorn workers), from Linux /proc."""
        pid = self.proc.pid
        total = proc_cpu_s(pid)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    total += proc_cpu_s(int(stat.parent.name))
        return total

    def stop(self) -> None:
        """Terminate (then kill) the server; wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` from /proc/<pid>/stat (fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals) - idle) / ticks, sum(vals) / ticks


def start_server(
    report_url: str | None, workers: int, access_log: bool, extra_env: dict[str, str] | None = None
) -> Server:
    """Start ``uvicorn --factory service.app:create_app`` on a free loopback port and wait (up to
    60 s) for ``/api/health``. Production auth, not dev mode (dev mode draws a JWT secret per
    process, so tokens would not cross uvicorn workers): a random JWT secret and one viewer
    ``bench`` with a random password, both for this run only. RuntimeError with the server log
    if it does not start."""
    import secrets

    import httpx

    sys.path.insert(0, str(ROOT))
    from service.auth import hash_password

    port = free_port()
    password = secrets.token_urlsafe(16)
    env = dict(os.environ)
    env.update(
        {
            "GOLDSTRESS_SERVICE_DEV_MODE": "false",
            "GOLDSTRESS_SERVICE_HOST": "127.0.0.1",
            "GOLDSTRESS_SERVICE_JWT_SECRET": secrets.token_urlsafe(48),
            "GOLDSTRESS_SERVICE_USERS": json.dumps(
                {"bench": {"password_hash": hash_password(password), "role": "viewer"}}
            ),
            "GOLDSTRESS_SERVICE_RATE_LIMIT_PER_MINUTE": "1000000",
            "PYTHONPATH": str(ROOT),
        }
    )
    if report_url:
        env["GOLDSTRESS_REPORT_URL"] = report_url
    env.update(extra_env or {})
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "service.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    if not access_log:
        cmd.append("--no-access-log")
    log = Path(tempfile.mkstemp(prefix="goldstress-load-server-", suffix=".log")[1])
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return Server(proc, url, cmd, log, "bench", password)
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not answer /api/health within 60 s:\n{log.read_text()[-3000:]}")


def login(url: str, user: str | None, password: str | None, api_key: str | None) -> dict[str, str]:
    """Auth headers for the readers: a bearer JWT from POST /api/token, or an X-API-Key."""
    import httpx

    if api_key:
        return {"X-API-Key": api_key}
    r = httpx.post(url + "/api/token", data={"username": user, "password": password}, timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"login as {user!r} failed: {r.status_code} {r.text[:300]}")
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# ------------------------------------------------------------------------------------- generators


@dataclass
class Samples:
    """Per-endpoint latencies (seconds) of successful requests and error counts by kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, dict[str, int]] = field(default_factory=dict)
    starts: list[tuple[float, float]] = field(default_factory=list)
    all_requests: int = 0  # warm-up included (to divide the server's CPU time by)

    def ok(self, ep: str, seconds: float, t0: float = 0.0) -> None:
        self.latencies.setdefault(ep, []).append(seconds)
        self.starts.append((t0, seconds))

    def timeline(self, t_record: float) -> str:
        """Requests and max latency per 1-second window of start times (to see periodic stalls)."""
        if not self.starts:
            return ""
        a = np.asarray(self.starts)
        sec = np.floor(a[:, 0] - t_record).astype(int)
        out = []
        for k in np.unique(sec):
            lat = a[sec == k, 1] * 1e3
            out.append(f"  {k:3d}s: {lat.size:6d} req, p50 {np.percentile(lat, 50):7.1f} ms, max {lat.max():7.1f} ms")
        return "\n".join(out)

    def error(self, ep: str, kind: str) -> None:
        e = self.errors.setdefault(ep, {})
        e[kind] = e.get(kind, 0) + 1


class RawConnection:
    """One HTTP/1.1 keep-alive connection over asyncio streams (GET only): the status line,
    headers, then a Content-Length or chunked body (RFC 9112). Reconnects after ``Connection:
    close`` or an error."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(
            f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", "Accept": "application/json", **headers}.items()
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode("latin-1"))
        await self.writer.drain()
        raw_head = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            body = await self.reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = await self.reader.read()
            await self.close()
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        return status, body


def check_body(ep: str, body: bytes, run_id: str) -> bool:
    """Spot check that a 200 body is the expected JSON (runs list / the run's summary)."""
    doc = json.loads(body)
    return ("runs" in doc and isinstance(doc["runs"], list)) if ep == "runs" else doc.get("run_id") == run_id


async def reader_loop(
    i: int,
    gen: str,
    host: str,
    port: int,
    headers: dict[str, str],
    paths: dict[str, str],
    run_id: str,
    t_end: float,
    t_record: float,
    think_s: float,
    budget: list[int],
    samples: Samples,
) -> None:
    """One reader: alternate the endpoints until ``t_end`` or the shared request budget is spent."""
    if gen == "httpx":
        import httpx

        client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            headers=headers,
            timeout=REQUEST_TIMEOUT_S,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

        async def get(path: str) -> tuple[int, bytes]:
            r = await client.get(path)
            return r.status_code, r.content

        async def close() -> None:
            await client.aclose()
    else:
        conn = RawConnection(host, port, headers)
        get, close = conn.get, conn.close
    eps = list(paths)
    k = i % len(eps)
    n_checked = 0
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < t_end and budget[0] > 0:
            budget[0] -= 1
            ep = eps[k]
            k = (k + 1) % len(eps)
            t0 = loop.time()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):  # no extra task per request (cheaper than wait_for)
                    status, body = await get(paths[ep])
                dt = loop.time() - t0
                if status != 200:
                    kind = f"http_{status}"
                elif n_checked < 2 and not check_body(ep, body, run_id):
                    kind = "bad_body"
                else:
                    kind = None
                n_checked += 1
            except TimeoutError:
                kind, dt = "timeout", loop.time() - t0
                if gen == "raw":
                    await conn.close()
            except Exception as exc:  # noqa: BLE001 - connection resets, bad responses: every failure is an error sample
                kind, dt = type(exc).__name__, loop.time() - t0
                if gen == "raw":
                    await conn.close()
            samples.all_requests += 1
            if t0 >= t_record:
                if kind is None:
                    samples.ok(ep, dt, t0)
                else:
                    samples.error(ep, kind)
            if think_s > 0:
                await asyncio.sleep(think_s)
    finally:
        await close()


async def run_python_generator(
    gen: str,
    url: str,
    headers: dict[str, str],
    paths: dict[str, str],
    run_id: str,
    readers: int,
    duration_s: float,
    warmup_s: float,
    max_requests: int,
    think_s: float,
) -> tuple[Samples, float]:
    """All readers in this process; returns the samples and the recorded window in seconds."""
    host, port = check_loopback(url)
    samples = Samples()
    loop = asyncio.get_running_loop()
    t_start = loop.time()
    t_record = t_start + warmup_s
    t_end = t_record + duration_s
    budget = [max_requests if max_requests > 0 else 1 << 62]
    tasks = [
        asyncio.create_task(
            reader_loop(i, gen, host, port, headers, paths, run_id, t_end, t_record, think_s, budget, samples)
        )
        for i in range(readers)
    ]
    done, pending = await asyncio.wait(tasks, timeout=warmup_s + duration_s + REQUEST_TIMEOUT_S + 20)
    for t in pending:  # hard stop
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    window = min(loop.time(), t_end) - t_record
    samples.t_record = t_record
    return samples, window


WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def run_wrk(
    url: str, headers: dict[str, str], paths: dict[str, str], readers: int, duration_s: float
) -> tuple[dict[str, dict], float]:
    """One ``wrk`` process per endpoint, ``readers // len(paths)`` connections each, 1 thread each,
    all at once. wrk has no think time nor warm-up; non-2xx responses count as errors."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk not found: apt-get install -y wrk, or use --generator raw")
    check_loopback(url)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA)
        script = f.name
    hdr_args = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    per = max(1, readers // len(paths))
    procs = {
        ep: subprocess.Popen(
            [
                wrk,
                "-t1",
                f"-c{per}",
                f"-d{int(round(duration_s))}s",
                f"--timeout={int(REQUEST_TIMEOUT_S)}s",
                "-s",
                script,
                *hdr_args,
                url + path,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for ep, path in paths.items()
    }
    out = {}
    try:
        for ep, p in procs.items():
            text, _ = p.communicate(timeout=duration_s + 60)
            line = next((ln for ln in text.splitlines() if ln.startswith("WRKJSON ")), None)
            if line is None:
                raise RuntimeError(f"wrk output without a summary:\n{text}")
            out[ep] = json.loads(line[len("WRKJSON ") :])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        os.unlink(script)
    return out, duration_s


# ----------------------------------------------------------------------------------------- report


def summarise_python(samples: Samples, window_s: float, paths: dict[str, str]) -> list[dict]:
    """Rows per endpoint and overall: requests, req/s, p50/p95/p99/max (ms), errors."""
    rows = []
    all_lat: list[float] = []
    all_err: dict[str, int] = {}
    for ep, path in paths.items():
        lat = np.asarray(samples.latencies.get(ep, []))
        err = samples.errors.get(ep, {})
        all_lat.extend(lat.tolist())
        for k, v in err.items():
            all_err[k] = all_err.get(k, 0) + v
        rows.append(_row(f"GET {path}", lat, err, window_s))
    rows.append(_row("all", np.asarray(all_lat), all_err, window_s))
    return rows


def _row(name: str, lat_s: np.ndarray, err: dict[str, int], window_s: float) -> dict:
    n_err = sum(err.values())
    n = lat_s.size + n_err
    q = np.percentile(lat_s * 1e3, [50, 95, 99]) if lat_s.size else [float("nan")] * 3
    return {
        "endpoint": name,
        "requests": n,
        "rps": n / window_s if window_s > 0 else float("nan"),
        "p50_ms": q[0],
        "p95_ms": q[1],
        "p99_ms": q[2],
        "max_ms": float(lat_s.max() * 1e3) if lat_s.size else float("nan"),
        "errors": n_err,
        "error_kinds": err,
    }


def summarise_wrk(res: dict[str, dict], paths: dict[str, str]) -> list[dict]:
    """Rows per endpoint from wrk; the "all" row sums requests/errors and takes the worst
    per-endpoint percentile (wrk's histograms cannot be merged from its summary)."""
    rows = []
    for ep, path in paths.items():
        r = res[ep]
        err = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
        rows.append(
            {
                "endpoint": f"GET {path}",
                "requests": r["requests"],
                "rps": r["requests"] / (r["duration_us"] / 1e6),
                "p50_ms": r["p50_us"] / 1e3,
                "p95_ms": r["p95_us"] / 1e3,
                "p99_ms": r["p99_us"] / 1e3,
                "max_ms": r["max_us"] / 1e3,
                "errors": sum(err.values()),
                "error_kinds": err,
            }
        )
    rows.append(
        {
            "endpoint": "all (percentiles: worst endpoint)",
            "requests": sum(r["requests"] for r in rows),
            "rps": sum(r["rps"] for r in rows),
            "p50_ms": max(r["p50_ms"] for r in rows),
            "p95_ms": max(r["p95_ms"] for r in rows),
            "p99_ms": max(r["p99_ms"] for r in rows),
            "max_ms": max(r["max_ms"] for r in rows),
            "errors": sum(r["errors"] for r in rows),
            "error_kinds": {k: v for r in rows for k, v in r["error_kinds"].items()},
        }
    )
    return rows


def git_commit() -> str:
    """Short commit id plus ``-dirty`` when the work tree has changes ("unknown" without git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def service_fingerprint() -> str:
    """First 12 hex digits of the SHA-256 over ``service/*.py`` (the code under test, which a
    dirty work tree's commit id does not pin down)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((ROOT / "service").glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def machine() -> str:
    """CPU model, logical CPUs, memory, OS and Python version."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f", {kb / 2**20:.1f} GiB RAM"
    return f"{model}, {os.cpu_count()} logical CPUs{mem}; {platform.system()} {platform.release()}; Python {platform.python_version()}"


def target_met(args: argparse.Namespace, overall: dict) -> bool:
    """200+ readers, p99 under 250 ms, no errors."""
    return overall["errors"] == 0 and overall["p99_ms"] < TARGET_P99_MS and args.readers >= TARGET_READERS


def markdown(
    args: argparse.Namespace,
    rows: list[dict],
    server_cmd: str,
    cpu: dict[str, float],
    window_s: float,
    note: str,
    n_all: int,
) -> str:
    """The dated section appended to bench/LOAD.md."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    overall = rows[-1]
    met = target_met(args, overall)
    if met:
        verdict = (
            f"**met** (p99 {overall['p99_ms']:.0f} ms < {TARGET_P99_MS:.0f} ms, no errors, {args.readers} readers)"
        )
    else:
        why = []
        if overall["p99_ms"] >= TARGET_P99_MS or not np.isfinite(overall["p99_ms"]):
            why.append(
                f"p99 {overall['p99_ms']:.0f} ms is {overall['p99_ms'] - TARGET_P99_MS:.0f} ms ({overall['p99_ms'] / TARGET_P99_MS:.1f}x) over {TARGET_P99_MS:.0f} ms"
            )
        if overall["errors"]:
            why.append(f"{overall['errors']} errors {overall['error_kinds']}")
        if args.readers < TARGET_READERS:
            why.append(f"only {args.readers} readers (target {TARGET_READERS})")
        verdict = "**missed**: " + "; ".join(why)
    lines = [
        f"## {now} — commit {git_commit()}, service code sha256 {service_fingerprint()}",
        "",
        f"- machine: {machine()}",
        f"- server: {server_cmd}",
        f"- generator: {args.generator}, {args.readers} concurrent readers (closed loop, think time {args.think_ms:g} ms), "
        f"{window_s:.1f} s recorded after {args.warmup if args.generator != 'wrk' else 0:g} s warm-up"
        + (f", request budget {args.max_requests}" if args.max_requests else "")
        + "; endpoints alternated per reader"
        + (" (wrk: one process per endpoint, half the readers each)" if args.generator == "wrk" else ""),
        f"- CPU over the run ({cpu['wall_s']:.1f} s wall x {cpu['cores']} cores = {cpu['cores'] * cpu['wall_s']:.0f} core-s available): "
        + (
            f"server {cpu['server_s']:.1f} core-s ({100 * cpu['server_s'] / cpu['wall_s']:.0f}% of one core), "
            if cpu["server_measured"]
            else "server not measured (external: counted in 'everything else'), "
        )
        + f"generator {cpu['gen_s']:.1f} core-s ({100 * cpu['gen_s'] / cpu['wall_s']:.0f}% of one core), "
        f"everything else on the machine {cpu['other_s']:.1f} core-s ({100 * cpu['other_s'] / cpu['wall_s']:.0f}% of one core)",
    ]
    if cpu["server_measured"] and n_all and cpu["server_s"] > 0:
        per_req_ms = 1e3 * cpu["server_s"] / n_all
        cap = 1e3 / per_req_ms
        lines.append(
            f"- server CPU per request {per_req_ms:.2f} ms ({n_all} requests incl. warm-up): a whole core for the server would serve about "
            f"{cap:,.0f} req/s, a mean latency of about {1e3 * args.readers / cap:.0f} ms for {args.readers} closed-loop readers (Little's law)"
        )
    lines += [
        "",
        "| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        err = str(r["errors"]) + (f" {r['error_kinds']}" if r["errors"] else "")
        lines.append(
            f"| {r['endpoint']} | {r['requests']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {err} |"
        )
    lines += ["", f"Target (200 readers, p99 < {TARGET_P99_MS:.0f} ms, no errors): {verdict}."]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n\n"


# ------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="target a running server (loopback only); default: start one")
    p.add_argument(
        "--report-url", help="runs folder for the server this script starts (default: settings.storage.report_url)"
    )
    p.add_argument("--readers", type=int, default=TARGET_READERS)
    p.add_argument("--duration", type=float, default=20.0, help="seconds recorded (after the warm-up)")
    p.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before recording starts (python generators)"
    )
    p.add_argument(
        "--max-requests", type=int, default=0, help="stop after this many requests in all (0: duration only)"
    )
    p.add_argument("--think-ms", type=float, default=0.0, help="pause between a reader's requests (python generators)")
    p.add_argument("--generator", choices=("raw", "httpx", "wrk"), default="raw")
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers for the server this script starts")
    p.add_argument(
        "--access-log",
        action="store_true",
        help="keep uvicorn's access log on (off by default: it costs CPU per request)",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server this script starts (repeatable), e.g. GOLDSTRESS_SERVICE_INDEX_TTL_S=60",
    )
    p.add_argument(
        "--user", default="dev-viewer", help="login for --url (a server this script starts gets its own user)"
    )
    p.add_argument("--password", default="dev", help="password for --url")
    p.add_argument("--api-key", default=None, help="authenticate with X-API-Key instead of a login")
    p.add_argument(
        "--timeline",
        action="store_true",
        help="add requests and max latency per second to the record (python generators)",
    )
    p.add_argument("--no-record", action="store_true", help="print only; do not append to bench/LOAD.md")
    p.add_argument("--note", default="", help="free text appended to the LOAD.md section")
    args = p.parse_args(argv)
    if args.readers < 1 or args.duration <= 0 or args.warmup < 0 or args.max_requests < 0 or args.think_ms < 0:
        p.error("--readers >= 1, --duration > 0, --warmup >= 0, --max-requests >= 0, --think-ms >= 0")
    if args.generator == "wrk" and (args.think_ms or args.max_requests):
        p.error("--think-ms and --max-requests need a python generator (raw/httpx)")

    server = None
    try:
        if args.url:
            check_loopback(args.url)
            url, server_cmd = args.url.rstrip("/"), f"external server at {args.url} (not started by this script)"
        else:
            extra = dict(kv.split("=", 1) for kv in args.server_env)
            server = start_server(args.report_url, args.workers, args.access_log, extra)
            url = server.url
            cmd = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(server.cmd))
            server_cmd = (
                f"`{cmd}` (started by this script; one viewer, rate limit raised"
                + "".join(f", `{k}={v}`" for k, v in extra.items())
                + ")"
            )
        user, password = (server.user, server.password) if server else (args.user, args.password)
        headers = login(url, user, password, args.api_key)
        import httpx

        latest = httpx.get(url + "/api/runs/latest", headers=headers, timeout=10)
        if latest.status_code != 200:
            raise RuntimeError(
                f"GET /api/runs/latest: {latest.status_code} {latest.text[:300]} (no runs? run the pipeline or pass --report-url)"
            )
        run_id = latest.json()["run_id"]
        paths = {"runs": "/api/runs", "summary": f"/api/runs/{run_id}/summary"}
        for path in paths.values():  # warm the caches once, sequentially
            httpx.get(url + path, headers=headers, timeout=10).raise_for_status()

        # CPU accounting: this process (python generators), finished children (wrk; the server
        # is still running so it is not in RUSAGE_CHILDREN), the server from /proc, the machine.
        def children_s() -> float:
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            return ru.ru_utime + ru.ru_stime

        busy0, _ = machine_cpu_s()
        srv0 = server.cpu_s() if server else 0.0
        gen0 = time.process_time() + children_s()
        wall0 = time.monotonic()
        if args.generator == "wrk":
            res, window = run_wrk(url, headers, paths, args.readers, args.duration)
            rows = summarise_wrk(res, paths)
            n_all = rows[-1]["requests"]
        else:
            samples, window = asyncio.run(
                run_python_generator(
                    args.generator,
                    url,
                    headers,
                    paths,
                    run_id,
                    args.readers,
                    args.duration,
                    args.warmup,
                    args.max_requests,
                    args.think_ms / 1e3,
                )
            )
            rows = summarise_python(samples, window, paths)
            n_all = samples.all_requests
            if args.timeline:
                args.note = (
                    (args.note + "\n\n" if args.note else "")
                    + "Requests and latency by second of the recorded window (request start):\n\n```\n"
                    + samples.timeline(samples.t_record)
                    + "\n```"
                )
        wall = time.monotonic() - wall0
        busy1, _ = machine_cpu_s()
        gen_s = time.process_time() + children_s() - gen0
        srv_s = (server.cpu_s() - srv0) if server else 0.0
        busy = busy1 - busy0
        cpu = {
            "cores": os.cpu_count() or 1,
            "wall_s": wall,
            "server_s": srv_s,
            "gen_s": gen_s,
            "other_s": max(0.0, busy - gen_s - srv_s),
            "server_measured": server is not None,
        }
        text = markdown(args, rows, server_cmd, cpu, window, args.note, n_all)
        print(text)
        if not args.no_record:
            if not LOAD_MD.exists():
                LOAD_MD.write_text(
                    "# Load tests of the stakeholder service\n\nAppended by `bench/load_service.py` (newest last). Not a test: numbers depend on the machine and on what else runs on it.\n\n"
                )
            with LOAD_MD.open("a") as f:
                f.write(text)
            print(f"appended to {LOAD_MD}")
        return 0 if target_met(args, rows[-1]) else 1
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
