"""The event store's behaviour, written once and run against every adapter.

An adapter joins the suite with one line in ``ADAPTERS``: a name, a function that opens
the store in a per-test place (a directory; a database adapter would derive a database
or schema name from it), and whether the data survives closing and reopening, which
the persistence tests then check.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postgres_fixture import database_for
from sendkit.events import Metadata, NewEvent
from sendkit.store import (
    EventStore,
    IdempotencyKeyReused,
    IdempotencyRecord,
    InMemoryEventStore,
    NestedTransaction,
    PostgresEventStore,
    SQLiteEventStore,
    StoreError,
    StoreUnavailable,
    VersionConflict,
    open_store,
)

SOURCE = "/send/test"


@dataclass(frozen=True)
class Adapter:
    name: str
    open: Callable[[Path], EventStore]
    persistent: bool


ADAPTERS = [
    Adapter("memory", lambda place: InMemoryEventStore(SOURCE), persistent=False),
    Adapter(
        "sqlite", lambda place: SQLiteEventStore(place / "events.db", SOURCE), True
    ),
    Adapter("postgresql", lambda p: PostgresEventStore(database_for(p), SOURCE), True),
]
PERSISTENT = [adapter for adapter in ADAPTERS if adapter.persistent]


def _opener(adapter: Adapter, place: Path) -> Iterator[Callable[[], EventStore]]:
    opened: list[EventStore] = []

    def open_it() -> EventStore:
        store = adapter.open(place)
        opened.append(store)
        return store

    yield open_it
    for store in opened:
        store.close()


@pytest.fixture(params=ADAPTERS, ids=lambda adapter: adapter.name)
def opener(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], EventStore]]:
    """Opens the test's store; every store opened is closed at the end."""
    yield from _opener(request.param, tmp_path)


@pytest.fixture(params=PERSISTENT, ids=lambda adapter: adapter.name)
def reopener(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], EventStore]]:
    """Like ``opener``, for the adapters whose data outlives a close."""
    yield from _opener(request.param, tmp_path)


@pytest.fixture
def store(opener: Callable[[], EventStore]) -> EventStore:
    return opener()


def requested(name: str, **data: object) -> NewEvent:
    return NewEvent(
        type=f"send.test.{name}.v1",
        data=dict(data),
        metadata=Metadata(actor="staff-17", correlation_id="corr-1", causation_id=None),
    )


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


# --- append and read ------------------------------------------------------------------


def test_append_records_ids_versions_positions_and_envelope(store: EventStore) -> None:
    before = datetime.now(UTC)

    recorded = store.append(
        "case-1", 0, [requested("RequestReceived", urn=100001), requested("Noted")]
    )

    assert [e.version for e in recorded] == [1, 2]
    assert [e.position for e in recorded] == [1, 2]
    assert len({e.id for e in recorded}) == 2
    first = recorded[0]
    assert first.stream_id == "case-1"
    assert first.subject == "case-1"
    assert first.type == "send.test.RequestReceived.v1"
    assert first.source == SOURCE
    assert first.data == {"urn": 100001}
    assert first.metadata == Metadata("staff-17", "corr-1", None)
    assert first.time.tzinfo is not None
    assert before <= first.time <= datetime.now(UTC)


def test_read_stream_returns_what_was_appended_in_order(store: EventStore) -> None:
    appended = store.append("case-1", 0, [requested("A", n=1), requested("B", n=2)])
    store.append("case-2", 0, [requested("Other")])
    appended += store.append("case-1", 2, [requested("C", n=3)])

    read = store.read_stream("case-1")

    assert read == appended
    assert [e.data["n"] for e in read] == [1, 2, 3]
    assert store.read_stream("no-such-case") == []


def test_metadata_and_time_survive_the_round_trip(store: EventStore) -> None:
    event = NewEvent(
        type="send.test.Decided.v2",
        data={"nested": {"list": [1, "two", None, True]}, "text": "Zoë ✓"},
        metadata=Metadata(actor="system", correlation_id="c-9", causation_id="ev-3"),
    )

    (recorded,) = store.append("case-1", 0, [event])
    (read,) = store.read_stream("case-1")

    assert read.metadata == Metadata("system", "c-9", "ev-3")
    assert read.data == {"nested": {"list": [1, "two", None, True]}, "text": "Zoë ✓"}
    assert read.time == recorded.time
    assert read.time.utcoffset() is not None


