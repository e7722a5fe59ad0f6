"""A summary run of the reserve-backed engine (``records="summary"``: only the records the Monte
Carlo summaries read, on the kernel compiled for the spec's structure or on the general one)
against the full run of the general kernel: the same numbers, so the Monte Carlo tables are the
same."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import PROJECT_ROOT
from models.metrics import summarise_paths
from models.recommend import with_primary
from models.token import reserve_backed as rb_mod
from models.token.reserve_backed import FIELDS, SUMMARY_FIELDS, ReserveBackedToken
from models.token.spec import ReserveBackedTokenSpec, load_token_spec

SPECS = PROJECT_ROOT / "specs"
CALENDAR = pd.date_range("2026-08-13", periods=61, freq="D")  # weekends and holidays-free weekdays


def gold(n: int, seed: int) -> np.ndarray:
    # a falling market on half the paths, so that runs, gates, queues and fire sales happen
    r = np.random.default_rng(seed).standard_t(4, (n, len(CALENDAR) - 1)) * 0.015
    r[: n // 2] -= 0.006
    return 4_000.0 * np.exp(np.c_[np.zeros(n), np.cumsum(r, axis=1)])


def _variants() -> list[tuple[str, ReserveBackedTokenSpec]]:
    """The product specs and variants that switch on what they leave off (each its own structure)."""
    out = []
    for sym in ("gram", "paxg", "xaut", "dgx"):
        out.append((sym, load_token_spec(SPECS / f"{sym}.toml")))
    gram = out[0][1]
    assert isinstance(gram, ReserveBackedTokenSpec)
    rd, sec = gram.redemption, gram.secondary
    out += [
        ("gram-gate-bars", with_primary(gram, redemption_limit_share_per_day=0.01, redemption_granularity_tokens=50.0)),
        (
            "gram-opex-fees-lag0-cutoff",
            with_primary(gram, fees_to_reserve=True, settlement_lag_days=0, cutoff_share=0.5).model_copy(
                update={"opex_usd_per_year": 3e6}
            ),
        ),
        (
            "gram-run-mint-nopool-noprocess",
            gram.model_copy(
                update={
                    "secondary": sec.model_copy(update={"amm": None, "premium": None}),
                    "redemption": rd.model_copy(
                        update={
                            "base_mint_rate_per_day": 0.001,
                            "mint_premium_sensitivity": 0.2,
                            "confidence": rd.confidence.model_copy(
                                update={"run_prone_share": 0.3, "premium_weight": 0.5, "market_sell_share": 0.4}
                            ),
                        }
                    ),
                }
            ),
        ),
    ]
    return out


VARIANTS = _variants()
ATTRIBUTE = {  # outcome attribute of each summary record
    "supply": "supply_tokens",
    "fsl": "fire_sale_loss_usd",
    "q": "queue_tokens",
    "outfl": "redemption_outflow_usd",
    "B": "backing_ratio",
    "V": "reserve_value_usd",
    "lam": "run_externality",
    "prem": "premium_frac",
    "dem": "redemption_demand_tokens",
    "ret": "returned_tokens",
    "acc_g": "accepted_gold_tokens",
    "red_g": "redeemed_gold_tokens",
    "red_c": "redeemed_cash_tokens",
    "lcr": "liquidity_coverage",
    "bl": "backlog_tokens",
}


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal element by element, NaN where NaN, and the same sign of zero."""
    return bool(np.array_equal(x, y, equal_nan=True) and np.array_equal(np.signbit(x), np.signbit(y)))


