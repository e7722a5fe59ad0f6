"""Memory of the service under a flood of oversized, unfinished request headers.

Starts the launcher (``python -m service.serve``) in development mode on a loopback port, opens
``--connections`` sockets that each try to send ``--mib`` MiB of header bytes without ever
finishing the request head, and reads the server's resident memory (``/proc/<pid>/status``
VmRSS) before, at its peak while the senders run, and after. Usage:

    python bench/header_flood.py [--connections 40] [--mib 8] [--record]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def sender(port: int, n_bytes: int, out: list[int]) -> None:
    """Send a request line then up to ``n_bytes`` of one header's value, never the blank line;
    appends how many bytes the server accepted before closing or refusing more."""
    sent = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /api/runs HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            chunk = b"a" * 65536
            while sent < n_bytes:
                s.sendall(chunk)
                sent += len(chunk)
    except OSError:
        pass
    out.append(sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--mib", type=float, default=8)
    ap.add_argument("--record", action="store_true", help="append the result to bench/HEADER_FLOOD.md")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_")}
    env.update(
        PYTHONPATH=str(ROOT),
        GOLDSTRESS_STORE_URL=f"{tmp}/store",
        GOLDSTRESS_REPORT_URL=f"{tmp}/reports",
        GOLDSTRESS_SERVICE_DEV_MODE="true",
    )
    cmd = [sys.executable, "-m", "service.serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        before = rss_mb(proc.pid)
        accepted: list[int] = []
        threads = [
            threading.Thread(target=sender, args=(port, int(args.mib * 2**20), accepted))
            for _ in range(args.connections)
        ]
        peak = before
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        time.sleep(1)
        after = rss_mb(proc.pid)
        healthy = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code
    finally:
        proc.terminate()
        proc.wait(10)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{args.connections} connections, each trying to send {args.mib:g} MiB of one header without ending the head; "
        f"load average {os.getloadavg()[0]:.1f}.",
        "",
        "| server RSS before (MB) | peak (MB) | after (MB) | bytes sent per connection before the server closed it (max) | seconds | /api/health after |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {before:.0f} | {peak:.0f} | {after:.0f} | {max(accepted) if accepted else 0:,} | {elapsed:.1f} | {healthy} |",
    ]
    print("\n".join(lines))
    if args.record:
        out = Path(__file__).with_name("HEADER_FLOOD.md")
        old = (
            out.read_text()
            if out.exists()
            else (
                "# Service: memory under a header flood\n\nProduced by `python bench/header_flood.py --record`. Newest first.\n"
            )
        )
        head, _, rest = old.partition("\n## ")
        out.write_text(head.rstrip() + "\n\n" + "\n".join(lines) + "\n" + ("\n## " + rest if rest else ""))


if __name__ == "__main__":
    main()