def test_private_data_is_kept_beside_the_public_data(store: EventStore) -> None:
    event = NewEvent(
        type="send.test.RequestReceived.v1",
        data={"year_group": 4},
        private={"child_name": "Test Child", "notes": "synthetic"},
    )

    store.append("case-1", 0, [event, requested("Noted")])

    first, second = store.read_stream("case-1")
    assert first.private == {"child_name": "Test Child", "notes": "synthetic"}
    assert first.data == {"year_group": 4}
    assert second.private is None
    assert store.read_all()[0].private == first.private


def test_reads_return_copies_the_caller_may_change(store: EventStore) -> None:
    store.append("case-1", 0, [requested("A", items=[1])])

    store.read_stream("case-1")[0].data["items"].append(2)

    assert store.read_stream("case-1")[0].data == {"items": [1]}


@pytest.mark.parametrize(
    "value",
    [datetime.now(UTC), float("nan"), float("inf"), {1, 2}],
    ids=["datetime", "nan", "infinity", "set"],
)
def test_data_that_is_not_json_is_refused(store: EventStore, value: object) -> None:
    bad = NewEvent(type="send.test.A.v1", data={"value": value})

    with pytest.raises(StoreError, match="JSON"):
        store.append("case-1", 0, [bad])

    assert store.last_position() == 0


def test_bad_append_arguments_are_refused(store: EventStore) -> None:
    with pytest.raises(StoreError, match="stream id is empty"):
        store.append("", 0, [requested("A")])
    with pytest.raises(StoreError, match="negative"):
        store.append("case-1", -1, [requested("A")])


# --- optimistic concurrency -----------------------------------------------------------


@pytest.mark.parametrize("stale", [0, 1, 3])
def test_a_stale_expected_version_conflicts_and_writes_nothing(
    store: EventStore, stale: int
) -> None:
    store.append("case-1", 0, [requested("A"), requested("B")])

    with pytest.raises(VersionConflict) as raised:
        store.append("case-1", stale, [requested("C")])

    assert raised.value.stream_id == "case-1"
    assert raised.value.expected == stale
    assert raised.value.actual == 2
    assert "reload" in str(raised.value)
    assert len(store.read_stream("case-1")) == 2
    assert store.last_position() == 2


def test_a_new_stream_must_be_expected_at_version_zero(store: EventStore) -> None:
    with pytest.raises(VersionConflict):
        store.append("case-1", 1, [requested("A")])

    assert store.read_stream("case-1") == []


def test_an_empty_append_writes_nothing_but_still_checks_the_version(
    store: EventStore,
) -> None:
    store.append("case-1", 0, [requested("A")])

    assert store.append("case-1", 1, []) == []
    assert store.append("case-new", 0, []) == []
    with pytest.raises(VersionConflict):
        store.append("case-1", 0, [])

    assert store.last_position() == 1
    assert store.read_stream("case-new") == []


# --- transactions ---------------------------------------------------------------------


