"""A council's own settings for the clocks: local targets, term dates and alert leads.

The statutory rows are the same for every council and cannot be changed here. A council
may set the amount of a configurable local target (a Local Area Surgery within 4 weeks
rather than 6), switch local targets off, give its term dates (the termly SENCO lists
need them; without them that target sets no clock), and choose the alert lead times, for
all clocks or for one. The settings apply when a clock is set; a clock keeps the lead
times it was set with.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

from deadlines.domain.errors import RulesError
from deadlines.domain.model import Authority, ClockKind, ClockRule, Offset, RuleSet


@dataclass(frozen=True, slots=True)
class Term:
    """A school term of the council's calendar, first and last day included."""

    starts_on: date
    ends_on: date

    def __post_init__(self) -> None:
        if self.ends_on < self.starts_on:
            raise RulesError(
                f"term starting {self.starts_on.isoformat()} ends before it starts"
            )


@dataclass(frozen=True, slots=True)
class CouncilConfig:
    """One council's settings for the clocks; the defaults are the table's own."""

    terms: tuple[Term, ...] = ()
    local_amounts: Mapping[str, int] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    default_lead_working_days: tuple[int, ...] | None = None
    lead_working_days: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        terms = tuple(sorted(set(self.terms), key=lambda term: term.starts_on))
        for before, after in itertools.pairwise(terms):
            if after.starts_on <= before.ends_on:
                raise RulesError(
                    f"terms starting {before.starts_on.isoformat()} and "
                    f"{after.starts_on.isoformat()} overlap: fix the term dates"
                )
        object.__setattr__(self, "terms", terms)
        object.__setattr__(
            self, "local_amounts", MappingProxyType(dict(self.local_amounts))
        )
        object.__setattr__(
            self, "lead_working_days", MappingProxyType(dict(self.lead_working_days))
        )
        leads = [self.default_lead_working_days, *self.lead_working_days.values()]
        for lead_times in leads:
            if lead_times is not None and any(lead < 0 for lead in lead_times):
                raise RulesError(
                    f"alert lead times must be 0 or more, got {lead_times}"
                )
        for name, amount in self.local_amounts.items():
            if amount < 1:
                raise RulesError(f"local target {name!r}: amount must be 1 or more")

    def check(self, rulesets: tuple[RuleSet, ...]) -> None:
        """Fail if a setting names no clock, or tries to change a statutory one."""
        rules = {rule.name: rule for rules in rulesets for rule in rules.rules}
        for name in [*self.local_amounts, *self.disabled, *self.lead_working_days]:
            if name not in rules:
                raise RulesError(
                    f"council setting names clock {name!r}, which no rules version has;"
                    " "
                    f"known: {', '.join(sorted(rules))}"
                )
        for name in self.local_amounts:
            rule = rules[name]
            if not rule.configurable or not isinstance(rule.due, Offset):
                raise RulesError(
                    f"clock {name!r} is not a configurable local target: only local "
                    "targets counted as one offset may have their amount set"
                )
        for name in self.disabled:
            if rules[name].authority is not Authority.LOCAL:
                raise RulesError(
                    f"clock {name!r} is {rules[name].authority.value}: only local "
                    "targets can be switched off"
                )

    def leads_for(self, rule: ClockRule) -> tuple[int, ...]:
        if rule.name in self.lead_working_days:
            return tuple(sorted(set(self.lead_working_days[rule.name]), reverse=True))
        if (
            self.default_lead_working_days is not None
            and rule.kind is ClockKind.DEADLINE
        ):
            return tuple(sorted(set(self.default_lead_working_days), reverse=True))
        return tuple(sorted(set(rule.lead_working_days), reverse=True))

    def term_for(self, day: date) -> Term | None:
        """The term ``day`` falls in, or the term before the holiday it falls in.

        None when the council's term dates do not cover ``day``.
        """
        found: Term | None = None
        for index, term in enumerate(self.terms):
            if term.starts_on > day:
                break
            # A review due in a holiday must be held in the term before it, so it goes
            # on that term's list; a day after the last known term is not covered.
            covered = day <= term.ends_on or index + 1 < len(self.terms)
            found = term if covered else None
        return found
