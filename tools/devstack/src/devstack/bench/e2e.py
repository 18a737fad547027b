"""End to end: a request posted over HTTP, its clock on Kafka, and the email it causes.

Each request is posted to intake's ``POST /cases`` with a ``received_at`` chosen so that
the decision clock's first alert is due today: 6 weeks before a due date 10 working days
from now (``received_at_for_alert_today``). The deadlines processor applies it with the
partition's latest tick as "now" (the benchmark sends a round of ticks for the present
moment first), so one input gives the ``ClockSet`` and, at once, the
``ClockApproaching`` whose alert notify sends to the case's coordinator, assigned by a
second command straight after the first. Nothing else has to happen for the email.

The latencies run from the moment the request was sent (wall clock, as are the other
two stamps): to the create time of the decision clock's ``ClockSet`` record on
``send.deadlines.events``, and to the moment the mail catcher accepted the first email
naming the case (its ``received_at``). Requests are sent at a fixed pace, open loop.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition

from deadlines.domain.engine import alert_day
from devstack.bench.control import check_stop
from devstack.bench.stats import summarize
from send_schemas.topics import DEADLINES, INTAKE, PARTITIONS
from sendkit.calendar import LONDON, london_date

DECISION_WEEKS = 6
FIRST_LEAD = 10
NEXT_LEAD = 5
CLOCK_SET = "send.deadlines.ClockSet.v1"
REQUEST_RECEIVED = "send.intake.RequestReceived.v1"
CASE_IN_SUBJECT = re.compile(
    r"case ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)


class EndToEndError(RuntimeError):
    """The end-to-end scenario could not run; the message says which step failed."""


def received_at_for_alert_today(now: datetime) -> datetime:
    """A receipt time whose decision clock reaches its first lead time today.

    The due date is the first one for which today is on or after the 10-working-day
    alert day and before the 5-working-day one, so exactly one approaching alert (the
    10-day one) is due at once.
    """
    today = london_date(now)
    for ahead in range(1, 40):
        due = today + timedelta(days=ahead)
        if alert_day(due, FIRST_LEAD) <= today < alert_day(due, NEXT_LEAD):
            received = due - timedelta(weeks=DECISION_WEEKS)
            return datetime.combine(received, clock_time(10, 0), LONDON).astimezone(UTC)
    raise EndToEndError(f"no due date puts today ({today}) between the alert days")


@dataclass(slots=True)
class Sample:
    """One request's three moments (seconds since the epoch) and its case."""

    case_id: str
    sent: float
    accepted: float
    published: float | None = None
    clock: float | None = None
    email: float | None = None


class ClockWatcher:
    """Reads intake's and the deadlines topics from their ends on a thread.

    It notes, by case, the create time of each ``RequestReceived`` record (when the
    relay published it) and of the decision clock's ``ClockSet``, so the end-to-end
    latency can be split into its legs.
    """

    def __init__(self, bootstrap: str, clock: str = "decision") -> None:
        self.clock = clock
        self.seen: dict[str, float] = {}
        self.published: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="bench-e2e-clocks",
        )
        tps = [
            TopicPartition(topic, n)
            for topic in (DEADLINES.name, INTAKE.name)
            for n in range(PARTITIONS)
        ]
        self._consumer.assign(tps)
        self._consumer.seek_to_end(*tps)
        for tp in tps:
            self._consumer.position(tp)
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> ClockWatcher:
        self._thread.start()
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get("ce_type") == REQUEST_RECEIVED.encode():
                        case_id = (headers.get("ce_subject") or b"").decode()
                        with self._lock:
                            self.published.setdefault(case_id, record.timestamp / 1e3)
                        continue
                    if headers.get("ce_type") != CLOCK_SET.encode():
                        continue
                    data = json.loads(record.value)
                    if data.get("clock") != self.clock:
                        continue
                    with self._lock:
                        self.seen.setdefault(
                            str(data["case_id"]), record.timestamp / 1e3
                        )

    def get(self, case_id: str) -> float | None:
        with self._lock:
            return self.seen.get(case_id)

    def published_at(self, case_id: str) -> float | None:
        with self._lock:
            return self.published.get(case_id)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def first_emails(mail_url: str, http: httpx.Client) -> dict[str, float]:
    """The earliest email naming each case, by the catcher's receipt time."""
    answer = http.get(f"{mail_url.rstrip('/')}/api/messages")
    answer.raise_for_status()
    found: dict[str, float] = {}
    body = answer.json()
    messages = body.get("messages", body) if isinstance(body, dict) else body
    for message in messages:
        named = CASE_IN_SUBJECT.search(str(message.get("subject", "")))
        if named is None:
            continue
        case_id = named.group(1)
        at = datetime.fromisoformat(str(message["received_at"])).timestamp()
        if case_id not in found or at < found[case_id]:
            found[case_id] = at
    return found


