"""Throughput over a pre-filled topic: the deadlines worker, a bare consumer, Kafka's.

``publish_history`` writes a history (``devstack.bench.history``) to a fresh set of
topics under a prefix (``<prefix>send.intake.events`` and so on, 6 partitions each),
each event as the owning service would (CloudEvents binary mode, keyed and partitioned
by case id), and each round of ticks as the ticker would, one per partition with its
barrier of end offsets. Three readers then read exactly those records:

- ``bare_consume``: a kafka-python consumer assigned every partition, doing nothing
  with the records (the Python ceiling);
- ``consumer_performance``: Kafka's ``org.apache.kafka.tools.ConsumerPerformance``
  from the broker's jars (the broker's limit on this machine, through the Java client);
- ``deadlines_worker``: ``python -m deadlines worker`` with ``DEADLINES_TOPIC_PREFIX``
  set and a fresh ``DEADLINES_APP_ID``, so it starts from offset 0, applies every input
  and publishes every clock event to ``<prefix>send.deadlines.events``.

Each rate is taken over the same stretch of work: from the first records to the last
(the bare consumer's first batch to its last, the tool's ``fetch.nMsg.sec``, which
leaves out its group join, and the worker's first clock event to its last, by the
records' create times), so start-up costs are left out of all three. The worker is
known to be done when its group's committed offsets reach the inputs' ends; its
resident memory is read then, with a county's state in its table.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from deadlines.application.partitioning import case_partition
from deadlines.application.ticks import TICK_KEY, Tick, encode_tick
from deadlines.settings import DOMAIN_TOPICS
from devstack.bench.control import check_stop
from devstack.bench.history import (
    KIND_TICK,
    SOURCE_OF_KIND,
    TOPIC_OF_KIND,
    HistoryError,
    HistoryLine,
)
from devstack.bench.machine import process_memory
from devstack.bench.stats import rate
from devstack.kafka import class_path, fetch_jars
from devstack.kafka_config import tools_log4j2_properties
from devstack.kafka_topics import ensure_topics
from devstack.processes import ProcessSpec, Stack, python_module
from send_schemas.topics import CLOCK_TICKS, DEADLINES, PARTITIONS, Topic
from sendkit.envelope import parse_time, to_kafka
from sendkit.events import Metadata, RecordedEvent

DEADLINES_READY_LINE = "deadlines worker ready"
WORKER_READY_TIMEOUT_S = 180.0
WORKER_STOP_TIMEOUT_S = 40.0
POLL_INTERVAL_S = 0.5
REPLAY_MAX_WAIT_S = 3600


class ThroughputError(HistoryError):
    """A throughput run could not finish; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class PrefilledTopics:
    """The topics a history was published to and how many records each holds."""

    prefix: str
    counts: dict[str, int]
    events: int
    ticks: int

    @property
    def domain_topics(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}{name}" for name in DOMAIN_TOPICS)

    @property
    def ticks_topic(self) -> str:
        return f"{self.prefix}{CLOCK_TICKS.name}"

    @property
    def output_topic(self) -> str:
        return f"{self.prefix}{DEADLINES.name}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.domain_topics, self.ticks_topic)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def include_regex(self) -> str:
        return "|".join(re.escape(name) for name in self.inputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "records": self.total,
            "events": self.events,
            "tick_records": self.ticks,
            "by_topic": dict(sorted(self.counts.items())),
        }


