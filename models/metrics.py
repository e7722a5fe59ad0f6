"""Per-path summaries of a token outcome and the risk figures computed over them (VaR/ES,
backing-ratio quantiles, breach probabilities, peg and liquidity figures), the scenario ranking,
the reverse stress summaries and the liquidity stress section of the run summary.

Units are in every key name: ``_frac`` (fraction of the day-0 value; losses positive), ``_usd``,
``_usd_per_token``, ``_days``; confidence levels appear as ``95``/``99`` and horizons as
``1d``/``10d``/``30d``. VaR and ES are empirical (historical-simulation) estimates over the
simulated paths: ES is the mean loss beyond VaR (Acerbi & Tasche 2002).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from models.peg import (
    days_to_recovery,
    depeg_depth,
    longest_depeg_days,
    share_of_days_beyond,
)
from models.risk import closed_form_break_move, failure_boundary, reverse_stress, var_es
from models.token.outcome import BREACH_TOL, ReserveBackedOutcome, TokenOutcome
from models.token.protocol import build_token_model
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import ReserveBackedTokenSpec, parse_token_spec, with_redemption_share
from models.units import TROY_OUNCE_G

BACKING_QUANTILES = (0.001, 0.01, 0.05, 0.5, 0.95)


BOUNDARY_SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
"""Redemption shares (of day-0 supply, requested over the horizon) of the reverse stress boundary."""


BOUNDARY_HORIZON_DAYS = 30
"""Horizon of the reverse stress boundary, model days (gold fall and redemptions)."""


BOUNDARY_TOL = 1e-3
"""Precision of the boundary's gold fall, fraction."""


PREMIUM_END_QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)
"""Quantiles of the premium/discount to NAV at the horizon end reported per reserve-backed token."""


def _lvl(level: float) -> str:
    return f"{round(level * 100):d}"


def _quantile(x: pd.Series, q: float) -> float:
    """Empirical quantile without interpolation (``inverted_cdf``), so a backing ratio of +inf
    (no supply left: nothing owed) stays +inf instead of becoming NaN; NaNs are ignored."""
    v = x.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return float(np.quantile(v, q, method="inverted_cdf")) if v.size else float("nan")


VALUE_FIGURES = (("holder_value", "holder_loss_frac"), ("reserve_per_token", "reserve_per_token_loss_frac"))
"""The per-token values whose Monte Carlo losses get VaR/ES: ``(key prefix, loss column prefix of
:func:`summarise_paths`)``. Holder value per token, and reserve value per token outstanding (a
redemption is not a loss of the reserve per token; the whole reserve, which shrinks with every
redemption, gets no VaR)."""

MAX_DRAWDOWN_COLUMNS = {
    "holder_value": "holder_max_drawdown_frac",
    "reserve_per_token": "reserve_per_token_max_drawdown_frac",
}
"""Peak-to-trough column of :func:`summarise_paths` per value of :data:`VALUE_FIGURES`."""


def _var_es_keys(out: dict[str, Any], losses: np.ndarray, level: float, stem: str, v0: float | None, unit: str) -> None:
    """Write ``<stem>`` VaR and ES at ``level`` (``stem`` has a ``{}`` for var/es) as fractions
    and, with ``v0``, in ``unit`` into ``out``; nothing when every loss is NaN."""
    if np.isnan(losses).all():
        return
    var, es = var_es(losses[~np.isnan(losses)], level)
    out[stem.format("var") + "_frac"] = float(var)
    out[stem.format("es") + "_frac"] = float(es)
    if v0 is not None:
        out[stem.format("var") + f"_{unit}"] = float(var * v0)
        out[stem.format("es") + f"_{unit}"] = float(es * v0)


def distribution_metrics(g: pd.DataFrame, levels: tuple[float, ...], horizons: tuple[int, ...]) -> dict[str, float]:
    """Risk figures over a Monte Carlo table with one row per path (columns of
    :func:`summarise_paths`).

    Keys (``<w>`` in ``holder_value`` / ``reserve_per_token``, ``<l>`` a level as ``95``/``99``):
    ``<w>_{var,es}_<l>_<h>d_frac`` and ``_usd_per_token`` (loss of the value per token at each
    horizon), ``<w>_{var,es}_<l>_end_frac`` (at the window's end), ``<w>_max_drawdown_{var,es}_<l>_frac``
    (peak-to-trough over the window); backing-ratio quantiles at each horizon, at the end and
    of the path minimum; breach and liquidation probabilities, bad debt; the redemption outflow
    (``redeemed_frac_of_day0_supply_<h>d_mean`` / ``_q99`` and ``_end``,
    ``redemption_outflow_usd_end_mean``, ``redemption_outflow_frac_of_day0_liabilities_end_mean`` /
    ``_q99``) and the mean fees (``issuer_fee_revenue_usd_end_mean``,
    ``reserve_fee_income_usd_end_mean``) when the token has them (reserve-backed); the
    peg/liquidity figures of :func:`market_metrics`. Quantiles of reserve figures skip paths
    with no token outstanding (NaN)."""
    out: dict[str, float] = {"n_paths": int(len(g))}
    hv0 = float(g["holder_value_usd_per_token_d0"].iloc[0])
    rv0 = float(g["reserve_value_usd_d0"].iloc[0])
    v0s = {"holder_value": hv0, "reserve_per_token": float(g["reserve_usd_per_token_d0"].iloc[0])}
    for h in horizons:
        for level in levels:
            for who, loss_col in VALUE_FIGURES:
                _var_es_keys(
                    out,
                    g[f"{loss_col}_{h}d"].to_numpy(),
                    level,
                    f"{who}_{{}}_{_lvl(level)}_{h}d",
                    v0s[who],
                    "usd_per_token",
                )
        col = f"backing_ratio_{h}d"
        if not g[col].isna().all():
            for q in BACKING_QUANTILES:
                out[f"backing_ratio_{h}d_q{q * 100:g}"] = _quantile(g[col], q)
    for level in levels:
        for who, loss_col in VALUE_FIGURES:
            _var_es_keys(
                out, g[f"{loss_col}_end"].to_numpy(), level, f"{who}_{{}}_{_lvl(level)}_end", v0s[who], "usd_per_token"
            )
            _var_es_keys(
                out, g[MAX_DRAWDOWN_COLUMNS[who]].to_numpy(), level, f"{who}_max_drawdown_{{}}_{_lvl(level)}", None, ""
            )
    for q in BACKING_QUANTILES:
        out[f"backing_ratio_end_q{q * 100:g}"] = _quantile(g["backing_ratio_end"], q)
        out[f"backing_ratio_min_q{q * 100:g}"] = _quantile(g["backing_ratio_min"], q)
    out["p_no_supply_outstanding_end"] = float((g["supply_tokens_end"] <= 0).mean())
    out["p_backing_below_1"] = float(g["backing_below_1"].mean())
    out["p_liquidation"] = float(g["liquidated"].mean())
    out["expected_bad_debt_usd"] = float(g["bad_debt_usd"].mean())
    out["bad_debt_usd_q99"] = float(g["bad_debt_usd"].quantile(0.99))
    out["unbacked_frac_of_day0_liabilities_mean"] = float(g["unbacked_frac_of_day0_liabilities"].mean())
    out["unbacked_frac_of_day0_liabilities_q99"] = _quantile(g["unbacked_frac_of_day0_liabilities"], 0.99)
    out["holder_value_usd_per_token_d0"] = hv0
    out["reserve_value_usd_d0"] = rv0
    out["reserve_usd_per_token_d0"] = v0s["reserve_per_token"]
    if "horizon_days" in g:
        out["horizon_days"] = int(g["horizon_days"].iloc[0])
    if "redeemed_frac_of_day0_supply_end" in g and g["redeemed_frac_of_day0_supply_end"].notna().any():
        out.update(flow_metrics(g, horizons))
    if "depeg_depth_frac" in g and g["depeg_depth_frac"].notna().any():
        out.update(market_metrics(g))
    return out


