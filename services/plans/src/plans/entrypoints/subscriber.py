"""``python -m plans.entrypoints.subscriber``: plans' reaction to intake as a process.

It reads the same settings as the HTTP app (``PLANS_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``PLANS_CONSUMER_GROUP``), consumes ``send.intake.events``
until SIGTERM or SIGINT, and exits non-zero if the handler meets a defect (its
supervisor restarts it, and the event is redelivered). Leave
``PLANS_SUBSCRIBER_ENABLED`` false in the app when this runs.

On SIGTERM it finishes the record in hand, commits the offsets of what it handled and
leaves the consumer group, within ``SEND_SHUTDOWN_TIMEOUT_SECONDS``; each poll that
handled records or found none waiting keeps ``SEND_HEARTBEAT_FILE`` fresh
(``sendkit.health``).
"""

from __future__ import annotations

import sys

from plans.adapters.store import open_plans_store
from plans.adapters.subscriber import build_subscriber
from plans.application.reactions import IntakeReactions
from plans.settings import PlansSettings
from sendkit.background import connect_with_retry
from sendkit.health import supervised
from sendkit.logging import configure_logging


def main() -> int:
    settings = PlansSettings()
    configure_logging(
        "plans-subscriber", log_format=settings.log_format, level=settings.log_level
    )
    with supervised("plans-subscriber") as shutdown:
        stop = shutdown.stop
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
