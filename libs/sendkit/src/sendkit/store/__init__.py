"""Append-only event stores: the interface, its adapters, and a factory from a URL.

``open_store`` reads the URL a service is configured with:

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (as SQLAlchemy
  writes them: what follows the third slash is the path) opens a ``SQLiteEventStore``;
- ``postgresql://user:password@host:port/database`` (or ``postgres://``; libpq's URL
  form, query parameters included) opens a ``PostgresEventStore``;
- ``memory://`` opens an empty ``InMemoryEventStore``.
"""

from sendkit.store.base import (
    EventStore,
    IdempotencyKeyReused,
    IdempotencyRecord,
    NestedTransaction,
    StoreError,
    StoreUnavailable,
    Transaction,
    VersionConflict,
)
from sendkit.store.memory import InMemoryEventStore
from sendkit.store.postgres import PostgresEventStore, PostgresTransaction
from sendkit.store.sqlite import SQLiteEventStore, SQLiteTransaction

SUPPORTED_SCHEMES = ("sqlite:///<path>", "postgresql://<host>/<database>", "memory://")


def open_store(url: str, source: str) -> EventStore:
    """Open the event store named by ``url`` for events whose CloudEvents source is
    ``source`` (e.g. ``/send/intake``)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise StoreError(
                f"store URL {url!r} names no file: write sqlite:///data/intake.db"
            )
        return SQLiteEventStore(path, source)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresEventStore(url, source)
    if url == "memory://":
        return InMemoryEventStore(source)
    # Only the scheme goes into the message: a database URL may carry a password.
    scheme = url.partition(":")[0]
    raise StoreError(
        f"store URL scheme {scheme!r} is not supported: use one of "
        f"{', '.join(SUPPORTED_SCHEMES)}"
    )


__all__ = [
    "SUPPORTED_SCHEMES",
    "EventStore",
    "IdempotencyKeyReused",
    "IdempotencyRecord",
    "InMemoryEventStore",
    "NestedTransaction",
    "PostgresEventStore",
    "PostgresTransaction",
    "SQLiteEventStore",
    "SQLiteTransaction",
    "StoreError",
    "StoreUnavailable",
    "Transaction",
    "VersionConflict",
    "open_store",
]
