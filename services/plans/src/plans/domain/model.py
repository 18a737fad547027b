"""The state of one case in plans, folded from its events.

A case moves through ``Status``. It opens as ``assessing`` when intake's agreement to
assess arrives, or as ``plan_maintained`` when a plan is transferred in from another
council. An assessment ends in a notice that no plan will be issued (``no_plan``) or,
through one or more drafts (``draft_issued``), in a final plan (``plan_maintained``).
A maintained plan is amended, re-assessed and eventually ceased (``ceased``) or
transferred to another council (``transferred_out``). ``no_plan``, ``ceased`` and
``transferred_out`` are closed: they take no more commands except a late record of
advice received, which still stops that advice's clock, and corrections of dates.

The case keeps its history (every event but the corrections), so a correction of a
date (``PlanCorrected``) refolds the case from it with the date put right.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any, Literal, get_args

from send_schemas import plans as contract
from sendkit.calendar import last_of_days_beginning_with
from sendkit.events import RecordedEvent

COMMENT_WINDOW_DAYS = 15
"""Reg 13(1): "a period of at least 15 days beginning with the day" it was served."""

NeedType = Literal[
    "SPLD", "MLD", "SLD", "PMLD", "SEMH", "SLCN", "HI", "VI", "MSI", "PD", "ASD", "OTH"
]
NEED_TYPES: tuple[str, ...] = get_args(NeedType)
"""The SEN2 codes of a child's type of need. They stay in the store, off the topic."""


class Status(StrEnum):
    """Where a case is, from the assessment to the plan's end."""

    ASSESSING = "assessing"
    DRAFT_ISSUED = "draft_issued"
    NO_PLAN = "no_plan"
    PLAN_MAINTAINED = "plan_maintained"
    CEASED = "ceased"
    TRANSFERRED_OUT = "transferred_out"


CLOSED_STATUSES = frozenset({Status.NO_PLAN, Status.CEASED, Status.TRANSFERRED_OUT})
ASSESSMENT_STATUSES = frozenset({Status.ASSESSING, Status.DRAFT_ISSUED})


@dataclass(frozen=True, slots=True)
class Advice:
    """One request for advice and, once it came, the day it reached the council."""

    advice_id: str
    body: str
    received_by_body_on: date
    professional: str | None = None
    received_on: date | None = None


@dataclass(frozen=True, slots=True)
class Comments:
    """One answer to a draft plan; ``draft`` is the number of the draft it answers."""

    draft: int
    received_on: date
    respondent: str
    preferred_setting_urn: int | None
    meeting_requested: bool
    agreed_to_early_final_plan: bool
    comments: str | None = None


@dataclass(frozen=True, slots=True)
class Amendment:
    """One amended plan as issued."""

    issued_on: date
    changes: tuple[str, ...]
    setting_urn: int | None = None
    setting_type: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Reassessment:
    """One request for a re-assessment and, once made, the decision on it."""

    requested_on: date
    reason: str | None = None
    notified_on: date | None = None
    agreed: bool | None = None
    reasons: str | None = None
    concluded_on: date | None = None
    """The day the amended plan that ended an agreed re-assessment was issued."""


