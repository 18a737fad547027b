"""A plan's issue date corrected through plans' API, and its clocks, over a real broker.

The platform of ``test_plans_deadlines_e2e`` (intake's and plans' apps with their
relays, and the deadlines worker as its own process). A request received Fri 13 Sep
2024 has its final plan due Fri 31 Jan 2025. The plan is recorded as issued Mon 3 Feb
2025, late, setting the first review by Mon 2 Feb 2026 (the 12 months starting with 3
Feb 2025). The date was mistyped: corrected to Fri 31 Jan 2025, the final plan clock is
met and the first review is due Fri 30 Jan 2026, the worked example of
STATUTORY_CLOCKS.md.
"""

from __future__ import annotations

import time

from plans_support import final_plan_body
from test_plans_deadlines_e2e import WAIT_S, Platform, named, platform, post

__all__ = ["platform"]  # the fixture, shared with test_plans_deadlines_e2e


def test_a_corrected_issue_date_turns_late_into_met_and_moves_the_first_review(
    platform: Platform,
) -> None:
    case_id = post(
        platform.intake,
        "/cases",
        {
            "requester_type": "parent",
            "child_reference": "CHILD-0032",
            "date_of_birth": "2017-02-03",
            "school_urn": 123456,
            "curriculum_year": 2,
            "channel": "portal",
            "received_at": "2024-09-13T09:15:00+01:00",
        },
    )["case_id"]
    post(
        platform.intake,
        f"/cases/{case_id}/decision",
        {"outcome": "agreed", "notified_on": "2024-10-25"},
    )
    deadline = time.monotonic() + WAIT_S
    while not platform.plans_store.read_stream(case_id):
        assert time.monotonic() < deadline, "plans never opened the assessment"
        time.sleep(0.05)
    post(platform.plans, f"/cases/{case_id}/draft-plans", {"served_on": "2025-01-06"})
    post(
        platform.plans,
        f"/cases/{case_id}/final-plan",
        final_plan_body(issued_on="2025-02-03", start_date="2025-02-03"),
    )
    platform.clocks.wait_for(
        "final plan late and annual review set",
        lambda s: bool(
            named(s, "ClockLate", "final_plan")
            and named(s, "ClockSet", "annual_review")
        ),
    )
    history = platform.plans.get(f"/cases/{case_id}").json()["history"]
    [issued] = [e for e in history if e["type"] == "send.plans.PlanIssued.v1"]

    post(
        platform.plans,
        f"/cases/{case_id}/corrections",
        {
            "event_id": issued["id"],
            "field": "issued_on",
            "new_value": "2025-01-31",
            "reason": "the issue date was mistyped from the plan's cover letter",
        },
    )

    seen = platform.clocks.wait_for(
        "final plan met and annual review moved",
        lambda s: bool(
            named(s, "ClockMet", "final_plan")
            and named(s, "ClockDueDateChanged", "annual_review")
        ),
    )
    mine = [e for e in seen if e.subject == case_id]
    [late] = named(mine, "ClockLate", "final_plan")
    [met] = named(mine, "ClockMet", "final_plan")
    assert (late.data["due_on"], late.data["stopped_on"]) == (
        "2025-01-31",
        "2025-02-03",
    )
    assert (met.data["due_on"], met.data["stopped_on"]) == ("2025-01-31", "2025-01-31")
    [review] = named(mine, "ClockSet", "annual_review")
    [moved] = named(mine, "ClockDueDateChanged", "annual_review")
    assert review.data["due_on"] == "2026-02-02"
    assert moved.data["due_on"] == "2026-01-30"
    # The late state came before the correction, the met one after it.
    assert mine.index(late) < mine.index(met)
