"""End-to-end tests of the ``stress_test`` flow on synthetic data, through a real Prefect API
(Prefect's test harness), a real MLflow SQLite store and local fsspec storage.

One completed run (module fixture ``run``) is shared by every test that only reads its outputs.
Every asserted value is a closed form or an independent computation in this file:

- shocks and replays through a frictionless, fully gold-backed test token (``FGT``: no fees, no
  opex, no flows, no cash) whose holder value is exactly the gold value, and a one-tranche CDP
  test stablecoin (``TCDP``) whose liquidation and bad debt follow the rule documented in
  ``models/token/cdp.py`` (liquidate when ``CR_t < L``; bad debt ``max(0, D - Q P_t (1 - h))``);
- the Monte Carlo 1-day 99% VaR of FGT against the champion's own next-day return distribution,
  via a distribution-free order-statistic confidence interval (binomial, 99.9%);
- VaR/ES recomputed from the Parquet results with the Acerbi & Tasche (2002) estimator;
- the training data fingerprint recomputed with hashlib from the curated table;
- arch's information criteria ``AIC = -2 LL + 2k``, ``BIC = -2 LL + k ln n``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from goldstress.settings import RunOptions, ScenarioSettings, get_settings

pytestmark = pytest.mark.slow

MC_PATHS = 2000
"""Monte Carlo paths of the module run: enough for a binomial band of about +-0.8 percentage
points around the 1% tail at 99.9% confidence; 2000 x 40 days simulate in well under a second."""

FRICTIONLESS_TOML = """
spec_version = 2
kind = "gold_backed"
name = "Frictionless test gold token"
symbol = "FGT"
grams_per_token = 1.0
supply_tokens = 1000000.0
opex_usd_per_year = 0.0

[[reserve]]
name = "cash"
kind = "usd_cash"
amount = 0.0
liquidity_per_day = 1.0
stressed_haircut = 0.0

[[reserve]]
name = "bars"
kind = "allocated_gold"
amount = 1000000.0
liquidity_per_day = 1.0
stressed_haircut = 0.0

[primary]
mint_fee = 0.0
redeem_fee = 0.0
market_hours = "always"

[secondary]
# no premium process and no AMM pool: with no flows the premium stays 0 (the token trades at NAV)

[redemption]
base_rate_per_day = 0.0
"""

CDP_DEBT_USD = 1_000_000.0
CDP_CR = 1.5
CDP_L = 1.2
CDP_HAIRCUT = 0.1
CDP_PENALTY = 0.13
CDP_TOML = f"""
spec_version = 2
kind = "gold_cdp"
name = "One-tranche test CDP stablecoin"
symbol = "TCDP"
supply_usd = {CDP_DEBT_USD}
liquidation_ratio = {CDP_L}
liquidation_penalty = {CDP_PENALTY}
liquidation_haircut = {CDP_HAIRCUT}

[[tranches]]
debt_share = 1.0
collateral_ratio = {CDP_CR}
"""


RECOMMEND_PATHS = 300
SUPPLY_DAYS, SUPPLY_STEP_DAY, SUPPLY_STEP = 60, 25, -0.12
XAUT_PREMIUM = {
    "mean": -0.001,
    "phi": 0.6,
    "sigma": 0.002,
    "df": 5.0,
    "jump_intensity_per_day": 0.01,
    "jump_mean": -0.004,
    "jump_sd": 0.006,
    "jump_drawdown_sensitivity": 0.0,
    "band_pull": 0.0,
}
XAUT_CALIBRATION = {
    "calibration_set": "xaut",
    "token": "xaut",
    "premium_process": XAUT_PREMIUM,
    "quality": {
        "fit_window_converged": True,
        "full_sample_converged": True,
        "reproduces_fit_window": True,
        "reproduces_full_sample": True,
    },
    "full_sample": {"first_date": "2022-05-14", "last_date": "2026-03-27", "n_obs": 900},
    "fit_window": {"first_date": "2022-05-14", "last_date": "2024-06-28"},
    "test_window": {"first_date": "2024-07-01"},
    "oos_scores": {"coverage_95": 0.95},
    "clock": {"gold": "test clock"},
    "data": {},
    "created_at": "2026-11-21T00:00:00+00:00",
}


@pytest.fixture(scope="module")
def run(prefect_api, tmp_path_factory, flowkit) -> SimpleNamespace:
    """One full ``stress_test`` on synthetic data with FGT, TCDP and the repository's GRAM spec."""
    from flows.stress_test import stress_test

    root = tmp_path_factory.mktemp("pipeline")
    data_dir = root / "data"
    (root / "fgt.toml").write_text(FRICTIONLESS_TOML, encoding="utf-8")
    (root / "tcdp.toml").write_text(CDP_TOML, encoding="utf-8")
    gram = Path(__file__).resolve().parents[2] / "specs" / "gram.toml"
    xaut = next(p for p in ScenarioSettings.model_fields["token_specs"].default if Path(p).stem == "xaut")
    # a calibration file for XAUT as the calibrate flow writes it (quality flags passed), and a
    # supply proxy with one known step fall, for the liquidity stress section
    cal_dir = root / "store" / "calibration"
    cal_dir.mkdir(parents=True)
    (cal_dir / "xaut.json").write_text(json.dumps(XAUT_CALIBRATION), encoding="utf-8")
    data_dir.mkdir(parents=True)
    supply = np.where(np.arange(SUPPLY_DAYS) < SUPPLY_STEP_DAY, 1_000.0, 1_000.0 * (1 + SUPPLY_STEP))
    price = np.linspace(1_800.0, 1_900.0, SUPPLY_DAYS)
    pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=SUPPLY_DAYS, freq="D").strftime("%Y-%m-%d"),
            "price_usd": price,
            "market_cap_usd": supply * price,
            "total_volume_usd": 1.0,
        }
    ).to_csv(data_dir / "supply_proxy.csv", index=False)
    env = {
        **flowkit.isolated_env(root),
        **flowkit.write_synthetic_data(data_dir),
        "GOLDSTRESS_DATA_DIR": str(data_dir),
        "GOLDSTRESS_MC_PATHS": str(MC_PATHS),
        "GOLDSTRESS_MC_CHUNK_PATHS": "500",
        "GOLDSTRESS_TOKEN_SPECS": json.dumps([str(root / "fgt.toml"), str(root / "tcdp.toml"), str(gram), str(xaut)]),
        "GOLDSTRESS_LIQUIDITY_STRESS_RECOMMEND_PATHS": str(RECOMMEND_PATHS),
        "GOLDSTRESS_SUPPLY_PROXY_FILES": json.dumps({"XAUT": ["supply_proxy.csv", "price_usd"]}),
    }
    with flowkit.env(env):
        settings = get_settings()
        outputs = stress_test(options=RunOptions(data_dir=str(data_dir)))
        summary = json.loads(Path(outputs["summary_json"]).read_text(encoding="utf-8"))
        yield SimpleNamespace(
            root=root,
            data_dir=data_dir,
            settings=settings,
            outputs=outputs,
            summary=summary,
            run_dir=Path(settings.storage.report_url) / outputs["run_id"],
            symbols=("FGT", "TCDP", "GRAM"),
        )


