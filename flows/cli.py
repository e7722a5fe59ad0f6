"""Command line ``goldstress`` (also ``python -m goldstress``): ``run``, ``whatif``, ``report``,
``data history|rollback``. ``make run`` calls ``goldstress run``.

A run prints one line per stage with its wall time and ends with the report and summary
locations; Prefect, MLflow and library logs show from WARNING up unless ``-v``. Without a data
folder the run fetches online; if the sources or the MLflow server cannot be reached it stops
at once with one line saying which and what to pass.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flows.console import ConsoleReporter, quiet_environment, quiet_loggers
from goldstress import progress
from goldstress.settings import MAX_DEFAULT_THREADS, RunOptions, Settings
from goldstress.telemetry import switch_off

EPHEMERAL_STARTUP_TIMEOUT_S = "120"
"""A cold ephemeral Prefect server takes ~15 s on 2 cores: Prefect's 20 s default is too close."""

STAGES = ("all", "ingest", "validate", "train", "simulate", "analyse", "calibrate")
TRACKING_STAGES = ("all", "train", "simulate", "analyse", "calibrate")
"""The stages that read or write the MLflow tracking store."""


def _parser() -> argparse.ArgumentParser:
    from goldstress import __version__

    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show Prefect and library logs"
    )
    p = argparse.ArgumentParser(
        prog="goldstress", description="Stress tests for gold-backed tokens.", parents=[verbose]
    )
    p.add_argument("--version", action="version", version=f"goldstress {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[verbose], help="run the stress test (or one stage of it)")
    run.add_argument("--stage", choices=STAGES, default="all")
    run.add_argument("--data-dir", default=None, help="folder of CSV files (overrides GOLDSTRESS_DATA_DIR)")
    run.add_argument("--run-id", default=None, help="run id for simulate/analyse (default: new / latest)")
    run.add_argument("--no-retrain", action="store_true", help="reuse the registered champion")
    run.add_argument("--paths", type=int, default=None, help="Monte Carlo paths (GOLDSTRESS_MC_PATHS)")
    run.add_argument("--seed", type=int, default=None, help="Monte Carlo seed (GOLDSTRESS_MC_SEED)")
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Monte Carlo on a local Dask cluster of this many worker processes (GOLDSTRESS_DASK_WORKERS; "
        "GOLDSTRESS_DASK_ADDRESS points at an existing scheduler instead)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="without Dask, threads of this process for the Monte Carlo (GOLDSTRESS_DASK_THREADS; "
        f"default: one per CPU core, at most {MAX_DEFAULT_THREADS})",
    )
    run.add_argument(
        "--tokens",
        default=None,
        help="comma-separated token specs: names in specs/ (paxg,xaut) or TOML paths (GOLDSTRESS_TOKEN_SPECS)",
    )
    run.add_argument(
        "--allow-shrink",
        action="store_true",
        help="accept a curated table with fewer rows or an earlier last date (data.gate_allow_shrink)",
    )
    wi = sub.add_parser("whatif", parents=[verbose], help="one what-if on the registered champion, printed as JSON")
    wi.add_argument("--token", required=True, help="symbol of a configured token spec, e.g. PAXG or GUSD")
    wi.add_argument("--shock", type=float, required=True, help="simple gold move, e.g. -0.3 for a 30%% fall")
    wi.add_argument("--shock-days", type=int, default=30, help="days over which the shock unfolds (30)")
    wi.add_argument("--paths", type=int, default=2_000, help="Monte Carlo paths (2000)")
    wi.add_argument("--horizon-days", type=int, default=250, help="Monte Carlo horizon, trading days (250)")
    wi.add_argument("--seed", type=int, default=None, help="Monte Carlo seed (default: GOLDSTRESS_MC_SEED)")
    rep = sub.add_parser("report", parents=[verbose], help="re-render report.html of a run from its summary")
    rep.add_argument("run_id", nargs="?", default=None, help="default: the latest run")
    data = sub.add_parser("data", parents=[verbose], help="curated table versions")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    hist = data_sub.add_parser("history", help="list the promoted versions of a dataset (or of all)")
    hist.add_argument("dataset", nargs="?", default=None)
    back = data_sub.add_parser("rollback", help="restore a promoted version as the curated table")
    back.add_argument("dataset")
    back.add_argument("version", nargs="?", default=None, help="default: the one before the current table")
    runs = sub.add_parser("runs", parents=[verbose], help="published runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    runs_sub.add_parser(
        "publish-unlisted",
        help="verify and publish run folders that have no completion marker (runs written before markers existed)",
    )
    return p


def token_spec_paths(tokens: str) -> list[str]:
    """``--tokens`` as spec file paths: each comma-separated item is a TOML path, or a name
    ``x`` for ``specs/x.toml`` or ``specs/x_*.toml`` (case-insensitive). ``ValueError`` names an item with no file."""
    from goldstress.settings import PROJECT_ROOT

    out = []
    for item in (t.strip() for t in tokens.split(",")):
        if not item:
            continue
        if item.endswith(".toml"):
            found = [Path(item)] if Path(item).is_file() else []
        else:
            name = item.lower()
            found = sorted(
                p
                for p in (PROJECT_ROOT / "specs").glob("*.toml")
                if name in (p.stem.lower(), p.stem.lower().split("_")[0])
            )
        if not found:
            raise ValueError(f"--tokens: {item!r} is neither a spec file nor a name in {PROJECT_ROOT / 'specs'}")
        out.append(str(found[0].resolve()))
    if not out:
        raise ValueError("--tokens: give at least one token spec")
    return out


class _NoTracebackForRejectedData(logging.Filter):
    """Drops the traceback from Prefect's log record of a task or flow stopped by rejected data
    (the CLI prints the one-line reason itself); other failures keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from goldstress.io.datagate import DataRejected
        from goldstress.io.validation import ValidationFailed

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (DataRejected, ValidationFailed)):
            record.exc_info = None
            record.exc_text = None
        return True


def _data_command(args: argparse.Namespace, settings: Settings) -> int:
    """``data history`` / ``data rollback``: prints one line per version; 1 when nothing to do."""
    from goldstress.io.validation import curated_datasets, curated_history, rollback

    if args.data_command == "history":
        datasets = [args.dataset] if args.dataset else curated_datasets(settings)
        if not datasets:
            print("goldstress: no curated versions yet", file=sys.stderr)
            return 1
        for dataset in datasets:
            versions = curated_history(dataset, settings)
            if not versions:
                print(f"goldstress: dataset {dataset!r} has no curated versions", file=sys.stderr)
                return 1
            for v in versions:
                mark = "*" if v.current else " "
                print(f"{mark} {dataset} {v.version} {v.n_bytes} bytes")
        return 0
    try:
        restored = rollback(args.dataset, settings, args.version)
    except LookupError as exc:
        print(f"goldstress: {exc.args[0]}", file=sys.stderr)
        return 1
    print(f"goldstress: {args.dataset} restored to version {restored.version}")
    return 0


def _runs_command(settings: Settings) -> int:
    """``runs publish-unlisted``: one line per run folder without a marker; 1 when one stays
    unlisted."""
    from goldstress.publish import publish_unlisted

    outcome = publish_unlisted(settings)
    if not outcome:
        print("goldstress: every run folder is already published")
    for run_id, reason in outcome:
        print(f"goldstress: {run_id}: " + ("published" if reason is None else f"left unlisted: {reason}"))
    return 1 if any(reason is not None for _, reason in outcome) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 data rejected or nothing found,
    2 cannot start)."""
    switch_off()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT_S)
    args = _parser().parse_args(argv)
    if args.command == "run":
        from goldstress.execution import one_allocator_arena

        one_allocator_arena()  # before any thread starts: the run's threads then share freed memory
    verbose = getattr(args, "verbose", False)
    quiet_environment(verbose)
    if getattr(args, "data_dir", None):
        os.environ["GOLDSTRESS_DATA_DIR"] = os.path.abspath(args.data_dir)
    if getattr(args, "allow_shrink", False):
        os.environ["GOLDSTRESS_GATE_ALLOW_SHRINK"] = "true"

    from goldstress.preflight import InputProblems, require_valid_inputs  # after switch_off: settings read the env

    try:
        settings = require_valid_inputs()
    except InputProblems as exc:
        for line in exc.lines:
            print(f"goldstress: {line}", file=sys.stderr)
        return 2
    if args.command == "data":
        return _data_command(args, settings)
    if args.command == "whatif":
        return _whatif_command(args, settings)
    if args.command == "runs":
        return _runs_command(settings)
    if args.command == "report":
        quiet_loggers(verbose)
        return _report_command(args, settings)
    try:
        options = RunOptions(
            data_dir=str(settings.data.data_dir) if settings.data.data_dir else None,
            paths=args.paths,
            seed=args.seed,
            token_specs=token_spec_paths(args.tokens) if args.tokens else None,
            workers=args.workers,
            threads=args.threads,
        )
    except (ValueError, ValidationError) as exc:
        print(f"goldstress: {_one_line(exc)}", file=sys.stderr)
        return 2
    if args.stage in ("all", "ingest"):
        if settings.data.data_dir is None:
            from goldstress.io.sources import SourceUnavailable, probe_online

            try:
                probe_online(settings)
            except SourceUnavailable as exc:
                print(f"goldstress: {exc}", file=sys.stderr)
                return 2
        elif not settings.data.data_dir.is_dir():
            print(
                f"goldstress: data folder {settings.data.data_dir} does not exist; pass DATA=<dir> with the CSV files",
                file=sys.stderr,
            )
            return 2

    from goldstress.io.storage import StoreUnavailable
    from goldstress.io.storage import require_reachable as require_store

    try:
        require_store(settings)
    except StoreUnavailable as exc:
        print(f"goldstress: {exc}", file=sys.stderr)
        return 2

    if args.stage in TRACKING_STAGES:
        from goldstress.io.tracking import TrackingUnavailable, require_reachable

        try:
            require_reachable(settings)
        except TrackingUnavailable as exc:
            print(f"goldstress: {exc}", file=sys.stderr)
            return 2

    from goldstress.io.datagate import DataRejected
    from goldstress.io.validation import ValidationFailed

    quiet_loggers(verbose)
    try:
        result = _run_stage(args.stage, args, options)
    except (ValidationFailed, DataRejected) as exc:
        print(f"goldstress: data rejected, nothing downstream ran: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.install(None)
    if isinstance(result, dict) and "report_html" in result:
        print(f"goldstress: run {result['run_id']} done")
        print(f"goldstress: report  {result['report_html']}")
        print(f"goldstress: summary {result['summary_json']}")
    return 0


def _one_line(exc: Exception) -> str:
    """The first error of a ``ValidationError`` as ``field: message``; else the message."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg')}"
    return str(exc)


def _run_stage(stage: str, args: argparse.Namespace, options: RunOptions) -> object:
    """Run one stage (or all). Against a Prefect server (``PREFECT_API_URL`` set) the crash
    automation is installed first (best effort: a server that refuses it still runs the flow,
    with a warning) and the runs are tagged and send 30 s heartbeats
    (:func:`goldstress.orchestration.run_health`). The ephemeral server of a run without one gets
    no heartbeats and no automation (it stops with the run, its SQLite store cannot take the
    triggers' writes beside a busy run, and a heartbeat sent as it stops is an error line);
    instead, runs left Running by a killed earlier process of this host are marked Crashed
    first (:func:`goldstress.orchestration.crash_orphans`). A run that will start local Dask
    workers starts their forkserver first (:func:`goldstress.execution.start_forkserver`)."""
    from goldstress.orchestration import (
        crash_orphans,
        ensure_crash_detection,
        no_heartbeats,
        run_health,
        shared_ephemeral_server,
    )

    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(_NoTracebackForRejectedData())
    from prefect.settings import PREFECT_API_URL

    settings = options.settings()
    if stage in ("simulate", "all") and settings.dask.workers > 0 and not settings.dask.address:
        from flows.simulate import WORKER_IMPORTS
        from goldstress.execution import start_forkserver

        start_forkserver(WORKER_IMPORTS)  # its imports overlap the Prefect server's start
    if not PREFECT_API_URL.value():  # the ephemeral server stops with the run: nothing to watch
        if stage in TRACKING_STAGES:
            from prefect.server.api.server import SubprocessASGIServer  # noqa: F401  imported before the thread's imports

            from goldstress.io.tracking import import_store_in_background

            import_store_in_background(settings)  # while the Prefect server starts
        with no_heartbeats():
            try:
                crash_orphans()  # runs an earlier killed process left Running
            except Exception as exc:
                logging.getLogger("goldstress").warning("earlier killed runs not marked Crashed: %s", exc)
            if settings.dask.workers > 0 and not settings.dask.address:
                with shared_ephemeral_server():  # one server for the run and its local Dask workers
                    return _run_flows(stage, args, options)
            return _run_flows(stage, args, options)
    try:
        ensure_crash_detection(settings)
    except Exception as exc:
        logging.getLogger("goldstress").warning("Prefect crash detection not installed: %s", exc)
    with run_health(settings):
        return _run_flows(stage, args, options)


def _run_flows(stage: str, args: argparse.Namespace, options: RunOptions) -> object:
    from flows.stress_test import STAGES as RUN_STAGES
    from flows.stress_test import stress_test
    from goldstress.settings import new_run_id

    if stage == "all":
        progress.install(ConsoleReporter(total=len(RUN_STAGES)))
        return stress_test(options=options, retrain=not args.no_retrain, run_id=args.run_id or new_run_id())
    progress.install(ConsoleReporter(total=1))
    with progress.stage(stage):
        return _one_stage(stage, args, options)


def _one_stage(stage: str, args: argparse.Namespace, options: RunOptions) -> object:
    """One stage's flow, named ``<stage>-<run id>`` (``--run-id``, else a new id stamped now) and
    tagged ``goldstress`` and with its process (:func:`goldstress.orchestration.process_tag`)
    once it runs."""
    from goldstress.orchestration import RUN_TAG, process_tag, tagging_hook
    from goldstress.settings import new_run_id

    name = f"{stage}-{args.run_id or new_run_id()}"

    def tagged(stage_flow: Any) -> Any:
        return stage_flow.with_options(flow_run_name=name, on_running=[tagging_hook([RUN_TAG, process_tag()])])

    if stage == "ingest":
        from flows.ingest import ingest

        return tagged(ingest)(options=options)
    if stage == "validate":
        from flows.validate import validate

        return tagged(validate)(options=options)
    if stage == "train":
        from flows.train import train

        return tagged(train)(options=options)
    if stage == "simulate":
        from flows.simulate import simulate_for

        return tagged(simulate_for(options))(run_id=args.run_id, options=options)
    if stage == "calibrate":
        from flows.calibrate import calibrate

        return tagged(calibrate)(options=options)
    from flows.analyse import analyse

    return tagged(analyse)(run_id=args.run_id, options=options)


def _whatif_command(args: argparse.Namespace, settings: Settings) -> int:
    """``whatif``: one in-process what-if on the registered champion (the service's computation,
    :func:`goldstress.whatif.compute_whatif`), its result JSON on stdout. 2 for a bad input or
    no model, with one line naming it."""
    import json

    quiet_loggers(getattr(args, "verbose", False))
    from goldstress import whatif as wi

    try:
        req = wi.WhatIfRequest(
            token_preset=args.token,
            shock_frac=args.shock,
            shock_horizon_days=args.shock_days,
            n_paths=args.paths,
            horizon_days=args.horizon_days,
            seed=args.seed,
        )
        spec = wi.resolve_spec(req, wi.load_presets(settings))
        model = wi.load_model(settings)
        result = wi.compute_whatif(req, spec, model, settings)
    except (ValidationError, ValueError, wi.NoModelError) as exc:
        print(f"goldstress: whatif: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


def _report_command(args: argparse.Namespace, settings: Settings) -> int:
    """``report [RUN_ID]``: render ``report.html`` again from the run's ``summary.json`` and
    manifest (:func:`tasks.report.rerender_report`) and print its location; 1 when the run
    (or any run) is not found."""
    from tasks.report import rerender_report

    try:
        url = rerender_report(args.run_id, settings)
    except LookupError as exc:
        print(f"goldstress: report: {exc.args[0]}", file=sys.stderr)
        return 1
    print(f"goldstress: report  {url}")
    return 0
