"""What the deadlines worker's process tests share: topics of the test's own, the
requests they publish, and the decision clocks they wait for."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from deadlines.settings import DeadlinesSettings
from devstack.kafka_topics import ensure_topics
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.envelope import from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent


def settings_on_own_topics(bootstrap: str, word: str) -> DeadlinesSettings:
    """Deadlines settings whose topics (``DEADLINES_TOPIC_PREFIX``) are new, with their
    dead-letter topics created."""
    found = DeadlinesSettings(
        kafka_bootstrap_servers=bootstrap, topic_prefix=f"{word}{uuid.uuid4().hex[:8]}."
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


def request_received(case: str, actor: str) -> RecordedEvent:
    """A case's synthetic ``RequestReceived``, as intake's relay sends it."""
    return RecordedEvent(
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
        metadata=Metadata(actor=actor, correlation_id=case),
    )


def publish_requests(
    producer: KafkaProducer, topic: str, cases: list[str], *, actor: str
) -> None:
    """Each case's ``RequestReceived`` on ``topic``, flushed."""
    for case in cases:
        record = to_kafka(request_received(case, actor))
        producer.send(topic, key=record.key, value=record.value, headers=record.headers)
    producer.flush(timeout=60)


def decision_clocks(records: list[Any]) -> dict[str, list[Any]]:
    """Each case's ``ClockSet`` events of the decision clock, copies included."""
    found: dict[str, list[Any]] = defaultdict(list)
    for record in records:
        event = from_kafka(record)
        if event.name == "ClockSet" and event.data["clock_id"] == "decision":
            found[event.subject].append(event)
    return found
