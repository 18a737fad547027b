"""Every worked example of STATUTORY_CLOCKS.md, through the engine, as one table."""

from __future__ import annotations

from datetime import date

import pytest
from deadlines_support import Case, Spec, d, one, received

from deadlines.domain import contract as ev
from deadlines.domain.engine import run


def _request_at(timestamp: str) -> Spec:
    _, data = received(date(2025, 1, 1))
    return ev.REQUEST_RECEIVED, {**data, "received_at": timestamp}


AGREED: Spec = (ev.ASSESSMENT_AGREED, {"notified_on": "2025-01-20"})
HELD: Spec = (ev.REVIEW_HELD, {"review_id": "R1", "held_on": "2026-03-04"})

# (example, events, clock id, due date, act-by date)
EXAMPLES: list[tuple[str, tuple[Spec, ...], str, date, date | None]] = [
    (
        "6 Jan 2025 decision",
        (received(d("2025-01-06")),),
        "decision",
        d("2025-02-17"),
        None,
    ),
    (
        "6 Jan 2025 no-plan notice",
        (received(d("2025-01-06")), AGREED),
        "no_plan_notice",
        d("2025-04-28"),
        None,
    ),
    (
        "6 Jan 2025 final plan, due on a bank holiday",
        (received(d("2025-01-06")),),
        "final_plan",
        d("2025-05-26"),
        d("2025-05-23"),
    ),
    (
        "31 Jan 2025 decision",
        (received(d("2025-01-31")),),
        "decision",
        d("2025-03-14"),
        None,
    ),
    (
        "31 Jan 2025 final plan",
        (received(d("2025-01-31")),),
        "final_plan",
        d("2025-06-20"),
        None,
    ),
    (
        "29 Feb 2024 decision",
        (received(d("2024-02-29")),),
        "decision",
        d("2024-04-11"),
        None,
    ),
    (
        "29 Feb 2024 no-plan notice",
        (
            received(d("2024-02-29")),
            (ev.ASSESSMENT_AGREED, {"notified_on": "2024-04-02"}),
        ),
        "no_plan_notice",
        d("2024-06-20"),
        None,
    ),
    (
        "29 Feb 2024 final plan",
        (received(d("2024-02-29")),),
        "final_plan",
        d("2024-07-18"),
        None,
    ),
    (
        "2025-03-30T23:30Z is received on Mon 31 Mar 2025",
        (_request_at("2025-03-30T23:30:00Z"),),
        "decision",
        d("2025-05-12"),
        None,
    ),
    (
        "draft plan served Mon 2 Mar 2026",
        ((ev.DRAFT_PLAN_ISSUED, {"served_on": "2026-03-02"}),),
        "draft_comments[DraftPlanIssued#1]",
        d("2026-03-16"),
        None,
    ),
    (
        "review meeting 4 Mar 2026: notice and papers",
        ((ev.REVIEW_ARRANGED, {"review_id": "R1", "meeting_on": "2026-03-04"}),),
        "review_notice[review_id=R1]",
        d("2026-02-18"),
        None,
    ),
    (
        "review meeting 4 Mar 2026: report",
        (HELD,),
        "review_report[review_id=R1]",
        d("2026-03-18"),
        None,
    ),
    (
        "review meeting 4 Mar 2026: decision",
        (HELD,),
        "review_decision[review_id=R1]",
        d("2026-04-01"),
        None,
    ),
    (
        "review meeting 4 Mar 2026: final amended plan at the latest",
        (
            HELD,
            (
                ev.REVIEW_DECIDED,
                {"review_id": "R1", "decision": "amend", "notified_on": "2026-04-01"},
            ),
        ),
        "final_amended_plan[review_id=R1]",
        d("2026-05-27"),
        None,
    ),
    (
        "same meeting, amendment notice sent Wed 18 Mar 2026",
        (
            HELD,
            (
                ev.REVIEW_DECIDED,
                {"review_id": "R1", "decision": "amend", "notified_on": "2026-03-18"},
            ),
        ),
        "final_amended_plan[review_id=R1]",
        d("2026-05-13"),
        None,
    ),
    (
        "amendment notice sent Wed 18 Mar 2026 outside a review",
        ((ev.AMENDMENT_PROPOSED, {"notice_sent_on": "2026-03-18"}),),
        "final_amended_plan[AmendmentProposed#1]",
        d("2026-05-13"),
        None,
    ),
    (
        "amendment notice served Wed 18 Mar 2026: comments",
        ((ev.AMENDMENT_PROPOSED, {"notice_sent_on": "2026-03-18"}),),
        "amendment_comments[AmendmentProposed#1]",
        d("2026-04-01"),
        None,
    ),
    (
        "plan first issued Fri 31 Jan 2025",
        ((ev.PLAN_ISSUED, {"issued_on": "2025-01-31"}),),
        "annual_review",
        d("2026-01-30"),
        None,
    ),
    (
        "plan first issued Thu 29 Feb 2024",
        ((ev.PLAN_ISSUED, {"issued_on": "2024-02-29"}),),
        "annual_review",
        d("2025-02-28"),
        None,
    ),
    (
        "Year 6 moving to secondary in September 2026",
        ((ev.PHASE_TRANSFER_DUE, {"transfer": "school", "transfer_year": 2026}),),
        "phase_transfer_school[transfer_year=2026]",
        d("2026-02-14"),
        d("2026-02-13"),
    ),
    (
        "Year 11 moving to college in September 2026",
        ((ev.PHASE_TRANSFER_DUE, {"transfer": "post16", "transfer_year": 2026}),),
        "phase_transfer_post16[transfer_year=2026]",
        d("2026-03-30"),
        None,
    ),
]


