"""The outbox relay on a worker thread: notify's events to ``send.notify.events``.

The kernel's ``OutboxRelay`` publishes what notify's store holds, in order, from its
checkpoint; this thread runs it beside the faust agents so one process serves notify.
It can also run as its own process (``python -m sendkit.relay --store <url> --topic
send.notify.events --source /send/notify``) with ``NOTIFY_RELAY_ENABLED=false`` here.
"""

from __future__ import annotations

import logging
import threading

from sendkit.relay import OutboxRelay
from sendkit.store.base import EventStore

log = logging.getLogger(__name__)


class RelayThread(threading.Thread):
    """Runs ``OutboxRelay.run_forever`` until ``stop`` is called."""

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
            self.relay.run_forever(self._stop_requested, self._poll)
        except Exception:
            # run_forever retries Kafka and store failures itself; anything else is a
            # bug, and the events stay in the store for the next start.
            log.exception("relay thread stopped on an unexpected error")

    def stop(self, timeout: float | None = None) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout)
