"""What the shutdown tests share: service processes on a test's own topic, with their
logs in files, and the events a store holds and a topic carries; inputs published
through the kernel's relay while a process runs (``Feed``); and, for a subscribing
process, a run stopped mid-backlog and a run that finishes (``stopped_then_restarted``)
with the checks that together say each input was handled once
(``assert_each_input_handled_once``).

A process's output goes to a file, never an unread pipe (a full pipe would stall it).
Waits have deadlines only as guards against a hang; no test asserts how long anything
took. A process "stopped within its bound" when it exited 0 by itself after SIGTERM:
``sendkit.health.Shutdown`` ends one that overstays ``SEND_SHUTDOWN_TIMEOUT_SECONDS``
with status 3 instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition

from sendkit.events import NewEvent, RecordedEvent
from sendkit.relay import OutboxRelay
from sendkit.store import SQLiteEventStore

LAUNCH = Path(__file__).with_name("launch.py")
GUARD_S = 120.0
SHUTDOWN_TIMEOUT_S = 20.0


def wait_for(
    condition: Callable[[], bool],
    what: str,
    guard_s: float = GUARD_S,
    *,
    interval_s: float = 0.05,
) -> None:
    """Return once ``condition()`` holds, asking every ``interval_s`` (a costly
    condition asks less often); fail after ``guard_s``."""
    deadline = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(interval_s)


@dataclass
class Process:
    """A child process whose combined output is kept in ``log``."""

    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def said(self, text: str) -> bool:
        return text in self.text()

    def terminate(self) -> int:
        """SIGTERM, then the exit status (the guard kills a hung process)."""
        self.popen.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> int:
        try:
            return self.popen.wait(timeout=SHUTDOWN_TIMEOUT_S + GUARD_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the process hung:\n{self.text()[-3000:]}") from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


@dataclass
class Processes:
    """Every process a test started, killed at the end whatever happened."""

    started: list[Process] = field(default_factory=list)

    def start(self, args: Sequence[str], env: Mapping[str, str], log: Path) -> Process:
        with log.open("ab") as output:
            popen = subprocess.Popen(
                [sys.executable, *args],
                stdout=output,
                stderr=output,
                env=dict(env),
            )
        process = Process(popen, log)
        self.started.append(process)
        return process

    def launch(
        self,
        entry_point: str,
        topic: str | Sequence[str],
        env: Mapping[str, str],
        log: Path,
    ) -> Process:
        """A service entry point of ``launch.py`` on ``topic`` (or on several)."""
        topics = [topic] if isinstance(topic, str) else list(topic)
        return self.start([str(LAUNCH), entry_point, *topics], env, log)

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()


def process_env(**settings: str | Path) -> dict[str, str]:
    """This environment without the test run's own health names, plus ``settings``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SEND_HEARTBEAT", "SEND_SHUTDOWN", "SEND_STALL"))
    }
    env |= {"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}
    env |= {name: str(value) for name, value in settings.items()}
    return env


def fill_store(
    path: Path, source: str, cases: int, per_case: int
) -> list[RecordedEvent]:
    """``cases`` streams of ``per_case`` synthetic events, interleaved in position
    order as a busy service's would be."""
    store = SQLiteEventStore(path, source)
    appended: list[RecordedEvent] = []
    try:
        for chunk in range(0, per_case, 50):
            for case in range(cases):
                appended += store.append(
                    f"case-{case}",
                    chunk,
                    [
                        NewEvent(
                            type="send.test.Noted.v1",
                            data={"case": case, "n": chunk + i + 1},
                            private={"note": "synthetic"},
                        )
                        for i in range(min(50, per_case - chunk))
                    ],
                )
    finally:
        store.close()
    return appended


def checkpoint_in(path: Path, source: str, topic: str) -> int:
    store = SQLiteEventStore(path, source)
    try:
        return store.get_checkpoint(f"relay:{topic}")
    finally:
        store.close()


def wait_for_records(bootstrap: str, topic: str, count: int) -> None:
    """Return once ``topic`` holds at least ``count`` records."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        seen = 0
        deadline = time.monotonic() + GUARD_S
        while seen < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {seen} records reached {topic}")
            seen += sum(len(r) for r in consumer.poll(timeout_ms=100).values())
    finally:
        consumer.close(autocommit=False)


def read_to_end(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now, partition after partition,
    each in offset order."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: dict[int, list[Any]] = {tp.partition: [] for tp in partitions}
        deadline = time.monotonic() + GUARD_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to {ends}")
            for tp, records in consumer.poll(timeout_ms=200).items():
                found[tp.partition].extend(records)
        return [record for p in sorted(found) for record in found[p]]
    finally:
        consumer.close(autocommit=False)


class TopicFollower:
    """Reads a topic from its beginning, a little more at each ``read``: a test that
    waits on a growing topic reads each record once, not the whole topic each time."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[Any] = []
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self._partitions = [
            TopicPartition(topic, p)
            for p in sorted(self._consumer.partitions_for_topic(topic))
        ]
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)

    def read(self) -> list[Any]:
        """Every record so far, after reading up to the end offsets of now."""
        consumer = self._consumer
        ends = consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + GUARD_S
        while any(consumer.position(tp) < ends[tp] for tp in self._partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {self.topic} to {ends}")
            for records in consumer.poll(timeout_ms=200).values():
                self.records.extend(records)
        return self.records

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def ids_by_case(records: Sequence[Any]) -> dict[bytes, list[int]]:
    """Each key's ``ce_sequence`` values in offset order."""
    per_case: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        per_case[record.key].append(int(dict(record.headers)["ce_sequence"]))
    return per_case


def event_ids(records: Sequence[Any]) -> list[str]:
    return [dict(r.headers)["ce_id"].decode() for r in records]


@dataclass(frozen=True)
class Source:
    """Inputs of one producing service: its events, by case, for ``topic``, appended
    to a store of ``source`` at ``path`` (a SQLite file of the test's own)."""

    topic: str
    path: Path
    source: str
    events: Sequence[tuple[str, NewEvent]]


class Feed:
    """Publishes each ``Source``'s events through the kernel's relay, as the service
    that owns them would, a chunk of each at a time on a thread of its own, keeping
    no more than ``ahead`` inputs published and not yet ``handled()``: the process
    under test always has a backlog, however fast it works or slowly it starts, and is
    still being fed when it is stopped."""

    def __init__(
        self,
        bootstrap: str,
        sources: Sequence[Source],
        *,
        handled: Callable[[], int],
        ahead: int = 600,
        chunk: int = 100,
    ) -> None:
        self.total = sum(len(source.events) for source in sources)
        self.recorded: list[RecordedEvent] = []
        self._bootstrap = bootstrap
        self._sources = sources
        self._handled = handled
        self._ahead = ahead
        self._chunk = chunk
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="feed", daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def wait(self) -> list[RecordedEvent]:
        """Every event published, once the feed has ended."""
        self._thread.join(GUARD_S)
        if self._thread.is_alive():
            raise AssertionError("the feed did not end")
        if self._failure is not None:
            raise AssertionError(f"the feed failed: {self._failure!r}")
        return self.recorded

    def _run(self) -> None:
        stores = [SQLiteEventStore(s.path, s.source) for s in self._sources]
        relays = [
            OutboxRelay(store, s.topic, self._bootstrap)
            for store, s in zip(stores, self._sources, strict=True)
        ]
        try:
            longest = max(len(s.events) for s in self._sources)
            for first in range(0, longest, self._chunk):
                # A stopped process and its restart hold the feed back meanwhile.
                wait_for(
                    lambda: len(self.recorded) - self._handled() < self._ahead,
                    "the process to catch up with the feed",
                    GUARD_S * 2,
                    interval_s=0.1,
                )
                for store, relay, source in zip(
                    stores, relays, self._sources, strict=True
                ):
                    with store.transaction() as tx:
                        for case, event in source.events[first : first + self._chunk]:
                            version = len(tx.read_stream(case))
                            self.recorded += tx.append(case, version, [event])
                    while relay.run_once():
                        pass
        except BaseException as error:  # reported by wait()
            self._failure = error
        finally:
            for relay in relays:
                relay.close()
            for store in stores:
                store.close()


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The sum of ``group``'s committed offsets over ``topic``'s partitions."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        offsets = [
            consumer.committed(TopicPartition(topic, p)) for p in range(partitions)
        ]
    finally:
        consumer.close(autocommit=False)
    return sum(offset or 0 for offset in offsets)


