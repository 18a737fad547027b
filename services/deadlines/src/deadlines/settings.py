"""The deadlines service's settings, read from the environment.

Besides the shared names of ``sendkit.settings.ServiceSettings``
(``KAFKA_BOOTSTRAP_SERVERS``, ``SEND_ENV``, ``LOG_FORMAT``, ``LOG_LEVEL``):

==============================  ===========================  =======================
Environment name                Default                      Meaning
==============================  ===========================  =======================
DEADLINES_APP_ID                send-deadlines               faust app id: group id
                                                             and changelog prefix
DEADLINES_WORKER_WEB_PORT       (unset: no web server)       faust's web server port
DEADLINES_REPLICATION_FACTOR    1                            of topics faust creates
DEADLINES_MAX_WAIT_SECONDS      30                           longest wait for an
                                                             input's turn
DEADLINES_LEAD_WORKING_DAYS     (unset: each rule's own)     alert leads, e.g. 10,5,0
DEADLINES_HOST                  127.0.0.1                    the read API's address
DEADLINES_PORT                  8003                         the read API's port
DEADLINES_DATABASE_URL          sqlite:///.run/deadlines.db  read model: sqlite:///,
                                                             postgresql:// (several
                                                             API replicas) or memory://
DEADLINES_PROJECTOR_ENABLED     true                         build the read model in
                                                             the API process
DEADLINES_TICK_EVERY_SECONDS    60                           the ticker's interval
DEADLINES_TOPIC_PREFIX          (empty)                      put before every topic
                                                             name read or written
==============================  ===========================  =======================
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from send_schemas.topics import (
    CLOCK_TICKS,
    DEADLINES,
    INTAKE,
    PLACEMENT,
    PLANS,
    REVIEWS,
)
from sendkit.auth import AuthSettings
from sendkit.settings import ServiceSettings

DOMAIN_TOPICS: tuple[str, ...] = (INTAKE.name, PLANS.name, REVIEWS.name, PLACEMENT.name)
"""The topics whose events the clock rules read, in the registry's spelling."""


class DeadlinesSettings(ServiceSettings):
    """Settings of the deadlines worker, ticker and read API."""

    model_config = SettingsConfigDict(env_prefix="DEADLINES_")

    app_id: str = Field(
        default="send-deadlines",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="The faust app id: the consumer group and the prefix of the "
        "table's changelog topic. A new id replays every input from offset 0.",
    )
    worker_web_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of faust's web server in the worker; unset disables it.",
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replication factor of the topics faust creates."
    )
    max_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The longest an input waits for its replay-safe turn before it is "
        "applied anyway (with a warning).",
    )
    state_cache_cases: int = Field(
        default=2048,
        ge=1,
        description="How many cases' decoded states the worker keeps in memory; the "
        "others are kept only as their compact JSON and decoded when an event or "
        "tick needs them.",
    )
    lead_working_days: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        default=None,
        description="Working days before a due date to alert at, for every clock: "
        "comma-separated, such as 10,5,0. Unset keeps each rule's own.",
    )
    host: str = Field(default="127.0.0.1", description="Address the read API binds.")
    port: int = Field(default=8003, ge=1, le=65535, description="The read API's port.")
    database_url: str = Field(
        default="sqlite:///.run/deadlines.db",
        description="The read model's store: sqlite:///<path> for one API process, "
        "postgresql://user:password@host:5432/database for several replicas sharing "
        "it, or memory://.",
    )
    projector_enabled: bool = Field(
        default=True,
        description="Follow send.deadlines.events and send.intake.events into the read "
        "model from a thread of the API process.",
    )
    tick_every_seconds: float = Field(
        default=60.0, gt=0, description="How often the ticker sends a round of ticks."
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="Put before the name of every topic the service reads or writes "
        "(the registry's names stay as they are): a shared cluster's namespace, or an "
        "isolated test's.",
    )

    def topic(self, name: str) -> str:
        """The name a registry topic has in this deployment."""
        return f"{self.topic_prefix}{name}"

    @property
    def domain_topics(self) -> tuple[str, ...]:
        return tuple(self.topic(name) for name in DOMAIN_TOPICS)

    @property
    def ticks_topic(self) -> str:
        return self.topic(CLOCK_TICKS.name)

    @property
    def clocks_topic(self) -> str:
        return self.topic(DEADLINES.name)

    @property
    def intake_topic(self) -> str:
        return self.topic(INTAKE.name)

    @field_validator("lead_working_days", mode="before")
    @classmethod
    def _leads_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            try:
                leads = tuple(int(part) for part in parts)
            except ValueError:
                raise ValueError(
                    "DEADLINES_LEAD_WORKING_DAYS must be whole numbers separated by "
                    "commas, such as 10,5,0"
                ) from None
            if not leads or any(lead < 0 for lead in leads):
                raise ValueError(
                    "DEADLINES_LEAD_WORKING_DAYS needs at least one lead time, none "
                    "negative, such as 10,5,0"
                )
            return leads
        return value


class DeadlinesApiSettings(DeadlinesSettings, AuthSettings):
    """The read API's settings: the service's own and how bearer tokens are verified."""

    # Set again: the merged config would take AuthSettings' empty prefix last.
    model_config = SettingsConfigDict(
        env_prefix="DEADLINES_", extra="ignore", populate_by_name=True, frozen=True
    )
