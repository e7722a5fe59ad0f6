"""A frozen copy of the token and Monte Carlo engine the product's compiled engine replaced, kept
only as the reference the tests compare it with (never imported by product code):
``reserve_backed`` and ``cdp`` are the step-by-step NumPy engines, :func:`garch_simulate` the
NumPy GARCH recursion with ``Generator.standard_t`` draws."""

from __future__ import annotations

import math

import numpy as np


def garch_simulate(fit, n_paths, horizon_days, rng, innovations="t", drift_per_day=None):
    """The reference GARCH(-GJR) simulation: ``(n_paths, horizon_days)`` daily log returns from
    ``fit`` (a ``models.volatility.GarchFit``), vectorised over paths, a NumPy loop over days."""
    p = fit.params
    if innovations == "t":
        nu = p["nu"]
        z = rng.standard_t(nu, size=(n_paths, horizon_days)) * math.sqrt((nu - 2.0) / nu)
    else:
        z = fit.std_resid[rng.integers(0, fit.n_obs, size=(n_paths, horizon_days))]
    mu = p["mu"] if drift_per_day is None else float(drift_per_day)
    out = np.empty((n_paths, horizon_days))
    sigma2 = np.full(n_paths, fit.sigma_next**2)
    for d in range(horizon_days):
        eps = np.sqrt(sigma2) * z[:, d]
        out[:, d] = mu + eps
        sigma2 = p["omega"] + (p["alpha"] + p["gamma"] * (eps < 0)) * eps * eps + p["beta"] * sigma2
    return out
