"""Raw snapshot store: content addressing, immutability, checksum verification, local and S3.

Expected digests are computed independently with hashlib; names and meta keys come from the
data contract ("Storage").
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import fsspec
import pytest

from goldstress.io.snapshots import (
    SnapshotIntegrityError,
    SnapshotRef,
    list_snapshots,
    read_snapshot,
    write_snapshot,
)

CSV = b"date,usd_pm\n2024-01-02,2064.4\n2024-01-03,2034.25\n"
T0 = datetime(2026, 11, 21, 6, 0, 5, tzinfo=UTC)
META_KEYS = {"source", "origin", "fetched_at", "sha256", "bytes", "content_type", "dataset", "layout"}


def _write(settings, data=CSV, **kw):
    args = {
        "source": "file_gold",
        "origin": "/data/gold_lbma_pm_usd_daily_2023_2026.csv",
        "dataset": "gold",
        "layout": "lbma_pm",
        "fetched_at": T0,
    }
    args.update(kw)
    return write_snapshot(data, settings=settings, **args)


def _files(settings):
    fs, root = fsspec.core.url_to_fs(settings.storage.store_url, **settings.storage.storage_options)
    return sorted(fs.find(root)), fs


def _check_write_and_meta(settings):
    ref = _write(settings)
    sha = hashlib.sha256(CSV).hexdigest()
    assert ref.sha256 == sha
    assert re.search(rf"/raw/file_gold/20261121T060005Z_{sha[:16]}\.csv$", ref.url)
    assert ref.meta_url == ref.url + ".meta.json"
    fs, path = fsspec.core.url_to_fs(ref.meta_url, **settings.storage.storage_options)
    meta = json.loads(fs.cat_file(path))
    assert set(meta) == META_KEYS
    assert meta == {
        "source": "file_gold",
        "origin": "/data/gold_lbma_pm_usd_daily_2023_2026.csv",
        "fetched_at": "2026-11-21T06:00:05Z",
        "sha256": sha,
        "bytes": len(CSV),
        "content_type": "text/csv",
        "dataset": "gold",
        "layout": "lbma_pm",
    }
    assert read_snapshot(ref, settings) == CSV
    return ref


def _check_immutable(settings):
    ref1 = _write(settings)
    files1, fs = _files(settings)
    before = {p: fs.cat_file(p) for p in files1}
    ref2 = _write(settings, fetched_at=T0 + timedelta(hours=1), origin="elsewhere.csv")
    assert ref2 == ref1  # same content -> the existing snapshot, as stored
    files2, _ = _files(settings)
    assert files2 == files1  # no new file
    assert {p: fs.cat_file(p) for p in files2} == before  # nothing rewritten

    other = CSV + b"2024-01-04,2042.8\n"
    ref3 = _write(settings, other, fetched_at=T0 + timedelta(days=1))
    assert ref3.sha256 == hashlib.sha256(other).hexdigest() and ref3.url != ref1.url
    files3, _ = _files(settings)
    assert len(files3) == len(files1) + 2
    assert {p: fs.cat_file(p) for p in files1} == before  # old snapshot untouched
    assert [r.url for r in list_snapshots("file_gold", settings)] == [ref1.url, ref3.url]
    return ref1


def _check_tamper(settings, ref):
    fs, path = fsspec.core.url_to_fs(ref.url, **settings.storage.storage_options)
    fs.pipe_file(path, CSV.replace(b"2064.4", b"2964.4"))
    with pytest.raises(SnapshotIntegrityError, match="fails its checksum") as info:
        read_snapshot(ref, settings)
    assert ref.url in str(info.value) and ref.sha256 in str(info.value)


# -- local ------------------------------------------------------------------------------------
def test_local_write_meta_and_read(local_settings):
    _check_write_and_meta(local_settings)


def test_local_immutable_and_deduplicated(local_settings):
    _check_immutable(local_settings)


def test_local_tampered_snapshot_is_refused(local_settings):
    _check_tamper(local_settings, _write(local_settings))


def test_missing_snapshot_names_url(local_settings):
    ref = _write(local_settings)
    fs, path = fsspec.core.url_to_fs(ref.url)
    fs.rm(path)
    with pytest.raises(FileNotFoundError, match=re.escape(ref.url)):
        read_snapshot(ref, local_settings)


def test_ref_is_json_round_trippable(local_settings):
    ref = _write(local_settings)
    payload = json.loads(json.dumps(ref.model_dump(mode="json")))
    assert SnapshotRef.model_validate(payload) == ref
    assert read_snapshot(payload, local_settings) == CSV  # flows may pass the dict


def test_same_bytes_in_two_sources_are_two_snapshots(local_settings):
    a = _write(local_settings, source="file_gold")
    b = _write(local_settings, source="lbma_pm")
    assert a.sha256 == b.sha256 and a.url != b.url
    assert len(list_snapshots("lbma_pm", local_settings)) == 1


def test_extension_follows_layout(local_settings):
    j = _write(local_settings, b"[]", source="lbma_pm", layout="lbma_json", origin="https://x/gold_pm.json")
    assert j.url.endswith(".json") and j.content_type == "application/json"
    unknown = _write(local_settings, b"\x89PNG\r\n", source="file_odd", layout=None, origin="/d/chart.PNG")
    assert unknown.url.endswith(".png") and unknown.layout is None
    assert unknown.content_type == "application/octet-stream"


def test_list_snapshots_empty_and_ordered(local_settings):
    assert list_snapshots("nothing_here", local_settings) == []
    late = _write(local_settings, b"b", fetched_at=T0 + timedelta(days=2))
    early = _write(local_settings, b"a", fetched_at=T0)
    assert [r.url for r in list_snapshots("file_gold", local_settings)] == [early.url, late.url]


@pytest.mark.parametrize(
    ("source", "folder"),
    [
        ("file:gold_lbma_pm.csv", "file_gold_lbma_pm.csv-"),
        ("coingecko:pax-gold", "coingecko_pax-gold-"),
        ("../../escape", "escape-"),
        ("a/b", "a_b-"),
        ("lbma_pm_json", "lbma_pm_json"),
    ],
)
def test_source_maps_to_one_safe_folder_inside_raw(local_settings, source, folder):
    if folder.endswith("-"):  # changed names carry the source's hash (independent hashlib call)
        folder += hashlib.sha256(source.encode()).hexdigest()[:8]
    ref = _write(local_settings, source=source)
    root = local_settings.storage.store_url
    assert ref.url.startswith(f"file://{root}/raw/{folder}/") and ref.url.count("/raw/") == 1
    assert ref.source == source
    assert list_snapshots(source, local_settings) == [ref]


def test_sources_sharing_a_folder_stay_apart(local_settings):
    a = _write(local_settings, source="file:x.csv")
    b = _write(local_settings, source="file_x.csv")  # same folder, other source
    assert a.url != b.url
    assert list_snapshots("file:x.csv", local_settings) == [a]
    assert list_snapshots("file_x.csv", local_settings) == [b]


@pytest.mark.parametrize("source", ["", "../", ":::", "x" * 129])
def test_unusable_source_name_rejected(local_settings, source):
    with pytest.raises(ValueError, match="source"):
        _write(local_settings, source=source)


def test_naive_fetched_at_rejected(local_settings):
    with pytest.raises(ValueError, match="fetched_at"):
        _write(local_settings, fetched_at=datetime(2026, 1, 1))


# -- S3 (moto) --------------------------------------------------------------------------------
def test_s3_write_meta_read(s3_settings):
    ref = _check_write_and_meta(s3_settings)
    assert ref.url.startswith(f"{s3_settings.storage.store_url}/raw/file_gold/")


def test_s3_immutable_and_tamper(s3_settings):
    ref = _check_immutable(s3_settings)
    _check_tamper(s3_settings, ref)
