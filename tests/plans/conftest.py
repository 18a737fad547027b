"""Fixtures of the plans tests: a fixed clock, stores, the service and its HTTP app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from plans_support import FixedClock

from plans.application.reactions import IntakeReactions
from plans.application.service import PlansService
from plans.entrypoints.http import create_app
from plans.settings import SOURCE, PlansSettings
from sendkit.store import InMemoryEventStore


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore(SOURCE)


@pytest.fixture
def service(store: InMemoryEventStore, clock: FixedClock) -> PlansService:
    return PlansService(store, clock=clock)


@pytest.fixture
def reactions(clock: FixedClock) -> IntakeReactions:
    return IntakeReactions(clock=clock)


@pytest.fixture
def client(
    store: InMemoryEventStore,
    clock: FixedClock,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[TestClient]:
    """The app, trusting the local issuer, called with a team manager's token."""
    app = create_app(PlansSettings(database_url="memory://"), store=store, clock=clock)
    with TestClient(app, headers=manager_headers) as test_client:
        yield test_client
