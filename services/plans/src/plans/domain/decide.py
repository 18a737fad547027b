"""The rules of plans: from a case and a command to the events it causes.

Every rule is checked here, whichever entry point a command came through. Dates are
London dates; none may be before 1 September 2014, when EHC plans began (the first day
of ``sendkit.calendar``'s supported range); none may be in the future (today in
London, from ``Context.now``) but the planned ones, a final plan's start and the move
on a transfer-out notice, which may lie at most ``PLANNING_HORIZON_DAYS`` (three years)
ahead; and none may come before the fact it follows:

- no step of the assessment (advice, its exceptions, the no-plan notice, a draft,
  comments, the final plan) is recorded once intake has withdrawn the request or
  refused to assess it (``Context.request_closed``); a plan already issued stands;
- advice is requested during an assessment (or an agreed re-assessment) from one of the
  bodies of ``send_schemas.plans.ADVICE_BODIES``, received by the body no earlier than
  the assessment (or re-assessment) was agreed; it is received once, no earlier than
  the body received the request;
- the notice that no plan will be issued comes during the assessment, after any draft,
  and says why; it closes the case;
- a draft plan needs the assessment open (a case is opened by intake's agreement to
  assess, so there is no draft before it); a revised draft follows the earlier one and
  opens a comment window of its own;
- comments answer the latest draft, no earlier than it was served;
- the final plan is issued once per case ("no second final plan": a plan is changed by
  amendment), after a draft, and never inside the latest draft's comment window
  (served + 14 days, Reg 13(1)) unless the parent or young person agreed in writing to
  an earlier final plan, and then no earlier than that agreement; it names its setting
  (a URN unless the arrangement names no school) and its start, on or after issue;
- amendments, their notices, ceasing and transfers out apply only to a plan still
  maintained here ("no amendment to a ceased plan"), dated no earlier than the plan was
  issued, transferred in or last amended, and an amended plan no earlier than its
  pending notice; an amendment naming a setting changes section I;
- a transfer out is notified before it is made, and its move day, when known, lies in
  the supported range and within the planning horizon; the new council's notice
  follows a plan transferred in, once;
- a re-assessment is requested of a maintained plan, one at a time, and decided once,
  no earlier than it was requested; an agreed re-assessment ends with an amended plan;
- an exception applies to advice still outstanding (one request, or all of them) with
  a reason of Reg 8(2), or to the plan of a re-assessment under way with a reason of
  Reg 27(3); it says what shows it applies, and is not recorded twice;
- an amendment notice may name the review it follows by the reviews service's id (its
  shape is checked; plans does not read the reviews topic to know more);
- a correction names one event of the case with a correctable date
  (``send_schemas.plans.CORRECTABLE_DATES``) and that date, changes it, says why, and
  holds the new date to the rules its event was recorded under: not in the future, not
  before what the event follows, and not after anything recorded later that follows
  it (``_order_problem`` replays the case with the new date to find out).

Values that break a rule raise ``InvalidCommand`` naming each field (answered 422); a
command the case's state rules out raises ``ImpossibleTransition`` (409), and a final
plan dated inside the comment window its subclass ``CommentWindowOpen``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from plans.domain.commands import (
    AmendPlan,
    CeasePlan,
    Command,
    Context,
    CorrectPlan,
    DecideNotToIssuePlan,
    DecideReassessment,
    IssueDraftPlan,
    IssuePlan,
    NotifyTransferOut,
    OpenAssessment,
    ProposeAmendment,
    RecordAdviceReceived,
    RecordDraftComments,
    RecordTimeLimitException,
    RequestAdvice,
    RequestReassessment,
    SendNewCouncilNotice,
    TransferPlanIn,
    TransferPlanOut,
)
from plans.domain.errors import (
    AdviceNotFound,
    CaseNotFound,
    CommentWindowOpen,
    ImpossibleTransition,
    InvalidCommand,
)
from plans.domain.model import (
    ASSESSMENT_STATUSES,
    NEED_TYPES,
    Plan,
    Status,
    evolve,
    with_correction,
)
from send_schemas import intake as intake_contract
from send_schemas import plans as contract
from sendkit import calendar
from sendkit.calendar import london_date
from sendkit.events import NewEvent, RecordedEvent

MAX_TEXT = 4000

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


EHC_PLANS_BEGAN = calendar.SUPPORTED_FROM
"""No fact of an EHC plan can be dated before Part 3 of the 2014 Act came in, the first
day of the calendar's supported range."""


