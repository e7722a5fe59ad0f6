"""A token's verdict (pass / watch / fail) from its stress figures and the issuer's risk tolerance.

Pure: plain mappings in (the summary's figures, the spec's ``risk_tolerance``), one JSON-ready
verdict record out. Rules and fields: docs/models/token-spec.md ("Risk tolerance and verdict").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from models.token.spec import CdpRiskTolerance, ReserveRiskTolerance, RiskTolerance

__all__ = ["CHECK_BOUNDS", "STATUS_ORDER", "check_status", "token_verdict", "worst_status"]

STATUS_ORDER = ("pass", "watch", "fail")
"""Statuses from best to worst; a verdict is the worst of its checks."""

CHECK_BOUNDS: dict[str, Literal["max", "min"]] = {
    "backing_shortfall_probability": "max",
    "depeg_depth": "max",
    "liquidity_coverage": "min",
    "wave_liquidity_coverage": "min",
    "liquidation_probability": "max",
    "bad_debt": "max",
}
"""Check key -> whether its limit is a most (``max``) or a least (``min``) value."""


def check_status(value: float, limit: float, bound: Literal["max", "min"], watch_share: float) -> str:
    """Status of one check. ``bound = "max"``: "fail" when ``value > limit``, "watch" when
    ``value > watch_share * limit`` (the figure uses more than ``watch_share`` of its limit), else
    "pass". ``bound = "min"`` (a floor, e.g. a coverage ratio): "fail" when ``value < limit``,
    "watch" when ``value * watch_share < limit`` (the limit uses more than ``watch_share`` of the
    figure), else "pass". ``value`` may be ``inf``. Raises ValueError for a NaN value or limit or
    an unknown ``bound``."""
    if math.isnan(value) or math.isnan(limit):
        raise ValueError(f"check_status: value and limit must be numbers, got {value!r}, {limit!r}")
    if bound == "max":
        return "fail" if value > limit else "watch" if value > watch_share * limit else "pass"
    if bound == "min":
        return "fail" if value < limit else "watch" if value * watch_share < limit else "pass"
    raise ValueError(f"check_status: bound must be 'max' or 'min', got {bound!r}")


def worst_status(statuses: list[str]) -> str:
    """The worst of ``statuses`` in :data:`STATUS_ORDER` ("pass" for an empty list)."""
    return max(statuses, key=STATUS_ORDER.index, default="pass")


def _number(v: Any) -> float | None:
    """A summary figure as a float; None when missing or NaN ("nan" strings of JSON-safe records
    included); "inf"/"-inf" strings become infinities."""
    if isinstance(v, str):
        v = {"inf": math.inf, "-inf": -math.inf}.get(v)
    if v is None or isinstance(v, bool):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _words(value: float, unit: str) -> str:
    if unit == "fraction":
        return f"{value:.1%}"
    if unit == "usd":
        return f"USD {value:,.0f}"
    return f"{value:.2f}"


def _tolerance(kind: str, given: Mapping[str, Any] | None) -> tuple[RiskTolerance, str]:
    model = CdpRiskTolerance if kind == "gold_cdp" else ReserveRiskTolerance
    if given is None:
        return model(), "default"
    return model.model_validate(dict(given)), "spec"


def _q(conf: float) -> tuple[str, str]:
    """Summary key suffixes of the upper and lower quantile at ``conf`` (0.99 -> "q99", "q01")."""
    return f"q{round(conf * 100):02d}", f"q{round((1 - conf) * 100):02d}"


def token_verdict(
    kind: str,
    mc: Mapping[str, Any],
    tolerance: Mapping[str, Any] | None,
    worst: Mapping[str, Any] | None = None,
    scenarios: Mapping[str, Any] | None = None,
    wave: Mapping[str, Any] | None = None,
    remedies: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The verdict record of one token (contract in docs/models/token-spec.md).

    Parameters
    ----------
    kind : str
        ``"gold_backed"`` or ``"gold_cdp"``.
    mc : mapping
        The token's Monte Carlo figures (``summary.tokens.SYMBOL.scenarios.mc_champion``):
        ``p_backing_below_1``, ``horizon_days``; gold_backed ``depeg_depth_q99_frac``,
        ``liquidity_coverage_{h}d_q01``; gold_cdp ``p_liquidation``,
        ``unbacked_frac_of_day0_liabilities_q99``, ``bad_debt_usd_q99``, ``expected_bad_debt_usd``.
    tolerance : mapping or None
        The spec's ``risk_tolerance`` (None: the defaults of
        :class:`models.token.spec.ReserveRiskTolerance` / :class:`CdpRiskTolerance`).
    worst : mapping, optional
        ``summary.tokens.SYMBOL.worst_scenario`` (``scenario``, ``value``: peak-to-trough fall).
    scenarios : mapping, optional
        ``summary.tokens.SYMBOL.scenarios`` (the worst scenario's ``description`` is its label).
    wave : mapping, optional
        The liquidity stress test's redemption wave: ``coverage_q`` (coverage without remedy),
        ``confidence``, ``wave_horizon_trading_days``, ``wave_share_of_supply``, ``wave_days``.
    remedies : mapping, optional
        ``summary.liquidity_stress.remedies.SYMBOL`` (``cash_buffer_usd``,
        ``cash_buffer_reachable``, ``cash_buffer_searched_up_to_usd``).

    Returns
    -------
    dict
        ``verdict``, ``reason``, ``tolerance`` (numbers and ``source``: "spec" or "default"),
        ``checks`` (key, label, value, limit, unit, confidence, horizon_days, status),
        ``worst_scenario`` (or None), ``remedy`` (``action``, ``usd``; None on a pass). A figure
        missing from ``mc`` drops its check and makes the verdict at least "watch"; the reason
        names it.

    Raises
    ------
    ValueError
        Unknown ``kind``, or a ``tolerance`` out of its bounds (pydantic, field named).
    """
    if kind not in ("gold_backed", "gold_cdp"):
        raise ValueError(f"token_verdict: kind must be 'gold_backed' or 'gold_cdp', got {kind!r}")
    tol, source = _tolerance(kind, tolerance)
    conf, upper, lower = tol.confidence, *_q(tol.confidence)
    horizon = _number(mc.get("horizon_days"))
    h_mc = None if horizon is None else int(horizon)
    in_h = f"within {h_mc} days" if h_mc is not None else "over the simulation"
    specs: list[tuple[str, str, Any, float, str, float | None, int | None]] = [
        (
            "backing_shortfall_probability",
            f"Chance the backing falls below 100% of the tokens at any time {in_h}",
            mc.get("p_backing_below_1"),
            tol.max_backing_shortfall_probability,
            "fraction",
            None,
            h_mc,
        )
    ]
    if isinstance(tol, ReserveRiskTolerance):
        h = tol.horizon_days
        specs.append(
            (
                "depeg_depth",
                f"Deepest discount or premium to NAV {in_h} ({conf:.0%} of paths stay within it)",
                mc.get(f"depeg_depth_{upper}_frac"),
                tol.max_depeg_frac,
                "fraction",
                conf,
                h_mc,
            )
        )
        specs.append(
            (
                "liquidity_coverage",
                f"Liquidity coverage (liquid resources over stressed outflows), lowest day within {h} days, "
                f"{conf:.0%} of paths above it",
                mc.get(f"liquidity_coverage_{h}d_{lower}"),
                tol.min_liquidity_coverage,
                "ratio",
                conf,
                h,
            )
        )
        if wave is not None:
            w_conf = _number(wave.get("confidence"))
            w_h = _number(wave.get("wave_horizon_trading_days"))
            share, days = _number(wave.get("wave_share_of_supply")), wave.get("wave_days")
            wave_words = f"{share:.0%} of the supply redeemed within {days} days" if share is not None else "a wave"
            specs.append(
                (
                    "wave_liquidity_coverage",
                    f"Liquidity coverage under a redemption wave ({wave_words})",
                    wave.get("coverage_q"),
                    tol.min_liquidity_coverage,
                    "ratio",
                    w_conf,
                    None if w_h is None else int(w_h),
                )
            )
    else:
        assert isinstance(tol, CdpRiskTolerance)
        specs.append(
            (
                "liquidation_probability",
                f"Chance that some vault is liquidated {in_h}",
                mc.get("p_liquidation"),
                tol.max_liquidation_probability,
                "fraction",
                None,
                h_mc,
            )
        )
        specs.append(
            (
                "bad_debt",
                f"Bad debt at the end of {h_mc} days, share of the day-0 supply ({conf:.0%} of paths below it)",
                mc.get(f"unbacked_frac_of_day0_liabilities_{upper}"),
                tol.max_bad_debt_frac,
                "fraction",
                conf,
                h_mc,
            )
        )
    checks: list[dict[str, Any]] = []
    missing: list[str] = []
    for key, label, raw, limit, unit, c, hd in specs:
        value = _number(raw)
        if value is None:
            missing.append(label[0].lower() + label[1:])
            continue
        checks.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "limit": float(limit),
                "unit": unit,
                "confidence": c,
                "horizon_days": hd,
                "status": check_status(value, float(limit), CHECK_BOUNDS[key], tol.watch_share),
            }
        )
    verdict = worst_status([c["status"] for c in checks] + (["watch"] if missing else []))
    decider = next((c for c in checks if c["status"] == verdict), None)
    if decider is not None and verdict != "pass":
        side = "above the most" if CHECK_BOUNDS[decider["key"]] == "max" else "below the least"
        if verdict == "watch":
            side = "close to the most" if CHECK_BOUNDS[decider["key"]] == "max" else "close to the least"
        reason = (
            f"{decider['label']} is {_words(decider['value'], decider['unit'])}, {side} "
            f"the issuer accepts ({_words(decider['limit'], decider['unit'])})."
        )
    elif missing:
        reason = f"No figure for: {'; '.join(missing)}."
    else:
        reason = "Every check is within the issuer's tolerance."
    if missing and decider is not None and verdict != "pass":
        reason = reason[:-1] + f"; no figure for: {'; '.join(missing)}."
    return {
        "verdict": verdict,
        "reason": reason,
        "tolerance": {**tol.model_dump(), "source": source},
        "checks": checks,
        "worst_scenario": _worst(worst, scenarios),
        "remedy": None if verdict == "pass" else _remedy(kind, checks, mc, remedies),
    }


