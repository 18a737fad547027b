"""What only the PostgreSQL store must prove: commit-ordered positions under real
concurrency, its translation of server failures, its schema and its tables.

The behaviour every store shares is in ``test_event_store.py``; these tests run on the
real server of ``postgres_database`` (a fresh database each).
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devstack.postgres import start_cluster
from sendkit.events import Metadata, NewEvent, RecordedEvent
from sendkit.store import (
    PostgresEventStore,
    StoreError,
    StoreUnavailable,
    VersionConflict,
    open_store,
)

SOURCE = "/send/test"
# Only a guard against a hang: no test asserts how long anything took.
WAIT_DEADLINE_S = 60.0


def noted(n: int, **extra: object) -> NewEvent:
    return NewEvent(
        type="send.test.Noted.v1",
        data={"n": n, **extra},
        metadata=Metadata("staff-3", f"corr-{n}"),
    )


@pytest.fixture
def opened(postgres_database: str) -> Iterator[Callable[..., PostgresEventStore]]:
    """Opens stores on the test's database; all are closed at the end."""
    stores: list[PostgresEventStore] = []

    def open_it(**options: Any) -> PostgresEventStore:
        store = PostgresEventStore(postgres_database, SOURCE, **options)
        stores.append(store)
        return store

    yield open_it
    for store in stores:
        store.close()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def advisory_waiters(dsn: str) -> int:
    """How many sessions are waiting for an advisory lock in this database."""
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND NOT l.granted"
            " AND d.datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


# --- the trap, and how the store avoids it --------------------------------------------


def test_a_sequence_alone_lets_a_tailing_reader_pass_over_an_event(
    postgres_database: str,
) -> None:
    # Why the store serialises appends: with numbers from a sequence, an event that
    # commits late with a lower number is behind a reader's checkpoint already.
    with psycopg.connect(postgres_database, autocommit=True) as db:
        db.execute("CREATE TABLE naive (position bigserial PRIMARY KEY, n int)")
    slow = psycopg.connect(postgres_database)
    fast = psycopg.connect(postgres_database)
    reader = psycopg.connect(postgres_database, autocommit=True)
    try:
        slow.execute("INSERT INTO naive (n) VALUES (1)")  # takes position 1
        fast.execute("INSERT INTO naive (n) VALUES (2)")  # takes position 2
        fast.commit()
        seen = reader.execute(
            "SELECT position FROM naive WHERE position > 0"
        ).fetchall()
        checkpoint = max(row[0] for row in seen)
        slow.commit()
        after = reader.execute(
            "SELECT position FROM naive WHERE position > %s", (checkpoint,)
        ).fetchall()
        everything = reader.execute("SELECT position FROM naive").fetchall()
    finally:
        for connection in (slow, fast, reader):
            connection.close()

    assert seen == [(2,)]
    assert after == []
    assert sorted(everything) == [(1,), (2,)]  # position 1 was never read


def test_an_append_waits_for_an_earlier_uncommitted_one_and_follows_it(
    opened: Callable[..., PostgresEventStore], postgres_database: str
) -> None:
    slow_store, fast_store, reader = opened(), opened(), opened()
    appended: dict[str, list[RecordedEvent]] = {}
    release_slow = threading.Event()
    slow_appended = threading.Event()
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            with slow_store.transaction() as tx:
                appended["slow"] = tx.append("case-slow", 0, [noted(1)])
                slow_appended.set()
                release_slow.wait(WAIT_DEADLINE_S)
        except BaseException as error:  # reported by the main thread below
            errors.append(error)

    def fast() -> None:
        try:
            appended["fast"] = fast_store.append("case-fast", 0, [noted(2)])
        except BaseException as error:  # reported by the main thread below
            errors.append(error)

    slow_thread = threading.Thread(target=slow)
    slow_thread.start()
    assert slow_appended.wait(WAIT_DEADLINE_S)
    fast_thread = threading.Thread(target=fast)
    fast_thread.start()
    wait_for(
        lambda: advisory_waiters(postgres_database) == 1, "the fast append to wait"
    )

    # While the slow append is open, nothing after it can commit or be read.
    seen_while_open = reader.read_all()
    release_slow.set()
    slow_thread.join()
    fast_thread.join()

    assert errors == []
    assert seen_while_open == []
    assert appended["slow"][0].position == 1
    assert appended["fast"][0].position == 2
    assert [e.stream_id for e in reader.read_all(after=0)] == ["case-slow", "case-fast"]


