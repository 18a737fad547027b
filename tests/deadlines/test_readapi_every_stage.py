"""One synthetic case through every stage, as the read API's timeline tells it.

The case's facts are published on the topics of the services that own them (intake,
plans, reviews, placement) and run through the deadlines pipeline as the worker runs
it, without a broker (``test_processor_clocks``' log and harness, with the engine
configuration the worker builds from term dates in its settings). After each stage
the clock events the processor published, and intake's facts, are folded into the
read model in a real store (SQLite, then PostgreSQL), and ``/cases/{id}/timeline`` is
asked what it now says: which clocks the case has, and for each one touched its
status, due date, legal basis, and the events that started and stopped it.

The dates, counted by hand from STATUTORY_CLOCKS.md:

- request received Mon 6 Jan 2025: decision by Mon 17 Feb, final plan by Mon 26 May
  (a bank holiday: act by Fri 23 May), Local Area Surgery by Mon 17 Feb (local);
- assessment agreed Mon 10 Feb: the no-plan notice by Mon 28 Apr (16 weeks from the
  request);
- advice requested, received by the bodies Wed 12 Feb: due Wed 26 Mar; A1 back Thu
  20 Mar (met), A2 back Wed 2 Apr (7 days late);
- draft plan served Mon 14 Apr: comments until Mon 28 Apr; the school consulted Tue 15
  Apr answers by Wed 30 Apr (guidance, not a limit);
- final plan issued Mon 19 May 2025: first review by Mon 18 May 2026, in the summer term
  starting Mon 13 Apr 2026, so the SENCO's list by Sun 12 Apr (act by Fri 10 Apr);
- review meeting Wed 29 Apr 2026: papers by Wed 15 Apr, referrals by Wed 4 Mar (local),
  report by Wed 13 May, decision by Wed 27 May; the next review by Wed 28 Apr 2027;
- the decision to amend notified Wed 13 May: comments until Wed 27 May, the final
  amended plan by the earlier of Wed 8 Jul (8 weeks) and Wed 22 Jul (meeting + 12
  weeks);
- Year 6 moving to secondary in September 2027: the amended plan naming the school by
  Sun 14 Feb 2027 (act by Fri 12 Feb; the Code's 15 Feb beside it);
- re-assessment requested Tue 4 May 2027: decision by Wed 19 May; agreed Fri 14 May,
  the plan after it by Fri 20 Aug;
- a move to another council on Thu 30 Sep 2027, known since Mon 2 Aug: the plan
  transferred on the day of the move.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_processor_clocks import Harness, Log, at_london, case_id

from deadlines.adapters.readmodel_store import fold_clock_event, fold_intake_event
from deadlines.application import readmodel
from deadlines.application.processor import SOURCE
from deadlines.application.readmodel import apply_clock_event, apply_intake_event
from deadlines.entrypoints.api import create_app
from deadlines.entrypoints.worker import engine_config
from deadlines.settings import DeadlinesSettings
from sendkit.calendar import LONDON
from sendkit.envelope import from_kafka
from sendkit.store import EventStore
from store_backends import DURABLE, durable_store

TERMS = (
    "2025-09-03/2025-12-19,2026-01-05/2026-03-27,"
    "2026-04-13/2026-07-22,2026-09-02/2026-12-18"
)
SCHOOL = 100001
COORDINATOR = "ehcco-7"

DECISION_BASIS = "SEND Regulations 2014 reg 5(1)-(2); exceptions reg 5(4)"
LOCAL_BASIS = "Local practice standard of the council; not a statutory time limit"


def t(name: str) -> str:
    """The full type of a published event, from its owner and name."""
    owner, short = name.split(".")
    return f"send.{owner}.{short}.v1"


class Walk:
    """One case: its facts published and processed, the read model kept in step."""

    def __init__(self, store: EventStore, client: TestClient) -> None:
        self.case = case_id("every-stage")
        self.log = Log()
        config = engine_config(DeadlinesSettings(term_dates=TERMS))
        self.harness = Harness(self.log, config=config)
        self.store = store
        self.client = client
        self.folded = 0

    async def fact(self, name: str, day: str, **data: Any) -> str:
        """Publish and process ``owner.Name`` recorded on ``day``; return its id."""
        owner, short = name.split(".")
        when = datetime.combine(date.fromisoformat(day), time(10), LONDON)
        record = self.log.event(
            self.case, short, data, when=when.astimezone(UTC), service=owner
        )
        await self.harness.deliver([record])
        event = from_kafka(record)
        if owner == "intake":
            with self.store.transaction() as tx:
                fold_intake_event(event, tx)
        return event.id

    async def tick(self, day: str) -> None:
        await self.harness.deliver(self.log.tick(at_london(date.fromisoformat(day))))

    def timeline(self) -> dict[str, dict[str, Any]]:
        """Fold the clock events published since the last look; ask the API."""
        fresh = self.harness.outputs(self.case)[self.folded :]
        for event in fresh:
            with self.store.transaction() as tx:
                fold_clock_event(event, tx)
        self.folded += len(fresh)
        answer = self.client.get(f"/cases/{self.case}/timeline")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["school_urn"], body["coordinator_id"]) == (SCHOOL, COORDINATOR)
        return {clock["clock_id"]: clock for clock in body["clocks"]}


def started(clock: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """What the timeline says started ``clock``: its day, event type and event id."""
    start = clock["started"]
    return start["on"], start["by_event_type"], start["by_event_id"]


def stopped(clock: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """What the timeline says stopped ``clock``: its day, event type and event id."""
    stop = clock["stopped"]
    return None if stop is None else (stop["on"], stop["by"], stop["by_event_id"])


def shown(clock: dict[str, Any]) -> tuple[str, str, bool, str]:
    """The clock's status, due date, whether statutory, and its authority."""
    return clock["status"], clock["due_on"], clock["statutory"], clock["authority"]


