"""The HTML report of a run, rendered from the Jinja2 templates in goldstress/templates/
(autoescaped) from the run's ``summary.json`` and ``manifest.json``: the executive summary of
the token verdicts first, then a table of contents, each token, the scenario library, the
liquidity stress test, the weekend gap, model validation and an appendix. Figures are small
inline SVGs drawn by :mod:`goldstress.figures` from pre-aggregated data (no script, no network).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup

from goldstress.figures import figures as figures
from goldstress.figures import reverse_stress_boundary_series as reverse_stress_boundary_series

__all__ = [
    "champion_backtest_html",
    "figures",
    "fmt_date",
    "fmt_pct",
    "fmt_usd",
    "fmt_value",
    "render_blocks",
    "render_html",
    "reverse_stress_boundary_series",
    "stale_data",
]

# ---------------------------------------------------------------------------------------------
# human formats (Jinja filters)
# ---------------------------------------------------------------------------------------------


def _num(v: Any) -> float | None:
    """A summary number back from its JSON-safe form: None for None, NaN and "nan"; "inf"/"-inf"
    strings become infinities; booleans are not numbers."""
    if isinstance(v, str):
        v = {"inf": math.inf, "-inf": -math.inf}.get(v)
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _plain(f: float) -> str:
    """A number in plain words: thousands separated, 4 significant digits, a power of ten
    written out (1.16×10⁻⁶) instead of ``e`` notation."""
    if f == 0:
        return "0"
    if isinstance(f, int) or float(f).is_integer() and abs(f) < 1e15:
        return f"{int(f):,}"
    if 1e-4 <= abs(f) < 1e15:
        return f"{f:,.4g}" if abs(f) < 1e4 else f"{f:,.0f}"
    mant, exp = f"{f:.3g}".split("e")
    return f"{mant}×10{str(int(exp)).translate(_SUPERSCRIPT)}"


def fmt_usd(v: Any) -> str:
    """An amount in US dollars: ``USD 1.2bn``, ``USD 163.6m``, ``USD 392,516``, ``USD 23.93``
    (two decimals below 100); "–" when missing or not finite."""
    f = _num(v)
    if f is None or not math.isfinite(f):
        return "–"
    a, sign = abs(f), "-" if f < 0 else ""
    if a == 0:
        return "USD 0"
    if a >= 1e9:
        return f"{sign}USD {a / 1e9:,.1f}bn"
    if a >= 1e6:
        return f"{sign}USD {a / 1e6:,.1f}m"
    if a >= 100:
        return f"{sign}USD {a:,.0f}"
    return f"{sign}USD {a:,.2f}"


def fmt_pct(v: Any) -> str:
    """A fraction as a percentage: one decimal at or above 10%, two below (0.0008 -> "0.08%");
    "–" when missing; "∞" when infinite."""
    f = _num(v)
    if f is None:
        return "–"
    if not math.isfinite(f):
        return "∞" if f > 0 else "-∞"
    return f"{f:.1%}" if abs(f) >= 0.1 or f == 0 else f"{f:.2%}"


def fmt_date(v: Any) -> str:
    """An ISO date or timestamp as ``17 Aug 2026`` (timestamps keep ``HH:MM UTC``); other text
    unchanged; "–" when missing."""
    if v is None or v == "":
        return "–"
    s = str(v)
    try:
        if len(s) == 10:
            return date.fromisoformat(s).strftime("%-d %b %Y")
        return datetime.fromisoformat(s).strftime("%-d %b %Y %H:%M UTC")
    except ValueError:
        return s


def fmt_value(v: Any, kind: str = "num") -> str:
    """One value in the format ``kind`` names: ``pct``/``fraction`` (:func:`fmt_pct`), ``usd``
    (:func:`fmt_usd`), ``usd_per_token`` (USD with two decimals), ``ratio`` (two decimals, "∞"),
    ``int``, ``days``, ``date``, ``bool`` (yes/no), ``text``; ``num`` (default) a plain number.
    Missing values read "–"."""
    if kind == "text":
        return "–" if v is None else str(v)
    if kind == "bool":
        return "–" if v is None else ("yes" if v else "no")
    if kind == "date":
        return fmt_date(v)
    if kind in ("pct", "fraction"):
        return fmt_pct(v)
    if kind == "usd":
        return fmt_usd(v)
    f = _num(v)
    if f is None:
        return "–" if v is None or isinstance(v, (int, float)) or _is_nan_text(v) else str(v)
    if not math.isfinite(f):
        return "∞" if f > 0 else "-∞"
    if kind == "level":
        return f"{f * 100:g}%"
    if kind == "usd_per_token":
        return f"USD {f:,.2f}"
    if kind == "ratio":
        return f"{f:,.2f}"
    if kind == "int":
        return f"{round(f):,}"
    if kind == "days":
        return f"{round(f):,} day{'s' if round(f) != 1 else ''}"
    return _plain(f)


def _is_nan_text(v: Any) -> bool:
    return isinstance(v, str) and v in ("nan", "inf", "-inf")


def _fmt(v: Any, pct: bool = False) -> str:
    """:func:`fmt_value` as a number (``pct``: as a percentage)."""
    return fmt_value(v, "pct" if pct else "num")


_STATUS_WORDS = {"pass": "PASS", "watch": "WATCH", "fail": "FAIL"}


def _status_word(v: Any) -> str:
    return _STATUS_WORDS.get(str(v), "no verdict")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("goldstress", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt_value, usd=fmt_usd, pct=fmt_pct, date=fmt_date, status_word=_status_word)
    return env


# ---------------------------------------------------------------------------------------------
# blocks: the content of a section, rendered by templates/blocks.html.j2
# ---------------------------------------------------------------------------------------------
Block = dict[str, Any]


def _p(text: str, lead: str | None = None, cls: str | None = None) -> Block:
    return {"kind": "p", "text": text, "lead": lead, "cls": cls}


def _h3(text: str, id: str | None = None) -> Block:
    return {"kind": "h3", "text": text, "id": id}


def _h4(text: str) -> Block:
    return {"kind": "h4", "text": text}


def _ul(items: list[str]) -> Block:
    return {"kind": "ul", "items": [str(i) for i in items]}


def _table(columns: list[tuple[str, str]], rows: list[list[Any]], status_col: int | None = None) -> Block:
    """A table block: ``columns`` (header, value kind of :func:`fmt_value`, or ``status``,
    ``zone`` (a Basel traffic light, coloured), ``code``, ``mixed`` for ``[value, kind]`` cells),
    ``rows`` of raw values."""
    return {
        "kind": "table",
        "columns": [{"label": label, "kind": kind} for label, kind in columns],
        "rows": rows,
        "status_col": status_col,
        "cls": None,
    }


def _details(summary: str, blocks: list[Block]) -> Block:
    return {"kind": "details", "summary": summary, "blocks": blocks}


def _figure(name: str, title: str, svg: str) -> Block:
    return {"kind": "figure", "name": name, "title": title, "svg": Markup(svg)}


def render_blocks(blocks: list[Block], title: str | None = None) -> str:
    """Blocks rendered to an HTML fragment (``title``: an ``<h2>`` before them). Text is escaped;
    figures' SVG (drawn by matplotlib from numbers) is inserted as it is."""
    return _env().get_template("fragment.html.j2").render(blocks=blocks, title=title)


