"""``python -m placement.entrypoints.relay``: placement's outbox relay as a process.

It reads the same settings as the HTTP app (``PLACEMENT_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``PLACEMENT_RELAY_POLL_SECONDS``) and publishes until
SIGTERM or SIGINT. Leave ``PLACEMENT_RELAY_ENABLED`` false in the app when this runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from placement.adapters.relay import build_relay
from placement.adapters.store import open_placement_store
from placement.settings import PlacementSettings
from sendkit.logging import configure_logging

log = logging.getLogger(__name__)


def main() -> int:
    settings = PlacementSettings()
    configure_logging(
        "placement-relay", log_format=settings.log_format, level=settings.log_level
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("relay asked to stop by signal %d", signum, extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    store = open_placement_store(settings)
    relay = build_relay(settings, store)
    try:
        relay.run_forever(stop, settings.relay_poll_seconds)
    finally:
        relay.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
