"""One case from its request to its second annual review and amended plan, over HTTP.

Intake's, plans' and reviews' FastAPI apps run in this process, each on a SQLite store
of its own with its relay (and plans' and reviews' subscribers) on threads, called with
a team manager's token from the local OIDC issuer; the deadlines worker runs as a
process of its own (``python -m deadlines worker``) on topics of this test's own
(``DEADLINES_TOPIC_PREFIX``). Every command goes over HTTP with the date of its fact;
the services share one clock that the test moves to the day of each step, as staff
would record them on the day, and before the first step of each day the processor is
told the time by a round of ticks (``deadlines.ticker.Ticker``), sent once every relay
has published, so its barrier orders it after everything recorded before it. The
clock events asserted include the alerts those ticks cause: the overdue advice,
report and decision, and the comment windows closing.

Each due date asserted was worked out by hand from the rules of
``STATUTORY_CLOCKS.md`` (the comment beside it shows the sum), never asked of the
engine, and the request, the comment window and the first review use the worked
examples there. The stages:

1. request received Mon 6 Jan 2025, assessment agreed Fri 14 Feb 2025;
2. advice from two bodies, one in time and one a week late;
3. draft served Mon 14 Apr 2025 (the no-plan clock is cancelled), comments;
4. final plan issued Fri 23 May 2025, the first annual review set;
5. first review: meeting Wed 4 Mar 2026, decision to amend notified Wed 18 Mar 2026
   (the 8-week limit binds), the amended plan issued Fri 8 May 2026;
6. second review: meeting Wed 24 Feb 2027, report and decision late, the decision to
   amend notified Wed 14 Apr 2027 (the 12-week cap binds), the amended plan issued
   Fri 14 May 2027.

Then a second deadlines worker, with an application id of its own, replays every
topic from offset 0 and must publish the same clock events: the same ids with the
same data.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as day_time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from deadlines.settings import DeadlinesSettings
from deadlines.ticker import Ticker
from deadlines_worker import DeadlinesWorker
from devstack.kafka_topics import ensure_topics
from intake.adapters.relay import RelayThread
from intake.adapters.relay import build_relay as build_intake_relay
from intake.entrypoints.http import create_app as create_intake_app
from intake.settings import SOURCE as INTAKE_SOURCE
from intake.settings import IntakeSettings
from plans.adapters.relay import build_relay as build_plans_relay
from plans.adapters.relay import relay_loop as plans_relay_loop
from plans.adapters.subscriber import subscriber_loop as plans_subscriber_loop
from plans.entrypoints.http import create_app as create_plans_app
from plans.settings import SOURCE as PLANS_SOURCE
from plans.settings import PlansSettings
from reviews.adapters.relay import build_relay as build_reviews_relay
from reviews.adapters.relay import relay_loop as reviews_relay_loop
from reviews.adapters.subscribers import subscriber_loop as reviews_subscriber_loop
from reviews.application.service import ReviewsService
from reviews.entrypoints.http import create_app as create_reviews_app
from reviews.settings import SOURCE as REVIEWS_SOURCE
from reviews.settings import ReviewsSettings
from send_schemas.topics import PARTITIONS, Topic, dead_letter_topic
from sendkit.background import BackgroundLoop
from sendkit.envelope import InvalidEnvelope, ReceivedEvent, from_kafka
from sendkit.store import EventStore, SQLiteEventStore
from sendkit.subscriber import Handler

# Guards against a hang only; nothing asserts how long anything took.
WAIT_S = 180.0

FINAL_STATES = ("ClockMet", "ClockLate", "ClockCancelled")


class Today:
    """The one clock of the three services, moved by the test to each step's day."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)

    def set(self, day: str) -> None:
        self.now = datetime.combine(date.fromisoformat(day), day_time(12), UTC)

    def __call__(self) -> datetime:
        return self.now


Expected = tuple[str, str, dict[str, Any]]
"""An expected clock event: its name, its rule, and fields it must have."""


