"""One outbox relay at a time: the relay locks, the hand-over loop, and two relay
processes on one PostgreSQL store with the active one killed by SIGKILL mid-publish.

The locks are tested on their real backing (a PostgreSQL session, a file lock between
processes); the hand-over through the real broker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer

from sendkit.events import NewEvent, RecordedEvent
from sendkit.relay import OutboxRelay
from sendkit.relay_lock import (
    FileRelayLock,
    LocalRelayLock,
    PostgresRelayLock,
    relay_lock_for,
    run_exclusively,
)
from sendkit.store import InMemoryEventStore, PostgresEventStore, SQLiteEventStore

from .kafka_support import READ_DEADLINE_S, read_topic_to_end

SOURCE = "/send/intake"
NOWHERE = "127.0.0.1:9"  # the discard port: a relay with nothing to send never dials it


@pytest.fixture
def store(postgres_database: str) -> Iterator[PostgresEventStore]:
    opened = PostgresEventStore(postgres_database, SOURCE)
    yield opened
    opened.close()


@pytest.fixture
def locks(store: PostgresEventStore) -> Iterator[Callable[[str], PostgresRelayLock]]:
    made: list[PostgresRelayLock] = []

    def make(name: str) -> PostgresRelayLock:
        lock = PostgresRelayLock(store.dsn, name)
        made.append(lock)
        return lock

    yield make
    for lock in made:
        lock.release()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READ_DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


# --- the locks ------------------------------------------------------------------------


def test_a_postgres_relay_lock_has_one_holder_until_released(
    locks: Callable[[str], PostgresRelayLock],
) -> None:
    first, second, other_topic = (
        locks("relay:t"),
        locks("relay:t"),
        locks("relay:other"),
    )

    assert first.try_acquire()
    assert first.try_acquire()  # taking it again is a no-op
    assert not second.try_acquire()
    assert other_topic.try_acquire()
    assert first.held()
    assert not second.held()

    first.release()

    assert not first.held()
    assert second.try_acquire()
    assert not first.try_acquire()


def test_a_postgres_relay_lock_is_lost_with_its_session_and_taken_over(
    locks: Callable[[str], PostgresRelayLock], postgres_dsn: str
) -> None:
    holder, standby = locks("relay:t"), locks("relay:t")
    assert holder.try_acquire()
    assert not standby.try_acquire()

    # What the server does when the holder's pod vanishes: the session ends.
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (holder.backend_pid(),))

    assert not holder.held()
    wait_for(standby.try_acquire, "the standby to take the lock")
    assert not holder.try_acquire()


def test_relay_locks_of_two_schemas_do_not_collide(postgres_database: str) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as db:
        db.execute("CREATE SCHEMA intake")
        db.execute("CREATE SCHEMA plans")
    dsns = [
        f"{postgres_database}?options=-csearch_path%3D{s}" for s in ("intake", "plans")
    ]
    stores = [PostgresEventStore(dsn, SOURCE) for dsn in dsns]
    held = [PostgresRelayLock(dsn, "relay:send.events") for dsn in dsns]
    try:
        assert [lock.try_acquire() for lock in held] == [True, True]
    finally:
        for lock in held:
            lock.release()
        for opened in stores:
            opened.close()


def test_a_postgres_relay_lock_on_an_unreachable_server_is_simply_not_taken() -> None:
    from devstack.kafka_config import free_port

    lock = PostgresRelayLock(
        f"postgresql://u:p@127.0.0.1:{free_port()}/x?connect_timeout=2", "relay:t"
    )

    assert not lock.try_acquire()
    assert not lock.held()
    lock.release()


HOLD_A_FILE_LOCK = """
import sys, time
from sendkit.relay_lock import FileRelayLock
lock = FileRelayLock(sys.argv[1], "relay:t")
print("held" if lock.try_acquire() else "refused", flush=True)
time.sleep(600)
"""


def test_a_file_relay_lock_has_one_holder_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "intake.db.relay_t.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_FILE_LOCK, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        lock = FileRelayLock(path, "relay:t")

        assert not lock.try_acquire()

        # The kernel releases a flock when its holder dies, however it dies.
        holder.kill()
        holder.wait()
        assert lock.try_acquire()
        assert lock.held()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()

    # A lock file someone removed no longer protects anything.
    path.unlink()
    assert not lock.held()
    lock.release()


def test_relay_lock_for_picks_the_lock_that_suits_the_store(
    store: PostgresEventStore, tmp_path: Path
) -> None:
    sqlite = SQLiteEventStore(tmp_path / "intake.db", SOURCE)
    memory = InMemoryEventStore(SOURCE)
    try:
        file_lock = relay_lock_for(sqlite, "relay:send.intake.events")
        local = relay_lock_for(memory, "relay:t")
        same_local = relay_lock_for(memory, "relay:t")

        assert isinstance(relay_lock_for(store, "relay:t"), PostgresRelayLock)
        assert isinstance(file_lock, FileRelayLock)
        assert file_lock.path == tmp_path / "intake.db.relay_send.intake.events.lock"
        assert isinstance(local, LocalRelayLock)
        assert local.try_acquire()
        assert not same_local.try_acquire()
        local.release()
        assert same_local.try_acquire()
        same_local.release()
    finally:
        sqlite.close()


# --- the hand-over loop ---------------------------------------------------------------


class Replica:
    """``run_exclusively`` on a thread, recording when it publishes."""

    def __init__(
        self, name: str, store: PostgresEventStore, journal: list[tuple[str, bool]]
    ) -> None:
        self.name = name
        self.stop = threading.Event()
        self.lock = PostgresRelayLock(store.dsn, "relay:send.test")
        self._journal = journal

        def make_relay() -> OutboxRelay:
            return OutboxRelay(store, "send.test", NOWHERE)

        self.thread = threading.Thread(
            target=run_exclusively,
            args=(make_relay, self.lock, self.stop),
            kwargs={
                "poll_interval": 0.05,
                "retry_interval": 0.05,
                "check_interval": 0.05,
                "on_tenure": self.record,
            },
        )

    def record(self, publishing: bool) -> None:
        self._journal.append((self.name, publishing))


def never_two_at_once(journal: list[tuple[str, bool]]) -> bool:
    active: set[str] = set()
    for name, publishing in journal:
        if publishing:
            if active:
                return False
            active.add(name)
        else:
            active.discard(name)
    return True


def test_replicas_publish_one_at_a_time_and_hand_over_when_one_stops(
    store: PostgresEventStore, postgres_dsn: str
) -> None:
    journal: list[tuple[str, bool]] = []
    replicas = [Replica(name, store, journal) for name in ("first", "second", "third")]
    first, second, third = replicas
    try:
        first.thread.start()
        wait_for(lambda: journal == [("first", True)], "the first replica to publish")
        second.thread.start()
        time.sleep(0.3)  # long enough for the standby to have tried several times
        standing_by = list(journal)

        # A stop hands over at once.
        first.stop.set()
        first.thread.join()
        wait_for(lambda: journal[-1] == ("second", True), "the second to take over")
        handed_over = list(journal)

        # So does a lost session: the server frees the lock when the session ends,
        # and the old holder stops publishing when it next checks.
        third.thread.start()
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(%s)", (second.lock.backend_pid(),)
            )
        wait_for(
            lambda: ("second", False) in journal and ("third", True) in journal,
            "the second to stop and the third to take over",
        )
    finally:
        for replica in replicas:
            replica.stop.set()
            if replica.thread.ident is not None:  # it was started
                replica.thread.join()

    assert standing_by == [("first", True)]
    assert handed_over == [("first", True), ("first", False), ("second", True)]
    assert never_two_at_once(handed_over)
    assert journal.count(("third", True)) == 1
    assert journal[-1][1] is False  # every tenure ended with its replica's stop


# --- two relay processes, the active one killed ---------------------------------------

CASES = 6
EVENTS_PER_CASE = 1000
KILL_AFTER_SEEN = 300
_RESUMED_AT = re.compile(r"relay started for \S+ at position (\d+)")


def fill_store(dsn: str) -> list[RecordedEvent]:
    store = PostgresEventStore(dsn, SOURCE)
    appended: list[RecordedEvent] = []
    try:
        # Cases interleave in the global order, as they would in a real service.
        for chunk in range(0, EVENTS_PER_CASE, 50):
            for case in range(CASES):
                appended += store.append(
                    f"case-{case}",
                    chunk,
                    [
                        NewEvent(
                            type="send.intake.Noted.v1",
                            data={"case": case, "n": chunk + i + 1},
                            private={"note": "synthetic"},
                        )
                        for i in range(50)
                    ],
                )
    finally:
        store.close()
    return appended


def start_relay(
    dsn: str, topic: str, bootstrap: str, batch_size: int, log: Path
) -> subprocess.Popen[bytes]:
    # The log goes to a file: an unread pipe could fill and stall the relay.
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "sendkit.relay", "--store", dsn),
                *("--topic", topic, "--source", SOURCE, "--bootstrap", bootstrap),
                *("--batch-size", str(batch_size), "--poll-interval", "0.05"),
                *("--log-format", "text"),
            ],
            stdout=output,
            stderr=output,
        )


def wait_until_records_appear(bootstrap: str, topic: str, count: int) -> None:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        seen = 0
        deadline = time.monotonic() + READ_DEADLINE_S
        while seen < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the relay published only {seen} records")
            seen += sum(len(r) for r in consumer.poll(timeout_ms=100).values())
    finally:
        consumer.close(autocommit=False)


def records_on(bootstrap: str, topic: str) -> int:
    return len(read_topic_to_end(bootstrap, topic))


def checkpoint_of(dsn: str, topic: str) -> int:
    with psycopg.connect(dsn) as db:
        row = db.execute(
            "SELECT position FROM checkpoints WHERE name = %s", (f"relay:{topic}",)
        ).fetchone()
    return 0 if row is None else int(row[0])


@pytest.mark.parametrize(
    "batch_size",
    [
        pytest.param(100_000, id="killed-inside-one-batch"),
        pytest.param(250, id="killed-between-batches"),
    ],
)
def test_the_standby_relay_takes_over_from_a_killed_one_without_loss_or_reorder(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    postgres_database: str,
    tmp_path: Path,
    batch_size: int,
) -> None:
    topic = unique_topic(partitions=6)
    appended = fill_store(postgres_database)
    total = len(appended)
    names = ("a", "b")
    logs = {name: tmp_path / f"relay-{name}.log" for name in names}

    def said(name: str, text: str) -> bool:
        return logs[name].exists() and text in logs[name].read_text()

    # Two replicas start while the test holds their lock, so both stand by; released,
    # the lock goes to one of them and the other keeps waiting.
    gate = PostgresRelayLock(postgres_database, f"relay:{topic}")
    assert gate.try_acquire()
    relays = {
        name: start_relay(
            postgres_database, topic, kafka_bootstrap, batch_size, logs[name]
        )
        for name in names
    }
    try:
        wait_for(lambda: all(said(n, "standing by") for n in names), "both to wait")
        gate.release()
        wait_for(
            lambda: any(said(n, "taken; publishing") for n in names), "one to publish"
        )
        active_name = next(n for n in names if said(n, "taken; publishing"))
        standby_name = next(n for n in names if n != active_name)
        active, standby = relays[active_name], relays[standby_name]
        wait_until_records_appear(kafka_bootstrap, topic, KILL_AFTER_SEEN)

        # Kill the active one outright; the other must take over and finish. The
        # standby is paused meanwhile only so that what the killed relay left on
        # Kafka can be counted before the standby adds to it.
        standby.send_signal(signal.SIGSTOP)
        os.kill(active.pid, signal.SIGKILL)
        active.wait()
        on_wire_at_kill = records_on(kafka_bootstrap, topic)
        assert not said(standby_name, "taken; publishing")
        standby.send_signal(signal.SIGCONT)
        wait_for(
            lambda: checkpoint_of(postgres_database, topic) == total,
            "the standby to publish everything",
        )
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(READ_DEADLINE_S) == 0, logs[standby_name].read_text()
    finally:
        gate.release()
        for process in relays.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    assert active.returncode == -signal.SIGKILL
    log_b = logs[standby_name].read_text()
    assert "taken; publishing" in log_b
    resumed = _RESUMED_AT.search(log_b)
    assert resumed is not None, log_b[-2000:]
    resumed_at = int(resumed.group(1))
    assert resumed_at < total, (
        "the relay finished before the kill: raise EVENTS_PER_CASE"
    )

    # Every event arrived; repeats carry the same ce_id and bytes, and after dropping
    # them each case's events are in stream order on one partition.
    records = read_topic_to_end(kafka_bootstrap, topic)
    ids = [dict(r.headers)["ce_id"].decode() for r in records]
    assert set(ids) == {event.id for event in appended}, "an event was lost"
    first_copy: dict[str, Any] = {}
    per_case: dict[bytes, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for record, event_id in zip(records, ids, strict=True):
        partitions[record.key].add(record.partition)
        if event_id in first_copy:
            earlier = first_copy[event_id]
            assert (record.key, record.value, record.headers) == (
                earlier.key,
                earlier.value,
                earlier.headers,
            ), "a repeat differs from the first copy"
            continue
        first_copy[event_id] = record
        per_case[record.key].append(json.loads(record.value)["n"])
    assert all(len(found) == 1 for found in partitions.values())
    assert sorted(per_case) == sorted(f"case-{c}".encode() for c in range(CASES))
    for numbers in per_case.values():
        assert numbers == list(range(1, EVENTS_PER_CASE + 1))
    assert max(Counter(ids).values()) <= 2
    # The standby started from the checkpoint the killed relay left: everything the
    # killed one had sent beyond it went again, and nothing before it did.
    repeats = len(ids) - total
    assert repeats == on_wire_at_kill - resumed_at
    print(
        f"hand-over ({batch_size=}): {total} events, {on_wire_at_kill} on Kafka at the "
        f"kill, the standby resumed at {resumed_at}, {repeats} sent twice"
    )
