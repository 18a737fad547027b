"""The JSON bodies intake's HTTP API accepts and returns.

Request bodies refuse unknown fields, so a misspelt field is a 422 naming it rather
than a value silently ignored. Their constraints repeat the domain's for the OpenAPI
document; the domain checks them again, with the rules that need the time (nothing in
the future) or the case (nothing before the request).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from intake.application.read_model import CaseSummary
from intake.application.service import CaseHistory
from send_schemas import intake as contract
from sendkit.calendar import london_date
from sendkit.events import RecordedEvent

Pseudonym = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A pseudonymous reference: letters, digits, '.', '_' or '-'.",
    ),
]
Text = Annotated[str, Field(min_length=1, max_length=4000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReceiveRequestBody(_Body):
    """A request for an EHC needs assessment, as it arrived."""

    requester_type: contract.RequesterType
    child_reference: Pseudonym
    date_of_birth: date
    school_urn: contract.SchoolUrn
    curriculum_year: contract.CurriculumYear
    channel: contract.Channel
    received_at: AwareDatetime = Field(
        description="When it arrived, with a time zone offset; not in the future."
    )
    child_name: Text | None = None
    requester_name: Text | None = None


class AssignCoordinatorBody(_Body):
    """The coordinator who takes the case."""

    coordinator_id: Pseudonym


class ReassignAllBody(_Body):
    """The coordinator who takes every open case of the one leaving."""

    to_coordinator_id: Pseudonym


class DecisionBody(_Body):
    """The decision whether to assess, and the day the family was told."""

    outcome: Literal["agreed", "refused"]
    notified_on: date = Field(
        description="London date; not before the request, not in the future."
    )
    note: Text | None = None


class TimeLimitExceptionBody(_Body):
    """A statutory exception to one clock, with the evidence for it."""

    clock: contract.Clock
    reason: contract.ExceptionReason
    evidence: Text


class WithdrawalBody(_Body):
    """The withdrawal of a request; the date defaults to today in London."""

    withdrawn_on: date | None = None
    reason: Text | None = None


class SurgeryPresentationBody(_Body):
    """The day the request was presented to the Local Area Surgery."""

    presented_on: date = Field(
        description="London date; not before the request, not in the future, not "
        "after the decision."
    )
    note: Text | None = None


class CorrectionBody(_Body):
    """A wrongly recorded fact, its right value (ISO 8601) and why it was wrong."""

    field: Literal["received_at", "notified_on", "presented_on"]
    new_value: str = Field(min_length=1, max_length=64)
    reason: Text


class CaseSummaryOut(BaseModel):
    """One case in a list."""

    case_id: str
    status: str
    received_at: datetime
    received_on: date
    school_urn: int
    curriculum_year: int
    requester_type: str
    channel: str
    coordinator_id: str | None
    notified_on: date | None
    presented_on: date | None
    version: int

    @classmethod
    def of(cls, summary: CaseSummary) -> CaseSummaryOut:
        return cls(
            case_id=summary.case_id,
            status=str(summary.status),
            received_at=summary.received_at,
            received_on=london_date(summary.received_at),
            school_urn=summary.school_urn,
            curriculum_year=summary.curriculum_year,
            requester_type=summary.requester_type,
            channel=summary.channel,
            coordinator_id=summary.coordinator_id,
            notified_on=summary.notified_on,
            presented_on=summary.presented_on,
            version=summary.version,
        )


class CaseListOut(BaseModel):
    """A page of cases and how many matched in all."""

    total: int
    offset: int
    limit: int
    cases: list[CaseSummaryOut]


class EventOut(BaseModel):
    """One event of a case's history, with its private part."""

    id: str
    type: str
    version: int
    position: int
    time: datetime
    actor: str
    correlation_id: str
    causation_id: str | None
    data: dict[str, Any]
    private: dict[str, Any] | None

    @classmethod
    def of(cls, event: RecordedEvent) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            version=event.version,
            position=event.position,
            time=event.time,
            actor=event.metadata.actor,
            correlation_id=event.metadata.correlation_id,
            causation_id=event.metadata.causation_id,
            data=event.data,
            private=event.private,
        )


class TimeLimitExceptionOut(BaseModel):
    clock: str
    reason: str


class CaseOut(BaseModel):
    """One case with its personal details and its whole history."""

    case_id: str
    status: str
    version: int
    requester_type: str | None
    requester_name: str | None
    channel: str | None
    received_at: datetime | None
    received_on: date | None
    school_urn: int | None
    curriculum_year: int | None
    child_reference: str | None
    child_name: str | None
    date_of_birth: date | None
    coordinator_id: str | None
    notified_on: date | None
    withdrawn_on: date | None
    presented_on: date | None
    time_limit_exceptions: list[TimeLimitExceptionOut]
    history: list[EventOut]

    @classmethod
    def of(cls, found: CaseHistory) -> CaseOut:
        case = found.case
        return cls(
            case_id=case.case_id,
            status=str(case.status),
            version=case.version,
            requester_type=case.requester_type,
            requester_name=case.requester_name,
            channel=case.channel,
            received_at=case.received_at,
            received_on=london_date(case.received_at) if case.received_at else None,
            school_urn=case.school_urn,
            curriculum_year=case.curriculum_year,
            child_reference=case.child_reference,
            child_name=case.child_name,
            date_of_birth=case.date_of_birth,
            coordinator_id=case.coordinator_id,
            notified_on=case.notified_on,
            withdrawn_on=case.withdrawn_on,
            presented_on=case.presented_on,
            time_limit_exceptions=[
                TimeLimitExceptionOut(clock=clock, reason=reason)
                for clock, reason in case.exceptions
            ],
            history=[EventOut.of(event) for event in found.events],
        )


class CommandOut(BaseModel):
    """The answer to a command on one case."""

    case_id: str
    status: str
    version: int
    events: list[dict[str, str]]