def results(run: SimpleNamespace, scenario: str) -> pd.DataFrame:
    """The Parquet results of one scenario of the module run."""
    return pd.read_parquet(run.run_dir / "results" / f"{scenario}.parquet")


def gold_csv(data_dir: Path) -> pd.Series:
    """The synthetic gold PM series read straight from the CSV (date -> USD per oz)."""
    df = pd.read_csv(data_dir / "gold_pm.csv")
    return pd.Series(df["usd_pm"].to_numpy(float), index=pd.to_datetime(df["date"]))


def same(a, b) -> bool:
    """Equality of two JSON-like trees, NaN equal to NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# --------------------------------------------------------------------------------------------
# outputs, report, summary
# --------------------------------------------------------------------------------------------
def test_outputs_exist_and_report_is_self_contained(run):
    out = run.outputs
    for key in ("report_html", "summary_json", "manifest_json"):
        assert Path(out[key]).is_file(), key
        assert Path(out[key]).parent == run.run_dir
    assert out["results_parquet"] and all(Path(u).is_file() for u in out["results_parquet"])
    page = Path(out["report_html"]).read_text(encoding="utf-8")
    assert "<script" not in page, "the report runs no script (figures are inline SVG, readable offline)"
    assert "<svg" in page and 'id="verdict-table"' in page
    for symbol in run.symbols:
        assert symbol in page


def test_champion_windows_selection_backtest_and_both_fits(run):
    """The summary's windows are consecutive slices of the curated returns (dates read off the
    curated table), the champion is the selection rule applied to the reported validation
    scores, the backtested parameters equal an independent fit on the returns before the
    hold-out, the full-sample parameters (those of the Monte Carlo) an independent fit on all,
    and the report shows the windows and both parameter sets."""
    from goldstress.report import _fmt
    from models.volatility import fit_garch

    settings = run.settings
    curated = pd.read_parquet(Path(settings.storage.store_url) / "curated" / "gold.parquet")
    dates = pd.to_datetime(curated["date"]).iloc[1:]  # a return is dated by its later price
    r = np.diff(np.log(curated["usd_per_oz"].to_numpy(float)))
    keep = (dates >= pd.Timestamp(settings.training.vol_train_start, tz="UTC")).to_numpy()
    r, day = r[keep], [d.date().isoformat() for d in dates[keep]]
    n, v, h = r.size, settings.training.champion_validation_days, settings.training.backtest_holdout_days
    vb = run.summary["var_backtest"]
    assert vb["windows"] == {
        "fit": {"first_date": day[0], "last_date": day[n - v - h - 1], "n_returns": n - v - h},
        "validation": {"first_date": day[n - v - h], "last_date": day[n - h - 1], "n_returns": v},
        "holdout": {"first_date": day[n - h], "last_date": day[-1], "n_returns": h},
    }
    assert all(bt["n_obs"] == h for bt in vb["holdout"].values())

    scores = vb["selection"]["candidates"]
    assert {c["candidate"] for c in scores} == {"garch_t", "gjr_t", "garch_fhs", "gjr_fhs"}
    pool = [c for c in scores if c["passes_kupiec"]] or scores
    best = min(pool, key=lambda c: c["score"])["candidate"]
    assert vb["selection"]["champion"] == best == run.summary["champion"]["candidate"]
    assert all(bt["n_obs"] == v for c in scores for bt in c["backtests"].values())

    kind = best.split("_")[0]
    params = vb["parameters"]
    pre, full = fit_garch(r[: n - h], kind=kind), fit_garch(r, kind=kind)
    assert params["backtested"]["window"] == {"first_date": day[0], "last_date": day[n - h - 1], "n_returns": n - h}
    assert params["full_sample"]["window"] == {"first_date": day[0], "last_date": day[-1], "n_returns": n}
    assert params["backtested"]["params"] == pytest.approx(pre.params, rel=1e-9)
    assert params["full_sample"]["params"] == pytest.approx(full.params, rel=1e-9)
    assert run.summary["champion"]["params"] == params["full_sample"]["params"]
    assert params["backtested"]["params"] != params["full_sample"]["params"]

    page = Path(run.outputs["report_html"]).read_text(encoding="utf-8")
    for w in vb["windows"].values():
        assert f"{w['first_date']} .. {w['last_date']} ({w['n_returns']:,} returns)" in page
    for name in pre.params:
        row = f'<tr><td class="l">{name}</td><td>{_fmt(params["backtested"]["params"][name])}</td><td>{_fmt(params["full_sample"]["params"][name])}</td></tr>'
        assert row in page, name


def test_summary_var_es_per_token_level_and_horizon(run):
    mc = results(run, "mc_champion")
    for symbol in run.symbols:
        m = run.summary["tokens"][symbol]["scenarios"]["mc_champion"]
        g = mc[mc["token"] == symbol]
        assert len(g) == MC_PATHS == m["n_paths"]
        whos = (("holder_value", "holder_loss_frac"), ("reserve_per_token", "reserve_per_token_loss_frac"))
        for (who, col), h in itertools.product(whos, (1, 10, 30)):
            losses = g[f"{col}_{h}d"].to_numpy()
            losses = np.sort(losses[~np.isnan(losses)])  # reserve per token: paths with tokens left
            n = losses.size
            for level, tag in ((0.95, "95"), (0.99, "99")):
                var, es = m[f"{who}_var_{tag}_{h}d_frac"], m[f"{who}_es_{tag}_{h}d_frac"]
                # Acerbi & Tasche (2002): VaR = l_(c), c = ceil(n level);
                # ES = (sum_{j>c} l_(j) + (c - n level) l_(c)) / (n (1 - level))
                c = math.ceil(round(n * level, 9))
                assert var == pytest.approx(losses[c - 1], abs=1e-15)
                es_ref = (losses[c:].sum() + (c - n * level) * losses[c - 1]) / (n * (1 - level))
                assert es == pytest.approx(es_ref, rel=1e-9, abs=1e-15)
                assert es >= var - 1e-15
            assert m[f"{who}_var_99_{h}d_frac"] >= m[f"{who}_var_95_{h}d_frac"]
            assert m[f"{who}_es_99_{h}d_frac"] >= m[f"{who}_es_95_{h}d_frac"]
        for p in ("p_backing_below_1", "p_liquidation"):
            assert 0.0 <= m[p] <= 1.0
        assert m["p_liquidation"] == pytest.approx(g["liquidated"].mean())
        assert m["p_backing_below_1"] == pytest.approx((g["backing_ratio_min"] < 1.0).mean())


# --------------------------------------------------------------------------------------------
# closed forms on deterministic scenarios
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [-0.10, -0.20, -0.30, -0.40])
def test_shock_moves_gold_by_exactly_the_shock(run, size):
    name = f"shock_{round(size * 100):+d}pct"
    for symbol in run.symbols:
        m = run.summary["tokens"][symbol]["scenarios"][name]
        for h in (1, 10, 30):
            assert m[f"gold_log_return_{h}d"] == pytest.approx(math.log(1 + size), abs=1e-12)
        assert m["gold_max_drawdown"] == pytest.approx(-size, abs=1e-12)
        assert m["horizon_days"] == run.settings.scenarios.shock_horizon_days


@pytest.mark.parametrize("size", [-0.10, -0.20, -0.30, -0.40])
def test_frictionless_gold_token_loses_exactly_the_gold_move(run, size):
    m = run.summary["tokens"]["FGT"]["scenarios"][f"shock_{round(size * 100):+d}pct"]
    for h in (1, 10, 30):
        assert m[f"holder_loss_frac_{h}d"] == pytest.approx(-size, abs=1e-12)
        assert m[f"reserve_per_token_loss_frac_{h}d"] == pytest.approx(-size, abs=1e-12)
        assert m[f"backing_ratio_{h}d"] == pytest.approx(1.0, abs=1e-12)
    assert m["backing_ratio_min"] == pytest.approx(1.0, abs=1e-12)
    # over the whole window: the shock is the only fall
    for key in ("holder_loss_frac_end", "holder_max_drawdown_frac", "reserve_per_token_max_drawdown_frac"):
        assert m[key] == pytest.approx(-size, abs=1e-12), key
    assert m["backing_below_1"] is False and m["liquidated"] is False and m["bad_debt_usd"] == 0.0


@pytest.mark.parametrize("size", [-0.10, -0.20, -0.30, -0.40])
def test_cdp_shock_liquidation_and_bad_debt_follow_the_documented_rule(run, size):
    """models/token/cdp.py: liquidate when ``CR_t = CR (1 + s) < L``; proceeds ``G = Q P_1 (1 - h)``
    with ``Q P_1 = CR D (1 + s)``; bad debt ``max(0, D - G)`` stays in circulation while the
    tranche's repaid debt is burned, so with one tranche the outstanding supply is the bad debt
    and holder value ``max(0, 1 - bad / supply)`` is 0 whenever there is bad debt."""
    m = run.summary["tokens"]["TCDP"]["scenarios"][f"shock_{round(size * 100):+d}pct"]
    cr_1 = CDP_CR * (1 + size)
    liquidated = cr_1 < CDP_L - 1e-12  # -20%: CR_1 = 1.2 = L exactly, not below: no liquidation
    assert m["liquidated"] is liquidated, f"CR after the shock {cr_1:.6g} vs L {CDP_L}"
    gross = CDP_CR * CDP_DEBT_USD * (1 + size) * (1 - CDP_HAIRCUT)
    bad = max(0.0, CDP_DEBT_USD - gross) if liquidated else 0.0
    assert m["bad_debt_usd"] == pytest.approx(bad, rel=1e-9, abs=1e-6)
    if not liquidated:
        assert m["backing_ratio_1d"] == pytest.approx(cr_1, rel=1e-12)
        assert m["holder_loss_frac_1d"] == pytest.approx(0.0, abs=1e-12)
    else:
        assert m["backing_ratio_1d"] == pytest.approx(0.0, abs=1e-12)  # no live collateral
        assert m["holder_loss_frac_1d"] == pytest.approx(1.0 if bad > 0 else 0.0, abs=1e-12)


def peak_to_trough(prices: pd.Series, start: str, end: str) -> tuple[pd.Timestamp, pd.Timestamp, int, float]:
    """Independent peak-to-trough of the closes dated inside [start, end]: the close with the
    deepest fall from the running maximum, the highest close before it, the trading days between
    and the fall as a simple return."""
    inside = prices[(prices.index >= start) & (prices.index <= end)]
    dd = inside / inside.cummax() - 1.0
    trough = dd.idxmin()
    peak = inside.loc[:trough].idxmax()
    days = inside.index.get_loc(trough) - inside.index.get_loc(peak)
    return peak, trough, days, inside[trough] / inside[peak] - 1.0


def test_replays_are_the_peak_to_trough_episodes(run, flowkit):
    """Each replay runs from the peak close to the trough close found inside its search window:
    its length, total move and drawdown equal the episode's, computed from the CSV itself."""
    prices = gold_csv(run.data_dir)
    for name, (start, end) in flowkit.replay_windows.items():
        peak, trough, days, fall = peak_to_trough(prices, start, end)
        for symbol in run.symbols:
            m = run.summary["tokens"][symbol]["scenarios"][f"hist_{name}"]
            assert m["horizon_days"] == days
            assert (m["episode"]["peak_date"], m["episode"]["trough_date"]) == (str(peak.date()), str(trough.date()))
            assert m["gold_log_return_end"] == pytest.approx(math.log1p(fall), abs=1e-10)
            assert m["gold_max_drawdown"] == pytest.approx(-fall, abs=1e-10)
        fgt = run.summary["tokens"]["FGT"]["scenarios"][f"hist_{name}"]
        assert fgt["holder_loss_frac_end"] == pytest.approx(-fall, abs=1e-10)
        assert fgt["holder_max_drawdown_frac"] == pytest.approx(-fall, abs=1e-10)  # peak to trough


