"""Derive a case's clocks from its facts: the interpreter of the rules table.

``derive`` reads the facts of one case in the order they were recorded and returns every
clock the rules give them: its due date (computed by ``sendkit.calendar`` only), the
date it counts from, and how it ended if it has (stopped, with the date of the stopping
fact, or cancelled), with any exception reasons. It knows nothing of time passing or of
what was published before; ``deadlines.domain.engine`` compares its answer with the
clocks already published and with "now".

A clock starts at the first fact that starts it. Dates come from the facts themselves,
never from when they were recorded, and so does the order of its endings: a clock ends
at the earliest-dated of its stops and cancels, wherever each was recorded, so a stop
recorded late but dated in time makes it met, even after a later-dated stop of another
type made it late. An ending that names the clock's own key (a ``match``: the advice
received for this ``advice_id``, the referrals for this review) counts whatever its
date, being this clock's own fact. Any other counts only when dated on or after the
rule's ``ends_from`` (by default the day the clock started: what happened before a
clock started does not end it); when that day is unknown (a start with no date of its
own), only such facts recorded after the start count. A stop and a cancel dated the
same day: the stop wins, the duty having been done that day; two stops of the same
day: the first recorded names the stop. A cancel ends the clock whether or not its due
date has passed (the no-plan notice clock is cancelled once a draft plan is issued,
even after the due date), and an earlier-dated stop recorded after it makes the clock
met or late instead; a stop is likewise replaced by an earlier-dated cancel.

A rule's clocks depend only on the facts of the event types the rule reads (its start,
stop and cancel events, the events its dates come from, and the exception events), so
``derive`` can be asked for some rules only (``only``), and
``EngineConfig.rules_reading`` says which rules a fact of a type can change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from deadlines.domain import contract
from deadlines.domain.council import CouncilConfig
from deadlines.domain.errors import RulesError
from deadlines.domain.model import (
    EACH_EVENT,
    Cancel,
    ClockRule,
    Condition,
    Count,
    DateRef,
    DayInYear,
    DueRule,
    Earliest,
    EventSpec,
    ExceptionReason,
    FactOf,
    Field,
    FieldKind,
    FirstKnown,
    Offset,
    OnDayIfKnownInTime,
    RuleSet,
    SchoolYearStart,
    Start,
    StartDate,
    Stop,
)
from deadlines.domain.rules import RULESETS, check_rulesets, ruleset_for
from sendkit import calendar


@dataclass(frozen=True, slots=True)
class Fact:
    """One recorded input event, reduced to the fields the rules read.

    ``recorded_on`` is the London date its owner recorded it, kept only for the event
    types that start a clock without a date of their own
    (``EngineConfig.keeps_recorded_day``): that is the day such a clock is set.
    """

    id: str
    type: str
    data: Mapping[str, Any]
    recorded_on: date | None = None


@dataclass(frozen=True, slots=True)
class Stopped:
    """A clock stopped ``on`` a day by a fact of type ``by`` (its id ``event_id``)."""

    on: date
    by: str
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A clock cancelled by a fact of type ``by`` (its id ``event_id``, if a fact)."""

    on: date | None
    by: str
    voids_breach: bool
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class DerivedClock:
    """A clock as the facts give it, before comparing with what was published."""

    clock_id: str
    rule: ClockRule
    version: str
    started_on: date | None
    counts_from: date | None
    due_on: date
    guidance_due_on: date | None
    lead_working_days: tuple[int, ...]
    ending: Stopped | Cancelled | None
    exceptions: tuple[ExceptionReason, ...]
    started_by: str
    """The type of the fact that started the clock."""
    started_by_event_id: str
    """That fact's id: the id of the event first recorded with its identity."""


