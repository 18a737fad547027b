"""Who may read the deadlines read API: each role on each endpoint, and bad tokens.

Tokens come from the run's local issuer (``tests/auth_fixtures.py``) and are verified
by the app through the real path: the issuer's JWKS over HTTP, signature, issuer,
audience and expiry. The read model holds two cases of January 2025: one at school A
coordinated by ``ehcco-1`` of the default team, one at school B coordinated by
``ehcco-9``, who is in the north team.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_readapi_queries import Case, fold

from auth_fixtures import Mint
from deadlines.application.processor import SOURCE
from deadlines.entrypoints.api import create_app
from deadlines.settings import DeadlinesSettings
from devstack.issuer import LocalIssuer, new_signing_key
from sendkit.store import EventStore
from store_backends import DURABLE, durable_store

SCHOOL_A, SCHOOL_B, SCHOOL_C = 100021, 100022, 100023
WINDOW = {"from": "2025-01-01", "to": "2025-12-31"}
PERIOD = {"from": "2025-01-01", "to": "2025-12-31"}


@pytest.fixture(scope="module")
def cases() -> tuple[Case, Case]:
    ours = Case("access/ours", SCHOOL_A, "ehcco-1")
    ours.request("2025-01-06T10:00:00Z")
    theirs = Case("access/theirs", SCHOOL_B, "ehcco-9")
    theirs.request("2025-01-13T10:00:00Z")
    return ours, theirs


@pytest.fixture(params=DURABLE)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, cases: tuple[Case, Case]
) -> Iterator[EventStore]:
    """The read model on SQLite and on PostgreSQL: each test runs on both."""
    with durable_store(request.param, tmp_path, SOURCE) as opened:
        fold(opened, list(cases))
        yield opened


@pytest.fixture
def client(
    store: EventStore, auth_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("AUTH_TEAM_MEMBERS", json.dumps({"ehcco-9": "north"}))
    app = create_app(DeadlinesSettings(), store=store, projector=False)
    with TestClient(app) as test_client:
        yield test_client


def endpoint(name: str, cases: tuple[Case, Case]) -> tuple[str, dict[str, str]]:
    """The path and query of one endpoint, about the default team's case at school A."""
    return {
        "timeline": (f"/cases/{cases[0].case_id}/timeline", {}),
        "due": ("/due", WINDOW),
        "summary": ("/summary", {}),
        "timeliness": ("/timeliness", PERIOD),
        "access-log": ("/access-log", {}),
    }[name]


# The token of each reader: roles and claims.
READERS: dict[str, dict[str, Any]] = {
    "coordinator": {"roles": ["ehc_coordinator"], "team": "send"},
    "coordinator of another team": {"roles": ["ehc_coordinator"], "team": "north"},
    "manager": {"roles": ["team_manager"], "team": "north"},
    "senco of school A": {"roles": ["senco"], "school_urns": [SCHOOL_A]},
    "senco of another school": {"roles": ["senco"], "school_urns": [SCHOOL_C]},
    "panel officer": {"roles": ["panel_officer"]},
    "administrator": {"roles": ["service_admin"]},
    "auditor": {"roles": ["auditor"]},
    "no role": {"roles": []},
    "an unknown role": {"roles": ["caretaker"]},
}

EVERYONE_READING = ("coordinator", "manager", "panel officer", "administrator")
# Expected status of each (reader, endpoint): the lists and counts answer every role
# that reads some case (filtered to its reach); a timeline needs the case in reach.
EXPECTED: dict[str, dict[str, int]] = {
    **{
        reader: {
            "timeline": 200,
            "due": 200,
            "summary": 200,
            "timeliness": 200,
            "access-log": 403,
        }
        for reader in (*EVERYONE_READING, "senco of school A")
    },
    "coordinator of another team": {
        "timeline": 403,
        "due": 200,
        "summary": 200,
        "timeliness": 200,
        "access-log": 403,
    },
    "senco of another school": {
        "timeline": 403,
        "due": 200,
        "summary": 200,
        "timeliness": 200,
        "access-log": 403,
    },
    "auditor": {
        "timeline": 200,
        "due": 200,
        "summary": 200,
        "timeliness": 200,
        "access-log": 200,
    },
    **{
        reader: dict.fromkeys(
            ("timeline", "due", "summary", "timeliness", "access-log"), 403
        )
        for reader in ("no role", "an unknown role")
    },
}

TABLE = [
    (reader, name, status)
    for reader, row in EXPECTED.items()
    for name, status in row.items()
]


def headers_of(mint: Mint, reader: str) -> dict[str, str]:
    claims = dict(READERS[reader])
    roles = claims.pop("roles")
    return mint(reader.replace(" ", "-"), roles, **claims)


def test_the_table_names_every_reader() -> None:
    assert set(EXPECTED) == set(READERS)


@pytest.mark.parametrize(("reader", "name", "status"), TABLE)
def test_each_role_is_allowed_or_refused_on_each_endpoint(
    client: TestClient,
    mint: Mint,
    cases: tuple[Case, Case],
    reader: str,
    name: str,
    status: int,
) -> None:
    path, params = endpoint(name, cases)

    answer = client.get(path, params=params, headers=headers_of(mint, reader))

    assert answer.status_code == status, answer.text
    if status == 403:
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["title"] == "Forbidden"


@pytest.mark.parametrize("name", ["timeline", "due", "summary", "timeliness"])
def test_without_a_token_every_endpoint_is_a_401_problem(
    client: TestClient, cases: tuple[Case, Case], name: str
) -> None:
    path, params = endpoint(name, cases)

    answer = client.get(path, params=params)

    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["reason"] == "no_token"


