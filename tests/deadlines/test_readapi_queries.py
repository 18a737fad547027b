"""The deadlines read API over its read model: timelines, what is due, the summary.

The clock events folded in here are the processor's own records (engine outputs made
into CloudEvents by ``clock_record`` and read back with the kernel's envelope parser),
folded through the same handlers the subscribers call, into a real store: each test
runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deadlines.adapters.readmodel_store import (
    fold_clock_event,
    fold_intake_event,
    instance_id,
)
from deadlines.application.ports import InputRecord
from deadlines.application.processor import SOURCE, Cause, clock_record
from deadlines.domain import engine
from deadlines.domain.engine import CaseEvent, CaseState
from deadlines.entrypoints.api import create_app
from deadlines.settings import DeadlinesSettings
from sendkit.calendar import LONDON
from sendkit.envelope import ReceivedEvent, from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent
from sendkit.store import EventStore
from store_backends import DURABLE, durable_store

SCHOOL_A, SCHOOL_B = 100001, 100002


def case_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"readapi/{name}"))


def as_received(record_topic: str, record: Any, offset: int) -> ReceivedEvent:
    return from_kafka(
        InputRecord(
            record_topic, 0, offset, 0.0, record.key, record.value, record.headers
        )
    )


class Case:
    """One case driven through the engine, its inputs and outputs as received events."""

    def __init__(self, name: str, school_urn: int, coordinator: str) -> None:
        self.case_id = case_id(name)
        self.state: CaseState | None = None
        self.number = 0
        self.published = 0
        self.intake: list[ReceivedEvent] = []
        self.clocks: list[ReceivedEvent] = []
        self.school_urn = school_urn
        self.coordinator = coordinator

    def event(self, name: str, data: dict[str, Any], service: str = "intake") -> None:
        """A fact of ``service`` (intake's are folded into the read model too)."""
        self.number += 1
        recorded = RecordedEvent(
            id=f"{self.case_id}/{self.number}",
            stream_id=self.case_id,
            version=self.number,
            position=self.number,
            type=f"send.{service}.{name}.v1",
            source=f"/send/{service}",
            time=datetime(2025, 1, 6, 10, tzinfo=UTC),
            data={"case_id": self.case_id, **data},
            metadata=Metadata(actor="ehcco-1"),
        )
        if service == "intake":
            topic = "send.intake.events"
            self.intake.append(as_received(topic, to_kafka(recorded), 0))
        self.state, outputs = engine.apply(
            self.state,
            CaseEvent(recorded.id, recorded.type, self.case_id, recorded.data),
        )
        self._publish(outputs, recorded.id, recorded.time)

    def tick(self, day: date) -> None:
        assert self.state is not None
        now = datetime.combine(day, time(8), LONDON)
        self.state, outputs = engine.tick(self.state, now)
        self._publish(outputs, f"tick-{day}", now)

    def _publish(
        self, outputs: Sequence[engine.Emitted], cause: str, when: datetime
    ) -> None:
        for output in outputs:
            self.published += 1
            record = clock_record(
                output, sequence=self.published, cause=Cause.of(cause, cause, when)
            )
            self.clocks.append(
                as_received("send.deadlines.events", record, self.published)
            )

    def request(self, received_at: str) -> None:
        self.event(
            "RequestReceived",
            {
                "requester_type": "parent",
                "channel": "email",
                "received_at": received_at,
                "school_urn": self.school_urn,
                "curriculum_year": 4,
            },
        )
        self.event("CoordinatorAssigned", {"coordinator_id": self.coordinator})


def fold(store: EventStore, cases: Sequence[Case]) -> None:
    for case in cases:
        for event in case.intake:
            with store.transaction() as tx:
                fold_intake_event(event, tx)
        for event in case.clocks:
            with store.transaction() as tx:
                fold_clock_event(event, tx)


@pytest.fixture
def cases() -> list[Case]:
    """Four requests of January 2025 at two schools, seen to 20 February."""
    on_time = Case("on-time", SCHOOL_A, "ehcco-1")
    on_time.request("2025-01-06T10:00:00Z")
    late = Case("late", SCHOOL_A, "ehcco-2")
    late.request("2025-01-06T11:00:00Z")
    excepted = Case("excepted", SCHOOL_B, "ehcco-1")
    excepted.request("2025-01-20T09:00:00Z")
    excepted.event("TimeLimitExceptionRecorded", {"clock": "decision", "reason": "d"})
    waiting = Case("waiting", SCHOOL_A, "ehcco-2")
    waiting.request("2025-01-06T12:00:00Z")
    for day in (date(2025, 2, 3), date(2025, 2, 10), date(2025, 2, 18)):
        for case in (on_time, late, excepted, waiting):
            case.tick(day)
        if day == date(2025, 2, 10):
            on_time.event("AssessmentAgreed", {"notified_on": "2025-02-10"})
    late.event("AssessmentRefused", {"notified_on": "2025-02-19"})
    return [on_time, late, excepted, waiting]


@pytest.fixture(params=DURABLE)
def backend(request: pytest.FixtureRequest) -> str:
    """The read model's store: each test runs on SQLite and on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, cases: list[Case]) -> Iterator[EventStore]:
    with durable_store(backend, tmp_path / "deadlines", SOURCE) as opened:
        fold(opened, cases)
        yield opened


@pytest.fixture
def client(
    store: EventStore, auth_env: dict[str, str], manager_headers: dict[str, str]
) -> Iterator[TestClient]:
    # A manager reads every case; who else may read what is test_readapi_access's.
    app = create_app(DeadlinesSettings(), store=store, projector=False)
    with TestClient(app, headers=manager_headers) as test_client:
        yield test_client


def test_a_timeline_lists_every_clock_with_what_started_and_stopped_it(
    client: TestClient, cases: list[Case]
) -> None:
    on_time = cases[0]

    answer = client.get(f"/cases/{on_time.case_id}/timeline")

    assert answer.status_code == 200
    body = answer.json()
    assert (body["school_urn"], body["coordinator_id"]) == (SCHOOL_A, "ehcco-1")
    clocks = {clock["clock_id"]: clock for clock in body["clocks"]}
    assert set(clocks) == {
        "decision",
        "final_plan",
        "local_area_surgery",
        "no_plan_notice",
    }
    decision = clocks["decision"]
    assert decision["status"] == "met"
    assert decision["due_on"] == "2025-02-17"
    assert decision["statutory"] is True
    assert decision["legal_basis"].startswith("SEND Regulations 2014 reg 5")
    assert decision["started"] == {
        "on": "2025-01-06",
        "by_event_id": f"{on_time.case_id}/1",
        "by_event_type": "send.intake.RequestReceived.v1",
        "rule_starts": ["send.intake.RequestReceived.v1"],
    }
    assert decision["stopped"] == {
        "on": "2025-02-10",
        "by": "send.intake.AssessmentAgreed.v1",
        "by_event_id": f"{on_time.case_id}/3",
        "days_late": 0,
    }
    assert [entry["type"] for entry in decision["history"]] == [
        "ClockSet",
        "ClockApproaching",
        "ClockApproaching",
        "ClockMet",
    ]
    assert clocks["local_area_surgery"]["statutory"] is False
    assert clocks["final_plan"]["act_by"] == "2025-05-23"


def test_a_late_refusal_ends_the_overdue_decision_late(
    client: TestClient, cases: list[Case]
) -> None:
    body = client.get(f"/cases/{cases[1].case_id}/timeline").json()

    decision = next(c for c in body["clocks"] if c["clock_id"] == "decision")
    assert decision["status"] == "late"
    assert decision["stopped"]["days_late"] == 2
    assert "ClockOverdue" in [entry["type"] for entry in decision["history"]]
    final_plan = next(c for c in body["clocks"] if c["clock_id"] == "final_plan")
    assert final_plan["status"] == "cancelled"
    assert final_plan["cancelled"]["by"] == "send.intake.AssessmentRefused.v1"


def test_an_unknown_case_is_a_404_problem(client: TestClient) -> None:
    answer = client.get(f"/cases/{case_id('nobody')}/timeline")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "no clock events" in answer.json()["detail"]
    # The kind intake, plans, reviews and placement give an unknown case too.
    assert answer.json()["type"] == "/problems/case-not-found"


def test_due_lists_the_clocks_still_running_in_the_range(
    client: TestClient, cases: list[Case]
) -> None:
    answer = client.get(
        "/due",
        params={"from": "2025-02-20", "to": "2025-03-10", "include_overdue": "false"},
    )

    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [(i["case_id"], i["clock_id"], i["due_on"], i["status"]) for i in items] == [
        (cases[2].case_id, "decision", "2025-03-03", "approaching"),
        (cases[2].case_id, "local_area_surgery", "2025-03-03", "approaching"),
    ]
    assert items[0]["exception_reason"] == "d"
    assert items[0]["escalate"] is False


def test_due_with_overdue_lists_what_passed_its_date_before_the_range(
    client: TestClient, cases: list[Case]
) -> None:
    answer = client.get("/due", params={"from": "2025-02-19", "to": "2025-02-28"})

    found = {(i["case_id"], i["clock_id"], i["status"]) for i in answer.json()["items"]}
    assert found == {
        (cases[3].case_id, "decision", "overdue"),
        (cases[3].case_id, "local_area_surgery", "overdue"),
    }
    without = client.get(
        "/due",
        params={"from": "2025-02-19", "to": "2025-02-28", "include_overdue": "false"},
    ).json()
    assert without["items"] == []


def test_due_filters_by_coordinator_and_by_school(
    client: TestClient, cases: list[Case]
) -> None:
    window = {"from": "2025-01-01", "to": "2025-12-31"}

    mine = client.get("/due", params={**window, "coordinator_id": "ehcco-2"}).json()
    school_b = client.get("/due", params={**window, "school_urn": SCHOOL_B}).json()

    # ehcco-2's other case was refused: none of its clocks runs any more.
    assert {i["case_id"] for i in mine["items"]} == {cases[3].case_id}
    assert {i["case_id"] for i in school_b["items"]} == {cases[2].case_id}
    assert {i["coordinator_id"] for i in mine["items"]} == {"ehcco-2"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-03-01", "to": "2025-02-01"}, "to"),
        ({"from": "first of March"}, "from"),
        ({"school_urn": "12"}, "school_urn"),
        ({"include_overdue": "perhaps"}, "include_overdue"),
    ],
)
def test_bad_query_parameters_are_422_problems_naming_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    answer = client.get("/due", params=params)

    assert answer.status_code == 422
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in [error["field"].split(".")[-1] for error in problem["errors"]]


def test_the_summary_counts_clocks_by_clock_and_status(client: TestClient) -> None:
    body = client.get("/summary").json()

    decision = body["clocks"]["decision"]
    assert body["cases"] == 4
    assert decision == {
        "statutory": True,
        "set": 4,
        "open": 0,
        "approaching": 1,
        "overdue": 1,
        "met": 1,
        "late": 1,
        "cancelled": 0,
        "with_exception": 1,
    }
    for counts in body["clocks"].values():
        statuses = ("open", "approaching", "overdue", "met", "late", "cancelled")
        assert counts["set"] == sum(counts[s] for s in statuses)
    assert body["totals"]["set"] == sum(c["set"] for c in body["clocks"].values())


def test_folding_every_event_twice_changes_nothing(
    backend: str, tmp_path: Path, cases: list[Case], store: EventStore
) -> None:
    with durable_store(backend, tmp_path / "twice", SOURCE) as again:
        fold(again, cases)
        fold(again, cases)

        with store.transaction() as tx, again.transaction() as tx2:
            assert tx2.list_documents("cases") == tx.list_documents("cases")


def test_the_read_model_keeps_its_own_id_so_a_new_database_replays_from_zero(
    backend: str, tmp_path: Path
) -> None:
    with (
        durable_store(backend, tmp_path / "a", SOURCE) as first,
        durable_store(backend, tmp_path / "b", SOURCE) as other,
    ):
        assert instance_id(first) == instance_id(first)
        assert instance_id(first) != instance_id(other)
