"""The JSON bodies plans' HTTP API accepts and returns.

Request bodies refuse unknown fields, so a misspelt field is a 422 naming it rather
than a value silently ignored. Their constraints repeat the domain's for the OpenAPI
document; the domain checks them again, with the rules that need the time (nothing in
the future) or the case (nothing before the fact it follows).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from plans.application.service import CaseHistory
from plans.domain.model import (
    Advice,
    Amendment,
    Comments,
    NeedType,
    Reassessment,
    TimeLimitException,
)
from send_schemas import plans as contract
from send_schemas.intake import SchoolUrn
from send_schemas.plans import EventId
from send_schemas.reviews import ReviewId
from sendkit.events import RecordedEvent

Text = Annotated[str, Field(min_length=1, max_length=4000)]
Council = Annotated[
    str, Field(min_length=1, max_length=200, description="A council's name.")
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdviceRequestBody(_Body):
    """A request for advice, and the day the professional body received it."""

    body: contract.AdviceBody
    received_by_body_on: date = Field(
        description="The day the body received the request; its 6 weeks count from it."
    )
    professional: Text | None = Field(
        default=None, description="Who was asked (kept private)."
    )


class AdviceReceivedBody(_Body):
    """The day the advice reached the council."""

    received_on: date


class NoPlanBody(_Body):
    """The decision not to issue a plan: the day notified and the reasons (private)."""

    notified_on: date
    reasons: Text


class DraftPlanBody(_Body):
    """The day the draft plan (or a revised draft) was served."""

    served_on: date


class DraftCommentsBody(_Body):
    """The parent's or young person's answer to the draft plan."""

    received_on: date
    respondent: contract.Respondent
    comments: Text | None = Field(
        default=None, description="What they said (kept private)."
    )
    preferred_setting_urn: SchoolUrn | None = None
    meeting_requested: StrictBool = False
    agreed_to_early_final_plan: StrictBool = Field(
        default=False,
        description="They agreed in writing that the final plan may be issued before "
        "the comment window closes.",
    )


class FinalPlanBody(_Body):
    """The final plan as issued: its setting, start, and the child's type of need."""

    issued_on: date
    setting_urn: SchoolUrn | None = Field(
        default=None,
        description="Required unless setting_type is elective_home_education or "
        "education_otherwise.",
    )
    setting_type: contract.SettingType
    start_date: date = Field(
        description="When the named provision starts; up to three years ahead."
    )
    primary_need: NeedType = Field(description="SEN2 code (kept private).")
    secondary_need: NeedType | None = Field(
        default=None, description="SEN2 code (kept private)."
    )


class AmendmentNoticeBody(_Body):
    """The notice of proposed amendments: the day sent, and the proposals (private)."""

    notice_sent_on: date
    proposals: Text
    review_id: ReviewId | None = None


class CorrectionBody(_Body):
    """A date recorded wrongly: the event (its id in the history), which date, the
    right date, and why the recorded one was wrong (private)."""

    event_id: EventId
    field: contract.CorrectableField
    new_value: date
    reason: Text


class AmendmentBody(_Body):
    """The amended plan as issued, the sections it changed, any new setting."""

    issued_on: date
    changes: list[contract.PlanSection] = Field(min_length=1)
    setting_urn: SchoolUrn | None = None
    setting_type: contract.SettingType | None = None
    summary: Text | None = Field(
        default=None, description="What changed (kept private)."
    )


class CessationBody(_Body):
    """The day the plan ceased and the SEN2 reason."""

    ceased_on: date
    reason: contract.CeaseReason
    note: Text | None = None


class TransferOutNoticeBody(_Body):
    """The family's move to another English council, as the council learned of it."""

    learned_on: date
    to_council: Council
    move_on: date | None = Field(
        default=None,
        description="The day of the move, if known; may be past or up to three years "
        "ahead.",
    )


class TransferOutBody(_Body):
    """The day the plan was transferred to the new council."""

    transferred_on: date


class TransferInBody(_Body):
    """A plan transferred to this council from another."""

    transferred_on: date
    from_council: Council
    note: Text | None = None


class NewCouncilNoticeBody(_Body):
    """The day the family was told whether the council will re-assess and when it
    will review the plan."""

    notified_on: date
    note: Text | None = None


