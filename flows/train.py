"""Flow ``train``: fit the volatility, tail and predictor models, track them, register a champion."""

from __future__ import annotations

from prefect import flow

from goldstress.io import tracking
from goldstress.settings import RunOptions
from models.risk import select_champion
from tasks.train import (
    CANDIDATES,
    close_training_run,
    fit_candidate,
    fit_champion,
    fit_tail,
    fit_vol_predictor,
    load_gold_returns,
    open_training_run,
    register_champion,
    training_windows,
)


@flow(name="train")
def train(options: RunOptions = RunOptions()) -> dict:
    """Train on the curated gold series and register the champion under the ``champion`` alias:
    candidates scored on the validation window, the champion backtested on the later hold-out."""
    settings = options.settings()
    tracking.require_reachable(settings)  # fail fast, before anything is written
    returns, meta = load_gold_returns(settings)
    vol_returns, windows = training_windows(returns, settings)
    experiment_id, parent = open_training_run(meta, settings)
    candidates = [
        fit_candidate(vol_returns, windows, meta, kind, innovations, settings, experiment_id, parent)
        for kind, innovations in CANDIDATES
    ]
    best = select_champion(candidates)
    fitted = fit_champion(vol_returns, windows, best, settings)
    tail = fit_tail(returns, meta, settings, experiment_id, parent)
    predictor = fit_vol_predictor(returns, meta, settings, experiment_id, parent)
    champion = register_champion(best, fitted, candidates, windows, tail, meta, settings)
    return close_training_run(parent, champion, candidates, tail, predictor, meta, settings)
