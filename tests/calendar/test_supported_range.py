"""The supported range of dates: where it starts and ends, what is refused outside."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter

from send_schemas.placement import TransferYear
from sendkit import calendar
from sendkit.calendar import (
    SUPPORTED_FROM,
    SUPPORTED_TO,
    CalendarError,
)


def test_the_range_runs_from_part_3_of_the_2014_act_to_the_end_of_2100() -> None:
    assert date(2014, 9, 1) == calendar.SUPPORTED_FROM
    assert date(2100, 12, 31) == calendar.SUPPORTED_TO


def test_the_range_takes_every_transfer_year_the_contract_takes_from_2014() -> None:
    # The contract's phase-transfer years end where the range ends, so the deadlines
    # engine never refuses a schema-valid transfer year for being too late.
    years = TypeAdapter(TransferYear)

    assert years.validate_python(SUPPORTED_TO.year) == SUPPORTED_TO.year
    with pytest.raises(ValueError, match="less than or equal"):
        years.validate_python(SUPPORTED_TO.year + 1)


@pytest.mark.parametrize(
    ("day", "inside"),
    [
        (date(2014, 8, 31), False),
        (SUPPORTED_FROM, True),
        (date(2025, 6, 2), True),
        (SUPPORTED_TO, True),
        (date(2101, 1, 1), False),
        (date.min, False),
        (date.max, False),
    ],
)
def test_a_day_is_inside_the_range_or_refused_naming_it(
    day: date, inside: bool
) -> None:
    problem = calendar.supported_day_problem(day)

    if inside:
        assert problem is None
        assert calendar.supported_day(day) == day
    else:
        assert problem is not None
        assert "from 2014-09-01 to 2100-12-31" in problem
        with pytest.raises(CalendarError, match=day.isoformat()):
            calendar.supported_day(day)


@pytest.mark.parametrize(
    ("moment", "london_day"),
    [
        (datetime(2014, 8, 31, 23, 0, tzinfo=UTC), date(2014, 9, 1)),
        (datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC), date(2100, 12, 31)),
        (
            datetime(2101, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            date(2100, 12, 31),
        ),
    ],
)
def test_a_moment_inside_the_range_has_its_london_date(
    moment: datetime, london_day: date
) -> None:
    assert calendar.supported_moment_problem(moment) is None
    assert calendar.supported_london_date(moment) == london_day


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2014, 8, 31, 22, 59, 59, tzinfo=UTC),
        datetime(2101, 1, 1, 0, 0, tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
    ],
)
def test_a_moment_outside_the_range_is_refused_without_converting_it(
    moment: datetime,
) -> None:
    problem = calendar.supported_moment_problem(moment)

    assert problem is not None
    assert "from 2014-09-01 to 2100-12-31" in problem
    with pytest.raises(CalendarError, match="supported range"):
        calendar.supported_london_date(moment)


def test_a_naive_moment_is_a_problem_not_an_error() -> None:
    problem = calendar.supported_moment_problem(datetime(2025, 1, 6, 9, 30))  # noqa: DTZ001

    assert problem is not None
    assert "no time zone" in problem


@pytest.mark.parametrize(
    "moment",
    [
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))),
    ],
)
def test_london_date_of_a_moment_python_cannot_place_is_a_calendar_error(
    moment: datetime,
) -> None:
    with pytest.raises(CalendarError, match="no London date"):
        calendar.london_date(moment)


def test_the_longest_counts_from_the_last_supported_day_stay_countable() -> None:
    # The rules count at most a couple of years forward and a few months back.
    assert calendar.months_after(SUPPORTED_TO, 24) == date(2102, 12, 31)
    assert calendar.last_of_months_starting_with(SUPPORTED_TO, 12).year == 2101
    assert calendar.working_days_after(SUPPORTED_TO, 60) > SUPPORTED_TO
    assert calendar.working_days_before(SUPPORTED_FROM, 60) < SUPPORTED_FROM


def test_the_latest_planned_day_is_the_horizon_from_today_within_the_range() -> None:
    today = date(2025, 6, 2)

    assert calendar.PLANNING_HORIZON_DAYS == 3 * 365
    assert calendar.latest_planned_day(today) == date(2028, 6, 1)
    assert calendar.latest_planned_day(date(2099, 6, 1)) == SUPPORTED_TO


@pytest.mark.parametrize(
    ("day", "instant"),
    [
        (date(2014, 9, 1), datetime(2014, 8, 31, 23, 0, tzinfo=UTC)),  # BST
        (date(2025, 1, 6), datetime(2025, 1, 6, 0, 0, tzinfo=UTC)),  # GMT
    ],
)
def test_a_london_day_starts_at_its_midnight_in_london(
    day: date, instant: datetime
) -> None:
    assert calendar.london_day_starts_at(day) == instant
