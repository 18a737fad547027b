"""Handlers and delivery together, through the real application code and a fake sender.

Every test runs against both databases (``db`` is parametrised), so the in-memory one
is proven to behave like SQLite.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from notify_factories import (
    COORDINATOR,
    LONE_COORDINATOR,
    MANAGER,
    FakeClock,
    FakeSender,
    approaching,
    coordinator_assigned,
    new_case,
    overdue,
    withdrawn,
)

from notify.application.delivery import Delivery
from notify.application.handlers import NotifyHandlers, Outcome
from notify.application.ports import (
    NotifyDatabase,
    PermanentSendFailure,
    RetryableSendFailure,
)
from notify.domain.alerts import RecipientRole, alert_id
from notify.domain.delivery import AlertStatus


def assigned_case(
    handlers: NotifyHandlers, coordinator: str = COORDINATOR.staff_id
) -> str:
    case = new_case()
    handlers.handle_intake_event(coordinator_assigned(case, coordinator))
    return case


def notify_events(db: NotifyDatabase, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    with db.transaction() as tx:
        return [(e.type.split(".")[2], e.data) for e in tx.events.read_stream(case_id)]


def test_an_approaching_clock_emails_the_coordinator_once(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender, db: NotifyDatabase
) -> None:
    case = assigned_case(handlers)
    event = approaching(case)

    handled = handlers.handle_deadlines_event(event)
    report = delivery.deliver_due()

    assert handled.outcome is Outcome.ALERTED
    assert report.sent == 1
    [email] = sender.sent
    assert email.to_address == COORDINATOR.email
    assert email.from_address == "send-alerts@council.example"
    expected_id = alert_id(event.id, RecipientRole.COORDINATOR, COORDINATOR.staff_id)
    assert email.message_id == f"<{expected_id}@council.example>"
    assert email.headers["X-Correlation-ID"] == event.correlation_id
    [(kind, data)] = notify_events(db, case)
    assert kind == "NotificationSent"
    assert data == {
        "alert_id": expected_id,
        "clock_event_id": event.id,
        "case_id": case,
        "clock_id": "decision",
        "alert_kind": "approaching",
        "channel": "email",
        "recipient_role": "coordinator",
        "recipient_staff_id": COORDINATOR.staff_id,
        "attempts": 1,
        "provider": "smtp",
        "bundle_id": None,
        "corrects_alert_id": None,
    }
    assert COORDINATOR.email not in str(data)


def test_the_same_clock_event_twice_sends_one_email(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender
) -> None:
    case = assigned_case(handlers)
    event = approaching(case)

    first = handlers.handle_deadlines_event(event)
    delivery.deliver_due()
    second = handlers.handle_deadlines_event(event)
    delivery.deliver_due()

    assert first.outcome is Outcome.ALERTED
    assert second.outcome is Outcome.DUPLICATE
    assert len(sender.sent) == 1


def test_overdue_reaches_coordinator_and_manager(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender
) -> None:
    case = assigned_case(handlers)

    handled = handlers.handle_deadlines_event(overdue(case))
    delivery.deliver_due()

    assert len(handled.pending) == 2
    assert sorted(e.to_address for e in sender.sent) == sorted(
        [COORDINATOR.email, MANAGER.email]
    )
    manager_email = next(e for e in sender.sent if e.to_address == MANAGER.email)
    assert "manager of the case's EHC coordinator (Alex Coordinator)" in (
        manager_email.body
    )


def test_overdue_with_an_exception_reaches_the_coordinator_only(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender
) -> None:
    case = assigned_case(handlers)

    handlers.handle_deadlines_event(overdue(case, escalate=False, exception_reason="c"))
    delivery.deliver_due()

    [email] = sender.sent
    assert email.to_address == COORDINATOR.email
    assert "exception" in email.subject
    assert "An exception to the time limit applies" in email.body


def test_a_manager_missing_from_the_directory_is_a_failed_notification(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender, db: NotifyDatabase
) -> None:
    case = assigned_case(handlers, LONE_COORDINATOR.staff_id)

    handled = handlers.handle_deadlines_event(overdue(case))
    delivery.deliver_due()

    assert len(handled.pending) == 1
    assert len(handled.failed) == 1
    assert [e.to_address for e in sender.sent] == [LONE_COORDINATOR.email]
    kinds = sorted(
        (k, d["recipient_role"], d.get("failure")) for k, d in notify_events(db, case)
    )
    assert kinds == [
        ("NotificationFailed", "manager", "no_recipient"),
        ("NotificationSent", "coordinator", None),
    ]


def test_a_clock_notice_before_the_coordinator_is_held_then_sent(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender
) -> None:
    case = new_case()

    held = handlers.handle_deadlines_event(approaching(case))
    delivery.deliver_due()
    sent_before = len(sender.sent)
    released = handlers.handle_intake_event(
        coordinator_assigned(case, COORDINATOR.staff_id)
    )
    delivery.deliver_due()

    assert held.outcome is Outcome.HELD
    assert sent_before == 0
    assert len(released.pending) == 1
    assert [e.to_address for e in sender.sent] == [COORDINATOR.email]


def test_a_reassigned_case_alerts_the_new_coordinator(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender
) -> None:
    case = assigned_case(handlers)
    handlers.handle_intake_event(
        coordinator_assigned(case, LONE_COORDINATOR.staff_id, COORDINATOR.staff_id)
    )

    handlers.handle_deadlines_event(approaching(case))
    delivery.deliver_due()

    assert [e.to_address for e in sender.sent] == [LONE_COORDINATOR.email]


def test_a_withdrawn_alert_not_yet_sent_is_never_sent(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender, db: NotifyDatabase
) -> None:
    case = assigned_case(handlers)
    event = approaching(case)
    handlers.handle_deadlines_event(event)

    handled = handlers.handle_deadlines_event(
        withdrawn(case, event.id, "date corrected")
    )
    delivery.deliver_due()

    assert handled.outcome is Outcome.WITHDRAWN
    assert handled.pending == ()
    assert sender.attempts == []
    with db.transaction() as tx:
        assert tx.count_by_status() == {AlertStatus.WITHDRAWN: 1}


def test_a_withdrawn_alert_already_sent_is_corrected(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender, db: NotifyDatabase
) -> None:
    case = assigned_case(handlers)
    event = approaching(case)
    handlers.handle_deadlines_event(event)
    delivery.deliver_due()

    withdrawal = withdrawn(case, event.id, "request date corrected")
    handlers.handle_deadlines_event(withdrawal)
    handlers.handle_deadlines_event(withdrawal)
    delivery.deliver_due()

    assert len(sender.sent) == 2
    original, correction = sender.sent
    assert correction.to_address == original.to_address
    assert correction.subject.startswith("[SEND] Correction")
    assert "request date corrected" in correction.body
    events = notify_events(db, case)
    assert [d["alert_kind"] for _, d in events] == ["approaching", "correction"]
    original_id = alert_id(event.id, RecipientRole.COORDINATOR, COORDINATOR.staff_id)
    assert events[1][1]["corrects_alert_id"] == original_id


def test_a_withdrawal_during_the_send_is_corrected_once_it_arrives(
    db: NotifyDatabase, clock: FakeClock, handlers: NotifyHandlers
) -> None:
    case = assigned_case(handlers)
    event = approaching(case)
    handlers.handle_deadlines_event(event)

    class WithdrawingSender(FakeSender):
        """Receives the withdrawal while the SMTP conversation is in progress."""

        def send(self, email):  # type: ignore[no-untyped-def]
            if not self.sent:
                handlers.handle_deadlines_event(withdrawn(case, event.id, "corrected"))
            super().send(email)

    sender = WithdrawingSender()
    delivery = Delivery(
        db, sender, from_address="a@council.example", message_id_domain="x", now=clock
    )
    delivery.deliver_due()

    assert [e.subject.split(":")[0] for e in sender.sent] == [
        "[SEND] Due Mon 17 Feb 2025",
        "[SEND] Correction",
    ]


def test_a_withdrawal_before_the_clock_event_keeps_it_from_alerting(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender
) -> None:
    case = assigned_case(handlers)
    event = approaching(case)

    handlers.handle_deadlines_event(withdrawn(case, event.id, "corrected"))
    late = handlers.handle_deadlines_event(event)
    delivery.deliver_due()

    assert late.outcome is Outcome.WITHDRAWN
    assert sender.attempts == []


def test_a_retryable_failure_is_retried_after_the_backoff(
    handlers: NotifyHandlers,
    delivery: Delivery,
    sender: FakeSender,
    clock: FakeClock,
    db: NotifyDatabase,
) -> None:
    case = assigned_case(handlers)
    handlers.handle_deadlines_event(approaching(case))
    sender.script = [RetryableSendFailure("451 try later", 451)]

    first = delivery.deliver_due()
    too_soon = delivery.deliver_due()
    clock.advance(seconds=10)
    second = delivery.deliver_due()

    assert (first.retrying, too_soon.attempted, second.sent) == (1, 0, 1)
    assert len(sender.sent) == 1
    assert sender.attempts[0].message_id == sender.attempts[1].message_id
    [(kind, data)] = notify_events(db, case)
    assert (kind, data["attempts"]) == ("NotificationSent", 2)


def test_a_permanent_failure_is_a_failed_notification_at_once(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender, db: NotifyDatabase
) -> None:
    case = assigned_case(handlers)
    handlers.handle_deadlines_event(approaching(case))
    sender.script = [
        PermanentSendFailure(f"550 5.1.1 <{COORDINATOR.email}>: no such mailbox", 550)
    ]

    report = delivery.deliver_due()

    assert (report.failed, report.sent) == (1, 1)
    [(kind, data), (escalated, escalation)] = notify_events(db, case)
    assert kind == "NotificationFailed"
    assert data["failure"] == "permanent"
    assert data["status_code"] == 550
    assert data["attempts"] == 1
    assert COORDINATOR.email not in data["reason"]
    assert "<address>" in data["reason"]
    # The coordinator was not reached, so their manager is told, with the alert.
    assert (escalated, escalation["alert_kind"], escalation["recipient_role"]) == (
        "NotificationSent",
        "escalation",
        "manager",
    )
    [to_manager] = sender.sent
    assert to_manager.to_address == MANAGER.email
    assert to_manager.subject.startswith("[SEND] Not delivered:")
    assert "Alex Coordinator (ehcco-01)" in to_manager.body
    assert "> [SEND] Due Mon 17 Feb 2025" in to_manager.body


def test_retries_are_capped_then_the_alert_fails(
    handlers: NotifyHandlers,
    delivery: Delivery,
    sender: FakeSender,
    clock: FakeClock,
    db: NotifyDatabase,
) -> None:
    case = assigned_case(handlers)
    handlers.handle_deadlines_event(approaching(case))
    sender.script = [RetryableSendFailure("timed out") for _ in range(5)]

    for _ in range(5):
        delivery.deliver_due()
        clock.advance(minutes=5)

    # The policy's max_attempts, then the escalation to the manager: the scripted
    # failures go on, so it is retried too.
    assert [a.to_address for a in sender.attempts[:3]] == [COORDINATOR.email] * 3
    assert {a.to_address for a in sender.attempts[3:]} == {MANAGER.email}
    (kind, data), *_ = notify_events(db, case)
    assert (kind, data["failure"], data["attempts"]) == (
        "NotificationFailed",
        "retries_exhausted",
        3,
    )


def test_an_unanswered_claim_is_resent_with_the_same_message_id(
    handlers: NotifyHandlers,
    delivery: Delivery,
    sender: FakeSender,
    db: NotifyDatabase,
    clock: FakeClock,
) -> None:
    case = assigned_case(handlers)
    handlers.handle_deadlines_event(approaching(case))

    class DyingSender(FakeSender):
        """The process dies after the server got the message, before its answer."""

        def send(self, email):  # type: ignore[no-untyped-def]
            self.attempts.append(email)
            raise KeyboardInterrupt

    dying = DyingSender()
    crashed = Delivery(
        db,
        dying,
        from_address="a@council.example",
        message_id_domain="council.example",
        claim_lease=timedelta(minutes=2),
        now=clock,
    )
    with contextlib.suppress(KeyboardInterrupt):
        crashed.deliver_one()
    released = delivery.release_claims()
    if db.shared:
        # Replicas share this ledger: the claim may be a live replica's send, so it
        # waits for its lease instead of being released at start-up.
        assert released == 0
        assert delivery.deliver_due().attempted == 0
        clock.advance(minutes=2)
    else:
        assert released == 1
    delivery.deliver_due()

    assert dying.attempts[0].message_id == sender.sent[0].message_id
    [(kind, data)] = notify_events(db, case)
    assert (kind, data["attempts"]) == ("NotificationSent", 2)


def test_personal_fields_in_a_clock_event_never_reach_the_email(
    handlers: NotifyHandlers, delivery: Delivery, sender: FakeSender
) -> None:
    case = assigned_case(handlers)
    event = approaching(case)
    event.data["child_name"] = "Testchild Surname"

    handlers.handle_deadlines_event(event)
    delivery.deliver_due()

    [email] = sender.sent
    assert "Testchild" not in email.subject + email.body
