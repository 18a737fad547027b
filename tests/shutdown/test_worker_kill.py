"""The deadlines worker killed with SIGKILL mid-stream, again and again, loses nothing.

At least once means: an input's offset is committed, and its progress saved in the
case table, only once the clock events it caused are on Kafka. A worker killed at
any moment must then, once restarted, publish every case's decision clock. The test
publishes a backlog, keeps publishing while it kills the worker a few times (each
kill lands wherever the worker happens to be: applying, publishing, writing its
table or committing), and waits until every case has its decision ``ClockSet``.

faust's group settings come from its own environment names (``BROKER_SESSION_TIMEOUT``
and friends), so the killed member leaves the group after seconds, not a minute.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from deadlines.entrypoints.worker import READY_MESSAGE
from deadlines.settings import DeadlinesSettings

from .shutdown_support import Process, Processes, TopicFollower, process_env, wait_for
from .worker_support import decision_clocks, publish_requests, settings_on_own_topics

CASES = 360
BACKLOG = 120  # waiting when the worker first starts; the rest arrive while it runs
KILLS = 3
# Clocks that must appear between two kills, so each kill lands mid-stream.
PROGRESS_BETWEEN_KILLS = 30
ACTOR = "ehcco-kill"


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


@pytest.fixture
def settings(kafka_bootstrap: str) -> DeadlinesSettings:
    return settings_on_own_topics(kafka_bootstrap, "kill")


@pytest.fixture
def clocks_topic(settings: DeadlinesSettings) -> Iterator[TopicFollower]:
    follower = TopicFollower(settings.kafka_bootstrap_servers, settings.clocks_topic)
    yield follower
    follower.close()


@pytest.mark.timeout(900)  # four worker starts under load, and the wait for every clock
def test_a_worker_killed_mid_stream_again_and_again_loses_no_case(
    settings: DeadlinesSettings,
    tmp_path: Path,
    processes: Processes,
    clocks_topic: TopicFollower,
) -> None:
    app_id = f"deadlines-kill-{uuid.uuid4().hex[:8]}"
    env = process_env(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        DEADLINES_APP_ID=app_id,
        DEADLINES_TOPIC_PREFIX=settings.topic_prefix,
        BROKER_SESSION_TIMEOUT="10",
        BROKER_HEARTBEAT_INTERVAL="1",
        BROKER_REBALANCE_TIMEOUT="10",
    )
    cases = [str(uuid.uuid4()) for _ in range(CASES)]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    publish_requests(producer, settings.intake_topic, cases[:BACKLOG], actor=ACTOR)
    stop_publishing = threading.Event()

    def keep_publishing() -> None:
        for start in range(BACKLOG, CASES, 5):
            if stop_publishing.is_set():
                return
            publish_requests(
                producer, settings.intake_topic, cases[start : start + 5], actor=ACTOR
            )
            time.sleep(0.1)

    def clocked() -> int:
        return len(decision_clocks(clocks_topic.read()))

    def has_clocks(count: int) -> bool:
        return clocked() >= count

    def start(run: int) -> Process:
        return processes.start(
            ["-m", "deadlines", "worker"], env, tmp_path / f"{run}.log"
        )

    publisher = threading.Thread(target=keep_publishing)
    logs: list[str] = []
    worker = start(0)
    publisher.start()
    try:
        for run in range(KILLS):
            wait_for(
                functools.partial(worker.said, READY_MESSAGE), f"worker {run} ready"
            )
            wanted = min(clocked() + PROGRESS_BETWEEN_KILLS, CASES)
            wait_for(
                functools.partial(has_clocks, wanted),
                f"clocks from worker {run}",
                guard_s=240,
            )
            worker.kill()  # SIGKILL: no commit, no flush, no goodbye
            logs.append(worker.text())
            worker = start(run + 1)
        publisher.join()
        missing: set[str] = set(cases)

        def every_case_clocked() -> bool:
            missing.clear()
            missing.update(set(cases) - set(decision_clocks(clocks_topic.read())))
            return not missing

        try:
            wait_for(every_case_clocked, "every case's decision clock", guard_s=300)
        except AssertionError as gave_up:
            raise AssertionError(
                f"{len(missing)} of {CASES} cases have no decision clock after "
                f"{KILLS} kills; the last worker's log ends:\n{worker.text()[-3000:]}"
            ) from gave_up
    finally:
        stop_publishing.set()
        publisher.join()
        producer.close()
    clocks = decision_clocks(clocks_topic.read())

    assert clocked() == CASES
    assert not [log for log in logs if "Crashed" in log], "an agent crashed"
    # Once in effect: a repeat after a kill is the same event, id and data.
    for case in cases:
        copies = clocks[case]
        assert len({event.id for event in copies}) == 1, case
        assert len({str(event.data) for event in copies}) == 1, case