# ---------------------------------------------------------------------------------------------
# tokens
# ---------------------------------------------------------------------------------------------
VALUE_ROWS = (
    ("holder value per token", "holder_value", "usd_per_token"),
    ("reserve value per token outstanding", "reserve_per_token", "usd_per_token"),
)
"""VaR/ES table rows of the report: label, summary key prefix, unit of the USD figure."""


def var_es_rows(mc: dict[str, Any], horizons: list[int], levels: list[str]) -> tuple[list[tuple[str, str]], list[list]]:
    """The VaR/ES table of one token's Monte Carlo (columns, rows): for holder value and reserve
    value per token outstanding, the loss at each horizon and at the window's end (VaR and ES as
    shares of the day-0 value, VaR in USD per token), then the peak-to-trough fall."""
    cols: list[tuple[str, str]] = [("Value", "text"), ("Horizon", "text")]
    for lvl in levels:
        cols += [
            (f"VaR {lvl}% (share of value)", "pct"),
            (f"ES {lvl}% (share of value)", "pct"),
            (f"VaR {lvl}% (USD per token)", "usd_per_token"),
        ]
    rows = []
    end = mc.get("horizon_days")
    for label, who, unit in VALUE_ROWS:
        for h in [*horizons, "end"]:
            where = f"{h}d" if h != "end" else "end"
            row: list[Any] = [label, f"{h} day{'s' if h != 1 else ''}" if h != "end" else f"end ({end} days)"]
            for lvl in levels:
                row += [
                    mc.get(f"{who}_var_{lvl}_{where}_frac"),
                    mc.get(f"{who}_es_{lvl}_{where}_frac"),
                    mc.get(f"{who}_var_{lvl}_{where}_{unit}"),
                ]
            rows.append(row)
        row = [label, f"peak to trough over {end} days"]
        for lvl in levels:
            row += [mc.get(f"{who}_max_drawdown_var_{lvl}_frac"), mc.get(f"{who}_max_drawdown_es_{lvl}_frac"), None]
        rows.append(row)
    return cols, rows


SCENARIO_COLUMNS = (
    ("window_days", "Window (days)", "int"),
    ("holder_loss_frac_end", "Holder loss at end", "pct"),
    ("holder_max_drawdown_frac", "Holder peak to trough", "pct"),
    ("reserve_per_token_loss_frac_end", "Reserve per token: loss at end", "pct"),
    ("reserve_per_token_max_drawdown_frac", "Reserve per token: peak to trough", "pct"),
    ("backing_ratio_min", "Lowest backing ratio", "ratio"),
)
"""Whole-window columns of the scenario table (``scenario_table`` rows): key, header, kind."""

_KIND_WORDS = {"monte_carlo": "Monte Carlo", "historical": "historical replay", "shock": "instant shock"}


def scenario_label(name: str, m: dict[str, Any] | None = None) -> str:
    """A scenario key in words: ``hist_gfc_2008`` -> "Replay: gfc 2008", ``shock_-40pct`` ->
    "Gold falls 40% at once", ``mc_champion`` -> "Monte Carlo (champion model)"."""
    if name == "mc_champion":
        return "Monte Carlo (champion model)"
    if name.startswith("hist_"):
        return "Replay: " + name.removeprefix("hist_").replace("_", " ")
    if name.startswith("shock_") and name.endswith("pct"):
        x = name.removeprefix("shock_").removesuffix("pct")
        return f"Gold {'falls' if x.startswith('-') else 'rises'} {x.lstrip('+-')}% at once"
    return name.replace("_", " ")


def scenario_rows(t: dict[str, Any], table: list[dict[str, Any]], symbol: str) -> tuple[list[tuple[str, str]], list]:
    """The scenario table of one token (columns, rows): the summary's ``scenario_table`` rows
    (whole-window figures; Monte Carlo: expected shortfall of each loss, 0.1% quantile of the
    minimum backing) with breach, bad-debt, outflow and fee figures (Monte Carlo: probability,
    mean)."""
    cols = [("Scenario", "text"), ("Kind", "text")]
    cols += [(head, kind) for _, head, kind in SCENARIO_COLUMNS]
    cols += [
        ("Backing below 1 (chance)", "pct"),
        ("Liquidation (chance)", "pct"),
        ("Bad debt", "usd"),
        ("Redeemed share of day-0 supply", "pct"),
        ("Redemption outflow", "usd"),
        ("Issuer fee revenue", "usd"),
    ]
    rows = []
    for r in (r for r in table if r["token"] == symbol):
        m = t["scenarios"][r["scenario"]]
        sfx = "_mean" if m["kind"] == "monte_carlo" else ""
        rows.append(
            [scenario_label(r["scenario"]), _KIND_WORDS.get(r["kind"], r["kind"])]
            + [r.get(key) for key, _, _ in SCENARIO_COLUMNS]
            + [
                m.get("p_backing_below_1", m.get("backing_below_1")),
                m.get("p_liquidation", m.get("liquidated")),
                m.get("expected_bad_debt_usd", m.get("bad_debt_usd")),
                m.get(f"redeemed_frac_of_day0_supply_end{sfx}"),
                m.get(f"redemption_outflow_usd_end{sfx}"),
                m.get(f"issuer_fee_revenue_usd_end{sfx}"),
            ]
        )
    return cols, rows


def _peg_liquidity_blocks(t: dict[str, Any]) -> list[Block]:
    """Peg and liquidity table of a reserve-backed token: Monte Carlo and each single-path scenario."""
    rows = []
    for name, m in t["scenarios"].items():
        if m.get("kind") == "monte_carlo" and "p_abs_premium_gt_1pct" in m:
            rows.append(
                [
                    scenario_label(name),
                    m["p_abs_premium_gt_1pct"],
                    m["p_abs_premium_gt_5pct"],
                    m["depeg_depth_q99_frac"],
                    " / ".join(fmt_pct(m.get(f"premium_end_q{q}_frac")) for q in ("0.01", "0.5", "0.99")),
                    m["depeg_longest_days_beyond_1pct_q99"],
                    m.get("liquidity_coverage_1d_q01"),
                    m.get("liquidity_coverage_5d_q01"),
                    m.get("liquidity_coverage_30d_q01"),
                    m["redemption_wait_max_days_q99"],
                ]
            )
        elif "depeg_depth_frac" in m:
            rows.append(
                [
                    scenario_label(name),
                    float(m["depeg_depth_frac"] > 0.01),
                    float(m["depeg_depth_frac"] > 0.05),
                    m["depeg_depth_frac"],
                    fmt_pct(m.get("premium_end_frac")),
                    m.get("depeg_longest_days_beyond_1pct"),
                    m.get("liquidity_coverage_min_1d"),
                    m.get("liquidity_coverage_min_5d"),
                    m.get("liquidity_coverage_min_30d"),
                    m.get("redemption_wait_max_days"),
                ]
            )
    if not rows:
        return []
    cols = [
        ("Scenario", "text"),
        ("Chance |premium| > 1%", "pct"),
        ("Chance |premium| > 5%", "pct"),
        ("Deepest depeg (99%)", "pct"),
        ("Premium at end, 1% / 50% / 99%", "text"),
        ("Longest depeg > 1%, days (99%)", "num"),
        ("Liquidity coverage 1 day (1%)", "ratio"),
        ("Liquidity coverage 5 days (1%)", "ratio"),
        ("Liquidity coverage 30 days (1%)", "ratio"),
        ("Days to meet a wave (99%)", "num"),
    ]
    return [
        _h4("Peg and liquidity"),
        _p(
            "Premium or discount to NAV on the secondary market; liquidity coverage = liquid resources over stressed "
            "outflows, lowest day of the horizon (Monte Carlo: the 1% quantile across paths, i.e. 99% of paths "
            "are above it). Single-path scenarios show their one outcome."
        ),
        _table(cols, rows),
    ]


