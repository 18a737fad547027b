"""Notify's database in one SQLite file: the kernel's event store plus notify's tables.

The file holds the kernel's event store (notify's own events, the outbox the relay
publishes, and the ids of consumed messages) and three tables of notify's: the alert
ledger, the case-to-coordinator read model and the notices held for a coordinator. A
``NotifySQLiteDatabase`` transaction runs its statements on the connection of the
store's own transaction, so an alert's new status and the event that reports it
commit together.

The ledger's tables carry their own schema version (``notify_meta``); the event store
keeps its own in ``PRAGMA user_version``. Times are stored as UTC ISO-8601 text with
microseconds, so text order is time order.

This adapter reaches the store's per-thread connection through the store's
``_connection()`` method, because the kernel offers no public way yet to run extra
statements in a store transaction; a change to that method breaks the atomicity test
in ``tests/notify`` rather than passing silently.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notify.application.ports import (
    AlertRecord,
    HeldNotice,
    NotifyDatabase,
    NotifyTransaction,
)
from notify.domain.alerts import AlertKind, Channel, ClockNotice, RecipientRole
from notify.domain.delivery import AlertStatus
from notify.errors import ConfigurationError, LedgerError
from sendkit.store.base import StoreError, Transaction
from sendkit.store.sqlite import SQLiteEventStore

NOTIFY_SOURCE = "/send/notify"
LEDGER_SCHEMA_VERSION = 1

_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL UNIQUE,
    source_event_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    role TEXT NOT NULL,
    staff_id TEXT,
    address TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    notice TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at TEXT,
    last_error TEXT,
    corrects TEXT,
    withdrawal TEXT,
    updated_at TEXT
);
CREATE INDEX IF NOT EXISTS notify_alerts_by_source
    ON notify_alerts (source_event_id);
CREATE INDEX IF NOT EXISTS notify_alerts_due
    ON notify_alerts (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS notify_case_coordinators (
    case_id TEXT PRIMARY KEY,
    coordinator_id TEXT,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_held_notices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    notice TEXT NOT NULL,
    correlation_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_held_by_case ON notify_held_notices (case_id);
"""

_ALERT_COLUMNS = (
    "alert_id, source_event_id, case_id, kind, channel, role, staff_id, address, "
    "subject, body, notice, correlation_id, created_at, status, attempts, "
    "next_attempt_at, last_error, corrects, withdrawal, updated_at"
)
_LIVE = (AlertStatus.PENDING.value, AlertStatus.SENDING.value)


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("the ledger stores aware datetimes only; pass a UTC datetime")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _row_to_alert(row: sqlite3.Row) -> AlertRecord:
    return AlertRecord(
        alert_id=row["alert_id"],
        source_event_id=row["source_event_id"],
        case_id=row["case_id"],
        kind=AlertKind(row["kind"]),
        channel=Channel(row["channel"]),
        role=RecipientRole(row["role"]),
        staff_id=row["staff_id"],
        address=row["address"],
        subject=row["subject"],
        body=row["body"],
        notice=json.loads(row["notice"]),
        correlation_id=row["correlation_id"],
        created_at=datetime.fromisoformat(row["created_at"]),
        status=AlertStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=_dt(row["next_attempt_at"]),
        last_error=row["last_error"],
        corrects=row["corrects"],
        withdrawal=None if row["withdrawal"] is None else json.loads(row["withdrawal"]),
        updated_at=_dt(row["updated_at"]),
    )


def _alert_values(alert: AlertRecord) -> tuple[Any, ...]:
    return (
        alert.alert_id,
        alert.source_event_id,
        alert.case_id,
        alert.kind.value,
        alert.channel.value,
        alert.role.value,
        alert.staff_id,
        alert.address,
        alert.subject,
        alert.body,
        _json(alert.notice),
        alert.correlation_id,
        _ts(alert.created_at),
        alert.status.value,
        alert.attempts,
        _ts(alert.next_attempt_at),
        alert.last_error,
        alert.corrects,
        _json(alert.withdrawal),
        _ts(alert.updated_at),
    )


