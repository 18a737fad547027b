"""The demo period: a planned caseload posted through the services' APIs as time moves.

``DemoDriver.run()`` walks the simulated calendar one day at a time, from 1 January of
the caseload's year to the end of the period it was planned for (``until``; without
one, a margin after its last command). Each day it first sends a clock tick for 08:00
London (the deadlines ticker's ``Ticker.send``), then posts that day's commands in the
order they happened: to intake, each request as it arrived (and its coordinator
straight after), the time-limit exceptions, and each decision (after the request's
presentation to the Local Area Surgery, dated the day of the decision) or withdrawal
at the moment the coordinator recorded it; to plans, the requests for advice and the
advice received, the draft plan and the family's comments, the final plan or the
notice that none will be issued, and the amended plan or the cessation after a review;
to reviews, the first annual review arranged, the referrals and papers, the meeting
held, the report and the decision; and the phase-transfer year (``devstack.demo_data.
plan_transfers``, when ``DemoServices.placement_url`` is given): to placement, the
identification of the September's cohort (``POST /phase-transfers/{year}/identify``
with the day, once the cohort list shows every planned child, which is when placement
has read their plans), the schools and colleges consulted and their answers, the panel
submissions, each team's panel agenda, the panels' decisions and their communication;
to plans, the amended plan naming the next setting. Commands of different cases go out
a few at a time
(``concurrency``); one case's commands always in order. Each command carries a bearer
token for the member of staff who acts (``DemoServices.staff_headers``; without one,
``X-Staff-Id``). A case's first plans command waits until plans has opened the case
(its ``AssessmentOpened``), and its first reviews command until reviews follows the
plan (``ReviewCycleStarted``).

Before the next day's tick the driver waits until the day's facts are on their topics
(``send.intake.events``, ``send.plans.events``, ``send.reviews.events``): a tick's
barrier is the end of those topics when it is sent, so the deadlines processor applies
every event posted before the tick ahead of it, and the days replay in the order they
happened (a decision recorded on its due day is met, never first overdue). Once a
simulated month it also waits until the processor has answered each fact of the month
on ``send.deadlines.events`` (a request with the decision clock's ``ClockSet``, a
decision with ``ClockMet`` or ``ClockLate``, a final plan with the 20-week clock's, a
review held with the decision clock it starts, and so on), so a processor that has
stopped ends the demo with a message naming the case rather than a wrong summary.
Each simulated day, and in every wait, it also asks ``DemoServices.stopped`` whether a
process of the platform has stopped (``make run`` knows each of its processes and how
it ended): one that has ends the demo at once (``PlatformStopped``), naming it and its
exit status, where the demo would otherwise post on and fail only after a stall.

``TopicWatcher`` reads the domain, deadlines and notify topics from where they ended
when it started, so everything it counts happened during this run; counts are
de-duplicated on ``ce_id`` and restricted to the cases the demo posted, so the stale
events of an existing Kafka (``KAFKA_BOOTSTRAP_SERVERS``) are left out. At the end,
``DemoSummary`` tallies every clock (set = met + late + cancelled + still overdue +
open) and checks each clock the demo's facts start against the plan
(``devstack.demo_data.planned_clocks``, which works out every due date and end state
itself, independently of the deadlines service); it reports the DfE's figures (plans
issued and within 20 weeks, with and without exceptions; reviews held and decisions
within 4 weeks) counted from the clock events, beside the plan's and the published
ones; it compares every clock row with the deadlines read API's ``/summary`` (and its
``/timeliness``, where there is one); and it counts the emails both in the mail catcher
and as ``NotificationSent`` events, each kind and role of email held to the clock events
that raise it. For the phase-transfer year (``DemoSummary.transfers``) it reports the
cohort identified, the consultations answered within 15 days, after them and not at
all, the panels' decisions and their communication, and the deadlines met and missed,
from the placement and deadlines topics, beside the plan's figures, placement's cohort
list (each child's status and due date) and the deadlines read API's timeline of each
child (due date and state); every difference is a problem of the summary.

Ticks are not waited for, as nothing says how many clock events a tick brings, so one
day's alerts may still be on their way to notify while the next day's commands are
posted; the alerts are the same either way, as the processor derives them from the
dates of the facts, but the order of the files in the mail folder can differ between
runs. The settle step at the end waits for notify's ledger to hold no pending alert
and for the counts to stop moving.

Known limits: at full scale notify is the slowest part (tens of thousands of emails,
sent one at a time over SMTP), so the summary comes minutes after the simulated period
ends. The timeline check (overdue exactly when the plan says, not merely ending in the
right state) covers the decision clock only; the later clocks are checked by the state
they end in. Only the first annual review of each plan is played, and no exception to
the 20-week limit where the council published none. The phase-transfer cohort is the
children of the demo's own plans (one year's requests), so it is a fraction of a real
council's, which holds every plan of earlier years too; children whose first plan is
issued after the last identification run (January) are never identified, and
placement's cohort list still shows them, overdue once the due date passes, though
their new plan named the setting itself. Placement's transport, post-16 moves and
setting requests are not played.
The latency reported is between two producers' record timestamps on the same machine,
measured while the demo is posting, so it is a figure under load rather than an idle
one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Literal, TextIO

import httpx
from kafka import KafkaConsumer, TopicPartition

from devstack.demo_data import (
    DEMO_STAFF,
    STEP_KINDS,
    PlannedCase,
    PlannedStep,
    PlannedTransfer,
    Timeliness,
    TransferPlan,
    TransferStep,
    plan_transfers,
    planned_clocks,
    planned_timeliness,
    transfer_year_of,
)
from devstack.dfe import DemoDataError
from send_schemas.topics import DEADLINES, INTAKE, NOTIFY, PLACEMENT, PLANS, REVIEWS
from sendkit.calendar import LONDON, london_date
from sendkit.envelope import InvalidEnvelope, from_kafka

log = logging.getLogger(__name__)

DECISION_CLOCK = "decision"
TICK_TIME = clock_time(8, 0)
DEFAULT_MARGIN_DAYS = 28
DEFAULT_CONCURRENCY = 4
OUTPUT_STALL_S = 180.0
SETTLE_STALL_S = 180.0
SETTLE_QUIET_S = 3.0
READ_MODEL_WAIT_S = 30.0
HTTP_TIMEOUT_S = 30.0
TIMELINESS_PERIOD_DAYS = 1096  # the longest period the read API's /timeliness takes
TIMELINESS_COLUMNS = {
    "plans_issued": "plans_issued_den",
    "plans_within_20_weeks": "plans_issued_within_20_weeks",
    "plans_issued_excl_exceptions": "plans_issued_den_ex",
    "plans_within_20_weeks_excl_exceptions": "plans_issued_20_weeks_ex",
}
"""The demo's own plan figures, and the DfE column of ``/timeliness`` each is in."""
HTTP_ATTEMPTS = 4

CLOCK_SET = "ClockSet"
CLOCK_APPROACHING = "ClockApproaching"
CLOCK_OVERDUE = "ClockOverdue"
CLOCK_MET = "ClockMet"
CLOCK_LATE = "ClockLate"
CLOCK_CANCELLED = "ClockCancelled"
CLOCK_EXCEPTION = "ClockExceptionApplied"
ALERT_WITHDRAWN = "AlertWithdrawn"
NOTIFICATION_SENT = "NotificationSent"
NOTIFICATION_FAILED = "NotificationFailed"
REQUEST_RECEIVED = "RequestReceived"
ASSESSMENT_OPENED = "AssessmentOpened"
REVIEW_CYCLE_STARTED = "ReviewCycleStarted"

ActionKind = Literal["receive", "exception", "outcome", "step", "transfer"]
Ticker = Callable[[datetime], None]
"""Sends one clock tick for the given moment to every partition of the tick topic."""


class DemoError(DemoDataError):
    """The demo could not go on: a command was refused or a service did not answer."""


class PlatformStopped(DemoError):
    """A process of the platform stopped while the demo was playing."""


StoppedProcess = Callable[[], str | None]
"""Which process of the platform has stopped, described, or None while all run."""


def nothing_stopped() -> str | None:
    """A platform whose processes the demo cannot see, so none is known to stop."""
    return None


def check_platform(stopped: StoppedProcess) -> None:
    """Raise ``PlatformStopped`` if ``stopped`` names a process of the platform."""
    described = stopped()
    if described is not None:
        raise PlatformStopped(f"a process stopped during the demo: {described}")


# -- what happens when -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    """One thing that happens to a planned case at a moment of the simulated year."""

    at: datetime
    kind: ActionKind
    case: PlannedCase
    step: PlannedStep | None = None
    transfer: TransferStep | None = None

    @property
    def day(self) -> date:
        return london_date(self.at)


_KIND_ORDER: Mapping[ActionKind, int] = {
    "receive": 0,
    "exception": 1,
    "outcome": 2,
    "step": 3,
    "transfer": 4,
}


@dataclass(frozen=True, slots=True)
class CouncilAction:
    """A command about many cases: identifying a year's transfers, or a panel agenda.

    ``index`` is the identification's or the panel's position in the transfer plan.
    """

    at: datetime
    kind: Literal["identify", "list"]
    index: int

    @property
    def day(self) -> date:
        return london_date(self.at)


def council_actions(transfers: TransferPlan | None) -> list[CouncilAction]:
    """The identifications and panel agendas of ``transfers``, in order."""
    if transfers is None:
        return []
    actions = [
        CouncilAction(transfers.identified_at(i), "identify", i)
        for i in range(len(transfers.identifications))
    ]
    actions += [
        CouncilAction(panel.listed_at, "list", i)
        for i, panel in enumerate(transfers.panels)
    ]
    return sorted(actions, key=lambda a: (a.at, a.kind, a.index))


def plan_actions(
    cases: Iterable[PlannedCase], transfers: TransferPlan | None = None
) -> list[Action]:
    """Every command of ``cases`` in the order it happened.

    An exception is recorded at 10:00 London on the day the coordinator noted it; the
    later stages' steps and the phase transfers' at the moments the plan gives them. A
    case's own commands keep their order even when two share a moment.
    """
    actions: list[Action] = []
    cases = list(cases)
    if transfers is not None:
        by_sequence = {case.sequence: case for case in cases}
        for transfer in transfers.transfers:
            case = by_sequence[transfer.sequence]
            actions += [
                Action(step.at, "transfer", case, transfer=step)
                for step in transfer.steps()
            ]
    for case in cases:
        actions.append(Action(case.received_at, "receive", case))
        if case.exception_noted_on is not None:
            noted = datetime.combine(
                case.exception_noted_on, clock_time(10, 0), LONDON
            ).astimezone(UTC)
            actions.append(Action(max(noted, case.received_at), "exception", case))
        outcome_at = max(case.outcome_recorded_at, case.received_at)
        actions.append(Action(outcome_at, "outcome", case))
        actions += [Action(step.at, "step", case, step) for step in case.steps()]
    actions.sort(key=lambda a: (a.at, a.case.sequence, _KIND_ORDER[a.kind]))
    return actions


def demo_days(
    actions: Sequence[Action], year: int, margin_days: int, until: date | None = None
) -> list[date]:
    """Every day from 1 January of ``year`` to the end of the demo.

    The end is ``until`` (the period the caseload was planned for) when given, and
    otherwise ``margin_days`` after the last action; never before the last action.
    """
    first = date(year, 1, 1)
    if actions:
        first = min(first, actions[0].day)
    last_action = max((a.day for a in actions), default=date(year, 12, 31))
    if until is None:
        last = last_action + timedelta(days=margin_days)
    else:
        last = max(until, last_action)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def tick_moment(day: date) -> datetime:
    """08:00 London time on ``day``, in UTC."""
    return datetime.combine(day, TICK_TIME, LONDON).astimezone(UTC)


