"""The deadlines ticker as a process rides out a Kafka outage longer than a minute.

The test runs a broker of its own (``devstack.kafka``) in a kept directory, so it can
stop it and start it again on the same port with the same data. The ticker sends
rounds, the broker goes away for longer than the producer's 60 s ``max_block_ms``,
and when the broker is back on the same port the ticker, still the same process,
sends rounds again. Through the outage its heartbeat file stays fresh: a round that
fails because Kafka is away is no reason for the liveness probe to restart it (it used
to count as work waiting, so the file aged until the probe restarted the process).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from deadlines.settings import DeadlinesSettings
from devstack.kafka import KafkaBroker, start_broker
from devstack.kafka_topics import ensure_topics
from send_schemas.topics import PARTITIONS, Topic

from .shutdown_support import Processes, process_env, read_to_end, wait_for

pytestmark = pytest.mark.kafka

# Longer than kafka-python's max_block_ms (60 s), after which the ticker used to end.
OUTAGE_S = 75.0


def test_the_ticker_keeps_trying_through_an_outage_and_sends_when_kafka_is_back(
    tmp_path: Path, processes: Processes
) -> None:
    run_dir = tmp_path / "kafka"
    broker: KafkaBroker | None = start_broker(run_dir=run_dir)
    try:
        assert broker is not None
        port = broker.port
        settings = DeadlinesSettings(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic_prefix=f"outage{uuid.uuid4().hex[:8]}.",
        )
        ensure_topics(
            broker.bootstrap_servers,
            [
                Topic(
                    name, owner="deadlines", consumers=("test",), partitions=PARTITIONS
                )
                for name in (*settings.domain_topics, settings.ticks_topic)
            ],
        )
        heartbeat = tmp_path / "heartbeat"
        env = process_env(
            KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            DEADLINES_TOPIC_PREFIX=settings.topic_prefix,
            SEND_HEARTBEAT_FILE=heartbeat,
        )
        ticker = processes.start(
            ["-m", "deadlines", "ticker", "--every", "0.5"],
            env,
            tmp_path / "ticker.log",
        )
        wait_for(lambda: ticker.text().count("ticks sent") >= 2, "two rounds")

        broker.stop()
        broker = None
        sent_before = ticker.text().count("ticks sent")
        wait_for(lambda: heartbeat.exists(), "the heartbeat file")
        beat_at_outage = heartbeat.stat().st_mtime
        time.sleep(OUTAGE_S)
        alive_through_outage = ticker.popen.poll() is None
        beat_after_outage = heartbeat.stat().st_mtime
        broker = start_broker(run_dir=run_dir, port=port)
        wait_for(
            lambda: (
                ticker.text().count("ticks sent") > sent_before
                or ticker.popen.poll() is not None
            ),
            "a round after the broker came back",
            guard_s=180.0,
        )
        sent_after = ticker.text().count("ticks sent")
        code = ticker.terminate()
        ticks = read_to_end(broker.bootstrap_servers, settings.ticks_topic)
    finally:
        if broker is not None:
            broker.stop()

    log = ticker.text()
    assert alive_through_outage, log[-3000:]
    assert beat_after_outage > beat_at_outage, log[-3000:]
    assert sent_after > sent_before, log[-3000:]
    assert "ticks not sent" in log
    assert code == 0, log[-3000:]
    # The rounds before and after the outage are on the topic, each one whole.
    assert len(ticks) >= (sent_before + 1) * PARTITIONS
