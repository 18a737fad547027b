"""The deadlines processor without a broker: inputs in, clock events and dead letters.

The pipeline runs here exactly as in the worker, with a dict in place of the faust table
and an in-memory log in place of the topics: records get offsets per partition, ticks
carry the barrier the ticker would read, and the log answers end-offset questions. So
these tests cover the worked examples of STATUTORY_CLOCKS.md through the processor, the
published records, dead letters, the order of durability, and replays in orders the
broker might hand the topics over in.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import faust
import pytest
from aiokafka.partitioner import DefaultPartitioner as AioPartitioner
from deadlines_support import Step
from kafka.partitioner.default import DefaultPartitioner as KafkaPartitioner

from deadlines.adapters.table_states import DEFAULT_CACHE_CASES, TableStates
from deadlines.application.partitioning import (
    case_partition,
    is_progress_key,
    progress_key,
)
from deadlines.application.pipeline import DEFAULT_MAX_QUEUED, Flow, Offered, Pipeline
from deadlines.application.ports import InputRecord, Publication
from deadlines.application.processor import SOURCE, ClockProcessor
from deadlines.application.ticks import TICK_KEY, Tick, encode_tick
from deadlines.domain.engine import DEFAULT_CONFIG, EngineConfig
from deadlines.entrypoints.worker import ClocksWorker
from deadlines.settings import DOMAIN_TOPICS, DeadlinesSettings
from send_schemas.topics import CLOCK_TICKS, DEADLINES, PARTITIONS
from sendkit.calendar import LONDON
from sendkit.envelope import ReceivedEvent, from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent

INTAKE = "send.intake.events"
OWNER_TOPICS = {topic.split(".")[1]: topic for topic in DOMAIN_TOPICS}
"""The topic of each owning service: ``plans`` publishes on ``send.plans.events``."""
TICKS = CLOCK_TICKS.name
FAILED_AT = datetime(2026, 1, 1, tzinfo=UTC)


def case_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"case/{name}"))


def at_london(day: date, hour: int = 8) -> datetime:
    return datetime.combine(day, time(hour), LONDON).astimezone(UTC)


# An in-memory log of topics ---------------------------------------------------------


class Log:
    """Topics as lists per partition, with offsets, timestamps and end offsets."""

    def __init__(self) -> None:
        self.partitions: dict[tuple[str, int], list[InputRecord]] = defaultdict(list)
        self._clock = itertools.count(1)
        self._numbers: dict[str, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )

    def end(self, topic: str, partition: int) -> int:
        return len(self.partitions[(topic, partition)])

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]],
    ) -> InputRecord:
        record = InputRecord(
            topic=topic,
            partition=partition,
            offset=self.end(topic, partition),
            timestamp=float(next(self._clock)),
            key=key,
            value=value,
            headers=list(headers),
        )
        self.partitions[(topic, partition)].append(record)
        return record

    def event(
        self,
        case: str,
        name: str,
        data: dict[str, Any],
        *,
        when: datetime | None = None,
        service: str = "intake",
    ) -> InputRecord:
        """Publish an event of ``service`` (intake's by default) about ``case`` on
        that service's topic, as its relay would."""
        return self.publish(case, f"send.{service}.{name}.v1", data, when=when)

    def publish(
        self,
        case: str,
        event_type: str,
        data: Mapping[str, Any],
        *,
        when: datetime | None = None,
    ) -> InputRecord:
        """Publish an event of ``case`` on its owner's topic, as the owner's relay
        would: ``send.plans.PlanIssued.v1`` on ``send.plans.events``."""
        owner = event_type.split(".")[1]
        number = next(self._numbers[case])
        event = RecordedEvent(
            id=f"{case}/{number}",
            stream_id=case,
            version=number,
            position=number,
            type=event_type,
            source=f"/send/{owner}",
            time=when or datetime(2025, 1, 6, 10, tzinfo=UTC),
            data={"case_id": case, **data},
            metadata=Metadata(
                actor="ehcco-7", correlation_id=f"request-{case}-{number}"
            ),
        )
        out = to_kafka(event)
        return self.append(
            OWNER_TOPICS[owner], case_partition(case), out.key, out.value, out.headers
        )

    def request(self, case: str, received_at: str) -> InputRecord:
        return self.event(
            case,
            "RequestReceived",
            {
                "requester_type": "parent",
                "channel": "email",
                "received_at": received_at,
                "school_urn": 100001,
                "curriculum_year": 5,
            },
        )

    def tick(self, now: datetime) -> list[InputRecord]:
        """A round of ticks, each with the barrier the ticker would read now."""
        tick_id = f"tick-{now.isoformat()}"
        return [
            self.append(
                TICKS,
                partition,
                TICK_KEY,
                encode_tick(
                    Tick(
                        now,
                        tick_id,
                        {t: self.end(t, partition) for t in DOMAIN_TOPICS},
                    )
                ),
                [],
            )
            for partition in range(PARTITIONS)
        ]

    def all_records(self) -> list[InputRecord]:
        return [r for records in self.partitions.values() for r in records]


class LogOffsets:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.questions = 0

    async def end_offset(self, topic: str, partition: int) -> int:
        self.questions += 1
        return self.log.end(topic, partition)

    async def start_offsets(
        self, topics: Iterable[str], partition: int
    ) -> dict[str, int]:
        return {topic: 0 for topic in topics}


class Publisher:
    """Records what is published; each record is taken at once unless told to hold."""

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

    def clock_events(self) -> list[ReceivedEvent]:
        return [
            from_kafka(
                InputRecord(
                    p.topic, 0, n, 0.0, p.record.key, p.record.value, p.record.headers
                )
            )
            for n, p in enumerate(self.published)
            if p.topic == DEADLINES.name
        ]

    def dead_letters(self) -> list[Publication]:
        return [p for p in self.published if p.topic.endswith(".dlq")]


class Harness:
    """A pipeline over a dict table, the in-memory log and a recording publisher."""

    def __init__(
        self,
        log: Log,
        config: EngineConfig = DEFAULT_CONFIG,
        *,
        cache_cases: int = DEFAULT_CACHE_CASES,
        flow: Flow | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.log = log
        self.table: dict[bytes, Any] = {}
        self.acked: list[InputRecord] = []
        self.publisher = Publisher()
        self.offsets = LogOffsets(log)
        states = TableStates(self.table, cache_cases=cache_cases)
        ticks = itertools.count()
        self.pipeline = Pipeline(
            states=states,
            processor=ClockProcessor(states, config=config, clock=lambda: FAILED_AT),
            offsets=self.offsets,
            publisher=self.publisher,
            ack=self._ack,
            domain_topics=DOMAIN_TOPICS,
            ticks_topic=TICKS,
            monotonic=lambda: next(ticks) * 1e-6,  # always moving, never 30 s on
            flow=flow,
            max_queued=max_queued,
        )

    async def _ack(self, record: InputRecord) -> None:
        self.acked.append(record)

    async def deliver(self, records: Iterable[InputRecord]) -> None:
        for record in records:
            await self.pipeline.offer(record, record)
            await self.pipeline.drain()

    async def play(self, case: str, steps: Iterable[Step], today: date) -> date:
        """Deliver a case's story: each day a round of ticks, each fact an event.

        A fact is published as its owner's relay would, timed at 10:00 London on
        ``today``, the day of the latest tick (or the ``today`` given, before any).
        Returns the day the story ends on.
        """
        for step in steps:
            if isinstance(step, date):
                today = step
                await self.deliver(self.log.tick(at_london(today)))
            else:
                kind, data = step
                when = at_london(today, 10)
                await self.deliver([self.log.publish(case, kind, data, when=when)])
        return today

    def outputs(self, case: str | None = None) -> list[ReceivedEvent]:
        return [
            e
            for e in self.publisher.clock_events()
            if case is None or e.subject == case
        ]


def kinds(events: Iterable[ReceivedEvent]) -> list[tuple[str, str]]:
    return [(e.name, e.data["clock_id"]) for e in events]


def only(events: Iterable[ReceivedEvent], name: str, clock_id: str) -> ReceivedEvent:
    found = [e for e in events if e.name == name and e.data["clock_id"] == clock_id]
    assert len(found) == 1, f"expected one {name} of {clock_id}, got {kinds(found)}"
    return found[0]


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# Worked examples ----------------------------------------------------------------------


async def test_a_request_on_mon_6_jan_2025_sets_the_decision_due_mon_17_feb() -> None:
    log = Log()
    harness = Harness(log)
    case = case_id("jan6")

    request = log.request(case, "2025-01-06T10:00:00Z")
    await harness.deliver([request])

    decision = only(harness.outputs(), "ClockSet", "decision")
    assert decision.data["due_on"] == "2025-02-17"
    assert decision.data["act_by"] is None
    assert decision.data["started_on"] == "2025-01-06"
    assert decision.data["legal_basis"].startswith("SEND Regulations 2014 reg 5(1)")
    final = only(harness.outputs(), "ClockSet", "final_plan")
    assert (final.data["due_on"], final.data["act_by"]) == ("2025-05-26", "2025-05-23")
    assert harness.acked == [request]


async def test_the_clock_event_record_is_a_cloudevent_tied_to_its_cause() -> None:
    log = Log()
    harness = Harness(log)
    case = case_id("envelope")

    await harness.deliver([log.request(case, "2025-01-06T10:00:00Z")])

    publication = harness.publisher.published[0]
    headers = dict(publication.record.headers)
    assert publication.topic == "send.deadlines.events"
    assert publication.record.key == case.encode()
    assert headers["ce_source"] == SOURCE.encode()
    assert headers["ce_type"] == b"send.deadlines.ClockSet.v1"
    assert headers["ce_subject"] == case.encode()
    assert headers["content-type"] == b"application/json"
    assert headers["ce_correlationid"] == f"request-{case}-1".encode()
    assert headers["ce_causationid"] == f"{case}/1".encode()
    assert headers["ce_time"] == b"2025-01-06T10:00:00.000000Z"
    assert headers["ce_sequence"] == b"1"
    event = harness.outputs()[0]
    assert event.id == headers["ce_id"].decode()
    assert uuid.UUID(event.id).version == 5
    assert [e.sequence for e in harness.outputs()] == [1, 2, 3]


async def test_a_request_timestamped_2330z_on_30_march_was_received_on_31_march() -> (
    None
):
    log = Log()
    harness = Harness(log)

    await harness.deliver([log.request(case_id("bst"), "2025-03-30T23:30:00Z")])

    decision = only(harness.outputs(), "ClockSet", "decision")
    assert decision.data["started_on"] == "2025-03-31"
    assert decision.data["due_on"] == "2025-05-12"


async def test_ticks_raise_alerts_at_10_and_5_working_days_and_on_the_day() -> None:
    log = Log()
    harness = Harness(log)
    decided, undecided = case_id("decided"), case_id("undecided")
    await harness.deliver(
        [
            log.request(decided, "2025-01-06T10:00:00Z"),
            log.request(undecided, "2025-01-06T11:00:00Z"),
        ]
    )

    for day in days(date(2025, 1, 20), date(2025, 2, 25)):
        await harness.deliver(log.tick(at_london(day)))
        if day == date(2025, 2, 11):
            await harness.deliver(
                [log.event(decided, "AssessmentAgreed", {"notified_on": "2025-02-11"})]
            )

    alerts = [
        (e.name, e.data["lead_working_days"], e.data["alert_on"])
        for e in harness.outputs(undecided)
        if e.name == "ClockApproaching" and e.data["clock_id"] == "decision"
    ]
    assert alerts == [
        ("ClockApproaching", 10, "2025-02-03"),
        ("ClockApproaching", 5, "2025-02-10"),
        ("ClockApproaching", 0, "2025-02-17"),
    ]
    overdue = only(harness.outputs(undecided), "ClockOverdue", "decision")
    assert overdue.data["overdue_since"] == "2025-02-18"
    assert overdue.data["escalate"] is True
    assert overdue.time == at_london(date(2025, 2, 18))

    met = only(harness.outputs(decided), "ClockMet", "decision")
    assert met.data["stopped_on"] == "2025-02-11"
    assert met.data["stopped_by"] == "send.intake.AssessmentAgreed.v1"
    assert ("ClockOverdue", "decision") not in kinds(harness.outputs(decided))
    assert ("ClockSet", "no_plan_notice") in kinds(harness.outputs(decided))


async def test_a_correction_moves_the_due_date_and_withdraws_the_alert() -> None:
    log = Log()
    harness = Harness(log)
    case = case_id("corrected")
    await harness.deliver([log.request(case, "2025-01-06T10:00:00Z")])
    await harness.deliver(log.tick(at_london(date(2025, 2, 3))))
    approaching = only(harness.outputs(case), "ClockApproaching", "decision")

    await harness.deliver(
        [
            log.event(
                case,
                "RequestCorrected",
                {
                    "field": "received_at",
                    "old_value": "2025-01-06T10:00:00Z",
                    "new_value": "2025-01-13T10:00:00Z",
                },
            )
        ]
    )

    changed = only(harness.outputs(case), "ClockDueDateChanged", "decision")
    assert changed.data["previous_due_on"] == "2025-02-17"
    assert changed.data["due_on"] == "2025-02-24"
    withdrawn = only(harness.outputs(case), "AlertWithdrawn", "decision")
    assert withdrawn.data["alert_id"] == approaching.id


async def test_an_exception_flags_the_clock_keeps_its_date_and_stops_escalation() -> (
    None
):
    log = Log()
    harness = Harness(log)
    case = case_id("excepted")
    await harness.deliver([log.request(case, "2025-01-06T10:00:00Z")])

    await harness.deliver(
        [
            log.event(
                case, "TimeLimitExceptionRecorded", {"clock": "decision", "reason": "c"}
            )
        ]
    )
    await harness.deliver(log.tick(at_london(date(2025, 2, 18))))

    applied = only(harness.outputs(case), "ClockExceptionApplied", "decision")
    assert applied.data["reason"] == "c"
    assert applied.data["due_on"] == "2025-02-17"
    overdue = only(harness.outputs(case), "ClockOverdue", "decision")
    assert (overdue.data["exception_reason"], overdue.data["escalate"]) == ("c", False)


# Dead letters and ignored events ------------------------------------------------------


async def test_a_non_cloudevent_is_dead_lettered_and_the_rest_goes_on() -> None:
    log = Log()
    harness = Harness(log)
    case = case_id("after-junk")
    junk = log.append(INTAKE, case_partition(case), case.encode(), b"not json", [])

    await harness.deliver([junk, log.request(case, "2025-01-06T10:00:00Z")])

    [letter] = harness.publisher.dead_letters()
    headers = dict(letter.record.headers)
    assert letter.topic == "deadlines.send.intake.events.dlq"
    assert letter.record.value == b"not json"
    assert headers["dlq_error"] == b"invalid-envelope"
    assert headers["dlq_error_type"] == b"InvalidEnvelope"
    assert headers["dlq_consumer"] == b"deadlines"
    assert b"content-type" in headers["dlq_reason"]
    assert headers["dlq_source_topic"] == INTAKE.encode()
    assert headers["dlq_source_offset"] == b"0"
    assert ("ClockSet", "decision") in kinds(harness.outputs(case))
    assert harness.acked == [junk, *harness.acked[1:]]
    assert len(harness.acked) == 2


async def test_an_owned_event_with_data_the_rules_cannot_read_is_dead_lettered() -> (
    None
):
    log = Log()
    harness = Harness(log)
    case = case_id("bad-date")

    await harness.deliver(
        [log.event(case, "RequestReceived", {"received_at": "last tuesday"})]
    )

    [letter] = harness.publisher.dead_letters()
    assert dict(letter.record.headers)["dlq_error"] == b"unusable-event"
    assert harness.outputs() == []
    assert harness.table == {
        progress_key(case_partition(case)).encode(): harness.table[
            progress_key(case_partition(case)).encode()
        ]
    }


async def test_events_no_rule_reads_are_ignored_not_dead_lettered() -> None:
    log = Log()
    harness = Harness(log)
    case = case_id("assigned")

    await harness.deliver(
        [log.event(case, "CoordinatorAssigned", {"coordinator_id": "ehcco-7"})]
    )

    assert harness.publisher.published == []
    assert len(harness.acked) == 1


async def test_a_record_keyed_other_than_by_its_subject_is_dead_lettered() -> None:
    log = Log()
    harness = Harness(log)
    case = case_id("rekeyed")
    good = log.request(case, "2025-01-06T10:00:00Z")
    rekeyed = log.append(
        INTAKE, good.partition, b"someone-else", good.value, good.headers
    )

    await harness.deliver([rekeyed])

    [letter] = harness.publisher.dead_letters()
    assert dict(letter.record.headers)["dlq_error"] == b"key-mismatch"


async def test_an_unreadable_tick_is_dead_lettered_on_the_tick_topics_dlq() -> None:
    log = Log()
    harness = Harness(log)

    await harness.deliver([log.append(TICKS, 2, TICK_KEY, b'{"now": "soon"}', [])])

    [letter] = harness.publisher.dead_letters()
    assert letter.topic == "deadlines.send.clock.ticks.dlq"
    assert dict(letter.record.headers)["dlq_error"] == b"invalid-tick"


async def test_a_failure_of_the_processor_itself_dead_letters_and_goes_on() -> None:
    log = Log()
    harness = Harness(log)
    broken, fine = case_id("broken-state"), case_id("fine")
    harness.table[broken.encode()] = b'{"format":0}'  # by some other version

    await harness.deliver(
        [
            log.request(broken, "2025-01-06T10:00:00Z"),
            log.request(fine, "2025-01-06T10:00:00Z"),
        ]
    )

    [letter] = harness.publisher.dead_letters()
    headers = dict(letter.record.headers)
    assert headers["dlq_error"] == b"processing-error"
    assert headers["dlq_error_type"] == b"ValueError"
    assert ("ClockSet", "decision") in kinds(harness.outputs(fine))
    assert len(harness.acked) == 2


# Durability and redelivery ----------------------------------------------------------


async def test_state_is_written_and_inputs_acked_only_after_kafka_has_the_outputs() -> (
    None
):
    log = Log()
    harness = Harness(log)
    harness.publisher.hold = True
    case = case_id("durable")
    request = log.request(case, "2025-01-06T10:00:00Z")
    await harness.pipeline.offer(request, request)

    drain = asyncio.create_task(harness.pipeline.drain())
    await asyncio.sleep(0.01)

    assert len(harness.publisher.published) == 3
    assert harness.table == {}
    assert harness.acked == []
    for future in harness.publisher.held:
        future.set_result(None)
    assert await drain == 1
    assert case.encode() in harness.table
    assert harness.acked == [request]


async def test_a_redelivered_record_is_acknowledged_and_changes_nothing() -> None:
    log = Log()
    harness = Harness(log)
    request = log.request(case_id("again"), "2025-01-06T10:00:00Z")
    await harness.deliver([request])
    published = len(harness.publisher.published)

    # A restarted worker with the same table is handed the record again.
    restarted = Harness(log)
    restarted.table.update(harness.table)

    assert await restarted.pipeline.offer(request, request) is Offered.APPLIED_BEFORE
    assert restarted.acked == [request]
    assert await restarted.pipeline.drain() == 0
    assert len(harness.publisher.published) == published
    assert restarted.publisher.published == []


# Replays ------------------------------------------------------------------------------


def scenario() -> tuple[Log, list[list[InputRecord]], list[str]]:
    """Two cases through six weeks of daily ticks; one decided, one never.

    Returns the log, the records in the order they were published (in steps, as the
    first run saw them), and the case ids.
    """
    log = Log()
    decided, undecided = case_id("replay-decided"), case_id("replay-undecided")
    steps = [[log.request(decided, "2025-01-06T10:00:00Z")]]
    steps.append([log.request(undecided, "2025-01-07T10:00:00Z")])
    for day in days(date(2025, 1, 27), date(2025, 2, 21)):
        steps.append(log.tick(at_london(day)))
        if day == date(2025, 2, 12):
            steps.append(
                [log.event(decided, "AssessmentAgreed", {"notified_on": "2025-02-12"})]
            )
    return log, steps, [decided, undecided]


def histories(
    harness: Harness, cases: Sequence[str]
) -> dict[str, list[tuple[int, str]]]:
    return {
        case: [(event.sequence, event.id) for event in harness.outputs(case)]
        for case in cases
    }


@pytest.mark.parametrize(
    "order",
    ["ticks first", "events first", "newest first per topic interleaved"],
)
async def test_a_replay_in_any_topic_interleaving_re_emits_the_same_ids(
    order: str,
) -> None:
    log, steps, cases = scenario()
    first = Harness(log)
    for step in steps:
        await first.deliver(step)
    expected = histories(first, cases)
    assert len(expected[cases[0]]) > 5
    assert len(expected[cases[1]]) > 5

    # A fresh app id: empty table, every topic from offset 0, in another interleaving.
    everything = log.all_records()
    ticks = [r for r in everything if r.topic == TICKS]
    events = [r for r in everything if r.topic != TICKS]
    if order == "ticks first":
        replay_order = ticks + events
    elif order == "events first":
        replay_order = events + ticks
    else:
        by_tp: dict[tuple[str, int], list[InputRecord]] = defaultdict(list)
        for record in everything:
            by_tp[(record.topic, record.partition)].append(record)
        queues = sorted(by_tp.values(), key=len, reverse=True)
        replay_order = [
            r
            for batch in itertools.zip_longest(*queues)
            for r in batch
            if r is not None
        ]
    replay = Harness(log)
    await replay.deliver(replay_order)

    assert histories(replay, cases) == expected
    assert len(replay.acked) == len(everything)


async def test_a_processor_keeping_one_decoded_case_emits_what_keeping_all_does() -> (
    None
):
    # Every other case is read back from its bytes in the table, or from what was
    # saved but not yet written, whenever an event or a tick needs it.
    log, steps, cases = scenario()
    roomy, tight = Harness(log), Harness(log, cache_cases=1)
    for step in steps:
        await roomy.deliver(step)
        await tight.deliver(step)

    assert histories(tight, cases) == histories(roomy, cases)
    assert tight.table == roomy.table
    assert len(histories(roomy, cases)[cases[0]]) > 5


class PausingConsumer:
    """Hands over a log's records as a consumer that honours pauses would (``Flow``).

    It always takes the next record of the first topic partition in ``order`` that
    is not paused and has records left, so the ticks run as far ahead of the
    domain events as pauses let them; a paused topic partition keeps its place.
    """

    def __init__(self, log: Log, order: Sequence[str]) -> None:
        self.left = {
            tp: list(records) for tp, records in sorted(log.partitions.items())
        }
        self.order = sorted(self.left, key=lambda tp: (order.index(tp[0]), tp[1]))
        self.paused: set[tuple[str, int]] = set()
        self.pauses = 0

    async def pause(self, topic: str, partition: int) -> None:
        self.paused.add((topic, partition))
        self.pauses += 1

    async def resume(self, topic: str, partition: int) -> None:
        self.paused.discard((topic, partition))

    def next(self) -> InputRecord | None:
        for tp in self.order:
            if tp not in self.paused and self.left[tp]:
                return self.left[tp].pop(0)
        return None


async def test_a_consumer_far_ahead_is_paused_and_the_replay_still_applies_all() -> (
    None
):
    log, steps, cases = scenario()
    first = Harness(log)
    for step in steps:
        await first.deliver(step)
    expected = histories(first, cases)

    # The ticks first: each waits for domain events the consumer has not read.
    async def replay(pausing: bool) -> tuple[Harness, PausingConsumer, int]:
        consumer = PausingConsumer(log, [TICKS, *DOMAIN_TOPICS])
        harness = Harness(log, flow=consumer if pausing else None, max_queued=3)
        most_held = 0
        while (record := consumer.next()) is not None:
            await harness.pipeline.offer(record, record)
            held = (harness.pipeline.queued(*tp) for tp in log.partitions)
            most_held = max(most_held, *held)
            await harness.pipeline.drain()
        return harness, consumer, most_held

    paused, consumer, most_held = await replay(pausing=True)
    unbounded, _, held_unbounded = await replay(pausing=False)

    assert histories(paused, cases) == expected
    assert histories(unbounded, cases) == expected
    assert len(paused.acked) == len(log.all_records())
    assert consumer.pauses > 0
    assert consumer.paused == set()
    assert paused.pipeline.paused() == set()
    # A paused topic partition held at most max_queued + 1 of its records; without
    # pauses a tick partition held most of its ticks.
    assert most_held == 4
    assert held_unbounded > 20


async def test_a_rebalance_resumes_every_paused_topic_partition() -> None:
    log = Log()
    consumer = PausingConsumer(log, [TICKS, *DOMAIN_TOPICS])
    harness = Harness(log, flow=consumer, max_queued=1)
    for tick in log.tick(at_london(date(2025, 1, 6))) + log.tick(
        at_london(date(2025, 1, 7))
    ):
        await harness.pipeline.offer(tick, tick)
    # No drain has run, so every tick partition holds two ticks and is paused.
    assert len(consumer.paused) == PARTITIONS

    await harness.pipeline.forget()

    assert consumer.paused == set()
    assert harness.pipeline.paused() == set()


# Partitioning -------------------------------------------------------------------------


class _Cluster:
    """The little of kafka-python's ClusterMetadata its default partitioner reads."""

    def topics(self) -> set[str]:
        return {INTAKE}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))


