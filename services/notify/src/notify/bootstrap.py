"""The composition root: builds notify's parts from its settings, in one place.

Entry points (the faust worker, the HTTP API, the command line) and tests call
``build_runtime``; nothing else constructs adapters, so swapping one (a fake provider in
a test, the database chosen by the scheme of ``NOTIFY_DATABASE_URL``: SQLite, PostgreSQL
or memory) happens here only. At start-up it imports the directory CSV
(``NOTIFY_DIRECTORY_CSV``) if that file changed since the last import. With
``NOTIFY_CLOCK=ticks`` the scheduler, the digest an alert goes in and SMS quiet hours
follow a ``TickClock`` (``notify.application.clock``) the worker moves, and the
scheduler runs whenever it moves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from notify.adapters.directory_csv import read_directory_csv
from notify.adapters.govuk_notify import GovukNotifyProvider
from notify.adapters.memory_db import InMemoryNotifyDatabase
from notify.adapters.postgres_db import NotifyPostgresDatabase
from notify.adapters.smtp import SMTPEmailSender, SMTPProvider
from notify.adapters.sqlite_db import NotifySQLiteDatabase, sqlite_path
from notify.application.clock import TICKS, TickClock, when_moved
from notify.application.delivery import Delivery, DeliveryThread
from notify.application.handlers import NotifyHandlers
from notify.application.ports import EmailSender, MessageProvider, NotifyDatabase
from notify.application.receipts import Receipts
from notify.application.schedule import Scheduler
from notify.application.staff import StaffService
from notify.domain.alerts import Provider
from notify.errors import ConfigurationError
from notify.settings import NotifySettings
from sendkit.events import utcnow

log = logging.getLogger(__name__)


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


def govuk_provider(settings: NotifySettings) -> GovukNotifyProvider | None:
    """The GOV.UK Notify provider, if an API key is configured."""
    if settings.govuk_api_key is None:
        return None
    return GovukNotifyProvider(
        settings.govuk_api_key.get_secret_value(),
        base_url=settings.govuk_base_url,
        email_template_id=settings.govuk_email_template_id,
        sms_template_id=settings.govuk_sms_template_id,
        timeout=settings.govuk_timeout_seconds,
    )


def open_database(url: str) -> NotifyDatabase:
    """Notify's database named by ``url`` (``NOTIFY_DATABASE_URL``), by its scheme.

    ``sqlite:///`` opens a file (one worker), ``postgresql://`` or ``postgres://`` a
    PostgreSQL database that several replicas may share, ``memory://`` an empty
    in-process one.
    """
    if url.startswith("sqlite:"):
        return NotifySQLiteDatabase(sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        return NotifyPostgresDatabase(url)
    if url == "memory://":
        return InMemoryNotifyDatabase()
    # Only the scheme goes into the message: a database URL may carry a password.
    scheme = url.partition(":")[0] if ":" in url else url[:20]
    raise ConfigurationError(
        f"NOTIFY_DATABASE_URL has scheme {scheme!r}, which notify cannot open: write "
        "sqlite:///.run/notify.db (a file, one worker), "
        "postgresql://notify:<password>@<host>:5432/notify (several replicas) or "
        "memory:// (tests only)"
    )


class _Throttled:
    """Runs ``action`` at most once per ``interval`` seconds of the clock given, and
    also whenever ``moved()`` answers something new (the calendar clock moved)."""

    def __init__(
        self,
        action: Callable[[], object],
        interval: float,
        now: Callable[[], datetime],
        moved: Callable[[], object] | None = None,
    ) -> None:
        self._action = action
        self._interval = timedelta(seconds=interval)
        self._now = now
        self._moved = moved
        self._last: datetime | None = None
        self._last_token: object = None

    def __call__(self) -> object:
        moment = self._now()
        token = self._moved() if self._moved is not None else None
        if (
            self._last is not None
            and moment - self._last < self._interval
            and token == self._last_token
        ):
            return None
        self._last = moment
        self._last_token = token
        return self._action()


@dataclass
class NotifyRuntime:
    """Notify's parts, wired: database, handlers, delivery, scheduler, directory."""

    settings: NotifySettings
    db: NotifyDatabase
    handlers: NotifyHandlers
    delivery: Delivery
    scheduler: Scheduler
    staff: StaffService
    receipts: Receipts
    clock: TickClock | None = None
    delivery_thread: DeliveryThread = field(init=False)

    def __post_init__(self) -> None:
        clock = self.clock
        self.delivery_thread = DeliveryThread(
            self.delivery,
            poll_interval=self.settings.delivery_poll_seconds,
            schedule=_Throttled(
                self._schedule,
                self.settings.schedule_interval_seconds,
                utcnow,
                moved=when_moved(clock) if clock is not None else None,
            ),
        )

    def _schedule(self) -> object:
        if self.clock is not None and not self.clock.has_tick:
            # No tick yet: nothing is known to be due on the ticks' calendar.
            return None
        return self.scheduler.run()

    def close(self) -> None:
        self.delivery_thread.stop(timeout=self.settings.smtp_timeout_seconds * 4)
        self.db.close()


def build_runtime(
    settings: NotifySettings,
    *,
    sender: EmailSender | None = None,
    providers: Mapping[Provider, MessageProvider] | None = None,
    now: Callable[[], datetime] = utcnow,
    import_directory: bool = True,
) -> NotifyRuntime:
    """Open the database, import the directory CSV if it changed, wire the parts."""
    db = open_database(settings.database_url)
    try:
        clock = TickClock(db, wall=now) if settings.clock == TICKS else None
        calendar = clock.now if clock is not None else None
        staff = StaffService(db)
        if import_directory and settings.directory_csv is not None:
            path = settings.directory_csv
            result = staff.import_csv_if_changed(read_directory_csv(path), str(path))
            if result is not None:
                log.info(
                    "staff directory CSV imported",
                    extra={"path": str(path), "rows": result.imported},
                )
        routing = settings.routing
        chosen: dict[Provider, MessageProvider] = {
            Provider.SMTP: SMTPProvider(sender or smtp_sender(settings))
        }
        govuk = govuk_provider(settings)
        if govuk is not None:
            chosen[Provider.GOVUK_NOTIFY] = govuk
        chosen.update(providers or {})
        delivery = Delivery(
            db,
            from_address=settings.from_address,
            message_id_domain=settings.message_domain,
            providers=chosen,
            policy=settings.retry_policy,
            claim_lease=timedelta(seconds=settings.claim_lease_seconds),
            routing=routing,
            now=now,
            calendar_clock=calendar,
            quiet_recheck=timedelta(seconds=settings.delivery_poll_seconds),
        )
        scheduler = Scheduler(
            db,
            routing=routing,
            digest_time=settings.digest_time,
            terms=settings.terms(),
            list_lead_working_days=settings.senco_list_lead_working_days,
            now=calendar or now,
        )
        handlers = NotifyHandlers(
            db,
            routing=routing,
            digest_time=settings.digest_time,
            default_preferences=settings.default_preferences,
            now=now,
            calendar_clock=calendar,
        )
    except BaseException:
        db.close()
        raise
    return NotifyRuntime(
        settings=settings,
        db=db,
        handlers=handlers,
        delivery=delivery,
        scheduler=scheduler,
        staff=staff,
        receipts=Receipts(db, routing=routing, now=now),
        clock=clock,
    )
