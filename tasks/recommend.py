"""Prefect tasks of the liquidity stress test: calibrated premium parameters into the
reserve-backed token specs, the historical supply-outflow anchor, and the recommendations (cash buffer, redeem
fee, redemption gate), each measured by re-running the scenario (:mod:`models.recommend`).

Scenarios, clock and paths: docs/platform/liquidity-stress-task.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from goldstress.catalog import Catalog
from goldstress.execution import tune_allocator
from goldstress.io import storage
from goldstress.io.champion import stress_simulator
from goldstress.io.layouts import load_quirks
from goldstress.settings import Settings
from models.recommend import (
    PremiumNoise,
    cash_buffer_for_coverage,
    choose_setting,
    evaluate_settings,
    liabilities_usd,
    liquidity_stats,
    with_cash_buffer,
    with_primary,
    without_supply_revisions,
    worst_supply_falls,
)
from models.scenarios import calendar_day_paths, monte_carlo_chunks, to_price_paths
from models.token.spec import (
    ReserveBackedTokenSpec,
    parse_token_spec,
    with_redemption_share,
)


def _stress_horizon_trading_days(settings: Settings) -> int:
    """Trading days of gold the liquidity stress runs over: the longest reporting horizon, and at
    least the wave itself, so the wave's claims settle within it."""
    return max(settings.liquidity.wave_days, *settings.risk.horizons_days)


@task(name="apply-premium-calibration", cache_policy=NO_CACHE)
def apply_premium_calibration(specs: list[Any], settings: Settings) -> tuple[list[Any], dict[str, Any]]:
    """Replace the assumed premium process of each reserve-backed spec named in
    ``settings.calibration.premium_for`` by the full-sample fit of its calibration set
    (``<store_url>/calibration/<set>.json``, written by the ``calibrate`` flow).

    A fit is used only when its quality flags say it converged and reproduces the sample's
    mean, sd and lag-1 autocorrelation; otherwise the spec keeps its assumption. The spec's
    arbitrage band is the one the fit used (from its fees: :func:`tasks.calibrate.calibration_band`). Returns the specs (new
    objects where replaced) and, per symbol, the provenance: ``source`` (``"calibrated"`` or
    ``"spec assumption"``), the set, URL, windows, input hashes and out-of-sample scores, or
    the reason it was not used.
    """
    log = get_run_logger()
    out, provenance = [], {}
    for spec in specs:
        name = settings.calibration.premium_for.get(getattr(spec, "symbol", ""))
        if not isinstance(spec, ReserveBackedTokenSpec) or name is None:
            out.append(spec)
            continue
        url = Catalog.of(settings).calibration(name)
        entry: dict[str, Any] = {
            "source": "spec assumption",
            "calibration_set": name,
            "url": url,
            "assumed": spec.secondary.premium,
        }
        if not storage.exists(url, settings):
            entry["reason"] = "no calibration file (run the calibrate flow with data_dir set)"
        else:
            cal = storage.read_json(url, settings)
            entry["model_vs_history"] = cal.get("model_vs_history")
            entry["band"] = cal.get("band")
            q = cal.get("quality", {})
            if not (q.get("full_sample_converged") and q.get("reproduces_full_sample")):
                entry["reason"] = f"fit failed its quality checks: {q}"
            else:
                params = dict(cal["premium_process"])
                data = spec.model_dump(mode="json")
                data["secondary"]["premium"] = params
                spec = parse_token_spec(data, where=f"token spec {spec.symbol} with calibration {name}")
                entry.update(
                    source="calibrated",
                    premium_process=params,
                    full_sample=cal.get("full_sample"),
                    fit_window=cal.get("fit_window"),
                    test_window=cal.get("test_window"),
                    oos_scores=cal.get("oos_scores"),
                    clock=cal.get("clock"),
                    data=cal.get("data"),
                    mlflow=cal.get("mlflow"),
                    created_at=cal.get("created_at"),
                )
        if entry["source"] != "calibrated":
            log.warning("premium of %s: %s; the spec's assumed process is used", spec.symbol, entry["reason"])
        provenance[spec.symbol] = entry
        out.append(spec)
    return out, provenance


