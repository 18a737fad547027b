"""CloudEvents binary mode: recorded events to Kafka records and back, no broker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sendkit.envelope import (
    InvalidEnvelope,
    OutgoingRecord,
    format_time,
    from_kafka,
    parse_time,
    to_kafka,
)
from sendkit.events import Metadata, RecordedEvent

CASE = "case-7f3a"
WHEN = datetime(2026, 3, 1, 9, 30, 5, 123456, tzinfo=UTC)


def recorded(**changes: object) -> RecordedEvent:
    fields: dict[str, object] = {
        "id": "0b8f0c3e-6a51-4a57-9d0e-1f2e3d4c5b6a",
        "stream_id": CASE,
        "version": 3,
        "position": 41,
        "type": "send.intake.RequestReceived.v1",
        "source": "/send/intake",
        "time": WHEN,
        "data": {"school_urn": "100001", "year_group": 4, "received_on": "2026-03-01"},
        "metadata": Metadata("staff-17", "corr-1", "cmd-9"),
        "private": {"child_name": "Test Child", "date_of_birth": "2018-05-04"},
    }
    fields.update(changes)
    return RecordedEvent(**fields)  # type: ignore[arg-type]


@dataclass
class Record:
    """A consumed record as kafka-python gives one, built by hand."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None
    topic: str = "send.intake.events"
    partition: int = 2
    offset: int = 17


def consumed(outgoing: OutgoingRecord) -> Record:
    return Record(outgoing.key, outgoing.value, list(outgoing.headers))


def replace_header(
    record: Record, name: str, value: bytes | None, *, drop: bool = False
) -> Record:
    assert record.headers is not None
    headers = [(k, v) for k, v in record.headers if k != name]
    if not drop:
        headers.append((name, value))
    return Record(record.key, record.value, headers)


# --- to Kafka -------------------------------------------------------------------------


def test_the_record_carries_every_attribute_as_a_header() -> None:
    record = to_kafka(recorded())

    assert record.key == CASE.encode()
    assert dict(record.headers) == {
        "ce_specversion": b"1.0",
        "ce_id": b"0b8f0c3e-6a51-4a57-9d0e-1f2e3d4c5b6a",
        "ce_source": b"/send/intake",
        "ce_type": b"send.intake.RequestReceived.v1",
        "ce_time": b"2026-03-01T09:30:05.123456Z",
        "ce_subject": CASE.encode(),
        "ce_partitionkey": CASE.encode(),
        "content-type": b"application/json",
        "ce_actor": b"staff-17",
        "ce_correlationid": b"corr-1",
        "ce_causationid": b"cmd-9",
        "ce_sequence": b"3",
    }
    assert len(record.headers) == len(dict(record.headers))
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in record.headers)


def test_the_value_is_the_public_data_only() -> None:
    record = to_kafka(recorded())

    assert json.loads(record.value) == {
        "school_urn": "100001",
        "year_group": 4,
        "received_on": "2026-03-01",
    }
    assert b"Test Child" not in record.value
    assert b"2018-05-04" not in record.value
    assert all(b"Test Child" not in value for _, value in record.headers)


def test_a_missing_causation_id_is_left_out() -> None:
    record = to_kafka(recorded(metadata=Metadata("system", "corr-2", None)))

    names = [name for name, _ in record.headers]
    assert "ce_causationid" not in names
    assert dict(record.headers)["ce_actor"] == b"system"


def test_the_same_event_always_gives_the_same_bytes() -> None:
    first = to_kafka(recorded(data={"b": 1, "a": [2, 3]}))
    again = to_kafka(recorded(data={"a": [2, 3], "b": 1}))

    assert first == again
    assert first.value == b'{"a":[2,3],"b":1}'


def test_times_are_written_in_utc_with_a_z() -> None:
    london_summer = timezone(timedelta(hours=1))
    event = recorded(time=datetime(2026, 7, 1, 10, 0, tzinfo=london_summer))

    assert dict(to_kafka(event).headers)["ce_time"] == b"2026-07-01T09:00:00.000000Z"
    with pytest.raises(ValueError, match="time zone"):
        format_time(datetime(2026, 7, 1, 10, 0))  # noqa: DTZ001 - the point of the test


def test_non_ascii_data_is_utf8_json() -> None:
    record = to_kafka(recorded(data={"note_code": "Zoë"}))

    assert record.value == '{"note_code":"Zoë"}'.encode()


# --- from Kafka -----------------------------------------------------------------------


def test_a_record_reads_back_into_the_same_event() -> None:
    event = recorded()

    received = from_kafka(consumed(to_kafka(event)))

    assert received.id == event.id
    assert received.type == event.type
    assert received.source == "/send/intake"
    assert received.subject == CASE
    assert received.case_id == CASE
    assert received.key == CASE
    assert received.time == WHEN
    assert received.data == event.data
    assert received.metadata == Metadata("staff-17", "corr-1", "cmd-9")
    assert received.sequence == 3
    assert (received.topic, received.partition, received.offset) == (
        "send.intake.events",
        2,
        17,
    )
    assert received.schema_version == 1
    assert received.name == "RequestReceived"


def test_a_record_without_causation_reads_back_with_none() -> None:
    event = recorded(metadata=Metadata("system", "corr-2", None))

    assert from_kafka(consumed(to_kafka(event))).metadata.causation_id is None


