"""The vocabulary the clock rules table is written in.

A rule (``ClockRule``) says which events start a clock, how its due date is counted,
which events stop or cancel it, which exception reasons apply, when to alert and on what
legal basis. Dates are named by references (``StartDate``, ``Field``, ``FactOf``,
``FirstKnown``, ``SchoolYearStart``) and due dates by a small closed set of counting
rules (``Offset``, ``Earliest``, ``DayInYear``, ``OnDayIfKnownInTime``,
``TermStartBefore``), each of which names one function of ``sendkit.calendar``.
Everything here is a frozen dataclass with no behaviour beyond checking itself;
``deadlines.domain.evaluate`` interprets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from deadlines.domain.errors import RulesError
from send_schemas.deadlines import Authority, ClockKind

__all__ = [
    "EACH_EVENT",
    "Authority",
    "Cancel",
    "ClockKind",
    "ClockRule",
    "Condition",
    "Correction",
    "Count",
    "DateRef",
    "DayInYear",
    "DueRule",
    "Earliest",
    "EventSpec",
    "ExceptionReason",
    "FactOf",
    "Field",
    "FieldKind",
    "FieldSpec",
    "FirstKnown",
    "Offset",
    "OnDayIfKnownInTime",
    "RuleSet",
    "SchoolYearStart",
    "Start",
    "StartDate",
    "Stop",
    "TermStartBefore",
]

EACH_EVENT = "#"
"""A start key meaning: every start event begins its own clock, numbered in order."""


# The events the rules read ------------------------------------------------------------


class FieldKind(StrEnum):
    """What a field holds. Dates, timestamps and years must lie in the calendar's
    supported range (``sendkit.calendar.SUPPORTED_FROM`` to ``SUPPORTED_TO``)."""

    DATE = "date"
    TIMESTAMP = "timestamp"
    TEXT = "text"
    INT = "int"
    YEAR = "year"
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field of an event's ``data`` that a rule reads."""

    name: str
    kind: FieldKind
    required: bool = True


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event type the rules listen to, the fields they read, and its identity.

    ``identity`` names the fields that identify the fact: a later event with the same
    values replaces the earlier one where it stood (a review meeting re-arranged, advice
    re-requested with a corrected date). ``()`` means one such fact per case; ``None``
    means every event is a fact of its own.
    """

    type: str
    fields: tuple[FieldSpec, ...]
    identity: tuple[str, ...] | None = None

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise RulesError(f"event {self.type} has no field {name!r} in the contract")


@dataclass(frozen=True, slots=True)
class Correction:
    """An event correcting a date recorded earlier: ``{field, old_value, new_value}``.

    ``targets`` maps each correctable field to the event types that carry it; the fact
    corrected is the one whose event id the correction names in ``event_id`` (plans'
    corrections do), else the latest of those whose value equals ``old_value``.
    """

    type: str
    targets: Mapping[str, tuple[str, ...]]


# Dates --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartDate:
    """The date of the fact that started the clock (its ``Start.on`` field)."""


@dataclass(frozen=True, slots=True)
class Field:
    """Another date field of the event that started the clock."""

    name: str


@dataclass(frozen=True, slots=True)
class FactOf:
    """A date from an earlier fact of the same case: the first event of ``event_type``.

    With ``join``, only an event whose ``join`` field equals the starting event's counts
    (the review meeting of the same ``review_id``).
    """

    event_type: str
    field: str
    join: str | None = None


@dataclass(frozen=True, slots=True)
class FirstKnown:
    """The first of several references that is known."""

    refs: tuple[DateRef, ...]


@dataclass(frozen=True, slots=True)
class SchoolYearStart:
    """1 September of the year in the starting event's ``year_field``, less
    ``years_before`` years: ``SchoolYearStart("transfer_year", 1)`` is the first day of
    the 12 months before a move in September of ``transfer_year``."""

    year_field: str
    years_before: int = 0


DateRef = StartDate | Field | FactOf | FirstKnown | SchoolYearStart


# Counting -----------------------------------------------------------------------------


class Count(StrEnum):
    """How an amount of time is counted, in the words of the Regulations."""

    WEEKS_AFTER = "within N weeks of"
    DAYS_AFTER = "within N days of"
    DAYS_BEGINNING_WITH = "at least N days beginning with"
    MONTHS_AFTER = "N months after"
    MONTHS_STARTING_WITH = "the period of N months starting with"
    WORKING_DAYS_BEGINNING_WITH = "N working days beginning with"
    DAYS_BEFORE = "N days before"
    WEEKS_BEFORE = "N weeks before"
    MONTHS_BEFORE = "at least N months before"


@dataclass(frozen=True, slots=True)
class Offset:
    """``amount`` units counted from ``base`` as ``count`` says."""

    base: DateRef
    amount: int
    count: Count

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise RulesError(
                f"an offset of {self.amount} is negative: use a '...before'"
            )


@dataclass(frozen=True, slots=True)
class Earliest:
    """The earliest of several due dates; a part whose dates are unknown is left out."""

    parts: tuple[DueRule, ...]


@dataclass(frozen=True, slots=True)
class DayInYear:
    """A fixed day of the year named by ``year_field``; ``before`` means the day before.

    "Before 15 February" of the year of transfer is ``DayInYear("transfer_year", 2, 15,
    before=True)``: 14 February.
    """

    year_field: str
    month: int
    day: int
    before: bool = True


@dataclass(frozen=True, slots=True)
class OnDayIfKnownInTime:
    """Due on ``day`` if known at least ``working_days`` working days before it;
    otherwise the last of ``working_days`` working days beginning with ``learned``."""

    day: DateRef
    learned: DateRef
    working_days: int


@dataclass(frozen=True, slots=True)
class TermStartBefore:
    """The day before the start of the term (council data) in which ``inner`` falls."""

    inner: DueRule


DueRule = Offset | Earliest | DayInYear | OnDayIfKnownInTime | TermStartBefore


# Triggers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """A test of an event's field: equal to ``equals``, or (with ``present``) set."""

    field: str
    equals: str | int | bool | None = None
    present: bool = False


