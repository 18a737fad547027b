"""Typed settings every service shares, read from the environment.

``ServiceSettings`` holds the names every process understands, without a prefix:

=========================  ==============  ==========================================
Environment name           Default         Meaning
=========================  ==============  ==========================================
KAFKA_BOOTSTRAP_SERVERS    127.0.0.1:9092  comma-separated host:port of the brokers
SEND_ENV                   development     development, test or production
LOG_FORMAT                 json            json (one object a line) or text
LOG_LEVEL                  INFO            a logging level name
=========================  ==============  ==========================================

A service subclasses it and sets its own prefix for its own fields, so
``class IntakeSettings(ServiceSettings)`` with ``env_prefix="INTAKE_"`` reads
``database_url`` from ``INTAKE_DATABASE_URL`` while the shared names stay unprefixed.
Secrets are ``SecretStr`` fields; with ``SEND_ENV=production`` a secret that is empty
or an obvious placeholder (``changeme``, ``secret``, ``dev-...``) stops the process at
start-up with a message naming the variable, rather than running with a guessable key.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]
LogFormat = Literal["json", "text"]

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "secret", "password", "placeholder"}
)
"""Values a production secret may never have (compared case-insensitively)."""


class SettingsError(ValueError):
    """The environment does not describe a configuration this process can run with."""


def is_placeholder_secret(value: str) -> bool:
    """Whether ``value`` looks like a default left in place, not a real secret."""
    lowered = value.strip().lower()
    return (
        lowered in PLACEHOLDER_SECRETS
        or lowered.startswith(("dev-", "test-"))
        or lowered.endswith("-dev")
    )


def _shared(name: str) -> AliasChoices:
    # An alias bypasses env_prefix, so the shared names stay the same in every service.
    return AliasChoices(name, name.lower())


class ServiceSettings(BaseSettings):
    """The settings every service process reads; subclass to add a service's own."""

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", populate_by_name=True, frozen=True
    )

    service_name: ClassVar[str] = "send"

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=_shared("KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port of the Kafka brokers.",
    )
    send_env: Environment = Field(
        default="development",
        validation_alias=_shared("SEND_ENV"),
        description="development, test or production; production refuses placeholders.",
    )
    log_format: LogFormat = Field(
        default="json",
        validation_alias=_shared("LOG_FORMAT"),
        description="json (one object a line, for collectors) or text (a terminal).",
    )
    log_level: str = Field(
        default="INFO",
        validation_alias=_shared("LOG_LEVEL"),
        description="A logging level name: DEBUG, INFO, WARNING, ERROR.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(
                f"LOG_LEVEL {value!r} is not a logging level; "
                "use DEBUG, INFO, WARNING or ERROR"
            )
        return level

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> ServiceSettings:
        if self.send_env != "production":
            return self
        bad = [
            env_name(type(self), name)
            for name, value in self
            if isinstance(value, SecretStr)
            and is_placeholder_secret(value.get_secret_value())
        ]
        if bad:
            raise SettingsError(
                "SEND_ENV=production refuses placeholder secrets: set a real value for "
                + ", ".join(bad)
            )
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        """``KAFKA_BOOTSTRAP_SERVERS`` as the list kafka-python expects."""
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]


def env_name(settings_class: type[BaseSettings], field_name: str) -> str:
    """The environment variable that sets ``field_name`` of ``settings_class``."""
    field = settings_class.model_fields[field_name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    if isinstance(alias, str):
        return alias
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    return f"{prefix}{field_name}".upper()


def describe(settings_class: type[BaseSettings]) -> list[dict[str, Any]]:
    """Every environment name of ``settings_class`` with its default and meaning.

    The README's settings table is generated from this, so the documentation cannot
    drift from the code.
    """
    rows = []
    for name, field in settings_class.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = "(secret)"
        rows.append(
            {
                "env": env_name(settings_class, name),
                "default": default,
                "description": field.description or "",
            }
        )
    return rows


DEFAULT_MAX_BODY_BYTES = 1 << 20


class HttpLimits(BaseSettings):
    """Limits every HTTP app applies to requests, read from unprefixed names.

    =======================  ========  ==============================================
    Environment name         Default   Meaning
    =======================  ========  ==============================================
    SEND_MAX_BODY_BYTES      1048576   longest request body; longer ones answer 413
    =======================  ========  ==============================================
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1,
        validation_alias=_shared("SEND_MAX_BODY_BYTES"),
        description="The longest request body an HTTP app reads, in bytes; a longer "
        "one is answered 413 before it is parsed.",
    )
