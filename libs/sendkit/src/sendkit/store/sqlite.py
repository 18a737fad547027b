"""The event store in one SQLite file per service, in WAL mode.

Every transaction starts with ``BEGIN IMMEDIATE``, which takes the file's write lock at
once, so two transactions never interleave their appends: a position is handed out only
while no other writer is open, and positions therefore grow in commit order. Readers do
not wait for writers (WAL). Each thread gets its own connection, so the store can be
shared by FastAPI's thread pool, a relay thread and a subscriber thread; a writer that
finds the file locked waits up to the busy timeout and then fails with
``StoreUnavailable``, which callers may retry.

``synchronous=FULL`` makes each commit durable on disk before it returns. The relay
publishes what is committed, and an event already on Kafka must never vanish from the
store after a power cut, or its position would be given to a different event.

The schema is created on first open and its version kept in ``PRAGMA user_version``; a
file written by a newer schema is refused rather than guessed at. A table added that
older code simply never reads (``documents``) is created with ``IF NOT EXISTS`` on
every open and does not move the version, so older and newer code share a file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sendkit.events import Metadata, NewEvent, RecordedEvent, new_id, utcnow
from sendkit.store.base import (
    EventStore,
    IdempotencyKeyReused,
    IdempotencyRecord,
    NestedTransaction,
    StoreError,
    StoreUnavailable,
    Transaction,
    VersionConflict,
    check_append,
    check_document,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    time TEXT NOT NULL,
    data TEXT NOT NULL,
    private TEXT,
    metadata TEXT NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS processed_messages (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency_records (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;
"""

_EVENT_COLUMNS = (
    "position, id, stream_id, version, type, source, time, data, private, metadata"
)


def _dumps(value: dict[str, Any], what: str) -> str:
    try:
        # NaN and infinities are not JSON; other systems' parsers would refuse them.
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"event {what} cannot be stored as JSON ({error}): pass plain JSON values, "
            "for example model.model_dump(mode='json')"
        ) from error


def _row_to_event(row: sqlite3.Row) -> RecordedEvent:
    metadata = json.loads(row["metadata"])
    return RecordedEvent(
        id=row["id"],
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["position"],
        type=row["type"],
        source=row["source"],
        time=datetime.fromisoformat(row["time"]),
        data=json.loads(row["data"]),
        metadata=Metadata(
            actor=metadata["actor"],
            correlation_id=metadata["correlation_id"],
            causation_id=metadata.get("causation_id"),
        ),
        private=None if row["private"] is None else json.loads(row["private"]),
    )


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn the driver's transient errors into the interface's ``StoreUnavailable``."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise StoreUnavailable(
            f"SQLite could not {action} ({error}); the file may be locked by a long "
            "writer or the disk may be full: retry, and check the busy timeout"
        ) from error


