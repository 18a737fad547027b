"""Fixtures every test folder shares: one real Kafka broker per test run, unique names.

``kafka_bootstrap`` ("127.0.0.1:<port>") takes, in order: the broker named by
``KAFKA_BOOTSTRAP_SERVERS``; an ``apache/kafka`` container through testcontainers when a
Docker engine answers a short probe; a broker run from Maven Central's jars by
``devstack.kafka``. The project's topics are created on it in every case. When no broker
can be had the fixture raises, so a test that needs Kafka fails and never skips. Every
test that uses the fixture gets the ``kafka`` marker (``pytest -m kafka``).

The container path is written to the image's documented settings but has not run here
(this machine has a Docker client and no engine); the other two paths are tested.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator

import pytest

from devstack.kafka import start_broker
from devstack.kafka_config import free_port, new_cluster_id
from devstack.kafka_topics import create_project_topics, create_unique_topic

# postgres_dsn and postgres_database: a real PostgreSQL, see tests/postgres_fixture.py;
# local_issuer, auth_env, mint: OIDC tokens, see tests/auth_fixtures.py.
pytest_plugins = ["postgres_fixture", "auth_fixtures"]

# Faust makes a data folder per app ("<app id>-data") in the working directory even
# with in-memory tables; the apps and worker processes of tests put theirs in one
# temporary folder instead of the checkout. Faust reads FAUST_DATADIR when it is first
# imported, which no module imported above does, and subprocesses inherit it.
os.environ.setdefault(
    "FAUST_DATADIR",
    os.path.join(tempfile.mkdtemp(prefix="send-faust-"), "{conf.name}-data"),
)

log = logging.getLogger("tests.kafka_fixture")

KAFKA_IMAGE = "apache/kafka:4.3.1"
DOCKER_PROBE_TIMEOUT_S = 2.0
CONTAINER_START_TIMEOUT_S = 120
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The bootstrap address of the test run's one broker, with the project's topics."""
    with contextlib.ExitStack() as cleanup:
        bootstrap = (
            _kafka_from_env()
            or _kafka_from_docker(cleanup)
            or _kafka_from_jars(cleanup)
        )
        create_project_topics(bootstrap)
        yield bootstrap


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A factory of names no other test uses: ``unique_name("group")``.

    The name carries the test's own name, to find its traces on a shared broker, and a
    uuid suffix; it is valid as a topic name, a group id and a transactional id.
    """
    slug = _test_slug(request)

    def make(kind: str = "name") -> str:
        return f"{kind}.{slug}.{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def unique_topic(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> Callable[..., str]:
    """A factory of extra, uniquely named topics: ``unique_topic(partitions=3)``.

    The topic has one partition and infinite retention unless asked otherwise.
    """
    slug = _test_slug(request)

    def make(partitions: int = 1, *, retention_ms: int = -1) -> str:
        return create_unique_topic(
            kafka_bootstrap,
            f"topic.{slug}",
            partitions=partitions,
            retention_ms=retention_ms,
        )

    return make


def _test_slug(request: pytest.FixtureRequest) -> str:
    return _SLUG_UNSAFE.sub("-", request.node.name.lower()).strip("-")[:40] or "test"


def _kafka_from_env() -> str | None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if bootstrap:
        log.info("tests use the Kafka at KAFKA_BOOTSTRAP_SERVERS=%s", bootstrap)
    return bootstrap or None


def _docker_engine_answers() -> bool:
    """Whether a Docker engine answers; a client alone (as here) is not enough."""
    try:
        import docker  # type: ignore[import-untyped]
        import requests
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=DOCKER_PROBE_TIMEOUT_S)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (docker.errors.DockerException, requests.RequestException, OSError):
        return False


def _kafka_from_docker(cleanup: contextlib.ExitStack) -> str | None:
    if not _docker_engine_answers():
        return None
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    # The host port is published on loopback only and advertised as is, so clients on
    # this machine reach the broker at the address it gives them.
    port = free_port()
    env = {
        "CLUSTER_ID": new_cluster_id(),
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        ),
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_envs(**env)
        .waiting_for(
            LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(
                CONTAINER_START_TIMEOUT_S
            )
        )
    )
    # testcontainers binds all interfaces; docker-py takes (address, port) for one.
    container.ports["9092/tcp"] = ("127.0.0.1", port)  # type: ignore[assignment]
    cleanup.enter_context(container)
    log.info("tests use Kafka in a container (%s) on 127.0.0.1:%d", KAFKA_IMAGE, port)
    return f"127.0.0.1:{port}"


def _kafka_from_jars(cleanup: contextlib.ExitStack) -> str:
    broker = start_broker()
    cleanup.callback(broker.stop)
    log.info(
        "tests use a Kafka broker run from jars at %s (pid %d)",
        broker.bootstrap_servers,
        broker.pid,
    )
    return broker.bootstrap_servers
