"""Checking records as they are on the topics, and a small run of the real services.

``record_problems`` holds one consumed record to the published contract: a CloudEvent
in binary mode (``ce_specversion`` 1.0, the required ``ce_*`` headers, ``content-type``
``application/json``, each header once and in UTF-8), of a registered type on that
type's topic, from its owner's source, keyed by the case id, which is also its subject,
its ``partitionkey`` and its data's ``case_id``, with data valid against the committed
JSON Schema, and readable by the kernel's own ``from_kafka``. ``order_problems`` checks
that each case's records on a topic are on one partition with ``ce_sequence`` rising.

``PublishedRun`` drives the services through their real paths on the shared broker:

- intake: its HTTP API (FastAPI test client) over a SQLite store, and the kernel's
  ``OutboxRelay`` onto ``send.intake.events``; the relay is then run again from
  checkpoint 0, as after a crash, so every intake event is on the topic twice;
- deadlines: the records of ``send.intake.events`` read back, folded by the deadlines
  engine with ticks, and turned into records by the deadlines service's own
  ``clock_record``, produced onto ``send.deadlines.events`` (the faust worker around
  them is not run: it would need a clock topic free of other tests' ticks);
- notify: its real worker (``python -m notify worker``) as a subprocess, reading both
  topics, emailing a local SMTP server and publishing ``NotificationSent`` through its
  relay onto ``send.notify.events``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from contract_files import JSON_ROOT, committed_headers_schema, read_json
from contract_gate import errors
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from deadlines.application.processor import Cause, clock_record
from deadlines.domain import engine
from devstack.demo_data import DEMO_STAFF, write_staff_csv
from devstack.issuer import LocalIssuer
from devstack.smtp import MailCatcher
from intake.entrypoints.http import create_app
from intake.settings import SOURCE as INTAKE_SOURCE
from intake.settings import IntakeSettings
from send_schemas.registry import UnknownEventType, event_type
from send_schemas.topics import DEADLINES, INTAKE, NOTIFY
from sendkit.envelope import InvalidEnvelope, from_kafka
from sendkit.relay import OutboxRelay
from sendkit.store import open_store

READ_DEADLINE_S = 120.0
NOTIFY_DEADLINE_S = 180.0
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
COORDINATORS = [m.staff_id for m in DEMO_STAFF if m.role == "coordinator"]


# Checking records -------------------------------------------------------------------


def record_problems(record: Any) -> list[str]:
    """What is wrong with one consumed record, as the contract sees it."""
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    problems: list[str] = []
    headers: dict[str, str] = {}
    for name, raw in record.headers or ():
        if name in headers:
            problems.append(f"{where}: header {name} appears twice")
        try:
            headers[name] = (raw or b"").decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{where}: header {name} is not UTF-8")
    problems.extend(
        f"{where}: headers: {line}"
        for line in errors(committed_headers_schema(), headers)
    )
    try:
        entry = event_type(headers.get("ce_type", ""))
    except UnknownEventType as error:
        return [*problems, f"{where}: {error}"]
    if entry.topic.name != record.topic:
        problems.append(f"{where}: {entry.type} belongs on {entry.topic.name}")
    if headers.get("ce_source") != entry.source:
        problems.append(f"{where}: ce_source {headers.get('ce_source')!r}")
    try:
        data = json.loads((record.value or b"").decode("utf-8"))
    except ValueError:
        return [*problems, f"{where}: the value is not UTF-8 JSON"]
    key = (record.key or b"").decode("utf-8", errors="replace")
    subject = headers.get("ce_subject")
    named = data.get("case_id") if isinstance(data, dict) else None
    if not (key == subject == headers.get("ce_partitionkey") == named):
        problems.append(
            f"{where}: key {key!r}, ce_subject {subject!r}, ce_partitionkey "
            f"{headers.get('ce_partitionkey')!r} and data case_id {named!r} differ"
        )
    schema = read_json(JSON_ROOT / str(entry.schema_path))
    problems.extend(f"{where}: data: {line}" for line in errors(schema, data))
    try:
        from_kafka(record)
    except InvalidEnvelope as error:
        problems.append(f"{where}: the kernel refuses it: {error.reason}")
    return problems


def order_problems(records: Iterable[Any]) -> list[str]:
    """Each (topic, key) on one partition, ``ce_sequence`` rising but for repeats."""
    by_case: dict[tuple[str, bytes], list[Any]] = defaultdict(list)
    for record in records:
        by_case[(record.topic, record.key)].append(record)
    problems = []
    for (topic, key), found in by_case.items():
        if len({r.partition for r in found}) != 1:
            problems.append(f"{topic} key {key!r} is on several partitions")
            continue
        seen: dict[str, int] = {}
        last = 0
        for record in sorted(found, key=lambda r: r.offset):
            headers = dict(record.headers)
            event_id = headers["ce_id"].decode()
            sequence = int(headers["ce_sequence"])
            if event_id in seen:
                continue
            if sequence <= last:
                problems.append(
                    f"{topic} key {key!r}: ce_sequence {sequence} after {last}"
                )
            seen[event_id] = sequence
            last = sequence
    return problems


# Reading topics -----------------------------------------------------------------------


def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
        return ends
    finally:
        consumer.close()


def read_from(bootstrap: str, start: Mapping[TopicPartition, int]) -> list[Any]:
    """Every record from ``start`` up to each partition's current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False
    )
    try:
        partitions = list(start)
        consumer.assign(partitions)
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + READ_DEADLINE_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read the topics to {ends} in time")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


