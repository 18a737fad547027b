"""The ticker: the tick format, and rounds of ticks sent to a real broker.

A round is one record per partition of the tick topic, keyed ``tick``, whose value
says what time it is and, per domain topic, the end offset of the same partition when
the round was sent (the barrier the processor orders inputs by).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from deadlines.application.ticks import (
    TICK_KEY,
    InvalidTick,
    Tick,
    encode_tick,
    parse_tick,
)
from deadlines.settings import DeadlinesSettings
from deadlines.ticker import Ticker, TickerError, send_ticks
from devstack.kafka_topics import ensure_topics
from send_schemas.topics import PARTITIONS, Topic

NOW = datetime(2025, 2, 3, 8, tzinfo=UTC)


# The format ---------------------------------------------------------------------------


def test_a_tick_survives_its_record_form() -> None:
    tick = Tick(NOW, "round-1", {"send.intake.events": 17, "send.plans.events": 0})

    value = encode_tick(tick)

    assert parse_tick(value) == tick
    assert json.loads(value)["now"] == "2025-02-03T08:00:00.000000Z"


def test_a_tick_with_only_now_is_read_with_no_barrier() -> None:
    tick = parse_tick(b'{"now": "2025-02-03T09:00:00+01:00"}')

    assert tick.now == NOW
    assert tick.after == {}
    assert tick.tick_id == ""


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (None, "no value"),
        (b"\xff", "not JSON"),
        (b"[1]", "JSON object"),
        (b"{}", "'now'"),
        (b'{"now": "2025-02-03T08:00:00"}', "with an offset"),
        (b'{"now": "2025-02-03T08:00:00Z", "after": {"t": -1}}', "'after'"),
        (b'{"now": "2025-02-03T08:00:00Z", "after": {"t": true}}', "'after'"),
        (b'{"now": "2025-02-03T08:00:00Z", "tick_id": 7}', "'tick_id'"),
    ],
)
def test_what_is_not_a_tick_is_refused_saying_why(
    value: bytes | None, complaint: str
) -> None:
    with pytest.raises(InvalidTick, match=complaint):
        parse_tick(value)


def test_a_tick_needs_an_aware_time() -> None:
    with pytest.raises(InvalidTick, match="aware"):
        Tick(datetime(2025, 2, 3, 8))  # noqa: DTZ001 (the naive time is the point)


# Through the broker -------------------------------------------------------------------


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    settings: DeadlinesSettings

    def ticker(self) -> Ticker:
        return Ticker(
            self.bootstrap,
            topic=self.settings.ticks_topic,
            barrier_topics=self.settings.domain_topics,
        )


@pytest.fixture
def topics(kafka_bootstrap: str) -> Topics:
    settings = DeadlinesSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"ticker{uuid.uuid4().hex[:8]}.",
    )
    ensure_topics(
        kafka_bootstrap,
        [
            Topic(name, owner="test", consumers=("test",), partitions=PARTITIONS)
            for name in (*settings.domain_topics, settings.ticks_topic)
        ],
    )
    return Topics(kafka_bootstrap, settings)


def read_ticks(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    records: list[Any] = []
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while len(records) < expected and datetime.now(UTC) < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    consumer.close()
    return records


def test_a_round_is_one_tick_per_partition_with_each_partitions_barrier(
    topics: Topics,
) -> None:
    intake, plans = topics.settings.domain_topics[:2]
    producer = KafkaProducer(bootstrap_servers=topics.bootstrap)
    for _ in range(3):
        producer.send(intake, key=b"k", value=b"{}", partition=2)
    producer.send(plans, key=b"k", value=b"{}", partition=4)
    producer.flush()

    with topics.ticker() as ticker:
        sent = ticker.send(NOW)

    records = read_ticks(topics.bootstrap, topics.settings.ticks_topic, PARTITIONS)
    assert sorted(r.partition for r in records) == list(range(PARTITIONS))
    for record in records:
        tick = parse_tick(record.value)
        assert record.key == TICK_KEY
        assert tick.now == NOW
        assert tick.tick_id == sent.tick_id
        assert dict(record.headers)["ce_correlationid"] == sent.tick_id.encode()
        partition = record.partition
        assert tick.after == sent.after[partition]
        assert tick.after[intake] == (3 if partition == 2 else 0)
        assert tick.after[plans] == (1 if partition == 4 else 0)
        assert set(tick.after) == set(topics.settings.domain_topics)
    producer.close()


def test_send_ticks_takes_a_producer_or_a_bootstrap_address(topics: Topics) -> None:
    producer = KafkaProducer(bootstrap_servers=topics.bootstrap)
    ticks, barrier = topics.settings.ticks_topic, topics.settings.domain_topics

    by_producer = send_ticks(producer, NOW, topic=ticks, barrier_topics=barrier)
    later = NOW.astimezone(timezone(timedelta(hours=1))) + timedelta(days=1)
    by_address = send_ticks(
        topics.bootstrap, later, tick_id="round-2", topic=ticks, barrier_topics=barrier
    )

    records = read_ticks(topics.bootstrap, topics.settings.ticks_topic, 2 * PARTITIONS)
    ids = [parse_tick(r.value).tick_id for r in records]
    assert sorted(set(ids)) == sorted({by_producer.tick_id, "round-2"})
    assert by_address.partitions == tuple(range(PARTITIONS))
    producer.send(topics.settings.ticks_topic, key=b"still", value=b"open").get(10)
    producer.close()


def test_a_naive_time_is_refused_before_anything_is_sent(topics: Topics) -> None:
    with topics.ticker() as ticker, pytest.raises(TickerError, match="time zone"):
        ticker.send(datetime(2025, 2, 3, 8))  # noqa: DTZ001 (the point of the test)


def test_the_ticker_command_sends_one_round_with_the_real_time(topics: Topics) -> None:
    before = datetime.now(UTC)

    finished = subprocess.run(
        [sys.executable, "-m", "deadlines", "ticker", "--once"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": topics.bootstrap,
            "DEADLINES_TOPIC_PREFIX": topics.settings.topic_prefix,
            "LOG_FORMAT": "json",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    assert '"message": "ticks sent"' in finished.stderr
    records = read_ticks(topics.bootstrap, topics.settings.ticks_topic, PARTITIONS)
    assert len(records) == PARTITIONS
    for record in records:
        now = parse_tick(record.value).now
        assert before <= now <= datetime.now(UTC)
