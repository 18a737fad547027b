"""What plans keeps of intake's requests: that a case was received, and how it ended.

Plans' own stream of a case starts at the agreed assessment, but two facts of intake
decide what plans may do with it: whether intake received a request for the case at
all (an agreement for a case intake never told plans of is a bad message, not a new
case), and whether intake has since withdrawn the request or refused to assess it (the
assessment is then over, so no advice, draft or plan may be recorded). The subscriber
records both, in the transaction that marks the intake event processed, as a document
of the collection ``intake_requests`` in plans' store keyed by case id; the command
handlers read it in the transaction they decide in.

A case whose request plans processed before this collection existed has no document:
its later agreement would be dead-lettered as unknown. A store upgraded in place keeps
its processed marks, so such a case is only met if intake's agreement of it comes
after the upgrade; reprocessing intake's topic into a fresh store avoids it.
"""

from __future__ import annotations

from datetime import date

from plans.domain import RequestClosed
from sendkit.store.base import Transaction

COLLECTION = "intake_requests"


def record_received(tx: Transaction, case_id: str) -> None:
    """Intake received a request for ``case_id`` (a repeat changes nothing)."""
    if tx.get_document(COLLECTION, case_id) is None:
        tx.put_document(COLLECTION, case_id, {"received": True})


def record_closed(tx: Transaction, case_id: str, outcome: str, closed_on: date) -> None:
    """Intake withdrew the request for ``case_id`` or refused to assess it."""
    document = dict(tx.get_document(COLLECTION, case_id) or {})
    document["closed"] = {"outcome": outcome, "on": closed_on.isoformat()}
    tx.put_document(COLLECTION, case_id, document)


def is_known(tx: Transaction, case_id: str) -> bool:
    """Whether intake told plans of a request for ``case_id``."""
    return tx.get_document(COLLECTION, case_id) is not None


def closure_of(tx: Transaction, case_id: str) -> RequestClosed | None:
    """How intake ended the request for ``case_id``, if it has."""
    document = tx.get_document(COLLECTION, case_id) or {}
    closed = document.get("closed")
    if not isinstance(closed, dict):
        return None
    return RequestClosed(
        outcome=str(closed["outcome"]), closed_on=date.fromisoformat(closed["on"])
    )
