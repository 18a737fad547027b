"""Applies one input (a domain event or a tick) to the engine and says what to publish.

A domain event is read with the kernel's envelope parser, applied to its case's state
with ``engine.apply``, and each output becomes a CloudEvents record on
``send.deadlines.events``: key and subject the case id, ``ce_id`` the engine's
deterministic id, ``ce_source`` ``/send/deadlines``, ``ce_time`` the time of what caused
it (the input event's own ``ce_time``, or the tick's ``now``), the input's correlation
id, and the input's id as ``ce_causationid``. So a replay re-emits byte-identical
records. A tick on partition ``p`` runs ``engine.tick`` for every case of ``p`` that has
an open clock.

A record the processor cannot use goes to its dead-letter topic
(``deadlines.<source topic>.dlq``) with the original key, value and headers and
``dlq_*`` headers saying why: not a CloudEvent, keyed or partitioned other than by its
subject, data the rules cannot read (the engine's ``UnusableEvent``), an unreadable
tick, or an error of the processor itself. Events of types no rule reads are ignored.

Events are applied with the partition's latest tick as "now", so a clock set after
its lead times or due date is alerted at once; a tick that brings a case nothing leaves
the very same state, which is not written back. Each event is applied with its own
``ce_time``, from which the engine takes the day a clock with no starting date of its
own was set (``engine.CaseEvent``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from deadlines.application.partitioning import case_partition
from deadlines.application.ports import (
    CaseStates,
    InputRecord,
    Publication,
    StoredCase,
    compact_json,
)
from deadlines.application.sequencer import Pending, Progress
from deadlines.domain import engine
from deadlines.domain.engine import CaseEvent, Emitted, EngineConfig
from deadlines.domain.errors import DeadlinesError, UnusableEvent
from send_schemas.topics import DEADLINES, dead_letter_topic
from sendkit.calendar import london_date
from sendkit.envelope import (
    InvalidEnvelope,
    OutgoingRecord,
    binary_record,
    format_time,
    from_kafka,
)
from sendkit.events import SYSTEM_ACTOR, utcnow

log = logging.getLogger(__name__)

SOURCE = "/send/deadlines"
"""The CloudEvents ``source`` of every clock event."""

CONSUMER = "deadlines"

# Reasons a record is dead-lettered, in the ``dlq_error`` header.
INVALID_ENVELOPE = "invalid-envelope"
KEY_MISMATCH = "key-mismatch"
WRONG_PARTITION = "wrong-partition"
UNUSABLE_EVENT = "unusable-event"
INVALID_TICK = "invalid-tick"
PROCESSING_ERROR = "processing-error"

_ERROR_TYPES = {
    INVALID_ENVELOPE: "InvalidEnvelope",
    KEY_MISMATCH: "KeyMismatch",
    WRONG_PARTITION: "WrongPartition",
    UNUSABLE_EVENT: "UnusableEvent",
    INVALID_TICK: "InvalidTick",
    PROCESSING_ERROR: "ProcessingError",
}


@dataclass(frozen=True, slots=True)
class Cause:
    """What an output answers to: its correlation and causation ids and its time
    (``time_text``: as ``ce_time`` carries it, made once for all its outputs)."""

    event_id: str
    correlation_id: str
    time: datetime
    time_text: str

    @classmethod
    def of(cls, event_id: str, correlation_id: str, time: datetime) -> Cause:
        return cls(event_id, correlation_id, time, format_time(time))


class ClockProcessor:
    """Turns inputs into engine calls, state saves and publications."""

    def __init__(
        self,
        states: CaseStates,
        *,
        config: EngineConfig = engine.DEFAULT_CONFIG,
        partitions: int = DEADLINES.partitions,
        output_topic: str = DEADLINES.name,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.states = states
        self.output_topic = output_topic
        self.config = config
        self.partitions = partitions
        self.clock = clock

    def handle(self, item: Pending, progress: Progress) -> list[Publication]:
        """Apply one input whose turn has come; return what to publish."""
        record: InputRecord = item.record
        try:
            if item.is_tick:
                return self._tick(item, progress)
            return self._event(record, progress)
        except Exception as error:
            log.exception(
                "processing failed: record dead-lettered",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": type(error).__name__,
                },
            )
            return [
                self.dead_letter(
                    record,
                    PROCESSING_ERROR,
                    f"the processor failed with {type(error).__name__}; the "
                    "worker's log has the traceback",
                    type(error).__name__,
                )
            ]

    # Domain events ------------------------------------------------------------------

    def _event(self, record: InputRecord, progress: Progress) -> list[Publication]:
        try:
            event = from_kafka(record)
        except InvalidEnvelope as error:
            return [self.dead_letter(record, INVALID_ENVELOPE, error.reason)]
        case_id = event.subject
        if event.key != case_id:
            return [
                self.dead_letter(
                    record,
                    KEY_MISMATCH,
                    "the record key is not the event's subject (the case id); key "
                    "every record by its case id",
                )
            ]
        expected = case_partition(case_id, self.partitions)
        if expected != record.partition:
            return [
                self.dead_letter(
                    record,
                    WRONG_PARTITION,
                    f"the record is on partition {record.partition} but its key "
                    f"hashes to {expected}; use the default (murmur2) partitioner",
                )
            ]

        stored = self.states.load(case_id)
        state = stored.state if stored is not None else None
        published = stored.published if stored is not None else 0
        try:
            new, outputs = engine.apply(
                state,
                CaseEvent(event.id, event.type, case_id, event.data, event.time),
                self.config,
                now=progress.now,
            )
        except UnusableEvent as error:
            return [self.dead_letter(record, UNUSABLE_EVENT, error.problem)]
        except DeadlinesError as error:
            return [self.dead_letter(record, UNUSABLE_EVENT, str(error))]
        if new is state or (stored is None and not new.facts):
            return []  # a type no rule reads, or a repeat: nothing changed

        cause = Cause.of(event.id, event.metadata.correlation_id, event.time)
        publications = self._publish(case_id, published, outputs, cause)
        self.states.save(case_id, StoredCase(new, published + len(outputs)))
        return publications

    # Ticks ----------------------------------------------------------------------

    def _tick(self, item: Pending, progress: Progress) -> list[Publication]:
        record: InputRecord = item.record
        if item.tick is None:
            return [
                self.dead_letter(record, INVALID_TICK, item.tick_error or "not a tick")
            ]
        now = progress.now or item.tick.now
        tick_id = item.tick.tick_id or f"tick-{record.partition}-{record.offset}"
        cause = Cause.of(f"{tick_id}:{record.partition}", tick_id, item.tick.now)
        publications: list[Publication] = []
        failed: list[str] = []
        today = london_date(now)
        # Each state names the first day a tick could bring it anything; most cases,
        # on most days, are passed over without being read.
        for case_id in self.states.waking(record.partition, today):
            stored = self.states.load(case_id)
            if stored is None:
                continue
            try:
                new, outputs = engine.tick(stored.state, now, self.config)
            except DeadlinesError:
                log.exception("tick failed for a case", extra={"case_id": case_id})
                failed.append(case_id)
                continue
            if new is stored.state:
                continue  # the usual case: this day brings the case nothing
            publications.extend(
                self._publish(case_id, stored.published, outputs, cause)
            )
            self.states.save(case_id, StoredCase(new, stored.published + len(outputs)))
        if failed:
            publications.append(
                self.dead_letter(
                    record,
                    PROCESSING_ERROR,
                    f"the tick failed for {len(failed)} case(s), first "
                    f"{', '.join(failed[:5])}; the other cases were ticked",
                )
            )
        return publications

    # Records --------------------------------------------------------------------

    def _publish(
        self, case_id: str, published: int, outputs: Sequence[Emitted], cause: Cause
    ) -> list[Publication]:
        return [
            Publication(
                self.output_topic,
                clock_record(output, sequence=published + number, cause=cause),
            )
            for number, output in enumerate(outputs, start=1)
        ]

    def dead_letter(
        self,
        record: InputRecord,
        error: str,
        reason: str,
        error_type: str | None = None,
    ) -> Publication:
        """The dead-letter record of ``record``: the original plus ``dlq_*`` headers.

        The headers are those of the kernel's subscriber (``dlq_reason``,
        ``dlq_error_type``, ``dlq_consumer``, ``dlq_source_*``), so one operator tool
        reads both, plus ``dlq_error``, this processor's code for the reason.
        """
        log.warning(
            "record dead-lettered: %s",
            reason,
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "dlq_error": error,
            },
        )
        headers: list[tuple[str, bytes]] = [
            (name, value) for name, value in record.headers if value is not None
        ]
        headers += [
            ("dlq_error", error.encode()),
            ("dlq_error_type", (error_type or _ERROR_TYPES[error]).encode()),
            ("dlq_reason", reason.encode()),
            ("dlq_consumer", CONSUMER.encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_failed_at", self.clock().isoformat().encode()),
        ]
        return Publication(
            dead_letter_topic(CONSUMER, record.topic),
            OutgoingRecord(
                key=record.key or b"", value=record.value or b"", headers=headers
            ),
        )


def clock_record(output: Emitted, *, sequence: int, cause: Cause) -> OutgoingRecord:
    """The CloudEvents binary-mode record of one engine output.

    The same record ``to_kafka`` makes of the event as a ``RecordedEvent``, without
    validating again what the engine made: the data is encoded by orjson straight
    from the engine's values, with the keys sorted, which is byte for byte what
    ``encode_data`` writes for the types a clock event holds (strings, whole
    numbers, booleans, dates, string enums and tuples of them; a test compares
    the two over every kind of clock event).
    """
    return binary_record(
        case_id=output.case_id,
        event_id=output.id,
        source=SOURCE,
        event_type=output.type,
        time=cause.time_text,
        actor=SYSTEM_ACTOR,
        correlation_id=cause.correlation_id,
        causation_id=cause.event_id,
        sequence=sequence,
        value=compact_json(output.values(), option=orjson.OPT_SORT_KEYS),
    )
