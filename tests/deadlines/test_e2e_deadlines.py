"""The deadlines worker end to end, through the real broker.

The worker runs as its own process (``python -m deadlines worker``) on topics of its
own (``DEADLINES_TOPIC_PREFIX``), so nothing else on the broker moves its clock. The
test publishes intake events with the kernel's envelope, as intake's relay does, sends
rounds of ticks with the ticker, and reads the clock events back: the decision clock
is set with the right due date, alerts come at 10 and 5 working days before and on
the day, an agreed assessment meets the clock, a case never decided goes overdue, a
record that is not a CloudEvent is dead-lettered. The clock events are compared, id
for id, with what the engine gives for the same inputs; the read API builds its read
model from the topics; and a second worker with a fresh app id replays every topic
from offset 0 and re-emits the very same ids.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from deadlines.application.partitioning import case_partition
from deadlines.domain import engine
from deadlines.domain.engine import CaseEvent, CaseState
from deadlines.entrypoints.api import create_app
from deadlines.entrypoints.worker import READY_MESSAGE, TABLE_NAME
from deadlines.settings import DeadlinesSettings
from deadlines.ticker import Ticker
from devstack.kafka_topics import ensure_topics
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.calendar import LONDON
from sendkit.envelope import InvalidEnvelope, ReceivedEvent, from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent

READY_TIMEOUT_S = 120.0
WAIT_S = 120.0  # a deadline for slow, shared machines, not a timing assertion
STOP_TIMEOUT_S = 40.0  # beyond the worker's own bounded stop (20 s)


# The worker process ---------------------------------------------------------------


class WorkerProcess:
    """``python -m deadlines worker`` with its output collected on a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deadlines", "worker"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY_MESSAGE in line:
                self.ready.set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "the worker did not get ready; its output ends:\n" + self.tail()
                )

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT_S)
        self._reader.join(5)
        return self.process.returncode


@dataclass
class Platform:
    """The broker, the test's own topics, and the workers started on them."""

    bootstrap: str
    prefix: str
    workers: list[WorkerProcess] = field(default_factory=list)

    def settings(self, **overrides: Any) -> DeadlinesSettings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": self.bootstrap,
            "topic_prefix": self.prefix,
            **overrides,
        }
        return DeadlinesSettings(**values)

    def start_worker(self, app_id: str) -> WorkerProcess:
        worker = WorkerProcess(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "DEADLINES_APP_ID": app_id,
                "DEADLINES_TOPIC_PREFIX": self.prefix,
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
            }
        )
        self.workers.append(worker)
        worker.wait_ready()
        return worker


@pytest.fixture
def platform(kafka_bootstrap: str) -> Iterator[Platform]:
    prefix = f"e2e{uuid.uuid4().hex[:8]}."
    settings = DeadlinesSettings(topic_prefix=prefix)
    inputs = [*settings.domain_topics, settings.ticks_topic]
    names = [
        *inputs,
        settings.clocks_topic,
        *(dead_letter_topic("deadlines", name) for name in inputs),
        dead_letter_topic("deadlines", settings.clocks_topic),
    ]
    ensure_topics(
        kafka_bootstrap,
        [
            Topic(name, owner="deadlines", consumers=("test",), partitions=PARTITIONS)
            for name in names
        ],
    )
    found = Platform(kafka_bootstrap, prefix)
    try:
        yield found
    finally:
        for number, worker in enumerate(found.workers, start=1):
            worker.stop()
            # Shown by pytest only when the test fails.
            print(f"--- worker {number} output ---\n{worker.tail(80)}")


# Reading and writing the topics ---------------------------------------------------


@dataclass(frozen=True)
class Seen:
    event: ReceivedEvent
    partition: int
    offset: int
    timestamp_ms: int