def test_worst_scenario_is_the_largest_peak_to_trough_of_the_single_paths(run):
    """Recomputed from the per-scenario figures: the single-path scenario with the largest
    peak-to-trough holder loss over its window; the Monte Carlo tail is its own ES of that figure
    over the Monte Carlo horizon, from the Parquet paths (Acerbi & Tasche 2002)."""
    mc = results(run, "mc_champion")
    for symbol in run.symbols:
        t = run.summary["tokens"][symbol]
        w = t["worst_scenario"]
        single = {n: m for n, m in t["scenarios"].items() if m["kind"] != "monte_carlo"}
        values = {n: float(m["holder_max_drawdown_frac"]) for n, m in single.items()}
        top = max(values, key=lambda n: values[n])
        assert (w["by"], w["scenario"], w["value"]) == ("holder_max_drawdown_frac", top, values[top])
        assert w["window_days"] == single[top]["horizon_days"]
        tail = w["monte_carlo_tail"]
        assert (tail["figure"], tail["horizon_days"]) == (
            "holder_value_max_drawdown_es_99_frac",
            run.settings.monte_carlo.horizon_days,
        )
        x = np.sort(mc.loc[mc["token"] == symbol, "holder_max_drawdown_frac"].to_numpy())
        n = x.size
        c = math.ceil(round(n * 0.99, 9))
        es = (x[c:].sum() + (c - n * 0.99) * x[c - 1]) / (n * 0.01)
        assert tail["value"] == pytest.approx(es, rel=1e-9, abs=1e-15)
    # the frictionless token loses exactly gold's fall: the deepest episode or shock
    fgt = run.summary["tokens"]["FGT"]["worst_scenario"]
    assert fgt["value"] == pytest.approx(
        max(
            float(m["gold_max_drawdown"])
            for m in run.summary["tokens"]["FGT"]["scenarios"].values()
            if m["kind"] != "monte_carlo"
        ),
        abs=1e-10,
    )


