"""Background loops ride out a broker restart: a subscriber loop handles what follows.

The test runs a broker of its own (``devstack.kafka``) in a kept directory, so it can
stop it and start it again on the same port with the same data and topics. A
subscriber loop, built the way the services build theirs (``connect_with_retry`` then
``IdempotentSubscriber.run_forever`` inside a ``BackgroundLoop``), handles an event,
sees the broker go away and come back, and handles the event published after
(``TEST_OUTAGE_S`` sets how long the broker stays away; 20 s by default).

Two more tests, on the session's broker, take the failure placement's loop met when
its broker restarted (a ``KafkaConnectionError`` out of the consumer) where it
happened: out of a poll, which the subscriber now tries again in place, and out of
the loop's function, which the loop now runs again after a backoff instead of dying.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from devstack.kafka import KafkaBroker, start_broker
from devstack.kafka_topics import create_unique_topic
from sendkit.background import BackgroundLoop, connect_with_retry
from sendkit.envelope import ReceivedEvent, to_kafka
from sendkit.events import Metadata, RecordedEvent, new_id
from sendkit.store import SQLiteEventStore, Transaction
from sendkit.subscriber import IdempotentSubscriber, PollOutcome

from .kafka_support import produce

pytestmark = pytest.mark.kafka

# Guards against a hang only; nothing asserts how long anything took.
GUARD_S = 180.0
# Long enough for the consumer's coordinator and fetch requests to fail meanwhile.
OUTAGE_S = float(os.environ.get("TEST_OUTAGE_S", "20"))


def wait_for(condition: object, what: str, guard_s: float = GUARD_S) -> None:
    assert callable(condition)
    deadline = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def record_of(case: str) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    event = RecordedEvent(
        id=new_id(),
        stream_id=case,
        version=1,
        position=1,
        type="send.intake.Noted.v1",
        source="/send/intake",
        time=datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
        data={"case": case},
        metadata=Metadata("staff-1", f"corr-{case}"),
    )
    record = to_kafka(event)
    return record.key, record.value, record.headers


@pytest.fixture
def restartable_broker(tmp_path: Path) -> Iterator[dict[str, KafkaBroker | None]]:
    holder: dict[str, KafkaBroker | None] = {
        "broker": start_broker(run_dir=tmp_path / "kafka")
    }
    yield holder
    broker = holder["broker"]
    if broker is not None:
        broker.stop()


def test_a_subscriber_loop_handles_events_after_the_broker_restarts(
    tmp_path: Path, restartable_broker: dict[str, KafkaBroker | None]
) -> None:
    broker = restartable_broker["broker"]
    assert broker is not None
    bootstrap, port = broker.bootstrap_servers, broker.port
    topic = create_unique_topic(bootstrap, "outage")
    store = SQLiteEventStore(tmp_path / "follower.db", "/send/test")
    handled: list[str] = []

    def handler(event: ReceivedEvent, tx: Transaction) -> None:
        handled.append(str(event.data["case"]))

    def run(stop: threading.Event) -> None:
        subscriber = connect_with_retry(
            lambda: IdempotentSubscriber(
                "outage",
                topic,
                bootstrap,
                f"outage-{new_id()}",
                store,
                handler,
                registry=CollectorRegistry(),
            ),
            stop,
            what="outage subscriber",
            max_s=2.0,
        )
        if subscriber is not None:
            subscriber.run_forever(stop)

    loop = BackgroundLoop("subscriber-outage", run).start()
    try:
        produce(bootstrap, topic, [record_of("before")])
        wait_for(lambda: handled == ["before"], "the event sent before the outage")

        broker.stop()
        restartable_broker["broker"] = None
        time.sleep(OUTAGE_S)
        alive_through_outage = loop.is_alive()
        restartable_broker["broker"] = start_broker(
            run_dir=tmp_path / "kafka", port=port
        )
        produce(bootstrap, topic, [record_of("after")])
        wait_for(
            lambda: "after" in handled or not loop.is_alive(),
            "the event sent after the restart",
        )
        alive_after = loop.is_alive()
    finally:
        loop.stop()
        store.close()

    assert alive_through_outage
    assert alive_after
    assert handled == ["before", "after"]
    assert loop.bootstrapped


class FailingOnce(IdempotentSubscriber):
    """A subscriber whose first poll after its first handled record fails as
    placement's did when the broker restarted (``KafkaConnectionError``)."""

    failed = False

    def poll_once(self) -> PollOutcome:
        if handled_so_far(self) and not self.failed:
            self.failed = True
            raise KafkaConnectionError("Connection closed during connect")
        return super().poll_once()


