"""The weekend section of the summary (tasks/weekend.py, tasks/analyse.py, goldstress/report.py)
on small files in the real layouts, written at test time.

Files: broker bars on weekdays 2024-01-05..2024-01-15 with a flagged Sunday bar and a flagged
partial Monday bar (both with absurd prices, so a missed drop would show), and a token file every
calendar day. Expected values are written out from those prices.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from goldstress.records import Summary, json_safe
from goldstress.report import _weekend_html
from goldstress.settings import Settings
from tasks.weekend import measure_weekend

WINDOWS = {"fit_start": "2024-01-01", "fit_end": "2024-06-30", "test_start": "2024-07-01", "test_end": "2024-12-31"}


def _write(d: Path, bars: bool = True, token: bool = True) -> Settings:
    d.mkdir(parents=True, exist_ok=True)
    if bars:
        rows = ["date,open,high,low,close,tick_volume,bar_note"]
        for day in pd.bdate_range("2024-01-05", "2024-01-12"):
            op = 1990.0 if str(day.date()) == "2024-01-08" else 2000.0
            rows.append(f"{day.date()},{op},2010,1980,2000,50000,")
        rows.append("2024-01-07,1.0,1.0,1.0,1.0,10,sunday_open_session")
        rows.append("2024-01-15,9999,9999,9999,9999,10,partial_day_snapshot_close_unreliable")
        (d / "bars.csv").write_text("\n".join(sorted(rows, key=lambda r: r[:10] if r[0] == "2" else "")) + "\n")
    if token:
        closes = {str(x.date()): 2000.0 for x in pd.date_range("2024-01-05", "2024-01-14")}
        closes |= {"2024-01-06": 2010.0, "2024-01-07": 1980.0, "2024-01-14": 2010.0}
        lines = ["date,open_usd,high_usd,low_usd,close_usd"] + [f"{k},{v},{v},{v},{v}" for k, v in closes.items()]
        (d / "tok.csv").write_text("\n".join(lines) + "\n")
    return Settings(
        data={"data_dir": d},
        calibration={"gold_file": "bars.csv", "sets": {"tok": {"token": "tok", "file": "tok.csv", **WINDOWS}}},
    )


def test_measured_section_by_hand(tmp_path):
    out = measure_weekend.fn(_write(tmp_path))
    assert out["status"] == "measured"
    gold, tok = out["gold"], out["tokens"]["tok"]
    # gold: only the weekend of Friday 01-05 (01-12's Monday bar is the flagged partial one)
    assert gold["n_bars_removed_on_import"] == 2
    assert gold["gap_var_es"]["n_weekends"] == 1
    assert gold["gap_var_es"]["var_99"] == pytest.approx(1 - 1990 / 2000)
    assert gold["skipped"] == {"gold_bar_removed_monday": 1}
    # token: 2000 -> 1980 (loss 1%) and 2000 -> 2010 (gain 0.5%); n a = 1.9 -> c = 2: VaR = 1%;
    # ES = (0 + (2 - 1.9) * 0.01) / (2 * 0.05) = 1%
    hw = tok["holder_weekend"]
    assert hw["n_weekends"] == 2
    assert hw["var_95"] == pytest.approx(0.01) and hw["es_95"] == pytest.approx(0.01)
    tr = tok["tracking"]
    assert tr["n_weekends"] == 1
    assert tr["tracking_error_mean"] == pytest.approx(math.log(1980 / 1990))
    assert tr["skipped"] == {"gold_bar_removed_monday": 1}
    prem = tok["premium"]
    assert prem["n_weekends"] == 1
    assert prem["saturday_vs_friday_close"]["mean"] == pytest.approx(2010 / 2000 - 1)
    assert prem["sunday_vs_monday_open"]["mean"] == pytest.approx(1980 / 1990 - 1)
    assert prem["weekday_vs_same_day_close"]["n_days"] == 6  # 01-05, 01-08..01-12
    assert "Friday 24:00 UTC to Sunday 24:00 UTC" in out["units"]["horizon"]
    assert "loss fraction of holder value" in out["units"]["var_es"]


def test_absent_broker_file_keeps_the_token_var_and_says_why(tmp_path):
    out = measure_weekend.fn(_write(tmp_path, bars=False))
    assert out["gold"]["status"] == "not measured" and "bars.csv is not in data_dir" in out["gold"]["note"]
    tok = out["tokens"]["tok"]
    assert tok["holder_weekend"]["n_weekends"] == 2 and "tracking" not in tok
    html = _weekend_html({"weekend": json_safe(out)})
    assert "gold: not measured, bars.csv is not in data_dir" in html


def test_absent_token_file_and_no_data_dir_are_noted(tmp_path):
    out = measure_weekend.fn(_write(tmp_path, token=False))
    assert out["tokens"]["tok"]["status"] == "not measured"
    assert out["gold"]["gap_var_es"]["n_weekends"] == 1
    assert "tok.csv is not in data_dir" in _weekend_html({"weekend": json_safe(out)})
    none = measure_weekend.fn(Settings(data={"data_dir": None}))
    assert none["status"] == "not measured"
    assert "Not measured: data_dir is not set" in _weekend_html({"weekend": json_safe(none)})


def test_gold_file_without_opens_is_a_note_not_a_failure(tmp_path):
    s = _write(tmp_path)
    (tmp_path / "bars.csv").write_text("date,usd_pm\n2024-01-05,2000\n")
    out = measure_weekend.fn(s)
    assert out["gold"]["status"] == "not measured" and "has no bar opens" in out["gold"]["note"]
    assert out["tokens"]["tok"]["holder_weekend"]["n_weekends"] == 2


def test_bad_token_content_is_one_error_naming_the_file(tmp_path):
    s = _write(tmp_path)
    (tmp_path / "tok.csv").write_text("date,open_usd,high_usd,low_usd,close_usd\n2024-01-05,1,1,1,abc\n")
    with pytest.raises(ValueError, match=r"tok\.csv.*close_usd"):
        measure_weekend.fn(s)


def test_summary_carries_the_section_and_the_report_shows_it_with_units(tmp_path):
    section = json_safe(measure_weekend.fn(_write(tmp_path)))
    assert "weekend" in Summary.model_fields
    html = _weekend_html({"weekend": section})
    assert "Weekend gap risk" in html
    assert "loss fraction of holder value" in html and "Friday 24:00 UTC to Sunday 24:00 UTC" in html
    assert "TOK (tok): holder, token Friday to Sunday close" in html and "gold: Friday close to Monday open" in html
    assert "1.00%" in html  # the token's 95% VaR
    assert _weekend_html({}) == ""
