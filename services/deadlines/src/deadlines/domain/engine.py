"""The clock engine: a pure function from a case's state, an event or "now" to outputs.

``apply(state, event)`` records a fact (or a correction of one), derives the case's
clocks again from all its facts with ``evaluate.derive``, and compares them with the
clocks already published: a new clock is ``ClockSet``; a moved due date is
``ClockDueDateChanged`` and withdraws every alert raised about the old date; a stop is
``ClockMet`` or ``ClockLate`` by the stop's own date, and a met clock withdraws an
overdue alert that no longer holds; a cancellation is ``ClockCancelled``; a new
exception is ``ClockExceptionApplied``. A clock's final state follows the facts: when
a fact recorded later gives the clock an earlier-dated ending (``evaluate`` says which
ending wins), a late clock becomes met, a met or late one cancelled, or a cancelled
one met or late, each change published as the new final event.

``tick(state, now)`` raises the alerts that time brings: ``ClockApproaching`` when a
lead time is reached, ``ClockOverdue`` once the London date is past the due date, and
``ClockMet`` when a window closes. ``apply`` also raises them against the last day the
case was ticked (or a ``now`` the caller passes), so a clock set late is alerted at
once. The state records the first day a tick could bring anything, so a tick on any
other day is one comparison and returns the state object unchanged.

The state is a ``CaseState``; ``to_dict``/``from_dict`` turn it into plain JSON for a
faust table. Every output's id is a UUID 5 of the case, the clock, the transition and
what it concerns (the due date, the lead time, the clock's revision), so feeding the
same inputs to a fresh state yields the same outputs with the same ids.

When several lead times are reached by one tick (a clock set late, or ticks far apart),
only the nearest is raised: the others would arrive in the same moment and say less.

Each step does only the work the step can need. ``apply`` derives again only the clocks
of the rules that read the type of the fact recorded or corrected
(``EngineConfig.rules_reading``): every other clock is derived from facts that did not
change, and was brought in line with that derivation when they last did, so comparing
it again would raise nothing. A new state shares its clocks with the state it came from
and copies a clock only before changing it, so the state passed in is never changed.
One consequence of deriving only what an event touches: clocks already published are
compared with new council settings or a changed engine only at the next fact their rule
reads, not at the next event of the case.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

from deadlines.domain import contract
from deadlines.domain.errors import DeadlinesError, UnusableEvent
from deadlines.domain.evaluate import (
    Cancelled,
    DerivedClock,
    EngineConfig,
    Fact,
    Stopped,
    derive,
)
from deadlines.domain.model import ClockRule, EventSpec, FieldKind
from send_schemas.deadlines import (
    CLOCK_EVENTS,
    WINDOW_CLOSED,
    AlertKind,
    AlertWithdrawn,
    Authority,
    ClockApproaching,
    ClockCancelled,
    ClockDueDateChanged,
    ClockEvent,
    ClockExceptionApplied,
    ClockKind,
    ClockLate,
    ClockMet,
    ClockOverdue,
    ClockSet,
)
from sendkit import calendar

__all__ = [
    "DEFAULT_CONFIG",
    "CaseEvent",
    "CaseState",
    "ClockView",
    "Emitted",
    "EngineConfig",
    "apply",
    "evaluate",
    "output_id",
    "run",
    "tick",
]

DEFAULT_CONFIG = EngineConfig()

_NAMESPACE = uuid.UUID("6b1f8f52-3f0e-5d7a-9c1e-2f4b7d0a5e31")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_VARIANT = "89ab"


def output_id(case_id: str, clock_id: str, transition: str, *parts: object) -> str:
    """The deterministic id of an output event: ``uuid.uuid5`` of the joined parts.

    Written out from RFC 4122 (the SHA-1 digest of namespace and name, its version
    nibble set to 5 and its variant bits to 10) because it is made for every output;
    it is the same text as ``str(uuid.uuid5(_NAMESPACE, name))``.
    """
    name = "\x1f".join((case_id, clock_id, transition, *map(str, parts)))
    # RFC 4122 names SHA-1 for version 5 UUIDs; the ids are names, not secrets.
    raw = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    h = raw.hex()
    # The variant's first hex digit keeps the low two bits of the digest's ninth byte's
    # high nibble; the version digit replaces the seventh byte's high nibble.
    variant = _VARIANT[(raw[8] >> 4) & 3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


# Inputs and outputs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """An input event: its CloudEvents id and type, the case id (subject) and data.

    ``recorded_at`` is its CloudEvents ``time``, when its owner recorded it; the
    engine keeps its London date for the events that start a clock with no date of
    their own, as the day such a clock is set, which picks its rules version.
    """

    id: str
    type: str
    case_id: str
    data: Mapping[str, Any]
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Emitted:
    """An output clock event with its deterministic id.

    The engine keeps the event's fields as it made them (``fields``, the arguments of
    the event's model) rather than a validated model: every value is already of its
    field's type, and validating 200,000 events of a county replay cost a second of
    it. ``event`` gives the model, ``data()`` the event's JSON data, the same as the
    model's ``model_dump(mode="json")`` key for key and in the same order (the tests
    check both against the validated model).
    """

    id: str
    type: str
    case_id: str
    fields: Mapping[str, Any]

    @property
    def event(self) -> ClockEvent:
        """The event as its pydantic model (built without validating again)."""
        return CLOCK_EVENTS[self.type].model_construct(**self.fields)

    def data(self) -> dict[str, Any]:
        """The event's data as plain JSON types, in the model's field order."""
        fields = self.fields
        return {
            name: _json_value(fields.get(name, default))
            for name, default in _FIELD_DEFAULTS[self.type]
        }

    def values(self) -> dict[str, Any]:
        """Every field of the event with its value as the engine made it (dates,
        enums and tuples, not their JSON forms), defaults filled in; ``data()`` is
        this in JSON types."""
        fields = self.fields
        return {
            name: fields.get(name, default)
            for name, default in _FIELD_DEFAULTS[self.type]
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "subject": self.case_id,
            "data": self.data(),
        }


def _field_defaults(model: type[ClockEvent]) -> tuple[tuple[str, Any], ...]:
    # A field left out of ``fields`` takes its model default; every field the engine
    # leaves out has one (a required field left out would fail the contract tests).
    return tuple(
        (name, None if info.is_required() else info.get_default())
        for name, info in model.model_fields.items()
    )


_FIELD_DEFAULTS = {kind: _field_defaults(model) for kind, model in CLOCK_EVENTS.items()}


def _json_value(value: Any) -> Any:
    # The types the clock events' fields hold, as pydantic's JSON mode writes them.
    if value is None or value.__class__ in (str, bool, int):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    return value


# State --------------------------------------------------------------------------------

OPEN = "open"
MET = "met"
LATE = "late"
CANCELLED = "cancelled"
CLOSED = "closed"


@dataclass(slots=True)
class _Alert:
    kind: AlertKind
    due_on: date
    lead: int | None


@dataclass(slots=True)
class _Clock:
    clock_id: str
    clock: str
    version: str
    due_on: date
    started_on: date | None
    counts_from: date | None
    lead_working_days: tuple[int, ...]
    status: str = OPEN
    stopped_on: date | None = None
    rev: int = 0
    endings: int = 0
    # Tuples and a dict that no step changes in place (it puts a new one in their
    # place), so a copy of the clock shares them.
    exception_codes: tuple[str, ...] = ()
    leads_done: tuple[int, ...] = ()
    overdue_done: bool = False
    alerts: dict[str, _Alert] = field(default_factory=dict)
    # The first day a tick could act on the clock, once worked out (``_clock_wake``);
    # never stored, and forgotten by a copy, which is made to be changed. It depends
    # on the clock and on its rule's kind, which a rules version never changes.
    wake_known: bool = field(default=False, compare=False, repr=False)
    wake: date | None = field(default=None, compare=False, repr=False)


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


@dataclass(slots=True)
class CaseState:
    """The engine's state for one case: its facts and the clocks published so far."""

    case_id: str
    facts: list[Fact] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    clocks: dict[str, _Clock] = field(default_factory=dict)
    ticked_on: date | None = None
    wake_on: date | None = None

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON types, for a faust table."""
        return {
            "case_id": self.case_id,
            "ticked_on": _iso(self.ticked_on),
            "wake_on": _iso(self.wake_on),
            "seen": list(self.seen),
            "facts": [_fact_dict(fact) for fact in self.facts],
            "clocks": {
                clock_id: {
                    "clock": clock.clock,
                    "version": clock.version,
                    "due_on": clock.due_on.isoformat(),
                    "started_on": _iso(clock.started_on),
                    "counts_from": _iso(clock.counts_from),
                    "lead_working_days": list(clock.lead_working_days),
                    "status": clock.status,
                    "stopped_on": _iso(clock.stopped_on),
                    "rev": clock.rev,
                    "endings": clock.endings,
                    "exception_codes": list(clock.exception_codes),
                    "leads_done": list(clock.leads_done),
                    "overdue_done": clock.overdue_done,
                    "alerts": {
                        alert_id: {
                            "kind": alert.kind.value,
                            "due_on": alert.due_on.isoformat(),
                            "lead": alert.lead,
                        }
                        for alert_id, alert in clock.alerts.items()
                    },
                }
                for clock_id, clock in self.clocks.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseState:
        """Rebuild a state written by ``to_dict``."""
        clocks: dict[str, _Clock] = {}
        for clock_id, raw in data["clocks"].items():
            due_on = _day(raw["due_on"])
            if due_on is None:
                raise DeadlinesError(
                    f"stored clock {clock_id!r} of case {data['case_id']!r} has no due "
                    "date: the state was not written by CaseState.to_dict"
                )
            clocks[clock_id] = _Clock(
                clock_id=clock_id,
                clock=raw["clock"],
                version=raw["version"],
                due_on=due_on,
                started_on=_day(raw["started_on"]),
                counts_from=_day(raw["counts_from"]),
                lead_working_days=tuple(raw["lead_working_days"]),
                status=raw["status"],
                stopped_on=_day(raw["stopped_on"]),
                rev=raw["rev"],
                endings=raw["endings"],
                exception_codes=tuple(raw["exception_codes"]),
                leads_done=tuple(raw["leads_done"]),
                overdue_done=raw["overdue_done"],
                alerts={
                    alert_id: _Alert(
                        AlertKind(alert["kind"]),
                        date.fromisoformat(alert["due_on"]),
                        alert["lead"],
                    )
                    for alert_id, alert in raw["alerts"].items()
                },
            )
        return cls(
            case_id=data["case_id"],
            facts=[
                Fact(f["id"], f["type"], dict(f["data"]), _day(f.get("recorded_on")))
                for f in data["facts"]
            ],
            seen=list(data["seen"]),
            clocks=clocks,
            ticked_on=_day(data.get("ticked_on")),
            wake_on=_day(data.get("wake_on")),
        )

    def copy(self) -> CaseState:
        """A copy whose clocks can be changed without touching this state."""
        return CaseState(
            case_id=self.case_id,
            facts=list(self.facts),
            seen=list(self.seen),
            clocks={key: _clone(clock) for key, clock in self.clocks.items()},
            ticked_on=self.ticked_on,
            wake_on=self.wake_on,
        )

    def _successor(self, facts: list[Fact] | None = None) -> CaseState:
        # The next state of a step. It shares its lists and clocks with this one: no
        # step changes a list in place (apply records a fact in a new list), and a
        # step replaces a clock by a copy before it changes it (``_Out.own``).
        return CaseState(
            case_id=self.case_id,
            facts=self.facts if facts is None else facts,
            seen=self.seen,
            clocks=dict(self.clocks),
            ticked_on=self.ticked_on,
            wake_on=self.wake_on,
        )


def _fact_dict(fact: Fact) -> dict[str, Any]:
    found: dict[str, Any] = {"id": fact.id, "type": fact.type, "data": dict(fact.data)}
    if fact.recorded_on is not None:
        found["recorded_on"] = fact.recorded_on.isoformat()
    return found


def _clone(clock: _Clock) -> _Clock:
    # The copy shares the alerts, exception codes and lead times done: a step puts a
    # new tuple or dict in their place rather than change one. Every field is named
    # here (not dataclasses.replace) because a step clones often.
    return _Clock(
        clock.clock_id,
        clock.clock,
        clock.version,
        clock.due_on,
        clock.started_on,
        clock.counts_from,
        clock.lead_working_days,
        clock.status,
        clock.stopped_on,
        clock.rev,
        clock.endings,
        clock.exception_codes,
        clock.leads_done,
        clock.overdue_done,
        clock.alerts,
    )


# Reading an input event ---------------------------------------------------------------


def _normalise(spec: EventSpec, event: CaseEvent) -> dict[str, Any]:
    """The fields the rules read, checked and in canonical JSON form."""
    data: dict[str, Any] = {}
    for field_spec in spec.fields:
        value = event.data.get(field_spec.name)
        if value is None:
            if field_spec.required:
                raise UnusableEvent(
                    event.id, event.type, f"field {field_spec.name!r} is required"
                )
            continue
        data[field_spec.name] = _canonical(
            event, field_spec.name, field_spec.kind, value
        )
    return data


def _canonical(event: CaseEvent, name: str, kind: FieldKind, value: Any) -> Any:
    try:
        match kind:
            case FieldKind.DATE:
                if isinstance(value, str):
                    return _iso_date(value)
                day = calendar.parse_date(value)
                return calendar.supported_day(day).isoformat()
            case FieldKind.TIMESTAMP:
                moment = calendar.parse_timestamp(value)
                calendar.supported_london_date(moment)
                return moment.isoformat()
            case FieldKind.INT:
                return _whole_number(value)
            case FieldKind.YEAR:
                return _supported_year(_whole_number(value))
            case FieldKind.BOOL:
                if not isinstance(value, bool):
                    raise ValueError(f"{value!r} is not true or false")
                return value
            case FieldKind.TEXT:
                if not isinstance(value, str | int) or isinstance(value, bool):
                    raise ValueError(f"{value!r} is not text")
                return str(value)
    except ValueError as error:
        raise UnusableEvent(event.id, event.type, f"field {name!r}: {error}") from error


@lru_cache(maxsize=1 << 14)
def _iso_date(value: str) -> str:
    # Cached so that the facts of every case share one string per day (a county's
    # facts hold tens of thousands of dates, of a few hundred days); a value that
    # cannot be read, or lies outside the supported range, raises, and an error is
    # never cached.
    return calendar.supported_day(calendar.parse_date(value)).isoformat()


def _whole_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _supported_year(year: int) -> int:
    first, last = calendar.SUPPORTED_FROM.year, calendar.SUPPORTED_TO.year
    if not first <= year <= last:
        raise ValueError(
            f"year {year} is outside the supported range: send a year from {first} "
            f"to {last}, the years the platform counts in"
        )
    return year


def _recorded_day(event: CaseEvent, moment: datetime) -> date:
    # The day a clock with no starting date of its own counts from, so it must be
    # countable as much as any date in the data.
    try:
        return calendar.supported_london_date(moment)
    except calendar.CalendarError as error:
        raise UnusableEvent(event.id, event.type, f"its time: {error}") from error


def _check_exception(
    event: CaseEvent, data: Mapping[str, Any], config: EngineConfig
) -> None:
    clock, reason = data["clock"], data["reason"]
    allowed: set[str] = set()
    for rules in config.rulesets:
        if rules.has(clock):
            allowed.update(r.code for r in rules.rule(clock).exceptions)
    if reason not in allowed:
        names = sorted(
            {r.name for rules in config.rulesets for r in rules.rules if r.exceptions}
        )
        raise UnusableEvent(
            event.id,
            event.type,
            f"exception reason {reason!r} does not apply to clock {clock!r}; reasons "
            f"apply only to {', '.join(names)}"
            + (f", and to {clock!r} they are {sorted(allowed)}" if allowed else ""),
        )


def _record(facts: list[Fact], spec: EventSpec, fact: Fact) -> bool:
    """Add a fact, or let it replace the earlier fact with the same identity.

    Returns whether it replaced one.
    """
    if spec.identity is not None:
        for index, earlier in enumerate(facts):
            if earlier.type == fact.type and all(
                earlier.data.get(name) == fact.data.get(name) for name in spec.identity
            ):
                # A clock it set was set on the day the first was recorded.
                recorded_on = earlier.recorded_on or fact.recorded_on
                facts[index] = Fact(earlier.id, fact.type, fact.data, recorded_on)
                return True
    facts.append(fact)
    return False


def _same(kind: FieldKind, left: Any, right: Any) -> bool:
    try:
        if kind is FieldKind.TIMESTAMP:
            return calendar.parse_timestamp(left) == calendar.parse_timestamp(right)
        return calendar.parse_date(left) == calendar.parse_date(right)
    except calendar.CalendarError:
        return False


def _correct(facts: list[Fact], event: CaseEvent) -> str:
    """Correct the fact the event names; return the corrected fact's type."""
    correction = contract.CORRECTIONS_BY_TYPE[event.type]
    name = event.data.get("field")
    targets = correction.targets.get(str(name))
    if targets is None:
        raise UnusableEvent(
            event.id,
            event.type,
            f"field {name!r} cannot be corrected here; correctable: "
            + ", ".join(sorted(correction.targets)),
        )
    kind = contract.EVENTS_BY_TYPE[targets[0]].field(str(name)).kind
    new_value = _canonical(event, "new_value", kind, event.data.get("new_value"))
    old_value = event.data.get("old_value")
    holders = [
        index
        for index, fact in enumerate(facts)
        if fact.type in targets and fact.data.get(str(name)) is not None
    ]
    matching = [i for i in holders if _same(kind, facts[i].data[str(name)], old_value)]
    # A correction naming the event it corrects (plans' event_id) hits that fact even
    # when another fact of the targets holds the same date.
    named = [i for i in holders if facts[i].id == event.data.get("event_id")]
    if named:
        index = named[0]
    elif matching:
        index = matching[-1]
    elif len(holders) == 1:
        index = holders[0]
    else:
        raise UnusableEvent(
            event.id,
            event.type,
            f"no earlier fact has {name} = {old_value!r} to correct; send the value "
            "as it was recorded in old_value",
        )
    fact = facts[index]
    corrected = {**fact.data, str(name): new_value}
    facts[index] = Fact(fact.id, fact.type, corrected, fact.recorded_on)
    return fact.type


