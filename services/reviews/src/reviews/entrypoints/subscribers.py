"""``python -m reviews.entrypoints.subscribers``: the plans and intake subscribers.

They read the same settings as the HTTP app (``REVIEWS_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``REVIEWS_CONSUMER_GROUP``) and consume until SIGTERM or
SIGINT, one thread per topic. Leave ``REVIEWS_SUBSCRIBERS_ENABLED`` false in the app
when this runs. The process exits with status 1 if a subscriber stopped of a defect,
so its supervisor restarts it.

On SIGTERM every subscriber finishes the record in hand, commits the offsets of what it
handled and leaves the consumer group, side by side, within
``SEND_SHUTDOWN_TIMEOUT_SECONDS``; ``SEND_HEARTBEAT_FILE`` is kept fresh while every
subscriber's polls handle records or find none waiting (``sendkit.health``). The store
is closed only once every subscriber has stopped; one that has not by then leaves it to
the process's exit, with status 3, as ``sendkit.health.Shutdown`` would.
"""

from __future__ import annotations

import sys

from reviews.adapters.store import open_reviews_store
from reviews.adapters.subscribers import start_subscriber_threads
from reviews.application.service import ReviewsService
from reviews.settings import ReviewsSettings
from sendkit.background import stop_then_close
from sendkit.health import EXIT_OVERDUE, supervised
from sendkit.logging import configure_logging

WATCH_INTERVAL_S = 1.0
STORE_NAME = "the reviews event store"


def main() -> int:
    settings = ReviewsSettings()
    configure_logging(
        "reviews-subscribers", log_format=settings.log_format, level=settings.log_level
    )
    died = False
    with supervised("reviews-subscribers") as shutdown:
        store = open_reviews_store(settings)
        loops = start_subscriber_threads(settings, store, ReviewsService(store))
        try:
            while not shutdown.stop.wait(WATCH_INTERVAL_S):
                if not all(loop.is_alive() for loop in loops):
                    died = True
                    shutdown.request("its watch: a subscriber stopped on a defect")
        finally:
            # The store closes only once every loop has stopped; one still inside it
            # when the time is up leaves it to the process's exit, which says so.
            stopped = stop_then_close(
                loops, store.close, what=STORE_NAME, timeout_s=shutdown.timeout_s
            )
    if died:
        return 1
    return 0 if stopped else EXIT_OVERDUE


if __name__ == "__main__":
    sys.exit(main())
