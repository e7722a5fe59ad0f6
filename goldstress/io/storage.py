"""Object storage through fsspec: local folders and ``s3://`` (or any fsspec URL) alike.

All goldstress I/O of tables and reports goes through these helpers, so the storage location is
one setting (``store_url`` / ``report_url`` plus ``storage_options``) and never a literal path.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
import pandas as pd

from goldstress.settings import Settings


def filesystem(url: str, settings: Settings) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return ``(filesystem, path)`` for ``url`` with the configured storage options.

    Local paths and ``file://`` URLs ignore ``storage_options`` (they are meant for remote stores).
    """
    protocol = fsspec.utils.get_protocol(url)
    options = {} if protocol in ("file", "local") else dict(settings.storage.storage_options)
    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, path


def write_bytes(url: str, data: bytes, settings: Settings) -> str:
    """Write ``data`` to ``url`` (parents created), returning ``url``."""
    fs, path = filesystem(url, settings)
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(data)
    return url


def read_bytes(url: str, settings: Settings) -> bytes:
    """Read all bytes at ``url``; ``FileNotFoundError`` names the URL when absent."""
    fs, path = filesystem(url, settings)
    if not fs.exists(path):
        raise FileNotFoundError(f"no object at {url}")
    with fs.open(path, "rb") as fh:
        return fh.read()


def write_json(url: str, obj: Any, settings: Settings) -> str:
    """Write ``obj`` as indented UTF-8 JSON to ``url``."""
    return write_bytes(url, json.dumps(obj, indent=2, default=str, allow_nan=False).encode("utf-8"), settings)


def read_json(url: str, settings: Settings) -> Any:
    """Read JSON from ``url``."""
    return json.loads(read_bytes(url, settings))


def write_parquet(df: pd.DataFrame, url: str, settings: Settings) -> str:
    """Write ``df`` as Parquet (pyarrow, zstd) to ``url``."""
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", compression="zstd", index=False)
    return write_bytes(url, buf.getvalue(), settings)


def read_parquet(url: str, settings: Settings) -> pd.DataFrame:
    """Read a Parquet table from ``url``."""
    return pd.read_parquet(io.BytesIO(read_bytes(url, settings)), engine="pyarrow")


def exists(url: str, settings: Settings) -> bool:
    """Whether an object exists at ``url``."""
    fs, path = filesystem(url, settings)
    return fs.exists(path)


def local_path(url: str) -> str | None:
    """The local filesystem path of ``url`` if it is local, else ``None``."""
    if fsspec.utils.get_protocol(url) in ("file", "local"):
        return fsspec.core.url_to_fs(url)[1]
    return None


@contextmanager
def parquet_writer(url: str, settings: Settings) -> Iterator[Callable[[pd.DataFrame], None]]:
    """Stream frames with one schema into one Parquet file at ``url`` (a row group per frame),
    so a large result never has to sit in memory whole. Yields ``write(df)``.

    ``ValueError`` (from pyarrow) when a frame's schema differs from the first one's.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, path = filesystem(url, settings)
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as fh:
        writer: pq.ParquetWriter | None = None

        def write(df: pd.DataFrame) -> None:
            nonlocal writer
            table = pa.Table.from_pandas(df, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(fh, table.schema, compression="zstd")
            writer.write_table(table)

        try:
            yield write
        finally:
            if writer is not None:
                writer.close()
