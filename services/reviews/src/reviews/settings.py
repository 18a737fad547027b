"""The reviews service's settings, read from the environment.

Besides the shared names of ``sendkit.settings.ServiceSettings``:

===========================  =========================  ==============================
Environment name             Default                    Meaning
===========================  =========================  ==============================
REVIEWS_DATABASE_URL         sqlite:///.run/reviews.db  the event store, or memory://
REVIEWS_HOST                 127.0.0.1                  the address the server binds
REVIEWS_PORT                 8004                       the HTTP port
REVIEWS_RELAY_ENABLED        false                      run the outbox relay in the app
REVIEWS_RELAY_POLL_SECONDS   0.2                        idle wait between relay polls
REVIEWS_SUBSCRIBERS_ENABLED  false                      run the subscribers in the app
REVIEWS_CONSUMER_GROUP       reviews                    prefix of the consumer groups
===========================  =========================  ==============================

and the access-control names of ``sendkit.auth.settings.AuthSettings`` (AUTH_ISSUER,
AUTH_AUDIENCE, AUTH_MODE, ...).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sendkit.auth import AuthSettings
from sendkit.settings import ServiceSettings

SOURCE = "/send/reviews"
"""The CloudEvents ``source`` of every reviews event."""

CONSUMER = "reviews"
"""The consumer name of the subscribers: it scopes processed ids and names the DLQs."""


class ReviewsSettings(ServiceSettings, AuthSettings):
    """Settings of the reviews service's HTTP app, relay and subscribers."""

    model_config = SettingsConfigDict(env_prefix="REVIEWS_")

    database_url: str = Field(
        default="sqlite:///.run/reviews.db",
        description="The event store: sqlite:///<path> or memory://.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8004, ge=1, le=65535, description="The HTTP port.")
    relay_enabled: bool = Field(
        default=False,
        description="Run the outbox relay as a thread of the HTTP app.",
    )
    relay_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How long the relay waits before looking again when idle.",
    )
    subscribers_enabled: bool = Field(
        default=False,
        description="Run the plans and intake subscribers as threads of the HTTP app.",
    )
    consumer_group: str = Field(
        default="reviews",
        min_length=1,
        description="Prefix of the Kafka consumer groups: <consumer_group>.<owner>.",
    )
