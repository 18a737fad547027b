"""The worker's ports: broker offsets, publishing, committing and rewinding faust.

``BrokerOffsets`` reads current end offsets (a ListOffsets round trip), the earliest
offsets a fresh app starts from, and where the first record at or after an offset is.
``FaustPublisher`` hands records to the app's producer as raw bytes with their
headers, a drain's records together in a batch per topic partition (``BatchSender``);
the future it returns resolves when the broker has acknowledged them.
``BrokerOffsets.read`` also reads a range of records, those the app's consumer skipped
(the pipeline's ``Refill``). ``ConsumerFlow`` pauses and resumes the fetching of a
topic partition (the pipeline's ``Flow``). ``FaustCommitter`` commits the offsets the
pipeline names (those of progress already on the changelog) through the app's
consumer.

The worker never acknowledges a record to faust, so faust's own commit, which derives
offsets from acknowledged messages and counts a jump in the offsets it read as
acknowledged (``Consumer._add_gap``), never commits: the offsets committed are the
pipeline's, and only the pipeline's. ``FaustCommitter`` uses the consumer's
``_commit`` and ``_committed_offset``, which faust-streaming 0.15 offers no public
form of; the liveness check reads the latter too.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any

import faust
from faust.types import TP
from kafka import KafkaConsumer, TopicPartition

from deadlines.application.partitioning import key_partition
from deadlines.application.ports import InputRecord, Publication
from deadlines.domain.errors import DeadlinesError

log = logging.getLogger(__name__)
LIST_OFFSETS_ATTEMPTS = 5
LIST_OFFSETS_BACKOFF_S = 0.2


class OffsetsUnavailable(DeadlinesError):
    """The broker did not answer an offsets question, or a read, in time."""


class BrokerOffsets:
    """``Offsets`` from a consumer of its own, outside any group.

    The faust app's consumer would answer too, but its requests queue behind its own
    long-polling fetches on the same connection, which costs up to the fetch wait
    (1.5 s) per question; a separate connection answers in one round trip. The
    kafka-python consumer is blocking, so calls run in a thread, one at a time.
    """

    def __init__(
        self,
        bootstrap_servers: Sequence[str],
        *,
        timeout_s: float = 30.0,
        config: Mapping[str, Any] | None = None,
    ):
        self.bootstrap_servers = list(bootstrap_servers)
        self.timeout_ms = int(timeout_s * 1000)
        self.config = dict(config or {})
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
                **self.config,
            )
        return self._consumer

    def _list_offsets(
        self, tps: list[TopicPartition], *, earliest: bool
    ) -> dict[TopicPartition, int]:
        """The partitions' first or end offsets (the caller holds the lock).

        kafka-python 3.0.12 can answer a list-offsets call with a partition left out
        (its ``beginning_or_end_offset`` then raises ``KeyError`` for it), seen
        just after a member of the group was killed; the question is asked again a
        few times before it counts as unanswered.
        """
        consumer = self._client()
        ask = consumer.beginning_offsets if earliest else consumer.end_offsets
        for attempt in range(LIST_OFFSETS_ATTEMPTS):
            try:
                found = ask(tps, timeout_ms=self.timeout_ms)
            except KeyError as missing:
                log.warning(
                    "the broker's offsets answer left a partition out: asking again",
                    extra={"partition": str(missing), "attempt": attempt + 1},
                )
                time.sleep(LIST_OFFSETS_BACKOFF_S * (attempt + 1))
                continue
            return {tp: int(offset) for tp, offset in dict(found).items()}
        raise OffsetsUnavailable(
            f"the broker left a partition out of its offsets answer for {tps} "
            f"{LIST_OFFSETS_ATTEMPTS} times; check the topics' leaders"
        )

    def _ends(self, tps: list[TopicPartition]) -> dict[str, int]:
        with self._lock:
            found = self._list_offsets(tps, earliest=False)
        return {str(tp.topic): offset for tp, offset in found.items()}

    def _starts(self, tps: list[TopicPartition]) -> dict[str, int]:
        with self._lock:
            found = self._list_offsets(tps, earliest=True)
        return {str(tp.topic): offset for tp, offset in found.items()}

    def _read(self, tp: TopicPartition, start: int, stop: int) -> list[InputRecord]:
        found: list[InputRecord] = []
        with self._lock:
            consumer = self._client()
            end = self._list_offsets([tp], earliest=False)[tp]
            stop = min(stop, end)
            if start >= stop:
                return found
            consumer.assign([tp])
            try:
                consumer.seek(tp, start)
                deadline = time.monotonic() + self.timeout_ms / 1000
                while consumer.position(tp) < stop:
                    if time.monotonic() > deadline:
                        raise OffsetsUnavailable(
                            f"the records of {tp.topic}[{tp.partition}] from offset "
                            f"{start} to {stop} could not be read within "
                            f"{self.timeout_ms} ms; check that the broker is reachable"
                        )
                    for records in consumer.poll(timeout_ms=500).values():
                        found += [_input(r) for r in records if r.offset < stop]
            finally:
                consumer.unsubscribe()  # drops the manual assignment too
        return found

    async def read(
        self, topic: str, partition: int, start: int, stop: int
    ) -> list[InputRecord]:
        """The records of one topic partition with offsets in ``[start, stop)``."""
        return await asyncio.to_thread(
            self._read, TopicPartition(topic, partition), start, stop
        )

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


OutRecord = tuple[str, int | None, bytes | None, bytes | None, list[tuple[str, bytes]]]
"""A record to send: topic, partition (``None``: the key's), key, value, headers."""


class BatchSender:
    """Sends many records through the app's aiokafka producer, a batch per partition.

    Each topic partition's records go into batches of their own (``create_batch``,
    ``send_batch``) in the order given, so the producer makes one request for a
    drain's records rather than one batch, and one future, per record; what the
    caller awaits is one future per batch. A record without a partition goes where
    ``CachedPartitioner`` would put it (the key's murmur2 partition among the
    topic's partitions), so a topic partition holds the same records in the same
    order as if each had been sent alone. It reaches past faust's producer
    (``Producer._producer``, which faust-streaming 0.15 offers no public form of) to
    aiokafka's; faust's producer-side sensors do not see these records.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._partitions: dict[str, list[int]] = {}

    def _producer(self) -> Any:
        producer: Any = self.app.producer
        return producer._producer

    async def _partition_of(self, producer: Any, topic: str, key: bytes | None) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = sorted(await producer.partitions_for(topic))
            self._partitions[topic] = partitions
        if key is None:
            return random.choice(partitions)
        return partitions[key_partition(key, len(partitions))]

    async def send(self, records: Iterable[OutRecord]) -> Awaitable[Any]:
        """Queue every record; the awaitable resolves once Kafka holds them all."""
        producer = self._producer()
        groups: dict[tuple[str, int], list[OutRecord]] = {}
        for record in records:
            topic, partition, key = record[0], record[1], record[2]
            if partition is None:
                partition = await self._partition_of(producer, topic, key)
            groups.setdefault((topic, partition), []).append(record)
        futures: list[Awaitable[Any]] = []
        for (topic, partition), items in groups.items():
            batch = producer.create_batch()
            for _topic, _partition, key, value, headers in items:
                added = batch.append(
                    timestamp=None, key=key, value=value, headers=headers
                )
                if added is not None:
                    continue
                # Full: send it and start another (which takes any one record).
                futures.append(
                    await producer.send_batch(batch, topic, partition=partition)
                )
                batch = producer.create_batch()
                added = batch.append(
                    timestamp=None, key=key, value=value, headers=headers
                )
                if added is None:
                    raise ValueError(
                        f"a record for {topic}[{partition}] is larger than the "
                        "producer's batch size; raise producer_max_batch_size"
                    )
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return asyncio.gather(*futures)


class FaustPublisher:
    """``BatchPublisher`` straight onto the app's producer: raw bytes, no codec."""

    def __init__(self, app: faust.App, sender: BatchSender | None = None) -> None:
        self.app = app
        self.sender = sender or BatchSender(app)

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

    async def publish_many(self, publications: Sequence[Publication]) -> Awaitable[Any]:
        return await self.sender.send(
            (p.topic, None, p.record.key, p.record.value, list(p.record.headers))
            for p in publications
        )


class ConsumerFlow:
    """``Flow`` in aiokafka's own consumer, on faust's consumer thread.

    aiokafka stops fetching a paused topic partition and sets aside what it had
    fetched of it without counting it consumed, so after ``resume`` the partition
    goes on from the record after the last one delivered: nothing is passed over.
    (faust's own ``pause_partitions`` only stops handing records out, and passes
    over those it had fetched.) The aiokafka consumer lives on faust's consumer
    thread, so both calls run there (``call_thread``, first in first out); faust
    itself never pauses at that level. Only assigned partitions are touched.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def pause(self, topic: str, partition: int) -> None:
        await self._on_thread("pause", topic, partition)

    async def resume(self, topic: str, partition: int) -> None:
        await self._on_thread("resume", topic, partition)

    async def _on_thread(self, action: str, topic: str, partition: int) -> None:
        faust_consumer: Any = self.app.consumer
        thread = faust_consumer._thread  # faust offers no public form of either

        async def act() -> None:
            consumer = thread._ensure_consumer()
            for tp in consumer.assignment():  # aiokafka's own TopicPartition
                if tp.topic == topic and tp.partition == partition:
                    getattr(consumer, action)(tp)

        await thread.call_thread(act)


class FaustCommitter:
    """Commits the pipeline's offsets through the app's consumer (assigned ones)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def __call__(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        consumer: Any = self.app.consumer  # _commit, _committed_offset: see above
        assigned = consumer.assignment()
        wanted = {
            TP(topic, partition): offset
            for (topic, partition), offset in offsets.items()
            if TP(topic, partition) in assigned
        }
        if not wanted:
            return False
        done = bool(await consumer._commit(wanted))
        if done:
            # What the liveness check and faust's own bookkeeping read.
            consumer._committed_offset.update(wanted)
        return done


def _input(record: Any) -> InputRecord:
    """A kafka-python ``ConsumerRecord`` as the processor reads records."""
    return InputRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp / 1000.0,  # faust's messages carry seconds
        key=record.key,
        value=record.value,
        headers=[(name, value) for name, value in record.headers or ()],
    )
