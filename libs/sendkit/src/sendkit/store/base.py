"""The event store interface every service uses.

A store holds streams of events, one per case, and a global sequence over all of them.
Appends carry the version the caller last saw (optimistic concurrency). The global
``position`` only ever grows in commit order, so a reader that has seen position N has
seen every event committed before it; the outbox relay depends on that.

A ``Transaction`` groups appends with the bookkeeping that must commit with them: the
ids of messages a subscriber has processed, checkpoints (how far a relay has
published), idempotency records of HTTP commands, and documents: the JSON rows of a
service's read model of other services' facts (the plans placement knows of), kept in
the service's own store so that a subscriber updates them in the transaction that marks
the message processed, and a command reads them in the transaction that decides.
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
            f"stream {stream_id!r} is at version {actual}, not the expected "
            f"{expected}: another command changed it first; reload the case and "
            "try again"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class NestedTransaction(StoreError):
    """A transaction was opened inside another one on the same thread."""

    def __init__(self) -> None:
        super().__init__(
            "a store transaction is already open on this thread: pass its Transaction "
            "object down instead of opening a second one"
        )


class StoreUnavailable(StoreError):
    """The store could not be reached or stayed locked; the work may be retried as is.

    Adapters translate their driver's transient errors (a busy or locked SQLite file, a
    dropped PostgreSQL connection) into this type, so callers can retry without knowing
    which adapter is behind the interface.
    """


class IdempotencyKeyReused(StoreError):
    """An answer is already recorded under this idempotency key."""

    def __init__(self, scope: str, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} already has an answer in scope {scope!r}: "
            "read it with get_idempotency() in the same transaction before "
            "recording one"
        )
        self.scope = scope
        self.key = key


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The first answer given to a command sent with an ``Idempotency-Key``."""

    key: str
    fingerprint: str
    status_code: int
    body: dict[str, Any]


def check_append(stream_id: str, expected_version: int) -> None:
    """Refuse append arguments no adapter can accept, with the same message in all."""
    if not stream_id:
        raise StoreError("stream id is empty: pass the case id the events belong to")
    if expected_version < 0:
        raise StoreError(
            f"expected version {expected_version} is negative: pass 0 for a new "
            "stream or the version of the last event read"
        )


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
        """Record the answer to a command sent with an idempotency key.

        Raises ``IdempotencyKeyReused`` if ``scope`` already holds ``record.key``.
        """

    # Documents are not abstract so that an adapter written before them keeps working
    # for every service that does not use them; using them there fails loudly.

    def get_document(self, collection: str, key: str) -> dict[str, Any] | None:
        """The document stored under ``key`` in ``collection``, or None."""
        raise _no_documents(self)

    def put_document(self, collection: str, key: str, document: dict[str, Any]) -> None:
        """Store ``document`` (plain JSON values) under ``key``, replacing any other."""
        raise _no_documents(self)

    def delete_document(self, collection: str, key: str) -> None:
        """Remove the document under ``key``, if there is one."""
        raise _no_documents(self)

    def list_documents(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        """Every ``(key, document)`` of ``collection``, in key order."""
        raise _no_documents(self)


def _no_documents(tx: Transaction) -> StoreError:
    return StoreError(
        f"{type(tx).__name__} keeps no documents: implement get_document, "
        "put_document, delete_document and list_documents in its adapter, or use the "
        "SQLite or in-memory store"
    )


def check_document(collection: str, key: str) -> None:
    """Refuse document names no adapter can accept, with the same message in all."""
    if not collection or not key:
        raise StoreError(
            f"document collection {collection!r} and key {key!r} must both be "
            "non-empty: name the read model and the case (or other id) it describes"
        )


class EventStore(ABC):
    """An append-only store of event streams with a global commit-ordered position."""

    source: str
    """The CloudEvents ``source`` of the events this store records: ``/send/intake``."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open a transaction; it commits when the block ends, rolls back on error.

        Write transactions are serialised (one at a time per store), which is what makes
        positions grow in commit order. Keep them short: no network calls inside.
        """

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

    def get_checkpoint(self, name: str) -> int:
        with self.transaction() as tx:
            return tx.get_checkpoint(name)

    def iter_all(self, after: int = 0, batch: int = 1000) -> Iterator[RecordedEvent]:
        """Every event after ``after``, read in batches."""
        while page := self.read_all(after=after, limit=batch):
            yield from page
            after = page[-1].position
