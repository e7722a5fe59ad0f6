"""``goldstress.io.tracking.require_reachable``: a dead tracking server fails in seconds with one
line naming it; any HTTP answer, or a local store, passes."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from goldstress.io.tracking import TrackingUnavailable, require_reachable
from goldstress.settings import Settings
from tests.conftest import free_port


def _settings(uri: str) -> Settings:
    return Settings(tracking={"tracking_uri": uri})


def test_dead_server_fails_fast_with_one_line() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TrackingUnavailable) as err:
        require_reachable(_settings(f"http://u:secret@127.0.0.1:{port}/"), timeout_s=2.0)
    assert time.monotonic() - started < 10
    msg = str(err.value)
    assert "\n" not in msg and "MLflow" in msg and f"127.0.0.1:{port}" in msg and "secret" not in msg


def test_server_that_answers_passes_and_local_store_is_not_probed(tmp_path) -> None:
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        require_reachable(_settings(f"http://127.0.0.1:{server.server_port}"), timeout_s=2.0)
    finally:
        server.shutdown()
        server.server_close()
    require_reachable(_settings(f"sqlite:///{tmp_path / 'mlflow.db'}"))
