"""Statutory date arithmetic: the one place in the platform where dates are computed.

Every function takes and returns ``datetime.date`` values that are local dates in
Europe/London; the only way in from a timestamp is :func:`london_date`, which refuses
naive datetimes. The functions are named after the wording of the SEND Regulations 2014
so that a rule can be read against the law: "within N weeks of" is :func:`weeks_after`,
"at least N days beginning with" is :func:`last_of_days_beginning_with`, "the period of
12 months starting with" is :func:`last_of_months_starting_with`, and so on. Nothing
here moves a date off a weekend or a bank holiday; :func:`act_by` says when to act
instead.

Working days exclude Saturdays, Sundays and England-and-Wales bank holidays. For the
years 2015 to 2030 the bank holidays come from the data file
``sendkit/data/bank-holidays-england-and-wales.csv``, written from the lists GOV.UK
publishes; a test checks it against the ``holidays`` package year by year, so an upgrade
of either that disagrees fails the build instead of silently moving a due date. Outside
those years the ``holidays`` package is used alone; a one-off bank holiday announced
after the package's release is then missing until the package is upgraded or the file
extended.

Working-day questions are answered from a table built on first use over the data file's
years: each day's ordinal indexes whether it is a working day and how many working days
come before it, so "N working days before" is a subtraction and an index whatever N is.
The table is built from :func:`is_bank_holiday` and the weekday rule, and any question
whose answer reaches outside those years is counted day by day from the same rule, so
the answers are those of counting one day at a time.

Every fact the platform records or counts from lies in one supported range,
:data:`SUPPORTED_FROM` to :data:`SUPPORTED_TO` (1 September 2014 to 31 December 2100).
The first day is when Part 3 of the Children and Families Act 2014 came into force, so
no EHC needs assessment, plan or review can be dated before it; the last is the last
year the published contract takes as a phase-transfer year, far enough ahead for any
plan and far enough from the end of Python's dates (9999) that every period the rules
count from a supported day stays countable. A service refuses a date outside the range
at its door (:func:`supported_day_problem`, :func:`supported_moment_problem`), and the
deadlines engine dead-letters an event that carries one. Facts that may lie ahead of
today (a plan's start, a move) lie at most :data:`PLANNING_HORIZON_DAYS` ahead, and
within the range. The range must be extended before the platform's own today nears
its end: from 2098 the planning horizon is cut short by it, and after 2100 nothing
new could be recorded.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import csv
import io
from array import array
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

import holidays as _holidays

__all__ = [
    "LONDON",
    "PLANNING_HORIZON_DAYS",
    "SUPPORTED_FROM",
    "SUPPORTED_TO",
    "CalendarError",
    "academic_year",
    "academic_year_start",
    "act_by",
    "bank_holiday_file_years",
    "bank_holidays",
    "count_working_days",
    "day_before",
    "days_after",
    "days_before",
    "is_bank_holiday",
    "is_working_day",
    "last_of_days_beginning_with",
    "last_of_months_starting_with",
    "last_of_working_days_beginning_with",
    "latest_planned_day",
    "library_bank_holidays",
    "london_date",
    "london_day_starts_at",
    "months_after",
    "months_before",
    "next_working_day",
    "parse_date",
    "parse_timestamp",
    "previous_working_day",
    "supported_day",
    "supported_day_problem",
    "supported_london_date",
    "supported_moment_problem",
    "weeks_after",
    "weeks_before",
    "working_day_on_or_before",
    "working_days_after",
    "working_days_before",
]

LONDON = ZoneInfo("Europe/London")
_DATA_FILE = "bank-holidays-england-and-wales.csv"
_ONE_DAY = timedelta(days=1)


class CalendarError(ValueError):
    """A date or timestamp the calendar cannot use; the message says what to send."""


# The supported range ------------------------------------------------------------------

SUPPORTED_FROM = date(2014, 9, 1)
"""The first day of the supported range: Part 3 of the Children and Families Act 2014
(EHC needs assessments and plans) came into force on 1 September 2014."""

SUPPORTED_TO = date(2100, 12, 31)
"""The last day of the supported range: the end of the last phase-transfer year the
contract takes, and centuries short of the last day Python can count to."""

PLANNING_HORIZON_DAYS = 3 * 365
"""How far ahead of today a fact may be dated when it is planned rather than past: a
plan's start, a move to another council or between post-16 institutions."""

