"""The champion as an MLflow pyfunc (MLflow docs: "Custom Python Models"), apart from
:mod:`goldstress.io.champion` so that simulating a champion never imports MLflow."""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from goldstress.io.champion import Champion


class GoldReturnsPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """MLflow pyfunc around :class:`Champion`.

    ``predict`` takes a one-row frame with columns ``n_paths``, ``horizon_days`` and ``seed`` and
    returns a frame of simulated daily log returns, shape ``(n_paths, horizon_days)``, columns
    ``day_1..day_H``. MLflow docs: "Custom Python Models" (mlflow.pyfunc.PythonModel).
    """

    def load_context(self, context: Any) -> None:
        """Read the champion JSON artifact."""
        with open(context.artifacts["champion"], encoding="utf-8") as fh:
            self.champion = Champion.from_dict(json.load(fh))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Simulate paths; ``ValueError`` names a missing input column."""
        for col in ("n_paths", "horizon_days", "seed"):
            if col not in model_input.columns:
                raise ValueError(f"model_input is missing column {col!r}")
        row = model_input.iloc[0]
        rng = np.random.default_rng(int(row["seed"]))
        paths = self.champion.simulate(int(row["n_paths"]), int(row["horizon_days"]), rng)
        return pd.DataFrame(paths, columns=[f"day_{i + 1}" for i in range(paths.shape[1])])
