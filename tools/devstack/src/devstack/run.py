"""``python -m devstack.run`` (``make run``): the whole platform, then a demo period.

It starts a local OpenID Connect issuer (``devstack.issuer``, 8009) as a thread of its
own process, then each part of the platform as a process of its own with its output in
``.run/logs/<name>.log``:

1. Apache Kafka (``python -m devstack.kafka run``, topics created), unless
   ``KAFKA_BOOTSTRAP_SERVERS`` names one already running (then only the topics are
   created there);
2. side by side, once Kafka is up: the mail catcher (SMTP 1025, page 8025), keeping
   every email in ``.run/mail/``; the intake API (8001); the plans API (8002) with its
   relay and its subscriber to intake's topic; the deadlines worker and its read API
   (8003); the reviews API (8004) with its relay and subscribers; the placement API
   (8005) with its relay and subscribers; the notify worker, with the demo's staff
   directory written to ``.run/staff.csv`` (synthetic mobiles in Ofcom's drama range)
   and its calendar on the ticks (``NOTIFY_CLOCK=ticks``: a daily digest per demo
   day); notify's API (8006); and the local GOV.UK Notify (``devstack.notify_stub``,
   8007), which notify's texts go through with the stub's API key and which posts
   its delivery receipts to notify's API with a bearer token new each run;
3. intake's outbox relay, once the intake API has made its store.

Before the side-by-side start it joins a throwaway consumer group once, so a new
broker's group coordinator is up before the services' groups all join at once.

Intake, plans and reviews verify a bearer token on every command: they trust the
issuer (``AUTH_*`` settings), and the demo posts as each member of its staff with a
token the issuer signs for them (coordinators ``ehc_coordinator``, managers
``team_manager``, in the team of their manager).

A port that is taken is replaced by a free one, and every address is printed;
``--free-ports`` takes free ports throughout (for tests). A process that exits or is
not ready in time stops everything, and its log's last lines are printed. During the
demo the stack's processes are checked each simulated day and in every wait, so one
that exits (a worker killed with ``kill -9``) ends the demo at once with its name and
exit status, rather than a stall reported minutes later.

Once everything is up it sets each demo member of staff's preferences through notify's
API, as a ``service_admin`` (``devstack.demo_data.demo_preferences``: coordinators by
email, the first as a daily digest and the second by text; managers by email and
text for a missed deadline; SENCOs by email; no quiet hours for texts).

Then it posts one request over HTTP and shows it arriving on ``send.intake.events``,
and plays the demo (``devstack.demo``): Buckinghamshire's 2024 requests (``--scale
1.0``: 1,782 of them; ``--short``: 5%) posted through intake, and every agreed
assessment carried on through plans and reviews (advice, draft, final plan, first
annual review and its decision), while ticks move the clock from 1 January 2024 to
the end of the period (31 July 2025 unless ``--until`` says otherwise). The summary is
printed and written to ``.run/summary.json``, with notify's closing note (``notify``
there): emails accepted by SMTP by role, daily digests, texts sent through the local
GOV.UK Notify by kind and role, delivery receipts notify accepted, each held to what
the preferences say; what the local GOV.UK Notify was sent is kept in
``.run/govuk-notify.json``; the processes keep running, with each
API's docs URL printed, until Ctrl-C (or SIGTERM, or SIGHUP) stops them all, the Kafka
JVM included. ``--exit-after-demo`` stops them straight after the summary instead, and
the exit status says whether the numbers reconciled (0) or not (3); 1 means a process
or the demo failed. ``--no-demo`` plays no caseload after that one request.

Each start begins from empty stores (``.run/*.db``, ``.run/mail/``, ``.run/kafka/``), so
the demo's figures are its own; ``--keep-data`` keeps them, for looking at the last
demo again with ``--no-demo``. With an existing Kafka the topics keep what earlier runs
published: the services then process that too, but the demo counts only the cases it
posted.

Known limits: the deadlines processor's time never goes back, so on an existing Kafka
whose tick topic already holds later ticks (an earlier demo, a ticker) every new clock
is overdue at once; the start prints a warning and the summary's timing check fails,
but the run goes on. The demo sets no quiet hours for texts: an alert notify raises
before its tick clock has caught up is judged on the wall clock, so a demo run in the
evening would hold texts past its end (the notify tests show quiet hours holding on
the ticks' clock); the alerts raised on the last demo day wait for a digest no later
tick gathers, and the closing note counts them as waiting. The demo's phase-transfer
year is drawn from the demo's own plans, so its cohort is far smaller than a real
council's, and infant-to-junior moves are not played (``PLACEMENT_INFANT_SCHOOLS`` is
left unset). The issuer's keys live in memory, so tokens it signed do not outlive the
``make run`` that started it. No ticker runs after the demo: the processor's time (and
notify's calendar) stays at the last demo tick while the APIs date what is posted by
the real date, so a case posted afterwards never falls due or alerts; the run says so
under its summary (``after_demo_note``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from devstack.demo import (
    DemoDriver,
    DemoError,
    DemoServices,
    DemoSettings,
    DemoSummary,
    Notification,
    PlatformStopped,
    StaffHeaders,
    TopicWatcher,
)
from devstack.demo_data import (
    DEMO_SENCOS,
    DEMO_STAFF,
    StaffMember,
    default_period_end,
    demo_preferences,
    generate_caseload,
    write_staff_csv,
)
from devstack.dfe import BUCKINGHAMSHIRE, DemoDataError, LaFigures, load_la_figures
from devstack.issuer import LocalIssuer, demo_team_members
from devstack.kafka import repo_root
from devstack.kafka_config import LOOPBACK, BrokerLayout, free_port, port_is_free
from devstack.kafka_errors import KafkaLauncherError
from devstack.kafka_topics import create_project_topics
from devstack.notify_stub import DEFAULT_API_KEY as STUB_API_KEY
from devstack.notify_stub import DEFAULT_EMAIL_TEMPLATE_ID as STUB_EMAIL_TEMPLATE_ID
from devstack.notify_stub import DEFAULT_SMS_TEMPLATE_ID as STUB_SMS_TEMPLATE_ID
from devstack.processes import (
    ManagedProcess,
    ProcessSpec,
    ProcessStartError,
    Stack,
    python_module,
)
from send_schemas.topics import CLOCK_TICKS

log = logging.getLogger(__name__)

SHORT_SCALE = 0.05
KAFKA_READY_TIMEOUT_S = 240.0
SERVICE_READY_TIMEOUT_S = 120.0
# Several services start side by side on a small machine, so they get longer.
GROUP_READY_TIMEOUT_S = 240.0
KAFKA_STOP_TIMEOUT_S = 45.0
WORKER_STOP_TIMEOUT_S = 40.0
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RECONCILED = 3

KAFKA_READY_LINE = "kafka topics ensured on"
RELAY_READY_LINE = "relay started for send.intake.events"
NOTIFY_READY_LINE = "notify worker ready"
DEADLINES_READY_LINE = "deadlines worker ready"
PLACEMENT_MODULE = "placement"
"""Started only if it is installed: the service is newer than the rest."""
RELAY_POLL_S = "0.05"
WARM_UP_GROUP = "devstack-run-warm-up"
WARM_UP_TIMEOUT_S = 120.0
TOKEN_REUSE_S = 20 * 60.0
"""How long the demo reuses a member's token (the issuer's last 30 minutes)."""
DIRECTORY: tuple[StaffMember, ...] = (*DEMO_STAFF, *DEMO_SENCOS)
"""The staff directory notify is given: the SEND team and the schools' SENCOs."""
ADMIN_ID = "devstack-run"
"""Who sets the demo staff's preferences in notify's API (a service_admin)."""
RECEIPTS_WAIT_S = 60.0


