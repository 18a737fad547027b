"""The clock rules table: every EHC time limit, one row each, versioned.

Each row (a ``ClockRule``) states a clock as the law does: the events that start it and
the field giving the date, the date its due date counts from, the amount and how it is
counted, the events that stop it (a stop dated on or before the due date is met, after
it late) or cancel it, the exception reasons that apply, the alert lead times, the legal
basis, and whether an overdue state escalates as a breach. Local targets are rows marked
``Authority.LOCAL`` and never escalate; ``Authority.GUIDANCE`` marks a Code of Practice
standard that is not a limit in the Regulations.

The table is Python data (a tuple of frozen dataclasses), not a TOML or YAML file,
because every reference in it is then checked before anything runs: an event type, a
counting rule or a field that does not exist is a type error or an import-time
``RulesError``, and the table needs no loader or schema of its own. It is still only
data: a change of law is a new ``RuleSet`` appended to ``RULESETS`` with its version and
the day it takes effect, reviewed as a diff of this file, and no engine code changes.
A clock records the version it was set under (chosen by the date of the fact that
started it, or, for a fact with no date of its own such as ``PhaseTransferDue``, the
day it was recorded), so a new version never rewrites the clocks set before it took
effect.

The law sets no time limit for ceasing a plan (CFA 2014 s.45, Reg 31): its row has no
due date, so it documents the absence and no clock is ever set for it.
"""

from __future__ import annotations

from datetime import date

from deadlines.domain import contract as ev
from deadlines.domain.errors import RulesError
from deadlines.domain.model import (
    EACH_EVENT,
    Authority,
    Cancel,
    ClockKind,
    ClockRule,
    Condition,
    Count,
    DayInYear,
    Earliest,
    ExceptionReason,
    FactOf,
    Field,
    FirstKnown,
    Offset,
    OnDayIfKnownInTime,
    RuleSet,
    SchoolYearStart,
    Start,
    StartDate,
    Stop,
    TermStartBefore,
)

STATUTORY = Authority.STATUTORY
GUIDANCE = Authority.GUIDANCE
LOCAL = Authority.LOCAL
DEADLINE = ClockKind.DEADLINE
WINDOW = ClockKind.WINDOW

# The reasons of Regs 5(4), 10(4), 13(3) and 27(3), which share their wording.
_ASSESSMENT_EXCEPTIONS = (
    ExceptionReason(
        "a",
        "advice was requested from a head teacher or principal during the period "
        "beginning one week before a continuous closure of the school of at least four "
        "weeks and ending one week before it re-opens",
    ),
    ExceptionReason(
        "b",
        "advice was requested from an early years provider during the period beginning "
        "one week before a continuous closure of at least four weeks and ending one "
        "week before it re-opens",
    ),
    ExceptionReason(
        "c",
        "exceptional personal circumstances affect the child or the child's parent, or "
        "the young person",
    ),
    ExceptionReason(
        "d",
        "the child or the child's parent, or the young person, is absent from the area "
        "of the authority for a continuous period of not less than four weeks",
    ),
)

# Reg 8(2) has its own list for professional advice.
_ADVICE_EXCEPTIONS = (
    ExceptionReason(
        "a",
        "exceptional circumstances affect the child or the child's parent, or the "
        "young person",
    ),
    ExceptionReason(
        "b",
        "the child or the child's parent, or the young person, is absent from the area "
        "of the authority for a continuous period of not less than four weeks",
    ),
    ExceptionReason(
        "c",
        "the child or the child's parent, or the young person, failed to keep an "
        "appointment for an examination or a test",
    ),
)

