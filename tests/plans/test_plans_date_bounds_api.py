"""Planned dates over HTTP: a final plan's start and the move on a transfer-out notice.

Both may lie ahead of today, but no further than the calendar's planning horizon
(three years), and neither before 1 September 2014, when EHC plans began; a date
outside is refused with a 422 naming the field and nothing is written, so no event
the deadlines worker cannot count with is ever published. The fixed today is
Monday 1 June 2026, so the horizon is Thursday 31 May 2029. Each test, tables
included, runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from plans_support import final_plan_body, open_assessment

from plans.application.reactions import IntakeReactions
from sendkit.store import EventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE

HORIZON = "2029-05-31"
PAST_HORIZON = "2029-06-01"
SAYS = {
    "ahead": f"must be at most three years ahead (on or before {HORIZON})",
    "before": "must not be before 2014-09-01",
}
OUT_OF_RANGE = [
    pytest.param("9999-12-31", "ahead", id="year-9999"),
    pytest.param(PAST_HORIZON, "ahead", id="a-day-past-the-horizon"),
    pytest.param("0001-01-01", "before", id="year-1"),
    pytest.param("2014-08-31", "before", id="the-day-before-ehc-plans"),
]


def refused(response: Response, field: str) -> str:
    """The message of the one error of a 422 validation problem naming ``field``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/validation-error"
    [error] = body["errors"]
    assert error["field"] == field
    message: str = error["message"]
    return message


@pytest.fixture
def case_id(store: EventStore, reactions: IntakeReactions) -> str:
    return open_assessment(store, reactions)


def post(client: TestClient, case_id: str, path: str, body: dict[str, Any]) -> Response:
    return client.post(f"/cases/{case_id}/{path}", json=body)


def serve_draft(client: TestClient, case_id: str) -> None:
    served = post(client, case_id, "draft-plans", {"served_on": "2026-03-02"})
    assert served.status_code == 200, served.text


def issue(client: TestClient, case_id: str, **changes: Any) -> Response:
    serve_draft(client, case_id)
    return post(client, case_id, "final-plan", final_plan_body(**changes))


def notice(move_on: str) -> dict[str, Any]:
    return {
        "learned_on": "2026-04-01",
        "move_on": move_on,
        "to_council": "Sampleton Borough Council",
    }


@pytest.mark.parametrize("start_date", [HORIZON, "2026-09-01"])
def test_a_final_plan_may_start_up_to_the_horizon(
    client: TestClient, case_id: str, start_date: str
) -> None:
    response = issue(client, case_id, start_date=start_date)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "plan_maintained"


@pytest.mark.parametrize(
    ("start_date", "why"),
    [row for row in OUT_OF_RANGE if row.values[1] == "ahead"],
)
def test_a_final_plan_starting_past_the_horizon_is_422_and_writes_nothing(
    client: TestClient, store: EventStore, case_id: str, start_date: str, why: str
) -> None:
    serve_draft(client, case_id)
    before = store.last_position()

    response = post(
        client, case_id, "final-plan", final_plan_body(start_date=start_date)
    )

    assert SAYS[why] in refused(response, "start_date")
    assert store.last_position() == before
    assert client.get(f"/cases/{case_id}").json()["status"] != "plan_maintained"


@pytest.mark.parametrize("move_on", [HORIZON, "2026-04-30", "2025-12-01"])
def test_a_move_may_be_past_or_ahead_up_to_the_horizon(
    client: TestClient, case_id: str, move_on: str
) -> None:
    assert issue(client, case_id).status_code == 200

    response = post(client, case_id, "transfer-out-notice", notice(move_on))

    assert response.status_code == 200, response.text
    case = client.get(f"/cases/{case_id}").json()
    assert case["transfer_out"]["move_on"] == move_on


@pytest.mark.parametrize(("move_on", "why"), OUT_OF_RANGE)
def test_a_transfer_notice_moving_outside_the_range_is_422_and_writes_nothing(
    client: TestClient, store: EventStore, case_id: str, move_on: str, why: str
) -> None:
    assert issue(client, case_id).status_code == 200
    before = store.last_position()

    response = post(client, case_id, "transfer-out-notice", notice(move_on))

    assert SAYS[why] in refused(response, "move_on")
    assert store.last_position() == before
    assert client.get(f"/cases/{case_id}").json()["transfer_out"] is None