# The run ---------------------------------------------------------------------------


@dataclass
class PublishedRun:
    """What a run of the services published: its cases and where reading starts."""

    bootstrap: str
    start: dict[TopicPartition, int]
    case_ids: list[str] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)

    def own(self) -> list[Any]:
        keys = {case_id.encode() for case_id in self.case_ids}
        return [r for r in self.records if r.key in keys]

    def types(self) -> set[str]:
        return {dict(r.headers)["ce_type"].decode() for r in self.own()}

    def ids(self) -> set[str]:
        return {dict(r.headers)["ce_id"].decode() for r in self.own()}


def _request(
    year: int, month: int, day: int, urn: int, curriculum: int
) -> dict[str, Any]:
    return {
        "requester_type": "parent",
        "child_reference": f"C-{urn:08d}",
        "date_of_birth": "2016-05-14",
        "school_urn": urn,
        "curriculum_year": curriculum,
        "channel": "email",
        "received_at": datetime(year, month, day, 9, 30, tzinfo=UTC).isoformat(),
        "child_name": "Alpha Testcase",
    }


def _post(client: TestClient, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    answer = client.post(path, json=dict(body), headers={"X-Staff-Id": COORDINATORS[0]})
    assert answer.status_code in (200, 201), (path, answer.status_code, answer.text)
    result: dict[str, Any] = answer.json()
    return result


def run_intake(client: TestClient) -> list[str]:
    """Four cases through intake's API; together they publish every intake type."""
    late = _post(client, "/cases", _request(2025, 1, 6, 990001, 3))["case_id"]
    _post(client, f"/cases/{late}/coordinator", {"coordinator_id": COORDINATORS[0]})
    _post(client, f"/cases/{late}/surgery-presentation", {"presented_on": "2025-02-18"})
    _post(
        client,
        f"/cases/{late}/corrections",
        {
            "field": "presented_on",
            "new_value": "2025-02-17",
            "reason": "Synthetic: the surgery met a day earlier than recorded.",
        },
    )
    _post(
        client,
        f"/cases/{late}/decision",
        {"outcome": "agreed", "notified_on": "2025-02-24"},
    )

    excepted = _post(client, "/cases", _request(2025, 1, 13, 990002, 7))["case_id"]
    _post(client, f"/cases/{excepted}/coordinator", {"coordinator_id": COORDINATORS[1]})
    _post(
        client,
        f"/cases/{excepted}/time-limit-exceptions",
        {"clock": "decision", "reason": "a", "evidence": "Synthetic: holiday closure."},
    )
    _post(
        client,
        f"/cases/{excepted}/decision",
        {"outcome": "refused", "notified_on": "2025-02-28"},
    )

    withdrawn = _post(client, "/cases", _request(2025, 2, 3, 990003, 0))["case_id"]
    _post(client, f"/cases/{withdrawn}/withdrawal", {"withdrawn_on": "2025-02-10"})

    corrected = _post(client, "/cases", _request(2025, 2, 5, 990004, 11))["case_id"]
    _post(
        client,
        f"/cases/{corrected}/corrections",
        {
            "field": "received_at",
            "new_value": "2025-02-04T16:45:00+00:00",
            "reason": "Synthetic: the post was opened a day late.",
        },
    )
    _post(
        client, f"/cases/{corrected}/coordinator", {"coordinator_id": COORDINATORS[2]}
    )
    return [late, excepted, withdrawn, corrected]


def publish_intake(tmp: Path, bootstrap: str) -> list[str]:
    """Intake's API over SQLite, then its outbox relay, twice over (a crash replay)."""
    url = f"sqlite:///{tmp / 'intake.db'}"
    store = open_store(url, INTAKE_SOURCE)
    try:
        # Intake verifies tokens: a local issuer's, for the coordinator who acts.
        with LocalIssuer() as issuer:
            settings = IntakeSettings(
                database_url=url,
                auth_issuer=issuer.url,
                auth_audience=issuer.audience,
                auth_jwks_url=issuer.jwks_url,
            )
            app = create_app(settings, store=store, clock=lambda: NOW)
            token = issuer.headers_for(COORDINATORS[0], ["team_manager"])
            with TestClient(app, headers=token) as client:
                case_ids = run_intake(client)
        for checkpoint in ("relay:send.intake.events", "relay:contract-replay"):
            relay = OutboxRelay(
                store,
                INTAKE.name,
                bootstrap,
                checkpoint_name=checkpoint,
                registry=CollectorRegistry(),
            )
            with relay:
                while relay.run_once():
                    pass
        return case_ids
    finally:
        store.close()


def publish_deadlines(bootstrap: str, intake_records: Sequence[Any]) -> int:
    """The deadlines engine over intake's records, ticked, out by ``clock_record``."""
    events: dict[str, list[Any]] = defaultdict(list)
    seen: set[str] = set()
    for record in sorted(intake_records, key=lambda r: (r.partition, r.offset)):
        received = from_kafka(record)
        if received.id not in seen:
            seen.add(received.id)
            events[received.case_id].append(received)
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","))
    sent = 0
    try:
        for case_id, received in events.items():
            state = None
            sequence = 0
            # Each day from the request to "now" is ticked before that day's facts.
            inputs: list[Any] = [
                engine.CaseEvent(e.id, e.type, e.case_id, e.data) for e in received
            ]
            causes = {e.id: e for e in received}
            for item in _with_ticks(inputs, received):
                if isinstance(item, datetime):
                    if state is None:
                        continue
                    state, outputs = engine.tick(state, item)
                    cause = Cause.of(
                        received[-1].id, received[-1].metadata.correlation_id, item
                    )
                else:
                    state, outputs = engine.apply(state, item)
                    source = causes[item.id]
                    cause = Cause.of(
                        source.id, source.metadata.correlation_id, source.time
                    )
                for output in outputs:
                    sequence += 1
                    record = clock_record(output, sequence=sequence, cause=cause)
                    producer.send(
                        DEADLINES.name,
                        key=record.key,
                        value=record.value,
                        headers=record.headers,
                    )
                    sent += 1
            assert case_id
        producer.flush(timeout=60)
    finally:
        producer.close()
    return sent


