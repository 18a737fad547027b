"""Handlers for the events notify consumes: they record alerts, they never send.

Each handler runs in one transaction on notify's database: it checks and records the
consumed event's id, updates the read model, and records every alert the event raises
as ``pending`` in the ledger. Sending is the delivery's job, from the ledger, so a
redelivered or replayed event changes nothing and no email depends on the consumer's
offsets.

A clock notice for a case whose coordinator notify has not yet heard of is held, and
raised when the ``CoordinatorAssigned`` event arrives, because the two come from
different topics and their order between topics is not guaranteed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from notify.application.inbound import (
    ALERT_WITHDRAWN,
    CLOCK_APPROACHING,
    CLOCK_OVERDUE,
    COORDINATOR_ASSIGNED,
    InboundEvent,
    read_clock_notice,
    read_coordinator_assigned,
    read_withdrawal,
)
from notify.application.ports import (
    AlertRecord,
    HeldNotice,
    NotifyDatabase,
    NotifyTransaction,
)
from notify.application.records import (
    correction_for,
    failed_event,
    new_alert,
    record_event,
    unreachable_alert,
    withdrawal_to_dict,
)
from notify.domain.alerts import ClockNotice, Withdrawal, recipients_for
from notify.domain.delivery import AlertStatus, FailureKind
from notify.domain.directory import StaffDirectory
from sendkit.events import utcnow

log = logging.getLogger(__name__)

DEADLINES_CONSUMER = "notify:send.deadlines.events"
INTAKE_CONSUMER = "notify:send.intake.events"
WITHDRAWN_MARKS = "notify:withdrawn-clock-events"
"""Clock event ids whose alerts were withdrawn, so a late arrival raises nothing."""


class Outcome(StrEnum):
    """What handling one consumed event did."""

    ALERTED = "alerted"
    HELD = "held"
    WITHDRAWN = "withdrawn"
    COORDINATOR_SET = "coordinator_set"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Handled:
    """The result of handling one event: its outcome and the alerts now pending."""

    outcome: Outcome
    pending: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class NotifyHandlers:
    """Turns consumed clock and intake events into ledger entries."""

    def __init__(
        self,
        db: NotifyDatabase,
        directory: StaffDirectory,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._directory = directory
        self._now = now

    def handle_deadlines_event(self, event: InboundEvent) -> Handled:
        """Handle one event of ``send.deadlines.events``."""
        if event.type in (CLOCK_APPROACHING, CLOCK_OVERDUE):
            return self._on_clock_notice(event, read_clock_notice(event))
        if event.type == ALERT_WITHDRAWN:
            return self._on_withdrawal(event, read_withdrawal(event))
        return Handled(Outcome.IGNORED)

    def handle_intake_event(self, event: InboundEvent) -> Handled:
        """Handle one event of ``send.intake.events``."""
        if event.type != COORDINATOR_ASSIGNED:
            return Handled(Outcome.IGNORED)
        case_id, coordinator_id = read_coordinator_assigned(event)
        correlation_id = event.correlation_id or event.id

        with self._db.transaction() as tx:
            if tx.events.is_processed(INTAKE_CONSUMER, event.id):
                return Handled(Outcome.DUPLICATE)
            tx.events.mark_processed(INTAKE_CONSUMER, event.id)
            tx.set_coordinator(case_id, coordinator_id)
            if coordinator_id is None:
                return Handled(Outcome.COORDINATOR_SET)
            pending: list[str] = []
            failed: list[str] = []
            for held in tx.take_held(case_id):
                p, f = self._raise_alerts(
                    tx, held.notice, coordinator_id, held.correlation_id
                )
                pending += p
                failed += f

        log.info(
            "coordinator recorded",
            extra={
                "case_id": case_id,
                "coordinator_id": coordinator_id,
                "released_alerts": len(pending) + len(failed),
                "correlation_id": correlation_id,
            },
        )
        return Handled(Outcome.COORDINATOR_SET, tuple(pending), tuple(failed))

    def _on_clock_notice(self, event: InboundEvent, notice: ClockNotice) -> Handled:
        correlation_id = event.correlation_id or event.id
        with self._db.transaction() as tx:
            if tx.events.is_processed(DEADLINES_CONSUMER, event.id):
                return Handled(Outcome.DUPLICATE)
            tx.events.mark_processed(DEADLINES_CONSUMER, event.id)
            if tx.events.is_processed(WITHDRAWN_MARKS, event.id):
                return Handled(Outcome.WITHDRAWN)

            coordinator_id = tx.coordinator_of(notice.case_id)
            if coordinator_id is None:
                tx.hold(HeldNotice(notice, correlation_id))
                log.warning(
                    "clock notice held: the case has no known coordinator yet",
                    extra={"case_id": notice.case_id, "clock_event_id": event.id},
                )
                return Handled(Outcome.HELD)
            pending, failed = self._raise_alerts(
                tx, notice, coordinator_id, correlation_id
            )
        return Handled(Outcome.ALERTED, tuple(pending), tuple(failed))

    def _raise_alerts(
        self,
        tx: NotifyTransaction,
        notice: ClockNotice,
        coordinator_id: str,
        correlation_id: str,
    ) -> tuple[list[str], list[str]]:
        now = self._now()
        coordinator = self._directory.get(coordinator_id)
        pending: list[str] = []
        failed: list[str] = []

        for recipient in recipients_for(notice, coordinator_id, self._directory):
            if recipient.reachable:
                alert = new_alert(
                    notice,
                    recipient,
                    coordinator_name=coordinator.name if coordinator else None,
                    correlation_id=correlation_id,
                    now=now,
                )
                if tx.add_alert(alert):
                    pending.append(alert.alert_id)
                continue

            alert = unreachable_alert(
                notice, recipient, correlation_id=correlation_id, now=now
            )
            if tx.add_alert(alert):
                record_event(
                    tx,
                    alert.case_id,
                    failed_event(
                        alert,
                        FailureKind.NO_RECIPIENT,
                        recipient.problem or "no recipient",
                        None,
                    ),
                )
                failed.append(alert.alert_id)
                log.error(
                    "alert has no recipient",
                    extra={
                        "alert_id": alert.alert_id,
                        "case_id": alert.case_id,
                        "role": alert.role.value,
                        "problem": recipient.problem,
                    },
                )

        log.info(
            "alerts recorded",
            extra={
                "case_id": notice.case_id,
                "clock_event_id": notice.event_id,
                "kind": notice.kind.value,
                "pending": len(pending),
                "failed": len(failed),
            },
        )
        return pending, failed

    def _on_withdrawal(self, event: InboundEvent, withdrawal: Withdrawal) -> Handled:
        correlation_id = event.correlation_id or event.id
        pending: list[str] = []
        with self._db.transaction() as tx:
            if tx.events.is_processed(DEADLINES_CONSUMER, event.id):
                return Handled(Outcome.DUPLICATE)
            tx.events.mark_processed(DEADLINES_CONSUMER, event.id)
            tx.events.mark_processed(WITHDRAWN_MARKS, withdrawal.withdrawn_event_id)
            tx.drop_held(withdrawal.withdrawn_event_id)

            now = self._now()
            for alert in tx.alerts_from(withdrawal.withdrawn_event_id):
                correction = self._withdraw(tx, alert, withdrawal, correlation_id, now)
                if correction is not None:
                    pending.append(correction)

        log.info(
            "alert withdrawn",
            extra={
                "case_id": withdrawal.case_id,
                "withdrawn_event_id": withdrawal.withdrawn_event_id,
                "corrections": len(pending),
            },
        )
        return Handled(Outcome.WITHDRAWN, tuple(pending))

    @staticmethod
    def _withdraw(
        tx: NotifyTransaction,
        alert: AlertRecord,
        withdrawal: Withdrawal,
        correlation_id: str,
        now: datetime,
    ) -> str | None:
        """Withdraw one alert; the id of the correction it needs, if any."""
        if alert.status is AlertStatus.PENDING:
            tx.save_alert(
                alert.evolve(
                    status=AlertStatus.WITHDRAWN,
                    next_attempt_at=None,
                    withdrawal=withdrawal_to_dict(withdrawal),
                    updated_at=now,
                )
            )
            return None
        if alert.status is AlertStatus.SENDING:
            # The answer is not in yet: the delivery decides when it records it.
            tx.save_alert(
                alert.evolve(withdrawal=withdrawal_to_dict(withdrawal), updated_at=now)
            )
            return None
        if alert.status is AlertStatus.SENT:
            correction = correction_for(
                alert, withdrawal, correlation_id=correlation_id, now=now
            )
            return correction.alert_id if tx.add_alert(correction) else None
        return None
