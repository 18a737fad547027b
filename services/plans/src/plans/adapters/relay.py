"""The outbox relay that publishes plans' events to ``send.plans.events``.

``start_relay_thread`` runs ``sendkit.relay.OutboxRelay`` as a
``sendkit.background.BackgroundLoop`` beside the HTTP app
(``PLANS_RELAY_ENABLED=true``); ``python -m plans.entrypoints.relay`` runs the same
relay as a process of its own. Either way the relay takes the relay lock of its store
first (``sendkit.relay_lock``), so one publishes and any other stands by.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from plans.settings import PlansSettings
from send_schemas.plans import TOPIC
from sendkit.background import BackgroundLoop
from sendkit.relay import OutboxRelay, exclusive_relay_loop
from sendkit.store import EventStore


def build_relay(
    settings: PlansSettings,
    store: EventStore,
    *,
    topic: str = TOPIC,
    registry: CollectorRegistry | None = None,
) -> OutboxRelay:
    """The relay from ``store`` to plans' topic on the configured brokers."""
    return OutboxRelay(
        store, topic, settings.kafka_bootstrap_servers, registry=registry
    )


def relay_loop(relay: OutboxRelay, settings: PlansSettings) -> BackgroundLoop:
    """``relay`` publishing, while this replica holds the relay lock of its store
    (``sendkit.relay_lock``), until stopped; not yet started."""
    return exclusive_relay_loop(relay, poll_interval=settings.relay_poll_seconds)


def start_relay_thread(
    settings: PlansSettings,
    store: EventStore,
    registry: CollectorRegistry | None = None,
) -> BackgroundLoop:
    """Start publishing plans' events from ``store`` on a background thread."""
    return relay_loop(build_relay(settings, store, registry=registry), settings).start()
