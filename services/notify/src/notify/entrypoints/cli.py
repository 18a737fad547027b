"""Notify's command line.

``python -m notify worker``
    Run the stream worker (agents, delivery thread with the scheduler of digests and
    termly lists, outbox relay) until SIGTERM.
``python -m notify api``
    Serve the HTTP API (staff directory, preferences, GOV.UK Notify receipts) on
    NOTIFY_HOST:NOTIFY_PORT until SIGTERM.
``python -m notify deliver``
    Record the digests and termly lists now due, send every alert that is due from
    the ledger, then exit; a claim left by a process that died mid-send is looked up
    at GOV.UK Notify by reference, or resent with the same Message-ID over SMTP. For
    use when no worker is running, for example after an outage of the mail server.
``python -m notify status``
    Print the ledger's alert counts by status as JSON.

Settings come from the environment (``notify.settings.NotifySettings``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from notify.errors import NotifyError
from notify.settings import NotifySettings
from sendkit.logging import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m notify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run the stream worker until SIGTERM")
    commands.add_parser("api", help="serve the HTTP API until SIGTERM")
    commands.add_parser("deliver", help="send the alerts due now, then exit")
    commands.add_parser("status", help="print alert counts by status as JSON")
    return parser


def _deliver(settings: NotifySettings) -> int:
    from notify.bootstrap import build_runtime

    runtime = build_runtime(settings)
    try:
        scheduled = runtime.scheduler.run()
        runtime.delivery.release_claims()
        report = runtime.delivery.deliver_due()
    finally:
        runtime.db.close()
    answer = {**dataclasses.asdict(report), "scheduled": dataclasses.asdict(scheduled)}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


def _status(settings: NotifySettings) -> int:
    from notify.adapters.sqlite_db import NotifySQLiteDatabase, sqlite_path

    db = NotifySQLiteDatabase(sqlite_path(settings.database_url))
    try:
        with db.transaction() as tx:
            counts = tx.count_by_status()
    finally:
        db.close()
    sys.stdout.write(
        json.dumps({status.value: n for status, n in sorted(counts.items())}) + "\n"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = NotifySettings()
        if args.command == "worker":
            from notify.entrypoints.worker import run_worker

            run_worker(settings)
            return 0
        if args.command == "api":
            from notify.entrypoints.api import main as run_api

            return run_api([])
        configure_logging(
            "notify", log_format=settings.log_format, level=settings.log_level
        )
        if args.command == "deliver":
            return _deliver(settings)
        return _status(settings)
    except (NotifyError, ValidationError) as error:
        sys.stderr.write(f"notify: {error}\n")
        return 2
