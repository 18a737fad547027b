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
``python -m notify schedule [--at 2025-12-17T07:30:00Z]``
    Record the digests and termly SENCO lists due as of ``--at`` (default: now), print
    what was recorded as JSON, and exit; a running worker sends them. Each is recorded
    once, so running it again, or at a time the worker has already covered, adds
    nothing. For catching up after an outage, and for a demo whose clock is not the
    wall clock.
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
from datetime import datetime

from pydantic import ValidationError

from notify.errors import NotifyError
from notify.settings import NotifySettings
from sendkit.events import utcnow
from sendkit.logging import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m notify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run the stream worker until SIGTERM")
    commands.add_parser("api", help="serve the HTTP API until SIGTERM")
    commands.add_parser("deliver", help="send the alerts due now, then exit")
    schedule = commands.add_parser(
        "schedule", help="record the digests and termly lists due, then exit"
    )
    schedule.add_argument(
        "--at",
        type=_moment,
        default=None,
        help="an ISO 8601 time with its offset (default: now)",
    )
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


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time: write 2025-12-17T07:30:00Z"
        ) from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no offset: add Z or +01:00 so the moment is unambiguous"
        )
    return moment


def _schedule(settings: NotifySettings, at: datetime | None) -> int:
    from notify.bootstrap import build_runtime

    moment = at or utcnow()
    runtime = build_runtime(settings, now=lambda: moment)
    try:
        report = runtime.scheduler.run()
    finally:
        runtime.db.close()
    sys.stdout.write(
        json.dumps({"at": moment.isoformat(), **dataclasses.asdict(report)}) + "\n"
    )
    return 0


def _status(settings: NotifySettings) -> int:
    from notify.bootstrap import open_database

    db = open_database(settings.database_url)
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
        if args.command == "schedule":
            return _schedule(settings, args.at)
        return _status(settings)
    except (NotifyError, ValidationError) as error:
        sys.stderr.write(f"notify: {error}\n")
        return 2
