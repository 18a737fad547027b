"""A subscriber's liveness through the real broker: it is fine while it handles records
or has none waiting, and blocked when records wait behind its position and nothing is
handled (a handler that keeps failing, or a fetch that stalls, as faust's can).

The stall is judged from the rounds the subscriber records: ``Progress.waiting`` and
whether the round was fine; no test waits out the stall time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sendkit.envelope import ReceivedEvent
from sendkit.events import NewEvent
from sendkit.health import Progress, ProgressRegistry
from sendkit.relay import OutboxRelay
from sendkit.store import SQLiteEventStore, Transaction
from sendkit.subscriber import IdempotentSubscriber, RetryLater

RECORDS = 10
GUARD_S = 120.0  # against a hang only


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    opened = SQLiteEventStore(tmp_path / "side.db", "/send/tester")
    yield opened
    opened.close()


def publish(bootstrap: str, topic: str, path: Path, count: int) -> None:
    source = SQLiteEventStore(path, "/send/intake")
    try:
        for _ in range(count):
            source.append(
                str(uuid.uuid4()), 0, [NewEvent(type="send.intake.Noted.v1", data={})]
            )
        with OutboxRelay(source, topic, bootstrap, registry=CollectorRegistry()) as r:
            while r.run_once():
                pass
    finally:
        source.close()


def rounds_until(
    subscriber: IdempotentSubscriber,
    progress: Progress,
    done: Callable[[Progress], bool],
) -> None:
    """Run the subscriber on a thread until ``done(progress)``, then stop it."""
    stop = threading.Event()
    runner = threading.Thread(
        target=subscriber.run_forever, args=(stop,), kwargs={"progress": progress}
    )
    runner.start()
    deadline = time.monotonic() + GUARD_S
    try:
        while not done(progress):
            if time.monotonic() > deadline or not runner.is_alive():
                raise AssertionError(f"no such round: waiting={progress.waiting}")
            time.sleep(0.02)
    finally:
        stop.set()
        runner.join(GUARD_S)


def make_subscriber(
    bootstrap: str,
    topic: str,
    group: str,
    store: SQLiteEventStore,
    handler: Callable[[ReceivedEvent, Transaction], None],
    **options: object,
) -> IdempotentSubscriber:
    return IdempotentSubscriber(
        "tester",
        topic,
        bootstrap,
        group,
        store,
        handler,
        poll_timeout_ms=100,
        registry=CollectorRegistry(),
        **options,  # type: ignore[arg-type]
    )


def test_a_subscriber_that_handles_what_arrives_and_then_idles_is_fine(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    store: SQLiteEventStore,
    tmp_path: Path,
) -> None:
    topic = unique_topic(partitions=3)
    publish(kafka_bootstrap, topic, tmp_path / "intake.db", RECORDS)
    progress = ProgressRegistry().track("subscriber")
    handled: list[str] = []
    subscriber = make_subscriber(
        kafka_bootstrap,
        topic,
        unique_name("group"),
        store,
        lambda event, tx: handled.append(event.id),
    )

    # Handled everything, then at least one more poll with nothing waiting.
    rounds_until(
        subscriber,
        progress,
        lambda p: p.done_total == RECORDS and p.waiting == 0 and len(handled) > 0,
    )

    assert progress.done_total == RECORDS
    assert progress.last_fine == progress.last_round


def test_a_subscriber_whose_handler_keeps_failing_is_blocked_with_records_waiting(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    store: SQLiteEventStore,
    tmp_path: Path,
) -> None:
    topic = unique_topic(partitions=1)
    publish(kafka_bootstrap, topic, tmp_path / "intake.db", RECORDS)
    progress = ProgressRegistry().track("subscriber")

    def unavailable(event: ReceivedEvent, tx: Transaction) -> None:
        raise RetryLater("the directory is down (synthetic)")

    subscriber = make_subscriber(
        kafka_bootstrap,
        topic,
        unique_name("group"),
        store,
        unavailable,
        retry_initial_s=0.01,
        retry_max_s=0.02,
        retry_budget_s=0.05,
    )

    # Two rounds that gave up on their records: each rewound and handled none.
    rounds_until(
        subscriber,
        progress,
        lambda p: p.last_round is not None and p.last_round != p.last_fine,
    )

    # Polls before the first fetch knew of no lag (fine); since, the rounds blocked.
    assert progress.done_total == 0
    assert progress.waiting == RECORDS
    assert progress.last_round is not None
    assert progress.last_fine is None or progress.last_fine < progress.last_round


def test_a_subscriber_whose_fetching_stalls_with_lag_is_blocked(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    store: SQLiteEventStore,
    tmp_path: Path,
) -> None:
    topic = unique_topic(partitions=1)
    publish(kafka_bootstrap, topic, tmp_path / "intake.db", RECORDS)
    progress = ProgressRegistry().track("subscriber")
    subscriber: IdempotentSubscriber

    def handle_one_then_stall(event: ReceivedEvent, tx: Transaction) -> None:
        # After the first record the consumer stops fetching, as a consumer stuck
        # after a rebalance does; the fetch already made told it the high-water mark.
        consumer = subscriber._consumer
        consumer.pause(*consumer.assignment())

    subscriber = make_subscriber(
        kafka_bootstrap,
        topic,
        unique_name("group"),
        store,
        handle_one_then_stall,
        max_records=1,
    )

    rounds_until(
        subscriber,
        progress,
        lambda p: p.done_total >= 1 and p.last_round != p.last_fine,
    )

    assert progress.waiting is not None
    assert 0 < progress.waiting <= RECORDS - progress.done_total
    assert progress.last_round is not None
    assert progress.last_fine is not None  # the round that handled the first record
    assert progress.last_fine < progress.last_round
