"""The state of one case, folded from its events.

A case moves through ``Status``: awaiting a decision, then assessment agreed or
refused, and it may be withdrawn while it is still open (awaiting a decision or being
assessed). A refused or withdrawn case is closed: it takes no more decisions,
assignments or exceptions, though a recorded fact can still be corrected. The day the
request was presented to the Local Area Surgery (``presented_on``) is a fact beside
the status, not a status of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from send_schemas import intake as contract
from sendkit.events import RecordedEvent


class Status(StrEnum):
    """Where a case is in the intake process."""

    AWAITING_DECISION = "awaiting_decision"
    ASSESSMENT_AGREED = "assessment_agreed"
    ASSESSMENT_REFUSED = "assessment_refused"
    WITHDRAWN = "withdrawn"


OPEN_STATUSES = frozenset({Status.AWAITING_DECISION, Status.ASSESSMENT_AGREED})


@dataclass(frozen=True, slots=True)
class Case:
    """Everything the intake service knows about one case, public and private."""

    case_id: str
    version: int = 0
    status: Status | None = None
    requester_type: str | None = None
    channel: str | None = None
    received_at: datetime | None = None
    school_urn: int | None = None
    curriculum_year: int | None = None
    child_reference: str | None = None
    date_of_birth: date | None = None
    child_name: str | None = None
    requester_name: str | None = None
    coordinator_id: str | None = None
    notified_on: date | None = None
    withdrawn_on: date | None = None
    presented_on: date | None = None
    exceptions: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def exists(self) -> bool:
        return self.status is not None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def decided(self) -> bool:
        return self.notified_on is not None


def evolve(case: Case, event: RecordedEvent) -> Case:
    """The case after ``event``; an event of another type only moves the version."""
    case = replace(case, version=event.version)
    data, private = event.data, event.private or {}

    if event.type == contract.RequestReceived.EVENT_TYPE:
        received = contract.RequestReceived.model_validate(data)
        return replace(
            case,
            status=Status.AWAITING_DECISION,
            requester_type=received.requester_type,
            channel=received.channel,
            received_at=received.received_at,
            school_urn=received.school_urn,
            curriculum_year=received.curriculum_year,
            child_reference=private.get("child_reference"),
            date_of_birth=_date_or_none(private.get("date_of_birth")),
            child_name=private.get("child_name"),
            requester_name=private.get("requester_name"),
        )
    if event.type == contract.CoordinatorAssigned.EVENT_TYPE:
        assigned = contract.CoordinatorAssigned.model_validate(data)
        return replace(case, coordinator_id=assigned.coordinator_id)
    if event.type == contract.AssessmentAgreed.EVENT_TYPE:
        agreed = contract.AssessmentAgreed.model_validate(data)
        return replace(
            case, status=Status.ASSESSMENT_AGREED, notified_on=agreed.notified_on
        )
    if event.type == contract.AssessmentRefused.EVENT_TYPE:
        refused = contract.AssessmentRefused.model_validate(data)
        return replace(
            case, status=Status.ASSESSMENT_REFUSED, notified_on=refused.notified_on
        )
    if event.type == contract.TimeLimitExceptionRecorded.EVENT_TYPE:
        recorded = contract.TimeLimitExceptionRecorded.model_validate(data)
        return replace(
            case, exceptions=(*case.exceptions, (recorded.clock, recorded.reason))
        )
    if event.type == contract.RequestWithdrawn.EVENT_TYPE:
        withdrawn = contract.RequestWithdrawn.model_validate(data)
        return replace(
            case, status=Status.WITHDRAWN, withdrawn_on=withdrawn.withdrawn_on
        )
    if event.type == contract.RequestPresentedAtSurgery.EVENT_TYPE:
        presented = contract.RequestPresentedAtSurgery.model_validate(data)
        return replace(case, presented_on=presented.presented_on)
    if event.type == contract.SurgeryPresentationCorrected.EVENT_TYPE:
        moved = contract.SurgeryPresentationCorrected.model_validate(data)
        return replace(case, presented_on=moved.new_value)
    if event.type == contract.RequestCorrected.EVENT_TYPE:
        corrected = contract.RequestCorrected.model_validate(data)
        if corrected.field == "received_at":
            return replace(
                case, received_at=datetime.fromisoformat(corrected.new_value)
            )
        return replace(case, notified_on=date.fromisoformat(corrected.new_value))
    return case


def fold(case_id: str, events: Iterable[RecordedEvent]) -> Case:
    """The case built from its whole stream, oldest event first."""
    case = Case(case_id=case_id)
    for event in events:
        case = evolve(case, event)
    return case


def _date_or_none(value: object) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None
