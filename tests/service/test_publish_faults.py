"""A run is listed only when whole: faults injected at each write of a run in turn.

A complete run is written first; then a newer run is written through the pipeline's task
functions (``make_run``) with the storage write patched to fail at its k-th write, for every k
(the result tables, the manifest, the summary, the report and the completion marker):

- crash: the write raises before writing anything;
- disk full: half the bytes land under the file's real name, then ``OSError(ENOSPC)``.

After each, the service's run index (``service.runs.RunIndex``) does not list the new run, the
previous run stays the latest, and its report is still served whole.
"""

from __future__ import annotations

import errno
import io
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from goldstress.io import storage
from goldstress.settings import Settings
from tests.service.conftest import data_settings, fit_test_champion, make_run, merged, write_curated_gold

PREVIOUS = "20260301T000000Z-aaaaaa"
NEW = "20260302T000000Z-bbbbbb"


class Crash(Exception):
    """The process dies at this write (nothing of the file is written)."""


class FaultyStorage:
    """Counts the writes of ``storage.write_bytes`` and ``storage.parquet_writer`` and fails the
    ``fail_at``-th (0-based) as ``mode`` says (``"crash"`` or ``"enospc"``); ``None``: no fault."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, mode: str | None = None, fail_at: int = -1) -> None:
        self.mode, self.fail_at, self.writes = mode, fail_at, []
        real_write_bytes, real_parquet_writer = storage.write_bytes, storage.parquet_writer

        def write_bytes(url: str, data: bytes, settings: Settings) -> str:
            self._fault(url, data, settings)
            return real_write_bytes(url, data, settings)

        @contextmanager
        def parquet_writer(url: str, settings: Settings) -> Iterator[Any]:
            if self.mode is None or len(self.writes) != self.fail_at:
                self.writes.append(url)
                with real_parquet_writer(url, settings) as write:
                    yield write
                return
            tables: list[pa.Table] = []
            yield lambda df: tables.append(
                df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
            )
            buf = io.BytesIO()
            pq.write_table(pa.concat_tables(tables), buf, compression="zstd")
            self._fault(url, buf.getvalue(), settings)

        monkeypatch.setattr(storage, "write_bytes", write_bytes)
        monkeypatch.setattr(storage, "parquet_writer", parquet_writer)

    def _fault(self, url: str, data: bytes, settings: Settings) -> None:
        at = len(self.writes)
        self.writes.append(url)
        if self.mode is None or at != self.fail_at:
            return
        if self.mode == "crash":
            raise Crash(url)
        fs, path = storage.filesystem(url, settings)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, "wb") as fh:  # the worst case: half a file under the real name
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", path)


@pytest.fixture(scope="module")
def fault_base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Storage with curated gold and one complete run (``PREVIOUS``); a small Monte Carlo."""
    from tasks.train import load_gold_returns

    root = tmp_path_factory.mktemp("faults")
    base = data_settings(
        root, monte_carlo={"paths": 100, "horizon_days": 30, "chunk_paths": 100, "fan_chart_paths": 100}
    )
    settings = Settings(**base)
    write_curated_gold(settings)
    returns, meta = load_gold_returns.fn(settings)
    champion = fit_test_champion(returns, meta, version="1")
    make_run(PREVIOUS, settings, champion, returns, meta)
    return {"base": base, "root": root, "returns": returns, "meta": meta, "champion": champion}


def _index(settings: Settings):
    from service.runs import RunIndex

    index = RunIndex(settings)
    index.refresh(force=True)
    return index


def _write_new_run(fault_base: dict[str, Any], settings: Settings) -> None:
    make_run(NEW, settings, fault_base["champion"], fault_base["returns"], fault_base["meta"])


def _settings(fault_base: dict[str, Any], seed: int) -> Settings:
    return Settings(**merged(fault_base["base"], {"monte_carlo": {"seed": seed}}))


