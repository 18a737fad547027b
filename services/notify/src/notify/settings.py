"""Notify's settings, read from the environment (prefix ``NOTIFY_``).

The shared names (``KAFKA_BOOTSTRAP_SERVERS``, ``SEND_ENV``, ``LOG_FORMAT``,
``LOG_LEVEL``) come from ``sendkit.settings.ServiceSettings``. ``describe
(NotifySettings)`` lists every name with its default and meaning.

``NotifySettings`` is what the worker, the relay and the command line read.
``NotifyApiSettings`` adds the access-control names of
``sendkit.auth.settings.AuthSettings`` (AUTH_ISSUER, AUTH_AUDIENCE, AUTH_MODE, ...) for
the HTTP API only: the worker serves no staff, so it starts without them, even with
``SEND_ENV=production``.
"""

from __future__ import annotations

import ipaddress
from datetime import time, timedelta
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from notify.adapters.govuk_notify import DEFAULT_BASE_URL, check_api_key
from notify.application.records import Routing
from notify.domain.alerts import DEFAULT_SENCO_CLOCKS, Provider
from notify.domain.delivery import RetryPolicy
from notify.domain.preferences import DEFAULT_QUIET_HOURS, Preferences, QuietHours
from notify.domain.terms import Term, check_terms, parse_terms, parse_terms_csv
from notify.errors import ConfigurationError
from sendkit.auth import AuthSettings
from sendkit.settings import ServiceSettings

_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


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
        description=(
            "Notify's own database (ledger, read model and event store): "
            "sqlite:///<relative path> or sqlite:////<absolute path> for one worker, "
            "postgresql://<user>:<password>@<host>:<port>/<database> for several "
            "replicas sharing one ledger, or memory:// (tests and demos only)."
        ),
    )
    directory_csv: Path | None = Field(
        default=Path(".run/staff.csv"),
        description=(
            "A staff directory CSV (staff_id, name, email, role, manager_id, and "
            "optionally mobile, school_urn) imported at start-up when it changed "
            "since the last import; empty: none (keep the directory by the API)."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP API binds.")
    port: int = Field(default=8006, ge=1, le=65535, description="Port of the HTTP API.")
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
    email_provider: Literal["smtp", "govuk_notify"] = Field(
        default="smtp",
        description="Who carries email: smtp (the default) or govuk_notify.",
    )
    govuk_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "The GOV.UK Notify API key (name-serviceid-secret); unset: no SMS, and "
            "no email through Notify."
        ),
    )
    govuk_base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="GOV.UK Notify's API; the local stand-in's address in the demo.",
    )
    govuk_email_template_id: str | None = Field(
        default=None,
        pattern=_UUID,
        description="The Notify email template, with ((subject)) and ((body)).",
    )
    govuk_sms_template_id: str | None = Field(
        default=None,
        pattern=_UUID,
        description="The Notify text message template, with ((body)).",
    )
    govuk_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of each request to GOV.UK Notify."
    )
    govuk_callback_token: SecretStr | None = Field(
        default=None,
        description=(
            "The bearer token GOV.UK Notify sends with delivery receipts (set the "
            "same in Notify's callback settings); unset: receipts are refused."
        ),
    )
    case_link_base: str | None = Field(
        default="https://send.council.example/cases",
        description="Links in messages are this followed by /<case id>; empty: none.",
    )
    sms_quiet_hours: str | None = Field(
        default=str(DEFAULT_QUIET_HOURS),
        description=(
            "London hours without text messages for people who set none (HH:MM-HH:MM;"
            " empty: none); they are sent when the hours end."
        ),
    )
    digest_time: time = Field(
        default=time(7, 30),
        description="London time each day's digests are gathered and sent.",
    )
    term_dates: str = Field(
        default="",
        description=(
            "School terms, first/last day, comma-separated: "
            "2025-09-03/2025-12-19,2026-01-05/2026-03-27. Give DEADLINES_TERM_DATES "
            "the same terms (sendkit.terms reads both)."
        ),
    )
    term_dates_file: Path | None = Field(
        default=None,
        description="A CSV of terms (starts_on, ends_on), added to NOTIFY_TERM_DATES.",
    )
    senco_list_lead_working_days: int = Field(
        default=10,
        ge=0,
        description="Working days before a term starts that its SENCO lists go out.",
    )
    senco_clocks: str = Field(
        default=",".join(sorted(DEFAULT_SENCO_CLOCKS)),
        description="Clocks whose alerts also reach the SENCO of the child's school.",
    )
    schedule_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the worker checks for digests and termly lists due.",
    )
    clock: Literal["wall", "ticks"] = Field(
        default="wall",
        description=(
            "What digests, termly lists and SMS quiet hours follow: the wall clock, "
            "or the latest tick on send.clock.ticks (a demo in compressed time)."
        ),
    )

    @field_validator("directory_csv", "term_dates_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "case_link_base",
        "sms_quiet_hours",
        "govuk_email_template_id",
        "govuk_sms_template_id",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("sms_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(QuietHours.parse(value))

    @field_validator("govuk_api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        check_api_key(value.get_secret_value())
        return value

    @field_validator("govuk_base_url", "case_link_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an http(s) URL: write https://host/path"
            )
        return value.strip()

    @model_validator(mode="after")
    def _govuk_settings_fit(self) -> NotifySettings:
        if self.email_provider == "govuk_notify" and not (
            self.govuk_api_key and self.govuk_email_template_id
        ):
            raise ConfigurationError(
                "NOTIFY_EMAIL_PROVIDER=govuk_notify needs NOTIFY_GOVUK_API_KEY and "
                "NOTIFY_GOVUK_EMAIL_TEMPLATE_ID"
            )
        if self.send_env == "production":
            host = urlsplit(self.govuk_base_url).hostname or ""
            if urlsplit(self.govuk_base_url).scheme != "https" and not _loopback(host):
                raise ConfigurationError(
                    "NOTIFY_GOVUK_BASE_URL must be https in production"
                )
        return self

    @property
    def sms_available(self) -> bool:
        return bool(self.govuk_api_key and self.govuk_sms_template_id)

    @property
    def routing(self) -> Routing:
        clocks = frozenset(c.strip() for c in self.senco_clocks.split(",") if c.strip())
        return Routing(
            email_provider=Provider(self.email_provider),
            sms_available=self.sms_available,
            link_base=self.case_link_base,
            senco_clocks=clocks,
        )

    @property
    def default_preferences(self) -> Preferences:
        quiet = QuietHours.parse(self.sms_quiet_hours) if self.sms_quiet_hours else None
        return Preferences(quiet_hours=quiet)

    def terms(self) -> tuple[Term, ...]:
        """The council's terms from both settings; ``ConfigurationError`` if bad."""
        terms = list(parse_terms(self.term_dates))
        if self.term_dates_file is not None:
            try:
                text = self.term_dates_file.read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigurationError(
                    f"cannot read NOTIFY_TERM_DATES_FILE {self.term_dates_file} "
                    f"({error.strerror}): point it at a CSV of starts_on,ends_on"
                ) from error
            terms += parse_terms_csv(text, str(self.term_dates_file))
        return check_terms(terms)

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


class NotifyApiSettings(NotifySettings, AuthSettings):
    """The HTTP API's settings: notify's own and how bearer tokens are verified."""

    # Set again: the merged config would take AuthSettings' empty prefix last.
    model_config = SettingsConfigDict(
        env_prefix="NOTIFY_", extra="ignore", populate_by_name=True, frozen=True
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
