"""The reverse stress statement of every token is true of the model: it agrees with the model's
own search (models.metrics.reverse_stress_summary), for every spec in specs/ at any start price;
and the closed form (models.risk.closed_form_break_move) is the search's answer for a token
without holder flows wherever its formula is exact."""

from __future__ import annotations

import re
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goldstress.settings import PROJECT_ROOT
from models.metrics import MOVE_AGREEMENT_TOL, closed_form_agrees, reverse_stress_summary
from models.risk import closed_form_break_move
from models.token.outcome import BREACH_TOL
from models.token.spec import parse_token_spec
from tests.models.token_specs import simple_reserve_backed

SPEC_FILES = sorted((PROJECT_ROOT / "specs").glob("*.toml"))
HORIZONS = (1, 10, 30)
MOVE_RE = re.compile(r"gold (fall|rise) of ([0-9.]+)%")


def check_statement_against_search(rs: dict) -> None:
    """The statement's claim, read from its text, against the search rows (independent of which
    source the statement took)."""
    text, rows = rs["statement"]["text"], rs["searches"]
    breaks_flat = any(r["breaks_without_move"] for r in rows)
    found = [r for r in rows if r["move_frac"] is not None]
    if breaks_flat:
        assert all(r["breaks_without_move"] for r in rows)  # one window for every horizon
        assert "with no gold move" in text and "no gold move breaks" not in text, text
        day = re.search(r"within (\d+) days with no gold move|on day (\d+) with no gold move", text)
        assert day is not None, text
        claimed = int(day.group(1) or day.group(2))
        assert rs["model_breaks_without_move_day"] is not None
        assert rs["model_breaks_without_move_day"] <= claimed  # "within N days" holds in the model
    elif not found:  # nothing breaks within the searched range
        assert "no gold move breaks" in text or "finds no break within it" in text, text
    else:
        m = MOVE_RE.search(text) or re.search(r"at a gold fall of ([0-9.]+)%", text)
        assert m is not None, text
        word, pct = (m.group(1), m.group(2)) if m.lastindex == 2 else ("fall", m.group(1))
        sign = -1 if word == "fall" else 1
        moves = [r["move_frac"] for r in found if r["direction"] == sign]
        assert moves, (text, rows)
        assert min(abs(sign * float(pct) / 100 - v) for v in moves) <= MOVE_AGREEMENT_TOL + 5e-5, (text, moves)


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p0=st.floats(min_value=300.0, max_value=20_000.0))
def test_every_spec_statement_agrees_with_the_model_search(path, p0: float) -> None:
    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    rs = reverse_stress_summary(spec, p0, HORIZONS)
    check_statement_against_search(rs)
    cf = rs["closed_form"]
    assert cf["agrees_with_search"] == closed_form_agrees(cf, rs["searches"], rs["model_breaks_without_move_day"])
    if rs["statement"]["source"] == "closed_form":
        assert cf["agrees_with_search"] and rs["statement"]["text"].startswith(cf["statement"])
    else:
        assert not cf["agrees_with_search"] and cf["statement"] in rs["statement"]["note"]


def test_dgx_breaks_without_a_gold_move_from_its_operating_costs() -> None:
    """DGX-like preset: fully gold-covered, USD 20,000 of cash, USD 200,000 a year of opex over
    252 model days: the opex passes the cash on day floor(20,000 * 252 / 200,000) + 1 = 26, inside
    the 30-day window, so the backing breaks with no gold move; the model agrees (its flows move
    gold at NAV and do not change the day)."""
    spec = tomllib.loads((PROJECT_ROOT / "specs" / "dgx.toml").read_text(encoding="utf-8"))
    rs = reverse_stress_summary(spec, 4400.0, HORIZONS)
    assert rs["closed_form"]["move_frac"] == 0.0 and rs["closed_form"]["breaks_without_move_day"] == 26
    assert all(r["breaks_without_move"] for r in rs["searches"])
    assert rs["statement"]["source"] == "closed_form"
    assert rs["statement"]["text"].startswith("backing breaks within 26 days with no gold move: operating costs")
    assert "no gold move breaks" not in rs["statement"]["text"]


