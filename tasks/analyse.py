"""Analysis tasks: risk metrics per token and scenario, the champion's VaR backtest, reverse
stress tests and observed token premia, gathered into one ``summary`` dict (-> summary.json).

Units are in every key name: ``_frac`` (fraction of the day-0 value; losses positive),
``_usd``, ``_usd_per_token``, ``_days``; confidence levels appear as ``95``/``99`` and horizons as
``1d``/``10d``/``30d``. VaR and ES are empirical (historical-simulation) estimates over the
simulated paths: ES is the mean loss beyond VaR (Acerbi & Tasche 2002).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.settings import TROY_OUNCE_G, Settings
from dataclasses import asdict

from models.risk import closed_form_break_move, failure_boundary, reverse_stress, var_es
from models.token_v2 import TokenV2, build_any_token_model, parse_any_token_spec, with_redemption_share
from tasks import storage

BACKING_QUANTILES = (0.001, 0.01, 0.05, 0.5, 0.95)
BOUNDARY_SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
"""Redemption shares (of day-0 supply, requested over the horizon) of the reverse stress boundary."""
BOUNDARY_HORIZON_DAYS = 30
"""Horizon of the reverse stress boundary, model days (gold fall and redemptions)."""
BOUNDARY_TOL = 1e-3
PREMIUM_END_QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)
"""Quantiles of the premium/discount to NAV at the horizon end reported per v2 token."""
"""Precision of the boundary's gold fall, fraction."""


def _lvl(level: float) -> str:
    return f"{round(level * 100):d}"


def _quantile(x: pd.Series, q: float) -> float:
    """Empirical quantile without interpolation (``inverted_cdf``), so a backing ratio of +inf
    (no supply left: nothing owed) stays +inf instead of becoming NaN; NaNs are ignored."""
    v = x.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return float(np.quantile(v, q, method="inverted_cdf")) if v.size else float("nan")


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats by strings ``"inf"``, ``"-inf"``, ``"nan"`` so summary.json is
    strict JSON (a backing ratio is +inf when no supply is left outstanding)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return "nan" if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def distribution_metrics(g: pd.DataFrame, levels: tuple[float, ...], horizons: tuple[int, ...]) -> dict[str, float]:
    """VaR/ES of holder and reserve value, backing-ratio quantiles and breach probabilities
    from a Monte Carlo table with one row per path (columns of ``tasks.simulate.summarise_paths``)."""
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
    out["holder_value_usd_per_token_d0"] = hv0
    out["reserve_value_usd_d0"] = rv0
    if "depeg_depth_frac" in g and g["depeg_depth_frac"].notna().any():
        out.update(market_metrics(g))
    return out


def market_metrics(g: pd.DataFrame) -> dict[str, float]:
    """Peg and liquidity figures over the paths of a v2 token (columns of
    ``tasks.simulate.market_columns``): probabilities that the premium/discount to NAV exceeds 1%
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
        **{f"mean_share_days_abs_premium_gt_{c.rsplit('_', 1)[-1]}": float(g[c].mean()) for c in g.columns if c.startswith("share_days_abs_premium_gt_")},
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
    for key in ("gold_log_return_end", "gold_max_drawdown", "holder_loss_frac_end", "reserve_loss_frac_end", "backing_ratio_end", "backing_ratio_min", "bad_debt_usd"):
        out[key] = float(row[key])
    out["backing_below_1"] = bool(row["backing_below_1"])
    out["liquidated"] = bool(row["liquidated"])
    out["holder_value_usd_per_token_d0"] = float(row["holder_value_usd_per_token_d0"])
    out["reserve_value_usd_d0"] = float(row["reserve_value_usd_d0"])
    if "depeg_depth_frac" in row and pd.notna(row["depeg_depth_frac"]):
        for key in (k for k in row.index if k.startswith(("premium_", "depeg_", "share_days_", "liquidity_coverage_min_", "redemption_", "fire_sale_"))):
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
    where one exists (``models.token.closed_form_break_move``)."""
    spec = parse_any_token_spec(spec_dict, where=f"token spec {spec_dict.get('symbol')}")
    model = build_any_token_model(spec)
    rows = []
    for direction in (-1, +1):
        for res in reverse_stress(model, p0, horizons_days=horizons, direction=direction):
            d = asdict(res)
            rows.append({"horizon_days": d["horizon_days"], "direction": d["direction"], "move_frac": d["move"], "max_move_searched_frac": d["max_move"], "breaks_without_move": d["baseline_breaks"]})
    moves = [r for r in rows if r["move_frac"] is not None]
    smallest = min(moves, key=lambda r: (abs(r["move_frac"]), r["horizon_days"])) if moves else None
    return {"searches": rows, "smallest_breaking_move": smallest, "closed_form": closed_form_break_move(spec, p0)}