class RunError(DemoDataError):
    """``make run`` cannot start: the message says what is in the way."""


# -- ports and files -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ports:
    """The loopback ports of the platform's listeners."""

    kafka: int = 9092
    smtp: int = 1025
    mail_page: int = 8025
    intake: int = 8001
    deadlines: int = 8003
    plans: int = 8002
    reviews: int = 8004
    placement: int = 8005
    notify: int = 8006
    notify_stub: int = 8007
    issuer: int = 8009


def choose_ports(
    wanted: Ports = Ports(), *, free_only: bool = False
) -> tuple[Ports, list[str]]:
    """``wanted``, with each taken port (or every port, ``free_only``) replaced.

    Returns the ports and a note for each one replaced because it was taken.
    """
    chosen: dict[str, int] = {}
    notes: list[str] = []
    for item in fields(Ports):
        port = int(getattr(wanted, item.name))
        taken = set(chosen.values())
        if free_only or port in taken or not port_is_free(port):
            replacement = free_port(exclude=taken)
            if not free_only:
                notes.append(f"port {port} ({item.name}) is taken; using {replacement}")
            port = replacement
        chosen[item.name] = port
    return Ports(**chosen), notes


@dataclass(frozen=True, slots=True)
class RunLayout:
    """Where one ``make run`` keeps its files: all under its run directory."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mail(self) -> Path:
        return self.root / "mail"

    @property
    def kafka(self) -> Path:
        return self.root / "kafka"

    @property
    def work(self) -> Path:
        """The stream workers' working directory, where faust keeps its data dirs."""
        return self.root / "work"

    @property
    def intake_db(self) -> Path:
        return self.root / "intake.db"

    @property
    def deadlines_db(self) -> Path:
        return self.root / "deadlines.db"

    @property
    def notify_db(self) -> Path:
        return self.root / "notify.db"

    @property
    def plans_db(self) -> Path:
        return self.root / "plans.db"

    @property
    def reviews_db(self) -> Path:
        return self.root / "reviews.db"

    @property
    def placement_db(self) -> Path:
        return self.root / "placement.db"

    @property
    def staff_csv(self) -> Path:
        return self.root / "staff.csv"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def govuk_messages(self) -> Path:
        """What the local GOV.UK Notify was sent (kept in its memory), after a demo."""
        return self.root / "govuk-notify.json"

    def data_paths(self) -> list[Path]:
        """Everything a fresh start removes (databases with their WAL files)."""
        paths = [self.logs, self.mail, self.kafka, self.work, self.staff_csv]
        paths += [self.summary, self.govuk_messages]
        databases = (
            self.intake_db,
            self.deadlines_db,
            self.notify_db,
            self.plans_db,
            self.reviews_db,
            self.placement_db,
        )
        for db in databases:
            paths += [
                db,
                db.with_name(db.name + "-wal"),
                db.with_name(db.name + "-shm"),
            ]
        return paths

    def reset(self) -> None:
        """Remove the last run's data, refusing while its broker still runs."""
        pid_file = BrokerLayout(self.kafka).pid_file
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(self.kafka.resolve()).encode() in cmdline:
                raise RunError(
                    f"a Kafka broker (pid {pid}) still runs in {self.kafka}; stop the "
                    "make run that started it (Ctrl-C) or kill that pid, then retry"
                )
        for path in self.data_paths():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def prepare(self) -> None:
        for folder in (self.root, self.logs, self.mail, self.work):
            folder.mkdir(parents=True, exist_ok=True)


