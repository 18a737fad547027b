"""The events notify consumes, read with tolerant models.

Notify reads other services' events as a subscriber: unknown fields are ignored, and
only what the alert policy needs is required. A message whose data lacks a required
field, or holds a wrong value, raises ``UnreadableMessage`` and goes to notify's
dead-letter topic; an event type notify has no use for is simply not an alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from notify.domain.alerts import AlertKind, ClockNotice, Withdrawal
from notify.errors import UnreadableMessage
from send_schemas.intake import CaseId, SchoolUrn

CLOCK_APPROACHING = "send.deadlines.ClockApproaching.v1"
CLOCK_OVERDUE = "send.deadlines.ClockOverdue.v1"
ALERT_WITHDRAWN = "send.deadlines.AlertWithdrawn.v1"
CLOCK_SET = "send.deadlines.ClockSet.v1"
CLOCK_DUE_DATE_CHANGED = "send.deadlines.ClockDueDateChanged.v1"
CLOCK_MET = "send.deadlines.ClockMet.v1"
CLOCK_LATE = "send.deadlines.ClockLate.v1"
CLOCK_CANCELLED = "send.deadlines.ClockCancelled.v1"
COORDINATOR_ASSIGNED = "send.intake.CoordinatorAssigned.v1"
REQUEST_RECEIVED = "send.intake.RequestReceived.v1"
REVIEW_CYCLE_STARTED = "send.reviews.ReviewCycleStarted.v1"
PLAN_AMENDMENT_RECORDED = "send.reviews.PlanAmendmentRecorded.v1"
REVIEW_ARRANGED = "send.reviews.ReviewArranged.v1"
REVIEW_HELD = "send.reviews.ReviewHeld.v1"
REVIEW_CYCLE_ENDED = "send.reviews.ReviewCycleEnded.v1"

ALERT_TYPES = frozenset({CLOCK_APPROACHING, CLOCK_OVERDUE, ALERT_WITHDRAWN})
REVIEW_CLOCK_OPENED = frozenset({CLOCK_SET, CLOCK_DUE_DATE_CHANGED})
REVIEW_CLOCK_CLOSED = frozenset({CLOCK_MET, CLOCK_LATE, CLOCK_CANCELLED})
ANNUAL_REVIEW_CLOCK = "annual_review"
"""The deadlines rule whose open clocks are the reviews on a SENCO's termly list."""

