"""Helpers of the deadlines tests: a case's events, ticks, and one scenario per clock.

A scenario says how to start its clock, stop it, cancel it, except it and correct it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from deadlines.domain import contract as ev
from deadlines.domain.council import CouncilConfig, Term
from deadlines.domain.engine import CaseEvent, Emitted
from deadlines.domain.evaluate import EngineConfig
from sendkit.calendar import LONDON

CASE = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"

Spec = tuple[str, dict[str, Any]]


def at(day: date, hour: int = 9) -> datetime:
    """A tick at ``hour`` o'clock London time on ``day``."""
    return datetime.combine(day, time(hour), LONDON)


class Case:
    """Numbers the events of one case so their ids are stable from run to run."""

    def __init__(self, case_id: str = CASE) -> None:
        self.case_id = case_id
        self._numbers = itertools.count(1)

    def event(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        recorded_at: datetime | None = None,
        **fields: Any,
    ) -> CaseEvent:
        number = next(self._numbers)
        payload = {**(data or {}), **fields}
        event_id = f"{self.case_id}-{number}"
        return CaseEvent(event_id, event_type, self.case_id, payload, recorded_at)

    def events(self, specs: Iterable[Spec]) -> list[CaseEvent]:
        return [self.event(kind, data) for kind, data in specs]


Step = Spec | date
"""A step of a case's story: a fact recorded, or a day whose round of ticks comes."""


def short(output: Emitted) -> str:
    """``ClockSet`` for ``send.deadlines.ClockSet.v1``."""
    return output.type.split(".")[2]


def of(
    outputs: Sequence[Emitted], clock_id: str, kind: str | None = None
) -> list[Emitted]:
    return [
        o
        for o in outputs
        if o.event.clock_id == clock_id and (kind is None or short(o) == kind)
    ]


def one(outputs: Sequence[Emitted], clock_id: str, kind: str) -> Emitted:
    found = of(outputs, clock_id, kind)
    assert len(found) == 1, f"expected one {kind} of {clock_id}, got {found}"
    return found[0]


def received(day: date) -> Spec:
    return ev.REQUEST_RECEIVED, {
        "received_at": f"{day.isoformat()}T10:00:00+00:00",
        "school_urn": 100001,
        "curriculum_year": 5,
        "requester_type": "parent",
        "channel": "email",
    }


def d(text: str) -> date:
    return date.fromisoformat(text)


TERMS = CouncilConfig(
    terms=(
        Term(d("2025-09-03"), d("2025-12-19")),
        Term(d("2026-01-05"), d("2026-03-27")),
        Term(d("2026-04-20"), d("2026-07-22")),
        Term(d("2026-09-02"), d("2026-12-18")),
    )
)
TERMS_CONFIG = EngineConfig(council=TERMS)


@dataclass(frozen=True)
class Scenario:
    """How one clock of the table is driven through the engine."""

    clock_id: str
    setup: tuple[Spec, ...]
    due: date
    stop: Callable[[date], Spec] | None
    cancel: Spec
    exception: Spec | None = None
    correction: tuple[Spec, ...] = ()
    corrected_due: date | None = None
    statutory: bool = True
    escalates: bool = True
    config: EngineConfig = field(default_factory=EngineConfig)

    @property
    def clock(self) -> str:
        return self.clock_id.split("[")[0]

    def __str__(self) -> str:
        return self.clock_id


def _exception(clock: str, reason: str, instance: str | None = None) -> Spec:
    # Intake records exceptions to the assessment clocks; plans to the others.
    data: dict[str, Any] = {"clock": clock, "reason": reason}
    if instance is not None:
        data["instance"] = instance
    intake = clock in ("decision", "no_plan_notice", "final_plan")
    return (ev.EXCEPTION_RECORDED if intake else ev.PLAN_EXCEPTION_RECORDED), data


def _plan_corrected(name: str, old: str, new: str) -> Spec:
    return ev.PLAN_CORRECTED, {"field": name, "old_value": old, "new_value": new}


def _request_corrected(old: date, new: date) -> Spec:
    return ev.REQUEST_CORRECTED, {
        "field": "received_at",
        "old_value": f"{old.isoformat()}T10:00:00+00:00",
        "new_value": f"{new.isoformat()}T10:00:00+00:00",
    }


