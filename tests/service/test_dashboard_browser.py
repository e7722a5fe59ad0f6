"""Browser test of the stakeholder dashboard: the real app (``uvicorn --factory
service.app:create_app`` in a subprocess on a free loopback port, production auth with the test
users of tests/service/conftest.py) over real run folders, driven through Debian's
``/usr/bin/chromium`` with Playwright (never a downloaded browser).

Run folders: a private copy of the session tree of tests/service/conftest.py (curated synthetic
gold, three complete runs made by the pipeline's task functions, one run still without a
summary), plus curated PAXG/XAUT tables built here at known premiums to gold (+0.2 %, -0.1 %) and
a fourth, newest run made the same way so that its summary has peg statistics, the liquidity
recommendations of ``tasks.recommend`` (a small search) and a verdict record per token written
exactly as the verdict contract lays it out (limits set from the token's own figures so that the
tokens pass, are on watch and fail in turn; the statuses by the contract's rule).

What is checked, and against what:

- ``/`` without a session redirects to the login page; a wrong password is refused there; the
  login form (POST /api/token, form fields) sets the session and lands on ``/``;
- the page loads with no console error and no uncaught exception;
- every headline ``data-value`` equals the number in ``summary.json`` read here with
  ``json.load`` (exact float equality: the page keeps the JSON number's shortest round-trip
  text), and each label carries its confidence level and horizon;
- the VaR backtest zone, exception counts and Kupiec/Christoffersen p-values equal the summary's;
  the scenario table and backing-ratio quantiles likewise, cell by cell; the peg statistics
  equal the summary's and the premiums the token tables were built with (every day's premium is
  the constructed one, so median = 1 % and 99 % quantiles = that premium, P(|dev| > 1 %) = 0);
- the run selector lists exactly the folders with a summary;
- the plots rendered (plotly's ``.js-plotly-plot`` with data): the fan chart's median is the
  manifest's ``fan_quantiles["q0.5"]``; the history series are the values of every run's
  summary, oldest first;
- the what-if form round-trips, compared with closed forms:
  GRAM (fully gold-backed, holder value ``NAV (1 - fee) min(1, backing)``): a gold move ``s``
  reached over the shock horizon loses exactly ``-s`` of the holder value while the backing stays
  >= 1; GUSD (CDP, MakerDAO rule of models/token/cdp.py): a one-day move ``s`` liquidates every
  tranche with ``CR_i (1 + s) < L``, leaving bad debt ``sum D_i (1 - CR_i (1 + s) (1 - h))^+``
  and holder value ``1 - bad / (live debt + bad)``, computed here from the spec file;
- the verdict table comes before the headline cards; every verdict, check value, limit and
  status, and the liquidity-stress, recommendation and reverse-stress figures equal the summary's,
  and their text is the same value formatted here as the page formats it (%, USD m/bn, days);
  an older run without verdicts shows "no verdict in this run";
- the download links are the summary and results files of ``published.json`` and serve their bytes;
- the analyst is offered every preset of ``settings.scenarios.token_specs``; a reserve-backed
  what-if shows its peg and liquidity figures beside the selected run's (the CDP none);
- comparing two runs shows both runs' figures and verdicts, with B - A and (B - A) / |A|;
- a viewer sees no what-if form.

A screenshot of the final page goes to ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import tomllib
from pathlib import Path

import pytest

from goldstress.settings import env_name
from tests.service.conftest import (
    JWT_SECRET,
    USER_PASSWORDS,
    USER_ROLES,
    data_settings,
    fit_test_champion,
    make_run,
    password_hash,
    running_server,
)

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE_TIMEOUT_MS = 90_000
ANALYST = next(u for u, r in USER_ROLES.items() if r == "analyst")
VIEWER = next(u for u, r in USER_ROLES.items() if r == "viewer")
NEWEST_RUN = "20260109T120000Z-0e0e0e"
"""The run added here (newer than the conftest runs)."""
TOKEN_PREMIA = {"paxg": 0.002, "xaut": -0.001}
"""Premium to gold the curated token tables are built with."""
SMALL_RECOMMEND = {
    "recommend_paths": 100,
    "recommend_redeem_fees": (0.0, 0.0025),
    "recommend_redemption_limits": (None, 0.02),
}
"""A small liquidity-recommendation search for the newest run (its shapes, not its precision)."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent (make test installs Debian's chromium; Playwright never downloads one)",
    ),
]

HEADLINE_KEYS = {
    "var99-10d": "holder_value_var_99_10d_frac",
    "es99-10d": "holder_value_es_99_10d_frac",
    "var99-1d": "holder_value_var_99_1d_frac",
    "var99-30d": "holder_value_var_99_30d_frac",
    "reserve-per-token-var99-10d": "reserve_per_token_var_99_10d_frac",
    "p-backing-below-1": "p_backing_below_1",
    "p-liquidation": "p_liquidation",
    "expected-bad-debt-usd": "expected_bad_debt_usd",
}
"""Headline test id suffix -> summary key under tokens.<T>.scenarios.mc_champion."""

HEADLINE_LABELS = {
    "var99-10d": "99% 10-day VaR of holder value",
    "es99-10d": "99% 10-day ES of holder value",
    "var99-1d": "99% 1-day VaR of holder value",
    "var99-30d": "99% 30-day VaR of holder value",
    "reserve-per-token-var99-10d": "99% 10-day VaR of reserve value per token outstanding",
}