@pytest.mark.parametrize(
    ("events", "clock_id", "due_on", "act_by"),
    [example[1:] for example in EXAMPLES],
    ids=[example[0] for example in EXAMPLES],
)
def test_worked_example(
    events: tuple[Spec, ...], clock_id: str, due_on: date, act_by: date | None
) -> None:
    _, outputs = run(Case().events(events))

    clock_set = one(outputs, clock_id, "ClockSet").event
    assert (clock_set.due_on, clock_set.act_by) == (due_on, act_by)


def test_the_received_date_is_the_london_date_of_the_timestamp() -> None:
    _, outputs = run(Case().events([_request_at("2025-03-30T23:30:00Z")]))

    assert one(outputs, "decision", "ClockSet").event.started_on == d("2025-03-31")


def test_the_draft_comment_window_gives_the_earliest_final_plan() -> None:
    _, outputs = run(
        Case().events([(ev.DRAFT_PLAN_ISSUED, {"served_on": "2026-03-02"})])
    )

    window = one(outputs, "draft_comments[DraftPlanIssued#1]", "ClockSet").event
    assert window.earliest_action_on == d("2026-03-17")


def test_the_phase_transfer_shows_the_code_of_practice_date_beside_the_legal_one() -> (
    None
):
    spec = (ev.PHASE_TRANSFER_DUE, {"transfer": "school", "transfer_year": 2026})
    _, outputs = run(Case().events([spec]))

    clock_set = one(
        outputs, "phase_transfer_school[transfer_year=2026]", "ClockSet"
    ).event
    assert clock_set.guidance_due_on == d("2026-02-15")
    assert clock_set.guidance_note is not None
    assert "by 15 February" in clock_set.guidance_note


@pytest.mark.parametrize(
    ("transfer_out", "due_on"),
    [
        # Known 15 or more working days before the move: due on the day of the move.
        ({"move_on": "2026-04-30", "learned_on": "2026-04-09"}, d("2026-04-30")),
        # Known too late: 15 working days beginning with the day learned (4 May is a
        # bank holiday).
        ({"move_on": "2026-04-30", "learned_on": "2026-04-20"}, d("2026-05-11")),
        # Known 14 working days before: the 15 working days end on the move day itself.
        ({"move_on": "2026-04-30", "learned_on": "2026-04-10"}, d("2026-04-30")),
        ({"move_on": "2026-04-30", "learned_on": "2026-04-13"}, d("2026-05-01")),
        # The move date unknown.
        ({"learned_on": "2026-04-20"}, d("2026-05-11")),
    ],
)
def test_plan_transfer_to_a_new_council(
    transfer_out: dict[str, str], due_on: date
) -> None:
    _, outputs = run(Case().events([(ev.TRANSFER_OUT_NOTIFIED, transfer_out)]))

    assert one(outputs, "plan_transfer", "ClockSet").event.due_on == due_on


def test_the_first_review_then_the_next_from_the_review_meeting() -> None:
    events = [
        (ev.PLAN_ISSUED, {"issued_on": "2025-01-31"}),
        (ev.REVIEW_HELD, {"review_id": "R1", "held_on": "2026-01-20"}),
    ]
    _, outputs = run(Case().events(events))

    assert one(outputs, "annual_review", "ClockMet").event.stopped_on == d("2026-01-20")
    following = one(outputs, "annual_review[review_id=R1]", "ClockSet").event
    assert (following.started_on, following.due_on) == (
        d("2026-01-20"),
        d("2027-01-19"),
    )


def test_the_post16_move_at_another_time() -> None:
    spec = (ev.POST16_MOVE_PROPOSED, {"move_on": "2027-07-31"})
    _, outputs = run(Case().events([spec]))

    # Five months before 31 July 2027 is the end of February, which has no 31st.
    assert one(outputs, "post16_move", "ClockSet").event.due_on == d("2027-02-28")
