"""Publishing a run whole: a run is visible only once its completion marker is written.

:func:`publish_run` reads back every file of a run (the top files and the result tables its
manifest lists), checks and hashes them, and writes ``published.json`` last; :func:`published`
answers whether a run's marker exists and its files still have the recorded sizes.
The guarantee: docs/platform/catalog.md.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from goldstress.catalog import RUN_FILES, Catalog, join
from goldstress.io import storage
from goldstress.settings import Settings

_CHUNK = 1 << 20
_PARQUET_MAGIC = b"PAR1"


class IncompleteRunError(RuntimeError):
    """A run's files are missing, truncated or do not match its marker."""


def run_files(run_id: str, settings: Settings) -> list[str]:
    """Names (relative to the run folder) of the files of a run: ``manifest.json``,
    ``summary.json``, ``report.html`` and one ``results/<scenario>.parquet`` per scenario of its
    manifest (none when its settings record ``keep_path_results`` false).
    ``FileNotFoundError`` when the manifest is absent."""
    manifest = storage.read_json(Catalog.of(settings).run_file(run_id, "manifest.json"), settings)
    if not manifest.get("settings", {}).get("keep_path_results", True):
        return list(RUN_FILES)
    results = [f"results/{r['scenario']['name']}.parquet" for r in manifest.get("scenarios", [])]
    return [*RUN_FILES, *results]


def _describe(url: str, name: str, settings: Settings) -> dict[str, Any]:
    fs, path = storage.filesystem(url, settings)
    fs.invalidate_cache(path)
    digest, size, head, tail = hashlib.sha256(), 0, b"", b""
    with fs.open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            if not head:
                head = block[:4]
            tail = (tail + block)[-64:]
            digest.update(block)
            size += len(block)
    if size != int(fs.size(path)):
        raise IncompleteRunError(f"{url}: read {size} bytes, storage reports {fs.size(path)}")
    if name.endswith(".parquet") and (head != _PARQUET_MAGIC or tail[-4:] != _PARQUET_MAGIC):
        raise IncompleteRunError(f"{url}: not a whole Parquet file")
    if name.endswith(".html") and b"</html>" not in tail:
        raise IncompleteRunError(f"{url}: HTML page without its end")
    if name.endswith(".json"):
        with fs.open(path, "rb") as fh:
            json.loads(fh.read())
    return {"name": name, "size": size, "sha256": digest.hexdigest()}


def unpublish(run_id: str, settings: Settings) -> None:
    """Remove a run's marker (before any of its files is rewritten), so the run is hidden until
    it is published again. Storage errors other than an absent marker propagate."""
    url = Catalog.of(settings).run_marker(run_id)
    fs, path = storage.filesystem(url, settings)
    fs.invalidate_cache(path)
    if fs.exists(path):
        fs.rm(path)


def publish_run(run_id: str, settings: Settings) -> dict[str, Any]:
    """Verify every file of a run and write its marker last; return the marker.

    Each file is read back whole: its size must match what storage reports, Parquet files must
    start and end with their magic bytes, HTML pages must end with ``</html>``, JSON must parse.
    ``IncompleteRunError`` when a file fails; ``FileNotFoundError`` when one is absent; storage
    errors propagate. The run is then not published.
    """
    catalog = Catalog.of(settings)
    folder = catalog.run(run_id)
    files = [_describe(join(folder, name), name, settings) for name in run_files(run_id, settings)]
    marker = {
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    storage.write_json(catalog.run_marker(run_id), marker, settings)
    return marker


def published(run_id: str, settings: Settings) -> dict[str, Any] | None:
    """The marker of a published run whose files all exist with the recorded sizes, else None.

    Storage errors other than absent files propagate (an unreachable store is not "no run").
    """
    catalog = Catalog.of(settings)
    url = catalog.run_marker(run_id)
    fs, path = storage.filesystem(url, settings)
    fs.invalidate_cache(path.rsplit("/", 1)[0])
    try:
        marker = storage.read_json(url, settings)
    except FileNotFoundError:
        return None
    except ValueError:  # unparseable marker: never written whole
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return None
    folder = catalog.run(run_id)
    for f in marker["files"]:
        fpath = storage.filesystem(join(folder, f["name"]), settings)[1]
        try:
            size = int(fs.size(fpath))
        except FileNotFoundError:
            return None
        if size != f["size"]:
            return None
    return marker


def recorded_size(marker: dict[str, Any], name: str) -> int | None:
    """The size recorded in ``marker`` for the file ``name`` of the run, None if not listed."""
    return next((int(f["size"]) for f in marker.get("files", []) if f.get("name") == name), None)


def publish_unlisted(settings: Settings) -> list[tuple[str, str | None]]:
    """Publish every run folder under ``settings.storage.report_url`` that has a manifest but no
    valid marker (runs written by a version without markers, or a run whose publication was
    interrupted after all its files were written). Each run is verified as :func:`publish_run`
    does; a run that fails stays unlisted. Returns ``(run_id, None)`` for each run published and
    ``(run_id, reason)`` (one line) for each left unlisted, in run-id order. Storage errors while
    listing propagate."""
    fs, root = storage.filesystem(settings.storage.report_url, settings)
    if not fs.exists(root):
        return []
    fs.invalidate_cache(root)
    out: list[tuple[str, str | None]] = []
    for path in sorted(fs.ls(root, detail=False)):
        run_id = path.rstrip("/").rsplit("/", 1)[-1]
        if run_id == "whatif" or not fs.exists(f"{path}/manifest.json") or published(run_id, settings):
            continue
        try:
            publish_run(run_id, settings)
        except (IncompleteRunError, FileNotFoundError, ValueError) as exc:
            out.append((run_id, f"{type(exc).__name__}: {exc}"))
        else:
            out.append((run_id, None))
    return out
