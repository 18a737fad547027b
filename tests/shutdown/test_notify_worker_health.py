"""The notify worker as a process: the heartbeat file its exec probe reads, and the
relay lock its relay takes, as every other service's process has.

The worker runs on the session's broker with a consumer group of its own and its own
SQLite ledger; nothing is published to it, so its relay has nothing to send. Once it
is ready the heartbeat file exists and is kept, and the relay lock beside its ledger
is held, so a second worker on that ledger would stand by; after SIGTERM the lock is
free again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.smtp import MailCatcher
from notify.entrypoints.worker import READY_MESSAGE
from send_schemas.topics import NOTIFY
from sendkit.relay_lock import FileRelayLock

from .shutdown_support import Processes, process_env, wait_for

pytestmark = pytest.mark.kafka


def relay_lock_of(ledger: Path) -> FileRelayLock:
    """The lock ``sendkit.relay_lock.relay_lock_for`` gives a SQLite store at
    ``ledger`` for notify's relay (a file beside the database)."""
    name = f"relay:{NOTIFY.name}"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return FileRelayLock(ledger.with_name(f"{ledger.name}.{safe}.lock"), name)


def test_the_notify_worker_keeps_a_heartbeat_and_holds_the_relay_lock(
    kafka_bootstrap: str, tmp_path: Path, processes: Processes, unique_name: object
) -> None:
    assert callable(unique_name)
    ledger = tmp_path / "notify.db"
    heartbeat = tmp_path / "heartbeat"
    directory = tmp_path / "staff.csv"
    directory.write_text(
        "staff_id,name,email,role,manager_id\n"
        "ehcco-91,Synthetic Coordinator,synthetic.c@council.example,coordinator,\n",
        encoding="utf-8",
    )
    with MailCatcher(port=0, maildir=tmp_path / "mail") as catcher:
        env = process_env(
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            NOTIFY_APP_ID=unique_name("notify"),
            NOTIFY_DATABASE_URL=f"sqlite:///{ledger}",
            NOTIFY_DIRECTORY_CSV=directory,
            NOTIFY_SMTP_HOST="127.0.0.1",
            NOTIFY_SMTP_PORT=str(catcher.port),
            NOTIFY_FROM_ADDRESS="send-alerts@council.example",
            NOTIFY_RELAY_ENABLED="true",
            SEND_HEARTBEAT_FILE=heartbeat,
        )
        worker = processes.start(
            ["-m", "notify", "worker"], env, tmp_path / "worker.log"
        )
        wait_for(
            lambda: worker.said(READY_MESSAGE) or worker.popen.poll() is not None,
            "the worker to be ready",
        )
        wait_for(
            lambda: heartbeat.exists() or worker.popen.poll() is not None,
            "the heartbeat file",
        )
        beating = heartbeat.exists()
        second = relay_lock_of(ledger)
        wait_for(
            lambda: worker.said("relay lock") or worker.popen.poll() is not None,
            "the relay to try its lock",
        )
        taken_by_a_second = second.try_acquire()
        second.release()
        code = worker.terminate()
    free_after = relay_lock_of(ledger).try_acquire()

    log = worker.text()
    assert beating, log[-3000:]
    assert "relay lock relay:send.notify.events taken" in log, log[-3000:]
    assert not taken_by_a_second
    assert free_after
    assert code == 0, log[-3000:]
