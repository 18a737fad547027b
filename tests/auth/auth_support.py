"""The staff, the cases and the apps the access-control tests share (intake, plans,
reviews and placement).

Two teams, ``north`` and ``south``. The case every table checks is at school 990001
and assigned to coordinator ``co-own`` (north). Each principal is named by how it
stands to that case: ``coord_own`` has it in their caseload, ``coord_team`` is in its
team, ``coord_far`` in the other; ``senco_school`` is a SENCO of its school and
``senco_far`` of another. ``mgr_far``'s team comes from its token's team claim, the
others' from AUTH_TEAM_MEMBERS.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from devstack.issuer import LocalIssuer
from intake.application.service import IntakeService
from intake.domain import AssignCoordinator, ReceiveRequest
from intake.entrypoints.http import create_app as create_intake_app
from intake.settings import SOURCE as INTAKE_SOURCE
from intake.settings import IntakeSettings
from placement.entrypoints.http import create_app as create_placement_app
from placement.settings import SOURCE as PLACEMENT_SOURCE
from placement.settings import PlacementSettings
from plans.entrypoints.http import create_app as create_plans_app
from plans.settings import SOURCE as PLANS_SOURCE
from plans.settings import PlansSettings
from reviews.domain import FollowCoordinator, StartReviewCycle
from reviews.entrypoints.http import create_app as create_reviews_app
from reviews.settings import SOURCE as REVIEWS_SOURCE
from reviews.settings import ReviewsSettings
from sendkit.envelope import ReceivedEvent
from sendkit.events import Metadata
from sendkit.store import InMemoryEventStore

SCHOOL = 990001
OTHER_SCHOOL = 990002
COORDINATOR = "co-own"
TEAM_MEMBERS = {
    "co-own": "north",
    "co-mate": "north",
    "co-far": "south",
    "mgr-north": "north",
}


@dataclass(frozen=True, slots=True)
class Staff:
    """A member of staff as the issuer describes them."""

    staff_id: str
    roles: tuple[str, ...]
    school_urns: tuple[int, ...] = ()
    team: str | None = None


STAFF: dict[str, Staff] = {
    "coord_own": Staff("co-own", ("ehc_coordinator",)),
    "coord_team": Staff("co-mate", ("ehc_coordinator",)),
    "coord_far": Staff("co-far", ("ehc_coordinator",)),
    "mgr_team": Staff("mgr-north", ("team_manager",)),
    "mgr_far": Staff("mgr-south", ("team_manager",), team="south"),
    "senco_school": Staff("senco-1", ("senco",), school_urns=(SCHOOL,)),
    "senco_far": Staff("senco-2", ("senco",), school_urns=(OTHER_SCHOOL,)),
    "panel": Staff("panel-1", ("panel_officer",)),
    "admin": Staff("admin-1", ("service_admin",)),
    "auditor": Staff("audit-1", ("auditor",)),
}
EVERYONE = frozenset(STAFF)


def headers_of(issuer: LocalIssuer, name: str) -> dict[str, str]:
    staff = STAFF[name]
    return issuer.headers_for(
        staff.staff_id, staff.roles, school_urns=staff.school_urns, team=staff.team
    )


def auth_fields(issuer: LocalIssuer) -> dict[str, Any]:
    """The settings (by field name) of an app trusting ``issuer`` with the two teams."""
    return {
        "auth_mode": "on",
        "auth_issuer": issuer.url,
        "auth_audience": issuer.audience,
        "auth_jwks_url": issuer.jwks_url,
        "auth_team_members": TEAM_MEMBERS,
        "send_env": "test",
    }


def new_case_id() -> str:
    return str(uuid.uuid4())


# --- intake ---------------------------------------------------------------------------


def intake_app(issuer: LocalIssuer, store: InMemoryEventStore) -> Any:
    settings = IntakeSettings(database_url="memory://", **auth_fields(issuer))
    return create_intake_app(settings, store=store)


def intake_case(store: InMemoryEventStore) -> str:
    """A request at SCHOOL, assigned to COORDINATOR, recorded as a manager would."""
    service = IntakeService(store)
    case_id = new_case_id()
    service.handle(
        ReceiveRequest(
            case_id=case_id,
            requester_type="parent",
            child_reference="C-00000001",
            date_of_birth=date(2016, 5, 14),
            school_urn=SCHOOL,
            curriculum_year=3,
            channel="email",
            received_at=datetime(2025, 1, 6, 9, 30, tzinfo=UTC),
            child_name="Alfa Testcase",
        ),
        actor="mgr-north",
    )
    service.handle(AssignCoordinator(case_id, COORDINATOR), actor="mgr-north")
    return case_id


def intake_store() -> InMemoryEventStore:
    return InMemoryEventStore(INTAKE_SOURCE)


# --- plans ----------------------------------------------------------------------------


def intake_event(case_id: str, name: str, data: dict[str, Any]) -> ReceivedEvent:
    """An intake event as plans' subscriber receives it."""
    return ReceivedEvent(
        id=str(uuid.uuid4()),
        type=f"send.intake.{name}.v1",
        source="/send/intake",
        subject=case_id,
        time=datetime(2025, 2, 14, 12, 0, tzinfo=UTC),
        data={"case_id": case_id, **data},
        metadata=Metadata(actor="mgr-north"),
        sequence=1,
        topic="send.intake.events",
        partition=0,
        offset=0,
        key=case_id,
    )


