"""The staff directory CSV and notify's settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from notify_factories import COORDINATOR, MANAGER, STAFF, write_directory_csv
from pydantic import ValidationError

from devstack.notify_stub import DEFAULT_API_KEY, DEFAULT_SMS_TEMPLATE_ID
from notify.adapters.directory_csv import load_directory
from notify.adapters.sqlite_db import sqlite_path
from notify.errors import ConfigurationError, DirectoryError
from notify.settings import NotifySettings
from sendkit.settings import describe


def test_the_directory_loads_people_and_their_managers(tmp_path: Path) -> None:
    directory = load_directory(write_directory_csv(tmp_path / "staff.csv"))

    assert len(directory) == len(STAFF)
    assert directory.get(COORDINATOR.staff_id) == COORDINATOR
    assert directory.manager_of(COORDINATOR.staff_id) == MANAGER
    assert directory.manager_of(MANAGER.staff_id) is None


def test_columns_may_come_in_any_order_with_extras(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(
        "\ufeffrole,email,name,staff_id,manager_id,team\n"
        'ehcco,a.b@council.example,"B, A",ehcco-09,,North\n',
        encoding="utf-8",
    )

    [member] = list(load_directory(path))

    assert (member.staff_id, member.name, member.manager_id) == (
        "ehcco-09",
        "B, A",
        None,
    )


def test_every_bad_row_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(
        "staff_id,name,email,role,manager_id\n"
        "ehcco-01,Alex,not-an-address,ehcco,\n"
        ",Nobody,n@council.example,ehcco,\n"
        "has space,Jo,j@council.example,ehcco,\n",
        encoding="utf-8",
    )

    with pytest.raises(DirectoryError) as error:
        load_directory(path)

    message = str(error.value)
    assert "line 2.email: 'not-an-address' is not an email address" in message
    assert "line 3.staff_id: is empty" in message
    assert "line 4.staff_id: must be 1 to 64 letters" in message


def test_a_missing_column_or_file_says_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text("staff_id,name,email\n", encoding="utf-8")

    with pytest.raises(DirectoryError, match="lacks the column"):
        load_directory(path)
    with pytest.raises(DirectoryError, match="NOTIFY_DIRECTORY_CSV"):
        load_directory(tmp_path / "missing.csv")


def test_a_repeated_staff_id_is_refused(tmp_path: Path) -> None:
    path = write_directory_csv(tmp_path / "staff.csv", [COORDINATOR, COORDINATOR])

    with pytest.raises(DirectoryError, match="is already on line 2"):
        load_directory(path)


def test_settings_come_from_notify_prefixed_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_DATABASE_URL", "sqlite:////var/lib/notify/notify.db")
    monkeypatch.setenv("NOTIFY_FROM_ADDRESS", "SEND alerts <alerts@county.example>")
    monkeypatch.setenv("NOTIFY_RETRY_BASE_SECONDS", "1.5")
    monkeypatch.setenv("NOTIFY_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9999")

    settings = NotifySettings()

    assert sqlite_path(settings.database_url) == "/var/lib/notify/notify.db"
    assert settings.message_domain == "county.example"
    assert settings.retry_policy.base_delay == timedelta(seconds=1.5)
    assert settings.retry_policy.max_attempts == 4
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9999"
    names = {row["env"] for row in describe(NotifySettings)}
    assert {
        "NOTIFY_DIRECTORY_CSV",
        "NOTIFY_SMTP_PORT",
        "KAFKA_BOOTSTRAP_SERVERS",
    } <= names


def test_settings_refuse_what_notify_cannot_run_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_FROM_ADDRESS", "alerts")
    with pytest.raises(ValidationError, match="not an email address"):
        NotifySettings()
    with pytest.raises(ConfigurationError, match="SQLite"):
        sqlite_path("postgresql://user:secret@db/notify")


def test_production_refuses_a_placeholder_smtp_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEND_ENV", "production")
    monkeypatch.setenv("NOTIFY_SMTP_PASSWORD", "changeme")

    with pytest.raises(ValidationError, match="NOTIFY_SMTP_PASSWORD"):
        NotifySettings()


def test_govuk_notify_settings_are_checked_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFY_EMAIL_PROVIDER", "govuk_notify")
    with pytest.raises(ConfigurationError, match="NOTIFY_GOVUK_API_KEY"):
        NotifySettings()
    monkeypatch.delenv("NOTIFY_EMAIL_PROVIDER")
    monkeypatch.setenv("NOTIFY_GOVUK_API_KEY", "not-a-key")
    with pytest.raises(ConfigurationError, match=r"not a GOV\.UK Notify API key"):
        NotifySettings()
    monkeypatch.setenv("NOTIFY_GOVUK_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("NOTIFY_GOVUK_SMS_TEMPLATE_ID", "not-a-uuid")
    with pytest.raises(ValidationError, match="govuk_sms_template_id"):
        NotifySettings()
    monkeypatch.setenv("NOTIFY_GOVUK_SMS_TEMPLATE_ID", DEFAULT_SMS_TEMPLATE_ID)
    monkeypatch.setenv("NOTIFY_DIRECTORY_CSV", "")
    monkeypatch.setenv("NOTIFY_SMS_QUIET_HOURS", "")
    monkeypatch.setenv("NOTIFY_TERM_DATES", "2026-01-05/2026-03-27")
    terms = tmp_path / "terms.csv"
    terms.write_text("starts_on,ends_on\n2026-04-13,2026-07-22\n", encoding="utf-8")
    monkeypatch.setenv("NOTIFY_TERM_DATES_FILE", str(terms))

    settings = NotifySettings()

    assert settings.sms_available
    assert settings.directory_csv is None
    assert settings.default_preferences.quiet_hours is None
    assert [t.starts_on.isoformat() for t in settings.terms()] == [
        "2026-01-05",
        "2026-04-13",
    ]
    assert settings.routing.link("3f6c2a4e-8d1b-4c7a-9e2f-5b0a1c3d4e6f") == (
        "https://send.council.example/cases/3f6c2a4e-8d1b-4c7a-9e2f-5b0a1c3d4e6f"
    )
    assert (settings.host, settings.port) == ("127.0.0.1", 8006)


def test_production_refuses_plain_http_to_notify_and_placeholder_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEND_ENV", "production")
    monkeypatch.setenv("NOTIFY_GOVUK_BASE_URL", "http://notify.example")
    with pytest.raises(ConfigurationError, match="https"):
        NotifySettings()
    monkeypatch.setenv(
        "NOTIFY_GOVUK_BASE_URL", "https://api.notifications.service.gov.uk"
    )
    monkeypatch.setenv("NOTIFY_GOVUK_CALLBACK_TOKEN", "changeme")
    with pytest.raises(ValidationError, match="NOTIFY_GOVUK_CALLBACK_TOKEN"):
        NotifySettings()
