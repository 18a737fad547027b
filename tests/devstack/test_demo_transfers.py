"""The demo's phase-transfer year: its plan, and a small cohort through the platform.

The plan (``devstack.demo_data.plan_transfers``) is checked on its own first: who is in
the cohort, by when each plan must name the next setting, the shares of answers and of
plans named in time, and that every command's body is one the placement and plans APIs
accept.

Then a small synthetic caseload of 2025 requests (a few children moving in September
2026, and a few who are not) is played by the demo's driver through the real platform
as ``make run`` starts it (``devstack.run.start_platform``: a broker launched from the
jars, every service and both processors as processes, on free ports): the demo
identifies the cohort through placement, consults schools, prepares and schedules
panels, records their decisions and their communication, and has plans amend each plan
naming the next setting, some after the deadline. The test knows the right answer
without the plan: the cohort is the children with an issued plan who are in Year 6,
Year 11 or N2 in the school year 2025/26, and the deadlines are those of
``STATUTORY_CLOCKS.md`` (Year 6 to secondary in September 2026: by Saturday 14 February
2026, act by Friday 13 February; Year 11 to college: by Monday 30 March 2026); a plan
amended after its day is late on the deadlines topic, in placement's cohort list and in
the deadlines read API.

The broker is the run's own, not the shared test broker: the demo's clock starts in
January 2025, and ticks a shared broker holds from other tests would have moved the
deadlines processor's time past it.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from pydantic import BaseModel

from devstack.demo import (
    DemoDriver,
    DemoServices,
    DemoSettings,
    DemoSummary,
    TopicWatcher,
    council_actions,
    plan_actions,
)
from devstack.demo_data import (
    DEMO_SCHOOLS,
    PlannedCase,
    TransferPlan,
    curriculum_year_in,
    default_period_end,
    generate_caseload,
    plan_transfers,
)
from devstack.dfe import LaFigures, load_la_figures
from devstack.issuer import LocalIssuer
from devstack.processes import Stack
from devstack.run import (
    Platform,
    RunLayout,
    auth_env,
    choose_ports,
    issuer_headers,
    kafka_ticker,
    notify_ledger,
    start_platform,
)
from placement.application.facts import FactsFollower
from placement.application.service import PlacementService
from placement.domain import InvalidCommand as PlacementInvalid
from placement.entrypoints import api_models as placement_api
from placement.settings import SOURCE as PLACEMENT_SOURCE
from plans.entrypoints.api_models import AmendmentBody
from send_schemas import intake as intake_contract
from send_schemas import plans as plans_contract
from sendkit.calendar import academic_year, act_by
from sendkit.envelope import ReceivedEvent
from sendkit.events import Metadata
from sendkit.store import InMemoryEventStore

YEAR = 2024
UNTIL = default_period_end(YEAR)
TRANSFER_YEAR = 2025

E2E_YEAR = 2025
E2E_UNTIL = date(2026, 7, 31)
E2E_SEED = 3
E2E_EXTRA = 2
"""Children with plans who move no phase in 2026, played beside the cohort."""

# STATUTORY_CLOCKS.md's worked examples: the right values, written out.
YEAR_6_DUE = date(2026, 2, 14)
YEAR_6_ACT_BY = date(2026, 2, 13)
YEAR_11_DUE = date(2026, 3, 30)
TRANSFER_YEARS = {-1: "school", 6: "school", 11: "post16"}


@cache
def figures() -> LaFigures:
    return load_la_figures("825", YEAR)


@cache
def caseload(scale: float, seed: int) -> tuple[PlannedCase, ...]:
    return tuple(generate_caseload(figures(), YEAR, scale, seed))


@cache
def transfers(scale: float, seed: int) -> TransferPlan:
    return plan_transfers(caseload(scale, seed), TRANSFER_YEAR, UNTIL)


def expected_cohort(cases: tuple[PlannedCase, ...], identified_on: date) -> set[int]:
    """The children due to move, counted here as the law and placement count them."""
    found: set[int] = set()
    for case in cases:
        plan = case.assessment.plan if case.assessment else None
        if plan is None or plan.issued_on >= identified_on:
            continue
        # The year stated at the request, one more each September since.
        at_request = academic_year(case.received_on)
        year = case.curriculum_year + academic_year(identified_on) - at_request
        if year in TRANSFER_YEARS:
            found.add(case.sequence)
    return found


# The plan -------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "seed"), [(0.05, 825), (1.0, 825), (0.05, 7)])
def test_the_cohort_is_every_plan_in_a_transfer_year_before_identification(
    scale: float, seed: int
) -> None:
    plan = transfers(scale, seed)
    last = plan.identifications[-1]

    found = {t.sequence for t in plan.transfers}

    assert plan.identifications == (date(2024, 9, 2), date(2025, 1, 6))
    assert found == expected_cohort(caseload(scale, seed), last)
    first = set(plan.cohorts[0])
    assert first == expected_cohort(caseload(scale, seed), plan.identifications[0])
    assert set(plan.cohorts[1]) == found - first
    for transfer in plan.transfers:
        case = next(c for c in caseload(scale, seed) if c.sequence == transfer.sequence)
        year = curriculum_year_in(case, TRANSFER_YEAR - 1)
        assert transfer.leaving_year == year
        assert transfer.transfer == TRANSFER_YEARS[year]


def test_each_due_date_is_the_day_before_15_february_or_31_march() -> None:
    plan = transfers(1.0, 825)
    kinds = {t.transfer for t in plan.transfers}

    assert kinds == {"school", "post16"}
    for transfer in plan.transfers:
        if transfer.transfer == "school":
            assert transfer.due_on == date(2025, 2, 14)
        else:
            # 30 March 2025 is a Sunday: act by Friday 28 March.
            assert transfer.due_on == date(2025, 3, 30)
            assert act_by(transfer.due_on) == date(2025, 3, 28)


def test_the_full_year_has_each_path_in_its_share() -> None:
    plan = transfers(1.0, 825)
    numbers = plan.figures(UNTIL)
    consulted = numbers["consultations"]

    assert numbers["cohort"] == len(plan.transfers) > 100
    # The synthetic shares are apportioned exactly: within one of each.
    assert abs(numbers["answered_within_15_days"] - 0.6 * consulted) < 1
    assert abs(numbers["answered_after_15_days"] - 0.25 * consulted) < 1
    assert numbers["unanswered_after_15_days"] > 0
    assert numbers["panel_deferred"] > 0
    assert numbers["deadline_met"] > 0
    assert numbers["deadline_late"] > 0
    states = {t.state_by(UNTIL) for t in plan.transfers}
    assert states <= {"met", "late", "overdue", "cancelled"}


@pytest.mark.parametrize(("scale", "seed"), [(0.05, 825), (1.0, 825)])
def test_every_fact_follows_the_one_it_depends_on(scale: float, seed: int) -> None:
    plan = transfers(scale, seed)
    panels = {(p.panel_on, s): p for p in plan.panels for s in p.sequences}
    by_sequence = {c.sequence: c for c in caseload(scale, seed)}

    for transfer in plan.transfers:
        case = by_sequence[transfer.sequence]
        assert case.assessment is not None
        assert case.assessment.plan is not None
        assert case.assessment.plan.issued_on < transfer.identified_on
        for consulted in transfer.consultations:
            assert transfer.identified_on < consulted.sent_on
            if consulted.answered_on is not None:
                assert consulted.sent_on < consulted.answered_on <= UNTIL
        if transfer.submitted_on is None:
            continue
        windows = max(c.due_on for c in transfer.consultations)
        assert windows < transfer.submitted_on
        for day in transfer.panels:
            panel = panels[(day, transfer.sequence)]
            assert transfer.submitted_on < panel.listed_on < panel.panel_on
            assert panel.manager_id == case.manager_id
        assert list(transfer.panels) == sorted(transfer.panels)
        assert transfer.outcomes[-1:] in (("setting_named",), ("deferred",))
        if transfer.communicated_on is not None:
            assert transfer.panels[-1] < transfer.communicated_on
        if transfer.amended_on is not None:
            assert transfer.communicated_on is not None
            assert transfer.communicated_on < transfer.amended_on <= UNTIL


@pytest.mark.parametrize(("scale", "seed"), [(0.05, 825), (1.0, 825)])
def test_no_transfer_amendment_falls_inside_a_reviews_own(
    scale: float, seed: int
) -> None:
    # Between a review's notice to amend and its amended plan, another amendment
    # would stop the review's final_amended_plan clock early.
    by_sequence = {c.sequence: c for c in caseload(scale, seed)}
    for transfer in transfers(scale, seed).transfers:
        amended = transfer.amended_on
        case = by_sequence[transfer.sequence]
        review = case.assessment.review if case.assessment else None
        if amended is None or review is None or review.decision != "amend":
            continue
        notice, issued = review.decision_notified_on, review.amended_on
        if notice is not None and notice <= amended:
            assert issued is not None
            assert issued < amended


BODIES: dict[str, type[BaseModel]] = {
    "consulted": placement_api.ConsultationBody,
    "answered": placement_api.AnswerBody,
    "submitted": placement_api.SubmissionBody,
    "decided": placement_api.PanelDecisionBody,
    "communicated": placement_api.CommunicationBody,
    "amended": AmendmentBody,
}


def test_every_body_is_one_the_placement_and_plans_apis_take() -> None:
    plan = transfers(1.0, 825)
    seen: set[str] = set()
    urns = {school.urn for school in DEMO_SCHOOLS}

    for transfer in plan.transfers:
        for step in transfer.steps():
            body = transfer.step_body(step)
            BODIES[step.kind].model_validate(body)
            seen.add(step.kind)
            if step.kind == "amended":
                assert body["setting_urn"] in urns
                assert "I" in body["changes"]
            if step.kind == "consulted" and body["setting_id_kind"] == "ukprn":
                assert 10_000_000 <= body["setting_id"] <= 19_999_999

    assert seen == set(BODIES)
    for panel in plan.panels:
        placement_api.PanelBody.model_validate(
            {
                "panel_on": panel.panel_on,
                "case_ids": [str(uuid.uuid4()) for _ in panel.sequences],
            }
        )


def test_the_demo_posts_the_transfers_in_order_after_each_plan() -> None:
    cases = caseload(0.05, 825)
    plan = transfers(0.05, 825)

    actions = plan_actions(cases, plan)
    council = council_actions(plan)

    moves = [a for a in actions if a.kind == "transfer"]
    assert len(moves) == sum(len(t.steps()) for t in plan.transfers) > 0
    assert [a.at for a in actions] == sorted(a.at for a in actions)
    assert [c.kind for c in council].count("identify") == 2
    assert [c.kind for c in council].count("list") == len(plan.panels)


# Placement identifies on the day the demo gives ----------------------------------


def _fed(store: InMemoryEventStore, event_type: str, data: dict[str, Any]) -> None:
    owner = event_type.split(".")[1]
    event = ReceivedEvent(
        id=str(uuid.uuid4()),
        type=event_type,
        source=f"/send/{owner}",
        subject=data["case_id"],
        time=datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        data=data,
        metadata=Metadata(actor="STAFF-101"),
        sequence=1,
        topic=f"send.{owner}.events",
        partition=0,
        offset=0,
        key=data["case_id"],
    )
    with store.transaction() as tx:
        FactsFollower()(event, tx)


def test_placement_records_the_identification_on_the_day_given() -> None:
    # A Year 5 child asked for in March 2025, with a plan from June: Year 6 in the
    # school year 2025/26, moving in September 2026. Placement's clock is the real
    # one; the demo replays 2025 and tells it the day it identifies the cohort.
    store = InMemoryEventStore(PLACEMENT_SOURCE)
    service = PlacementService(store)
    case_id = str(uuid.uuid4())
    _fed(
        store,
        intake_contract.RequestReceived.EVENT_TYPE,
        {
            "case_id": case_id,
            "requester_type": "parent",
            "channel": "email",
            "received_at": "2025-03-03T09:30:00Z",
            "school_urn": 990005,
            "curriculum_year": 5,
        },
    )
    _fed(
        store,
        plans_contract.PlanIssued.EVENT_TYPE,
        {
            "case_id": case_id,
            "issued_on": "2025-06-02",
            "setting_urn": 990005,
            "setting_type": "mainstream_maintained",
            "start_date": "2025-06-02",
        },
    )

    answer = service.identify_transfers(2026, identified_on=date(2025, 9, 1))

    assert answer.body["identified"] == [case_id]
    (entry,) = service.cohort(2026).entries
    assert entry.identified_on == date(2025, 9, 1)
    assert entry.due_on == YEAR_6_DUE
    assert entry.act_by == YEAR_6_ACT_BY
    with pytest.raises(PlacementInvalid, match=r"path\.year"):
        service.identify_transfers(2028, identified_on=date(2025, 9, 1))
    with pytest.raises(PlacementInvalid, match="identified_on"):
        service.identify_transfers(2026, identified_on=date(2100, 9, 1))


# Through the platform ----------------------------------------------------------


@dataclass
class TransferRun:
    """What the demo's driver left: its summary, its plan and the case ids."""

    summary: DemoSummary
    plan: TransferPlan
    cases: tuple[PlannedCase, ...]
    case_ids: dict[int, str]
    tracks: dict[str, list[dict[str, Any]]]
    output: str


