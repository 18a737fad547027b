"""Notify's settings, read from the environment (prefix ``NOTIFY_``).

The shared names (``KAFKA_BOOTSTRAP_SERVERS``, ``SEND_ENV``, ``LOG_FORMAT``,
``LOG_LEVEL``) come from ``sendkit.settings.ServiceSettings``. ``describe
(NotifySettings)`` lists every name with its default and meaning.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from notify.domain.delivery import RetryPolicy
from sendkit.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    """Everything the notify worker needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFY_", extra="ignore", populate_by_name=True, frozen=True
    )

    service_name: ClassVar[str] = "notify"

    app_id: str = Field(
        default="send-notify",
        description=(
            "The faust app id; also the Kafka consumer group. A new id replays the "
            "topics from the beginning (the ledger keeps that from sending twice)."
        ),
    )
    database_url: str = Field(
        default="sqlite:///.run/notify.db",
        description="Notify's own database: ledger, read model and event store.",
    )
    directory_csv: Path = Field(
        default=Path(".run/staff.csv"),
        description="The staff directory CSV: staff_id, name, email, role, manager_id.",
    )
    from_address: str = Field(
        default="send-alerts@council.example",
        description="The From address of alert emails.",
    )
    message_id_domain: str | None = Field(
        default=None,
        description="The right-hand side of Message-IDs; the From domain by default.",
    )
    smtp_host: str = Field(default="127.0.0.1", description="The SMTP server host.")
    smtp_port: int = Field(default=1025, ge=1, le=65535, description="Its port.")
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Socket timeout for each SMTP operation."
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the connection with STARTTLS first."
    )
    smtp_username: str | None = Field(
        default=None, description="Log in with this user (needs the password)."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="The SMTP password."
    )
    max_attempts: int = Field(
        default=8, ge=1, description="Send attempts before an alert is failed."
    )
    retry_base_seconds: float = Field(
        default=2.0, gt=0, description="The wait after the first failed attempt."
    )
    retry_cap_seconds: float = Field(
        default=300.0, gt=0, description="The longest wait between attempts."
    )
    claim_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a send may take before its alert may be claimed again.",
    )
    delivery_poll_seconds: float = Field(
        default=5.0, gt=0, description="The delivery thread's longest sleep."
    )
    topic_partitions: int = Field(
        default=6, ge=1, description="Partitions of the topics notify reads."
    )
    web_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of faust's web server; unset, the web server is off.",
    )
    relay_enabled: bool = Field(
        default=True,
        description="Run the outbox relay in the worker, publishing notify's events.",
    )

    @field_validator("from_address")
    @classmethod
    def _an_address(cls, value: str) -> str:
        local, at, domain = value.strip().rpartition("<")[2].rstrip(">").partition("@")
        if not (local and at and domain):
            raise ValueError(
                f"NOTIFY_FROM_ADDRESS {value!r} is not an email address: write "
                "send-alerts@your-council.gov.uk"
            )
        return value.strip()

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=timedelta(seconds=self.retry_base_seconds),
            max_delay=timedelta(
                seconds=max(self.retry_cap_seconds, self.retry_base_seconds)
            ),
        )

    @property
    def message_domain(self) -> str:
        if self.message_id_domain:
            return self.message_id_domain
        return self.from_address.rpartition("@")[2].rstrip(">").strip() or "localhost"
