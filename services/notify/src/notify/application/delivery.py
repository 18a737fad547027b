"""Sending the alerts the ledger holds, one at a time, and recording each answer.

For each alert that is due, the delivery claims it in one transaction (status
``sending``, one more attempt, a lease), sends it with no transaction open, then
records the answer in a second transaction together with the ``NotificationSent`` or
``NotificationFailed`` event. An alert is never claimed while another claim on it is
live, and a sent alert is never claimed again.

Each alert id is sent at most once in effect. The only repeat of a send is an alert
whose earlier attempt may have reached the provider without its answer reaching us
(the process died mid-send, or the attempt timed out or failed in a way that leaves
it unknown). Before repeating it, the delivery asks a provider that can be asked
(GOV.UK Notify, by ``reference`` = the alert id) whether it already has the message;
if it has, the alert is recorded as sent and nothing is sent again. SMTP cannot be
asked, so an email is resent with the same Message-ID, which a mail system that keeps
Message-IDs drops as a copy.

A text message is not sent in its recipient's quiet hours: one that falls due in them
(or whose retry would) waits until they end. The hours are read on the calendar clock
(``notify.application.clock``): the wall clock, or in a demo the ticks' time, when a
held text is looked at again every ``quiet_recheck``. Retryable failures (timeouts,
refused connections, SMTP 4xx, HTTP 429 and 5xx) back off exponentially up to a cap
and a maximum number of attempts; permanent ones (HTTP 400, SMTP 5xx, a bad address) and
exhausted retries end the alert as failed, publish ``NotificationFailed`` and
escalate to the recipient's manager.

A digest or termly list is one message carrying several alerts: when it is sent or
fails, each alert it carries is sent or failed with it, and the events are published
per alert (``notify.application.records.report``).

``DeliveryThread`` runs the delivery on its own thread, so the blocking provider calls
never run on the faust event loop; handlers wake it when they record new alerts, and
it sleeps until the next attempt is due otherwise. Between passes it runs the
scheduler (digests, termly lists) when one is given.

On SQLite the delivery assumes one sender per ledger (one worker process per file);
``release_claims`` at start-up returns any claim left by a dead process. On
PostgreSQL several replicas send from one ledger (``NotifyDatabase.shared``): a claim
is made in a transaction that no other replica's claim can interleave with, so an
alert is claimed by one sender at a time, and a claim left by a dead replica falls due
again when its lease runs out instead of at start-up. Live senders never send an
alert twice while its lease holds, but a send that outlasts the lease could be
repeated (for GOV.UK Notify, only after asking it by reference).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from notify.application.escalation import escalate
from notify.application.ports import (
    AlertRecord,
    EmailSender,
    EmailSenderProvider,
    MessageProvider,
    NotifyDatabase,
    NotifyTransaction,
    OutgoingEmail,
    OutgoingMessage,
    PermanentSendFailure,
    ProviderReceipt,
    RetryableSendFailure,
    SendFailure,
)
from notify.application.receipts import publish_receipt
from notify.application.records import (
    Routing,
    correction_for,
    failed_builder,
    personalisation,
    redact,
    report,
    sent_builder,
    withdrawal_from_dict,
)
from notify.domain.alerts import Channel, Provider, message_id
from notify.domain.delivery import (
    AlertStatus,
    DeliveryStatus,
    FailureKind,
    RetryPolicy,
)
from notify.domain.preferences import QuietHours
from sendkit.events import utcnow

log = logging.getLogger(__name__)

ALERT_ID_HEADER = "X-SEND-Alert-ID"
CASE_HEADER = "X-SEND-Case-Reference"
CORRELATION_HEADER = "X-Correlation-ID"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass over the due alerts did."""

    attempted: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0


@dataclass(frozen=True, slots=True)
class _Claim:
    alert: AlertRecord
    ask_first: bool


class _Deferred(Enum):
    """What ``_claim`` answers for a text message it moved past the quiet hours."""

    DEFERRED = "deferred"


_DEFERRED = _Deferred.DEFERRED


def _quiet(alert: AlertRecord) -> QuietHours | None:
    if alert.channel is not Channel.SMS or not alert.quiet_hours:
        return None
    return QuietHours.parse(alert.quiet_hours)


