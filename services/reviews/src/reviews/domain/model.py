"""The state of one case's review cycle, folded from the reviews service's own events.

A case's plan is, as far as reviews knows, ``none`` (no final plan issued), ``active``
(issued, and neither ceased nor transferred out) or ``ended``. Each review moves from
``arranged`` to ``held`` to ``decided``, and a decision to amend to ``amended`` once
the amended plan is issued. At most one review is in progress (arranged and not yet
decided) at a time.

The next review is due by the last day of the 12 months starting with the date of the
last review meeting held since the plan was issued, or with the plan's issue date when
none has been held (CFA 2014 s.44(1); the reading of STATUTORY_CLOCKS.md's open
question 3: the 12 months restart with the meeting, not the decision).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any

from send_schemas import reviews as contract
from sendkit.calendar import days_before, last_of_months_starting_with
from sendkit.events import RecordedEvent

REVIEW_PERIOD_MONTHS = 12
PAPERS_DAYS_BEFORE = 14


class PlanStatus(StrEnum):
    """What the reviews service knows of the case's plan."""

    NONE = "none"
    ACTIVE = "active"
    ENDED = "ended"


class ReviewStatus(StrEnum):
    """Where one review is."""

    ARRANGED = "arranged"
    HELD = "held"
    DECIDED = "decided"
    AMENDED = "amended"


@dataclass(frozen=True, slots=True)
class Review:
    """One review meeting and what followed it, public and private."""

    review_id: str
    kind: str
    meeting_on: date
    arranged_on: date
    """When the review was first arranged; moving the meeting keeps it."""
    setting_urn: int | None
    invitee_roles: tuple[str, ...]
    times_arranged: int = 1
    papers_sent_on: date | None = None
    held_on: date | None = None
    attendee_roles: tuple[str, ...] = ()
    child_views_gathered: bool | None = None
    recommendations: str | None = None
    report_received_on: date | None = None
    decision: str | None = None
    notified_on: date | None = None
    proposed_amendments: str | None = None
    amended_on: date | None = None
    referrals_made_on: date | None = None

    @property
    def status(self) -> ReviewStatus:
        if self.amended_on is not None:
            return ReviewStatus.AMENDED
        if self.decision is not None:
            return ReviewStatus.DECIDED
        if self.held_on is not None:
            return ReviewStatus.HELD
        return ReviewStatus.ARRANGED

    @property
    def in_progress(self) -> bool:
        return self.decision is None

    @property
    def papers_due_on(self) -> date:
        """The last day for the invitations and advice: 2 weeks before the meeting."""
        return days_before(self.meeting_on, PAPERS_DAYS_BEFORE)


@dataclass(frozen=True, slots=True)
class InterimRequest:
    """A request for an interim review, and the review that answered it, if any."""

    requested_on: date
    reason: str
    details: str | None = None
    review_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListSent:
    """The last list of upcoming reviews that named the case, sent to its SENCO."""

    setting_urn: int
    sent_on: date
    term_starts_on: date
    review_due_on: date


@dataclass(frozen=True, slots=True)
class Case:
    """Everything the reviews service knows about one case."""

    case_id: str
    version: int = 0
    plan_issued_on: date | None = None
    setting_urn: int | None = None
    ended_on: date | None = None
    end_reason: str | None = None
    last_amended_on: date | None = None
    coordinator_id: str | None = None
    reviews: tuple[Review, ...] = ()
    interim_requests: tuple[InterimRequest, ...] = ()
    list_sent: ListSent | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def plan_status(self) -> PlanStatus:
        if self.plan_issued_on is None:
            return PlanStatus.NONE
        if self.ended_on is not None:
            return PlanStatus.ENDED
        return PlanStatus.ACTIVE

    def review(self, review_id: str) -> Review | None:
        for review in self.reviews:
            if review.review_id == review_id:
                return review
        return None

    @property
    def review_in_progress(self) -> Review | None:
        for review in self.reviews:
            if review.in_progress:
                return review
        return None

    @property
    def open_interim_request(self) -> InterimRequest | None:
        for request in self.interim_requests:
            if request.review_id is None:
                return request
        return None

    @property
    def last_review_held_on(self) -> date | None:
        """The latest review meeting held since the current plan was issued."""
        if self.plan_issued_on is None:
            return None
        held = [
            review.held_on
            for review in self.reviews
            if review.held_on is not None and review.held_on >= self.plan_issued_on
        ]
        return max(held, default=None)

    @property
    def next_review_base(self) -> date | None:
        """The day the current 12 months start with: the last review, else the plan."""
        return self.last_review_held_on or self.plan_issued_on

    @property
    def next_review_due_on(self) -> date | None:
        """The last day by which the next review must be held, while the plan runs."""
        base = self.next_review_base
        if base is None or self.plan_status is not PlanStatus.ACTIVE:
            return None
        return last_of_months_starting_with(base, REVIEW_PERIOD_MONTHS)