@dataclass(frozen=True, slots=True)
class TimeLimitException:
    """An exception to one of plans' clocks; ``advice_id`` None means every request."""

    clock: str
    reason: str
    advice_id: str | None
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the plans service knows about one case, public and private."""

    case_id: str
    version: int = 0
    status: Status | None = None
    agreed_on: date | None = None
    advice: tuple[Advice, ...] = ()
    drafts: tuple[date, ...] = ()
    comments: tuple[Comments, ...] = ()
    no_plan_notified_on: date | None = None
    no_plan_reasons: str | None = None
    issued_on: date | None = None
    setting_urn: int | None = None
    setting_type: str | None = None
    start_date: date | None = None
    primary_need: str | None = None
    secondary_need: str | None = None
    amendment_notices: tuple[tuple[date, str | None, str | None], ...] = ()
    """Each notice: the day sent, the proposals (private), the review it follows."""
    amendment_pending_since: date | None = None
    amendments: tuple[Amendment, ...] = ()
    ceased_on: date | None = None
    cease_reason: str | None = None
    cease_note: str | None = None
    transfer_learned_on: date | None = None
    transfer_move_on: date | None = None
    transfer_to: str | None = None
    transferred_out_on: date | None = None
    transferred_in_on: date | None = None
    transferred_from: str | None = None
    transfer_in_note: str | None = None
    new_council_notified_on: date | None = None
    new_council_note: str | None = None
    reassessments: tuple[Reassessment, ...] = ()
    exceptions: tuple[TimeLimitException, ...] = ()
    history: tuple[RecordedEvent, ...] = field(default=(), repr=False, compare=False)
    """Every event of the case but its corrections, oldest first, each with the dates
    the corrections since gave it: what the state is folded from."""

    @property
    def exists(self) -> bool:
        return self.status is not None

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    @property
    def has_plan(self) -> bool:
        """Whether a plan was issued here or transferred in (even if it ended since)."""
        return self.issued_on is not None or self.transferred_in_on is not None

    @property
    def plan_since(self) -> date | None:
        """The day this council's plan began: issued, or transferred in."""
        return self.issued_on or self.transferred_in_on

    @property
    def plan_last_changed_on(self) -> date | None:
        """The day the plan was issued, transferred in or last amended."""
        days = [d for d in (self.plan_since,) if d is not None]
        days += [amendment.issued_on for amendment in self.amendments]
        return max(days) if days else None

    @property
    def draft_served_on(self) -> date | None:
        """The day the latest draft was served."""
        return self.drafts[-1] if self.drafts else None

    @property
    def comment_window_ends_on(self) -> date | None:
        """The last day of the latest draft's comment window (served + 14 days)."""
        served = self.draft_served_on
        if served is None:
            return None
        return last_of_days_beginning_with(served, COMMENT_WINDOW_DAYS)

    @property
    def early_final_plan_agreed_on(self) -> date | None:
        """When written agreement to an early final plan came, for the latest draft."""
        agreed = [
            c.received_on
            for c in self.comments
            if c.draft == len(self.drafts) and c.agreed_to_early_final_plan
        ]
        return min(agreed) if agreed else None

    @property
    def pending_reassessment(self) -> Reassessment | None:
        """The request for a re-assessment that awaits its decision, if any."""
        last = self.reassessments[-1] if self.reassessments else None
        return last if last is not None and last.notified_on is None else None

    @property
    def reassessing_since(self) -> date | None:
        """When a re-assessment was agreed, while it has not ended in an amendment."""
        last = self.reassessments[-1] if self.reassessments else None
        if last is None or not last.agreed or last.concluded_on is not None:
            return None
        return last.notified_on

    @property
    def transfer_pending(self) -> bool:
        return self.transfer_learned_on is not None and self.transferred_out_on is None

    def advice_by_id(self, advice_id: str) -> Advice | None:
        for advice in self.advice:
            if advice.advice_id == advice_id:
                return advice
        return None


def _replace_advice(plan: Plan, advice_id: str, **changes: Any) -> tuple[Advice, ...]:
    return tuple(
        replace(a, **changes) if a.advice_id == advice_id else a for a in plan.advice
    )


def _replace_last(
    reassessments: tuple[Reassessment, ...], **changes: Any
) -> tuple[Reassessment, ...]:
    if not reassessments:
        return reassessments
    return (*reassessments[:-1], replace(reassessments[-1], **changes))


def evolve(plan: Plan, event: RecordedEvent) -> Plan:
    """The case after ``event``; an event of another type only moves the version.

    A ``PlanCorrected`` puts its new date into the event it corrects, and the case is
    folded again from its history so corrected, as if the date had been right from the
    start.
    """
    if event.type == contract.PlanCorrected.EVENT_TYPE:
        corrected = contract.PlanCorrected.model_validate(event.data)
        history = tuple(with_correction(e, corrected) for e in plan.history)
        rebuilt = Plan(case_id=plan.case_id)
        for earlier in history:
            rebuilt = _apply(rebuilt, earlier)
        return replace(rebuilt, version=event.version, history=history)
    return replace(_apply(plan, event), history=(*plan.history, event))


def with_correction(
    event: RecordedEvent, corrected: contract.PlanCorrected
) -> RecordedEvent:
    """``event`` with the date ``corrected`` gives it, if it is the event corrected."""
    if event.id != corrected.event_id:
        return event
    data = {**event.data, corrected.field: corrected.new_value.isoformat()}
    return replace(event, data=data)


