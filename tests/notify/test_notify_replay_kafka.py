"""A replay of every topic notify reads sends nothing twice, by email or by SMS.

A real broker, the worker as a subprocess (``python -m notify worker``), the real mail
catcher and the local GOV.UK Notify server. One case's facts arrive on all three
topics (intake: the request and the coordinator; reviews: the plan's setting;
deadlines: an annual review approaching and a decision overdue), reaching the
coordinator (email and SMS), the SENCO of the school and the manager. A second worker
on the same ledger with a new consumer group reads all three topics again from offset
0: not one more message leaves, and a new case is still handled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from notify_factories import (
    COORDINATOR,
    MANAGER,
    SCHOOL_URN,
    SENCO,
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

from devstack.notify_stub import (
    DEFAULT_API_KEY,
    DEFAULT_EMAIL_TEMPLATE_ID,
    DEFAULT_SMS_TEMPLATE_ID,
    NotifyStub,
)
from devstack.smtp import MailCatcher
from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.inbound import (
    CLOCK_APPROACHING,
    CLOCK_OVERDUE,
    REQUEST_RECEIVED,
    REVIEW_CYCLE_STARTED,
)
from notify.domain.preferences import ChannelChoice, PreferenceKind, Preferences
from send_schemas.topics import DEADLINES, INTAKE, NOTIFY, REVIEWS

TOPICS = (DEADLINES.name, INTAKE.name, REVIEWS.name)
# No quiet hours: the worker runs on the real clock, at whatever time the test does.
BOTH_ANY_TIME = Preferences(
    channels={
        PreferenceKind.APPROACHING: ChannelChoice.BOTH,
        PreferenceKind.OVERDUE: ChannelChoice.BOTH,
    },
    quiet_hours=None,
)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


@pytest.fixture
def stub() -> Iterator[NotifyStub]:
    with NotifyStub(deliver_after_s=0.05) as running:
        yield running


@pytest.fixture
def publisher(kafka_bootstrap: str) -> Iterator[Publisher]:
    publisher = Publisher(kafka_bootstrap)
    yield publisher
    publisher.close()


def worker_env(
    tmp_path: Path,
    bootstrap: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    app_id: str,
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
            "NOTIFY_GOVUK_API_KEY": DEFAULT_API_KEY,
            "NOTIFY_GOVUK_BASE_URL": stub.base_url,
            "NOTIFY_GOVUK_EMAIL_TEMPLATE_ID": DEFAULT_EMAIL_TEMPLATE_ID,
            "NOTIFY_GOVUK_SMS_TEMPLATE_ID": DEFAULT_SMS_TEMPLATE_ID,
            "NOTIFY_RETRY_BASE_SECONDS": "0.5",
            "NOTIFY_DELIVERY_POLL_SECONDS": "1",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
        }
    )
    return env


def publish_case(publisher: Publisher, case_id: str) -> None:
    publisher.publish(
        INTAKE.name,
        REQUEST_RECEIVED,
        case_id,
        {
            "case_id": case_id,
            "requester_type": "parent",
            "channel": "email",
            "received_at": "2025-01-06T09:30:00Z",
            # The plan names the same school: the reviews and deadlines topics are
            # not ordered with each other, so the alert may be raised before the
            # setting arrives, and then names the request's school.
            "school_urn": SCHOOL_URN,
            "curriculum_year": 5,
        },
    )
    publisher.assign(case_id, COORDINATOR.staff_id)
    publisher.publish(
        REVIEWS.name,
        REVIEW_CYCLE_STARTED,
        case_id,
        {"case_id": case_id, "issued_on": "2025-01-20", "setting_urn": SCHOOL_URN},
    )
    review = clock_data(case_id, due_on=date(2026, 1, 19))
    review.update(
        clock_id="annual_review",
        clock="annual_review",
        title="Annual review",
        legal_basis="CFA 2014 s.44(1)",
    )
    publisher.publish(DEADLINES.name, CLOCK_APPROACHING, case_id, review)
    publisher.publish(
        DEADLINES.name,
        CLOCK_OVERDUE,
        case_id,
        clock_data(case_id, overdue=True, lead=None),
    )


def texts_for(stub: NotifyStub, case_id: str) -> list[str]:
    return [n.recipient for n in stub.notifications() if case_id in n.body]


def test_a_replay_of_every_topic_sends_no_message_twice(
    tmp_path: Path,
    kafka_bootstrap: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    publisher: Publisher,
    unique_name: Callable[[str], str],
) -> None:
    db = NotifySQLiteDatabase(tmp_path / "notify.db")
    with db.transaction() as tx:
        tx.put_preferences(COORDINATOR.staff_id, BOTH_ANY_TIME)
    db.close()
    case, later = new_case(), new_case()
    publish_case(publisher, case)
    first_group = unique_name("notify")

    worker = Worker(
        worker_env(tmp_path, kafka_bootstrap, catcher, stub, first_group),
        tmp_path / "worker-1.log",
    )
    try:
        wait_until(
            lambda: (
                len(mail_for(catcher, case)) >= 4 and len(texts_for(stub, case)) >= 2
            ),
            "every message about the case",
            worker,
        )
        wait_until(
            lambda: caught_up(kafka_bootstrap, first_group, TOPICS),
            "committed offsets on all three topics",
            worker,
        )
        wait_until(lambda: live_alerts(tmp_path) == 0, "an idle ledger", worker)
    finally:
        first_exit = worker.stop()
    assert first_exit == 0, worker.output()

    emails = sorted(mail_for(catcher, case))
    assert sorted(to for to, _ in emails) == sorted(
        [COORDINATOR.email, COORDINATOR.email, SENCO.email, MANAGER.email]
    )
    assert sorted(texts_for(stub, case)) == [COORDINATOR.mobile, COORDINATOR.mobile]

    # A new group replays intake, reviews and deadlines from offset 0.
    publish_case(publisher, later)
    replay_group = unique_name("notify-replay")
    replay = Worker(
        worker_env(tmp_path, kafka_bootstrap, catcher, stub, replay_group),
        tmp_path / "worker-2.log",
    )
    try:
        wait_until(
            lambda: (
                len(mail_for(catcher, later)) >= 4 and len(texts_for(stub, later)) >= 2
            ),
            "the new case's messages",
            replay,
        )
        wait_until(
            lambda: caught_up(kafka_bootstrap, replay_group, TOPICS),
            "the replay of all three topics",
            replay,
        )
        wait_until(lambda: live_alerts(tmp_path) == 0, "an idle ledger", replay)
    finally:
        replay_exit = replay.stop()
    assert replay_exit == 0, replay.output()

    assert sorted(mail_for(catcher, case)) == emails
    assert len(texts_for(stub, case)) == 2
    assert len(mail_for(catcher, later)) == 4
    assert len(texts_for(stub, later)) == 2

    def published(case_id: str) -> list[dict[str, Any]]:
        return [
            json.loads(r.value)
            for r in read_topic(kafka_bootstrap, NOTIFY.name)
            if r.key == case_id.encode()
        ]

    sent = published(case)
    assert len(sent) == 6
    assert {(e["channel"], e["recipient_role"]) for e in sent} == {
        ("email", "coordinator"),
        ("sms", "coordinator"),
        ("email", "senco"),
        ("email", "manager"),
    }
    assert all(COORDINATOR.mobile not in json.dumps(e) for e in sent)
