"""Plans' subscriber process given SIGTERM while it works through a stream of intake
events: it exits 0 by itself, the offsets it committed cover exactly what it handled,
and restarted it handles the rest, each event once, with no repeat even reaching the
idempotency check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from plans.application import intake_requests
from send_schemas.intake import AssessmentAgreed
from sendkit.events import NewEvent
from sendkit.store import SQLiteEventStore

from .shutdown_support import (
    Feed,
    Processes,
    Source,
    committed_total,
    group_members,
    outcomes_of,
    process_env,
    wait_for,
)

CASES = 3000
PARTITIONS = 6
OPENED = "send.plans.AssessmentOpened.v1"


def agreements(plans_db: Path) -> list[tuple[str, NewEvent]]:
    """Intake's ``AssessmentAgreed`` for ``CASES`` new cases.

    Plans opens only cases whose request intake published; so that the stream holds
    one record a case, their requests are recorded as known in plans' store directly.
    """
    cases = [str(uuid.uuid4()) for _ in range(CASES)]
    plans = SQLiteEventStore(plans_db, "/send/plans")
    try:
        with plans.transaction() as tx:
            for case_id in cases:
                intake_requests.record_received(tx, case_id)
    finally:
        plans.close()
    return [
        (
            case_id,
            NewEvent(
                type=AssessmentAgreed.EVENT_TYPE,
                data={"case_id": case_id, "notified_on": "2025-10-06"},
            ),
        )
        for case_id in cases
    ]


def opened_cases(path: Path) -> list[str]:
    """The cases plans opened, one entry per ``AssessmentOpened`` in its store."""
    store = SQLiteEventStore(path, "/send/plans")
    try:
        events = store.read_all(after=0, limit=10 * CASES)
    finally:
        store.close()
    return [e.stream_id for e in events if e.type == OPENED]


def test_a_subscriber_given_sigterm_commits_what_it_handled_and_resumes_exactly_once(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    topic = unique_topic(partitions=PARTITIONS)
    group = unique_name("group")
    plans_db = tmp_path / "plans.db"
    # Published by intake's relay while the subscriber runs, never far ahead of it,
    # so the stream is still arriving when SIGTERM comes.
    feed = Feed(
        kafka_bootstrap,
        [Source(topic, tmp_path / "intake.db", "/send/intake", agreements(plans_db))],
        handled=lambda: len(opened_cases(plans_db)),
    ).start()
    heartbeat = tmp_path / "heartbeat"
    env = process_env(
        PLANS_DATABASE_URL=f"sqlite:///{plans_db}",
        PLANS_CONSUMER_GROUP=group,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        SEND_HEARTBEAT_FILE=heartbeat,
    )

    # Stopped part-way through the stream...
    first = processes.launch("plans-subscriber", topic, env, tmp_path / "first.log")
    wait_for(lambda: len(opened_cases(plans_db)) >= 300, "the first cases opened")
    beating = heartbeat.exists()
    first_code = first.terminate()
    # Checked at once: a member that left nothing would stay for its session timeout.
    members_after_first = group_members(kafka_bootstrap, group)
    handled_first = opened_cases(plans_db)
    committed_first = committed_total(kafka_bootstrap, group, topic, PARTITIONS)

    # ...and restarted to finish it.
    second = processes.launch("plans-subscriber", topic, env, tmp_path / "second.log")
    wait_for(lambda: len(opened_cases(plans_db)) == CASES, "every case opened")
    wait_for(
        lambda: committed_total(kafka_bootstrap, group, topic, PARTITIONS) == CASES,
        "every offset committed",
    )
    second_code = second.terminate()
    handled = opened_cases(plans_db)
    cases = [event.stream_id for event in feed.wait()]

    assert first_code == 0, first.text()[-3000:]
    assert second_code == 0, second.text()[-3000:]
    assert beating
    assert members_after_first == [], "the stopped consumer did not leave the group"
    assert 0 < len(handled_first) < CASES, "the stream ended before SIGTERM: add cases"
    # What was committed is exactly what was handled: nothing to hand out again.
    assert committed_first == len(handled_first)
    assert outcomes_of(first) == {"handled": len(handled_first)}
    # Restarted, the rest was handled once each, and no repeat was even delivered.
    assert outcomes_of(second) == {"handled": CASES - len(handled_first)}
    assert sorted(handled) == sorted(cases)
