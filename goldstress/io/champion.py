"""The champion gold-returns model as an MLflow pyfunc, registered and loaded by alias.

A champion bundles a fitted GARCH-family model (``models.volatility.GarchFit``), the innovation
scheme used to simulate it (Student-t or filtered historical simulation) and the peaks-over-
threshold tail fit (``models.evt.GpdTail``). It is stored as a JSON artifact, so the model is
data, not pickled code; loading needs this repository's ``models`` package on the path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np

from goldstress.records import ChampionRecord, FitRecord
from models.evt import GpdTail
from models.scenarios import TRADING_DAYS_PER_YEAR, stress_drift_per_day
from models.selection import TrainingWindows
from models.volatility import GarchFit

CHAMPION_TRAINING_KEYS = (
    "holdout_backtest",
    "windows",
    "selection",
    "backtested_fit",
    "full_sample_window",
)
"""Keys of a champion's metadata that :meth:`RegisteredChampion.record` lifts into typed fields."""


@dataclass(frozen=True)
class Champion:
    """A loaded champion: the volatility fit, its innovation scheme and the loss-tail fit.

    ``simulate(n_paths, horizon_days, rng)`` returns daily log returns shaped
    ``(n_paths, horizon_days)``.
    """

    name: str
    fit: GarchFit
    innovations: Literal["t", "fhs"]
    tail: GpdTail | None
    meta: dict[str, Any]

    def simulate(
        self, n_paths: int, horizon_days: int, rng: np.random.Generator, drift_per_day: float | None = None
    ) -> np.ndarray:
        """Simulate daily log returns, shape ``(n_paths, horizon_days)``, from the fitted state;
        ``drift_per_day`` is the mean daily log return (None: the fitted ``mu``)."""
        return self.fit.simulate(n_paths, horizon_days, rng, innovations=self.innovations, drift_per_day=drift_per_day)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the registered artifact)."""
        return {
            "name": self.name,
            "innovations": self.innovations,
            "garch": self.fit.to_dict(),
            "tail": None if self.tail is None else self.tail.to_dict(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Champion:
        """Inverse of :meth:`to_dict`; ``KeyError`` names a missing field."""
        return cls(
            name=d["name"],
            fit=GarchFit.from_dict(d["garch"]),
            innovations=d["innovations"],
            tail=None if d.get("tail") is None else GpdTail.from_dict(d["tail"]),
            meta=d.get("meta", {}),
        )


@dataclass(frozen=True)
class RegisteredChampion:
    """A champion loaded from the registry with its coordinates: ``model`` simulates,
    ``registered_model`` and ``version`` say which registered model version it is."""

    model: Champion
    registered_model: str
    version: str

    @property
    def candidate(self) -> str:
        """Name of the candidate model that won (e.g. ``gjr_t``)."""
        return self.model.name

    def record(self) -> ChampionRecord:
        """What a run manifest records of the champion: parameters of the full-sample fit it
        simulates, innovations, tail, and from the training metadata the windows, the validation
        scores, the backtested fit and the hold-out backtest (``None`` where a champion trained
        before these were recorded lacks them). ``pydantic.ValidationError`` if they are malformed."""
        meta = self.model.meta
        window = meta.get("full_sample_window")
        return ChampionRecord(
            registered_model=self.registered_model,
            version=self.version,
            candidate=self.candidate,
            params=self.model.fit.params,
            innovations=self.model.innovations,
            tail=None if self.model.tail is None else self.model.tail.to_dict(),
            holdout_backtest=meta.get("holdout_backtest"),
            windows=meta.get("windows"),
            selection=meta.get("selection"),
            backtested_fit=meta.get("backtested_fit"),
            full_sample_fit=None if window is None else FitRecord(window=window, params=self.model.fit.params),
            train_meta={k: v for k, v in meta.items() if k not in CHAMPION_TRAINING_KEYS},
        )


def training_meta(
    windows: TrainingWindows,
    candidates: list[dict[str, Any]],
    backtested_params: dict[str, float],
    holdout_backtest: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The champion metadata that :meth:`RegisteredChampion.record` lifts into typed fields
    (:data:`CHAMPION_TRAINING_KEYS`): the windows, every candidate's validation scores
    (``candidates`` as ``tasks.train.fit_candidate`` returns them: ``name``, ``score``,
    ``passes_kupiec``, ``validation``), the parameters fitted before the hold-out (daily
    log-return units) and the hold-out backtest per level. ``KeyError`` names a missing key."""
    return {
        "windows": windows.to_dict(),
        "selection": [
            {
                "candidate": c["name"],
                "score": c["score"],
                "passes_kupiec": c["passes_kupiec"],
                "backtests": c["validation"],
            }
            for c in candidates
        ],
        "backtested_fit": {"window": windows.pre_holdout.to_dict(), "params": dict(backtested_params)},
        "full_sample_window": windows.full_sample.to_dict(),
        "holdout_backtest": holdout_backtest,
    }


def load_champion(model_name: str, alias: str) -> tuple[Champion, str]:
    """Load ``models:/<model_name>@<alias>`` through the registry.

    Returns the champion and the registry version string. Raises ``mlflow.exceptions.MlflowException``
    when the model or alias does not exist (run the ``train`` flow first).
    """
    from mlflow.tracking import MlflowClient

    uri = f"models:/{model_name}@{alias}"
    version = MlflowClient().get_model_version_by_alias(model_name, alias).version
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(uri)
    wrapper = loaded.unwrap_python_model()
    return wrapper.champion, str(version)


def stress_simulator(model: Champion, drift: float | str) -> Callable[[int, int, np.random.Generator], np.ndarray]:
    """``model.simulate`` under the drift assumption ``drift`` (``"zero"``, ``"historical"`` or an
    annual log return; :func:`models.scenarios.stress_drift_per_day`): a function
    ``(n_paths, horizon_days, rng) -> log returns (n_paths, horizon_days)``."""
    return partial(model.simulate, drift_per_day=stress_drift_per_day(drift, model.fit.params["mu"]))


def drift_record(model: Champion, drift: float | str) -> dict[str, Any]:
    """What a run records of its drift assumption: the assumption, the mean log return it gives
    per day and per year (252 trading days), and the champion's fitted (historical) drift."""
    per_day = stress_drift_per_day(drift, model.fit.params["mu"])
    return {
        "assumption": drift,
        "log_return_per_day": per_day,
        "log_return_per_year": per_day * TRADING_DAYS_PER_YEAR,
        "historical_log_return_per_year": float(model.fit.params["mu"]) * TRADING_DAYS_PER_YEAR,
    }


def __getattr__(name: str) -> Any:
    """``GoldReturnsPyfunc`` (:mod:`goldstress.io.champion_pyfunc`) on first use, so that importing
    this module (as the Dask workers do to simulate a champion) does not import MLflow; models
    registered with the class under this module's path still unpickle. ``AttributeError`` for
    any other missing name."""
    if name == "GoldReturnsPyfunc":
        from goldstress.io.champion_pyfunc import GoldReturnsPyfunc

        return GoldReturnsPyfunc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
