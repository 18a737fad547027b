"""The notify worker end to end: a real broker, a real SMTP server, a subprocess worker.

Events are published the way the platform's producers publish them (the kernel's
envelope, binary mode). The broker is shared by the whole test run, so other tests'
events may sit on the same topics: every assertion here looks only at this test's own
cases and messages.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notify_factories import (
    COORDINATOR,
    MANAGER,
    clock_data,
    new_case,
    write_directory_csv,
)
from notify_kafka import (
    Publisher,
    Worker,
    caught_up,
    live_alerts,
    mail_for,
    read_topic,
    wait_until,
)

from devstack.smtp import MailCatcher
from notify.application.inbound import CLOCK_APPROACHING, CLOCK_OVERDUE
from send_schemas.topics import DEADLINES, NOTIFY, dead_letter_topic

DLQ = dead_letter_topic("notify", DEADLINES.name)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


@pytest.fixture
def publisher(kafka_bootstrap: str) -> Iterator[Publisher]:
    publisher = Publisher(kafka_bootstrap)
    yield publisher
    publisher.close()


def worker_env(
    tmp_path: Path, bootstrap: str, catcher: MailCatcher, app_id: str
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "NOTIFY_APP_ID": app_id,
            "NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'notify.db'}",
            "NOTIFY_DIRECTORY_CSV": str(write_directory_csv(tmp_path / "staff.csv")),
            "NOTIFY_SMTP_HOST": "127.0.0.1",
            "NOTIFY_SMTP_PORT": str(catcher.port),
            "NOTIFY_FROM_ADDRESS": "send-alerts@council.example",
            "NOTIFY_RETRY_BASE_SECONDS": "0.5",
            "NOTIFY_DELIVERY_POLL_SECONDS": "1",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
        }
    )
    return env


def test_clock_events_become_emails_once_through_kafka(
    tmp_path: Path,
    kafka_bootstrap: str,
    catcher: MailCatcher,
    publisher: Publisher,
    unique_name: Callable[[str], str],
) -> None:
    case_a, case_b, case_c = new_case(), new_case(), new_case()
    first_group = unique_name("notify")
    publisher.assign(case_a, COORDINATOR.staff_id)
    publisher.publish(DEADLINES.name, CLOCK_APPROACHING, case_a, clock_data(case_a))

    worker = Worker(
        worker_env(tmp_path, kafka_bootstrap, catcher, first_group),
        tmp_path / "worker-1.log",
    )
    try:
        # An approaching clock: the coordinator is emailed.
        wait_until(
            lambda: len(mail_for(catcher, case_a)) >= 1, "the first email", worker
        )
        [(to, subject)] = mail_for(catcher, case_a)
        assert to == COORDINATOR.email
        assert subject.startswith("[SEND] Due Mon 17 Feb 2025")

        # Overdue: the coordinator and the manager, one email each.
        publisher.publish(
            DEADLINES.name,
            CLOCK_OVERDUE,
            case_a,
            clock_data(case_a, overdue=True, lead=None),
        )
        wait_until(
            lambda: len(mail_for(catcher, case_a)) >= 3, "overdue emails", worker
        )

        # A garbage record goes to the DLQ, and the next record is still handled.
        marker = uuid.uuid4().hex
        publisher.raw(DEADLINES.name, case_b.encode(), f"garbage {marker}".encode())
        publisher.assign(case_b, COORDINATOR.staff_id)
        publisher.publish(DEADLINES.name, CLOCK_APPROACHING, case_b, clock_data(case_b))
        wait_until(
            lambda: len(mail_for(catcher, case_b)) >= 1, "case B's email", worker
        )

        # The relay publishes notify's own events.
        def sent_events() -> list[dict[str, Any]]:
            return [
                json.loads(r.value)
                for r in read_topic(kafka_bootstrap, NOTIFY.name)
                if r.key in (case_a.encode(), case_b.encode())
            ]

        wait_until(lambda: len(sent_events()) >= 4, "NotificationSent events", worker)
        wait_until(
            lambda: caught_up(kafka_bootstrap, first_group), "committed offsets", worker
        )
    finally:
        first_exit = worker.stop()

    assert first_exit == 0, worker.output()
    overdue_mail = mail_for(catcher, case_a)[1:]
    assert sorted(to for to, _ in overdue_mail) == sorted(
        [COORDINATOR.email, MANAGER.email]
    )
    assert all(s.startswith("[SEND] Overdue:") for _, s in overdue_mail)
    dead = [
        r
        for r in read_topic(kafka_bootstrap, DLQ)
        if marker.encode() in (r.value or b"")
    ]
    assert len(dead) == 1
    dead_headers = dict(dead[0].headers)
    assert b"header content-type is missing" in dead_headers["dlq_reason"]
    assert dead_headers["dlq_source_topic"] == DEADLINES.name.encode()
    events = sent_events()
    assert sorted((e["case_id"], e["recipient_role"]) for e in events) == sorted(
        [
            (case_a, "coordinator"),
            (case_a, "coordinator"),
            (case_a, "manager"),
            (case_b, "coordinator"),
        ]
    )
    assert all(COORDINATOR.email not in json.dumps(e) for e in events)

    # A new consumer group on the same ledger replays both topics from offset 0:
    # nothing is sent twice, and a new clock event is still handled.
    replay_group = unique_name("notify-replay")
    publisher.assign(case_c, COORDINATOR.staff_id)
    publisher.publish(DEADLINES.name, CLOCK_APPROACHING, case_c, clock_data(case_c))
    replay = Worker(
        worker_env(tmp_path, kafka_bootstrap, catcher, replay_group),
        tmp_path / "worker-2.log",
    )
    try:
        wait_until(
            lambda: len(mail_for(catcher, case_c)) >= 1, "case C's email", replay
        )
        wait_until(
            lambda: caught_up(kafka_bootstrap, replay_group), "the replay", replay
        )
        # Once every record is handled, nothing may be left to send: a ledger that let
        # a replayed event through would show it here as a live alert.
        wait_until(lambda: live_alerts(tmp_path) == 0, "an idle ledger", replay)
    finally:
        replay_exit = replay.stop()

    assert replay_exit == 0, replay.output()
    assert len(mail_for(catcher, case_a)) == 3
    assert len(mail_for(catcher, case_b)) == 1
    assert len(mail_for(catcher, case_c)) == 1
    assert len(sent_events()) == 4
