"""Training tasks: volatility and tail models on daily LBMA PM log returns, tracked in MLflow.

Candidates (GARCH(1,1) and GJR-GARCH(1,1,1) with Student-t innovations, simulated with t draws
or filtered historical simulation) are fitted on a fitting window and scored on the validation
window after it (:mod:`models.selection`); the champion is refitted on the data before the
backtest hold-out, backtested on the hold-out, and refitted on the full sample for the Monte Carlo.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.io import tracking
from goldstress.io.validation import curated_gold_returns
from goldstress.settings import Settings, env_name
from models.evt import GpdTail, fit_pot
from models.predictors import fit_predictor, make_features, walk_forward_evaluate
from models.selection import (
    MIN_FIT_DAYS,
    TrainingWindows,
    backtest_on_holdout,
    score_on_validation,
    split_windows,
)
from models.volatility import GarchFit, fit_garch

CANDIDATES: tuple[tuple[str, str], ...] = (("garch", "t"), ("gjr", "t"), ("garch", "fhs"), ("gjr", "fhs"))
"""(volatility kind, innovation scheme) pairs competing for champion."""


@task(name="load-gold-returns", cache_policy=NO_CACHE)
def load_gold_returns(settings: Settings) -> tuple[pd.Series, dict[str, Any]]:
    """:func:`goldstress.io.validation.curated_gold_returns` as a task: daily log returns of the
    last good curated gold table and their lineage."""
    return curated_gold_returns(settings)


@task(name="split-training-windows", cache_policy=NO_CACHE)
def training_windows(returns: pd.Series, settings: Settings) -> tuple[pd.Series, TrainingWindows]:
    """The GARCH-family training sample (returns from ``training.vol_train_start``) and its
    fitting, validation and hold-out windows (:func:`models.selection.split_windows`).

    ``returns`` are daily log returns (fractions) on a UTC date index. Raises ``ValueError``
    naming the settings (``GOLDSTRESS_CHAMPION_VALIDATION_DAYS``,
    ``GOLDSTRESS_BACKTEST_HOLDOUT_DAYS``, ``GOLDSTRESS_VOL_TRAIN_START``) when the sample is too
    short to leave ``models.selection.MIN_FIT_DAYS`` (500) returns to fit on.
    """
    tr = settings.training
    if tr.vol_train_start:
        returns = returns[returns.index >= pd.Timestamp(tr.vol_train_start, tz="UTC")]
    n_fit = returns.size - tr.champion_validation_days - tr.backtest_holdout_days
    if n_fit < MIN_FIT_DAYS:
        raise ValueError(
            f"{env_name('training', 'champion_validation_days')}={tr.champion_validation_days} and "
            f"{env_name('training', 'backtest_holdout_days')}={tr.backtest_holdout_days} leave {n_fit} of the "
            f"{returns.size} returns from {env_name('training', 'vol_train_start')}={tr.vol_train_start} to fit on; "
            f"need at least {MIN_FIT_DAYS}: shorten the windows or start earlier"
        )
    return returns, split_windows(returns.index, tr.champion_validation_days, tr.backtest_holdout_days)


@task(name="fit-volatility-candidate", cache_policy=NO_CACHE)
def fit_candidate(
    returns: pd.Series,
    windows: TrainingWindows,
    meta: dict[str, Any],
    kind: str,
    innovations: str,
    settings: Settings,
    experiment_id: str,
    parent_run_id: str,
) -> dict[str, Any]:
    """Fit one candidate on the fitting window and score it on the validation window
    (:func:`models.selection.score_on_validation`; the hold-out is not read).

    ``returns`` and ``windows`` come from :func:`training_windows`. Logs a nested MLflow run with
    the windows, the fit's parameters, log-likelihood and AIC/BIC, and the validation scores and
    test statistics. Returns ``name``, ``kind``, ``innovations``, ``run_id``, ``fit_params``,
    ``bic`` (of the fit), ``validation`` (backtest per level), ``passes_kupiec`` and ``score``
    (the inputs of :func:`models.risk.select_champion`).
    """
    import mlflow

    scored = score_on_validation(returns, windows, kind, innovations, settings.risk.var_levels)
    fit = scored.fit
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=scored.name, nested=True, parent_run_id=parent_run_id
    ) as run:
        mlflow.set_tags({"candidate": scored.name, "data_sha256": meta["data_sha256"], "stage": "train"})
        mlflow.log_params(
            {
                "kind": kind,
                "innovations": innovations,
                "dist": "studentst",
                "mean": "constant",
                "validation_days": windows.validation.n_returns,
                "holdout_days": windows.holdout.n_returns,
                **tracking.window_params(windows.to_dict()),
                **{k: v for k, v in meta.items() if k != "n_returns"},
                **{f"fit_window_param_{k}": f"{v:.6g}" for k, v in fit.params.items()},
            }
        )
        metrics: dict[str, float] = {
            "fit_window_loglik": fit.loglik,
            "fit_window_aic": fit.aic,
            "fit_window_bic": fit.bic,
            "n_returns": meta["n_returns"],
            "validation_score_quantile_loss": scored.score,
            "validation_passes_kupiec": float(scored.passes_kupiec),
        }
        for lvl, bt in scored.backtests.items():
            tag = lvl.replace("0.", "")
            for key in ("exception_rate", "kupiec_p_value", "christoffersen_p_value", "quantile_loss", "n_exceptions"):
                metrics[f"validation_var{tag}_{key}"] = bt[key]
        mlflow.log_metrics(tracking.finite_metrics(metrics))
        mlflow.log_dict(
            {"windows": windows.to_dict(), "fit_window_fit": fit.to_dict(), "validation": scored.backtests},
            "candidate.json",
        )
        run_id = run.info.run_id
    return {
        "name": scored.name,
        "kind": kind,
        "innovations": innovations,
        "run_id": run_id,
        "fit_params": fit.params,
        "bic": fit.bic,
        "validation": scored.backtests,
        "passes_kupiec": scored.passes_kupiec,
        "score": scored.score,
    }


@task(name="backtest-and-refit-champion", cache_policy=NO_CACHE)
def fit_champion(
    returns: pd.Series, windows: TrainingWindows, best: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The selected candidate refitted on the data before the hold-out and backtested on the
    hold-out (:func:`models.selection.backtest_on_holdout`), and refitted on the full sample
    (the fit the Monte Carlo simulates).

    ``returns`` and ``windows`` come from :func:`training_windows`, ``best`` from
    :func:`models.risk.select_champion`. Returns ``backtested_fit`` and ``full_sample_fit``
    (``GarchFit.to_dict``) and ``holdout_backtest`` (per level, :func:`models.selection.var_backtest`).
    """
    held = backtest_on_holdout(returns, windows, best["kind"], best["innovations"], settings.risk.var_levels)
    full = fit_garch(returns.to_numpy(), kind=best["kind"])
    return {"backtested_fit": held.fit.to_dict(), "full_sample_fit": full.to_dict(), "holdout_backtest": held.backtests}


