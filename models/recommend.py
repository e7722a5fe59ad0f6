"""Recommendations with numbers: the cash buffer, redeem fee and redemption limit a reserve-backed token
needs, each measured by re-running the scenario with the setting in place.

Pure numerics (no I/O): :func:`cash_buffer_for_coverage` and :func:`evaluate_settings` re-run the
scenario on the same gold paths and noise seed (common random numbers); :func:`choose_setting` picks
the (redeem fee, redemption limit) to recommend.
Liquidity criterion, cash-buffer search and sources: docs/models/recommendations.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.checks import check_level
from models.peg import depeg_depth
from models.token.outcome import ReserveBackedOutcome
from models.token.reserve_backed import ReserveBackedToken, innovation_params
from models.token.spec import ReserveBackedTokenSpec
from models.units import TROY_OUNCE_G

__all__ = [
    "CashBufferResult",
    "PremiumNoise",
    "SettingResult",
    "cash_buffer_for_coverage",
    "choose_setting",
    "liabilities_usd",
    "evaluate_settings",
    "gate_never_binds",
    "liquidity_stats",
    "with_cash_buffer",
    "with_primary",
    "worst_supply_falls",
]


def _check_spec(spec: Any) -> ReserveBackedTokenSpec:
    if not isinstance(spec, ReserveBackedTokenSpec):
        raise ValueError(f"spec: expected a ReserveBackedTokenSpec (a gold_backed token), got {type(spec).__name__}")
    return spec


def _check_horizon(horizon_days: int, t1: int) -> int:
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, np.integer)) or horizon_days < 1:
        raise ValueError(f"horizon_days: expected an integer >= 1, got {horizon_days!r}")
    if horizon_days > t1 - 1:
        raise ValueError(f"horizon_days: {horizon_days} is longer than the gold paths ({t1 - 1} days after day 0)")
    return int(horizon_days)


def with_cash_buffer(spec: ReserveBackedTokenSpec, buffer_usd: float) -> ReserveBackedTokenSpec:
    """A copy of ``spec`` with ``buffer_usd`` more USD in its first ``usd_cash`` reserve asset.

    The buffer is issuer-funded (supply and liabilities unchanged), so the day-0 backing ratio
    rises by ``buffer_usd / (supply * NAV_0)``.

    Raises
    ------
    ValueError
        If ``spec`` is not a ReserveBackedTokenSpec, ``buffer_usd`` is negative or not finite, or the spec
        has no ``usd_cash`` asset.
    """
    spec = _check_spec(spec)
    if not math.isfinite(float(buffer_usd)) or float(buffer_usd) < 0:
        raise ValueError(f"buffer_usd: expected a finite amount >= 0 USD, got {buffer_usd!r}")
    reserve = list(spec.reserve)
    for i, asset in enumerate(reserve):
        if asset.kind == "usd_cash":
            reserve[i] = asset.model_copy(update={"amount": asset.amount + float(buffer_usd)})
            return spec.model_copy(update={"reserve": reserve})
    raise ValueError(f"spec {spec.symbol}: reserve has no usd_cash asset to hold a cash buffer")


def with_primary(spec: ReserveBackedTokenSpec, **updates: Any) -> ReserveBackedTokenSpec:
    """A copy of ``spec`` with primary-market fields replaced (e.g. ``redeem_fee=0.005``,
    ``redemption_limit_share_per_day=0.05``), re-validated by
    :class:`models.token.spec.PrimaryMarketSpec`.

    Raises
    ------
    ValueError
        If ``spec`` is not a ReserveBackedTokenSpec, a field is unknown, or a value is out of its range
        (the message names the field).
    """
    spec = _check_spec(spec)
    unknown = sorted(set(updates) - set(type(spec.primary).model_fields))
    if unknown:
        raise ValueError(f"primary: unknown field(s) {unknown}")
    try:
        primary = type(spec.primary).model_validate({**spec.primary.model_dump(), **updates})
    except Exception as exc:  # pydantic ValidationError names the field
        raise ValueError(f"primary: {exc}") from exc
    return spec.model_copy(update={"primary": primary})


def liquidity_stats(
    outcome: ReserveBackedOutcome, horizon_days: int, confidence: float, target: float = 1.0
) -> dict[str, float]:
    """Liquidity and peg figures of one run over days ``1..horizon_days``.

    Returns (all per path first, then over paths):

    - ``coverage_q``: the ``1 - confidence`` lower quantile of the path minima of the liquidity
      coverage (``np.quantile``, method ``"inverted_cdf"``: an observed path minimum);
    - ``p_coverage_below_target``: share of paths whose minimum coverage is below ``target``;
    - ``meets_target``: 1.0 if ``coverage_q >= target`` (that share is below ``1 -
      confidence``), else 0.0;
    - ``p_abs_premium_gt_1pct``: share of path-days with ``|premium| > 1%``;
    - ``depeg_depth_q``: the ``confidence`` quantile of the largest ``|premium|`` per path
      (:func:`models.peg.depeg_depth`, a fraction of NAV);
    - ``backlog_max_share_q``: the ``confidence`` quantile of the largest unpaid backlog as a
      share of the day-0 supply;
    - ``refused_share_mean``: mean over paths of the requests refused by a redemption gate or
      returned as sub-bar remainders, as a share of the day-0 supply;
    - ``redeemed_share_mean``: mean share of the day-0 supply redeemed.

    Raises ValueError for a bad ``horizon_days`` or ``confidence``.
    """
    t1 = outcome.liquidity_coverage.shape[1]
    h = _check_horizon(horizon_days, t1)
    conf = check_level(confidence, "confidence")
    sl = slice(1, h + 1)
    cov_min = outcome.liquidity_coverage[:, sl].min(axis=1)
    p_below = float((cov_min < target).mean())
    cov_q = float(np.quantile(cov_min, round(1.0 - conf, 12), method="inverted_cdf"))  # 1 - 0.95 = 0.0500...04
    prem = outcome.premium_frac[:, sl]
    s0 = outcome.supply_tokens[:, 0]
    redeemed = (outcome.redeemed_gold_tokens[:, sl] + outcome.redeemed_cash_tokens[:, sl]).sum(axis=1)
    return {
        "coverage_q": cov_q,
        "p_coverage_below_target": p_below,
        "meets_target": float(cov_q >= target),
        "p_abs_premium_gt_1pct": float((np.abs(prem) > 0.01).mean()),
        "depeg_depth_q": float(np.quantile(depeg_depth(prem), conf)),
        "backlog_max_share_q": float(np.quantile(outcome.backlog_tokens[:, sl].max(axis=1) / s0, conf)),
        "refused_share_mean": float((outcome.returned_tokens[:, sl].sum(axis=1) / s0).mean()),
        "redeemed_share_mean": float((redeemed / s0).mean()),
    }


class PremiumNoise:
    """The secondary-market noise shared by re-runs of one scenario (common random numbers): the
    premium innovations of gold paths ``gold_usd_per_oz`` ``(n_paths, days + 1)`` (USD per troy
    ounce) drawn from ``np.random.default_rng(seed)``, drawn once per horizon and premium
    innovation parameters (:func:`models.token.reserve_backed.innovation_params`) and kept.

    :meth:`run` gives exactly the outcome of ``ReserveBackedToken(spec).run(gold[:, : horizon_days
    + 1], calendar=calendar[: horizon_days + 1], rng=np.random.default_rng(seed))`` in the
    records :data:`models.token.reserve_backed.SUMMARY_FIELDS` (all that :func:`liquidity_stats`
    and :func:`gate_never_binds` read; the others read NaN): the cash buffer, fees, limits and
    behaviour of the re-runs change the daily loop only, so a draw is reused by every spec whose
    premium process has the same innovation parameters. A re-run keeps half the records of a
    full run, on the general kernel (a search runs each of its many spec variants a few times
    only: a kernel compiled per variant would not repay its compilation).

    Raises
    ------
    ValueError
        If the paths are not a 2-D array or the seed not an integer.
    """

    def __init__(self, gold_usd_per_oz: np.ndarray, seed: int) -> None:
        gold = np.asarray(gold_usd_per_oz, dtype=float)
        if gold.ndim != 2 or gold.shape[0] < 1:
            raise ValueError(f"gold_usd_per_oz: expected a 2-d array (n_paths, days + 1), got shape {gold.shape}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed: expected an integer, got {seed!r}")
        self.gold = gold
        self.seed = int(seed)
        self._drawn: dict[tuple[Any, int], np.ndarray] = {}

    def check(self, gold: np.ndarray, seed: int) -> None:
        """Raise ValueError unless this noise belongs to gold paths equal to ``gold`` and ``seed``."""
        if self.seed != seed or self.gold.shape != gold.shape or not np.array_equal(self.gold, gold):
            raise ValueError("noise: drawn for other gold paths or another seed than the ones given")

    def run(
        self, spec: ReserveBackedTokenSpec, horizon_days: int, calendar: pd.DatetimeIndex | None = None
    ) -> ReserveBackedOutcome:
        """``spec`` run over the first ``horizon_days`` days of the paths (``calendar``: dates of
        the path columns or None, as in :func:`cash_buffer_for_coverage`) with the shared noise."""
        model = ReserveBackedToken(_check_spec(spec))
        h = _check_horizon(horizon_days, self.gold.shape[1])
        gold = self.gold[:, : h + 1]
        key = (innovation_params(model.premium_process), h)
        if key not in self._drawn:
            self._drawn[key] = model.innovations(gold, rng=np.random.default_rng(self.seed))
        cal = None if calendar is None else calendar[: h + 1]
        return model.run(gold, calendar=cal, innovations=self._drawn[key], records="summary", specialise=False)


def _noise_for(noise: PremiumNoise | None, gold: np.ndarray, seed: int) -> PremiumNoise:
    if noise is None:
        return PremiumNoise(gold, seed)
    if not isinstance(noise, PremiumNoise):
        raise ValueError(f"noise: expected a PremiumNoise, got {type(noise).__name__}")
    noise.check(gold, seed)
    return noise


def gate_never_binds(outcome: ReserveBackedOutcome, limit: float) -> bool:
    """Whether a redemption gate of ``limit`` (a share of the supply per day) would have refused
    nothing in ``outcome``, a run of the same spec without a gate.

    The engine's gate refuses ``max(request_t - limit * max(S_{t-1}, 1e-300), 0)`` tokens on day
    ``t`` (``request_t``: ``redemption_demand_tokens``, ``S``: ``supply_tokens``, both
    ``(n_paths, H + 1)``). When that is 0 on every path and day ``1..H``, the gated run makes the
    same requests, accepts all of them and returns nothing, so it is the ungated run, number for
    number. The comparison is the engine's own (``request <= limit * S_{t-1}`` in float64). A
    non-finite value counts as binding. Raises ValueError for a ``limit`` outside (0, 1].
    """
    lim = float(limit)
    if not 0.0 < lim <= 1.0:
        raise ValueError(f"limit: expected a share of the supply in (0, 1], got {limit!r}")
    request = outcome.redemption_demand_tokens[:, 1:]
    prev = np.maximum(outcome.supply_tokens[:, :-1], 1e-300)
    return bool(np.all(request <= lim * prev))


@dataclass(frozen=True)
class CashBufferResult:
    """Outcome of :func:`cash_buffer_for_coverage`.

    ``buffer_usd`` is the smallest issuer-funded cash (USD) found to meet the criterion (within
    ``tol_usd``; ``None`` if not reachable up to ``max_buffer_usd``), ``buffer_frac`` the same
    as a fraction of the day-0 liabilities (supply times NAV at the first gold price on the
    first path); ``before``/``after`` are :func:`liquidity_stats` of the runs without and with
    the buffer (``after`` at ``max_buffer_usd`` when not reachable), ``evaluations`` the number
    of model runs, ``bracket_usd`` the final bisection interval.
    """

    buffer_usd: float | None
    buffer_frac: float | None
    reachable: bool
    target: float
    confidence: float
    horizon_days: int
    max_buffer_usd: float
    tol_usd: float
    evaluations: int
    bracket_usd: tuple[float, float]
    before: dict[str, float]
    after: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples as lists)."""
        d = asdict(self)
        d["bracket_usd"] = list(self.bracket_usd)
        return d


