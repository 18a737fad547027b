"""Reading what notify consumes: the deadlines contract, Kafka records, dead letters."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from notify_factories import approaching, clock_data, new_case, withdrawn

from notify.adapters.kafka_records import RawRecord, dead_letter_headers, read_record
from notify.application.inbound import (
    CLOCK_APPROACHING,
    CLOCK_OVERDUE,
    InboundEvent,
    read_clock_notice,
    read_withdrawal,
)
from notify.domain.alerts import AlertKind
from notify.errors import UnreadableMessage
from send_schemas.deadlines import AlertWithdrawn, ClockApproaching, ClockOverdue
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent


def test_the_deadlines_producer_models_are_what_notify_reads() -> None:
    # Built with the producer's own (strict) models, so a change to the contract
    # that notify cannot read fails here rather than in production.
    case = new_case()
    published = ClockApproaching.model_validate(clock_data(case))
    event = InboundEvent(
        id="ev-1",
        type=ClockApproaching.EVENT_TYPE,
        source="/send/deadlines",
        subject=case,
        data=published.model_dump(mode="json"),
    )

    notice = read_clock_notice(event)

    assert (notice.kind, notice.case_id, notice.lead) == (
        AlertKind.APPROACHING,
        case,
        5,
    )
    assert notice.title == "Decision whether to assess"
    assert notice.due_on == date(2025, 2, 17)
    assert ClockApproaching.EVENT_TYPE == CLOCK_APPROACHING
    assert ClockOverdue.EVENT_TYPE == CLOCK_OVERDUE


def test_a_withdrawal_names_the_clock_event_it_withdraws() -> None:
    case = new_case()
    event = withdrawn(case, "ev-withdrawn", "request date corrected")
    AlertWithdrawn.model_validate(event.data)

    withdrawal = read_withdrawal(event)

    assert (withdrawal.withdrawn_event_id, withdrawal.reason) == (
        "ev-withdrawn",
        "request date corrected",
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"due_on": "17/02/2025"}, "due_on"),
        ({"legal_basis": None}, "legal_basis"),
        ({"escalate": "perhaps"}, "escalate"),
    ],
)
def test_data_breaking_the_contract_is_unreadable(
    change: dict[str, object], expected: str
) -> None:
    event = approaching(new_case())
    event.data.update(change)

    with pytest.raises(UnreadableMessage, match=expected):
        read_clock_notice(event)


def test_a_case_id_that_is_not_a_case_id_is_unreadable() -> None:
    event = approaching(new_case())
    bad = InboundEvent(
        id=event.id,
        type=event.type,
        source=event.source,
        subject="Robert'); DROP TABLE cases;--",
        data={**event.data, "case_id": None},
    )

    with pytest.raises(UnreadableMessage, match="not a case id"):
        read_clock_notice(bad)


def test_subject_and_data_must_name_the_same_case() -> None:
    event = approaching(new_case())
    other = InboundEvent(
        id=event.id,
        type=event.type,
        source=event.source,
        subject=new_case(),
        data=event.data,
    )

    with pytest.raises(UnreadableMessage, match="same case"):
        read_clock_notice(other)


def kafka_record(case_id: str, **changes: object) -> RawRecord:
    event = RecordedEvent(
        id=str(uuid.uuid4()),
        stream_id=case_id,
        version=3,
        position=9,
        type=CLOCK_APPROACHING,
        source="/send/deadlines",
        time=datetime(2025, 2, 10, 9, tzinfo=UTC),
        data=clock_data(case_id),
        metadata=Metadata(correlation_id="corr-7"),
    )
    record = to_kafka(event)
    fields: dict[str, object] = {
        "topic": "send.deadlines.events",
        "partition": 2,
        "offset": 41,
        "key": record.key,
        "value": record.value,
        "headers": list(record.headers),
    }
    fields.update(changes)
    return RawRecord(**fields)  # type: ignore[arg-type]


def test_a_kernel_envelope_record_reads_as_an_inbound_event() -> None:
    case = new_case()

    event = read_record(kafka_record(case))

    assert (event.type, event.subject, event.correlation_id) == (
        CLOCK_APPROACHING,
        case,
        "corr-7",
    )
    assert event.data["legal_basis"] == "SEND Regulations 2014, reg 5(1)"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"value": b"not json"}, "not JSON"),
        ({"value": None}, "tombstone"),
        ({"headers": []}, "content-type is missing"),
        ({"value": b"[1, 2]"}, "not an object"),
    ],
)
def test_records_that_are_not_events_are_unreadable(
    changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(UnreadableMessage, match=reason):
        read_record(kafka_record(new_case(), **changes))


def test_dead_letter_headers_keep_the_original_and_say_why() -> None:
    record = kafka_record(new_case(), value=b"not json")

    headers = dead_letter_headers(record, "why " + "é" * 900, "UnreadableMessage")

    names = [name for name, _ in headers]
    assert names[: len(record.headers or [])] == [n for n, _ in record.headers or []]
    found = dict(headers)
    assert found["dlq_source_topic"] == b"send.deadlines.events"
    assert found["dlq_source_partition"] == b"2"
    assert found["dlq_source_offset"] == b"41"
    assert found["dlq_consumer"] == b"notify"
    assert found["dlq_error_type"] == b"UnreadableMessage"
    reason = found["dlq_reason"].decode("utf-8")
    assert reason.startswith("why é")
    assert len(found["dlq_reason"]) <= 1000