def test_header_names_are_read_case_insensitively_and_charset_is_allowed() -> None:
    record = consumed(to_kafka(recorded()))
    assert record.headers is not None
    record.headers = [(name.upper(), value) for name, value in record.headers]
    record = replace_header(record, "CONTENT-TYPE", b"application/json; charset=utf-8")

    assert from_kafka(record).id == recorded().id


@pytest.mark.parametrize(
    "name",
    [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "ce_actor",
        "ce_correlationid",
        "ce_sequence",
    ],
)
def test_a_missing_required_header_is_named(name: str) -> None:
    record = replace_header(consumed(to_kafka(recorded())), name, None, drop=True)

    with pytest.raises(InvalidEnvelope, match=f"missing header\\(s\\) {name}"):
        from_kafka(record)


def test_every_missing_header_is_listed_at_once() -> None:
    record = Record(b"k", b"{}", [("content-type", b"application/json")])

    with pytest.raises(InvalidEnvelope) as raised:
        from_kafka(record)

    assert "ce_specversion" in raised.value.reason
    assert "ce_sequence" in raised.value.reason
    assert (raised.value.topic, raised.value.partition, raised.value.offset) == (
        "send.intake.events",
        2,
        17,
    )
    assert "send.intake.events[2]@17" in str(raised.value)


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("ce_type", b"send.intake.RequestReceived", "does not end in .v<N>"),
        ("ce_type", b"send.intake.RequestReceived.v0", "does not end in .v<N>"),
        ("ce_specversion", b"0.3", "not '1.0'"),
        ("ce_time", b"2026-03-01 09:30", "not RFC 3339"),
        ("ce_time", b"2026-03-01T09:30:00", "not RFC 3339"),
        ("ce_time", b"yesterday", "not RFC 3339"),
        ("ce_sequence", b"-1", "not a positive integer"),
        ("ce_sequence", b"0", "not a positive integer"),
        ("ce_sequence", b"three", "not a positive integer"),
        ("content-type", b"text/plain", "not 'application/json'"),
        ("content-type", b"application/cloudevents+json", "structured mode"),
        ("ce_id", b"\xff\xfe", "not UTF-8"),
        ("ce_id", b"", "missing header(s) ce_id"),
    ],
)
def test_a_bad_attribute_is_refused_with_the_reason(
    header: str, value: bytes, reason: str
) -> None:
    record = replace_header(consumed(to_kafka(recorded())), header, value)

    with pytest.raises(InvalidEnvelope) as raised:
        from_kafka(record)

    assert reason in raised.value.reason


def test_a_missing_content_type_is_refused() -> None:
    record = replace_header(
        consumed(to_kafka(recorded())), "content-type", None, drop=True
    )

    with pytest.raises(InvalidEnvelope, match="content-type is missing"):
        from_kafka(record)


def test_a_repeated_header_is_refused() -> None:
    record = consumed(to_kafka(recorded()))
    assert record.headers is not None
    record.headers.append(("ce_id", b"another-id"))

    with pytest.raises(InvalidEnvelope, match="ce_id appears more than once"):
        from_kafka(record)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x00\x9f garbage \xff", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'"text"', "JSON str, not an object"),
        (None, "no value"),
    ],
)
def test_a_bad_value_is_refused_with_the_reason(
    value: bytes | None, reason: str
) -> None:
    good = consumed(to_kafka(recorded()))
    record = Record(good.key, value, good.headers)

    with pytest.raises(InvalidEnvelope) as raised:
        from_kafka(record)

    assert reason in raised.value.reason


def test_garbage_without_headers_is_refused() -> None:
    with pytest.raises(InvalidEnvelope, match="content-type is missing"):
        from_kafka(Record(None, b"\x00\x01\x02", None))


def test_reasons_do_not_echo_the_payload() -> None:
    good = consumed(to_kafka(recorded()))
    record = Record(good.key, b'{"child_name": "Test Child", oops}', good.headers)

    with pytest.raises(InvalidEnvelope) as raised:
        from_kafka(record)

    assert "Test Child" not in str(raised.value)


def test_long_header_values_are_shortened_in_reasons() -> None:
    record = replace_header(consumed(to_kafka(recorded())), "ce_time", b"9" * 5000)

    with pytest.raises(InvalidEnvelope) as raised:
        from_kafka(record)

    assert len(str(raised.value)) < 200


# --- time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T09:30:05Z", datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC)),
        ("2026-03-01t09:30:05z", datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC)),
        ("2026-03-01T09:30:05.5Z", datetime(2026, 3, 1, 9, 30, 5, 500000, tzinfo=UTC)),
        (
            "2026-03-01T09:30:05.123456789Z",
            datetime(2026, 3, 1, 9, 30, 5, 123456, tzinfo=UTC),
        ),
        ("2026-07-01T10:00:00+01:00", datetime(2026, 7, 1, 9, 0, tzinfo=UTC)),
        ("2026-07-01T08:00:00-01:30", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_rfc3339_times_parse_to_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text)

    assert parsed == expected
    assert parsed.tzinfo == UTC


def test_time_survives_format_and_parse() -> None:
    assert parse_time(format_time(WHEN)) == WHEN
