"""What a Dask worker imports to simulate a champion: not MLflow, not arch; and the pyfunc class
still resolves under the champion module's path."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_the_simulate_and_recommend_tasks_import_neither_mlflow_nor_arch() -> None:
    code = (
        "import sys, tasks.simulate, tasks.recommend, goldstress.io.champion\n"
        "print(sorted(m for m in ('mlflow', 'arch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_the_pyfunc_class_unpickles_under_the_champion_module_path() -> None:
    import goldstress.io.champion as champion
    from goldstress.io.champion_pyfunc import GoldReturnsPyfunc

    assert champion.GoldReturnsPyfunc is GoldReturnsPyfunc
    assert pickle.loads(b"cgoldstress.io.champion\nGoldReturnsPyfunc\n.") is GoldReturnsPyfunc
    with pytest.raises(AttributeError, match="NoSuchName"):
        champion.NoSuchName  # noqa: B018
