"""Each clock of the table through the engine: met, late, excepted, cancelled, moved.

Each scenario of ``deadlines_support.SCENARIOS`` sets one clock; the tests drive it
through each life a clock can have and check the outputs of that clock alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from deadlines_support import SCENARIOS, Case, Scenario, at, of, one, short

from deadlines.domain import contract, rules
from deadlines.domain.engine import (
    CaseEvent,
    CaseState,
    Emitted,
    alert_day,
    apply,
    run,
    tick,
)
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


def _set(scenario: Scenario, case: Case) -> tuple[CaseState, list[Emitted]]:
    state, outputs = run(case.events(scenario.setup), config=scenario.config)
    assert state is not None
    return state, outputs


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


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_start_sets_the_clock(scenario: Scenario) -> None:
    _, outputs = _set(scenario, Case())

    clock_set = one(outputs, scenario.clock_id, "ClockSet").event
    assert clock_set.due_on == scenario.due
    assert clock_set.act_by == calendar.act_by(scenario.due)
    assert clock_set.statutory is scenario.statutory
    assert clock_set.escalate is scenario.escalates
    assert clock_set.rules_version == rules.CURRENT.version
    assert clock_set.legal_basis == rules.CURRENT.rule(scenario.clock).legal_basis


@pytest.mark.parametrize("scenario", DEADLINES, ids=str)
def test_start_approach_met(scenario: Scenario) -> None:
    case = Case()
    state, _ = _set(scenario, case)

    leads = rules.CURRENT.rule(scenario.clock).lead_working_days
    for lead in leads:
        state, approaching = tick(
            state, at(alert_day(scenario.due, lead)), scenario.config
        )
        alert = one(approaching, scenario.clock_id, "ClockApproaching").event
        assert (alert.lead_working_days, alert.due_on) == (lead, scenario.due)
        assert alert.alert_on == alert_day(scenario.due, lead)

    assert scenario.stop is not None
    state, stopped = apply(
        state, case.event(*scenario.stop(scenario.due)), scenario.config
    )
    met = one(stopped, scenario.clock_id, "ClockMet").event
    assert met.stopped_on == scenario.due
    assert of(stopped, scenario.clock_id, "AlertWithdrawn") == []

    _, later = tick(state, at(scenario.due + timedelta(days=30)), scenario.config)
    assert of(later, scenario.clock_id) == []


@pytest.mark.parametrize("scenario", DEADLINES, ids=str)
def test_start_overdue_late(scenario: Scenario) -> None:
    case = Case()
    state, _ = _set(scenario, case)

    state, on_due_day = tick(state, at(scenario.due), scenario.config)
    assert of(on_due_day, scenario.clock_id, "ClockOverdue") == []
    state, overdue = tick(state, at(scenario.due + timedelta(days=1)), scenario.config)
    alert = one(overdue, scenario.clock_id, "ClockOverdue").event
    assert alert.escalate is scenario.escalates
    assert alert.overdue_since == scenario.due + timedelta(days=1)

    state, again = tick(state, at(scenario.due + timedelta(days=9)), scenario.config)
    assert of(again, scenario.clock_id) == []

    assert scenario.stop is not None
    late_on = scenario.due + timedelta(days=1)
    _, stopped = apply(state, case.event(*scenario.stop(late_on)), scenario.config)
    late = one(stopped, scenario.clock_id, "ClockLate").event
    assert late.stopped_on == late_on
    assert late.days_late == 1
    assert of(stopped, scenario.clock_id, "AlertWithdrawn") == []


@pytest.mark.parametrize("scenario", DEADLINES, ids=str)
def test_a_late_record_of_a_stop_in_time_withdraws_the_overdue_alert(
    scenario: Scenario,
) -> None:
    case = Case()
    state, _ = _set(scenario, case)
    state, overdue = tick(state, at(scenario.due + timedelta(days=3)), scenario.config)
    overdue_alert = one(overdue, scenario.clock_id, "ClockOverdue")

    assert scenario.stop is not None
    _, stopped = apply(state, case.event(*scenario.stop(scenario.due)), scenario.config)

    assert one(stopped, scenario.clock_id, "ClockMet").event.stopped_on == scenario.due
    withdrawn = one(stopped, scenario.clock_id, "AlertWithdrawn").event
    assert withdrawn.alert_id == overdue_alert.id
    assert withdrawn.alert_kind == "overdue"


@pytest.mark.parametrize("scenario", WINDOWS, ids=str)
def test_a_window_alerts_on_its_last_day_and_closes(scenario: Scenario) -> None:
    state, outputs = _set(scenario, Case())
    clock_set = one(outputs, scenario.clock_id, "ClockSet").event
    assert clock_set.earliest_action_on == scenario.due + timedelta(days=1)

    last_working = calendar.working_day_on_or_before(scenario.due)
    state, approaching = tick(state, at(last_working), scenario.config)
    assert (
        one(approaching, scenario.clock_id, "ClockApproaching").event.lead_working_days
        == 0
    )
    state, on_last_day = tick(state, at(scenario.due), scenario.config)
    assert of(on_last_day, scenario.clock_id) == []

    state, closed = tick(state, at(scenario.due + timedelta(days=1)), scenario.config)
    met = one(closed, scenario.clock_id, "ClockMet").event
    assert (met.stopped_on, met.stopped_by) == (scenario.due, "window closed")
    assert of(closed, scenario.clock_id, "ClockOverdue") == []
    _, later = tick(state, at(scenario.due + timedelta(days=20)), scenario.config)
    assert of(later, scenario.clock_id) == []


@pytest.mark.parametrize("scenario", WITH_EXCEPTIONS, ids=str)
def test_start_exception(scenario: Scenario) -> None:
    case = Case()
    state, _ = _set(scenario, case)
    assert scenario.exception is not None

    state, excepted = apply(state, case.event(*scenario.exception), scenario.config)
    applied = one(excepted, scenario.clock_id, "ClockExceptionApplied").event
    assert applied.reason == scenario.exception[1]["reason"]
    assert applied.due_on == scenario.due
    assert applied.escalate is False
    assert applied.reason_text

    # Reminders go on; an overdue clock is not escalated as a breach.
    state, approaching = tick(state, at(alert_day(scenario.due, 5)), scenario.config)
    reminder = one(approaching, scenario.clock_id, "ClockApproaching").event
    assert reminder.exception_reason == applied.reason
    state, overdue = tick(state, at(scenario.due + timedelta(days=1)), scenario.config)
    alert = one(overdue, scenario.clock_id, "ClockOverdue").event
    assert (alert.escalate, alert.due_on) == (False, scenario.due)

    # The final state can be counted with or without exception cases.
    assert scenario.stop is not None
    stop = case.event(*scenario.stop(scenario.due + timedelta(days=2)))
    _, stopped = apply(state, stop, scenario.config)
    assert (
        one(stopped, scenario.clock_id, "ClockLate").event.exception_reason
        == applied.reason
    )


@pytest.mark.parametrize("scenario", WITHOUT_EXCEPTIONS, ids=str)
def test_an_exception_to_a_clock_without_exceptions_is_refused(
    scenario: Scenario,
) -> None:
    case = Case()
    state, _ = _set(scenario, case)
    exception = case.event(
        "send.intake.TimeLimitExceptionRecorded.v1", clock=scenario.clock, reason="c"
    )

    with pytest.raises(UnusableEvent, match="does not apply"):
        apply(state, exception, scenario.config)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_start_cancelled(scenario: Scenario) -> None:
    case = Case()
    state, _ = _set(scenario, case)

    state, cancelled = apply(state, case.event(*scenario.cancel), scenario.config)
    event = one(cancelled, scenario.clock_id, "ClockCancelled").event
    assert event.cancelled_by == scenario.cancel[0]
    assert event.due_on == scenario.due

    _, later = tick(state, at(scenario.due + timedelta(days=5)), scenario.config)
    assert of(later, scenario.clock_id) == []


@pytest.mark.parametrize("scenario", CORRECTABLE, ids=str)
def test_a_correction_moves_the_due_date_and_withdraws_the_alert(
    scenario: Scenario,
) -> None:
    case = Case()
    state, _ = _set(scenario, case)
    lead = max(rules.CURRENT.rule(scenario.clock).lead_working_days)
    state, approaching = tick(state, at(alert_day(scenario.due, lead)), scenario.config)
    alert = one(approaching, scenario.clock_id, "ClockApproaching")

    for correction in scenario.correction:
        state, corrected = apply(state, case.event(*correction), scenario.config)

    changed = one(corrected, scenario.clock_id, "ClockDueDateChanged").event
    assert (changed.previous_due_on, changed.due_on) == (
        scenario.due,
        scenario.corrected_due,
    )
    withdrawn = one(corrected, scenario.clock_id, "AlertWithdrawn").event
    assert withdrawn.alert_id == alert.id
    assert withdrawn.alert_due_on == scenario.due

    assert scenario.corrected_due is not None
    new_day = alert_day(scenario.corrected_due, lead)
    _, again = tick(state, at(new_day), scenario.config)
    realert = one(again, scenario.clock_id, "ClockApproaching")
    assert realert.id != alert.id
    assert realert.event.due_on == scenario.corrected_due


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
