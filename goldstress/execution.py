"""Where a flow's tasks run: in the run's process, on a local Dask cluster, or on an existing
Dask scheduler (settings ``GOLDSTRESS_DASK_*``), through Prefect's task runners."""

from __future__ import annotations

from typing import Any

from goldstress.settings import DaskSettings


def task_runner(dask: DaskSettings) -> Any:
    """The Prefect task runner for the Monte Carlo tasks of a run.

    - ``dask.address`` set: ``prefect_dask.DaskTaskRunner(address=...)``, an existing scheduler
      (e.g. the one of deploy/k8s); its workers must import goldstress and reach the object store.
    - else ``dask.workers > 0``: a ``DaskTaskRunner`` that starts a ``distributed.LocalCluster``
      of that many worker processes (``threads_per_worker``, ``memory_limit``, no dashboard) for
      the flow run and stops it at the end.
    - else: ``prefect.task_runners.ThreadPoolTaskRunner(max_workers=1)``: tasks one after the
      other beside the flow, so memory stays that of one task.

    Sources: docs.prefect.io/integrations/prefect-dask (``DaskTaskRunner``),
    distributed.dask.org/en/stable/api.html#distributed.LocalCluster. The cluster starts lazily,
    at the first submitted task. Raises nothing itself; a bad address fails at that first task.
    """
    if dask.address or dask.workers > 0:
        from prefect_dask import DaskTaskRunner

        if dask.address:
            return DaskTaskRunner(address=dask.address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": dask.workers,
                "threads_per_worker": dask.threads_per_worker,
                "processes": True,
                "memory_limit": dask.memory_limit,
                "dashboard_address": None,
            },
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1)
