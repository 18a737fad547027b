"""Each role allowed and refused on each endpoint: intake, plans, reviews, placement.

One table per service: every route with the principals (``auth_support.STAFF``) it must
let through; every other principal must be refused with 403 problem details, before
anything is read or written. "Let through" means neither 401 nor 403: a command sent
with an empty body then fails validation (422), which proves the request got past
access control without changing the case. A second test sends each route no token and
expects 401 with a ``WWW-Authenticate`` challenge. A route whose cases are named in its
body, not its path (placement's panel scheduling), is sent a body naming the case
(``BODIES``); it then answers 404 or 409 to those let through, writing nothing.
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
IDENTIFIERS = frozenset({"mgr_team", "mgr_far", "admin"})

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
    ("POST", f"/cases/{CASE}/surgery-presentation", CASEWORK),
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


PLACEMENT_ROUTES: list[tuple[str, str, frozenset[str]]] = [
    ("POST", f"/cases/{CASE}/setting-requests", CASEWORK),
    ("POST", f"/cases/{CASE}/consultations", CASEWORK),
    ("POST", f"/cases/{CASE}/consultations/{ANY_ID}/answer", CASEWORK),
    ("POST", f"/cases/{CASE}/panel-submissions", CASEWORK),
    ("POST", "/panels", DECIDERS),
    ("POST", f"/panels/{ANY_ID}/cases", DECIDERS),
    ("POST", f"/panels/{ANY_ID}/cases/{CASE}/decision", DECIDERS),
    ("POST", f"/panels/{ANY_ID}/cases/{CASE}/communication", DECIDERS),
    ("POST", f"/cases/{CASE}/post16-moves", CASEWORK),
    ("POST", f"/cases/{CASE}/transport-eligibility", CASEWORK),
    ("POST", f"/cases/{CASE}/transport-referral", CASEWORK),
    # A year never open to identification: those let through get 422, nothing new.
    ("POST", "/phase-transfers/2000/identify", IDENTIFIERS),
    ("GET", "/phase-transfers/2026", LISTERS),
    ("GET", f"/cases/{CASE}", READERS),
    ("GET", "/panels", LISTERS),
    ("GET", f"/panels/{ANY_ID}", LISTERS),
    ("GET", "/access-log", AUDITORS),
]

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("placement", "/panels"): {"panel_on": "2025-10-02", "case_ids": [CASE]},
    ("placement", f"/panels/{ANY_ID}/cases"): {"case_ids": [CASE]},
}
"""The bodies of the routes checked on the cases their body names (else ``{}``)."""

TABLES: dict[str, list[tuple[str, str, frozenset[str]]]] = {
    "intake": INTAKE_ROUTES,
    "plans": PLANS_ROUTES,
    "reviews": REVIEWS_ROUTES,
    "placement": PLACEMENT_ROUTES,
}


class Service:
    """One adopted service's app, with the case the table checks."""

    def __init__(self, name: str, client: TestClient, case_id: str) -> None:
        self.name = name
        self.client = client
        self.case_id = case_id

    def call(self, method: str, path: str, headers: dict[str, str]) -> Any:
        url = path.replace(CASE, self.case_id)
        if method == "GET":
            return self.client.get(url, headers=headers)
        body = {
            key: [self.case_id if item == CASE else item for item in value]
            if isinstance(value, list)
            else value
            for key, value in BODIES.get((self.name, path), {}).items()
        }
        return self.client.post(url, json=body, headers=headers)


@pytest.fixture(scope="module")
def services(local_issuer: LocalIssuer) -> Iterator[dict[str, Service]]:
    stores = {"intake": intake_store(), "plans": plans_store()}
    stores["reviews"] = reviews_store()
    stores["placement"] = placement_store()
    apps = {
        "intake": intake_app(local_issuer, stores["intake"]),
        "plans": plans_app(local_issuer, stores["plans"]),
        "reviews": reviews_app(local_issuer, stores["reviews"]),
        "placement": placement_app(local_issuer, stores["placement"]),
    }
    cases = {
        "intake": intake_case(stores["intake"]),
        "plans": plans_case(apps["plans"]),
        "reviews": reviews_case(apps["reviews"]),
        "placement": placement_case(apps["placement"]),
    }
    clients = {name: TestClient(app) for name, app in apps.items()}
    for client in clients.values():
        client.__enter__()
    yield {name: Service(name, clients[name], cases[name]) for name in apps}
    for client in clients.values():
        client.__exit__(None, None, None)


def _table() -> list[Any]:
    rows = []
    for service, routes in TABLES.items():
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
        for service, routes in TABLES.items()
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


def test_placements_cohort_shows_another_teams_coordinator_none_of_this_ones(
    services: dict[str, Service], local_issuer: LocalIssuer
) -> None:
    placement = services["placement"]

    def listed(who: str) -> set[str]:
        response = placement.client.get(
            "/phase-transfers/2026", headers=headers_of(local_issuer, who)
        )
        assert response.status_code == 200, response.text
        return {row["case_id"] for row in response.json()["children"]}

    assert placement.case_id in listed("coord_team")
    assert placement.case_id in listed("senco_school")
    assert placement.case_id not in listed("coord_far")
    assert placement.case_id not in listed("mgr_far")
    assert placement.case_id not in listed("senco_far")


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
