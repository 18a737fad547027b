"""The ticker's Kafka clients carry the TLS and SCRAM settings, as every client must
on the production listener (``sendkit.kafka_security``)."""

from __future__ import annotations

from typing import Any

import pytest

from deadlines import ticker as ticker_module


class _Recorded:
    """Stands in for a kafka-python client class: keeps the keyword arguments."""

    made: list[dict[str, Any]]

    def __init__(self, **kwargs: Any) -> None:
        type(self).made.append(kwargs)

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_both_clients_authenticate_with_scram_over_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict[str, Any]] = []
    recorded = type("Recorded", (_Recorded,), {"made": made})
    monkeypatch.setattr(ticker_module, "KafkaProducer", recorded)
    monkeypatch.setattr(ticker_module, "KafkaConsumer", recorded)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "send-ticker")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "synthetic-password")

    ticker_module.Ticker("broker.invalid:9093")

    assert len(made) == 2  # the producer and the offsets reader
    for kwargs in made:
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_username"] == "send-ticker"
        assert kwargs["sasl_plain_password"] == "synthetic-password"


def test_without_settings_the_clients_use_plain_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict[str, Any]] = []
    recorded = type("Recorded", (_Recorded,), {"made": made})
    monkeypatch.setattr(ticker_module, "KafkaProducer", recorded)
    monkeypatch.setattr(ticker_module, "KafkaConsumer", recorded)
    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM"):
        monkeypatch.delenv(name, raising=False)

    ticker_module.Ticker("127.0.0.1:9092")

    assert [kwargs["security_protocol"] for kwargs in made] == ["PLAINTEXT"] * 2
    assert all("sasl_mechanism" not in kwargs for kwargs in made)
