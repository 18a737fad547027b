"""Kafka helpers for notify's worker tests: publishing as the platform's producers do,
the worker as a subprocess, reading a topic back, and whether a group has caught up."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from devstack.smtp import MailCatcher
from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.inbound import COORDINATOR_ASSIGNED
from notify.domain.delivery import AlertStatus
from send_schemas.topics import DEADLINES, INTAKE, topic_by_name
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent

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
            source=f"/send/{topic_by_name(topic).owner}",
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


def caught_up(
    bootstrap: str,
    group: str,
    topics: tuple[str, ...] = (DEADLINES.name, INTAKE.name),
) -> bool:
    """Whether ``group`` has committed the end offset of every partition it reads."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
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
