"""Fixtures for tests that need a real PostgreSQL: one server per run, a database each.

``postgres_dsn`` (session) is the DSN of the run's server: the one named by
``POSTGRES_DSN`` when that is set (its role must be allowed to create databases), else
a throw-away cluster started by ``devstack.postgres`` on loopback and stopped at the end
of the run. ``postgres_database`` (per test) is the DSN of a fresh, empty database on
that server, dropped after the test. Store suites that name their place by a folder use
``database_for(path)``, which makes one database per folder and drops them all when the
run ends.

When no PostgreSQL can be had the fixtures raise, with a message saying how to install
it, so a test that needs PostgreSQL fails and never skips.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from devstack.postgres import PostgresCluster, PostgresLauncherError, start_cluster

log = logging.getLogger("tests.postgres_fixture")

_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def url_with_database(dsn: str, database: str) -> str:
    """``dsn`` (a URL or libpq's ``key=value`` form) as a ``postgresql://`` URL naming
    ``database``: the form ``open_store`` and the services' settings take."""
    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    parts.pop("dbname", None)
    user, password = parts.pop("user", ""), parts.pop("password", "")
    host, port = parts.pop("host", ""), parts.pop("port", "")
    if host.startswith("/"):  # a socket directory cannot be written in the netloc
        parts["host"], host = host, ""
    auth = quote(user, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    netloc = (auth + "@" if auth else "") + host + (":" + port if port else "")
    query = "?" + urlencode(parts) if parts else ""
    return f"postgresql://{netloc}/{quote(database, safe='')}{query}"


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be reached or started for the tests."""


class _Server:
    """The run's one server, started on first use; the databases made on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._admin_dsn: str | None = None
        self._cluster: PostgresCluster | None = None
        self._databases: dict[str, str] = {}

    def admin_dsn(self) -> str:
        with self._lock:
            if self._admin_dsn is None:
                self._admin_dsn = self._find_or_start()
            return self._admin_dsn

    def _find_or_start(self) -> str:
        configured = os.environ.get("POSTGRES_DSN", "").strip()
        if configured:
            try:
                with psycopg.connect(configured, connect_timeout=10) as db:
                    db.execute("SELECT 1")
            except psycopg.Error as error:
                raise PostgresUnavailable(
                    f"POSTGRES_DSN is set but the server does not answer ({error}); "
                    "fix the DSN or unset it to let the tests start their own cluster"
                ) from error
            log.info("tests use the PostgreSQL at POSTGRES_DSN")
            return configured
        try:
            self._cluster = start_cluster()
        except PostgresLauncherError as error:
            raise PostgresUnavailable(
                f"the tests need PostgreSQL and could not start one: {error}. Either "
                "install the server (Debian: `apt-get install -y postgresql`) or set "
                "POSTGRES_DSN to a server whose role may create databases"
            ) from error
        log.info(
            "tests use a throw-away PostgreSQL %s on port %d, ready in %.1fs",
            self._cluster.version,
            self._cluster.port,
            self._cluster.start_seconds,
        )
        return self._cluster.dsn()

    @property
    def cluster(self) -> PostgresCluster | None:
        return self._cluster

    def create_database(self, label: str) -> str:
        """A new empty database; its DSN. ``label`` goes into the name, for tracing."""
        admin = self.admin_dsn()
        slug = _SLUG_UNSAFE.sub("_", label.lower()).strip("_")[:30] or "test"
        name = f"t_{slug}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with self._lock:
            self._databases[name] = admin
        return url_with_database(admin, name)

    def drop_database(self, dsn: str) -> None:
        self._drop(str(conninfo_to_dict(dsn)["dbname"]))

    def _drop(self, name: str) -> None:
        with self._lock:
            admin = self._databases.pop(name, None)
        if admin is None:
            return
        with psycopg.connect(admin, autocommit=True) as db:
            # FORCE ends sessions a failed test left open (PostgreSQL 13 and later).
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )

    def finish(self) -> None:
        _BY_PLACE.clear()
        with self._lock:
            leftovers = list(self._databases)
            cluster, self._cluster = self._cluster, None
            self._admin_dsn = None
        if cluster is not None:
            # The whole cluster goes, databases included.
            self._databases.clear()
            cluster.stop()
            return
        for name in leftovers:
            self._drop(name)


SERVER = _Server()
_BY_PLACE: dict[Path, str] = {}


def database_for(place: Path) -> str:
    """The DSN of the database belonging to the folder ``place``, made on first use.

    The behaviour suite opens stores by a per-test folder; the same folder gives the
    same database, so a store closed and reopened there finds its data.
    """
    if place not in _BY_PLACE:
        label = hashlib.sha256(str(place).encode()).hexdigest()[:8]
        _BY_PLACE[place] = SERVER.create_database(f"{place.name}_{label}")
    return _BY_PLACE[place]


def pytest_sessionfinish(session: pytest.Session) -> None:
    SERVER.finish()


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The DSN of the run's PostgreSQL server, logged in as a role that may create
    databases. Tests should not write to its default database: use
    ``postgres_database``."""
    return SERVER.admin_dsn()


@pytest.fixture
def postgres_database(
    postgres_dsn: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The DSN of a new, empty database for this test alone, dropped afterwards."""
    dsn = SERVER.create_database(request.node.name)
    yield dsn
    SERVER.drop_database(dsn)