# The engine ---------------------------------------------------------------------------


def apply(
    state: CaseState | None,
    event: CaseEvent,
    config: EngineConfig = DEFAULT_CONFIG,
    now: datetime | None = None,
) -> tuple[CaseState, list[Emitted]]:
    """Record ``event`` and return the new state and the clock events it causes.

    Alerts are raised at once against the later of ``now`` (the caller's latest tick,
    if it passes one) and the last day the case was ticked, so a clock set after its
    lead times or its due date is alerted without waiting for the next tick. An event
    of a type no rule reads, or a repeated event id, changes nothing. Raises
    ``UnusableEvent`` (leaving ``state`` as it was) for an event the rules cannot read.
    """
    if state is None:
        state = CaseState(case_id=event.case_id)
    if event.case_id != state.case_id:
        raise DeadlinesError(
            f"event {event.id} is for case {event.case_id!r} but was applied to the "
            f"state of case {state.case_id!r}: key the state by the event subject"
        )
    spec = contract.EVENTS_BY_TYPE.get(event.type)
    is_correction = event.type in contract.CORRECTIONS_BY_TYPE
    if event.id in state.seen or (spec is None and not is_correction):
        return state, []

    facts = list(state.facts)
    # The one clock of a rule the fact can change, where the rules say it can change
    # only one (``EngineConfig.instance_key``): a fact that replaced another or was
    # corrected may change the clocks of its old values too, so it is given none.
    keep: dict[str, str] = {}
    if spec is not None:
        data = _normalise(spec, event)
        if event.type in contract.EXCEPTION_TYPES:
            _check_exception(event, data, config)
        changed = event.type
        rules = config.rules_reading(changed)
        recorded_on = None
        moment = event.recorded_at
        if moment is not None and config.keeps_recorded_day(event.type):
            recorded_on = _recorded_day(event, moment)
        fact = Fact(event.id, event.type, data, recorded_on)
        if not _record(facts, spec, fact):
            for name in rules:
                key = config.instance_key(changed, name)
                if key is not None and data.get(key) is not None:
                    keep[name] = f"{name}[{key}={data[key]}]"
    else:
        changed = _correct(facts, event)
        rules = config.rules_reading(changed)

    new = state._successor(facts)
    new.seen = [*state.seen, event.id]
    out = _Out(new, config)
    _reconcile(out, rules, keep)
    today = new.ticked_on
    if now is not None:
        current = calendar.london_date(now)
        today = current if today is None or current > today else today
    if today is not None:
        new.ticked_on = today
        _alerts(out, today)
    new.wake_on = _wake_on(out)
    return new, out.items


