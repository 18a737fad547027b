"""Opening the reviews event store from its settings."""

from __future__ import annotations

from reviews.settings import SOURCE, ReviewsSettings
from sendkit.store import EventStore, open_store


def open_reviews_store(settings: ReviewsSettings) -> EventStore:
    """The store ``REVIEWS_DATABASE_URL`` names, with source ``/send/reviews``."""
    return open_store(settings.database_url, SOURCE)
