"""Through the real broker: every intake event on the topic, as the contract says.

The HTTP app runs with its relay thread on (as ``INTAKE_RELAY_ENABLED=true`` starts
it), publishing to a topic of this test's own; a plain kafka-python consumer reads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from intake_support import request_body
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from auth_fixtures import Mint
from intake.adapters.relay import RelayThread, build_relay
from intake.entrypoints.http import create_app
from intake.settings import SOURCE, IntakeSettings
from send_schemas import intake as contract
from sendkit.envelope import from_kafka
from sendkit.store import EventStore, SQLiteEventStore

# Guards against a hang only; nothing asserts how long publishing took.
DEADLINE_S = 120.0

PERSONAL = (
    "CHILD-0001",
    "2016-05-14",
    "Sam Example",
    "Alex Example",
    "parent in hospital for three weeks",
    "panel minutes of 12 February",
    "family moved to another county",
    "stamp on the envelope was misread",
    "surgery asked for school advice",
    "surgery minutes dated the 18th",
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


@pytest.fixture
def published(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    auth_env: dict[str, str],
    mint: Mint,
) -> Iterator[tuple[TestClient, EventStore, str, list[RelayThread]]]:
    topic = unique_topic(partitions=6)
    store = SQLiteEventStore(tmp_path / "intake.db", SOURCE)
    settings = IntakeSettings(
        database_url="sqlite:///unused.db",
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=True,
        relay_poll_seconds=0.05,
    )
    started: list[RelayThread] = []

    def relay_on_test_topic(
        settings: IntakeSettings, store: EventStore, registry: CollectorRegistry
    ) -> RelayThread:
        relay = build_relay(settings, store, topic=topic, registry=registry)
        thread = RelayThread(relay, poll_interval=settings.relay_poll_seconds).start()
        started.append(thread)
        return thread

    app = create_app(settings, store=store, relay_factory=relay_on_test_topic)
    # ehcco-77's token: the actor every event must name.
    with TestClient(app, headers=mint("ehcco-77")) as client:
        yield client, store, topic, started
    store.close()


def wait_until_published(thread: RelayThread, store: EventStore) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while thread.relay.checkpoint < store.last_position():
        assert thread.is_alive(), "the relay thread stopped"
        if time.monotonic() > deadline:
            raise AssertionError("the relay did not publish every event")
        time.sleep(0.05)


def make_every_event(client: TestClient) -> dict[str, str]:
    """Cause each intake event type at least once; return each case's purpose."""
    staff = {"X-Correlation-ID": "kafka-corr-1"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body, headers=staff)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    agreed = post("/cases", request_body(received_at="2025-01-06T09:30:00Z"))["case_id"]
    post(f"/cases/{agreed}/coordinator", {"coordinator_id": "ehcco-77"})
    post(
        f"/cases/{agreed}/decision",
        {
            "outcome": "agreed",
            "notified_on": "2025-02-14",
            "note": "panel minutes of 12 February",
        },
    )
    post(
        f"/cases/{agreed}/time-limit-exceptions",
        {
            "clock": "final_plan",
            "reason": "c",
            "evidence": "parent in hospital for three weeks",
        },
    )
    post(
        f"/cases/{agreed}/corrections",
        {
            "field": "notified_on",
            "new_value": "2025-02-13",
            "reason": "stamp on the envelope was misread",
        },
    )

    refused = post("/cases", request_body(received_at="2025-01-07T10:00:00Z"))[
        "case_id"
    ]
    post(
        f"/cases/{refused}/surgery-presentation",
        {"presented_on": "2025-02-17", "note": "surgery asked for school advice"},
    )
    post(
        f"/cases/{refused}/decision",
        {"outcome": "refused", "notified_on": "2025-02-20"},
    )
    post(
        f"/cases/{refused}/corrections",
        {
            "field": "presented_on",
            "new_value": "2025-02-18",
            "reason": "surgery minutes dated the 18th",
        },
    )

    withdrawn = post("/cases", request_body(received_at="2025-01-08T11:00:00Z"))[
        "case_id"
    ]
    post(
        f"/cases/{withdrawn}/withdrawal",
        {"withdrawn_on": "2025-02-01", "reason": "family moved to another county"},
    )
    return {agreed: "agreed", refused: "refused", withdrawn: "withdrawn"}


def test_every_intake_event_reaches_the_topic_with_only_the_contracts_fields(
    published: tuple[TestClient, EventStore, str, list[RelayThread]],
    kafka_bootstrap: str,
) -> None:
    client, store, topic, started = published
    cases = make_every_event(client)
    (relay_thread,) = started
    wait_until_published(relay_thread, store)

    records = read_to_end(kafka_bootstrap, topic)

    stored = {event.id: event for event in store.read_all()}
    assert len(records) == len(stored) == 11
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
        assert event.metadata.correlation_id == "kafka-corr-1"
        assert event.sequence == stored[event.id].version

        # Nothing personal anywhere in the record.
        wire = record.value + b"".join(value or b"" for _, value in record.headers)
        for secret in PERSONAL:
            assert secret.encode() not in wire, (event.type, secret)
    assert seen_types == {model.EVENT_TYPE for model in contract.EVENT_MODELS}


def test_one_cases_events_arrive_in_order_on_one_partition(
    published: tuple[TestClient, EventStore, str, list[RelayThread]],
    kafka_bootstrap: str,
) -> None:
    client, store, topic, started = published
    cases = make_every_event(client)
    wait_until_published(started[0], store)

    records = read_to_end(kafka_bootstrap, topic)

    for case_id in cases:
        mine = [r for r in records if r.key.decode() == case_id]
        assert len({r.partition for r in mine}) == 1
        in_offset_order = sorted(mine, key=lambda r: r.offset)
        assert [from_kafka(r).sequence for r in in_offset_order] == list(
            range(1, len(mine) + 1)
        )


def test_the_relay_runs_from_start_up_to_shutdown(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    topic = unique_topic(partitions=6)
    settings = IntakeSettings(
        database_url=f"sqlite:///{tmp_path / 'intake.db'}",
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=True,
    )
    started: list[RelayThread] = []

    def relay_on_test_topic(
        settings: IntakeSettings, store: EventStore, registry: CollectorRegistry
    ) -> RelayThread:
        relay = build_relay(settings, store, topic=topic, registry=registry)
        started.append(RelayThread(relay, poll_interval=0.05).start())
        return started[-1]

    app = create_app(settings, relay_factory=relay_on_test_topic)
    with TestClient(app, headers=manager_headers) as client:
        assert client.get("/readyz").json()["checks"]["outbox_relay"] == "ok"
        client.post("/cases", json=request_body())
        store = client.app.state.store  # type: ignore[attr-defined]
        wait_until_published(started[0], store)
        metrics = client.get("/metrics").text

    assert not started[0].is_alive()
    assert f'sendkit_relay_published_total{{topic="{topic}"}} 1.0' in metrics
