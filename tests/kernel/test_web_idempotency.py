"""Idempotency-Key handling and the shared command loop, against the real stores."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from sendkit.commands import CommandAnswer, CommandConflict, run_command
from sendkit.events import NewEvent, RecordedEvent
from sendkit.idempotency import (
    REPLAYED_HEADER,
    Idempotency,
    fingerprint,
    idempotency_from_request,
)
from sendkit.problems import PROBLEM_MEDIA_TYPE
from sendkit.store import (
    EventStore,
    IdempotencyRecord,
    InMemoryEventStore,
    SQLiteEventStore,
    Transaction,
    VersionConflict,
)
from sendkit.web import create_app

ADDED = "send.test.AmountAdded.v1"


class Add(BaseModel):
    amount: int


def build_app(store: EventStore, *, fail_after_append: bool = False) -> FastAPI:
    app = create_app("counters")

    @app.post("/counters/{counter_id}/additions", status_code=201)
    def add(
        counter_id: str,
        command: Add,
        request: Request,
        idempotency: Annotated[Idempotency | None, Depends(idempotency_from_request)],
    ) -> Any:
        def decide(history: Sequence[RecordedEvent]) -> list[NewEvent]:
            return [NewEvent(ADDED, {"amount": command.amount})]

        def answer(
            history: Sequence[RecordedEvent], recorded: Sequence[RecordedEvent]
        ) -> dict[str, Any]:
            if fail_after_append:
                raise RuntimeError("answer could not be built")
            total = sum(e.data["amount"] for e in [*history, *recorded])
            return {"counter_id": counter_id, "total": total, "event": recorded[0].id}

        result = run_command(store, counter_id, decide, answer, idempotency=idempotency)
        return replayable(result)

    return app


def replayable(result: CommandAnswer) -> Any:
    if result.replayed:
        return JSONResponse(
            result.body,
            status_code=result.status_code or 200,
            headers={REPLAYED_HEADER: "true"},
        )
    return result.body


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    opened: EventStore = (
        InMemoryEventStore("/send/test")
        if request.param == "memory"
        else SQLiteEventStore(tmp_path / "counters.db", "/send/test")
    )
    yield opened
    opened.close()


def test_a_retry_with_the_same_key_and_body_returns_the_first_answer(
    store: EventStore,
) -> None:
    client = TestClient(build_app(store))
    headers = {"Idempotency-Key": "k-1"}

    first = client.post("/counters/c1/additions", json={"amount": 5}, headers=headers)
    again = client.post("/counters/c1/additions", json={"amount": 5}, headers=headers)

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    assert len(store.read_stream("c1")) == 1


def test_reformatted_json_is_still_the_same_request(store: EventStore) -> None:
    client = TestClient(build_app(store))
    headers = {"Idempotency-Key": "k-2", "content-type": "application/json"}

    client.post("/counters/c1/additions", content=b'{"amount": 5}', headers=headers)
    again = client.post(
        "/counters/c1/additions", content=b'{ "amount":5 }', headers=headers
    )

    assert again.headers.get(REPLAYED_HEADER) == "true"
    assert len(store.read_stream("c1")) == 1


def test_the_same_key_with_another_body_is_refused_and_writes_nothing(
    store: EventStore,
) -> None:
    client = TestClient(build_app(store))
    headers = {"Idempotency-Key": "k-3"}
    client.post("/counters/c1/additions", json={"amount": 5}, headers=headers)

    other = client.post("/counters/c1/additions", json={"amount": 6}, headers=headers)
    elsewhere = client.post(
        "/counters/c2/additions", json={"amount": 5}, headers=headers
    )

    for refused in (other, elsewhere):
        assert refused.status_code == 422
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        body = refused.json()
        assert body["type"] == "/problems/idempotency-key"
        assert body["errors"][0]["field"] == "header.idempotency-key"
        assert "k-3" in body["detail"]
    assert len(store.read_stream("c1")) == 1
    assert store.read_stream("c2") == []


def test_without_a_key_every_request_is_a_new_command(store: EventStore) -> None:
    client = TestClient(build_app(store))

    client.post("/counters/c1/additions", json={"amount": 5})
    second = client.post("/counters/c1/additions", json={"amount": 5})

    assert second.json()["total"] == 10
    assert len(store.read_stream("c1")) == 2


def test_an_unusable_key_is_a_422_naming_the_header(store: EventStore) -> None:
    client = TestClient(build_app(store))

    response = client.post(
        "/counters/c1/additions", json={"amount": 5}, headers={"Idempotency-Key": "a b"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.idempotency-key"
    assert store.read_stream("c1") == []


def test_the_record_commits_with_the_appends_or_not_at_all(store: EventStore) -> None:
    failing = TestClient(build_app(store, fail_after_append=True))
    headers = {"Idempotency-Key": "k-4"}

    assert (
        failing.post(
            "/counters/c1/additions", json={"amount": 5}, headers=headers
        ).status_code
        == 500
    )

    # Neither the events nor the answer were kept, so the retry is a first attempt.
    assert store.read_stream("c1") == []
    with store.transaction() as tx:
        assert tx.get_idempotency("http", "k-4") is None
    retried = TestClient(build_app(store)).post(
        "/counters/c1/additions", json={"amount": 5}, headers=headers
    )
    assert retried.status_code == 201
    assert REPLAYED_HEADER not in retried.headers
    assert len(store.read_stream("c1")) == 1


def test_fingerprints_differ_by_method_path_and_body() -> None:
    base = fingerprint("POST", "/a", b'{"x": 1}')

    assert fingerprint("POST", "/a", b'{ "x":1 }') == base
    assert fingerprint("PUT", "/a", b'{"x": 1}') != base
    assert fingerprint("POST", "/b", b'{"x": 1}') != base
    assert fingerprint("POST", "/a", b'{"x": 2}') != base


class InterruptedTransaction(Transaction):
    """A transaction whose append first meets a writer that got there before it."""

    def __init__(self, inner: Transaction, store: ConflictingStore) -> None:
        self.inner = inner
        self.store = store

    def append(
        self, stream_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[RecordedEvent]:
        self.store.attempts += 1
        if self.store.attempts <= self.store.conflicts:
            raise VersionConflict(stream_id, expected_version, expected_version + 1)
        return self.inner.append(stream_id, expected_version, events)

    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        return self.inner.read_stream(stream_id)

    def is_processed(self, consumer: str, message_id: str) -> bool:
        return self.inner.is_processed(consumer, message_id)

    def mark_processed(self, consumer: str, message_id: str) -> None:
        self.inner.mark_processed(consumer, message_id)

    def get_checkpoint(self, name: str) -> int:
        return self.inner.get_checkpoint(name)

    def set_checkpoint(self, name: str, position: int) -> None:
        self.inner.set_checkpoint(name, position)

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self.inner.get_idempotency(scope, key)

    def put_idempotency(self, scope: str, record: IdempotencyRecord) -> None:
        self.inner.put_idempotency(scope, record)


class ConflictingStore(InMemoryEventStore):
    """A store whose first ``conflicts`` appends raise ``VersionConflict``."""

    def __init__(self, conflicts: int) -> None:
        super().__init__("/send/test")
        self.conflicts = conflicts
        self.attempts = 0

    def transaction(self) -> AbstractContextManager[Transaction]:
        return self._interrupted()

    @contextmanager
    def _interrupted(self) -> Iterator[Transaction]:
        with super().transaction() as tx:
            yield InterruptedTransaction(tx, self)


def _add_one(history: Sequence[RecordedEvent]) -> list[NewEvent]:
    return [NewEvent(ADDED, {"amount": 1})]


def _versions(
    history: Sequence[RecordedEvent], recorded: Sequence[RecordedEvent]
) -> dict[str, Any]:
    return {"version": recorded[-1].version}


def test_a_version_conflict_is_retried_on_fresh_history() -> None:
    store = ConflictingStore(conflicts=2)

    result = run_command(store, "c1", _add_one, _versions, attempts=3)

    assert store.attempts == 3
    assert result.body == {"version": 1}
    assert len(store.read_stream("c1")) == 1


def test_conflicts_beyond_the_limit_raise_command_conflict() -> None:
    store = ConflictingStore(conflicts=10)

    with pytest.raises(CommandConflict, match="c1"):
        run_command(store, "c1", _add_one, _versions, attempts=3)

    assert store.attempts == 3
    assert store.read_stream("c1") == []
