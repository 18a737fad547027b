"""The pipeline's durability rules, without a broker: what it commits, and when, and
what it does with records the consumer skipped.

An offset is committed only once the clock events of the inputs below it, and then
the states and progress they imply, are acknowledged; the offsets committed are the
progress saved, never more. A record that jumps ahead of the offset expected next
makes the pipeline read the records in between (the consumer dropped them) and apply
them first; a jump over offsets that hold no record is passed over.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from deadlines.adapters.table_states import TableStates
from deadlines.application.partitioning import case_partition, progress_key
from deadlines.application.pipeline import DEFAULT_STALE_S, Offered, Pipeline
from deadlines.application.ports import InputRecord, Publication
from deadlines.application.processor import ClockProcessor
from deadlines.application.ticks import TICK_KEY, Tick, encode_tick
from deadlines.settings import DOMAIN_TOPICS
from send_schemas.topics import CLOCK_TICKS, INTAKE
from sendkit.envelope import from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent

TICKS = CLOCK_TICKS.name


class Topics:
    """Each topic partition as a list of records, offsets from 0."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], list[InputRecord]] = defaultdict(list)
        self._clock = itertools.count(1)

    def request(self, case: str) -> InputRecord:
        event = RecordedEvent(
            id=f"{case}/1",
            stream_id=case,
            version=1,
            position=1,
            type="send.intake.RequestReceived.v1",
            source="/send/intake",
            time=datetime(2025, 1, 6, 10, tzinfo=UTC),
            data={
                "case_id": case,
                "requester_type": "parent",
                "channel": "email",
                "received_at": "2025-01-06T10:00:00Z",
                "school_urn": 100001,
                "curriculum_year": 5,
            },
            metadata=Metadata(actor="ehcco-1", correlation_id=f"request-{case}"),
        )
        out = to_kafka(event)
        log = self.records[(INTAKE.name, case_partition(case))]
        record = InputRecord(
            topic=INTAKE.name,
            partition=case_partition(case),
            offset=len(log),
            timestamp=float(next(self._clock)),
            key=out.key,
            value=out.value,
            headers=list(out.headers),
        )
        log.append(record)
        return record

    def tick(self, partition: int, now: datetime) -> InputRecord:
        """A tick on ``partition`` whose barrier is every domain topic's end now."""
        log = self.records[(TICKS, partition)]
        after = {t: len(self.records[(t, partition)]) for t in DOMAIN_TOPICS}
        record = InputRecord(
            topic=TICKS,
            partition=partition,
            offset=len(log),
            timestamp=float(next(self._clock)),
            key=TICK_KEY,
            value=encode_tick(Tick(now, f"tick-{len(log)}", after)),
            headers=[],
        )
        log.append(record)
        return record

    def requests_on(self, partition: int, count: int) -> list[InputRecord]:
        """``count`` requests of new cases whose ids hash to ``partition``."""
        made: list[InputRecord] = []
        while len(made) < count:
            case = str(uuid.uuid4())
            if case_partition(case) == partition:
                made.append(self.request(case))
        return made

    async def end_offset(self, topic: str, partition: int) -> int:
        return len(self.records[(topic, partition)])

    async def start_offsets(
        self, topics: Iterable[str], partition: int
    ) -> dict[str, int]:
        return {topic: 0 for topic in topics}


class Refill:
    """Reads skipped records from the topics; ``holes`` are offsets with no record."""

    def __init__(self, topics: Topics, holes: set[int] | None = None) -> None:
        self.topics = topics
        self.holes = holes or set()
        self.asked: list[tuple[str, int, int, int]] = []

    async def read(
        self, topic: str, partition: int, start: int, stop: int
    ) -> list[InputRecord]:
        self.asked.append((topic, partition, start, stop))
        return [
            record
            for record in self.topics.records[(topic, partition)][start:stop]
            if record.offset not in self.holes
        ]


