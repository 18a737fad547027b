"""Each role allowed and refused on each endpoint of intake, plans and reviews.

One table per service: every route with the principals (``auth_support.STAFF``) it must
let through; every other principal must be refused with 403 problem details, before
anything is read or written. "Let through" means neither 401 nor 403: a command sent
with an empty body then fails validation (422), which proves the request got past
access control without changing the case. A second test sends each route no token and
expects 401 with a ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from auth_support import (
    COORDINATOR,
    EVERYONE,
    SCHOOL,
    STAFF,
    headers_of,
    intake_app,
    intake_case,
    intake_store,
    plans_app,
    plans_case,
    plans_store,
    reviews_app,
    reviews_case,
    reviews_store,
)
from fastapi.testclient import TestClient

from devstack.issuer import LocalIssuer

# Who may do what, written out by hand (not derived from the policies under test).
CASEWORK = frozenset({"coord_own", "mgr_team"})
READERS = frozenset(
    {"coord_own", "coord_team", "mgr_team", "senco_school", "panel", "auditor"}
)
OPENERS = frozenset({"coord_own", "coord_team", "coord_far", "mgr_team", "mgr_far"})
LISTERS = OPENERS | {"senco_school", "senco_far", "panel", "auditor"}
ALLOCATORS = frozenset({"mgr_team"})
DECIDERS = CASEWORK | {"panel"}
SCHOOL_ACTS = CASEWORK | {"senco_school"}
AUDITORS = frozenset({"auditor"})
SCHOOL_LIST_READERS = LISTERS - {"senco_far"}
COORDINATOR_LIST_READERS = frozenset(
    {"coord_own", "coord_team", "mgr_team", "panel", "auditor"}
)

CASE = "{case}"
ANY_ID = str(uuid.uuid4())

INTAKE_ROUTES: list[tuple[str, str, frozenset[str]]] = [
    ("POST", "/cases", OPENERS),
    ("GET", "/cases", LISTERS),
    ("GET", f"/cases/{CASE}", READERS),
    ("POST", f"/cases/{CASE}/coordinator", ALLOCATORS),
    ("POST", f"/cases/{CASE}/decision", DECIDERS),
    ("POST", f"/cases/{CASE}/time-limit-exceptions", CASEWORK),
    ("POST", f"/cases/{CASE}/withdrawal", CASEWORK),
    ("POST", f"/cases/{CASE}/corrections", CASEWORK),
    ("POST", f"/coordinators/{COORDINATOR}/reassignment", ALLOCATORS),
    ("GET", "/access-log", AUDITORS),
]

PLANS_ROUTES: list[tuple[str, str, frozenset[str]]] = [
    ("POST", f"/cases/{CASE}/advice-requests", CASEWORK),
    ("POST", f"/cases/{CASE}/advice-requests/{ANY_ID}/receipt", CASEWORK),
    ("POST", f"/cases/{CASE}/no-plan-notice", DECIDERS),
    ("POST", f"/cases/{CASE}/draft-plans", CASEWORK),
    ("POST", f"/cases/{CASE}/draft-comments", CASEWORK),
    ("POST", f"/cases/{CASE}/final-plan", CASEWORK),
    ("POST", f"/cases/{CASE}/amendment-notices", CASEWORK),
    ("POST", f"/cases/{CASE}/amendments", CASEWORK),
    ("POST", f"/cases/{CASE}/cessation", DECIDERS),
    ("POST", f"/cases/{CASE}/transfer-out-notice", CASEWORK),
    ("POST", f"/cases/{CASE}/transfer-out", CASEWORK),
    ("POST", "/transfers-in", OPENERS),
    ("POST", f"/cases/{CASE}/new-council-notice", CASEWORK),
    ("POST", f"/cases/{CASE}/reassessment-requests", CASEWORK),
    ("POST", f"/cases/{CASE}/reassessment-decision", DECIDERS),
    ("POST", f"/cases/{CASE}/time-limit-exceptions", CASEWORK),
    ("GET", f"/cases/{CASE}", READERS),
    ("GET", "/access-log", AUDITORS),
]

REVIEWS_ROUTES: list[tuple[str, str, frozenset[str]]] = [
    ("POST", f"/cases/{CASE}/reviews", CASEWORK),
    ("POST", f"/cases/{CASE}/reviews/{ANY_ID}/rearrangement", CASEWORK),
    ("POST", f"/cases/{CASE}/reviews/{ANY_ID}/papers", CASEWORK),
    ("POST", f"/cases/{CASE}/reviews/{ANY_ID}/meeting", SCHOOL_ACTS),
    ("POST", f"/cases/{CASE}/reviews/{ANY_ID}/report", SCHOOL_ACTS),
    ("POST", f"/cases/{CASE}/reviews/{ANY_ID}/decision", DECIDERS),
    ("POST", f"/cases/{CASE}/reviews/{ANY_ID}/referrals", CASEWORK),
    ("POST", f"/cases/{CASE}/interim-review-requests", CASEWORK),
    ("POST", f"/schools/{SCHOOL}/review-lists", OPENERS),
    ("GET", f"/cases/{CASE}", READERS),
    (
        "GET",
        f"/schools/{SCHOOL}/upcoming-reviews?term_start=2026-01-01&term_end=2026-12-31",
        SCHOOL_LIST_READERS,
    ),
    (
        "GET",
        f"/coordinators/{COORDINATOR}/upcoming-reviews?from=2026-01-01&to=2026-12-31",
        COORDINATOR_LIST_READERS,
    ),
    ("GET", "/access-log", AUDITORS),
]


class Service:
    """One adopted service's app, with the case the table checks."""

    def __init__(self, client: TestClient, case_id: str) -> None:
        self.client = client
        self.case_id = case_id

    def call(self, method: str, path: str, headers: dict[str, str]) -> Any:
        url = path.replace(CASE, self.case_id)
        if method == "GET":
            return self.client.get(url, headers=headers)
        return self.client.post(url, json={}, headers=headers)


