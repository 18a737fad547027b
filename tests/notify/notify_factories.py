"""Synthetic staff, cases and events for notify's tests (no real personal data)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from notify.application.inbound import (
    ALERT_WITHDRAWN,
    CLOCK_APPROACHING,
    CLOCK_OVERDUE,
    COORDINATOR_ASSIGNED,
    InboundEvent,
)
from notify.application.ports import (
    EmailSender,
    NotifyDatabase,
    OutgoingEmail,
    SendFailure,
)
from notify.domain.directory import StaffDirectory, StaffMember
from notify.domain.preferences import Preferences

SCHOOL_URN = 100234
"""The synthetic school of the tests' cases."""

COORDINATOR = StaffMember(
    "ehcco-01",
    "Alex Coordinator",
    "alex.c@council.example",
    "coordinator",
    "mgr-01",
    mobile="+447700900101",
)
MANAGER = StaffMember(
    "mgr-01", "Sam Manager", "sam.m@council.example", "manager", mobile="+447700900102"
)
LONE_COORDINATOR = StaffMember(
    "ehcco-02", "Jo Solo", "jo.s@council.example", "coordinator"
)
ORPHAN_COORDINATOR = StaffMember(
    "ehcco-03", "Ri Orphan", "ri.o@council.example", "coordinator", "mgr-gone"
)
SENCO = StaffMember(
    "senco-01",
    "Pat Senco",
    "pat.s@school.example",
    "senco",
    mobile="+447700900103",
    school_urn=SCHOOL_URN,
)
STAFF = (COORDINATOR, MANAGER, LONE_COORDINATOR, ORPHAN_COORDINATOR, SENCO)

LEGAL_BASIS = "SEND Regulations 2014, reg 5(1)"


def directory(members: Iterable[StaffMember] = STAFF) -> StaffDirectory:
    return StaffDirectory(members)


def seed(
    db: NotifyDatabase,
    members: Iterable[StaffMember] = STAFF,
    preferences: dict[str, Preferences] | None = None,
) -> None:
    """Put ``members`` (and any preferences) straight into notify's database."""
    with db.transaction() as tx:
        for member in members:
            tx.put_staff(member)
        for staff_id, chosen in (preferences or {}).items():
            tx.put_preferences(staff_id, chosen)


