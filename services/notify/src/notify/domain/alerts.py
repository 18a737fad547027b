"""The alert policy: which clock events become alerts, and who receives each one.

An approaching clock alerts the case's coordinator. An overdue clock alerts the
coordinator and the coordinator's manager, unless an exception to the time limit
applies (``escalate`` is false), in which case only the coordinator hears of it. The
clocks of a review the school holds (``senco_clocks``: by default the annual review,
its invitations and papers, and its report) also alert the SENCO of the child's
school. A withdrawn alert is never sent if it has not been sent yet, and is followed by
a short correction to the same people if it has.

Every alert has a stable id derived from the clock event it answers, its recipient and
its channel, so the same clock event, however often it is delivered, names the same
alerts. An email alert's id has no channel part, so ids recorded before text messages
existed stay the ids of the same alerts on a replay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from notify.domain.directory import Directory, StaffMember

ALERT_NAMESPACE = uuid.UUID("6f1d8c1e-3b7a-5c52-9a64-2f0e4a1d7b93")
"""The uuid5 namespace of alert ids; changing it would re-send every alert on replay."""


class AlertKind(StrEnum):
    """What an alert tells its recipient.

    ``digest`` and ``review_list`` are messages that carry several alerts (a day's
    approaching clocks, a term's reviews at one school); ``escalation`` tells a
    manager that an alert could not be delivered.
    """

    APPROACHING = "approaching"
    OVERDUE = "overdue"
    CORRECTION = "correction"
    DIGEST = "digest"
    REVIEW_LIST = "review_list"
    ESCALATION = "escalation"

    @property
    def bundles(self) -> bool:
        """Whether a message of this kind carries other alerts (its items)."""
        return self in (AlertKind.DIGEST, AlertKind.REVIEW_LIST)


class RecipientRole(StrEnum):
    """Why a person receives an alert about a case."""

    COORDINATOR = "coordinator"
    MANAGER = "manager"
    SENCO = "senco"


class Channel(StrEnum):
    """How an alert travels: email (SMTP or GOV.UK Notify) or SMS (GOV.UK Notify)."""

    EMAIL = "email"
    SMS = "sms"


class Provider(StrEnum):
    """Who carries a message: an SMTP server or GOV.UK Notify."""

    SMTP = "smtp"
    GOVUK_NOTIFY = "govuk_notify"


DEFAULT_SENCO_CLOCKS = frozenset({"annual_review", "review_notice", "review_report"})
"""Clocks of a review the school holds, whose alerts also reach the school's SENCO."""


@dataclass(frozen=True, slots=True)
class ClockNotice:
    """The facts of a clock event that asks for an alert (approaching or overdue)."""

    event_id: str
    kind: AlertKind
    case_id: str
    clock_id: str
    clock: str
    due_on: date
    act_by: date | None
    legal_basis: str
    statutory: bool
    escalate: bool
    lead: int | None = None
    exception_reason: str | None = None
    title: str | None = None
    action: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (AlertKind.APPROACHING, AlertKind.OVERDUE):
            raise ValueError(
                f"a clock notice is approaching or overdue, not {self.kind.value}"
            )

    @property
    def exception_applies(self) -> bool:
        """An exception to a statutory limit applies, so a miss is not escalated."""
        return not self.escalate and (
            self.exception_reason is not None or self.statutory
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind.value,
            "case_id": self.case_id,
            "clock_id": self.clock_id,
            "clock": self.clock,
            "due_on": self.due_on.isoformat(),
            "act_by": self.act_by.isoformat() if self.act_by else None,
            "legal_basis": self.legal_basis,
            "statutory": self.statutory,
            "escalate": self.escalate,
            "lead": self.lead,
            "exception_reason": self.exception_reason,
            "title": self.title,
            "action": self.action,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClockNotice:
        act_by = data.get("act_by")
        return cls(
            event_id=data["event_id"],
            kind=AlertKind(data["kind"]),
            case_id=data["case_id"],
            clock_id=data["clock_id"],
            clock=data["clock"],
            due_on=date.fromisoformat(data["due_on"]),
            act_by=date.fromisoformat(act_by) if act_by else None,
            legal_basis=data["legal_basis"],
            statutory=bool(data["statutory"]),
            escalate=bool(data["escalate"]),
            lead=data.get("lead"),
            exception_reason=data.get("exception_reason"),
            title=data.get("title"),
            action=data.get("action"),
        )


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A clock event saying an earlier alert no longer holds."""

    event_id: str
    case_id: str
    withdrawn_event_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """A person an alert is for, or the reason nobody could be found for that role."""

    role: RecipientRole
    staff_id: str | None
    member: StaffMember | None = None
    problem: str | None = None

    @property
    def reachable(self) -> bool:
        return self.member is not None


def alert_id(
    source_event_id: str,
    role: RecipientRole,
    staff_id: str | None,
    channel: Channel = Channel.EMAIL,
) -> str:
    """The stable id of the alert that ``source_event_id`` raises for one recipient
    on one channel."""
    name = f"{source_event_id}/{role.value}/{staff_id or '-'}"
    if channel is not Channel.EMAIL:
        name += f"/{channel.value}"
    return str(uuid.uuid5(ALERT_NAMESPACE, name))


def derived_id(*parts: str) -> str:
    """A stable id for a message notify makes itself (a digest, a list, an
    escalation) from the facts that make it unique."""
    return str(uuid.uuid5(ALERT_NAMESPACE, "/".join(parts)))


def message_id(alert: str, domain: str) -> str:
    """The RFC 5322 Message-ID of an alert's email: the same for every resend."""
    return f"<{alert}@{domain}>"


def recipients_for(
    notice: ClockNotice,
    coordinator_id: str,
    directory: Directory,
    *,
    school_urn: int | None = None,
    senco_clocks: frozenset[str] = DEFAULT_SENCO_CLOCKS,
) -> list[Recipient]:
    """Who is told about ``notice`` on a case coordinated by ``coordinator_id``.

    ``school_urn`` is the child's school, whose SENCOs hear of the review clocks
    named in ``senco_clocks``.
    """
    coordinator = directory.get(coordinator_id)
    result = [
        Recipient(
            RecipientRole.COORDINATOR,
            coordinator_id,
            coordinator,
            None
            if coordinator
            else f"coordinator {coordinator_id!r} is not in the staff directory",
        )
    ]
    if notice.clock in senco_clocks:
        result += _sencos(notice, school_urn, directory)

    # Only a missed limit that is escalated as a breach reaches the manager: not one
    # an exception applies to, and not a local target (escalate is false for both).
    if notice.kind is not AlertKind.OVERDUE or not notice.escalate:
        return result

    manager = directory.manager_of(coordinator_id)
    if manager is not None and manager.staff_id != coordinator_id:
        result.append(Recipient(RecipientRole.MANAGER, manager.staff_id, manager))
    elif manager is None:
        manager_id = coordinator.manager_id if coordinator else None
        problem = (
            f"manager {manager_id!r} of coordinator {coordinator_id!r} is not in the "
            "staff directory"
            if manager_id
            else f"coordinator {coordinator_id!r} has no manager in the staff directory"
        )
        result.append(Recipient(RecipientRole.MANAGER, manager_id, None, problem))
    return result


def _sencos(
    notice: ClockNotice, school_urn: int | None, directory: Directory
) -> list[Recipient]:
    if school_urn is None:
        return [
            Recipient(
                RecipientRole.SENCO,
                None,
                None,
                f"the school of case {notice.case_id} is not known to notify (no "
                "RequestReceived or review cycle seen), so its SENCO cannot be told",
            )
        ]
    sencos = directory.sencos_at(school_urn)
    if not sencos:
        return [
            Recipient(
                RecipientRole.SENCO,
                None,
                None,
                f"no SENCO of school {school_urn} is in the staff directory: add one "
                "with role senco and that school_urn",
            )
        ]
    return [Recipient(RecipientRole.SENCO, m.staff_id, m) for m in sencos]