@task(name="supply-outflow-anchor", cache_policy=NO_CACHE)
def supply_outflow_anchor(settings: Settings) -> dict[str, Any]:
    """Worst 1/5/30-day falls of each token's circulating-supply proxy (market cap / price) in
    the files of ``settings.data.supply_proxy_files`` under ``data_dir``
    (:func:`models.recommend.worst_supply_falls`); tokens whose file is absent are skipped.
    A file without the named columns raises ValueError naming the file and column."""
    out: dict[str, Any] = {}
    if settings.data.data_dir is None:
        return out
    for symbol, (file_name, price_col) in settings.data.supply_proxy_files.items():
        path = Path(settings.data.data_dir) / file_name
        if not path.is_file():
            continue
        frame = pd.read_csv(path)
        for col in ("date", "market_cap_usd", price_col):
            if col not in frame.columns:
                raise ValueError(
                    f"{file_name}: no column '{col}' (needed for the supply proxy market_cap_usd / {price_col})"
                )
        supply = pd.Series(
            pd.to_numeric(frame["market_cap_usd"], errors="coerce").to_numpy()
            / pd.to_numeric(frame[price_col], errors="coerce").to_numpy(),
            index=pd.to_datetime(frame["date"], utc=True).dt.tz_localize(None),
        )
        revisions = load_quirks().for_file(file_name).supply_revision
        res = worst_supply_falls(without_supply_revisions(supply, [q.date for q in revisions]), (1, 5, 30))
        res.update(
            file=file_name,
            proxy=f"market_cap_usd / {price_col}",
            revisions_removed=[{"date": str(q.date), "reason": q.reason} for q in revisions],
        )
        out[symbol] = res
    return out


def _gold_paths(champion: Any, p0: float, n: int, horizon_days: int, settings: Settings) -> np.ndarray:
    """The first ``n`` Monte Carlo gold paths of the main run's model and seed, cut to
    ``horizon_days`` days: ``(n, horizon_days + 1)`` USD per oz, day 0 = ``p0``."""
    chunks, got = [], 0
    for chunk in monte_carlo_chunks(
        stress_simulator(champion, settings.monte_carlo.drift),
        n,
        settings.monte_carlo.horizon_days,
        settings.monte_carlo.seed,
        settings.monte_carlo.chunk_paths,
    ):
        chunks.append(to_price_paths(p0, chunk[:, :horizon_days]))
        got += chunk.shape[0]
        if got >= n:
            break
    return np.concatenate(chunks, axis=0)[:n]


