"""Intake's HTTP API: each command, each validation error, idempotency, problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from intake_support import request_body

from auth_fixtures import Mint
from intake.entrypoints.http import create_app
from intake.settings import SOURCE, IntakeSettings
from sendkit.store import InMemoryEventStore, SQLiteEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)..."""
TABLES_IN_MEMORY = True
"""...but the tables of invalid requests, refused before the store, run in memory."""

PROBLEM = "application/problem+json"


def receive(client: TestClient, **changes: Any) -> str:
    response = client.post("/cases", json=request_body(**changes))
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    return case_id


def problem_fields(response: Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return [error["field"] for error in body.get("errors", [])]


# Commands -----------------------------------------------------------------------------


def test_receiving_a_request_answers_201_with_the_new_case(
    client: TestClient, store: InMemoryEventStore, mint: Mint
) -> None:
    response = client.post("/cases", json=request_body(), headers=mint("st-9"))

    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/cases/{body['case_id']}"
    assert body["status"] == "awaiting_decision"
    assert body["version"] == 1
    assert [e["type"] for e in body["events"]] == ["send.intake.RequestReceived.v1"]
    (event,) = store.read_stream(body["case_id"])
    assert event.id == body["events"][0]["id"]
    assert event.metadata.actor == "st-9"


def test_each_request_gets_its_own_case_id(client: TestClient) -> None:
    assert receive(client) != receive(client)


def test_the_correlation_header_reaches_the_events(
    client: TestClient, store: InMemoryEventStore
) -> None:
    response = client.post(
        "/cases", json=request_body(), headers={"X-Correlation-ID": "web-corr-1"}
    )

    assert response.headers["x-correlation-id"] == "web-corr-1"
    event = store.read_stream(response.json()["case_id"])[0]
    assert event.metadata.correlation_id == "web-corr-1"


def test_assigning_a_coordinator(client: TestClient) -> None:
    case_id = receive(client)

    response = client.post(
        f"/cases/{case_id}/coordinator", json={"coordinator_id": "ehcco-4"}
    )

    assert response.status_code == 200
    assert response.json()["events"][0]["type"] == "send.intake.CoordinatorAssigned.v1"
    assert client.get(f"/cases/{case_id}").json()["coordinator_id"] == "ehcco-4"


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("agreed", "assessment_agreed"), ("refused", "assessment_refused")],
)
def test_recording_a_decision(client: TestClient, outcome: str, status: str) -> None:
    case_id = receive(client)

    response = client.post(
        f"/cases/{case_id}/decision",
        json={"outcome": outcome, "notified_on": "2025-02-14"},
    )

    assert response.status_code == 200
    assert response.json()["status"] == status


def test_recording_a_time_limit_exception(client: TestClient) -> None:
    case_id = receive(client)

    response = client.post(
        f"/cases/{case_id}/time-limit-exceptions",
        json={"clock": "final_plan", "reason": "a", "evidence": "head away in August"},
    )

    assert response.status_code == 200
    case = client.get(f"/cases/{case_id}").json()
    assert case["time_limit_exceptions"] == [{"clock": "final_plan", "reason": "a"}]


def test_withdrawing_a_request(client: TestClient) -> None:
    case_id = receive(client)

    response = client.post(f"/cases/{case_id}/withdrawal", json={})

    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"
    assert client.get(f"/cases/{case_id}").json()["withdrawn_on"] == "2025-03-10"


def test_correcting_a_recorded_fact(client: TestClient) -> None:
    case_id = receive(client)

    response = client.post(
        f"/cases/{case_id}/corrections",
        json={
            "field": "received_at",
            "new_value": "2025-01-03T17:05:00Z",
            "reason": "found in the post room on Friday",
        },
    )

    assert response.status_code == 200
    case = client.get(f"/cases/{case_id}").json()
    assert case["received_at"] == "2025-01-03T17:05:00Z"
    assert case["history"][-1]["data"]["old_value"] == "2025-01-06T09:30:00Z"
    assert case["history"][-1]["private"] == {
        "reason": "found in the post room on Friday"
    }