@dataclass(slots=True)
class EndToEndRun:
    """One run: the samples and what was missing at the end."""

    interval_s: float
    samples: list[Sample] = field(default_factory=list)
    waited_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        clocks = [s.clock - s.sent for s in self.samples if s.clock is not None]
        emails = [s.email - s.sent for s in self.samples if s.email is not None]
        http = [s.accepted - s.sent for s in self.samples]
        from_accepted = [s.clock - s.accepted for s in self.samples if s.clock]
        relay = [s.published - s.accepted for s in self.samples if s.published]
        processor = [
            s.clock - s.published for s in self.samples if s.clock and s.published
        ]
        alerting = [s.email - s.clock for s in self.samples if s.email and s.clock]
        return {
            "requests": len(self.samples),
            "interval_s": self.interval_s,
            "clock_events_seen": len(clocks),
            "emails_seen": len(emails),
            "http_ms": _ms(http),
            "request_to_clock_ms": _ms(clocks),
            "accepted_to_clock_ms": _ms(from_accepted),
            "request_to_email_ms": _ms(emails),
            "legs": {
                "http_command_ms": _ms(http),
                "accepted_to_intake_topic_ms": _ms(relay),
                "intake_topic_to_clock_set_ms": _ms(processor),
                "clock_set_to_email_ms": _ms(alerting),
            },
            "waited_for_stragglers_s": round(self.waited_s, 2),
        }


def _ms(seconds: list[float]) -> dict[str, Any] | None:
    if not seconds:
        return None
    return summarize([value * 1000.0 for value in seconds]).to_json()


def run_end_to_end(
    *,
    intake_url: str,
    mail_url: str,
    watcher: ClockWatcher,
    coordinator_id: str,
    headers: dict[str, str],
    count: int,
    interval_s: float,
    wait_s: float = 60.0,
    sequence: Callable[[], int],
) -> EndToEndRun:
    """Post ``count`` requests, one every ``interval_s``; wait for clocks and emails."""
    run = EndToEndRun(interval_s=interval_s)
    staff = dict(headers)
    with httpx.Client(base_url=intake_url, timeout=30.0) as http:
        started = time.monotonic()
        for index in range(count):
            due = started + index * interval_s
            pause = due - time.monotonic()
            check_stop()
            if pause > 0:
                time.sleep(pause)
            number = sequence()
            body = {
                "requester_type": "parent",
                "child_reference": f"C-{90_000_000 + number:08d}",
                "date_of_birth": date(2016, 5, 1).isoformat(),
                "school_urn": 990001 + number % 12,
                "curriculum_year": 4,
                "channel": "portal",
                "received_at": received_at_for_alert_today(datetime.now(UTC))
                .isoformat()
                .replace("+00:00", "Z"),
            }
            sent = time.time()
            answer = http.post("/cases", json=body, headers=staff)
            accepted = time.time()
            if answer.status_code != 201:
                raise EndToEndError(
                    f"intake answered {answer.status_code} to POST /cases: "
                    f"{answer.text[:300]}"
                )
            case_id = str(answer.json()["case_id"])
            assigned = http.post(
                f"/cases/{case_id}/coordinator",
                json={"coordinator_id": coordinator_id},
                headers=staff,
            )
            if assigned.status_code >= 300:
                raise EndToEndError(
                    f"intake answered {assigned.status_code} to assigning a "
                    f"coordinator: {assigned.text[:300]}"
                )
            run.samples.append(Sample(case_id, sent, accepted))

        waited_from = time.monotonic()
        with httpx.Client(timeout=10.0) as mail:
            while True:
                emails = first_emails(mail_url, mail)
                for sample in run.samples:
                    sample.published = watcher.published_at(sample.case_id)
                    sample.clock = watcher.get(sample.case_id)
                    sample.email = emails.get(sample.case_id)
                done = all(
                    s.clock is not None and s.email is not None for s in run.samples
                )
                if done or time.monotonic() - waited_from > wait_s:
                    break
                check_stop()
                time.sleep(0.25)
        run.waited_s = time.monotonic() - waited_from
    return run
