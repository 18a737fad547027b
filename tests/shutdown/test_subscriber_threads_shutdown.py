"""The reviews and placement subscriber processes, each a thread per followed topic,
given SIGTERM part-way through a backlog on both topics, then restarted.

Each process exits 0 by itself; its consumers leave their groups; the offsets it
committed cover exactly what it handled; and the restarted process handles the rest,
so that every input is handled once: reviews records one event caused by each input,
placement marks each input processed and keeps one case's facts per input, and no
repeat reaches either service's idempotency check. Both run against their store on
SQLite and on PostgreSQL (the ``store_url`` fixture of ``conftest.py``). The inputs
are published by the kernel's relay from a store of the producing service's source,
as that service would publish them, a chunk at a time while the processes run
(``Feed``), so the first run is stopped with inputs still arriving.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from placement.application.facts import COLLECTION
from placement.settings import CONSUMER_NAME as PLACEMENT
from send_schemas.intake import CoordinatorAssigned, RequestReceived
from send_schemas.plans import PlanIssued
from sendkit.events import NewEvent
from sendkit.store import EventStore, open_store

from .shutdown_support import (
    Feed,
    Processes,
    Source,
    assert_each_input_handled_once,
    committed_total,
    group_members,
    process_env,
    stopped_then_restarted,
)

PARTITIONS = 6
PER_TOPIC = 1200
SCHOOL_URN = 100042


def plan_issued(case: str) -> tuple[str, NewEvent]:
    return case, NewEvent(
        type=PlanIssued.EVENT_TYPE,
        data={
            "case_id": case,
            "issued_on": "2025-03-10",
            "setting_urn": SCHOOL_URN,
            "setting_type": "mainstream_academy",
            "start_date": "2025-04-22",
        },
    )


def coordinator_assigned(case: str) -> tuple[str, NewEvent]:
    return case, NewEvent(
        type=CoordinatorAssigned.EVENT_TYPE,
        data={
            "case_id": case,
            "coordinator_id": "ehcco-shutdown",
            "previous_coordinator_id": None,
        },
    )


def request_received(case: str) -> tuple[str, NewEvent]:
    return case, NewEvent(
        type=RequestReceived.EVENT_TYPE,
        data={
            "case_id": case,
            "requester_type": "parent",
            "channel": "portal",
            "received_at": "2025-01-06T10:00:00Z",
            "school_urn": SCHOOL_URN,
            "curriculum_year": 6,
        },
        private={"child_name": "Synthetic Child"},
    )


def new_cases() -> list[str]:
    return [str(uuid.uuid4()) for _ in range(PER_TOPIC)]


@pytest.mark.timeout(600)
def test_reviews_subscribers_given_sigterm_mid_backlog_handle_every_input_once(
    store_url: str,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    plans_topic = unique_topic(partitions=PARTITIONS)
    intake_topic = unique_topic(partitions=PARTITIONS)
    group = unique_name("group")
    feed = Feed(
        kafka_bootstrap,
        [
            Source(
                plans_topic,
                tmp_path / "plans.db",
                "/send/plans",
                [plan_issued(case) for case in new_cases()],
            ),
            Source(
                intake_topic,
                tmp_path / "intake.db",
                "/send/intake",
                [coordinator_assigned(case) for case in new_cases()],
            ),
        ],
        handled=lambda: len(causes()),
    )
    groups = {plans_topic: f"{group}.plans", intake_topic: f"{group}.intake"}
    env = process_env(
        REVIEWS_DATABASE_URL=store_url,
        REVIEWS_CONSUMER_GROUP=group,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
    )
    reviews = open_store(store_url, "/send/reviews")

    def causes() -> Counter[str | None]:
        """How many reviews events each input caused."""
        recorded = reviews.read_all(after=0, limit=10 * 2 * PER_TOPIC)
        return Counter(event.metadata.causation_id for event in recorded)

    def committed() -> dict[str, int]:
        return {
            topic: committed_total(kafka_bootstrap, name, topic, PARTITIONS)
            for topic, name in groups.items()
        }

    try:
        feed.start()
        runs = stopped_then_restarted(
            processes,
            "reviews-subscribers",
            [plans_topic, intake_topic],
            env,
            tmp_path,
            handled=lambda: len(causes()),
            committed=lambda: sum(committed().values()),
            members=lambda: [
                member
                for name in groups.values()
                for member in group_members(kafka_bootstrap, name)
            ],
            total=feed.total,
        )
        inputs = feed.wait()
        caused = causes()
    finally:
        reviews.close()

    assert_each_input_handled_once(runs, len(inputs))
    assert caused == Counter({event.id: 1 for event in inputs})


@pytest.mark.timeout(600)
def test_placement_subscriber_given_sigterm_mid_backlog_handles_every_input_once(
    store_url: str,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    intake_topic = unique_topic(partitions=PARTITIONS)
    plans_topic = unique_topic(partitions=PARTITIONS)
    group = unique_name("group")
    feed = Feed(
        kafka_bootstrap,
        [
            Source(
                intake_topic,
                tmp_path / "intake.db",
                "/send/intake",
                [request_received(case) for case in new_cases()],
            ),
            Source(
                plans_topic,
                tmp_path / "plans.db",
                "/send/plans",
                [plan_issued(case) for case in new_cases()],
            ),
        ],
        handled=lambda: len(cases_with_facts()),
    )
    env = process_env(
        PLACEMENT_DATABASE_URL=store_url,
        PLACEMENT_CONSUMER_GROUP=group,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
    )
    placement = open_store(store_url, "/send/placement")

    def cases_with_facts(store: EventStore = placement) -> list[str]:
        with store.transaction() as tx:
            return [case for case, _ in tx.list_documents(COLLECTION)]

    def committed() -> int:
        return sum(
            committed_total(kafka_bootstrap, group, topic, PARTITIONS)
            for topic in (intake_topic, plans_topic)
        )

    try:
        feed.start()
        runs = stopped_then_restarted(
            processes,
            "placement-subscriber",
            [intake_topic, plans_topic],
            env,
            tmp_path,
            handled=lambda: len(cases_with_facts()),
            committed=committed,
            members=lambda: group_members(kafka_bootstrap, group),
            total=feed.total,
        )
        inputs = feed.wait()
        facts = cases_with_facts()
        with placement.transaction() as tx:
            unprocessed = [e.id for e in inputs if not tx.is_processed(PLACEMENT, e.id)]
    finally:
        placement.close()

    assert_each_input_handled_once(runs, len(inputs))
    assert sorted(facts) == sorted(event.stream_id for event in inputs)
    assert unprocessed == []
