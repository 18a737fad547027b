"""The read model folds only intake events that keep intake's published contract.

An intake event whose data breaks ``send_schemas.intake`` (a URN of 1, an impossible
date, an unknown channel), names another case than its subject, or was received
outside the calendar's supported range is refused by the handler the projector's
subscriber calls: it raises an error of the kinds the subscriber dead-letters, the
store keeps nothing of it, and ``/summary`` and ``/timeliness`` do not count it. The
handler is driven into a real store here, on SQLite and on PostgreSQL; the last test
runs the projector's own subscriber loop against the broker and reads the dead letter
it writes (consumer ``deadlines-readmodel``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer
from pydantic import ValidationError

from deadlines.adapters.readmodel_store import (
    CONSUMER,
    fold_intake_event,
    projector_loops,
    read_case,
)
from deadlines.application.ports import InputRecord
from deadlines.application.processor import SOURCE
from deadlines.application.readmodel import ReadModelError
from deadlines.entrypoints.api import create_app
from deadlines.settings import DeadlinesSettings
from devstack.kafka_topics import ensure_topics
from send_schemas.topics import Topic, dead_letter_topic
from sendkit.envelope import OutgoingRecord, ReceivedEvent, from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent
from sendkit.store import EventStore
from sendkit.subscriber import PERMANENT_ERRORS
from store_backends import DURABLE, durable_store

INTAKE = "send.intake.events"
REQUEST_TIME = datetime(2025, 1, 6, 10, tzinfo=UTC)
WAIT_S = 60.0  # a deadline for slow, shared machines, not a timing assertion
REQUEST = {
    "requester_type": "parent",
    "channel": "email",
    "received_at": "2025-01-06T10:00:00Z",
    "school_urn": 100001,
    "curriculum_year": 4,
}


def new_case_id() -> str:
    return str(uuid.uuid4())


def intake_record(
    case_id: str, name: str, data: dict[str, Any], *, about: str | None = None
) -> OutgoingRecord:
    """An intake event as intake's relay would publish it; ``about`` puts another
    case id in the data than the subject."""
    event = RecordedEvent(
        id=str(uuid.uuid4()),
        stream_id=case_id,
        version=1,
        position=1,
        type=f"send.intake.{name}.v1",
        source="/send/intake",
        time=REQUEST_TIME,
        data={"case_id": about or case_id, **data},
        metadata=Metadata(actor="ehcco-1"),
    )
    return to_kafka(event)


def received(record: OutgoingRecord, topic: str = INTAKE) -> ReceivedEvent:
    return from_kafka(
        InputRecord(topic, 0, 0, 0.0, record.key, record.value, list(record.headers))
    )


def fold(store: EventStore, record: OutgoingRecord) -> None:
    with store.transaction() as tx:
        fold_intake_event(received(record), tx)


# Each bad event: its type, data, what the refusal must mention, and the error type.
BAD = [
    pytest.param(
        "RequestReceived",
        {
            **REQUEST,
            "school_urn": 1,
            "received_at": "2025-02-30T00:00:00Z",
            "channel": "pigeon",
        },
        ("school_urn", "received_at", "channel"),
        ValidationError,
        id="the-reviewers-request",
    ),
    pytest.param(
        "RequestReceived",
        {**REQUEST, "school_urn": 1},
        ("school_urn",),
        ValidationError,
        id="urn-of-1",
    ),
    pytest.param(
        "RequestReceived",
        {**REQUEST, "received_at": "2025-02-30T00:00:00Z"},
        ("received_at",),
        ValidationError,
        id="30-february",
    ),
    pytest.param(
        "RequestReceived",
        {**REQUEST, "channel": "pigeon"},
        ("channel",),
        ValidationError,
        id="channel-pigeon",
    ),
    pytest.param(
        "RequestReceived",
        {k: v for k, v in REQUEST.items() if k != "curriculum_year"},
        ("curriculum_year",),
        ValidationError,
        id="no-curriculum-year",
    ),
    pytest.param(
        "RequestReceived",
        {**REQUEST, "received_at": "9999-12-31T23:00:00Z"},
        ("received_at", "2014-09-01 to 2100-12-31"),
        ReadModelError,
        id="received-in-9999",
    ),
    pytest.param(
        "CoordinatorAssigned",
        {"coordinator_id": "has space"},
        ("coordinator_id",),
        ValidationError,
        id="coordinator-id-with-a-space",
    ),
    pytest.param(
        "AssessmentAgreed",
        {"notified_on": "soon"},
        ("notified_on",),
        ValidationError,
        id="agreed-on-no-date",
    ),
]


@pytest.fixture(params=DURABLE)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """The read model's store: each test runs on SQLite and on PostgreSQL."""
    with durable_store(str(request.param), tmp_path / "deadlines", SOURCE) as opened:
        yield opened