def tick(
    state: CaseState, now: datetime, config: EngineConfig = DEFAULT_CONFIG
) -> tuple[CaseState, list[Emitted]]:
    """Raise the alerts that the London date of ``now`` brings to the case's clocks.

    When the date brings nothing (the usual case) the very same ``state`` object is
    returned, so a caller can skip writing it back.
    """
    today = calendar.london_date(now)
    if state.wake_on is None or today < state.wake_on:
        return state, []
    if state.ticked_on is not None and today <= state.ticked_on:
        return state, []
    new = state._successor()
    new.ticked_on = today
    out = _Out(new, config)
    _alerts(out, today)
    new.wake_on = _wake_on(out)
    return new, out.items


def run(
    inputs: Iterable[CaseEvent | datetime],
    state: CaseState | None = None,
    config: EngineConfig = DEFAULT_CONFIG,
) -> tuple[CaseState | None, list[Emitted]]:
    """Fold events and ticks (datetimes) of one case in order; for tests and replays."""
    outputs: list[Emitted] = []
    for item in inputs:
        if isinstance(item, datetime):
            if state is not None:
                state, emitted = tick(state, item, config)
                outputs.extend(emitted)
        else:
            state, emitted = apply(state, item, config)
            outputs.extend(emitted)
    return state, outputs


