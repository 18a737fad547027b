"""The launcher's pure parts: cluster ids, broker config, log excerpts, jar cache."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
from pathlib import Path

import pytest

from devstack.issuer import LocalIssuer
from devstack.kafka import COMPLETE_MARKER, failure_excerpt, fetch_jars, repo_root
from devstack.kafka_config import (
    KAFKA_VERSION,
    LISTEN_PORTS_FROM,
    LOOPBACK,
    broker_log4j2_properties,
    ephemeral_ports,
    free_port,
    new_cluster_id,
    port_is_free,
    server_properties,
)
from devstack.kafka_errors import JarFetchError


def test_cluster_ids_are_kafka_uuids_that_never_look_like_an_option() -> None:
    ids = [new_cluster_id() for _ in range(500)]

    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert len(set(ids)) == len(ids)


def test_broker_config_is_one_loopback_node_sized_for_two_cores(tmp_path: Path) -> None:
    config = server_properties(port=19092, controller_port=19093, data_dir=tmp_path)

    assert config["process.roles"] == "broker,controller"
    assert config["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    )
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert "controller.quorum.voters" not in config
    assert config["auto.create.topics.enable"] == "false"
    assert config["num.io.threads"] == config["num.network.threads"] == "2"
    assert config["offsets.topic.num.partitions"] == "1"
    assert config["group.initial.rebalance.delay.ms"] == "0"
    assert config["log.cleaner.dedupe.buffer.size"] == str(32 * 1024 * 1024)


def test_broker_config_refuses_port_zero_and_shared_ports(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="never 0"):
        server_properties(port=0, controller_port=19093, data_dir=tmp_path)
    with pytest.raises(ValueError, match="differ"):
        server_properties(port=19092, controller_port=19092, data_dir=tmp_path)


def test_overrides_replace_generated_lines(tmp_path: Path) -> None:
    config = server_properties(
        port=19092,
        controller_port=19093,
        data_dir=tmp_path,
        overrides={"num.io.threads": "3"},
    )

    assert config["num.io.threads"] == "3"


def test_free_ports_are_concrete_and_honour_exclusions() -> None:
    first = free_port()
    second = free_port(exclude={first})

    assert first > 0
    assert second > 0
    assert second != first


def test_free_ports_lie_below_the_ephemeral_range_no_connection_can_take() -> None:
    ephemeral = ephemeral_ports()
    ports = {free_port() for _ in range(50)}

    assert ephemeral.start > LISTEN_PORTS_FROM  # this machine has room below it
    assert all(LISTEN_PORTS_FROM <= port < ephemeral.start for port in ports), ports
    assert all(port_is_free(port) for port in ports)


@pytest.mark.parametrize("reuse", [False, True], ids=["plain", "so_reuseaddr"])
def test_a_port_something_listens_on_is_not_free(reuse: bool) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        # Servers (uvicorn, http.server) listen with SO_REUSEADDR, as the probe binds.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        taken = int(listener.getsockname()[1])

        assert not port_is_free(taken)


def _time_wait_ports() -> set[int]:
    """The local ports of this machine's IPv4 TCP connections in TIME_WAIT."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "06":
            found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return found


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free() -> None:
    port = free_port()
    issuer = LocalIssuer(port=port).start()
    with socket.create_connection((LOOPBACK, port)) as client:
        client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        # Read to the end: the server closes first, so its side is left in TIME_WAIT.
        while client.recv(4096):
            pass
    issuer.stop()
    assert port in _time_wait_ports()

    assert port_is_free(port)
    # And it is: the issuer starts again on the same port at once.
    with LocalIssuer(port=port) as again:
        assert again.url.endswith(f":{port}")


def test_broker_logging_writes_a_file_at_info_with_noisy_loggers_at_warn(
    tmp_path: Path,
) -> None:
    text = broker_log4j2_properties(tmp_path / "server.log")

    assert f"appender.file.fileName = {tmp_path / 'server.log'}" in text
    assert "rootLogger.level = INFO" in text
    assert "logger.noisy0.level = WARN" in text


def test_failure_excerpt_leads_with_the_first_error_when_the_tail_misses_it() -> None:
    log = ["[t] INFO starting (x)"] * 5
    log += ["[t] ERROR Unable to start acceptor (kafka.network.DataPlaneAcceptor)"]
    log += ["[t] INFO shutting down (y)"] * 100

    excerpt = failure_excerpt("\n".join(log), lines=40)

    assert excerpt.startswith("(first error)\n[t] ERROR Unable to start acceptor")
    assert excerpt.splitlines()[-1] == "[t] INFO shutting down (y)"
    assert len(excerpt.splitlines()) < 60


def test_failure_excerpt_is_the_plain_tail_when_the_error_is_in_it() -> None:
    log = ["[t] INFO a (x)"] * 50 + ["[t] ERROR boom (z)"]

    excerpt = failure_excerpt("\n".join(log), lines=40)

    assert "(first error)" not in excerpt
    assert excerpt.splitlines()[-1] == "[t] ERROR boom (z)"


def _fake_checkout(tmp_path: Path) -> Path:
    pom = tmp_path / "tools" / "kafka" / "pom.xml"
    pom.parent.mkdir(parents=True)
    shutil.copy(repo_root() / "tools" / "kafka" / "pom.xml", pom)
    return tmp_path


def test_a_complete_cache_is_reused_without_running_maven(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path)
    libs = root / ".cache" / f"kafka-{KAFKA_VERSION}" / "libs"
    libs.mkdir(parents=True)
    digest = hashlib.sha256(
        (root / "tools" / "kafka" / "pom.xml").read_bytes()
    ).hexdigest()
    (libs / COMPLETE_MARKER).write_text(digest + "\n")

    assert fetch_jars(root=root, mvn="/nonexistent/mvn") == libs


def test_a_cache_from_another_pom_is_fetched_again(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path)
    libs = root / ".cache" / f"kafka-{KAFKA_VERSION}" / "libs"
    libs.mkdir(parents=True)
    (libs / COMPLETE_MARKER).write_text("digest-of-an-older-pom\n")

    with pytest.raises(JarFetchError, match="install Maven"):
        fetch_jars(root=root, mvn="/nonexistent/mvn")
