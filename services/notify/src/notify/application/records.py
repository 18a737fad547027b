"""Building ledger records and the events that report their outcome.

Shared by the handlers (which record alerts) and the delivery (which records what
happened to them), so an alert, its correction and its ``NotificationSent`` or
``NotificationFailed`` event are always built the same way.
"""

from __future__ import annotations

import re
from datetime import datetime

from notify.application.ports import AlertRecord, NotifyTransaction
from notify.domain.alerts import (
    AlertKind,
    Channel,
    ClockNotice,
    Recipient,
    Withdrawal,
    alert_id,
)
from notify.domain.delivery import AlertStatus, FailureKind
from notify.domain.messages import compose_alert, compose_correction
from send_schemas.notify import NotificationFailed, NotificationSent
from sendkit.events import SYSTEM_ACTOR, Metadata, NewEvent

_ADDRESS = re.compile(r"[^\s<>@,;:\"']+@[^\s<>@,;:\"']+")

MAX_REASON_LENGTH = 500


def redact(text: str) -> str:
    """``text`` with anything that looks like an email address replaced."""
    return _ADDRESS.sub("<address>", text)[:MAX_REASON_LENGTH]


def new_alert(
    notice: ClockNotice,
    recipient: Recipient,
    *,
    coordinator_name: str | None,
    correlation_id: str,
    now: datetime,
) -> AlertRecord:
    """The pending alert for one reachable recipient of ``notice``."""
    if recipient.member is None:
        raise ValueError("new_alert needs a reachable recipient; use unreachable_alert")
    content = compose_alert(notice, recipient.role, coordinator_name)
    return AlertRecord(
        alert_id=alert_id(notice.event_id, recipient.role, recipient.staff_id),
        source_event_id=notice.event_id,
        case_id=notice.case_id,
        kind=notice.kind,
        channel=Channel.EMAIL,
        role=recipient.role,
        staff_id=recipient.staff_id,
        address=recipient.member.email,
        subject=content.subject,
        body=content.body,
        notice=notice.to_dict(),
        correlation_id=correlation_id,
        created_at=now,
        next_attempt_at=now,
        updated_at=now,
    )


def unreachable_alert(
    notice: ClockNotice, recipient: Recipient, *, correlation_id: str, now: datetime
) -> AlertRecord:
    """The alert for a role nobody could be found for: failed from the start."""
    return AlertRecord(
        alert_id=alert_id(notice.event_id, recipient.role, recipient.staff_id),
        source_event_id=notice.event_id,
        case_id=notice.case_id,
        kind=notice.kind,
        channel=Channel.EMAIL,
        role=recipient.role,
        staff_id=recipient.staff_id,
        address=None,
        subject="",
        body="",
        notice=notice.to_dict(),
        correlation_id=correlation_id,
        created_at=now,
        status=AlertStatus.FAILED,
        last_error=recipient.problem or "no recipient",
        updated_at=now,
    )


def correction_for(
    original: AlertRecord, withdrawal: Withdrawal, *, correlation_id: str, now: datetime
) -> AlertRecord:
    """The short correction of an alert already sent, to the same person."""
    content = compose_correction(original.clock_notice, withdrawal)
    return AlertRecord(
        alert_id=alert_id(withdrawal.event_id, original.role, original.staff_id),
        source_event_id=withdrawal.event_id,
        case_id=original.case_id,
        kind=AlertKind.CORRECTION,
        channel=original.channel,
        role=original.role,
        staff_id=original.staff_id,
        address=original.address,
        subject=content.subject,
        body=content.body,
        notice=original.notice,
        correlation_id=correlation_id,
        created_at=now,
        next_attempt_at=now,
        corrects=original.alert_id,
        updated_at=now,
    )


def withdrawal_to_dict(withdrawal: Withdrawal) -> dict[str, str | None]:
    return {
        "event_id": withdrawal.event_id,
        "case_id": withdrawal.case_id,
        "withdrawn_event_id": withdrawal.withdrawn_event_id,
        "reason": withdrawal.reason,
    }


def withdrawal_from_dict(data: dict[str, str | None]) -> Withdrawal:
    return Withdrawal(
        event_id=str(data["event_id"]),
        case_id=str(data["case_id"]),
        withdrawn_event_id=str(data["withdrawn_event_id"]),
        reason=data.get("reason"),
    )


def _metadata(alert: AlertRecord) -> Metadata:
    return Metadata(
        actor=SYSTEM_ACTOR,
        correlation_id=alert.correlation_id,
        causation_id=alert.source_event_id,
    )


def sent_event(alert: AlertRecord) -> NewEvent:
    data = NotificationSent(
        alert_id=alert.alert_id,
        clock_event_id=alert.source_event_id,
        case_id=alert.case_id,
        clock_id=alert.notice.get("clock_id"),
        alert_kind=alert.kind.value,
        channel=alert.channel.value,
        recipient_role=alert.role.value,
        recipient_staff_id=alert.staff_id,
        attempts=alert.attempts,
        corrects_alert_id=alert.corrects,
    )
    return NewEvent(
        type=NotificationSent.EVENT_TYPE,
        data=data.model_dump(mode="json"),
        metadata=_metadata(alert),
    )


def failed_event(
    alert: AlertRecord, failure: FailureKind, reason: str, code: int | None
) -> NewEvent:
    data = NotificationFailed(
        alert_id=alert.alert_id,
        clock_event_id=alert.source_event_id,
        case_id=alert.case_id,
        clock_id=alert.notice.get("clock_id"),
        alert_kind=alert.kind.value,
        channel=alert.channel.value,
        recipient_role=alert.role.value,
        recipient_staff_id=alert.staff_id,
        attempts=alert.attempts,
        failure=failure.value,
        reason=redact(reason),
        status_code=code,
        corrects_alert_id=alert.corrects,
    )
    return NewEvent(
        type=NotificationFailed.EVENT_TYPE,
        data=data.model_dump(mode="json"),
        metadata=_metadata(alert),
    )


def record_event(tx: NotifyTransaction, case_id: str, event: NewEvent) -> None:
    """Append ``event`` to the case's stream in notify's store (the outbox).

    The transaction holds the store's write lock, so the version read here cannot
    move before the append.
    """
    version = len(tx.events.read_stream(case_id))
    tx.events.append(case_id, version, [event])
