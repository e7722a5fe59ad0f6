"""The compiled engine against the frozen step-by-step reference (tests/models/reference): the
same random numbers give the same outcome arrays, independent random numbers give the same
distributions (two-sample tests), and the results do not depend on how paths are chunked."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.premium import _t_unit_scale
from models.scenarios import BLOCK_PATHS, business_days, monte_carlo_chunks, on_calendar_days, to_price_paths
from models.token.cdp import CdpStablecoin
from models.token.reserve_backed import (
    ReserveBackedToken,
    _holder_value_bad_debt,
    poisson_inverse,
    premium_innovations,
)
from models.token.spec import load_token_spec, parse_token_spec
from models.units import TROY_OUNCE_G
from models.volatility import GarchFit, standardised_t
from tests.garch_fits import gjr_fit
from tests.models.reference import cdp as ref_cdp
from tests.models.reference import garch_simulate
from tests.models.reference import reserve_backed as ref_rb

ROOT = Path(__file__).resolve().parents[2]
SPECS = {s: load_token_spec(ROOT / "specs" / f"{s}.toml") for s in ("gram", "paxg", "xaut", "dgx", "gusd_cdp")}
RESERVE_BACKED = ("gram", "paxg", "xaut", "dgx")


class _Replay(np.random.Generator):
    """A Generator that hands the reference engine's premium process given innovations: its
    ``standard_t`` (or ``standard_normal``) returns day ``t``'s column scaled back to the raw
    draw, its jump counts are 0, so ``PremiumProcess.step`` adds exactly the given ``u``."""

    def __init__(self, u: np.ndarray, sigma: float, df: float | None) -> None:
        super().__init__(np.random.PCG64(0))
        self.u, self.scale, self.df, self.t = u, sigma * (_t_unit_scale(df) if df is not None else 1.0), df, 0
        self.jumps = False

    def _next(self) -> np.ndarray:
        self.t += 1
        self.jumps = True
        return self.u[:, self.t] / self.scale

    def standard_t(self, df: Any, size: Any = None) -> Any:  # type: ignore[override]
        return self._next()

    def standard_normal(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:  # type: ignore[override]
        if self.df is None and not self.jumps:
            return self._next()
        self.jumps = False
        return np.zeros(size)

    def poisson(self, lam: Any = 1.0, size: Any = None) -> Any:  # type: ignore[override]
        return np.zeros(np.shape(lam))


def gold_paths(
    n: int, horizon: int, seed: int, vol: float = 0.015, drift: float = -0.001
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Falling, volatile gold (so runs, queues, gates and fire sales happen) on the calendar-day clock."""
    r = np.random.default_rng(seed).standard_t(4, (n, horizon)) * vol / math.sqrt(2.0) + drift
    prices, cal, _ = on_calendar_days(to_price_paths(4000.0, r), business_days("2026-08-17", horizon + 1))
    return prices, cal


def _variant(name: str, **changes: Any) -> Any:
    d = copy.deepcopy(SPECS[name].model_dump(mode="json"))
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return parse_token_spec(d)


def _stressed_specs() -> dict[str, Any]:
    """The repo's specs and variants that switch on every option of the engine."""
    out = {s: SPECS[s] for s in RESERVE_BACKED}
    out["gram_gate_opex_runs"] = _variant(
        "gram",
        primary__redemption_limit_share_per_day=0.01,
        opex_usd_per_year=3e6,
        redemption__confidence__run_prone_share=0.4,
        redemption__confidence__market_sell_share=0.3,
        primary__cutoff_share=0.6,
        primary__settlement_lag_days=2,
    )
    out["xaut_gold_bars"] = _variant(
        "xaut",
        primary__granularity_applies_to="gold",
        primary__fees_to_reserve=True,
        primary__cash_redemption_share=0.5,
    )
    out["dgx_redeemer_haircut"] = _variant(
        "dgx", primary__cash_redemption_haircut="redeemer", primary__cash_redemption_share=1.0, opex_usd_per_year=1e6
    )
    out["paxg_no_process_cp_pool"] = _variant(
        "paxg",
        secondary__premium=None,
        secondary__amm={"kind": "constant_product", "reserve_tokens": 5000.0, "fee": 0.003},
        secondary__arbitrage_capacity_tokens_per_day=100.0,
    )
    return out


STRESSED = _stressed_specs()


