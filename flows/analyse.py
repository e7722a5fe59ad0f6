"""Flow ``analyse``: risk metrics, VaR backtest, reverse stress tests, and the report."""

from __future__ import annotations

from prefect import flow

from goldstress.settings import RunOptions
from tasks.analyse import compute_summary, read_manifest
from tasks.report import publish_report


@flow(name="analyse")
def analyse(run_id: str | None = None, options: RunOptions = RunOptions()) -> dict:
    """Analyse a simulated run (default: the latest) and publish ``report.html``,
    ``summary.json`` and the Parquet results; returns the output URLs."""
    settings = options.settings()
    manifest = read_manifest(run_id, settings)
    summary = compute_summary(manifest, settings)
    return publish_report(summary, manifest, settings)