def _matches(event: ReceivedEvent, expected: Expected) -> bool:
    name, clock, fields = expected
    return (
        event.name == name
        and event.data.get("clock") == clock
        and all(event.data.get(key) == value for key, value in fields.items())
    )


class Clocks:
    """The clock events on the deadlines topic, read from its start as they come."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(self.partitions)
        self.consumer.seek_to_beginning(*self.partitions)
        self.seen: list[ReceivedEvent] = []

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=200).values():
            for record in records:
                with contextlib.suppress(InvalidEnvelope):
                    self.seen.append(from_kafka(record))

    def read_until(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if time.monotonic() > deadline:
                shown = [(e.name, e.data.get("clock")) for e in self.seen]
                raise AssertionError(f"gave up waiting for {what}; seen {shown}")
            self.poll()

    def expect(self, stage: str, expected: list[Expected]) -> list[ReceivedEvent]:
        """Wait for each expected event; answer them, one for each."""

        def missing() -> list[Expected]:
            return [x for x in expected if not any(_matches(e, x) for e in self.seen)]

        self.read_until(f"{stage}: {missing()}", lambda: not missing())
        found = []
        for wanted in expected:
            [event] = [e for e in self.seen if _matches(e, wanted)]
            found.append(event)
        return found

    def read_to_end(self) -> None:
        """Read to the topic's end offsets as they are now."""
        ends = self.consumer.end_offsets(self.partitions)
        deadline = time.monotonic() + WAIT_S
        while any(self.consumer.position(tp) < ends[tp] for tp in self.partitions):
            assert time.monotonic() < deadline, f"could not read to the end {ends}"
            self.poll()

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Journey:
    """The three apps, the clock they share, and the deadlines worker's output."""

    intake: TestClient
    plans: TestClient
    reviews: TestClient
    today: Today
    clocks: Clocks
    ticker: Ticker
    outboxes: list[tuple[EventStore, str]]
    start_worker: Callable[[], DeadlinesWorker]
    workers: list[DeadlinesWorker] = field(default_factory=list)
    ticked_on: str = ""

    def tick(self, on: str) -> None:
        """Tell the processor it is noon on ``on``, after every event recorded so far.

        The tick waits for each relay to publish its store's events, so its barrier
        (the topics' end offsets) covers them, the same on the first run and a replay.
        """
        _wait(
            "the relays to publish every event",
            lambda: all(
                store.get_checkpoint(f"relay:{topic}") >= store.last_position()
                for store, topic in self.outboxes
            ),
        )
        self.today.set(on)
        self.ticker.send(self.today())
        self.ticked_on = on

    def post(self, client: TestClient, on: str, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``path`` on the day ``on``; the answer must be a success.

        The first step of a day is preceded by that day's tick, as a ticker sending
        one a day would have sent it before staff recorded anything.
        """
        if on != self.ticked_on:
            self.tick(on)
        response = client.post(path, json=body)
        assert response.status_code in (200, 201), (path, response.text)
        return response.json()


def _wait(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


@pytest.fixture
def journey(
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> Iterator[Journey]:
    prefix = f"journey{uuid.uuid4().hex[:8]}."
    deadlines = DeadlinesSettings(topic_prefix=prefix)
    intake_topic = deadlines.intake_topic
    plans_topic = deadlines.topic("send.plans.events")
    reviews_topic = deadlines.topic("send.reviews.events")
    inputs = [*deadlines.domain_topics, deadlines.ticks_topic]
    names = [
        *inputs,
        deadlines.clocks_topic,
        *(dead_letter_topic("deadlines", name) for name in inputs),
        dead_letter_topic("deadlines", deadlines.clocks_topic),
        dead_letter_topic("plans", intake_topic),
        dead_letter_topic("reviews", plans_topic),
        dead_letter_topic("reviews", intake_topic),
    ]
    ensure_topics(
        kafka_bootstrap,
        [Topic(name, owner="test", consumers=("test",)) for name in names],
    )
    today = Today()
    workers: list[DeadlinesWorker] = []

    def start_worker() -> DeadlinesWorker:
        worker = DeadlinesWorker(
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "DEADLINES_APP_ID": unique_name("deadlines"),
                "DEADLINES_TOPIC_PREFIX": prefix,
                "LOG_FORMAT": "json",
            }
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    with contextlib.ExitStack() as stack:

        @stack.callback
        def stop_workers() -> None:
            for number, worker in enumerate(workers, start=1):
                worker.stop()
                # Shown by pytest only when the test fails.
                print(f"--- deadlines worker {number} ---\n{worker.tail()}")

        # Intake, with its relay.
        intake_store = SQLiteEventStore(tmp_path / "intake.db", INTAKE_SOURCE)
        stack.callback(intake_store.close)

        def intake_relay(
            settings: IntakeSettings, store: EventStore, registry: CollectorRegistry
        ) -> RelayThread:
            relay = build_intake_relay(
                settings, store, topic=intake_topic, registry=registry
            )
            return RelayThread(relay, poll_interval=0.05).start()

        intake = stack.enter_context(
            TestClient(
                create_intake_app(
                    IntakeSettings(
                        kafka_bootstrap_servers=kafka_bootstrap, relay_enabled=True
                    ),
                    store=intake_store,
                    clock=today,
                    relay_factory=intake_relay,
                ),
                headers=manager_headers,
            )
        )

        # Plans, subscribed to intake, with its relay.
        plans_store = SQLiteEventStore(tmp_path / "plans.db", PLANS_SOURCE)
        stack.callback(plans_store.close)

        def plans_relay(
            settings: PlansSettings, store: EventStore, registry: CollectorRegistry
        ) -> BackgroundLoop:
            relay = build_plans_relay(
                settings, store, topic=plans_topic, registry=registry
            )
            return plans_relay_loop(relay, settings).start()

        def plans_subscriber(
            settings: PlansSettings,
            store: EventStore,
            handler: Handler,
            registry: CollectorRegistry,
        ) -> BackgroundLoop:
            return plans_subscriber_loop(
                settings, store, handler, topic=intake_topic, registry=registry
            ).start()

        plans = stack.enter_context(
            TestClient(
                create_plans_app(
                    PlansSettings(
                        kafka_bootstrap_servers=kafka_bootstrap,
                        relay_enabled=True,
                        relay_poll_seconds=0.05,
                        subscriber_enabled=True,
                        consumer_group=unique_name("plans"),
                    ),
                    store=plans_store,
                    clock=today,
                    relay_factory=plans_relay,
                    subscriber_factory=plans_subscriber,
                ),
                headers=manager_headers,
            )
        )

        # Reviews, subscribed to plans and intake, with its relay.
        reviews_store = SQLiteEventStore(tmp_path / "reviews.db", REVIEWS_SOURCE)
        stack.callback(reviews_store.close)

        def reviews_relay(
            settings: ReviewsSettings, store: EventStore, registry: CollectorRegistry
        ) -> BackgroundLoop:
            relay = build_reviews_relay(
                settings, store, topic=reviews_topic, registry=registry
            )
            return reviews_relay_loop(relay, settings.relay_poll_seconds).start()

        def reviews_subscribers(
            settings: ReviewsSettings,
            store: EventStore,
            service: ReviewsService,
            registry: CollectorRegistry,
        ) -> list[BackgroundLoop]:
            return [
                reviews_subscriber_loop(
                    settings,
                    store,
                    service,
                    owner,
                    topic=topic,
                    registry=registry,
                    poll_timeout_ms=200,
                ).start()
                for owner, topic in (("plans", plans_topic), ("intake", intake_topic))
            ]

        reviews = stack.enter_context(
            TestClient(
                create_reviews_app(
                    ReviewsSettings(
                        kafka_bootstrap_servers=kafka_bootstrap,
                        consumer_group=unique_name("reviews"),
                        relay_enabled=True,
                        relay_poll_seconds=0.05,
                        subscribers_enabled=True,
                    ),
                    store=reviews_store,
                    clock=today,
                    relay_factory=reviews_relay,
                    subscribers_factory=reviews_subscribers,
                ),
                headers=manager_headers,
            )
        )

        clocks = Clocks(kafka_bootstrap, deadlines.clocks_topic)
        stack.callback(clocks.close)
        ticker = stack.enter_context(
            Ticker(
                kafka_bootstrap,
                topic=deadlines.ticks_topic,
                barrier_topics=deadlines.domain_topics,
            )
        )
        outboxes: list[tuple[EventStore, str]] = [
            (intake_store, intake_topic),
            (plans_store, plans_topic),
            (reviews_store, reviews_topic),
        ]
        start_worker()
        yield Journey(
            intake,
            plans,
            reviews,
            today,
            clocks,
            ticker,
            outboxes,
            start_worker,
            workers,
        )


def _canonical(event: ReceivedEvent) -> tuple[str, str, str, str]:
    return (event.id, event.type, event.subject, json.dumps(event.data, sort_keys=True))


@pytest.mark.timeout(900)
def test_a_case_from_request_to_its_second_review_and_amended_plan(
    journey: Journey,
) -> None:
    clocks = journey.clocks
    found: list[ReceivedEvent] = []

    # 1. The request arrives on Mon 6 Jan 2025 (10:00 GMT), the worked example.
    case_id = journey.post(
        journey.intake,
        "2025-01-06",
        "/cases",
        {
            "requester_type": "parent",
            "child_reference": "CHILD-JOURNEY-1",
            "date_of_birth": "2016-05-09",
            "school_urn": 123456,
            "curriculum_year": 3,
            "channel": "email",
            "received_at": "2025-01-06T10:00:00Z",
        },
    )["case_id"]
    found += clocks.expect(
        "the request's clocks",
        [
            # 6 Jan 2025 + 6 weeks (42 days) = Mon 17 Feb 2025.
            ("ClockSet", "decision", {"due_on": "2025-02-17"}),
            # 6 Jan 2025 + 20 weeks (140 days) = Mon 26 May 2025, a bank holiday:
            # act by the working day before, Fri 23 May 2025.
            (
                "ClockSet",
                "final_plan",
                {"due_on": "2025-05-26", "act_by": "2025-05-23"},
            ),
            # Local target: 6 Jan 2025 + 6 weeks = Mon 17 Feb 2025.
            ("ClockSet", "local_area_surgery", {"due_on": "2025-02-17"}),
        ],
    )

    # The assessment is agreed and notified on Fri 14 Feb 2025, inside its 6 weeks.
    journey.post(
        journey.intake,
        "2025-02-14",
        f"/cases/{case_id}/decision",
        {"outcome": "agreed", "notified_on": "2025-02-14"},
    )
    _wait(
        "plans to open the assessment",
        lambda: journey.plans.get(f"/cases/{case_id}").status_code == 200,
    )
    found += clocks.expect(
        "the agreed assessment",
        [
            ("ClockMet", "decision", {"stopped_on": "2025-02-14"}),
            ("ClockMet", "local_area_surgery", {"stopped_on": "2025-02-14"}),
            # Counted from the request: 6 Jan 2025 + 16 weeks (112 days) = Mon 28 Apr.
            ("ClockSet", "no_plan_notice", {"due_on": "2025-04-28"}),
        ],
    )

    # 2. Advice: the educational psychologist's in time, health's a week late.
    psychology = journey.post(
        journey.plans,
        "2025-02-17",
        f"/cases/{case_id}/advice-requests",
        {"body": "educational_psychology", "received_by_body_on": "2025-02-17"},
    )["advice_id"]
    health = journey.post(
        journey.plans,
        "2025-02-18",
        f"/cases/{case_id}/advice-requests",
        {"body": "health", "received_by_body_on": "2025-02-18"},
    )["advice_id"]
    journey.post(
        journey.plans,
        "2025-03-24",
        f"/cases/{case_id}/advice-requests/{psychology}/receipt",
        {"received_on": "2025-03-24"},
    )
    journey.post(
        journey.plans,
        "2025-04-08",
        f"/cases/{case_id}/advice-requests/{health}/receipt",
        {"received_on": "2025-04-08"},
    )
    found += clocks.expect(
        "the advice",
        [
            # 17 Feb 2025 + 42 days = 31 Mar 2025 (11 days to 28 Feb, 31 in March).
            (
                "ClockSet",
                "advice",
                {"due_on": "2025-03-31", "started_on": "2025-02-17"},
            ),
            (
                "ClockMet",
                "advice",
                {"due_on": "2025-03-31", "stopped_on": "2025-03-24"},
            ),
            # 18 Feb 2025 + 42 days = Tue 1 Apr 2025; received 8 Apr, 7 days late.
            (
                "ClockSet",
                "advice",
                {"due_on": "2025-04-01", "started_on": "2025-02-18"},
            ),
            (
                "ClockLate",
                "advice",
                {"due_on": "2025-04-01", "stopped_on": "2025-04-08", "days_late": 7},
            ),
            # The tick of 8 Apr, before the advice was recorded, found it overdue
            # since the day after its due date.
            ("ClockOverdue", "advice", {"overdue_since": "2025-04-02"}),
        ],
    )

    # 3. The draft plan is served on Mon 14 Apr 2025; the parent comments on 25 Apr.
    journey.post(
        journey.plans,
        "2025-04-14",
        f"/cases/{case_id}/draft-plans",
        {"served_on": "2025-04-14"},
    )
    journey.post(
        journey.plans,
        "2025-04-25",
        f"/cases/{case_id}/draft-comments",
        {
            "received_on": "2025-04-25",
            "respondent": "parent",
            "comments": "Synthetic comment: more speech therapy please",
            "preferred_setting_urn": 123456,
            "meeting_requested": True,
        },
    )
    found += clocks.expect(
        "the draft plan",
        [
            # At least 15 days beginning with 14 Apr 2025: last day 14 + 14 = 28 Apr,
            # so the final plan may be issued from Tue 29 Apr 2025.
            (
                "ClockSet",
                "draft_comments",
                {"due_on": "2025-04-28", "earliest_action_on": "2025-04-29"},
            ),
            # A draft before the 16 weeks are out cancels the no-plan notice clock.
            (
                "ClockCancelled",
                "no_plan_notice",
                {"due_on": "2025-04-28", "cancelled_on": "2025-04-14"},
            ),
        ],
    )

    # A final plan inside the comment window is refused (no written agreement).
    journey.today.set("2025-04-25")
    early = journey.plans.post(
        f"/cases/{case_id}/final-plan",
        json={
            "issued_on": "2025-04-25",
            "setting_urn": 123456,
            "setting_type": "mainstream_maintained",
            "start_date": "2025-06-02",
            "primary_need": "SLCN",
        },
    )
    assert early.status_code == 409, early.text

    # 4. The final plan is issued on Fri 23 May 2025, before the 20 weeks are out.
    journey.post(
        journey.plans,
        "2025-05-23",
        f"/cases/{case_id}/final-plan",
        {
            "issued_on": "2025-05-23",
            "setting_urn": 123456,
            "setting_type": "mainstream_maintained",
            "start_date": "2025-06-02",
            "primary_need": "SLCN",
        },
    )
    found += clocks.expect(
        "the final plan",
        [
            (
                "ClockMet",
                "final_plan",
                {"due_on": "2025-05-26", "stopped_on": "2025-05-23"},
            ),
            # The 12 months starting with Fri 23 May 2025 end on (22 May 2025) + 12
            # months = Fri 22 May 2026.
            (
                "ClockSet",
                "annual_review",
                {"started_on": "2025-05-23", "due_on": "2026-05-22"},
            ),
            # The tick of 23 May found the draft's comment window closed.
            (
                "ClockMet",
                "draft_comments",
                {"stopped_by": "window closed", "stopped_on": "2025-04-28"},
            ),
        ],
    )
    _wait(
        "reviews to start the case's review cycle",
        lambda: journey.reviews.get(f"/cases/{case_id}").status_code == 200,
    )
    assert (
        journey.reviews.get(f"/cases/{case_id}").json()["next_review_due_on"]
        == "2026-05-22"
    )

    # 5. The first review: arranged Mon 5 Jan 2026 for Wed 4 Mar 2026, the worked
    # example; referrals Tue 6 Jan, papers Tue 17 Feb, report Thu 12 Mar.
    first = journey.post(
        journey.reviews,
        "2026-01-05",
        f"/cases/{case_id}/reviews",
        {
            "meeting_on": "2026-03-04",
            "arranged_on": "2026-01-05",
            "invitee_roles": ["parent", "senco", "ehc_coordinator", "health"],
        },
    )["review_id"]
    review = f"/cases/{case_id}/reviews/{first}"
    journey.post(
        journey.reviews, "2026-01-06", f"{review}/referrals", {"made_on": "2026-01-06"}
    )
    journey.post(
        journey.reviews, "2026-02-17", f"{review}/papers", {"sent_on": "2026-02-17"}
    )
    journey.post(
        journey.reviews,
        "2026-03-04",
        f"{review}/meeting",
        {
            "held_on": "2026-03-04",
            "attendee_roles": ["parent", "senco", "ehc_coordinator", "child"],
            "child_views_gathered": True,
            "recommendations": "Synthetic: add speech therapy to section F",
        },
    )
    journey.post(
        journey.reviews, "2026-03-12", f"{review}/report", {"received_on": "2026-03-12"}
    )
    journey.post(
        journey.reviews,
        "2026-03-18",
        f"{review}/decision",
        {
            "decision": "amend",
            "notified_on": "2026-03-18",
            "proposed_amendments": "Synthetic: weekly speech and language sessions",
        },
    )
    found += clocks.expect(
        "the first review",
        [
            # Meeting Wed 4 Mar 2026 - 14 days = Wed 18 Feb 2026 (worked example).
            ("ClockSet", "review_notice", {"due_on": "2026-02-18"}),
            ("ClockMet", "review_notice", {"stopped_on": "2026-02-17"}),
            # Local target: 4 Mar 2026 - 8 weeks (56 days) = Wed 7 Jan 2026.
            ("ClockSet", "agency_referrals", {"due_on": "2026-01-07"}),
            ("ClockMet", "agency_referrals", {"stopped_on": "2026-01-06"}),
            ("ClockMet", "annual_review", {"due_on": "2026-05-22"}),
            # The next 12 months start with the meeting: (3 Mar 2026) + 12 months =
            # Wed 3 Mar 2027.
            (
                "ClockSet",
                "annual_review",
                {"started_on": "2026-03-04", "due_on": "2027-03-03"},
            ),
            # 4 Mar 2026 + 2 weeks = Wed 18 Mar 2026 (worked example).
            ("ClockSet", "review_report", {"due_on": "2026-03-18"}),
            ("ClockMet", "review_report", {"stopped_on": "2026-03-12"}),
            # 4 Mar 2026 + 4 weeks = Wed 1 Apr 2026 (worked example).
            ("ClockSet", "review_decision", {"due_on": "2026-04-01"}),
            ("ClockMet", "review_decision", {"stopped_on": "2026-03-18"}),
            # At least 15 days beginning with Wed 18 Mar 2026: last day 1 Apr 2026.
            ("ClockSet", "amendment_comments", {"due_on": "2026-04-01"}),
            # The earlier of 18 Mar 2026 + 8 weeks = Wed 13 May 2026 and 4 Mar 2026
            # + 12 weeks = Wed 27 May 2026: 13 May 2026 (worked example).
            ("ClockSet", "final_amended_plan", {"due_on": "2026-05-13"}),
        ],
    )

    # The amended plan is issued on Fri 8 May 2026, in time.
    journey.post(
        journey.plans,
        "2026-05-08",
        f"/cases/{case_id}/amendments",
        {
            "issued_on": "2026-05-08",
            "changes": ["F"],
            "summary": "Synthetic: weekly speech and language sessions",
        },
    )
    found += clocks.expect(
        "the first amended plan",
        [
            (
                "ClockMet",
                "final_amended_plan",
                {"due_on": "2026-05-13", "stopped_on": "2026-05-08"},
            ),
            (
                "ClockMet",
                "amendment_comments",
                {"stopped_by": "window closed", "stopped_on": "2026-04-01"},
            ),
        ],
    )

    # 6. The second review: arranged Mon 14 Dec 2026 for Wed 24 Feb 2027; referrals
    # Mon 21 Dec, papers Mon 8 Feb; the report (Mon 15 Mar) and the decision
    # (Wed 14 Apr) come late.
    second = journey.post(
        journey.reviews,
        "2026-12-14",
        f"/cases/{case_id}/reviews",
        {
            "meeting_on": "2027-02-24",
            "arranged_on": "2026-12-14",
            "invitee_roles": ["parent", "senco", "ehc_coordinator"],
        },
    )["review_id"]
    review = f"/cases/{case_id}/reviews/{second}"
    journey.post(
        journey.reviews, "2026-12-21", f"{review}/referrals", {"made_on": "2026-12-21"}
    )
    journey.post(
        journey.reviews, "2027-02-08", f"{review}/papers", {"sent_on": "2027-02-08"}
    )
    journey.post(
        journey.reviews,
        "2027-02-24",
        f"{review}/meeting",
        {
            "held_on": "2027-02-24",
            "attendee_roles": ["parent", "senco", "ehc_coordinator"],
            "child_views_gathered": True,
        },
    )
    journey.post(
        journey.reviews, "2027-03-15", f"{review}/report", {"received_on": "2027-03-15"}
    )
    journey.post(
        journey.reviews,
        "2027-04-14",
        f"{review}/decision",
        {
            "decision": "amend",
            "notified_on": "2027-04-14",
            "proposed_amendments": "Synthetic: a new setting's support in section F",
        },
    )
    found += clocks.expect(
        "the second review",
        [
            # 24 Feb 2027 - 14 days = Wed 10 Feb 2027.
            ("ClockSet", "review_notice", {"due_on": "2027-02-10"}),
            ("ClockMet", "review_notice", {"stopped_on": "2027-02-08"}),
            # Local target: 24 Feb 2027 - 56 days = Wed 30 Dec 2026 (24 days back to
            # 31 Jan, 31 to 31 Dec, 1 more).
            ("ClockSet", "agency_referrals", {"due_on": "2026-12-30"}),
            ("ClockMet", "agency_referrals", {"stopped_on": "2026-12-21"}),
            # The second review is held within its 12 months (due 3 Mar 2027).
            (
                "ClockMet",
                "annual_review",
                {"due_on": "2027-03-03", "stopped_on": "2027-02-24"},
            ),
            # The third period: (23 Feb 2027) + 12 months = Wed 23 Feb 2028.
            (
                "ClockSet",
                "annual_review",
                {"started_on": "2027-02-24", "due_on": "2028-02-23"},
            ),
            # 24 Feb 2027 + 14 days = Wed 10 Mar 2027 (February 2027 has 28 days);
            # received 15 Mar, 5 days late.
            ("ClockSet", "review_report", {"due_on": "2027-03-10"}),
            ("ClockOverdue", "review_report", {"overdue_since": "2027-03-11"}),
            (
                "ClockLate",
                "review_report",
                {"stopped_on": "2027-03-15", "days_late": 5},
            ),
            # 24 Feb 2027 + 28 days = Wed 24 Mar 2027; notified 14 Apr, 21 days late.
            ("ClockSet", "review_decision", {"due_on": "2027-03-24"}),
            ("ClockOverdue", "review_decision", {"overdue_since": "2027-03-25"}),
            (
                "ClockLate",
                "review_decision",
                {"stopped_on": "2027-04-14", "days_late": 21},
            ),
            # At least 15 days beginning with Wed 14 Apr 2027: last day 28 Apr 2027.
            ("ClockSet", "amendment_comments", {"due_on": "2027-04-28"}),
            # The earlier of 14 Apr 2027 + 8 weeks = Wed 9 Jun 2027 and 24 Feb 2027
            # + 12 weeks (84 days: 4 to 28 Feb, 31, 30, 19) = Wed 19 May 2027.
            ("ClockSet", "final_amended_plan", {"due_on": "2027-05-19"}),
        ],
    )

    # The second amended plan is issued on Fri 14 May 2027, inside the 12-week cap.
    journey.post(
        journey.plans,
        "2027-05-14",
        f"/cases/{case_id}/amendments",
        {"issued_on": "2027-05-14", "changes": ["B", "F"]},
    )
    found += clocks.expect(
        "the second amended plan",
        [
            (
                "ClockMet",
                "final_amended_plan",
                {"due_on": "2027-05-19", "stopped_on": "2027-05-14"},
            ),
            (
                "ClockMet",
                "amendment_comments",
                {"stopped_by": "window closed", "stopped_on": "2027-04-28"},
            ),
        ],
    )
    assert (
        journey.reviews.get(f"/cases/{case_id}").json()["next_review_due_on"]
        == "2028-02-23"
    )
    plan = journey.plans.get(f"/cases/{case_id}").json()
    assert [a["issued_on"] for a in plan["amendments"]] == ["2026-05-08", "2027-05-14"]

    # Every clock event is this case's; each expected event was seen exactly once.
    clocks.read_to_end()
    mine = clocks.seen
    assert {e.subject for e in mine} == {case_id}
    assert len({e.id for e in found}) == len(found)
    # The only clocks overdue, then late, are the three made late on purpose.
    assert sorted(
        (e.data["clock"], e.data["overdue_since"])
        for e in mine
        if e.name == "ClockOverdue"
    ) == [
        ("advice", "2025-04-02"),
        ("review_decision", "2027-03-25"),
        ("review_report", "2027-03-11"),
    ]
    assert sorted(e.data["clock"] for e in mine if e.name == "ClockLate") == [
        "advice",
        "review_decision",
        "review_report",
    ]
    # Each statutory clock set has reached its final state (the comment windows
    # closed as the ticks passed them), but the third annual review, open until
    # 23 Feb 2028.
    open_clocks = {
        e.data["clock_id"]: e.data
        for e in mine
        if e.name == "ClockSet" and e.data["statutory"]
    }
    for event in mine:
        if event.name in FINAL_STATES:
            open_clocks.pop(event.data["clock_id"], None)
    assert [(c["clock"], c["due_on"]) for c in open_clocks.values()] == [
        ("annual_review", "2028-02-23")
    ]

    # A second worker, with an application id of its own, replays every topic from
    # offset 0: it must publish the very same clock events, ids and data.
    first_worker = journey.workers[0]
    first_worker.stop()
    clocks.read_to_end()
    first_run = sorted(_canonical(e) for e in clocks.seen)
    count = len(clocks.seen)
    journey.start_worker()
    clocks.read_until(
        "the replay to publish as many clock events",
        lambda: len(clocks.seen) >= 2 * count,
    )
    clocks.read_to_end()
    replayed = sorted(_canonical(e) for e in clocks.seen[count:])
    assert replayed == first_run