# Comparing derived clocks with published ones -----------------------------------------


@lru_cache(maxsize=1 << 12)
def _act_by(due_on: date) -> date | None:
    return calendar.act_by(due_on)


class _Out:
    """Collects the outputs of one step for one case, and the clocks it copied."""

    def __init__(self, state: CaseState, config: EngineConfig) -> None:
        self.state = state
        self.config = config
        self.items: list[Emitted] = []
        self.owned: set[str] = set()

    def own(self, clock: _Clock) -> _Clock:
        """The step's own copy of ``clock``, to change: the first call makes it."""
        if clock.clock_id in self.owned:
            return clock
        mine = _clone(clock)
        self.state.clocks[clock.clock_id] = mine
        self.owned.add(clock.clock_id)
        return mine

    def rule(self, clock: _Clock) -> ClockRule:
        return self.config.rule_of(clock.version, clock.clock)

    def base(self, clock: _Clock) -> dict[str, Any]:
        rule = self.rule(clock)
        return {
            "clock_id": clock.clock_id,
            "case_id": self.state.case_id,
            "clock": clock.clock,
            "title": rule.title,
            "due_on": clock.due_on,
            "act_by": _act_by(clock.due_on),
            "legal_basis": rule.legal_basis,
            "statutory": rule.authority is Authority.STATUTORY,
            "authority": rule.authority,
            "escalate": rule.escalates and not clock.exception_codes,
            "exception_reason": clock.exception_codes[0]
            if clock.exception_codes
            else None,
            "rules_version": clock.version,
        }

    def make(
        self, model: type[ClockEvent], clock: _Clock, **fields: Any
    ) -> tuple[type[ClockEvent], dict[str, Any]]:
        """An event of ``model`` about ``clock``: its type and its fields."""
        made = self.base(clock)
        made.update(fields)
        return model, made

    def emit(
        self,
        clock: _Clock,
        event: tuple[type[ClockEvent], dict[str, Any]],
        transition: str,
        *parts: object,
    ) -> str:
        event_id = output_id(self.state.case_id, clock.clock_id, transition, *parts)
        self._append(event_id, event[0], event[1])
        return event_id

    def _append(
        self, event_id: str, model: type[ClockEvent], fields: dict[str, Any]
    ) -> None:
        self.items.append(
            Emitted(event_id, model.EVENT_TYPE, self.state.case_id, fields)
        )

    def withdraw(self, clock: _Clock, reason: str, kinds: Sequence[AlertKind]) -> None:
        kept = {
            key: alert for key, alert in clock.alerts.items() if alert.kind not in kinds
        }
        if len(kept) == len(clock.alerts):
            return
        for alert_id, alert in clock.alerts.items():
            if alert.kind not in kinds:
                continue
            event = self.make(
                AlertWithdrawn,
                clock,
                alert_id=alert_id,
                alert_kind=alert.kind,
                alert_due_on=alert.due_on,
                lead_working_days=alert.lead,
                reason=reason,
            )
            self.emit(clock, event, "withdrawn", alert_id)
        clock.alerts = kept


