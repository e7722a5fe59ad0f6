"""The service API against the files the pipeline wrote (read here with json / pandas), the
what-if against closed forms, and the request limits.

Closed forms used:
- a frictionless fully gold-backed token (no fees, opex, flows or cash): holder value is
  ``grams * P_g``, so a gold move ``s`` costs holders exactly ``-s`` and the backing stays 1;
  its Monte Carlo holder loss at horizon ``h`` is the gold loss ``1 - P_h / P_0`` path by path;
- a CDP stablecoin (MakerDAO rule of models/token/cdp.py): the first tranche is liquidated exactly
  when ``CR_min * (1 + s) < L``, i.e. for a fall larger than ``1 - L / CR_min``;
- the token bucket: ``per_minute`` requests at once, then one every ``60 / per_minute`` s.
"""

from __future__ import annotations

import io
import json
import math
import tomllib
import uuid
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import free_port
from tests.service.conftest import API_KEYS, PENDING_RUN, RUN_IDS, ServiceRoot, bearer, data_settings, service_settings

ROOT = Path(__file__).resolve().parents[2]


def read_summary(service_root: ServiceRoot, run_id: str) -> dict:
    return json.loads((service_root.run_dir(run_id) / "summary.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ runs
def test_listing_matches_the_summary_files(client, viewer, service_root: ServiceRoot):
    r = client.get("/api/runs", headers=viewer)
    assert r.status_code == 200
    runs = r.json()["runs"]
    assert [x["run_id"] for x in runs] == list(reversed(RUN_IDS))  # newest first; pending and whatif/ not listed
    for item in runs:
        s = read_summary(service_root, item["run_id"])
        assert item["created_at"].startswith(f"{item['run_id'][0:4]}-{item['run_id'][4:6]}-{item['run_id'][6:8]}T")
        assert item["champion_version"] == s["champion"]["version"]
        assert item["tokens"] == list(s["tokens"])
        for symbol, t in s["tokens"].items():
            mc = t["scenarios"]["mc_champion"]
            head = item["headline"][symbol]
            for key in ("holder_value_var_99_10d_frac", "p_backing_below_1", "p_liquidation", "expected_bad_debt_usd"):
                assert head[key] == mc[key], (symbol, key)
            assert head["reserve_per_token_var_99_10d_frac"] == mc["reserve_per_token_var_99_10d_frac"]
            w = t["worst_scenario"]
            assert (head["worst_scenario"], head["worst_scenario_by"]) == (w["scenario"], "holder_max_drawdown_frac")
            assert (head["worst_scenario_value"], head["worst_scenario_window_days"]) == (w["value"], w["window_days"])
            assert head["worst_scenario_value"] == t["scenarios"][w["scenario"]]["holder_max_drawdown_frac"]
            tail = w["monte_carlo_tail"]
            assert head["monte_carlo_tail_figure"] == tail["figure"] == "holder_value_max_drawdown_es_99_frac"
            assert head["monte_carlo_tail_value"] == mc[tail["figure"]]
            assert head["monte_carlo_tail_horizon_days"] == tail["horizon_days"] == mc["horizon_days"]
    # the three runs have different seeds: the headline VaR differs between them
    assert len({x["headline"]["GRAM"]["holder_value_var_99_10d_frac"] for x in runs}) == 3


def test_listing_limit_and_bad_query(client, viewer):
    r = client.get("/api/runs", params={"limit": 1}, headers=viewer)
    assert [x["run_id"] for x in r.json()["runs"]] == [RUN_IDS[-1]]
    for bad in ("0", "-3", "abc", "100000"):
        assert client.get("/api/runs", params={"limit": bad}, headers=viewer).status_code == 422


def test_latest_is_the_newest_listing_item(client, viewer):
    latest = client.get("/api/runs/latest", headers=viewer)
    listed = client.get("/api/runs", headers=viewer).json()["runs"][0]
    assert latest.status_code == 200
    assert latest.json() == listed
    assert latest.json()["run_id"] == RUN_IDS[-1]


def test_latest_404_without_runs(make_client, tmp_path):
    c = make_client(service_settings(data_settings(tmp_path)))
    assert c.get("/api/runs/latest", headers=bearer(c, "victor")).status_code == 404
    assert c.get("/api/runs", headers=bearer(c, "victor")).json() == {"runs": []}


def test_summary_is_the_stored_file(client, viewer, service_root: ServiceRoot):
    for run_id in RUN_IDS:
        r = client.get(f"/api/runs/{run_id}/summary", headers=viewer)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert r.content == (service_root.run_dir(run_id) / "summary.json").read_bytes()


def test_fan_is_the_manifest_quantiles(client, viewer, service_root: ServiceRoot):
    run_id = RUN_IDS[0]
    manifest = json.loads((service_root.run_dir(run_id) / "manifest.json").read_text())
    mc = next(s for s in manifest["scenarios"] if s["scenario"]["kind"] == "monte_carlo")
    fan = client.get(f"/api/runs/{run_id}/fan", headers=viewer).json()
    assert fan["quantiles"] == mc["fan_quantiles"]
    assert fan["days"] == list(range(manifest["settings"]["mc_horizon_days"] + 1))
    assert fan["scenario"] == "mc_champion"
    # the median band is increasing in the quantile at every day (q0.05 <= q0.5 <= q0.95)
    q = fan["quantiles"]
    assert all(a <= b <= c for a, b, c in zip(q["q0.05"], q["q0.5"], q["q0.95"]))


def test_report_html_is_the_stored_file(client, viewer, service_root: ServiceRoot):
    run_id = RUN_IDS[1]
    r = client.get(f"/api/runs/{run_id}/report.html", headers=viewer)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.content == (service_root.run_dir(run_id) / "report.html").read_bytes()


@pytest.mark.parametrize("scenario", ["mc_champion", "shock_-30pct", "hist_early"])
def test_results_parquet_is_the_stored_table(client, viewer, service_root: ServiceRoot, scenario):
    run_id = RUN_IDS[2]
    r = client.get(f"/api/runs/{run_id}/results/{scenario}.parquet", headers=viewer)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    got = pd.read_parquet(io.BytesIO(r.content))
    want = pd.read_parquet(service_root.run_dir(run_id) / "results" / f"{scenario}.parquet")
    pd.testing.assert_frame_equal(got, want)
    assert set(got["scenario"]) == {scenario}


def test_timeseries_matches_the_summaries(client, viewer, service_root: ServiceRoot):
    for token, metric, scenario in (
        ("GRAM", "holder_value_var_99_10d_frac", "mc_champion"),
        ("GUSD", "p_liquidation", "mc_champion"),
        ("GUSD", "bad_debt_usd", "shock_-30pct"),
    ):
        r = client.get(
            "/api/metrics/timeseries", params={"token": token, "metric": metric, "scenario": scenario}, headers=viewer
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["token"], body["metric"], body["scenario"]) == (token, metric, scenario)
        assert [p["run_id"] for p in body["points"]] == list(RUN_IDS)  # oldest first
        for p in body["points"]:
            assert p["value"] == read_summary(service_root, p["run_id"])["tokens"][token]["scenarios"][scenario][metric]


def test_unknown_run_scenario_metric_give_404(client, viewer):
    missing = "20990101T000000Z-ffffff"
    for path in (
        f"/api/runs/{missing}/summary",
        f"/api/runs/{missing}/fan",
        f"/api/runs/{missing}/report.html",
        f"/api/runs/{missing}/results/mc_champion.parquet",
        f"/api/runs/{RUN_IDS[0]}/results/no_such_scenario.parquet",
        f"/api/runs/{PENDING_RUN}/summary",
        "/api/runs/whatif/summary",
    ):
        assert client.get(path, headers=viewer).status_code == 404, path
    for params in (
        {"token": "NOPE", "metric": "p_liquidation"},
        {"token": "GRAM", "metric": "no_such_metric"},
        {"token": "GRAM", "metric": "p_liquidation", "scenario": "no_such_scenario"},
    ):
        assert client.get("/api/metrics/timeseries", params=params, headers=viewer).status_code == 404, params


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/runs/..%2F..%2Fetc%2Fpasswd/summary",
        "/api/runs/%2e%2e/summary",
        "/api/runs/.%2e/fan",
        "/api/runs/%2E%2E%2F%2E%2E/report.html",
        "/api/runs/..%5C..%5Csecrets/summary",
        "/api/runs/%00/summary",
        f"/api/runs/{RUN_IDS[0]}/results/..%2Fsummary.json.parquet",
        f"/api/runs/{RUN_IDS[0]}/results/..%2F..%2F{RUN_IDS[1]}%2Fsummary.parquet",
        f"/api/runs/{RUN_IDS[0]}/results/%2e%2e.parquet",
        "/api/runs/../../etc/passwd",
        "/static/..%2F..%2Fapp.py",
        "/static/../app.py",
    ],
)
def test_path_traversal_is_refused(client, viewer, raw_path):
    r = client.get(raw_path, headers=viewer)
    assert 400 <= r.status_code < 500, (raw_path, r.status_code)
    assert b"JWT" not in r.content and b"def create_app" not in r.content


