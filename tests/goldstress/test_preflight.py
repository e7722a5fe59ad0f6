"""goldstress/preflight.py: settings and token specs checked together before any work, one line
per problem naming the setting or the file and field; the CLI stops with those lines and no
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from goldstress.preflight import check_inputs
from goldstress.settings import PROJECT_ROOT, settings_with

SPECS = PROJECT_ROOT / "specs"


def test_the_default_inputs_have_no_problem():
    assert check_inputs(settings_with()) == []


def test_each_bad_input_is_one_line_naming_the_setting():
    s = settings_with(
        data={"gold_file": "../../../../etc/passwd"},
        storage={"store_url": " "},
        risk={"horizons_days": (0, 10, 400)},
        liquidity={"recommend_redeem_fees": (0.0, -0.5)},
    )
    lines = check_inputs(s)
    assert len(lines) == 5, lines
    assert lines[0].startswith("setting GOLDSTRESS_GOLD_FILE: '../../../../etc/passwd' is a path")
    assert any(x.startswith("setting GOLDSTRESS_STORE_URL: empty") for x in lines)
    assert sum(x.startswith("setting GOLDSTRESS_HORIZONS_DAYS: ") for x in lines) == 2  # 0 and 400, not 10
    assert any("GOLDSTRESS_LIQUIDITY_STRESS_RECOMMEND_REDEEM_FEES: -0.5" in x for x in lines)
    assert all("\n" not in x for x in lines)


def test_token_specs_missing_duplicated_out_of_bounds_or_none(tmp_path: Path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    text = (SPECS / "paxg.toml").read_text()
    a.write_text(text)
    b.write_text(text)  # the same symbol, PAXG, twice
    huge = tmp_path / "huge.toml"
    huge.write_text(text.replace("supply_tokens = 500_000.0", "supply_tokens = 1e308").replace('"PAXG"', '"HUGE"'))
    lines = check_inputs(settings_with(scenarios={"token_specs": (a, b, huge, tmp_path / "none.toml")}))
    assert len(lines) == 3, lines
    assert lines[0] == f"token spec {b}: symbol PAXG is also the symbol of {a}; symbols must differ"
    assert str(huge) in lines[1] and "supply_tokens" in lines[1] and "\n" not in lines[1]
    assert lines[2] == f"token spec {tmp_path / 'none.toml'}: no such file (GOLDSTRESS_TOKEN_SPECS)"
    empty = check_inputs(settings_with(scenarios={"token_specs": ()}))
    assert empty == ["setting GOLDSTRESS_TOKEN_SPECS: empty; give at least one token spec file"]


def _cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_")}
    base.update(
        GOLDSTRESS_STORE_URL=str(tmp_path / "store"),
        GOLDSTRESS_REPORT_URL=str(tmp_path / "reports"),
        GOLDSTRESS_DATA_DIR=str(tmp_path),
        PYTHONPATH=str(PROJECT_ROOT),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "goldstress", "run"], capture_output=True, text=True, env=base, cwd=tmp_path, timeout=120
    )


@pytest.mark.slow
def test_the_cli_stops_before_any_work_with_one_line_per_problem(tmp_path: Path):
    """Two problems at once (a path as the gold file, a horizon beyond the Monte Carlo's), then a
    settings section that does not validate: exit 2, one line each, no traceback, nothing written."""
    out = _cli(tmp_path, GOLDSTRESS_GOLD_FILE="../etc/passwd", GOLDSTRESS_HORIZONS_DAYS="[1, 10, 400]")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and all(x.startswith("goldstress: setting GOLDSTRESS_") for x in lines), out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "store").exists()
    bad = _cli(tmp_path, GOLDSTRESS_MC_PATHS="5")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "goldstress: setting GOLDSTRESS_MC_PATHS: Input should be greater than or equal to 100"
    ]
