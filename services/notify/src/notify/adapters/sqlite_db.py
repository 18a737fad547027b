"""Notify's database in one SQLite file: the kernel's event store plus notify's tables.

The file holds the kernel's event store (notify's own events, the outbox the relay
publishes, and the ids of consumed messages) and notify's tables: the alert ledger,
the staff directory and preferences, the read model of other services' facts (each
case's coordinator, school and open annual review clocks) and the notices held for a
coordinator. A ``NotifySQLiteDatabase`` transaction runs its statements on the
connection of the store's own transaction (``SQLiteTransaction.connection``), so an
alert's new status and the event that reports it commit together.

The tables carry their own schema version (``notify_meta``); the event store keeps its
own in ``PRAGMA user_version``. Opening a file of an older version adds what it lacks
(new tables, new nullable columns) in the opening transaction. Times are stored as UTC
ISO-8601 text with microseconds, so text order is time order.

Several processes may open the same file (the worker and the HTTP API): every
transaction takes the file's write lock first, so they never interleave.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from notify.adapters.ledger_rows import (
    Codec,
    alert_from_row,
    alert_values,
    aware_utc,
    member_from_row,
    review_order,
    to_json,
)
from notify.application.ports import (
    AlertRecord,
    HeldNotice,
    NotifyDatabase,
    NotifyTransaction,
    ReviewDue,
)
from notify.domain.alerts import (
    ClockNotice,
)
from notify.domain.delivery import AlertStatus
from notify.domain.directory import StaffMember
from notify.domain.preferences import Preferences
from notify.errors import ConfigurationError, LedgerError
from sendkit.store.base import StoreError, Transaction
from sendkit.store.sqlite import SQLiteEventStore, SQLiteTransaction

NOTIFY_SOURCE = "/send/notify"
LEDGER_SCHEMA_VERSION = 2

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
CREATE TABLE IF NOT EXISTS notify_staff (
    staff_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    manager_id TEXT,
    mobile TEXT,
    school_urn INTEGER,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notify_staff_by_school ON notify_staff (role, school_urn);
CREATE INDEX IF NOT EXISTS notify_staff_by_manager ON notify_staff (manager_id);
CREATE TABLE IF NOT EXISTS notify_preferences (
    staff_id TEXT PRIMARY KEY,
    preferences TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_case_schools (
    case_id TEXT PRIMARY KEY,
    request_school_urn INTEGER,
    setting_urn INTEGER,
    meeting_on TEXT,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notify_review_dues (
    case_id TEXT NOT NULL,
    clock_id TEXT NOT NULL,
    due_on TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    PRIMARY KEY (case_id, clock_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notify_review_dues_by_day ON notify_review_dues (due_on);
"""

_ADDED_ALERT_COLUMNS = (
    ("provider", "TEXT NOT NULL DEFAULT 'smtp'"),
    ("quiet_hours", "TEXT"),
    ("bundle_id", "TEXT"),
    ("covers", "TEXT"),
    ("digest_on", "TEXT"),
    ("personalisation", "TEXT"),
    ("provider_id", "TEXT"),
    ("delivery_status", "TEXT"),
)
"""Columns of notify_alerts added in schema 2, added to a file of schema 1."""

_SCHEMA_2_INDEXES = """
CREATE INDEX IF NOT EXISTS notify_alerts_by_bundle ON notify_alerts (bundle_id);
CREATE INDEX IF NOT EXISTS notify_alerts_by_provider_id ON notify_alerts (provider_id);
"""

_ALERT_COLUMNS = (
    "alert_id, source_event_id, case_id, kind, channel, role, staff_id, address, "
    "subject, body, notice, correlation_id, created_at, status, attempts, "
    "next_attempt_at, last_error, corrects, withdrawal, updated_at, provider, "
    "quiet_hours, bundle_id, covers, digest_on, personalisation, provider_id, "
    "delivery_status"
)
_LIVE = (AlertStatus.PENDING.value, AlertStatus.SENDING.value)
_STAFF_COLUMNS = "staff_id, name, email, role, manager_id, mobile, school_urn"


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _ts(value: datetime | None) -> str | None:
    moment = aware_utc(value)
    return None if moment is None else moment.isoformat(timespec="microseconds")


