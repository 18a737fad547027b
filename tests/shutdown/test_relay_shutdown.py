"""A service's relay process given SIGTERM while it publishes a large backlog, and two
relay processes on one SQLite file: one publishes, the other takes over when the first
is killed outright.

SIGTERM is held to a stronger standard than SIGKILL: the relay exits 0 by itself, its
checkpoint covers exactly what Kafka holds, and its successor sends nothing twice.
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from .shutdown_support import (
    Processes,
    checkpoint_in,
    event_ids,
    fill_store,
    ids_by_case,
    process_env,
    read_to_end,
    wait_for,
    wait_for_records,
)

SOURCE = "/send/intake"
CASES = 6
PER_CASE = 5000
_STOPPED_AT = re.compile(r"relay stopped for \S+ at position (\d+)")


def relay_env(db: Path, bootstrap: str, heartbeat: Path) -> dict[str, str]:
    return process_env(
        INTAKE_DATABASE_URL=f"sqlite:///{db}",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        INTAKE_RELAY_POLL_SECONDS="0.05",
        SEND_HEARTBEAT_FILE=heartbeat,
    )


def test_a_relay_given_sigterm_mid_backlog_stops_on_a_checkpoint_kafka_agrees_with(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    topic = unique_topic(partitions=6)
    db = tmp_path / "intake.db"
    appended = fill_store(db, SOURCE, CASES, PER_CASE)
    total = len(appended)
    heartbeat = tmp_path / "heartbeat"
    env = relay_env(db, kafka_bootstrap, heartbeat)

    # The first relay is stopped part-way through the backlog.
    first = processes.launch("intake-relay", topic, env, tmp_path / "first.log")
    wait_for_records(kafka_bootstrap, topic, 2000)
    beating = heartbeat.exists()
    first_code = first.terminate()
    stopped_at = checkpoint_in(db, SOURCE, topic)
    on_kafka = event_ids(read_to_end(kafka_bootstrap, topic))

    # A second relay publishes the rest and is stopped once it has.
    second = processes.launch("intake-relay", topic, env, tmp_path / "second.log")
    wait_for(lambda: checkpoint_in(db, SOURCE, topic) == total, "the rest published")
    second_code = second.terminate()
    records = read_to_end(kafka_bootstrap, topic)

    assert first_code == 0, first.text()[-3000:]
    assert second_code == 0, second.text()[-3000:]
    assert beating
    assert 0 < stopped_at < total, "the relay finished before SIGTERM: add events"
    logged = _STOPPED_AT.search(first.text())
    assert logged is not None
    assert int(logged.group(1)) == stopped_at
    # Kafka holds exactly the events the checkpoint covers, each once...
    assert sorted(on_kafka) == sorted(
        e.id for e in appended if e.position <= stopped_at
    )
    assert max(Counter(on_kafka).values()) == 1
    # ...so the successor repeated nothing, lost nothing, and kept each case's order.
    ids = event_ids(records)
    assert len(ids) == total
    assert set(ids) == {event.id for event in appended}
    for versions in ids_by_case(records).values():
        assert versions == sorted(versions)
        assert len(versions) == PER_CASE


def test_two_relays_on_one_sqlite_file_publish_one_at_a_time_and_hand_over(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    topic = unique_topic(partitions=6)
    db = tmp_path / "intake.db"
    appended = fill_store(db, SOURCE, CASES, PER_CASE)
    total = len(appended)
    logs = {name: tmp_path / f"relay-{name}.log" for name in ("a", "b")}
    relays = {
        name: processes.launch(
            "intake-relay",
            topic,
            relay_env(db, kafka_bootstrap, tmp_path / f"heartbeat-{name}"),
            log,
        )
        for name, log in logs.items()
    }

    # One takes the file lock and publishes; the other stands by, alive.
    wait_for(
        lambda: any(r.said("taken; publishing") for r in relays.values()),
        "one relay to take the lock",
    )
    active_name = next(n for n, r in relays.items() if r.said("taken; publishing"))
    standby_name = "b" if active_name == "a" else "a"
    active, standby = relays[active_name], relays[standby_name]
    wait_for(lambda: standby.said("standing by"), "the other to stand by")
    wait_for_records(kafka_bootstrap, topic, 2000)

    # Kill the publisher outright (the standby paused, so what the killed one left on
    # Kafka can be counted before the standby adds to it); the standby takes over.
    standby.popen.send_signal(signal.SIGSTOP)
    os.kill(active.popen.pid, signal.SIGKILL)
    active.popen.wait()
    left_on_kafka = len(read_to_end(kafka_bootstrap, topic))
    standby_published_before = standby.said("taken; publishing")
    standby.popen.send_signal(signal.SIGCONT)
    wait_for(lambda: checkpoint_in(db, SOURCE, topic) == total, "the standby to finish")
    standby_code = standby.terminate()
    records = read_to_end(kafka_bootstrap, topic)

    assert active.popen.returncode == -signal.SIGKILL
    assert not standby_published_before
    assert standby_code == 0, standby.text()[-3000:]
    assert (tmp_path / f"heartbeat-{standby_name}").exists()
    assert left_on_kafka < total, "the relay finished before the kill: add events"
    # Nothing lost; repeats (from the killed relay's last batch) are whole copies with
    # the same ids, and after dropping them each case is in stream order.
    ids = event_ids(records)
    assert set(ids) == {event.id for event in appended}
    first_copies: list[int] = []
    seen: set[str] = set()
    for index, event_id in enumerate(ids):
        if event_id not in seen:
            seen.add(event_id)
            first_copies.append(index)
    for versions in ids_by_case([records[i] for i in first_copies]).values():
        assert versions == sorted(versions)
        assert len(versions) == PER_CASE
