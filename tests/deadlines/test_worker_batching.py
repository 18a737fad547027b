"""The worker's batched writes, without a broker: the producer batches of
``BatchSender``, the case states ``TableStates`` sets aside and writes once, and a
pipeline whose next drain goes on while the one before waits for Kafka.

The pipeline's durability rule still holds with drains overlapping: an offset is
committed only once the clock events of the inputs below it, and then the states and
progress they imply, are acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from datetime import date
from typing import Any

import orjson
from test_worker_durability import Changelog, Harness, Refill, Topics, saved_next

from deadlines.adapters.faust_ports import BatchSender, FaustPublisher
from deadlines.adapters.table_states import TableStates
from deadlines.application.partitioning import case_partition, key_partition
from deadlines.application.ports import Publication, StoredCase
from deadlines.domain.engine import CaseState
from send_schemas.topics import INTAKE
from sendkit.envelope import OutgoingRecord


class FakeBatch:
    """An aiokafka ``BatchBuilder`` that holds at most ``room`` records."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes | None, bytes | None, list[Any]]] = []

    def append(
        self,
        *,
        timestamp: float | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Any],
    ) -> object | None:
        assert timestamp is None  # the producer stamps the time of sending
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value, list(headers)))
        return object()


class FakeProducer:
    """aiokafka's producer as ``BatchSender`` uses it; batches resolve on ``ack``."""

    def __init__(self, room: int = 3, partitions: int = 6) -> None:
        self.room = room
        self.partitions = partitions
        self.sent: list[tuple[str, int, FakeBatch]] = []
        self.futures: list[asyncio.Future[None]] = []

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.room)

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        self.sent.append((topic, partition, batch))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def ack(self) -> None:
        for future in self.futures:
            if not future.done():
                future.set_result(None)


class FakeApp:
    def __init__(self, producer: FakeProducer) -> None:
        self.producer = type("FaustProducer", (), {"_producer": producer})()


def clock(case: str, n: int) -> Publication:
    return Publication(
        "out",
        OutgoingRecord(
            key=case.encode(),
            value=f'{{"n":{n}}}'.encode(),
            headers=[("ce_sequence", str(n).encode())],
        ),
    )


async def test_a_partitions_records_go_in_order_in_batches_of_their_own() -> None:
    producer = FakeProducer(room=3)
    app: Any = FakeApp(producer)
    publisher = FaustPublisher(app, BatchSender(app))
    cases = [f"case-{n}" for n in range(12)]
    publications = [clock(case, n) for n in range(1, 3) for case in cases]

    delivered = await publisher.publish_many(publications)

    by_partition: dict[int, list[tuple[bytes | None, bytes | None, list[Any]]]] = {}
    for topic, partition, batch in producer.sent:
        assert topic == "out"
        assert 1 <= len(batch.records) <= 3
        by_partition.setdefault(partition, []).extend(batch.records)
    for partition, records in by_partition.items():
        expected = [
            (p.record.key, p.record.value, list(p.record.headers))
            for p in publications
            if key_partition(p.record.key or b"", 6) == partition
        ]
        assert records == expected
    assert sum(len(r) for r in by_partition.values()) == len(publications)
    # One batch per three records at most: fewer sends than records.
    assert len(producer.sent) < len(publications)

    task = asyncio.ensure_future(delivered)
    await asyncio.sleep(0)
    assert not task.done()  # nothing is delivered until every batch is
    producer.ack()
    await task


def stored(case: str, published: int) -> StoredCase:
    return StoredCase(CaseState(case_id=case), published)


async def test_a_case_saved_twice_before_a_take_is_written_once_with_its_latest() -> (
    None
):
    written: list[list[tuple[bytes, Any]]] = []

    def write_many(items: Sequence[tuple[bytes, Any]]) -> Awaitable[Any]:
        written.append(list(items))
        return asyncio.sleep(0)

    states = TableStates({}, write_many=write_many)
    states.save("case-a", stored("case-a", 1))
    states.save("case-b", stored("case-b", 1))
    states.save("case-a", stored("case-a", 4))
    taken = states.take()
    states.save("case-a", stored("case-a", 5))  # the next drain's

    for delivery in states.write(taken):
        await delivery

    assert len(written) == 1
    values = dict(written[0])
    assert sorted(values) == [b"case-a", b"case-b"]
    assert orjson.loads(values[b"case-a"])["published"] == 4
    assert states.take() == {b"case-a": stored("case-a", 5)}


def test_a_case_taken_but_not_yet_written_is_among_its_partitions_cases() -> None:
    table: dict[bytes, Any] = {}
    states = TableStates(table, write_many=lambda items: asyncio.sleep(0))
    day = date(2025, 3, 3)
    states.save("case-new", StoredCase(CaseState(case_id="case-new", wake_on=day), 2))
    states.take()  # on its way to the changelog; not in the table yet

    assert table == {}
    assert states.waking(case_partition("case-new"), day) == ["case-new"]


# -- overlapping drains ------------------------------------------------------------


class HeldPublisher:
    """Keeps every delivery pending until ``release``."""

    def __init__(self) -> None:
        self.published: list[Publication] = []
        self.held: list[asyncio.Future[None]] = []

    async def publish(self, publication: Publication) -> Awaitable[Any]:
        return await self.publish_many([publication])

    async def publish_many(self, publications: Sequence[Publication]) -> Awaitable[Any]:
        self.published.extend(publications)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.held.append(future)
        return future

    def release(self) -> None:
        for future in self.held:
            if not future.done():
                future.set_result(None)


async def test_a_drain_goes_on_while_the_one_before_waits_and_commits_stay_behind() -> (
    None
):
    topics = Topics()
    changelog = Changelog()
    harness = Harness(refill=Refill(topics), changelog=changelog)
    publisher = HeldPublisher()
    harness.pipeline.publisher = publisher
    commits_seen: list[int] = []

    async def commit(offsets: Mapping[tuple[str, int], int]) -> None:
        # Never past what the changelog holds.
        committed = offsets[(INTAKE.name, 1)]
        assert committed <= saved_next(changelog, 1)
        commits_seen.append(committed)

    harness.pipeline.commit = commit
    first, second = topics.requests_on(1, 3), topics.requests_on(1, 2)

    for record in first:
        await harness.pipeline.offer(record, record)
    assert await harness.pipeline.drain(wait=False) == 3
    while not publisher.held:
        await asyncio.sleep(0)
    for record in second:
        await harness.pipeline.offer(record, record)
    # Applied while the first drain's clock events are still in flight.
    assert await harness.pipeline.drain(wait=False) == 2
    assert changelog.pending == []
    assert commits_seen == []
    assert harness.acked == []

    settled = asyncio.ensure_future(harness.pipeline.settled())
    while not settled.done():
        publisher.release()
        changelog.release()
        await asyncio.sleep(0)
    await settled

    assert harness.acked == [*first, *second]
    assert commits_seen[-1] == 5
    assert commits_seen == sorted(commits_seen)
    assert saved_next(changelog, 1) == 5
    decided = {p.record.key for p in publisher.published}
    assert decided == {r.key for r in [*first, *second]}