def create_topics(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> None:
    names = [
        *(f"{prefix}{name}" for name in DOMAIN_TOPICS),
        f"{prefix}{CLOCK_TICKS.name}",
        f"{prefix}{DEADLINES.name}",
    ]
    ensure_topics(
        bootstrap,
        [
            Topic(name, owner="bench", consumers=("bench",), partitions=partitions)
            for name in names
        ],
    )


def publish_history(
    bootstrap: str,
    lines: Iterable[HistoryLine],
    prefix: str,
    *,
    partitions: int = PARTITIONS,
) -> PrefilledTopics:
    """Write every line to the prefixed topics, ticks with their barriers."""
    create_topics(bootstrap, prefix, partitions)
    domain = {kind: f"{prefix}{name}" for kind, name in TOPIC_OF_KIND.items()}
    barrier_topics = [f"{prefix}{name}" for name in DOMAIN_TOPICS]
    ticks_topic = f"{prefix}{CLOCK_TICKS.name}"
    offsets: Counter[tuple[str, int]] = Counter()
    sequence: Counter[tuple[str, str]] = Counter()
    events = ticks = 0
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-history-producer",
        linger_ms=20,
        batch_size=256 * 1024,
        # Idempotence (kafka-python's default with acks=all) keeps each partition in
        # the order sent across retries, which the ticks' barriers count on.
        acks="all",
    )
    try:
        for line in lines:
            if line.kind == KIND_TICK:
                now = parse_time(line.payload)
                for number in range(partitions):
                    after = {
                        topic: offsets[(topic, number)] for topic in barrier_topics
                    }
                    value = encode_tick(
                        Tick(now=now, tick_id=f"bench-{line.recorded_us}", after=after)
                    )
                    producer.send(
                        ticks_topic, key=TICK_KEY, value=value, partition=number
                    )
                    offsets[(ticks_topic, number)] += 1
                    ticks += 1
                continue
            topic = domain[line.kind]
            sequence[(line.kind, line.case_id)] += 1
            record = to_kafka(
                RecordedEvent(
                    id=line.event_id,
                    stream_id=line.case_id,
                    version=sequence[(line.kind, line.case_id)],
                    position=0,
                    type=line.event_type,
                    source=SOURCE_OF_KIND[line.kind],
                    time=line.recorded_at,
                    data=line.data(),
                    metadata=Metadata(actor="system", correlation_id=line.event_id),
                )
            )
            number = case_partition(line.case_id, partitions)
            producer.send(
                topic,
                key=record.key,
                value=record.value,
                headers=record.headers,
                partition=number,
            )
            offsets[(topic, number)] += 1
            events += 1
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=30)

    counts: Counter[str] = Counter()
    for (topic, _number), count in offsets.items():
        counts[topic] += count
    topics = PrefilledTopics(prefix, dict(counts), events, ticks)
    found = sum(end_offsets(bootstrap, topics.inputs, partitions).values())
    if found != topics.total:
        raise ThroughputError(
            f"published {topics.total} records under {prefix} but the topics hold "
            f"{found}; the broker lost or refused some (see its log)"
        )
    return topics


def _partitions(topics: Sequence[str], partitions: int) -> list[TopicPartition]:
    return [TopicPartition(t, n) for t in topics for n in range(partitions)]


def end_offsets(
    bootstrap: str, topics: Sequence[str], partitions: int = PARTITIONS
) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, client_id="bench-offsets"
    )
    try:
        found = consumer.end_offsets(_partitions(topics, partitions))
        return {tp: int(offset) for tp, offset in dict(found).items()}
    finally:
        consumer.close()


