"""Placement's HTTP API: each command, problem details, idempotency, the queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from placement_support import COLLEGE_UKPRN, SECONDARY, FixedClock, known_case

from auth_fixtures import Mint
from placement.entrypoints.http import create_app
from placement.settings import SOURCE, PlacementSettings
from sendkit.store import InMemoryEventStore, SQLiteEventStore, open_store
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)..."""
TABLES_IN_MEMORY = True
"""...but the tables of invalid requests, refused before the store, run in memory."""

PROBLEM = "application/problem+json"
SPECIAL = 145678


def problem_fields(response: Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return [error["field"] for error in body.get("errors", [])]


def post(
    client: TestClient,
    path: str,
    body: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST as the client's member of staff, or as the token ``headers`` carry."""
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def consult(client: TestClient, case_id: str, setting_id: int = SECONDARY) -> str:
    body = {"setting_id": setting_id, "setting_id_kind": "urn", "sent_on": "2025-09-22"}
    answer = post(client, f"/cases/{case_id}/consultations", body, 201)
    consultation_id: str = answer["consultation_id"]
    return consultation_id


def option(setting_id: int) -> dict[str, Any]:
    return {
        "setting_id": setting_id,
        "setting_id_kind": "urn",
        "education_pence": 1_800_000,
        "health_pence": 250_000,
        "social_care_pence": 100_000,
    }


def ready(client: TestClient, store: InMemoryEventStore) -> str:
    case_id = known_case(store)
    consult(client, case_id)
    consult(client, case_id, SPECIAL)
    post(
        client,
        f"/cases/{case_id}/panel-submissions",
        {
            "prepared_on": "2025-10-01",
            "options": [option(SECONDARY), option(SPECIAL)],
            "setting_views": "the special school can meet need",
        },
        201,
    )
    return case_id


def schedule(client: TestClient, *case_ids: str, day: str = "2025-10-02") -> str:
    answer = post(client, "/panels", {"panel_on": day, "case_ids": list(case_ids)}, 201)
    panel_id: str = answer["panel_id"]
    return panel_id


# Commands -----------------------------------------------------------------------------


def test_a_request_for_a_setting_answers_201_with_its_id(
    client: TestClient, store: InMemoryEventStore, mint: Mint
) -> None:
    case_id = known_case(store)

    answer = post(
        client,
        f"/cases/{case_id}/setting-requests",
        {
            "requested_by": "parent",
            "request_kind": "named_setting",
            "setting_id": SECONDARY,
            "setting_id_kind": "urn",
            "requested_on": "2025-09-30",
            "views": "close to home",
        },
        201,
        # ehcco-5's token; the X-Staff-Id header names nobody while tokens are on.
        headers={**mint("ehcco-5"), "X-Staff-Id": "someone-else"},
    )

    assert answer["case_id"] == case_id
    assert answer["version"] == 1
    assert [e["type"] for e in answer["events"]] == [
        "send.placement.SettingRequested.v1"
    ]
    (event,) = store.read_stream(case_id)
    assert event.data["request_id"] == answer["request_id"]
    assert event.metadata.actor == "ehcco-5"


def test_consulting_answering_and_reading_the_case(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    response = client.post(
        f"/cases/{case_id}/consultations",
        json={
            "setting_id": COLLEGE_UKPRN,
            "setting_id_kind": "ukprn",
            "sent_on": "2025-09-22",
        },
    )
    assert response.status_code == 201
    consultation_id = response.json()["consultation_id"]
    assert response.headers["location"] == f"/cases/{case_id}"

    post(
        client,
        f"/cases/{case_id}/consultations/{consultation_id}/answer",
        {"outcome": "declined", "answered_on": "2025-09-30", "reasons": "course full"},
    )

    case = client.get(f"/cases/{case_id}").json()
    assert case["facts"]["curriculum_year_now"] == 7
    assert case["facts"]["plan_status"] == "issued"
    assert case["consultations"] == [
        {
            "consultation_id": consultation_id,
            "setting_id": COLLEGE_UKPRN,
            "setting_id_kind": "ukprn",
            "sent_on": "2025-09-22",
            "answered_on": "2025-09-30",
            "outcome": "declined",
            "reasons": "course full",
        }
    ]
    assert [e["private"] for e in case["history"]] == [None, {"reasons": "course full"}]


def test_a_panel_from_submission_to_communication(
    client: TestClient, store: InMemoryEventStore
) -> None:
    first, second = ready(client, store), ready(client, store)

    response = client.post(
        "/panels", json={"panel_on": "2025-10-02", "case_ids": [first, second]}
    )
    assert response.status_code == 201
    panel_id = response.json()["panel_id"]
    assert response.headers["location"] == f"/panels/{panel_id}"
    post(
        client,
        f"/panels/{panel_id}/cases/{first}/decision",
        {"outcome": "setting_named", "setting_id": SPECIAL, "setting_id_kind": "urn"},
    )
    post(
        client,
        f"/panels/{panel_id}/cases/{second}/decision",
        {"outcome": "declined", "reasons": "mainstream can meet need"},
    )
    post(
        client,
        f"/panels/{panel_id}/cases/{first}/communication",
        {"communicated_on": "2025-10-03"},
    )

    panel = client.get(f"/panels/{panel_id}").json()
    by_case = {entry["case_id"]: entry for entry in panel["cases"]}
    assert panel["panel_on"] == "2025-10-02"
    assert by_case[first]["outcome"] == "setting_named"
    assert by_case[first]["setting"] == {
        "setting_id": SPECIAL,
        "setting_id_kind": "urn",
    }
    assert by_case[first]["communicated_on"] == "2025-10-03"
    assert by_case[second]["outcome"] == "declined"
    assert "reasons" not in by_case[second]
    listed = client.get("/panels", params={"from_on": "2025-10-01"}).json()
    assert [p["panel_id"] for p in listed["panels"]] == [panel_id]
    assert client.get("/panels", params={"to_on": "2025-10-01"}).json() == {
        "panels": []
    }


def test_a_panel_decided_twice_is_409_and_writes_nothing(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = ready(client, store)
    panel_id = schedule(client, case_id)
    path = f"/panels/{panel_id}/cases/{case_id}/decision"
    post(client, path, {"outcome": "deferred"})
    before = len(store.read_all())

    response = client.post(path, json={"outcome": "deferred"})

    problem_fields(response, 409)
    assert response.json()["type"] == "/problems/impossible-transition"
    assert "decides a case once" in response.json()["detail"]
    assert len(store.read_all()) == before


def test_transport_decision_and_referral(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)

    post(
        client,
        f"/cases/{case_id}/transport-eligibility",
        {"eligible": True, "decided_on": "2025-10-01"},
    )
    post(client, f"/cases/{case_id}/transport-referral", {"referred_on": "2025-10-02"})

    case = client.get(f"/cases/{case_id}").json()
    assert case["transport"]["eligible"] is True
    assert case["transport"]["referred_on"] == "2025-10-02"


def test_a_post16_move(client: TestClient, store: InMemoryEventStore) -> None:
    case_id = known_case(store, curriculum_year=12)

    post(client, f"/cases/{case_id}/post16-moves", {"move_on": "2026-01-05"})

    assert client.get(f"/cases/{case_id}").json()["post16_moves"] == ["2026-01-05"]


# Phase transfers ----------------------------------------------------------------------


def test_identifying_and_listing_a_years_cohort(
    client: TestClient, store: InMemoryEventStore
) -> None:
    year6 = known_case(store, curriculum_year=5)  # Year 5 in January: Year 6 now
    year11 = known_case(store, curriculum_year=10)

    first = post(client, "/phase-transfers/2026/identify", {})
    again = post(client, "/phase-transfers/2026/identify", {})

    assert sorted(first["identified"]) == sorted([year6, year11])
    assert again["identified"] == []
    assert again["already_identified"] == 2
    cohort = client.get("/phase-transfers/2026").json()
    assert cohort["total"] == 2
    assert cohort["by_status"] == {"identified": 2}
    rows = {row["case_id"]: row for row in cohort["children"]}
    assert rows[year6]["due_on"] == "2026-02-14"
    assert rows[year6]["act_by"] == "2026-02-13"
    assert rows[year6]["guidance_due_on"] == "2026-02-15"
    assert rows[year6]["identified_on"] == "2025-10-06"
    assert rows[year11]["due_on"] == "2026-03-30"
    assert rows[year11]["phase"] == "secondary_to_post16"
    identified_only = client.get(
        "/phase-transfers/2026", params={"status": ["identified"]}
    ).json()
    assert identified_only["total"] == 2
    none_named = client.get("/phase-transfers/2026", params={"status": "named"}).json()
    assert none_named["children"] == []


def test_identifying_a_year_too_far_ahead_is_422_naming_the_year(
    client: TestClient,
) -> None:
    response = client.post("/phase-transfers/2029/identify")

    assert problem_fields(response, 422) == ["path.year"]


# Problems -----------------------------------------------------------------------------


def test_body_errors_name_each_field(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)

    response = client.post(
        f"/cases/{case_id}/consultations",
        json={"setting_id": "x", "setting_id_kind": "upn", "sent_on": "soon", "n": 1},
    )

    assert sorted(problem_fields(response, 422)) == [
        "n",
        "sent_on",
        "setting_id",
        "setting_id_kind",
    ]
    assert response.json()["type"] == "/problems/validation-error"


def test_domain_errors_are_the_same_kind_of_422(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)

    response = client.post(
        f"/cases/{case_id}/consultations",
        json={
            "setting_id": SECONDARY,
            "setting_id_kind": "ukprn",
            "sent_on": "2025-10-07",
        },
    )

    assert problem_fields(response, 422) == ["setting_id", "sent_on"]
    assert response.json()["type"] == "/problems/validation-error"
    assert store.read_stream(case_id) == []


def test_panel_option_errors_are_dotted_paths(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    consult(client, case_id)

    response = client.post(
        f"/cases/{case_id}/panel-submissions",
        json={
            "prepared_on": "2025-10-01",
            "options": [option(SECONDARY), {**option(SPECIAL), "health_pence": 1.5}],
        },
    )
    assert problem_fields(response, 422) == ["options.1.health_pence"]

    response = client.post(
        f"/cases/{case_id}/panel-submissions",
        json={"prepared_on": "2025-10-01", "options": [option(SPECIAL)]},
    )
    assert problem_fields(response, 422) == ["options.0.setting_id"]


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        (
            "/cases/{unknown}/consultations",
            {
                "setting_id": SECONDARY,
                "setting_id_kind": "urn",
                "sent_on": "2025-09-01",
            },
            "case-not-found",
        ),
        (
            "/cases/{case}/consultations/{unknown}/answer",
            {"outcome": "place_offered", "answered_on": "2025-09-30"},
            "consultation-not-found",
        ),
        ("/panels/{unknown}/cases", {"case_ids": ["{case}"]}, "panel-not-found"),
    ],
)
def test_unknown_things_are_404_of_their_kind(
    client: TestClient,
    store: InMemoryEventStore,
    path: str,
    body: dict[str, Any],
    kind: str,
) -> None:
    case_id = known_case(store)
    unknown = "0b9e7f7e-1c1d-4c55-9d0b-5d3f6e2a1a10"

    def fill(text: str) -> str:
        return text.replace("{case}", case_id).replace("{unknown}", unknown)

    filled = {
        k: [fill(v) for v in value] if isinstance(value, list) else value
        for k, value in body.items()
    }
    response = client.post(fill(path), json=filled)

    problem_fields(response, 404)
    assert response.json()["type"] == f"/problems/{kind}"


def test_a_missing_case_and_panel_are_404_on_read(client: TestClient) -> None:
    unknown = "0b9e7f7e-1c1d-4c55-9d0b-5d3f6e2a1a10"

    problem_fields(client.get(f"/cases/{unknown}"), 404)
    problem_fields(client.get(f"/panels/{unknown}"), 404)


def test_a_panel_of_unready_cases_lists_none_of_them(
    client: TestClient, store: InMemoryEventStore
) -> None:
    ready_case, unready = ready(client, store), known_case(store)
    before = len(store.read_all())

    response = client.post(
        "/panels", json={"panel_on": "2025-10-02", "case_ids": [ready_case, unready]}
    )

    problem_fields(response, 409)
    assert unready in response.json()["detail"]
    assert len(store.read_all()) == before


# Idempotency --------------------------------------------------------------------------


def test_a_retried_command_gets_the_first_answer_and_writes_nothing(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    body = {"setting_id": SECONDARY, "setting_id_kind": "urn", "sent_on": "2025-09-22"}
    headers = {"Idempotency-Key": "consult-1"}

    first = client.post(f"/cases/{case_id}/consultations", json=body, headers=headers)
    again = client.post(f"/cases/{case_id}/consultations", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(store.read_stream(case_id)) == 1
    other = client.post(
        f"/cases/{case_id}/consultations",
        json={**body, "setting_id": SPECIAL},
        headers=headers,
    )
    assert problem_fields(other, 422) == ["header.idempotency-key"]


def test_a_retried_panel_schedule_lists_its_cases_once(
    client: TestClient, store: InMemoryEventStore
) -> None:
    case_id = ready(client, store)
    body = {"panel_on": "2025-10-02", "case_ids": [case_id]}
    headers = {"Idempotency-Key": "panel-oct"}

    first = client.post("/panels", json=body, headers=headers)
    again = client.post("/panels", json=body, headers=headers)

    assert again.status_code == 201
    assert again.json()["panel_id"] == first.json()["panel_id"]
    kinds = [event.type for event in store.read_stream(case_id)]
    assert kinds.count("send.placement.CaseListedForPanel.v1") == 1


# The app ---------------------------------------------------------------------------


def test_the_app_runs_on_a_sqlite_file_and_is_ready(
    tmp_path: Path, auth_env: dict[str, str], manager_headers: dict[str, str]
) -> None:
    store = SQLiteEventStore(tmp_path / "placement.db", SOURCE)
    try:
        case_id = known_case(store)
        app = create_app(
            PlacementSettings(database_url="sqlite:///unused.db"),
            store=store,
            clock=FixedClock(),
        )
        with TestClient(app, headers=manager_headers) as client:
            consult(client, case_id)
            assert client.get("/readyz").json()["checks"] == {"event_store": "ok"}
            assert client.get(f"/cases/{case_id}").json()["version"] == 1
    finally:
        store.close()


def test_relay_and_subscribers_start_with_the_app_and_stop_with_it(
    store: InMemoryEventStore, auth_env: dict[str, str]
) -> None:
    started: list[str] = []
    stopped: list[str] = []

    class Loop:
        def __init__(self, name: str) -> None:
            self.name = name
            started.append(name)

        def is_alive(self) -> bool:
            return True

        def stop(self, timeout_s: float | None = None) -> None:
            stopped.append(self.name)

    settings = PlacementSettings(
        database_url="memory://", relay_enabled=True, subscribers_enabled=True
    )
    app = create_app(
        settings,
        store=store,
        relay_factory=lambda settings, store, registry: Loop("relay"),
        subscribers_factory=lambda settings, store, handler, registry: [
            Loop("intake"),
            Loop("plans"),
        ],
    )
    with TestClient(app) as client:
        checks = client.get("/readyz").json()["checks"]
        assert checks == {
            "event_store": "ok",
            "outbox_relay": "ok",
            "subscribers": "ok",
            "kafka_bootstrapped": "ok",
        }

    assert started == ["relay", "intake", "plans"]
    assert stopped == ["intake", "plans", "relay"]


def test_the_app_runs_on_postgresql(
    postgres_database: str,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    store = open_store(postgres_database, SOURCE)
    try:
        case_id = known_case(store, curriculum_year=5)
        app = create_app(
            PlacementSettings(database_url="sqlite:///unused.db"),
            store=store,
            clock=FixedClock(),
        )
        with TestClient(app, headers=manager_headers) as client:
            consult(client, case_id)
            identified = post(client, "/phase-transfers/2026/identify", {})
            assert identified["identified"] == [case_id]
            case = client.get(f"/cases/{case_id}").json()
            assert case["facts"]["curriculum_year_now"] == 6
            assert [t["phase"] for t in case["transfers"]] == ["primary_to_secondary"]
    finally:
        store.close()