def liabilities_usd(spec: ReserveBackedTokenSpec, gold_usd_per_oz: float) -> float:
    """Day-0 liabilities of a reserve-backed token in USD: supply x grams per token x gold price per gram
    (``gold_usd_per_oz`` in USD per troy ounce of 31.1034768 g)."""
    return float(spec.supply_tokens * spec.grams_per_token * gold_usd_per_oz / TROY_OUNCE_G)


def cash_buffer_for_coverage(
    spec: ReserveBackedTokenSpec,
    gold_usd_per_oz: np.ndarray,
    *,
    horizon_days: int,
    confidence: float = 0.99,
    target: float = 1.0,
    seed: int = 0,
    max_buffer_frac: float = 1.0,
    tol_frac: float = 1e-4,
    calendar: pd.DatetimeIndex | None = None,
    before: dict[str, float] | None = None,
    noise: PremiumNoise | None = None,
) -> CashBufferResult:
    """Smallest issuer-funded cash buffer that keeps the liquidity coverage >= ``target`` at
    ``confidence`` over ``horizon_days`` (see docs/models/recommendations.md), by a bracketing
    search.

    Each evaluation re-runs :class:`models.token.reserve_backed.ReserveBackedToken` with :func:`with_cash_buffer` on
    the same gold paths and noise seed. The search first runs the spec as is (``b = 0``; the
    answer is 0 when it already meets the criterion) and at ``b_max = max_buffer_frac *
    liabilities``; if ``b_max`` does not meet it either, the result is not reachable. Otherwise
    it shrinks ``[lo, hi]`` (``lo`` failing, ``hi`` meeting) until ``hi - lo <= tol_frac *
    liabilities`` and returns ``hi``, so the reported buffer always meets the criterion on
    these paths (its own re-run is ``after``) and lies within ``tol_frac * liabilities`` above
    the smallest buffer that does. Each step evaluates the ITP point of ``coverage_q - target``
    (interpolate, truncate, project: Oliveira and Takahashi (2020), "An Enhancement of the
    Bisection Method Average Performance Preserving Minmax Optimality", ACM TOMS 47(1), art. 5;
    ``kappa1 = 0.2 / b_max``, ``kappa2 = 2``, ``n0 = 1``): a regula-falsi step kept within the
    bisection's worst case plus one evaluation, and far fewer when the coverage quantile is close
    to linear in ``b``. The search assumes the criterion is monotone in ``b``
    (docs/models/recommendations.md); tests check it on a grid.

    Parameters
    ----------
    spec : ReserveBackedTokenSpec
    gold_usd_per_oz : ndarray (n_paths, >= horizon_days + 1)
        Gold paths, USD per troy ounce, day 0 first (only the first ``horizon_days + 1``
        columns are used).
    horizon_days : int
        Days over which the minimum coverage is taken, >= 1.
    confidence : float
        In [0.5, 1), e.g. 0.99.
    target : float
        Coverage to keep, e.g. 1.0 (100%).
    seed : int
        Seed of the secondary-market noise (identical in every re-run).
    max_buffer_frac, tol_frac : float
        Upper end of the search and its resolution, as fractions of the day-0 liabilities.
    calendar : pd.DatetimeIndex or None
        Dates of the path columns (e.g. :func:`models.scenarios.calendar_day_paths`): the
        spec's market hours then decide the open days. ``None``: every day open.
    before : dict or None
        :func:`liquidity_stats` of ``spec`` as is on these paths, seed, horizon, confidence and
        target when the caller has them already (e.g. a row of :func:`evaluate_settings`): the
        ``b = 0`` run is then not repeated. ``None``: run it.
    noise : PremiumNoise or None
        The premium noise of these paths and seed, shared with the caller's other re-runs (the
        same results, drawn once). None: drawn once for this search.

    ``evaluations`` counts the runs this call made.

    Raises
    ------
    ValueError
        Bad spec, paths, horizon, confidence or search bounds (the message names the argument).
    """
    spec = _check_spec(spec)
    gold = np.asarray(gold_usd_per_oz, dtype=float)
    if gold.ndim != 2 or gold.shape[0] < 1:
        raise ValueError(f"gold_usd_per_oz: expected a 2-d array (n_paths, days + 1), got shape {gold.shape}")
    h = _check_horizon(horizon_days, gold.shape[1])
    conf = check_level(confidence, "confidence")
    if not (max_buffer_frac > 0 and math.isfinite(max_buffer_frac)):
        raise ValueError(f"max_buffer_frac: expected a finite fraction > 0, got {max_buffer_frac!r}")
    if not 0 < tol_frac < max_buffer_frac:
        raise ValueError(f"tol_frac: expected 0 < tol_frac < max_buffer_frac, got {tol_frac!r}")
    shared = _noise_for(noise, gold, seed)
    liab = liabilities_usd(spec, float(gold[0, 0]))
    b_max, tol = max_buffer_frac * liab, tol_frac * liab
    evals = 0

    def ev(b: float) -> dict[str, float]:
        nonlocal evals
        evals += 1
        return liquidity_stats(shared.run(with_cash_buffer(spec, b), h, calendar), h, conf, target)

    if before is None:
        before = ev(0.0)
    common: dict[str, Any] = dict(
        target=target, confidence=conf, horizon_days=h, max_buffer_usd=b_max, tol_usd=tol, before=before
    )
    if before["meets_target"]:
        return CashBufferResult(0.0, 0.0, True, evaluations=evals, bracket_usd=(0.0, 0.0), after=before, **common)
    at_max = ev(b_max)
    if not at_max["meets_target"]:
        return CashBufferResult(None, None, False, evaluations=evals, bracket_usd=(0.0, b_max), after=at_max, **common)
    lo, hi, hi_stats = _itp_search(ev, b_max, tol, target, before, at_max)
    return CashBufferResult(hi, hi / liab, True, evaluations=evals, bracket_usd=(lo, hi), after=hi_stats, **common)


