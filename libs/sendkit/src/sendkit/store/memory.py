"""An event store held in memory, for unit tests and throw-away runs.

It behaves like the SQLite store, and the same behaviour suite proves it: one writer
at a time (so positions are assigned in commit order), all-or-nothing transactions, and
event data copied through JSON on the way in, so a handler that appends something JSON
cannot carry fails here exactly as it would against a real database. Nothing survives
the process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sendkit.events import NewEvent, RecordedEvent, new_id, utcnow
from sendkit.store.base import (
    EventStore,
    IdempotencyKeyReused,
    IdempotencyRecord,
    NestedTransaction,
    StoreError,
    Transaction,
    VersionConflict,
    check_append,
    check_document,
)


def _json_copy(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A deep copy of ``value`` made through JSON, as a database would store it."""
    try:
        # NaN and infinities are not JSON; other systems' parsers would refuse them.
        copied: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"event {what} cannot be stored as JSON ({error}): pass plain JSON values, "
            "for example model.model_dump(mode='json')"
        ) from error
    return copied


@dataclass
class _State:
    events: list[RecordedEvent] = field(default_factory=list)
    streams: dict[str, list[RecordedEvent]] = field(default_factory=dict)
    processed: set[tuple[str, str]] = field(default_factory=set)
    checkpoints: dict[str, int] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


class _MemoryTransaction(Transaction):
    """Changes kept aside until the block ends, then applied in one step."""

    def __init__(self, store: InMemoryEventStore, state: _State) -> None:
        self._store = store
        self._state = state
        self._events: list[RecordedEvent] = []
        self._processed: set[tuple[str, str]] = set()
        self._checkpoints: dict[str, int] = {}
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        # None marks a document deleted in this transaction.
        self._documents: dict[tuple[str, str], dict[str, Any] | None] = {}

    def append(
        self, stream_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[RecordedEvent]:
        check_append(stream_id, expected_version)
        actual = len(self.read_stream(stream_id))
        if actual != expected_version:
            raise VersionConflict(stream_id, expected_version, actual)

        position = self._state.events[-1].position if self._state.events else 0
        if self._events:
            position = self._events[-1].position
        recorded = [
            RecordedEvent(
                id=new_id(),
                stream_id=stream_id,
                version=expected_version + offset,
                position=position + offset,
                type=event.type,
                source=self._store.source,
                time=utcnow(),
                data=_json_copy(event.data, "data"),
                metadata=event.metadata,
                private=(
                    None
                    if event.private is None
                    else _json_copy(event.private, "private")
                ),
            )
            for offset, event in enumerate(events, start=1)
        ]
        self._events.extend(recorded)
        return [_copy_event(event) for event in recorded]

    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        committed = self._state.streams.get(stream_id, [])
        pending = [event for event in self._events if event.stream_id == stream_id]
        return [_copy_event(event) for event in committed + pending]

    def is_processed(self, consumer: str, message_id: str) -> bool:
        mark = (consumer, message_id)
        return mark in self._processed or mark in self._state.processed

    def mark_processed(self, consumer: str, message_id: str) -> None:
        self._processed.add((consumer, message_id))

    def get_checkpoint(self, name: str) -> int:
        if name in self._checkpoints:
            return self._checkpoints[name]
        return self._state.checkpoints.get(name, 0)

    def set_checkpoint(self, name: str, position: int) -> None:
        self._checkpoints[name] = position

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        found = self._idempotency.get((scope, key))
        return found or self._state.idempotency.get((scope, key))

    def put_idempotency(self, scope: str, record: IdempotencyRecord) -> None:
        if self.get_idempotency(scope, record.key) is not None:
            raise IdempotencyKeyReused(scope, record.key)
        body = _json_copy(record.body, "idempotency body")
        self._idempotency[(scope, record.key)] = replace(record, body=body)

    def get_document(self, collection: str, key: str) -> dict[str, Any] | None:
        check_document(collection, key)
        name = (collection, key)
        found = (
            self._documents[name]
            if name in self._documents
            else self._state.documents.get(name)
        )
        return None if found is None else _json_copy(found, "document")

    def put_document(self, collection: str, key: str, document: dict[str, Any]) -> None:
        check_document(collection, key)
        self._documents[(collection, key)] = _json_copy(document, "document")

    def delete_document(self, collection: str, key: str) -> None:
        check_document(collection, key)
        self._documents[(collection, key)] = None

    def list_documents(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        merged = {
            key: body
            for (kept_in, key), body in self._state.documents.items()
            if kept_in == collection
        }
        for (kept_in, key), pending in self._documents.items():
            if kept_in != collection:
                continue
            if pending is None:
                merged.pop(key, None)
            else:
                merged[key] = pending
        return [(key, _json_copy(merged[key], "document")) for key in sorted(merged)]

    def commit(self) -> None:
        state = self._state
        for event in self._events:
            state.events.append(event)
            state.streams.setdefault(event.stream_id, []).append(event)
        state.processed |= self._processed
        state.checkpoints.update(self._checkpoints)
        state.idempotency.update(self._idempotency)
        for name, body in self._documents.items():
            if body is None:
                state.documents.pop(name, None)
            else:
                state.documents[name] = body


class InMemoryEventStore(EventStore):
    """The event store interface over Python lists and dicts."""

    def __init__(self, source: str = "/send/memory") -> None:
        self.source = source
        self._state = _State()
        # One writer at a time, as SQLite's BEGIN IMMEDIATE gives; readers take the
        # short state lock only, so read_all never waits for a long transaction.
        self._writer = threading.Lock()
        self._state_lock = threading.Lock()
        self._local = threading.local()

    @contextmanager
    def _open(self) -> Iterator[Transaction]:
        if getattr(self._local, "in_transaction", False):
            raise NestedTransaction()
        with self._writer:
            self._local.in_transaction = True
            try:
                tx = _MemoryTransaction(self, self._state)
                yield tx
                with self._state_lock:
                    tx.commit()
            finally:
                self._local.in_transaction = False

    def transaction(self) -> AbstractContextManager[Transaction]:
        return self._open()

    def read_all(self, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        with self._state_lock:
            events = self._state.events
            # Positions are 1, 2, 3, ... with no gaps, so the index is the position.
            start = max(after, 0)
            end = None if limit is None else start + max(limit, 0)
            return [_copy_event(event) for event in events[start:end]]

    def last_position(self) -> int:
        with self._state_lock:
            return self._state.events[-1].position if self._state.events else 0

    def close(self) -> None:
        """Nothing to release; the events go when the object does."""


def _copy_event(event: RecordedEvent) -> RecordedEvent:
    # Callers may mutate what they read; the stored copy must not change with it.
    return replace(
        event,
        data=json.loads(json.dumps(event.data)),
        private=None
        if event.private is None
        else json.loads(json.dumps(event.private)),
    )
