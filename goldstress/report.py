"""The HTML report of a run: tables and offline-readable plotly figures built from the run's
``summary.json`` and ``manifest.json`` (as plain JSON mappings).

Plots use plotly with its JavaScript embedded once in the page (~4.8 MB), so the report opens
without a network connection (plotly docs, ``to_html(include_plotlyjs=True)``).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np
import pandas as pd


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
        "<tr>" + "".join(f"<td>{_fmt(r.get(c), c in pct_cols or c.endswith('_frac'))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figures(
    summary: dict[str, Any], manifest: dict[str, Any], gold: pd.DataFrame | None, mc: pd.DataFrame | None
) -> list[tuple[str, Any]]:
    """The report's plotly figures: price history with scenario windows, fan chart of simulated
    gold paths, holder-loss distributions and backing-ratio histograms (Monte Carlo), and the
    reverse stress boundary of the reserve-backed tokens."""
    import plotly.graph_objects as go

    figs: list[tuple[str, Any]] = []
    if gold is not None and not gold.empty:
        fig = go.Figure(
            go.Scattergl(x=gold["date"], y=gold["usd_per_oz"], mode="lines", name="gold, USD/oz", line={"width": 1})
        )
        episodes = [r["scenario"] for r in manifest["scenarios"] if r["scenario"]["kind"] == "historical"]
        for name, start, end in ((e["name"], e["start"], e["end"]) for e in episodes):
            fig.add_vrect(
                x0=start,
                x1=end,
                fillcolor="crimson",
                opacity=0.15,
                line_width=0,
                annotation_text=name,
                annotation_position="top left",
                annotation_font_size=9,
            )
        fig.update_layout(
            title="Gold price (LBMA PM, USD per troy ounce) with the historical replay windows",
            yaxis_type="log",
            yaxis_title="USD/oz (log scale)",
            height=420,
        )
        figs.append(("price_history", fig))
    mc_res = next((r for r in manifest["scenarios"] if r["scenario"]["kind"] == "monte_carlo"), None)
    if mc_res is not None:
        fq = mc_res["fan_quantiles"]
        days = np.arange(len(next(iter(fq.values()))))
        fig = go.Figure()
        for lo, hi, alpha in (("q0.01", "q0.99", 0.15), ("q0.05", "q0.95", 0.25), ("q0.25", "q0.75", 0.4)):
            fig.add_trace(
                go.Scatter(x=days, y=fq[hi], mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip")
            )
            fig.add_trace(
                go.Scatter(
                    x=days,
                    y=fq[lo],
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=f"rgba(212,160,23,{alpha})",
                    name=f"{lo[1:]}–{hi[1:]}",
                )
            )
        fig.add_trace(go.Scatter(x=days, y=fq["q0.5"], mode="lines", line={"color": "black"}, name="median"))
        fig.update_layout(
            title=f"Fan chart: simulated gold price paths ({mc_res['scenario']['description']}; quantiles over the first {manifest['settings'].get('fan_chart_paths', 'N')} paths)",
            xaxis_title="trading days ahead",
            yaxis_title="USD/oz",
            height=420,
        )
        figs.append(("fan_chart", fig))
    if mc is not None and not mc.empty:
        from plotly.subplots import make_subplots

        tokens = list(dict.fromkeys(mc["token"]))
        for key, title, cols, xlabel, fmt in (
            (
                "loss_distributions",
                "Loss distributions over 30 days (Monte Carlo; fraction of day-0 value per token, losses positive)",
                (
                    ("holder_loss_frac_30d", "holder value per token"),
                    ("reserve_per_token_loss_frac_30d", "reserve value per token outstanding"),
                ),
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
            fig = make_subplots(
                rows=1,
                cols=len(tokens),
                subplot_titles=[f"{t} (paths with supply left)" if key == "backing_ratio" else t for t in tokens],
            )
            for i, token in enumerate(tokens, start=1):
                g = mc[mc["token"] == token].replace([np.inf, -np.inf], np.nan)
                lo = min(g[c].quantile(0.001) for c, _ in cols)
                hi = max(g[c].quantile(0.995) for c, _ in cols)
                pad = 0.02 * (hi - lo) if hi > lo else 0.01
                for (c, label), colour in zip(cols, ("#b8860b", "#4169e1")):
                    fig.add_trace(
                        go.Histogram(
                            x=g[c].clip(lo - pad, hi + pad),
                            name=f"{token}: {label}",
                            opacity=0.55,
                            nbinsx=80,
                            marker_color=colour,
                        ),
                        row=1,
                        col=i,
                    )
                fig.update_xaxes(title_text=xlabel, tickformat=fmt, range=[lo - pad, hi + pad], row=1, col=i)
                if key == "backing_ratio" and lo - pad <= 1.0 <= hi + pad:
                    fig.add_vline(x=1.0, line_dash="dash", line_color="crimson", row=1, col=i)
            fig.update_layout(barmode="overlay", title=title, height=420)
            figs.append((key, fig))
    fig = reverse_stress_boundary_figure(summary)
    if fig is not None:
        figs.append(("reverse_stress_boundary", fig))
    return figs


def reverse_stress_boundary_figure(summary: dict[str, Any]) -> Any:
    """The reverse stress boundary of every reserve-backed token drawn in the (redemption share, gold fall)
    plane (MiCA Delegated Regulation (EU) 2025/1264 Art. 5(2)): one line per token through the
    smallest failing fall of each share; the token fails on and above its line. A share that
    fails without any fall is drawn at 0 (square marker); one that does not fail up to the
    largest fall searched is drawn at that fall (open marker, "no failure"). None when no token
    has a boundary."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for symbol, t in summary["tokens"].items():
        b = t.get("reverse_stress_boundary")
        if not b:
            continue
        xs, ys, symbols, text = [], [], [], []
        for r in b["rows"]:
            xs.append(r["redemption_share"])
            if r["fails_without_drop"]:
                y, marker, note = 0.0, "square", "fails without a gold fall"
            elif r["gold_drop_frac"] is None:
                y, marker, note = (
                    r.get("max_drop_frac", 0.99),
                    "circle-open",
                    "no failure up to the largest fall searched",
                )
            else:
                y, marker, note = r["gold_drop_frac"], "circle", "smallest failing fall"
            ys.append(y)
            symbols.append(marker)
            text.append(note)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=symbol,
                marker={"symbol": symbols, "size": 9},
                text=text,
                hovertemplate="%{x:.0%} of supply redeemed: %{y:.1%} gold fall (%{text})",
            )
        )
    if not fig.data:
        return None
    horizon = next(
        t["reverse_stress_boundary"]["horizon_days"]
        for t in summary["tokens"].values()
        if t.get("reverse_stress_boundary")
    )
    fig.update_layout(
        title=f"Reverse stress boundary (MiCA RTS 2025/1264 Art. 5(2)): gold fall over {horizon} days that makes the token fail, by share of supply redeemed",
        xaxis_title="share of the supply redeemed over the horizon",
        yaxis_title="gold fall (fraction)",
        xaxis_tickformat=".0%",
        yaxis_tickformat=".0%",
        height=420,
    )
    return fig


