"""One outbox relay at a time per topic and store, however many replicas run.

Every replica of a service may start a relay; only the one holding the relay's lock
publishes. The others wait and try again every few seconds, so when the holder dies
(or is drained) another takes over within one retry interval and resumes from the
checkpoint the last one left, because each tenure builds a fresh ``OutboxRelay``,
which reads the checkpoint from the store.

- On PostgreSQL the lock is a session-level advisory lock
  (``pg_try_advisory_lock``) held on a connection of its own, keyed by the OID of the
  store's ``checkpoints`` table and a hash of the relay's name. PostgreSQL releases it
  when that session ends: a relay killed outright (SIGKILL, a lost pod) frees it as
  soon as the server sees the connection close. The connection has TCP keepalives and
  a user timeout on both ends, so a holder cut off by the network is noticed in about
  fifteen seconds rather than the kernel's two hours.
- On SQLite (one file, one host) it is an exclusive ``flock`` on a file beside the
  database, released by the kernel when the process dies.
- In memory it is a lock shared by the relays of one store object in one process.

While it publishes, the relay checks every ``check_interval`` seconds that it still
holds the lock; if the lock's session was lost, it stops after the round in flight and
goes back to waiting. During that round both an old and a new holder can publish at
once. That is safe, only wasteful: both send events in position order from
checkpoints that cover only acknowledged events, so a consumer keeping the first copy
of each ``ce_id`` still sees every event, in order per case. The checkpoint may then
move back (the old holder writes a lower one last), which makes the next relay send
some events a third time and loses none.

``run_exclusively(make_relay, lock, stop_event)`` is the loop; ``relay_lock_for(store,
name)`` picks the lock that suits the store.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict

from sendkit.health import PROGRESS, Progress
from sendkit.store import (
    EventStore,
    InMemoryEventStore,
    PostgresEventStore,
    SQLiteEventStore,
    StoreError,
)
from sendkit.store.postgres import first_line, int32_key

if TYPE_CHECKING:  # the relay module may import this one to run its CLI exclusively
    from sendkit.relay import OutboxRelay

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 0.5
DEFAULT_RETRY_INTERVAL_S = 2.0
DEFAULT_CHECK_INTERVAL_S = 2.0
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

# Both ends give up on a silent peer after about 15 s: 5 s idle, then 3 probes 2 s
# apart, and any unacknowledged send after 15 s.
_KEEPALIVE_CLIENT = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}
_KEEPALIVE_SERVER = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 15000",
)


class RelayLock(Protocol):
    """A lock one relay holds while it publishes; every method is quick."""

    name: str

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False (without waiting) if another holds it
        or the lock's backing service cannot be reached."""

    def held(self) -> bool:
        """Whether this object still holds the lock."""

    def release(self) -> None:
        """Give the lock up; harmless when not held."""


class PostgresRelayLock:
    """A session-level advisory lock on a dedicated PostgreSQL connection."""

    def __init__(self, dsn: str, name: str) -> None:
        self.name = name
        self._dsn = dsn
        self._key: tuple[int, int] | None = None
        self._connection: psycopg.Connection[Any] | None = None
        self._held = False
        self._failing = False

    def try_acquire(self) -> bool:
        if self.held():
            return True
        try:
            connection = self._connect()
            row = connection.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", self._lock_key(connection)
            ).fetchone()
        except psycopg.Error as error:
            # Said once per outage: a standby retries every few seconds.
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "relay lock %s could not be tried: %s",
                self.name,
                first_line(error),
                extra={"lock": self.name, "error_type": type(error).__name__},
            )
            self._failing = True
            self._drop_connection()
            return False
        self._failing = False
        self._held = bool(row and row[0])
        return self._held

    def held(self) -> bool:
        connection = self._connection
        if not self._held or connection is None or self._key is None:
            return False
        try:
            row = connection.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid() AND granted AND objsubid = 2"
                " AND classid::bigint = %s AND objid::bigint = %s)",
                tuple(part & 0xFFFFFFFF for part in self._key),
            ).fetchone()
        except psycopg.Error as error:
            log.warning(
                "relay lock %s lost with its connection: %s",
                self.name,
                first_line(error),
                extra={"lock": self.name, "error_type": type(error).__name__},
            )
            self._drop_connection()
            return False
        self._held = bool(row and row[0])
        return self._held

    def release(self) -> None:
        connection = self._connection
        if connection is not None and self._held and self._key is not None:
            try:
                connection.execute("SELECT pg_advisory_unlock(%s, %s)", self._key)
            except psycopg.Error:
                # Closing the session below releases the lock all the same.
                log.info("relay lock %s unlock failed; closing", self.name)
        self._drop_connection()

    def backend_pid(self) -> int | None:
        """The server process of the lock's session (for operators and tests)."""
        return None if self._connection is None else self._connection.info.backend_pid

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is not None and not self._connection.broken:
            return self._connection
        given = conninfo_to_dict(self._dsn)
        extra: dict[str, Any] = {
            name: value
            for name, value in _KEEPALIVE_CLIENT.items()
            if name not in given
        }
        if "connect_timeout" not in given:
            extra["connect_timeout"] = 10
        if "application_name" not in given:
            extra["application_name"] = f"relay-lock {self.name}"[:63]
        connection = psycopg.connect(self._dsn, autocommit=True, **extra)
        try:
            for statement in _KEEPALIVE_SERVER:
                connection.execute(statement)
        except psycopg.Error:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _lock_key(self, connection: psycopg.Connection[Any]) -> tuple[int, int]:
        if self._key is None:
            row = connection.execute(
                "SELECT to_regclass('checkpoints')::oid::bigint"
            ).fetchone()
            if row is None or row[0] is None:
                raise StoreError(
                    "the store's checkpoints table is missing: open the store once "
                    "(PostgresEventStore creates it) before its relay takes the lock"
                )
            oid = int(row[0])
            self._key = (
                oid - (1 << 32) if oid >= 1 << 31 else oid,
                int32_key(self.name),
            )
        return self._key

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._held = False
        if connection is not None:
            connection.close()


