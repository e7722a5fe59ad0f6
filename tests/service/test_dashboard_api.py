"""The dashboard's read routes over real HTTP: the app under uvicorn in a subprocess over the
session's run folders (tests/service/conftest.py), production auth with the test users.

``/api/whoami`` reports the role; ``/api/presets`` lists every spec file of
``settings.scenarios.token_specs`` (read here with tomllib); ``/api/runs/{id}/files`` lists the
files recorded in the run's ``published.json`` and each URL serves those bytes;
``/api/runs/{a}/compare/{b}`` returns the figures of both summaries (read here with json) and
their differences b - a and (b - a) / |a|, computed here. Unknown runs answer 404, requests
without credentials 401.
"""

from __future__ import annotations

import json
import math
import socket
import tomllib
from pathlib import Path

import httpx
import pytest

from service.dashboard_api import COMPARE_FIGURES
from tests.service.conftest import RUN_IDS, USER_PASSWORDS, USER_ROLES, ServiceRoot, running_server
from tests.service.test_dashboard_browser import server_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(service_root: ServiceRoot, tmp_path_factory) -> str:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("dash-api") / "server.log"
    args = ["-m", "uvicorn", "--factory", "service.app:create_app", "--host", "127.0.0.1", "--port", str(port)]
    with running_server([*args, "--log-level", "warning"], port, server_env(service_root.root), log_path) as url:
        yield url


@pytest.fixture(scope="module")
def tokens(base_url: str) -> dict[str, dict[str, str]]:
    """``role -> Authorization header`` from a real login of each test user."""
    out = {}
    for user, pw in USER_PASSWORDS.items():
        r = httpx.post(base_url + "/api/token", data={"username": user, "password": pw})
        assert r.status_code == 200, r.text
        out[USER_ROLES[user]] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return out


def get(base_url: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(base_url + path, headers=headers or {}, timeout=30)


NEW_ROUTES = (
    "/api/whoami",
    "/api/presets",
    f"/api/runs/{RUN_IDS[0]}/files",
    f"/api/runs/{RUN_IDS[0]}/compare/{RUN_IDS[1]}",
)


@pytest.mark.parametrize("path", NEW_ROUTES)
def test_new_routes_need_credentials(base_url: str, path: str):
    r = get(base_url, path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_whoami_reports_the_role(base_url: str, tokens, role: str):
    r = get(base_url, "/api/whoami", tokens[role])
    assert r.status_code == 200
    user = next(u for u, ro in USER_ROLES.items() if ro == role)
    assert r.json() == {"subject": user, "role": role}


def test_presets_are_every_configured_spec(base_url: str, tokens):
    from goldstress.settings import Settings

    specs = [tomllib.loads(Path(p).read_text()) for p in Settings().scenarios.token_specs]
    r = get(base_url, "/api/presets", tokens["viewer"])
    assert r.status_code == 200
    got = {p["symbol"]: (p["name"], p["kind"]) for p in r.json()["presets"]}
    assert got == {s["symbol"].upper(): (s["name"], s["kind"]) for s in specs}
    assert len(got) == 5


def test_files_are_the_published_files_and_download(base_url: str, tokens, service_root: ServiceRoot):
    run_id = RUN_IDS[-1]
    folder = service_root.run_dir(run_id)
    marker = json.loads((folder / "published.json").read_text())
    want = {
        f["name"]: f["size"] for f in marker["files"] if f["name"] == "summary.json" or f["name"].startswith("results/")
    }
    r = get(base_url, f"/api/runs/{run_id}/files", tokens["viewer"])
    assert r.status_code == 200
    files = r.json()["files"]
    assert {f["name"]: f["size"] for f in files} == want
    for f in files:
        body = get(base_url, f["url"], tokens["viewer"])
        assert body.status_code == 200, f
        assert body.content == (folder / f["name"]).read_bytes(), f["name"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/20990101T000000Z-ffffff/files",
        f"/api/runs/20990101T000000Z-ffffff/compare/{RUN_IDS[0]}",
        f"/api/runs/{RUN_IDS[0]}/compare/20990101T000000Z-ffffff",
        "/api/runs/whatif/files",
    ],
)
def test_unknown_run_is_404(base_url: str, tokens, path: str):
    r = get(base_url, path, tokens["analyst"])
    assert r.status_code == 404
    assert "unknown run" in r.json()["detail"]


def _f(v) -> float:
    return float(v)


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_compare_differences_equal_the_summaries(base_url: str, tokens, service_root: ServiceRoot, role: str):
    a, b = RUN_IDS[0], RUN_IDS[2]
    sa = json.loads((service_root.run_dir(a) / "summary.json").read_text())
    sb = json.loads((service_root.run_dir(b) / "summary.json").read_text())
    r = get(base_url, f"/api/runs/{a}/compare/{b}", tokens[role])
    assert r.status_code == 200
    cmp = r.json()
    assert cmp["a"]["run_id"] == a and cmp["b"]["run_id"] == b
    assert sorted(cmp["tokens"]) == sorted(sa["tokens"])
    assert cmp["only_in_a"] == [] and cmp["only_in_b"] == []
    n_diff = 0
    for sym, t in cmp["tokens"].items():
        va = (sa["tokens"][sym].get("verdict") or {}).get("verdict")
        vb = (sb["tokens"][sym].get("verdict") or {}).get("verdict")
        assert t["verdict"] == {"a": va, "b": vb, "changed": va != vb}
        ma, mb = sa["tokens"][sym]["scenarios"]["mc_champion"], sb["tokens"][sym]["scenarios"]["mc_champion"]
        rows = {row["key"]: row for row in t["figures"]}
        for key, _, _ in COMPARE_FIGURES:
            if key not in ma and key not in mb:
                assert key not in rows
                continue
            row = rows[key]
            assert (row["a"], row["b"]) == (ma.get(key), mb.get(key))
            va, vb = _f(ma[key]), _f(mb[key])
            if not (math.isfinite(va) and math.isfinite(vb)):
                assert row["abs_diff"] is None and row["rel_diff"] is None
                continue
            assert row["abs_diff"] == vb - va
            assert row["rel_diff"] == (None if va == 0 else (vb - va) / abs(va))
            n_diff += vb != va
        w = rows["worst_scenario_value"]
        assert (w["a"], w["b"]) == (
            sa["tokens"][sym]["worst_scenario"]["value"],
            sb["tokens"][sym]["worst_scenario"]["value"],
        )
    assert n_diff > 0, "runs with different seeds should differ somewhere (else the check is void)"


def test_compare_reports_a_changed_verdict():
    """Verdicts as the contract writes them: absent on one side, present and different."""
    from service.dashboard_api import compare_summaries

    def summ(run_id, verdict):
        t = {"scenarios": {"mc_champion": {"kind": "monte_carlo", "p_backing_below_1": 0.02}}}
        if verdict:
            t["verdict"] = {"verdict": verdict, "reason": "x", "checks": []}
        return {"run_id": run_id, "tokens": {"GRAM": t, "ONLY": {}}}

    out = compare_summaries(summ("a", None), summ("b", "fail"))
    assert out["tokens"]["GRAM"]["verdict"] == {"a": None, "b": "fail", "changed": True}
    out = compare_summaries(summ("a", "watch"), summ("b", "watch"))
    assert out["tokens"]["GRAM"]["verdict"]["changed"] is False
    row = next(r for r in out["tokens"]["GRAM"]["figures"] if r["key"] == "p_backing_below_1")
    assert (row["abs_diff"], row["rel_diff"]) == (0.0, 0.0)
