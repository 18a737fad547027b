"""The demo caseload: shaped like the figures, deterministic, consistent, synthetic.

Outcomes and timeliness are apportioned to the published counts, so each generated
count is within one of its exact share and each share within ``1 / n`` of the target
(``quota_tolerance``). The mixes the generator draws at random (requester, time of day)
are checked against their assumed shares within four binomial standard errors of the
sample size (``binomial_tolerance``). The tolerances are computed from the sample, not
chosen to pass.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from devstack.demo_data import (
    CHILD_FAMILY_NAME,
    CHILD_GIVEN_NAMES,
    DEMO_SCHOOLS,
    DEMO_SENCOS,
    DEMO_STAFF,
    LATE_BY_AT_MOST,
    OFFICE_HOURS,
    REQUESTER_UNDER_16,
    STAFF_CSV_COLUMNS,
    STAFF_DOMAIN,
    TIME_OF_DAY_WEIGHTS,
    PlannedCase,
    age_on,
    apportion,
    curriculum_year_for,
    generate_caseload,
    read_staff_csv,
    summarise,
    write_staff_csv,
)
from devstack.dfe import DemoDataError, LaFigures, load_la_figures
from intake.entrypoints.api_models import (
    AssignCoordinatorBody,
    DecisionBody,
    ReceiveRequestBody,
    TimeLimitExceptionBody,
    WithdrawalBody,
)
from send_schemas import intake as contract
from sendkit.calendar import LONDON, is_working_day

YEAR = 2024
RUNS = [(1.0, 825), (0.05, 825), (0.05, 7), (0.25, 2024)]


@cache
def figures() -> LaFigures:
    return load_la_figures("825", YEAR)


@cache
def caseload(scale: float, seed: int) -> tuple[PlannedCase, ...]:
    return tuple(generate_caseload(figures(), YEAR, scale, seed))


def quota_tolerance(n: int) -> float:
    """An apportioned count is within 1 of ``n * share``, so its share within 1 / n."""
    return 1 / n


def binomial_tolerance(p: float, n: int, z: float = 4.0) -> float:
    return z * math.sqrt(p * (1 - p) / n)


def decided_in_year(case: PlannedCase) -> bool:
    return (
        case.decision_notified_on is not None and case.decision_notified_on.year == YEAR
    )


# The shape


def test_scale_sets_the_number_of_requests() -> None:
    assert len(caseload(1.0, 825)) == 1782
    assert len(caseload(0.05, 825)) == round(1782 * 0.05) == 89


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_outcomes_at_the_year_end_match_the_published_shares(
    scale: float, seed: int
) -> None:
    cases = caseload(scale, seed)
    published = figures().requests
    n = len(cases)
    tolerance = quota_tolerance(n)

    agreed = sum(c.outcome == "agreed" and decided_in_year(c) for c in cases)
    refused = sum(c.outcome == "refused" and decided_in_year(c) for c in cases)
    undecided = sum(c.outstanding_at_year_end for c in cases)
    withdrawn = sum(c.outcome == "withdrawn" for c in cases)

    received = published.received
    assert abs(agreed / n - published.decided_to_assess / received) <= tolerance
    assert abs(refused / n - published.refused_share) <= tolerance
    assert abs(undecided / n - published.decision_not_made / received) <= tolerance
    assert abs(withdrawn / n - published.withdrawn / received) <= tolerance


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_the_share_decided_within_6_weeks_matches(scale: float, seed: int) -> None:
    cases = caseload(scale, seed)
    decided = [c for c in cases if c.decided]

    within = sum(c.within_time is True for c in decided) / len(decided)

    target = figures().requests.within_6_weeks_share
    assert abs(within - target) <= quota_tolerance(len(decided))
    assert summarise(cases).decided_late == sum(c.within_time is False for c in decided)


def test_the_full_year_reproduces_the_published_92_point_2_percent() -> None:
    summary = summarise(caseload(1.0, 825))

    assert round(100 * summary.within_6_weeks_share, 1) == 92.2
    assert summary.outstanding_at_year_end == 109
    assert summary.withdrawn == 98


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_ages_follow_the_published_age_breakdown(scale: float, seed: int) -> None:
    cases = caseload(scale, seed)
    by_age = figures().requests.by_age
    total = sum(by_age.values())

    def label(age: int) -> str:
        if age <= 2:
            return "Aged 2 and under"
        if age >= 20:
            return "Aged 20 and over"
        return f"Aged {age}"

    for name, published in by_age.items():
        count = sum(label(c.age_at_request) == name for c in cases)
        assert abs(count - len(cases) * published / total) < 1, name


def test_requesters_of_under_16s_follow_the_assumed_mix() -> None:
    under_16 = [c for c in caseload(1.0, 825) if c.age_at_request < 16]
    p = REQUESTER_UNDER_16["parent"]

    parents = sum(c.requester == "parent" for c in under_16) / len(under_16)

    assert abs(parents - p) <= binomial_tolerance(p, len(under_16))
    assert not any(c.requester == "young_person" for c in under_16)


def test_some_requests_arrive_at_night_and_at_weekends() -> None:
    cases = caseload(1.0, 825)
    local = [c.received_at.astimezone(LONDON) for c in cases]
    on_working_days = [t for t in local if is_working_day(t.date())]
    p = 1 - TIME_OF_DAY_WEIGHTS["office"]

    out_of_hours = [
        t for t in on_working_days if not OFFICE_HOURS[0] <= t.time() < OFFICE_HOURS[1]
    ]

    share = len(out_of_hours) / len(on_working_days)
    assert abs(share - p) <= binomial_tolerance(p, len(on_working_days))
    assert any(t.hour < 6 for t in out_of_hours)
    assert 0 < len(local) - len(on_working_days) < len(on_working_days)


def test_a_few_late_decisions_carry_a_time_limit_exception() -> None:
    cases = caseload(1.0, 825)
    late = [c for c in cases if c.within_time is False]

    excepted = [c for c in cases if c.exception_reason is not None]

    assert 0 < len(excepted) < len(late) / 2
    assert {c.exception_reason for c in excepted} <= {"a", "c", "d"}
    assert all(c.within_time is False for c in excepted)


# Deterministic


def test_the_same_seed_gives_the_same_year() -> None:
    first = generate_caseload(figures(), YEAR, 0.05, 1234)
    again = generate_caseload(figures(), YEAR, 0.05, 1234)
    other = generate_caseload(figures(), YEAR, 0.05, 1235)

    assert first == again
    assert first != other


# Consistent dates


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_dates_are_consistent(scale: float, seed: int) -> None:
    cases = caseload(scale, seed)

    assert [c.sequence for c in cases] == list(range(1, len(cases) + 1))
    assert [c.received_at for c in cases] == sorted(c.received_at for c in cases)
    for c in cases:
        assert c.received_at.tzinfo is not None
        assert c.received_on.year == YEAR
        assert c.decision_due_on == c.received_on + timedelta(weeks=6)
        closed = c.decision_notified_on or c.withdrawn_on
        assert closed is not None
        assert (c.decision_notified_on is None) == (c.outcome == "withdrawn")
        assert (c.withdrawn_on is None) == (c.outcome != "withdrawn")
        assert closed >= c.received_on, c
        assert is_working_day(closed), c
        assert c.outcome_recorded_at > c.received_at
        assert c.outcome_recorded_at.astimezone(LONDON).date() >= closed
        if c.within_time is False:
            assert closed <= c.decision_due_on + LATE_BY_AT_MOST
        if c.withdrawn_on is not None:
            assert c.withdrawn_on < c.decision_due_on
        if c.exception_noted_on is not None:
            assert c.received_on <= c.exception_noted_on < closed


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_birth_dates_agree_with_age_and_curriculum_year(
    scale: float, seed: int
) -> None:
    for c in caseload(scale, seed):
        assert age_on(c.date_of_birth, c.received_on) == c.age_at_request
        assert c.curriculum_year == curriculum_year_for(c.date_of_birth, c.received_on)
        assert -2 <= c.curriculum_year <= 14


def test_curriculum_years_follow_the_31_august_rule() -> None:
    # Born 1 September 2019: 4 on 31 August 2024, so Reception in 2024/25.
    assert curriculum_year_for(date(2019, 9, 1), date(2024, 10, 1)) == 0
    # Born 31 August 2019: 5 on 31 August 2024, so Year 1.
    assert curriculum_year_for(date(2019, 8, 31), date(2024, 10, 1)) == 1
    # In July 2024 the same child is still in Reception.
    assert curriculum_year_for(date(2019, 8, 31), date(2024, 7, 1)) == 0
    assert curriculum_year_for(date(2023, 1, 1), date(2024, 7, 1)) == -2
    assert curriculum_year_for(date(2000, 1, 1), date(2024, 7, 1)) == 14


def test_the_received_date_is_the_london_date() -> None:
    case = caseload(0.05, 825)[0]

    late_evening = replace(case, received_at=datetime(2025, 3, 30, 23, 30, tzinfo=UTC))

    assert late_evening.received_on == date(2025, 3, 31)


# Synthetic


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_every_person_school_and_reference_is_synthetic(
    scale: float, seed: int
) -> None:
    cases = caseload(scale, seed)
    schools = {school.urn: school for school in DEMO_SCHOOLS}
    staff = {member.staff_id: member for member in DEMO_STAFF}

    assert len({c.child_ref for c in cases}) == len(cases)
    for c in cases:
        assert re.fullmatch(r"C-\d{8}", c.child_ref)
        assert c.child_given_name in CHILD_GIVEN_NAMES
        assert c.child_family_name == CHILD_FAMILY_NAME
        assert "Demo" in schools[c.school_urn].name
        assert 990001 <= c.school_urn <= 999999
        coordinator = staff[c.coordinator_id]
        assert coordinator.role == "coordinator"
        assert coordinator.manager_id == c.manager_id
    for member in DEMO_STAFF:
        assert member.email.endswith("@" + STAFF_DOMAIN)
        assert STAFF_DOMAIN.endswith(".example.org")
        assert member.name.endswith(" Example")


def test_each_coordinator_gets_a_share_of_the_year() -> None:
    cases = caseload(1.0, 825)
    coordinators = [m.staff_id for m in DEMO_STAFF if m.role == "coordinator"]

    loads = [
        sum(c.coordinator_id == staff_id for c in cases) for staff_id in coordinators
    ]

    assert min(loads) > 0
    assert sum(loads) == len(cases)


# Staff directory


def test_the_staff_directory_csv_round_trips(tmp_path: Path) -> None:
    path = write_staff_csv(tmp_path / "staff.csv")

    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    members = read_staff_csv(path)

    assert tuple(header) == STAFF_CSV_COLUMNS
    assert members == list(DEMO_STAFF)
    managers = {m.staff_id for m in members if m.role == "manager"}
    for member in members:
        if member.role == "coordinator":
            assert member.manager_id in managers
        else:
            assert member.manager_id is None


def test_a_staff_csv_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text("id,name,email\nS-1,Alex Example,alex@example.org\n")

    with pytest.raises(DemoDataError, match="must have the columns"):
        read_staff_csv(path)


# Pieces


def test_apportion_keeps_the_total_and_each_part_within_one() -> None:
    weights = {"agreed": 1270.0, "refused": 305.0, "ongoing": 109.0, "withdrawn": 98.0}

    for total in (1, 7, 89, 1782, 10_000):
        parts = apportion(weights, total)
        assert sum(parts.values()) == total
        for key, weight in weights.items():
            assert abs(parts[key] - total * weight / sum(weights.values())) < 1


def test_a_scale_of_zero_is_refused() -> None:
    with pytest.raises(DemoDataError, match="scale"):
        generate_caseload(figures(), YEAR, 0)


def test_the_command_line_writes_the_cases_and_the_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack.demo_data",
            "--scale",
            "0.05",
            "--staff-csv",
            str(tmp_path / "staff.csv"),
            "--jsonl",
            str(tmp_path / "cases.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "columns used:" in done.stdout
    assert "89 requests" in done.stdout
    lines = (tmp_path / "cases.jsonl").read_text().splitlines()
    assert len(lines) == 89
    first = json.loads(lines[0])
    assert first["child_ref"].startswith("C-")
    assert datetime.fromisoformat(first["received_at"]).tzinfo is not None
    staff = read_staff_csv(tmp_path / "staff.csv")
    assert staff == [*DEMO_STAFF, *DEMO_SENCOS]
    assert "66 plans issued, 21 within 20 weeks" in done.stdout


# The intake contract the demo posts to


def test_the_command_bodies_are_valid_for_the_intake_api() -> None:
    cases = caseload(1.0, 825)

    for c in cases:
        received = ReceiveRequestBody.model_validate(c.receive_request_body())
        assert received.received_at == c.received_at
        assert received.requester_type in contract.REQUESTER_TYPES
        assert received.channel in contract.CHANNELS
        AssignCoordinatorBody.model_validate(c.assign_coordinator_body())
        outcome = c.outcome_body()
        if c.outcome == "withdrawn":
            assert WithdrawalBody.model_validate(outcome).withdrawn_on == c.withdrawn_on
        else:
            decision = DecisionBody.model_validate(outcome)
            assert decision.notified_on == c.decision_notified_on
        exception = c.time_limit_exception_body()
        if exception is not None:
            assert TimeLimitExceptionBody.model_validate(exception).clock == "decision"
    assert sum(c.time_limit_exception_body() is not None for c in cases) > 0