def _with_review(case: Case, review_id: str, **changes: Any) -> Case:
    reviews = tuple(
        replace(review, **changes) if review.review_id == review_id else review
        for review in case.reviews
    )
    return replace(case, reviews=reviews)


def evolve(case: Case, event: RecordedEvent) -> Case:
    """The case after ``event``; an event of another type only moves the version."""
    case = replace(case, version=event.version)
    data, private = event.data, event.private or {}

    match event.type:
        case contract.ReviewCycleStarted.EVENT_TYPE:
            started = contract.ReviewCycleStarted.model_validate(data)
            return replace(
                case,
                plan_issued_on=started.issued_on,
                setting_urn=started.setting_urn,
                ended_on=None,
                end_reason=None,
            )
        case contract.PlanAmendmentRecorded.EVENT_TYPE:
            amended = contract.PlanAmendmentRecorded.model_validate(data)
            case = replace(
                case,
                last_amended_on=amended.amended_on,
                setting_urn=amended.setting_urn
                if amended.setting_urn is not None
                else case.setting_urn,
            )
            if amended.review_id is not None:
                case = _with_review(
                    case, amended.review_id, amended_on=amended.amended_on
                )
            return case
        case contract.ReviewCycleEnded.EVENT_TYPE:
            ended = contract.ReviewCycleEnded.model_validate(data)
            return replace(case, ended_on=ended.ended_on, end_reason=ended.reason)
        case contract.ReviewCoordinatorAssigned.EVENT_TYPE:
            assigned = contract.ReviewCoordinatorAssigned.model_validate(data)
            return replace(case, coordinator_id=assigned.coordinator_id)
        case contract.ReviewArranged.EVENT_TYPE:
            return _arranged(case, contract.ReviewArranged.model_validate(data))
        case contract.ReviewPapersSent.EVENT_TYPE:
            sent = contract.ReviewPapersSent.model_validate(data)
            return _with_review(case, sent.review_id, papers_sent_on=sent.sent_on)
        case contract.ReviewHeld.EVENT_TYPE:
            held = contract.ReviewHeld.model_validate(data)
            return _with_review(
                case,
                held.review_id,
                held_on=held.held_on,
                attendee_roles=tuple(held.attendee_roles),
                child_views_gathered=held.child_views_gathered,
                recommendations=private.get("recommendations"),
            )
        case contract.ReviewReportReceived.EVENT_TYPE:
            report = contract.ReviewReportReceived.model_validate(data)
            return _with_review(
                case, report.review_id, report_received_on=report.received_on
            )
        case contract.ReviewDecided.EVENT_TYPE:
            decided = contract.ReviewDecided.model_validate(data)
            return _with_review(
                case,
                decided.review_id,
                decision=decided.decision,
                notified_on=decided.notified_on,
                proposed_amendments=private.get("proposed_amendments"),
            )
        case contract.AgencyReferralsMade.EVENT_TYPE:
            referred = contract.AgencyReferralsMade.model_validate(data)
            return _with_review(
                case, referred.review_id, referrals_made_on=referred.made_on
            )
        case contract.ReviewListSentToSenco.EVENT_TYPE:
            listed = contract.ReviewListSentToSenco.model_validate(data)
            return replace(
                case,
                list_sent=ListSent(
                    setting_urn=listed.setting_urn,
                    sent_on=listed.sent_on,
                    term_starts_on=listed.term_starts_on,
                    review_due_on=listed.review_due_on,
                ),
            )
        case contract.InterimReviewRequested.EVENT_TYPE:
            requested = contract.InterimReviewRequested.model_validate(data)
            request = InterimRequest(
                requested_on=requested.requested_on,
                reason=requested.reason,
                details=private.get("details"),
            )
            return replace(case, interim_requests=(*case.interim_requests, request))
    return case


def _arranged(case: Case, arranged: contract.ReviewArranged) -> Case:
    earlier = case.review(arranged.review_id)
    if earlier is not None:
        # Arranged again: the meeting moved, and the later date replaces the earlier.
        return _with_review(
            case,
            arranged.review_id,
            meeting_on=arranged.meeting_on,
            setting_urn=arranged.setting_urn,
            invitee_roles=tuple(arranged.invitee_roles),
            times_arranged=earlier.times_arranged + 1,
        )
    review = Review(
        review_id=arranged.review_id,
        kind=arranged.kind,
        meeting_on=arranged.meeting_on,
        arranged_on=arranged.arranged_on,
        setting_urn=arranged.setting_urn,
        invitee_roles=tuple(arranged.invitee_roles),
    )
    case = replace(case, reviews=(*case.reviews, review))
    open_request = case.open_interim_request
    if arranged.kind == "interim" and open_request is not None:
        answered = replace(open_request, review_id=arranged.review_id)
        case = replace(
            case,
            interim_requests=tuple(
                answered if request is open_request else request
                for request in case.interim_requests
            ),
        )
    return case


def fold(case_id: str, events: Iterable[RecordedEvent]) -> Case:
    """The case built from its whole stream, oldest event first."""
    case = Case(case_id=case_id)
    for event in events:
        case = evolve(case, event)
    return case
