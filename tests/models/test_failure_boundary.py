"""failure_boundary (reverse stress boundary, MiCA RTS 2025/1264 Art. 5(2)) and
with_redemption_share against hand-derived closed forms on small reserve-backed tokens built here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

from models.risk import _ramp_paths, failure_boundary, token_fails
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import ReserveBackedTokenSpec, with_redemption_share
from models.units import TROY_OUNCE_G

N = 1000.0  # tokens of 1 g
P0_G = 100.0  # USD per gram at day 0
P0_OZ = P0_G * TROY_OUNCE_G
H = 30


def _spec(
    *, gold_g: float, gold_liq: float, haircut: float, cash_usd: float, opex: float = 0.0
) -> ReserveBackedTokenSpec:
    """1 token = 1 g; cash listed first (liquidation order), all redemptions paid in USD at NAV
    by the reserve, which bears the fire-sale haircut; no fees, no settlement lag, market always
    open, no premium process, no AMM."""
    return ReserveBackedTokenSpec.model_validate(
        {
            "spec_version": 2,
            "kind": "gold_backed",
            "name": "test",
            "symbol": "TST",
            "grams_per_token": 1.0,
            "supply_tokens": N,
            "opex_usd_per_year": opex,
            "days_per_year": 252.0,
            "reserve": [
                {
                    "name": "cash",
                    "kind": "usd_cash",
                    "amount": cash_usd,
                    "liquidity_per_day": 1.0,
                    "stressed_haircut": 0.0,
                },
                {
                    "name": "bars",
                    "kind": "allocated_gold",
                    "amount": gold_g,
                    "liquidity_per_day": gold_liq,
                    "stressed_haircut": haircut,
                },
            ],
            "primary": {
                "mint_fee": 0.0,
                "redeem_fee": 0.0,
                "settlement_lag_days": 0,
                "market_hours": "always",
                "cash_redemption_share": 1.0,
                "cash_redemption_haircut": "reserve",  # the reserve pays NAV and bears the fire-sale haircut
            },
            # sensitivities and runs switched on, so with_redemption_share must switch them off
            "redemption": {
                "base_rate_per_day": 0.0,
                "drawdown_sensitivity": 0.5,
                "peg_sensitivity": 1.0,
                "base_mint_rate_per_day": 0.01,
                "confidence": {"run_prone_share": 0.5},
            },
        }
    )


def _boundary(spec: ReserveBackedTokenSpec, shares, **kw):
    return failure_boundary(lambda s: ReserveBackedToken(with_redemption_share(spec, s, H)), P0_OZ, shares, H, **kw)


# ------------------------------------------------------------------ with_redemption_share


@pytest.mark.parametrize("share", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_with_redemption_share_requests_exactly_the_share(share):
    spec = _spec(gold_g=N, gold_liq=1.0, haircut=0.0, cash_usd=0.0)
    s2 = with_redemption_share(spec, share, H)
    r = s2.redemption
    assert (1.0 - r.base_rate_per_day) ** H == pytest.approx(1.0 - share, abs=1e-12)
    assert (r.drawdown_sensitivity, r.peg_sensitivity, r.base_mint_rate_per_day, r.mint_premium_sensitivity) == (
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert r.confidence.run_prone_share == 0.0
    assert spec.redemption.drawdown_sensitivity == 0.5  # the original is untouched
    # simulated: cumulative requests over H days (falling gold, which would trigger drawdown
    # redemptions in the original) equal share * supply_0
    out = ReserveBackedToken(s2).run(_ramp_paths(P0_OZ, np.array([0.0, -0.3]), H, H))
    assert out.redemption_demand_tokens.sum(axis=1) == pytest.approx([share * N] * 2, rel=1e-9, abs=1e-9)
    assert out.minted_tokens.sum() == 0.0
    # and the wave ends at H: run twice as long, the requests after day H are zero
    longer = ReserveBackedToken(s2).run(_ramp_paths(P0_OZ, np.array([0.0, -0.3]), H, 2 * H))
    assert longer.redemption_demand_tokens[:, H + 1 :].sum() == 0.0
    assert longer.redemption_demand_tokens.sum(axis=1) == pytest.approx([share * N] * 2, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    "bad", [{"share": -0.1}, {"share": 1.5}, {"share": float("nan")}, {"horizon_days": 0}, {"horizon_days": 2.5}]
)
def test_with_redemption_share_rejects_bad_input(bad):
    kw = {"share": 0.1, "horizon_days": H} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        with_redemption_share(_spec(gold_g=N, gold_liq=1.0, haircut=0.0, cash_usd=0.0), **kw)


# ------------------------------------------------------------------ closed forms


def test_cash_only_liquidity_fails_exactly_when_requests_exceed_cash():
    """Gold illiquid (liquidity 0), cash C pays redemptions at NAV. Coverage on day t is
    C_t / (d_t NAV) with C_t = C - NAV sum_{s<t} d_s, so it first drops below 1 when the
    cumulative request exceeds C: with a flat price the token fails iff S N NAV0 > C, i.e.
    S > S* = C / (N NAV0) = 0.2. A fall lowers every later claim in USD while C is fixed, so
    below S* no fall makes it fail (gold_drop None)."""
    cash = 20_000.0
    s_star = cash / (N * P0_G)
    shares = [0.0, 0.1, 0.19, 0.21, 0.3, 0.6]
    rows = _boundary(_spec(gold_g=N, gold_liq=0.0, haircut=0.05, cash_usd=cash), shares)
    for row, s in zip(rows, shares):
        assert row["redemption_share"] == s and row["horizon_days"] == H
        assert row["fails_without_drop"] == (s > s_star), row
        assert row["gold_drop_frac"] == (0.0 if s > s_star else None), row


def _opex_threshold(share: float, excess: float, haircut: float, opex: float) -> float | None:
    """Closed form of the opex + fire-sale case (see the test). Returns the fall m* or None."""
    budget = excess * N - haircut / (1.0 - haircut) * share * N  # grams of excess left after redemptions
    k = opex / (252.0 * (1.0 - haircut))  # grams * USD/g sold for opex per unit of 1/P per day

    def excess_end(m: float) -> float:
        inv_p = sum(1.0 / (P0_G * (1.0 - m) ** (t / H)) for t in range(1, H + 1))
        return budget - k * inv_p

    if excess_end(0.0) < 0:
        return 0.0
    if excess_end(0.99) >= 0:
        return None
    return brentq(excess_end, 0.0, 0.99, xtol=1e-12)


def test_opex_and_fire_sales_closed_form_threshold_and_monotone():
    """Gold G = N (1 + e) fully liquid at haircut h, no cash, opex O USD/year (D = 252 days).
    Each day the issuer sells gold for opex O/D and for the day's cash redemptions d_t NAV_t:
    grams (O/D + d_t P_t) / (P_t (1 - h)). The gram excess E = G_t - N_t therefore falls by
    d_t h / (1 - h) + O / (D (1 - h) P_t) a day, and backing G_t / N_t < 1 iff E < 0; E falls
    monotonically, so the token fails iff E_H = e N - h/(1-h) S N - O/(D(1-h)) sum_t 1/P_t < 0
    with P_t = P0 (1 - m)^(t/H). Liquidity never binds (all gold sellable daily). m*(S) solves
    E_H = 0 (scipy brentq here); 0 when E_H(0) < 0."""
    e, h, opex = 0.05, 0.10, 5_000.0
    spec = _spec(gold_g=N * (1 + e), gold_liq=1.0, haircut=h, cash_usd=0.0, opex=opex)
    shares = [0.0, 0.1, 0.2, 0.3, 0.35, 0.38, 0.4, 0.45]
    tol = 1e-3
    rows = _boundary(spec, shares, tol=tol)
    expected = [_opex_threshold(s, e, h, opex) for s in shares]
    assert any(x is not None and 0 < x < 0.99 for x in expected) and 0.0 in expected  # both regimes
    for row, m_star in zip(rows, expected):
        if m_star is None or m_star == 0.0:
            assert row["gold_drop_frac"] == m_star, row
            assert row["fails_without_drop"] == (m_star == 0.0)
        else:
            assert not row["fails_without_drop"]
            # the search returns the failing side of a bracket narrower than tol
            assert m_star - 1e-6 <= row["gold_drop_frac"] <= m_star + tol + 1e-6, (row, m_star)
    # monotone: a larger share never needs a larger fall (None = no fall in range)
    drops = [math.inf if r["gold_drop_frac"] is None else r["gold_drop_frac"] for r in rows]
    assert all(a >= b for a, b in zip(drops, drops[1:])), drops


def test_found_drop_fails_and_a_slightly_smaller_one_does_not():
    """Independent check of the boundary point by direct runs of the model."""
    spec = with_redemption_share(_spec(gold_g=N * 1.05, gold_liq=1.0, haircut=0.1, cash_usd=0.0, opex=5_000.0), 0.3, H)
    (row,) = failure_boundary(lambda s: ReserveBackedToken(spec), P0_OZ, [0.3], H, tol=1e-4)
    m = row["gold_drop_frac"]
    assert m is not None and 0 < m < 0.99
    out = ReserveBackedToken(spec).run(_ramp_paths(P0_OZ, -np.array([m, m - 1e-4, m - 1e-3]), H, H))
    assert token_fails(out).tolist() == [True, False, False]


def test_fully_backed_frictionless_token_never_fails():
    """Gold exactly covering supply, fully liquid, no haircut, no opex, no fees: backing stays 1
    and every claim is paid the day it arrives, at any share and any fall."""
    rows = _boundary(_spec(gold_g=N, gold_liq=1.0, haircut=0.0, cash_usd=0.0), [0.0, 0.5, 0.9])
    assert [(r["gold_drop_frac"], r["fails_without_drop"]) for r in rows] == [(None, False)] * 3


def test_failure_boundary_rejects_bad_input():
    spec = _spec(gold_g=N, gold_liq=1.0, haircut=0.0, cash_usd=0.0)
    mk = lambda s: ReserveBackedToken(with_redemption_share(spec, s, H))  # noqa: E731
    for kw, field in (
        ({"shares": [1.2]}, "shares"),
        ({"shares": []}, "shares"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"max_drop": 1.0}, "max_drop"),
        ({"tol": 0.0}, "tol"),
        ({"n_grid": 1}, "n_grid"),
        ({"p0_usd_per_oz": -1.0}, "p0_usd_per_oz"),
    ):
        args = {"make_model": mk, "p0_usd_per_oz": P0_OZ, "shares": [0.1], "horizon_days": H} | kw
        with pytest.raises(ValueError, match=field):
            failure_boundary(**args)
    with pytest.raises(ValueError, match="make_model"):
        failure_boundary("not callable", P0_OZ, [0.1], H)


def test_analyse_wiring_builds_the_boundary_for_reserve_backed_specs_only():
    """tasks.analyse gives reserve-backed specs a boundary over BOUNDARY_SHARES equal to a
    direct failure_boundary call; the report renders it; a CDP spec (no reserve) gets none."""
    from goldstress.report import _boundary_html
    from models.metrics import (
        BOUNDARY_HORIZON_DAYS,
        BOUNDARY_SHARES,
        reverse_stress_boundary_summary,
    )

    spec = _spec(gold_g=N, gold_liq=0.0, haircut=0.05, cash_usd=20_000.0)
    b = reverse_stress_boundary_summary(spec.model_dump(), P0_OZ)
    assert b["horizon_days"] == BOUNDARY_HORIZON_DAYS
    assert [r["redemption_share"] for r in b["rows"]] == list(BOUNDARY_SHARES)
    # cash-only closed form of test_cash_only_...: fails without a drop iff S > 0.2
    assert [r["fails_without_drop"] for r in b["rows"]] == [s > 0.2 for s in BOUNDARY_SHARES]
    page = _boundary_html({"reverse_stress_boundary": b})
    assert "Reverse stress boundary (MiCA Art. 5)" in page and page.count("<tr>") == len(BOUNDARY_SHARES) + 1
    from models.token.spec import load_token_spec

    gusd = load_token_spec(Path(__file__).resolve().parents[2] / "specs" / "gusd_cdp.toml")
    assert reverse_stress_boundary_summary(gusd.model_dump(mode="json"), P0_OZ) is None
    assert _boundary_html({}) == ""