def _worst(worst: Mapping[str, Any] | None, scenarios: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not worst or worst.get("scenario") is None:
        return None
    key = str(worst["scenario"])
    label = str(((scenarios or {}).get(key) or {}).get("description") or key.replace("_", " "))
    return {"scenario": key, "label": label, "drawdown_frac": _number(worst.get("value"))}


def _remedy(
    kind: str, checks: list[dict[str, Any]], mc: Mapping[str, Any], remedies: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The action for the worst check (the first of the failing ones, else of the watched ones),
    with its USD amount where the run measured one: the liquidity stress test's cash buffer; the
    99% quantile (else the mean) of the bad debt for a backing shortfall or bad debt."""
    for c in sorted(checks, key=lambda c: -STATUS_ORDER.index(c["status"])):
        if c["status"] == "pass":
            continue
        if c["key"] in ("liquidity_coverage", "wave_liquidity_coverage"):
            r = remedies or {}
            usd = _number(r.get("cash_buffer_usd"))
            if r.get("cash_buffer_reachable") and usd:
                return {
                    "action": "Hold a cash buffer in the reserve; the re-run redemption wave then meets the coverage target",
                    "usd": usd,
                }
            if r and not r.get("cash_buffer_reachable"):
                return {
                    "action": "Add gold liquidity or a redemption gate: no cash buffer the run searched meets the target",
                    "usd": None,
                }
            return {"action": "Raise the reserve's liquid assets (see the liquidity stress test)", "usd": None}
        if c["key"] in ("backing_shortfall_probability", "bad_debt"):
            q99, mean = _number(mc.get("bad_debt_usd_q99")), _number(mc.get("expected_bad_debt_usd"))
            usd = q99 if q99 else mean
            who = "a surplus buffer against bad debt" if kind == "gold_cdp" else "the reserve"
            return {
                "action": f"Top up {who} by the shortfall at the end of the horizon "
                f"({'99% quantile' if q99 else 'mean'} across paths)",
                "usd": usd if usd else None,
            }
        if c["key"] == "depeg_depth":
            return {"action": "Review the redemption fee and gate (liquidity stress test, remedies)", "usd": None}
        if c["key"] == "liquidation_probability":
            return {"action": "Raise the vaults' collateral ratios above the liquidation ratio", "usd": None}
    return None