def test_monte_carlo_paths_obey_token_identities(run):
    """Per path: FGT's holder loss is the gold loss ``1 - exp(r)``; TCDP liquidates iff some
    daily close is below ``L / CR`` of the start price, so a horizon return below ln(L/CR)
    forces a liquidation and a liquidation needs a drawdown beyond ``1 - L/CR``; bad debt needs
    a close below ``1 / (CR (1 - h))`` of the start price."""
    mc = results(run, "mc_champion")
    fgt = mc[mc["token"] == "FGT"]
    for h in (1, 10, 30):
        np.testing.assert_allclose(fgt[f"holder_loss_frac_{h}d"], -np.expm1(fgt[f"gold_log_return_{h}d"]), atol=1e-12)
    np.testing.assert_allclose(fgt["backing_ratio_min"], 1.0, atol=1e-12)
    cdp = mc[mc["token"] == "TCDP"]
    threshold = math.log(CDP_L / CDP_CR)
    below = np.zeros(len(cdp), bool)
    for col in ("gold_log_return_1d", "gold_log_return_10d", "gold_log_return_30d", "gold_log_return_end"):
        below |= cdp[col].to_numpy() < threshold - 1e-12
    liq = cdp["liquidated"].to_numpy()
    assert liq[below].all()
    assert (cdp["gold_max_drawdown"].to_numpy()[liq] > 1 - CDP_L / CDP_CR - 1e-12).all()
    bad = cdp["bad_debt_usd"].to_numpy() > 0
    assert (cdp["gold_max_drawdown"].to_numpy()[bad] > 1 - 1 / (CDP_CR * (1 - CDP_HAIRCUT)) - 1e-12).all()
    m = run.summary["tokens"]["TCDP"]["scenarios"]["mc_champion"]
    assert below.mean() <= m["p_liquidation"] <= (cdp["gold_max_drawdown"] > 1 - CDP_L / CDP_CR - 1e-12).mean()


