"""The worker's per-record logic without a broker: handle, wake, dead-letter, retry."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from notify_factories import clock_data, new_case

from notify.application.handlers import Handled, Outcome
from notify.application.inbound import CLOCK_APPROACHING, InboundEvent
from notify.entrypoints.worker import RecordConsumer, broker_urls
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent
from sendkit.logging import get_correlation_id
from sendkit.store.base import StoreUnavailable


@dataclass
class FakeTopic:
    """Stands in for a faust topic: keeps what is sent to it."""

    name: str
    sent: list[dict[str, Any]] = field(default_factory=list)

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, **kwargs: Any) -> asyncio.Future[None]:
        self.sent.append(kwargs)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def wake(self) -> None:
        self.count += 1


def faust_event(key: bytes | None, value: bytes | None, headers: Any) -> Any:
    message = SimpleNamespace(
        topic="send.deadlines.events",
        partition=1,
        offset=7,
        key=key,
        value=value,
        headers=headers,
    )
    return SimpleNamespace(message=message)


def clock_event(case_id: str) -> Any:
    recorded = RecordedEvent(
        id=str(uuid.uuid4()),
        stream_id=case_id,
        version=1,
        position=1,
        type=CLOCK_APPROACHING,
        source="/send/deadlines",
        time=datetime(2025, 2, 10, tzinfo=UTC),
        data=clock_data(case_id),
        metadata=Metadata(correlation_id="corr-record"),
    )
    record = to_kafka(recorded)
    # aiokafka hands headers over as a tuple of pairs.
    return faust_event(record.key, record.value, tuple(record.headers))


@pytest.fixture
def parts() -> tuple[RecordConsumer, FakeTopic, Wakes]:
    dlq = FakeTopic("notify.send.deadlines.events.dlq")
    wakes = Wakes()
    runtime = SimpleNamespace(delivery_thread=wakes)
    executor = ThreadPoolExecutor(max_workers=1)
    consumer = RecordConsumer(
        runtime,  # type: ignore[arg-type]
        executor,
        {"send.deadlines.events": dlq},  # type: ignore[dict-item]
        store_retry_delay=0.0,
    )
    return consumer, dlq, wakes


async def test_a_record_is_handled_off_the_loop_under_its_correlation_id(
    parts: tuple[RecordConsumer, FakeTopic, Wakes],
) -> None:
    consumer, dlq, wakes = parts
    seen: list[tuple[str, str | None, bool]] = []

    def handler(event: InboundEvent) -> Handled:
        in_loop = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            in_loop = False
        seen.append((event.type, get_correlation_id(), in_loop))
        return Handled(Outcome.ALERTED, pending=("a-1",))

    handled = await consumer.consume(clock_event(new_case()), handler)

    assert handled is not None
    assert seen == [(CLOCK_APPROACHING, "corr-record", False)]
    assert wakes.count == 1
    assert dlq.sent == []


async def test_garbage_goes_to_the_dead_letter_topic_byte_for_byte(
    parts: tuple[RecordConsumer, FakeTopic, Wakes],
) -> None:
    consumer, dlq, wakes = parts
    calls: list[InboundEvent] = []

    def handler(event: InboundEvent) -> Handled:
        calls.append(event)
        return Handled(Outcome.IGNORED)

    handled = await consumer.consume(
        faust_event(b"k", b"\xff garbage", [("x-trace", b"1")]), handler
    )

    assert handled is None
    assert calls == []
    [letter] = dlq.sent
    assert (letter["key"], letter["value"]) == (b"k", b"\xff garbage")
    headers = dict(letter["headers"])
    assert headers["x-trace"] == b"1"
    assert b"content-type is missing" in headers["dlq_reason"]
    assert headers["dlq_source_offset"] == b"7"
    assert letter["force"] is True
    assert wakes.count == 0


async def test_a_handler_error_parks_the_record_and_the_stream_goes_on(
    parts: tuple[RecordConsumer, FakeTopic, Wakes],
) -> None:
    consumer, dlq, _ = parts

    def broken(event: InboundEvent) -> Handled:
        raise KeyError("clock_id")

    def working(event: InboundEvent) -> Handled:
        return Handled(Outcome.ALERTED)

    first = await consumer.consume(clock_event(new_case()), broken)
    second = await consumer.consume(clock_event(new_case()), working)

    assert first is None
    assert second is not None
    assert second.outcome is Outcome.ALERTED
    [letter] = dlq.sent
    assert dict(letter["headers"])["dlq_error_type"] == b"KeyError"


async def test_a_busy_database_is_retried_in_place(
    parts: tuple[RecordConsumer, FakeTopic, Wakes],
) -> None:
    consumer, dlq, _ = parts
    attempts: list[int] = []

    def busy_twice(event: InboundEvent) -> Handled:
        attempts.append(1)
        if len(attempts) < 3:
            raise StoreUnavailable("database is locked")
        return Handled(Outcome.ALERTED)

    handled = await consumer.consume(clock_event(new_case()), busy_twice)

    assert handled is not None
    assert len(attempts) == 3
    assert dlq.sent == []


def test_broker_urls_cover_every_bootstrap_server() -> None:
    assert broker_urls("127.0.0.1:9092, 127.0.0.1:9093") == [
        "kafka://127.0.0.1:9092",
        "kafka://127.0.0.1:9093",
    ]
