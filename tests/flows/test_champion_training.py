"""The training tasks' champion selection and backtest, run as the ``train`` flow chains them
(tasks called directly, a real SQLite MLflow store under tmp), on a synthetic GARCH gold series
and on the same series with a wild hold-out.

Independent references: the windows' dates from the series' own index, ``fit_garch`` on the
returns before the hold-out and on all returns, and what MLflow stored read back through its
client.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from goldstress.settings import get_settings
from models.risk import select_champion
from models.volatility import fit_garch
from tests.flows.conftest import garch_gold_prices

pytestmark = pytest.mark.slow

VALIDATION, HOLDOUT = 400, 300


def gold_returns(n_days: int) -> pd.Series:
    """Daily log returns of the synthetic GARCH(1,1)-t gold series, UTC-dated (business days
    from 2005-01-04, after ``training.vol_train_start`` = 2000-01-01)."""
    prices = garch_gold_prices(n_days, seed=11)
    r = np.diff(np.log(prices["usd_pm"].to_numpy()))
    return pd.Series(r, index=pd.DatetimeIndex(prices["date"].iloc[1:]).tz_localize("UTC"))


def wild(returns: pd.Series) -> pd.Series:
    """The hold-out replaced by its returns reversed and tripled, with one -20% day."""
    r = returns.to_numpy().copy()
    r[-HOLDOUT:] = 3.0 * r[-HOLDOUT:][::-1]
    r[-HOLDOUT + 5] = -0.20
    return pd.Series(r, index=returns.index)


META = {"data_sha256": "0" * 64, "data_last_date": "2009-12-31", "n_returns": 0}


def train(returns: pd.Series, settings) -> dict:
    """The ``train`` flow's chain up to the champion's backtest."""
    from tasks.train import CANDIDATES, fit_candidate, fit_champion, open_training_run, training_windows

    vol, windows = training_windows.fn(returns, settings)
    experiment_id, parent = open_training_run.fn(META, settings)
    candidates = [
        fit_candidate.fn(vol, windows, META, kind, innovations, settings, experiment_id, parent)
        for kind, innovations in CANDIDATES
    ]
    best = select_champion(candidates)
    fitted = fit_champion.fn(vol, windows, best, settings)
    return {"windows": windows, "candidates": candidates, "best": best, "fitted": fitted, "parent": parent}


@pytest.fixture
def settings(workdir, monkeypatch):
    monkeypatch.setenv("GOLDSTRESS_CHAMPION_VALIDATION_DAYS", str(VALIDATION))
    monkeypatch.setenv("GOLDSTRESS_BACKTEST_HOLDOUT_DAYS", str(HOLDOUT))
    get_settings.cache_clear()
    return get_settings()


def test_champion_is_picked_without_the_holdout_and_backtested_on_it(settings):
    returns = gold_returns(1400)
    n = returns.size
    base, perturbed = train(returns, settings), train(wild(returns), settings)

    # windows: consecutive, disjoint, dates read off the series' index
    w = base["windows"].to_dict()
    day = [d.date().isoformat() for d in returns.index]
    n_fit = n - VALIDATION - HOLDOUT
    assert w == {
        "fit": {"first_date": day[0], "last_date": day[n_fit - 1], "n_returns": n_fit},
        "validation": {"first_date": day[n_fit], "last_date": day[n - HOLDOUT - 1], "n_returns": VALIDATION},
        "holdout": {"first_date": day[n - HOLDOUT], "last_date": day[-1], "n_returns": HOLDOUT},
    }
    assert w["validation"]["last_date"] < w["holdout"]["first_date"]
    assert perturbed["windows"] == base["windows"]

    # selection: same champion, same validation scores, whatever the hold-out holds
    assert perturbed["best"]["name"] == base["best"]["name"]
    for a, b in zip(base["candidates"], perturbed["candidates"]):
        assert (a["name"], a["score"], a["passes_kupiec"], a["validation"]) == (
            b["name"],
            b["score"],
            b["passes_kupiec"],
            b["validation"],
        )
    # the backtest: same fit (before the hold-out), other numbers
    assert perturbed["fitted"]["backtested_fit"]["params"] == base["fitted"]["backtested_fit"]["params"]
    for level in ("0.95", "0.99"):
        a, b = base["fitted"]["holdout_backtest"][level], perturbed["fitted"]["holdout_backtest"][level]
        assert a["n_obs"] == b["n_obs"] == HOLDOUT
        assert b["n_exceptions"] > a["n_exceptions"]
        assert b["kupiec_p_value"] != a["kupiec_p_value"]

    # backtested parameters = an independent fit before the hold-out; Monte Carlo = all returns
    kind = base["best"]["kind"]
    pre = fit_garch(returns.to_numpy()[: n - HOLDOUT], kind=kind)
    full = fit_garch(returns.to_numpy(), kind=kind)
    assert base["fitted"]["backtested_fit"]["params"] == pytest.approx(pre.params, rel=1e-12)
    assert base["fitted"]["full_sample_fit"]["params"] == pytest.approx(full.params, rel=1e-12)
    assert base["fitted"]["backtested_fit"]["n_obs"] == n - HOLDOUT
    assert base["fitted"]["full_sample_fit"]["n_obs"] == n


def test_registered_champion_records_and_logs_windows_scores_backtest_and_both_fits(settings):
    """What the registry and MLflow hold of the champion equals what training computed."""
    from mlflow.tracking import MlflowClient

    from goldstress.io.champion import load_champion
    from tasks.train import close_training_run, register_champion

    returns = gold_returns(1400)
    t = train(returns, settings)
    tail = {"tail": {"xi": 0.1, "beta": 0.01, "threshold": 0.02, "n_exceed": 50, "n_total": 1000}, "run_id": "-"}
    reg = register_champion.fn(t["best"], t["fitted"], t["candidates"], t["windows"], tail, META, settings)
    close_training_run.fn(t["parent"], reg, t["candidates"], tail, {"run_id": "-", "walk_forward": {}}, META, settings)

    champion, version = load_champion(settings.tracking.registered_model, settings.tracking.champion_alias)
    assert version == reg["version"]
    assert champion.fit.params == t["fitted"]["full_sample_fit"]["params"]  # the Monte Carlo's fit
    rec = reg["record"]
    assert rec["windows"] == t["windows"].to_dict()
    assert rec["backtested_fit"]["params"] == t["fitted"]["backtested_fit"]["params"]
    assert rec["backtested_fit"]["window"] == t["windows"].pre_holdout.to_dict()
    assert rec["full_sample_fit"] == {"window": t["windows"].full_sample.to_dict(), "params": champion.fit.params}
    assert rec["holdout_backtest"] == t["fitted"]["holdout_backtest"]
    assert [(s["candidate"], s["score"]) for s in rec["selection"]] == [
        (c["name"], c["score"]) for c in t["candidates"]
    ]

    client = MlflowClient(tracking_uri=settings.tracking.tracking_uri)
    for run_id in (t["best"]["run_id"], t["parent"]):
        data = client.get_run(run_id).data
        assert data.params["champion_candidate"] == t["best"]["name"]
        assert data.params["window_holdout_first_date"] == rec["windows"]["holdout"]["first_date"]
        assert data.params["window_validation_last_date"] == rec["windows"]["validation"]["last_date"]
        for name, value in rec["backtested_fit"]["params"].items():
            assert float(data.params[f"backtested_param_{name}"]) == pytest.approx(value, rel=1e-9)
        for name, value in champion.fit.params.items():
            assert float(data.params[f"full_sample_param_{name}"]) == pytest.approx(value, rel=1e-9)
        for level, bt in rec["holdout_backtest"].items():
            tag = "holdout_var" + level.replace("0.", "")
            assert data.metrics[f"{tag}_n_exceptions"] == bt["n_exceptions"]
            assert data.metrics[f"{tag}_expected_exceptions"] == pytest.approx(bt["expected_exceptions"])
            assert data.metrics[f"{tag}_kupiec_p_value"] == pytest.approx(bt["kupiec_p_value"])
            assert data.metrics[f"{tag}_christoffersen_p_value"] == pytest.approx(bt["christoffersen_p_value"])
        assert (
            data.params["holdout_var99_basel_zone_last_250d"] == rec["holdout_backtest"]["0.99"]["basel_zone_last_250d"]
        )
        for c in t["candidates"]:
            assert data.metrics[f"validation_score_{c['name']}"] == pytest.approx(c["score"], rel=1e-12)


def test_too_short_a_series_names_the_settings(settings):
    from tasks.train import training_windows

    returns = gold_returns(VALIDATION + HOLDOUT + 499 + 1)  # one return short of 500 to fit on
    with pytest.raises(
        ValueError, match=r"GOLDSTRESS_CHAMPION_VALIDATION_DAYS=400 and GOLDSTRESS_BACKTEST_HOLDOUT_DAYS=300 leave 499"
    ):
        training_windows.fn(returns, settings)