class TopicReader:
    """Every record of one topic, from the offsets it is told, parsed as CloudEvents."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self.tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(self.tps)
        self.consumer.seek_to_beginning(*self.tps)
        self.seen: list[Seen] = []
        self.raw: list[Any] = []

    def ends(self) -> dict[int, int]:
        found = self.consumer.end_offsets(self.tps)
        return {tp.partition: int(offset) for tp, offset in found.items()}

    def read_to(self, ends: dict[int, int]) -> list[Seen]:
        """Read until every partition's position has reached ``ends``."""
        return self.read_until(
            lambda _: all(
                self.consumer.position(tp) >= ends[tp.partition] for tp in self.tps
            ),
            "the end of the topic",
        )

    def read_until(self, done: Callable[[list[Seen]], bool], what: str) -> list[Seen]:
        deadline = time.monotonic() + WAIT_S
        while not done(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what} on {self.topic}")
            for records in self.consumer.poll(timeout_ms=200).values():
                for record in records:
                    self.raw.append(record)
                    with contextlib.suppress(InvalidEnvelope):
                        self.seen.append(
                            Seen(
                                from_kafka(record),
                                record.partition,
                                record.offset,
                                record.timestamp,
                            )
                        )
        return self.seen

    def close(self) -> None:
        self.consumer.close()


class Intake:
    """Publishes intake events as intake's relay does."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = KafkaProducer(bootstrap_servers=bootstrap)
        self.versions: dict[str, int] = defaultdict(int)
        self.sent: dict[str, list[tuple[RecordedEvent, int, int]]] = defaultdict(list)

    def publish(self, case: str, name: str, data: dict[str, Any]) -> RecordedEvent:
        self.versions[case] += 1
        event = RecordedEvent(
            id=str(uuid.uuid4()),
            stream_id=case,
            version=self.versions[case],
            position=0,
            type=f"send.intake.{name}.v1",
            source="/send/intake",
            time=datetime.now(UTC),
            data={"case_id": case, **data},
            metadata=Metadata(actor="ehcco-e2e", correlation_id=str(uuid.uuid4())),
        )
        record = to_kafka(event)
        sent = self.producer.send(
            self.topic, key=record.key, value=record.value, headers=record.headers
        ).get(timeout=30)
        self.sent[case].append((event, sent.partition, sent.timestamp))
        return event

    def request(self, case: str, received_at: str, coordinator: str) -> None:
        self.publish(
            case,
            "RequestReceived",
            {
                "requester_type": "parent",
                "channel": "portal",
                "received_at": received_at,
                "school_urn": 100042,
                "curriculum_year": 6,
            },
        )
        self.publish(case, "CoordinatorAssigned", {"coordinator_id": coordinator})

    def close(self) -> None:
        self.producer.close()


class Expected:
    """The engine's outputs for the same inputs, fed the way the worker feeds it."""

    def __init__(self) -> None:
        self.states: dict[str, CaseState | None] = {}
        self.ids: dict[str, list[str]] = defaultdict(list)
        self.now: datetime | None = None

    def event(self, event: RecordedEvent) -> None:
        case = event.stream_id
        state, outputs = engine.apply(
            self.states.get(case),
            CaseEvent(event.id, event.type, case, event.data),
            now=self.now,
        )
        if outputs or state.facts:
            self.states[case] = state
        self.ids[case].extend(o.id for o in outputs)

    def tick(self, now: datetime) -> None:
        self.now = now
        for case, state in self.states.items():
            if state is not None:
                self.states[case], outputs = engine.tick(state, now)
                self.ids[case].extend(o.id for o in outputs)


def at_london(day: date) -> datetime:
    return datetime.combine(day, clock_time(8), LONDON).astimezone(UTC)


def of(seen: list[Seen], case: str) -> list[Seen]:
    return [s for s in seen if s.event.subject == case]


def find(seen: list[Seen], case: str, name: str, clock_id: str) -> list[ReceivedEvent]:
    return [
        s.event
        for s in of(seen, case)
        if s.event.name == name and s.event.data["clock_id"] == clock_id
    ]


# The test ---------------------------------------------------------------------------


