"""The jar launcher with real broker JVMs: start, stop, restart, failure, no leftovers.

These tests start brokers of their own next to the session's one, because what they
check (a stop, a restart, a crash of the launcher) would break a shared broker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from devstack.kafka import KafkaBroker, start_broker
from devstack.kafka_errors import BrokerStartError
from devstack.kafka_topics import (
    admin_client,
    create_unique_topic,
    describe_cluster,
    unique_topic_name,
)

pytestmark = pytest.mark.kafka

# A bound wait for something the kernel does asynchronously; not a timed assertion.
JVM_EXIT_WAIT_S = 60.0


def jvm_runs(pid: int, run_dir: Path) -> bool:
    """Whether ``pid`` is a live process started for ``run_dir`` (not a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(run_dir).encode() in cmdline


def wait_until_gone(pid: int, run_dir: Path) -> bool:
    deadline = time.monotonic() + JVM_EXIT_WAIT_S
    while jvm_runs(pid, run_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def port_accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def broker() -> Iterator[KafkaBroker]:
    started = start_broker()
    yield started
    started.stop()


def test_a_started_broker_answers_as_its_own_cluster_and_logs(
    broker: KafkaBroker,
) -> None:
    cluster = describe_cluster(broker.bootstrap_servers)
    meta = broker.layout.meta_properties.read_text()

    assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
    assert cluster["cluster_id"] == broker.cluster_id
    assert f"cluster.id={broker.cluster_id}" in meta
    assert [b["port"] for b in cluster["brokers"]] == [broker.port]
    # The slf4j binding is what makes the broker log at all.
    assert "Kafka Server started" in broker.layout.server_log.read_text()
    assert broker.is_running()


def test_a_broker_refuses_implicit_topic_creation(broker: KafkaBroker) -> None:
    # kafka-python's producer asks for missing topics to be created; the broker says no.
    name = unique_topic_name("never-created")
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, max_block_ms=3000
    )
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(name, b"lost").get(timeout=10)
    finally:
        producer.close(timeout=5)

    with admin_client(broker.bootstrap_servers) as admin:
        assert name not in admin.list_topics()


def test_stop_ends_the_jvm_and_removes_an_ephemeral_run_dir() -> None:
    broker = start_broker()
    pid, run_dir, port = broker.pid, broker.run_dir, broker.port

    broker.stop()

    assert not jvm_runs(pid, run_dir)
    assert not Path(f"/proc/{pid}").exists()
    assert not port_accepts(port)
    assert not run_dir.exists()
    broker.stop()  # a second stop is harmless


def test_a_second_start_in_a_kept_run_dir_reuses_its_storage(tmp_path: Path) -> None:
    run_dir = tmp_path / "kafka"
    first = start_broker(run_dir=run_dir)
    try:
        topic = create_unique_topic(
            first.bootstrap_servers, "survives-restart", partitions=2
        )
    finally:
        first.stop()
    assert not jvm_runs(first.pid, first.run_dir)

    second = start_broker(run_dir=run_dir)
    try:
        with admin_client(second.bootstrap_servers) as admin:
            described = admin.describe_topics([topic])
    finally:
        second.stop()

    assert second.pid != first.pid
    assert second.cluster_id == first.cluster_id
    assert second.controller_port == first.controller_port
    assert len(described[0]["partitions"]) == 2
    assert run_dir.exists()
    assert not jvm_runs(second.pid, second.run_dir)


def test_a_broker_whose_port_is_taken_fails_fast_with_the_cause(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]

        with pytest.raises(BrokerStartError) as raised:
            start_broker(run_dir=tmp_path / "kafka", port=port)

    message = str(raised.value)
    assert "exited with code" in message
    assert f"failed to bind to 127.0.0.1:{port}: Address already in use" in message
    assert not _jvms_for(tmp_path / "kafka")


def test_a_bad_config_fails_at_format_with_the_tools_words(tmp_path: Path) -> None:
    with pytest.raises(BrokerStartError) as raised:
        start_broker(run_dir=tmp_path / "kafka", overrides={"num.io.threads": "two"})

    message = str(raised.value)
    assert "formatting Kafka storage" in message
    assert "num.io.threads" in message


def test_a_broker_not_ready_in_time_is_killed_and_reported(tmp_path: Path) -> None:
    with pytest.raises(BrokerStartError) as raised:
        start_broker(run_dir=tmp_path / "kafka", ready_timeout=0.1)

    assert "not ready after" in str(raised.value)
    assert not _jvms_for(tmp_path / "kafka")


CHILD = textwrap.dedent(
    """
    import sys
    from devstack.kafka import start_broker

    broker = start_broker()
    print(broker.pid, broker.run_dir, flush=True)
    if sys.argv[1] == "wait":
        sys.stdin.read()
    """
)


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_no_jvm_outlives_its_launcher(ending: str, tmp_path: Path) -> None:
    # A launcher that exits without stopping relies on atexit; one killed outright,
    # as a crashed pytest would be, on the JVM's parent-death signal.
    with (tmp_path / "child.log").open("wb") as child_log:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, "exit" if ending == "exit" else "wait"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=child_log,
        )
    assert child.stdout is not None
    line = child.stdout.readline().decode().split()
    assert line, (tmp_path / "child.log").read_text()
    pid, run_dir = int(line[0]), Path(line[1])
    try:
        if ending == "sigkill":
            assert jvm_runs(pid, run_dir)
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=JVM_EXIT_WAIT_S)

        assert wait_until_gone(pid, run_dir)
    finally:
        if jvm_runs(pid, run_dir):
            os.kill(pid, signal.SIGKILL)
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        if child.stdin is not None:
            child.stdin.close()
    if ending == "exit":
        assert not run_dir.exists()
    # A killed launcher cannot tidy up; the next start would sweep this; do not wait.
    shutil.rmtree(run_dir, ignore_errors=True)


def _jvms_for(run_dir: Path) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", f"kafka.Kafka {run_dir}"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]
