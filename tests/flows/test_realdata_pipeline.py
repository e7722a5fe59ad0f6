"""The full ``stress_test`` on the real historical data (``GOLDSTRESS_DATA_DIR``; skipped without
it) with the repository's token specs and a reduced Monte Carlo (2000 paths x 250 days).

Checked against independent computations: replay returns from the raw CSV read with pandas,
the CDP's closed-form break move from its spec file read with ``tomllib``, Kupiec's LR with
scipy, and the Basel (1996) traffic-light table.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from goldstress.settings import RunOptions, get_settings

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

MC_PATHS = 2000
MC_HORIZON_DAYS = 250


@pytest.fixture(scope="module")
def real(prefect_api, shared_data_dir, tmp_path_factory, flowkit) -> SimpleNamespace:
    """One full run on the real data, default settings except storage and the Monte Carlo size."""
    from flows.stress_test import stress_test

    root = tmp_path_factory.mktemp("realdata")
    env = {
        **flowkit.isolated_env(root),
        "GOLDSTRESS_DATA_DIR": str(shared_data_dir),
        "GOLDSTRESS_MC_PATHS": str(MC_PATHS),
        "GOLDSTRESS_MC_HORIZON_DAYS": str(MC_HORIZON_DAYS),
        "GOLDSTRESS_MC_CHUNK_PATHS": "1000",
        "GOLDSTRESS_MC_FAN_CHART_PATHS": "500",
        # the defaults of these, whatever the calling shell says
        "GOLDSTRESS_GOLD_FILE": None,
        "GOLDSTRESS_TOKEN_FILES": None,
        "GOLDSTRESS_REPLAY_WINDOWS": None,
        "GOLDSTRESS_TOKEN_SPECS": None,
    }
    with flowkit.env(env):
        settings = get_settings()
        out = stress_test(options=RunOptions(data_dir=str(shared_data_dir)))
        summary = json.loads(Path(out["summary_json"]).read_text(encoding="utf-8"))
        yield SimpleNamespace(
            settings=settings,
            outputs=out,
            summary=summary,
            data_dir=Path(shared_data_dir),
            run_dir=Path(settings.storage.report_url) / out["run_id"],
        )


def test_every_replay_is_the_episode_peak_to_trough_of_the_csv(real):
    """Each replay is its episode's fall from the peak PM fix to the trough PM fix inside its
    search window, computed here from the CSV: the same dates, length, total move and drawdown.
    The 1980 episode is the January 1980 peak (850) to the June 1982 trough (-65%)."""
    csv = pd.read_csv(real.data_dir / real.settings.data.gold_file, usecols=["date", "usd_pm"]).dropna()
    pm = pd.Series(csv["usd_pm"].to_numpy(float), index=pd.to_datetime(csv["date"]))
    windows = real.settings.scenarios.replay_windows
    assert {
        "1980_bubble_burst",
        "cb_sales_1996_1999",
        "gfc_2008",
        "bear_2011_2015",
        "crash_apr_2013",
        "covid_mar_2020",
        "rate_rise_2022",
    } <= set(windows)
    for name, (start, end) in windows.items():
        inside = pm[(pm.index >= start) & (pm.index <= end)]
        trough = (inside / inside.cummax()).idxmin()
        peak = inside.loc[:trough].idxmax()
        fall = inside[trough] / inside[peak] - 1.0
        days = inside.index.get_loc(trough) - inside.index.get_loc(peak)
        for symbol, token in real.summary["tokens"].items():
            m = token["scenarios"][f"hist_{name}"]
            assert (m["episode"]["peak_date"], m["episode"]["trough_date"]) == (str(peak.date()), str(trough.date())), (
                name
            )
            assert m["horizon_days"] == days, (name, symbol)
            assert m["gold_log_return_end"] == pytest.approx(math.log1p(fall), abs=1e-9), (name, symbol)
            assert m["gold_max_drawdown"] == pytest.approx(-fall, abs=1e-9), (name, symbol)
    m1980 = real.summary["tokens"]["PAXG"]["scenarios"]["hist_1980_bubble_burst"]["episode"]
    assert m1980["peak_date"] == "1980-01-21" and m1980["peak_to_trough_frac"] < -0.6


def test_cdp_reverse_stress_matches_the_closed_form(real):
    """A CDP breaks at the first liquidation: the lowest-CR tranche at ``CR_min (1 + m) < L``,
    so the 1-day breaking move is ``L / CR_min - 1`` (spec read here with tomllib)."""
    spec_path = next(Path(p) for p in real.settings.scenarios.token_specs if Path(p).stem == "gusd_cdp")
    spec = tomllib.loads(spec_path.read_text(encoding="utf-8"))
    move = spec["liquidation_ratio"] / min(t["collateral_ratio"] for t in spec["tranches"]) - 1
    rs = real.summary["tokens"][spec["symbol"]]["reverse_stress"]
    one_day = next(r for r in rs["searches"] if r["horizon_days"] == 1 and r["direction"] == -1)
    assert one_day["move_frac"] == pytest.approx(move, abs=1e-3)
    assert one_day["move_frac"] <= move  # reported on the breaking side of the boundary
    assert rs["closed_form"]["move_frac"] == pytest.approx(move, abs=1e-12)


def test_backtest_section_counts_and_zones(real):
    """Window lengths from the settings, the hold-out after the validation window and ending on
    the last return of the CSV; exception rate, expected breaches, Kupiec (1995) POF p-value
    recomputed with scipy, and the Basel (1996) Table 2 zone of the last 250 days at 99%
    (0-4 green, 5-9 yellow, 10+ red)."""
    windows = real.summary["var_backtest"]["windows"]
    tr = real.settings.training
    assert windows["validation"]["n_returns"] == tr.champion_validation_days
    assert windows["holdout"]["n_returns"] == tr.backtest_holdout_days
    assert windows["fit"]["first_date"] >= tr.vol_train_start
    assert windows["fit"]["last_date"] < windows["validation"]["first_date"]
    assert windows["validation"]["last_date"] < windows["holdout"]["first_date"]
    assert windows["holdout"]["last_date"] == real.summary["data"]["data_last_date"]
    holdout = real.summary["var_backtest"]["holdout"]
    assert set(holdout) == {f"{lvl:.2f}" for lvl in real.settings.risk.var_levels}
    for key, bt in holdout.items():
        level = float(key)
        n, x = bt["n_obs"], bt["n_exceptions"]
        assert n == real.settings.training.backtest_holdout_days
        assert bt["exception_rate"] == pytest.approx(x / n)
        assert bt["expected_exceptions"] == pytest.approx(n * (1 - level))
        p = 1 - level
        phat = x / n
        loglik_null = (n - x) * math.log(1 - p) + x * math.log(p)
        loglik_alt = (n - x) * math.log(1 - phat) + (x * math.log(phat) if x else 0.0)
        lr = -2 * (loglik_null - loglik_alt)
        assert bt["kupiec_lr"] == pytest.approx(lr, abs=1e-8)
        assert bt["kupiec_p_value"] == pytest.approx(stats.chi2.sf(lr, 1), abs=1e-10)
        last = bt["basel_exceptions_last_250d"]
        assert 0 <= last <= min(x, 250)
        if level == 0.99:
            zone = "green" if last <= 4 else "yellow" if last <= 9 else "red"
            assert bt["basel_zone_last_250d"] == zone


def test_monte_carlo_liquidation_probability_is_bracketed_by_the_paths(real):
    """The CDP liquidates on a path iff some daily close falls below ``L / CR_min`` of the start
    price. So a horizon return below ``ln(L / CR_min)`` forces a liquidation, and a liquidation
    needs a drawdown beyond ``1 - L / CR_min``: P(liquidation) lies between those frequencies."""
    spec_path = next(Path(p) for p in real.settings.scenarios.token_specs if Path(p).stem == "gusd_cdp")
    spec = tomllib.loads(spec_path.read_text(encoding="utf-8"))
    ratio = spec["liquidation_ratio"] / min(t["collateral_ratio"] for t in spec["tranches"])
    mc = pd.read_parquet(real.run_dir / "results" / "mc_champion.parquet")
    g = mc[mc["token"] == spec["symbol"]]
    assert len(g) == MC_PATHS and (g["horizon_days"] == MC_HORIZON_DAYS).all()
    cols = [f"gold_log_return_{h}d" for h in real.settings.risk.horizons_days] + ["gold_log_return_end"]
    forced = (g[cols].to_numpy() < math.log(ratio) - 1e-12).any(axis=1)
    possible = g["gold_max_drawdown"].to_numpy() > 1 - ratio - 1e-12
    liq = g["liquidated"].to_numpy()
    assert liq[forced].all() and possible[liq].all()
    p_liq = real.summary["tokens"][spec["symbol"]]["scenarios"]["mc_champion"]["p_liquidation"]
    assert p_liq == pytest.approx(liq.mean())
    assert forced.mean() <= p_liq <= possible.mean()
    assert np.isfinite(g["bad_debt_usd"]).all() and (g["bad_debt_usd"] >= 0).all()


def test_monte_carlo_on_real_data_has_no_drift_by_default(real):
    """Gold's fitted drift is positive (about +10% a year since 2000), but the stress Monte Carlo
    assumes none by default: the mean horizon log return is 0 within 4 standard errors, and the
    summary states the assumption beside the historical drift it replaced."""
    mc = pd.read_parquet(real.run_dir / "results" / "mc_champion.parquet")
    end = mc.loc[mc["token"] == mc["token"].iloc[0], "gold_log_return_end"].to_numpy()
    se = end.std(ddof=1) / math.sqrt(end.size)
    assert abs(end.mean()) <= 4 * se, (end.mean(), se)
    drift = real.summary["monte_carlo"]["mc_drift"]
    assert drift["assumption"] == "zero" and drift["log_return_per_year"] == 0.0
    assert drift["historical_log_return_per_year"] > 0.0


def _observed_premium(data_dir: Path, token_file: str) -> pd.Series:
    """Token close / broker XAU/USD close - 1 on the days both exist, read with pandas: the
    broker's flagged bars dropped (SOURCES.md), and the token rows the quirks registry drops
    (bad prints, stale stretches; each entry re-checked against the data by the quirks tests)."""
    quirks = tomllib.loads((Path(__file__).resolve().parents[2] / "goldstress" / "data_quirks.toml").read_text())
    gold = pd.read_csv(data_dir / "xauusd_broker_mt5_daily_2007_2026.csv", parse_dates=["date"])
    gold = gold[gold["bar_note"].isna() | (gold["bar_note"] == "")].set_index("date")["close"]
    tok = pd.read_csv(data_dir / token_file, parse_dates=["date"]).set_index("date")["close_usd"]
    drop: set[pd.Timestamp] = set()
    for e in quirks.get("stale", []):
        if e["file"] == token_file and e["action"] == "drop_row":
            drop |= set(pd.date_range(e["start"], e["end"]))
    for e in quirks.get("bad_tick", []):
        if e["file"] == token_file and e["action"] == "drop_row":
            drop.add(pd.Timestamp(e["date"]))
    tok = tok[~tok.index.isin(drop)]
    return (tok / gold.reindex(tok.index) - 1).dropna()


@pytest.mark.parametrize(
    "symbol, token_file", [("PAXG", "paxg_usd_daily_2022_2026.csv"), ("XAUT", "xaut_usd_daily_2022_2026.csv")]
)
def test_model_vs_history_is_reported_in_and_out_of_sample(real, symbol, token_file):
    """The summary holds the token model against its history for PAXG and XAUT: the observed
    premium's sd and share of days beyond 1% in each window equal those computed here from the
    CSVs; each window's band backtest scores one step per pair of consecutive observations at
    most 4 days apart; the verdict is pass or fail with its reasons (whatever it is); the clock
    noise of the PAXG/XAUT pair is the covariance of their premia on common days."""
    m = real.summary["model_vs_history"][symbol]
    assert m["status"] == "validated" and m["premium_process_source"] == "calibrated"
    assert m["band"]["lower"] < 0 < m["band"]["upper"]  # the spec's fee band, pull estimated or rejected with a reason
    assert m["band"]["pull_estimated"] or "did not reproduce" in m["band"]["reason"]
    assert m["verdict"] in ("pass", "fail") and (m["verdict"] == "fail") == bool(m["reasons"])
    observed = _observed_premium(real.data_dir, token_file)
    for key in ("in_sample", "out_of_sample", "full_sample"):
        start, end = m[key]["window"]
        part = observed.loc[start:end]
        stats_ = m[key]["distribution"]["statistics"]
        assert m[key]["distribution"]["n_days"] == len(part)
        assert stats_["sd"]["observed"] == pytest.approx(part.std(ddof=1), rel=1e-6)
        assert stats_["share_abs_gt_1pct"]["observed"] == pytest.approx((part.abs() > 0.01).mean(), rel=1e-9)
        gaps = np.diff(part.index.values).astype("timedelta64[D]").astype(int)
        assert m[key]["band_backtest"]["n_steps"] == int((gaps <= 4).sum())
    paxg, xaut = (
        _observed_premium(real.data_dir, "paxg_usd_daily_2022_2026.csv"),
        _observed_premium(real.data_dir, "xaut_usd_daily_2022_2026.csv"),
    )
    common = paxg.index.intersection(xaut.index)
    noise = m["clock_noise"]["paxg/xaut"]
    assert noise["n_days"] == len(common)
    assert noise["clock_noise_sd"] == pytest.approx(
        math.sqrt(max(np.cov(paxg[common], xaut[common])[0, 1], 0)), rel=1e-6
    )


def test_reserve_figures_worst_scenario_and_reverse_stress_on_real_data(real):
    """On the real run, for every token: the reverse stress statement says what the model's search
    found (DGX: broken with no gold move, within the days its opex takes to pass its cash, never
    "no gold move breaks"); the worst scenario is the single-path scenario with the largest
    peak-to-trough holder loss and its window; the reserve per token of a replay is recomputed
    from the per-path table (reserve / supply is not on it: the loss fraction and the day-0 value
    give it back), and redemptions are no reserve loss: the replays' tokens redeemed are reported
    apart and can exceed the loss of reserve per token."""
    from tests.models.test_reverse_stress_statements import check_statement_against_search

    dgx = real.summary["tokens"]["DGX"]["reverse_stress"]
    assert all(r["breaks_without_move"] for r in dgx["searches"])
    assert dgx["statement"]["text"].startswith("backing breaks within 26 days with no gold move: operating costs")
    for symbol, t in real.summary["tokens"].items():
        check_statement_against_search(t["reverse_stress"])
        w = t["worst_scenario"]
        single = {n: m for n, m in t["scenarios"].items() if m["kind"] != "monte_carlo"}
        top = max(single, key=lambda n: float(single[n]["holder_max_drawdown_frac"]))
        assert (w["scenario"], w["window_days"]) == (top, single[top]["horizon_days"]), symbol
        assert w["monte_carlo_tail"]["horizon_days"] == MC_HORIZON_DAYS
    paxg = real.summary["tokens"]["PAXG"]["scenarios"]["hist_1980_bubble_burst"]
    g = pd.read_parquet(real.run_dir / "results" / "hist_1980_bubble_burst.parquet").set_index("token").loc["PAXG"]
    assert paxg["reserve_usd_per_token_end"] == pytest.approx(g["reserve_usd_per_token_end"], rel=1e-12)
    assert paxg["reserve_per_token_loss_frac_end"] == pytest.approx(
        1.0 - g["reserve_usd_per_token_end"] / g["reserve_usd_per_token_d0"], rel=1e-12
    )
    assert paxg["redeemed_frac_of_day0_supply_end"] > 0.9  # nearly every token redeemed over the episode
    assert "reserve_loss_frac_end" not in paxg


# --------------------------------------------------------------------------------------------
# the report of a real run: size, verdicts against the spec files, print in Chromium offline
# --------------------------------------------------------------------------------------------
REPORT_MAX_BYTES = 3 * 1024 * 1024
CHECK_FIGURES = {
    "backing_shortfall_probability": ("p_backing_below_1", "max"),
    "depeg_depth": ("depeg_depth_q99_frac", "max"),
    "liquidity_coverage": ("liquidity_coverage_30d_q01", "min"),
    "liquidation_probability": ("p_liquidation", "max"),
    "bad_debt": ("unbacked_frac_of_day0_liabilities_q99", "max"),
}
"""Check key -> (Monte Carlo figure of the summary it reads, whether its limit is a most or a least)
for the repository's spec files (confidence 0.99, liquidity horizon 30 days)."""
TOLERANCE_FIELD = {
    "backing_shortfall_probability": "max_backing_shortfall_probability",
    "depeg_depth": "max_depeg_frac",
    "liquidity_coverage": "min_liquidity_coverage",
    "wave_liquidity_coverage": "min_liquidity_coverage",
    "liquidation_probability": "max_liquidation_probability",
    "bad_debt": "max_bad_debt_frac",
}


