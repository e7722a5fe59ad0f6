"""A test script run in a fresh interpreter, for what is set once per process (the forkserver of
Dask's local workers, the C allocator's settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def last_json_line(script: Path, *args: str, timeout: float) -> Any:
    """Run ``script`` (with command-line ``args``) with this interpreter from the project root (the
    project first on ``PYTHONPATH``) and return the last line of its standard output parsed as JSON. Raises
    ``subprocess.CalledProcessError`` when it exits non-zero, ``subprocess.TimeoutExpired`` past
    ``timeout`` seconds."""
    out = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
