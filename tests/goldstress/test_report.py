"""The reverse stress boundary figure of the report (tasks/report.py) draws the summary's rows."""

from __future__ import annotations

from goldstress.report import reverse_stress_boundary_figure


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