class _Problems:
    """Collects every bad field of a command before refusing it once."""

    def __init__(self, context: Context) -> None:
        self.found: list[tuple[str, str]] = []
        self.today = london_date(context.now)

    def add(self, field: str, message: str) -> None:
        self.found.append((field, message))

    def check(self, ok: bool, field: str, message: str) -> None:
        if not ok:
            self.add(field, message)

    def one_of(self, value: object, allowed: Iterable[str], field: str) -> None:
        allowed = tuple(allowed)
        self.check(value in allowed, field, "must be one of " + ", ".join(allowed))

    def text(self, value: str | None, field: str, *, required: bool, says: str) -> None:
        if value is None:
            self.check(not required, field, f"must say {says}")
        elif not value.strip() or len(value) > MAX_TEXT:
            self.add(field, f"must say {says} in 1 to {MAX_TEXT} characters")

    def urn(self, value: int | None, field: str) -> None:
        if value is None:
            return
        self.check(
            not isinstance(value, bool)
            and intake_contract.URN_MIN <= value <= intake_contract.URN_MAX,
            field,
            f"must be a school or college URN: 6 digits from {intake_contract.URN_MIN} "
            f"to {intake_contract.URN_MAX}",
        )

    def day(
        self,
        value: date,
        field: str,
        *,
        after: Iterable[tuple[date | None, str]] = (),
        planned: bool = False,
    ) -> None:
        """Check a date is not in the future (a ``planned`` one: not beyond the planning
        horizon), not before EHC plans existed, and not before any fact it follows."""
        if value > self.today and not planned:
            self.add(
                field, f"must not be in the future (today is {self.today} in London)"
            )
            return
        latest = calendar.latest_planned_day(self.today)
        if value > latest:
            self.add(
                field,
                f"must be at most three years ahead (on or before {latest}): a date "
                "further off cannot be planned yet",
            )
            return
        if value < EHC_PLANS_BEGAN:
            self.add(
                field,
                f"must not be before {EHC_PLANS_BEGAN}, when EHC plans began "
                "(Children and Families Act 2014)",
            )
            return
        for bound, what in after:
            if bound is not None and value < bound:
                self.add(field, f"must not be before {what}, on {bound}")
                return

    def raise_if_any(self) -> None:
        if self.found:
            raise InvalidCommand(self.found)


def _event(
    model: contract.PlansEvent, context: Context, private: dict[str, Any] | None = None
) -> NewEvent:
    kept = {k: v for k, v in (private or {}).items() if v is not None}
    return NewEvent(
        type=model.EVENT_TYPE,
        data=model.model_dump(mode="json"),
        metadata=context.metadata,
        private=kept or None,
    )


def _require_case(plan: Plan) -> None:
    if not plan.exists:
        raise CaseNotFound(plan.case_id)


def _plan_words(plan: Plan) -> str:
    if plan.issued_on is not None:
        return f"a final plan issued on {plan.issued_on}"
    return f"a plan transferred in on {plan.transferred_in_on}"


def _require_maintained(plan: Plan, doing: str) -> None:
    """Refuse, saying why, unless the case's plan is maintained by this council."""
    _require_case(plan)
    if plan.status is Status.PLAN_MAINTAINED:
        return
    case = f"case {plan.case_id}"
    if plan.status is Status.CEASED:
        raise ImpossibleTransition(
            f"{case}: the plan ceased on {plan.ceased_on}, and a ceased plan cannot be "
            f"{doing}; a new request for an assessment at intake starts a new case"
        )
    if plan.status is Status.TRANSFERRED_OUT:
        raise ImpossibleTransition(
            f"{case}: the plan was transferred to another council on "
            f"{plan.transferred_out_on}, which maintains it now; it cannot be {doing} "
            "here"
        )
    if plan.status is Status.NO_PLAN:
        raise ImpossibleTransition(
            f"{case}: the council notified on {plan.no_plan_notified_on} that no plan "
            f"will be issued, so there is no plan to be {doing}"
        )
    raise ImpossibleTransition(
        f"{case} is {plan.status}: it has no final plan yet to be {doing}; issue the "
        "final plan first"
    )


def _open(plan: Plan, command: OpenAssessment, context: Context) -> list[NewEvent]:
    if plan.exists:
        # Intake agrees to assess a case once; seeing it again (a replay after the
        # processed marks were lost) changes nothing.
        return []
    opened = contract.AssessmentOpened(
        case_id=plan.case_id, agreed_on=command.agreed_on
    )
    return [_event(opened, context)]


