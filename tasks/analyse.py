"""Analysis tasks: read a simulated run's manifest and tables and gather every figure of the
report into one ``summary`` dict (-> summary.json); the figures are computed by
:mod:`models.metrics`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.catalog import Catalog
from goldstress.io import storage
from goldstress.io.pathtable import token_views
from goldstress.records import Manifest, Summary, json_safe
from goldstress.settings import Settings
from models.metrics import (
    distribution_metrics,
    liquidity_stress_section,
    observed_premia,
    path_metrics,
    reverse_stress_boundary_summary,
    reverse_stress_summary,
    scenario_table_row,
    worst_scenario,
)
from models.verdict import token_verdict


def _observed_premia(settings: Settings) -> dict[str, Any]:
    """:func:`models.metrics.observed_premia` of the curated gold and token tables present."""
    from goldstress.io.validation import load_curated

    try:
        gold = load_curated("gold", settings)
    except Exception as exc:  # no curated gold: nothing to compare against
        return {"error": str(exc)}
    tokens = {}
    for symbol, oz in settings.data.token_oz_per_token.items():
        try:
            tokens[symbol.upper()] = (load_curated(f"token_{symbol}", settings).set_index("date")["close_usd"], oz)
        except Exception:
            continue
    return observed_premia(gold.set_index("date")["usd_per_oz"], tokens)


@task(name="read-manifest", cache_policy=NO_CACHE)
def read_manifest(run_id: str | None, settings: Settings) -> Manifest:
    """The manifest of ``run_id`` (default: the most recent run under ``report_url``)."""
    if run_id is None:
        fs, path = storage.filesystem(settings.storage.report_url, settings)
        runs = (
            sorted(p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False) if fs.exists(f"{p}/manifest.json"))
            if fs.exists(path)
            else []
        )
        if not runs:
            raise FileNotFoundError(
                f"no simulated run under {settings.storage.report_url}: run the simulate flow first"
            )
        run_id = runs[-1]
    return Manifest.model_validate(storage.read_json(Catalog.of(settings).run_file(run_id, "manifest.json"), settings))


def _token_tables(url: str, kind: str, symbols: list[str], settings: Settings) -> Iterator[tuple[str, Any]]:
    """``(symbol, rows)`` of a scenario's per-path table in ``symbols`` order. A Monte Carlo table
    is read one token and a few columns at a time (:func:`goldstress.io.pathtable.token_views`),
    so memory is some columns of one token's paths, not the table; a replay or shock table (a
    row per token) is read at once."""
    if kind != "monte_carlo":
        table = storage.read_parquet(url, settings)
        for symbol, g in table.groupby("token", sort=False):
            yield str(symbol), g
        return
    with token_views(url, settings) as views:
        for symbol in symbols:
            if symbol in views:
                yield symbol, views.pop(symbol)


@task(name="compute-summary", cache_policy=NO_CACHE)
def compute_summary(manifest: Manifest, settings: Settings, weekend: dict[str, Any] | None = None) -> Summary:
    """Every figure of the report, keyed with units (see module docstring); ``weekend`` is the
    section measured by :func:`tasks.weekend.measure_weekend` (empty when not given)."""
    levels = tuple(manifest.settings.var_levels)
    horizons = tuple(manifest.settings.horizons_days)
    p0 = float(manifest.data["last_usd_per_oz"])
    tokens: dict[str, dict[str, Any]] = {}
    for spec in manifest.token_specs:
        tokens[spec["symbol"]] = {
            "name": spec["name"],
            "kind": spec["kind"],
            "spec_version": spec["spec_version"],
            "scenarios": {},
        }
    scenario_rows = []
    for res in manifest.scenarios:
        sc = res.scenario
        for symbol, g in _token_tables(res.url, sc["kind"], list(tokens), settings):
            if sc["kind"] == "monte_carlo":
                m = distribution_metrics(g, levels, horizons)
            else:
                m = path_metrics(g.iloc[0], horizons)
            m["kind"] = sc["kind"]
            m["description"] = sc["description"]
            if sc.get("episode"):
                m["episode"] = sc["episode"]
            tokens[symbol]["scenarios"][sc["name"]] = m
            scenario_rows.append({"token": symbol, "scenario": sc["name"], **scenario_table_row(m, levels)})
    for symbol, t in tokens.items():
        t["worst_scenario"] = worst_scenario(t["scenarios"], levels)
        spec = next(s for s in manifest.token_specs if s["symbol"] == symbol)
        t["reverse_stress"] = reverse_stress_summary(spec, p0, horizons)
        boundary = reverse_stress_boundary_summary(spec, p0)
        if boundary is not None:
            t["reverse_stress_boundary"] = boundary
    champion = manifest.champion
    liquidity = liquidity_stress_section(manifest.as_json(), tokens)
    for spec in manifest.token_specs:
        tokens[spec["symbol"]]["verdict"] = _verdict(spec, tokens[spec["symbol"]], liquidity)
    return Summary(
        **json_safe(
            {
                "run_id": manifest.run_id,
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "conventions": {
                    "losses": "positive numbers; _frac = fraction of the day-0 value",
                    "var_es": "empirical VaR and ES (mean beyond VaR) over simulated paths; levels 95/99 in key names",
                    "horizons": "1d/10d/30d = trading days after day 0",
                    "clock": "every scenario runs on the calendar-day clock: gold closes on business days (a replay on its own dates) carried over weekends and holidays, tokens, holders and the AMM acting every day; a horizon is read on its trading day; peg day counts (longest run, recovery, share of days) are calendar days",
                    "premium": "premium to NAV from the (calibrated) premium process: the arbitrage band pulls it back on open days, nothing clips it (see model_vs_history)",
                    "gold_price_unit": "USD per troy ounce (31.1034768 g)",
                    "backing_ratio": "reserve value / token liabilities at NAV (gold token) or collateral value / stablecoin supply (CDP); 'inf' when no supply is left outstanding (all repaid)",
                    "non_finite": "non-finite numbers are written as the strings 'inf', '-inf', 'nan'",
                    "unbacked": "unbacked_frac_of_day0_liabilities = bad debt at the end (USD) / liabilities at day 0 (USD): for the CDP the share of the day-0 supply left without collateral; holder_loss_frac is per coin still outstanding",
                    "cdp_liquidation_penalty": "collected by the protocol; reported, not counted as backing and not used to absorb bad debt",
                    "reserve_per_token": "reserve_usd_per_token = reserve value (net of senior claims) / tokens outstanding, USD per token; reserve_per_token_loss_frac and its VaR/ES measure its fall from day 0. A redemption paid at the backing value is not a loss: the tokens redeemed and the value paid out of the reserve are reported apart (redeemed_frac_of_day0_supply, redemption_outflow_usd, redemption_outflow_frac_of_day0_liabilities); reserve_value_usd is the whole reserve",
                    "fees": "mint and redeem fees are the issuer's revenue (issuer_fee_revenue_usd), outside the segregated reserve, unless the spec sets primary.fees_to_reserve (reserve_fee_income_usd)",
                    "whole_window": "_end = the last day of the scenario's window (Monte Carlo horizon, replay episode, shock window); max_drawdown = peak-to-trough fall over the window, a fraction of the running peak; backing_ratio_min = lowest backing ratio over the window",
                    "scenario_table": "single-path scenarios: their realised figures; Monte Carlo rows: the expected shortfall at the highest VaR level of each loss figure and the 0.1% quantile of the minimum backing ratio",
                },
                "data": manifest.data,
                "start_gold_usd_per_oz": p0,
                "champion": champion.model_dump(
                    mode="json", include={"registered_model", "version", "candidate", "params", "innovations", "tail"}
                ),
                "var_backtest": champion.var_backtest_summary(),
                "monte_carlo": manifest.settings.model_dump(
                    include={"mc_paths", "mc_horizon_days", "mc_seed", "mc_chunk_paths", "mc_drift"}
                ),
                "tokens": tokens,
                "scenario_table": scenario_rows,
                "observed_token_premia": _observed_premia(settings),
                "liquidity_stress": liquidity,
                "weekend": weekend or {},
                "model_vs_history": _model_vs_history(manifest.liquidity_stress),
            }
        )
    )


def _verdict(spec: dict[str, Any], t: dict[str, Any], liquidity: dict[str, Any]) -> dict[str, Any]:
    """:func:`models.verdict.token_verdict` of one token: its Monte Carlo figures, its spec's
    ``risk_tolerance``, its worst scenario and, for a reserve-backed token, the liquidity stress
    test's redemption wave and cash-buffer remedy."""
    symbol = spec["symbol"]
    outcome = ((liquidity.get("outcome") or {}).get(symbol) or {}).get("redemption_wave_without_remedy")
    wave = None
    if outcome is not None:
        wave = {**((liquidity.get("scenarios_and_horizons") or {}).get("redemption_wave") or {}), **outcome}
    return token_verdict(
        spec["kind"],
        t["scenarios"].get("mc_champion", {}),
        spec.get("risk_tolerance"),
        worst=t.get("worst_scenario"),
        scenarios=t["scenarios"],
        wave=wave,
        remedies=(liquidity.get("remedies") or {}).get(symbol),
    )


def _model_vs_history(liquidity_stress: dict[str, Any]) -> dict[str, Any]:
    """Per token with a premium calibration: where its premium process comes from and the
    model-vs-history record of its calibration set (``models.premium_validation``)."""
    out: dict[str, Any] = {}
    for symbol, e in (liquidity_stress.get("premium_calibration") or {}).items():
        record = e.get("model_vs_history") or {
            "status": "not validated",
            "reason": e.get("reason", "no calibration file"),
        }
        out[symbol] = {
            "calibration_set": e.get("calibration_set"),
            "premium_process_source": e.get("source"),
            "band": e.get("band"),
            **record,
        }
    return out
