"""The idempotent subscriber on PostgreSQL: processed-id marks commit with the
handler's appends, so redeliveries and replays change nothing, and two replicas
handed the same message handle it once.

The source service and the subscribing one each have their own schema in the test's
database, as two services sharing a PostgreSQL server would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg import sql

from sendkit.envelope import ReceivedEvent, to_kafka
from sendkit.events import Metadata, NewEvent, RecordedEvent
from sendkit.relay import OutboxRelay
from sendkit.store import PostgresEventStore, Transaction
from sendkit.subscriber import IdempotentSubscriber, PollOutcome

from .kafka_support import READ_DEADLINE_S, produce

CONSUMER = "tester"


def in_schema(dsn: str, schema: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
        )
    return f"{dsn}?options=-csearch_path%3D{schema}"


@dataclass
class Deriver:
    """Appends one event to ``derived-<case>`` for each event it handles."""

    handled: list[str] = field(default_factory=list)

    def __call__(self, event: ReceivedEvent, tx: Transaction) -> None:
        stream = f"derived-{event.subject}"
        tx.append(
            stream,
            len(tx.read_stream(stream)),
            [
                NewEvent(
                    "send.tester.SourceNoted.v1",
                    {"source_id": event.id},
                    Metadata("system", event.metadata.correlation_id, event.id),
                )
            ],
        )
        self.handled.append(event.id)


@dataclass
class Stores:
    intake: PostgresEventStore
    tester: PostgresEventStore


@pytest.fixture
def stores(postgres_database: str) -> Iterator[Stores]:
    made = Stores(
        PostgresEventStore(in_schema(postgres_database, "intake"), "/send/intake"),
        PostgresEventStore(in_schema(postgres_database, "tester"), "/send/tester"),
    )
    yield made
    made.intake.close()
    made.tester.close()


def poll_until(subscriber: IdempotentSubscriber, records: int) -> PollOutcome:
    total = PollOutcome()
    deadline = time.monotonic() + READ_DEADLINE_S
    while total.records < records:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {total.records} of {records} records came")
        got = subscriber.poll_once()
        total = PollOutcome(
            total.handled + got.handled,
            total.duplicates + got.duplicates,
            total.dead_lettered + got.dead_lettered,
            total.rewound or got.rewound,
        )
    return total


def test_relayed_events_are_handled_once_through_redelivery_and_replay(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    stores: Stores,
) -> None:
    topic = unique_topic(partitions=3)
    appended: list[RecordedEvent] = []
    for case in ("case-1", "case-2"):
        appended += stores.intake.append(
            case, 0, [NewEvent("send.intake.Noted.v1", {"n": n}) for n in range(3)]
        )
    with OutboxRelay(stores.intake, topic, kafka_bootstrap) as relay:
        relay.run_once()
    # A redelivery: the first event again, byte for byte.
    again = to_kafka(appended[0])
    produce(kafka_bootstrap, topic, [(again.key, again.value, again.headers)])
    subscribers: list[IdempotentSubscriber] = []

    def subscriber(handler: Deriver) -> IdempotentSubscriber:
        made = IdempotentSubscriber(
            CONSUMER,
            topic,
            kafka_bootstrap,
            unique_name("group"),
            stores.tester,
            handler,
            registry=CollectorRegistry(),
            poll_timeout_ms=200,
        )
        subscribers.append(made)
        return made

    try:
        first = Deriver()
        outcome = poll_until(subscriber(first), len(appended) + 1)
        derived_before = stores.tester.read_all()

        # A new group replays the topic from offset 0.
        replayed = Deriver()
        replay = poll_until(subscriber(replayed), len(appended) + 1)
    finally:
        for made in subscribers:
            made.close()

    assert outcome == PollOutcome(handled=len(appended), duplicates=1)
    assert sorted(first.handled) == sorted(event.id for event in appended)
    assert replay == PollOutcome(duplicates=len(appended) + 1)
    assert replayed.handled == []
    assert stores.tester.read_all() == derived_before
    for case in ("case-1", "case-2"):
        derived = stores.tester.read_stream(f"derived-{case}")
        sources = [event.id for event in appended if event.stream_id == case]
        assert [e.data["source_id"] for e in derived] == sources  # in order per case
    with stores.tester.transaction() as tx:
        assert all(tx.is_processed(CONSUMER, event.id) for event in appended)
        assert not tx.is_processed("someone-else", appended[0].id)
    assert stores.intake.get_checkpoint(f"relay:{topic}") == appended[-1].position
    assert stores.tester.get_checkpoint(f"relay:{topic}") == 0  # schemas are apart


def test_two_replicas_given_the_same_message_handle_it_once(
    postgres_database: str,
) -> None:
    # During a rebalance two replicas can hold the same record at once. Each runs the
    # subscriber's transaction: look, handle, mark. The second must wait and see the
    # first one's mark, not handle the message again.
    dsn = in_schema(postgres_database, "tester")
    first_store = PostgresEventStore(dsn, "/send/tester")
    second_store = PostgresEventStore(dsn, "/send/tester")
    first_looked = threading.Event()
    let_first_finish = threading.Event()
    outcomes: dict[str, str] = {}
    errors: list[BaseException] = []

    def handle(name: str, store: PostgresEventStore, pause: bool) -> None:
        try:
            with store.transaction() as tx:
                if tx.is_processed(CONSUMER, "msg-1"):
                    outcomes[name] = "duplicate"
                    return
                if pause:
                    first_looked.set()
                    let_first_finish.wait(READ_DEADLINE_S)
                version = len(tx.read_stream("derived-case-1"))
                tx.append(
                    "derived-case-1",
                    version,
                    [NewEvent("send.tester.SourceNoted.v1", {"by": name})],
                )
                tx.mark_processed(CONSUMER, "msg-1")
                outcomes[name] = "handled"
        except BaseException as error:  # reported by the main thread below
            errors.append(error)

    first = threading.Thread(target=handle, args=("first", first_store, True))
    second = threading.Thread(target=handle, args=("second", second_store, False))
    try:
        first.start()
        assert first_looked.wait(READ_DEADLINE_S)
        second.start()
        deadline = time.monotonic() + READ_DEADLINE_S
        while advisory_waiters(postgres_database) == 0:
            if time.monotonic() > deadline:
                raise AssertionError("the second replica never waited for the first")
            time.sleep(0.01)
        let_first_finish.set()
        first.join()
        second.join()
        derived = first_store.read_stream("derived-case-1")
    finally:
        let_first_finish.set()
        first_store.close()
        second_store.close()

    assert errors == []
    assert outcomes == {"first": "handled", "second": "duplicate"}
    assert [e.data["by"] for e in derived] == ["first"]


def advisory_waiters(dsn: str) -> int:
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return int(row[0]) if row else 0