@settings(max_examples=40, deadline=None)
@given(
    # exactly 1, or clear of it (within the breach tolerance 1 - 1e-9 the model and the formula
    # may round a zero surplus either way)
    coverage=st.one_of(
        st.just(1.0), st.floats(min_value=0.5, max_value=0.999), st.floats(min_value=1.001, max_value=1.5)
    ),
    cash_frac=st.floats(min_value=0.0, max_value=0.3),
    opex_frac=st.floats(min_value=0.0, max_value=1.0),
)
def test_closed_form_is_the_search_for_a_token_without_flows(coverage: float, cash_frac: float, opex_frac: float):
    """Token of 1e6 tokens of 1 g without holder flows, fees or haircuts (every asset sold at the
    day's price): the closed form's move (or its day, with no move) is what the model's search
    finds, where the formula is exact: gold coverage 1, or a cash that covers the window's opex
    (no gold sold to pay it). Cash and opex are drawn as fractions of the day-0 liabilities."""
    p0 = 4000.0
    liab = 1e6 * p0 / 31.1034768
    cash = cash_frac * liab
    opex = opex_frac * liab  # USD a year; 30 model days are 30 / 252 of it
    shortfall = opex * 30 / 252 - cash
    if (coverage != 1.0 and shortfall > 0) or (coverage == 1.0 and 0 < shortfall <= BREACH_TOL * liab):
        # outside the exact domain (gold sold during a ramp at its day's price; with full cover, a
        # shortfall within the breach tolerance, whose USD size moves with gold): no opex
        opex = 0.0
    spec = simple_reserve_backed(
        supply_tokens=1e6, gold_reserve_g=coverage * 1e6, cash_buffer_usd=cash, opex_usd_per_year=opex
    )
    rs = reverse_stress_summary(spec.model_dump(mode="json"), p0, HORIZONS)
    cf = closed_form_break_move(parse_token_spec(spec.model_dump(mode="json")), p0, window_days=30)
    edge = cf["move_frac"] not in (None, 0.0) and abs(abs(cf["move_frac"]) - 0.99) < 2e-3  # at the search's edge
    if not edge:
        assert closed_form_agrees(cf, rs["searches"], rs["model_breaks_without_move_day"]), (cf, rs["searches"])
        assert rs["statement"]["source"] == "closed_form"
    if cf["move_frac"] == 0.0:
        assert rs["model_breaks_without_move_day"] == cf["breaks_without_move_day"]
    check_statement_against_search(rs)


def test_full_cover_with_a_shortfall_within_the_tolerance_breaks_after_a_fall():
    """Full gold cover, no cash, and 30 days of opex (USD 0.015) below the breach tolerance of the
    liabilities (1e-9 of USD 129m): no break at a flat price, but the tolerance's USD size falls
    with gold, so a fall of ``1 - D / (tol S grams P0) = 1 - 30 / 252`` breaks it on the window's
    last day. A move reached on day 1 is that case exactly (the gold sold for the opex is sold at
    the fallen price); slower ramps sell some of it higher, so they need a larger fall."""
    p0 = 4000.0
    liab = 1e6 * p0 / 31.1034768
    spec = simple_reserve_backed(
        supply_tokens=1e6, gold_reserve_g=1e6, cash_buffer_usd=0.0, opex_usd_per_year=BREACH_TOL * liab
    )
    cf = closed_form_break_move(parse_token_spec(spec.model_dump(mode="json")), p0, window_days=30)
    # the model's threshold 1 - (1 - tol) carries a rounding of up to 1e-16 / 1e-9 relative
    assert cf["direction"] == -1 and cf["move_frac"] == pytest.approx(30 / 252 - 1, rel=1e-6)
    rs = reverse_stress_summary(spec.model_dump(mode="json"), p0, HORIZONS)
    assert rs["model_breaks_without_move_day"] is None
    falls = {r["horizon_days"]: r["move_frac"] for r in rs["searches"] if r["direction"] == -1}
    assert all(r["move_frac"] is None for r in rs["searches"] if r["direction"] == 1)
    assert abs(falls[1] - cf["move_frac"]) <= MOVE_AGREEMENT_TOL
    assert falls[1] > falls[10] > falls[30] > -0.99
    check_statement_against_search(rs)


def test_reverse_stress_runs_the_premium_without_its_noise():
    """The search's model keeps the premium's mean, persistence and band pull but draws no noise:
    two runs with different random streams give the same premium path, so a flat gold price
    breaks (or not) the same way in both directions of the search."""
    import numpy as np

    from models.metrics import NOISELESS_PREMIUM_SIGMA, without_premium_noise
    from models.token.reserve_backed import ReserveBackedToken
    from models.token.spec import load_token_spec

    spec = load_token_spec(SPEC_FILES[[p.stem for p in SPEC_FILES].index("xaut")])
    quiet = without_premium_noise(spec)
    before, after = spec.secondary.premium, quiet.secondary.premium
    assert after["sigma"] == NOISELESS_PREMIUM_SIGMA and after["jump_intensity_per_day"] == 0.0
    assert {k: after[k] for k in ("mean", "phi", "band_pull")} == {k: before[k] for k in ("mean", "phi", "band_pull")}
    gold = np.full((2, 31), 4400.0)
    a = ReserveBackedToken(quiet).run(gold, rng=np.random.default_rng(1)).premium_frac
    b = ReserveBackedToken(quiet).run(gold[:1], rng=np.random.default_rng(2)).premium_frac
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-9)