_ALL_ALERTS = (AlertKind.APPROACHING, AlertKind.OVERDUE)


def _reconcile(
    out: _Out, rules: Collection[str], keep: Mapping[str, str] | None = None
) -> None:
    """Derive the clocks of ``rules`` again and publish how they changed.

    With ``keep`` (rule name to clock id), only that clock of such a rule.
    """
    if not rules:
        return
    state = out.state
    pinned = {clock_id: clock.version for clock_id, clock in state.clocks.items()}
    derived = derive(state.facts, out.config, pinned, only=rules, keep=keep)
    for clock_id, found in derived.items():
        clock = state.clocks.get(clock_id)
        if clock is None:
            _set(out, found)
        elif clock.status != CANCELLED or isinstance(found.ending, Stopped):
            # A cancelled clock changes only when an earlier-dated stop ends it.
            _update(out, out.own(clock), found)
    for clock_id, clock in list(state.clocks.items()):
        if clock_id in derived or clock.clock not in rules or clock.status != OPEN:
            continue
        if keep and keep.get(clock.clock, clock_id) != clock_id:
            continue
        reason = Cancelled(None, "rules no longer apply", False)
        _cancel(out, out.own(clock), reason)


def _set(out: _Out, found: DerivedClock) -> None:
    rule = found.rule
    clock = _Clock(
        clock_id=found.clock_id,
        clock=rule.name,
        version=found.version,
        due_on=found.due_on,
        started_on=found.started_on,
        counts_from=found.counts_from,
        lead_working_days=found.lead_working_days,
    )
    out.state.clocks[found.clock_id] = clock
    out.owned.add(found.clock_id)
    window = rule.kind is ClockKind.WINDOW
    event = out.make(
        ClockSet,
        clock,
        kind=rule.kind,
        started_on=found.started_on,
        counts_from=found.counts_from,
        earliest_action_on=calendar.days_after(found.due_on, 1) if window else None,
        guidance_due_on=found.guidance_due_on,
        guidance_note=rule.guidance_note,
        lead_working_days=found.lead_working_days,
        action=rule.action,
        started_by=found.started_by,
        started_by_event_id=found.started_by_event_id,
    )
    out.emit(clock, event, "set", found.due_on)
    _exceptions(out, clock, found)
    if found.ending is not None:
        _end(out, clock, found.ending)