_RECEIVED = FactOf(ev.REQUEST_RECEIVED, "received_at")
_REVIEW_MEETING = FirstKnown(
    (
        FactOf(ev.REVIEW_HELD, "held_on", join="review_id"),
        FactOf(ev.REVIEW_ARRANGED, "meeting_on", join="review_id"),
    )
)
_PLAN_ENDED = (
    Cancel(ev.PLAN_CEASED, on="ceased_on"),
    Cancel(ev.PLAN_TRANSFERRED_OUT, on="transferred_on"),
)
_WITHDRAWN = Cancel(ev.REQUEST_WITHDRAWN, on="withdrawn_on")
_AMEND = (Condition("decision", equals="amend"),)
_NAMES_SETTING = (Condition("setting_urn", present=True),)
# An amendment notice outside a review (no review_id: a Condition without a value holds
# when the field is absent) begins clocks of its own; one naming the review whose
# decision to amend it carries out joins that review's clocks (the same clock id,
# review_id=...), so there is one final amended plan clock, capped at the meeting + 12
# weeks, whichever of the two events came first.
_AMENDMENT_STARTS = (
    Start(
        ev.AMENDMENT_PROPOSED,
        on="notice_sent_on",
        key=EACH_EVENT,
        when=(Condition("review_id"),),
    ),
    Start(ev.AMENDMENT_PROPOSED, on="notice_sent_on", key="review_id"),
    Start(ev.REVIEW_DECIDED, on="notified_on", key="review_id", when=_AMEND),
)
_PLAN_STARTS = (
    Start(ev.PLAN_ISSUED, on="issued_on"),
    Start(ev.REVIEW_HELD, on="held_on", key="review_id"),
)
# Reg 18(1) applies once a child is within 12 months of the move (in September of
# transfer_year): an amended plan naming the next setting issued from 1 September of
# the year before counts, even if recorded before the transfer was identified.
_TRANSFER_WINDOW = SchoolYearStart("transfer_year", years_before=1)
_LOCAL_BASIS = "Local practice standard of the council; not a statutory time limit"


