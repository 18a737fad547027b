"""``python -m plans.entrypoints.subscriber``: plans' reaction to intake as a process.

It reads the same settings as the HTTP app (``PLANS_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``PLANS_CONSUMER_GROUP``), consumes ``send.intake.events``
until SIGTERM or SIGINT, and exits non-zero if the handler meets a defect (its
supervisor restarts it, and the event is redelivered). Leave
``PLANS_SUBSCRIBER_ENABLED`` false in the app when this runs.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from plans.adapters.store import open_plans_store
from plans.adapters.subscriber import build_subscriber
from plans.application.reactions import IntakeReactions
from plans.settings import PlansSettings
from sendkit.background import connect_with_retry
from sendkit.logging import configure_logging

log = logging.getLogger(__name__)


def main() -> int:
    settings = PlansSettings()
    configure_logging(
        "plans-subscriber", log_format=settings.log_format, level=settings.log_level
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info(
            "subscriber asked to stop by signal %d", signum, extra={"signal": signum}
        )
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    store = open_plans_store(settings)
    try:
        subscriber = connect_with_retry(
            lambda: build_subscriber(settings, store, IntakeReactions()),
            stop,
            what="plans subscriber to send.intake.events",
        )
        if subscriber is not None:
            subscriber.run_forever(stop)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