class FileRelayLock:
    """An exclusive ``flock`` on a file; for stores that live on one host."""

    def __init__(self, path: str | Path, name: str) -> None:
        self.name = name
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self.held():
            return True
        self.release()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def held(self) -> bool:
        if self._fd is None:
            return False
        # A lock on a file someone deleted or replaced protects nothing.
        try:
            return os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock


class LocalRelayLock:
    """A lock shared by the relays of one in-memory store, within one process."""

    _locks: weakref.WeakKeyDictionary[EventStore, dict[str, threading.Lock]] = (
        weakref.WeakKeyDictionary()
    )
    _guard = threading.Lock()

    def __init__(self, store: EventStore, name: str) -> None:
        self.name = name
        with self._guard:
            per_store = self._locks.setdefault(store, {})
            self._lock = per_store.setdefault(name, threading.Lock())
        self._held = False

    def try_acquire(self) -> bool:
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


def relay_lock_for(store: EventStore, name: str) -> RelayLock:
    """The lock that keeps relays named ``name`` on ``store`` to one at a time.

    ``name`` is the relay's checkpoint name (``relay:<topic>``), so two relays that
    would share a checkpoint share a lock.
    """
    if isinstance(store, PostgresEventStore):
        return PostgresRelayLock(store.dsn, name)
    if isinstance(store, SQLiteEventStore):
        safe = _FILE_UNSAFE.sub("_", name)
        return FileRelayLock(
            store.path.with_name(f"{store.path.name}.{safe}.lock"), name
        )
    if isinstance(store, InMemoryEventStore):
        return LocalRelayLock(store, name)
    raise StoreError(
        f"no relay lock is known for {type(store).__name__}: pass a RelayLock to "
        "run_exclusively"
    )


def run_exclusively(
    make_relay: Callable[[], OutboxRelay],
    lock: RelayLock,
    stop_event: threading.Event,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    retry_interval: float = DEFAULT_RETRY_INTERVAL_S,
    check_interval: float = DEFAULT_CHECK_INTERVAL_S,
    on_tenure: Callable[[bool], None] | None = None,
    on_standby: Callable[[], None] | None = None,
) -> None:
    """Publish with a relay from ``make_relay`` whenever ``lock`` is ours, until
    ``stop_event`` is set; ``on_standby()`` is called at each round without the lock.

    Without the lock, try again every ``retry_interval`` seconds. With it, run a fresh
    relay (which reads the checkpoint) until the lock is lost or a stop is asked for,
    then close it and release the lock. ``on_tenure(True)`` and ``on_tenure(False)``
    are called as publishing starts and ends, for a readiness probe or a metric.

    One ``sendkit.health`` progress is tracked throughout: a standby's round has
    nothing to do (so a standby is alive), a publisher's rounds are the relay's.
    """
    with PROGRESS.tracking(lock.name) as progress:
        _run_exclusively(
            make_relay,
            lock,
            stop_event,
            progress,
            poll_interval=poll_interval,
            retry_interval=retry_interval,
            check_interval=check_interval,
            on_tenure=on_tenure,
            on_standby=on_standby,
        )


def _run_exclusively(
    make_relay: Callable[[], OutboxRelay],
    lock: RelayLock,
    stop_event: threading.Event,
    progress: Progress,
    *,
    poll_interval: float,
    retry_interval: float,
    check_interval: float,
    on_tenure: Callable[[bool], None] | None,
    on_standby: Callable[[], None] | None,
) -> None:
    waiting_logged = False
    while not stop_event.is_set():
        if not lock.try_acquire():
            progress.record(0, None)
            if on_standby is not None:
                on_standby()
            if not waiting_logged:
                log.info(
                    "relay lock %s is held elsewhere; standing by",
                    lock.name,
                    extra={"lock": lock.name},
                )
                waiting_logged = True
            stop_event.wait(retry_interval)
            continue
        waiting_logged = False
        log.info(
            "relay lock %s taken; publishing", lock.name, extra={"lock": lock.name}
        )
        try:
            _publish_while_held(
                make_relay,
                lock,
                stop_event,
                poll_interval,
                check_interval,
                on_tenure,
                progress,
            )
        finally:
            lock.release()
        if not stop_event.is_set():
            log.warning(
                "relay lock %s lost; standing by", lock.name, extra={"lock": lock.name}
            )


def _publish_while_held(
    make_relay: Callable[[], OutboxRelay],
    lock: RelayLock,
    stop_event: threading.Event,
    poll_interval: float,
    check_interval: float,
    on_tenure: Callable[[bool], None] | None,
    progress: Progress,
) -> None:
    tenure = threading.Event()

    def watch() -> None:
        # A stop is passed on within a tenth of a second; the lock costs a round trip,
        # so it is checked every check_interval.
        next_check = time.monotonic() + check_interval
        while not tenure.wait(0.1):
            if stop_event.is_set():
                tenure.set()
            elif time.monotonic() >= next_check:
                if not lock.held():
                    tenure.set()
                next_check = time.monotonic() + check_interval

    watcher = threading.Thread(target=watch, name=f"watch {lock.name}", daemon=True)
    watcher.start()
    try:
        relay = make_relay()
        if on_tenure is not None:
            on_tenure(True)
        relay.run_forever(tenure, poll_interval, progress=progress)
    finally:
        tenure.set()
        watcher.join()
        if on_tenure is not None:
            on_tenure(False)