@pytest.mark.parametrize("name", sorted(STRESSED))
def test_same_innovations_give_the_reference_outcome(name: str) -> None:
    """Fed the same premium innovations, the compiled engine reproduces every outcome array of
    the step-by-step reference (to float rounding: sums are taken in another order)."""
    spec = STRESSED[name]
    prices, cal = gold_paths(300, 120, seed=5)
    new = ReserveBackedToken(spec)
    proc = new.premium_process
    pg = prices / TROY_OUNCE_G
    dd = 1.0 - pg / np.maximum.accumulate(pg, axis=1)
    u = premium_innovations(proc, dd, np.random.default_rng(9))
    got = new.run(prices, calendar=cal, rng=np.random.default_rng(9))
    rng = _Replay(u, proc.sigma, proc.df) if proc is not None else np.random.default_rng(0)
    want = ref_rb.ReserveBackedToken(spec).run(prices, calendar=cal, rng=rng)
    active = 0
    for f in want.__dataclass_fields__:
        a, b = getattr(got, f), getattr(want, f)
        if isinstance(b, np.ndarray) and b.dtype.kind == "f":
            scale = max(float(np.max(np.abs(b[np.isfinite(b)]), initial=0.0)), spec.supply_tokens)
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-9 * scale, err_msg=f)
            active += bool(np.any(b[:, 1:] != b[:, :1]) if b.ndim == 2 else True)
        elif isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f)
        else:
            assert a == b, f
    assert active >= 15  # the paths exercise the mechanics: most arrays move over time


def test_cdp_matches_the_reference() -> None:
    """The compiled CDP liquidations give the reference engine's arrays exactly (no randomness)."""
    prices, _ = gold_paths(400, 250, seed=6, vol=0.03, drift=-0.003)
    got = CdpStablecoin(SPECS["gusd_cdp"]).run(prices)
    want = ref_cdp.CdpStablecoin(SPECS["gusd_cdp"]).run(prices)
    assert 0.2 < want.liquidated[:, -1].mean() < 1.0  # some paths liquidate tranches, some not
    for f in want.__dataclass_fields__:
        a, b = getattr(got, f), getattr(want, f)
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f)
        else:
            assert a == b


