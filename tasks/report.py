"""Report task: write ``summary.json`` and ``report.html`` (:mod:`goldstress.report`) beside the
run's Parquet results, link them as a Prefect artifact and log them to an MLflow run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.catalog import Catalog
from goldstress.io import storage
from goldstress.publish import publish_run, unpublish
from goldstress.records import Manifest, Summary
from goldstress.report import figures, render_html
from goldstress.settings import Settings


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(summary_record: Summary, manifest_record: Manifest, settings: Settings) -> dict[str, Any]:
    """Write ``summary.json`` and ``report.html`` next to the run's Parquet results, publish the
    run (its completion marker, written last: :func:`goldstress.publish.publish_run`), link them
    as a Prefect artifact, log them to an MLflow run, and print where they are. Returns the URLs.

    The run's marker is removed before its files are written, so a failure leaves it unlisted.
    ``OSError`` when a write fails; ``goldstress.publish.IncompleteRunError`` when a file reads
    back incomplete."""
    import mlflow

    from goldstress.io import tracking
    from goldstress.io.validation import load_curated

    summary, manifest = summary_record.as_json(), manifest_record.as_json()
    catalog, run_id = Catalog.of(settings), summary["run_id"]
    try:
        gold = load_curated("gold", settings)
    except Exception:
        gold = None
    mc_res = next((r for r in manifest["scenarios"] if r["scenario"]["kind"] == "monte_carlo"), None)
    mc = storage.read_parquet(mc_res["url"], settings) if mc_res else None
    page = render_html(
        summary, manifest, figures(summary, manifest, gold, mc), stale_after_days=settings.risk.stale_data_days
    )
    unpublish(run_id, settings)  # hidden while its files are rewritten
    summary_url = storage.write_json(catalog.run_file(run_id, "summary.json"), summary, settings)
    report_url = storage.write_bytes(catalog.run_file(run_id, "report.html"), page.encode("utf-8"), settings)
    publish_run(run_id, settings)
    outputs = {
        "run_id": summary["run_id"],
        "report_html": report_url,
        "summary_json": summary_url,
        "results_parquet": [r["url"] for r in manifest["scenarios"]],
        "manifest_json": catalog.run_file(run_id, "manifest.json"),
    }
    _prefect_artifact(outputs, summary)
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
        flat = {}
        for symbol, t in summary["tokens"].items():
            for k, v in t["scenarios"].get("mc_champion", {}).items():
                flat[f"{symbol}.{k}"] = v
        for symbol, r in (summary.get("liquidity_stress") or {}).get("remedies", {}).items():
            best = r["recommended_setting"]
            flat[f"{symbol}.liquidity.cash_buffer_usd"] = (
                r["cash_buffer_usd"] if r["cash_buffer_reachable"] else float("nan")
            )
            flat[f"{symbol}.liquidity.cash_buffer_frac"] = (
                r["cash_buffer_frac_of_liabilities"] if r["cash_buffer_reachable"] else float("nan")
            )
            flat[f"{symbol}.liquidity.wave_coverage_q_before"] = r["current_setting"]["wave"]["coverage_q"]
            flat[f"{symbol}.liquidity.wave_coverage_q_with_buffer"] = r["with_buffer"]["coverage_q"]
            flat[f"{symbol}.liquidity.recommended_redeem_fee"] = best["redeem_fee"]
            flat[f"{symbol}.liquidity.recommended_gate_share_per_day"] = (
                float("nan")
                if best["redemption_limit_share_per_day"] is None
                else best["redemption_limit_share_per_day"]
            )
        mlflow.log_metrics(tracking.finite_metrics(flat))
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
            Path(tmp, "report.html").write_text(page, encoding="utf-8")
            mlflow.log_artifacts(tmp, artifact_path="report")
        outputs["mlflow_run_id"] = run.info.run_id
    from prefect.logging import get_run_logger

    get_run_logger().info("report written: %s (summary %s)", report_url, summary_url)
    return outputs


def _prefect_artifact(outputs: dict[str, Any], summary: dict[str, Any]) -> None:
    """Link the report as a Prefect artifact (a no-op outside a flow run)."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import get_run_context

    try:
        get_run_context()
    except Exception:
        return
    lines = [
        f"# goldstress run `{summary['run_id']}`",
        "",
        f"- report: [{outputs['report_html']}]({outputs['report_html']})",
        f"- summary: [{outputs['summary_json']}]({outputs['summary_json']})",
    ]
    for symbol, t in summary["tokens"].items():
        mc = t["scenarios"].get("mc_champion", {})
        verdict = (t.get("verdict") or {}).get("verdict", "no verdict")
        lines.append(
            f"- {symbol} ({verdict}): 99% 10-day VaR of holder value {mc.get('holder_value_var_99_10d_frac', float('nan')):.2%}, P(backing<1) {mc.get('p_backing_below_1', float('nan')):.2%}, worst single-path scenario {t['worst_scenario']['scenario']} (by {t['worst_scenario']['by']})"
        )
    create_markdown_artifact(
        key="goldstress-report", markdown="\n".join(lines), description="Latest goldstress stress-test report"
    )