def small_caseload() -> tuple[PlannedCase, ...]:
    """The 2026 cohort of a small 2025 caseload, and a few children not in it."""
    every = generate_caseload(figures(), E2E_YEAR, 0.05, E2E_SEED, until=E2E_UNTIL)
    cohort = {t.sequence for t in plan_transfers(every, 2026, E2E_UNTIL).transfers}
    others = [
        c
        for c in every
        if c.sequence not in cohort
        and c.assessment is not None
        and c.assessment.plan is not None
        and c.assessment.plan.issued_on < date(2025, 9, 1)
    ][:E2E_EXTRA]
    return tuple(c for c in every if c.sequence in cohort or c in others)


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransferRun]:
    cases = small_caseload()
    plan = plan_transfers(cases, 2026, E2E_UNTIL)
    out = io.StringIO()
    layout = RunLayout(tmp_path_factory.mktemp("transfers-run"))
    layout.prepare()
    ports, _ = choose_ports(free_only=True)
    stack = Stack(layout.logs)
    issuer = LocalIssuer(port=ports.issuer)
    issuer.start()
    try:
        platform = start_platform(
            stack, layout, ports, existing_kafka=None, auth=auth_env(issuer), out=out
        )
        yield play(platform, issuer, cases, plan, out)
    finally:
        stack.stop()
        issuer.stop()


