"""The notify worker given SIGTERM while it sends a backlog of alerts to a real SMTP
server, and restarted: every alert is sent exactly once across the two runs.

"Once" is measured three ways, which must agree: the mail server holds one message per
alert, under the alert's own Message-ID; notify's ledger holds every alert as sent, at
its first attempt; and ``send.notify.events`` carries one ``NotificationSent`` per
alert. At the stop itself, every message the server had accepted is recorded as sent
and no alert is left claimed, so the restart has nothing to resend. The ledger is a
SQLite file in one run of the test and a PostgreSQL database in the other.

A second test gives the worker an SMTP server that never answers: the delivery thread
waits inside its send, and the worker's shutdown timeout ends the process with status 3
instead of waiting for it.

The worker reads the project's own topics, which the session's other tests share, with
a consumer group of its own from the earliest offset: it also sends the alerts of other
tests' cases, and every check here looks only at this test's cases.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.smtp import MailCatcher
from notify.application.inbound import CLOCK_APPROACHING
from notify.application.ports import AlertRecord, NotifyDatabase
from notify.bootstrap import open_database
from notify.domain.alerts import message_id
from notify.domain.delivery import AlertStatus
from notify.entrypoints.worker import READY_MESSAGE
from send_schemas.topics import DEADLINES, NOTIFY
from sendkit.health import EXIT_OVERDUE

from .notify_support import notify_factories, notify_kafka
from .shutdown_support import (
    GUARD_S,
    Process,
    Processes,
    TopicFollower,
    process_env,
    wait_for,
)

CASES = 300
SENT_BEFORE_SIGTERM = 30
DOMAIN = "council.example"
SENT = "send.notify.NotificationSent.v1"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``NOTIFY_DATABASE_URL``: a SQLite file, or a new database on the run's
    PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'notify.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


def worker_env(
    tmp_path: Path, bootstrap: str, ledger: str, smtp_port: int, app_id: str
) -> dict[str, str]:
    directory = notify_factories.write_directory_csv(tmp_path / "staff.csv")
    return process_env(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        NOTIFY_APP_ID=app_id,
        NOTIFY_DATABASE_URL=ledger,
        NOTIFY_DIRECTORY_CSV=directory,
        NOTIFY_SMTP_HOST="127.0.0.1",
        NOTIFY_SMTP_PORT=str(smtp_port),
        NOTIFY_FROM_ADDRESS=f"send-alerts@{DOMAIN}",
        NOTIFY_MESSAGE_ID_DOMAIN=DOMAIN,
        NOTIFY_RETRY_BASE_SECONDS="0.5",
        NOTIFY_DELIVERY_POLL_SECONDS="1",
    )


def publish_backlog(bootstrap: str, cases: list[str]) -> list[str]:
    """Each case's coordinator, then its approaching clock; the clock events' ids."""
    publisher = notify_kafka.Publisher(bootstrap)
    coordinator = notify_factories.COORDINATOR.staff_id
    try:
        for case in cases:
            publisher.assign(case, coordinator)
        return [
            publisher.publish(
                DEADLINES.name,
                CLOCK_APPROACHING,
                case,
                notify_factories.clock_data(case),
            )
            for case in cases
        ]
    finally:
        publisher.close()


def alerts_of(db: NotifyDatabase, clock_events: list[str]) -> list[AlertRecord]:
    """The ledger's alerts raised by ``clock_events``."""
    with db.transaction() as tx:
        return [alert for event in clock_events for alert in tx.alerts_from(event)]


def mail_of(catcher: MailCatcher, cases: set[str]) -> list[Any]:
    """The messages the server accepted about ``cases``."""
    return [
        message
        for message in catcher.messages()
        if any(case in message.subject for case in cases)
    ]


def wait_while_running(
    process: Process,
    condition: Callable[[], bool],
    what: str,
    *,
    interval_s: float = 0.05,
) -> None:
    def met() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"the worker exited:\n{process.text()[-3000:]}")
        return condition()

    wait_for(met, what, GUARD_S * 2, interval_s=interval_s)


