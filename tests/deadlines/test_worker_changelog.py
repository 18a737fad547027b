"""The deadlines worker's changelog topic exists before the app's first write.

A worker started on a fresh app id used to meet, now and then, a changelog topic its
producer knew nothing of: faust picked the changelog partition from the producer's
cached metadata without waiting for it, and failed every write with a ``TypeError``.
The worker now creates the topic itself (compacted, a partition per input partition)
and waits for it before the app starts, and names the partition of each write, so
the producer waits for the metadata. Each start here is on a new app id and new
topics, so each first write is the first this broker sees for that topic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from deadlines.entrypoints.worker import (
    READY_MESSAGE,
    changelog_topic_name,
    ensure_changelog_topic,
)
from deadlines.settings import DeadlinesSettings
from devstack.kafka_topics import ensure_topics
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.envelope import from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent

STARTS = 3
GUARD_S = 120.0


def describe(bootstrap: str, name: str) -> tuple[int, str]:
    """The topic's partition count and cleanup policy."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        [topic] = admin.describe_topics([name])
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)]
        )
    finally:
        admin.close()
    policy = configs["topic"][name]["cleanup.policy"]["value"]
    return len(topic["partitions"]), str(policy)


def test_the_changelog_topic_is_created_compacted_once(
    kafka_bootstrap: str, unique_name: Any
) -> None:
    name = unique_name("changelog")

    ensure_changelog_topic([kafka_bootstrap], name, partitions=PARTITIONS)
    ensure_changelog_topic([kafka_bootstrap], name, partitions=PARTITIONS)

    assert describe(kafka_bootstrap, name) == (PARTITIONS, "compact")


def fresh_settings(bootstrap: str) -> DeadlinesSettings:
    prefix = f"chg{uuid.uuid4().hex[:8]}."
    found = DeadlinesSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        app_id=f"deadlines-chg-{uuid.uuid4().hex[:8]}",
    )
    inputs = [*found.domain_topics, found.ticks_topic]
    names = [
        *inputs,
        found.clocks_topic,
        *(dead_letter_topic("deadlines", name) for name in inputs),
        dead_letter_topic("deadlines", found.clocks_topic),
    ]
    ensure_topics(
        bootstrap,
        [
            Topic(name, owner="deadlines", consumers=("test",), partitions=PARTITIONS)
            for name in names
        ],
    )
    return found


def publish_request(settings: DeadlinesSettings, case: str) -> None:
    event = RecordedEvent(
        id=str(uuid.uuid4()),
        stream_id=case,
        version=1,
        position=0,
        type="send.intake.RequestReceived.v1",
        source="/send/intake",
        time=datetime.now(UTC),
        data={
            "case_id": case,
            "requester_type": "parent",
            "channel": "portal",
            "received_at": "2025-01-06T10:00:00Z",
            "school_urn": 100042,
            "curriculum_year": 6,
        },
        metadata=Metadata(actor="ehcco-chg", correlation_id=case),
    )
    record = to_kafka(event)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        producer.send(
            settings.intake_topic,
            key=record.key,
            value=record.value,
            headers=record.headers,
        )
        producer.flush(timeout=60)
    finally:
        producer.close()


def records_of(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` so far."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[Any] = []
        deadline = time.monotonic() + GUARD_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to {ends}")
            for records in consumer.poll(timeout_ms=200).values():
                found.extend(records)
        return found
    finally:
        consumer.close(autocommit=False)


def first_write_done(
    bootstrap: str, settings: DeadlinesSettings, changelog: str, case: str
) -> bool:
    """Whether the case's decision clock is out and its state is on the changelog."""
    decided = any(
        from_kafka(r).name == "ClockSet"
        for r in records_of(bootstrap, settings.clocks_topic)
    )
    states = [
        json.loads(r.value)
        for r in records_of(bootstrap, changelog)
        if r.key == case.encode()
    ]
    return decided and bool(states)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.timeout(600)  # three worker starts on a loaded machine
def test_a_worker_on_a_fresh_app_id_writes_its_first_state_every_time(
    kafka_bootstrap: str, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    for start in range(STARTS):
        settings = fresh_settings(kafka_bootstrap)
        case = str(uuid.uuid4())
        publish_request(settings, case)
        log = tmp_path / f"{start}.log"
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("SEND_HEARTBEAT", "SEND_SHUTDOWN", "SEND_STALL"))
        }
        env |= {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DEADLINES_APP_ID": settings.app_id,
            "DEADLINES_TOPIC_PREFIX": settings.topic_prefix,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
        }
        with log.open("wb") as output:
            worker = subprocess.Popen(
                [sys.executable, "-m", "deadlines", "worker"],
                stdout=output,
                stderr=output,
                env=env,
            )
        workers.append(worker)
        changelog = changelog_topic_name(settings.app_id)

        deadline = time.monotonic() + GUARD_S
        while not first_write_done(kafka_bootstrap, settings, changelog, case):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise AssertionError(
                    f"start {start}: no state written; the log ends:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.5)
        worker.terminate()
        worker.wait(timeout=GUARD_S)
        text = log.read_text(errors="replace")

        assert READY_MESSAGE in text
        assert "TypeError" not in text, text[-3000:]
        assert describe(kafka_bootstrap, changelog) == (PARTITIONS, "compact")
