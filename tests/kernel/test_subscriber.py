"""The idempotent subscriber through the real broker: once in effect, poison set aside.

Each test has its own topic and dead-letter topic, its own consumer group, and its own
SQLite store for the subscriber's side, so tests never see each other's records.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pydantic
import pytest
from prometheus_client import CollectorRegistry

from sendkit.envelope import ReceivedEvent, to_kafka
from sendkit.events import Metadata, NewEvent, RecordedEvent, new_id
from sendkit.relay import OutboxRelay
from sendkit.store import SQLiteEventStore, StoreUnavailable, Transaction
from sendkit.subscriber import IdempotentSubscriber, PollOutcome, Unprocessable

from .kafka_support import (
    READ_DEADLINE_S,
    committed,
    create_dead_letter_topic,
    produce,
    read_topic_to_end,
)

CONSUMER = "tester"
SECRET = "Synthetic Child Name"  # must never reach a log line


class Decision(pydantic.BaseModel):
    """A tolerant reader model a handler might validate incoming data with."""

    outcome: str
    decided_on: str


@dataclass
class Recorder:
    """A handler that appends one event per event it handles, and can be told to fail.

    ``data["fail"]`` picks the failure: ``unprocessable``, ``value``, ``validation``,
    ``key``, ``bug`` (a RuntimeError), or ``transient:<n>`` (fail the first n times).
    """

    handled: list[str] = field(default_factory=list)
    calls: int = 0
    obey_failures: bool = True

    def __call__(self, event: ReceivedEvent, tx: Transaction) -> None:
        self.calls += 1
        stream = f"derived-{event.subject}"
        tx.append(
            stream,
            len(tx.read_stream(stream)),
            [
                NewEvent(
                    type="send.tester.SourceNoted.v1",
                    data={"source_id": event.id},
                    metadata=Metadata(
                        "system", event.metadata.correlation_id, causation_id=event.id
                    ),
                )
            ],
        )
        failure = str(event.data.get("fail", "")) if self.obey_failures else ""
        if failure == "unprocessable":
            raise Unprocessable("the request names no school: cannot place it")
        if failure == "value":
            raise ValueError(f"bad year group for {event.data.get('name')}")
        if failure == "validation":
            Decision.model_validate(event.data)
        if failure == "key":
            event.data["missing"]
        if failure == "bug":
            raise RuntimeError("a bug in the handler")
        if failure.startswith("transient:") and self.calls <= int(failure[10:]):
            raise StoreUnavailable("the store is briefly locked")
        self.handled.append(event.id)


def envelope(
    case: str, version: int, data: dict[str, object]
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    event = RecordedEvent(
        id=new_id(),
        stream_id=case,
        version=version,
        position=version,
        type="send.intake.Noted.v1",
        source="/send/intake",
        time=datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
        data=data,
        metadata=Metadata("staff-1", f"corr-{case}-{version}"),
    )
    record = to_kafka(event)
    return record.key, record.value, record.headers


def ce_id(record: tuple[bytes, bytes, list[tuple[str, bytes]]]) -> str:
    return dict(record[2])["ce_id"].decode()


@dataclass
class Setup:
    bootstrap: str
    topic: str
    dead_letters: str
    store: SQLiteEventStore
    registry: CollectorRegistry
    group: Callable[[], str]
    subscribers: list[IdempotentSubscriber] = field(default_factory=list)

    def subscriber(
        self, handler: Callable[[ReceivedEvent, Transaction], None], **options: object
    ) -> IdempotentSubscriber:
        made = IdempotentSubscriber(
            CONSUMER,
            self.topic,
            self.bootstrap,
            self.group(),
            self.store,
            handler,
            registry=self.registry,
            poll_timeout_ms=200,
            consumer_config={"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
            **options,  # type: ignore[arg-type]
        )
        self.subscribers.append(made)
        return made


@pytest.fixture
def setup(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[Setup]:
    topic = unique_topic(partitions=1)
    dead_letters = create_dead_letter_topic(kafka_bootstrap, CONSUMER, topic)
    store = SQLiteEventStore(tmp_path / "tester.db", "/send/tester")
    made = Setup(
        kafka_bootstrap,
        topic,
        dead_letters,
        store,
        CollectorRegistry(),
        lambda: unique_name("group"),
    )
    yield made
    for subscriber in made.subscribers:
        subscriber.close()
    store.close()


def poll_until(subscriber: IdempotentSubscriber, records: int) -> PollOutcome:
    """Poll until ``records`` records are finished with; the summed outcome."""
    total = PollOutcome()
    deadline = time.monotonic() + READ_DEADLINE_S
    while total.records < records:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {total.records} of {records} records came")
        got = subscriber.poll_once()
        total = PollOutcome(
            total.handled + got.handled,
            total.duplicates + got.duplicates,
            total.dead_lettered + got.dead_lettered,
            total.rewound or got.rewound,
        )
    return total


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record's message and its extra fields, as one text."""
    return "\n".join(
        f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records
    )


