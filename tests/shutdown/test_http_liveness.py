"""An HTTP service's ``/healthz`` judges its background loops by their progress: intake
with its relay thread on, events waiting and Kafka unreachable fails liveness once the
stall time has passed. Readiness: the store answers and the thread runs, and only the
check that the relay's producer has reached Kafka once fails (it never has here).

No broker is needed: the relay's bootstrap is a loopback port nothing listens on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from intake.entrypoints.http import create_app
from intake.settings import IntakeSettings
from sendkit.events import NewEvent
from sendkit.store import SQLiteEventStore

from .shutdown_support import wait_for

NOWHERE = "127.0.0.1:9"  # the discard port: nothing listens there


def test_a_relay_thread_with_events_it_cannot_publish_fails_healthz(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SEND_STALL_SECONDS", "1")
    store = SQLiteEventStore(tmp_path / "intake.db", "/send/intake")
    store.append("case-1", 0, [NewEvent(type="send.intake.Noted.v1", data={})] * 2)
    settings = IntakeSettings(
        database_url="sqlite:///unused.db",
        kafka_bootstrap_servers=NOWHERE,
        relay_enabled=True,
        relay_poll_seconds=0.05,
        auth_mode="off",
        send_env="development",
    )
    app = create_app(settings, store=store)
    try:
        with TestClient(app) as client:

            def blocked() -> bool:
                # Stalled from its first round on; blocked once that round has failed
                # (the producer gives up on the broker after its bootstrap timeout).
                answer = client.get("/healthz")
                loops = answer.json().get("loops", {})
                state = loops.get("relay:send.intake.events", {})
                return answer.status_code == 503 and bool(state.get("waiting") == 2)

            wait_for(blocked, "the relay's failed round to fail liveness")
            stalled = client.get("/healthz").json()
            ready = client.get("/readyz")
    finally:
        store.close()

    assert "relay:send.intake.events" in stalled["detail"]
    assert stalled["loops"]["relay:send.intake.events"]["waiting"] == 2
    checks = ready.json()["checks"]
    assert ready.status_code == 503
    assert checks["event_store"] == "ok"
    assert checks["outbox_relay"] == "ok"
    assert checks["kafka_producer"] == "failed"