@dataclass(frozen=True, slots=True)
class _Trigger:
    rules: RuleSet
    rule: ClockRule
    start: Start


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The rules versions and the council settings the engine works with."""

    rulesets: tuple[RuleSet, ...] = RULESETS
    council: CouncilConfig = field(default_factory=CouncilConfig)
    _starts: dict[str, tuple[_Trigger, ...]] = field(
        init=False, repr=False, compare=False
    )
    _readers: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _leads: dict[tuple[str, str], tuple[int, ...]] = field(
        init=False, repr=False, compare=False
    )
    _rules: dict[tuple[str, str], ClockRule] = field(
        init=False, repr=False, compare=False
    )
    _instance_keys: dict[tuple[str, str], str] = field(
        init=False, repr=False, compare=False
    )
    _undated_starts: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_rulesets(self.rulesets)
        self.council.check(self.rulesets)
        starts: dict[str, list[_Trigger]] = {}
        readers: dict[str, set[str]] = {}
        leads: dict[tuple[str, str], tuple[int, ...]] = {}
        by_key: dict[tuple[str, str], ClockRule] = {}
        for rules in self.rulesets:
            for rule in rules.rules:
                _check_rule(rule)
                by_key[rules.version, rule.name] = rule
                leads[rules.version, rule.name] = self.council.leads_for(rule)
                for start in rule.starts:
                    starts.setdefault(start.event_type, []).append(
                        _Trigger(rules, rule, start)
                    )
                for event_type in read_types(rule):
                    readers.setdefault(event_type, set()).add(rule.name)
        object.__setattr__(
            self, "_starts", {kind: tuple(found) for kind, found in starts.items()}
        )
        object.__setattr__(
            self,
            "_readers",
            {kind: frozenset(names) for kind, names in readers.items()},
        )
        object.__setattr__(self, "_leads", leads)
        object.__setattr__(self, "_rules", by_key)
        keys: dict[tuple[str, str], str] = {}
        for event_type, names in readers.items():
            for name in names:
                found = {
                    instance_key(rules.rule(name), event_type)
                    for rules in self.rulesets
                    if rules.has(name)
                }
                if len(found) == 1 and (key := found.pop()) is not None:
                    keys[event_type, name] = key
        object.__setattr__(self, "_instance_keys", keys)
        undated = {
            start.event_type
            for rules in self.rulesets
            for rule in rules.rules
            for start in rule.starts
            if start.on is None or not _spec(start.event_type).field(start.on).required
        }
        object.__setattr__(self, "_undated_starts", frozenset(undated))

    def triggers(self, event_type: str) -> tuple[_Trigger, ...]:
        return self._starts.get(event_type, ())

    def leads(self, version: str, rule: ClockRule) -> tuple[int, ...]:
        """The alert lead times of ``rule`` of rules ``version`` for this council."""
        found = self._leads.get((version, rule.name))
        return self.council.leads_for(rule) if found is None else found

    def keeps_recorded_day(self, event_type: str) -> bool:
        """Whether a fact of ``event_type`` keeps the day it was recorded.

        So it does when the type starts a clock with no date of its own, or with a
        date its owner may leave out (``PhaseTransferDue``, ``Post16MoveProposed``, a
        ``ReviewArranged`` without ``arranged_on``): the clock is set on that day.
        """
        return event_type in self._undated_starts

    def rules_reading(self, event_type: str) -> frozenset[str]:
        """The names of the rules whose clocks a fact of ``event_type`` can change."""
        return self._readers.get(event_type, frozenset())

    def instance_key(self, event_type: str, name: str) -> str | None:
        """The field naming the one clock of rule ``name`` a fact can change.

        A fact of ``event_type`` whose field of that name holds ``v`` can change only
        the clock ``name[field=v]`` (under every rules version); None when it may
        change any clock of the rule.
        """
        return self._instance_keys.get((event_type, name))

    def rule_of(self, version: str, name: str) -> ClockRule:
        """The rule ``name`` of rules ``version`` (a clock's rule, asked often)."""
        found = self._rules.get((version, name))
        return self.version(version).rule(name) if found is None else found

    def version(self, version: str) -> RuleSet:
        for rules in self.rulesets:
            if rules.version == version:
                return rules
        raise RulesError(
            f"a clock was set under rules {version!r}, which this engine lacks; "
            "keep every version that clocks were set under in RULESETS"
        )


_DATE_KINDS = (FieldKind.DATE, FieldKind.TIMESTAMP)


def read_types(rule: ClockRule) -> frozenset[str]:
    """Every event type whose facts the rule's clocks are derived from."""
    found = {start.event_type for start in rule.starts}
    endings: tuple[Stop | Cancel, ...] = (*rule.stops, *rule.cancels)
    found.update(trigger.event_type for trigger in endings)
    found.update(contract.EXCEPTION_TYPES)
    for due in (rule.due, rule.guidance_due):
        if due is not None:
            found.update(_due_types(due))
    if rule.ends_from is not None:
        found.update(_ref_types(rule.ends_from))
    return frozenset(found)


def instance_key(rule: ClockRule, event_type: str) -> str | None:
    """The field whose value names the one clock of ``rule`` a fact can change.

    That is so when every clock of the rule is one per value of the same field (every
    start has that ``key``) and the rule reads facts of ``event_type`` only through
    that field: as a start, as a stop or cancel that must ``match`` it, and as a date
    ``FactOf`` joined on it. Exception facts name their clock otherwise, and may name
    none, so they never qualify. None when a fact of the type may change any clock.
    """
    keys = {start.key for start in rule.starts}
    if len(keys) != 1:
        return None
    key = keys.pop()
    if key is None or key == EACH_EVENT or event_type in contract.EXCEPTION_TYPES:
        return None
    endings: tuple[Stop | Cancel, ...] = (*rule.stops, *rule.cancels)
    if any(t.event_type == event_type and t.match != key for t in endings):
        return None
    for due in (rule.due, rule.guidance_due):
        if due is not None and any(join != key for join in _due_joins(due, event_type)):
            return None
    if rule.ends_from is not None and any(
        join != key for join in _ref_joins(rule.ends_from, event_type)
    ):
        return None
    return key


def _due_joins(due: DueRule, event_type: str) -> list[str | None]:
    """The ``join`` of every ``FactOf`` of ``event_type`` the due rule reads."""
    if isinstance(due, Offset):
        return _ref_joins(due.base, event_type)
    if isinstance(due, Earliest):
        return [join for part in due.parts for join in _due_joins(part, event_type)]
    if isinstance(due, DayInYear):
        return []
    if isinstance(due, OnDayIfKnownInTime):
        return [*_ref_joins(due.day, event_type), *_ref_joins(due.learned, event_type)]
    return _due_joins(due.inner, event_type)


def _ref_joins(ref: DateRef, event_type: str) -> list[str | None]:
    if isinstance(ref, FactOf):
        return [ref.join] if ref.event_type == event_type else []
    if isinstance(ref, FirstKnown):
        return [join for part in ref.refs for join in _ref_joins(part, event_type)]
    return []


def _due_types(due: DueRule) -> set[str]:
    if isinstance(due, Offset):
        return _ref_types(due.base)
    if isinstance(due, Earliest):
        return {kind for part in due.parts for kind in _due_types(part)}
    if isinstance(due, DayInYear):
        return set()
    if isinstance(due, OnDayIfKnownInTime):
        return _ref_types(due.day) | _ref_types(due.learned)
    return _due_types(due.inner)


def _ref_types(ref: DateRef) -> set[str]:
    if isinstance(ref, FactOf):
        return {ref.event_type}
    if isinstance(ref, FirstKnown):
        return {kind for part in ref.refs for kind in _ref_types(part)}
    return set()


# Reading facts ------------------------------------------------------------------------


def _spec(event_type: str) -> EventSpec:
    try:
        return contract.EVENTS_BY_TYPE[event_type]
    except KeyError:
        raise RulesError(
            f"the rules read {event_type}, which the contract lacks"
        ) from None


def fact_date(fact: Fact, name: str) -> date | None:
    """The London date in ``fact``'s field ``name`` (None if the fact has none)."""
    value = fact.data.get(name)
    if value is None:
        return None
    kind = _field_kind(fact.type, name)
    if isinstance(value, str):
        return _text_date(value, kind)
    return _read_date(value, kind)


@lru_cache(maxsize=1024)
def _field_kind(event_type: str, name: str) -> FieldKind:
    return _spec(event_type).field(name).kind


def _read_date(value: Any, kind: FieldKind) -> date:
    if kind is FieldKind.TIMESTAMP:
        return calendar.london_date(calendar.parse_timestamp(value))
    return calendar.parse_date(value)


@lru_cache(maxsize=1 << 13)
def _text_date(value: str, kind: FieldKind) -> date:
    # Facts hold canonical ISO strings and the same ones are read again at every
    # step; a value that cannot be read raises, and an error is never cached.
    return _read_date(value, kind)


def _holds(conditions: tuple[Condition, ...], fact: Fact) -> bool:
    for condition in conditions:
        value = fact.data.get(condition.field)
        if condition.present:
            if value is None or value == "":
                return False
        elif value != condition.equals:
            return False
    return True


def _short_type(event_type: str) -> str:
    return event_type.split(".")[-2]


def _clock_id(rule: ClockRule, start: Start, fact: Fact, ordinal: int) -> str | None:
    if start.key is None:
        return rule.name
    if start.key == EACH_EVENT:
        return f"{rule.name}[{_short_type(fact.type)}#{ordinal}]"
    value = fact.data.get(start.key)
    if value is None:
        return None
    return f"{rule.name}[{start.key}={value}]"


def instance_value(rule: ClockRule, start: Start, fact: Fact) -> str | None:
    """The value that names this clock among the rule's clocks, if it has one."""
    if start.key is None or start.key == EACH_EVENT:
        return None
    value = fact.data.get(start.key)
    return None if value is None else str(value)


# Resolving dates ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    facts: Sequence[Fact]
    start_fact: Fact
    start: Start
    council: CouncilConfig


def _resolve(ref: DateRef, ctx: _Context) -> date | None:
    if isinstance(ref, StartDate):
        return None if ctx.start.on is None else fact_date(ctx.start_fact, ctx.start.on)
    if isinstance(ref, Field):
        return fact_date(ctx.start_fact, ref.name)
    if isinstance(ref, SchoolYearStart):
        year = ctx.start_fact.data.get(ref.year_field)
        if year is None:
            return None
        return calendar.academic_year_start(int(year) - ref.years_before)
    if isinstance(ref, FactOf):
        joined = None if ref.join is None else ctx.start_fact.data.get(ref.join)
        if ref.join is not None and joined is None:
            return None
        for fact in ctx.facts:
            if fact.type != ref.event_type:
                continue
            if ref.join is not None and fact.data.get(ref.join) != joined:
                continue
            found = fact_date(fact, ref.field)
            if found is not None:
                return found
        return None
    for part in ref.refs:
        found = _resolve(part, ctx)
        if found is not None:
            return found
    return None


@lru_cache(maxsize=1 << 13)
def count(base: date, amount: int, how: Count) -> date:
    """Count ``amount`` from ``base`` as ``how`` says, with ``sendkit.calendar``.

    Kept for the dates asked before: every fact's clocks are counted again whenever a
    fact their rule reads arrives, from the same few bases.
    """
    match how:
        case Count.WEEKS_AFTER:
            return calendar.weeks_after(base, amount)
        case Count.DAYS_AFTER:
            return calendar.days_after(base, amount)
        case Count.DAYS_BEGINNING_WITH:
            return calendar.last_of_days_beginning_with(base, amount)
        case Count.MONTHS_AFTER:
            return calendar.months_after(base, amount)
        case Count.MONTHS_STARTING_WITH:
            return calendar.last_of_months_starting_with(base, amount)
        case Count.WORKING_DAYS_BEGINNING_WITH:
            return calendar.last_of_working_days_beginning_with(base, amount)
        case Count.DAYS_BEFORE:
            return calendar.days_before(base, amount)
        case Count.WEEKS_BEFORE:
            return calendar.weeks_before(base, amount)
        case Count.MONTHS_BEFORE:
            return calendar.months_before(base, amount)


def _due(rule: DueRule, ctx: _Context) -> tuple[date, date | None] | None:
    """The due date and the date it counts from, or None while a date is unknown."""
    if isinstance(rule, Offset):
        base = _resolve(rule.base, ctx)
        return None if base is None else (count(base, rule.amount, rule.count), base)
    if isinstance(rule, Earliest):
        found = [due for part in rule.parts if (due := _due(part, ctx)) is not None]
        return min(found, key=lambda pair: pair[0]) if found else None
    if isinstance(rule, DayInYear):
        year = ctx.start_fact.data.get(rule.year_field)
        if year is None:
            return None
        if rule.before:
            return calendar.day_before(int(year), rule.month, rule.day), None
        return date(int(year), rule.month, rule.day), None
    if isinstance(rule, OnDayIfKnownInTime):
        learned = _resolve(rule.learned, ctx)
        if learned is None:
            return None
        day = _resolve(rule.day, ctx)
        if day is not None and learned <= calendar.working_days_before(
            day, rule.working_days
        ):
            return day, learned
        last = calendar.last_of_working_days_beginning_with(learned, rule.working_days)
        return last, learned
    inner = _due(rule.inner, ctx)
    if inner is None:
        return None
    term = ctx.council.term_for(inner[0])
    return None if term is None else (term.starts_on - timedelta(days=1), inner[1])


# Endings ------------------------------------------------------------------------------


def _matches(match: str | None, fact: Fact, start_fact: Fact) -> bool:
    if match is None:
        return True
    wanted = start_fact.data.get(match)
    return wanted is not None and fact.data.get(match) == wanted


def _ending(
    rule: ClockRule, facts: Sequence[Fact], position: int, ctx: _Context
) -> Stopped | Cancelled | None:
    """The earliest-dated stop or cancel of the clock started by ``facts[position]``.

    The rules of the module docstring: an ending that names the clock's own key
    (``match``) counts whatever its date; any other dated before ``rule.ends_from``
    does not (when that day is unknown, neither does one recorded before the start);
    of the rest, the earliest date wins, a stop before a cancel of the same day, then
    the first recorded.
    """
    triggers: tuple[Stop | Cancel, ...] = (*rule.stops, *rule.cancels)
    bound = None if rule.ends_from is None else _resolve(rule.ends_from, ctx)
    best: Stopped | Cancelled | None = None
    best_key: tuple[date, int] | None = None
    for index, fact in enumerate(facts):
        if index == position:
            continue
        for trigger in triggers:
            if trigger.event_type != fact.type or not _holds(trigger.when, fact):
                continue
            if not _matches(trigger.match, fact, ctx.start_fact):
                continue
            on = fact_date(fact, trigger.on)
            if on is None:
                continue
            if trigger.match is None and (
                on < bound if bound is not None else index < position
            ):
                continue
            # Facts are visited in recording order, so the first of a day stays.
            key = (on, 0 if isinstance(trigger, Stop) else 1)
            if best_key is not None and key >= best_key:
                continue
            best_key = key
            if isinstance(trigger, Stop):
                best = Stopped(on, fact.type, fact.id)
            else:
                best = Cancelled(on, fact.type, trigger.voids_breach, fact.id)
    return best


def _exceptions(
    rule: ClockRule, clock_id: str, instance: str | None, facts: Sequence[Fact]
) -> tuple[ExceptionReason, ...]:
    """The reasons recorded for this clock, wherever they stand among the facts.

    An exception that names no ``instance`` applies to every clock of the rule; one
    that does applies to the clock with that key value (an ``advice_id``) or clock id.
    """
    found: list[ExceptionReason] = []
    for fact in facts:
        if fact.type not in contract.EXCEPTION_TYPES:
            continue
        if fact.data.get("clock") != rule.name:
            continue
        named = fact.data.get("instance")
        if named is not None and named not in (instance, clock_id):
            continue
        reason = rule.exception(str(fact.data.get("reason")))
        if reason is not None and reason not in found:
            found.append(reason)
    return tuple(found)


# Deriving -----------------------------------------------------------------------------


def _with_council_amount(rule: ClockRule, council: CouncilConfig) -> DueRule | None:
    amount = council.local_amounts.get(rule.name)
    if amount is None or not isinstance(rule.due, Offset):
        return rule.due
    return replace(rule.due, amount=amount)


@dataclass(frozen=True, slots=True)
class _Candidate:
    position: int
    fact: Fact
    trigger: _Trigger


def _setting_day(
    candidate: _Candidate, facts: Sequence[Fact], config: EngineConfig
) -> date | None:
    """The day a clock is set, which picks its rules version.

    That is the starting fact's own date, or when it has none the day the fact was
    recorded (the London date of its CloudEvents time). Only a fact kept without that
    day, by a caller that gave the engine none or in a state written before facts kept
    it, falls back to the date its due date counts from.
    """
    start = candidate.trigger.start
    if start.on is not None:
        day = fact_date(candidate.fact, start.on)
        if day is not None:
            return day
    if candidate.fact.recorded_on is not None:
        return candidate.fact.recorded_on
    due_rule = candidate.trigger.rule.due
    if due_rule is None:
        return None
    ctx = _Context(facts, candidate.fact, start, config.council)
    due = _due(due_rule, ctx)
    return None if due is None else (due[1] or due[0])


def _choose(
    candidates: dict[str, _Candidate],
    pinned: str | None,
    facts: Sequence[Fact],
    config: EngineConfig,
) -> _Candidate | None:
    if pinned is not None:
        return candidates.get(pinned)
    # The version in effect on the day the clock is set decides; a clock that version
    # does not have (a row added later, or one since removed) is not set at all.
    for rules in reversed(config.rulesets):
        candidate = candidates.get(rules.version)
        if candidate is None:
            continue
        day = _setting_day(candidate, facts, config)
        if day is None:
            return candidate
        in_effect = ruleset_for(day, config.rulesets).version
        return candidate if in_effect == rules.version else candidates.get(in_effect)
    return None


def derive(
    facts: Sequence[Fact],
    config: EngineConfig,
    pinned: Mapping[str, str] | None = None,
    only: Collection[str] | None = None,
    keep: Mapping[str, str] | None = None,
) -> dict[str, DerivedClock]:
    """Every clock the facts give, keyed by clock id, in the order they started.

    ``pinned`` maps the ids of clocks already set to the rules version they were set
    under, which they keep. A clock whose dates are not all known yet is left out until
    they are. With ``only`` (rule names), the clocks of other rules are left out too,
    and with ``keep`` (rule name to clock id) every clock of such a rule but that one.
    """
    pinned = pinned or {}
    ordinals: dict[str, int] = {}
    found: dict[str, dict[str, _Candidate]] = {}
    for position, fact in enumerate(facts):
        ordinals[fact.type] = ordinals.get(fact.type, 0) + 1
        for trigger in config.triggers(fact.type):
            if only is not None and trigger.rule.name not in only:
                continue
            if trigger.rule.name in config.council.disabled:
                continue
            if not _holds(trigger.start.when, fact):
                continue
            clock_id = _clock_id(trigger.rule, trigger.start, fact, ordinals[fact.type])
            if clock_id is None:
                continue
            if keep and keep.get(trigger.rule.name, clock_id) != clock_id:
                continue
            by_version = found.setdefault(clock_id, {})
            by_version.setdefault(
                trigger.rules.version, _Candidate(position, fact, trigger)
            )

    clocks: dict[str, DerivedClock] = {}
    for clock_id, by_version in found.items():
        candidate = _choose(by_version, pinned.get(clock_id), facts, config)
        if candidate is None:
            continue
        clock = _derive_one(clock_id, candidate, facts, config)
        if clock is not None:
            clocks[clock_id] = clock
    return clocks


def _derive_one(
    clock_id: str, candidate: _Candidate, facts: Sequence[Fact], config: EngineConfig
) -> DerivedClock | None:
    rule = candidate.trigger.rule
    start = candidate.trigger.start
    due_rule = _with_council_amount(rule, config.council)
    if due_rule is None:
        return None
    ctx = _Context(facts, candidate.fact, start, config.council)
    due = _due(due_rule, ctx)
    if due is None:
        return None
    guidance = None if rule.guidance_due is None else _due(rule.guidance_due, ctx)
    started_on = None if start.on is None else fact_date(candidate.fact, start.on)
    instance = instance_value(rule, start, candidate.fact)
    return DerivedClock(
        clock_id=clock_id,
        rule=rule,
        version=candidate.trigger.rules.version,
        started_on=started_on,
        counts_from=due[1],
        due_on=due[0],
        guidance_due_on=None if guidance is None else guidance[0],
        lead_working_days=config.leads(candidate.trigger.rules.version, rule),
        ending=_ending(rule, facts, candidate.position, ctx),
        exceptions=_exceptions(rule, clock_id, instance, facts),
        started_by=candidate.fact.type,
        started_by_event_id=candidate.fact.id,
    )


def _date_fields(spec: EventSpec, names: Sequence[str | None]) -> None:
    for name in names:
        if name is not None and spec.field(name).kind not in _DATE_KINDS:
            raise RulesError(f"{spec.type} field {name!r} is not a date or timestamp")


def _ref_fields(ref: DateRef, start: EventSpec) -> None:
    if isinstance(ref, Field):
        _date_fields(start, (ref.name,))
    elif isinstance(ref, FactOf):
        other = _spec(ref.event_type)
        _date_fields(other, (ref.field,))
        if ref.join is not None:
            # The starting event may lack the join field (an amendment outside a review
            # has no review_id); that part of an Earliest then simply does not apply.
            other.field(ref.join)
    elif isinstance(ref, FirstKnown):
        for part in ref.refs:
            _ref_fields(part, start)
    elif (
        isinstance(ref, SchoolYearStart)
        and start.field(ref.year_field).kind is not FieldKind.YEAR
    ):
        raise RulesError(f"{start.type} field {ref.year_field!r} is not a year")


def _due_fields(due: DueRule, start: EventSpec) -> None:
    if isinstance(due, Offset):
        _ref_fields(due.base, start)
    elif isinstance(due, Earliest):
        for part in due.parts:
            _due_fields(part, start)
    elif isinstance(due, DayInYear):
        if start.field(due.year_field).kind is not FieldKind.YEAR:
            raise RulesError(f"{start.type} field {due.year_field!r} is not a year")
    elif isinstance(due, OnDayIfKnownInTime):
        _ref_fields(due.day, start)
        _ref_fields(due.learned, start)
    else:
        _due_fields(due.inner, start)


def _check_rule(rule: ClockRule) -> None:
    """Fail at start-up if a rule reads an event or field the contract does not have."""
    for start in rule.starts:
        spec = _spec(start.event_type)
        _date_fields(spec, (start.on,))
        if start.key not in (None, EACH_EVENT):
            spec.field(str(start.key))
        for condition in start.when:
            spec.field(condition.field)
        for due in (rule.due, rule.guidance_due):
            if due is not None:
                _due_fields(due, spec)
        if rule.ends_from is not None:
            _ref_fields(rule.ends_from, spec)
    triggers: tuple[Stop | Cancel, ...] = (*rule.stops, *rule.cancels)
    for trigger in triggers:
        spec = _spec(trigger.event_type)
        _date_fields(spec, (trigger.on,))
        if trigger.match is not None:
            spec.field(trigger.match)
        for condition in trigger.when:
            spec.field(condition.field)
