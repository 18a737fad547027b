"""The Local Area Surgery presentation: its rules, its correction, and the case list.

Through the application layer with the in-memory store, as the other intake rules are.
The request of every case here was received on Mon 6 Jan 2025; "now" is Mon 10 Mar 2025.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from intake_support import NOW

from intake.application.service import IntakeService, new_case_id
from intake.domain import (
    CaseNotFound,
    CorrectRequest,
    ImpossibleTransition,
    InvalidCommand,
    ReceiveRequest,
    RecordDecision,
    RecordSurgeryPresentation,
    WithdrawRequest,
)
from send_schemas import intake as contract
from sendkit.store import InMemoryEventStore

RECEIVED = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
PRESENTED = "send.intake.RequestPresentedAtSurgery.v1"
PRESENTATION_CORRECTED = "send.intake.SurgeryPresentationCorrected.v1"


def open_case(service: IntakeService) -> str:
    command = ReceiveRequest(
        case_id=new_case_id(),
        requester_type="parent",
        child_reference="CHILD-0001",
        date_of_birth=date(2016, 5, 14),
        school_urn=123456,
        curriculum_year=3,
        channel="email",
        received_at=RECEIVED,
    )
    service.handle(command)
    return command.case_id


def present(
    case_id: str, day: date, note: str | None = None
) -> RecordSurgeryPresentation:
    return RecordSurgeryPresentation(case_id=case_id, presented_on=day, note=note)


def fields_of(error: pytest.ExceptionInfo[InvalidCommand]) -> list[str]:
    return [field for field, _ in error.value.field_errors]


def refused_without_writing(
    service: IntakeService,
    store: InMemoryEventStore,
    command: object,
    kind: type[Exception],
) -> pytest.ExceptionInfo[Exception]:
    before = store.last_position()
    with pytest.raises(kind) as refused:
        service.handle(command)  # type: ignore[arg-type]
    assert store.last_position() == before
    return refused


# Recording the presentation -----------------------------------------------------------


def test_a_presentation_publishes_only_its_date_and_keeps_the_note(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    service.handle(present(case_id, date(2025, 2, 3), note="Agreed to gather advice."))

    event = store.read_stream(case_id)[-1]
    assert event.type == PRESENTED
    assert event.data == {"case_id": case_id, "presented_on": "2025-02-03"}
    assert event.private == {"note": "Agreed to gather advice."}
    assert contract.parse_intake_event(event.type, event.data) == (
        contract.RequestPresentedAtSurgery(
            case_id=case_id, presented_on=date(2025, 2, 3)
        )
    )
    assert service.case(case_id).case.presented_on == date(2025, 2, 3)


def test_the_day_of_the_request_and_today_are_both_accepted(
    service: IntakeService,
) -> None:
    first, second = open_case(service), open_case(service)

    service.handle(present(first, date(2025, 1, 6)))
    service.handle(present(second, NOW.date()))

    assert service.case(first).case.presented_on == date(2025, 1, 6)
    assert service.case(second).case.presented_on == date(2025, 3, 10)


@pytest.mark.parametrize(
    ("day", "words"),
    [
        (date(2025, 1, 5), "before the request, received on 2025-01-06"),
        (date(2025, 3, 11), "must not be in the future"),
    ],
)
def test_a_presentation_outside_request_to_today_is_refused_naming_the_field(
    service: IntakeService, store: InMemoryEventStore, day: date, words: str
) -> None:
    case_id = open_case(service)

    refused = refused_without_writing(
        service, store, present(case_id, day), InvalidCommand
    )

    assert fields_of(refused) == ["presented_on"]  # type: ignore[arg-type]
    assert words in str(refused.value)


def test_a_blank_note_is_refused_with_the_date_problem_too(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    refused = refused_without_writing(
        service, store, present(case_id, date(2025, 1, 1), note="  "), InvalidCommand
    )

    assert fields_of(refused) == ["presented_on", "note"]  # type: ignore[arg-type]


def test_an_unknown_case_is_not_found(service: IntakeService) -> None:
    with pytest.raises(CaseNotFound):
        service.handle(present(new_case_id(), date(2025, 2, 3)))


def test_presenting_twice_is_impossible_and_points_to_a_correction(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(present(case_id, date(2025, 2, 3)))

    refused = refused_without_writing(
        service, store, present(case_id, date(2025, 2, 10)), ImpossibleTransition
    )

    assert "already presented" in str(refused.value)
    assert "correction of presented_on" in str(refused.value)
    assert service.case(case_id).case.presented_on == date(2025, 2, 3)


def test_a_withdrawn_request_takes_no_presentation(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(WithdrawRequest(case_id=case_id, withdrawn_on=date(2025, 2, 20)))

    refused = refused_without_writing(
        service, store, present(case_id, date(2025, 2, 3)), ImpossibleTransition
    )

    assert "withdrawn" in str(refused.value)


@pytest.mark.parametrize("outcome", ["agreed", "refused"])
def test_a_late_record_after_the_decision_is_accepted_if_dated_before_it(
    service: IntakeService, outcome: str
) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, outcome, date(2025, 2, 14)))

    service.handle(present(case_id, date(2025, 2, 14)))

    assert service.case(case_id).case.presented_on == date(2025, 2, 14)


def test_a_presentation_after_the_decision_is_refused(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 14)))

    refused = refused_without_writing(
        service, store, present(case_id, date(2025, 2, 17)), InvalidCommand
    )

    assert fields_of(refused) == ["presented_on"]  # type: ignore[arg-type]
    assert "after the decision, notified on 2025-02-14" in str(refused.value)


def test_a_decision_or_withdrawal_dated_before_the_presentation_is_refused(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    decided, withdrawn = open_case(service), open_case(service)
    service.handle(present(decided, date(2025, 2, 10)))
    service.handle(present(withdrawn, date(2025, 2, 10)))

    decision = refused_without_writing(
        service,
        store,
        RecordDecision(decided, "agreed", date(2025, 2, 7)),
        InvalidCommand,
    )
    withdrawal = refused_without_writing(
        service,
        store,
        WithdrawRequest(withdrawn, withdrawn_on=date(2025, 2, 7)),
        InvalidCommand,
    )

    assert fields_of(decision) == ["notified_on"]  # type: ignore[arg-type]
    assert fields_of(withdrawal) == ["withdrawn_on"]  # type: ignore[arg-type]
    assert "surgery presentation on 2025-02-10" in str(decision.value)


# Correcting its date ------------------------------------------------------------------


def correct(case_id: str, field: str, value: str) -> CorrectRequest:
    return CorrectRequest(case_id, field, value, reason="The minutes had the date.")


def test_correcting_the_presentation_date_publishes_old_and_new_dates(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(present(case_id, date(2025, 2, 24)))

    service.handle(correct(case_id, "presented_on", "2025-02-14"))

    event = store.read_stream(case_id)[-1]
    assert event.type == PRESENTATION_CORRECTED
    assert event.data == {
        "case_id": case_id,
        "field": "presented_on",
        "old_value": "2025-02-24",
        "new_value": "2025-02-14",
    }
    assert event.private == {"reason": "The minutes had the date."}
    assert service.case(case_id).case.presented_on == date(2025, 2, 14)
    # RequestCorrected keeps its published enum: the new field has its own event.
    assert "presented_on" not in contract.CORRECTABLE_FIELDS


def test_a_presentation_date_cannot_be_corrected_before_one_is_recorded(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)

    refused = refused_without_writing(
        service,
        store,
        correct(case_id, "presented_on", "2025-02-14"),
        ImpossibleTransition,
    )

    assert "record the presentation instead" in str(refused.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("14/02/2025", "must be a date as 'YYYY-MM-DD'"),
        ("2025-01-03", "before the request"),
        ("2025-03-11", "in the future"),
        ("2025-02-21", "after the decision"),
        ("2025-02-10", "is the value already recorded"),
    ],
)
def test_a_bad_corrected_presentation_date_is_refused_on_new_value(
    service: IntakeService, store: InMemoryEventStore, value: str, words: str
) -> None:
    case_id = open_case(service)
    service.handle(present(case_id, date(2025, 2, 10)))
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 20)))

    refused = refused_without_writing(
        service, store, correct(case_id, "presented_on", value), InvalidCommand
    )

    assert fields_of(refused) == ["new_value"]  # type: ignore[arg-type]
    assert words in str(refused.value)


def test_other_corrections_keep_request_then_presentation_then_decision(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(present(case_id, date(2025, 2, 10)))
    service.handle(RecordDecision(case_id, "agreed", date(2025, 2, 20)))

    late_request = refused_without_writing(
        service,
        store,
        correct(case_id, "received_at", "2025-02-11T09:00:00Z"),
        InvalidCommand,
    )
    early_decision = refused_without_writing(
        service,
        store,
        correct(case_id, "notified_on", "2025-02-07"),
        InvalidCommand,
    )
    service.handle(correct(case_id, "received_at", "2025-02-10T09:00:00Z"))

    assert "after its surgery presentation on 2025-02-10" in str(late_request.value)
    assert "before the surgery presentation on 2025-02-10" in str(early_decision.value)
    assert service.case(case_id).case.received_at == datetime(
        2025, 2, 10, 9, tzinfo=UTC
    )


def test_a_withdrawn_case_may_still_have_its_presentation_date_corrected(
    service: IntakeService, store: InMemoryEventStore
) -> None:
    case_id = open_case(service)
    service.handle(present(case_id, date(2025, 2, 10)))
    service.handle(WithdrawRequest(case_id, withdrawn_on=date(2025, 2, 20)))

    after_withdrawal = refused_without_writing(
        service,
        store,
        correct(case_id, "presented_on", "2025-02-21"),
        InvalidCommand,
    )
    service.handle(correct(case_id, "presented_on", "2025-02-12"))

    assert "after the withdrawal on 2025-02-20" in str(after_withdrawal.value)
    assert service.case(case_id).case.presented_on == date(2025, 2, 12)


# The case list ------------------------------------------------------------------------


def test_the_case_list_shows_the_presentation_date(service: IntakeService) -> None:
    presented, waiting = open_case(service), open_case(service)
    service.handle(present(presented, date(2025, 2, 3)))
    service.handle(correct(presented, "presented_on", "2025-02-04"))

    rows = {row.case_id: row for row in service.cases()}

    assert rows[presented].presented_on == date(2025, 2, 4)
    assert rows[waiting].presented_on is None