def as_number(text: str | None) -> float | None:
    """A data-value attribute as a float ("" -> None; "inf"/"nan" as Python reads them)."""
    return None if text in (None, "") else float(text)


def json_number(v) -> float | None:
    """A summary.json value as a float (non-finite numbers are the strings "inf"/"-inf"/"nan")."""
    return None if v is None else float(v)


def same(a: float | None, b: float | None) -> bool:
    """Equal, with NaN equal to NaN."""
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


# ------------------------------------------------------------------------------------ fixtures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_curated_tokens(settings, premia: dict[str, float]) -> None:
    """Curated ``token_<symbol>`` tables (data contract: date UTC midnight per calendar day,
    token, close_usd, source): the gold price per ounce carried to calendar days, times ``1 +
    premium`` (one token = one ounce, ``settings.data.token_oz_per_token``), over the last 400 days."""
    import pandas as pd

    from goldstress.io.validation import load_curated, promote

    gold = load_curated("gold", settings).set_index("date")["usd_per_oz"]
    days = pd.date_range(gold.index[-400], gold.index[-1], freq="D")
    g = gold.reindex(days).ffill()
    for sym, prem in premia.items():
        promote(
            pd.DataFrame(
                {
                    "date": days,
                    "token": sym.upper(),
                    "close_usd": (g * (1 + prem)).to_numpy(),
                    "source": f"synthetic:{sym}",
                }
            ),
            f"token_{sym}",
            settings,
        )


@pytest.fixture(scope="module")
def dash_root(service_root, tmp_path_factory) -> Path:
    """A private copy of the service test tree (reports and store), with curated token tables
    and one more run, ``NEWEST_RUN``, whose summary therefore has peg statistics."""
    from goldstress.settings import Settings
    from tasks.train import load_gold_returns

    root = tmp_path_factory.mktemp("dashboard")
    shutil.copytree(service_root.reports, root / "reports")
    shutil.copytree(service_root.store, root / "store")
    settings = Settings(**data_settings(root, monte_carlo={"seed": 3000}, liquidity=SMALL_RECOMMEND))
    write_curated_tokens(settings, TOKEN_PREMIA)
    returns, meta = load_gold_returns.fn(settings)
    make_run(NEWEST_RUN, settings, fit_test_champion(returns, meta, version="3"), returns, meta, recommendations=True)
    add_verdicts(NEWEST_RUN, settings)
    strip_verdicts(complete_runs(root)[-2].name, settings)  # a run written before verdicts existed
    return root


def check_status(value: float, limit: float, watch_share: float = 0.8) -> str:
    """The verdict contract's status rule: fail when the value breaches the limit, watch above
    ``watch_share`` of it, else pass."""
    if value > limit:
        return "fail"
    return "watch" if value > watch_share * limit else "pass"


def verdict_record(t: dict, i: int) -> dict:
    """A verdict record following the contract exactly, from the token's own Monte Carlo figures:
    the holder VaR limit is set at 2, 1/0.9 or 0.5 times the figure (token ``i`` mod 3) so the
    tokens pass, are on watch and fail in turn."""
    mc = t["scenarios"]["mc_champion"]
    h = int(mc["horizon_days"])
    var = float(mc["holder_value_var_99_10d_frac"])
    rows = [
        (
            "holder_value_var_99_10d",
            "Loss of holder value exceeded on one 10-day period in 100",
            var,
            var * (2.0, 1 / 0.9, 0.5)[i % 3],
            "fraction",
            0.99,
            10,
        ),
        (
            "backing_shortfall_probability",
            f"Chance the reserve falls below 100% of tokens within {h} days",
            float(mc["p_backing_below_1"]),
            0.05,
            "fraction",
            None,
            h,
        ),
        ("expected_bad_debt", "Expected bad debt", float(mc["expected_bad_debt_usd"]), 25e6, "usd", None, h),
    ]
    checks = [
        {
            "key": k,
            "label": label,
            "value": v,
            "limit": lim,
            "unit": unit,
            "confidence": conf,
            "horizon_days": hd,
            "status": check_status(v, lim),
        }
        for k, label, v, lim, unit, conf, hd in rows
    ]
    rank = {"pass": 0, "watch": 1, "fail": 2}
    worst = max(checks, key=lambda c: rank[c["status"]])
    w = t["worst_scenario"]
    return {
        "verdict": worst["status"],
        "reason": f"{worst['label']} decided it ({worst['status']}).",
        "tolerance": {
            "holder_value_var_99_10d": rows[0][3],
            "backing_shortfall_probability": 0.05,
            "expected_bad_debt_usd": 25e6,
            "source": "spec" if i % 2 else "default",
        },
        "checks": checks,
        "worst_scenario": {
            "scenario": w["scenario"],
            "label": w["scenario"].replace("_", " "),
            "drawdown_frac": w["value"],
        },
        "remedy": {"action": "Hold a larger cash buffer", "usd": 1.5e8} if worst["status"] == "fail" else None,
    }


def add_verdicts(run_id: str, settings) -> None:
    """Write ``tokens.<T>.verdict`` (:func:`verdict_record`) into a run's summary.json and
    publish the run again (its marker records the new size)."""
    from goldstress.catalog import Catalog
    from goldstress.io import storage
    from goldstress.publish import publish_run

    url = Catalog.of(settings).run_file(run_id, "summary.json")
    summ = storage.read_json(url, settings)
    for i, t in enumerate(summ["tokens"].values()):
        t["verdict"] = verdict_record(t, i)
    storage.write_json(url, summ, settings)
    publish_run(run_id, settings)


