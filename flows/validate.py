"""Flow ``validate``: gate each raw snapshot with the Great Expectations suites.

Every dataset is validated (so one report covers all of them); if any fails, the flow fails after
writing the reports, and no curated table of a failed dataset is replaced.
"""

from __future__ import annotations

from prefect import flow

from goldstress.io.snapshots import SnapshotRef
from goldstress.settings import RunOptions
from tasks.curate import latest_snapshots, raise_if_failed, validate_and_promote


@flow(name="validate")
def validate(snapshots: list[dict] | None = None, options: RunOptions = RunOptions()) -> list[dict]:
    """Validate the given snapshots (default: the latest snapshot of each dataset) and promote
    the ones that pass to curated Parquet. Raises ``ValidationFailed`` listing the failures."""
    settings = options.settings()
    refs = [SnapshotRef.model_validate(s) for s in snapshots] if snapshots else latest_snapshots(settings)
    states = [validate_and_promote(ref, settings, return_state=True) for ref in refs]
    return raise_if_failed(states)