def _boundary_blocks(t: dict[str, Any]) -> list[Block]:
    """Reverse stress boundary table of a reserve-backed token, or [] when the token has none."""
    b = t.get("reverse_stress_boundary")
    if not b:
        return []
    rows = [
        [
            r["redemption_share"],
            "none up to 99%" if r["gold_drop_frac"] is None else fmt_pct(r["gold_drop_frac"]),
            r["fails_without_drop"],
        ]
        for r in b["rows"]
    ]
    return [
        _h4(
            f"Reverse stress boundary (MiCA Art. 5): gold fall that makes the token fail, by redemption share over {b['horizon_days']} days"
        ),
        _p(
            "Commission Delegated Regulation (EU) 2025/1264, Art. 5(2): a reverse stress test of the limit of resilience "
            "of the reserve's liquidity profile. Each row: holders request the given share of supply over the horizon "
            "(no runs, no mints) while gold falls steadily; the smallest fall at which the token fails "
            f"({b.get('failure', 'backing below 1, liquidity coverage below 1, or redemptions unpaid')})."
        ),
        _table(
            [
                ("Share of supply redeemed", "pct"),
                ("Gold fall that makes it fail", "text"),
                ("Fails without a fall", "bool"),
            ],
            rows,
        ),
    ]


def _boundary_html(t: dict[str, Any]) -> str:
    """The reverse stress boundary table of a token as an HTML fragment ("" when it has none)."""
    blocks = _boundary_blocks(t)
    return render_blocks(blocks) if blocks else ""


def _reverse_stress_blocks(rs: dict[str, Any]) -> list[Block]:
    """The reverse stress statement (the closed form where it agrees with the model's search,
    else the search), its source and the searches."""
    st, cf = rs.get("statement") or {}, rs.get("closed_form") or {}
    move = rs.get("smallest_breaking_move")
    move_text = (
        "none within the moves searched"
        if not move
        else f"{fmt_pct(move.get('move_frac'))} over {move.get('horizon_days')} days"
        if isinstance(move, dict)
        else str(move)
    )
    rows = [
        [
            s.get("horizon_days"),
            "fall" if s.get("direction", -1) < 0 else "rise",
            "none found" if s.get("move_frac") is None else fmt_pct(s.get("move_frac")),
            s.get("max_move_searched_frac"),
            s.get("breaks_without_move"),
        ]
        for s in rs.get("searches") or []
    ]
    out = [_h4("Reverse stress test")]
    if st.get("text"):
        out.append(_p(f"{st.get('text')} (source: {st.get('source', '')}; {st.get('note', '')}).", lead="Statement:"))
    out.append(
        _p(
            f"Closed form: {cf.get('statement', '–')} Agrees with the model's search: {fmt_value(cf.get('agrees_with_search'), 'bool')}. "
            f"Smallest breaking gold move found by the search: {move_text}."
        )
    )
    out.append(
        _table(
            [
                ("Horizon (days)", "int"),
                ("Direction", "text"),
                ("Smallest breaking move", "text"),
                ("Largest move searched", "pct"),
                ("Breaks without a move", "bool"),
            ],
            rows,
        )
    )
    return out


def _verdict_blocks(t: dict[str, Any]) -> list[Block]:
    v = t.get("verdict")
    if not v:
        return [_p("No verdict in this run's summary.", lead="Verdict:")]
    rows = [
        [
            c["label"],
            [c["value"], c["unit"]],
            [c["limit"], c["unit"]],
            c.get("confidence"),
            c.get("horizon_days"),
            c["status"],
        ]
        for c in v["checks"]
    ]
    tol = v.get("tolerance") or {}
    out = [
        _p(f"{_status_word(v['verdict'])}. {v['reason']}", lead="Verdict:"),
        _table(
            [
                ("Check", "text"),
                ("Figure", "mixed"),
                ("Limit", "mixed"),
                ("Confidence", "level"),
                ("Horizon (days)", "int"),
                ("Status", "status"),
            ],
            rows,
            status_col=5,
        ),
        _p(
            f"Tolerance from {'the spec file' if tol.get('source') == 'spec' else 'the documented defaults'}; "
            f"watch once a figure uses more than {fmt_value(tol.get('watch_share'), 'level')} of its limit."
        ),
    ]
    rem = v.get("remedy")
    if rem:
        out.append(
            _p(
                f"{rem['action']}" + (f": {fmt_usd(rem['usd'])}." if rem.get("usd") is not None else "."),
                lead="Remedy:",
            )
        )
    return out


def _token_blocks(
    symbol: str, t: dict[str, Any], horizons: list[int], levels: list[str], table: list[dict]
) -> list[Block]:
    """One token's section (``table``: the summary's ``scenario_table``)."""
    mc = t["scenarios"].get("mc_champion", {})
    kind_words = (
        "reserve-backed gold token" if t["kind"] == "gold_backed" else "gold-collateralised stablecoin (CDP vaults)"
    )
    out: list[Block] = [_p(f"{t['name']}: a {kind_words}, spec version {t['spec_version']}.")]
    out += _verdict_blocks(t)
    w = t.get("worst_scenario") or {}
    if w:
        text = (
            f"{scenario_label(str(w['scenario']))} ({t['scenarios'].get(w['scenario'], {}).get('description', '')}): "
            f"holder value falls {fmt_pct(w['value'])} peak to trough over {fmt_value(w.get('window_days'), 'days')}."
        )
        tail = w.get("monte_carlo_tail")
        if tail:
            text += f" Monte Carlo tail: {tail['statistic']} over {tail.get('horizon_days')} days is {fmt_pct(tail['value'])}."
        out.append(_p(text, lead="Worst single-path scenario:"))
    out.append(
        _p(
            f"Monte Carlo over {fmt_value(mc.get('horizon_days'), 'days')}: chance the backing falls below 1 "
            f"{fmt_pct(mc.get('p_backing_below_1'))}; chance of a liquidation {fmt_pct(mc.get('p_liquidation'))}; "
            f"expected bad debt {fmt_usd(mc.get('expected_bad_debt_usd'))}."
        )
    )
    if "redeemed_frac_of_day0_supply_end_mean" in mc:
        out.append(
            _p(
                f"Reserve value per token outstanding at day 0: {fmt_value(mc.get('reserve_usd_per_token_d0'), 'usd_per_token')}. "
                f"On average {fmt_pct(mc.get('redeemed_frac_of_day0_supply_end_mean'))} of the day-0 supply is redeemed "
                f"(99% quantile {fmt_pct(mc.get('redeemed_frac_of_day0_supply_end_q99'))}), {fmt_usd(mc.get('redemption_outflow_usd_end_mean'))} "
                f"paid out of the reserve; fees to the issuer {fmt_usd(mc.get('issuer_fee_revenue_usd_end_mean'))}. A redemption "
                "paid at the backing value is not a reserve loss: the reserve figures are per token outstanding.",
                lead="Redemptions:",
            )
        )
    cols, rows = var_es_rows(mc, horizons, levels)
    out += [_h4("Value at risk and expected shortfall (Monte Carlo, champion model)"), _table(cols, rows)]
    out += _peg_liquidity_blocks(t)
    cols, rows = scenario_rows(t, table, symbol)
    out += [
        _h4("Scenarios over their whole window"),
        _p(
            "Single-path scenarios: realised figures over each window. Monte Carlo row: expected shortfall at the "
            "highest level of each loss, 0.1% quantile of the lowest backing, chances and means of the rest."
        ),
        _table(cols, rows),
    ]
    out += _reverse_stress_blocks(t["reverse_stress"])
    out += _boundary_blocks(t)
    return out


