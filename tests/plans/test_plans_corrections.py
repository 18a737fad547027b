"""Correcting a recorded date (``CorrectPlan``), and the review an amendment follows.

Through the application layer with the in-memory store; each refusal writes nothing.
The case: assessment agreed Mon 6 Oct 2025, draft served Mon 2 Mar 2026 (comments until
Mon 16 Mar), final plan issued Tue 17 Mar 2026; "today" is Mon 1 Jun 2026.
"""

from __future__ import annotations

from datetime import date

import pytest
from plans_support import (
    DRAFT_SERVED_ON,
    EARLIEST_FINAL_ON,
    WINDOW_ENDS_ON,
    new_case_id,
    open_assessment,
)
from test_plans_rules import TODAY, TOMORROW, Case

from plans.application.reactions import IntakeReactions
from plans.application.service import PlansService
from plans.domain import (
    CaseNotFound,
    CorrectPlan,
    InvalidCommand,
    ProposeAmendment,
    RecordDraftComments,
    TransferPlanIn,
)
from send_schemas import plans as contract
from sendkit.events import RecordedEvent
from store_backends import DURABLE

REVIEW = "0c9e7f4a-1b2d-4c3e-8f5a-6b7c8d9e0f1a"

STORE_BACKENDS = DURABLE


def _event(case: Case, short: str, nth: int = 0) -> RecordedEvent:
    """The ``nth`` event of type ``short`` in the case's stream."""
    found = [
        e
        for e in case.service.store.read_stream(case.id)
        if e.type.split(".")[2] == short
    ]
    return found[nth]


def _correct(
    case: Case, short: str, field: str, new_value: date, nth: int = 0
) -> CorrectPlan:
    return CorrectPlan(
        case_id=case.id,
        event_id=_event(case, short, nth).id,
        field=field,
        new_value=new_value,
        reason="the date was mistyped from the covering letter",
    )


def _problems(case: Case, command: CorrectPlan) -> dict[str, str]:
    refusal = case.refused(command, InvalidCommand)
    assert isinstance(refusal.value, InvalidCommand)
    return dict(refusal.value.field_errors)


@pytest.fixture
def issued(service: PlansService, reactions: IntakeReactions) -> Case:
    case = Case(service, open_assessment(service.store, reactions))
    case.draft()
    case.issue()
    return case


# Putting a date right -----------------------------------------------------------------


def test_a_corrected_issue_date_is_published_and_becomes_the_plans_date(
    issued: Case,
) -> None:
    plan_issued = _event(issued, "PlanIssued")

    assert issued.do(
        _correct(issued, "PlanIssued", "issued_on", date(2026, 3, 20))
    ) == ["PlanCorrected"]

    recorded = issued.service.store.read_stream(issued.id)[-1]
    assert recorded.data == {
        "case_id": issued.id,
        "event_id": plan_issued.id,
        "event_type": "send.plans.PlanIssued.v1",
        "field": "issued_on",
        "old_value": "2026-03-17",
        "new_value": "2026-03-20",
    }
    assert recorded.private == {
        "reason": "the date was mistyped from the covering letter"
    }
    assert issued.plan.issued_on == date(2026, 3, 20)
    # The event as published stays as it was; the correction is an event of its own.
    assert _event(issued, "PlanIssued").data["issued_on"] == "2026-03-17"


def test_a_second_correction_starts_from_the_date_the_first_one_set(
    issued: Case,
) -> None:
    issued.do(_correct(issued, "PlanIssued", "issued_on", date(2026, 3, 20)))
    issued.do(_correct(issued, "PlanIssued", "issued_on", date(2026, 3, 18)))

    last = issued.service.store.read_stream(issued.id)[-1]
    assert (last.data["old_value"], last.data["new_value"]) == (
        "2026-03-20",
        "2026-03-18",
    )
    assert issued.plan.issued_on == date(2026, 3, 18)


def test_a_corrected_draft_date_moves_its_comment_window(
    service: PlansService, reactions: IntakeReactions
) -> None:
    case = Case(service, open_assessment(service.store, reactions))
    case.draft()
    assert case.plan.comment_window_ends_on == WINDOW_ENDS_ON

    case.do(_correct(case, "DraftPlanIssued", "served_on", date(2026, 3, 4)))

    assert case.plan.drafts == (date(2026, 3, 4),)
    assert case.plan.comment_window_ends_on == date(2026, 3, 18)


def test_the_date_of_a_closed_case_can_still_be_corrected(issued: Case) -> None:
    issued.do(issued.cease_command())

    issued.do(_correct(issued, "PlanCeased", "ceased_on", date(2026, 4, 30)))

    assert issued.plan.ceased_on == date(2026, 4, 30)
    assert str(issued.plan.status) == "ceased"


def test_a_plan_transferred_in_can_have_its_transfer_date_corrected(
    service: PlansService,
) -> None:
    case = Case(service, new_case_id())
    case.do(
        TransferPlanIn(
            case_id=case.id,
            transferred_on=date(2026, 2, 2),
            from_council="Exampleshire County Council",
        )
    )

    case.do(_correct(case, "PlanTransferredIn", "transferred_on", date(2026, 2, 3)))

    assert case.plan.transferred_in_on == date(2026, 2, 3)


# What a correction may not do ---------------------------------------------------------


def test_an_unknown_event_is_refused_naming_event_id(issued: Case) -> None:
    command = CorrectPlan(
        case_id=issued.id,
        event_id=new_case_id(),
        field="issued_on",
        new_value=date(2026, 3, 20),
        reason="typo",
    )

    problems = _problems(issued, command)

    assert list(problems) == ["event_id"]
    assert "names no event of case" in problems["event_id"]


