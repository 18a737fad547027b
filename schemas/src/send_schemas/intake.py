"""The events the intake service publishes on ``send.intake.events``.

Each model is the public ``data`` of one event type; its CloudEvents ``type`` is the
model's ``EVENT_TYPE`` (``send.intake.<Name>.v1``) and its ``subject`` the case id,
which the payload repeats as ``case_id``. Only what a subscriber needs is here: the
school URN, the national curriculum year, the requester type, the channel, dates and
outcome codes. The child's reference, date of birth, names, reasons and evidence text
stay in intake's store and are served by its API, never published.

The models forbid unknown fields, so intake cannot publish more than the contract
allows. Subscribers should read with ``parse_intake_event``, which ignores fields a
newer version of the contract may add.

National curriculum years are integers from -2 to 14: -2 and -1 are the two nursery
years (N1, N2), 0 is Reception, 1 to 13 are Years 1 to 13, and 14 stands for any year
after Year 13 (a young person of 19 to 25 in further education or training).

Dates (``notified_on``, ``withdrawn_on``, ``presented_on``) are local dates in
Europe/London.
Timestamps are UTC with an explicit offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

OWNER = "intake"
TOPIC = "send.intake.events"

CURRICULUM_YEAR_MIN = -2
CURRICULUM_YEAR_MAX = 14
URN_MIN = 100000
URN_MAX = 999999

RequesterType = Literal["parent", "young_person", "school", "professional"]
Channel = Literal["email", "letter", "portal", "phone"]
Clock = Literal["decision", "no_plan_notice", "final_plan"]
ExceptionReason = Literal["a", "b", "c", "d"]
CorrectableField = Literal["received_at", "notified_on"]

REQUESTER_TYPES: tuple[str, ...] = ("parent", "young_person", "school", "professional")
CHANNELS: tuple[str, ...] = ("email", "letter", "portal", "phone")
CLOCKS: tuple[str, ...] = ("decision", "no_plan_notice", "final_plan")
EXCEPTION_REASONS: tuple[str, ...] = ("a", "b", "c", "d")
CORRECTABLE_FIELDS: tuple[str, ...] = ("received_at", "notified_on")


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


CaseId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The pseudonymous case id (a UUID), also the CloudEvents subject.",
    ),
]
StaffId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="A pseudonymous staff id.",
    ),
]
UtcTimestamp = Annotated[AwareDatetime, AfterValidator(_as_utc)]
SchoolUrn = Annotated[
    int,
    Field(ge=URN_MIN, le=URN_MAX, description="The school's unique reference number."),
]
CurriculumYear = Annotated[
    int,
    Field(
        ge=CURRICULUM_YEAR_MIN,
        le=CURRICULUM_YEAR_MAX,
        description="-2 N1, -1 N2, 0 Reception, 1..13 Year 1..13, 14 post-19.",
    ),
]


class IntakeEvent(BaseModel):
    """The public data of one intake event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    EVENT_TYPE: ClassVar[str]

    case_id: CaseId


class RequestReceived(IntakeEvent):
    """A request for an EHC needs assessment was received; the 6-week clock starts."""

    EVENT_TYPE: ClassVar[str] = "send.intake.RequestReceived.v1"

    requester_type: RequesterType
    channel: Channel
    received_at: UtcTimestamp
    school_urn: SchoolUrn
    curriculum_year: CurriculumYear


class CoordinatorAssigned(IntakeEvent):
    """An EHC coordinator was assigned to the case, replacing any earlier one."""

    EVENT_TYPE: ClassVar[str] = "send.intake.CoordinatorAssigned.v1"

    coordinator_id: StaffId
    previous_coordinator_id: StaffId | None = None


class AssessmentAgreed(IntakeEvent):
    """The council decided to assess, and told the family on ``notified_on``."""

    EVENT_TYPE: ClassVar[str] = "send.intake.AssessmentAgreed.v1"

    notified_on: date


class AssessmentRefused(IntakeEvent):
    """The council decided not to assess, and told the family on ``notified_on``."""

    EVENT_TYPE: ClassVar[str] = "send.intake.AssessmentRefused.v1"

    notified_on: date


class TimeLimitExceptionRecorded(IntakeEvent):
    """A statutory exception (reason a to d) applies to one of the case's clocks."""

    EVENT_TYPE: ClassVar[str] = "send.intake.TimeLimitExceptionRecorded.v1"

    clock: Clock
    reason: ExceptionReason


class RequestWithdrawn(IntakeEvent):
    """The request was withdrawn on ``withdrawn_on``; its clocks no longer apply."""

    EVENT_TYPE: ClassVar[str] = "send.intake.RequestWithdrawn.v1"

    withdrawn_on: date


class RequestPresentedAtSurgery(IntakeEvent):
    """The request was presented to the Local Area Surgery on ``presented_on``.

    This stops the council's local target of presenting each request within 6 weeks
    of receipt (a local practice target, not a statutory limit). Intake records one
    presentation per case; ``SurgeryPresentationCorrected`` puts a wrong date right.
    What the surgery recommended is not published: the decision that follows is.
    """

    EVENT_TYPE: ClassVar[str] = "send.intake.RequestPresentedAtSurgery.v1"

    presented_on: date


class RequestCorrected(IntakeEvent):
    """A recorded fact was wrong; ``new_value`` replaces ``old_value`` from now on.

    ``received_at`` values are UTC timestamps, ``notified_on`` values ISO dates, both
    as strings in ISO 8601.
    """

    EVENT_TYPE: ClassVar[str] = "send.intake.RequestCorrected.v1"

    field: CorrectableField
    old_value: str
    new_value: str


class SurgeryPresentationCorrected(IntakeEvent):
    """The date of the surgery presentation was wrong; ``new_value`` replaces it.

    It has the shape of ``RequestCorrected`` (``field``, ``old_value``, ``new_value``)
    so that a subscriber reads both alike, but is a type of its own because the
    ``field`` enum of ``RequestCorrected.v1`` cannot grow within its version.
    """

    EVENT_TYPE: ClassVar[str] = "send.intake.SurgeryPresentationCorrected.v1"

    field: Literal["presented_on"]
    old_value: date
    new_value: date


EVENT_MODELS: tuple[type[IntakeEvent], ...] = (
    RequestReceived,
    CoordinatorAssigned,
    AssessmentAgreed,
    AssessmentRefused,
    TimeLimitExceptionRecorded,
    RequestWithdrawn,
    RequestCorrected,
    RequestPresentedAtSurgery,
    SurgeryPresentationCorrected,
)
EVENTS_BY_TYPE: dict[str, type[IntakeEvent]] = {m.EVENT_TYPE: m for m in EVENT_MODELS}


class UnknownIntakeEvent(KeyError):
    """A type string that no intake model describes."""


def parse_intake_event(event_type: str, data: dict[str, Any]) -> IntakeEvent:
    """The model of one published intake event, ignoring fields it does not know.

    Raises ``UnknownIntakeEvent`` for a type it has no model of, and pydantic's
    ``ValidationError`` for data that breaks the contract.
    """
    model = EVENTS_BY_TYPE.get(event_type)
    if model is None:
        raise UnknownIntakeEvent(
            f"{event_type!r} is not an intake event type: expected one of "
            + ", ".join(sorted(EVENTS_BY_TYPE))
        )
    known = {key: value for key, value in data.items() if key in model.model_fields}
    return model.model_validate(known)