@pytest.mark.parametrize("specialise", [True, False], ids=["structure-kernel", "general-kernel"])
@pytest.mark.parametrize(("name", "spec"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_a_summary_run_records_the_full_runs_numbers(name: str, spec: ReserveBackedTokenSpec, specialise: bool) -> None:
    model = ReserveBackedToken(spec)
    g = gold(300, 11)
    full = model.run(g, calendar=CALENDAR, rng=5, first_path=250)
    summary = model.run(g, calendar=CALENDAR, rng=5, first_path=250, records="summary", specialise=specialise)
    # the variant does what it is there for: redemptions are paid and something is sold or queued
    assert (full.redeemed_cash_tokens.sum() + full.redeemed_gold_tokens.sum()) > 0
    for f in SUMMARY_FIELDS:
        if f == "fee":  # credited to the reserve or the issuer's revenue, as the spec says
            pairs = [(summary.issuer_fee_revenue_usd, full.issuer_fee_revenue_usd)]
            pairs.append((summary.reserve_fee_income_usd, full.reserve_fee_income_usd))
        else:
            pairs = [(getattr(summary, ATTRIBUTE[f]), getattr(full, ATTRIBUTE[f]))]
        for s, a in pairs:
            assert _same(s, a), (name, f)
    assert _same(summary.holder_value_usd_per_token, full.holder_value_usd_per_token)
    assert _same(summary.bad_debt_usd, full.bad_debt_usd)
    assert _same(summary.wait_days(), full.wait_days())
    # what a summary run does not record reads NaN, and cannot be written by mistake
    for f in dataclasses.fields(summary):
        v = getattr(summary, f.name)
        if f.name in ("gold_in_g", "cash_out_usd", "theta", "run_share", "asset_amounts", "market_sell_tokens"):
            assert np.isnan(v).all() and not v.flags.writeable, f.name
    # and the Monte Carlo's per-path table is the same
    trading = np.arange(0, len(CALENDAR), 1)
    pd.testing.assert_frame_equal(
        summarise_paths(summary, g, (1, 10, 30), trading_columns=trading),
        summarise_paths(full, g, (1, 10, 30), trading_columns=trading),
        check_exact=True,
    )


def test_summary_fields_are_the_first_records_and_their_workspace_is_smaller() -> None:
    model = ReserveBackedToken(VARIANTS[3][1])  # DGX: three reserve assets
    assert FIELDS[: len(SUMMARY_FIELDS)] == SUMMARY_FIELDS
    assert model.workspace_size(7, 11, records="summary") == len(SUMMARY_FIELDS) * 7 * 11
    assert model.workspace_size(7, 11) == (len(FIELDS) + 3) * 7 * 11
    g = gold(7, 1)[:, :11]
    ws = np.empty(model.workspace_size(7, 11, records="summary"))
    out = model.run(g, rng=1, workspace=ws, records="summary")
    assert np.shares_memory(out.backing_ratio, ws)
    with pytest.raises(ValueError, match="workspace"):
        model.run(g, rng=1, workspace=ws)  # the full run needs more rows
    with pytest.raises(ValueError, match="records"):
        model.run(g, rng=1, records="some")
    with pytest.raises(ValueError, match="records"):
        model.workspace_size(7, 11, records="none")


@pytest.mark.parametrize(
    ("name", "flagged"),
    [("dgx", True), ("dgx-granularity-gold", False), ("xaut", False)],
)
def test_the_kernel_without_a_usd_pipeline_gives_the_same_run(
    name: str, flagged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token whose accepted redemptions are all paid in gold in whole bars (DGX: USD share 0,
    bars for every redemption) runs without the USD-claim pipeline: every record equal, bit for
    bit and sign of zero, to the kernel that carries the (empty) pipeline. With bars for gold
    only, the sub-bar remainder is a USD claim, so the pipeline stays."""
    spec = load_token_spec(SPECS / f"{name.split('-')[0]}.toml")
    assert isinstance(spec, ReserveBackedTokenSpec)
    if name == "dgx-granularity-gold":
        spec = with_primary(spec, granularity_applies_to="gold")
    model = ReserveBackedToken(spec)
    g = gold(300, 12)
    base = rb_mod._structure

    def kept(*a: object) -> tuple[int, ...]:
        s = base(*a)  # type: ignore[arg-type]
        return (*s[:-1], s[-1] & ~rb_mod._GOLD_CLAIMS_ONLY)

    par = rb_mod._param_vector(spec, model.premium_process)
    assert bool(base(spec, par, True)[-1] & rb_mod._GOLD_CLAIMS_ONLY) is flagged
    got = [model.run(g, calendar=CALENDAR, rng=7), model.run(g, calendar=CALENDAR, rng=7, records="summary")]
    monkeypatch.setattr(rb_mod, "_structure", kept)
    want = [model.run(g, calendar=CALENDAR, rng=7), model.run(g, calendar=CALENDAR, rng=7, records="summary")]
    assert got[0].redeemed_gold_tokens.sum() > 0  # whole bars are paid
    for a, b in zip(got, want, strict=True):
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if isinstance(x, np.ndarray):
                assert _same(x, y), (name, f.name)
