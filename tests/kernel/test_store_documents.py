"""Documents: a service's read model rows, committed or rolled back with its events.

Run against every adapter (in-memory, SQLite, PostgreSQL); a subscriber writes them
in the transaction that marks a message processed, so they must vanish with a
rolled-back transaction and survive a reopened store, and two writers of one document
must take turns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from postgres_fixture import database_for
from sendkit.events import NewEvent
from sendkit.store import (
    EventStore,
    InMemoryEventStore,
    PostgresEventStore,
    SQLiteEventStore,
    StoreError,
)

SOURCE = "/send/test"

OPENERS: dict[str, Callable[[Path], EventStore]] = {
    "memory": lambda place: InMemoryEventStore(SOURCE),
    "sqlite": lambda place: SQLiteEventStore(place / "events.db", SOURCE),
    "postgresql": lambda place: PostgresEventStore(database_for(place), SOURCE),
}
PERSISTENT = ("sqlite", "postgresql")


@pytest.fixture(params=sorted(OPENERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    opened = OPENERS[request.param](tmp_path)
    yield opened
    opened.close()


def test_a_document_put_is_read_back_in_and_after_its_transaction(
    store: EventStore,
) -> None:
    with store.transaction() as tx:
        tx.put_document("plans", "case-1", {"status": "issued", "years": [6, 7]})
        assert tx.get_document("plans", "case-1") == {
            "status": "issued",
            "years": [6, 7],
        }

    with store.transaction() as tx:
        assert tx.get_document("plans", "case-1") == {
            "status": "issued",
            "years": [6, 7],
        }
        assert tx.get_document("plans", "case-2") is None
        assert tx.get_document("other", "case-1") is None


def test_putting_again_replaces_and_deleting_removes(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.put_document("plans", "case-1", {"status": "draft"})
    with store.transaction() as tx:
        tx.put_document("plans", "case-1", {"status": "issued"})
        tx.put_document("plans", "case-2", {"status": "draft"})

    with store.transaction() as tx:
        assert tx.get_document("plans", "case-1") == {"status": "issued"}
        tx.delete_document("plans", "case-2")
        tx.delete_document("plans", "never-there")
        assert tx.get_document("plans", "case-2") is None

    with store.transaction() as tx:
        assert tx.list_documents("plans") == [("case-1", {"status": "issued"})]


def test_a_rolled_back_transaction_leaves_no_document_and_no_event(
    store: EventStore,
) -> None:
    with store.transaction() as tx:
        tx.put_document("plans", "case-1", {"status": "draft"})

    def failing_handler() -> None:
        with store.transaction() as tx:
            tx.put_document("plans", "case-1", {"status": "ceased"})
            tx.put_document("plans", "case-9", {"status": "issued"})
            tx.append("case-1", 0, [NewEvent("send.test.Happened.v1", {"n": 1})])
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        failing_handler()

    with store.transaction() as tx:
        assert tx.list_documents("plans") == [("case-1", {"status": "draft"})]
    assert store.read_stream("case-1") == []


def test_listing_is_in_key_order_and_sees_the_transactions_own_changes(
    store: EventStore,
) -> None:
    with store.transaction() as tx:
        for key in ("c", "a", "b"):
            tx.put_document("facts", key, {"key": key})
        tx.put_document("elsewhere", "a", {"key": "other"})

    with store.transaction() as tx:
        tx.delete_document("facts", "b")
        tx.put_document("facts", "d", {"key": "d"})
        listed = tx.list_documents("facts")

    assert [key for key, _ in listed] == ["a", "c", "d"]
    assert listed[0] == ("a", {"key": "a"})


def test_a_document_read_is_a_copy_the_caller_may_change(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.put_document("facts", "k", {"list": [1]})
    with store.transaction() as tx:
        found = tx.get_document("facts", "k")
        assert found is not None
        found["list"].append(2)
    with store.transaction() as tx:
        assert tx.get_document("facts", "k") == {"list": [1]}


@pytest.mark.parametrize(("collection", "key"), [("", "k"), ("facts", "")])
def test_empty_names_are_refused(store: EventStore, collection: str, key: str) -> None:
    with pytest.raises(StoreError, match="non-empty"), store.transaction() as tx:
        tx.put_document(collection, key, {})


def test_a_document_that_is_not_json_is_refused(store: EventStore) -> None:
    with pytest.raises(StoreError, match="JSON"), store.transaction() as tx:
        tx.put_document("facts", "k", {"when": object()})


@pytest.mark.parametrize("adapter", PERSISTENT)
def test_documents_survive_reopening_the_store(adapter: str, tmp_path: Path) -> None:
    first = OPENERS[adapter](tmp_path)
    with first.transaction() as tx:
        tx.put_document("facts", "k", {"year": 6})
    first.close()

    second = OPENERS[adapter](tmp_path)
    try:
        with second.transaction() as tx:
            assert tx.get_document("facts", "k") == {"year": 6}
    finally:
        second.close()


@pytest.mark.parametrize("adapter", PERSISTENT)
def test_two_writers_of_one_document_take_turns(adapter: str, tmp_path: Path) -> None:
    # Each writer reads the count, adds one and writes it back; had they interleaved
    # (both reading 0), one increment would be lost.
    stores = [OPENERS[adapter](tmp_path) for _ in range(2)]
    with stores[0].transaction() as tx:
        tx.put_document("facts", "k", {"count": 0})
    errors: list[BaseException] = []

    def add_one(store: EventStore) -> None:
        try:
            for _ in range(20):
                with store.transaction() as tx:
                    found = tx.get_document("facts", "k") or {"count": 0}
                    tx.put_document("facts", "k", {"count": found["count"] + 1})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=add_one, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with stores[0].transaction() as tx:
            assert tx.get_document("facts", "k") == {"count": 40}
    finally:
        for store in stores:
            store.close()
