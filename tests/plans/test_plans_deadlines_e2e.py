"""A case carried from intake through plans to its clocks, over the real broker.

Intake's app (with its relay), plans' app (with its subscriber and relay) and the
deadlines worker as its own process (``python -m deadlines worker``) run on topics of
this test's own (``DEADLINES_TOPIC_PREFIX``). A request received at intake on Fri 13
Sep 2024 is agreed for assessment; plans opens the assessment from intake's event, and
through plans' HTTP API advice is requested and received, a draft is served on Mon 6
Jan 2025 and the final plan issued on Fri 31 Jan 2025, the last day of its 20 weeks.
The clock events show the advice met, the comment window of the draft, the final plan
met on its due date, and the first annual review due by Fri 30 Jan 2026, the worked
example of STATUTORY_CLOCKS.md.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from plans_support import NOW, final_plan_body
from prometheus_client import CollectorRegistry

from deadlines.settings import DeadlinesSettings
from deadlines_worker import DeadlinesWorker
from devstack.kafka_topics import ensure_topics
from intake.adapters.relay import RelayThread
from intake.adapters.relay import build_relay as build_intake_relay
from intake.entrypoints.http import create_app as create_intake_app
from intake.settings import SOURCE as INTAKE_SOURCE
from intake.settings import IntakeSettings
from plans.adapters.relay import build_relay, relay_loop
from plans.adapters.subscriber import subscriber_loop
from plans.entrypoints.http import create_app
from plans.settings import SOURCE, PlansSettings
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.background import BackgroundLoop
from sendkit.envelope import ReceivedEvent, from_kafka
from sendkit.store import EventStore, SQLiteEventStore
from sendkit.subscriber import Handler

# Guards against a hang only; nothing asserts how long anything took.
WAIT_S = 120.0


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

    def wait_for(
        self, what: str, found: Callable[[list[ReceivedEvent]], bool]
    ) -> list[ReceivedEvent]:
        deadline = time.monotonic() + WAIT_S
        while not found(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {what} among {[(e.name, e.data['clock']) for e in self.seen]}"
                )
            for records in self.consumer.poll(timeout_ms=200).values():
                self.seen.extend(from_kafka(record) for record in records)
        return self.seen

    def close(self) -> None:
        self.consumer.close()


def named(seen: list[ReceivedEvent], name: str, clock: str) -> list[ReceivedEvent]:
    return [e for e in seen if e.name == name and e.data["clock"] == clock]


@dataclass
class Platform:
    intake: TestClient
    plans: TestClient
    plans_store: EventStore
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
    prefix = f"plans{uuid.uuid4().hex[:8]}."
    deadlines = DeadlinesSettings(topic_prefix=prefix)
    inputs = [*deadlines.domain_topics, deadlines.ticks_topic]
    names = [
        *inputs,
        deadlines.clocks_topic,
        *(dead_letter_topic("deadlines", name) for name in inputs),
        dead_letter_topic("deadlines", deadlines.clocks_topic),
        dead_letter_topic("plans", deadlines.intake_topic),
    ]
    ensure_topics(
        kafka_bootstrap,
        [Topic(name, owner="test", consumers=("test",)) for name in names],
    )
    intake_topic = deadlines.intake_topic
    plans_topic = deadlines.topic("send.plans.events")

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

        intake_store = SQLiteEventStore(tmp_path / "intake.db", INTAKE_SOURCE)
        stack.callback(intake_store.close)

        def intake_relay(
            settings: IntakeSettings, store: EventStore, registry: CollectorRegistry
        ) -> RelayThread:
            relay = build_intake_relay(
                settings, store, topic=intake_topic, registry=registry
            )
            return RelayThread(relay, poll_interval=0.05).start()

        intake = stack.enter_context(
            TestClient(
                create_intake_app(
                    IntakeSettings(
                        kafka_bootstrap_servers=kafka_bootstrap, relay_enabled=True
                    ),
                    store=intake_store,
                    clock=lambda: NOW,
                    relay_factory=intake_relay,
                ),
                headers=manager_headers,
            )
        )

        plans_store = SQLiteEventStore(tmp_path / "plans.db", SOURCE)
        stack.callback(plans_store.close)

        def plans_relay(
            settings: PlansSettings, store: EventStore, registry: CollectorRegistry
        ) -> BackgroundLoop:
            relay = build_relay(settings, store, topic=plans_topic, registry=registry)
            return relay_loop(relay, settings).start()

        def plans_subscriber(
            settings: PlansSettings,
            store: EventStore,
            handler: Handler,
            registry: CollectorRegistry,
        ) -> BackgroundLoop:
            return subscriber_loop(
                settings, store, handler, topic=intake_topic, registry=registry
            ).start()

        plans = stack.enter_context(
            TestClient(
                create_app(
                    PlansSettings(
                        kafka_bootstrap_servers=kafka_bootstrap,
                        relay_enabled=True,
                        relay_poll_seconds=0.05,
                        subscriber_enabled=True,
                        consumer_group=unique_name("plans"),
                    ),
                    store=plans_store,
                    clock=lambda: NOW,
                    relay_factory=plans_relay,
                    subscriber_factory=plans_subscriber,
                ),
                headers=manager_headers,
            )
        )
        clocks = Clocks(kafka_bootstrap, deadlines.clocks_topic)
        stack.callback(clocks.close)
        try:
            yield Platform(intake, plans, plans_store, clocks, worker)
        finally:
            # Shown by pytest only when the test fails.
            print(f"--- deadlines worker ---\n{worker.tail()}")


def post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_plan_issued_on_time_meets_its_clock_and_sets_the_first_review(
    platform: Platform,
) -> None:
    # Intake: the request arrives on Fri 13 Sep 2024 and is agreed on Fri 25 Oct.
    case_id = post(
        platform.intake,
        "/cases",
        {
            "requester_type": "parent",
            "child_reference": "CHILD-0031",
            "date_of_birth": "2017-02-03",
            "school_urn": 123456,
            "curriculum_year": 2,
            "channel": "portal",
            "received_at": "2024-09-13T09:15:00+01:00",
        },
    )["case_id"]
    post(
        platform.intake,
        f"/cases/{case_id}/decision",
        {"outcome": "agreed", "notified_on": "2024-10-25"},
    )
    deadline = time.monotonic() + WAIT_S
    while not platform.plans_store.read_stream(case_id):
        assert time.monotonic() < deadline, "plans never opened the assessment"
        time.sleep(0.05)

    # Plans: advice, a draft, and the final plan on the last day of the 20 weeks.
    advice_id = post(
        platform.plans,
        f"/cases/{case_id}/advice-requests",
        {"body": "educational_psychology", "received_by_body_on": "2024-10-28"},
    )["advice_id"]
    post(
        platform.plans,
        f"/cases/{case_id}/advice-requests/{advice_id}/receipt",
        {"received_on": "2024-12-02"},
    )
    post(platform.plans, f"/cases/{case_id}/draft-plans", {"served_on": "2025-01-06"})
    post(
        platform.plans,
        f"/cases/{case_id}/final-plan",
        final_plan_body(issued_on="2025-01-31", start_date="2025-01-31"),
    )

    seen = platform.clocks.wait_for(
        "final plan met and annual review set",
        lambda s: bool(
            named(s, "ClockMet", "final_plan") and named(s, "ClockSet", "annual_review")
        ),
    )
    mine = [e for e in seen if e.subject == case_id]
    assert {e.subject for e in seen} == {case_id}

    [final_set] = named(mine, "ClockSet", "final_plan")
    [final_met] = named(mine, "ClockMet", "final_plan")
    assert final_set.data["due_on"] == "2025-01-31"
    assert final_met.data["stopped_on"] == "2025-01-31"
    assert final_met.data["stopped_by"] == "send.plans.PlanIssued.v1"

    [review] = named(mine, "ClockSet", "annual_review")
    assert review.data["started_on"] == "2025-01-31"
    assert review.data["due_on"] == "2026-01-30"

    [advice_set] = named(mine, "ClockSet", "advice")
    [advice_met] = named(mine, "ClockMet", "advice")
    assert advice_set.data["due_on"] == "2024-12-09"
    assert advice_met.data["stopped_on"] == "2024-12-02"

    [window] = named(mine, "ClockSet", "draft_comments")
    assert window.data["due_on"] == "2025-01-20"
    assert window.data["earliest_action_on"] == "2025-01-21"

    # No clock was ever late or overdue for this case.
    assert not [e for e in mine if e.name in ("ClockLate", "ClockOverdue")]
