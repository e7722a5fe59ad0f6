"""Flow ``validate``: gate each raw snapshot with the Great Expectations suites.

Every dataset is validated (so one report covers all of them); if any fails, the flow fails after
writing the reports, and no curated table of a failed dataset is replaced.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from goldstress.io.snapshots import SnapshotRef
from goldstress.settings import RunOptions
from tasks.curate import latest_snapshots, validate_and_promote


@flow(name="validate")
def validate(snapshots: list[dict] | None = None, options: RunOptions = RunOptions()) -> list[dict]:
    """Validate the given snapshots (default: the latest snapshot of each dataset) and promote
    the ones that pass to curated Parquet. Raises ``ValidationFailed`` listing the failures."""
    settings = options.settings()
    refs = [SnapshotRef.model_validate(s) for s in snapshots] if snapshots else latest_snapshots(settings)
    states = [validate_and_promote(ref, settings, return_state=True) for ref in refs]
    return _raise_if_failed(states)


def _raise_if_failed(states: list[Any]) -> list[dict[str, Any]]:
    """Results of the gate task runs; if any failed, re-raise the first failure with a note
    listing every failed dataset (all datasets are validated before the run stops)."""
    failures = [s for s in states if s.is_failed() or s.is_crashed()]
    if failures:
        errors = [s.result(raise_on_failure=False) for s in failures]
        first = next((e for e in errors if isinstance(e, BaseException)), None)
        if first is None:
            raise RuntimeError(f"{len(failures)} validation task(s) failed")
        if len(errors) > 1:
            first.add_note("other failed datasets: " + "; ".join(str(e).splitlines()[0] for e in errors[1:]))
        raise first
    return [s.result() for s in states]
