"""Process health: progress of the loops, the heartbeat file the deploy probes read,
``/healthz`` failing on a stalled loop, and the relay's and the faust timer's rounds.

Time is an input here (a clock the test moves), so nothing waits for real seconds; the
probe itself is the exact command of the generated manifests, run as a process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from fastapi.testclient import TestClient
from kafka.structs import TopicPartition

from sendkit.events import NewEvent
from sendkit.health import (
    HealthSettings,
    Heartbeat,
    Progress,
    ProgressRegistry,
    faust_round,
    loops_alive,
    start_heartbeat,
    store_answers,
)
from sendkit.relay import OutboxRelay
from sendkit.store import SQLiteEventStore
from sendkit.web import create_app

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "127.0.0.1:9"  # the discard port: nothing listens there
STALL_S = 300.0


class Clock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> ProgressRegistry:
    return ProgressRegistry(clock)


# --- what counts as progress ----------------------------------------------------------


def test_a_loop_that_works_or_finds_nothing_to_do_never_stalls(
    registry: ProgressRegistry, clock: Clock
) -> None:
    busy = registry.track("relay")
    idle = registry.track("subscriber")

    for _ in range(10):
        clock.advance(100)
        busy.record(5, 20)
        idle.record(0, 0)

    assert registry.stalled(STALL_S) == []
    assert busy.done_total == 50


def test_a_loop_with_work_waiting_and_nothing_done_stalls_after_the_stall_time(
    registry: ProgressRegistry, clock: Clock
) -> None:
    stuck = registry.track("relay")
    stuck.record(3, 0)

    clock.advance(STALL_S - 1)
    stuck.record(0, 12)
    before = registry.stalled(STALL_S)
    clock.advance(2)
    stuck.record(0, 12)

    assert before == []
    assert registry.stalled(STALL_S) == [stuck]
    assert stuck.waiting == 12


def test_a_broker_that_is_down_with_no_work_known_is_no_stall(
    registry: ProgressRegistry, clock: Clock
) -> None:
    cut_off = registry.track("subscriber")

    for _ in range(10):
        clock.advance(100)
        cut_off.record(0, None)  # a poll that got nothing and knows no lag

    assert registry.stalled(STALL_S) == []


def test_a_loop_that_never_had_a_fine_round_counts_from_when_it_was_tracked(
    registry: ProgressRegistry, clock: Clock
) -> None:
    stuck = registry.track("relay")
    stuck.record(0, 4)
    clock.advance(STALL_S + 1)

    assert registry.stalled(STALL_S) == [stuck]
    assert registry.report(STALL_S)["relay"]["fine_yet"] is False


def test_an_untracked_loop_no_longer_counts(
    registry: ProgressRegistry, clock: Clock
) -> None:
    with registry.tracking("relay") as stuck:
        stuck.record(0, 4)
        clock.advance(STALL_S + 1)
        inside = registry.stalled(STALL_S)

    assert inside == [stuck]
    assert registry.stalled(STALL_S) == []
    assert registry.loops() == []


# --- the heartbeat file ---------------------------------------------------------------


def probe_command() -> list[str]:
    """The liveness probe of a relay Deployment, as the generated manifest has it."""
    documents = yaml.safe_load_all((REPO / "deploy/base/apps/intake.yaml").read_text())
    for document in documents:
        if document and document["metadata"]["name"] == "intake-relay":
            if document["kind"] != "Deployment":
                continue
            container = document["spec"]["template"]["spec"]["containers"][0]
            return list(container["livenessProbe"]["exec"]["command"])
    raise AssertionError("deploy/base/apps/intake.yaml has no intake-relay Deployment")


def probe_passes(command: list[str], path: Path) -> bool:
    arguments = [str(path) if part == "/tmp/heartbeat" else part for part in command]
    arguments[0] = sys.executable
    return subprocess.run(arguments, check=False, capture_output=True).returncode == 0


def test_the_file_appears_only_once_every_loop_has_had_a_fine_round(
    registry: ProgressRegistry, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "heartbeat"
    path.write_text("left by the container before this one")
    first, second = registry.track("relay"), registry.track("subscriber")

    heartbeat = Heartbeat(path, registry).start()
    removed = not path.exists()
    first.record(1, 0)
    after_one = path.exists()
    clock.advance(5)
    second.record(0, 0)
    heartbeat.stop()

    assert removed
    assert not after_one
    assert path.stat().st_mtime == pytest.approx(clock.now - 5, abs=0.01)


def test_the_file_keeps_the_time_of_the_oldest_fine_round(
    registry: ProgressRegistry, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "heartbeat"
    moving, stuck = registry.track("plans"), registry.track("intake")
    heartbeat = Heartbeat(path, registry).start()
    moving.record(1, 0)
    stuck.record(1, 0)
    stuck_since = clock.now

    for _ in range(4):
        clock.advance(100)
        moving.record(2, 0)
        stuck.record(0, 7)
    while_stuck = path.stat().st_mtime
    clock.advance(10)
    stuck.record(7, 0)
    heartbeat.stop()

    assert while_stuck == pytest.approx(stuck_since, abs=0.01)
    assert path.stat().st_mtime == pytest.approx(clock.now - 10, abs=0.01)


def test_the_deploy_probe_fails_until_a_fine_round_and_once_it_is_too_old(
    tmp_path: Path,
) -> None:
    command = probe_command()
    path = tmp_path / "heartbeat"
    clock = Clock(time.time() - 400)  # the loop's last fine round was 400 s ago
    registry = ProgressRegistry(clock)
    loop = registry.track("relay")
    heartbeat = Heartbeat(path, registry).start()
    missing = probe_passes(command, path)

    loop.record(1, 0)
    stale = probe_passes(command, path)
    clock.now = time.time()
    loop.record(0, 3)  # blocked now: the file keeps the old round's time
    still_stale = probe_passes(command, path)
    loop.record(3, 0)
    fresh = probe_passes(command, path)
    heartbeat.stop()

    assert command[-1] == "300"
    assert not missing
    assert not stale
    assert not still_stale
    assert fresh


def test_no_heartbeat_file_is_kept_unless_one_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SEND_HEARTBEAT_FILE", raising=False)
    unset = start_heartbeat(HealthSettings())
    monkeypatch.setenv("SEND_HEARTBEAT_FILE", str(tmp_path / "beat"))
    named = start_heartbeat(HealthSettings(), ProgressRegistry())

    assert unset is None
    assert named is not None
    assert named.path == tmp_path / "beat"
    named.stop()


def test_the_health_settings_have_the_documented_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SEND_SHUTDOWN_TIMEOUT_SECONDS", "SEND_STALL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEND_HEARTBEAT_FILE", "/tmp/heartbeat")

    settings = HealthSettings()

    assert settings.shutdown_timeout_seconds == 20
    assert settings.stall_seconds == 300
    assert settings.heartbeat_file == Path("/tmp/heartbeat")


# --- /healthz and /readyz -------------------------------------------------------------


def test_healthz_fails_naming_a_stalled_loop_and_recovers_with_it(
    registry: ProgressRegistry, clock: Clock
) -> None:
    app = create_app("things", progress=registry, stall_after_s=STALL_S)
    relay = registry.track("relay send.things.events")
    relay.record(0, 9)
    with TestClient(app) as client:
        clock.advance(STALL_S - 1)
        early = client.get("/healthz")
        clock.advance(2)
        stalled = client.get("/healthz")
        relay.record(9, 0)
        recovered = client.get("/healthz")

    assert early.status_code == 200
    assert stalled.status_code == 503
    body = stalled.json()
    assert "relay send.things.events" in body["detail"]
    assert body["loops"]["relay send.things.events"]["waiting"] == 9
    assert recovered.status_code == 200
    assert recovered.json() == {"status": "ok", "service": "things"}


def test_healthz_ignores_a_loop_cut_off_from_kafka_with_nothing_waiting(
    registry: ProgressRegistry, clock: Clock
) -> None:
    app = create_app("things", progress=registry, stall_after_s=STALL_S)
    subscriber = registry.track("subscriber things")
    with TestClient(app) as client:
        for _ in range(5):
            clock.advance(100)
            subscriber.record(0, None)
        answer = client.get("/healthz")

    assert answer.status_code == 200


def test_the_readiness_helpers_check_the_store_and_the_loops(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "things.db", "/send/things")
    running = threading.Event()
    alive = SimpleNamespace(is_alive=lambda: True)
    dead = SimpleNamespace(is_alive=running.is_set)
    app = create_app(
        "things",
        readiness_checks={
            "event_store": store_answers(store),
            "loops": loops_alive(lambda: [alive, dead]),
        },
        progress=ProgressRegistry(),
    )
    with TestClient(app) as client:
        unready = client.get("/readyz")
        running.set()
        ready = client.get("/readyz")
        store.close()
        closed = client.get("/readyz")

    assert unready.status_code == 503
    assert unready.json()["checks"] == {"event_store": "ok", "loops": "failed"}
    assert ready.status_code == 200
    assert closed.status_code == 503
    assert closed.json()["checks"]["event_store"].startswith("failed")


# --- the relay's rounds ---------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    opened = SQLiteEventStore(tmp_path / "intake.db", "/send/intake")
    yield opened
    opened.close()


def run_relay_until(
    relay: OutboxRelay, registry: ProgressRegistry, done: Callable[[Progress], bool]
) -> Progress:
    """Run the relay on a thread until ``done(progress)`` holds, then stop it."""
    progress = registry.track("relay")
    stop = threading.Event()
    runner = threading.Thread(
        target=relay.run_forever, args=(stop, 0.01), kwargs={"progress": progress}
    )
    runner.start()
    deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
    while not done(progress) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    runner.join(60)
    assert not runner.is_alive()
    return progress


def test_a_relay_that_cannot_publish_waiting_events_is_blocked(
    store: SQLiteEventStore, registry: ProgressRegistry
) -> None:
    store.append("case-1", 0, [NewEvent(type="send.intake.Noted.v1", data={})] * 3)
    relay = OutboxRelay(
        store,
        "send.intake.events",
        NOWHERE,
        producer_config={"bootstrap_timeout_ms": 200, "max_block_ms": 200},
    )

    progress = run_relay_until(relay, registry, lambda p: p.last_round is not None)

    assert progress.waiting == 3
    assert progress.last_fine is None
    assert store.get_checkpoint("relay:send.intake.events") == 0


def test_a_relay_with_nothing_to_publish_is_fine_without_a_broker(
    store: SQLiteEventStore, registry: ProgressRegistry
) -> None:
    relay = OutboxRelay(store, "send.intake.events", NOWHERE)

    progress = run_relay_until(relay, registry, lambda p: p.last_round is not None)

    assert progress.last_fine is not None
    assert progress.waiting == 0


# --- the faust timer's rounds ---------------------------------------------------------


class FakeFaustConsumer:
    """The two things ``faust_round`` reads of faust's consumer, set by the test."""

    def __init__(self) -> None:
        self.highwaters: dict[Any, int | None] = {}
        self._committed_offset: dict[Any, int | None] = {}

    def assignment(self) -> set[Any]:
        return set(self.highwaters)

    def highwater(self, tp: Any) -> int | None:
        return self.highwaters[tp]


