"""The access log: each read of a case's personal details recorded, none of the data.

For intake, plans, reviews and placement alike: a read by a permitted member of staff
leaves one entry (who, when, which case, which endpoint and fields, the correlation id),
a refused or failed read leaves none, the entry holds nothing personal, and only
auditors read it back through ``GET /access-log``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from auth_support import (
    SCHOOL,
    headers_of,
    intake_app,
    intake_case,
    intake_store,
    placement_app,
    placement_case,
    placement_store,
    plans_app,
    plans_case,
    plans_store,
    reviews_app,
    reviews_case,
    reviews_store,
)
from fastapi.testclient import TestClient

from devstack.issuer import LocalIssuer
from sendkit.auth.access_log import COLLECTION


def _intake(issuer: LocalIssuer) -> tuple[TestClient, str]:
    store = intake_store()
    case_id = intake_case(store)
    return TestClient(intake_app(issuer, store)), case_id


def _plans(issuer: LocalIssuer) -> tuple[TestClient, str]:
    app = plans_app(issuer, plans_store())
    return TestClient(app), plans_case(app)


def _reviews(issuer: LocalIssuer) -> tuple[TestClient, str]:
    app = reviews_app(issuer, reviews_store())
    return TestClient(app), reviews_case(app)


def _placement(issuer: LocalIssuer) -> tuple[TestClient, str]:
    app = placement_app(issuer, placement_store())
    return TestClient(app), placement_case(app)


SERVICES: dict[str, Callable[[LocalIssuer], tuple[TestClient, str]]] = {
    "intake": _intake,
    "plans": _plans,
    "reviews": _reviews,
    "placement": _placement,
}
PERSONAL_VALUES = ("C-00000001", "Alfa Testcase", "2016-05-14")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_read_of_a_case_leaves_one_entry_naming_who_what_and_when(
    local_issuer: LocalIssuer, service: str
) -> None:
    client, case_id = SERVICES[service](local_issuer)
    before = datetime.now(UTC)

    with client:
        for who in ("coord_own", "senco_school", "coord_own"):
            response = client.get(
                f"/cases/{case_id}",
                headers={
                    **headers_of(local_issuer, who),
                    "X-Correlation-ID": f"read-{who}",
                },
            )
            assert response.status_code == 200, response.text
        log = client.get("/access-log", headers=headers_of(local_issuer, "auditor"))

    assert log.status_code == 200
    entries = log.json()["entries"]
    assert log.json()["total"] == 3
    assert [e["staff_id"] for e in entries] == ["co-own", "senco-1", "co-own"]
    assert [e["correlation_id"] for e in entries] == [
        "read-coord_own",
        "read-senco_school",
        "read-coord_own",
    ]
    first = entries[0]
    assert first["case_id"] == case_id
    assert first["endpoint"] == "GET /cases/{case_id}"
    assert first["service"] == service
    assert first["roles"] == ["ehc_coordinator"]
    assert first["fields"]
    assert "history.private" in first["fields"]
    assert before <= datetime.fromisoformat(first["at"]) <= datetime.now(UTC)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_refused_or_missing_read_leaves_no_entry(
    local_issuer: LocalIssuer, service: str
) -> None:
    client, case_id = SERVICES[service](local_issuer)
    unknown = "6f1c5b1e-0000-4000-8000-000000000000"

    with client:
        refused = client.get(
            f"/cases/{case_id}", headers=headers_of(local_issuer, "senco_far")
        )
        missing = client.get(
            f"/cases/{unknown}", headers=headers_of(local_issuer, "mgr_team")
        )
        anonymous = client.get(f"/cases/{case_id}")
        log = client.get("/access-log", headers=headers_of(local_issuer, "auditor"))

    assert (refused.status_code, missing.status_code, anonymous.status_code) == (
        403,
        404,
        401,
    )
    assert log.json()["total"] == 0


def test_the_log_itself_holds_no_personal_data(local_issuer: LocalIssuer) -> None:
    client, case_id = _intake(local_issuer)

    with client:
        read = client.get(
            f"/cases/{case_id}", headers=headers_of(local_issuer, "panel")
        )
        store = client.app.state.store  # type: ignore[attr-defined]
        with store.transaction() as tx:
            rows = tx.list_documents(COLLECTION)

    assert all(value in read.text for value in PERSONAL_VALUES)
    stored = json.dumps(rows)
    assert len(rows) == 1
    assert not any(value in stored for value in PERSONAL_VALUES)
    assert str(SCHOOL) not in stored


def test_the_log_filters_by_case_staff_and_time(local_issuer: LocalIssuer) -> None:
    store = intake_store()
    first, second = intake_case(store), intake_case(store)
    auditor = headers_of(local_issuer, "auditor")

    with TestClient(intake_app(local_issuer, store)) as client:
        for case_id in (first, second, first):
            client.get(
                f"/cases/{case_id}", headers=headers_of(local_issuer, "mgr_team")
            )
        client.get(f"/cases/{second}", headers=auditor)

        def total(**query: Any) -> int:
            answer = client.get("/access-log", params=query, headers=auditor)
            assert answer.status_code == 200, answer.text
            found: int = answer.json()["total"]
            return found

        soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert total() == 4
        assert total(case_id=first) == 2
        assert total(staff_id="audit-1") == 1
        assert total(case_id=second, staff_id="mgr-north") == 1
        assert total(since=soon) == 0
        assert total(until=soon) == 4
        paged = client.get(
            "/access-log", params={"limit": 1, "offset": 1}, headers=auditor
        ).json()

    assert paged["total"] == 4
    assert [e["case_id"] for e in paged["entries"]] == [second]


def test_a_naive_time_filter_is_refused(local_issuer: LocalIssuer) -> None:
    client, _ = _intake(local_issuer)

    with client:
        answer = client.get(
            "/access-log",
            params={"since": "2025-01-01T00:00:00"},
            headers=headers_of(local_issuer, "auditor"),
        )

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "query.since"
