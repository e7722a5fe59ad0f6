"""Report task: write ``summary.json`` and ``report.html`` (:mod:`goldstress.report`) beside the
run's Parquet results and log them to an MLflow run; the Prefect artifact that links the report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.catalog import Catalog
from goldstress.figures import monte_carlo_histograms
from goldstress.io import storage
from goldstress.io.pathtable import token_views
from goldstress.publish import publish_run, unpublish
from goldstress.records import Manifest, Summary
from goldstress.report import figures, render_html
from goldstress.settings import Settings


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(summary_record: Summary, manifest_record: Manifest, settings: Settings) -> dict[str, Any]:
    """Write ``summary.json`` and ``report.html`` next to the run's Parquet results, publish the
    run (its completion marker, written last: :func:`goldstress.publish.publish_run`) and log
    them to an MLflow run with :func:`run_params` and :func:`run_metrics`. Returns the URLs.

    The run's marker is removed before its files are written, so a failure leaves it unlisted.
    ``OSError`` when a write fails; ``goldstress.publish.IncompleteRunError`` when a file reads
    back incomplete."""
    import mlflow

    from goldstress.io import tracking

    summary, manifest = summary_record.as_json(), manifest_record.as_json()
    catalog, run_id = Catalog.of(settings), summary["run_id"]
    page = _render_page(summary, manifest, settings)
    unpublish(run_id, settings)  # hidden while its files are rewritten
    summary_url = storage.write_json(catalog.run_file(run_id, "summary.json"), summary, settings)
    report_url = storage.write_bytes(catalog.run_file(run_id, "report.html"), page.encode("utf-8"), settings)
    if not manifest["settings"].get("keep_path_results", True):
        _delete_path_results(manifest, settings)
    publish_run(run_id, settings)
    outputs = {
        "run_id": summary["run_id"],
        "report_html": report_url,
        "summary_json": summary_url,
        "results_parquet": [r["url"] for r in manifest["scenarios"]]
        if manifest["settings"].get("keep_path_results", True)
        else [],
        "manifest_json": catalog.run_file(run_id, "manifest.json"),
    }
    experiment_id = tracking.configure(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"stress-{summary['run_id']}") as run:
        mlflow.set_tags(
            {
                "stage": "stress_report",
                "goldstress_run_id": summary["run_id"],
                "champion_version": str(summary["champion"]["version"]),
                **{
                    f"{symbol}.verdict": (t.get("verdict") or {}).get("verdict", "no verdict")
                    for symbol, t in summary["tokens"].items()
                },
            }
        )
        mlflow.log_params(run_params(summary, manifest))
        flat = run_metrics(summary)
        mlflow.log_metrics(tracking.finite_metrics(flat))
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
            Path(tmp, "report.html").write_text(page, encoding="utf-8")
            mlflow.log_artifacts(tmp, artifact_path="report")
        outputs["mlflow_run_id"] = run.info.run_id
    from prefect.logging import get_run_logger

    get_run_logger().info("report written: %s (summary %s)", report_url, summary_url)
    return outputs


def _delete_path_results(manifest: dict[str, Any], settings: Settings) -> None:
    """Delete the run's per-path tables (``keep_path_results`` false), once the summary and the
    report that read them are written. An absent table is skipped; other storage errors propagate."""
    for res in manifest["scenarios"]:
        fs, path = storage.filesystem(res["url"], settings)
        if fs.exists(path):
            fs.rm(path)


def _render_page(summary: dict[str, Any], manifest: dict[str, Any], settings: Settings) -> str:
    """The report page of a run (:func:`goldstress.report.render_html`) with its figures from the
    curated gold series (when readable) and the histograms of the run's Monte Carlo table, read one
    token and one column at a time (left out once the table is deleted)."""
    from goldstress.io.validation import load_curated

    try:
        gold = load_curated("gold", settings)
    except Exception:
        gold = None
    mc_res = next((r for r in manifest["scenarios"] if r["scenario"]["kind"] == "monte_carlo"), None)
    hists = None
    if mc_res is not None:
        fs, path = storage.filesystem(mc_res["url"], settings)
        if fs.exists(path):  # deleted after the first report when per-path tables are not kept
            with token_views(mc_res["url"], settings) as views:
                hists = monte_carlo_histograms(views)
    return render_html(
        summary, manifest, figures(summary, manifest, gold, hists), stale_after_days=settings.risk.stale_data_days
    )


def rerender_report(run_id: str | None, settings: Settings) -> str:
    """Render ``report.html`` of ``run_id`` (default: the latest run with a summary) again from
    its ``summary.json`` and ``manifest.json`` and write it in place, then publish the run again
    (its marker records the new size); returns its URL. The summary, results and MLflow run
    are left as they are. ``LookupError`` when no run (or
    ``run_id`` has no summary)."""
    catalog = Catalog.of(settings)
    if run_id is None:
        fs, path = storage.filesystem(settings.storage.report_url, settings)
        runs = sorted(
            p.rsplit("/", 1)[-1]
            for p in (fs.ls(path, detail=False) if fs.exists(path) else [])
            if fs.exists(f"{p}/summary.json")
        )
        if not runs:
            raise LookupError(f"no run with a summary.json under {settings.storage.report_url}")
        run_id = runs[-1]
    try:
        summary = storage.read_json(catalog.run_file(run_id, "summary.json"), settings)
        manifest = storage.read_json(catalog.run_file(run_id, "manifest.json"), settings)
    except FileNotFoundError:
        raise LookupError(
            f"run {run_id!r} has no summary.json and manifest.json under {settings.storage.report_url}"
        ) from None
    page = _render_page(summary, manifest, settings)
    unpublish(run_id, settings)  # hidden while its report is rewritten
    url = storage.write_bytes(catalog.run_file(run_id, "report.html"), page.encode("utf-8"), settings)
    publish_run(run_id, settings)
    return url


def run_params(summary: dict[str, Any], manifest: dict[str, Any]) -> dict[str, str]:
    """MLflow parameters of a stress run: the settings it ran with (``mc_paths``,
    ``mc_horizon_days``, ``mc_seed``, ``mc_drift``), its ``tokens`` (comma-separated symbols),
    the data it read (``data_sha256``, ``data_source``, ``data_last_date``) and the champion
    version. Values are strings (MLflow params)."""
    mc = manifest.get("settings", {})
    drift = mc.get("mc_drift", {})
    data = summary.get("data", {})
    params = {
        "mc_paths": mc.get("mc_paths"),
        "mc_horizon_days": mc.get("mc_horizon_days"),
        "mc_seed": mc.get("mc_seed"),
        "mc_drift": drift.get("assumption") if isinstance(drift, dict) else drift,
        "tokens": ",".join(summary["tokens"]),
        "data_sha256": data.get("data_sha256"),
        "data_source": data.get("data_source"),
        "data_last_date": data.get("data_last_date"),
        "champion_version": summary.get("champion", {}).get("version"),
    }
    return {k: str(v) for k, v in params.items() if v is not None}


def run_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics of a stress run, grouped by token: ``<SYMBOL>/<metric>`` for the champion
    Monte Carlo's metrics (e.g. ``PAXG/holder_value_var_99_10d_frac``) and
    ``<SYMBOL>/liquidity/<metric>`` for the liquidity remedies (cash buffer in USD and as a
    fraction of liabilities, wave coverage before/with it, recommended fee and gate). NaN where
    a remedy is unreachable (dropped by :func:`goldstress.io.tracking.finite_metrics`)."""
    flat: dict[str, float] = {}
    for symbol, t in summary["tokens"].items():
        for k, v in t["scenarios"].get("mc_champion", {}).items():
            flat[f"{symbol}/{k}"] = v
    for symbol, r in (summary.get("liquidity_stress") or {}).get("remedies", {}).items():
        best = r["recommended_setting"]
        reachable = r["cash_buffer_reachable"]
        gate = best["redemption_limit_share_per_day"]
        flat.update(
            {
                f"{symbol}/liquidity/cash_buffer_usd": r["cash_buffer_usd"] if reachable else float("nan"),
                f"{symbol}/liquidity/cash_buffer_frac": r["cash_buffer_frac_of_liabilities"]
                if reachable
                else float("nan"),
                f"{symbol}/liquidity/wave_coverage_q_before": r["current_setting"]["wave"]["coverage_q"],
                f"{symbol}/liquidity/wave_coverage_q_with_buffer": r["with_buffer"]["coverage_q"],
                f"{symbol}/liquidity/recommended_redeem_fee": best["redeem_fee"],
                f"{symbol}/liquidity/recommended_gate_share_per_day": float("nan") if gate is None else gate,
            }
        )
    return flat


