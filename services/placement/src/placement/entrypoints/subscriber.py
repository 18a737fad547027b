"""``python -m placement.entrypoints.subscriber``: placement following intake and plans.

It reads the same settings as the HTTP app (``PLACEMENT_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``PLACEMENT_CONSUMER_GROUP``), follows
``send.intake.events`` and ``send.plans.events`` on a thread each until SIGTERM or
SIGINT, and exits non-zero if a subscriber stops on a defect (its supervisor restarts
it, and the event is redelivered). Leave ``PLACEMENT_SUBSCRIBERS_ENABLED`` false in the
app when this runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from placement.adapters.store import open_placement_store
from placement.adapters.subscribers import start_subscriber_threads
from placement.application.facts import FactsFollower
from placement.settings import PlacementSettings
from sendkit.logging import configure_logging

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


def main() -> int:
    settings = PlacementSettings()
    configure_logging(
        "placement-subscriber", log_format=settings.log_format, level=settings.log_level
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info(
            "subscribers asked to stop by signal %d", signum, extra={"signal": signum}
        )
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    store = open_placement_store(settings)
    loops = start_subscriber_threads(settings, store, FactsFollower())
    failed = False
    try:
        while not stop.wait(WATCH_INTERVAL_S):
            if not all(loop.is_alive() for loop in loops):
                failed = True
                break
    finally:
        for loop in loops:
            loop.stop()
        store.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