def test_timeseries_bad_query_is_422(client, viewer):
    for params in (
        {},
        {"token": "GRAM"},
        {"token": "../x", "metric": "p_liquidation"},
        {"token": "GRAM", "metric": "a" * 500},
    ):
        assert client.get("/api/metrics/timeseries", params=params, headers=viewer).status_code == 422, params


def test_new_run_folder_appears_without_restart(make_client, service_root: ServiceRoot, tmp_path):
    """The index is cached, but a new complete run is listed at the next request (the report
    folder's mtime changes), and a run whose completion marker lands later is listed after the
    TTL (its files alone, summary included, do not list it)."""
    import shutil

    reports = tmp_path / "reports"
    shutil.copytree(service_root.run_dir(RUN_IDS[0]), reports / RUN_IDS[0])
    c = make_client(service_settings(data_settings(tmp_path), service={"index_ttl_s": 3600.0}))
    h = bearer(c, "victor")
    assert [x["run_id"] for x in c.get("/api/runs", headers=h).json()["runs"]] == [RUN_IDS[0]]
    new_id = "20270101T000000Z-123456"
    shutil.copytree(service_root.run_dir(RUN_IDS[1]), reports / new_id)
    assert [x["run_id"] for x in c.get("/api/runs", headers=h).json()["runs"]] == [new_id, RUN_IDS[0]]
    # a run folder whose summary is written after the folder appeared (TTL 0: re-listed every request)
    c2 = make_client(service_settings(data_settings(tmp_path), service={"index_ttl_s": 0.0}))
    late = "20280101T000000Z-abcdef"
    (reports / late).mkdir()
    assert late not in [x["run_id"] for x in c2.get("/api/runs", headers=h).json()["runs"]]
    shutil.copytree(service_root.run_dir(RUN_IDS[2]), reports / late, dirs_exist_ok=True)
    (reports / late / "published.json").unlink()
    assert late not in [x["run_id"] for x in c2.get("/api/runs", headers=h).json()["runs"]]
    shutil.copy(service_root.run_dir(RUN_IDS[2]) / "published.json", reports / late / "published.json")
    assert c2.get("/api/runs/latest", headers=h).json()["run_id"] == late


