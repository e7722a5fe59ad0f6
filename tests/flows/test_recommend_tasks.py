"""The liquidity recommendations' tasks (tasks/recommend.py): the shared inputs are the main Monte
Carlo's first paths, the per-token task equals the all-token task and takes picklable arguments, and
the cash buffer it reports is the smallest at the search's resolution on the search paths.

Gold: a GJR-GARCH champion with the parameters of a real run's champion (bench/engine.py) and
filtered-historical-simulation innovations from standardised Student-t residuals; specs: specs/.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from goldstress.io.champion import Champion, stress_simulator
from goldstress.settings import Settings
from models.recommend import PremiumNoise, with_cash_buffer
from models.scenarios import business_days, monte_carlo_chunks, on_calendar_days, to_price_paths
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import load_token_spec, with_redemption_share
from tasks.recommend import recommend, recommend_for_spec, recommend_inputs, recommend_token
from tests.garch_fits import gold_gjr_fit

SPECS = Path(__file__).resolve().parents[2] / "specs"
N = 150  # search paths: 2N = 300 ends in a partial 250-path block, still the main run's paths
P0, FIRST_DAY = 4_000.0, "2026-08-13"  # a Thursday: the horizon starts next to a weekend


@pytest.fixture(scope="module")
def champion() -> Champion:
    return Champion(name="gjr_fhs", fit=gold_gjr_fit(), innovations="fhs", tail=None, meta={})


@pytest.fixture(scope="module")
def settings() -> Settings:
    base = Settings()
    return base.model_copy(
        update={
            "liquidity": base.liquidity.model_copy(update={"recommend_paths": N}),
            "monte_carlo": base.monte_carlo.model_copy(update={"paths": 1_000, "chunk_paths": 500}),
        }
    )


@pytest.fixture(scope="module")
def inputs(champion, settings):
    return recommend_inputs(champion, P0, FIRST_DAY, settings)


def test_inputs_are_the_main_monte_carlos_first_paths(champion, settings, inputs):
    scenario, gold_in, gold_out, calendar = inputs
    # the main Monte Carlo as tasks/simulate.py draws it: all its paths over its whole horizon
    days = business_days(FIRST_DAY, settings.monte_carlo.horizon_days + 1)
    main = [
        on_calendar_days(to_price_paths(P0, chunk), days)
        for chunk in monte_carlo_chunks(
            stress_simulator(champion, settings.monte_carlo.drift),
            settings.monte_carlo.paths,
            settings.monte_carlo.horizon_days,
            settings.monte_carlo.seed,
            settings.monte_carlo.chunk_paths,
        )
    ]
    prices = np.concatenate([m[0] for m in main])
    c1 = len(calendar)
    assert calendar.equals(main[0][1][:c1])
    np.testing.assert_array_equal(gold_in, prices[:N, :c1])
    np.testing.assert_array_equal(gold_out, prices[N : 2 * N, :c1])
    # the stress horizon: 30 trading days (the longest risk horizon) from a Thursday = 42 calendar days
    assert scenario["wave_horizon_trading_days"] == 30 and int((calendar.day_of_week < 5).sum()) == 31
    assert scenario["horizon_calendar_days"] == c1 - 1 == 42
    assert scenario["search_paths"] == scenario["out_of_sample_paths"] == N


def test_the_per_token_task_equals_the_all_token_task_on_pickled_arguments(champion, settings, inputs):
    _, gold_in, gold_out, calendar = inputs
    specs = [load_token_spec(SPECS / f"{s}.toml") for s in ("gram", "gusd_cdp")]
    whole = recommend.fn(specs, champion, P0, FIRST_DAY, settings)
    assert list(whole["tokens"]) == ["GRAM"]  # a CDP has no reserve liquidity to tune
    args = pickle.loads(pickle.dumps((specs[0], gold_in, gold_out, calendar, settings)))
    assert recommend_token.name == "recommend-token"
    assert recommend_token.fn(*args) == whole["tokens"]["GRAM"]


def _coverage_q(spec, gold, calendar, settings) -> float:
    """The 1% lower quantile (inverted cdf: the k-th smallest) of the path minima of the coverage
    under the wave, computed here from the engine's daily coverage."""
    wave = with_redemption_share(spec, settings.liquidity.wave_share, settings.liquidity.wave_days)
    out = ReserveBackedToken(wave).run(gold, calendar=calendar, rng=np.random.default_rng(settings.monte_carlo.seed))
    mins = np.sort(out.liquidity_coverage[:, 1:].min(axis=1))
    return float(mins[math.ceil(round(1 - settings.liquidity.confidence, 12) * mins.size) - 1])


