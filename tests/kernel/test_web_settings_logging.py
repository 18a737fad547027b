"""Shared settings, JSON logs and the correlation id across HTTP and Kafka."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from sendkit.logging import (
    KAFKA_CORRELATION_HEADER,
    configure_logging,
    correlation_from_kafka_headers,
    correlation_kafka_headers,
    correlation_scope,
    current_correlation_id,
    get_correlation_id,
    kafka_correlation_scope,
)
from sendkit.settings import ServiceSettings, describe, env_name


class ExampleSettings(ServiceSettings):
    """A service's own settings, with its own prefix."""

    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")

    database_url: str = Field(default="sqlite:///.run/example.db", description="Store.")
    port: int = Field(default=8009, description="HTTP port.")
    api_key: SecretStr = Field(default=SecretStr("dev-key"), description="Key.")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "SEND_ENV",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "EXAMPLE_DATABASE_URL",
        "EXAMPLE_PORT",
        "EXAMPLE_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def test_shared_settings_have_documented_defaults() -> None:
    settings = ExampleSettings()

    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.send_env == "development"
    assert settings.log_format == "json"
    assert settings.log_level == "INFO"
    assert settings.database_url == "sqlite:///.run/example.db"
    assert settings.port == 8009


def test_shared_names_are_unprefixed_and_service_names_prefixed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092, 127.0.0.1:19093")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("EXAMPLE_PORT", "8100")
    monkeypatch.setenv("PORT", "1")

    settings = ExampleSettings()

    assert settings.bootstrap_servers == ["127.0.0.1:19092", "127.0.0.1:19093"]
    assert settings.log_level == "DEBUG"
    assert settings.port == 8100


def test_an_unknown_environment_or_level_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEND_ENV", "staging")
    with pytest.raises(ValidationError, match=r"send_env|SEND_ENV"):
        ExampleSettings()

    monkeypatch.setenv("SEND_ENV", "test")
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError, match="LOG_LEVEL"):
        ExampleSettings()


def test_production_refuses_placeholder_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEND_ENV", "production")

    with pytest.raises(ValidationError, match="EXAMPLE_API_KEY"):
        ExampleSettings()

    monkeypatch.setenv("EXAMPLE_API_KEY", "changeme")
    with pytest.raises(ValidationError, match="EXAMPLE_API_KEY"):
        ExampleSettings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEND_ENV", "production")
    monkeypatch.setenv("EXAMPLE_API_KEY", "k3y-7f1c0a9e5d2b48c6")

    settings = ExampleSettings()

    assert settings.api_key.get_secret_value() == "k3y-7f1c0a9e5d2b48c6"


def test_development_allows_the_placeholder_default() -> None:
    assert ExampleSettings().api_key.get_secret_value() == "dev-key"


def test_every_setting_is_described_with_its_environment_name() -> None:
    rows = {row["env"]: row for row in describe(ExampleSettings)}

    assert set(rows) == {
        "KAFKA_BOOTSTRAP_SERVERS",
        "SEND_ENV",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "EXAMPLE_DATABASE_URL",
        "EXAMPLE_PORT",
        "EXAMPLE_API_KEY",
    }
    assert rows["EXAMPLE_API_KEY"]["default"] == "(secret)"
    assert all(row["description"] for row in rows.values())
    assert env_name(ExampleSettings, "port") == "EXAMPLE_PORT"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_json_logs_carry_correlation_service_and_extra_fields(
    captured: io.StringIO,
) -> None:
    configure_logging("example", log_format="json", level="INFO", stream=captured)
    log = logging.getLogger("example.test")

    with correlation_scope("corr-42"):
        log.info("case %s assigned", "c-1", extra={"case_id": "c-1", "cases": 3})
    log.debug("not shown at INFO")

    lines = captured.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["message"] == "case c-1 assigned"
    assert record["correlation_id"] == "corr-42"
    assert record["service"] == "example"
    assert record["case_id"] == "c-1"
    assert record["cases"] == 3
    assert record["level"] == "INFO"
    assert record["logger"] == "example.test"
    assert datetime.fromisoformat(record["time"]).utcoffset() is not None


def test_text_logs_show_the_extra_fields(captured: io.StringIO) -> None:
    configure_logging("example", log_format="text", level="INFO", stream=captured)

    with correlation_scope("corr-7"):
        logging.getLogger("example").warning("late", extra={"case_id": "c-9"})

    line = captured.getvalue()
    assert "[corr-7]" in line
    assert "late" in line
    assert "case_id='c-9'" in line


def test_a_correlation_scope_restores_the_outer_id() -> None:
    with correlation_scope("outer"):
        with correlation_scope("inner"):
            assert get_correlation_id() == "inner"
        assert get_correlation_id() == "outer"


def test_current_correlation_id_uses_the_scope_or_makes_a_fresh_one() -> None:
    with correlation_scope("seed"):
        assert current_correlation_id() == "seed"

    first, second = current_correlation_id(), current_correlation_id()
    assert first != second
    assert get_correlation_id() is None


def test_the_correlation_id_round_trips_through_kafka_headers() -> None:
    headers = [("ce_id", b"e-1"), *correlation_kafka_headers("corr-from-http")]

    assert headers[-1] == (KAFKA_CORRELATION_HEADER, b"corr-from-http")
    assert correlation_from_kafka_headers(headers) == "corr-from-http"
    with kafka_correlation_scope(headers) as adopted:
        assert adopted == "corr-from-http"
        assert get_correlation_id() == "corr-from-http"


def test_a_record_without_a_usable_id_gets_a_new_one() -> None:
    assert correlation_from_kafka_headers(None) is None
    assert correlation_from_kafka_headers([(KAFKA_CORRELATION_HEADER, b"\xff")]) is None
    with kafka_correlation_scope([("ce_id", b"e-2")]) as adopted:
        assert adopted
        assert get_correlation_id() == adopted
