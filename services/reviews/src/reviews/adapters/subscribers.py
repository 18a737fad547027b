"""The Kafka subscribers through which reviews follows the plans and intake services.

Each is a ``sendkit.subscriber.IdempotentSubscriber`` with the consumer name
``reviews`` (which scopes the processed event ids in the reviews store and names the
dead-letter topics ``reviews.send.plans.events.dlq`` and
``reviews.send.intake.events.dlq``) and its own consumer group,
``<REVIEWS_CONSUMER_GROUP>.plans`` and ``<REVIEWS_CONSUMER_GROUP>.intake``. Their
handler is ``ReviewsService.react``.

``start_subscriber_threads`` runs both on ``sendkit.background.BackgroundLoop`` threads
beside the HTTP app (``REVIEWS_SUBSCRIBERS_ENABLED=true``); ``python -m
reviews.entrypoints.subscribers`` runs them as a process of their own. A loop that
starts before Kafka is reachable waits for it (``connect_with_retry``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from reviews.application.service import ReviewsService
from reviews.settings import CONSUMER, ReviewsSettings
from send_schemas import intake, plans
from sendkit.background import BackgroundLoop, connect_with_retry
from sendkit.store import EventStore
from sendkit.subscriber import IdempotentSubscriber

FOLLOWED_TOPICS: Mapping[str, str] = {"plans": plans.TOPIC, "intake": intake.TOPIC}
"""The topics reviews follows, by their owner."""


def build_subscriber(
    settings: ReviewsSettings,
    store: EventStore,
    service: ReviewsService,
    owner: str,
    *,
    topic: str | None = None,
    registry: CollectorRegistry | None = None,
    **options: Any,
) -> IdempotentSubscriber:
    """The subscriber to ``owner``'s topic (``topic`` replaces it in tests)."""
    return IdempotentSubscriber(
        CONSUMER,
        topic or FOLLOWED_TOPICS[owner],
        settings.kafka_bootstrap_servers,
        f"{settings.consumer_group}.{owner}",
        store,
        service.react,
        registry=registry,
        **options,
    )


def subscriber_loop(
    settings: ReviewsSettings,
    store: EventStore,
    service: ReviewsService,
    owner: str,
    *,
    topic: str | None = None,
    registry: CollectorRegistry | None = None,
    **options: Any,
) -> BackgroundLoop:
    """A loop consuming ``owner``'s topic until stopped, not yet started."""

    def run(stop: threading.Event) -> None:
        subscriber = connect_with_retry(
            lambda: build_subscriber(
                settings,
                store,
                service,
                owner,
                topic=topic,
                registry=registry,
                **options,
            ),
            stop,
            what=f"{owner} subscriber",
        )
        if subscriber is not None:
            subscriber.run_forever(stop)

    return BackgroundLoop(f"subscriber-{topic or FOLLOWED_TOPICS[owner]}", run)


def start_subscriber_threads(
    settings: ReviewsSettings,
    store: EventStore,
    service: ReviewsService,
    registry: CollectorRegistry | None = None,
) -> list[BackgroundLoop]:
    """Start following every topic in ``FOLLOWED_TOPICS`` on background threads."""
    return [
        subscriber_loop(settings, store, service, owner, registry=registry).start()
        for owner in FOLLOWED_TOPICS
    ]
