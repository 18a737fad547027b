"""Fixtures for notify's tests: every database adapter, a fixed clock, a fake sender."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notify_factories import FakeClock, FakeSender, seed

from notify.adapters.memory_db import InMemoryNotifyDatabase
from notify.adapters.postgres_db import NotifyPostgresDatabase
from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.delivery import Delivery
from notify.application.handlers import NotifyHandlers
from notify.application.ports import NotifyDatabase
from notify.domain.delivery import RetryPolicy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 2, 10, 9, 0, tzinfo=UTC))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifyDatabase]:
    """Each database adapter in turn; PostgreSQL on a fresh database of the run's
    real server (``tests/postgres_fixture.py``), which fails when there is none."""
    database: NotifyDatabase
    if request.param == "memory":
        database = InMemoryNotifyDatabase()
    elif request.param == "sqlite":
        database = NotifySQLiteDatabase(tmp_path / "notify.db")
    else:
        database = NotifyPostgresDatabase(request.getfixturevalue("postgres_database"))
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ``NOTIFY_DATABASE_URL`` for each real database: a SQLite file in the test's
    folder, or a fresh database of the run's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'notify.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=3,
        base_delay=timedelta(seconds=10),
        max_delay=timedelta(seconds=30),
    )


@pytest.fixture
def handlers(db: NotifyDatabase, clock: FakeClock) -> NotifyHandlers:
    seed(db)
    return NotifyHandlers(db, now=clock)


@pytest.fixture
def delivery(
    db: NotifyDatabase, sender: FakeSender, clock: FakeClock, policy: RetryPolicy
) -> Delivery:
    return Delivery(
        db,
        sender,
        from_address="send-alerts@council.example",
        message_id_domain="council.example",
        policy=policy,
        claim_lease=timedelta(minutes=2),
        now=clock,
    )