RULES_2014: tuple[ClockRule, ...] = (
    # The assessment -------------------------------------------------------------------
    ClockRule(
        name="decision",
        title="Decision whether to assess",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.REQUEST_RECEIVED, on="received_at"),),
        due=Offset(StartDate(), 6, Count.WEEKS_AFTER),
        stops=(
            Stop(ev.ASSESSMENT_AGREED, on="notified_on"),
            Stop(ev.ASSESSMENT_REFUSED, on="notified_on"),
        ),
        cancels=(_WITHDRAWN,),
        exceptions=_ASSESSMENT_EXCEPTIONS,
        legal_basis="SEND Regulations 2014 reg 5(1)-(2); exceptions reg 5(4)",
        action="Notify the parent or young person whether the council will assess.",
        overdue_action="The decision whether to assess is overdue: notify it now.",
    ),
    ClockRule(
        name="advice",
        title="Professional advice",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.ADVICE_REQUESTED, on="received_by_body_on", key="advice_id"),),
        due=Offset(StartDate(), 6, Count.WEEKS_AFTER),
        stops=(Stop(ev.ADVICE_RECEIVED, on="received_on", match="advice_id"),),
        cancels=(_WITHDRAWN,),
        exceptions=_ADVICE_EXCEPTIONS,
        legal_basis="SEND Regulations 2014 reg 8(1); exceptions reg 8(2)",
        action="Make sure the advice requested reaches the council.",
        overdue_action="The advice is overdue: chase the advising body.",
    ),
    ClockRule(
        name="no_plan_notice",
        title="Notice that no plan will be issued",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.ASSESSMENT_AGREED, on="notified_on"),),
        due=Offset(_RECEIVED, 16, Count.WEEKS_AFTER),
        stops=(Stop(ev.NO_PLAN_NOTICE_SENT, on="notified_on"),),
        cancels=(
            Cancel(ev.DRAFT_PLAN_ISSUED, on="served_on", voids_breach=True),
            Cancel(ev.PLAN_ISSUED, on="issued_on", voids_breach=True),
            _WITHDRAWN,
        ),
        exceptions=_ASSESSMENT_EXCEPTIONS,
        legal_basis="SEND Regulations 2014 reg 10(1)-(3); exceptions reg 10(4)",
        action="Decide whether to issue a plan; if not, notify the parent or young "
        "person that no plan will be issued.",
        overdue_action="Decide whether to issue a plan: issue the draft plan or send "
        "the notice that no plan will be issued.",
    ),
    ClockRule(
        name="draft_comments",
        title="Comments on the draft plan",
        authority=STATUTORY,
        kind=WINDOW,
        starts=(Start(ev.DRAFT_PLAN_ISSUED, on="served_on", key=EACH_EVENT),),
        due=Offset(StartDate(), 15, Count.DAYS_BEGINNING_WITH),
        cancels=(_WITHDRAWN, Cancel(ev.NO_PLAN_NOTICE_SENT, on="notified_on")),
        lead_working_days=(0,),
        escalates=False,
        legal_basis="SEND Regulations 2014 reg 13(1); CFA 2014 s.38",
        action="The parent or young person may comment on the draft plan until this "
        "day; do not issue the final plan before it closes unless they agree.",
    ),
    ClockRule(
        name="school_consultation",
        title="School or college consultation response",
        authority=GUIDANCE,
        kind=DEADLINE,
        starts=(Start(ev.SETTING_CONSULTED, on="sent_on", key="consultation_id"),),
        due=Offset(StartDate(), 15, Count.DAYS_AFTER),
        stops=(
            Stop(ev.CONSULTATION_ANSWERED, on="answered_on", match="consultation_id"),
        ),
        cancels=(_WITHDRAWN, *_PLAN_ENDED),
        escalates=False,
        legal_basis="CFA 2014 ss.39-40 (duty to consult); 15 days is SEND Code of "
        "Practice 2015 good practice, not a time limit in the Regulations",
        action="Expect the school or college's response to the consultation.",
        overdue_action="The school or college has not answered the consultation: "
        "chase it.",
    ),
    ClockRule(
        name="final_plan",
        title="Final EHC plan",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.REQUEST_RECEIVED, on="received_at"),),
        due=Offset(StartDate(), 20, Count.WEEKS_AFTER),
        stops=(Stop(ev.PLAN_ISSUED, on="issued_on"),),
        cancels=(
            Cancel(ev.ASSESSMENT_REFUSED, on="notified_on"),
            Cancel(ev.NO_PLAN_NOTICE_SENT, on="notified_on"),
            _WITHDRAWN,
        ),
        exceptions=_ASSESSMENT_EXCEPTIONS,
        legal_basis="SEND Regulations 2014 reg 13(2); exceptions reg 13(3)",
        action="Issue the final EHC plan.",
        overdue_action="The final EHC plan is overdue: issue it now.",
    ),
    # Reviews --------------------------------------------------------------------------
    ClockRule(
        name="annual_review",
        title="Annual review",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=_PLAN_STARTS,
        due=Offset(StartDate(), 12, Count.MONTHS_STARTING_WITH),
        stops=(Stop(ev.REVIEW_HELD, on="held_on"),),
        cancels=_PLAN_ENDED,
        legal_basis="CFA 2014 s.44(1); SEND Code of Practice 2015 paras 9.166-9.185",
        action="Hold the review meeting of the EHC plan.",
        overdue_action="The annual review is overdue: hold the review meeting.",
    ),
    ClockRule(
        name="review_notice",
        title="Review invitations and papers",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.REVIEW_ARRANGED, on="arranged_on", key="review_id"),),
        due=Offset(Field("meeting_on"), 14, Count.DAYS_BEFORE),
        stops=(Stop(ev.REVIEW_PAPERS_SENT, on="sent_on", match="review_id"),),
        cancels=_PLAN_ENDED,
        legal_basis="SEND Regulations 2014 regs 20(2)-(4), 21",
        action="Send the review invitations and circulate the advice and information.",
        overdue_action="The review invitations and papers are overdue: send them now.",
    ),
    ClockRule(
        name="review_report",
        title="Review report",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.REVIEW_HELD, on="held_on", key="review_id"),),
        due=Offset(StartDate(), 2, Count.WEEKS_AFTER),
        stops=(Stop(ev.REVIEW_REPORT_RECEIVED, on="received_on", match="review_id"),),
        cancels=_PLAN_ENDED,
        legal_basis="SEND Regulations 2014 regs 20, 21",
        action="Make sure the review report reaches the council.",
        overdue_action="The review report is overdue: chase it.",
    ),
    ClockRule(
        name="review_decision",
        title="Decision after the review",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.REVIEW_HELD, on="held_on", key="review_id"),),
        due=Offset(StartDate(), 4, Count.WEEKS_AFTER),
        stops=(Stop(ev.REVIEW_DECIDED, on="notified_on", match="review_id"),),
        cancels=_PLAN_ENDED,
        legal_basis="SEND Regulations 2014 regs 20, 22; R (L, M, P) v Devon CC [2022]",
        action="Notify the decision to maintain, amend or cease the plan; an amend "
        "decision carries the proposed amendments.",
        overdue_action="The decision after the review is overdue: notify it now.",
    ),
    ClockRule(
        name="amendment_comments",
        title="Comments on the amendment notice",
        authority=STATUTORY,
        kind=WINDOW,
        starts=_AMENDMENT_STARTS,
        due=Offset(StartDate(), 15, Count.DAYS_BEGINNING_WITH),
        cancels=_PLAN_ENDED,
        lead_working_days=(0,),
        escalates=False,
        legal_basis="SEND Regulations 2014 reg 22(2)(c)",
        action="The parent or young person may comment on the proposed amendments "
        "until this day.",
    ),
    ClockRule(
        name="final_amended_plan",
        title="Final amended plan",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=_AMENDMENT_STARTS,
        due=Earliest(
            (
                Offset(StartDate(), 8, Count.WEEKS_AFTER),
                Offset(_REVIEW_MEETING, 12, Count.WEEKS_AFTER),
            )
        ),
        stops=(Stop(ev.PLAN_AMENDED, on="issued_on"),),
        cancels=_PLAN_ENDED,
        legal_basis="SEND Regulations 2014 reg 22(3); R (L, M, P) v Devon CC [2022]",
        action="Issue the final amended plan.",
        overdue_action="The final amended plan is overdue: issue it now.",
    ),
    # Transfers between phases and institutions ----------------------------------------
    ClockRule(
        name="phase_transfer_school",
        title="Phase transfer: next school named",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(
            Start(
                ev.PHASE_TRANSFER_DUE,
                on=None,
                key="transfer_year",
                when=(Condition("transfer", equals="school"),),
            ),
        ),
        due=DayInYear("transfer_year", 2, 15, before=True),
        guidance_due=DayInYear("transfer_year", 2, 15, before=False),
        guidance_note="The Regulations say 'before 15 February'; the Code of Practice "
        "(para 9.179) says 'by 15 February'.",
        stops=(Stop(ev.PLAN_AMENDED, on="issued_on", when=_NAMES_SETTING),),
        cancels=_PLAN_ENDED,
        ends_from=_TRANSFER_WINDOW,
        legal_basis="SEND Regulations 2014 reg 18(1)(b); SEND Code of Practice 2015 "
        "para 9.179",
        action="Review and amend the plan so that it names the school for the next "
        "phase.",
        overdue_action="The amended plan naming the next school is overdue: issue it.",
    ),
    ClockRule(
        name="phase_transfer_post16",
        title="Transfer to post-16: institution named",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(
            Start(
                ev.PHASE_TRANSFER_DUE,
                on=None,
                key="transfer_year",
                when=(Condition("transfer", equals="post16"),),
            ),
        ),
        due=DayInYear("transfer_year", 3, 31, before=True),
        stops=(Stop(ev.PLAN_AMENDED, on="issued_on", when=_NAMES_SETTING),),
        cancels=_PLAN_ENDED,
        ends_from=_TRANSFER_WINDOW,
        legal_basis="SEND Regulations 2014 reg 18(1)(a)",
        action="Review and amend the plan so that it names the post-16 institution.",
        overdue_action="The amended plan naming the post-16 institution is overdue: "
        "issue it.",
    ),
    ClockRule(
        name="post16_move",
        title="Move between post-16 institutions",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.POST16_MOVE_PROPOSED, on=None),),
        due=Offset(Field("move_on"), 5, Count.MONTHS_BEFORE),
        stops=(Stop(ev.PLAN_AMENDED, on="issued_on", when=_NAMES_SETTING),),
        cancels=_PLAN_ENDED,
        # The proposal carries no date of its own and the law gives no window, so
        # only an amendment recorded after the proposal ends the clock.
        ends_from=None,
        legal_basis="SEND Regulations 2014 reg 18(2)",
        action="Review and amend the plan so that it names the new institution at "
        "least five months before the move.",
        overdue_action="The amended plan for the move is overdue: issue it.",
    ),
    # Re-assessment ------------------------------------------------------------------
    ClockRule(
        name="reassessment_decision",
        title="Decision whether to re-assess",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.REASSESSMENT_REQUESTED, on="requested_on", key=EACH_EVENT),),
        due=Offset(StartDate(), 15, Count.DAYS_AFTER),
        stops=(Stop(ev.REASSESSMENT_DECIDED, on="notified_on"),),
        cancels=_PLAN_ENDED,
        legal_basis="SEND Regulations 2014 regs 23-24",
        action="Notify the decision whether to re-assess.",
        overdue_action="The decision whether to re-assess is overdue: notify it now.",
    ),
    ClockRule(
        name="reassessment_plan",
        title="Plan after re-assessment",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(
            Start(
                ev.REASSESSMENT_DECIDED,
                on="notified_on",
                key=EACH_EVENT,
                when=(Condition("agreed", equals=True),),
            ),
        ),
        due=Offset(StartDate(), 14, Count.WEEKS_AFTER),
        stops=(
            Stop(ev.PLAN_AMENDED, on="issued_on"),
            Stop(ev.PLAN_ISSUED, on="issued_on"),
        ),
        cancels=_PLAN_ENDED,
        exceptions=_ASSESSMENT_EXCEPTIONS,
        legal_basis="SEND Regulations 2014 regs 25(1), 27(2); exceptions reg 27(3)",
        action="Issue the amended or replacement plan after the re-assessment.",
        overdue_action="The plan after re-assessment is overdue: issue it now.",
    ),
    # Moving to another council --------------------------------------------------------
    ClockRule(
        name="plan_transfer",
        title="Transfer of the plan to the new council",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.TRANSFER_OUT_NOTIFIED, on="learned_on"),),
        due=OnDayIfKnownInTime(Field("move_on"), StartDate(), 15),
        stops=(Stop(ev.PLAN_TRANSFERRED_OUT, on="transferred_on"),),
        cancels=(Cancel(ev.PLAN_CEASED, on="ceased_on"),),
        legal_basis="SEND Regulations 2014 reg 15(2)-(3)",
        action="Transfer the EHC plan to the new council.",
        overdue_action="The plan's transfer to the new council is overdue: send it.",
    ),
    ClockRule(
        name="new_council_notice",
        title="New council's notice after a transfer",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(Start(ev.PLAN_TRANSFERRED_IN, on="transferred_on", key=EACH_EVENT),),
        due=Offset(StartDate(), 6, Count.WEEKS_AFTER),
        stops=(Stop(ev.NEW_COUNCIL_NOTICE_SENT, on="notified_on"),),
        cancels=(Cancel(ev.PLAN_CEASED, on="ceased_on"),),
        legal_basis="SEND Regulations 2014 reg 15(4)",
        action="Tell the parent or young person whether the council will re-assess "
        "and when it will review the plan.",
        overdue_action="The notice after the transfer is overdue: send it now.",
    ),
    # Ceasing: no time limit in the law ------------------------------------------------
    ClockRule(
        name="cease_plan",
        title="Ceasing the plan (no time limit)",
        authority=STATUTORY,
        kind=DEADLINE,
        starts=(
            Start(
                ev.REVIEW_DECIDED,
                on="notified_on",
                when=(Condition("decision", equals="cease"),),
            ),
        ),
        due=None,
        stops=(Stop(ev.PLAN_CEASED, on="ceased_on"),),
        legal_basis="CFA 2014 s.45; SEND Regulations 2014 reg 31 (consult first; the "
        "plan is maintained until the appeal period ends or an appeal is decided)",
        action="Consult before ceasing; maintain the plan until any appeal is over.",
    ),
    # Local practice targets -----------------------------------------------------------
    ClockRule(
        name="local_area_surgery",
        title="Request presented to the Local Area Surgery",
        authority=LOCAL,
        kind=DEADLINE,
        starts=(Start(ev.REQUEST_RECEIVED, on="received_at"),),
        due=Offset(StartDate(), 6, Count.WEEKS_AFTER),
        stops=(
            Stop(ev.REQUEST_PRESENTED, on="presented_on"),
            Stop(ev.ASSESSMENT_AGREED, on="notified_on"),
            Stop(ev.ASSESSMENT_REFUSED, on="notified_on"),
        ),
        cancels=(_WITHDRAWN,),
        escalates=False,
        configurable=True,
        legal_basis=_LOCAL_BASIS,
        action="Present the request to the Local Area Surgery.",
        overdue_action="The request has not been presented to the Local Area Surgery.",
    ),
    ClockRule(
        name="agency_referrals",
        title="Referrals to external agencies before the review",
        authority=LOCAL,
        kind=DEADLINE,
        starts=(Start(ev.REVIEW_ARRANGED, on="arranged_on", key="review_id"),),
        due=Offset(Field("meeting_on"), 8, Count.WEEKS_BEFORE),
        stops=(Stop(ev.REFERRALS_MADE, on="made_on", match="review_id"),),
        cancels=(Cancel(ev.REVIEW_HELD, on="held_on", match="review_id"), *_PLAN_ENDED),
        escalates=False,
        configurable=True,
        legal_basis=_LOCAL_BASIS,
        action="Make the referrals to social care, therapies or CAMHS that the review "
        "needs.",
        overdue_action="The referrals for the review have not been made.",
    ),
    ClockRule(
        name="senco_review_list",
        title="Upcoming review on the SENCO's termly list",
        authority=LOCAL,
        kind=DEADLINE,
        starts=_PLAN_STARTS,
        due=TermStartBefore(Offset(StartDate(), 12, Count.MONTHS_STARTING_WITH)),
        stops=(Stop(ev.REVIEW_LIST_SENT, on="sent_on"),),
        cancels=(Cancel(ev.REVIEW_HELD, on="held_on"), *_PLAN_ENDED),
        lead_working_days=(10, 0),
        escalates=False,
        legal_basis=_LOCAL_BASIS,
        action="Send the SENCO the list of their pupils' reviews due next term, "
        "including this one.",
        overdue_action="The term has started without this review on the SENCO's list.",
    ),
)

