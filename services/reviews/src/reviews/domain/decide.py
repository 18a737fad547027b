"""The rules of reviews: from a case and a command to the events it causes.

Every rule is checked here, whichever entry point a command came through:

- a review is arranged, and an interim review requested, only for a case whose final
  plan has been issued and has neither ceased nor been transferred out;
- one review is in progress at a time: a review arranged and not yet decided must be
  decided, or moved, before another is arranged;
- an interim review is arranged only to answer an interim review request, and one
  request at a time is open;
- the invitees include the child's parent or the young person (Reg 20(2)(a)), and
  every role named is one of ``send_schemas.reviews.ROLES``, once;
- each fact of a review is recorded once: the papers, the meeting, the report, the
  decision; a held meeting is not moved;
- the report and the decision follow the meeting: neither is recorded before the
  meeting is, and neither is dated before it; there is one decision per review, an
  ``amend`` decision carries the proposed amendments and the others carry none;
- referrals to outside agencies are recorded once per review, and not after its
  meeting; a review goes on a SENCO's list only while the plan names that SENCO's
  setting, and a list sent again for the same term and due date records nothing;
- dates are not in the future (today is the London date of ``Context.now``), except
  the date of a meeting being arranged or moved, which may be up to 12 months ahead;
  no date is before the plan was issued, nothing about a review is dated before it
  was arranged, and no fact is dated after the plan ceased or moved away.

Values that break a rule raise ``InvalidCommand`` naming each field (answered 422); a
command the case's state rules out raises an ``ImpossibleTransition`` (409). The
reactions to the plans and intake services' events record facts those services have
decided, so they refuse nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from reviews.domain.commands import (
    ArrangeReview,
    Command,
    Context,
    DecideReview,
    EndReviewCycle,
    FollowCoordinator,
    RearrangeReview,
    RecordPapersSent,
    RecordPlanAmendment,
    RecordReferralsMade,
    RecordReportReceived,
    RecordReviewHeld,
    RecordReviewListSent,
    RequestInterimReview,
    StartReviewCycle,
)
from reviews.domain.errors import (
    AlreadyRecorded,
    ImpossibleTransition,
    InvalidCommand,
    NoActivePlan,
    NotYetHeld,
    ReviewInProgress,
    ReviewNotFound,
)
from reviews.domain.model import Case, PlanStatus, Review
from send_schemas import reviews as contract
from send_schemas.intake import URN_MAX, URN_MIN
from sendkit.calendar import london_date, months_after
from sendkit.events import NewEvent

MAX_TEXT = 4000
MAX_LONG_TEXT = 20000
"""Recommendations and proposed amendments may run to several pages."""
MEETING_MONTHS_AHEAD = 12


class _Problems:
    """Collects every bad field of a command before refusing it once."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.found.append((field, message))

    def check(self, ok: bool, field: str, message: str) -> None:
        if not ok:
            self.add(field, message)

    def day(
        self,
        field: str,
        day: date,
        *,
        today: date | None,
        after: Sequence[tuple[date | None, str]] = (),
        before: Sequence[tuple[date | None, str]] = (),
    ) -> None:
        """Check ``day``: not after ``today``, not before nor after the given bounds.

        Only the first broken bound is reported, so one field has one message.
        """
        if today is not None and day > today:
            self.add(field, f"must not be in the future (today is {today} in London)")
            return
        for bound, what in after:
            if bound is not None and day < bound:
                self.add(field, f"must not be before {what} ({bound})")
                return
        for bound, what in before:
            if bound is not None and day > bound:
                self.add(field, f"must not be after {what} ({bound})")
                return

    def text(self, field: str, value: str | None, limit: int = MAX_TEXT) -> None:
        if value is not None and not (value.strip() and len(value) <= limit):
            self.add(field, f"must be non-blank and at most {limit} characters")

    def roles(
        self, field: str, roles: Sequence[str], *, family_invited: bool = False
    ) -> None:
        unknown = sorted({role for role in roles if role not in contract.ROLES})
        if not roles:
            self.add(field, "must name at least one role")
        elif unknown:
            self.add(
                field,
                f"names unknown role(s) {', '.join(unknown)}: use "
                + ", ".join(contract.ROLES),
            )
        elif len(set(roles)) != len(roles):
            self.add(field, "lists a role more than once")
        elif family_invited and not set(roles) & set(contract.FAMILY_ROLES):
            self.add(
                field,
                "must include parent or young_person: Reg 20(2)(a) requires the "
                "child's parent or the young person to be invited",
            )

    def raise_if_any(self) -> None:
        if self.found:
            raise InvalidCommand(self.found)