def _itp_search(
    ev: Callable[[float], dict[str, float]],
    b_max: float,
    tol: float,
    target: float,
    at_zero: dict[str, float],
    at_max: dict[str, float],
) -> tuple[float, float, dict[str, float]]:
    """ITP search (Oliveira and Takahashi 2020) on ``[0, b_max]`` for the smallest ``b`` whose
    :func:`liquidity_stats` ``ev(b)`` meets the target, on ``f(b) = coverage_q - target``, from
    the stats at 0 (failing) and at ``b_max`` (meeting). Returns ``(lo, hi, ev(hi))`` with ``hi -
    lo <= tol``, ``lo`` failing and ``hi`` meeting.

    The interpolation step is the secant through the two smallest meeting buffers once there are
    two (at and above the answer the binding day's claims are met from cash, which rises one for
    one with ``b``, so ``f`` is close to linear there while it is flatter below, where other days
    bind), else regula falsi; ITP's truncation and projection keep the worst case whatever the
    interpolation."""
    lo, hi, hi_stats = 0.0, b_max, at_max
    f_lo, f_hi = at_zero["coverage_q"] - target, at_max["coverage_q"] - target
    above: tuple[float, float] | None = None  # the previous meeting buffer and its f
    eps = 0.5 * tol
    n_max = max(math.ceil(math.log2(b_max / tol)), 0) + 1
    kappa1 = 0.2 / b_max
    j = 0
    while hi - lo > tol:
        mid, width = 0.5 * (lo + hi), hi - lo
        r = max(eps * 2.0 ** (n_max - j) - 0.5 * width, 0.0)
        delta = kappa1 * width**2
        if above is not None and above[1] > f_hi:
            x_f = hi - f_hi * (above[0] - hi) / (above[1] - f_hi)
        else:
            x_f = (f_hi * lo - f_lo * hi) / (f_hi - f_lo) if f_hi > f_lo else mid
        x_f = min(max(x_f, lo), hi) if math.isfinite(x_f) else mid
        sigma = math.copysign(1.0, mid - x_f)
        x_t = x_f + sigma * delta if delta <= abs(mid - x_f) else mid
        x = x_t if abs(x_t - mid) <= r else mid - sigma * r
        x = min(max(x, lo + 0.5 * eps), hi - 0.5 * eps)  # never an end already run
        st = ev(x)
        if st["meets_target"]:
            above = (hi, f_hi)
            hi, f_hi, hi_stats = x, st["coverage_q"] - target, st
        else:
            lo, f_lo = x, st["coverage_q"] - target
        j += 1
    return lo, hi, hi_stats