def _peg_liquidity_html(t: dict[str, Any]) -> str:
    """Peg and liquidity table of a reserve-backed token: Monte Carlo and each single-path scenario."""
    rows = []
    for name, m in t["scenarios"].items():
        if m.get("kind") == "monte_carlo" and "p_abs_premium_gt_1pct" in m:
            rows.append(
                {
                    "scenario": name,
                    "P(|premium|>1%)": m["p_abs_premium_gt_1pct"],
                    "P(|premium|>5%)": m["p_abs_premium_gt_5pct"],
                    "worst depeg depth (q99)": m["depeg_depth_q99_frac"],
                    "premium at end q1 / q50 / q99": " / ".join(
                        _fmt(m.get(f"premium_end_q{q}_frac"), True) for q in ("0.01", "0.5", "0.99")
                    ),
                    "longest depeg >1%, days (q99)": m["depeg_longest_days_beyond_1pct_q99"],
                    "recovery days (median)": m["depeg_recovery_days_1pct_median"],
                    "LCR 1d (q1)": m.get("liquidity_coverage_1d_q01"),
                    "LCR 5d (q1)": m.get("liquidity_coverage_5d_q01"),
                    "LCR 30d (q1)": m.get("liquidity_coverage_30d_q01"),
                    "queue max, tokens (q99)": m["redemption_queue_max_tokens_q99"],
                    "days to meet a wave (q99)": m["redemption_wait_max_days_q99"],
                }
            )
        elif "depeg_depth_frac" in m:
            rows.append(
                {
                    "scenario": name,
                    "P(|premium|>1%)": float(m["depeg_depth_frac"] > 0.01),
                    "P(|premium|>5%)": float(m["depeg_depth_frac"] > 0.05),
                    "worst depeg depth (q99)": m["depeg_depth_frac"],
                    "premium at end q1 / q50 / q99": _fmt(m.get("premium_end_frac"), True),
                    "longest depeg >1%, days (q99)": m.get("depeg_longest_days_beyond_1pct"),
                    "recovery days (median)": m.get("depeg_recovery_days_1pct"),
                    "LCR 1d (q1)": m.get("liquidity_coverage_min_1d"),
                    "LCR 5d (q1)": m.get("liquidity_coverage_min_5d"),
                    "LCR 30d (q1)": m.get("liquidity_coverage_min_30d"),
                    "queue max, tokens (q99)": m.get("redemption_queue_max_tokens"),
                    "days to meet a wave (q99)": m.get("redemption_wait_max_days"),
                }
            )
    if not rows:
        return ""
    return (
        "<h3>Peg and liquidity (secondary market and redemption model)</h3>"
        "<p>Premium/discount to NAV; LCR = liquid resources / stressed outflows (lowest daily value over the "
        "horizon; Monte Carlo: 1% quantile across paths). Single-path scenarios show their one outcome.</p>"
        + _table(rows, pct_cols=("P(|premium|>1%)", "P(|premium|>5%)", "worst depeg depth (q99)"))
    )