# -- what the topics say ---------------------------------------------------------------


@dataclass(slots=True)
class ClockTrack:
    """What the deadlines topic has said about one clock of one case."""

    case_id: str
    clock_id: str
    clock: str
    set_at_ms: int | None = None
    due_on: str | None = None
    final: str | None = None
    approaching: int = 0
    overdue_ids: set[str] = field(default_factory=set)
    withdrawn_ids: set[str] = field(default_factory=set)
    exception: bool = False
    transitions: list[str] = field(default_factory=list)

    @property
    def still_overdue(self) -> bool:
        return self.final is None and bool(self.overdue_ids - self.withdrawn_ids)

    @property
    def state(self) -> str:
        """met, late, cancelled, overdue or open (set, and nothing final yet)."""
        if self.final is not None:
            return self.final
        return "overdue" if self.still_overdue else "open"


_FINAL_STATES = {CLOCK_MET: "met", CLOCK_LATE: "late", CLOCK_CANCELLED: "cancelled"}
WATCHED_TOPICS = (
    INTAKE.name,
    PLANS.name,
    REVIEWS.name,
    PLACEMENT.name,
    DEADLINES.name,
    NOTIFY.name,
)


@dataclass(frozen=True, slots=True)
class Notification:
    """One ``NotificationSent`` or ``NotificationFailed`` event of notify."""

    name: str
    case_id: str
    alert_kind: str
    recipient_role: str
    channel: str = "email"
    provider: str = "smtp"
    bundle_id: str | None = None
    alert_id: str = ""
    corrects_alert_id: str | None = None
    cause: str = ""
    """The clock event and the recipient: the same for an alert's email and text."""


@dataclass(frozen=True, slots=True)
class IntakeRecord:
    """Where one intake event was read: its type, key, partition, offset and time."""

    ce_type: str
    key: str
    partition: int
    offset: int
    timestamp_ms: int


