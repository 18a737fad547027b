"""The outbox relay that publishes the reviews events to ``send.reviews.events``.

``start_relay_thread`` runs ``sendkit.relay.OutboxRelay`` on a
``sendkit.background.BackgroundLoop`` beside the HTTP app
(``REVIEWS_RELAY_ENABLED=true``); ``python -m reviews.entrypoints.relay`` runs the same
relay as a process of its own. Either way the relay takes the relay lock of its store
first (``sendkit.relay_lock``), so one publishes and any other stands by.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from reviews.settings import ReviewsSettings
from send_schemas.reviews import TOPIC
from sendkit.background import BackgroundLoop
from sendkit.relay import OutboxRelay, exclusive_relay_loop
from sendkit.store import EventStore


def build_relay(
    settings: ReviewsSettings,
    store: EventStore,
    *,
    topic: str = TOPIC,
    registry: CollectorRegistry | None = None,
) -> OutboxRelay:
    """The relay from ``store`` to the reviews topic on the configured brokers."""
    return OutboxRelay(
        store, topic, settings.kafka_bootstrap_servers, registry=registry
    )


def relay_loop(relay: OutboxRelay, poll_interval: float) -> BackgroundLoop:
    """``relay`` publishing on a daemon thread, while this replica holds the relay
    lock of its store (``sendkit.relay_lock``); not yet started."""
    return exclusive_relay_loop(relay, poll_interval=poll_interval)


def start_relay_thread(
    settings: ReviewsSettings,
    store: EventStore,
    registry: CollectorRegistry | None = None,
) -> BackgroundLoop:
    """Start publishing the reviews events from ``store`` on a background thread."""
    relay = build_relay(settings, store, registry=registry)
    return relay_loop(relay, settings.relay_poll_seconds).start()
