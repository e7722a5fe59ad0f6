"""The ``calibrate`` flow end to end on synthetic files in the real layouts, under Prefect's test
harness, with MLflow on a temporary SQLite store and local fsspec storage.

Files: a broker XAU/USD MT5 file (with a flagged Sunday bar and a flagged partial-day bar whose
closes are absurd, so a missed importer drop would show), an LBMA PM file on another clock (gold
times independent noise), and a token OHLC file every calendar day whose premium on gold trading
days is a Gaussian AR(1), with a three-week hole. Every asserted value is recomputed in this file
from the CSVs with pandas/hashlib, or is a closed-form property of the synthetic data.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import RunOptions, get_settings

pytestmark = pytest.mark.slow

PHI, M, SIGMA = 0.7, 0.002, 0.002
FLAGS = ("sunday_open_session", "partial_day_snapshot_close_unreliable")


def _write_files(d: Path, garch_gold_prices) -> dict[str, object]:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    gold = garch_gold_prices(1000, seed=21)  # business days from 2005-01-03
    days = pd.to_datetime(gold["date"])
    close = gold["usd_pm"].to_numpy(dtype=float)
    broker = pd.DataFrame(
        {
            "date": days.dt.strftime("%Y-%m-%d"),
            "open": close,
            "high": close * 1.002,
            "low": close * 0.998,
            "close": close,
            "tick_volume": 50_000,
            "bar_note": "",
        }
    )
    partial_day = days.iloc[700]
    broker.loc[700, ["close", "bar_note"]] = [1.0, FLAGS[1]]  # would be a -99.9% "gold" day
    monday = next(i for i in range(500, 520) if days.iloc[i].day_of_week == 0)
    sunday = days.iloc[monday] - pd.Timedelta(days=1)
    extra = pd.DataFrame(
        [
            {
                "date": sunday.strftime("%Y-%m-%d"),
                "open": 1.0,
                "high": 1.0,
                "low": 1.0,
                "close": 1.0,
                "tick_volume": 10,
                "bar_note": FLAGS[0],
            }
        ]
    )
    broker = pd.concat([broker, extra]).sort_values("date")
    broker.round(6).to_csv(d / "xau_broker.csv", index=False)
    lbma = pd.DataFrame(
        {"date": days.dt.strftime("%Y-%m-%d"), "usd_pm": close * np.exp(rng.normal(0, 0.004, close.size))}
    )
    lbma.round(4).to_csv(d / "lbma_pm.csv", index=False)

    # token: AR(1) premium on business days 300..999, weekend rows near Friday's token price
    bdays = days.iloc[300:].reset_index(drop=True)
    p = np.empty(bdays.size)
    p[0] = M
    for t in range(1, bdays.size):
        p[t] = M + PHI * (p[t - 1] - M) + SIGMA * rng.standard_normal()
    tok_b = pd.Series(close[300:] * (1 + p), index=bdays)
    cal_days = pd.date_range(bdays.iloc[0], bdays.iloc[-1], freq="D")
    tok = tok_b.reindex(cal_days).ffill() * np.where(
        cal_days.day_of_week >= 5, np.exp(rng.normal(0, 0.001, cal_days.size)), 1.0
    )
    hole = (cal_days >= bdays.iloc[560]) & (cal_days < bdays.iloc[575])
    tok = tok[~hole]
    pd.DataFrame(
        {
            "date": tok.index.strftime("%Y-%m-%d"),
            "open_usd": tok.to_numpy(),
            "high_usd": tok.to_numpy() * 1.001,
            "low_usd": tok.to_numpy() * 0.999,
            "close_usd": tok.to_numpy(),
        }
    ).round(6).to_csv(d / "tok.csv", index=False)
    return {
        "fit": (str(bdays.iloc[0].date()), str(bdays.iloc[350].date())),
        "test": (str(bdays.iloc[351].date()), str(bdays.iloc[-1].date())),
        "partial_day": partial_day,
        "sunday": sunday,
        "stress": (str(bdays.iloc[100].date()), str(bdays.iloc[140].date())),
    }


def _independent_premia(d: Path) -> pd.Series:
    """Token close / broker close - 1 on common dates, straight from the CSVs with pandas."""
    b = pd.read_csv(d / "xau_broker.csv", keep_default_na=False)
    b = b[~b["bar_note"].isin(FLAGS)]
    t = pd.read_csv(d / "tok.csv")
    j = t.merge(b, on="date", how="inner")
    return pd.Series(
        j["close_usd"].to_numpy() / j["close"].to_numpy() - 1,
        index=pd.DatetimeIndex(pd.to_datetime(j["date"]), tz="UTC"),
    )


def test_calibrate_flow_tracks_fits_and_writes_json(prefect_api, workdir, monkeypatch, flowkit):
    from mlflow.tracking import MlflowClient

    from flows.calibrate import calibrate
    from models import calibration as cal
    from models.premium import PremiumProcess

    d = workdir / "data"
    info = _write_files(d, flowkit.garch_gold_prices)
    sets = {
        "tok": {
            "token": "paxg",
            "file": "tok.csv",
            "oz_per_token": 1.0,
            "fit_start": info["fit"][0],
            "fit_end": info["fit"][1],
            "test_start": info["test"][0],
            "test_end": info["test"][1],
        },
        "missing": {
            "token": "xaut",
            "file": "not_there.csv",
            "fit_start": info["fit"][0],
            "fit_end": info["fit"][1],
            "test_start": info["test"][0],
            "test_end": info["test"][1],
        },
    }
    monkeypatch.setenv("GOLDSTRESS_CALIBRATION_GOLD_FILE", "xau_broker.csv")
    monkeypatch.setenv("GOLDSTRESS_CALIBRATION_REFERENCE_GOLD_FILE", "lbma_pm.csv")
    monkeypatch.setenv("GOLDSTRESS_CALIBRATION_SETS", json.dumps(sets))
    monkeypatch.setenv("GOLDSTRESS_CALIBRATION_STRESS_WINDOWS", json.dumps({"w": list(info["stress"])}))
    monkeypatch.setenv("GOLDSTRESS_CALIBRATION_SIM_PATHS", "300")
    get_settings.cache_clear()
    settings = get_settings()

    summary = calibrate(options=RunOptions(data_dir=str(d)))

    # --- summary and skipped set ------------------------------------------------------------
    assert summary["skipped"] == ["missing"]
    assert set(summary["calibrations"]) == {"tok"}
    json_path = Path(settings.storage.store_url) / "calibration" / "tok.json"
    assert summary["calibrations"]["tok"]["json_url"].endswith("calibration/tok.json") and json_path.is_file()
    assert not (Path(settings.storage.store_url) / "calibration" / "missing.json").exists()
    record = json.loads(json_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    # the set's token is PAXG: fitted with the PAXG spec's arbitrage band, then replayed through its model
    from models.token.reserve_backed import spec_arbitrage_band
    from models.token.spec import load_token_spec

    paxg = load_token_spec(
        Path(settings.scenarios.token_specs[[Path(p).stem for p in settings.scenarios.token_specs].index("paxg")])
    )
    assert (record["band"]["lower"], record["band"]["upper"]) == pytest.approx(spec_arbitrage_band(paxg))
    mvh = record["model_vs_history"]
    assert mvh["status"] == "validated" and mvh["token"] == "PAXG" and mvh["clock_noise"] == {}
    assert mvh["verdict"] in ("pass", "fail") and (mvh["verdict"] == "pass") == (not mvh["reasons"])
    for key in ("in_sample", "out_of_sample", "full_sample"):
        assert mvh[key]["distribution"]["n_paths"] == 300

    # --- MLflow: parent calibrate-<date> with two nested runs ---------------------------------
    client = MlflowClient(tracking_uri=settings.tracking.tracking_uri)
    exp = client.get_experiment_by_name(settings.tracking.experiment)
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.info.run_id == summary["parent_run_id"])
    assert re.fullmatch(r"calibrate-\d{4}-\d{2}-\d{2}", parent.info.run_name)
    started = datetime.fromtimestamp(parent.info.start_time / 1000, tz=UTC).date().isoformat()
    assert parent.info.run_name == f"calibrate-{started}"
    assert parent.info.status == "FINISHED"
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"tok/fit-window", "tok/full-sample"}
    fit_run, full_run = children["tok/fit-window"], children["tok/full-sample"]

    # --- inputs recomputed independently -------------------------------------------------------
    premia = _independent_premia(d)
    assert not (premia.index == pd.Timestamp(info["partial_day"], tz="UTC")).any()
    assert premia.abs().max() < 0.05  # the absurd flagged closes are not in the data
    fit_part = premia[(premia.index >= info["fit"][0]) & (premia.index <= info["fit"][1])]
    test_part = premia[(premia.index >= info["test"][0]) & (premia.index <= info["test"][1])]
    token_sha = hashlib.sha256((d / "tok.csv").read_bytes()).hexdigest()
    gold_sha = hashlib.sha256((d / "xau_broker.csv").read_bytes()).hexdigest()
    for run in (fit_run, full_run):
        assert run.data.params["token_sha256"] == token_sha
        assert run.data.params["gold_sha256"] == gold_sha
        assert run.data.params["gold_clock"] == "utc_2400_broker_close"
    assert fit_run.data.params["window_start"] == info["fit"][0] and fit_run.data.params["window_end"] == info["fit"][1]
    assert fit_run.data.params["data_first_date"] == str(fit_part.index[0].date())
    assert fit_run.data.params["data_last_date"] == str(fit_part.index[-1].date())
    assert fit_run.data.metrics["n_obs"] == len(fit_part)
    assert fit_run.data.metrics["test_n_obs"] == len(test_part)
    assert full_run.data.metrics["n_obs"] == len(premia)
    assert full_run.data.metrics["n_segments"] == 2  # the token's three-week hole
    assert record["data"]["gold"]["aligned"]["n_dropped_by_importer"] == 2
    assert record["data"]["token"]["sha256"] == token_sha

    # --- the fits: same as fitting the independently built series -------------------------------
    for run, part, key in ((fit_run, fit_part, "premium_process_fit_window"), (full_run, premia, "premium_process")):
        ref = cal.fit_premium_process(part, innovations="t", jumps=True, band=spec_arbitrage_band(paxg)).process
        for name, value in ref.to_dict().items():
            assert record[key][name] == pytest.approx(value, rel=1e-6, abs=1e-12), name
            assert float(run.data.params[f"param_{name}"]) == pytest.approx(value, rel=1e-6, abs=1e-12)
        assert run.data.metrics["loglik"] == pytest.approx(ref.fit_info.log_likelihood, rel=1e-9)
    # the AR(1) persistence of the synthetic premium is recovered (SE ~ sqrt((1 - phi^2) / n) ~ 0.04)
    assert abs(record["premium_process"]["phi"] - PHI) < 4 * math.sqrt((1 - PHI**2) / len(premia))

    # --- out-of-sample scores: recomputed from the fit-window parameters ----------------------
    proc = PremiumProcess.from_dict(record["premium_process_fit_window"])
    ll = proc.log_likelihood(cal.gap_marked(test_part), per_obs=True).dropna()
    assert fit_run.data.metrics["oos_n_scored"] == len(test_part) - 2  # first day and the day after the hole
    assert fit_run.data.metrics["oos_mean_log_pred_density"] == pytest.approx(ll.mean(), rel=1e-9)
    assert record["oos_scores"]["mean_log_pred_density"] == pytest.approx(ll.mean(), rel=1e-9)
    fc = proc.one_step_forecast(cal.gap_marked(test_part), quantiles=(0.025, 0.975))
    y = cal.gap_marked(test_part)
    inside = ((y >= fc["q0.025"]) & (y <= fc["q0.975"]))[fc["q0.025"].notna() & y.notna()]
    assert fit_run.data.metrics["oos_coverage_95"] == pytest.approx(inside.mean())
    # correct model class: coverage within 4 binomial SEs of 95%
    assert abs(inside.mean() - 0.95) < 4 * math.sqrt(0.95 * 0.05 / len(inside))
    for key in ("q01_hit_rate", "q99_hit_rate", "q01_pinball", "uncond_q01_error"):
        assert f"oos_{key}" in fit_run.data.metrics

    # --- measurement: the reference clock's noise shows in the clock comparison ----------------
    clock = record["measurement"]["clock_comparison"]
    assert clock["sd_reference"] > clock["sd_aligned"]
    lbma = pd.read_csv(d / "lbma_pm.csv")
    b = pd.read_csv(d / "xau_broker.csv", keep_default_na=False)
    b = b[~b["bar_note"].isin(FLAGS)].merge(lbma, on="date")
    t = pd.read_csv(d / "tok.csv").merge(b, on="date")
    diff = t["close_usd"] / t["usd_pm"] - t["close_usd"] / t["close"]
    assert clock["n_common"] == len(t)
    assert clock["median_abs_diff"] == pytest.approx(diff.abs().median(), rel=1e-9)
    stats_drop = record["measurement"]["statistics"]["aligned_drop"]
    assert stats_drop["n"] == len(premia) and stats_drop["mean"] == pytest.approx(premia.mean(), rel=1e-9)
    assert stats_drop["sd"] == pytest.approx(premia.std(), rel=1e-9)
    last = record["measurement"]["statistics"]["aligned_last_gold_close"]
    n_token = len(pd.read_csv(d / "tok.csv"))
    assert last["n"] == n_token  # every token day has a gold close at most 4 days old
    assert record["measurement"]["weekend_rows"]["n_gold_stale_rows"] == n_token - len(premia)
    w = record["measurement"]["stress_windows"]["w"]
    in_w = premia[(premia.index >= info["stress"][0]) & (premia.index <= info["stress"][1])]
    assert w["n"] == len(in_w) and w["max"] == pytest.approx(in_w.max())
    # the reproduction check of the fit is recorded with its sample values; the synthetic AR(1) passes it
    assert record["quality"]["reproduces_full_sample"] == all(
        v["within"] for v in record["reproduction"]["full"].values()
    )
    assert record["quality"]["reproduces_fit_window"] and record["quality"]["reproduces_full_sample"]
    assert record["reproduction"]["full"]["lag1_autocorr"]["sample"] == pytest.approx(
        cal.premium_statistics(premia).lag1_autocorr
    )


def test_load_price_input_reads_data_dir_then_only_a_matching_curated_table(workdir, flowkit):
    """Importer first (quirks applied, sha256 of the file bytes); without the file, the curated
    table is used only when its ``source`` names the same file."""
    from goldstress.catalog import Catalog
    from goldstress.io import storage
    from goldstress.io.prices import load_price_input
    from goldstress.records import premia_sha256
    from goldstress.settings import settings_with

    d = workdir / "data"
    _write_files(d, flowkit.garch_gold_prices)
    s = settings_with(data={"data_dir": str(d)})
    inp = load_price_input("xau_broker.csv", "gold", s)
    raw = pd.read_csv(d / "xau_broker.csv", keep_default_na=False)
    kept = raw[~raw["bar_note"].isin(FLAGS)]
    assert inp["n"] == len(kept) and len(inp["dropped"]) == 2
    assert inp["sha256"] == hashlib.sha256((d / "xau_broker.csv").read_bytes()).hexdigest()
    np.testing.assert_array_equal(inp["series"].to_numpy(), kept["close"].to_numpy(dtype=float))
    assert inp["source_tag"] == "broker_close"

    # no data_dir: a curated table built from another file is not used, one from this file is
    s_store = settings_with()
    s_store = s_store.model_copy(update={"data": s_store.data.model_copy(update={"data_dir": None})})
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2020-01-02", "2020-01-03"]).tz_localize("UTC"),
            "token": "PAXG",
            "close_usd": [1500.0, 1510.0],
            "source": "ohlc_close_usd:other.csv",
        }
    )
    storage.write_parquet(frame, Catalog.of(s_store).curated("token_paxg"), s_store)
    assert load_price_input("tok.csv", "token_paxg", s_store) is None
    storage.write_parquet(
        frame.assign(source="ohlc_close_usd:tok.csv"), Catalog.of(s_store).curated("token_paxg"), s_store
    )
    cur = load_price_input("tok.csv", "token_paxg", s_store)
    assert list(cur["series"]) == [1500.0, 1510.0] and cur["origin"].endswith("curated/token_paxg.parquet")
    assert load_price_input("tok.csv", "token_xaut", s_store) is None  # nothing curated

    # the premia fingerprint depends on dates and values only
    a = pd.Series([0.01, 0.02], index=pd.DatetimeIndex(["2020-01-02", "2020-01-03"], tz="UTC"))
    assert premia_sha256(a) == premia_sha256(a.copy()) != premia_sha256(a * 1.0000001)
