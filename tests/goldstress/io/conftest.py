"""Fixtures for the data-acquisition tests: local HTTP source, settings, recorded sleeps, moto S3."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from goldstress.settings import Settings
from tests.goldstress.io.http_fixtures import FakeHTTPSource, free_port, make_settings


@pytest.fixture
def http_source() -> Iterator[FakeHTTPSource]:
    """A started :class:`FakeHTTPSource` on 127.0.0.1 (free port), closed after the test."""
    with FakeHTTPSource() as server:
        yield server


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the connector's backoff waits instead of sleeping (patches ``goldstress.io.sources._sleep``)."""
    import goldstress.io.sources

    waits: list[float] = []
    monkeypatch.setattr(goldstress.io.sources, "_sleep", waits.append)
    return waits


@pytest.fixture
def local_settings(tmp_path) -> Settings:
    """Settings whose store is a fresh local folder."""
    return make_settings(storage={"store_url": str(tmp_path / "store")})


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[dict[str, object]]:
    """moto's ThreadedMotoServer on 127.0.0.1 with one bucket; yields bucket and storage_options.

    Per STACK notes: ``storage_options = {key, secret, endpoint_url}``, no ``region_name`` in
    client_kwargs; the bucket is created with boto3 first.
    """
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"goldstress-data-{uuid.uuid4().hex[:8]}"  # moto state is process-wide
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=bucket)
        yield {
            "bucket": bucket,
            "storage_options": {"key": "testing", "secret": "testing", "endpoint_url": endpoint},
        }
    finally:
        server.stop()


@pytest.fixture
def s3_settings(moto_s3: dict[str, object]) -> Settings:
    """Settings whose store is a fresh prefix in the moto bucket."""
    return make_settings(
        storage={
            "store_url": f"s3://{moto_s3['bucket']}/{uuid.uuid4().hex[:8]}",
            "storage_options": moto_s3["storage_options"],
        }
    )
