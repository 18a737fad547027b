"""``decide_in``: one decide-and-append step inside a transaction the caller holds."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sendkit.commands import decide_in
from sendkit.events import NewEvent, RecordedEvent
from sendkit.store import InMemoryEventStore, VersionConflict


def noted(count: int) -> list[NewEvent]:
    return [NewEvent("send.tester.Noted.v1", {"n": n}) for n in range(count)]


def test_it_appends_after_the_history_it_read_and_returns_both() -> None:
    store = InMemoryEventStore("/send/tester")
    store.append("case-1", 0, noted(2))
    seen: list[int] = []

    def decide(history: Sequence[RecordedEvent]) -> list[NewEvent]:
        seen.append(len(history))
        return noted(1)

    with store.transaction() as tx:
        history, recorded = decide_in(tx, "case-1", decide)

    assert seen == [2]
    assert [e.version for e in history] == [1, 2]
    assert [e.version for e in recorded] == [3]
    assert len(store.read_stream("case-1")) == 3


def test_nothing_decided_appends_nothing() -> None:
    store = InMemoryEventStore("/send/tester")

    with store.transaction() as tx:
        history, recorded = decide_in(tx, "case-2", lambda history: [])

    assert (history, recorded) == ([], [])
    assert store.last_position() == 0


def test_an_error_from_decide_rolls_the_transaction_back() -> None:
    store = InMemoryEventStore("/send/tester")

    def refuse(history: Sequence[RecordedEvent]) -> list[NewEvent]:
        raise ValueError("not now")

    def attempt() -> None:
        with store.transaction() as tx:
            tx.append("case-3", 0, noted(1))
            decide_in(tx, "case-3", refuse)

    with pytest.raises(ValueError, match="not now"):
        attempt()

    assert store.last_position() == 0


def test_a_stream_moved_on_in_the_same_transaction_is_a_version_conflict() -> None:
    store = InMemoryEventStore("/send/tester")

    def sneak_in_first(history: Sequence[RecordedEvent]) -> list[NewEvent]:
        tx.append("case-4", len(history), noted(1))
        return noted(1)

    with pytest.raises(VersionConflict), store.transaction() as tx:
        decide_in(tx, "case-4", sneak_in_first)