def test_clocks_end_to_end_through_kafka_and_a_replay_re_emits_the_same_ids(
    platform: Platform,
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    settings = platform.settings()
    decided, undecided = str(uuid.uuid4()), str(uuid.uuid4())
    coordinator = f"ehcco-{uuid.uuid4().hex[:6]}"
    first_app = f"deadlines-e2e-{uuid.uuid4().hex[:8]}"
    platform.start_worker(first_app)
    intake = Intake(platform.bootstrap, settings.intake_topic)
    clocks = TopicReader(platform.bootstrap, settings.clocks_topic)
    expected = Expected()

    # Requests received on Mon 6 Jan 2025; a record that is no CloudEvent among them.
    intake.request(decided, "2025-01-06T10:00:00Z", coordinator)
    intake.producer.send(
        settings.intake_topic, key=decided.encode(), value=b"not an event"
    ).get(timeout=30)
    intake.request(undecided, "2025-01-06T11:00:00Z", coordinator)
    for case in (decided, undecided):
        for event, _, _ in intake.sent[case]:
            expected.event(event)
    seen = clocks.read_until(
        lambda s: all(find(s, c, "ClockSet", "decision") for c in (decided, undecided)),
        "the decision clocks",
    )
    for case in (decided, undecided):
        [clock_set] = find(seen, case, "ClockSet", "decision")
        assert clock_set.data["due_on"] == "2025-02-17"
        assert clock_set.data["started_on"] == "2025-01-06"
    latencies = [
        next(s for s in of(seen, case) if s.event.name == "ClockSet").timestamp_ms
        - intake.sent[case][0][2]
        for case in (decided, undecided)
    ]
    print(f"\nrequest event to ClockSet: {latencies} ms")

    # Time moves on, one round of ticks a day; the decision is recorded on 11 Feb.
    with Ticker(
        platform.bootstrap,
        topic=settings.ticks_topic,
        barrier_topics=settings.domain_topics,
    ) as ticker:
        day = date(2025, 1, 27)
        while day <= date(2025, 2, 20):
            ticker.send(at_london(day))
            expected.tick(at_london(day))
            if day == date(2025, 2, 11):
                agreed = intake.publish(
                    decided, "AssessmentAgreed", {"notified_on": "2025-02-11"}
                )
                expected.event(agreed)
            day += timedelta(days=1)

    # One more request, to a worker long past its start-up, for the latency it shows.
    probe = str(uuid.uuid4())
    intake.request(probe, "2025-02-20T09:00:00Z", coordinator)
    for event, _, _ in intake.sent[probe]:
        expected.event(event)

    def complete(seen: list[Seen]) -> bool:
        return all(
            len(of(seen, case)) >= len(expected.ids[case]) for case in expected.ids
        )

    seen = clocks.read_until(complete, "every clock event the engine gives")
    first_run = {case: [s.event.id for s in of(seen, case)] for case in expected.ids}
    warm = of(seen, probe)[0].timestamp_ms - intake.sent[probe][0][2]
    print(f"request event to ClockSet on a warm worker: {warm} ms")
    assert first_run == {case: ids for case, ids in expected.ids.items()}

    alerts = [
        (e.data["lead_working_days"], e.data["alert_on"])
        for e in find(seen, undecided, "ClockApproaching", "decision")
    ]
    assert alerts == [(10, "2025-02-03"), (5, "2025-02-10"), (0, "2025-02-17")]
    [overdue] = find(seen, undecided, "ClockOverdue", "decision")
    assert overdue.data["overdue_since"] == "2025-02-18"
    assert [
        e.data["lead_working_days"]
        for e in find(seen, decided, "ClockApproaching", "decision")
    ] == [10, 5]
    [met] = find(seen, decided, "ClockMet", "decision")
    assert met.data["stopped_on"] == "2025-02-11"
    assert met.metadata.causation_id == agreed.id
    assert met.metadata.correlation_id == agreed.metadata.correlation_id
    assert not find(seen, decided, "ClockOverdue", "decision")

    # Every case's records, inputs, outputs and state, are on the partition its id
    # hashes to.
    for case in (decided, undecided):
        partition = case_partition(case)
        assert {p for _, p, _ in intake.sent[case]} == {partition}
        assert {s.partition for s in of(seen, case)} == {partition}
    changelog = KafkaConsumer(
        bootstrap_servers=platform.bootstrap, group_id=None, enable_auto_commit=False
    )
    changelog_topic = f"{first_app}-{TABLE_NAME}-changelog"
    tps = [TopicPartition(changelog_topic, p) for p in range(PARTITIONS)]
    changelog.assign(tps)
    changelog.seek_to_beginning(*tps)
    state_partitions: dict[str, set[int]] = defaultdict(set)
    deadline = time.monotonic() + WAIT_S
    while len(state_partitions) < 2 and time.monotonic() < deadline:
        for records in changelog.poll(timeout_ms=200).values():
            for record in records:
                key = record.key.decode()
                if key in (decided, undecided):
                    state_partitions[key].add(record.partition)
    changelog.close()
    assert state_partitions == {
        decided: {case_partition(decided)},
        undecided: {case_partition(undecided)},
    }

    # The junk record went to the processor's dead-letter topic, with its reason.
    dlq = TopicReader(
        platform.bootstrap, dead_letter_topic("deadlines", settings.intake_topic)
    )
    dlq.read_until(lambda s: bool(dlq.raw), "the dead letter")
    letter = dlq.raw[0]
    headers = dict(letter.headers)
    assert letter.value == b"not an event"
    assert headers["dlq_error"] == b"invalid-envelope"
    assert headers["dlq_source_topic"] == settings.intake_topic.encode()
    dlq.close()

    # The read API builds its read model from the topics.
    api_settings = platform.settings(
        app_id=first_app, database_url=f"sqlite:///{tmp_path / 'deadlines.db'}"
    )
    with TestClient(create_app(api_settings), headers=manager_headers) as client:
        deadline = time.monotonic() + WAIT_S
        while True:
            answer = client.get("/summary").json()
            decision = answer["clocks"].get("decision", {})
            timeline = client.get(f"/cases/{undecided}/timeline").json()
            if (
                decision.get("met") == 1
                and decision.get("overdue") == 1
                and timeline.get("coordinator_id") is not None
            ):
                break
            assert time.monotonic() < deadline, f"read model stuck at {answer}"
            time.sleep(0.2)
        assert (decision["set"], decision["open"]) == (3, 1)
        by_id = {clock["clock_id"]: clock for clock in timeline["clocks"]}
        assert by_id["decision"]["status"] == "overdue"
        assert timeline["coordinator_id"] == coordinator
        due = client.get(
            "/due",
            params={
                "from": "2025-02-01",
                "to": "2025-06-30",
                "coordinator_id": coordinator,
            },
        ).json()
        assert {(i["case_id"], i["clock_id"]) for i in due["items"]} >= {
            (undecided, "decision"),
            (decided, "final_plan"),
        }
        assert client.get("/readyz").status_code == 200

    # A fresh app id: an empty table, every topic from offset 0.
    platform.workers[0].stop()
    ends = clocks.ends()
    clocks.read_to(ends)
    replayed_from = len(clocks.seen)
    platform.start_worker(f"deadlines-e2e-{uuid.uuid4().hex[:8]}")
    seen = clocks.read_until(
        lambda s: all(
            len(of(s[replayed_from:], case)) >= len(ids)
            for case, ids in first_run.items()
        ),
        "the replay",
    )
    replay = seen[replayed_from:]
    assert all(s.offset >= ends[s.partition] for s in replay)
    assert {case: [s.event.id for s in of(replay, case)] for case in first_run} == (
        first_run
    )
    assert [s.event.sequence for s in of(replay, undecided)] == list(
        range(1, len(first_run[undecided]) + 1)
    )

    intake.close()
    clocks.close()