_CODEC = Codec(
    moment_in=_ts,
    moment_out=_dt,
    day_in=lambda day: None if day is None else day.isoformat(),
    day_out=_day,
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _LedgerEventStore(SQLiteEventStore):
    """The kernel's SQLite store, which also creates and serves notify's tables."""

    def __init__(self, path: str | Path, source: str) -> None:
        super().__init__(path, source)
        with self.transaction() as tx:
            db = tx.connection
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
            present = {
                r["name"] for r in db.execute("PRAGMA table_info(notify_alerts)")
            }
            for column, declaration in _ADDED_ALERT_COLUMNS:
                if column not in present:
                    db.execute(
                        f"ALTER TABLE notify_alerts ADD COLUMN {column} {declaration}"
                    )
            for statement in _SCHEMA_2_INDEXES.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR REPLACE INTO notify_meta (key, value) "
                "VALUES ('schema_version', ?)",
                (str(LEDGER_SCHEMA_VERSION),),
            )


class _SQLiteNotifyTransaction(NotifyTransaction):
    def __init__(self, events: Transaction, db: sqlite3.Connection) -> None:
        self._events = events
        self._db = db

    @property
    def events(self) -> Transaction:
        return self._events

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute(
            "SELECT value FROM notify_meta WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO notify_meta (key, value) VALUES (?, ?)",
            (key, value),
        )

    def get_staff(self, staff_id: str) -> StaffMember | None:
        row = self._db.execute(
            f"SELECT {_STAFF_COLUMNS} FROM notify_staff WHERE staff_id = ?",
            (staff_id,),
        ).fetchone()
        return None if row is None else member_from_row(row)

    def put_staff(self, member: StaffMember) -> bool:
        new = self.get_staff(member.staff_id) is None
        self._db.execute(
            f"INSERT OR REPLACE INTO notify_staff ({_STAFF_COLUMNS}, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                member.staff_id,
                member.name,
                member.email,
                member.role,
                member.manager_id,
                member.mobile,
                member.school_urn,
                _now(),
            ),
        )
        return new

    def delete_staff(self, staff_id: str) -> bool:
        self._db.execute(
            "DELETE FROM notify_preferences WHERE staff_id = ?", (staff_id,)
        )
        cursor = self._db.execute(
            "DELETE FROM notify_staff WHERE staff_id = ?", (staff_id,)
        )
        return cursor.rowcount > 0

    def list_staff(
        self, *, role: str | None = None, school_urn: int | None = None
    ) -> list[StaffMember]:
        clauses: list[str] = []
        values: list[object] = []
        if role is not None:
            clauses.append("role = ?")
            values.append(role)
        if school_urn is not None:
            clauses.append("school_urn = ?")
            values.append(school_urn)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT {_STAFF_COLUMNS} FROM notify_staff{where} ORDER BY staff_id",
            values,
        ).fetchall()
        return [member_from_row(row) for row in rows]

    def managed_by(self, manager_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT staff_id FROM notify_staff WHERE manager_id = ? ORDER BY staff_id",
            (manager_id,),
        ).fetchall()
        return [row["staff_id"] for row in rows]

    def get_preferences(self, staff_id: str) -> Preferences | None:
        row = self._db.execute(
            "SELECT preferences FROM notify_preferences WHERE staff_id = ?",
            (staff_id,),
        ).fetchone()
        return None if row is None else Preferences.from_dict(json.loads(row[0]))

    def put_preferences(self, staff_id: str, preferences: Preferences) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO notify_preferences"
            " (staff_id, preferences, updated_at) VALUES (?, ?, ?)",
            (staff_id, json.dumps(preferences.to_dict()), _now()),
        )

    def _school_row(self, case_id: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO notify_case_schools (case_id, updated_at)"
            " VALUES (?, ?)",
            (case_id, _now()),
        )

    def set_request_school(self, case_id: str, school_urn: int) -> None:
        self._school_row(case_id)
        self._db.execute(
            "UPDATE notify_case_schools SET request_school_urn = ?, updated_at = ?"
            " WHERE case_id = ?",
            (school_urn, _now(), case_id),
        )

    def set_setting(self, case_id: str, school_urn: int) -> None:
        self._school_row(case_id)
        self._db.execute(
            "UPDATE notify_case_schools SET setting_urn = ?, updated_at = ?"
            " WHERE case_id = ?",
            (school_urn, _now(), case_id),
        )

    def school_of(self, case_id: str) -> int | None:
        row = self._db.execute(
            "SELECT COALESCE(setting_urn, request_school_urn) FROM notify_case_schools"
            " WHERE case_id = ?",
            (case_id,),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def set_meeting(self, case_id: str, meeting_on: date | None) -> None:
        self._school_row(case_id)
        self._db.execute(
            "UPDATE notify_case_schools SET meeting_on = ?, updated_at = ?"
            " WHERE case_id = ?",
            (meeting_on.isoformat() if meeting_on else None, _now(), case_id),
        )

    def open_review(self, due: ReviewDue) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO notify_review_dues"
            " (case_id, clock_id, due_on, legal_basis) VALUES (?, ?, ?, ?)",
            (due.case_id, due.clock_id, due.due_on.isoformat(), due.legal_basis),
        )

    def close_review(self, case_id: str, clock_id: str) -> None:
        self._db.execute(
            "DELETE FROM notify_review_dues WHERE case_id = ? AND clock_id = ?",
            (case_id, clock_id),
        )

    def reviews_due(self, first: date, last: date) -> list[ReviewDue]:
        rows = self._db.execute(
            "SELECT d.case_id, d.clock_id, d.due_on, d.legal_basis,"
            " COALESCE(s.setting_urn, s.request_school_urn) AS school_urn,"
            " s.meeting_on"
            " FROM notify_review_dues d"
            " LEFT JOIN notify_case_schools s ON s.case_id = d.case_id"
            " WHERE d.due_on BETWEEN ? AND ?",
            (first.isoformat(), last.isoformat()),
        ).fetchall()
        found = [
            ReviewDue(
                case_id=row["case_id"],
                clock_id=row["clock_id"],
                due_on=date.fromisoformat(row["due_on"]),
                legal_basis=row["legal_basis"],
                school_urn=row["school_urn"],
                meeting_on=_day(row["meeting_on"]),
            )
            for row in rows
        ]
        return sorted(found, key=review_order)

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
                to_json(held.notice.to_dict()),
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
        placeholders = ", ".join("?" * len(alert_values(alert, _CODEC)))
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO notify_alerts ({_ALERT_COLUMNS})"
            f" VALUES ({placeholders})",
            alert_values(alert, _CODEC),
        )
        return cursor.rowcount > 0

    def save_alert(self, alert: AlertRecord) -> None:
        values = alert_values(alert, _CODEC)
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
        return None if row is None else alert_from_row(row, _CODEC)

    def alerts_from(self, source_event_id: str) -> list[AlertRecord]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts"
            " WHERE source_event_id = ? ORDER BY seq",
            (source_event_id,),
        ).fetchall()
        return [alert_from_row(row, _CODEC) for row in rows]

    def due_alerts(self, now: datetime, limit: int) -> list[AlertRecord]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts"
            " WHERE status IN (?, ?) AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, seq LIMIT ?",
            (*_LIVE, _ts(now), limit),
        ).fetchall()
        return [alert_from_row(row, _CODEC) for row in rows]

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
        return [alert_from_row(row, _CODEC) for row in rows]

    def held_alerts(self, up_to: date) -> list[AlertRecord]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts"
            " WHERE status = ? AND digest_on <= ? ORDER BY seq",
            (AlertStatus.HELD.value, up_to.isoformat()),
        ).fetchall()
        return [alert_from_row(row, _CODEC) for row in rows]

    def bundle_items(self, bundle_id: str) -> list[AlertRecord]:
        rows = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts"
            " WHERE bundle_id = ? ORDER BY seq",
            (bundle_id,),
        ).fetchall()
        return [alert_from_row(row, _CODEC) for row in rows]

    def alert_by_provider_id(self, provider_id: str) -> AlertRecord | None:
        row = self._db.execute(
            f"SELECT {_ALERT_COLUMNS} FROM notify_alerts WHERE provider_id = ?",
            (provider_id,),
        ).fetchone()
        return None if row is None else alert_from_row(row, _CODEC)

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
            yield _SQLiteNotifyTransaction(tx, _connection_of(tx))

    def transaction(self) -> AbstractContextManager[NotifyTransaction]:
        return self._open()

    def close(self) -> None:
        self.store.close()


def _connection_of(tx: Transaction) -> sqlite3.Connection:
    if not isinstance(tx, SQLiteTransaction):
        raise StoreError("notify's SQLite tables need the kernel's SQLite store")
    return tx.connection


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