# ---------------------------------------------------------------------------------------------
# liquidity stress, weekend, validation
# ---------------------------------------------------------------------------------------------
def _gate(x: Any) -> str:
    return "none" if x is None else f"{x:.0%} of supply a day"


def _liquidity_stress_blocks(summary: dict[str, Any]) -> list[Block]:
    """The liquidity stress section in the layout of Delegated Regulation (EU) 2025/1264: risks
    covered; parameters and calibration; scenarios and horizons; historical data used; outcome;
    remedies. [] when the run has no reserve-backed token."""
    ls = summary.get("liquidity_stress") or {}
    if not ls:
        return []
    out: list[Block] = [_p(f"Laid out as {ls['regulation']} asks."), _h3("1. Risks covered"), _ul(ls["risks_covered"])]
    out.append(_h3("2. Parameters and their calibration"))
    for sym, p in ls["parameters"].items():
        pp = p["premium_process"]
        if pp.get("source", "spec assumption") == "calibrated":
            fw, oos, fit = pp.get("full_sample") or {}, pp.get("oos_scores") or {}, pp.get("fit_window") or {}
            prem = (
                f"calibrated on set {pp.get('calibration_set')} ({fmt_date(fw.get('first_date'))} to {fmt_date(fw.get('last_date'))}, "
                f"{fw.get('n_obs')} days); out of sample (fit {fmt_date(fit.get('first_date'))} to {fmt_date(fit.get('last_date'))}): "
                f"95% interval coverage {fmt_pct(oos.get('coverage_95'))}, 1% quantile hit rate {fmt_pct(oos.get('q01_hit_rate'))}, "
                f"99% quantile hit rate {fmt_pct(oos.get('q99_hit_rate'))}."
            )
            params = pp.get("premium_process") or {}
        else:
            prem = f"spec assumption ({pp.get('reason', 'no calibration configured')})."
            params = pp.get("assumed") or {}
        pm = p["primary_market"]
        reserve = p["reserve"]
        rcols = list(reserve[0].keys()) if reserve else []
        out += [
            _h4(sym),
            _table(
                [
                    (
                        c.replace("_", " "),
                        "pct"
                        if c in ("stressed_haircut", "liquidity_per_day")
                        else "num"
                        if c != "name"
                        and isinstance(reserve[0][c], (int, float))
                        and not isinstance(reserve[0][c], bool)
                        else "text",
                    )
                    for c in rcols
                ],
                [[r.get(c) for c in rcols] for r in reserve],
            ),
            _table(
                [("Custodian", "text"), ("Share of reserve value", "pct")],
                [[c.get("custodian"), c.get("share")] for c in p["custody_concentration"]],
            ),
            _p(
                f"redeem fee {fmt_pct(pm.get('redeem_fee'))}, mint fee {fmt_pct(pm.get('mint_fee'))}, minimum "
                f"{fmt_value(pm.get('min_redemption_tokens'))} tokens, bars of {fmt_value(pm.get('redemption_granularity_tokens'))}, "
                f"settlement after {fmt_value(pm.get('settlement_lag_days'), 'days')} open, market hours {str(pm.get('market_hours')).replace('_', ' ')}, "
                f"cash share {fmt_pct(pm.get('cash_redemption_share'))}, gate {_gate(pm.get('redemption_limit_share_per_day'))}; "
                f"attestation lag {fmt_value(p.get('attestation_lag_days'), 'days')}.",
                lead="Primary market:",
            ),
            _p(prem, lead="Premium process:"),
            _table(
                [("Parameter", "text"), ("Value", "num")],
                [[k.replace("_", " "), v] for k, v in params.items() if not isinstance(v, (dict, list))],
            ),
            _p(str(p["calibration_note"]), cls="muted"),
        ]
    sh = ls["scenarios_and_horizons"]
    wave = sh.get("redemption_wave") or {}
    out += [
        _h3("3. Scenarios and horizons"),
        _ul(
            [
                f"Monte Carlo gold (champion): {fmt_value(sh['monte_carlo']['paths'], 'int')} paths of {sh['monte_carlo']['horizon_days']} days, "
                f"seed {sh['monte_carlo']['seed']}; holder behaviour as in each spec; liquidity coverage over 1, 5, 10 and 30 days.",
                f"Redemption wave ({wave.get('wave_basis', '')}): {fmt_pct(wave.get('wave_share_of_supply'))} of the supply requested within "
                f"{wave.get('wave_days')} calendar days, coverage over {wave.get('wave_horizon_trading_days')} trading days from "
                f"{fmt_date(wave.get('first_day'))}, on {fmt_value(wave.get('search_paths'), 'int')} Monte Carlo gold paths "
                f"(checked out of sample on {fmt_value(wave.get('out_of_sample_paths'), 'int')} more); target: coverage at least "
                f"{fmt_value(wave.get('target_coverage'), 'ratio')} at {fmt_pct(wave.get('confidence'))} confidence; coverage = {wave.get('coverage', '')}.",
                "Historical replays: "
                + ", ".join(
                    f"{k.replace('_', ' ')} ({fmt_date(a)} to {fmt_date(b)})"
                    for k, (a, b) in sh["historical_replays"].items()
                ),
                "Instant gold shocks: " + ", ".join(f"{x:+.0%}" for x in sh["instant_shocks"]),
                f"Reverse stress (Art. 5(2)): redemption shares {', '.join(f'{x:.0%}' for x in sh['reverse_stress']['redemption_shares'])} "
                f"over {sh['reverse_stress']['horizon_days']} days, gold falls up to 99%.",
            ]
        ),
    ]
    hd = ls["historical_data"]
    g = hd["gold"]
    so_rows = [
        [
            sym,
            v.get("file"),
            v.get("proxy"),
            v.get("first_date"),
            v.get("last_date"),
            *[(v["worst"].get(h) or {}).get("fall_frac") for h in ("1d", "5d", "30d")],
            (v["worst"].get("1d") or {}).get("end_date"),
        ]
        for sym, v in hd.get("supply_outflows", {}).items()
    ]
    out += [
        _h3("4. Historical data used"),
        _p(
            f"Gold: {g.get('data_source')} {fmt_date(g.get('data_first_date'))} to {fmt_date(g.get('data_last_date'))}, "
            f"{fmt_value(g.get('n_returns', 0), 'int')} daily log returns (files and checksums in the appendix)."
        ),
        _p(
            "Worst observed falls of the token supply proxy (net redemptions), beside the wave, whose basis is stated above:"
        ),
        _table(
            [
                ("Token", "text"),
                ("File", "text"),
                ("Proxy", "text"),
                ("From", "date"),
                ("To", "date"),
                ("Worst 1-day fall", "pct"),
                ("Worst 5-day fall", "pct"),
                ("Worst 30-day fall", "pct"),
                ("Worst 1-day fall on", "date"),
            ],
            so_rows,
        ),
    ]
    orows = []
    for sym, o in ls["outcome"].items():
        mc, w = o.get("monte_carlo_behavioural") or {}, o.get("redemption_wave_without_remedy") or {}
        orows.append(
            [
                sym,
                mc.get("liquidity_coverage_1d_q01"),
                mc.get("liquidity_coverage_5d_q01"),
                mc.get("liquidity_coverage_30d_q01"),
                mc.get("p_abs_premium_gt_1pct"),
                w.get("coverage_q"),
                w.get("p_coverage_below_target"),
                w.get("depeg_depth_q"),
            ]
        )
    out += [
        _h3("5. Outcome"),
        _table(
            [
                ("Token", "text"),
                ("Coverage 1 day (1%)", "ratio"),
                ("Coverage 5 days (1%)", "ratio"),
                ("Coverage 30 days (1%)", "ratio"),
                ("Chance |premium| > 1%", "pct"),
                ("Wave: coverage (1%)", "ratio"),
                ("Wave: chance coverage below target", "pct"),
                ("Wave: deepest depeg (99%)", "pct"),
            ],
            orows,
        ),
        _p("The reverse stress boundary of each token is in its own section and in the figure below."),
        _h3("6. Remedies (each measured by re-running the scenario)"),
    ]
    conf = float(wave.get("confidence", 0.99) or 0.99)
    n_oos = max(int(wave.get("out_of_sample_paths") or 1), 1)
    for sym, r in ls["remedies"].items():
        wb, oos = r["with_buffer"], r["with_buffer_out_of_sample"]
        if r["cash_buffer_reachable"] and not r["cash_buffer_usd"]:
            buf = (
                f"none needed: coverage is already {fmt_value(wb['coverage_q'], 'ratio')} under the wave "
                f"(out of sample {fmt_value(oos['coverage_q'], 'ratio')})."
            )
        elif r["cash_buffer_reachable"]:
            buf = (
                f"{fmt_usd(r['cash_buffer_usd'])} ({fmt_pct(r['cash_buffer_frac_of_liabilities'])} of liabilities), issuer-funded USD on top "
                f"of the backing. Re-run with it: coverage {fmt_value(wb['coverage_q'], 'ratio')}, chance below target "
                f"{fmt_pct(wb['p_coverage_below_target'])}; out of sample {fmt_value(oos['coverage_q'], 'ratio')} / "
                f"{fmt_pct(oos['p_coverage_below_target'])} (target {'met' if oos['meets_target'] else 'not met'}; the binomial "
                f"standard error of a {fmt_pct(1 - conf)} tail share on {n_oos:,} paths is {fmt_pct(math.sqrt((1 - conf) * conf / n_oos))})."
            )
        else:
            buf = (
                f"not enough: even {fmt_usd(r['cash_buffer_searched_up_to_usd'])} of cash leaves coverage at "
                f"{fmt_value(wb['coverage_q'], 'ratio')}: the binding side is the gold delivered in kind, so the remedy is gold "
                "liquidity or a redemption gate, not cash."
            )
        cur, best = r["current_setting"], r["recommended_setting"]
        out += [
            _h4(sym),
            _p(buf, lead="Cash buffer:"),
            _p(
                f"current redeem fee {fmt_pct(cur['redeem_fee'])}, gate {_gate(cur['redemption_limit_share_per_day'])}; recommended "
                f"{fmt_pct(best['redeem_fee'])}, gate {_gate(best['redemption_limit_share_per_day'])} ({best['rule']}). Under the wave: "
                f"coverage {fmt_value(cur['wave']['coverage_q'], 'ratio')} to {fmt_value(best['wave']['coverage_q'], 'ratio')} (out of sample "
                f"{fmt_value(best['wave_out_of_sample']['coverage_q'], 'ratio')}), deepest depeg {fmt_pct(cur['wave']['depeg_depth_q'])} to "
                f"{fmt_pct(best['wave']['depeg_depth_q'])}, refused or returned {fmt_pct(cur['wave']['refused_share_mean'])} to "
                f"{fmt_pct(best['wave']['refused_share_mean'])}. Behavioural Monte Carlo: chance |premium| > 1% "
                f"{fmt_pct(cur['behavioural']['p_abs_premium_gt_1pct'])} to {fmt_pct(best['behavioural']['p_abs_premium_gt_1pct'])}.",
                lead="Fee and gate:",
            ),
        ]
        if best["redemption_limit_share_per_day"] is not None and r["cash_buffer_reachable"]:
            out.append(
                _p(
                    f"the recommended setting refuses {fmt_pct(best['wave']['refused_share_mean'])} of the supply in requests; holders of "
                    "asset-referenced tokens have a right of redemption at all times (MiCA, Regulation (EU) 2023/1114, Art. 39(1)), so "
                    "a gate is a contingency tool; the cash buffer above meets the target without refusing any request.",
                    lead="Note:",
                )
            )
        grid = r.get("settings_grid") or {}
        for key, words in (("wave", "the wave"), ("behavioural", "the behavioural Monte Carlo")):
            if grid.get(key):
                out.append(_details(f"All settings re-run under {words}", [_grid_table(grid[key])]))
    return out


