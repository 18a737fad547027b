"""Fixtures of the placement tests: a fixed clock, stores, the service and its app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from placement_support import FixedClock

from placement.application.service import PlacementService
from placement.entrypoints.http import create_app
from placement.settings import SOURCE, PlacementSettings
from sendkit.store import InMemoryEventStore


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore(SOURCE)


@pytest.fixture
def service(store: InMemoryEventStore, clock: FixedClock) -> PlacementService:
    return PlacementService(store, clock=clock)


@pytest.fixture
def client(
    store: InMemoryEventStore,
    clock: FixedClock,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[TestClient]:
    """The app, trusting the local issuer, called with a team manager's token."""
    settings = PlacementSettings(database_url="memory://")
    app = create_app(settings, store=store, clock=clock)
    with TestClient(app, headers=manager_headers) as test_client:
        yield test_client
