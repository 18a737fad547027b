"""Placement and the deadlines processor end to end, through the real broker.

Everything runs on topics of this test's own (``DEADLINES_TOPIC_PREFIX``, and the same
prefix for placement's relay and subscribers), so nothing else on the broker moves the
processor's clock. Intake's and plans' events are published as their relays publish
them; placement follows them, its HTTP commands record consultations and identify the
2026 phase-transfer cohort, its relay publishes; the deadlines worker
(``python -m deadlines worker``) runs as its own process; the test sends rounds of
ticks with the ticker, at the London dates it chooses, and reads the clock events.

The checks: a consultation answered within 15 days meets its clock and one never
answered is overdue after the 15th day; the cohort's deadlines are those of
``STATUTORY_CLOCKS.md`` (Year 6 to secondary in September 2026: by Saturday 14 February
2026, act by Friday 13 February; Year 11 to college: by Monday 30 March 2026); a plan
amended in time meets its clock, and the ones never amended are overdue, as placement's
own cohort list says too.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from placement_support import SECONDARY, FixedClock
from prometheus_client import CollectorRegistry

from deadlines.entrypoints.worker import READY_MESSAGE
from deadlines.settings import DeadlinesSettings
from deadlines.ticker import Ticker
from devstack.kafka_topics import ensure_topics
from placement.adapters.relay import build_relay, relay_loop
from placement.adapters.subscribers import subscriber_loop
from placement.application.facts import COLLECTION
from placement.entrypoints.http import create_app
from placement.settings import CONSUMER_NAME, SOURCE, PlacementSettings
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.background import BackgroundLoop
from sendkit.calendar import LONDON
from sendkit.envelope import ReceivedEvent, from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent
from sendkit.store import EventStore, SQLiteEventStore

# Guards against a hang only; nothing asserts how long anything took.
READY_TIMEOUT_S = 180.0
WAIT_S = 120.0
STOP_TIMEOUT_S = 20.0

COLLEGE_URN = 130456
"""A further education college's URN (colleges have URNs as well as UKPRNs)."""


# The worker process -------------------------------------------------------------------


class Worker:
    """``python -m deadlines worker`` in its own process group, its output kept."""

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
                    "the deadlines worker did not get ready; its output ends:\n"
                    + "\n".join(self.lines[-40:])
                )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT_S)
        self._reader.join(5)


# The platform -------------------------------------------------------------------------


@dataclass
class Platform:
    """The broker, the test's topics, the worker, placement and its loops."""

    bootstrap: str
    deadlines: DeadlinesSettings
    placement: PlacementSettings
    store: EventStore
    clock: FixedClock
    client: TestClient
    loops: list[BackgroundLoop] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return self.deadlines.topic(name)


@pytest.fixture
def platform(
    kafka_bootstrap: str,
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[Platform]:
    prefix = f"placement-e2e-{uuid.uuid4().hex[:8]}."
    deadlines = DeadlinesSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix
    )
    inputs = [*deadlines.domain_topics, deadlines.ticks_topic]
    names = [
        *inputs,
        deadlines.clocks_topic,
        *(dead_letter_topic("deadlines", name) for name in inputs),
        dead_letter_topic("deadlines", deadlines.clocks_topic),
        *(
            dead_letter_topic(CONSUMER_NAME, deadlines.topic(name))
            for name in ("send.intake.events", "send.plans.events")
        ),
    ]
    ensure_topics(
        kafka_bootstrap,
        [
            Topic(name, owner="test", consumers=("test",), partitions=PARTITIONS)
            for name in names
        ],
    )
    worker = Worker(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DEADLINES_APP_ID": f"deadlines-{prefix}app",
            "DEADLINES_TOPIC_PREFIX": prefix,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
        }
    )
    store = SQLiteEventStore(tmp_path / "placement.db", SOURCE)
    clock = FixedClock(at_london(date(2025, 9, 15)))
    settings = PlacementSettings(
        database_url="sqlite:///unused.db",
        kafka_bootstrap_servers=kafka_bootstrap,
        consumer_group=f"placement-{prefix}group",
        relay_enabled=True,
        relay_poll_seconds=0.05,
        subscribers_enabled=True,
    )
    loops: list[BackgroundLoop] = []

    def relay_on_test_topic(
        settings: PlacementSettings, store: EventStore, registry: CollectorRegistry
    ) -> BackgroundLoop:
        relay = build_relay(
            settings, store, topic=deadlines.topic("send.placement.events")
        )
        loops.append(relay_loop(relay, settings).start())
        return loops[-1]

    def subscribers_on_test_topics(
        settings: PlacementSettings,
        store: EventStore,
        handler: Any,
        registry: CollectorRegistry,
    ) -> list[BackgroundLoop]:
        started = [
            subscriber_loop(
                settings,
                store,
                handler,
                deadlines.topic(name),
                registry=CollectorRegistry(),
            ).start()
            for name in ("send.intake.events", "send.plans.events")
        ]
        loops.extend(started)
        return started

    app = create_app(
        settings,
        store=store,
        clock=clock,
        relay_factory=relay_on_test_topic,
        subscribers_factory=subscribers_on_test_topics,
    )
    try:
        worker.wait_ready()
        with TestClient(app, headers=manager_headers) as client:
            yield Platform(
                kafka_bootstrap, deadlines, settings, store, clock, client, loops
            )
    finally:
        worker.stop()
        store.close()
        # Shown by pytest only when the test fails.
        print("--- deadlines worker output ---")
        print("\n".join(worker.lines[-60:]))


