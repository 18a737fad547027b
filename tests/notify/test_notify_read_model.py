"""The directory, preferences, read model and bundle queries of notify's database, run
against the in-memory, SQLite and PostgreSQL adapters; the schema-1 file upgrade;
receipts that arrive before the send is recorded."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

from notify_factories import (
    COORDINATOR,
    MANAGER,
    SENCO,
    STAFF,
    FakeClock,
    approaching,
    coordinator_assigned,
    new_case,
    seed,
)

from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.delivery import Delivery
from notify.application.handlers import NotifyHandlers
from notify.application.ports import (
    AlertRecord,
    MessageProvider,
    NotifyDatabase,
    OutgoingMessage,
    ProviderReceipt,
    ReviewDue,
    TransactionDirectory,
)
from notify.application.receipts import Receipt, ReceiptOutcome, Receipts
from notify.application.records import Routing
from notify.domain.alerts import AlertKind, Channel, Provider, RecipientRole
from notify.domain.delivery import AlertStatus
from notify.domain.preferences import ChannelChoice, PreferenceKind, Preferences


def test_staff_and_preferences_round_trip(db: NotifyDatabase) -> None:
    seed(db)
    chosen = Preferences(
        channels={PreferenceKind.OVERDUE: ChannelChoice.BOTH},
        quiet_hours=None,
        daily_digest=True,
    )
    with db.transaction() as tx:
        tx.put_preferences(COORDINATOR.staff_id, chosen)

    with db.transaction() as tx:
        directory = TransactionDirectory(tx)
        assert tx.get_staff(SENCO.staff_id) == SENCO
        assert [m.staff_id for m in tx.list_staff()] == sorted(
            m.staff_id for m in STAFF
        )
        assert directory.manager_of(COORDINATOR.staff_id) == MANAGER
        assert directory.sencos_at(SENCO.school_urn or 0) == [SENCO]
        assert directory.sencos_at(999999) == []
        assert tx.managed_by(MANAGER.staff_id) == [COORDINATOR.staff_id]
        assert tx.get_preferences(COORDINATOR.staff_id) == chosen
        assert tx.get_preferences(MANAGER.staff_id) is None
        assert not tx.put_staff(COORDINATOR)
        assert tx.delete_staff(COORDINATOR.staff_id)
        assert not tx.delete_staff(COORDINATOR.staff_id)

    with db.transaction() as tx:
        assert tx.get_staff(COORDINATOR.staff_id) is None
        assert tx.get_preferences(COORDINATOR.staff_id) is None


def test_a_case_s_school_prefers_the_plan_s_setting(db: NotifyDatabase) -> None:
    case, other = new_case(), new_case()
    with db.transaction() as tx:
        assert tx.school_of(case) is None
        tx.set_request_school(case, 100111)
        assert tx.school_of(case) == 100111
        tx.set_setting(case, 100222)
        tx.set_request_school(case, 100333)
        tx.set_setting(other, 100444)
        tx.set_meeting(case, date(2026, 1, 14))

    with db.transaction() as tx:
        assert (tx.school_of(case), tx.school_of(other)) == (100222, 100444)


def test_open_review_clocks_are_listed_by_school_and_date(db: NotifyDatabase) -> None:
    a, b, c = new_case(), new_case(), new_case()
    with db.transaction() as tx:
        tx.set_request_school(a, 100222)
        tx.set_request_school(b, 100111)
        tx.set_meeting(a, date(2026, 1, 14))
        for case, day in ((a, 19), (b, 26), (c, 5)):
            tx.open_review(ReviewDue(case, "annual_review", date(2026, 1, day), "s.44"))
        tx.open_review(ReviewDue(a, "annual_review", date(2026, 1, 20), "s.44"))
        tx.open_review(
            ReviewDue(b, "annual_review[review_id=x]", date(2026, 5, 1), "s")
        )
        tx.close_review(c, "annual_review")

    with db.transaction() as tx:
        found = tx.reviews_due(date(2026, 1, 5), date(2026, 3, 27))

    assert [(d.case_id, d.school_urn, d.due_on, d.meeting_on) for d in found] == [
        (b, 100111, date(2026, 1, 26), None),
        (a, 100222, date(2026, 1, 20), date(2026, 1, 14)),
    ]


def _alert(alert_id: str, **changes: object) -> AlertRecord:
    base = AlertRecord(
        alert_id=alert_id,
        source_event_id="ev-1",
        case_id=new_case(),
        kind=AlertKind.APPROACHING,
        channel=Channel.EMAIL,
        role=RecipientRole.COORDINATOR,
        staff_id=COORDINATOR.staff_id,
        address=COORDINATOR.email,
        subject="s",
        body="b",
        notice={"kind": "approaching", "clock_id": "decision"},
        correlation_id="c",
        created_at=datetime(2025, 2, 10, 9, 0, tzinfo=UTC),
    )
    return base.evolve(**changes)


def test_held_bundled_and_provider_ids_are_found(db: NotifyDatabase) -> None:
    with db.transaction() as tx:
        tx.add_alert(
            _alert(
                "h-1",
                status=AlertStatus.HELD,
                next_attempt_at=None,
                digest_on=date(2025, 2, 11),
            )
        )
        tx.add_alert(
            _alert(
                "h-2",
                status=AlertStatus.HELD,
                next_attempt_at=None,
                digest_on=date(2025, 2, 12),
            )
        )
        tx.add_alert(_alert("b-1", status=AlertStatus.BUNDLED, bundle_id="d-1"))
        tx.add_alert(
            _alert(
                "s-1",
                channel=Channel.SMS,
                provider=Provider.GOVUK_NOTIFY,
                provider_id="notify-1",
                next_attempt_at=datetime(2025, 2, 10, 9, 0, tzinfo=UTC),
                quiet_hours="20:00-08:00",
                personalisation={"body": "b"},
            )
        )

    with db.transaction() as tx:
        assert [a.alert_id for a in tx.held_alerts(date(2025, 2, 11))] == ["h-1"]
        assert [a.alert_id for a in tx.bundle_items("d-1")] == ["b-1"]
        found = tx.alert_by_provider_id("notify-1")
        assert tx.alert_by_provider_id("notify-2") is None
        assert tx.due_alerts(datetime(2030, 1, 1, tzinfo=UTC), 10) == [found]
    assert found is not None
    assert (found.provider, found.quiet_hours, found.personalisation) == (
        Provider.GOVUK_NOTIFY,
        "20:00-08:00",
        {"body": "b"},
    )


_SCHEMA_1 = """
CREATE TABLE notify_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE notify_alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL UNIQUE,
    source_event_id TEXT NOT NULL, case_id TEXT NOT NULL, kind TEXT NOT NULL,
    channel TEXT NOT NULL, role TEXT NOT NULL, staff_id TEXT, address TEXT,
    subject TEXT NOT NULL, body TEXT NOT NULL, notice TEXT NOT NULL,
    correlation_id TEXT NOT NULL, created_at TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_attempt_at TEXT, last_error TEXT, corrects TEXT,
    withdrawal TEXT, updated_at TEXT);
