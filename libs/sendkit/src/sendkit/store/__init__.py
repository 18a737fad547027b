"""Append-only event stores: the interface and its adapters."""

from sendkit.store.base import (
    EventStore,
    StoreError,
    Transaction,
    VersionConflict,
)

__all__ = ["EventStore", "StoreError", "Transaction", "VersionConflict"]
