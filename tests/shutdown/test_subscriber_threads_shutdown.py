"""The reviews and placement subscriber processes, each a thread per followed topic,
given SIGTERM part-way through a backlog on both topics, then restarted.

Each process exits 0 by itself; its consumers leave their groups; the offsets it
committed cover exactly what it handled; and the restarted process handles the rest,
so that every input is handled once: reviews records one event caused by each input,
placement marks each input processed and keeps one case's facts per input, and no
repeat reaches either service's idempotency check. Both run against their store on
SQLite and on PostgreSQL. The inputs are published by the kernel's relay from a store
of the producing service's source, as that service would publish them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from placement.application.facts import COLLECTION
from placement.settings import CONSUMER_NAME as PLACEMENT
from send_schemas.intake import CoordinatorAssigned, RequestReceived
from send_schemas.plans import PlanIssued
from sendkit.events import NewEvent, RecordedEvent
from sendkit.store import EventStore, open_store
from store_backends import (
    POSTGRESQL,
    SQLITE,
    drop_postgres_schema,
    new_postgres_schema,
)

from .shutdown_support import (
    Process,
    Processes,
    committed_total,
    group_members,
    outcomes_of,
    process_env,
    publish_through_relay,
    wait_for,
)

PARTITIONS = 6
PER_TOPIC = 1200
HANDLED_BEFORE_SIGTERM = 300
SCHOOL_URN = 100042


@pytest.fixture(params=[SQLITE, POSTGRESQL])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The service's ``*_DATABASE_URL``: a SQLite file, or a schema of its own on the
    run's PostgreSQL, dropped afterwards."""
    if request.param == SQLITE:
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    url = new_postgres_schema("shutdown")
    yield url
    drop_postgres_schema(url)


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


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


@dataclass
class TwoRuns:
    """A run stopped by SIGTERM mid-backlog, what it left, and the run that finished."""

    first: Process
    first_code: int
    handled_at_stop: int
    committed_at_stop: int
    members_at_stop: list[Any]
    second: Process
    second_code: int


def stopped_then_restarted(
    processes: Processes,
    entry_point: str,
    topics: list[str],
    env: dict[str, str],
    tmp_path: Path,
    *,
    handled: Callable[[], int],
    committed: Callable[[], int],
    members: Callable[[], list[Any]],
    total: int,
) -> TwoRuns:
    """SIGTERM once ``HANDLED_BEFORE_SIGTERM`` inputs are handled; then a second run
    until all ``total`` inputs are handled and their offsets committed."""
    first = processes.launch(entry_point, topics, env, tmp_path / "first.log")
    wait_for(lambda: handled() >= HANDLED_BEFORE_SIGTERM, "the first inputs handled")
    first_code = first.terminate()
    # Read at once: a member that left nothing behind would stay for its session
    # timeout, and the second run's commits would blur what the first one left.
    members_at_stop = members()
    handled_at_stop = handled()
    committed_at_stop = committed()

    second = processes.launch(entry_point, topics, env, tmp_path / "second.log")
    wait_for(lambda: handled() >= total, "every input handled")
    wait_for(lambda: committed() == total, "every offset committed")
    second_code = second.terminate()
    return TwoRuns(
        first,
        first_code,
        handled_at_stop,
        committed_at_stop,
        members_at_stop,
        second,
        second_code,
    )


def assert_each_input_handled_once(runs: TwoRuns, total: int) -> None:
    """What the two runs' own counters and the committed offsets say."""
    assert runs.first_code == 0, runs.first.text()[-3000:]
    assert runs.second_code == 0, runs.second.text()[-3000:]
    assert runs.members_at_stop == [], "a stopped consumer did not leave its group"
    assert 0 < runs.handled_at_stop < total, (
        "the backlog ended before SIGTERM: add more"
    )
    # The first run committed exactly what it handled, so the second got the rest and
    # no input was delivered twice, not even to be found a duplicate.
    assert runs.committed_at_stop == runs.handled_at_stop
    assert outcomes_of(runs.first) == {"handled": runs.handled_at_stop}
    assert outcomes_of(runs.second) == {"handled": total - runs.handled_at_stop}


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
    inputs: list[RecordedEvent] = publish_through_relay(
        kafka_bootstrap,
        plans_topic,
        tmp_path / "plans.db",
        "/send/plans",
        [plan_issued(case) for case in new_cases()],
    ) + publish_through_relay(
        kafka_bootstrap,
        intake_topic,
        tmp_path / "intake.db",
        "/send/intake",
        [coordinator_assigned(case) for case in new_cases()],
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
        recorded = reviews.read_all(after=0, limit=10 * len(inputs))
        return Counter(event.metadata.causation_id for event in recorded)

    def committed() -> dict[str, int]:
        return {
            topic: committed_total(kafka_bootstrap, name, topic, PARTITIONS)
            for topic, name in groups.items()
        }

    try:
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
            total=len(inputs),
        )
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
    inputs: list[RecordedEvent] = publish_through_relay(
        kafka_bootstrap,
        intake_topic,
        tmp_path / "intake.db",
        "/send/intake",
        [request_received(case) for case in new_cases()],
    ) + publish_through_relay(
        kafka_bootstrap,
        plans_topic,
        tmp_path / "plans.db",
        "/send/plans",
        [plan_issued(case) for case in new_cases()],
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
        runs = stopped_then_restarted(
            processes,
            "placement-subscriber",
            [intake_topic, plans_topic],
            env,
            tmp_path,
            handled=lambda: len(cases_with_facts()),
            committed=committed,
            members=lambda: group_members(kafka_bootstrap, group),
            total=len(inputs),
        )
        facts = cases_with_facts()
        with placement.transaction() as tx:
            unprocessed = [e.id for e in inputs if not tx.is_processed(PLACEMENT, e.id)]
    finally:
        placement.close()

    assert_each_input_handled_once(runs, len(inputs))
    assert sorted(facts) == sorted(event.stream_id for event in inputs)
    assert unprocessed == []
