"""Building ledger records and the events that report their outcome.

Shared by the handlers (which record alerts), the scheduler (digests and termly
lists), the delivery (which records what happened) and the receipts (delivery status
from GOV.UK Notify), so an alert, its correction, a digest, an escalation and their
events are always built the same way.

A message that carries other alerts (a digest, a termly list) reports per alert: its
``NotificationSent`` is one event per carried alert, on that alert's case, naming the
message in ``bundle_id``. So does the escalation of such a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from notify.application.ports import AlertRecord, NotifyTransaction
from notify.domain.alerts import (
    AlertKind,
    Channel,
    ClockNotice,
    Provider,
    Recipient,
    RecipientRole,
    Withdrawal,
    alert_id,
    derived_id,
)
from notify.domain.delivery import AlertStatus, DeliveryStatus, FailureKind
from notify.domain.directory import StaffMember
from notify.domain.messages import (
    EmailContent,
    ReviewLine,
    case_link,
    clock_title,
    compose_alert,
    compose_correction,
    compose_correction_sms,
    compose_digest,
    compose_escalation,
    compose_review_list,
    compose_sms,
    long_date,
)
from notify.domain.preferences import QuietHours
from send_schemas.notify import (
    NotificationDelivered,
    NotificationDeliveryFailed,
    NotificationFailed,
    NotificationSent,
)
from sendkit.events import SYSTEM_ACTOR, Metadata, NewEvent

_ADDRESS = re.compile(r"[^\s<>@,;:\"']+@[^\s<>@,;:\"']+")
# Digits, spaces and brackets only: a date (2025-02-17) or an id is not a number.
_PHONE = re.compile(r"\+?\(?\d[\d ()]{8,}\d")

MAX_REASON_LENGTH = 500
BUNDLE_CASE = ""
"""The case id of a message that carries several cases' alerts (it has none)."""


def redact(text: str) -> str:
    """``text`` with anything like an email address or a phone number replaced."""
    return _PHONE.sub("<number>", _ADDRESS.sub("<address>", text))[:MAX_REASON_LENGTH]


@dataclass(frozen=True, slots=True)
class Routing:
    """How alerts are addressed: the email provider, whether SMS can be sent, the
    link to a case, and the clocks whose alerts reach a school's SENCO."""

    email_provider: Provider = Provider.SMTP
    sms_available: bool = False
    link_base: str | None = None
    senco_clocks: frozenset[str] = frozenset(
        {"annual_review", "review_notice", "review_report"}
    )

    def provider_for(self, channel: Channel) -> Provider:
        return (
            self.email_provider if channel is Channel.EMAIL else Provider.GOVUK_NOTIFY
        )

    def link(self, case_id: str) -> str | None:
        return case_link(self.link_base, case_id) if case_id else None


def personalisation(
    *,
    subject: str,
    body: str,
    case_id: str,
    link: str | None,
    notice: ClockNotice | None = None,
) -> dict[str, Any]:
    """The values a GOV.UK Notify template may use: the whole message as ``subject``
    and ``body``, and its parts for a council that writes its own wording."""
    values: dict[str, Any] = {
        "subject": subject,
        "body": body,
        "case_reference": case_id,
        "link": link or "",
        "what": "",
        "due_date": "",
        "regulation": "",
    }
    if notice is not None:
        values.update(
            what=clock_title(notice.clock, notice.title),
            due_date=long_date(notice.due_on),
            regulation=notice.legal_basis,
        )
    return values


