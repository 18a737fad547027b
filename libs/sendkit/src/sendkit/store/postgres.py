"""The event store in PostgreSQL (psycopg 3), for services run as several replicas.

Positions in commit order
    The outbox relay reads ``read_all(after=checkpoint)`` and must never pass over an
    event. With a sequence or an identity column that is not guaranteed: transaction A
    takes position 7, transaction B takes 8 and commits first, a reader sees 8 and
    moves its checkpoint past 7, and A's event is never published. This store avoids
    the trap by serialising appends: the first append of a transaction takes a
    transaction-scoped advisory lock (``pg_advisory_xact_lock``) on the events table,
    and only then reads the stream's version and the highest position, so positions
    are handed out by one writer at a time and the lock is released only after the
    commit has become visible. Every event a reader can see therefore has a position
    higher than every event committed before it, and positions have no gaps (a rolled
    back append returns its numbers). ``read_all`` needs no special care.

    The alternative, numbering from a sequence and letting readers stop below the
    oldest transaction still in flight (``pg_snapshot_xmin`` of
    ``pg_current_snapshot()`` against each row's ``pg_current_xact_id()``), keeps
    appends concurrent but makes every reader compare transaction ids, leaves gaps, and
    lets one long transaction (a migration, an idle session) hold back the relay for
    everyone. The services here append a handful of events per command, so one writer
    at a time is the simpler bargain.

    The cost: appends to one store do not overlap. Each appending transaction holds the
    lock from its first append until its commit returns, including the commit's WAL
    flush, so a store commits roughly one append per flush: on a disk with a 1 ms
    fsync about a thousand appending transactions a second, however many replicas
    there are. Transactions that only read, mark processed ids or move checkpoints do
    not take the lock. Keep appending transactions short and put no network calls in
    them; the benchmark in ``tests/kernel/test_postgres_store.py`` prints what a
    machine achieves.

Subscribers on several replicas
    ``is_processed`` takes a transaction-scoped advisory lock on the (consumer, message
    id) pair before it looks, so two replicas handed the same message during a
    rebalance handle it once: the second waits for the first to commit and then sees
    its mark. ``get_idempotency`` likewise takes a lock on the (scope, key) pair, so
    two replicas given one keyed command at once answer it once: the second waits and
    then reads the first's recorded answer. Duplicate idempotency keys and processed
    marks are refused with ``ON CONFLICT DO NOTHING`` rather than a failed statement,
    so the transaction stays usable after ``IdempotencyKeyReused``.

Documents
    A service's read model rows (``get_document`` and the rest) are kept in the
    ``documents`` table as ``json``. Reading, writing or deleting a document first takes
    a transaction-scoped advisory lock on it, so two replicas that read, change and
    write back one document at once (a case's facts from two topics) take turns
    instead of one overwriting the other's change; listing takes no locks.

Tables and connections
    The tables are made on first open in the first schema of the connection's
    ``search_path`` (``public`` unless the DSN says otherwise, for example with
    ``options=-csearch_path=intake``), and their version is kept in
    ``event_store_schema``; a newer version is refused rather than guessed at. Event
    data is stored as ``json`` (not ``jsonb``), which keeps the text exactly as written,
    so a republished event has the same bytes. Connections come from a small pool
    (``pool_size``, ten by default) in autocommit mode, each transaction being an
    explicit ``BEGIN ... COMMIT`` at READ COMMITTED, so every statement sees what has
    committed before it. ``read_all`` and ``last_position`` run on a connection of
    their own, outside any transaction open on the thread, and see committed events
    only. When one connection turns out broken (a server restart), every idle one is
    dropped, and a ``BEGIN`` or a read that failed on a dead idle connection is tried
    once more on a fresh one, so a restart costs callers no error once the server is
    back. Waiting longer than ``lock_timeout_s`` for the append lock or a free
    connection, an unreachable server, a connection lost mid-transaction, a deadlock
    or a serialisation failure become ``StoreUnavailable``, which callers retry.

Known limits: the private part of an event is kept in the same row as its public part,
unencrypted, so erasing a child's details means rewriting rows, which this store does
not offer yet. Each store holds up to ``pool_size`` connections; a service with many
replicas needs PostgreSQL's ``max_connections`` (or a PgBouncer in session mode) sized
for all of them.
"""