_RANGE_ADVICE = (
    f"send a date from {SUPPORTED_FROM.isoformat()} to {SUPPORTED_TO.isoformat()}, "
    "the dates the platform counts in"
)


def london_day_starts_at(day: date) -> datetime:
    """The instant ``day`` begins in London, to compare a timestamp with a day without
    converting the timestamp (a comparison of instants cannot overflow)."""
    return datetime.combine(day, time(), LONDON)


# Bounds of the range as instants, for checking a timestamp before converting it.
_SUPPORTED_FROM_AT = london_day_starts_at(SUPPORTED_FROM)
_SUPPORTED_AFTER_AT = london_day_starts_at(SUPPORTED_TO + timedelta(days=1))


def supported_day_problem(day: date) -> str | None:
    """Why ``day`` lies outside the supported range, or None when it lies inside."""
    if SUPPORTED_FROM <= day <= SUPPORTED_TO:
        return None
    return f"{day.isoformat()} is outside the supported range: {_RANGE_ADVICE}"


def supported_moment_problem(moment: datetime) -> str | None:
    """Why an aware timestamp's London date is outside the supported range, or None.

    The check compares instants and converts nothing, so it answers for any aware
    timestamp, even one whose London date Python cannot represent.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        return (
            f"timestamp {moment.isoformat()} has no time zone: add an offset such as "
            "'+00:00'"
        )
    if _SUPPORTED_FROM_AT <= moment < _SUPPORTED_AFTER_AT:
        return None
    return (
        f"timestamp {moment.isoformat()} falls outside the supported range in London: "
        f"{_RANGE_ADVICE}"
    )


def supported_day(day: date) -> date:
    """``day`` itself when it is in the supported range, else :class:`CalendarError`."""
    problem = supported_day_problem(day)
    if problem is not None:
        raise CalendarError(problem)
    return day


def supported_london_date(moment: datetime) -> date:
    """The London date of an aware timestamp in the supported range, else an error."""
    problem = supported_moment_problem(moment)
    if problem is not None:
        raise CalendarError(problem)
    return london_date(moment)


def latest_planned_day(today: date) -> date:
    """The furthest day a planned fact may be dated: the horizon from ``today``, and
    never past the end of the supported range."""
    return min(today + timedelta(days=PLANNING_HORIZON_DAYS), SUPPORTED_TO)


# Conversions --------------------------------------------------------------------------


def london_date(moment: datetime) -> date:
    """The London date of an aware timestamp (2025-03-30T23:30Z is 31 March).

    A timestamp whose London date would fall outside Python's dates (years 1 to 9999)
    raises :class:`CalendarError`; callers check :func:`supported_moment_problem` first.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError(
            f"timestamp {moment.isoformat()} has no time zone: send an aware timestamp "
            "such as '2025-03-30T23:30:00+00:00' so its London date can be taken"
        )
    try:
        return moment.astimezone(LONDON).date()
    except OverflowError as error:
        raise CalendarError(
            f"timestamp {moment.isoformat()} has no London date: {_RANGE_ADVICE}"
        ) from error


def parse_timestamp(value: str | datetime) -> datetime:
    """An aware datetime from an ISO 8601 string or an aware datetime, else an error."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError as error:
            raise CalendarError(
                f"{value!r} is not an ISO 8601 timestamp: send one such as "
                "'2025-03-30T23:30:00+00:00'"
            ) from error
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError(
            f"timestamp {value!r} has no time zone: add an offset such as '+00:00'"
        )
    return moment


def parse_date(value: str | date) -> date:
    """A date from an ISO 8601 ``YYYY-MM-DD`` string (or a date), else an error."""
    if isinstance(value, datetime):
        raise CalendarError(
            f"{value.isoformat()} is a timestamp where a date was expected: send the "
            "London date as 'YYYY-MM-DD'"
        )
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise CalendarError(
            f"{value!r} is not a date: send it as 'YYYY-MM-DD', such as '2025-01-06'"
        ) from error


# Calendar units -----------------------------------------------------------------------


def days_after(start: date, days: int) -> date:
    """The last day of "within N days of" ``start``: the day itself is not counted."""
    return start + timedelta(days=days)


def days_before(anchor: date, days: int) -> date:
    """The day N days before ``anchor`` (review papers are due meeting - 14 days)."""
    return anchor - timedelta(days=days)


def weeks_after(start: date, weeks: int) -> date:
    """The last day of "within N weeks of" ``start``: start + 7N days, same weekday."""
    return start + timedelta(weeks=weeks)


def weeks_before(anchor: date, weeks: int) -> date:
    """The day N weeks before ``anchor``, on the same weekday."""
    return anchor - timedelta(weeks=weeks)


def _shift_months(start: date, months: int) -> date:
    index = start.year * 12 + (start.month - 1) + months
    year, month_index = divmod(index, 12)
    month = month_index + 1
    if not 1 <= year <= 9999:
        raise CalendarError(
            f"{start.isoformat()} shifted by {months} months leaves 1-9999"
        )
    last = _stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last))


def months_after(start: date, months: int) -> date:
    """'N months after': the same day number N months on, or that month's end."""
    return _shift_months(start, months)