def _event(
    model: contract.ReviewsEvent,
    context: Context,
    private: dict[str, Any] | None = None,
) -> NewEvent:
    kept = {k: v for k, v in (private or {}).items() if v is not None}
    return NewEvent(
        type=model.EVENT_TYPE,
        data=model.model_dump(mode="json"),
        metadata=context.metadata,
        private=kept or None,
    )


def _today(context: Context) -> date:
    return london_date(context.now)


def _require_active_plan(case: Case, doing: str) -> None:
    if case.plan_status is PlanStatus.NONE:
        raise NoActivePlan(
            f"case {case.case_id} has no issued EHC plan, so no review can be "
            f"{doing}: the plans service must issue the final plan first"
        )
    if case.plan_status is PlanStatus.ENDED:
        how = "ceased" if case.end_reason == "plan_ceased" else "was transferred out"
        raise NoActivePlan(
            f"the plan of case {case.case_id} {how} on {case.ended_on}: no review "
            f"can be {doing} for it"
        )


def _require_review(case: Case, review_id: str) -> Review:
    review = case.review(review_id)
    if review is None:
        raise ReviewNotFound(case.case_id, review_id)
    return review


def _within_plan(case: Case, day: date, field: str) -> None:
    if case.ended_on is not None and day > case.ended_on:
        raise NoActivePlan(
            f"the plan of case {case.case_id} ended on {case.ended_on}, before the "
            f"{field} given ({day}): nothing about a review is recorded after it"
        )


def _meeting_problems(
    problems: _Problems, case: Case, meeting_on: date, today: date, arranged_on: date
) -> None:
    latest = months_after(today, MEETING_MONTHS_AHEAD)
    # An arrangement date in the future is its own error; it bounds nothing.
    arranged = arranged_on if arranged_on <= today else None
    problems.day(
        "meeting_on",
        meeting_on,
        today=None,
        after=[
            (case.plan_issued_on, "the plan was issued"),
            (arranged, "the day it was arranged"),
        ],
        before=[(latest, f"{MEETING_MONTHS_AHEAD} months from today")],
    )


# From staff ---------------------------------------------------------------------------


def _arrange(case: Case, command: ArrangeReview, context: Context) -> list[NewEvent]:
    _require_active_plan(case, "arranged")
    if case.review(command.review_id) is not None:
        raise AlreadyRecorded(
            f"review {command.review_id} of case {case.case_id} is arranged already: "
            "rearrange it to move the meeting"
        )
    in_progress = case.review_in_progress
    if in_progress is not None:
        raise ReviewInProgress(
            f"review {in_progress.review_id} of case {case.case_id} (meeting on "
            f"{in_progress.meeting_on}, {in_progress.status}) is not decided yet: "
            "record its decision, or move its meeting, before arranging another"
        )

    today = _today(context)
    arranged_on = command.arranged_on or today
    setting_urn = (
        command.setting_urn if command.setting_urn is not None else case.setting_urn
    )
    problems = _Problems()
    problems.check(
        command.kind in contract.REVIEW_KINDS,
        "kind",
        "must be one of " + ", ".join(contract.REVIEW_KINDS),
    )
    problems.day(
        "arranged_on",
        arranged_on,
        today=today,
        after=[(case.plan_issued_on, "the plan was issued")],
    )
    _meeting_problems(problems, case, command.meeting_on, today, arranged_on)
    problems.check(
        setting_urn is None
        or (not isinstance(setting_urn, bool) and URN_MIN <= setting_urn <= URN_MAX),
        "setting_urn",
        f"must be a setting URN: 6 digits from {URN_MIN} to {URN_MAX}",
    )
    problems.roles("invitee_roles", command.invitee_roles, family_invited=True)
    problems.text("note", command.note)
    problems.raise_if_any()

    if command.kind == "interim" and case.open_interim_request is None:
        raise ImpossibleTransition(
            f"no interim review of case {case.case_id} has been requested: request "
            "one first, or arrange an annual review"
        )

    arranged = contract.ReviewArranged(
        case_id=case.case_id,
        review_id=command.review_id,
        kind=command.kind,
        meeting_on=command.meeting_on,
        arranged_on=arranged_on,
        setting_urn=setting_urn,
        invitee_roles=list(command.invitee_roles),
    )
    return [_event(arranged, context, {"note": command.note})]


