"""Fixtures the shutdown tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store_backends import (
    POSTGRESQL,
    SQLITE,
    drop_postgres_schema,
    new_postgres_schema,
)

from .shutdown_support import Processes


@pytest.fixture(params=[SQLITE, POSTGRESQL])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A service's ``*_DATABASE_URL``: a SQLite file in the test's folder, or a schema
    of its own on the run's PostgreSQL (``tests/store_backends.py``), dropped after."""
    if request.param == SQLITE:
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    url = new_postgres_schema("shutdown")
    yield url
    drop_postgres_schema(url)


@pytest.fixture
def processes() -> Iterator[Processes]:
    """The processes a test starts, killed at its end whatever happened."""
    started = Processes()
    yield started
    started.kill_all()
