"""What the reviews broker tests share: records of other services, reading a topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from devstack.kafka_topics import ensure_topics
from send_schemas.topics import Topic, dead_letter_topic
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent

# Guards against a hang only; nothing asserts how long anything took.
DEADLINE_S = 120.0

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def foreign_event(
    owner: str,
    name: str,
    case_id: str,
    data: dict[str, Any],
    *,
    version: int = 1,
    correlation_id: str = "corr-plans-1",
) -> tuple[str, Record]:
    """A record as another service's relay writes it: its ``ce_id`` and the record."""
    event = RecordedEvent(
        id=str(uuid.uuid4()),
        stream_id=case_id,
        version=version,
        position=version,
        type=f"send.{owner}.{name}.v1",
        source=f"/send/{owner}",
        time=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        data={"case_id": case_id, **data},
        metadata=Metadata("staff-plans-1", correlation_id),
    )
    record = to_kafka(event)
    return event.id, (record.key, record.value, record.headers)


def produce(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    """Send raw records and wait for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=headers)
            for key, value, headers in records
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=0)
    finally:
        producer.close()


def create_dead_letter_topic(bootstrap: str, source: str) -> str:
    name = dead_letter_topic("reviews", source)
    ensure_topics(
        bootstrap, [Topic(name, owner="reviews", consumers=("test",), partitions=1)]
    )
    return name


def read_to_end(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` from offset 0 to its current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end {ends}")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close(autocommit=False)


def wait_for(what: str, done: Callable[[], bool], interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(interval_s)
