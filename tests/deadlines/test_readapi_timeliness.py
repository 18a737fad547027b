"""The DfE's timeliness figures for a synthetic year whose right answer is known.

The cases of 2025 are made so that each count is known by construction: requests on
Mondays, plans issued a whole number of weeks later, decisions notified likewise. They
go through the engine (``engine.apply``) into clock events, through the read model's
subscriber handlers into a real SQLite and PostgreSQL store, and are counted by
``deadlines.application.timeliness`` directly and through the HTTP app with a token.

Plans issued in 2025 (all requests' final_plan clocks count 20 weeks from the request):

========================================  =====  =================================
Case group                                Cases  Issued
========================================  =====  =================================
``week19``                                5      19 weeks after the request
``week18_excepted`` (exception first)     1      18 weeks: within, but excepted
``week21``                                3      21 weeks: late, within a year
``week25_excepted`` (exception first)     2      25 weeks: late and excepted
``week52``                                1      exactly 52 weeks: within a year
``week53``                                1      53 weeks: after a year
``issued_2024`` / ``issued_2026``         1 + 1  outside the period: not counted
========================================  =====  =================================

Requests received in 2025 and decisions made in it:

========================================  =====  =================================
``agreed_week5``                          4      agreed 5 weeks on (within 6)
``refused_week7``                         2      refused 7 weeks on (over 6)
``agreed_week8``                          1      agreed 8 weeks on (over 6)
``withdrawn``                             1      withdrawn before a decision
``pending`` (received December)           2      no decision yet
``decided_2026`` (received December)      1      agreed in January 2026
``issued_2026`` (received August)         1      agreed 5 weeks on
``late_from_2024`` (received 2024)        1      decided in 2025, 9 weeks on
``met_from_2024`` (received 2024)         1      decided in 2025, 5 weeks on
========================================  =====  =================================
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from test_readapi_queries import Case, fold

from auth_fixtures import Mint
from deadlines.adapters.readmodel_store import read_cases
from deadlines.application.processor import SOURCE
from deadlines.application.timeliness import (
    REQUESTS_COLUMNS,
    TIMELINESS_20_WEEK_COLUMNS,
    percent,
    timeliness,
)
from deadlines.entrypoints.api import create_app
from deadlines.settings import DeadlinesSettings
from devstack.dfe import data_zip_path
from sendkit.calendar import LONDON
from sendkit.store import EventStore
from store_backends import DURABLE, durable_store

PLANS_SCHOOL, REQUESTS_SCHOOL = 100011, 100012
YEAR_FROM, YEAR_TO = date(2025, 1, 1), date(2025, 12, 31)


def weeks(start: date, count: int) -> date:
    return start + timedelta(weeks=count)


def received(case: Case, on: date) -> None:
    at = datetime.combine(on, time(10), LONDON)
    case.request(at.isoformat())


def agreed(case: Case, on: date) -> None:
    case.event("AssessmentAgreed", {"notified_on": on.isoformat()})


def issued(case: Case, on: date) -> None:
    case.event("PlanIssued", {"issued_on": on.isoformat()}, service="plans")


def excepted(case: Case) -> None:
    case.event("TimeLimitExceptionRecorded", {"clock": "final_plan", "reason": "c"})


def group(name: str, count: int, school: int) -> list[Case]:
    return [Case(f"timeliness/{name}/{n}", school, "ehcco-1") for n in range(count)]


def plan_cases() -> list[Case]:
    """Every case of the first table, with its plan issued as the table says."""
    autumn = date(2024, 9, 2)  # a Monday: week 19 is Mon 13 Jan 2025
    made: list[Case] = []
    for name, count, after, exception in (
        ("week19", 5, 19, False),
        ("week18_excepted", 1, 18, True),
        ("week21", 3, 21, False),
        ("week25_excepted", 2, 25, True),
    ):
        for case in group(name, count, PLANS_SCHOOL):
            received(case, autumn)
            agreed(case, weeks(autumn, 5))
            if exception:
                excepted(case)
            issued(case, weeks(autumn, after))
            made.append(case)
    for name, request_on, after in (
        ("week52", date(2024, 1, 15), 52),
        ("week53", date(2024, 1, 8), 53),
        ("issued_2024", date(2024, 8, 5), 21),
    ):
        (case,) = group(name, 1, PLANS_SCHOOL)
        received(case, request_on)
        agreed(case, weeks(request_on, 5))
        issued(case, weeks(request_on, after))
        made.append(case)
    return made


def request_cases() -> list[Case]:
    """Every case of the second table (the one issued in 2026 included)."""
    spring = date(2025, 3, 3)
    made: list[Case] = []
    for name, count, after, outcome in (
        ("agreed_week5", 4, 5, "AssessmentAgreed"),
        ("refused_week7", 2, 7, "AssessmentRefused"),
        ("agreed_week8", 1, 8, "AssessmentAgreed"),
    ):
        for case in group(name, count, REQUESTS_SCHOOL):
            received(case, spring)
            case.event(outcome, {"notified_on": weeks(spring, after).isoformat()})
            made.append(case)
    (withdrawn,) = group("withdrawn", 1, REQUESTS_SCHOOL)
    received(withdrawn, spring)
    withdrawn.event("RequestWithdrawn", {"withdrawn_on": "2025-03-20"})
    made.append(withdrawn)
    for case in group("pending", 2, REQUESTS_SCHOOL):
        received(case, date(2025, 12, 1))
        made.append(case)
    (next_year,) = group("decided_2026", 1, REQUESTS_SCHOOL)
    received(next_year, date(2025, 12, 8))
    agreed(next_year, weeks(date(2025, 12, 8), 5))
    made.append(next_year)
    (issued_later,) = group("issued_2026", 1, REQUESTS_SCHOOL)
    received(issued_later, date(2025, 8, 25))
    agreed(issued_later, weeks(date(2025, 8, 25), 5))
    issued(issued_later, weeks(date(2025, 8, 25), 19))
    made.append(issued_later)
    for name, request_on, after in (
        ("late_from_2024", date(2024, 11, 4), 9),
        ("met_from_2024", date(2024, 12, 2), 5),
    ):
        (case,) = group(name, 1, REQUESTS_SCHOOL)
        received(case, request_on)
        agreed(case, weeks(request_on, after))
        made.append(case)
    return made


PLANS_2025 = {
    "plans_issued_den": 13,
    "plans_issued_den_ex": 10,
    "plans_issued_within_20_weeks": 6,
    "plans_issued_20_weeks_ex": 5,
    "pc_plans_issued_within_20_weeks": 46.2,
    "PC_plans_issued_20_weeks_ex": 50.0,
    "plans_issued_gt20weeks_ltYear": 6,
    "plans_issued_gt20weeks_ltYear_ex": 4,
    "pc_plans_issued_gt20weeks_ltYear": 46.2,
    "PC_plans_issued_gt20weeks_ltYear_ex": 40.0,
    "plans_issued_gt_1_year": 1,
    "plans_issued_gt_1_year_ex": 1,
    "pc_plans_issued_gt_1_year": 7.7,
    "PC_plans_issued_gt_1_year_ex": 10.0,
}
"""The first table's answer: 5 + 1 within, 3 + 2 + 1 within a year, 1 after."""

