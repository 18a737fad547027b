"""How every Kafka client of the platform authenticates: TLS and SASL/SCRAM, one place.

The settings are read from the environment, unprefixed and the same in every process:

==========================  =============  ==========================================
Environment name            Default        Meaning
==========================  =============  ==========================================
KAFKA_SECURITY_PROTOCOL     PLAINTEXT      PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
KAFKA_SASL_MECHANISM        SCRAM-SHA-512  SCRAM-SHA-512 (Strimzi's), SCRAM-SHA-256
KAFKA_SASL_USERNAME         (none)         the KafkaUser's name
KAFKA_SASL_PASSWORD         (none)         its password (the Secret's ``password``)
KAFKA_SSL_CAFILE            (none)         the cluster CA (Strimzi's ``ca.crt``)
KAFKA_SSL_CERTFILE          (none)         a client certificate (``user.crt``), mTLS
KAFKA_SSL_KEYFILE           (none)         its key (``user.key``), mTLS
KAFKA_SSL_CHECK_HOSTNAME    true           check the broker's name against its cert
==========================  =============  ==========================================

As Strimzi issues them: a ``KafkaUser`` with ``authentication: scram-sha-512`` gets a
Secret holding ``password``; with ``tls`` it gets ``user.crt`` and ``user.key``; the
cluster's CA certificate is ``ca.crt`` in ``<cluster>-cluster-ca-cert``. Mount the
files and point the names at them.

- ``kafka_python_config()``: keyword arguments for kafka-python's ``KafkaProducer``,
  ``KafkaConsumer`` and ``KafkaAdminClient``; ``sendkit.relay.OutboxRelay`` and
  ``sendkit.subscriber.IdempotentSubscriber`` merge it under their own settings.
- ``aiokafka_config()``: the same for aiokafka clients (an ``ssl_context``).
- ``faust_app_config()``: ``broker_credentials`` for ``faust.App(...)``.

Each reads ``KafkaSecuritySettings()`` when not given one. The settings refuse, at
start-up, a SASL protocol without a username and password, client certificate without
its key, and a file that does not exist; with ``SEND_ENV=production`` a placeholder
password is refused as every secret is (``sendkit.settings``).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sendkit.settings import Environment, SettingsError, is_placeholder_secret

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class KafkaSecuritySettings(BaseSettings):
    """TLS and SASL settings of a Kafka client, as Strimzi issues them."""

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", populate_by_name=True, frozen=True
    )

    send_env: Environment = Field(
        default="development", validation_alias=_env("SEND_ENV")
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        validation_alias=_env("KAFKA_SECURITY_PROTOCOL"),
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512",
        validation_alias=_env("KAFKA_SASL_MECHANISM"),
        description="SCRAM-SHA-512 (as Strimzi issues) or SCRAM-SHA-256.",
    )
    kafka_sasl_username: str = Field(
        default="",
        validation_alias=_env("KAFKA_SASL_USERNAME"),
        description="The KafkaUser's name.",
    )
    kafka_sasl_password: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=_env("KAFKA_SASL_PASSWORD"),
        description="The KafkaUser's password.",
    )
    kafka_ssl_cafile: str = Field(
        default="",
        validation_alias=_env("KAFKA_SSL_CAFILE"),
        description="The cluster CA certificate (PEM).",
    )
    kafka_ssl_certfile: str = Field(
        default="",
        validation_alias=_env("KAFKA_SSL_CERTFILE"),
        description="The client certificate (PEM), for mutual TLS.",
    )
    kafka_ssl_keyfile: str = Field(
        default="",
        validation_alias=_env("KAFKA_SSL_KEYFILE"),
        description="The client certificate's key (PEM), for mutual TLS.",
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        validation_alias=_env("KAFKA_SSL_CHECK_HOSTNAME"),
        description="Check the broker's host name against its certificate.",
    )

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecuritySettings:
        if self.uses_sasl:
            missing = [
                name
                for name, value in (
                    ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                    (
                        "KAFKA_SASL_PASSWORD",
                        self.kafka_sasl_password.get_secret_value(),
                    ),
                )
                if not value
            ]
            if missing:
                raise SettingsError(
                    f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                    + " and ".join(missing)
                    + " (the KafkaUser's name and the password in its Secret)"
                )
            if self.send_env == "production" and is_placeholder_secret(
                self.kafka_sasl_password.get_secret_value()
            ):
                raise SettingsError(
                    "SEND_ENV=production refuses placeholder secrets: set a real "
                    "value for KAFKA_SASL_PASSWORD"
                )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise SettingsError(
                "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together: set both (the "
                "KafkaUser's user.crt and user.key) or neither"
            )
        for name, path in (
            ("KAFKA_SSL_CAFILE", self.kafka_ssl_cafile),
            ("KAFKA_SSL_CERTFILE", self.kafka_ssl_certfile),
            ("KAFKA_SSL_KEYFILE", self.kafka_ssl_keyfile),
        ):
            if path and not Path(path).is_file():
                raise SettingsError(
                    f"{name}={path} is not a file: mount the Secret there or fix "
                    "the path"
                )
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context with the CA and client certificate configured."""
        context = ssl.create_default_context(cafile=self.kafka_ssl_cafile or None)
        context.check_hostname = self.kafka_ssl_check_hostname
        if self.kafka_ssl_certfile:
            context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        return context


def kafka_python_config(
    settings: KafkaSecuritySettings | None = None,
) -> dict[str, Any]:
    """Keyword arguments of kafka-python clients for these settings."""
    settings = settings or KafkaSecuritySettings()
    config: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.uses_sasl:
        config |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if settings.uses_tls:
        config["ssl_check_hostname"] = settings.kafka_ssl_check_hostname
        if settings.kafka_ssl_cafile:
            config["ssl_cafile"] = settings.kafka_ssl_cafile
        if settings.kafka_ssl_certfile:
            config["ssl_certfile"] = settings.kafka_ssl_certfile
            config["ssl_keyfile"] = settings.kafka_ssl_keyfile
    return config


def aiokafka_config(settings: KafkaSecuritySettings | None = None) -> dict[str, Any]:
    """Keyword arguments of aiokafka clients for these settings."""
    settings = settings or KafkaSecuritySettings()
    config: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.uses_sasl:
        config |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if settings.uses_tls:
        config["ssl_context"] = settings.ssl_context()
    return config


def faust_app_config(settings: KafkaSecuritySettings | None = None) -> dict[str, Any]:
    """Keyword arguments of ``faust.App`` for these settings (empty for PLAINTEXT)."""
    settings = settings or KafkaSecuritySettings()
    import faust  # only the stream workers have faust installed

    context = settings.ssl_context() if settings.uses_tls else None
    if settings.uses_sasl:
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
        return {"broker_credentials": credentials}
    if context is not None:
        return {"broker_credentials": faust.SSLCredentials(context)}
    return {}
