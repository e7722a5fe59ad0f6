"""Unit tests of models.predictors: features/target vs hand loops, no look-ahead, walk-forward."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression

from models.predictors import (
    WalkForwardResult,
    fit_predictor,
    make_features,
    walk_forward_evaluate,
    walk_forward_splits,
)


def garch_returns(n, seed, omega=2e-6, alpha=0.10, beta=0.88):
    """Scalar-loop GARCH(1,1) with Gaussian shocks: strong volatility clustering."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    r = np.empty(n)
    s2 = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = math.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    return pd.Series(r, index=pd.bdate_range("2000-01-03", periods=n), name="r")


class PickColumn(RegressorMixin, BaseEstimator):
    """Predicts one feature column unchanged (ignores training data)."""

    def __init__(self, col=0):
        self.col = col

    def fit(self, X, y):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        return np.asarray(X, dtype=float)[:, self.col]


# ----------------------------------------------------------------------------- features/target


def test_features_and_target_equal_hand_loops():
    r = garch_returns(300, seed=1)
    w = 5
    X, y = make_features(r, window_days=w)
    v = r.to_numpy()
    # valid rows: positions 119 (first full 120-day window) .. n-1-w (last full forward window)
    assert len(X) == 300 - w - 119 and X.index[0] == r.index[119] and X.index[-1] == r.index[-1 - w]
    assert X.index.equals(y.index)
    for date in X.index[::17]:
        i = r.index.get_loc(date)
        fwd = v[i + 1 : i + 1 + w]
        assert y[date] == pytest.approx(math.sqrt(252 * sum(x * x for x in fwd) / w), rel=1e-12)
        for win in (5, 20, 60, 120):
            past = v[i - win + 1 : i + 1]
            assert X.loc[date, f"rv_{win}d"] == pytest.approx(
                math.sqrt(252 * sum(x * x for x in past) / win), rel=1e-10
            )
        assert X.loc[date, "abs_ret_1d"] == abs(v[i])
        cum = np.cumsum(v)
        assert X.loc[date, "drawdown_60d"] == pytest.approx(cum[i] - max(cum[i - 59 : i + 1]), abs=1e-15)
        assert X.loc[date, "rv_ratio_5d_60d"] == pytest.approx(X.loc[date, "rv_5d"] / X.loc[date, "rv_60d"], rel=1e-12)
    assert (X["drawdown_60d"] <= 0).all()


def test_baseline_column_added_for_other_windows():
    X, y = make_features(garch_returns(400, seed=2), window_days=10)
    assert "rv_10d" in X.columns and y.name == "rv_fwd_10d"


def test_no_look_ahead_in_features():
    r = garch_returns(600, seed=3)
    cut = r.index[400]
    r2 = r.copy()
    r2[r2.index > cut] = r2[r2.index > cut] * 5.0 + 0.01
    X1, y1 = make_features(r)
    X2, y2 = make_features(r2)
    pd.testing.assert_frame_equal(X1.loc[:cut], X2.loc[:cut])
    # targets look window_days ahead: identical only up to 20 rows before the cut
    last_same = r.index[400 - 20]
    pd.testing.assert_series_equal(y1.loc[:last_same], y2.loc[:last_same])
    assert not np.isclose(y1.loc[r.index[400 - 19]], y2.loc[r.index[400 - 19]])


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("n_rows,n_splits,w", [(1000, 5, 20), (777, 3, 10), (240, 4, 20)])
def test_walk_forward_splits_have_gap_and_expand(n_rows, n_splits, w):
    splits = walk_forward_splits(n_rows, n_splits, w)
    assert len(splits) == n_splits
    prev_train = 0
    for tr, te in splits:
        assert te.min() > tr.max() + w  # every test index > every train index + gap
        assert tr.min() == 0 and tr.size > prev_train  # expanding window
        assert np.all(np.diff(te) == 1)
        prev_train = tr.size
    assert splits[-1][1].max() == n_rows - 1


# ----------------------------------------------------------------------------- walk-forward


@pytest.fixture(scope="module")
def xy():
    return make_features(garch_returns(3000, seed=4), window_days=20)


