"""Authentication and roles of the stakeholder service.

Routes are enumerated from ``app.routes`` (API routes, FastAPI's docs routes and mounts), so a
route added later is covered without editing this file. Tokens for the negative cases are made
here with PyJWT directly (expired, wrong key, ``alg: none``, forged role), independently of
``service.auth``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import pytest
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.routing import Mount, Route

from goldstress.settings import Settings
from service.app import PUBLIC_ROUTES, create_app, require_analyst
from service.auth import COOKIE_NAME, ServiceConfigError, hash_password, is_loopback, verify_password
from tests.service.conftest import API_KEYS, JWT_SECRET, RUN_IDS, USER_PASSWORDS, bearer, data_settings, merged

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"run_id": RUN_IDS[0], "other_id": RUN_IDS[1], "scenario": "mc_champion", "whatif_id": str(uuid.uuid4())}


def concrete(path: str) -> str:
    for name, value in PARAMS.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"test needs a value for a new path parameter in {path}"
    return path


def all_requests(app) -> list[tuple[str, str, str]]:
    """(method, template, concrete path) of every route and mount of the app."""
    out = []
    for route in app.routes:
        if isinstance(route, (APIRoute, Route)):
            for method in sorted(route.methods or ()):
                out.append((method, route.path, concrete(route.path)))
        elif isinstance(route, Mount):
            out.append(("GET", route.path, route.path + "/dashboard.js"))
        else:
            raise AssertionError(f"unknown route type {type(route).__name__}: add it to this test")
    return out


def test_every_non_public_route_refuses_requests_without_credentials(client):
    requests = all_requests(client.app)
    assert len(requests) >= 15
    public_seen = set()
    for method, template, path in requests:
        r = client.request(method, path, follow_redirects=False)
        if (method, template) in PUBLIC_ROUTES:
            public_seen.add((method, template))
            assert r.status_code != 401, (method, path)
        elif (method, template) in (("GET", "/"), ("HEAD", "/")):
            assert r.status_code == 303 and r.headers["location"] == "/login", (method, path, r.status_code)
        else:
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
    # the contract's public routes, and nothing more
    assert {(m, p) for m, p in PUBLIC_ROUTES if m != "HEAD"} == {
        ("GET", "/api/health"),
        ("POST", "/api/token"),
        ("POST", "/api/logout"),
        ("GET", "/login"),
        ("GET", "/metrics"),  # for Prometheus inside the cluster (docs/platform/deploy.md)
    }
    assert {("GET", "/api/health"), ("POST", "/api/token"), ("GET", "/login"), ("GET", "/metrics")} <= public_seen
    # docs and schema are behind auth outside dev mode; unknown paths too
    for path in ("/docs", "/openapi.json", "/no/such/route", "/static/plotly.min.js"):
        assert client.get(path).status_code == 401, path


def test_every_route_refuses_invalid_credentials(client):
    bad = [
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic YWxpY2U6YWxpY2UtcHctMQ=="},
        {"X-API-Key": "not-a-configured-key"},
        {"Cookie": f"{COOKIE_NAME}=garbage"},
    ]
    for method, template, path in all_requests(client.app):
        if (method, template) in PUBLIC_ROUTES:
            continue
        for headers in bad:
            r = client.request(method, path, headers=headers, follow_redirects=False)
            expected = 303 if template == "/" else 401
            assert r.status_code == expected, (method, path, headers, r.status_code)


def analyst_routes(app) -> set[tuple[str, str]]:
    out = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and any(d.call is require_analyst for d in route.dependant.dependencies):
            out.update((m, route.path) for m in route.methods)
    return out


def test_viewer_is_refused_on_analyst_routes(client, viewer, analyst):
    routes = analyst_routes(client.app)
    assert {("POST", "/api/whatif"), ("GET", "/api/whatif/{whatif_id}")} <= routes
    for method, template in routes:
        kwargs = (
            {
                "json": {
                    "token_preset": "GRAM",
                    "shock_frac": -0.1,
                    "shock_horizon_days": 1,
                    "n_paths": 10,
                    "horizon_days": 3,
                }
            }
            if method == "POST"
            else {}
        )
        r = client.request(method, concrete(template), headers=viewer, **kwargs)
        assert r.status_code == 403, (method, template, r.status_code)
        assert "analyst" in r.json()["detail"]
        r = client.request(method, concrete(template), headers=analyst, **kwargs)
        assert r.status_code not in (401, 403), (method, template, r.status_code)
    # a viewer API key likewise
    r = client.post("/api/whatif", json={}, headers={"X-API-Key": API_KEYS["viewer"]})
    assert r.status_code == 403


def test_viewer_reads_reports(client, viewer):
    for path in ("/api/runs", "/api/runs/latest", f"/api/runs/{RUN_IDS[0]}/summary", "/openapi.json"):
        assert client.get(path, headers=viewer).status_code == 200, path


def claims(sub: str = "alice", role: str = "analyst", exp_in: int = 600) -> dict:
    now = int(time.time())
    return {"sub": sub, "role": role, "iat": now, "exp": now + exp_in, "iss": "goldstress"}


def test_valid_token_made_independently_is_accepted(client):
    token = jwt.encode(claims(), JWT_SECRET, algorithm="HS256")
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_expired_token_is_refused(client):
    token = jwt.encode(claims(exp_in=-5), JWT_SECRET, algorithm="HS256")
    r = client.get("/api/runs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid or expired credentials"


def test_wrong_signature_none_alg_and_forged_tokens_are_refused(client):
    tokens = [
        jwt.encode(claims(), "another-secret-" + "y" * 40, algorithm="HS256"),
        jwt.encode(claims(), None, algorithm="none"),
        jwt.encode(claims(), JWT_SECRET, algorithm="HS512"),
        jwt.encode({k: v for k, v in claims().items() if k != "exp"}, JWT_SECRET, algorithm="HS256"),
        jwt.encode({**claims(), "iss": "someone-else"}, JWT_SECRET, algorithm="HS256"),
        jwt.encode(claims(sub="mallory"), JWT_SECRET, algorithm="HS256"),  # not a configured user
    ]
    good = jwt.encode(claims(), JWT_SECRET, algorithm="HS256")
    head, body, sig = good.split(".")
    forged_body = jwt.encode(claims(sub="victor", role="analyst"), "k" * 40, algorithm="HS256").split(".")[1]
    tokens.append(f"{head}.{forged_body}.{sig}")  # payload swapped under a valid signature
    for token in tokens:
        assert client.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 401, token


def test_role_comes_from_the_configuration_not_the_token(client):
    """A viewer's token claiming role analyst (correctly signed) still gets the viewer role."""
    token = jwt.encode(claims(sub="victor", role="analyst"), JWT_SECRET, algorithm="HS256")
    r = client.post("/api/whatif", json={}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_token_of_a_removed_user_is_refused(make_client, client, settings_factory):
    headers = bearer(client, "victor")
    alice_only = settings_factory(
        service={"users": {"alice": {"password_hash": hash_password(USER_PASSWORDS["alice"], 1000), "role": "analyst"}}}
    )
    assert make_client(alice_only).get("/api/runs", headers=headers).status_code == 401


def test_login_returns_token_and_session_cookie(client):
    r = client.post(
        "/api/token", data={"username": "alice", "password": USER_PASSWORDS["alice"], "grant_type": "password"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["role"] == "analyst" and body["expires_in"] == 3600
    decoded = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"])
    assert decoded["sub"] == "alice" and decoded["exp"] - decoded["iat"] == 3600
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}={body['access_token']};")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert r.headers["cache-control"] == "no-store"
    # the cookie alone authenticates, including the dashboard page
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, body["access_token"])
    assert client.get("/api/runs").status_code == 200
    assert client.get("/", follow_redirects=False).status_code in (200, 404)  # 404 only if the page file is absent
    r = client.post("/api/logout")
    assert r.status_code == 200 and f'{COOKIE_NAME}=""' in r.headers["set-cookie"]


def test_wrong_password_and_no_default_credentials(client):
    for username, password in (
        ("alice", "wrong"),
        ("victor", USER_PASSWORDS["alice"]),
        ("dev-analyst", "dev"),
        ("dev-viewer", "dev"),
        ("admin", "admin"),
        ("admin", "password"),
    ):
        r = client.post("/api/token", data={"username": username, "password": password})
        assert r.status_code == 401, (username, password)
        assert "access_token" not in r.text and "set-cookie" not in r.headers
    assert client.post("/api/token", data={"username": "", "password": ""}).status_code == 422
    assert client.post("/api/token", data={"username": "alice"}).status_code == 422
    assert (
        client.post(
            "/api/token", data={"username": "alice", "password": "x", "grant_type": "client_credentials"}
        ).status_code
        == 422
    )


def test_api_keys_are_configured_as_hashes(client, settings_factory):
    assert client.get("/api/runs", headers={"X-API-Key": API_KEYS["viewer"]}).status_code == 200
    r = client.get("/api/whatif/" + str(uuid.uuid4()), headers={"X-API-Key": API_KEYS["analyst"]})
    assert r.status_code == 404  # authenticated as analyst; the id is unknown
    # the sha256 (independently computed) of the key is what the settings hold; never the key
    s = settings_factory()
    assert hashlib.sha256(API_KEYS["viewer"].encode()).hexdigest() in s.service.api_keys
    assert all(API_KEYS[r] not in s.service.api_keys for r in API_KEYS)
    # upper-case hex is normalised; a raw key in place of a hash is refused at start
    upper = settings_factory(service={"api_keys": {hashlib.sha256(b"k-upper").hexdigest().upper(): "viewer"}})
    assert hashlib.sha256(b"k-upper").hexdigest() in upper.service.api_keys
    with pytest.raises(ValidationError, match="sha256"):
        settings_factory(service={"api_keys": {"my-raw-api-key": "viewer"}})
    # a configured hash used as the key itself does not authenticate
    digest = hashlib.sha256(API_KEYS["viewer"].encode()).hexdigest()
    assert client.get("/api/runs", headers={"X-API-Key": digest}).status_code == 401


def test_app_refuses_to_start_without_secrets(service_root):
    base = data_settings(service_root.root)
    with pytest.raises(ServiceConfigError, match="GOLDSTRESS_SERVICE_JWT_SECRET"):
        create_app(Settings(**base))
    with pytest.raises(ServiceConfigError, match="no credentials configured"):
        create_app(Settings(**merged(base, {"service": {"jwt_secret": JWT_SECRET}})))


def test_short_secret_is_refused_without_echoing_it(service_root):
    secret = "tooshort-but-secret-value"
    with pytest.raises(ValidationError) as err:
        Settings(**data_settings(service_root.root, service={"jwt_secret": secret}))
    assert "at least 32 characters" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(err.value)
    bad_hash = "pbkdf2_sha256$10$nothex$abc-secret"
    with pytest.raises(ValidationError) as err:
        Settings(
            **data_settings(service_root.root, service={"users": {"u": {"password_hash": bad_hash, "role": "viewer"}}})
        )
    assert bad_hash not in str(err.value)
    with pytest.raises(ValidationError):
        Settings(
            **data_settings(
                service_root.root,
                service={"users": {"u": {"password_hash": hash_password("pw", 1000), "role": "admin"}}},
            )
        )


def test_settings_never_show_secrets(settings_factory):
    s = settings_factory()
    text = repr(s) + str(s.model_dump())
    assert JWT_SECRET not in text
    assert all(u.password_hash.get_secret_value() not in text for u in s.service.users.values())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.5", "example.com", "goldstress.internal"])
def test_dev_mode_refused_on_a_non_loopback_host(service_root, host):
    assert not is_loopback(host)
    with pytest.raises(ServiceConfigError, match="not a loopback address"):
        create_app(Settings(**data_settings(service_root.root, service={"dev_mode": True, "host": host})))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_dev_mode_on_loopback(service_root, make_client, host):
    assert is_loopback(host)
    c = make_client(Settings(**data_settings(service_root.root, service={"dev_mode": True, "host": host})))
    assert c.get("/openapi.json").status_code == 200  # docs are public in dev mode only
    assert c.get("/api/runs").status_code == 401  # the data is not
    r = c.post("/api/token", data={"username": "dev-analyst", "password": "dev"})
    assert r.status_code == 200 and r.json()["role"] == "analyst"
    assert c.post("/api/token", data={"username": "dev-viewer", "password": "dev"}).json()["role"] == "viewer"
    assert c.post("/api/token", data={"username": "dev-viewer", "password": "wrong"}).status_code == 401


def test_dev_mode_secret_is_random_per_start(service_root, make_client):
    s = Settings(**data_settings(service_root.root, service={"dev_mode": True}))
    a, b = make_client(s), make_client(s)
    token = a.post("/api/token", data={"username": "dev-viewer", "password": "dev"}).json()["access_token"]
    a.cookies.clear()
    assert a.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert b.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_password_hash_format_against_hashlib():
    encoded = hash_password("correct horse", iterations=1234, salt=bytes(range(16)))
    scheme, iterations, salt_hex, digest_hex = encoded.split("$")
    assert (scheme, iterations, salt_hex) == ("pbkdf2_sha256", "1234", bytes(range(16)).hex())
    assert digest_hex == hashlib.pbkdf2_hmac("sha256", b"correct horse", bytes(range(16)), 1234).hex()
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsf", encoded)
    assert not verify_password("correct horse", encoded.replace("$1234$", "$1235$"))
    assert not verify_password("x", "not-a-hash")
    with pytest.raises(ValueError, match="password"):
        hash_password("")


def test_hashpw_cli_makes_a_hash_that_logs_in(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "service.hashpw", "--stdin", "--iterations", "1000"],
        input="s3cret-pw\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    encoded = out.stdout.strip()
    assert verify_password("s3cret-pw", encoded) and not verify_password("s3cret-pw ", encoded)
    assert "s3cret-pw" not in out.stdout + out.stderr
    keys = subprocess.run(
        [sys.executable, "-m", "service.hashpw", "--api-key"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    lines = dict(line.split(": ", 1) for line in keys.stdout.strip().splitlines())
    assert hashlib.sha256(lines["api key"].encode()).hexdigest() == lines["sha256"]