def _per_path(o: Any, horizons: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The per-path outcomes the run summary uses: holder loss and premium at each horizon and
    the lowest backing ratio up to it."""
    out = {}
    nav = o.nav_usd_per_token if hasattr(o, "nav_usd_per_token") else None
    for h in horizons:
        hv = o.holder_value_usd_per_token[:, h]
        out[f"holder_loss_{h}"] = 1.0 - (hv / nav[:, h] if nav is not None else hv)
        out[f"backing_min_{h}"] = np.min(o.backing_ratio[:, : h + 1], axis=1)
        if hasattr(o, "premium_frac"):
            out[f"premium_{h}"] = o.premium_frac[:, h]
    return out


@pytest.mark.filterwarnings("ignore:p-value capped")
@pytest.mark.parametrize("name", RESERVE_BACKED)
def test_independent_draws_give_the_reference_distributions(name: str) -> None:
    """On the same gold paths with independent premium draws (the compiled engine's own sampler:
    inversion of uniforms for the t and the jump counts; the reference's
    ``Generator.standard_t`` and ``Generator.poisson``), the per-path holder loss, lowest backing
    ratio and premium at 20, 120 and 250 calendar days pass two-sample Kolmogorov-Smirnov and
    Anderson-Darling tests (Bonferroni over the tests at 1 %). The tests have power: the
    reference premium shifted by 0.15 of its standard deviation is rejected."""
    prices, cal = gold_paths(4000, 180, seed=21, vol=0.012, drift=-0.0005)
    spec = SPECS[name]
    new = _per_path(ReserveBackedToken(spec).run(prices, calendar=cal, rng=np.random.SeedSequence(3)), (20, 120, 250))
    old = _per_path(
        ref_rb.ReserveBackedToken(spec).run(prices, calendar=cal, rng=np.random.default_rng(4)), (20, 120, 250)
    )
    p_values = {}
    for k in new:
        a, b = new[k], old[k]
        if np.ptp(b) == 0 and np.ptp(a) == 0:
            assert a[0] == pytest.approx(b[0], rel=1e-9), k
            continue
        p_values[k] = stats.ks_2samp(a, b).pvalue
        p_values[k + " (AD)"] = stats.anderson_ksamp([a, b], variant="midrank").pvalue
    level = 0.01 / len(p_values)
    worst = min(p_values, key=p_values.__getitem__)
    assert p_values[worst] > level, (worst, p_values[worst])
    for h in (20, 120, 250):
        b = old[f"premium_{h}"]
        assert stats.ks_2samp(b + 0.15 * b.std(), b).pvalue < level


def test_token_paths_do_not_depend_on_the_chunk_size() -> None:
    """With a seed, path ``i``'s outcome depends on the seed and ``i`` only: 2,000 paths run in
    chunks of 1,000 and of 5,000 paths, and in chunks that cut the random-number blocks
    (700 paths), give identical arrays."""
    prices, cal = gold_paths(2000, 60, seed=8)
    model = ReserveBackedToken(SPECS["gram"])
    seed = np.random.SeedSequence([7, 1, 0])

    def chunked(size: int) -> dict[str, np.ndarray]:
        parts = [model.run(prices[a : a + size], calendar=cal, rng=seed, first_path=a) for a in range(0, 2000, size)]
        return {
            f: np.concatenate([getattr(o, f) for o in parts])
            for f in ("premium_frac", "backing_ratio", "holder_value_usd_per_token")
        }

    whole = chunked(5000)
    assert np.ptp(whole["premium_frac"][:, -1]) > 0
    for size in (1000, 700):
        for f, v in chunked(size).items():
            np.testing.assert_array_equal(v, whole[f], err_msg=f"{f}, chunks of {size}")


def test_monte_carlo_returns_do_not_depend_on_the_chunk_size() -> None:
    """``monte_carlo_chunks`` with the GARCH simulation gives the same paths in chunks of 1,000
    and 5,000 paths."""
    fit = _garch_fit()
    a = np.concatenate(list(monte_carlo_chunks(fit.simulate, 5000, 30, 11, 1000)))
    b = np.concatenate(list(monte_carlo_chunks(fit.simulate, 5000, 30, 11, 5000)))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5000, 30) and BLOCK_PATHS < 1000


def test_poisson_inverse_has_the_poisson_law() -> None:
    """Counts by inversion of uniforms: probabilities of 0, 1, 2 and 3+ at intensities 0.05 and
    2.5 agree with the Poisson pmf (chi-square goodness of fit, 200,000 draws each), and the
    count is 0 wherever the intensity is 0."""
    rng = np.random.default_rng(0)
    for lam in (0.05, 2.5):
        n = poisson_inverse(np.full(200_000, lam), rng.random(200_000))
        k = np.minimum(n, 3).astype(int)
        observed = np.bincount(k, minlength=4)
        pmf = stats.poisson.pmf([0, 1, 2], lam)
        expected = 200_000 * np.r_[pmf, 1.0 - pmf.sum()]
        assert stats.chisquare(observed, expected).pvalue > 1e-3
    assert not poisson_inverse(np.zeros(1000), rng.random(1000)).any()


def test_poisson_inverse_equals_the_sequential_search() -> None:
    """Every count equals the sequential search of its definition (``k`` from 0 up, the Poisson
    cdf summed term by term, stop at ``u <= cdf``), also for uniforms placed exactly at
    ``exp(-lam)``, one float above it and at ``1 - lam`` (the edges of the count 0)."""

    def search(lam: float, u: float) -> float:
        p = math.exp(-lam)
        cdf, k = p, 0
        while u > cdf and p > 0.0 and k < 100_000:
            k += 1
            p = p * lam / k
            cdf += p
        return float(k)

    rng = np.random.default_rng(3)
    lam = np.r_[rng.random(4000) * 0.05, rng.random(1000) * 3.0, 0.0, 1e-300, 1e-12, 0.5, 1.0]
    u = rng.random(lam.size)
    edges = [np.exp(-lam), np.nextafter(np.exp(-lam), 2.0), 1.0 - lam, np.nextafter(1.0 - lam, -1.0)]
    for j, edge in enumerate(edges):
        u[j:3000:4] = np.clip(edge[j:3000:4], 0.0, np.nextafter(1.0, 0.0))  # the rest stay uniform
    want = np.array([search(a, b) for a, b in zip(lam, u, strict=True)])
    np.testing.assert_array_equal(poisson_inverse(lam, u), want)
    assert (want == 0).any() and (want >= 2).any()


def test_holder_value_and_bad_debt_are_numpys_bit_for_bit() -> None:
    """The compiled holder value and uncovered liabilities equal numpy's ``nav * np.minimum(1.0,
    B) * (1.0 + prem)`` and ``np.maximum(0.0, supply * nav - V)`` bit for bit, signed zeros,
    infinities, NaN and ties included."""
    rng = np.random.default_rng(6)
    edge = np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300])
    shape = (64, 41)

    def field(scale: float) -> np.ndarray:
        x = rng.standard_normal(shape) * scale
        x.flat[rng.integers(0, x.size, 400)] = rng.choice(edge, 400)
        return x

    nav, b, prem, sup = field(1000.0), 1.0 + field(0.1), field(0.05), field(1e6)
    holder, bad = np.empty(shape), np.empty(shape)
    with np.errstate(invalid="ignore", over="ignore"):
        val = sup * nav
        val.flat[::7] = field(1e9).flat[::7]
        _holder_value_bad_debt(nav, b, prem, sup, val, holder, bad)
        want_h = nav * np.minimum(1.0, b) * (1.0 + prem)
        want_b = np.maximum(0.0, sup * nav - val)
    for got, want in ((holder, want_h), (bad, want_b)):
        assert np.array_equal(got, want, equal_nan=True)
        signs_differ = np.signbit(got) != np.signbit(want)
        assert np.isnan(want[signs_differ]).all()  # a NaN's sign is not specified


def test_gold_drawdown_is_one_minus_price_over_running_peak() -> None:
    """The engine's gold drawdown (it drives the premium jumps and the redemptions) equals
    ``1 - p / np.maximum.accumulate(p)`` bit for bit on falling, volatile paths, and a NaN price
    carries on to the end of its row as the running maximum does."""
    from models.token.reserve_backed import _drawdown

    prices, _ = gold_paths(200, 120, seed=8)
    pg = prices / TROY_OUNCE_G
    pg[3, 40] = np.nan
    with np.errstate(invalid="ignore"):
        want = 1.0 - pg / np.maximum.accumulate(pg, axis=1)
    got = _drawdown(pg)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[3, 40:]).all() and not np.isnan(got[3, :40]).any() and np.nanmax(got) > 0.1


def test_standardised_t_matches_generator_standard_t() -> None:
    """The inverted draws are unit-variance Student-t: 200,000 draws at nu = 3.5 and 8 against
    ``Generator.standard_t`` scaled to unit variance (two-sample KS) and against the t CDF
    (one-sample KS)."""
    rng = np.random.default_rng(1)
    for nu in (3.5, 8.0):
        scale = math.sqrt((nu - 2.0) / nu)
        a = standardised_t(rng, nu, (200_000,))
        b = rng.standard_t(nu, 200_000) * scale
        assert stats.ks_2samp(a, b).pvalue > 1e-3
        assert stats.kstest(a / scale, "t", args=(nu,)).pvalue > 1e-3


def test_t_quantiles_agree_with_stdtrit_and_are_odd() -> None:
    """The interpolated t quantiles against ``scipy.special.stdtrit`` at the same tail
    probabilities (2**-54 past the uniform, mirrored above 0.5): within 1e-7 relative over
    600,000 uniforms, the edges of the table and the tails it leaves to ``stdtrit``; a uniform
    and its mirror ``1 - 2**-53 - u`` give exactly opposite quantiles; ``u = 0`` gives a finite one."""
    from scipy import special

    from models.volatility import t_quantiles

    edges = np.array([0.0, 2.0**-53, 2.0**-10 - 2.0**-53, 2.0**-10, 2.0**-10 + 2.0**-53, 0.25, 0.5 - 2.0**-53, 0.5])
    k = np.random.default_rng(3).integers(0, 2**53, 600_000)
    u = np.concatenate([edges, 1.0 - 2.0**-53 - edges, k * 2.0**-53])
    for nu in (2.5, 4.0, 8.0, 60.0):
        got = t_quantiles(u, nu)
        p = np.where(u < 0.5, u + 2.0**-54, (1.0 - u) - 2.0**-54)
        want = np.where(u < 0.5, special.stdtrit(nu, p), -special.stdtrit(nu, p))
        assert np.isfinite(got).all()
        assert np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) < 1e-7, nu
        mirror = t_quantiles(1.0 - 2.0**-53 - u, nu)
        assert np.array_equal(mirror, -got), nu
    with pytest.raises(ValueError, match="nu"):
        standardised_t(np.random.default_rng(0), 2.0, (3,))


def test_symmetric_tail_probability_is_exact_and_mirrored() -> None:
    """Every uniform ``u = k * 2**-53`` of ``Generator.random`` maps to ``(u + 2**-54, -1)`` below
    0.5 and ``(1 - u - 2**-54, +1)`` from 0.5, checked in exact rational arithmetic (so ``p`` is
    never 0 and is exact in float64); ``u`` and its mirror ``1 - 2**-53 - u`` have the same ``p``
    and opposite sides; the shape of ``u`` is kept."""
    from fractions import Fraction

    from models.volatility import symmetric_tail_probability

    k = np.concatenate([[0, 1, 2**52 - 1, 2**52, 2**53 - 1], np.random.default_rng(5).integers(0, 2**53, 2_000)])
    u = k * 2.0**-53
    p, side = symmetric_tail_probability(u.reshape(-1, 5))
    assert p.shape == side.shape == (401, 5)
    half = Fraction(1, 2**54)
    for ki, pi, si in zip(k.tolist(), p.reshape(-1).tolist(), side.reshape(-1).tolist(), strict=True):
        x = Fraction(ki, 2**53)
        want = (x + half, -1.0) if x < Fraction(1, 2) else (1 - x - half, 1.0)
        assert (Fraction(pi), si) == want, ki
    mp, ms = symmetric_tail_probability(1.0 - 2.0**-53 - u)
    assert np.array_equal(mp, p.reshape(-1)) and np.array_equal(ms, -side.reshape(-1))


@pytest.mark.filterwarnings("ignore:p-value")
def test_premium_innovations_have_the_law_of_normal_over_root_gamma_draws() -> None:
    """The engine's premium innovations (t by inversion, jump counts by inversion, jump sizes
    from normal quantiles) against the textbook construction from independent NumPy draws
    (``standard_normal`` over root ``standard_gamma``, ``Generator.poisson``, ``standard_normal``)
    at drawdown 0.3 (jump intensity 0.05 a day): 500,000 each pass two-sample KS and
    Anderson-Darling tests, and the share of days with a jump (the innovation below -3 sigma)
    is within 4 standard errors; the tests have power: the reference with its jumps 20% larger
    is rejected."""
    from models.premium import PremiumProcess

    proc = PremiumProcess(
        mean=0.0,
        phi=0.7,
        sigma=0.003,
        df=4.0,
        jump_intensity_per_day=0.02,
        jump_drawdown_sensitivity=0.1,
        jump_mean=-0.02,
        jump_sd=0.01,
    )
    dd = np.full((1000, 501), 0.3)
    new = premium_innovations(proc, dd, np.random.SeedSequence(5))[:, 1:].ravel()
    g = np.random.default_rng(6)
    size = new.size

    def reference(jump_scale: float) -> np.ndarray:
        e = g.standard_normal(size) * np.sqrt((4.0 - 2.0) / 2.0 / g.standard_gamma(2.0, size))
        n = g.poisson(0.05, size).astype(float)
        return 0.003 * e + jump_scale * (n * -0.02 + np.sqrt(n) * 0.01 * g.standard_normal(size))

    old = reference(1.0)
    assert stats.ks_2samp(new, old).pvalue > 1e-3
    assert stats.anderson_ksamp([new, old], variant="midrank").pvalue > 1e-3
    a, b = np.mean(new < -0.009), np.mean(old < -0.009)
    assert abs(a - b) < 4 * math.sqrt(2 * b * (1 - b) / size)
    assert stats.ks_2samp(new, reference(1.2)).pvalue < 1e-3


def _garch_fit() -> GarchFit:
    """A GJR-GARCH(1,1)-t fit with gold-like parameters (decimal units) and a state at its
    unconditional variance; the standardised residuals are unit-variance t draws (for FHS)."""
    params = {"mu": 3e-4, "omega": 1.3e-6, "alpha": 0.05, "gamma": 0.04, "beta": 0.92, "nu": 5.0}
    z = np.random.default_rng(2).standard_t(5.0, 3000) * math.sqrt(3.0 / 5.0)
    s2 = params["omega"] / (1 - params["alpha"] - params["gamma"] / 2 - params["beta"])
    return gjr_fit(params, z, s2, -0.01)


@pytest.mark.filterwarnings("ignore:p-value capped")
@pytest.mark.parametrize("innovations", ["t", "fhs"])
def test_garch_simulation_has_the_reference_distribution(innovations: str) -> None:
    """The compiled GARCH recursion with its sampler against the reference NumPy simulation
    (``Generator.standard_t``) on independent seeds: the 1-, 10- and 60-day cumulative log
    returns pass two-sample KS and Anderson-Darling tests (20,000 paths each), and with the
    same FHS draws the two give the same paths (to rounding)."""
    fit = _garch_fit()
    new = fit.simulate(20_000, 60, np.random.default_rng(5), innovations=innovations)
    old = garch_simulate(fit, 20_000, 60, np.random.default_rng(6), innovations=innovations)
    for h in (1, 10, 60):
        a, b = new[:, :h].sum(axis=1), old[:, :h].sum(axis=1)
        assert stats.ks_2samp(a, b).pvalue > 0.01 / 6
        assert stats.anderson_ksamp([a, b], variant="midrank").pvalue > 0.01 / 6
    if innovations == "fhs":
        same = garch_simulate(fit, 500, 60, np.random.default_rng(5), innovations="fhs")
        np.testing.assert_allclose(fit.simulate(500, 60, np.random.default_rng(5), innovations="fhs"), same, rtol=1e-12)