# Publishing and reading ---------------------------------------------------------------


def at_london(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, clock_time(hour), LONDON).astimezone(UTC)


class Publisher:
    """Publishes intake's or plans' events with the kernel's envelope, as relays do."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap)
        self.versions: dict[tuple[str, str], int] = {}

    def publish(self, topic: str, owner: str, name: str, data: dict[str, Any]) -> None:
        case_id = data["case_id"]
        version = self.versions.get((owner, case_id), 0) + 1
        self.versions[(owner, case_id)] = version
        event = RecordedEvent(
            id=str(uuid.uuid4()),
            stream_id=case_id,
            version=version,
            position=0,
            type=f"send.{owner}.{name}.v1",
            source=f"/send/{owner}",
            time=datetime.now(UTC),
            data=data,
            metadata=Metadata(actor="ehcco-e2e"),
        )
        record = to_kafka(event)
        self.producer.send(
            topic, key=record.key, value=record.value, headers=record.headers
        ).get(timeout=30)

    def close(self) -> None:
        self.producer.close()


class Clocks:
    """The clock events of the test's deadlines topic, read as they arrive."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.topic = topic
        self.seen: list[ReceivedEvent] = []

    def of(self, case_id: str, clock: str, name: str) -> list[ReceivedEvent]:
        return [
            event
            for event in self.seen
            if event.subject == case_id
            and event.data.get("clock") == clock
            and event.name == name
        ]

    def wait_for(self, case_id: str, clock: str, name: str) -> ReceivedEvent:
        deadline = time.monotonic() + WAIT_S
        while not self.of(case_id, clock, name):
            if time.monotonic() > deadline:
                seen = [(e.subject[:8], e.data.get("clock"), e.name) for e in self.seen]
                raise AssertionError(
                    f"no {name} of clock {clock} for case {case_id} on {self.topic}; "
                    f"seen: {seen}"
                )
            for records in self.consumer.poll(timeout_ms=200).values():
                for record in records:
                    with contextlib.suppress(ValueError):
                        self.seen.append(from_kafka(record))
        return self.of(case_id, clock, name)[0]

    def close(self) -> None:
        self.consumer.close()


def wait_until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# The test -----------------------------------------------------------------------------


