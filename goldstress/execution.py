"""Where a flow's tasks run: in the run's process, on a local Dask cluster, or on an existing
Dask scheduler (settings ``GOLDSTRESS_DASK_*``), through Prefect's task runners."""

from __future__ import annotations

import collections
import contextvars
import functools
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from goldstress.settings import DaskSettings

_WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
"""Environment of local Dask workers (Dask's default without its malloc trim threshold)."""


_QUIET_CLUSTER = {
    "distributed.admin.tick.interval": "1000ms",
    "distributed.admin.system-monitor.interval": "2000ms",
    "distributed.worker.memory.monitor-interval": "500ms",
}
"""Dask settings of a local cluster whose workers share the run's cores: its event loops'
responsiveness check every second (Dask: 20 ms), the CPU and memory figures of the dashboard
every 2 s (500 ms) and the nannies' memory check every 500 ms (100 ms). An idle cluster of two
workers then cost the run's process 0.009 CPU-s a second instead of 0.035, and each worker
0.0035 instead of 0.0175 (medians, bench/IDLE_CLUSTER.md). Dask's log line of an unresponsive
event loop (``distributed.admin.tick.limit``, 3 s since the last check) then comes for a stall
of 2 to 3 s or more, not 3 s. Source:
distributed.dask.org/en/stable/configuration.html (distributed.yaml)."""


_MALLOPT = ((-3, 64 << 20), (-1, 128 << 20))
"""glibc ``mallopt`` settings of :func:`tune_allocator`: ``M_MMAP_THRESHOLD`` (-3) 64 MiB,
``M_TRIM_THRESHOLD`` (-1) 128 MiB (values of ``<malloc.h>``)."""


@functools.cache
def tune_allocator() -> bool:
    """Make the C allocator of this process keep the memory it frees for reuse: a block of up to
    64 MiB comes from the heap, not a fresh mapping (``M_MMAP_THRESHOLD``), and up to 128 MiB of
    free memory at the heap's top stays mapped (``M_TRIM_THRESHOLD``).

    The token engine allocates and frees arrays of 0.1 to 40 MB for every chunk of paths. Under
    glibc's defaults (a mapping threshold that adapts up to 32 MiB, then trims) many of them are
    mapped afresh, and the kernel faults in and zeroes every page again: a 25,000-path Monte Carlo
    task took 160,000-200,000 page faults and 0.5-0.7 s of system CPU, against 8,000-25,000 and
    0.2 s tuned (docs/platform/scale.md). Process-wide and once per process (cached): call it
    where the engine runs (a task on a Dask worker, the run's own process). The numbers computed
    do not change; the peak memory of a process may grow by up to the trim threshold per
    allocator arena.

    Returns True when both settings took, False where the C library is not glibc (macOS, musl:
    nothing is changed). Raises nothing. Source: mallopt(3),
    man7.org/linux/man-pages/man3/mallopt.3.html."""
    return _mallopt(_MALLOPT)


@functools.cache
def one_allocator_arena() -> bool:
    """Make every thread of this process allocate from the C allocator's main arena
    (``M_ARENA_MAX`` 1) instead of an arena of its own: memory that the threads running tasks
    free stays reusable by the thread that runs the next stage. Without it, each task thread
    keeps what it freed in an arena of its own, and a whole million-path run on two threads
    peaked at its last stage, the task threads' arenas still holding that memory. Call it before
    the process starts threads: a thread that already has an arena keeps it. Once per process
    (cached).

    Returns True when the setting took, False where the C library is not glibc (nothing is
    changed). Raises nothing. Source: mallopt(3), ``M_ARENA_MAX``,
    man7.org/linux/man-pages/man3/mallopt.3.html."""
    return _mallopt(((_M_ARENA_MAX, 1),))


_M_ARENA_MAX = -8
"""``M_ARENA_MAX`` of glibc's ``<malloc.h>``."""


def _mallopt(settings: Sequence[tuple[int, int]]) -> bool:
    """Apply each ``(param, value)`` with glibc's ``mallopt``; True when every one took, False
    (nothing changed) where the C library is not glibc."""
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all([mallopt(param, value) == 1 for param, value in settings])


