"""Recorded events to Kafka records and back, in CloudEvents 1.0 binary mode.

The Kafka protocol binding's binary mode puts the event's ``data`` as JSON in the record
value and every other attribute in a ``ce_<name>`` header (UTF-8 key and value), with
``datacontenttype`` carried as ``content-type``. The record key is the case id, which is
also the event's ``subject`` and its ``partitionkey`` extension, so one case's events
share a partition and keep their order. Besides the CloudEvents attributes, each record
carries these extensions:

=====================  ======================================================
``ce_actor``           pseudonymous staff id, or ``system``, that caused it
``ce_correlationid``   the id of the request the event belongs to
``ce_causationid``     the event or command that directly caused it, if known
``ce_sequence``        the event's version in its case stream, in decimal
=====================  ======================================================

Only ``data`` is published. The private part of a recorded event (names, dates of
birth, contact details, notes) stays in the owning service's store: ``to_kafka`` has no
way to send it.

``from_kafka`` reads a consumed record back into a ``ReceivedEvent`` and refuses, with
``InvalidEnvelope`` saying what is wrong, anything that is not such a record. Its
messages name headers and attributes, never payload content, so they are safe to log.
Structured-mode records (``content-type: application/cloudevents+json``) are refused:
nothing on this platform writes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

from sendkit.events import SPECVERSION, Metadata, RecordedEvent

CONTENT_TYPE = "application/json"
_CONTENT_TYPE_BYTES = CONTENT_TYPE.encode()
_SPECVERSION_BYTES = SPECVERSION.encode()

_REQUIRED = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "ce_actor",
    "ce_correlationid",
    "ce_sequence",
)
_TYPE_VERSION = re.compile(r"\.v([1-9][0-9]*)$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def _shown(value: str) -> str:
    # Header values of a bad record are echoed into logs: keep them short.
    return repr(value if len(value) <= 60 else value[:57] + "...")


class EnvelopeError(Exception):
    """Root of the envelope's errors."""


class InvalidEnvelope(EnvelopeError):
    """A consumed record is not a CloudEvent in this platform's binary-mode form."""

    def __init__(self, reason: str, *, topic: str, partition: int, offset: int) -> None:
        super().__init__(
            f"record {topic}[{partition}]@{offset} is not a valid CloudEvent: {reason}"
        )
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """What the relay hands to the producer: bytes only, so no serializer is needed."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class ConsumedRecord(Protocol):
    """The fields of a consumed record that ``from_kafka`` reads.

    kafka-python's ``ConsumerRecord`` has them; so can a test's own stand-in.
    """

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """An event read from a topic, with where it was read from."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: dict[str, Any]
    metadata: Metadata
    sequence: int
    topic: str
    partition: int
    offset: int
    key: str | None = None

    @property
    def case_id(self) -> str:
        return self.subject

    @property
    def schema_version(self) -> int:
        """The ``N`` of the type's ``.vN`` suffix."""
        match = _TYPE_VERSION.search(self.type)
        return int(match.group(1)) if match else 0

    @property
    def name(self) -> str:
        """The type without its prefix and version: ``RequestReceived``."""
        return self.type.rsplit(".", 2)[-2] if self.type.count(".") >= 2 else self.type


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC, microseconds and ``Z``: ``2026-03-01T09:30:00.000000Z``."""
    if value.tzinfo is None:
        raise ValueError(
            "event time has no time zone: record times as aware UTC datetimes "
            "(sendkit.events.utcnow())"
        )
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime; ``ValueError`` if it is not one.

    Fractions finer than a microsecond are truncated, as ``datetime`` cannot hold them.
    """
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError("not an RFC 3339 timestamp with a time zone")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, offset_h, offset_m = match.groups()[6:]
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zulu:
        zone = UTC
    else:
        delta = timedelta(hours=int(offset_h), minutes=int(offset_m))
        zone = timezone(-delta if sign == "-" else delta)
    return datetime(year, month, day, hour, minute, second, micro, zone).astimezone(UTC)


def encode_data(data: dict[str, Any]) -> bytes:
    """The record value: compact JSON, keys sorted, so a repeat is byte-identical."""
    return json.dumps(
        data, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).encode()


def to_kafka(event: RecordedEvent) -> OutgoingRecord:
    """The binary-mode Kafka record of a recorded event (its private part left out)."""
    return binary_record(
        case_id=event.stream_id,
        event_id=event.id,
        source=event.source,
        event_type=event.type,
        time=format_time(event.time),
        actor=event.metadata.actor,
        correlation_id=event.metadata.correlation_id,
        causation_id=event.metadata.causation_id,
        sequence=event.version,
        value=encode_data(event.data),
    )


