"""How reviews follows the plans and intake services: reactions, then the real broker.

The broker tests give each subscriber a topic, consumer group and store of its own
(SQLite and PostgreSQL, as every test here that uses the store), and write the plans
and intake records as those services' relays do (``sendkit.envelope.to_kafka``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from reviews_kafka_support import (
    create_dead_letter_topic,
    foreign_event,
    produce,
    read_to_end,
    wait_for,
)
from reviews_support import SETTING, FixedClock, arrange_body, new_case_id

from reviews.adapters.relay import build_relay, relay_loop
from reviews.adapters.subscribers import build_subscriber, subscriber_loop
from reviews.application.service import ReviewsService
from reviews.entrypoints.http import create_app
from reviews.settings import SOURCE, ReviewsSettings
from sendkit.background import BackgroundLoop
from sendkit.envelope import ReceivedEvent, from_kafka
from sendkit.events import Metadata
from sendkit.store import EventStore, InMemoryEventStore, SQLiteEventStore
from sendkit.subscriber import IdempotentSubscriber, PollOutcome, Unprocessable
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

PLAN_ISSUED = {
    "issued_on": "2025-03-10",
    "setting_urn": SETTING,
    "setting_type": "mainstream_academy",
    "start_date": "2025-04-22",
}


def received(
    owner: str, name: str, case_id: str, data: dict[str, Any]
) -> ReceivedEvent:
    return ReceivedEvent(
        id=new_case_id(),
        type=f"send.{owner}.{name}.v1",
        source=f"/send/{owner}",
        subject=case_id,
        time=datetime(2026, 3, 1, 9, 0, tzinfo=UTC),
        data={"case_id": case_id, **data},
        metadata=Metadata("staff-1", "corr-source"),
        sequence=1,
        topic=f"send.{owner}.events",
        partition=0,
        offset=0,
        key=case_id,
    )


def react(service: ReviewsService, event: ReceivedEvent) -> None:
    with service.store.transaction() as tx:
        service.react(event, tx)


# The reactions, without a broker ---------------------------------------------------


def test_plan_issued_starts_the_cycle_caused_by_the_plans_event(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = new_case_id()
    issued = received("plans", "PlanIssued", case_id, PLAN_ISSUED)

    react(service, issued)

    (event,) = store.read_stream(case_id)
    assert event.type == "send.reviews.ReviewCycleStarted.v1"
    assert event.data == {
        "case_id": case_id,
        "issued_on": "2025-03-10",
        "setting_urn": SETTING,
    }
    assert event.metadata.causation_id == issued.id
    assert event.metadata.correlation_id == "corr-source"


@pytest.mark.parametrize(
    ("owner", "name", "data", "recorded"),
    [
        (
            "plans",
            "PlanAmended",
            {"issued_on": "2025-09-01", "changes": ["F"]},
            {"amended_on": "2025-09-01", "setting_urn": None, "review_id": None},
        ),
        (
            "plans",
            "PlanCeased",
            {"ceased_on": "2026-01-05", "reason": "needs_met"},
            {"ended_on": "2026-01-05", "reason": "plan_ceased"},
        ),
        (
            "plans",
            "PlanTransferredOut",
            {"transferred_on": "2026-01-06"},
            {"ended_on": "2026-01-06", "reason": "plan_transferred_out"},
        ),
        (
            "intake",
            "CoordinatorAssigned",
            {"coordinator_id": "ehcco-4", "previous_coordinator_id": None},
            {"coordinator_id": "ehcco-4", "previous_coordinator_id": None},
        ),
    ],
)
def test_each_followed_event_is_recorded(
    service: ReviewsService,
    store: InMemoryEventStore,
    owner: str,
    name: str,
    data: dict[str, Any],
    recorded: dict[str, Any],
) -> None:
    case_id = new_case_id()
    react(service, received("plans", "PlanIssued", case_id, PLAN_ISSUED))

    react(service, received(owner, name, case_id, data))

    assert store.read_stream(case_id)[-1].data == {"case_id": case_id, **recorded}


@pytest.mark.parametrize(
    ("owner", "name", "data"),
    [
        ("plans", "DraftPlanIssued", {"served_on": "2025-02-10"}),
        ("plans", "PlanResubmitted", {"anything": 1}),
        ("intake", "AssessmentAgreed", {"notified_on": "2024-10-01"}),
    ],
)
def test_events_reviews_has_no_use_for_record_nothing(
    service: ReviewsService,
    store: InMemoryEventStore,
    owner: str,
    name: str,
    data: dict[str, Any],
) -> None:
    react(service, received(owner, name, new_case_id(), data))

    assert store.last_position() == 0


def test_an_event_keyed_by_another_case_is_unprocessable(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    event = received("plans", "PlanIssued", new_case_id(), PLAN_ISSUED)
    mismatched = replace(event, subject=new_case_id())

    with pytest.raises(Unprocessable, match="other than its subject"):
        react(service, mismatched)
    assert store.last_position() == 0


@pytest.mark.parametrize("key", [None, "another-case"])
def test_an_event_on_a_record_keyed_by_another_case_is_unprocessable(
    service: ReviewsService, store: InMemoryEventStore, key: str | None
) -> None:
    event = received("plans", "PlanIssued", new_case_id(), PLAN_ISSUED)

    with pytest.raises(Unprocessable, match="Kafka key"):
        react(service, replace(event, key=key))
    assert store.last_position() == 0


def test_an_event_breaking_the_plans_contract_is_a_validation_error(
    service: ReviewsService, store: InMemoryEventStore
) -> None:
    broken = {**PLAN_ISSUED, "issued_on": "the tenth of March"}

    with pytest.raises(ValidationError, match="issued_on"):
        react(service, received("plans", "PlanIssued", new_case_id(), broken))
    assert store.last_position() == 0


# Through the real broker ------------------------------------------------------------


@dataclass
class Broker:
    bootstrap: str
    topic: str
    dead_letters: str
    store: EventStore
    service: ReviewsService
    group: Callable[[str], str]
    made: list[IdempotentSubscriber] = field(default_factory=list)

    def subscriber(self, owner: str = "plans") -> IdempotentSubscriber:
        settings = ReviewsSettings(
            kafka_bootstrap_servers=self.bootstrap,
            consumer_group=self.group("reviews"),
        )
        made = build_subscriber(
            settings,
            self.store,
            self.service,
            owner,
            topic=self.topic,
            registry=CollectorRegistry(),
            poll_timeout_ms=200,
            consumer_config={"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
        )
        self.made.append(made)
        return made


@pytest.fixture
def broker(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    store: EventStore,
) -> Iterator[Broker]:
    topic = unique_topic(partitions=1)
    setup = Broker(
        bootstrap=kafka_bootstrap,
        topic=topic,
        dead_letters=create_dead_letter_topic(kafka_bootstrap, topic),
        store=store,
        service=ReviewsService(store, clock=FixedClock()),
        group=unique_name,
    )
    yield setup
    for subscriber in setup.made:
        subscriber.close()


def poll_until(
    subscriber: IdempotentSubscriber, enough: Callable[[PollOutcome], bool]
) -> PollOutcome:
    total = PollOutcome()

    def polled() -> bool:
        nonlocal total
        outcome = subscriber.poll_once()
        total = PollOutcome(
            handled=total.handled + outcome.handled,
            duplicates=total.duplicates + outcome.duplicates,
            dead_lettered=total.dead_lettered + outcome.dead_lettered,
        )
        return enough(total)

    wait_for("the subscriber to take the records", polled, interval_s=0)
    return total


def test_plan_issued_on_the_topic_starts_the_cycle_and_a_redelivery_changes_nothing(
    broker: Broker,
) -> None:
    case_id = new_case_id()
    event_id, record = foreign_event("plans", "PlanIssued", case_id, PLAN_ISSUED)
    produce(broker.bootstrap, broker.topic, [record])
    subscriber = broker.subscriber()

    first = poll_until(subscriber, lambda total: total.handled == 1)
    produce(broker.bootstrap, broker.topic, [record])  # the relay sent it again
    second = poll_until(subscriber, lambda total: total.records == 1)

    (event,) = broker.store.read_stream(case_id)
    assert event.type == "send.reviews.ReviewCycleStarted.v1"
    assert event.data["issued_on"] == "2025-03-10"
    assert event.metadata.causation_id == event_id
    assert event.metadata.correlation_id == "corr-plans-1"
    assert (first.handled, second.duplicates, second.handled) == (1, 1, 0)
    assert broker.service.case(case_id).case.next_review_due_on == date(2026, 3, 9)


def test_replaying_the_topic_from_the_start_records_nothing_more(
    broker: Broker,
) -> None:
    case_id = new_case_id()
    records = [
        foreign_event("plans", "PlanIssued", case_id, PLAN_ISSUED, version=1)[1],
        foreign_event(
            "plans",
            "PlanAmended",
            case_id,
            {"issued_on": "2025-09-01", "changes": ["F"]},
            version=2,
        )[1],
        foreign_event(
            "plans",
            "PlanCeased",
            case_id,
            {"ceased_on": "2026-01-05", "reason": "needs_met"},
            version=3,
        )[1],
    ]
    produce(broker.bootstrap, broker.topic, records)
    poll_until(broker.subscriber(), lambda total: total.handled == 3)
    before = broker.store.last_position()

    replayed = poll_until(broker.subscriber(), lambda total: total.records == 3)

    assert replayed.duplicates == 3
    assert broker.store.last_position() == before == 3
    assert [e.type.split(".")[2] for e in broker.store.read_stream(case_id)] == [
        "ReviewCycleStarted",
        "PlanAmendmentRecorded",
        "ReviewCycleEnded",
    ]


def test_an_unreadable_plans_event_is_dead_lettered_and_the_next_is_handled(
    broker: Broker,
) -> None:
    broken_case, good_case = new_case_id(), new_case_id()
    _, broken = foreign_event(
        "plans", "PlanIssued", broken_case, {**PLAN_ISSUED, "issued_on": None}
    )
    _, good = foreign_event("plans", "PlanIssued", good_case, PLAN_ISSUED)
    produce(broker.bootstrap, broker.topic, [broken, good])

    outcome = poll_until(broker.subscriber(), lambda total: total.records == 2)

    assert (outcome.dead_lettered, outcome.handled) == (1, 1)
    assert broker.store.read_stream(broken_case) == []
    assert len(broker.store.read_stream(good_case)) == 1
    (letter,) = read_to_end(broker.bootstrap, broker.dead_letters)
    headers = dict(letter.headers)
    assert letter.value == broken[1]
    assert headers["dlq_consumer"] == b"reviews"
    assert headers["dlq_error_type"] == b"ValidationError"
    assert b"issued_on" in headers["dlq_reason"]


def test_the_app_follows_plans_and_intake_and_publishes_what_staff_record(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    plans_topic, intake_topic, reviews_topic = (unique_topic(1) for _ in range(3))
    settings = ReviewsSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        consumer_group=unique_name("reviews"),
        relay_enabled=True,
        relay_poll_seconds=0.05,
        subscribers_enabled=True,
    )
    store = SQLiteEventStore(tmp_path / "reviews.db", SOURCE)
    loops: list[BackgroundLoop] = []

    def relay_on_test_topic(
        settings: ReviewsSettings, store: EventStore, registry: CollectorRegistry
    ) -> BackgroundLoop:
        relay = build_relay(settings, store, topic=reviews_topic, registry=registry)
        loops.append(relay_loop(relay, settings.relay_poll_seconds).start())
        return loops[-1]

    def subscribers_on_test_topics(
        settings: ReviewsSettings,
        store: EventStore,
        service: ReviewsService,
        registry: CollectorRegistry,
    ) -> list[BackgroundLoop]:
        made = [
            subscriber_loop(
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
        loops.extend(made)
        return made

    case_id = new_case_id()
    produce(
        kafka_bootstrap,
        plans_topic,
        [foreign_event("plans", "PlanIssued", case_id, PLAN_ISSUED)[1]],
    )
    produce(
        kafka_bootstrap,
        intake_topic,
        [
            foreign_event(
                "intake",
                "CoordinatorAssigned",
                case_id,
                {"coordinator_id": "ehcco-9", "previous_coordinator_id": None},
            )[1]
        ],
    )
    app = create_app(
        settings,
        store=store,
        clock=FixedClock(),
        relay_factory=relay_on_test_topic,
        subscribers_factory=subscribers_on_test_topics,
    )
    with TestClient(app, headers=manager_headers) as client:
        assert client.get("/readyz").json()["checks"]["subscribers"] == "ok"
        wait_for(
            "the plan and the coordinator to be followed",
            lambda: (
                client.get(f"/cases/{case_id}").status_code == 200
                and client.get(f"/cases/{case_id}").json()["coordinator_id"]
                == "ehcco-9"
                and client.get(f"/cases/{case_id}").json()["plan_status"] == "active"
            ),
        )
        response = client.post(f"/cases/{case_id}/reviews", json=arrange_body())
        assert response.status_code == 201, response.text
        wait_for(
            "the relay to publish",
            lambda: (
                loops[0].is_alive()
                and store.last_position() == 3
                and len(read_to_end(kafka_bootstrap, reviews_topic)) == 3
            ),
            interval_s=0.2,
        )

    assert not any(loop.is_alive() for loop in loops)
    published = [from_kafka(r) for r in read_to_end(kafka_bootstrap, reviews_topic)]
    assert sorted(e.name for e in published) == [
        "ReviewArranged",
        "ReviewCoordinatorAssigned",
        "ReviewCycleStarted",
    ]
    store.close()
