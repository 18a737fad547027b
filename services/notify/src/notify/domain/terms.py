"""The council's school terms, and when each SENCO's termly list of reviews goes out.

Term dates are council data (``NOTIFY_TERM_DATES`` or the file named by
``NOTIFY_TERM_DATES_FILE``), read by ``sendkit.terms``, the parser the deadlines
service uses for ``DEADLINES_TERM_DATES``: the two services must be given the same
terms. A term's list is sent from ``lead`` working days before the term starts until
the day before it starts; once the term has begun it is too late, and the deadlines
service's local target for the list goes overdue instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from notify.errors import ConfigurationError
from sendkit.calendar import working_days_before
from sendkit.terms import (
    TermDates,
    TermDatesError,
    parse_term_dates,
    parse_term_dates_csv,
)


@dataclass(frozen=True, slots=True, order=True)
class Term:
    """A school term, first and last day included."""

    starts_on: date
    ends_on: date

    def __post_init__(self) -> None:
        if self.ends_on < self.starts_on:
            raise ConfigurationError(
                f"the term starting {self.starts_on.isoformat()} ends "
                f"{self.ends_on.isoformat()}, before it starts: fix the term dates"
            )

    def list_from(self, lead_working_days: int) -> date:
        """The first day the term's SENCO lists may be sent."""
        return working_days_before(self.starts_on, lead_working_days)


def check_terms(terms: Iterable[Term]) -> tuple[Term, ...]:
    """``terms`` in order; ``ConfigurationError`` if two overlap."""
    ordered = tuple(sorted(set(terms)))
    for before, after in itertools.pairwise(ordered):
        if after.starts_on <= before.ends_on:
            raise ConfigurationError(
                f"the terms starting {before.starts_on.isoformat()} and "
                f"{after.starts_on.isoformat()} overlap: fix the term dates"
            )
    return ordered


def _terms(pairs: Callable[[], TermDates]) -> tuple[Term, ...]:
    try:
        found = pairs()
    except TermDatesError as error:
        raise ConfigurationError(str(error)) from error
    return check_terms(Term(first, last) for first, last in found)


def parse_terms(text: str) -> tuple[Term, ...]:
    """``2025-09-03/2025-12-19,2026-01-05/2026-03-27`` as terms (empty: none).

    The format is ``sendkit.terms``', the one ``DEADLINES_TERM_DATES`` takes too.
    """
    return _terms(lambda: parse_term_dates(text, "NOTIFY_TERM_DATES"))


def parse_terms_csv(text: str, source: str = "the term dates file") -> tuple[Term, ...]:
    """A CSV with the columns ``starts_on`` and ``ends_on`` as terms."""
    return _terms(lambda: parse_term_dates_csv(text, source))


def term_to_list(
    terms: Iterable[Term], today: date, lead_working_days: int
) -> Term | None:
    """The term whose lists are due on ``today``: not started, its send window open."""
    for term in sorted(terms):
        if term.starts_on > today and term.list_from(lead_working_days) <= today:
            return term
    return None
