"""The report's figures: small inline SVGs drawn by matplotlib (no pyplot, no script) from
pre-aggregated data: monthly gold closes, the Monte Carlo fan quantiles, histogram bins of the
tokens' losses and backing ratios, and the reverse stress boundary points.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

LOSS_COLUMNS = (
    ("holder_loss_frac_30d", "holder value per token"),
    ("reserve_per_token_loss_frac_30d", "reserve per token outstanding"),
)
"""Per-path columns of the loss histograms, with their labels."""
BACKING_COLUMNS = (("backing_ratio_end", "at the horizon's end"), ("backing_ratio_min", "lowest over the path"))
"""Per-path columns of the backing-ratio histograms, with their labels."""
FIGURE_COLUMNS = ("token", *(c for c, _ in LOSS_COLUMNS), *(c for c, _ in BACKING_COLUMNS))
"""The Monte Carlo table's columns the figures read (so a large table is read in part)."""

GOLD = "#b8860b"
BLUE = "#4169e1"
RED = "#b42318"


def _svg(fig: Any) -> str:
    """The figure as an SVG element (text kept as text, fixed ids; no XML prolog and no RDF
    metadata block)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "goldstress", "font.size": 9}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96)


def price_history_svg(gold: pd.DataFrame, windows: list[tuple[str, str, str]]) -> str:
    """Gold's month-end close (USD per troy ounce, log scale) with the historical replay
    ``windows`` (name, start, end ISO dates) shaded. ``gold``: columns ``date``, ``usd_per_oz``."""
    from matplotlib.ticker import FuncFormatter

    s = gold.set_index(pd.to_datetime(gold["date"]))["usd_per_oz"].astype(float).resample("ME").last().dropna()
    fig = _figure(9, 3.2)
    ax = fig.add_subplot()
    ax.plot(s.index, s.to_numpy(), color=GOLD, lw=1)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel("USD per troy ounce (log scale)")
    for name, start, end in windows:
        ax.axvspan(pd.Timestamp(start), pd.Timestamp(end), color=RED, alpha=0.15, lw=0)
        ax.text(pd.Timestamp(start), ax.get_ylim()[1], name.replace("_", " "), fontsize=6, rotation=90, va="top")
    ax.grid(alpha=0.3)
    return _svg(fig)


def fan_chart_svg(fan: dict[str, list[float]]) -> str:
    """Fan chart of simulated gold prices: bands between the 1-99%, 5-95% and 25-75% quantiles
    and the median, by trading day (``fan``: the manifest's ``fan_quantiles``, USD per ounce)."""
    q = {k: np.asarray(v, dtype=float) for k, v in fan.items()}
    days = np.arange(len(q["q0.5"]))
    fig = _figure(9, 3.2)
    ax = fig.add_subplot()
    for lo, hi, alpha in (("q0.01", "q0.99", 0.15), ("q0.05", "q0.95", 0.25), ("q0.25", "q0.75", 0.4)):
        ax.fill_between(
            days,
            q[lo],
            q[hi],
            color=GOLD,
            alpha=alpha,
            lw=0,
            label=f"{float(lo[1:]):.0%} to {float(hi[1:]):.0%} quantile",
        )
    ax.plot(days, q["q0.5"], color="black", lw=1, label="median")
    ax.set_xlabel("trading days ahead")
    ax.set_ylabel("USD per troy ounce")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return _svg(fig)


def histogram_bins(
    x: np.ndarray, lo_q: float = 0.001, hi_q: float = 0.995, bins: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """Shares of ``x`` (finite values) in ``bins`` equal bins between its ``lo_q`` and ``hi_q``
    quantiles, values outside clipped into the end bins: (shares summing to 1, bin edges)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.zeros(bins), np.linspace(0.0, 1.0, bins + 1)
    lo, hi = np.quantile(x, [lo_q, hi_q])
    if not hi > lo:
        lo, hi = lo - 0.01, hi + 0.01
    counts, edges = np.histogram(np.clip(x, lo, hi), bins=bins, range=(lo, hi))
    return counts / x.size, edges


Histograms = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
"""``{token: {column: (shares, edges)}}``: :func:`histogram_bins` of a token's per-path column."""


def monte_carlo_histograms(tables: Mapping[str, Any]) -> Histograms:
    """:func:`histogram_bins` of each figure column (:data:`FIGURE_COLUMNS` but the token) of each
    token's Monte Carlo rows. ``tables`` maps a token to its rows: anything indexable by column
    name that gives a 1-D array-like of floats, e.g. a DataFrame or the column-at-a-time views of
    :func:`goldstress.io.pathtable.token_views`, so only one column of one token is read at a time.
    A column's non-finite values (an infinite backing ratio when no supply is left) are left out
    of its shares. Raises KeyError for a missing column."""
    return {
        str(token): {col: histogram_bins(np.asarray(rows[col], dtype=float)) for col in FIGURE_COLUMNS[1:]}
        for token, rows in tables.items()
    }


def distributions_svg(
    hists: Histograms, columns: tuple[tuple[str, str], ...], xlabel: str, pct: bool, mark_one: bool
) -> str:
    """One small histogram per token of ``hists`` (:func:`monte_carlo_histograms`) for each of
    ``columns`` (column, legend label), shares of paths on the y axis; ``mark_one`` draws a
    dashed line at 1 (backing ratio). Raises KeyError for a column missing from ``hists``."""
    from matplotlib.ticker import PercentFormatter

    tokens = list(hists)
    fig = _figure(min(2.2 * len(tokens), 11), 2.4)
    axes = fig.subplots(1, len(tokens), squeeze=False)[0]
    for ax, token in zip(axes, tokens, strict=True):
        for (col, label), colour in zip(columns, (GOLD, BLUE), strict=False):
            shares, edges = hists[token][col]
            ax.stairs(shares, edges, fill=True, alpha=0.5, color=colour, label=label)
        if mark_one and edges[0] <= 1.0 <= edges[-1]:
            ax.axvline(1.0, color=RED, ls="--", lw=1)
        ax.set_title(token, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.tick_params(labelsize=6)
        if pct:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[0].set_ylabel("share of paths", fontsize=7)
    axes[0].legend(fontsize=6)
    return _svg(fig)


def reverse_stress_boundary_series(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The reverse stress boundary of every reserve-backed token as points in the (redemption
    share, gold fall) plane (Delegated Regulation (EU) 2025/1264 Art. 5(2)): per token ``x``
    (shares), ``y`` (smallest failing fall) and ``marker`` per point: "square" for a share that
    fails without a fall (drawn at 0), "open" for one that does not fail up to the largest fall
    searched (drawn at that fall), else "filled". Tokens without a boundary are left out."""
    out = []
    for symbol, t in summary["tokens"].items():
        b = t.get("reverse_stress_boundary")
        if not b:
            continue
        xs, ys, marks = [], [], []
        for r in b["rows"]:
            xs.append(float(r["redemption_share"]))
            if r["fails_without_drop"]:
                ys.append(0.0)
                marks.append("square")
            elif r["gold_drop_frac"] is None:
                ys.append(float(r.get("max_drop_frac", 0.99)))
                marks.append("open")
            else:
                ys.append(float(r["gold_drop_frac"]))
                marks.append("filled")
        out.append({"symbol": symbol, "horizon_days": b["horizon_days"], "x": xs, "y": ys, "marker": marks})
    return out


def reverse_stress_boundary_svg(series: list[dict[str, Any]]) -> str:
    """The boundary lines of :func:`reverse_stress_boundary_series`: one line per token; the
    token fails on and above its line."""
    from matplotlib.ticker import PercentFormatter

    fig = _figure(6, 3.2)
    ax = fig.add_subplot()
    for s in series:
        (line,) = ax.plot(s["x"], s["y"], lw=1, label=s["symbol"])
        for x, y, m in zip(s["x"], s["y"], s["marker"], strict=True):
            face = "none" if m == "open" else line.get_color()
            ax.plot([x], [y], marker="s" if m == "square" else "o", ms=5, mfc=face, mec=line.get_color())
    ax.set_xlabel("share of the supply redeemed over the horizon")
    ax.set_ylabel("gold fall that makes it fail")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _svg(fig)


def figures(
    summary: dict[str, Any], manifest: dict[str, Any], gold: pd.DataFrame | None, hists: Histograms | None
) -> list[tuple[str, str, str]]:
    """The report's figures as (name, title, SVG): gold's price history with the replay windows,
    the fan chart of simulated gold prices, the tokens' 30-day loss and backing-ratio
    histograms (Monte Carlo) and the reverse stress boundary; each left out when its data is
    missing (``gold`` None or empty; ``hists``, the Monte Carlo table's
    :func:`monte_carlo_histograms`, None or empty)."""
    out: list[tuple[str, str, str]] = []
    if gold is not None and not gold.empty:
        windows = [
            (r["scenario"]["name"].removeprefix("hist_"), r["scenario"]["start"], r["scenario"]["end"])
            for r in manifest["scenarios"]
            if r["scenario"]["kind"] == "historical"
        ]
        out.append(
            (
                "price_history",
                "Gold price (LBMA PM, USD per troy ounce, month-end) with the historical replay windows",
                price_history_svg(gold, windows),
            )
        )
    mc_res = next((r for r in manifest["scenarios"] if r["scenario"]["kind"] == "monte_carlo"), None)
    if mc_res is not None and mc_res.get("fan_quantiles"):
        out.append(
            (
                "fan_chart",
                f"Simulated gold price paths: {mc_res['scenario']['description']} (quantiles over the first "
                f"{manifest['settings'].get('fan_chart_paths', 'N')} paths)",
                fan_chart_svg(mc_res["fan_quantiles"]),
            )
        )
    if hists:
        out.append(
            (
                "loss_distributions",
                "Loss over 30 days, share of the day-0 value (Monte Carlo; losses positive; axis from the 0.1% to the 99.5% quantile)",
                distributions_svg(
                    hists,
                    LOSS_COLUMNS,
                    "loss",
                    pct=True,
                    mark_one=False,
                ),
            )
        )
        out.append(
            (
                "backing_ratio",
                "Backing ratio (Monte Carlo; paths with supply left; dashed line: fully backed)",
                distributions_svg(
                    hists,
                    BACKING_COLUMNS,
                    "backing ratio",
                    pct=False,
                    mark_one=True,
                ),
            )
        )
    series = reverse_stress_boundary_series(summary)
    if series:
        out.append(
            (
                "reverse_stress_boundary",
                f"Reverse stress boundary (MiCA RTS 2025/1264 Art. 5(2)): gold fall over {series[0]['horizon_days']} days "
                "that makes the token fail, by share of supply redeemed (open marker: no failure up to the largest fall searched)",
                reverse_stress_boundary_svg(series),
            )
        )
    return out
