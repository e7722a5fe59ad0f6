"""Immutable, content-addressed raw snapshots in the fsspec store (local path or s3://).

Layout (DATA_CONTRACT "Storage"): ``<store_url>/raw/<source folder>/<YYYYMMDDTHHMMSSZ>_<sha256[:16]>.<ext>``
plus the same name + ``.meta.json`` holding ``{"source", "origin", "fetched_at", "sha256",
"bytes", "content_type", "dataset", "layout"}``. A snapshot is never overwritten: writing the same
bytes again for the same source returns the existing snapshot. The data file is written before
its meta file, so a snapshot is listed only once it is complete.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import fsspec
from pydantic import BaseModel, ConfigDict, field_validator

from goldstress.catalog import Catalog
from goldstress.io.datagate import check_size
from goldstress.io.layouts import detect_layout
from goldstress.io.sources import read_data_file
from goldstress.settings import Settings, get_settings

__all__ = [
    "SnapshotIntegrityError",
    "SnapshotRef",
    "list_snapshots",
    "quarantine_snapshot",
    "read_snapshot",
    "source_folder",
    "write_snapshot",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_JSON_LAYOUTS = frozenset({"lbma_json", "coingecko_market_chart"})
_CONTENT_TYPES = {"json": "application/json", "csv": "text/csv"}
META_SUFFIX = ".meta.json"


class SnapshotIntegrityError(ValueError):
    """The bytes read back do not hash to the snapshot's recorded sha256 (tampered or truncated)."""