def test_the_cash_buffer_is_the_smallest_meeting_the_target_at_the_search_resolution(settings, inputs):
    _, gold_in, gold_out, calendar = inputs
    spec = load_token_spec(SPECS / "gram.toml")
    res = recommend_token.fn(spec, gold_in, gold_out, calendar, settings)
    cb = res["cash_buffer"]
    assert cb["reachable"] and cb["buffer_usd"] > 0
    # without a buffer the preset fails under the wave; the b = 0 figures are the grid's current row
    before = _coverage_q(spec, gold_in, calendar, settings)
    assert before < 1.0 and cb["before"]["coverage_q"] == before
    assert res["current_setting"]["wave"]["coverage_q"] == before
    # the buffer meets the target on the search paths; one resolution step less does not
    b, tol = cb["buffer_usd"], cb["tol_usd"]
    assert tol == pytest.approx(1e-4 * res["liabilities_usd"], rel=1e-12)
    assert _coverage_q(with_cash_buffer(spec, b), gold_in, calendar, settings) >= 1.0
    assert _coverage_q(with_cash_buffer(spec, b - tol), gold_in, calendar, settings) < 1.0
    assert cb["evaluations"] <= 1 + math.ceil(math.log2(1e4)) + 1  # upper end + ITP's worst case
    # out of sample: the same buffer on the next N paths
    oos = cb["out_of_sample"]
    assert oos["before"]["coverage_q"] == _coverage_q(spec, gold_out, calendar, settings)
    assert oos["after"]["coverage_q"] == _coverage_q(with_cash_buffer(spec, b), gold_out, calendar, settings)


def test_recommendations_on_a_dask_cluster_equal_the_plain_results(prefect_api, champion, settings):
    # what the simulate flow does: one task per token on the flow's Dask task runner (a worker
    # process: arguments and results cross a process boundary), on a real Prefect API
    from prefect import flow

    from goldstress.execution import task_runner
    from goldstress.settings import DaskSettings
    from tasks.recommend import submit_recommendations

    specs = [load_token_spec(SPECS / f"{s}.toml") for s in ("paxg", "dgx", "gusd_cdp")]

    @flow(task_runner=task_runner(DaskSettings(workers=1)))
    def per_token() -> dict:
        return submit_recommendations(specs, champion, P0, FIRST_DAY, settings)()

    got = per_token()
    assert list(got["tokens"]) == ["PAXG", "DGX"]  # the CDP has no reserve to tune
    assert got == recommend.fn(specs, champion, P0, FIRST_DAY, settings)


@pytest.mark.parametrize("symbol", ["gram", "paxg", "xaut", "dgx"])
def test_shared_premium_noise_gives_the_recommendations_of_a_fresh_draw_per_run(symbol, settings, inputs, monkeypatch):
    # every re-run of the recommendations (grids, buffer search, out of sample) shares one draw
    # of the premium innovations per set of paths; drawing them afresh in each run, as the
    # engine does given only the seed, must give exactly the same recommendations
    _, gold_in, gold_out, calendar = inputs
    spec = load_token_spec(SPECS / f"{symbol}.toml")
    draws: list[int] = []
    draw = ReserveBackedToken.innovations
    monkeypatch.setattr(ReserveBackedToken, "innovations", lambda self, *a, **k: draws.append(1) or draw(self, *a, **k))
    shared = recommend_for_spec(spec, gold_in, gold_out, calendar, settings)
    assert len(draws) == 2  # one draw on the search paths, one out of sample

    def fresh(self, s, horizon_days, calendar=None):
        return ReserveBackedToken(s).run(
            self.gold[:, : horizon_days + 1],
            calendar=None if calendar is None else calendar[: horizon_days + 1],
            rng=np.random.default_rng(self.seed),
        )

    monkeypatch.setattr(PremiumNoise, "run", fresh)
    assert recommend_for_spec(spec, gold_in, gold_out, calendar, settings) == shared
