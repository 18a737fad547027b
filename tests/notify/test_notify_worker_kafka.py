"""The notify worker end to end: a real broker, a real SMTP server, a subprocess worker.

Events are published the way the platform's producers publish them (the kernel's
envelope, binary mode). The broker is shared by the whole test run, so other tests'
events may sit on the same topics: every assertion here looks only at this test's own
cases and messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from notify_factories import (
    COORDINATOR,
    MANAGER,
    clock_data,
    new_case,
    write_directory_csv,
)

from devstack.smtp import MailCatcher
from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.inbound import (
    CLOCK_APPROACHING,
    CLOCK_OVERDUE,
    COORDINATOR_ASSIGNED,
)
from notify.domain.delivery import AlertStatus
from send_schemas.topics import DEADLINES, INTAKE, NOTIFY, dead_letter_topic
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent

DLQ = dead_letter_topic("notify", DEADLINES.name)
WAIT_S = 120.0


class Publisher:
    """Publishes events as the kernel's relay does: ``to_kafka`` of a recorded event."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap.split(","))
        self.versions: dict[str, int] = {}

    def publish(
        self, topic: str, event_type: str, case_id: str, data: dict[str, Any]
    ) -> str:
        version = self.versions.get(case_id, 0) + 1
        self.versions[case_id] = version
        event = RecordedEvent(
            id=str(uuid.uuid4()),
            stream_id=case_id,
            version=version,
            position=version,
            type=event_type,
            source="/send/deadlines" if topic == DEADLINES.name else "/send/intake",
            time=datetime.now(UTC),
            data=data,
            metadata=Metadata(correlation_id=f"test-{case_id[:8]}"),
        )
        record = to_kafka(event)
        self.producer.send(
            topic, key=record.key, value=record.value, headers=record.headers
        ).get(timeout=30)
        return event.id

    def raw(self, topic: str, key: bytes, value: bytes) -> None:
        self.producer.send(topic, key=key, value=value, headers=[]).get(timeout=30)

    def assign(self, case_id: str, coordinator: str) -> str:
        return self.publish(
            INTAKE.name,
            COORDINATOR_ASSIGNED,
            case_id,
            {
                "case_id": case_id,
                "coordinator_id": coordinator,
                "previous_coordinator_id": None,
            },
        )

    def close(self) -> None:
        self.producer.close()


class Worker:
    """``python -m notify worker`` as a subprocess, its output kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notify", "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def wait_until(
    condition: Callable[[], bool], what: str, worker: Worker, timeout: float = WAIT_S
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            pytest.fail(
                f"the worker exited while waiting for {what}:\n{worker.output()}"
            )
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker output:\n{worker.output()}")


def mail_for(catcher: MailCatcher, case_id: str) -> list[tuple[str, str]]:
    """(recipient, subject) of every message about ``case_id``, in arrival order."""
    return [
        (m.envelope_to[0], m.subject)
        for m in catcher.messages()
        if case_id in m.subject
    ]


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` from the beginning to its current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            consumer.position(tp) < end[tp] for tp in partitions
        ):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def caught_up(bootstrap: str, group: str) -> bool:
    """Whether ``group`` has committed the end offset of every partition it reads."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        partitions = [
            TopicPartition(topic, p)
            for topic in (DEADLINES.name, INTAKE.name)
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        end = consumer.end_offsets(partitions)
    finally:
        consumer.close()
        admin.close()

    def offset_of(tp: TopicPartition) -> int:
        value = committed.get(tp)
        return 0 if value is None else int(value.offset)

    return all(offset_of(tp) >= end[tp] for tp in partitions)


def live_alerts(tmp_path: Path) -> int:
    db = NotifySQLiteDatabase(tmp_path / "notify.db")
    try:
        with db.transaction() as tx:
            counts = tx.count_by_status()
    finally:
        db.close()
    return counts.get(AlertStatus.PENDING, 0) + counts.get(AlertStatus.SENDING, 0)


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
