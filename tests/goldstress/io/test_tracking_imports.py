"""``goldstress.io.tracking.import_store_in_background``: a database tracking URI gets MLflow's
store modules imported in a thread, without opening the store; any other URI gets nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_CODE = """
import sys
from goldstress.io.tracking import _DATABASE_STORE_MODULES, import_store_in_background
from goldstress.settings import Settings
before = [m for m in _DATABASE_STORE_MODULES if m in sys.modules]
thread = import_store_in_background(Settings(tracking={"tracking_uri": sys.argv[1]}))
if thread is not None:
    thread.join(300)
    print("alive" if thread.is_alive() else "done", thread.daemon)
print(before, sorted(m for m in _DATABASE_STORE_MODULES if m in sys.modules))
"""


def _run(uri: str, cwd: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _CODE, uri],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return out.stdout.strip().splitlines()


def test_a_sqlite_uri_gets_the_store_modules_imported_and_the_database_left_alone(tmp_path: Path) -> None:
    from goldstress.io.tracking import _DATABASE_STORE_MODULES

    db = tmp_path / "sub" / "mlflow.db"
    lines = _run(f"sqlite:///{db}", tmp_path)
    assert lines[0] == "done True"
    assert lines[1] == f"[] {sorted(_DATABASE_STORE_MODULES)}"
    assert not db.parent.exists()  # imported, not opened: no folder, no file


def test_an_http_server_gets_no_thread_and_no_imports(tmp_path: Path) -> None:
    assert _run("http://127.0.0.1:1/", tmp_path) == ["[] []"]
