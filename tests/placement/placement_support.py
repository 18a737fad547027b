"""Helpers shared by the placement tests: the fixed clock, facts from intake and plans,
and a case made ready for each step of a placement."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from placement.application.facts import FactsFollower
from send_schemas import intake as intake_contract
from send_schemas import plans as plans_contract
from sendkit.envelope import ReceivedEvent
from sendkit.events import Metadata
from sendkit.store import EventStore

NOW = datetime(2025, 10, 6, 12, 0, tzinfo=UTC)
"""The fixed "now" of the placement tests: Monday 6 October 2025 (school year 2025)."""

SCHOOL = 123456
SECONDARY = 134567
COLLEGE_UKPRN = 10012345


class FixedClock:
    """A clock that says what the test tells it to."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def received(event_type: str, data: dict[str, Any], offset: int = 0) -> ReceivedEvent:
    """An event as placement's subscriber receives it from another service's topic."""
    owner = event_type.split(".")[1]
    return ReceivedEvent(
        id=str(uuid.uuid4()),
        type=event_type,
        source=f"/send/{owner}",
        subject=data["case_id"],
        time=NOW,
        data=data,
        metadata=Metadata(actor="ehcco-1"),
        sequence=1,
        topic=f"send.{owner}.events",
        partition=0,
        offset=offset,
        key=data["case_id"],
    )


def feed(store: EventStore, event: ReceivedEvent) -> None:
    """Give ``event`` to the facts follower in a transaction, as a subscriber does."""
    with store.transaction() as tx:
        FactsFollower()(event, tx)


def request_received(
    case_id: str,
    *,
    curriculum_year: int = 6,
    received_at: str = "2025-01-06T09:30:00Z",
    school_urn: int = SCHOOL,
) -> ReceivedEvent:
    return received(
        intake_contract.RequestReceived.EVENT_TYPE,
        {
            "case_id": case_id,
            "requester_type": "parent",
            "channel": "email",
            "received_at": received_at,
            "school_urn": school_urn,
            "curriculum_year": curriculum_year,
        },
    )


def plan_issued(
    case_id: str, issued_on: str = "2025-05-26", setting_urn: int = SCHOOL
) -> ReceivedEvent:
    return received(
        plans_contract.PlanIssued.EVENT_TYPE,
        {
            "case_id": case_id,
            "issued_on": issued_on,
            "setting_urn": setting_urn,
            "setting_type": "mainstream_maintained",
            "start_date": issued_on,
        },
    )


def plan_amended(
    case_id: str, issued_on: str, setting_urn: int | None = SECONDARY
) -> ReceivedEvent:
    data: dict[str, Any] = {"case_id": case_id, "issued_on": issued_on}
    if setting_urn is None:
        data["changes"] = ["F"]
    else:
        data |= {
            "changes": ["I"],
            "setting_urn": setting_urn,
            "setting_type": "mainstream_academy",
        }
    return received(plans_contract.PlanAmended.EVENT_TYPE, data)


def plan_ceased(case_id: str, ceased_on: str = "2025-09-30") -> ReceivedEvent:
    return received(
        plans_contract.PlanCeased.EVENT_TYPE,
        {"case_id": case_id, "ceased_on": ceased_on, "reason": "needs_met"},
    )


def known_case(
    store: EventStore,
    *,
    curriculum_year: int = 6,
    received_at: str = "2025-01-06T09:30:00Z",
    plan: bool = True,
    setting_urn: int = SCHOOL,
) -> str:
    """A new case id intake has sent (and, with ``plan``, plans has issued a plan for).

    The year is the one at the request; with the default request in January 2025,
    Year 6 then is Year 7 in school year 2025.
    """
    case_id = str(uuid.uuid4())
    feed(
        store,
        request_received(
            case_id,
            curriculum_year=curriculum_year,
            received_at=received_at,
            school_urn=setting_urn,
        ),
    )
    if plan:
        feed(store, plan_issued(case_id, setting_urn=setting_urn))
    return case_id


def days(text: str) -> date:
    return date.fromisoformat(text)