def task_runner(dask: DaskSettings, preload: Sequence[str] = ()) -> Any:
    """The Prefect task runner for the Monte Carlo tasks of a run.

    - ``dask.address`` set: ``prefect_dask.DaskTaskRunner(address=...)``, an existing scheduler
      (e.g. the one of deploy/k8s); its workers must import goldstress and reach the object store.
    - else ``dask.workers > 0``: a ``DaskTaskRunner`` that starts a ``distributed.LocalCluster``
      of that many worker processes (``threads_per_worker``, ``memory_limit``, HTTP on a free port) for
      the flow run and stops it at the end; the workers start without Dask's default
      ``MALLOC_TRIM_THRESHOLD_`` (it slows the engine by 30%; sets ``distributed.nanny.pre-spawn-environ``
      in this process's Dask config). They are forked from one ``forkserver`` process that imports
      Dask's packages and the modules ``preload`` (dotted names) once, instead of each worker
      importing them afresh (``distributed.worker.multiprocessing-method``; about 3 s of CPU per
      worker for the simulate flow's modules); the forkserver lives as long as this process, and
      workers get the environment variables it started with (at the process's first local
      cluster; settings reach the tasks as their arguments, Prefect's in the task context).
      Dask's statistical profiler of the workers is off (its sampling thread cost 2-4% of the
      workers' CPU; the dashboard's profile page stays empty), and the cluster's periodic
      checks run less often (:data:`_QUIET_CLUSTER`).
    - else: a ``prefect.task_runners.ThreadPoolTaskRunner`` (:func:`process_thread_runner_class`)
      of ``dask.process_threads()`` threads in this process (:func:`results_in_order` runs the
      tasks on them, or, with one thread, in the flow's own thread one after the other). The
      engine's compiled kernels release the GIL (numba ``nogil``), so the threads use as many
      cores with one process's memory.

    Sources: docs.prefect.io/integrations/prefect-dask (``DaskTaskRunner``),
    distributed.dask.org/en/stable/api.html#distributed.LocalCluster. The cluster starts lazily,
    at the first submitted task. Raises nothing itself; a bad address fails at that first task.
    """
    if dask.address or dask.workers > 0:
        from prefect_dask import DaskTaskRunner

        if dask.address:
            return DaskTaskRunner(address=dask.address)
        from dask import config as dask_config

        # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which fixes glibc's mmap
        # threshold: every array over 128 KiB is then mapped and faulted in afresh, and the token
        # engine ran 30% slower (4.6 s against 3.5 s of CPU for 10,000 paths); the thread limits stay
        dask_config.set(
            {
                "distributed.nanny.pre-spawn-environ": dict(_WORKER_ENVIRON),
                "distributed.worker.multiprocessing-method": "forkserver",
                "distributed.worker.profile.enabled": False,
                **_QUIET_CLUSTER,
            }
        )
        _forkserver_preload(preload)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": dask.workers,
                "threads_per_worker": dask.threads_per_worker,
                "processes": True,
                "memory_limit": dask.memory_limit,
                "dashboard_address": ":0",
            },
        )
    return process_thread_runner_class()(max_workers=dask.process_threads())


@functools.cache
def process_thread_runner_class() -> type[Any]:
    """The task runner of the run's own threads: a ``prefect.task_runners.ThreadPoolTaskRunner``
    whose ``threads`` attribute states how many threads it runs (Prefect keeps that number in a
    private attribute). Prefect duplicates a flow's runner for each run as
    ``type(runner)(max_workers=...)`` (``prefect.task_runners``), which keeps the class and its
    count. Built at the first call, so that importing this module does not import Prefect.
    Raises nothing."""
    from prefect.task_runners import ThreadPoolTaskRunner

    class ProcessThreadRunner(ThreadPoolTaskRunner):
        """``ThreadPoolTaskRunner`` of ``max_workers`` threads, kept as ``threads`` (None, Prefect's
        unbounded default, is kept as 0: no threads of its own, :func:`process_threads`)."""

        def __init__(self, max_workers: int | None = None) -> None:
            super().__init__(max_workers=max_workers)
            self.threads = int(max_workers) if max_workers is not None else 0

    return ProcessThreadRunner