def strip_verdicts(run_id: str, settings) -> None:
    """Remove ``tokens.<T>.verdict`` from a run's summary.json (as a run written before verdicts
    existed) and publish the run again."""
    from goldstress.catalog import Catalog
    from goldstress.io import storage
    from goldstress.publish import publish_run

    url = Catalog.of(settings).run_file(run_id, "summary.json")
    summ = storage.read_json(url, settings)
    for t in summ["tokens"].values():
        t.pop("verdict", None)
    storage.write_json(url, summ, settings)
    publish_run(run_id, settings)


def complete_runs(root: Path) -> list[Path]:
    """Run folders with a summary.json, oldest first (run ids sort by time)."""
    return sorted(p for p in (root / "reports").iterdir() if (p / "summary.json").exists())


@pytest.fixture(scope="module")
def run_dir(dash_root: Path) -> Path:
    runs = complete_runs(dash_root)
    assert runs[-1].name == NEWEST_RUN
    return runs[-1]


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> dict:
    with (run_dir / "summary.json").open() as f:
        return json.load(f)


@pytest.fixture(scope="module")
def manifest(run_dir: Path) -> dict:
    with (run_dir / "manifest.json").open() as f:
        return json.load(f)


def server_env(root: Path) -> dict[str, str]:
    """The server's environment: no inherited GOLDSTRESS_* variable; storage of ``root`` (as
    the conftest's ``data_settings``: no MLflow champion, so what-ifs use the documented GARCH
    fallback fitted on the curated gold); production auth with the conftest's test users."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_")}
    for section, fields in data_settings(root).items():
        for key, value in fields.items():
            if value is not None:
                env[env_name(section, key)] = (
                    json.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value)
                )
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "GOLDSTRESS_SERVICE_JWT_SECRET": JWT_SECRET,
            "GOLDSTRESS_SERVICE_USERS": json.dumps(
                {u: {"password_hash": password_hash(p), "role": USER_ROLES[u]} for u, p in USER_PASSWORDS.items()}
            ),
            "GOLDSTRESS_SERVICE_DEV_MODE": "false",
            "GOLDSTRESS_SERVICE_HOST": "127.0.0.1",
        }
    )
    return env


@pytest.fixture(scope="module")
def base_url(dash_root: Path) -> str:
    """The real app under uvicorn on a free 127.0.0.1 port."""

    port = _free_port()
    log_path = dash_root / "server.log"
    args = ["-m", "uvicorn", "--factory", "service.app:create_app", "--host", "127.0.0.1", "--port", str(port)]
    with running_server([*args, "--log-level", "warning"], port, server_env(dash_root), log_path) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # in requirements.lock: a missing package is a failure, not a skip

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def login(browser, base_url: str, user: str):
    """A fresh browser context logged in through the login page; returns (page, console log)."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    messages: list[tuple[str, str]] = []
    page.on("console", lambda m: messages.append((m.type, m.text)))
    page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
    page.goto(base_url + "/")
    assert page.url.startswith(base_url + "/login"), f"/ without a session should redirect to /login, got {page.url}"
    page.fill("#username", user)
    page.fill("#password", USER_PASSWORDS[user])
    page.click("#login-submit")
    page.wait_for_url(base_url + "/")
    page.wait_for_selector('body[data-ready="true"]')
    return page, messages


@pytest.fixture(scope="module")
def dashboard(browser, base_url: str):
    """The dashboard logged in as the analyst; a full-page screenshot at the end."""
    page, messages = login(browser, base_url, ANALYST)
    yield page, messages
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.context.close()


def value_of(page, testid: str) -> float | None:
    loc = page.locator(f'[data-testid="{testid}"]')
    assert loc.count() == 1, f"expected one element with data-testid={testid!r}, found {loc.count()}"
    return as_number(loc.get_attribute("data-value"))


def attr(page, testid: str, name: str = "data-value") -> str | None:
    loc = page.locator(f'[data-testid="{testid}"]')
    assert loc.count() == 1, f"expected one element with data-testid={testid!r}, found {loc.count()}"
    return loc.get_attribute(name)


# --------------------------------------------------------------------------------------- tests


def test_login_page_refuses_a_wrong_password(browser, base_url: str):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(base_url + "/")
    assert page.url.startswith(base_url + "/login")
    page.fill("#username", ANALYST)
    page.fill("#password", "not-the-password")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:not(:empty)")  # a CSS wait: the login page's CSP forbids eval
    assert "Wrong user name or password" in page.locator("#login-error").inner_text()
    assert page.url.startswith(base_url + "/login")
    assert not any(c["name"] == "goldstress_session" for c in ctx.cookies()), (
        "a refused login must not set a session cookie"
    )
    ctx.close()