class _LedgerEventStore(SQLiteEventStore):
    """The kernel's SQLite store, which also creates and serves notify's tables."""

    def __init__(self, path: str | Path, source: str) -> None:
        super().__init__(path, source)
        with self.transaction():
            db = self.current_connection()
            for statement in _LEDGER_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute(
                "SELECT value FROM notify_meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is not None and int(row["value"]) > LEDGER_SCHEMA_VERSION:
                raise StoreError(
                    f"{path} has notify ledger schema {row['value']}, newer than this "
                    f"code's {LEDGER_SCHEMA_VERSION}: run the newer notify version"
                )
            db.execute(
                "INSERT OR REPLACE INTO notify_meta (key, value) "
                "VALUES ('schema_version', ?)",
                (str(LEDGER_SCHEMA_VERSION),),
            )

    def current_connection(self) -> sqlite3.Connection:
        """This thread's connection: the one a transaction open here runs on."""
        return self._connection()


class _SQLiteNotifyTransaction(NotifyTransaction):
    def __init__(self, events: Transaction, db: sqlite3.Connection) -> None:
        self._events = events
        self._db = db

    @property
    def events(self) -> Transaction:
        return self._events

    def set_coordinator(self, case_id: str, coordinator_id: str | None) -> None:
        self._db.execute(
            "INSERT INTO notify_case_coordinators (case_id, coordinator_id, updated_at)"
            " VALUES (?, ?, ?) ON CONFLICT (case_id) DO UPDATE SET"
            " coordinator_id = excluded.coordinator_id,"
            " updated_at = excluded.updated_at",
            (case_id, coordinator_id, _ts(datetime.now(UTC))),
        )

    def coordinator_of(self, case_id: str) -> str | None:
        row = self._db.execute(
            "SELECT coordinator_id FROM notify_case_coordinators WHERE case_id = ?",
            (case_id,),
        ).fetchone()
        return None if row is None else row["coordinator_id"]

    def hold(self, held: HeldNotice) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO notify_held_notices"
            " (event_id, case_id, notice, correlation_id) VALUES (?, ?, ?, ?)",
            (
                held.notice.event_id,
                held.notice.case_id,
                _json(held.notice.to_dict()),
                held.correlation_id,
            ),
        )

    def take_held(self, case_id: str) -> list[HeldNotice]:
        rows = self._db.execute(
            "SELECT notice, correlation_id FROM notify_held_notices"
            " WHERE case_id = ? ORDER BY seq",
            (case_id,),
        ).fetchall()
        self._db.execute(
            "DELETE FROM notify_held_notices WHERE case_id = ?", (case_id,)
        )
        return [
            HeldNotice(
                ClockNotice.from_dict(json.loads(r["notice"])), r["correlation_id"]
            )
            for r in rows
        ]

    def drop_held(self, event_id: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM notify_held_notices WHERE event_id = ?", (event_id,)
        )
        return cursor.rowcount > 0

    def add_alert(self, alert: AlertRecord) -> bool:
        placeholders = ", ".join("?" * len(_alert_values(alert)))
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO notify_alerts ({_ALERT_COLUMNS})"
            f" VALUES ({placeholders})",
            _alert_values(alert),
        )
        return cursor.rowcount > 0

    def save_alert(self, alert: AlertRecord) -> None:
        values = _alert_values(alert)
        columns = [c.strip() for c in _ALERT_COLUMNS.split(",")]
        assignments = ", ".join(f"{c} = ?" for c in columns[1:])
        cursor = self._db.execute(
            f"UPDATE notify_alerts SET {assignments} WHERE alert_id = ?",
            (*values[1:], values[0]),
        )
        if cursor.rowcount != 1:
            raise LedgerError(
                f"alert {alert.alert_id} is not in the ledger: record it with "
                "add_alert before saving a new state"
            )

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        row = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts WHERE alert_id = ?",
            (alert_id,),
        ).fetchone()
        return None if row is None else _row_to_alert(row)

    def alerts_from(self, source_event_id: str) -> list[AlertRecord]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts"
            " WHERE source_event_id = ? ORDER BY seq",
            (source_event_id,),
        ).fetchall()
        return [_row_to_alert(row) for row in rows]

    def due_alerts(self, now: datetime, limit: int) -> list[AlertRecord]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts"
            " WHERE status IN (?, ?) AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, seq LIMIT ?",
            (*_LIVE, _ts(now), limit),
        ).fetchall()
        return [_row_to_alert(row) for row in rows]

    def next_attempt_at(self) -> datetime | None:
        (value,) = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM notify_alerts WHERE status IN (?, ?)",
            _LIVE,
        ).fetchone()
        return _dt(value)

    def claimed_alerts(self) -> list[AlertRecord]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts WHERE status = ? ORDER BY seq",
            (AlertStatus.SENDING.value,),
        ).fetchall()
        return [_row_to_alert(row) for row in rows]

    def count_by_status(self) -> dict[AlertStatus, int]:
        rows = self._db.execute(
            "SELECT status, COUNT(*) AS n FROM notify_alerts GROUP BY status"
        ).fetchall()
        return {AlertStatus(row["status"]): row["n"] for row in rows}


class NotifySQLiteDatabase(NotifyDatabase):
    """Notify's ledger, read model and event store in one SQLite file."""

    def __init__(self, path: str | Path, source: str = NOTIFY_SOURCE) -> None:
        self.store = _LedgerEventStore(path, source)
        """The event store; hand it to the outbox relay."""

    @contextmanager
    def _open(self) -> Iterator[NotifyTransaction]:
        with self.store.transaction() as tx:
            yield _SQLiteNotifyTransaction(tx, self.store.current_connection())

    def transaction(self) -> AbstractContextManager[NotifyTransaction]:
        return self._open()

    def close(self) -> None:
        self.store.close()


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///<path>`` URL (relative) or ``sqlite:////<abs>``."""
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        scheme = url.partition(":")[0]
        raise ConfigurationError(
            f"NOTIFY_DATABASE_URL has scheme {scheme!r}; notify keeps its ledger in "
            "SQLite: write sqlite:///.run/notify.db (relative) or "
            "sqlite:////var/lib/notify/notify.db (absolute)"
        )
    return url.removeprefix("sqlite:///")
