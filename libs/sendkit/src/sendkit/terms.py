"""School term dates as settings write them: one format, one parser for every service.

Term dates are council data that two services read: notify sends each SENCO the list of
their pupils' upcoming reviews before a term starts (``NOTIFY_TERM_DATES``), and the
deadlines service sets the local target for that list against the same terms
(``DEADLINES_TERM_DATES``). Both read the same two forms, so one council file or value
serves both, and they must be given the same dates:

- a compact value, each term as its first and last day, terms separated by commas:
  ``2025-09-03/2025-12-19,2026-01-05/2026-03-27`` (spaces around parts are allowed, an
  empty value means no terms);
- a CSV file with a header row naming ``starts_on`` and ``ends_on`` (other columns,
  such as a term's name, are ignored), one term a line.

The parsers return the terms as ``(first day, last day)`` pairs in date order, and
raise ``TermDatesError`` naming the setting or file and saying how to write the value
when a date cannot be read, a term ends before it starts, or two terms overlap. Each
service turns the pairs into its own term type.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable
from datetime import date

from sendkit.settings import SettingsError

TermDates = tuple[tuple[date, date], ...]
"""Terms as (first day, last day) pairs, both days in the term, in date order."""

EXAMPLE = "2025-09-03/2025-12-19"
"""One term written as the compact form wants it, for messages."""


class TermDatesError(SettingsError):
    """Term dates that cannot be read; the message names the setting and the fix."""


_COMPACT_HINT = (
    "write each term as its first and last day, YYYY-MM-DD/YYYY-MM-DD, such as "
    + EXAMPLE
)
_CSV_HINT = "write both days as YYYY-MM-DD, such as 2025-09-03,2025-12-19"


def _day(text: str, where: str, term: str, hint: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise TermDatesError(
            f"{where}: {term!r} is not a term: {text.strip()!r} is not a date; {hint}"
        ) from None


def check_term_dates(terms: Iterable[tuple[date, date]], where: str) -> TermDates:
    """``terms`` in date order, each once; ``TermDatesError`` if one ends before it
    starts or two overlap (``where`` names the setting or file in the message)."""
    ordered = tuple(sorted(set(terms)))
    for first, last in ordered:
        if last < first:
            raise TermDatesError(
                f"{where}: the term starting {first.isoformat()} ends "
                f"{last.isoformat()}, before it starts: put the first day before the "
                "last"
            )
    for before, after in itertools.pairwise(ordered):
        if after[0] <= before[1]:
            raise TermDatesError(
                f"{where}: the terms starting {before[0].isoformat()} and "
                f"{after[0].isoformat()} overlap: fix the term dates so that each "
                "term starts after the one before it ends"
            )
    return ordered


def parse_term_dates(text: str, where: str) -> TermDates:
    """The compact form (``first/last`` terms separated by commas) as date pairs.

    ``where`` is the setting's name (``DEADLINES_TERM_DATES``), for the messages.
    """
    terms = []
    for part in text.split(","):
        if not part.strip():
            continue
        first, slash, last = part.partition("/")
        if not slash:
            raise TermDatesError(
                f"{where}: {part.strip()!r} is not a term; write each term as its "
                f"first and last day joined by '/', such as {EXAMPLE}, and separate "
                "terms with commas"
            )
        term = part.strip()
        terms.append(
            (
                _day(first, where, term, _COMPACT_HINT),
                _day(last, where, term, _COMPACT_HINT),
            )
        )
    return check_term_dates(terms, where)


def parse_term_dates_csv(text: str, where: str) -> TermDates:
    """A CSV with the columns ``starts_on`` and ``ends_on`` as date pairs.

    ``where`` names the file (or the setting that names it), for the messages.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    if not {"starts_on", "ends_on"} <= set(reader.fieldnames or ()):
        raise TermDatesError(
            f"{where} must have a header row naming starts_on and ends_on, then one "
            "term a line, such as 2025-09-03,2025-12-19"
        )
    terms = []
    for line, row in enumerate(reader, start=2):
        first, last = row["starts_on"] or "", row["ends_on"] or ""
        term = f"{first.strip()},{last.strip()}"
        terms.append(
            (
                _day(first, f"{where} line {line}", term, _CSV_HINT),
                _day(last, f"{where} line {line}", term, _CSV_HINT),
            )
        )
    return check_term_dates(terms, where)
