"""The deadlines worker (faust) and the ticker as processes: the heartbeat file the
deploy probes read, and SIGTERM under load.

The worker writes its heartbeat only after its table is recovered (its first progress
round follows the "ready" line), stops within its bound on SIGTERM, leaves its consumer
group, and restarted loses nothing: every case gets its decision clock, once in effect
(a repeat, if the stop caught a batch between publishing and committing, is the same
event with the same id). The ticker keeps its heartbeat while it sends.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from deadlines.entrypoints.worker import READY_MESSAGE
from deadlines.settings import DeadlinesSettings
from send_schemas.topics import PARTITIONS

from .shutdown_support import (
    Processes,
    TopicFollower,
    process_env,
    read_to_end,
    wait_for,
)
from .worker_support import decision_clocks, publish_requests, settings_on_own_topics

CASES = 600
BACKLOG = 200  # waiting when the worker starts; the rest arrive while it runs
FIRST_ROUND = "progress tracked from this first round after recovery"


@pytest.fixture
def settings(kafka_bootstrap: str) -> DeadlinesSettings:
    return settings_on_own_topics(kafka_bootstrap, "stop")


def send_requests(settings: DeadlinesSettings, cases: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        publish_requests(producer, settings.intake_topic, cases, actor="ehcco-stop")
    finally:
        producer.close()


@pytest.fixture
def clocks_topic(settings: DeadlinesSettings) -> Iterator[TopicFollower]:
    follower = TopicFollower(settings.kafka_bootstrap_servers, settings.clocks_topic)
    yield follower
    follower.close()


def group_members(bootstrap: str, group: str) -> list[Any]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        members: list[Any] = admin.describe_groups([group])[group]["members"]
    finally:
        admin.close()
    return members


@pytest.mark.timeout(480)  # two worker starts under load, and the wait for every clock
def test_the_worker_beats_after_recovery_and_stops_on_sigterm_losing_nothing(
    settings: DeadlinesSettings,
    tmp_path: Path,
    processes: Processes,
    clocks_topic: TopicFollower,
) -> None:
    app_id = f"deadlines-stop-{uuid.uuid4().hex[:8]}"
    heartbeat = tmp_path / "heartbeat"
    env = process_env(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        DEADLINES_APP_ID=app_id,
        DEADLINES_TOPIC_PREFIX=settings.topic_prefix,
        SEND_HEARTBEAT_FILE=heartbeat,
    )
    cases = [str(uuid.uuid4()) for _ in range(CASES)]
    send_requests(settings, cases[:BACKLOG])

    def keep_publishing() -> None:
        for start in range(BACKLOG, CASES, 10):
            send_requests(settings, cases[start : start + 10])
            time.sleep(0.05)

    # Under load: requests wait when it starts, and keep coming through the stop.
    first = processes.start(["-m", "deadlines", "worker"], env, tmp_path / "1.log")
    wait_for(lambda: heartbeat.exists(), "the first heartbeat")
    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    try:
        wait_for(
            lambda: len(decision_clocks(clocks_topic.read())) >= 20, "the first clocks"
        )
        first_code = first.terminate()
        members = group_members(settings.kafka_bootstrap_servers, app_id)
        clocked_at_stop = len(decision_clocks(clocks_topic.read()))
    finally:
        publisher.join()
    log = first.text()

    second = processes.start(["-m", "deadlines", "worker"], env, tmp_path / "2.log")
    missing: set[str] = set(cases)

    def every_case_clocked() -> bool:
        missing.clear()
        missing.update(set(cases) - set(decision_clocks(clocks_topic.read())))
        return not missing

    try:
        wait_for(every_case_clocked, "every case's decision clock", guard_s=200)
    except AssertionError as gave_up:
        raise AssertionError(
            f"{len(missing)} of {CASES} cases have no decision clock; the second "
            f"worker's log ends:\n{second.text()[-3000:]}"
        ) from gave_up
    second_code = second.terminate()
    clocks = decision_clocks(clocks_topic.read())

    assert first_code == 0, log[-3000:]
    assert second_code == 0, second.text()[-3000:]
    assert "deadlines worker stopped" in log
    assert clocked_at_stop < CASES, "the work was done before SIGTERM: add cases"
    assert members == [], "the stopped worker did not leave its consumer group"
    # The heartbeat file was first written after recovery, never before.
    assert log.index(READY_MESSAGE) < log.index(FIRST_ROUND)
    # Every case has its clock, once in effect: copies carry the same id and data.
    for case in cases:
        copies = clocks[case]
        assert len({event.id for event in copies}) == 1, case
        assert len({str(event.data) for event in copies}) == 1, case


def test_the_ticker_beats_while_it_sends_and_stops_on_sigterm(
    settings: DeadlinesSettings, tmp_path: Path, processes: Processes
) -> None:
    heartbeat = tmp_path / "heartbeat"
    env = process_env(
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        DEADLINES_TOPIC_PREFIX=settings.topic_prefix,
        SEND_HEARTBEAT_FILE=heartbeat,
    )

    ticker = processes.start(
        ["-m", "deadlines", "ticker", "--every", "0.2"], env, tmp_path / "ticker.log"
    )
    wait_for(lambda: ticker.text().count("ticks sent") >= 3, "three rounds")
    beating = heartbeat.exists()
    code = ticker.terminate()
    ticks = read_to_end(settings.kafka_bootstrap_servers, settings.ticks_topic)

    assert code == 0, ticker.text()[-3000:]
    assert beating
    assert "ticker stopped" in ticker.text()
    # Every round that was logged went to every partition, whole.
    assert len(ticks) % PARTITIONS == 0
    assert len(ticks) >= 3 * PARTITIONS
