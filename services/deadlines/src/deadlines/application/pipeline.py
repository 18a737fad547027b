"""The processor's loop body: order the inputs, apply them, make the results durable.

``offer`` takes each consumed record with the handle that acknowledges it; ``drain``
applies every input whose turn has come (``PartitionSequencer``), publishes the clock
events and dead letters, waits until Kafka has acknowledged all of them, and only then
writes the case states and partition progress (``CaseStates.flush``) and acknowledges
the inputs. So a crash at any point leaves either the inputs unacknowledged, and they
are applied again, with the same output ids, or everything in place: the state never
runs ahead of what has been published. The worker runs one drainer task (``run``)
that drains whenever it is woken; while a drain waits for Kafka's acknowledgements the
agent goes on offering records, and the next drain applies them all at once, so a
replay needs one round trip per batch rather than per record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any

from deadlines.application.ports import CaseStates, InputRecord, Offsets, Publisher
from deadlines.application.processor import ClockProcessor
from deadlines.application.sequencer import (
    DEFAULT_MAX_WAIT_S,
    Blocked,
    PartitionSequencer,
    Pending,
    Progress,
)
from deadlines.application.ticks import InvalidTick, parse_tick

log = logging.getLogger(__name__)

Ack = Callable[[Any], Awaitable[object]]


class Offered(Enum):
    QUEUED = "queued"
    APPLIED_BEFORE = "applied before"
    ALREADY_QUEUED = "already queued"


class Pipeline:
    """Sequencers per partition, the clock processor, and the group commit."""

    def __init__(
        self,
        *,
        states: CaseStates,
        processor: ClockProcessor,
        offsets: Offsets,
        publisher: Publisher,
        ack: Ack,
        domain_topics: Sequence[str],
        ticks_topic: str,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.states = states
        self.processor = processor
        self.offsets = offsets
        self.publisher = publisher
        self.ack = ack
        self.domain_topics = tuple(domain_topics)
        self.ticks_topic = ticks_topic
        self.max_wait_s = max_wait_s
        self.monotonic = monotonic
        self._sequencers: dict[int, PartitionSequencer] = {}
        # ``_lock`` guards the sequencers (offers and applying); ``_drain_lock`` keeps
        # drains one at a time, so a flush writes only its own drain's states. Offers
        # go on while a drain waits for Kafka, and the next drain takes them together.
        self._lock = asyncio.Lock()
        self._drain_lock = asyncio.Lock()
        self._work = asyncio.Event()
        self._active_at = monotonic()
        self.applied = 0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.domain_topics, self.ticks_topic)

    async def offer(self, record: InputRecord, handle: Any) -> Offered:
        """Queue a consumed record; one applied before is acknowledged at once."""
        async with self._lock:
            self._active_at = self.monotonic()
            sequencer = await self._sequencer(record.partition)
            item = Pending(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                timestamp=record.timestamp,
                offered_at=self.monotonic(),
                record=record,
                handle=handle,
            )
            if record.topic == self.ticks_topic:
                try:
                    item.tick = parse_tick(record.value)
                except InvalidTick as error:
                    item.tick_error = str(error)
            next_offset = sequencer.progress.next_offsets.get(record.topic, 0)
            if sequencer.offer(item):
                return Offered.QUEUED
            if record.offset < next_offset:
                await self.ack(handle)
                return Offered.APPLIED_BEFORE
            return Offered.ALREADY_QUEUED

    async def drain(self) -> int:
        """Apply what may go on every partition; return how many inputs were applied."""
        async with self._drain_lock:
            async with self._lock:
                deliveries, handles = await self._apply_ready()
            if not handles:
                return 0

            # Kafka must hold every output before the state implying them is written.
            await asyncio.gather(*deliveries)
            self.states.flush()
            for handle in handles:
                await self.ack(handle)
            self.applied += len(handles)
            self._active_at = self.monotonic()
            return len(handles)

    def wake(self) -> None:
        """Tell ``run`` there may be something to apply."""
        self._work.set()

    async def run(self) -> None:
        """Drain whenever woken, until cancelled: the worker's one drainer task."""
        while True:
            await self._work.wait()
            self._work.clear()
            await self.drain()

    async def forget(self) -> None:
        """Drop what is held in memory (on a rebalance): it will come again."""
        async with self._drain_lock, self._lock:
            self._sequencers.clear()
            self.states.forget()

    def waiting(self) -> int:
        return sum(s.pending() for s in self._sequencers.values())

    # Inside -------------------------------------------------------------------------

    async def _sequencer(self, partition: int) -> PartitionSequencer:
        sequencer = self._sequencers.get(partition)
        if sequencer is None:
            progress = self.states.load_progress(partition)
            if progress is None:
                starts = await self.offsets.start_offsets(self.inputs, partition)
                progress = Progress(partition=partition, next_offsets=dict(starts))
            sequencer = PartitionSequencer(
                progress,
                domain_topics=self.domain_topics,
                ticks_topic=self.ticks_topic,
                max_wait_s=self.max_wait_s,
            )
            self._sequencers[partition] = sequencer
        return sequencer

    async def _apply_ready(self) -> tuple[list[Awaitable[Any]], list[Any]]:
        deliveries: list[Awaitable[Any]] = []
        handles: list[Any] = []
        for sequencer in list(self._sequencers.values()):
            applied = await self._drain_partition(sequencer, deliveries, handles)
            if applied:
                self.states.save_progress(sequencer.progress)
        return deliveries, handles

    async def _drain_partition(
        self,
        sequencer: PartitionSequencer,
        deliveries: list[Awaitable[Any]],
        handles: list[Any],
    ) -> int:
        applied = 0
        asked: set[tuple[object, str | None]] = set()
        while True:
            now = self.monotonic()
            step = sequencer.next(now, idle_s=now - self._active_at)
            if step is None:
                return applied
            if isinstance(step, Blocked):
                if step.need is None or step.topic is None:
                    return applied
                question = (step.need, step.topic)
                if question in asked:
                    return applied
                asked.add(question)
                end = await self.offsets.end_offset(step.topic, sequencer.partition)
                sequencer.observe_end(step.topic, end, self.monotonic())
                continue
            for publication in self.processor.handle(step, sequencer.progress):
                deliveries.append(await self.publisher.publish(publication))
            handles.append(step.handle)
            applied += 1
            asked.clear()
