"""Delivery over a real SMTP server: the devstack mail catcher, and a server that hangs.

The ledger is a real SQLite file; the clock is fixed so retries are due when the test
says, not after a wait.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from notify_factories import (
    COORDINATOR,
    MANAGER,
    FakeClock,
    approaching,
    coordinator_assigned,
    new_case,
    seed,
    write_directory_csv,
)

from devstack.kafka_config import free_port
from devstack.smtp import MailCatcher
from notify.adapters.smtp import SMTPEmailSender
from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.delivery import Delivery
from notify.application.handlers import NotifyHandlers
from notify.application.ports import (
    OutgoingEmail,
    PermanentSendFailure,
    RetryableSendFailure,
)
from notify.domain.delivery import AlertStatus, RetryPolicy

FROM = "send-alerts@council.example"


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[NotifySQLiteDatabase]:
    database = NotifySQLiteDatabase(tmp_path / "notify.db")
    yield database
    database.close()


def smtp_delivery(
    db: NotifySQLiteDatabase, catcher: MailCatcher, clock: FakeClock
) -> Delivery:
    return Delivery(
        db,
        SMTPEmailSender("127.0.0.1", catcher.port, timeout=10),
        from_address=FROM,
        message_id_domain="council.example",
        policy=RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=5)),
        now=clock,
    )


def recorded(
    db: NotifySQLiteDatabase, case_id: str
) -> list[tuple[str, dict[str, Any]]]:
    with db.transaction() as tx:
        return [(e.type.split(".")[2], e.data) for e in tx.events.read_stream(case_id)]


def alert_for_new_case(db: NotifySQLiteDatabase, clock: FakeClock) -> str:
    seed(db)
    handlers = NotifyHandlers(db, now=clock)
    case = new_case()
    handlers.handle_intake_event(coordinator_assigned(case, COORDINATOR.staff_id))
    handlers.handle_deadlines_event(approaching(case))
    return case


def test_an_email_reaches_the_server_as_plain_text_with_its_message_id(
    catcher: MailCatcher,
) -> None:
    sender = SMTPEmailSender("127.0.0.1", catcher.port, timeout=10)
    email = OutgoingEmail(
        message_id="<a1@council.example>",
        from_address=FROM,
        to_address=COORDINATOR.email,
        subject="[SEND] Due Mon 17 Feb 2025: decision, case c-1",
        body="Case reference: c-1\n\nDue on Monday 17 February 2025.\n",
        headers={"X-SEND-Alert-ID": "a1"},
    )

    sender.send(email)

    [stored] = catcher.wait_for_messages(1)
    assert stored.message_id == "<a1@council.example>"
    assert stored.envelope_to == (COORDINATOR.email,)
    assert stored.subject == email.subject
    parsed = catcher.store.parsed(stored.id)
    assert parsed.get_content_type() == "text/plain"
    assert parsed["X-SEND-Alert-ID"] == "a1"
    assert "Due on Monday 17 February 2025." in parsed.get_content()


def test_server_answers_are_typed(catcher: MailCatcher) -> None:
    sender = SMTPEmailSender("127.0.0.1", catcher.port, timeout=10)
    email = OutgoingEmail("<a2@x>", FROM, COORDINATOR.email, "s", "b")

    catcher.faults.fail_next(1, 451)
    with pytest.raises(RetryableSendFailure) as deferred:
        sender.send(email)
    catcher.faults.fail_next(1, 554)
    with pytest.raises(PermanentSendFailure) as refused:
        sender.send(email)
    catcher.faults.reject_recipient(COORDINATOR.email, 550, count=1)
    with pytest.raises(PermanentSendFailure) as no_mailbox:
        sender.send(email)

    assert (deferred.value.code, refused.value.code, no_mailbox.value.code) == (
        451,
        554,
        550,
    )
    assert catcher.messages() == []


def test_a_closed_port_is_a_retryable_failure() -> None:
    sender = SMTPEmailSender("127.0.0.1", free_port(), timeout=5)

    with pytest.raises(RetryableSendFailure, match="could not talk"):
        sender.send(OutgoingEmail("<a3@x>", FROM, COORDINATOR.email, "s", "b"))


def test_a_451_then_success_delivers_one_message(
    catcher: MailCatcher, sqlite_db: NotifySQLiteDatabase, clock: FakeClock
) -> None:
    case = alert_for_new_case(sqlite_db, clock)
    delivery = smtp_delivery(sqlite_db, catcher, clock)
    catcher.faults.fail_next(1, 451)

    delivery.deliver_due()
    clock.advance(seconds=5)
    delivery.deliver_due()

    [stored] = catcher.wait_for_messages(1)
    [rejected] = catcher.rejections()
    assert rejected.code == 451
    assert rejected.message_id == stored.message_id
    [(kind, data)] = recorded(sqlite_db, case)
    assert (kind, data["attempts"]) == ("NotificationSent", 2)


def test_a_550_is_recorded_as_notification_failed(
    catcher: MailCatcher, sqlite_db: NotifySQLiteDatabase, clock: FakeClock
) -> None:
    case = alert_for_new_case(sqlite_db, clock)
    catcher.faults.fail_next(1, 550)

    report = smtp_delivery(sqlite_db, catcher, clock).deliver_due()

    assert report.failed == 1
    # Only the escalation reached the server: to the coordinator's manager.
    [escalation] = catcher.messages()
    assert list(escalation.envelope_to) == [MANAGER.email]
    (kind, data), (escalated, _) = recorded(sqlite_db, case)
    assert kind == "NotificationFailed"
    assert (data["failure"], data["status_code"], data["attempts"]) == (
        "permanent",
        550,
        1,
    )
    assert escalated == "NotificationSent"


def test_the_same_clock_event_delivered_twice_sends_one_email(
    catcher: MailCatcher, sqlite_db: NotifySQLiteDatabase, clock: FakeClock
) -> None:
    seed(sqlite_db)
    handlers = NotifyHandlers(sqlite_db, now=clock)
    delivery = smtp_delivery(sqlite_db, catcher, clock)
    case = new_case()
    handlers.handle_intake_event(coordinator_assigned(case, COORDINATOR.staff_id))
    event = approaching(case)

    handlers.handle_deadlines_event(event)
    delivery.deliver_due()
    handlers.handle_deadlines_event(event)
    delivery.deliver_due()

    assert len(catcher.wait_for_messages(1)) == 1
    assert len(recorded(sqlite_db, case)) == 1


class _HangingHandler:
    """Takes the whole message, then never answers (until released at teardown)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.got_data = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.original_content or b"")
        self.got_data.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return "451 4.3.0 too late"


