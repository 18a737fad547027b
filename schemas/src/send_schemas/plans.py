"""The events the plans service publishes on ``send.plans.events``.

Each model is the public ``data`` of one event type; its CloudEvents ``type`` is the
model's ``EVENT_TYPE`` (``send.plans.<Name>.v1``) and its ``subject`` the case id, which
the payload repeats as ``case_id``. A case's id is the one intake gave it when the
request arrived (a plan transferred in from another council gets a new one), so one
case's intake and plans events share a Kafka key.

Only what a subscriber needs is published: dates, the advising body, the named setting's
URN and type, the sections of the plan an amendment changed, and outcome codes (the
SEN2 reason a plan ceased). The child's type of need, the reasons for not issuing a
plan, the family's comments, the proposed amendments, the other council's name and
every note stay in the plans store and are served by its API, never published, and so
does the reason a date was corrected (``PlanCorrected``).

The models forbid unknown fields, so the plans service cannot publish more than the
contract allows. Subscribers should read with ``parse_plans_event``, which ignores
fields a newer version of the contract may add.

Dates are local dates in Europe/London. An EHC plan's sections are coded as the SEND
Code of Practice (para 9.62) letters them: A views, interests and aspirations; B
special educational needs; C health needs; D social care needs; E outcomes; F special
educational provision; G health provision; H1 social care provision under the
Chronically Sick and Disabled Persons Act; H2 other social care provision; I the
placement; J the personal budget; K the advice and information gathered.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from send_schemas.intake import CaseId, SchoolUrn
from send_schemas.reviews import ReviewId

OWNER = "plans"
TOPIC = "send.plans.events"

AdviceBody = Literal[
    "educational_psychology", "health", "social_care", "education", "other"
]
ADVICE_BODIES: tuple[str, ...] = (
    "educational_psychology",
    "health",
    "social_care",
    "education",
    "other",
)

CeaseReason = Literal[
    "maximum_age",
    "needs_met",
    "higher_education",
    "employment",
    "moved_english_la",
    "not_engaging",
    "left_england",
    "died",
    "other",
]
CEASE_REASONS: tuple[str, ...] = (
    "maximum_age",
    "needs_met",
    "higher_education",
    "employment",
    "moved_english_la",
    "not_engaging",
    "left_england",
    "died",
    "other",
)
"""The SEN2 return's reasons a plan ceased, in its order."""

SettingType = Literal[
    "mainstream_maintained",
    "mainstream_academy",
    "mainstream_independent",
    "resourced_provision",
    "special_maintained",
    "special_academy",
    "special_non_maintained",
    "special_independent",
    "alternative_provision",
    "further_education",
    "sixth_form_college",
    "specialist_post16",
    "early_years",
    "elective_home_education",
    "education_otherwise",
    "other",
]
SETTING_TYPES: tuple[str, ...] = (
    "mainstream_maintained",
    "mainstream_academy",
    "mainstream_independent",
    "resourced_provision",
    "special_maintained",
    "special_academy",
    "special_non_maintained",
    "special_independent",
    "alternative_provision",
    "further_education",
    "sixth_form_college",
    "specialist_post16",
    "early_years",
    "elective_home_education",
    "education_otherwise",
    "other",
)
SETTING_TYPES_WITHOUT_URN: tuple[str, ...] = (
    "elective_home_education",
    "education_otherwise",
)
"""Arrangements that name no school or college, so carry no URN."""

PlanSection = Literal["A", "B", "C", "D", "E", "F", "G", "H1", "H2", "I", "J", "K"]
PLAN_SECTIONS: tuple[str, ...] = (
    "A",
    "B",
    "C",
    "D",
    "E",
    "F",
    "G",
    "H1",
    "H2",
    "I",
    "J",
    "K",
)
PLACEMENT_SECTION = "I"