def test_moving_all_of_a_coordinators_cases(client: TestClient) -> None:
    cases = [receive(client) for _ in range(4)]
    for case_id in cases:
        client.post(f"/cases/{case_id}/coordinator", json={"coordinator_id": "old-1"})

    response = client.post(
        "/coordinators/old-1/reassignment", json={"to_coordinator_id": "new-1"}
    )

    assert response.status_code == 200
    report = response.json()
    assert report["total"] == 4
    assert report["reassigned"] == 4
    assert sorted(row["case_id"] for row in report["cases"]) == sorted(cases)
    assert all(row["outcome"] == "reassigned" for row in report["cases"])
    listed = client.get("/cases", params={"coordinator_id": "new-1"}).json()
    assert listed["total"] == 4


# Queries ------------------------------------------------------------------------------


def test_reading_a_case_shows_its_details_and_history(client: TestClient) -> None:
    case_id = receive(client)
    client.post(
        f"/cases/{case_id}/decision",
        json={"outcome": "agreed", "notified_on": "2025-02-14"},
    )

    case = client.get(f"/cases/{case_id}").json()

    assert case["status"] == "assessment_agreed"
    assert case["child_reference"] == "CHILD-0001"
    assert case["date_of_birth"] == "2016-05-14"
    assert case["received_on"] == "2025-01-06"
    assert case["notified_on"] == "2025-02-14"
    assert [e["type"].split(".")[2] for e in case["history"]] == [
        "RequestReceived",
        "AssessmentAgreed",
    ]
    assert case["history"][0]["private"]["child_reference"] == "CHILD-0001"


def test_listing_cases_by_school_and_status(client: TestClient) -> None:
    # The list is ordered by the time each request arrived.
    first = receive(client, school_urn=111111, received_at="2025-01-06T09:00:00Z")
    receive(client, school_urn=222222, received_at="2025-01-07T09:00:00Z")
    third = receive(client, school_urn=111111, received_at="2025-01-08T09:00:00Z")
    client.post(f"/cases/{third}/withdrawal", json={})

    by_school = client.get("/cases", params={"school_urn": 111111}).json()
    open_at_school = client.get(
        "/cases", params={"school_urn": 111111, "status": "awaiting_decision"}
    ).json()
    both = client.get(
        "/cases", params=[("status", "awaiting_decision"), ("status", "withdrawn")]
    ).json()

    assert [c["case_id"] for c in by_school["cases"]] == [first, third]
    assert [c["case_id"] for c in open_at_school["cases"]] == [first]
    assert both["total"] == 3
    assert "child_reference" not in by_school["cases"][0]


def test_the_list_pages(client: TestClient) -> None:
    made = [
        receive(client, received_at=f"2025-01-0{day}T09:00:00Z") for day in range(1, 6)
    ]

    page = client.get("/cases", params={"limit": 2, "offset": 2}).json()

    assert page["total"] == 5
    assert [c["case_id"] for c in page["cases"]] == made[2:4]


def test_an_unknown_status_filter_is_a_problem(client: TestClient) -> None:
    assert problem_fields(client.get("/cases?status=lost"), 422) == ["query.status.0"]


def test_an_unknown_case_is_404(client: TestClient) -> None:
    response = client.get("/cases/6f1c5b1e-0000-4000-8000-000000000000")

    problem_fields(response, 404)
    assert response.json()["type"] == "/problems/case-not-found"


# Validation errors: 422, every bad field named, nothing written -----------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"received_at": "2025-01-06T09:30:00"}, "received_at"),
        ({"received_at": "2025-03-10T12:00:01Z"}, "received_at"),
        ({"received_at": "2026-01-01T00:00:00+00:00"}, "received_at"),
        ({"school_urn": 12345}, "school_urn"),
        ({"school_urn": 1234567}, "school_urn"),
        ({"school_urn": "URN-1"}, "school_urn"),
        ({"curriculum_year": 15}, "curriculum_year"),
        ({"curriculum_year": -3}, "curriculum_year"),
        ({"requester_type": "uncle"}, "requester_type"),
        ({"channel": "pigeon"}, "channel"),
        ({"date_of_birth": "2025-02-01"}, "date_of_birth"),
        ({"child_reference": None}, "child_reference"),
        ({"nhs_number": "4857773456"}, "nhs_number"),
    ],
)
def test_an_invalid_request_is_422_naming_the_field(
    client: TestClient, store: InMemoryEventStore, changes: dict[str, Any], field: str
) -> None:
    response = client.post("/cases", json=request_body(**changes))

    assert problem_fields(response, 422) == [field]
    assert response.json()["type"] == "/problems/validation-error"
    assert store.last_position() == 0


