"""Concurrent commands on one case, from two app replicas sharing one store: one SQLite
file, or one PostgreSQL database (each test runs on both)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from intake_support import request_body

from intake.entrypoints.http import create_app
from intake.settings import SOURCE, IntakeSettings
from sendkit.store import EventStore, open_store
from store_backends import (
    DURABLE,
    SQLITE,
    drop_postgres_schema,
    new_postgres_schema,
)

ROUNDS = 10


@pytest.fixture(params=DURABLE)
def replicas(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[tuple[TestClient, TestClient, EventStore]]:
    """Two intake apps, each with its own store object and connections, on one file
    or one PostgreSQL schema."""
    if request.param == SQLITE:
        url = f"sqlite:///{tmp_path / 'intake.db'}"
    else:
        url = new_postgres_schema("intake")
    stores = [open_store(url, SOURCE) for _ in range(2)]
    settings = IntakeSettings(database_url=url)
    clients = [
        TestClient(create_app(settings, store=store), headers=manager_headers)
        for store in stores
    ]
    for client in clients:
        client.__enter__()
    yield clients[0], clients[1], stores[0]
    for client in clients:
        client.__exit__(None, None, None)
    for store in stores:
        store.close()
    if request.param != SQLITE:
        drop_postgres_schema(url)


def at_once(*calls: Callable[[], Response]) -> list[Response]:
    """Run each call in its own thread, released together, and collect the answers."""
    start = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Response]) -> None:
        start.wait()
        answers[index] = call()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_conflicting_decisions_one_wins_and_never_both(
    replicas: tuple[TestClient, TestClient, EventStore],
) -> None:
    one, two, store = replicas

    for _ in range(ROUNDS):
        case_id = one.post("/cases", json=request_body()).json()["case_id"]

        agree, refuse = at_once(
            partial(
                one.post,
                f"/cases/{case_id}/decision",
                json={"outcome": "agreed", "notified_on": "2025-02-14"},
            ),
            partial(
                two.post,
                f"/cases/{case_id}/decision",
                json={"outcome": "refused", "notified_on": "2025-02-14"},
            ),
        )

        assert sorted([agree.status_code, refuse.status_code]) == [200, 409]
        decisions = [e.type for e in store.read_stream(case_id)][1:]
        assert len(decisions) == 1
        winner = agree if agree.status_code == 200 else refuse
        assert winner.json()["events"][0]["type"] == decisions[0]
        loser = refuse if winner is agree else agree
        assert loser.headers["content-type"] == "application/problem+json"


def test_two_identical_keyed_requests_at_once_open_one_case(
    replicas: tuple[TestClient, TestClient, EventStore],
) -> None:
    one, two, store = replicas

    for round_number in range(ROUNDS):
        headers = {"Idempotency-Key": f"same-request-{round_number}"}
        before = store.last_position()

        first, second = at_once(
            partial(one.post, "/cases", json=request_body(), headers=headers),
            partial(two.post, "/cases", json=request_body(), headers=headers),
        )

        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert store.last_position() == before + 1


def test_concurrent_moves_of_one_case_leave_a_consistent_history(
    replicas: tuple[TestClient, TestClient, EventStore],
) -> None:
    one, two, store = replicas
    case_id = one.post("/cases", json=request_body()).json()["case_id"]

    for round_number in range(ROUNDS):
        at_once(
            partial(
                one.post,
                f"/cases/{case_id}/coordinator",
                json={"coordinator_id": f"a-{round_number}"},
            ),
            partial(
                two.post,
                f"/cases/{case_id}/coordinator",
                json={"coordinator_id": f"b-{round_number}"},
            ),
        )

    # Each assignment names the coordinator it replaced: the chain has no gap, so
    # no command decided on a version another had already moved past.
    assignments = [e.data for e in store.read_stream(case_id)][1:]
    assert len(assignments) == 2 * ROUNDS
    for earlier, later in itertools.pairwise(assignments):
        assert later["previous_coordinator_id"] == earlier["coordinator_id"]