@pytest.fixture(params=DURABLE)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """The read model's store: the walk runs on SQLite and on PostgreSQL."""
    with durable_store(str(request.param), tmp_path / "deadlines", SOURCE) as opened:
        yield opened


@pytest.fixture
def walk(
    store: EventStore, auth_env: dict[str, str], manager_headers: dict[str, str]
) -> Iterator[Walk]:
    app = create_app(DeadlinesSettings(), store=store, projector=False)
    with TestClient(app, headers=manager_headers) as client:
        yield Walk(store, client)


async def test_the_timeline_answers_for_one_case_at_every_stage(walk: Walk) -> None:
    # The request --------------------------------------------------------------------
    request = await walk.fact(
        "intake.RequestReceived",
        "2025-01-06",
        requester_type="parent",
        channel="email",
        received_at="2025-01-06T10:00:00Z",
        school_urn=SCHOOL,
        curriculum_year=5,
    )
    await walk.fact(
        "intake.CoordinatorAssigned", "2025-01-06", coordinator_id=COORDINATOR
    )
    clocks = walk.timeline()

    assert set(clocks) == {"decision", "final_plan", "local_area_surgery"}
    assert shown(clocks["decision"]) == ("open", "2025-02-17", True, "statutory")
    assert clocks["decision"]["legal_basis"] == DECISION_BASIS
    assert started(clocks["decision"]) == (
        "2025-01-06",
        t("intake.RequestReceived"),
        request,
    )
    assert stopped(clocks["decision"]) is None
    assert clocks["final_plan"]["due_on"] == "2025-05-26"
    assert clocks["final_plan"]["act_by"] == "2025-05-23"
    assert shown(clocks["local_area_surgery"]) == ("open", "2025-02-17", False, "local")
    assert clocks["local_area_surgery"]["legal_basis"] == LOCAL_BASIS

    # Ten working days before the decision is due -----------------------------------
    await walk.tick("2025-02-03")
    clocks = walk.timeline()

    assert clocks["decision"]["status"] == "approaching"
    assert clocks["decision"]["last_alert"]["lead_working_days"] == 10

    # The Local Area Surgery and the decision to assess -----------------------------
    presented = await walk.fact(
        "intake.RequestPresentedAtSurgery", "2025-02-04", presented_on="2025-02-04"
    )
    agreed = await walk.fact(
        "intake.AssessmentAgreed", "2025-02-10", notified_on="2025-02-10"
    )
    clocks = walk.timeline()

    assert set(clocks) == {
        "decision",
        "final_plan",
        "local_area_surgery",
        "no_plan_notice",
    }
    assert clocks["decision"]["status"] == "met"
    assert stopped(clocks["decision"]) == (
        "2025-02-10",
        t("intake.AssessmentAgreed"),
        agreed,
    )
    assert clocks["local_area_surgery"]["status"] == "met"
    assert stopped(clocks["local_area_surgery"]) == (
        "2025-02-04",
        t("intake.RequestPresentedAtSurgery"),
        presented,
    )
    no_plan = clocks["no_plan_notice"]
    assert shown(no_plan) == ("open", "2025-04-28", True, "statutory")
    assert no_plan["counts_from"] == "2025-01-06"
    assert no_plan["legal_basis"].startswith("SEND Regulations 2014 reg 10(1)-(3)")
    assert started(no_plan) == ("2025-02-10", t("intake.AssessmentAgreed"), agreed)

    # Professional advice ------------------------------------------------------------
    asked = {}
    for advice_id, body in (("A1", "educational psychology"), ("A2", "health")):
        asked[advice_id] = await walk.fact(
            "plans.AdviceRequested",
            "2025-02-12",
            advice_id=advice_id,
            body=body,
            received_by_body_on="2025-02-12",
        )
    back_in_time = await walk.fact(
        "plans.AdviceReceived", "2025-03-20", advice_id="A1", received_on="2025-03-20"
    )
    back_late = await walk.fact(
        "plans.AdviceReceived", "2025-04-02", advice_id="A2", received_on="2025-04-02"
    )
    clocks = walk.timeline()

    first, second = clocks["advice[advice_id=A1]"], clocks["advice[advice_id=A2]"]
    assert shown(first) == ("met", "2025-03-26", True, "statutory")
    assert first["legal_basis"] == "SEND Regulations 2014 reg 8(1); exceptions reg 8(2)"
    assert started(first) == ("2025-02-12", t("plans.AdviceRequested"), asked["A1"])
    assert stopped(first) == ("2025-03-20", t("plans.AdviceReceived"), back_in_time)
    assert shown(second) == ("late", "2025-03-26", True, "statutory")
    assert started(second) == ("2025-02-12", t("plans.AdviceRequested"), asked["A2"])
    assert stopped(second) == ("2025-04-02", t("plans.AdviceReceived"), back_late)
    assert second["stopped"]["days_late"] == 7

    # The draft plan, and the school consulted --------------------------------------
    draft = await walk.fact(
        "plans.DraftPlanIssued", "2025-04-14", served_on="2025-04-14"
    )
    consulted = await walk.fact(
        "placement.SettingConsulted",
        "2025-04-15",
        consultation_id="K1",
        setting_id="S1",
        sent_on="2025-04-15",
    )
    answered = await walk.fact(
        "placement.ConsultationAnswered",
        "2025-04-24",
        consultation_id="K1",
        answered_on="2025-04-24",
        outcome="yes",
    )
    clocks = walk.timeline()

    assert clocks["no_plan_notice"]["status"] == "cancelled"
    assert clocks["no_plan_notice"]["cancelled"] == {
        "on": "2025-04-14",
        "by": t("plans.DraftPlanIssued"),
        "by_event_id": draft,
        "breach_voided": True,
    }
    comments = clocks["draft_comments[DraftPlanIssued#1]"]
    assert shown(comments) == ("open", "2025-04-28", True, "statutory")
    assert comments["kind"] == "window"
    assert comments["legal_basis"] == "SEND Regulations 2014 reg 13(1); CFA 2014 s.38"
    assert started(comments) == ("2025-04-14", t("plans.DraftPlanIssued"), draft)
    school = clocks["school_consultation[consultation_id=K1]"]
    assert shown(school) == ("met", "2025-04-30", False, "guidance")
    assert school["legal_basis"].startswith("CFA 2014 ss.39-40")
    assert started(school) == ("2025-04-15", t("placement.SettingConsulted"), consulted)
    assert stopped(school) == (
        "2025-04-24",
        t("placement.ConsultationAnswered"),
        answered,
    )

    # The comments window closes by itself -----------------------------------------
    await walk.tick("2025-04-29")
    clocks = walk.timeline()

    comments = clocks["draft_comments[DraftPlanIssued#1]"]
    assert comments["status"] == "met"
    assert stopped(comments) == ("2025-04-28", "window closed", None)

    # The final plan -----------------------------------------------------------------
    issued = await walk.fact(
        "plans.PlanIssued",
        "2025-05-19",
        issued_on="2025-05-19",
        setting_urn="100001",
        setting_type="mainstream",
        start_date="2025-09-03",
    )
    clocks = walk.timeline()

    assert shown(clocks["final_plan"]) == ("met", "2025-05-26", True, "statutory")
    assert stopped(clocks["final_plan"]) == (
        "2025-05-19",
        t("plans.PlanIssued"),
        issued,
    )
    review = clocks["annual_review"]
    assert shown(review) == ("open", "2026-05-18", True, "statutory")
    assert review["legal_basis"].startswith("CFA 2014 s.44(1)")
    assert started(review) == ("2025-05-19", t("plans.PlanIssued"), issued)
    assert review["started"]["rule_starts"] == [
        t("plans.PlanIssued"),
        t("reviews.ReviewHeld"),
    ]
    listing = clocks["senco_review_list"]
    assert shown(listing) == ("open", "2026-04-12", False, "local")
    assert listing["act_by"] == "2026-04-10"
    assert listing["legal_basis"] == LOCAL_BASIS
    assert started(listing) == ("2025-05-19", t("plans.PlanIssued"), issued)

    # The annual review: arranged, referrals, the SENCO's list, papers, meeting -------
    arranged = await walk.fact(
        "reviews.ReviewArranged",
        "2026-01-05",
        review_id="R1",
        meeting_on="2026-04-29",
        arranged_on="2026-01-05",
    )
    referred = await walk.fact(
        "reviews.AgencyReferralsMade",
        "2026-02-20",
        review_id="R1",
        made_on="2026-02-20",
    )
    listed = await walk.fact(
        "reviews.ReviewListSentToSenco",
        "2026-03-20",
        sent_on="2026-03-20",
        term_starts_on="2026-04-13",
    )
    papers = await walk.fact(
        "reviews.ReviewPapersSent", "2026-04-14", review_id="R1", sent_on="2026-04-14"
    )
    held = await walk.fact(
        "reviews.ReviewHeld", "2026-04-29", review_id="R1", held_on="2026-04-29"
    )
    clocks = walk.timeline()

    notice = clocks["review_notice[review_id=R1]"]
    assert shown(notice) == ("met", "2026-04-15", True, "statutory")
    assert notice["legal_basis"] == "SEND Regulations 2014 regs 20(2)-(4), 21"
    assert started(notice) == ("2026-01-05", t("reviews.ReviewArranged"), arranged)
    assert stopped(notice) == ("2026-04-14", t("reviews.ReviewPapersSent"), papers)
    referrals = clocks["agency_referrals[review_id=R1]"]
    assert shown(referrals) == ("met", "2026-03-04", False, "local")
    assert started(referrals) == ("2026-01-05", t("reviews.ReviewArranged"), arranged)
    assert stopped(referrals) == (
        "2026-02-20",
        t("reviews.AgencyReferralsMade"),
        referred,
    )
    assert clocks["senco_review_list"]["status"] == "met"
    assert stopped(clocks["senco_review_list"]) == (
        "2026-03-20",
        t("reviews.ReviewListSentToSenco"),
        listed,
    )
    assert clocks["annual_review"]["status"] == "met"
    assert stopped(clocks["annual_review"]) == (
        "2026-04-29",
        t("reviews.ReviewHeld"),
        held,
    )
    next_review = clocks["annual_review[review_id=R1]"]
    assert shown(next_review) == ("open", "2027-04-28", True, "statutory")
    assert started(next_review) == ("2026-04-29", t("reviews.ReviewHeld"), held)
    # The next review falls after the last term the council has given: no list yet.
    assert "senco_review_list[review_id=R1]" not in clocks
    report = clocks["review_report[review_id=R1]"]
    assert shown(report) == ("open", "2026-05-13", True, "statutory")
    assert started(report) == ("2026-04-29", t("reviews.ReviewHeld"), held)
    decision = clocks["review_decision[review_id=R1]"]
    assert shown(decision) == ("open", "2026-05-27", True, "statutory")
    assert decision["legal_basis"].startswith("SEND Regulations 2014 regs 20, 22")

    # The report, the decision to amend and the amendment notice --------------------
    reported = await walk.fact(
        "reviews.ReviewReportReceived",
        "2026-05-06",
        review_id="R1",
        received_on="2026-05-06",
    )
    decided = await walk.fact(
        "reviews.ReviewDecided",
        "2026-05-13",
        review_id="R1",
        decision="amend",
        notified_on="2026-05-13",
    )
    await walk.fact(
        "plans.AmendmentProposed",
        "2026-05-13",
        notice_sent_on="2026-05-13",
        review_id="R1",
    )
    clocks = walk.timeline()

    assert stopped(clocks["review_report[review_id=R1]"]) == (
        "2026-05-06",
        t("reviews.ReviewReportReceived"),
        reported,
    )
    assert clocks["review_decision[review_id=R1]"]["status"] == "met"
    assert stopped(clocks["review_decision[review_id=R1]"]) == (
        "2026-05-13",
        t("reviews.ReviewDecided"),
        decided,
    )
    amended = clocks["final_amended_plan[review_id=R1]"]
    assert shown(amended) == ("open", "2026-07-08", True, "statutory")
    assert amended["legal_basis"].startswith("SEND Regulations 2014 reg 22(3)")
    # The notice names the review, so it joins the clock its decision started.
    assert started(amended) == ("2026-05-13", t("reviews.ReviewDecided"), decided)
    assert not any(name.startswith("final_amended_plan[Amend") for name in clocks)
    window = clocks["amendment_comments[review_id=R1]"]
    assert shown(window) == ("open", "2026-05-27", True, "statutory")
    assert started(window) == ("2026-05-13", t("reviews.ReviewDecided"), decided)

    # The amendment comments close; the final amended plan -------------------------
    await walk.tick("2026-05-28")
    plan_amended = await walk.fact(
        "plans.PlanAmended", "2026-06-24", issued_on="2026-06-24", changes=["F"]
    )
    clocks = walk.timeline()

    assert stopped(clocks["amendment_comments[review_id=R1]"]) == (
        "2026-05-27",
        "window closed",
        None,
    )
    assert clocks["final_amended_plan[review_id=R1]"]["status"] == "met"
    assert stopped(clocks["final_amended_plan[review_id=R1]"]) == (
        "2026-06-24",
        t("plans.PlanAmended"),
        plan_amended,
    )

    # The phase transfer to secondary school ---------------------------------------
    due = await walk.fact(
        "placement.PhaseTransferDue",
        "2026-09-01",
        transfer="school",
        transfer_year=2027,
    )
    clocks = walk.timeline()

    transfer = clocks["phase_transfer_school[transfer_year=2027]"]
    assert shown(transfer) == ("open", "2027-02-14", True, "statutory")
    assert transfer["act_by"] == "2027-02-12"
    assert transfer["guidance_due_on"] == "2027-02-15"
    assert transfer["legal_basis"].startswith("SEND Regulations 2014 reg 18(1)(b)")
    assert started(transfer) == (None, t("placement.PhaseTransferDue"), due)

    named = await walk.fact(
        "plans.PlanAmended",
        "2027-02-10",
        issued_on="2027-02-10",
        setting_urn="100002",
        changes=["I"],
    )
    clocks = walk.timeline()

    transfer = clocks["phase_transfer_school[transfer_year=2027]"]
    assert transfer["status"] == "met"
    assert stopped(transfer) == ("2027-02-10", t("plans.PlanAmended"), named)

    # The next review is missed -----------------------------------------------------
    await walk.tick("2027-04-29")
    clocks = walk.timeline()

    assert clocks["annual_review[review_id=R1]"]["status"] == "overdue"
    assert clocks["annual_review[review_id=R1]"]["overdue_since"] == "2027-04-29"

    # Re-assessment ----------------------------------------------------------------
    requested = await walk.fact(
        "plans.ReassessmentRequested", "2027-05-04", requested_on="2027-05-04"
    )
    reassess = await walk.fact(
        "plans.ReassessmentDecided", "2027-05-14", notified_on="2027-05-14", agreed=True
    )
    replaced = await walk.fact(
        "plans.PlanAmended", "2027-07-30", issued_on="2027-07-30", changes=["B", "F"]
    )
    clocks = walk.timeline()

    asked_again = clocks["reassessment_decision[ReassessmentRequested#1]"]
    assert shown(asked_again) == ("met", "2027-05-19", True, "statutory")
    assert asked_again["legal_basis"] == "SEND Regulations 2014 regs 23-24"
    assert started(asked_again) == (
        "2027-05-04",
        t("plans.ReassessmentRequested"),
        requested,
    )
    assert stopped(asked_again) == (
        "2027-05-14",
        t("plans.ReassessmentDecided"),
        reassess,
    )
    replan = clocks["reassessment_plan[ReassessmentDecided#1]"]
    assert shown(replan) == ("met", "2027-08-20", True, "statutory")
    assert started(replan) == ("2027-05-14", t("plans.ReassessmentDecided"), reassess)
    assert stopped(replan) == ("2027-07-30", t("plans.PlanAmended"), replaced)

    # A move to another council ------------------------------------------------------
    notified = await walk.fact(
        "plans.PlanTransferOutNotified",
        "2027-08-02",
        move_on="2027-09-30",
        learned_on="2027-08-02",
    )
    moved = await walk.fact(
        "plans.PlanTransferredOut", "2027-09-30", transferred_on="2027-09-30"
    )
    clocks = walk.timeline()

    moving = clocks["plan_transfer"]
    assert shown(moving) == ("met", "2027-09-30", True, "statutory")
    assert moving["legal_basis"] == "SEND Regulations 2014 reg 15(2)-(3)"
    assert started(moving) == (
        "2027-08-02",
        t("plans.PlanTransferOutNotified"),
        notified,
    )
    assert stopped(moving) == ("2027-09-30", t("plans.PlanTransferredOut"), moved)
    missed = clocks["annual_review[review_id=R1]"]
    assert missed["status"] == "cancelled"
    assert missed["cancelled"] == {
        "on": "2027-09-30",  # the day the plan was transferred
        "by": t("plans.PlanTransferredOut"),
        "by_event_id": moved,
        "breach_voided": False,
    }
    # Every clock the case ever had, each with what started it.
    assert set(clocks) == {
        "decision",
        "final_plan",
        "local_area_surgery",
        "no_plan_notice",
        "advice[advice_id=A1]",
        "advice[advice_id=A2]",
        "draft_comments[DraftPlanIssued#1]",
        "school_consultation[consultation_id=K1]",
        "annual_review",
        "senco_review_list",
        "review_notice[review_id=R1]",
        "agency_referrals[review_id=R1]",
        "annual_review[review_id=R1]",
        "review_report[review_id=R1]",
        "review_decision[review_id=R1]",
        "amendment_comments[review_id=R1]",
        "final_amended_plan[review_id=R1]",
        "phase_transfer_school[transfer_year=2027]",
        "reassessment_decision[ReassessmentRequested#1]",
        "reassessment_plan[ReassessmentDecided#1]",
        "plan_transfer",
    }
    assert all(clock["started"]["by_event_type"] for clock in clocks.values())
    assert all(
        clock["started"]["by_event_type"] in clock["started"]["rule_starts"]
        for clock in clocks.values()
    )


