"""A GJR-GARCH(1,1)-t fit with the parameters fitted to gold (the registered champion of a real run,
decimal daily log returns), shared by the engine benchmark and the tests that need a champion."""

from __future__ import annotations

import math

import numpy as np

from models.volatility import GarchFit

GOLD_GJR_PARAMS = {"mu": 4.4e-4, "omega": 1.283e-6, "alpha": 0.0743, "gamma": -0.0359, "beta": 0.9356, "nu": 4.99}
"""GJR-GARCH-t parameters of a real run's champion (decimal units)."""


def gjr_fit(params: dict[str, float], std_resid: np.ndarray, last_variance: float, last_resid: float) -> GarchFit:
    """A GJR-GARCH(1,1)-t fit of ``params`` (decimal units) with the residuals ``std_resid`` (for
    filtered historical simulation), the state ``last_variance`` and ``last_resid``, and the next
    day's sigma from the GJR recursion ``omega + (alpha + gamma) eps^2 + beta s2``; the
    likelihood fields are zero (not a fitted sample)."""
    p = params
    nxt = p["omega"] + (p["alpha"] + p["gamma"]) * last_resid * last_resid + p["beta"] * last_variance
    return GarchFit(
        kind="gjr",
        params=dict(p),
        std_errors=dict.fromkeys(p, 0.0),
        loglik=0.0,
        loglik_decimal=0.0,
        aic=0.0,
        bic=0.0,
        n_obs=len(std_resid),
        std_resid=std_resid,
        last_resid=last_resid,
        last_variance=last_variance,
        sigma_next=math.sqrt(nxt),
    )


def gold_gjr_fit() -> GarchFit:
    """:data:`GOLD_GJR_PARAMS` as a fit (:func:`gjr_fit`): 5,000 unit-variance Student-t residuals
    (seed 0), last residual -1% on a variance of 1e-4."""
    p = GOLD_GJR_PARAMS
    z = np.random.default_rng(0).standard_t(p["nu"], 5000) * math.sqrt((p["nu"] - 2) / p["nu"])
    return gjr_fit(p, z, 1e-4, -0.01)
