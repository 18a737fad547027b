"""Placement's own access rules: panels checked on every case they list, lists filtered.

The route-by-route table of every role is in ``tests/auth/test_auth_roles.py``; these
tests cover what only placement does: scheduling a panel names its cases in the body,
so each listed case must be within the caller's reach; a panel and the phase-transfer
cohort show each reader only the cases they may read; a case's schools include the
settings its plan names; and the subscriber keeps each case's coordinator and school.
Everyone here is in the default team, so a coordinator's reach is told apart only by
their own caseload.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from placement_support import (
    SCHOOL,
    SECONDARY,
    FixedClock,
    feed,
    known_case,
    plan_amended,
    received,
    request_received,
)

from auth_fixtures import Mint
from placement.application.service import PlacementService, new_id
from placement.domain import ConsultSetting, OptionInput, PrepareSubmission
from placement.entrypoints.http import create_app
from placement.settings import PlacementSettings
from sendkit.auth.scope import stored_case_scope
from sendkit.store import InMemoryEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

PROBLEM = "application/problem+json"
OTHER_SCHOOL = 131313


def assign(store: InMemoryEventStore, case_id: str, coordinator_id: str) -> None:
    feed(
        store,
        received(
            "send.intake.CoordinatorAssigned.v1",
            {"case_id": case_id, "coordinator_id": coordinator_id},
        ),
    )


def ready(
    service: PlacementService,
    store: InMemoryEventStore,
    coordinator_id: str,
    *,
    school: int = SCHOOL,
) -> str:
    """A case at ``school``, on ``coordinator_id``'s caseload, ready for a panel."""
    case_id = known_case(store, curriculum_year=5, setting_urn=school)
    assign(store, case_id, coordinator_id)
    service.handle(
        ConsultSetting(case_id, new_id(), SECONDARY, "urn", date(2025, 9, 22))
    )
    service.handle(
        PrepareSubmission(
            case_id,
            new_id(),
            prepared_on=date(2025, 10, 1),
            options=(OptionInput(SECONDARY, "urn", 1_200_000, 0, 0),),
        )
    )
    return case_id


