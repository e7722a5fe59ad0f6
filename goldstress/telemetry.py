"""Telemetry switches (Prefect, MLflow, Great Expectations, AWS metadata), all off by default.

The list lives in ``telemetry.env`` beside this module. ``python -m goldstress.telemetry CMD ...``
runs ``CMD`` with them set (the container image's entry point, so that ``prefect server``,
``mlflow server`` and the worker get them too). MLflow accepts only the word ``true`` for
``DO_NOT_TRACK`` (MLflow docs, "Usage tracking").
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

ENV_FILE = Path(__file__).with_name("telemetry.env")


def _read(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


TELEMETRY_OFF: dict[str, str] = _read(ENV_FILE)
"""Environment variable -> value that switches a library's telemetry off."""


def switch_off(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set every switch of :data:`TELEMETRY_OFF` in ``environ`` unless already set."""
    for key, value in TELEMETRY_OFF.items():
        environ.setdefault(key, value)


if __name__ == "__main__":  # pragma: no cover - exec wrapper of the container image
    switch_off()
    if len(sys.argv) < 2:
        sys.exit("usage: python -m goldstress.telemetry COMMAND [ARG ...]")
    os.execvp(sys.argv[1], sys.argv[1:])
