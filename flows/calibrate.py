"""Flow ``calibrate``: measure token premia to gold on real data, fit and score the premium
process, track it in MLflow and write the calibrated parameters (``tasks/calibrate.py``)."""

from __future__ import annotations

from prefect import flow

from goldstress import progress
from goldstress.io import tracking
from goldstress.settings import RunOptions
from tasks.calibrate import (
    close_calibration_run,
    fit_and_score,
    load_gold_inputs,
    measure_clock_noise,
    measure_token,
    open_calibration_run,
    validate_against_history,
    write_calibration,
)


@flow(name="calibrate")
def calibrate(options: RunOptions = RunOptions()) -> dict:
    """Calibrate every entry of ``settings.calibration.sets``.

    ``options`` override the environment's settings (``options.data_dir``: the folder of the
    CSV files named by the settings). Returns ``{"parent_run_id", "calibrations": {set: {json_url, premium_process,
    oos_scores, fit_window, test_window}}, "skipped": [set, ...]}``. Raises ``FileNotFoundError``
    when no gold series is available and ``ValueError`` when no set could be calibrated.
    """
    settings = options.settings()
    tracking.require_reachable(settings)  # fail fast, before anything is written
    gold = load_gold_inputs(settings)
    experiment_id, parent = open_calibration_run(settings)
    results, measured_sets, skipped = [], [], []
    for i, (name, cset) in enumerate(settings.calibration.sets.items()):
        progress.advance(i, len(settings.calibration.sets))
        measured = measure_token(name, cset, gold, settings)
        if measured is None:
            skipped.append(name)
            continue
        result = fit_and_score(measured, settings, experiment_id, parent)
        result["model_vs_history"] = validate_against_history(result, measured, gold, settings)
        results.append(result)
        measured_sets.append(measured)
    progress.advance(len(settings.calibration.sets), len(settings.calibration.sets))
    noise = measure_clock_noise(measured_sets)
    for result in results:
        mine = {k: v for k, v in noise.items() if result["calibration_set"] in k.split("/")}
        result["model_vs_history"]["clock_noise"] = mine
    urls = [write_calibration(result, settings) for result in results]
    return close_calibration_run(parent, results, urls, skipped, settings)