def start_forkserver(modules: Sequence[str]) -> None:
    """Start now, in the background, the ``forkserver`` process local Dask workers are forked
    from (:func:`task_runner`), so that its imports of Dask's packages and of ``modules``
    (dotted names; about 3 s of CPU for the simulate flow's) overlap what this process does
    before its first local cluster (the Prefect server's start) instead of delaying the
    cluster. Returns once the server process is launched, not when it has imported. No effect
    when the forkserver already runs; raises what ``multiprocessing`` raises when it cannot
    start one. Source: docs.python.org/3/library/multiprocessing.html (``forkserver``)."""
    from multiprocessing import forkserver

    _forkserver_preload(modules)
    forkserver.ensure_running()


def _forkserver_preload(modules: Sequence[str]) -> None:
    """Add ``modules`` to what the forkserver of Dask's local workers imports before it forks
    them (``multiprocessing.set_forkserver_preload``), after Dask's own list (distributed,
    numpy, pandas, ...), which ``distributed.utils.get_mp_context`` sets once per process, and
    then :mod:`goldstress.compiled_cache` (the compiled functions of those modules loaded from
    numba's cache, which a worker did in its first task: that task took 0.3 to 0.8 s less). Has no
    effect once the forkserver has started (the first local cluster of the process)."""
    import multiprocessing

    from distributed.utils import get_mp_context
    from distributed.versions import optional_packages, required_packages

    get_mp_context()  # Dask sets its preload list first, once; the list here replaces it
    # the forkserver skips a module it cannot import (multiprocessing.forkserver.main)
    wanted = ["distributed", *required_packages, *optional_packages, *modules, "goldstress.compiled_cache"]
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(dict.fromkeys(wanted)))


