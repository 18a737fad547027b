"""The event store interface every service uses.

A store holds streams of events, one per case, and a global sequence over all of them.
Appends carry the version the caller last saw (optimistic concurrency). The global
``position`` only ever grows in commit order, so a reader that has seen position N has
seen every event committed before it; the outbox relay depends on that.

A ``Transaction`` groups appends with the bookkeeping that must commit with them: the
ids of messages a subscriber has processed, checkpoints (how far a relay has
published), and idempotency records of HTTP commands.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sendkit.events import NewEvent, RecordedEvent


class StoreError(Exception):
    """Root of the event store's errors."""


class VersionConflict(StoreError):
    """The stream moved on since the caller read it; reload and decide again."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, not the expected {expected}: "
            "another command changed it first; reload the case and try again"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first answer given to a command sent with an ``Idempotency-Key``."""

    key: str
    fingerprint: str
    status_code: int
    body: dict[str, Any]


class Transaction(ABC):
    """Work that commits or rolls back as one."""

    @abstractmethod
    def append(
        self, stream_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[RecordedEvent]:
        """Append events to a stream whose current version must be ``expected_version``.

        Version 0 means the stream does not exist yet. Raises ``VersionConflict``.
        """

    @abstractmethod
    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        """Every event of one stream, oldest first (empty if there is none)."""

    @abstractmethod
    def is_processed(self, consumer: str, message_id: str) -> bool:
        """Whether ``consumer`` has already handled the message with this id."""

    @abstractmethod
    def mark_processed(self, consumer: str, message_id: str) -> None:
        """Record that ``consumer`` handled this message, in this transaction."""

    @abstractmethod
    def get_checkpoint(self, name: str) -> int:
        """How far the named reader has got (0 if it has never run)."""

    @abstractmethod
    def set_checkpoint(self, name: str, position: int) -> None:
        """Record how far the named reader has got."""

    @abstractmethod
    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The first answer recorded under ``key`` in ``scope``, if any."""

    @abstractmethod
    def put_idempotency(self, scope: str, record: IdempotencyRecord) -> None:
        """Record the answer to a command sent with an idempotency key."""


class EventStore(ABC):
    """An append-only store of event streams with a global commit-ordered position."""

    source: str
    """The CloudEvents ``source`` of every event this store records (e.g. ``/send/intake``)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open a transaction; it commits when the block ends, and rolls back on error."""

    @abstractmethod
    def read_all(self, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events with a global position greater than ``after``, in position order."""

    @abstractmethod
    def last_position(self) -> int:
        """The highest global position committed (0 for an empty store)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    def append(
        self, stream_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[RecordedEvent]:
        with self.transaction() as tx:
            return tx.append(stream_id, expected_version, events)

    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        with self.transaction() as tx:
            return tx.read_stream(stream_id)

    def iter_all(self, after: int = 0, batch: int = 1000) -> Iterator[RecordedEvent]:
        """Every event after ``after``, read in batches."""
        while page := self.read_all(after=after, limit=batch):
            yield from page
            after = page[-1].position