def group_members(bootstrap: str, group: str) -> list[Any]:
    """The members ``group`` has now (none once every consumer has left)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group])
    finally:
        admin.close()
    members: list[Any] = described[group]["members"]
    return members


def outcomes_of(process: Process) -> dict[str, int]:
    """The subscriber outcomes ``launch.py`` printed when the process's main ended."""
    for line in process.text().splitlines():
        if line.startswith("subscriber outcomes "):
            found: dict[str, int] = json.loads(
                line.removeprefix("subscriber outcomes ")
            )
            return found
    raise AssertionError(f"no outcomes printed:\n{process.text()[-3000:]}")


@dataclass
class TwoRuns:
    """A run stopped by SIGTERM mid-backlog, what it left, and the run that finished."""

    first: Process
    first_code: int
    handled_at_stop: int
    committed_at_stop: int
    members_at_stop: list[Any]
    second: Process
    second_code: int


def stopped_then_restarted(
    processes: Processes,
    entry_point: str,
    topics: list[str],
    env: dict[str, str],
    tmp_path: Path,
    *,
    handled: Callable[[], int],
    committed: Callable[[], int],
    members: Callable[[], list[Any]],
    total: int,
    handled_before_sigterm: int = 300,
) -> TwoRuns:
    """A subscribing process given SIGTERM once ``handled_before_sigterm`` of its
    inputs are handled, then a second run until all ``total`` inputs are handled and
    their offsets committed; ``handled``, ``committed`` and ``members`` read the
    service's store, its groups' committed offsets and their members."""
    first = processes.launch(entry_point, topics, env, tmp_path / "first.log")
    wait_for(lambda: handled() >= handled_before_sigterm, "the first inputs handled")
    first_code = first.terminate()
    # Read at once: a member that left nothing behind would stay for its session
    # timeout, and the second run's commits would blur what the first one left.
    members_at_stop = members()
    handled_at_stop = handled()
    committed_at_stop = committed()

    second = processes.launch(entry_point, topics, env, tmp_path / "second.log")
    wait_for(lambda: handled() >= total, "every input handled")
    wait_for(lambda: committed() == total, "every offset committed")
    second_code = second.terminate()
    return TwoRuns(
        first,
        first_code,
        handled_at_stop,
        committed_at_stop,
        members_at_stop,
        second,
        second_code,
    )


