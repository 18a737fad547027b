"""Opening intake's event store from its settings."""

from __future__ import annotations

from intake.settings import SOURCE, IntakeSettings
from sendkit.store import EventStore, open_store


def open_intake_store(settings: IntakeSettings) -> EventStore:
    """The store ``INTAKE_DATABASE_URL`` names, with source ``/send/intake``."""
    return open_store(settings.database_url, SOURCE)
