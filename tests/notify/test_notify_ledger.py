"""The ledger's storage promises, run against every database adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notify_factories import LEGAL_BASIS, new_case

from notify.adapters.sqlite_db import NotifySQLiteDatabase
from notify.application.ports import AlertRecord, HeldNotice, NotifyDatabase
from notify.application.records import record_event, sent_event
from notify.domain.alerts import (
    AlertKind,
    Channel,
    ClockNotice,
    RecipientRole,
)
from notify.domain.delivery import AlertStatus
from notify.errors import LedgerError

T0 = datetime(2025, 2, 10, 9, 0, tzinfo=UTC)


def clock_notice(case_id: str, event_id: str = "ev-1") -> ClockNotice:
    return ClockNotice(
        event_id=event_id,
        kind=AlertKind.APPROACHING,
        case_id=case_id,
        clock_id="decision",
        clock="decision",
        due_on=T0.date() + timedelta(days=7),
        act_by=None,
        legal_basis=LEGAL_BASIS,
        statutory=True,
        escalate=True,
        lead=5,
    )


def alert(
    alert_id: str,
    *,
    case_id: str | None = None,
    source: str = "ev-1",
    at: datetime = T0,
    status: AlertStatus = AlertStatus.PENDING,
) -> AlertRecord:
    case = case_id or new_case()
    return AlertRecord(
        alert_id=alert_id,
        source_event_id=source,
        case_id=case,
        kind=AlertKind.APPROACHING,
        channel=Channel.EMAIL,
        role=RecipientRole.COORDINATOR,
        staff_id="ehcco-01",
        address="alex.c@council.example",
        subject="s",
        body="b",
        notice=clock_notice(case, source).to_dict(),
        correlation_id="corr-1",
        created_at=T0,
        status=status,
        next_attempt_at=at,
        updated_at=T0,
    )


def test_an_alert_id_is_recorded_once(db: NotifyDatabase) -> None:
    first = alert("a-1")

    with db.transaction() as tx:
        assert tx.add_alert(first)
        assert not tx.add_alert(first.evolve(subject="changed"))

    with db.transaction() as tx:
        stored = tx.get_alert("a-1")
    assert stored == first


def test_saving_an_unknown_alert_is_refused(db: NotifyDatabase) -> None:
    with pytest.raises(LedgerError, match="add_alert"), db.transaction() as tx:
        tx.save_alert(alert("never-added"))


def test_due_alerts_come_earliest_first_and_only_when_due(db: NotifyDatabase) -> None:
    with db.transaction() as tx:
        tx.add_alert(alert("late", at=T0 + timedelta(minutes=5)))
        tx.add_alert(alert("early", at=T0 + timedelta(minutes=1)))
        tx.add_alert(alert("done", at=T0, status=AlertStatus.SENT))
        tx.add_alert(
            alert("claimed", at=T0 + timedelta(minutes=3)).evolve(
                status=AlertStatus.SENDING
            )
        )

    with db.transaction() as tx:
        none_yet = tx.due_alerts(T0, 10)
        some = tx.due_alerts(T0 + timedelta(minutes=4), 10)
        next_at = tx.next_attempt_at()
        claimed = tx.claimed_alerts()
        counts = tx.count_by_status()

    assert none_yet == []
    assert [a.alert_id for a in some] == ["early", "claimed"]
    assert next_at == T0 + timedelta(minutes=1)
    assert [a.alert_id for a in claimed] == ["claimed"]
    assert counts == {
        AlertStatus.PENDING: 2,
        AlertStatus.SENT: 1,
        AlertStatus.SENDING: 1,
    }


def test_alerts_from_one_event_keep_their_order(db: NotifyDatabase) -> None:
    with db.transaction() as tx:
        tx.add_alert(alert("b", source="ev-9"))
        tx.add_alert(alert("a", source="ev-9"))
        tx.add_alert(alert("c", source="ev-other"))

    with db.transaction() as tx:
        found = [a.alert_id for a in tx.alerts_from("ev-9")]

    assert found == ["b", "a"]


def test_coordinators_and_held_notices(db: NotifyDatabase) -> None:
    case = new_case()
    with db.transaction() as tx:
        assert tx.coordinator_of(case) is None
        tx.hold(HeldNotice(clock_notice(case, "ev-1"), "c1"))
        tx.hold(HeldNotice(clock_notice(case, "ev-2"), "c2"))
        tx.hold(HeldNotice(clock_notice(case, "ev-1"), "again"))
        tx.hold(HeldNotice(clock_notice(new_case(), "ev-3"), "c3"))
        tx.set_coordinator(case, "ehcco-01")
        tx.set_coordinator(case, "ehcco-02")

    with db.transaction() as tx:
        assert tx.coordinator_of(case) == "ehcco-02"
        assert tx.drop_held("ev-2")
        assert not tx.drop_held("ev-2")
        taken = tx.take_held(case)
        assert tx.take_held(case) == []

    assert [(h.notice.event_id, h.correlation_id) for h in taken] == [("ev-1", "c1")]


def test_a_failed_transaction_leaves_ledger_and_events_untouched(
    db: NotifyDatabase,
) -> None:
    case = new_case()
    with db.transaction() as tx:
        tx.add_alert(alert("a-1", case_id=case))

    def fail_half_way() -> None:
        with db.transaction() as tx:
            sent = tx.get_alert("a-1")
            assert sent is not None
            tx.save_alert(sent.evolve(status=AlertStatus.SENT))
            record_event(tx, case, sent_event(sent))
            tx.events.mark_processed("notify:test", "message-1")
            tx.set_coordinator(case, "ehcco-01")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_half_way()

    with db.transaction() as tx:
        stored = tx.get_alert("a-1")
        assert stored is not None
        assert stored.status is AlertStatus.PENDING
        assert tx.events.read_stream(case) == []
        assert not tx.events.is_processed("notify:test", "message-1")
        assert tx.coordinator_of(case) is None


def test_an_outcome_and_its_event_commit_together(db: NotifyDatabase) -> None:
    case = new_case()
    with db.transaction() as tx:
        tx.add_alert(alert("a-1", case_id=case))

    with db.transaction() as tx:
        current = tx.get_alert("a-1")
        assert current is not None
        done = current.evolve(status=AlertStatus.SENT, attempts=1)
        tx.save_alert(done)
        record_event(tx, case, sent_event(done))
        record_event(tx, case, sent_event(done))

    with db.transaction() as tx:
        events = tx.events.read_stream(case)
    assert [(e.version, e.type) for e in events] == [
        (1, "send.notify.NotificationSent.v1"),
        (2, "send.notify.NotificationSent.v1"),
    ]
    assert events[0].data["alert_id"] == "a-1"
    assert events[0].metadata.causation_id == "ev-1"


def test_the_sqlite_ledger_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "notify.db"
    first = NotifySQLiteDatabase(path)
    with first.transaction() as tx:
        tx.add_alert(alert("a-1"))
    first.close()

    second = NotifySQLiteDatabase(path)
    with second.transaction() as tx:
        stored = tx.get_alert("a-1")
    second.close()

    assert stored is not None
    assert stored.next_attempt_at == T0
    assert stored.clock_notice.legal_basis == LEGAL_BASIS


def test_the_sqlite_ledger_refuses_naive_times(tmp_path: Path) -> None:
    db = NotifySQLiteDatabase(tmp_path / "notify.db")
    try:
        with pytest.raises(ValueError, match="aware"), db.transaction() as tx:
            tx.add_alert(alert("a-1", at=datetime(2025, 1, 1, 9, 0)))  # noqa: DTZ001
    finally:
        db.close()