ExceptionClock = Literal["advice", "reassessment_plan"]
EXCEPTION_CLOCKS: tuple[str, ...] = ("advice", "reassessment_plan")
ExceptionReason = Literal["a", "b", "c", "d"]
EXCEPTION_REASONS: dict[str, tuple[str, ...]] = {
    "advice": ("a", "b", "c"),
    "reassessment_plan": ("a", "b", "c", "d"),
}
"""The reasons each clock may take: Reg 8(2) lists three for advice, Reg 27(3) four
for the plan after a re-assessment."""

Respondent = Literal["parent", "young_person"]
RESPONDENTS: tuple[str, ...] = ("parent", "young_person")

AdviceId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The id the plans service gave the request for advice (a UUID).",
    ),
]


class PlansEvent(BaseModel):
    """The public data of one plans event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    EVENT_TYPE: ClassVar[str]

    case_id: CaseId


class AssessmentOpened(PlansEvent):
    """The EHC needs assessment is open in plans, after intake's agreement to assess.

    ``agreed_on`` is the day intake says the family was told the council would assess.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.AssessmentOpened.v1"

    agreed_on: date


class AdviceRequested(PlansEvent):
    """Advice was requested from a professional body, which received the request on
    ``received_by_body_on``; the body's 6 weeks count from that day."""

    EVENT_TYPE: ClassVar[str] = "send.plans.AdviceRequested.v1"

    advice_id: AdviceId
    body: AdviceBody
    received_by_body_on: date


class AdviceReceived(PlansEvent):
    """The advice asked for as ``advice_id`` reached the council on ``received_on``."""

    EVENT_TYPE: ClassVar[str] = "send.plans.AdviceReceived.v1"

    advice_id: AdviceId
    received_on: date


class NoPlanNoticeSent(PlansEvent):
    """The council chose not to issue a plan and told the family on ``notified_on``."""

    EVENT_TYPE: ClassVar[str] = "send.plans.NoPlanNoticeSent.v1"

    notified_on: date


class DraftPlanIssued(PlansEvent):
    """A draft plan was served on ``served_on``; the 15-day comment window opens.

    A revised draft is a new ``DraftPlanIssued``, which opens a window of its own.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.DraftPlanIssued.v1"

    served_on: date


class DraftCommentsReceived(PlansEvent):
    """The parent or young person answered the draft plan, on ``received_on``.

    ``preferred_setting_urn`` is the school or college they asked to be named, if any;
    ``meeting_requested`` whether they asked to meet an officer of the council;
    ``agreed_to_early_final_plan`` whether they agreed in writing that the final plan
    may be issued before the comment window closes.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.DraftCommentsReceived.v1"

    received_on: date
    respondent: Respondent
    preferred_setting_urn: SchoolUrn | None = None
    meeting_requested: bool = False
    agreed_to_early_final_plan: bool = False


class PlanIssued(PlansEvent):
    """The final EHC plan was issued on ``issued_on``, naming its setting.

    ``setting_urn`` is null only for the arrangements that name no school or college
    (``SETTING_TYPES_WITHOUT_URN``); ``start_date`` is when the named provision starts.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.PlanIssued.v1"

    issued_on: date
    setting_urn: SchoolUrn | None
    setting_type: SettingType
    start_date: date

    @model_validator(mode="after")
    def _urn_unless_no_setting(self) -> PlanIssued:
        if self.setting_urn is None and self.setting_type not in (
            SETTING_TYPES_WITHOUT_URN
        ):
            raise ValueError(
                f"setting_urn is required for setting_type {self.setting_type!r}; "
                "only " + ", ".join(SETTING_TYPES_WITHOUT_URN) + " name no URN"
            )
        return self


class AmendmentProposed(PlansEvent):
    """A notice of proposed amendments to the plan was sent on ``notice_sent_on``.

    ``review_id`` names the annual review whose decision to amend the notice carries
    out, if it follows one: the deadlines service then keeps that review's one clock for
    the final amended plan (capped at the meeting + 12 weeks) instead of a second one.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.AmendmentProposed.v1"

    notice_sent_on: date
    review_id: ReviewId | None = None