class SQLiteTransaction(Transaction):
    """A store transaction on the connection that holds the file's write lock.

    A service that keeps tables of its own in the same file (a delivery ledger, a read
    model) runs its statements on ``connection``, so they commit or roll back with the
    events; it must not begin, commit or roll back on it itself.
    """

    def __init__(self, connection: sqlite3.Connection, source: str) -> None:
        self._db = connection
        self._source = source

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def append(
        self, stream_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[RecordedEvent]:
        check_append(stream_id, expected_version)
        with _translated("append events"):
            (actual,) = self._db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = ?",
                (stream_id,),
            ).fetchone()
            if actual != expected_version:
                raise VersionConflict(stream_id, expected_version, actual)

            recorded = []
            for version, event in enumerate(events, start=expected_version + 1):
                event_id, time = new_id(), utcnow()
                data = _dumps(event.data, "data")
                private = (
                    None if event.private is None else _dumps(event.private, "private")
                )
                metadata = {
                    "actor": event.metadata.actor,
                    "correlation_id": event.metadata.correlation_id,
                    "causation_id": event.metadata.causation_id,
                }
                try:
                    (position,) = self._db.execute(
                        "INSERT INTO events (id, stream_id, version, type, source,"
                        " time, data, private, metadata)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " RETURNING position",
                        (
                            event_id,
                            stream_id,
                            version,
                            event.type,
                            self._source,
                            time.isoformat(),
                            data,
                            private,
                            json.dumps(metadata),
                        ),
                    ).fetchone()
                except sqlite3.IntegrityError as error:
                    # Unreachable while writers are serialised, kept so that a stream
                    # can never hold two events with one version whatever happens.
                    raise VersionConflict(
                        stream_id, expected_version, version - 1
                    ) from error
                recorded.append(
                    RecordedEvent(
                        id=event_id,
                        stream_id=stream_id,
                        version=version,
                        position=position,
                        type=event.type,
                        source=self._source,
                        time=time,
                        data=json.loads(data),
                        metadata=event.metadata,
                        private=None if private is None else json.loads(private),
                    )
                )
        return recorded

    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        with _translated("read a stream"):
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = ? "
                "ORDER BY version",
                (stream_id,),
            ).fetchall()
        return [_row_to_event(row) for row in rows]

    def is_processed(self, consumer: str, message_id: str) -> bool:
        with _translated("read processed message ids"):
            row = self._db.execute(
                "SELECT 1 FROM processed_messages"
                " WHERE consumer = ? AND message_id = ?",
                (consumer, message_id),
            ).fetchone()
        return row is not None

    def mark_processed(self, consumer: str, message_id: str) -> None:
        with _translated("record a processed message id"):
            self._db.execute(
                "INSERT OR IGNORE INTO processed_messages (consumer, message_id, "
                "processed_at) VALUES (?, ?, ?)",
                (consumer, message_id, utcnow().isoformat()),
            )

    def get_checkpoint(self, name: str) -> int:
        with _translated("read a checkpoint"):
            row = self._db.execute(
                "SELECT position FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
        return 0 if row is None else int(row["position"])

    def set_checkpoint(self, name: str, position: int) -> None:
        with _translated("record a checkpoint"):
            self._db.execute(
                "INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at",
                (name, position, utcnow().isoformat()),
            )

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        with _translated("read an idempotency record"):
            row = self._db.execute(
                "SELECT key, fingerprint, status_code, body FROM idempotency_records "
                "WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
        if row is None:
            return None
        return IdempotencyRecord(
            key=row["key"],
            fingerprint=row["fingerprint"],
            status_code=row["status_code"],
            body=json.loads(row["body"]),
        )

    def put_idempotency(self, scope: str, record: IdempotencyRecord) -> None:
        body = _dumps(record.body, "idempotency body")
        with _translated("record an idempotency answer"):
            try:
                self._db.execute(
                    "INSERT INTO idempotency_records (scope, key, fingerprint, "
                    "status_code, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        scope,
                        record.key,
                        record.fingerprint,
                        record.status_code,
                        body,
                        utcnow().isoformat(),
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise IdempotencyKeyReused(scope, record.key) from error

    def get_document(self, collection: str, key: str) -> dict[str, Any] | None:
        check_document(collection, key)
        with _translated("read a document"):
            row = self._db.execute(
                "SELECT body FROM documents WHERE collection = ? AND key = ?",
                (collection, key),
            ).fetchone()
        return None if row is None else dict(json.loads(row["body"]))

    def put_document(self, collection: str, key: str, document: dict[str, Any]) -> None:
        check_document(collection, key)
        body = _dumps(document, "document")
        with _translated("write a document"):
            self._db.execute(
                "INSERT INTO documents (collection, key, body, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (collection, key) DO UPDATE SET "
                "body = excluded.body, updated_at = excluded.updated_at",
                (collection, key, body, utcnow().isoformat()),
            )

    def delete_document(self, collection: str, key: str) -> None:
        check_document(collection, key)
        with _translated("delete a document"):
            self._db.execute(
                "DELETE FROM documents WHERE collection = ? AND key = ?",
                (collection, key),
            )

    def list_documents(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        with _translated("list documents"):
            rows = self._db.execute(
                "SELECT key, body FROM documents WHERE collection = ? ORDER BY key",
                (collection,),
            ).fetchall()
        return [(row["key"], dict(json.loads(row["body"]))) for row in rows]


class SQLiteEventStore(EventStore):
    """The event store interface over one SQLite file."""

    def __init__(
        self, path: str | Path, source: str, *, busy_timeout_s: float = 10.0
    ) -> None:
        if str(path) in ("", ":memory:") or str(path).startswith("file::memory:"):
            raise StoreError(
                "an in-memory SQLite database is private to one connection and this "
                "store opens one per thread: use InMemoryEventStore (memory://) instead"
            )
        self.path = Path(path)
        self.source = source
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._create_schema()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,  # transactions are begun explicitly
                check_same_thread=False,  # so close() may close every thread's one
            )
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(
                f"cannot open the SQLite event store at {self.path} ({error}): check "
                "that the directory exists and is writable"
            ) from error
        connection.row_factory = sqlite3.Row
        with _translated("configure the connection"):
            (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
            connection.execute(
                f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}"
            )
            connection.execute("PRAGMA synchronous=FULL")
        if str(mode).lower() != "wal":
            connection.close()
            raise StoreError(
                f"SQLite refused WAL mode for {self.path} (journal mode is {mode!r}): "
                "put the store on a local file system"
            )
        return connection

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        with self._lock:
            if self._closed:
                raise StoreError(
                    f"the event store at {self.path} is closed: open a new one"
                )
            connection = self._connect()
            self._connections.append(connection)
        self._local.connection = connection
        return connection

    def _create_schema(self) -> None:
        with self.transaction():
            db = self._connection()
            (found,) = db.execute("PRAGMA user_version").fetchone()
            if found > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has event store schema {found}, newer than this "
                    f"code's {SCHEMA_VERSION}: run the newer service version"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _open(self) -> Iterator[SQLiteTransaction]:
        if getattr(self._local, "in_transaction", False):
            raise NestedTransaction()
        db = self._connection()
        with _translated("begin a write transaction"):
            db.execute("BEGIN IMMEDIATE")
        self._local.in_transaction = True
        try:
            yield SQLiteTransaction(db, self.source)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            try:
                with _translated("commit"):
                    db.execute("COMMIT")
            except StoreUnavailable:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            self._local.in_transaction = False

    def transaction(self) -> AbstractContextManager[SQLiteTransaction]:
        return self._open()

    def read_all(self, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        with _translated("read events"):
            rows = (
                self._connection()
                .execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > ? "
                    "ORDER BY position LIMIT ?",
                    (after, -1 if limit is None else max(limit, 0)),
                )
                .fetchall()
            )
        return [_row_to_event(row) for row in rows]

    def last_position(self) -> int:
        with _translated("read the last position"):
            (position,) = (
                self._connection()
                .execute("SELECT COALESCE(MAX(position), 0) FROM events")
                .fetchone()
            )
        return int(position)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
