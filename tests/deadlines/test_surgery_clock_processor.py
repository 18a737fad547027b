"""The Local Area Surgery target, from intake's own commands through the processor.

Intake's application service (over its in-memory store) records the commands; its
recorded events go through the kernel's Kafka envelope, as intake's relay writes them,
into the deadlines pipeline exactly as the worker runs it (a dict for the faust table,
an in-memory log for the topics, a recording publisher). So the event intake publishes
is the one that stops the clock: presented within 6 weeks of receipt it is met,
presented later it is late, a corrected presentation date recomputes it, and the clock
is always marked local, never statutory, and never escalated.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any

from deadlines.adapters.table_states import TableStates
from deadlines.application.partitioning import case_partition
from deadlines.application.pipeline import Pipeline
from deadlines.application.ports import InputRecord, Publication
from deadlines.application.processor import ClockProcessor
from deadlines.application.ticks import TICK_KEY, Tick, encode_tick
from deadlines.settings import DOMAIN_TOPICS
from intake.application.service import IntakeService, new_case_id
from intake.domain import (
    CorrectRequest,
    ReceiveRequest,
    RecordDecision,
    RecordSurgeryPresentation,
    WithdrawRequest,
)
from intake.settings import SOURCE
from send_schemas.topics import CLOCK_TICKS, DEADLINES, INTAKE, PARTITIONS
from sendkit.calendar import LONDON
from sendkit.envelope import ReceivedEvent, from_kafka, to_kafka
from sendkit.store import InMemoryEventStore

CLOCK = "local_area_surgery"
PRESENTED = "send.intake.RequestPresentedAtSurgery.v1"
RECEIVED_AT = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)  # Mon 6 Jan: due Mon 17 Feb


def at_london(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), LONDON).astimezone(UTC)


class Clock:
    """Intake's clock, moved by the test to the day each command is recorded."""

    def __init__(self) -> None:
        self.now = RECEIVED_AT

    def __call__(self) -> datetime:
        return self.now


class Publisher:
    """Takes every record at once and keeps it."""

    def __init__(self) -> None:
        self.published: list[Publication] = []

    async def publish(self, publication: Publication) -> asyncio.Future[None]:
        self.published.append(publication)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class Offsets:
    def __init__(self, ends: dict[tuple[str, int], int]) -> None:
        self.ends = ends

    async def end_offset(self, topic: str, partition: int) -> int:
        return self.ends[(topic, partition)]

    async def start_offsets(
        self, topics: Iterable[str], partition: int
    ) -> dict[str, int]:
        return {topic: 0 for topic in topics}


class Platform:
    """Intake's service and the deadlines pipeline, joined by intake's envelope."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.store = InMemoryEventStore(SOURCE)
        self.intake = IntakeService(self.store, clock=self.clock)
        self.ends: dict[tuple[str, int], int] = defaultdict(int)
        self.publisher = Publisher()
        self._relayed = 0
        ticks = itertools.count()
        states = TableStates({})
        self.pipeline = Pipeline(
            states=states,
            processor=ClockProcessor(states, clock=lambda: RECEIVED_AT),
            offsets=Offsets(self.ends),
            publisher=self.publisher,
            ack=self._ack,
            domain_topics=DOMAIN_TOPICS,
            ticks_topic=CLOCK_TICKS.name,
            monotonic=lambda: next(ticks) * 1e-6,
        )

    async def _ack(self, record: InputRecord) -> None:
        return None

    def _append(
        self, topic: str, partition: int, key: bytes | None, value: bytes, headers: Any
    ) -> InputRecord:
        offset = self.ends[(topic, partition)]
        self.ends[(topic, partition)] = offset + 1
        return InputRecord(
            topic, partition, offset, float(offset), key, value, list(headers)
        )

    async def _deliver(self, records: Iterable[InputRecord]) -> None:
        for record in records:
            await self.pipeline.offer(record, record)
            await self.pipeline.drain()

    async def on(self, day: date, *commands: Any) -> None:
        """Record ``commands`` in intake on ``day``, then relay what they wrote."""
        self.clock.now = at_london(day)
        for command in commands:
            self.intake.handle(command, actor="ehcco-7")
        events = list(self.store.iter_all(after=self._relayed))
        if events:
            self._relayed = events[-1].position
        records = []
        for event in events:
            out = to_kafka(event)
            records.append(
                self._append(
                    INTAKE.name,
                    case_partition(event.stream_id),
                    out.key,
                    out.value,
                    out.headers,
                )
            )
        await self._deliver(records)

    async def tick(self, day: date) -> None:
        now = at_london(day, 8)
        tick_id = f"tick-{now.isoformat()}"
        records = []
        for partition in range(PARTITIONS):
            barrier = {t: self.ends[(t, partition)] for t in DOMAIN_TOPICS}
            value = encode_tick(Tick(now, tick_id, barrier))
            records.append(
                self._append(CLOCK_TICKS.name, partition, TICK_KEY, value, [])
            )
        await self._deliver(records)

    def surgery(self, case_id: str) -> list[ReceivedEvent]:
        """The surgery clock's events of the case, in the order published."""
        found = []
        for number, publication in enumerate(self.publisher.published):
            if publication.topic != DEADLINES.name:
                continue
            record = publication.record
            event = from_kafka(
                InputRecord(
                    DEADLINES.name,
                    0,
                    number,
                    0.0,
                    record.key,
                    record.value,
                    list(record.headers),
                )
            )
            if event.subject == case_id and event.data["clock_id"] == CLOCK:
                found.append(event)
        return found