def report_link(outputs: dict[str, Any], settings: Settings) -> str:
    """Markdown naming the run's report: a link to the service's page
    (``<service.public_url>/api/runs/<run id>/report.html``) when ``service.public_url`` is set,
    else a link to the storage URL when it is http(s), else the URL or path as code text (a
    browser cannot open a local path or an ``s3://`` URL from the Prefect UI)."""
    base = settings.service.public_url
    if base:
        url = f"{base.rstrip('/')}/api/runs/{outputs['run_id']}/report.html"
        return f"[report.html]({url})"
    url = str(outputs["report_html"])
    if url.startswith(("http://", "https://")):
        return f"[report.html]({url})"
    return f"`{url}`"


def link_report_artifact(outputs: dict[str, Any], settings: Settings) -> str | None:
    """Create the markdown artifact ``goldstress-report`` of the current flow run: the report
    (:func:`report_link`), summary and manifest locations, and per token the champion Monte
    Carlo's 99 % 10-day VaR and P(backing < 1). Returns the artifact id; None outside a flow
    run. ``outputs`` is :func:`publish_report`'s result."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return None
    summary = storage.read_json(outputs["summary_json"], settings)
    lines = [
        f"# goldstress run `{outputs['run_id']}`",
        "",
        f"- report: {report_link(outputs, settings)}",
        f"- summary: `{outputs['summary_json']}`",
        f"- manifest: `{outputs['manifest_json']}`",
        "",
        "| token | verdict | 99% 10-day VaR of holder value | P(backing < 1) | worst scenario |",
        "|---|---|---|---|---|",
    ]
    for symbol, t in summary["tokens"].items():
        mc = t["scenarios"].get("mc_champion", {})
        verdict = (t.get("verdict") or {}).get("verdict", "no verdict")
        lines.append(
            f"| {symbol} | {verdict} | {mc.get('holder_value_var_99_10d_frac', float('nan')):.2%} "
            f"| {mc.get('p_backing_below_1', float('nan')):.2%} "
            f"| {t['worst_scenario']['scenario']} (by {t['worst_scenario']['by']}) |"
        )
    artifact_id = create_markdown_artifact(
        key="goldstress-report", markdown="\n".join(lines), description=f"goldstress report of run {outputs['run_id']}"
    )
    return str(artifact_id)
