"""What the kernel's broker tests share: reading a topic to its end, making topics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from devstack.kafka_topics import ensure_topics
from send_schemas.topics import Topic, dead_letter_topic

# Only a guard against a hang: a test never asserts how long anything took.
READ_DEADLINE_S = 120.0


def read_topic_to_end(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` from offset 0 up to its current end, in offset order
    within each partition (partitions one after another)."""
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
        by_partition: dict[int, list[Any]] = {tp.partition: [] for tp in partitions}
        deadline = time.monotonic() + READ_DEADLINE_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"could not read {topic} to its end offsets {ends} in time"
                )
            for tp, records in consumer.poll(timeout_ms=500).items():
                by_partition[tp.partition].extend(records)
        return [record for p in sorted(by_partition) for record in by_partition[p]]
    finally:
        consumer.close(autocommit=False)


def create_dead_letter_topic(bootstrap: str, consumer: str, source: str) -> str:
    name = dead_letter_topic(consumer, source)
    ensure_topics(
        bootstrap,
        [Topic(name, owner=consumer, consumers=("test",), partitions=1)],
    )
    return name


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
    *,
    partition: int | None = None,
) -> None:
    """Send raw ``(key, value, headers)`` records and wait for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [
            producer.send(
                topic, key=key, value=value, headers=headers, partition=partition
            )
            for key, value, headers in records
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=0)
    finally:
        producer.close()


def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int | None:
    """The offset ``group`` has committed for one partition (None if it has none)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        offset: int | None = consumer.committed(TopicPartition(topic, partition))
        return offset
    finally:
        consumer.close(autocommit=False)
