"""Fixtures of the reviews tests: a fixed clock, the store, the service and its
app. The store is in memory unless a test module sets ``STORE_BACKENDS``
(``store_backends.DURABLE``): its tests then run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from reviews_support import FixedClock

from reviews.application.service import ReviewsService
from reviews.entrypoints.http import create_app
from reviews.settings import SOURCE, ReviewsSettings
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
def service(store: EventStore, clock: FixedClock) -> ReviewsService:
    return ReviewsService(store, clock=clock)


@pytest.fixture
def app_and_client(
    store: EventStore,
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
