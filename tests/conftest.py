"""Shared fixtures.

Real-data tests read the historical files through the data setting (``GOLDSTRESS_DATA_DIR``);
they skip, saying why, when it is absent. Nothing from that folder is ever copied into the repo.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from goldstress.telemetry import switch_off

switch_off()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real historical CSVs named by GOLDSTRESS_DATA_DIR; skip when absent."""
    value = os.environ.get("GOLDSTRESS_DATA_DIR")
    if not value:
        pytest.skip("real-data test: set GOLDSTRESS_DATA_DIR (make test DATA=<dir>) to run it")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"real-data test: GOLDSTRESS_DATA_DIR={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def prefect_api():
    """Prefect's own test harness: a real API server subprocess on a temporary database.

    Cold start takes 9-15 s on 2 cores, so the timeout is raised well above the 30 s default.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def free_port() -> int:
    """A loopback TCP port free at the time of the call (bound to port 0, then released), for a
    server the test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