def recommend_for_spec(
    spec: ReserveBackedTokenSpec,
    gold_in: np.ndarray,
    gold_out: np.ndarray,
    calendar: pd.DatetimeIndex,
    settings: Settings,
) -> dict[str, Any]:
    """All recommendations for one reserve-backed token (plain numerics; see docs/platform/liquidity-stress-task.md).

    ``gold_in``/``gold_out``: search and out-of-sample gold paths ``(n, C + 1)`` on the
    calendar-day clock ``calendar`` (:func:`models.scenarios.calendar_day_paths`); every run
    covers all ``C`` days. The buffer search's ``b = 0`` run is the wave grid's row of the current
    setting, and each distinct spec runs once out of sample (a zero buffer or the current setting
    chosen is the spec as is).
    """
    tune_allocator()
    share, wave_d = settings.liquidity.wave_share, settings.liquidity.wave_days
    conf, target, seed = settings.liquidity.confidence, settings.liquidity.target_coverage, settings.monte_carlo.seed
    h = len(calendar) - 1

    def wave(s: ReserveBackedTokenSpec) -> ReserveBackedTokenSpec:
        return with_redemption_share(s, share, wave_d)

    # the premium noise of each set of paths, drawn once and shared by all re-runs on them
    noise_in, noise_out = PremiumNoise(gold_in, seed), PremiumNoise(gold_out, seed)
    out_of_sample: dict[str, dict[str, float]] = {}

    def rerun_out(s: ReserveBackedTokenSpec) -> dict[str, float]:
        # one run per distinct spec: a zero buffer or the current setting chosen is the spec as is
        key = s.model_dump_json()
        if key not in out_of_sample:
            out_of_sample[key] = liquidity_stats(noise_out.run(s, h, calendar), h, conf, target)
        return dict(out_of_sample[key])

    fees = sorted({*settings.liquidity.recommend_redeem_fees, spec.primary.redeem_fee})
    current_lim = spec.primary.redemption_limit_share_per_day
    limits = [None] + sorted(
        {x for x in (*settings.liquidity.recommend_redemption_limits, current_lim) if x is not None}, reverse=True
    )
    grid: dict[str, Any] = dict(
        redeem_fees=fees,
        redemption_limits=limits,
        horizon_days=h,
        confidence=conf,
        target=target,
        seed=seed,
        calendar=calendar,
        noise=noise_in,
    )
    grid_wave = evaluate_settings(spec, gold_in, transform=wave, **grid)
    grid_beh = evaluate_settings(spec, gold_in, **grid)
    chosen = choose_setting(grid_wave, grid_beh, current=(spec.primary.redeem_fee, current_lim))

    def find(rows: list[Any], fee: float, lim: float | None) -> dict[str, Any]:
        return next(r.to_dict() for r in rows if r.redeem_fee == fee and r.redemption_limit_share_per_day == lim)

    # the wave row of the current setting is the spec as is under the wave: the search's b = 0
    current_wave = next(
        r
        for r in grid_wave
        if r.redeem_fee == spec.primary.redeem_fee and r.redemption_limit_share_per_day == current_lim
    )
    buf = cash_buffer_for_coverage(
        wave(spec),
        gold_in,
        horizon_days=h,
        confidence=conf,
        target=target,
        seed=seed,
        calendar=calendar,
        before=dict(current_wave.stats),
        noise=noise_in,
    )
    b = buf.buffer_usd if buf.reachable else buf.max_buffer_usd
    buffer = buf.to_dict()
    buffer["out_of_sample"] = {
        "before": rerun_out(wave(spec)),
        "after": rerun_out(wave(with_cash_buffer(spec, b))),
    }

    chosen_spec = with_primary(
        spec, redeem_fee=chosen.redeem_fee, redemption_limit_share_per_day=chosen.redemption_limit_share_per_day
    )
    return {
        "liabilities_usd": liabilities_usd(spec, float(gold_in[0, 0])),
        "cash_buffer": buffer,
        "settings_grid": {
            "wave": [r.to_dict() for r in grid_wave],
            "behavioural": [r.to_dict() for r in grid_beh],
        },
        "current_setting": {
            "redeem_fee": spec.primary.redeem_fee,
            "redemption_limit_share_per_day": current_lim,
            "wave": find(grid_wave, spec.primary.redeem_fee, current_lim),
            "behavioural": find(grid_beh, spec.primary.redeem_fee, current_lim),
        },
        "recommended_setting": {
            "redeem_fee": chosen.redeem_fee,
            "redemption_limit_share_per_day": chosen.redemption_limit_share_per_day,
            "rule": "meets the coverage target under the wave; then fewest refused requests (MiCA Art. 39(1) right of redemption), "
            "fewest days off the peg and shallowest depeg under the behavioural Monte Carlo (differences under 0.5 pp of days and "
            "0.1% of depth count as ties), closest to the current setting, lowest fee, loosest gate",
            "wave": chosen.to_dict(),
            "behavioural": find(grid_beh, chosen.redeem_fee, chosen.redemption_limit_share_per_day),
            "wave_out_of_sample": rerun_out(wave(chosen_spec)),
        },
    }