@dataclass(frozen=True)
class SettingResult:
    """One primary-market setting and its measured effect (a re-run of the scenario).

    ``redeem_fee`` is a fraction of NAV, ``redemption_limit_share_per_day`` a fraction of the
    supply (``None`` = no gate); ``stats`` is :func:`liquidity_stats` of the re-run.
    """

    redeem_fee: float
    redemption_limit_share_per_day: float | None
    stats: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "redeem_fee": self.redeem_fee,
            "redemption_limit_share_per_day": self.redemption_limit_share_per_day,
            **self.stats,
        }


def evaluate_settings(
    spec: ReserveBackedTokenSpec,
    gold_usd_per_oz: np.ndarray,
    *,
    redeem_fees: Sequence[float],
    redemption_limits: Sequence[float | None],
    horizon_days: int,
    confidence: float = 0.99,
    target: float = 1.0,
    seed: int = 0,
    transform: Callable[[ReserveBackedTokenSpec], ReserveBackedTokenSpec] | None = None,
    calendar: pd.DatetimeIndex | None = None,
    noise: PremiumNoise | None = None,
) -> list[SettingResult]:
    """Re-run the scenario for every (redeem fee, redemption limit) pair, all else equal.

    ``transform`` (e.g. a redemption-wave stress, ``lambda s: with_redemption_share(s, 0.2,
    5)``) is applied after the setting, so the stress is the same for every row. Rows come in
    the order fees x limits; ``calendar`` as in :func:`cash_buffer_for_coverage`.

    A gate that would refuse nothing in the same fee's run without a gate (``None`` among
    ``redemption_limits``, run first) is not re-run: its row takes that run's figures, which
    are the gated run's own (:func:`gate_never_binds`; only when the transformed specs differ in
    nothing but the gate). ``noise``: as in :func:`cash_buffer_for_coverage`. Raises ValueError
    for an empty grid or an invalid setting (named by :func:`with_primary`).
    """
    spec = _check_spec(spec)
    if not redeem_fees or not redemption_limits:
        raise ValueError("redeem_fees, redemption_limits: expected non-empty sequences")
    gold = np.asarray(gold_usd_per_oz, dtype=float)
    h = _check_horizon(horizon_days, gold.shape[1])
    shared = _noise_for(noise, gold, seed)

    def setting(fee: float, lim: float | None) -> ReserveBackedTokenSpec:
        s = with_primary(spec, redeem_fee=fee, redemption_limit_share_per_day=lim)
        return s if transform is None else transform(s)

    rows = []
    for fee in map(float, redeem_fees):
        base_spec = setting(fee, None) if None in redemption_limits else None
        base_stats: dict[str, float] = {}
        never_binds: dict[float, bool] = {}
        if base_spec is not None:
            base = shared.run(base_spec, h, calendar)
            base_stats = liquidity_stats(base, h, confidence, target)
            # judged now, so that the ungated run's records are freed before the gated re-runs
            never_binds = {lim: gate_never_binds(base, lim) for lim in redemption_limits if lim is not None}
            del base
        for lim in redemption_limits:
            if lim is None:
                stats = base_stats
            else:
                s = setting(fee, lim)
                only_gate = base_spec is not None and with_primary(s, redemption_limit_share_per_day=None) == base_spec
                if only_gate and never_binds[lim]:
                    stats = base_stats
                else:
                    stats = liquidity_stats(shared.run(s, h, calendar), h, confidence, target)
            rows.append(SettingResult(fee, lim, dict(stats)))
    return rows