def handled_so_far(subscriber: IdempotentSubscriber) -> bool:
    return bool(getattr(subscriber, "handled", None))


def test_a_poll_that_fails_with_a_kafka_error_is_tried_again_in_place(
    kafka_bootstrap: str, unique_topic: Any, tmp_path: Path
) -> None:
    topic = unique_topic()
    store = SQLiteEventStore(tmp_path / "follower.db", "/send/test")
    handled: list[str] = []

    def handler(event: ReceivedEvent, tx: Transaction) -> None:
        handled.append(str(event.data["case"]))

    subscriber = FailingOnce(
        "outage",
        topic,
        kafka_bootstrap,
        f"outage-{new_id()}",
        store,
        handler,
        retry_initial_s=0.05,
        registry=CollectorRegistry(),
    )
    subscriber.handled = handled  # type: ignore[attr-defined]
    loop = BackgroundLoop("subscriber-poll-fails", subscriber.run_forever).start()
    try:
        produce(kafka_bootstrap, topic, [record_of("first")])
        wait_for(lambda: handled == ["first"], "the first event")
        wait_for(lambda: subscriber.failed, "the failing poll")
        produce(kafka_bootstrap, topic, [record_of("second")])
        wait_for(lambda: "second" in handled or not loop.is_alive(), "the second event")
        alive = loop.is_alive()
    finally:
        loop.stop()
        store.close()

    assert alive
    assert loop.restarts == 0  # the subscriber carried on by itself
    assert handled == ["first", "second"]


def test_a_loop_that_lets_a_kafka_error_escape_is_run_again(
    kafka_bootstrap: str, unique_topic: Any, tmp_path: Path
) -> None:
    topic = unique_topic()
    store = SQLiteEventStore(tmp_path / "follower.db", "/send/test")
    handled: list[str] = []
    runs: list[int] = []

    def handler(event: ReceivedEvent, tx: Transaction) -> None:
        handled.append(str(event.data["case"]))

    def run(stop: threading.Event) -> None:
        runs.append(1)
        subscriber = connect_with_retry(
            lambda: IdempotentSubscriber(
                "outage",
                topic,
                kafka_bootstrap,
                "outage-escape-" + topic,
                store,
                handler,
                registry=CollectorRegistry(),
            ),
            stop,
            what="outage subscriber",
        )
        assert subscriber is not None
        if len(runs) == 1:
            # What escaped placement's loop when its broker restarted.
            while not handled and not stop.is_set():
                subscriber.poll_once()
            subscriber.close()
            raise KafkaConnectionError("Connection closed during connect")
        subscriber.run_forever(stop)

    loop = BackgroundLoop("subscriber-escape", run).start()
    try:
        produce(kafka_bootstrap, topic, [record_of("first")])
        wait_for(lambda: handled == ["first"], "the first event")
        wait_for(lambda: len(runs) == 2 or not loop.is_alive(), "the second run")
        produce(kafka_bootstrap, topic, [record_of("second")])
        wait_for(lambda: "second" in handled or not loop.is_alive(), "the second event")
        alive = loop.is_alive()
    finally:
        loop.stop()
        store.close()

    assert alive
    assert loop.restarts == 1
    assert loop.bootstrapped
    assert handled == ["first", "second"]