# -- the platform ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Platform:
    """The running platform's addresses."""

    layout: RunLayout
    ports: Ports
    bootstrap: str
    kafka_launched: bool
    auth: Mapping[str, str] = field(default_factory=dict)
    placement: bool = True
    callback_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """The bearer token the local GOV.UK Notify's receipts carry, new each run."""

    @property
    def intake_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.intake}"

    @property
    def deadlines_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.deadlines}"

    @property
    def plans_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.plans}"

    @property
    def reviews_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.reviews}"

    @property
    def placement_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.placement}"

    @property
    def mail_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.mail_page}/"

    @property
    def notify_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.notify}"

    @property
    def notify_stub_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.notify_stub}"

    @property
    def receipts_url(self) -> str:
        """Notify's endpoint for GOV.UK Notify's delivery receipts."""
        return f"{self.notify_url}/callbacks/govuk-notify"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def service_env(platform: Platform) -> dict[str, str]:
    """The settings of every service process of this run, as environment variables."""
    layout, ports = platform.layout, platform.ports
    return {
        "KAFKA_BOOTSTRAP_SERVERS": platform.bootstrap,
        "SEND_ENV": "development",
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
        **platform.auth,
        "INTAKE_DATABASE_URL": sqlite_url(layout.intake_db),
        "INTAKE_HOST": LOOPBACK,
        "INTAKE_PORT": str(ports.intake),
        "INTAKE_RELAY_ENABLED": "false",
        # The demo waits for each day's events to be published before the next
        # day's tick, so a relay that looks often keeps the simulated days short.
        "INTAKE_RELAY_POLL_SECONDS": RELAY_POLL_S,
        "PLANS_RELAY_POLL_SECONDS": RELAY_POLL_S,
        "REVIEWS_RELAY_POLL_SECONDS": RELAY_POLL_S,
        "PLACEMENT_RELAY_POLL_SECONDS": RELAY_POLL_S,
        "PLANS_DATABASE_URL": sqlite_url(layout.plans_db),
        "PLANS_HOST": LOOPBACK,
        "PLANS_PORT": str(ports.plans),
        "PLANS_RELAY_ENABLED": "true",
        "PLANS_SUBSCRIBER_ENABLED": "true",
        "REVIEWS_DATABASE_URL": sqlite_url(layout.reviews_db),
        "REVIEWS_HOST": LOOPBACK,
        "REVIEWS_PORT": str(ports.reviews),
        "REVIEWS_RELAY_ENABLED": "true",
        "REVIEWS_SUBSCRIBERS_ENABLED": "true",
        "PLACEMENT_DATABASE_URL": sqlite_url(layout.placement_db),
        "PLACEMENT_HOST": LOOPBACK,
        "PLACEMENT_PORT": str(ports.placement),
        "PLACEMENT_RELAY_ENABLED": "true",
        "PLACEMENT_SUBSCRIBERS_ENABLED": "true",
        "DEADLINES_DATABASE_URL": sqlite_url(layout.deadlines_db),
        "DEADLINES_HOST": LOOPBACK,
        "DEADLINES_PORT": str(ports.deadlines),
        "NOTIFY_DATABASE_URL": sqlite_url(layout.notify_db),
        "NOTIFY_DIRECTORY_CSV": str(layout.staff_csv.resolve()),
        "NOTIFY_SMTP_HOST": LOOPBACK,
        "NOTIFY_SMTP_PORT": str(ports.smtp),
        "NOTIFY_HOST": LOOPBACK,
        "NOTIFY_PORT": str(ports.notify),
        # Texts (and, with NOTIFY_EMAIL_PROVIDER=govuk_notify in make run's own
        # environment, email) go through the official client to the local Notify.
        "NOTIFY_GOVUK_API_KEY": STUB_API_KEY,
        "NOTIFY_GOVUK_BASE_URL": platform.notify_stub_url,
        "NOTIFY_GOVUK_EMAIL_TEMPLATE_ID": STUB_EMAIL_TEMPLATE_ID,
        "NOTIFY_GOVUK_SMS_TEMPLATE_ID": STUB_SMS_TEMPLATE_ID,
        "NOTIFY_GOVUK_CALLBACK_TOKEN": platform.callback_token,
        # The demo's days pass in seconds: digests, quiet hours and termly lists
        # follow its ticks, and the scheduler looks as soon as a tick moves them.
        "NOTIFY_CLOCK": "ticks",
        "NOTIFY_SCHEDULE_INTERVAL_SECONDS": "1",
        "NOTIFY_DELIVERY_POLL_SECONDS": "1",
    }


def auth_env(issuer: LocalIssuer) -> dict[str, str]:
    """The AUTH_* settings of intake, plans and reviews: trust the local issuer."""
    return {
        **issuer.env(),
        "AUTH_TEAM_MEMBERS": json.dumps(demo_team_members()),
    }


def issuer_headers(issuer: LocalIssuer) -> StaffHeaders:
    """Bearer-token headers for each demo member of staff, minted by ``issuer``.

    A member's token is reused for a while rather than signed for every command.
    """
    lock = threading.Lock()
    cache: dict[str, tuple[float, dict[str, str]]] = {}

    def headers(staff_id: str) -> Mapping[str, str]:
        now = time.monotonic()
        with lock:
            kept = cache.get(staff_id)
            if kept is None or kept[0] < now:
                token = issuer.mint_for_staff(staff_id)
                kept = (now + TOKEN_REUSE_S, {"Authorization": f"Bearer {token}"})
                cache[staff_id] = kept
            return kept[1]

    return headers


def placement_installed() -> bool:
    """Whether ``python -m placement`` can run here (the hook for starting it)."""
    return importlib.util.find_spec(PLACEMENT_MODULE) is not None


