"""Received timestamps at and beyond the ends of time, over HTTP, on each durable store.

A timestamp of year 1 or 9999 parses, but has no London date Python can hold; intake
refuses it with a 422 naming the field, before taking any London date, whether it
comes with a request or as a correction, and writes nothing.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from intake_support import request_body

from sendkit.store import EventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Every test here, tables included, runs on SQLite and on PostgreSQL (conftest.py)."""

BORN = "2005-05-14"  # so a request on the first supported day is after the birth

OUT_OF_RANGE = [
    pytest.param("0001-01-01T00:00:00+00:00", "before", id="year-1-utc"),
    pytest.param("0001-01-01T00:00:00+05:00", "before", id="year-1-ahead-of-utc"),
    pytest.param("2014-08-31T22:59:59+00:00", "before", id="a-second-before-sep-2014"),
    pytest.param("9999-12-31T23:00:00+00:00", "future", id="year-9999-utc"),
    pytest.param("9999-12-31T23:59:59-23:59", "future", id="year-9999-behind-utc"),
]
SAYS = {
    "before": "must not be before 2014-09-01",
    "future": "must not be in the future",
}


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


@pytest.mark.parametrize(("received_at", "why"), OUT_OF_RANGE)
def test_a_request_received_outside_the_range_is_422_and_writes_nothing(
    client: TestClient, store: EventStore, received_at: str, why: str
) -> None:
    response = client.post(
        "/cases", json=request_body(received_at=received_at, date_of_birth=BORN)
    )

    assert SAYS[why] in refused(response, "received_at")
    assert store.last_position() == 0


@pytest.mark.parametrize(("received_at", "why"), OUT_OF_RANGE)
def test_a_correction_to_a_time_outside_the_range_is_422_and_writes_nothing(
    client: TestClient, store: EventStore, received_at: str, why: str
) -> None:
    created = client.post("/cases", json=request_body(date_of_birth=BORN))
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    before = store.last_position()

    response = client.post(
        f"/cases/{case_id}/corrections",
        json={"field": "received_at", "new_value": received_at, "reason": "typed"},
    )

    assert SAYS[why] in refused(response, "new_value")
    assert store.last_position() == before
    assert (
        client.get(f"/cases/{case_id}").json()["received_at"].startswith("2025-01-06")
    )


def test_midnight_in_london_on_1_september_2014_is_taken_both_ways(
    client: TestClient, store: EventStore
) -> None:
    first = "2014-08-31T23:00:00+00:00"  # 00:00 BST on 1 September 2014
    created = client.post(
        "/cases", json=request_body(received_at=first, date_of_birth=BORN)
    )
    corrected_case = client.post("/cases", json=request_body(date_of_birth=BORN))

    corrected = client.post(
        f"/cases/{corrected_case.json()['case_id']}/corrections",
        json={"field": "received_at", "new_value": first, "reason": "typed"},
    )

    assert created.status_code == 201, created.text
    assert corrected.status_code == 200, corrected.text
    assert store.last_position() == 3
