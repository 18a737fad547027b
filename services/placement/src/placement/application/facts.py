"""Placement's read model of intake's and plans' facts, kept in its own store.

``FactsFollower`` is the handler of the two ``sendkit.subscriber.IdempotentSubscriber``
instances (consumer ``placement``) on ``send.intake.events`` and ``send.plans.events``.
For each event that changes a case's facts (``placement.domain.facts.OBSERVED_TYPES``)
it folds the event into the case's ``CaseFacts`` and writes them back as a document of
the store, in the subscriber's transaction, the one that marks the event processed: a
redelivery or a replay from offset 0 changes nothing. Other events pass by (they are
still marked processed). An event whose data names another case than its subject is
set aside to the dead-letter topic, as is one that breaks its contract.

For access control the follower also records, in the same transaction, the school of
intake's ``RequestReceived`` and the coordinator of each ``CoordinatorAssigned``
(``sendkit.auth.scope.remember_intake_scope``): the facts name no coordinator, and the
checks of placement's API need one.

Commands read the facts with ``load_facts`` in the transaction they decide in.
"""

from __future__ import annotations

import logging

from placement.domain.facts import OBSERVED_TYPES, CaseFacts, observe
from sendkit.auth.scope import remember_intake_scope
from sendkit.envelope import ReceivedEvent
from sendkit.store.base import Transaction
from sendkit.subscriber import Unprocessable

log = logging.getLogger(__name__)

COLLECTION = "case_facts"
"""The documents collection of the read model: one document per case id."""


def load_facts(tx: Transaction, case_id: str) -> CaseFacts | None:
    """What intake and plans have said about the case, or None if nothing yet."""
    document = tx.get_document(COLLECTION, case_id)
    return None if document is None else CaseFacts.from_document(case_id, document)


def all_facts(tx: Transaction) -> list[CaseFacts]:
    """Every case's facts, in case id order."""
    return [
        CaseFacts.from_document(case_id, document)
        for case_id, document in tx.list_documents(COLLECTION)
    ]


class FactsFollower:
    """Folds each intake or plans event into the case's facts, in the given tx."""

    def __call__(self, event: ReceivedEvent, tx: Transaction) -> None:
        remember_intake_scope(event, tx)
        if event.type not in OBSERVED_TYPES:
            return
        case_id = event.data.get("case_id")
        if case_id != event.subject:
            raise Unprocessable(
                f"event {event.id} names case {case_id} in its data but "
                f"{event.subject} as its subject: the owner publishes them equal"
            )

        facts = load_facts(tx, event.subject) or CaseFacts(event.subject)
        changed = observe(facts, event.type, event.data)
        if changed == facts:
            log.debug(
                "case %s facts unchanged by %s",
                event.subject,
                event.name,
                extra={"case_id": event.subject, "event_id": event.id},
            )
            return

        tx.put_document(COLLECTION, event.subject, changed.to_document())
        log.info(
            "case %s facts updated from %s",
            event.subject,
            event.name,
            extra={
                "case_id": event.subject,
                "event_id": event.id,
                "event_type": event.type,
                "plan_status": None
                if changed.plan_status is None
                else str(changed.plan_status),
            },
        )