def play(
    platform: Platform,
    issuer: LocalIssuer,
    cases: tuple[PlannedCase, ...],
    plan: TransferPlan,
    out: io.StringIO,
) -> TransferRun:
    send_tick, close_ticker = kafka_ticker(platform.bootstrap)
    settings = DemoSettings(year=E2E_YEAR, scale=0.05, until=E2E_UNTIL)
    try:
        with (
            TopicWatcher(platform.bootstrap) as watcher,
            notify_ledger(platform.layout.notify_db) as ledger,
        ):
            services = DemoServices(
                intake_url=platform.intake_url,
                mail_url=platform.mail_url,
                mail_dir=platform.layout.mail,
                ticker=send_tick,
                deadlines_url=platform.deadlines_url,
                ledger_status=ledger,
                plans_url=platform.plans_url,
                reviews_url=platform.reviews_url,
                staff_headers=issuer_headers(issuer),
                placement_url=platform.placement_url,
            )
            driver = DemoDriver(
                list(cases), services, watcher, settings, out, transfers=plan
            )
            try:
                summary = driver.run()
            finally:
                driver.close()
            with watcher.locked():
                tracks: dict[str, list[dict[str, Any]]] = {}
                for track in watcher.clocks.values():
                    tracks.setdefault(track.case_id, []).append(
                        {
                            "clock": track.clock,
                            "due_on": track.due_on,
                            "state": track.state,
                        }
                    )
    finally:
        close_ticker()
    return TransferRun(
        summary, plan, cases, dict(driver.case_ids), tracks, out.getvalue()
    )