class TopicWatcher:
    """Reads the domain, deadlines and notify topics on a thread, from their ends.

    Every event is kept once (by ``ce_id``). ``wait_until`` blocks until a condition
    on what was read holds, which is how the driver knows a service has answered.
    """

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self._failure: BaseException | None = None
        self._last_record_at = 0.0
        self.seen_ids: set[str] = set()
        self.intake_ids: set[str] = set()
        self.domain_ids: set[str] = set()
        self.followed: dict[str, set[str]] = {}
        self.case_tracks: dict[str, list[ClockTrack]] = {}
        self.intake_records: dict[str, list[IntakeRecord]] = {}
        self.received_ms: dict[str, int] = {}
        self.clocks: dict[tuple[str, str], ClockTrack] = {}
        self.decision_tracks: dict[str, ClockTrack] = {}
        self.clock_events: Counter[str] = Counter()
        self.notifications: dict[str, Notification] = {}
        self.placement_events: list[tuple[str, str, str]] = []
        """(case id, event name, outcome) of each placement event, in order."""
        self.unreadable = 0

    def start(self) -> TopicWatcher:
        """Take the topics' current ends as the start, then read on a thread."""
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap.split(","),
            client_id="devstack-demo-watcher",
            enable_auto_commit=False,
            consumer_timeout_ms=-1,
        )
        partitions = [
            TopicPartition(topic, partition)
            for topic in WATCHED_TOPICS
            for partition in sorted(_partitions_of(consumer, topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        # Asking the position makes the consumer look the end offsets up now, so a
        # record published after start() returns is never skipped.
        for partition in partitions:
            consumer.position(partition)
        self._consumer = consumer
        self._thread = threading.Thread(
            target=self._read, name="demo-topic-watcher", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._consumer is not None:
            self._consumer.close()

    def __enter__(self) -> TopicWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                batches = self._consumer.poll(timeout_ms=200)
                if not batches:
                    continue
                with self._lock:
                    fresh = [
                        self.take(record)
                        for records in batches.values()
                        for record in records
                    ]
                    # Only a new event counts as progress: a worker crashing and
                    # starting again may publish the same events over and over.
                    if any(fresh):
                        self._last_record_at = time.monotonic()
                    self._lock.notify_all()
        except Exception as error:
            # The driver waits on this thread; a dead watcher must end the demo with
            # its reason rather than leave it waiting for its timeout.
            log.exception("topic watcher stopped")
            with self._lock:
                self._failure = error
                self._lock.notify_all()

    def take(self, record: Any) -> bool:
        """Count one consumed record; whether it was new (a repeated id is not)."""
        try:
            event = from_kafka(record)
        except InvalidEnvelope as error:
            self.unreadable += 1
            log.warning("unreadable record on %s: %s", record.topic, error)
            return False
        if event.id in self.seen_ids:
            return False
        self.seen_ids.add(event.id)
        timestamp = int(record.timestamp)
        if record.topic in (PLANS.name, REVIEWS.name, PLACEMENT.name):
            self.domain_ids.add(event.id)
            self.followed.setdefault(event.subject, set()).add(event.name)
            if record.topic == PLACEMENT.name:
                outcome = str(event.data.get("outcome") or "")
                self.placement_events.append((event.subject, event.name, outcome))
        elif record.topic == INTAKE.name:
            self.intake_ids.add(event.id)
            self.domain_ids.add(event.id)
            self.intake_records.setdefault(event.subject, []).append(
                IntakeRecord(
                    event.type,
                    event.key or "",
                    record.partition,
                    record.offset,
                    timestamp,
                )
            )
            if event.name == REQUEST_RECEIVED:
                self.received_ms.setdefault(event.subject, timestamp)
        elif record.topic == DEADLINES.name:
            self._take_clock_event(
                event.id, event.name, event.subject, event.data, timestamp
            )
        elif record.topic == NOTIFY.name and event.name in (
            NOTIFICATION_SENT,
            NOTIFICATION_FAILED,
        ):
            self.notifications[event.id] = Notification(
                event.name,
                event.subject,
                str(event.data.get("alert_kind", "")),
                str(event.data.get("recipient_role", "")),
                str(event.data.get("channel") or "email"),
                str(event.data.get("provider") or "smtp"),
                event.data.get("bundle_id"),
                str(event.data.get("alert_id", "")),
                event.data.get("corrects_alert_id"),
                f"{event.data.get('clock_event_id')}/"
                f"{event.data.get('recipient_staff_id')}",
            )
        return True

    def _take_clock_event(
        self,
        event_id: str,
        name: str,
        case_id: str,
        data: Mapping[str, Any],
        timestamp: int,
    ) -> None:
        clock_id = str(data.get("clock_id", ""))
        key = (case_id, clock_id)
        track = self.clocks.get(key)
        if track is None:
            track = ClockTrack(case_id, clock_id, str(data.get("clock", clock_id)))
            self.clocks[key] = track
            self.case_tracks.setdefault(case_id, []).append(track)
            if track.clock == DECISION_CLOCK:
                self.decision_tracks.setdefault(case_id, track)
        self.clock_events[name] += 1
        track.transitions.append(name)
        if name == CLOCK_SET:
            track.set_at_ms = timestamp if track.set_at_ms is None else track.set_at_ms
            track.due_on = str(data.get("due_on"))
        elif name in _FINAL_STATES:
            track.final = _FINAL_STATES[name]
        elif name == CLOCK_APPROACHING:
            track.approaching += 1
        elif name == CLOCK_OVERDUE:
            track.overdue_ids.add(event_id)
        elif name == ALERT_WITHDRAWN:
            track.withdrawn_ids.add(str(data.get("alert_id", "")))
        elif name == CLOCK_EXCEPTION:
            track.exception = True
        if data.get("exception_reason"):
            track.exception = True

    def wait_until(
        self,
        condition: Callable[[], bool],
        stall: float,
        what: str,
        stopped: StoppedProcess = nothing_stopped,
    ) -> None:
        """Return once ``condition()`` holds (called under the watcher's lock).

        A busy machine may make the services slow but not silent, so this gives up
        only after ``stall`` seconds in which no new record arrived at all, or at
        once when ``stopped`` names a process of the platform that has stopped.
        """
        started = time.monotonic()
        with self._lock:
            while not condition():
                check_platform(stopped)
                if self._failure is not None:
                    raise DemoError(
                        f"the demo stopped reading Kafka: {self._failure!r}"
                    ) from self._failure
                quiet = time.monotonic() - max(started, self._last_record_at)
                if quiet > stall:
                    raise DemoError(
                        f"waited for {what}, but nothing new reached the topics for "
                        f"{stall:.0f} s"
                    )
                self._lock.wait(1.0)

    @contextlib.contextmanager
    def locked(self) -> Any:
        with self._lock:
            yield self

    def has_decision_event(self, case_id: str, names: frozenset[str]) -> bool:
        """Whether the case's decision clock has made one of the moves ``names``."""
        track = self.decision_tracks.get(case_id)
        return track is not None and any(n in names for n in track.transitions)

    def has_clock_event(self, case_id: str, clock: str, names: frozenset[str]) -> bool:
        """Whether some clock ``clock`` of the case has made one of the moves."""
        return any(
            track.clock == clock and any(n in names for n in track.transitions)
            for track in self.case_tracks.get(case_id, ())
        )

    def has_clock_id_event(
        self, case_id: str, clock_id: str, names: frozenset[str]
    ) -> bool:
        """Whether the case's clock ``clock_id`` has made one of the moves ``names``."""
        track = self.clocks.get((case_id, clock_id))
        return track is not None and any(n in names for n in track.transitions)

    def has_followed(self, case_id: str, name: str) -> bool:
        """Whether plans or reviews published an event ``name`` about the case."""
        return name in self.followed.get(case_id, ())


def _partitions_of(consumer: Any, topic: str, timeout: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        if time.monotonic() > deadline:
            raise DemoError(
                f"topic {topic} has no partitions on this broker; create the "
                "project's topics first (python -m devstack.kafka run does)"
            )
        consumer.topics()
        time.sleep(0.2)


# -- posting to the services -----------------------------------------------------------


StaffHeaders = Callable[[str], Mapping[str, str]]
"""The headers that say who acts: a bearer token for the staff id, or X-Staff-Id."""


def staff_id_header(staff_id: str) -> Mapping[str, str]:
    """``X-Staff-Id``: who acts, where the services run without access control."""
    return {"X-Staff-Id": staff_id}


class ApiClient:
    """Posts commands to one service's HTTP API, retrying lost answers with one key.

    Every command carries an ``Idempotency-Key`` made of the run id and the case's
    sequence number, so a retry after a dropped connection cannot record a fact twice.
    """

    def __init__(
        self,
        base_url: str,
        run_id: str,
        concurrency: int,
        *,
        service: str = "intake",
        staff_headers: StaffHeaders = staff_id_header,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service = service
        self._run_id = run_id
        self._staff_headers = staff_headers
        limits = httpx.Limits(max_connections=concurrency + 1)
        self._http = httpx.Client(
            base_url=self.base_url, timeout=HTTP_TIMEOUT_S, limits=limits
        )

    def close(self) -> None:
        self._http.close()

    def post(
        self, path: str, body: Mapping[str, Any], *, key: str, staff_id: str
    ) -> dict[str, Any]:
        headers = {
            "Idempotency-Key": f"demo-{self._run_id}-{key}",
            **self._staff_headers(staff_id),
        }
        answer: httpx.Response | None = None
        for attempt in range(1, HTTP_ATTEMPTS + 1):
            try:
                answer = self._http.post(path, json=dict(body), headers=headers)
            except httpx.TransportError as error:
                if attempt == HTTP_ATTEMPTS:
                    raise DemoError(
                        f"{self.service} at {self.base_url} did not answer POST "
                        f"{path}: {error!r}; see its log under .run/logs/"
                    ) from error
                time.sleep(0.5 * attempt)
                continue
            if answer.status_code < 500 or attempt == HTTP_ATTEMPTS:
                break
            time.sleep(0.5 * attempt)
        assert answer is not None
        if answer.status_code >= 300:
            raise DemoError(
                f"{self.service} refused POST {path} with {answer.status_code}: "
                f"{_problem_detail(answer)}"
            )
        result: dict[str, Any] = answer.json()
        return result

    def get(self, path: str, *, staff_id: str) -> dict[str, Any]:
        """A query as ``staff_id``; a refusal or a lost answer is a ``DemoError``."""
        try:
            answer = self._http.get(path, headers=dict(self._staff_headers(staff_id)))
        except httpx.TransportError as error:
            raise DemoError(
                f"{self.service} at {self.base_url} did not answer GET {path}: "
                f"{error!r}; see its log under .run/logs/"
            ) from error
        if answer.status_code != 200:
            raise DemoError(
                f"{self.service} refused GET {path} with {answer.status_code}: "
                f"{_problem_detail(answer)}"
            )
        result: dict[str, Any] = answer.json()
        return result


def _problem_detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:500]
    if isinstance(body, dict):
        detail = str(body.get("detail", ""))
        errors = body.get("errors") or []
        named = "; ".join(
            f"{e.get('field')}: {e.get('message')}"
            for e in errors
            if isinstance(e, dict)
        )
        return f"{detail} {named}".strip() or str(body)[:500]
    return str(body)[:500]


# -- the summary -----------------------------------------------------------------------


STATE_MEANINGS = (
    ("set", "clocks started (a ClockSet was published)"),
    ("met", "stopped on or before the due date"),
    ("late", "stopped after the due date"),
    ("cancelled", "no longer applies (the request was withdrawn, or refused)"),
    ("overdue", "past the due date with nothing to stop it yet (live, not final)"),
    ("open", "running, not yet due (an approaching alert may have gone out)"),
    (
        "exception",
        "an exception to the time limit applies (a flag; these clocks "
        "are also counted in one of the states)",
    ),
)


@dataclass(frozen=True, slots=True)
class ClockCounts:
    """One clock rule's clocks over the demo's cases, by the state each ended in."""

    clock: str
    set: int
    met: int
    late: int
    cancelled: int
    overdue: int
    open: int
    exception: int
    approaching_alerts: int
    overdue_alerts: int

    @property
    def adds_up(self) -> bool:
        return self.set == (
            self.met + self.late + self.cancelled + self.overdue + self.open
        )


@dataclass(frozen=True, slots=True)
class Latency:
    """How long after a request's event its decision clock's ClockSet was published."""

    count: int
    median_ms: float
    p95_ms: float
    max_ms: float


@dataclass(slots=True)
class DemoSummary:
    """The demo's figures: what was posted, what the clocks did, what was emailed."""

    scale: float
    year: int
    first_day: str
    last_day: str
    seconds: float
    requests: int
    assignments: int
    agreed: int
    refused: int
    withdrawn: int
    exceptions: int
    clocks: list[ClockCounts]
    planned_decision: dict[str, int]
    emails_in_catcher: int
    notifications_sent: int
    notifications_failed: int
    sent_by_kind: dict[str, int]
    sent_by_role: dict[str, int]
    latency: Latency | None
    timeline: dict[str, int]
    deadlines_summary: Any
    read_model: str
    mail_dir: str
    mail_url: str
    problems: list[str] = field(default_factory=list)
    until: str | None = None
    later_posted: dict[str, int] = field(default_factory=dict)
    planned_clocks: dict[str, dict[str, int]] = field(default_factory=dict)
    timeliness: Timeliness | None = None
    planned_timeliness: Timeliness | None = None
    published: dict[str, float | None] = field(default_factory=dict)
    read_model_timeliness: str = ""
    sent_by_kind_and_role: dict[str, int] = field(default_factory=dict)
    time_spent: dict[str, float] = field(default_factory=dict)
    transfers: dict[str, Any] = field(default_factory=dict)
    """The phase-transfer year: see ``DemoDriver.transfer_figures``."""
    email_messages: int | None = None
    """Emails handed to SMTP: one per NotificationSent, but one per digest or list."""

    @property
    def alerts_raised(self) -> dict[str, int]:
        return {
            "approaching": sum(c.approaching_alerts for c in self.clocks),
            "overdue": sum(c.overdue_alerts for c in self.clocks),
        }

    @property
    def reconciles(self) -> bool:
        return not self.problems

    def clock(self, name: str) -> ClockCounts | None:
        return next((c for c in self.clocks if c.clock == name), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["reconciles"] = self.reconciles
        data["alerts_raised"] = self.alerts_raised
        for counts, row in zip(self.clocks, data["clocks"], strict=True):
            row["adds_up"] = counts.adds_up
        for name in ("timeliness", "planned_timeliness"):
            figures: Timeliness | None = getattr(self, name)
            if figures is not None:
                data[name] |= {
                    "within_20_weeks_share": figures.within_20_weeks_share,
                    "within_20_weeks_share_excl_exceptions": (
                        figures.within_20_weeks_share_excl_exceptions
                    ),
                    "within_4_weeks_share": figures.within_4_weeks_share,
                }
        return data

    def render(self) -> str:
        lines = [
            f"Demo summary: {self.requests:,} requests of {self.year} (scale "
            f"{self.scale:g}), simulated {self.first_day} to {self.last_day}, "
            f"in {_duration(self.seconds)}.",
            f"  Posted to intake: {self.requests:,} requests, {self.assignments:,} "
            f"coordinator assignments, {self.agreed + self.refused:,} decisions "
            f"({self.agreed:,} agreed, {self.refused:,} refused), {self.withdrawn:,} "
            f"withdrawals, {self.exceptions:,} time-limit exceptions.",
            "  Clocks (send.deadlines.events, de-duplicated on ce_id, this demo's "
            "cases only):",
            _table_row(("clock", *_COLUMNS)),
        ]
        for c in self.clocks:
            values = (c.set, c.met, c.late, c.cancelled, c.overdue, c.open, c.exception)
            row = _table_row((c.clock, *(f"{v:,}" for v in values)))
            lines.append(row if c.adds_up else row + "  DOES NOT ADD UP")
        lines.append(
            "  Each row adds up: set = met + late + cancelled + overdue + open."
        )
        lines += [f"    {name}: {meaning}." for name, meaning in STATE_MEANINGS]
        planned = self.planned_decision
        lines.append(
            "  The decision clock against the plan (which computes each due date "
            f"itself): met {planned['met']:,}, late {planned['late']:,}, cancelled "
            f"{planned['cancelled']:,}, exception {planned['exception']:,}."
        )
        raised = self.alerts_raised
        lines.append(
            f"  Alerts raised: {raised['approaching']:,} ClockApproaching (each emails "
            f"the coordinator) and {raised['overdue']:,} ClockOverdue (each emails the "
            "coordinator, and the manager too when the limit is statutory and no "
            "exception applies); a review's own clocks email the school's SENCO too."
        )
        timeline = self.timeline
        lines.append(
            f"  Alerts at the right time: {timeline['in_time_never_overdue']:,} "
            f"cases decided or withdrawn in time were never overdue ("
            f"{timeline['in_time_overdue']:,} were), {timeline['late_overdue_first']:,}"
            f" late ones were overdue first ({timeline['late_never_overdue']:,} "
            "were not)."
        )
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(self.sent_by_kind.items()))
        roles = ", ".join(f"{k} {n:,}" for k, n in sorted(self.sent_by_role.items()))
        lines += [
            f"  Emails: {self.emails_in_catcher:,} in the mail catcher, "
            f"{self.notifications_sent:,} NotificationSent on send.notify.events "
            f"({kinds or 'none'}; to {roles or 'nobody'}), "
            f"{self.notifications_failed:,} NotificationFailed.",
            f"  Read them as files in {self.mail_dir} or on {self.mail_url}",
        ]
        lines += self._render_later()
        lines += render_transfers(self.transfers)
        lines.append(f"  The deadlines read model: {self.read_model}.")
        if self.read_model_timeliness:
            lines.append(f"  Its timeliness: {self.read_model_timeliness}.")
        if self.time_spent:
            lines.append(
                "  Time spent: "
                + ", ".join(f"{k} {_duration(v)}" for k, v in self.time_spent.items())
                + "."
            )
        if self.latency is not None:
            lines.append(
                "  A request's event to its ClockSet on the topic: median "
                f"{self.latency.median_ms:.0f} ms, 95th percentile "
                f"{self.latency.p95_ms:.0f} ms, max {self.latency.max_ms:.0f} ms "
                f"({self.latency.count:,} requests)."
            )
        if self.reconciles:
            lines.append("  The numbers reconcile.")
        else:
            lines.append("  The numbers DO NOT reconcile:")
            lines += [f"    - {problem}" for problem in self.problems]
        return "\n".join(lines)

    def _render_later(self) -> list[str]:
        """The later stages: what was posted, and the DfE's timeliness figures."""
        figures = self.timeliness
        if figures is None:
            return []
        posted = self.later_posted
        lines = [
            "  Posted to plans and reviews: "
            + ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in posted.items())
            + ".",
            "  20-week timeliness of new plans (final_plan clocks met or late, as the "
            "DfE counts them):",
            f"    plans issued {figures.plans_issued:,}, within 20 weeks "
            f"{figures.plans_within_20_weeks:,} "
            f"({_percent(figures.within_20_weeks_share)}); excluding exceptions "
            f"{figures.plans_within_20_weeks_excl_exceptions:,} of "
            f"{figures.plans_issued_excl_exceptions:,} "
            f"({_percent(figures.within_20_weeks_share_excl_exceptions)}; published "
            f"{_percent(self.published.get('within_20_weeks_excl_exceptions'))}).",
            "  Annual reviews (first reviews of those plans; review_decision clocks):",
            f"    reviews held {figures.reviews_held:,} "
            f"({figures.reviews_held_in_time:,} within their 12 months), decisions "
            f"{figures.review_decisions:,}, within 4 weeks "
            f"{figures.review_decisions_within_4_weeks:,} "
            f"({_percent(figures.within_4_weeks_share)}; published "
            f"{_percent(self.published.get('review_decisions_within_4_weeks'))}).",
        ]
        planned = self.planned_timeliness
        if planned is not None:
            agrees = "agree" if planned == figures else "DIFFER"
            lines.append(
                f"  The plan intends {planned.plans_issued:,} plans "
                f"({planned.plans_within_20_weeks:,} within 20 weeks), "
                f"{planned.reviews_held:,} reviews held and "
                f"{planned.review_decisions:,} decisions "
                f"({planned.review_decisions_within_4_weeks:,} within 4 weeks): "
                f"the clocks' figures {agrees}."
            )
        return lines


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def render_transfers(transfers: Mapping[str, Any]) -> list[str]:
    """The summary's lines on the phase-transfer year (none without one)."""
    if not transfers:
        return []
    seen: Mapping[str, int] = transfers.get("observed", {})
    planned: Mapping[str, int] = transfers.get("planned", {})
    listed: Mapping[str, Any] = transfers.get("placement_cohort", {})
    read: Mapping[str, Any] = transfers.get("read_api", {})
    runs = ", ".join(
        f"{n:,} on {day}" for day, n in transfers.get("identified", {}).items()
    )
    statuses = ", ".join(
        f"{name} {n:,}" for name, n in sorted(listed.get("by_status", {}).items())
    )
    missed = seen.get("deadline_late", 0) + seen.get("deadline_overdue", 0)

    def n(name: str) -> str:
        return f"{seen.get(name, 0):,}"

    lines = [
        f"  Phase transfers into September {transfers['transfer_year']} (placement; "
        "its clocks on send.deadlines.events):",
        f"    cohort {n('cohort')} children with plans ({n('cohort_school')} school "
        f"moves due by {transfers.get('school_due_on')}, {n('cohort_post16')} to "
        f"post-16 due by {transfers.get('post16_due_on')}), identified "
        f"{runs or 'never'}; the plan says {planned.get('cohort', 0):,}.",
        f"    schools and colleges consulted {n('consultations')} times: answered "
        f"within 15 days {n('answered_within_15_days')}, after 15 days "
        f"{n('answered_after_15_days')}, unanswered after 15 days "
        f"{n('unanswered_after_15_days')} (still within them "
        f"{n('unanswered_within_15_days')}); {n('place_offered')} places offered, "
        f"{n('declined')} declined.",
        f"    panels: {transfers.get('panels_listed', 0):,} agendas on "
        f"{transfers.get('panel_days', 0):,} days; decisions: setting named "
        f"{n('panel_setting_named')}, deferred {n('panel_deferred')}, declined "
        f"{n('panel_declined')}; {n('communicated')} communicated to the family.",
        f"    plans amended naming the next setting {n('plans_amended')}: deadlines "
        f"met {n('deadline_met')}, missed {missed:,} (named late "
        f"{n('deadline_late')}, still overdue {n('deadline_overdue')}), not yet due "
        f"{n('deadline_open')}, plan ended {n('deadline_cancelled')}.",
        f"    placement's cohort list: {listed.get('total', 0):,} children ({statuses}"
        f"; {listed.get('not_identified', 0):,} of them never identified, their "
        "plans issued after the last identification).",
        f"    the deadlines read API's timelines: {read.get('note', 'not asked')}.",
    ]
    return lines


TIME_SPENT_ON = ("ticks", "commands", "publishing", "clock answers", "last alerts")
"""Where the demo's time goes: sending ticks, posting commands (HTTP), waiting for
the relays to publish a day's events, for the processor's answers, for the emails."""

_COLUMNS = ("set", "met", "late", "cancelled", "overdue", "open", "exception")
_WIDTHS = (22, 7, 7, 7, 10, 9, 7, 11)


def _table_row(cells: Sequence[str]) -> str:
    first, *rest = cells
    return (
        "    "
        + first.ljust(_WIDTHS[0])
        + "".join(
            cell.rjust(width) for cell, width in zip(rest, _WIDTHS[1:], strict=True)
        )
    )


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def count_clocks(watcher: TopicWatcher, case_ids: set[str]) -> list[ClockCounts]:
    """Every clock rule's counts over ``case_ids``, decision clock first."""
    rows: dict[str, Counter[str]] = {}
    with watcher.locked():
        tracks = [t for t in watcher.clocks.values() if t.case_id in case_ids]
        for track in tracks:
            row = rows.setdefault(track.clock, Counter())
            if track.set_at_ms is not None:
                row["set"] += 1
                row[track.state] += 1
            row["exception"] += track.exception
            row["approaching_alerts"] += track.approaching
            row["overdue_alerts"] += len(track.overdue_ids)
    order = sorted(rows, key=lambda name: (name != DECISION_CLOCK, name))
    return [
        ClockCounts(
            clock=name,
            set=rows[name]["set"],
            met=rows[name]["met"],
            late=rows[name]["late"],
            cancelled=rows[name]["cancelled"],
            overdue=rows[name]["overdue"],
            open=rows[name]["open"],
            exception=rows[name]["exception"],
            approaching_alerts=rows[name]["approaching_alerts"],
            overdue_alerts=rows[name]["overdue_alerts"],
        )
        for name in order
    ]


def planned_decision_counts(cases: Sequence[PlannedCase]) -> dict[str, int]:
    """What the plan says the decision clock must end as, case by case."""
    return {
        "set": len(cases),
        "met": sum(c.within_time is True for c in cases),
        "late": sum(c.within_time is False for c in cases),
        "cancelled": sum(c.outcome == "withdrawn" for c in cases),
        "overdue": 0,
        "open": 0,
        "exception": sum(c.exception_reason is not None for c in cases),
    }


def check_timeline(
    cases: Sequence[PlannedCase], case_ids: Mapping[int, str], watcher: TopicWatcher
) -> dict[str, int]:
    """Whether each decision clock was overdue exactly when the plan says it was.

    A case closed by its due date, and recorded by then, must never have been overdue;
    a late decision must have been overdue first (a tick comes every day). Final
    states alone cannot show this: a clock judged against the wrong "now" still ends
    met or late by the facts' dates, but alerts the wrong people meanwhile.
    """
    counts = Counter[str]()
    with watcher.locked():
        for case in cases:
            track = watcher.decision_tracks.get(case_ids.get(case.sequence, ""))
            if track is None:
                continue
            was_overdue = bool(track.overdue_ids)
            closed_on = case.decision_notified_on or case.withdrawn_on
            recorded_on = london_date(case.outcome_recorded_at)
            due = case.decision_due_on
            if closed_on is not None and closed_on <= due and recorded_on <= due:
                counts[
                    "in_time_overdue" if was_overdue else "in_time_never_overdue"
                ] += 1
            elif case.within_time is False:
                counts[
                    "late_overdue_first" if was_overdue else "late_never_overdue"
                ] += 1
    names = (
        "in_time_never_overdue",
        "in_time_overdue",
        "late_overdue_first",
        "late_never_overdue",
    )
    return {name: counts[name] for name in names}


def measure_latency(watcher: TopicWatcher, case_ids: Iterable[str]) -> Latency | None:
    """RequestReceived's record time to its decision ClockSet's, over ``case_ids``."""
    gaps: list[float] = []
    with watcher.locked():
        for case_id in case_ids:
            received = watcher.received_ms.get(case_id)
            track = watcher.decision_tracks.get(case_id)
            if received is None or track is None or track.set_at_ms is None:
                continue
            gaps.append(float(track.set_at_ms - received))
    if not gaps:
        return None
    gaps.sort()
    p95 = gaps[min(len(gaps) - 1, round(0.95 * (len(gaps) - 1)))]
    return Latency(len(gaps), statistics.median(gaps), p95, gaps[-1])


# -- the driver ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """How the demo year is played."""

    year: int = 2024
    scale: float = 1.0
    concurrency: int = DEFAULT_CONCURRENCY
    margin_days: int = DEFAULT_MARGIN_DAYS
    output_stall: float = OUTPUT_STALL_S
    settle_stall: float = SETTLE_STALL_S
    until: date | None = None
    published: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DemoServices:
    """Where the running platform is, and how to move its clock and read its ledger."""

    intake_url: str
    mail_url: str
    mail_dir: Path
    ticker: Ticker
    deadlines_url: str | None = None
    ledger_status: Callable[[], Mapping[str, int] | None] = lambda: None
    plans_url: str | None = None
    reviews_url: str | None = None
    staff_headers: StaffHeaders = staff_id_header
    placement_url: str | None = None
    stopped: StoppedProcess = nothing_stopped
    """Asked each simulated day and while the demo waits: a process of the platform
    that has stopped ends the demo at once, named, instead of after a stall."""


@dataclass(frozen=True, slots=True)
class _Expected:
    """A clock move the deadlines processor must make in answer to a fact."""

    case_id: str
    clock: str
    names: frozenset[str]
    what: str
    clock_id: str | None = None
    """One clock of the rule (a consultation's), where the case has several."""


@dataclass(slots=True)
class _DayWork:
    """What one day's commands must lead to before the next day's tick."""

    event_ids: set[str] = field(default_factory=set)
    expected: list[_Expected] = field(default_factory=list)


_STOPPED = frozenset({CLOCK_MET, CLOCK_LATE})
_ANSWER_TO: Mapping[str, frozenset[str]] = {
    "receive": frozenset({CLOCK_SET}),
    "exception": frozenset({CLOCK_EXCEPTION}),
    "decided": _STOPPED,
    "withdrawn": frozenset({CLOCK_CANCELLED}),
}
# The clock move each later step must bring, where one clock answers it alone.
_STEP_ANSWERS: Mapping[str, tuple[str, frozenset[str]]] = {
    "advice_requested": ("advice", frozenset({CLOCK_SET})),
    "no_plan_notice": ("no_plan_notice", _STOPPED),
    "draft_plan": ("no_plan_notice", frozenset({CLOCK_CANCELLED})),
    "final_plan_exception": ("final_plan", frozenset({CLOCK_EXCEPTION})),
    "final_plan": ("final_plan", _STOPPED),
    "review_held": ("review_decision", frozenset({CLOCK_SET})),
    "review_decided": ("review_decision", _STOPPED),
    "plan_amended": ("final_amended_plan", _STOPPED),
}


class DemoDriver:
    """Plays a planned caseload through the running platform; see the module doc."""

    def __init__(
        self,
        cases: Sequence[PlannedCase],
        services: DemoServices,
        watcher: TopicWatcher,
        settings: DemoSettings,
        out: TextIO,
        transfers: TransferPlan | None = None,
    ) -> None:
        if not cases:
            raise DemoError("the caseload is empty; give a larger --scale")
        self.cases = list(cases)
        self.services = services
        self.watcher = watcher
        self.settings = settings
        self._out = out
        self._run_id = uuid.uuid4().hex[:12]
        self._intake = ApiClient(
            services.intake_url,
            self._run_id,
            settings.concurrency,
            staff_headers=services.staff_headers,
        )
        self._plans = self._client("plans", services.plans_url)
        self._reviews = self._client("reviews", services.reviews_url)
        self._placement = self._client("placement", services.placement_url)
        if transfers is None and self._placement is not None and settings.until:
            transfers = plan_transfers(
                self.cases, transfer_year_of(settings.year), settings.until
            )
        self.transfers = transfers if self._placement is not None else None
        self._consultation_ids: dict[tuple[int, int], str] = {}
        self._panel_ids: dict[tuple[date, int], str] = {}
        self.identified: dict[str, set[str]] = {}
        """The case ids each identification (by its day) recorded as new."""
        self._advice_ids: dict[tuple[int, str], str] = {}
        self._review_ids: dict[int, str] = {}
        self._followed: set[tuple[str, str]] = set()
        self.case_ids: dict[int, str] = {}
        self._lock = threading.Lock()
        self._posted: Counter[str] = Counter()
        self._spent: dict[str, float] = dict.fromkeys(TIME_SPENT_ON, 0.0)
        self._mail_at_start = _count_eml(services.mail_dir)

    def _client(self, service: str, url: str | None) -> ApiClient | None:
        if url is None:
            return None
        return ApiClient(
            url,
            self._run_id,
            self.settings.concurrency,
            service=service,
            staff_headers=self.services.staff_headers,
        )

    def close(self) -> None:
        for client in (self._intake, self._plans, self._reviews, self._placement):
            if client is not None:
                client.close()

    # Step 2 of make run: one request, seen arriving on the topic.

    def show_request_on_topic(self) -> IntakeRecord:
        """Post the first planned request and read it back from the intake topic.

        Then wait for its decision clock's ``ClockSet``, so a deadlines worker that is
        up but not processing stops the demo here, before the year begins.
        """
        case = self.cases[0]
        started = time.monotonic()
        work = _DayWork()
        self._receive(case, work, assign=False)
        case_id = self.case_ids[case.sequence]
        self.watcher.wait_until(
            lambda: case_id in self.watcher.intake_records,
            self.settings.output_stall,
            f"request {case_id} to reach {INTAKE.name} (is the intake relay up?)",
            self.services.stopped,
        )
        seconds = time.monotonic() - started
        with self.watcher.locked():
            record = self.watcher.intake_records[case_id][0]
        self._print(
            f"POST {self.services.intake_url}/cases answered 201 for case {case_id}; "
            f"read back from {INTAKE.name} (partition {record.partition}, offset "
            f"{record.offset}) {seconds:.2f} s later: ce_type={record.ce_type} "
            f"key={record.key}"
        )
        self._await_answers(work.expected)
        self._print(
            f"  and its decision clock set on {DEADLINES.name} "
            f"{time.monotonic() - started:.2f} s after the POST."
        )
        return record

    # Step 3: the year.

    def run(self) -> DemoSummary:
        started = time.monotonic()
        actions = plan_actions(self.cases, self.transfers)
        council = council_actions(self.transfers)
        steps = [a for a in actions if a.step is not None]
        if steps and (self._plans is None or self._reviews is None):
            raise DemoError(
                f"the caseload has {len(steps):,} plans and reviews commands, but no "
                "plans or reviews API was given to post them to"
            )
        days = demo_days(
            actions,
            self.settings.year,
            self.settings.margin_days,
            self.settings.until,
        )
        by_day: dict[date, list[Action]] = {}
        for action in actions:
            by_day.setdefault(action.day, []).append(action)
        council_by_day: dict[date, list[CouncilAction]] = {}
        for item in council:
            council_by_day.setdefault(item.day, []).append(item)
        if self.transfers is not None:
            self._print(
                f"Phase transfers into September {self.transfers.transfer_year}: "
                f"{self.transfers.cohort:,} children of the demo's plans, identified "
                "on "
                + ", ".join(f"{d}" for d in self.transfers.identifications)
                + f"; {len(self.transfers.panels):,} panel agendas."
            )
        self._print(
            f"Demo: {len(self.cases):,} requests of {self.settings.year} (scale "
            f"{self.settings.scale:g}), {len(actions):,} commands "
            f"({len(steps):,} of them to plans and reviews), {len(days)} simulated "
            f"days from {days[0]} to {days[-1]}; a tick at 08:00 London each day."
        )

        with ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="demo-post"
        ) as pool:
            unanswered: list[_Expected] = []
            for index, day in enumerate(days):
                with self._timed("ticks"):
                    self.services.ticker(tick_moment(day))
                # Each day: the commands of a day whose service died would fail only
                # after their retries, and an answer waited for only after a stall.
                check_platform(self.services.stopped)
                todays = by_day.get(day, [])
                council_today = council_by_day.get(day, [])
                if todays or council_today:
                    with self._timed("commands"):
                        work = self._council_day(council_today)
                        day_work = self._post_day(pool, todays)
                        work.event_ids |= day_work.event_ids
                        work.expected += day_work.expected
                    with self._timed("publishing"):
                        self._await_published(work, day)
                    unanswered += work.expected
                last_of_month = (
                    index + 1 == len(days) or days[index + 1].month != day.month
                )
                if last_of_month:
                    # Checked once a month rather than daily: the ticks' barriers
                    # already keep the order, and waiting each day would only slow
                    # the year down.
                    with self._timed("clock answers"):
                        self._await_answers(unanswered)
                    self._progress(day, started)

        self._print("Waiting for the last alerts to be sent...")
        with self._timed("last alerts"):
            self._settle()
        return self.summary(days, time.monotonic() - started)

    @contextlib.contextmanager
    def _timed(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self._spent[what] += time.monotonic() - started

    def _post_day(self, pool: ThreadPoolExecutor, todays: list[Action]) -> _DayWork:
        chains: dict[int, list[Action]] = {}
        for action in todays:
            chains.setdefault(action.case.sequence, []).append(action)
        works = list(pool.map(self._post_chain, chains.values()))
        merged = _DayWork()
        for work in works:
            merged.event_ids |= work.event_ids
            merged.expected += work.expected
        return merged

    def _post_chain(self, chain: list[Action]) -> _DayWork:
        work = _DayWork()
        for action in chain:
            if action.kind == "receive":
                self._receive(action.case, work, assign=True)
            elif action.kind == "exception":
                self._exception(action.case, work)
            elif action.step is not None:
                self._step(action.case, action.step, work)
            elif action.transfer is not None:
                self._transfer_step(action.case, action.transfer, work)
            else:
                self._outcome(action.case, work)
        return work

    def _receive(self, case: PlannedCase, work: _DayWork, *, assign: bool) -> None:
        case_id = self.case_ids.get(case.sequence)
        if case_id is None:
            answer = self._intake.post(
                "/cases",
                case.receive_request_body(),
                key=f"{case.sequence}-receive",
                staff_id=case.manager_id,
            )
            case_id = str(answer["case_id"])
            with self._lock:
                self.case_ids[case.sequence] = case_id
                self._posted["requests"] += 1
            self._expect(work, answer, case_id, "receive", "its ClockSet")
        if assign:
            answer = self._intake.post(
                f"/cases/{case_id}/coordinator",
                case.assign_coordinator_body(),
                key=f"{case.sequence}-assign",
                staff_id=case.manager_id,
            )
            with self._lock:
                self._posted["assignments"] += 1
            work.event_ids |= _event_ids(answer)

    def _exception(self, case: PlannedCase, work: _DayWork) -> None:
        body = case.time_limit_exception_body()
        if body is None:
            return
        case_id = self._case_id(case)
        answer = self._intake.post(
            f"/cases/{case_id}/time-limit-exceptions",
            body,
            key=f"{case.sequence}-exception",
            staff_id=case.coordinator_id,
        )
        with self._lock:
            self._posted["exceptions"] += 1
        self._expect(work, answer, case_id, "exception", "ClockExceptionApplied")

    def _outcome(self, case: PlannedCase, work: _DayWork) -> None:
        case_id = self._case_id(case)
        if case.outcome == "withdrawn":
            path, kind = f"/cases/{case_id}/withdrawal", "withdrawn"
        else:
            path, kind = f"/cases/{case_id}/decision", "decided"
        if case.decision_notified_on is not None:
            self._surgery(case, case_id, case.decision_notified_on, work)
        answer = self._intake.post(
            path,
            case.outcome_body(),
            key=f"{case.sequence}-outcome",
            staff_id=case.coordinator_id,
        )
        with self._lock:
            self._posted[case.outcome] += 1
        self._expect(work, answer, case_id, kind, "the decision clock's stop")

    def _surgery(
        self, case: PlannedCase, case_id: str, on: date, work: _DayWork
    ) -> None:
        # The Local Area Surgery considers a decided request on the day of its
        # decision, so its local target stops on the date the plan's tally of it
        # (planned_clocks) already counts, met or late as the decision is.
        answer = self._intake.post(
            f"/cases/{case_id}/surgery-presentation",
            {"presented_on": on.isoformat()},
            key=f"{case.sequence}-surgery",
            staff_id=case.coordinator_id,
        )
        with self._lock:
            self._posted["surgery_presentations"] += 1
        work.event_ids |= _event_ids(answer)

    def _case_id(self, case: PlannedCase) -> str:
        try:
            return self.case_ids[case.sequence]
        except KeyError:
            raise DemoError(
                f"planned case {case.sequence} has a command before its request was "
                "received; the plan is out of order"
            ) from None

    @staticmethod
    def _expect(
        work: _DayWork,
        answer: Mapping[str, Any],
        case_id: str,
        kind: str,
        what: str,
    ) -> None:
        work.event_ids |= _event_ids(answer)
        work.expected.append(_Expected(case_id, DECISION_CLOCK, _ANSWER_TO[kind], what))

    # The later stages: plans and reviews commands, and the odd intake one.

    def _step(self, case: PlannedCase, step: PlannedStep, work: _DayWork) -> None:
        case_id = self._case_id(case)
        body = case.step_body(step)
        key = f"{case.sequence}-{step.kind}-{step.advice_body or ''}-{step.on}"
        staff = case.coordinator_id
        if step.kind == "final_plan_exception":
            answer = self._intake.post(
                f"/cases/{case_id}/time-limit-exceptions",
                body,
                key=key,
                staff_id=staff,
            )
        elif step.service == "plans":
            client = self._require(self._plans)
            self._await_followed(case_id, ASSESSMENT_OPENED, PLANS.name)
            answer = client.post(
                self._plans_path(case, step, case_id), body, key=key, staff_id=staff
            )
            if step.kind == "advice_requested" and step.advice_body is not None:
                with self._lock:
                    self._advice_ids[(case.sequence, step.advice_body)] = str(
                        answer["advice_id"]
                    )
        else:
            client = self._require(self._reviews)
            self._await_followed(case_id, REVIEW_CYCLE_STARTED, REVIEWS.name)
            answer = client.post(
                self._reviews_path(case, step, case_id), body, key=key, staff_id=staff
            )
            if step.kind == "review_arranged":
                with self._lock:
                    self._review_ids[case.sequence] = str(answer["review_id"])
        with self._lock:
            self._posted[step.kind] += 1
        work.event_ids |= _event_ids(answer)
        expected = _STEP_ANSWERS.get(step.kind)
        if expected is not None:
            clock, names = expected
            work.expected.append(
                _Expected(
                    case_id,
                    clock,
                    names,
                    f"the {clock} clock's answer to "
                    f"{step.kind.replace('_', ' ')} on {step.on}",
                )
            )

    @staticmethod
    def _require(client: ApiClient | None) -> ApiClient:
        if client is None:
            raise DemoError("a plans or reviews command came without its API's URL")
        return client

    def _plans_path(self, case: PlannedCase, step: PlannedStep, case_id: str) -> str:
        base = f"/cases/{case_id}"
        if step.kind == "advice_received":
            key = (case.sequence, step.advice_body or "")
            advice_id = self._advice_ids.get(key)
            if advice_id is None:
                raise DemoError(
                    f"advice from {step.advice_body} for case {case_id} arrives before "
                    "it was requested; the plan is out of order"
                )
            return f"{base}/advice-requests/{advice_id}/receipt"
        paths = {
            "advice_requested": "/advice-requests",
            "no_plan_notice": "/no-plan-notice",
            "draft_plan": "/draft-plans",
            "draft_comments": "/draft-comments",
            "final_plan": "/final-plan",
            "plan_amended": "/amendments",
            "plan_ceased": "/cessation",
        }
        return base + paths[step.kind]

    def _reviews_path(self, case: PlannedCase, step: PlannedStep, case_id: str) -> str:
        base = f"/cases/{case_id}/reviews"
        if step.kind == "review_arranged":
            return base
        review_id = self._review_ids.get(case.sequence)
        if review_id is None:
            raise DemoError(
                f"a {step.kind} for case {case_id} comes before its review was "
                "arranged; the plan is out of order"
            )
        paths = {
            "referrals_made": "/referrals",
            "papers_sent": "/papers",
            "review_held": "/meeting",
            "report_received": "/report",
            "review_decided": "/decision",
        }
        return f"{base}/{review_id}{paths[step.kind]}"

    # The phase-transfer year: placement's commands, and the amended plans.

    def _transfer_plan(self) -> TransferPlan:
        if self.transfers is None or self._placement is None:
            raise DemoError("a phase-transfer command came without placement's URL")
        return self.transfers

    def _council_day(self, todays: Sequence[CouncilAction]) -> _DayWork:
        """The day's identifications and panel agendas, one after another."""
        work = _DayWork()
        for item in todays:
            if item.kind == "identify":
                self._identify(item.index, work)
            else:
                self._list_panel(item.index, work)
        return work

    def _identify(self, index: int, work: _DayWork) -> None:
        plan = self._transfer_plan()
        client = self._require(self._placement)
        day = plan.identifications[index]
        planned = {self._case_id_of(s): s for s in plan.cohorts[index]}
        self._await_cohort_known(set(planned))
        answer = client.post(
            f"/phase-transfers/{plan.transfer_year}/identify",
            {"identified_on": day.isoformat()},
            key=f"identify-{plan.transfer_year}-{index}",
            staff_id=plan.identifier_id,
        )
        identified = {str(case_id) for case_id in answer.get("identified", ())}
        with self._lock:
            self.identified[day.isoformat()] = identified
            self._posted["transfer_identifications"] += 1
        work.event_ids |= _event_ids(answer)
        for case_id in sorted(identified & set(planned)):
            transfer = plan.transfer_of(planned[case_id])
            assert transfer is not None  # every planned sequence has its transfer
            clock = f"phase_transfer_{transfer.transfer}"
            work.expected.append(
                _Expected(
                    case_id,
                    clock,
                    frozenset({CLOCK_SET}),
                    f"the {clock} clock's ClockSet after identifying on {day}",
                    clock_id=transfer_clock_id(transfer),
                )
            )

    def _await_cohort_known(self, case_ids: set[str]) -> None:
        """Wait until placement's cohort list shows ``case_ids`` (it read the plans).

        Placement learns of a plan from the plans topic; until it has, identifying the
        year would leave the child out.
        """
        if not case_ids:
            return
        plan = self._transfer_plan()
        client = self._require(self._placement)
        started = time.monotonic()
        while True:
            check_platform(self.services.stopped)
            listed = self._cohort_entries(client, plan.transfer_year)
            if case_ids <= set(listed):
                return
            if time.monotonic() - started > self.settings.output_stall:
                missing = ", ".join(sorted(case_ids - set(listed)))
                raise DemoError(
                    f"placement's cohort for {plan.transfer_year} still lacks {missing}"
                    f" after {self.settings.output_stall:.0f} s: is its subscriber to "
                    f"{PLANS.name} up? see .run/logs/placement-api.log"
                )
            time.sleep(0.5)

    @staticmethod
    def _cohort_entries(client: ApiClient, year: int) -> dict[str, dict[str, Any]]:
        """Placement's cohort list for ``year``, as every manager sees it together.

        Each reader sees only the cases they may read, a manager their own team's.
        """
        entries: dict[str, dict[str, Any]] = {}
        for manager in (m.staff_id for m in DEMO_STAFF if m.role == "manager"):
            answer = client.get(f"/phase-transfers/{year}", staff_id=manager)
            for child in answer.get("children", ()):
                entries[str(child["case_id"])] = child
        return entries

    def _list_panel(self, index: int, work: _DayWork) -> None:
        plan = self._transfer_plan()
        client = self._require(self._placement)
        panel = plan.panels[index]
        answer = client.post(
            "/panels",
            {
                "panel_on": panel.panel_on.isoformat(),
                "case_ids": [self._case_id_of(s) for s in panel.sequences],
            },
            key=f"panel-{plan.transfer_year}-{index}",
            staff_id=panel.manager_id,
        )
        with self._lock:
            for sequence in panel.sequences:
                self._panel_ids[(panel.panel_on, sequence)] = str(answer["panel_id"])
            self._posted["panels_listed"] += 1
        work.event_ids |= _event_ids(answer)

    def _case_id_of(self, sequence: int) -> str:
        try:
            return self.case_ids[sequence]
        except KeyError:
            raise DemoError(
                f"planned case {sequence} is in the transfer plan before its request "
                "was received; the plan is out of order"
            ) from None

    def _transfer_step(
        self, case: PlannedCase, step: TransferStep, work: _DayWork
    ) -> None:
        plan = self._transfer_plan()
        transfer = plan.transfer_of(case.sequence)
        if transfer is None:
            raise DemoError(f"case {case.sequence} has no planned transfer")
        case_id = self._case_id(case)
        body = transfer.step_body(step)
        key = f"{case.sequence}-transfer-{step.kind}-{step.index}-{step.on}"
        if step.kind == "amended":
            answer = self._require(self._plans).post(
                f"/cases/{case_id}/amendments",
                body,
                key=key,
                staff_id=case.coordinator_id,
            )
        else:
            path, staff = self._placement_path(case, transfer, step, case_id)
            answer = self._require(self._placement).post(
                path, body, key=key, staff_id=staff
            )
        if step.kind == "consulted":
            with self._lock:
                self._consultation_ids[(case.sequence, step.index)] = str(
                    answer["consultation_id"]
                )
        with self._lock:
            self._posted[f"transfer_{step.kind}"] += 1
        work.event_ids |= _event_ids(answer)
        # The clock move each step must bring; a submission or a panel's step none.
        answers: Mapping[str, tuple[str, frozenset[str]]] = {
            "consulted": ("school_consultation", frozenset({CLOCK_SET})),
            "answered": ("school_consultation", _STOPPED),
            "amended": (f"phase_transfer_{transfer.transfer}", _STOPPED),
        }
        if step.kind in answers:
            clock, names = answers[step.kind]
            work.expected.append(
                _Expected(
                    case_id,
                    clock,
                    names,
                    f"the {clock} clock's answer to {step.kind} on {step.on}",
                    clock_id=self._clock_id_of(case, transfer, step),
                )
            )

    def _clock_id_of(
        self, case: PlannedCase, transfer: PlannedTransfer, step: TransferStep
    ) -> str:
        """The deadlines clock a transfer step starts or stops (the rules' keys)."""
        if step.kind == "amended":
            return transfer_clock_id(transfer)
        consultation_id = self._consultation_ids[(case.sequence, step.index)]
        return f"school_consultation[consultation_id={consultation_id}]"

    def _placement_path(
        self,
        case: PlannedCase,
        transfer: PlannedTransfer,
        step: TransferStep,
        case_id: str,
    ) -> tuple[str, str]:
        """Where a transfer step goes in placement, and who posts it."""
        if step.kind == "consulted":
            return f"/cases/{case_id}/consultations", case.coordinator_id
        if step.kind == "answered":
            consultation_id = self._consultation_ids.get((case.sequence, step.index))
            if consultation_id is None:
                raise DemoError(
                    f"case {case_id}'s consultation {step.index} is answered before it "
                    "was sent; the plan is out of order"
                )
            return (
                f"/cases/{case_id}/consultations/{consultation_id}/answer",
                case.coordinator_id,
            )
        if step.kind == "submitted":
            return f"/cases/{case_id}/panel-submissions", case.coordinator_id
        panel_on = transfer.panels[step.index]
        panel_id = self._panel_ids.get((panel_on, case.sequence))
        if panel_id is None:
            raise DemoError(
                f"case {case_id} has a panel's {step.kind} on {panel_on}, but no panel "
                "listed it; the plan is out of order"
            )
        what = "decision" if step.kind == "decided" else "communication"
        return f"/panels/{panel_id}/cases/{case_id}/{what}", case.manager_id

    def transfer_figures(self, until: date) -> tuple[dict[str, Any], list[str]]:
        """The phase-transfer year as the topics, placement and the read API show it.

        Returns the summary's ``transfers`` part and every way it differs from the
        plan: the cohort identified, consultations answered and not, panel decisions,
        deadlines met and missed; placement's status of each child; the deadlines read
        API's due date and status of each child's clock.
        """
        plan = self.transfers
        client = self._placement
        if plan is None or client is None:
            return {}, []
        by_case = {self._case_id_of(t.sequence): t for t in plan.transfers}
        case_ids = set(by_case)
        seen: Counter[str] = Counter()
        with self.watcher.locked():
            tracks = [t for t in self.watcher.clocks.values() if t.case_id in case_ids]
            events = [e for e in self.watcher.placement_events if e[0] in case_ids]
        for case_id, name, outcome in events:
            if name == "PhaseTransferDue":
                seen["cohort"] += 1
                seen[f"cohort_{by_case[case_id].transfer}"] += 1
            elif name == "SettingConsulted":
                seen["consultations"] += 1
            elif name == "ConsultationAnswered":
                seen[outcome] += 1
            elif name == "PanelDecided":
                seen[f"panel_{outcome}"] += 1
            elif name == "PanelDecisionCommunicated":
                seen["communicated"] += 1
        consultation_states = {
            "met": "answered_within_15_days",
            "late": "answered_after_15_days",
            "overdue": "unanswered_after_15_days",
            "open": "unanswered_within_15_days",
        }
        topic_states: dict[str, str] = {}
        for track in tracks:
            if track.set_at_ms is None:
                continue
            if track.clock == "school_consultation":
                seen[consultation_states.get(track.state, track.state)] += 1
            elif track.clock.startswith("phase_transfer_"):
                seen[f"deadline_{track.state}"] += 1
                topic_states[track.case_id] = track.state
        with self._lock:
            seen["plans_amended"] = self._posted["transfer_amended"]
            panels_listed = self._posted["panels_listed"]
        planned = plan.figures(until)
        problems = [
            f"phase transfers: {name.replace('_', ' ')} is {seen.get(name, 0)}, the "
            f"plan says {value}"
            for name, value in sorted(planned.items())
            if name not in ("panels", "panel_agendas") and seen.get(name, 0) != value
        ]
        problems += self._consultations_as_planned(plan, until)
        listed = self._cohort_entries(client, plan.transfer_year)
        problems += self._identified_as_planned(plan)
        children: list[dict[str, Any]] = []
        wanted_status = {
            "met": "named",
            "late": "named_late",
            "overdue": "overdue",
            "open": "identified",
            "cancelled": "plan_ended",
        }
        read_right = Counter[str]()
        for case_id, transfer in sorted(by_case.items()):
            state = transfer.state_by(until)
            entry = listed.get(case_id, {})
            timeline = self._timeline_clock(
                case_id, f"phase_transfer_{transfer.transfer}"
            )
            child = {
                "case_id": case_id,
                "phase": transfer.phase,
                "leaving_year": transfer.leaving_year,
                "due_on": transfer.due_on.isoformat(),
                "identified_on": transfer.identified_on.isoformat(),
                "amended_on": _iso(transfer.amended_on),
                "planned": state,
                "topic": topic_states.get(case_id),
                "placement_status": entry.get("status"),
                "placement_due_on": entry.get("due_on"),
                "placement_act_by": entry.get("act_by"),
                "read_api_due_on": None if timeline is None else timeline["due_on"],
                "read_api_status": None if timeline is None else timeline["status"],
            }
            children.append(child)
            if child["placement_status"] != wanted_status[state]:
                problems.append(
                    f"phase transfer of {case_id}: placement says "
                    f"{child['placement_status']}, the plan says {wanted_status[state]}"
                )
            if child["placement_due_on"] != child["due_on"]:
                problems.append(
                    f"phase transfer of {case_id}: placement's due date is "
                    f"{child['placement_due_on']}, the plan's {child['due_on']}"
                )
            if timeline is not None:
                read_right["asked"] += 1
                read_right["due"] += child["read_api_due_on"] == child["due_on"]
                read_right["state"] += child["read_api_status"] == state
        if read_right["asked"]:
            note = (
                f"due dates right for {read_right['due']:,} and final states for "
                f"{read_right['state']:,} of {read_right['asked']:,} children"
            )
            if read_right["asked"] != min(read_right["due"], read_right["state"]):
                problems.append(f"the deadlines read API's transfer clocks: {note}")
        else:
            note = "it showed none of the cohort's clocks"
        statuses = Counter(str(e.get("status")) for e in listed.values())
        school = next((t for t in plan.transfers if t.transfer == "school"), None)
        post16 = next((t for t in plan.transfers if t.transfer == "post16"), None)
        figures = {
            "transfer_year": plan.transfer_year,
            "school_due_on": _iso(school.due_on if school else None),
            "post16_due_on": _iso(post16.due_on if post16 else None),
            "identified": {day: len(ids) for day, ids in self.identified.items()},
            "planned": planned,
            "planned_clocks": plan.clocks(until),
            "observed": dict(seen),
            "panels_listed": panels_listed,
            "panel_days": len({p.panel_on for p in plan.panels}),
            "placement_cohort": {
                "total": len(listed),
                "by_status": dict(statuses),
                "not_identified": sum(
                    1 for e in listed.values() if e.get("identified_on") is None
                ),
            },
            "read_api": {"note": note, **read_right},
            "children": children,
        }
        return figures, problems

    def _consultations_as_planned(self, plan: TransferPlan, until: date) -> list[str]:
        """Each consultation's own clock against the plan: met, late, overdue, open."""
        problems: list[str] = []
        for transfer in plan.transfers:
            case_id = self._case_id_of(transfer.sequence)
            for index, consulted in enumerate(transfer.consultations):
                consultation_id = self._consultation_ids.get((transfer.sequence, index))
                clock_id = f"school_consultation[consultation_id={consultation_id}]"
                with self.watcher.locked():
                    track = self.watcher.clocks.get((case_id, clock_id))
                state = None if track is None else track.state
                if consulted.answered_in_time is not None:
                    wanted = "met" if consulted.answered_in_time else "late"
                else:
                    wanted = "overdue" if until > consulted.due_on else "open"
                if state != wanted:
                    problems.append(
                        f"consultation {consultation_id} of {case_id} (sent "
                        f"{consulted.sent_on}): its clock is {state}, the plan says "
                        f"{wanted}"
                    )
        return problems

    def _identified_as_planned(self, plan: TransferPlan) -> list[str]:
        problems: list[str] = []
        for index, day in enumerate(plan.identifications):
            planned = {self._case_id_of(s) for s in plan.cohorts[index]}
            found = self.identified.get(day.isoformat(), set())
            if found != planned:
                problems.append(
                    f"identifying on {day} found {len(found)} children, the plan "
                    f"{len(planned)} ({len(found - planned)} unplanned, "
                    f"{len(planned - found)} missed)"
                )
        return problems

    def _timeline_clock(self, case_id: str, clock: str) -> dict[str, Any] | None:
        """The read API's view of the case's ``clock``, if it answers."""
        url = self.services.deadlines_url
        if url is None:
            return None
        coordinator = next(
            (
                c.coordinator_id
                for c in self.cases
                if self.case_ids.get(c.sequence) == case_id
            ),
            None,
        )
        headers = dict(self.services.staff_headers(coordinator or ""))
        try:
            answer = httpx.get(
                f"{url.rstrip('/')}/cases/{case_id}/timeline",
                headers=headers,
                timeout=HTTP_TIMEOUT_S,
            )
            body = answer.json() if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(body, dict):
            return None
        for item in body.get("clocks", ()):
            if isinstance(item, dict) and item.get("clock") == clock:
                return item
        return None

    def _await_followed(self, case_id: str, name: str, topic: str) -> None:
        """Wait until plans or reviews has taken the case on (its reaction event).

        A case opens in plans when plans reads intake's agreement, and in reviews when
        reviews reads the plan; until then their commands would answer 404 or 409.
        """
        if (case_id, name) in self._followed:
            return
        watcher = self.watcher
        watcher.wait_until(
            lambda: watcher.has_followed(case_id, name),
            self.settings.output_stall,
            f"{name} of case {case_id} on {topic} (is its subscriber up? see "
            ".run/logs/)",
            self.services.stopped,
        )
        with self._lock:
            self._followed.add((case_id, name))

    def _await_published(self, work: _DayWork, day: date) -> None:
        """Wait until the relays have put the day's events on their topics.

        The next tick's barrier is the topics' ends when it is sent, so an event still
        in a service's outbox then would be applied after that tick instead of before.
        """
        watcher = self.watcher
        watcher.wait_until(
            lambda: work.event_ids <= watcher.domain_ids,
            self.settings.output_stall,
            f"the events of {day} to reach {INTAKE.name}, {PLANS.name} and "
            f"{REVIEWS.name} (are the relays up? see .run/logs/)",
            self.services.stopped,
        )

    def _await_answers(self, expected: list[_Expected]) -> None:
        """Wait until the deadlines processor has answered each of ``expected``."""
        watcher = self.watcher
        for item in expected:
            condition = (
                functools.partial(
                    watcher.has_clock_event, item.case_id, item.clock, item.names
                )
                if item.clock_id is None
                else functools.partial(
                    watcher.has_clock_id_event, item.case_id, item.clock_id, item.names
                )
            )
            watcher.wait_until(
                condition,
                self.settings.output_stall,
                f"{item.what} of case {item.case_id} on {DEADLINES.name} (is the "
                "deadlines worker up? see .run/logs/deadlines-worker.log)",
                self.services.stopped,
            )
        expected.clear()

    def _progress(self, day: date, started: float) -> None:
        case_ids = set(self.case_ids.values())
        with self.watcher.locked():
            tracks = [t for t in self.watcher.clocks.values() if t.case_id in case_ids]
            events = sum(len(t.transitions) for t in tracks)
            decision = Counter(
                t.state
                for t in tracks
                if t.clock == DECISION_CLOCK and t.set_at_ms is not None
            )
            sent = sum(
                n.name == NOTIFICATION_SENT and n.case_id in case_ids
                for n in self.watcher.notifications.values()
            )
            final = Counter(
                t.state for t in tracks if t.clock == "final_plan" and t.set_at_ms
            )
        with self._lock:
            posted = Counter(self._posted)
        mail = _count_eml(self.services.mail_dir) - self._mail_at_start
        self._print(
            f"{day:%Y-%m}  posted {posted['requests']:>5,} requests, "
            f"{posted['agreed'] + posted['refused']:>5,} decisions, "
            f"{posted['withdrawn']:>3,} withdrawals | {events:>6,} clock events; "
            f"decision clocks {decision['open']:,} open, {decision['overdue']:,} "
            f"overdue, {decision['met']:,} met, {decision['late']:,} late, "
            f"{decision['cancelled']:,} cancelled | plans {posted['final_plan']:,} "
            f"issued ({final['met']:,} in 20 weeks, {final['overdue']:,} overdue), "
            f"reviews {posted['review_held']:,} held, {posted['review_decided']:,} "
            f"decided | {mail:>6,} emails, {sent:,} NotificationSent "
            f"[{_duration(time.monotonic() - started)}]"
        )

    def _settle(self) -> None:
        """Wait until notify has sent every alert and nothing new has arrived."""
        watcher = self.watcher
        last: tuple[Any, ...] | None = None
        quiet_since = time.monotonic()
        while True:
            check_platform(self.services.stopped)
            status = dict(self.services.ledger_status() or {})
            with watcher.locked():
                seen = len(watcher.seen_ids)
                published = len(watcher.notifications)
            mail = _count_eml(self.services.mail_dir) - self._mail_at_start
            snapshot = (seen, published, mail, tuple(sorted(status.items())))
            busy = status.get("pending", 0) + status.get("sending", 0)
            finished = status.get("sent", 0) + status.get("failed", 0)
            drained = busy == 0 and (not status or finished <= published)
            if snapshot != last:
                last, quiet_since = snapshot, time.monotonic()
            elif drained and time.monotonic() - quiet_since >= SETTLE_QUIET_S:
                return
            if time.monotonic() - quiet_since > self.settings.settle_stall:
                raise DemoError(
                    f"notify sent nothing for {self.settings.settle_stall:.0f} s with "
                    f"its ledger at {status}, {published} notify events seen and "
                    f"{mail} emails; see .run/logs/notify-worker.log"
                )
            time.sleep(1.0)

    # Step 4: the figures.

    def summary(self, days: Sequence[date], seconds: float) -> DemoSummary:
        case_ids = set(self.case_ids.values())
        clocks = count_clocks(self.watcher, case_ids)
        planned = planned_decision_counts(self.cases)
        with self.watcher.locked():
            ours = [
                n for n in self.watcher.notifications.values() if n.case_id in case_ids
            ]
        # Texts are counted by make run's closing note; the emails are held here to
        # the mail catcher, a digest being one email for the alerts it carries.
        sent = [n for n in ours if n.name == NOTIFICATION_SENT and n.channel == "email"]
        smtp = [n for n in sent if n.provider == "smtp"]
        with self._lock:
            posted = Counter(self._posted)
        remote, read_model, differences = self._read_model_check(clocks, case_ids)
        until = self.settings.until
        intended = planned_clocks(self.cases, until) if until is not None else {}
        transfers: dict[str, Any] = {}
        transfer_problems: list[str] = []
        if until is not None and self.transfers is not None:
            intended |= self.transfers.clocks(until)
            transfers, transfer_problems = self.transfer_figures(until)
        timeliness = count_timeliness(self.watcher, case_ids)
        timeliness_note, timeliness_differences = self._read_model_timeliness(
            timeliness, days[0], days[-1]
        )
        later: dict[str, int] = {k: posted[k] for k in STEP_KINDS if posted[k]}
        summary = DemoSummary(
            scale=self.settings.scale,
            year=self.settings.year,
            first_day=days[0].isoformat(),
            last_day=days[-1].isoformat(),
            seconds=round(seconds, 1),
            requests=posted["requests"],
            assignments=posted["assignments"],
            agreed=posted["agreed"],
            refused=posted["refused"],
            withdrawn=posted["withdrawn"],
            exceptions=posted["exceptions"],
            clocks=clocks,
            planned_decision=planned,
            emails_in_catcher=self._mail_api_count() - self._mail_at_start,
            notifications_sent=len(sent),
            notifications_failed=sum(n.name == NOTIFICATION_FAILED for n in ours),
            email_messages=sum(n.bundle_id is None for n in smtp)
            + len({n.bundle_id for n in smtp if n.bundle_id is not None}),
            sent_by_kind=dict(Counter(n.alert_kind for n in sent)),
            sent_by_role=dict(Counter(n.recipient_role for n in sent)),
            sent_by_kind_and_role=dict(
                Counter(f"{n.alert_kind}/{n.recipient_role}" for n in sent)
            ),
            time_spent={k: round(v, 1) for k, v in self._spent.items()},
            latency=measure_latency(self.watcher, case_ids),
            deadlines_summary=remote,
            read_model=read_model,
            mail_dir=str(self.services.mail_dir),
            mail_url=self.services.mail_url,
            timeline=check_timeline(self.cases, self.case_ids, self.watcher),
            until=until.isoformat() if until is not None else None,
            later_posted=later,
            planned_clocks=intended,
            timeliness=timeliness,
            planned_timeliness=planned_timeliness(self.cases),
            published=dict(self.settings.published),
            read_model_timeliness=timeliness_note,
            transfers=transfers,
        )
        summary.problems = (
            reconcile(summary, len(self.cases))
            + differences
            + timeliness_differences
            + transfer_problems
        )
        return summary

    def _mail_api_count(self) -> int:
        url = self.services.mail_url.rstrip("/") + "/api/messages"
        try:
            answer = httpx.get(url, timeout=HTTP_TIMEOUT_S)
            answer.raise_for_status()
            return int(answer.json()["count"])
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise DemoError(
                f"the mail catcher did not list its messages at {url}: {error!r}"
            ) from error

    def _read_model_timeliness(
        self, ours: Timeliness, first: date, last: date
    ) -> tuple[str, list[str]]:
        """What the read API's ``/timeliness`` says of the demo's days, and differences.

        The API counts a plan in the period its clock stopped in, under the DfE's
        column names, for at most three years at a time; the demo's days are asked for
        in such periods and the plan counts summed. The review figures have no DfE
        table there, so they are checked through ``/summary``'s rows instead.
        """
        if self.services.deadlines_url is None:
            return "", []
        url = self.services.deadlines_url.rstrip("/") + "/timeliness"
        # The read model may trail the topics by a moment: ask again for a while.
        deadline = time.monotonic() + READ_MODEL_WAIT_S
        while True:
            note, differences = self._ask_timeliness(url, ours, first, last)
            if not differences or time.monotonic() > deadline:
                return note, differences
            time.sleep(1.0)

    def _ask_timeliness(
        self, url: str, ours: Timeliness, first: date, last: date
    ) -> tuple[str, list[str]]:
        headers = dict(self.services.staff_headers(self.cases[0].manager_id))
        theirs = Counter[str]()
        start = first
        while start <= last:
            end = min(last, start + timedelta(days=TIMELINESS_PERIOD_DAYS - 1))
            params = {"from": start.isoformat(), "to": end.isoformat()}
            try:
                answer = httpx.get(
                    url, params=params, headers=headers, timeout=HTTP_TIMEOUT_S
                )
                table = answer.json()["timeliness_20_week"]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                return "", [f"{url} did not answer for {params}: {error!r}"]
            for column in TIMELINESS_COLUMNS.values():
                theirs[column] += int(table.get(column) or 0)
            start = end + timedelta(days=1)
        mine = asdict(ours)
        differences = [
            f"{name.replace('_', ' ')}: {mine[name]} on the topic, {theirs[column]} "
            f"as {column} in {url}"
            for name, column in TIMELINESS_COLUMNS.items()
            if mine[name] != theirs[column]
        ]
        state = "differs" if differences else "agrees"
        return (
            f"{url} {state} on plans issued and within 20 weeks, with and without "
            "exceptions",
            differences,
        )

    def _read_model_check(
        self, clocks: Sequence[ClockCounts], case_ids: set[str]
    ) -> tuple[Any, str, list[str]]:
        """The read API's ``/summary``, what comparing it said, and any differences.

        The read model is built from the topics by the API's own threads, so it may
        trail the topics by a moment: it is asked again for a while until it agrees.
        """
        if self.services.deadlines_url is None:
            return None, "no deadlines read API to compare with", []
        url = self.services.deadlines_url.rstrip("/") + "/summary"
        # A manager's token: the read API counts every team's cases for a manager.
        headers = dict(self.services.staff_headers(self.cases[0].manager_id))
        ours = len(case_ids)
        deadline = time.monotonic() + READ_MODEL_WAIT_S
        while True:
            try:
                answer = httpx.get(url, headers=headers, timeout=HTTP_TIMEOUT_S)
                remote = answer.json() if answer.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                remote = None
            if not isinstance(remote, dict):
                return None, f"no /summary at {url}", []
            cases = remote.get("cases")
            differences: list[str] = []
            if cases == ours:
                differences = compare_read_model(clocks, remote)
                if not differences:
                    return remote, f"{url} agrees, clock by clock", []
            elif isinstance(cases, int) and cases > ours:
                note = (
                    f"{url} counts {cases} cases, {cases - ours} more than this demo "
                    "posted (an existing Kafka's earlier ones), so it is not compared"
                )
                return remote, note, []
            if time.monotonic() > deadline:
                if cases == ours:
                    return remote, f"{url} differs", differences
                problem = f"the deadlines read model holds {cases} of {ours} cases"
                return remote, f"{url} is behind", [problem]
            time.sleep(1.0)

    def _print(self, line: str) -> None:
        print(line, file=self._out, flush=True)


def reconcile(summary: DemoSummary, planned_requests: int) -> list[str]:
    """Every way the summary's numbers fail to agree with each other or the plan."""
    problems: list[str] = []
    if summary.requests != planned_requests:
        problems.append(
            f"{summary.requests} requests posted, but {planned_requests} planned"
        )
    for counts in summary.clocks:
        if not counts.adds_up:
            problems.append(
                f"{counts.clock}: set {counts.set} is not met {counts.met} + late "
                f"{counts.late} + cancelled {counts.cancelled} + overdue "
                f"{counts.overdue} + open {counts.open}"
            )
    decision = summary.clock(DECISION_CLOCK)
    if decision is None:
        problems.append("no decision clock was set at all")
    else:
        for name, expected in summary.planned_decision.items():
            actual = getattr(decision, name)
            if actual != expected:
                problems.append(
                    f"decision clock: {name} is {actual}, the plan says {expected}"
                )
    timeline = summary.timeline
    if timeline["in_time_overdue"]:
        problems.append(
            f"{timeline['in_time_overdue']} decision clocks closed and recorded in "
            "time were reported overdue first: the processor's time was ahead of "
            "the demo's"
        )
    if timeline["late_never_overdue"]:
        problems.append(
            f"{timeline['late_never_overdue']} late decisions were never reported "
            "overdue before they were made"
        )
    problems += _against_the_plan(summary)
    decided = summary.agreed + summary.refused
    if decision is not None and decision.met + decision.late != decided:
        problems.append(
            f"decision clock: met + late = {decision.met + decision.late}, but "
            f"{decided} decisions were posted"
        )
    problems += _alerts_sent_once(summary)
    messages = summary.email_messages
    if messages is None:
        messages = summary.notifications_sent
    if summary.emails_in_catcher != messages:
        problems.append(
            f"{summary.emails_in_catcher} emails in the mail catcher, but "
            f"{messages} sent over SMTP (NotificationSent events, a digest once)"
        )
    return problems


def _alerts_sent_once(summary: DemoSummary) -> list[str]:
    """An alert is sent at most once, so no kind of email outnumbers its alerts.

    Each clock event alerts each role (coordinator, manager, SENCO) at most once, so
    with the counts by kind and role each pair is held to its clock events; without
    them, the approaching emails are, and the overdue ones to twice theirs.
    """
    raised = summary.alerts_raised
    problems: list[str] = []
    if summary.sent_by_kind_and_role:
        for pair, count in sorted(summary.sent_by_kind_and_role.items()):
            kind, _, role = pair.partition("/")
            limit = raised.get(kind)
            if limit is not None and count > limit:
                problems.append(
                    f"{count} {kind} emails to a {role} for {limit} clock events "
                    "raising them: some alert went out twice"
                )
        return problems
    approaching = summary.sent_by_kind.get("approaching", 0)
    overdue = summary.sent_by_kind.get("overdue", 0)
    if approaching > raised["approaching"]:
        problems.append(
            f"{approaching} approaching emails for {raised['approaching']} "
            "ClockApproaching events: some alert went out twice"
        )
    if overdue > 2 * raised["overdue"]:
        problems.append(
            f"{overdue} overdue emails for {raised['overdue']} ClockOverdue events, "
            "more than one each to a coordinator and a manager"
        )
    return problems


def _against_the_plan(summary: DemoSummary) -> list[str]:
    """Each clock and timeliness count that differs from the plan's intent."""
    problems: list[str] = []
    for name, intended in summary.planned_clocks.items():
        if name == DECISION_CLOCK:
            continue  # checked against planned_decision above
        counts = summary.clock(name)
        actual = asdict(counts) if counts is not None else {}
        problems += [
            f"{name} clock: {state} is {actual.get(state, 0)}, the plan says {value}"
            for state, value in intended.items()
            if actual.get(state, 0) != value
        ]
    if summary.timeliness is not None and summary.planned_timeliness is not None:
        problems += summary.timeliness.differences(
            summary.planned_timeliness, "in the plan"
        )
    return problems


def count_timeliness(watcher: TopicWatcher, case_ids: set[str]) -> Timeliness:
    """The DfE's 20-week and review figures, from the clock events of ``case_ids``.

    A plan issued is a ``final_plan`` clock met (within 20 weeks) or late; one with an
    exception flagged is left out of the figures excluding exceptions. A review held
    starts a ``review_decision`` clock, met when decided within 4 weeks; it stops an
    ``annual_review`` clock, met when held within its 12 months.
    """
    plans = Counter[str]()
    reviews = Counter[str]()
    with watcher.locked():
        tracks = [t for t in watcher.clocks.values() if t.case_id in case_ids]
        for track in tracks:
            if track.set_at_ms is None:
                continue
            state = track.state
            if track.clock == "final_plan" and state in ("met", "late"):
                plans["issued"] += 1
                plans["within"] += state == "met"
                if not track.exception:
                    plans["issued_ex"] += 1
                    plans["within_ex"] += state == "met"
            elif track.clock == "annual_review" and state == "met":
                reviews["held_in_time"] += 1
            elif track.clock == "review_decision":
                reviews["held"] += 1
                reviews["decided"] += state in ("met", "late")
                reviews["within"] += state == "met"
    return Timeliness(
        plans_issued=plans["issued"],
        plans_within_20_weeks=plans["within"],
        plans_issued_excl_exceptions=plans["issued_ex"],
        plans_within_20_weeks_excl_exceptions=plans["within_ex"],
        reviews_held=reviews["held"],
        reviews_held_in_time=reviews["held_in_time"],
        review_decisions=reviews["decided"],
        review_decisions_within_4_weeks=reviews["within"],
    )


def compare_read_model(
    clocks: Sequence[ClockCounts], remote: Mapping[str, Any]
) -> list[str]:
    """Where the read API's ``/summary`` and the topic's tally disagree.

    The read model splits running clocks into ``open`` and ``approaching`` (an
    approaching alert raised); the tally counts both as open.
    """
    differences: list[str] = []
    theirs = remote.get("clocks") or {}
    for counts in clocks:
        row = theirs.get(counts.clock)
        if row is None:
            differences.append(f"/summary has no {counts.clock} clock")
            continue
        pairs = {
            "set": (counts.set, row.get("set")),
            "met": (counts.met, row.get("met")),
            "late": (counts.late, row.get("late")),
            "cancelled": (counts.cancelled, row.get("cancelled")),
            "overdue": (counts.overdue, row.get("overdue")),
            "open": (counts.open, row.get("open", 0) + row.get("approaching", 0)),
            "exception": (counts.exception, row.get("with_exception")),
        }
        differences += [
            f"{counts.clock}: {name} is {ours} on the topic, {remote_value} in /summary"
            for name, (ours, remote_value) in pairs.items()
            if ours != remote_value
        ]
    extra = sorted(set(theirs) - {c.clock for c in clocks})
    differences += [
        f"/summary has a {name} clock the topic never showed" for name in extra
    ]
    return differences


def transfer_clock_id(transfer: PlannedTransfer) -> str:
    """The deadlines clock of a child's transfer: its rule, keyed by the year."""
    return f"phase_transfer_{transfer.transfer}[transfer_year={transfer.transfer_year}]"


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _event_ids(answer: Mapping[str, Any]) -> set[str]:
    return {str(e["id"]) for e in answer.get("events", ()) if isinstance(e, dict)}


def _count_eml(folder: Path) -> int:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if e.name.endswith(".eml"))
    except FileNotFoundError:
        return 0