REQUESTS_2025 = {
    "requests_received_in_year": 12,
    "requests_decided_to_assess": 7,
    "requests_decided_not_to_assess": 2,
    "requests_decision_not_made": 2,
    "requests_withdrawn": 1,
    "request_assess_pc": 58.3,
    "request_not_assess_pc": 16.7,
    "request_outstanding_pc": 16.7,
    "request_withdrawn_pc": 8.3,
    "request_outcome_six_weeks": 6,
    "request_outcome_over_6_weeks": 4,
    "request_outcome_six_weeks_pc": 60.0,
    "request_outcome_over_6_weeks_pc": 40.0,
}
"""The second table's answer: 4 + 1 + 1 + 1 agreed of 12 received; decisions of
2025 within 6 weeks 4 + 1 + 1, after 6 weeks 2 + 1 + 1."""


@pytest.fixture(scope="module", params=DURABLE)
def year_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EventStore]:
    """The synthetic year's read model, on SQLite and on PostgreSQL."""
    place = tmp_path_factory.mktemp("timeliness")
    with durable_store(request.param, place, SOURCE) as store:
        fold(store, [*plan_cases(), *request_cases()])
        yield store


@pytest.fixture
def client(year_store: EventStore, auth_env: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(DeadlinesSettings(), store=year_store, projector=False)
    with TestClient(app) as test_client:
        yield test_client


def test_the_synthetic_year_counts_as_constructed(year_store: EventStore) -> None:
    figures = timeliness(read_cases(year_store), first=YEAR_FROM, last=YEAR_TO)

    assert figures.timeliness_20_week == PLANS_2025
    assert figures.requests == REQUESTS_2025
    assert figures.cases == 28


def test_the_outcomes_of_the_requests_received_add_up(year_store: EventStore) -> None:
    found = timeliness(read_cases(year_store), first=YEAR_FROM, last=YEAR_TO).requests

    outcomes = (
        "requests_decided_to_assess",
        "requests_decided_not_to_assess",
        "requests_decision_not_made",
        "requests_withdrawn",
    )
    assert (
        sum(found[name] or 0 for name in outcomes) == found["requests_received_in_year"]
    )


def test_a_period_of_one_day_counts_only_what_happened_on_it(
    year_store: EventStore,
) -> None:
    # Mon 13 Jan 2025: the five week-19 plans, and the two plans of 52 and 53 weeks.
    day = date(2025, 1, 13)

    figures = timeliness(read_cases(year_store), first=day, last=day)

    assert figures.timeliness_20_week["plans_issued_den"] == 7
    assert figures.timeliness_20_week["plans_issued_within_20_weeks"] == 5
    assert figures.timeliness_20_week["plans_issued_gt20weeks_ltYear"] == 1
    assert figures.timeliness_20_week["plans_issued_gt_1_year"] == 1
    assert figures.requests["requests_received_in_year"] == 0


def test_an_empty_period_has_no_percentages() -> None:
    figures = timeliness([], first=YEAR_FROM, last=YEAR_TO)

    assert figures.timeliness_20_week["plans_issued_den"] == 0
    assert figures.timeliness_20_week["pc_plans_issued_within_20_weeks"] is None
    assert figures.requests["request_outcome_six_weeks_pc"] is None
    assert figures.as_csv().splitlines()[1].split(",")[4] == "0"
    assert "z" in figures.as_csv().splitlines()[1].split(",")


@pytest.mark.parametrize(
    ("part", "whole", "shown"),
    [
        (1, 8, 12.5),
        (1, 16, 6.3),  # 6.25: half up, where round() would give 6.2
        (1, 3, 33.3),
        (2, 3, 66.7),
        (0, 5, 0.0),
        (7, 7, 100.0),
    ],
)
def test_percentages_round_half_up_to_one_decimal(
    part: int, whole: int, shown: float
) -> None:
    assert percent(part, whole) == shown


def test_the_http_report_with_a_managers_token_gives_the_same_answer(
    client: TestClient, mint: Mint
) -> None:
    answer = client.get(
        "/timeliness",
        params={"from": "2025-01-01", "to": "2025-12-31"},
        headers=mint("mgr-1", ["team_manager"]),
    )

    assert answer.status_code == 200
    body = answer.json()
    assert (body["from"], body["to"], body["cases"]) == ("2025-01-01", "2025-12-31", 28)
    assert body["timeliness_20_week"] == PLANS_2025
    assert body["requests"] == REQUESTS_2025


def test_the_csv_report_has_the_dfe_columns_and_the_same_figures(
    client: TestClient, mint: Mint
) -> None:
    answer = client.get(
        "/timeliness",
        params={"from": "2025-01-01", "to": "2025-12-31", "format": "csv"},
        headers=mint("auditor-1", ["auditor"]),
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert (
        "timeliness_2025-01-01_2025-12-31.csv" in answer.headers["content-disposition"]
    )
    (row,) = list(csv.DictReader(io.StringIO(answer.text)))
    expected = {"period_from": "2025-01-01", "period_to": "2025-12-31"}
    expected |= {name: str(value) for name, value in PLANS_2025.items()}
    expected |= {name: str(value) for name, value in REQUESTS_2025.items()}
    assert row == expected
    assert list(row) == [
        "period_from",
        "period_to",
        *TIMELINESS_20_WEEK_COLUMNS,
        *REQUESTS_COLUMNS,
    ]


def test_a_senco_counts_only_their_own_schools_cases(
    client: TestClient, mint: Mint
) -> None:
    answer = client.get(
        "/timeliness",
        params={"from": "2025-01-01", "to": "2025-12-31"},
        headers=mint("senco-1", ["senco"], school_urns=[REQUESTS_SCHOOL]),
    )

    body = answer.json()
    assert answer.status_code == 200
    assert body["timeliness_20_week"]["plans_issued_den"] == 0
    assert body["requests"] == REQUESTS_2025
    assert body["cases"] == 14


def published_header(name: str) -> list[str]:
    """The header row of one CSV of the DfE's release, as published."""
    with (
        zipfile.ZipFile(data_zip_path()) as archive,
        archive.open(f"data/{name}") as raw,
    ):
        return next(csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig")))


def test_the_published_column_names_are_mirrored_exactly() -> None:
    published_20_week = published_header("timeliness_20_week.csv")
    published_requests = published_header("requests.csv")

    # Every measure of the 20-week file, in its order, after its 12 dimension columns.
    assert published_20_week[12:] == list(TIMELINESS_20_WEEK_COLUMNS)
    # The measures of requests.csv that clock events can count, in its order.
    assert [c for c in published_requests if c in REQUESTS_COLUMNS] == list(
        REQUESTS_COLUMNS
    )
    assert set(published_requests[12:]) - set(REQUESTS_COLUMNS) == {
        "requests_rya",
        "mediation_related_request",
        "tribunal_related_request",
        "tribunal_after_mediation_request",
    }


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"from": "2025-06-01", "to": "2025-05-31"}, "to", "before it starts"),
        ({"from": "2022-01-01", "to": "2025-01-01"}, "to", "at most 1096 days"),
        ({"to": "2025-12-31"}, "from", ""),
        ({"from": "2025-01-01"}, "to", ""),
        ({"from": "1 January", "to": "2025-12-31"}, "from", ""),
        ({"from": "2025-01-01", "to": "2025-12-31", "format": "xlsx"}, "format", ""),
    ],
)
def test_bad_periods_are_422_problems_naming_the_field(
    client: TestClient, mint: Mint, params: dict[str, str], field: str, says: str
) -> None:
    answer = client.get(
        "/timeliness", params=params, headers=mint("mgr-1", ["team_manager"])
    )

    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert field in [error["field"].split(".")[-1] for error in problem["errors"]]
    assert says in problem["detail"]


def test_three_years_to_the_day_are_accepted(client: TestClient, mint: Mint) -> None:
    answer = client.get(
        "/timeliness",
        params={"from": "2023-01-01", "to": "2025-12-31"},
        headers=mint("mgr-1", ["team_manager"]),
    )

    assert answer.status_code == 200
    # The plans issued in 2024 and 2025 (the one of 2026 is still outside).
    assert answer.json()["timeliness_20_week"]["plans_issued_den"] == 14