def choose_setting(
    rows: Sequence[SettingResult],
    peg_rows: Sequence[SettingResult] | None = None,
    current: tuple[float, float | None] | None = None,
    *,
    peg_resolution: float = 0.005,
    depth_resolution: float = 0.001,
) -> SettingResult:
    """The setting to recommend from re-runs under a liquidity stress (``rows``), with the peg
    judged under ``peg_rows`` (the same settings re-run under ordinary holder behaviour;
    default ``rows``).

    Among rows that meet the coverage criterion, in order: the fewest refused requests
    (``refused_share_mean``: a gate that refuses redemptions weighs on the holders' right of
    redemption at all times, MiCA, Regulation (EU) 2023/1114, Art. 39(1), so a gate is chosen
    only when no setting without one meets the target), then the fewest days off the peg
    (``p_abs_premium_gt_1pct`` under ``peg_rows``: every row within ``peg_resolution`` of the
    fewest stays), then the shallowest depeg (``depeg_depth_q``, likewise within
    ``depth_resolution``: smaller differences are noise of the simulated premium, not a reason
    to change a setting), then the setting closest to ``current`` (``(redeem_fee,
    redemption_limit_share_per_day)``: the same gate first, then the nearest fee; a change
    that improves nothing is not recommended), then the lowest fee, then the loosest gate. If
    no row meets the criterion: the rows with the highest ``coverage_q`` (same tie-breaks).

    Raises ValueError for an empty sequence or a row without its peg counterpart.
    """
    if not rows:
        raise ValueError("rows: expected at least one setting")
    if not (peg_resolution > 0 and depth_resolution > 0):
        raise ValueError(
            f"peg_resolution, depth_resolution: expected > 0, got {peg_resolution!r}, {depth_resolution!r}"
        )
    peg = {(r.redeem_fee, r.redemption_limit_share_per_day): r.stats for r in (peg_rows or rows)}

    def peg_of(r: SettingResult) -> dict[str, float]:
        p = peg.get((r.redeem_fee, r.redemption_limit_share_per_day))
        if p is None:
            raise ValueError(
                f"peg_rows: no row for redeem_fee={r.redeem_fee}, redemption_limit_share_per_day={r.redemption_limit_share_per_day}"
            )
        return p

    def within(pool: list[SettingResult], value: Callable[[SettingResult], float], tol: float) -> list[SettingResult]:
        best = min(value(r) for r in pool)
        return [r for r in pool if value(r) <= best + tol]

    pool = [r for r in rows if r.stats["meets_target"]]
    if not pool:
        pool = within(list(rows), lambda r: -r.stats["coverage_q"], 0.0)
    pool = within(pool, lambda r: r.stats["refused_share_mean"], 1e-12)
    pool = within(pool, lambda r: peg_of(r)["p_abs_premium_gt_1pct"], peg_resolution)
    pool = within(pool, lambda r: peg_of(r)["depeg_depth_q"], depth_resolution)

    def key(r: SettingResult) -> tuple[float, ...]:
        lim = math.inf if r.redemption_limit_share_per_day is None else r.redemption_limit_share_per_day
        near = (
            (0.0, 0.0)
            if current is None
            else (float(r.redemption_limit_share_per_day != current[1]), abs(r.redeem_fee - current[0]))
        )
        return (*near, r.redeem_fee, -lim)

    return min(pool, key=key)


