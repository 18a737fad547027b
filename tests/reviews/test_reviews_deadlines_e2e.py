"""Reviews and the deadlines processor end to end, through the real broker.

A plans record (``PlanIssued``, as the plans relay writes it) reaches both the reviews
app's subscriber, which starts the case's review cycle, and the deadlines worker
(``python -m deadlines worker``, a process of its own on topics of this test's own,
``DEADLINES_TOPIC_PREFIX``). Staff then carry two reviews through the reviews HTTP API;
its relay thread publishes them, and the clock events the worker derives must be the
worked examples of STATUTORY_CLOCKS.md: a meeting on Wed 4 Mar 2026 has its papers due
Wed 18 Feb, its report Wed 18 Mar, its decision Wed 1 Apr and its final amended plan
Wed 27 May at the latest (the 12-week cap binds for an amendment notice sent on
8 Apr); with the notice sent on Wed 18 Mar the final amended plan is due Wed 13 May.
A second worker with a fresh app id then replays every topic from offset 0 and must
publish the very same clock event ids.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry
from reviews_kafka_support import DEADLINE_S, foreign_event, produce, wait_for
from reviews_support import FixedClock, arrange_body, new_case_id

from deadlines.settings import DeadlinesSettings
from deadlines_worker import DeadlinesWorker
from devstack.kafka_topics import ensure_topics
from reviews.adapters.relay import build_relay, relay_loop
from reviews.adapters.subscribers import subscriber_loop
from reviews.application.service import ReviewsService
from reviews.entrypoints.http import create_app
from reviews.settings import SOURCE, ReviewsSettings
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.background import BackgroundLoop
from sendkit.envelope import InvalidEnvelope, ReceivedEvent, from_kafka
from sendkit.store import EventStore, SQLiteEventStore

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)

PLAN_ISSUED = {
    "issued_on": "2025-03-10",
    "setting_urn": 123456,
    "setting_type": "mainstream_maintained",
    "start_date": "2025-04-22",
}


@dataclass
class Platform:
    bootstrap: str
    prefix: str
    settings: DeadlinesSettings
    workers: list[DeadlinesWorker] = field(default_factory=list)

    def start_worker(self) -> DeadlinesWorker:
        worker = DeadlinesWorker(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "DEADLINES_APP_ID": f"reviews-e2e-{uuid.uuid4().hex[:8]}",
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
    prefix = f"rv{uuid.uuid4().hex[:8]}."
    settings = DeadlinesSettings(topic_prefix=prefix)
    inputs = [*settings.domain_topics, settings.ticks_topic]
    names = [
        *inputs,
        settings.clocks_topic,
        *(dead_letter_topic("deadlines", name) for name in inputs),
        dead_letter_topic("deadlines", settings.clocks_topic),
        dead_letter_topic("reviews", settings.topic("send.plans.events")),
        dead_letter_topic("reviews", settings.topic("send.intake.events")),
    ]
    ensure_topics(
        kafka_bootstrap,
        [
            Topic(name, owner="test", consumers=("test",), partitions=PARTITIONS)
            for name in names
        ],
    )
    found = Platform(kafka_bootstrap, prefix, settings)
    try:
        yield found
    finally:
        for number, worker in enumerate(found.workers, start=1):
            worker.stop()
            print(f"--- deadlines worker {number} ---\n{worker.tail()}")


class Clocks:
    """The clock events of the test's clocks topic, read as they arrive."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.seen: list[ReceivedEvent] = []

    def read_until(
        self, what: str, done: Callable[[list[ReceivedEvent]], bool]
    ) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not done(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            for records in self.consumer.poll(timeout_ms=200).values():
                for record in records:
                    try:
                        self.seen.append(from_kafka(record))
                    except InvalidEnvelope:
                        continue

    def due_dates(self, case_id: str, clock: str) -> list[str]:
        """Each clock of that rule's latest due date, in the order they were set."""
        latest: dict[str, str] = {}
        for event in self.seen:
            if event.subject != case_id or event.data.get("clock") != clock:
                continue
            if event.name in ("ClockSet", "ClockDueDateChanged"):
                latest[event.data["clock_id"]] = event.data["due_on"]
        return list(latest.values())

    def ids(self, case_ids: set[str]) -> list[str]:
        return [event.id for event in self.seen if event.subject in case_ids]

    def close(self) -> None:
        self.consumer.close()


def carry_review(
    client: TestClient, case_id: str, *, notified_on: str
) -> dict[str, Any]:
    """Arrange, send papers, hold, receive the report, decide to amend."""
    review_id = client.post(f"/cases/{case_id}/reviews", json=arrange_body()).json()[
        "review_id"
    ]
    base = f"/cases/{case_id}/reviews/{review_id}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("papers", {"sent_on": "2026-02-17"}),
        (
            "meeting",
            {
                "held_on": "2026-03-04",
                "attendee_roles": ["parent", "senco", "ehc_coordinator"],
                "child_views_gathered": True,
            },
        ),
        ("report", {"received_on": "2026-03-12"}),
        (
            "decision",
            {
                "decision": "amend",
                "notified_on": notified_on,
                "proposed_amendments": "Synthetic: more support in section F",
            },
        ),
    ]
    answer: dict[str, Any] = {}
    for path, body in steps:
        response = client.post(f"{base}/{path}", json=body)
        assert response.status_code == 200, (path, response.text)
        answer = response.json()
    return answer