def test_case_partition_agrees_with_kafka_python_and_aiokafka_partitioners() -> None:
    all_partitions = list(range(PARTITIONS))
    kafka_python = KafkaPartitioner()
    aiokafka = AioPartitioner()

    for number in range(2000):
        case = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"case-{number}"))
        key = case.encode()
        expected = kafka_python.partition(INTAKE, case, key, None, None, _Cluster())
        assert aiokafka(key, all_partitions, all_partitions) == expected
        assert case_partition(case) == expected


def test_every_partition_has_a_progress_key_that_hashes_to_it() -> None:
    for partition in range(PARTITIONS):
        key = progress_key(partition)
        assert is_progress_key(key)
        assert case_partition(key) == partition


def test_the_worker_table_and_outputs_use_the_producers_partitioning() -> None:
    worker = ClocksWorker(DeadlinesSettings(app_id="partition-check"))
    app: faust.App = worker.app
    partitioner = app.conf.producer_partitioner
    all_partitions = list(range(PARTITIONS))

    assert worker.table.use_partitioner is True
    assert worker.table.key_serializer == "raw"
    assert worker.table.partitions == PARTITIONS
    for number in range(500):
        key = str(uuid.uuid5(uuid.NAMESPACE_OID, f"case-{number}")).encode()
        expected = AioPartitioner()(key, all_partitions, all_partitions)
        assert partitioner(key, all_partitions, all_partitions) == expected
