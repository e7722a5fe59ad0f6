"""A GJR-GARCH(1,1)-t fit with the parameters fitted to gold (the registered champion of a real run,
decimal daily log returns), shared by the engine benchmark and the tests that need a champion."""

from __future__ import annotations

import math

import numpy as np

from models.volatility import GarchFit

GOLD_GJR_PARAMS = {"mu": 4.4e-4, "omega": 1.283e-6, "alpha": 0.0743, "gamma": -0.0359, "beta": 0.9356, "nu": 4.99}
"""GJR-GARCH-t parameters of a real run's champion (decimal units)."""


def gold_gjr_fit() -> GarchFit:
    """:data:`GOLD_GJR_PARAMS` as a fit: 5,000 unit-variance Student-t residuals (seed 0) for
    filtered historical simulation, last residual -1% on a variance of 1e-4, and the next day's
    sigma from the GJR recursion ``omega + (alpha + gamma) eps^2 + beta s2``."""
    p = GOLD_GJR_PARAMS
    z = np.random.default_rng(0).standard_t(p["nu"], 5000) * math.sqrt((p["nu"] - 2) / p["nu"])
    s2, eps = 1e-4, -0.01
    nxt = p["omega"] + (p["alpha"] + p["gamma"]) * eps * eps + p["beta"] * s2
    return GarchFit(
        kind="gjr",
        params=dict(p),
        std_errors=dict.fromkeys(p, 0.0),
        loglik=0.0,
        loglik_decimal=0.0,
        aic=0.0,
        bic=0.0,
        n_obs=5000,
        std_resid=z,
        last_resid=eps,
        last_variance=s2,
        sigma_next=math.sqrt(nxt),
    )