def test_a_transaction_sees_its_own_writes(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.append("case-1", 0, [requested("A")])
        tx.append("case-1", 1, [requested("B")])
        tx.mark_processed("intake", "msg-1")
        tx.set_checkpoint("relay:t", 7)

        assert [e.version for e in tx.read_stream("case-1")] == [1, 2]
        assert tx.is_processed("intake", "msg-1")
        assert tx.get_checkpoint("relay:t") == 7

    assert [e.position for e in store.read_all()] == [1, 2]


def test_a_failing_transaction_writes_nothing_at_all(store: EventStore) -> None:
    store.append("case-1", 0, [requested("A")])
    with store.transaction() as tx:
        tx.set_checkpoint("relay:t", 1)
        tx.mark_processed("plans", "msg-0")

    def write_everything_then_fail() -> None:
        with store.transaction() as tx:
            tx.append("case-1", 1, [requested("B")])
            tx.append("case-2", 0, [requested("C")])
            tx.mark_processed("plans", "msg-1")
            tx.set_checkpoint("relay:t", 3)
            tx.put_idempotency("intake", IdempotencyRecord("key-1", "fp", 201, {}))
            raise Boom

    with pytest.raises(Boom):
        write_everything_then_fail()

    assert store.last_position() == 1
    assert store.read_stream("case-2") == []
    assert len(store.read_stream("case-1")) == 1
    with store.transaction() as tx:
        assert not tx.is_processed("plans", "msg-1")
        assert tx.is_processed("plans", "msg-0")
        assert tx.get_checkpoint("relay:t") == 1
        assert tx.get_idempotency("intake", "key-1") is None


def test_a_conflict_inside_a_transaction_undoes_its_earlier_appends(
    store: EventStore,
) -> None:
    store.append("case-1", 0, [requested("A")])

    def append_then_conflict() -> None:
        with store.transaction() as tx:
            tx.append("case-2", 0, [requested("B")])
            tx.mark_processed("plans", "msg-1")
            tx.append("case-1", 0, [requested("C")])

    with pytest.raises(VersionConflict):
        append_then_conflict()

    assert store.read_stream("case-2") == []
    assert store.last_position() == 1
    with store.transaction() as tx:
        assert not tx.is_processed("plans", "msg-1")


def test_positions_continue_after_a_rolled_back_transaction(store: EventStore) -> None:
    store.append("case-1", 0, [requested("A")])

    def append_then_fail() -> None:
        with store.transaction() as tx:
            tx.append("case-1", 1, [requested("B"), requested("C")])
            raise Boom

    with pytest.raises(Boom):
        append_then_fail()

    (next_event,) = store.append("case-1", 1, [requested("D")])

    assert next_event.position > 1
    assert [e.position for e in store.read_all()] == [1, next_event.position]


def test_a_nested_transaction_on_one_thread_is_refused(store: EventStore) -> None:
    with store.transaction() as tx:
        tx.append("case-1", 0, [requested("A")])
        with pytest.raises(NestedTransaction), store.transaction():
            pass

    assert store.last_position() == 1


# --- the global sequence --------------------------------------------------------------


def test_read_all_after_a_position_and_with_a_limit(store: EventStore) -> None:
    for case in range(1, 6):
        store.append(f"case-{case}", 0, [requested("A"), requested("B")])

    everything = store.read_all()
    after_three = store.read_all(after=3)
    page = store.read_all(after=3, limit=4)

    assert [e.position for e in everything] == list(range(1, 11))
    assert [e.position for e in after_three] == list(range(4, 11))
    assert page == after_three[:4]
    assert store.read_all(after=10) == []
    assert store.read_all(after=0, limit=0) == []
    assert store.last_position() == 10
    assert [e.position for e in store.iter_all(after=2, batch=3)] == list(range(3, 11))


def test_positions_strictly_increase_across_streams(store: EventStore) -> None:
    store.append("case-a", 0, [requested("A")])
    store.append("case-b", 0, [requested("A"), requested("B")])
    store.append("case-a", 1, [requested("B")])

    positions = [e.position for e in store.read_all()]
    streams = [(e.stream_id, e.version) for e in store.read_all()]

    assert positions == sorted(set(positions))
    assert streams == [("case-a", 1), ("case-b", 1), ("case-b", 2), ("case-a", 2)]


def test_an_empty_store_is_at_position_zero(store: EventStore) -> None:
    assert store.last_position() == 0
    assert store.read_all() == []
    assert list(store.iter_all()) == []


def test_concurrent_appenders_lose_and_duplicate_nothing(store: EventStore) -> None:
    threads_count, appends_each, cases = 6, 25, 4
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def append_many(worker: int) -> None:
        # Every worker writes to every case, so versions are fought over and each
        # conflict is retried from a fresh read, as a command handler does.
        try:
            start.wait()
            for i in range(appends_each):
                case = f"case-{(worker + i) % cases}"
                while True:
                    version = len(store.read_stream(case))
                    event = requested("Appended", worker=worker, i=i)
                    try:
                        store.append(case, version, [event])
                        break
                    except VersionConflict:
                        continue
        except BaseException as error:  # reported by the main thread below
            errors.append(error)

    workers = [
        threading.Thread(target=append_many, args=(n,)) for n in range(threads_count)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    events = store.read_all()
    positions = [e.position for e in events]
    assert len(events) == threads_count * appends_each
    assert len(set(positions)) == len(positions)
    assert positions == sorted(positions)
    written = {(e.data["worker"], e.data["i"]) for e in events}
    assert len(written) == threads_count * appends_each
    for case in range(cases):
        versions = [e.version for e in store.read_stream(f"case-{case}")]
        assert versions == list(range(1, len(versions) + 1))


def test_a_tailing_reader_sees_every_event_once_while_writers_append(
    store: EventStore,
) -> None:
    # The relay's contract: reading after the last position seen never skips an
    # event that commits later with a lower position.
    writers, appends_each = 4, 40
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(appends_each):
                store.append(f"case-{worker}-{i}", 0, [requested("A"), requested("B")])
        except BaseException as error:  # reported by the main thread below
            errors.append(error)

    def tail() -> None:
        after = 0
        while True:
            finished = done.is_set()
            page = store.read_all(after=after)
            seen.extend(e.position for e in page)
            if page:
                after = page[-1].position
            elif finished:
                return

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()

    assert errors == []
    assert seen == [e.position for e in store.read_all()]
    assert len(seen) == writers * appends_each * 2


# --- subscriber and relay bookkeeping -------------------------------------------------


def test_processed_marks_are_per_consumer(store: EventStore) -> None:
    with store.transaction() as tx:
        assert not tx.is_processed("deadlines", "msg-1")
        tx.mark_processed("deadlines", "msg-1")
        tx.mark_processed("deadlines", "msg-1")  # a repeat is harmless

    with store.transaction() as tx:
        assert tx.is_processed("deadlines", "msg-1")
        assert not tx.is_processed("notify", "msg-1")
        assert not tx.is_processed("deadlines", "msg-2")


def test_checkpoints_start_at_zero_and_move_both_ways(store: EventStore) -> None:
    assert store.get_checkpoint("relay:send.test") == 0

    with store.transaction() as tx:
        tx.set_checkpoint("relay:send.test", 40)
    with store.transaction() as tx:
        tx.set_checkpoint("relay:send.test", 41)
        tx.set_checkpoint("relay:other", 2)

    assert store.get_checkpoint("relay:send.test") == 41
    assert store.get_checkpoint("relay:other") == 2

    # An operator may rewind a reader to replay; the store does not forbid it.
    with store.transaction() as tx:
        tx.set_checkpoint("relay:send.test", 0)
    assert store.get_checkpoint("relay:send.test") == 0


def test_idempotency_records_keep_the_first_answer(store: EventStore) -> None:
    first = IdempotencyRecord("key-1", "sha256:abc", 201, {"case_id": "case-1"})

    with store.transaction() as tx:
        assert tx.get_idempotency("intake", "key-1") is None
        tx.put_idempotency("intake", first)

    with store.transaction() as tx:
        assert tx.get_idempotency("intake", "key-1") == first
        assert tx.get_idempotency("plans", "key-1") is None
        with pytest.raises(IdempotencyKeyReused, match="key-1"):
            tx.put_idempotency("intake", IdempotencyRecord("key-1", "x", 500, {}))
        tx.put_idempotency("plans", IdempotencyRecord("key-1", "y", 200, {"ok": True}))

    with store.transaction() as tx:
        assert tx.get_idempotency("intake", "key-1") == first
        assert tx.get_idempotency("plans", "key-1") == IdempotencyRecord(
            "key-1", "y", 200, {"ok": True}
        )


# --- persistence ----------------------------------------------------------------------


def test_reopening_keeps_everything(reopener: Callable[[], EventStore]) -> None:
    store = reopener()
    appended = store.append(
        "case-1",
        0,
        [
            NewEvent(
                type="send.test.RequestReceived.v1",
                data={"urn": 1},
                private={"child_name": "Test Child"},
                metadata=Metadata("staff-1", "corr-2", "cause-3"),
            )
        ],
    )
    with store.transaction() as tx:
        tx.mark_processed("notify", "msg-1")
        tx.set_checkpoint("relay:t", 1)
        tx.put_idempotency("intake", IdempotencyRecord("k", "fp", 201, {"a": 1}))
    store.close()

    reopened = reopener()

    assert reopened.read_all() == appended
    assert reopened.read_stream("case-1") == appended
    assert reopened.last_position() == 1
    with reopened.transaction() as tx:
        assert tx.is_processed("notify", "msg-1")
        assert tx.get_checkpoint("relay:t") == 1
        assert tx.get_idempotency("intake", "k") == IdempotencyRecord(
            "k", "fp", 201, {"a": 1}
        )
    (next_event,) = reopened.append("case-1", 1, [requested("B")])
    assert next_event.position == 2


# --- adapter-specific facts -------------------------------------------------------


def test_sqlite_uses_wal_and_stores_utc_text_and_json(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "intake.db", SOURCE)
    store.append("case-1", 0, [requested("A", urn=5)])
    store.close()

    db = sqlite3.connect(tmp_path / "intake.db")
    (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    time, data, metadata, private = db.execute(
        "SELECT time, data, metadata, private FROM events"
    ).fetchone()
    db.close()

    assert mode == "wal"
    assert time.endswith("+00:00")
    assert datetime.fromisoformat(time).tzinfo is not None
    assert data == '{"urn":5}'
    assert '"actor": "staff-17"' in metadata
    assert private is None


def test_sqlite_service_tables_commit_and_roll_back_with_the_events(
    tmp_path: Path,
) -> None:
    store = SQLiteEventStore(tmp_path / "notify.db", SOURCE)
    with store.transaction() as tx:
        tx.connection.execute("CREATE TABLE ledger (alert_id TEXT PRIMARY KEY)")

    def append_and_record_then_fail() -> None:
        with store.transaction() as tx:
            tx.append("case-1", 0, [requested("A")])
            tx.connection.execute("INSERT INTO ledger VALUES ('alert-1')")
            raise Boom

    with pytest.raises(Boom):
        append_and_record_then_fail()
    with store.transaction() as tx:
        tx.append("case-1", 0, [requested("A")])
        tx.connection.execute("INSERT INTO ledger VALUES ('alert-2')")

    with store.transaction() as tx:
        rows = tx.connection.execute("SELECT alert_id FROM ledger").fetchall()
    assert [row[0] for row in rows] == ["alert-2"]
    assert store.last_position() == 1
    store.close()


def test_sqlite_turns_a_locked_file_into_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "intake.db", SOURCE, busy_timeout_s=0.05)
    blocker = sqlite3.connect(tmp_path / "intake.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="retry"):
            store.append("case-1", 0, [requested("A")])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    store.append("case-1", 0, [requested("A")])
    assert store.last_position() == 1
    store.close()


def test_sqlite_refuses_an_in_memory_path() -> None:
    with pytest.raises(StoreError, match="memory://"):
        SQLiteEventStore(":memory:", SOURCE)


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "future.db")
    db.execute("PRAGMA user_version=99")
    db.close()

    with pytest.raises(StoreError, match="newer"):
        SQLiteEventStore(tmp_path / "future.db", SOURCE)


def test_sqlite_refuses_use_after_close(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "intake.db", SOURCE)
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.read_all()


# --- the factory ----------------------------------------------------------------------


def test_open_store_reads_sqlite_and_memory_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    relative = open_store("sqlite:///data/intake.db", "/send/intake")
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db", "/send/plans")
    memory = open_store("memory://", "/send/notify")

    assert isinstance(relative, SQLiteEventStore)
    assert relative.path == Path("data/intake.db")
    assert (tmp_path / "data" / "intake.db").exists()
    assert relative.source == "/send/intake"
    assert isinstance(absolute, SQLiteEventStore)
    assert (tmp_path / "abs.db").exists()
    assert isinstance(memory, InMemoryEventStore)
    assert memory.source == "/send/notify"
    relative.close()
    absolute.close()


@pytest.mark.parametrize(
    "url", ["mysql://user:hunter2@127.0.0.1/send", "sqlite://", "oracle:x", "intake.db"]
)
def test_open_store_names_the_supported_schemes(url: str) -> None:
    with pytest.raises(StoreError, match="sqlite:///") as raised:
        open_store(url, "/send/intake")

    assert "memory://" in str(raised.value)
    assert "hunter2" not in str(raised.value)
