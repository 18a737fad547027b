"""Notify's ledger on PostgreSQL: what only a shared server shows.

The behaviour suites run on PostgreSQL through the ``db`` and ``ledger_url`` fixtures;
these tests add what they cannot: the ledger kept across reopening, its schema
version, ordering under a language collation, two replicas opening one database at
once, two replicas claiming and sending the same due alerts at once (each alert going
exactly once), two replicas gathering the same digests at once (each alert bundled
once), and a clock notice and its case's coordinator arriving on two replicas at once
(the alert raised, nothing left held).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from notify_factories import (
    COORDINATOR,
    LEGAL_BASIS,
    FakeClock,
    FakeSender,
    approaching,
    coordinator_assigned,
    new_case,
    seed,
)
from psycopg import sql

from notify.adapters.postgres_db import LEDGER_SCHEMA_VERSION, NotifyPostgresDatabase
from notify.application.delivery import ALERT_ID_HEADER, Delivery
from notify.application.handlers import NotifyHandlers
from notify.application.ports import AlertRecord, NotifyDatabase
from notify.application.schedule import Scheduler
from notify.bootstrap import open_database
from notify.domain.alerts import AlertKind, Channel, ClockNotice, RecipientRole
from notify.domain.delivery import AlertStatus
from notify.domain.directory import StaffMember
from notify.domain.preferences import Preferences
from notify.errors import ConfigurationError
from postgres_fixture import url_with_database
from sendkit.store.base import StoreError

T0 = datetime(2025, 2, 10, 9, 0, tzinfo=UTC)


def due_alert(alert_id: str, case_id: str, at: datetime = T0) -> AlertRecord:
    notice = ClockNotice(
        event_id=f"ev-{alert_id}",
        kind=AlertKind.APPROACHING,
        case_id=case_id,
        clock_id="decision",
        clock="decision",
        due_on=at.date() + timedelta(days=7),
        act_by=None,
        legal_basis=LEGAL_BASIS,
        statutory=True,
        escalate=True,
        lead=5,
    )
    return AlertRecord(
        alert_id=alert_id,
        source_event_id=notice.event_id,
        case_id=case_id,
        kind=AlertKind.APPROACHING,
        channel=Channel.EMAIL,
        role=RecipientRole.COORDINATOR,
        staff_id="ehcco-01",
        address="alex.c@council.example",
        subject=f"subject of {alert_id}",
        body="body",
        notice=notice.to_dict(),
        correlation_id=f"corr-{alert_id}",
        created_at=at,
        next_attempt_at=at,
    )


def test_the_postgres_ledger_survives_reopening_and_keeps_times_exact(
    postgres_database: str,
) -> None:
    moment = datetime(2025, 3, 30, 0, 59, 59, 123456, tzinfo=UTC)
    first = NotifyPostgresDatabase(postgres_database)
    with first.transaction() as tx:
        tx.add_alert(due_alert("a-1", new_case(), at=moment))
    first.close()

    second = NotifyPostgresDatabase(postgres_database)
    try:
        with second.transaction() as tx:
            stored = tx.get_alert("a-1")
            version = tx.get_meta("schema_version")
    finally:
        second.close()

    assert stored is not None
    assert stored.next_attempt_at == moment
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.clock_notice.legal_basis == LEGAL_BASIS
    assert version == str(LEDGER_SCHEMA_VERSION)


def test_a_ledger_of_a_newer_schema_is_refused(postgres_database: str) -> None:
    NotifyPostgresDatabase(postgres_database).close()
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute(
            "UPDATE notify_meta SET value = %s WHERE key = 'schema_version'",
            (str(LEDGER_SCHEMA_VERSION + 1),),
        )

    with pytest.raises(StoreError, match="newer than this code"):
        NotifyPostgresDatabase(postgres_database)


def test_the_postgres_ledger_refuses_naive_times(postgres_database: str) -> None:
    db = NotifyPostgresDatabase(postgres_database)
    try:
        naive = datetime(2025, 1, 1, 9, 0)  # noqa: DTZ001
        with pytest.raises(ValueError, match="aware"), db.transaction() as tx:
            tx.add_alert(due_alert("a-1", new_case(), at=naive))
        with db.transaction() as tx:
            assert tx.get_alert("a-1") is None
    finally:
        db.close()


def listed_staff(db: NotifyDatabase) -> tuple[list[str], list[str]]:
    with db.transaction() as tx:
        for staff_id in ("b", "B", "a_1", "a-1", "A", "mgr"):
            tx.put_staff(
                StaffMember(
                    staff_id,
                    f"Person {staff_id}",
                    f"p{len(staff_id)}@council.example",
                    "coordinator",
                    "mgr",
                )
            )
        listed = [m.staff_id for m in tx.list_staff(role="coordinator")]
        return listed, tx.managed_by("mgr")


CODE_POINT_ORDER = ["A", "B", "a-1", "a_1", "b", "mgr"]


def test_staff_are_listed_in_code_point_order_on_every_adapter(
    db: NotifyDatabase,
) -> None:
    assert listed_staff(db) == (CODE_POINT_ORDER, CODE_POINT_ORDER)


@pytest.fixture
def english_collated_database(postgres_dsn: str) -> Iterator[str]:
    """A database whose default collation is English (ICU), not "C"."""
    name = f"t_icu_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} LOCALE_PROVIDER icu ICU_LOCALE 'en-GB'"
                " LOCALE 'C' TEMPLATE template0"
            ).format(sql.Identifier(name))
        )
    yield url_with_database(postgres_dsn, name)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def test_staff_order_does_not_follow_the_database_s_language_collation(
    english_collated_database: str,
) -> None:
    # SQLite compares text by code point; an English collation would put "a" before
    # "B" and compare "a-1" with "a_1" by their letters.
    db = NotifyPostgresDatabase(english_collated_database, pool_size=2)
    try:
        assert listed_staff(db) == (CODE_POINT_ORDER, CODE_POINT_ORDER)
    finally:
        db.close()


def test_two_replicas_opening_a_fresh_database_at_once_both_start(
    postgres_database: str,
) -> None:
    opened: list[NotifyPostgresDatabase] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(NotifyPostgresDatabase(postgres_database, pool_size=2))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    try:
        assert errors == []
        assert len(opened) == 2
        with opened[0].transaction() as tx:
            tx.add_alert(due_alert("a-1", new_case()))
        with opened[1].transaction() as tx:
            assert tx.get_alert("a-1") is not None
    finally:
        for db in opened:
            db.close()


def test_an_alert_being_claimed_on_one_replica_is_not_offered_to_another(
    postgres_database: str,
) -> None:
    one = NotifyPostgresDatabase(postgres_database, pool_size=2)
    other = NotifyPostgresDatabase(postgres_database, pool_size=2)
    try:
        with one.transaction() as tx:
            for n in range(4):
                tx.add_alert(due_alert(f"a-{n}", new_case()))
        now = T0 + timedelta(minutes=1)
        offered_elsewhere: list[str] = []

        def claim_elsewhere() -> None:
            with other.transaction() as tx:
                offered_elsewhere.extend(a.alert_id for a in tx.due_alerts(now, 4))

        # One replica claims two alerts; while its transaction is open the other
        # replica asks for everything due.
        with one.transaction() as tx:
            claimed = tx.due_alerts(now, 2)
            elsewhere = threading.Thread(target=claim_elsewhere)
            elsewhere.start()
            for alert in claimed:
                tx.save_alert(
                    alert.evolve(
                        status=AlertStatus.SENDING,
                        attempts=1,
                        next_attempt_at=now + timedelta(minutes=5),
                    )
                )
        elsewhere.join(30)
    finally:
        one.close()
        other.close()

    assert [a.alert_id for a in claimed] == ["a-0", "a-1"]
    assert offered_elsewhere == ["a-2", "a-3"]


def test_two_replicas_sending_at_once_send_each_due_alert_exactly_once(
    postgres_database: str,
) -> None:
    replicas = [NotifyPostgresDatabase(postgres_database, pool_size=3) for _ in (1, 2)]
    alert_ids = [f"a-{n:03d}" for n in range(40)]
    with replicas[0].transaction() as tx:
        for alert_id in alert_ids:
            tx.add_alert(due_alert(alert_id, new_case()))

    senders = [FakeSender() for _ in range(4)]
    sent_counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(senders))

    def send_everything(db: NotifyPostgresDatabase, sender: FakeSender) -> None:
        delivery = Delivery(
            db,
            sender,
            from_address="send-alerts@council.example",
            message_id_domain="council.example",
            claim_lease=timedelta(minutes=10),
        )
        start.wait()
        try:
            sent_counts.append(delivery.deliver_due().sent)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    # Two senders on each replica, four in all, start together.
    threads = [
        threading.Thread(target=send_everything, args=(replicas[n % 2], sender))
        for n, sender in enumerate(senders)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        with replicas[1].transaction() as tx:
            stored = [tx.get_alert(alert_id) for alert_id in alert_ids]
        events = replicas[1].store.read_all()
    finally:
        for db in replicas:
            db.close()

    assert errors == []
    sends = Counter(
        email.headers[ALERT_ID_HEADER] for sender in senders for email in sender.sent
    )
    assert sends == Counter(alert_ids)
    assert sum(sent_counts) == len(alert_ids)
    assert all(
        a is not None and (a.status, a.attempts) == (AlertStatus.SENT, 1)
        for a in stored
    )
    reported = Counter(e.data["alert_id"] for e in events)
    assert reported == Counter(alert_ids)


def test_two_replicas_gathering_digests_at_once_bundle_each_alert_once(
    postgres_database: str,
) -> None:
    replicas = [NotifyPostgresDatabase(postgres_database, pool_size=2) for _ in (1, 2)]
    seed(
        replicas[0], preferences={COORDINATOR.staff_id: Preferences(daily_digest=True)}
    )
    rounds, per_round = 5, 4
    reports: list[int] = []
    errors: list[BaseException] = []
    try:
        for day in range(rounds):
            # A day's approaching alerts are held for the coordinator's digest...
            raised_at = datetime(2025, 2, 10 + day, 9, 0, tzinfo=UTC)
            handlers = NotifyHandlers(replicas[day % 2], now=FakeClock(raised_at))
            for _ in range(per_round):
                case = new_case()
                handlers.handle_intake_event(
                    coordinator_assigned(case, COORDINATOR.staff_id)
                )
                handlers.handle_deadlines_event(approaching(case))

            # ...and at 07:30 the next morning both replicas' schedulers gather it.
            due = datetime(2025, 2, 11 + day, 7, 30, tzinfo=UTC)
            start = threading.Barrier(2)

            def gather(
                db: NotifyPostgresDatabase,
                at: datetime = due,
                barrier: threading.Barrier = start,
            ) -> None:
                scheduler = Scheduler(db, now=FakeClock(at))
                barrier.wait()
                try:
                    reports.append(scheduler.gather_digests(at)[0])
                except BaseException as error:  # reported below
                    errors.append(error)

            threads = [threading.Thread(target=gather, args=(db,)) for db in replicas]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        with replicas[1].transaction() as tx:
            counts = tx.count_by_status()
    finally:
        for db in replicas:
            db.close()

    assert errors == []
    assert sum(reports) == rounds
    assert counts == {
        AlertStatus.BUNDLED: rounds * per_round,
        AlertStatus.PENDING: rounds,
    }


def test_a_clock_notice_and_its_coordinator_on_two_replicas_at_once_raise_the_alert(
    postgres_database: str,
) -> None:
    # The deadlines and intake topics are consumed by whichever replica holds each
    # partition: a case's clock notice and its coordinator can arrive together.
    replicas = [NotifyPostgresDatabase(postgres_database, pool_size=2) for _ in (1, 2)]
    seed(replicas[0])
    clock = FakeClock(T0)
    notices, assignments = (NotifyHandlers(db, now=clock) for db in replicas)
    cases = [new_case() for _ in range(15)]
    notice_ids: dict[str, str] = {}
    errors: list[BaseException] = []

    def run(handle: Callable[[], object], barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            handle()
        except BaseException as error:  # reported below
            errors.append(error)

    try:
        for case in cases:
            start = threading.Barrier(2)
            notice = approaching(case)
            assignment = coordinator_assigned(case, COORDINATOR.staff_id)
            notice_ids[case] = notice.id
            threads = [
                threading.Thread(
                    target=run,
                    args=(lambda e=notice: notices.handle_deadlines_event(e), start),
                ),
                threading.Thread(
                    target=run,
                    args=(
                        lambda e=assignment: assignments.handle_intake_event(e),
                        start,
                    ),
                ),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        with replicas[0].transaction() as tx:
            raised = {case: tx.alerts_from(notice_ids[case]) for case in cases}
            still_held = [case for case in cases if tx.take_held(case)]
    finally:
        for db in replicas:
            db.close()

    assert errors == []
    assert still_held == []
    assert all(
        [a.staff_id for a in alerts] == [COORDINATOR.staff_id]
        for alerts in raised.values()
    )


def test_the_database_url_chooses_the_adapter(postgres_database: str) -> None:
    db = open_database(postgres_database)
    try:
        assert isinstance(db, NotifyPostgresDatabase)
        assert db.shared
    finally:
        db.close()
    assert not open_database("memory://").shared

    with pytest.raises(ConfigurationError, match="scheme 'mysql'") as refused:
        open_database("mysql://notify:s3cret@db.internal/notify")
    assert "s3cret" not in str(refused.value)
    assert "postgresql://" in str(refused.value)