def reverse_stress_boundary_summary(spec_dict: dict[str, Any], p0: float) -> dict[str, Any] | None:
    """Reverse stress boundary of a v2 token (MiCA RTS (EU) 2025/1264 Art. 5(2)): for each
    share in :data:`BOUNDARY_SHARES` of the supply redeemed over :data:`BOUNDARY_HORIZON_DAYS`
    days, the smallest gold fall that makes the token fail (``models.risk.failure_boundary``,
    flows other than the requested share switched off by
    ``models.token_v2.with_redemption_share``). None for a v1 spec (no ``reserve``)."""
    if "reserve" not in spec_dict:
        return None
    spec = parse_any_token_spec(spec_dict, where=f"token spec {spec_dict.get('symbol')}")
    h = BOUNDARY_HORIZON_DAYS
    rows = failure_boundary(lambda s: TokenV2(with_redemption_share(spec, s, h)), p0, BOUNDARY_SHARES, h, tol=BOUNDARY_TOL)
    return {
        "horizon_days": h,
        "failure": "backing ratio < 1 or liquidity coverage < 1 on any day, or eligible redemptions unpaid at the horizon end",
        "rows": rows,
    }


def premium_stats(settings: Settings) -> dict[str, Any]:
    """Observed premium/discount of each curated token's close to the gold price per ounce on
    common dates (token close at 24:00 UTC vs LBMA PM at 15:00 London: a clock mismatch that
    adds noise; issue #3 aligns clocks properly)."""
    from tasks.validation import load_curated

    out: dict[str, Any] = {}
    try:
        gold = load_curated("gold", settings)
    except Exception as exc:  # no curated gold: nothing to compare against
        return {"error": str(exc)}
    g = gold.set_index("date")["usd_per_oz"]
    for symbol, oz in settings.token_oz_per_token.items():
        try:
            tok = load_curated(f"token_{symbol}", settings).set_index("date")["close_usd"]
        except Exception:
            continue
        joined = pd.concat([tok / oz, g], axis=1, join="inner").dropna()
        if joined.empty:
            continue
        prem = joined.iloc[:, 0] / joined.iloc[:, 1] - 1.0
        out[symbol.upper()] = {
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


LIQUIDITY_STRESS_REGULATION = (
    "Commission Delegated Regulation (EU) 2025/1264 (RTS on the liquidity management policy and "
    "liquidity stress testing of issuers of asset-referenced and e-money tokens, Regulation (EU) 2023/1114, MiCA)"
)


def custody_concentration(spec_dict: dict[str, Any], p0_usd_per_oz: float) -> list[dict[str, Any]]:
    """Share of a v2 token's day-0 reserve value held by each custodian (gold at ``p0``, USD
    assets at par), largest first. Empty list for a v1 spec."""
    values: dict[str, float] = {}
    for a in spec_dict.get("reserve", []):
        v = a["amount"] * p0_usd_per_oz / TROY_OUNCE_G if a["kind"] in ("allocated_gold", "unallocated_gold") else a["amount"]
        key = a.get("custodian") or "(unnamed)"
        values[key] = values.get(key, 0.0) + float(v)
    total = sum(values.values())
    return [{"custodian": k, "value_usd": v, "share": v / total if total > 0 else float("nan")} for k, v in sorted(values.items(), key=lambda kv: -kv[1])]


def liquidity_stress_section(manifest: dict[str, Any], tokens: dict[str, Any]) -> dict[str, Any]:
    """The liquidity stress test laid out as Delegated Regulation (EU) 2025/1264 asks (risks
    covered; parameters and their calibration; scenarios and horizons; historical data used;
    outcome; remedies), for every v2 token of the run, from the manifest's
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
                {k: a.get(k) for k in ("name", "kind", "amount", "liquidity_per_day", "liquidity_unit", "stressed_haircut", "custodian")}
                for a in spec["reserve"]
            ],
            "custody_concentration": custody_concentration(spec, p0),
            "attestation_lag_days": spec.get("attestation_lag_days"),
            "primary_market": spec["primary"],
            "holder_behaviour": spec["redemption"],
            "premium_process": prem.get(sym, {"source": "spec assumption", "assumed": (spec.get("secondary") or {}).get("premium")}),
            "calibration_note": "reserve liquidity, haircuts, fees and behaviour are the spec file's documented assumptions; "
            "the premium process is fitted on real token and gold closes where marked 'calibrated'",
        }
        mc = tokens.get(sym, {}).get("scenarios", {}).get("mc_champion", {})
        r = rec_tokens.get(sym, {})
        boundary = tokens.get(sym, {}).get("reverse_stress_boundary") or {}
        outcome[sym] = {
            "monte_carlo_behavioural": {k: mc.get(k) for k in mc if k.startswith(("liquidity_coverage_", "p_liquidity_coverage_below_1_", "p_abs_premium_gt_", "depeg_", "redemption_"))},
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
            "monte_carlo": {"paths": st["mc_paths"], "horizon_days": st["mc_horizon_days"], "seed": st["mc_seed"], "coverage_horizons_days": [1, 5, 10, 30]},
            "redemption_wave": scen,
            "historical_replays": st["replay_windows"],
            "instant_shocks": st["shock_sizes"],
            "reverse_stress": {"redemption_shares": list(BOUNDARY_SHARES), "horizon_days": BOUNDARY_HORIZON_DAYS},
        },
        "historical_data": {
            "gold": manifest["data"],
            "token_premia": {sym: {k: e.get(k) for k in ("calibration_set", "source", "data", "fit_window", "test_window", "clock")} for sym, e in prem.items()},
            "supply_outflows": ls.get("supply_outflows") or {},
        },
        "outcome": outcome,
        "remedies": remedies,
    }


@task(name="read-manifest", cache_policy=NO_CACHE)
def read_manifest(run_id: str | None, settings: Settings) -> dict[str, Any]:
    """The manifest of ``run_id`` (default: the most recent run under ``report_url``)."""
    if run_id is None:
        fs, path = storage.filesystem(settings.report_url, settings)
        runs = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False) if fs.exists(f"{p}/manifest.json")) if fs.exists(path) else []
        if not runs:
            raise FileNotFoundError(f"no simulated run under {settings.report_url}: run the simulate flow first")
        run_id = runs[-1]
    return storage.read_json(storage.join(settings.report_url, run_id, "manifest.json"), settings)


@task(name="compute-summary", cache_policy=NO_CACHE)
def compute_summary(manifest: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Every figure of the report, keyed with units (see module docstring)."""
    levels = tuple(manifest["settings"]["var_levels"])
    horizons = tuple(manifest["settings"]["horizons_days"])
    p0 = float(manifest["data"]["last_usd_per_oz"])
    tokens: dict[str, dict[str, Any]] = {}
    for spec in manifest["token_specs"]:
        tokens[spec["symbol"]] = {"name": spec["name"], "kind": spec["kind"], "spec_version": spec["spec_version"], "scenarios": {}}
    scenario_rows = []
    for res in manifest["scenarios"]:
        sc = res["scenario"]
        table = storage.read_parquet(res["url"], settings)
        for symbol, g in table.groupby("token", sort=False):
            if sc["kind"] == "monte_carlo":
                m = distribution_metrics(g, levels, horizons)
            else:
                m = path_metrics(g.iloc[0], horizons)
            m["kind"] = sc["kind"]
            m["description"] = sc["description"]
            tokens[symbol]["scenarios"][sc["name"]] = m
            scenario_rows.append({"token": symbol, "scenario": sc["name"], "kind": sc["kind"], "holder_value_loss_30d_frac": loss_30d(m, sc["kind"]), "backing_ratio_min": m.get("backing_ratio_min", m.get("backing_ratio_min_q0.1"))})
    for symbol, t in tokens.items():
        ranked = sorted(
            ((name, loss_30d(m, m["kind"])) for name, m in t["scenarios"].items()),
            key=lambda x: -np.inf if np.isnan(x[1]) else -x[1],
        )
        t["worst_scenario"] = {"by": "holder_value_loss_30d_frac (Monte Carlo: 99% ES)", "scenario": ranked[0][0], "holder_value_loss_30d_frac": ranked[0][1]}
        spec = next(s for s in manifest["token_specs"] if s["symbol"] == symbol)
        t["reverse_stress"] = reverse_stress_summary(spec, p0, horizons)
        boundary = reverse_stress_boundary_summary(spec, p0)
        if boundary is not None:
            t["reverse_stress_boundary"] = boundary
    champion = manifest["champion"]
    return json_safe({
        "run_id": manifest["run_id"],
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "conventions": {
            "losses": "positive numbers; _frac = fraction of the day-0 value",
            "var_es": "empirical VaR and ES (mean beyond VaR) over simulated paths; levels 95/99 in key names",
            "horizons": "1d/10d/30d = trading days after day 0",
            "gold_price_unit": "USD per troy ounce (31.1034768 g)",
            "backing_ratio": "reserve value / token liabilities at NAV (gold token) or collateral value / stablecoin supply (CDP); 'inf' when no supply is left outstanding (all repaid)",
            "non_finite": "non-finite numbers are written as the strings 'inf', '-inf', 'nan'",
        },
        "data": manifest["data"],
        "start_gold_usd_per_oz": p0,
        "champion": {k: champion[k] for k in ("registered_model", "version", "candidate", "params", "innovations", "tail")},
        "var_backtest": {"holdout": champion.get("holdout_backtest"), "method": "1-day VaR of the champion fitted before the hold-out, parameters fixed over it; Kupiec (1995) POF, Christoffersen (1998) independence, Basel (1996) traffic light on the last 250 days"},
        "monte_carlo": {k: manifest["settings"][k] for k in ("mc_paths", "mc_horizon_days", "mc_seed", "mc_chunk_paths")},
        "tokens": tokens,
        "scenario_table": scenario_rows,
        "observed_token_premia": premium_stats(settings),
        "liquidity_stress": liquidity_stress_section(manifest, tokens),
    })
