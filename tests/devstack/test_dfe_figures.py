"""The DfE figures read from the release zip agree with the figures its README quotes.

The README beside the zip states Buckinghamshire's and England's 2024 figures in words;
these tests read both the README and the zip and compare them, so a misread column, a
wrong row or a changed file fails here. Without the zip the tests fail (the demo cannot
run without it), saying where it was looked for.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.dfe import (
    DATA_ZIP_ENV,
    DfeDataError,
    LaFigures,
    data_zip_path,
    load_la_figures,
)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def readme() -> str:
    path = data_zip_path().parent / "README.md"
    assert path.is_file(), f"the data README is not at {path}; set {DATA_ZIP_ENV}"
    # Sentences wrap across lines in the README; compare them as one line.
    return " ".join(path.read_text(encoding="utf-8").split())


@pytest.fixture(scope="module")
def bucks() -> LaFigures:
    return load_la_figures("825", 2024)


@pytest.fixture(scope="module")
def england() -> LaFigures:
    return load_la_figures(None, 2024)


def test_buckinghamshire_matches_the_readme(readme: str, bucks: LaFigures) -> None:
    quoted = re.search(
        r"Buckinghamshire \(old code 825\), calendar year 2024, for orientation: "
        r"([\d,]+) requests, ([\d,]+) new plans, ([\d.]+)% of new plans issued within "
        r"20 weeks \(excluding exceptions\), ([\d.]+)% of requests decided within 6 "
        r"weeks, ([\d,]+) plans in January (\d{4}) and ([\d,]+) in January (\d{4})",
        readme,
    )
    assert quoted is not None, "the README's Buckinghamshire sentence has changed"
    requests, plans, in_20, in_6, jan_a, year_a, jan_b, year_b = quoted.groups()

    assert bucks.geography == "Buckinghamshire"
    assert bucks.requests.received == _number(requests)
    assert bucks.new_plans == _number(plans)
    timeliness = bucks.timeliness
    assert round(100 * timeliness.within_20_weeks_share_excl_exceptions, 1) == float(
        in_20
    )
    assert timeliness.published_within_20_weeks_excl_exceptions_pc == float(in_20)
    assert round(100 * bucks.requests.within_6_weeks_share, 1) == float(in_6)
    assert bucks.requests.published_within_6_weeks_pc == float(in_6)
    assert bucks.plans_in_january == {
        int(year_a): _number(jan_a),
        int(year_b): _number(jan_b),
    }


def test_england_matches_the_readme(readme: str, england: LaFigures) -> None:
    quoted = re.search(
        r"England, 2024: ([\d,]+) requests, ([\d,]+) new plans, ([\d.]+)% within 20 "
        r"weeks \(excluding exceptions\), ([\d.]+)% of annual-review decisions sent "
        r"within 4 weeks",
        readme,
    )
    assert quoted is not None, "the README's England sentence has changed"
    requests, plans, in_20, in_4 = quoted.groups()

    assert england.geography == "England"
    assert england.requests.received == _number(requests)
    assert england.new_plans == _number(plans)
    within_20 = england.timeliness.within_20_weeks_share_excl_exceptions
    assert round(100 * within_20, 1) == float(in_20)
    assert england.reviews is not None
    assert round(100 * england.reviews.within_4_weeks_share, 1) == float(in_4)


def test_the_outcomes_add_up_to_the_requests(bucks: LaFigures) -> None:
    r = bucks.requests

    outcomes = r.decided_to_assess + r.decided_not_to_assess
    outcomes += r.decision_not_made + r.withdrawn

    assert outcomes == r.received
    assert round(100 * r.refused_share, 1) == r.published_not_assess_pc
    assert sum(r.by_age.values()) == r.received
    assert "Aged 2 and under" in r.by_age


def test_the_columns_used_are_recorded(bucks: LaFigures) -> None:
    used = set(bucks.columns_used)

    assert ("requests.csv", "requests_received_in_year") in used
    assert ("requests.csv", "requests_decided_not_to_assess") in used
    assert ("requests.csv", "request_outcome_six_weeks") in used
    assert ("timeliness_20_week.csv", "plans_issued_20_weeks_ex") in used
    assert ("newplans.csv", "new_ehc_plans") in used
    assert "columns used:" in bucks.describe()
    assert "requests.csv: request_outcome_over_6_weeks" in bucks.describe()


def test_reviews_exist_only_for_the_year_the_file_covers() -> None:
    earlier = load_la_figures("825", 2023)

    assert earlier.reviews is None
    assert earlier.requests.received > 0


def test_an_unknown_council_is_a_clear_error() -> None:
    with pytest.raises(DfeDataError, match="local authority code"):
        load_la_figures("999", 2024)


def test_a_missing_zip_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DfeDataError, match=DATA_ZIP_ENV):
        load_la_figures("825", 2024, tmp_path / "absent.zip")
