"""A clock ends at its earliest-dated stop or cancel, in whatever order they came.

Each row is a case's story (facts recorded day by day, ticks between them) told once
to the engine and once to the processor (real CloudEvents records in, clock event
records out; ``clock_drivers``). The checks: the clock's final state and its date,
what the last fact published for the clock (a late clock turned met, a withdrawn
overdue alert), and that a withdrawn alert is the overdue alert published before.
Dates, counted by hand:

- request received Mon 6 Jan 2025: decision and surgery target due Mon 17 Feb 2025,
  no-plan notice due Mon 28 Apr 2025, final plan due Mon 26 May 2025;
- a move to secondary school in September 2026: amended plan due Sat 14 Feb 2026,
  counted from 1 September 2025 (the 12 months before the move); to post-16, due Mon
  30 Mar 2026.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pytest
from clock_drivers import DRIVERS, Published, driver
from deadlines_support import Spec, Step, d, received

from deadlines.domain import contract as ev
from deadlines.domain.evaluate import EngineConfig

FINAL = ("ClockMet", "ClockLate", "ClockCancelled")


@dataclass(frozen=True)
class Ending:
    """A story and how the clock ``clock_id`` must end up after it."""

    name: str
    clock_id: str
    today: date
    steps: tuple[Step, ...]
    final: tuple[str, str] | None
    """The last final event of the clock and its date, None if it is still open."""
    last: tuple[str, ...]
    """The clock's events published by the last step, in order."""
    days_late: int | None = None

    def __str__(self) -> str:
        return self.name


def _agreed(on: str) -> Spec:
    return ev.ASSESSMENT_AGREED, {"notified_on": on}


def _presented(on: str) -> Spec:
    return ev.REQUEST_PRESENTED, {"presented_on": on}


def _amended(on: str) -> Spec:
    data = {"issued_on": on, "changes": ["I"], "setting_urn": "100002"}
    return ev.PLAN_AMENDED, data


def _transfer(kind: str) -> Spec:
    data = {"transfer": kind, "transfer_year": 2026, "phase": "primary_to_secondary"}
    if kind == "post16":
        data["phase"] = "secondary_to_post16"
    return ev.PHASE_TRANSFER_DUE, {
        **data,
        "leaving_year": 6 if kind == "school" else 11,
    }


def _plan_issued(on: str) -> Spec:
    return ev.PLAN_ISSUED, {"issued_on": on}


_JAN6 = d("2025-01-06")
_SCHOOL = "phase_transfer_school[transfer_year=2026]"
_POST16 = "phase_transfer_post16[transfer_year=2026]"

