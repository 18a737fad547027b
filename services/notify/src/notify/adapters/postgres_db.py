"""Notify's database in PostgreSQL: the kernel's event store plus notify's tables.

The same ledger as ``notify.adapters.sqlite_db`` (alerts, staff directory and
preferences, the read model of other services' facts, held notices), in tables beside
the kernel's ``PostgresEventStore`` in one schema of one database, so several notify
replicas can share it. A ``NotifyPostgresDatabase`` transaction runs its statements on
the store transaction's own connection (``PostgresTransaction.connection``), so an
alert's new status and the event that reports it commit together or not at all.

One transaction at a time
    Every transaction first takes a transaction-scoped advisory lock on notify's
    ledger (``pg_advisory_xact_lock``, keyed by the schema), held until it commits or
    rolls back. That gives PostgreSQL the guarantee the SQLite adapter has from the
    file's write lock and the in-memory one from its mutex, and that the application
    code is written for: its read-change-write steps never interleave. Without it,
    under READ COMMITTED, two replicas would both read a due alert and both claim and
    send it; a digest gathered on two replicas at once would put its alerts back for
    the next day's digest after the first had bundled them (a second send); a clock
    notice held for a case while its coordinator was being recorded could be left
    held; a withdrawal recorded while a send's answer was recorded could be lost; and
    two events appended to one case stream would meet a version conflict after the
    email had gone. Sends happen outside transactions, so replicas still send in
    parallel; only the short ledger steps take turns (which the event store's own
    append lock already imposes on every step that records an event).

    Two replicas' claims are safe on their own as well: ``due_alerts`` reads with
    ``FOR UPDATE SKIP LOCKED``, so even without the ledger lock a sender never gets
    an alert another sender's open transaction is claiming, and ``take_held``
    removes held notices with ``DELETE ... RETURNING``, so two takers never both get
    one.

Schema
    The tables are made on first open (under the same lock, so two replicas starting
    together do not race) and carry their own schema version in ``notify_meta``; a
    newer version is refused. Times are ``timestamptz`` (microseconds, like the SQLite
    adapter's text), days are ``date``, JSON is kept as text exactly as written, and
    listings by id sort with the ``"C"`` collation, so every ordering matches SQLite's.

Known limits: the ledger lock makes notify's transactions on one database take turns
across all replicas, so a transaction left open (a long API request) holds back every
other replica's for up to the store's ``lock_timeout_s``, after which their step fails
with ``StoreUnavailable`` and is retried. A send that outlasts the claim lease
(``NOTIFY_CLAIM_LEASE_SECONDS``) may be repeated by another replica, as with SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import psycopg

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
from notify.errors import LedgerError
from sendkit.store.base import StoreError, Transaction
from sendkit.store.postgres import (
    PostgresEventStore,
    PostgresTransaction,
    int32_key,
    translated_errors,
)

NOTIFY_SOURCE = "/send/notify"
LEDGER_SCHEMA_VERSION = 1

# The first half of the ledger lock's key says what it is for; the second half is the
# schema, so notify ledgers in different schemas of one database do not wait for each
# other.
_LEDGER_LOCK_CLASS = int32_key("notify-ledger")
_LOCK_LEDGER = "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))"

_LEDGER_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS notify_meta (
        key text PRIMARY KEY,
        value text NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS notify_alerts (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alert_id text NOT NULL UNIQUE,
        source_event_id text NOT NULL,
        case_id text NOT NULL,
        kind text NOT NULL,
        channel text NOT NULL,
        role text NOT NULL,
        staff_id text,
        address text,
        subject text NOT NULL,
        body text NOT NULL,
        notice text NOT NULL,
        correlation_id text NOT NULL,
        created_at timestamptz NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL CHECK (attempts >= 0),
        next_attempt_at timestamptz,
        last_error text,
        corrects text,
        withdrawal text,
        updated_at timestamptz,
        provider text NOT NULL DEFAULT 'smtp',
        quiet_hours text,
        bundle_id text,
        covers text,
        digest_on date,
        personalisation text,
        provider_id text,
        delivery_status text
    )
    """,
    "CREATE INDEX IF NOT EXISTS notify_alerts_by_source"
    " ON notify_alerts (source_event_id)",
    "CREATE INDEX IF NOT EXISTS notify_alerts_due"
    " ON notify_alerts (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS notify_alerts_by_bundle ON notify_alerts (bundle_id)",
    "CREATE INDEX IF NOT EXISTS notify_alerts_by_provider_id"
    " ON notify_alerts (provider_id)",
    """
    CREATE TABLE IF NOT EXISTS notify_case_coordinators (
        case_id text PRIMARY KEY,
        coordinator_id text,
        updated_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS notify_held_notices (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        case_id text NOT NULL,
        notice text NOT NULL,
        correlation_id text NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS notify_held_by_case ON notify_held_notices (case_id)",
    """
    CREATE TABLE IF NOT EXISTS notify_staff (
        staff_id text PRIMARY KEY,
        name text NOT NULL,
        email text NOT NULL,
        role text NOT NULL,
        manager_id text,
        mobile text,
        school_urn integer,
        updated_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS notify_staff_by_school"
    " ON notify_staff (role, school_urn)",
    "CREATE INDEX IF NOT EXISTS notify_staff_by_manager ON notify_staff (manager_id)",
    """
    CREATE TABLE IF NOT EXISTS notify_preferences (
        staff_id text PRIMARY KEY,
        preferences text NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS notify_case_schools (
        case_id text PRIMARY KEY,
        request_school_urn integer,
        setting_urn integer,
        meeting_on date,
        updated_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS notify_review_dues (
        case_id text NOT NULL,
        clock_id text NOT NULL,
        due_on date NOT NULL,
        legal_basis text NOT NULL,
        PRIMARY KEY (case_id, clock_id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS notify_review_dues_by_day"
    " ON notify_review_dues (due_on)",
)

_ALERT_COLUMN_NAMES = (
    "alert_id",
    "source_event_id",
    "case_id",
    "kind",
    "channel",
    "role",
    "staff_id",
    "address",
    "subject",
    "body",
    "notice",
    "correlation_id",
    "created_at",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "corrects",
    "withdrawal",
    "updated_at",
    "provider",
    "quiet_hours",
    "bundle_id",
    "covers",
    "digest_on",
    "personalisation",
    "provider_id",
    "delivery_status",
)
_ALERT_COLUMNS = ", ".join(_ALERT_COLUMN_NAMES)
_ALERT_INSERT = (
    f"INSERT INTO notify_alerts ({_ALERT_COLUMNS})"
    f" VALUES ({', '.join(['%s'] * len(_ALERT_COLUMN_NAMES))})"
    " ON CONFLICT (alert_id) DO NOTHING"
)
_ALERT_UPDATE = (
    "UPDATE notify_alerts SET "
    + ", ".join(f"{name} = %s" for name in _ALERT_COLUMN_NAMES[1:])
    + " WHERE alert_id = %s"
)
_LIVE = (AlertStatus.PENDING.value, AlertStatus.SENDING.value)
_STAFF_COLUMNS = "staff_id, name, email, role, manager_id, mobile, school_urn"

Row = dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


_CODEC = Codec(
    moment_in=aware_utc, moment_out=aware_utc, day_in=lambda d: d, day_out=lambda d: d
)


class _PostgresNotifyTransaction(NotifyTransaction):
    def __init__(
        self, events: Transaction, db: psycopg.Connection[dict[str, Any]]
    ) -> None:
        self._events = events
        self._db = db

    @property
    def events(self) -> Transaction:
        return self._events

    def _rows(self, action: str, query: str, values: Sequence[Any] = ()) -> list[Row]:
        with translated_errors(f"{action} for notify's ledger"):
            cursor = self._db.execute(query, values)
            return cursor.fetchall() if cursor.description is not None else []

    def _row(self, action: str, query: str, values: Sequence[Any] = ()) -> Row | None:
        rows = self._rows(action, query, values)
        return rows[0] if rows else None

    def _count(self, action: str, query: str, values: Sequence[Any] = ()) -> int:
        with translated_errors(f"{action} for notify's ledger"):
            return self._db.execute(query, values).rowcount

    def get_meta(self, key: str) -> str | None:
        row = self._row(
            "read a setting", "SELECT value FROM notify_meta WHERE key = %s", (key,)
        )
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._count(
            "record a setting",
            "INSERT INTO notify_meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def get_staff(self, staff_id: str) -> StaffMember | None:
        row = self._row(
            "read a member of staff",
            f"SELECT {_STAFF_COLUMNS} FROM notify_staff WHERE staff_id = %s",
            (staff_id,),
        )
        return None if row is None else member_from_row(row)

    def put_staff(self, member: StaffMember) -> bool:
        new = self.get_staff(member.staff_id) is None
        self._count(
            "record a member of staff",
            f"INSERT INTO notify_staff ({_STAFF_COLUMNS}, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (staff_id) DO UPDATE"
            " SET name = excluded.name, email = excluded.email, role = excluded.role,"
            " manager_id = excluded.manager_id, mobile = excluded.mobile,"
            " school_urn = excluded.school_urn, updated_at = excluded.updated_at",
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
        self._count(
            "remove preferences",
            "DELETE FROM notify_preferences WHERE staff_id = %s",
            (staff_id,),
        )
        removed = self._count(
            "remove a member of staff",
            "DELETE FROM notify_staff WHERE staff_id = %s",
            (staff_id,),
        )
        return removed > 0

    def list_staff(
        self, *, role: str | None = None, school_urn: int | None = None
    ) -> list[StaffMember]:
        clauses: list[str] = []
        values: list[object] = []
        if role is not None:
            clauses.append("role = %s")
            values.append(role)
        if school_urn is not None:
            clauses.append("school_urn = %s")
            values.append(school_urn)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            "list staff",
            f"SELECT {_STAFF_COLUMNS} FROM notify_staff{where}"
            ' ORDER BY staff_id COLLATE "C"',
            values,
        )
        return [member_from_row(row) for row in rows]

    def managed_by(self, manager_id: str) -> list[str]:
        rows = self._rows(
            "list a manager's staff",
            "SELECT staff_id FROM notify_staff WHERE manager_id = %s"
            ' ORDER BY staff_id COLLATE "C"',
            (manager_id,),
        )
        return [row["staff_id"] for row in rows]

    def get_preferences(self, staff_id: str) -> Preferences | None:
        row = self._row(
            "read preferences",
            "SELECT preferences FROM notify_preferences WHERE staff_id = %s",
            (staff_id,),
        )
        return (
            None
            if row is None
            else Preferences.from_dict(json.loads(row["preferences"]))
        )

    def put_preferences(self, staff_id: str, preferences: Preferences) -> None:
        self._count(
            "record preferences",
            "INSERT INTO notify_preferences (staff_id, preferences, updated_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (staff_id) DO UPDATE"
            " SET preferences = excluded.preferences, updated_at = excluded.updated_at",
            (staff_id, json.dumps(preferences.to_dict()), _now()),
        )

    def _set_school_column(self, case_id: str, column: str, value: object) -> None:
        # ``column`` is one of this module's literals, never input.
        self._count(
            "record a case's school",
            f"INSERT INTO notify_case_schools (case_id, {column}, updated_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (case_id) DO UPDATE"
            f" SET {column} = excluded.{column}, updated_at = excluded.updated_at",
            (case_id, value, _now()),
        )

    def set_request_school(self, case_id: str, school_urn: int) -> None:
        self._set_school_column(case_id, "request_school_urn", school_urn)

    def set_setting(self, case_id: str, school_urn: int) -> None:
        self._set_school_column(case_id, "setting_urn", school_urn)

    def school_of(self, case_id: str) -> int | None:
        row = self._row(
            "read a case's school",
            "SELECT COALESCE(setting_urn, request_school_urn) AS urn"
            " FROM notify_case_schools WHERE case_id = %s",
            (case_id,),
        )
        return None if row is None or row["urn"] is None else int(row["urn"])

    def set_meeting(self, case_id: str, meeting_on: date | None) -> None:
        self._set_school_column(case_id, "meeting_on", meeting_on)

    def open_review(self, due: ReviewDue) -> None:
        self._count(
            "record an open review",
            "INSERT INTO notify_review_dues (case_id, clock_id, due_on, legal_basis)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (case_id, clock_id) DO UPDATE"
            " SET due_on = excluded.due_on, legal_basis = excluded.legal_basis",
            (due.case_id, due.clock_id, due.due_on, due.legal_basis),
        )

    def close_review(self, case_id: str, clock_id: str) -> None:
        self._count(
            "close a review",
            "DELETE FROM notify_review_dues WHERE case_id = %s AND clock_id = %s",
            (case_id, clock_id),
        )

    def reviews_due(self, first: date, last: date) -> list[ReviewDue]:
        rows = self._rows(
            "list the reviews due",
            "SELECT d.case_id, d.clock_id, d.due_on, d.legal_basis,"
            " COALESCE(s.setting_urn, s.request_school_urn) AS school_urn,"
            " s.meeting_on"
            " FROM notify_review_dues d"
            " LEFT JOIN notify_case_schools s ON s.case_id = d.case_id"
            " WHERE d.due_on BETWEEN %s AND %s",
            (first, last),
        )
        found = [
            ReviewDue(
                case_id=row["case_id"],
                clock_id=row["clock_id"],
                due_on=row["due_on"],
                legal_basis=row["legal_basis"],
                school_urn=row["school_urn"],
                meeting_on=row["meeting_on"],
            )
            for row in rows
        ]
        return sorted(found, key=review_order)

    def set_coordinator(self, case_id: str, coordinator_id: str | None) -> None:
        self._count(
            "record a coordinator",
            "INSERT INTO notify_case_coordinators (case_id, coordinator_id, updated_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (case_id) DO UPDATE SET"
            " coordinator_id = excluded.coordinator_id,"
            " updated_at = excluded.updated_at",
            (case_id, coordinator_id, _now()),
        )

    def coordinator_of(self, case_id: str) -> str | None:
        row = self._row(
            "read a coordinator",
            "SELECT coordinator_id FROM notify_case_coordinators WHERE case_id = %s",
            (case_id,),
        )
        return None if row is None else row["coordinator_id"]

    def hold(self, held: HeldNotice) -> None:
        self._count(
            "hold a notice",
            "INSERT INTO notify_held_notices"
            " (event_id, case_id, notice, correlation_id) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (event_id) DO NOTHING",
            (
                held.notice.event_id,
                held.notice.case_id,
                to_json(held.notice.to_dict()),
                held.correlation_id,
            ),
        )

    def take_held(self, case_id: str) -> list[HeldNotice]:
        # One statement removes and returns them, so two takers never both get one.
        rows = self._rows(
            "take held notices",
            "DELETE FROM notify_held_notices WHERE case_id = %s"
            " RETURNING seq, notice, correlation_id",
            (case_id,),
        )
        return [
            HeldNotice(
                ClockNotice.from_dict(json.loads(r["notice"])), r["correlation_id"]
            )
            for r in sorted(rows, key=lambda r: int(r["seq"]))
        ]

    def drop_held(self, event_id: str) -> bool:
        removed = self._count(
            "drop a held notice",
            "DELETE FROM notify_held_notices WHERE event_id = %s",
            (event_id,),
        )
        return removed > 0

    def add_alert(self, alert: AlertRecord) -> bool:
        added = self._count(
            "record an alert", _ALERT_INSERT, alert_values(alert, _CODEC)
        )
        return added > 0

    def save_alert(self, alert: AlertRecord) -> None:
        values = alert_values(alert, _CODEC)
        saved = self._count("save an alert", _ALERT_UPDATE, (*values[1:], values[0]))
        if saved != 1:
            raise LedgerError(
                f"alert {alert.alert_id} is not in the ledger: record it with "
                "add_alert before saving a new state"
            )

    def _alerts(
        self, action: str, where: str, values: Sequence[Any] = ()
    ) -> list[AlertRecord]:
        rows = self._rows(
            action, f"SELECT {_ALERT_COLUMNS} FROM notify_alerts {where}", values
        )
        return [alert_from_row(row, _CODEC) for row in rows]

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        found = self._alerts("read an alert", "WHERE alert_id = %s", (alert_id,))
        return found[0] if found else None

    def alerts_from(self, source_event_id: str) -> list[AlertRecord]:
        return self._alerts(
            "list an event's alerts",
            "WHERE source_event_id = %s ORDER BY seq",
            (source_event_id,),
        )

    def due_alerts(self, now: datetime, limit: int) -> list[AlertRecord]:
        # SKIP LOCKED: an alert another sender is claiming right now is not offered;
        # once that claim commits its lease moves next_attempt_at past ``now``.
        return self._alerts(
            "list the alerts due",
            "WHERE status IN (%s, %s) AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, seq LIMIT %s FOR UPDATE SKIP LOCKED",
            (*_LIVE, aware_utc(now), limit),
        )

    def next_attempt_at(self) -> datetime | None:
        row = self._row(
            "find the next attempt",
            "SELECT MIN(next_attempt_at) AS at FROM notify_alerts"
            " WHERE status IN (%s, %s)",
            _LIVE,
        )
        return None if row is None else aware_utc(row["at"])

    def claimed_alerts(self) -> list[AlertRecord]:
        return self._alerts(
            "list the claimed alerts",
            "WHERE status = %s ORDER BY seq",
            (AlertStatus.SENDING.value,),
        )

    def held_alerts(self, up_to: date) -> list[AlertRecord]:
        return self._alerts(
            "list the alerts held for digests",
            "WHERE status = %s AND digest_on <= %s ORDER BY seq",
            (AlertStatus.HELD.value, up_to),
        )

    def bundle_items(self, bundle_id: str) -> list[AlertRecord]:
        return self._alerts(
            "list a bundle's alerts", "WHERE bundle_id = %s ORDER BY seq", (bundle_id,)
        )

    def alert_by_provider_id(self, provider_id: str) -> AlertRecord | None:
        found = self._alerts(
            "find an alert by its provider id",
            "WHERE provider_id = %s ORDER BY seq LIMIT 1",
            (provider_id,),
        )
        return found[0] if found else None

    def count_by_status(self) -> dict[AlertStatus, int]:
        rows = self._rows(
            "count alerts",
            "SELECT status, COUNT(*) AS n FROM notify_alerts GROUP BY status",
        )
        return {AlertStatus(row["status"]): int(row["n"]) for row in rows}


class NotifyPostgresDatabase(NotifyDatabase):
    """Notify's ledger, read model and event store in one PostgreSQL schema.

    ``dsn`` is a ``postgresql://`` URL or libpq string (its ``search_path`` chooses
    the schema); ``pool_size`` and ``lock_timeout_s`` go to the kernel's store.
    Opening makes the tables if they are missing and raises ``StoreUnavailable`` if
    the server cannot be reached.
    """

    shared: ClassVar[bool] = True

    def __init__(
        self,
        dsn: str,
        source: str = NOTIFY_SOURCE,
        *,
        pool_size: int | None = None,
        lock_timeout_s: float | None = None,
    ) -> None:
        options: dict[str, Any] = {}
        if pool_size is not None:
            options["pool_size"] = pool_size
        if lock_timeout_s is not None:
            options["lock_timeout_s"] = lock_timeout_s
        self.store = PostgresEventStore(dsn, source, **options)
        """The event store; hand it to the outbox relay."""
        try:
            self._create_schema()
        except BaseException:
            self.store.close()
            raise

    def _create_schema(self) -> None:
        with self._open() as tx:
            found = tx._row(
                "read the ledger's schema version",
                "SELECT to_regclass('notify_meta') IS NOT NULL AS present",
            )
            version = (
                tx.get_meta("schema_version") if found and found["present"] else None
            )
            if version is not None and int(version) > LEDGER_SCHEMA_VERSION:
                raise StoreError(
                    f"this database has notify ledger schema {version}, newer than "
                    f"this code's {LEDGER_SCHEMA_VERSION}: run the newer notify version"
                )
            for statement in _LEDGER_SCHEMA:
                tx._count("create the ledger tables", statement)
            tx.set_meta("schema_version", str(LEDGER_SCHEMA_VERSION))

    @contextmanager
    def _open(self) -> Iterator[_PostgresNotifyTransaction]:
        with self.store.transaction() as tx:
            db = _connection_of(tx)
            with translated_errors("take notify's ledger lock"):
                db.execute(_LOCK_LEDGER, (_LEDGER_LOCK_CLASS,))
            yield _PostgresNotifyTransaction(tx, db)

    def transaction(self) -> AbstractContextManager[NotifyTransaction]:
        return self._open()

    def close(self) -> None:
        self.store.close()


def _connection_of(tx: Transaction) -> psycopg.Connection[dict[str, Any]]:
    if not isinstance(tx, PostgresTransaction):
        raise StoreError(
            "notify's PostgreSQL tables need the kernel's PostgreSQL store"
        )
    return tx.connection
