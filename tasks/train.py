"""Training tasks: volatility and tail models on daily LBMA PM log returns, tracked in MLflow.

Candidates are GARCH(1,1) and GJR-GARCH(1,1,1) with Student-t innovations, each simulated either
with t innovations or by filtered historical simulation. Each candidate is fitted on the data
before a hold-out window, backtested on the hold-out with its 1-day VaR, and refitted on the full
sample for prediction. The champion is the candidate with the lowest hold-out quantile (tick)
loss at 95% and 99% among those whose exception counts pass Kupiec's test at the 5% level
(quantile loss is the consistent scoring function for quantiles: Gneiting 2011, JASA 106(494)).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.io import tracking
from goldstress.io.validation import curated_gold_returns
from goldstress.settings import Settings
from models.evt import GpdTail, fit_pot
from models.predictors import fit_predictor, make_features, walk_forward_evaluate
from models.risk import (
    basel_traffic_light,
    christoffersen_independence,
    kupiec_pof,
    quantile_loss,
)
from models.volatility import GarchFit, fit_garch, one_day_var_forecasts

CANDIDATES: tuple[tuple[str, str], ...] = (("garch", "t"), ("gjr", "t"), ("garch", "fhs"), ("gjr", "fhs"))
"""(volatility kind, innovation scheme) pairs competing for champion."""


@task(name="load-gold-returns", cache_policy=NO_CACHE)
def load_gold_returns(settings: Settings) -> tuple[pd.Series, dict[str, Any]]:
    """:func:`goldstress.io.validation.curated_gold_returns` as a task: daily log returns of the
    last good curated gold table and their lineage."""
    return curated_gold_returns(settings)


def _backtest(returns_out: np.ndarray, var: np.ndarray, level: float) -> dict[str, float | str]:
    exceptions = (-returns_out) > var
    n_exc = int(exceptions.sum())
    lr_pof, p_pof = kupiec_pof(n_exc, exceptions.size, level)
    lr_ind, p_ind = christoffersen_independence(exceptions)
    last = exceptions[-250:]
    return {
        "n_obs": int(exceptions.size),
        "n_exceptions": n_exc,
        "exception_rate": n_exc / exceptions.size,
        "kupiec_lr": float(lr_pof),
        "kupiec_p_value": float(p_pof),
        "christoffersen_lr": float(lr_ind),
        "christoffersen_p_value": float(p_ind),
        "quantile_loss": quantile_loss(returns_out, var, level),
        "basel_exceptions_last_250d": int(last.sum()),
        "basel_zone_last_250d": basel_traffic_light(int(last.sum()), int(last.size), 0.99) if level == 0.99 else "n/a",
    }


@task(name="fit-volatility-candidate", cache_policy=NO_CACHE)
def fit_candidate(
    returns: pd.Series,
    meta: dict[str, Any],
    kind: str,
    innovations: str,
    settings: Settings,
    experiment_id: str,
    parent_run_id: str,
) -> dict[str, Any]:
    """Fit one candidate on the pre-hold-out sample, backtest it on the hold-out, refit on all.

    Logs a nested MLflow run with parameters, log-likelihood, AIC/BIC, hold-out VaR exception
    rates and test statistics, and the training data's hash and date range. Returns a dict with
    ``run_id``, ``fit`` (full-sample fit as dict), ``backtest`` (per level) and ``score``.
    """
    import mlflow

    holdout = settings.training.backtest_holdout_days
    if settings.training.vol_train_start:
        returns = returns[returns.index >= pd.Timestamp(settings.training.vol_train_start, tz="UTC")]
    if returns.size <= holdout + 500:
        raise ValueError(
            f"backtest_holdout_days={holdout} leaves fewer than 500 returns to fit on ({returns.size} in all)"
        )
    r = returns.to_numpy()
    r_in, r_out = r[:-holdout], r[-holdout:]
    fit_in = fit_garch(r_in, kind=kind)
    fit_all = fit_garch(r, kind=kind)
    backtests = {}
    for level in settings.risk.var_levels:
        var = one_day_var_forecasts(fit_in, r_out, level, innovations=innovations)
        backtests[f"{level:.2f}"] = _backtest(r_out, var, level)
    passed = all(bt["kupiec_p_value"] >= 0.05 for bt in backtests.values())
    score = sum(bt["quantile_loss"] for bt in backtests.values())
    name = f"{kind}_{innovations}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True, parent_run_id=parent_run_id) as run:
        mlflow.set_tags({"candidate": name, "data_sha256": meta["data_sha256"], "stage": "train"})
        mlflow.log_params(
            {
                "kind": kind,
                "innovations": innovations,
                "dist": "studentst",
                "mean": "constant",
                "holdout_days": holdout,
                "train_start": str(returns.index[0].date()),
                "holdout_start": str(returns.index[-holdout].date()),
                **{k: v for k, v in meta.items() if k != "n_returns"},
                **{f"param_{k}": f"{v:.6g}" for k, v in fit_all.params.items()},
            }
        )
        metrics: dict[str, float] = {
            "loglik": fit_all.loglik,
            "aic": fit_all.aic,
            "bic": fit_all.bic,
            "n_returns": meta["n_returns"],
            "insample_fit_loglik": fit_in.loglik,
            "holdout_score_quantile_loss": score,
            "holdout_passes_kupiec": float(passed),
        }
        for lvl, bt in backtests.items():
            tag = lvl.replace("0.", "")
            for key in ("exception_rate", "kupiec_p_value", "christoffersen_p_value", "quantile_loss", "n_exceptions"):
                metrics[f"holdout_var{tag}_{key}"] = bt[key]
        mlflow.log_metrics(tracking.finite_metrics(metrics))
        mlflow.log_dict(
            {"fit_full_sample": fit_all.to_dict(), "fit_pre_holdout_params": fit_in.params, "backtest": backtests},
            "candidate.json",
        )
        run_id = run.info.run_id
    return {
        "name": name,
        "kind": kind,
        "innovations": innovations,
        "run_id": run_id,
        "fit": fit_all.to_dict(),
        "fit_params": fit_all.params,
        "bic": fit_all.bic,
        "backtest": backtests,
        "passes_kupiec": passed,
        "score": score,
    }


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


@task(name="register-champion", cache_policy=NO_CACHE)
def register_champion(
    best: dict[str, Any], tail: dict[str, Any], meta: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """Log the champion as an MLflow pyfunc in its candidate run, register it and point the
    ``champion`` alias at the new version. Returns name, version and run id."""
    import arch
    import mlflow
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    from goldstress.io.champion import Champion, GoldReturnsPyfunc

    champion = Champion(
        name=best["name"],
        fit=GarchFit.from_dict(best["fit"]),
        innovations=best["innovations"],
        tail=GpdTail.from_dict(tail["tail"]),
        meta={**meta, "candidate_run_id": best["run_id"], "holdout_backtest": best["backtest"]},
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "champion.json"
        path.write_text(json.dumps(champion.to_dict()), encoding="utf-8")
        with mlflow.start_run(run_id=best["run_id"]):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=GoldReturnsPyfunc(),
                artifacts={"champion": str(path)},
                pip_requirements=[
                    f"mlflow=={mlflow.__version__}",
                    f"arch=={arch.__version__}",
                    f"numpy=={np.__version__}",
                    f"pandas=={pd.__version__}",
                ],
            )
    version = mlflow.register_model(info.model_uri, settings.tracking.registered_model)
    client = MlflowClient()
    client.set_registered_model_alias(
        settings.tracking.registered_model, settings.tracking.champion_alias, version.version
    )
    client.set_model_version_tag(settings.tracking.registered_model, version.version, "candidate", best["name"])
    client.set_model_version_tag(
        settings.tracking.registered_model, version.version, "data_sha256", meta["data_sha256"]
    )
    return {
        "name": settings.tracking.registered_model,
        "version": str(version.version),
        "run_id": best["run_id"],
        "candidate": best["name"],
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

    Returns the training summary (champion, candidates with their hold-out backtests, tail and
    predictor run ids) that the flow returns.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    table = [
        {
            "candidate": c["name"],
            "bic": c["bic"],
            "holdout_quantile_loss": c["score"],
            "passes_kupiec": c["passes_kupiec"],
            **{f"exception_rate_{lvl}": bt["exception_rate"] for lvl, bt in c["backtest"].items()},
        }
        for c in candidates
    ]
    client.log_dict(parent_run_id, {"candidates": table, "champion": champion}, "model_selection.json")
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
