"""The HTTP apps' relay threads: one relay lock per store, and readiness that waits for
a first Kafka bootstrap and then ignores outages.

Each service's app runs its real relay thread (``start_relay_thread``) on a SQLite
file. While it runs, the relay lock of that store is held, so a second replica (a
second lock on the same file) cannot publish; when the app stops, the lock is free.
The stores hold no events, so nothing is published to the services' topics.

Readiness: with no broker at the configured address an app is not ready (its relay
has never reached Kafka) while its liveness is fine; with a broker it becomes ready,
and stays ready (and live) when that broker then goes away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from deadlines.entrypoints.api import create_app as deadlines_app
from deadlines.settings import DeadlinesSettings
from devstack.kafka import start_broker
from devstack.kafka_config import free_port
from intake.entrypoints.http import create_app as intake_app
from intake.settings import IntakeSettings
from placement.entrypoints.http import create_app as placement_app
from placement.settings import PlacementSettings
from plans.entrypoints.http import create_app as plans_app
from plans.settings import PlansSettings
from reviews.entrypoints.http import create_app as reviews_app
from reviews.settings import ReviewsSettings
from send_schemas import intake, placement, plans, reviews
from sendkit.relay_lock import relay_lock_for
from sendkit.store import SQLiteEventStore

# Guards against a hang only; nothing asserts how long anything took.
GUARD_S = 120.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def intake_with(path: Path, bootstrap: str) -> FastAPI:
    return intake_app(
        IntakeSettings(
            database_url=f"sqlite:///{path}",
            kafka_bootstrap_servers=bootstrap,
            relay_enabled=True,
            auth_mode="off",
        )
    )


def plans_with(path: Path, bootstrap: str) -> FastAPI:
    return plans_app(
        PlansSettings(
            database_url=f"sqlite:///{path}",
            kafka_bootstrap_servers=bootstrap,
            relay_enabled=True,
            subscriber_enabled=False,
            auth_mode="off",
        )
    )


def reviews_with(path: Path, bootstrap: str) -> FastAPI:
    return reviews_app(
        ReviewsSettings(
            database_url=f"sqlite:///{path}",
            kafka_bootstrap_servers=bootstrap,
            relay_enabled=True,
            subscribers_enabled=False,
            auth_mode="off",
        )
    )


def placement_with(path: Path, bootstrap: str) -> FastAPI:
    return placement_app(
        PlacementSettings(
            database_url=f"sqlite:///{path}",
            kafka_bootstrap_servers=bootstrap,
            relay_enabled=True,
            subscribers_enabled=False,
            auth_mode="off",
        )
    )


SERVICES: dict[str, tuple[Callable[[Path, str], FastAPI], str, str]] = {
    "intake": (intake_with, intake.TOPIC, "/send/intake"),
    "plans": (plans_with, plans.TOPIC, "/send/plans"),
    "reviews": (reviews_with, reviews.TOPIC, "/send/reviews"),
    "placement": (placement_with, placement.TOPIC, "/send/placement"),
}


def lock_is_free(path: Path, source: str, topic: str) -> bool:
    """Whether a second replica could take the relay lock of the store at ``path``."""
    store = SQLiteEventStore(path, source)
    lock = relay_lock_for(store, f"relay:{topic}")
    try:
        return lock.try_acquire()
    finally:
        lock.release()
        store.close()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_app_relay_thread_holds_the_relay_lock_while_it_runs(
    service: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    make, topic, source = SERVICES[service]
    path = tmp_path / f"{service}.db"
    app = make(path, kafka_bootstrap)

    with TestClient(app) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, "readiness")
        ready = client.get("/readyz").json()
        held_by_the_app = not lock_is_free(path, source, topic)
    free_after = lock_is_free(path, source, topic)

    assert held_by_the_app
    assert free_after
    assert any(name.startswith("kafka") for name in ready["checks"])
    assert all(result == "ok" for result in ready["checks"].values())


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_app_is_not_ready_until_its_relay_has_reached_kafka(
    service: str, tmp_path: Path
) -> None:
    make, _, _ = SERVICES[service]
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    app = make(tmp_path / f"{service}.db", nobody)

    with TestClient(app) as client:
        time.sleep(1.0)  # the relay thread has started and is trying
        readiness = client.get("/readyz")
        liveness = client.get("/healthz")

    assert readiness.status_code == 503
    failed = [
        name for name, result in readiness.json()["checks"].items() if result != "ok"
    ]
    assert failed
    assert all(name.startswith("kafka") for name in failed)
    assert liveness.status_code == 200


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[dict[str, Any]]:
    holder: dict[str, Any] = {"broker": start_broker(run_dir=tmp_path / "kafka")}
    yield holder
    if holder["broker"] is not None:
        holder["broker"].stop()


def test_an_outage_after_the_first_bootstrap_leaves_the_app_ready_and_live(
    tmp_path: Path, own_broker: dict[str, Any]
) -> None:
    broker = own_broker["broker"]
    app = plans_with(tmp_path / "plans.db", broker.bootstrap_servers)

    with TestClient(app) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, "readiness")
        broker.stop()
        own_broker["broker"] = None
        time.sleep(3.0)  # the relay's next rounds meet no broker
        readiness = client.get("/readyz")
        liveness = client.get("/healthz")

    assert readiness.status_code == 200
    assert liveness.status_code == 200


def test_the_deadlines_read_api_is_not_ready_until_its_projector_reached_kafka(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_MODE", "off")
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    app = deadlines_app(
        DeadlinesSettings(
            kafka_bootstrap_servers=nobody,
            database_url=f"sqlite:///{tmp_path / 'deadlines.db'}",
        ),
        projector=True,
    )

    with TestClient(app) as client:
        time.sleep(1.0)  # the projector threads have started and are trying
        readiness = client.get("/readyz")
        liveness = client.get("/healthz")

    assert readiness.status_code == 503
    assert readiness.json()["checks"]["kafka_bootstrapped"] == "failed"
    assert readiness.json()["checks"]["store"] == "ok"
    assert liveness.status_code == 200


def test_a_standby_replica_becomes_ready_while_the_other_publishes(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sendkit.relay_lock")
    path = tmp_path / "intake.db"
    first = intake_with(path, kafka_bootstrap)
    second = intake_with(path, kafka_bootstrap)

    with TestClient(first) as one:
        wait_for(lambda: one.get("/readyz").status_code == 200, "the first replica")
        with TestClient(second) as two:
            wait_for(
                lambda: two.get("/readyz").status_code == 200, "the second replica"
            )
            held = not lock_is_free(path, "/send/intake", intake.TOPIC)
            live = two.get("/healthz").status_code

    assert held
    assert live == 200
    # One replica took the lock; the other, ready all the same, stood by.
    assert caplog.text.count("relay lock relay:send.intake.events taken") == 1
    assert "relay lock relay:send.intake.events is held elsewhere" in caplog.text
