"""Command line: ``python -m goldstress run [--stage STAGE] [--data-dir DIR]`` and
``python -m goldstress data history [DATASET]`` / ``data rollback DATASET [VERSION]``.

``make run`` calls ``python -m goldstress run``. Without a data folder the run fetches from the
online sources; if they cannot be reached, or the MLflow tracking server does not answer, it
stops at once with one line saying which and what to pass.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from goldstress.settings import RunOptions, Settings
from goldstress.telemetry import switch_off

EPHEMERAL_STARTUP_TIMEOUT_S = "120"
"""A cold ephemeral Prefect server takes ~15 s on 2 cores: Prefect's 20 s default is too close."""

STAGES = ("all", "ingest", "validate", "train", "simulate", "analyse", "calibrate")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="goldstress", description="Stress tests for gold-backed tokens.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the stress test (or one stage of it)")
    run.add_argument("--stage", choices=STAGES, default="all")
    run.add_argument("--data-dir", default=None, help="folder of CSV files (overrides GOLDSTRESS_DATA_DIR)")
    run.add_argument("--run-id", default=None, help="run id for simulate/analyse (default: new / latest)")
    run.add_argument("--no-retrain", action="store_true", help="reuse the registered champion")
    run.add_argument(
        "--allow-shrink",
        action="store_true",
        help="accept a curated table with fewer rows or an earlier last date (data.gate_allow_shrink)",
    )
    data = sub.add_parser("data", help="curated table versions")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    hist = data_sub.add_parser("history", help="list the promoted versions of a dataset (or of all)")
    hist.add_argument("dataset", nargs="?", default=None)
    back = data_sub.add_parser("rollback", help="restore a promoted version as the curated table")
    back.add_argument("dataset")
    back.add_argument("version", nargs="?", default=None, help="default: the one before the current table")
    return p


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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 data rejected, 2 cannot start)."""
    switch_off()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT_S)
    args = _parser().parse_args(argv)
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

    if args.stage in ("all", "train", "simulate", "analyse", "calibrate"):
        from goldstress.io.tracking import TrackingUnavailable, require_reachable

        try:
            require_reachable(settings)
        except TrackingUnavailable as exc:
            print(f"goldstress: {exc}", file=sys.stderr)
            return 2

    from goldstress.io.datagate import DataRejected
    from goldstress.io.validation import ValidationFailed

    try:
        result = _run_stage(args.stage, args, settings)
    except (ValidationFailed, DataRejected) as exc:
        print(f"goldstress: data rejected, nothing downstream ran: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, dict) and "report_html" in result:
        print(f"goldstress: done. report: {result['report_html']}\ngoldstress: summary: {result['summary_json']}")
    return 0


def _run_stage(stage: str, args: argparse.Namespace, settings: Settings) -> object:
    """Run one stage's flow with heartbeats on and the crash automation installed (best effort:
    a server that refuses automations still runs the flow, with a warning)."""
    from goldstress.orchestration import ensure_crash_detection, run_health

    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(_NoTracebackForRejectedData())
    try:
        ensure_crash_detection(settings)
    except Exception as exc:
        logging.getLogger("goldstress").warning("Prefect crash detection not installed: %s", exc)
    with run_health(settings):
        return _run_flow(stage, args, settings)


def _run_flow(stage: str, args: argparse.Namespace, settings: Settings) -> object:
    options = RunOptions(data_dir=str(settings.data.data_dir) if settings.data.data_dir else None)
    if stage == "all":
        from flows.stress_test import stress_test

        return stress_test(options=options, retrain=not args.no_retrain)
    if stage == "ingest":
        from flows.ingest import ingest

        return ingest(options=options)
    if stage == "validate":
        from flows.validate import validate

        return validate(options=options)
    if stage == "train":
        from flows.train import train

        return train(options=options)
    if stage == "simulate":
        from flows.simulate import simulate

        return simulate(run_id=args.run_id, options=options)
    if stage == "calibrate":
        from flows.calibrate import calibrate

        return calibrate(options=options)
    from flows.analyse import analyse

    return analyse(run_id=args.run_id, options=options)
