"""The worker's ports: broker offsets, and publishing through the faust app.

``BrokerOffsets`` reads current end offsets (a ListOffsets round trip) and the earliest
offsets a fresh app starts from. ``FaustPublisher`` hands records to the app's
producer as raw bytes with their headers; the future it returns resolves when the
broker has acknowledged the record.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import faust
from kafka import KafkaConsumer, TopicPartition

from deadlines.application.partitioning import key_partition
from deadlines.application.ports import Publication


class BrokerOffsets:
    """``Offsets`` from a consumer of its own, outside any group.

    The faust app's consumer would answer too, but its requests queue behind its own
    long-polling fetches on the same connection, which costs up to the fetch wait
    (1.5 s) per question; a separate connection answers in one round trip. The
    kafka-python consumer is blocking, so calls run in a thread, one at a time.
    """

    def __init__(self, bootstrap_servers: Sequence[str], *, timeout_s: float = 30.0):
        self.bootstrap_servers = list(bootstrap_servers)
        self.timeout_ms = int(timeout_s * 1000)
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()

    def _client(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id="deadlines-offsets",
                group_id=None,
                enable_auto_commit=False,
                bootstrap_timeout_ms=self.timeout_ms,
            )
        return self._consumer

    def _ends(self, tps: list[TopicPartition]) -> dict[str, int]:
        with self._lock:
            found = self._client().end_offsets(tps, timeout_ms=self.timeout_ms)
        return {str(tp.topic): int(offset) for tp, offset in dict(found).items()}

    def _starts(self, tps: list[TopicPartition]) -> dict[str, int]:
        with self._lock:
            found = self._client().beginning_offsets(tps, timeout_ms=self.timeout_ms)
        return {str(tp.topic): int(offset) for tp, offset in dict(found).items()}

    async def end_offset(self, topic: str, partition: int) -> int:
        found = await asyncio.to_thread(self._ends, [TopicPartition(topic, partition)])
        return found[topic]

    async def start_offsets(
        self, topics: Iterable[str], partition: int
    ) -> dict[str, int]:
        tps = [TopicPartition(topic, partition) for topic in topics]
        return await asyncio.to_thread(self._starts, tps)

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


class CachedPartitioner:
    """aiokafka's default partitioner with the murmur2 hashes remembered.

    The same partition for the same key (``all_partitions[murmur2(key) % n]``, the
    rule of aiokafka's ``DefaultPartitioner``), but the pure-Python hash of a case id
    is computed once rather than for every clock event and state write of the case.
    """

    def __call__(
        self, key: bytes | None, all_partitions: list[int], available: list[int]
    ) -> int:
        if key is None:
            # As aiokafka does (this service keys every record it sends).
            return random.choice(available or all_partitions)
        return all_partitions[key_partition(key, len(all_partitions))]


class FaustPublisher:
    """``Publisher`` straight onto the app's producer: raw bytes, no codec."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def publish(self, publication: Publication) -> Awaitable[Any]:
        record = publication.record
        future: Awaitable[Any] = await self.app.producer.send(
            publication.topic,
            record.key,
            record.value,
            None,
            None,
            list(record.headers),
        )
        return future