ENDINGS: tuple[Ending, ...] = (
    Ending(
        "surgery: a presentation in time recorded after a late decision makes it met",
        "local_area_surgery",
        _JAN6,
        (
            received(_JAN6),
            d("2025-02-18"),
            d("2025-03-03"),
            _agreed("2025-03-01"),
            _presented("2025-02-10"),
        ),
        ("ClockMet", "2025-02-10"),
        ("ClockMet", "AlertWithdrawn"),
    ),
    Ending(
        "surgery: a presentation dated after the late decision leaves it late",
        "local_area_surgery",
        _JAN6,
        (
            received(_JAN6),
            d("2025-03-03"),
            _agreed("2025-03-01"),
            _presented("2025-03-02"),
        ),
        ("ClockLate", "2025-03-01"),
        (),
        days_late=12,
    ),
    Ending(
        "decision: a decision recorded before the request counts by its date",
        "decision",
        d("2025-02-12"),
        (_agreed("2025-02-10"), received(_JAN6)),
        ("ClockMet", "2025-02-10"),
        ("ClockSet", "ClockMet"),
    ),
    Ending(
        "decision: a refusal in time recorded after a later withdrawal makes it met",
        "decision",
        _JAN6,
        (
            received(_JAN6),
            d("2025-02-21"),
            (ev.REQUEST_WITHDRAWN, {"withdrawn_on": "2025-02-20"}),
            (ev.ASSESSMENT_REFUSED, {"notified_on": "2025-02-14"}),
        ),
        ("ClockMet", "2025-02-14"),
        ("ClockMet", "AlertWithdrawn"),
    ),
    Ending(
        "decision: a later-dated stop after a cancel leaves it cancelled",
        "decision",
        _JAN6,
        (
            received(_JAN6),
            (ev.REQUEST_WITHDRAWN, {"withdrawn_on": "2025-01-20"}),
            _agreed("2025-02-10"),
        ),
        ("ClockCancelled", "2025-01-20"),
        (),
    ),
    Ending(
        "final plan: a withdrawal dated before the due date, recorded after a late "
        "plan, cancels it and withdraws the overdue alert",
        "final_plan",
        _JAN6,
        (
            received(_JAN6),
            d("2025-05-28"),
            d("2025-06-11"),
            _plan_issued("2025-06-10"),
            (ev.REQUEST_WITHDRAWN, {"withdrawn_on": "2025-05-02"}),
        ),
        ("ClockCancelled", "2025-05-02"),
        ("ClockCancelled", "AlertWithdrawn"),
    ),
    Ending(
        "final plan: a plan in time after an earlier no-plan notice stays cancelled",
        "final_plan",
        _JAN6,
        (
            received(_JAN6),
            d("2025-04-29"),
            (ev.NO_PLAN_NOTICE_SENT, {"notified_on": "2025-04-28"}),
            _plan_issued("2025-05-20"),
        ),
        ("ClockCancelled", "2025-04-28"),
        (),
    ),
    Ending(
        "no-plan notice: a draft plan after the due date cancels it, breach voided",
        "no_plan_notice",
        _JAN6,
        (
            received(_JAN6),
            _agreed("2025-02-14"),
            d("2025-04-29"),
            d("2025-05-12"),
            (ev.DRAFT_PLAN_ISSUED, {"served_on": "2025-05-12"}),
        ),
        ("ClockCancelled", "2025-05-12"),
        ("ClockCancelled", "AlertWithdrawn"),
    ),
    Ending(
        "phase transfer: an amendment in time recorded after a late one makes it met",
        _SCHOOL,
        d("2025-10-06"),
        (
            _transfer("school"),
            d("2026-02-16"),
            d("2026-03-03"),
            _amended("2026-03-02"),
            _amended("2026-02-02"),
        ),
        ("ClockMet", "2026-02-02"),
        ("ClockMet", "AlertWithdrawn"),
    ),
    Ending(
        "phase transfer: an amendment in the window recorded before the transfer "
        "was identified meets it",
        _SCHOOL,
        d("2025-10-06"),
        (_amended("2025-09-22"), d("2025-10-13"), _transfer("school")),
        ("ClockMet", "2025-09-22"),
        ("ClockSet", "ClockMet"),
    ),
    Ending(
        "referrals made before the review was arranged count: they name the review",
        "agency_referrals[review_id=R1]",
        d("2026-03-02"),
        (
            (
                ev.REVIEW_ARRANGED,
                {
                    "review_id": "R1",
                    "meeting_on": "2026-06-03",
                    "arranged_on": "2026-03-02",
                },
            ),
            (ev.REFERRALS_MADE, {"review_id": "R1", "made_on": "2026-02-20"}),
        ),
        ("ClockMet", "2026-02-20"),
        ("ClockMet",),
    ),
    Ending(
        "annual review: a review held before the plan was issued does not stop it",
        "annual_review",
        d("2025-02-03"),
        (
            (ev.REVIEW_HELD, {"review_id": "R0", "held_on": "2025-01-20"}),
            _plan_issued("2025-01-31"),
            (ev.REVIEW_HELD, {"review_id": "R1", "held_on": "2026-01-29"}),
        ),
        ("ClockMet", "2026-01-29"),
        ("ClockMet",),
    ),
    Ending(
        "post-16 transfer: an amendment before the 12 months before the move does "
        "not stop it",
        _POST16,
        d("2025-08-29"),
        (_amended("2025-08-29"), d("2025-10-06"), _transfer("post16"), d("2026-03-31")),
        None,
        ("ClockOverdue",),
    ),
)


async def _story(kind: str, ending: Ending) -> tuple[list[Published], list[Published]]:
    """Everything published about the clock, and what the story's last step did."""
    clock = driver(kind, ending.clock_id, EngineConfig(), ending.today, ending.name)
    earlier = await clock.play(ending.steps[:-1])
    last = await clock.play(ending.steps[-1:])
    return earlier + last, last


def _check(
    ending: Ending, published: Sequence[Published], last: Sequence[Published]
) -> None:
    assert [name for name, _, _ in last] == list(ending.last)
    finals = [(name, data) for name, _, data in published if name in FINAL]
    if ending.final is None:
        assert finals == []
    else:
        name, data = finals[-1]
        on = data["cancelled_on" if name == "ClockCancelled" else "stopped_on"]
        assert (name, on) == ending.final
        if ending.days_late is not None:
            assert data["days_late"] == ending.days_late
    overdue = [event_id for name, event_id, _ in published if name == "ClockOverdue"]
    withdrawn = [data for name, _, data in last if name == "AlertWithdrawn"]
    for data in withdrawn:
        assert (data["alert_kind"], [data["alert_id"]]) == ("overdue", overdue)


@pytest.mark.parametrize("kind", DRIVERS)
@pytest.mark.parametrize("ending", ENDINGS, ids=str)
async def test_the_earliest_dated_ending_decides(kind: str, ending: Ending) -> None:
    published, last = await _story(kind, ending)

    _check(ending, published, last)
