"""The plans service's settings, read from the environment.

Besides the shared names of ``sendkit.settings.ServiceSettings``:

===========================  =======================  ================================
Environment name             Default                  Meaning
===========================  =======================  ================================
PLANS_DATABASE_URL           sqlite:///.run/plans.db  the event store, or memory://
PLANS_HOST                   127.0.0.1                the address the server binds
PLANS_PORT                   8002                     the HTTP port
PLANS_RELAY_ENABLED          false                    run the outbox relay in the app
PLANS_RELAY_POLL_SECONDS     0.2                      idle wait between relay polls
PLANS_SUBSCRIBER_ENABLED     false                    consume intake's topic in the app
PLANS_CONSUMER_GROUP         plans                    the Kafka group of the subscriber
===========================  =======================  ================================

and the access-control names of ``sendkit.auth.settings.AuthSettings`` (AUTH_ISSUER,
AUTH_AUDIENCE, AUTH_MODE, ...).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sendkit.auth import AuthSettings
from sendkit.settings import ServiceSettings

SOURCE = "/send/plans"
"""The CloudEvents ``source`` of every plans event."""

CONSUMER_NAME = "plans"
"""Plans as a consumer: the scope of its processed ids, its dead-letter topics."""


class PlansSettings(ServiceSettings, AuthSettings):
    """Settings of the plans service's HTTP app, relay and subscriber."""

    model_config = SettingsConfigDict(env_prefix="PLANS_")

    database_url: str = Field(
        default="sqlite:///.run/plans.db",
        description="The event store: sqlite:///<path> or memory://.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8002, ge=1, le=65535, description="The HTTP port.")
    relay_enabled: bool = Field(
        default=False,
        description="Run the outbox relay as a thread of the HTTP app.",
    )
    relay_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How long the relay waits before looking again when idle.",
    )
    subscriber_enabled: bool = Field(
        default=False,
        description="Consume send.intake.events as a thread of the HTTP app.",
    )
    consumer_group: str = Field(
        default=CONSUMER_NAME,
        min_length=1,
        description="The Kafka consumer group the subscriber to intake's topic joins.",
    )
