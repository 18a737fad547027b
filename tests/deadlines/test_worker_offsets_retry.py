"""The worker's offsets reader asks again when kafka-python leaves a partition out
of a list-offsets answer (a ``KeyError`` from its fetcher), and says so when it keeps
happening, instead of crashing the agent on the first one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kafka.structs import TopicPartition

from deadlines.adapters import faust_ports
from deadlines.adapters.faust_ports import BrokerOffsets, OffsetsUnavailable


class _Consumer:
    """Answers list-offsets calls, after leaving a partition out ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def _answer(self, tps: list[TopicPartition], **_: Any) -> dict[Any, int]:
        self.calls += 1
        if self.calls <= self.failures:
            raise KeyError(tps[-1])
        return {tp: 10 * tp.partition + 7 for tp in tps}

    beginning_offsets = _answer
    end_offsets = _answer

    def close(self) -> None:
        pass


def _offsets(consumer: _Consumer, monkeypatch: pytest.MonkeyPatch) -> BrokerOffsets:
    monkeypatch.setattr(faust_ports, "LIST_OFFSETS_BACKOFF_S", 0.0)
    offsets = BrokerOffsets(["127.0.0.1:9"])
    offsets._consumer = consumer  # type: ignore[assignment]
    return offsets


def test_a_partition_left_out_twice_is_asked_for_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = _Consumer(failures=2)
    offsets = _offsets(consumer, monkeypatch)

    starts = asyncio.run(offsets.start_offsets(["a.events", "b.events"], 3))
    end = asyncio.run(offsets.end_offset("a.events", 3))

    assert starts == {"a.events": 37, "b.events": 37}
    assert end == 37
    assert consumer.calls == 4  # two left out, then the starts, then the end


def test_a_partition_always_left_out_is_reported_as_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = _Consumer(failures=1000)
    offsets = _offsets(consumer, monkeypatch)

    with pytest.raises(OffsetsUnavailable, match="left a partition out"):
        asyncio.run(offsets.end_offset("a.events", 1))
    assert consumer.calls == faust_ports.LIST_OFFSETS_ATTEMPTS