class Delivery:
    """Claims due alerts, hands them to their provider, records the answer."""

    def __init__(
        self,
        db: NotifyDatabase,
        sender: EmailSender | None = None,
        *,
        from_address: str,
        message_id_domain: str,
        providers: Mapping[Provider, MessageProvider] | None = None,
        policy: RetryPolicy | None = None,
        claim_lease: timedelta = timedelta(minutes=2),
        routing: Routing | None = None,
        now: Callable[[], datetime] = utcnow,
        calendar_clock: Callable[[], datetime] | None = None,
        quiet_recheck: timedelta = timedelta(seconds=5),
    ) -> None:
        self._db = db
        self._calendar = calendar_clock
        self._recheck = quiet_recheck
        self._providers: dict[Provider, MessageProvider] = dict(providers or {})
        if sender is not None:
            self._providers.setdefault(Provider.SMTP, EmailSenderProvider(sender))
        self._from = from_address
        self._domain = message_id_domain
        self._policy = policy or RetryPolicy()
        self._lease = claim_lease
        self._routing = routing or Routing()
        self._now = now

    def release_claims(self) -> int:
        """Make every unanswered claim due now; call once before delivering.

        On a database several replicas share, a claim found may be another live
        replica's send in progress: it is left to its lease (and then claimed again
        like any other due alert), and this answers 0.
        """
        if self._db.shared:
            log.info(
                "the ledger is shared by replicas; unanswered claims wait for their "
                "lease to run out"
            )
            return 0
        now = self._now()
        with self._db.transaction() as tx:
            claimed = tx.claimed_alerts()
            for alert in claimed:
                tx.save_alert(alert.evolve(next_attempt_at=now, updated_at=now))
        if claimed:
            log.warning(
                "unanswered sends found; each is looked up by reference at its "
                "provider, or resent with the same Message-ID where it cannot be",
                extra={"alerts": [a.alert_id for a in claimed]},
            )
        return len(claimed)

    def next_attempt_at(self) -> datetime | None:
        with self._db.transaction() as tx:
            return tx.next_attempt_at()

    def deliver_due(self, limit: int | None = None) -> DeliveryReport:
        """Send alerts that are due, one by one, until none is (or ``limit``)."""
        attempted = sent = retrying = failed = deferred = 0
        while limit is None or attempted + deferred < limit:
            result = self._deliver_next()
            if result is None:
                break
            if result is _DEFERRED:
                deferred += 1
                continue
            attempted += 1
            if result is AlertStatus.SENT:
                sent += 1
            elif result is AlertStatus.FAILED:
                failed += 1
            else:
                retrying += 1
        return DeliveryReport(attempted, sent, retrying, failed, deferred)

    def deliver_one(self) -> AlertStatus | None:
        """Send the earliest due alert; its new status, or ``None`` if none was due.

        A text message held back by quiet hours answers ``pending``.
        """
        result = self._deliver_next()
        if result is _DEFERRED:
            return AlertStatus.PENDING
        return result

    def _deliver_next(self) -> AlertStatus | _Deferred | None:
        claim = self._claim()
        if claim is None or claim is _DEFERRED:
            return claim
        alert = claim.alert

        receipt: ProviderReceipt | None = None
        failure: SendFailure | None = None
        provider = self._providers.get(alert.provider)
        try:
            if provider is None:
                raise PermanentSendFailure(
                    f"no {alert.provider.value} provider is configured: set the "
                    "NOTIFY_GOVUK_* settings for GOV.UK Notify"
                )
            if claim.ask_first and provider.can_look_up:
                receipt = provider.look_up(alert.alert_id)
                if receipt is not None:
                    log.warning(
                        "alert found at the provider by reference; not sent again",
                        extra={
                            "alert_id": alert.alert_id,
                            "provider_id": receipt.provider_id,
                        },
                    )
                    return self._record(alert, None, receipt)
            receipt = provider.send(self.message_for(alert))
        except SendFailure as error:
            failure = error
        except Exception as error:
            # A provider bug must not lose the alert or spin: it counts as a retryable
            # attempt, so the retry cap still ends it as NotificationFailed.
            log.exception(
                "provider raised an unexpected error",
                extra={"alert_id": alert.alert_id},
            )
            failure = RetryableSendFailure(f"unexpected provider error: {error!r}")

        return self._record(alert, failure, receipt)

    def message_for(self, alert: AlertRecord) -> OutgoingMessage:
        if alert.address is None:
            raise ValueError(f"alert {alert.alert_id} has no address to send to")
        values = alert.personalisation or personalisation(
            subject=alert.subject,
            body=alert.body,
            case_id=alert.case_id,
            link=self._routing.link(alert.case_id),
        )
        return OutgoingMessage(
            reference=alert.alert_id,
            channel=alert.channel,
            to=alert.address,
            subject=alert.subject,
            body=alert.body,
            message_id=message_id(alert.alert_id, self._domain),
            from_address=self._from,
            headers={
                ALERT_ID_HEADER: alert.alert_id,
                CASE_HEADER: alert.case_id,
                CORRELATION_HEADER: alert.correlation_id,
            },
            personalisation=values,
        )

    def email_for(self, alert: AlertRecord) -> OutgoingEmail:
        """The SMTP email of ``alert`` (an email alert)."""
        message = self.message_for(alert)
        return OutgoingEmail(
            message_id=message.message_id,
            from_address=message.from_address,
            to_address=message.to,
            subject=message.subject,
            body=message.body,
            headers=message.headers,
        )

    def _claim(self) -> _Claim | _Deferred | None:
        now = self._now()
        with self._db.transaction() as tx:
            due = tx.due_alerts(now, 1)
            if not due:
                return None
            alert = due[0]
            quiet = _quiet(alert)
            moment = self._calendar() if self._calendar is not None else now
            allowed = quiet.next_allowed(moment) if quiet else moment
            if allowed > moment:
                # On the wall clock the hours end at ``allowed``; on another calendar
                # clock (the ticks') nobody knows when, so it is looked at again soon.
                wait = allowed - moment
                if self._calendar is not None:
                    wait = min(wait, self._recheck)
                tx.save_alert(
                    alert.evolve(
                        status=AlertStatus.PENDING,
                        next_attempt_at=now + wait,
                        updated_at=now,
                    )
                )
                log.info(
                    "text message held until the recipient's quiet hours end",
                    extra={"alert_id": alert.alert_id, "send_at": allowed.isoformat()},
                )
                return _DEFERRED
            claimed = alert.evolve(
                status=AlertStatus.SENDING,
                attempts=alert.attempts + 1,
                next_attempt_at=now + self._lease,
                updated_at=now,
            )
            tx.save_alert(claimed)
        log.info(
            "sending alert",
            extra={
                "alert_id": claimed.alert_id,
                "case_id": claimed.case_id,
                "channel": claimed.channel.value,
                "provider": claimed.provider.value,
                "attempt": claimed.attempts,
                "correlation_id": claimed.correlation_id,
            },
        )
        # Any earlier attempt may have reached the provider without its answer
        # reaching us: ask before sending again.
        return _Claim(claimed, ask_first=alert.attempts > 0)

    def _record(
        self,
        claimed: AlertRecord,
        failure: SendFailure | None,
        receipt: ProviderReceipt | None,
    ) -> AlertStatus | None:
        now = self._now()
        with self._db.transaction() as tx:
            current = tx.get_alert(claimed.alert_id)
            if (
                current is None
                or current.status is not AlertStatus.SENDING
                or current.attempts != claimed.attempts
            ):
                # Our lease ran out and another sender took the alert over; its
                # answer is the one that counts.
                log.warning(
                    "alert was taken over while sending; this answer is dropped",
                    extra={"alert_id": claimed.alert_id},
                )
                return None
            if failure is None:
                return self._record_sent(tx, current, receipt, now)
            if failure.retryable and not self._policy.exhausted(current.attempts):
                return self._record_retry(tx, current, failure, now)
            kind = (
                FailureKind.RETRIES_EXHAUSTED
                if failure.retryable
                else FailureKind.PERMANENT
            )
            return self._record_failed(tx, current, kind, failure, now)

    def _record_sent(
        self,
        tx: NotifyTransaction,
        alert: AlertRecord,
        receipt: ProviderReceipt | None,
        now: datetime,
    ) -> AlertStatus:
        done = alert.evolve(
            status=AlertStatus.SENT,
            next_attempt_at=None,
            last_error=None,
            provider_id=(receipt.provider_id if receipt else None) or alert.provider_id,
            updated_at=now,
        )
        tx.save_alert(done)
        report(tx, done, sent_builder())
        corrections = [done] if done.withdrawal is not None else []
        if done.covers == done.alert_id:
            for item in tx.bundle_items(done.alert_id):
                if item.status is not AlertStatus.BUNDLED:
                    continue
                carried = item.evolve(
                    status=AlertStatus.SENT,
                    attempts=done.attempts,
                    provider=done.provider,
                    provider_id=done.provider_id,
                    updated_at=now,
                )
                tx.save_alert(carried)
                if carried.withdrawal is not None:
                    corrections.append(carried)
        for withdrawn in corrections:
            # Withdrawn while it was on its way: it arrived, so take it back.
            assert withdrawn.withdrawal is not None
            tx.add_alert(
                correction_for(
                    withdrawn,
                    withdrawal_from_dict(withdrawn.withdrawal),
                    correlation_id=withdrawn.correlation_id,
                    now=now,
                    routing=self._routing,
                )
            )
        if done.delivery_status is not None:
            # Notify's receipt came in before its answer to the send was recorded.
            publish_receipt(
                tx,
                done,
                DeliveryStatus(done.delivery_status),
                None,
                now=now,
                routing=self._routing,
            )
        log.info(
            "alert sent",
            extra={
                "alert_id": done.alert_id,
                "case_id": done.case_id,
                "kind": done.kind.value,
                "channel": done.channel.value,
                "attempts": done.attempts,
                "correlation_id": done.correlation_id,
            },
        )
        return AlertStatus.SENT

    def _record_retry(
        self,
        tx: NotifyTransaction,
        alert: AlertRecord,
        failure: SendFailure,
        now: datetime,
    ) -> AlertStatus:
        if alert.withdrawal is not None:
            tx.save_alert(
                alert.evolve(
                    status=AlertStatus.WITHDRAWN,
                    next_attempt_at=None,
                    last_error=redact(str(failure)),
                    updated_at=now,
                )
            )
            return AlertStatus.WITHDRAWN
        delay = self._policy.delay_after(alert.attempts)
        retry_at = now + delay
        quiet = _quiet(alert)
        if quiet is not None and self._calendar is None:
            # (On another calendar clock the claim defers it when it falls due.)
            retry_at = quiet.next_allowed(retry_at)
        tx.save_alert(
            alert.evolve(
                status=AlertStatus.PENDING,
                next_attempt_at=retry_at,
                last_error=redact(str(failure)),
                updated_at=now,
            )
        )
        log.warning(
            "alert send failed; it will be retried",
            extra={
                "alert_id": alert.alert_id,
                "attempt": alert.attempts,
                "code": failure.code,
                "retry_in_s": (retry_at - now).total_seconds(),
                "error": redact(str(failure)),
            },
        )
        return AlertStatus.PENDING

    def _record_failed(
        self,
        tx: NotifyTransaction,
        alert: AlertRecord,
        kind: FailureKind,
        failure: SendFailure,
        now: datetime,
    ) -> AlertStatus:
        reason = redact(str(failure))
        done = alert.evolve(
            status=AlertStatus.FAILED,
            next_attempt_at=None,
            last_error=reason,
            updated_at=now,
        )
        tx.save_alert(done)
        report(tx, done, failed_builder(kind, reason, failure.code))
        if done.covers == done.alert_id:
            for item in tx.bundle_items(done.alert_id):
                if item.status is AlertStatus.BUNDLED:
                    tx.save_alert(
                        item.evolve(
                            status=AlertStatus.FAILED,
                            attempts=done.attempts,
                            last_error=reason,
                            updated_at=now,
                        )
                    )
        log.error(
            "alert failed",
            extra={
                "alert_id": done.alert_id,
                "case_id": done.case_id,
                "failure": kind.value,
                "attempts": done.attempts,
                "code": failure.code,
                "error": reason,
            },
        )
        escalate(tx, done, reason, now=now, routing=self._routing)
        return AlertStatus.FAILED