APPENDERS = 6
APPENDS_EACH = 60
SHARED_STREAMS = 5


def append_in_a_process(
    dsn: str, worker: int, start: Any, results: Any, seed: int
) -> None:
    """One appender with its own connection: short and slow transactions, mixed."""
    chance = random.Random(seed + worker)
    store = PostgresEventStore(dsn, SOURCE, pool_size=1)
    store.last_position()  # connected before the start, so the timing is appends only
    mine: list[tuple[str, int]] = []
    try:
        start.wait(WAIT_DEADLINE_S)
        for i in range(APPENDS_EACH):
            stream = (
                f"shared-{chance.randrange(SHARED_STREAMS)}"
                if chance.random() < 0.5
                else f"own-{worker}-{i}"
            )
            events = [
                noted(i, worker=worker, k=k) for k in range(chance.choice((1, 1, 2, 3)))
            ]
            while True:
                try:
                    with store.transaction() as tx:
                        version = len(tx.read_stream(stream))
                        recorded = tx.append(stream, version, events)
                        if chance.random() < 0.2:
                            # Hold the transaction open after appending, as a slow
                            # command would: the window where sequences go wrong.
                            time.sleep(chance.uniform(0.001, 0.01))
                    break
                except VersionConflict:
                    continue
            mine += [(event.id, event.position) for event in recorded]
        results.put((worker, mine, None))
    except BaseException as error:  # reported by the test process
        results.put((worker, mine, repr(error)))
    finally:
        store.close()


def test_a_tailing_reader_sees_every_event_of_concurrent_processes_in_commit_order(
    opened: Callable[..., PostgresEventStore], postgres_database: str
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(APPENDERS + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=append_in_a_process,
            args=(postgres_database, n, start, results, 20260501),
        )
        for n in range(APPENDERS)
    ]
    for worker in workers:
        worker.start()
    reader = opened(pool_size=1)

    # Tail the store as the relay does while every process appends.
    seen: list[RecordedEvent] = []
    reported: dict[int, tuple[list[tuple[str, int]], str | None]] = {}
    start.wait(WAIT_DEADLINE_S * 2)  # every appender is connected and waiting
    started = time.monotonic()
    checkpoint = 0
    deadline = time.monotonic() + WAIT_DEADLINE_S * 2
    while True:
        finished = len(reported) == APPENDERS
        page = reader.read_all(after=checkpoint, limit=50)
        seen += page
        if page:
            checkpoint = page[-1].position
        elif finished:
            break
        try:
            worker, ids, error = results.get(timeout=0.001)
            reported[worker] = (ids, error)
        except queue.Empty:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(reported)} appenders reported in time")
    elapsed = time.monotonic() - started
    for worker_process in workers:
        worker_process.join(WAIT_DEADLINE_S)

    assert {w: error for w, (_, error) in reported.items() if error} == {}
    final = reader.read_all()
    assert [e.id for e in seen] == [e.id for e in final]
    assert [e.position for e in final] == list(range(1, len(final) + 1))
    written = {event_id: pos for ids, _ in reported.values() for event_id, pos in ids}
    assert len(written) == len(final)
    assert {e.id: e.position for e in final} == written
    versions: dict[str, list[int]] = defaultdict(list)
    for event in final:
        versions[event.stream_id].append(event.version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
    print(
        f"{APPENDERS} processes appended {len(final)} events in "
        f"{APPENDERS * APPENDS_EACH} transactions in {elapsed:.2f}s "
        f"({APPENDERS * APPENDS_EACH / elapsed:.0f} transactions/s, with 20% held "
        "open for up to 10 ms); a tailing reader saw them all in commit order"
    )


# --- failures become the interface's errors ---------------------------------------


def test_waiting_too_long_for_the_append_lock_is_store_unavailable(
    opened: Callable[..., PostgresEventStore],
) -> None:
    holder, impatient = opened(), opened(lock_timeout_s=0.2)

    with holder.transaction() as tx:
        tx.append("case-1", 0, [noted(1)])
        with pytest.raises(StoreUnavailable, match="retry"):
            impatient.append("case-2", 0, [noted(2)])

    (event,) = impatient.append("case-2", 0, [noted(2)])
    assert event.position == 2


def test_transactions_that_do_not_append_do_not_wait_for_appends(
    opened: Callable[..., PostgresEventStore],
) -> None:
    holder, other = opened(), opened(lock_timeout_s=0.2)

    with holder.transaction() as tx:
        tx.append("case-1", 0, [noted(1)])
        # Would raise StoreUnavailable if it waited for the holder's lock.
        with other.transaction() as mine:
            mine.set_checkpoint("relay:t", 5)
            mine.mark_processed("notify", "msg-1")
        assert other.read_all() == []
        assert other.read_stream("case-1") == []

    assert other.get_checkpoint("relay:t") == 5


def test_connections_killed_by_a_server_restart_are_replaced_unnoticed(
    opened: Callable[..., PostgresEventStore], postgres_dsn: str
) -> None:
    store = opened(pool_size=3)
    store.append("case-1", 0, [noted(1)])
    with store.transaction() as tx:  # two connections in the pool now
        store.read_all()
        tx.set_checkpoint("relay:t", 1)

    # What a restart does to every idle connection in the pool.
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        (killed,) = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'sendkit-store' AND datname = %s",
            (conninfo_to_dict(store.dsn)["dbname"],),
        ).fetchone() or (0,)

    assert killed == 2
    assert [e.position for e in store.read_all()] == [1]
    assert store.last_position() == 1
    assert store.append("case-1", 1, [noted(2)])[0].position == 2
    assert store.get_checkpoint("relay:t") == 1


