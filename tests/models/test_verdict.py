"""The token verdict (models/verdict.py) and the spec's risk tolerance (models/token/spec.py):
hand-worked boundaries of pass / watch / fail, the worst check deciding, a missing figure, the
remedy taken from the run's recommendations, and the spec files' tolerances."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from models.token.spec import CdpRiskTolerance, ReserveRiskTolerance, load_token_spec, parse_token_spec
from models.verdict import check_status, token_verdict

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.0, "pass"), (0.08, "pass"), (0.0801, "watch"), (0.1, "watch"), (0.1001, "fail"), (math.inf, "fail")],
)
def test_a_most_limit_watches_above_its_watch_share_and_fails_above_the_limit(value, status):
    # limit 0.1, watch share 0.8: watch above 0.08, fail above 0.1 (the limit itself is not a breach)
    assert check_status(value, 0.1, "max", 0.8) == status


@pytest.mark.parametrize(
    ("value", "status"), [(2.0, "pass"), (1.25, "pass"), (1.2499, "watch"), (1.0, "watch"), (0.9999, "fail")]
)
def test_a_least_limit_watches_when_the_limit_uses_more_than_its_share_of_the_figure(value, status):
    # floor 1.0, watch share 0.8: the limit uses more than 80% of the figure below 1 / 0.8 = 1.25
    assert check_status(value, 1.0, "min", 0.8) == status


def test_check_status_refuses_nan():
    with pytest.raises(ValueError, match="must be numbers"):
        check_status(math.nan, 1.0, "max", 0.8)


def _reserve_mc(**over):
    mc = {
        "horizon_days": 250,
        "p_backing_below_1": 0.0,
        "depeg_depth_q99_frac": 0.02,
        "liquidity_coverage_30d_q01": 3.0,
        "bad_debt_usd_q99": 0.0,
        "expected_bad_debt_usd": 0.0,
    }
    return {**mc, **over}


def test_every_check_inside_its_tolerance_passes_without_remedy():
    v = token_verdict("gold_backed", _reserve_mc(), None)
    assert v["verdict"] == "pass" and v["remedy"] is None
    assert [c["key"] for c in v["checks"]] == ["backing_shortfall_probability", "depeg_depth", "liquidity_coverage"]
    assert v["tolerance"]["source"] == "default"
    assert v["tolerance"]["max_depeg_frac"] == ReserveRiskTolerance().max_depeg_frac


def test_the_worst_check_decides_and_the_reason_names_it():
    # depeg 0.09 of a 0.10 limit (watch); backing shortfall 0.5 of a 0.01 limit (fail)
    v = token_verdict("gold_backed", _reserve_mc(depeg_depth_q99_frac=0.09, p_backing_below_1=0.5), None)
    status = {c["key"]: c["status"] for c in v["checks"]}
    assert status == {"backing_shortfall_probability": "fail", "depeg_depth": "watch", "liquidity_coverage": "pass"}
    assert v["verdict"] == "fail"
    assert "backing falls below 100%" in v["reason"] and "50.0%" in v["reason"] and "1.0%" in v["reason"]


def test_the_spec_tolerance_is_used_and_recorded():
    tol = {"max_depeg_frac": 0.02, "watch_share": 0.5}
    v = token_verdict("gold_backed", _reserve_mc(depeg_depth_q99_frac=0.015), tol)
    (depeg,) = (c for c in v["checks"] if c["key"] == "depeg_depth")
    assert (depeg["limit"], depeg["status"]) == (0.02, "watch")  # 0.015 > 0.5 * 0.02
    assert v["tolerance"]["source"] == "spec" and v["tolerance"]["watch_share"] == 0.5
    assert (depeg["confidence"], depeg["horizon_days"], depeg["unit"]) == (0.99, 250, "fraction")


def test_a_missing_figure_drops_its_check_and_makes_the_verdict_watch():
    mc = _reserve_mc()
    del mc["liquidity_coverage_30d_q01"]
    v = token_verdict("gold_backed", mc, None)
    assert v["verdict"] == "watch"
    assert "liquidity_coverage" not in {c["key"] for c in v["checks"]}
    assert "no figure for" in v["reason"].lower() and "liquidity coverage" in v["reason"]
    # a confidence level the summary holds no quantile for finds no figure either
    v95 = token_verdict("gold_backed", _reserve_mc(), {"confidence": 0.95})
    assert {c["key"] for c in v95["checks"]} == {"backing_shortfall_probability"}
    assert v95["verdict"] == "watch"


def test_a_failing_wave_coverage_takes_the_cash_buffer_as_remedy():
    wave = {"coverage_q": 0.73, "confidence": 0.99, "wave_horizon_trading_days": 30, "wave_share_of_supply": 0.2}
    remedies = {"cash_buffer_usd": 163.1e6, "cash_buffer_reachable": True}
    v = token_verdict("gold_backed", _reserve_mc(), None, wave=wave, remedies=remedies)
    (w,) = (c for c in v["checks"] if c["key"] == "wave_liquidity_coverage")
    assert (w["status"], w["limit"], w["horizon_days"]) == ("fail", 1.0, 30)
    assert v["verdict"] == "fail" and v["remedy"]["usd"] == 163.1e6
    unreachable = {"cash_buffer_usd": 2e9, "cash_buffer_reachable": False}
    v2 = token_verdict("gold_backed", _reserve_mc(), None, wave=wave, remedies=unreachable)
    assert v2["remedy"]["usd"] is None and "gate" in v2["remedy"]["action"]


def test_a_backing_shortfall_is_remedied_by_the_q99_shortfall():
    v = token_verdict("gold_backed", _reserve_mc(p_backing_below_1=1.0, bad_debt_usd_q99=392_515.7), None)
    assert v["remedy"]["usd"] == 392_515.7 and "99% quantile" in v["remedy"]["action"]


def test_cdp_checks_liquidation_and_bad_debt():
    mc = {
        "horizon_days": 250,
        "p_backing_below_1": 0.0008,
        "p_liquidation": 0.45,
        "unbacked_frac_of_day0_liabilities_q99": 0.0,
        "expected_bad_debt_usd": 5_008.6,
        "bad_debt_usd_q99": 0.0,
    }
    v = token_verdict("gold_cdp", mc, None)
    status = {c["key"]: c["status"] for c in v["checks"]}
    # 0.45 of the default 0.5: above 0.8 * 0.5 = 0.4, so watch; 0.0008 of 0.01 passes (< 0.008)
    assert status == {"backing_shortfall_probability": "pass", "liquidation_probability": "watch", "bad_debt": "pass"}
    assert v["verdict"] == "watch" and v["tolerance"]["max_liquidation_probability"] == 0.5
    v2 = token_verdict("gold_cdp", {**mc, "unbacked_frac_of_day0_liabilities_q99": 0.02}, None)
    assert v2["verdict"] == "fail" and v2["remedy"]["usd"] == 5_008.6  # q99 is 0: the mean


def test_worst_scenario_carries_its_description_as_label():
    worst = {"scenario": "shock_-40pct", "value": 0.41}
    scenarios = {"shock_-40pct": {"description": "Instantaneous gold move of -40% on day 1, flat for 30 days"}}
    v = token_verdict("gold_backed", _reserve_mc(), None, worst=worst, scenarios=scenarios)
    assert v["worst_scenario"] == {
        "scenario": "shock_-40pct",
        "label": "Instantaneous gold move of -40% on day 1, flat for 30 days",
        "drawdown_frac": 0.41,
    }


def test_unknown_kind_and_bad_tolerance_are_refused():
    with pytest.raises(ValueError, match="kind"):
        token_verdict("other", {}, None)
    with pytest.raises(ValueError, match="watch_share"):
        token_verdict("gold_backed", _reserve_mc(), {"watch_share": 0})


def test_spec_files_state_their_tolerance_and_a_bad_one_names_the_field():
    for path in sorted(SPECS.glob("*.toml")):
        spec = load_token_spec(path)
        assert spec.risk_tolerance is not None, path
        want = CdpRiskTolerance if spec.kind == "gold_cdp" else ReserveRiskTolerance
        assert isinstance(spec.risk_tolerance, want)
    data = tomllib.loads((SPECS / "paxg.toml").read_text(encoding="utf-8"))
    data["risk_tolerance"]["min_liquidity_coverage"] = -1
    with pytest.raises(ValueError, match=r"specs/paxg.toml: field 'risk_tolerance.min_liquidity_coverage'"):
        parse_token_spec(data, where="specs/paxg.toml")
    data["risk_tolerance"] = {"max_liquidation_probability": 0.5}  # a CDP field on a reserve-backed token
    with pytest.raises(ValueError, match="unknown field"):
        parse_token_spec(data, where="specs/paxg.toml")