@task(name="fit-loss-tail", cache_policy=NO_CACHE)
def fit_tail(
    returns: pd.Series, meta: dict[str, Any], settings: Settings, experiment_id: str, parent_run_id: str
) -> dict[str, Any]:
    """Peaks-over-threshold GPD fit of daily losses (``-log return``), logged to MLflow.

    McNeil & Frey (2000), J. Empirical Finance 7; QRM (McNeil, Frey, Embrechts 2005) §7.2.
    """
    import mlflow

    tail = fit_pot(-returns.to_numpy(), threshold_quantile=settings.training.evt_threshold_quantile)
    metrics = {"xi": tail.xi, "beta": tail.beta, "threshold": tail.threshold, "n_exceed": tail.n_exceed}
    for level in (0.99, 0.995, 0.999):
        metrics[f"var_{level}"] = tail.var(level)
        if tail.xi < 1:
            metrics[f"es_{level}"] = tail.es(level)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name="evt_pot", nested=True, parent_run_id=parent_run_id
    ) as run:
        mlflow.set_tags({"candidate": "evt_pot", "data_sha256": meta["data_sha256"], "stage": "train"})
        mlflow.log_params({"threshold_quantile": settings.training.evt_threshold_quantile, **meta})
        mlflow.log_metrics(tracking.finite_metrics({f"unconditional_1d_{k}": v for k, v in metrics.items()}))
        mlflow.log_dict(tail.to_dict(), "gpd_tail.json")
        run_id = run.info.run_id
    return {"run_id": run_id, "tail": tail.to_dict(), "metrics": metrics}