def months_before(anchor: date, months: int) -> date:
    """'At least N months before': the same day number N months back, or month end."""
    return _shift_months(anchor, -months)


def last_of_days_beginning_with(start: date, days: int) -> date:
    """The last day of "at least N days beginning with" ``start``: start + N - 1."""
    if days < 1:
        raise CalendarError(f"a period of {days} days has no last day: use 1 or more")
    return start + timedelta(days=days - 1)


def last_of_months_starting_with(start: date, months: int = 12) -> date:
    """The last day of "the period of N months starting with" ``start``.

    The start day counts, so the period ends on (start - 1 day) + N months, clamped to
    the month's end: a 29 February start and a 1 March start both end on 28 February.
    """
    if months < 1:
        raise CalendarError(
            f"a period of {months} months has no last day: use 1 or more"
        )
    return _shift_months(start - _ONE_DAY, months)


def day_before(year: int, month: int, day: int) -> date:
    """The last day "before" a day: "before 15 February 2026" is 14 February."""
    try:
        return date(year, month, day) - _ONE_DAY
    except ValueError as error:
        raise CalendarError(f"{year}-{month:02}-{day:02} is not a date") from error


# School years -------------------------------------------------------------------------

ACADEMIC_YEAR_MONTH = 9
"""National curriculum year groups move up on 1 September (age on 31 August)."""


def academic_year(day: date) -> int:
    """The calendar year in which the school year holding ``day`` began.

    A school year runs from 1 September to 31 August, so 31 August 2026 is in the
    year 2025 and 1 September 2026 in the year 2026.
    """
    return day.year if day.month >= ACADEMIC_YEAR_MONTH else day.year - 1


def academic_year_start(year: int) -> date:
    """The first day of the school year that begins in ``year`` (1 September)."""
    return date(year, ACADEMIC_YEAR_MONTH, 1)


# Bank holidays ------------------------------------------------------------------------


@cache
def _file_holidays() -> dict[int, frozenset[date]]:
    text = resources.files("sendkit").joinpath("data", _DATA_FILE).read_text("utf-8")
    rows = csv.DictReader(
        line for line in io.StringIO(text) if not line.startswith("#")
    )
    by_year: dict[int, set[date]] = {}
    for row in rows:
        day = date.fromisoformat(row["date"])
        by_year.setdefault(day.year, set()).add(day)
    return {year: frozenset(days) for year, days in by_year.items()}


def bank_holiday_file_years() -> range:
    """The years the bank-holiday data file covers (2015 to 2030)."""
    years = sorted(_file_holidays())
    return range(years[0], years[-1] + 1)


@cache
def library_bank_holidays(year: int) -> frozenset[date]:
    """England's bank holidays of ``year`` per the ``holidays`` package, weekdays only.

    The package also lists a holiday on the weekend day it falls on beside its
    substitute weekday; only the weekday is a day offices close, so weekends are
    dropped.
    """
    found = _holidays.country_holidays("GB", subdiv="ENG", years=year)
    return frozenset(day for day in found if day.weekday() < 5 and day.year == year)


def bank_holidays(year: int) -> frozenset[date]:
    """England-and-Wales bank holidays of ``year``: the data file, else the package."""
    from_file = _file_holidays().get(year)
    return from_file if from_file is not None else library_bank_holidays(year)


def is_bank_holiday(day: date) -> bool:
    return day in bank_holidays(day.year)


def _counted_is_working_day(day: date) -> bool:
    # The definition itself; the table below is built from it and falls back on it.
    return day.weekday() < 5 and not is_bank_holiday(day)