def _grid_table(rows: list[dict[str, Any]]) -> Block:
    return _table(
        [
            ("Redeem fee", "pct"),
            ("Gate", "text"),
            ("Coverage (1%)", "ratio"),
            ("Chance coverage below target", "pct"),
            ("Meets target", "bool"),
            ("Chance |premium| > 1%", "pct"),
            ("Deepest depeg", "pct"),
            ("Refused or returned", "pct"),
            ("Redeemed", "pct"),
        ],
        [
            [
                r["redeem_fee"],
                _gate(r["redemption_limit_share_per_day"]),
                r["coverage_q"],
                r["p_coverage_below_target"],
                bool(r["meets_target"]),
                r["p_abs_premium_gt_1pct"],
                r["depeg_depth_q"],
                r["refused_share_mean"],
                r["redeemed_share_mean"],
            ]
            for r in rows
        ],
    )


_PREMIUM_GROUPS = (
    ("weekday_vs_same_day_close", "weekdays, against the same day's gold close"),
    ("saturday_vs_friday_close", "Saturday, against Friday's gold close"),
    ("sunday_vs_friday_close", "Sunday, against Friday's gold close"),
    ("weekend_vs_friday_close", "Saturday and Sunday, against Friday's gold close"),
    ("saturday_vs_monday_open", "Saturday, against Monday's gold open"),
    ("sunday_vs_monday_open", "Sunday, against Monday's gold open"),
    ("weekend_vs_monday_open", "Saturday and Sunday, against Monday's gold open"),
)

WEEKEND_TITLE = "Weekend gap risk (the token trades, gold and the primary market are shut)"


