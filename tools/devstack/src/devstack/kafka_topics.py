"""Explicit topic creation for the development broker, from the topic registry.

The broker never creates topics implicitly, so the project's topics exist only because
``ensure_topics`` made them with the partitions and retention that
``send_schemas.topics`` declares. Creation is idempotent: a topic that already exists
as the registry says is left alone, and one that exists differently is an error.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import KafkaError

from devstack.kafka_errors import TopicSetupError
from send_schemas.topics import INFINITE_RETENTION_MS, Topic, all_topics

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
# Let the broker apply its default.replication.factor, so the same call suits the
# one-node dev broker and a bigger cluster named by KAFKA_BOOTSTRAP_SERVERS.
BROKER_DEFAULT_REPLICATION = -1
_UNSAFE_NAME_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")


@dataclass(frozen=True, slots=True)
class TopicSetup:
    """What ``ensure_topics`` did: the topics it created and those already there."""

    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = field(default=())


@contextmanager
def admin_client(bootstrap: str, *, timeout_s: float = 30.0) -> Iterator[Any]:
    """A kafka-python admin client, closed on exit.

    A broker that cannot be reached raises ``KafkaTimeoutError`` here (kafka-python 3
    has no ``NoBrokersAvailable``).
    """
    timeout_ms = int(timeout_s * 1000)
    client = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="devstack-admin",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )
    try:
        yield client
    finally:
        client.close()


def describe_cluster(bootstrap: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """One metadata round trip: the cluster id, controller and brokers."""
    with admin_client(bootstrap, timeout_s=timeout_s) as admin:
        result: dict[str, Any] = admin.describe_cluster()
        return result


def topic_configs(topic: Topic) -> dict[str, str]:
    return {"retention.ms": str(topic.retention_ms)}


def ensure_topics(
    bootstrap: str, topics: Iterable[Topic], *, timeout_s: float = 30.0
) -> TopicSetup:
    """Create each topic that is missing; check that those already there match.

    Waits until every created topic has a leader for each partition, so a producer can
    use it at once.
    """
    wanted = {topic.name: topic for topic in topics}
    if not wanted:
        return TopicSetup()
    request = {
        name: {
            "num_partitions": topic.partitions,
            "replication_factor": BROKER_DEFAULT_REPLICATION,
            "configs": topic_configs(topic),
        }
        for name, topic in wanted.items()
    }
    try:
        with admin_client(bootstrap, timeout_s=timeout_s) as admin:
            response = admin.create_topics(
                request, timeout_ms=int(timeout_s * 1000), raise_errors=False
            )
            created, existing = _sort_outcomes(response)
            if created:
                admin.wait_for_topics(list(created), timeout_ms=int(timeout_s * 1000))
            if existing:
                _check_existing(admin, [wanted[name] for name in existing])
    except KafkaError as error:
        raise TopicSetupError(
            f"could not create topics on {bootstrap}: {error!r}; check that the broker "
            "runs there (python -m devstack.kafka run) and answers on that address"
        ) from error
    log.info(
        "kafka topics ensured on %s: %d created, %d already there",
        bootstrap,
        len(created),
        len(existing),
        extra={
            "bootstrap": bootstrap,
            "topics_created": len(created),
            "topics_existing": len(existing),
        },
    )
    return TopicSetup(created=created, existing=existing)


def create_project_topics(bootstrap: str, *, timeout_s: float = 30.0) -> TopicSetup:
    """Every topic of the registry, dead-letter topics included."""
    return ensure_topics(bootstrap, all_topics(), timeout_s=timeout_s)


def unique_topic_name(prefix: str = "test") -> str:
    """A topic name no other test uses: the prefix, made safe, and a uuid suffix."""
    safe = _UNSAFE_NAME_CHARS.sub("-", prefix).strip("-.")[:80] or "test"
    return f"{safe}.{uuid.uuid4().hex[:12]}"


def create_unique_topic(
    bootstrap: str,
    prefix: str = "test",
    *,
    partitions: int = 1,
    retention_ms: int = INFINITE_RETENTION_MS,
    timeout_s: float = 30.0,
) -> str:
    """Create an extra topic for one test, named uniquely, and return its name."""
    name = unique_topic_name(prefix)
    topic = Topic(
        name,
        owner="test",
        consumers=("test",),
        partitions=partitions,
        retention_ms=retention_ms,
    )
    ensure_topics(bootstrap, [topic], timeout_s=timeout_s)
    return name


def _sort_outcomes(response: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    created: list[str] = []
    existing: list[str] = []
    failures: list[str] = []
    for result in response["topics"]:
        code = result["error_code"]
        if code == 0:
            created.append(result["name"])
        elif code == TOPIC_ALREADY_EXISTS:
            existing.append(result["name"])
        else:
            failures.append(f"{result['name']}: {code} {result.get('error_message')}")
    if failures:
        raise TopicSetupError(
            "the broker refused to create topics: "
            + "; ".join(failures)
            + ". Fix the topic's entry in send_schemas.topics or the broker's config."
        )
    return tuple(created), tuple(existing)


def _check_existing(admin: Any, topics: list[Topic]) -> None:
    described = {
        item["name"]: item for item in admin.describe_topics([t.name for t in topics])
    }
    resources = [
        ConfigResource(
            ConfigResourceType.TOPIC, topic.name, configs={"retention.ms": None}
        )
        for topic in topics
    ]
    configs = admin.describe_configs(resources, config_filter="all").get("topic", {})
    mismatches: list[str] = []
    for topic in topics:
        partitions = len(described.get(topic.name, {}).get("partitions") or [])
        retention = configs.get(topic.name, {}).get("retention.ms", {}).get("value")
        if partitions != topic.partitions:
            mismatches.append(
                f"{topic.name} has {partitions} partitions, not {topic.partitions}"
            )
        if retention != str(topic.retention_ms):
            mismatches.append(
                f"{topic.name} has retention.ms={retention}, not {topic.retention_ms}"
            )
    if mismatches:
        raise TopicSetupError(
            "existing topics differ from send_schemas.topics: "
            + "; ".join(mismatches)
            + ". Delete them (or the dev broker's run directory) and start again."
        )