def load_cached_compiled() -> int:
    """Load into this process, from numba's on-disk cache, every compiled version of the
    ``@njit(cache=True)`` functions of the modules imported so far that the cache holds for
    their current source, this machine and this numba (what a function's first call of each
    signature would load); return how many were loaded. A process forked afterwards (a local
    Dask worker from its forkserver) inherits them and runs the compiled code at its first
    call. Loading the simulate flow's 45 cached versions took 0.5-0.6 s of CPU here, numba's
    target set-up included.

    numba has no public call that lists a function's cached signatures: this reads its cache
    index through numba's internals (``numba.core.caching``: the dispatcher's ``_cache``,
    ``_cache_file._load_index`` and ``_index_key``, numba 0.68), and loads an entry only when its
    key is the one the function's own first call would look up. Raises nothing: when numba's
    internals differ, or an entry cannot be read, the function loads or compiles at its first
    call as it does without this. Source: numba.readthedocs.io/en/stable/developer/caching.html."""
    import sys

    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return 0
    loaded = 0
    seen: set[int] = set()
    for module in list(sys.modules.values()):
        for obj in list(getattr(module, "__dict__", {}).values()):
            if isinstance(obj, Dispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                try:
                    loaded += _load_cached_versions(obj)
                except Exception:  # numba's internals differ: the function loads at its first call
                    continue
    return loaded


def _load_cached_versions(dispatcher: Any) -> int:
    """Load the cached versions of one numba ``dispatcher`` (:func:`load_cached_compiled`)."""
    cache = dispatcher._cache
    if not getattr(cache, "_enabled", False):
        return 0
    codegen = dispatcher.targetctx.codegen()
    loaded = 0
    for key in cache._cache_file._load_index():
        sig = key[0]
        if sig not in dispatcher.overloads and key == cache._index_key(sig, codegen):
            dispatcher.compile(sig)
            loaded += 1
    return loaded


def _dask_runner() -> Any:
    """The current flow run's ``DaskTaskRunner``; None outside a flow run or on another runner."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx is not None else None
    return runner if type(runner).__name__ == "DaskTaskRunner" else None


def _thread_runner() -> Any:
    """The current flow run's runner of :func:`process_thread_runner_class` when it has more
    than one thread; None otherwise (one thread, another runner, outside a flow run)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner: Any = ctx.task_runner if ctx is not None else None
    return runner if isinstance(runner, process_thread_runner_class()) and runner.threads > 1 else None


def process_threads() -> int:
    """The threads of the run's own process that run the current flow run's tasks (its
    runner's from :func:`task_runner`): more than one when tasks run beside the flow's thread;
    0 on a Dask task runner, on a runner of one thread, on a thread runner not made by
    :func:`task_runner` (Prefect's default one has no bound on its threads: its tasks then run
    in the flow's thread one after the other) or outside a flow run."""
    runner = _thread_runner()
    return 0 if runner is None else int(runner.threads)


def local_dask_cluster() -> bool:
    """True when the current flow run's tasks run on a ``distributed.LocalCluster`` (the Dask
    client's ``cluster``): its workers are processes of this machine and share this process's
    file system. False on an existing scheduler by address, on any other runner or outside a
    flow run. Connects the runner's client if it was not yet."""
    runner = _dask_runner()
    if runner is None:
        return False
    from distributed import LocalCluster

    return isinstance(runner.client.cluster, LocalCluster)


def _import_modules(modules: list[str]) -> None:
    """Import ``modules`` (dotted names) in this process."""
    import importlib

    for name in modules:
        importlib.import_module(name)


def start_workers(modules: Sequence[str]) -> Future[list[Any]]:
    """On the current flow run's Dask task runner: connect in a background thread, now (a local
    cluster starts there, not at the first submitted task), and give every worker a plain Dask
    task importing ``modules``, so that the cluster's start and the workers' imports overlap
    the flow's own first steps instead of delaying them. Returns a future of the Dask futures of
    those imports: wait for it (``.result()``, which raises what connecting raised) before the
    flow submits any task, and keep its result until the flow's tasks are submitted (Dask may
    cancel a task whose future is released). Done at once, with ``[]``, on any other runner or
    outside a flow run. Sources: docs.python.org/3/library/contextvars.html (the thread runs in
    a copy of the flow's context), distributed.dask.org/en/stable/api.html (``Client.submit``
    with ``workers=``, ``Client.scheduler_info``)."""
    runner = _dask_runner()
    if runner is None:
        done: Future[list[Any]] = Future()
        done.set_result([])
        return done
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dask-start")
    try:
        return pool.submit(contextvars.copy_context().run, _connect, runner, list(modules))
    finally:
        pool.shutdown(wait=False)


def _connect(runner: Any, modules: list[str]) -> list[Any]:
    """Connect ``runner`` (a ``DaskTaskRunner``) and submit ``modules``' imports to every worker."""
    client = runner.client
    return [
        client.submit(_import_modules, modules, workers=[w], allow_other_workers=False, pure=False)
        for w in client.scheduler_info()["workers"]
    ]


def results_in_order(task: Any, calls: Sequence[tuple[Any, ...]], ahead: int | None = None) -> Iterator[Any]:
    """Results of the Prefect ``task`` called with each argument tuple of ``calls``, in order.

    On the current flow run's Dask task runner, or its ``ThreadPoolTaskRunner`` of more than
    one thread, the first ``ahead`` calls (None: two per worker thread) are queued when this
    function is called, and each result read queues the next call, so results wait in bounded
    number. Queued calls start in the order they were queued, across every call of this
    function in the flow run, as threads come free (on Dask through :class:`Admission`; the
    thread pool's queue is first-in, first-out), so work queued before other work starts first.
    With any other runner, or outside a flow run, each call runs in this thread when its result
    is read. Exceptions of a call propagate when its result is reached."""
    runner = _dask_runner()
    if runner is not None:
        if ahead is None:
            ahead = max(2, 2 * sum(runner.client.nthreads().values()))
        admission = Admission.of(runner)

        def submit(args: tuple[Any, ...]) -> Callable[[], Any]:
            return functools.partial(_admitted_result, admission.submit(task, args))

    else:
        runner = _thread_runner()
        if runner is None:
            return (task(*args) for args in calls)
        if ahead is None:
            ahead = 2 * process_threads()

        def submit(args: tuple[Any, ...]) -> Callable[[], Any]:
            return task.submit(*args).result

    pending = [submit(args) for args in calls[: max(1, ahead)]]
    return _stream(submit, calls, pending)


def _admitted_result(admitted: Future[Any]) -> Any:
    """The result of the Prefect future an :meth:`Admission.submit` future gets."""
    return admitted.result().result()


def _stream(
    submit: Callable[[tuple[Any, ...]], Callable[[], Any]],
    calls: Sequence[tuple[Any, ...]],
    pending: list[Callable[[], Any]],
) -> Iterator[Any]:
    """The results of the ``pending`` calls (each a function waiting for its result) of the
    first ``calls``, then of the rest of ``calls``, each submitted as a result is read."""
    nxt = len(pending)
    while pending:
        out = pending.pop(0)()
        if nxt < len(calls):
            pending.append(submit(calls[nxt]))
            nxt += 1
        yield out
        del out


class Admission:
    """First-in, first-out admission of Prefect task runs to a flow run's Dask task runner: a
    queued call is submitted (``Task.submit``) only while fewer of the calls submitted through
    it are unfinished than the cluster has worker threads, so each task reaches Dask when a
    thread is free for it.

    Dask places a task on a worker when it is submitted, by its estimate of each worker's
    backlog (0.5 s for a task of a kind it has not timed), and moves it later only by work
    stealing: tasks submitted together can wait behind a long one on one worker while the other
    worker is idle, and start out of order (distributed.dask.org/en/stable/scheduling-policies.html).
    Admitted one free thread at a time, the task queued first goes to the worker that came free.
    A worker waits for its next task while this process submits it: 0.2 to 0.3 s a task on this
    machine (docs/platform/scale.md).

    Submissions run in a background thread, in a copy of the context of the thread that queued
    the first call (the flow run's); the thread ends when the queue is empty and the next queued
    call starts another. When the scheduler cannot be asked for its threads (a lost connection,
    a closed client), every queued call gets that error instead of waiting.
    """

    _of: ClassVar[weakref.WeakKeyDictionary[Any, Admission]] = weakref.WeakKeyDictionary()
    _of_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client
        self._cond = threading.Condition()
        self._queued: collections.deque[tuple[Any, tuple[Any, ...], Future[Any]]] = collections.deque()
        self._unfinished = 0
        self._submitting = False

    @classmethod
    def of(cls, runner: Any) -> Admission:
        """The admission of ``runner`` (a ``DaskTaskRunner``; connects it if it was not yet), made
        at its first use and kept as long as its Dask client."""
        client = runner.client
        with cls._of_lock:
            if client not in cls._of:
                cls._of[client] = cls(client)
            return cls._of[client]

    def submit(self, task: Any, args: tuple[Any, ...]) -> Future[Any]:
        """Queue the Prefect ``task`` called with ``args``. Returns a future that gets the task
        run's Prefect future (a ``PrefectDaskFuture``) once submitted, or the exception
        ``Task.submit`` raised (e.g. ``TypeError`` for arguments that do not bind)."""
        admitted: Future[Any] = Future()
        with self._cond:
            self._queued.append((task, args, admitted))
            start, self._submitting = not self._submitting, True
            self._cond.notify()
        if start:
            submitter = threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._submit_queued,),
                name="goldstress-admission",
                daemon=True,
            )
            submitter.start()
        return admitted

    def _finished(self, _: Any) -> None:
        """Dask's callback of a submitted task's future: it finished (done, failed or cancelled)."""
        with self._cond:
            self._unfinished -= 1
            self._cond.notify()

    def _submit_queued(self) -> None:
        """Submit queued calls in order as threads come free; return when the queue is empty. When
        the scheduler cannot be asked for its threads, every queued call gets that error."""
        try:
            self._admit()
        except BaseException as exc:  # e.g. the scheduler's connection lost: fail the queue, not hang it
            with self._cond:
                failed, self._queued = self._queued, collections.deque()
                self._submitting = False
            for _, _, admitted in failed:
                admitted.set_exception(exc)

    def _admit(self) -> None:
        while True:
            threads = max(1, sum(self._client.nthreads().values()))  # a scheduler's workers may come and go
            with self._cond:
                if not self._queued:
                    self._submitting = False
                    return
                while self._unfinished >= threads and self._client.status not in ("closing", "closed"):
                    self._cond.wait(timeout=1.0)
                task, args, admitted = self._queued.popleft()
                self._unfinished += 1
            try:
                future = task.submit(*args)
            except BaseException as exc:  # the caller gets it from the future it holds
                self._finished(None)
                admitted.set_exception(exc)
                continue
            future.wrapped_future.add_done_callback(self._finished)
            admitted.set_result(future)
