"""Opening the plans event store from its settings."""

from __future__ import annotations

from plans.settings import SOURCE, PlansSettings
from sendkit.store import EventStore, open_store


def open_plans_store(settings: PlansSettings) -> EventStore:
    """The store ``PLANS_DATABASE_URL`` names, with source ``/send/plans``."""
    return open_store(settings.database_url, SOURCE)
