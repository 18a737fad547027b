"""The subscriber to ``send.intake.events`` through which plans reacts to intake.

It is a ``sendkit.subscriber.IdempotentSubscriber`` with consumer name ``plans``: each
intake event is handled once in effect (its id is marked processed in the plans store
in the transaction of what the handler appends), and an event it cannot read goes to
``plans.send.intake.events.dlq``. ``start_subscriber_thread`` runs it beside the HTTP
app (``PLANS_SUBSCRIBER_ENABLED=true``); ``python -m plans.entrypoints.subscriber`` runs
it as a process of its own. The Kafka consumer is made inside the loop, retried until
the broker answers, so an app started before Kafka waits for it rather than failing.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from plans.settings import CONSUMER_NAME, PlansSettings
from send_schemas.intake import TOPIC as INTAKE_TOPIC
from sendkit.background import BackgroundLoop, connect_with_retry
from sendkit.store import EventStore
from sendkit.subscriber import Handler, IdempotentSubscriber


def build_subscriber(
    settings: PlansSettings,
    store: EventStore,
    handler: Handler,
    *,
    topic: str = INTAKE_TOPIC,
    registry: CollectorRegistry | None = None,
) -> IdempotentSubscriber:
    """The subscriber to ``topic`` for consumer ``plans`` (connects to Kafka)."""
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
    settings: PlansSettings,
    store: EventStore,
    handler: Handler,
    *,
    topic: str = INTAKE_TOPIC,
    registry: CollectorRegistry | None = None,
) -> BackgroundLoop:
    """The subscriber consuming until stopped, not yet started."""

    def run(stop: threading.Event) -> None:
        subscriber = connect_with_retry(
            lambda: build_subscriber(
                settings, store, handler, topic=topic, registry=registry
            ),
            stop,
            what=f"{CONSUMER_NAME} subscriber to {topic}",
        )
        if subscriber is not None:
            subscriber.run_forever(stop)

    return BackgroundLoop(f"subscriber-{topic}", run)


def start_subscriber_thread(
    settings: PlansSettings,
    store: EventStore,
    handler: Handler,
    registry: CollectorRegistry | None = None,
) -> BackgroundLoop:
    """Start reacting to intake's events on a background thread."""
    return subscriber_loop(settings, store, handler, registry=registry).start()
