"""Files and names for one development Kafka broker: layout, configs and cluster id.

Everything here is pure (or, for ports, asks only the loopback interface), so the rules
that make the broker fit a 2-core machine can be read and tested without a JVM.
"""

from __future__ import annotations

import base64
import random
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.3.1"
LOOPBACK = "127.0.0.1"
NODE_ID = 1

# The heap the upstream scripts give a broker; 256 MiB makes the log cleaner run out.
BROKER_HEAP = ("-Xms512m", "-Xmx1g")
# Upstream's G1 settings: short pauses matter more than throughput for a dev broker.
BROKER_GC = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
)
# The storage tool runs for a second; C1 alone starts it faster and it needs no more.
TOOL_JVM = ("-Xmx1g", "-XX:TieredStopAtLevel=1")

# Loggers that print a line per partition, request or config key; at INFO they bury
# the lines an operator reads (start, stop, errors, group joins) under hundreds more.
NOISY_LOGGERS = (
    "org.apache.kafka.common.config.AbstractConfig",
    "org.apache.kafka.common.utils.AppInfoParser",
    "org.apache.kafka.controller.ReplicationControlManager",
    "org.apache.kafka.controller.ConfigurationControlManager",
    "org.apache.kafka.image.loader.MetadataLoader",
    "org.apache.kafka.storage.internals.log",
    "state.change.logger",
    "kafka.cluster.Partition",
    "kafka.log.LogManager",
    "kafka.server.ReplicaFetcherManager",
    "kafka.request.logger",
    "kafka.network.RequestChannel$",
)


@dataclass(frozen=True, slots=True)
class BrokerLayout:
    """Where one broker keeps its files; all of them live inside its run directory."""

    run_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def tmp_dir(self) -> Path:
        return self.run_dir / "tmp"

    @property
    def server_properties(self) -> Path:
        return self.run_dir / "server.properties"

    @property
    def log4j_properties(self) -> Path:
        return self.run_dir / "log4j2.properties"

    @property
    def tools_log4j_properties(self) -> Path:
        return self.run_dir / "log4j2-tools.properties"

    @property
    def state_file(self) -> Path:
        """The cluster id and ports, so a restart in the same directory reuses them."""
        return self.run_dir / "launcher.json"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "broker.pid"

    @property
    def console_log(self) -> Path:
        """The JVM's stdout and stderr: log4j's console output and any JVM error."""
        return self.logs_dir / "kafka.out"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def meta_properties(self) -> Path:
        """Written by the storage tool; its presence means the storage is formatted."""
        return self.data_dir / "meta.properties"

    @property
    def ephemeral_marker(self) -> Path:
        """Present in run directories the launcher made itself and removes after use."""
        return self.run_dir / ".ephemeral"


def new_cluster_id() -> str:
    """A cluster id in Kafka's own ``Uuid`` text form: 16 random bytes, base64url.

    Like Kafka, redraw an id that starts with ``-``, which a command line would read as
    an option.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FROM = 20000  # below every common ephemeral range, above well-known ports


def ephemeral_ports() -> range:
    """The ports the kernel gives the local ends of outgoing connections (Linux's
    default if the range cannot be read)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port(exclude: Iterable[int] = ()) -> int:
    """A TCP port on loopback that nothing listens on now, outside the ephemeral range.

    The broker and the services need concrete ports: with port 0 the broker would bind
    before it is ready and could not advertise its address. A port from the ephemeral
    range, even one free now, can be taken a moment later as the local end of any
    process's outgoing connection (every Kafka client opens several), so the port is
    drawn at random from below that range. Another listener may still take it first;
    the launcher retries on that.
    """
    excluded = set(exclude)
    candidates = range(LISTEN_PORTS_FROM, ephemeral_ports().start)
    if len(candidates) >= 1000:
        for _ in range(200):
            port = random.choice(candidates)
            if port not in excluded and port_is_free(port):
                return port
    # An unusual ephemeral range, or a crowded machine: the kernel's choice.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOOPBACK, 0))
            port = int(probe.getsockname()[1])
        if port not in excluded:
            return port


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``port`` of the loopback address now.

    The probe binds as a server does, with ``SO_REUSEADDR``: connections a stopped
    listener left in TIME_WAIT (a quick restart of ``make run``) do not stop a new
    listener from binding the port, so they must not make it look taken either.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def server_properties(
    *,
    port: int,
    controller_port: int,
    data_dir: Path,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The configuration of one combined broker and controller on loopback.

    Sized for a 2-core machine and for tests: two network and two I/O threads, internal
    topics with one partition and one replica, no delay before the first rebalance.
    Topics are never created implicitly, so the registry's topics (and those a client
    creates through the admin API, as faust does) are the only ones.
    """
    if port <= 0 or controller_port <= 0:
        raise ValueError("the broker needs concrete ports, never 0")
    if port == controller_port:
        raise ValueError("the broker and controller ports must differ")
    broker = f"PLAINTEXT://{LOOPBACK}:{port}"
    controller = f"CONTROLLER://{LOOPBACK}:{controller_port}"
    config = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"{broker},{controller}",
        "advertised.listeners": f"{broker},{controller}",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        # One node: every internal topic has one replica and accepts writes with it.
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        # Fast group joins, and short session timeouts allowed for test consumers.
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        "auto.leader.rebalance.enable": "false",
        # Two cores: few threads. The cleaner's default 128 MiB buffer is heap we lack.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
    }
    config.update(overrides or {})
    return config


def render_properties(config: Mapping[str, str]) -> str:
    lines = [
        "# Written by devstack.kafka for one development broker; rewritten each start."
    ]
    lines += [f"{key}={value}" for key, value in config.items()]
    return "\n".join(lines) + "\n"


def broker_log4j2_properties(log_file: Path) -> str:
    """log4j2 for the broker: INFO to console and ``log_file``, noisy ones at WARN."""
    lines = [
        "status = warn",
        "name = devstack-kafka-broker",
        "appender.console.type = Console",
        "appender.console.name = CONSOLE",
        "appender.console.target = SYSTEM_OUT",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = [%d] %p %m (%c)%n",
        "appender.file.type = File",
        "appender.file.name = FILE",
        f"appender.file.fileName = {log_file}",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.console.ref = CONSOLE",
        "rootLogger.appenderRef.file.ref = FILE",
    ]
    for index, name in enumerate(NOISY_LOGGERS):
        lines.append(f"logger.noisy{index}.name = {name}")
        lines.append(f"logger.noisy{index}.level = WARN")
    return "\n".join(lines) + "\n"


def tools_log4j2_properties() -> str:
    """log4j2 for the storage tool: warnings and errors only, to the console."""
    return (
        "status = warn\n"
        "name = devstack-kafka-tools\n"
        "appender.console.type = Console\n"
        "appender.console.name = CONSOLE\n"
        "appender.console.target = SYSTEM_ERR\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = WARN\n"
        "rootLogger.appenderRef.console.ref = CONSOLE\n"
    )