def _request_advice(
    plan: Plan, command: RequestAdvice, context: Context
) -> list[NewEvent]:
    _require_case(plan)
    reassessing = plan.reassessing_since
    if plan.status not in ASSESSMENT_STATUSES and reassessing is None:
        raise ImpossibleTransition(
            f"case {plan.case_id} is {plan.status}: advice is requested during an "
            "assessment, or during a re-assessment the council agreed to"
        )
    if plan.advice_by_id(command.advice_id) is not None:
        raise ImpossibleTransition(
            f"case {plan.case_id} already has a request for advice "
            f"{command.advice_id}: request further advice without an advice_id"
        )

    problems = _Problems(context)
    problems.check(
        bool(_UUID.match(command.advice_id)), "advice_id", "must be a lowercase UUID"
    )
    problems.one_of(command.body, contract.ADVICE_BODIES, "body")
    problems.text(
        command.professional,
        "professional",
        required=False,
        says="who was asked (non-blank) when given",
    )
    opened = (
        (reassessing, "the re-assessment was agreed")
        if reassessing is not None
        else (plan.agreed_on, "the assessment was agreed")
    )
    problems.day(command.received_by_body_on, "received_by_body_on", after=[opened])
    problems.raise_if_any()

    requested = contract.AdviceRequested(
        case_id=plan.case_id,
        advice_id=command.advice_id,
        body=command.body,
        received_by_body_on=command.received_by_body_on,
    )
    return [_event(requested, context, {"professional": command.professional})]


def _advice_received(
    plan: Plan, command: RecordAdviceReceived, context: Context
) -> list[NewEvent]:
    _require_case(plan)
    advice = plan.advice_by_id(command.advice_id)
    if advice is None:
        raise AdviceNotFound(plan.case_id, command.advice_id)
    if advice.received_on is not None:
        raise ImpossibleTransition(
            f"the advice {advice.advice_id} of case {plan.case_id} was already "
            f"received, on {advice.received_on}"
        )

    problems = _Problems(context)
    problems.day(
        command.received_on,
        "received_on",
        after=[(advice.received_by_body_on, "the body received the request")],
    )
    problems.raise_if_any()

    received = contract.AdviceReceived(
        case_id=plan.case_id,
        advice_id=advice.advice_id,
        received_on=command.received_on,
    )
    return [_event(received, context)]


def _refuse_unless_assessing(plan: Plan, doing: str) -> None:
    _require_case(plan)
    if plan.status in ASSESSMENT_STATUSES:
        return
    case = f"case {plan.case_id}"
    if plan.status is Status.NO_PLAN:
        raise ImpossibleTransition(
            f"{case}: the council already notified on {plan.no_plan_notified_on} that "
            f"no plan will be issued; it cannot {doing} now (a new request at intake "
            "starts a new assessment)"
        )
    raise ImpossibleTransition(
        f"{case} already has {_plan_words(plan)} ({plan.status}): it cannot {doing}; "
        "a plan is changed by amendment and ended by ceasing it"
    )


def _no_plan(
    plan: Plan, command: DecideNotToIssuePlan, context: Context
) -> list[NewEvent]:
    _refuse_unless_assessing(plan, "decide not to issue a plan")

    problems = _Problems(context)
    problems.text(
        command.reasons, "reasons", required=True, says="why no plan will be issued"
    )
    problems.day(
        command.notified_on,
        "notified_on",
        after=[
            (plan.agreed_on, "the assessment was agreed"),
            (plan.draft_served_on, "the draft plan was served"),
        ],
    )
    problems.raise_if_any()

    sent = contract.NoPlanNoticeSent(
        case_id=plan.case_id, notified_on=command.notified_on
    )
    return [_event(sent, context, {"reasons": command.reasons})]


def _draft(plan: Plan, command: IssueDraftPlan, context: Context) -> list[NewEvent]:
    _refuse_unless_assessing(plan, "take a draft plan")

    problems = _Problems(context)
    problems.day(
        command.served_on,
        "served_on",
        after=[
            (plan.agreed_on, "the assessment was agreed"),
            (plan.draft_served_on, "the previous draft was served"),
        ],
    )
    problems.raise_if_any()

    issued = contract.DraftPlanIssued(case_id=plan.case_id, served_on=command.served_on)
    return [_event(issued, context)]


def _comments(
    plan: Plan, command: RecordDraftComments, context: Context
) -> list[NewEvent]:
    _require_case(plan)
    if plan.status is Status.ASSESSING:
        raise ImpossibleTransition(
            f"case {plan.case_id} has no draft plan yet: comments answer a draft, so "
            "issue the draft plan first"
        )
    if plan.status is not Status.DRAFT_ISSUED:
        raise ImpossibleTransition(
            f"case {plan.case_id} is {plan.status}: comments on a draft are recorded "
            "only while the final plan is still to be decided"
        )

    problems = _Problems(context)
    problems.one_of(command.respondent, contract.RESPONDENTS, "respondent")
    problems.text(
        command.comments,
        "comments",
        required=False,
        says="what they said (non-blank) when given",
    )
    problems.urn(command.preferred_setting_urn, "preferred_setting_urn")
    problems.day(
        command.received_on,
        "received_on",
        after=[(plan.draft_served_on, "the draft plan was served")],
    )
    problems.raise_if_any()

    received = contract.DraftCommentsReceived(
        case_id=plan.case_id,
        received_on=command.received_on,
        respondent=command.respondent,
        preferred_setting_urn=command.preferred_setting_urn,
        meeting_requested=command.meeting_requested,
        agreed_to_early_final_plan=command.agreed_to_early_final_plan,
    )
    return [_event(received, context, {"comments": command.comments})]