def _rearrange(
    case: Case, command: RearrangeReview, context: Context
) -> list[NewEvent]:
    review = _require_review(case, command.review_id)
    _require_active_plan(case, "rearranged")
    if review.held_on is not None:
        raise AlreadyRecorded(
            f"review {review.review_id} was held on {review.held_on}: a meeting that "
            "has been held cannot be moved"
        )

    today = _today(context)
    problems = _Problems()
    if command.meeting_on == review.meeting_on:
        problems.add(
            "meeting_on", f"is the date already arranged ({review.meeting_on})"
        )
    else:
        _meeting_problems(problems, case, command.meeting_on, today, review.arranged_on)
    problems.text("reason", command.reason)
    problems.raise_if_any()

    moved = contract.ReviewArranged(
        case_id=case.case_id,
        review_id=review.review_id,
        kind=review.kind,
        meeting_on=command.meeting_on,
        arranged_on=review.arranged_on,
        setting_urn=review.setting_urn,
        invitee_roles=list(review.invitee_roles),
    )
    return [_event(moved, context, {"reason": command.reason})]


def _papers(case: Case, command: RecordPapersSent, context: Context) -> list[NewEvent]:
    review = _require_review(case, command.review_id)
    if review.papers_sent_on is not None:
        raise AlreadyRecorded(
            f"the papers of review {review.review_id} were recorded as sent on "
            f"{review.papers_sent_on}"
        )

    problems = _Problems()
    problems.day(
        "sent_on",
        command.sent_on,
        today=_today(context),
        after=[(review.arranged_on, "the day the review was arranged")],
        before=[(review.held_on or review.meeting_on, "the meeting")],
    )
    problems.raise_if_any()
    _within_plan(case, command.sent_on, "sent_on")

    sent = contract.ReviewPapersSent(
        case_id=case.case_id, review_id=review.review_id, sent_on=command.sent_on
    )
    return [_event(sent, context)]


def _held(case: Case, command: RecordReviewHeld, context: Context) -> list[NewEvent]:
    review = _require_review(case, command.review_id)
    if review.held_on is not None:
        raise AlreadyRecorded(
            f"review {review.review_id} was recorded as held on {review.held_on}"
        )

    problems = _Problems()
    problems.day(
        "held_on",
        command.held_on,
        today=_today(context),
        after=[
            (review.arranged_on, "the day the review was arranged"),
            (review.papers_sent_on, "the day the papers were sent"),
        ],
    )
    problems.roles("attendee_roles", command.attendee_roles)
    problems.text("recommendations", command.recommendations, MAX_LONG_TEXT)
    problems.raise_if_any()
    _within_plan(case, command.held_on, "held_on")

    held = contract.ReviewHeld(
        case_id=case.case_id,
        review_id=review.review_id,
        held_on=command.held_on,
        child_views_gathered=command.child_views_gathered,
        attendee_roles=list(command.attendee_roles),
    )
    return [_event(held, context, {"recommendations": command.recommendations})]


def _require_held(review: Review, doing: str) -> date:
    if review.held_on is None:
        raise NotYetHeld(
            f"review {review.review_id} has no meeting recorded as held (it is "
            f"arranged for {review.meeting_on}): no {doing} before the meeting; "
            "record the meeting held first"
        )
    return review.held_on


