"""Refusals of the service's hardening: files outside the report folder, non-finite numbers,
security headers on every answer, token lifetimes, login throttling behind proxies, and the
development-mode bind check. Each attack is made against a fresh app over the test client."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.service.conftest import (
    RUN_IDS,
    ServiceRoot,
    bearer,
    data_settings,
    running_server,
    service_env,
    service_settings,
)

SECRET_TEXT = b"root:$6$not-a-real-hash:19000:0:99999:7:::\n"


def _store_with_links(service_root: ServiceRoot, tmp_path: Path) -> tuple[Path, Path]:
    """A report folder with one real run and a secret file outside it; returns (reports, secret)."""
    reports = tmp_path / "reports"
    shutil.copytree(service_root.run_dir(RUN_IDS[0]), reports / RUN_IDS[0])
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_bytes(SECRET_TEXT)
    return reports, secret


def test_symlinks_leaving_the_report_folder_are_404(make_client, service_root: ServiceRoot, tmp_path):
    reports, secret = _store_with_links(service_root, tmp_path)
    run = reports / RUN_IDS[0]
    (run / "results" / "mc_champion.parquet").unlink()
    os.symlink(secret, run / "results" / "mc_champion.parquet")
    (run / "report.html").unlink()
    os.symlink(secret, run / "report.html")
    c = make_client(service_settings(data_settings(tmp_path)))
    h = bearer(c, "victor")
    for url in (f"/api/runs/{RUN_IDS[0]}/results/mc_champion.parquet", f"/api/runs/{RUN_IDS[0]}/report.html"):
        r = c.get(url, headers=h)
        assert r.status_code == 404, (url, r.status_code)
        assert SECRET_TEXT not in r.content
        assert str(tmp_path).encode() not in r.content and b"shadow" not in r.content
    # the links changed the run's files from those its publication marker lists: the run is no
    # longer listed at all (files inside the folder are served: test_symlink_inside_...)
    assert RUN_IDS[0] not in [x["run_id"] for x in c.get("/api/runs", headers=h).json()["runs"]]
    assert c.get(f"/api/runs/{RUN_IDS[0]}/results/hist_early.parquet", headers=h).status_code == 404


def test_run_folder_linked_from_outside_is_not_listed(make_client, service_root: ServiceRoot, tmp_path):
    reports, _ = _store_with_links(service_root, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(service_root.run_dir(RUN_IDS[1]), elsewhere)
    os.symlink(elsewhere, reports / RUN_IDS[1])
    c = make_client(service_settings(data_settings(tmp_path)))
    h = bearer(c, "victor")
    assert [x["run_id"] for x in c.get("/api/runs", headers=h).json()["runs"]] == [RUN_IDS[0]]
    for tail in ("summary", "fan", "report.html", "results/mc_champion.parquet"):
        assert c.get(f"/api/runs/{RUN_IDS[1]}/{tail}", headers=h).status_code == 404, tail


def test_symlink_inside_the_report_folder_is_served(make_client, service_root: ServiceRoot, tmp_path):
    reports, _ = _store_with_links(service_root, tmp_path)
    run = reports / RUN_IDS[0]
    shutil.move(run / "report.html", reports / "shared-report.html")
    os.symlink(reports / "shared-report.html", run / "report.html")
    c = make_client(service_settings(data_settings(tmp_path)))
    r = c.get(f"/api/runs/{RUN_IDS[0]}/report.html", headers=bearer(c, "victor"))
    assert r.status_code == 200
    assert r.content == (reports / "shared-report.html").read_bytes()


# ------------------------------------------------------------------ non-finite numbers
_WHATIF = '{"token_preset": "GRAM", "shock_frac": -0.1, "shock_horizon_days": 1, "n_paths": 10, "horizon_days": 5'


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (_WHATIF.replace('"shock_frac": -0.1', '"shock_frac": NaN') + "}", ["body", "shock_frac"]),
        (_WHATIF + ', "redemption_share_per_day": Infinity}', ["body", "redemption_share_per_day"]),
        (_WHATIF + ', "seed": -Infinity}', ["body", "seed"]),
        (_WHATIF.replace('"n_paths": 10', '"n_paths": NaN') + "}", ["body", "n_paths"]),
    ],
)
def test_non_finite_numbers_are_422_naming_the_field(client, analyst, raw, loc):
    r = client.post("/api/whatif", content=raw, headers={**analyst, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(e["loc"] == loc for e in r.json()["detail"]), r.text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_a_token_spec_are_422(client, analyst, value):
    from tests.service.test_api import FRICTIONLESS

    body = {
        "token_spec": {**FRICTIONLESS, "grams_per_token": "__X__"},
        "shock_frac": -0.1,
        "shock_horizon_days": 1,
        "n_paths": 10,
        "horizon_days": 5,
    }
    raw = json.dumps(body).replace('"__X__"', value)
    r = client.post("/api/whatif", content=raw, headers={**analyst, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(e["loc"][-1] == "grams_per_token" for e in r.json()["detail"]), r.text


# ------------------------------------------------------------------ security headers
def _assert_security_headers(r, csp_part: str = "default-src 'none'") -> None:
    assert r.headers["x-content-type-options"] == "nosniff", r.request.url
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert csp_part in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_security_headers_on_refusals(make_client):
    c = make_client()
    _assert_security_headers(c.get("/api/runs"))  # 401 without credentials
    assert c.get("/api/runs").status_code == 401
    _assert_security_headers(c.get("/api/runs", headers={"Authorization": "Bearer nope"}))
    r = c.post("/api/whatif", content=b"x" * 70_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    _assert_security_headers(r)
    c2 = make_client(service={"login_per_minute": 1})
    c2.post("/api/token", data={"username": "victor", "password": "wrong"})
    r = c2.post("/api/token", data={"username": "victor", "password": "wrong"})
    assert r.status_code == 429
    _assert_security_headers(r)
    r = c2.get("/", follow_redirects=False)
    assert r.status_code == 303
    _assert_security_headers(r)
    c3 = make_client()
    h = bearer(c3, "victor")
    r = c3.get("/api/runs/20990101T000000Z-ffffff/summary", headers=h)
    assert r.status_code == 404
    _assert_security_headers(r)
    r = c3.get("/no/such/route", headers=h)
    assert r.status_code == 404
    _assert_security_headers(r)


def test_dashboard_pages_have_a_strict_csp(client, viewer):
    for path in ("/login", "/", "/static/dashboard.js"):
        r = client.get(path, headers=viewer)
        assert r.status_code == 200, path
        _assert_security_headers(r)
        csp = r.headers["content-security-policy"]
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src and "*" not in script_src


def test_login_inline_script_is_allowed_by_hash(client):
    import base64
    import hashlib
    import re

    html = client.get("/login").text
    csp = client.get("/login").headers["content-security-policy"]
    for body in re.findall(r"<script>(.*?)</script>", html, re.S):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_report_html_is_sandboxed(client, viewer):
    r = client.get(f"/api/runs/{RUN_IDS[0]}/report.html", headers=viewer)
    assert r.status_code == 200
    _assert_security_headers(r)
    csp = r.headers["content-security-policy"]
    assert csp.startswith("sandbox")
    sandbox = csp.split(";")[0].split()
    assert "allow-same-origin" not in sandbox and "allow-forms" not in sandbox and "allow-scripts" not in sandbox
    assert "connect-src 'none'" in csp and "script-src 'none'" in csp
    assert b"<script" not in r.content  # the report needs none


# ------------------------------------------------------------------ JWT lifetime
def _forged(lifetime_s: int, iat_offset_s: int = 0) -> dict[str, str]:
    import jwt

    from tests.service.conftest import JWT_SECRET

    iat = int(time.time()) + iat_offset_s
    claims = {"sub": "alice", "role": "analyst", "iat": iat, "exp": iat + lifetime_s, "iss": "goldstress"}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"}


def test_long_lived_token_signed_with_the_secret_is_refused(client):
    ten_years = 10 * 365 * 86400
    r = client.get("/api/runs", headers=_forged(ten_years))
    assert r.status_code == 401 and r.json()["detail"] == "invalid or expired credentials"
    assert client.get("/api/runs", headers=_forged(12 * 3600 + 1)).status_code == 401
    assert client.get("/api/runs", headers=_forged(12 * 3600)).status_code == 200
    # issued "in the future" to stretch its life past the maximum
    assert client.get("/api/runs", headers=_forged(600, iat_offset_s=3600)).status_code == 401


def test_lifetime_maximum_is_a_setting(make_client):
    c = make_client(service={"token_ttl_s": 600, "token_max_lifetime_s": 900})
    assert c.get("/api/runs", headers=_forged(901)).status_code == 401
    assert c.get("/api/runs", headers=_forged(900)).status_code == 200


def test_issued_tokens_respect_the_maximum(client, settings_factory):
    import jwt
    from pydantic import ValidationError

    token = client.post("/api/token", data={"username": "victor", "password": "victor-pw-2"}).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 12 * 3600
    with pytest.raises(ValidationError, match="token_ttl_s"):
        settings_factory(service={"token_ttl_s": 86400, "token_max_lifetime_s": 3600})


# ------------------------------------------------------------------ proxies and login back-off
def _login(c, user: str, password: str, xff: str | None = None):
    headers = {"X-Forwarded-For": xff} if xff else {}
    return c.post("/api/token", data={"username": user, "password": password}, headers=headers)


def _client(settings_factory, peer: str, **service):
    from fastapi.testclient import TestClient

    from service.app import create_app

    return TestClient(create_app(settings_factory(service=service)), client=(peer, 40000))


def test_rotating_x_forwarded_for_does_not_multiply_guesses(settings_factory):
    with _client(settings_factory, "198.51.100.7", login_per_minute=3) as c:
        codes = [_login(c, "victor", f"guess-{i}", xff=f"203.0.113.{i}").status_code for i in range(10)]
    assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}, codes


def test_x_forwarded_for_is_read_behind_a_trusted_proxy_only(settings_factory):
    service = {"login_per_minute": 2, "trusted_proxies": ["10.0.0.0/24"]}
    with _client(settings_factory, "10.0.0.5", **service) as c:
        # the proxy appends the real client on the right: spoofed entries on the left change nothing
        codes = [_login(c, "victor", "x", xff=f"1.2.3.{i}, 203.0.113.9").status_code for i in range(4)]
        assert codes == [401, 401, 429, 429], codes
        # another real client behind the same proxy has its own bucket
        assert _login(c, "victor", "x", xff="203.0.113.10").status_code == 401
    with _client(settings_factory, "198.51.100.7", **service) as c:  # not a trusted proxy
        codes = [_login(c, "victor", "x", xff=f"203.0.113.{i}").status_code for i in range(4)]
        assert codes == [401, 401, 429, 429], codes


def test_account_back_off_across_addresses(settings_factory):
    service = {
        "login_per_minute": 1000,
        "trusted_proxies": ["10.0.0.5"],
        "login_free_failures_per_account": 3,
        "login_backoff_base_s": 30.0,
    }
    with _client(settings_factory, "10.0.0.5", **service) as c:
        codes = [_login(c, "victor", "x", xff=f"203.0.113.{i}").status_code for i in range(3)]
        assert codes == [401, 401, 401]
        r = _login(c, "victor", "victor-pw-2", xff="203.0.113.200")  # even the right password waits
        assert r.status_code == 429 and "account" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 30
        assert _login(c, "alice", "alice-pw-1", xff="203.0.113.200").status_code == 200  # other accounts unaffected


def test_address_back_off_across_accounts(settings_factory):
    service = {"login_per_minute": 1000, "login_free_failures_per_address": 4, "login_backoff_base_s": 30.0}
    with _client(settings_factory, "198.51.100.7", **service) as c:
        codes = [_login(c, f"user{i}", "x").status_code for i in range(4)]
        assert codes == [401] * 4
        r = _login(c, "user9", "x")
        assert r.status_code == 429 and "address" in r.json()["detail"]
    with _client(settings_factory, "198.51.100.7", **service) as c:  # successful logins do not count
        assert all(_login(c, "victor", "victor-pw-2").status_code == 200 for _ in range(8))


def test_failure_backoff_closed_form():
    from service.limits import FailureBackoff

    now = [0.0]
    b = FailureBackoff(free=2, base_s=1.0, max_s=8.0, forget_s=100.0, clock=lambda: now[0])
    assert b.acquire("k") == 0 and b.acquire("k") == 0  # two free attempts
    assert b.acquire("k") == pytest.approx(1.0)  # third: 1 s after the second
    now[0] = 1.0
    assert b.acquire("k") == 0
    assert b.acquire("k") == pytest.approx(2.0)  # then 2 s, 4 s, capped at 8 s
    now[0] = 3.0
    assert b.acquire("k") == 0
    assert b.acquire("k") == pytest.approx(4.0)
    now[0] = 7.0
    assert b.acquire("k") == 0
    assert b.acquire("k") == pytest.approx(8.0)
    now[0] = 15.0
    assert b.acquire("k") == 0
    assert b.acquire("k") == pytest.approx(8.0)  # capped
    now[0] = 123.0  # idle for forget_s: forgotten
    assert b.acquire("k") == 0 and b.acquire("k") == 0
    b.succeeded("k", reset=True)
    assert b.acquire("k") == 0


def test_trusted_proxies_setting_is_checked(settings_factory):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="trusted_proxies"):
        settings_factory(service={"trusted_proxies": ["not-an-address"]})


# ------------------------------------------------------------------ development mode and the bound address
ROOT = Path(__file__).resolve().parents[2]


def _launcher_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "GOLDSTRESS_STORE_URL": str(tmp_path / "store"),
            "GOLDSTRESS_REPORT_URL": str(tmp_path / "reports"),
            **extra,
        }
    )
    return env


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_launcher_refuses_dev_mode_on_a_public_address(tmp_path, host):
    import subprocess
    import sys

    env = _launcher_env(tmp_path, GOLDSTRESS_SERVICE_DEV_MODE="true", GOLDSTRESS_SERVICE_HOST="127.0.0.1")
    p = subprocess.run(
        [sys.executable, "-m", "service.serve", "--host", host, "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a loopback address" in lines[0] and "Traceback" not in p.stderr, p.stderr


def test_launcher_refuses_missing_secrets_in_one_line(tmp_path):
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "service.serve", "--host", "127.0.0.1", "--port", "1"],
        cwd=ROOT,
        env=_launcher_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "GOLDSTRESS_SERVICE_JWT_SECRET" in p.stderr and "Traceback" not in p.stderr
    # nothing configured at all: the one line says how to create a user or start development mode
    assert "no users configured" in p.stderr and "python -m service.hashpw" in p.stderr
    assert "GOLDSTRESS_SERVICE_DEV_MODE=true" in p.stderr and p.stdout == ""


def test_launcher_with_a_secret_but_no_user_names_the_missing_credentials(tmp_path):
    import subprocess
    import sys

    env = _launcher_env(tmp_path, GOLDSTRESS_SERVICE_JWT_SECRET="s" * 40)
    p = subprocess.run(
        [sys.executable, "-m", "service.serve", "--host", "127.0.0.1", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "no credentials configured" in p.stderr and "Traceback" not in p.stderr


def test_launcher_prints_its_url_and_logs_each_request(tmp_path):
    """Development mode on a free loopback port: the first line of the output is the URL to
    open, and a request appears in the access log with its method, path and status."""

    import httpx

    port = free_port()
    log_path = tmp_path / "server.log"
    env = _launcher_env(tmp_path, GOLDSTRESS_SERVICE_DEV_MODE="true")
    with running_server(["-m", "service.serve", "--host", "127.0.0.1", "--port", str(port)], port, env, log_path):
        assert httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=10).status_code == 401
        deadline = time.monotonic() + 10
        while '"GET /api/runs HTTP/1.1" 401' not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = log_path.read_text()
    assert log.splitlines()[0].startswith(f"goldstress service: open http://127.0.0.1:{port}/"), log
    assert "dev-viewer" in log.splitlines()[0]
    assert '"GET /api/health HTTP/1.1" 200' in log and '"GET /api/runs HTTP/1.1" 401' in log, log
    assert "Traceback" not in log


def test_dev_mode_answers_only_on_loopback_sockets(service_root: ServiceRoot):
    """A server bound to all interfaces despite the settings (bare ``uvicorn --host 0.0.0.0``):
    requests that arrive on a public local address are refused before the dev passwords."""
    from fastapi.testclient import TestClient

    from goldstress.settings import Settings
    from service.app import create_app

    app = create_app(Settings(**data_settings(service_root.root, service={"dev_mode": True, "host": "127.0.0.1"})))
    form = {"username": "dev-analyst", "password": "dev"}
    with TestClient(app, base_url="http://192.0.2.10:8000") as c:  # scope["server"] is the local address
        r = c.post("/api/token", data=form)
        assert r.status_code == 403 and "loopback" in r.json()["detail"]
        assert c.get("/openapi.json").status_code == 403
        assert r.headers["x-content-type-options"] == "nosniff"
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.post("/api/token", data=form).status_code == 200


def test_launcher_turns_off_uvicorn_proxy_headers():
    from service.serve import uvicorn_options

    assert uvicorn_options("127.0.0.1", 8000, "info")["proxy_headers"] is False


# ------------------------------------------------------------------ header size and request time (real server)
@pytest.fixture(scope="module")
def launched(service_root: ServiceRoot, tmp_path_factory):
    """The launcher (``python -m service.serve``) on a free loopback port with small limits:
    4 KB of headers, 1.5 s for a request head, 2 s for a body."""

    port = free_port()
    env = service_env(
        service_root,
        GOLDSTRESS_SERVICE_MAX_HEADER_BYTES="4096",
        GOLDSTRESS_SERVICE_HEADER_TIMEOUT_S="1.5",
        GOLDSTRESS_SERVICE_BODY_TIMEOUT_S="2",
    )
    log_path = tmp_path_factory.mktemp("launcher") / "server.log"
    args = ["-m", "service.serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with running_server(args, port, env, log_path):
        yield port


def _read_until_closed(sock, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    sock.settimeout(limit_s)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def test_oversized_headers_are_refused_before_authentication(launched):
    import socket

    with socket.create_connection(("127.0.0.1", launched)) as s:
        s.sendall(b"GET /api/runs HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 64_000 + b"\r\n\r\n")
        data, _ = _read_until_closed(s, 10)
    assert data.startswith(b"HTTP/1.1 4"), data[:200]
    import httpx

    assert httpx.get(f"http://127.0.0.1:{launched}/api/health", timeout=5).status_code == 200


def test_unfinished_headers_are_cut_off(launched):
    import socket

    with socket.create_connection(("127.0.0.1", launched)) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 8:  # dribble one header byte every 0.2 s
            try:
                s.sendall(b"X-A: b\r\n")
                s.settimeout(0.2)
                if s.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        elapsed = time.monotonic() - start
    assert closed and 1.0 <= elapsed < 5.0, elapsed


def test_unfinished_body_is_408(launched):
    import socket

    with socket.create_connection(("127.0.0.1", launched)) as s:
        s.sendall(
            b"POST /api/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\nusername=a"
        )
        data, elapsed = _read_until_closed(s, 10)
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert 1.5 <= elapsed < 6, elapsed
    assert b"nosniff" in data.lower()


def test_keep_alive_requests_still_work(launched):
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{launched}", timeout=5) as c:
        r = c.post("/api/token", data={"username": "victor", "password": "victor-pw-2"})
        assert r.status_code == 200
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for _ in range(3):
            assert c.get("/api/runs", headers=h).status_code == 200
            time.sleep(0.6)  # under the keep-alive limit, over a third of the head deadline


def test_an_unhandled_error_is_a_500_with_the_security_headers(settings_factory):
    """A route that raises: the answer is a 500 with a generic body and every security header
    (the server's own error answer would carry none), and the error still reaches the server."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    app = create_app(settings_factory())

    def boom() -> None:
        raise RuntimeError("secret detail of an internal failure")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom", headers=bearer(c, "victor"))
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    assert b"secret detail" not in r.content
    _assert_security_headers(r)
    with TestClient(app) as c:
        h = bearer(c, "victor")
        with pytest.raises(RuntimeError, match="secret detail"):
            c.get("/boom", headers=h)
