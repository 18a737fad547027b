"""The intake service's settings, read from the environment.

Besides the shared names of ``sendkit.settings.ServiceSettings``:

=========================  ========================  ================================
Environment name           Default                   Meaning
=========================  ========================  ================================
INTAKE_DATABASE_URL        sqlite:///.run/intake.db  the event store, or memory://
INTAKE_HOST                127.0.0.1                 the address the server binds
INTAKE_PORT                8001                      the HTTP port
INTAKE_RELAY_ENABLED       false                     run the outbox relay in the app
INTAKE_RELAY_POLL_SECONDS  0.2                       idle wait between relay polls
=========================  ========================  ================================

and the access-control names of ``sendkit.auth.settings.AuthSettings`` (AUTH_ISSUER,
AUTH_AUDIENCE, AUTH_MODE, ...).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from sendkit.auth import AuthSettings
from sendkit.settings import ServiceSettings

SOURCE = "/send/intake"
"""The CloudEvents ``source`` of every intake event."""


class IntakeSettings(ServiceSettings, AuthSettings):
    """Settings of the intake service's HTTP app and relay."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_")

    database_url: str = Field(
        default="sqlite:///.run/intake.db",
        description="The event store: sqlite:///<path> or memory://.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8001, ge=1, le=65535, description="The HTTP port.")
    relay_enabled: bool = Field(
        default=False,
        description="Run the outbox relay as a thread of the HTTP app.",
    )
    relay_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How long the relay waits before looking again when idle.",
    )
