"""The project's topics on the test run's broker; a round trip through kafka-python."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.fetcher import ConsumerRecord

from devstack.kafka_errors import TopicSetupError
from devstack.kafka_topics import admin_client, create_project_topics, ensure_topics
from send_schemas.topics import CLOCK_TICKS, INFINITE_RETENTION_MS, Topic, all_topics

pytestmark = pytest.mark.kafka

POLL_DEADLINE_S = 30.0


def test_every_registry_topic_exists_with_six_partitions_and_its_retention(
    kafka_bootstrap: str,
) -> None:
    names = [topic.name for topic in all_topics()]
    with admin_client(kafka_bootstrap) as admin:
        described = {item["name"]: item for item in admin.describe_topics(names)}
        configs = admin.describe_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, name, configs={"retention.ms": None}
                )
                for name in names
            ],
            config_filter="all",
        )["topic"]

    for topic in all_topics():
        assert described[topic.name]["error_code"] == 0, topic.name
        assert len(described[topic.name]["partitions"]) == 6, topic.name
        assert configs[topic.name]["retention.ms"]["value"] == str(topic.retention_ms)
    # Both kinds of retention the registry uses are really there.
    assert configs[CLOCK_TICKS.name]["retention.ms"]["value"] == str(
        7 * 24 * 3600 * 1000
    )
    assert configs["send.intake.events"]["retention.ms"]["value"] == str(
        INFINITE_RETENTION_MS
    )
    assert any(name.endswith(".dlq") for name in described)


def test_creating_the_project_topics_again_changes_nothing(
    kafka_bootstrap: str,
) -> None:
    setup = create_project_topics(kafka_bootstrap)

    assert setup.created == ()
    assert sorted(setup.existing) == sorted(topic.name for topic in all_topics())


def test_an_existing_topic_unlike_the_registry_is_reported(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    name = unique_topic(partitions=1)
    claimed = Topic(name, owner="test", consumers=("test",), partitions=6)

    with pytest.raises(TopicSetupError, match=f"{name} has 1 partitions, not 6"):
        ensure_topics(kafka_bootstrap, [claimed])


def test_a_unique_topic_gets_the_partitions_asked_for(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    first, second = unique_topic(partitions=3), unique_topic(partitions=3)

    with admin_client(kafka_bootstrap) as admin:
        described = admin.describe_topics([first, second])

    assert first != second
    assert [len(item["partitions"]) for item in described] == [3, 3]


def test_a_record_with_headers_makes_the_round_trip(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
) -> None:
    topic = unique_topic(partitions=1)
    group = unique_name("group")
    headers = [("ce_id", b"evt-0001"), ("ce_type", b"uk.gov.test.thing-happened.v1")]

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        sent = producer.send(
            topic, key=b"case-0001", value=b'{"n": 1}', headers=headers
        ).get(timeout=30)
    finally:
        producer.close(timeout=10)

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + POLL_DEADLINE_S
        while not records and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        consumer.commit()
        committed = consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()

    assert len(records) == 1
    record = records[0]
    assert (record.partition, record.offset) == (sent.partition, sent.offset)
    assert record.key == b"case-0001"
    assert record.value == b'{"n": 1}'
    assert list(record.headers) == headers
    assert committed == 1