def _check_setting(
    problems: _Problems, setting_urn: int | None, setting_type: str | None
) -> None:
    if setting_type is None:
        return
    problems.one_of(setting_type, contract.SETTING_TYPES, "setting_type")
    problems.urn(setting_urn, "setting_urn")
    if setting_type in contract.SETTING_TYPES_WITHOUT_URN:
        problems.check(
            setting_urn is None,
            "setting_urn",
            f"must be left out for {setting_type}, which names no school or college",
        )
    elif setting_type in contract.SETTING_TYPES:
        problems.check(
            setting_urn is not None,
            "setting_urn",
            f"is required for a {setting_type} setting: name its 6-digit URN",
        )


def _issue(plan: Plan, command: IssuePlan, context: Context) -> list[NewEvent]:
    _require_case(plan)
    if plan.has_plan:
        raise ImpossibleTransition(
            f"case {plan.case_id} already has {_plan_words(plan)}: a case has one "
            "final plan, which is changed by amendment, not issued again"
        )
    if plan.status is Status.NO_PLAN:
        raise ImpossibleTransition(
            f"case {plan.case_id}: the council notified on {plan.no_plan_notified_on} "
            "that no plan will be issued"
        )
    if plan.draft_served_on is None:
        raise ImpossibleTransition(
            f"case {plan.case_id} has no draft plan: serve the draft first; the final "
            "plan follows its 15-day comment window"
        )

    problems = _Problems(context)
    _check_setting(problems, command.setting_urn, command.setting_type)
    problems.one_of(command.primary_need, NEED_TYPES, "primary_need")
    if command.secondary_need is not None:
        problems.one_of(command.secondary_need, NEED_TYPES, "secondary_need")
        problems.check(
            command.secondary_need != command.primary_need,
            "secondary_need",
            "must differ from the primary need",
        )
    problems.day(
        command.issued_on,
        "issued_on",
        after=[(plan.draft_served_on, "the draft plan was served")],
    )
    problems.day(
        command.start_date,
        "start_date",
        after=[(command.issued_on, "the plan is issued")],
        planned=True,
    )
    problems.raise_if_any()

    window_ends_on = plan.comment_window_ends_on
    assert window_ends_on is not None  # a draft was served
    if command.issued_on <= window_ends_on:
        agreed_on = plan.early_final_plan_agreed_on
        if agreed_on is None:
            raise CommentWindowOpen(
                plan.case_id, plan.draft_served_on, window_ends_on, command.issued_on
            )
        if command.issued_on < agreed_on:
            raise InvalidCommand(
                [
                    (
                        "issued_on",
                        "must not be before the written agreement to an early final "
                        f"plan, received on {agreed_on}",
                    )
                ]
            )

    issued = contract.PlanIssued(
        case_id=plan.case_id,
        issued_on=command.issued_on,
        setting_urn=command.setting_urn,
        setting_type=command.setting_type,
        start_date=command.start_date,
    )
    private = {
        "primary_need": command.primary_need,
        "secondary_need": command.secondary_need,
    }
    return [_event(issued, context, private)]


def _since_plan_changed(plan: Plan) -> tuple[date | None, str]:
    return (plan.plan_last_changed_on, "the plan was last issued or amended")


def _propose_amendment(
    plan: Plan, command: ProposeAmendment, context: Context
) -> list[NewEvent]:
    _require_maintained(plan, "amended")
    if plan.amendment_pending_since is not None:
        raise ImpossibleTransition(
            f"case {plan.case_id}: the amendment notice sent on "
            f"{plan.amendment_pending_since} still awaits its amended plan; issue that "
            "first"
        )

    problems = _Problems(context)
    problems.text(
        command.proposals,
        "proposals",
        required=True,
        says="which amendments are proposed",
    )
    problems.day(
        command.notice_sent_on, "notice_sent_on", after=[_since_plan_changed(plan)]
    )
    if command.review_id is not None:
        # Plans does not read the reviews topic, so it cannot check that the review
        # decided to amend; it checks the id's shape, and the deadlines service joins
        # the notice to that review's clocks.
        problems.check(
            bool(_UUID.match(command.review_id)),
            "review_id",
            "must be the id the reviews service gave the review (a lowercase UUID)",
        )
    problems.raise_if_any()

    proposed = contract.AmendmentProposed(
        case_id=plan.case_id,
        notice_sent_on=command.notice_sent_on,
        review_id=command.review_id,
    )
    return [_event(proposed, context, {"proposals": command.proposals})]