def assert_each_input_handled_once(runs: TwoRuns, total: int) -> None:
    """What the two runs' own counters and the committed offsets say (this module is
    not rewritten by pytest, so each assertion says what it compared)."""
    first_log, second_log = runs.first.text()[-3000:], runs.second.text()[-3000:]
    assert 0 < runs.handled_at_stop < total, (
        f"{runs.handled_at_stop} of {total} handled at SIGTERM: the backlog should "
        "be part-way through (slow the feed if it ended first)"
    )
    assert runs.first_code == 0, f"first run exited {runs.first_code}:\n{first_log}"
    assert runs.second_code == 0, f"second exited {runs.second_code}:\n{second_log}"
    assert runs.members_at_stop == [], (
        f"a stopped consumer did not leave its group: {runs.members_at_stop}"
    )
    # The first run committed exactly what it handled, so the second got the rest and
    # no input was delivered twice, not even to be found a duplicate.
    assert runs.committed_at_stop == runs.handled_at_stop, (
        f"{runs.committed_at_stop} offsets committed for {runs.handled_at_stop} "
        "inputs handled"
    )
    first, second = outcomes_of(runs.first), outcomes_of(runs.second)
    assert first == {"handled": runs.handled_at_stop}, f"first run: {first}"
    assert second == {"handled": total - runs.handled_at_stop}, f"second: {second}"