@task(name="fit-volatility-predictor", cache_policy=NO_CACHE)
def fit_vol_predictor(
    returns: pd.Series, meta: dict[str, Any], settings: Settings, experiment_id: str, parent_run_id: str
) -> dict[str, Any]:
    """scikit-learn forecast of forward realised volatility, evaluated walk-forward against the
    naive baseline (trailing realised volatility), fitted on all data and logged to MLflow."""
    import mlflow
    import mlflow.sklearn
    import sklearn
    from threadpoolctl import threadpool_limits

    X, y = make_features(returns, window_days=settings.training.rv_window_days)
    # One OpenMP thread: the small histogram-GBM fits here are dominated by thread start-up and
    # spin-waiting; measured on 2 cores, 5-fold walk-forward takes 0.53 s with 1 thread, 3.3 s
    # with 2, and minutes when other processes compete for the cores.
    with threadpool_limits(limits=1, user_api="openmp"):
        wf = walk_forward_evaluate(X, y, n_splits=5, window_days=settings.training.rv_window_days)
        est = fit_predictor(X, y)
    summary = wf.to_dict() if hasattr(wf, "to_dict") else dict(wf.__dict__)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name="vol_predictor", nested=True, parent_run_id=parent_run_id
    ) as run:
        mlflow.set_tags({"candidate": "vol_predictor", "data_sha256": meta["data_sha256"], "stage": "train"})
        mlflow.log_params(
            {
                "target": f"forward_{settings.training.rv_window_days}d_realised_vol_annualised",
                "estimator": type(est).__name__,
                "features": ",".join(X.columns),
                "cv": "expanding walk-forward, 5 folds, gap=window",
                **meta,
            }
        )
        mlflow.log_metrics(
            tracking.finite_metrics({k: v for k, v in summary.items() if not isinstance(v, (list, dict))})
        )
        mlflow.log_dict(json.loads(json.dumps(summary, default=str)), "walk_forward.json")
        # skops serialisation; the tree predictor type is ours (trained just above), so trusted
        mlflow.sklearn.log_model(
            est,
            name="vol_predictor",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
        )
        run_id = run.info.run_id
    return {"run_id": run_id, "walk_forward": json.loads(json.dumps(summary, default=str))}


def pyfunc_signature() -> Any:
    """The champion pyfunc's input schema: one row of ``n_paths``, ``horizon_days`` and ``seed``
    (integers). Given explicitly because MLflow cannot infer it from ``DataFrame`` type hints."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("long", c) for c in ("n_paths", "horizon_days", "seed")]))


class _NoCloudpickleNotice(logging.Filter):
    """Drops MLflow's notice that a ``python_model`` object is serialised with CloudPickle
    (logged at WARNING by ``mlflow.pyfunc.log_model`` for every object model). The champion pyfunc
    is our own class, logged and loaded only from the project's registry; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Passing a Python object as `python_model`")