def test_unreachable_report_store_is_503_not_no_runs(
    make_client, settings_factory, service_root, tmp_path, monkeypatch
):
    """With the object store down (nothing listens at its endpoint), the run routes answer 503
    naming the report store, not an empty listing or "no runs yet"; the index answers again at
    the first listing that succeeds."""
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = {
        "key": "testing",
        "secret": "testing",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
    }
    base = data_settings(tmp_path, storage={"report_url": "s3://goldstress-down/reports", "storage_options": creds})
    c = make_client(service_settings(base, service={"index_ttl_s": 0.0}))
    h = bearer(c, "victor")
    for route in ("/api/runs", "/api/runs/latest", f"/api/runs/{RUN_IDS[0]}/summary"):
        r = c.get(route, headers=h)
        assert r.status_code == 503, route
        assert r.json()["detail"].startswith("report store unavailable: cannot list s3://goldstress-down/reports")
        assert "testing" not in r.text  # no credentials in the answer

    from service.runs import ReportStoreUnavailable, RunIndex

    index = RunIndex(settings_factory())
    real = RunIndex._list_names
    monkeypatch.setattr(RunIndex, "_list_names", lambda self: (_ for _ in ()).throw(OSError("connection refused")))
    index.refresh(force=True)
    with pytest.raises(ReportStoreUnavailable, match="report store unavailable"):
        index.check_available()
    monkeypatch.setattr(RunIndex, "_list_names", real)
    index.refresh(force=True)
    index.check_available()
    assert index.entries()[0].run_id == RUN_IDS[-1]


@pytest.mark.slow
def test_runs_on_s3(make_client, service_root: ServiceRoot, tmp_path):
    """The same API over an s3:// report URL (moto's S3 server): listing, summary bytes,
    Parquet, and a run uploaded later shows up (object-store listings are not cached stale)."""

    import s3fs
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        bucket = f"goldstress-service-{uuid.uuid4().hex[:8]}"
        creds = {"key": "testing", "secret": "testing", "endpoint_url": f"http://127.0.0.1:{port}"}
        fs = s3fs.S3FileSystem(skip_instance_cache=True, **creds)  # the writer: another client than the service's
        fs.mkdir(bucket)
        for run_id in RUN_IDS[:2]:
            fs.put(str(service_root.run_dir(run_id)), f"{bucket}/reports/{run_id}", recursive=True)
        base = data_settings(tmp_path, storage={"report_url": f"s3://{bucket}/reports", "storage_options": creds})
        c = make_client(service_settings(base, service={"index_ttl_s": 0.0}))
        h = bearer(c, "victor")
        assert [x["run_id"] for x in c.get("/api/runs", headers=h).json()["runs"]] == [RUN_IDS[1], RUN_IDS[0]]
        r = c.get(f"/api/runs/{RUN_IDS[0]}/summary", headers=h)
        assert r.content == (service_root.run_dir(RUN_IDS[0]) / "summary.json").read_bytes()
        r = c.get(f"/api/runs/{RUN_IDS[1]}/results/mc_champion.parquet", headers=h)
        pd.testing.assert_frame_equal(
            pd.read_parquet(io.BytesIO(r.content)),
            pd.read_parquet(service_root.run_dir(RUN_IDS[1]) / "results" / "mc_champion.parquet"),
        )
        fs.put(str(service_root.run_dir(RUN_IDS[2])), f"{bucket}/reports/{RUN_IDS[2]}", recursive=True)
        assert c.get("/api/runs/latest", headers=h).json()["run_id"] == RUN_IDS[2]
    finally:
        server.stop()


