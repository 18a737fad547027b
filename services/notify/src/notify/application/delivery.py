"""Sending the alerts the ledger holds, one at a time, and recording each answer.

For each alert that is due, the delivery claims it in one transaction (status
``sending``, one more attempt, a lease), sends it with no transaction open, then
records the answer in a second transaction together with the ``NotificationSent`` or
``NotificationFailed`` event. An alert is never claimed while another claim on it is
live, and a sent alert is never claimed again; the only resend is of a claim that was
never answered (the process died mid-send), and it carries the same Message-ID.

``DeliveryThread`` runs the delivery on its own thread, so the blocking SMTP
conversation never runs on the faust event loop; handlers wake it when they record new
alerts, and it sleeps until the next retry is due otherwise.

The delivery assumes one sender per ledger at a time (one worker process per SQLite
file); ``release_claims`` at start-up returns any claim left by a dead process. Two
live senders on one ledger would still never send an alert twice while its lease
holds, but a send that outlasts the lease could be repeated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from notify.application.ports import (
    AlertRecord,
    EmailSender,
    NotifyDatabase,
    NotifyTransaction,
    OutgoingEmail,
    RetryableSendFailure,
    SendFailure,
)
from notify.application.records import (
    correction_for,
    failed_event,
    record_event,
    redact,
    sent_event,
    withdrawal_from_dict,
)
from notify.domain.alerts import message_id
from notify.domain.delivery import AlertStatus, FailureKind, RetryPolicy
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


class Delivery:
    """Claims due alerts, sends them through an ``EmailSender``, records the answer."""

    def __init__(
        self,
        db: NotifyDatabase,
        sender: EmailSender,
        *,
        from_address: str,
        message_id_domain: str,
        policy: RetryPolicy | None = None,
        claim_lease: timedelta = timedelta(minutes=2),
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._sender = sender
        self._from = from_address
        self._domain = message_id_domain
        self._policy = policy or RetryPolicy()
        self._lease = claim_lease
        self._now = now

    def release_claims(self) -> int:
        """Make every unanswered claim due now; call once before delivering."""
        now = self._now()
        with self._db.transaction() as tx:
            claimed = tx.claimed_alerts()
            for alert in claimed:
                tx.save_alert(alert.evolve(next_attempt_at=now, updated_at=now))
        if claimed:
            log.warning(
                "unanswered sends found; they will be resent with the same Message-ID",
                extra={"alerts": [a.alert_id for a in claimed]},
            )
        return len(claimed)

    def next_attempt_at(self) -> datetime | None:
        with self._db.transaction() as tx:
            return tx.next_attempt_at()

    def deliver_due(self, limit: int | None = None) -> DeliveryReport:
        """Send alerts that are due, one by one, until none is (or ``limit``)."""
        attempted = sent = retrying = failed = 0
        while limit is None or attempted < limit:
            result = self.deliver_one()
            if result is None:
                break
            attempted += 1
            if result is AlertStatus.SENT:
                sent += 1
            elif result is AlertStatus.FAILED:
                failed += 1
            else:
                retrying += 1
        return DeliveryReport(attempted, sent, retrying, failed)

    def deliver_one(self) -> AlertStatus | None:
        """Send the earliest due alert; its new status, or ``None`` if none was due."""
        claimed = self._claim()
        if claimed is None:
            return None

        failure: SendFailure | None = None
        try:
            self._sender.send(self.email_for(claimed))
        except SendFailure as error:
            failure = error
        except Exception as error:
            # A sender bug must not lose the alert or spin: it counts as a retryable
            # attempt, so the retry cap still ends it as NotificationFailed.
            log.exception(
                "sender raised an unexpected error",
                extra={"alert_id": claimed.alert_id},
            )
            failure = RetryableSendFailure(f"unexpected sender error: {error!r}")

        return self._record(claimed, failure)

    def email_for(self, alert: AlertRecord) -> OutgoingEmail:
        if alert.address is None:
            raise ValueError(f"alert {alert.alert_id} has no address to send to")
        return OutgoingEmail(
            message_id=message_id(alert.alert_id, self._domain),
            from_address=self._from,
            to_address=alert.address,
            subject=alert.subject,
            body=alert.body,
            headers={
                ALERT_ID_HEADER: alert.alert_id,
                CASE_HEADER: alert.case_id,
                CORRELATION_HEADER: alert.correlation_id,
            },
        )

    def _claim(self) -> AlertRecord | None:
        now = self._now()
        with self._db.transaction() as tx:
            due = tx.due_alerts(now, 1)
            if not due:
                return None
            claimed = due[0].evolve(
                status=AlertStatus.SENDING,
                attempts=due[0].attempts + 1,
                next_attempt_at=now + self._lease,
                updated_at=now,
            )
            tx.save_alert(claimed)
        log.info(
            "sending alert",
            extra={
                "alert_id": claimed.alert_id,
                "case_id": claimed.case_id,
                "attempt": claimed.attempts,
                "correlation_id": claimed.correlation_id,
            },
        )
        return claimed

    def _record(
        self, claimed: AlertRecord, failure: SendFailure | None
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
                return self._record_sent(tx, current, now)
            if failure.retryable and not self._policy.exhausted(current.attempts):
                return self._record_retry(tx, current, failure, now)
            kind = (
                FailureKind.RETRIES_EXHAUSTED
                if failure.retryable
                else FailureKind.PERMANENT
            )
            return self._record_failed(tx, current, kind, failure, now)

    def _record_sent(
        self, tx: NotifyTransaction, alert: AlertRecord, now: datetime
    ) -> AlertStatus:
        done = alert.evolve(
            status=AlertStatus.SENT,
            next_attempt_at=None,
            last_error=None,
            updated_at=now,
        )
        tx.save_alert(done)
        record_event(tx, done.case_id, sent_event(done))
        if done.withdrawal is not None:
            # Withdrawn while it was on its way: it arrived, so take it back.
            tx.add_alert(
                correction_for(
                    done,
                    withdrawal_from_dict(done.withdrawal),
                    correlation_id=done.correlation_id,
                    now=now,
                )
            )
        log.info(
            "alert sent",
            extra={
                "alert_id": done.alert_id,
                "case_id": done.case_id,
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
        tx.save_alert(
            alert.evolve(
                status=AlertStatus.PENDING,
                next_attempt_at=now + delay,
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
                "retry_in_s": delay.total_seconds(),
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
        record_event(tx, done.case_id, failed_event(done, kind, reason, failure.code))
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
        return AlertStatus.FAILED


class DeliveryThread(threading.Thread):
    """Runs a ``Delivery`` on its own thread until stopped.

    It delivers everything due, then sleeps until the next attempt is due, a handler
    calls ``wake``, or ``poll_interval`` passes (a safety net should a wake be missed).
    An error from the database is logged and retried after ``poll_interval``: the
    ledger still holds every alert, so nothing is lost while the thread waits.
    """

    def __init__(
        self,
        delivery: Delivery,
        *,
        poll_interval: float = 5.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(name="notify-delivery", daemon=True)
        self._delivery = delivery
        self._poll = poll_interval
        self._now = now
        self._wake = threading.Event()
        self._stop_requested = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to finish after the send in progress, and wait for it."""
        self._stop_requested.set()
        self._wake.set()
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
