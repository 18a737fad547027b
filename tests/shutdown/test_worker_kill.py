"""The deadlines worker killed with SIGKILL mid-stream, again and again, loses nothing.

At least once means: an input's offset is committed, and its progress saved in the
case table, only once the clock events it caused are on Kafka. A worker killed at
any moment must then, once restarted, publish every case's decision clock. The test
publishes a backlog, keeps publishing while it kills the worker a few times (each
kill lands wherever the worker happens to be: applying, publishing, writing its
table or committing), and waits until every case has its decision ``ClockSet``.

faust's group settings come from its own environment names (``BROKER_SESSION_TIMEOUT``
and friends), so the killed member leaves the group after seconds, not a minute.

A restarted worker has been seen, under heavy load, to make no progress at all after
its recovery, logging only that inputs wait; its heartbeat then goes stale and the
deployment's liveness probe restarts it. The test applies the same rule (sooner), so
what it proves is the guarantee the deployment gives: nothing lost, with a stalled
worker restarted by its supervisor. The stall itself is a known limit (README).
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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
# The deployment restarts a worker whose heartbeat is 300 s old; the test, sooner.
STALE_HEARTBEAT_S = 60.0
ACTOR = "ehcco-kill"


@pytest.fixture
def settings(kafka_bootstrap: str) -> DeadlinesSettings:
    return settings_on_own_topics(kafka_bootstrap, "kill")


@pytest.fixture
def clocks_topic(settings: DeadlinesSettings) -> Iterator[TopicFollower]:
    follower = TopicFollower(settings.kafka_bootstrap_servers, settings.clocks_topic)
    yield follower
    follower.close()


@pytest.mark.timeout(
    1500
)  # four worker starts under load, and the wait for every clock
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

    starts = 0
    restarted_stalled: list[str] = []

    def start() -> Process:
        nonlocal starts
        heartbeat = tmp_path / f"{starts}.heartbeat"
        made = processes.start(
            ["-m", "deadlines", "worker"],
            {**env, "SEND_HEARTBEAT_FILE": str(heartbeat)},
            tmp_path / f"{starts}.log",
        )
        made.heartbeat = heartbeat  # type: ignore[attr-defined]
        starts += 1
        return made

    publisher = threading.Thread(target=keep_publishing)
    logs: list[str] = []
    worker = start()
    started_at = time.monotonic()

    def supervised(condition: Callable[[], bool]) -> Callable[[], bool]:
        """``condition``, with the deployment's liveness rule applied meanwhile: a
        worker whose heartbeat has gone stale (it made no progress while inputs
        waited) is killed and started again, as its probe would have it."""

        def check() -> bool:
            nonlocal worker, started_at
            if condition():
                return True
            heartbeat: Path = worker.heartbeat  # type: ignore[attr-defined]
            beat = heartbeat.stat().st_mtime if heartbeat.exists() else None
            last = max(beat or 0.0, time.time() - (time.monotonic() - started_at))
            if time.time() - last > STALE_HEARTBEAT_S:
                restarted_stalled.append(worker.text())
                worker.kill()
                worker = start()
                started_at = time.monotonic()
            return False

        return check

    publisher.start()
    try:
        for run in range(KILLS):
            wait_for(
                functools.partial(worker.said, READY_MESSAGE), f"worker {run} ready"
            )
            wanted = min(clocked() + PROGRESS_BETWEEN_KILLS, CASES)
            wait_for(
                supervised(functools.partial(has_clocks, wanted)),
                f"clocks from worker {run}",
                guard_s=400,
            )
            worker.kill()  # SIGKILL: no commit, no flush, no goodbye
            logs.append(worker.text())
            worker = start()
            started_at = time.monotonic()
        publisher.join()
        missing: set[str] = set(cases)

        def every_case_clocked() -> bool:
            missing.clear()
            missing.update(set(cases) - set(decision_clocks(clocks_topic.read())))
            return not missing

        try:
            wait_for(
                supervised(every_case_clocked),
                "every case's decision clock",
                guard_s=400,
            )
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
