"""Per-path summaries of a token outcome and the risk figures computed over them (VaR/ES,
backing-ratio quantiles, breach probabilities, peg and liquidity figures), the scenario ranking,
the reverse stress summaries and the liquidity stress section of the run summary.

Units are in every key name: ``_frac`` (fraction of the day-0 value; losses positive), ``_usd``,
``_usd_per_token``, ``_days``; confidence levels appear as ``95``/``99`` and horizons as
``1d``/``10d``/``30d``. VaR and ES are empirical (historical-simulation) estimates over the
simulated paths: ES is the mean loss beyond VaR (Acerbi & Tasche 2002).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from models.peg import (
    days_to_recovery,
    depeg_depth,
    longest_depeg_days,
    share_of_days_beyond,
)
from models.risk import closed_form_break_move, failure_boundary, reverse_stress, var_es
from models.token.outcome import ReserveBackedOutcome, TokenOutcome
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


def distribution_metrics(g: pd.DataFrame, levels: tuple[float, ...], horizons: tuple[int, ...]) -> dict[str, float]:
    """VaR/ES of holder and reserve value, backing-ratio quantiles and breach probabilities
    from a Monte Carlo table with one row per path (columns of ``models.metrics.summarise_paths``)."""
    out: dict[str, float] = {"n_paths": int(len(g))}
    hv0 = float(g["holder_value_usd_per_token_d0"].iloc[0])
    rv0 = float(g["reserve_value_usd_d0"].iloc[0])
    for h in horizons:
        for level in levels:
            for who, v0, unit in (("holder", hv0, "usd_per_token"), ("reserve", rv0, "usd")):
                losses = g[f"{who}_loss_frac_{h}d"].to_numpy()
                if np.isnan(losses).all():
                    continue
                var, es = var_es(losses[~np.isnan(losses)], level)
                key = f"{who}_value_{{}}_{_lvl(level)}_{h}d"
                out[key.format("var") + "_frac"] = float(var)
                out[key.format("es") + "_frac"] = float(es)
                out[key.format("var") + f"_{unit}"] = float(var * v0)
                out[key.format("es") + f"_{unit}"] = float(es * v0)
        col = f"backing_ratio_{h}d"
        if not g[col].isna().all():
            for q in BACKING_QUANTILES:
                out[f"backing_ratio_{h}d_q{q * 100:g}"] = _quantile(g[col], q)
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
    if "depeg_depth_frac" in g and g["depeg_depth_frac"].notna().any():
        out.update(market_metrics(g))
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
    """Outcome of a single-path scenario (historical replay or instantaneous shock)."""
    out: dict[str, Any] = {"n_paths": 1, "horizon_days": int(row["horizon_days"])}
    for h in horizons:
        for key in ("holder_loss_frac", "reserve_loss_frac", "backing_ratio", "gold_log_return"):
            v = row[f"{key}_{h}d"]
            out[f"{key}_{h}d"] = None if pd.isna(v) else float(v)
    for key in (
        "gold_log_return_end",
        "gold_max_drawdown",
        "holder_loss_frac_end",
        "reserve_loss_frac_end",
        "backing_ratio_end",
        "backing_ratio_min",
        "bad_debt_usd",
        "unbacked_frac_of_day0_liabilities",
    ):
        out[key] = float(row[key])
    out["backing_below_1"] = bool(row["backing_below_1"])
    out["liquidated"] = bool(row["liquidated"])
    out["holder_value_usd_per_token_d0"] = float(row["holder_value_usd_per_token_d0"])
    out["reserve_value_usd_d0"] = float(row["reserve_value_usd_d0"])
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


def loss_30d(metrics: dict[str, Any], kind: str) -> float:
    """The 30-day holder-value loss used to rank scenarios: 99% ES for Monte Carlo, the realised
    loss (at the scenario's end if shorter than 30 days) for single paths."""
    if kind == "monte_carlo":
        return float(metrics.get("holder_value_es_99_30d_frac", np.nan))
    v = metrics.get("holder_loss_frac_30d")
    return float(metrics["holder_loss_frac_end"] if v is None else v)


def reverse_stress_summary(spec_dict: dict[str, Any], p0: float, horizons: tuple[int, ...]) -> dict[str, Any]:
    """Smallest gold moves (down and up) that break the token, per horizon, and the closed form
    where one exists (``models.risk.closed_form_break_move``)."""
    spec = parse_token_spec(spec_dict, where=f"token spec {spec_dict.get('symbol')}")
    model = build_token_model(spec)
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
    return {"searches": rows, "smallest_breaking_move": smallest, "closed_form": closed_form_break_move(spec, p0)}


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


def summarise_paths(
    outcome: TokenOutcome,
    gold: np.ndarray,
    horizons: tuple[int, ...],
    *,
    trading_columns: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per path of a token outcome: values at day 0 and at each horizon, losses, extremes.

    ``gold`` is ``(n_paths, C+1)`` USD per oz; outcome arrays are ``(n_paths, C+1)``. Horizons
    are gold trading days: horizon ``h`` is read at column ``trading_columns[h]`` (the calendar
    column of trading day ``h``, :func:`models.scenarios.on_calendar_days`; None: column ``h``,
    every day a trading day). Horizons beyond the last trading day give NaN (a replay shorter
    than the horizon). Extremes, peg and queue measures run over every column (calendar days).
    Losses are fractions of the day-0 value, positive when value falls. Raises ValueError when
    ``trading_columns`` is not an increasing index array into the columns starting at 0.
    """
    n, c1 = gold.shape
    cols_of = _trading_columns(trading_columns, c1)
    t1 = cols_of.size
    cols: dict[str, np.ndarray] = {"path": np.arange(n)}
    hv, rv = outcome.holder_value_usd_per_token, outcome.reserve_value_usd
    cols["holder_value_usd_per_token_d0"] = hv[:, 0]
    cols["reserve_value_usd_d0"] = rv[:, 0]
    for h in horizons:
        if h < t1:
            c = int(cols_of[h])
            cols[f"gold_log_return_{h}d"] = np.log(gold[:, c] / gold[:, 0])
            cols[f"holder_value_usd_per_token_{h}d"] = hv[:, c]
            cols[f"holder_loss_frac_{h}d"] = 1.0 - hv[:, c] / hv[:, 0]
            cols[f"reserve_value_usd_{h}d"] = rv[:, c]
            cols[f"reserve_loss_frac_{h}d"] = 1.0 - rv[:, c] / rv[:, 0]
            cols[f"backing_ratio_{h}d"] = outcome.backing_ratio[:, c]
        else:
            for key in (
                "gold_log_return",
                "holder_value_usd_per_token",
                "holder_loss_frac",
                "reserve_value_usd",
                "reserve_loss_frac",
                "backing_ratio",
            ):
                cols[f"{key}_{h}d"] = np.full(n, np.nan)
    cols["gold_log_return_end"] = np.log(gold[:, -1] / gold[:, 0])
    cols["gold_max_drawdown"] = 1.0 - (gold / np.maximum.accumulate(gold, axis=1)).min(axis=1)
    cols["holder_loss_frac_end"] = 1.0 - hv[:, -1] / hv[:, 0]
    cols["reserve_loss_frac_end"] = 1.0 - rv[:, -1] / rv[:, 0]
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
    market = (
        market_columns(outcome, horizons, trading_columns=cols_of)
        if isinstance(outcome, ReserveBackedOutcome)
        else None
    )
    for name in market_column_names(horizons):
        # CDP tokens have no secondary market or liquidity model: NaN keeps one table schema
        cols[name] = market[name] if market is not None else np.full(n, np.nan)
    return pd.DataFrame(cols)


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
    waits = outcome.wait_days()
    met = np.where(np.isnan(waits), -np.inf, waits).max(axis=1)
    cols["redemption_wait_max_days"] = np.where(np.isfinite(met), met, np.nan)
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