def test_every_write_of_a_run_can_fail_without_listing_it(fault_base, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(fault_base, 5)
    reports = Path(settings.storage.report_url)
    counter = FaultyStorage(monkeypatch)
    _write_new_run(fault_base, settings)
    names = [w.rsplit(f"{NEW}/", 1)[-1] for w in counter.writes]
    # every file of a run is among the writes, the marker last
    assert names[-1] == "published.json"
    assert {"manifest.json", "summary.json", "report.html"} <= set(names)
    assert any(n.startswith("results/") for n in names)
    assert [e.run_id for e in _index(settings).entries()] == [NEW, PREVIOUS]
    previous_report = (reports / PREVIOUS / "report.html").read_bytes()

    for mode in ("crash", "enospc"):
        for k, name in enumerate(names):
            shutil.rmtree(reports / NEW, ignore_errors=True)
            FaultyStorage(monkeypatch, mode, k)
            with pytest.raises(Crash if mode == "crash" else OSError):
                _write_new_run(fault_base, settings)
            index = _index(settings)
            assert [e.run_id for e in index.entries()] == [PREVIOUS], (mode, name)
            assert index.get(NEW) is None, (mode, name)
            stream = index.report_stream(PREVIOUS)
            assert stream is not None and b"".join(stream[0]) == previous_report, (mode, name)
            # a disk-full write under staging never leaves a partial file under the real name
            assert not list((reports / NEW).rglob("*.partial")), (mode, name)


def test_a_published_file_cut_short_later_is_not_served(fault_base, tmp_path: Path) -> None:
    """The marker records each file's size: a report cut short after publishing is not served
    (404 rather than a truncated 200), and the run drops out of a fresh listing."""
    from goldstress.publish import published

    settings = _settings(fault_base, 5)
    reports = Path(settings.storage.report_url)
    index = _index(settings)
    assert index.report_stream(PREVIOUS) is not None
    report = reports / PREVIOUS / "report.html"
    whole = report.read_bytes()
    try:
        report.write_bytes(whole[: len(whole) // 2])
        assert index.report_stream(PREVIOUS) is None
        assert published(PREVIOUS, settings) is None
        assert _index(settings).get(PREVIOUS) is None
    finally:
        report.write_bytes(whole)
    assert published(PREVIOUS, settings) is not None


def test_publishing_refuses_a_truncated_file(fault_base) -> None:
    """``publish_run`` reads each file back: a half-written report is refused, no marker."""
    from goldstress.publish import IncompleteRunError, publish_run

    settings = _settings(fault_base, 5)
    run = Path(settings.storage.report_url) / PREVIOUS
    report = run / "report.html"
    whole = report.read_bytes()
    marker = (run / "published.json").read_bytes()
    try:
        (run / "published.json").unlink()
        report.write_bytes(whole[: len(whole) // 2])
        with pytest.raises(IncompleteRunError, match="report.html"):
            publish_run(PREVIOUS, settings)
        assert not (run / "published.json").exists()
    finally:
        report.write_bytes(whole)
        (run / "published.json").write_bytes(marker)


def test_a_run_being_rewritten_drops_out_of_the_listing(fault_base) -> None:
    """Rewriting a published run (analyse again) removes its marker first: the index drops the
    run at its next refresh and lists it again once it is republished."""
    from goldstress.publish import publish_run, unpublish

    settings = _settings(fault_base, 5)
    index = _index(settings)
    assert index.get(PREVIOUS) is not None
    try:
        unpublish(PREVIOUS, settings)
        index.refresh(force=True)
        assert index.get(PREVIOUS) is None and PREVIOUS not in [e.run_id for e in index.entries()]
    finally:
        publish_run(PREVIOUS, settings)
    index.refresh(force=True)
    assert index.get(PREVIOUS) is not None


def test_runs_written_without_a_marker_are_published_after_verification(fault_base, tmp_path: Path) -> None:
    """A copy of the report store whose runs have no marker (written before markers existed): the
    complete run is published and listed again, a run with a cut report stays unlisted with the
    reason, and the published marker describes the files as they are."""
    from goldstress.publish import publish_unlisted, published

    settings = _settings(fault_base, 5)
    src = Path(settings.storage.report_url) / PREVIOUS
    legacy = tmp_path / "reports"
    shutil.copytree(src, legacy / PREVIOUS)
    shutil.copytree(src, legacy / "20200101T000000Z-cutcut")
    for run in legacy.iterdir():
        (run / "published.json").unlink()
    cut = legacy / "20200101T000000Z-cutcut" / "report.html"
    cut.write_bytes(cut.read_bytes()[:1000])
    moved = Settings(**merged(fault_base["base"], {"storage": {"report_url": str(legacy)}}))
    assert list(_index(moved).entries()) == []
    outcome = dict(publish_unlisted(moved))
    assert outcome[PREVIOUS] is None
    assert (
        "report.html" in outcome["20200101T000000Z-cutcut"]
        and "IncompleteRunError" in outcome["20200101T000000Z-cutcut"]
    )
    assert [e.run_id for e in _index(moved).entries()] == [PREVIOUS]
    marker = published(PREVIOUS, moved)
    assert marker is not None
    sizes = {f["name"]: f["size"] for f in marker["files"]}
    assert sizes["report.html"] == (legacy / PREVIOUS / "report.html").stat().st_size
    assert publish_unlisted(moved) == [("20200101T000000Z-cutcut", outcome["20200101T000000Z-cutcut"])]


def test_the_command_line_publishes_unlisted_runs(fault_base, tmp_path: Path) -> None:
    """``goldstress runs publish-unlisted`` in a subprocess: one line per run, exit 0, and the
    run listed afterwards."""
    import os
    import subprocess
    import sys

    settings = _settings(fault_base, 5)
    legacy = tmp_path / "reports"
    shutil.copytree(Path(settings.storage.report_url) / PREVIOUS, legacy / PREVIOUS)
    (legacy / PREVIOUS / "published.json").unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDSTRESS_")}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        GOLDSTRESS_STORE_URL=settings.storage.store_url,
        GOLDSTRESS_REPORT_URL=str(legacy),
    )
    done = subprocess.run(
        [sys.executable, "-m", "goldstress", "runs", "publish-unlisted"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"goldstress: {PREVIOUS}: published"
    assert (legacy / PREVIOUS / "published.json").exists()