def _register_version(client: Any, name: str, info: Any, run_id: str) -> Any:
    """Register ``info`` (a logged model) as a new version of ``name``, creating the registered
    model when absent, through the client (``mlflow.register_model`` prints to stderr)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    return client.create_model_version(name, source=info.model_uri, run_id=run_id, model_id=info.model_id)


@task(name="register-champion", cache_policy=NO_CACHE)
def register_champion(
    best: dict[str, Any],
    fitted: dict[str, Any],
    candidates: list[dict[str, Any]],
    windows: TrainingWindows,
    tail: dict[str, Any],
    meta: dict[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    """Log the champion as an MLflow pyfunc in its candidate run, register it and point the
    ``champion`` alias at the new version.

    ``best`` is the selected candidate (:func:`fit_candidate` output), ``fitted`` its
    :func:`fit_champion` output, ``candidates`` all candidates (their validation scores are
    recorded). The registered model simulates the full-sample fit; its metadata carries the
    windows, the validation scores, the backtested fit and the hold-out backtest, which are also
    logged to the candidate run (:func:`goldstress.io.tracking.champion_log_items`) beside the
    full-sample fit's log-likelihood and AIC/BIC. Returns name, version, run id, candidate and
    ``record`` (:class:`goldstress.records.ChampionRecord` as JSON).
    """
    import arch
    import mlflow
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    from goldstress.io.champion import Champion, RegisteredChampion, training_meta
    from goldstress.io.champion_pyfunc import GoldReturnsPyfunc

    full = GarchFit.from_dict(fitted["full_sample_fit"])
    champion = Champion(
        name=best["name"],
        fit=full,
        innovations=best["innovations"],
        tail=GpdTail.from_dict(tail["tail"]),
        meta={
            **meta,
            "candidate_run_id": best["run_id"],
            **training_meta(windows, candidates, fitted["backtested_fit"]["params"], fitted["holdout_backtest"]),
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "champion.json"
        path.write_text(json.dumps(champion.to_dict()), encoding="utf-8")
        notice = _NoCloudpickleNotice()
        logging.getLogger("mlflow.pyfunc").addFilter(notice)
        try:
            with mlflow.start_run(run_id=best["run_id"]), warnings.catch_warnings():
                # the signature is given; an input example would only be written beside it
                warnings.filterwarnings(
                    "ignore",
                    message=r".*An input example was not provided when logging the model",
                    category=UserWarning,
                )
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=GoldReturnsPyfunc(),
                    artifacts={"champion": str(path)},
                    signature=pyfunc_signature(),
                    pip_requirements=[
                        f"mlflow=={mlflow.__version__}",
                        f"arch=={arch.__version__}",
                        f"numpy=={np.__version__}",
                        f"pandas=={pd.__version__}",
                    ],
                )
        finally:
            logging.getLogger("mlflow.pyfunc").removeFilter(notice)
    client = MlflowClient()
    version = _register_version(client, settings.tracking.registered_model, info, best["run_id"])
    client.set_registered_model_alias(
        settings.tracking.registered_model, settings.tracking.champion_alias, version.version
    )
    client.set_model_version_tag(settings.tracking.registered_model, version.version, "candidate", best["name"])
    client.set_model_version_tag(
        settings.tracking.registered_model, version.version, "data_sha256", meta["data_sha256"]
    )
    record = RegisteredChampion(
        model=champion, registered_model=settings.tracking.registered_model, version=str(version.version)
    ).record()
    params, metrics = tracking.champion_log_items(record)
    backtested = fitted["backtested_fit"]
    metrics.update(
        {
            "loglik": full.loglik,
            "aic": full.aic,
            "bic": full.bic,
            "backtested_fit_loglik": backtested["loglik"],
            "backtested_fit_aic": backtested["aic"],
            "backtested_fit_bic": backtested["bic"],
        }
    )
    tracking.log_items(client, best["run_id"], params, metrics)
    return {
        "name": settings.tracking.registered_model,
        "version": str(version.version),
        "run_id": best["run_id"],
        "candidate": best["name"],
        "record": record.model_dump(mode="json"),
    }


@task(name="open-training-run", cache_policy=NO_CACHE)
def open_training_run(meta: dict[str, Any], settings: Settings) -> tuple[str, str]:
    """Configure MLflow and open the parent run of one training; returns (experiment id, run id)."""
    from mlflow.tracking import MlflowClient

    experiment_id = tracking.configure(settings)
    run = MlflowClient().create_run(
        experiment_id,
        run_name=f"train-{meta['data_last_date']}",
        tags={"stage": "train", "data_sha256": meta["data_sha256"]},
    )
    client = MlflowClient()
    for key, value in meta.items():
        client.log_param(run.info.run_id, key, value)
    return experiment_id, run.info.run_id


@task(name="close-training-run", cache_policy=NO_CACHE)
def close_training_run(
    parent_run_id: str,
    champion: dict[str, Any],
    candidates: list[dict[str, Any]],
    tail: dict[str, Any],
    predictor: dict[str, Any],
    meta: dict[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    """Record the comparison table and the champion on the parent run and finish it.

    ``champion`` is :func:`register_champion` output; its record's windows, validation scores,
    hold-out backtest and both parameter sets are logged to the parent run as on the candidate
    run (:func:`goldstress.io.tracking.champion_log_items`). Returns the training summary
    (champion, candidates with their validation scores, tail and predictor run ids) that the
    flow returns.
    """
    from mlflow.tracking import MlflowClient

    from goldstress.records import ChampionRecord

    client = MlflowClient()
    table = [
        {
            "candidate": c["name"],
            "fit_window_bic": c["bic"],
            "validation_quantile_loss": c["score"],
            "passes_kupiec": c["passes_kupiec"],
            **{f"validation_exception_rate_{lvl}": bt["exception_rate"] for lvl, bt in c["validation"].items()},
        }
        for c in candidates
    ]
    client.log_dict(parent_run_id, {"candidates": table, "champion": champion}, "model_selection.json")
    params, metrics = tracking.champion_log_items(ChampionRecord.model_validate(champion["record"]))
    tracking.log_items(client, parent_run_id, params, metrics)
    client.set_tag(parent_run_id, "champion", champion["candidate"])
    client.set_tag(parent_run_id, "champion_version", champion["version"])
    client.set_terminated(parent_run_id)
    return {
        "parent_run_id": parent_run_id,
        "champion": champion,
        "candidates": table,
        "tail_run_id": tail["run_id"],
        "predictor_run_id": predictor["run_id"],
        "walk_forward": predictor["walk_forward"],
        "data": meta,
    }