def _update(out: _Out, clock: _Clock, found: DerivedClock) -> None:
    if clock.status == CANCELLED and not isinstance(found.ending, Stopped):
        return
    if found.due_on != clock.due_on:
        previous = clock.due_on
        clock.rev += 1
        clock.due_on = found.due_on
        clock.counts_from = found.counts_from
        clock.leads_done = ()
        clock.overdue_done = False
        if clock.status == CLOSED:
            clock.status = OPEN
            clock.stopped_on = None
        event = out.make(
            ClockDueDateChanged,
            clock,
            previous_due_on=previous,
            counts_from=found.counts_from,
        )
        out.emit(clock, event, "due_changed", clock.rev, found.due_on)
        out.withdraw(
            clock,
            f"the due date moved from {previous.isoformat()} to "
            f"{found.due_on.isoformat()}",
            _ALL_ALERTS,
        )
    _exceptions(out, clock, found)
    ending = found.ending
    if isinstance(ending, Stopped):
        status = MET if ending.on <= clock.due_on else LATE
        if clock.status != status or clock.stopped_on != ending.on:
            _end(out, clock, ending)
    elif isinstance(ending, Cancelled) and clock.status != CANCELLED:
        _end(out, clock, ending)
    elif ending is None and clock.status in (MET, LATE):
        # A stop vanishes only when a correction dates it before the clock started,
        # or the facts were re-keyed; the clock stays ended, because un-ending a
        # published final state would confuse every reader.
        return


