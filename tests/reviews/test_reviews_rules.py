"""Every reviews rule, through the application layer with the in-memory store."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from reviews_support import (
    OTHER_SETTING,
    PLAN_ISSUED,
    SETTING,
    FixedClock,
    assign_coordinator,
    end_plan,
    issue_plan,
    new_case_id,
)

from reviews.application.service import ReviewsService, new_review_id
from reviews.domain import (
    AlreadyRecorded,
    ArrangeReview,
    DecideReview,
    ImpossibleTransition,
    InvalidCommand,
    NoActivePlan,
    NotYetHeld,
    PlanStatus,
    RearrangeReview,
    RecordPapersSent,
    RecordPlanAmendment,
    RecordReferralsMade,
    RecordReportReceived,
    RecordReviewHeld,
    RequestInterimReview,
    ReviewInProgress,
    ReviewNotFound,
    ReviewStatus,
    StartReviewCycle,
)
from sendkit.logging import correlation_scope
from sendkit.store import InMemoryEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

MEETING = date(2026, 3, 4)


def arrange(
    service: ReviewsService, case_id: str, **changes: Any
) -> tuple[str, ArrangeReview]:
    fields: dict[str, Any] = {
        "case_id": case_id,
        "review_id": new_review_id(),
        "meeting_on": MEETING,
        "invitee_roles": ("parent", "senco"),
        "arranged_on": date(2026, 1, 12),
    }
    fields.update(changes)
    command = ArrangeReview(**fields)
    service.handle(command)
    return command.review_id, command


def hold(service: ReviewsService, case_id: str, review_id: str, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "case_id": case_id,
        "review_id": review_id,
        "held_on": MEETING,
        "attendee_roles": ("parent", "senco"),
        "child_views_gathered": True,
    }
    fields.update(changes)
    service.handle(RecordReviewHeld(**fields))


def decide_review(
    service: ReviewsService, case_id: str, review_id: str, **changes: Any
) -> None:
    fields: dict[str, Any] = {
        "case_id": case_id,
        "review_id": review_id,
        "decision": "maintain",
        "notified_on": date(2026, 3, 18),
    }
    fields.update(changes)
    service.handle(DecideReview(**fields))


def reviewed_case(service: ReviewsService, **changes: Any) -> tuple[str, str]:
    """A case with a plan and a review held on 4 March 2026."""
    case_id = issue_plan(service, **changes)
    review_id, _ = arrange(service, case_id)
    hold(service, case_id, review_id)
    return case_id, review_id


def fields_of(error: pytest.ExceptionInfo[InvalidCommand]) -> list[str]:
    return [field for field, _ in error.value.field_errors]


def names_of(store: InMemoryEventStore, case_id: str) -> list[str]:
    return [event.type.split(".")[2] for event in store.read_stream(case_id)]


# The cycle follows the plan -----------------------------------------------------------


def test_an_issued_plan_starts_the_cycle_due_12_months_after_it(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service, issued_on=date(2025, 1, 31))

    (event,) = store.read_stream(case_id)
    assert event.type == "send.reviews.ReviewCycleStarted.v1"
    assert event.data == {
        "case_id": case_id,
        "issued_on": "2025-01-31",
        "setting_urn": SETTING,
    }
    # STATUTORY_CLOCKS.md: plan first issued Fri 31 Jan 2025, first review by 30 Jan.
    assert service.case(case_id).case.next_review_due_on == date(2026, 1, 30)


def test_a_leap_day_plan_is_reviewed_by_the_end_of_february(
    service: ReviewsService,
) -> None:
    case_id = issue_plan(service, issued_on=date(2024, 2, 29))

    assert service.case(case_id).case.next_review_due_on == date(2025, 2, 28)


def test_the_next_review_counts_from_the_last_meeting_held_not_the_decision(
    service: ReviewsService,
) -> None:
    case_id, review_id = reviewed_case(service)
    decide_review(service, case_id, review_id, notified_on=date(2026, 3, 18))

    case = service.case(case_id).case
    assert case.last_review_held_on == MEETING
    assert case.next_review_due_on == date(2027, 3, 3)


def test_a_plan_issued_again_restarts_the_cycle(service: ReviewsService) -> None:
    case_id, _ = reviewed_case(service)

    issue_plan(service, case_id, issued_on=date(2026, 3, 19), setting_urn=OTHER_SETTING)

    case = service.case(case_id).case
    assert case.next_review_base == date(2026, 3, 19)
    assert case.next_review_due_on == date(2027, 3, 18)
    assert case.setting_urn == OTHER_SETTING


def test_a_ceased_plan_ends_the_cycle_once(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)

    end_plan(service, case_id, date(2026, 2, 1))
    end_plan(service, case_id, date(2026, 2, 2))

    assert names_of(store, case_id) == ["ReviewCycleStarted", "ReviewCycleEnded"]
    case = service.case(case_id).case
    assert case.plan_status is PlanStatus.ENDED
    assert case.next_review_due_on is None


def test_an_amended_plan_carries_out_the_reviews_amend_decision(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id, review_id = reviewed_case(service)
    decide_review(
        service,
        case_id,
        review_id,
        decision="amend",
        proposed_amendments="Synthetic: more support",
    )

    with store.transaction() as tx:
        service.apply(
            RecordPlanAmendment(case_id, date(2026, 3, 19), OTHER_SETTING), tx, "c"
        )

    recorded = store.read_stream(case_id)[-1]
    assert recorded.data == {
        "case_id": case_id,
        "amended_on": "2026-03-19",
        "setting_urn": OTHER_SETTING,
        "review_id": review_id,
    }
    case = service.case(case_id).case
    assert case.review(review_id).status is ReviewStatus.AMENDED  # type: ignore[union-attr]
    assert case.setting_urn == OTHER_SETTING


def test_an_amendment_outside_a_review_names_no_review_and_keeps_the_setting(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)

    with store.transaction() as tx:
        service.apply(RecordPlanAmendment(case_id, date(2025, 6, 1), None), tx, "c")

    assert store.read_stream(case_id)[-1].data["review_id"] is None
    case = service.case(case_id).case
    assert case.setting_urn == SETTING
    assert case.next_review_due_on == date(2026, 3, 9)


def test_a_coordinator_is_followed_and_a_repeat_records_nothing(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = new_case_id()

    assign_coordinator(service, case_id, "ehcco-1")
    assign_coordinator(service, case_id, "ehcco-1")
    assign_coordinator(service, case_id, "ehcco-2")

    events = store.read_stream(case_id)
    assert [e.data["previous_coordinator_id"] for e in events] == [None, "ehcco-1"]
    assert service.case(case_id).case.coordinator_id == "ehcco-2"


def test_a_reaction_keeps_the_source_events_correlation_and_cause(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = new_case_id()

    with store.transaction() as tx:
        service.apply(
            StartReviewCycle(case_id, PLAN_ISSUED, SETTING), tx, "corr-9", "plans-ev-1"
        )

    metadata = store.read_stream(case_id)[0].metadata
    assert (metadata.actor, metadata.correlation_id, metadata.causation_id) == (
        "system",
        "corr-9",
        "plans-ev-1",
    )


# Arranging a review -------------------------------------------------------------------


def test_arranging_publishes_roles_and_keeps_the_note_private(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)

    review_id, _ = arrange(
        service,
        case_id,
        invitee_roles=("senco", "parent", "health"),
        note="Synthetic: bring the OT report",
    )

    event = store.read_stream(case_id)[-1]
    assert event.data == {
        "case_id": case_id,
        "review_id": review_id,
        "kind": "annual",
        "meeting_on": "2026-03-04",
        "arranged_on": "2026-01-12",
        "setting_urn": SETTING,
        "invitee_roles": ["parent", "senco", "health"],
    }
    assert event.private == {"note": "Synthetic: bring the OT report"}


def test_the_meeting_may_be_in_the_future_and_is_arranged_today_by_default(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)

    arrange(service, case_id, meeting_on=date(2026, 5, 6), arranged_on=None)

    data = store.read_stream(case_id)[-1].data
    assert (data["meeting_on"], data["arranged_on"]) == ("2026-05-06", "2026-03-20")


def test_the_convening_setting_may_differ_from_the_plans(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)

    arrange(service, case_id, setting_urn=OTHER_SETTING)

    assert store.read_stream(case_id)[-1].data["setting_urn"] == OTHER_SETTING


def test_a_plan_naming_no_setting_has_reviews_the_council_convenes(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service, setting_urn=None)

    arrange(service, case_id)

    assert store.read_stream(case_id)[-1].data["setting_urn"] is None


def test_no_review_without_an_issued_plan(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = new_case_id()
    assign_coordinator(service, case_id, "ehcco-1")

    with pytest.raises(NoActivePlan, match="no issued EHC plan"):
        arrange(service, case_id)

    assert names_of(store, case_id) == ["ReviewCoordinatorAssigned"]


def test_no_review_for_an_unknown_case(service: ReviewsService) -> None:
    with pytest.raises(NoActivePlan):
        arrange(service, new_case_id())

    assert service.store.last_position() == 0


@pytest.mark.parametrize(
    ("reason", "wording"),
    [("plan_ceased", "ceased on 2026-02-01"), ("plan_transferred_out", "transferred")],
)
def test_no_review_for_a_plan_that_ended(
    service: ReviewsService, reason: str, wording: str
) -> None:
    case_id = issue_plan(service)
    end_plan(service, case_id, date(2026, 2, 1), reason)

    with pytest.raises(NoActivePlan, match=wording):
        arrange(service, case_id)
    with pytest.raises(NoActivePlan):
        service.handle(RequestInterimReview(case_id, date(2026, 3, 1), "exclusion"))


def test_one_review_in_progress_at_a_time(service: ReviewsService) -> None:
    case_id, review_id = reviewed_case(service)

    with pytest.raises(ReviewInProgress, match=review_id):
        arrange(service, case_id, meeting_on=date(2026, 9, 1), arranged_on=None)

    decide_review(service, case_id, review_id)
    arrange(service, case_id, meeting_on=date(2026, 9, 1), arranged_on=None)
    assert len(service.case(case_id).case.reviews) == 2


def test_a_review_id_is_arranged_once(service: ReviewsService) -> None:
    case_id = issue_plan(service)
    _, command = arrange(service, case_id)

    with pytest.raises(AlreadyRecorded, match="rearrange"):
        service.handle(command)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"meeting_on": date(2025, 3, 9)}, "meeting_on"),
        ({"meeting_on": date(2027, 3, 21), "arranged_on": None}, "meeting_on"),
        ({"meeting_on": date(2026, 1, 11)}, "meeting_on"),
        ({"arranged_on": date(2026, 3, 21)}, "arranged_on"),
        ({"arranged_on": date(2025, 3, 9)}, "arranged_on"),
        ({"invitee_roles": ("senco", "health")}, "invitee_roles"),
        ({"invitee_roles": ()}, "invitee_roles"),
        ({"invitee_roles": ("parent", "uncle")}, "invitee_roles"),
        ({"invitee_roles": ("parent", "parent")}, "invitee_roles"),
        ({"setting_urn": 12345}, "setting_urn"),
        ({"kind": "surprise"}, "kind"),
        ({"note": "   "}, "note"),
    ],
)
def test_an_invalid_arrangement_names_the_field_and_writes_nothing(
    service: ReviewsService, changes: dict[str, Any], field: str
) -> None:
    case_id = issue_plan(service)
    before = service.store.last_position()

    with pytest.raises(InvalidCommand) as error:
        arrange(service, case_id, **changes)

    assert fields_of(error) == [field]
    assert service.store.last_position() == before


def test_the_invitations_must_include_the_family_as_reg_20_says(
    service: ReviewsService,
) -> None:
    case_id = issue_plan(service)

    with pytest.raises(InvalidCommand, match=r"Reg 20\(2\)\(a\)"):
        arrange(service, case_id, invitee_roles=("senco",))
    arrange(service, case_id, invitee_roles=("young_person",))


def test_several_bad_fields_are_named_together(service: ReviewsService) -> None:
    case_id = issue_plan(service)

    with pytest.raises(InvalidCommand) as error:
        arrange(
            service,
            case_id,
            arranged_on=date(2026, 4, 1),
            invitee_roles=("senco",),
            setting_urn=1,
        )

    assert fields_of(error) == ["arranged_on", "setting_urn", "invitee_roles"]


# Moving a meeting ---------------------------------------------------------------------


def test_a_meeting_moved_keeps_its_review_id_and_first_arrangement(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    service.handle(
        RearrangeReview(case_id, review_id, date(2026, 4, 22), "Synthetic: snow")
    )

    event = store.read_stream(case_id)[-1]
    assert event.type == "send.reviews.ReviewArranged.v1"
    assert (event.data["review_id"], event.data["meeting_on"]) == (
        review_id,
        "2026-04-22",
    )
    assert event.data["arranged_on"] == "2026-01-12"
    assert event.private == {"reason": "Synthetic: snow"}
    review = service.case(case_id).case.review(review_id)
    assert review is not None
    assert (review.meeting_on, review.times_arranged) == (date(2026, 4, 22), 2)
    assert review.papers_due_on == date(2026, 4, 8)


def test_a_held_meeting_cannot_move(service: ReviewsService) -> None:
    case_id, review_id = reviewed_case(service)

    with pytest.raises(AlreadyRecorded, match="held on 2026-03-04"):
        service.handle(RearrangeReview(case_id, review_id, date(2026, 4, 1)))


def test_moving_to_the_same_day_is_refused(service: ReviewsService) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    with pytest.raises(InvalidCommand) as error:
        service.handle(RearrangeReview(case_id, review_id, MEETING))

    assert fields_of(error) == ["meeting_on"]


def test_an_unknown_review_is_not_found(service: ReviewsService) -> None:
    case_id = issue_plan(service)

    for command in (
        RearrangeReview(case_id, new_review_id(), MEETING),
        RecordPapersSent(case_id, new_review_id(), MEETING),
        RecordReportReceived(case_id, new_review_id(), MEETING),
    ):
        with pytest.raises(ReviewNotFound):
            service.handle(command)


# Papers, meeting, report --------------------------------------------------------------


def test_the_papers_are_recorded_once(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    service.handle(RecordPapersSent(case_id, review_id, date(2026, 2, 17)))

    assert store.read_stream(case_id)[-1].data == {
        "case_id": case_id,
        "review_id": review_id,
        "sent_on": "2026-02-17",
    }
    with pytest.raises(AlreadyRecorded):
        service.handle(RecordPapersSent(case_id, review_id, date(2026, 2, 18)))


@pytest.mark.parametrize(
    "sent_on", [date(2026, 1, 11), date(2026, 3, 5), date(2026, 3, 21)]
)
def test_papers_lie_between_the_arrangement_the_meeting_and_today(
    service: ReviewsService, sent_on: date
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    with pytest.raises(InvalidCommand) as error:
        service.handle(RecordPapersSent(case_id, review_id, sent_on))

    assert fields_of(error) == ["sent_on"]


def test_the_meeting_held_publishes_roles_and_keeps_recommendations_private(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    hold(
        service,
        case_id,
        review_id,
        attendee_roles=("senco", "child", "parent"),
        child_views_gathered=False,
        recommendations="Synthetic: new outcomes in section E",
    )

    event = store.read_stream(case_id)[-1]
    assert event.data == {
        "case_id": case_id,
        "review_id": review_id,
        "held_on": "2026-03-04",
        "child_views_gathered": False,
        "attendee_roles": ["parent", "child", "senco"],
    }
    assert event.private == {"recommendations": "Synthetic: new outcomes in section E"}
    with pytest.raises(AlreadyRecorded):
        hold(service, case_id, review_id)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"held_on": date(2026, 3, 21)}, "held_on"),
        ({"held_on": date(2026, 1, 11)}, "held_on"),
        ({"attendee_roles": ()}, "attendee_roles"),
        ({"attendee_roles": ("parent", "pet")}, "attendee_roles"),
        ({"recommendations": ""}, "recommendations"),
    ],
)
def test_an_invalid_meeting_record_names_the_field(
    service: ReviewsService, changes: dict[str, Any], field: str
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    with pytest.raises(InvalidCommand) as error:
        hold(service, case_id, review_id, **changes)

    assert fields_of(error) == [field]


def test_a_meeting_is_not_held_before_its_papers_were_sent(
    service: ReviewsService,
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)
    service.handle(RecordPapersSent(case_id, review_id, date(2026, 2, 17)))

    with pytest.raises(InvalidCommand, match="papers were sent"):
        hold(service, case_id, review_id, held_on=date(2026, 2, 16))


def test_the_meeting_may_be_held_on_another_day_than_arranged(
    service: ReviewsService,
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    hold(service, case_id, review_id, held_on=date(2026, 3, 6))

    assert service.case(case_id).case.next_review_due_on == date(2027, 3, 5)


def test_nothing_is_dated_after_the_plan_ended(service: ReviewsService) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)
    end_plan(service, case_id, date(2026, 3, 1))

    with pytest.raises(NoActivePlan, match="ended on 2026-03-01"):
        hold(service, case_id, review_id)

    hold(service, case_id, review_id, held_on=date(2026, 2, 27))


def test_no_report_before_the_meeting(service: ReviewsService) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    with pytest.raises(NotYetHeld, match="record the meeting held first"):
        service.handle(RecordReportReceived(case_id, review_id, date(2026, 3, 5)))


def test_the_report_is_recorded_once_and_dated_after_the_meeting(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id, review_id = reviewed_case(service)

    for received_on in (date(2026, 3, 3), date(2026, 3, 21)):
        with pytest.raises(InvalidCommand) as error:
            service.handle(RecordReportReceived(case_id, review_id, received_on))
        assert fields_of(error) == ["received_on"]

    service.handle(RecordReportReceived(case_id, review_id, date(2026, 3, 4)))
    assert store.read_stream(case_id)[-1].data["received_on"] == "2026-03-04"
    with pytest.raises(AlreadyRecorded):
        service.handle(RecordReportReceived(case_id, review_id, date(2026, 3, 5)))


# The decision -------------------------------------------------------------------------


def test_no_decision_before_the_meeting(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)
    before = store.last_position()

    with pytest.raises(NotYetHeld, match="no decision before the meeting"):
        decide_review(service, case_id, review_id)

    assert store.last_position() == before


def test_one_decision_per_review(service: ReviewsService) -> None:
    case_id, review_id = reviewed_case(service)
    decide_review(service, case_id, review_id, decision="cease")

    with pytest.raises(AlreadyRecorded, match="one decision per review"):
        decide_review(service, case_id, review_id, decision="maintain")


def test_an_amend_decision_publishes_the_code_and_keeps_the_amendments_private(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id, review_id = reviewed_case(service)

    decide_review(
        service,
        case_id,
        review_id,
        decision="amend",
        proposed_amendments="Synthetic: add a teaching assistant",
        note="Synthetic: agreed with the family",
    )

    event = store.read_stream(case_id)[-1]
    assert event.data == {
        "case_id": case_id,
        "review_id": review_id,
        "decision": "amend",
        "notified_on": "2026-03-18",
    }
    assert event.private == {
        "proposed_amendments": "Synthetic: add a teaching assistant",
        "note": "Synthetic: agreed with the family",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"decision": "amend"}, "proposed_amendments"),
        ({"decision": "amend", "proposed_amendments": " "}, "proposed_amendments"),
        ({"proposed_amendments": "Synthetic: change"}, "proposed_amendments"),
        ({"decision": "cease", "proposed_amendments": "x"}, "proposed_amendments"),
        ({"decision": "postpone"}, "decision"),
        ({"notified_on": date(2026, 3, 3)}, "notified_on"),
        ({"notified_on": date(2026, 3, 21)}, "notified_on"),
    ],
)
def test_an_invalid_decision_names_the_field_and_writes_nothing(
    service: ReviewsService, changes: dict[str, Any], field: str
) -> None:
    case_id, review_id = reviewed_case(service)
    before = service.store.last_position()

    with pytest.raises(InvalidCommand) as error:
        decide_review(service, case_id, review_id, **changes)

    assert fields_of(error) == [field]
    assert service.store.last_position() == before


def test_a_decision_on_the_day_of_the_meeting_is_allowed(
    service: ReviewsService,
) -> None:
    case_id, review_id = reviewed_case(service)

    decide_review(service, case_id, review_id, notified_on=MEETING)

    review = service.case(case_id).case.review(review_id)
    assert review is not None
    assert review.status is ReviewStatus.DECIDED


# Interim reviews ----------------------------------------------------------------------


def test_an_interim_review_answers_the_request(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)
    service.handle(
        RequestInterimReview(
            case_id, date(2025, 11, 3), "placement_at_risk", "Synthetic: exclusions"
        )
    )

    requested = store.read_stream(case_id)[-1]
    assert requested.data == {
        "case_id": case_id,
        "requested_on": "2025-11-03",
        "reason": "placement_at_risk",
    }
    assert requested.private == {"details": "Synthetic: exclusions"}

    review_id, _ = arrange(
        service, case_id, kind="interim", arranged_on=date(2025, 11, 4)
    )
    case = service.case(case_id).case
    assert case.open_interim_request is None
    assert case.interim_requests[0].review_id == review_id
    assert case.review(review_id).kind == "interim"  # type: ignore[union-attr]


def test_an_interim_review_needs_a_request(service: ReviewsService) -> None:
    case_id = issue_plan(service)

    with pytest.raises(ImpossibleTransition, match="request one first"):
        arrange(service, case_id, kind="interim")


def test_one_interim_request_open_at_a_time(service: ReviewsService) -> None:
    case_id = issue_plan(service)
    service.handle(RequestInterimReview(case_id, date(2026, 1, 5), "needs_changed"))

    with pytest.raises(ImpossibleTransition, match="not arranged yet"):
        service.handle(RequestInterimReview(case_id, date(2026, 1, 6), "exclusion"))


def test_no_interim_request_without_a_plan(service: ReviewsService) -> None:
    with pytest.raises(NoActivePlan):
        service.handle(
            RequestInterimReview(new_case_id(), date(2026, 1, 5), "needs_changed")
        )


@pytest.mark.parametrize(
    ("requested_on", "reason", "field"),
    [
        (date(2026, 3, 21), "needs_changed", "requested_on"),
        (date(2025, 3, 9), "needs_changed", "requested_on"),
        (date(2026, 1, 5), "boredom", "reason"),
    ],
)
def test_an_invalid_interim_request_names_the_field(
    service: ReviewsService, requested_on: date, reason: str, field: str
) -> None:
    case_id = issue_plan(service)

    with pytest.raises(InvalidCommand) as error:
        service.handle(RequestInterimReview(case_id, requested_on, reason))

    assert fields_of(error) == [field]


# Local targets: referrals and the SENCO's list ----------------------------------------


def test_referrals_are_recorded_once_and_not_after_the_meeting(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(service)
    review_id, _ = arrange(service, case_id)

    with pytest.raises(InvalidCommand) as error:
        service.handle(RecordReferralsMade(case_id, review_id, date(2026, 3, 5)))
    assert fields_of(error) == ["made_on"]

    service.handle(RecordReferralsMade(case_id, review_id, date(2026, 1, 7)))
    assert store.read_stream(case_id)[-1].data == {
        "case_id": case_id,
        "review_id": review_id,
        "made_on": "2026-01-07",
    }
    with pytest.raises(AlreadyRecorded):
        service.handle(RecordReferralsMade(case_id, review_id, date(2026, 1, 8)))


def test_the_senco_list_is_recorded_on_each_case_it_names_once(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    due_in_summer = issue_plan(service, issued_on=date(2025, 5, 1))
    due_in_spring = issue_plan(service, issued_on=date(2025, 3, 10))
    elsewhere = issue_plan(
        service, issued_on=date(2025, 5, 1), setting_urn=OTHER_SETTING
    )
    first, last = date(2026, 4, 13), date(2026, 7, 22)

    answer = service.send_review_list(SETTING, first, last, date(2026, 3, 20))
    again = service.send_review_list(SETTING, first, last, date(2026, 3, 20))

    assert [row["case_id"] for row in answer.body["cases"]] == [due_in_summer]
    assert answer.body["recorded"] == 1
    assert store.read_stream(due_in_summer)[-1].data == {
        "case_id": due_in_summer,
        "setting_urn": SETTING,
        "sent_on": "2026-03-20",
        "term_starts_on": "2026-04-13",
        "review_due_on": "2026-04-30",
    }
    assert names_of(store, due_in_spring) == ["ReviewCycleStarted"]
    assert names_of(store, elsewhere) == ["ReviewCycleStarted"]
    assert again.body["recorded"] == 0
    rows = service.upcoming_reviews(first, last, setting_urn=SETTING)
    assert [row.listed_on for row in rows] == [date(2026, 3, 20)]


def test_a_senco_list_dated_in_the_future_is_refused_even_when_empty(
    service: ReviewsService,
) -> None:
    with pytest.raises(InvalidCommand) as error:
        service.send_review_list(
            SETTING, date(2026, 4, 13), date(2026, 7, 22), date(2026, 3, 21)
        )

    assert fields_of(error) == ["sent_on"]


# Metadata -----------------------------------------------------------------------------


def test_a_commands_events_name_the_actor_correlation_and_command(
    service: ReviewsService, store: InMemoryEventStore, clock: FixedClock
) -> None:
    case_id = issue_plan(service)

    with correlation_scope("corr-77"):
        service.handle(
            ArrangeReview(case_id, new_review_id(), date(2026, 4, 1), ("parent",)),
            actor="ehcco-5",
        )

    metadata = store.read_stream(case_id)[-1].metadata
    assert (metadata.actor, metadata.correlation_id) == ("ehcco-5", "corr-77")
    assert metadata.causation_id is not None