# ------------------------------------------------------------------------------------ what-if
FRICTIONLESS = {
    "spec_version": 2,
    "kind": "gold_backed",
    "name": "Frictionless",
    "symbol": "FRIC",
    "grams_per_token": 1.0,
    "supply_tokens": 1000.0,
    "opex_usd_per_year": 0.0,
    "reserve": [
        {"name": "cash", "kind": "usd_cash", "amount": 0.0, "liquidity_per_day": 1.0, "stressed_haircut": 0.0},
        {"name": "bars", "kind": "allocated_gold", "amount": 1000.0, "liquidity_per_day": 1.0, "stressed_haircut": 0.0},
    ],
    "primary": {"mint_fee": 0.0, "redeem_fee": 0.0, "market_hours": "always"},
    "secondary": {"wait_cost_per_day": None},
    "redemption": {"base_rate_per_day": 0.0, "max_share_per_day": 0.0},
}
"""A frictionless, exactly gold-backed reserve-backed token without flows, premium or pool."""

RETIRED_V1 = {
    "spec_version": 1,
    "kind": "gold_backed",
    "name": "Old",
    "symbol": "OLD",
    "grams_per_token": 1.0,
    "supply_tokens": 1000.0,
    "gold_reserve_g": 1000.0,
    "cash_buffer_usd": 0.0,
}


def whatif(client, headers, **body):
    return client.post("/api/whatif", json=body, headers=headers)


def test_whatif_frictionless_shock_closed_form(client, analyst, service_root: ServiceRoot):
    r = whatif(
        client,
        analyst,
        token_spec=FRICTIONLESS,
        shock_frac=-0.2,
        shock_horizon_days=1,
        n_paths=500,
        horizon_days=12,
        seed=3,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["mode"]) == ("completed", "inprocess")
    shock = body["result"]["shock"]
    assert shock["holder_loss_frac_1d"] == pytest.approx(0.2, abs=1e-12)
    assert shock["reserve_per_token_loss_frac_1d"] == pytest.approx(0.2, abs=1e-12)
    assert shock["backing_ratio_1d"] == pytest.approx(1.0, abs=1e-12)
    assert shock["backing_ratio_min"] == pytest.approx(1.0, abs=1e-12)
    assert shock["backing_below_1"] is False and shock["liquidated"] is False and shock["bad_debt_usd"] == 0.0
    # stored in both modes at <report_url>/whatif/<id>/result.json
    stored = json.loads((service_root.reports / "whatif" / body["id"] / "result.json").read_text())
    assert stored["result"] == body["result"]
    assert client.get(f"/api/whatif/{body['id']}", headers=analyst).json()["result"] == body["result"]


def test_whatif_ramp_shock_loses_the_move_over_its_horizon(client, analyst):
    r = whatif(
        client, analyst, token_spec=FRICTIONLESS, shock_frac=0.35, shock_horizon_days=20, n_paths=100, horizon_days=5
    )
    shock = r.json()["result"]["shock"]
    assert shock["holder_loss_frac_20d"] == pytest.approx(-0.35, abs=1e-12)  # a gain is a negative loss
    # log-linear ramp: gold at the end is P0 * 1.35 exactly
    assert shock["gold_usd_per_oz_end"] == pytest.approx(shock["gold_usd_per_oz_d0"] * 1.35, rel=1e-12)


def test_whatif_with_mlflow_down_falls_back_at_once_and_says_so(make_client, settings_factory):
    """A tracking server nobody answers at: the what-if runs on the fallback model within
    seconds (not MLflow's minutes of retries) and its model record names MLflow and its URL,
    without the credentials."""
    import time

    port = free_port()
    c = make_client(settings_factory(tracking={"tracking_uri": f"http://u:pw@127.0.0.1:{port}"}))
    started = time.monotonic()
    r = whatif(
        c,
        bearer(c, "alice"),
        token_spec=FRICTIONLESS,
        shock_frac=-0.1,
        shock_horizon_days=1,
        n_paths=200,
        horizon_days=10,
    )
    assert time.monotonic() - started < 20
    assert r.status_code == 200, r.text
    model = r.json()["result"]["model"]
    assert model["source"] == "fallback"
    assert f"MLflow tracking server unreachable at http://127.0.0.1:{port}" in model["registry_unavailable"]
    assert "pw@" not in r.text


