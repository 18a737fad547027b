"""The engine's own promises: replay, JSON state, idempotence, versions, corrections."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from deadlines_support import CASE, TERMS, Case, Spec, at, d, of, one, received, short

from deadlines.domain import contract as ev
from deadlines.domain import rules
from deadlines.domain.council import CouncilConfig
from deadlines.domain.engine import (
    CaseEvent,
    CaseState,
    Emitted,
    apply,
    evaluate,
    run,
    tick,
)
from deadlines.domain.errors import DeadlinesError, UnusableEvent
from deadlines.domain.evaluate import EngineConfig
from deadlines.domain.model import Count, Offset, RuleSet, StartDate
from send_schemas.deadlines import CLOCK_EVENTS, parse_clock_event


def _life(case: Case) -> list[CaseEvent | datetime]:
    """A case from request to its first review, with a tick every day of 18 months."""
    facts: dict[date, list[Spec]] = {
        d("2025-01-06"): [received(d("2025-01-06"))],
        d("2025-02-14"): [(ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-14"})],
        d("2025-02-17"): [
            (
                ev.ADVICE_REQUESTED,
                {
                    "advice_id": "A1",
                    "body": "health",
                    "received_by_body_on": "2025-02-17",
                },
            ),
            (
                ev.ADVICE_REQUESTED,
                {
                    "advice_id": "A2",
                    "body": "care",
                    "received_by_body_on": "2025-02-18",
                },
            ),
        ],
        d("2025-03-20"): [
            (ev.ADVICE_RECEIVED, {"advice_id": "A1", "received_on": "2025-03-20"})
        ],
        d("2025-04-14"): [
            (ev.ADVICE_RECEIVED, {"advice_id": "A2", "received_on": "2025-03-31"}),
            (ev.DRAFT_PLAN_ISSUED, {"served_on": "2025-04-14"}),
            (
                ev.SETTING_CONSULTED,
                {"consultation_id": "K1", "setting_id": "S1", "sent_on": "2025-04-14"},
            ),
        ],
        d("2025-05-06"): [
            (
                ev.CONSULTATION_ANSWERED,
                {
                    "consultation_id": "K1",
                    "answered_on": "2025-05-02",
                    "outcome": "yes",
                },
            )
        ],
        d("2025-05-20"): [(ev.PLAN_ISSUED, {"issued_on": "2025-05-20"})],
        d("2025-06-02"): [
            (
                ev.REQUEST_CORRECTED,
                {
                    "field": "received_at",
                    "old_value": "2025-01-06T10:00:00+00:00",
                    "new_value": "2025-01-08T10:00:00+00:00",
                },
            )
        ],
        d("2026-03-02"): [
            (ev.REVIEW_ARRANGED, {"review_id": "R1", "meeting_on": "2026-04-22"})
        ],
        d("2026-04-10"): [
            (ev.REVIEW_PAPERS_SENT, {"review_id": "R1", "sent_on": "2026-04-10"})
        ],
        d("2026-04-22"): [
            (ev.REVIEW_HELD, {"review_id": "R1", "held_on": "2026-04-22"})
        ],
        d("2026-05-13"): [
            (
                ev.REVIEW_DECIDED,
                {"review_id": "R1", "decision": "amend", "notified_on": "2026-05-13"},
            )
        ],
    }
    inputs: list[CaseEvent | datetime] = []
    day = d("2025-01-06")
    while day <= d("2026-07-31"):
        inputs.extend(case.events(facts.get(day, [])))
        inputs.append(at(day, 7))
        day += timedelta(days=1)
    return inputs


def _dump(outputs: list[Emitted]) -> str:
    return json.dumps([output.to_dict() for output in outputs], sort_keys=True)


def test_a_replay_from_scratch_is_byte_identical() -> None:
    _, first = run(_life(Case()))
    _, second = run(_life(Case()))

    assert _dump(first) == _dump(second)
    assert len({output.id for output in first}) == len(first)
    kinds = {short(output) for output in first}
    assert kinds >= {
        "ClockSet",
        "ClockApproaching",
        "ClockOverdue",
        "ClockMet",
        "ClockLate",
        "ClockCancelled",
        "ClockDueDateChanged",
        "AlertWithdrawn",
    }


def test_the_state_survives_json_between_every_step() -> None:
    _, straight = run(_life(Case()))

    state: CaseState | None = None
    through_json: list[Emitted] = []
    for item in _life(Case()):
        if isinstance(item, datetime):
            assert state is not None
            state, emitted = tick(state, item)
        else:
            state, emitted = apply(state, item)
        through_json.extend(emitted)
        state = CaseState.from_dict(json.loads(json.dumps(state.to_dict())))

    assert _dump(through_json) == _dump(straight)


def test_outputs_are_contract_events() -> None:
    _, outputs = run(_life(Case()))

    for output in outputs:
        payload = output.to_dict()
        assert payload["subject"] == CASE
        assert payload["type"] in CLOCK_EVENTS
        assert parse_clock_event(output.type, payload["data"]) == output.event


def test_outputs_data_is_the_validated_models_json_in_its_order() -> None:
    # The engine builds its outputs without validating them; validating its fields
    # here must give the same values, and the model's JSON the same keys in order.
    _, outputs = run(_life(Case()))
    seen_types = set()

    for output in outputs:
        validated = CLOCK_EVENTS[output.type].model_validate(dict(output.fields))
        expected = validated.model_dump(mode="json")
        assert list(output.data()) == list(expected)
        assert json.dumps(output.data()) == json.dumps(expected)
        assert output.event == validated
        seen_types.add(output.type)
    assert len(seen_types) >= 6


def test_a_repeated_event_or_tick_changes_nothing() -> None:
    case = Case()
    request = case.event(*received(d("2025-01-06")))
    state, first = apply(None, request)
    assert first

    again, repeated = apply(state, request)
    assert repeated == []
    assert again.to_dict() == state.to_dict()

    state, alerts = tick(state, at(d("2025-02-03")))
    assert alerts
    state, repeated = tick(state, at(d("2025-02-03"), 15))
    assert repeated == []
    _, earlier = tick(state, at(d("2025-01-20")))
    assert earlier == []


def test_events_no_rule_reads_are_ignored() -> None:
    case = Case()
    state, _ = apply(None, case.event(*received(d("2025-01-06"))))
    assigned = case.event(
        "send.intake.CoordinatorAssigned.v1", coordinator_id="ehcco-7"
    )

    after, outputs = apply(state, assigned)

    assert outputs == []
    assert after.to_dict() == state.to_dict()


@pytest.mark.parametrize(
    ("event_type", "data", "problem"),
    [
        (ev.REQUEST_RECEIVED, {"received_at": "2025-03-30T23:30:00"}, "no time zone"),
        (ev.REQUEST_RECEIVED, {}, "'received_at' is required"),
        (ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-30"}, "not a date"),
        (ev.PHASE_TRANSFER_DUE, {"transfer": "school", "transfer_year": True}, "whole"),
        (
            ev.EXCEPTION_RECORDED,
            {"clock": "decision", "reason": "e"},
            "does not apply to clock 'decision'",
        ),
        (ev.EXCEPTION_RECORDED, {"clock": "advice", "reason": "d"}, "they are"),
        (
            ev.REQUEST_CORRECTED,
            {"field": "school_urn", "old_value": "1", "new_value": "2"},
            "cannot be corrected",
        ),
        (
            ev.PLAN_CORRECTED,
            {
                "field": "issued_on",
                "old_value": "2025-01-01",
                "new_value": "2025-01-02",
            },
            "no earlier fact",
        ),
    ],
)
def test_an_unusable_event_is_refused_and_changes_nothing(
    event_type: str, data: dict[str, Any], problem: str
) -> None:
    case = Case()
    state, _ = apply(None, case.event(*received(d("2025-01-06"))))
    before = state.to_dict()

    with pytest.raises(UnusableEvent, match=problem):
        apply(state, case.event(event_type, data))
    assert state.to_dict() == before


def test_an_event_of_another_case_is_refused() -> None:
    state, _ = apply(None, Case().event(*received(d("2025-01-06"))))
    other = Case("0a1b2c3d-0000-4000-8000-000000000000").event(
        *received(d("2025-01-07"))
    )

    with pytest.raises(DeadlinesError, match="key the state by the event subject"):
        apply(state, other)


def test_a_naive_tick_is_refused() -> None:
    state, _ = apply(None, Case().event(*received(d("2025-01-06"))))
    with pytest.raises(ValueError, match="no time zone"):
        tick(state, datetime(2025, 2, 1, 9))  # noqa: DTZ001


# Versions -----------------------------------------------------------------------------

_FIVE_WEEKS = replace(
    rules.CURRENT.rule("decision"), due=Offset(StartDate(), 5, Count.WEEKS_AFTER)
)
_V2 = RuleSet(
    "2026.1",
    d("2026-01-01"),
    tuple(_FIVE_WEEKS if r.name == "decision" else r for r in rules.CURRENT.rules),
)
_VERSIONED = EngineConfig(rulesets=(rules.CURRENT, _V2))


def test_a_new_rules_version_applies_to_clocks_set_after_it_takes_effect() -> None:
    _, before = run(Case().events([received(d("2025-12-15"))]), config=_VERSIONED)
    _, after = run(Case().events([received(d("2026-01-05"))]), config=_VERSIONED)

    old = one(before, "decision", "ClockSet").event
    new = one(after, "decision", "ClockSet").event
    assert (old.rules_version, old.due_on) == ("2014.1", d("2026-01-26"))
    assert (new.rules_version, new.due_on) == ("2026.1", d("2026-02-09"))


def test_a_clock_keeps_its_version_when_a_correction_moves_it() -> None:
    case = Case()
    state, _ = run(case.events([received(d("2025-12-15"))]), config=_VERSIONED)
    correction = case.event(
        ev.REQUEST_CORRECTED,
        field="received_at",
        old_value="2025-12-15T10:00:00+00:00",
        new_value="2026-01-12T10:00:00+00:00",
    )

    _, outputs = apply(state, correction, _VERSIONED)

    changed = one(outputs, "decision", "ClockDueDateChanged").event
    assert (changed.rules_version, changed.due_on) == ("2014.1", d("2026-02-23"))


def test_a_new_version_never_rewrites_clocks_already_set() -> None:
    case = Case()
    state, _ = run(case.events([received(d("2026-01-05"))]))
    agreed = case.event(ev.ASSESSMENT_AGREED, notified_on="2026-02-10")

    _, outputs = apply(state, agreed, _VERSIONED)

    assert of(outputs, "decision", "ClockDueDateChanged") == []
    assert one(outputs, "decision", "ClockMet").event.rules_version == "2014.1"


# Corrections and withdrawals ----------------------------------------------------------


def test_a_draft_plan_after_the_no_plan_due_date_voids_the_breach() -> None:
    case = Case()
    start = [
        received(d("2025-01-06")),
        (ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-14"}),
    ]
    state, _ = run(case.events(start))
    state, overdue = tick(state, at(d("2025-04-29")))
    alert = one(overdue, "no_plan_notice", "ClockOverdue")
    assert "decide whether to issue" in alert.event.action.lower()

    _, outputs = apply(state, case.event(ev.DRAFT_PLAN_ISSUED, served_on="2025-05-02"))

    cancelled = one(outputs, "no_plan_notice", "ClockCancelled").event
    assert cancelled.breach_voided is True
    assert one(outputs, "no_plan_notice", "AlertWithdrawn").event.alert_id == alert.id


def test_a_withdrawal_after_the_due_date_leaves_the_breach_standing() -> None:
    case = Case()
    state, _ = run(case.events([received(d("2025-01-06"))]))
    state, _ = tick(state, at(d("2025-02-18")))

    _, outputs = apply(
        state, case.event(ev.REQUEST_WITHDRAWN, withdrawn_on="2025-02-20")
    )

    assert one(outputs, "decision", "ClockCancelled").event.breach_voided is False
    assert of(outputs, "decision", "AlertWithdrawn") == []


def test_a_corrected_decision_date_turns_met_into_late_and_back() -> None:
    case = Case()
    start = [
        received(d("2025-01-06")),
        (ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-14"}),
    ]
    state, outputs = run(case.events(start))
    first_met = one(outputs, "decision", "ClockMet")

    def corrected(old: str, new: str) -> CaseEvent:
        return case.event(
            ev.REQUEST_CORRECTED, field="notified_on", old_value=old, new_value=new
        )

    state, outputs = apply(state, corrected("2025-02-14", "2025-02-19"))
    late = one(outputs, "decision", "ClockLate").event
    assert (late.stopped_on, late.days_late) == (d("2025-02-19"), 2)

    _, outputs = apply(state, corrected("2025-02-19", "2025-02-14"))
    met_again = one(outputs, "decision", "ClockMet")
    assert met_again.event.stopped_on == d("2025-02-14")
    assert met_again.id != first_met.id


def test_moving_a_meeting_earlier_withdraws_alerts_about_the_old_date() -> None:
    case = Case()
    arranged = (ev.REVIEW_ARRANGED, {"review_id": "R1", "meeting_on": "2026-06-03"})
    state, _ = run(case.events([arranged]))
    state, alerts = tick(state, at(d("2026-04-06")))
    referral = one(alerts, "agency_referrals[review_id=R1]", "ClockApproaching")

    _, outputs = apply(
        state, case.event(ev.REVIEW_ARRANGED, review_id="R1", meeting_on="2026-05-27")
    )

    notice = one(outputs, "review_notice[review_id=R1]", "ClockDueDateChanged").event
    assert (notice.previous_due_on, notice.due_on) == (d("2026-05-20"), d("2026-05-13"))
    withdrawn = one(outputs, "agency_referrals[review_id=R1]", "AlertWithdrawn").event
    assert withdrawn.alert_id == referral.id


def test_an_exception_recorded_before_its_clock_starts_applies_when_it_does() -> None:
    case = Case()
    events = [
        received(d("2025-01-06")),
        (ev.EXCEPTION_RECORDED, {"clock": "no_plan_notice", "reason": "d"}),
        (ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-14"}),
    ]
    _, outputs = run(case.events(events))

    assert one(outputs, "no_plan_notice", "ClockSet").event.escalate is True
    applied = one(outputs, "no_plan_notice", "ClockExceptionApplied").event
    assert (applied.reason, applied.escalate) == ("d", False)
    assert of(outputs, "decision", "ClockExceptionApplied") == []


def test_an_exception_for_one_advice_leaves_the_other_alone() -> None:
    case = Case()
    events = [
        (ev.ADVICE_REQUESTED, {"advice_id": "A1", "received_by_body_on": "2025-02-17"}),
        (ev.ADVICE_REQUESTED, {"advice_id": "A2", "received_by_body_on": "2025-02-17"}),
        (
            ev.PLAN_EXCEPTION_RECORDED,
            {"clock": "advice", "reason": "c", "instance": "A2"},
        ),
    ]
    _, outputs = run(case.events(events))

    assert of(outputs, "advice[advice_id=A1]", "ClockExceptionApplied") == []
    assert (
        one(outputs, "advice[advice_id=A2]", "ClockExceptionApplied").event.reason
        == "c"
    )


# Time ---------------------------------------------------------------------------------


def test_only_the_nearest_lead_time_is_raised_when_several_are_reached_at_once() -> (
    None
):
    case = Case()
    state, _ = run(case.events([received(d("2025-01-06"))]))

    _, outputs = tick(state, at(d("2025-02-12")))

    alert = one(outputs, "decision", "ClockApproaching").event
    assert (alert.lead_working_days, alert.alert_on) == (5, d("2025-02-10"))


def test_a_clock_set_late_is_alerted_without_waiting_for_the_next_tick() -> None:
    case = Case()
    state, _ = run([*case.events([received(d("2025-01-06"))]), at(d("2025-04-01"))])
    advice = case.event(
        ev.ADVICE_REQUESTED, advice_id="A1", received_by_body_on="2025-02-10"
    )

    _, outputs = apply(state, advice)

    assert one(outputs, "advice[advice_id=A1]", "ClockSet").event.due_on == d(
        "2025-03-24"
    )
    assert one(outputs, "advice[advice_id=A1]", "ClockOverdue")


def test_the_clock_changes_do_not_shift_the_day() -> None:
    # 23:30 UTC on the Sunday the clocks go forward is already Monday in London.
    case = Case()
    state, _ = run(case.events([received(d("2025-03-03"))]))
    state, outputs = tick(state, datetime.fromisoformat("2025-03-30T22:59:00+00:00"))
    assert of(outputs, "decision", "ClockApproaching") == []
    _, outputs = tick(state, datetime.fromisoformat("2025-03-30T23:30:00+00:00"))
    assert one(outputs, "decision", "ClockApproaching").event.alert_on == d(
        "2025-03-31"
    )


def test_evaluate_reports_each_status_without_changing_the_state() -> None:
    case = Case()
    state, _ = run(case.events([received(d("2025-01-06"))]))
    before = state.to_dict()

    def status(day: str) -> str:
        views = {view.clock_id: view for view in evaluate(state, at(d(day)))}
        return views["decision"].status

    assert status("2025-01-10") == "open"
    assert status("2025-02-04") == "approaching"
    assert status("2025-02-18") == "overdue"
    assert state.to_dict() == before
    state, _ = apply(state, case.event(ev.ASSESSMENT_REFUSED, notified_on="2025-02-17"))
    assert status("2025-02-18") == "met"
    views = {view.clock_id: view for view in evaluate(state, at(d("2025-02-18")))}
    assert views["final_plan"].status == "cancelled"
    assert views["local_area_surgery"].statutory is False


# Council settings ---------------------------------------------------------------------


def test_a_council_sets_its_own_local_target_and_lead_times() -> None:
    council = CouncilConfig(
        local_amounts={"local_area_surgery": 4},
        default_lead_working_days=(3,),
        lead_working_days={"final_plan": (15, 0)},
    )
    _, outputs = run(
        Case().events([received(d("2025-01-06"))]), config=EngineConfig(council=council)
    )

    surgery = one(outputs, "local_area_surgery", "ClockSet").event
    assert (surgery.due_on, surgery.statutory) == (d("2025-02-03"), False)
    assert one(outputs, "decision", "ClockSet").event.lead_working_days == (3,)
    assert one(outputs, "final_plan", "ClockSet").event.lead_working_days == (15, 0)


def test_a_council_can_switch_a_local_target_off() -> None:
    config = EngineConfig(
        council=CouncilConfig(disabled=frozenset({"local_area_surgery"}))
    )
    _, outputs = run(Case().events([received(d("2025-01-06"))]), config=config)

    assert of(outputs, "local_area_surgery") == []
    assert one(outputs, "decision", "ClockSet")


def test_the_senco_list_needs_the_council_term_dates() -> None:
    issued = [(ev.PLAN_ISSUED, {"issued_on": "2025-01-31"})]
    _, without = run(Case().events(issued))
    _, with_terms = run(Case().events(issued), config=EngineConfig(council=TERMS))

    assert of(without, "senco_review_list") == []
    listing = one(with_terms, "senco_review_list", "ClockSet").event
    assert (listing.due_on, listing.statutory) == (d("2026-01-04"), False)


def test_a_review_due_in_a_holiday_goes_on_the_list_of_the_term_before() -> None:
    issued = [(ev.PLAN_ISSUED, {"issued_on": "2025-08-15"})]  # review due 14 Aug 2026
    _, outputs = run(Case().events(issued), config=EngineConfig(council=TERMS))

    assert one(outputs, "senco_review_list", "ClockSet").event.due_on == d("2026-04-19")


def test_ceasing_sets_no_clock() -> None:
    events = [
        (ev.REVIEW_HELD, {"review_id": "R1", "held_on": "2026-03-04"}),
        (
            ev.REVIEW_DECIDED,
            {"review_id": "R1", "decision": "cease", "notified_on": "2026-03-20"},
        ),
    ]
    _, outputs = run(Case().events(events))

    assert [o for o in outputs if o.event.clock == "cease_plan"] == []
    assert one(outputs, "review_decision[review_id=R1]", "ClockMet")


def test_a_row_added_by_a_new_version_does_not_reach_back() -> None:
    extra = replace(
        rules.CURRENT.rule("local_area_surgery"),
        name="new_local_target",
        title="A target added in 2026",
    )
    v2 = RuleSet("2026.1", d("2026-01-01"), (*rules.CURRENT.rules, extra))
    config = EngineConfig(rulesets=(rules.CURRENT, v2))

    _, before = run(Case().events([received(d("2025-12-15"))]), config=config)
    _, after = run(Case().events([received(d("2026-01-05"))]), config=config)

    assert of(before, "new_local_target") == []
    assert one(after, "new_local_target", "ClockSet").event.rules_version == "2026.1"


def test_apply_alerts_against_the_now_it_is_given() -> None:
    case = Case()
    request = case.event(*received(d("2025-01-06")))

    state, outputs = apply(None, request, now=at(d("2025-02-18")))

    assert one(outputs, "decision", "ClockOverdue")
    assert state.ticked_on == d("2025-02-18")
    same, nothing = tick(state, at(d("2025-02-18"), 17))
    assert (same is state, nothing) == (True, [])