def transfer_tracks(run: TransferRun, sequence: int) -> list[dict[str, Any]]:
    case_id = run.case_ids[sequence]
    return [t for t in run.tracks.get(case_id, []) if t["clock"].startswith("phase_")]


def test_the_small_cohort_has_year_6_and_year_11_children_met_and_late() -> None:
    # The known answer below needs each kind of child; this holds the caseload to it.
    cases = small_caseload()
    plan = plan_transfers(cases, 2026, E2E_UNTIL)
    years = {t.leaving_year for t in plan.transfers}
    states = {t.state_by(E2E_UNTIL) for t in plan.transfers}

    assert {6, 11} <= years
    assert {"met", "late"} <= states
    assert len(cases) - len(plan.transfers) == E2E_EXTRA


def test_placement_finds_the_cohort_the_law_says(transfer_run: TransferRun) -> None:
    cohort = expected_cohort(transfer_run.cases, date(2026, 1, 6))
    children = transfer_run.summary.transfers["children"]

    found = {c["case_id"] for c in children if c["identified_on"]}

    assert found == {transfer_run.case_ids[s] for s in cohort}
    assert transfer_run.summary.transfers["observed"]["cohort"] == len(cohort)
    identified = transfer_run.summary.transfers["identified"]
    assert sum(identified.values()) == len(cohort)
    # The children who move no phase have no transfer clock at all.
    for case in transfer_run.cases:
        if case.sequence not in cohort:
            assert transfer_tracks(transfer_run, case.sequence) == []