def committed_offset(subscriber: IdempotentSubscriber) -> int | None:
    return committed(subscriber.bootstrap, subscriber.group_id, subscriber.topic)


# --- a member left without partitions -------------------------------------------------


def test_a_member_left_without_partitions_joins_again_and_takes_the_records(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = (envelope("case-1", v, {"n": v}) for v in (1, 2))
    produce(setup.bootstrap, setup.topic, [first])
    subscriber = setup.subscriber(Recorder(), unassigned_rejoin_s=0.5)
    poll_until(subscriber, 1)
    # What kafka-python 3.0.12 can leave behind after a join cut short: a member of a
    # stable group with no partition, which would fetch nothing again.
    subscriber._consumer._subscription.assign_from_subscribed([])
    produce(setup.bootstrap, setup.topic, [second])

    with caplog.at_level(logging.WARNING, logger="sendkit.subscriber"):
        outcome = poll_until(subscriber, 1)

    assert outcome == PollOutcome(handled=1)
    assert "joining again" in everything_logged(caplog)
    assert subscriber._consumer.assignment()


def test_a_member_with_its_partition_never_joins_again(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    produce(setup.bootstrap, setup.topic, [envelope("case-1", 1, {"n": 1})])
    subscriber = setup.subscriber(Recorder(), unassigned_rejoin_s=0.2)
    poll_until(subscriber, 1)

    with caplog.at_level(logging.WARNING, logger="sendkit.subscriber"):
        for _ in range(5):  # a second of empty polls
            subscriber.poll_once()

    assert "joining again" not in everything_logged(caplog)


# --- handling once --------------------------------------------------------------------


def test_each_event_is_handled_once_and_its_appends_kept(setup: Setup) -> None:
    records = [envelope("case-1", v, {"n": v}) for v in (1, 2, 3)]
    produce(setup.bootstrap, setup.topic, records)
    handler = Recorder()
    subscriber = setup.subscriber(handler)

    outcome = poll_until(subscriber, 3)

    assert outcome == PollOutcome(handled=3)
    assert handler.handled == [ce_id(r) for r in records]
    derived = setup.store.read_stream("derived-case-1")
    assert [e.data["source_id"] for e in derived] == handler.handled
    assert derived[0].metadata.causation_id == ce_id(records[0])
    assert derived[0].metadata.correlation_id == "corr-case-1-1"
    with setup.store.transaction() as tx:
        assert all(tx.is_processed(CONSUMER, ce_id(r)) for r in records)
    assert committed_offset(subscriber) == 3


def test_a_redelivered_event_is_handled_once(setup: Setup) -> None:
    first = envelope("case-1", 1, {"n": 1})
    produce(setup.bootstrap, setup.topic, [first, first])  # the same ce_id twice
    handler = Recorder()
    subscriber = setup.subscriber(handler)

    outcome = poll_until(subscriber, 2)

    assert outcome == PollOutcome(handled=1, duplicates=1)
    assert handler.handled == [ce_id(first)]
    assert len(setup.store.read_stream("derived-case-1")) == 1
    assert (
        setup.registry.get_sample_value(
            "sendkit_subscriber_messages_total",
            {"consumer": CONSUMER, "topic": setup.topic, "outcome": "duplicate"},
        )
        == 1
    )


def test_a_replay_from_offset_zero_changes_nothing(setup: Setup) -> None:
    records = [envelope("case-1", v, {"n": v}) for v in (1, 2)]
    produce(setup.bootstrap, setup.topic, records)
    poll_until(setup.subscriber(Recorder()), 2)
    before = setup.store.read_all()

    # A new group starts from the beginning, as after an offset reset.
    handler = Recorder()
    outcome = poll_until(setup.subscriber(handler), 2)

    assert outcome == PollOutcome(duplicates=2)
    assert handler.calls == 0
    assert setup.store.read_all() == before


def test_events_relayed_from_another_store_are_handled_end_to_end(
    setup: Setup, tmp_path: Path
) -> None:
    source = SQLiteEventStore(tmp_path / "intake.db", "/send/intake")
    appended = source.append(
        "case-9", 0, [NewEvent("send.intake.Noted.v1", {"n": n}) for n in range(5)]
    )
    with OutboxRelay(source, setup.topic, setup.bootstrap) as relay:
        relay.run_once()
    source.close()
    handler = Recorder()

    poll_until(setup.subscriber(handler), 5)

    assert handler.handled == [event.id for event in appended]


def test_run_forever_handles_until_stopped(setup: Setup) -> None:
    records = [envelope("case-3", v, {"n": v}) for v in (1, 2)]
    produce(setup.bootstrap, setup.topic, records)
    handler = Recorder()
    subscriber = setup.subscriber(handler)
    stop = threading.Event()
    runner = threading.Thread(target=subscriber.run_forever, args=(stop,))

    runner.start()
    deadline = time.monotonic() + READ_DEADLINE_S
    while len(handler.handled) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.join(timeout=READ_DEADLINE_S)

    assert not runner.is_alive()
    assert handler.handled == [ce_id(r) for r in records]
    assert committed_offset(subscriber) == 2


# --- transient failures ---------------------------------------------------------------


def test_a_transient_failure_is_retried_not_dead_lettered(setup: Setup) -> None:
    record = envelope("case-1", 1, {"fail": "transient:2"})
    produce(setup.bootstrap, setup.topic, [record])
    handler = Recorder()
    subscriber = setup.subscriber(handler, retry_initial_s=0.01, retry_max_s=0.05)

    outcome = poll_until(subscriber, 1)

    assert outcome == PollOutcome(handled=1)
    assert handler.calls == 3
    assert handler.handled == [ce_id(record)]
    # The failed attempts' appends were rolled back; only the last one is kept.
    assert len(setup.store.read_stream("derived-case-1")) == 1
    assert read_topic_to_end(setup.bootstrap, setup.dead_letters) == []
    assert (
        setup.registry.get_sample_value(
            "sendkit_subscriber_retries_total",
            {
                "consumer": CONSUMER,
                "topic": setup.topic,
                "error_type": "StoreUnavailable",
            },
        )
        == 2
    )


def test_a_transient_failure_past_the_budget_rewinds_and_polls_again(
    setup: Setup,
) -> None:
    records = [
        envelope("case-1", 1, {"fail": "transient:3"}),
        envelope("case-1", 2, {}),
    ]
    produce(setup.bootstrap, setup.topic, records)
    handler = Recorder()
    subscriber = setup.subscriber(
        handler, retry_initial_s=0.01, retry_max_s=0.01, retry_budget_s=0.0
    )

    # The first attempt gives up at once; a later poll starts again at that record.
    first = PollOutcome()
    while first.records == 0 and not first.rewound:
        first = subscriber.poll_once()
    rest = poll_until(subscriber, 2)

    assert first.rewound
    assert first.records == 0
    assert rest.handled == 2
    assert handler.handled == [ce_id(r) for r in records]
    assert committed_offset(subscriber) == 2


# --- poison ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail", "error_type", "reason"),
    [
        ("unprocessable", "Unprocessable", "the request names no school"),
        ("value", "ValueError", "bad year group"),
        ("validation", "ValidationError", "outcome: Field required"),
        ("key", "KeyError", "missing key 'missing'"),
    ],
)
def test_a_handler_failure_dead_letters_the_event_and_the_next_is_handled(
    setup: Setup,
    caplog: pytest.LogCaptureFixture,
    fail: str,
    error_type: str,
    reason: str,
) -> None:
    poison = envelope("case-1", 1, {"fail": fail, "name": SECRET})
    after = envelope("case-1", 2, {"n": 2})
    produce(setup.bootstrap, setup.topic, [poison, after])
    handler = Recorder()
    subscriber = setup.subscriber(handler)

    with caplog.at_level(logging.INFO):
        outcome = poll_until(subscriber, 2)

    assert outcome == PollOutcome(handled=1, dead_lettered=1)
    assert handler.handled == [ce_id(after)]
    # The poison's own append was rolled back with its transaction.
    derived = setup.store.read_stream("derived-case-1")
    assert [e.data["source_id"] for e in derived] == [ce_id(after)]
    with setup.store.transaction() as tx:
        assert not tx.is_processed(CONSUMER, ce_id(poison))
    assert committed_offset(subscriber) == 2

    (dead,) = read_topic_to_end(setup.bootstrap, setup.dead_letters)
    headers = dict(dead.headers)
    assert dead.key == poison[0]
    assert dead.value == poison[1]
    assert dead.headers[: len(poison[2])] == poison[2]
    assert reason in headers["dlq_reason"].decode()
    assert headers["dlq_error_type"] == error_type.encode()
    assert headers["dlq_source_topic"] == setup.topic.encode()
    assert headers["dlq_source_partition"] == b"0"
    assert headers["dlq_source_offset"] == b"0"
    assert headers["dlq_consumer"] == CONSUMER.encode()

    assert (
        setup.registry.get_sample_value(
            "sendkit_subscriber_dead_letters_total",
            {"consumer": CONSUMER, "topic": setup.topic, "error_type": error_type},
        )
        == 1
    )
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].__dict__["event_id"] == ce_id(poison)
    assert errors[0].__dict__["dead_letter_topic"] == setup.dead_letters
    assert SECRET not in everything_logged(caplog)