def tp(topic: str, partition: int = 0) -> TopicPartition:
    return TopicPartition(topic, partition)


def test_a_faust_round_counts_commits_and_the_lag_of_the_input_topics() -> None:
    consumer = FakeFaustConsumer()
    inputs, other, changelog = tp("send.intake.events"), tp("t", 1), tp("x-changelog")
    consumer.highwaters = {inputs: 100, other: 40, changelog: 900}
    consumer._committed_offset = {inputs: 60, other: 40, changelog: None}
    seen: dict[Any, int] = {}
    topics = frozenset({"send.intake.events", "t"})

    first = faust_round(consumer, topics, seen)
    consumer._committed_offset[inputs] = 80
    second = faust_round(consumer, topics, seen)
    third = faust_round(consumer, topics, seen)
    consumer._committed_offset[inputs] = 100
    fourth = faust_round(consumer, topics, seen)

    assert first == (0, 40)  # nothing seen before: no progress counted yet
    assert second == (20, 20)
    assert third == (0, 20)  # blocked: lag and no commit
    assert fourth == (20, 0)


def test_a_faust_round_before_any_fetch_knows_no_lag() -> None:
    consumer = FakeFaustConsumer()
    consumer.highwaters = {tp("send.intake.events"): None}

    assert faust_round(consumer, frozenset({"send.intake.events"}), {}) == (0, None)
