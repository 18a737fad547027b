"""Through the real broker: plans' events on the wire, and its reaction to intake.

The plans app runs with its relay thread (as ``PLANS_RELAY_ENABLED=true`` starts it)
publishing to a topic of this test's own, read back with a plain kafka-python consumer.
For the reaction, intake's own app publishes a request and its agreement to assess on
another topic of the test's own, and plans' subscriber thread (as
``PLANS_SUBSCRIBER_ENABLED=true`` starts it) consumes it through
``sendkit.subscriber.IdempotentSubscriber``, into a SQLite and a PostgreSQL store in
turn.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from plans_support import (
    NOW,
    PERSONAL,
    FixedClock,
    agreement,
    final_plan_body,
    request_received,
    types_of,
)
from prometheus_client import CollectorRegistry

from auth_fixtures import Mint
from devstack.kafka_topics import ensure_topics
from intake.adapters.relay import RelayThread
from intake.adapters.relay import build_relay as build_intake_relay
from intake.entrypoints.http import create_app as create_intake_app
from intake.settings import SOURCE as INTAKE_SOURCE
from intake.settings import IntakeSettings
from plans.adapters.relay import build_relay, relay_loop
from plans.adapters.subscriber import build_subscriber, subscriber_loop
from plans.application import intake_requests
from plans.entrypoints.http import create_app
from plans.settings import SOURCE, PlansSettings
from send_schemas import plans as contract
from send_schemas.topics import Topic, dead_letter_topic
from sendkit.background import BackgroundLoop
from sendkit.envelope import from_kafka
from sendkit.relay import OutboxRelay
from sendkit.store import EventStore, SQLiteEventStore, open_store
from sendkit.subscriber import Handler
from store_backends import (
    DURABLE,
    SQLITE,
    drop_postgres_schema,
    new_postgres_schema,
)

# Guards against a hang only; nothing asserts how long anything took.
DEADLINE_S = 120.0


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


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


@dataclass
class Published:
    client: TestClient
    store: EventStore
    topic: str
    relays: list[OutboxRelay]


@pytest.fixture
def published(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    auth_env: dict[str, str],
    mint: Mint,
) -> Iterator[Published]:
    topic = unique_topic(partitions=6)
    store = SQLiteEventStore(tmp_path / "plans.db", SOURCE)
    settings = PlansSettings(
        database_url="sqlite:///unused.db",
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=True,
        relay_poll_seconds=0.05,
    )
    relays: list[OutboxRelay] = []

    def relay_on_test_topic(
        settings: PlansSettings, store: EventStore, registry: CollectorRegistry
    ) -> BackgroundLoop:
        relay = build_relay(settings, store, topic=topic, registry=registry)
        relays.append(relay)
        return relay_loop(relay, settings).start()

    app = create_app(
        settings, store=store, clock=FixedClock(), relay_factory=relay_on_test_topic
    )
    # ehcco-77's token: the actor every event must name.
    with TestClient(app, headers=mint("ehcco-77")) as client:
        yield Published(client, store, topic, relays)
    store.close()


def make_every_event(published: Published) -> set[str]:
    """Cause each plans event type at least once; return the case ids."""
    client, store = published.client, published.store
    staff = {"X-Correlation-ID": "plans-corr-1"}
    reactions = client.app.state.reactions  # type: ignore[attr-defined]

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body, headers=staff)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    def opened() -> str:
        case_id = str(uuid.uuid4())
        with store.transaction() as tx:
            reactions(request_received(case_id), tx)
            reactions(agreement(case_id), tx)
        return case_id

    planned = opened()
    advice_id = post(
        f"/cases/{planned}/advice-requests",
        {
            "body": "educational_psychology",
            "received_by_body_on": "2025-10-08",
            "professional": "Dr Example Psychologist",
        },
    )["advice_id"]
    post(
        f"/cases/{planned}/time-limit-exceptions",
        {
            "clock": "advice",
            "reason": "a",
            "evidence": "moved following a tenancy change",
            "advice_id": advice_id,
        },
    )
    post(
        f"/cases/{planned}/advice-requests/{advice_id}/receipt",
        {"received_on": "2025-11-10"},
    )
    post(f"/cases/{planned}/draft-plans", {"served_on": "2026-03-02"})
    post(
        f"/cases/{planned}/draft-comments",
        {
            "received_on": "2026-03-09",
            "respondent": "parent",
            "comments": "we would like more speech therapy",
            "preferred_setting_urn": 654321,
            "meeting_requested": True,
        },
    )
    post(f"/cases/{planned}/final-plan", final_plan_body())
    post(
        f"/cases/{planned}/amendment-notices",
        {
            "notice_sent_on": "2026-04-01",
            "proposals": "add weekly physiotherapy to section F",
            "review_id": "0c9e7f4a-1b2d-4c3e-8f5a-6b7c8d9e0f1a",
        },
    )
    post(
        f"/cases/{planned}/amendments",
        {
            "issued_on": "2026-04-20",
            "changes": ["F"],
            "summary": "add weekly physiotherapy to section F",
        },
    )
    post(f"/cases/{planned}/reassessment-requests", {"requested_on": "2026-04-21"})
    post(
        f"/cases/{planned}/reassessment-decision",
        {
            "notified_on": "2026-05-01",
            "agreed": False,
            "reasons": "needs can be met at SEN support",
        },
    )
    post(
        f"/cases/{planned}/transfer-out-notice",
        {
            "learned_on": "2026-05-04",
            "move_on": "2026-05-29",
            "to_council": "Sampleton Borough Council",
        },
    )
    post(f"/cases/{planned}/transfer-out", {"transferred_on": "2026-05-29"})

    refused = opened()
    post(
        f"/cases/{refused}/no-plan-notice",
        {"notified_on": "2026-01-19", "reasons": "needs can be met at SEN support"},
    )

    taken_in = post(
        "/transfers-in",
        {
            "transferred_on": "2026-02-02",
            "from_council": "Exampleshire County Council",
        },
    )["case_id"]
    post(f"/cases/{taken_in}/new-council-notice", {"notified_on": "2026-03-02"})
    post(
        f"/cases/{taken_in}/cessation",
        {"ceased_on": "2026-04-01", "reason": "moved_english_la", "note": "moved"},
    )
    [ceased] = [
        e for e in store.read_stream(taken_in) if e.type.endswith(".PlanCeased.v1")
    ]
    post(
        f"/cases/{taken_in}/corrections",
        {
            "event_id": ceased.id,
            "field": "ceased_on",
            "new_value": "2026-03-31",
            "reason": "moved following a tenancy change",
        },
    )
    return {planned, refused, taken_in}


def test_every_plans_event_reaches_the_topic_with_only_the_contracts_fields(
    published: Published, kafka_bootstrap: str
) -> None:
    cases = make_every_event(published)
    (relay,) = published.relays
    wait_for("relay", lambda: relay.checkpoint >= published.store.last_position())

    records = read_to_end(kafka_bootstrap, published.topic)

    stored = {event.id: event for event in published.store.read_all()}
    assert len(records) == len(stored) == 19
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
        assert event.sequence == stored[event.id].version
        if event.type != contract.AssessmentOpened.EVENT_TYPE:
            assert event.metadata.actor == "ehcco-77"
            assert event.metadata.correlation_id == "plans-corr-1"

        # Nothing personal anywhere in the record: no names, notes, or type of need.
        wire = record.value + b"".join(value or b"" for _, value in record.headers)
        for secret in (*PERSONAL, "SLCN", "primary_need"):
            assert secret.encode() not in wire, (event.type, secret)
    assert seen_types == {model.EVENT_TYPE for model in contract.EVENT_MODELS}


def test_one_cases_events_arrive_in_order_on_one_partition(
    published: Published, kafka_bootstrap: str
) -> None:
    cases = make_every_event(published)
    (relay,) = published.relays
    wait_for("relay", lambda: relay.checkpoint >= published.store.last_position())

    records = read_to_end(kafka_bootstrap, published.topic)

    for case_id in cases:
        mine = [r for r in records if r.key.decode() == case_id]
        assert len({r.partition for r in mine}) == 1
        in_offset_order = sorted(mine, key=lambda r: r.offset)
        assert [from_kafka(r).sequence for r in in_offset_order] == list(
            range(1, len(mine) + 1)
        )


# Reacting to intake -------------------------------------------------------------------


@dataclass
class Reacting:
    intake: TestClient
    intake_store: EventStore
    intake_relay: RelayThread
    plans: TestClient
    plans_store: EventStore
    plans_url: str
    intake_topic: str
    dead_letters: str


def start_reacting(
    bootstrap: str,
    intake_topic: str,
    group: str,
    url: str,
    stack: Any,
    headers: dict[str, str],
) -> tuple[TestClient, EventStore]:
    """A plans app on the store at ``url`` whose subscriber thread reads
    ``intake_topic`` in ``group``."""
    store = open_store(url, SOURCE)
    settings = PlansSettings(
        database_url="sqlite:///unused.db",
        kafka_bootstrap_servers=bootstrap,
        subscriber_enabled=True,
        consumer_group=group,
    )

    def subscriber_on_test_topic(
        settings: PlansSettings,
        store: EventStore,
        handler: Handler,
        registry: CollectorRegistry,
    ) -> BackgroundLoop:
        return subscriber_loop(
            settings, store, handler, topic=intake_topic, registry=registry
        ).start()

    app = create_app(
        settings,
        store=store,
        clock=FixedClock(),
        subscriber_factory=subscriber_on_test_topic,
    )
    client = stack.enter_context(TestClient(app, headers=headers))
    stack.callback(store.close)
    return client, store


@pytest.fixture(params=DURABLE)
def plans_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the reacting plans app keeps its events: a SQLite file, or a PostgreSQL
    schema of its own."""
    if request.param == SQLITE:
        yield f"sqlite:///{tmp_path / 'plans.db'}"
        return
    url = new_postgres_schema("plans")
    yield url
    drop_postgres_schema(url)