def _exceptions(out: _Out, clock: _Clock, found: DerivedClock) -> None:
    for reason in found.exceptions:
        if reason.code in clock.exception_codes:
            continue
        clock.exception_codes = (*clock.exception_codes, reason.code)
        event = out.make(
            ClockExceptionApplied, clock, reason=reason.code, reason_text=reason.text
        )
        out.emit(clock, event, "exception", reason.code)


def _end(out: _Out, clock: _Clock, ending: Stopped | Cancelled) -> None:
    if isinstance(ending, Cancelled):
        _cancel(out, clock, ending)
        return
    clock.endings += 1
    clock.stopped_on = ending.on
    parts = (clock.rev, clock.endings, clock.due_on, ending.on)
    if ending.on <= clock.due_on:
        clock.status = MET
        out.emit(
            clock,
            out.make(
                ClockMet,
                clock,
                stopped_on=ending.on,
                stopped_by=ending.by,
                stopped_by_event_id=ending.event_id,
            ),
            "met",
            *parts,
        )
        out.withdraw(
            clock,
            f"stopped on {ending.on.isoformat()}, on or before the due date",
            (AlertKind.OVERDUE,),
        )
    else:
        clock.status = LATE
        days_late = (ending.on - clock.due_on).days
        event = out.make(
            ClockLate,
            clock,
            stopped_on=ending.on,
            stopped_by=ending.by,
            days_late=days_late,
            stopped_by_event_id=ending.event_id,
        )
        out.emit(clock, event, "late", *parts)
    if any(alert.kind is AlertKind.APPROACHING for alert in clock.alerts.values()):
        clock.alerts = {
            key: alert
            for key, alert in clock.alerts.items()
            if alert.kind is not AlertKind.APPROACHING
        }


def _cancel(out: _Out, clock: _Clock, ending: Cancelled) -> None:
    # A clock is cancelled once from open (or a closed window); it can be cancelled
    # again only after a stop ended it, which counted another ending, so the id of a
    # later cancellation names the revision and endings and is new.
    stopped = clock.status in (MET, LATE)
    clock.status = CANCELLED
    event = out.make(
        ClockCancelled,
        clock,
        cancelled_on=ending.on,
        cancelled_by=ending.by,
        breach_voided=ending.voids_breach,
        cancelled_by_event_id=ending.event_id,
    )
    if stopped:
        out.emit(clock, event, "cancelled", clock.due_on, clock.rev, clock.endings)
    else:
        out.emit(clock, event, "cancelled", clock.due_on)
    if ending.voids_breach:
        out.withdraw(
            clock, "cancelled: the overdue state was no breach", (AlertKind.OVERDUE,)
        )
    elif ending.on is not None and ending.on <= clock.due_on:
        out.withdraw(
            clock,
            f"cancelled on {ending.on.isoformat()}, on or before the due date",
            (AlertKind.OVERDUE,),
        )
    # Approaching alerts end with the clock. An overdue alert that still holds is
    # kept, so that a stop dated in time and recorded later can withdraw it.
    if clock.alerts:
        clock.alerts = {
            key: alert
            for key, alert in clock.alerts.items()
            if alert.kind is AlertKind.OVERDUE
        }


# Alerts that time brings --------------------------------------------------------------


@lru_cache(maxsize=1 << 13)
def alert_day(due_on: date, lead: int) -> date:
    """The working day a lead time falls on; lead 0 is the act-by day itself."""
    if lead == 0:
        return calendar.working_day_on_or_before(due_on)
    return calendar.working_days_before(due_on, lead)


@lru_cache(maxsize=1 << 12)
def _alert_days(due_on: date, leads: tuple[int, ...]) -> tuple[date, ...]:
    return tuple(alert_day(due_on, lead) for lead in leads)