def committed_offsets(
    bootstrap: str, group: str, topics: Sequence[str]
) -> dict[TopicPartition, int]:
    """The group's committed offsets on ``topics`` (absent partitions are 0)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    try:
        found = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    wanted = set(topics)
    return {
        tp: int(meta.offset)
        for tp, meta in found.items()
        if tp.topic in wanted and meta.offset is not None and meta.offset >= 0
    }


def group_lag(
    bootstrap: str, group: str, topics: Sequence[str], partitions: int = PARTITIONS
) -> int:
    """How many records of ``topics`` the group has not committed yet."""
    ends = end_offsets(bootstrap, topics, partitions)
    done = committed_offsets(bootstrap, group, topics)
    return sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items())


def wait_for_group(
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    *,
    timeout_s: float,
    partitions: int = PARTITIONS,
) -> float:
    """Wait until the group has committed everything on ``topics``; the time taken."""
    started = time.monotonic()
    while True:
        lag = group_lag(bootstrap, group, topics, partitions)
        if lag == 0:
            return time.monotonic() - started
        check_stop()
        if time.monotonic() - started > timeout_s:
            raise ThroughputError(
                f"consumer group {group} still had {lag} records to commit on "
                f"{', '.join(topics)} after {timeout_s:.0f} s"
            )
        time.sleep(POLL_INTERVAL_S)


# -- the three readers -----------------------------------------------------------------


def bare_consume(
    bootstrap: str,
    topics: PrefilledTopics,
    *,
    check_crcs: bool = True,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Read every input record with a bare kafka-python consumer; its rate.

    ``check_crcs=False`` skips the CRC-32C check of each record batch, which
    kafka-python computes in pure Python unless the ``crc32c`` extension is
    installed (it is not a dependency here): the client's decoding alone.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        check_crcs=check_crcs,
        client_id="bench-bare-consumer",
    )
    try:
        tps = _partitions(topics.inputs, PARTITIONS)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        started = time.perf_counter()
        count = 0
        first_at: float | None = None
        first_batch = 0
        while count < topics.total:
            check_stop()
            if time.perf_counter() - started > timeout_s:
                raise ThroughputError(
                    f"the bare consumer read {count} of {topics.total} records in "
                    f"{timeout_s:.0f} s"
                )
            batches = consumer.poll(timeout_ms=1000, max_records=500)
            got = sum(len(records) for records in batches.values())
            if got and first_at is None:
                first_at, first_batch = time.perf_counter(), got
            count += got
        ended = time.perf_counter()
    finally:
        consumer.close()
    assert first_at is not None
    return {
        "records": count,
        "check_crcs": check_crcs,
        "seconds": round(ended - first_at, 3),
        "records_per_s": rate(count - first_batch, ended - first_at),
        "records_per_s_with_start": rate(count, ended - started),
    }


def consumer_performance(
    bootstrap: str, topics: PrefilledTopics, work_dir: Path, *, timeout_s: float = 300
) -> dict[str, Any]:
    """Kafka's ConsumerPerformance over the same records; its figures."""
    java = shutil.which("java")
    if java is None:
        raise ThroughputError("java is not on PATH; Kafka's tools need it")
    libs = fetch_jars()
    log4j = work_dir / "tools-log4j2.properties"
    log4j.parent.mkdir(parents=True, exist_ok=True)
    log4j.write_text(tools_log4j2_properties())
    command = [
        java,
        "-Xmx512m",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        class_path(libs),
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        bootstrap,
        "--include",
        topics.include_regex(),
        "--num-records",
        str(topics.total),
        "--timeout",
        "30000",
        "--group",
        f"bench-perf-{uuid.uuid4().hex[:12]}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise ThroughputError(
            f"ConsumerPerformance exited with {done.returncode}: {done.stderr[-2000:]}"
        )
    return parse_consumer_performance(done.stdout)


