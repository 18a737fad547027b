"""Through the real broker: placement's events on its topic, and its subscribers.

The HTTP app runs with its relay thread on (as ``PLACEMENT_RELAY_ENABLED=true`` starts
it), publishing to a topic of this test's own; a plain kafka-python consumer reads it
back. The subscribers follow intake's and plans' events from topics of the test's own,
published with the kernel's envelope as those services' relays publish them, into a
SQLite and a PostgreSQL store in turn.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from placement_support import SECONDARY, FixedClock, known_case
from prometheus_client import CollectorRegistry

from auth_fixtures import Mint
from devstack.kafka_topics import ensure_topics
from placement.adapters.relay import build_relay, relay_loop
from placement.adapters.subscribers import subscriber_loop
from placement.application.facts import COLLECTION, FactsFollower
from placement.entrypoints.http import create_app
from placement.settings import CONSUMER_NAME, SOURCE, PlacementSettings
from send_schemas import placement as contract
from send_schemas.topics import Topic, dead_letter_topic
from sendkit.auth.scope import stored_case_scope
from sendkit.background import BackgroundLoop
from sendkit.envelope import from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent
from sendkit.store import EventStore, SQLiteEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

# Guards against a hang only; nothing asserts how long anything took.
DEADLINE_S = 120.0
SPECIAL = 145678

PRIVATE = (
    "close to her cousins",
    "cannot meet the sensory needs",
    "the family prefer the special school",
    "the school can meet need",
    "needs met in a mainstream school",
    "the unit has a place",
    "lives 4 miles away",
    "needs a passenger assistant",
    "moving to the college nearer home",
)


def read_to_end(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end {ends}")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close(autocommit=False)


def wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# Every event on the topic -------------------------------------------------------------


@pytest.fixture
def published(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    auth_env: dict[str, str],
    mint: Mint,
) -> Iterator[tuple[TestClient, EventStore, str, list[BackgroundLoop]]]:
    topic = unique_topic(partitions=6)
    store = SQLiteEventStore(tmp_path / "placement.db", SOURCE)
    settings = PlacementSettings(
        database_url="sqlite:///unused.db",
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=True,
        relay_poll_seconds=0.05,
    )
    started: list[BackgroundLoop] = []

    def relay_on_test_topic(
        settings: PlacementSettings, store: EventStore, registry: CollectorRegistry
    ) -> BackgroundLoop:
        relay = build_relay(settings, store, topic=topic, registry=registry)
        loop = relay_loop(relay, settings).start()
        started.append(loop)
        return loop

    app = create_app(
        settings, store=store, clock=FixedClock(), relay_factory=relay_on_test_topic
    )
    # ehcco-77's token: the actor every event must name.
    with TestClient(app, headers=mint("ehcco-77")) as client:
        yield client, store, topic, started
    store.close()


def make_every_event(client: TestClient, store: EventStore) -> set[str]:
    """Cause each placement event type at least once; return the cases."""
    staff = {"X-Correlation-ID": "placement-corr-1"}

    def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = client.post(path, json=body or {}, headers=staff)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    named = known_case(store, curriculum_year=5)  # Year 6 in 2025/26
    declined = known_case(store, curriculum_year=11)  # Year 12: post-16 moves
    post(
        f"/cases/{named}/setting-requests",
        {
            "requested_by": "parent",
            "request_kind": "named_setting",
            "setting_id": SPECIAL,
            "setting_id_kind": "urn",
            "requested_on": "2025-09-15",
            "views": "close to her cousins",
        },
    )
    offered = post(
        f"/cases/{named}/consultations",
        {"setting_id": SPECIAL, "setting_id_kind": "urn", "sent_on": "2025-09-16"},
    )["consultation_id"]
    refused = post(
        f"/cases/{named}/consultations",
        {"setting_id": SECONDARY, "setting_id_kind": "urn", "sent_on": "2025-09-16"},
    )["consultation_id"]
    post(
        f"/cases/{named}/consultations/{offered}/answer",
        {
            "outcome": "place_offered",
            "answered_on": "2025-09-24",
            "reasons": "the unit has a place",
        },
    )
    post(
        f"/cases/{named}/consultations/{refused}/answer",
        {
            "outcome": "declined",
            "answered_on": "2025-09-25",
            "reasons": "cannot meet the sensory needs",
        },
    )
    costs = {"education_pence": 2_000_000, "health_pence": 0, "social_care_pence": 0}
    post(
        f"/cases/{named}/panel-submissions",
        {
            "prepared_on": "2025-09-29",
            "options": [
                {"setting_id": SPECIAL, "setting_id_kind": "urn", **costs},
                {"setting_id": SECONDARY, "setting_id_kind": "urn", **costs},
            ],
            "family_views": "the family prefer the special school",
            "setting_views": "the school can meet need",
        },
    )
    post(
        f"/cases/{declined}/consultations",
        {"setting_id": SECONDARY, "setting_id_kind": "urn", "sent_on": "2025-09-16"},
    )
    post(
        f"/cases/{declined}/panel-submissions",
        {
            "prepared_on": "2025-09-29",
            "options": [{"setting_id": SECONDARY, "setting_id_kind": "urn", **costs}],
        },
    )
    panel_id = post(
        "/panels", {"panel_on": "2025-10-01", "case_ids": [named, declined]}
    )["panel_id"]
    post(
        f"/panels/{panel_id}/cases/{named}/decision",
        {"outcome": "setting_named", "setting_id": SPECIAL, "setting_id_kind": "urn"},
    )
    post(
        f"/panels/{panel_id}/cases/{declined}/decision",
        {"outcome": "declined", "reasons": "needs met in a mainstream school"},
    )
    post(
        f"/panels/{panel_id}/cases/{named}/communication",
        {"communicated_on": "2025-10-02"},
    )
    post(
        f"/cases/{named}/transport-eligibility",
        {"eligible": True, "decided_on": "2025-10-03", "reasons": "lives 4 miles away"},
    )
    post(
        f"/cases/{named}/transport-referral",
        {"referred_on": "2025-10-03", "notes": "needs a passenger assistant"},
    )
    post(
        f"/cases/{declined}/post16-moves",
        {"move_on": "2026-04-13", "note": "moving to the college nearer home"},
    )
    post("/phase-transfers/2026/identify")
    return {named, declined}


def test_every_placement_event_reaches_the_topic_with_only_the_contracts_fields(
    published: tuple[TestClient, EventStore, str, list[BackgroundLoop]],
    kafka_bootstrap: str,
) -> None:
    client, store, topic, started = published
    cases = make_every_event(client, store)
    (relay,) = started
    checkpoint = f"relay:{topic}"
    wait_for(
        lambda: store.get_checkpoint(checkpoint) >= store.last_position(),
        "the relay to publish every event",
    )

    records = read_to_end(kafka_bootstrap, topic)

    stored = {event.id: event for event in store.read_all()}
    assert len(records) == len(stored) == 17
    seen_types = set()
    for record in records:
        event = from_kafka(record)
        model = contract.EVENTS_BY_TYPE[event.type]
        seen_types.add(event.type)

        # Exactly the contract's fields, valid under the producing (strict) model.
        payload = json.loads(record.value)
        assert set(payload) == set(model.model_fields), event.type
        model.model_validate(payload)
        assert payload == stored[event.id].data

        # The envelope: key and subject are the case, metadata came from the request.
        assert record.key.decode() == event.subject == payload["case_id"]
        assert event.subject in cases
        assert event.source == SOURCE
        assert event.metadata.actor == "ehcco-77"
        assert event.metadata.correlation_id == "placement-corr-1"
        assert event.sequence == stored[event.id].version

        # Nothing private anywhere in the record.
        wire = record.value + b"".join(value or b"" for _, value in record.headers)
        for secret in PRIVATE:
            assert secret.encode() not in wire, (event.type, secret)
    assert seen_types == {model.EVENT_TYPE for model in contract.EVENT_MODELS}
    assert relay.is_alive()


# Following intake and plans -----------------------------------------------------------


class Publisher:
    """Publishes another service's events with the kernel's envelope, as its relay."""

    def __init__(self, bootstrap: str, owner: str) -> None:
        self.owner = owner
        self.producer = KafkaProducer(bootstrap_servers=bootstrap)
        self.versions: dict[str, int] = {}

    def publish(self, topic: str, name: str, data: dict[str, Any]) -> RecordedEvent:
        case_id = data["case_id"]
        self.versions[case_id] = self.versions.get(case_id, 0) + 1
        event = RecordedEvent(
            id=str(uuid.uuid4()),
            stream_id=case_id,
            version=self.versions[case_id],
            position=0,
            type=f"send.{self.owner}.{name}.v1",
            source=f"/send/{self.owner}",
            time=datetime.now(UTC),
            data=data,
            metadata=Metadata(actor="ehcco-8"),
        )
        record = to_kafka(event)
        self.producer.send(
            topic, key=record.key, value=record.value, headers=record.headers
        ).get(timeout=30)
        return event

    def raw(self, topic: str, key: bytes, value: bytes) -> None:
        self.producer.send(topic, key=key, value=value).get(timeout=30)

    def close(self) -> None:
        self.producer.close()


def test_the_subscribers_keep_each_cases_facts_once_and_set_aside_bad_records(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    store: EventStore,
) -> None:
    intake_topic, plans_topic = unique_topic(partitions=3), unique_topic(partitions=3)
    dead_letters = dead_letter_topic(CONSUMER_NAME, plans_topic)
    ensure_topics(
        kafka_bootstrap,
        [Topic(dead_letters, owner=CONSUMER_NAME, consumers=("test",), partitions=1)],
    )
    intake, plans = (
        Publisher(kafka_bootstrap, "intake"),
        Publisher(kafka_bootstrap, "plans"),
    )
    case_id = str(uuid.uuid4())

    def facts() -> dict[str, Any] | None:
        with store.transaction() as tx:
            return tx.get_document(COLLECTION, case_id)

    registries: dict[str, CollectorRegistry] = {}

    def follow(group: str) -> list[BackgroundLoop]:
        settings = PlacementSettings(
            database_url="sqlite:///unused.db",
            kafka_bootstrap_servers=kafka_bootstrap,
            consumer_group=group,
        )
        registries.update(
            {topic: CollectorRegistry() for topic in (intake_topic, plans_topic)}
        )
        return [
            subscriber_loop(
                settings, store, FactsFollower(), topic, registry=registries[topic]
            ).start()
            for topic in (intake_topic, plans_topic)
        ]

    def duplicates(topic: str) -> float:
        found = registries[topic].get_sample_value(
            "sendkit_subscriber_messages_total",
            {"consumer": CONSUMER_NAME, "topic": topic, "outcome": "duplicate"},
        )
        return found or 0.0

    loops: list[BackgroundLoop] = []
    try:
        intake.publish(
            intake_topic,
            "RequestReceived",
            {
                "case_id": case_id,
                "requester_type": "parent",
                "channel": "portal",
                "received_at": "2025-01-06T09:30:00Z",
                "school_urn": 123456,
                "curriculum_year": 5,
            },
        )
        intake.publish(
            intake_topic,
            "CoordinatorAssigned",
            {"case_id": case_id, "coordinator_id": "ehcco-8"},
        )
        plans.publish(
            plans_topic,
            "PlanIssued",
            {
                "case_id": case_id,
                "issued_on": "2025-05-26",
                "setting_urn": 123456,
                "setting_type": "mainstream_maintained",
                "start_date": "2025-06-02",
            },
        )
        plans.raw(plans_topic, case_id.encode(), b"not a cloudevent")
        plans.publish(
            plans_topic,
            "PlanAmended",
            {
                "case_id": case_id,
                "issued_on": "2026-01-20",
                "changes": ["I"],
                "setting_urn": SECONDARY,
                "setting_type": "mainstream_academy",
            },
        )

        loops = follow(unique_name("placement"))

        def all_followed() -> bool:
            found = facts() or {}
            return (
                len(found.get("namings", ())) == 2 and found.get("curriculum_year") == 5
            )

        wait_for(all_followed, "the facts of intake's and plans' events")
        for loop in loops:
            loop.stop()
        first = facts()

        # A new group replays both topics from offset 0: every id is known already.
        loops = follow(unique_name("placement-replay"))
        wait_for(
            lambda: duplicates(intake_topic) == 2 and duplicates(plans_topic) == 2,
            "the replay to meet every event again",
        )
        dead = read_until_count(kafka_bootstrap, dead_letters, 2)
    finally:
        for loop in loops:
            loop.stop()
        intake.close()
        plans.close()

    assert first is not None
    assert first["curriculum_year"] == 5
    assert first["year_recorded_in"] == 2024
    assert first["plan_status"] == "issued"
    assert [n["setting_urn"] for n in first["namings"]] == [123456, SECONDARY]
    assert facts() == first
    # The coordinator and school access control reads, kept once across the replay.
    scope = stored_case_scope(store)(case_id)
    assert (scope.coordinator_id, scope.school_urns) == ("ehcco-8", frozenset({123456}))
    assert store.read_all() == []  # following others' events records no events
    # The unreadable record went aside on each run, byte for byte, with the reason.
    assert [record.value for record in dead] == [b"not a cloudevent"] * 2
    headers = dict(dead[0].headers)
    assert headers["dlq_consumer"] == CONSUMER_NAME.encode()
    assert headers["dlq_source_topic"] == plans_topic.encode()


def read_until_count(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Any] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} did not get {count} records")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close(autocommit=False)
    return records