def test_monte_carlo_1d_var_matches_the_champion_closed_form(run):
    """The 1-day return of every path is ``m + sigma_next z`` (z standardised t(nu), or a draw
    from the standardised residuals under FHS; ``m`` the stress drift, zero by default), so the
    true 99% 1-day loss quantile of FGT is ``q = 1 - exp(m + sigma_next z_0.01)``. With n iid losses, ``#{L_i <= q} ~ Bin(n, 0.99)``:
    the order statistics ``L_(r) <= q < L_(s)`` with r, s from the binomial 0.05% / 99.95%
    quantiles cover q with probability >= 99.9% (distribution-free quantile interval)."""
    from goldstress.io import tracking
    from goldstress.io.champion import load_champion

    settings = run.settings
    tracking.configure(settings)
    champion, version = load_champion(settings.tracking.registered_model, settings.tracking.champion_alias)
    assert version == str(run.summary["champion"]["version"])
    p = champion.fit.params
    if champion.innovations == "t":
        nu = p["nu"]
        z = stats.t.ppf(0.01, nu) * math.sqrt((nu - 2) / nu)
    else:  # fhs: largest z with P(Z < z) <= 1% under the empirical residual distribution
        resid = np.sort(np.asarray(champion.fit.std_resid))
        z = resid[int(math.floor(0.01 * resid.size))]
    drift = run.summary["monte_carlo"]["mc_drift"]
    assert drift["assumption"] == "zero" and drift["log_return_per_day"] == 0.0
    assert drift["historical_log_return_per_year"] == pytest.approx(252 * p["mu"], rel=1e-12)
    q = -math.expm1(drift["log_return_per_day"] + champion.fit.sigma_next * z)

    mc = results(run, "mc_champion")
    losses = np.sort(mc.loc[mc["token"] == "FGT", "holder_loss_frac_1d"].to_numpy())
    n = losses.size
    r = int(stats.binom.ppf(0.0005, n, 0.99))  # P(B < r) < 0.0005
    s = int(stats.binom.ppf(0.9995, n, 0.99)) + 1  # P(B >= s) <= 0.0005
    lo = losses[r - 1]
    hi = losses[s - 1] if s <= n else np.inf
    assert lo <= q < hi, f"closed-form 1d VaR99 {q:.5f} outside [{lo:.5f}, {hi:.5f}] (n={n})"
    var99 = run.summary["tokens"]["FGT"]["scenarios"]["mc_champion"]["holder_value_var_99_1d_frac"]
    assert lo <= var99 <= hi


# --------------------------------------------------------------------------------------------
# tracking: MLflow and Prefect
# --------------------------------------------------------------------------------------------
def test_mlflow_registry_runs_and_lineage(run):
    from mlflow.tracking import MlflowClient

    from goldstress.io import tracking

    settings = run.settings
    experiment_id = tracking.configure(settings)
    client = MlflowClient(tracking_uri=settings.tracking.tracking_uri)
    mv = client.get_model_version_by_alias(settings.tracking.registered_model, settings.tracking.champion_alias)
    assert settings.tracking.champion_alias == "champion"
    assert str(mv.version) == str(run.summary["champion"]["version"])
    cand = client.get_run(mv.run_id)
    metrics, params = cand.data.metrics, cand.data.params
    for key in ("loglik", "aic", "bic", "holdout_var95_exception_rate", "holdout_var99_exception_rate"):
        assert key in metrics and math.isfinite(metrics[key]), key
    holdout = settings.training.backtest_holdout_days
    for tag in ("95", "99"):
        assert metrics[f"holdout_var{tag}_exception_rate"] == pytest.approx(
            metrics[f"holdout_var{tag}_n_exceptions"] / holdout
        )

    # the curated training data, fingerprinted independently: sha256 of its (date, usd_per_oz) CSV
    curated = pd.read_parquet(Path(settings.storage.store_url) / "curated" / "gold.parquet")
    sha = hashlib.sha256(curated[["date", "usd_per_oz"]].to_csv(index=False).encode("utf-8")).hexdigest()
    # arch: AIC = -2 LL + 2k, BIC = -2 LL + k ln n; k = mu, omega, alpha, (gamma), beta, nu
    k = {"garch": 5, "gjr": 6}[params["kind"]]
    return_dates = pd.to_datetime(curated["date"]).iloc[1:]  # a return is dated by its later price
    n_fit = int((return_dates >= pd.Timestamp(settings.training.vol_train_start, tz="UTC")).sum())
    assert metrics["aic"] == pytest.approx(-2 * metrics["loglik"] + 2 * k, rel=1e-9)
    assert metrics["bic"] == pytest.approx(-2 * metrics["loglik"] + k * math.log(n_fit), rel=1e-9)

    parent = client.get_run(cand.data.tags["mlflow.parentRunId"])
    assert parent.data.params["data_sha256"] == sha
    assert run.summary["data"]["data_sha256"] == sha
    assert parent.data.tags.get("champion") == run.summary["champion"]["candidate"]

    stress = client.get_run(run.outputs["mlflow_run_id"])
    assert stress.info.experiment_id == experiment_id
    assert stress.data.tags["mlflow.runName"] == f"stress-{run.outputs['run_id']}"
    paths = {a.path for a in client.list_artifacts(stress.info.run_id, "report")}
    assert {"report/report.html", "report/summary.json"} <= paths


