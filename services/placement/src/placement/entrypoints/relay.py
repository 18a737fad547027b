"""``python -m placement.entrypoints.relay``: placement's outbox relay as a process.

It reads the same settings as the HTTP app (``PLACEMENT_DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``PLACEMENT_RELAY_POLL_SECONDS``) and publishes until
SIGTERM or SIGINT. Leave ``PLACEMENT_RELAY_ENABLED`` false in the app when this runs.

Several replicas may run: the relay lock (``sendkit.relay_lock``: a PostgreSQL
advisory lock, or a file lock beside a SQLite file) lets one publish and the others
stand by, and a standby takes over from the checkpoint when the publisher goes. On
SIGTERM the batch in flight is finished and checkpointed within
``SEND_SHUTDOWN_TIMEOUT_SECONDS``; every round keeps ``SEND_HEARTBEAT_FILE`` fresh
unless events wait that cannot be published (``sendkit.health``).
"""

from __future__ import annotations

import sys

from placement.adapters.relay import build_relay
from placement.adapters.store import open_placement_store
from placement.settings import PlacementSettings
from sendkit.health import supervised
from sendkit.logging import configure_logging
from sendkit.relay import run_one_at_a_time


def main() -> int:
    settings = PlacementSettings()
    configure_logging(
        "placement-relay", log_format=settings.log_format, level=settings.log_level
    )
    with supervised("placement-relay") as shutdown:
        store = open_placement_store(settings)
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
