/* goldstress dashboard: plain browser JavaScript, no build step, no CDN.
 *
 * Reads the stakeholder API (see notes/SERVICE_CONTRACT.md / the app's /docs):
 *   GET  /api/runs/latest, /api/runs?limit=50, /api/runs/{id}/summary, /api/runs/{id}/fan,
 *        /api/metrics/timeseries?token=&metric=&scenario=
 *        /api/runs/{id}/files, /api/runs/{a}/compare/{b}, /api/whoami, /api/presets
 *   POST /api/whatif (then GET /api/whatif/{id} while it is scheduled/running)
 * Auth is the HttpOnly session cookie set by POST /api/token (login page); a 401 sends the
 * browser back to /login.
 *
 * Every figure is an element with a stable data-testid and a data-value attribute holding the
 * raw number exactly as read from the JSON (String(number) is the shortest round-trip form, so
 * float(data-value) == the JSON number), e.g. data-testid="headline-GRAM-var99-10d".
 * Non-finite numbers arrive as the strings "inf", "-inf", "nan" (summary.json is strict JSON)
 * and are kept as such in data-value. All text goes through textContent (never innerHTML).
 */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const PLOT_CONFIG = { displaylogo: false, responsive: true };
  const BASE_LAYOUT = {
    height: 380,
    margin: { l: 60, r: 20, t: 40, b: 50 },
    font: { family: "system-ui, sans-serif", size: 12 },
    paper_bgcolor: "#fff",
    plot_bgcolor: "#fff",
  };
  const MC_SCENARIO = "mc_champion";
  const HISTORY_METRICS = [
    { metric: "holder_value_var_99_10d_frac", div: "plot-history-var", title: "99% 10-day VaR of holder value (fraction of day-0 value), per run", tickformat: ".1%" },
    { metric: "backing_ratio_min_q1", div: "plot-history-backing", title: "Backing ratio: 1% quantile of the path minimum (Monte Carlo), per run", tickformat: ".3f", hline: 1 },
  ];
  const WHATIF_POLL_MS = 2000;
  const WHATIF_POLL_MAX = 450; // 15 minutes at 2 s
  const TERMINAL = new Set(["completed", "failed", "crashed", "cancelled", "canceled", "error"]);

  // ---------------------------------------------------------------- API access

  class ApiError extends Error {
    constructor(status, message, body, retryAfter) {
      super(message);
      this.status = status;
      this.body = body;
      this.retryAfter = retryAfter;
    }
  }

  function detailOf(body) {
    if (body === null || body === undefined) return "";
    if (typeof body === "string") return body.slice(0, 300);
    const d = body.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) {
      return d.map((e) => (Array.isArray(e.loc) ? e.loc.join(".") + ": " : "") + (e.msg || JSON.stringify(e))).join("; ");
    }
    return JSON.stringify(body).slice(0, 300);
  }

  async function api(path, init) {
    const opts = Object.assign({}, init || {});
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    opts.credentials = "same-origin";
    const resp = await fetch(path, opts);
    if (resp.status === 401) {
      window.location.assign("/login");
      throw new ApiError(401, "not logged in: redirecting to the login page", null, null);
    }
    const ctype = resp.headers.get("content-type") || "";
    const body = ctype.includes("json") ? await resp.json() : await resp.text();
    if (!resp.ok) {
      throw new ApiError(resp.status, `${resp.status} ${detailOf(body) || resp.statusText}`, body, resp.headers.get("Retry-After"));
    }
    return { status: resp.status, body };
  }

  // ---------------------------------------------------------------- numbers and DOM

  /** JSON value -> JS number (null when absent/not numeric; "inf"/"-inf"/"nan" strings mapped). */
  function num(v) {
    if (typeof v === "number") return v;
    if (v === "inf") return Infinity;
    if (v === "-inf") return -Infinity;
    if (v === "nan") return NaN;
    return null;
  }

  /** The data-value string: the raw JSON value ("" when absent). */
  function raw(v) {
    if (v === null || v === undefined) return "";
    return String(v);
  }

  function special(x) {
    if (x === null || Number.isNaN(x)) return "–";
    if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
    return null;
  }

  function fmtPct(v, digits = 2) {
    const x = num(v);
    return special(x) ?? (x * 100).toFixed(digits) + "%";
  }

  function fmtUsd(v) {
    const x = num(v);
    const s = special(x);
    if (s) return s;
    const digits = Math.abs(x) < 100 ? 2 : 0;
    return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) + " USD";
  }

  function fmtNum(v, digits = 4) {
    const x = num(v);
    const s = special(x);
    if (s) return s;
    if (Number.isInteger(x)) return x.toLocaleString("en-US");
    return Math.abs(x) >= 1e4 ? x.toLocaleString("en-US", { maximumFractionDigits: 0 }) : Number(x.toPrecision(digits)).toString();
  }

  /** Format by key name (units are in the names: _frac, _usd, p_..., booleans). */
  function fmtByKey(key, v) {
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (v === null || v === undefined) return "–";
    if (typeof v === "string" && num(v) === null) return v;
    if (/_frac(_|$)/.test(key) || /^p_/.test(key) || /_(share|rate)(_per_day)?$/.test(key)) return fmtPct(v);
    if (/_usd(_|$)/.test(key)) return fmtUsd(v);
    return fmtNum(v);
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  /** A figure element: stable data-testid, raw data-value, formatted text. */
  function fig(testid, value, text, extra) {
    return el("span", Object.assign({ class: "figure", "data-testid": testid, "data-value": raw(value), text }, extra || {}));
  }

  function showError(container, where, err) {
    container.replaceChildren(el("p", { class: "error", "data-testid": `error-${where}`, text: `${where}: ${err && err.message ? err.message : err}` }));
  }

  function setStatus(text, kind) {
    const s = $("status");
    s.textContent = text;
    s.className = "status" + (kind ? " " + kind : "");
  }

  function plotlyReady() {
    return typeof window.Plotly !== "undefined";
  }

  async function plot(div, traces, layout) {
    if (!plotlyReady()) {
      div.replaceChildren(el("p", { class: "error", "data-testid": "error-plotly", text: "plotly.js is not available at /static/plotly.min.js: plots are off" }));
      return;
    }
    await window.Plotly.react(div, traces, Object.assign({}, BASE_LAYOUT, layout));
    div.setAttribute("data-n-traces", String(traces.length));
  }

  function hline(y) {
    return { type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { dash: "dash", color: "crimson", width: 1 } };
  }

  const plotNum = (v) => {
    const x = num(v);
    return x === null || !Number.isFinite(x) ? null : x;
  };

  // ---------------------------------------------------------------- run metadata

  function renderMeta(summary) {
    const d = summary.data || {};
    const ch = summary.champion || {};
    const mc = summary.monte_carlo || {};
    $("run-meta").replaceChildren(
      "Run ", el("code", { "data-testid": "run-id", text: summary.run_id }),
      ` generated ${summary.generated_at || "?"}. Gold data ${d.data_first_date || "?"} .. ${d.data_last_date || "?"} `,
      `(${fmtNum(d.n_returns)} daily log returns), start price `,
      fig("start-price", summary.start_gold_usd_per_oz, `${fmtNum(summary.start_gold_usd_per_oz, 6)} USD/oz`),
      `. Champion: ${ch.candidate || "?"} (${ch.registered_model || "?"} v${ch.version ?? "?"}, ${ch.innovations || "?"} innovations). `,
      `Monte Carlo: ${fmtNum(mc.mc_paths)} paths × ${fmtNum(mc.mc_horizon_days)} days, seed ${mc.mc_seed ?? "?"}.`,
    );
    const link = $("report-link");
    link.href = `/api/runs/${encodeURIComponent(summary.run_id)}/report.html`;
  }

  // ---------------------------------------------------------------- headline figures

  const HEADLINES = [
    { id: "var99-10d", key: "holder_value_var_99_10d_frac", usdKey: "holder_value_var_99_10d_usd_per_token", usdUnit: "USD per token" },
    { id: "es99-10d", key: "holder_value_es_99_10d_frac", usdKey: "holder_value_es_99_10d_usd_per_token", usdUnit: "USD per token" },
    { id: "var99-1d", key: "holder_value_var_99_1d_frac" },
    { id: "var99-30d", key: "holder_value_var_99_30d_frac" },
    { id: "reserve-per-token-var99-10d", key: "reserve_per_token_var_99_10d_frac", usdKey: "reserve_per_token_var_99_10d_usd_per_token", usdUnit: "USD per token" },
    { id: "p-backing-below-1", key: "p_backing_below_1" },
    { id: "p-liquidation", key: "p_liquidation" },
    { id: "expected-bad-debt-usd", key: "expected_bad_debt_usd" },
  ];

  /** Human label with confidence level and horizon, derived from the metric key. */
  function metricLabel(key, horizonDays) {
    const m = key.match(/^(holder_value|reserve_per_token)_(var|es)_(\d+)_(\d+)d_frac$/);
    if (m) return `${m[3]}% ${m[4]}-day ${m[2] === "var" ? "VaR" : "ES"} of ${m[1] === "holder_value" ? "holder value" : "reserve value per token outstanding"}`;
    const within = horizonDays ? ` within ${horizonDays} days` : "";
    if (key === "p_backing_below_1") return `P(backing ratio < 1 on any day${within})`;
    if (key === "p_liquidation") return `P(liquidation${within})`;
    if (key === "expected_bad_debt_usd") return `Expected bad debt${within} (USD)`;
    return key;
  }

  function renderHeadlines(summary) {
    const box = $("headlines");
    const H = (summary.monte_carlo || {}).mc_horizon_days;
    const cards = [];
    for (const [symbol, t] of Object.entries(summary.tokens || {})) {
      const mc = (t.scenarios || {})[MC_SCENARIO];
      const rows = [];
      if (!mc) {
        rows.push(el("p", { class: "note", text: "No Monte Carlo scenario in this run." }));
      } else {
        for (const h of HEADLINES) {
          if (!(h.key in mc)) continue;
          const label = metricLabel(h.key, H);
          const text = h.key.endsWith("_usd") ? fmtUsd(mc[h.key]) : fmtPct(mc[h.key]);
          const extra = [];
          if (h.usdKey && h.usdKey in mc) extra.push(el("span", { class: "aside", text: ` (${fmtNum(mc[h.usdKey], 4)} ${h.usdUnit})` }));
          if (h.key === "p_liquidation" && t.kind === "gold_backed") extra.push(el("span", { class: "aside", text: " (no liquidations for a gold-backed token)" }));
          rows.push(el("div", { class: "headline" },
            el("span", { class: "label", "data-testid": `label-${symbol}-${h.id}`, text: label + ": " }),
            fig(`headline-${symbol}-${h.id}`, mc[h.key], text, { "data-metric": h.key }),
            extra));
        }
      }
      const w = t.worst_scenario;
      if (w) {
        rows.push(el("div", { class: "headline" },
          el("span", { class: "label", "data-testid": `label-${symbol}-worst-scenario`, text: "Worst single-path scenario (peak-to-trough holder loss over its window): " }),
          fig(`headline-${symbol}-worst-scenario`, w.value, `${w.scenario}: ${fmtPct(w.value)} over ${fmtNum(w.window_days)} days`,
            { "data-scenario": w.scenario, "data-by": w.by, title: w.description || `ranked by ${w.by}` })));
        const tail = w.monte_carlo_tail;
        if (tail) {
          rows.push(el("div", { class: "headline" },
            el("span", { class: "label", text: `Monte Carlo tail (${tail.statistic}, ${fmtNum(tail.horizon_days)} days): ` }),
            fig(`headline-${symbol}-mc-tail`, tail.value, fmtPct(tail.value), { "data-figure": tail.figure, title: tail.figure })));
        }
      }
      const rs = t.reverse_stress;
      if (rs) {
        const move = rs.smallest_breaking_move ? rs.smallest_breaking_move.move_frac : null;
        const text = move === null || move === undefined ? "none in the searched range" : `${fmtPct(move)} within ${rs.smallest_breaking_move.horizon_days} day${rs.smallest_breaking_move.horizon_days === 1 ? "" : "s"}`;
        rows.push(el("div", { class: "headline" },
          el("span", { class: "label", text: "Smallest gold move breaking the backing (reverse stress search): " }),
          fig(`headline-${symbol}-breaking-move`, move, text, { title: (rs.closed_form && rs.closed_form.formula) || "" })));
        const st = rs.statement;
        if (st) {
          rows.push(el("div", { class: "headline" },
            el("span", { class: "label", text: "Reverse stress: " }),
            el("span", { class: "statement", "data-testid": `headline-${symbol}-reverse-stress`, "data-source": st.source, title: st.note || "", text: `${st.text} (${st.source === "closed_form" ? "closed form, checked against the model's search" : "model search"})` })));
        }
      }
      cards.push(el("article", { class: "card", "data-testid": `token-card-${symbol}` },
        el("h3", {}, `${symbol} `, el("span", { class: "sub", text: `${t.name || ""} (${t.kind || "?"}, spec v${t.spec_version ?? "?"})` })),
        rows));
    }
    box.replaceChildren(...cards);
  }

  // ---------------------------------------------------------------- VaR backtest

  function pickLevel(holdout, level) {
    const k = Object.keys(holdout).find((key) => Math.abs(parseFloat(key) - level) < 1e-12);
    return k === undefined ? null : holdout[k];
  }

  function renderBacktest(summary) {
    const box = $("backtest");
    const vb = summary.var_backtest || {};
    const holdout = vb.holdout;
    if (!holdout || typeof holdout !== "object" || Object.keys(holdout).length === 0) {
      box.replaceChildren(el("p", { class: "note", "data-testid": "backtest-absent", text: "No hold-out backtest in this run." }));
      return;
    }
    const parts = [];
    const b = pickLevel(holdout, 0.99);
    if (b) {
      const zone = b.basel_zone_last_250d;
      parts.push(el("p", { class: "backtest-line" },
        "Basel traffic light, 99% 1-day VaR, last 250 days: ",
        fig("backtest-zone", zone, String(zone), { class: `figure zone zone-${String(zone).replace(/[^a-z]/gi, "")}` }),
        " with ", fig("backtest-99-basel-exceptions-250d", b.basel_exceptions_last_250d, fmtNum(b.basel_exceptions_last_250d)), " exceptions. ",
        "Hold-out: ", fig("backtest-99-exceptions", b.n_exceptions, fmtNum(b.n_exceptions)), " exceptions in ",
        fig("backtest-99-n-obs", b.n_obs, fmtNum(b.n_obs)), " days (rate ",
        fig("backtest-99-exception-rate", b.exception_rate, fmtPct(b.exception_rate)), ", expected 1.00%); ",
        "Kupiec POF p = ", fig("backtest-99-kupiec-p", b.kupiec_p_value, fmtNum(b.kupiec_p_value, 3)),
        ", Christoffersen independence p = ", fig("backtest-99-christoffersen-p", b.christoffersen_p_value, fmtNum(b.christoffersen_p_value, 3)), "."));
    } else {
      parts.push(el("p", { class: "note", text: "No 99% level in the backtest." }));
    }
    const cols = [
      ["n_obs", "days"], ["n_exceptions", "exceptions"], ["exception_rate", "rate"], ["kupiec_p_value", "Kupiec p"],
      ["christoffersen_p_value", "Christoffersen p"], ["basel_exceptions_last_250d", "exceptions (last 250 d)"], ["basel_zone_last_250d", "Basel zone"],
    ];
    const thead = el("thead", {}, el("tr", {}, el("th", { text: "VaR level" }), cols.map(([, l]) => el("th", { text: l }))));
    const tbody = el("tbody", {}, Object.entries(holdout).map(([lvl, r]) => el("tr", {},
      el("td", { text: fmtPct(parseFloat(lvl), 0) }),
      cols.map(([k]) => el("td", { "data-testid": `backtest-${lvl}-${k}`, "data-value": raw(r[k]), text: k === "exception_rate" ? fmtPct(r[k]) : fmtByKey(k, r[k]) })))));
    parts.push(el("table", {}, thead, tbody));
    if (vb.method) parts.push(el("p", { class: "note", text: vb.method }));
    box.replaceChildren(...parts);
  }

  // ---------------------------------------------------------------- scenario table

  const SCENARIO_LABELS = {
    token: "token", scenario: "scenario", kind: "kind",
    window_days: "window, days",
    holder_loss_frac_end: "holder loss at end (MC: ES)",
    holder_max_drawdown_frac: "holder peak-to-trough (MC: ES)",
    reserve_per_token_loss_frac_end: "reserve per token: loss at end (MC: ES)",
    reserve_per_token_max_drawdown_frac: "reserve per token: peak-to-trough (MC: ES)",
    backing_ratio_min: "min backing ratio (MC: 0.1% quantile)",
    backing_below_1: "backing < 1 (MC: probability)",
    liquidation: "liquidation (MC: probability)",
    bad_debt_usd: "bad debt (MC: expected)",
    redeemed_frac_of_day0_supply_end: "redeemed share of day-0 supply (MC: mean)",
    redemption_outflow_usd_end: "redemption outflow, USD (MC: mean)",
    issuer_fee_revenue_usd_end: "issuer fee revenue, USD (MC: mean)",
  };

  function renderScenarioTable(summary) {
    const rows = (summary.scenario_table || []).slice();
    const box = $("scenario-table");
    if (rows.length === 0) {
      box.replaceChildren(el("p", { class: "note", text: "No scenarios in this run." }));
      return;
    }
    const tokenOrder = Object.keys(summary.tokens || {});
    rows.sort((a, b) => tokenOrder.indexOf(a.token) - tokenOrder.indexOf(b.token)); // stable: scenario order kept
    const baseCols = [];
    for (const r of rows) for (const k of Object.keys(r)) if (!baseCols.includes(k)) baseCols.push(k);
    const extraCols = ["backing_below_1", "liquidation", "bad_debt_usd", "redeemed_frac_of_day0_supply_end", "redemption_outflow_usd_end", "issuer_fee_revenue_usd_end"];
    const cols = baseCols.concat(extraCols);
    const thead = el("thead", {}, el("tr", {}, cols.map((c) => el("th", { text: SCENARIO_LABELS[c] || c }))));
    const body = rows.map((r) => {
      const m = (((summary.tokens || {})[r.token] || {}).scenarios || {})[r.scenario] || {};
      const full = Object.assign({}, r, {
        backing_below_1: "p_backing_below_1" in m ? m.p_backing_below_1 : m.backing_below_1,
        liquidation: "p_liquidation" in m ? m.p_liquidation : m.liquidated,
        bad_debt_usd: "expected_bad_debt_usd" in m ? m.expected_bad_debt_usd : m.bad_debt_usd,
        redeemed_frac_of_day0_supply_end: "redeemed_frac_of_day0_supply_end_mean" in m ? m.redeemed_frac_of_day0_supply_end_mean : m.redeemed_frac_of_day0_supply_end,
        redemption_outflow_usd_end: "redemption_outflow_usd_end_mean" in m ? m.redemption_outflow_usd_end_mean : m.redemption_outflow_usd_end,
        issuer_fee_revenue_usd_end: "issuer_fee_revenue_usd_end_mean" in m ? m.issuer_fee_revenue_usd_end_mean : m.issuer_fee_revenue_usd_end,
      });
      const bmin = num(full.backing_ratio_min);
      const breach = (bmin !== null && bmin < 1) || full.backing_below_1 === true || (typeof full.backing_below_1 === "number" && full.backing_below_1 > 0);
      return el("tr", { "data-testid": `scenario-row-${r.token}-${r.scenario}`, class: breach ? "breach" : null, title: m.description || null },
        cols.map((c) => {
          const v = full[c];
          let text;
          if (c === "backing_below_1" || c === "liquidation") text = typeof v === "number" ? fmtPct(v) : fmtByKey(c, v);
          else text = fmtByKey(c, v);
          return el("td", { "data-testid": `scenario-${r.token}-${r.scenario}-${c}`, "data-value": raw(v), class: typeof v === "string" && num(v) === null ? "txt" : null, text });
        }));
    });
    box.replaceChildren(el("table", { class: "scenarios" }, thead, el("tbody", {}, body)),
      el("p", { class: "note", text: "Rows in red: the backing ratio fell below 1 (on some path for Monte Carlo). Historical and shock rows are single paths: realised values, not probabilities." }));
  }

  // ---------------------------------------------------------------- fan chart

  async function renderFan(runId) {
    const div = $("plot-fan");
    let fan;
    try {
      fan = (await api(`/api/runs/${encodeURIComponent(runId)}/fan`)).body;
    } catch (err) {
      if (err.status === 404) {
        div.replaceChildren(el("p", { class: "note", "data-testid": "fan-absent", text: "No Monte Carlo fan chart in this run." }));
        return;
      }
      throw err;
    }
    const qs = Object.keys(fan.quantiles || {}).map((k) => [k, parseFloat(k.replace(/^q/, ""))]).filter(([, q]) => Number.isFinite(q)).sort((a, b) => a[1] - b[1]);
    const days = fan.days || (qs.length ? fan.quantiles[qs[0][0]].map((_, i) => i) : []);
    const traces = [];
    const nBands = Math.floor(qs.length / 2);
    for (let i = 0; i < nBands; i++) {
      const [lo, qlo] = qs[i];
      const [hi, qhi] = qs[qs.length - 1 - i];
      if (!(qlo < 0.5 && qhi > 0.5)) continue;
      const alpha = (0.12 + 0.3 * (i + 1) / nBands).toFixed(2);
      traces.push({ x: days, y: fan.quantiles[hi].map(plotNum), type: "scatter", mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" });
      traces.push({ x: days, y: fan.quantiles[lo].map(plotNum), type: "scatter", mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: `rgba(212,160,23,${alpha})`, name: `${(qlo * 100).toFixed(0)}%–${(qhi * 100).toFixed(0)}%` });
    }
    const med = qs.find(([, q]) => Math.abs(q - 0.5) < 1e-12);
    if (med) traces.push({ x: days, y: fan.quantiles[med[0]].map(plotNum), type: "scatter", mode: "lines", line: { color: "black", width: 1.5 }, name: "median" });
    await plot(div, traces, { title: { text: "Simulated gold price (USD per troy ounce): quantiles across paths" }, xaxis: { title: { text: "trading days ahead" } }, yaxis: { title: { text: "USD/oz" } } });
  }

  // ---------------------------------------------------------------- backing-ratio distribution

  const QUANTILE_COLOURS = ["#b3261e", "#e8710a", "#8a6d0b", "#1d1d1f", "#4169e1", "#1e7a34", "#7b1fa2"];
  const BACKING_RE = /^backing_ratio_(\d+d|end|min)_q([0-9.]+)$/;

  function backingQuantiles(mc) {
    const table = {}; // where -> {q: value}
    for (const [k, v] of Object.entries(mc)) {
      const m = k.match(BACKING_RE);
      if (!m) continue;
      (table[m[1]] = table[m[1]] || {})[m[2]] = v;
    }
    const whereKeys = Object.keys(table).sort((a, b) => {
      const rank = (w) => (w === "end" ? 1e6 : w === "min" ? 1e6 + 1 : parseInt(w, 10));
      return rank(a) - rank(b);
    });
    const qKeys = [...new Set(whereKeys.flatMap((w) => Object.keys(table[w])))].sort((a, b) => parseFloat(a) - parseFloat(b));
    return { table, whereKeys, qKeys };
  }

  async function renderBacking(summary) {
    const plots = $("backing-plots");
    const tableBox = $("backing-table");
    const H = (summary.monte_carlo || {}).mc_horizon_days;
    const whereLabel = (w) => {
      if (w === "end") return `end (${H ?? "?"} days)`;
      if (w === "min") return "path minimum";
      const d = parseInt(w, 10);
      return d === 1 ? "1 day" : `${d} days`;
    };
    const divs = [];
    const tables = [];
    const jobs = [];
    for (const [symbol, t] of Object.entries(summary.tokens || {})) {
      const mc = (t.scenarios || {})[MC_SCENARIO];
      if (!mc) continue;
      const { table, whereKeys, qKeys } = backingQuantiles(mc);
      if (whereKeys.length === 0) continue;
      const div = el("div", { class: "plot half", id: `plot-backing-${symbol}`, "data-testid": `plot-backing-${symbol}` });
      divs.push(div);
      // lines across horizons (1 day .. end); the path minimum is not a horizon: markers only
      const horizons = whereKeys.filter((w) => w !== "min");
      const traces = [];
      qKeys.forEach((q, i) => {
        const color = QUANTILE_COLOURS[i % QUANTILE_COLOURS.length];
        traces.push({
          x: horizons.map(whereLabel), y: horizons.map((w) => plotNum(table[w][q])), type: "scatter", mode: "lines+markers",
          name: `${q}% quantile`, legendgroup: q, line: { width: q === "50" ? 2.5 : 1.2, color }, marker: { color },
        });
        if (table.min && q in table.min) {
          traces.push({
            x: [whereLabel("min")], y: [plotNum(table.min[q])], type: "scatter", mode: "markers", name: `${q}% quantile (path minimum)`,
            legendgroup: q, showlegend: false, marker: { color, size: 9, symbol: "diamond" },
          });
        }
      });
      jobs.push([div, traces, { title: { text: `${symbol}: backing-ratio quantiles` }, yaxis: { title: { text: "backing ratio" }, tickformat: ".3f" }, shapes: [hline(1)] }]);
      tables.push(el("table", {},
        el("caption", { text: `${symbol}: backing ratio quantiles (Monte Carlo)` }),
        el("thead", {}, el("tr", {}, el("th", { text: "" }), qKeys.map((q) => el("th", { text: `q${q}%` })))),
        el("tbody", {}, whereKeys.map((w) => el("tr", {}, el("th", { text: whereLabel(w) }),
          qKeys.map((q) => {
            const v = table[w][q];
            const x2 = num(v);
            return el("td", { "data-testid": `backing-${symbol}-${w}-q${q}`, "data-value": raw(v), class: x2 !== null && x2 < 1 ? "breach" : null, text: fmtNum(v, 5) });
          }))))));
    }
    plots.replaceChildren(...divs);
    tableBox.replaceChildren(...tables);
    if (divs.length === 0) plots.replaceChildren(el("p", { class: "note", text: "No backing-ratio quantiles in this run." }));
    for (const [div, traces, layout] of jobs) await plot(div, traces, layout);
  }

  // ---------------------------------------------------------------- peg distribution

  const PEG_COLS = [
    ["premium_median_frac", "median", "median"],
    ["premium_q01_frac", "q01", "1% quantile"],
    ["premium_q99_frac", "q99", "99% quantile"],
    ["p_abs_deviation_gt_1pct", "p-gt-1pct", "P(|deviation| > 1%)"],
    ["p_abs_deviation_gt_5pct", "p-gt-5pct", "P(|deviation| > 5%)"],
  ];

  async function renderPeg(summary) {
    const div = $("plot-peg");
    const tableBox = $("peg-table");
    const premia = summary.observed_token_premia || {};
    const tokens = Object.entries(premia).filter(([, v]) => v && typeof v === "object");
    if (tokens.length === 0) {
      const why = typeof premia.error === "string" ? ` (${premia.error})` : "";
      div.replaceChildren();
      tableBox.replaceChildren(el("p", { class: "note", "data-testid": "peg-absent", text: `No observed token prices in this run${why}.` }));
      return;
    }
    const thead = el("thead", {}, el("tr", {}, el("th", { text: "token" }), el("th", { text: "days" }), PEG_COLS.map(([, , l]) => el("th", { text: l }))));
    const tbody = el("tbody", {}, tokens.map(([sym, p]) => el("tr", {},
      el("th", { text: sym }),
      el("td", { "data-testid": `peg-${sym}-n-days`, "data-value": raw(p.n_days), text: `${fmtNum(p.n_days)} (${p.first_date || "?"} .. ${p.last_date || "?"})` }),
      PEG_COLS.map(([k, id]) => el("td", { "data-testid": `peg-${sym}-${id}`, "data-value": raw(p[k]), text: fmtPct(p[k], 2) })))));
    tableBox.replaceChildren(el("table", {}, thead, tbody));
    const med = tokens.map(([, p]) => plotNum(p.premium_median_frac));
    await plot(div, [{
      type: "scatter", mode: "markers", orientation: "h", y: tokens.map(([s]) => s), x: med, name: "median premium",
      marker: { size: 10, color: "#8a6d0b" },
      error_x: {
        type: "data", symmetric: false,
        array: tokens.map(([, p], i) => (plotNum(p.premium_q99_frac) ?? med[i]) - med[i]),
        arrayminus: tokens.map(([, p], i) => med[i] - (plotNum(p.premium_q01_frac) ?? med[i])),
        color: "#4169e1", thickness: 2, width: 8,
      },
    }], {
      height: 120 + 50 * tokens.length,
      title: { text: "Observed premium to gold: median and 1%–99% range" },
      xaxis: { tickformat: ".1%", zeroline: true, title: { text: "premium (fraction of gold value)" } },
      yaxis: { automargin: true },
      shapes: [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: 0, x1: 0, line: { color: "#888", width: 1 } }],
    });
  }

  // ---------------------------------------------------------------- history across runs

  async function renderHistory(tokens) {
    for (const h of HISTORY_METRICS) {
      const div = $(h.div);
      try {
        const series = await Promise.all(tokens.map((tok) => api(`/api/metrics/timeseries?${new URLSearchParams({ token: tok, metric: h.metric, scenario: MC_SCENARIO })}`)
          .then((r) => [tok, r.body.points || []])
          .catch((err) => (err.status === 404 ? [tok, []] : Promise.reject(err)))));
        const traces = series.filter(([, pts]) => pts.length > 0).map(([tok, pts]) => ({
          type: "scatter", mode: "lines+markers", name: tok,
          x: pts.map((p) => p.created_at || p.run_id), y: pts.map((p) => plotNum(p.value)),
          text: pts.map((p) => p.run_id), hovertemplate: "%{text}<br>%{y}<extra>%{fullData.name}</extra>",
        }));
        div.setAttribute("data-n-points", String(series.reduce((n, [, pts]) => n + pts.length, 0)));
        if (traces.length === 0) {
          div.replaceChildren(el("p", { class: "note", text: `${h.metric}: no history yet.` }));
          continue;
        }
        const xaxis = { title: { text: "run time" }, type: "date" };
        const times = [...new Set(traces.flatMap((t) => t.x))].map((x) => Date.parse(x)).filter(Number.isFinite);
        if (times.length === 1) xaxis.range = [new Date(times[0] - 86400e3).toISOString(), new Date(times[0] + 86400e3).toISOString()]; // one run: +-1 day
        await plot(div, traces, { title: { text: h.title }, yaxis: { tickformat: h.tickformat }, xaxis, shapes: h.hline !== undefined ? [hline(h.hline)] : [] });
      } catch (err) {
        showError(div, `history ${h.metric}`, err);
      }
    }
  }

  // ---------------------------------------------------------------- what-if

  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
      else out.push([key, k, v]);
    }
    return out;
  }

  function resultTable(caption, obj, prefix) {
    const rows = flatten(obj, "", []);
    return el("table", { class: "kv", "data-testid": `whatif-${prefix}` },
      el("caption", { text: caption }),
      el("tbody", {}, rows.map(([key, leaf, v]) => el("tr", {},
        el("th", { text: key }),
        el("td", { "data-testid": `whatif-${prefix}-${key}`, "data-value": Array.isArray(v) ? JSON.stringify(v) : raw(v), text: Array.isArray(v) ? JSON.stringify(v) : fmtByKey(leaf, v) })))));
  }

  function line(label, testid, value, text) {
    return el("div", { class: "headline" }, el("span", { class: "label", text: label + ": " }), fig(testid, value, text));
  }

  /** Key figures of a what-if: the shock path at its horizon and the Monte Carlo VaR/ES table. */
  function whatifSummary(r) {
    const out = [];
    const sh = r.shock;
    if (sh) {
      const H = sh.shock_horizon_days;
      const days = H === 1 ? "1 day" : `${H} days`;
      const rows = [
        [`holder_loss_frac_${H}d`, `Holder value loss after ${days}`, fmtPct],
        [`reserve_per_token_loss_frac_${H}d`, `Reserve value per token loss after ${days}`, fmtPct],
        [`backing_ratio_${H}d`, `Backing ratio after ${days}`, (v) => fmtNum(v, 5)],
        ["backing_ratio_min", "Lowest backing ratio on the path", (v) => fmtNum(v, 5)],
        ["backing_below_1", "Backing below 1", (v) => fmtByKey("backing_below_1", v)],
        ["liquidated", "Any liquidation", (v) => fmtByKey("liquidated", v)],
        ["bad_debt_usd", "Bad debt", fmtUsd],
      ].filter(([k]) => k in sh);
      out.push(el("div", { class: "card" },
        el("h3", { text: `Gold ${fmtPct(sh.shock_frac, 1)} over ${days} (${fmtNum(sh.gold_usd_per_oz_d0, 6)} → ${fmtNum(sh.gold_usd_per_oz_end, 6)} USD/oz)` }),
        rows.map(([k, label, f]) => line(label, `whatif-headline-${k.replace(/_\d+d$/, "")}`, sh[k], f(sh[k])))));
    }
    const mc = r.monte_carlo;
    if (mc) {
      const hs = Array.isArray(mc.horizons_days) ? mc.horizons_days : [];
      const cols = [];
      for (const who of ["holder_value", "reserve_per_token"]) for (const lvl of ["95", "99"]) for (const m of ["var", "es"]) cols.push([who, lvl, m]);
      const whoLabel = { holder_value: "holder", reserve_per_token: "reserve/token" };
      const table = el("table", { "data-testid": "whatif-var-table" },
        el("thead", {}, el("tr", {}, el("th", { text: "days" }), cols.map(([who, lvl, m]) => el("th", { text: `${lvl}% ${m === "var" ? "VaR" : "ES"} ${whoLabel[who]}` })))),
        el("tbody", {}, hs.map((h) => el("tr", {}, el("th", { text: String(h) }), cols.map(([who, lvl, m]) => {
          const v = mc[`${who}_${m}_${lvl}_${h}d_frac`];
          return el("td", { text: fmtPct(v) });
        })))));
      const H = mc.horizon_days;
      out.push(el("div", { class: "card" },
        el("h3", { text: `Monte Carlo: ${fmtNum(mc.n_paths)} paths × ${fmtNum(H)} days, seed ${mc.seed ?? "?"}${r.model && r.model.source ? ` (model: ${r.model.source}${r.model.candidate ? " " + r.model.candidate : ""})` : ""}` }),
        table,
        ["p_backing_below_1", "p_liquidation", "expected_bad_debt_usd"].filter((k) => k in mc).map((k) =>
          line(metricLabel(k, H), `whatif-headline-${k}`, mc[k], k.endsWith("_usd") ? fmtUsd(mc[k]) : fmtPct(mc[k])))));
    }
    return out.length ? el("div", { class: "cards" }, out) : null;
  }

  function renderWhatifResult(res) {
    const box = $("whatif-result");
    const parts = [el("p", {},
      "What-if ", el("code", { "data-testid": "whatif-id", "data-value": raw(res.id), text: String(res.id) }),
      ` (${res.mode || "?"}): `, el("b", { "data-testid": "whatif-status", "data-value": raw(res.status), text: String(res.status) }))];
    const r = res.result;
    if (r) {
      parts.push(whatifSummary(r));
      parts.push(whatifPegTable(r));
      const full = [];
      if (r.shock) full.push(resultTable("Shock path", r.shock, "shock"));
      if (r.monte_carlo) full.push(resultTable("Monte Carlo", r.monte_carlo, "mc"));
      if (r.model) full.push(resultTable("Model", r.model, "model"));
      if (r.inputs) full.push(el("pre", { "data-testid": "whatif-inputs", text: JSON.stringify(r.inputs, null, 2) }));
      parts.push(el("details", {}, el("summary", { text: "all figures and inputs" }), el("div", { class: "kv-grid" }, full)));
    } else if (res.error || res.detail) {
      parts.push(el("p", { class: "error", "data-testid": "whatif-error", text: String(res.error || detailOf(res)) }));
    }
    box.replaceChildren(...parts.filter((x) => x !== null));
  }

  function whatifBody() {
    const select = $("whatif-preset");
    const preset = select.value;
    const kind = select.selectedOptions.length ? select.selectedOptions[0].getAttribute("data-kind") : null;
    const read = (id) => {
      const v = $(id).value.trim();
      return v === "" ? null : Number(v);
    };
    const errors = [];
    for (const id of ["whatif-shock-pct", "whatif-shock-horizon", "whatif-paths", "whatif-horizon", "whatif-redemption-pct", "whatif-seed"]) {
      const input = $(id);
      if (!input.checkValidity()) errors.push(`${input.labels[0].textContent}: ${input.validationMessage}`);
    }
    if (errors.length) throw new Error(errors.join("; "));
    const body = {
      token_preset: preset,
      shock_frac: read("whatif-shock-pct") / 100,
      shock_horizon_days: read("whatif-shock-horizon"),
      n_paths: read("whatif-paths"),
      horizon_days: read("whatif-horizon"),
    };
    const red = read("whatif-redemption-pct");
    if (red !== null && kind === "gold_backed") body.redemption_share_per_day = red / 100;
    const seed = read("whatif-seed");
    if (seed !== null) body.seed = seed;
    return body;
  }

  function whatifError(err) {
    if (err.status === 403) return "Your role cannot run what-ifs: the analyst role is needed.";
    if (err.status === 429) return `Too many what-ifs: retry in ${err.retryAfter || "a few"} s.`;
    return err.message;
  }

  async function pollWhatif(id) {
    const box = $("whatif-result");
    for (let i = 0; i < WHATIF_POLL_MAX; i++) {
      await new Promise((r) => setTimeout(r, WHATIF_POLL_MS));
      let res;
      try {
        res = (await api(`/api/whatif/${encodeURIComponent(id)}`)).body;
      } catch (err) {
        if (err.status === 429) continue;
        throw err;
      }
      const st = String(res.status || "").toLowerCase();
      if (res.result || TERMINAL.has(st)) return res;
      box.setAttribute("data-status", "polling");
      box.replaceChildren(el("p", { "data-testid": "whatif-progress", text: `What-if ${id}: ${res.status || "pending"} (checking every ${WHATIF_POLL_MS / 1000} s)…` }));
    }
    throw new Error(`what-if ${id} did not finish within ${(WHATIF_POLL_MAX * WHATIF_POLL_MS) / 60000} minutes; check again later`);
  }

  function setupWhatif() {
    const form = $("whatif-form");
    const box = $("whatif-result");
    const preset = $("whatif-preset");
    const syncRedemption = () => {
      const opt = preset.selectedOptions.length ? preset.selectedOptions[0] : null;
      $("whatif-redemption-pct").disabled = !opt || opt.getAttribute("data-kind") !== "gold_backed";
    };
    preset.addEventListener("change", syncRedemption);
    syncRedemption();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = $("whatif-submit");
      let body;
      try {
        body = whatifBody();
      } catch (err) {
        box.setAttribute("data-status", "error");
        box.replaceChildren(el("p", { class: "error", "data-testid": "whatif-error", text: err.message }));
        return;
      }
      button.disabled = true;
      box.setAttribute("data-status", "running");
      box.replaceChildren(el("p", { text: "Running…" }));
      try {
        const { status, body: res } = await api("/api/whatif", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        const final = status === 202 ? await pollWhatif(res.id) : res;
        renderWhatifResult(final);
        const st = String(final.status || "").toLowerCase();
        box.setAttribute("data-status", final.result ? "completed" : st === "completed" ? "completed" : "error");
      } catch (err) {
        box.setAttribute("data-status", "error");
        box.replaceChildren(el("p", { class: "error", "data-testid": "whatif-error", text: whatifError(err) }));
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---------------------------------------------------------------- human units

  /** USD in millions / billions ("163.1 m USD", "1.42 bn USD"); below a million as fmtUsd. */
  function fmtUsdHuman(v) {
    const x = num(v);
    const s = special(x);
    if (s) return s;
    if (Math.abs(x) >= 1e9) return (x / 1e9).toFixed(2) + " bn USD";
    if (Math.abs(x) >= 1e6) return (x / 1e6).toFixed(1) + " m USD";
    return fmtUsd(x);
  }

  /** Days: "1 day", "4 days", "2.5 days". */
  function fmtDays(v) {
    const x = num(v);
    const s = special(x);
    if (s) return s;
    const n = Number.isInteger(x) ? String(x) : x.toFixed(1);
    return `${n} ${x === 1 ? "day" : "days"}`;
  }

  /** A coverage ratio as a percentage without decimals ("296%"). */
  const fmtCoverage = (v) => fmtPct(v, 0);

  /** Token counts without decimals ("197,324 tokens"). */
  function fmtTokens(v) {
    const x = num(v);
    const s = special(x);
    if (s) return s;
    return x.toLocaleString("en-US", { maximumFractionDigits: 0 }) + " tokens";
  }

  /** A value in a verdict check's unit: fraction %, usd m/bn, ratio %, days. */
  function fmtUnit(unit, v) {
    if (unit === "fraction") return fmtPct(v);
    if (unit === "usd") return fmtUsdHuman(v);
    if (unit === "ratio") return fmtPct(v, 1);
    if (unit === "days") return fmtDays(v);
    return fmtNum(v);
  }

  /** A difference in a figure's unit, signed: fractions in percentage points. */
  function fmtDiff(unit, v) {
    const x = num(v);
    const s = special(x);
    if (s) return s;
    const sign = x > 0 ? "+" : "";
    if (unit === "fraction" || unit === "ratio") return sign + (x * 100).toFixed(2) + " pp";
    if (unit === "usd") return sign + fmtUsdHuman(x);
    if (unit === "days") return sign + fmtDays(x);
    return sign + fmtNum(x);
  }

  function fmtRel(v) {
    const x = num(v);
    const s = special(x);
    if (s) return s;
    return (x > 0 ? "+" : "") + fmtPct(x, 1);
  }

  const yesNo = (v) => (v === true || v === 1 || v === 1.0 ? "yes" : v === false || v === 0 ? "no" : "–");

  function cell(testid, value, text, cls) {
    return el("td", { "data-testid": testid, "data-value": raw(value), text, class: cls });
  }

  // ---------------------------------------------------------------- verdicts

  function renderVerdicts(summary) {
    const box = $("verdicts");
    const tokens = Object.entries(summary.tokens || {});
    const thead = el("thead", {}, el("tr", {}, ["Token", "Verdict", "Why", "Checks", "Worst scenario", "Remedy"].map((h) => el("th", { text: h }))));
    const rows = tokens.map(([sym, t]) => {
      const v = t.verdict;
      if (!v || typeof v !== "object" || !["pass", "watch", "fail"].includes(v.verdict)) {
        return el("tr", {}, el("th", { text: sym }),
          el("td", { class: "txt", colspan: "5", "data-testid": `verdict-${sym}`, "data-value": "", text: "no verdict in this run" }));
      }
      const checks = el("ul", { class: "checks" }, (v.checks || []).map((c) => el("li", { class: `check-${c.status}` },
        `${c.label}: `,
        fig(`verdict-${sym}-check-${c.key}-value`, c.value, fmtUnit(c.unit, c.value)),
        " (limit ", fig(`verdict-${sym}-check-${c.key}-limit`, c.limit, fmtUnit(c.unit, c.limit)),
        c.horizon_days !== null && c.horizon_days !== undefined ? `, ${fmtDays(c.horizon_days)}` : "",
        c.confidence !== null && c.confidence !== undefined ? `, at ${fmtPct(c.confidence, 0)} confidence` : "",
        ") ",
        el("span", { class: `badge badge-${c.status}`, "data-testid": `verdict-${sym}-check-${c.key}-status`, "data-value": c.status, text: c.status }))));
      const w = v.worst_scenario;
      const r = v.remedy;
      return el("tr", { class: `verdict-row verdict-${v.verdict}` },
        el("th", { text: sym }),
        el("td", { class: "txt" }, el("span", { class: `badge badge-${v.verdict}`, "data-testid": `verdict-${sym}`, "data-value": v.verdict, text: v.verdict })),
        el("td", { class: "txt", "data-testid": `verdict-${sym}-reason`, text: v.reason || "" }),
        el("td", { class: "txt" }, checks,
          el("span", { class: "aside", text: `Tolerance from ${(v.tolerance || {}).source === "spec" ? "the token's spec" : "the default"}.` })),
        w ? cell(`verdict-${sym}-worst`, w.drawdown_frac, `${w.label || w.scenario}: ${fmtPct(w.drawdown_frac)} peak-to-trough`, "txt") : el("td", { text: "–" }),
        r ? cell(`verdict-${sym}-remedy`, r.usd, r.usd === null || r.usd === undefined ? r.action : `${r.action} (${fmtUsdHuman(r.usd)})`, "txt") : el("td", { class: "txt", "data-testid": `verdict-${sym}-remedy`, "data-value": "", text: "none needed" }));
    });
    box.replaceChildren(el("table", { class: "verdicts" }, thead, el("tbody", {}, rows)));
  }

  // ---------------------------------------------------------------- downloads

  function fmtBytes(n) {
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MB";
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(0) + " KB";
    return `${n} bytes`;
  }

  async function renderDownloads(runId) {
    const box = $("downloads");
    const files = (await api(`/api/runs/${encodeURIComponent(runId)}/files`)).body.files || [];
    box.replaceChildren(...files.map((f) => el("li", {},
      el("a", { href: f.url, download: `${runId}_${f.name.replace(/\//g, "_")}`, "data-testid": `download-${f.name.replace(/\//g, "-")}`, text: f.name }),
      el("span", { class: "aside", text: ` (${fmtBytes(f.size)})` }))));
  }

  // ---------------------------------------------------------------- liquidity stress

  const LIQUIDITY_FIGURES = [
    ["liquidity_coverage_1d_q01", "Liquidity coverage over 1 day (worst 1% of paths)", fmtCoverage],
    ["liquidity_coverage_5d_q01", "Liquidity coverage over 5 days (worst 1% of paths)", fmtCoverage],
    ["liquidity_coverage_10d_q01", "Liquidity coverage over 10 days (worst 1% of paths)", fmtCoverage],
    ["liquidity_coverage_30d_q01", "Liquidity coverage over 30 days (worst 1% of paths)", fmtCoverage],
    ["p_liquidity_coverage_below_1_30d", "Chance coverage falls below 100% within 30 days", fmtPct],
    ["redemption_outflow_usd_end_mean", "Redemptions paid over the horizon (mean)", fmtUsdHuman],
    ["redemption_outflow_frac_of_day0_liabilities_end_mean", "Redemptions paid, share of day-0 liabilities (mean)", fmtPct],
    ["redemption_outflow_frac_of_day0_liabilities_end_q99", "Redemptions paid, share of day-0 liabilities (worst 1%)", fmtPct],
    ["redemption_queue_max_tokens_q99", "Longest redemption queue (worst 1%)", fmtTokens],
    ["redemption_wait_max_days_q99", "Longest wait for a redemption (worst 1%)", fmtDays],
    ["redemption_queue_end_tokens_mean", "Redemptions still queued at the end (mean)", fmtTokens],
    ["p_abs_premium_gt_1pct", "Chance the price strays more than 1% from NAV", fmtPct],
    ["p_abs_premium_gt_5pct", "Chance the price strays more than 5% from NAV", fmtPct],
    ["depeg_depth_q99_frac", "Deepest premium or discount to NAV (worst 1%)", fmtPct],
    ["depeg_longest_days_beyond_1pct_q99", "Longest stretch more than 1% off NAV (worst 1%)", fmtDays],
  ];

  function waveLabel(ls) {
    const w = ((ls.scenarios_and_horizons || {}).redemption_wave) || {};
    if (w.wave_share_of_supply === undefined) return "Coverage under the redemption wave";
    return `Coverage under a wave of ${fmtPct(w.wave_share_of_supply, 0)} of supply redeemed within ${fmtDays(w.wave_days)} (worst ${fmtPct(1 - (w.confidence ?? 0.99), 0)} of paths)`;
  }

  function renderLiquidity(summary) {
    const box = $("liquidity");
    const ls = summary.liquidity_stress || {};
    const outcome = Object.entries(ls.outcome || {});
    if (outcome.length === 0) {
      box.replaceChildren(el("p", { class: "note", "data-testid": "liquidity-absent", text: "No liquidity stress test in this run." }));
      return;
    }
    const syms = outcome.map(([s]) => s);
    const thead = el("thead", {}, el("tr", {}, el("th", { text: "figure" }), syms.map((s) => el("th", { text: s }))));
    const rows = LIQUIDITY_FIGURES.filter(([k]) => outcome.some(([, o]) => k in (o.monte_carlo_behavioural || {}))).map(([k, label, f]) =>
      el("tr", {}, el("th", { class: "txt", text: label }), outcome.map(([s, o]) => {
        const v = (o.monte_carlo_behavioural || {})[k];
        return cell(`liq-${s}-${k}`, v, f(v));
      })));
    if (outcome.some(([, o]) => o.redemption_wave_without_remedy)) {
      rows.push(el("tr", {}, el("th", { class: "txt", text: waveLabel(ls) }), outcome.map(([s, o]) => {
        const v = (o.redemption_wave_without_remedy || {}).coverage_q;
        return cell(`liq-${s}-wave-coverage`, v, fmtCoverage(v));
      })));
    }
    const mc = (ls.scenarios_and_horizons || {}).monte_carlo || {};
    box.replaceChildren(el("table", { class: "figures" }, thead, el("tbody", {}, rows)),
      el("p", { class: "note", text: `Monte Carlo: ${fmtNum(mc.paths)} paths over ${fmtDays(mc.horizon_days)}. ${ls.regulation ? "Laid out as " + ls.regulation + "." : ""}` }));
  }

  // ---------------------------------------------------------------- recommendations

  function limitText(v) {
    return v === null || v === undefined ? "no limit" : `${fmtPct(v, 1)} of supply per day`;
  }

  function renderRecommendations(summary) {
    const box = $("recommendations");
    const remedies = Object.entries((summary.liquidity_stress || {}).remedies || {});
    if (remedies.length === 0) {
      box.replaceChildren(el("p", { class: "note", "data-testid": "recommendations-absent", text: "No recommendations in this run (the liquidity remedy search did not run)." }));
      return;
    }
    const cards = remedies.map(([s, r]) => {
      const cur = r.current_setting || {};
      const rec = r.recommended_setting || {};
      const lines = [];
      const buf = r.cash_buffer_usd;
      lines.push(el("div", { class: "headline" }, el("span", { class: "label", text: "Cash buffer to meet the coverage target under the wave: " }),
        fig(`rec-${s}-cash-buffer`, buf, r.cash_buffer_reachable === false ? `not reachable up to ${fmtUsdHuman(r.cash_buffer_searched_up_to_usd)}` : num(buf) === 0 ? "none needed" : fmtUsdHuman(buf)),
        " (", fig(`rec-${s}-cash-buffer-share`, r.cash_buffer_frac_of_liabilities, fmtPct(r.cash_buffer_frac_of_liabilities)), " of liabilities)"));
      if (r.with_buffer) {
        lines.push(el("div", { class: "headline" }, el("span", { class: "label", text: "Coverage under the wave with that buffer: " }),
          fig(`rec-${s}-with-buffer-coverage`, r.with_buffer.coverage_q, fmtCoverage(r.with_buffer.coverage_q))));
      }
      const table = el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "" }), el("th", { text: "current" }), el("th", { text: "recommended" }))),
        el("tbody", {},
          el("tr", {}, el("th", { class: "txt", text: "Redemption fee" }), cell(`rec-${s}-fee-current`, cur.redeem_fee, fmtPct(cur.redeem_fee)), cell(`rec-${s}-fee-recommended`, rec.redeem_fee, fmtPct(rec.redeem_fee))),
          el("tr", {}, el("th", { class: "txt", text: "Daily redemption limit" }), cell(`rec-${s}-limit-current`, cur.redemption_limit_share_per_day, limitText(cur.redemption_limit_share_per_day)), cell(`rec-${s}-limit-recommended`, rec.redemption_limit_share_per_day, limitText(rec.redemption_limit_share_per_day))),
          el("tr", {}, el("th", { class: "txt", text: "Coverage under the wave" }), cell(`rec-${s}-wave-coverage-current`, (cur.wave || {}).coverage_q, fmtCoverage((cur.wave || {}).coverage_q)), cell(`rec-${s}-wave-coverage-recommended`, (rec.wave || {}).coverage_q, fmtCoverage((rec.wave || {}).coverage_q))),
          el("tr", {}, el("th", { class: "txt", text: "Share of requests refused under the wave (mean)" }), cell(`rec-${s}-refused-current`, (cur.wave || {}).refused_share_mean, fmtPct((cur.wave || {}).refused_share_mean)), cell(`rec-${s}-refused-recommended`, (rec.wave || {}).refused_share_mean, fmtPct((rec.wave || {}).refused_share_mean)))));
      return el("article", { class: "card", "data-testid": `rec-card-${s}` }, el("h3", { text: s }), lines, table,
        rec.rule ? el("p", { class: "note", text: `Chosen as: ${rec.rule}.` }) : null);
    });
    box.replaceChildren(el("div", { class: "cards" }, cards));
  }

  // ---------------------------------------------------------------- reverse stress

  function renderReverse(summary) {
    const box = $("reverse");
    const cards = [];
    for (const [s, t] of Object.entries(summary.tokens || {})) {
      const rs = t.reverse_stress;
      const bd = t.reverse_stress_boundary;
      if (!rs && !bd) continue;
      const parts = [];
      if (rs) {
        const m = rs.smallest_breaking_move;
        const move = m ? m.move_frac : null;
        parts.push(el("div", { class: "headline" }, el("span", { class: "label", text: "Smallest gold move that breaks the backing: " }),
          fig(`rev-${s}-move`, move, move === null || move === undefined ? "none in the searched range" : `${fmtPct(move, 1)} within ${fmtDays(m.horizon_days)}`)));
        if (rs.statement && rs.statement.text) parts.push(el("p", { class: "note", "data-testid": `rev-${s}-statement`, text: rs.statement.text }));
        const searches = rs.searches || [];
        if (searches.length) {
          parts.push(el("table", {},
            el("thead", {}, el("tr", {}, ["within", "direction", "move that breaks"].map((h) => el("th", { text: h })))),
            el("tbody", {}, searches.map((x) => el("tr", {},
              el("td", { text: fmtDays(x.horizon_days) }),
              el("td", { class: "txt", text: x.direction < 0 ? "fall" : "rise" }),
              cell(`rev-${s}-search-${x.horizon_days}-${x.direction < 0 ? "fall" : "rise"}`, x.move_frac,
                x.breaks_without_move ? "breaks without a move" : x.move_frac === null || x.move_frac === undefined ? `none ${x.direction < 0 ? "down" : "up"} to ${fmtPct(x.max_move_searched_frac, 0)}` : fmtPct(x.move_frac, 1)))))));
        }
      }
      if (bd && Array.isArray(bd.rows) && bd.rows.length) {
        parts.push(el("table", {},
          el("caption", { text: `Gold fall that breaks the token within ${fmtDays(bd.horizon_days)} while holders redeem` }),
          el("thead", {}, el("tr", {}, el("th", { text: "share of supply redeemed" }), el("th", { text: "gold fall that breaks" }))),
          el("tbody", {}, bd.rows.map((r, i) => el("tr", {},
            el("td", { text: fmtPct(r.redemption_share, 0) }),
            cell(`rev-${s}-boundary-${i}`, r.gold_drop_frac, r.fails_without_drop ? "breaks without a gold fall" : r.gold_drop_frac === null || r.gold_drop_frac === undefined ? "none" : fmtPct(r.gold_drop_frac, 1)))))));
        if (bd.failure) parts.push(el("p", { class: "note", text: `Breaks = ${bd.failure}.` }));
      }
      cards.push(el("article", { class: "card", "data-testid": `rev-card-${s}` }, el("h3", { text: s }), parts));
    }
    if (cards.length === 0) {
      box.replaceChildren(el("p", { class: "note", "data-testid": "reverse-absent", text: "No reverse stress test in this run." }));
      return;
    }
    box.replaceChildren(el("div", { class: "cards" }, cards));
  }

  // ---------------------------------------------------------------- compare two runs

  function renderCompare(cmp) {
    const box = $("compare-result");
    const a = cmp.a.run_id;
    const b = cmp.b.run_id;
    const verdictText = (v) => v || "no verdict";
    const cards = Object.entries(cmp.tokens || {}).map(([s, t]) => el("article", { class: "card", "data-testid": `cmp-card-${s}` },
      el("h3", { text: s }),
      el("table", {},
        el("thead", {}, el("tr", {}, ["", "A", "B", "B − A", "relative"].map((h) => el("th", { text: h })))),
        el("tbody", {},
          el("tr", { class: t.verdict.changed ? "changed" : null }, el("th", { class: "txt", text: "Verdict" }),
            cell(`cmp-${s}-verdict-a`, t.verdict.a, verdictText(t.verdict.a), "txt"), cell(`cmp-${s}-verdict-b`, t.verdict.b, verdictText(t.verdict.b), "txt"),
            el("td", { class: "txt", "data-testid": `cmp-${s}-verdict-changed`, "data-value": String(t.verdict.changed), text: t.verdict.changed ? "changed" : "same" }), el("td", { text: "" })),
          t.figures.map((f) => el("tr", {}, el("th", { class: "txt", text: f.label }),
            cell(`cmp-${s}-${f.key}-a`, f.a, fmtUnit(f.unit, f.a)),
            cell(`cmp-${s}-${f.key}-b`, f.b, fmtUnit(f.unit, f.b)),
            cell(`cmp-${s}-${f.key}-abs`, f.abs_diff, fmtDiff(f.unit, f.abs_diff)),
            cell(`cmp-${s}-${f.key}-rel`, f.rel_diff, fmtRel(f.rel_diff))))))));
    const only = [];
    if ((cmp.only_in_a || []).length) only.push(el("p", { class: "note", text: `Only in A: ${cmp.only_in_a.join(", ")}.` }));
    if ((cmp.only_in_b || []).length) only.push(el("p", { class: "note", text: `Only in B: ${cmp.only_in_b.join(", ")}.` }));
    box.replaceChildren(el("p", {}, "A = ", el("code", { "data-testid": "cmp-run-a", text: a }), ", B = ", el("code", { "data-testid": "cmp-run-b", text: b }), "."),
      el("div", { class: "cards" }, cards), only);
  }

  function setupCompare(runs) {
    const sa = $("compare-a");
    const sb = $("compare-b");
    const opts = () => runs.map((r) => el("option", { value: r.run_id, text: r.run_id }));
    sa.replaceChildren(...opts());
    sb.replaceChildren(...opts());
    if (runs.length > 0) sb.value = runs[0].run_id;
    sa.value = runs.length > 1 ? runs[1].run_id : runs.length ? runs[0].run_id : "";
    $("compare-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const box = $("compare-result");
      box.setAttribute("data-status", "running");
      try {
        const cmp = (await api(`/api/runs/${encodeURIComponent(sa.value)}/compare/${encodeURIComponent(sb.value)}`)).body;
        renderCompare(cmp);
        box.setAttribute("data-status", "completed");
      } catch (err) {
        showError(box, "compare", err);
        box.setAttribute("data-status", "error");
      }
    });
  }

  // ---------------------------------------------------------------- what-if presets, role, peg and liquidity

  const WHATIF_PEG_FIGURES = [
    ["premium_end_q0.01_frac", "Premium/discount to NAV at the horizon end, 1% quantile", fmtPct],
    ["premium_end_q0.5_frac", "Premium/discount to NAV at the horizon end, median", fmtPct],
    ["premium_end_q0.99_frac", "Premium/discount to NAV at the horizon end, 99% quantile", fmtPct],
    ["p_abs_premium_gt_1pct", "Chance the price strays more than 1% from NAV", fmtPct],
    ["p_abs_premium_gt_5pct", "Chance the price strays more than 5% from NAV", fmtPct],
    ["liquidity_coverage_1d_q01", "Liquidity coverage over 1 day (worst 1% of paths)", fmtCoverage],
    ["liquidity_coverage_5d_q01", "Liquidity coverage over 5 days (worst 1% of paths)", fmtCoverage],
    ["liquidity_coverage_30d_q01", "Liquidity coverage over 30 days (worst 1% of paths)", fmtCoverage],
    ["p_liquidity_coverage_below_1_30d", "Chance coverage falls below 100% within 30 days", fmtPct],
    ["redeemed_frac_of_day0_supply_end_mean", "Redemptions met: share of day-0 supply redeemed (mean)", fmtPct],
    ["redemption_queue_max_tokens_q99", "Redemptions queued: longest queue (worst 1%)", fmtTokens],
    ["redemption_queue_end_tokens_mean", "Redemptions queued at the end (mean)", fmtTokens],
  ];

  let currentSummary = null;

  function whatifPegTable(r) {
    const mc = r.monte_carlo || {};
    const symbol = String(((r.inputs || {}).token_spec || {}).symbol || (r.inputs || {}).token_preset || "").toUpperCase();
    const shown = WHATIF_PEG_FIGURES.filter(([k]) => k in mc);
    if (shown.length === 0) return el("p", { class: "note", "data-testid": "whatif-peg-absent", text: "No peg or liquidity figures: this token has no secondary market or redemption model (CDP stablecoin)." });
    const baseTok = ((currentSummary || {}).tokens || {})[symbol];
    const base = baseTok ? ((baseTok.scenarios || {})[MC_SCENARIO] || {}) : {};
    const baseH = ((currentSummary || {}).monte_carlo || {}).mc_horizon_days;
    const runId = (currentSummary || {}).run_id || "?";
    return el("table", { "data-testid": "whatif-peg-table" },
      el("caption", { text: `Peg and liquidity of ${symbol}: this what-if beside the Monte Carlo of run ${runId}` }),
      el("thead", {}, el("tr", {}, el("th", { text: "figure" }), el("th", { text: `what-if (${fmtDays(mc.horizon_days)})` }), el("th", { text: `base run (${fmtDays(baseH)})` }))),
      el("tbody", {}, shown.map(([k, label, f]) => el("tr", {}, el("th", { class: "txt", text: label }),
        cell(`whatif-peg-${k}`, mc[k], f(mc[k])),
        cell(`whatif-base-${k}`, base[k], k in base ? f(base[k]) : "not in the base run")))));
  }

  async function setupRole() {
    let role = "viewer";
    try {
      role = (await api("/api/whoami")).body.role;
    } catch (err) {
      if (err.status === 401) return;
    }
    document.body.setAttribute("data-role", role);
    if (role !== "analyst") {
      $("whatif-section").remove();
      return;
    }
    const select = $("whatif-preset");
    $("whatif-section").hidden = false;
    let presets;
    try {
      presets = (await api("/api/presets")).body.presets || [];
    } catch (err) {
      showError($("whatif-result"), "what-if presets", err);
      $("whatif-submit").disabled = true;
      return;
    }
    const kinds = { gold_backed: "gold-backed token", gold_cdp: "gold-collateralised stablecoin" };
    select.replaceChildren(...presets.map((p) => el("option", { value: p.symbol, "data-kind": p.kind, text: `${p.symbol}: ${p.name} (${kinds[p.kind] || p.kind})` })));
    select.dispatchEvent(new Event("change"));
  }

  // ---------------------------------------------------------------- page

  async function section(name, container, fn) {
    try {
      await fn();
    } catch (err) {
      showError(container, name, err);
    }
  }

  async function loadRun(runId) {
    document.body.setAttribute("data-ready", "false");
    setStatus(`Loading run ${runId}…`);
    let summary;
    try {
      summary = (await api(`/api/runs/${encodeURIComponent(runId)}/summary`)).body;
    } catch (err) {
      setStatus(`Could not load run ${runId}: ${err.message}`, "error");
      return null;
    }
    document.body.setAttribute("data-run-id", summary.run_id);
    currentSummary = summary;
    await section("run", $("run-meta"), async () => renderMeta(summary));
    await section("verdicts", $("verdicts"), async () => renderVerdicts(summary));
    await section("downloads", $("downloads"), () => renderDownloads(summary.run_id));
    await section("headlines", $("headlines"), async () => renderHeadlines(summary));
    await section("liquidity", $("liquidity"), async () => renderLiquidity(summary));
    await section("recommendations", $("recommendations"), async () => renderRecommendations(summary));
    await section("reverse", $("reverse"), async () => renderReverse(summary));
    await section("backtest", $("backtest"), async () => renderBacktest(summary));
    await section("scenarios", $("scenario-table"), async () => renderScenarioTable(summary));
    await section("fan", $("plot-fan"), () => renderFan(summary.run_id));
    await section("backing", $("backing-table"), () => renderBacking(summary));
    await section("peg", $("peg-table"), () => renderPeg(summary));
    setStatus(`Run ${summary.run_id}${plotlyReady() ? "" : " (plots unavailable: plotly.js not served)"}`, plotlyReady() ? "ok" : "error");
    return summary;
  }

  async function logout() {
    try {
      await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
    } finally {
      window.location.assign("/login");
    }
  }

  async function main() {
    $("logout").addEventListener("click", logout);
    setupWhatif();
    await setupRole();
    let latest;
    try {
      latest = (await api("/api/runs/latest")).body;
    } catch (err) {
      if (err.status === 401) return;
      setStatus(err.status === 404 ? "No runs yet: run the pipeline first (make run)." : `Could not read the latest run: ${err.message}`, err.status === 404 ? "" : "error");
      document.body.setAttribute("data-ready", "true");
      return;
    }
    const select = $("run-select");
    let runs = [latest];
    try {
      const listed = (await api("/api/runs?limit=50")).body.runs || [];
      if (listed.length) runs = listed;
    } catch (err) {
      // the list is a convenience: the latest run alone still works
    }
    select.replaceChildren(...runs.map((r) => el("option", { value: r.run_id, text: `${r.run_id}${r.created_at ? " (" + r.created_at + ")" : ""}` })));
    select.value = latest.run_id;
    setupCompare(runs);
    select.addEventListener("change", async () => {
      await loadRun(select.value);
      document.body.setAttribute("data-ready", "true");
    });
    const summary = await loadRun(latest.run_id);
    const tokens = summary ? Object.keys(summary.tokens || {}) : latest.tokens || [];
    await renderHistory(tokens);
    document.body.setAttribute("data-ready", "true");
  }

  document.addEventListener("DOMContentLoaded", main);
})();
