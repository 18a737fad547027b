"""The JSON bodies the reviews HTTP API accepts and returns.

Request bodies refuse unknown fields, so a misspelt field is a 422 naming it rather
than a value silently ignored. Their constraints repeat the domain's for the OpenAPI
document; the domain checks them again, with the rules that need the time (nothing in
the future) or the case (nothing before the plan, the meeting or the arrangement).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from reviews.application.read_model import UpcomingReview
from reviews.application.service import CaseHistory
from reviews.domain import InterimRequest, Review
from reviews.domain.decide import MAX_LONG_TEXT, MAX_TEXT
from send_schemas import reviews as contract
from send_schemas.intake import SchoolUrn
from sendkit.calendar import act_by
from sendkit.events import RecordedEvent

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
LongText = Annotated[str, Field(min_length=1, max_length=MAX_LONG_TEXT)]
RoleList = Annotated[
    list[contract.Role],
    Field(min_length=1, description="Roles, each once: " + ", ".join(contract.ROLES)),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArrangeReviewBody(_Body):
    """A review meeting to arrange."""

    meeting_on: date = Field(
        description="The meeting's London date; may be up to 12 months ahead."
    )
    invitee_roles: RoleList = Field(
        description="Who is invited, by role; must include parent or young_person."
    )
    setting_urn: SchoolUrn | None = Field(
        default=None,
        description="The convening setting; the setting the plan names when absent.",
    )
    kind: contract.ReviewKind = Field(
        default="annual",
        description="interim answers the case's open interim review request.",
    )
    arranged_on: date | None = Field(
        default=None, description="When it was arranged; today when absent."
    )
    note: Text | None = None


class RearrangeReviewBody(_Body):
    """The new date of a meeting not yet held."""

    meeting_on: date
    reason: Text | None = None


class PapersSentBody(_Body):
    """The day the invitations were sent and the advice circulated."""

    sent_on: date


class ReviewHeldBody(_Body):
    """The meeting as it was held."""

    held_on: date
    attendee_roles: RoleList
    child_views_gathered: bool = Field(
        description="Whether the child's or young person's views were gathered."
    )
    recommendations: LongText | None = None


class ReportReceivedBody(_Body):
    """The day the setting's review report reached the council."""

    received_on: date


class ReviewDecisionBody(_Body):
    """The council's decision after the review, and the day it was notified."""

    decision: contract.Decision
    notified_on: date
    proposed_amendments: LongText | None = Field(
        default=None, description="Required with amend, refused otherwise."
    )
    note: Text | None = None


class ReferralsMadeBody(_Body):
    """The day the referrals to outside agencies for the review were made."""

    made_on: date


class ReviewListSentBody(_Body):
    """A list of the term's upcoming reviews, sent to the setting's SENCO."""

    term_start: date
    term_end: date
    sent_on: date
    include_overdue: bool = Field(
        default=False,
        description="Whether the list included reviews already overdue.",
    )


class InterimReviewRequestBody(_Body):
    """A request for an interim review, for a significant change."""

    requested_on: date
    reason: contract.InterimReason
    details: Text | None = None


class CommandOut(BaseModel):
    """The answer to a command on one case."""

    case_id: str
    plan_status: str
    version: int
    events: list[dict[str, str]]
    review_id: str | None = None
    review_status: str | None = None
    next_review_due_on: date | None = None


