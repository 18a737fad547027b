"""What the notify application needs from the outside world, as interfaces.

- ``NotifyDatabase``: notify's own database. One transaction covers the ledger of
  alerts, the staff directory and preferences, the read model of other services'
  facts (who coordinates a case, its school, its annual review dates), the ids of
  consumed messages, and the event store whose events the outbox relay publishes to
  ``send.notify.events``; so an alert's outcome and the event that reports it commit
  together or not at all.
- ``MessageProvider``: hands one message to a provider (an SMTP server, GOV.UK
  Notify), blocking, and raises a typed ``SendFailure``; a provider that keeps what it
  was sent can be asked for a message by its reference.
- ``EmailSender``: sends one email over SMTP; ``SMTPProvider`` (in
  ``notify.adapters.smtp``) makes one a provider.

The SQLite and PostgreSQL adapters and an in-memory one implement the database; the
SMTP and GOV.UK Notify adapters and the tests' fakes implement the providers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, ClassVar

from notify.domain.alerts import (
    AlertKind,
    Channel,
    ClockNotice,
    Provider,
    RecipientRole,
)
from notify.domain.delivery import AlertStatus
from notify.domain.directory import StaffMember
from notify.domain.preferences import Preferences
from notify.errors import NotifyError
from sendkit.store.base import EventStore, Transaction


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as the ledger holds it: what to send, to whom, and how far it got.

    ``source_event_id`` is the clock event that raised the alert (for a correction,
    the ``AlertWithdrawn`` event; for a message notify made itself, a description of
    what made it unique). ``notice`` keeps the clock facts the alert was written
    from, so a later correction can say what it takes back. ``withdrawal`` holds a
    withdrawal that arrived while the alert was being sent.

    ``address`` is an email address or, for SMS, a mobile number. ``provider`` is
    fixed when the alert is recorded, so a resend after a crash asks the provider that
    may already have it. ``quiet_hours`` (``HH:MM-HH:MM``) hold an SMS back.
    ``bundle_id`` is the digest or list that carries this alert; ``covers`` names
    the bundle whose items a message's events are about (a digest or list covers
    itself; the escalation of a failed one covers it too), so those events are
    published per case. ``digest_on`` is the day of the digest a held alert waits
    for. ``provider_id`` is the provider's id of the message once it has one, and
    ``delivery_status`` the last receipt recorded for it.
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
    provider: Provider = Provider.SMTP
    quiet_hours: str | None = None
    bundle_id: str | None = None
    covers: str | None = None
    digest_on: date | None = None
    personalisation: dict[str, Any] | None = None
    provider_id: str | None = None
    delivery_status: str | None = None

    @property
    def clock_notice(self) -> ClockNotice:
        return ClockNotice.from_dict(self.notice)

    @property
    def has_clock_notice(self) -> bool:
        return self.notice.get("kind") in (
            AlertKind.APPROACHING.value,
            AlertKind.OVERDUE.value,
        )

    def evolve(self, **changes: Any) -> AlertRecord:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class HeldNotice:
    """A clock notice for a case whose coordinator notify has not heard of yet."""

    notice: ClockNotice
    correlation_id: str


@dataclass(frozen=True, slots=True)
class ReviewDue:
    """An annual review clock that is open, as the deadlines service published it."""

    case_id: str
    clock_id: str
    due_on: date
    legal_basis: str
    school_urn: int | None = None
    meeting_on: date | None = None


class NotifyTransaction(ABC):
    """One unit of work on notify's database."""

    @property
    @abstractmethod
    def events(self) -> Transaction:
        """The event store's side of this transaction (appends, processed ids)."""

    # Notify's own settings kept in the database.

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    # The staff directory and preferences.

    @abstractmethod
    def get_staff(self, staff_id: str) -> StaffMember | None: ...

    @abstractmethod
    def put_staff(self, member: StaffMember) -> bool:
        """Create or replace a member of staff; ``True`` if they are new."""

    @abstractmethod
    def delete_staff(self, staff_id: str) -> bool:
        """Remove a member of staff and their preferences; whether there was one."""

    @abstractmethod
    def list_staff(
        self, *, role: str | None = None, school_urn: int | None = None
    ) -> list[StaffMember]:
        """Staff by id, optionally only one role or one school's."""

    @abstractmethod
    def managed_by(self, manager_id: str) -> list[str]:
        """The ids of the staff whose manager is ``manager_id``."""

    @abstractmethod
    def get_preferences(self, staff_id: str) -> Preferences | None:
        """The person's preferences (``None``: never set, the defaults apply)."""

    @abstractmethod
    def put_preferences(self, staff_id: str, preferences: Preferences) -> None: ...

    # The read model of other services' facts.

    @abstractmethod
    def set_request_school(self, case_id: str, school_urn: int) -> None:
        """The school named when the request was made (intake's RequestReceived)."""

    @abstractmethod
    def set_setting(self, case_id: str, school_urn: int) -> None:
        """The setting the EHC plan names (the reviews service's events)."""

    @abstractmethod
    def school_of(self, case_id: str) -> int | None:
        """The child's school: the plan's setting if known, else the request's."""

    @abstractmethod
    def set_meeting(self, case_id: str, meeting_on: date | None) -> None:
        """The date of the case's next review meeting (``None``: none arranged)."""

    @abstractmethod
    def open_review(self, due: ReviewDue) -> None:
        """Record an open annual review clock (or its moved due date)."""

    @abstractmethod
    def close_review(self, case_id: str, clock_id: str) -> None:
        """The annual review clock stopped or was cancelled."""

    @abstractmethod
    def reviews_due(self, first: date, last: date) -> list[ReviewDue]:
        """Open annual reviews due from ``first`` to ``last``, with each case's
        school and meeting date, by school, due date and case."""

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
    def held_alerts(self, up_to: date) -> list[AlertRecord]:
        """Alerts held for a digest of a day up to ``up_to``, in recorded order."""

    @abstractmethod
    def bundle_items(self, bundle_id: str) -> list[AlertRecord]:
        """The alerts a digest or list carries, in recorded order."""

    @abstractmethod
    def alert_by_provider_id(self, provider_id: str) -> AlertRecord | None: ...

    @abstractmethod
    def count_by_status(self) -> dict[AlertStatus, int]: ...


