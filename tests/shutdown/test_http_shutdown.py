"""Intake's HTTP process (uvicorn, with its relay thread) given SIGTERM under a stream
of requests: every request answered 2xx has its events in the store and, once the
process has run again, on the topic, each once.

uvicorn turns SIGTERM into a graceful stop (no new connections, requests in flight
answered) and then the app's lifespan shutdown, which stops the relay after its round;
a restarted process's relay publishes whatever was left.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from devstack.kafka_config import free_port
from sendkit.store import SQLiteEventStore

from .shutdown_support import (
    Process,
    Processes,
    event_ids,
    process_env,
    read_to_end,
    wait_for,
)

CLIENTS = 3
ANSWERED_BEFORE_SIGTERM = 150


def request_body(n: int) -> dict[str, Any]:
    """A valid POST /cases body about a synthetic child."""
    return {
        "requester_type": "parent",
        "child_reference": f"CHILD-{n:05d}",
        "date_of_birth": "2016-05-14",
        "school_urn": 123456,
        "curriculum_year": 3,
        "channel": "email",
        "received_at": "2025-01-06T09:30:00Z",
        "child_name": f"Synthetic Child {n}",
        "requester_name": "Synthetic Parent",
    }


class Callers:
    """Threads posting requests until told to stop; each 2xx answer's event ids kept."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answered: list[str] = []  # event ids of 2xx answers
        self.failures: Counter[str] = Counter()
        self.threads = [
            threading.Thread(target=self._post, args=(n,)) for n in range(CLIENTS)
        ]

    def start(self) -> Callers:
        for thread in self.threads:
            thread.start()
        return self

    def count(self) -> int:
        with self.lock:
            return len(self.answered)

    def _post(self, caller: int) -> None:
        n = 0
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self.stop.is_set():
                n += 1
                try:
                    answer = client.post(
                        "/cases",
                        json=request_body(caller * 100_000 + n),
                        headers={"X-Staff-Id": "ehcco-1"},
                    )
                except httpx.HTTPError as error:
                    # Refused or cut off during the stop: no answer, no promise.
                    with self.lock:
                        self.failures[type(error).__name__] += 1
                    continue
                if answer.is_success:
                    ids = [event["id"] for event in answer.json()["events"]]
                    with self.lock:
                        self.answered += ids
                else:
                    with self.lock:
                        self.failures[str(answer.status_code)] += 1

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def serve(
    processes: Processes, topic: str, env: dict[str, str], log: Path, base: str
) -> Process:
    server = processes.launch("intake-api", topic, env, log)

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, "intake to answer")
    return server


def stored_ids(path: Path) -> list[str]:
    store = SQLiteEventStore(path, "/send/intake")
    try:
        return [event.id for event in store.read_all(after=0, limit=1_000_000)]
    finally:
        store.close()


def test_every_request_answered_2xx_before_sigterm_is_stored_and_published_once(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    topic = unique_topic(partitions=6)
    db = tmp_path / "intake.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env(
        INTAKE_DATABASE_URL=f"sqlite:///{db}",
        INTAKE_HOST="127.0.0.1",
        INTAKE_PORT=str(port),
        INTAKE_RELAY_ENABLED="true",
        INTAKE_RELAY_POLL_SECONDS="0.05",
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        SEND_ENV="development",
        AUTH_MODE="off",
    )

    # SIGTERM lands while requests keep coming.
    first = serve(processes, topic, env, tmp_path / "first.log", base)
    callers = Callers(base).start()
    try:
        wait_for(
            lambda: callers.count() >= ANSWERED_BEFORE_SIGTERM, "answers to arrive"
        )
        first.popen.send_signal(signal.SIGTERM)  # as Kubernetes sends it
        first_code = first.wait()
    finally:
        callers.finish()
    answered = list(callers.answered)
    stored_after_stop = set(stored_ids(db))

    # Run again: the relay publishes whatever the first run left.
    second = serve(processes, topic, env, tmp_path / "second.log", base)
    wait_for(
        lambda: len(read_to_end(kafka_bootstrap, topic)) >= len(stored_after_stop),
        "the store to be published",
    )
    second_code = second.terminate()
    published = event_ids(read_to_end(kafka_bootstrap, topic))

    # uvicorn re-raises the SIGTERM it handled once the app has shut down.
    assert first_code in (0, -signal.SIGTERM), first.text()[-3000:]
    assert second_code in (0, -signal.SIGTERM), second.text()[-3000:]
    assert first.said("Application shutdown complete")
    assert first.said("intake stopped")
    assert len(answered) >= ANSWERED_BEFORE_SIGTERM
    assert set(answered) <= stored_after_stop
    assert set(published) == stored_after_stop
    assert max(Counter(published).values()) == 1