def test_whatif_monte_carlo_against_an_independent_computation(client, analyst, settings_factory):
    """Frictionless token: the holder loss at h days is the gold loss 1 - P_h/P_0 path by path.
    Rebuild the gold paths from the documented fallback model (GARCH(1,1)-t on the curated
    series, models.scenarios.monte_carlo_chunks) and take the lower empirical quantile with
    numpy (method inverted_cdf) and ES as the mean of the tail with the fractional atom
    (Acerbi & Tasche 2002), written independently of models.risk.var_es."""
    from models.scenarios import monte_carlo_chunks
    from models.volatility import fit_garch
    from tasks.train import load_gold_returns

    n, horizon, seed = 2000, 12, 11
    r = whatif(
        client,
        analyst,
        token_spec=FRICTIONLESS,
        shock_frac=0.0,
        shock_horizon_days=1,
        n_paths=n,
        horizon_days=horizon,
        seed=seed,
    )
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["model"]["source"] == "fallback"
    mc = res["monte_carlo"]
    assert mc["horizons_days"] == [1, 10, 12]
    settings = settings_factory()
    returns, meta = load_gold_returns.fn(settings)
    fit = fit_garch(
        returns[returns.index >= pd.Timestamp(settings.training.vol_train_start, tz="UTC")].to_numpy(), kind="garch"
    )
    logret = np.concatenate(
        list(
            monte_carlo_chunks(
                lambda k, h, rng: fit.simulate(
                    k, h, rng, innovations="t", drift_per_day=0.0
                ),  # the stress default: no drift
                n,
                horizon,
                seed,
                settings.monte_carlo.chunk_paths,
            )
        )
    )
    for h in (1, 10, 12):
        loss = 1.0 - np.exp(logret[:, :h].sum(axis=1))
        for level in (0.95, 0.99):
            var = float(np.quantile(loss, level, method="inverted_cdf"))
            srt = np.sort(loss)
            k = math.ceil(n * level - 1e-9)
            es = (srt[k:].sum() + (k - n * level) * srt[k - 1]) / (n * (1 - level))
            lvl = round(level * 100)
            assert mc[f"holder_value_var_{lvl}_{h}d_frac"] == pytest.approx(var, rel=1e-9, abs=1e-12)
            assert mc[f"holder_value_es_{lvl}_{h}d_frac"] == pytest.approx(es, rel=1e-9, abs=1e-12)
            # frictionless: the reserve per token outstanding is the gold of one token
            assert mc[f"reserve_per_token_var_{lvl}_{h}d_frac"] == pytest.approx(var, rel=1e-9, abs=1e-12)
    assert mc["p_backing_below_1"] == 0.0 and mc["p_liquidation"] == 0.0 and mc["expected_bad_debt_usd"] == 0.0
    assert mc["n_paths"] == n


def test_whatif_peg_and_liquidity_figures(client, analyst):
    """The main run's peg and liquidity figures (models.metrics.market_metrics) in the what-if's
    Monte Carlo. Frictionless token: no premium process, no redemptions and no claims, so the
    premium is 0 on every path, nothing is redeemed or queued, and the coverage (liquid
    resources over claims) is infinite. A CDP stablecoin has no secondary market: no such figures."""
    r = whatif(
        client,
        analyst,
        token_spec=FRICTIONLESS,
        shock_frac=-0.2,
        shock_horizon_days=5,
        n_paths=200,
        horizon_days=30,
        seed=3,
    )
    assert r.status_code == 200, r.text
    mc = r.json()["result"]["monte_carlo"]
    for q in ("0.01", "0.05", "0.5", "0.95", "0.99"):
        assert mc[f"premium_end_q{q}_frac"] == 0.0
    assert mc["p_abs_premium_gt_1pct"] == mc["p_abs_premium_gt_5pct"] == 0.0
    assert mc["redeemed_frac_of_day0_supply_end_mean"] == 0.0
    assert mc["redemption_queue_max_tokens_q99"] == mc["redemption_queue_end_tokens_mean"] == 0.0
    for h in (1, 5, 10, 30):
        assert mc[f"liquidity_coverage_{h}d_q01"] == "inf"
        assert mc[f"p_liquidity_coverage_below_1_{h}d"] == 0.0
    r = whatif(
        client,
        analyst,
        token_preset="GUSD",
        shock_frac=-0.2,
        shock_horizon_days=5,
        n_paths=100,
        horizon_days=10,
        seed=3,
    )
    assert r.status_code == 200, r.text
    mc = r.json()["result"]["monte_carlo"]
    assert not [k for k in mc if k.startswith(("premium_", "p_abs_premium", "liquidity_coverage", "redemption_queue"))]


def test_whatif_cdp_liquidation_threshold(client, analyst):
    spec = tomllib.loads((ROOT / "specs" / "gusd_cdp.toml").read_text())
    threshold = 1.0 - spec["liquidation_ratio"] / min(
        t["collateral_ratio"] for t in spec["tranches"]
    )  # fall that liquidates
    outcomes = {}
    for shock in (-(threshold + 0.01), -(threshold - 0.01)):
        r = whatif(
            client, analyst, token_preset="GUSD", shock_frac=shock, shock_horizon_days=1, n_paths=50, horizon_days=5
        )
        assert r.status_code == 200, r.text
        outcomes[shock] = r.json()["result"]["shock"]["liquidated"]
    assert list(outcomes.values()) == [True, False]


