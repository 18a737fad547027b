"""Fixtures of the plans tests: a fixed clock, the store, the service and
its app. The store is in memory unless a test module sets ``STORE_BACKENDS``
(``store_backends.DURABLE``): its tests then run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from plans_support import FixedClock

from plans.application.reactions import IntakeReactions
from plans.application.service import PlansService
from plans.entrypoints.http import create_app
from plans.settings import SOURCE, PlansSettings
from sendkit.store import EventStore
from store_backends import open_test_store, parametrize_store


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_store(metafunc)


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """In memory, unless the test module names durable stores (``STORE_BACKENDS``)."""
    yield from open_test_store(request, tmp_path, SOURCE)


@pytest.fixture
def service(store: EventStore, clock: FixedClock) -> PlansService:
    return PlansService(store, clock=clock)


@pytest.fixture
def reactions(clock: FixedClock) -> IntakeReactions:
    return IntakeReactions(clock=clock)


@pytest.fixture
def client(
    store: EventStore,
    clock: FixedClock,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[TestClient]:
    """The app, trusting the local issuer, called with a team manager's token."""
    app = create_app(PlansSettings(database_url="memory://"), store=store, clock=clock)
    with TestClient(app, headers=manager_headers) as test_client:
        yield test_client
