"""Case scopes kept from intake's events (``sendkit.auth.scope``), for plans."""

from __future__ import annotations

from auth_support import COORDINATOR, SCHOOL, intake_event, new_case_id

from sendkit.auth.scope import follow_intake_scope, stored_case_scope
from sendkit.envelope import ReceivedEvent
from sendkit.store import InMemoryEventStore
from sendkit.store.base import Transaction


def test_a_case_gets_its_school_and_coordinator_from_intake_and_keeps_the_latest() -> (
    None
):
    store = InMemoryEventStore("/send/test")
    seen: list[str] = []

    def handler(event: ReceivedEvent, tx: Transaction) -> None:
        seen.append(event.type)

    handle = follow_intake_scope(handler)
    case_id = new_case_id()
    events = [
        intake_event(case_id, "RequestReceived", {"school_urn": SCHOOL}),
        intake_event(case_id, "CoordinatorAssigned", {"coordinator_id": "co-old"}),
        intake_event(case_id, "CoordinatorAssigned", {"coordinator_id": COORDINATOR}),
        intake_event(case_id, "AssessmentAgreed", {"notified_on": "2025-02-14"}),
    ]
    with store.transaction() as tx:
        for event in [*events, events[0]]:  # the last one a redelivery
            handle(event, tx)

    scope = stored_case_scope(store)(case_id)
    assert scope.coordinator_id == COORDINATOR
    assert scope.school_urns == {SCHOOL}
    assert len(seen) == 5


def test_a_case_intake_never_mentioned_is_unallocated() -> None:
    scope = stored_case_scope(InMemoryEventStore("/send/test"))(new_case_id())

    assert scope.coordinator_id is None
    assert scope.school_urns == frozenset()