def _clock_wake(clock: _Clock, config: EngineConfig) -> date | None:
    """The first day a tick could act on ``clock``, None if never.

    ``_alerts`` acts on an open clock exactly when this day has come: a lead time not
    yet alerted falls on it, or it is the day after the due date of a window (which
    closes) or of a deadline not yet overdue. A clock is changed only by the step that
    copied it, which forgets the day at its end (``_wake_on``), so the day kept on a
    clock shared between states is that of the clock as it is.
    """
    if clock.wake_known:
        return clock.wake
    wake: date | None = None
    if clock.status == OPEN:
        kind = config.rule_of(clock.version, clock.clock).kind
        done = clock.leads_done
        days = _alert_days(clock.due_on, clock.lead_working_days)
        for lead, day in zip(clock.lead_working_days, days, strict=True):
            if lead not in done and (wake is None or day < wake):
                wake = day
        if kind is ClockKind.WINDOW or not clock.overdue_done:
            day = calendar.days_after(clock.due_on, 1)
            if wake is None or day < wake:
                wake = day
    clock.wake = wake
    clock.wake_known = True
    return wake


def _wake_on(out: _Out) -> date | None:
    """The first day a tick could raise anything for the case, None if never."""
    clocks = out.state.clocks
    for clock_id in out.owned:
        clocks[clock_id].wake_known = False
    wake: date | None = None
    config = out.config
    for clock in clocks.values():
        # The day is kept on the clock; the call is made only to work it out.
        day = clock.wake if clock.wake_known else _clock_wake(clock, config)
        if day is not None and (wake is None or day < wake):
            wake = day
    return wake


def _alerts(out: _Out, today: date) -> None:
    for clock in list(out.state.clocks.values()):
        if clock.status != OPEN:
            continue
        wake = clock.wake if clock.wake_known else _clock_wake(clock, out.config)
        if wake is None or wake > today:
            continue
        rule = out.rule(clock)
        if today > clock.due_on:
            if rule.kind is ClockKind.WINDOW:
                clock = out.own(clock)
                _end(out, clock, Stopped(clock.due_on, WINDOW_CLOSED))
                clock.status = CLOSED
            elif not clock.overdue_done:
                clock = out.own(clock)
                clock.overdue_done = True
                # Lead times not yet reached are moot once the clock is overdue.
                clock.leads_done = clock.lead_working_days
                event = out.make(
                    ClockOverdue,
                    clock,
                    overdue_since=calendar.days_after(clock.due_on, 1),
                    action=rule.overdue_action or rule.action,
                )
                alert_id = out.emit(clock, event, "overdue", clock.rev, clock.due_on)
                alert = _Alert(AlertKind.OVERDUE, clock.due_on, None)
                clock.alerts = {**clock.alerts, alert_id: alert}
            continue
        reached = [
            lead
            for lead in clock.lead_working_days
            if lead not in clock.leads_done and alert_day(clock.due_on, lead) <= today
        ]
        if not reached:
            continue
        clock = out.own(clock)
        lead = min(reached)
        clock.leads_done = (*clock.leads_done, *reached)
        approaching = out.make(
            ClockApproaching,
            clock,
            lead_working_days=lead,
            alert_on=alert_day(clock.due_on, lead),
            action=rule.action,
        )
        alert_id = out.emit(
            clock, approaching, "approaching", clock.rev, clock.due_on, lead
        )
        alert = _Alert(AlertKind.APPROACHING, clock.due_on, lead)
        clock.alerts = {**clock.alerts, alert_id: alert}


# Reading the state --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockView:
    """One clock of a case as it stands on a day, for a timeline or a check."""

    clock_id: str
    clock: str
    title: str
    status: str
    due_on: date
    act_by: date | None
    stopped_on: date | None
    statutory: bool
    exception_reason: str | None
    rules_version: str


def evaluate(
    state: CaseState, now: datetime, config: EngineConfig = DEFAULT_CONFIG
) -> list[ClockView]:
    """Every clock of the case and its status at ``now``, without changing anything.

    The status is ``open``, ``approaching`` (a lead time reached), ``overdue``, or the
    final ``met``, ``late``, ``cancelled`` (a window that has closed is ``met``).
    """
    today = calendar.london_date(now)
    views: list[ClockView] = []
    for clock in state.clocks.values():
        rule = config.version(clock.version).rule(clock.clock)
        status = clock.status
        if status == CLOSED:
            status = MET
        elif status == OPEN:
            if today > clock.due_on:
                status = MET if rule.kind is ClockKind.WINDOW else "overdue"
            elif any(
                alert_day(clock.due_on, lead) <= today
                for lead in clock.lead_working_days
            ):
                status = "approaching"
        views.append(
            ClockView(
                clock_id=clock.clock_id,
                clock=clock.clock,
                title=rule.title,
                status=status,
                due_on=clock.due_on,
                act_by=calendar.act_by(clock.due_on),
                stopped_on=clock.due_on if clock.status == CLOSED else clock.stopped_on,
                statutory=rule.authority is Authority.STATUTORY,
                exception_reason=clock.exception_codes[0]
                if clock.exception_codes
                else None,
                rules_version=clock.version,
            )
        )
    return views