def test_dashboard_loads_without_console_errors(dashboard, run_dir: Path, dash_root: Path):
    page, messages = dashboard
    errors = [m for m in messages if m[0] in ("error", "pageerror")]
    assert errors == [], f"console errors: {errors}"
    assert page.locator(".error").count() == 0, page.locator(".error").all_inner_texts()
    assert page.get_attribute("body", "data-run-id") == run_dir.name
    # the selector lists the runs with a summary, newest first (not the run still in progress)
    options = page.eval_on_selector_all("#run-select option", "os => os.map(o => o.value)")
    assert options == [p.name for p in reversed(complete_runs(dash_root))]
    assert len(options) < sum(1 for p in (dash_root / "reports").iterdir() if p.is_dir()), (
        "the tree should hold a folder that is not a run"
    )


def test_headlines_equal_summary(dashboard, summary: dict):
    page, _ = dashboard
    H = summary["monte_carlo"]["mc_horizon_days"]
    assert summary["tokens"], "the run has no tokens"
    for symbol, t in summary["tokens"].items():
        mc = t["scenarios"]["mc_champion"]
        for suffix, key in HEADLINE_KEYS.items():
            got = value_of(page, f"headline-{symbol}-{suffix}")
            assert same(got, json_number(mc[key])), f"{symbol} {key}: page {got} != summary {mc[key]}"
        for suffix, label in HEADLINE_LABELS.items():
            assert page.locator(f'[data-testid="label-{symbol}-{suffix}"]').inner_text().startswith(label)
        assert f"within {H} days" in page.locator(f'[data-testid="label-{symbol}-p-backing-below-1"]').inner_text()
        worst = t["worst_scenario"]
        assert attr(page, f"headline-{symbol}-worst-scenario", "data-scenario") == worst["scenario"]
        assert attr(page, f"headline-{symbol}-worst-scenario", "data-by") == worst["by"]
        assert same(value_of(page, f"headline-{symbol}-worst-scenario"), json_number(worst["value"]))
        tail = worst["monte_carlo_tail"]
        assert attr(page, f"headline-{symbol}-mc-tail", "data-figure") == tail["figure"]
        assert same(value_of(page, f"headline-{symbol}-mc-tail"), json_number(tail["value"]))
        st = t["reverse_stress"]["statement"]
        assert attr(page, f"headline-{symbol}-reverse-stress", "data-source") == st["source"]
        assert page.locator(f'[data-testid="headline-{symbol}-reverse-stress"]').inner_text().startswith(st["text"])
    # the visible text is the same number as a percentage
    gram = summary["tokens"].get("GRAM")
    if gram is not None:
        v = gram["scenarios"]["mc_champion"]["holder_value_var_99_10d_frac"]
        assert page.locator('[data-testid="headline-GRAM-var99-10d"]').inner_text() == f"{100 * v:.2f}%"


def test_backtest_zone_equals_summary(dashboard, summary: dict):
    page, _ = dashboard
    holdout = summary["var_backtest"]["holdout"]
    assert holdout, "the synthetic run has a hold-out backtest (1000 of 3000 days)"
    b = holdout["0.99"]
    assert attr(page, "backtest-zone") == b["basel_zone_last_250d"]
    assert value_of(page, "backtest-99-exceptions") == b["n_exceptions"]
    assert value_of(page, "backtest-99-n-obs") == b["n_obs"]
    assert value_of(page, "backtest-99-basel-exceptions-250d") == b["basel_exceptions_last_250d"]
    assert same(value_of(page, "backtest-99-kupiec-p"), json_number(b["kupiec_p_value"]))
    assert same(value_of(page, "backtest-99-christoffersen-p"), json_number(b["christoffersen_p_value"]))


def test_tables_equal_summary(dashboard, summary: dict):
    page, _ = dashboard
    rows = summary["scenario_table"]
    assert page.locator('[data-testid^="scenario-row-"]').count() == len(rows)
    for r in rows:
        for col in (
            "window_days",
            "holder_loss_frac_end",
            "holder_max_drawdown_frac",
            "reserve_per_token_loss_frac_end",
            "reserve_per_token_max_drawdown_frac",
            "backing_ratio_min",
        ):
            got = value_of(page, f"scenario-{r['token']}-{r['scenario']}-{col}")
            assert same(got, json_number(r[col])), (r, col, got)
    pattern = re.compile(r"^backing_ratio_(\d+d|end|min)_q([0-9.]+)$")
    n = 0
    for symbol, t in summary["tokens"].items():
        for key, v in t["scenarios"]["mc_champion"].items():
            m = pattern.match(key)
            if m:
                n += 1
                assert same(value_of(page, f"backing-{symbol}-{m[1]}-q{m[2]}"), json_number(v)), (symbol, key)
    assert n > 0, "no backing-ratio quantiles in the summary"
    premia = summary["observed_token_premia"]
    assert sorted(premia) == sorted(s.upper() for s in TOKEN_PREMIA)
    for sym, p in premia.items():
        for suffix, key in (
            ("median", "premium_median_frac"),
            ("q01", "premium_q01_frac"),
            ("q99", "premium_q99_frac"),
            ("p-gt-1pct", "p_abs_deviation_gt_1pct"),
            ("p-gt-5pct", "p_abs_deviation_gt_5pct"),
        ):
            assert same(value_of(page, f"peg-{sym}-{suffix}"), json_number(p[key])), (sym, key)
        # every day's premium is the constructed one (float rounding only)
        prem = TOKEN_PREMIA[sym.lower()]
        for suffix in ("median", "q01", "q99"):
            assert value_of(page, f"peg-{sym}-{suffix}") == pytest.approx(prem, abs=1e-12)
        assert value_of(page, f"peg-{sym}-p-gt-1pct") == 0.0


