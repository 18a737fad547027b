"""The outbox relay that publishes intake's events to ``send.intake.events``.

``RelayThread`` runs ``sendkit.relay.OutboxRelay`` on a daemon thread beside the HTTP
app (``INTAKE_RELAY_ENABLED=true``); ``python -m intake.entrypoints.relay`` runs the
same relay as a process of its own. Run one or the other for a store, never both: two
relays on one checkpoint lose nothing but publish every event twice.
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import CollectorRegistry

from intake.settings import IntakeSettings
from send_schemas.intake import TOPIC
from sendkit.relay import OutboxRelay
from sendkit.store import EventStore

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


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


class RelayThread:
    """An ``OutboxRelay`` publishing on a daemon thread until ``stop()``."""

    def __init__(self, relay: OutboxRelay, *, poll_interval: float) -> None:
        self.relay = relay
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"relay-{relay.topic}", daemon=True
        )

    def _run(self) -> None:
        try:
            self.relay.run_forever(self._stop, self._poll_interval)
        except Exception:
            # run_forever retries Kafka and store failures itself; anything else is a
            # defect, and the readiness check reports the thread as stopped.
            log.exception("relay thread died", extra={"topic": self.relay.topic})
            raise

    def start(self) -> RelayThread:
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Ask the relay to stop after its current round and wait for it."""
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.error(
                "relay thread did not stop within %.0f s",
                STOP_TIMEOUT_S,
                extra={"topic": self.relay.topic},
            )


def start_relay_thread(
    settings: IntakeSettings,
    store: EventStore,
    registry: CollectorRegistry | None = None,
) -> RelayThread:
    """Start publishing intake's events from ``store`` on a background thread."""
    relay = build_relay(settings, store, registry=registry)
    return RelayThread(relay, poll_interval=settings.relay_poll_seconds).start()
