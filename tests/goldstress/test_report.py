"""The report (goldstress/report.py): the reverse stress boundary figure draws the summary's rows; the
champion section shows the windows, the validation scores, the hold-out backtest and both fits."""

from __future__ import annotations

from goldstress.report import champion_backtest_html, reverse_stress_boundary_figure


def _summary(rows_by_token):
    return {
        "tokens": {
            sym: ({"reverse_stress_boundary": {"horizon_days": 30, "rows": rows}} if rows else {})
            for sym, rows in rows_by_token.items()
        }
    }


def test_boundary_figure_draws_each_share_at_its_failing_fall():
    rows = [
        {"redemption_share": 0.0, "gold_drop_frac": None, "fails_without_drop": False},
        {"redemption_share": 0.2, "gold_drop_frac": 0.35, "fails_without_drop": False},
        {"redemption_share": 0.5, "gold_drop_frac": 0.0, "fails_without_drop": True},
    ]
    fig = reverse_stress_boundary_figure(_summary({"XAUT": rows, "GUSD": None}))
    (trace,) = fig.data  # one line per token with a boundary; the CDP has none
    assert trace.name == "XAUT"
    assert list(trace.x) == [0.0, 0.2, 0.5]
    assert list(trace.y) == [0.99, 0.35, 0.0]  # no failure: drawn at the largest fall searched
    assert list(trace.marker.symbol) == ["circle-open", "circle", "square"]
    assert "30 days" in fig.layout.title.text


def test_no_boundary_no_figure():
    assert reverse_stress_boundary_figure(_summary({"GUSD": None})) is None


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
    assert "<td>gjr_t (champion)</td><td>0.002</td><td>yes</td><td>6</td><td>0.7</td>" in page
    assert "<td>garch_t</td><td>0.0021</td>" in page
    # breaches, expected breaches, rate, Kupiec p, Christoffersen p, ..., Basel zone
    assert "<td>99%</td><td>1,000</td><td>13</td><td>10</td><td>1.30%</td><td>0.36</td><td>0.55</td>" in page
    assert "<td>5</td><td>yellow</td>" in page
    assert "<tr><td>alpha</td><td>0.05</td><td>0.06</td></tr>" in page
    assert "<tr><td>beta</td><td>0.93</td><td>0.92</td></tr>" in page
    assert "Backtested fit: 2000-01-04 .. 2022-08-05 (5,700 returns)" in page


def test_champion_section_of_a_run_without_windows_shows_the_backtest_only():
    old = {k: v for k, v in _var_backtest().items() if k in ("holdout", "method")}
    page = champion_backtest_html(old)
    assert "<td>99%</td><td>1,000</td><td>13</td>" in page
    assert page.count("(none)") == 2  # no selection table, no parameter table