def test_probes_and_metrics_stay_open(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        ("expired", "expired"),
        ("wrong audience", "wrong_audience"),
        ("unknown key id", "unknown_key"),
        ("wrong signature", "bad_signature"),
        ("another issuer", "wrong_issuer"),
    ],
)
def test_a_token_that_cannot_be_trusted_is_a_401_problem(
    client: TestClient,
    local_issuer: LocalIssuer,
    cases: tuple[Case, Case],
    what: str,
    reason: str,
) -> None:
    made: dict[str, dict[str, Any]] = {
        "expired": {"issued_at": datetime.now(UTC) - timedelta(hours=2)},
        "wrong audience": {"audience": "another-api"},
        "unknown key id": {"kid": "no-such-key"},
        "wrong signature": {"signing_key": new_signing_key()},
        "another issuer": {"issuer": "http://127.0.0.1:9/other"},
    }
    token = local_issuer.mint("mgr-1", ["team_manager"], **made[what])

    answer = client.get(
        f"/cases/{cases[0].case_id}/timeline",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["reason"] == reason
    assert token not in answer.text


def test_lists_and_counts_hold_only_the_cases_in_reach(
    client: TestClient, mint: Mint, cases: tuple[Case, Case]
) -> None:
    ours, theirs = cases
    readers = {
        "coordinator": {ours.case_id},
        "coordinator of another team": {theirs.case_id},
        "senco of school A": {ours.case_id},
        "senco of another school": set(),
        "manager": {ours.case_id, theirs.case_id},
        "auditor": {ours.case_id, theirs.case_id},
    }

    for reader, expected in readers.items():
        headers = headers_of(mint, reader)
        due = client.get("/due", params=WINDOW, headers=headers).json()
        summary = client.get("/summary", headers=headers).json()
        counted = client.get("/timeliness", params=PERIOD, headers=headers).json()

        assert {item["case_id"] for item in due["items"]} == expected, reader
        assert summary["cases"] == len(expected), reader
        assert counted["cases"] == len(expected), reader
        received = counted["requests"]["requests_received_in_year"]
        assert received == len(expected), reader


@pytest.mark.parametrize(
    ("reader", "params"),
    [
        ("senco of another school", {"school_urn": str(SCHOOL_A)}),
        ("senco of school A", {"school_urn": str(SCHOOL_B)}),
        ("senco of school A", {"coordinator_id": "ehcco-1"}),
        ("coordinator", {"coordinator_id": "ehcco-9"}),
    ],
)
def test_naming_a_school_or_coordinator_beyond_reach_in_due_is_refused(
    client: TestClient, mint: Mint, reader: str, params: dict[str, str]
) -> None:
    answer = client.get(
        "/due", params={**WINDOW, **params}, headers=headers_of(mint, reader)
    )

    assert answer.status_code == 403
    assert answer.json()["title"] == "Forbidden"


def test_naming_ones_own_school_in_due_is_answered(
    client: TestClient, mint: Mint, cases: tuple[Case, Case]
) -> None:
    answer = client.get(
        "/due",
        params={**WINDOW, "school_urn": str(SCHOOL_A)},
        headers=headers_of(mint, "senco of school A"),
    )

    assert answer.status_code == 200
    assert {item["case_id"] for item in answer.json()["items"]} == {cases[0].case_id}


def test_each_timeline_read_is_in_the_access_log(
    client: TestClient, mint: Mint, cases: tuple[Case, Case]
) -> None:
    ours = cases[0].case_id
    reader = mint("ehcco-1", ["ehc_coordinator"])
    auditor = mint("auditor-1", ["auditor"])

    client.get(f"/cases/{ours}/timeline", headers=reader)
    client.get(f"/cases/{ours}/timeline", headers=reader)
    client.get("/due", params=WINDOW, headers=reader)
    refused = mint("senco-9", ["senco"], school_urns=[SCHOOL_C])
    assert client.get(f"/cases/{ours}/timeline", headers=refused).status_code == 403
    log = client.get("/access-log", params={"case_id": ours}, headers=auditor).json()

    assert log["total"] == 2
    entry = log["entries"][0]
    assert entry["staff_id"] == "ehcco-1"
    assert entry["roles"] == ["ehc_coordinator"]
    assert entry["endpoint"] == "GET /cases/{case_id}/timeline"
    assert entry["service"] == "deadlines"
    assert "school_urn" in entry["fields"]
    # The log names fields, never their values.
    assert str(SCHOOL_A) not in json.dumps(log)


def test_an_unknown_case_is_404_for_the_team_and_403_for_a_senco(
    client: TestClient, mint: Mint
) -> None:
    path = "/cases/00000000-0000-4000-8000-000000000000/timeline"

    team = client.get(path, headers=headers_of(mint, "coordinator"))
    senco = client.get(path, headers=headers_of(mint, "senco of school A"))

    # A SENCO learns nothing of which case ids exist.
    assert team.status_code == 404
    assert senco.status_code == 403


def test_a_due_range_longer_than_a_year_is_refused(
    client: TestClient, mint: Mint
) -> None:
    answer = client.get(
        "/due",
        params={"from": "2025-01-01", "to": "2026-01-02"},
        headers=headers_of(mint, "manager"),
    )
    year = client.get(
        "/due",
        params={"from": "2024-01-01", "to": "2024-12-31"},
        headers=headers_of(mint, "manager"),
    )

    assert answer.status_code == 422
    assert "at most 366 days" in answer.json()["detail"]
    assert [e["field"] for e in answer.json()["errors"]] == ["query.to"]
    # 2024 is a leap year: its 366 days are one range.
    assert year.status_code == 200
