"""Parent flow ``stress_test``: ingest -> validate -> calibrate (when the token files are in
data_dir) -> train -> simulate -> analyse, each a sub-flow run named after the run id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import flow, runtime
from prefect.context import FlowRunContext

from flows.analyse import analyse
from flows.calibrate import calibrate
from flows.ingest import ingest
from flows.simulate import simulate_for
from flows.train import train
from flows.validate import validate
from goldstress import progress
from goldstress.io import tracking
from goldstress.io.prices import calibration_inputs_present
from goldstress.metrics import stage
from goldstress.orchestration import add_tags, tagging_hook
from goldstress.settings import RunOptions, new_run_id

STAGES = ("ingest", "validate", "calibrate", "train", "simulate", "analyse")
"""The stages of :func:`stress_test`, in order (what the command line counts)."""


def _run_name() -> str:
    """Flow run name ``stress-<run id>`` (the run id parameter; the flow run id when unset)."""
    run_id = runtime.flow_run.parameters.get("run_id")
    return f"stress-{run_id or runtime.flow_run.id}"


def run_tags(run_id: str, token_specs: list[str] | tuple[str, ...]) -> list[str]:
    """Prefect tags of a run: ``goldstress``, the run id, the process running it
    (:func:`goldstress.orchestration.process_tag`) and ``token:<spec file stem>`` per token."""
    from pathlib import Path

    from goldstress.orchestration import process_tag

    return ["goldstress", run_id, process_tag(), *(f"token:{Path(str(p)).stem}" for p in token_specs)]


@flow(name="stress_test", flow_run_name=_run_name)
def stress_test(options: RunOptions = RunOptions(), retrain: bool = True, run_id: str | None = None) -> dict:
    """The full stress test under ``run_id`` (default: a new one, :func:`new_run_id`).
    ``retrain=False`` reuses the registered champion. The premium calibration runs when
    ``settings.calibration.in_stress_test`` and ``data_dir`` holds its files; simulate then uses
    the fitted premium processes that pass their checks. Each stage is reported to
    :mod:`goldstress.progress`; this flow run and its sub-flow runs get :func:`run_tags`; the
    report is linked as an artifact of this flow run."""
    settings = options.settings()
    tracking.require_reachable(settings)  # fail fast, before anything is written
    run_id = run_id or new_run_id()

    labels = run_tags(run_id, settings.scenarios.token_specs)
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        add_tags(context.flow_run.id, list(context.flow_run.tags), labels)

    def named(sub_flow, stage_name: str):  # type: ignore[no-untyped-def]
        return sub_flow.with_options(flow_run_name=f"{stage_name}-{run_id}", on_running=[tagging_hook(labels)])

    @contextmanager
    def measured(stage_name: str) -> Iterator[None]:
        """The stage line on the terminal and its duration and outcome in the metrics."""
        with progress.stage(stage_name), stage(run_id, stage_name, settings):
            yield

    with measured("ingest"):
        snapshots = named(ingest, "ingest")(options=options)
    with measured("validate"):
        named(validate, "validate")(snapshots=snapshots, options=options)
    if not settings.calibration.in_stress_test:
        progress.skipped("calibrate", "calibration.in_stress_test is off")
    elif not calibration_inputs_present(settings):
        progress.skipped("calibrate", "its token files are not in the data folder")
    else:
        with measured("calibrate"):
            named(calibrate, "calibrate")(options=options)
    if retrain:
        with measured("train"):
            named(train, "train")(options=options)
    else:
        progress.skipped("train", "--no-retrain: the registered champion is reused")
    with measured("simulate"):
        named(simulate_for(options), "simulate")(run_id=run_id, options=options)
    with measured("analyse"):
        outputs = named(analyse, "analyse")(run_id=run_id, options=options)
    from tasks.report import link_report_artifact

    link_report_artifact(outputs, settings)
    return outputs


@flow(name="refresh_data")
def refresh_data(options: RunOptions = RunOptions()) -> list[dict]:
    """Daily data refresh: ingest, then validate (promotes only data that passes)."""
    return validate(snapshots=ingest(options=options), options=options)