def _verdict_rows(page: str) -> dict[str, dict]:
    """The executive summary's rows read off the HTML: token -> verdict and its non-pass checks."""
    from html.parser import HTMLParser

    rows: dict[str, dict] = {}

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "tr" and "data-token" in a:
                self.cur = rows.setdefault(a["data-token"], {"verdict": a["data-verdict"], "checks": {}})
            elif tag == "p" and "data-check" in a:
                self.cur["checks"][a["data-check"]] = (a["data-status"], float(a["data-value"]), float(a["data-limit"]))

    P().feed(page[page.index('id="verdict-table"') : page.index("</table>", page.index('id="verdict-table"'))])
    return rows


def test_report_of_a_real_run_is_at_most_3_mb_without_script(real):
    page = (real.run_dir / "report.html").read_bytes()
    assert len(page) <= REPORT_MAX_BYTES, f"report.html is {len(page) / 1e6:.1f} MB"
    text = page.decode("utf-8")
    assert "<script" not in text
    # no address to load: the only URLs are the SVG and XLink namespace names
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    assert text.count("<svg") >= 4  # price history, fan chart, the two distributions (and the boundary)


def test_report_verdicts_equal_the_summary_and_the_spec_tolerance(real):
    """Every token's verdict in the report's summary table is the summary's; each check's limit is
    the spec file's tolerance (read here with tomllib), its value the summary's Monte Carlo figure,
    and its status and the verdict follow from value and limit by the rule recomputed here."""
    rows = _verdict_rows((real.run_dir / "report.html").read_text(encoding="utf-8"))
    specs = {}
    for path in real.settings.scenarios.token_specs:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        specs[data["symbol"]] = data
    assert set(rows) == set(real.summary["tokens"]) == set(specs)
    order = ("pass", "watch", "fail")
    for symbol, t in real.summary["tokens"].items():
        v, tol = t["verdict"], specs[symbol]["risk_tolerance"]
        assert rows[symbol]["verdict"] == v["verdict"], symbol
        assert v["tolerance"]["source"] == "spec"
        statuses = []
        for c in v["checks"]:
            assert c["limit"] == tol[TOLERANCE_FIELD[c["key"]]], (symbol, c["key"])
            if c["key"] == "wave_liquidity_coverage":
                wave = real.summary["liquidity_stress"]["outcome"][symbol]["redemption_wave_without_remedy"]
                figure, bound = wave["coverage_q"], "min"
            else:
                key, bound = CHECK_FIGURES[c["key"]]
                figure = t["scenarios"]["mc_champion"][key]
            assert c["value"] == figure, (symbol, c["key"])
            ws, val, lim = tol["watch_share"], float(c["value"]), c["limit"]
            if bound == "max":
                want = "fail" if val > lim else "watch" if val > ws * lim else "pass"
            else:
                want = "fail" if val < lim else "watch" if val * ws < lim else "pass"
            assert c["status"] == want, (symbol, c["key"])
            statuses.append(want)
            if want != "pass":  # the report shows every check that is not a pass, with the same numbers
                assert rows[symbol]["checks"][c["key"]] == (want, val, lim)
        assert v["verdict"] == max(statuses, key=order.index)


def test_report_prints_offline_in_chromium(real):
    """The report opens in Debian's Chromium with every network request blocked (none is made),
    hides the navigation in print, and prints to a PDF of a sensible length whose first page
    holds the executive summary with every token (text read from the PDF's fonts)."""
    from playwright.sync_api import sync_playwright

    from tests.goldstress.pdf_text import pdf_pages_text

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("/usr/bin/chromium is absent")
    attempted: list[str] = []

    def guard(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page()
            page.route("**/*", guard)
            page.goto((real.run_dir / "report.html").as_uri())
            assert page.locator("#verdict-table tr[data-token]").count() == len(real.summary["tokens"])
            page.emulate_media(media="print")
            assert not page.locator("nav#toc").is_visible()
            pdf = page.pdf(format="A4", landscape=True, print_background=True)
        finally:
            browser.close()
    assert attempted == []
    pages = pdf_pages_text(pdf)
    assert 2 <= len(pages) <= 80, len(pages)
    first = pages[0].replace(" ", "")
    assert "Executivesummary" in first
    for symbol in real.summary["tokens"]:
        assert symbol in first, symbol
    assert not any("Contents" in p for p in pages)  # the table of contents is not printed