def _weekend_blocks(summary: dict[str, Any]) -> list[Block]:
    """The weekend gap section: the holder's weekend VaR/ES per token beside gold's
    Friday-close-to-Monday-open gap, the token's weekend move against gold's reopening, and the
    premium while the primary market is shut. [] when the run has no weekend section."""
    wk = summary.get("weekend") or {}
    if not wk:
        return []
    units = wk.get("units", {})
    out = [_p(f"Horizon: {units.get('horizon', '')}. Losses: {units.get('var_es', '')}.")]
    if wk.get("status") != "measured":
        return [*out, _p(f"Not measured: {wk.get('note', '')}.")]
    gold, tokens = wk.get("gold", {}), wk.get("tokens", {})
    risk_rows, track_rows, prem_rows, notes = [], [], [], []

    def var_row(label: str, file: str, v: dict[str, Any]) -> list[Any]:
        return [
            label,
            file,
            v.get("n_weekends"),
            v.get("first_friday"),
            v.get("last_friday"),
            *[_num(v.get(k)) for k in ("var_95", "es_95", "var_99", "es_99", "tail_weekends_99", "worst_loss")],
            v.get("worst_loss_friday"),
        ]

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
            [
                label,
                tr.get("n_weekends"),
                _num(tr.get("correlation")),
                _num(tr.get("tracking_error_mean")),
                _num(tr.get("tracking_error_sd")),
                _num(tr.get("share_abs_difference_above_0.5pct")),
                _num(tr.get("share_abs_difference_above_1pct")),
                _num(tr.get("max_abs_difference")),
                tr.get("max_abs_difference_friday"),
                ", ".join(f"{k} {v}" for k, v in tr.get("skipped", {}).items()) or "none",
            ]
        )
        for key, text in _PREMIUM_GROUPS:
            g = t["premium"].get(key, {})
            prem_rows.append(
                [label, text, g.get("n_days")]
                + [
                    _num(g.get(k))
                    for k in ("mean", "sd", "q01", "q99", "share_abs_above_0.5pct", "share_abs_above_1pct")
                ]
            )
    if gold.get("status") == "measured":
        risk_rows.append(var_row("gold: Friday close to Monday open", gold["file"], gold["gap_var_es"]))
        notes.append(
            f"gold weekends skipped: {', '.join(f'{k} {v}' for k, v in gold.get('skipped', {}).items()) or 'none'}"
        )
        if gold.get("opens_removed_on_import"):
            notes.append(
                "Monday opens removed on import as known bad prints (goldstress/data_quirks.toml): "
                + ", ".join(gold["opens_removed_on_import"])
            )
    else:
        notes.append(f"gold: not measured, {gold.get('note')}")
    out += [
        _h3("Value at risk over one weekend (loss fraction of holder value)"),
        _p(
            "Empirical figures from the weekends in each file: where n x 1% is about two weekends, the 99% VaR and ES are "
            "one or two observed weekends, not a tail estimate. Gold's row is the gap a gold holder bore over the same "
            "clock (Friday close to Monday open) from the much longer broker history."
        ),
        _table(
            [
                ("Series", "text"),
                ("File", "text"),
                ("Weekends", "int"),
                ("From", "date"),
                ("To", "date"),
                ("VaR 95%", "pct"),
                ("ES 95%", "pct"),
                ("VaR 99%", "pct"),
                ("ES 99%", "pct"),
                ("Weekends in the 99% tail", "num"),
                ("Worst weekend loss", "pct"),
                ("Worst weekend (Friday)", "date"),
            ],
            risk_rows,
        ),
        _h3("The token's weekend move against gold's reopening"),
        _p(
            f"{units.get('tracking', '')}. A weekend is skipped when a needed close or open is missing; a Monday without a "
            "gold bar (holiday) is skipped, not bridged to Tuesday."
        ),
        _table(
            [
                ("Token", "text"),
                ("Weekends", "int"),
                ("Correlation with gold's gap", "ratio"),
                ("Tracking error mean", "pct"),
                ("Tracking error sd", "pct"),
                ("Share |difference| > 0.5%", "pct"),
                ("Share |difference| > 1%", "pct"),
                ("Largest |difference|", "pct"),
                ("On (Friday)", "date"),
                ("Weekends skipped", "text"),
            ],
            track_rows,
        ),
        _h3("Premium while the primary market is shut"),
        _p(f"{units.get('premium', '')}."),
        _table(
            [
                ("Token", "text"),
                ("Days", "text"),
                ("n", "int"),
                ("Mean", "pct"),
                ("sd", "pct"),
                ("1% quantile", "pct"),
                ("99% quantile", "pct"),
                ("Share |premium| > 0.5%", "pct"),
                ("Share |premium| > 1%", "pct"),
            ],
            prem_rows,
        ),
        _ul(notes),
    ]
    return out


def _weekend_html(summary: dict[str, Any]) -> str:
    """The weekend gap section as an HTML fragment ("" when the run has none)."""
    blocks = _weekend_blocks(summary)
    return render_blocks(blocks, WEEKEND_TITLE) if blocks else ""


_BACKTEST_COLS = (
    ("n_obs", "Days", "int"),
    ("n_exceptions", "Breaches", "int"),
    ("expected_exceptions", "Expected breaches", "num"),
    ("exception_rate", "Breach rate", "pct"),
    ("kupiec_p_value", "Kupiec test p-value", "num"),
    ("christoffersen_p_value", "Christoffersen independence p-value", "num"),
    ("quantile_loss", "Quantile loss", "num"),
    ("basel_exceptions_last_250d", "Breaches in the last 250 days", "int"),
    ("basel_zone_last_250d", "Basel traffic light (last 250 days)", "zone"),
)


def _window_text(w: dict[str, Any] | None) -> str:
    if not w:
        return "–"
    return f"{w['first_date']} .. {w['last_date']} ({w['n_returns']:,} returns)"