def test_prefect_records_the_flow_runs_and_the_report_artifact(run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["stress_test"])))
        ours = [
            r
            for r in runs
            if (r.parameters.get("options") or {}).get("data_dir") == str(run.data_dir)
            and r.state is not None
            and r.state.is_completed()
        ]
        assert ours, "no COMPLETED stress_test flow run for this data folder in the Prefect API"
        parent = ours[0]
        assert parent.state_name == "Completed"
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id]))
        )
        flows = {client.read_flow(c.flow_id).name: c.state.type.value for c in children}
        assert flows == {name: "COMPLETED" for name in ("ingest", "validate", "train", "simulate", "analyse")}
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["goldstress-report"]))
        )
        assert any(run.outputs["run_id"] in str(a.data) for a in artifacts)


# --------------------------------------------------------------------------------------------
# stages alone
# --------------------------------------------------------------------------------------------
def test_analyse_alone_reproduces_the_summary(run):
    from flows.analyse import analyse

    out = analyse(run_id=run.outputs["run_id"])
    again = json.loads(Path(out["summary_json"]).read_text(encoding="utf-8"))
    assert out["run_id"] == run.outputs["run_id"]
    for symbol in run.symbols:
        assert same(again["tokens"][symbol]["scenarios"], run.summary["tokens"][symbol]["scenarios"])
    assert same(again["var_backtest"], run.summary["var_backtest"])


def test_simulate_alone_is_reproducible_through_the_registry(run):
    from flows.simulate import simulate

    manifest = simulate().as_json()
    assert manifest["run_id"] != run.outputs["run_id"]
    assert manifest["champion"]["version"] == str(run.summary["champion"]["version"])
    for res in manifest["scenarios"]:
        name = res["scenario"]["name"]
        pd.testing.assert_frame_equal(pd.read_parquet(res["url"]), results(run, name), check_exact=True)


def test_a_run_without_path_tables_has_the_same_summary_and_figures(run, monkeypatch):
    """GOLDSTRESS_MC_KEEP_PATH_RESULTS=false: the same figures, then the per-path tables are deleted
    and the published run lists none."""
    from flows.analyse import analyse
    from flows.simulate import simulate
    from goldstress.catalog import Catalog

    monkeypatch.setenv("GOLDSTRESS_MC_KEEP_PATH_RESULTS", "false")
    get_settings.cache_clear()
    try:
        manifest = simulate().as_json()
        out = analyse(run_id=manifest["run_id"])
        marker = json.loads(Path(Catalog.of(get_settings()).run_marker(manifest["run_id"])).read_text())
    finally:
        get_settings.cache_clear()
    assert manifest["settings"]["keep_path_results"] is False
    assert out["results_parquet"] == []
    assert all(not Path(res["url"]).exists() for res in manifest["scenarios"])
    assert sorted(f["name"] for f in marker["files"]) == ["manifest.json", "report.html", "summary.json"]
    summary = json.loads(Path(out["summary_json"]).read_text(encoding="utf-8"))
    for symbol in run.symbols:
        assert same(summary["tokens"][symbol]["scenarios"], run.summary["tokens"][symbol]["scenarios"])
    page = Path(out["report_html"]).read_text(encoding="utf-8")
    assert page.count("<svg") == Path(run.outputs["report_html"]).read_text(encoding="utf-8").count("<svg")


# --------------------------------------------------------------------------------------------
# the validation gate stops bad data
# --------------------------------------------------------------------------------------------
def _negative_price(df: pd.DataFrame, i: int) -> tuple[pd.DataFrame, str, str]:
    df = df.copy()
    df.loc[i, "usd_pm"] = "-" + df.loc[i, "usd_pm"]
    return df, "expect_column_values_to_match_regex", df.loc[i, "date"]


def _duplicate_date(df: pd.DataFrame, i: int) -> tuple[pd.DataFrame, str, str]:
    df = pd.concat([df.iloc[: i + 1], df.iloc[[i]], df.iloc[i + 1 :]], ignore_index=True)
    return df, "expect_column_values_to_be_unique", df.loc[i, "date"]


@pytest.mark.parametrize("corrupt", [_negative_price, _duplicate_date], ids=["negative_price", "duplicate_date"])
def test_bad_data_stops_the_run_and_keeps_the_last_good_table(run, tmp_path, corrupt):
    from flows.stress_test import stress_test
    from goldstress.io.validation import ValidationFailed

    settings = run.settings
    bad_dir = tmp_path / "bad"
    shutil.copytree(run.data_dir, bad_dir)
    gold = pd.read_csv(bad_dir / "gold_pm.csv", dtype=str)
    bad, expectation, bad_date = corrupt(gold, 1500)
    bad.to_csv(bad_dir / "gold_pm.csv", index=False)

    store = Path(settings.storage.store_url)
    curated = store / "curated" / "gold.parquet"
    curated_before = curated.read_bytes()
    runs_before = sorted(p.name for p in Path(settings.storage.report_url).iterdir())
    reports_before = set(store.glob("validation/*_gold/report.md"))

    with pytest.raises(ValidationFailed) as info:
        stress_test(options=RunOptions(data_dir=str(bad_dir)))

    assert expectation in str(info.value)
    assert curated.read_bytes() == curated_before
    assert sorted(p.name for p in Path(settings.storage.report_url).iterdir()) == runs_before
    new_reports = [
        p.read_text(encoding="utf-8") for p in set(store.glob("validation/*_gold/report.md")) - reports_before
    ]
    failed = [t for t in new_reports if "**FAILED**" in t]
    assert len(failed) == 1, f"expected one failed gold report, got {len(failed)} of {len(new_reports)}"
    assert expectation in failed[0] and bad_date in failed[0]


