"""``POST /cases/{id}/surgery-presentation`` and the correction of its date, over HTTP.

Bad input answers a problem naming the field and writes nothing; the access rule is
casework's (``cases.write``) and a retried command with the same key replays.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from intake_support import request_body

from auth_fixtures import Mint
from sendkit.store import EventStore

PROBLEM = "application/problem+json"


def receive(client: TestClient) -> str:
    response = client.post("/cases", json=request_body())
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    return case_id


def problem_fields(response: Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return [error["field"] for error in body.get("errors", [])]


def present(client: TestClient, case_id: str, body: dict[str, Any]) -> Response:
    response: Response = client.post(
        f"/cases/{case_id}/surgery-presentation", json=body
    )
    return response


def test_a_presentation_is_recorded_shown_on_the_case_and_in_the_list(
    client: TestClient,
) -> None:
    case_id, other = receive(client), receive(client)

    response = present(client, case_id, {"presented_on": "2025-02-03", "note": "ok"})

    assert response.status_code == 200, response.text
    assert [e["type"] for e in response.json()["events"]] == [
        "send.intake.RequestPresentedAtSurgery.v1"
    ]
    case = client.get(f"/cases/{case_id}").json()
    assert case["presented_on"] == "2025-02-03"
    assert case["status"] == "awaiting_decision"
    assert case["history"][-1]["data"] == {
        "case_id": case_id,
        "presented_on": "2025-02-03",
    }
    assert case["history"][-1]["private"] == {"note": "ok"}
    listed = {row["case_id"]: row for row in client.get("/cases").json()["cases"]}
    assert listed[case_id]["presented_on"] == "2025-02-03"
    assert listed[other]["presented_on"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "presented_on"),
        ({"presented_on": "3 February 2025"}, "presented_on"),
        ({"presented_on": "2025-02-30"}, "presented_on"),
        ({"presented_on": "2025-01-05"}, "presented_on"),  # before the request
        ({"presented_on": "2025-03-11"}, "presented_on"),  # after today
        ({"presented_on": "2025-02-03", "note": ""}, "note"),
        ({"presented_on": "2025-02-03", "outcome": "agreed"}, "outcome"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    client: TestClient, store: EventStore, body: dict[str, Any], field: str
) -> None:
    case_id = receive(client)
    before = store.last_position()

    response = present(client, case_id, body)

    assert problem_fields(response, 422) == [field]
    assert response.json()["type"] == "/problems/validation-error"
    assert store.last_position() == before


def test_a_presentation_after_the_decision_is_422_on_presented_on(
    client: TestClient, store: EventStore
) -> None:
    case_id = receive(client)
    client.post(
        f"/cases/{case_id}/decision",
        json={"outcome": "agreed", "notified_on": "2025-02-14"},
    )
    before = store.last_position()

    response = present(client, case_id, {"presented_on": "2025-02-17"})

    assert problem_fields(response, 422) == ["presented_on"]
    assert "2025-02-14" in response.json()["detail"]
    assert store.last_position() == before


def test_presenting_twice_or_after_withdrawal_is_409_and_writes_nothing(
    client: TestClient, store: EventStore
) -> None:
    presented, withdrawn = receive(client), receive(client)
    present(client, presented, {"presented_on": "2025-02-03"})
    client.post(f"/cases/{withdrawn}/withdrawal", json={"withdrawn_on": "2025-02-20"})
    before = store.last_position()

    again = present(client, presented, {"presented_on": "2025-02-10"})
    closed = present(client, withdrawn, {"presented_on": "2025-02-03"})

    problem_fields(again, 409)
    problem_fields(closed, 409)
    assert again.json()["type"] == "/problems/impossible-transition"
    assert "correction of presented_on" in again.json()["detail"]
    assert "withdrawn" in closed.json()["detail"]
    assert store.last_position() == before


def test_an_unknown_case_is_404(client: TestClient) -> None:
    response = present(
        client,
        "6f1c5b1e-0000-4000-8000-000000000000",
        {"presented_on": "2025-02-03"},
    )

    problem_fields(response, 404)


def test_a_retried_presentation_replays_and_is_not_refused_as_a_second(
    client: TestClient, store: EventStore
) -> None:
    case_id = receive(client)
    headers = {"Idempotency-Key": "surgery-1"}
    body = {"presented_on": "2025-02-03"}

    first = client.post(
        f"/cases/{case_id}/surgery-presentation", json=body, headers=headers
    )
    again = client.post(
        f"/cases/{case_id}/surgery-presentation", json=body, headers=headers
    )

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(store.read_stream(case_id)) == 2


def test_a_presentation_needs_casework_access(
    client: TestClient, store: EventStore, mint: Mint
) -> None:
    case_id = receive(client)
    before = store.last_position()

    as_senco = client.post(
        f"/cases/{case_id}/surgery-presentation",
        json={"presented_on": "2025-02-03"},
        headers=mint("senco-1", ["senco"], school_urns=[123456]),
    )
    without_token = client.post(
        f"/cases/{case_id}/surgery-presentation",
        json={"presented_on": "2025-02-03"},
        headers={"Authorization": ""},
    )

    assert as_senco.status_code == 403, as_senco.text
    assert without_token.status_code == 401, without_token.text
    assert store.last_position() == before


# The correction of its date -----------------------------------------------------------


def correct(client: TestClient, case_id: str, value: str) -> Response:
    response: Response = client.post(
        f"/cases/{case_id}/corrections",
        json={
            "field": "presented_on",
            "new_value": value,
            "reason": "the surgery's minutes give another day",
        },
    )
    return response


def test_correcting_the_presentation_date(client: TestClient) -> None:
    case_id = receive(client)
    present(client, case_id, {"presented_on": "2025-02-03"})

    response = correct(client, case_id, "2025-02-04")

    assert response.status_code == 200, response.text
    case = client.get(f"/cases/{case_id}").json()
    assert case["presented_on"] == "2025-02-04"
    assert case["history"][-1]["type"] == (
        "send.intake.SurgeryPresentationCorrected.v1"
    )
    assert case["history"][-1]["data"]["old_value"] == "2025-02-03"


@pytest.mark.parametrize("value", ["04/02/2025", "2025-01-01", "2025-02-03"])
def test_a_bad_corrected_date_is_422_on_new_value_and_writes_nothing(
    client: TestClient, store: EventStore, value: str
) -> None:
    case_id = receive(client)
    present(client, case_id, {"presented_on": "2025-02-03"})
    before = store.last_position()

    response = correct(client, case_id, value)

    assert problem_fields(response, 422) == ["new_value"]
    assert store.last_position() == before


def test_correcting_a_presentation_never_recorded_is_409(
    client: TestClient, store: EventStore
) -> None:
    case_id = receive(client)
    before = store.last_position()

    response = correct(client, case_id, "2025-02-04")

    problem_fields(response, 409)
    assert store.last_position() == before
