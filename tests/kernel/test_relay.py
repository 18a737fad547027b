"""The outbox relay through the real broker: append, relay, consume; and crash, resume.

Every record is checked twice, by kafka-python and by ``kcat`` (librdkafka, a client
that shares no code with ours), so a mistake in our own decoding cannot hide one in our
encoding.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from sendkit.envelope import ReceivedEvent, from_kafka
from sendkit.events import Metadata, NewEvent, RecordedEvent
from sendkit.relay import OutboxRelay, PublishFailed
from sendkit.store import SQLiteEventStore, Transaction
from sendkit.subscriber import IdempotentSubscriber, PollOutcome

from .kafka_support import READ_DEADLINE_S, read_topic_to_end

SOURCE = "/send/intake"
FREE_LOOPBACK_PORT = "127.0.0.1:9"  # discard port: nothing listens there


def some_events(store: SQLiteEventStore) -> list[RecordedEvent]:
    """Three cases, with private details, a causation id on some and not on others."""
    recorded: list[RecordedEvent] = []
    for n, case in enumerate(["case-a1", "case-b2", "case-c3"]):
        recorded += store.append(
            case,
            0,
            [
                NewEvent(
                    type="send.intake.RequestReceived.v1",
                    data={"school_urn": f"10000{n}", "year_group": n + 3},
                    metadata=Metadata(actor="staff-17", correlation_id=f"corr-{n}"),
                    private={"child_name": f"Synthetic Child {n}"},
                ),
                NewEvent(
                    type="send.intake.AssessmentDecided.v2",
                    data={"outcome": "assess", "decided_on": "2026-04-0" + str(n + 1)},
                    metadata=Metadata("system", f"corr-{n}", causation_id=f"cmd-{n}"),
                ),
            ],
        )
    return recorded


def expected_headers(event: RecordedEvent) -> dict[str, bytes]:
    headers = {
        "ce_specversion": b"1.0",
        "ce_id": event.id.encode(),
        "ce_source": SOURCE.encode(),
        "ce_type": event.type.encode(),
        "ce_time": event.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode(),
        "ce_subject": event.stream_id.encode(),
        "ce_partitionkey": event.stream_id.encode(),
        "content-type": b"application/json",
        "ce_actor": event.metadata.actor.encode(),
        "ce_correlationid": event.metadata.correlation_id.encode(),
        "ce_sequence": str(event.version).encode(),
    }
    if event.metadata.causation_id is not None:
        headers["ce_causationid"] = event.metadata.causation_id.encode()
    return headers


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    opened = SQLiteEventStore(tmp_path / "intake.db", SOURCE)
    yield opened
    opened.close()


# --- append, relay, consume -----------------------------------------------------------


def test_relayed_events_carry_the_data_and_every_header(
    kafka_bootstrap: str, unique_topic: Callable[..., str], store: SQLiteEventStore
) -> None:
    topic = unique_topic(partitions=6)
    appended = some_events(store)
    registry = CollectorRegistry()

    with OutboxRelay(store, topic, kafka_bootstrap, registry=registry) as relay:
        published = relay.run_once()
        again = relay.run_once()

    assert published == len(appended)
    assert again == 0
    assert store.get_checkpoint(f"relay:{topic}") == appended[-1].position
    assert registry.get_sample_value(
        "sendkit_relay_published_total", {"topic": topic}
    ) == len(appended)
    assert registry.get_sample_value("sendkit_relay_lag_events", {"topic": topic}) == 0

    records = read_topic_to_end(kafka_bootstrap, topic)
    assert len(records) == len(appended)
    by_id = {event.id: event for event in appended}
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in records:
        headers = dict(record.headers)
        event = by_id[headers["ce_id"].decode()]
        assert len(record.headers) == len(headers), "a header appears twice"
        assert headers == expected_headers(event)
        assert record.key == event.stream_id.encode()
        assert json.loads(record.value) == event.data
        assert b"Synthetic Child" not in record.value
        partitions[event.stream_id].add(record.partition)

        received = from_kafka(record)
        assert (received.id, received.type, received.subject) == (
            event.id,
            event.type,
            event.stream_id,
        )
        assert received.time == event.time
        assert received.metadata == event.metadata
        assert received.sequence == event.version
    assert all(len(found) == 1 for found in partitions.values())
    for case in ("case-a1", "case-b2", "case-c3"):
        sequences = [
            int(dict(r.headers)["ce_sequence"])
            for r in records
            if r.key == case.encode()
        ]
        assert sequences == [1, 2]


def test_kcat_reads_the_same_records(
    kafka_bootstrap: str, unique_topic: Callable[..., str], store: SQLiteEventStore
) -> None:
    kcat = shutil.which("kcat")
    if kcat is None:
        pytest.fail("kcat is not installed: run `apt-get install -y kcat` and rerun")
    topic = unique_topic(partitions=6)
    appended = some_events(store)
    with OutboxRelay(store, topic, kafka_bootstrap) as relay:
        relay.run_once()

    # -J prints one JSON object a record: key, payload and headers as a flat
    # [name, value, name, value, ...] list.
    result = subprocess.run(
        [
            *(kcat, "-C", "-b", kafka_bootstrap, "-t", topic),
            *("-o", "beginning", "-e", "-J", "-q"),
        ],
        capture_output=True,
        text=True,
        timeout=READ_DEADLINE_S,
        check=True,
    )

    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == len(appended)
    by_id = {event.id: event for event in appended}
    seen = set()
    for line in lines:
        flat = line["headers"]
        headers = dict(zip(flat[0::2], flat[1::2], strict=True))
        event = by_id[headers["ce_id"]]
        seen.add(event.id)
        assert len(flat) == 2 * len(headers), "a header appears twice"
        assert {k: v.encode() for k, v in headers.items()} == expected_headers(event)
        assert line["key"] == event.stream_id
        assert json.loads(line["payload"]) == event.data
        assert "Synthetic Child" not in line["payload"]
    assert seen == set(by_id)


def test_run_forever_publishes_what_is_appended_while_it_runs(
    kafka_bootstrap: str, unique_topic: Callable[..., str], store: SQLiteEventStore
) -> None:
    topic = unique_topic(partitions=6)
    first = some_events(store)
    relay = OutboxRelay(store, topic, kafka_bootstrap)
    stop = threading.Event()
    runner = threading.Thread(target=relay.run_forever, args=(stop, 0.05))
    runner.start()
    try:
        wait_until_records_appear(kafka_bootstrap, topic, len(first))
        later = store.append("case-a1", 2, [NewEvent("send.intake.Noted.v1", {"n": 3})])
        wait_until_records_appear(kafka_bootstrap, topic, len(first) + 1)
    finally:
        stop.set()
        runner.join(timeout=READ_DEADLINE_S)

    assert not runner.is_alive()
    assert relay.checkpoint == later[0].position
    assert store.get_checkpoint(f"relay:{topic}") == later[0].position
    records = read_topic_to_end(kafka_bootstrap, topic)
    assert [dict(r.headers)["ce_id"].decode() for r in records].count(later[0].id) == 1


def test_the_relay_process_stops_cleanly_on_sigterm(
    kafka_bootstrap: str, unique_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = unique_topic(partitions=6)
    path = tmp_path / "intake.db"
    store = SQLiteEventStore(path, SOURCE)
    appended = some_events(store)
    store.close()

    relay = start_relay(path, topic, kafka_bootstrap, 500)
    try:
        wait_until_records_appear(kafka_bootstrap, topic, len(appended))
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=READ_DEADLINE_S)

    relay_log = (tmp_path / "relay.log").read_text()
    assert relay.returncode == 0, relay_log[-2000:]
    assert "relay asked to stop by signal" in relay_log
    assert "relay stopped" in relay_log
    store = SQLiteEventStore(path, SOURCE)
    assert store.get_checkpoint(f"relay:{topic}") == appended[-1].position
    store.close()


# --- failures without a broker --------------------------------------------------------


def test_an_unreachable_broker_fails_the_round_and_keeps_the_checkpoint(
    store: SQLiteEventStore,
) -> None:
    some_events(store)
    relay = OutboxRelay(
        store,
        "send.intake.events",
        FREE_LOOPBACK_PORT,
        producer_config={"bootstrap_timeout_ms": 500, "max_block_ms": 500},
    )

    with pytest.raises(PublishFailed, match="KAFKA_BOOTSTRAP_SERVERS"):
        relay.run_once()

    assert store.get_checkpoint("relay:send.intake.events") == 0
    assert relay.lag() == 6
    relay.close()


def test_nothing_to_publish_needs_no_broker(store: SQLiteEventStore) -> None:
    relay = OutboxRelay(store, "send.intake.events", FREE_LOOPBACK_PORT)

    assert relay.run_once() == 0
    assert relay.lag() == 0


@pytest.mark.parametrize(
    "unsafe",
    [
        {"acks": 1},
        {"enable_idempotence": False},
        {"max_in_flight_requests_per_connection": 6},
        {"retries": 0},
        {"value_serializer": str.encode},
    ],
)
def test_settings_that_could_lose_or_reorder_events_are_refused(
    store: SQLiteEventStore, unsafe: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="lose or reorder"):
        OutboxRelay(store, "t", FREE_LOOPBACK_PORT, producer_config=unsafe)


# --- the crash test -------------------------------------------------------------------

CASES = 6
EVENTS_PER_CASE = 1000
KILL_AFTER_SEEN = 300


def fill_store(path: Path) -> list[RecordedEvent]:
    store = SQLiteEventStore(path, SOURCE)
    appended: list[RecordedEvent] = []
    try:
        # Cases interleave in the global order, as they would in a real service.
        for chunk in range(0, EVENTS_PER_CASE, 50):
            for case in range(CASES):
                appended += store.append(
                    f"case-{case}",
                    chunk,
                    [
                        NewEvent(
                            type="send.intake.Noted.v1",
                            data={"case": case, "n": chunk + i + 1},
                            private={"note": "synthetic"},
                        )
                        for i in range(50)
                    ],
                )
    finally:
        store.close()
    return appended


def start_relay(
    path: Path, topic: str, bootstrap: str, batch_size: int, *extra: str
) -> subprocess.Popen[bytes]:
    # The log goes to a file: an unread pipe could fill and stall the relay.
    log = (path.parent / "relay.log").open("ab")
    try:
        return subprocess.Popen(
            [
                *(
                    sys.executable,
                    "-m",
                    "sendkit.relay",
                    "--store",
                    f"sqlite:///{path}",
                ),
                *("--topic", topic, "--source", SOURCE, "--bootstrap", bootstrap),
                *("--batch-size", str(batch_size), "--poll-interval", "0.05"),
                *("--log-format", "text", *extra),
            ],
            stdout=log,
            stderr=log,
        )
    finally:
        log.close()


def wait_until_records_appear(bootstrap: str, topic: str, count: int) -> None:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        seen = 0
        deadline = time.monotonic() + READ_DEADLINE_S
        while seen < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the relay published only {seen} records")
            seen += sum(len(r) for r in consumer.poll(timeout_ms=100).values())
    finally:
        consumer.close(autocommit=False)


@pytest.mark.parametrize(
    "batch_size",
    [
        pytest.param(100_000, id="killed-inside-one-batch"),
        pytest.param(250, id="killed-between-batches"),
    ],
)
def test_a_relay_killed_mid_publish_resumes_without_loss_or_reordering(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    batch_size: int,
) -> None:
    topic = unique_topic(partitions=6)
    path = tmp_path / "intake.db"
    appended = fill_store(path)
    total = len(appended)

    # Kill the relay with SIGKILL once it is visibly publishing.
    relay = start_relay(path, topic, kafka_bootstrap, batch_size)
    try:
        wait_until_records_appear(kafka_bootstrap, topic, KILL_AFTER_SEEN)
    finally:
        os.kill(relay.pid, signal.SIGKILL)
        relay.wait()
    assert relay.returncode == -signal.SIGKILL
    store = SQLiteEventStore(path, SOURCE)
    checkpoint_at_kill = store.get_checkpoint(f"relay:{topic}")
    store.close()
    on_wire_at_kill = len(read_topic_to_end(kafka_bootstrap, topic))
    assert checkpoint_at_kill < total, (
        "the relay finished before it was killed, so nothing was tested: "
        "raise EVENTS_PER_CASE"
    )

    # Restart it and let it catch up.
    restarted = start_relay(
        path, topic, kafka_bootstrap, batch_size, "--until-caught-up"
    )
    _, stderr = restarted.communicate(timeout=READ_DEADLINE_S)
    assert restarted.returncode == 0, stderr.decode()[-2000:]

    records = read_topic_to_end(kafka_bootstrap, topic)
    ids = [dict(r.headers)["ce_id"].decode() for r in records]
    repeats = len(ids) - len(set(ids))
    assert set(ids) == {event.id for event in appended}, "an event was lost"
    assert len(set(ids)) == total

    # After dropping repeats, each case's events are in stream order on one partition.
    first_copy: dict[str, Any] = {}
    per_case: dict[bytes, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for record, event_id in zip(records, ids, strict=True):
        partitions[record.key].add(record.partition)
        if event_id in first_copy:
            earlier = first_copy[event_id]
            assert (record.key, record.value, record.headers) == (
                earlier.key,
                earlier.value,
                earlier.headers,
            ), "a repeat differs from the first copy"
            continue
        first_copy[event_id] = record
        per_case[record.key].append(json.loads(record.value)["n"])
    assert all(len(found) == 1 for found in partitions.values())
    assert sorted(per_case) == sorted(f"case-{c}".encode() for c in range(CASES))
    for numbers in per_case.values():
        assert numbers == list(range(1, EVENTS_PER_CASE + 1))
    print(
        f"crash test ({batch_size=}): {total} events, {on_wire_at_kill} on Kafka and "
        f"checkpoint {checkpoint_at_kill} at the kill, {repeats} sent twice"
    )
    counts = Counter(ids)
    assert max(counts.values()) <= 2

    # The kernel's own subscriber, deduplicating on ce_id, handles each event once.
    handled: dict[str, list[int]] = defaultdict(list)

    def handle(event: ReceivedEvent, tx: Transaction) -> None:
        handled[event.subject].append(event.data["n"])

    consumer_store = SQLiteEventStore(tmp_path / "consumer.db", "/send/consumer")
    subscriber = IdempotentSubscriber(
        "crashcheck",
        topic,
        kafka_bootstrap,
        unique_name("group"),
        consumer_store,
        handle,
    )
    outcome = PollOutcome()
    deadline = time.monotonic() + READ_DEADLINE_S
    while outcome.records < len(records) and time.monotonic() < deadline:
        got = subscriber.poll_once()
        outcome = PollOutcome(
            outcome.handled + got.handled, outcome.duplicates + got.duplicates
        )
    subscriber.close()
    consumer_store.close()
    assert outcome == PollOutcome(handled=total, duplicates=repeats)
    assert sorted(handled) == [f"case-{c}" for c in range(CASES)]
    for numbers in handled.values():
        assert numbers == list(range(1, EVENTS_PER_CASE + 1))
    # What the kill left behind explains the repeats: everything after the
    # checkpoint that had reached Kafka was sent again.
    assert repeats == on_wire_at_kill - checkpoint_at_kill
