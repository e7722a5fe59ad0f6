"""Validation gate tasks: raw snapshot -> raw suite -> standardise -> curated suite -> promote.

Only a snapshot that passes both Great Expectations suites replaces ``curated/<dataset>.parquet``;
a failure writes a readable report (JSON and Markdown, naming each failed expectation and the
offending rows), raises ``ValidationFailed`` and leaves the last good curated table untouched.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from goldstress.io.datagate import DataRejected, check_ohlc, check_truncation
from goldstress.io.layouts import raw_view, standardise
from goldstress.io.snapshots import SnapshotRef, expected_sources, quarantine_snapshot, read_snapshot
from goldstress.io.validation import ValidationFailed, check_frame, gate, known_gaps_for, suite_for
from goldstress.settings import Settings

JSON_LAYOUTS = ("lbma_json", "coingecko_market_chart")


def _origin_name(ref: SnapshotRef) -> str:
    origin = str(ref.origin)
    return origin.rsplit("/", 1)[-1] if "://" not in origin else origin


@task(name="validate-and-promote", cache_policy=NO_CACHE)
def validate_and_promote(
    ref: SnapshotRef, settings: Settings, as_of: str | None = None, max_age_days: int | None = None
) -> dict[str, Any]:
    """Gate one snapshot. Returns ``{"dataset", "curated_url", "rows", "report_url", "dropped"}``.

    Raises ``ValidationFailed`` or ``DataRejected`` (one line naming the file and check) when a
    suite or a gate check fails; the snapshot is then moved to the quarantine folder and the
    curated table is left as it was.
    """
    try:
        return _validate_and_promote(ref, settings, as_of, max_age_days)
    except (ValidationFailed, DataRejected):
        quarantine_snapshot(ref, settings)
        raise


def _validate_and_promote(
    ref: SnapshotRef, settings: Settings, as_of: str | None, max_age_days: int | None
) -> dict[str, Any]:
    data = read_snapshot(ref, settings)
    if ref.layout not in JSON_LAYOUTS:
        check_truncation(data, _origin_name(ref))
        check_ohlc(data, _origin_name(ref))
        view, problem = raw_view(data, ref.layout)
        check_frame(view, "raw_csv", ref.dataset, settings, problem=problem)
    if ref.layout in JSON_LAYOUTS and as_of is None:
        # an online feed must be fresh: its last observation within the configured max age
        as_of = ref.fetched_at.isoformat()
        max_age_days = max_age_days or settings.data.freshness_max_age_days
    result = standardise(data, ref.layout, ref.dataset, _origin_name(ref))
    outcome = gate(
        result.frame,
        suite_for(ref.dataset),
        ref.dataset,
        settings,
        known_gaps=known_gaps_for(_origin_name(ref)),
        as_of=as_of,
        max_age_days=max_age_days,
        origin=_origin_name(ref),
    )
    return {
        "dataset": ref.dataset,
        "snapshot_sha256": ref.sha256,
        "curated_url": outcome.curated_url,
        "report_url": outcome.report_url,
        "rows": int(len(result.frame)),
        "dropped": [dict(x) for x in result.log],
    }


@task(name="latest-snapshots", cache_policy=NO_CACHE)
def latest_snapshots(settings: Settings) -> list[SnapshotRef]:
    """The most recent raw snapshot of each dataset; ``FileNotFoundError`` names a dataset that
    has none (run the ingest flow first)."""
    from goldstress.io.snapshots import list_snapshots

    refs = []
    for dataset, source in expected_sources(settings).items():
        found = list_snapshots(source, settings)
        if not found:
            raise FileNotFoundError(
                f"no raw snapshot of {dataset} (source {source}) under {settings.storage.store_url}: run the ingest flow first"
            )
        refs.append(found[-1])
    return refs
