"""Consumed Kafka records to notify's inbound events, and dead letters back.

Reading uses the kernel's envelope (``sendkit.envelope.from_kafka``), so notify accepts
exactly the binary-mode CloudEvents the platform's producers write. A record it refuses
is copied to notify's dead-letter topic with its key, value and headers unchanged, plus
headers saying why and where it came from: the same ``dlq_*`` headers the kernel's
subscriber writes (``sendkit.subscriber``), so one tool reads every dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from notify.application.inbound import InboundEvent
from notify.errors import UnreadableMessage
from sendkit.envelope import InvalidEnvelope, format_time, from_kafka
from sendkit.events import utcnow

CONSUMER = "notify"

DLQ_REASON = "dlq_reason"
DLQ_ERROR_TYPE = "dlq_error_type"
DLQ_CONSUMER = "dlq_consumer"
DLQ_SOURCE_TOPIC = "dlq_source_topic"
DLQ_SOURCE_PARTITION = "dlq_source_partition"
DLQ_SOURCE_OFFSET = "dlq_source_offset"
DLQ_TIME = "dlq_time"
_DLQ_HEADERS = frozenset(
    {
        DLQ_REASON,
        DLQ_ERROR_TYPE,
        DLQ_CONSUMER,
        DLQ_SOURCE_TOPIC,
        DLQ_SOURCE_PARTITION,
        DLQ_SOURCE_OFFSET,
        DLQ_TIME,
    }
)

MAX_REASON_BYTES = 1000

Headers = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None


def header_list(headers: Headers) -> list[tuple[str, bytes | None]]:
    """Headers as a list of pairs, whatever shape the client library gave them in."""
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return [(str(name), value) for name, value in headers]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One consumed record, as bytes (the shape ``sendkit.envelope`` reads)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None


def read_record(record: RawRecord) -> InboundEvent:
    """The event a record carries; ``UnreadableMessage`` if it is not a CloudEvent."""
    try:
        received = from_kafka(record)
    except InvalidEnvelope as error:
        raise UnreadableMessage(str(error)) from error
    return InboundEvent(
        id=received.id,
        type=received.type,
        source=received.source,
        subject=received.subject,
        data=received.data,
        time=received.time,
        correlation_id=received.metadata.correlation_id,
    )


def dead_letter_headers(
    record: RawRecord, reason: str, error_type: str
) -> list[tuple[str, bytes]]:
    """The record's own headers, then why notify refused it and where it was read."""
    kept = [
        (name, value if value is not None else b"")
        for name, value in header_list(record.headers)
        if name not in _DLQ_HEADERS
    ]
    return [
        *kept,
        (DLQ_REASON, _truncated(reason)),
        (DLQ_ERROR_TYPE, error_type.encode()),
        (DLQ_CONSUMER, CONSUMER.encode()),
        (DLQ_SOURCE_TOPIC, record.topic.encode()),
        (DLQ_SOURCE_PARTITION, str(record.partition).encode()),
        (DLQ_SOURCE_OFFSET, str(record.offset).encode()),
        (DLQ_TIME, format_time(utcnow()).encode()),
    ]


def _truncated(text: str) -> bytes:
    # Cut on a character boundary, so the header stays valid UTF-8.
    return text.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore").encode()
