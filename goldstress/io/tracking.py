"""MLflow plumbing: one configured tracking store, clean metric names, stable experiments.

The tracking URI and artifact location come from settings (default: a SQLite backend store and
an artifact folder under ``var/``; any MLflow tracking URI works). Experiments are created with
an explicit artifact location, because MLflow's default experiment keeps whatever path first
created it (MLflow docs, "Where Runs Are Recorded").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from goldstress.settings import Settings

_INVALID = re.compile(r"[^0-9A-Za-z_\-. /]")


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
    return client.create_experiment(settings.tracking.experiment, artifact_location=location)