class ReviewOut(BaseModel):
    """One review with its private details."""

    review_id: str
    kind: str
    status: str
    meeting_on: date
    arranged_on: date
    times_arranged: int
    setting_urn: int | None
    invitee_roles: list[str]
    papers_sent_on: date | None
    papers_due_on: date
    held_on: date | None
    attendee_roles: list[str]
    child_views_gathered: bool | None
    recommendations: str | None
    report_received_on: date | None
    decision: str | None
    notified_on: date | None
    proposed_amendments: str | None
    amended_on: date | None
    referrals_made_on: date | None

    @classmethod
    def of(cls, review: Review) -> ReviewOut:
        return cls(
            review_id=review.review_id,
            kind=review.kind,
            status=str(review.status),
            meeting_on=review.meeting_on,
            arranged_on=review.arranged_on,
            times_arranged=review.times_arranged,
            setting_urn=review.setting_urn,
            invitee_roles=list(review.invitee_roles),
            papers_sent_on=review.papers_sent_on,
            papers_due_on=review.papers_due_on,
            held_on=review.held_on,
            attendee_roles=list(review.attendee_roles),
            child_views_gathered=review.child_views_gathered,
            recommendations=review.recommendations,
            report_received_on=review.report_received_on,
            decision=review.decision,
            notified_on=review.notified_on,
            proposed_amendments=review.proposed_amendments,
            amended_on=review.amended_on,
            referrals_made_on=review.referrals_made_on,
        )


class InterimRequestOut(BaseModel):
    requested_on: date
    reason: str
    details: str | None
    review_id: str | None

    @classmethod
    def of(cls, request: InterimRequest) -> InterimRequestOut:
        return cls(
            requested_on=request.requested_on,
            reason=request.reason,
            details=request.details,
            review_id=request.review_id,
        )


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


class CaseOut(BaseModel):
    """One case's review cycle, its reviews with their private details, its history.

    The due dates shown here are for reading; the deadlines service owns the clocks
    and their alerts.
    """

    case_id: str
    version: int
    plan_status: str
    plan_issued_on: date | None
    setting_urn: int | None
    last_amended_on: date | None
    ended_on: date | None
    end_reason: str | None
    coordinator_id: str | None
    next_review_due_on: date | None
    next_review_act_by: date | None
    reviews: list[ReviewOut]
    interim_requests: list[InterimRequestOut]
    history: list[EventOut]

    @classmethod
    def of(cls, found: CaseHistory) -> CaseOut:
        case = found.case
        due_on = case.next_review_due_on
        return cls(
            case_id=case.case_id,
            version=case.version,
            plan_status=str(case.plan_status),
            plan_issued_on=case.plan_issued_on,
            setting_urn=case.setting_urn,
            last_amended_on=case.last_amended_on,
            ended_on=case.ended_on,
            end_reason=case.end_reason,
            coordinator_id=case.coordinator_id,
            next_review_due_on=due_on,
            next_review_act_by=act_by(due_on) if due_on else None,
            reviews=[ReviewOut.of(review) for review in case.reviews],
            interim_requests=[
                InterimRequestOut.of(request) for request in case.interim_requests
            ],
            history=[EventOut.of(event) for event in found.events],
        )


class MeetingOut(BaseModel):
    review_id: str
    kind: str
    status: str
    meeting_on: date


class UpcomingReviewOut(BaseModel):
    """One case's next review in a list: no personal data."""

    case_id: str
    due_on: date
    act_by: date | None
    based_on: str
    base_on: date
    setting_urn: int | None
    coordinator_id: str | None
    meeting: MeetingOut | None
    listed_on: date | None

    @classmethod
    def of(cls, row: UpcomingReview) -> UpcomingReviewOut:
        review = row.review
        return cls(
            case_id=row.case_id,
            due_on=row.due_on,
            act_by=row.act_by,
            based_on=row.based_on,
            base_on=row.base_on,
            setting_urn=row.setting_urn,
            coordinator_id=row.coordinator_id,
            meeting=MeetingOut(
                review_id=review.review_id,
                kind=review.kind,
                status=str(review.status),
                meeting_on=review.meeting_on,
            )
            if review is not None
            else None,
            listed_on=row.listed_on,
        )


class UpcomingReviewsOut(BaseModel):
    """The next reviews due in a window, soonest first."""

    first_day: date
    last_day: date
    total: int
    reviews: list[UpcomingReviewOut]