def kafka_spec(layout: RunLayout, port: int) -> ProcessSpec:
    return ProcessSpec(
        name="kafka",
        argv=python_module("devstack.kafka", "run"),
        env={
            "KAFKA_RUN_DIR": str(layout.kafka.resolve()),
            "KAFKA_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        },
        ready_log_line=KAFKA_READY_LINE,
        stop_timeout=KAFKA_STOP_TIMEOUT_S,
    )


def service_specs(platform: Platform) -> list[list[ProcessSpec]]:
    """Every process after Kafka, in groups started one after the other.

    The processes of a group need nothing of each other, so they start side by side;
    intake's relay reads the store the intake API makes, so it comes after.
    """
    env = service_env(platform)
    layout, ports = platform.layout, platform.ports
    work = layout.work.resolve()
    side_by_side = [
        ProcessSpec(
            name="mail",
            argv=python_module(
                "devstack.smtp",
                "--port",
                str(ports.smtp),
                "--dir",
                str(layout.mail.resolve()),
                "--http-port",
                str(ports.mail_page),
            ),
            env=env,
            ready_url=f"{platform.mail_url}healthz",
        ),
        ProcessSpec(
            name="intake-api",
            argv=python_module("intake"),
            env=env,
            ready_url=f"{platform.intake_url}/readyz",
        ),
        ProcessSpec(
            name="plans-api",
            argv=python_module("plans"),
            env=env,
            ready_url=f"{platform.plans_url}/readyz",
        ),
        ProcessSpec(
            name="reviews-api",
            argv=python_module("reviews"),
            env=env,
            ready_url=f"{platform.reviews_url}/readyz",
        ),
        ProcessSpec(
            name="deadlines-worker",
            argv=python_module("deadlines", "worker"),
            env=env,
            ready_log_line=DEADLINES_READY_LINE,
            cwd=work,
            stop_timeout=WORKER_STOP_TIMEOUT_S,
        ),
        ProcessSpec(
            name="deadlines-api",
            argv=python_module("deadlines", "api"),
            env=env,
            ready_url=f"{platform.deadlines_url}/readyz",
        ),
        ProcessSpec(
            name="notify-worker",
            argv=python_module("notify", "worker"),
            env=env,
            ready_log_line=NOTIFY_READY_LINE,
            cwd=work,
            stop_timeout=WORKER_STOP_TIMEOUT_S,
        ),
        ProcessSpec(
            name="notify-api",
            argv=python_module("notify", "api"),
            env=env,
            ready_url=f"{platform.notify_url}/readyz",
        ),
        ProcessSpec(
            name="notify-stub",
            argv=python_module(
                "devstack.notify_stub",
                "--port",
                str(ports.notify_stub),
                "--callback-url",
                platform.receipts_url,
                "--callback-token",
                platform.callback_token,
            ),
            env=env,
            ready_url=f"{platform.notify_stub_url}/healthz",
        ),
    ]
    if platform.placement:
        side_by_side.append(
            ProcessSpec(
                name="placement-api",
                argv=python_module(PLACEMENT_MODULE),
                env=env,
                ready_url=f"{platform.placement_url}/readyz",
            )
        )
    after = [
        ProcessSpec(
            name="intake-relay",
            argv=python_module("intake.entrypoints.relay"),
            env=env,
            ready_log_line=RELAY_READY_LINE,
        )
    ]
    return [side_by_side, after]


def start_platform(
    stack: Stack,
    layout: RunLayout,
    ports: Ports,
    *,
    existing_kafka: str | None,
    out: TextIO,
    auth: Mapping[str, str] | None = None,
) -> Platform:
    """Start every process in order; raise ``ProcessStartError`` if one fails.

    ``auth`` holds the AUTH_* settings given to every service; without it they take
    those of this process's environment.
    """
    auth = dict(auth or {})
    placement = placement_installed()
    if not placement:
        print(
            f"  ({PLACEMENT_MODULE} is not installed here, so the placement API is "
            "not started)",
            file=out,
            flush=True,
        )
    if existing_kafka:
        print(
            f"Kafka: using the one at {existing_kafka} (KAFKA_BOOTSTRAP_SERVERS)",
            file=out,
            flush=True,
        )
        create_project_topics(existing_kafka)
        held = ticks_held(existing_kafka)
        if held:
            print(
                f"  Warning: {CLOCK_TICKS.name} there already holds {held:,} ticks "
                "(an earlier demo, a ticker or tests). The deadlines processor's "
                "time never goes back, so ticks later than this demo's start make "
                "its clocks overdue at once (the alerts are then wrong and the "
                "summary says so); unset KAFKA_BOOTSTRAP_SERVERS for a broker of "
                "its own.",
                file=out,
                flush=True,
            )
        platform = Platform(
            layout,
            ports,
            existing_kafka,
            kafka_launched=False,
            auth=auth,
            placement=placement,
        )
    else:
        print(f"Kafka: starting on {LOOPBACK}:{ports.kafka} ...", file=out, flush=True)
        _start(stack, kafka_spec(layout, ports.kafka), KAFKA_READY_TIMEOUT_S, out)
        bootstrap = f"{LOOPBACK}:{ports.kafka}"
        platform = Platform(
            layout,
            ports,
            bootstrap,
            kafka_launched=True,
            auth=auth,
            placement=placement,
        )

    write_staff_csv(layout.staff_csv, DIRECTORY)
    warm_group_coordinator(platform.bootstrap)
    for group in service_specs(platform):
        for managed, seconds in stack.start_all(group, GROUP_READY_TIMEOUT_S):
            _ready(managed, seconds, out)
    return platform


def _start(stack: Stack, spec: ProcessSpec, timeout: float, out: TextIO) -> None:
    started = time.monotonic()
    managed = stack.start(spec, timeout)
    _ready(managed, time.monotonic() - started, out)


def _ready(managed: ManagedProcess, seconds: float, out: TextIO) -> None:
    print(
        f"  {managed.spec.name:<17} ready in {seconds:4.1f} s  "
        f"(pid {managed.process.pid}, log {managed.log_path})",
        file=out,
        flush=True,
    )


def ticks_held(bootstrap: str) -> int:
    """How many records the tick topic holds on the broker at ``bootstrap``."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), client_id="devstack-run-check"
    )
    try:
        numbers = consumer.partitions_for_topic(CLOCK_TICKS.name) or set()
        partitions = [TopicPartition(CLOCK_TICKS.name, n) for n in sorted(numbers)]
        if not partitions:
            return 0
        first = consumer.beginning_offsets(partitions)
        last = consumer.end_offsets(partitions)
        return sum(int(last[tp]) - int(first[tp]) for tp in partitions)
    finally:
        consumer.close()


def warm_group_coordinator(bootstrap: str, timeout: float = WARM_UP_TIMEOUT_S) -> None:
    """Join a consumer group once, so the broker's group coordinator is up.

    On a new broker the first group to join creates ``__consumer_offsets``; until it
    exists every join is refused. When the services all start at once, a faust worker
    that meets those refusals may be assigned its partitions before it has made its
    table's changelog topic, and then fails on every write to the table; a broker
    whose coordinator already answers spares it that.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        client_id="devstack-run-warm-up",
        group_id=WARM_UP_GROUP,
        enable_auto_commit=False,
    )
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([CLOCK_TICKS.name])
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise RunError(
                    f"Kafka at {bootstrap} gave no consumer group a partition in "
                    f"{timeout:.0f} s; see its log under .run/logs/kafka.log"
                )
            consumer.poll(timeout_ms=500)
    finally:
        consumer.close()