def _amend(plan: Plan, command: AmendPlan, context: Context) -> list[NewEvent]:
    _require_maintained(plan, "amended")

    problems = _Problems(context)
    changes = command.changes
    if not changes:
        problems.add("changes", "must list at least one section (A to K) that changed")
    unknown = [code for code in changes if code not in contract.PLAN_SECTIONS]
    if unknown:
        problems.add(
            "changes",
            f"names {', '.join(map(str, unknown))}, not sections of a plan: use "
            + ", ".join(contract.PLAN_SECTIONS),
        )
    elif len(set(changes)) != len(changes):
        problems.add("changes", "lists a section more than once")
    if command.setting_urn is not None and command.setting_type is None:
        problems.add("setting_type", "is required with setting_urn: name its type")
    _check_setting(problems, command.setting_urn, command.setting_type)
    names_setting = command.setting_type is not None or command.setting_urn is not None
    if names_setting and contract.PLACEMENT_SECTION not in changes:
        problems.add(
            "changes", "must include section I, the placement, when a setting is named"
        )
    problems.text(
        command.summary,
        "summary",
        required=False,
        says="what changed (non-blank) when given",
    )
    problems.day(
        command.issued_on,
        "issued_on",
        after=[
            _since_plan_changed(plan),
            (plan.amendment_pending_since, "the amendment notice was sent"),
            (plan.reassessing_since, "the re-assessment was agreed"),
        ],
    )
    problems.raise_if_any()

    amended = contract.PlanAmended(
        case_id=plan.case_id,
        issued_on=command.issued_on,
        changes=list(changes),
        setting_urn=command.setting_urn,
        setting_type=command.setting_type,
    )
    return [_event(amended, context, {"summary": command.summary})]


def _cease(plan: Plan, command: CeasePlan, context: Context) -> list[NewEvent]:
    _require_maintained(plan, "ceased")

    problems = _Problems(context)
    problems.one_of(command.reason, contract.CEASE_REASONS, "reason")
    problems.text(
        command.note, "note", required=False, says="something (non-blank) when given"
    )
    problems.day(command.ceased_on, "ceased_on", after=[_since_plan_changed(plan)])
    problems.raise_if_any()

    ceased = contract.PlanCeased(
        case_id=plan.case_id,
        ceased_on=command.ceased_on,
        reason=command.reason,
    )
    return [_event(ceased, context, {"note": command.note})]


def _notify_transfer_out(
    plan: Plan, command: NotifyTransferOut, context: Context
) -> list[NewEvent]:
    _require_maintained(plan, "transferred")

    problems = _Problems(context)
    problems.text(
        command.to_council,
        "to_council",
        required=True,
        says="which council the family is moving to",
    )
    since = plan.plan_since
    problems.day(
        command.learned_on,
        "learned_on",
        after=[(since, "this council's plan began")],
    )
    if command.move_on is not None:
        # The family may have moved before the council learned of it, so the day
        # may be past or ahead, within the range every service counts in.
        problems.day(command.move_on, "move_on", planned=True)
    problems.raise_if_any()

    same = (
        plan.transfer_learned_on == command.learned_on
        and plan.transfer_move_on == command.move_on
        and plan.transfer_to == command.to_council
    )
    if same:
        return []
    notified = contract.PlanTransferOutNotified(
        case_id=plan.case_id, move_on=command.move_on, learned_on=command.learned_on
    )
    return [_event(notified, context, {"to_council": command.to_council})]


def _transfer_out(
    plan: Plan, command: TransferPlanOut, context: Context
) -> list[NewEvent]:
    _require_maintained(plan, "transferred")
    if not plan.transfer_pending:
        raise ImpossibleTransition(
            f"case {plan.case_id}: no move to another council has been notified; "
            "record the notice of the move (when the council learned of it) first"
        )

    problems = _Problems(context)
    problems.day(
        command.transferred_on,
        "transferred_on",
        after=[
            (plan.transfer_learned_on, "the council learned of the move"),
            _since_plan_changed(plan),
        ],
    )
    problems.raise_if_any()

    transferred = contract.PlanTransferredOut(
        case_id=plan.case_id, transferred_on=command.transferred_on
    )
    return [_event(transferred, context)]


def _transfer_in(
    plan: Plan, command: TransferPlanIn, context: Context
) -> list[NewEvent]:
    if plan.exists:
        raise ImpossibleTransition(
            f"case {plan.case_id} already exists: a plan transferred in opens a case "
            "of its own"
        )

    problems = _Problems(context)
    problems.text(
        command.from_council,
        "from_council",
        required=True,
        says="which council transferred the plan",
    )
    problems.text(
        command.note, "note", required=False, says="something (non-blank) when given"
    )
    problems.day(command.transferred_on, "transferred_on")
    problems.raise_if_any()

    transferred = contract.PlanTransferredIn(
        case_id=plan.case_id, transferred_on=command.transferred_on
    )
    private = {"from_council": command.from_council, "note": command.note}
    return [_event(transferred, context, private)]


