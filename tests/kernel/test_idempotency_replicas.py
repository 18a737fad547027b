"""One keyed command sent to two replicas at once is answered once, on every store
two replicas can share (one SQLite file, one PostgreSQL database).

Each replica reads the key's answer, decides, appends and records its answer in one
transaction, as ``sendkit.idempotency`` does. The second must wait for the first and
then find its answer; on PostgreSQL, where only appends are serialised, it found
none, decided again and failed on the first's record (a 500 for the client).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from postgres_fixture import database_for
from sendkit.events import Metadata, NewEvent
from sendkit.store import (
    EventStore,
    IdempotencyRecord,
    PostgresEventStore,
    SQLiteEventStore,
)

SOURCE = "/send/test"
ROUNDS = 5

OPENERS: dict[str, Callable[[Path], EventStore]] = {
    "sqlite": lambda place: SQLiteEventStore(place / "events.db", SOURCE),
    "postgresql": lambda place: PostgresEventStore(database_for(place), SOURCE),
}


@pytest.fixture(params=sorted(OPENERS))
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[EventStore, EventStore]]:
    """Two store objects, each with its own connections, on one file or database."""
    opened = [OPENERS[request.param](tmp_path) for _ in range(2)]
    yield opened[0], opened[1]
    for store in opened:
        store.close()


def opened_a_case(case_id: str) -> NewEvent:
    return NewEvent(
        type="send.test.CaseOpened.v1",
        data={"case_id": case_id},
        metadata=Metadata(actor="staff-1", correlation_id="corr-1", causation_id=None),
    )


def at_once(
    replicas: tuple[EventStore, EventStore], key: str
) -> tuple[dict[int, dict[str, object]], list[BaseException]]:
    """The keyed command on both replicas, released together: each one's answer."""
    start = threading.Barrier(2)
    answers: dict[int, dict[str, object]] = {}
    failures: list[BaseException] = []

    def command(replica: int, store: EventStore) -> None:
        # What an idempotent endpoint does: look, decide, append, record.
        start.wait()
        try:
            with store.transaction() as tx:
                found = tx.get_idempotency("http", key)
                if found is not None:
                    answers[replica] = found.body
                    return
                case_id = f"case-{key}-{replica}"
                tx.append(case_id, 0, [opened_a_case(case_id)])
                body: dict[str, object] = {"case_id": case_id}
                tx.put_idempotency(
                    "http", IdempotencyRecord(key, "same-request", 201, body)
                )
                answers[replica] = body
        except BaseException as error:
            failures.append(error)

    threads = [
        threading.Thread(target=command, args=(replica, store))
        for replica, store in enumerate(replicas)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, failures


def test_one_keyed_command_on_two_replicas_at_once_is_decided_once(
    replicas: tuple[EventStore, EventStore],
) -> None:
    for number in range(ROUNDS):
        key = f"open-case-{number}"

        answers, failures = at_once(replicas, key)

        assert failures == []
        assert answers[0] == answers[1]
        opened = [e for e in replicas[0].read_all() if key in e.stream_id]
        assert [e.stream_id for e in opened] == [answers[0]["case_id"]]
