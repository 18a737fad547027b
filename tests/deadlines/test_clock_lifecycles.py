"""Each clock of the table, through the engine and through the processor.

Each scenario of ``deadlines_support.SCENARIOS`` sets one clock; the tests drive it
through each life a clock can have (start, approach, met; start, overdue, late; an
exception; a cancellation; a correction that moves its due date) and check what was
published about that clock alone: once as the engine's outputs, once as the records
the processor published from real CloudEvents records in (``clock_drivers``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from clock_drivers import DRIVERS, Driver, driver, named, the
from deadlines_support import SCENARIOS, Case, Scenario, at, short

from deadlines.domain import contract, rules
from deadlines.domain.engine import CaseEvent, alert_day, apply, run
from deadlines.domain.errors import UnusableEvent
from send_schemas.deadlines import ClockKind
from sendkit import calendar

DEADLINES = [
    s for s in SCENARIOS if rules.CURRENT.rule(s.clock).kind is ClockKind.DEADLINE
]
WINDOWS = [s for s in SCENARIOS if rules.CURRENT.rule(s.clock).kind is ClockKind.WINDOW]
WITH_EXCEPTIONS = [s for s in SCENARIOS if s.exception is not None]
WITHOUT_EXCEPTIONS = [
    s for s in SCENARIOS if not rules.CURRENT.rule(s.clock).exceptions
]
CORRECTABLE = [s for s in SCENARIOS if s.correction]
DRIVEN = pytest.mark.parametrize("kind", DRIVERS)


def _clock(kind: str, scenario: Scenario) -> Driver:
    # The setup is recorded a month before the due date, ahead of every lead time.
    today = scenario.due - timedelta(days=30)
    return driver(kind, scenario.clock_id, scenario.config, today, scenario.clock_id)


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def test_every_clock_of_the_table_has_a_scenario() -> None:
    timed = {rule.name for rule in rules.CURRENT.rules if rule.due is not None}
    assert {scenario.clock for scenario in SCENARIOS} == timed


def test_only_the_phase_transfers_lack_a_correction_for_no_event_can_move_them() -> (
    None
):
    uncorrected = {s.clock for s in SCENARIOS if not s.correction}
    corrected_types = {
        event_type
        for correction in contract.CORRECTIONS
        for targets in correction.targets.values()
        for event_type in targets
    }

    assert uncorrected == {"phase_transfer_school", "phase_transfer_post16"}
    assert contract.PHASE_TRANSFER_DUE not in corrected_types
    assert "transfer_year" in (
        contract.EVENTS_BY_TYPE[contract.PHASE_TRANSFER_DUE].identity or ()
    )


@DRIVEN
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_start_sets_the_clock(kind: str, scenario: Scenario) -> None:
    published = await _clock(kind, scenario).play(scenario.setup)

    _, clock_set = the(published, "ClockSet")
    assert clock_set["due_on"] == scenario.due.isoformat()
    assert clock_set["act_by"] == _iso(calendar.act_by(scenario.due))
    assert clock_set["statutory"] is scenario.statutory
    assert clock_set["escalate"] is scenario.escalates
    assert clock_set["rules_version"] == rules.CURRENT.version
    assert clock_set["legal_basis"] == rules.CURRENT.rule(scenario.clock).legal_basis


@DRIVEN
@pytest.mark.parametrize("scenario", DEADLINES, ids=str)
async def test_start_approach_met(kind: str, scenario: Scenario) -> None:
    clock = _clock(kind, scenario)
    await clock.play(scenario.setup)
    due = scenario.due.isoformat()

    for lead in rules.CURRENT.rule(scenario.clock).lead_working_days:
        day = alert_day(scenario.due, lead)
        _, alert = the(await clock.play([day]), "ClockApproaching")
        assert (alert["lead_working_days"], alert["due_on"]) == (lead, due)
        assert alert["alert_on"] == day.isoformat()

    assert scenario.stop is not None
    stopped = await clock.play([scenario.stop(scenario.due)])
    assert the(stopped, "ClockMet")[1]["stopped_on"] == due
    assert named(stopped, "AlertWithdrawn") == []

    assert await clock.play([scenario.due + timedelta(days=30)]) == []


@DRIVEN
@pytest.mark.parametrize("scenario", DEADLINES, ids=str)
async def test_start_overdue_late(kind: str, scenario: Scenario) -> None:
    clock = _clock(kind, scenario)
    await clock.play(scenario.setup)
    day_after = scenario.due + timedelta(days=1)

    assert named(await clock.play([scenario.due]), "ClockOverdue") == []
    _, overdue = the(await clock.play([day_after]), "ClockOverdue")
    assert overdue["escalate"] is scenario.escalates
    assert overdue["overdue_since"] == day_after.isoformat()

    assert await clock.play([scenario.due + timedelta(days=9)]) == []

    assert scenario.stop is not None
    stopped = await clock.play([scenario.stop(day_after)])
    _, late = the(stopped, "ClockLate")
    assert (late["stopped_on"], late["days_late"]) == (day_after.isoformat(), 1)
    assert named(stopped, "AlertWithdrawn") == []


@DRIVEN
@pytest.mark.parametrize("scenario", DEADLINES, ids=str)
async def test_a_late_record_of_a_stop_in_time_withdraws_the_overdue_alert(
    kind: str, scenario: Scenario
) -> None:
    clock = _clock(kind, scenario)
    await clock.play(scenario.setup)
    overdue_id, _ = the(
        await clock.play([scenario.due + timedelta(days=3)]), "ClockOverdue"
    )

    assert scenario.stop is not None
    stopped = await clock.play([scenario.stop(scenario.due)])

    assert the(stopped, "ClockMet")[1]["stopped_on"] == scenario.due.isoformat()
    _, withdrawn = the(stopped, "AlertWithdrawn")
    assert (withdrawn["alert_id"], withdrawn["alert_kind"]) == (overdue_id, "overdue")


@DRIVEN
@pytest.mark.parametrize("scenario", WINDOWS, ids=str)
async def test_a_window_alerts_on_its_last_day_and_closes(
    kind: str, scenario: Scenario
) -> None:
    clock = _clock(kind, scenario)
    _, clock_set = the(await clock.play(scenario.setup), "ClockSet")
    day_after = scenario.due + timedelta(days=1)
    assert clock_set["earliest_action_on"] == day_after.isoformat()

    last_working = calendar.working_day_on_or_before(scenario.due)
    _, approaching = the(await clock.play([last_working]), "ClockApproaching")
    assert approaching["lead_working_days"] == 0
    assert await clock.play([scenario.due]) == []

    closed = await clock.play([day_after])
    _, met = the(closed, "ClockMet")
    assert (met["stopped_on"], met["stopped_by"]) == (
        scenario.due.isoformat(),
        "window closed",
    )
    assert named(closed, "ClockOverdue") == []
    assert await clock.play([scenario.due + timedelta(days=20)]) == []


@DRIVEN
@pytest.mark.parametrize("scenario", WITH_EXCEPTIONS, ids=str)
async def test_start_exception(kind: str, scenario: Scenario) -> None:
    clock = _clock(kind, scenario)
    await clock.play(scenario.setup)
    assert scenario.exception is not None

    _, applied = the(await clock.play([scenario.exception]), "ClockExceptionApplied")
    assert applied["reason"] == scenario.exception[1]["reason"]
    assert applied["due_on"] == scenario.due.isoformat()
    assert applied["escalate"] is False
    assert applied["reason_text"]

    # Reminders go on; an overdue clock is not escalated as a breach.
    approaching = await clock.play([alert_day(scenario.due, 5)])
    assert (
        the(approaching, "ClockApproaching")[1]["exception_reason"]
        == (applied["reason"])
    )
    _, overdue = the(
        await clock.play([scenario.due + timedelta(days=1)]), "ClockOverdue"
    )
    assert (overdue["escalate"], overdue["due_on"]) == (False, scenario.due.isoformat())

    # The final state can be counted with or without exception cases.
    assert scenario.stop is not None
    stopped = await clock.play([scenario.stop(scenario.due + timedelta(days=2))])
    assert the(stopped, "ClockLate")[1]["exception_reason"] == applied["reason"]


@pytest.mark.parametrize("scenario", WITHOUT_EXCEPTIONS, ids=str)
def test_an_exception_to_a_clock_without_exceptions_is_refused(
    scenario: Scenario,
) -> None:
    case = Case()
    state, _ = run(case.events(scenario.setup), config=scenario.config)
    assert state is not None
    exception = case.event(
        "send.intake.TimeLimitExceptionRecorded.v1", clock=scenario.clock, reason="c"
    )

    with pytest.raises(UnusableEvent, match="does not apply"):
        apply(state, exception, scenario.config)


@DRIVEN
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_start_cancelled(kind: str, scenario: Scenario) -> None:
    clock = _clock(kind, scenario)
    await clock.play(scenario.setup)

    _, cancelled = the(await clock.play([scenario.cancel]), "ClockCancelled")
    assert cancelled["cancelled_by"] == scenario.cancel[0]
    assert cancelled["due_on"] == scenario.due.isoformat()

    assert await clock.play([scenario.due + timedelta(days=5)]) == []


@DRIVEN
@pytest.mark.parametrize("scenario", CORRECTABLE, ids=str)
async def test_a_correction_moves_the_due_date_and_withdraws_the_alert(
    kind: str, scenario: Scenario
) -> None:
    clock = _clock(kind, scenario)
    await clock.play(scenario.setup)
    lead = max(rules.CURRENT.rule(scenario.clock).lead_working_days)
    approaching = await clock.play([alert_day(scenario.due, lead)])
    alert_id, _ = the(approaching, "ClockApproaching")
    assert scenario.corrected_due is not None
    moved = (scenario.due.isoformat(), scenario.corrected_due.isoformat())

    corrected = await clock.play(scenario.correction)

    _, changed = the(corrected, "ClockDueDateChanged")
    assert (changed["previous_due_on"], changed["due_on"]) == moved
    _, withdrawn = the(corrected, "AlertWithdrawn")
    assert (withdrawn["alert_id"], withdrawn["alert_due_on"]) == (alert_id, moved[0])

    again = await clock.play([alert_day(scenario.corrected_due, lead)])
    realert_id, realert = the(again, "ClockApproaching")
    assert realert_id != alert_id
    assert realert["due_on"] == moved[1]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_each_life_replays_identically(scenario: Scenario) -> None:
    def life() -> list[dict[str, object]]:
        case = Case()
        inputs: list[CaseEvent | datetime] = list(case.events(scenario.setup))
        inputs += [at(scenario.due - timedelta(days=n)) for n in (20, 10, 5, 0)]
        inputs += [at(scenario.due + timedelta(days=2))]
        if scenario.exception is not None:
            inputs.append(case.event(*scenario.exception))
        inputs += case.events(scenario.correction)
        if scenario.stop is not None:
            inputs.append(case.event(*scenario.stop(scenario.due)))
        inputs.append(at(scenario.due + timedelta(days=40)))
        _, outputs = run(inputs, config=scenario.config)
        return [output.to_dict() for output in outputs]

    first, second = life(), life()
    assert first == second
    assert len({item["id"] for item in first}) == len(first)
    assert {short_type(item) for item in first} >= {"ClockSet"}


def short_type(item: dict[str, object]) -> str:
    return str(item["type"]).split(".")[2]


def test_the_first_output_of_a_request_is_a_clock_set() -> None:
    _, outputs = run(Case().events(SCENARIOS[0].setup))
    assert short(outputs[0]) == "ClockSet"
