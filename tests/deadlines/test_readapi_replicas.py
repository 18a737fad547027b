"""Two replicas of the read API fold the topics into one PostgreSQL read model.

Both apps open the same database, so they read the same read-model id and join the
same two consumer groups (``send.deadlines.events`` and ``send.intake.events``),
sharing the partitions through a rebalance when the second one starts. Cases keep
arriving until each replica has folded some of them, so both really took part. The
read model must then hold, for every case, exactly the document one process folding
every event in order would have made: no event folded twice (the replicas' handled
counts add up to the events sent), none missing, and no lost update where the two
replicas changed one case's document from its two topics at once.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from deadlines.adapters.readmodel_store import (
    CONSUMER,
    fold_clock_event,
    fold_intake_event,
    read_cases,
)
from deadlines.application.ports import InputRecord
from deadlines.application.processor import SOURCE, Cause, clock_record
from deadlines.domain import engine
from deadlines.domain.engine import CaseEvent, CaseState
from deadlines.entrypoints.api import create_app
from deadlines.settings import DeadlinesSettings
from devstack.kafka_topics import ensure_topics
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.calendar import LONDON
from sendkit.envelope import OutgoingRecord, from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent
from sendkit.store import InMemoryEventStore, open_store

WAIT_S = 180.0  # a deadline for slow, shared machines, not a timing assertion
MAX_CASES = 300  # far beyond what a rebalance needs; the deadline comes first
SCHOOL = 100123


class Case:
    """One synthetic case: its intake events and the clock events the engine made."""

    def __init__(self, number: int) -> None:
        self.case_id = str(uuid.uuid4())
        self.intake: list[OutgoingRecord] = []
        self.clocks: list[OutgoingRecord] = []
        self._state: CaseState | None = None
        self._version = 0
        received = datetime(2025, 1, 6, 10, tzinfo=UTC)
        # The engine and the read model both read the request's day from this.
        self._fact(
            "RequestReceived",
            {
                "requester_type": "parent",
                "channel": "email",
                "received_at": "2025-01-06T10:00:00Z",
                "school_urn": SCHOOL,
                "curriculum_year": 4,
            },
            received,
        )
        self._fact(
            "CoordinatorAssigned", {"coordinator_id": f"ehcco-{number % 3}"}, received
        )
        for day in (date(2025, 2, 3), date(2025, 2, 10), date(2025, 2, 18)):
            now = datetime.combine(day, clock_time(8), LONDON)
            assert self._state is not None
            self._state, outputs = engine.tick(self._state, now)
            self._publish(outputs, f"tick-{day}", now)

    def _fact(self, name: str, data: dict[str, Any], when: datetime) -> None:
        self._version += 1
        event = RecordedEvent(
            id=str(uuid.uuid4()),
            stream_id=self.case_id,
            version=self._version,
            position=0,
            type=f"send.intake.{name}.v1",
            source="/send/intake",
            time=when,
            data={"case_id": self.case_id, **data},
            metadata=Metadata(actor="ehcco-1"),
        )
        self.intake.append(to_kafka(event))
        self._state, outputs = engine.apply(
            self._state, CaseEvent(event.id, event.type, self.case_id, event.data)
        )
        self._publish(outputs, event.id, when)

    def _publish(
        self, outputs: Sequence[engine.Emitted], cause: str, when: datetime
    ) -> None:
        for output in outputs:
            self.clocks.append(
                clock_record(
                    output,
                    sequence=len(self.clocks) + 1,
                    cause=Cause.of(cause, cause, when),
                )
            )


def received(topic: str, record: OutgoingRecord) -> Any:
    return from_kafka(
        InputRecord(topic, 0, 0, 0.0, record.key, record.value, list(record.headers))
    )


def handled(app: FastAPI, topic: str) -> float:
    """How many records this replica's subscriber to ``topic`` folded itself."""
    value = app.state.metrics.registry.get_sample_value(
        "sendkit_subscriber_messages_total",
        {"consumer": CONSUMER, "topic": topic, "outcome": "handled"},
    )
    return float(value or 0.0)