@pytest.fixture
def client(
    store: EventStore, auth_env: dict[str, str], manager_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(DeadlinesSettings(), store=store, projector=False)
    with TestClient(app, headers=manager_headers) as test_client:
        yield test_client


@pytest.mark.parametrize(("name", "data", "mentions", "error"), BAD)
def test_an_intake_event_breaking_the_contract_is_refused_and_keeps_nothing(
    store: EventStore,
    name: str,
    data: dict[str, Any],
    mentions: tuple[str, ...],
    error: type[Exception],
) -> None:
    case_id = new_case_id()
    fold(store, intake_record(case_id, "RequestReceived", REQUEST))
    before = read_case(store, case_id)
    other = new_case_id()

    with pytest.raises(error) as refused:
        fold(store, intake_record(case_id, name, data))
    with pytest.raises(error):
        fold(store, intake_record(other, name, data))

    assert isinstance(refused.value, PERMANENT_ERRORS)  # the subscriber dead-letters
    for text in mentions:
        assert text in str(refused.value)
    assert read_case(store, case_id) == before
    assert read_case(store, other) is None


def test_a_request_naming_another_case_in_its_data_is_refused(
    store: EventStore,
) -> None:
    case_id, named = new_case_id(), new_case_id()

    with pytest.raises(ReadModelError, match=f"names case {named}"):
        fold(store, intake_record(case_id, "RequestReceived", REQUEST, about=named))

    assert read_case(store, case_id) is None
    assert read_case(store, named) is None


def test_a_valid_request_is_folded_with_its_school_and_utc_time(
    store: EventStore,
) -> None:
    case_id = new_case_id()

    fold(
        store,
        intake_record(
            case_id,
            "RequestReceived",
            {**REQUEST, "received_at": "2025-01-06T10:00:00+01:00", "extra": "newer"},
        ),
    )
    fold(
        store, intake_record(case_id, "CoordinatorAssigned", {"coordinator_id": "e-7"})
    )

    doc = read_case(store, case_id)
    assert doc is not None
    assert (doc["school_urn"], doc["coordinator_id"]) == (100001, "e-7")
    assert doc["received_at"] == "2025-01-06T09:00:00Z"
    assert sorted(doc["facts"].values()) == ["CoordinatorAssigned", "RequestReceived"]


def test_an_intake_type_the_contract_does_not_know_is_only_noted(
    store: EventStore,
) -> None:
    case_id = new_case_id()
    fold(store, intake_record(case_id, "RequestReceived", REQUEST))

    fold(store, intake_record(case_id, "RequestReopened", {"anything": [1, 2]}))

    doc = read_case(store, case_id)
    assert doc is not None
    assert "RequestReopened" in doc["facts"].values()
    assert doc["school_urn"] == 100001


def test_the_summary_and_timeliness_count_only_the_valid_request(
    store: EventStore, client: TestClient
) -> None:
    good = new_case_id()
    garbage = intake_record(
        new_case_id(),
        "RequestReceived",
        {**REQUEST, "school_urn": 1, "received_at": "2025-02-30T00:00:00Z"},
    )
    with pytest.raises(ValidationError):
        fold(store, garbage)
    fold(store, intake_record(good, "RequestReceived", REQUEST))

    summary = client.get("/summary").json()
    timeliness = client.get(
        "/timeliness", params={"from": "2025-01-01", "to": "2025-12-31"}
    ).json()

    assert summary["cases"] == 1
    assert timeliness["cases"] == 1


# Through the projector's own subscriber and the broker --------------------------------


@pytest.mark.parametrize("backend", DURABLE)
def test_the_projector_dead_letters_a_bad_request_and_folds_the_next(
    kafka_bootstrap: str, tmp_path: Path, backend: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    intake_topic, clocks_topic = f"contract{tag}.intake", f"contract{tag}.clocks"
    letters = dead_letter_topic("deadlines", intake_topic)
    ensure_topics(
        kafka_bootstrap,
        [
            Topic(name, owner="deadlines", consumers=("test",), partitions=1)
            for name in (intake_topic, clocks_topic, letters)
        ],
    )
    bad_case, good_case = new_case_id(), new_case_id()
    bad = intake_record(bad_case, "RequestReceived", {**REQUEST, "school_urn": 1})
    good = intake_record(good_case, "RequestReceived", REQUEST)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for record in (bad, good):
        producer.send(
            intake_topic, key=record.key, value=record.value, headers=record.headers
        )
    producer.flush(30)
    producer.close()

    with durable_store(backend, tmp_path / "deadlines", SOURCE) as store:
        loops = projector_loops(
            store,
            bootstrap=kafka_bootstrap,
            app_id=f"contract-{tag}",
            clocks_topic=clocks_topic,
            intake_topic=intake_topic,
        )
        for loop in loops:
            loop.start()
        try:
            deadline = time.monotonic() + WAIT_S
            while read_case(store, good_case) is None:
                assert time.monotonic() < deadline, "the good request was not folded"
                time.sleep(0.2)
        finally:
            for loop in loops:
                loop.stop()
        assert read_case(store, bad_case) is None

    [letter] = read_all(kafka_bootstrap, letters)
    headers = dict(letter.headers)
    assert letter.value == bad.value
    assert headers["dlq_consumer"] == CONSUMER.encode()
    assert headers["dlq_error_type"] == b"ValidationError"
    assert b"school_urn" in headers["dlq_reason"]


def read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()
