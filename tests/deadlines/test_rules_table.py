"""The rules table itself: every clock of STATUTORY_CLOCKS.md, and a sound table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deadlines.domain import contract, rules
from deadlines.domain.council import CouncilConfig
from deadlines.domain.errors import RulesError
from deadlines.domain.evaluate import EngineConfig
from deadlines.domain.model import (
    Authority,
    ClockKind,
    ClockRule,
    Count,
    FactOf,
    Offset,
    RuleSet,
    Start,
    StartDate,
)

# Every row of the table of clocks and the local targets, with its legal basis as
# STATUTORY_CLOCKS.md gives it.
STATUTORY = {
    "decision": "reg 5(1)",
    "advice": "reg 8",
    "no_plan_notice": "reg 10(1)",
    "draft_comments": "reg 13(1)",
    "final_plan": "reg 13(2)",
    "annual_review": "s.44(1)",
    "review_notice": "regs 20(2)-(4), 21",
    "review_report": "regs 20, 21",
    "review_decision": "regs 20, 22",
    "amendment_comments": "reg 22(2)(c)",
    "final_amended_plan": "reg 22(3)",
    "phase_transfer_school": "reg 18(1)(b)",
    "phase_transfer_post16": "reg 18(1)(a)",
    "post16_move": "reg 18(2)",
    "reassessment_decision": "regs 23-24",
    "reassessment_plan": "27(2)",
    "plan_transfer": "reg 15(2)-(3)",
    "new_council_notice": "reg 15(4)",
    "cease_plan": "s.45",
}
GUIDANCE = {"school_consultation": "ss.39-40"}
LOCAL = {"local_area_surgery", "agency_referrals", "senco_review_list"}


def test_the_table_has_every_clock_and_nothing_else() -> None:
    names = {rule.name for rule in rules.CURRENT.rules}
    assert names == set(STATUTORY) | set(GUIDANCE) | LOCAL


@pytest.mark.parametrize("name", sorted({**STATUTORY, **GUIDANCE}))
def test_each_row_cites_its_basis(name: str) -> None:
    basis = {**STATUTORY, **GUIDANCE}[name]
    assert basis in rules.CURRENT.rule(name).legal_basis


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_local_targets_are_never_statutory(name: str) -> None:
    rule = rules.CURRENT.rule(name)
    assert rule.authority is Authority.LOCAL
    assert rule.escalates is False
    assert "not a statutory" in rule.legal_basis


def test_the_school_consultation_is_guidance_not_a_statutory_limit() -> None:
    rule = rules.CURRENT.rule("school_consultation")
    assert (rule.authority, rule.escalates) == (Authority.GUIDANCE, False)


def test_statutory_deadlines_escalate() -> None:
    for rule in rules.CURRENT.rules:
        if rule.authority is Authority.STATUTORY and rule.kind is ClockKind.DEADLINE:
            assert rule.escalates, rule.name


def test_ceasing_has_no_time_limit() -> None:
    assert rules.CURRENT.rule("cease_plan").due is None


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("decision", ("a", "b", "c", "d")),
        ("no_plan_notice", ("a", "b", "c", "d")),
        ("final_plan", ("a", "b", "c", "d")),
        ("reassessment_plan", ("a", "b", "c", "d")),
        ("advice", ("a", "b", "c")),
    ],
)
def test_exception_reasons(name: str, codes: tuple[str, ...]) -> None:
    assert tuple(r.code for r in rules.CURRENT.rule(name).exceptions) == codes


def test_only_the_clocks_the_regulations_except_have_exceptions() -> None:
    excepted = {rule.name for rule in rules.CURRENT.rules if rule.exceptions}
    assert excepted == {
        "decision",
        "no_plan_notice",
        "final_plan",
        "reassessment_plan",
        "advice",
    }


def test_the_default_alert_lead_times() -> None:
    rule = rules.CURRENT.rule("decision")
    assert rule.lead_working_days == (10, 5, 0)


def test_the_no_plan_clock_counts_from_the_request_and_a_draft_voids_its_breach() -> (
    None
):
    rule = rules.CURRENT.rule("no_plan_notice")
    assert rule.starts[0].event_type == contract.ASSESSMENT_AGREED
    assert isinstance(rule.due, Offset)
    assert rule.due.base == FactOf(contract.REQUEST_RECEIVED, "received_at")
    draft = [c for c in rule.cancels if c.event_type == contract.DRAFT_PLAN_ISSUED]
    assert len(draft) == 1
    assert draft[0].voids_breach
    assert "decide whether to issue" in rule.overdue_action.lower()


def test_every_event_the_rules_read_is_in_the_contract() -> None:
    # Building the engine's configuration checks every reference of every rule.
    EngineConfig()
    for rule in rules.CURRENT.rules:
        for start in rule.starts:
            assert start.event_type in contract.EVENTS_BY_TYPE
        for trigger in (*rule.stops, *rule.cancels):
            assert trigger.event_type in contract.EVENTS_BY_TYPE


def test_a_rule_reading_a_missing_field_is_refused_at_start_up() -> None:
    broken = replace(
        rules.CURRENT.rule("decision"),
        starts=(Start(contract.REQUEST_RECEIVED, on="received_on"),),
    )
    table = RuleSet("test", rules.CURRENT.effective_from, (broken,))

    with pytest.raises(RulesError, match="no field 'received_on'"):
        EngineConfig(rulesets=(table,))


def test_a_local_target_cannot_escalate_and_a_window_cannot_stop() -> None:
    with pytest.raises(RulesError, match="escalates=False"):
        replace(rules.CURRENT.rule("local_area_surgery"), escalates=True)
    with pytest.raises(RulesError, match="closes by itself"):
        replace(
            rules.CURRENT.rule("draft_comments"),
            stops=rules.CURRENT.rule("final_plan").stops,
        )


def test_versions_must_be_in_order() -> None:
    later = RuleSet("2099.1", rules.CURRENT.effective_from.replace(year=2099), ())
    with pytest.raises(RulesError, match="oldest first"):
        rules.check_rulesets((later, rules.CURRENT))
    with pytest.raises(RulesError, match="distinct"):
        rules.check_rulesets((rules.CURRENT, rules.CURRENT))


def test_two_rows_with_one_name_are_refused() -> None:
    row = rules.CURRENT.rule("decision")
    with pytest.raises(RulesError, match="two rows"):
        RuleSet("x", rules.CURRENT.effective_from, (row, row))


def test_council_settings_cannot_touch_statutory_clocks() -> None:
    with pytest.raises(RulesError, match="not a configurable local target"):
        EngineConfig(council=CouncilConfig(local_amounts={"decision": 4}))
    with pytest.raises(RulesError, match="only local"):
        EngineConfig(council=CouncilConfig(disabled=frozenset({"final_plan"})))
    with pytest.raises(RulesError, match="no rules version has"):
        EngineConfig(council=CouncilConfig(lead_working_days={"nonsense": (3,)}))


def test_a_clock_rule_needs_a_start() -> None:
    with pytest.raises(RulesError, match="no start event"):
        ClockRule(
            name="x",
            title="x",
            authority=Authority.LOCAL,
            kind=ClockKind.DEADLINE,
            starts=(),
            due=Offset(StartDate(), 1, Count.WEEKS_AFTER),
            legal_basis="x",
            action="x",
            escalates=False,
        )
