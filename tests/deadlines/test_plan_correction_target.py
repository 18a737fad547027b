"""A plans correction hits the event it names, even when another holds the same date.

A final plan issued Fri 31 Jan 2025 (first review by Fri 30 Jan 2026) and an amended
plan issued the same day (its notice sent Thu 30 Jan) both carry ``issued_on``
2025-01-31. Correcting the final plan's date to Thu 30 Jan 2025 moves the first review
to Thu 29 Jan 2026 and leaves the amendment alone; matched by the old date alone, the
latest fact (the amendment) would have been corrected instead.
"""

from __future__ import annotations

from deadlines_support import Case, of, short

from deadlines.domain import contract as ev
from deadlines.domain.engine import CaseEvent, Emitted, run


def _case() -> tuple[Case, list[CaseEvent]]:
    case = Case()
    return case, [
        case.event(ev.PLAN_ISSUED, issued_on="2025-01-31"),
        case.event(ev.AMENDMENT_PROPOSED, notice_sent_on="2025-01-30"),
        case.event(ev.PLAN_AMENDED, issued_on="2025-01-31", changes=["F"]),
    ]


def _corrected(case: Case, **named: str) -> CaseEvent:
    return case.event(
        ev.PLAN_CORRECTED,
        field="issued_on",
        old_value="2025-01-31",
        new_value="2025-01-30",
        **named,
    )


def _after(outputs: list[Emitted], count: int) -> list[tuple[str, str]]:
    return [(short(o), o.event.clock_id) for o in outputs[count:]]


def test_the_correction_names_the_final_plan_and_moves_the_first_review() -> None:
    case, events = _case()
    _, before = run(events)

    _, outputs = run([*events, _corrected(case, event_id=events[0].id)])

    assert _after(outputs, len(before)) == [("ClockDueDateChanged", "annual_review")]
    [moved] = of(outputs, "annual_review", "ClockDueDateChanged")
    assert str(moved.event.due_on) == "2026-01-29"


def test_without_an_event_id_the_latest_fact_of_that_date_is_corrected() -> None:
    case, events = _case()
    _, before = run(events)

    _, outputs = run([*events, _corrected(case)])

    assert ("ClockDueDateChanged", "annual_review") not in _after(outputs, len(before))
    met = of(outputs, "final_amended_plan[AmendmentProposed#1]", "ClockMet")
    assert [str(m.event.stopped_on) for m in met] == ["2025-01-31", "2025-01-30"]