_Model = TypeVar("_Model", bound=BaseModel)
_CASE_ID: TypeAdapter[str] = TypeAdapter(CaseId)


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A consumed CloudEvent: its attributes and its JSON data."""

    id: str
    type: str
    source: str
    subject: str | None
    data: dict[str, Any]
    time: datetime | None = None
    correlation_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _ClockAlertData(_Tolerant):
    """What notify reads of ClockApproaching and ClockOverdue (deadlines' schema)."""

    clock_id: str
    case_id: str | None = None
    clock: str
    title: str | None = None
    due_on: date
    act_by: date | None = None
    legal_basis: str
    statutory: bool
    escalate: bool
    lead_working_days: int | None = None
    exception_reason: str | None = None
    action: str | None = None


class _WithdrawnData(_Tolerant):
    """What notify reads of AlertWithdrawn: ``alert_id`` is the withdrawn event's id."""

    case_id: str | None = None
    alert_id: str
    reason: str | None = None


class _CoordinatorAssignedData(_Tolerant):
    coordinator_id: str | None
    previous_coordinator_id: str | None = None


class _RequestReceivedData(_Tolerant):
    case_id: str | None = None
    school_urn: SchoolUrn


class _ClockData(_Tolerant):
    """What notify reads of any clock event, to follow the annual review clocks."""

    case_id: str | None = None
    clock_id: str
    clock: str
    due_on: date
    legal_basis: str = ""


class _SettingData(_Tolerant):
    case_id: str | None = None
    setting_urn: SchoolUrn | None = None


class _ArrangedData(_SettingData):
    meeting_on: date


@dataclass(frozen=True, slots=True)
class ClockFacts:
    """The identity and due date of a clock, from any of its events."""

    case_id: str
    clock_id: str
    clock: str
    due_on: date
    legal_basis: str


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """What a reviews event says about a case's setting and next meeting."""

    case_id: str
    setting_urn: int | None = None
    meeting_on: date | None = None


def _validated(model: type[_Model], event: InboundEvent) -> _Model:
    try:
        return model.model_validate(event.data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise UnreadableMessage(
            f"{event.type} event {event.id} has data notify cannot read ({problems}); "
            "the producer must publish data matching its schema"
        ) from error


def _case_id(event: InboundEvent, from_data: str | None) -> str:
    case_id = event.subject or from_data
    if not case_id:
        raise UnreadableMessage(
            f"{event.type} event {event.id} names no case: set ce_subject to the "
            "case id"
        )
    if from_data and event.subject and from_data != event.subject:
        raise UnreadableMessage(
            f"{event.type} event {event.id} has subject {event.subject!r} but data "
            f"case_id {from_data!r}: they must be the same case"
        )
    try:
        return _CASE_ID.validate_python(case_id)
    except ValidationError:
        raise UnreadableMessage(
            f"{event.type} event {event.id} has case id {case_id[:60]!r}, which is "
            "not a case id (a UUID in lower case)"
        ) from None


def read_clock_notice(event: InboundEvent) -> ClockNotice:
    """The alert facts of a ClockApproaching or ClockOverdue event."""
    data = _validated(_ClockAlertData, event)
    kind = (
        AlertKind.APPROACHING if event.type == CLOCK_APPROACHING else AlertKind.OVERDUE
    )
    return ClockNotice(
        event_id=event.id,
        kind=kind,
        case_id=_case_id(event, data.case_id),
        clock_id=data.clock_id,
        clock=data.clock,
        due_on=data.due_on,
        act_by=data.act_by,
        legal_basis=data.legal_basis,
        statutory=data.statutory,
        escalate=data.escalate,
        lead=data.lead_working_days,
        exception_reason=data.exception_reason,
        title=data.title,
        action=data.action,
    )


def read_withdrawal(event: InboundEvent) -> Withdrawal:
    data = _validated(_WithdrawnData, event)
    return Withdrawal(
        event_id=event.id,
        case_id=_case_id(event, data.case_id),
        withdrawn_event_id=data.alert_id,
        reason=data.reason,
    )


def read_coordinator_assigned(event: InboundEvent) -> tuple[str, str | None]:
    """The case id and its new coordinator (``None``: the case has none now)."""
    data = _validated(_CoordinatorAssignedData, event)
    return _case_id(event, None), data.coordinator_id


def read_request_school(event: InboundEvent) -> tuple[str, int]:
    """The case id of a RequestReceived and the school it names."""
    data = _validated(_RequestReceivedData, event)
    return _case_id(event, data.case_id), data.school_urn


def read_clock_facts(event: InboundEvent) -> ClockFacts:
    data = _validated(_ClockData, event)
    return ClockFacts(
        case_id=_case_id(event, data.case_id),
        clock_id=data.clock_id,
        clock=data.clock,
        due_on=data.due_on,
        legal_basis=data.legal_basis,
    )


def read_review_facts(event: InboundEvent) -> ReviewFacts:
    """The setting (and, for ReviewArranged, the meeting date) a reviews event names."""
    if event.type == REVIEW_ARRANGED:
        arranged = _validated(_ArrangedData, event)
        return ReviewFacts(
            _case_id(event, arranged.case_id),
            arranged.setting_urn,
            arranged.meeting_on,
        )
    data = _validated(_SettingData, event)
    return ReviewFacts(_case_id(event, data.case_id), data.setting_urn)