class Publisher:
    """Keeps what is published; deliveries resolve at once unless ``hold``."""

    def __init__(self) -> None:
        self.published: list[Publication] = []
        self.hold = False
        self.held: list[asyncio.Future[None]] = []

    async def publish(self, publication: Publication) -> asyncio.Future[None]:
        self.published.append(publication)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.hold:
            self.held.append(future)
        else:
            future.set_result(None)
        return future

    def decided_cases(self) -> list[str]:
        found = []
        for n, p in enumerate(self.published):
            record = InputRecord(
                p.topic, 0, n, 0.0, p.record.key, p.record.value, list(p.record.headers)
            )
            event = from_kafka(record)
            if event.name == "ClockSet" and event.data["clock_id"] == "decision":
                found.append(event.subject)
        return found


class Changelog:
    """A ``Write`` into a dict whose deliveries resolve only when ``release``d."""

    def __init__(self) -> None:
        self.table: dict[bytes, Any] = {}
        self.durable: dict[bytes, Any] = {}
        self.pending: list[tuple[asyncio.Future[None], bytes, Any]] = []

    def write(self, key: bytes, value: Any) -> Awaitable[Any]:
        self.table[key] = value
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((future, key, value))
        return future

    def release(self) -> None:
        for future, key, value in self.pending:
            self.durable[key] = value
            future.set_result(None)
        self.pending.clear()


