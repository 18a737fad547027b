"""Handlers for the events notify consumes: they record alerts, they never send.

Each handler runs in one transaction on notify's database: it checks and records the
consumed event's id, updates the read model, and records every alert the event raises
in the ledger, as ``pending`` (or ``held`` for a person's daily digest). Sending is the
delivery's job, from the ledger, so a redelivered or replayed event changes nothing
and no message depends on the consumer's offsets.

Who is told comes from the case (its coordinator, the coordinator's manager on an
escalated miss, the SENCO of the child's school for a review the school holds) and
the staff directory in the same database; how they are told comes from each person's
preferences. The read model follows three topics: intake (coordinator, school named
in the request), reviews (the setting the plan names, the next meeting) and deadlines
(the open annual review clocks, for the termly SENCO lists).

A clock notice for a case whose coordinator notify has not yet heard of is held, and
raised when the ``CoordinatorAssigned`` event arrives, because the two come from
different topics and their order between topics is not guaranteed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from notify.application.inbound import (
    ALERT_WITHDRAWN,
    ANNUAL_REVIEW_CLOCK,
    CLOCK_APPROACHING,
    CLOCK_OVERDUE,
    COORDINATOR_ASSIGNED,
    PLAN_AMENDMENT_RECORDED,
    REQUEST_RECEIVED,
    REVIEW_ARRANGED,
    REVIEW_CLOCK_CLOSED,
    REVIEW_CLOCK_OPENED,
    REVIEW_CYCLE_ENDED,
    REVIEW_CYCLE_STARTED,
    REVIEW_HELD,
    InboundEvent,
    read_clock_facts,
    read_clock_notice,
    read_coordinator_assigned,
    read_request_school,
    read_review_facts,
    read_withdrawal,
)
from notify.application.ports import (
    AlertRecord,
    HeldNotice,
    NotifyDatabase,
    NotifyTransaction,
    ReviewDue,
    TransactionDirectory,
)
from notify.application.records import (
    Routing,
    correction_for,
    digest_content,
    failed_event,
    held_alert,
    new_alert,
    record_event,
    unreachable_alert,
    withdrawal_to_dict,
)
from notify.domain.alerts import (
    AlertKind,
    ClockNotice,
    Recipient,
    Withdrawal,
    recipients_for,
)
from notify.domain.delivery import AlertStatus, FailureKind
from notify.domain.directory import StaffMember
from notify.domain.preferences import (
    DEFAULT_DIGEST_TIME,
    DEFAULT_PREFERENCES,
    Preferences,
    channels_for,
    digest_day,
)
from sendkit.events import utcnow

log = logging.getLogger(__name__)

DEADLINES_CONSUMER = "notify:send.deadlines.events"
INTAKE_CONSUMER = "notify:send.intake.events"
REVIEWS_CONSUMER = "notify:send.reviews.events"
WITHDRAWN_MARKS = "notify:withdrawn-clock-events"
"""Clock event ids whose alerts were withdrawn, so a late arrival raises nothing."""


class Outcome(StrEnum):
    """What handling one consumed event did."""

    ALERTED = "alerted"
    HELD = "held"
    WITHDRAWN = "withdrawn"
    COORDINATOR_SET = "coordinator_set"
    FACT_RECORDED = "fact_recorded"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Handled:
    """The result of handling one event: its outcome and the alerts now pending."""

    outcome: Outcome
    pending: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class NotifyHandlers:
    """Turns consumed clock, intake and reviews events into ledger entries."""

    def __init__(
        self,
        db: NotifyDatabase,
        *,
        routing: Routing | None = None,
        digest_time: time = DEFAULT_DIGEST_TIME,
        default_preferences: Preferences = DEFAULT_PREFERENCES,
        now: Callable[[], datetime] = utcnow,
        calendar_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._db = db
        self._routing = routing or Routing()
        self._digest_time = digest_time
        self._defaults = default_preferences
        self._now = now
        # The digest an alert goes in follows the calendar clock (the ticks', in a
        # demo), while its timestamps stay on the wall clock.
        self._calendar = calendar_clock or now

    # send.deadlines.events ------------------------------------------------------------

    def handle_deadlines_event(self, event: InboundEvent) -> Handled:
        """Handle one event of ``send.deadlines.events``."""
        if event.type in (CLOCK_APPROACHING, CLOCK_OVERDUE):
            return self._on_clock_notice(event, read_clock_notice(event))
        if event.type == ALERT_WITHDRAWN:
            return self._on_withdrawal(event, read_withdrawal(event))
        if event.type in REVIEW_CLOCK_OPENED | REVIEW_CLOCK_CLOSED:
            return self._on_review_clock(event)
        return Handled(Outcome.IGNORED)

    def _on_review_clock(self, event: InboundEvent) -> Handled:
        facts = read_clock_facts(event)
        if facts.clock != ANNUAL_REVIEW_CLOCK:
            return Handled(Outcome.IGNORED)
        with self._db.transaction() as tx:
            if tx.events.is_processed(DEADLINES_CONSUMER, event.id):
                return Handled(Outcome.DUPLICATE)
            tx.events.mark_processed(DEADLINES_CONSUMER, event.id)
            if event.type in REVIEW_CLOCK_OPENED:
                tx.open_review(
                    ReviewDue(
                        facts.case_id, facts.clock_id, facts.due_on, facts.legal_basis
                    )
                )
            else:
                tx.close_review(facts.case_id, facts.clock_id)
        return Handled(Outcome.FACT_RECORDED)

    # send.intake.events ---------------------------------------------------------------

    def handle_intake_event(self, event: InboundEvent) -> Handled:
        """Handle one event of ``send.intake.events``."""
        if event.type == REQUEST_RECEIVED:
            case_id, school_urn = read_request_school(event)
            return self._record_fact(
                INTAKE_CONSUMER,
                event,
                lambda tx: tx.set_request_school(case_id, school_urn),
            )
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

    # send.reviews.events --------------------------------------------------------------

    def handle_reviews_event(self, event: InboundEvent) -> Handled:
        """Handle one event of ``send.reviews.events``: the plan's setting, the next
        review meeting."""
        if event.type in (REVIEW_CYCLE_STARTED, PLAN_AMENDMENT_RECORDED):
            facts = read_review_facts(event)
            setting = facts.setting_urn
            if setting is None:
                return self._record_fact(REVIEWS_CONSUMER, event, lambda tx: None)
            return self._record_fact(
                REVIEWS_CONSUMER,
                event,
                lambda tx: tx.set_setting(facts.case_id, setting),
            )
        if event.type == REVIEW_ARRANGED:
            facts = read_review_facts(event)

            def arranged(tx: NotifyTransaction) -> None:
                tx.set_meeting(facts.case_id, facts.meeting_on)
                if facts.setting_urn is not None:
                    tx.set_setting(facts.case_id, facts.setting_urn)

            return self._record_fact(REVIEWS_CONSUMER, event, arranged)
        if event.type in (REVIEW_HELD, REVIEW_CYCLE_ENDED):
            facts = read_review_facts(event)
            return self._record_fact(
                REVIEWS_CONSUMER, event, lambda tx: tx.set_meeting(facts.case_id, None)
            )
        return Handled(Outcome.IGNORED)

    def _record_fact(
        self,
        consumer: str,
        event: InboundEvent,
        apply: Callable[[NotifyTransaction], None],
    ) -> Handled:
        with self._db.transaction() as tx:
            if tx.events.is_processed(consumer, event.id):
                return Handled(Outcome.DUPLICATE)
            tx.events.mark_processed(consumer, event.id)
            apply(tx)
        return Handled(Outcome.FACT_RECORDED)

    # Alerts ---------------------------------------------------------------------------

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
        directory = TransactionDirectory(tx)
        coordinator = directory.get(coordinator_id)
        school = (
            tx.school_of(notice.case_id)
            if notice.clock in self._routing.senco_clocks
            else None
        )
        pending: list[str] = []
        failed: list[str] = []
        held = 0

        recipients = recipients_for(
            notice,
            coordinator_id,
            directory,
            school_urn=school,
            senco_clocks=self._routing.senco_clocks,
        )
        for recipient in recipients:
            member = recipient.member
            if member is None:
                unreachable = self._record_unreachable(
                    tx, notice, recipient, correlation_id, now
                )
                if unreachable is not None:
                    failed.append(unreachable)
                continue

            preferences = tx.get_preferences(member.staff_id) or self._defaults
            if notice.kind is AlertKind.APPROACHING and preferences.daily_digest:
                alert = held_alert(
                    notice,
                    recipient,
                    digest_on=digest_day(self._calendar(), self._digest_time),
                    correlation_id=correlation_id,
                    now=now,
                    routing=self._routing,
                )
                held += int(tx.add_alert(alert))
                continue

            for alert in self._alerts_for(
                notice, recipient, member, preferences, coordinator, correlation_id, now
            ):
                if tx.add_alert(alert):
                    pending.append(alert.alert_id)

        log.info(
            "alerts recorded",
            extra={
                "case_id": notice.case_id,
                "clock_event_id": notice.event_id,
                "kind": notice.kind.value,
                "pending": len(pending),
                "held_for_digest": held,
                "failed": len(failed),
            },
        )
        return pending, failed

    def _alerts_for(
        self,
        notice: ClockNotice,
        recipient: Recipient,
        member: StaffMember,
        preferences: Preferences,
        coordinator: StaffMember | None,
        correlation_id: str,
        now: datetime,
    ) -> list[AlertRecord]:
        channels = channels_for(
            notice.kind,
            member,
            preferences,
            sms_available=self._routing.sms_available,
        )
        if not channels:
            log.info(
                "alert not sent: the recipient turned this kind off",
                extra={
                    "case_id": notice.case_id,
                    "staff_id": recipient.staff_id,
                    "kind": notice.kind.value,
                },
            )
            return []
        name = coordinator.name if coordinator is not None else None
        return [
            new_alert(
                notice,
                recipient,
                coordinator_name=name,
                correlation_id=correlation_id,
                now=now,
                channel=channel,
                routing=self._routing,
                quiet_hours=preferences.quiet_hours,
            )
            for channel in channels
        ]

    @staticmethod
    def _record_unreachable(
        tx: NotifyTransaction,
        notice: ClockNotice,
        recipient: Recipient,
        correlation_id: str,
        now: datetime,
    ) -> str | None:
        """Record the failed alert of a role nobody could be found for; its id, or
        ``None`` if it was recorded before."""
        alert = unreachable_alert(
            notice, recipient, correlation_id=correlation_id, now=now
        )
        if not tx.add_alert(alert):
            return None
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
        log.error(
            "alert has no recipient",
            extra={
                "alert_id": alert.alert_id,
                "case_id": alert.case_id,
                "role": alert.role.value,
                "problem": recipient.problem,
            },
        )
        return alert.alert_id

    # Withdrawals ----------------------------------------------------------------------

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

    def _withdraw(
        self,
        tx: NotifyTransaction,
        alert: AlertRecord,
        withdrawal: Withdrawal,
        correlation_id: str,
        now: datetime,
    ) -> str | None:
        """Withdraw one alert; the id of the correction it needs, if any."""
        if alert.status in (AlertStatus.PENDING, AlertStatus.HELD):
            tx.save_alert(
                alert.evolve(
                    status=AlertStatus.WITHDRAWN,
                    next_attempt_at=None,
                    withdrawal=withdrawal_to_dict(withdrawal),
                    updated_at=now,
                )
            )
            return None
        if alert.status is AlertStatus.BUNDLED:
            self._withdraw_bundled(tx, alert, withdrawal, now)
            return None
        if alert.status is AlertStatus.SENDING:
            # The answer is not in yet: the delivery decides when it records it.
            tx.save_alert(
                alert.evolve(withdrawal=withdrawal_to_dict(withdrawal), updated_at=now)
            )
            return None
        if alert.status is AlertStatus.SENT:
            correction = correction_for(
                alert,
                withdrawal,
                correlation_id=correlation_id,
                now=now,
                routing=self._routing,
            )
            return correction.alert_id if tx.add_alert(correction) else None
        return None

    def _withdraw_bundled(
        self,
        tx: NotifyTransaction,
        item: AlertRecord,
        withdrawal: Withdrawal,
        now: datetime,
    ) -> None:
        """Take an alert out of a digest not yet sent (re-written without it), or
        mark it for a correction once the digest on its way has been sent."""
        bundle = tx.get_alert(item.bundle_id) if item.bundle_id else None
        if bundle is None or bundle.status is not AlertStatus.PENDING:
            tx.save_alert(
                item.evolve(withdrawal=withdrawal_to_dict(withdrawal), updated_at=now)
            )
            return

        tx.save_alert(
            item.evolve(
                status=AlertStatus.WITHDRAWN,
                withdrawal=withdrawal_to_dict(withdrawal),
                updated_at=now,
            )
        )
        remaining = [
            i
            for i in tx.bundle_items(bundle.alert_id)
            if i.status is AlertStatus.BUNDLED
        ]
        if not remaining:
            tx.save_alert(
                bundle.evolve(
                    status=AlertStatus.WITHDRAWN, next_attempt_at=None, updated_at=now
                )
            )
            return
        day = date.fromisoformat(str(bundle.notice.get("day")))
        content = digest_content(day, remaining, self._routing)
        personalisation = dict(bundle.personalisation or {})
        personalisation.update(subject=content.subject, body=content.body)
        tx.save_alert(
            bundle.evolve(
                subject=content.subject,
                body=content.body,
                personalisation=personalisation,
                updated_at=now,
            )
        )