def test_consultations_and_the_2026_phase_transfers_on_the_deadlines_clocks(
    platform: Platform,
) -> None:
    client, store, clock = platform.client, platform.store, platform.clock
    intake_topic = platform.topic("send.intake.events")
    plans_topic = platform.topic("send.plans.events")
    publisher = Publisher(platform.bootstrap)
    clocks = Clocks(platform.bootstrap, platform.deadlines.clocks_topic)
    ticker = Ticker(
        platform.bootstrap,
        topic=platform.deadlines.ticks_topic,
        barrier_topics=platform.deadlines.domain_topics,
    )
    try:
        # Intake's requests of January 2025 and plans' issued plans: the years are
        # those at the request (school year 2024), one less than in 2025/26.
        years = {"answered": 3, "unanswered": 3, "secondary": 5, "late": 5}
        years |= {"college": 10, "year9": 8}
        cases = {name: str(uuid.uuid4()) for name in years}
        for name, year in years.items():
            case_id = cases[name]
            publisher.publish(
                intake_topic,
                "intake",
                "RequestReceived",
                {
                    "case_id": case_id,
                    "requester_type": "parent",
                    "channel": "portal",
                    "received_at": "2025-01-06T09:30:00Z",
                    "school_urn": 123456,
                    "curriculum_year": year,
                },
            )
            publisher.publish(
                plans_topic,
                "plans",
                "PlanIssued",
                {
                    "case_id": case_id,
                    "issued_on": "2025-05-26",
                    "setting_urn": 123456,
                    "setting_type": "mainstream_maintained",
                    "start_date": "2025-06-02",
                },
            )

        def known(case_id: str) -> bool:
            with store.transaction() as tx:
                facts = tx.get_document(COLLECTION, case_id)
            return bool(facts and facts.get("plan_status") == "issued")

        wait_until(
            lambda: all(known(case_id) for case_id in cases.values()),
            "placement to follow the requests and plans",
        )

        # Two consultations sent on Monday 15 September 2025: 15 days, to the 30th.
        consultations = {}
        for name in ("answered", "unanswered"):
            response = client.post(
                f"/cases/{cases[name]}/consultations",
                json={
                    "setting_id": SECONDARY,
                    "setting_id_kind": "urn",
                    "sent_on": "2025-09-15",
                },
            )
            assert response.status_code == 201, response.text
            consultations[name] = response.json()["consultation_id"]
        clock.now = at_london(date(2025, 9, 25))
        response = client.post(
            f"/cases/{cases['answered']}/consultations/"
            f"{consultations['answered']}/answer",
            json={"outcome": "place_offered", "answered_on": "2025-09-25"},
        )
        assert response.status_code == 200, response.text

        # The 2026 cohort, identified on Wednesday 1 October 2025.
        clock.now = at_london(date(2025, 10, 1))
        identified = client.post("/phase-transfers/2026/identify").json()
        assert sorted(identified["identified"]) == sorted(
            [cases["secondary"], cases["late"], cases["college"]]
        )

        relay_checkpoint = "relay:" + platform.topic("send.placement.events")
        wait_until(
            lambda: store.get_checkpoint(relay_checkpoint) >= store.last_position(),
            "placement's relay to publish",
        )
        ticker.send(at_london(date(2025, 10, 1), 8))

        # The consultation answered on the 25th met its clock; the other is overdue.
        met = clocks.wait_for(cases["answered"], "school_consultation", "ClockMet")
        assert met.data["due_on"] == "2025-09-30"
        assert met.data["stopped_on"] == "2025-09-25"
        overdue = clocks.wait_for(
            cases["unanswered"], "school_consultation", "ClockOverdue"
        )
        assert overdue.data["due_on"] == "2025-09-30"
        assert overdue.data["overdue_since"] == "2025-10-01"
        assert not clocks.of(cases["answered"], "school_consultation", "ClockOverdue")

        # Each transfer's clock: the dates of STATUTORY_CLOCKS.md.
        for name in ("secondary", "late"):
            school = clocks.wait_for(cases[name], "phase_transfer_school", "ClockSet")
            assert school.data["due_on"] == "2026-02-14"
            assert school.data["act_by"] == "2026-02-13"
            assert school.data["guidance_due_on"] == "2026-02-15"
        college = clocks.wait_for(cases["college"], "phase_transfer_post16", "ClockSet")
        assert college.data["due_on"] == "2026-03-30"
        assert college.data["act_by"] is None
        transfers = ("phase_transfer_school", "phase_transfer_post16")
        assert not [
            event
            for event in clocks.seen
            if event.subject == cases["year9"] and event.data["clock"] in transfers
        ]

        # The plan naming the secondary school is issued on Tuesday 20 January 2026.
        publisher.publish(
            plans_topic,
            "plans",
            "PlanAmended",
            {
                "case_id": cases["secondary"],
                "issued_on": "2026-01-20",
                "changes": ["I"],
                "setting_urn": SECONDARY,
                "setting_type": "mainstream_academy",
            },
        )
        ticker.send(at_london(date(2026, 2, 16), 8))
        named = clocks.wait_for(cases["secondary"], "phase_transfer_school", "ClockMet")
        assert named.data["stopped_on"] == "2026-01-20"
        late = clocks.wait_for(cases["late"], "phase_transfer_school", "ClockOverdue")
        assert late.data["overdue_since"] == "2026-02-15"

        ticker.send(at_london(date(2026, 3, 31), 8))
        college_late = clocks.wait_for(
            cases["college"], "phase_transfer_post16", "ClockOverdue"
        )
        assert college_late.data["overdue_since"] == "2026-03-31"

        # Placement's own list says the same of each child.
        wait_until(
            lambda: (
                known(cases["secondary"])
                and client.get(f"/cases/{cases['secondary']}").json()["facts"][
                    "namings"
                ][-1]["by"]
                == "amended"
            ),
            "placement to follow the amended plan",
        )
        clock.now = at_london(date(2026, 3, 31))
        cohort = client.get("/phase-transfers/2026").json()
        statuses = {row["case_id"]: row["status"] for row in cohort["children"]}
        assert statuses == {
            cases["secondary"]: "named",
            cases["late"]: "overdue",
            cases["college"]: "overdue",
        }
    finally:
        ticker.close()
        clocks.close()
        publisher.close()