def forbidden(response: Any, action: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["action"] == f"placement:{action}"


def test_a_coordinator_lists_only_their_own_cases_for_a_panel(
    client: TestClient,
    service: PlacementService,
    store: InMemoryEventStore,
    mint: Mint,
) -> None:
    mine, theirs = ready(service, store, "co-1"), ready(service, store, "co-2")
    coordinator = mint("co-1", ["ehc_coordinator"])
    before = len(store.read_all())

    mixed = client.post(
        "/panels",
        json={"panel_on": "2025-10-02", "case_ids": [mine, theirs]},
        headers=coordinator,
    )
    forbidden(mixed, "panels.schedule")
    assert len(store.read_all()) == before

    own = client.post(
        "/panels",
        json={"panel_on": "2025-10-02", "case_ids": [mine]},
        headers=coordinator,
    )
    assert own.status_code == 201, own.text
    panel_id = own.json()["panel_id"]
    written = len(store.read_all())
    assert written > before
    assert store.read_stream(mine)[-1].metadata.actor == "co-1"

    more = client.post(
        f"/panels/{panel_id}/cases", json={"case_ids": [theirs]}, headers=coordinator
    )
    forbidden(more, "panels.schedule")
    assert len(store.read_all()) == written
    # Their manager reaches both, and the panel officer every case.
    by_manager = client.post(f"/panels/{panel_id}/cases", json={"case_ids": [theirs]})
    assert by_manager.status_code == 200, by_manager.text
    decided = client.post(
        f"/panels/{panel_id}/cases/{theirs}/decision",
        json={"outcome": "deferred"},
        headers=mint("panel-1", ["panel_officer"]),
    )
    assert decided.status_code == 200, decided.text
    refused = client.post(
        f"/panels/{panel_id}/cases/{theirs}/decision",
        json={"outcome": "deferred"},
        headers=coordinator,
    )
    forbidden(refused, "panels.decide")


def test_panels_and_the_cohort_show_a_senco_only_their_schools_cases(
    client: TestClient,
    service: PlacementService,
    store: InMemoryEventStore,
    mint: Mint,
) -> None:
    ours = ready(service, store, "co-1")
    elsewhere = ready(service, store, "co-1", school=OTHER_SCHOOL)
    panel = client.post(
        "/panels", json={"panel_on": "2025-10-02", "case_ids": [ours, elsewhere]}
    )
    assert panel.status_code == 201, panel.text
    panel_id = panel.json()["panel_id"]
    identified = client.post("/phase-transfers/2026/identify")
    assert sorted(identified.json()["identified"]) == sorted([ours, elsewhere])
    senco = mint("senco-1", ["senco"], school_urns=[SCHOOL])

    def cases_on(body: dict[str, Any]) -> list[str]:
        return [entry["case_id"] for entry in body["cases"]]

    one = client.get(f"/panels/{panel_id}", headers=senco).json()
    listed = client.get("/panels", headers=senco).json()["panels"]
    cohort = client.get("/phase-transfers/2026", headers=senco).json()
    whole = client.get("/phase-transfers/2026").json()

    assert cases_on(one) == [ours]
    assert [cases_on(p) for p in listed] == [[ours]]
    assert [row["case_id"] for row in cohort["children"]] == [ours]
    assert (cohort["total"], cohort["by_status"]) == (1, {"identified": 1})
    assert whole["total"] == 2
    assert sorted(cases_on(client.get(f"/panels/{panel_id}").json())) == sorted(
        [ours, elsewhere]
    )
    assert client.get(f"/cases/{ours}", headers=senco).status_code == 200
    forbidden(client.get(f"/cases/{elsewhere}", headers=senco), "cases.read")


def test_the_school_a_plan_names_brings_its_senco_in(
    client: TestClient, store: InMemoryEventStore, mint: Mint
) -> None:
    case_id = known_case(store)
    new_school = mint("senco-2", ["senco"], school_urns=[SECONDARY])

    forbidden(client.get(f"/cases/{case_id}", headers=new_school), "cases.read")
    feed(store, plan_amended(case_id, "2025-09-30", setting_urn=SECONDARY))

    assert client.get(f"/cases/{case_id}", headers=new_school).status_code == 200


def test_only_a_manager_or_an_administrator_identifies_a_years_transfers(
    client: TestClient, store: InMemoryEventStore, mint: Mint
) -> None:
    case_id = known_case(store, curriculum_year=5)
    before = len(store.read_all())

    for roles in (["ehc_coordinator"], ["panel_officer"], ["auditor"], ["senco"]):
        refused = client.post(
            "/phase-transfers/2026/identify", headers=mint("someone", roles)
        )
        forbidden(refused, "transfers.identify")
    assert len(store.read_all()) == before

    by_admin = client.post(
        "/phase-transfers/2026/identify", headers=mint("admin-1", ["service_admin"])
    )
    assert by_admin.json()["identified"] == [case_id]
    assert store.read_stream(case_id)[-1].metadata.actor == "admin-1"


def test_the_follower_keeps_each_cases_coordinator_and_school(
    store: InMemoryEventStore,
) -> None:
    case_id = known_case(store)
    assignment = received(
        "send.intake.CoordinatorAssigned.v1",
        {"case_id": case_id, "coordinator_id": "co-old"},
    )
    feed(store, assignment)
    assign(store, case_id, "co-new")
    feed(store, request_received(case_id))  # the request again keeps the coordinator

    scope = stored_case_scope(store)(case_id)

    assert scope.coordinator_id == "co-new"
    assert scope.school_urns == {SCHOOL}


def test_with_verification_off_the_staff_header_names_who_acts(
    store: InMemoryEventStore,
) -> None:
    case_id = known_case(store)
    settings = PlacementSettings(
        database_url="memory://", auth_mode="off", send_env="development"
    )
    app = create_app(settings, store=store, clock=FixedClock())

    with TestClient(app) as client:
        response = client.post(
            f"/cases/{case_id}/transport-eligibility",
            json={"eligible": False, "decided_on": "2025-10-01"},
            headers={"X-Staff-Id": "ehcco-5"},
        )

    assert response.status_code == 200, response.text
    assert response.headers["x-auth-mode"] == "off"
    assert store.read_stream(case_id)[-1].metadata.actor == "ehcco-5"