def new_alert(
    notice: ClockNotice,
    recipient: Recipient,
    *,
    coordinator_name: str | None,
    correlation_id: str,
    now: datetime,
    channel: Channel = Channel.EMAIL,
    routing: Routing | None = None,
    quiet_hours: QuietHours | None = None,
) -> AlertRecord:
    """The pending alert for one reachable recipient of ``notice`` on ``channel``.

    A text message is due when the recipient's quiet hours end, if it is raised in
    them.
    """
    member = recipient.member
    if member is None:
        raise ValueError("new_alert needs a reachable recipient; use unreachable_alert")
    routing = routing or Routing()
    link = routing.link(notice.case_id)
    if channel is Channel.SMS:
        if member.mobile is None:
            raise ValueError(f"{member.staff_id} has no mobile number for an SMS alert")
        content = EmailContent(subject="", body=compose_sms(notice, link))
        address: str = member.mobile
        # Due now: the delivery holds it through the quiet hours when it claims it,
        # on the calendar clock (the ticks' in a demo), not on the wall clock here.
        due = now
    else:
        content = compose_alert(notice, recipient.role, coordinator_name, link)
        address = member.email
        due = now
    return AlertRecord(
        alert_id=alert_id(notice.event_id, recipient.role, recipient.staff_id, channel),
        source_event_id=notice.event_id,
        case_id=notice.case_id,
        kind=notice.kind,
        channel=channel,
        role=recipient.role,
        staff_id=recipient.staff_id,
        address=address,
        subject=content.subject,
        body=content.body,
        notice=notice.to_dict(),
        correlation_id=correlation_id,
        created_at=now,
        next_attempt_at=due,
        updated_at=now,
        provider=routing.provider_for(channel),
        quiet_hours=str(quiet_hours)
        if channel is Channel.SMS and quiet_hours
        else None,
        personalisation=personalisation(
            subject=content.subject,
            body=content.body,
            case_id=notice.case_id,
            link=link,
            notice=notice,
        ),
    )


def held_alert(
    notice: ClockNotice,
    recipient: Recipient,
    *,
    digest_on: date,
    correlation_id: str,
    now: datetime,
    routing: Routing | None = None,
) -> AlertRecord:
    """An approaching alert kept for the recipient's digest of ``digest_on``."""
    alert = new_alert(
        notice,
        recipient,
        coordinator_name=None,
        correlation_id=correlation_id,
        now=now,
        routing=routing,
    )
    return alert.evolve(
        status=AlertStatus.HELD, next_attempt_at=None, digest_on=digest_on
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
    original: AlertRecord,
    withdrawal: Withdrawal,
    *,
    correlation_id: str,
    now: datetime,
    routing: Routing | None = None,
) -> AlertRecord:
    """The short correction of an alert already sent: same person, same channel."""
    routing = routing or Routing()
    notice = original.clock_notice
    link = routing.link(original.case_id)
    if original.channel is Channel.SMS:
        content = EmailContent("", compose_correction_sms(notice, withdrawal))
        due = now  # quiet hours: as for a new text, applied when it is claimed
    else:
        content = compose_correction(notice, withdrawal, link)
        due = now
    return AlertRecord(
        alert_id=alert_id(
            withdrawal.event_id, original.role, original.staff_id, original.channel
        ),
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
        next_attempt_at=due,
        corrects=original.alert_id,
        updated_at=now,
        provider=original.provider,
        quiet_hours=original.quiet_hours,
        personalisation=personalisation(
            subject=content.subject,
            body=content.body,
            case_id=original.case_id,
            link=link,
            notice=notice,
        ),
    )


def digest_content(
    day: date, items: Sequence[AlertRecord], routing: Routing
) -> EmailContent:
    return compose_digest(day, [i.clock_notice for i in items], routing.link_base)


def digest_alert(
    member: StaffMember,
    day: date,
    items: Sequence[AlertRecord],
    *,
    now: datetime,
    routing: Routing,
) -> AlertRecord:
    """The one email of ``member``'s digest of ``day``, carrying ``items``."""
    source = f"digest/{member.staff_id}/{day.isoformat()}"
    bundle = derived_id(source)
    content = digest_content(day, items, routing)
    return AlertRecord(
        alert_id=bundle,
        source_event_id=source,
        case_id=BUNDLE_CASE,
        kind=AlertKind.DIGEST,
        channel=Channel.EMAIL,
        role=items[0].role if items else RecipientRole.COORDINATOR,
        staff_id=member.staff_id,
        address=member.email,
        subject=content.subject,
        body=content.body,
        notice={"kind": AlertKind.DIGEST.value, "day": day.isoformat()},
        correlation_id=bundle,
        created_at=now,
        next_attempt_at=now,
        updated_at=now,
        provider=routing.email_provider,
        covers=bundle,
        personalisation=personalisation(
            subject=content.subject, body=content.body, case_id="", link=None
        ),
    )


