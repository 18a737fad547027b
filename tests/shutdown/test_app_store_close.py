"""Intake's HTTP app shuts down in order: the relay thread is joined before the store
closes, and a thread that overstays its stop timeout keeps the store open under it.

The app owns its SQLite store (opened from ``INTAKE_DATABASE_URL``) and runs its relay
thread on the real broker, with a backlog of thousands of events. The relay is held
inside a round (just before it reads the store) while the app shuts down with a short
stop timeout; once the shutdown is over the round goes on. Closing the store under it
used to crash the interpreter or fail the round with "Cannot operate on a closed
database"; now the round finishes, the relay stops, and the store is still usable.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

import intake.adapters.relay as intake_relay
from intake.adapters.relay import RelayThread, build_relay
from intake.entrypoints.http import create_app
from intake.settings import IntakeSettings
from sendkit.relay import OutboxRelay
from sendkit.store import EventStore

from .shutdown_support import fill_store, wait_for

BACKLOG_CASES = 60
PER_CASE = 50  # 3,000 events: several batches of 500
STOP_TIMEOUT_S = 0.5


class HeldRelay(OutboxRelay):
    """An outbox relay whose second round waits, before it reads the store, until the
    test lets it go on: a relay busy with its backlog when the app shuts down."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rounds = 0
        self.held = threading.Event()
        self.go_on = threading.Event()

    def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == 2:
            self.held.set()
            self.go_on.wait()
        return super().run_once()


def test_shutdown_leaves_the_store_open_while_the_relay_is_still_inside_it(
    kafka_bootstrap: str,
    unique_topic: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "intake.db"
    fill_store(path, "/send/intake", BACKLOG_CASES, PER_CASE)
    topic = unique_topic(partitions=3)
    settings = IntakeSettings(
        database_url=f"sqlite:///{path}",
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=True,
        relay_poll_seconds=0.05,
        auth_mode="off",
    )
    monkeypatch.setattr(intake_relay, "STOP_TIMEOUT_S", STOP_TIMEOUT_S)
    relays: list[HeldRelay] = []
    threads: list[RelayThread] = []

    def start(
        settings: IntakeSettings, store: EventStore, registry: CollectorRegistry
    ) -> RelayThread:
        built = build_relay(settings, store, topic=topic, registry=registry)
        relay = HeldRelay(store, topic, built.bootstrap, registry=registry)
        relays.append(relay)
        threads.append(RelayThread(relay, poll_interval=0.05).start())
        return threads[-1]

    app = create_app(settings, relay_factory=start)
    store = app.state.store
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        wait_for(lambda: bool(relays) and relays[0].held.is_set(), "a held round")
    # The shutdown is over and the relay thread is still inside its round.
    overstayed = threads[0].is_alive()

    relays[0].go_on.set()
    wait_for(lambda: not threads[0].is_alive(), "the relay thread to stop")
    checkpoint = store.get_checkpoint(relays[0].checkpoint_name)
    store.close()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    messages = "\n".join(r.getMessage() for r in errors)
    assert overstayed
    assert "left open" in messages
    assert "closed database" not in caplog.text
    assert "is closed" not in caplog.text
    assert "died" not in messages
    # The held round published its batch and moved the checkpoint on a live store.
    assert checkpoint >= 2 * relays[0].batch_size
    assert relays[0].rounds == 2
    time.sleep(0)  # nothing more: the store is closed by the test, once, here