def without_supply_revisions(supply_tokens: pd.Series, revision_dates: Sequence[object]) -> pd.Series:
    """The supply series with each step on a ``revision_dates`` day removed: every value before
    the day is scaled by ``S(day) / S(previous day)``, so the level after a revision of the
    reported supply is carried back and only real flows remain. Dates absent from the series,
    or the first date, are ignored. ``supply_tokens`` is date-indexed and sorted."""
    s = pd.to_numeric(pd.Series(supply_tokens), errors="coerce").astype(float)
    s.index = pd.to_datetime(s.index)
    for day in revision_dates:
        ts = pd.Timestamp(day)
        if ts not in s.index:
            continue
        i = s.index.get_loc(ts)
        if not isinstance(i, int) or i == 0:
            continue
        factor = s.iloc[i] / s.iloc[i - 1]
        s.iloc[:i] = s.iloc[:i] * factor
    return s


def worst_supply_falls(supply_tokens: pd.Series, horizons_days: Sequence[int] = (1, 5, 30)) -> dict[str, Any]:
    """Largest observed falls of a token's supply over ``h`` calendar days: the historical
    anchor of a redemption-wave stress (net redemptions; mints offset them, so a gross outflow
    was at least this large).

    ``supply_tokens`` is indexed by date (any order; non-positive or missing values dropped,
    e.g. a market-cap proxy's zero first row). For each ``h``, the change over ``h`` days is
    ``S(d) / S(d - h) - 1`` on the calendar (``S(d - h)`` the last value at or before ``d - h``)
    and the result gives the most negative one (a fraction, <= 0 when there was any fall) and
    its end date. Returns ``{"n_obs", "first_date", "last_date", "worst": {"<h>d": {"fall_frac",
    "end_date"}}}``. Raises ValueError if fewer than 2 positive values remain or a horizon is
    not a positive integer.
    """
    s = pd.to_numeric(pd.Series(supply_tokens), errors="coerce")
    s.index = pd.to_datetime(s.index)
    s = s[(s > 0) & s.notna()].sort_index()
    s = s[~s.index.duplicated(keep="last")]
    if s.size < 2:
        raise ValueError(f"supply_tokens: need at least 2 positive values, got {s.size}")
    out: dict[str, Any] = {
        "n_obs": int(s.size),
        "first_date": str(s.index[0].date()),
        "last_date": str(s.index[-1].date()),
        "worst": {},
    }
    for h in horizons_days:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise ValueError(f"horizons_days: expected positive integers, got {h!r}")
        past = s.reindex(s.index - pd.Timedelta(days=int(h)), method="ffill").to_numpy()
        change = s.to_numpy() / past - 1.0
        ok = np.isfinite(change)
        if not ok.any():
            out["worst"][f"{int(h)}d"] = None
            continue
        i = int(np.nanargmin(np.where(ok, change, np.nan)))
        out["worst"][f"{int(h)}d"] = {"fall_frac": float(change[i]), "end_date": str(s.index[i].date())}
    return out
