"""``python -m reviews.entrypoints.subscribers``: the plans and intake subscribers.

They read the same settings as the HTTP app (``REVIEWS_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``REVIEWS_CONSUMER_GROUP``) and consume until SIGTERM or
SIGINT, one thread per topic. Leave ``REVIEWS_SUBSCRIBERS_ENABLED`` false in the app
when this runs. The process exits with status 1 if a subscriber stopped of a defect,
so its supervisor restarts it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from reviews.adapters.store import open_reviews_store
from reviews.adapters.subscribers import start_subscriber_threads
from reviews.application.service import ReviewsService
from reviews.settings import ReviewsSettings
from sendkit.logging import configure_logging

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


def main() -> int:
    settings = ReviewsSettings()
    configure_logging(
        "reviews-subscribers", log_format=settings.log_format, level=settings.log_level
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info(
            "subscribers asked to stop by signal %d", signum, extra={"signal": signum}
        )
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    store = open_reviews_store(settings)
    loops = start_subscriber_threads(settings, store, ReviewsService(store))
    died = False
    try:
        while not stop.wait(WATCH_INTERVAL_S):
            if not all(loop.is_alive() for loop in loops):
                died = True
                break
    finally:
        for loop in loops:
            loop.stop()
        store.close()
    return 1 if died else 0


if __name__ == "__main__":
    sys.exit(main())