class PlanAmended(PlansEvent):
    """The amended plan was issued on ``issued_on``, changing the sections listed.

    A new setting is named with ``setting_urn`` (and ``setting_type``), and then
    ``changes`` includes section I, the placement.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.PlanAmended.v1"

    issued_on: date
    changes: list[PlanSection] = Field(min_length=1)
    setting_urn: SchoolUrn | None = None
    setting_type: SettingType | None = None

    @model_validator(mode="after")
    def _placement_named_in_section_i(self) -> PlanAmended:
        if len(set(self.changes)) != len(self.changes):
            raise ValueError("changes lists a section more than once")
        names_setting = self.setting_urn is not None or self.setting_type is not None
        if names_setting and PLACEMENT_SECTION not in self.changes:
            raise ValueError("naming a setting changes section I: list it in changes")
        if self.setting_urn is not None and self.setting_type is None:
            raise ValueError("a setting_urn needs its setting_type")
        return self


class PlanCeased(PlansEvent):
    """The council ceased to maintain the plan from ``ceased_on``, for a SEN2 reason."""

    EVENT_TYPE: ClassVar[str] = "send.plans.PlanCeased.v1"

    ceased_on: date
    reason: CeaseReason


class PlanTransferOutNotified(PlansEvent):
    """The council learned on ``learned_on`` that the family is moving to another
    English council's area, on ``move_on`` if the day is known."""

    EVENT_TYPE: ClassVar[str] = "send.plans.PlanTransferOutNotified.v1"

    move_on: date | None = None
    learned_on: date


class PlanTransferredOut(PlansEvent):
    """The plan was transferred to the new council on ``transferred_on``."""

    EVENT_TYPE: ClassVar[str] = "send.plans.PlanTransferredOut.v1"

    transferred_on: date


class PlanTransferredIn(PlansEvent):
    """A plan was transferred to this council from another on ``transferred_on``."""

    EVENT_TYPE: ClassVar[str] = "send.plans.PlanTransferredIn.v1"

    transferred_on: date


class NewCouncilNoticeSent(PlansEvent):
    """After a transfer in, the family was told on ``notified_on`` whether the council
    will re-assess and when it will review the plan."""

    EVENT_TYPE: ClassVar[str] = "send.plans.NewCouncilNoticeSent.v1"

    notified_on: date


class ReassessmentRequested(PlansEvent):
    """A re-assessment of the child's needs was requested on ``requested_on``."""

    EVENT_TYPE: ClassVar[str] = "send.plans.ReassessmentRequested.v1"

    requested_on: date


class ReassessmentDecided(PlansEvent):
    """Whether the council will re-assess (``agreed``), notified on ``notified_on``."""

    EVENT_TYPE: ClassVar[str] = "send.plans.ReassessmentDecided.v1"

    notified_on: date
    agreed: bool


