"""The read model in the service's store, and the subscribers that keep it current.

Case documents live in the store's ``cases`` document collection (SQLite by default,
PostgreSQL when the API runs as several replicas; ``DEADLINES_DATABASE_URL``). Two
``sendkit.subscriber.IdempotentSubscriber`` loops feed it, with consumer name
``deadlines-readmodel``: one follows ``send.deadlines.events``, the other
``send.intake.events`` (for the school and the coordinator). Each event's id
is marked processed in the same transaction as the document it changes, so a
redelivery or a replay changes nothing; an event that cannot be folded goes to
``deadlines.<topic>.dlq``.

Why a consumer name of its own but the service's dead-letter topic: the worker also
reads ``send.intake.events`` as ``deadlines``, so a record neither can use is
dead-lettered by both; the ``dlq_consumer`` header of each (``deadlines`` or
``deadlines-readmodel``), the subscriber's metrics and its processed ids then say
which did it. A topic of its own (``deadlines-readmodel.<topic>.dlq``) would need the
name registered as a consumer in ``send_schemas.topics``, and the registry makes a
Kafka principal of every consumer, whose credentials and ACLs the API's pod would then
have to run with (it runs as ``deadlines`` in ``deploy/``); the topics the deadlines
principal may already write are kept instead.

The consumer groups are named after a random id the read model keeps in its own
store (``meta/readmodel``), so a new, empty database is always built from offset 0,
and a restart with the same database resumes where its groups stopped. Replicas of the
API sharing one PostgreSQL database read the same id, so they join the same two groups
and share the partitions; a message handed to two of them during a rebalance is folded
once (the processed mark is taken under a lock), and a case document changed from both
topics at once is read and written under its document lock, so neither change is lost.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from deadlines.application.readmodel import (
    CASES,
    apply_clock_event,
    apply_intake_event,
)
from send_schemas.topics import DEADLINES, INTAKE, dead_letter_topic
from sendkit.background import BackgroundLoop, connect_with_retry
from sendkit.envelope import ReceivedEvent
from sendkit.events import utcnow
from sendkit.store import EventStore, Transaction
from sendkit.subscriber import IdempotentSubscriber

CONSUMER = "deadlines-readmodel"
"""The read model's consumer name: its processed ids and its dead letters' header."""
DEAD_LETTER_OWNER = "deadlines"
"""Whose dead-letter topics the read model writes to (the registry's consumer)."""
META = "meta"
INSTANCE_KEY = "readmodel"

Handler = Callable[[ReceivedEvent, Transaction], None]


def fold_clock_event(event: ReceivedEvent, tx: Transaction) -> None:
    """Subscriber handler: one clock event into its case's document."""
    tx.put_document(
        CASES,
        event.subject,
        apply_clock_event(tx.get_document(CASES, event.subject), event),
    )


def fold_intake_event(event: ReceivedEvent, tx: Transaction) -> None:
    """Subscriber handler: the school and coordinator of a case, from intake."""
    doc = apply_intake_event(tx.get_document(CASES, event.subject), event)
    if doc is not None:
        tx.put_document(CASES, event.subject, doc)


def read_cases(store: EventStore) -> list[dict[str, Any]]:
    with store.transaction() as tx:
        return [doc for _, doc in tx.list_documents(CASES)]


def read_case(store: EventStore, case_id: str) -> dict[str, Any] | None:
    with store.transaction() as tx:
        return tx.get_document(CASES, case_id)


def instance_id(store: EventStore) -> str:
    """The read model's own id, made on first use and kept in the store."""
    with store.transaction() as tx:
        found = tx.get_document(META, INSTANCE_KEY)
        if found is None:
            found = {
                "instance": uuid.uuid4().hex[:16],
                "created_at": utcnow().isoformat(),
            }
            tx.put_document(META, INSTANCE_KEY, found)
        return str(found["instance"])


def projector_loops(
    store: EventStore,
    *,
    bootstrap: str,
    app_id: str,
    clocks_topic: str = DEADLINES.name,
    intake_topic: str = INTAKE.name,
    registry: CollectorRegistry | None = None,
) -> list[BackgroundLoop]:
    """One subscriber loop per followed topic, not yet started."""
    instance = instance_id(store)
    followed: tuple[tuple[str, Handler], ...] = (
        (clocks_topic, fold_clock_event),
        (intake_topic, fold_intake_event),
    )
    loops = []
    for topic, handler in followed:
        group = f"{app_id}.readmodel.{instance}.{topic}"

        def run(
            stop: threading.Event,
            topic: str = topic,
            handler: Handler = handler,
            group: str = group,
        ) -> None:
            subscriber = connect_with_retry(
                lambda: IdempotentSubscriber(
                    CONSUMER,
                    topic,
                    bootstrap,
                    group,
                    store,
                    handler,
                    dead_letter_to=dead_letter_topic(DEAD_LETTER_OWNER, topic),
                    # Not shorter than the default: kafka-python 3.0.12 can end a
                    # group join with no partitions when a poll's timeout expires
                    # between JoinGroup and SyncGroup (seen with 10-200 ms polls).
                    registry=registry,
                ),
                stop,
                what=f"read model subscriber to {topic}",
            )
            if subscriber is not None:
                subscriber.run_forever(stop)

        loops.append(BackgroundLoop(f"readmodel-{topic}", run))
    return loops
