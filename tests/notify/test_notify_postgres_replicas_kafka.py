"""Two notify workers on one PostgreSQL ledger, end to end: a real broker, a real SMTP
server, a real PostgreSQL, two worker subprocesses in one consumer group.

Both workers' delivery threads look at the one ledger, so each due alert can be
claimed by either; both relays try to publish notify's events, and one at a time
does. The broker is shared by the whole test run: assertions look only at this test's
own cases.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notify_factories import COORDINATOR, clock_data, new_case, write_directory_csv
from notify_kafka import Publisher, Worker, caught_up, mail_for, read_topic, wait_until

from devstack.smtp import MailCatcher
from notify.adapters.postgres_db import NotifyPostgresDatabase
from notify.application.inbound import CLOCK_APPROACHING
from notify.domain.delivery import AlertStatus
from send_schemas.topics import DEADLINES, NOTIFY


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


@pytest.fixture
def publisher(kafka_bootstrap: str) -> Iterator[Publisher]:
    publisher = Publisher(kafka_bootstrap)
    yield publisher
    publisher.close()


def live_alerts(dsn: str) -> int:
    db = NotifyPostgresDatabase(dsn, pool_size=1)
    try:
        with db.transaction() as tx:
            counts = tx.count_by_status()
    finally:
        db.close()
    return counts.get(AlertStatus.PENDING, 0) + counts.get(AlertStatus.SENDING, 0)


def test_two_workers_sharing_a_postgres_ledger_send_each_email_once(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_database: str,
    catcher: MailCatcher,
    publisher: Publisher,
    unique_name: Callable[[str], str],
) -> None:
    group = unique_name("notify-pg")
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "NOTIFY_APP_ID": group,
            "NOTIFY_DATABASE_URL": postgres_database,
            "NOTIFY_DIRECTORY_CSV": str(write_directory_csv(tmp_path / "staff.csv")),
            "NOTIFY_SMTP_HOST": "127.0.0.1",
            "NOTIFY_SMTP_PORT": str(catcher.port),
            "NOTIFY_FROM_ADDRESS": "send-alerts@council.example",
            "NOTIFY_RETRY_BASE_SECONDS": "0.5",
            "NOTIFY_DELIVERY_POLL_SECONDS": "0.2",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
        }
    )
    cases = [new_case() for _ in range(12)]

    def sent_events() -> list[dict[str, Any]]:
        keys = {case.encode() for case in cases}
        return [
            json.loads(r.value)
            for r in read_topic(kafka_bootstrap, NOTIFY.name)
            if r.key in keys
        ]

    workers = [Worker(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    try:
        # Both replicas are up (each delivery thread watching the ledger) before the
        # events arrive, so either may claim any alert.
        for worker in workers:
            wait_until(
                lambda w=worker: (
                    "notify worker ready" in w.log_path.read_text(errors="replace")
                ),
                "the worker to be ready",
                worker,
            )
        for case in cases:
            publisher.assign(case, COORDINATOR.staff_id)
            publisher.publish(DEADLINES.name, CLOCK_APPROACHING, case, clock_data(case))
        wait_until(
            lambda: all(mail_for(catcher, case) for case in cases),
            "an email for every case",
            workers[0],
        )
        wait_until(
            lambda: len(sent_events()) >= len(cases),
            "NotificationSent events",
            workers[0],
        )
        wait_until(lambda: caught_up(kafka_bootstrap, group), "the topics", workers[1])
        wait_until(
            lambda: live_alerts(postgres_database) == 0, "an idle ledger", workers[0]
        )
    finally:
        exits = [worker.stop() for worker in workers]

    assert exits == [0, 0], "\n".join(w.output() for w in workers)
    assert [len(mail_for(catcher, case)) for case in cases] == [1] * len(cases)
    assert all(
        to == COORDINATOR.email for case in cases for to, _ in mail_for(catcher, case)
    )
    events = sent_events()
    assert sorted(e["case_id"] for e in events) == sorted(cases)
    assert {e["recipient_role"] for e in events} == {"coordinator"}
