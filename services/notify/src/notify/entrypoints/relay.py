"""The outbox relay on a worker thread: notify's events to ``send.notify.events``.

The kernel's ``OutboxRelay`` publishes what notify's store holds, in order, from its
checkpoint; this thread runs it beside the faust agents so one process serves notify.
It publishes only while it holds the relay lock of notify's store (a file lock beside
the SQLite file, an advisory lock on PostgreSQL), so two workers on one store never
publish at once.
It can also run as its own process (``python -m sendkit.relay --store <url> --topic
send.notify.events --source /send/notify``) with ``NOTIFY_RELAY_ENABLED=false`` here.
"""

from __future__ import annotations

import logging
import threading

from sendkit.relay import OutboxRelay, run_one_at_a_time
from sendkit.store.base import EventStore

log = logging.getLogger(__name__)


class RelayThread(threading.Thread):
    """Runs an ``OutboxRelay`` while this replica holds the relay lock of its store
    (``sendkit.relay.run_one_at_a_time``), until ``stop`` is called."""

    def __init__(
        self,
        store: EventStore,
        topic: str,
        bootstrap: str,
        *,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__(name="notify-relay", daemon=True)
        self.relay = OutboxRelay(store, topic, bootstrap)
        self._poll = poll_interval
        self._stop_requested = threading.Event()

    def run(self) -> None:
        try:
            run_one_at_a_time(
                self._fresh_relay,
                self.relay.store,
                self._stop_requested,
                poll_interval=self._poll,
            )
        except Exception:
            # run_forever retries Kafka and store failures itself; anything else is a
            # bug, and the events stay in the store for the next start.
            log.exception("relay thread stopped on an unexpected error")

    def _fresh_relay(self) -> OutboxRelay:
        # Another replica may have moved the checkpoint while this one stood by.
        self.relay.forget_checkpoint()
        return self.relay

    def request_stop(self) -> None:
        """Ask the relay to stop after its round, without waiting."""
        self._stop_requested.set()

    def stop(self, timeout: float | None = None) -> None:
        self.request_stop()
        if self.is_alive():
            self.join(timeout)
