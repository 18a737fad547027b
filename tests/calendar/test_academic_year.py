"""School years: year groups move up on 1 September."""

from __future__ import annotations

from datetime import date

import pytest

from sendkit.calendar import academic_year, academic_year_start


@pytest.mark.parametrize(
    ("day", "year"),
    [
        (date(2025, 8, 31), 2024),
        (date(2025, 9, 1), 2025),
        (date(2025, 12, 31), 2025),
        (date(2026, 1, 1), 2025),
        (date(2024, 2, 29), 2023),
    ],
)
def test_the_school_year_of_a_day(day: date, year: int) -> None:
    assert academic_year(day) == year


def test_a_school_year_starts_on_the_first_of_september() -> None:
    assert academic_year_start(2025) == date(2025, 9, 1)
    assert academic_year(academic_year_start(2025)) == 2025
