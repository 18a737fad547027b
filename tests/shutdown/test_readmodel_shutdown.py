"""The deadlines read API given SIGTERM while its projector threads fold a backlog of
clock and intake events into the read model, then restarted.

The API process (uvicorn, with a projector thread per topic) exits by itself; its
consumers leave their groups; the offsets it committed cover exactly what it folded;
and the restarted process folds the rest, so that every input is in the read model
once and marked processed, and no repeat reaches the idempotency check. The read model
is on SQLite and on PostgreSQL (the ``store_url`` fixture of ``conftest.py``); the
topics are the test's own (``DEADLINES_TOPIC_PREFIX``), fed a chunk at a time while
the processes run (``Feed``).
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest

from deadlines.adapters.readmodel_store import CONSUMER, instance_id, read_cases
from deadlines.application.processor import SOURCE
from devstack.kafka_config import free_port
from send_schemas.deadlines import Authority, ClockApproaching
from send_schemas.intake import RequestReceived
from sendkit.events import NewEvent
from sendkit.store import open_store

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
from .worker_support import settings_on_own_topics

PER_TOPIC = 1200
PARTITIONS = 6


def clock_approaching(case: str) -> tuple[str, NewEvent]:
    data = ClockApproaching(
        clock_id="decision",
        case_id=case,
        clock="decision",
        title="Decision whether to assess",
        due_on=date(2025, 2, 17),
        act_by=None,
        legal_basis="SEND Regulations 2014, reg 5(1)",
        statutory=True,
        authority=Authority.STATUTORY,
        escalate=True,
        rules_version="2025.1",
        lead_working_days=5,
        alert_on=date(2025, 2, 10),
        action="Decide whether to assess and tell the family.",
    )
    return case, NewEvent(type=data.EVENT_TYPE, data=data.model_dump(mode="json"))


def request_received(case: str) -> tuple[str, NewEvent]:
    return case, NewEvent(
        type=RequestReceived.EVENT_TYPE,
        data={
            "case_id": case,
            "requester_type": "parent",
            "channel": "portal",
            "received_at": "2025-01-06T10:00:00Z",
            "school_urn": 100042,
            "curriculum_year": 6,
        },
    )


def new_cases() -> list[str]:
    return [str(uuid.uuid4()) for _ in range(PER_TOPIC)]


@pytest.mark.timeout(600)
def test_the_read_api_given_sigterm_mid_backlog_folds_every_input_once(
    store_url: str, kafka_bootstrap: str, tmp_path: Path, processes: Processes
) -> None:
    settings = settings_on_own_topics(kafka_bootstrap, "readmodel")
    clocks_topic, intake_topic = settings.clocks_topic, settings.intake_topic
    feed = Feed(
        kafka_bootstrap,
        [
            Source(
                clocks_topic,
                tmp_path / "deadlines.db",
                "/send/deadlines",
                [clock_approaching(case) for case in new_cases()],
            ),
            Source(
                intake_topic,
                tmp_path / "intake.db",
                "/send/intake",
                [request_received(case) for case in new_cases()],
            ),
        ],
        handled=lambda: len(read_cases(read_model)),
    )
    app_id = f"send-deadlines-{uuid.uuid4().hex[:8]}"
    read_model = open_store(store_url, SOURCE)
    # The read model's id, made here first: the API finds it and names its groups.
    instance = instance_id(read_model)
    groups = {
        topic: f"{app_id}.readmodel.{instance}.{topic}"
        for topic in (clocks_topic, intake_topic)
    }
    env = process_env(
        DEADLINES_DATABASE_URL=store_url,
        DEADLINES_HOST="127.0.0.1",
        DEADLINES_PORT=str(free_port()),
        DEADLINES_PROJECTOR_ENABLED="true",
        DEADLINES_APP_ID=app_id,
        DEADLINES_TOPIC_PREFIX=settings.topic_prefix,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        SEND_ENV="development",
        AUTH_MODE="off",
    )

    try:
        feed.start()
        runs = stopped_then_restarted(
            processes,
            "deadlines-api",
            [],
            env,
            tmp_path,
            handled=lambda: len(read_cases(read_model)),
            committed=lambda: sum(
                committed_total(kafka_bootstrap, group, topic, PARTITIONS)
                for topic, group in groups.items()
            ),
            members=lambda: [
                member
                for group in groups.values()
                for member in group_members(kafka_bootstrap, group)
            ],
            total=feed.total,
        )
        inputs = feed.wait()
        documents = {doc["case_id"]: doc for doc in read_cases(read_model)}
        with read_model.transaction() as tx:
            unprocessed = [e.id for e in inputs if not tx.is_processed(CONSUMER, e.id)]
    finally:
        read_model.close()

    assert_each_input_handled_once(runs, len(inputs))
    assert runs.first.said("Application shutdown complete")
    assert unprocessed == []
    # Each input is in its case's document once: a clock event in its clock's
    # history, an intake event among the case's facts.
    assert sorted(documents) == sorted(event.stream_id for event in inputs)
    for event in inputs:
        document = documents[event.stream_id]
        if event.type == RequestReceived.EVENT_TYPE:
            assert list(document["facts"]) == [event.id]
        else:
            history = document["clocks"]["decision"]["history"]
            assert [entry["id"] for entry in history] == [event.id]