def test_garbage_bytes_are_dead_lettered_and_the_next_event_handled(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    after = envelope("case-2", 1, {"n": 1})
    no_headers: list[tuple[str, bytes]] = []
    garbage = (b"\x00\x01", b"\xde\xad\xbe\xef " + SECRET.encode(), no_headers)
    half_valid = (after[0], b"{not json " + SECRET.encode(), after[2])
    produce(setup.bootstrap, setup.topic, [garbage, half_valid, after])
    handler = Recorder()
    subscriber = setup.subscriber(handler)

    with caplog.at_level(logging.INFO):
        outcome = poll_until(subscriber, 3)

    assert outcome == PollOutcome(handled=1, dead_lettered=2)
    assert handler.calls == 1
    assert handler.handled == [ce_id(after)]
    assert committed_offset(subscriber) == 3

    first, second = read_topic_to_end(setup.bootstrap, setup.dead_letters)
    assert (first.key, first.value) == (garbage[0], garbage[1])
    assert dict(first.headers)["dlq_error_type"] == b"InvalidEnvelope"
    assert b"content-type is missing" in dict(first.headers)["dlq_reason"]
    assert dict(first.headers)["dlq_source_offset"] == b"0"
    assert second.value == half_valid[1]
    assert b"not JSON" in dict(second.headers)["dlq_reason"]
    assert dict(second.headers)["dlq_source_offset"] == b"1"
    # The original headers travel with the dead letter, ahead of the dlq_* ones.
    assert second.headers[: len(after[2])] == after[2]
    assert SECRET not in everything_logged(caplog)
    reasons = [r.__dict__.get("reason", "") for r in caplog.records]
    assert any("not JSON" in reason for reason in reasons)


def test_an_unexpected_handler_error_stops_without_committing(setup: Setup) -> None:
    bug = envelope("case-1", 1, {"fail": "bug"})
    produce(setup.bootstrap, setup.topic, [bug])
    subscriber = setup.subscriber(Recorder())

    with pytest.raises(RuntimeError, match="a bug in the handler"):
        poll_until(subscriber, 1)

    assert committed_offset(subscriber) is None
    assert read_topic_to_end(setup.bootstrap, setup.dead_letters) == []
    subscriber.close()

    # A fixed release picks the record up again, since nothing was committed.
    fixed = Recorder(obey_failures=False)
    group = subscriber.group_id
    again = IdempotentSubscriber(
        CONSUMER, setup.topic, setup.bootstrap, group, setup.store, fixed
    )
    setup.subscribers.append(again)
    outcome = poll_until(again, 1)

    assert outcome == PollOutcome(handled=1)
    assert fixed.calls == 1
    assert json.loads(bug[1]) == {"fail": "bug"}


def test_run_forever_reports_an_unexpected_error_by_type_and_raises_it(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    produce(setup.bootstrap, setup.topic, [envelope("case-1", 1, {"fail": "bug"})])
    subscriber = setup.subscriber(Recorder())

    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError):
        subscriber.run_forever(threading.Event())

    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.__dict__["error_type"] == "RuntimeError"
    assert "a bug in the handler" not in everything_logged(caplog)