def _new_council_notice(
    plan: Plan, command: SendNewCouncilNotice, context: Context
) -> list[NewEvent]:
    _require_case(plan)
    if plan.transferred_in_on is None:
        raise ImpossibleTransition(
            f"case {plan.case_id} was not transferred in: the new council's notice "
            "follows a plan transferred in from another council"
        )
    if plan.new_council_notified_on is not None:
        raise ImpossibleTransition(
            f"case {plan.case_id}: the new council's notice was already sent, on "
            f"{plan.new_council_notified_on}"
        )
    _require_maintained(plan, "given the new council's notice")

    problems = _Problems(context)
    problems.text(
        command.note, "note", required=False, says="something (non-blank) when given"
    )
    problems.day(
        command.notified_on,
        "notified_on",
        after=[(plan.transferred_in_on, "the plan was transferred in")],
    )
    problems.raise_if_any()

    sent = contract.NewCouncilNoticeSent(
        case_id=plan.case_id, notified_on=command.notified_on
    )
    return [_event(sent, context, {"note": command.note})]


def _request_reassessment(
    plan: Plan, command: RequestReassessment, context: Context
) -> list[NewEvent]:
    _require_maintained(plan, "re-assessed")
    pending = plan.pending_reassessment
    if pending is not None:
        raise ImpossibleTransition(
            f"case {plan.case_id}: the request for a re-assessment made on "
            f"{pending.requested_on} still awaits its decision"
        )
    if plan.reassessing_since is not None:
        raise ImpossibleTransition(
            f"case {plan.case_id}: the re-assessment agreed on "
            f"{plan.reassessing_since} is under way; it ends with the amended plan"
        )

    problems = _Problems(context)
    problems.text(
        command.reason, "reason", required=False, says="why (non-blank) when given"
    )
    problems.day(
        command.requested_on,
        "requested_on",
        after=[(plan.plan_since, "this council's plan began")],
    )
    problems.raise_if_any()

    requested = contract.ReassessmentRequested(
        case_id=plan.case_id, requested_on=command.requested_on
    )
    return [_event(requested, context, {"reason": command.reason})]


def _decide_reassessment(
    plan: Plan, command: DecideReassessment, context: Context
) -> list[NewEvent]:
    _require_maintained(plan, "re-assessed")
    pending = plan.pending_reassessment
    if pending is None:
        raise ImpossibleTransition(
            f"case {plan.case_id} has no request for a re-assessment awaiting a "
            "decision: record the request first"
        )

    problems = _Problems(context)
    problems.text(
        command.reasons, "reasons", required=False, says="why (non-blank) when given"
    )
    problems.day(
        command.notified_on,
        "notified_on",
        after=[(pending.requested_on, "the re-assessment was requested")],
    )
    problems.raise_if_any()

    decided = contract.ReassessmentDecided(
        case_id=plan.case_id, notified_on=command.notified_on, agreed=command.agreed
    )
    return [_event(decided, context, {"reasons": command.reasons})]


def _record_exception(
    plan: Plan, command: RecordTimeLimitException, context: Context
) -> list[NewEvent]:
    _require_case(plan)

    problems = _Problems(context)
    problems.one_of(command.clock, contract.EXCEPTION_CLOCKS, "clock")
    allowed = contract.EXCEPTION_REASONS.get(command.clock)
    if allowed is not None:
        problems.one_of(command.reason, allowed, "reason")
    problems.text(
        command.evidence,
        "evidence",
        required=True,
        says="what shows the exception applies",
    )
    if command.advice_id is not None and command.clock != "advice":
        problems.add("advice_id", "names a request for advice: only for clock advice")
    problems.raise_if_any()

    case = f"case {plan.case_id}"
    if command.clock == "advice":
        outstanding = [a for a in plan.advice if a.received_on is None]
        if command.advice_id is not None:
            advice = plan.advice_by_id(command.advice_id)
            if advice is None:
                raise AdviceNotFound(plan.case_id, command.advice_id)
            if advice.received_on is not None:
                raise ImpossibleTransition(
                    f"{case}: the advice {advice.advice_id} was received on "
                    f"{advice.received_on}, so its clock no longer runs"
                )
        elif not outstanding:
            raise ImpossibleTransition(
                f"{case} has no advice outstanding, so no advice clock runs"
            )
    elif plan.reassessing_since is None:
        raise ImpossibleTransition(
            f"{case} has no re-assessment under way, so the clock of the plan after a "
            "re-assessment does not run"
        )
    if any(
        (e.clock, e.reason, e.advice_id)
        == (command.clock, command.reason, command.advice_id)
        for e in plan.exceptions
    ):
        raise ImpossibleTransition(
            f"{case}: exception ({command.reason}) is already recorded on the "
            f"{command.clock} clock"
        )

    recorded = contract.TimeLimitExceptionRecorded(
        case_id=plan.case_id,
        clock=command.clock,
        reason=command.reason,
        instance=command.advice_id,
    )
    return [_event(recorded, context, {"evidence": command.evidence})]


