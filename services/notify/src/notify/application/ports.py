"""What the notify application needs from the outside world, as interfaces.

- ``NotifyDatabase``: notify's own database. One transaction covers the ledger of
  alerts, the case-to-coordinator read model, the ids of consumed messages, and the
  event store whose events the outbox relay publishes to ``send.notify.events``; so an
  alert's outcome and the event that reports it commit together or not at all.
- ``EmailSender``: sends one email, blocking, and raises a typed ``SendFailure``.

The SQLite adapter and an in-memory one implement the database; the SMTP adapter and
the tests' fakes implement the sender.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar

from notify.domain.alerts import AlertKind, Channel, ClockNotice, RecipientRole
from notify.domain.delivery import AlertStatus
from notify.errors import NotifyError
from sendkit.store.base import Transaction


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as the ledger holds it: what to send, to whom, and how far it got.

    ``source_event_id`` is the clock event that raised the alert (for a correction,
    the ``AlertWithdrawn`` event). ``notice`` keeps the clock facts the alert was
    written from, so a later correction can say what it takes back. ``withdrawal``
    holds a withdrawal that arrived while the alert was being sent.
    """

    alert_id: str
    source_event_id: str
    case_id: str
    kind: AlertKind
    channel: Channel
    role: RecipientRole
    staff_id: str | None
    address: str | None
    subject: str
    body: str
    notice: dict[str, Any]
    correlation_id: str
    created_at: datetime
    status: AlertStatus = AlertStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    corrects: str | None = None
    withdrawal: dict[str, Any] | None = None
    updated_at: datetime | None = None

    @property
    def clock_notice(self) -> ClockNotice:
        return ClockNotice.from_dict(self.notice)

    def evolve(self, **changes: Any) -> AlertRecord:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class HeldNotice:
    """A clock notice for a case whose coordinator notify has not heard of yet."""

    notice: ClockNotice
    correlation_id: str


class NotifyTransaction(ABC):
    """One unit of work on notify's database."""

    @property
    @abstractmethod
    def events(self) -> Transaction:
        """The event store's side of this transaction (appends, processed ids)."""

    # The case-to-coordinator read model.

    @abstractmethod
    def set_coordinator(self, case_id: str, coordinator_id: str | None) -> None:
        """Record who coordinates ``case_id`` (``None``: nobody any more)."""

    @abstractmethod
    def coordinator_of(self, case_id: str) -> str | None:
        """The coordinator of ``case_id``, if notify has been told of one."""

    @abstractmethod
    def hold(self, held: HeldNotice) -> None:
        """Keep a notice until the case has a coordinator (once per event id)."""

    @abstractmethod
    def take_held(self, case_id: str) -> list[HeldNotice]:
        """Remove and return the notices held for ``case_id``, oldest first."""

    @abstractmethod
    def drop_held(self, event_id: str) -> bool:
        """Forget a held notice; whether there was one."""

    # The ledger.

    @abstractmethod
    def add_alert(self, alert: AlertRecord) -> bool:
        """Record a new alert; ``False`` (and no change) if its id is already there."""

    @abstractmethod
    def save_alert(self, alert: AlertRecord) -> None:
        """Store the new state of an alert already recorded."""

    @abstractmethod
    def get_alert(self, alert_id: str) -> AlertRecord | None: ...

    @abstractmethod
    def alerts_from(self, source_event_id: str) -> list[AlertRecord]:
        """The alerts raised by one event, in the order they were recorded."""

    @abstractmethod
    def due_alerts(self, now: datetime, limit: int) -> list[AlertRecord]:
        """Pending alerts whose attempt time has come, and claims whose lease ran out,
        earliest first."""

    @abstractmethod
    def next_attempt_at(self) -> datetime | None:
        """When the earliest pending or claimed alert falls due (``None``: none)."""

    @abstractmethod
    def claimed_alerts(self) -> list[AlertRecord]:
        """Alerts in ``sending``: claimed by a sender that has not yet recorded an
        answer."""

    @abstractmethod
    def count_by_status(self) -> dict[AlertStatus, int]: ...


class NotifyDatabase(ABC):
    """Notify's own database: the ledger, the read model and the event store."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[NotifyTransaction]:
        """A write transaction; it commits when the block ends, rolls back on error."""

    @abstractmethod
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One plain-text email, ready to hand to a mail server."""

    message_id: str
    from_address: str
    to_address: str
    subject: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class SendFailure(NotifyError):
    """A send did not succeed; ``retryable`` says whether trying again may help.

    ``code`` is the provider's answer code (an SMTP reply code), when there was one.
    """

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryableSendFailure(SendFailure):
    """A transient failure (SMTP 4xx, a refused or dropped connection, a timeout)."""

    retryable = True


class PermanentSendFailure(SendFailure):
    """A failure that will not go away by retrying (SMTP 5xx, a malformed address)."""

    retryable = False


class EmailSender(ABC):
    """Sends one email. Blocking: call it from a worker thread, never the event loop."""

    @abstractmethod
    def send(self, email: OutgoingEmail) -> None:
        """Hand ``email`` to the mail system, or raise a ``SendFailure``."""