@pytest.fixture(scope="module")
def services(local_issuer: LocalIssuer) -> Iterator[dict[str, Service]]:
    stores = {"intake": intake_store(), "plans": plans_store()}
    stores["reviews"] = reviews_store()
    apps = {
        "intake": intake_app(local_issuer, stores["intake"]),
        "plans": plans_app(local_issuer, stores["plans"]),
        "reviews": reviews_app(local_issuer, stores["reviews"]),
    }
    cases = {
        "intake": intake_case(stores["intake"]),
        "plans": plans_case(apps["plans"]),
        "reviews": reviews_case(apps["reviews"]),
    }
    clients = {name: TestClient(app) for name, app in apps.items()}
    for client in clients.values():
        client.__enter__()
    yield {name: Service(clients[name], cases[name]) for name in apps}
    for client in clients.values():
        client.__exit__(None, None, None)


def _table() -> list[Any]:
    rows = []
    for service, routes in (
        ("intake", INTAKE_ROUTES),
        ("plans", PLANS_ROUTES),
        ("reviews", REVIEWS_ROUTES),
    ):
        for method, path, allowed in routes:
            for name in sorted(EVERYONE):
                rows.append(
                    pytest.param(
                        service,
                        method,
                        path,
                        name,
                        name in allowed,
                        id=f"{service}-{method}-{path.split('?')[0]}-{name}",
                    )
                )
    return rows


@pytest.mark.parametrize(("service", "method", "path", "who", "allowed"), _table())
def test_each_role_is_allowed_or_refused_on_each_endpoint(
    services: dict[str, Service],
    local_issuer: LocalIssuer,
    service: str,
    method: str,
    path: str,
    who: str,
    allowed: bool,
) -> None:
    response = services[service].call(method, path, headers_of(local_issuer, who))

    if allowed:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        body = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert body["type"] == "/problems/forbidden"
        assert body["action"].startswith(f"{service}:")
        assert set(body) <= {
            "type",
            "title",
            "status",
            "detail",
            "instance",
            "action",
            "correlation_id",
        }


def _routes() -> list[Any]:
    return [
        pytest.param(service, method, path, id=f"{service}-{method}-{path}")
        for service, routes in (
            ("intake", INTAKE_ROUTES),
            ("plans", PLANS_ROUTES),
            ("reviews", REVIEWS_ROUTES),
        )
        for method, path, _ in routes
    ]


@pytest.mark.parametrize(("service", "method", "path"), _routes())
def test_each_endpoint_refuses_a_request_without_a_token(
    services: dict[str, Service], service: str, method: str, path: str
) -> None:
    response = services[service].call(method, path, headers={})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer realm="{service}"'
    assert response.json()["type"] == "/problems/unauthenticated"
    assert response.json()["reason"] == "no_token"


def test_lists_show_each_reader_only_the_cases_they_may_read(
    services: dict[str, Service], local_issuer: LocalIssuer
) -> None:
    intake = services["intake"]

    def listed(who: str) -> set[str]:
        response = intake.client.get("/cases", headers=headers_of(local_issuer, who))
        assert response.status_code == 200
        return {row["case_id"] for row in response.json()["cases"]}

    assert intake.case_id in listed("senco_school")
    assert intake.case_id in listed("coord_team")
    assert intake.case_id not in listed("senco_far")
    assert intake.case_id not in listed("coord_far")
    assert intake.case_id not in listed("mgr_far")


def test_a_review_list_shows_a_coordinator_of_another_team_nothing_of_this_one(
    services: dict[str, Service], local_issuer: LocalIssuer
) -> None:
    reviews = services["reviews"]
    path = f"/schools/{SCHOOL}/upcoming-reviews"
    query = {"term_start": "2026-01-01", "term_end": "2026-12-31"}

    def listed(who: str) -> set[str]:
        response = reviews.client.get(
            path, params=query, headers=headers_of(local_issuer, who)
        )
        assert response.status_code == 200, response.text
        return {row["case_id"] for row in response.json()["reviews"]}

    assert reviews.case_id in listed("senco_school")
    assert reviews.case_id in listed("coord_own")
    assert reviews.case_id not in listed("coord_far")


def test_the_staff_table_names_ten_distinct_members() -> None:
    assert len({staff.staff_id for staff in STAFF.values()}) == len(STAFF) == 10