def flow_metrics(g: pd.DataFrame, horizons: tuple[int, ...]) -> dict[str, float]:
    """Redemption outflow and fees over the paths of a reserve-backed token (columns of
    :func:`flow_columns`): mean and 99% quantile of the cumulative share of the day-0 supply
    redeemed at each horizon and at the end, mean USD paid out of the reserve for redemptions at
    the end and its share of the day-0 liabilities (mean, 99% quantile), mean fees paid to the
    issuer and credited to the reserve at the end (USD). Raises KeyError for a table without the
    columns of :func:`flow_column_names` (with the same ``horizons``)."""
    out: dict[str, float] = {}
    for where in [f"{h}d" for h in horizons] + ["end"]:
        col = g[f"redeemed_frac_of_day0_supply_{where}"]
        if col.isna().all():
            continue
        out[f"redeemed_frac_of_day0_supply_{where}_mean"] = float(col.mean())
        out[f"redeemed_frac_of_day0_supply_{where}_q99"] = _quantile(col, 0.99)
    out["redemption_outflow_usd_end_mean"] = float(g["redemption_outflow_usd_end"].mean())
    frac = g["redemption_outflow_frac_of_day0_liabilities_end"]
    out["redemption_outflow_frac_of_day0_liabilities_end_mean"] = float(frac.mean())
    out["redemption_outflow_frac_of_day0_liabilities_end_q99"] = _quantile(frac, 0.99)
    out["issuer_fee_revenue_usd_end_mean"] = float(g["issuer_fee_revenue_usd_end"].mean())
    out["reserve_fee_income_usd_end_mean"] = float(g["reserve_fee_income_usd_end"].mean())
    return out


def market_metrics(g: pd.DataFrame) -> dict[str, float]:
    """Peg and liquidity figures over the paths of a reserve-backed token (columns of
    ``models.metrics.market_columns``): probabilities that the premium/discount to NAV exceeds 1%
    and 5% at some point, the depth (99% quantile and worst) and duration of the worst depeg,
    time to recovery, the distribution of the premium at the horizon end (quantiles
    :data:`PREMIUM_END_QUANTILES`) and the mean share of days beyond 1% and 5%, liquidity coverage over 1/5/30 days (1% quantile of each path's minimum:
    the stressed case) and P(coverage < 100%), the redemption queue and the days to meet a wave."""
    depth = g["depeg_depth_frac"]
    out: dict[str, float] = {
        "p_abs_premium_gt_1pct": float((depth > 0.01).mean()),
        "p_abs_premium_gt_5pct": float((depth > 0.05).mean()),
        "depeg_depth_q99_frac": _quantile(depth, 0.99),
        "depeg_depth_worst_frac": float(depth.max()),
        "premium_min_q01_frac": _quantile(g["premium_min_frac"], 0.01),
        "premium_max_q99_frac": _quantile(g["premium_max_frac"], 0.99),
        **{f"premium_end_q{q:g}_frac": _quantile(g["premium_end_frac"], q) for q in PREMIUM_END_QUANTILES},
        **{
            f"mean_share_days_abs_premium_gt_{c.rsplit('_', 1)[-1]}": float(g[c].mean())
            for c in g.columns
            if c.startswith("share_days_abs_premium_gt_")
        },
        "depeg_longest_days_beyond_1pct_q99": _quantile(g["depeg_longest_days_beyond_1pct"], 0.99),
        "depeg_recovery_days_1pct_median": _quantile(g["depeg_recovery_days_1pct"], 0.5),
        "p_depeg_unrecovered_at_horizon": float(g["depeg_recovery_days_1pct"].isna().mean()),
        "redemption_queue_max_tokens_q99": _quantile(g["redemption_queue_max_tokens"], 0.99),
        "redemption_wait_max_days_q99": _quantile(g["redemption_wait_max_days"], 0.99),
        "redemption_queue_end_tokens_mean": float(g["redemption_queue_end_tokens"].mean()),
        "fire_sale_loss_usd_mean": float(g["fire_sale_loss_usd"].mean()),
    }
    for col in (c for c in g.columns if c.startswith("liquidity_coverage_min_")):
        h = col.removeprefix("liquidity_coverage_min_")
        out[f"liquidity_coverage_{h}_q01"] = _quantile(g[col], 0.01)
        out[f"p_liquidity_coverage_below_1_{h}"] = float((g[col] < 1.0).mean())
    return out


def path_metrics(row: pd.Series, horizons: tuple[int, ...]) -> dict[str, Any]:
    """Outcome of a single-path scenario (historical replay or instantaneous shock), from its row
    of :func:`summarise_paths`: at each horizon the holder and reserve-per-token losses, reserve
    per token, backing ratio, gold log return, and for a reserve-backed token the share of the
    day-0 supply redeemed and the USD paid out (None beyond the window); over the whole window
    (``horizon_days`` days) the end-of-window losses, the peak-to-trough falls
    (``holder_max_drawdown_frac``, ``reserve_per_token_max_drawdown_frac``, ``gold_max_drawdown``),
    the minimum and end backing ratio, bad debt, the redemption outflow and fees at the end, and
    the peg/liquidity figures."""
    out: dict[str, Any] = {"n_paths": 1, "horizon_days": int(row["horizon_days"])}
    reserve_backed = "redeemed_frac_of_day0_supply_end" in row and pd.notna(row["redeemed_frac_of_day0_supply_end"])
    per_h = [
        "holder_loss_frac",
        "reserve_per_token_loss_frac",
        "reserve_usd_per_token",
        "backing_ratio",
        "gold_log_return",
    ]
    if reserve_backed:
        per_h += ["redeemed_frac_of_day0_supply", "redemption_outflow_usd"]
    for h in horizons:
        for key in per_h:
            v = row[f"{key}_{h}d"]
            out[f"{key}_{h}d"] = None if pd.isna(v) else float(v)
    whole = [
        "gold_log_return_end",
        "gold_max_drawdown",
        "holder_loss_frac_end",
        "holder_max_drawdown_frac",
        "reserve_usd_per_token_end",
        "reserve_per_token_loss_frac_end",
        "reserve_per_token_max_drawdown_frac",
        "backing_ratio_end",
        "backing_ratio_min",
        "bad_debt_usd",
        "unbacked_frac_of_day0_liabilities",
    ]
    if reserve_backed:
        whole += [c for c in flow_column_names(()) if c not in out]
    for key in whole:
        out[key] = float(row[key])
    out["backing_below_1"] = bool(row["backing_below_1"])
    out["liquidated"] = bool(row["liquidated"])
    out["holder_value_usd_per_token_d0"] = float(row["holder_value_usd_per_token_d0"])
    out["reserve_value_usd_d0"] = float(row["reserve_value_usd_d0"])
    out["reserve_usd_per_token_d0"] = float(row["reserve_usd_per_token_d0"])
    if "depeg_depth_frac" in row and pd.notna(row["depeg_depth_frac"]):
        for key in (
            k
            for k in row.index
            if k.startswith(
                ("premium_", "depeg_", "share_days_", "liquidity_coverage_min_", "redemption_", "fire_sale_")
            )
        ):
            v = row[key]
            out[key] = None if pd.isna(v) else float(v)
    return out


