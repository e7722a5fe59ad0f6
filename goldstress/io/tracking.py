"""MLflow plumbing: one configured tracking store, clean metric names, stable experiments.

The tracking URI and artifact location come from settings (default: a SQLite backend store and
an artifact folder under ``var/``; any MLflow tracking URI works). Experiments are created with
an explicit artifact location, because MLflow's default experiment keeps whatever path first
created it (MLflow docs, "Where Runs Are Recorded").
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from goldstress.records import ChampionRecord
from goldstress.settings import Settings

_INVALID = re.compile(r"[^0-9A-Za-z_\-. /]")

REACH_TIMEOUT_S = 5.0
"""How long :func:`require_reachable` waits for a tracking server to answer."""
HTTP_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
"""MLflow client retry settings used unless the environment sets them (MLflow's defaults retry
a dead server for minutes)."""


EXPERIMENT_TAGS = {
    "mlflow.note.content": "goldstress stress tests of gold-backed tokens. Runs: `stress-<run id>` (one per "
    "stress test: its settings as parameters, metrics grouped as `<TOKEN>/<metric>`, the report as "
    "artifacts), `train-<data date>` with one child per candidate model, `calibrate-<date>` with one "
    "child per premium fit.",
    "mlflow.experimentKind": "custom_model_development",
}
"""Tags of the experiment at creation: its description (``mlflow.note.content``) and the kind
that makes the MLflow UI open it on its runs (``mlflow.experimentKind``)."""


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server does not answer (one-line message naming it and its URL)."""


