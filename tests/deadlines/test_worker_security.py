"""The deadlines worker's Kafka security: what faust and the worker's own clients get.

The ``KAFKA_SECURITY_*`` names (``sendkit.kafka_security``) become faust's
``broker_credentials``, which faust's aiokafka driver turns into the connection's
keyword arguments, and kafka-python options for the worker's offsets consumer. The
CA is a real certificate made here, so the TLS contexts are real ones.
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
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from deadlines.entrypoints.worker import ClocksWorker
from deadlines.settings import DeadlinesSettings

SECURITY_NAMES = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "KAFKA_SSL_CHECK_HOSTNAME",
)


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    """A self-signed cluster CA certificate, as Strimzi's ``ca.crt``."""
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
    path = tmp_path / "ca.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SECURITY_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def worker() -> ClocksWorker:
    return ClocksWorker(
        DeadlinesSettings(
            kafka_bootstrap_servers="127.0.0.1:9", app_id="deadlines-security-test"
        )
    )


def test_plaintext_by_default(environment: pytest.MonkeyPatch) -> None:
    built = worker()

    assert built.app.conf.broker_credentials is None
    assert credentials_to_aiokafka_auth(built.app.conf.broker_credentials) == {
        "security_protocol": "PLAINTEXT"
    }
    assert built.offsets.config == {"security_protocol": "PLAINTEXT"}


def test_tls_with_the_cluster_ca(
    environment: pytest.MonkeyPatch, ca_file: Path
) -> None:
    environment.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    environment.setenv("KAFKA_SSL_CAFILE", str(ca_file))

    built = worker()
    auth = credentials_to_aiokafka_auth(built.app.conf.broker_credentials)

    assert auth["security_protocol"] == "SSL"
    context = auth["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "cluster-ca"),),)
    ]
    assert built.offsets.config == {
        "security_protocol": "SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(ca_file),
    }


def test_scram_sha_512_over_tls_as_strimzi_issues_it(
    environment: pytest.MonkeyPatch, ca_file: Path
) -> None:
    environment.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    environment.setenv("KAFKA_SASL_USERNAME", "send-deadlines")
    environment.setenv("KAFKA_SASL_PASSWORD", "from-the-kafkauser-secret")
    environment.setenv("KAFKA_SSL_CAFILE", str(ca_file))

    built = worker()
    auth = credentials_to_aiokafka_auth(built.app.conf.broker_credentials)

    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "send-deadlines"
    assert auth["sasl_plain_password"] == "from-the-kafkauser-secret"
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    assert built.offsets.config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert built.offsets.config["sasl_plain_username"] == "send-deadlines"
    assert built.offsets.config["security_protocol"] == "SASL_SSL"


def test_scram_without_tls_gets_no_tls_context(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    environment.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    environment.setenv("KAFKA_SASL_USERNAME", "send-deadlines")
    environment.setenv("KAFKA_SASL_PASSWORD", "from-the-kafkauser-secret")

    auth = credentials_to_aiokafka_auth(worker().app.conf.broker_credentials)

    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-256"
    assert auth["ssl_context"] is None