def _short(event_type: str) -> str:
    return event_type.split(".")[-2]


def _day_of(event: RecordedEvent, name: str) -> date | None:
    value = event.data.get(name)
    return None if value is None else date.fromisoformat(str(value))


def _order_problem(plan: Plan, event: RecordedEvent) -> tuple[str, str] | None:
    """How ``event``'s date breaks the order of the facts before it, if it does.

    ``plan`` is the case just before the event. The bounds are those each command
    checked when it recorded the event (see the handlers above), so a corrected date
    is held to the rules its event was first held to. Answers the event's date field
    and what it must not precede.
    """
    bounds: list[tuple[date | None, str]] = []
    data = event.data
    match event.type:
        case contract.AdviceRequested.EVENT_TYPE:
            name = "received_by_body_on"
            if plan.reassessing_since is not None:
                bounds = [(plan.reassessing_since, "the re-assessment was agreed")]
            else:
                bounds = [(plan.agreed_on, "the assessment was agreed")]
        case contract.AdviceReceived.EVENT_TYPE:
            name = "received_on"
            advice = plan.advice_by_id(str(data.get("advice_id")))
            requested = None if advice is None else advice.received_by_body_on
            bounds = [(requested, "the body received the request for advice")]
        case contract.NoPlanNoticeSent.EVENT_TYPE:
            name = "notified_on"
            bounds = [
                (plan.agreed_on, "the assessment was agreed"),
                (plan.draft_served_on, "the draft plan was served"),
            ]
        case contract.DraftPlanIssued.EVENT_TYPE:
            name = "served_on"
            bounds = [
                (plan.agreed_on, "the assessment was agreed"),
                (plan.draft_served_on, "the previous draft was served"),
            ]
        case contract.DraftCommentsReceived.EVENT_TYPE:
            name = "received_on"
            bounds = [(plan.draft_served_on, "the draft plan was served")]
        case contract.PlanIssued.EVENT_TYPE:
            name = "issued_on"
            bounds = [(plan.draft_served_on, "the draft plan was served")]
        case contract.AmendmentProposed.EVENT_TYPE | contract.PlanCeased.EVENT_TYPE:
            name = "notice_sent_on" if "notice_sent_on" in data else "ceased_on"
            bounds = [_since_plan_changed(plan)]
        case contract.PlanAmended.EVENT_TYPE:
            name = "issued_on"
            bounds = [
                _since_plan_changed(plan),
                (plan.amendment_pending_since, "the amendment notice was sent"),
                (plan.reassessing_since, "the re-assessment was agreed"),
            ]
        case contract.PlanTransferOutNotified.EVENT_TYPE:
            name = "learned_on"
            bounds = [(plan.plan_since, "this council's plan began")]
        case contract.PlanTransferredOut.EVENT_TYPE:
            name = "transferred_on"
            bounds = [
                (plan.transfer_learned_on, "the council learned of the move"),
                _since_plan_changed(plan),
            ]
        case contract.NewCouncilNoticeSent.EVENT_TYPE:
            name = "notified_on"
            bounds = [(plan.transferred_in_on, "the plan was transferred in")]
        case contract.ReassessmentRequested.EVENT_TYPE:
            name = "requested_on"
            bounds = [(plan.plan_since, "this council's plan began")]
        case contract.ReassessmentDecided.EVENT_TYPE:
            name = "notified_on"
            pending = plan.pending_reassessment
            asked = None if pending is None else pending.requested_on
            bounds = [(asked, "the re-assessment was requested")]
        case _:
            return None
    day = _day_of(event, name)
    if day is None:
        return None
    for bound, what in bounds:
        if bound is not None and day < bound:
            return name, f"before {what}, on {bound}"
    if event.type == contract.PlanIssued.EVENT_TYPE:
        return _plan_issued_problem(plan, event, day)
    return None


def _plan_issued_problem(
    plan: Plan, event: RecordedEvent, issued_on: date
) -> tuple[str, str] | None:
    start = _day_of(event, "start_date")
    if start is not None and start < issued_on:
        return "issued_on", f"after the plan's start date, {start}"
    window_ends_on = plan.comment_window_ends_on
    if window_ends_on is None or issued_on > window_ends_on:
        return None
    agreed_on = plan.early_final_plan_agreed_on
    if agreed_on is None:
        return "issued_on", (
            f"inside the comment window of the draft served on "
            f"{plan.draft_served_on}, which runs until {window_ends_on}, without "
            "written agreement to an earlier final plan"
        )
    if issued_on < agreed_on:
        return "issued_on", (
            f"before the written agreement to an early final plan, on {agreed_on}"
        )
    return None


