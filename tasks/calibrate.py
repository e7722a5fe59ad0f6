"""Calibration tasks: measure token premia to gold on real data, fit the premium process, score it
out of sample, track everything in MLflow and write the calibrated parameters for the token specs.

Inputs, fits, MLflow runs and outputs: docs/platform/calibration-task.md.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from goldstress.catalog import Catalog
from goldstress.io import storage, tracking
from goldstress.io.prices import PriceInput, load_price_input
from goldstress.records import premia_sha256
from goldstress.settings import CalibrationSet, Settings
from models import calibration as cal
from models import premium_validation as pv
from models.premium import PremiumProcess
from models.token.reserve_backed import spec_arbitrage_band
from models.token.spec import ReserveBackedTokenSpec, load_token_spec, parse_token_spec

__all__ = [
    "CLOCK_LABELS",
    "PriceInput",
    "load_price_input",
    "load_gold_inputs",
    "measure_token",
    "open_calibration_run",
    "fit_and_score",
    "calibration_spec",
    "calibration_band",
    "validate_against_history",
    "measure_clock_noise",
    "write_calibration",
    "close_calibration_run",
]

CLOCK_LABELS = {
    "broker_close": "utc_2400_broker_close",
    "lbma_pm": "london_1500_lbma_pm",
}
"""Curated ``source`` tag -> the clock of that gold close, as recorded in MLflow and the JSON."""


def _meta(inp: PriceInput) -> dict[str, Any]:
    return {k: v for k, v in inp.items() if k not in ("series", "dropped")} | {
        "n_dropped_by_importer": len(inp["dropped"])
    }


@task(name="load-calibration-gold", cache_policy=NO_CACHE)
def load_gold_inputs(settings: Settings) -> dict[str, PriceInput | None]:
    """The gold closes the premia are measured against: ``{"aligned": ..., "reference": ...}``.

    ``aligned`` is ``settings.calibration.gold_file`` (the fit's clock); when it is unavailable the
    reference is promoted to ``aligned`` (logged as a warning; the clock label in the outputs then
    says ``london_1500_lbma_pm``). ``reference`` is ``calibration_reference_gold_file`` or None.
    Raises ``FileNotFoundError`` naming both settings when no gold series is available.
    """
    logger = get_run_logger()
    aligned = load_price_input(settings.calibration.gold_file, "gold", settings)
    reference = None
    if settings.calibration.reference_gold_file:
        reference = load_price_input(settings.calibration.reference_gold_file, "gold", settings)
    if aligned is None and reference is None:
        raise FileNotFoundError(
            f"no gold series for calibration: calibration_gold_file={settings.calibration.gold_file!r} "
            f"and calibration_reference_gold_file={settings.calibration.reference_gold_file!r} are neither "
            f"in data_dir={settings.data.data_dir} nor a curated gold table built from them"
        )
    if aligned is None:
        logger.warning(
            "calibration_gold_file %s unavailable: premia measured against %s (15:00 London clock, "
            "9-10 h before the token close: expect extra noise)",
            settings.calibration.gold_file,
            reference["file"],
        )
        aligned, reference = reference, None
    for inp in (aligned, reference):
        if inp is not None:
            logger.info(
                "gold %s: %d rows %s..%s, importer dropped %d",
                inp["file"],
                inp["n"],
                inp["first_date"],
                inp["last_date"],
                len(inp["dropped"]),
            )
    return {"aligned": aligned, "reference": reference}


def _clock(inp: PriceInput) -> str:
    return CLOCK_LABELS.get(inp["source_tag"], inp["source_tag"])


@task(name="measure-premium", cache_policy=NO_CACHE)
def measure_token(
    name: str, cset: CalibrationSet, gold: dict[str, PriceInput | None], settings: Settings
) -> dict[str, Any] | None:
    """Measure one calibration set's premia (None when its token file is unavailable).

    Returns ``{"name", "set", "premia", "measurement", "token", "gold"}``: ``premia`` the series
    the fit uses (aligned clock, ``settings.calibration.weekend_rule``), ``measurement`` a JSON-ready
    dict of statistics per variant (``aligned_drop``, ``aligned_last_gold_close``,
    ``reference_drop``), the clock comparison, stress windows and episodes, and the share of weekend
    rows; ``token``/``gold`` their lineage. Raises ``ValueError`` when no token day has a gold close.
    """
    logger = get_run_logger()
    token = load_price_input(cset.file, f"token_{cset.token}", settings)
    if token is None:
        logger.warning("calibration %s: token file %s not in data_dir nor curated: skipped", name, cset.file)
        return None
    gap = settings.calibration.max_step_gap_days
    g_al, g_ref = gold["aligned"], gold["reference"]
    frames = {
        "aligned_drop": cal.premium_frame(token["series"], g_al["series"], cset.oz_per_token, weekend="drop"),
        "aligned_last_gold_close": cal.premium_frame(
            token["series"], g_al["series"], cset.oz_per_token, weekend="last_gold_close", max_gold_age_days=gap
        ),
    }
    if g_ref is not None:
        frames["reference_drop"] = cal.premium_frame(
            token["series"], g_ref["series"], cset.oz_per_token, weekend="drop"
        )
    fit_key = f"aligned_{settings.calibration.weekend_rule}"
    premia = frames[fit_key]["premium_frac"]
    if len(premia) < 30:
        raise ValueError(
            f"calibration {name}: only {len(premia)} days of {cset.file} have a gold close in "
            f"{g_al['file']} ({token['first_date']}..{token['last_date']} vs {g_al['first_date']}..{g_al['last_date']})"
        )
    variants = {}
    for key, frame in frames.items():
        p = frame["premium_frac"]
        if len(p) < 2:
            variants[key] = {"n": int(len(p))}
            continue
        variants[key] = cal.premium_statistics(p, gap).to_dict()
    last = frames["aligned_last_gold_close"]
    measurement: dict[str, Any] = {
        "fit_series": fit_key,
        "clock_aligned": _clock(g_al),
        "clock_reference": None if g_ref is None else _clock(g_ref),
        "statistics": variants,
        "weekend_rows": {
            "n_token_rows": int(token["n"]),
            "n_gold_stale_rows": int(last["gold_stale"].sum()),
            "share_gold_stale": float(last["gold_stale"].mean()) if len(last) else float("nan"),
            "stale_row_stats": cal.describe_premia(last.loc[last["gold_stale"], "premium_frac"]),
        },
        "stress_windows": cal.window_statistics(premia, settings.calibration.stress_windows),
        "episodes": cal.find_episodes(premia, settings.calibration.episode_threshold_frac, max_step_gap_days=gap)[:10],
    }
    if g_ref is not None:
        measurement["clock_comparison"] = cal.clock_comparison(
            premia if fit_key == "aligned_drop" else frames["aligned_drop"]["premium_frac"],
            frames["reference_drop"]["premium_frac"],
            gap,
        )
    st = variants[fit_key]
    logger.info(
        "calibration %s: %d days, premium mean %.4f sd %.4f, lag-1 %.3f, half-life %.2f steps",
        name,
        st["n"],
        st["mean"],
        st["sd"],
        st["lag1_autocorr"],
        st["half_life_steps"],
    )
    return {
        "name": name,
        "set": cset.model_dump(mode="json"),
        "premia": premia,
        "measurement": measurement,
        "token": _meta(token),
        "gold": {"aligned": _meta(g_al), "reference": None if g_ref is None else _meta(g_ref)},
    }


@task(name="open-calibration-run", cache_policy=NO_CACHE)
def open_calibration_run(settings: Settings) -> tuple[str, str]:
    """Configure MLflow and open the parent run ``calibrate-<UTC date>``; returns
    ``(experiment_id, run_id)``."""
    from mlflow.tracking import MlflowClient

    experiment_id = tracking.configure(settings)
    run = MlflowClient().create_run(
        experiment_id,
        run_name=f"calibrate-{datetime.now(UTC).date().isoformat()}",
        tags={"stage": "calibrate"},
    )
    client = MlflowClient()
    client.log_param(run.info.run_id, "calibration_sets", ",".join(settings.calibration.sets))
    client.log_param(run.info.run_id, "gold_file", settings.calibration.gold_file)
    client.log_param(run.info.run_id, "reference_gold_file", str(settings.calibration.reference_gold_file))
    client.log_param(run.info.run_id, "weekend_rule", settings.calibration.weekend_rule)
    return experiment_id, run.info.run_id


def _rng(settings: Settings, name: str, purpose: str) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([settings.monte_carlo.seed, zlib.crc32(f"{name}/{purpose}".encode())])
    )


def _fit(premia: pd.Series, settings: Settings, band: tuple[float, float] | None) -> Any:
    """The premium process selected by ``models.calibration.fit_premium_process`` (nested
    normal / t / jump candidates by BIC, df >= 4, no AR(1) step across holes, the band's pull
    estimated when ``band`` is given); the settings' innovations and jumps name the largest
    model allowed."""
    return cal.fit_premium_process(
        premia,
        innovations=settings.calibration.innovations,
        jumps=settings.calibration.jumps,
        max_step_gap_days=settings.calibration.max_step_gap_days,
        band=band,
    ).process


def calibration_spec(name: str, token: str, settings: Settings) -> ReserveBackedTokenSpec | None:
    """The reserve-backed token spec (``settings.scenarios.token_specs``) a calibration set
    describes: the one whose symbol ``settings.calibration.premium_for`` maps to set ``name``, else
    the one whose symbol is ``token`` upper-cased; None when no such spec is configured. Raises
    ValueError for an invalid spec file (named)."""
    symbol = next((sym for sym, s in settings.calibration.premium_for.items() if s == name), token.upper())
    for path in settings.scenarios.token_specs:
        spec = load_token_spec(Path(path))
        if isinstance(spec, ReserveBackedTokenSpec) and spec.symbol == symbol:
            return spec
    return None


def calibration_band(name: str, token: str, settings: Settings) -> dict[str, Any]:
    """The arbitrage band a calibration set is fitted with: that of the reserve-backed token spec
    (``settings.scenarios.token_specs``) whose symbol ``settings.calibration.premium_for`` maps to
    set ``name``, else whose symbol is ``token`` upper-cased
    (:func:`models.token.reserve_backed.spec_arbitrage_band`, fractions of NAV). Returns
    ``{"lower", "upper", "source"}``; lower and upper are None (no band, pull not estimated) when
    no such spec is configured. Raises ValueError for an invalid spec file (named)."""
    spec = calibration_spec(name, token, settings)
    if spec is None:
        return {"lower": None, "upper": None, "source": f"no reserve-backed token spec for {token.upper()}: no band"}
    lo, hi = spec_arbitrage_band(spec)
    return {"lower": lo, "upper": hi, "source": f"fees and settlement lag of token spec {spec.symbol}"}


def _fit_summary(process: Any, premia: pd.Series, gap: int) -> dict[str, Any]:
    info = getattr(process, "fit_info", None)
    ll = float(info.log_likelihood) if info is not None else float(process.log_likelihood(cal.gap_marked(premia, gap)))
    n_steps = cal.premium_statistics(premia, gap).n_pairs
    return {
        "params": process.to_dict(),
        "log_likelihood": ll,
        "log_likelihood_per_step": ll / max(n_steps, 1),
        "n_obs": int(len(premia)),
        "n_steps": int(n_steps),
        "n_segments": len(cal.split_segments(premia, gap)),
        "first_date": str(premia.index[0].date()),
        "last_date": str(premia.index[-1].date()),
        "premia_sha256": premia_sha256(premia),
        "method": None if info is None else info.method,
        "converged": None if info is None else bool(info.converged),
        "n_jumps": None if info is None else int(info.n_jumps),
        "standard_errors": None if info is None else dict(info.standard_errors),
        "stationary_mean": float(process.stationary_mean()),
        "stationary_sd": float(np.sqrt(process.stationary_variance())),
    }


def _log_fit_run(
    label: str,
    measured: dict[str, Any],
    fit: dict[str, Any],
    window: dict[str, str],
    metrics: dict[str, Any],
    artifact: dict[str, Any],
    experiment_id: str,
    parent_run_id: str,
) -> str:
    import mlflow

    name = measured["name"]
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{name}/{label}", nested=True, parent_run_id=parent_run_id
    ) as run:
        mlflow.set_tags(
            {
                "stage": "calibrate",
                "calibration_set": name,
                "window": label,
                "premia_sha256": fit["premia_sha256"],
                "data_sha256": measured["token"]["sha256"],
            }
        )
        params = {
            "calibration_set": name,
            "token": measured["set"]["token"],
            "oz_per_token": measured["set"]["oz_per_token"],
            "token_file": measured["token"]["file"],
            "token_sha256": measured["token"]["sha256"],
            "gold_file": measured["gold"]["aligned"]["file"],
            "gold_sha256": measured["gold"]["aligned"]["sha256"],
            "gold_clock": measured["measurement"]["clock_aligned"],
            "fit_series": measured["measurement"]["fit_series"],
            "premia_sha256": fit["premia_sha256"],
            "method": fit["method"],
            **{f"window_{k}": v for k, v in window.items()},
            "data_first_date": fit["first_date"],
            "data_last_date": fit["last_date"],
            **{
                f"param_{k}": v for k, v in fit["params"].items() if isinstance(v, (int, float, str, bool)) or v is None
            },
        }
        mlflow.log_params({tracking.clean_name(k): str(v) for k, v in params.items()})
        mlflow.log_metrics(
            tracking.finite_metrics(
                {
                    "loglik": fit["log_likelihood"],
                    "loglik_per_step": fit["log_likelihood_per_step"],
                    "n_obs": fit["n_obs"],
                    "n_steps": fit["n_steps"],
                    "n_segments": fit["n_segments"],
                    "n_jumps": fit["n_jumps"],
                    "converged": None if fit["converged"] is None else float(fit["converged"]),
                    "stationary_mean": fit["stationary_mean"],
                    "stationary_sd": fit["stationary_sd"],
                    **metrics,
                }
            )
        )
        mlflow.log_dict(artifact, "calibration.json")
        return run.info.run_id


@task(name="calibrate-premium", cache_policy=NO_CACHE)
def fit_and_score(
    measured: dict[str, Any], settings: Settings, experiment_id: str, parent_run_id: str
) -> dict[str, Any]:
    """Fit the premium process on the fit window, score it on the test window, refit on all data.

    Logs two nested MLflow runs under ``parent_run_id``: ``<set>/fit-window`` (parameters,
    log-likelihood, n, window dates, data sha256s, sample statistics, reproduction check and the
    out-of-sample scores ``oos_*`` of :func:`models.calibration.score_out_of_sample`) and
    ``<set>/full-sample`` (the calibrated parameters written to JSON). Returns the calibration
    record (JSON-ready except NaN floats) whose ``quality`` entry says whether both fits converged
    and reproduce their sample's mean, sd and lag-1 autocorrelation (a warning is logged when not).
    Raises ``ValueError`` when a window holds fewer than 30 observations (naming the set and window).
    """
    logger = get_run_logger()
    name, cset = measured["name"], measured["set"]
    premia = measured["premia"]
    gap = settings.calibration.max_step_gap_days
    windows = {
        "fit": cal.select_window(premia, cset["fit_start"], cset["fit_end"]),
        "test": cal.select_window(premia, cset["test_start"], cset["test_end"]),
    }
    for key, part in windows.items():
        if len(part) < 30:
            raise ValueError(
                f"calibration {name}: {key} window {cset[f'{key}_start']}..{cset[f'{key}_end']} holds "
                f"{len(part)} premium days (< 30); data cover {premia.index[0].date()}..{premia.index[-1].date()}"
            )
    band_info = calibration_band(name, cset["token"], settings)
    band = None if band_info["lower"] is None else (band_info["lower"], band_info["upper"])
    n_sim = settings.calibration.sim_paths

    def fit_both(b: tuple[float, float] | None) -> tuple[Any, Any, dict[str, Any]]:
        fit_p, full_p = _fit(windows["fit"], settings, b), _fit(premia, settings, b)
        checks = {
            "fit": cal.reproduction_check(
                fit_p, windows["fit"], _rng(settings, name, "repro-fit"), n_paths=n_sim, max_step_gap_days=gap
            ),
            "full": cal.reproduction_check(
                full_p, premia, _rng(settings, name, "repro-full"), n_paths=n_sim, max_step_gap_days=gap
            ),
        }
        return fit_p, full_p, checks

    def reproduces(checks: dict[str, Any]) -> bool:
        return all(v["within"] for r in checks.values() for v in r.values())

    fit_proc, full_proc, repro = fit_both(band)
    band_info["pull_estimated"] = band is not None
    if band is not None and not reproduces(repro):
        # the band's pull is kept only when the fits with it reproduce the sample's mean, sd and
        # lag-1 autocorrelation; otherwise the plain AR(1) (pull 0) is fitted, and used if it does
        alt = fit_both(None)
        if reproduces(alt[2]):
            failed = [f"{w}: {k}" for w, r in repro.items() for k, v in r.items() if not v["within"]]
            band_info.update(
                pull_estimated=False,
                reason="the fits with the band's pull did not reproduce the sample ("
                + ", ".join(failed)
                + "); the plain AR(1) did, and is used",
                rejected_full_sample_fit=full_proc.to_dict(),
            )
            fit_proc, full_proc, repro = alt
            fit_proc = fit_proc.with_band(*band, 0.0)
            full_proc = full_proc.with_band(*band, 0.0)
    fit_sum = _fit_summary(fit_proc, windows["fit"], gap)
    full_sum = _fit_summary(full_proc, premia, gap)
    oos = cal.score_out_of_sample(
        fit_proc,
        windows["test"],
        _rng(settings, name, "oos"),
        n_paths_stationary=max(100, n_sim // 2),
        max_step_gap_days=gap,
    )
    test_sum = {
        "n_obs": int(len(windows["test"])),
        "first_date": str(windows["test"].index[0].date()),
        "last_date": str(windows["test"].index[-1].date()),
        "premia_sha256": premia_sha256(windows["test"]),
    }
    stats = {
        k: cal.premium_statistics(v, gap)
        for k, v in (("fit", windows["fit"]), ("test", windows["test"]), ("full", premia))
    }

    def repro_metrics(r: dict[str, Any]) -> dict[str, float]:
        return {
            f"repro_{k}_{f}": float(v[f]) for k, v in r.items() for f in ("sample", "sim_median", "p_value", "within")
        }

    window_fit = {
        "start": cset["fit_start"],
        "end": cset["fit_end"],
        "test_start": cset["test_start"],
        "test_end": cset["test_end"],
    }
    fit_run = _log_fit_run(
        "fit-window",
        measured,
        fit_sum,
        window_fit,
        {
            **stats["fit"].flat("sample_"),
            **stats["test"].flat("test_sample_"),
            **repro_metrics(repro["fit"]),
            **{f"oos_{k}": v for k, v in oos.items()},
            "test_n_obs": test_sum["n_obs"],
        },
        {
            "fit": fit_sum,
            "test": test_sum,
            "oos_scores": oos,
            "reproduction": repro["fit"],
            "sample_statistics": stats["fit"].to_dict(),
            "test_statistics": stats["test"].to_dict(),
        },
        experiment_id,
        parent_run_id,
    )
    full_run = _log_fit_run(
        "full-sample",
        measured,
        full_sum,
        {"start": full_sum["first_date"], "end": full_sum["last_date"]},
        {**stats["full"].flat("sample_"), **repro_metrics(repro["full"])},
        {
            "fit": full_sum,
            "reproduction": repro["full"],
            "sample_statistics": stats["full"].to_dict(),
            "measurement": measured["measurement"],
        },
        experiment_id,
        parent_run_id,
    )
    logger.info(
        "calibration %s: OOS mean log predictive density %.3f, 95%% coverage %.3f, q01/q99 hit rates %.3f/%.3f",
        name,
        oos["mean_log_pred_density"],
        oos["coverage_95"],
        oos["q01_hit_rate"],
        oos["q99_hit_rate"],
    )
    quality = {
        "fit_window_converged": fit_sum["converged"],
        "full_sample_converged": full_sum["converged"],
        "reproduces_fit_window": all(v["within"] for v in repro["fit"].values()),
        "reproduces_full_sample": all(v["within"] for v in repro["full"].values()),
    }
    if not all(v is not False for v in quality.values()):
        logger.warning("calibration %s: check the fit before using it: %s", name, quality)
    return {
        "calibration_set": name,
        "token": cset["token"].upper(),
        "oz_per_token": cset["oz_per_token"],
        "premium_process": full_sum["params"],
        "premium_process_fit_window": fit_sum["params"],
        "band": band_info,
        "clock": {
            "gold": measured["measurement"]["clock_aligned"],
            "series": measured["measurement"]["fit_series"],
            "step": "one observation of the series (gold trading day for 'aligned_drop'); "
            f"no step across gaps > {gap} calendar days",
        },
        "fit_window": {k: v for k, v in fit_sum.items() if k != "params"},
        "full_sample": {k: v for k, v in full_sum.items() if k != "params"},
        "test_window": test_sum,
        "oos_scores": oos,
        "quality": quality,
        "reproduction": repro,
        "measurement": measured["measurement"],
        "data": {"token": measured["token"], "gold": measured["gold"]},
        "mlflow": {
            "experiment_id": experiment_id,
            "parent_run_id": parent_run_id,
            "fit_window_run_id": fit_run,
            "full_sample_run_id": full_run,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _jsonable(obj: Any) -> Any:
    """Replace non-finite floats by None (strict JSON) recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


@task(name="write-calibration", cache_policy=NO_CACHE)
def write_calibration(result: dict[str, Any], settings: Settings) -> str:
    """Write one calibration record as strict JSON (NaN/inf -> null) to
    ``<store_url>/calibration/<set>.json``; returns the URL."""
    return storage.write_json(Catalog.of(settings).calibration(result["calibration_set"]), _jsonable(result), settings)


@task(name="close-calibration-run", cache_policy=NO_CACHE)
def close_calibration_run(
    parent_run_id: str, results: list[dict[str, Any]], urls: list[str], skipped: list[str], settings: Settings
) -> dict[str, Any]:
    """Log the comparison table on the parent run, finish it and return the flow's summary
    ``{"parent_run_id", "calibrations": {set: {json_url, params, oos scores}}, "skipped"}``.

    Raises ``ValueError`` (after marking the run FAILED) when no set could be calibrated."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if not results:
        client.set_terminated(parent_run_id, status="FAILED")
        raise ValueError(
            f"no calibration set could be calibrated (skipped: {', '.join(skipped) or 'none configured'}); "
            "check data_dir and calibration_sets"
        )
    table = {
        r["calibration_set"]: {
            "json_url": url,
            "premium_process": r["premium_process"],
            "oos_scores": r["oos_scores"],
            "fit_window": {k: r["fit_window"][k] for k in ("first_date", "last_date", "n_obs", "log_likelihood")},
            "test_window": r["test_window"],
            "quality": r["quality"],
        }
        for r, url in zip(results, urls, strict=True)
    }
    client.log_dict(parent_run_id, _jsonable({"calibrations": table, "skipped": skipped}), "calibration_summary.json")
    for r in results:
        client.log_dict(parent_run_id, _jsonable(r["measurement"]), f"measurement/{r['calibration_set']}.json")
    client.set_tag(parent_run_id, "skipped", ",".join(skipped) or "none")
    client.set_terminated(parent_run_id)
    return {"parent_run_id": parent_run_id, "calibrations": _jsonable(table), "skipped": skipped}


@task(name="validate-premium-against-history", cache_policy=NO_CACHE)
def validate_against_history(
    result: dict[str, Any], measured: dict[str, Any], gold: dict[str, PriceInput | None], settings: Settings
) -> dict[str, Any]:
    """The token model against its own history (:mod:`models.premium_validation`).

    The spec of the set (:func:`calibration_spec`) with the premium process fitted on the fit
    window replays the real gold path (the aligned gold closes) of the fit window (in sample) and
    of the test window (out of sample), and with the full-sample process (the one the stress test
    uses) the whole sample, ``settings.calibration.sim_paths`` paths each, on the calendar-day
    clock; the simulated premium is set beside the observed one on the observed days, and each
    process's one-day-ahead 1-99% band is backtested on the same window. The verdict is out of
    sample (:func:`models.premium_validation.verdict`). Returns the ``model_vs_history`` record,
    or ``{"status": "not validated", "reason"}`` without a spec or gold series.
    """
    name, cset = measured["name"], measured["set"]
    spec = calibration_spec(name, cset["token"], settings)
    if spec is None:
        return {"status": "not validated", "reason": f"no reserve-backed token spec for {cset['token'].upper()}"}

    def with_premium(params: dict[str, Any], label: str) -> ReserveBackedTokenSpec:
        data = spec.model_dump(mode="json")
        data["secondary"]["premium"] = dict(params)
        out = parse_token_spec(data, where=f"token spec {spec.symbol} with the {label} premium of {name}")
        assert isinstance(out, ReserveBackedTokenSpec)
        return out

    fit_params, full_params = result["premium_process_fit_window"], result["premium_process"]
    gold_closes = gold["aligned"]["series"] if gold["aligned"] is not None else None
    if gold_closes is None:
        return {"status": "not validated", "reason": "no gold series on the token clock"}
    premia = measured["premia"]
    gap = settings.calibration.max_step_gap_days
    out: dict[str, Any] = {
        "status": "validated",
        "token": spec.symbol,
        "process": "in and out of sample: fitted on the fit window; full sample: fitted on all data (the stress test's)",
        "paths": settings.calibration.sim_paths,
        "clock": "calendar days; gold closes on trading days carried over weekends and holidays; "
        f"primary market per the spec's market_hours ({spec.primary.market_hours})",
    }
    first, last = str(premia.index[0].date()), str(premia.index[-1].date())
    for label, params, start, end in (
        ("in_sample", fit_params, cset["fit_start"], cset["fit_end"]),
        ("out_of_sample", fit_params, cset["test_start"], cset["test_end"]),
        ("full_sample", full_params, first, last),
    ):
        observed = cal.select_window(premia, start, end)
        tok = with_premium(params, "fit-window" if params is fit_params else "full-sample")
        sim = pv.replay_premium(
            tok, gold_closes, start, end, settings.calibration.sim_paths, _rng(settings, name, label)
        )
        out[label] = {
            "window": [str(start), str(end)],
            "distribution": pv.distribution_comparison(sim, observed),
            "band_backtest": pv.premium_band_backtest(
                PremiumProcess.from_dict(params), observed, max_step_gap_days=gap
            ),
        }
    out.update(pv.verdict(out["out_of_sample"]["band_backtest"], out["out_of_sample"]["distribution"]))
    get_run_logger().info(
        "model vs history %s (%s): %s%s",
        name,
        spec.symbol,
        out["verdict"],
        "; " + "; ".join(out["reasons"]) if out["reasons"] else "",
    )
    return out


@task(name="measure-clock-noise", cache_policy=NO_CACHE)
def measure_clock_noise(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """Clock noise of the observed premia (:func:`models.premium_validation.clock_noise`) for
    each pair of calibration sets of different tokens whose premia share at least 10 days;
    ``{"<set a>/<set b>": record}``."""
    out: dict[str, Any] = {}
    for i, a in enumerate(measured):
        for b in measured[i + 1 :]:
            if a["set"]["token"] == b["set"]["token"]:
                continue
            common = a["premia"].index.intersection(b["premia"].index)
            if len(common) >= 10:
                out[f"{a['name']}/{b['name']}"] = pv.clock_noise(a["premia"], b["premia"])
    return out
