"""Every plans rule, through the application layer with the in-memory store.

Each refusal is also checked to have written nothing: the case's stream is as long
after the refused command as before it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from plans_support import (
    AGREED_ON,
    DRAFT_SERVED_ON,
    EARLIEST_FINAL_ON,
    NOW,
    WINDOW_ENDS_ON,
    new_case_id,
    open_assessment,
    types_of,
)

from plans.application.reactions import IntakeReactions
from plans.application.service import PlansService, new_id
from plans.domain import (
    AdviceNotFound,
    AmendPlan,
    CaseNotFound,
    CeasePlan,
    Command,
    CommentWindowOpen,
    Context,
    DecideNotToIssuePlan,
    DecideReassessment,
    ImpossibleTransition,
    InvalidCommand,
    IssueDraftPlan,
    IssuePlan,
    NotifyTransferOut,
    PlansError,
    ProposeAmendment,
    RecordAdviceReceived,
    RecordDraftComments,
    RecordTimeLimitException,
    RequestAdvice,
    RequestClosed,
    RequestReassessment,
    SendNewCouncilNotice,
    Status,
    TransferPlanIn,
    TransferPlanOut,
    decide,
    fold,
)
from sendkit.events import Metadata
from sendkit.store import InMemoryEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

TODAY = date(2026, 6, 1)
TOMORROW = TODAY + timedelta(days=1)


class Case:
    """One case driven through the service, with a command for each step."""

    def __init__(self, service: PlansService, case_id: str) -> None:
        self.service = service
        self.id = case_id

    def do(self, command: Command) -> list[str]:
        """Handle ``command``; the short names of the events it recorded."""
        result = self.service.handle(command)
        return [event.type.split(".")[2] for event in result.recorded]

    def refused(
        self, command: Command, error: type[PlansError], match: str | None = None
    ) -> pytest.ExceptionInfo[PlansError]:
        """Check ``command`` is refused with ``error`` and writes nothing."""
        before = self.service.store.read_stream(self.id)
        with pytest.raises(error, match=match) as refusal:
            self.service.handle(command)
        assert self.service.store.read_stream(self.id) == before
        return refusal

    def bad_fields(self, command: Command) -> list[str]:
        refusal = self.refused(command, InvalidCommand)
        assert isinstance(refusal.value, InvalidCommand)
        return [field for field, _ in refusal.value.field_errors]

    @property
    def plan(self) -> Any:
        return self.service.case(self.id).plan

    # The usual steps, with valid values --------------------------------------------

    def request_advice(self, **changes: Any) -> str:
        command = RequestAdvice(
            case_id=self.id,
            advice_id=new_id(),
            body="educational_psychology",
            received_by_body_on=date(2025, 10, 8),
            professional="Dr Example Psychologist",
        )
        self.do(replace(command, **changes))
        advice_id: str = changes.get("advice_id", command.advice_id)
        return advice_id

    def draft(self, served_on: date = DRAFT_SERVED_ON) -> None:
        self.do(IssueDraftPlan(case_id=self.id, served_on=served_on))

    def comments(self, **changes: Any) -> None:
        command = RecordDraftComments(
            case_id=self.id,
            received_on=date(2026, 3, 9),
            respondent="parent",
            comments="we would like more speech therapy",
            preferred_setting_urn=654321,
            meeting_requested=True,
        )
        self.do(replace(command, **changes))

    def issue_command(self, **changes: Any) -> IssuePlan:
        command = IssuePlan(
            case_id=self.id,
            issued_on=EARLIEST_FINAL_ON,
            setting_urn=123456,
            setting_type="mainstream_academy",
            start_date=date(2026, 9, 1),
            primary_need="SLCN",
            secondary_need="ASD",
        )
        return replace(command, **changes)

    def issue(self, **changes: Any) -> None:
        self.do(self.issue_command(**changes))

    def amend_command(self, **changes: Any) -> AmendPlan:
        command = AmendPlan(
            case_id=self.id,
            issued_on=date(2026, 4, 20),
            changes=("F",),
            summary="add weekly physiotherapy to section F",
        )
        return replace(command, **changes)

    def cease_command(self, **changes: Any) -> CeasePlan:
        command = CeasePlan(
            case_id=self.id, ceased_on=date(2026, 5, 1), reason="needs_met"
        )
        return replace(command, **changes)

    def notify_move(self, **changes: Any) -> list[str]:
        command = NotifyTransferOut(
            case_id=self.id,
            learned_on=date(2026, 4, 1),
            to_council="Sampleton Borough Council",
            move_on=date(2026, 4, 30),
        )
        return self.do(replace(command, **changes))


@pytest.fixture
def assessing(service: PlansService, reactions: IntakeReactions) -> Case:
    return Case(service, open_assessment(service.store, reactions))


@pytest.fixture
def drafted(assessing: Case) -> Case:
    assessing.draft()
    return assessing


@pytest.fixture
def issued(drafted: Case) -> Case:
    drafted.issue()
    return drafted


@pytest.fixture
def transferred_in(service: PlansService) -> Case:
    case = Case(service, new_case_id())
    case.do(
        TransferPlanIn(
            case_id=case.id,
            transferred_on=date(2026, 2, 2),
            from_council="Exampleshire County Council",
            note="moved following a tenancy change",
        )
    )
    return case


# Advice -------------------------------------------------------------------------------


def test_a_request_for_advice_publishes_the_body_and_keeps_the_name_private(
    assessing: Case, store: InMemoryEventStore
) -> None:
    advice_id = assessing.request_advice()

    event = store.read_stream(assessing.id)[-1]
    assert event.type == "send.plans.AdviceRequested.v1"
    assert event.data == {
        "case_id": assessing.id,
        "advice_id": advice_id,
        "body": "educational_psychology",
        "received_by_body_on": "2025-10-08",
    }
    assert event.private == {"professional": "Dr Example Psychologist"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"body": "astrology"}, "body"),
        ({"advice_id": "A-1"}, "advice_id"),
        ({"professional": "  "}, "professional"),
        ({"received_by_body_on": AGREED_ON - timedelta(days=1)}, "received_by_body_on"),
        ({"received_by_body_on": TOMORROW}, "received_by_body_on"),
    ],
)
def test_a_request_for_advice_with_a_bad_value_names_the_field(
    assessing: Case, changes: dict[str, Any], field: str
) -> None:
    command = RequestAdvice(
        case_id=assessing.id,
        advice_id=new_id(),
        body="health",
        received_by_body_on=date(2025, 10, 8),
    )

    assert assessing.bad_fields(replace(command, **changes)) == [field]


def test_advice_is_requested_only_during_an_assessment(issued: Case) -> None:
    command = RequestAdvice(
        case_id=issued.id,
        advice_id=new_id(),
        body="health",
        received_by_body_on=date(2026, 4, 1),
    )

    issued.refused(command, ImpossibleTransition, "during an assessment")


def test_one_advice_id_is_requested_once(assessing: Case) -> None:
    advice_id = assessing.request_advice()

    assessing.refused(
        RequestAdvice(assessing.id, advice_id, "health", date(2025, 10, 9)),
        ImpossibleTransition,
        "already has a request for advice",
    )


def test_advice_received_stops_its_request_once(assessing: Case) -> None:
    advice_id = assessing.request_advice()
    received = RecordAdviceReceived(assessing.id, advice_id, date(2025, 11, 10))

    assert assessing.do(received) == ["AdviceReceived"]
    assert assessing.plan.advice[0].received_on == date(2025, 11, 10)
    assessing.refused(
        replace(received, received_on=date(2025, 11, 11)),
        ImpossibleTransition,
        "already received, on 2025-11-10",
    )


def test_advice_is_not_received_before_the_body_had_the_request(
    assessing: Case,
) -> None:
    advice_id = assessing.request_advice()

    fields = assessing.bad_fields(
        RecordAdviceReceived(assessing.id, advice_id, date(2025, 10, 7))
    )
    future = assessing.bad_fields(
        RecordAdviceReceived(assessing.id, advice_id, TOMORROW)
    )

    assert fields == future == ["received_on"]


def test_advice_for_an_unknown_request_is_not_found(assessing: Case) -> None:
    assessing.refused(
        RecordAdviceReceived(assessing.id, new_id(), date(2025, 11, 10)),
        AdviceNotFound,
    )


def test_advice_arriving_after_the_plan_is_still_recorded(assessing: Case) -> None:
    # A late fact still stops the advice clock, whatever became of the case.
    advice_id = assessing.request_advice()
    assessing.draft()
    assessing.issue()

    events = assessing.do(
        RecordAdviceReceived(assessing.id, advice_id, date(2026, 3, 20))
    )

    assert events == ["AdviceReceived"]


# No plan ------------------------------------------------------------------------------


def test_deciding_not_to_issue_a_plan_closes_the_case_with_private_reasons(
    assessing: Case, store: InMemoryEventStore
) -> None:
    events = assessing.do(
        DecideNotToIssuePlan(
            assessing.id, date(2026, 1, 19), "needs can be met at SEN support"
        )
    )

    assert events == ["NoPlanNoticeSent"]
    event = store.read_stream(assessing.id)[-1]
    assert event.data == {"case_id": assessing.id, "notified_on": "2026-01-19"}
    assert event.private == {"reasons": "needs can be met at SEN support"}
    assert assessing.plan.status is Status.NO_PLAN
    assessing.refused(
        IssueDraftPlan(assessing.id, date(2026, 2, 2)),
        ImpossibleTransition,
        "no plan will be issued",
    )


@pytest.mark.parametrize(
    ("notified_on", "reasons", "fields"),
    [
        (date(2026, 1, 19), " ", ["reasons"]),
        (AGREED_ON - timedelta(days=1), "no plan needed", ["notified_on"]),
        (TOMORROW, "", ["reasons", "notified_on"]),
    ],
)
def test_a_no_plan_notice_says_why_and_is_dated_within_the_assessment(
    assessing: Case, notified_on: date, reasons: str, fields: list[str]
) -> None:
    command = DecideNotToIssuePlan(assessing.id, notified_on, reasons)

    assert assessing.bad_fields(command) == fields


def test_a_no_plan_notice_after_a_draft_is_not_dated_before_it(drafted: Case) -> None:
    early = DecideNotToIssuePlan(drafted.id, date(2026, 3, 1), "no plan needed")

    assert drafted.bad_fields(early) == ["notified_on"]
    assert drafted.do(replace(early, notified_on=date(2026, 3, 20))) == [
        "NoPlanNoticeSent"
    ]


def test_no_no_plan_notice_once_a_final_plan_is_issued(issued: Case) -> None:
    issued.refused(
        DecideNotToIssuePlan(issued.id, date(2026, 4, 1), "no plan needed"),
        ImpossibleTransition,
        "already has a final plan",
    )


# Drafts -------------------------------------------------------------------------------


def test_no_draft_before_the_assessment_is_opened(service: PlansService) -> None:
    case = Case(service, new_case_id())

    case.refused(
        IssueDraftPlan(case.id, DRAFT_SERVED_ON),
        CaseNotFound,
        "intake's agreement to assess it arrives",
    )


def test_a_draft_opens_the_comment_window_of_15_days(drafted: Case) -> None:
    plan = drafted.plan

    assert plan.status is Status.DRAFT_ISSUED
    assert plan.comment_window_ends_on == WINDOW_ENDS_ON


@pytest.mark.parametrize("served_on", [AGREED_ON - timedelta(days=1), TOMORROW])
def test_a_draft_is_dated_between_the_agreement_and_today(
    assessing: Case, served_on: date
) -> None:
    assert assessing.bad_fields(IssueDraftPlan(assessing.id, served_on)) == [
        "served_on"
    ]


def test_a_revised_draft_follows_the_first_and_opens_its_own_window(
    drafted: Case,
) -> None:
    before = IssueDraftPlan(drafted.id, DRAFT_SERVED_ON - timedelta(days=1))
    assert drafted.bad_fields(before) == ["served_on"]

    drafted.draft(date(2026, 3, 10))

    assert drafted.plan.drafts == (DRAFT_SERVED_ON, date(2026, 3, 10))
    assert drafted.plan.comment_window_ends_on == date(2026, 3, 24)


def test_no_draft_once_the_final_plan_is_issued(issued: Case) -> None:
    issued.refused(
        IssueDraftPlan(issued.id, date(2026, 4, 1)),
        ImpossibleTransition,
        "changed by amendment",
    )


# Comments -----------------------------------------------------------------------------


def test_comments_publish_the_preference_and_meeting_and_keep_the_text(
    drafted: Case, store: InMemoryEventStore
) -> None:
    drafted.comments()

    event = store.read_stream(drafted.id)[-1]
    assert event.data == {
        "case_id": drafted.id,
        "received_on": "2026-03-09",
        "respondent": "parent",
        "preferred_setting_urn": 654321,
        "meeting_requested": True,
        "agreed_to_early_final_plan": False,
    }
    assert event.private == {"comments": "we would like more speech therapy"}


def test_comments_answer_a_draft(assessing: Case) -> None:
    assessing.refused(
        RecordDraftComments(assessing.id, date(2026, 3, 9), "parent"),
        ImpossibleTransition,
        "issue the draft plan first",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"received_on": DRAFT_SERVED_ON - timedelta(days=1)}, "received_on"),
        ({"received_on": TOMORROW}, "received_on"),
        ({"respondent": "grandparent"}, "respondent"),
        ({"preferred_setting_urn": 12345}, "preferred_setting_urn"),
        ({"comments": ""}, "comments"),
    ],
)
def test_comments_with_a_bad_value_name_the_field(
    drafted: Case, changes: dict[str, Any], field: str
) -> None:
    command = RecordDraftComments(drafted.id, date(2026, 3, 9), "young_person")

    assert drafted.bad_fields(replace(command, **changes)) == [field]


def test_no_comments_on_the_draft_once_the_final_plan_is_issued(issued: Case) -> None:
    issued.refused(
        RecordDraftComments(issued.id, date(2026, 3, 20), "parent"),
        ImpossibleTransition,
    )


# The final plan -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "issued_on", [DRAFT_SERVED_ON, date(2026, 3, 9), WINDOW_ENDS_ON]
)
def test_no_final_plan_inside_the_comment_window(
    drafted: Case, issued_on: date
) -> None:
    refusal = drafted.refused(
        drafted.issue_command(issued_on=issued_on), CommentWindowOpen, "2026-03-17"
    )

    assert isinstance(refusal.value, CommentWindowOpen)
    assert [field for field, _ in refusal.value.field_errors] == ["issued_on"]


def test_the_final_plan_may_follow_the_day_after_the_window(drafted: Case) -> None:
    # STATUTORY_CLOCKS.md: served Mon 2 Mar 2026, earliest final plan Tue 17 Mar.
    assert drafted.do(drafted.issue_command(issued_on=EARLIEST_FINAL_ON)) == [
        "PlanIssued"
    ]
    assert drafted.plan.status is Status.PLAN_MAINTAINED


def test_written_agreement_allows_an_earlier_final_plan_but_not_before_it(
    drafted: Case,
) -> None:
    drafted.comments(received_on=date(2026, 3, 5), agreed_to_early_final_plan=True)

    fields = drafted.bad_fields(drafted.issue_command(issued_on=date(2026, 3, 4)))
    events = drafted.do(drafted.issue_command(issued_on=date(2026, 3, 6)))

    assert fields == ["issued_on"]
    assert events == ["PlanIssued"]


def test_agreement_to_an_earlier_draft_does_not_cover_a_revised_one(
    drafted: Case,
) -> None:
    drafted.comments(received_on=date(2026, 3, 5), agreed_to_early_final_plan=True)
    drafted.draft(date(2026, 3, 10))

    drafted.refused(
        drafted.issue_command(issued_on=date(2026, 3, 20)),
        CommentWindowOpen,
        "served on 2026-03-10",
    )


def test_no_second_final_plan(issued: Case) -> None:
    issued.refused(
        issued.issue_command(issued_on=date(2026, 4, 1)),
        ImpossibleTransition,
        "one final plan",
    )


def test_no_final_plan_without_a_draft(assessing: Case) -> None:
    assessing.refused(
        assessing.issue_command(), ImpossibleTransition, "serve the draft first"
    )


def test_no_final_plan_after_the_no_plan_notice(assessing: Case) -> None:
    assessing.do(DecideNotToIssuePlan(assessing.id, date(2026, 1, 19), "not needed"))

    assessing.refused(
        assessing.issue_command(), ImpossibleTransition, "no plan will be issued"
    )


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"setting_type": "boarding"}, ["setting_type"]),
        ({"setting_urn": None}, ["setting_urn"]),
        ({"setting_urn": 99999}, ["setting_urn"]),
        ({"setting_type": "elective_home_education"}, ["setting_urn"]),
        ({"primary_need": "XYZ"}, ["primary_need"]),
        ({"secondary_need": "SLCN"}, ["secondary_need"]),
        ({"start_date": date(2026, 3, 16)}, ["start_date"]),
        ({"issued_on": DRAFT_SERVED_ON - timedelta(days=1)}, ["issued_on"]),
        ({"issued_on": TOMORROW, "start_date": TOMORROW}, ["issued_on"]),
    ],
)
def test_a_final_plan_with_bad_values_names_each_field(
    drafted: Case, changes: dict[str, Any], fields: list[str]
) -> None:
    assert drafted.bad_fields(drafted.issue_command(**changes)) == fields


def test_home_education_names_no_urn(drafted: Case, store: InMemoryEventStore) -> None:
    drafted.issue(setting_type="elective_home_education", setting_urn=None)

    assert store.read_stream(drafted.id)[-1].data["setting_urn"] is None


def test_the_type_of_need_stays_off_the_public_part(
    issued: Case, store: InMemoryEventStore
) -> None:
    event = store.read_stream(issued.id)[-1]

    assert event.data == {
        "case_id": issued.id,
        "issued_on": "2026-03-17",
        "setting_urn": 123456,
        "setting_type": "mainstream_academy",
        "start_date": "2026-09-01",
    }
    assert event.private == {"primary_need": "SLCN", "secondary_need": "ASD"}


# Amendments ---------------------------------------------------------------------------


def test_an_amendment_notice_keeps_its_proposals_private(
    issued: Case, store: InMemoryEventStore
) -> None:
    events = issued.do(
        ProposeAmendment(issued.id, date(2026, 4, 1), "add weekly physiotherapy")
    )

    assert events == ["AmendmentProposed"]
    event = store.read_stream(issued.id)[-1]
    assert event.data == {
        "case_id": issued.id,
        "notice_sent_on": "2026-04-01",
        "review_id": None,
    }
    assert event.private == {"proposals": "add weekly physiotherapy"}


def test_one_amendment_notice_at_a_time(issued: Case) -> None:
    issued.do(ProposeAmendment(issued.id, date(2026, 4, 1), "add physiotherapy"))

    issued.refused(
        ProposeAmendment(issued.id, date(2026, 4, 2), "and speech therapy"),
        ImpossibleTransition,
        "still awaits its amended plan",
    )


@pytest.mark.parametrize(
    ("notice_sent_on", "proposals", "fields"),
    [
        (date(2026, 3, 16), "more therapy", ["notice_sent_on"]),
        (TOMORROW, "more therapy", ["notice_sent_on"]),
        (date(2026, 4, 1), "", ["proposals"]),
    ],
)
def test_an_amendment_notice_with_bad_values_names_each_field(
    issued: Case, notice_sent_on: date, proposals: str, fields: list[str]
) -> None:
    command = ProposeAmendment(issued.id, notice_sent_on, proposals)

    assert issued.bad_fields(command) == fields


def test_an_amendment_follows_its_notice_and_clears_it(issued: Case) -> None:
    issued.do(ProposeAmendment(issued.id, date(2026, 4, 10), "add physiotherapy"))

    early = issued.bad_fields(issued.amend_command(issued_on=date(2026, 4, 9)))
    events = issued.do(issued.amend_command(issued_on=date(2026, 4, 20)))

    assert early == ["issued_on"]
    assert events == ["PlanAmended"]
    assert issued.plan.amendment_pending_since is None


def test_an_amendment_naming_a_school_changes_the_plans_setting(issued: Case) -> None:
    issued.do(
        issued.amend_command(
            changes=("I", "F"), setting_urn=654321, setting_type="special_academy"
        )
    )

    plan = issued.plan
    assert (plan.setting_urn, plan.setting_type) == (654321, "special_academy")
    assert plan.amendments[0].changes == ("I", "F")


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"changes": ()}, ["changes"]),
        ({"changes": ("F", "Z")}, ["changes"]),
        ({"changes": ("F", "F")}, ["changes"]),
        ({"setting_urn": 654321, "setting_type": "special_academy"}, ["changes"]),
        ({"changes": ("I",), "setting_urn": 654321}, ["setting_type"]),
        ({"changes": ("I",), "setting_type": "special_academy"}, ["setting_urn"]),
        ({"issued_on": date(2026, 3, 16)}, ["issued_on"]),
        ({"issued_on": TOMORROW}, ["issued_on"]),
        ({"summary": " "}, ["summary"]),
    ],
)
def test_an_amendment_with_bad_values_names_each_field(
    issued: Case, changes: dict[str, Any], fields: list[str]
) -> None:
    assert issued.bad_fields(issued.amend_command(**changes)) == fields


def test_an_amendment_is_not_dated_before_the_last_one(issued: Case) -> None:
    issued.do(issued.amend_command(issued_on=date(2026, 4, 20)))

    assert issued.bad_fields(issued.amend_command(issued_on=date(2026, 4, 19))) == [
        "issued_on"
    ]


def test_no_amendment_before_the_final_plan(drafted: Case) -> None:
    drafted.refused(drafted.amend_command(), ImpossibleTransition, "no final plan yet")


def test_no_amendment_to_a_ceased_plan(issued: Case) -> None:
    issued.do(issued.cease_command())

    issued.refused(
        issued.amend_command(issued_on=date(2026, 5, 20)),
        ImpossibleTransition,
        "a ceased plan cannot be amended",
    )
    issued.refused(
        ProposeAmendment(issued.id, date(2026, 5, 20), "more therapy"),
        ImpossibleTransition,
        "a ceased plan cannot be amended",
    )


# Ceasing ------------------------------------------------------------------------------


def test_ceasing_publishes_the_sen2_reason_and_keeps_the_note(
    issued: Case, store: InMemoryEventStore
) -> None:
    issued.do(issued.cease_command(reason="moved_english_la", note="moved away"))

    event = store.read_stream(issued.id)[-1]
    assert event.data == {
        "case_id": issued.id,
        "ceased_on": "2026-05-01",
        "reason": "moved_english_la",
    }
    assert event.private == {"note": "moved away"}
    assert issued.plan.status is Status.CEASED


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reason": "bored"}, "reason"),
        ({"ceased_on": date(2026, 3, 16)}, "ceased_on"),
        ({"ceased_on": TOMORROW}, "ceased_on"),
    ],
)
def test_ceasing_with_a_bad_value_names_the_field(
    issued: Case, changes: dict[str, Any], field: str
) -> None:
    assert issued.bad_fields(issued.cease_command(**changes)) == [field]


def test_a_plan_is_ceased_once(issued: Case) -> None:
    issued.do(issued.cease_command())

    issued.refused(issued.cease_command(), ImpossibleTransition, "ceased on 2026-05-01")


def test_a_plan_is_not_ceased_before_its_last_amendment(issued: Case) -> None:
    issued.do(issued.amend_command(issued_on=date(2026, 5, 5)))

    assert issued.bad_fields(issued.cease_command(ceased_on=date(2026, 5, 1))) == [
        "ceased_on"
    ]


# Transfers ----------------------------------------------------------------------------


def test_a_plan_is_transferred_out_after_the_move_is_notified(
    issued: Case, store: InMemoryEventStore
) -> None:
    transfer = TransferPlanOut(issued.id, date(2026, 4, 30))
    issued.refused(transfer, ImpossibleTransition, "record the notice of the move")

    assert issued.notify_move() == ["PlanTransferOutNotified"]
    assert issued.do(transfer) == ["PlanTransferredOut"]

    notified = store.read_stream(issued.id)[-2]
    assert notified.data == {
        "case_id": issued.id,
        "move_on": "2026-04-30",
        "learned_on": "2026-04-01",
    }
    assert notified.private == {"to_council": "Sampleton Borough Council"}
    assert issued.plan.status is Status.TRANSFERRED_OUT
    issued.refused(issued.cease_command(), ImpossibleTransition, "maintains it now")


def test_the_move_notified_again_replaces_its_dates_and_the_same_is_nothing(
    issued: Case,
) -> None:
    issued.notify_move()

    assert issued.notify_move() == []
    assert issued.notify_move(move_on=date(2026, 5, 15)) == ["PlanTransferOutNotified"]
    assert issued.plan.transfer_move_on == date(2026, 5, 15)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"learned_on": date(2026, 3, 16)}, "learned_on"),
        ({"learned_on": TOMORROW}, "learned_on"),
        ({"to_council": ""}, "to_council"),
    ],
)
def test_a_move_with_a_bad_value_names_the_field(
    issued: Case, changes: dict[str, Any], field: str
) -> None:
    command = NotifyTransferOut(
        issued.id, date(2026, 4, 1), "Sampleton Borough Council", date(2026, 9, 1)
    )

    assert issued.bad_fields(replace(command, **changes)) == [field]


def test_a_move_date_may_lie_ahead(issued: Case) -> None:
    assert issued.notify_move(move_on=TODAY + timedelta(days=60)) == [
        "PlanTransferOutNotified"
    ]


@pytest.mark.parametrize("transferred_on", [date(2026, 3, 31), TOMORROW])
def test_a_transfer_out_is_dated_between_the_notice_and_today(
    issued: Case, transferred_on: date
) -> None:
    issued.notify_move()

    assert issued.bad_fields(TransferPlanOut(issued.id, transferred_on)) == [
        "transferred_on"
    ]


def test_a_plan_transferred_in_opens_a_case_with_the_old_council_private(
    transferred_in: Case, store: InMemoryEventStore
) -> None:
    (event,) = store.read_stream(transferred_in.id)

    assert event.data == {"case_id": transferred_in.id, "transferred_on": "2026-02-02"}
    assert event.private == {
        "from_council": "Exampleshire County Council",
        "note": "moved following a tenancy change",
    }
    assert transferred_in.plan.status is Status.PLAN_MAINTAINED


def test_a_plan_transferred_in_is_amended_but_never_issued_again(
    transferred_in: Case,
) -> None:
    transferred_in.refused(
        transferred_in.issue_command(), ImpossibleTransition, "transferred in"
    )
    assert transferred_in.do(transferred_in.amend_command()) == ["PlanAmended"]


def test_a_transfer_in_opens_only_a_new_case(
    assessing: Case, service: PlansService
) -> None:
    assessing.refused(
        TransferPlanIn(assessing.id, date(2026, 2, 2), "Exampleshire"),
        ImpossibleTransition,
        "opens a case of its own",
    )
    future = Case(service, new_case_id())
    assert future.bad_fields(TransferPlanIn(future.id, TOMORROW, "")) == [
        "from_council",
        "transferred_on",
    ]


def test_the_new_councils_notice_follows_a_transfer_in_once(
    transferred_in: Case, issued: Case
) -> None:
    notice = SendNewCouncilNotice(transferred_in.id, date(2026, 3, 2))

    assert transferred_in.bad_fields(replace(notice, notified_on=date(2026, 2, 1))) == [
        "notified_on"
    ]
    assert transferred_in.do(notice) == ["NewCouncilNoticeSent"]
    transferred_in.refused(notice, ImpossibleTransition, "already sent")
    issued.refused(
        replace(notice, case_id=issued.id), ImpossibleTransition, "not transferred in"
    )


# Re-assessment ------------------------------------------------------------------------


def test_a_reassessment_is_requested_then_decided_once(issued: Case) -> None:
    request = RequestReassessment(issued.id, date(2026, 4, 1), "needs have changed")
    decision = DecideReassessment(issued.id, date(2026, 4, 14), agreed=False)

    issued.refused(decision, ImpossibleTransition, "record the request first")
    assert issued.do(request) == ["ReassessmentRequested"]
    issued.refused(request, ImpossibleTransition, "still awaits its decision")
    assert issued.bad_fields(replace(decision, notified_on=date(2026, 3, 31))) == [
        "notified_on"
    ]
    assert issued.do(decision) == ["ReassessmentDecided"]
    issued.refused(decision, ImpossibleTransition, "record the request first")

    # A refusal leaves the plan as it was, and a new request may follow.
    assert issued.do(replace(request, requested_on=date(2026, 5, 1))) == [
        "ReassessmentRequested"
    ]


def test_an_agreed_reassessment_takes_advice_and_ends_with_an_amended_plan(
    issued: Case,
) -> None:
    issued.do(RequestReassessment(issued.id, date(2026, 4, 1)))
    issued.do(DecideReassessment(issued.id, date(2026, 4, 10), agreed=True))

    early = issued.bad_fields(
        RequestAdvice(issued.id, new_id(), "health", date(2026, 4, 9))
    )
    issued.request_advice(received_by_body_on=date(2026, 4, 13))
    issued.refused(
        RequestReassessment(issued.id, date(2026, 4, 20)),
        ImpossibleTransition,
        "under way",
    )
    issued.do(issued.amend_command(issued_on=date(2026, 5, 20), changes=("B", "F")))

    assert early == ["received_by_body_on"]
    assert issued.plan.reassessing_since is None
    assert issued.plan.reassessments[-1].concluded_on == date(2026, 5, 20)
    assert issued.do(RequestReassessment(issued.id, date(2026, 5, 25))) == [
        "ReassessmentRequested"
    ]


def test_a_reassessment_needs_a_plan(drafted: Case) -> None:
    drafted.refused(
        RequestReassessment(drafted.id, date(2026, 4, 1)),
        ImpossibleTransition,
        "no final plan yet",
    )


@pytest.mark.parametrize("requested_on", [date(2026, 3, 16), TOMORROW])
def test_a_reassessment_request_is_dated_while_the_plan_runs(
    issued: Case, requested_on: date
) -> None:
    assert issued.bad_fields(RequestReassessment(issued.id, requested_on)) == [
        "requested_on"
    ]


# Time-limit exceptions ---------------------------------------------------------------


def test_an_exception_to_one_advice_clock_names_it_and_keeps_the_evidence(
    assessing: Case, store: InMemoryEventStore
) -> None:
    advice_id = assessing.request_advice()

    events = assessing.do(
        RecordTimeLimitException(
            assessing.id, "advice", "c", "missed the appointment of 3 Nov", advice_id
        )
    )

    assert events == ["TimeLimitExceptionRecorded"]
    event = store.read_stream(assessing.id)[-1]
    assert event.data == {
        "case_id": assessing.id,
        "clock": "advice",
        "reason": "c",
        "instance": advice_id,
    }
    assert event.private == {"evidence": "missed the appointment of 3 Nov"}


def test_an_exception_to_every_outstanding_advice_clock_names_none(
    assessing: Case,
) -> None:
    assessing.request_advice()
    assessing.request_advice(body="health")

    assessing.do(RecordTimeLimitException(assessing.id, "advice", "b", "abroad"))

    assert assessing.plan.exceptions[0].advice_id is None


@pytest.mark.parametrize(
    ("clock_name", "reason", "evidence", "fields"),
    [
        ("final_plan", "a", "evidence", ["clock"]),
        ("advice", "d", "evidence", ["reason"]),
        ("advice", "a", " ", ["evidence"]),
    ],
)
def test_an_exception_with_bad_values_names_each_field(
    assessing: Case, clock_name: str, reason: str, evidence: str, fields: list[str]
) -> None:
    assessing.request_advice()

    command = RecordTimeLimitException(assessing.id, clock_name, reason, evidence)

    assert assessing.bad_fields(command) == fields


def test_an_exception_needs_its_clock_running_and_is_recorded_once(
    assessing: Case,
) -> None:
    no_advice = RecordTimeLimitException(assessing.id, "advice", "a", "illness")
    assessing.refused(no_advice, ImpossibleTransition, "no advice outstanding")
    assessing.refused(
        replace(no_advice, advice_id=new_id()), AdviceNotFound, "no request for advice"
    )

    advice_id = assessing.request_advice()
    assessing.do(replace(no_advice, advice_id=advice_id))
    assessing.refused(
        replace(no_advice, advice_id=advice_id),
        ImpossibleTransition,
        "already recorded",
    )

    assessing.do(RecordAdviceReceived(assessing.id, advice_id, date(2025, 11, 10)))
    assessing.refused(
        replace(no_advice, advice_id=advice_id, reason="b"),
        ImpossibleTransition,
        "no longer runs",
    )


def test_an_exception_to_the_plan_after_a_reassessment_needs_one_under_way(
    issued: Case,
) -> None:
    command = RecordTimeLimitException(issued.id, "reassessment_plan", "d", "abroad")
    issued.refused(command, ImpossibleTransition, "no re-assessment under way")

    issued.do(RequestReassessment(issued.id, date(2026, 4, 1)))
    issued.do(DecideReassessment(issued.id, date(2026, 4, 10), agreed=True))

    assert issued.do(command) == ["TimeLimitExceptionRecorded"]


# Every command ------------------------------------------------------------------------


def test_every_command_on_an_unknown_case_is_not_found(service: PlansService) -> None:
    case_id = new_case_id()
    day = date(2026, 4, 1)
    commands: list[Command] = [
        RequestAdvice(case_id, new_id(), "health", day),
        RecordAdviceReceived(case_id, new_id(), day),
        DecideNotToIssuePlan(case_id, day, "reasons"),
        IssueDraftPlan(case_id, day),
        RecordDraftComments(case_id, day, "parent"),
        IssuePlan(case_id, day, 123456, "mainstream_academy", day, "ASD"),
        ProposeAmendment(case_id, day, "proposals"),
        AmendPlan(case_id, day, ("F",)),
        CeasePlan(case_id, day, "needs_met"),
        NotifyTransferOut(case_id, day, "Sampleton"),
        TransferPlanOut(case_id, day),
        SendNewCouncilNotice(case_id, day),
        RequestReassessment(case_id, day),
        DecideReassessment(case_id, day, agreed=True),
        RecordTimeLimitException(case_id, "advice", "a", "evidence"),
    ]

    for command in commands:
        with pytest.raises(CaseNotFound):
            service.handle(command)
    assert service.store.read_stream(case_id) == []


def test_a_whole_case_from_assessment_to_an_amended_plan(
    assessing: Case, store: InMemoryEventStore
) -> None:
    advice_id = assessing.request_advice()
    assessing.do(RecordAdviceReceived(assessing.id, advice_id, date(2025, 11, 10)))
    assessing.draft()
    assessing.comments()
    assessing.issue()
    assessing.do(ProposeAmendment(assessing.id, date(2026, 4, 1), "more therapy"))
    assessing.do(assessing.amend_command())

    assert types_of(store, assessing.id) == [
        "AssessmentOpened",
        "AdviceRequested",
        "AdviceReceived",
        "DraftPlanIssued",
        "DraftCommentsReceived",
        "PlanIssued",
        "AmendmentProposed",
        "PlanAmended",
    ]
    assert [e.version for e in store.read_stream(assessing.id)] == list(range(1, 9))


# An ended request ---------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["withdrawn", "refused"])
def test_decide_refuses_each_assessment_step_once_intake_ended_the_request(
    store: InMemoryEventStore, reactions: IntakeReactions, outcome: str
) -> None:
    # The pure rule: the same plan and command, with and without the closure.
    case_id = open_assessment(store, reactions)
    plan = fold(case_id, store.read_stream(case_id))
    metadata = Metadata(actor="ehcco-1", correlation_id="corr-closed")
    open_context = Context(now=NOW, metadata=metadata)
    closed_context = replace(
        open_context, request_closed=RequestClosed(outcome, date(2025, 11, 3))
    )
    steps: list[Command] = [
        RequestAdvice(case_id, new_id(), "health", date(2025, 11, 10)),
        IssueDraftPlan(case_id, DRAFT_SERVED_ON),
        DecideNotToIssuePlan(case_id, date(2026, 1, 5), "Synthetic reasons"),
    ]

    for command in steps:
        assert decide(plan, command, open_context)
        with pytest.raises(ImpossibleTransition, match=f"as {outcome} on 2025-11-03"):
            decide(plan, command, closed_context)


def test_a_closure_does_not_touch_a_plan_already_maintained(
    service: PlansService, store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = open_assessment(store, reactions)
    service.handle(IssueDraftPlan(case_id, DRAFT_SERVED_ON))
    service.handle(
        IssuePlan(
            case_id,
            EARLIEST_FINAL_ON,
            123456,
            "mainstream_academy",
            EARLIEST_FINAL_ON,
            "SLCN",
        )
    )
    plan = fold(case_id, store.read_stream(case_id))
    closed = Context(
        now=NOW,
        metadata=Metadata(actor="ehcco-1", correlation_id="corr-closed"),
        request_closed=RequestClosed("withdrawn", date(2026, 4, 1)),
    )

    amended = decide(plan, AmendPlan(case_id, TODAY, ("F",)), closed)

    assert [event.type for event in amended] == ["send.plans.PlanAmended.v1"]
