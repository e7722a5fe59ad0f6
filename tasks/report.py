"""Report tasks: ``report.html`` (offline-readable plots), ``summary.json`` and the Parquet results
under ``<report_url>/<run_id>/``, linked as a Prefect artifact and logged to an MLflow run.

Plots use plotly with its JavaScript embedded once in the page (~4.8 MB), so the report opens
without a network connection (plotly docs, ``to_html(include_plotlyjs=True)``).
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.settings import Settings
from tasks import storage


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.2%}" if pct else f"{v:,.4g}"
    return html.escape(str(v))


def _table(rows: list[dict[str, Any]], pct_cols: tuple[str, ...] = ()) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0].keys())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c), c in pct_cols or c.endswith('_frac'))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figures(summary: dict[str, Any], manifest: dict[str, Any], gold: pd.DataFrame | None, mc: pd.DataFrame | None) -> list[tuple[str, Any]]:
    """The report's plotly figures: price history with scenario windows, fan chart of simulated
    gold paths, holder-loss distributions and backing-ratio histograms (Monte Carlo)."""
    import plotly.graph_objects as go

    figs: list[tuple[str, Any]] = []
    if gold is not None and not gold.empty:
        fig = go.Figure(go.Scattergl(x=gold["date"], y=gold["usd_per_oz"], mode="lines", name="gold, USD/oz", line={"width": 1}))
        for name, (start, end) in manifest["settings"]["replay_windows"].items():
            fig.add_vrect(x0=start, x1=end, fillcolor="crimson", opacity=0.15, line_width=0, annotation_text=name, annotation_position="top left", annotation_font_size=9)
        fig.update_layout(title="Gold price (LBMA PM, USD per troy ounce) with the historical replay windows", yaxis_type="log", yaxis_title="USD/oz (log scale)", height=420)
        figs.append(("price_history", fig))
    mc_res = next((r for r in manifest["scenarios"] if r["scenario"]["kind"] == "monte_carlo"), None)
    if mc_res is not None:
        fq = mc_res["fan_quantiles"]
        days = np.arange(len(next(iter(fq.values()))))
        fig = go.Figure()
        for lo, hi, alpha in (("q0.01", "q0.99", 0.15), ("q0.05", "q0.95", 0.25), ("q0.25", "q0.75", 0.4)):
            fig.add_trace(go.Scatter(x=days, y=fq[hi], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=days, y=fq[lo], mode="lines", line={"width": 0}, fill="tonexty", fillcolor=f"rgba(212,160,23,{alpha})", name=f"{lo[1:]}–{hi[1:]}"))
        fig.add_trace(go.Scatter(x=days, y=fq["q0.5"], mode="lines", line={"color": "black"}, name="median"))
        fig.update_layout(title=f"Fan chart: simulated gold price paths ({mc_res['scenario']['description']}; quantiles over the first {manifest['settings'].get('fan_chart_paths', 'N')} paths)", xaxis_title="trading days ahead", yaxis_title="USD/oz", height=420)
        figs.append(("fan_chart", fig))
    if mc is not None and not mc.empty:
        from plotly.subplots import make_subplots

        tokens = list(dict.fromkeys(mc["token"]))
        for key, title, cols, xlabel, fmt in (
            (
                "loss_distributions",
                "Loss distributions over 30 days (Monte Carlo; fraction of day-0 value, losses positive)",
                (("holder_loss_frac_30d", "holder value"), ("reserve_loss_frac_30d", "reserve value")),
                "loss (fraction of day-0 value)",
                ".0%",
            ),
            (
                "backing_ratio",
                "Backing-ratio distribution (Monte Carlo; axis clipped to the 0.1%-99.5% range of each token)",
                (("backing_ratio_end", "at horizon end"), ("backing_ratio_min", "path minimum")),
                "backing ratio",
                ".3f",
            ),
        ):
            fig = make_subplots(rows=1, cols=len(tokens), subplot_titles=[f"{t} (paths with supply left)" if key == "backing_ratio" else t for t in tokens])
            for i, token in enumerate(tokens, start=1):
                g = mc[mc["token"] == token].replace([np.inf, -np.inf], np.nan)
                lo = min(g[c].quantile(0.001) for c, _ in cols)
                hi = max(g[c].quantile(0.995) for c, _ in cols)
                pad = 0.02 * (hi - lo) if hi > lo else 0.01
                for (c, label), colour in zip(cols, ("#b8860b", "#4169e1")):
                    fig.add_trace(
                        go.Histogram(x=g[c].clip(lo - pad, hi + pad), name=f"{token}: {label}", opacity=0.55, nbinsx=80, marker_color=colour),
                        row=1, col=i,
                    )
                fig.update_xaxes(title_text=xlabel, tickformat=fmt, range=[lo - pad, hi + pad], row=1, col=i)
                if key == "backing_ratio" and lo - pad <= 1.0 <= hi + pad:
                    fig.add_vline(x=1.0, line_dash="dash", line_color="crimson", row=1, col=i)
            fig.update_layout(barmode="overlay", title=title, height=420)
            figs.append((key, fig))
    return figs


def _peg_liquidity_html(t: dict[str, Any]) -> str:
    """Peg and liquidity table of a v2 token: Monte Carlo and each single-path scenario."""
    rows = []
    for name, m in t["scenarios"].items():
        if m.get("kind") == "monte_carlo" and "p_abs_premium_gt_1pct" in m:
            rows.append({
                "scenario": name,
                "P(|premium|>1%)": m["p_abs_premium_gt_1pct"],
                "P(|premium|>5%)": m["p_abs_premium_gt_5pct"],
                "worst depeg depth (q99)": m["depeg_depth_q99_frac"],
                "longest depeg >1%, days (q99)": m["depeg_longest_days_beyond_1pct_q99"],
                "recovery days (median)": m["depeg_recovery_days_1pct_median"],
                "LCR 1d (q1)": m.get("liquidity_coverage_1d_q01"),
                "LCR 5d (q1)": m.get("liquidity_coverage_5d_q01"),
                "LCR 30d (q1)": m.get("liquidity_coverage_30d_q01"),
                "queue max, tokens (q99)": m["redemption_queue_max_tokens_q99"],
                "days to meet a wave (q99)": m["redemption_wait_max_days_q99"],
            })
        elif "depeg_depth_frac" in m:
            rows.append({
                "scenario": name,
                "P(|premium|>1%)": float(m["depeg_depth_frac"] > 0.01),
                "P(|premium|>5%)": float(m["depeg_depth_frac"] > 0.05),
                "worst depeg depth (q99)": m["depeg_depth_frac"],
                "longest depeg >1%, days (q99)": m.get("depeg_longest_days_beyond_1pct"),
                "recovery days (median)": m.get("depeg_recovery_days_1pct"),
                "LCR 1d (q1)": m.get("liquidity_coverage_min_1d"),
                "LCR 5d (q1)": m.get("liquidity_coverage_min_5d"),
                "LCR 30d (q1)": m.get("liquidity_coverage_min_30d"),
                "queue max, tokens (q99)": m.get("redemption_queue_max_tokens"),
                "days to meet a wave (q99)": m.get("redemption_wait_max_days"),
            })
    if not rows:
        return ""
    return (
        "<h3>Peg and liquidity (secondary market and redemption model)</h3>"
        "<p>Premium/discount to NAV; LCR = liquid resources / stressed outflows (lowest daily value over the "
        "horizon; Monte Carlo: 1% quantile across paths). Single-path scenarios show their one outcome.</p>"
        + _table(rows, pct_cols=("P(|premium|>1%)", "P(|premium|>5%)", "worst depeg depth (q99)"))
    )


def _boundary_html(t: dict[str, Any]) -> str:
    """Reverse stress boundary table of a v2 token (``reverse_stress_boundary`` of the summary),
    or "" when the token has none."""
    b = t.get("reverse_stress_boundary")
    if not b:
        return ""
    rows = [
        {
            "redemption share (of supply)": r["redemption_share"],
            "gold drop that makes it fail": ("none up to 99%" if r["gold_drop_frac"] is None else r["gold_drop_frac"]),
            "fails without a drop": r["fails_without_drop"],
        }
        for r in b["rows"]
    ]
    return (
        f"<h3>Reverse stress boundary (MiCA Art. 5): gold drop that makes the token fail, by redemption share over {b['horizon_days']} days</h3>"
        "<p>Commission Delegated Regulation (EU) 2025/1264, Art. 5(2): a reverse stress test of the limit of resilience of the "
        "reserve's liquidity profile. Each row: holders request the given share of supply over the horizon (no runs, no mints, "
        "no drawdown- or peg-driven redemptions) while gold falls log-linearly; the smallest fall at which the token fails "
        f"({html.escape(str(b.get('failure', 'backing < 1, liquidity coverage < 1, or redemptions unpaid')))}).</p>"
        + _table(rows, pct_cols=("redemption share (of supply)", "gold drop that makes it fail"))
    )


def render_html(summary: dict[str, Any], manifest: dict[str, Any], figs: list[tuple[str, Any]]) -> str:
    """The full self-contained HTML report."""
    parts = []
    for i, (name, fig) in enumerate(figs):
        parts.append(f'<section id="{name}">' + fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False}) + "</section>")
    token_sections = []
    for symbol, t in summary["tokens"].items():
        mc = t["scenarios"].get("mc_champion", {})
        head = []
        for who, unit in (("holder", "usd_per_token"), ("reserve", "usd")):
            for h in manifest["settings"]["horizons_days"]:
                row = {"value": who, "horizon_days": h}
                for lvl in ("95", "99"):
                    row[f"VaR {lvl}% (frac)"] = mc.get(f"{who}_value_var_{lvl}_{h}d_frac")
                    row[f"ES {lvl}% (frac)"] = mc.get(f"{who}_value_es_{lvl}_{h}d_frac")
                    row[f"VaR {lvl}% ({unit})"] = mc.get(f"{who}_value_var_{lvl}_{h}d_{unit}")
                head.append(row)
        rs = t["reverse_stress"]
        scen = [
            {"scenario": n, "kind": m["kind"], "holder_loss_30d_frac": m.get("holder_loss_frac_30d", m.get("holder_value_es_99_30d_frac")), "backing_min": m.get("backing_ratio_min", m.get("backing_ratio_min_q0.1")), "P(backing<1)": m.get("p_backing_below_1", m.get("backing_below_1")), "P(liquidation)": m.get("p_liquidation", m.get("liquidated")), "bad_debt_usd": m.get("expected_bad_debt_usd", m.get("bad_debt_usd"))}
            for n, m in t["scenarios"].items()
        ]
        token_sections.append(
            f"<h2>{html.escape(symbol)} — {html.escape(t['name'])} ({html.escape(t['kind'])}, spec v{t['spec_version']})</h2>"
            f"<p>Worst scenario ({html.escape(t['worst_scenario']['by'])}): <b>{html.escape(t['worst_scenario']['scenario'])}</b>, "
            f"{_fmt(t['worst_scenario']['holder_value_loss_30d_frac'], True)}. "
            f"P(backing &lt; 1) under Monte Carlo: <b>{_fmt(mc.get('p_backing_below_1'), True)}</b>; P(liquidation): <b>{_fmt(mc.get('p_liquidation'), True)}</b>; expected bad debt: <b>{_fmt(mc.get('expected_bad_debt_usd'))} USD</b>.</p>"
            "<h3>VaR and ES (Monte Carlo, champion model)</h3>" + _table(head, pct_cols=tuple(k for k in head[0] if "frac" in k))
            + _peg_liquidity_html(t)
            + "<h3>Scenarios</h3>" + _table(scen, pct_cols=("holder_loss_30d_frac", "P(backing<1)", "P(liquidation)"))
            + "<h3>Reverse stress test</h3>"
            + f"<p>Smallest breaking gold move: {html.escape(json.dumps(rs['smallest_breaking_move'], default=str))}. Closed form: {html.escape(json.dumps(rs['closed_form'], default=str))}</p>"
            + _table(rs["searches"])
            + _boundary_html(t)
        )
    bt = (summary["var_backtest"].get("holdout") or {})
    bt_rows = [{"level": k, **v} for k, v in bt.items()]
    ch = summary["champion"]
    prem = [{"token": k, **v} for k, v in summary.get("observed_token_premia", {}).items() if isinstance(v, dict)]
    css = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f4f1e8}h1{color:#8a6d0b}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>goldstress report {html.escape(summary['run_id'])}</title><style>{css}</style></head><body>"
        f"<h1>goldstress stress test — run {html.escape(summary['run_id'])}</h1>"
        f"<p>Generated {html.escape(summary['generated_at'])}. Gold data {html.escape(summary['data']['data_first_date'])} .. {html.escape(summary['data']['data_last_date'])} "
        f"({summary['data']['n_returns']:,} daily log returns; sha256 {html.escape(summary['data']['data_sha256'][:16])}…). Start price {summary['start_gold_usd_per_oz']:,.2f} USD/oz.</p>"
        f"<p>Champion model: <b>{html.escape(ch['candidate'])}</b> ({html.escape(ch['registered_model'])} v{html.escape(str(ch['version']))}), innovations {html.escape(ch['innovations'])}; "
        f"Monte Carlo {summary['monte_carlo']['mc_paths']:,} paths × {summary['monte_carlo']['mc_horizon_days']} days, seed {summary['monte_carlo']['mc_seed']}.</p>"
        "<h2>VaR backtest of the champion (hold-out)</h2>" + _table(bt_rows, pct_cols=("exception_rate",))
        + "".join(token_sections)
        + "<h2>Observed token premium to gold (curated data)</h2>" + _table(prem)
        + "<h2>Plots</h2>" + "".join(parts)
        + "</body></html>"
    )


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(summary: dict[str, Any], manifest: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write ``summary.json`` and ``report.html`` next to the run's Parquet results, link them as
    a Prefect artifact, log them to an MLflow run, and print where they are. Returns the URLs."""
    import mlflow

    from tasks import tracking
    from tasks.validation import load_curated

    run_url = storage.join(settings.report_url, summary["run_id"])
    try:
        gold = load_curated("gold", settings)
    except Exception:
        gold = None
    mc_res = next((r for r in manifest["scenarios"] if r["scenario"]["kind"] == "monte_carlo"), None)
    mc = storage.read_parquet(mc_res["url"], settings) if mc_res else None
    page = render_html(summary, manifest, figures(summary, manifest, gold, mc))
    summary_url = storage.write_json(storage.join(run_url, "summary.json"), summary, settings)
    report_url = storage.write_bytes(storage.join(run_url, "report.html"), page.encode("utf-8"), settings)
    outputs = {
        "run_id": summary["run_id"],
        "report_html": report_url,
        "summary_json": summary_url,
        "results_parquet": [r["url"] for r in manifest["scenarios"]],
        "manifest_json": storage.join(run_url, "manifest.json"),
    }
    _prefect_artifact(outputs, summary)
    experiment_id = tracking.configure(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"stress-{summary['run_id']}") as run:
        mlflow.set_tags({"stage": "stress_report", "goldstress_run_id": summary["run_id"], "champion_version": str(summary["champion"]["version"])})
        flat = {}
        for symbol, t in summary["tokens"].items():
            for k, v in t["scenarios"].get("mc_champion", {}).items():
                flat[f"{symbol}.{k}"] = v
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
    lines = [f"# goldstress run `{summary['run_id']}`", "", f"- report: [{outputs['report_html']}]({outputs['report_html']})", f"- summary: [{outputs['summary_json']}]({outputs['summary_json']})"]
    for symbol, t in summary["tokens"].items():
        mc = t["scenarios"].get("mc_champion", {})
        lines.append(f"- {symbol}: 99% 10-day VaR of holder value {mc.get('holder_value_var_99_10d_frac', float('nan')):.2%}, P(backing<1) {mc.get('p_backing_below_1', float('nan')):.2%}, worst scenario {t['worst_scenario']['scenario']}")
    create_markdown_artifact(key="goldstress-report", markdown="\n".join(lines), description="Latest goldstress stress-test report")
