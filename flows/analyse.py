"""Flow ``analyse``: risk metrics, VaR backtest, reverse stress tests, and the report."""

from __future__ import annotations

from prefect import flow, runtime

from goldstress.io import tracking
from goldstress.settings import RunOptions
from tasks.analyse import compute_summary, read_manifest
from tasks.report import link_report_artifact, publish_report
from tasks.weekend import measure_weekend


@flow(name="analyse")
def analyse(run_id: str | None = None, options: RunOptions = RunOptions()) -> dict:
    """Analyse a simulated run (default: the latest) and publish ``report.html``,
    ``summary.json`` and the Parquet results; returns the output URLs. The weekend gap section is
    measured here from the files in ``data_dir`` (absent files are noted in it). Run alone, it
    links the report as an artifact of its flow run (under ``stress_test``, the parent does)."""
    settings = options.settings()
    tracking.require_reachable(settings)  # fail fast, before anything is written
    manifest = read_manifest(run_id, settings)
    summary = compute_summary(manifest, settings, measure_weekend(settings))
    outputs = publish_report(summary, manifest, settings)
    if runtime.flow_run.parent_flow_run_id is None:
        link_report_artifact(outputs, settings)
    return outputs