class TransactionDirectory:
    """The ``Directory`` questions answered from one transaction's staff table."""

    def __init__(self, tx: NotifyTransaction) -> None:
        self._tx = tx

    def get(self, staff_id: str) -> StaffMember | None:
        return self._tx.get_staff(staff_id)

    def manager_of(self, staff_id: str) -> StaffMember | None:
        member = self._tx.get_staff(staff_id)
        if member is None or not member.manager_id:
            return None
        return self._tx.get_staff(member.manager_id)

    def sencos_at(self, school_urn: int) -> list[StaffMember]:
        return self._tx.list_staff(role="senco", school_urn=school_urn)


class NotifyDatabase(ABC):
    """Notify's own database: the ledger, the read model and the event store.

    ``store`` is the event store its transactions append to (the outbox relay
    publishes from it). ``shared`` says whether several replicas may send from this
    database at once (PostgreSQL): a sender starting up then leaves the claims it
    finds to their lease, since they may belong to a replica that is still sending.
    """

    store: EventStore
    shared: ClassVar[bool] = False

    @abstractmethod
    def transaction(self) -> AbstractContextManager[NotifyTransaction]:
        """A write transaction; it commits when the block ends, rolls back on error."""

    @abstractmethod
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message for a provider: an email (subject and body) or a text (body).

    ``reference`` is the alert id: GOV.UK Notify keeps it and finds the message by
    it; it carries no personal data. ``personalisation`` fills a Notify template.
    """

    reference: str
    channel: Channel
    to: str
    subject: str
    body: str
    message_id: str
    from_address: str
    headers: dict[str, str] = field(default_factory=dict)
    personalisation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderReceipt:
    """What a provider said when it took a message: its own id for it, if any."""

    provider_id: str | None = None
    status: str | None = None


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


class MessageProvider(ABC):
    """Carries messages of some channels. Blocking, like ``EmailSender``.

    ``can_look_up`` says whether ``look_up`` can answer: whether the provider keeps
    what it accepted and finds it by reference, so a send whose answer was lost can
    be checked instead of repeated.
    """

    name: ClassVar[Provider]
    channels: ClassVar[frozenset[Channel]]
    can_look_up: ClassVar[bool] = False

    @abstractmethod
    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        """Hand ``message`` over, or raise a ``SendFailure``."""

    def look_up(self, reference: str) -> ProviderReceipt | None:
        """The message sent with ``reference``, if the provider has it.

        Raises a ``SendFailure`` when the provider cannot be asked right now.
        """
        raise NotImplementedError(f"{self.name} keeps nothing to look up")


class EmailSenderProvider(MessageProvider):
    """An ``EmailSender`` (SMTP) as a provider of the email channel.

    SMTP keeps nothing that can be asked for later, so a send whose answer was lost
    is repeated, with the same Message-ID.
    """

    name = Provider.SMTP
    channels = frozenset({Channel.EMAIL})
    can_look_up = False

    def __init__(self, sender: EmailSender) -> None:
        self.sender = sender

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        self.sender.send(
            OutgoingEmail(
                message_id=message.message_id,
                from_address=message.from_address,
                to_address=message.to,
                subject=message.subject,
                body=message.body,
                headers=message.headers,
            )
        )
        return ProviderReceipt()