def _report(
    case: Case, command: RecordReportReceived, context: Context
) -> list[NewEvent]:
    review = _require_review(case, command.review_id)
    held_on = _require_held(review, "report")
    if review.report_received_on is not None:
        raise AlreadyRecorded(
            f"the report of review {review.review_id} was recorded as received on "
            f"{review.report_received_on}"
        )

    problems = _Problems()
    problems.day(
        "received_on",
        command.received_on,
        today=_today(context),
        after=[(held_on, "the meeting")],
    )
    problems.raise_if_any()
    _within_plan(case, command.received_on, "received_on")

    received = contract.ReviewReportReceived(
        case_id=case.case_id,
        review_id=review.review_id,
        received_on=command.received_on,
    )
    return [_event(received, context)]


def _decide_review(
    case: Case, command: DecideReview, context: Context
) -> list[NewEvent]:
    review = _require_review(case, command.review_id)
    held_on = _require_held(review, "decision")
    if review.decision is not None:
        raise AlreadyRecorded(
            f"review {review.review_id} was decided already ({review.decision}, "
            f"notified on {review.notified_on}): there is one decision per review"
        )

    problems = _Problems()
    problems.check(
        command.decision in contract.DECISIONS,
        "decision",
        "must be one of " + ", ".join(contract.DECISIONS),
    )
    if command.decision == "amend":
        problems.check(
            command.proposed_amendments is not None,
            "proposed_amendments",
            "are required with an amend decision: the notice carries them (Reg 22)",
        )
        problems.text("proposed_amendments", command.proposed_amendments, MAX_LONG_TEXT)
    elif command.proposed_amendments is not None:
        problems.add("proposed_amendments", "are given only with an amend decision")
    problems.day(
        "notified_on",
        command.notified_on,
        today=_today(context),
        after=[(held_on, "the meeting")],
    )
    problems.text("note", command.note)
    problems.raise_if_any()
    _within_plan(case, command.notified_on, "notified_on")

    decided = contract.ReviewDecided(
        case_id=case.case_id,
        review_id=review.review_id,
        decision=command.decision,
        notified_on=command.notified_on,
    )
    private = {
        "proposed_amendments": command.proposed_amendments,
        "note": command.note,
    }
    return [_event(decided, context, private)]


def _referrals(
    case: Case, command: RecordReferralsMade, context: Context
) -> list[NewEvent]:
    review = _require_review(case, command.review_id)
    if review.referrals_made_on is not None:
        raise AlreadyRecorded(
            f"the referrals for review {review.review_id} were recorded as made on "
            f"{review.referrals_made_on}"
        )

    problems = _Problems()
    problems.day(
        "made_on",
        command.made_on,
        today=_today(context),
        after=[(case.plan_issued_on, "the plan was issued")],
        before=[(review.held_on or review.meeting_on, "the meeting")],
    )
    problems.raise_if_any()
    _within_plan(case, command.made_on, "made_on")

    made = contract.AgencyReferralsMade(
        case_id=case.case_id, review_id=review.review_id, made_on=command.made_on
    )
    return [_event(made, context)]


def check_review_list(sent_on: date, context: Context) -> None:
    """Refuse a review list dated in the future, whether or not it names any case."""
    problems = _Problems()
    problems.day("sent_on", sent_on, today=_today(context))
    problems.raise_if_any()


def _review_list(
    case: Case, command: RecordReviewListSent, context: Context
) -> list[NewEvent]:
    _require_active_plan(case, "listed")
    due_on = case.next_review_due_on
    if case.setting_urn != command.setting_urn or due_on is None:
        raise ImpossibleTransition(
            f"the plan of case {case.case_id} names setting {case.setting_urn}, not "
            f"{command.setting_urn}: its review belongs on that setting's list"
        )

    check_review_list(command.sent_on, context)

    listed = case.list_sent
    if (
        listed is not None
        and listed.setting_urn == command.setting_urn
        and listed.term_starts_on == command.term_starts_on
        and listed.review_due_on == due_on
    ):
        return []  # this review is on a list sent for this term already
    sent = contract.ReviewListSentToSenco(
        case_id=case.case_id,
        setting_urn=command.setting_urn,
        sent_on=command.sent_on,
        term_starts_on=command.term_starts_on,
        review_due_on=due_on,
    )
    return [_event(sent, context)]


