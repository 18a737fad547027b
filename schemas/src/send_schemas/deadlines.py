"""The clock events the deadlines service publishes on ``send.deadlines.events``.

Every event concerns one clock of one case: ``clock_id`` names the clock within the case
(``final_plan``, ``advice[advice_id=A1]``, ``annual_review[review_id=R2]``) and
``case_id`` is the subject. Each event repeats what a consumer needs to act on it
without keeping state of its own: the clock's title, due date, the day to act by when
the due date is not a working day, the legal basis, whether it is a statutory limit, and
whether an overdue state is escalated as a breach (``escalate`` is false for local
targets and for a clock an exception applies to). ``exception_reason`` is carried on
every event so timeliness can be reported both including and excluding exception cases,
as the Department for Education does.

The id of each published event is derived from the case, the clock and the transition,
so a replay re-emits the same ids; consumers drop a repeat by id.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

OWNER = "deadlines"
TOPIC = "send.deadlines.events"
WINDOW_CLOSED = "window closed"
EVENT_TYPE_PATTERN = r"^send\.[a-z][a-z0-9]*\.[A-Z][A-Za-z0-9]*\.v[1-9][0-9]*$"
"""The shape of an event type, send.<owner>.<Name>.v<N>."""


class Authority(StrEnum):
    """Where a time limit comes from: the law, statutory guidance, or the council."""

    STATUTORY = "statutory"
    GUIDANCE = "guidance"
    LOCAL = "local"


class ClockKind(StrEnum):
    """A deadline must be met by its due date; a window must run out before acting."""

    DEADLINE = "deadline"
    WINDOW = "window"


class AlertKind(StrEnum):
    APPROACHING = "approaching"
    OVERDUE = "overdue"


class ClockEvent(BaseModel):
    """The fields every clock event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    EVENT_TYPE: ClassVar[str] = ""

    clock_id: str = Field(description="The clock's id within the case.")
    case_id: str = Field(description="The pseudonymous case id (the event subject).")
    clock: str = Field(description="The rule's name, such as 'final_plan'.")
    title: str = Field(description="The clock's name for people.")
    due_on: date = Field(description="The legal due date (or last day of a window).")
    act_by: date | None = Field(
        description="The working day to act by when due_on is a weekend or bank "
        "holiday; null when due_on is itself a working day."
    )
    legal_basis: str
    statutory: bool = Field(description="True only for limits set by the Act or Regs.")
    authority: Authority
    escalate: bool = Field(
        description="Whether an overdue state is escalated as a breach of the limit."
    )
    exception_reason: str | None = Field(
        default=None, description="The exception reason code that applies, if any."
    )
    rules_version: str = Field(description="The rules version the clock was set under.")


class ClockSet(ClockEvent):
    """A clock has started: its due date, basis and alert lead times are known."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockSet.v1"

    kind: ClockKind
    started_on: date | None = Field(description="The date of the fact that started it.")
    counts_from: date | None = Field(description="The date the due date counts from.")
    earliest_action_on: date | None = Field(
        default=None, description="For a window: the first day after it closes."
    )
    guidance_due_on: date | None = Field(
        default=None, description="A date the guidance gives beside the legal one."
    )
    guidance_note: str | None = None
    lead_working_days: tuple[int, ...] = Field(
        description="Working days before the due date at which alerts are raised."
    )
    action: str = Field(description="What has to be done, in a sentence.")
    started_by: str | None = Field(
        default=None,
        pattern=EVENT_TYPE_PATTERN,
        description="The event type of the fact that started the clock, one of its "
        "rule's start events (null from workers older than this field).",
    )
    started_by_event_id: str | None = Field(
        default=None,
        description="The id of the event that started the clock; it is also the "
        "ce_causationid when the clock is set by that event, but not when it is set "
        "later, once a date it needs is known (null from older workers).",
    )


class ClockApproaching(ClockEvent):
    """An alert lead time of an open clock has been reached."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockApproaching.v1"

    lead_working_days: int
    alert_on: date = Field(description="The working day this lead time falls on.")
    action: str


class ClockOverdue(ClockEvent):
    """The due date has passed and nothing has stopped the clock (a live state)."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockOverdue.v1"

    overdue_since: date
    action: str


class ClockMet(ClockEvent):
    """The clock stopped on or before its due date (a window: it closed)."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockMet.v1"

    stopped_on: date
    stopped_by: str = Field(
        description="The event type that stopped it, or 'window closed' for a window."
    )
    stopped_by_event_id: str | None = Field(
        default=None,
        description="The id of the event that stopped it; null for a window that "
        "closed, and from workers older than this field.",
    )


class ClockLate(ClockEvent):
    """The clock stopped after its due date."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockLate.v1"

    stopped_on: date
    stopped_by: str
    days_late: int
    stopped_by_event_id: str | None = Field(
        default=None,
        description="The id of the event that stopped it (null from older workers).",
    )


class ClockCancelled(ClockEvent):
    """The clock no longer applies (a refusal, a withdrawal, a draft plan issued)."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockCancelled.v1"

    cancelled_on: date | None
    cancelled_by: str = Field(description="The event type that cancelled it.")
    breach_voided: bool = Field(
        description="True when cancelling means an overdue state was not a breach."
    )
    cancelled_by_event_id: str | None = Field(
        default=None,
        description="The id of the event that cancelled it; null when the rules no "
        "longer give the clock, and from workers older than this field.",
    )


class ClockExceptionApplied(ClockEvent):
    """An exception to the time limit applies: the due date stays, reminders go on."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockExceptionApplied.v1"

    reason: str
    reason_text: str


class ClockDueDateChanged(ClockEvent):
    """A corrected fact moved the due date; alerts about the old date are withdrawn."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.ClockDueDateChanged.v1"

    previous_due_on: date
    counts_from: date | None


class AlertWithdrawn(ClockEvent):
    """An approaching or overdue alert raised earlier no longer holds."""

    EVENT_TYPE: ClassVar[str] = "send.deadlines.AlertWithdrawn.v1"

    alert_id: str = Field(description="The id of the withdrawn alert event.")
    alert_kind: AlertKind
    alert_due_on: date = Field(
        description="The due date the withdrawn alert concerned."
    )
    lead_working_days: int | None
    reason: str


CLOCK_EVENTS: dict[str, type[ClockEvent]] = {
    model.EVENT_TYPE: model
    for model in (
        ClockSet,
        ClockApproaching,
        ClockOverdue,
        ClockMet,
        ClockLate,
        ClockCancelled,
        ClockExceptionApplied,
        ClockDueDateChanged,
        AlertWithdrawn,
    )
}


class UnknownClockEvent(KeyError):
    """A type string that no deadlines model describes."""


def clock_event_model(event_type: str) -> type[ClockEvent]:
    """The model of a ``send.deadlines.*`` event type, for a consumer to parse with."""
    try:
        return CLOCK_EVENTS[event_type]
    except KeyError:
        raise UnknownClockEvent(
            f"{event_type!r} is not a deadlines event type: expected one of "
            + ", ".join(sorted(CLOCK_EVENTS))
        ) from None


def parse_clock_event(event_type: str, data: dict[str, Any]) -> ClockEvent:
    """The model of one published clock event, ignoring fields it does not know.

    Raises ``UnknownClockEvent`` for an unknown type and pydantic's
    ``ValidationError`` for data that breaks the contract.
    """
    model = clock_event_model(event_type)
    known = {key: value for key, value in data.items() if key in model.model_fields}
    return model.model_validate(known)