def champion_backtest_blocks(var_backtest: dict[str, Any]) -> list[Block]:
    """The champion's section: the fitting, validation and hold-out windows, every candidate's
    scores on the validation window (where the champion was picked), the champion's 1-day VaR
    backtest on the later hold-out (breaches, Kupiec 1995 and Christoffersen 1998 p-values,
    Basel Committee 1996 traffic light), and the backtested fit's parameters beside the
    full-sample refit the Monte Carlo simulates. A run without windows shows its backtest only
    (the other tables read "(none)")."""
    windows = var_backtest.get("windows") or {}
    selection = var_backtest.get("selection") or {}
    params = var_backtest.get("parameters") or {}
    cands = selection.get("candidates") or []
    levels = list((cands[0]["backtests"] if cands else {}).keys())
    sel_cols = [("Candidate", "text"), ("Score (summed quantile loss)", "num"), ("Passes Kupiec test (5%)", "bool")]
    for lvl in levels:
        sel_cols += [(f"Breaches at {float(lvl):.0%}", "int"), (f"Kupiec p-value at {float(lvl):.0%}", "num")]
    sel_rows = [
        [
            c["candidate"] + (" (champion)" if c["candidate"] == selection.get("champion") else ""),
            c["score"],
            c["passes_kupiec"],
            *[
                x
                for lvl in levels
                for x in (c["backtests"][lvl].get("n_exceptions"), c["backtests"][lvl].get("kupiec_p_value"))
            ],
        ]
        for c in cands
    ]
    bt_rows = [
        [f"{float(lvl):.0%}", *[bt.get(key) for key, _, _ in _BACKTEST_COLS]]
        for lvl, bt in (var_backtest.get("holdout") or {}).items()
    ]
    backtested, full = params.get("backtested") or {}, params.get("full_sample") or {}
    names = list((full.get("params") or backtested.get("params") or {}).keys())
    par_rows = [[n, (backtested.get("params") or {}).get(n), (full.get("params") or {}).get(n)] for n in names]
    return [
        _h3("Champion gold model: selection on the validation window, VaR backtest on the hold-out"),
        _ul(
            [
                f"Fitting window: {_window_text(windows.get('fit'))}",
                f"Validation window (champion picked here): {_window_text(windows.get('validation'))}",
                f"Backtest hold-out (after the validation window, seen by no fit and not by the selection): {_window_text(windows.get('holdout'))}",
            ]
        ),
        _p(f"Selection rule: {selection.get('rule', '–')}."),
        _table(sel_cols, sel_rows),
        _h4("Backtest of the champion on the hold-out"),
        _table([("VaR level", "text"), *[(label, kind) for _, label, kind in _BACKTEST_COLS]], bt_rows),
        _p(str(var_backtest.get("method", ""))),
        _h4("Parameters (daily log returns)"),
        _p(
            f"Backtested fit: {_window_text(backtested.get('window'))}; full-sample refit: {_window_text(full.get('window'))}."
        ),
        _table(
            [("Parameter", "text"), ("Backtested fit", "num"), ("Full-sample refit (Monte Carlo)", "num")], par_rows
        ),
    ]


def champion_backtest_html(var_backtest: dict[str, Any]) -> str:
    """:func:`champion_backtest_blocks` as an HTML fragment."""
    return render_blocks(champion_backtest_blocks(var_backtest))


_MVH_STATS = (
    ("sd", "sd"),
    ("q01", "1% quantile"),
    ("q05", "5% quantile"),
    ("q95", "95% quantile"),
    ("q99", "99% quantile"),
    ("share_abs_gt_0.5pct", "share of days |premium| > 0.5%"),
    ("share_abs_gt_1pct", "share of days |premium| > 1%"),
    ("longest_run_abs_gt_1pct", "longest run beyond 1% (days)"),
)
_MVH_WINDOWS = (
    ("in_sample", "in sample (fit window)"),
    ("out_of_sample", "out of sample (test window)"),
    ("full_sample", "full sample (the stress test's process)"),
)