def broker_pid(layout: RunLayout) -> int | None:
    """The pid of the Kafka JVM this run's launcher started, while it runs."""
    try:
        return int(BrokerLayout(layout.kafka).pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


# -- the demo's connections to the platform --------------------------------------------


def kafka_ticker(
    bootstrap: str,
) -> tuple[Callable[[datetime], None], Callable[[], None]]:
    """A function sending one round of ticks for a moment, and one closing it."""
    from deadlines.ticker import Ticker, TickerError

    ticker = Ticker(bootstrap)

    def send(now: datetime) -> None:
        try:
            ticker.send(now)
        except TickerError as error:
            message = f"the demo could not move the clock to {now}: {error}"
            raise DemoError(message) from error

    return send, ticker.close


LEDGER_COUNTS = (
    "SELECT status, COUNT(*) FROM notify_alerts "
    "WHERE covers IS NULL OR covers != alert_id GROUP BY status"
)
"""Alerts by status, leaving out each digest's (or list's) own message: it publishes
no event of its own (each alert it carries does), so the demo's settle step, which
holds the sent and failed alerts to the events seen, counts only those that do."""


@contextlib.contextmanager
def notify_ledger(path: Path) -> Iterator[Callable[[], Mapping[str, int] | None]]:
    """Reads notify's alert counts by status (None until the ledger exists)."""
    opened: list[sqlite3.Connection] = []

    def status() -> Mapping[str, int] | None:
        if not opened:
            if not path.exists():
                return None
            # Read-only: the worker and the API write this file; a reader in WAL mode
            # never blocks them.
            uri = f"{path.resolve().as_uri()}?mode=ro"
            opened.append(sqlite3.connect(uri, uri=True, timeout=30.0))
        try:
            rows = opened[0].execute(LEDGER_COUNTS).fetchall()
        except sqlite3.OperationalError:
            return None  # the worker has not made its tables yet
        return {str(state): int(count) for state, count in rows}

    try:
        yield status
    finally:
        for connection in opened:
            connection.close()


def set_demo_preferences(
    platform: Platform,
    headers: Mapping[str, str],
    staff: Sequence[StaffMember] = DIRECTORY,
) -> int:
    """Give each demo member of staff their preferences through notify's API.

    ``headers`` carry a ``service_admin``'s token. Returns how many were set.
    """
    bodies = demo_preferences(staff)
    with httpx.Client(
        base_url=platform.notify_url, headers=dict(headers), timeout=30.0
    ) as client:
        for staff_id, body in bodies.items():
            answer = client.put(f"/staff/{staff_id}/preferences", json=body)
            if answer.status_code != 200:
                raise RunError(
                    f"notify's API refused the preferences of {staff_id} "
                    f"({answer.status_code}: {answer.text[:300]}); see "
                    f"{platform.layout.logs}/notify-api.log"
                )
    return len(bodies)


@dataclass(slots=True)
class NotifyCounts:
    """What notify sent in the demo, by channel and role: the closing note's counts.

    Emails and texts are counted from notify's events on ``send.notify.events`` (this
    demo's cases only) and held to what the mail catcher and the local GOV.UK Notify
    received; receipts are those notify's callback endpoint accepted.
    """

    emails_accepted_by_smtp: int
    email_messages_by_role: dict[str, int]
    digests: int
    digest_alerts: int
    texts_sent: int
    texts_by_kind_and_role: dict[str, int]
    texts_at_govuk_notify: int
    emails_at_govuk_notify: int
    receipts_accepted: dict[str, int]
    failed: int
    held_for_digest: int
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {name.name: getattr(self, name.name) for name in fields(self)}

    def render(self) -> str:
        def listed(counts: Mapping[str, int]) -> str:
            return ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items())) or "none"

        delivered = self.receipts_accepted.get("delivered", 0)
        lines = [
            "  Notify's closing note (this demo's cases, by what each person chose):",
            f"    email: {self.emails_accepted_by_smtp:,} accepted by SMTP (by role: "
            f"{listed(self.email_messages_by_role)}), of which {self.digests:,} "
            f"daily digests carrying {self.digest_alerts:,} alerts; "
            f"{self.held_for_digest:,} alerts wait for a digest after the last day",
            f"    SMS: {self.texts_sent:,} sent via the local GOV.UK Notify (by kind "
            f"and role: {listed(self.texts_by_kind_and_role)}); it holds "
            f"{self.texts_at_govuk_notify:,} texts and "
            f"{self.emails_at_govuk_notify:,} emails",
            f"    delivery receipts accepted by notify: {delivered:,} delivered"
            + "".join(
                f", {n:,} {status}"
                for status, n in sorted(self.receipts_accepted.items())
                if status != "delivered"
            )
            + f"; {self.failed:,} NotificationFailed",
        ]
        if self.problems:
            lines.append("    NOT as the preferences say:")
            lines += [f"      - {problem}" for problem in self.problems]
        return "\n".join(lines)