@pytest.fixture
def settings(kafka_bootstrap: str, postgres_database: str) -> DeadlinesSettings:
    tag = uuid.uuid4().hex[:8]
    found = DeadlinesSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"replicas{tag}.",
        app_id=f"deadlines-replicas-{tag}",
        database_url=postgres_database,
    )
    followed = (found.clocks_topic, found.intake_topic)
    names = [*followed, *(dead_letter_topic("deadlines", t) for t in followed)]
    ensure_topics(
        kafka_bootstrap,
        [
            Topic(name, owner="deadlines", consumers=("test",), partitions=PARTITIONS)
            for name in names
        ],
    )
    return found


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    made = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    yield made
    made.close()


def test_two_replicas_fold_every_event_once_into_one_postgresql_read_model(
    settings: DeadlinesSettings,
    producer: KafkaProducer,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    clocks_topic, intake_topic = settings.clocks_topic, settings.intake_topic
    cases: list[Case] = []

    def send(case: Case) -> None:
        # Intake's facts and the clock events interleave, as two relays would send.
        for clock, fact in itertools.zip_longest(case.clocks, case.intake):
            for topic, record in ((clocks_topic, clock), (intake_topic, fact)):
                if record is not None:
                    producer.send(
                        topic,
                        key=record.key,
                        value=record.value,
                        headers=record.headers,
                    )
        producer.flush(30)
        cases.append(case)

    first, second = create_app(settings), create_app(settings)
    with contextlib.ExitStack() as running:
        one = running.enter_context(TestClient(first, headers=manager_headers))
        for number in range(5):
            send(Case(number))
        two = running.enter_context(TestClient(second, headers=manager_headers))

        # Cases keep coming until each replica has folded some of each topic's.
        deadline = time.monotonic() + WAIT_S
        while not all(
            handled(app, topic) > 0
            for app in (first, second)
            for topic in (clocks_topic, intake_topic)
        ):
            assert len(cases) < MAX_CASES, "the second replica was given no work"
            assert time.monotonic() < deadline, "the replicas did not share the work"
            send(Case(len(cases)))
            time.sleep(0.5)

        clock_events = sum(len(case.clocks) for case in cases)
        intake_events = sum(len(case.intake) for case in cases)
        while (
            sum(handled(app, clocks_topic) for app in (first, second)) < clock_events
            or sum(handled(app, intake_topic) for app in (first, second))
            < intake_events
        ):
            assert time.monotonic() < deadline, "the read model did not catch up"
            time.sleep(0.2)
        assert one.get("/readyz").status_code == 200
        assert two.get("/readyz").status_code == 200
        timeline = two.get(f"/cases/{cases[0].case_id}/timeline")
        assert timeline.status_code == 200

    # Every event was folded by exactly one of the two, and marked once.
    assert sum(handled(app, clocks_topic) for app in (first, second)) == clock_events
    assert sum(handled(app, intake_topic) for app in (first, second)) == intake_events
    with psycopg.connect(settings.database_url) as db:
        row = db.execute(
            "SELECT count(*) FROM processed_messages WHERE consumer = %s", (CONSUMER,)
        ).fetchone()
    assert row is not None
    assert row[0] == clock_events + intake_events

    # One process folding each case in order makes the very same documents.
    expected = InMemoryEventStore(SOURCE)
    for case in cases:
        for record in case.intake:
            with expected.transaction() as tx:
                fold_intake_event(received(intake_topic, record), tx)
        for record in case.clocks:
            with expected.transaction() as tx:
                fold_clock_event(received(clocks_topic, record), tx)
    shared = open_store(settings.database_url, SOURCE)
    try:
        found = {doc["case_id"]: doc for doc in read_cases(shared)}
    finally:
        shared.close()
    wanted = {doc["case_id"]: doc for doc in read_cases(expected)}
    assert len(wanted) == len(cases)
    assert found == wanted
    for doc in found.values():
        ids = [e["id"] for clock in doc["clocks"].values() for e in clock["history"]]
        assert len(ids) == len(set(ids))
        assert doc["coordinator_id"] is not None
        assert doc["school_urn"] == SCHOOL
