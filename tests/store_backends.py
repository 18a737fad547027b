"""A test's event store on each backend the services run on: memory, SQLite, PostgreSQL.

A service's tests keep their ``store`` fixture (in memory by default) and run a test
against the durable stores by parametrizing that fixture indirectly::

    @on_durable_stores
    def test_a_command_is_recorded(service: IntakeService) -> None: ...

The fixture calls ``open_test_store(request, tmp_path, SOURCE)``, which reads the
parameter (``memory`` when there is none) and opens a SQLite file in the test's folder
or a PostgreSQL schema of its own.

Why a schema rather than a database per test: ``CREATE DATABASE`` costs about 0.35 s
here against 0.07 s for ``CREATE SCHEMA``, and the stores make their tables in the
first schema of the connection's ``search_path``. One database (``services``) is made
on the run's server on first use and dropped with it; each test's schema is dropped
when the test ends.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from postgres_fixture import SERVER
from sendkit.store import (
    EventStore,
    InMemoryEventStore,
    PostgresEventStore,
    SQLiteEventStore,
)

MEMORY = "memory"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
DURABLE = (SQLITE, POSTGRESQL)

on_durable_stores = pytest.mark.parametrize("store", DURABLE, indirect=True)
"""Run the test with its ``store`` fixture on SQLite and on PostgreSQL."""

_lock = threading.Lock()
_database: list[str] = []


def _shared_database() -> str:
    with _lock:
        if not _database:
            _database.append(SERVER.create_database("services"))
        return _database[0]


def new_postgres_schema(label: str = "t") -> str:
    """The URL of a new, empty schema in the run's shared test database."""
    database = _shared_database()
    name = f"{label[:20]}_{uuid.uuid4().hex[:12]}".lower()
    with psycopg.connect(database, autocommit=True) as db:
        db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    glue = "&" if "?" in database else "?"
    return f"{database}{glue}options={quote(f'-csearch_path={name}', safe='')}"


def drop_postgres_schema(url: str) -> None:
    """Drop the schema ``new_postgres_schema`` made for ``url``, tables and all."""
    name = url.rpartition("search_path%3D")[2]
    with psycopg.connect(_shared_database(), autocommit=True) as db:
        db.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
        )


@contextmanager
def durable_store(backend: str, place: Path, source: str) -> Iterator[EventStore]:
    """A new store on ``backend`` (``sqlite`` in ``place``, or ``postgresql``)."""
    if backend == SQLITE:
        place.mkdir(parents=True, exist_ok=True)
        store: EventStore = SQLiteEventStore(place / "events.db", source)
        try:
            yield store
        finally:
            store.close()
        return
    if backend != POSTGRESQL:
        raise ValueError(f"unknown store backend {backend!r}: use one of {DURABLE}")
    url = new_postgres_schema("svc")
    store = PostgresEventStore(url, source)
    try:
        yield store
    finally:
        store.close()
        drop_postgres_schema(url)


def open_test_store(
    request: pytest.FixtureRequest, place: Path, source: str
) -> Iterator[EventStore]:
    """Yield the store the test's parameter names, closed (and dropped) afterwards."""
    backend = getattr(request, "param", MEMORY)
    if backend == MEMORY:
        yield InMemoryEventStore(source)
        return
    with durable_store(backend, place, source) as store:
        yield store


def parametrize_store(metafunc: pytest.Metafunc) -> None:
    """For an area's ``pytest_generate_tests``: a test module that sets
    ``STORE_BACKENDS = DURABLE`` runs each of its tests that uses the ``store`` fixture
    (directly or through the service or the app) once on each backend named.

    A module that also sets ``TABLES_IN_MEMORY = True`` keeps its table-driven tests
    (those with a ``parametrize`` mark of their own: the HTTP APIs' tables of invalid
    bodies and queries, refused with 422 before the store is touched) on the memory
    store, so that doubling the store does not double the long tables too.
    """
    backends = getattr(metafunc.module, "STORE_BACKENDS", None)
    if not backends or "store" not in metafunc.fixturenames:
        return
    tabled = any(
        mark.name == "parametrize" for mark in metafunc.definition.iter_markers()
    )
    if tabled and getattr(metafunc.module, "TABLES_IN_MEMORY", False):
        return
    metafunc.parametrize("store", backends, indirect=True)
