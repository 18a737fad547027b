"""``python -m intake.entrypoints.relay``: intake's outbox relay as its own process.

It reads the same settings as the HTTP app (``INTAKE_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``INTAKE_RELAY_POLL_SECONDS``) and publishes until SIGTERM
or SIGINT. Leave ``INTAKE_RELAY_ENABLED`` false in the app when this runs.

Several replicas may run: the relay lock (``sendkit.relay_lock``: a PostgreSQL
advisory lock, or a file lock beside a SQLite file) lets one publish and the others
stand by, and a standby takes over from the checkpoint when the publisher goes. On
SIGTERM the batch in flight is finished and checkpointed within
``SEND_SHUTDOWN_TIMEOUT_SECONDS``; every round keeps ``SEND_HEARTBEAT_FILE`` fresh
unless events wait that cannot be published (``sendkit.health``).
"""

from __future__ import annotations

import sys

from intake.adapters.relay import build_relay
from intake.adapters.store import open_intake_store
from intake.settings import IntakeSettings
from sendkit.health import supervised
from sendkit.logging import configure_logging
from sendkit.relay import run_one_at_a_time


def main() -> int:
    settings = IntakeSettings()
    configure_logging(
        "intake-relay", log_format=settings.log_format, level=settings.log_level
    )
    with supervised("intake-relay") as shutdown:
        store = open_intake_store(settings)
        try:
            run_one_at_a_time(
                lambda: build_relay(settings, store),
                store,
                shutdown.stop,
                poll_interval=settings.relay_poll_seconds,
            )
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
