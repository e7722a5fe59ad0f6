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
from goldstress.settings import new_run_id, settings_with
from tasks.recommend import calibration_inputs_present


@flow(name="stress_test")
def stress_test(data_dir: str | None = None, retrain: bool = True) -> dict:
    """The full stress test. ``retrain=False`` reuses the registered champion. The premium
    calibration runs when ``settings.calibration.in_stress_test`` and ``data_dir`` holds its
    files; simulate then uses the fitted premium processes that pass their checks."""
    run_id = new_run_id()
    snapshots = ingest(data_dir=data_dir)
    validate(snapshots=snapshots, data_dir=data_dir)
    settings = settings_with(data={"data_dir": data_dir})
    if settings.calibration.in_stress_test and calibration_inputs_present(settings):
        calibrate(data_dir=data_dir)
    if retrain:
        train()
    simulate(run_id=run_id)
    return analyse(run_id=run_id)


@flow(name="refresh_data")
def refresh_data(data_dir: str | None = None) -> list[dict]:
    """Daily data refresh: ingest, then validate (promotes only data that passes)."""
    return validate(snapshots=ingest(data_dir=data_dir), data_dir=data_dir)