@pytest.fixture
def reacting(
    plans_url: str,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[Reacting]:
    intake_topic = unique_topic(partitions=6)
    dead_letters = dead_letter_topic("plans", intake_topic)
    ensure_topics(
        kafka_bootstrap,
        [Topic(dead_letters, owner="plans", consumers=("test",), partitions=1)],
    )
    intake_store = SQLiteEventStore(tmp_path / "intake.db", INTAKE_SOURCE)
    intake_settings = IntakeSettings(
        database_url="sqlite:///unused.db",
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=True,
        relay_poll_seconds=0.05,
    )
    relays: list[RelayThread] = []

    def intake_relay(
        settings: IntakeSettings, store: EventStore, registry: CollectorRegistry
    ) -> RelayThread:
        relay = build_intake_relay(
            settings, store, topic=intake_topic, registry=registry
        )
        relays.append(RelayThread(relay, poll_interval=0.05).start())
        return relays[-1]

    with contextlib.ExitStack() as stack:
        # Closed after the app has stopped its relay thread (callbacks run in reverse).
        stack.callback(intake_store.close)
        intake = stack.enter_context(
            TestClient(
                create_intake_app(
                    intake_settings,
                    store=intake_store,
                    clock=lambda: NOW,
                    relay_factory=intake_relay,
                ),
                headers=manager_headers,
            )
        )
        plans, plans_store = start_reacting(
            kafka_bootstrap,
            intake_topic,
            unique_name("plans"),
            plans_url,
            stack,
            manager_headers,
        )
        yield Reacting(
            intake,
            intake_store,
            relays[0],
            plans,
            plans_store,
            plans_url,
            intake_topic,
            dead_letters,
        )


def agree_at_intake(intake: TestClient, received_at: str) -> str:
    request = {
        "requester_type": "parent",
        "child_reference": "CHILD-0042",
        "date_of_birth": "2016-05-14",
        "school_urn": 123456,
        "curriculum_year": 3,
        "channel": "email",
        "received_at": received_at,
    }
    response = intake.post("/cases", json=request)
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    decided = intake.post(
        f"/cases/{case_id}/decision",
        json={"outcome": "agreed", "notified_on": "2025-10-06"},
        headers={"X-Correlation-ID": "intake-corr-7"},
    )
    assert decided.status_code == 200, decided.text
    return case_id


def test_an_agreement_at_intake_opens_the_assessment_once_however_delivered(
    reacting: Reacting,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    # Intake receives a request and agrees to assess; its relay publishes both.
    case_id = agree_at_intake(reacting.intake, "2025-09-01T09:00:00Z")
    wait_for(
        "plans to open the assessment",
        lambda: bool(reacting.plans_store.read_stream(case_id)),
    )

    (opened,) = reacting.plans_store.read_stream(case_id)
    agreed = reacting.intake_store.read_stream(case_id)[-1]
    assert opened.type == "send.plans.AssessmentOpened.v1"
    assert opened.data == {"case_id": case_id, "agreed_on": "2025-10-06"}
    assert opened.metadata.causation_id == agreed.id
    assert opened.metadata.correlation_id == "intake-corr-7"

    # The case takes commands at once.
    drafted = reacting.plans.post(
        f"/cases/{case_id}/draft-plans", json={"served_on": "2026-03-02"}
    )
    assert drafted.status_code == 200, drafted.text

    # The same record delivered again (a producer retry, a replay) changes nothing.
    records = read_to_end(kafka_bootstrap, reacting.intake_topic)
    agreement_record = next(
        r for r in records if from_kafka(r).type == "send.intake.AssessmentAgreed.v1"
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(
            reacting.intake_topic,
            key=agreement_record.key,
            value=agreement_record.value,
            headers=agreement_record.headers,
        ).get(timeout=30)
        # A second case after it: once plans has opened that, the repeat was passed.
        later = agree_at_intake(reacting.intake, "2025-09-02T09:00:00Z")
        wait_for(
            "the second case", lambda: bool(reacting.plans_store.read_stream(later))
        )
    finally:
        producer.close()

    assert types_of(reacting.plans_store, case_id) == [
        "AssessmentOpened",
        "DraftPlanIssued",
    ]

    # A new consumer group on the same store replays the topic from offset 0: nothing.
    before = reacting.plans_store.last_position()
    with contextlib.ExitStack() as stack:
        replay_store = open_store(reacting.plans_url, SOURCE)
        stack.callback(replay_store.close)
        replayed = {"n": 0}

        def counting(event: Any, tx: Any) -> None:
            replayed["n"] += 1

        subscriber = build_subscriber(
            PlansSettings(
                kafka_bootstrap_servers=kafka_bootstrap,
                consumer_group=unique_name("replay"),
            ),
            replay_store,
            counting,
            topic=reacting.intake_topic,
            registry=CollectorRegistry(),
        )
        stack.callback(subscriber.close)
        seen = 0
        deadline = time.monotonic() + DEADLINE_S
        while seen < len(records) + 1 + 2:
            assert time.monotonic() < deadline, "the replay did not reach the end"
            outcome = subscriber.poll_once()
            seen += outcome.records
            assert outcome.handled == 0

    assert replayed["n"] == 0
    assert reacting.plans_store.last_position() == before


def test_an_unreadable_agreement_goes_to_plans_dead_letter_topic(
    reacting: Reacting, kafka_bootstrap: str
) -> None:
    # A record that is a valid envelope but breaks intake's contract (no date).
    case_id = agree_at_intake(reacting.intake, "2025-09-03T09:00:00Z")
    wait_for(
        "plans to open the assessment",
        lambda: bool(reacting.plans_store.read_stream(case_id)),
    )
    records = read_to_end(kafka_bootstrap, reacting.intake_topic)
    good = next(
        r for r in records if from_kafka(r).type == "send.intake.AssessmentAgreed.v1"
    )
    headers = [
        (name, b"11111111-2222-4333-8444-555555555555" if name == "ce_id" else value)
        for name, value in good.headers
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(
            reacting.intake_topic,
            key=good.key,
            value=json.dumps({"case_id": case_id}).encode(),
            headers=headers,
        ).get(timeout=30)
    finally:
        producer.close()

    wait_for(
        "the dead letter",
        lambda: bool(read_to_end(kafka_bootstrap, reacting.dead_letters)),
    )
    (dead,) = read_to_end(kafka_bootstrap, reacting.dead_letters)
    reasons = dict(dead.headers)
    assert reasons["dlq_consumer"] == b"plans"
    assert b"notified_on" in reasons["dlq_reason"]
    assert types_of(reacting.plans_store, case_id) == ["AssessmentOpened"]
    assert reacting.plans.get("/readyz").json()["checks"]["intake_subscriber"] == "ok"


def _resent(record: Any, case_id: str, key: str) -> tuple[bytes, bytes, list[Any]]:
    """``record`` as a new event (a fresh ``ce_id``) on ``case_id``, keyed ``key``."""
    replaced = {
        "ce_id": str(uuid.uuid4()).encode(),
        "ce_subject": case_id.encode(),
        "ce_partitionkey": case_id.encode(),
    }
    headers = [(name, replaced.get(name, value)) for name, value in record.headers]
    value = json.loads(record.value)
    value["case_id"] = case_id
    return key.encode(), json.dumps(value).encode(), headers


def test_a_withdrawal_at_intake_closes_the_assessment_and_bad_keys_are_dead_letters(
    reacting: Reacting, kafka_bootstrap: str
) -> None:
    # Intake agrees, then the request is withdrawn through intake's HTTP API.
    case_id = agree_at_intake(reacting.intake, "2025-09-04T09:00:00Z")
    withdrawn = reacting.intake.post(
        f"/cases/{case_id}/withdrawal", json={"withdrawn_on": "2025-11-03"}
    )
    assert withdrawn.status_code == 200, withdrawn.text

    def closed() -> bool:
        with reacting.plans_store.transaction() as tx:
            return intake_requests.closure_of(tx, case_id) is not None

    wait_for("plans to learn of the withdrawal", closed)
    drafted = reacting.plans.post(
        f"/cases/{case_id}/draft-plans", json={"served_on": "2026-03-02"}
    )
    assert drafted.status_code == 409, drafted.text
    assert "withdrawn on 2025-11-03" in drafted.json()["detail"]

    # The agreement again as a new event, keyed by another case; and an agreement
    # for a case whose request intake never published.
    records = read_to_end(kafka_bootstrap, reacting.intake_topic)
    good = next(
        r
        for r in records
        if from_kafka(r).type == "send.intake.AssessmentAgreed.v1"
        and from_kafka(r).subject == case_id
    )
    unknown = str(uuid.uuid4())
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for key, value, headers in (
            _resent(good, case_id, str(uuid.uuid4())),
            _resent(good, unknown, unknown),
        ):
            producer.send(
                reacting.intake_topic, key=key, value=value, headers=headers
            ).get(timeout=30)
    finally:
        producer.close()

    wait_for(
        "both dead letters",
        lambda: len(read_to_end(kafka_bootstrap, reacting.dead_letters)) >= 2,
    )
    reasons = [
        dict(dead.headers)["dlq_reason"]
        for dead in read_to_end(kafka_bootstrap, reacting.dead_letters)
    ]
    assert len(reasons) == 2
    assert sum(b"has the Kafka key" in reason for reason in reasons) == 1
    assert sum(b"never published a request" in reason for reason in reasons) == 1
    assert types_of(reacting.plans_store, case_id) == ["AssessmentOpened"]
    assert reacting.plans_store.read_stream(unknown) == []
