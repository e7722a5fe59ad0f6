"""models.peg against hand-worked paths and a brute-force loop."""

from __future__ import annotations

import numpy as np
import pytest

from models.peg import days_to_recovery, depeg_depth, longest_depeg_days, share_of_days_beyond

P = np.array(
    [
        [0.0, 0.002, -0.015, -0.03, -0.02, 0.004, 0.0],  # dips to -3%, back inside on day 5
        [0.0, 0.02, 0.0, 0.02, 0.02, 0.02, 0.03],  # never recovers after the deepest (last) day
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # flat
    ]
)


def test_depth_duration_recovery_by_hand():
    np.testing.assert_allclose(depeg_depth(P), [0.03, 0.03, 0.0])
    np.testing.assert_array_equal(longest_depeg_days(P, 0.01), [3, 4, 0])
    rec = days_to_recovery(P, 0.01)
    assert rec[0] == 2  # deepest on day 3, inside again on day 5
    assert np.isnan(rec[1])
    assert rec[2] == 0
    np.testing.assert_allclose(share_of_days_beyond(P, 0.01), [3 / 6, 5 / 6, 0.0])


def test_longest_run_matches_brute_force():
    rng = np.random.default_rng(3)
    p = rng.normal(0, 0.012, size=(200, 40))
    got = longest_depeg_days(p, 0.01)
    for i in range(p.shape[0]):
        best = run = 0
        for v in p[i]:
            run = run + 1 if abs(v) > 0.01 else 0
            best = max(best, run)
        assert got[i] == best


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="premium"):
        depeg_depth(np.zeros(5))
    with pytest.raises(ValueError, match="threshold"):
        longest_depeg_days(P, -0.1)