def test_several_bad_fields_are_named_together(client: TestClient) -> None:
    response = client.post(
        "/cases",
        json=request_body(
            received_at="2025-01-06T09:30:00", school_urn=1, curriculum_year=99
        ),
    )

    assert sorted(problem_fields(response, 422)) == [
        "curriculum_year",
        "received_at",
        "school_urn",
    ]


def test_a_decision_dated_before_the_request_is_422(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = receive(client)
    before = store.last_position()

    response = client.post(
        f"/cases/{case_id}/decision",
        json={"outcome": "agreed", "notified_on": "2025-01-05"},
    )

    assert problem_fields(response, 422) == ["notified_on"]
    assert "2025-01-06" in response.json()["detail"]
    assert store.last_position() == before


def test_a_decision_dated_in_the_future_is_422(client: TestClient) -> None:
    case_id = receive(client)

    response = client.post(
        f"/cases/{case_id}/decision",
        json={"outcome": "agreed", "notified_on": "2025-03-11"},
    )

    assert problem_fields(response, 422) == ["notified_on"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("decision", {"outcome": "perhaps", "notified_on": "2025-02-14"}, "outcome"),
        ("decision", {"outcome": "agreed"}, "notified_on"),
        ("coordinator", {"coordinator_id": "has space"}, "coordinator_id"),
        (
            "time-limit-exceptions",
            {"clock": "decision", "reason": "z", "evidence": "x"},
            "reason",
        ),
        (
            "time-limit-exceptions",
            {"clock": "review", "reason": "a", "evidence": "x"},
            "clock",
        ),
        ("time-limit-exceptions", {"clock": "decision", "reason": "a"}, "evidence"),
        ("withdrawal", {"withdrawn_on": "2024-12-31"}, "withdrawn_on"),
        (
            "corrections",
            {"field": "school_urn", "new_value": "1", "reason": "x"},
            "field",
        ),
        (
            "corrections",
            {"field": "received_at", "new_value": "2025-01-02T09:00", "reason": "x"},
            "new_value",
        ),
        (
            "corrections",
            {"field": "received_at", "new_value": "2025-01-02T09:00:00Z"},
            "reason",
        ),
    ],
)
def test_invalid_commands_name_the_field(
    client: TestClient,
    store: InMemoryEventStore,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    case_id = receive(client)
    before = store.last_position()

    response = client.post(f"/cases/{case_id}/{path}", json=body)

    assert problem_fields(response, 422) == [field]
    assert store.last_position() == before


def test_a_bad_staff_id_header_is_422() -> None:
    # The header names who acts only where verification is off (development).
    settings = IntakeSettings(database_url="memory://", auth_mode="off")
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/cases", json=request_body(), headers={"X-Staff-Id": "Jane Smith"}
        )

    assert problem_fields(response, 422) == ["header.X-Staff-Id"]


# Impossible transitions: 409, nothing written -----------------------------------------


def test_deciding_twice_is_409(client: TestClient, store: InMemoryEventStore) -> None:
    case_id = receive(client)
    decision = {"outcome": "agreed", "notified_on": "2025-02-14"}
    client.post(f"/cases/{case_id}/decision", json=decision)
    before = store.last_position()

    response = client.post(
        f"/cases/{case_id}/decision",
        json={"outcome": "refused", "notified_on": "2025-02-15"},
    )

    problem_fields(response, 409)
    assert response.json()["type"] == "/problems/impossible-transition"
    assert store.last_position() == before