async def test_clock_events_of_an_older_worker_still_name_the_start_they_can() -> None:
    # ClockSet events written before started_by existed: the start's id is the
    # causation id, and its type is known when the rule has one start type; a rule
    # with two start types cannot say which started it.
    case = case_id("older-worker")
    log = Log()
    harness = Harness(log)
    request = log.request(case, "2025-01-06T10:00:00Z")
    later = [
        log.event(case, "AssessmentAgreed", {"notified_on": "2025-02-10"}),
        log.event(
            case,
            "AdviceRequested",
            {"advice_id": "A1", "received_by_body_on": "2025-02-12"},
            service="plans",
        ),
        log.event(case, "PlanIssued", {"issued_on": "2025-05-19"}, service="plans"),
    ]
    doc = apply_intake_event(None, from_kafka(request))

    await harness.deliver([request, *later])
    for event in harness.outputs(case):
        old = dict(event.data)
        for name in ("started_by", "started_by_event_id", "stopped_by_event_id"):
            old.pop(name, None)
        doc = apply_clock_event(doc, dataclasses.replace(event, data=old))
    assert doc is not None
    clocks = {c["clock_id"]: c for c in readmodel.timeline(doc)["clocks"]}

    assert started(clocks["decision"]) == (
        "2025-01-06",
        t("intake.RequestReceived"),
        from_kafka(request).id,
    )
    assert started(clocks["advice[advice_id=A1]"])[1] == t("plans.AdviceRequested")
    assert started(clocks["annual_review"]) == (
        "2025-05-19",
        None,
        from_kafka(later[2]).id,
    )
    assert stopped(clocks["decision"]) == (
        "2025-02-10",
        t("intake.AssessmentAgreed"),
        None,
    )
