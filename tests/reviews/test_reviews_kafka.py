"""Through the real broker: every reviews event on the topic, as the contract says.

The HTTP app runs with its relay thread on (as ``REVIEWS_RELAY_ENABLED=true`` starts
it), publishing to a topic of this test's own; a plain kafka-python consumer reads it.
The facts reviews takes from plans and intake are recorded as its subscribers record
them (``ReviewsService.apply``); the rest come through the HTTP API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from reviews_kafka_support import read_to_end, wait_for
from reviews_support import (
    SETTING,
    FixedClock,
    arrange_body,
    assign_coordinator,
    end_plan,
    issue_plan,
)

from auth_fixtures import Mint
from reviews.adapters.relay import build_relay, relay_loop
from reviews.application.service import ReviewsService
from reviews.domain import RecordPlanAmendment
from reviews.entrypoints.http import create_app
from reviews.settings import SOURCE, ReviewsSettings
from send_schemas import reviews as contract
from sendkit.background import BackgroundLoop
from sendkit.envelope import from_kafka
from sendkit.relay import OutboxRelay
from sendkit.store import EventStore, SQLiteEventStore

PERSONAL = (
    "Synthetic note: room booked in the library",
    "Synthetic recommendation: more help with reading",
    "Synthetic amendment: a weekly session with a therapist",
    "Synthetic details: three exclusions this term",
    "Synthetic reason: the SENCO is on a course",
    "Synthetic decision note: the family agreed",
)


@pytest.fixture
def published(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    auth_env: dict[str, str],
    mint: Mint,
) -> Iterator[tuple[TestClient, ReviewsService, SQLiteEventStore, str, OutboxRelay]]:
    topic = unique_topic(partitions=6)
    store = SQLiteEventStore(tmp_path / "reviews.db", SOURCE)
    settings = ReviewsSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=True,
        relay_poll_seconds=0.05,
    )
    relays: list[OutboxRelay] = []

    def relay_on_test_topic(
        settings: ReviewsSettings, store: EventStore, registry: CollectorRegistry
    ) -> BackgroundLoop:
        relay = build_relay(settings, store, topic=topic, registry=registry)
        relays.append(relay)
        return relay_loop(relay, settings.relay_poll_seconds).start()

    app = create_app(
        settings, store=store, clock=FixedClock(), relay_factory=relay_on_test_topic
    )
    # ehcco-77's token: the actor every event staff cause must name.
    with TestClient(app, headers=mint("ehcco-77")) as client:
        yield client, app.state.reviews, store, topic, relays[0]
    store.close()


def make_every_event(client: TestClient, service: ReviewsService) -> list[str]:
    """Cause each reviews event type at least once; return the cases used."""
    staff = {"X-Correlation-ID": "kafka-corr-1"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body, headers=staff)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    reviewed = issue_plan(service, issued_on=date(2025, 3, 10))
    assign_coordinator(service, reviewed, "ehcco-77")
    review_id = post(f"/cases/{reviewed}/reviews", arrange_body(note=PERSONAL[0]))[
        "review_id"
    ]
    base = f"/cases/{reviewed}/reviews/{review_id}"
    post(
        f"{base}/rearrangement",
        {"meeting_on": "2026-03-05", "reason": PERSONAL[4]},
    )
    post(f"{base}/referrals", {"made_on": "2026-01-13"})
    post(f"{base}/papers", {"sent_on": "2026-02-17"})
    post(
        f"{base}/meeting",
        {
            "held_on": "2026-03-05",
            "attendee_roles": ["parent", "senco"],
            "child_views_gathered": True,
            "recommendations": PERSONAL[1],
        },
    )
    post(f"{base}/report", {"received_on": "2026-03-12"})
    post(
        f"{base}/decision",
        {
            "decision": "amend",
            "notified_on": "2026-03-18",
            "proposed_amendments": PERSONAL[2],
            "note": PERSONAL[5],
        },
    )
    with service.store.transaction() as tx:
        service.apply(RecordPlanAmendment(reviewed, date(2026, 3, 19), None), tx, "c")

    interim = issue_plan(service, issued_on=date(2025, 5, 1))
    post(
        f"/cases/{interim}/interim-review-requests",
        {"requested_on": "2026-03-16", "reason": "exclusion", "details": PERSONAL[3]},
    )
    post(
        f"/schools/{SETTING}/review-lists",
        {"term_start": "2026-04-13", "term_end": "2026-07-22", "sent_on": "2026-03-20"},
    )

    ceased = issue_plan(service, issued_on=date(2024, 6, 3))
    end_plan(service, ceased, date(2026, 1, 5))
    return [reviewed, interim, ceased]


def test_every_reviews_event_reaches_the_topic_with_only_the_contracts_fields(
    published: tuple[TestClient, ReviewsService, SQLiteEventStore, str, OutboxRelay],
    kafka_bootstrap: str,
) -> None:
    client, service, store, topic, relay = published
    cases = make_every_event(client, service)
    wait_for("the relay to publish", lambda: relay.checkpoint == store.last_position())

    records = read_to_end(kafka_bootstrap, topic)

    stored = {event.id: event for event in store.read_all()}
    assert len(records) == len(stored) == 15
    seen = set()
    for record in records:
        event = from_kafka(record)
        model = contract.EVENTS_BY_TYPE[event.type]
        seen.add(event.type)

        # Exactly the contract's fields, valid under the producing (strict) model.
        payload = json.loads(record.value)
        assert set(payload) == set(model.model_fields), event.type
        model.model_validate(payload)
        assert payload == stored[event.id].data

        # The envelope: key and subject are the case; the source is reviews.
        assert record.key.decode() == event.subject == payload["case_id"]
        assert event.subject in cases
        assert event.source == SOURCE
        assert event.sequence == stored[event.id].version
        if stored[event.id].metadata.actor != "system":
            assert event.metadata.actor == "ehcco-77"
            assert event.metadata.correlation_id == "kafka-corr-1"

        # Nothing personal anywhere in the record, though the store keeps it.
        wire = record.value + b"".join(value or b"" for _, value in record.headers)
        for secret in PERSONAL:
            assert secret.encode() not in wire, (event.type, secret)
    assert seen == {model.EVENT_TYPE for model in contract.EVENT_MODELS}
    kept = json.dumps([event.private for event in stored.values()])
    assert all(secret in kept for secret in PERSONAL)


def test_one_cases_events_arrive_in_order_on_one_partition(
    published: tuple[TestClient, ReviewsService, SQLiteEventStore, str, OutboxRelay],
    kafka_bootstrap: str,
) -> None:
    client, service, store, topic, relay = published
    cases = make_every_event(client, service)
    wait_for("the relay to publish", lambda: relay.checkpoint == store.last_position())

    records = read_to_end(kafka_bootstrap, topic)

    for case_id in cases:
        mine = sorted(
            (r for r in records if r.key.decode() == case_id), key=lambda r: r.offset
        )
        assert len({r.partition for r in mine}) == 1
        assert [from_kafka(r).sequence for r in mine] == list(range(1, len(mine) + 1))