class DeliveryThread(threading.Thread):
    """Runs a ``Delivery`` on its own thread until stopped.

    It runs ``schedule`` (when given) before each send, delivers everything due, then
    sleeps until the next attempt is due, a handler calls ``wake``, or
    ``poll_interval`` passes (a safety net should a wake be missed). An error from
    the database is logged and retried after ``poll_interval``: the ledger still
    holds every alert, so nothing is lost while the thread waits.
    """

    def __init__(
        self,
        delivery: Delivery,
        *,
        poll_interval: float = 5.0,
        schedule: Callable[[], object] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name="notify-delivery", daemon=True)
        self._delivery = delivery
        self._poll = poll_interval
        self._schedule = schedule
        self._now = now
        self._wake = threading.Event()
        self._stop_requested = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        """Ask the thread to finish after the send in progress, without waiting."""
        self._stop_requested.set()
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to finish after the send in progress, and wait for it."""
        self.request_stop()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        log.info("delivery started")
        try:
            self._delivery.release_claims()
        except Exception:
            log.exception("could not release unanswered claims; retrying later")
        while not self._stop_requested.is_set():
            self._wake.clear()
            try:
                while not self._stop_requested.is_set():
                    # Between sends too, so a backlog never holds back a digest that
                    # fell due (the schedule is throttled, so this is cheap).
                    if self._schedule is not None:
                        self._schedule()
                    if self._delivery.deliver_one() is None:
                        break
                wait = self._seconds_to_next()
            except Exception:
                log.exception("delivery pass failed; the ledger keeps every alert")
                wait = self._poll
            self._wake.wait(wait)
        log.info("delivery stopped")

    def _seconds_to_next(self) -> float:
        next_at = self._delivery.next_attempt_at()
        if next_at is None:
            return self._poll
        return min(max((next_at - self._now()).total_seconds(), 0.0), self._poll)