def plot_data(page, testid: str) -> list[dict]:
    """The traces plotly holds for a plot (x/y as plain lists); [] if it did not render."""
    return page.evaluate(
        """(tid) => { const d = document.querySelector(`[data-testid="${tid}"]`);
             if (!d || !d.classList.contains('js-plotly-plot') || !d.data) return [];
             return d.data.map(t => ({name: t.name || null, x: Array.from(t.x || []), y: Array.from(t.y || [])})); }""",
        testid,
    )


def test_plots_rendered_from_the_run(dashboard, summary: dict, manifest: dict, dash_root: Path):
    page, _ = dashboard
    for tid in ["plot-fan", "plot-peg", "plot-history-var", "plot-history-backing"] + [
        f"plot-backing-{s}" for s in summary["tokens"]
    ]:
        traces = plot_data(page, tid)
        assert traces and any(len(t["y"]) > 0 for t in traces), f"{tid}: no plotly data"
    fan = next(s["fan_quantiles"] for s in manifest["scenarios"] if s.get("fan_quantiles"))
    median = next(t for t in plot_data(page, "plot-fan") if t["name"] == "median")
    assert median["y"] == pytest.approx(fan["q0.5"], rel=1e-12)
    assert len(median["x"]) == len(fan["q0.5"])
    # history: every complete run's summary value, oldest first
    summaries = [json.loads((p / "summary.json").read_text()) for p in complete_runs(dash_root)]
    assert len(summaries) >= 4
    n_varying = 0
    for tid, key in (
        ("plot-history-var", "holder_value_var_99_10d_frac"),
        ("plot-history-backing", "backing_ratio_min_q1"),
    ):
        traces = {t["name"]: t for t in plot_data(page, tid)}
        for symbol in summary["tokens"]:
            want = [float(s["tokens"][symbol]["scenarios"]["mc_champion"][key]) for s in summaries]
            assert traces[symbol]["y"] == pytest.approx(want, rel=1e-12), (tid, symbol)
            n_varying += len(set(want)) > 1
    assert n_varying > 0, "runs with different seeds should differ somewhere (else the order check is void)"


def run_whatif(
    page, preset: str, shock_pct: float | str, shock_days: int, paths: int = 300, horizon: int = 20, seed: int = 1
) -> str:
    page.select_option("#whatif-preset", preset)
    page.fill("#whatif-shock-pct", str(shock_pct))
    page.fill("#whatif-shock-horizon", str(shock_days))
    page.fill("#whatif-paths", str(paths))
    page.fill("#whatif-horizon", str(horizon))
    page.fill("#whatif-seed", str(seed))
    page.click("#whatif-submit")
    page.wait_for_selector('#whatif-result[data-status="completed"], #whatif-result[data-status="error"]')
    status = page.get_attribute("#whatif-result", "data-status")
    if status != "completed":
        pytest.fail(f"what-if failed: {page.locator('#whatif-result').inner_text()}")
    return status


def test_whatif_gold_token_loses_exactly_the_gold_move(dashboard):
    page, _ = dashboard
    run_whatif(page, "GRAM", -25, 5)
    assert attr(page, "whatif-status") == "completed"
    # GRAM is a reserve-backed preset: holder value NAV min(1, B) (1 + p); with backing >= 1 and no
    # backlog the premium p stays inside the no-arbitrage band [lo, hi] of its fees on day 0 and
    # day 5, so the loss is the gold move up to the band: 1 - 0.75 (1 + p5) / (1 + p0)
    from models.premium import arbitrage_band
    from models.token.spec import load_token_spec

    spec = load_token_spec(ROOT / "specs" / "gram.toml")
    lo, hi = arbitrage_band(
        spec.primary.mint_fee, spec.primary.redeem_fee, settlement_lag_days=float(spec.primary.settlement_lag_days)
    )
    assert attr(page, "whatif-shock-backing_below_1") == "false"
    loss = value_of(page, "whatif-shock-holder_loss_frac_5d")
    assert 1 - 0.75 * (1 + hi) / (1 + lo) - 1e-12 <= loss <= 1 - 0.75 * (1 + lo) / (1 + hi) + 1e-12
    assert value_of(page, "whatif-headline-holder_loss_frac") == loss
    assert page.locator('[data-testid="whatif-headline-holder_loss_frac"]').inner_text() == f"{loss:.2%}"
    assert value_of(page, "whatif-shock-gold_usd_per_oz_end") == pytest.approx(
        0.75 * value_of(page, "whatif-shock-gold_usd_per_oz_d0"), rel=1e-12
    )
    assert 0.0 <= value_of(page, "whatif-mc-p_backing_below_1") <= 1.0
    assert value_of(page, "whatif-mc-n_paths") == 300


