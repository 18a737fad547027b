"""A notify process killed with SIGKILL after recording a send and before GOV.UK
Notify's answer, then restarted: exactly one message, found by its reference.

Both processes are ``python -m notify deliver`` on one SQLite ledger, talking to the
local Notify server through the official client. The first is killed while Notify
holds its answer back (the message exists at Notify, the process never hears of it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_factories import (
    COORDINATOR,
    FakeClock,
    approaching,
    coordinator_assigned,
    new_case,
    seed,
)
from notify_servers import wait_for, wired

from devstack.notify_stub import (
    DEFAULT_API_KEY,
    DEFAULT_EMAIL_TEMPLATE_ID,
    DEFAULT_SMS_TEMPLATE_ID,
    NotifyStub,
)
from devstack.smtp import MailCatcher
from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.ports import AlertRecord
from notify.domain.delivery import AlertStatus
from notify.domain.preferences import ChannelChoice, PreferenceKind, Preferences
from sendkit.events import RecordedEvent

SOURCE = "6b0f1c52-61d4-5e0a-9a43-0c2f8e7d9a11"
"""The id of the clock event whose alert is sent."""

# No quiet hours: the processes run on the real clock, at whatever time the test does.
SMS_ANY_TIME = Preferences(
    channels={PreferenceKind.APPROACHING: ChannelChoice.SMS}, quiet_hours=None
)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


@pytest.fixture
def stub() -> Iterator[NotifyStub]:
    with NotifyStub(deliver_after_s=0.05) as running:
        yield running


def cli_env(tmp_path: Path, catcher: MailCatcher, stub: NotifyStub) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'notify.db'}",
            "NOTIFY_DIRECTORY_CSV": "",
            "NOTIFY_SMTP_HOST": "127.0.0.1",
            "NOTIFY_SMTP_PORT": str(catcher.port),
            "NOTIFY_GOVUK_API_KEY": DEFAULT_API_KEY,
            "NOTIFY_GOVUK_BASE_URL": stub.base_url,
            "NOTIFY_GOVUK_EMAIL_TEMPLATE_ID": DEFAULT_EMAIL_TEMPLATE_ID,
            "NOTIFY_GOVUK_SMS_TEMPLATE_ID": DEFAULT_SMS_TEMPLATE_ID,
            "NOTIFY_GOVUK_TIMEOUT_SECONDS": "120",
            "LOG_FORMAT": "text",
        }
    )
    return env


def ledger(tmp_path: Path) -> tuple[list[AlertRecord], list[RecordedEvent]]:
    """Every alert in the ledger and every event notify recorded."""
    db = NotifySQLiteDatabase(tmp_path / "notify.db")
    try:
        with db.transaction() as tx:
            alerts = tx.alerts_from(SOURCE)
        recorded = db.store.read_all()
    finally:
        db.close()
    return alerts, recorded


def test_a_send_killed_before_notify_s_answer_is_found_not_repeated(
    tmp_path: Path, catcher: MailCatcher, stub: NotifyStub, clock: FakeClock
) -> None:
    case = new_case()
    event = approaching(case, id=SOURCE)
    with wired(tmp_path, catcher, stub, clock) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ANY_TIME})
        runtime.handlers.handle_intake_event(
            coordinator_assigned(case, COORDINATOR.staff_id)
        )
        runtime.handlers.handle_deadlines_event(event)
    stub.hold_next(1, seconds=300)

    # The first process records its claim, sends, and waits for an answer that
    # Notify holds back; it is killed while it waits.
    first = subprocess.Popen(
        [sys.executable, "-m", "notify", "deliver"],
        env=cli_env(tmp_path, catcher, stub),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: len(stub.notifications()) == 1, "the send to reach Notify", 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert first.returncode == -signal.SIGKILL
    [claimed], nothing = ledger(tmp_path)
    assert (claimed.status, claimed.attempts, nothing) == (AlertStatus.SENDING, 1, [])
    stub.release_held()

    # The restarted process asks Notify by reference, finds the message, and records
    # it as sent without sending it again.
    second = subprocess.run(
        [sys.executable, "-m", "notify", "deliver"],
        env=cli_env(tmp_path, catcher, stub),
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert second.returncode == 0, second.stderr.decode()[-3000:]
    [message] = stub.notifications()
    assert message.recipient == COORDINATOR.mobile
    wait_for(lambda: len(stub.requests()) == 2, "the held answer to be written")
    assert sorted(stub.requests()) == [
        ("GET", "/v2/notifications", 200),
        ("POST", "/v2/notifications/sms", 201),
    ]
    [alert], [event] = ledger(tmp_path)
    assert (alert.status, alert.provider_id) == (AlertStatus.SENT, message.id)
    assert event.type == "send.notify.NotificationSent.v1"
    assert (event.data["attempts"], event.data["alert_id"]) == (2, message.reference)
    assert b"found at the provider by reference" in second.stderr + second.stdout
