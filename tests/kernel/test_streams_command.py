"""``run_streams_command``: one command, several streams, all or nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from sendkit.commands import CommandConflict, run_command, run_streams_command
from sendkit.events import NewEvent, RecordedEvent
from sendkit.idempotency import Idempotency
from sendkit.store import InMemoryEventStore, Transaction, VersionConflict

LISTED = "send.test.CaseListed.v1"


def listed(n: int) -> NewEvent:
    return NewEvent(LISTED, {"n": n})


def versions(
    histories: Mapping[str, Sequence[RecordedEvent]],
    recorded: Mapping[str, Sequence[RecordedEvent]],
) -> dict[str, Any]:
    return {
        stream: [event.version for event in recorded.get(stream, [])]
        for stream in histories
    }


def test_each_stream_gets_its_events_in_one_transaction() -> None:
    store = InMemoryEventStore()
    store.append("b", 0, [listed(0)])

    answer = run_streams_command(
        store,
        ["a", "b", "c"],
        lambda tx, histories: {"a": [listed(1)], "b": [listed(2), listed(3)]},
        versions,
    )

    assert answer.body == {"a": [1], "b": [2, 3], "c": []}
    assert [event.stream_id for event in answer.recorded] == ["a", "b", "b"]
    assert [e.position for e in store.read_all()] == [1, 2, 3, 4]


def test_a_domain_error_on_any_stream_writes_nothing_anywhere() -> None:
    store = InMemoryEventStore()

    def decide(tx: Transaction, histories: Any) -> dict[str, list[NewEvent]]:
        tx.put_document("panels", "p1", {"cases": ["a", "b"]})
        raise LookupError("case b is not ready for a panel")

    with pytest.raises(LookupError, match="not ready"):
        run_streams_command(store, ["a", "b"], decide, versions)

    assert store.read_all() == []
    with store.transaction() as tx:
        assert tx.get_document("panels", "p1") is None


def test_decide_reads_documents_in_the_deciding_transaction() -> None:
    store = InMemoryEventStore()
    with store.transaction() as tx:
        tx.put_document("plans", "a", {"status": "ceased"})

    def decide(tx: Transaction, histories: Any) -> dict[str, list[NewEvent]]:
        plan = tx.get_document("plans", "a")
        return {} if plan and plan["status"] == "ceased" else {"a": [listed(1)]}

    answer = run_streams_command(store, ["a"], decide, versions)

    assert answer.recorded == []


def test_events_for_a_stream_not_named_are_refused() -> None:
    store = InMemoryEventStore()

    with pytest.raises(ValueError, match="not given"):
        run_streams_command(
            store, ["a"], lambda tx, h: {"a": [listed(1)], "z": [listed(2)]}, versions
        )
    assert store.read_all() == []


def test_an_idempotent_retry_answers_the_same_and_writes_nothing() -> None:
    store = InMemoryEventStore()
    key = Idempotency(key="k-1", fingerprint="f", status_code=201)

    def decide(tx: Transaction, histories: Any) -> dict[str, list[NewEvent]]:
        return {stream: [listed(1)] for stream in histories}

    first = run_streams_command(store, ["a", "b"], decide, versions, idempotency=key)
    again = run_streams_command(store, ["a", "b"], decide, versions, idempotency=key)

    assert again.replayed
    assert again.body == first.body
    assert again.status_code == 201
    assert len(store.read_all()) == 2


def test_a_conflict_is_retried_on_fresh_streams_then_refused() -> None:
    store = InMemoryEventStore()
    calls: list[int] = []

    def decide(tx: Transaction, histories: Any) -> dict[str, list[NewEvent]]:
        calls.append(len(histories["a"]))
        raise VersionConflict("a", 0, 1)

    with pytest.raises(CommandConflict, match="case a"):
        run_streams_command(store, ["a"], decide, versions, attempts=3)
    assert calls == [0, 0, 0]


def test_run_command_is_the_one_stream_case() -> None:
    store = InMemoryEventStore()

    answer = run_command(
        store,
        "a",
        lambda history: [listed(len(history) + 1)],
        lambda history, recorded: {"version": recorded[-1].version},
    )

    assert answer.body == {"version": 1}
    assert [event.data for event in store.read_stream("a")] == [{"n": 1}]