def test_a_server_that_went_away_is_store_unavailable() -> None:
    cluster = start_cluster()
    store = PostgresEventStore(cluster.dsn(), SOURCE)
    try:
        store.append("case-1", 0, [noted(1)])
        cluster.stop()

        with pytest.raises(StoreUnavailable, match="retry"):
            store.read_all()
        with pytest.raises(StoreUnavailable):
            store.append("case-1", 1, [noted(2)])
    finally:
        store.close()
        cluster.stop()


def test_an_unreachable_server_is_store_unavailable_without_the_password() -> None:
    from devstack.kafka_config import free_port

    url = f"postgresql://sender:hunter2@127.0.0.1:{free_port()}/send?connect_timeout=2"

    with pytest.raises(StoreUnavailable, match="check the DSN") as raised:
        open_store(url, SOURCE)

    assert "hunter2" not in str(raised.value)


def test_text_with_a_nul_character_is_a_store_error(
    opened: Callable[..., PostgresEventStore],
) -> None:
    store = opened()

    with pytest.raises(StoreError, match="NUL"):
        store.append("case-\x00", 0, [noted(1)])

    assert store.last_position() == 0


# --- schema and tables ----------------------------------------------------------------


def test_open_store_opens_a_postgresql_url(postgres_database: str) -> None:
    assert postgres_database.startswith("postgresql://")

    store = open_store(postgres_database, "/send/intake")
    try:
        assert isinstance(store, PostgresEventStore)
        assert store.source == "/send/intake"
        assert store.append("case-1", 0, [noted(1)])[0].source == "/send/intake"
    finally:
        store.close()


def test_events_are_stored_as_written_json_with_utc_times(
    opened: Callable[..., PostgresEventStore], postgres_database: str
) -> None:
    store = opened()
    store.append("case-1", 0, [NewEvent("send.test.A.v1", {"z": 1, "a": "Zoë"})])

    with psycopg.connect(postgres_database) as db:
        row = db.execute(
            "SELECT data::text, private, time, actor FROM events"
        ).fetchone()

    assert row is not None
    data, private, time_, actor = row
    assert data == '{"z":1,"a":"Zoë"}'  # key order and text kept: the same bytes
    assert json.loads(data) == {"z": 1, "a": "Zoë"}
    assert private is None
    assert time_.utcoffset().total_seconds() == 0
    assert actor == "system"