def _model_vs_history_blocks(summary: dict[str, Any]) -> list[Block]:
    """Per token: the premium model's verdict, the observed premium beside the simulated one on
    the real gold path, the premium band backtest and the clock noise."""
    mvh = summary.get("model_vs_history") or {}
    if not mvh:
        return []
    out = [
        _h3("Model against history: the premium"),
        _p(
            "The token model replays the real gold path of each calibration window; the premium it simulates is set "
            "beside the observed one (median and 90% range over the simulated paths), and the fitted process's "
            "one-day-ahead 1-99% band is backtested like a VaR (Kupiec). Method: docs/models/premium-validation.md."
        ),
    ]
    for symbol, m in mvh.items():
        if m.get("status") != "validated":
            out += [_h4(f"{symbol}: not validated"), _p(str(m.get("reason", "")))]
            continue
        verdict = str(m.get("verdict", ""))
        out += [
            _h4(f"{symbol}: premium model {verdict}"),
            _table(
                [("Premium model", "text"), ("Status", "status")],
                [[symbol, "pass" if verdict == "pass" else "fail"]],
                status_col=1,
            ),
            _p(
                f"Rule: {m.get('rule', '')}. Premium process in the stress test: {m.get('premium_process_source', '')} "
                f"(set {m.get('calibration_set', '')})."
            ),
            _ul(list(m.get("reasons") or [])),
        ]
        rows, bt_rows = [], []
        for key, label in _MVH_WINDOWS:
            w = m.get(key) or {}
            dist = (w.get("distribution") or {}).get("statistics") or {}
            for stat, name in _MVH_STATS:
                st = dist.get(stat)
                if st is None:
                    continue
                kind = "num" if stat.startswith("longest") else "pct"
                rows.append(
                    [
                        f"{label} {' to '.join(w.get('window', []))}",
                        name,
                        [st["observed"], kind],
                        [st["simulated_median"], kind],
                        f"{fmt_value(st['simulated_lo'], kind)} to {fmt_value(st['simulated_hi'], kind)}",
                        "pass" if st["within"] else "fail",
                    ]
                )
            bt = w.get("band_backtest") or {}
            if bt:
                bt_rows.append(
                    [
                        label,
                        bt["n_steps"],
                        bt["share_outside"],
                        bt["expected_share_outside"],
                        f"{bt['below']} / {bt['above']}",
                        bt["kupiec_p"],
                        bt["christoffersen_p"],
                    ]
                )
        out += [
            _table(
                [
                    ("Window", "text"),
                    ("Statistic", "text"),
                    ("Observed", "mixed"),
                    ("Simulated median", "mixed"),
                    ("Simulated 90% range", "text"),
                    ("Inside the range", "status"),
                ],
                rows,
                status_col=5,
            ),
            _h4("Premium band backtest"),
            _table(
                [
                    ("Window", "text"),
                    ("Days", "int"),
                    ("Outside the 1-99% band", "pct"),
                    ("Expected", "pct"),
                    ("Below / above", "text"),
                    ("Kupiec test p-value", "num"),
                    ("Christoffersen independence p-value", "num"),
                ],
                bt_rows,
            ),
        ]
        for pair, cn in (m.get("clock_noise") or {}).items():
            out.append(
                _p(
                    f"Clock noise ({pair}, {cn['n_days']} common days): the two premia correlate {fmt_value(cn['correlation'], 'ratio')}; "
                    f"the common part, the gold move between the gold close and the tokens' 24:00 UTC close, has sd "
                    f"{fmt_pct(cn['clock_noise_sd'])} ({fmt_pct(cn['clock_noise_share_of_variance_a'])} and "
                    f"{fmt_pct(cn['clock_noise_share_of_variance_b'])} of the two premia's variance); net of it the premia's sds are "
                    f"{fmt_pct(cn['premium_sd_net_a'])} and {fmt_pct(cn['premium_sd_net_b'])}. Their price ratio, on one clock, has sd "
                    f"{fmt_pct(cn['ratio_sd'])}."
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# scenario library, appendix, page
# ---------------------------------------------------------------------------------------------
def _scenario_library_blocks(manifest: dict[str, Any], figs: dict[str, tuple[str, str]]) -> list[Block]:
    rows = []
    for r in manifest.get("scenarios") or []:
        sc = r["scenario"]
        rows.append([scenario_label(sc["name"]), _KIND_WORDS.get(sc["kind"], sc["kind"]), sc.get("description", "")])
    out = [
        _p(
            "Every token runs through the same scenarios: the champion's Monte Carlo, historical replays of gold's largest falls, and instant shocks."
        ),
        _table([("Scenario", "text"), ("Kind", "text"), ("What happens to gold", "text")], rows),
    ]
    for name in ("price_history", "fan_chart"):
        if name in figs:
            out.append(_figure(name, *figs[name]))
    return out


METHOD_PAGES = (
    (
        "volatility.md",
        "gold return models (GARCH/GJR with t or filtered historical innovations), the champion's selection",
    ),
    ("evt.md", "extreme value tails"),
    ("reserve-backed-token.md", "reserve-backed token: reserve, primary market, runs, reported figures"),
    ("cdp.md", "CDP stablecoin: vaults, liquidation, bad debt"),
    ("premium.md", "secondary-market premium process"),
    ("premium-calibration.md", "premium calibration on token data"),
    ("premium-validation.md", "premium model against history"),
    ("amm.md", "AMM pools"),
    ("weekend.md", "weekend gap risk"),
    ("recommendations.md", "fee, gate and cash buffer recommendations"),
    ("token-spec.md", "token specs, risk tolerance and the verdict rule"),
)
"""Methodology pages under docs/models/ named in the report's appendix."""


def _appendix_blocks(summary: dict[str, Any]) -> list[Block]:
    d = summary["data"]
    out: list[Block] = [
        _h3("Methodology"),
        _p(
            "Gold paths come from the champion model selected on a validation window and backtested on a later hold-out; "
            "every token is simulated day by day on those paths and on the historical and shock scenarios; the verdict "
            "compares the run's figures with the issuer's risk tolerance. Method pages (docs/models/):"
        ),
        _ul([f"{page}: {what}" for page, what in METHOD_PAGES]),
        _h3("Data provenance"),
    ]
    rows = [
        [
            "gold (used by every scenario)",
            d.get("data_source"),
            d.get("data_first_date"),
            d.get("data_last_date"),
            d.get("n_returns"),
            d.get("data_sha256"),
        ]
    ]
    hd = (summary.get("liquidity_stress") or {}).get("historical_data") or {}
    for sym, e in (hd.get("token_premia") or {}).items():
        data = e.get("data") or {}
        for role, f in (("token prices", data.get("token")), ("gold aligned", (data.get("gold") or {}).get("aligned"))):
            if isinstance(f, dict) and f:
                rows.append(
                    [
                        f"{sym}: {role} ({f.get('file')})",
                        f.get("source_tag"),
                        f.get("first_date"),
                        f.get("last_date"),
                        f.get("n"),
                        f.get("sha256"),
                    ]
                )
    out.append(
        _table(
            [
                ("Series", "text"),
                ("Source", "text"),
                ("From", "date"),
                ("To", "date"),
                ("Observations", "int"),
                ("sha256", "code"),
            ],
            rows,
        )
    )
    prem = summary.get("observed_token_premia") or {}
    prem_rows = [
        [
            k,
            v.get("n_days"),
            v.get("first_date"),
            v.get("last_date"),
            v.get("premium_median_frac"),
            v.get("premium_q01_frac"),
            v.get("premium_q99_frac"),
            v.get("p_abs_deviation_gt_1pct"),
        ]
        for k, v in prem.items()
        if isinstance(v, dict)
    ]
    if prem_rows:
        out += [
            _h4("Observed token premium to gold (curated data)"),
            _table(
                [
                    ("Token", "text"),
                    ("Days", "int"),
                    ("From", "date"),
                    ("To", "date"),
                    ("Median premium", "pct"),
                    ("1% quantile", "pct"),
                    ("99% quantile", "pct"),
                    ("Share of days |premium| > 1%", "pct"),
                ],
                prem_rows,
            ),
        ]
    return out


def stale_data(data_last_date: str, run_date: str, limit_days: int) -> dict[str, Any] | None:
    """The stale-data warning of a run: ``{"days", "limit", "run_date"}`` when the gold data's
    last date is more than ``limit_days`` calendar days before the run date (ISO dates or
    timestamps), else None. Raises ValueError for a date that is not ISO."""
    last = date.fromisoformat(str(data_last_date)[:10])
    run = date.fromisoformat(str(run_date)[:10])
    days = (run - last).days
    return {"days": days, "limit": limit_days, "run_date": run.isoformat()} if days > limit_days else None


def render_html(
    summary: dict[str, Any],
    manifest: dict[str, Any],
    figs: list[tuple[str, str, str]],
    stale_after_days: int = 7,
) -> str:
    """The full self-contained HTML report (no script, no external resource).

    ``figs`` are :func:`goldstress.figures.figures` (name, title, SVG); ``stale_after_days``: the
    page warns when the gold data ends more than this many days before the run date
    (``generated_at``). A token without ``verdict`` reads "no verdict"."""
    by_name = {name: (title, svg) for name, title, svg in figs}
    settings = manifest["settings"]
    levels = [f"{round(float(x) * 100):d}" for x in settings.get("var_levels", (0.95, 0.99))]
    horizons = settings["horizons_days"]
    verdicts = []
    sections: list[dict[str, Any]] = []
    for symbol, t in summary["tokens"].items():
        v = t.get("verdict") or {}
        verdicts.append(
            {
                "symbol": symbol,
                "name": t["name"],
                "verdict": v.get("verdict"),
                "reason": v.get("reason"),
                "checks": v.get("checks") or [],
                "worst": v.get("worst_scenario"),
                "worst_short": scenario_label(str((v.get("worst_scenario") or {}).get("scenario", ""))),
                "remedy": v.get("remedy"),
            }
        )
        sections.append(
            {
                "id": f"token-{symbol}",
                "title": f"{symbol}: {t['name']}",
                "blocks": _token_blocks(symbol, t, horizons, levels, summary["scenario_table"]),
            }
        )
    dist = [_figure(n, *by_name[n]) for n in ("loss_distributions", "backing_ratio") if n in by_name]
    if dist:
        sections.append(
            {"id": "distributions", "title": "Loss and backing distributions across tokens", "blocks": dist}
        )
    sections.append(
        {"id": "scenarios", "title": "Scenario library", "blocks": _scenario_library_blocks(manifest, by_name)}
    )
    ls = _liquidity_stress_blocks(summary)
    if ls:
        if "reverse_stress_boundary" in by_name:
            ls.append(_figure("reverse_stress_boundary", *by_name["reverse_stress_boundary"]))
        sections.append({"id": "liquidity-stress", "title": "Liquidity stress test", "blocks": ls})
    wk = _weekend_blocks(summary)
    if wk:
        sections.append({"id": "weekend", "title": WEEKEND_TITLE, "blocks": wk})
    sections.append(
        {
            "id": "validation",
            "title": "Model validation",
            "blocks": champion_backtest_blocks(summary["var_backtest"]) + _model_vs_history_blocks(summary),
        }
    )
    sections.append(
        {"id": "appendix", "title": "Appendix: methodology and data provenance", "blocks": _appendix_blocks(summary)}
    )
    d = summary["data"]
    mc = summary["monte_carlo"]
    ch = summary["champion"]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            run_id=summary["run_id"],
            generated_at=summary["generated_at"],
            data={"first": d["data_first_date"], "last": d["data_last_date"]},
            start_price=summary["start_gold_usd_per_oz"],
            stale=stale_data(d["data_last_date"], summary["generated_at"], stale_after_days),
            verdicts=verdicts,
            sections=sections,
            mc={"paths": mc["mc_paths"], "horizon": mc["mc_horizon_days"]},
            champion=f"{ch['candidate']}, {ch['registered_model']} version {ch['version']}, {ch['innovations']} innovations",
        )
    )
