"""Screenshots for the README: the report's first screen and the dashboard of one published run.

Starts the service (``python -m service.serve``, development mode on loopback) over the report
folder given, and drives Debian's chromium with Playwright (never a downloaded browser). Usage,
after a run (``make run``) wrote its report under ``REPORT_URL``:

    python docs/img/capture.py --reports <report_url folder> [--out docs/img]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=Path, required=True, help="the report folder (GOLDSTRESS_REPORT_URL) of a run")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    runs = sorted(p for p in args.reports.iterdir() if (p / "published.json").exists())
    if not runs:
        raise SystemExit(f"no published run under {args.reports}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_")}
    env.update(
        PYTHONPATH=str(ROOT),
        GOLDSTRESS_REPORT_URL=str(args.reports),
        GOLDSTRESS_STORE_URL=tempfile.mkdtemp(),
        GOLDSTRESS_SERVICE_DEV_MODE="true",
    )
    cmd = [sys.executable, "-m", "service.serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        from playwright.sync_api import sync_playwright

        from service.auth import DEV_PASSWORD, DEV_USERS

        DEV_ANALYST = next(u for u, role in DEV_USERS.items() if role == "analyst")

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/login")
            page.fill("#username", DEV_ANALYST)
            page.fill("#password", DEV_PASSWORD)
            page.click("#login-submit")
            page.wait_for_url(base + "/")
            page.wait_for_selector('body[data-ready="true"]', timeout=120_000)
            page.screenshot(path=str(args.out / "dashboard.png"))
            report = browser.new_page(viewport={"width": 1400, "height": 1000})
            report.goto((runs[-1] / "report.html").as_uri())
            report.screenshot(path=str(args.out / "report-first-screen.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    print(f"wrote {args.out / 'dashboard.png'} and {args.out / 'report-first-screen.png'} of run {runs[-1].name}")


if __name__ == "__main__":
    main()
