"""Fixtures of the placement tests: a fixed clock, the store, the service and its
app. The store is in memory unless a test module sets ``STORE_BACKENDS``
(``store_backends.DURABLE``): its tests then run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from placement_support import FixedClock

from placement.application.service import PlacementService
from placement.entrypoints.http import create_app
from placement.settings import SOURCE, PlacementSettings
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
def service(store: EventStore, clock: FixedClock) -> PlacementService:
    return PlacementService(store, clock=clock)


@pytest.fixture
def client(
    store: EventStore,
    clock: FixedClock,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[TestClient]:
    """The app, trusting the local issuer, called with a team manager's token."""
    settings = PlacementSettings(database_url="memory://")
    app = create_app(settings, store=store, clock=clock)
    with TestClient(app, headers=manager_headers) as test_client:
        yield test_client