def plans_store() -> InMemoryEventStore:
    return InMemoryEventStore(PLANS_SOURCE)


def plans_app(issuer: LocalIssuer, store: InMemoryEventStore) -> Any:
    settings = PlansSettings(database_url="memory://", **auth_fields(issuer))
    return create_plans_app(settings, store=store)


def plans_case(app: Any) -> str:
    """A case intake told plans of: its school, its coordinator, the agreement."""
    case_id = new_case_id()
    reactions, store = app.state.reactions, app.state.store
    with store.transaction() as tx:
        for name, data in (
            ("RequestReceived", {"school_urn": SCHOOL}),
            ("CoordinatorAssigned", {"coordinator_id": COORDINATOR}),
            ("AssessmentAgreed", {"notified_on": "2025-02-14"}),
        ):
            reactions(intake_event(case_id, name, data), tx)
    return case_id


# --- reviews --------------------------------------------------------------------------


def reviews_store() -> InMemoryEventStore:
    return InMemoryEventStore(REVIEWS_SOURCE)


def reviews_app(issuer: LocalIssuer, store: InMemoryEventStore) -> Any:
    settings = ReviewsSettings(database_url="memory://", **auth_fields(issuer))
    return create_reviews_app(settings, store=store)


def reviews_case(app: Any) -> str:
    """A case whose plan names SCHOOL, with COORDINATOR followed from intake."""
    case_id = new_case_id()
    service = app.state.reviews
    with service.store.transaction() as tx:
        service.apply(StartReviewCycle(case_id, date(2025, 3, 10), SCHOOL), tx, "c-1")
        service.apply(FollowCoordinator(case_id, COORDINATOR), tx, "c-1")
    return case_id


# --- placement ------------------------------------------------------------------------


def placement_store() -> InMemoryEventStore:
    return InMemoryEventStore(PLACEMENT_SOURCE)


def placement_app(issuer: LocalIssuer, store: InMemoryEventStore) -> Any:
    settings = PlacementSettings(database_url="memory://", **auth_fields(issuer))
    return create_placement_app(settings, store=store)


def placement_case(app: Any) -> str:
    """A case intake and plans told placement of: at SCHOOL, on COORDINATOR's list."""
    case_id = new_case_id()
    follower, store = app.state.placement.follower, app.state.store
    request = {
        "requester_type": "parent",
        "channel": "email",
        "received_at": "2025-01-06T09:30:00Z",
        "school_urn": SCHOOL,
        "curriculum_year": 5,
    }
    plan = {
        "issued_on": "2025-05-26",
        "setting_urn": SCHOOL,
        "setting_type": "mainstream_maintained",
        "start_date": "2025-06-02",
    }
    issued = replace(
        intake_event(case_id, "PlanIssued", plan),
        type="send.plans.PlanIssued.v1",
        source="/send/plans",
        topic="send.plans.events",
    )
    with store.transaction() as tx:
        for event in (
            intake_event(case_id, "RequestReceived", request),
            intake_event(
                case_id, "CoordinatorAssigned", {"coordinator_id": COORDINATOR}
            ),
            issued,
        ):
            follower(event, tx)
    return case_id