def test_each_deadline_is_the_statutory_one(transfer_run: TransferRun) -> None:
    by_case = {c["case_id"]: c for c in transfer_run.summary.transfers["children"]}

    for transfer in transfer_run.plan.transfers:
        case_id = transfer_run.case_ids[transfer.sequence]
        child = by_case[case_id]
        (track,) = transfer_tracks(transfer_run, transfer.sequence)
        if transfer.leaving_year == 11:
            assert track["clock"] == "phase_transfer_post16"
            want, act = YEAR_11_DUE, None  # a Monday: acted on that day
        else:
            assert track["clock"] == "phase_transfer_school"
            want, act = YEAR_6_DUE, YEAR_6_ACT_BY  # a Saturday: act on the Friday
        assert track["due_on"] == want.isoformat()
        assert child["placement_due_on"] == want.isoformat()
        assert child["placement_act_by"] == (None if act is None else act.isoformat())
        assert child["read_api_due_on"] == want.isoformat()


def test_the_late_ones_are_late_everywhere(transfer_run: TransferRun) -> None:
    by_case = {c["case_id"]: c for c in transfer_run.summary.transfers["children"]}
    late = 0

    for transfer in transfer_run.plan.transfers:
        child = by_case[transfer_run.case_ids[transfer.sequence]]
        (track,) = transfer_tracks(transfer_run, transfer.sequence)
        due = YEAR_11_DUE if transfer.leaving_year == 11 else YEAR_6_DUE
        amended = transfer.amended_on
        if amended is None:
            continue
        if amended > due:
            late += 1
            assert (track["state"], child["placement_status"]) == ("late", "named_late")
            assert child["read_api_status"] == "late"
        else:
            assert (track["state"], child["placement_status"]) == ("met", "named")
            assert child["read_api_status"] == "met"

    assert late > 0
    observed = transfer_run.summary.transfers["observed"]
    assert observed.get("deadline_late", 0) == late


def test_consultations_answered_in_15_days_meet_their_clock(
    transfer_run: TransferRun,
) -> None:
    consultations = [c for t in transfer_run.plan.transfers for c in t.consultations]
    in_time = sum(
        c.answered_on is not None and c.answered_on <= c.sent_on + timedelta(days=15)
        for c in consultations
    )
    unanswered = sum(c.answered_on is None for c in consultations)
    row = transfer_run.summary.clock("school_consultation")

    assert row is not None
    assert row.set == len(consultations)
    assert row.met == in_time
    assert row.overdue == unanswered
    assert row.late == len(consultations) - in_time - unanswered


def test_the_transfer_figures_reconcile(transfer_run: TransferRun) -> None:
    summary = transfer_run.summary
    transfer_problems = [
        p
        for p in summary.problems
        if "transfer" in p or "consultation" in p or "identifying" in p
    ]
    decided = summary.transfers["observed"]

    assert transfer_problems == []
    assert decided.get("panel_setting_named", 0) == len(transfer_run.plan.transfers)
    assert decided.get("communicated", 0) == len(transfer_run.plan.transfers)
    assert "Phase transfers into September 2026" in summary.render()
    assert "Phase transfers into September 2026" in transfer_run.output
