"""Each channel end to end: SMTP email to the real mail catcher, SMS and email through
the official GOV.UK Notify client to the local Notify server; preferences, quiet hours,
retries, permanent failures and their escalation, delivery receipts, corrections.

The ledger is a real SQLite file or PostgreSQL database and the clock is the test's, so
a retry is due when the test says; the providers are real servers on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from notify_factories import (
    COORDINATOR,
    MANAGER,
    FakeClock,
    approaching,
    coordinator_assigned,
    new_case,
    overdue,
    seed,
    withdrawn,
)
from notify_servers import (
    CALLBACK_TOKEN,
    LINK_BASE,
    ApiServer,
    text_of,
    wait_for,
    wired,
)

from devstack.kafka_config import free_port
from devstack.notify_stub import NotifyStub
from devstack.smtp import MailCatcher
from notify.bootstrap import NotifyRuntime
from notify.domain.alerts import Channel, RecipientRole, alert_id
from notify.domain.delivery import AlertStatus
from notify.domain.preferences import ChannelChoice, PreferenceKind, Preferences
from notify.entrypoints.api import create_app

BOTH = Preferences(
    channels={
        PreferenceKind.APPROACHING: ChannelChoice.BOTH,
        PreferenceKind.OVERDUE: ChannelChoice.BOTH,
    }
)
SMS_ONLY = Preferences(
    channels={
        PreferenceKind.APPROACHING: ChannelChoice.SMS,
        PreferenceKind.OVERDUE: ChannelChoice.SMS,
    }
)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


@pytest.fixture
def stub() -> Iterator[NotifyStub]:
    with NotifyStub(deliver_after_s=0.05) as running:
        yield running


def events(runtime: NotifyRuntime, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    with runtime.db.transaction() as tx:
        return [(e.type.split(".")[2], e.data) for e in tx.events.read_stream(case_id)]


def assigned(runtime: NotifyRuntime, coordinator: str = COORDINATOR.staff_id) -> str:
    case = new_case()
    runtime.handlers.handle_intake_event(coordinator_assigned(case, coordinator))
    return case


def test_email_over_smtp_and_a_text_through_govuk_notify(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: BOTH})
        case = assigned(runtime)
        event = approaching(case)

        runtime.handlers.handle_deadlines_event(event)
        report = runtime.delivery.deliver_due()

        assert report.sent == 2
        [email] = catcher.wait_for_messages(1)
        assert list(email.envelope_to) == [COORDINATOR.email]
        # A long subject is folded onto two header lines; unfold it to compare.
        assert " ".join(email.subject.split()) == (
            f"[SEND] Due Mon 17 Feb 2025: Decision whether to assess, case {case}"
        )
        [text] = stub.notifications()
        sms_id = alert_id(
            event.id, RecipientRole.COORDINATOR, COORDINATOR.staff_id, Channel.SMS
        )
        assert (text.type, text.recipient, text.reference) == (
            "sms",
            COORDINATOR.mobile,
            sms_id,
        )
        # What is due, when, the regulation, the case reference and a link; no name.
        assert text.body == (
            f"SEND alert: Decision whether to assess, case {case}, due Mon 17 Feb "
            "2025 (in 5 working days). SEND Regulations 2014, reg 5(1). "
            f"{LINK_BASE}/{case}"
        )
        assert COORDINATOR.name not in text.body
        assert f"Open the case: {LINK_BASE}/{case}" in text_of(catcher, email)
        sent = [
            (data["channel"], data["provider"], data["alert_id"])
            for kind, data in events(runtime, case)
            if kind == "NotificationSent"
        ]
        assert sorted(sent) == sorted(
            [
                (
                    "email",
                    "smtp",
                    alert_id(event.id, RecipientRole.COORDINATOR, "ehcco-01"),
                ),
                ("sms", "govuk_notify", sms_id),
            ]
        )


def test_email_can_go_through_govuk_notify_with_its_template(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(
        tmp_path,
        catcher,
        stub,
        clock,
        database_url=ledger_url,
        email_provider="govuk_notify",
    ) as runtime:
        seed(runtime.db)
        case = assigned(runtime)

        runtime.handlers.handle_deadlines_event(approaching(case))
        runtime.delivery.deliver_due()

        [email] = stub.notifications()
        assert (email.type, email.recipient) == ("email", COORDINATOR.email)
        assert email.subject is not None
        assert email.subject.endswith(f"case {case}")
        assert "Legal basis: SEND Regulations 2014, reg 5(1)" in email.body
        assert email.personalisation["case_reference"] == case
        assert email.personalisation["due_date"] == "Monday 17 February 2025"
        assert catcher.messages() == []
        [(kind, data)] = events(runtime, case)
        assert (kind, data["provider"]) == ("NotificationSent", "govuk_notify")


def test_preferences_decide_the_channels_and_a_miss_reaches_someone(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        quiet_coordinator = Preferences(
            channels={PreferenceKind.APPROACHING: ChannelChoice.NONE}
        )
        seed(
            runtime.db,
            preferences={
                COORDINATOR.staff_id: quiet_coordinator,
                MANAGER.staff_id: SMS_ONLY,
            },
        )
        case = assigned(runtime)

        # Approaching turned off: nothing at all.
        runtime.handlers.handle_deadlines_event(approaching(case))
        assert runtime.delivery.deliver_due().attempted == 0
        # Overdue: the coordinator by email (their default), the manager by SMS only.
        runtime.handlers.handle_deadlines_event(overdue(case))
        runtime.delivery.deliver_due()

        [email] = catcher.wait_for_messages(1)
        assert list(email.envelope_to) == [COORDINATOR.email]
        assert email.subject.startswith("[SEND] Overdue:")
        [text] = stub.notifications()
        assert text.recipient == MANAGER.mobile
        assert text.body.startswith(
            f"SEND OVERDUE: Decision whether to assess, case {case}, was due Mon 17 "
            "Feb 2025, not recorded as done."
        )


@pytest.mark.parametrize(
    ("raised", "just_before", "eight_london"),
    [
        # Monday 10 February 2025, 21:00 GMT; 08:00 GMT is 08:00 UTC.
        (
            datetime(2025, 2, 10, 21, 0, tzinfo=UTC),
            datetime(2025, 2, 11, 7, 59, tzinfo=UTC),
            datetime(2025, 2, 11, 8, 0, tzinfo=UTC),
        ),
        # Saturday 29 March 2025, 21:00 GMT; the clocks go forward that night, so
        # 08:00 BST on Sunday is 07:00 UTC.
        (
            datetime(2025, 3, 29, 21, 0, tzinfo=UTC),
            datetime(2025, 3, 30, 6, 59, tzinfo=UTC),
            datetime(2025, 3, 30, 7, 0, tzinfo=UTC),
        ),
    ],
    ids=["winter", "spring-forward"],
)
def test_a_text_raised_in_quiet_hours_waits_until_eight(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    raised: datetime,
    just_before: datetime,
    eight_london: datetime,
) -> None:
    clock = FakeClock(raised)
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: BOTH})
        case = assigned(runtime)

        runtime.handlers.handle_deadlines_event(approaching(case))
        evening = runtime.delivery.deliver_due()
        assert runtime.delivery.next_attempt_at() == eight_london
        clock.now = just_before
        dawn = runtime.delivery.deliver_due()
        clock.now = eight_london
        morning = runtime.delivery.deliver_due()

        # The email went at once; the text at 08:00 London time, not before.
        assert (evening.sent, dawn.attempted, morning.sent) == (1, 0, 1)
        assert len(catcher.wait_for_messages(1)) == 1
        assert len(stub.notifications()) == 1


def test_a_text_still_waiting_when_quiet_hours_begin_is_held_back(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher, stub: NotifyStub
) -> None:
    # Raised at 19:59, but the delivery only reaches it at 20:01 (a backlog).
    clock = FakeClock(datetime(2025, 2, 10, 19, 59, tzinfo=UTC))
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        runtime.handlers.handle_deadlines_event(approaching(case))

        clock.now = datetime(2025, 2, 10, 20, 1, tzinfo=UTC)
        late = runtime.delivery.deliver_due()
        clock.now = datetime(2025, 2, 11, 8, 0, tzinfo=UTC)
        morning = runtime.delivery.deliver_due()

        assert (late.deferred, late.attempted, morning.sent) == (1, 0, 1)
        assert len(stub.notifications()) == 1


def test_a_retry_pushed_into_quiet_hours_waits_too(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher, stub: NotifyStub
) -> None:
    clock = FakeClock(datetime(2025, 2, 10, 19, 59, 55, tzinfo=UTC))
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        stub.fail_next(1, 503)

        runtime.handlers.handle_deadlines_event(approaching(case))
        runtime.delivery.deliver_due()
        clock.now = datetime(2025, 2, 10, 20, 0, 30, tzinfo=UTC)
        night = runtime.delivery.deliver_due()
        clock.now = datetime(2025, 2, 11, 8, 0, tzinfo=UTC)
        morning = runtime.delivery.deliver_due()

        assert (night.attempted, morning.sent) == (0, 1)
        assert len(stub.notifications()) == 1


def test_two_500s_then_success_send_one_message(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        stub.fail_next(2, 500)

        runtime.handlers.handle_deadlines_event(approaching(case))
        first = runtime.delivery.deliver_due()
        clock.advance(seconds=11)
        second = runtime.delivery.deliver_due()
        clock.advance(seconds=21)
        third = runtime.delivery.deliver_due()

        assert (first.retrying, second.retrying, third.sent) == (1, 1, 1)
        assert len(stub.notifications()) == 1
        # Before each resend notify asked Notify by reference, and found nothing.
        assert [(m, p, s) for m, p, s in stub.requests()] == [
            ("POST", "/v2/notifications/sms", 500),
            ("GET", "/v2/notifications", 200),
            ("POST", "/v2/notifications/sms", 500),
            ("GET", "/v2/notifications", 200),
            ("POST", "/v2/notifications/sms", 201),
        ]
        [(kind, data)] = events(runtime, case)
        assert (kind, data["attempts"], data["channel"]) == (
            "NotificationSent",
            3,
            "sms",
        )


def test_a_timed_out_send_is_found_by_reference_not_sent_again(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(
        tmp_path,
        catcher,
        stub,
        clock,
        database_url=ledger_url,
        govuk_timeout_seconds=0.5,
    ) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        # Notify takes the message but its answer comes too late for the client.
        stub.hold_next(1, seconds=3)

        runtime.handlers.handle_deadlines_event(approaching(case))
        first = runtime.delivery.deliver_due()
        clock.advance(seconds=11)
        second = runtime.delivery.deliver_due()

        assert (first.retrying, second.sent) == (1, 1)
        wait_for(lambda: len(stub.requests()) == 2, "the held answer")
        [text] = stub.notifications()
        with runtime.db.transaction() as tx:
            alert = tx.get_alert(text.reference or "")
        assert alert is not None
        assert (alert.status, alert.attempts, alert.provider_id) == (
            AlertStatus.SENT,
            2,
            text.id,
        )
        # One send (answered too late, as a 201 to nobody), then a look-up.
        assert sorted(stub.requests()) == [
            ("GET", "/v2/notifications", 200),
            ("POST", "/v2/notifications/sms", 201),
        ]


def test_a_400_fails_the_alert_and_the_manager_is_told(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        assert COORDINATOR.mobile is not None
        stub.reject(COORDINATOR.mobile, 400)

        runtime.handlers.handle_deadlines_event(approaching(case))
        report = runtime.delivery.deliver_due()

        assert (report.failed, report.sent) == (1, 1)
        assert stub.notifications() == []
        (kind, data), (escalated, escalation) = events(runtime, case)
        assert kind == "NotificationFailed"
        assert (data["failure"], data["status_code"], data["channel"]) == (
            "permanent",
            400,
            "sms",
        )
        assert "team-only API key" in data["reason"]
        assert COORDINATOR.mobile not in str(data)
        assert (escalated, escalation["recipient_staff_id"]) == (
            "NotificationSent",
            MANAGER.staff_id,
        )
        [to_manager] = catcher.wait_for_messages(1)
        assert list(to_manager.envelope_to) == [MANAGER.email]
        assert "could not be delivered by text message" in text_of(catcher, to_manager)
        assert COORDINATOR.mobile not in text_of(catcher, to_manager)


def test_a_429_is_retried_after_the_backoff(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        stub.fail_next(1, 429)

        runtime.handlers.handle_deadlines_event(approaching(case))
        first = runtime.delivery.deliver_due()
        too_soon = runtime.delivery.deliver_due()
        clock.advance(seconds=11)
        second = runtime.delivery.deliver_due()

        assert (first.retrying, too_soon.attempted, second.sent) == (1, 0, 1)
        assert len(stub.notifications()) == 1


def test_a_withdrawn_text_already_sent_is_corrected_by_text(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    stub: NotifyStub,
    clock: FakeClock,
) -> None:
    with wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        event = approaching(case)
        runtime.handlers.handle_deadlines_event(event)
        runtime.delivery.deliver_due()

        runtime.handlers.handle_deadlines_event(
            withdrawn(case, event.id, "received_at corrected")
        )
        runtime.delivery.deliver_due()

        first, correction = stub.notifications()
        assert correction.recipient == first.recipient == COORDINATOR.mobile
        assert correction.body.startswith(
            "SEND correction: disregard the earlier alert about the decision whether "
            f"to assess, case {case}"
        )
        kinds = [d["alert_kind"] for k, d in events(runtime, case)]
        assert kinds == ["approaching", "correction"]


@pytest.fixture
def api_port() -> int:
    return free_port()


# Bearer tokens are verified (the local issuer); the callback needs only its own.
@pytest.mark.usefixtures("auth_env")
def test_delivery_receipts_become_events_and_a_failure_reaches_the_manager(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    clock: FakeClock,
    api_port: int,
) -> None:
    callback = f"http://127.0.0.1:{api_port}/callbacks/govuk-notify"
    with (
        NotifyStub(
            deliver_after_s=0.05, callback_url=callback, callback_token=CALLBACK_TOKEN
        ) as stub,
        wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime,
        ApiServer(create_app(runtime=runtime), api_port),
    ):
        seed(runtime.db, preferences={COORDINATOR.staff_id: BOTH})
        assert COORDINATOR.mobile is not None
        stub.set_outcome(COORDINATOR.mobile, "permanent-failure")
        case = assigned(runtime)

        runtime.handlers.handle_deadlines_event(overdue(case, escalate=False))
        runtime.delivery.deliver_due()
        wait_for(
            lambda: [c.answer for c in stub.callbacks()] == [200],
            "the receipt to be accepted",
        )
        runtime.delivery.deliver_due()

        kinds = [
            (k, d["channel"], d["recipient_role"]) for k, d in events(runtime, case)
        ]
        assert sorted(kinds) == sorted(
            [
                ("NotificationSent", "email", "coordinator"),
                ("NotificationSent", "sms", "coordinator"),
                ("NotificationDeliveryFailed", "sms", "coordinator"),
                ("NotificationSent", "email", "manager"),
            ]
        )
        [failed] = [d for k, d in events(runtime, case) if k.endswith("Failed")]
        [text] = stub.notifications()
        assert (failed["status"], failed["notification_id"]) == (
            "permanent-failure",
            text.id,
        )
        to_manager = [
            m for m in catcher.wait_for_messages(2) if MANAGER.email in m.envelope_to
        ]
        assert len(to_manager) == 1
        assert "GOV.UK Notify reported permanent-failure" in text_of(
            catcher, to_manager[0]
        )

        # Notify repeating the receipt changes nothing.
        again = stub.callbacks()
        assert len(again) == 1
        with runtime.db.transaction() as tx:
            alert = tx.get_alert(text.reference or "")
        assert alert is not None
        assert (alert.status, alert.delivery_status) == (
            AlertStatus.SENT,
            "permanent-failure",
        )


# Bearer tokens are verified (the local issuer); the callback needs only its own.
@pytest.mark.usefixtures("auth_env")
def test_a_delivered_receipt_and_a_repeat_of_it(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    clock: FakeClock,
    api_port: int,
) -> None:
    callback = f"http://127.0.0.1:{api_port}/callbacks/govuk-notify"
    with (
        NotifyStub(
            deliver_after_s=0.05, callback_url=callback, callback_token=CALLBACK_TOKEN
        ) as stub,
        wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime,
        ApiServer(create_app(runtime=runtime), api_port) as api,
    ):
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        runtime.handlers.handle_deadlines_event(approaching(case))
        runtime.delivery.deliver_due()
        wait_for(lambda: len(stub.callbacks()) == 1, "the receipt")
        [text] = stub.notifications()

        repeat = httpx.post(
            f"{api.url}/callbacks/govuk-notify",
            json=text.receipt(),
            headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"},
        )

        assert repeat.json() == {"outcome": "duplicate"}
        assert [k for k, _ in events(runtime, case)] == [
            "NotificationSent",
            "NotificationDelivered",
        ]


# Bearer tokens are verified (the local issuer); the callback needs only its own.
@pytest.mark.usefixtures("auth_env")
def test_receipts_with_a_wrong_token_are_refused_by_the_running_api(
    tmp_path: Path,
    ledger_url: str,
    catcher: MailCatcher,
    clock: FakeClock,
    api_port: int,
) -> None:
    callback = f"http://127.0.0.1:{api_port}/callbacks/govuk-notify"
    with (
        NotifyStub(
            deliver_after_s=0.05,
            callback_url=callback,
            callback_token="not-the-token",
            callback_retry_s=0.05,
        ) as stub,
        wired(tmp_path, catcher, stub, clock, database_url=ledger_url) as runtime,
        ApiServer(create_app(runtime=runtime), api_port),
    ):
        seed(runtime.db, preferences={COORDINATOR.staff_id: SMS_ONLY})
        case = assigned(runtime)
        runtime.handlers.handle_deadlines_event(approaching(case))
        runtime.delivery.deliver_due()

        # Notify's retries are refused too, every one of them.
        wait_for(lambda: len(stub.callbacks()) == 5, "five callback attempts")

        assert {c.answer for c in stub.callbacks()} == {401}
        assert [k for k, _ in events(runtime, case)] == ["NotificationSent"]