def names(events: Iterable[ReceivedEvent]) -> list[str]:
    return [event.name for event in events]


def received(case_id: str) -> ReceiveRequest:
    return ReceiveRequest(
        case_id=case_id,
        requester_type="parent",
        child_reference="CHILD-0042",
        date_of_birth=date(2016, 5, 14),
        school_urn=123456,
        curriculum_year=3,
        channel="email",
        received_at=RECEIVED_AT,
    )


def presented(case_id: str, day: date) -> RecordSurgeryPresentation:
    return RecordSurgeryPresentation(case_id=case_id, presented_on=day)


def case() -> str:
    return new_case_id()


async def test_the_surgery_clock_is_set_local_and_never_statutory() -> None:
    platform = Platform()
    case_id = case()

    await platform.on(date(2025, 1, 6), received(case_id))

    [clock_set] = platform.surgery(case_id)
    assert clock_set.name == "ClockSet"
    assert clock_set.data["due_on"] == "2025-02-17"
    assert clock_set.data["statutory"] is False
    assert clock_set.data["authority"] == "local"
    assert clock_set.data["escalate"] is False


async def test_presented_within_six_weeks_the_target_is_met() -> None:
    platform = Platform()
    case_id = case()
    await platform.on(date(2025, 1, 6), received(case_id))

    await platform.on(date(2025, 2, 10), presented(case_id, date(2025, 2, 10)))
    await platform.tick(date(2025, 2, 18))

    assert names(platform.surgery(case_id)) == ["ClockSet", "ClockMet"]
    met = platform.surgery(case_id)[-1]
    assert met.data["stopped_on"] == "2025-02-10"
    assert met.data["stopped_by"] == PRESENTED
    assert (met.data["statutory"], met.data["authority"]) == (False, "local")


async def test_presented_on_the_due_day_is_still_met() -> None:
    platform = Platform()
    case_id = case()
    await platform.on(date(2025, 1, 6), received(case_id))

    await platform.on(date(2025, 2, 17), presented(case_id, date(2025, 2, 17)))

    assert names(platform.surgery(case_id))[-1] == "ClockMet"


async def test_presented_after_six_weeks_the_target_is_late_never_escalated() -> None:
    platform = Platform()
    case_id = case()
    await platform.on(date(2025, 1, 6), received(case_id))
    await platform.tick(date(2025, 2, 18))

    await platform.on(date(2025, 2, 24), presented(case_id, date(2025, 2, 24)))

    events = platform.surgery(case_id)
    assert "ClockOverdue" in names(events)
    overdue = next(e for e in events if e.name == "ClockOverdue")
    assert overdue.data["escalate"] is False
    late = events[-1]
    assert late.name == "ClockLate"
    assert late.data["stopped_on"] == "2025-02-24"
    assert late.data["stopped_by"] == PRESENTED
    assert late.data["days_late"] == 7
    assert (late.data["statutory"], late.data["authority"]) == (False, "local")


async def test_a_late_record_dated_in_time_before_a_late_decision_makes_it_met() -> (
    None
):
    # The decision came after the due date, but the surgery met in time; the
    # coordinator records that on the day of the decision, before the decision.
    platform = Platform()
    case_id = case()
    await platform.on(date(2025, 1, 6), received(case_id))

    await platform.on(
        date(2025, 2, 20),
        presented(case_id, date(2025, 2, 12)),
        RecordDecision(case_id, "agreed", date(2025, 2, 20)),
    )

    final = [
        e for e in platform.surgery(case_id) if e.name in ("ClockMet", "ClockLate")
    ]
    assert names(final) == ["ClockMet"]
    assert final[0].data["stopped_by"] == PRESENTED


async def test_correcting_a_late_presentation_to_a_date_in_time_makes_it_met() -> None:
    platform = Platform()
    case_id = case()
    await platform.on(date(2025, 1, 6), received(case_id))
    await platform.on(date(2025, 2, 24), presented(case_id, date(2025, 2, 24)))
    assert names(platform.surgery(case_id))[-1] == "ClockLate"

    await platform.on(
        date(2025, 2, 25),
        CorrectRequest(case_id, "presented_on", "2025-02-14", "The minutes say 14th."),
    )

    last = platform.surgery(case_id)[-1]
    assert last.name == "ClockMet"
    assert last.data["stopped_on"] == "2025-02-14"


async def test_without_a_presentation_a_decision_ends_it_a_withdrawal_cancels() -> None:
    platform = Platform()
    decided, withdrawn = case(), case()
    await platform.on(date(2025, 1, 6), received(decided), received(withdrawn))

    await platform.on(
        date(2025, 2, 14),
        RecordDecision(decided, "refused", date(2025, 2, 14)),
        WithdrawRequest(withdrawn, withdrawn_on=date(2025, 2, 14)),
    )

    assert platform.surgery(decided)[-1].data["stopped_by"] == (
        "send.intake.AssessmentRefused.v1"
    )
    assert names(platform.surgery(withdrawn))[-1] == "ClockCancelled"