def count_notify(
    notifications: Sequence[Notification],
    emails_accepted: int,
    stub_messages: Sequence[Mapping[str, Any]],
    callbacks: Sequence[Mapping[str, Any]],
    ledger: Mapping[str, int],
) -> NotifyCounts:
    """The closing note's counts, and each way they differ from the preferences."""
    sent = [n for n in notifications if n.name == "NotificationSent"]
    emails = [n for n in sent if n.channel == "email"]
    texts = [n for n in sent if n.channel == "sms"]
    by_role: Counter[str] = Counter(
        n.recipient_role for n in emails if n.provider == "smtp" and not n.bundle_id
    )
    bundles = {
        (n.bundle_id, n.recipient_role)
        for n in emails
        if n.provider == "smtp" and n.bundle_id
    }
    by_role.update(role for _, role in bundles)
    carried = [n for n in emails if n.bundle_id and n.alert_kind != "review_list"]
    accepted: dict[str, str] = {}
    for attempt in callbacks:
        answer = attempt.get("answer")
        if isinstance(answer, int) and 200 <= answer < 300:
            accepted[str(attempt["notification_id"])] = str(attempt["status"])
    text_pairs = Counter(f"{n.alert_kind}/{n.recipient_role}" for n in texts)
    counts = NotifyCounts(
        emails_accepted_by_smtp=emails_accepted,
        email_messages_by_role=dict(by_role),
        digests=len({n.bundle_id for n in carried}),
        digest_alerts=len(carried),
        texts_sent=len(texts),
        texts_by_kind_and_role=dict(text_pairs),
        texts_at_govuk_notify=sum(m.get("type") == "sms" for m in stub_messages),
        emails_at_govuk_notify=sum(m.get("type") == "email" for m in stub_messages),
        receipts_accepted=dict(Counter(accepted.values())),
        failed=sum(n.name == "NotificationFailed" for n in notifications),
        held_for_digest=int(ledger.get("held", 0)),
    )
    problems = counts.problems
    if counts.texts_sent != counts.texts_at_govuk_notify:
        problems.append(
            f"{counts.texts_sent} texts recorded as sent, but the local GOV.UK Notify "
            f"holds {counts.texts_at_govuk_notify}"
        )
    if len(accepted) != len(stub_messages):
        problems.append(
            f"notify accepted delivery receipts for {len(accepted)} of the "
            f"{len(stub_messages)} messages the local GOV.UK Notify took"
        )
    # Managers chose email and text for a missed deadline, so each overdue alert to a
    # manager went both ways; the coordinators and SENCOs chose no text for it. An
    # alert withdrawn between its two sends (a corrected fact) rightly went one way
    # only, and its correction followed: those are left out.
    cause_of = {n.alert_id: n.cause for n in sent}
    corrected = {cause_of.get(n.corrects_alert_id) for n in sent if n.corrects_alert_id}
    for kind in ("overdue", "escalation"):
        ways = {
            channel: {
                n.cause
                for n in sent
                if n.channel == channel
                and f"{n.alert_kind}/{n.recipient_role}" == f"{kind}/manager"
                and n.cause not in corrected
            }
            for channel in ("email", "sms")
        }
        if ways["email"] != ways["sms"]:
            problems.append(
                f"{len(ways['email'])} {kind} alerts to managers by email but "
                f"{len(ways['sms'])} by text, {len(ways['email'] ^ ways['sms'])} of "
                "them one way only: managers chose both"
            )
    if text_pairs["approaching/senco"] or text_pairs["overdue/senco"]:
        problems.append("a SENCO was texted, but the SENCOs chose email")
    return counts


