"""The data catalog: every dataset the pipeline reads or writes, by name, mapped to its URL.

:class:`Catalog` maps names under the two storage roots (``store_url`` and ``report_url``); no
other module spells a storage path.
Storage layout: docs/platform/catalog.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from goldstress.settings import Settings

RUN_FILES = ("manifest.json", "summary.json", "report.html")
"""Files at the top of a run folder."""
MARKER = "published.json"
"""Completion marker of a run, written last (:mod:`goldstress.publish`)."""
WHATIF_FOLDER = "whatif"
"""Folder under ``report_url`` that holds what-if results (never a run id)."""


def join(url: str, *parts: str) -> str:
    """Join URL path segments with ``/`` (works for local paths and object-store URLs)."""
    out = url.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


@dataclass(frozen=True)
class Catalog:
    """URLs of the pipeline's datasets under a store root and a report root (fsspec URLs:
    local paths, ``s3://``, ``memory://``). Methods return URLs; none touches storage."""

    store_url: str
    report_url: str

    @classmethod
    def of(cls, settings: Settings) -> Catalog:
        """The catalog of ``settings.storage``."""
        return cls(store_url=str(settings.storage.store_url), report_url=str(settings.storage.report_url))

    # --- store ----------------------------------------------------------------------------
    def raw_folder(self, source_folder: str) -> str:
        """Folder of the raw snapshots of one source."""
        return join(self.store_url, "raw", source_folder)

    def raw_root(self) -> str:
        """Folder of all raw snapshots."""
        return join(self.store_url, "raw")

    def curated(self, dataset: str) -> str:
        """The last good curated table of ``dataset``."""
        return join(self.store_url, "curated", f"{dataset}.parquet")

    def curated_version(self, dataset: str, stamp: str, sha16: str) -> str:
        """One promoted version of ``dataset`` (kept for history and rollback)."""
        return join(self.store_url, "curated", "history", dataset, f"{stamp}_{sha16}.parquet")

    def curated_history(self, dataset: str) -> str:
        """Folder of the promoted versions of ``dataset`` (see :meth:`curated_version`)."""
        return join(self.store_url, "curated", "history", dataset)

    def quarantine_folder(self, source_folder: str) -> str:
        """Folder of the rejected raw snapshots of one source (moved out of ``raw/``)."""
        return join(self.store_url, "quarantine", source_folder)

    def validation_report(self, stamp: str, dataset: str, name: str) -> str:
        """``report.json`` or ``report.md`` of one validation of ``dataset``."""
        return join(self.store_url, "validation", f"{stamp}_{dataset}", name)

    def calibration(self, name: str) -> str:
        """Parameters of the premium calibration set ``name``."""
        return join(self.store_url, "calibration", f"{name}.json")

    # --- reports --------------------------------------------------------------------------
    def run(self, run_id: str) -> str:
        """Folder of one run."""
        return join(self.report_url, run_id)

    def run_file(self, run_id: str, name: str) -> str:
        """``manifest.json``, ``summary.json`` or ``report.html`` of a run. ``ValueError`` for
        another name."""
        if name not in RUN_FILES:
            raise ValueError(f"name: expected one of {RUN_FILES}, got {name!r}")
        return join(self.report_url, run_id, name)

    def run_marker(self, run_id: str) -> str:
        """``published.json``: the completion marker of a run, written after all its files."""
        return join(self.report_url, run_id, MARKER)

    def results(self, run_id: str) -> str:
        """Folder of a run's per-path result tables."""
        return join(self.report_url, run_id, "results")

    def result(self, run_id: str, scenario: str) -> str:
        """Per-path results of one scenario of a run."""
        return join(self.report_url, run_id, "results", f"{scenario}.parquet")

    def whatif(self, whatif_id: str, name: str) -> str:
        """``request.json`` or ``result.json`` of one what-if."""
        return join(self.report_url, WHATIF_FOLDER, whatif_id, name)