def test_whatif_cdp_bad_debt_closed_form(dashboard):
    page, _ = dashboard
    spec = tomllib.loads((ROOT / "specs" / "gusd_cdp.toml").read_text())
    s = -0.30
    debt, L, h = spec["supply_usd"], spec["liquidation_ratio"], spec["liquidation_haircut"]
    live = bad = live_collateral = 0.0
    liquidated = False
    for tr in spec["tranches"]:
        d, cr = tr["debt_share"] * debt, tr["collateral_ratio"] * (1 + s)
        assert abs(cr - L) > 1e-6, "the test shock must not sit on the liquidation threshold"
        if cr < L:
            liquidated = True
            bad += max(0.0, d - cr * d * (1 - h))
        else:
            live += d
            live_collateral += cr * d
    holder_loss = bad / (live + bad)  # 1 - holder value, day-0 holder value 1
    assert bad > 0 and liquidated, "the chosen shock should leave bad debt (else the check is weak)"
    run_whatif(page, "GUSD", f"{s * 100:g}", 1)
    assert value_of(page, "whatif-shock-holder_loss_frac_1d") == pytest.approx(holder_loss, rel=1e-9)
    assert value_of(page, "whatif-shock-bad_debt_usd") == pytest.approx(bad, rel=1e-9)
    assert attr(page, "whatif-shock-liquidated") == "true"
    # backing = collateral of live tranches / (live debt + unburned bad debt)
    assert value_of(page, "whatif-shock-backing_ratio_1d") == pytest.approx(live_collateral / (live + bad), rel=1e-9)


def test_viewer_sees_no_whatif_form_and_older_runs_have_no_verdict(browser, base_url: str, dash_root: Path):
    page, messages = login(browser, base_url, VIEWER)
    try:
        assert page.get_attribute("body", "data-role") == "viewer"
        assert page.locator("#whatif-form").count() == 0
        assert page.locator("#whatif-section").count() == 0
        older = complete_runs(dash_root)[-2].name
        page.select_option("#run-select", older)
        page.wait_for_selector(f'body[data-ready="true"][data-run-id="{older}"]')
        summ = json.loads((dash_root / "reports" / older / "summary.json").read_text())
        for sym in summ["tokens"]:
            assert "verdict" not in summ["tokens"][sym]
            loc = page.locator(f'[data-testid="verdict-{sym}"]')
            assert loc.inner_text() == "no verdict in this run"
        assert not [m for m in messages if m[0] in ("error", "pageerror")]
    finally:
        page.context.close()


def test_report_renders_in_its_sandbox(browser, base_url: str, run_dir: Path):
    """The stored report renders under the sandboxing CSP (its verdict table and inline SVG
    figures), in an opaque origin that can neither read the session nor call the API."""
    page, messages = login(browser, base_url, ANALYST)
    try:
        page.goto(f"{base_url}/api/runs/{run_dir.name}/report.html")
        page.wait_for_selector("#verdict-table tr[data-token]")
        assert page.locator("figure svg").count() >= 1
        assert page.evaluate("() => window.origin") == "null"
        fetched = page.evaluate(
            "() => fetch('/api/runs', {credentials: 'include'}).then(r => 'status ' + r.status, e => 'blocked')"
        )
        assert fetched == "blocked"
        errors = [m for m in messages if m[0] in ("error", "pageerror") and "Content Security Policy" not in m[1]]
        assert not errors, errors
    finally:
        page.context.close()


# ------------------------------------------------------------ the page's formatting, in Python
def _finite_or_sign(x: float) -> str | None:
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return None


def fmt_pct(v, digits: int = 2) -> str:
    """The page's ``fmtPct``: ``(100 x).toFixed(digits) + "%"`` (JavaScript prints -0 as 0)."""
    if v is None:
        return "–"
    x = float(v)
    return _finite_or_sign(x) or f"{(x * 100) + 0.0:.{digits}f}%"


def fmt_usd_human(v) -> str:
    """The page's ``fmtUsdHuman``: billions with 2 decimals, millions with 1, else grouped USD."""
    if v is None:
        return "–"
    x = float(v)
    if _finite_or_sign(x):
        return _finite_or_sign(x)
    if abs(x) >= 1e9:
        return f"{x / 1e9:.2f} bn USD"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f} m USD"
    return f"{x:,.{2 if abs(x) < 100 else 0}f} USD"


def fmt_days(v) -> str:
    """The page's ``fmtDays``."""
    if v is None:
        return "–"
    x = float(v)
    if _finite_or_sign(x):
        return _finite_or_sign(x)
    n = str(int(x)) if x.is_integer() else f"{x:.1f}"
    return f"{n} {'day' if x == 1 else 'days'}"


def fmt_tokens(v) -> str:
    """The page's ``fmtTokens``."""
    if v is None:
        return "–"
    x = float(v)
    return _finite_or_sign(x) or f"{x:,.0f} tokens"


def fmt_coverage(v) -> str:
    return fmt_pct(v, 0)


def fmt_unit(unit: str, v) -> str:
    """The page's ``fmtUnit`` of a verdict check or compared figure."""
    return {"fraction": fmt_pct, "usd": fmt_usd_human, "ratio": lambda x: fmt_pct(x, 1), "days": fmt_days}[unit](v)


def text_of(page, testid: str) -> str:
    loc = page.locator(f'[data-testid="{testid}"]')
    assert loc.count() == 1, f"expected one element with data-testid={testid!r}, found {loc.count()}"
    return loc.inner_text()


def check_figure(page, testid: str, value, text: str) -> None:
    """The element's raw value equals the summary's and its text the same value formatted."""
    assert same(value_of(page, testid), json_number(value)), (testid, value)
    assert text_of(page, testid) == text, testid


