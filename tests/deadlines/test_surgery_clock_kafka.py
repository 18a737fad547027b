"""The Local Area Surgery target over the real broker: intake's app and relay, and the
deadlines worker as its own process (``python -m deadlines worker``).

On topics of this test's own (``DEADLINES_TOPIC_PREFIX``), three requests received on
Mon 6 Jan 2025 (the target due Mon 17 Feb) are presented to the surgery through
intake's HTTP API: on Mon 10 Feb (met), on Mon 24 Feb (late, 7 days), and on Mon 24
Feb then corrected to Fri 14 Feb (late, then met). Every clock event of the target is
marked local, not statutory, and not escalated.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from deadlines.settings import DeadlinesSettings
from deadlines_worker import DeadlinesWorker
from devstack.kafka_topics import ensure_topics
from intake.adapters.relay import RelayThread
from intake.adapters.relay import build_relay as build_intake_relay
from intake.entrypoints.http import create_app as create_intake_app
from intake.settings import SOURCE as INTAKE_SOURCE
from intake.settings import IntakeSettings
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.envelope import ReceivedEvent, from_kafka
from sendkit.store import EventStore, SQLiteEventStore

# Guards against a hang only; nothing asserts how long anything took.
WAIT_S = 120.0
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
CLOCK = "local_area_surgery"
PRESENTED = "send.intake.RequestPresentedAtSurgery.v1"


class Clocks:
    """The clock events on the deadlines topic, read from its start."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.seen: list[ReceivedEvent] = []

    def surgery(self, case_id: str) -> list[ReceivedEvent]:
        return [
            e for e in self.seen if e.subject == case_id and e.data["clock"] == CLOCK
        ]

    def wait_for(
        self, what: str, found: Callable[[Clocks], bool]
    ) -> list[ReceivedEvent]:
        deadline = time.monotonic() + WAIT_S
        while not found(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {what} among {[(e.name, e.data['clock']) for e in self.seen]}"
                )
            for records in self.consumer.poll(timeout_ms=200).values():
                self.seen.extend(from_kafka(record) for record in records)
        return self.seen

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Platform:
    intake: TestClient
    clocks: Clocks
    worker: DeadlinesWorker


@pytest.fixture
def platform(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[Platform]:
    prefix = f"surgery{uuid.uuid4().hex[:8]}."
    deadlines = DeadlinesSettings(topic_prefix=prefix)
    inputs = [*deadlines.domain_topics, deadlines.ticks_topic]
    names = [
        *inputs,
        deadlines.clocks_topic,
        *(dead_letter_topic("deadlines", name) for name in inputs),
        dead_letter_topic("deadlines", deadlines.clocks_topic),
    ]
    ensure_topics(
        kafka_bootstrap,
        [Topic(name, owner="test", consumers=("test",)) for name in names],
    )
    intake_topic = deadlines.intake_topic

    with contextlib.ExitStack() as stack:
        worker = DeadlinesWorker(
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "DEADLINES_APP_ID": unique_name("deadlines"),
                "DEADLINES_TOPIC_PREFIX": prefix,
                "LOG_FORMAT": "json",
            }
        )
        stack.callback(worker.stop)
        worker.wait_ready()

        store = SQLiteEventStore(tmp_path / "intake.db", INTAKE_SOURCE)
        stack.callback(store.close)

        def relay(
            settings: IntakeSettings, store: EventStore, registry: CollectorRegistry
        ) -> RelayThread:
            built = build_intake_relay(
                settings, store, topic=intake_topic, registry=registry
            )
            return RelayThread(built, poll_interval=0.05).start()

        intake = stack.enter_context(
            TestClient(
                create_intake_app(
                    IntakeSettings(
                        kafka_bootstrap_servers=kafka_bootstrap, relay_enabled=True
                    ),
                    store=store,
                    clock=lambda: NOW,
                    relay_factory=relay,
                ),
                headers=manager_headers,
            )
        )
        clocks = Clocks(kafka_bootstrap, deadlines.clocks_topic)
        stack.callback(clocks.close)
        try:
            yield Platform(intake, clocks, worker)
        finally:
            # Shown by pytest only when the test fails.
            print(f"--- deadlines worker ---\n{worker.tail()}")


def post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


def receive(client: TestClient, reference: str) -> str:
    case_id: str = post(
        client,
        "/cases",
        {
            "requester_type": "parent",
            "child_reference": reference,
            "date_of_birth": "2016-05-14",
            "school_urn": 123456,
            "curriculum_year": 3,
            "channel": "email",
            "received_at": "2025-01-06T09:30:00Z",
        },
    )["case_id"]
    return case_id


def last_final(clocks: Clocks, case_id: str) -> ReceivedEvent | None:
    final = [e for e in clocks.surgery(case_id) if e.name in ("ClockMet", "ClockLate")]
    return final[-1] if final else None


def test_intakes_presentation_stops_the_local_surgery_target(
    platform: Platform,
) -> None:
    intake, clocks = platform.intake, platform.clocks
    in_time = receive(intake, "CHILD-S1")
    late = receive(intake, "CHILD-S2")
    corrected = receive(intake, "CHILD-S3")

    post(
        intake, f"/cases/{in_time}/surgery-presentation", {"presented_on": "2025-02-10"}
    )
    post(intake, f"/cases/{late}/surgery-presentation", {"presented_on": "2025-02-24"})
    post(
        intake,
        f"/cases/{corrected}/surgery-presentation",
        {"presented_on": "2025-02-24"},
    )
    clocks.wait_for(
        "late surgery target of the case to correct",
        lambda c: (e := last_final(c, corrected)) is not None and e.name == "ClockLate",
    )
    post(
        intake,
        f"/cases/{corrected}/corrections",
        {
            "field": "presented_on",
            "new_value": "2025-02-14",
            "reason": "Synthetic: the surgery's minutes give the 14th.",
        },
    )
    clocks.wait_for(
        "final state of every surgery target",
        lambda c: (
            all(last_final(c, case) is not None for case in (in_time, late))
            and (e := last_final(c, corrected)) is not None
            and e.name == "ClockMet"
        ),
    )

    met = last_final(clocks, in_time)
    assert met is not None
    assert (met.name, met.data["stopped_on"]) == ("ClockMet", "2025-02-10")
    assert met.data["stopped_by"] == PRESENTED
    was_late = last_final(clocks, late)
    assert was_late is not None
    assert (was_late.name, was_late.data["days_late"]) == ("ClockLate", 7)
    now_met = last_final(clocks, corrected)
    assert now_met is not None
    assert now_met.data["stopped_on"] == "2025-02-14"
    for case_id in (in_time, late, corrected):
        events = clocks.surgery(case_id)
        assert events[0].name == "ClockSet"
        assert events[0].data["due_on"] == "2025-02-17"
        assert {
            (e.data["statutory"], e.data["authority"], e.data["escalate"])
            for e in events
        } == {(False, "local", False)}
