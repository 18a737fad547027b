"""Kafka TLS and SASL/SCRAM settings, as Strimzi issues them, for every kind of client.

The certificates are made here (a self-signed CA and a client certificate), so the TLS
contexts are real ones loaded from real files.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from sendkit.kafka_security import (
    KafkaSecuritySettings,
    aiokafka_config,
    faust_app_config,
    kafka_python_config,
)
from sendkit.relay import OutboxRelay
from sendkit.store import InMemoryEventStore


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA certificate, and a client certificate with its key, as PEM files."""
    folder = tmp_path_factory.mktemp("kafka-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-ca")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    paths = {
        "ca": folder / "ca.crt",
        "cert": folder / "user.crt",
        "key": folder / "user.key",
    }
    paths["ca"].write_bytes(pem)
    paths["cert"].write_bytes(pem)
    paths["key"].write_bytes(key_pem)
    return paths


def scram_over_tls(certificates: dict[str, Path]) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="send-intake",
        kafka_sasl_password="s3cr3t-from-the-kafkauser-secret",
        kafka_ssl_cafile=str(certificates["ca"]),
    )


def test_plaintext_is_the_default_and_adds_nothing_else() -> None:
    assert kafka_python_config(KafkaSecuritySettings()) == {
        "security_protocol": "PLAINTEXT"
    }
    assert faust_app_config(KafkaSecuritySettings()) == {}


def test_scram_over_tls_for_kafka_python(certificates: dict[str, Path]) -> None:
    config = kafka_python_config(scram_over_tls(certificates))

    assert config == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "send-intake",
        "sasl_plain_password": "s3cr3t-from-the-kafkauser-secret",
        "ssl_check_hostname": True,
        "ssl_cafile": str(certificates["ca"]),
    }


def test_scram_over_tls_for_aiokafka_and_faust(certificates: dict[str, Path]) -> None:
    settings = scram_over_tls(certificates)

    aio = aiokafka_config(settings)
    credentials = faust_app_config(settings)["broker_credentials"]

    assert aio["security_protocol"] == "SASL_SSL"
    assert aio["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(aio["ssl_context"], ssl.SSLContext)
    assert aio["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == "send-intake"


def test_mutual_tls_loads_the_client_certificate(certificates: dict[str, Path]) -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(certificates["ca"]),
        kafka_ssl_certfile=str(certificates["cert"]),
        kafka_ssl_keyfile=str(certificates["key"]),
    )

    config = kafka_python_config(settings)
    credentials = faust_app_config(settings)["broker_credentials"]

    assert config["ssl_certfile"] == str(certificates["cert"])
    assert config["ssl_keyfile"] == str(certificates["key"])
    assert "sasl_mechanism" not in config
    assert credentials.protocol.value == "SSL"


def test_the_names_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, certificates: dict[str, Path]
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "send-plans")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-env-secret")

    config = kafka_python_config()

    assert config["security_protocol"] == "SASL_PLAINTEXT"
    assert config["sasl_mechanism"] == "SCRAM-SHA-256"
    assert config["sasl_plain_username"] == "send-plans"


def test_the_relay_producer_takes_the_security_settings(
    monkeypatch: pytest.MonkeyPatch, certificates: dict[str, Path]
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "send-intake")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "relay-secret")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(certificates["ca"]))

    relay = OutboxRelay(InMemoryEventStore("/send/test"), "t", "127.0.0.1:9")
    config = relay._producer_config

    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["ssl_cafile"] == str(certificates["ca"])
    assert config["acks"] == "all"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/etc/user.crt"},
            "go together",
        ),
        ({"kafka_ssl_cafile": "/nonexistent/ca.crt"}, "is not a file"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "kafka_sasl_mechanism"),
        (
            {
                "send_env": "production",
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "changeme",
            },
            "placeholder",
        ),
    ],
    ids=["no-credentials", "cert-without-key", "missing-file", "plain", "placeholder"],
)
def test_incomplete_settings_stop_the_process_at_start_up(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecuritySettings(**fields)


def test_the_password_never_shows_in_the_settings_repr(
    certificates: dict[str, Path],
) -> None:
    assert "s3cr3t" not in repr(scram_over_tls(certificates))