class Harness:
    def __init__(
        self,
        *,
        refill: Refill | None,
        changelog: Changelog,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.topics = refill.topics if refill is not None else Topics()
        self.publisher = Publisher()
        self.changelog = changelog
        self.commits: list[dict[tuple[str, int], int]] = []
        self.acked: list[Any] = []
        states = TableStates(changelog.table, write=changelog.write)
        ticks = itertools.count()
        self.pipeline = Pipeline(
            states=states,
            processor=ClockProcessor(states),
            offsets=self.topics,
            publisher=self.publisher,
            ack=self._ack,
            commit=self._commit,
            refill=refill,
            domain_topics=DOMAIN_TOPICS,
            ticks_topic=TICKS,
            monotonic=monotonic or (lambda: next(ticks) * 1e-6),
        )

    async def _ack(self, handle: Any) -> None:
        self.acked.append(handle)

    async def _commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.commits.append(dict(offsets))


def saved_next(changelog: Changelog, partition: int) -> int:
    progress = orjson.loads(changelog.durable[progress_key(partition).encode()])
    return int(progress["next_offsets"][INTAKE.name])


async def test_records_the_consumer_skipped_are_read_and_applied_before_the_jump() -> (
    None
):
    topics = Topics()
    records = topics.requests_on(2, 6)
    refill = Refill(topics)
    changelog = Changelog()
    harness = Harness(refill=refill, changelog=changelog)

    # The consumer hands over offset 0, then drops 1..4 and goes on at 5.
    for record in (records[0], records[5]):
        await harness.pipeline.offer(record, record)
    drained = asyncio.ensure_future(harness.pipeline.drain())
    while not changelog.pending:
        await asyncio.sleep(0)
    changelog.release()
    await drained
    await harness.pipeline.settled()

    assert refill.asked == [(INTAKE.name, 2, 1, 5)]
    decided = harness.publisher.decided_cases()
    assert decided == [from_kafka(r).subject for r in records]
    assert saved_next(changelog, 2) == 6
    assert harness.commits[-1][(INTAKE.name, 2)] == 6
    # Only the consumer's own records are acknowledged; the refilled have no handle.
    assert harness.acked == [records[0], records[5]]


async def test_records_never_delivered_at_a_topics_end_are_read_when_it_is_quiet() -> (
    None
):
    # The consumer hands over the first request and the tick after all four, then
    # nothing: it passed over requests 1..3, and no later record shows the jump.
    topics = Topics()
    records = topics.requests_on(3, 4)
    tick = topics.tick(3, datetime(2025, 1, 7, 8, tzinfo=UTC))
    refill = Refill(topics)
    changelog = Changelog()
    now = [0.0]
    harness = Harness(refill=refill, changelog=changelog, monotonic=lambda: now[0])
    for record in (records[0], tick):
        await harness.pipeline.offer(record, record)

    async def drain() -> None:
        drained = asyncio.ensure_future(harness.pipeline.drain())
        while not drained.done():
            changelog.release()
            await asyncio.sleep(0)
        await drained

    await drain()
    assert refill.asked == []  # the tick waits for requests the broker holds
    now[0] = DEFAULT_STALE_S - 0.1
    await drain()
    assert refill.asked == []  # not quiet for long enough yet
    now[0] = DEFAULT_STALE_S + 0.1
    await drain()
    await drain()
    await harness.pipeline.settled()

    assert refill.asked == [(INTAKE.name, 3, 1, 4)]
    assert harness.publisher.decided_cases() == [from_kafka(r).subject for r in records]
    assert saved_next(changelog, 3) == 4
    assert harness.commits[-1][(TICKS, 3)] == 1


async def test_a_jump_over_offsets_that_hold_no_record_is_passed_over() -> None:
    topics = Topics()
    records = topics.requests_on(4, 4)
    refill = Refill(topics, holes={1, 2})
    changelog = Changelog()
    harness = Harness(refill=refill, changelog=changelog)

    for record in (records[0], records[3]):
        await harness.pipeline.offer(record, record)
    drained = asyncio.ensure_future(harness.pipeline.drain())
    while not changelog.pending:
        await asyncio.sleep(0)
    changelog.release()
    await drained
    await harness.pipeline.settled()

    decided = harness.publisher.decided_cases()
    assert decided == [from_kafka(records[0]).subject, from_kafka(records[3]).subject]
    assert harness.commits[-1][(INTAKE.name, 4)] == 4


async def test_no_commit_until_the_outputs_and_then_the_states_are_on_kafka() -> None:
    topics = Topics()
    records = topics.requests_on(1, 3)
    changelog = Changelog()
    harness = Harness(refill=Refill(topics), changelog=changelog)
    harness.publisher.hold = True

    for record in records:
        assert await harness.pipeline.offer(record, record) == Offered.QUEUED
    drained = asyncio.ensure_future(harness.pipeline.drain())
    while len(harness.publisher.held) < 3 * 3:  # each request sets three clocks
        await asyncio.sleep(0)
    await asyncio.sleep(0)

    # Clock events in flight: no state written, nothing acked or committed.
    assert changelog.pending == []
    assert changelog.table == {}
    assert harness.commits == []
    assert harness.acked == []

    for future in harness.publisher.held:
        future.set_result(None)
    while not changelog.pending:
        await asyncio.sleep(0)
    await asyncio.sleep(0)

    # States written but not yet acknowledged: still nothing acked or committed.
    assert progress_key(1).encode() in changelog.table
    assert harness.commits == []
    assert harness.acked == []

    changelog.release()
    await drained
    await harness.pipeline.settled()

    assert harness.acked == records
    assert harness.commits == [
        {
            (topic, 1): (3 if topic == INTAKE.name else 0)
            for topic in (*DOMAIN_TOPICS, TICKS)
        }
    ]
    assert saved_next(changelog, 1) == 3


async def test_a_redelivery_below_the_saved_progress_is_acknowledged_not_applied() -> (
    None
):
    topics = Topics()
    records = topics.requests_on(3, 2)
    changelog = Changelog()
    harness = Harness(refill=Refill(topics), changelog=changelog)
    for record in records:
        await harness.pipeline.offer(record, record)
    drained = asyncio.ensure_future(harness.pipeline.drain())
    while not changelog.pending:
        await asyncio.sleep(0)
    changelog.release()
    await drained
    await harness.pipeline.settled()
    published = len(harness.publisher.published)

    again = await harness.pipeline.offer(records[0], "again")

    assert again == Offered.APPLIED_BEFORE
    assert await harness.pipeline.drain() == 0
    assert len(harness.publisher.published) == published