def wait_for_receipts(
    stub_url: str, timeout: float = RECEIPTS_WAIT_S
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The local GOV.UK Notify's messages and receipts, once each has its receipt.

    It posts each receipt a moment after it accepts a message, so the last texts of
    the demo may still be on their way when the demo settles; after ``timeout`` it
    answers what there is.
    """
    deadline = time.monotonic() + timeout
    while True:
        messages = _stub_list(stub_url, "notifications")
        callbacks = _stub_list(stub_url, "callbacks")
        answered = {
            str(c["notification_id"])
            for c in callbacks
            if isinstance(c.get("answer"), int) and 200 <= int(c["answer"]) < 300
        }
        if {str(m["id"]) for m in messages} <= answered:
            return messages, callbacks
        if time.monotonic() > deadline:
            return messages, callbacks
        time.sleep(0.5)


def _stub_list(stub_url: str, what: str) -> list[dict[str, Any]]:
    url = f"{stub_url}/_stub/{what}"
    try:
        answer = httpx.get(url, timeout=30.0)
        answer.raise_for_status()
        found = answer.json()
    except (httpx.HTTPError, ValueError) as error:
        raise DemoError(
            f"the local GOV.UK Notify did not list {what}: {error!r}"
        ) from error
    if not isinstance(found, list):
        raise DemoError(f"the local GOV.UK Notify's {url} is not a list")
    return [item for item in found if isinstance(item, dict)]


# -- the command -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What ``python -m devstack.run`` was asked to do."""

    run_dir: Path
    scale: float = 1.0
    year: int = 2024
    seed: int = 825
    demo: bool = True
    keep_running: bool = True
    keep_data: bool = False
    free_ports: bool = False
    concurrency: int = 4
    existing_kafka: str | None = None
    until: date | None = None


def parse_options(argv: Sequence[str] | None) -> RunOptions:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.run",
        description="Start Kafka, intake, plans, reviews, placement, deadlines, "
        "notify, a mail catcher and a local token issuer, then play a demo year of "
        "requests and what follows them. Ctrl-C stops everything.",
        epilog="Environment: KAFKA_BOOTSTRAP_SERVERS uses an existing Kafka instead "
        "of launching one.",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="share of Buckinghamshire's 2024 year of 1,782 requests (default 1.0)",
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help=f"a small caseload for CI: scale {SHORT_SCALE} unless --scale is given",
    )
    parser.add_argument("--seed", type=int, default=825, help="caseload seed")
    parser.add_argument(
        "--until",
        type=date.fromisoformat,
        default=None,
        help="the last simulated day, YYYY-MM-DD (default: 31 July of the next year)",
    )
    parser.add_argument(
        "--no-demo", action="store_true", help="start everything; post no caseload"
    )
    ending = parser.add_mutually_exclusive_group()
    ending.add_argument(
        "--keep-running",
        dest="keep_running",
        action="store_true",
        default=True,
        help="after the demo, run until Ctrl-C (the default)",
    )
    ending.add_argument(
        "--exit-after-demo",
        dest="keep_running",
        action="store_false",
        help="stop everything after the summary; exit 3 if it does not reconcile",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the last run's stores, mail and Kafka data (default: start empty)",
    )
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="take free ports for every listener instead of the usual ones",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="commands posted at once (default 4; the machine has 2 cores)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where logs, stores and mail go (default .run/ in the checkout)",
    )
    args = parser.parse_args(argv)
    scale = (
        args.scale if args.scale is not None else (SHORT_SCALE if args.short else 1.0)
    )
    if scale <= 0 or args.concurrency < 1:
        parser.error("--scale must be above 0 and --concurrency at least 1")
    run_dir = args.run_dir if args.run_dir is not None else repo_root() / ".run"
    return RunOptions(
        run_dir=run_dir.resolve(),
        scale=scale,
        seed=args.seed,
        demo=not args.no_demo,
        keep_running=args.keep_running,
        keep_data=args.keep_data,
        free_ports=args.free_ports,
        concurrency=args.concurrency,
        existing_kafka=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None,
        until=args.until,
    )