def _with_ticks(inputs: Sequence[Any], received: Sequence[Any]) -> list[Any]:
    """The events in order, with a tick at 08:00 UTC on each Monday before ``NOW``."""
    facts = [(_fact_day(e), index) for index, e in enumerate(received)]
    first = min(day for day, _ in facts)
    ticks = [
        datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)
        for day in (
            date.fromordinal(n)
            for n in range(first.toordinal(), NOW.date().toordinal())
        )
        if day.weekday() == 0
    ]
    timeline: list[tuple[date, int, Any]] = [(t.date(), 0, t) for t in ticks]
    timeline += [(day, 1, inputs[index]) for day, index in facts]
    return [item for _, _, item in sorted(timeline, key=lambda x: (x[0], x[1]))]


def _fact_day(event: Any) -> date:
    data = event.data
    for name in ("notified_on", "withdrawn_on"):
        if name in data:
            return date.fromisoformat(data[name])
    if "received_at" in data:
        return datetime.fromisoformat(data["received_at"]).date()
    return event.time.date()


class NotifyWorker:
    """``python -m notify worker`` with its own database, directory and SMTP server."""

    def __init__(self, tmp: Path, bootstrap: str, group: str, smtp_port: int) -> None:
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "NOTIFY_APP_ID": group,
                "NOTIFY_DATABASE_URL": f"sqlite:///{tmp / 'notify.db'}",
                "NOTIFY_DIRECTORY_CSV": str(write_staff_csv(tmp / "staff.csv")),
                "NOTIFY_SMTP_HOST": "127.0.0.1",
                "NOTIFY_SMTP_PORT": str(smtp_port),
                "NOTIFY_FROM_ADDRESS": "send-alerts@council.example",
                "NOTIFY_RETRY_BASE_SECONDS": "0.5",
                "NOTIFY_DELIVERY_POLL_SECONDS": "1",
                "LOG_FORMAT": "text",
                "LOG_LEVEL": "INFO",
            }
        )
        self.log_path = tmp / "notify-worker.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "notify", "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode


def run_services(tmp: Path, bootstrap: str, group: str) -> PublishedRun:
    """Publish through intake, deadlines and notify, and read back what they wrote."""
    start = end_offsets(bootstrap, [INTAKE.name, DEADLINES.name, NOTIFY.name])
    run = PublishedRun(bootstrap, start)
    run.case_ids = publish_intake(tmp, bootstrap)
    intake_start = {tp: o for tp, o in start.items() if tp.topic == INTAKE.name}
    keys = {case_id.encode() for case_id in run.case_ids}
    intake_records = [r for r in read_from(bootstrap, intake_start) if r.key in keys]
    assert publish_deadlines(bootstrap, intake_records) > 0

    notify_start = {tp: o for tp, o in start.items() if tp.topic == NOTIFY.name}
    with MailCatcher(port=0, maildir=tmp / "mail") as catcher:
        worker = NotifyWorker(tmp, bootstrap, group, catcher.port)
        try:
            deadline = time.monotonic() + NOTIFY_DEADLINE_S
            while not any(r.key in keys for r in read_from(bootstrap, notify_start)):
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "notify published nothing for the run's cases; its log:\n"
                        + worker.output()
                    )
                time.sleep(1.0)
        finally:
            exit_code = worker.stop()
        assert exit_code == 0, worker.output()
    run.records = read_from(bootstrap, start)
    return run
