"""Reserve-backed engine runs that reuse work: premium innovations given to the run, and a reused
workspace for the daily records, each against the run that draws and allocates afresh."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import PROJECT_ROOT
from models.recommend import with_cash_buffer, with_primary
from models.token.outcome import ReserveBackedOutcome
from models.token.reserve_backed import FIELDS, ReserveBackedToken, innovation_params
from models.token.spec import load_token_spec, with_redemption_share

SPECS = PROJECT_ROOT / "specs"
PRESETS = ["gram", "paxg", "xaut", "dgx"]
CALENDAR = pd.date_range("2026-08-13", periods=31, freq="D")  # starts on a Thursday: weekends shut some markets


def gold(n: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed).normal(0.0, 0.015, (n, len(CALENDAR) - 1))
    return 4_000.0 * np.exp(np.c_[np.zeros(n), np.cumsum(r, axis=1)])


def assert_same(a: ReserveBackedOutcome, b: ReserveBackedOutcome) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.shape == y.shape and x.dtype == y.dtype, f.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        else:
            assert x == y, f.name


@pytest.mark.parametrize("symbol", PRESETS)
def test_given_innovations_give_exactly_the_run_that_draws_them(symbol):
    model = ReserveBackedToken(load_token_spec(SPECS / f"{symbol}.toml"))
    g = gold(600, 1)
    # a seed with a path offset (block-wise draws) and a Generator (one stream)
    u = model.innovations(g, rng=7, first_path=300)
    assert u.shape == g.shape and np.all(u[:, 0] == 0.0) and np.std(u[:, 1:]) > 0
    assert_same(model.run(g, calendar=CALENDAR, innovations=u), model.run(g, calendar=CALENDAR, rng=7, first_path=300))
    u = model.innovations(g, rng=np.random.default_rng(3))
    drawn = model.run(g, calendar=CALENDAR, rng=np.random.default_rng(3))
    assert_same(model.run(g, calendar=CALENDAR, innovations=u), drawn)
    # the given innovations are the ones used: others move the premium
    other = model.run(g, calendar=CALENDAR, innovations=2.0 * u)
    assert not np.array_equal(other.premium_frac, drawn.premium_frac)


@pytest.mark.parametrize("symbol", PRESETS)
def test_the_recommendations_variants_share_the_innovation_parameters(symbol):
    # the re-runs of the recommendations change the buffer, fees, limits and behaviour: never
    # the innovations (the fee does move the arbitrage band, which acts in the daily loop only)
    spec = load_token_spec(SPECS / f"{symbol}.toml")
    proc = ReserveBackedToken(spec).premium_process
    assert proc is not None
    variants = [
        with_cash_buffer(spec, 1e6),
        with_primary(spec, redeem_fee=spec.primary.redeem_fee + 0.01, redemption_limit_share_per_day=0.05),
        with_redemption_share(spec, 0.2, 5),
    ]
    for v in variants:
        assert innovation_params(ReserveBackedToken(v).premium_process) == innovation_params(proc)
    assert ReserveBackedToken(variants[1]).premium_process != proc  # another band
    assert innovation_params(None) is None


@pytest.mark.parametrize("symbol", PRESETS)
def test_a_workspace_of_any_content_gives_the_fresh_run(symbol):
    model = ReserveBackedToken(load_token_spec(SPECS / f"{symbol}.toml"))
    g = gold(300, 2)
    fresh = model.run(g, calendar=CALENDAR, rng=5)
    need = model.workspace_size(*g.shape)
    for fill in (np.nan, 1e300, -1.0):
        # every cell is written by the run: leftovers of whatever value change nothing
        ws = np.full(need + 17, fill)
        assert_same(model.run(g, calendar=CALENDAR, rng=5, workspace=ws), fresh)
    # a shorter chunk in the same workspace, after a longer one
    ws = np.empty(need)
    model.run(g, calendar=CALENDAR, rng=5, workspace=ws)
    part = model.run(g[:120], calendar=CALENDAR, rng=5, workspace=ws)
    assert_same(part, model.run(g[:120], calendar=CALENDAR, rng=5))
    # the outcome's arrays are views into the workspace: the next run replaces them
    g2 = gold(120, 9)
    second = model.run(g2, calendar=CALENDAR, rng=5, workspace=ws)
    assert np.shares_memory(part.backing_ratio, ws)
    assert np.array_equal(part.backing_ratio, second.backing_ratio)
    assert not np.shares_memory(fresh.backing_ratio, ws)


def test_bad_innovations_and_workspaces_name_the_argument():
    model = ReserveBackedToken(load_token_spec(SPECS / "paxg.toml"))
    g = gold(20, 3)
    u = model.innovations(g, rng=1)
    with pytest.raises(ValueError, match=r"innovations: expected shape \(20, 31\)"):
        model.run(g, innovations=u[:, :-1])
    bad = u.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="innovations: expected finite"):
        model.run(g, innovations=bad)
    need = model.workspace_size(*g.shape)
    assert need == (len(FIELDS) + len(model.spec.reserve)) * 20 * 31
    for ws, match in [
        (np.empty(need - 1), "workspace: .* the run needs"),
        (np.empty(need, dtype=np.float32), "workspace: expected a 1-D C-contiguous float64"),
        (np.empty((2, need)), "workspace: expected a 1-D"),
        (np.empty(2 * need)[::2], "workspace: expected a 1-D C-contiguous"),
        ([0.0] * need, "workspace: expected a 1-D"),
    ]:
        with pytest.raises(ValueError, match=match):
            model.run(g, workspace=ws)
    ro = np.empty(need)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="workspace: expected a writeable"):
        model.run(g, workspace=ro)


def _path_of(out: ReserveBackedOutcome, i: int, n: int) -> dict[str, object]:
    """Path ``i`` of a run of ``n`` paths: its rows of the per-path arrays, the rest as is."""
    rows: dict[str, object] = {}
    for f in dataclasses.fields(out):
        x = getattr(out, f.name)
        if f.name == "asset_amounts":
            rows[f.name] = x[:, i]
        elif isinstance(x, np.ndarray) and x.ndim == 2:
            assert x.shape[0] == n, f.name
            rows[f.name] = x[i]
        else:
            rows[f.name] = x
    return rows


def _same(a: object, b: object) -> bool:
    """Equal shape, dtype and values (NaN equal to NaN for floats)."""
    x, y = np.asarray(a), np.asarray(b)
    return x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")


@pytest.mark.parametrize("symbol", ["xaut", "dgx", "paxg"])
def test_a_path_runs_the_same_alone_and_in_any_batch(symbol: str) -> None:
    """Nothing of one path leaks into the next: with a daily redemption limit (refused requests),
    whole bars and a settlement lag on falling gold, every path of a 23-path run equals, array
    for array and bit for bit, the same path run alone and run shifted by one place in a
    19-path run (same innovations)."""
    spec = with_primary(load_token_spec(SPECS / f"{symbol}.toml"), redemption_limit_share_per_day=0.02)
    model = ReserveBackedToken(spec)
    r = np.random.default_rng(4).normal(-0.01, 0.03, (23, len(CALENDAR) - 1))
    g = 4_000.0 * np.exp(np.c_[np.zeros(23), np.cumsum(r, axis=1)])
    u = model.innovations(g, rng=11)
    whole = model.run(g, calendar=CALENDAR, innovations=u)
    assert (whole.returned_tokens > 0).any() and (whole.redeemed_gold_tokens + whole.redeemed_cash_tokens > 0).any()
    inner = model.run(g[1:20], calendar=CALENDAR, innovations=u[1:20])  # the same paths, shifted by one
    for i in range(23):
        expected = _path_of(model.run(g[i : i + 1], calendar=CALENDAR, innovations=u[i : i + 1]), 0, 1)
        for name, got in _path_of(whole, i, 23).items():
            assert _same(got, expected[name]), (i, name)
        if 1 <= i < 20:
            for name, got in _path_of(inner, i - 1, 19).items():
                assert _same(got, expected[name]), (i, name)