@pytest.fixture
def hanging_server() -> Iterator[tuple[_HangingHandler, int]]:
    handler = _HangingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    handler.release.set()
    controller.stop()


def _cli_env(tmp_path: Path, smtp_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'notify.db'}",
            "NOTIFY_DIRECTORY_CSV": str(write_directory_csv(tmp_path / "staff.csv")),
            "NOTIFY_SMTP_HOST": "127.0.0.1",
            "NOTIFY_SMTP_PORT": str(smtp_port),
            "NOTIFY_SMTP_TIMEOUT_SECONDS": "120",
            "NOTIFY_FROM_ADDRESS": FROM,
            "LOG_FORMAT": "text",
        }
    )
    return env


def test_a_crash_before_the_answer_resends_with_the_same_message_id(
    tmp_path: Path,
    catcher: MailCatcher,
    hanging_server: tuple[_HangingHandler, int],
    clock: FakeClock,
) -> None:
    hanging, hanging_port = hanging_server
    db = NotifySQLiteDatabase(tmp_path / "notify.db")
    case = alert_for_new_case(db, clock)
    db.close()

    # The first process sends to a server that takes the message and never answers;
    # it is killed while it waits, so the ledger holds a claim with no answer.
    first = subprocess.Popen(
        [sys.executable, "-m", "notify", "deliver"],
        env=_cli_env(tmp_path, hanging_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        got_it = hanging.got_data.wait(60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert got_it, first.stdout.read().decode() if first.stdout else ""

    # The second process, restarted on the same ledger, resends to a server that
    # answers.
    second = subprocess.run(
        [sys.executable, "-m", "notify", "deliver"],
        env=_cli_env(tmp_path, catcher.port),
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert second.returncode == 0, second.stderr.decode()
    [resent] = catcher.wait_for_messages(1)
    first_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in hanging.received[0].splitlines()
        if line.lower().startswith(b"message-id:")
    )
    assert resent.message_id == first_id
    db = NotifySQLiteDatabase(tmp_path / "notify.db")
    try:
        [(kind, data)] = recorded(db, case)
        with db.transaction() as tx:
            counts = tx.count_by_status()
    finally:
        db.close()
    assert (kind, data["attempts"]) == ("NotificationSent", 2)
    assert counts == {AlertStatus.SENT: 1}
