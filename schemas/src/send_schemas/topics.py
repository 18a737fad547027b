"""Every Kafka topic of the platform, its one writer and its readers, declared once.

The launcher and the deployment manifests create topics from this table; a test checks
that every topic has a producer and at least one consumer, and that each consumer has
its dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITIONS = 6
INFINITE_RETENTION_MS = -1


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    owner: str
    consumers: tuple[str, ...]
    partitions: int = PARTITIONS
    retention_ms: int = INFINITE_RETENTION_MS
    description: str = ""


INTAKE = Topic(
    "send.intake.events",
    owner="intake",
    consumers=("deadlines", "notify", "plans", "reviews", "placement"),
    description=(
        "Requests for an EHC needs assessment and the decision whether to assess."
    ),
)
PLANS = Topic(
    "send.plans.events",
    owner="plans",
    consumers=("deadlines", "reviews", "placement"),
    description=(
        "Assessments, advice, draft and final EHC plans, amendments and ceasing."
    ),
)
REVIEWS = Topic(
    "send.reviews.events",
    owner="reviews",
    consumers=("deadlines", "notify"),
    description=(
        "Annual and interim reviews of EHC plans and the decisions after them."
    ),
)
PLACEMENT = Topic(
    "send.placement.events",
    owner="placement",
    consumers=("deadlines",),
    description=(
        "School consultations, placement panels, phase transfers and transport."
    ),
)
DEADLINES = Topic(
    "send.deadlines.events",
    owner="deadlines",
    consumers=("notify", "deadlines"),
    description=(
        "Statutory and local clocks: set, approaching, overdue, met, late, cancelled."
    ),
)
NOTIFY = Topic(
    "send.notify.events",
    owner="notify",
    consumers=("deadlines",),
    description="Alerts sent, delivered and failed.",
)
CLOCK_TICKS = Topic(
    "send.clock.ticks",
    owner="ticker",
    consumers=("deadlines",),
    retention_ms=7 * 24 * 3600 * 1000,
    description=(
        "The time, as ticks: one per partition, sent by the ticker or a test."
    ),
)

TOPICS: tuple[Topic, ...] = (
    INTAKE,
    PLANS,
    REVIEWS,
    PLACEMENT,
    DEADLINES,
    NOTIFY,
    CLOCK_TICKS,
)


def dead_letter_topic(consumer: str, source: str) -> str:
    """The dead-letter topic where a consumer puts ``source`` messages it cannot use."""
    return f"{consumer}.{source}.dlq"


def dead_letter_topics() -> tuple[Topic, ...]:
    return tuple(
        Topic(
            dead_letter_topic(consumer, topic.name),
            owner=consumer,
            consumers=("operators",),
            description=f"Messages of {topic.name} that {consumer} could not handle.",
        )
        for topic in TOPICS
        for consumer in topic.consumers
    )


def all_topics() -> tuple[Topic, ...]:
    return TOPICS + dead_letter_topics()


def topic_by_name(name: str) -> Topic:
    for topic in all_topics():
        if topic.name == name:
            return topic
    raise KeyError(f"no topic named {name!r} in the registry (send_schemas.topics)")