def binary_record(
    *,
    case_id: str,
    event_id: str,
    source: str,
    event_type: str,
    time: str,
    actor: str,
    correlation_id: str,
    causation_id: str | None,
    sequence: int,
    value: bytes,
) -> OutgoingRecord:
    """The binary-mode record of an event given as its attributes, already checked.

    ``time`` is the text ``format_time`` makes and ``value`` the data as
    ``encode_data`` makes it. ``to_kafka`` is this over a validated event; a
    producer that makes many events from values it built itself (the deadlines
    processor) calls it directly and spares the validation.
    """
    key = case_id.encode()
    headers = [
        ("ce_specversion", _SPECVERSION_BYTES),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", time.encode()),
        ("ce_subject", key),
        ("ce_partitionkey", key),
        ("content-type", _CONTENT_TYPE_BYTES),
        ("ce_actor", actor.encode()),
        ("ce_correlationid", correlation_id.encode()),
    ]
    if causation_id is not None:
        headers.append(("ce_causationid", causation_id.encode()))
    headers.append(("ce_sequence", str(sequence).encode()))
    return OutgoingRecord(key=key, value=value, headers=headers)


def from_kafka(record: ConsumedRecord) -> ReceivedEvent:
    """Read a consumed record as an event, or raise ``InvalidEnvelope`` saying why."""

    def invalid(reason: str) -> InvalidEnvelope:
        return InvalidEnvelope(
            reason, topic=record.topic, partition=record.partition, offset=record.offset
        )

    # Headers: each one once, UTF-8, and the required ones present.
    found: dict[str, str] = {}
    for name, raw in record.headers or ():
        lowered = name.lower()
        if not (lowered.startswith("ce_") or lowered == "content-type"):
            continue
        if lowered in found:
            raise invalid(f"header {name} appears more than once")
        if raw is None:
            raise invalid(f"header {name} has no value")
        try:
            found[lowered] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid(f"header {name} is not UTF-8") from None
    content_type = found.get("content-type")
    if content_type is None:
        raise invalid("header content-type is missing")
    if content_type.lower().startswith("application/cloudevents"):
        raise invalid(
            "structured mode is not accepted; send binary mode (ce_* headers)"
        )
    if content_type.split(";")[0].strip().lower() != CONTENT_TYPE:
        raise invalid(f"content-type is {_shown(content_type)}, not {CONTENT_TYPE!r}")
    missing = [name for name in _REQUIRED if not found.get(name)]
    if missing:
        raise invalid(f"missing header(s) {', '.join(missing)}")

    # Attributes.
    if found["ce_specversion"] != SPECVERSION:
        raise invalid(f"ce_specversion is {_shown(found['ce_specversion'])}, not '1.0'")
    if not _TYPE_VERSION.search(found["ce_type"]):
        raise invalid(f"ce_type {_shown(found['ce_type'])} does not end in .v<N>")
    try:
        time = parse_time(found["ce_time"])
    except ValueError:
        raise invalid(f"ce_time {_shown(found['ce_time'])} is not RFC 3339") from None
    sequence_text = found["ce_sequence"]
    if not sequence_text.isascii() or not sequence_text.isdigit():
        raise invalid(f"ce_sequence {_shown(sequence_text)} is not a positive integer")
    sequence = int(sequence_text)
    if sequence < 1:
        raise invalid(f"ce_sequence {_shown(sequence_text)} is not a positive integer")

    # Value: a JSON object.
    if record.value is None:
        raise invalid("the record has no value (a tombstone), so no event data")
    try:
        # JSON exchanged between systems is UTF-8 (RFC 8259); json.loads would guess
        # UTF-16 or UTF-32 from leading zero bytes, so decode first.
        data = json.loads(record.value.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid("the value is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise invalid(
            f"the value is not JSON ({error.msg} at character {error.pos})"
        ) from None
    if not isinstance(data, dict):
        raise invalid(f"the value is JSON {type(data).__name__}, not an object")

    key = None
    if record.key is not None:
        try:
            key = record.key.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("the record key is not UTF-8") from None

    return ReceivedEvent(
        id=found["ce_id"],
        type=found["ce_type"],
        source=found["ce_source"],
        subject=found["ce_subject"],
        time=time,
        data=data,
        metadata=Metadata(
            actor=found["ce_actor"],
            correlation_id=found["ce_correlationid"],
            causation_id=found.get("ce_causationid") or None,
        ),
        sequence=sequence,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
    )
