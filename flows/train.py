"""Flow ``train``: fit the volatility, tail and predictor models, track them, register a champion."""

from __future__ import annotations

from prefect import flow

from goldstress.settings import RunOptions
from models.risk import select_champion
from tasks.train import (
    CANDIDATES,
    close_training_run,
    fit_candidate,
    fit_tail,
    fit_vol_predictor,
    load_gold_returns,
    open_training_run,
    register_champion,
)


@flow(name="train")
def train(options: RunOptions = RunOptions()) -> dict:
    """Train on the curated gold series and register the champion under the ``champion`` alias."""
    settings = options.settings()
    returns, meta = load_gold_returns(settings)
    experiment_id, parent = open_training_run(meta, settings)
    candidates = [
        fit_candidate(returns, meta, kind, innovations, settings, experiment_id, parent)
        for kind, innovations in CANDIDATES
    ]
    tail = fit_tail(returns, meta, settings, experiment_id, parent)
    predictor = fit_vol_predictor(returns, meta, settings, experiment_id, parent)
    champion = register_champion(select_champion(candidates), tail, meta, settings)
    return close_training_run(parent, champion, candidates, tail, predictor, meta, settings)
