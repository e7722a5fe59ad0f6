"""The layer contract (import-linter, ``pyproject.toml``) holds on the tree and catches the
back-imports the layers forbid: each case plants one import in a copy of the packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("goldstress", "models", "tasks", "flows", "service")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="lint-imports is not installed (make installs it)")


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    out = _lint(_copy_tree(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("models/units.py", "import goldstress.settings", "models.units -> goldstress.settings"),
        ("models/metrics.py", "import tasks.simulate", "models.metrics -> tasks.simulate"),
        ("service/runs.py", "import tasks.simulate", "service.runs -> tasks.simulate"),
        ("tasks/whatif.py", "import service.app", "tasks.whatif -> service.app"),
        ("goldstress/whatif.py", "import tasks.train", "goldstress.whatif -> tasks.train"),
    ],
)
def test_a_back_import_breaks_the_contract(tmp_path: Path, module: str, planted: str, broken: str) -> None:
    tree = _copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{planted}  # planted\n", encoding="utf-8")
    out = _lint(tree)
    assert out.returncode != 0
    assert broken in out.stdout, out.stdout