def review_list_alerts(
    member: StaffMember,
    *,
    term_starts_on: date,
    term_ends_on: date,
    school_urn: int,
    reviews: Sequence[ReviewLine],
    now: datetime,
    routing: Routing,
) -> tuple[AlertRecord, list[AlertRecord]]:
    """The termly list email for one SENCO and one bundled alert per review on it.

    Its id is derived from the term, the school and the SENCO, so the list is
    recorded once per term however often the scheduler runs.
    """
    source = f"review-list/{term_starts_on.isoformat()}/{school_urn}/{member.staff_id}"
    bundle = derived_id(source)
    content = compose_review_list(
        term_starts_on, term_ends_on, school_urn, reviews, routing.link_base
    )
    message = AlertRecord(
        alert_id=bundle,
        source_event_id=source,
        case_id=BUNDLE_CASE,
        kind=AlertKind.REVIEW_LIST,
        channel=Channel.EMAIL,
        role=RecipientRole.SENCO,
        staff_id=member.staff_id,
        address=member.email,
        subject=content.subject,
        body=content.body,
        notice={
            "kind": AlertKind.REVIEW_LIST.value,
            "term_starts_on": term_starts_on.isoformat(),
            "school_urn": school_urn,
        },
        correlation_id=bundle,
        created_at=now,
        next_attempt_at=now,
        updated_at=now,
        provider=routing.email_provider,
        covers=bundle,
        personalisation=personalisation(
            subject=content.subject, body=content.body, case_id="", link=None
        ),
    )
    items = [
        AlertRecord(
            alert_id=derived_id(source, review.case_id),
            source_event_id=source,
            case_id=review.case_id,
            kind=AlertKind.REVIEW_LIST,
            channel=Channel.EMAIL,
            role=RecipientRole.SENCO,
            staff_id=member.staff_id,
            address=member.email,
            subject="",
            body="",
            notice={
                "kind": AlertKind.REVIEW_LIST.value,
                "clock_id": "annual_review",
                "due_on": review.due_on.isoformat(),
                "term_starts_on": term_starts_on.isoformat(),
            },
            correlation_id=bundle,
            created_at=now,
            status=AlertStatus.BUNDLED,
            updated_at=now,
            provider=routing.email_provider,
            bundle_id=bundle,
        )
        for review in reviews
    ]
    return message, items


