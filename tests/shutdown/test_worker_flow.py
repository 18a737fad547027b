"""The deadlines worker pauses an input that runs ahead, and still applies every record.

On a backlog the consumer reads every topic as fast as it can, but a record may go
only in its replay-safe turn: here a round of ticks waits for a large backlog on the
reviews topic, and every request on the intake topic, published after the tick, waits
for the tick. With ``DEADLINES_MAX_QUEUED`` small, the worker pauses the intake topic's
partitions (in aiokafka's own consumer) while they hold too many records, resumes them
as the reviews backlog is applied, and must publish every case's decision clock once,
with no record passed over and read back from the broker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from deadlines.application.partitioning import case_partition
from deadlines.application.ticks import TICK_KEY, Tick, encode_tick
from deadlines.entrypoints.worker import READY_MESSAGE
from deadlines.settings import DeadlinesSettings
from send_schemas.topics import PARTITIONS, REVIEWS
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent

from .shutdown_support import Processes, TopicFollower, process_env, wait_for
from .worker_support import decision_clocks, publish_requests, settings_on_own_topics

REVIEWS_BACKLOG = 3_000
CASES = 240
ACTOR = "ehcco-flow"


@pytest.fixture
def settings(kafka_bootstrap: str) -> DeadlinesSettings:
    return settings_on_own_topics(kafka_bootstrap, "flow")


def unread_review_event(case: str) -> RecordedEvent:
    """A reviews event of a type no clock reads: applied at once, and nothing else."""
    return RecordedEvent(
        id=str(uuid.uuid4()),
        stream_id=case,
        version=1,
        position=0,
        type="send.reviews.ReviewNoteFiled.v1",
        source="/send/reviews",
        time=datetime.now(UTC),
        data={"case_id": case},
        metadata=Metadata(actor=ACTOR, correlation_id=case),
    )


def end_offsets(
    producer: KafkaProducer, topics: list[str]
) -> dict[int, dict[str, int]]:
    """Per partition, how many records each topic holds (all sent by ``producer``)."""
    producer.flush(timeout=60)
    consumer = KafkaConsumer(bootstrap_servers=producer.config["bootstrap_servers"])
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    found: dict[int, dict[str, int]] = {p: {} for p in range(PARTITIONS)}
    for tp, end in ends.items():
        found[tp.partition][tp.topic] = int(end)
    return found


@pytest.mark.timeout(600)
def test_an_input_that_runs_ahead_is_paused_and_every_record_still_applied(
    settings: DeadlinesSettings, tmp_path: Path, processes: Processes
) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    for _ in range(REVIEWS_BACKLOG):
        case = str(uuid.uuid4())
        record = to_kafka(unread_review_event(case))
        producer.send(
            settings.topic(REVIEWS.name),
            key=record.key,
            value=record.value,
            headers=record.headers,
            partition=case_partition(case),
        )
    # A round of ticks after the reviews backlog, then the requests after the ticks.
    ends = end_offsets(producer, list(settings.domain_topics))
    now = datetime.now(UTC)
    for partition in range(PARTITIONS):
        tick = Tick(now, f"flow-{partition}", ends[partition])
        producer.send(
            settings.ticks_topic,
            key=TICK_KEY,
            value=encode_tick(tick),
            partition=partition,
        )
    cases = [str(uuid.uuid4()) for _ in range(CASES)]
    publish_requests(producer, settings.intake_topic, cases, actor=ACTOR)
    producer.close()

    worker = processes.start(
        ["-m", "deadlines", "worker"],
        process_env(
            KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
            DEADLINES_APP_ID=f"deadlines-flow-{uuid.uuid4().hex[:8]}",
            DEADLINES_TOPIC_PREFIX=settings.topic_prefix,
            DEADLINES_MAX_QUEUED="5",
            LOG_LEVEL="INFO",
        ),
        tmp_path / "worker.log",
    )
    clocks = TopicFollower(settings.kafka_bootstrap_servers, settings.clocks_topic)
    try:
        wait_for(lambda: worker.said(READY_MESSAGE), "worker ready")
        wait_for(
            lambda: len(decision_clocks(clocks.read())) == CASES,
            "every case's decision clock",
            guard_s=400,
        )
        found = decision_clocks(clocks.read())
    finally:
        clocks.close()
    text = worker.text()

    assert sorted(found) == sorted(cases)
    assert all(len(events) == 1 for events in found.values())
    assert "input paused: too many records wait for their turn" in text
    assert "input resumed" in text
    assert "delivered nothing of records the broker holds" not in text
    assert "skipped input records" not in text