def _public_uri(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{host}{port}").geturl()


def require_reachable(settings: Settings, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Fail fast when the tracking URI is an ``http(s)`` server that does not answer within
    ``timeout_s`` (any HTTP answer counts as reachable; local stores always are). Call it at the
    start of a stage, before anything is written. Sets :data:`HTTP_RETRY_DEFAULTS` where the
    environment does not. ``TrackingUnavailable`` names the server and its URL (no credentials).
    """
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    uri = settings.tracking.tracking_uri
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailable(
            f"MLflow tracking server unreachable at {_public_uri(uri)} ({reason}): start it or set "
            "GOLDSTRESS_MLFLOW_TRACKING_URI; nothing was written"
        ) from None


_DATABASE_STORE_MODULES = (
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.pyfunc",
)
"""What the first read of a database-backed registry imports (the champion's load): about 1.3 s of
CPU here, most of it MLflow's SQLAlchemy stores."""


def import_store_in_background(settings: Settings) -> threading.Thread | None:
    """Import, in a daemon thread started now, the MLflow modules the first registry read of a
    database tracking URI (``sqlite``, ``postgresql``, ``mysql``, ``mssql``) imports
    (:data:`_DATABASE_STORE_MODULES`), so that they load while this process waits for something
    else (the ephemeral Prefect server's start) instead of inside the run's first task: the
    simulate flow's ``load-champion`` took 1.3-1.4 s with them and 0.6-0.7 s after them.
    Call it only where this process is about to wait, not import (two threads importing the
    same packages at once can trip Python's import deadlock check). Returns the thread, or None
    for any other URI (an HTTP server's client store is cheap). An import that fails is logged
    at DEBUG and left to the real call, which raises it. Source:
    docs.python.org/3/library/threading.html (daemon threads)."""
    scheme = urlsplit(settings.tracking.tracking_uri).scheme.split("+", 1)[0]
    # MLflow's own list (mlflow.store.db.db_types.DATABASE_ENGINES) would import MLflow, 1.4 s,
    # in this thread: the very wait this function exists to avoid
    if scheme not in ("sqlite", "postgresql", "mysql", "mssql"):
        return None

    def load() -> None:
        for name in _DATABASE_STORE_MODULES:
            try:
                importlib.import_module(name)
            except Exception as exc:  # the real import raises it again, where it is handled
                logging.getLogger(__name__).debug("background import of %s failed: %s", name, exc)

    thread = threading.Thread(target=load, name="goldstress-mlflow-imports", daemon=True)
    thread.start()
    return thread


def clean_name(name: str) -> str:
    """Map a parameter/metric name onto MLflow's allowed characters.

    MLflow accepts alphanumerics, underscores, dashes, periods, spaces and slashes; arch's names
    such as ``alpha[1]`` are invalid there, so ``alpha[1]`` becomes ``alpha_1``.
    """
    return _INVALID.sub("_", name).strip("_") or "unnamed"


def finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Keep the finite numeric entries of ``metrics`` with cleaned names (MLflow rejects NaN/inf
    in some stores and a NaN metric is no information)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or value is None:
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            out[clean_name(key)] = v
    return out


def configure(settings: Settings) -> str:
    """Point MLflow at the configured store and return the experiment id (created if absent).

    Creates the parent folder of a local ``sqlite:///`` store. Returns the id of
    ``settings.tracking.experiment``, created with ``settings.tracking.artifact_location``.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = settings.tracking.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(settings.tracking.experiment)
    if exp is not None:
        return exp.experiment_id
    location = settings.tracking.artifact_location
    if "://" not in location:
        Path(location).mkdir(parents=True, exist_ok=True)
        location = Path(location).resolve().as_uri()
    return client.create_experiment(settings.tracking.experiment, artifact_location=location, tags=EXPERIMENT_TAGS)


def window_params(windows: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """MLflow parameters of named windows: ``{"fit": {"first_date": ..}}`` becomes
    ``{"window_fit_first_date": ..}`` (one key per window field)."""
    return {f"window_{name}_{key}": value for name, w in windows.items() for key, value in w.items()}


def champion_log_items(record: ChampionRecord) -> tuple[dict[str, str], dict[str, float]]:
    """The MLflow parameters and metrics of a champion: what the summary reports of it.

    Parameters (strings): ``champion_candidate``, ``champion_innovations``, the windows
    (:func:`window_params`), ``backtested_param_<name>`` (the fit before the hold-out) and
    ``full_sample_param_<name>`` (the refit the Monte Carlo simulates), 10 significant digits,
    daily log-return units, and ``holdout_var99_basel_zone_last_250d``. Metrics:
    ``validation_score_<candidate>`` (summed quantile loss on the validation window) and
    ``validation_passes_kupiec_<candidate>`` (1/0) per candidate, and ``holdout_var<level>_<key>``
    for the numbers of the hold-out backtest (breaches, expected breaches, Kupiec 1995 and
    Christoffersen 1998 statistics and p-values, quantile loss, Basel 1996 count). Parts a record
    of an older run lacks are left out.
    """
    params: dict[str, str] = {"champion_candidate": record.candidate, "champion_innovations": record.innovations}
    metrics: dict[str, Any] = {}
    if record.windows is not None:
        params.update({k: str(v) for k, v in window_params(record.windows.model_dump()).items()})
    for prefix, fit in (("backtested", record.backtested_fit), ("full_sample", record.full_sample_fit)):
        if fit is not None:
            params.update({f"{prefix}_param_{k}": f"{v:.10g}" for k, v in fit.params.items()})
    for score in record.selection or []:
        metrics[f"validation_score_{score.candidate}"] = score.score
        metrics[f"validation_passes_kupiec_{score.candidate}"] = float(score.passes_kupiec)
    for level, bt in (record.holdout_backtest or {}).items():
        tag = f"holdout_var{level.replace('0.', '')}"
        for key, value in bt.items():
            if isinstance(value, str):
                if value != "n/a":
                    params[f"{tag}_{key}"] = value
            else:
                metrics[f"{tag}_{key}"] = value
    return {clean_name(k): v for k, v in params.items()}, finite_metrics(metrics)


def log_items(client: Any, run_id: str, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Log parameters and (finite) metrics to ``run_id`` in one batch through an
    ``mlflow.tracking.MlflowClient``. MLflow raises when a parameter already logged to the run
    has a different value (parameters are immutable); logging the same value again is allowed."""
    import time

    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in finite_metrics(metrics).items()],
        params=[Param(clean_name(k), str(v)) for k, v in params.items()],
    )
