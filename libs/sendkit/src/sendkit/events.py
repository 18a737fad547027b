"""The event envelope every service records and publishes.

An event has a public part (``data``), which is the published contract and goes on
the owner's Kafka topic, and an optional private part (``private``), which holds
personal details that stay in the owning service's store and are never published. The
envelope attributes follow CloudEvents 1.0; ``Metadata`` names who caused the event and
ties it to the request and event that led to it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SPECVERSION = "1.0"
SYSTEM_ACTOR = "system"

_TYPE_PATTERN = re.compile(
    r"^[a-z][a-z0-9]*(\.[a-z][a-z0-9-]*)*\.[A-Z][A-Za-z0-9]*\.v[1-9][0-9]*$"
)


def check_event_type(event_type: str) -> str:
    """Return ``event_type`` if it has the form ``send.<owner>.<PastTense>.v<N>``."""
    if not _TYPE_PATTERN.match(event_type):
        raise ValueError(
            f"event type {event_type!r} must look like "
            "'send.intake.RequestReceived.v1': a dotted lowercase prefix, "
            "a PascalCase past-tense name, and '.v<N>'"
        )
    return event_type


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Metadata:
    """Who caused an event and what led to it.

    ``actor`` is a pseudonymous staff id or ``"system"``; ``correlation_id`` is
    carried from the originating HTTP request; ``causation_id`` is the id of the event
    or command that directly caused this one.
    """

    actor: str = SYSTEM_ACTOR
    correlation_id: str = field(default_factory=new_id)
    causation_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a command handler has decided on, not yet appended."""

    type: str
    data: dict[str, Any]
    metadata: Metadata = field(default_factory=Metadata)
    private: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_event_type(self.type)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: its CloudEvents id, stream version and global position."""

    id: str
    stream_id: str
    version: int
    position: int
    type: str
    source: str
    time: datetime
    data: dict[str, Any]
    metadata: Metadata
    private: dict[str, Any] | None = None

    @property
    def subject(self) -> str:
        return self.stream_id


def utcnow() -> datetime:
    return datetime.now(UTC)