def test_whatif_redemption_override_applies_to_gold_tokens_only(client, analyst):
    r = whatif(
        client,
        analyst,
        token_spec=FRICTIONLESS,
        redemption_share_per_day=0.2,
        shock_frac=0.0,
        shock_horizon_days=3,
        n_paths=20,
        horizon_days=3,
    )
    assert r.status_code == 200, r.text
    red = r.json()["result"]["inputs"]["token_spec"]["redemption"]
    assert red["base_rate_per_day"] == 0.2 and red["max_share_per_day"] >= 0.2
    # a preset (GRAM, PAXG, ...): the same share on its holder-flow fields
    r = whatif(
        client,
        analyst,
        token_preset="PAXG",
        redemption_share_per_day=0.2,
        shock_frac=0.0,
        shock_horizon_days=3,
        n_paths=20,
        horizon_days=3,
    )
    assert r.status_code == 200, r.text
    red = r.json()["result"]["inputs"]["token_spec"]["redemption"]
    assert red["base_rate_per_day"] == 0.2 and red["max_share_per_day"] >= 0.2
    r = whatif(
        client,
        analyst,
        token_preset="GUSD",
        redemption_share_per_day=0.2,
        shock_frac=0.0,
        shock_horizon_days=3,
        n_paths=20,
        horizon_days=3,
    )
    assert r.status_code == 422
    assert "redemption_share_per_day" in json.dumps(r.json()["detail"])


@pytest.mark.parametrize(
    "body, field",
    [
        (
            {
                "token_spec": {**FRICTIONLESS, "colour": "gold"},
                "shock_frac": -0.1,
                "shock_horizon_days": 1,
                "n_paths": 10,
                "horizon_days": 5,
            },
            "colour",
        ),
        (
            {
                "token_spec": {**FRICTIONLESS, "description": "x" * 17_000},
                "shock_frac": -0.1,
                "shock_horizon_days": 1,
                "n_paths": 10,
                "horizon_days": 5,
            },
            "token_spec",
        ),
        (
            {
                "token_spec": {**FRICTIONLESS, "supply_tokens": -5},
                "shock_frac": -0.1,
                "shock_horizon_days": 1,
                "n_paths": 10,
                "horizon_days": 5,
            },
            "supply_tokens",
        ),
        (
            {"token_preset": "GRAM", "shock_frac": -0.96, "shock_horizon_days": 1, "n_paths": 10, "horizon_days": 5},
            "shock_frac",
        ),
        (
            {"token_preset": "GRAM", "shock_frac": -0.1, "shock_horizon_days": 251, "n_paths": 10, "horizon_days": 5},
            "shock_horizon_days",
        ),
        (
            {
                "token_preset": "GRAM",
                "shock_frac": -0.1,
                "shock_horizon_days": 1,
                "n_paths": 1_000_001,
                "horizon_days": 5,
            },
            "n_paths",
        ),
        (
            {"token_preset": "GRAM", "shock_frac": -0.1, "shock_horizon_days": 1, "n_paths": 10, "horizon_days": 0},
            "horizon_days",
        ),
        (
            {
                "token_preset": "GRAM",
                "shock_frac": -0.1,
                "shock_horizon_days": 1,
                "n_paths": 10,
                "horizon_days": 5,
                "seed": -1,
            },
            "seed",
        ),
        (
            {
                "token_preset": "GRAM",
                "shock_frac": -0.1,
                "shock_horizon_days": 1,
                "n_paths": 10,
                "horizon_days": 5,
                "verbose": True,
            },
            "verbose",
        ),
        (
            {"token_preset": "NOPE", "shock_frac": -0.1, "shock_horizon_days": 1, "n_paths": 10, "horizon_days": 5},
            "token_preset",
        ),
        (
            {
                "token_preset": "GRAM",
                "token_spec": FRICTIONLESS,
                "shock_frac": -0.1,
                "shock_horizon_days": 1,
                "n_paths": 10,
                "horizon_days": 5,
            },
            "token_preset",
        ),
        ({"shock_frac": -0.1, "shock_horizon_days": 1, "n_paths": 10, "horizon_days": 5}, "token_spec"),
        (
            {"token_spec": RETIRED_V1, "shock_frac": -0.1, "shock_horizon_days": 1, "n_paths": 10, "horizon_days": 5},
            "v1 gold-backed token",
        ),
    ],
)
def test_whatif_bad_input_is_422_naming_the_field(client, analyst, body, field):
    r = client.post("/api/whatif", json=body, headers=analyst)
    assert r.status_code == 422, r.text
    assert field in json.dumps(r.json()["detail"])