@dataclass(frozen=True, slots=True)
class Start:
    """An event that starts a clock.

    ``on`` is the field with the date of the starting fact (None when the event carries
    none). ``key`` makes one clock per value of that field (one per ``advice_id``);
    ``EACH_EVENT`` makes one per event; None makes one per case, started by the first
    such event.
    """

    event_type: str
    on: str | None
    key: str | None = None
    when: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Stop:
    """An event that stops a clock on the date in its field ``on``.

    With ``match``, only an event whose ``match`` field equals the starting event's
    stops it (the advice with the same ``advice_id``).
    """

    event_type: str
    on: str
    match: str | None = None
    when: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Cancel:
    """An event after which the clock no longer applies, from the date in its ``on``.

    ``voids_breach`` says that an overdue state before it was no breach of the limit
    (a no-plan notice clock cancelled by a draft plan), so its overdue alert is
    withdrawn.
    """

    event_type: str
    on: str
    match: str | None = None
    when: tuple[Condition, ...] = ()
    voids_breach: bool = False


@dataclass(frozen=True, slots=True)
class ExceptionReason:
    """A reason the Regulations give for which the council need not meet the limit."""

    code: str
    text: str


# Rows ---------------------------------------------------------------------------------


DEFAULT_LEADS: tuple[int, ...] = (10, 5, 0)


@dataclass(frozen=True, slots=True)
class ClockRule:
    """One row of the table: one clock.

    ``due`` None means the law sets no time limit; the row documents it and no clock is
    set. ``lead_working_days`` are the alert lead times (0 is the act-by day itself).
    ``configurable`` rows (local targets only) may have their amount set per council.

    ``ends_from`` is the first day a stop or cancel may be dated and still end the
    clock, wherever it was recorded among the facts: by default the day the clock
    started, since what happened before a clock started is not its stop. When that
    day is unknown (the start carries no date, or ``ends_from`` is None), only facts
    recorded after the start can end the clock. A stop or cancel with a ``match``
    names the clock's own key and is not bounded by either. ``evaluate`` says which
    ending wins when there are several.
    """

    name: str
    title: str
    authority: Authority
    kind: ClockKind
    starts: tuple[Start, ...]
    due: DueRule | None
    legal_basis: str
    action: str
    stops: tuple[Stop, ...] = ()
    cancels: tuple[Cancel, ...] = ()
    exceptions: tuple[ExceptionReason, ...] = ()
    lead_working_days: tuple[int, ...] = DEFAULT_LEADS
    escalates: bool = True
    overdue_action: str = ""
    guidance_due: DueRule | None = None
    guidance_note: str | None = None
    configurable: bool = False
    ends_from: DateRef | None = StartDate()

    def __post_init__(self) -> None:
        if not self.starts:
            raise RulesError(f"rule {self.name!r} has no start event: add one")
        if self.authority is not Authority.STATUTORY and self.escalates:
            raise RulesError(
                f"rule {self.name!r} is {self.authority.value}, not statutory: its "
                "overdue state is no breach of the law, so set escalates=False"
            )
        if self.configurable and self.authority is not Authority.LOCAL:
            raise RulesError(
                f"rule {self.name!r}: only local targets are configurable per council"
            )
        if self.kind is ClockKind.WINDOW and self.stops:
            raise RulesError(f"window {self.name!r} closes by itself: remove its stops")
        if any(lead < 0 for lead in self.lead_working_days):
            raise RulesError(f"rule {self.name!r} has a negative alert lead time")

    def exception(self, code: str) -> ExceptionReason | None:
        for reason in self.exceptions:
            if reason.code == code:
                return reason
        return None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A version of the whole table and the day it takes effect."""

    version: str
    effective_from: date
    rules: tuple[ClockRule, ...]
    _by_name: dict[str, ClockRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, ClockRule] = {}
        for rule in self.rules:
            if rule.name in by_name:
                raise RulesError(f"rules {self.version}: two rows named {rule.name!r}")
            by_name[rule.name] = rule
        object.__setattr__(self, "_by_name", by_name)

    def rule(self, name: str) -> ClockRule:
        try:
            return self._by_name[name]
        except KeyError:
            raise RulesError(
                f"rules {self.version} have no clock {name!r}; known: "
                + ", ".join(sorted(self._by_name))
            ) from None

    def has(self, name: str) -> bool:
        return name in self._by_name
