"""Every intake rule, through the application layer with the in-memory store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from intake_support import NOW, FixedClock

from intake.application.service import IntakeService, new_case_id
from intake.domain import (
    AssignCoordinator,
    CaseNotFound,
    CoordinatorChanged,
    CorrectRequest,
    ImpossibleTransition,
    InvalidCommand,
    ReceiveRequest,
    RecordDecision,
    RecordTimeLimitException,
    Status,
    WithdrawRequest,
)
from sendkit.logging import correlation_scope
from sendkit.store import InMemoryEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

RECEIVED = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)


def receive_command(**changes: Any) -> ReceiveRequest:
    command = ReceiveRequest(
        case_id=new_case_id(),
        requester_type="parent",
        child_reference="CHILD-0001",
        date_of_birth=date(2016, 5, 14),
        school_urn=123456,
        curriculum_year=3,
        channel="email",
        received_at=RECEIVED,
        child_name="Sam Example",
        requester_name="Alex Example",
    )
    return replace(command, **changes)


def open_case(service: IntakeService, **changes: Any) -> str:
    command = receive_command(**changes)
    service.handle(command)
    return command.case_id


def fields_of(error: pytest.ExceptionInfo[InvalidCommand]) -> list[str]:
    return [field for field, _ in error.value.field_errors]


def types_of(store: InMemoryEventStore, case_id: str) -> list[str]:
    return [event.type.split(".")[2] for event in store.read_stream(case_id)]


# Receiving a request ------------------------------------------------------------------


def test_a_request_publishes_only_the_public_facts(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    (event,) = store.read_stream(case_id)
    assert event.type == "send.intake.RequestReceived.v1"
    assert event.data == {
        "case_id": case_id,
        "requester_type": "parent",
        "channel": "email",
        "received_at": "2025-01-06T09:30:00Z",
        "school_urn": 123456,
        "curriculum_year": 3,
    }
    assert event.private == {
        "child_reference": "CHILD-0001",
        "date_of_birth": "2016-05-14",
        "child_name": "Sam Example",
        "requester_name": "Alex Example",
    }


def test_the_received_timestamp_is_kept_in_utc(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    summer = timezone(timedelta(hours=1))
    case_id = open_case(service, received_at=datetime(2024, 7, 1, 8, 15, tzinfo=summer))

    assert store.read_stream(case_id)[0].data["received_at"] == "2024-07-01T07:15:00Z"


def test_a_timestamp_without_a_time_zone_is_refused(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, received_at=datetime(2025, 1, 6, 9, 30))  # noqa: DTZ001

    assert fields_of(error) == ["received_at"]
    assert store.last_position() == 0


def test_a_timestamp_in_the_future_is_refused(service: IntakeService) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, received_at=NOW + timedelta(seconds=1))

    assert fields_of(error) == ["received_at"]
    assert "future" in error.value.field_errors[0][1]


def test_a_request_dated_before_ehc_assessments_existed_blames_its_own_date(
    service: IntakeService,
) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, received_at=datetime(1900, 1, 1, 9, 0, tzinfo=UTC))

    # Not date_of_birth, which is after such a day but is not what is wrong.
    assert fields_of(error) == ["received_at"]
    assert "2014-09-01" in error.value.field_errors[0][1]


def test_a_request_received_this_very_moment_is_accepted(
    service: IntakeService,
) -> None:
    case_id = open_case(service, received_at=NOW)

    assert service.case(case_id).case.received_at == NOW


@pytest.mark.parametrize("urn", [99999, 1000000, 0, -123456, True])
def test_a_urn_outside_six_digits_is_refused(service: IntakeService, urn: int) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, school_urn=urn)

    assert fields_of(error) == ["school_urn"]


@pytest.mark.parametrize("urn", [100000, 999999])
def test_the_extreme_urns_are_accepted(service: IntakeService, urn: int) -> None:
    assert service.case(open_case(service, school_urn=urn)).case.school_urn == urn


@pytest.mark.parametrize("year", [-3, 15, 100])
def test_a_curriculum_year_out_of_range_is_refused(
    service: IntakeService, year: int
) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, curriculum_year=year)

    assert fields_of(error) == ["curriculum_year"]


@pytest.mark.parametrize("year", [-2, 0, 14])
def test_nursery_reception_and_post_19_years_are_accepted(
    service: IntakeService, year: int
) -> None:
    assert (
        service.case(open_case(service, curriculum_year=year)).case.curriculum_year
        == year
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requester_type", "grandparent"),
        ("channel", "fax"),
        ("child_reference", ""),
        ("child_reference", "has spaces"),
        ("child_name", "   "),
    ],
)
def test_unknown_codes_and_bad_references_are_refused(
    service: IntakeService, field: str, value: str
) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, **{field: value})

    assert fields_of(error) == [field]


def test_a_birth_after_the_request_is_refused(service: IntakeService) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, date_of_birth=date(2025, 1, 7))

    assert fields_of(error) == ["date_of_birth"]


def test_a_young_person_of_25_on_the_day_is_refused_and_24_accepted(
    service: IntakeService,
) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, date_of_birth=date(2000, 1, 6))
    assert fields_of(error) == ["date_of_birth"]

    assert open_case(service, date_of_birth=date(2000, 1, 7))


def test_every_bad_field_is_named_at_once(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    with pytest.raises(InvalidCommand) as error:
        open_case(service, school_urn=12, curriculum_year=20, channel="fax")

    assert fields_of(error) == ["channel", "school_urn", "curriculum_year"]
    assert store.last_position() == 0


def test_a_case_takes_one_request_only(service: IntakeService) -> None:
    command = receive_command()
    service.handle(command)

    with pytest.raises(ImpossibleTransition):
        service.handle(command)


def test_events_name_the_actor_correlation_and_command(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    with correlation_scope("corr-intake-1"):
        case_id = open_case(service)
        service.handle(AssignCoordinator(case_id, "ehcco-7"), actor="manager-2")

    received, assigned = store.read_stream(case_id)
    assert received.metadata.actor == "system"
    assert assigned.metadata.actor == "manager-2"
    assert received.metadata.correlation_id == "corr-intake-1"
    assert assigned.metadata.correlation_id == "corr-intake-1"
    assert received.metadata.causation_id
    assert received.metadata.causation_id != assigned.metadata.causation_id


# Coordinators -------------------------------------------------------------------------


def test_assigning_then_reassigning_names_the_previous_coordinator(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    service.handle(AssignCoordinator(case_id, "ehcco-1"))
    service.handle(AssignCoordinator(case_id, "ehcco-2"))

    first, second = store.read_stream(case_id)[1:]
    assert first.data == {
        "case_id": case_id,
        "coordinator_id": "ehcco-1",
        "previous_coordinator_id": None,
    }
    assert second.data["previous_coordinator_id"] == "ehcco-1"
    assert service.case(case_id).case.coordinator_id == "ehcco-2"


def test_assigning_the_same_coordinator_again_records_nothing(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(AssignCoordinator(case_id, "ehcco-1"))

    answer = service.handle(AssignCoordinator(case_id, "ehcco-1"))

    assert answer.recorded == []
    assert answer.body["version"] == 2
    assert len(store.read_stream(case_id)) == 2


def test_a_coordinator_id_must_be_a_pseudonym(service: IntakeService) -> None:
    case_id = open_case(service)

    with pytest.raises(InvalidCommand) as error:
        service.handle(AssignCoordinator(case_id, "Jane Smith"))

    assert fields_of(error) == ["coordinator_id"]


def test_a_closed_case_takes_no_coordinator(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, "refused", date(2025, 2, 10)))

    with pytest.raises(ImpossibleTransition, match="closed"):
        service.handle(AssignCoordinator(case_id, "ehcco-1"))


def test_a_move_from_a_coordinator_skips_a_case_no_longer_theirs(
    service: IntakeService,
) -> None:
    case_id = open_case(service)
    service.handle(AssignCoordinator(case_id, "ehcco-2"))

    with pytest.raises(CoordinatorChanged, match="ehcco-2"):
        service.handle(AssignCoordinator(case_id, "ehcco-3", only_from="ehcco-1"))


def test_all_of_a_coordinators_open_cases_move_at_once(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    theirs = [open_case(service) for _ in range(180)]
    for case_id in theirs:
        service.handle(AssignCoordinator(case_id, "leaving-1"))
    others = [open_case(service) for _ in range(3)]
    for case_id in others:
        service.handle(AssignCoordinator(case_id, "staying-1"))
    service.handle(WithdrawRequest(theirs[0], reason="family moved away"))

    answer = service.reassign_all("leaving-1", "joining-1", actor="manager-1")

    report = answer.body
    assert report["total"] == 179
    assert report["reassigned"] == 179
    assert report["skipped"] == report["failed"] == report["unchanged"] == 0
    assert {row["case_id"] for row in report["cases"]} == set(theirs[1:])
    for case_id in theirs[1:]:
        last = store.read_stream(case_id)[-1]
        assert last.data["coordinator_id"] == "joining-1"
        assert last.data["previous_coordinator_id"] == "leaving-1"
        assert last.metadata.actor == "manager-1"
    assert service.case(theirs[0]).case.coordinator_id == "leaving-1"
    assert all(service.case(c).case.coordinator_id == "staying-1" for c in others)
    assert (
        service.cases(coordinator_id="leaving-1", statuses=[Status.AWAITING_DECISION])
        == []
    )


def test_moving_cases_to_the_same_coordinator_is_refused(
    service: IntakeService,
) -> None:
    with pytest.raises(InvalidCommand) as error:
        service.reassign_all("ehcco-1", "ehcco-1")

    assert fields_of(error) == ["to_coordinator_id"]


# The decision whether to assess -------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "event_type", "status"),
    [
        ("agreed", "AssessmentAgreed", Status.ASSESSMENT_AGREED),
        ("refused", "AssessmentRefused", Status.ASSESSMENT_REFUSED),
    ],
)
def test_a_decision_records_the_day_the_family_was_told(
    service: IntakeService,
    store: InMemoryEventStore,
    outcome: str,
    event_type: str,
    status: Status,
) -> None:
    case_id = open_case(service)

    service.handle(
        RecordDecision(case_id, outcome, date(2025, 2, 14), note="panel view")
    )

    event = store.read_stream(case_id)[-1]
    assert event.type == f"send.intake.{event_type}.v1"
    assert event.data == {"case_id": case_id, "notified_on": "2025-02-14"}
    assert event.private == {"note": "panel view"}
    assert service.case(case_id).case.status is status


def test_a_decision_before_the_london_date_of_the_request_is_refused() -> None:
    # 23:30 UTC on 30 March 2025 is 00:30 on 31 March in London (summer time).
    service = IntakeService(
        InMemoryEventStore(), clock=FixedClock(NOW + timedelta(days=60))
    )
    case_id = open_case(service, received_at=datetime(2025, 3, 30, 23, 30, tzinfo=UTC))

    with pytest.raises(InvalidCommand) as error:
        service.handle(RecordDecision(case_id, "agreed", date(2025, 3, 30)))
    assert fields_of(error) == ["notified_on"]
    assert "2025-03-31" in error.value.field_errors[0][1]

    service.handle(RecordDecision(case_id, "agreed", date(2025, 3, 31)))


def test_a_decision_dated_in_the_future_is_refused_but_today_is_not(
    service: IntakeService,
) -> None:
    case_id = open_case(service)

    with pytest.raises(InvalidCommand) as error:
        service.handle(RecordDecision(case_id, "agreed", date(2025, 3, 11)))
    assert fields_of(error) == ["notified_on"]

    service.handle(RecordDecision(case_id, "agreed", date(2025, 3, 10)))


def test_deciding_twice_is_impossible_and_writes_nothing(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))

    with pytest.raises(ImpossibleTransition, match="already decided"):
        service.handle(RecordDecision(case_id, "refused", date(2025, 2, 15)))

    assert types_of(store, case_id) == ["RequestReceived", "AssessmentAgreed"]


def test_deciding_a_withdrawn_request_is_impossible(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(WithdrawRequest(case_id))

    with pytest.raises(ImpossibleTransition, match="withdrawn"):
        service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))


def test_an_unknown_outcome_is_refused(service: IntakeService) -> None:
    case_id = open_case(service)

    with pytest.raises(InvalidCommand) as error:
        service.handle(RecordDecision(case_id, "maybe", date(2025, 2, 14)))

    assert fields_of(error) == ["outcome"]


def test_commands_on_an_unknown_case_are_not_found(service: IntakeService) -> None:
    missing = new_case_id()

    for command in (
        RecordDecision(missing, "agreed", date(2025, 2, 14)),
        AssignCoordinator(missing, "ehcco-1"),
        WithdrawRequest(missing),
        RecordTimeLimitException(missing, "decision", "c", "illness"),
        CorrectRequest(missing, "received_at", "2025-01-05T10:00:00Z", "typo"),
    ):
        with pytest.raises(CaseNotFound):
            service.handle(command)
    with pytest.raises(CaseNotFound):
        service.case(missing)


# Time-limit exceptions ----------------------------------------------------------------


def test_an_exception_publishes_its_code_and_keeps_the_evidence(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    service.handle(
        RecordTimeLimitException(case_id, "decision", "c", "parent in hospital")
    )

    event = store.read_stream(case_id)[-1]
    assert event.type == "send.intake.TimeLimitExceptionRecorded.v1"
    assert event.data == {"case_id": case_id, "clock": "decision", "reason": "c"}
    assert event.private == {"evidence": "parent in hospital"}
    assert service.case(case_id).case.exceptions == (("decision", "c"),)


@pytest.mark.parametrize(
    ("clock_name", "reason", "evidence", "field"),
    [
        ("decision", "e", "x", "reason"),
        ("annual_review", "a", "x", "clock"),
        ("decision", "a", "  ", "evidence"),
    ],
)
def test_an_exception_needs_a_clock_a_reason_and_evidence(
    service: IntakeService, clock_name: str, reason: str, evidence: str, field: str
) -> None:
    case_id = open_case(service)

    with pytest.raises(InvalidCommand) as error:
        service.handle(RecordTimeLimitException(case_id, clock_name, reason, evidence))

    assert fields_of(error) == [field]


def test_the_no_plan_clock_takes_exceptions_only_once_assessment_is_agreed(
    service: IntakeService,
) -> None:
    case_id = open_case(service)

    with pytest.raises(ImpossibleTransition, match="no_plan_notice"):
        service.handle(
            RecordTimeLimitException(case_id, "no_plan_notice", "a", "summer")
        )

    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))
    service.handle(RecordTimeLimitException(case_id, "no_plan_notice", "a", "summer"))


def test_a_refusal_leaves_only_the_decision_clock_open_to_exceptions(
    service: IntakeService,
) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, "refused", date(2025, 3, 1)))

    with pytest.raises(ImpossibleTransition):
        service.handle(RecordTimeLimitException(case_id, "final_plan", "d", "abroad"))
    service.handle(RecordTimeLimitException(case_id, "decision", "d", "abroad 5 weeks"))


def test_a_withdrawn_case_takes_no_exception(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(WithdrawRequest(case_id))

    with pytest.raises(ImpossibleTransition):
        service.handle(RecordTimeLimitException(case_id, "decision", "c", "illness"))


def test_the_same_exception_is_not_recorded_twice(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(RecordTimeLimitException(case_id, "final_plan", "b", "nursery shut"))

    with pytest.raises(ImpossibleTransition, match="already recorded"):
        service.handle(RecordTimeLimitException(case_id, "final_plan", "b", "again"))
    service.handle(RecordTimeLimitException(case_id, "final_plan", "c", "illness"))


# Withdrawal ---------------------------------------------------------------------------


def test_a_withdrawal_is_dated_today_in_london_by_default(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    service.handle(WithdrawRequest(case_id, reason="family's choice"))

    event = store.read_stream(case_id)[-1]
    assert event.data == {"case_id": case_id, "withdrawn_on": "2025-03-10"}
    assert event.private == {"reason": "family's choice"}
    assert service.case(case_id).case.status is Status.WITHDRAWN


def test_a_request_being_assessed_can_be_withdrawn(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))

    service.handle(WithdrawRequest(case_id, withdrawn_on=date(2025, 3, 1)))

    assert service.case(case_id).case.withdrawn_on == date(2025, 3, 1)


@pytest.mark.parametrize("withdrawn_on", [date(2025, 1, 5), date(2025, 3, 11)])
def test_a_withdrawal_is_dated_between_the_request_and_today(
    service: IntakeService, withdrawn_on: date
) -> None:
    case_id = open_case(service)

    with pytest.raises(InvalidCommand) as error:
        service.handle(WithdrawRequest(case_id, withdrawn_on=withdrawn_on))

    assert fields_of(error) == ["withdrawn_on"]


def test_only_an_open_request_can_be_withdrawn(service: IntakeService) -> None:
    withdrawn = open_case(service)
    service.handle(WithdrawRequest(withdrawn))
    refused = open_case(service)
    service.handle(RecordDecision(refused, "refused", date(2025, 2, 1)))

    for case_id in (withdrawn, refused):
        with pytest.raises(ImpossibleTransition):
            service.handle(WithdrawRequest(case_id))


# Corrections --------------------------------------------------------------------------


def test_correcting_the_received_timestamp_says_what_changed(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    service.handle(
        CorrectRequest(
            case_id, "received_at", "2025-01-03T16:45:00+00:00", "date stamp"
        )
    )

    event = store.read_stream(case_id)[-1]
    assert event.type == "send.intake.RequestCorrected.v1"
    assert event.data == {
        "case_id": case_id,
        "field": "received_at",
        "old_value": "2025-01-06T09:30:00Z",
        "new_value": "2025-01-03T16:45:00Z",
    }
    assert event.private == {"reason": "date stamp"}
    assert service.case(case_id).case.received_at == datetime(
        2025, 1, 3, 16, 45, tzinfo=UTC
    )
    # History is kept: the first event still says what was first recorded.
    assert store.read_stream(case_id)[0].data["received_at"] == "2025-01-06T09:30:00Z"


def test_correcting_a_decisions_date(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))

    service.handle(CorrectRequest(case_id, "notified_on", "2025-02-12", "letter date"))

    assert store.read_stream(case_id)[-1].data == {
        "case_id": case_id,
        "field": "notified_on",
        "old_value": "2025-02-14",
        "new_value": "2025-02-12",
    }
    assert service.case(case_id).case.notified_on == date(2025, 2, 12)


def test_there_is_no_decision_date_to_correct_before_a_decision(
    service: IntakeService,
) -> None:
    case_id = open_case(service)

    with pytest.raises(ImpossibleTransition, match="no decision"):
        service.handle(CorrectRequest(case_id, "notified_on", "2025-02-12", "typo"))


@pytest.mark.parametrize(
    ("field", "new_value"),
    [
        ("received_at", "2025-01-06T09:30:00Z"),  # the value already recorded
        ("received_at", "2025-01-06 09:30"),  # no time zone
        ("received_at", "yesterday"),
        ("received_at", "2025-03-10T12:00:01Z"),  # in the future
        ("received_at", "2025-02-15T09:00:00Z"),  # after the decision
        ("notified_on", "2025-01-05"),  # before the request
        ("notified_on", "2025-03-11"),  # in the future
        ("notified_on", "14/02/2025"),
    ],
)
def test_a_correction_to_an_impossible_value_is_refused(
    service: IntakeService, store: InMemoryEventStore, field: str, new_value: str
) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))
    before = store.last_position()

    with pytest.raises(InvalidCommand) as error:
        service.handle(CorrectRequest(case_id, field, new_value, "checked the post"))

    assert fields_of(error) == ["new_value"]
    assert store.last_position() == before


def test_a_correction_needs_a_known_field_and_a_reason(service: IntakeService) -> None:
    case_id = open_case(service)

    with pytest.raises(InvalidCommand) as error:
        service.handle(CorrectRequest(case_id, "school_urn", "100001", ""))

    assert fields_of(error) == ["field", "reason"]


def test_a_corrected_received_date_bounds_the_decision(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(
        CorrectRequest(case_id, "received_at", "2025-02-03T10:00:00Z", "late")
    )

    with pytest.raises(InvalidCommand):
        service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 1)))
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 3)))


def test_a_withdrawn_case_can_still_be_corrected(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(WithdrawRequest(case_id))

    service.handle(
        CorrectRequest(case_id, "received_at", "2025-01-02T10:00:00Z", "typo")
    )

    assert service.case(case_id).case.received_at == datetime(
        2025, 1, 2, 10, tzinfo=UTC
    )


# Reading ------------------------------------------------------------------------------


def test_a_case_reads_with_its_whole_history(service: IntakeService) -> None:
    case_id = open_case(service)
    service.handle(AssignCoordinator(case_id, "ehcco-1"))
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))

    found = service.case(case_id)

    assert found.case.version == 3
    assert [e.version for e in found.events] == [1, 2, 3]
    assert found.case.child_reference == "CHILD-0001"
    assert found.case.date_of_birth == date(2016, 5, 14)


def test_cases_list_by_coordinator_school_and_status(service: IntakeService) -> None:
    a = open_case(service, school_urn=111111, received_at=RECEIVED)
    b = open_case(service, school_urn=222222, received_at=RECEIVED + timedelta(days=1))
    c = open_case(service, school_urn=111111, received_at=RECEIVED + timedelta(days=2))
    service.handle(AssignCoordinator(a, "ehcco-1"))
    service.handle(AssignCoordinator(b, "ehcco-1"))
    service.handle(RecordDecision(b, "agreed", date(2025, 2, 14)))
    service.handle(WithdrawRequest(c))

    def ids(**filters: Any) -> list[str]:
        return [summary.case_id for summary in service.cases(**filters)]

    assert ids() == [a, b, c]
    assert ids(coordinator_id="ehcco-1") == [a, b]
    assert ids(school_urn=111111) == [a, c]
    assert ids(statuses=[Status.ASSESSMENT_AGREED]) == [b]
    assert ids(statuses=[Status.AWAITING_DECISION, Status.WITHDRAWN]) == [a, c]
    assert ids(coordinator_id="ehcco-1", school_urn=111111) == [a]
    assert ids(coordinator_id="nobody") == []


def test_the_case_list_catches_up_with_writes_by_another_process(
    store: InMemoryEventStore, clock: FixedClock
) -> None:
    reader = IntakeService(store, clock=clock)
    writer = IntakeService(store, clock=clock)
    assert reader.cases() == []

    case_id = open_case(writer)

    assert [s.case_id for s in reader.cases()] == [case_id]
    assert reader.index.position == store.last_position()


def test_commands_outside_a_request_each_get_their_own_correlation_id(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    first, second = open_case(service), open_case(service)

    ids = {store.read_stream(c)[0].metadata.correlation_id for c in (first, second)}
    assert len(ids) == 2


def test_one_move_of_many_cases_shares_one_correlation_id(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    cases = [open_case(service) for _ in range(3)]
    for case_id in cases:
        service.handle(AssignCoordinator(case_id, "leaving-2"))

    service.reassign_all("leaving-2", "joining-2")

    moved = {store.read_stream(c)[-1].metadata.correlation_id for c in cases}
    assert len(moved) == 1
