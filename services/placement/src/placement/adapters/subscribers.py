"""The subscribers through which placement follows intake and plans.

Two ``sendkit.subscriber.IdempotentSubscriber`` instances with consumer name
``placement``, one on ``send.intake.events`` and one on ``send.plans.events``, share
one handler (``placement.application.facts.FactsFollower``) and one Kafka consumer
group. Each event is handled once in effect (its id is marked processed in placement's
store in the transaction that updates the case's facts), and an event placement cannot
read goes to ``placement.<topic>.dlq``. ``start_subscriber_threads`` runs both beside
the HTTP app (``PLACEMENT_SUBSCRIBERS_ENABLED=true``);
``python -m placement.entrypoints.subscriber`` runs them as a process of their own. A
Kafka consumer is made inside its loop, retried until the broker answers, so an app
started before Kafka waits for it rather than failing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from placement.settings import CONSUMER_NAME, PlacementSettings
from send_schemas.intake import TOPIC as INTAKE_TOPIC
from send_schemas.plans import TOPIC as PLANS_TOPIC
from sendkit.background import BackgroundLoop, connect_with_retry
from sendkit.store import EventStore
from sendkit.subscriber import Handler, IdempotentSubscriber

FOLLOWED_TOPICS: tuple[str, ...] = (INTAKE_TOPIC, PLANS_TOPIC)


def build_subscriber(
    settings: PlacementSettings,
    store: EventStore,
    handler: Handler,
    topic: str,
    *,
    registry: CollectorRegistry | None = None,
) -> IdempotentSubscriber:
    """The subscriber to ``topic`` for consumer ``placement`` (connects to Kafka)."""
    return IdempotentSubscriber(
        CONSUMER_NAME,
        topic,
        settings.kafka_bootstrap_servers,
        settings.consumer_group,
        store,
        handler,
        registry=registry,
    )


def subscriber_loop(
    settings: PlacementSettings,
    store: EventStore,
    handler: Handler,
    topic: str,
    *,
    registry: CollectorRegistry | None = None,
) -> BackgroundLoop:
    """The subscriber to ``topic`` consuming until stopped, not yet started."""

    def run(stop: threading.Event) -> None:
        subscriber = connect_with_retry(
            lambda: build_subscriber(
                settings, store, handler, topic, registry=registry
            ),
            stop,
            what=f"{CONSUMER_NAME} subscriber to {topic}",
        )
        if subscriber is not None:
            subscriber.run_forever(stop)

    return BackgroundLoop(f"subscriber-{topic}", run)


def start_subscriber_threads(
    settings: PlacementSettings,
    store: EventStore,
    handler: Handler,
    registry: CollectorRegistry | None = None,
    *,
    topics: Sequence[str] = FOLLOWED_TOPICS,
) -> list[BackgroundLoop]:
    """Start following each of ``topics`` on a background thread of its own."""
    return [
        subscriber_loop(settings, store, handler, topic, registry=registry).start()
        for topic in topics
    ]