def test_stores_in_two_schemas_of_one_database_are_independent(
    postgres_database: str,
) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as db:
        db.execute("CREATE SCHEMA intake")
        db.execute("CREATE SCHEMA plans")
    intake = PostgresEventStore(
        make_conninfo(postgres_database, options="-csearch_path=intake"), "/send/intake"
    )
    plans = PostgresEventStore(
        make_conninfo(postgres_database, options="-csearch_path=plans"),
        "/send/plans",
        lock_timeout_s=0.2,
    )
    try:
        with intake.transaction() as tx:
            tx.append("case-1", 0, [noted(1), noted(2)])
            # Each schema has its own append lock: this would time out otherwise.
            (planned,) = plans.append("case-1", 0, [noted(3)])

        assert planned.position == 1
        assert [e.position for e in intake.read_all()] == [1, 2]
        assert [e.data["n"] for e in plans.read_all()] == [3]
    finally:
        intake.close()
        plans.close()


def test_a_search_path_naming_no_schema_is_refused(postgres_database: str) -> None:
    dsn = make_conninfo(postgres_database, options="-csearch_path=nowhere")

    with pytest.raises(StoreError, match="search_path"):
        PostgresEventStore(dsn, SOURCE)


def test_a_newer_schema_version_is_refused(
    opened: Callable[..., PostgresEventStore], postgres_database: str
) -> None:
    opened().close()
    with psycopg.connect(postgres_database, autocommit=True) as db:
        db.execute("UPDATE event_store_schema SET version = 99")

    with pytest.raises(StoreError, match="newer"):
        PostgresEventStore(postgres_database, SOURCE)


def test_replicas_opening_a_new_database_together_all_succeed(
    postgres_database: str,
) -> None:
    opened: list[PostgresEventStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        try:
            start.wait()
            opened.append(PostgresEventStore(postgres_database, SOURCE))
        except BaseException as error:  # reported by the main thread below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in opened:
        store.close()

    assert errors == []
    assert len(opened) == 6


def test_closing_refuses_further_use(opened: Callable[..., PostgresEventStore]) -> None:
    store = opened()
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.read_all()


def test_a_service_table_commits_and_rolls_back_with_the_events(
    opened: Callable[..., PostgresEventStore],
) -> None:
    store = opened()
    with store.transaction() as tx:
        tx.connection.execute("CREATE TABLE ledger (alert_id text PRIMARY KEY)")

    class Boom(Exception):
        pass

    def write_both_then_fail() -> None:
        with store.transaction() as tx:
            tx.append("case-1", 0, [noted(1)])
            tx.connection.execute("INSERT INTO ledger VALUES ('alert-1')")
            raise Boom

    with pytest.raises(Boom):
        write_both_then_fail()
    with store.transaction() as tx:
        tx.append("case-1", 0, [noted(2)])
        tx.connection.execute("INSERT INTO ledger VALUES ('alert-2')")

    with store.transaction() as tx:
        rows = tx.connection.execute("SELECT alert_id FROM ledger").fetchall()
    assert rows == [{"alert_id": "alert-2"}]
    assert [e.data["n"] for e in store.read_all()] == [2]


def test_the_database_is_the_tests_own(
    postgres_database: str, postgres_dsn: str
) -> None:
    # The fixture's promise: a fresh, empty database that is not the server's default.
    with psycopg.connect(postgres_database) as db:
        row = db.execute(
            "SELECT current_database(), count(*) FROM pg_tables"
            " WHERE schemaname = 'public'"
        ).fetchone()
    with psycopg.connect(postgres_dsn) as admin:
        default = admin.execute("SELECT current_database()").fetchone()

    assert row is not None
    assert default is not None
    assert row[1] == 0
    assert row[0] != default[0]
