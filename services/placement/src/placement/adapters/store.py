"""Opening placement's event store from its settings."""

from __future__ import annotations

from placement.settings import SOURCE, PlacementSettings
from sendkit.store import EventStore, open_store


def open_placement_store(settings: PlacementSettings) -> EventStore:
    """The store ``PLACEMENT_DATABASE_URL`` names, with source ``/send/placement``."""
    return open_store(settings.database_url, SOURCE)
