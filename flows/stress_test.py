"""Parent flow ``stress_test``: ingest -> validate -> calibrate (when the token files are in
data_dir) -> train -> simulate -> analyse."""

from __future__ import annotations

from prefect import flow

from flows.analyse import analyse
from flows.calibrate import calibrate
from flows.ingest import ingest
from flows.simulate import simulate
from flows.train import train
from flows.validate import validate
from goldstress.io import tracking
from goldstress.io.prices import calibration_inputs_present
from goldstress.metrics import stage
from goldstress.settings import RunOptions, new_run_id


@flow(name="stress_test")
def stress_test(options: RunOptions = RunOptions(), retrain: bool = True) -> dict:
    """The full stress test. ``retrain=False`` reuses the registered champion. The premium
    calibration runs when ``settings.calibration.in_stress_test`` and ``data_dir`` holds its
    files; simulate then uses the fitted premium processes that pass their checks."""
    settings = options.settings()
    tracking.require_reachable(settings)  # fail fast, before anything is written
    run_id = new_run_id()
    with stage(run_id, "ingest", settings):  # each stage's duration and outcome (goldstress.metrics)
        snapshots = ingest(options=options)
    with stage(run_id, "validate", settings):
        validate(snapshots=snapshots, options=options)
    if settings.calibration.in_stress_test and calibration_inputs_present(settings):
        with stage(run_id, "calibrate", settings):
            calibrate(options=options)
    if retrain:
        with stage(run_id, "train", settings):
            train(options=options)
    with stage(run_id, "simulate", settings):
        simulate(run_id=run_id, options=options)
    with stage(run_id, "analyse", settings):
        return analyse(run_id=run_id, options=options)


@flow(name="refresh_data")
def refresh_data(options: RunOptions = RunOptions()) -> list[dict]:
    """Daily data refresh: ingest, then validate (promotes only data that passes)."""
    return validate(snapshots=ingest(options=options), options=options)