def test_baseline_rmse_equals_independent_computation(xy):
    X, y = xy
    k = 5
    res = walk_forward_evaluate(X, y, n_splits=k, window_days=20, estimator=LinearRegression())
    n = len(X)
    test_size = n // (k + 1)  # scikit-learn TimeSeriesSplit default test size
    pooled = []
    for i, fold in enumerate(res.folds):
        start = n - (k - i) * test_size
        rows = range(start, start + test_size)
        errs = [X["rv_20d"].iloc[j] - y.iloc[j] for j in rows]
        pooled += errs
        assert fold.rmse_baseline == pytest.approx(math.sqrt(sum(e * e for e in errs) / len(errs)), rel=1e-12)
        assert fold.mae_baseline == pytest.approx(sum(abs(e) for e in errs) / len(errs), rel=1e-12)
        assert fold.test_start == X.index[start] and fold.test_end == X.index[start + test_size - 1]
        assert fold.train_end == X.index[start - 20 - 1] and fold.n_train == start - 20
    assert res.rmse_baseline == pytest.approx(math.sqrt(sum(e * e for e in pooled) / len(pooled)), rel=1e-12)


def test_estimator_returning_baseline_has_zero_skill(xy):
    X, y = xy
    res = walk_forward_evaluate(X, y, estimator=PickColumn(list(X.columns).index("rv_20d")))
    assert res.skill == pytest.approx(0.0, abs=1e-12)
    assert res.rmse_model == pytest.approx(res.rmse_baseline, rel=1e-12)


def test_default_model_on_garch_series_result_is_consistent(xy):
    X, y = xy
    res = walk_forward_evaluate(X, y, n_splits=5, window_days=20)
    assert isinstance(res, WalkForwardResult) and len(res.folds) == 5
    p = res.predictions
    assert len(p) == sum(f.n_test for f in res.folds) and p.index.is_monotonic_increasing
    assert np.isfinite(p.to_numpy()).all()
    np.testing.assert_allclose(p["y"].to_numpy(), y.loc[p.index].to_numpy())
    np.testing.assert_allclose(p["baseline"].to_numpy(), X.loc[p.index, "rv_20d"].to_numpy())
    rmse = math.sqrt(float(np.mean((p["model"] - p["y"]) ** 2)))
    assert res.rmse_model == pytest.approx(rmse, rel=1e-12)
    assert res.mae_model == pytest.approx(float(np.mean(np.abs(p["model"] - p["y"]))), rel=1e-12)
    assert res.skill == pytest.approx(1 - res.rmse_model / res.rmse_baseline, rel=1e-12)
    for f in res.folds:
        sub = p.loc[f.test_start : f.test_end]
        assert len(sub) == f.n_test
        assert f.rmse_model == pytest.approx(math.sqrt(float(np.mean((sub["model"] - sub["y"]) ** 2))), rel=1e-12)
        assert f.skill == pytest.approx(1 - f.rmse_model / f.rmse_baseline, rel=1e-12)
        assert f.train_end < f.test_start
    d = json.loads(json.dumps(res.to_dict()))
    assert d["skill"] == res.skill and len(d["folds"]) == 5
    # seeded estimator: the evaluation is reproducible
    again = walk_forward_evaluate(X, y, n_splits=5, window_days=20)
    assert again.rmse_model == res.rmse_model


def test_fit_predictor_fits_a_fresh_clone(xy):
    X, y = xy
    est = LinearRegression()
    fitted = fit_predictor(X, y, est)
    assert fitted is not est and not hasattr(est, "coef_")
    np.testing.assert_allclose(fitted.predict(X), LinearRegression().fit(X, y).predict(X))
    default = fit_predictor(X, y)
    assert default.predict(X.iloc[:5]).shape == (5,)


# ----------------------------------------------------------------------------- errors


def test_errors(xy):
    X, y = xy
    r = garch_returns(300, seed=5)
    with pytest.raises(ValueError, match="window_days"):
        make_features(r, window_days=1)
    bad = r.copy()
    bad.iloc[10] = np.nan
    with pytest.raises(ValueError, match=str(r.index[10].date())):
        make_features(bad)
    with pytest.raises(ValueError, match="too short"):
        make_features(r.iloc[:130])
    with pytest.raises(ValueError, match="Series"):
        make_features(r.to_numpy())
    with pytest.raises(ValueError, match="same index"):
        walk_forward_evaluate(X, y.iloc[1:])
    with pytest.raises(ValueError, match="rv_10d"):
        walk_forward_evaluate(X, y, window_days=10)
    with pytest.raises(ValueError, match="n_splits"):
        walk_forward_evaluate(X, y, n_splits=1)
    with pytest.raises(ValueError, match="too few"):
        walk_forward_evaluate(X.iloc[:50], y.iloc[:50], n_splits=5)
    Xn = X.copy()
    Xn.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_predictor(Xn, y)


# ----------------------------------------------------------------------------- skill on known clustering