class TimeLimitExceptionRecorded(PlansEvent):
    """A statutory exception (reason ``a`` to ``d``) applies to one of plans' clocks.

    ``advice`` (Reg 8(2), reasons a to c) concerns the request for advice named by
    ``instance`` (its ``advice_id``), or every outstanding one when ``instance`` is
    null; ``reassessment_plan`` (Reg 27(3), reasons a to d) the plan after the
    re-assessment under way. The evidence stays in the plans store.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.TimeLimitExceptionRecorded.v1"

    clock: ExceptionClock
    reason: ExceptionReason
    instance: AdviceId | None = None

    @model_validator(mode="after")
    def _reason_of_the_clock(self) -> TimeLimitExceptionRecorded:
        allowed = EXCEPTION_REASONS[self.clock]
        if self.reason not in allowed:
            raise ValueError(
                f"reason {self.reason!r} does not apply to the {self.clock} clock: "
                "use " + ", ".join(allowed)
            )
        if self.instance is not None and self.clock != "advice":
            raise ValueError("only an advice exception names an instance (advice_id)")
        return self


CorrectableField = Literal[
    "issued_on",
    "served_on",
    "notice_sent_on",
    "notified_on",
    "transferred_on",
    "requested_on",
    "ceased_on",
]
CorrectedEventType = Literal[
    "send.plans.NoPlanNoticeSent.v1",
    "send.plans.DraftPlanIssued.v1",
    "send.plans.PlanIssued.v1",
    "send.plans.AmendmentProposed.v1",
    "send.plans.PlanAmended.v1",
    "send.plans.PlanCeased.v1",
    "send.plans.PlanTransferredOut.v1",
    "send.plans.PlanTransferredIn.v1",
    "send.plans.NewCouncilNoticeSent.v1",
    "send.plans.ReassessmentRequested.v1",
    "send.plans.ReassessmentDecided.v1",
]
CORRECTABLE_DATES: dict[str, str] = {
    NoPlanNoticeSent.EVENT_TYPE: "notified_on",
    DraftPlanIssued.EVENT_TYPE: "served_on",
    PlanIssued.EVENT_TYPE: "issued_on",
    AmendmentProposed.EVENT_TYPE: "notice_sent_on",
    PlanAmended.EVENT_TYPE: "issued_on",
    PlanCeased.EVENT_TYPE: "ceased_on",
    PlanTransferredOut.EVENT_TYPE: "transferred_on",
    PlanTransferredIn.EVENT_TYPE: "transferred_on",
    NewCouncilNoticeSent.EVENT_TYPE: "notified_on",
    ReassessmentRequested.EVENT_TYPE: "requested_on",
    ReassessmentDecided.EVENT_TYPE: "notified_on",
}
"""The event types whose date a correction may put right, and that date's field."""

EventId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The CloudEvents id of the plans event corrected (a UUID).",
    ),
]


class PlanCorrected(PlansEvent):
    """A date recorded earlier was wrong: ``new_value`` replaces ``old_value``.

    ``event_id`` and ``event_type`` name the plans event corrected (as published), and
    ``field`` its date (``CORRECTABLE_DATES``). A later correction of the same event
    has the value the last one set as its ``old_value``. Why the date was wrong stays
    in the plans store.
    """

    EVENT_TYPE: ClassVar[str] = "send.plans.PlanCorrected.v1"

    event_id: EventId
    event_type: CorrectedEventType
    field: CorrectableField
    old_value: date
    new_value: date

    @model_validator(mode="after")
    def _the_date_of_that_event(self) -> PlanCorrected:
        expected = CORRECTABLE_DATES[self.event_type]
        if self.field != expected:
            raise ValueError(
                f"{self.event_type} has no {self.field} to correct: its date is "
                f"{expected}"
            )
        if self.old_value == self.new_value:
            raise ValueError("new_value is old_value: a correction changes the date")
        return self


EVENT_MODELS: tuple[type[PlansEvent], ...] = (
    AssessmentOpened,
    AdviceRequested,
    AdviceReceived,
    NoPlanNoticeSent,
    DraftPlanIssued,
    DraftCommentsReceived,
    PlanIssued,
    AmendmentProposed,
    PlanAmended,
    PlanCeased,
    PlanTransferOutNotified,
    PlanTransferredOut,
    PlanTransferredIn,
    NewCouncilNoticeSent,
    ReassessmentRequested,
    ReassessmentDecided,
    TimeLimitExceptionRecorded,
    PlanCorrected,
)
EVENTS_BY_TYPE: dict[str, type[PlansEvent]] = {m.EVENT_TYPE: m for m in EVENT_MODELS}


class UnknownPlansEvent(KeyError):
    """A type string that no plans model describes."""


def parse_plans_event(event_type: str, data: dict[str, Any]) -> PlansEvent:
    """The model of one published plans event, ignoring fields it does not know.

    Raises ``UnknownPlansEvent`` for a type it has no model of, and pydantic's
    ``ValidationError`` for data that breaks the contract.
    """
    model = EVENTS_BY_TYPE.get(event_type)
    if model is None:
        raise UnknownPlansEvent(
            f"{event_type!r} is not a plans event type: expected one of "
            + ", ".join(sorted(EVENTS_BY_TYPE))
        )
    known = {key: value for key, value in data.items() if key in model.model_fields}
    return model.model_validate(known)
