"""Risk metrics vs closed forms, published tables and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from models.risk import (
    ReverseStressResult,
    basel_traffic_light,
    christoffersen_cc,
    christoffersen_independence,
    closed_form_break_move,
    kupiec_pof,
    reverse_stress,
    var_es,
    var_exceptions,
)
from models.token.cdp import CdpStablecoin
from models.token.outcome import BREACH_TOL
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import CdpStablecoinSpec, ReserveBackedTokenSpec
from models.units import TROY_OUNCE_G
from tests.models.token_specs import simple_reserve_backed

# --------------------------------------------------------------------------- VaR / ES


def test_var_es_exact_small_examples() -> None:
    losses = np.arange(1.0, 101.0)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(losses)
    # n*(1-p) = 5: VaR is the 95th smallest loss, ES the mean of the 5 beyond it
    assert var_es(shuffled, 0.95) == (95.0, pytest.approx(98.0, rel=1e-12))
    # n*(1-p) = 2.5: VaR = l_(98); ES = (99 + 100 + 0.5 * 98) / 2.5 (Acerbi-Tasche weights)
    var, es = var_es(shuffled, 0.975)
    assert var == 98.0 and es == pytest.approx((99 + 100 + 0.5 * 98) / 2.5, rel=1e-14)
    # 1000 losses at 99 %: the 10 largest make the tail, the 11th largest is VaR
    big = rng.permutation(np.arange(1000.0))
    assert var_es(big, 0.99) == (989.0, pytest.approx(np.mean(np.arange(990.0, 1000.0))))
    assert var_es(np.array([3.0]), 0.99) == (3.0, 3.0)
    # gains (negative losses) are fine: VaR can be negative
    assert var_es(-np.arange(1.0, 101.0), 0.95) == (-6.0, pytest.approx(-3.0, rel=1e-12))


def acerbi_tasche_es(losses: np.ndarray, level: float) -> float:
    """ES^(n) of Acerbi & Tasche (2002), written on the descending order statistics:
    (sum of the w largest + (k - w) * the (w+1)-th largest) / k, with k = n(1-level), w = [k]."""
    desc = np.sort(losses)[::-1]
    k = len(losses) * (1 - level)
    w = int(math.floor(k + 1e-9))
    tail = desc[:w].sum() + (k - w) * (desc[w] if w < len(desc) else 0.0)
    return tail / k


@pytest.mark.parametrize(("n", "level"), [(37, 0.9), (250, 0.99), (1001, 0.975), (5000, 0.95)])
def test_es_matches_acerbi_tasche_order_statistic_formula(n: int, level: float) -> None:
    losses = np.random.default_rng(n).standard_t(3, size=n)
    var, es = var_es(losses, level)
    assert es == pytest.approx(acerbi_tasche_es(losses, level), rel=1e-12)
    # VaR is the lower empirical quantile (NumPy's inverted_cdf)
    assert var == np.quantile(losses, level, method="inverted_cdf")
    assert es >= var


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_var_es_normal_closed_forms(level: float) -> None:
    n, sigma = 400_000, 0.012
    losses = np.random.default_rng(42).normal(0.0, sigma, n)
    var, es = var_es(losses, level)
    z = stats.norm.ppf(level)
    var_true = sigma * z
    es_true = sigma * stats.norm.pdf(z) / (1 - level)
    # asymptotic SEs: quantile sqrt(p(1-p)/n)/f(q); ES sqrt((Var(L|L>q) + p(ES-q)^2)/(n(1-p)))
    se_var = math.sqrt(level * (1 - level) / n) / (stats.norm.pdf(z) / sigma)
    tail_var = sigma**2 * (1 + z * stats.norm.pdf(z) / (1 - level)) - es_true**2
    se_es = math.sqrt((tail_var + level * (es_true - var_true) ** 2) / (n * (1 - level)))
    assert abs(var - var_true) < 4 * se_var
    assert abs(es - es_true) < 4 * se_es


@pytest.mark.parametrize(
    ("losses", "level", "match"),
    [
        (np.array([]), 0.99, "losses"),
        (np.ones((2, 2)), 0.99, "losses"),
        (np.array([1.0, np.nan]), 0.99, "losses"),
        (np.ones(5), 1.0, "level"),
        (np.ones(5), 99, "level"),
    ],
)
def test_var_es_rejects_bad_input(losses: np.ndarray, level: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        var_es(losses, level)


def test_var_exceptions() -> None:
    assert var_exceptions(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])).tolist() == [False, False, True]
    with pytest.raises(ValueError, match="var_forecasts"):
        var_exceptions(np.ones(3), np.ones(4))


# --------------------------------------------------------------------------- backtests


@pytest.mark.parametrize(
    ("x", "n", "level"),
    [(0, 250, 0.99), (1, 250, 0.99), (7, 250, 0.99), (30, 500, 0.95), (250, 250, 0.99), (13, 1000, 0.975)],
)
def test_kupiec_matches_binomial_likelihood_ratio(x: int, n: int, level: float) -> None:
    lr, p = kupiec_pof(x, n, level)
    expected = -2 * (stats.binom.logpmf(x, n, 1 - level) - stats.binom.logpmf(x, n, x / n))
    assert lr == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert p == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-9)


def test_kupiec_edge_cases() -> None:
    lr0, _ = kupiec_pof(0, 250, 0.99)
    assert lr0 == pytest.approx(-2 * 250 * math.log(0.99))  # = 5.025: rejects at 5 %
    assert kupiec_pof(10, 1000, 0.99) == (0.0, 1.0)  # exactly the expected rate
    with pytest.raises(ValueError, match="n_exceptions"):
        kupiec_pof(5, 4, 0.99)
    with pytest.raises(ValueError, match="n_obs"):
        kupiec_pof(0, 0, 0.99)
    with pytest.raises(ValueError, match="level"):
        kupiec_pof(1, 10, 0.0)


def markov_lr_brute_force(e: np.ndarray) -> float:
    """2 * (Markov log-likelihood - iid log-likelihood), by walking the sequence."""
    counts: dict[tuple[bool, bool], int] = {}
    for a, b in zip(e[:-1], e[1:]):
        counts[(bool(a), bool(b))] = counts.get((bool(a), bool(b)), 0) + 1
    ll_markov = ll_iid = 0.0
    ones = sum(v for (a, b), v in counts.items() if b)
    pi = ones / (len(e) - 1)
    for a, b in zip(e[:-1], e[1:]):
        from_a = counts.get((bool(a), True), 0) + counts.get((bool(a), False), 0)
        p_b = counts[(bool(a), bool(b))] / from_a
        ll_markov += math.log(p_b)
        ll_iid += math.log(pi if b else 1 - pi)
    return 2 * (ll_markov - ll_iid)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_christoffersen_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    e = rng.random(500) < 0.05
    e[100:104] = True  # a cluster, so n11 > 0
    lr, p = christoffersen_independence(e)
    assert lr == pytest.approx(markov_lr_brute_force(e), rel=1e-10)
    assert p == pytest.approx(stats.chi2.sf(lr, 1))
    lr_cc, p_cc = christoffersen_cc(e, 0.95)
    x = int(e[1:].sum())
    assert lr_cc == pytest.approx(kupiec_pof(x, len(e) - 1, 0.95)[0] + lr, rel=1e-12)
    assert p_cc == pytest.approx(stats.chi2.sf(lr_cc, 2))


def test_christoffersen_edge_cases_and_power() -> None:
    assert christoffersen_independence(np.zeros(250, dtype=bool)) == (0.0, 1.0)
    assert christoffersen_independence(np.ones(250, dtype=bool)) == (0.0, 1.0)
    # a single exception at the end: n01 = 1, no transition out of it: LR = 0
    e = np.zeros(100, dtype=bool)
    e[-1] = True
    assert christoffersen_independence(e)[0] == pytest.approx(0.0, abs=1e-12)
    # all exceptions in one block of 10: strongly dependent
    e = np.zeros(250, dtype=bool)
    e[100:110] = True
    assert christoffersen_independence(e)[1] < 1e-6
    with pytest.raises(ValueError, match="exceptions"):
        christoffersen_independence(np.array([True]))
    with pytest.raises(ValueError, match="exceptions"):
        christoffersen_independence(np.array([0, 2, 1]))


def test_christoffersen_size_under_independence() -> None:
    """iid exceptions: rejection rate at 5 % is 5 %; 400 samples give SE 1.1 %, tolerance 3.3 %
    (T = 5000, p = 0.1, so about 50 consecutive-exception pairs: chi2 asymptotics hold)."""
    rng = np.random.default_rng(123)
    pvals = [christoffersen_independence(rng.random(5000) < 0.1)[1] for _ in range(400)]
    rate = np.mean(np.array(pvals) < 0.05)
    assert abs(rate - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 400)


# BCBS (1996), Table 2: cumulative probability (%) of x or fewer exceptions, 250 days at 99 %
BCBS_TABLE = {
    0: 8.11,
    1: 28.58,
    2: 54.32,
    3: 75.81,
    4: 89.22,
    5: 95.88,
    6: 98.63,
    7: 99.60,
    8: 99.89,
    9: 99.97,
    10: 99.99,
}


def test_basel_traffic_light_matches_published_table() -> None:
    zones = [basel_traffic_light(x) for x in range(16)]
    assert zones == ["green"] * 5 + ["yellow"] * 5 + ["red"] * 6
    for x, pct in BCBS_TABLE.items():
        assert round(100 * stats.binom.cdf(x, 250, 0.01), 2) == pct
    assert basel_traffic_light(250) == "red"


def test_basel_traffic_light_other_sizes_and_errors() -> None:
    # 500 days at 99 %: expected 5; cdf(8) = 0.93 (green), cdf(9) = 0.97 (yellow)
    assert basel_traffic_light(8, 500) == "green"
    assert basel_traffic_light(9, 500) == "yellow"
    assert stats.binom.cdf(8, 500, 0.01) < 0.95 <= stats.binom.cdf(9, 500, 0.01)
    with pytest.raises(ValueError, match="n_exceptions"):
        basel_traffic_light(-1)
    with pytest.raises(ValueError, match="n_exceptions"):
        basel_traffic_light(2.0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reverse stress

P0 = 4400.0


def gusd(haircut: float = 0.05) -> CdpStablecoinSpec:
    return CdpStablecoinSpec(
        spec_version=2,
        kind="gold_cdp",
        name="G",
        symbol="G",
        supply_usd=1e8,
        tranches=[
            {"debt_share": 0.5, "collateral_ratio": 1.8},
            {"debt_share": 0.3, "collateral_ratio": 1.5},
            {"debt_share": 0.2, "collateral_ratio": 1.3},
        ],
        liquidation_ratio=1.2,
        liquidation_penalty=0.13,
        liquidation_haircut=haircut,
    )


def gold_token(coverage: float, cash_usd: float, **kw: float) -> ReserveBackedTokenSpec:
    """Reserve-backed token of 1e6 tokens of 1 g: gold coverage ``coverage``, cash ``cash_usd``."""
    return simple_reserve_backed(supply_tokens=1e6, gold_reserve_g=coverage * 1e6, cash_buffer_usd=cash_usd, **kw)


@pytest.mark.parametrize("haircut", [0.0, 0.05, 0.5])
def test_reverse_stress_cdp_first_liquidation_closed_form(haircut: float) -> None:
    tol = 1e-4
    expected = 1.2 / 1.3 - 1  # L / CR_min - 1: the weakest tranche hits L
    res = reverse_stress(CdpStablecoin(gusd(haircut)), P0, (1, 10, 30), direction=-1, tol=tol)
    assert [r.horizon_days for r in res] == [1, 10, 30]
    for r in res:
        assert isinstance(r, ReverseStressResult) and not r.baseline_breaks
        assert expected - tol <= r.move <= expected  # on the breaking side, within tol
        assert r.max_move == -0.99


def test_reverse_stress_cdp_never_breaks_on_a_rise() -> None:
    res = reverse_stress(CdpStablecoin(gusd()), P0, (1, 30), direction=+1)
    assert [r.move for r in res] == [None, None]


def test_reverse_stress_partially_gold_backed_token_breaks_on_a_rise() -> None:
    """Backing = g + C / (S * P_g) < 1  <=>  P_g > C / (S * (1 - g)): the cash does not grow."""
    g, supply = 0.9, 1e6
    p0_g = P0 / TROY_OUNCE_G
    cash = 1.37 * p0_g * supply * (1 - g)  # breaks 37 % above today's price
    threshold_g = cash / (supply * 1.0 * (1 - g))
    expected = threshold_g / p0_g - 1
    model = ReserveBackedToken(gold_token(g, cash))
    up = reverse_stress(model, P0, (1, 10, 30), direction=+1, tol=1e-5, total_days=60)
    for r in up:
        assert expected <= r.move <= expected + 1e-5
    cf = closed_form_break_move(gold_token(g, cash), P0, window_days=60)
    # in the numbers the closed form uses the model's breach test B < 1 - BREACH_TOL:
    # m* = C / ((1 - g - BREACH_TOL) S P0_g) - 1, 1.4e-8 above the textbook threshold
    exact = cash / ((1 - g - BREACH_TOL) * supply * p0_g) - 1
    assert cf["direction"] == 1 and cf["move_frac"] == pytest.approx(exact, rel=1e-12)
    assert cf["move_frac"] == pytest.approx(expected, rel=1e-7)
    # a fall only raises the cash share: never breaks
    assert [r.move for r in reverse_stress(model, P0, (1, 30), direction=-1)] == [None, None]


def test_reverse_stress_fully_backed_frictionless_token_never_breaks() -> None:
    model = ReserveBackedToken(
        gold_token(
            1.0, 0.0, base_redeem_rate_per_day=0.01, redeem_drawdown_sensitivity=0.2, base_mint_rate_per_day=0.01
        )
    )
    for direction in (-1, 1):
        res = reverse_stress(model, P0, (1, 10, 30), direction=direction, total_days=100)
        assert [r.move for r in res] == [None, None, None]


def test_closed_form_break_move_per_kind() -> None:
    cdp = closed_form_break_move(gusd(), P0, window_days=30)
    assert cdp["direction"] == -1 and cdp["move_frac"] == pytest.approx(1.2 / 1.3 - 1, rel=1e-15)
    assert closed_form_break_move(gold_token(1.0, 0.0), P0, window_days=30)["move_frac"] is None
    assert closed_form_break_move(gold_token(0.8, 0.0), P0, window_days=30)["move_frac"] == 0.0
    with pytest.raises(ValueError, match="p0_usd_per_oz"):
        closed_form_break_move(gusd(), 0.0, window_days=30)
    with pytest.raises(ValueError, match="window_days"):
        closed_form_break_move(gusd(), P0, window_days=-1)
    with pytest.raises(ValueError, match="spec"):
        closed_form_break_move("gram", P0, window_days=30)  # type: ignore[arg-type]


def test_closed_form_with_opex_by_hand() -> None:
    """1e6 tokens of 1 g at P0_g = P0 / 31.1034768 USD per gram; opex O = 252,000 USD a year
    over 252 model days a year = 1,000 USD a model day."""
    p0_g = P0 / TROY_OUNCE_G
    kw = dict(opex_usd_per_year=252_000.0, days_per_year=252.0)
    # g = 1, cash 25,500 USD: the opex passes the cash on day floor(25.5) + 1 = 26 (within 30)
    cf = closed_form_break_move(gold_token(1.0, 25_500.0, **kw), P0, window_days=30)
    assert (cf["move_frac"], cf["breaks_without_move_day"]) == (0.0, 26)
    assert cf["statement"].startswith("backing breaks within 26 days with no gold move: operating costs")
    # ... but not within 25 days
    cf = closed_form_break_move(gold_token(1.0, 25_500.0, **kw), P0, window_days=25)
    assert cf["move_frac"] is None and cf["statement"].startswith("no gold move breaks the backing within 25 days")
    # g = 1.01 (10,000 g beyond the tokens), cash 10,000 USD, 30 days: D = 30,000 > C, so a fall
    # breaks it when 10,000 g * P_g < 20,000 USD: m* = 20,000 / (10,000 P0_g) - 1 (with the
    # model's breach test B < 1 - tol, (10,000 + tol 1e6) g)
    cf = closed_form_break_move(gold_token(1.01, 10_000.0, **kw), P0, window_days=30)
    exact = 20_000.0 / ((0.01 + BREACH_TOL) * 1e6 * p0_g) - 1.0
    assert cf["direction"] == -1 and cf["move_frac"] == pytest.approx(exact, rel=1e-9)
    assert cf["move_frac"] == pytest.approx(2.0 / p0_g - 1.0, rel=1e-6)
    # g = 0.99 (10,000 g short), cash C = 10,000 P0_g * 1.5 + 30,000: a rise of 50 % breaks it
    cash = 10_000.0 * p0_g * 1.5 + 30_000.0
    cf = closed_form_break_move(gold_token(0.99, cash, **kw), P0, window_days=30)
    exact = 1.5 * 0.01 / (0.01 - BREACH_TOL) - 1.0
    assert cf["direction"] == 1 and cf["move_frac"] == pytest.approx(exact, rel=1e-9)
    assert cf["move_frac"] == pytest.approx(0.5, rel=1e-6)


def test_reverse_stress_reports_a_token_broken_at_baseline() -> None:
    res = reverse_stress(ReserveBackedToken(gold_token(0.8, 0.0)), P0, (1, 10))
    assert [(r.move, r.baseline_breaks) for r in res] == [(0.0, True), (0.0, True)]


def test_reverse_stress_opex_breaks_the_token_once_cash_is_gone() -> None:
    """Opex is paid from cash, then by selling gold. No cash: below 1 after day 1 whatever the
    price (baseline breaks). Cash of exactly 5 days of opex: backing in grams stays 1 up to day
    5 (never breaks over 5 days) and falls below 1 on day 6 (baseline breaks over 6 days)."""
    spec = gold_token(1.0, 0.0, opex_usd_per_year=252e3)
    assert reverse_stress(ReserveBackedToken(spec), P0, (1,))[0].baseline_breaks
    spec_cash = gold_token(1.0, 5e3, opex_usd_per_year=252e3)  # 1000 USD a day
    res = reverse_stress(ReserveBackedToken(spec_cash), P0, (1, 5), total_days=5)
    assert [r.move for r in res] == [None, None]
    res6 = reverse_stress(ReserveBackedToken(spec_cash), P0, (1, 5), total_days=6)
    assert [(r.move, r.baseline_breaks) for r in res6] == [(0.0, True), (0.0, True)]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"direction": 0}, "direction"),
        ({"tol": 0.0}, "tol"),
        ({"horizons_days": (0,)}, "horizons_days"),
        ({"horizons_days": ()}, "horizons_days"),
        ({"horizons_days": (10,), "total_days": 5}, "total_days"),
        ({"max_move": 1.0}, "max_move"),
        ({"n_grid": 1}, "n_grid"),
    ],
)
def test_reverse_stress_rejects_bad_arguments(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reverse_stress(CdpStablecoin(gusd()), P0, **kw)
    with pytest.raises(ValueError, match="p0_usd_per_oz"):
        reverse_stress(CdpStablecoin(gusd()), -1.0)


# Kupiec (1995), "Techniques for verifying the accuracy of risk measurement models",
# J. Derivatives 3(2), Table 3: non-rejection region of the POF test at 95 % (two-sided),
# "lo < N < hi" failures in T days at failure probability p. None: no lower bound printed.
KUPIEC_TABLE_3 = {
    0.01: {255: (None, 7), 510: (1, 11), 1000: (4, 17)},
    0.025: {255: (2, 12), 510: (6, 21), 1000: (15, 36)},
    0.05: {255: (6, 21), 510: (16, 36), 1000: (37, 65)},
    0.075: {255: (11, 28), 510: (27, 51), 1000: (59, 92)},
    0.10: {255: (16, 36), 510: (38, 65), 1000: (81, 120)},
}


@pytest.mark.parametrize(("p", "n"), [(p, n) for p, row in KUPIEC_TABLE_3.items() for n in row])
def test_kupiec_reproduces_kupiec_1995_table_3(p: float, n: int) -> None:
    """Every N strictly inside the published region is not rejected at 5 % (p-value > 0.05,
    LR < chi2(1) 95 % point 3.841); the first integer outside on each side is rejected.
    Each published edge agrees with the LR statistic exactly (no off-by-one anywhere) except
    one: for p = 1 %, T = 255 the table prints no lower bound ("N < 7"), but N = 0 gives
    LR = -2 * 255 * ln(0.99) = 5.13 > 3.841, so the LR test does reject it; the table leaves
    the lower bound out there (zero failures is the best a risk manager can report), and the
    test checks the LR's answer for N = 0 rather than the blank."""
    lo, hi = KUPIEC_TABLE_3[p][n]
    level = 1.0 - p
    crit = stats.chi2.ppf(0.95, 1)
    assert crit == pytest.approx(3.841, abs=5e-4)
    first_inside = 1 if lo is None else lo + 1
    for x in range(first_inside, hi):
        lr, pval = kupiec_pof(x, n, level)
        assert lr < crit and pval > 0.05, (x, lr)
    lr_hi, p_hi = kupiec_pof(hi, n, level)
    assert lr_hi > crit and p_hi < 0.05, (hi, lr_hi)
    edge_lo = 0 if lo is None else lo
    lr_lo, p_lo = kupiec_pof(edge_lo, n, level)
    assert lr_lo > crit and p_lo < 0.05, (edge_lo, lr_lo)
    if lo is None:
        assert lr_lo == pytest.approx(-2 * n * math.log(1 - p), rel=1e-12)  # 5.13 for T = 255
