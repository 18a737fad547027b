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
subscriber's polls handle records or find none waiting (``sendkit.health``). The store
is closed only once every subscriber has stopped; one that has not by then leaves it to
the process's exit, with status 3, as ``sendkit.health.Shutdown`` would.
"""

from __future__ import annotations

import sys

from placement.adapters.store import open_placement_store
from placement.adapters.subscribers import start_subscriber_threads
from placement.application.facts import FactsFollower
from placement.settings import PlacementSettings
from sendkit.background import stop_then_close
from sendkit.health import EXIT_OVERDUE, supervised
from sendkit.logging import configure_logging

WATCH_INTERVAL_S = 1.0
STORE_NAME = "placement's event store"


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
            # The store closes only once every loop has stopped; one still inside it
            # when the time is up leaves it to the process's exit, which says so.
            stopped = stop_then_close(
                loops, store.close, what=STORE_NAME, timeout_s=shutdown.timeout_s
            )
    if failed:
        return 1
    return 0 if stopped else EXIT_OVERDUE


if __name__ == "__main__":
    sys.exit(main())