# The working-day table ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WorkingDays:
    """Every day of the data file's years, classified once, with running counts.

    ``working[i]`` is 1 when the day ``first + i`` (ordinals) is a working day;
    ``before[i]`` is how many working days come before it in the table, so the n-th
    working day before or after a day is one subtraction and one index into
    ``ordinals``, the ordinals of the working days in order. A question whose answer
    needs a day outside the table is answered by counting day by day instead.
    """

    first: int
    working: bytes
    before: array[int]
    ordinals: array[int]

    @classmethod
    def build(cls, years: range) -> _WorkingDays:
        first = date(years.start, 1, 1).toordinal()
        end = date(years.stop, 1, 1).toordinal()
        working = bytearray()
        before = array("l", [0])
        ordinals = array("l")
        for ordinal in range(first, end):
            is_working = _counted_is_working_day(date.fromordinal(ordinal))
            working.append(is_working)
            if is_working:
                ordinals.append(ordinal)
            before.append(len(ordinals))
        return cls(first, bytes(working), before, ordinals)


@cache
def _table() -> _WorkingDays:
    return _WorkingDays.build(bank_holiday_file_years())


def is_working_day(day: date) -> bool:
    """Monday to Friday and not an England-and-Wales bank holiday."""
    table = _table()
    index = day.toordinal() - table.first
    if 0 <= index < len(table.working):
        return table.working[index] == 1
    return _counted_is_working_day(day)


# Working days -------------------------------------------------------------------------


def next_working_day(day: date) -> date:
    """The first working day after ``day``."""
    return working_days_after(day, 1)


def previous_working_day(day: date) -> date:
    """The last working day before ``day``."""
    return working_days_before(day, 1)


def working_day_on_or_before(day: date) -> date:
    """``day`` if it is a working day, else the working day before it."""
    return day if is_working_day(day) else previous_working_day(day)


def act_by(due: date) -> date | None:
    """When to act on a due date that is not a working day; None if it is one.

    The Regulations never move a due date, so the date itself stays; a due date on a
    Saturday, Sunday or bank holiday is acted on by the previous working day.
    """
    return None if is_working_day(due) else previous_working_day(due)


def working_days_after(start: date, days: int) -> date:
    """The day that is ``days`` working days after ``start`` (``start`` not counted)."""
    if days < 0:
        raise CalendarError(f"cannot count {days} working days forward: use 0 or more")
    if days == 0:
        return start
    table = _table()
    index = start.toordinal() - table.first
    if 0 <= index < len(table.working):
        # before[index + 1] working days of the table are on or before ``start``.
        wanted = table.before[index + 1] + days - 1
        if wanted < len(table.ordinals):
            return date.fromordinal(table.ordinals[wanted])
    current = start
    for _ in range(days):
        current += _ONE_DAY
        while not is_working_day(current):
            current += _ONE_DAY
    return current


def working_days_before(anchor: date, days: int) -> date:
    """The day ``days`` working days before ``anchor`` (``anchor`` not counted)."""
    if days < 0:
        raise CalendarError(f"cannot count {days} working days back: use 0 or more")
    if days == 0:
        return anchor
    table = _table()
    index = anchor.toordinal() - table.first
    if 0 <= index < len(table.working):
        wanted = table.before[index] - days
        if wanted >= 0:
            return date.fromordinal(table.ordinals[wanted])
    current = anchor
    for _ in range(days):
        current -= _ONE_DAY
        while not is_working_day(current):
            current -= _ONE_DAY
    return current


def last_of_working_days_beginning_with(start: date, days: int) -> date:
    """The last day of "N working days beginning with" ``start``.

    ``start`` is the first of them when it is a working day; otherwise the first working
    day after it is.
    """
    if days < 1:
        raise CalendarError(f"a period of {days} working days has no last day: use 1+")
    first = start if is_working_day(start) else next_working_day(start)
    return working_days_after(first, days - 1)


def count_working_days(first: date, last: date) -> int:
    """How many working days there are from ``first`` to ``last``, both included."""
    if last < first:
        return 0
    table = _table()
    start = first.toordinal() - table.first
    end = last.toordinal() - table.first
    if start >= 0 and end < len(table.working):
        return table.before[end + 1] - table.before[start]
    total = 0
    current = first
    while current <= last:
        if is_working_day(current):
            total += 1
        current += _ONE_DAY
    return total