class ReassessmentRequestBody(_Body):
    """A request for a re-assessment."""

    requested_on: date
    reason: Text | None = None


class ReassessmentDecisionBody(_Body):
    """The decision whether to re-assess."""

    notified_on: date
    agreed: StrictBool
    reasons: Text | None = None


class TimeLimitExceptionBody(_Body):
    """A statutory exception to the advice clock (of one request, or of every one
    outstanding) or to the clock of the plan after a re-assessment."""

    clock: contract.ExceptionClock
    reason: contract.ExceptionReason = Field(
        description="advice: a to c (Reg 8(2)); reassessment_plan: a to d (Reg 27(3))."
    )
    evidence: Text = Field(description="What shows the exception applies (private).")
    advice_id: str | None = Field(
        default=None, description="The request for advice it concerns, if only one."
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


class AdviceOut(BaseModel):
    advice_id: str
    body: str
    received_by_body_on: date
    professional: str | None
    received_on: date | None

    @classmethod
    def of(cls, advice: Advice) -> AdviceOut:
        return cls(
            advice_id=advice.advice_id,
            body=advice.body,
            received_by_body_on=advice.received_by_body_on,
            professional=advice.professional,
            received_on=advice.received_on,
        )


class CommentsOut(BaseModel):
    draft: int = Field(description="Which draft they answer: 1 for the first.")
    received_on: date
    respondent: str
    comments: str | None
    preferred_setting_urn: int | None
    meeting_requested: bool
    agreed_to_early_final_plan: bool

    @classmethod
    def of(cls, comments: Comments) -> CommentsOut:
        return cls(
            draft=comments.draft,
            received_on=comments.received_on,
            respondent=comments.respondent,
            comments=comments.comments,
            preferred_setting_urn=comments.preferred_setting_urn,
            meeting_requested=comments.meeting_requested,
            agreed_to_early_final_plan=comments.agreed_to_early_final_plan,
        )


class DraftOut(BaseModel):
    """The latest draft and its comment window."""

    served_on: date
    drafts_served: list[date]
    comment_window_ends_on: date
    early_final_plan_agreed_on: date | None


class NoPlanOut(BaseModel):
    notified_on: date
    reasons: str | None


class FinalPlanOut(BaseModel):
    issued_on: date
    setting_urn: int | None
    setting_type: str | None
    start_date: date | None
    primary_need: str | None
    secondary_need: str | None


class AmendmentNoticeOut(BaseModel):
    notice_sent_on: date
    proposals: str | None
    review_id: str | None = None


class AmendmentOut(BaseModel):
    issued_on: date
    changes: list[str]
    setting_urn: int | None
    setting_type: str | None
    summary: str | None

    @classmethod
    def of(cls, amendment: Amendment) -> AmendmentOut:
        return cls(
            issued_on=amendment.issued_on,
            changes=list(amendment.changes),
            setting_urn=amendment.setting_urn,
            setting_type=amendment.setting_type,
            summary=amendment.summary,
        )


class CessationOut(BaseModel):
    ceased_on: date
    reason: str | None
    note: str | None


class TransferOutOut(BaseModel):
    learned_on: date
    move_on: date | None
    to_council: str | None
    transferred_on: date | None


class TransferInOut(BaseModel):
    transferred_on: date
    from_council: str | None
    note: str | None
    new_council_notified_on: date | None
    new_council_note: str | None


class ReassessmentOut(BaseModel):
    requested_on: date
    reason: str | None
    notified_on: date | None
    agreed: bool | None
    reasons: str | None
    concluded_on: date | None

    @classmethod
    def of(cls, reassessment: Reassessment) -> ReassessmentOut:
        return cls(
            requested_on=reassessment.requested_on,
            reason=reassessment.reason,
            notified_on=reassessment.notified_on,
            agreed=reassessment.agreed,
            reasons=reassessment.reasons,
            concluded_on=reassessment.concluded_on,
        )


class TimeLimitExceptionOut(BaseModel):
    clock: str
    reason: str
    advice_id: str | None
    evidence: str | None

    @classmethod
    def of(cls, exception: TimeLimitException) -> TimeLimitExceptionOut:
        return cls(
            clock=exception.clock,
            reason=exception.reason,
            advice_id=exception.advice_id,
            evidence=exception.evidence,
        )


class RequestClosedOut(BaseModel):
    """Intake's end of the request: no step of the assessment is taken after it."""

    outcome: str = Field(description="withdrawn or refused")
    closed_on: date


class CaseOut(BaseModel):
    """One case's plan state, with its personal details and its whole history."""

    case_id: str
    status: str
    version: int
    assessment_agreed_on: date | None
    request_closed: RequestClosedOut | None = Field(
        default=None,
        description="Set once intake withdrew the request or refused to assess it.",
    )
    advice: list[AdviceOut]
    draft: DraftOut | None
    comments: list[CommentsOut]
    no_plan: NoPlanOut | None
    final_plan: FinalPlanOut | None
    amendment_notices: list[AmendmentNoticeOut]
    amendment_pending_since: date | None
    amendments: list[AmendmentOut]
    cessation: CessationOut | None
    transfer_out: TransferOutOut | None
    transfer_in: TransferInOut | None
    reassessments: list[ReassessmentOut]
    time_limit_exceptions: list[TimeLimitExceptionOut]
    history: list[EventOut]

    @classmethod
    def of(cls, found: CaseHistory) -> CaseOut:
        plan = found.plan
        draft = None
        if plan.draft_served_on is not None and plan.comment_window_ends_on:
            draft = DraftOut(
                served_on=plan.draft_served_on,
                drafts_served=list(plan.drafts),
                comment_window_ends_on=plan.comment_window_ends_on,
                early_final_plan_agreed_on=plan.early_final_plan_agreed_on,
            )
        final_plan = None
        if plan.issued_on is not None:
            final_plan = FinalPlanOut(
                issued_on=plan.issued_on,
                setting_urn=plan.setting_urn,
                setting_type=plan.setting_type,
                start_date=plan.start_date,
                primary_need=plan.primary_need,
                secondary_need=plan.secondary_need,
            )
        transfer_out = None
        if plan.transfer_learned_on is not None:
            transfer_out = TransferOutOut(
                learned_on=plan.transfer_learned_on,
                move_on=plan.transfer_move_on,
                to_council=plan.transfer_to,
                transferred_on=plan.transferred_out_on,
            )
        transfer_in = None
        if plan.transferred_in_on is not None:
            transfer_in = TransferInOut(
                transferred_on=plan.transferred_in_on,
                from_council=plan.transferred_from,
                note=plan.transfer_in_note,
                new_council_notified_on=plan.new_council_notified_on,
                new_council_note=plan.new_council_note,
            )
        return cls(
            case_id=plan.case_id,
            status=str(plan.status),
            version=plan.version,
            assessment_agreed_on=plan.agreed_on,
            request_closed=(
                None
                if found.request_closed is None
                else RequestClosedOut(
                    outcome=found.request_closed.outcome,
                    closed_on=found.request_closed.closed_on,
                )
            ),
            advice=[AdviceOut.of(advice) for advice in plan.advice],
            draft=draft,
            comments=[CommentsOut.of(comments) for comments in plan.comments],
            no_plan=(
                NoPlanOut(
                    notified_on=plan.no_plan_notified_on, reasons=plan.no_plan_reasons
                )
                if plan.no_plan_notified_on is not None
                else None
            ),
            final_plan=final_plan,
            amendment_notices=[
                AmendmentNoticeOut(
                    notice_sent_on=sent_on, proposals=proposals, review_id=review_id
                )
                for sent_on, proposals, review_id in plan.amendment_notices
            ],
            amendment_pending_since=plan.amendment_pending_since,
            amendments=[AmendmentOut.of(amendment) for amendment in plan.amendments],
            cessation=(
                CessationOut(
                    ceased_on=plan.ceased_on,
                    reason=plan.cease_reason,
                    note=plan.cease_note,
                )
                if plan.ceased_on is not None
                else None
            ),
            transfer_out=transfer_out,
            transfer_in=transfer_in,
            reassessments=[ReassessmentOut.of(r) for r in plan.reassessments],
            time_limit_exceptions=[
                TimeLimitExceptionOut.of(exception) for exception in plan.exceptions
            ],
            history=[EventOut.of(event) for event in found.events],
        )


class CommandOut(BaseModel):
    """The answer to a command on one case."""

    case_id: str
    status: str
    version: int
    events: list[dict[str, str]]
    advice_id: str | None = None