def garch_returns_and_next_variance(n, seed, omega=1e-6, alpha=0.10, beta=0.88):
    """Scalar-loop Gaussian GARCH(1,1) (stationary start) and, for each day t, the true
    conditional variance of day t + 1 (known at t): the oracle's input."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    r, s2_next = np.empty(n), np.empty(n)
    s2 = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = math.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
        s2_next[t] = s2
    idx = pd.bdate_range("2000-01-03", periods=n)
    return pd.Series(r, index=idx, name="r"), pd.Series(s2_next, index=idx)


def iid_returns(n, seed, sigma=0.01):
    rng = np.random.default_rng(seed)
    return pd.Series(sigma * rng.standard_normal(n), index=pd.bdate_range("2000-01-03", periods=n), name="r")


N_LONG = 20_000  # ~80 years of days: the tree model needs long expanding windows (at 4,000-6,000
# days its skill over the naive benchmark was -0.22..+0.06 across seeds; at 12,000-25,000, +0.02..+0.10)


@pytest.fixture(scope="module")
def garch_long():
    params = dict(omega=1e-6, alpha=0.10, beta=0.88)
    r, s2_next = garch_returns_and_next_variance(N_LONG, seed=300, **params)
    X, y = make_features(r, window_days=20)
    return X, y, s2_next, params


def test_predictor_beats_the_naive_benchmark_on_garch_clustering_but_not_the_oracle(garch_long):
    """Gaussian GARCH(1,1), omega 1e-6, alpha 0.10, beta 0.88 (persistence 0.98): volatility
    clusters, so the walk-forward model must beat the naive trailing-vol benchmark (skill > 0)
    and, by a wide margin, a constant forecast (DummyRegressor, the training mean), which knows
    nothing of clustering. Upper bound: the oracle forecast from the TRUE conditional variance,
    ``sqrt(252 * mean_h E[sigma2_{t+h}])`` with ``E[sigma2_{t+h}] = V + k^(h-1) (sigma2_{t+1} -
    V)`` (k = alpha + beta, V = omega / (1 - k)), has skill ~0.10 over the benchmark (0.094-0.111
    over 5 seeds: the 20-day forward realised vol is mostly noise). A model far above it would
    be seeing the future. Measured model skill over 5 seeds: 0.023-0.071, over the constant
    0.19-0.25."""
    from sklearn.dummy import DummyRegressor

    X, y, s2_next, prm = garch_long
    res = walk_forward_evaluate(X, y, n_splits=5, window_days=20)
    const = walk_forward_evaluate(X, y, n_splits=5, window_days=20, estimator=DummyRegressor())
    p = res.predictions
    k = prm["alpha"] + prm["beta"]
    v = prm["omega"] / (1 - k)
    h = np.arange(1, 21)
    ev = v + np.outer(s2_next.loc[p.index].to_numpy() - v, k ** (h - 1))
    oracle = np.sqrt(252 * ev.mean(axis=1))
    rmse_oracle = math.sqrt(float(np.mean((oracle - p["y"].to_numpy()) ** 2)))
    oracle_skill = 1 - rmse_oracle / res.rmse_baseline
    assert 0.05 < oracle_skill < 0.2
    assert res.rmse_model < res.rmse_baseline and res.skill > 0.0
    assert res.skill < oracle_skill + 0.03
    assert 1 - res.rmse_model / const.rmse_model > 0.1


def test_predictor_gains_nothing_over_a_constant_on_iid_returns():
    """Control: i.i.d. normal returns have no clustering. The forward 20-day realised vol and
    the trailing one are then independent and identically distributed, so the naive benchmark
    has RMSE sqrt(2) times that of the best constant (E(b - y)^2 = 2 Var y vs Var y); the model
    "beats" the benchmark (skill near 1 - 1/sqrt(2) = 0.29) only by not copying its noise, and
    does not beat the constant forecast (measured over 5 seeds: -0.035..-0.024)."""
    from sklearn.dummy import DummyRegressor

    X, y = make_features(iid_returns(N_LONG, seed=400), window_days=20)
    res = walk_forward_evaluate(X, y, n_splits=5, window_days=20)
    const = walk_forward_evaluate(X, y, n_splits=5, window_days=20, estimator=DummyRegressor())
    assert abs(res.rmse_baseline / const.rmse_model - math.sqrt(2)) < 0.1
    assert 1 - res.rmse_model / const.rmse_model < 0.01
    assert res.skill < 1 - 1 / math.sqrt(2) + 0.05