# ---------------------------------------------------------------------------------------------
# liquidity stress: calibrated premium, recommendations re-run, regulation layout
# ---------------------------------------------------------------------------------------------
def test_calibrated_premium_replaces_the_spec_assumption(run):
    manifest = json.loads((run.run_dir / "manifest.json").read_text(encoding="utf-8"))
    xaut = next(s for s in manifest["token_specs"] if s["symbol"] == "XAUT")
    assert xaut["secondary"]["premium"] == XAUT_PREMIUM
    prov = run.summary["liquidity_stress"]["parameters"]["XAUT"]["premium_process"]
    assert prov["source"] == "calibrated" and prov["calibration_set"] == "xaut"
    assert prov["premium_process"] == XAUT_PREMIUM
    # the assumption it replaced is the repository's spec file, kept for the record
    import tomllib

    spec_file = next(p for p in ScenarioSettings.model_fields["token_specs"].default if Path(p).stem == "xaut")
    assert prov["assumed"] == tomllib.loads(Path(spec_file).read_text(encoding="utf-8"))["secondary"]["premium"]


def test_liquidity_stress_section_follows_the_regulation_layout(run):
    ls = run.summary["liquidity_stress"]
    assert list(ls) == [
        "regulation",
        "risks_covered",
        "parameters",
        "scenarios_and_horizons",
        "historical_data",
        "outcome",
        "remedies",
    ]
    assert "2025/1264" in ls["regulation"]
    assert set(ls["parameters"]) == {"FGT", "GRAM", "XAUT"}  # the reserve-backed tokens of the run
    html = (run.run_dir / "report.html").read_text(encoding="utf-8")
    heads = [
        "1. Risks covered",
        "2. Parameters and their calibration",
        "3. Scenarios and horizons",
        "4. Historical data used",
        "5. Outcome",
        "6. Remedies",
    ]
    pos = [html.index(h) for h in heads]
    assert pos == sorted(pos)
    # custody concentration: shares of the day-0 reserve value, recomputed from the spec
    p0 = run.summary["start_gold_usd_per_oz"]
    spec = next(
        s for s in json.loads((run.run_dir / "manifest.json").read_text())["token_specs"] if s["symbol"] == "XAUT"
    )
    vals = {
        a["custodian"]: (a["amount"] * p0 / 31.1034768 if "gold" in a["kind"] else a["amount"]) for a in spec["reserve"]
    }
    got = {r["custodian"]: r["share"] for r in ls["parameters"]["XAUT"]["custody_concentration"]}
    assert got == pytest.approx({k: v / sum(vals.values()) for k, v in vals.items()}, rel=1e-12)


def test_supply_outflow_anchor_finds_the_step(run):
    so = run.summary["liquidity_stress"]["historical_data"]["supply_outflows"]["XAUT"]
    step_date = str((pd.Timestamp("2021-01-01") + pd.Timedelta(days=SUPPLY_STEP_DAY)).date())
    for h in ("1d", "5d", "30d"):
        assert so["worst"][h]["fall_frac"] == pytest.approx(SUPPLY_STEP, rel=1e-9)
    assert so["worst"]["1d"]["end_date"] == step_date and so["n_obs"] == SUPPLY_DAYS
    assert so["revisions_removed"] == []  # no registry entry for the synthetic file: a real flow
    wave = run.summary["liquidity_stress"]["scenarios_and_horizons"]["redemption_wave"]
    assert wave["wave_basis"].startswith("hypothetical")


def test_recommendations_equal_an_independent_rerun(run, flowkit):
    """Rebuild the search paths from the registered champion and re-run the XAUT token with the
    recommended buffer and setting: the summary's figures are what that re-run gives."""
    from goldstress.io import tracking
    from goldstress.io.champion import load_champion
    from models.recommend import with_cash_buffer, with_primary
    from models.scenarios import calendar_day_paths
    from models.token.reserve_backed import ReserveBackedToken
    from models.token.spec import parse_token_spec, with_redemption_share
    from tasks.recommend import _gold_paths

    rem = run.summary["liquidity_stress"]["remedies"]["XAUT"]
    sc = run.summary["liquidity_stress"]["scenarios_and_horizons"]["redemption_wave"]
    with flowkit.env(flowkit.isolated_env(run.root)):
        settings = get_settings()
        tracking.configure(settings)
        champion, _ = load_champion(settings.tracking.registered_model, settings.tracking.champion_alias)
    gold, cal = calendar_day_paths(
        _gold_paths(
            champion,
            run.summary["start_gold_usd_per_oz"],
            2 * RECOMMEND_PATHS,
            sc["wave_horizon_trading_days"],
            settings,
        ),
        run.summary["data"]["data_last_date"],
    )
    h = len(cal) - 1
    # the calendar-day clock: every day between day 0 and the last trading day, weekdays = trading days
    assert h == sc["horizon_calendar_days"] and int((cal.day_of_week < 5).sum()) == sc["wave_horizon_trading_days"] + 1
    manifest = json.loads((run.run_dir / "manifest.json").read_text(encoding="utf-8"))
    spec = parse_token_spec(next(s for s in manifest["token_specs"] if s["symbol"] == "XAUT"))

    def coverage_q(s, g):
        out = ReserveBackedToken(with_redemption_share(s, sc["wave_share_of_supply"], sc["wave_days"])).run(
            g, calendar=cal, rng=np.random.default_rng(settings.monte_carlo.seed)
        )
        mins = np.sort(out.liquidity_coverage[:, 1 : h + 1].min(axis=1))
        k = math.ceil(round(1 - sc["confidence"], 12) * mins.size)  # the k-th smallest: inverted-cdf quantile
        return mins[k - 1]

    before = coverage_q(spec, gold[:RECOMMEND_PATHS])
    assert before == pytest.approx(
        run.summary["liquidity_stress"]["outcome"]["XAUT"]["redemption_wave_without_remedy"]["coverage_q"], rel=1e-12
    )
    assert before < 1.0  # the preset needs a remedy under a 20% wave
    b = rem["cash_buffer_usd"]
    assert rem["cash_buffer_reachable"] and b > 0
    after = coverage_q(with_cash_buffer(spec, b), gold[:RECOMMEND_PATHS])
    assert after >= 1.0 and after == pytest.approx(rem["with_buffer"]["coverage_q"], rel=1e-12)
    # the buffer is the smallest at the search resolution: 1e-4 of liabilities less fails
    liab = spec.supply_tokens * run.summary["start_gold_usd_per_oz"] * spec.grams_per_token / 31.1034768
    assert coverage_q(with_cash_buffer(spec, max(b - 1e-4 * liab, 0.0)), gold[:RECOMMEND_PATHS]) < 1.0
    oos = coverage_q(with_cash_buffer(spec, b), gold[RECOMMEND_PATHS:])
    assert oos == pytest.approx(rem["with_buffer_out_of_sample"]["coverage_q"], rel=1e-12)
    best = rem["recommended_setting"]
    chosen = with_primary(
        spec, redeem_fee=best["redeem_fee"], redemption_limit_share_per_day=best["redemption_limit_share_per_day"]
    )
    assert coverage_q(chosen, gold[:RECOMMEND_PATHS]) == pytest.approx(best["wave"]["coverage_q"], rel=1e-12)


