"""What staff, and intake's events, ask the plans service to do, as plain values.

Commands are imperative (``IssuePlan``), the events they cause past tense
(``PlanIssued``). Values arrive already parsed into Python types but not yet checked
against the rules: ``decide`` does that, so the rules hold whichever entry point a
command comes through (the HTTP API or the subscriber to intake's topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sendkit.events import Metadata


@dataclass(frozen=True, slots=True)
class RequestClosed:
    """Intake's word that the case's request ended: withdrawn or refused, and when."""

    outcome: str
    """``withdrawn`` or ``refused``."""
    closed_on: date


@dataclass(frozen=True, slots=True)
class Context:
    """What a decision may depend on besides the case: time, actor, intake's closure.

    ``request_closed`` is set when intake withdrew the request or refused to assess
    it; the service reads it from what its subscriber recorded of intake's events.
    """

    now: datetime
    metadata: Metadata
    request_closed: RequestClosed | None = None


@dataclass(frozen=True, slots=True)
class OpenAssessment:
    """Open the assessment of a case intake agreed to assess (told on ``agreed_on``)."""

    case_id: str
    agreed_on: date


@dataclass(frozen=True, slots=True)
class RequestAdvice:
    """Record a request for advice from a professional body, and when it reached it.

    ``advice_id`` is chosen by the caller (the HTTP API makes a UUID), so a retried
    request cannot be recorded twice under two ids.
    """

    case_id: str
    advice_id: str
    body: str
    received_by_body_on: date
    professional: str | None = None


@dataclass(frozen=True, slots=True)
class RecordAdviceReceived:
    """Record that the advice requested as ``advice_id`` reached the council."""

    case_id: str
    advice_id: str
    received_on: date


@dataclass(frozen=True, slots=True)
class DecideNotToIssuePlan:
    """Record the decision not to issue a plan, notified on ``notified_on``, and why."""

    case_id: str
    notified_on: date
    reasons: str


@dataclass(frozen=True, slots=True)
class IssueDraftPlan:
    """Record that a draft plan (or a revised draft) was served on ``served_on``."""

    case_id: str
    served_on: date


@dataclass(frozen=True, slots=True)
class RecordDraftComments:
    """Record the parent's or young person's answer to the draft plan."""

    case_id: str
    received_on: date
    respondent: str
    comments: str | None = None
    preferred_setting_urn: int | None = None
    meeting_requested: bool = False
    agreed_to_early_final_plan: bool = False


@dataclass(frozen=True, slots=True)
class IssuePlan:
    """Record the final EHC plan as issued, its setting and the child's type of need.

    ``primary_need`` and ``secondary_need`` are SEN2 need codes; they stay private.
    """

    case_id: str
    issued_on: date
    setting_urn: int | None
    setting_type: str
    start_date: date
    primary_need: str
    secondary_need: str | None = None


@dataclass(frozen=True, slots=True)
class ProposeAmendment:
    """Record that a notice of proposed amendments was sent on ``notice_sent_on``.

    ``review_id`` names the annual review whose decision to amend the notice carries
    out, when it follows one (the reviews service's id of the review).
    """

    case_id: str
    notice_sent_on: date
    proposals: str
    review_id: str | None = None


@dataclass(frozen=True, slots=True)
class AmendPlan:
    """Record the amended plan as issued, with the sections it changed."""

    case_id: str
    issued_on: date
    changes: tuple[str, ...]
    setting_urn: int | None = None
    setting_type: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class CeasePlan:
    """Record that the council ceased to maintain the plan, with the SEN2 reason."""

    case_id: str
    ceased_on: date
    reason: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class NotifyTransferOut:
    """Record that the family is moving to another English council's area.

    Sent again while the transfer is pending, it replaces the dates recorded before
    (a move day learned later, a date mistyped).
    """

    case_id: str
    learned_on: date
    to_council: str
    move_on: date | None = None


@dataclass(frozen=True, slots=True)
class TransferPlanOut:
    """Record that the plan was transferred to the new council on ``transferred_on``."""

    case_id: str
    transferred_on: date


@dataclass(frozen=True, slots=True)
class TransferPlanIn:
    """Open a case for a plan another council transferred to this one."""

    case_id: str
    transferred_on: date
    from_council: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class SendNewCouncilNotice:
    """Record the notice after a transfer in: whether to re-assess, when to review."""

    case_id: str
    notified_on: date
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RequestReassessment:
    """Record a request to re-assess the needs of a child or young person."""

    case_id: str
    requested_on: date
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DecideReassessment:
    """Record whether the council will re-assess, notified on ``notified_on``."""

    case_id: str
    notified_on: date
    agreed: bool
    reasons: str | None = None


@dataclass(frozen=True, slots=True)
class RecordTimeLimitException:
    """Record that a statutory exception applies to the advice or re-assessment clock.

    For ``advice``, ``advice_id`` names the one request it concerns; without it the
    exception applies to every request still outstanding.
    """

    case_id: str
    clock: str
    reason: str
    evidence: str
    advice_id: str | None = None


@dataclass(frozen=True, slots=True)
class CorrectPlan:
    """Put right the date of an event recorded earlier, saying why it was wrong.

    ``event_id`` is the id of the event in the case's history, ``field`` its date
    (``send_schemas.plans.CORRECTABLE_DATES``) and ``new_value`` the right date.
    """

    case_id: str
    event_id: str
    field: str
    new_value: date
    reason: str


Command = (
    OpenAssessment
    | RequestAdvice
    | RecordAdviceReceived
    | DecideNotToIssuePlan
    | IssueDraftPlan
    | RecordDraftComments
    | IssuePlan
    | ProposeAmendment
    | AmendPlan
    | CeasePlan
    | NotifyTransferOut
    | TransferPlanOut
    | TransferPlanIn
    | SendNewCouncilNotice
    | RequestReassessment
    | DecideReassessment
    | RecordTimeLimitException
    | CorrectPlan
)