def _order_problems(
    case_id: str, history: Iterable[RecordedEvent]
) -> dict[str, tuple[str, str]]:
    """Every event whose date breaks the order of the facts before it, by event id."""
    found: dict[str, tuple[str, str]] = {}
    state = Plan(case_id=case_id)
    for event in history:
        problem = _order_problem(state, event)
        if problem is not None:
            found[event.id] = problem
        state = evolve(state, event)
    return found


def _correct(plan: Plan, command: CorrectPlan, context: Context) -> list[NewEvent]:
    _require_case(plan)

    problems = _Problems(context)
    problems.text(
        command.reason, "reason", required=True, says="why the date recorded was wrong"
    )
    target = next((e for e in plan.history if e.id == command.event_id), None)
    if target is None:
        problems.add(
            "event_id",
            f"names no event of case {plan.case_id}: use the id of the event as the "
            "case's history lists it",
        )
        raise InvalidCommand(problems.found)
    kind = _short(target.type)
    date_field = contract.CORRECTABLE_DATES.get(target.type)
    if date_field is None:
        correctable = sorted({_short(t) for t in contract.CORRECTABLE_DATES})
        problems.add(
            "event_id",
            f"names a {kind} event, whose dates cannot be corrected; the events "
            "whose date can be are " + ", ".join(correctable),
        )
        raise InvalidCommand(problems.found)
    problems.check(
        command.field == date_field,
        "field",
        f"is not a date of the {kind} event: correct its {date_field}",
    )
    problems.raise_if_any()

    # Every correctable event carries its date (the contract requires it).
    old_value = date.fromisoformat(str(target.data[date_field]))
    if command.new_value == old_value:
        problems.add(
            "new_value",
            f"is the date already recorded ({old_value}): a correction changes it",
        )
        problems.raise_if_any()
    problems.day(command.new_value, "new_value")
    problems.raise_if_any()

    corrected = contract.PlanCorrected(
        case_id=plan.case_id,
        event_id=target.id,
        event_type=target.type,
        field=command.field,
        old_value=old_value,
        new_value=command.new_value,
    )
    before = _order_problems(plan.case_id, plan.history)
    after = _order_problems(
        plan.case_id, (with_correction(e, corrected) for e in plan.history)
    )
    for event_id, (name, problem) in after.items():
        if event_id in before:
            continue  # an older disorder this correction did not cause
        if event_id == target.id:
            problems.add("new_value", f"would put the {kind}'s {name} {problem}")
        else:
            later = next(e for e in plan.history if e.id == event_id)
            problems.add(
                "new_value",
                f"would put the {_short(later.type)} event {event_id} (its {name}) "
                f"{problem}: correct that event first, or choose another date",
            )
    problems.raise_if_any()

    return [_event(corrected, context, {"reason": command.reason})]


_HANDLERS: dict[type[Any], Callable[[Plan, Any, Context], list[NewEvent]]] = {
    OpenAssessment: _open,
    RequestAdvice: _request_advice,
    RecordAdviceReceived: _advice_received,
    DecideNotToIssuePlan: _no_plan,
    IssueDraftPlan: _draft,
    RecordDraftComments: _comments,
    IssuePlan: _issue,
    ProposeAmendment: _propose_amendment,
    AmendPlan: _amend,
    CeasePlan: _cease,
    NotifyTransferOut: _notify_transfer_out,
    TransferPlanOut: _transfer_out,
    TransferPlanIn: _transfer_in,
    SendNewCouncilNotice: _new_council_notice,
    RequestReassessment: _request_reassessment,
    DecideReassessment: _decide_reassessment,
    RecordTimeLimitException: _record_exception,
    CorrectPlan: _correct,
}


_ASSESSMENT_STEPS = (
    RequestAdvice,
    RecordAdviceReceived,
    RecordTimeLimitException,
    DecideNotToIssuePlan,
    IssueDraftPlan,
    RecordDraftComments,
    IssuePlan,
)


def _refuse_if_request_closed(plan: Plan, command: Command, context: Context) -> None:
    closed = context.request_closed
    if (
        closed is None
        or not isinstance(command, _ASSESSMENT_STEPS)
        or plan.status not in ASSESSMENT_STATUSES
    ):
        return
    raise ImpossibleTransition(
        f"case {plan.case_id}: intake recorded the request as {closed.outcome} on "
        f"{closed.closed_on}, which ended its assessment, so no advice, draft or plan "
        "can be recorded for it; a new request at intake starts a new case"
    )


def decide(plan: Plan, command: Command, context: Context) -> list[NewEvent]:
    """The events ``command`` causes on ``plan``, or a ``PlansError`` saying why not.

    An empty list means the command asks for what is already so (opening an assessment
    already open, notifying the same move again), and nothing needs recording.
    """
    _refuse_if_request_closed(plan, command, context)
    return _HANDLERS[type(command)](plan, command, context)