def test_deciding_a_withdrawn_request_is_409(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = receive(client)
    client.post(f"/cases/{case_id}/withdrawal", json={"reason": "no longer needed"})
    before = store.last_position()

    response = client.post(
        f"/cases/{case_id}/decision",
        json={"outcome": "agreed", "notified_on": "2025-02-14"},
    )

    problem_fields(response, 409)
    assert "withdrawn" in response.json()["detail"]
    assert store.last_position() == before


def test_a_command_on_an_unknown_case_is_404(client: TestClient) -> None:
    response = client.post(
        "/cases/6f1c5b1e-0000-4000-8000-000000000000/withdrawal", json={}
    )

    problem_fields(response, 404)


# Idempotency --------------------------------------------------------------------------


def test_a_retried_request_returns_the_first_answer_and_opens_one_case(
    client: TestClient, store: InMemoryEventStore
) -> None:
    headers = {"Idempotency-Key": "0b9e7f7e-1c1d-4c55-9d0b-5d3f6e2a1a10"}

    first = client.post("/cases", json=request_body(), headers=headers)
    again = client.post("/cases", json=request_body(), headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert store.last_position() == 1
    assert client.get("/cases").json()["total"] == 1


def test_a_key_reused_for_another_request_is_refused(
    client: TestClient, store: InMemoryEventStore
) -> None:
    headers = {"Idempotency-Key": "key-reuse-1"}
    client.post("/cases", json=request_body(), headers=headers)

    response = client.post(
        "/cases", json=request_body(school_urn=654321), headers=headers
    )

    assert problem_fields(response, 422) == ["header.idempotency-key"]
    assert response.json()["type"] == "/problems/idempotency-key"
    assert store.last_position() == 1


def test_a_retried_decision_is_not_refused_as_a_second_decision(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = receive(client)
    headers = {"Idempotency-Key": "decide-1"}
    decision = {"outcome": "agreed", "notified_on": "2025-02-14"}

    first = client.post(f"/cases/{case_id}/decision", json=decision, headers=headers)
    again = client.post(f"/cases/{case_id}/decision", json=decision, headers=headers)
    unkeyed = client.post(f"/cases/{case_id}/decision", json=decision)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert unkeyed.status_code == 409
    assert len(store.read_stream(case_id)) == 2


def test_a_refused_command_records_no_answer_under_its_key(client: TestClient) -> None:
    case_id = receive(client)
    headers = {"Idempotency-Key": "too-early-1"}
    decision = {"outcome": "agreed", "notified_on": "2025-02-14"}
    client.post(f"/cases/{case_id}/withdrawal", json={})

    refused = client.post(f"/cases/{case_id}/decision", json=decision, headers=headers)
    retried = client.post(f"/cases/{case_id}/decision", json=decision, headers=headers)

    assert refused.status_code == retried.status_code == 409
    assert "idempotent-replayed" not in retried.headers


def test_a_retried_reassignment_replays_the_report(
    client: TestClient, store: InMemoryEventStore
) -> None:
    for _ in range(3):
        case_id = receive(client)
        client.post(f"/cases/{case_id}/coordinator", json={"coordinator_id": "old-2"})
    headers = {"Idempotency-Key": "move-old-2"}
    body = {"to_coordinator_id": "new-2"}

    first = client.post("/coordinators/old-2/reassignment", json=body, headers=headers)
    after_first = store.last_position()
    again = client.post("/coordinators/old-2/reassignment", json=body, headers=headers)
    other = client.post(
        "/coordinators/old-2/reassignment",
        json={"to_coordinator_id": "new-3"},
        headers=headers,
    )

    assert again.json() == first.json()
    assert again.json()["reassigned"] == 3
    assert again.headers["idempotent-replayed"] == "true"
    assert problem_fields(other, 422) == ["header.idempotency-key"]
    assert store.last_position() == after_first


# Probes and settings ------------------------------------------------------------------


def test_probes_answer(client: TestClient) -> None:
    receive(client)

    assert client.get("/healthz").json()["service"] == "intake"
    assert client.get("/readyz").json()["checks"] == {"event_store": "ok"}
    metrics = client.get("/metrics").text
    assert 'route="/cases",service="intake",status="201"' in metrics


def test_the_app_opens_the_sqlite_store_its_settings_name(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    database = tmp_path / "intake.db"
    monkeypatch.setenv("INTAKE_DATABASE_URL", f"sqlite:///{database}")

    with TestClient(create_app(), headers=manager_headers) as client:
        case_id = receive(client, received_at="2025-01-06T09:30:00Z")

    assert database.exists()
    with TestClient(create_app(), headers=manager_headers) as reopened:
        assert reopened.get(f"/cases/{case_id}").status_code == 200
        assert reopened.get("/cases").json()["total"] == 1


def test_settings_defaults() -> None:
    settings = IntakeSettings()

    assert settings.database_url == "sqlite:///.run/intake.db"
    assert settings.port == 8001
    assert settings.relay_enabled is False


def test_an_unreadable_store_makes_the_app_unready(
    tmp_path: Path, auth_env: dict[str, str]
) -> None:
    store = SQLiteEventStore(tmp_path / "intake.db", SOURCE)
    app = create_app(IntakeSettings(database_url="memory://"), store=store)

    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        store.close()
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["event_store"].startswith("failed")
