"""A clock whose start carries no date takes the rules version of the day it was set.

``PhaseTransferDue`` and ``Post16MoveProposed`` have no date of their own, so the day
such a clock is set is the London date its owner recorded the event (its CloudEvents
time). A second, made-up rules version taking effect on Thu 1 Jan 2026 names the next
school "before 1 February" and the new post-16 institution six months ahead. A move
identified in September 2025 keeps the version in force then, although its due date
(Sat 14 Feb 2026) falls after the new version took effect; one identified in January
2026 takes the new one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from deadlines_support import Case, Spec, at, d, one
from test_processor_clocks import Harness, Log, case_id, only

from deadlines.domain import contract as ev
from deadlines.domain import rules
from deadlines.domain.engine import CaseState, apply, run
from deadlines.domain.evaluate import EngineConfig
from deadlines.domain.model import Count, DayInYear, Field, Offset, RuleSet

_CHANGED = {
    "phase_transfer_school": replace(
        rules.CURRENT.rule("phase_transfer_school"),
        due=DayInYear("transfer_year", 2, 1, before=True),
    ),
    "post16_move": replace(
        rules.CURRENT.rule("post16_move"),
        due=Offset(Field("move_on"), 6, Count.MONTHS_BEFORE),
    ),
}
_V2 = RuleSet(
    "2026.1",
    d("2026-01-01"),
    tuple(_CHANGED.get(rule.name, rule) for rule in rules.CURRENT.rules),
)
VERSIONED = EngineConfig(rulesets=(rules.CURRENT, _V2))


def _transfer(year: int) -> Spec:
    return ev.PHASE_TRANSFER_DUE, {
        "transfer": "school",
        "transfer_year": year,
        "phase": "primary_to_secondary",
        "leaving_year": 6,
    }


_MOVE: Spec = (ev.POST16_MOVE_PROPOSED, {"move_on": "2026-09-01"})


def _set_by(spec: Spec, recorded: date | None, clock_id: str) -> tuple[str, date]:
    """The version and due date of the clock ``spec`` sets, recorded on ``recorded``."""
    when = None if recorded is None else at(recorded, 10)
    _, outputs = run([Case().event(*spec, recorded_at=when)], config=VERSIONED)
    clock_set = one(outputs, clock_id, "ClockSet").event
    return clock_set.rules_version, clock_set.due_on


def test_a_transfer_identified_before_the_new_version_keeps_the_old_one() -> None:
    found = _set_by(
        _transfer(2026), d("2025-09-22"), "phase_transfer_school[transfer_year=2026]"
    )

    assert found == ("2014.1", d("2026-02-14"))


def test_a_transfer_identified_after_the_new_version_takes_it() -> None:
    found = _set_by(
        _transfer(2027), d("2026-01-12"), "phase_transfer_school[transfer_year=2027]"
    )

    assert found == ("2026.1", d("2027-01-31"))


def test_a_post16_move_takes_the_version_of_the_day_it_was_proposed() -> None:
    assert _set_by(_MOVE, d("2025-12-01"), "post16_move") == (
        "2014.1",
        d("2026-04-01"),
    )
    assert _set_by(_MOVE, d("2026-01-05"), "post16_move") == (
        "2026.1",
        d("2026-03-01"),
    )


def test_without_a_recorded_time_the_day_its_due_date_counts_from_decides() -> None:
    # A caller that gives no time (or a state written before facts kept the day) falls
    # back to the due date's counting base: the move itself, under the new version.
    assert _set_by(_MOVE, None, "post16_move") == ("2026.1", d("2026-03-01"))


def test_the_recorded_day_is_the_london_date_and_survives_the_state_json() -> None:
    case = Case()
    # 23:30Z on Wed 31 Dec 2025 is still 31 December in London (GMT): the old version.
    late_evening = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    state, outputs = apply(
        None, case.event(*_transfer(2026), recorded_at=late_evening), VERSIONED
    )
    restored = CaseState.from_dict(state.to_dict())

    assert restored == state
    assert [fact.recorded_on for fact in restored.facts] == [d("2025-12-31")]
    clock_id = "phase_transfer_school[transfer_year=2026]"
    assert one(outputs, clock_id, "ClockSet").event.rules_version == "2014.1"


def test_only_facts_that_start_a_clock_without_a_date_keep_the_day() -> None:
    case = Case()
    events = [
        case.event(*spec, recorded_at=at(d("2026-01-12"), 10))
        for spec in (
            (ev.REQUEST_RECEIVED, {"received_at": "2026-01-12T09:00:00+00:00"}),
            _transfer(2027),
        )
    ]

    state, _ = run(events, config=VERSIONED)

    assert state is not None
    kept = {fact.type: fact.recorded_on for fact in state.facts}
    assert kept == {ev.REQUEST_RECEIVED: None, ev.PHASE_TRANSFER_DUE: d("2026-01-12")}


def test_a_transfer_sent_again_keeps_the_day_it_was_first_recorded() -> None:
    case = Case()
    first = case.event(*_transfer(2026), recorded_at=at(d("2025-09-22"), 10))
    again = case.event(*_transfer(2026), recorded_at=at(d("2026-01-12"), 10))

    state, _ = run([first, again], config=VERSIONED)

    assert state is not None
    assert [fact.recorded_on for fact in state.facts] == [d("2025-09-22")]


async def test_through_the_processor_the_events_time_sets_the_version() -> None:
    log = Log()
    harness = Harness(log, config=VERSIONED)
    early, late = case_id("identified-sept"), case_id("identified-jan")

    await harness.play(early, [_transfer(2026)], d("2025-09-22"))
    await harness.play(late, [_transfer(2027)], d("2026-01-12"))

    first = only(
        harness.outputs(early), "ClockSet", "phase_transfer_school[transfer_year=2026]"
    )
    second = only(
        harness.outputs(late), "ClockSet", "phase_transfer_school[transfer_year=2027]"
    )
    assert (first.data["rules_version"], first.data["due_on"]) == (
        "2014.1",
        "2026-02-14",
    )
    assert (second.data["rules_version"], second.data["due_on"]) == (
        "2026.1",
        "2027-01-31",
    )
