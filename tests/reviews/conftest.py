"""Fixtures of the reviews tests: a fixed clock, a store, the service, its HTTP app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from reviews_support import FixedClock

from reviews.application.service import ReviewsService
from reviews.entrypoints.http import create_app
from reviews.settings import SOURCE, ReviewsSettings
from sendkit.store import InMemoryEventStore


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore(SOURCE)


@pytest.fixture
def service(store: InMemoryEventStore, clock: FixedClock) -> ReviewsService:
    return ReviewsService(store, clock=clock)


@pytest.fixture
def app_and_client(
    store: InMemoryEventStore,
    clock: FixedClock,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[tuple[ReviewsService, TestClient]]:
    """The app, trusting the local issuer, called with a team manager's token."""
    app = create_app(
        ReviewsSettings(database_url="memory://"), store=store, clock=clock
    )
    with TestClient(app, headers=manager_headers) as test_client:
        yield app.state.reviews, test_client


@pytest.fixture
def client(app_and_client: tuple[ReviewsService, TestClient]) -> TestClient:
    return app_and_client[1]


@pytest.fixture
def app_service(app_and_client: tuple[ReviewsService, TestClient]) -> ReviewsService:
    """The service behind ``client``, to record plans' facts as the subscriber does."""
    return app_and_client[0]