def write_directory_csv(path: Path, members: Iterable[StaffMember] = STAFF) -> Path:
    """A directory CSV of ``members``; a manager missing from it is left out, since
    the import refuses a manager it cannot find."""
    chosen = list(members)
    ids = {m.staff_id for m in chosen}
    lines = ["staff_id,name,email,role,manager_id,mobile,school_urn"]
    lines += [
        f"{m.staff_id},{m.name},{m.email},{m.role},"
        f"{m.manager_id if m.manager_id in ids else ''},{m.mobile or ''},"
        f"{m.school_urn or ''}"
        for m in chosen
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def new_case() -> str:
    return str(uuid.uuid4())


def event_id(label: str = "") -> str:
    # Clock event ids are deterministic in production; any unique string will do here.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"test/{label}/{uuid.uuid4()}"))


def clock_data(
    case_id: str,
    *,
    due_on: date = date(2025, 2, 17),
    act_by: date | None = None,
    escalate: bool = True,
    statutory: bool = True,
    exception_reason: str | None = None,
    lead: int | None = 5,
    overdue: bool = False,
) -> dict[str, Any]:
    """The data of a ClockApproaching (or ClockOverdue) as deadlines publishes it."""
    data: dict[str, Any] = {
        "clock_id": "decision",
        "case_id": case_id,
        "clock": "decision",
        "title": "Decision whether to assess",
        "due_on": due_on.isoformat(),
        "act_by": act_by.isoformat() if act_by else None,
        "legal_basis": LEGAL_BASIS,
        "statutory": statutory,
        "authority": "statutory" if statutory else "local",
        "escalate": escalate,
        "exception_reason": exception_reason,
        "rules_version": "2025.1",
        "action": "Decide whether to assess and tell the family.",
    }
    if overdue:
        data["overdue_since"] = due_on.isoformat()
    else:
        data["lead_working_days"] = lead
        data["alert_on"] = due_on.isoformat()
    return data


def approaching(case_id: str, **kwargs: Any) -> InboundEvent:
    return InboundEvent(
        id=kwargs.pop("id", None) or event_id("approaching"),
        type=CLOCK_APPROACHING,
        source="/send/deadlines",
        subject=case_id,
        data=clock_data(case_id, **kwargs),
        correlation_id="corr-" + case_id[:8],
    )


def overdue(case_id: str, **kwargs: Any) -> InboundEvent:
    return InboundEvent(
        id=kwargs.pop("id", None) or event_id("overdue"),
        type=CLOCK_OVERDUE,
        source="/send/deadlines",
        subject=case_id,
        data=clock_data(case_id, overdue=True, lead=None, **kwargs),
        correlation_id="corr-" + case_id[:8],
    )


def withdrawn(case_id: str, withdrawn_event_id: str, reason: str) -> InboundEvent:
    data = clock_data(case_id)
    for name in ("alert_on", "action"):
        data.pop(name)
    data.update(
        {
            "alert_id": withdrawn_event_id,
            "alert_kind": "approaching",
            "alert_due_on": data["due_on"],
            "reason": reason,
        }
    )
    return InboundEvent(
        id=event_id("withdrawn"),
        type=ALERT_WITHDRAWN,
        source="/send/deadlines",
        subject=case_id,
        data=data,
        correlation_id="corr-" + case_id[:8],
    )


def coordinator_assigned(
    case_id: str, coordinator_id: str | None, previous: str | None = None
) -> InboundEvent:
    return InboundEvent(
        id=event_id("assigned"),
        type=COORDINATOR_ASSIGNED,
        source="/send/intake",
        subject=case_id,
        data={
            "case_id": case_id,
            "coordinator_id": coordinator_id,
            "previous_coordinator_id": previous,
        },
        correlation_id="corr-" + case_id[:8],
    )


@dataclass
class FakeSender(EmailSender):
    """Records what it is asked to send; fails as scripted, in order, first.

    ``script`` holds ``SendFailure`` instances to raise on the next sends; once it is
    used up every send succeeds.
    """

    script: list[SendFailure] = field(default_factory=list)
    sent: list[OutgoingEmail] = field(default_factory=list)
    attempts: list[OutgoingEmail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, email: OutgoingEmail) -> None:
        with self.lock:
            self.attempts.append(email)
            if self.script:
                raise self.script.pop(0)
            self.sent.append(email)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def request_received(case_id: str, school_urn: int = SCHOOL_URN) -> InboundEvent:
    return InboundEvent(
        id=event_id("received"),
        type="send.intake.RequestReceived.v1",
        source="/send/intake",
        subject=case_id,
        data={
            "case_id": case_id,
            "requester_type": "parent",
            "channel": "email",
            "received_at": "2025-01-06T09:30:00Z",
            "school_urn": school_urn,
            "curriculum_year": 5,
        },
        correlation_id="corr-" + case_id[:8],
    )


def review_cycle_started(case_id: str, setting_urn: int | None) -> InboundEvent:
    return InboundEvent(
        id=event_id("cycle"),
        type="send.reviews.ReviewCycleStarted.v1",
        source="/send/reviews",
        subject=case_id,
        data={
            "case_id": case_id,
            "issued_on": "2025-01-20",
            "setting_urn": setting_urn,
        },
        correlation_id="corr-" + case_id[:8],
    )


def review_arranged(case_id: str, meeting_on: date) -> InboundEvent:
    return InboundEvent(
        id=event_id("arranged"),
        type="send.reviews.ReviewArranged.v1",
        source="/send/reviews",
        subject=case_id,
        data={
            "case_id": case_id,
            "review_id": str(uuid.uuid4()),
            "kind": "annual",
            "meeting_on": meeting_on.isoformat(),
            "arranged_on": "2025-11-03",
            "setting_urn": None,
            "invitee_roles": ["parent", "senco"],
        },
        correlation_id="corr-" + case_id[:8],
    )


ANNUAL_REVIEW_BASIS = "CFA 2014 s.44(1); SEND Code of Practice 2015 paras 9.166-9.185"


def clock_event(
    case_id: str,
    event_type: str,
    *,
    clock: str = "annual_review",
    clock_id: str | None = None,
    due_on: date = date(2026, 1, 19),
    **extra: Any,
) -> InboundEvent:
    """Any clock event of ``clock`` (ClockSet, ClockMet, ...) as deadlines publishes."""
    data: dict[str, Any] = {
        "clock_id": clock_id or clock,
        "case_id": case_id,
        "clock": clock,
        "title": "Annual review",
        "due_on": due_on.isoformat(),
        "act_by": None,
        "legal_basis": ANNUAL_REVIEW_BASIS,
        "statutory": True,
        "authority": "statutory",
        "escalate": True,
        "exception_reason": None,
        "rules_version": "2014.1",
        **extra,
    }
    return InboundEvent(
        id=event_id(event_type),
        type=f"send.deadlines.{event_type}.v1",
        source="/send/deadlines",
        subject=case_id,
        data=data,
        correlation_id="corr-" + case_id[:8],
    )


def review_approaching(case_id: str, due_on: date = date(2025, 2, 17)) -> InboundEvent:
    return clock_event(
        case_id,
        "ClockApproaching",
        due_on=due_on,
        lead_working_days=5,
        alert_on="2025-02-10",
        action="Hold the review meeting of the EHC plan.",
    )