def parse_consumer_performance(output: str) -> dict[str, Any]:
    """The figures of ConsumerPerformance's summary (its header line and one row)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines[:-1]):
        if line.startswith("start.time"):
            names = [name.strip() for name in line.split(",")]
            values = [value.strip() for value in lines[index + 1].split(",")]
            row = dict(zip(names, values, strict=False))
            try:
                return {
                    "records": int(float(row["data.consumed.in.nMsg"])),
                    "megabytes": float(row["data.consumed.in.MB"]),
                    "records_per_s": float(row["fetch.nMsg.sec"]),
                    "records_per_s_with_start": float(row["nMsg.sec"]),
                    "fetch_ms": int(float(row["fetch.time.ms"])),
                    "rebalance_ms": int(float(row["rebalance.time.ms"])),
                }
            except (KeyError, ValueError) as error:
                raise ThroughputError(
                    f"ConsumerPerformance's summary lacks {error}: {line!r}"
                ) from error
    raise ThroughputError(
        f"ConsumerPerformance printed no summary; it said: {output[-1000:]!r}"
    )


def worker_env(bootstrap: str, app_id: str, prefix: str) -> dict[str, str]:
    """The worker's settings: its own group and topics, and replay order kept.

    ``DEADLINES_MAX_WAIT_SECONDS`` is raised from its default of 30 s: a worker that
    starts on a backlog takes the small tick records far ahead of the domain events
    their barriers wait for, and with the default every tick of a county's history
    waited longer than that and was applied out of replay order.
    """
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SEND_ENV": "development",
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
        "DEADLINES_APP_ID": app_id,
        "DEADLINES_TOPIC_PREFIX": prefix,
        "DEADLINES_MAX_WAIT_SECONDS": str(REPLAY_MAX_WAIT_S),
    }


def deadlines_worker(
    bootstrap: str,
    topics: PrefilledTopics,
    *,
    name: str,
    log_dir: Path,
    work_dir: Path,
    timeout_s: float = 1800.0,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """Run a fresh deadlines worker over the topics until it has applied everything.

    With ``profile_to`` the worker runs under cProfile (its main thread, where faust's
    event loop runs) and writes its statistics there when it stops; such a run is
    slower and is for finding where the time goes, not for its rate.
    """
    app_id = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    out_tps = _partitions([topics.output_topic], PARTITIONS)
    before = end_offsets(bootstrap, [topics.output_topic])
    work_dir.mkdir(parents=True, exist_ok=True)
    argv = python_module("deadlines", "worker")
    if profile_to is not None:
        profile_to.parent.mkdir(parents=True, exist_ok=True)
        argv = [argv[0], "-m", "cProfile", "-o", str(profile_to), *argv[1:]]
    spec = ProcessSpec(
        name=name,
        argv=argv,
        env=worker_env(bootstrap, app_id, topics.prefix),
        ready_log_line=DEADLINES_READY_LINE,
        cwd=work_dir,
        stop_timeout=WORKER_STOP_TIMEOUT_S,
    )
    with Stack(log_dir) as stack:
        spawned = time.monotonic()
        managed = stack.start(spec, WORKER_READY_TIMEOUT_S)
        ready_s = time.monotonic() - spawned
        caught_up_s = wait_for_group(
            bootstrap, app_id, topics.inputs, timeout_s=timeout_s
        )
        memory = process_memory(managed.process.pid)
    after = end_offsets(bootstrap, [topics.output_topic])
    stamps, by_type = _read_outputs(bootstrap, out_tps, before, after)
    if not stamps:
        raise ThroughputError(
            f"the worker {name} published no clock events to {topics.output_topic}; "
            f"see {log_dir / (name + '.log')}"
        )
    seconds = (max(stamps) - min(stamps)) / 1000.0
    return {
        "app_id": app_id,
        "inputs": topics.total,
        "outputs": len(stamps),
        "outputs_by_type": dict(sorted(by_type.items())),
        "seconds": round(seconds, 3),
        "records_per_s": rate(topics.total, seconds),
        "profiled": profile_to is not None,
        "ready_s": round(ready_s, 2),
        "caught_up_after_ready_s": round(caught_up_s, 2),
        "memory": memory.to_json() if memory is not None else None,
    }


def _read_outputs(
    bootstrap: str,
    tps: list[TopicPartition],
    start: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
) -> tuple[list[int], Counter[str]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id="bench-output-reader",
    )
    stamps: list[int] = []
    by_type: Counter[str] = Counter()
    try:
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp, 0))
        wanted = sum(end.get(tp, 0) - start.get(tp, 0) for tp in tps)
        deadline = time.monotonic() + 300
        while len(stamps) < wanted and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000, max_records=10_000).values():
                for record in records:
                    if record.offset >= end.get(
                        TopicPartition(record.topic, record.partition), 0
                    ):
                        continue
                    stamps.append(int(record.timestamp))
                    by_type[_header(record.headers, "ce_type")] += 1
    finally:
        consumer.close()
    return stamps, by_type


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> str:
    for key, value in headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", errors="replace").split(".")[2]
    return "unknown"


def describe(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True)
