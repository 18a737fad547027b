"""The composition root: builds notify's parts from its settings, in one place.

Entry points (the faust worker, the command line) and tests call ``build_runtime``;
nothing else constructs adapters, so swapping one (a fake sender in a test, another
database later) happens here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from notify.adapters.directory_csv import load_directory
from notify.adapters.smtp import SMTPEmailSender
from notify.adapters.sqlite_db import NotifySQLiteDatabase, sqlite_path
from notify.application.delivery import Delivery, DeliveryThread
from notify.application.handlers import NotifyHandlers
from notify.application.ports import EmailSender
from notify.domain.directory import StaffDirectory
from notify.settings import NotifySettings


def smtp_sender(settings: NotifySettings) -> SMTPEmailSender:
    password = settings.smtp_password
    return SMTPEmailSender(
        settings.smtp_host,
        settings.smtp_port,
        timeout=settings.smtp_timeout_seconds,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=password.get_secret_value() if password else None,
    )


@dataclass
class NotifyRuntime:
    """Notify's parts, wired: database, directory, handlers and delivery."""

    settings: NotifySettings
    db: NotifySQLiteDatabase
    directory: StaffDirectory
    handlers: NotifyHandlers
    delivery: Delivery
    delivery_thread: DeliveryThread = field(init=False)

    def __post_init__(self) -> None:
        self.delivery_thread = DeliveryThread(
            self.delivery, poll_interval=self.settings.delivery_poll_seconds
        )

    def close(self) -> None:
        self.delivery_thread.stop(timeout=self.settings.smtp_timeout_seconds * 4)
        self.db.close()


def build_runtime(
    settings: NotifySettings, *, sender: EmailSender | None = None
) -> NotifyRuntime:
    """Open the database, load the directory and wire the handlers and delivery."""
    directory = load_directory(settings.directory_csv)
    db = NotifySQLiteDatabase(sqlite_path(settings.database_url))
    delivery = Delivery(
        db,
        sender or smtp_sender(settings),
        from_address=settings.from_address,
        message_id_domain=settings.message_domain,
        policy=settings.retry_policy,
        claim_lease=timedelta(seconds=settings.claim_lease_seconds),
    )
    return NotifyRuntime(
        settings=settings,
        db=db,
        directory=directory,
        handlers=NotifyHandlers(db, directory),
        delivery=delivery,
    )