def _apply(plan: Plan, event: RecordedEvent) -> Plan:
    plan = replace(plan, version=event.version)
    model = contract.EVENTS_BY_TYPE.get(event.type)
    if model is None:
        return plan
    fact = model.model_validate(event.data)
    private = event.private or {}

    match fact:
        case contract.AssessmentOpened():
            return replace(plan, status=Status.ASSESSING, agreed_on=fact.agreed_on)
        case contract.AdviceRequested():
            advice = Advice(
                advice_id=fact.advice_id,
                body=fact.body,
                received_by_body_on=fact.received_by_body_on,
                professional=private.get("professional"),
            )
            return replace(plan, advice=(*plan.advice, advice))
        case contract.AdviceReceived():
            return replace(
                plan,
                advice=_replace_advice(
                    plan, fact.advice_id, received_on=fact.received_on
                ),
            )
        case contract.NoPlanNoticeSent():
            return replace(
                plan,
                status=Status.NO_PLAN,
                no_plan_notified_on=fact.notified_on,
                no_plan_reasons=private.get("reasons"),
            )
        case contract.DraftPlanIssued():
            return replace(
                plan,
                status=Status.DRAFT_ISSUED,
                drafts=(*plan.drafts, fact.served_on),
            )
        case contract.DraftCommentsReceived():
            comments = Comments(
                draft=len(plan.drafts),
                received_on=fact.received_on,
                respondent=fact.respondent,
                preferred_setting_urn=fact.preferred_setting_urn,
                meeting_requested=fact.meeting_requested,
                agreed_to_early_final_plan=fact.agreed_to_early_final_plan,
                comments=private.get("comments"),
            )
            return replace(plan, comments=(*plan.comments, comments))
        case contract.PlanIssued():
            return replace(
                plan,
                status=Status.PLAN_MAINTAINED,
                issued_on=fact.issued_on,
                setting_urn=fact.setting_urn,
                setting_type=fact.setting_type,
                start_date=fact.start_date,
                primary_need=private.get("primary_need"),
                secondary_need=private.get("secondary_need"),
            )
        case contract.AmendmentProposed():
            notice = (fact.notice_sent_on, private.get("proposals"), fact.review_id)
            return replace(
                plan,
                amendment_notices=(*plan.amendment_notices, notice),
                amendment_pending_since=fact.notice_sent_on,
            )
        case contract.PlanAmended():
            amendment = Amendment(
                issued_on=fact.issued_on,
                changes=tuple(fact.changes),
                setting_urn=fact.setting_urn,
                setting_type=fact.setting_type,
                summary=private.get("summary"),
            )
            named = fact.setting_type is not None
            reassessments = plan.reassessments
            if plan.reassessing_since is not None:
                reassessments = _replace_last(
                    reassessments, concluded_on=fact.issued_on
                )
            return replace(
                plan,
                amendments=(*plan.amendments, amendment),
                amendment_pending_since=None,
                reassessments=reassessments,
                setting_urn=fact.setting_urn if named else plan.setting_urn,
                setting_type=fact.setting_type if named else plan.setting_type,
            )
        case contract.PlanCeased():
            return replace(
                plan,
                status=Status.CEASED,
                ceased_on=fact.ceased_on,
                cease_reason=fact.reason,
                cease_note=private.get("note"),
            )
        case contract.PlanTransferOutNotified():
            return replace(
                plan,
                transfer_learned_on=fact.learned_on,
                transfer_move_on=fact.move_on,
                transfer_to=private.get("to_council"),
            )
        case contract.PlanTransferredOut():
            return replace(
                plan,
                status=Status.TRANSFERRED_OUT,
                transferred_out_on=fact.transferred_on,
            )
        case contract.PlanTransferredIn():
            return replace(
                plan,
                status=Status.PLAN_MAINTAINED,
                transferred_in_on=fact.transferred_on,
                transferred_from=private.get("from_council"),
                transfer_in_note=private.get("note"),
            )
        case contract.NewCouncilNoticeSent():
            return replace(
                plan,
                new_council_notified_on=fact.notified_on,
                new_council_note=private.get("note"),
            )
        case contract.ReassessmentRequested():
            request = Reassessment(
                requested_on=fact.requested_on, reason=private.get("reason")
            )
            return replace(plan, reassessments=(*plan.reassessments, request))
        case contract.ReassessmentDecided():
            return replace(
                plan,
                reassessments=_replace_last(
                    plan.reassessments,
                    notified_on=fact.notified_on,
                    agreed=fact.agreed,
                    reasons=private.get("reasons"),
                ),
            )
        case contract.TimeLimitExceptionRecorded():
            exception = TimeLimitException(
                clock=fact.clock,
                reason=fact.reason,
                advice_id=fact.instance,
                evidence=private.get("evidence"),
            )
            return replace(plan, exceptions=(*plan.exceptions, exception))
    return plan


def fold(case_id: str, events: Iterable[RecordedEvent]) -> Plan:
    """The case built from its whole stream, oldest event first."""
    plan = Plan(case_id=case_id)
    for event in events:
        plan = evolve(plan, event)
    return plan
