"""The bank-holiday data file against the ``holidays`` package, year by year."""

from __future__ import annotations

import csv
import io
from datetime import date
from importlib import resources

import holidays
import pytest

from sendkit import calendar

YEARS = range(2015, 2031)


def _file_days() -> dict[int, set[date]]:
    text = (
        resources.files("sendkit")
        .joinpath("data", "bank-holidays-england-and-wales.csv")
        .read_text("utf-8")
    )
    lines = (line for line in io.StringIO(text) if not line.startswith("#"))
    by_year: dict[int, set[date]] = {}
    for row in csv.DictReader(lines):
        day = date.fromisoformat(row["date"])
        assert row["title"], f"{day} has no title"
        by_year.setdefault(day.year, set()).add(day)
    return by_year


def _package_days(year: int) -> set[date]:
    found = holidays.country_holidays("GB", subdiv="ENG", years=year)
    return {day for day in found if day.weekday() < 5}


def test_the_file_covers_2015_to_2030() -> None:
    assert sorted(_file_days()) == list(YEARS)
    assert calendar.bank_holiday_file_years() == YEARS


@pytest.mark.parametrize("year", YEARS)
def test_file_and_package_agree(year: int) -> None:
    assert _file_days()[year] == _package_days(year)
    assert calendar.bank_holidays(year) == frozenset(_file_days()[year])


@pytest.mark.parametrize("year", YEARS)
def test_every_bank_holiday_is_a_weekday(year: int) -> None:
    assert all(day.weekday() < 5 for day in calendar.bank_holidays(year))


@pytest.mark.parametrize(
    ("year", "count"),
    [(year, 8) for year in YEARS if year not in (2022, 2023)] + [(2022, 10), (2023, 9)],
)
def test_the_number_of_bank_holidays(year: int, count: int) -> None:
    assert len(calendar.bank_holidays(year)) == count


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (date(2020, 5, 8), True),  # VE day: the early May bank holiday moved
        (date(2020, 5, 4), False),
        (date(2022, 6, 2), True),  # spring bank holiday moved for the jubilee
        (date(2022, 6, 3), True),  # the Platinum Jubilee
        (date(2022, 5, 30), False),
        (date(2022, 9, 19), True),  # the state funeral of Queen Elizabeth II
        (date(2023, 5, 8), True),  # the coronation of King Charles III
        (date(2027, 12, 27), True),  # Christmas Day's substitute
        (date(2027, 12, 28), True),  # Boxing Day's substitute
    ],
)
def test_the_special_days(day: date, holiday: bool) -> None:
    assert calendar.is_bank_holiday(day) is holiday


def test_the_lists_of_the_statutory_clocks_page() -> None:
    assert calendar.bank_holidays(2025) == {
        date(2025, 1, 1),
        date(2025, 4, 18),
        date(2025, 4, 21),
        date(2025, 5, 5),
        date(2025, 5, 26),
        date(2025, 8, 25),
        date(2025, 12, 25),
        date(2025, 12, 26),
    }
    assert calendar.bank_holidays(2026) == {
        date(2026, 1, 1),
        date(2026, 4, 3),
        date(2026, 4, 6),
        date(2026, 5, 4),
        date(2026, 5, 25),
        date(2026, 8, 31),
        date(2026, 12, 25),
        date(2026, 12, 28),
    }


def test_years_outside_the_file_come_from_the_package() -> None:
    assert calendar.bank_holidays(2031) == frozenset(_package_days(2031))
    assert date(2031, 12, 25) in calendar.bank_holidays(2031)