def _request_interim(
    case: Case, command: RequestInterimReview, context: Context
) -> list[NewEvent]:
    _require_active_plan(case, "requested")
    waiting = case.open_interim_request
    if waiting is not None:
        raise ImpossibleTransition(
            f"an interim review of case {case.case_id} requested on "
            f"{waiting.requested_on} is not arranged yet: arrange it (kind interim) "
            "before requesting another"
        )

    problems = _Problems()
    problems.check(
        command.reason in contract.INTERIM_REASONS,
        "reason",
        "must be one of " + ", ".join(contract.INTERIM_REASONS),
    )
    problems.day(
        "requested_on",
        command.requested_on,
        today=_today(context),
        after=[(case.plan_issued_on, "the plan was issued")],
    )
    problems.text("details", command.details)
    problems.raise_if_any()

    requested = contract.InterimReviewRequested(
        case_id=case.case_id,
        requested_on=command.requested_on,
        reason=command.reason,
    )
    return [_event(requested, context, {"details": command.details})]


# From other services' events ----------------------------------------------------------


def _start_cycle(
    case: Case, command: StartReviewCycle, context: Context
) -> list[NewEvent]:
    started = contract.ReviewCycleStarted(
        case_id=case.case_id,
        issued_on=command.issued_on,
        setting_urn=command.setting_urn,
    )
    return [_event(started, context)]


def _record_amendment(
    case: Case, command: RecordPlanAmendment, context: Context
) -> list[NewEvent]:
    # The amended plan carries out the latest decision to amend that it follows.
    awaiting = [
        review
        for review in case.reviews
        if review.decision == "amend"
        and review.amended_on is None
        and review.notified_on is not None
        and review.notified_on <= command.amended_on
    ]
    carried_out = max(awaiting, key=lambda r: r.notified_on or date.min, default=None)
    recorded = contract.PlanAmendmentRecorded(
        case_id=case.case_id,
        amended_on=command.amended_on,
        setting_urn=command.setting_urn,
        review_id=carried_out.review_id if carried_out is not None else None,
    )
    return [_event(recorded, context)]


def _end_cycle(case: Case, command: EndReviewCycle, context: Context) -> list[NewEvent]:
    if case.plan_status is not PlanStatus.ACTIVE:
        return []
    ended = contract.ReviewCycleEnded(
        case_id=case.case_id,
        ended_on=command.ended_on,
        reason=command.reason,
    )
    return [_event(ended, context)]


def _follow_coordinator(
    case: Case, command: FollowCoordinator, context: Context
) -> list[NewEvent]:
    if case.coordinator_id == command.coordinator_id:
        return []
    assigned = contract.ReviewCoordinatorAssigned(
        case_id=case.case_id,
        coordinator_id=command.coordinator_id,
        previous_coordinator_id=case.coordinator_id,
    )
    return [_event(assigned, context)]


_HANDLERS: dict[type[Any], Callable[[Case, Any, Context], list[NewEvent]]] = {
    ArrangeReview: _arrange,
    RearrangeReview: _rearrange,
    RecordPapersSent: _papers,
    RecordReviewHeld: _held,
    RecordReportReceived: _report,
    DecideReview: _decide_review,
    RecordReferralsMade: _referrals,
    RecordReviewListSent: _review_list,
    RequestInterimReview: _request_interim,
    StartReviewCycle: _start_cycle,
    RecordPlanAmendment: _record_amendment,
    EndReviewCycle: _end_cycle,
    FollowCoordinator: _follow_coordinator,
}


def decide(case: Case, command: Command, context: Context) -> list[NewEvent]:
    """The events ``command`` causes on ``case``, or a ``ReviewsError`` saying why not.

    An empty list means the command asks for what is already so (following a
    coordinator the case already has, ending a cycle already ended), and nothing
    needs recording.
    """
    return _HANDLERS[type(command)](case, command, context)
