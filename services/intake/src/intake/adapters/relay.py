"""The outbox relay that publishes intake's events to ``send.intake.events``.

``RelayThread`` runs ``sendkit.relay.OutboxRelay`` on a ``sendkit.background``
loop beside the HTTP app (``INTAKE_RELAY_ENABLED=true``); ``python -m
intake.entrypoints.relay`` runs the same relay as a process of its own. Either way the
relay takes the relay lock of its store first (``sendkit.relay_lock``), so however many
replicas run, one publishes and the others stand by.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from intake.settings import IntakeSettings
from send_schemas.intake import TOPIC
from sendkit import background
from sendkit.background import BackgroundLoop
from sendkit.relay import OutboxRelay, exclusive_relay_loop
from sendkit.store import EventStore

STOP_TIMEOUT_S = background.STOP_TIMEOUT_S
"""The longest the app's shutdown waits for the relay thread before leaving it be;
the shutdown's shared timeout (``sendkit.background.stop_then_close``) may cut it
shorter."""


def build_relay(
    settings: IntakeSettings,
    store: EventStore,
    *,
    topic: str = TOPIC,
    registry: CollectorRegistry | None = None,
) -> OutboxRelay:
    """The relay from ``store`` to intake's topic on the configured brokers."""
    return OutboxRelay(
        store, topic, settings.kafka_bootstrap_servers, registry=registry
    )


class RelayThread(BackgroundLoop):
    """An ``OutboxRelay`` publishing, while this replica holds the relay lock, on a
    daemon thread until ``stop()``."""

    def __init__(
        self,
        relay: OutboxRelay,
        *,
        poll_interval: float,
        stop_timeout_s: float | None = None,
    ) -> None:
        self.relay = relay
        loop = exclusive_relay_loop(relay, poll_interval=poll_interval)
        super().__init__(
            loop.name,
            loop.loop,
            stop_timeout_s=STOP_TIMEOUT_S if stop_timeout_s is None else stop_timeout_s,
        )


def start_relay_thread(
    settings: IntakeSettings,
    store: EventStore,
    registry: CollectorRegistry | None = None,
) -> RelayThread:
    """Start publishing intake's events from ``store`` on a background thread."""
    relay = build_relay(settings, store, registry=registry)
    return RelayThread(relay, poll_interval=settings.relay_poll_seconds).start()
