"""The interface every token model implements, and the one dispatcher from spec to model.

:class:`TokenModel` is a structural type (:class:`typing.Protocol`): anything with a
``spec`` and ``run(gold_usd_per_oz, *, calendar=None, rng=None, first_path=0) -> TokenOutcome``
is one.
:func:`build_token_model` maps each spec kind of :mod:`models.token.spec` to its model.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from models.token.cdp import CdpStablecoin
from models.token.outcome import TokenOutcome
from models.token.reserve_backed import ReserveBackedToken
from models.token.spec import CdpStablecoinSpec, ReserveBackedTokenSpec

__all__ = ["TokenModel", "build_token_model"]


@runtime_checkable
class TokenModel(Protocol):
    """A token model: a spec and a daily simulation along gold price paths (``isinstance``
    checks only that both attributes exist)."""

    @property
    def spec(self) -> ReserveBackedTokenSpec | CdpStablecoinSpec:
        """The spec the model runs."""
        ...

    def run(
        self,
        gold_usd_per_oz: np.ndarray,
        *,
        calendar: pd.DatetimeIndex | None = None,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
        first_path: int = 0,
    ) -> TokenOutcome:
        """Run the token along gold price paths.

        ``gold_usd_per_oz``: ``(n_paths, horizon_days + 1)`` USD per troy ounce, day 0 first.
        ``calendar``: the ``horizon_days + 1`` dates of the model days, or None (every day a
        trading day); ``rng``: the randomness of the model, if any (None: a fixed seed; a seed
        or SeedSequence makes each path's draws depend only on it and the path's index
        ``first_path + i`` in the whole run, so chunking never changes a path). Returns a :class:`models.token.outcome.TokenOutcome` of ``(n_paths, horizon_days + 1)``
        arrays. Raises ValueError for prices that are not a 2-D array of finite positive
        numbers (or a calendar of the wrong length, for models that use it).
        """
        ...


def build_token_model(spec: ReserveBackedTokenSpec | CdpStablecoinSpec) -> TokenModel:
    """The model of a spec: :class:`models.token.reserve_backed.ReserveBackedToken` (with the
    spec's premium process) for ``kind = "gold_backed"``, :class:`models.token.cdp.CdpStablecoin`
    for ``kind = "gold_cdp"``. Raises ValueError for any other object.
    """
    if isinstance(spec, ReserveBackedTokenSpec):
        return ReserveBackedToken(spec)
    if isinstance(spec, CdpStablecoinSpec):
        return CdpStablecoin(spec)
    raise ValueError(f"spec: expected a token spec, got {type(spec).__name__}")