LIQUIDITY_FORMATS = {
    "liquidity_coverage_1d_q01": fmt_coverage,
    "liquidity_coverage_5d_q01": fmt_coverage,
    "liquidity_coverage_10d_q01": fmt_coverage,
    "liquidity_coverage_30d_q01": fmt_coverage,
    "p_liquidity_coverage_below_1_30d": fmt_pct,
    "redemption_outflow_usd_end_mean": fmt_usd_human,
    "redemption_outflow_frac_of_day0_liabilities_end_mean": fmt_pct,
    "redemption_outflow_frac_of_day0_liabilities_end_q99": fmt_pct,
    "redemption_queue_max_tokens_q99": fmt_tokens,
    "redemption_wait_max_days_q99": fmt_days,
    "redemption_queue_end_tokens_mean": fmt_tokens,
    "p_abs_premium_gt_1pct": fmt_pct,
    "p_abs_premium_gt_5pct": fmt_pct,
    "depeg_depth_q99_frac": fmt_pct,
    "depeg_longest_days_beyond_1pct_q99": fmt_days,
}
"""Liquidity-stress figures the page shows (keys of ``liquidity_stress.outcome.<T>.monte_carlo_behavioural``)."""


def test_verdict_table_comes_first_and_equals_summary(dashboard, summary: dict):
    page, _ = dashboard
    order = page.eval_on_selector_all("main > section", "ss => ss.map(s => s.id)")
    assert order.index("verdict-section") < order.index("headline-section") < order.index("liquidity-section")
    statuses = set()
    for sym, t in summary["tokens"].items():
        v = t["verdict"]
        statuses.add(v["verdict"])
        assert attr(page, f"verdict-{sym}") == v["verdict"]
        assert text_of(page, f"verdict-{sym}-reason") == v["reason"]
        for c in v["checks"]:
            base = f"verdict-{sym}-check-{c['key']}"
            check_figure(page, f"{base}-value", c["value"], fmt_unit(c["unit"], c["value"]))
            check_figure(page, f"{base}-limit", c["limit"], fmt_unit(c["unit"], c["limit"]))
            assert attr(page, f"{base}-status") == c["status"]
        w = v["worst_scenario"]
        check_figure(
            page,
            f"verdict-{sym}-worst",
            w["drawdown_frac"],
            f"{w['label']}: {fmt_pct(w['drawdown_frac'])} peak-to-trough",
        )
        r = v["remedy"]
        if r is None:
            assert text_of(page, f"verdict-{sym}-remedy") == "none needed"
        else:
            check_figure(page, f"verdict-{sym}-remedy", r["usd"], f"{r['action']} ({fmt_usd_human(r['usd'])})")
    assert statuses == {"pass", "watch", "fail"}, "the fixture should exercise every verdict"


def test_liquidity_recommendations_reverse_stress_equal_summary(dashboard, summary: dict):
    page, _ = dashboard
    ls = summary["liquidity_stress"]
    assert ls["outcome"] and ls["remedies"], "the newest run has a liquidity stress test with remedies"
    n = 0
    for sym, o in ls["outcome"].items():
        mcb = o["monte_carlo_behavioural"]
        for key, f in LIQUIDITY_FORMATS.items():
            if key in mcb:
                check_figure(page, f"liq-{sym}-{key}", mcb[key], f(mcb[key]))
                n += 1
        wave = o["redemption_wave_without_remedy"]["coverage_q"]
        check_figure(page, f"liq-{sym}-wave-coverage", wave, fmt_coverage(wave))
    assert n >= 10 * len(ls["outcome"])
    for sym, r in ls["remedies"].items():
        buf = r["cash_buffer_usd"]
        want = (
            f"not reachable up to {fmt_usd_human(r['cash_buffer_searched_up_to_usd'])}"
            if not r["cash_buffer_reachable"]
            else "none needed"
            if buf == 0
            else fmt_usd_human(buf)
        )
        check_figure(page, f"rec-{sym}-cash-buffer", buf, want)
        check_figure(
            page,
            f"rec-{sym}-cash-buffer-share",
            r["cash_buffer_frac_of_liabilities"],
            fmt_pct(r["cash_buffer_frac_of_liabilities"]),
        )
        for which, setting in (("current", r["current_setting"]), ("recommended", r["recommended_setting"])):
            check_figure(page, f"rec-{sym}-fee-{which}", setting["redeem_fee"], fmt_pct(setting["redeem_fee"]))
            lim = setting["redemption_limit_share_per_day"]
            assert same(value_of(page, f"rec-{sym}-limit-{which}"), json_number(lim))
            assert text_of(page, f"rec-{sym}-limit-{which}") == (
                "no limit" if lim is None else f"{fmt_pct(lim, 1)} of supply per day"
            )
            cov = setting["wave"]["coverage_q"]
            check_figure(page, f"rec-{sym}-wave-coverage-{which}", cov, fmt_coverage(cov))
            ref = setting["wave"]["refused_share_mean"]
            check_figure(page, f"rec-{sym}-refused-{which}", ref, fmt_pct(ref))
    for sym, t in summary["tokens"].items():
        rs = t["reverse_stress"]
        m = rs["smallest_breaking_move"]
        move = None if m is None else m["move_frac"]
        text = "none in the searched range" if m is None else f"{fmt_pct(move, 1)} within {fmt_days(m['horizon_days'])}"
        check_figure(page, f"rev-{sym}-move", move, text)
        for x in rs["searches"]:
            tid = f"rev-{sym}-search-{x['horizon_days']}-{'fall' if x['direction'] < 0 else 'rise'}"
            assert same(value_of(page, tid), json_number(x["move_frac"])), tid
        for i, row in enumerate((t.get("reverse_stress_boundary") or {}).get("rows") or []):
            assert same(value_of(page, f"rev-{sym}-boundary-{i}"), json_number(row["gold_drop_frac"]))