class SnapshotRef(BaseModel):
    """Pointer to one raw snapshot; JSON-serialisable (``model_dump(mode="json")``) for flows.

    Fields: ``url`` (fsspec URL of the data file), ``meta_url`` (its ``.meta.json``), ``sha256``
    (hex digest of the bytes), ``fetched_at`` (tz-aware UTC datetime), ``source`` (source name
    as given, e.g. ``"lbma_pm_json"``), ``dataset`` (e.g. ``"gold"``, ``"token_paxg"``), ``layout``
    (contract layout name or None when unknown), ``origin`` (URL or file path it came from),
    ``n_bytes`` (size, the meta's ``bytes``), ``content_type``.
    Credentials are never stored here: readers take storage options from Settings.
    """

    model_config = ConfigDict(frozen=True)

    url: str
    meta_url: str
    sha256: str
    fetched_at: datetime
    source: str
    dataset: str
    layout: str | None
    origin: str
    n_bytes: int
    content_type: str

    @field_validator("fetched_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("fetched_at must be timezone-aware (UTC)")
        return v.astimezone(UTC)

    def meta(self) -> dict[str, Any]:
        """The ``.meta.json`` content for this snapshot (contract keys)."""
        return {
            "source": self.source,
            "origin": self.origin,
            "fetched_at": _iso(self.fetched_at),
            "sha256": self.sha256,
            "bytes": self.n_bytes,
            "content_type": self.content_type,
            "dataset": self.dataset,
            "layout": self.layout,
        }


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store(settings: Settings, source_folder: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Filesystem and path of the raw snapshot folder of one source."""
    fs, path = fsspec.core.url_to_fs(Catalog.of(settings).raw_folder(source_folder), **settings.storage.storage_options)
    return fs, path.rstrip("/")


def _fs_for(url: str, settings: Settings) -> tuple[fsspec.AbstractFileSystem, str]:
    """Filesystem for ``url``; the store's storage options apply when the protocol matches."""
    store_proto = urlparse(settings.storage.store_url).scheme if "://" in settings.storage.store_url else "file"
    url_proto = urlparse(url).scheme if "://" in url else "file"
    opts = settings.storage.storage_options if store_proto == url_proto else {}
    return fsspec.core.url_to_fs(url, **opts)


def _ext(layout: str | None, origin: str) -> str:
    if layout in _JSON_LAYOUTS:
        return "json"
    if layout is not None:
        return "csv"
    suffix = PurePosixPath(urlparse(origin).path if "://" in origin else origin).suffix
    suffix = suffix.lstrip(".").lower()
    return suffix if re.fullmatch(r"[a-z0-9]{1,8}", suffix) else "bin"


def _ref_from_meta(meta: dict[str, Any], url: str, meta_url: str) -> SnapshotRef:
    return SnapshotRef(
        url=url,
        meta_url=meta_url,
        sha256=meta["sha256"],
        fetched_at=datetime.strptime(meta["fetched_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
        source=meta["source"],
        dataset=meta["dataset"],
        layout=meta.get("layout"),
        origin=meta["origin"],
        n_bytes=int(meta["bytes"]),
        content_type=meta.get("content_type", "application/octet-stream"),
    )


def source_folder(source: str) -> str:
    """Folder name under ``raw/`` for ``source``.

    A source made only of letters, digits, ``_``, ``-``, ``.`` (not starting or ending with
    ``.``/``_``) is its own folder. Otherwise every run of other characters becomes ``_``, outer
    dots/underscores are dropped and ``-`` + the first 8 hex digits of the source's sha256 are
    appended, so distinct sources never share a folder (``"file:gold.csv"`` ->
    ``"file_gold.csv-<hash8>"``, ``"../x"`` -> ``"x-<hash8>"``) and a source can never leave the
    store or nest folders. The meta file keeps the source string unchanged.

    Raises
    ------
    ValueError
        ``source`` is not a string, is longer than 128 characters, or has no safe character.
    """
    if not isinstance(source, str) or len(source) > 128:
        raise ValueError(f"source: {source!r} must be a string of at most 128 characters")
    folder = _UNSAFE.sub("_", source).strip("._")
    if not folder:
        raise ValueError(f"source: {source!r} has no letter or digit to name a folder with")
    if folder != source:
        folder += "-" + hashlib.sha256(source.encode()).hexdigest()[:8]
    return folder


def write_snapshot(
    data: bytes,
    *,
    source: str,
    origin: str,
    dataset: str,
    layout: str | None,
    settings: Settings,
    fetched_at: datetime | None = None,
) -> SnapshotRef:
    """Store ``data`` as an immutable raw snapshot and return its reference.

    Parameters
    ----------
    data : bytes
        Raw bytes exactly as fetched or read (may be empty or malformed: validation judges it).
    source : str
        Source name, e.g. ``"lbma_pm_json"``, ``"coingecko:pax-gold"``, ``"file:<name>"``; stored
        verbatim in the meta; its folder under ``raw/`` is :func:`source_folder` of it.
    origin : str
        URL or file path the bytes came from (recorded, not read).
    dataset : str
        Target dataset name (``"gold"``, ``"token_<symbol>"``).
    layout : str | None
        Contract layout name (``"lbma_merged"``, ``"lbma_json"``, ...) or None when unknown.
        Decides the extension: ``.json`` for JSON layouts, ``.csv`` for CSV layouts, else the
        origin's suffix (or ``.bin``).
    settings : Settings
        ``store_url`` and ``storage_options`` locate the store.
    fetched_at : datetime | None
        Tz-aware acquisition time; default now (UTC).

    Returns
    -------
    SnapshotRef
        The new snapshot, or the EXISTING one when a snapshot of this source already holds the
        same sha256 (nothing is written then; its meta is returned as stored).

    Raises
    ------
    ValueError
        ``source`` unusable as a folder (see :func:`source_folder`), ``data`` is not bytes,
        or ``fetched_at`` is naive.
    FileExistsError
        The target name is already taken by different content (cannot happen unless the store
        was edited by hand); nothing is overwritten.
    """
    folder_name = source_folder(source)
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"data: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if fetched_at is None:
        fetched_at = datetime.now(UTC)
    elif fetched_at.tzinfo is None:
        raise ValueError("fetched_at: must be timezone-aware (UTC)")
    fetched_at = fetched_at.astimezone(UTC).replace(microsecond=0)  # meta keeps whole seconds
    sha = hashlib.sha256(data).hexdigest()

    existing = [r for r in list_snapshots(source, settings) if r.sha256 == sha]
    if existing:
        return existing[0]

    fs, folder = _store(settings, folder_name)
    ext = _ext(layout, origin)
    name = f"{fetched_at.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}_{sha[:16]}.{ext}"
    path = f"{folder}/{name}"
    meta_path = path + META_SUFFIX
    if fs.exists(path) or fs.exists(meta_path):
        raise FileExistsError(f"snapshot {fs.unstrip_protocol(path)} exists with other content; not overwritten")
    fs.makedirs(folder, exist_ok=True)
    ref = SnapshotRef(
        url=fs.unstrip_protocol(path),
        meta_url=fs.unstrip_protocol(meta_path),
        sha256=sha,
        fetched_at=fetched_at,
        source=source,
        dataset=dataset,
        layout=layout,
        origin=str(origin),
        n_bytes=len(data),
        content_type=_CONTENT_TYPES.get(ext, "application/octet-stream"),
    )
    fs.pipe_file(path, data)
    fs.pipe_file(meta_path, (json.dumps(ref.meta(), indent=2, sort_keys=True) + "\n").encode())
    return ref


def read_snapshot(ref: SnapshotRef | dict[str, Any], settings: Settings | None = None) -> bytes:
    """Read a snapshot's bytes and verify them against its sha256.

    Parameters
    ----------
    ref : SnapshotRef | dict
        The reference (a dict from ``model_dump`` is accepted, as flows may pass JSON).
    settings : Settings | None
        Storage options for the store (default :func:`get_settings`); applied when the
        snapshot URL has the store's protocol.

    Returns
    -------
    bytes
        The snapshot content.

    Raises
    ------
    FileNotFoundError
        The data file is gone (names the URL).
    SnapshotIntegrityError
        The content's sha256 differs from ``ref.sha256`` (names the URL and both digests).
    DataRejected
        The snapshot is larger than ``settings.data.max_file_bytes`` (checked before reading).
    """
    if not isinstance(ref, SnapshotRef):
        ref = SnapshotRef.model_validate(ref)
    settings = settings or get_settings()
    fs, path = _fs_for(ref.url, settings)
    if not fs.exists(path):
        raise FileNotFoundError(f"snapshot missing: {ref.url}")
    check_size(int(fs.size(path)), _origin_file(ref), settings)
    data = fs.cat_file(path)
    got = hashlib.sha256(data).hexdigest()
    if got != ref.sha256:
        raise SnapshotIntegrityError(
            f"snapshot {ref.url} fails its checksum: sha256 {got} != recorded {ref.sha256} "
            "(file changed after it was written)"
        )
    return data


def _origin_file(ref: SnapshotRef) -> str:
    return ref.origin.rsplit("/", 1)[-1] if "://" not in ref.origin else ref.origin


def quarantine_snapshot(ref: SnapshotRef, settings: Settings) -> str:
    """Move a rejected snapshot (data file and meta) out of ``raw/`` into
    ``quarantine/<source folder>/`` (same names), so the raw store holds only accepted inputs.
    Returns the quarantined data file's URL. A snapshot already gone is left alone (its would-be
    URL is returned). Raises ``OSError`` on storage failures."""
    fs, raw_folder = _store(settings, source_folder(ref.source))
    qfs, qfolder = fsspec.core.url_to_fs(
        Catalog.of(settings).quarantine_folder(source_folder(ref.source)), **settings.storage.storage_options
    )
    qfs.makedirs(qfolder, exist_ok=True)
    name = ref.url.rsplit("/", 1)[-1]
    for suffix in ("", META_SUFFIX):
        src = f"{raw_folder}/{name}{suffix}"
        if fs.exists(src):
            qfs.pipe_file(f"{qfolder}/{name}{suffix}", fs.cat_file(src))
            fs.rm_file(src)
    try:
        if fs.isdir(raw_folder) and not fs.ls(raw_folder, detail=False, refresh=True):
            fs.rmdir(raw_folder)
    except OSError:
        pass
    return qfs.unstrip_protocol(f"{qfolder}/{name}")


def list_snapshots(source: str, settings: Settings) -> list[SnapshotRef]:
    """All complete snapshots (those with a meta file) whose meta ``source`` equals ``source``, oldest first.

    Returns
    -------
    list[SnapshotRef]
        Sorted by (fetched_at, url); empty when the source has no snapshot yet.

    Raises
    ------
    ValueError
        ``source`` unusable as a folder (see :func:`source_folder`).
    """
    fs, folder = _store(settings, source_folder(source))
    try:
        names = fs.ls(folder, detail=False, refresh=True) if fs.isdir(folder) else []
    except FileNotFoundError:
        names = []
    refs = []
    for meta_path in sorted(n for n in names if n.endswith(META_SUFFIX)):
        meta = json.loads(fs.cat_file(meta_path))
        if meta.get("source") != source:
            continue  # another source string that maps to the same folder
        data_path = meta_path[: -len(META_SUFFIX)]
        refs.append(_ref_from_meta(meta, fs.unstrip_protocol(data_path), fs.unstrip_protocol(meta_path)))
    return sorted(refs, key=lambda r: (r.fetched_at, r.url))


def _csv_layout(data: bytes) -> str | None:
    """The CSV layout named by the first line of ``data``, or None when it matches none."""
    try:
        header = data.split(b"\n", 1)[0].decode("utf-8").strip().lstrip("\ufeff")
        return detect_layout([h.strip() for h in header.split(",")])
    except (UnicodeDecodeError, ValueError):
        return None


def import_file(path: Path, dataset: str, settings: Settings) -> SnapshotRef:
    """Snapshot a local CSV file for ``dataset`` (layout from its header; None if unknown,
    which validation then reports). Raises ``DataRejected`` (check ``size``) for a file above
    ``settings.data.max_file_bytes`` before reading it: nothing is stored then."""
    data = read_data_file(path, settings)
    return write_snapshot(
        data, source=f"file:{path.name}", origin=str(path), dataset=dataset, layout=_csv_layout(data), settings=settings
    )


def expected_sources(settings: Settings) -> dict[str, str]:
    """Dataset -> snapshot source name that the ingest flow uses under these settings."""
    if settings.data.data_dir is not None:
        out = {"gold": f"file:{settings.data.gold_file}"}
        out.update({f"token_{s}": f"file:{name}" for s, name in settings.data.token_files.items()})
        return out
    out = {"gold": "lbma_pm_json"}
    out.update({f"token_{s}": f"coingecko:{coin}" for s, coin in settings.data.coingecko_ids.items()})
    return out