@pytest.mark.timeout(900)  # two worker starts and a few hundred emails, on two cores
def test_a_worker_stopped_mid_backlog_sends_every_alert_exactly_once(
    ledger_url: str,
    kafka_bootstrap: str,
    catcher: MailCatcher,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    cases = [notify_factories.new_case() for _ in range(CASES)]
    ours = set(cases)
    clock_events = publish_backlog(kafka_bootstrap, cases)
    env = worker_env(
        tmp_path, kafka_bootstrap, ledger_url, catcher.port, unique_name("notify")
    )

    ledger = open_database(ledger_url)
    sent_events = TopicFollower(kafka_bootstrap, NOTIFY.name)
    try:
        # Stopped while it sends the backlog...
        first = processes.start(["-m", "notify", "worker"], env, tmp_path / "1.log")
        wait_while_running(
            first,
            lambda: len(mail_of(catcher, ours)) >= SENT_BEFORE_SIGTERM,
            "the first emails",
        )
        first_code = first.terminate()
        mailed_at_stop = len(mail_of(catcher, ours))
        at_stop = Counter(alert.status for alert in alerts_of(ledger, clock_events))

        # ...and run again until every alert is sent, recorded and reported.
        second = processes.start(["-m", "notify", "worker"], env, tmp_path / "2.log")

        def reported() -> list[dict[str, Any]]:
            return [
                json.loads(record.value)
                for record in sent_events.read()
                if record.key is not None
                and record.key.decode() in ours
                and dict(record.headers)["ce_type"].decode() == SENT
            ]

        wait_while_running(
            second, lambda: len(mail_of(catcher, ours)) >= CASES, "every email"
        )
        wait_while_running(
            second,
            lambda: all(
                alert.status == AlertStatus.SENT
                for alert in alerts_of(ledger, clock_events)
            ),
            "every alert recorded as sent",
            interval_s=0.5,
        )
        wait_while_running(
            second, lambda: len(reported()) >= CASES, "every event", interval_s=0.5
        )
        second_code = second.terminate()
        alerts = alerts_of(ledger, clock_events)
        events = reported()
    finally:
        sent_events.close()
        ledger.close()

    mail = mail_of(catcher, ours)
    assert first_code == 0, first.text()[-3000:]
    assert second_code == 0, second.text()[-3000:]
    assert SENT_BEFORE_SIGTERM <= mailed_at_stop < CASES, (
        "the backlog was sent before SIGTERM: add cases"
    )
    # At the stop, what the server had accepted was recorded, and nothing was left
    # claimed for the restart to send again.
    assert at_stop[AlertStatus.SENT] == mailed_at_stop
    assert at_stop[AlertStatus.SENDING] == 0
    # Exactly once, by the mail server, the ledger and the published events.
    assert len(alerts) == CASES
    assert sorted(m.message_id for m in mail) == sorted(
        message_id(alert.alert_id, DOMAIN) for alert in alerts
    )
    assert {(a.status, a.attempts) for a in alerts} == {(AlertStatus.SENT, 1)}
    assert Counter(e["alert_id"] for e in events) == Counter(
        {alert.alert_id: 1 for alert in alerts}
    )


class SilentSMTPServer:
    """A listening socket on loopback that accepts connections and never answers:
    a mail relay that has hung. ``connected`` is set by the first connection."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return  # closed
            self.held.append(connection)
            self.connected.set()

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


def test_a_worker_stuck_in_a_send_exits_with_status_3_at_its_shutdown_timeout(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    server = SilentSMTPServer()
    try:
        publish_backlog(kafka_bootstrap, [notify_factories.new_case()])
        env = worker_env(
            tmp_path,
            kafka_bootstrap,
            f"sqlite:///{tmp_path / 'notify.db'}",
            server.port,
            unique_name("notify"),
        )
        # A send would wait an hour for the greeting; the stop may take three seconds.
        env |= {"NOTIFY_SMTP_TIMEOUT_SECONDS": "3600"}
        env |= {"SEND_SHUTDOWN_TIMEOUT_SECONDS": "3"}
        worker = processes.start(["-m", "notify", "worker"], env, tmp_path / "w.log")
        wait_while_running(worker, lambda: worker.said(READY_MESSAGE), "readiness")
        wait_while_running(worker, server.connected.is_set, "a send to begin")

        code = worker.terminate()
    finally:
        server.close()

    log = worker.text()
    assert code == EXIT_OVERDUE, log[-3000:]
    assert "notify-worker asked to stop by signal SIGTERM" in log, log[-3000:]
    assert "notify-worker did not stop within 3 s" in log, log[-3000:]