def test_downloads_are_the_published_files(dashboard, base_url: str, run_dir: Path):
    page, _ = dashboard
    marker = json.loads((run_dir / "published.json").read_text())
    want = sorted(f["name"] for f in marker["files"] if f["name"] == "summary.json" or f["name"].startswith("results/"))
    links = page.eval_on_selector_all("#downloads a", "as => as.map(a => [a.textContent, a.getAttribute('href')])")
    assert sorted(name for name, _ in links) == want
    hrefs = dict(links)
    for name in ("summary.json", "results/mc_champion.parquet"):
        r = page.request.get(base_url + hrefs[name])  # with the page's session cookie
        assert r.status == 200
        assert r.body() == (run_dir / name).read_bytes(), name


def test_analyst_sees_every_preset(dashboard):
    from goldstress.settings import Settings

    page, _ = dashboard
    assert page.get_attribute("body", "data-role") == "analyst"
    assert page.locator("#whatif-form").is_visible()
    symbols = sorted(tomllib.loads(Path(p).read_text())["symbol"].upper() for p in Settings().scenarios.token_specs)
    assert len(symbols) == 5
    offered = page.eval_on_selector_all("#whatif-preset option", "os => os.map(o => o.value)")
    assert sorted(offered) == symbols


WHATIF_PEG_FORMATS = {
    "premium_end_q0.01_frac": fmt_pct,
    "premium_end_q0.5_frac": fmt_pct,
    "premium_end_q0.99_frac": fmt_pct,
    "p_abs_premium_gt_1pct": fmt_pct,
    "p_abs_premium_gt_5pct": fmt_pct,
    "liquidity_coverage_1d_q01": fmt_coverage,
    "liquidity_coverage_5d_q01": fmt_coverage,
    "liquidity_coverage_30d_q01": fmt_coverage,
    "p_liquidity_coverage_below_1_30d": fmt_pct,
    "redeemed_frac_of_day0_supply_end_mean": fmt_pct,
    "redemption_queue_max_tokens_q99": fmt_tokens,
    "redemption_queue_end_tokens_mean": fmt_tokens,
}


def test_whatif_peg_and_liquidity_beside_the_base_run(dashboard, summary: dict):
    page, _ = dashboard
    run_whatif(page, "PAXG", -20, 5, horizon=30)
    base = summary["tokens"]["PAXG"]["scenarios"]["mc_champion"]
    for key, f in WHATIF_PEG_FORMATS.items():
        got = value_of(page, f"whatif-peg-{key}")
        # the figure is the what-if's own Monte Carlo figure, listed in full below it
        assert same(got, value_of(page, f"whatif-mc-{key}")), key
        assert text_of(page, f"whatif-peg-{key}") == f(got)
        check_figure(page, f"whatif-base-{key}", base[key], f(base[key]))
    assert (
        0.0
        <= value_of(page, "whatif-peg-p_abs_premium_gt_5pct")
        <= value_of(page, "whatif-peg-p_abs_premium_gt_1pct")
        <= 1.0
    )
    run_whatif(page, "GUSD", -10, 1)
    assert page.locator('[data-testid="whatif-peg-absent"]').count() == 1


def test_compare_shows_the_differences(dashboard, dash_root: Path):
    page, _ = dashboard
    runs = complete_runs(dash_root)
    a, b = runs[-2], runs[-1]
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    page.select_option("#compare-a", a.name)
    page.select_option("#compare-b", b.name)
    page.click("#compare-submit")
    page.wait_for_selector('#compare-result[data-status="completed"]')
    assert text_of(page, "cmp-run-a") == a.name and text_of(page, "cmp-run-b") == b.name
    n_changed = 0
    for sym, tb in sb["tokens"].items():
        ta = sa["tokens"][sym]
        assert text_of(page, f"cmp-{sym}-verdict-a") == "no verdict"
        assert attr(page, f"cmp-{sym}-verdict-b") == tb["verdict"]["verdict"]
        assert attr(page, f"cmp-{sym}-verdict-changed") == "true"
        for key, unit in (("holder_value_var_99_10d_frac", "fraction"), ("expected_bad_debt_usd", "usd")):
            va = ta["scenarios"]["mc_champion"][key]
            vb = tb["scenarios"]["mc_champion"][key]
            check_figure(page, f"cmp-{sym}-{key}-a", va, fmt_unit(unit, va))
            check_figure(page, f"cmp-{sym}-{key}-b", vb, fmt_unit(unit, vb))
            d = value_of(page, f"cmp-{sym}-{key}-abs")
            assert d == pytest.approx(vb - va, rel=1e-12, abs=1e-15)
            rel = value_of(page, f"cmp-{sym}-{key}-rel")
            assert rel == (None if va == 0 else pytest.approx((vb - va) / abs(va), rel=1e-12))
            n_changed += vb != va
            if unit == "fraction":
                assert text_of(page, f"cmp-{sym}-{key}-abs") == ("+" if d > 0 else "") + f"{d * 100 + 0.0:.2f} pp"
    assert n_changed > 0, "runs with different seeds should differ somewhere"
