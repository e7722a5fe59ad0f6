"""The report (goldstress/report.py, goldstress/figures.py, goldstress/templates/): the reverse
stress boundary series draws the summary's rows; the champion section shows the windows, the
validation scores, the hold-out backtest and both fits with labels in words; human formats;
escaping; the stale-data rule; the verdict table and its "no verdict" fallback."""

from __future__ import annotations

import math

import pytest

from goldstress.report import (
    champion_backtest_html,
    fmt_date,
    fmt_pct,
    fmt_usd,
    fmt_value,
    render_blocks,
    reverse_stress_boundary_series,
    stale_data,
)


def _summary(rows_by_token):
    return {
        "tokens": {
            sym: ({"reverse_stress_boundary": {"horizon_days": 30, "rows": rows}} if rows else {})
            for sym, rows in rows_by_token.items()
        }
    }


def test_boundary_series_draws_each_share_at_its_failing_fall():
    rows = [
        {"redemption_share": 0.0, "gold_drop_frac": None, "fails_without_drop": False},
        {"redemption_share": 0.2, "gold_drop_frac": 0.35, "fails_without_drop": False},
        {"redemption_share": 0.5, "gold_drop_frac": 0.0, "fails_without_drop": True},
    ]
    (s,) = reverse_stress_boundary_series(_summary({"XAUT": rows, "GUSD": None}))  # the CDP has none
    assert s["symbol"] == "XAUT" and s["horizon_days"] == 30
    assert s["x"] == [0.0, 0.2, 0.5]
    assert s["y"] == [0.99, 0.35, 0.0]  # no failure: drawn at the largest fall searched
    assert s["marker"] == ["open", "filled", "square"]


def test_no_boundary_no_series():
    assert reverse_stress_boundary_series(_summary({"GUSD": None})) == []


@pytest.mark.parametrize(
    ("v", "text"),
    [
        (163_642_758.6, "USD 163.6m"),
        (1_204_000_000.0, "USD 1.2bn"),
        (392_515.7, "USD 392,516"),
        (23.933, "USD 23.93"),
        (-5e6, "-USD 5.0m"),
        (None, "–"),
        ("nan", "–"),
        (math.inf, "–"),
    ],
)
def test_usd_amounts_read_in_words(v, text):
    assert fmt_usd(v) == text


def test_percentages_dates_and_numbers():
    assert fmt_pct(1.0) == "100.0%" and fmt_pct(0.101) == "10.1%" and fmt_pct(0.0008) == "0.08%"
    assert fmt_pct("inf") == "∞" and fmt_pct(None) == "–"
    assert fmt_date("2026-08-17") == "17 Aug 2026"
    assert fmt_date("2026-12-05T18:36:01+00:00") == "5 Dec 2026 18:36 UTC"
    assert fmt_value(1.1621956e-06) == "1.16×10⁻⁶"  # never e-notation
    assert fmt_value(14662) == "14,662" and fmt_value(0.99, "level") == "99%"
    assert fmt_value(2.9554, "ratio") == "2.96" and fmt_value("inf", "ratio") == "∞"


def test_text_is_escaped():
    page = render_blocks([{"kind": "p", "text": "<script>alert(1)</script>", "lead": None, "cls": None}])
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_stale_data_is_flagged_after_the_limit():
    assert stale_data("2026-08-17", "2026-08-24T10:00:00+00:00", 7) is None  # 7 days: not stale
    assert stale_data("2026-08-17", "2026-08-25T10:00:00+00:00", 7) == {"days": 8, "limit": 7, "run_date": "2026-08-25"}


def _var_backtest():
    bt = {
        "n_obs": 1000,
        "n_exceptions": 13,
        "expected_exceptions": 10.0,
        "exception_rate": 0.013,
        "kupiec_p_value": 0.36,
        "christoffersen_p_value": 0.55,
        "quantile_loss": 4e-4,
        "basel_exceptions_last_250d": 5,
        "basel_zone_last_250d": "yellow",
    }
    return {
        "windows": {
            "fit": {"first_date": "2000-01-04", "last_date": "2020-08-07", "n_returns": 5200},
            "validation": {"first_date": "2020-08-10", "last_date": "2022-08-05", "n_returns": 500},
            "holdout": {"first_date": "2022-08-08", "last_date": "2026-08-17", "n_returns": 1000},
        },
        "selection": {
            "window": "validation",
            "rule": "lowest summed quantile loss",
            "champion": "gjr_t",
            "candidates": [
                {
                    "candidate": "garch_t",
                    "score": 2.1e-3,
                    "passes_kupiec": True,
                    "backtests": {"0.99": {"n_exceptions": 7, "kupiec_p_value": 0.4}},
                },
                {
                    "candidate": "gjr_t",
                    "score": 2.0e-3,
                    "passes_kupiec": True,
                    "backtests": {"0.99": {"n_exceptions": 6, "kupiec_p_value": 0.7}},
                },
            ],
        },
        "holdout": {"0.99": bt},
        "parameters": {
            "backtested": {
                "window": {"first_date": "2000-01-04", "last_date": "2022-08-05", "n_returns": 5700},
                "params": {"alpha": 0.05, "beta": 0.93},
            },
            "full_sample": {
                "window": {"first_date": "2000-01-04", "last_date": "2026-08-17", "n_returns": 6700},
                "params": {"alpha": 0.06, "beta": 0.92},
            },
        },
        "method": "backtest method text",
    }


