"""The demo caseload's later stages: assessment, plan, first review, in the DfE's shape.

Each agreed assessment is carried to a plan (or a notice that none will be issued) and
the plans issued early enough to their first annual review. The shares the published
figures give (plans within 20 weeks, review decisions within 4 weeks, the no-plan
share, the outcomes of reviews) are apportioned over what happens in the simulated
period, so each is within ``1 / n`` of its target; the dates follow the rules the
plans and reviews services enforce, and each command's body is valid for their APIs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel

from devstack.demo_data import (
    CLOCK_STATES,
    DEMO_SENCOS,
    DEMO_STAFF,
    STEP_KINDS,
    PlannedCase,
    PlannedStep,
    default_period_end,
    first_stage_ends_on,
    generate_caseload,
    planned_clocks,
    planned_timeliness,
    read_staff_csv,
    write_staff_csv,
)
from devstack.dfe import DemoDataError, LaFigures, load_la_figures
from intake.entrypoints.api_models import TimeLimitExceptionBody
from plans.entrypoints import api_models as plans_api
from reviews.entrypoints import api_models as reviews_api
from sendkit.calendar import is_working_day, last_of_months_starting_with

YEAR = 2024
UNTIL = default_period_end(YEAR)
RUNS = [(1.0, 825), (0.05, 825), (0.05, 7), (0.25, 2024)]


@cache
def figures() -> LaFigures:
    return load_la_figures("825", YEAR)


@cache
def caseload(scale: float, seed: int) -> tuple[PlannedCase, ...]:
    return tuple(generate_caseload(figures(), YEAR, scale, seed))


def within_one(count: int, total: int, share: float) -> bool:
    """An apportioned count is within one case of its share of ``total``."""
    return abs(count - share * total) < 1


# The shape ------------------------------------------------------------------------


def test_the_period_runs_to_the_end_of_the_next_summer_term() -> None:
    assert date(2025, 7, 31) == UNTIL
    assert first_stage_ends_on(caseload(1.0, 825)) < UNTIL


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_the_share_of_plans_within_20_weeks_is_the_published_one(
    scale: float, seed: int
) -> None:
    t = figures().timeliness
    plans = [c.assessment for c in caseload(scale, seed) if c.assessment]
    issued = [a for a in plans if a.plan is not None]

    within = sum(a.plan_within_20_weeks is True for a in issued)

    assert issued, "some plans should be issued in the period"
    assert within_one(within, len(issued), t.within_20_weeks / t.plans_issued)
    assert all(a.plan.issued_on <= UNTIL for a in issued if a.plan)


def test_the_full_year_issues_plans_at_the_published_32_point_1_percent() -> None:
    timeliness = planned_timeliness(caseload(1.0, 825))

    share = timeliness.within_20_weeks_share_excl_exceptions
    assert share is not None
    assert round(100 * share, 1) == figures().timeliness.published_within_20_weeks_pc
    # Buckinghamshire reported no exception to the 20-week limit, and nor does the plan.
    assert timeliness.plans_issued == timeliness.plans_issued_excl_exceptions
    assert timeliness.plans_issued > figures().timeliness.plans_issued
    # The reviews' figure reads as the published one too.
    reviews = figures().reviews
    assert reviews is not None
    decided = timeliness.within_4_weeks_share
    assert decided is not None
    assert round(100 * decided, 1) == reviews.published_within_4_weeks_pc == 52.1


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_a_few_assessments_end_in_a_notice_that_no_plan_will_be_issued(
    scale: float, seed: int
) -> None:
    published = figures().assessments
    assert published is not None
    assessments = [c.assessment for c in caseload(scale, seed) if c.assessment]

    notices = [a for a in assessments if a.no_plan_notified_on is not None]

    # The published share (0.6% for Buckinghamshire), and at least one to show it.
    assert (
        1 <= len(notices) <= max(1, round(published.no_plan_share * len(assessments)))
    )
    for a in notices:
        assert a.plan is None
        assert a.draft_served_on is None
        # Buckinghamshire sent none of its five within 16 weeks.
        assert a.no_plan_notified_on is not None
        assert a.no_plan_notified_on > a.no_plan_due_on


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_review_decisions_within_4_weeks_are_the_published_share(
    scale: float, seed: int
) -> None:
    reviews = figures().reviews
    assert reviews is not None
    held = [
        c.assessment.review
        for c in caseload(scale, seed)
        if c.assessment and c.assessment.review and c.assessment.review.held_on
    ]
    decided = [r for r in held if r.decision_notified_on is not None]

    within = sum(r.decided_in_time is True for r in decided)

    assert decided, "some first reviews should be decided in the period"
    assert within_one(within, len(decided), reviews.within_4_weeks_share)
    outcomes = Counter(r.decision for r in decided)
    total = reviews.outcome_amend + reviews.outcome_maintain + reviews.outcome_cease
    assert within_one(outcomes["amend"], len(decided), reviews.outcome_amend / total)


def test_the_reviews_due_in_the_period_are_held_in_the_published_share() -> None:
    reviews = figures().reviews
    assert reviews is not None
    plans = [
        c.assessment
        for c in caseload(1.0, 825)
        if c.assessment and c.assessment.plan is not None
    ]
    due = [a for a in plans if a.review and a.plan and a.review.due_on <= UNTIL]

    in_time = sum(a.review.held_in_time is True for a in due if a.review)

    assert due
    assert within_one(
        in_time, len(due), reviews.meetings_held / reviews.reviews_expected
    )


def test_the_later_stages_leave_the_requests_and_decisions_as_they_were() -> None:
    # The later stages draw from a generator of their own, so the first stage is the
    # same whatever the period.
    short = generate_caseload(figures(), YEAR, 0.05, 825, until=date(2025, 4, 30))
    full = caseload(0.05, 825)

    assert [replace_later(c) for c in short] == [replace_later(c) for c in full]
    assert sum(len(c.steps()) for c in short) < sum(len(c.steps()) for c in full)


def replace_later(case: PlannedCase) -> PlannedCase:
    return replace(case, assessment=None)


def test_a_period_ending_before_the_last_decision_is_refused() -> None:
    with pytest.raises(DemoDataError, match="must run at least until"):
        generate_caseload(figures(), YEAR, 0.05, 825, until=date(2024, 12, 31))


def test_the_same_seed_gives_the_same_later_stages() -> None:
    first = generate_caseload(figures(), YEAR, 0.05, 1234)
    again = generate_caseload(figures(), YEAR, 0.05, 1234)

    assert [c.steps() for c in first] == [c.steps() for c in again]
    assert first == again


# Consistent dates -------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_each_fact_follows_the_one_it_depends_on(scale: float, seed: int) -> None:
    for case in caseload(scale, seed):
        a = case.assessment
        if case.outcome != "agreed":
            assert a is None
            continue
        assert a is not None
        assert a.agreed_on == case.decision_notified_on
        assert a.final_plan_due_on == case.received_on + timedelta(weeks=20)
        assert a.no_plan_due_on == case.received_on + timedelta(weeks=16)
        for advice in a.advice:
            assert advice.requested_on > a.agreed_on
            assert advice.due_on == advice.requested_on + timedelta(weeks=6)
            if advice.received_on is not None:
                assert advice.requested_on < advice.received_on <= UNTIL
                if a.draft_served_on is not None:
                    assert advice.received_on < a.draft_served_on
        if a.draft_served_on is not None:
            window_end = a.comment_window_ends_on
            assert window_end == a.draft_served_on + timedelta(days=14)
            if a.comments_received_on is not None:
                assert a.draft_served_on < a.comments_received_on
        if a.plan is not None:
            issued = a.plan.issued_on
            assert a.draft_served_on is not None
            assert a.comments_received_on is not None
            assert a.comments_received_on <= issued
            if not a.agreed_to_early_final_plan:
                assert window_end is not None
                assert issued > window_end
            assert a.plan.start_date > issued
            assert is_working_day(issued)
        review = a.review
        if review is None:
            continue
        assert a.plan is not None
        assert review.due_on == last_of_months_starting_with(a.plan.issued_on, 12)
        assert a.plan.issued_on < review.arranged_on <= UNTIL
        assert review.arranged_on <= review.meeting_on - timedelta(weeks=8)
        assert (
            "parent" in review.invitee_roles or "young_person" in review.invitee_roles
        )
        assert set(review.attendee_roles) <= set(review.invitee_roles)
        for before in (review.referrals_made_on, review.papers_sent_on):
            if before is not None:
                assert review.arranged_on < before < review.meeting_on
        if review.held_on is None:
            assert review.decision_notified_on is None
            continue
        assert review.held_on == review.meeting_on <= UNTIL
        for after in (review.report_received_on, review.decision_notified_on):
            if after is not None:
                assert review.held_on < after <= UNTIL
        if review.amended_on is not None:
            assert review.decision == "amend"
            assert review.decision_notified_on is not None
            assert review.decision_notified_on < review.amended_on <= UNTIL
        if review.ceased_on is not None:
            assert review.decision == "cease"


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_steps_come_in_order_on_their_days_in_office_hours(
    scale: float, seed: int
) -> None:
    for case in caseload(scale, seed):
        steps = case.steps()
        if case.assessment is None:
            assert steps == ()
            continue
        assert [s.at for s in steps] == sorted(s.at for s in steps)
        assert len({s.at for s in steps}) == len(steps)
        kinds: list[str] = [s.kind for s in steps]
        assert kinds[0] == "advice_requested"
        for first, then in (
            ("draft_plan", "draft_comments"),
            ("draft_comments", "final_plan"),
            ("final_plan", "review_arranged"),
            ("review_arranged", "review_held"),
            ("review_held", "review_decided"),
            ("review_decided", "plan_amended"),
        ):
            if then in kinds:
                assert kinds.index(first) < kinds.index(then), (first, then)
        assert all(s.kind in STEP_KINDS for s in steps)


# The bodies the services' APIs take ----------------------------------------------


PLANS_BODIES: dict[str, type[BaseModel]] = {
    "advice_requested": plans_api.AdviceRequestBody,
    "advice_received": plans_api.AdviceReceivedBody,
    "no_plan_notice": plans_api.NoPlanBody,
    "draft_plan": plans_api.DraftPlanBody,
    "draft_comments": plans_api.DraftCommentsBody,
    "final_plan": plans_api.FinalPlanBody,
    "plan_amended": plans_api.AmendmentBody,
    "plan_ceased": plans_api.CessationBody,
}
REVIEWS_BODIES: dict[str, type[BaseModel]] = {
    "review_arranged": reviews_api.ArrangeReviewBody,
    "referrals_made": reviews_api.ReferralsMadeBody,
    "papers_sent": reviews_api.PapersSentBody,
    "review_held": reviews_api.ReviewHeldBody,
    "report_received": reviews_api.ReportReceivedBody,
    "review_decided": reviews_api.ReviewDecisionBody,
}


def test_every_step_body_is_valid_for_the_plans_reviews_or_intake_api() -> None:
    seen: Counter[str] = Counter()
    for case in caseload(1.0, 825):
        for step in case.steps():
            body = case.step_body(step)
            seen[step.kind] += 1
            if step.kind == "final_plan_exception":
                assert step.service == "intake"
                assert TimeLimitExceptionBody.model_validate(body).clock == "final_plan"
            elif step.service == "plans":
                PLANS_BODIES[step.kind].model_validate(body)
            else:
                assert step.service == "reviews"
                REVIEWS_BODIES[step.kind].model_validate(body)
    # Buckinghamshire published no exception to the 20-week limit; every other step
    # comes up in the full year (a cessation is rare: 1.2% of review outcomes).
    expected = set(STEP_KINDS) - {"final_plan_exception", "plan_ceased"}
    assert expected <= set(seen)


def test_the_body_of_another_cases_step_is_refused() -> None:
    first, second = [c for c in caseload(0.05, 825) if c.steps()][:2]
    step = second.steps()[0]

    with pytest.raises(DemoDataError, match="is not one of case"):
        first.step_body(step)
    with pytest.raises(DemoDataError):
        first.step_body(PlannedStep("final_plan", step.on, step.at))


def test_no_body_names_the_child() -> None:
    for case in caseload(0.05, 825):
        for step in case.steps():
            text = str(case.step_body(step))
            assert case.child_family_name not in text
            assert case.child_ref not in text


# The intended end of every clock -------------------------------------------------


@pytest.mark.parametrize(("scale", "seed"), RUNS)
def test_each_planned_clock_row_adds_up(scale: float, seed: int) -> None:
    rows = planned_clocks(caseload(scale, seed), UNTIL)

    for name, row in rows.items():
        assert set(row) == set(CLOCK_STATES), name
        parts = row["met"] + row["late"] + row["cancelled"] + row["overdue"]
        assert row["set"] == parts + row["open"], name


def test_the_planned_clocks_agree_with_the_plan_case_by_case() -> None:
    cases = caseload(0.05, 825)
    rows = planned_clocks(cases, UNTIL)
    timeliness = planned_timeliness(cases)
    agreed = [c for c in cases if c.outcome == "agreed"]

    assert rows["decision"]["set"] == rows["final_plan"]["set"] == len(cases)
    assert rows["no_plan_notice"]["set"] == len(agreed)
    assert rows["final_plan"]["met"] == timeliness.plans_within_20_weeks
    assert (
        rows["final_plan"]["met"] + rows["final_plan"]["late"]
        == timeliness.plans_issued
    )
    assert rows["review_decision"]["set"] == timeliness.reviews_held
    assert rows["review_decision"]["met"] == timeliness.review_decisions_within_4_weeks
    # One annual review clock per plan, and one more per review held.
    assert (
        rows["annual_review"]["set"]
        == timeliness.plans_issued + timeliness.reviews_held
    )


def test_an_unstopped_clock_is_overdue_once_a_tick_falls_after_its_due_day() -> None:
    case = next(c for c in caseload(0.05, 825) if c.assessment and c.assessment.plan)
    assert case.assessment is not None
    pending = replace(case, assessment=replace(case.assessment, plan=None, review=None))
    due = case.assessment.final_plan_due_on

    on_the_day = planned_clocks([pending], due)["final_plan"]
    day_after = planned_clocks([pending], due + timedelta(days=1))["final_plan"]

    assert (on_the_day["open"], on_the_day["overdue"]) == (1, 0)
    assert (day_after["open"], day_after["overdue"]) == (0, 1)


# The staff directory with the schools' SENCOs -------------------------------------


def test_each_school_has_a_synthetic_senco_in_the_directory(tmp_path: Path) -> None:
    path = write_staff_csv(tmp_path / "staff.csv", (*DEMO_STAFF, *DEMO_SENCOS))

    members = read_staff_csv(path)

    sencos = [m for m in members if m.role == "senco"]
    assert members == [*DEMO_STAFF, *DEMO_SENCOS]
    assert len({m.school_urn for m in sencos}) == len(sencos) > 0
    for senco in sencos:
        assert senco.manager_id is None
        assert senco.email.endswith("@send-demo.example.org")
        assert senco.name.endswith(" Example")