def escalation_for(
    failed: AlertRecord,
    manager: StaffMember,
    *,
    recipient_label: str,
    reason: str,
    now: datetime,
    routing: Routing,
) -> AlertRecord:
    """The email telling ``manager`` that ``failed`` did not reach its recipient."""
    what = {
        AlertKind.DIGEST: "daily digest",
        AlertKind.REVIEW_LIST: "termly list of reviews",
    }.get(failed.kind)
    if what is None:
        title = (
            clock_title(failed.notice.get("clock", ""), failed.notice.get("title"))
            if failed.has_clock_notice
            else "alert"
        )
        what = f"{title} ({failed.kind.value.replace('_', ' ')})"
    case = failed.case_id or None
    link = routing.link(failed.case_id)
    content = compose_escalation(
        case_id=case,
        what=what,
        recipient=recipient_label,
        channel="text message" if failed.channel is Channel.SMS else "email",
        reason=redact(reason),
        original_subject=failed.subject,
        original_body=failed.body,
        link=link,
    )
    escalation = derived_id(failed.alert_id, "escalation", manager.staff_id)
    return AlertRecord(
        alert_id=escalation,
        source_event_id=failed.source_event_id,
        case_id=failed.case_id,
        kind=AlertKind.ESCALATION,
        channel=Channel.EMAIL,
        role=RecipientRole.MANAGER,
        staff_id=manager.staff_id,
        address=manager.email,
        subject=content.subject,
        body=content.body,
        notice=failed.notice,
        correlation_id=failed.correlation_id,
        created_at=now,
        next_attempt_at=now,
        updated_at=now,
        provider=routing.email_provider,
        covers=failed.covers,
        personalisation=personalisation(
            subject=content.subject,
            body=content.body,
            case_id=failed.case_id,
            link=link,
        ),
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


# Events -------------------------------------------------------------------------------


def _clock_event_id(record: AlertRecord) -> str | None:
    if record.kind.bundles or not record.has_clock_notice:
        return None
    return record.source_event_id


def _common(alert: AlertRecord, about: AlertRecord | None) -> dict[str, Any]:
    """The shared fields of an event about ``alert``, or about one alert it carries.

    A bundle reporting the alerts it carried speaks for each of them (their ids,
    kinds and recipients); an escalation of a bundle speaks for itself, once per
    case the bundle carried.
    """
    if about is None:
        subject = identity = alert
        bundle_id = alert.bundle_id
    else:
        subject = about
        identity = about if alert.covers == alert.alert_id else alert
        bundle_id = alert.covers
    return {
        "alert_id": identity.alert_id,
        "clock_event_id": _clock_event_id(subject),
        "case_id": subject.case_id,
        "clock_id": subject.notice.get("clock_id"),
        "alert_kind": identity.kind.value,
        "channel": alert.channel.value,
        "recipient_role": identity.role.value,
        "recipient_staff_id": identity.staff_id,
        "attempts": alert.attempts,
        "provider": alert.provider.value if alert.attempts else None,
        "bundle_id": bundle_id,
    }


def _metadata(alert: AlertRecord) -> Metadata:
    return Metadata(
        actor=SYSTEM_ACTOR,
        correlation_id=alert.correlation_id,
        causation_id=alert.source_event_id,
    )


EventBuilder = Callable[[AlertRecord, AlertRecord | None], NewEvent]


def sent_builder() -> EventBuilder:
    def build(alert: AlertRecord, about: AlertRecord | None) -> NewEvent:
        data = NotificationSent(
            **_common(alert, about), corrects_alert_id=alert.corrects
        )
        return NewEvent(
            type=NotificationSent.EVENT_TYPE,
            data=data.model_dump(mode="json"),
            metadata=_metadata(alert),
        )

    return build


def failed_builder(failure: FailureKind, reason: str, code: int | None) -> EventBuilder:
    def build(alert: AlertRecord, about: AlertRecord | None) -> NewEvent:
        data = NotificationFailed(
            **_common(alert, about),
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

    return build


def receipt_builder(
    status: DeliveryStatus, notification_id: str, completed_at: datetime | None
) -> EventBuilder:
    def build(alert: AlertRecord, about: AlertRecord | None) -> NewEvent:
        common = _common(alert, about)
        if status is DeliveryStatus.DELIVERED:
            delivered = NotificationDelivered(
                **common, notification_id=notification_id, completed_at=completed_at
            )
            return NewEvent(
                type=NotificationDelivered.EVENT_TYPE,
                data=delivered.model_dump(mode="json"),
                metadata=_metadata(alert),
            )
        undelivered = NotificationDeliveryFailed(
            **common,
            notification_id=notification_id,
            status=status.value,
            completed_at=completed_at,
        )
        return NewEvent(
            type=NotificationDeliveryFailed.EVENT_TYPE,
            data=undelivered.model_dump(mode="json"),
            metadata=_metadata(alert),
        )

    return build


def sent_event(alert: AlertRecord) -> NewEvent:
    return sent_builder()(alert, None)


def failed_event(
    alert: AlertRecord, failure: FailureKind, reason: str, code: int | None
) -> NewEvent:
    return failed_builder(failure, reason, code)(alert, None)


def record_event(tx: NotifyTransaction, case_id: str, event: NewEvent) -> None:
    """Append ``event`` to the case's stream in notify's store (the outbox).

    The transaction holds the store's write lock, so the version read here cannot
    move before the append.
    """
    version = len(tx.events.read_stream(case_id))
    tx.events.append(case_id, version, [event])


def report(tx: NotifyTransaction, alert: AlertRecord, build: EventBuilder) -> int:
    """Record the events about ``alert``: one, or one per alert of the bundle it
    covers. Returns how many."""
    if alert.covers is None:
        record_event(tx, alert.case_id, build(alert, None))
        return 1
    items = [i for i in tx.bundle_items(alert.covers) if i.case_id]
    for item in items:
        record_event(tx, item.case_id, build(alert, item))
    return len(items)