def test_recommendations_are_logged_to_the_stress_report_run(run):
    from mlflow.tracking import MlflowClient

    from goldstress.io import tracking

    settings = run.settings
    tracking.configure(settings)
    client = MlflowClient(tracking_uri=settings.tracking.tracking_uri)
    logged = client.get_run(run.outputs["mlflow_run_id"])  # analyse may run again later for the same run id
    assert logged.data.tags["goldstress_run_id"] == run.outputs["run_id"]
    for symbol, t in run.summary["tokens"].items():
        assert logged.data.tags[f"{symbol}.verdict"] == t["verdict"]["verdict"]
    m = logged.data.metrics
    rem = run.summary["liquidity_stress"]["remedies"]["XAUT"]
    assert m["XAUT/liquidity/cash_buffer_usd"] == pytest.approx(rem["cash_buffer_usd"], rel=1e-12)
    assert m["XAUT/liquidity/wave_coverage_q_with_buffer"] == pytest.approx(rem["with_buffer"]["coverage_q"], rel=1e-12)
    assert m["XAUT/liquidity/recommended_redeem_fee"] == rem["recommended_setting"]["redeem_fee"]


def test_every_token_has_a_verdict_record_in_the_summary(run):
    """The verdict record of every token carries the contract's keys; each check's status follows
    from its value and limit, and the verdict is the worst of them."""
    from models.verdict import CHECK_BOUNDS

    order = ("pass", "watch", "fail")
    for symbol, t in run.summary["tokens"].items():
        v = t["verdict"]
        assert set(v) == {"verdict", "reason", "tolerance", "checks", "worst_scenario", "remedy"}, symbol
        assert v["tolerance"]["source"] in ("spec", "default") and v["checks"]
        assert v["worst_scenario"]["scenario"] == t["worst_scenario"]["scenario"]
        ws = v["tolerance"]["watch_share"]
        for c in v["checks"]:
            val, lim = float(c["value"]), c["limit"]  # "inf": a coverage without outflows (JSON-safe form)
            if CHECK_BOUNDS[c["key"]] == "max":
                want = "fail" if val > lim else "watch" if val > ws * lim else "pass"
            else:
                want = "fail" if val < lim else "watch" if val * ws < lim else "pass"
            assert c["status"] == want, (symbol, c["key"])
        assert v["verdict"] == max((c["status"] for c in v["checks"]), key=order.index)
        assert (v["remedy"] is None) == (v["verdict"] == "pass")


def test_premium_distribution_at_the_horizon_end_matches_the_paths(run):
    m = run.summary["tokens"]["XAUT"]["scenarios"]["mc_champion"]
    mc = results(run, "mc_champion")
    x = np.sort(mc.loc[mc["token"] == "XAUT", "premium_end_frac"].to_numpy())
    for q in (0.01, 0.05, 0.5, 0.95, 0.99):
        assert m[f"premium_end_q{q:g}_frac"] == x[math.ceil(q * x.size - 1e-9) - 1]  # k-th smallest, k = ceil(q n)
    days = mc.loc[mc["token"] == "XAUT", "share_days_abs_premium_gt_1pct"].to_numpy()
    assert m["mean_share_days_abs_premium_gt_1pct"] == pytest.approx(days.sum() / days.size, rel=1e-12)


def test_monte_carlo_has_no_drift_by_default(run):
    """With the default drift assumption ("zero") every daily shock has mean zero, so the mean of
    the paths' end log returns is 0 within its sampling error (4 standard errors), while the
    champion's historical drift is reported beside it."""
    mc = results(run, "mc_champion")
    end = mc.loc[mc["token"] == "FGT", "gold_log_return_end"].to_numpy()
    se = end.std(ddof=1) / math.sqrt(end.size)
    assert abs(end.mean()) <= 4 * se, (end.mean(), se)
    assert "drift zero" in run.summary["tokens"]["FGT"]["scenarios"]["mc_champion"]["description"]