def test_champion_section_shows_windows_scores_backtest_and_both_fits():
    page = champion_backtest_html(_var_backtest())
    assert "2000-01-04 .. 2020-08-07 (5,200 returns)" in page  # fitting window
    assert "2020-08-10 .. 2022-08-05 (500 returns)" in page  # validation
    assert "2022-08-08 .. 2026-08-17 (1,000 returns)" in page  # hold-out
    assert '<td class="l">gjr_t (champion)</td><td>0.002</td><td class="l">yes</td><td>6</td><td>0.7</td>' in page
    assert '<td class="l">garch_t</td><td>0.0021</td>' in page
    # labels in words, never raw keys
    for label in ("Kupiec test p-value", "Basel traffic light (last 250 days)", "Christoffersen independence p-value"):
        assert f"<th>{label}</th>" in page
    assert "kupiec_p_value" not in page and "basel_zone_last_250d" not in page
    # breaches, expected breaches, rate, Kupiec p, Christoffersen p, ..., Basel zone
    assert '<td class="l">99%</td><td>1,000</td><td>13</td><td>10</td><td>1.30%</td><td>0.36</td><td>0.55</td>' in page
    assert '<td>5</td><td class="l"><span class="badge watch">yellow</span></td>' in page  # coloured amber
    assert '<tr><td class="l">alpha</td><td>0.05</td><td>0.06</td></tr>' in page
    assert '<tr><td class="l">beta</td><td>0.93</td><td>0.92</td></tr>' in page
    assert "Backtested fit: 2000-01-04 .. 2022-08-05 (5,700 returns)" in page


def test_champion_section_of_a_run_without_windows_shows_the_backtest_only():
    old = {k: v for k, v in _var_backtest().items() if k in ("holdout", "method")}
    page = champion_backtest_html(old)
    assert '<td class="l">99%</td><td>1,000</td><td>13</td>' in page
    assert page.count("(none)") == 2  # no selection table, no parameter table


def _page_summary(verdicts, data_last_date="2026-08-17", generated_at="2026-08-20T09:00:00+00:00"):
    """A summary with the fields the page reads: tokens with a Monte Carlo figure or two, no
    scenario rows, a backtest without windows."""
    tokens = {}
    for symbol, v in verdicts.items():
        tokens[symbol] = {
            "name": f"{symbol} token",
            "kind": "gold_backed",
            "spec_version": 2,
            "scenarios": {"mc_champion": {"kind": "monte_carlo", "horizon_days": 250, "p_backing_below_1": 0.5}},
            "worst_scenario": {"scenario": "shock_-40pct", "value": 0.41, "window_days": 30},
            "reverse_stress": {},
            **({"verdict": v} if v is not None else {}),
        }
    return {
        "run_id": "20260820T090000Z-abcdef",
        "generated_at": generated_at,
        "data": {
            "data_first_date": "1968-04-01",
            "data_last_date": data_last_date,
            "n_returns": 14_662,
            "data_sha256": "ab" * 32,
            "data_source": "lbma_pm",
        },
        "start_gold_usd_per_oz": 4405.8,
        "champion": {"candidate": "gjr_t", "registered_model": "gold", "version": 3, "innovations": "t"},
        "var_backtest": {"holdout": {}, "method": "m"},
        "monte_carlo": {"mc_paths": 1000, "mc_horizon_days": 250},
        "tokens": tokens,
        "scenario_table": [],
    }


_MANIFEST = {"settings": {"horizons_days": [1, 10, 30], "var_levels": [0.95, 0.99]}, "scenarios": []}


def _verdict(p_backing_below_1, limit=0.01):
    """The verdict record of a token whose only figure near its limit is the backing shortfall."""
    from models.verdict import token_verdict

    mc = {"horizon_days": 250, "p_backing_below_1": p_backing_below_1}
    mc |= {"depeg_depth_q99_frac": 0.0, "liquidity_coverage_30d_q01": 9.0, "bad_debt_usd_q99": 25e6}
    return token_verdict(
        "gold_backed",
        mc,
        {"max_backing_shortfall_probability": limit},
        worst={"scenario": "shock_-40pct", "value": 0.41},
    )


def test_page_opens_with_the_verdicts_coloured_and_a_token_without_verdict_reads_no_verdict():
    from goldstress.report import render_html

    summary = _page_summary({"AAA": _verdict(0.5), "BBB": _verdict(0.009), "CCC": None})
    page = render_html(summary, _MANIFEST, [])
    # the summary table comes first, then the contents, the tokens, validation and the appendix
    order = [
        page.index(s) for s in ('id="verdict-table"', 'id="toc"', 'id="token-AAA"', 'id="validation"', 'id="appendix"')
    ]
    assert order == sorted(order)
    assert '<tr class="row-fail" data-token="AAA" data-verdict="fail">' in page  # 0.5 > 0.01
    assert '<tr class="row-watch" data-token="BBB" data-verdict="watch">' in page  # 0.009 > 0.8 x 0.01
    assert '<tr class="row-none" data-token="CCC" data-verdict="none">' in page and "no verdict" in page
    assert '<span class="badge fail">FAIL</span>' in page and '<span class="badge watch">WATCH</span>' in page
    assert "Top up the reserve" in page and "<b>USD 25.0m</b>" in page  # the remedy in words and USD
    assert "Gold falls 40% at once" in page  # the worst scenario in words
    assert "<script" not in page and "(frac)" not in page and "kupiec_lr" not in page


def test_page_warns_when_the_gold_data_is_stale():
    from goldstress.report import render_html

    fresh = render_html(_page_summary({"AAA": None}), _MANIFEST, [], stale_after_days=7)
    stale = render_html(
        _page_summary({"AAA": None}, generated_at="2026-12-05T18:00:00+00:00"), _MANIFEST, [], stale_after_days=7
    )
    assert 'id="stale-data"' not in fresh
    assert 'id="stale-data"' in stale and "110 days before the run date" in stale