_WITHDRAWN: Spec = (ev.REQUEST_WITHDRAWN, {"withdrawn_on": "2025-01-20"})


def _ceased(on: str) -> Spec:
    # A cancel counts only when dated on or after the clock's start (or, for a start
    # with no date, recorded after it), so each scenario ceases its plan after it.
    return ev.PLAN_CEASED, {"ceased_on": on, "reason": "no longer needed"}


_JAN6 = d("2025-01-06")
_JAN13 = d("2025-01-13")


def _amended(on: date, setting: bool = True) -> Spec:
    data: dict[str, Any] = {"issued_on": on.isoformat(), "changes": ["placement"]}
    if setting:
        data["setting_urn"] = "100002"
    return ev.PLAN_AMENDED, data


def _held(review: str, on: str) -> Spec:
    return ev.REVIEW_HELD, {"review_id": review, "held_on": on}


def _decided(review: str, decision: str, on: str) -> Spec:
    return ev.REVIEW_DECIDED, {
        "review_id": review,
        "decision": decision,
        "notified_on": on,
    }


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "decision",
        (received(_JAN6),),
        d("2025-02-17"),
        lambda on: (ev.ASSESSMENT_AGREED, {"notified_on": on.isoformat()}),
        _WITHDRAWN,
        _exception("decision", "c"),
        (_request_corrected(_JAN6, _JAN13),),
        d("2025-02-24"),
    ),
    Scenario(
        "advice[advice_id=A1]",
        (
            received(_JAN6),
            (ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-10"}),
            (
                ev.ADVICE_REQUESTED,
                {
                    "advice_id": "A1",
                    "body": "educational psychology",
                    "received_by_body_on": "2025-02-12",
                },
            ),
        ),
        d("2025-03-26"),
        lambda on: (
            ev.ADVICE_RECEIVED,
            {"advice_id": "A1", "received_on": on.isoformat()},
        ),
        (ev.REQUEST_WITHDRAWN, {"withdrawn_on": "2025-02-20"}),
        _exception("advice", "c", instance="A1"),
        (
            (
                ev.ADVICE_REQUESTED,
                {
                    "advice_id": "A1",
                    "body": "educational psychology",
                    "received_by_body_on": "2025-02-19",
                },
            ),
        ),
        d("2025-04-02"),
    ),
    Scenario(
        "no_plan_notice",
        (received(_JAN6), (ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-14"})),
        d("2025-04-28"),
        lambda on: (ev.NO_PLAN_NOTICE_SENT, {"notified_on": on.isoformat()}),
        (ev.DRAFT_PLAN_ISSUED, {"served_on": "2025-04-01"}),
        _exception("no_plan_notice", "d"),
        (_request_corrected(_JAN6, _JAN13),),
        d("2025-05-05"),
    ),
    Scenario(
        "draft_comments[DraftPlanIssued#1]",
        (
            received(d("2025-11-03")),
            (ev.ASSESSMENT_AGREED, {"notified_on": "2025-12-10"}),
            (ev.DRAFT_PLAN_ISSUED, {"served_on": "2026-03-02"}),
        ),
        d("2026-03-16"),
        None,
        (ev.REQUEST_WITHDRAWN, {"withdrawn_on": "2026-03-05"}),
        None,
        (_plan_corrected("served_on", "2026-03-02", "2026-03-09"),),
        d("2026-03-23"),
        escalates=False,
    ),
    Scenario(
        "school_consultation[consultation_id=K1]",
        (
            (
                ev.SETTING_CONSULTED,
                {"consultation_id": "K1", "setting_id": "S1", "sent_on": "2026-03-02"},
            ),
        ),
        d("2026-03-17"),
        lambda on: (
            ev.CONSULTATION_ANSWERED,
            {"consultation_id": "K1", "answered_on": on.isoformat(), "outcome": "yes"},
        ),
        (ev.REQUEST_WITHDRAWN, {"withdrawn_on": "2026-03-05"}),
        None,
        (
            (
                ev.SETTING_CONSULTED,
                {"consultation_id": "K1", "setting_id": "S1", "sent_on": "2026-03-09"},
            ),
        ),
        d("2026-03-24"),
        statutory=False,
        escalates=False,
    ),
    Scenario(
        "final_plan",
        (received(_JAN6),),
        d("2025-05-26"),
        lambda on: (
            ev.PLAN_ISSUED,
            {
                "issued_on": on.isoformat(),
                "setting_urn": "100001",
                "setting_type": "mainstream",
                "start_date": "2025-09-03",
            },
        ),
        (ev.ASSESSMENT_REFUSED, {"notified_on": "2025-02-10"}),
        _exception("final_plan", "a"),
        (_request_corrected(_JAN6, _JAN13),),
        d("2025-06-02"),
    ),
    Scenario(
        "annual_review",
        ((ev.PLAN_ISSUED, {"issued_on": "2025-01-31"}),),
        d("2026-01-30"),
        lambda on: _held("R1", on.isoformat()),
        _ceased("2025-06-01"),
        None,
        (_plan_corrected("issued_on", "2025-01-31", "2025-02-28"),),
        d("2026-02-27"),
    ),
    Scenario(
        "review_notice[review_id=R1]",
        ((ev.REVIEW_ARRANGED, {"review_id": "R1", "meeting_on": "2026-03-04"}),),
        d("2026-02-18"),
        lambda on: (
            ev.REVIEW_PAPERS_SENT,
            {"review_id": "R1", "sent_on": on.isoformat()},
        ),
        _ceased("2026-02-02"),
        None,
        ((ev.REVIEW_ARRANGED, {"review_id": "R1", "meeting_on": "2026-03-11"}),),
        d("2026-02-25"),
    ),
    Scenario(
        "review_report[review_id=R1]",
        (_held("R1", "2026-03-04"),),
        d("2026-03-18"),
        lambda on: (
            ev.REVIEW_REPORT_RECEIVED,
            {"review_id": "R1", "received_on": on.isoformat()},
        ),
        _ceased("2026-03-10"),
        None,
        (_held("R1", "2026-03-05"),),
        d("2026-03-19"),
    ),
    Scenario(
        "review_decision[review_id=R1]",
        (_held("R1", "2026-03-04"),),
        d("2026-04-01"),
        lambda on: _decided("R1", "maintain", on.isoformat()),
        _ceased("2026-03-10"),
        None,
        (_held("R1", "2026-03-05"),),
        d("2026-04-02"),
    ),
    Scenario(
        "amendment_comments[review_id=R1]",
        (_held("R1", "2026-03-04"), _decided("R1", "amend", "2026-03-18")),
        d("2026-04-01"),
        None,
        _ceased("2026-03-25"),
        None,
        (_decided("R1", "amend", "2026-03-20"),),
        d("2026-04-03"),
        escalates=False,
    ),
    Scenario(
        "final_amended_plan[review_id=R1]",
        (_held("R1", "2026-03-04"), _decided("R1", "amend", "2026-03-18")),
        d("2026-05-13"),
        lambda on: _amended(on, setting=False),
        _ceased("2026-03-25"),
        None,
        (_decided("R1", "amend", "2026-03-25"),),
        d("2026-05-20"),
    ),
    Scenario(
        "phase_transfer_school[transfer_year=2026]",
        ((ev.PHASE_TRANSFER_DUE, {"transfer": "school", "transfer_year": 2026}),),
        d("2026-02-14"),
        _amended,
        _ceased("2025-12-01"),
    ),
    Scenario(
        "phase_transfer_post16[transfer_year=2026]",
        ((ev.PHASE_TRANSFER_DUE, {"transfer": "post16", "transfer_year": 2026}),),
        d("2026-03-30"),
        _amended,
        _ceased("2025-12-01"),
    ),
    Scenario(
        "post16_move",
        ((ev.POST16_MOVE_PROPOSED, {"move_on": "2027-01-04"}),),
        d("2026-08-04"),
        _amended,
        _ceased("2026-03-02"),
        None,
        ((ev.POST16_MOVE_PROPOSED, {"move_on": "2027-02-01"}),),
        d("2026-09-01"),
    ),
    Scenario(
        "reassessment_decision[ReassessmentRequested#1]",
        ((ev.REASSESSMENT_REQUESTED, {"requested_on": "2026-03-02"}),),
        d("2026-03-17"),
        lambda on: (
            ev.REASSESSMENT_DECIDED,
            {"notified_on": on.isoformat(), "agreed": False},
        ),
        _ceased("2026-03-10"),
        None,
        (_plan_corrected("requested_on", "2026-03-02", "2026-03-09"),),
        d("2026-03-24"),
    ),
    Scenario(
        "reassessment_plan[ReassessmentDecided#1]",
        ((ev.REASSESSMENT_DECIDED, {"notified_on": "2026-03-02", "agreed": True}),),
        d("2026-06-08"),
        lambda on: _amended(on, setting=False),
        _ceased("2026-03-10"),
        _exception("reassessment_plan", "b"),
        (_plan_corrected("notified_on", "2026-03-02", "2026-03-09"),),
        d("2026-06-15"),
    ),
    Scenario(
        "plan_transfer",
        (
            (
                ev.TRANSFER_OUT_NOTIFIED,
                {"move_on": "2026-04-30", "learned_on": "2026-03-02"},
            ),
        ),
        d("2026-04-30"),
        lambda on: (ev.PLAN_TRANSFERRED_OUT, {"transferred_on": on.isoformat()}),
        _ceased("2026-03-10"),
        None,
        (
            (
                ev.TRANSFER_OUT_NOTIFIED,
                {"move_on": "2026-05-29", "learned_on": "2026-03-02"},
            ),
        ),
        d("2026-05-29"),
    ),
    Scenario(
        "new_council_notice[PlanTransferredIn#1]",
        ((ev.PLAN_TRANSFERRED_IN, {"transferred_on": "2026-03-02"}),),
        d("2026-04-13"),
        lambda on: (ev.NEW_COUNCIL_NOTICE_SENT, {"notified_on": on.isoformat()}),
        _ceased("2026-03-10"),
        None,
        (_plan_corrected("transferred_on", "2026-03-02", "2026-03-09"),),
        d("2026-04-20"),
    ),
    Scenario(
        "local_area_surgery",
        (received(_JAN6),),
        d("2025-02-17"),
        lambda on: (ev.REQUEST_PRESENTED, {"presented_on": on.isoformat()}),
        _WITHDRAWN,
        None,
        (_request_corrected(_JAN6, _JAN13),),
        d("2025-02-24"),
        statutory=False,
        escalates=False,
    ),
    Scenario(
        "agency_referrals[review_id=R1]",
        ((ev.REVIEW_ARRANGED, {"review_id": "R1", "meeting_on": "2026-06-03"}),),
        d("2026-04-08"),
        lambda on: (ev.REFERRALS_MADE, {"review_id": "R1", "made_on": on.isoformat()}),
        _ceased("2026-03-10"),
        None,
        ((ev.REVIEW_ARRANGED, {"review_id": "R1", "meeting_on": "2026-06-10"}),),
        d("2026-04-15"),
        statutory=False,
        escalates=False,
    ),
    Scenario(
        "senco_review_list",
        ((ev.PLAN_ISSUED, {"issued_on": "2025-01-31"}),),
        d("2026-01-04"),
        lambda on: (ev.REVIEW_LIST_SENT, {"sent_on": on.isoformat()}),
        _ceased("2025-06-01"),
        None,
        (_plan_corrected("issued_on", "2025-01-31", "2025-05-01"),),
        d("2026-04-19"),
        statutory=False,
        escalates=False,
        config=TERMS_CONFIG,
    ),
)

"""One scenario per clock of the table.

Every clock but the two phase transfers has a correction that moves its due date. The
phase-transfer clocks have none because no event of the contract can move theirs: the
due date comes only from ``PhaseTransferDue``'s ``transfer_year``, which is part of that
event's identity, so placement sending the event again with another year starts a
second clock (``[transfer_year=...]``) and leaves the first as it was; neither
``RequestCorrected`` nor ``PlanCorrected`` targets the event, and placement publishes no
correction or withdrawal of a transfer. A corrected amendment date
(``PlanCorrected`` of ``issued_on``) moves their stop, not their due date, and is
tested with the other stops (``test_clock_endings``).
"""

SCENARIOS_BY_ID = {scenario.clock_id: scenario for scenario in SCENARIOS}