from __future__ import annotations

import json
import math
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

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
DEFAULT_POOL_SIZE = 10
DEFAULT_LOCK_TIMEOUT_S = 10.0
DEFAULT_CONNECT_TIMEOUT_S = 10
_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"

# Creating the tables is serialised per schema, so two replicas starting together do
# not race on CREATE TABLE; the key's first half says what the lock is for.
_SCHEMA_LOCK_CLASS = 0x53454E44  # "SEND"

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS event_store_schema (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        version integer NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS events (
        position bigint PRIMARY KEY CHECK (position > 0),
        id text NOT NULL UNIQUE,
        stream_id text NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        type text NOT NULL,
        source text NOT NULL,
        time timestamptz NOT NULL,
        data json NOT NULL,
        private json,
        actor text NOT NULL,
        correlation_id text NOT NULL,
        causation_id text,
        UNIQUE (stream_id, version)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS processed_messages (
        consumer text NOT NULL,
        message_id text NOT NULL,
        processed_at timestamptz NOT NULL,
        PRIMARY KEY (consumer, message_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS checkpoints (
        name text PRIMARY KEY,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS idempotency_records (
        scope text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        status_code integer NOT NULL,
        body json NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (scope, key)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS documents (
        collection text NOT NULL,
        key text NOT NULL,
        body json NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (collection, key)
    )
    """,
)

_EVENT_COLUMNS = (
    "position, id, stream_id, version, type, source, time, data::text AS data, "
    "private::text AS private, actor, correlation_id, causation_id"
)


def int32_key(text: str) -> int:
    """A stable signed 32-bit number for ``text``: half of a two-part advisory key."""
    value = zlib.crc32(text.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


def _dumps(value: dict[str, Any], what: str) -> str:
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"event {what} cannot be stored as JSON ({error}): pass plain JSON values "
            "(no NaN or infinity), for example model.model_dump(mode='json')"
        ) from error


def _row_to_event(row: dict[str, Any]) -> RecordedEvent:
    return RecordedEvent(
        id=row["id"],
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["position"],
        type=row["type"],
        source=row["source"],
        time=row["time"].astimezone(UTC),
        data=json.loads(row["data"]),
        metadata=Metadata(
            actor=row["actor"],
            correlation_id=row["correlation_id"],
            causation_id=row["causation_id"],
        ),
        private=None if row["private"] is None else json.loads(row["private"]),
    )


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn the driver's errors into the interface's: transient ones may be retried.

    ``action`` completes "PostgreSQL could not ...". Other adapters on the same
    driver (notify's ledger) use it too, so every PostgreSQL failure reads alike.
    """
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as error:
        # Lost connections, lock and statement timeouts, deadlocks, serialisation
        # failures, a server shutting down: all may succeed when tried again.
        raise StoreUnavailable(
            f"PostgreSQL could not {action} ({first_line(error)}); the server may be "
            "down, restarting or busy: retry, and check the DSN and lock_timeout_s"
        ) from error
    except psycopg.Error as error:
        raise StoreError(
            f"PostgreSQL refused to {action} ({first_line(error)}); text values "
            "cannot hold NUL characters, and the tables may have been changed by hand"
        ) from error


def first_line(error: BaseException) -> str:
    """The first line of an error's text (a driver's can run to many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _Keys:
    """The advisory lock keys of one store, derived from its tables' OIDs.

    A table's OID is unique within its database, so stores in different schemas of one
    database never wait for each other's locks.
    """

    def __init__(self, events_oid: int, processed_oid: int) -> None:
        self.append = (_signed32(events_oid), 0)
        self._processed = _signed32(processed_oid)

    def processed(self, consumer: str, message_id: str) -> tuple[int, int]:
        return (self._processed, int32_key(f"{consumer}\x1f{message_id}"))


def _signed32(oid: int) -> int:
    return oid - (1 << 32) if oid >= 1 << 31 else oid


class PostgresTransaction(Transaction):
    """A store transaction on one connection inside ``BEGIN ... COMMIT``.

    A service that keeps tables of its own in the same database (a delivery ledger, a
    read model) runs its statements on ``connection``, so they commit or roll back with
    the events; it must not begin, commit or roll back on it itself. Rows come back as
    dicts.
    """

    def __init__(
        self, connection: psycopg.Connection[dict[str, Any]], store: PostgresEventStore
    ) -> None:
        self._db = connection
        self._source = store.source
        self._keys = store._keys
        self._holds_append_lock = False
        self._marked: set[tuple[str, str]] = set()
        self._documents_locked: set[tuple[str, str]] = set()
        self._idempotency_locked: set[tuple[str, str]] = set()

    @property
    def connection(self) -> psycopg.Connection[dict[str, Any]]:
        return self._db

    def _lock_appends(self) -> None:
        if not self._holds_append_lock:
            self._db.execute("SELECT pg_advisory_xact_lock(%s, %s)", self._keys.append)
            self._holds_append_lock = True

    def append(
        self, stream_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[RecordedEvent]:
        check_append(stream_id, expected_version)
        prepared = [
            (
                event,
                _dumps(event.data, "data"),
                None if event.private is None else _dumps(event.private, "private"),
            )
            for event in events
        ]
        with translated_errors("append events"):
            # The lock comes before both reads: under READ COMMITTED each statement
            # after it sees every append committed before this one.
            if events:
                self._lock_appends()
            row = self._db.execute(
                "SELECT (SELECT COALESCE(MAX(version), 0) FROM events"
                " WHERE stream_id = %s) AS version,"
                " (SELECT COALESCE(MAX(position), 0) FROM events) AS position",
                (stream_id,),
            ).fetchone()
            actual = 0 if row is None else int(row["version"])
            if actual != expected_version:
                raise VersionConflict(stream_id, expected_version, actual)
            if not events:
                return []

            last = 0 if row is None else int(row["position"])
            recorded = []
            rows = []
            for offset, (event, data, private) in enumerate(prepared, start=1):
                event_id, time = new_id(), utcnow()
                rows.append(
                    (
                        last + offset,
                        event_id,
                        stream_id,
                        expected_version + offset,
                        event.type,
                        self._source,
                        time,
                        data,
                        private,
                        event.metadata.actor,
                        event.metadata.correlation_id,
                        event.metadata.causation_id,
                    )
                )
                recorded.append(
                    RecordedEvent(
                        id=event_id,
                        stream_id=stream_id,
                        version=expected_version + offset,
                        position=last + offset,
                        type=event.type,
                        source=self._source,
                        time=time,
                        data=json.loads(data),
                        metadata=event.metadata,
                        private=None if private is None else json.loads(private),
                    )
                )
            try:
                with self._db.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO events (position, id, stream_id, version, type,"
                        " source, time, data, private, actor, correlation_id,"
                        " causation_id) VALUES"
                        " (%s, %s, %s, %s, %s, %s, %s, %s::json, %s::json, %s, %s, %s)",
                        rows,
                    )
            except psycopg.errors.UniqueViolation as error:
                # Unreachable while appends hold the lock; kept so that a position or
                # a stream version can never be given twice whatever happens.
                raise StoreError(
                    f"an append to {stream_id!r} collided with another writer "
                    f"({first_line(error)}): something writes to the events table "
                    "without this store's lock; stop it and retry"
                ) from error
        return recorded

    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        with translated_errors("read a stream"):
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE stream_id = %s "
                "ORDER BY version",
                (stream_id,),
            ).fetchall()
        return [_row_to_event(row) for row in rows]

    def is_processed(self, consumer: str, message_id: str) -> bool:
        if (consumer, message_id) in self._marked:
            return True
        with translated_errors("read processed message ids"):
            # Two statements: the look must be taken after the lock is granted.
            self._db.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                self._keys.processed(consumer, message_id),
            )
            row = self._db.execute(
                "SELECT 1 FROM processed_messages"
                " WHERE consumer = %s AND message_id = %s",
                (consumer, message_id),
            ).fetchone()
        return row is not None

    def mark_processed(self, consumer: str, message_id: str) -> None:
        with translated_errors("record a processed message id"):
            self._db.execute(
                "INSERT INTO processed_messages (consumer, message_id, processed_at)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (consumer, message_id, utcnow()),
            )
        self._marked.add((consumer, message_id))

    def get_checkpoint(self, name: str) -> int:
        with translated_errors("read a checkpoint"):
            row = self._db.execute(
                "SELECT position FROM checkpoints WHERE name = %s", (name,)
            ).fetchone()
        return 0 if row is None else int(row["position"])

    def set_checkpoint(self, name: str, position: int) -> None:
        with translated_errors("record a checkpoint"):
            self._db.execute(
                "INSERT INTO checkpoints (name, position, updated_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
                " SET position = excluded.position, updated_at = excluded.updated_at",
                (name, position, utcnow()),
            )

    def _lock_idempotency(self, scope: str, key: str) -> None:
        # Appends alone are serialised, so without this two replicas could both find no
        # answer for one key, both decide, and the second fail on the first's record.
        if (scope, key) in self._idempotency_locked:
            return
        self._db.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.idempotency'),"
            " hashtext(%s))",
            (f"{scope}\x1f{key}",),
        )
        self._idempotency_locked.add((scope, key))

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        with translated_errors("read an idempotency record"):
            self._lock_idempotency(scope, key)
            row = self._db.execute(
                "SELECT key, fingerprint, status_code, body::text AS body"
                " FROM idempotency_records WHERE scope = %s AND key = %s",
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
        with translated_errors("record an idempotency answer"):
            self._lock_idempotency(scope, record.key)
            inserted = self._db.execute(
                "INSERT INTO idempotency_records (scope, key, fingerprint,"
                " status_code, body, created_at) VALUES (%s, %s, %s, %s, %s::json, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (
                    scope,
                    record.key,
                    record.fingerprint,
                    record.status_code,
                    body,
                    utcnow(),
                ),
            ).fetchone()
        if inserted is None:
            raise IdempotencyKeyReused(scope, record.key)

    def _lock_document(self, collection: str, key: str) -> None:
        # A subscriber reads, changes and writes a document back; two replicas doing
        # so for one case at once (from two topics) would lose one change, so each
        # document is read under a transaction-scoped lock of its own.
        if (collection, key) in self._documents_locked:
            return
        self._db.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.documents'),"
            " hashtext(%s))",
            (f"{collection}/{key}",),
        )
        self._documents_locked.add((collection, key))

    def get_document(self, collection: str, key: str) -> dict[str, Any] | None:
        check_document(collection, key)
        with translated_errors("read a document"):
            self._lock_document(collection, key)
            row = self._db.execute(
                "SELECT body::text AS body FROM documents"
                " WHERE collection = %s AND key = %s",
                (collection, key),
            ).fetchone()
        return None if row is None else dict(json.loads(row["body"]))

    def put_document(self, collection: str, key: str, document: dict[str, Any]) -> None:
        check_document(collection, key)
        body = _dumps(document, "document")
        with translated_errors("write a document"):
            self._lock_document(collection, key)
            self._db.execute(
                "INSERT INTO documents (collection, key, body, updated_at)"
                " VALUES (%s, %s, %s::json, %s) ON CONFLICT (collection, key)"
                " DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                (collection, key, body, utcnow()),
            )

    def delete_document(self, collection: str, key: str) -> None:
        check_document(collection, key)
        with translated_errors("delete a document"):
            self._lock_document(collection, key)
            self._db.execute(
                "DELETE FROM documents WHERE collection = %s AND key = %s",
                (collection, key),
            )

    def list_documents(self, collection: str) -> list[tuple[str, dict[str, Any]]]:
        with translated_errors("list documents"):
            rows = self._db.execute(
                "SELECT key, body::text AS body FROM documents"
                ' WHERE collection = %s ORDER BY key COLLATE "C"',
                (collection,),
            ).fetchall()
        return [(row["key"], dict(json.loads(row["body"]))) for row in rows]


Connection = psycopg.Connection[dict[str, Any]]


class _Pool:
    """At most ``size`` connections, reused last-in first-out; broken ones dropped."""

    def __init__(
        self, dsn: str, size: int, wait_s: float, lock_timeout_s: float
    ) -> None:
        if size < 1:
            raise StoreError(f"pool_size is {size}: it must be at least 1")
        self._dsn = dsn
        self._size = size
        self._wait_s = wait_s
        self._lock_timeout_ms = max(int(lock_timeout_s * 1000), 1)
        given = conninfo_to_dict(dsn)
        self._extra: dict[str, Any] = {}
        if "connect_timeout" not in given:
            self._extra["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_S
        if "application_name" not in given:
            self._extra["application_name"] = "sendkit-store"
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[Connection] = []
        self._closed = False

    def connect(self) -> Connection:
        try:
            connection = psycopg.connect(
                self._dsn, autocommit=True, row_factory=dict_row, **self._extra
            )
        except psycopg.Error as error:
            raise StoreUnavailable(
                f"cannot connect to the PostgreSQL event store "
                f"({first_line(error)}): check the DSN's host, port, database and "
                "credentials and that the server is up, then retry"
            ) from error
        with translated_errors("configure the connection"):
            # UTC, so times come back as they went in; a bounded wait for locks.
            connection.execute("SET TIME ZONE 'UTC'")
            connection.execute(
                sql.SQL("SET lock_timeout = {}").format(
                    sql.Literal(f"{self._lock_timeout_ms}ms")
                )
            )
        return connection

    @contextmanager
    def connection(self, first: str | None = None) -> Iterator[Connection]:
        """A connection for one piece of work, with ``first`` already run on it.

        An idle connection may have died with a server restart without anyone
        noticing; if ``first`` fails on such a one, it is run again on a fresh
        connection, so callers see a failure only when the server is really away.
        """
        if self._closed:
            raise StoreError("the PostgreSQL event store is closed: open a new one")
        if not self._slots.acquire(timeout=self._wait_s):
            raise StoreUnavailable(
                f"all {self._size} connections of the event store stayed busy for "
                f"{self._wait_s:.0f}s: retry, and raise pool_size if this recurs"
            )
        try:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                connection = self.connect()
            elif first is not None:
                try:
                    connection.execute(first)
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    self._give_back(connection)
                    connection = self.connect()
                else:
                    first = None
            try:
                if first is not None:
                    with translated_errors("start its work"):
                        connection.execute(first)
                yield connection
            finally:
                self._give_back(connection)
        finally:
            self._slots.release()

    def _give_back(self, connection: Connection) -> None:
        healthy = (
            not connection.closed
            and not connection.broken
            and connection.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(connection)
                return
            # One broken connection usually means a restarted server: the idle ones
            # are as dead, and finding out one call at a time would fail each caller.
            dropped = self._idle if connection.broken else []
            if connection.broken:
                self._idle = []
        connection.close()
        for idle in dropped:
            idle.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class PostgresEventStore(EventStore):
    """The event store interface over tables in one PostgreSQL schema.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL. Opening creates the
    tables if they are missing and raises ``StoreUnavailable`` if the server cannot be
    reached.
    """

    def __init__(
        self,
        dsn: str,
        source: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> None:
        if not math.isfinite(lock_timeout_s) or lock_timeout_s <= 0:
            raise StoreError(
                f"lock_timeout_s is {lock_timeout_s}: give a positive number of seconds"
            )
        self.dsn = dsn
        self.source = source
        self._pool = _Pool(dsn, pool_size, lock_timeout_s, lock_timeout_s)
        self._local = threading.local()
        self._keys = self._create_schema()

    def _create_schema(self) -> _Keys:
        with (
            self._pool.connection() as db,
            translated_errors("create the event tables"),
        ):
            db.execute("BEGIN")
            try:
                row = db.execute(
                    "SELECT current_schema() AS name, "
                    "pg_advisory_xact_lock(%s, hashtext(current_schema()))",
                    (_SCHEMA_LOCK_CLASS,),
                ).fetchone()
                if row is None or row["name"] is None:
                    raise StoreError(
                        "the connection's search_path names no schema that exists: "
                        "create the schema first, or fix options=-csearch_path in "
                        "the DSN"
                    )
                found = db.execute(
                    "SELECT version FROM event_store_schema"
                    if _exists(db, "event_store_schema")
                    else "SELECT NULL AS version"
                ).fetchone()
                version = None if found is None else found["version"]
                if version is not None and version > SCHEMA_VERSION:
                    raise StoreError(
                        f"schema {row['name']!r} has event store schema {version}, "
                        f"newer than this code's {SCHEMA_VERSION}: run the newer "
                        "service version"
                    )
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO event_store_schema (version) VALUES (%s) "
                    "ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
                    (SCHEMA_VERSION,),
                )
                oids = db.execute(
                    "SELECT 'events'::regclass::oid::bigint AS events, "
                    "'processed_messages'::regclass::oid::bigint AS processed"
                ).fetchone()
                if oids is None:
                    raise StoreError("the event tables vanished while being made")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return _Keys(oids["events"], oids["processed"])

    @contextmanager
    def _open(self) -> Iterator[PostgresTransaction]:
        if getattr(self._local, "in_transaction", False):
            raise NestedTransaction()
        self._local.in_transaction = True
        try:
            with self._pool.connection(_BEGIN) as db:
                try:
                    yield PostgresTransaction(db, self)
                except BaseException:
                    _roll_back(db)
                    raise
                try:
                    with translated_errors("commit"):
                        db.execute("COMMIT")
                except StoreUnavailable:
                    _roll_back(db)
                    raise
        finally:
            self._local.in_transaction = False

    def transaction(self) -> AbstractContextManager[PostgresTransaction]:
        return self._open()

    def read_all(self, after: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        if limit is not None and limit <= 0:
            return []

        def read(db: Connection) -> list[dict[str, Any]]:
            return db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > %s "
                "ORDER BY position LIMIT %s",
                (after, limit),
            ).fetchall()

        return [_row_to_event(row) for row in self._read("read events", read)]

    def last_position(self) -> int:
        def read(db: Connection) -> list[dict[str, Any]]:
            return db.execute(
                "SELECT COALESCE(MAX(position), 0) AS position FROM events"
            ).fetchall()

        (row,) = self._read("read the last position", read)
        return int(row["position"])

    def _read(
        self, action: str, read: Callable[[Connection], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Run one read statement outside any transaction, so it sees committed rows.

        A read that fails because its pooled connection had died (a server restart)
        is run once more on a fresh connection; reads can be repeated safely.
        """
        for attempt in (1, 2):
            with self._pool.connection() as db:
                try:
                    with translated_errors(action):
                        return read(db)
                except StoreUnavailable:
                    if attempt == 2 or not db.broken:
                        raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    def close(self) -> None:
        self._pool.close()


def _exists(db: Connection, table: str) -> bool:
    row = db.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (table,)).fetchone()
    return bool(row and row["found"])


def _roll_back(db: Connection) -> None:
    """Roll back if the connection still can; a broken one is dropped by the pool."""
    if db.broken or db.closed:
        return
    try:
        db.execute("ROLLBACK")
    except psycopg.Error:
        db.close()