def test_an_event_without_a_correctable_date_is_refused(issued: Case) -> None:
    problems = _problems(
        issued, _correct(issued, "AssessmentOpened", "agreed_on", date(2025, 10, 7))
    )

    assert list(problems) == ["event_id"]
    assert "AssessmentOpened" in problems["event_id"]
    assert "PlanIssued" in problems["event_id"]


def test_a_field_the_event_does_not_have_is_refused_naming_field(
    issued: Case,
) -> None:
    problems = _problems(
        issued, _correct(issued, "PlanIssued", "served_on", date(2026, 3, 20))
    )

    assert problems == {
        "field": "is not a date of the PlanIssued event: correct its issued_on"
    }


def test_a_correction_that_changes_nothing_is_refused(issued: Case) -> None:
    problems = _problems(
        issued, _correct(issued, "PlanIssued", "issued_on", EARLIEST_FINAL_ON)
    )

    assert list(problems) == ["new_value"]
    assert "already recorded (2026-03-17)" in problems["new_value"]


def test_a_date_in_the_future_or_before_ehc_plans_is_refused(issued: Case) -> None:
    future = _problems(issued, _correct(issued, "PlanIssued", "issued_on", TOMORROW))
    ancient = _problems(
        issued, _correct(issued, "PlanIssued", "issued_on", date(2014, 8, 31))
    )

    assert future == {
        "new_value": f"must not be in the future (today is {TODAY} in London)"
    }
    assert "before 2014-09-01" in ancient["new_value"]


def test_a_reason_is_required(issued: Case) -> None:
    command = _correct(issued, "PlanIssued", "issued_on", date(2026, 3, 20))

    problems = _problems(
        issued,
        CorrectPlan(
            case_id=command.case_id,
            event_id=command.event_id,
            field=command.field,
            new_value=command.new_value,
            reason="  ",
        ),
    )

    assert list(problems) == ["reason"]


def test_a_date_before_the_facts_own_precondition_is_refused(issued: Case) -> None:
    problems = _problems(
        issued, _correct(issued, "PlanIssued", "issued_on", date(2026, 2, 27))
    )

    assert problems == {
        "new_value": "would put the PlanIssued's issued_on before the draft plan was "
        f"served, on {DRAFT_SERVED_ON}"
    }


def test_a_final_plan_date_inside_the_comment_window_is_refused(issued: Case) -> None:
    problems = _problems(
        issued, _correct(issued, "PlanIssued", "issued_on", WINDOW_ENDS_ON)
    )

    assert "inside the comment window" in problems["new_value"]


def test_an_early_final_plan_agreed_in_writing_may_be_corrected_into_the_window(
    service: PlansService, reactions: IntakeReactions
) -> None:
    case = Case(service, open_assessment(service.store, reactions))
    case.draft()
    case.do(
        RecordDraftComments(
            case_id=case.id,
            received_on=date(2026, 3, 9),
            respondent="parent",
            agreed_to_early_final_plan=True,
        )
    )
    case.issue()

    case.do(_correct(case, "PlanIssued", "issued_on", date(2026, 3, 10)))

    assert case.plan.issued_on == date(2026, 3, 10)


def test_a_correction_that_would_put_a_later_fact_before_it_is_refused(
    issued: Case,
) -> None:
    issued.do(issued.amend_command())  # amended plan issued Mon 20 Apr 2026
    amended = _event(issued, "PlanAmended")

    problems = _problems(
        issued, _correct(issued, "PlanIssued", "issued_on", date(2026, 4, 21))
    )

    assert problems == {
        "new_value": f"would put the PlanAmended event {amended.id} (its issued_on) "
        "before the plan was last issued or amended, on 2026-04-21: correct that "
        "event first, or choose another date"
    }


def test_a_draft_corrected_after_the_final_plan_is_refused(issued: Case) -> None:
    problems = _problems(
        issued, _correct(issued, "DraftPlanIssued", "served_on", date(2026, 3, 18))
    )

    assert "PlanIssued event" in problems["new_value"]
    assert "before the draft plan was served, on 2026-03-18" in problems["new_value"]


def test_an_unknown_case_is_not_found(service: PlansService) -> None:
    command = CorrectPlan(
        case_id=new_case_id(),
        event_id=new_case_id(),
        field="issued_on",
        new_value=date(2026, 3, 20),
        reason="typo",
    )

    with pytest.raises(CaseNotFound):
        service.handle(command)


# An amendment notice following a review -----------------------------------------------


def test_an_amendment_notice_names_the_review_it_follows(issued: Case) -> None:
    issued.do(
        ProposeAmendment(
            case_id=issued.id,
            notice_sent_on=date(2026, 4, 15),
            proposals="add weekly physiotherapy to section F",
            review_id=REVIEW,
        )
    )

    notice = _event(issued, "AmendmentProposed")
    assert notice.data == {
        "case_id": issued.id,
        "notice_sent_on": "2026-04-15",
        "review_id": REVIEW,
    }
    assert contract.AmendmentProposed.model_validate(notice.data).review_id == REVIEW


def test_an_amendment_notice_outside_a_review_publishes_no_review(
    issued: Case,
) -> None:
    issued.do(
        ProposeAmendment(
            case_id=issued.id,
            notice_sent_on=date(2026, 4, 15),
            proposals="add weekly physiotherapy to section F",
        )
    )

    assert _event(issued, "AmendmentProposed").data["review_id"] is None


def test_a_review_id_that_is_not_a_review_id_is_refused(issued: Case) -> None:
    command = ProposeAmendment(
        case_id=issued.id,
        notice_sent_on=date(2026, 4, 15),
        proposals="add weekly physiotherapy to section F",
        review_id="REVIEW-1",
    )

    assert issued.bad_fields(command) == ["review_id"]