def recommend_scenario(settings: Settings) -> dict[str, Any]:
    """What the recommendations' scenario is, for the summary: the wave, its horizons in trading
    days, the coverage target and confidence, and the search and out-of-sample path counts
    (``settings.liquidity.recommend_paths`` each)."""
    n = settings.liquidity.recommend_paths
    return {
        "wave_share_of_supply": settings.liquidity.wave_share,
        "wave_days": settings.liquidity.wave_days,
        "wave_basis": settings.liquidity.wave_basis,
        "wave_horizon_trading_days": _stress_horizon_trading_days(settings),
        "behavioural_horizon_trading_days": max(settings.risk.horizons_days),
        "confidence": settings.liquidity.confidence,
        "target_coverage": settings.liquidity.target_coverage,
        "search_paths": n,
        "out_of_sample_paths": n,
        "gold_model": "registered champion, Monte Carlo seed settings.monte_carlo.seed (the main run's first paths)",
        "coverage": "min over the horizon's days of one open day's liquid resources (after stressed haircuts) / all waiting claims + opex payable",
    }


def recommend_inputs(
    champion: Any, p0_usd_per_oz: float, first_day: str, settings: Settings
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """The inputs every token's recommendations share: ``(scenario, gold_in, gold_out, calendar)``.

    ``gold_in`` and ``gold_out`` are the first and the next ``n = settings.liquidity.recommend_paths``
    Monte Carlo gold paths of the main run (``champion``, seed ``settings.monte_carlo.seed``, day 0
    = ``p0_usd_per_oz`` USD per troy ounce), cut to :func:`_stress_horizon_trading_days` trading
    days and put on the calendar-day clock from ``first_day`` (the date of the last gold price):
    arrays ``(n, C + 1)`` over the ``C + 1`` dates of ``calendar``, so weekends close the primary
    market of each spec's ``market_hours`` while holders keep asking. ``scenario`` is
    :func:`recommend_scenario` with the clock added. Raises ValueError for a ``first_day`` that is
    not a date (:func:`models.scenarios.calendar_day_paths`).
    """
    n = settings.liquidity.recommend_paths
    horizon = _stress_horizon_trading_days(settings)
    gold, calendar = calendar_day_paths(_gold_paths(champion, p0_usd_per_oz, 2 * n, horizon, settings), first_day)
    return _scenario_on_clock(settings, calendar), gold[:n], gold[n:], calendar


def _scenario_on_clock(settings: Settings, calendar: pd.DatetimeIndex) -> dict[str, Any]:
    """:func:`recommend_scenario` with the calendar-day clock of the recommendations' paths."""
    scenario = recommend_scenario(settings)
    scenario.update(
        clock="calendar days: holders and the AMM act every day; gold sales, payments and the primary market on the open days of each spec's market_hours",
        first_day=str(calendar[0].date()),
        horizon_calendar_days=len(calendar) - 1,
    )
    return scenario


def recommend_result(scenario: dict[str, Any], tokens: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The recommendations as the run records them: ``{"scenario": scenario, "tokens": {symbol:
    recommend_token result}}``, tokens in the order given."""
    return {"scenario": scenario, "tokens": dict(tokens)}


def _log_buffer(symbol: str, result: dict[str, Any]) -> None:
    cb = result["cash_buffer"]
    try:
        log: Any = get_run_logger()
    except MissingContextError:  # called outside a Prefect run (a benchmark, a notebook)
        log = logging.getLogger(__name__)
    log.info(
        "%s: cash buffer %s USD (reachable %s) for coverage >= %.0f%% at %.0f%%",
        symbol,
        cb["buffer_usd"],
        cb["reachable"],
        100 * cb["target"],
        100 * cb["confidence"],
    )


@task(name="recommend-token", cache_policy=NO_CACHE)
def recommend_token(
    spec: ReserveBackedTokenSpec,
    gold_in: np.ndarray,
    gold_out: np.ndarray,
    calendar: pd.DatetimeIndex,
    settings: Settings,
) -> dict[str, Any]:
    """One reserve-backed token's recommendations (:func:`recommend_for_spec`) as a task of its
    own, so a flow can submit one per token to a task runner; the inputs are those of
    :func:`recommend_inputs` (all picklable). Logs the cash buffer found."""
    result = recommend_for_spec(spec, gold_in, gold_out, calendar, settings)
    _log_buffer(spec.symbol, result)
    return result


@task(name="recommend", cache_policy=NO_CACHE)
def recommend(
    specs: list[Any], champion: Any, p0_usd_per_oz: float, first_day: str, settings: Settings
) -> dict[str, Any]:
    """Recommendations for every reserve-backed token spec (a CDP has no reserve liquidity to tune),
    one after the other in this task: :func:`recommend_for_spec` on the inputs of
    :func:`recommend_inputs`, assembled by :func:`recommend_result`. Returns ``{"scenario": {...},
    "tokens": {symbol: ...}}`` (empty ``tokens``, and no gold paths drawn, without reserve-backed
    specs)."""
    backed = [s for s in specs if isinstance(s, ReserveBackedTokenSpec)]
    if not backed:
        return recommend_result(recommend_scenario(settings), {})
    scenario, gold_in, gold_out, calendar = recommend_inputs(champion, p0_usd_per_oz, first_day, settings)
    tokens = {}
    for spec in backed:
        tokens[spec.symbol] = recommend_for_spec(spec, gold_in, gold_out, calendar, settings)
        _log_buffer(spec.symbol, tokens[spec.symbol])
    return recommend_result(scenario, tokens)


@task(name="recommend-token-from-champion", cache_policy=NO_CACHE)
def recommend_token_for_champion(
    spec: ReserveBackedTokenSpec, champion: Any, p0_usd_per_oz: float, first_day: str, settings: Settings
) -> dict[str, Any]:
    """One reserve-backed token's recommendations from the champion itself: its gold paths
    (:func:`recommend_inputs`, drawn again in the task: 40,000 paths take about 0.4 s, less than
    shipping them to a worker) then :func:`recommend_for_spec`. The same result as
    :func:`recommend_token` on :func:`recommend_inputs`. Logs the cash buffer found."""
    _, gold_in, gold_out, calendar = recommend_inputs(champion, p0_usd_per_oz, first_day, settings)
    return recommend_token.fn(spec, gold_in, gold_out, calendar, settings)


def submit_recommendations(
    specs: list[Any], champion: Any, p0_usd_per_oz: float, first_day: str, settings: Settings
) -> Callable[[], dict[str, Any]]:
    """One :func:`recommend_token_for_champion` task per reserve-backed spec on the flow's task
    runner, queued now on Dask workers or the run's threads (:func:`goldstress.execution.results_in_order`,
    all ahead: they are the run's longest tasks, so they start first and other work fills the
    workers around them); with one thread they run one after the other here when the result
    is asked for. Returns a function that waits for them and returns what
    :func:`recommend` returns. Must be called inside a flow run."""
    from goldstress.execution import results_in_order

    backed = [s for s in specs if isinstance(s, ReserveBackedTokenSpec)]
    calls = [(spec, champion, p0_usd_per_oz, first_day, settings) for spec in backed]
    results = results_in_order(recommend_token_for_champion, calls, ahead=len(calls))

    def collect() -> dict[str, Any]:
        if not backed:
            return recommend_result(recommend_scenario(settings), {})
        # the clock of recommend_inputs, without drawing its gold paths here (the tasks drew them)
        unit = np.ones((1, _stress_horizon_trading_days(settings) + 1))
        scenario = _scenario_on_clock(settings, calendar_day_paths(unit, first_day)[1])
        return recommend_result(scenario, {spec.symbol: out for spec, out in zip(backed, results, strict=True)})

    return collect