INSERT INTO notify_meta VALUES ('schema_version', '1');
INSERT INTO notify_alerts (alert_id, source_event_id, case_id, kind, channel, role,
    staff_id, address, subject, body, notice, correlation_id, created_at, status,
    attempts, next_attempt_at)
    VALUES ('old-1', 'ev-old', '3f6c2a4e-8d1b-4c7a-9e2f-5b0a1c3d4e6f', 'approaching',
    'email', 'coordinator', 'ehcco-01', 'alex.c@council.example', 's', 'b',
    '{"kind": "approaching"}', 'c', '2025-02-10T09:00:00.000000+00:00', 'pending',
    0, '2025-02-10T09:00:00.000000+00:00');
"""


def test_a_ledger_of_schema_1_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "notify.db"
    old = sqlite3.connect(path)
    old.executescript(_SCHEMA_1)
    old.close()

    db = NotifySQLiteDatabase(path)
    try:
        with db.transaction() as tx:
            kept = tx.get_alert("old-1")
            version = tx.get_meta("schema_version")
            tx.put_staff(COORDINATOR)
    finally:
        db.close()

    assert kept is not None
    assert (kept.status, kept.provider, kept.bundle_id, version) == (
        AlertStatus.PENDING,
        Provider.SMTP,
        None,
        "2",
    )


class _RecordingProvider(MessageProvider):
    """An SMS provider that, while it 'sends', lets the test deliver a receipt."""

    name = Provider.GOVUK_NOTIFY
    channels = frozenset({Channel.SMS})
    can_look_up = True

    def __init__(self, during_send: object) -> None:
        self.during_send = during_send
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        self.sent.append(message)
        assert callable(self.during_send)
        self.during_send(message)
        return ProviderReceipt(provider_id="notify-42")

    def look_up(self, reference: str) -> ProviderReceipt | None:
        return None


def test_a_receipt_before_the_send_is_recorded_is_published_after_it(
    db: NotifyDatabase, clock: FakeClock
) -> None:
    seed(
        db,
        preferences={
            COORDINATOR.staff_id: Preferences(
                channels={PreferenceKind.APPROACHING: ChannelChoice.SMS},
                quiet_hours=None,
            )
        },
    )
    routing = Routing(sms_available=True)
    handlers = NotifyHandlers(db, routing=routing, now=clock)
    receipts = Receipts(db, routing=routing, now=clock)
    outcomes: list[ReceiptOutcome] = []

    def receipt_arrives(message: OutgoingMessage) -> None:
        outcomes.append(
            receipts.record(
                Receipt("notify-42", message.reference, "delivered", clock())
            )
        )

    provider = _RecordingProvider(receipt_arrives)
    delivery = Delivery(
        db,
        from_address="a@council.example",
        message_id_domain="council.example",
        providers={Provider.GOVUK_NOTIFY: provider},
        routing=routing,
        now=clock,
    )
    case = new_case()
    handlers.handle_intake_event(coordinator_assigned(case, COORDINATOR.staff_id))
    handlers.handle_deadlines_event(approaching(case))

    delivery.deliver_due()
    clock.advance(minutes=1)
    repeat = receipts.record(Receipt("notify-42", None, "delivered", clock()))
    # A failure after delivered: the first final status stands, nobody is escalated.
    contrary = receipts.record(Receipt("notify-42", None, "permanent-failure", clock()))

    assert outcomes == [ReceiptOutcome.KEPT_FOR_LATER]
    assert repeat is ReceiptOutcome.DUPLICATE
    assert contrary is ReceiptOutcome.CONTRADICTED
    with db.transaction() as tx:
        kinds = [e.type.split(".")[2] for e in tx.events.read_stream(case)]
    assert kinds == ["NotificationSent", "NotificationDelivered"]
    assert len(provider.sent) == 1
