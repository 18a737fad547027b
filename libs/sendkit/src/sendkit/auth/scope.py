"""Case scopes kept from intake's events, for a service whose own facts lack them.

Access control needs each case's coordinator and school. Intake and reviews have both in
their read models; plans does not (its events start at the agreed assessment and name
no coordinator). A service like plans wraps the handler of its subscriber to
``send.intake.events`` in ``follow_intake_scope``: each ``RequestReceived`` records the
case's school and each ``CoordinatorAssigned`` its coordinator, as a document of the
collection ``access_scope`` in the service's store, in the transaction that marks the
event processed (so a redelivery changes nothing). ``stored_case_scope(store)`` is then
the scope hook of its ``ServiceAuth``.

A case the service has but intake never told it of (a plan transferred in from another
council) has no stored scope: it is unallocated, which its team's staff may reach and a
SENCO may not.
"""

from __future__ import annotations

from typing import Any

from send_schemas.intake import CoordinatorAssigned, RequestReceived
from sendkit.auth.policy import CaseScope
from sendkit.auth.web import CaseScopeHook
from sendkit.envelope import ReceivedEvent
from sendkit.store.base import EventStore, Transaction
from sendkit.subscriber import Handler

COLLECTION = "access_scope"


def remember_intake_scope(event: ReceivedEvent, tx: Transaction) -> None:
    """Record the school or coordinator an intake event gives its case, if any."""
    if event.type == RequestReceived.EVENT_TYPE:
        urn = event.data.get("school_urn")
        change: dict[str, Any] = {"school_urns": [urn] if isinstance(urn, int) else []}
    elif event.type == CoordinatorAssigned.EVENT_TYPE:
        coordinator = event.data.get("coordinator_id")
        change = {
            "coordinator_id": coordinator if isinstance(coordinator, str) else None
        }
    else:
        return
    document = tx.get_document(COLLECTION, event.subject) or {}
    tx.put_document(COLLECTION, event.subject, {**document, **change})


def follow_intake_scope(handler: Handler) -> Handler:
    """``handler``, after recording each intake event's scope facts in ``tx``."""

    def handle(event: ReceivedEvent, tx: Transaction) -> None:
        remember_intake_scope(event, tx)
        handler(event, tx)

    return handle


def stored_case_scope(store: EventStore) -> CaseScopeHook:
    """The scope hook reading what ``remember_intake_scope`` recorded."""

    def scope(case_id: str) -> CaseScope:
        with store.transaction() as tx:
            document = tx.get_document(COLLECTION, case_id) or {}
        return CaseScope.of(
            case_id,
            coordinator_id=document.get("coordinator_id"),
            school_urns=document.get("school_urns", ()),
        )

    return scope