class _Interrupted(Exception):
    """SIGTERM or SIGHUP arrived; handled like Ctrl-C."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


def run(options: RunOptions, out: TextIO = sys.stdout) -> int:
    """Start the platform, play the demo, and stop everything; the exit status."""
    layout = RunLayout(options.run_dir)
    if not options.keep_data:
        layout.reset()
    layout.prepare()
    ports, notes = choose_ports(free_only=options.free_ports)
    for note in notes:
        print(note, file=out, flush=True)

    status = EXIT_OK
    stack = Stack(layout.logs)
    started = time.monotonic()
    issuer = LocalIssuer(port=ports.issuer)
    try:
        issuer.start()
        print(f"Token issuer: {issuer.url} (in this process)", file=out, flush=True)
        platform = start_platform(
            stack,
            layout,
            ports,
            existing_kafka=options.existing_kafka,
            auth=auth_env(issuer),
            out=out,
        )
        print(
            f"All {len(stack.processes)} processes ready in "
            f"{time.monotonic() - started:.1f} s. Mail: SMTP {LOOPBACK}:{ports.smtp}, "
            f"page {platform.mail_url}; Kafka JVM pid {broker_pid(layout) or '-'}.",
            file=out,
            flush=True,
        )
        admin = issuer.headers_for(ADMIN_ID, ["service_admin"])
        chosen = set_demo_preferences(platform, admin)
        print(
            f"Notify: preferences set for {chosen} demo staff (coordinators email, "
            "one as a daily digest and one by text; managers email and text for a "
            "miss; SENCOs email).",
            file=out,
            flush=True,
        )
        played = _show_and_play(
            options, platform, issuer_headers(issuer), out, stack.stopped
        )
        if played is not None:
            summary, counts = played
            # The closing note's problems are the summary's too (and its exit status).
            summary.problems += counts.problems
            data = summary.to_json() | {"notify": counts.to_json()}
            layout.summary.write_text(json.dumps(data, indent=2) + "\n")
            print(summary.render(), file=out, flush=True)
            print(counts.render(), file=out, flush=True)
            print(f"  (also written to {layout.summary})", file=out, flush=True)
            if options.keep_running:
                print(after_demo_note(summary.last_day), file=out, flush=True)
            if not summary.reconciles:
                status = EXIT_NOT_RECONCILED
        _print_addresses(platform, issuer, out)
        if options.keep_running:
            print(
                "Everything keeps running; press Ctrl-C to stop it.",
                file=out,
                flush=True,
            )
            while True:
                stack.check_alive()
                time.sleep(1.0)
    except ProcessStartError as error:
        print(f"make run failed: {error}", file=out, flush=True)
        status = EXIT_FAILED
    except (DemoDataError, KafkaLauncherError) as error:
        print(f"make run failed: {error}", file=out, flush=True)
        status = EXIT_FAILED
    except KafkaError as error:
        where = options.existing_kafka or "the launched broker"
        print(
            f"make run failed: Kafka ({where}) did not answer: {error!r}; see "
            f"{layout.logs}/kafka.log",
            file=out,
            flush=True,
        )
        status = EXIT_FAILED
    except (KeyboardInterrupt, _Interrupted):
        print("\nStopping...", file=out, flush=True)
    finally:
        _stop_everything(stack, out)
        issuer.stop()
    return status


def after_demo_note(last_day: str) -> str:
    """What the clocks do once the demo is over, for the lines under its summary."""
    when = f"the last demo tick (08:00 London on {last_day})"
    return (
        f"Note: no ticker runs now. The deadlines processor's time stays at {when}, "
        "and notify's calendar with it, while the APIs date what is posted by "
        "today's date: a case posted from now on has its clocks set, but none "
        "becomes due or overdue and none alerts."
    )


def published_shares(figures: LaFigures) -> dict[str, float | None]:
    """The published percentages the summary shows beside its own, as shares."""

    def share(percent: float | None) -> float | None:
        return None if percent is None else percent / 100

    timeliness = figures.timeliness
    reviews = figures.reviews
    return {
        "decided_within_6_weeks": share(figures.requests.published_within_6_weeks_pc),
        "within_20_weeks": share(timeliness.published_within_20_weeks_pc),
        "within_20_weeks_excl_exceptions": share(
            timeliness.published_within_20_weeks_excl_exceptions_pc
        ),
        "review_decisions_within_4_weeks": share(
            reviews.published_within_4_weeks_pc if reviews is not None else None
        ),
    }


def _show_and_play(
    options: RunOptions,
    platform: Platform,
    staff_headers: StaffHeaders,
    out: TextIO,
    stopped: Callable[[], str | None],
) -> tuple[DemoSummary, NotifyCounts] | None:
    """Show one request on its topic, then play the demo; its summary and counts.

    A process of the platform that stops ends it at once (``PlatformStopped``), and
    any other failure of the demo is put down to a stopped process where there is
    one: a command to a dead API fails only after its retries, as a refusal.
    """
    try:
        return _play(options, platform, staff_headers, out, stopped)
    except PlatformStopped:
        raise
    except DemoError as error:
        described = stopped()
        if described is None:
            raise
        raise PlatformStopped(
            f"a process stopped during the demo: {described}\n(the demo itself "
            f"then failed: {error})"
        ) from error


def _play(
    options: RunOptions,
    platform: Platform,
    staff_headers: StaffHeaders,
    out: TextIO,
    stopped: Callable[[], str | None],
) -> tuple[DemoSummary, NotifyCounts] | None:
    figures = load_la_figures(BUCKINGHAMSHIRE, options.year)
    until = options.until or default_period_end(options.year)
    cases = generate_caseload(
        figures, options.year, options.scale, options.seed, until=until
    )
    settings = DemoSettings(
        year=options.year,
        scale=options.scale,
        concurrency=options.concurrency,
        until=until,
        published=published_shares(figures),
    )
    send_tick, close_ticker = kafka_ticker(platform.bootstrap)
    try:
        with (
            TopicWatcher(platform.bootstrap) as watcher,
            notify_ledger(platform.layout.notify_db) as ledger,
        ):
            services = DemoServices(
                intake_url=platform.intake_url,
                mail_url=platform.mail_url,
                mail_dir=platform.layout.mail,
                ticker=send_tick,
                deadlines_url=platform.deadlines_url,
                ledger_status=ledger,
                plans_url=platform.plans_url,
                reviews_url=platform.reviews_url,
                staff_headers=staff_headers,
                placement_url=platform.placement_url if platform.placement else None,
                stopped=stopped,
            )
            driver = DemoDriver(cases, services, watcher, settings, out)
            try:
                driver.show_request_on_topic()
                if not options.demo:
                    return None
                summary = driver.run()
                messages, callbacks = wait_for_receipts(platform.notify_stub_url)
                platform.layout.govuk_messages.write_text(
                    json.dumps(messages, indent=2) + "\n"
                )
                ours = set(driver.case_ids.values())
                with watcher.locked():
                    notifications = [
                        n for n in watcher.notifications.values() if n.case_id in ours
                    ]
                counts = count_notify(
                    notifications,
                    summary.emails_in_catcher,
                    messages,
                    callbacks,
                    ledger() or {},
                )
                return summary, counts
            finally:
                driver.close()
    finally:
        close_ticker()


def _print_addresses(platform: Platform, issuer: LocalIssuer, out: TextIO) -> None:
    layout = platform.layout
    lines = [
        "Addresses:",
        f"  intake API docs      {platform.intake_url}/docs",
        f"  plans API docs       {platform.plans_url}/docs",
        f"  reviews API docs     {platform.reviews_url}/docs",
    ]
    if platform.placement:
        lines.append(f"  placement API docs   {platform.placement_url}/docs")
    lines += [
        f"  deadlines API docs   {platform.deadlines_url}/docs",
        f"  notify API docs      {platform.notify_url}/docs  (receipts: "
        f"{platform.receipts_url})",
        f"  local GOV.UK Notify  {platform.notify_stub_url}  (what it was sent: "
        f"{platform.notify_stub_url}/_stub/notifications)",
        f"  token issuer         {issuer.url}  (a token: curl -s -X POST "
        f'{issuer.url}/token -d \'{{"staff_id": "STAFF-101"}}\')',
        f"  mail page            {platform.mail_url}  (files: {layout.mail}/*.eml)",
        f"  Kafka                {platform.bootstrap}"
        + ("" if platform.kafka_launched else " (not started by make run)"),
        f"  logs                 {layout.logs}/",
    ]
    print("\n".join(lines), file=out, flush=True)


def _stop_everything(stack: Stack, out: TextIO) -> None:
    # A second Ctrl-C while stopping would leave processes behind; each one is still
    # killed after its stop timeout, so ignoring the signal cannot hang for long.
    previous = {
        sig: signal.signal(sig, signal.SIG_IGN)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        if stack.processes:
            started = time.monotonic()
            names = [p.spec.name for p in reversed(stack.processes)]
            stack.stop()
            print(
                f"Stopped {', '.join(names)} in {time.monotonic() - started:.1f} s.",
                file=out,
                flush=True,
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.ERROR)
    # A closed terminal (SIGHUP) or a supervisor's SIGTERM stops everything as Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)
    try:
        return run(options)
    except RunError as error:
        print(f"make run cannot start: {error}", flush=True)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