RULESETS: tuple[RuleSet, ...] = (
    RuleSet(version="2014.1", effective_from=date(2014, 9, 1), rules=RULES_2014),
)
"""Every version of the table, oldest first."""

CURRENT: RuleSet = RULESETS[-1]


def check_rulesets(rulesets: tuple[RuleSet, ...]) -> tuple[RuleSet, ...]:
    """Return ``rulesets`` if they are in order of taking effect, versions distinct."""
    if not rulesets:
        raise RulesError("there must be at least one rules version")
    versions = [rules.version for rules in rulesets]
    if len(set(versions)) != len(versions):
        raise RulesError(f"rules versions must be distinct, got {versions}")
    starts = [rules.effective_from for rules in rulesets]
    if starts != sorted(starts) or len(set(starts)) != len(starts):
        raise RulesError(
            "rules versions must be listed oldest first, each taking effect on a "
            f"later day than the one before: got {[d.isoformat() for d in starts]}"
        )
    return rulesets


def ruleset_for(day: date, rulesets: tuple[RuleSet, ...] = RULESETS) -> RuleSet:
    """The rules version in effect on ``day`` (the earliest one for older days)."""
    chosen = rulesets[0]
    for rules in rulesets:
        if rules.effective_from <= day:
            chosen = rules
    return chosen


def ruleset(version: str, rulesets: tuple[RuleSet, ...] = RULESETS) -> RuleSet:
    for rules in rulesets:
        if rules.version == version:
            return rules
    raise RulesError(
        f"no rules version {version!r}; known: {', '.join(r.version for r in rulesets)}"
    )


check_rulesets(RULESETS)