def test_whatif_without_a_model_is_409(make_client, tmp_path):
    c = make_client(service_settings(data_settings(tmp_path)))
    r = whatif(
        c, bearer(c, "alice"), token_preset="GRAM", shock_frac=-0.1, shock_horizon_days=1, n_paths=10, horizon_days=5
    )
    assert r.status_code == 409
    assert "run the pipeline first" in r.json()["detail"]


def test_whatif_past_the_time_limit_is_503(make_client, analyst):
    c = make_client(service={"inprocess_timeout_s": 0.001})
    r = whatif(c, analyst, token_preset="GRAM", shock_frac=-0.1, shock_horizon_days=1, n_paths=4000, horizon_days=250)
    assert r.status_code == 503
    assert "time limit" in r.json()["detail"]


def test_unknown_whatif_id_is_404_and_bad_id_422(client, analyst):
    assert client.get(f"/api/whatif/{uuid.uuid4()}", headers=analyst).status_code == 404
    assert client.get("/api/whatif/not-a-uuid", headers=analyst).status_code == 422


def test_large_whatif_without_prefect_api_is_503(client, analyst):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        r = whatif(
            client,
            analyst,
            token_preset="GRAM",
            shock_frac=-0.1,
            shock_horizon_days=1,
            n_paths=100_000,
            horizon_days=250,
        )
    assert r.status_code == 503
    assert "Prefect" in r.json()["detail"] and "PREFECT_API_URL" in r.json()["detail"]
    assert int(r.headers["retry-after"]) >= 1


# ------------------------------------------------------------------------------------ Prefect
@pytest.mark.slow
def test_large_whatif_with_prefect_but_no_deployment_is_503(prefect_api, make_client, analyst):
    c = make_client(service={"whatif_deployment": "whatif/not-deployed"})
    r = whatif(
        c, analyst, token_preset="GRAM", shock_frac=-0.1, shock_horizon_days=1, n_paths=100_000, horizon_days=250
    )
    assert r.status_code == 503
    assert "whatif/not-deployed" in r.json()["detail"] and "not found" in r.json()["detail"]


@pytest.mark.slow
def test_large_whatif_is_scheduled_on_the_deployment(
    whatif_deployment, make_client, analyst, service_root: ServiceRoot
):
    from prefect.client.orchestration import get_client

    c = make_client(service={"whatif_deployment": whatif_deployment})
    r = whatif(
        c,
        analyst,
        token_preset="GUSD",
        shock_frac=-0.1,
        shock_horizon_days=1,
        n_paths=100_000,
        horizon_days=250,
        seed=5,
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["status"], body["mode"]) == ("scheduled", "deployment")
    with get_client(sync_client=True) as pc:
        flow_run = pc.read_flow_run(uuid.UUID(body["id"]))
    assert flow_run.parameters["request"]["n_paths"] == 100_000
    assert flow_run.parameters["request"]["token_spec"]["symbol"] == "GUSD"
    assert flow_run.state.type.value == "SCHEDULED"
    status = c.get(f"/api/whatif/{body['id']}", headers=analyst).json()
    assert (status["status"], status["mode"], status["result"]) == ("scheduled", "deployment", None)


@pytest.mark.slow
def test_whatif_flow_writes_the_same_result_as_the_inprocess_path(
    prefect_api, client, analyst, service_root: ServiceRoot, monkeypatch
):
    """The Prefect flow (deployment mode) and the in-process path give the same result."""
    from goldstress.settings import env_name, get_settings

    body = {
        "token_preset": "GRAM",
        "shock_frac": -0.25,
        "shock_horizon_days": 3,
        "n_paths": 300,
        "horizon_days": 15,
        "seed": 9,
    }
    inproc = whatif(client, analyst, **body).json()["result"]
    for section, key in (
        ("storage", "store_url"),
        ("storage", "report_url"),
        ("tracking", "tracking_uri"),
        ("tracking", "artifact_location"),
        ("monte_carlo", "chunk_paths"),
    ):
        monkeypatch.setenv(env_name(section, key), str(service_root.base[section][key]))
    monkeypatch.delenv("GOLDSTRESS_DATA_DIR", raising=False)
    get_settings.cache_clear()
    try:
        from flows.whatif import whatif as whatif_flow

        wid = str(uuid.uuid4())
        out = whatif_flow(request=body, whatif_id=wid)
    finally:
        get_settings.cache_clear()
    stored = json.loads((service_root.reports / "whatif" / wid / "result.json").read_text())
    assert out["id"] == wid and stored["mode"] == "deployment"
    assert stored["result"] == inproc
    got = client.get(f"/api/whatif/{wid}", headers=analyst).json()
    assert (got["status"], got["mode"], got["result"]) == ("completed", "deployment", inproc)


