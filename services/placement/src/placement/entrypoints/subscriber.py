"""``python -m placement.entrypoints.subscriber``: placement following intake and plans.

It reads the same settings as the HTTP app (``PLACEMENT_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``PLACEMENT_CONSUMER_GROUP``), follows
``send.intake.events`` and ``send.plans.events`` on a thread each until SIGTERM or
SIGINT, and exits non-zero if a subscriber stops on a defect (its supervisor restarts
it, and the event is redelivered). Leave ``PLACEMENT_SUBSCRIBERS_ENABLED`` false in the
app when this runs.

On SIGTERM every subscriber finishes the record in hand, commits the offsets of what it
handled and leaves the consumer group, side by side, within
``SEND_SHUTDOWN_TIMEOUT_SECONDS``; ``SEND_HEARTBEAT_FILE`` is kept fresh while every
subscriber's polls handle records or find none waiting (``sendkit.health``).
"""

from __future__ import annotations

import sys

from placement.adapters.store import open_placement_store
from placement.adapters.subscribers import start_subscriber_threads
from placement.application.facts import FactsFollower
from placement.settings import PlacementSettings
from sendkit.background import stop_loops
from sendkit.health import supervised
from sendkit.logging import configure_logging

WATCH_INTERVAL_S = 1.0


def main() -> int:
    settings = PlacementSettings()
    configure_logging(
        "placement-subscriber", log_format=settings.log_format, level=settings.log_level
    )
    failed = False
    with supervised("placement-subscriber") as shutdown:
        store = open_placement_store(settings)
        loops = start_subscriber_threads(settings, store, FactsFollower())
        try:
            while not shutdown.stop.wait(WATCH_INTERVAL_S):
                if not all(loop.is_alive() for loop in loops):
                    failed = True
                    shutdown.request("its watch: a subscriber stopped on a defect")
        finally:
            stop_loops(loops)
            store.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