def test_a_reviews_clocks_are_the_worked_examples_and_a_replay_repeats_them(
    platform: Platform,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    deadlines = platform.settings
    plans_topic = deadlines.topic("send.plans.events")
    intake_topic = deadlines.topic("send.intake.events")
    reviews_topic = deadlines.topic("send.reviews.events")
    capped, notice_early = new_case_id(), new_case_id()
    platform.start_worker()
    clocks = Clocks(platform.bootstrap, deadlines.clocks_topic)

    # The plans service issues both final plans on Mon 10 Mar 2025.
    produce(
        platform.bootstrap,
        plans_topic,
        [
            foreign_event("plans", "PlanIssued", case_id, PLAN_ISSUED)[1]
            for case_id in (capped, notice_early)
        ],
    )

    settings = ReviewsSettings(
        kafka_bootstrap_servers=platform.bootstrap,
        consumer_group=unique_name("reviews"),
        relay_enabled=True,
        relay_poll_seconds=0.05,
        subscribers_enabled=True,
    )
    store = SQLiteEventStore(tmp_path / "reviews.db", SOURCE)

    def relay(
        settings: ReviewsSettings, store: EventStore, registry: CollectorRegistry
    ) -> BackgroundLoop:
        built = build_relay(settings, store, topic=reviews_topic, registry=registry)
        return relay_loop(built, settings.relay_poll_seconds).start()

    def subscribers(
        settings: ReviewsSettings,
        store: EventStore,
        service: ReviewsService,
        registry: CollectorRegistry,
    ) -> list[BackgroundLoop]:
        return [
            subscriber_loop(
                settings,
                store,
                service,
                owner,
                topic=topic,
                registry=registry,
                poll_timeout_ms=200,
            ).start()
            for owner, topic in (("plans", plans_topic), ("intake", intake_topic))
        ]

    app = create_app(
        settings,
        store=store,
        clock=FixedClock(NOW),
        relay_factory=relay,
        subscribers_factory=subscribers,
    )
    with TestClient(app, headers=manager_headers) as client:
        wait_for(
            "the reviews subscriber to start both cycles",
            lambda: all(
                client.get(f"/cases/{case_id}").status_code == 200
                for case_id in (capped, notice_early)
            ),
        )
        first = client.get(f"/cases/{capped}").json()
        assert first["next_review_due_on"] == "2026-03-09"

        answers = {
            capped: carry_review(client, capped, notified_on="2026-04-08"),
            notice_early: carry_review(client, notice_early, notified_on="2026-03-18"),
        }
        assert {a["next_review_due_on"] for a in answers.values()} == {"2027-03-03"}

        def derived(seen: list[ReceivedEvent]) -> bool:
            return all(
                clocks.due_dates(case_id, "final_amended_plan")
                and len(clocks.due_dates(case_id, "annual_review")) == 2
                for case_id in (capped, notice_early)
            )

        clocks.read_until("the clocks of both reviews", derived)

    store.close()
    for case_id in (capped, notice_early):
        # A plan first issued on 10 Mar 2025 is reviewed by 9 Mar 2026; the review
        # held on 4 Mar 2026 starts the next 12 months.
        assert clocks.due_dates(case_id, "annual_review") == [
            "2026-03-09",
            "2027-03-03",
        ]
        assert clocks.due_dates(case_id, "review_notice") == ["2026-02-18"]
        assert clocks.due_dates(case_id, "review_report") == ["2026-03-18"]
        assert clocks.due_dates(case_id, "review_decision") == ["2026-04-01"]
    assert clocks.due_dates(capped, "final_amended_plan") == ["2026-05-27"]
    assert clocks.due_dates(notice_early, "final_amended_plan") == ["2026-05-13"]
    assert clocks.due_dates(notice_early, "amendment_comments") == ["2026-04-01"]

    def names(case_id: str) -> set[tuple[str, str]]:
        return {(e.name, e.data["clock"]) for e in clocks.seen if e.subject == case_id}

    assert ("ClockMet", "review_notice") in names(capped)
    assert ("ClockMet", "review_report") in names(capped)
    assert ("ClockMet", "annual_review") in names(capped)
    assert ("ClockLate", "review_decision") in names(capped)
    assert ("ClockMet", "review_decision") in names(notice_early)

    # A second worker with a fresh app id replays every topic from offset 0.
    ours = {capped, notice_early}
    first_run = sorted(clocks.ids(ours))
    platform.start_worker()
    clocks.read_until(
        "the replay to re-emit every clock event",
        lambda seen: len(clocks.ids(ours)) >= 2 * len(first_run),
    )
    clocks.close()
    replayed = sorted(clocks.ids(ours))
    assert replayed == sorted(first_run * 2)
