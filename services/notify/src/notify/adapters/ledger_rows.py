"""The ledger's rows as notify's records, for both SQL adapters.

SQLite and PostgreSQL hold the same columns; they differ only in how a moment and a
day travel (ISO text in SQLite, aware datetimes and dates in PostgreSQL). Each adapter
passes its own ``Codec``, and the mapping of every other column is written once here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from notify.application.ports import AlertRecord, ReviewDue
from notify.domain.alerts import AlertKind, Channel, Provider, RecipientRole
from notify.domain.delivery import AlertStatus
from notify.domain.directory import StaffMember


class Row(Protocol):
    """A row read by column name: ``sqlite3.Row`` or a psycopg dict row."""

    def __getitem__(self, key: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Codec:
    """How one database stores moments and days, each way."""

    moment_in: Callable[[datetime | None], Any]
    moment_out: Callable[[Any], datetime | None]
    day_in: Callable[[date | None], Any]
    day_out: Callable[[Any], date | None]


def aware_utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive datetime is refused, since its zone is unknown."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("the ledger stores aware datetimes only; pass a UTC datetime")
    return value.astimezone(UTC)


def to_json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def alert_from_row(row: Row, codec: Codec) -> AlertRecord:
    created_at = codec.moment_out(row["created_at"])
    if created_at is None:
        raise ValueError(f"alert {row['alert_id']} has no created_at in the ledger")
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
        created_at=created_at,
        status=AlertStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=codec.moment_out(row["next_attempt_at"]),
        last_error=row["last_error"],
        corrects=row["corrects"],
        withdrawal=from_json(row["withdrawal"]),
        updated_at=codec.moment_out(row["updated_at"]),
        provider=Provider(row["provider"]),
        quiet_hours=row["quiet_hours"],
        bundle_id=row["bundle_id"],
        covers=row["covers"],
        digest_on=codec.day_out(row["digest_on"]),
        personalisation=from_json(row["personalisation"]),
        provider_id=row["provider_id"],
        delivery_status=row["delivery_status"],
    )


def alert_values(alert: AlertRecord, codec: Codec) -> tuple[Any, ...]:
    """The alert's columns in the order of the ledger's ``notify_alerts`` table."""
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
        to_json(alert.notice),
        alert.correlation_id,
        codec.moment_in(alert.created_at),
        alert.status.value,
        alert.attempts,
        codec.moment_in(alert.next_attempt_at),
        alert.last_error,
        alert.corrects,
        to_json(alert.withdrawal),
        codec.moment_in(alert.updated_at),
        alert.provider.value,
        alert.quiet_hours,
        alert.bundle_id,
        alert.covers,
        codec.day_in(alert.digest_on),
        to_json(alert.personalisation),
        alert.provider_id,
        alert.delivery_status,
    )


def member_from_row(row: Row) -> StaffMember:
    return StaffMember(
        staff_id=row["staff_id"],
        name=row["name"],
        email=row["email"],
        role=row["role"],
        manager_id=row["manager_id"],
        mobile=row["mobile"],
        school_urn=row["school_urn"],
    )


def review_order(due: ReviewDue) -> tuple[int, date, str, str]:
    """Upcoming reviews by school, then due day, case and clock."""
    return (due.school_urn or 0, due.due_on, due.case_id, due.clock_id)