WORST_SCENARIO_FIGURE = "holder_max_drawdown_frac"
"""The figure that ranks the single-path scenarios (:func:`worst_scenario`): the peak-to-trough
fall of holder value per token over each scenario's whole window."""


def _finite(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return x if math.isfinite(x) else float("nan")


def worst_scenario(scenarios: dict[str, dict[str, Any]], levels: tuple[float, ...]) -> dict[str, Any]:
    """The worst scenario of one token, like compared with like.

    The single-path scenarios (historical replays and instant shocks; ``kind`` not
    ``"monte_carlo"``) are ranked by :data:`WORST_SCENARIO_FIGURE`, the peak-to-trough fall of
    holder value per token over each one's whole window (a replay runs over its gold episode, a
    shock over its flat window; the windows' lengths are reported beside the figure). The Monte
    Carlo is not ranked with them (a tail statistic over many paths is not one realised path): its
    tail is reported apart, the expected shortfall at the highest of ``levels`` of the same
    peak-to-trough fall over the Monte Carlo horizon.

    Parameters: ``scenarios`` maps a scenario name to its metrics (:func:`path_metrics` or
    :func:`distribution_metrics` plus ``kind``); ``levels`` the VaR/ES levels of the run.
    Returns ``{"by", "description", "scenario", "value", "window_days", "ranking",
    "monte_carlo_tail"}``: ``scenario`` None when there is no single-path scenario (``value`` NaN),
    ``ranking`` every single-path scenario, worst first (NaN last), ``monte_carlo_tail`` None
    without a Monte Carlo scenario, else ``{"scenario", "figure", "statistic", "horizon_days",
    "value"}``. Raises KeyError for a scenario without ``kind``.
    """
    single = [(name, m) for name, m in scenarios.items() if m["kind"] != "monte_carlo"]
    rows = [
        {
            "scenario": name,
            "kind": m["kind"],
            "value": _finite(m.get(WORST_SCENARIO_FIGURE)),
            "window_days": m.get("horizon_days"),
        }
        for name, m in single
    ]
    rows.sort(key=lambda r: (math.isnan(r["value"]), -r["value"] if not math.isnan(r["value"]) else 0.0))
    top = rows[0] if rows else None
    mc_name = next((name for name, m in scenarios.items() if m["kind"] == "monte_carlo"), None)
    tail = None
    if mc_name is not None:
        level = max(levels)
        key = f"holder_value_max_drawdown_es_{_lvl(level)}_frac"
        tail = {
            "scenario": mc_name,
            "figure": key,
            "statistic": f"{level:.0%} expected shortfall across paths of the peak-to-trough fall of holder value per token",
            "horizon_days": scenarios[mc_name].get("horizon_days"),
            "value": _finite(scenarios[mc_name].get(key)),
        }
    return {
        "by": WORST_SCENARIO_FIGURE,
        "description": "single-path scenarios (historical replays and instant shocks) ranked by the peak-to-trough "
        "fall of holder value per token over each one's whole window; the Monte Carlo tail is reported apart",
        "scenario": top["scenario"] if top else None,
        "value": top["value"] if top else float("nan"),
        "window_days": top["window_days"] if top else None,
        "ranking": rows,
        "monte_carlo_tail": tail,
    }


SCENARIO_TABLE_FIGURES = (
    "holder_loss_frac_end",
    "holder_max_drawdown_frac",
    "reserve_per_token_loss_frac_end",
    "reserve_per_token_max_drawdown_frac",
    "backing_ratio_min",
)
"""Whole-window figures of the run's scenario table (:func:`scenario_table_row`)."""


def scenario_table_row(metrics: dict[str, Any], levels: tuple[float, ...]) -> dict[str, Any]:
    """One scenario's row of the run's scenario table: ``kind``, ``window_days`` and the
    whole-window figures of :data:`SCENARIO_TABLE_FIGURES` (losses at the window's end and
    peak-to-trough falls of holder value and of reserve value per token, fractions; lowest
    backing ratio). A single-path scenario gives its realised figures; the Monte Carlo gives, for
    each loss, its expected shortfall at the highest of ``levels`` across paths and, for the
    backing, the 0.1% quantile of the path minimum. Values are None when absent (a token without
    them). ``metrics`` is :func:`path_metrics` or :func:`distribution_metrics` plus ``kind``;
    ``levels`` the run's VaR/ES levels (fractions). Raises KeyError without ``kind``, ValueError
    for empty ``levels``."""
    row: dict[str, Any] = {"kind": metrics["kind"], "window_days": metrics.get("horizon_days")}
    if metrics["kind"] == "monte_carlo":
        lv = _lvl(max(levels))
        keys = {
            "holder_loss_frac_end": f"holder_value_es_{lv}_end_frac",
            "holder_max_drawdown_frac": f"holder_value_max_drawdown_es_{lv}_frac",
            "reserve_per_token_loss_frac_end": f"reserve_per_token_es_{lv}_end_frac",
            "reserve_per_token_max_drawdown_frac": f"reserve_per_token_max_drawdown_es_{lv}_frac",
            "backing_ratio_min": "backing_ratio_min_q0.1",
        }
    else:
        keys = {k: k for k in SCENARIO_TABLE_FIGURES}
    row.update({k: metrics.get(src) for k, src in keys.items()})
    return row


MOVE_AGREEMENT_TOL = 1e-3
"""Largest difference (fraction of the gold price) between a closed-form breaking move and the
model's searched one for the two to agree (the search is precise to 1e-4)."""


def first_breach_day(outcome: TokenOutcome) -> np.ndarray:
    """First model day on which each path is broken (backing ratio below ``1 - BREACH_TOL`` or a
    liquidation), ``(n_paths,)`` float; NaN for a path never broken in its window. ``outcome``
    arrays are ``(n_paths, horizon_days + 1)``; raises nothing for a well-formed outcome."""
    broken = (outcome.backing_ratio < 1.0 - BREACH_TOL) | outcome.liquidated
    day = np.argmax(broken, axis=1).astype(float)
    day[~broken.any(axis=1)] = np.nan
    return day


def closed_form_agrees(cf: dict[str, Any], searches: list[dict[str, Any]], model_day: int | None) -> bool:
    """Whether a closed-form statement (:func:`models.risk.closed_form_break_move`) is what the
    model's search found (rows of :func:`reverse_stress_summary`'s ``searches``).

    Broken with no move (``move_frac == 0``): every search breaks without a move and the model,
    run at a flat price, breaks no later than the closed form's day (when it gives one). No move
    breaks it (``None``): no search finds a breaking move. A move ``m`` in ``direction``: no
    search breaks without a move; in that direction every horizon finds ``m`` within
    :data:`MOVE_AGREEMENT_TOL` (or nothing, when ``|m|`` is beyond the searched range); the other
    direction finds nothing. Raises KeyError for rows without the keys of
    :func:`reverse_stress_summary`'s ``searches``."""
    move = cf.get("move_frac")
    if move == 0.0:
        day = cf.get("breaks_without_move_day")
        late = day is not None and (model_day is None or model_day > day)
        return all(r["breaks_without_move"] for r in searches) and not late
    if move is None:
        return all(r["move_frac"] is None for r in searches)
    if any(r["breaks_without_move"] for r in searches):
        return False
    for r in searches:
        if r["direction"] != cf["direction"]:
            if r["move_frac"] is not None:
                return False
        elif abs(move) > abs(r["max_move_searched_frac"]):
            if r["move_frac"] is not None:
                return False
        elif r["move_frac"] is None or abs(r["move_frac"] - move) > MOVE_AGREEMENT_TOL:
            return False
    return True


def _search_statement(searches: list[dict[str, Any]], smallest: dict[str, Any] | None, model_day: int | None) -> str:
    """The model's search result in words (the statement when the closed form disagrees)."""
    window = max(r["horizon_days"] for r in searches)
    if any(r["breaks_without_move"] for r in searches):
        when = f"on day {model_day}" if model_day is not None else f"within {window} days"
        return f"backing breaks {when} with no gold move (model search, with the spec's flows and costs)"
    if smallest is not None:
        word = "fall" if smallest["move_frac"] < 0 else "rise"
        return (
            f"backing breaks at a gold {word} of {abs(smallest['move_frac']):.2%} reached over "
            f"{smallest['horizon_days']} days (model search over {window} days, with the spec's flows and costs)"
        )
    falls = [abs(r["max_move_searched_frac"]) for r in searches if r["direction"] < 0]
    rises = [r["max_move_searched_frac"] for r in searches if r["direction"] > 0]
    return (
        f"no gold move breaks the backing within {window} days (model search: falls up to "
        f"{max(falls, default=0.0):.0%}, rises up to {max(rises, default=0.0):.0%}, with the spec's flows and costs)"
    )


NOISELESS_PREMIUM_SIGMA = 1e-12
"""Diffusion sd (fraction of NAV) a premium process keeps when its noise is switched off."""


def without_premium_noise(spec: Any) -> Any:
    """A reserve-backed spec whose premium process draws no noise: diffusion sd
    :data:`NOISELESS_PREMIUM_SIGMA`, no jumps; its mean, persistence and band pull, and every
    shock from sells and queues, are kept, so the premium follows its expected path. Any other
    spec (a CDP, or no premium process) is returned unchanged. Raises ValueError as
    :func:`models.token.spec.parse_token_spec`."""
    if not isinstance(spec, ReserveBackedTokenSpec) or spec.secondary.premium is None:
        return spec
    data = spec.model_dump(mode="json")
    prem = dict(data["secondary"]["premium"])
    prem.update(sigma=NOISELESS_PREMIUM_SIGMA, jump_intensity_per_day=0.0, jump_drawdown_sensitivity=0.0)
    data["secondary"]["premium"] = prem
    return parse_token_spec(data, where=f"token spec {spec.symbol} without premium noise")


def reverse_stress_summary(spec_dict: dict[str, Any], p0: float, horizons: tuple[int, ...]) -> dict[str, Any]:
    """Reverse stress test of one token: the model's search and a statement true of the model.

    ``searches``: the smallest gold moves (down and up) that break the token, per horizon, each
    path run over ``window_days = max(horizons)`` model days (:func:`models.risk.reverse_stress`);
    ``smallest_breaking_move``: the smallest of them; ``model_breaks_without_move_day``: the
    first day the model breaks at a flat gold price (None if not within the window);
    ``closed_form``: :func:`models.risk.closed_form_break_move` over the same window, with
    ``agrees_with_search`` (:func:`closed_form_agrees`); ``statement``: ``{"text", "source",
    "note"}``, the closed form's statement when it agrees with the search (``source =
    "closed_form"``), else the search's result in words (``source = "model_search"``, the note
    saying what the closed form said and what it ignores). ``p0`` is the day-0 gold price, USD
    per troy ounce. The premium's own noise is switched off (:func:`without_premium_noise`):
    the search looks for the gold move that breaks the token, not for a noise draw that does.
    Raises ValueError for an invalid spec."""
    spec = without_premium_noise(parse_token_spec(spec_dict, where=f"token spec {spec_dict.get('symbol')}"))
    model = build_token_model(spec)
    window = int(max(horizons))
    rows = []
    for direction in (-1, +1):
        for res in reverse_stress(model, p0, horizons_days=horizons, direction=direction):
            d = asdict(res)
            rows.append(
                {
                    "horizon_days": d["horizon_days"],
                    "direction": d["direction"],
                    "move_frac": d["move"],
                    "max_move_searched_frac": d["max_move"],
                    "breaks_without_move": d["baseline_breaks"],
                }
            )
    moves = [r for r in rows if r["move_frac"] is not None]
    smallest = min(moves, key=lambda r: (abs(r["move_frac"]), r["horizon_days"])) if moves else None
    flat_day = first_breach_day(model.run(np.full((1, window + 1), float(p0))))[0]
    model_day = None if np.isnan(flat_day) else int(flat_day)
    cf = closed_form_break_move(spec, p0, window_days=window)
    agrees = closed_form_agrees(cf, rows, model_day)
    cf["agrees_with_search"] = agrees
    if agrees:
        text = cf["statement"]
        if cf["move_frac"] == 0.0 and model_day is not None and model_day != cf.get("breaks_without_move_day"):
            text += f"; the model, with the spec's flows, breaks on day {model_day}"
        beyond = [r for r in rows if r["direction"] == cf.get("direction") and r["move_frac"] is None]
        if cf["move_frac"] not in (None, 0.0) and beyond:
            text += (
                f"; beyond the model search's range ({abs(beyond[0]['max_move_searched_frac']):.0%}), "
                "which finds no break within it"
            )
        statement = {
            "text": text,
            "source": "closed_form",
            "note": f"closed form ({cf['formula']}), checked against the model's search",
        }
    else:
        ignores = "; ".join(cf.get("ignores", []))
        statement = {
            "text": _search_statement(rows, smallest, model_day),
            "source": "model_search",
            "note": f"the closed form ({cf['formula']}) says: {cf['statement']}"
            + (f"; it ignores {ignores}" if ignores else ""),
        }
    return {
        "window_days": window,
        "searches": rows,
        "smallest_breaking_move": smallest,
        "model_breaks_without_move_day": model_day,
        "closed_form": cf,
        "statement": statement,
    }


def reverse_stress_boundary_summary(spec_dict: dict[str, Any], p0: float) -> dict[str, Any] | None:
    """Reverse stress boundary of a reserve-backed token (MiCA RTS (EU) 2025/1264 Art. 5(2)): for each
    share in :data:`BOUNDARY_SHARES` of the supply redeemed over :data:`BOUNDARY_HORIZON_DAYS`
    days, the smallest gold fall that makes the token fail (``models.risk.failure_boundary``,
    flows other than the requested share switched off by
    ``models.token.spec.with_redemption_share``). None for a spec without a reserve (a CDP)."""
    if "reserve" not in spec_dict:
        return None
    spec = parse_token_spec(spec_dict, where=f"token spec {spec_dict.get('symbol')}")
    if not isinstance(spec, ReserveBackedTokenSpec):
        return None
    h = BOUNDARY_HORIZON_DAYS
    rows = failure_boundary(
        lambda s: ReserveBackedToken(with_redemption_share(spec, s, h)), p0, BOUNDARY_SHARES, h, tol=BOUNDARY_TOL
    )
    return {
        "horizon_days": h,
        "failure": "backing ratio < 1 or liquidity coverage < 1 on any day, or eligible redemptions unpaid at the horizon end",
        "rows": rows,
    }


LIQUIDITY_STRESS_REGULATION = (
    "Commission Delegated Regulation (EU) 2025/1264 (RTS on the liquidity management policy and "
    "liquidity stress testing of issuers of asset-referenced and e-money tokens, Regulation (EU) 2023/1114, MiCA)"
)


def custody_concentration(spec_dict: dict[str, Any], p0_usd_per_oz: float) -> list[dict[str, Any]]:
    """Share of a reserve-backed token's day-0 reserve value held by each custodian (gold at ``p0``, USD
    assets at par), largest first. Empty list for a spec without a reserve (a CDP)."""
    values: dict[str, float] = {}
    for a in spec_dict.get("reserve", []):
        v = (
            a["amount"] * p0_usd_per_oz / TROY_OUNCE_G
            if a["kind"] in ("allocated_gold", "unallocated_gold")
            else a["amount"]
        )
        key = a.get("custodian") or "(unnamed)"
        values[key] = values.get(key, 0.0) + float(v)
    total = sum(values.values())
    return [
        {"custodian": k, "value_usd": v, "share": v / total if total > 0 else float("nan")}
        for k, v in sorted(values.items(), key=lambda kv: -kv[1])
    ]


def liquidity_stress_section(manifest: dict[str, Any], tokens: dict[str, Any]) -> dict[str, Any]:
    """The liquidity stress test laid out as Delegated Regulation (EU) 2025/1264 asks (risks
    covered; parameters and their calibration; scenarios and horizons; historical data used;
    outcome; remedies), for every reserve-backed token of the run, from the manifest's
    ``liquidity_stress`` (``tasks.recommend``) and the token summaries already computed."""
    ls = manifest.get("liquidity_stress") or {}
    rec = ls.get("recommendations") or {}
    rec_tokens = rec.get("tokens") or {}
    prem = ls.get("premium_calibration") or {}
    p0 = float(manifest["data"]["last_usd_per_oz"])
    specs = {s["symbol"]: s for s in manifest["token_specs"] if "reserve" in s}
    if not specs:
        return {}
    st = manifest["settings"]
    params, outcome, remedies = {}, {}, {}
    for sym, spec in specs.items():
        params[sym] = {
            "reserve": [
                {
                    k: a.get(k)
                    for k in (
                        "name",
                        "kind",
                        "amount",
                        "liquidity_per_day",
                        "liquidity_unit",
                        "stressed_haircut",
                        "custodian",
                    )
                }
                for a in spec["reserve"]
            ],
            "custody_concentration": custody_concentration(spec, p0),
            "attestation_lag_days": spec.get("attestation_lag_days"),
            "primary_market": spec["primary"],
            "holder_behaviour": spec["redemption"],
            "premium_process": prem.get(
                sym, {"source": "spec assumption", "assumed": (spec.get("secondary") or {}).get("premium")}
            ),
            "calibration_note": "reserve liquidity, haircuts, fees and behaviour are the spec file's documented assumptions; "
            "the premium process is fitted on real token and gold closes where marked 'calibrated'",
        }
        mc = tokens.get(sym, {}).get("scenarios", {}).get("mc_champion", {})
        r = rec_tokens.get(sym, {})
        boundary = tokens.get(sym, {}).get("reverse_stress_boundary") or {}
        outcome[sym] = {
            "monte_carlo_behavioural": {
                k: mc.get(k)
                for k in mc
                if k.startswith(
                    (
                        "liquidity_coverage_",
                        "p_liquidity_coverage_below_1_",
                        "p_abs_premium_gt_",
                        "depeg_",
                        "redemption_",
                    )
                )
            },
            "redemption_wave_without_remedy": (r.get("cash_buffer") or {}).get("before"),
            "redemption_wave_out_of_sample": ((r.get("cash_buffer") or {}).get("out_of_sample") or {}).get("before"),
            "reverse_stress_boundary": boundary.get("rows"),
        }
        if r:
            cb = r["cash_buffer"]
            remedies[sym] = {
                "cash_buffer_usd": cb["buffer_usd"],
                "cash_buffer_frac_of_liabilities": cb["buffer_frac"],
                "cash_buffer_reachable": cb["reachable"],
                "cash_buffer_searched_up_to_usd": cb["max_buffer_usd"],
                "with_buffer": cb["after"],
                "with_buffer_out_of_sample": cb["out_of_sample"]["after"],
                "current_setting": r["current_setting"],
                "recommended_setting": r["recommended_setting"],
                "settings_grid": r["settings_grid"],
            }
    scen = rec.get("scenario") or {}
    return {
        "regulation": LIQUIDITY_STRESS_REGULATION,
        "risks_covered": [
            "redemption risk: holder requests driven by the gold drawdown, the discount to NAV and a global-game run (Morris & Shin 1998; Goldstein & Pauzner 2005)",
            "market liquidity of each reserve asset: conversion capacity per open day and stressed fire-sale haircut",
            "settlement and timing: settlement lag, processing cut-off, market hours (London hours, weekends), whole-bar and minimum-size rules",
            "gold price risk: champion GARCH-family Monte Carlo, historical replays, instantaneous shocks",
            "secondary-market (peg) risk: premium process with stress jumps, arbitrage band from fees, AMM depth, limited arbitrage capital",
            "custody concentration: share of the reserve value per custodian",
        ],
        "parameters": params,
        "scenarios_and_horizons": {
            "monte_carlo": {
                "paths": st["mc_paths"],
                "horizon_days": st["mc_horizon_days"],
                "seed": st["mc_seed"],
                "coverage_horizons_days": [1, 5, 10, 30],
            },
            "redemption_wave": scen,
            "historical_replays": st["replay_windows"],
            "instant_shocks": st["shock_sizes"],
            "reverse_stress": {"redemption_shares": list(BOUNDARY_SHARES), "horizon_days": BOUNDARY_HORIZON_DAYS},
        },
        "historical_data": {
            "gold": manifest["data"],
            "token_premia": {
                sym: {k: e.get(k) for k in ("calibration_set", "source", "data", "fit_window", "test_window", "clock")}
                for sym, e in prem.items()
            },
            "supply_outflows": ls.get("supply_outflows") or {},
        },
        "outcome": outcome,
        "remedies": remedies,
    }


def max_drawdown_frac(values: np.ndarray) -> np.ndarray:
    """Peak-to-trough fall of each row, ``max_t (1 - v_t / max_{s<=t} v_s)``, as a positive
    fraction of the running peak (0 when the row never falls below an earlier value).

    ``values`` is ``(n_paths, T + 1)`` (day 0 first, any positive unit: USD per token, USD per
    ounce). NaN entries (e.g. days with no token outstanding) are skipped: neither a peak nor a
    trough; a row without any finite value gives NaN. A value of 0 after a positive peak is a
    fall of 1. Returns ``(n_paths,)``. Raises ValueError for an array that is not 2-D.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"values: expected a 2-D array (n_paths, T + 1), got shape {v.shape}")
    return _max_drawdown_rows(v, v, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _max_drawdown_rows(v: np.ndarray, per: np.ndarray, divide: bool) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`max_drawdown_frac` of a 2-D float array ``v`` or, with ``divide``, of ``v / per``
    where ``per > 0`` (NaN elsewhere: the value per token of
    :attr:`models.token.outcome.TokenOutcome.reserve_usd_per_token`), one pass per row: the
    running peak skips NaN (``np.fmax``), a day's fall ``1 - v / peak`` counts where the peak is
    positive, the row's result is the largest non-NaN fall floored at 0 (NaN when no fall is
    finite)."""
    n, t1 = v.shape
    out = np.empty(n)
    for i in range(n):
        peak = np.nan
        best = -np.inf
        seen = False
        for t in range(t1):
            x = v[i, t]
            if divide:
                x = x / per[i, t] if per[i, t] > 0 else np.nan
            if peak != peak or x > peak:  # fmax: a NaN side does not count
                peak = x if x == x else peak
            if peak > 0:
                fall = 1.0 - x / peak
                if fall > best:
                    best = fall
                if math.isfinite(fall):
                    seen = True
        out[i] = (best if best >= 0.0 else 0.0) if seen else np.nan
    return out


def gold_columns(
    gold: np.ndarray, horizons: tuple[int, ...], *, trading_columns: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The columns of :func:`summarise_paths` that depend on the gold paths only:
    ``gold_log_return_<h>d`` (NaN for a horizon beyond the last trading day),
    ``gold_log_return_end`` and ``gold_max_drawdown`` (:func:`max_drawdown_frac`). Computed
    once and passed to :func:`summarise_paths` for each token run along the same paths.

    ``gold`` ``(n_paths, C+1)`` USD per oz; ``horizons`` and ``trading_columns`` as
    :func:`summarise_paths`. Returns arrays ``(n_paths,)`` keyed by column name. Raises
    ValueError as :func:`summarise_paths` does for ``trading_columns``.
    """
    n, c1 = gold.shape
    cols_of = _trading_columns(trading_columns, c1)
    out: dict[str, np.ndarray] = {}
    for h in horizons:
        out[f"gold_log_return_{h}d"] = (
            np.log(gold[:, int(cols_of[h])] / gold[:, 0]) if h < cols_of.size else np.full(n, np.nan)
        )
    out["gold_log_return_end"] = np.log(gold[:, -1] / gold[:, 0])
    out["gold_max_drawdown"] = max_drawdown_frac(gold)
    return out


def summarise_paths(
    outcome: TokenOutcome,
    gold: np.ndarray,
    horizons: tuple[int, ...],
    *,
    trading_columns: np.ndarray | None = None,
    gold_summary: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """:func:`summary_columns` as a DataFrame, one row per path (same arguments, same errors)."""
    return pd.DataFrame(
        summary_columns(outcome, gold, horizons, trading_columns=trading_columns, gold_summary=gold_summary)
    )


def summary_columns(
    outcome: TokenOutcome,
    gold: np.ndarray,
    horizons: tuple[int, ...],
    *,
    trading_columns: np.ndarray | None = None,
    gold_summary: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The per-path summary of a token outcome as columns in table order, each ``(n_paths,)``
    (``path`` the row's index from 0): values at day 0, at each horizon and at the end of
    the window, losses, whole-window extremes, the redemption outflow and the fees.

    ``gold`` is ``(n_paths, C+1)`` USD per oz; outcome arrays are ``(n_paths, C+1)``. Horizons
    are gold trading days: horizon ``h`` is read at column ``trading_columns[h]`` (the calendar
    column of trading day ``h``, :func:`models.scenarios.on_calendar_days`; None: column ``h``,
    every day a trading day). Horizons beyond the last trading day give NaN (a replay shorter
    than the horizon). Extremes, peg and queue measures run over every column (calendar days).
    Losses are fractions of the day-0 value, positive when value falls. ``gold_summary``: the
    :func:`gold_columns` of these ``gold`` paths, horizons and trading columns, to summarise
    several tokens on one set of paths without computing them again (None: computed here).
    Raises ValueError when ``trading_columns`` is not an increasing index array into the columns
    starting at 0, or when a ``gold_summary`` array is not ``(n_paths,)``. Columns
    (``<h>`` each horizon, ``end`` the window's last day):

    - ``holder_value_usd_per_token_<h>d``, ``holder_loss_frac_<h>d`` / ``_end``,
      ``holder_max_drawdown_frac`` (peak-to-trough over the window, :func:`max_drawdown_frac`);
    - ``reserve_usd_per_token_d0`` / ``_<h>d`` / ``_end`` (reserve value per token outstanding,
      :attr:`models.token.outcome.TokenOutcome.reserve_usd_per_token`; NaN with no supply),
      ``reserve_per_token_loss_frac_<h>d`` / ``_end``, ``reserve_per_token_max_drawdown_frac``:
      a redemption paid at the backing value is not a loss here, only what moves the reserve's
      value per token (gold, costs, haircuts, fees kept in the reserve);
    - ``reserve_value_usd_d0`` / ``_<h>d`` (the whole reserve, USD: it shrinks with redemptions);
    - ``backing_ratio_<h>d`` / ``_end`` / ``_min`` and ``backing_below_1``;
    - reserve-backed tokens only (NaN for a CDP): ``redeemed_frac_of_day0_supply_<h>d`` /
      ``_end`` (cumulative tokens redeemed / day-0 supply), ``redemption_outflow_usd_<h>d`` /
      ``_end`` (cumulative value paid out of the reserve for redemptions, USD),
      ``redemption_outflow_frac_of_day0_liabilities_end`` (that over day-0 supply x day-0 NAV),
      ``issuer_fee_revenue_usd_end`` and ``reserve_fee_income_usd_end`` (cumulative fees, USD),
      and the peg/liquidity columns of :func:`market_columns`.
    """
    n, c1 = gold.shape
    cols_of = _trading_columns(trading_columns, c1)
    t1 = cols_of.size
    if gold_summary is None:
        gold_summary = gold_columns(gold, horizons, trading_columns=cols_of)
    elif any(np.shape(v) != (n,) for v in gold_summary.values()):
        raise ValueError(f"gold_summary: expected arrays of shape ({n},), one value per path")
    cols: dict[str, np.ndarray] = {"path": np.arange(n)}
    hv, rv = outcome.holder_value_usd_per_token, outcome.reserve_value_usd
    supply = outcome.supply_tokens

    def rpt_at(c: int) -> np.ndarray:
        # TokenOutcome.reserve_usd_per_token at one column (the whole array is only needed for
        # its peak-to-trough fall, computed without it)
        s = supply[:, c]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, rv[:, c] / np.where(s > 0, s, 1.0), np.nan)

    rpt0 = rpt_at(0)

    def rpt_loss(c: int) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - rpt_at(c) / rpt0

    cols["holder_value_usd_per_token_d0"] = hv[:, 0]
    cols["reserve_value_usd_d0"] = rv[:, 0]
    cols["reserve_usd_per_token_d0"] = rpt0
    for h in horizons:
        if h < t1:
            c = int(cols_of[h])
            cols[f"gold_log_return_{h}d"] = gold_summary[f"gold_log_return_{h}d"]
            cols[f"holder_value_usd_per_token_{h}d"] = hv[:, c]
            cols[f"holder_loss_frac_{h}d"] = 1.0 - hv[:, c] / hv[:, 0]
            cols[f"reserve_value_usd_{h}d"] = rv[:, c]
            cols[f"reserve_usd_per_token_{h}d"] = rpt_at(c)
            cols[f"reserve_per_token_loss_frac_{h}d"] = rpt_loss(c)
            cols[f"backing_ratio_{h}d"] = outcome.backing_ratio[:, c]
        else:
            for key in (
                "gold_log_return",
                "holder_value_usd_per_token",
                "holder_loss_frac",
                "reserve_value_usd",
                "reserve_usd_per_token",
                "reserve_per_token_loss_frac",
                "backing_ratio",
            ):
                cols[f"{key}_{h}d"] = np.full(n, np.nan)
    cols["gold_log_return_end"] = gold_summary["gold_log_return_end"]
    cols["gold_max_drawdown"] = gold_summary["gold_max_drawdown"]
    cols["holder_loss_frac_end"] = 1.0 - hv[:, -1] / hv[:, 0]
    cols["holder_max_drawdown_frac"] = max_drawdown_frac(hv)
    cols["reserve_usd_per_token_end"] = rpt_at(-1)
    cols["reserve_per_token_loss_frac_end"] = rpt_loss(-1)
    cols["reserve_per_token_max_drawdown_frac"] = _max_drawdown_rows(
        np.asarray(rv, dtype=float), np.asarray(supply, dtype=float), True
    )
    cols["backing_ratio_end"] = outcome.backing_ratio[:, -1]
    cols["backing_ratio_min"] = outcome.backing_ratio.min(axis=1)
    cols["backing_below_1"] = cols["backing_ratio_min"] < 1.0
    cols["liquidated"] = outcome.liquidated[:, -1]
    cols["bad_debt_usd"] = outcome.bad_debt_usd[:, -1]
    # unbacked USD at the end per USD owed at day 0 (liabilities = reserve / backing ratio): for a
    # CDP the share of the day-0 supply left without collateral, whatever was repaid since
    with np.errstate(divide="ignore", invalid="ignore"):
        liabilities0 = rv[:, 0] / outcome.backing_ratio[:, 0]
        cols["unbacked_frac_of_day0_liabilities"] = np.where(
            np.isfinite(liabilities0) & (liabilities0 > 0), outcome.bad_debt_usd[:, -1] / liabilities0, np.nan
        )
    cols["supply_tokens_end"] = outcome.supply_tokens[:, -1]
    cols["horizon_days"] = np.full(n, t1 - 1)
    cols["horizon_calendar_days"] = np.full(n, c1 - 1)
    flows = market = None
    if isinstance(outcome, ReserveBackedOutcome):
        flows = flow_columns(outcome, horizons, trading_columns=cols_of)
        market = market_columns(outcome, horizons, trading_columns=cols_of)
    # CDP tokens have no redemptions, fees, secondary market or liquidity model: NaN keeps one
    # table schema
    for name in flow_column_names(horizons):
        cols[name] = flows[name] if flows is not None else np.full(n, np.nan)
    for name in market_column_names(horizons):
        cols[name] = market[name] if market is not None else np.full(n, np.nan)
    return cols


def flow_column_names(horizons: tuple[int, ...]) -> list[str]:
    """Names of the reserve-backed redemption-outflow and fee columns (see :func:`flow_columns`),
    in table order."""
    return [
        *[f"redeemed_frac_of_day0_supply_{h}d" for h in horizons],
        "redeemed_frac_of_day0_supply_end",
        *[f"redemption_outflow_usd_{h}d" for h in horizons],
        "redemption_outflow_usd_end",
        "redemption_outflow_frac_of_day0_liabilities_end",
        "issuer_fee_revenue_usd_end",
        "reserve_fee_income_usd_end",
    ]


def flow_columns(
    outcome: ReserveBackedOutcome, horizons: tuple[int, ...], *, trading_columns: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-path redemption outflow and fees of a reserve-backed token, cumulative from day 0:
    tokens redeemed as a fraction of the day-0 supply and the value paid out of the reserve for
    them (USD at each day's prices; also as a fraction of the day-0 liabilities, day-0 supply x
    day-0 NAV) at each horizon (NaN beyond the window) and at the end; the mint and redeem fees
    paid to the issuer and those credited to the reserve at the end (USD). Horizons are trading
    days read at ``trading_columns`` (as :func:`summarise_paths`). Arrays ``(n_paths,)``, keyed by
    :func:`flow_column_names`. Raises ValueError for bad ``trading_columns``."""
    cols_of = _trading_columns(trading_columns, outcome.supply_tokens.shape[1])
    t1 = cols_of.size
    n = outcome.n_paths
    out = outcome.redemption_outflow_usd
    nan = np.full(n, np.nan)
    # ReserveBackedOutcome.cum_redeemed_frac_of_day0_supply read only at the horizons and the end
    at = np.array([int(cols_of[h]) for h in horizons if h < t1] + [out.shape[1] - 1], dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        red = _cum_sum_at(outcome.redeemed_gold_tokens, outcome.redeemed_cash_tokens, at) / outcome.supply_tokens[:, :1]
    cols: dict[str, np.ndarray] = {}
    for k, h in enumerate(h for h in horizons if h < t1):
        cols[f"redeemed_frac_of_day0_supply_{h}d"] = red[:, k]
    for h in horizons:
        cols.setdefault(f"redeemed_frac_of_day0_supply_{h}d", nan)
    cols["redeemed_frac_of_day0_supply_end"] = red[:, -1]
    for h in horizons:
        cols[f"redemption_outflow_usd_{h}d"] = out[:, cols_of[h]] if h < t1 else nan
    cols["redemption_outflow_usd_end"] = out[:, -1]
    liab0 = outcome.supply_tokens[:, 0] * outcome.nav_usd_per_token[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["redemption_outflow_frac_of_day0_liabilities_end"] = np.where(liab0 > 0, out[:, -1] / liab0, np.nan)
    cols["issuer_fee_revenue_usd_end"] = outcome.issuer_fee_revenue_usd[:, -1]
    cols["reserve_fee_income_usd_end"] = outcome.reserve_fee_income_usd[:, -1]
    return {k: cols[k] for k in flow_column_names(horizons)}


@njit(cache=True, nogil=True, error_model="numpy")
def _cum_sum_at(a: np.ndarray, b: np.ndarray, at: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``np.cumsum(a + b, axis=1)[:, at]`` for ``(n, T)`` arrays and increasing columns ``at``
    (the same sequential sums), ``(n, len(at))``."""
    n = a.shape[0]
    out = np.empty((n, at.shape[0]))
    for i in range(n):
        acc = a[i, 0] + b[i, 0]  # not 0.0 + ...: a first sum of -0.0 stays -0.0, as in np.cumsum
        k = 0
        for t in range(at[-1] + 1):
            if t > 0:
                acc += a[i, t] + b[i, t]
            while k < at.shape[0] and at[k] == t:
                out[i, k] = acc
                k += 1
    return out


PEG_THRESHOLDS = (0.01, 0.05)


def _trading_columns(trading_columns: np.ndarray | None, n_cols: int) -> np.ndarray:
    """Calendar column of each trading day (identity when None), checked."""
    if trading_columns is None:
        return np.arange(n_cols)
    tc = np.asarray(trading_columns)
    if (
        tc.ndim != 1
        or tc.size == 0
        or not np.issubdtype(tc.dtype, np.integer)
        or tc[0] != 0
        or (np.diff(tc) <= 0).any()
        or tc[-1] >= n_cols
    ):
        raise ValueError(f"trading_columns: expected increasing column indices from 0 below {n_cols}, got {tc!r}")
    return tc


def _lcr_horizons(horizons: tuple[int, ...]) -> list[int]:
    return sorted(set((1, 5, 30)) | set(horizons))


def market_column_names(horizons: tuple[int, ...]) -> list[str]:
    """Names of the reserve-backed peg/liquidity columns (see :func:`market_columns`), in table order."""
    return [
        "premium_end_frac",
        "premium_min_frac",
        "premium_max_frac",
        "depeg_depth_frac",
        "depeg_longest_days_beyond_1pct",
        "depeg_recovery_days_1pct",
        *[f"share_days_abs_premium_gt_{round(th * 100)}pct" for th in PEG_THRESHOLDS],
        *[f"liquidity_coverage_min_{h}d" for h in _lcr_horizons(horizons)],
        "redemption_queue_max_tokens",
        "redemption_wait_max_days",
        "redemption_queue_end_tokens",
        "fire_sale_loss_usd",
    ]


def market_columns(
    outcome: ReserveBackedOutcome, horizons: tuple[int, ...], *, trading_columns: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-path peg and liquidity columns of a reserve-backed token (``models.peg`` definitions):
    depth of the worst premium/discount, the longest run beyond 1%, days from the worst point to
    recovery within 1%, the share of days beyond 1% and 5%, the lowest daily liquidity coverage
    over 1/5/30 trading days (and the configured horizons; ``trading_columns`` as
    :func:`summarise_paths`), the longest redemption queue and the most days a redemption wave
    met within the horizon waited, and the queue left at the end. Day counts of the peg measures
    are columns of the outcome (calendar days on the calendar-day clock)."""
    prem = outcome.premium_frac
    cols_of = _trading_columns(trading_columns, prem.shape[1])
    t1 = cols_of.size
    cols: dict[str, np.ndarray] = {
        "premium_end_frac": prem[:, -1],
        "premium_min_frac": prem.min(axis=1),
        "premium_max_frac": prem.max(axis=1),
        "depeg_depth_frac": depeg_depth(prem),
        "depeg_longest_days_beyond_1pct": longest_depeg_days(prem, 0.01).astype(float),
        "depeg_recovery_days_1pct": days_to_recovery(prem, 0.01),
    }
    for th in PEG_THRESHOLDS:
        cols[f"share_days_abs_premium_gt_{round(th * 100)}pct"] = share_of_days_beyond(prem, th)
    lcr = outcome.liquidity_coverage
    for h in _lcr_horizons(horizons):
        cols[f"liquidity_coverage_min_{h}d"] = (
            lcr[:, 1 : int(cols_of[h]) + 1].min(axis=1) if h < t1 else np.full(prem.shape[0], np.nan)
        )
    cols["redemption_queue_max_tokens"] = outcome.queue_tokens.max(axis=1)
    # longest wait among the waves met within the horizon; what is still owed at the end is
    # reported apart (the last days' waves cannot be met inside the horizon by construction)
    cols["redemption_wait_max_days"] = np.fmax.reduce(outcome.wait_days(), axis=1)  # NaN-skipping; all NaN: NaN
    cols["redemption_queue_end_tokens"] = outcome.queue_tokens[:, -1]
    cols["fire_sale_loss_usd"] = outcome.fire_sale_loss_usd[:, -1]
    return cols


def observed_premia(gold_usd_per_oz: pd.Series, tokens: dict[str, tuple[pd.Series, float]]) -> dict[str, Any]:
    """Observed premium/discount of each token's close to the gold price per ounce on common dates.

    ``gold_usd_per_oz`` and each token's close (USD per token) are date-indexed; ``tokens`` maps a
    symbol to ``(close_usd, oz_per_token)``. The token closes at 24:00 UTC and the LBMA PM at 15:00
    London: the clock mismatch adds noise. Tokens with no common date are left out.
    """
    out: dict[str, Any] = {}
    for symbol, (close_usd, oz) in tokens.items():
        joined = pd.concat([close_usd / oz, gold_usd_per_oz], axis=1, join="inner").dropna()
        if joined.empty:
            continue
        prem = joined.iloc[:, 0] / joined.iloc[:, 1] - 1.0
        out[symbol] = {
            "n_days": int(prem.size),
            "first_date": str(prem.index[0].date()),
            "last_date": str(prem.index[-1].date()),
            "premium_median_frac": float(prem.median()),
            "premium_q01_frac": float(prem.quantile(0.01)),
            "premium_q99_frac": float(prem.quantile(0.99)),
            "p_abs_deviation_gt_1pct": float((prem.abs() > 0.01).mean()),
            "p_abs_deviation_gt_5pct": float((prem.abs() > 0.05).mean()),
        }
    return out