@pytest.mark.slow
def test_whatif_uses_the_registered_champion(make_client, analyst, service_root: ServiceRoot, tmp_path):
    """With a champion registered in MLflow (by the train flow's own register_champion), the
    what-if simulates from it, not from the fallback: a champion with filtered historical
    simulation innovations gives the frictionless token's holder loss computed here from
    Champion.simulate and the gold loss closed form."""
    import shutil

    import mlflow

    from goldstress.io import tracking
    from goldstress.io.champion import Champion
    from goldstress.settings import Settings
    from models.scenarios import monte_carlo_chunks
    from models.volatility import GarchFit
    from tasks.train import load_gold_returns, register_champion
    from tests.service.conftest import train_test_champion

    shutil.copytree(service_root.store, tmp_path / "store")
    settings = Settings(**data_settings(tmp_path, tracking={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}))
    returns, meta = load_gold_returns.fn(settings)
    windows, candidates, fitted = train_test_champion(returns)
    experiment_id = tracking.configure(settings)
    run = mlflow.MlflowClient().create_run(experiment_id)
    best = {**candidates[0], "name": "garch_fhs", "kind": "garch", "innovations": "fhs", "run_id": run.info.run_id}
    tail = {"tail": {"xi": 0.1, "beta": 0.01, "threshold": 0.02, "n_exceed": 50, "n_total": 1000}}
    registered = register_champion.fn(best, fitted, [best], windows, tail, meta, settings)

    c = make_client(
        service_settings(data_settings(tmp_path, tracking={"tracking_uri": settings.tracking.tracking_uri}))
    )
    n, horizon, seed = 1000, 10, 4
    r = whatif(
        c,
        analyst,
        token_spec=FRICTIONLESS,
        shock_frac=0.0,
        shock_horizon_days=1,
        n_paths=n,
        horizon_days=horizon,
        seed=seed,
    )
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["model"]["source"] == "champion"
    assert (res["model"]["version"], res["model"]["candidate"], res["model"]["innovations"]) == (
        registered["version"],
        "garch_fhs",
        "fhs",
    )
    champion = Champion(
        name="garch_fhs", fit=GarchFit.from_dict(fitted["full_sample_fit"]), innovations="fhs", tail=None, meta={}
    )
    logret = np.concatenate(
        list(
            monte_carlo_chunks(
                partial(champion.simulate, drift_per_day=0.0), n, horizon, seed, settings.monte_carlo.chunk_paths
            )
        )
    )
    loss = 1.0 - np.exp(logret.sum(axis=1))
    assert res["monte_carlo"]["holder_value_var_99_10d_frac"] == pytest.approx(
        float(np.quantile(loss, 0.99, method="inverted_cdf")), rel=1e-9
    )


# ------------------------------------------------------------------------------------ limits
def test_body_over_64kb_is_413(client, analyst):
    big = {
        "token_preset": "GRAM",
        "shock_frac": -0.1,
        "shock_horizon_days": 1,
        "n_paths": 10,
        "horizon_days": 5,
        "pad": "x" * 70_000,
    }
    r = client.post("/api/whatif", content=json.dumps(big), headers={**analyst, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_chunked_body_over_the_limit_is_413(client, analyst):
    def gen():
        for _ in range(80):
            yield b"x" * 1024

    r = client.post("/api/whatif", content=gen(), headers={**analyst, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_rate_limit_answers_429_with_retry_after(make_client):
    c = make_client(service={"rate_limit_per_minute": 3})
    h = {"X-API-Key": API_KEYS["viewer"]}
    codes = [c.get("/api/runs", headers=h).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = c.get("/api/runs", headers=h)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # another client identity has its own bucket
    assert c.get("/api/runs", headers={"X-API-Key": API_KEYS["analyst"]}).status_code == 200


def test_whatif_rate_limit_is_separate_and_tighter(make_client):
    c = make_client(service={"whatif_per_minute": 1})
    h = {"X-API-Key": API_KEYS["analyst"]}
    body = {"token_spec": FRICTIONLESS, "shock_frac": -0.1, "shock_horizon_days": 1, "n_paths": 10, "horizon_days": 3}
    assert c.post("/api/whatif", json=body, headers=h).status_code == 200
    r = c.post("/api/whatif", json=body, headers=h)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert c.get("/api/runs", headers=h).status_code == 200  # reads still allowed


def test_token_bucket_closed_form():
    from service.limits import TokenBucketLimiter

    now = [0.0]
    lim = TokenBucketLimiter(per_minute=3, clock=lambda: now[0])
    assert [lim.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.acquire("a") == pytest.approx(20.0)  # one token per 60/3 s
    now[0] = 10.0
    assert lim.acquire("a") == pytest.approx(10.0)
    now[0] = 20.0
    assert lim.acquire("a") == 0.0
    assert lim.acquire("b") == 0.0  # per key
    with pytest.raises(ValueError, match="per_minute"):
        TokenBucketLimiter(per_minute=0)