def _boundary_html(t: dict[str, Any]) -> str:
    """Reverse stress boundary table of a reserve-backed token (``reverse_stress_boundary`` of the summary),
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


def _ul(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in items) + "</ul>"


def _grid_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "redeem fee": r["redeem_fee"],
            "gate (share/day)": "none"
            if r["redemption_limit_share_per_day"] is None
            else r["redemption_limit_share_per_day"],
            "coverage (q at conf.)": r["coverage_q"],
            "P(coverage<target)": r["p_coverage_below_target"],
            "meets target": bool(r["meets_target"]),
            "P(|premium|>1%)": r["p_abs_premium_gt_1pct"],
            "depeg depth (q)": r["depeg_depth_q"],
            "refused/returned share": r["refused_share_mean"],
            "redeemed share": r["redeemed_share_mean"],
        }
        for r in rows
    ]


def _liquidity_stress_html(summary: dict[str, Any]) -> str:
    """The liquidity stress section, in the layout of Delegated Regulation (EU) 2025/1264:
    risks covered; parameters and calibration; scenarios and horizons; historical data used;
    outcome; remedies. "" when the run has no reserve-backed token."""
    ls = summary.get("liquidity_stress") or {}
    if not ls:
        return ""
    out = [f"<h2>Liquidity stress test</h2><p>Laid out as {html.escape(ls['regulation'])} asks.</p>"]
    out.append("<h3>1. Risks covered</h3>" + _ul(ls["risks_covered"]))
    out.append("<h3>2. Parameters and their calibration</h3>")
    for sym, p in ls["parameters"].items():
        pp = p["premium_process"]
        src = pp.get("source", "spec assumption")
        if src == "calibrated":
            fw, oos = pp.get("full_sample") or {}, pp.get("oos_scores") or {}
            prem_txt = (
                f"calibrated on set <b>{html.escape(str(pp.get('calibration_set')))}</b> ({html.escape(str(fw.get('first_date')))} .. "
                f"{html.escape(str(fw.get('last_date')))}, {fw.get('n_obs')} days, gold clock {html.escape(str((pp.get('clock') or {}).get('gold')))}); out of sample "
                f"(fit {html.escape(str((pp.get('fit_window') or {}).get('first_date')))} .. {html.escape(str((pp.get('fit_window') or {}).get('last_date')))}): "
                f"95% interval coverage {_fmt(oos.get('coverage_95'), True)}, q01 hit rate {_fmt(oos.get('q01_hit_rate'), True)}, "
                f"q99 hit rate {_fmt(oos.get('q99_hit_rate'), True)}. Parameters: {html.escape(json.dumps(pp.get('premium_process'), default=str))}"
            )
        else:
            prem_txt = f"spec assumption ({html.escape(str(pp.get('reason', 'no calibration configured')))}): {html.escape(json.dumps(pp.get('assumed'), default=str))}"
        pm = p["primary_market"]
        out.append(
            f"<h4>{html.escape(sym)}</h4>"
            + _table(p["reserve"], pct_cols=("stressed_haircut",))
            + "<p>Custody concentration:</p>"
            + _table(p["custody_concentration"], pct_cols=("share",))
            + f"<p>Primary market: redeem fee {_fmt(pm.get('redeem_fee'), True)}, mint fee {_fmt(pm.get('mint_fee'), True)}, minimum "
            f"{_fmt(pm.get('min_redemption_tokens'))} tokens, bars of {_fmt(pm.get('redemption_granularity_tokens'))}, settlement lag "
            f"{_fmt(pm.get('settlement_lag_days'))} open days, market hours {html.escape(str(pm.get('market_hours')))}, cash share "
            f"{_fmt(pm.get('cash_redemption_share'), True)}, gate {_fmt(pm.get('redemption_limit_share_per_day'), True) if pm.get('redemption_limit_share_per_day') else 'none'}; "
            f"attestation lag {_fmt(p.get('attestation_lag_days'))} days.</p><p>Premium process: {prem_txt}</p>"
            f"<p><i>{html.escape(p['calibration_note'])}</i></p>"
        )
    sh = ls["scenarios_and_horizons"]
    wave = sh.get("redemption_wave") or {}
    out.append(
        "<h3>3. Scenarios and horizons</h3>"
        + _ul(
            [
                f"Monte Carlo gold (champion): {sh['monte_carlo']['paths']:,} paths x {sh['monte_carlo']['horizon_days']} days, seed {sh['monte_carlo']['seed']}; "
                f"holder behaviour as in each spec; liquidity coverage over 1, 5, 10 and 30 days",
                f"Redemption wave ({html.escape(str(wave.get('wave_basis', '')))}): {_fmt(wave.get('wave_share_of_supply'), True)} of the supply requested within {wave.get('wave_days')} calendar days, coverage over "
                f"{wave.get('wave_horizon_trading_days')} trading days ({wave.get('horizon_calendar_days')} calendar days from {wave.get('first_day')}; {wave.get('clock', '')}), on "
                f"{_fmt(wave.get('search_paths'))} Monte Carlo gold paths (out-of-sample check on {_fmt(wave.get('out_of_sample_paths'))} more); "
                f"target: coverage >= {_fmt(wave.get('target_coverage'), True)} at {_fmt(wave.get('confidence'), True)} confidence; coverage = {wave.get('coverage', '')}",
                "Historical replays: "
                + ", ".join(f"{k} ({a} .. {b})" for k, (a, b) in sh["historical_replays"].items()),
                "Instant gold shocks: " + ", ".join(f"{x:+.0%}" for x in sh["instant_shocks"]),
                f"Reverse stress (Art. 5(2)): redemption shares {', '.join(f'{x:.0%}' for x in sh['reverse_stress']['redemption_shares'])} over "
                f"{sh['reverse_stress']['horizon_days']} days x gold falls up to 99%",
            ]
        )
    )
    hd = ls["historical_data"]
    g = hd["gold"]
    so = [
        {
            "token": sym,
            "file": v.get("file"),
            "proxy": v.get("proxy"),
            "from": v.get("first_date"),
            "to": v.get("last_date"),
            **{f"worst {h} fall": (v["worst"].get(h) or {}).get("fall_frac") for h in ("1d", "5d", "30d")},
            "worst 1d date": (v["worst"].get("1d") or {}).get("end_date"),
        }
        for sym, v in hd.get("supply_outflows", {}).items()
    ]

    def _files(data: Any) -> str | None:
        if not isinstance(data, dict):
            return None
        tok = data.get("token") or {}
        gold = (data.get("gold") or {}).get("aligned") or {}
        return "; ".join(
            f"{d.get('file')} {d.get('first_date')} .. {d.get('last_date')} (sha256 {str(d.get('sha256', ''))[:12]}…)"
            for d in (tok, gold)
            if d
        )

    tp = [
        {"token": sym, "source": e.get("source"), "set": e.get("calibration_set"), "files": _files(e.get("data"))}
        for sym, e in hd.get("token_premia", {}).items()
    ]
    out.append(
        "<h3>4. Historical data used</h3>"
        f"<p>Gold: {html.escape(str(g.get('data_source')))} {html.escape(str(g.get('data_first_date')))} .. {html.escape(str(g.get('data_last_date')))}, "
        f"{g.get('n_returns', 0):,} daily log returns, sha256 {html.escape(str(g.get('data_sha256', ''))[:16])}….</p>"
        "<p>Token premia to gold (calibration):</p>"
        + _table(tp)
        + "<p>Worst observed falls of the token supply proxy (net redemptions; revisions of the reported supply removed), beside the wave, whose basis is stated above:</p>"
        + _table(so, pct_cols=("worst 1d fall", "worst 5d fall", "worst 30d fall"))
    )
    orows = []
    for sym, o in ls["outcome"].items():
        mc, w = o.get("monte_carlo_behavioural") or {}, o.get("redemption_wave_without_remedy") or {}
        orows.append(
            {
                "token": sym,
                "MC LCR 1d (q1)": mc.get("liquidity_coverage_1d_q01"),
                "MC LCR 5d (q1)": mc.get("liquidity_coverage_5d_q01"),
                "MC LCR 30d (q1)": mc.get("liquidity_coverage_30d_q01"),
                "MC P(|premium|>1%)": mc.get("p_abs_premium_gt_1pct"),
                "wave: coverage (q)": w.get("coverage_q"),
                "wave: P(coverage<target)": w.get("p_coverage_below_target"),
                "wave: depeg depth (q)": w.get("depeg_depth_q"),
                "wave: backlog max share (q)": w.get("backlog_max_share_q"),
            }
        )
    out.append(
        "<h3>5. Outcome</h3>"
        + _table(
            orows,
            pct_cols=(
                "MC P(|premium|>1%)",
                "wave: P(coverage<target)",
                "wave: depeg depth (q)",
                "wave: backlog max share (q)",
            ),
        )
        + "<p>The reverse stress boundary of each token is in its own section above.</p>"
    )
    out.append("<h3>6. Remedies (each measured by re-running the scenario)</h3>")
    for sym, r in ls["remedies"].items():
        if r["cash_buffer_reachable"] and not r["cash_buffer_usd"]:
            buf = (
                f"Cash buffer: <b>none needed</b>: coverage (q) is already {_fmt(r['with_buffer']['coverage_q'])} under the wave "
                f"(out of sample {_fmt(r['with_buffer_out_of_sample']['coverage_q'])})."
            )
        elif r["cash_buffer_reachable"]:
            buf = (
                f"Cash buffer: <b>{_fmt(r['cash_buffer_usd'])} USD</b> ({_fmt(r['cash_buffer_frac_of_liabilities'], True)} of liabilities), "
                f"issuer-funded USD on top of the backing. Re-run with it: coverage (q) {_fmt(r['with_buffer']['coverage_q'])}, "
                f"P(coverage&lt;target) {_fmt(r['with_buffer']['p_coverage_below_target'], True)}; out of sample "
                f"{_fmt(r['with_buffer_out_of_sample']['coverage_q'])} / {_fmt(r['with_buffer_out_of_sample']['p_coverage_below_target'], True)} "
                f"(target {'met' if r['with_buffer_out_of_sample']['meets_target'] else '<b>not met</b>'}; the binomial standard error of a "
                f"{_fmt(1 - wave.get('confidence', 0.99), True)} tail share on {_fmt(wave.get('out_of_sample_paths'))} paths is "
                f"{_fmt(math.sqrt((1 - wave.get('confidence', 0.99)) * wave.get('confidence', 0.99) / max(wave.get('out_of_sample_paths') or 1, 1)), True)})."
            )
        else:
            buf = (
                f"Cash buffer: <b>not enough</b>: even {_fmt(r['cash_buffer_searched_up_to_usd'])} USD of cash leaves coverage (q) at "
                f"{_fmt(r['with_buffer']['coverage_q'])}: the binding side is the gold delivered in kind (bars), so the remedy is gold "
                "liquidity or a redemption gate, not cash."
            )
        cur, best = r["current_setting"], r["recommended_setting"]
        gate = lambda x: "none" if x is None else f"{x:.0%}/day"  # noqa: E731
        out.append(
            f"<h4>{html.escape(sym)}</h4><p>{buf}</p>"
            f"<p>Fee and gate: current redeem fee {_fmt(cur['redeem_fee'], True)}, gate {gate(cur['redemption_limit_share_per_day'])} -> recommended "
            f"<b>{_fmt(best['redeem_fee'], True)}, gate {gate(best['redemption_limit_share_per_day'])}</b> ({html.escape(best['rule'])}). "
            f"Under the wave: coverage (q) {_fmt(cur['wave']['coverage_q'])} -> {_fmt(best['wave']['coverage_q'])} (out of sample "
            f"{_fmt(best['wave_out_of_sample']['coverage_q'])}), depeg depth (q) {_fmt(cur['wave']['depeg_depth_q'], True)} -> "
            f"{_fmt(best['wave']['depeg_depth_q'], True)}, refused/returned {_fmt(cur['wave']['refused_share_mean'], True)} -> "
            f"{_fmt(best['wave']['refused_share_mean'], True)}. Behavioural Monte Carlo: P(|premium|&gt;1%) "
            f"{_fmt(cur['behavioural']['p_abs_premium_gt_1pct'], True)} -> {_fmt(best['behavioural']['p_abs_premium_gt_1pct'], True)}.</p>"
            + (
                f"<p><b>Note:</b> the recommended setting refuses {_fmt(best['wave']['refused_share_mean'], True)} of the supply in requests; "
                "holders of asset-referenced tokens have a right of redemption at all times (MiCA, Regulation (EU) 2023/1114, Art. 39(1)), "
                "so a gate is a contingency tool; the cash buffer above meets the target without refusing any request.</p>"
                if best["redemption_limit_share_per_day"] is not None and r["cash_buffer_reachable"]
                else ""
            )
            + "<details><summary>All settings re-run under the wave</summary>"
            + _table(_grid_rows(r["settings_grid"]["wave"]), pct_cols=_GRID_PCT)
            + "</details>"
            "<details><summary>All settings re-run under the behavioural Monte Carlo</summary>"
            + _table(_grid_rows(r["settings_grid"]["behavioural"]), pct_cols=_GRID_PCT)
            + "</details>"
        )
    return "".join(out)


def _num(v: Any) -> Any:
    """A summary number back from its JSON-safe form ("nan"/"inf" strings become None)."""
    return None if isinstance(v, str) and v in ("nan", "inf", "-inf") else v


_PREMIUM_GROUPS = (
    ("weekday_vs_same_day_close", "weekdays, against the same day's gold close"),
    ("saturday_vs_friday_close", "Saturday, against Friday's gold close"),
    ("sunday_vs_friday_close", "Sunday, against Friday's gold close"),
    ("weekend_vs_friday_close", "Saturday and Sunday, against Friday's gold close"),
    ("saturday_vs_monday_open", "Saturday, against Monday's gold open"),
    ("sunday_vs_monday_open", "Sunday, against Monday's gold open"),
    ("weekend_vs_monday_open", "Saturday and Sunday, against Monday's gold open"),
)


def _weekend_html(summary: dict[str, Any]) -> str:
    """The weekend gap section: the holder's weekend VaR/ES per token beside gold's
    Friday-close-to-Monday-open gap, the token's weekend move against gold's reopening, and the
    premium while the primary market is shut. "" when the run has no weekend section."""
    wk = summary.get("weekend") or {}
    if not wk:
        return ""
    units = wk.get("units", {})
    out = [
        "<h2>Weekend gap risk (the token trades, gold and the primary market are shut)</h2>",
        f"<p>Horizon: {html.escape(str(units.get('horizon', '')))}. Losses: {html.escape(str(units.get('var_es', '')))}.</p>",
    ]
    if wk.get("status") != "measured":
        return "".join(out) + f"<p>Not measured: {html.escape(str(wk.get('note', '')))}.</p>"
    gold, tokens = wk.get("gold", {}), wk.get("tokens", {})
    risk_rows, track_rows, prem_rows, notes = [], [], [], []

    def var_row(label: str, file: str, v: dict[str, Any]) -> dict[str, Any]:
        return {
            "series": label,
            "file": file,
            "weekends": v.get("n_weekends"),
            "from": v.get("first_friday"),
            "to": v.get("last_friday"),
            "VaR 95%": _num(v.get("var_95")),
            "ES 95%": _num(v.get("es_95")),
            "VaR 99%": _num(v.get("var_99")),
            "ES 99%": _num(v.get("es_99")),
            "weekends in the 99% tail (n x 1%)": _num(v.get("tail_weekends_99")),
            "worst weekend loss": _num(v.get("worst_loss")),
            "worst weekend (Friday)": v.get("worst_loss_friday"),
        }

    for name, t in tokens.items():
        label = f"{t.get('token')} ({name})"
        if t.get("status") != "measured":
            notes.append(f"{label}: not measured, {t.get('note')}")
            continue
        risk_rows.append(var_row(f"{label}: holder, token Friday to Sunday close", t["file"], t["holder_weekend"]))
        if "tracking" not in t:
            notes.append(f"{label}: {t.get('note')}")
            continue
        tr = t["tracking"]
        track_rows.append(
            {
                "token": label,
                "weekends": tr.get("n_weekends"),
                "correlation with gold's gap": _num(tr.get("correlation")),
                "tracking error mean": _num(tr.get("tracking_error_mean")),
                "tracking error sd": _num(tr.get("tracking_error_sd")),
                "share |difference| > 0.5%": _num(tr.get("share_abs_difference_above_0.5pct")),
                "share |difference| > 1%": _num(tr.get("share_abs_difference_above_1pct")),
                "largest |difference|": _num(tr.get("max_abs_difference")),
                "on (Friday)": tr.get("max_abs_difference_friday"),
                "weekends skipped": ", ".join(f"{k} {v}" for k, v in tr.get("skipped", {}).items()) or "none",
            }
        )
        for key, text in _PREMIUM_GROUPS:
            g = t["premium"].get(key, {})
            prem_rows.append(
                {
                    "token": label,
                    "days": text,
                    "n": g.get("n_days"),
                    "mean": _num(g.get("mean")),
                    "sd": _num(g.get("sd")),
                    "1% quantile": _num(g.get("q01")),
                    "99% quantile": _num(g.get("q99")),
                    "share |premium| > 0.5%": _num(g.get("share_abs_above_0.5pct")),
                    "share |premium| > 1%": _num(g.get("share_abs_above_1pct")),
                }
            )
    if gold.get("status") == "measured":
        risk_rows.append(var_row("gold: Friday close to Monday open", gold["file"], gold["gap_var_es"]))
        skipped = ", ".join(f"{k} {v}" for k, v in gold.get("skipped", {}).items()) or "none"
        notes.append(f"gold weekends skipped: {skipped}")
        if gold.get("opens_removed_on_import"):
            notes.append(
                "Monday opens removed on import as known bad prints (goldstress/data_quirks.toml): "
                + ", ".join(gold["opens_removed_on_import"])
            )
    else:
        notes.append(f"gold: not measured, {gold.get('note')}")
    pct = ("VaR 95%", "ES 95%", "VaR 99%", "ES 99%", "worst weekend loss")
    out.append(
        "<h3>Value at risk over one weekend (loss fraction of holder value)</h3>"
        "<p>Empirical figures from the weekends in each file: where n x 1% is about two weekends, the 99% VaR and ES "
        "are one or two observed weekends, not a tail estimate. Gold's row is the gap a gold holder bore over the "
        "same clock (Friday close to Monday open) from the much longer broker history.</p>" + _table(risk_rows, pct)
    )
    out.append(
        f"<h3>The token's weekend move against gold's reopening</h3><p>{html.escape(str(units.get('tracking', '')))}. "
        "A weekend is skipped when a needed close or open is missing; a Monday without a gold bar (holiday) is skipped, "
        "not bridged to Tuesday.</p>"
        + _table(
            track_rows,
            (
                "tracking error mean",
                "tracking error sd",
                "share |difference| > 0.5%",
                "share |difference| > 1%",
                "largest |difference|",
            ),
        )
    )
    out.append(
        f"<h3>Premium while the primary market is shut</h3><p>{html.escape(str(units.get('premium', '')))}.</p>"
        + _table(
            prem_rows,
            ("mean", "sd", "1% quantile", "99% quantile", "share |premium| > 0.5%", "share |premium| > 1%"),
        )
    )
    return "".join(out) + _ul(notes)


_BACKTEST_COLS = {
    "n_obs": "days",
    "n_exceptions": "breaches",
    "expected_exceptions": "expected breaches",
    "exception_rate": "breach rate",
    "kupiec_p_value": "Kupiec p",
    "christoffersen_p_value": "Christoffersen p",
    "quantile_loss": "quantile loss",
    "basel_exceptions_last_250d": "breaches, last 250 d",
    "basel_zone_last_250d": "Basel zone (99%)",
}


def _window_text(w: dict[str, Any] | None) -> str:
    if not w:
        return "–"
    return f"{w['first_date']} .. {w['last_date']} ({w['n_returns']:,} returns)"


def champion_backtest_html(var_backtest: dict[str, Any]) -> str:
    """The report's section on the champion: the fitting, validation and hold-out windows, every
    candidate's scores on the validation window (where the champion was picked), the champion's
    1-day VaR backtest on the later hold-out (breaches, expected breaches, Kupiec 1995 and
    Christoffersen 1998 p-values, Basel Committee 1996 zone), and the parameters of the
    backtested fit beside those of the full-sample refit the Monte Carlo simulates.

    ``var_backtest`` is the summary's ``var_backtest`` section
    (:meth:`goldstress.records.ChampionRecord.var_backtest_summary`); a run recorded before the
    validation window existed has only ``holdout`` and ``method``, and the other parts read
    "(none)". Returns an HTML fragment.
    """
    windows = var_backtest.get("windows") or {}
    selection = var_backtest.get("selection") or {}
    params = var_backtest.get("parameters") or {}
    sel_rows = [
        {
            "candidate": c["candidate"] + (" (champion)" if c["candidate"] == selection.get("champion") else ""),
            "score (summed quantile loss)": c["score"],
            "passes Kupiec (5%)": c["passes_kupiec"],
            **{
                f"{label} {float(lvl):.0%}": bt.get(key)
                for lvl, bt in c["backtests"].items()
                for key, label in (("n_exceptions", "breaches"), ("kupiec_p_value", "Kupiec p"))
            },
        }
        for c in selection.get("candidates") or []
    ]
    bt_rows = [
        {"VaR level": f"{float(lvl):.0%}", **{label: bt.get(key) for key, label in _BACKTEST_COLS.items()}}
        for lvl, bt in (var_backtest.get("holdout") or {}).items()
    ]
    backtested, full = params.get("backtested") or {}, params.get("full_sample") or {}
    names = list((full.get("params") or backtested.get("params") or {}).keys())
    par_rows = [
        {
            "parameter": name,
            "backtested fit": (backtested.get("params") or {}).get(name),
            "full-sample refit (Monte Carlo)": (full.get("params") or {}).get(name),
        }
        for name in names
    ]
    return (
        "<h2>Champion: selection on the validation window, VaR backtest on the hold-out</h2>"
        + _ul(
            [
                f"Fitting window: {_window_text(windows.get('fit'))}",
                f"Validation window (champion picked here): {_window_text(windows.get('validation'))}",
                f"Backtest hold-out (after the validation window, not seen by any fit or by the selection): {_window_text(windows.get('holdout'))}",
            ]
        )
        + f"<p>Selection rule: {html.escape(str(selection.get('rule', '–')))}.</p>"
        + _table(sel_rows)
        + "<h3>Backtest of the champion on the hold-out</h3>"
        + _table(bt_rows, pct_cols=("breach rate",))
        + f"<p>{html.escape(str(var_backtest.get('method', '')))}</p>"
        + "<h3>Parameters (daily log returns)</h3>"
        + f"<p>Backtested fit: {html.escape(_window_text(backtested.get('window')))}; full-sample refit: {html.escape(_window_text(full.get('window')))}.</p>"
        + _table(par_rows)
    )


_MVH_STATS = (
    ("sd", "sd", True),
    ("q01", "1% quantile", True),
    ("q05", "5% quantile", True),
    ("q95", "95% quantile", True),
    ("q99", "99% quantile", True),
    ("share_abs_gt_0.5pct", "share of days |premium| > 0.5%", True),
    ("share_abs_gt_1pct", "share of days |premium| > 1%", True),
    ("longest_run_abs_gt_1pct", "longest run beyond 1% (days)", False),
)
_MVH_WINDOWS = (
    ("in_sample", "in sample (fit window)"),
    ("out_of_sample", "out of sample (test window)"),
    ("full_sample", "full sample (the stress test's process)"),
)


def model_vs_history_html(summary: dict[str, Any]) -> str:
    """The "model vs history" section: per token the verdict, the observed premium beside the
    simulated one on the real gold path, the premium band backtest and the clock noise."""
    mvh = summary.get("model_vs_history") or {}
    if not mvh:
        return ""
    out = [
        "<h2>Model vs history: the premium</h2><p>The token model replays the real gold path of each "
        "calibration window; the premium it simulates is set beside the observed one on the observed days "
        "(median and 90% range over the simulated paths), and the fitted process's one-day-ahead 1-99% band is "
        "backtested like a VaR (Kupiec). Method: docs/models/premium-validation.md.</p>"
    ]
    for symbol, m in mvh.items():
        if m.get("status") != "validated":
            out.append(f"<h3>{html.escape(symbol)}: not validated</h3><p>{html.escape(str(m.get('reason', '')))}</p>")
            continue
        verdict = str(m.get("verdict", ""))
        colour = "#1a7f37" if verdict == "pass" else "#b42318"
        out.append(
            f"<h3>{html.escape(symbol)}: <span style='color:{colour}'>{html.escape(verdict.upper())}</span></h3>"
            f"<p>Rule: {html.escape(str(m.get('rule', '')))}. Premium process in the stress test: "
            f"{html.escape(str(m.get('premium_process_source', '')))} (set {html.escape(str(m.get('calibration_set', '')))}).</p>"
            + _ul(list(m.get("reasons") or []))
        )
        rows, bt_rows = [], []
        for key, label in _MVH_WINDOWS:
            w = m.get(key) or {}
            dist = (w.get("distribution") or {}).get("statistics") or {}
            for stat, name, pct in _MVH_STATS:
                st = dist.get(stat)
                if st is None:
                    continue
                rows.append(
                    {
                        "window": f"{label} {'..'.join(w.get('window', []))}",
                        "statistic": name,
                        "observed": _fmt(st["observed"], pct),
                        "simulated median": _fmt(st["simulated_median"], pct),
                        "simulated 90% range": f"{_fmt(st['simulated_lo'], pct)} .. {_fmt(st['simulated_hi'], pct)}",
                        "inside": "yes" if st["within"] else "NO",
                    }
                )
            bt = w.get("band_backtest") or {}
            if bt:
                bt_rows.append(
                    {
                        "window": label,
                        "days": bt["n_steps"],
                        "outside 1-99% band": _fmt(bt["share_outside"], True),
                        "expected": _fmt(bt["expected_share_outside"], True),
                        "below / above": f"{bt['below']} / {bt['above']}",
                        "Kupiec p": _fmt(bt["kupiec_p"]),
                        "Christoffersen p": _fmt(bt["christoffersen_p"]),
                    }
                )
        out.append(_table(rows) + "<h4>Premium band backtest</h4>" + _table(bt_rows))
        for pair, cn in (m.get("clock_noise") or {}).items():
            out.append(
                f"<p>Clock noise ({html.escape(pair)}, {cn['n_days']} common days): the two premia correlate "
                f"{_fmt(cn['correlation'])}; the common part, the gold move between the gold close and the tokens' "
                f"24:00 UTC close, has sd {_fmt(cn['clock_noise_sd'], True)} ({_fmt(cn['clock_noise_share_of_variance_a'], True)} "
                f"and {_fmt(cn['clock_noise_share_of_variance_b'], True)} of the two premia's variance); net of it the premia's "
                f"sds are {_fmt(cn['premium_sd_net_a'], True)} and {_fmt(cn['premium_sd_net_b'], True)}. Their price ratio, "
                f"on one clock, has sd {_fmt(cn['ratio_sd'], True)}.</p>"
            )
    return "".join(out)


VALUE_ROWS = (
    ("holder value per token", "holder_value", "usd_per_token"),
    ("reserve value per token outstanding", "reserve_per_token", "usd_per_token"),
)
"""VaR/ES table rows of the report: label, summary key prefix, unit of the USD figure."""


def var_es_rows(mc: dict[str, Any], horizons: list[int], levels: list[str]) -> list[dict[str, Any]]:
    """The report's VaR/ES table of one token's Monte Carlo: for holder value and reserve value
    per token outstanding, the loss at each horizon and at the window's end (VaR, ES as fractions
    of the day-0 value; VaR in USD per token), then the peak-to-trough fall over the window."""
    rows = []
    end = mc.get("horizon_days")
    for label, who, unit in VALUE_ROWS:
        for h in [*horizons, "end"]:
            where = f"{h}d" if h != "end" else "end"
            row: dict[str, Any] = {"value": label, "horizon": f"{h} days" if h != "end" else f"end ({end} days)"}
            for lvl in levels:
                row[f"VaR {lvl}% (frac)"] = mc.get(f"{who}_var_{lvl}_{where}_frac")
                row[f"ES {lvl}% (frac)"] = mc.get(f"{who}_es_{lvl}_{where}_frac")
                row[f"VaR {lvl}% ({unit})"] = mc.get(f"{who}_var_{lvl}_{where}_{unit}")
            rows.append(row)
        row = {"value": label, "horizon": f"peak-to-trough over {end} days"}
        for lvl in levels:
            row[f"VaR {lvl}% (frac)"] = mc.get(f"{who}_max_drawdown_var_{lvl}_frac")
            row[f"ES {lvl}% (frac)"] = mc.get(f"{who}_max_drawdown_es_{lvl}_frac")
            row[f"VaR {lvl}% ({unit})"] = None
        rows.append(row)
    return rows


SCENARIO_COLUMNS = (
    ("window_days", "window, days"),
    ("holder_loss_frac_end", "holder loss at end"),
    ("holder_max_drawdown_frac", "holder peak-to-trough"),
    ("reserve_per_token_loss_frac_end", "reserve per token: loss at end"),
    ("reserve_per_token_max_drawdown_frac", "reserve per token: peak-to-trough"),
    ("backing_ratio_min", "backing min"),
)
"""Whole-window columns of the report's scenario table (``scenario_table`` rows of the summary):
summary key, header."""


def scenario_rows(t: dict[str, Any], table: list[dict[str, Any]], symbol: str) -> list[dict[str, Any]]:
    """The report's scenario table of one token: the summary's ``scenario_table`` rows (whole-window
    figures; Monte Carlo: expected shortfall of each loss, 0.1% quantile of the minimum backing)
    with the breach, bad-debt, redemption-outflow and fee figures of each scenario (Monte Carlo:
    probability, mean)."""
    rows = []
    for r in (r for r in table if r["token"] == symbol):
        m = t["scenarios"][r["scenario"]]
        mc = m["kind"] == "monte_carlo"
        row: dict[str, Any] = {"scenario": r["scenario"], "kind": r["kind"]}
        row.update({head: r.get(key) for key, head in SCENARIO_COLUMNS})
        row["P(backing<1)"] = m.get("p_backing_below_1", m.get("backing_below_1"))
        row["P(liquidation)"] = m.get("p_liquidation", m.get("liquidated"))
        row["bad_debt_usd"] = m.get("expected_bad_debt_usd", m.get("bad_debt_usd"))
        sfx = "_mean" if mc else ""
        row["redeemed share of day-0 supply"] = m.get(f"redeemed_frac_of_day0_supply_end{sfx}")
        row["redemption outflow, USD"] = m.get(f"redemption_outflow_usd_end{sfx}")
        row["issuer fee revenue, USD"] = m.get(f"issuer_fee_revenue_usd_end{sfx}")
        rows.append(row)
    return rows


SCENARIO_PCT = (
    "holder loss at end",
    "holder peak-to-trough",
    "reserve per token: loss at end",
    "reserve per token: peak-to-trough",
    "P(backing<1)",
    "P(liquidation)",
    "redeemed share of day-0 supply",
)


def worst_scenario_html(w: dict[str, Any]) -> str:
    """The worst-scenario sentence: the single-path scenario with the largest figure named in
    ``w["by"]`` over its window, and the Monte Carlo tail reported apart."""
    out = (
        f"<p>Worst single-path scenario (by <code>{html.escape(str(w['by']))}</code>: {html.escape(str(w.get('description', '')))}): "
        f"<b>{html.escape(str(w['scenario']))}</b>, {_fmt(w['value'], True)} over {_fmt(w.get('window_days'))} days."
    )
    tail = w.get("monte_carlo_tail")
    if tail:
        out += (
            f" Monte Carlo tail ({html.escape(str(tail['scenario']))}, <code>{html.escape(str(tail['figure']))}</code>, "
            f"{html.escape(str(tail['statistic']))} over {_fmt(tail.get('horizon_days'))} days): <b>{_fmt(tail['value'], True)}</b>."
        )
    return out + "</p>"


def reverse_stress_html(rs: dict[str, Any]) -> str:
    """The reverse stress statement (true of the model: the closed form where it agrees with the
    model's search, else the search), its source and the searches."""
    st = rs.get("statement") or {}
    cf = rs.get("closed_form") or {}
    return (
        "<h3>Reverse stress test</h3>"
        f"<p><b>{html.escape(str(st.get('text', '')))}</b> (source: {html.escape(str(st.get('source', '')))}; "
        f"{html.escape(str(st.get('note', '')))}).</p>"
        f"<p>Closed form: {html.escape(str(cf.get('statement', '')))} (move {_fmt(cf.get('move_frac'), True)}; "
        f"agrees with the model's search: {_fmt(cf.get('agrees_with_search'))}). Smallest breaking move searched: "
        f"{html.escape(json.dumps(rs.get('smallest_breaking_move'), default=str))}; the model breaks at a flat gold "
        f"price on day {_fmt(rs.get('model_breaks_without_move_day'))} of {_fmt(rs.get('window_days'))}.</p>"
        + _table(rs["searches"])
    )


def _token_html(
    symbol: str, t: dict[str, Any], horizons: list[int], levels: list[str], table: list[dict[str, Any]]
) -> str:
    """One token's section of the report (``table``: the summary's ``scenario_table``)."""
    mc = t["scenarios"].get("mc_champion", {})
    head = var_es_rows(mc, horizons, levels)
    flows = ""
    if "redeemed_frac_of_day0_supply_end_mean" in mc:
        flows = (
            f"<p>Reserve value per token outstanding at day 0: <b>{_fmt(mc.get('reserve_usd_per_token_d0'))} USD</b>. "
            f"Monte Carlo over {_fmt(mc.get('horizon_days'))} days: tokens redeemed {_fmt(mc.get('redeemed_frac_of_day0_supply_end_mean'), True)} "
            f"of the day-0 supply on average (q99 {_fmt(mc.get('redeemed_frac_of_day0_supply_end_q99'), True)}), "
            f"{_fmt(mc.get('redemption_outflow_usd_end_mean'))} USD paid out of the reserve "
            f"({_fmt(mc.get('redemption_outflow_frac_of_day0_liabilities_end_mean'), True)} of the day-0 liabilities); "
            f"fees to the issuer {_fmt(mc.get('issuer_fee_revenue_usd_end_mean'))} USD, credited to the reserve "
            f"{_fmt(mc.get('reserve_fee_income_usd_end_mean'))} USD (means). A redemption paid at the backing value "
            "is not a reserve loss: the reserve figures are per token outstanding.</p>"
        )
    return (
        f"<h2>{html.escape(symbol)} — {html.escape(t['name'])} ({html.escape(t['kind'])}, spec v{t['spec_version']})</h2>"
        + worst_scenario_html(t["worst_scenario"])
        + f"<p>P(backing &lt; 1) under Monte Carlo: <b>{_fmt(mc.get('p_backing_below_1'), True)}</b>; P(liquidation): "
        f"<b>{_fmt(mc.get('p_liquidation'), True)}</b>; expected bad debt: <b>{_fmt(mc.get('expected_bad_debt_usd'))} USD</b>.</p>"
        + flows
        + "<h3>VaR and ES (Monte Carlo, champion model)</h3>"
        + _table(head, pct_cols=tuple(k for k in head[0] if "frac" in k))
        + _peg_liquidity_html(t)
        + "<h3>Scenarios (whole window)</h3><p>Single-path scenarios: realised figures over each one's window. "
        "Monte Carlo row: expected shortfall at the highest level of each loss, 0.1% quantile of the minimum backing, "
        "probabilities and means of the rest.</p>"
        + _table(scenario_rows(t, table, symbol), pct_cols=SCENARIO_PCT)
        + reverse_stress_html(t["reverse_stress"])
        + _boundary_html(t)
    )


def render_html(summary: dict[str, Any], manifest: dict[str, Any], figs: list[tuple[str, Any]]) -> str:
    """The full self-contained HTML report."""
    parts = []
    for i, (name, fig) in enumerate(figs):
        parts.append(
            f'<section id="{name}">'
            + fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
            + "</section>"
        )
    levels = [f"{round(float(x) * 100):d}" for x in manifest["settings"].get("var_levels", (0.95, 0.99))]
    token_sections = [
        _token_html(symbol, t, manifest["settings"]["horizons_days"], levels, summary["scenario_table"])
        for symbol, t in summary["tokens"].items()
    ]
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
        + champion_backtest_html(summary["var_backtest"])
        + "".join(token_sections)
        + _liquidity_stress_html(summary)
        + _weekend_html(summary)
        + model_vs_history_html(summary)
        + "<h2>Observed token premium to gold (curated data)</h2>"
        + _table(prem)
        + "<h2>Plots</h2>"
        + "".join(parts)
        + "</body></html>"
    )


_GRID_PCT = (
    "redeem fee",
    "P(coverage<target)",
    "P(|premium|>1%)",
    "depeg depth (q)",
    "refused/returned share",
    "redeemed share",
)
