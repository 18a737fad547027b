"""The processor's loop body: order the inputs, apply them, make the results durable.

``offer`` takes each consumed record with the handle that acknowledges it; ``drain``
applies every input whose turn has come (``PartitionSequencer``) and hands what it
made to the settler, one background task (``_settle``) that makes the drains'
results durable in the order drained: it publishes the clock events and dead letters
of every drain since its last round together (``BatchPublisher.publish_many`` where
the publisher offers it: a batch per topic partition), waits until Kafka has
acknowledged them, then writes the case states and partition progress
(``CaseStates.write`` of what ``take`` set aside at each drain, a case saved by
several drains once) and waits until Kafka has acknowledged those writes too, and
only then acknowledges the inputs and commits each partition's progress as its
consumer offsets (``commit``, in the background and one commit at a time).
``settled`` waits for all of it and raises what failed, as the next drain does. So a
crash at any point leaves the committed offsets at or behind the saved progress, and
the saved progress at or behind what has been published: what was not saved is
consumed again and applied again, with the same output ids, and nothing is skipped.

The worker runs one drainer task (``run``) that drains whenever it is woken, a
moment (``linger_s``) after, so that the agent can offer what else it has. Its drains
do not wait for the settler, so applying inputs overlaps the round trips of those
before them, and the settler's rounds take more inputs the more there are: a replay
needs two round trips per settler round, not per drain or per record. A drain waits
only while more than ``max_unsettled`` inputs are applied but not durable; a topic
partition with more than ``max_queued`` records held for their turn is paused.

A topic partition's records must be applied in offset order, none left out. One
that jumps ahead of the offset expected next means the consumer skipped records
(faust drops records it had fetched when its flow is suspended for a rebalance or a
table recovery, and goes on from after them without seeking back): the missing
records are read from the broker (``Refill.read``) and queued first, with no handle.
Offsets that hold no record (a real gap in the log) are passed over. Without a
``refill`` port, as in unit tests of the ordering, a jump is taken as a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from deadlines.application.ports import (
    BatchPublisher,
    CaseStates,
    InputRecord,
    Offsets,
    Publication,
    Publisher,
)
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
Commit = Callable[[Mapping[tuple[str, int], int]], Awaitable[object]]
"""Commits consumer offsets: ``{(topic, partition): offset of the next record}``."""


class Flow(Protocol):
    """Stops and restarts the consumer's fetching of topic partitions, losing nothing:
    a paused topic partition's next record is the one after the last delivered."""

    async def pause(self, topic: str, partition: int) -> None: ...
    async def resume(self, topic: str, partition: int) -> None: ...


class Refill(Protocol):
    """Reads the records of a topic partition the consumer skipped."""

    async def read(
        self, topic: str, partition: int, start: int, stop: int
    ) -> Sequence[InputRecord]:
        """The records with offsets from ``start`` up to, not including, ``stop``."""
        ...


DEFAULT_LINGER_S = 0.02
"""How long ``run`` lets records be offered, once woken, before it drains."""

DEFAULT_SETTLE_LINGER_S = 0.05
"""How long the settler lets drains join a round before it publishes."""

DEFAULT_COMMIT_INTERVAL_S = 0.5
"""The least time between two commits of offsets."""

DEFAULT_MAX_QUEUED = 600
"""Records of one topic partition held for their turn past which it is paused."""

DEFAULT_MAX_UNSETTLED = 20_000

DEFAULT_STALE_S = 5.0
"""How long a topic partition the broker has more of may deliver nothing before the
missing records are read from the broker directly."""
"""Inputs applied but not yet durable past which a drain waits for the settler."""


@dataclass(slots=True)
class _Unsettled:
    """A drain's results on their way to being durable."""

    publications: list[Publication]
    writes: Mapping[bytes, Any]
    handles: list[Any]
    offsets: dict[tuple[str, int], int]


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
        commit: Commit | None = None,
        refill: Refill | None = None,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        max_unsettled: int = DEFAULT_MAX_UNSETTLED,
        stale_s: float = DEFAULT_STALE_S,
        flow: Flow | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED,
        linger_s: float = DEFAULT_LINGER_S,
        settle_linger_s: float = DEFAULT_SETTLE_LINGER_S,
        commit_interval_s: float = DEFAULT_COMMIT_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.states = states
        self.processor = processor
        self.offsets = offsets
        self.publisher = publisher
        self.ack = ack
        self.commit = commit
        self.refill = refill
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
        self.max_unsettled = max_unsettled
        self.stale_s = stale_s
        self.flow = flow
        self.max_queued = max_queued
        self._paused: set[tuple[str, int]] = set()
        self._arrived: dict[tuple[str, int], float] = {}
        self._started_at = monotonic()
        self.linger_s = linger_s
        self.settle_linger_s = settle_linger_s
        self.commit_interval_s = commit_interval_s
        self._hurry = asyncio.Event()
        self._unsettled: deque[_Unsettled] = deque()
        self._unsettled_inputs = 0
        self._settling: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._to_commit: dict[tuple[str, int], int] = {}
        self._committing: asyncio.Task[None] | None = None
        self.applied = 0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.domain_topics, self.ticks_topic)

    async def offer(self, record: InputRecord, handle: Any) -> Offered:
        """Queue a consumed record; one applied before is acknowledged at once.

        A topic partition with more than ``max_queued`` records held for their turn
        is paused (``Flow``) until the drains have applied half of them, so a
        consumer that reads some topics far ahead of the others, as on a replay,
        holds a bounded number of records (what it had fetched before the pause
        still comes). That cannot stall the inputs: a paused topic partition's next
        record is among those held, so the record every other waits for is either
        held or on a topic partition still read.
        """
        tp = (record.topic, record.partition)
        async with self._lock:
            self._active_at = self._arrived[tp] = self.monotonic()
            sequencer = await self._sequencer(record.partition)
            expected = sequencer.expected(record.topic)
            if record.offset > expected and self.refill is not None:
                await self._refill(sequencer, record, expected)
            offered = await self._offer(sequencer, record, handle)
            pause = (
                self.flow is not None
                and tp not in self._paused
                and sequencer.queued(record.topic) > self.max_queued
            )
            if pause:
                self._paused.add(tp)
        if pause and self.flow is not None:
            log.info(
                "input paused: too many records wait for their turn",
                extra={"topic": tp[0], "partition": tp[1], "held": self.max_queued + 1},
            )
            await self.flow.pause(*tp)
        return offered

    async def drain(self, *, wait: bool = True) -> int:
        """Apply what may go on every partition; return how many inputs were applied.

        The drain publishes its outputs and hands its states, progress and inputs to
        the settler (``_settle``), which makes them durable in the order drained,
        and waits for it to finish (the offsets' commit goes on in the background).
        With ``wait=False``, as ``run`` drains, it returns once the outputs are
        handed to the producer, unless more than ``max_unsettled`` inputs are
        applied but not yet durable.
        """
        applied = await self._drain()
        if wait:
            self._hurry.set()
            try:
                while (task := self._settling) is not None and not task.done():
                    await asyncio.wait({task})
            finally:
                self._hurry.clear()
            self._raise_failed()
        return applied

    async def _drain(self) -> int:
        async with self._drain_lock:
            self._raise_failed()
            async with self._lock:
                publications, handles, offsets = await self._apply_ready()
                if not handles and self.refill is not None:
                    await self._refill_stale()
                resume = {
                    (topic, partition)
                    for topic, partition in self._paused
                    if self.queued(topic, partition) <= self.max_queued // 2
                }
                self._paused -= resume
                for tp in resume:  # quiet while paused, not for want of records
                    self._arrived[tp] = self.monotonic()
            if self.flow is not None:
                for tp in sorted(resume):
                    log.info(
                        "input resumed",
                        extra={"topic": tp[0], "partition": tp[1]},
                    )
                    await self.flow.resume(*tp)
            if not handles:
                return 0
            self._unsettled.append(
                _Unsettled(publications, self.states.take(), handles, offsets)
            )
            self._unsettled_inputs += len(handles)
            if self._settling is None or self._settling.done():
                self._settling = asyncio.ensure_future(self._settle())
            self.applied += len(handles)
            self._active_at = self.monotonic()
            while (
                self._unsettled_inputs > self.max_unsettled
                and not self._settling.done()
            ):
                self._room.clear()
                room = asyncio.ensure_future(self._room.wait())
                try:
                    await asyncio.wait(
                        {self._settling, room}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    room.cancel()
            return len(handles)

    async def settled(self) -> None:
        """Wait until everything drained so far is durable and its offsets committed
        (or raise what failed)."""
        self._hurry.set()
        try:
            while (task := self._settling) is not None and not task.done():
                await asyncio.wait({task})
            while (task := self._committing) is not None and not task.done():
                await asyncio.wait({task})
        finally:
            self._hurry.clear()
        self._raise_failed()

    def wake(self) -> None:
        """Tell ``run`` there may be something to apply."""
        self._work.set()

    async def run(self) -> None:
        """Drain whenever woken, until cancelled: the worker's one drainer task."""
        while True:
            await self._work.wait()
            # Let the agent offer what else it has first: a drain has costs of its
            # own (questions to the broker about end offsets), worth sharing.
            await asyncio.sleep(self.linger_s)
            self._work.clear()
            await self.drain(wait=False)

    async def forget(self) -> None:
        """Drop what is held in memory (on a rebalance): it will come again."""
        async with self._drain_lock:
            try:
                await self.settled()
            except Exception:
                log.exception("a commit failed before the rebalance: inputs come again")
            async with self._lock:
                self._sequencers.clear()
                self._unsettled.clear()
                self._unsettled_inputs = 0
                self.states.forget()
                paused, self._paused = self._paused, set()
            if self.flow is not None:
                for tp in sorted(paused):
                    await self.flow.resume(*tp)

    def waiting(self) -> int:
        return sum(s.pending() for s in self._sequencers.values())

    def paused(self) -> set[tuple[str, int]]:
        """The topic partitions paused for holding too many records."""
        return set(self._paused)

    def queued(self, topic: str, partition: int) -> int:
        """How many records of one topic partition are held for their turn."""
        sequencer = self._sequencers.get(partition)
        return 0 if sequencer is None else sequencer.queued(topic)

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

    def _commit_soon(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if self.commit is None:
            return
        self._to_commit.update(offsets)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit_all())

    async def _commit_all(self) -> None:
        assert self.commit is not None
        while self._to_commit:
            batch, self._to_commit = self._to_commit, {}
            await self.commit(batch)
            # At most one commit per interval: a commit is a round trip of its own,
            # and the next round's offsets supersede this one's. ``settled`` cuts
            # the pause short.
            await self._pause(self.commit_interval_s)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less once someone waits for ``settled``."""
        if seconds > 0 and not self._hurry.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), seconds)

    def _raise_failed(self) -> None:
        for name in ("_settling", "_committing"):
            task: asyncio.Task[None] | None = getattr(self, name)
            if task is not None and task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    setattr(self, name, None)
                    raise error

    async def _settle(self) -> None:
        # Kafka must hold every output before the state implying them is written,
        # and hold the state before an offset past its inputs is committed. What
        # was drained meanwhile is taken together: its outputs are sent in one go,
        # and a case written by several drains is written once.
        while self._unsettled:
            # A moment for more drains to join the round, unless someone waits.
            await self._pause(self.settle_linger_s)
            batches = list(self._unsettled)
            self._unsettled.clear()
            publications = [p for batch in batches for p in batch.publications]
            await asyncio.gather(*await self._publish(publications))
            writes: dict[bytes, Any] = {}
            offsets: dict[tuple[str, int], int] = {}
            for batch in batches:
                writes.update(batch.writes)
                offsets.update(batch.offsets)
            await asyncio.gather(*self.states.write(writes))
            for batch in batches:
                for handle in batch.handles:
                    if handle is not None:
                        await self.ack(handle)
                self._unsettled_inputs -= len(batch.handles)
            self._commit_soon(offsets)
            self._room.set()

    async def _offer(
        self, sequencer: PartitionSequencer, record: InputRecord, handle: Any
    ) -> Offered:
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
        if record.offset < next_offset and handle is not None:
            await self.ack(handle)
            return Offered.APPLIED_BEFORE
        return Offered.ALREADY_QUEUED

    async def _refill(
        self, sequencer: PartitionSequencer, record: InputRecord, expected: int
    ) -> None:
        assert self.refill is not None
        missing = await self.refill.read(
            record.topic, record.partition, expected, record.offset
        )
        log.warning(
            "the consumer skipped input records: read them from the broker",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "expected": expected,
                "offset": record.offset,
                "found": len(missing),
            },
        )
        for found in missing:
            await self._offer(sequencer, found, None)

    async def _refill_stale(self) -> None:
        """Read from the broker what a topic partition holds but never delivered.

        A consumer can pass over records it had fetched (faust drops them when its
        flow is suspended for a rebalance or a table recovery) and go on from after
        them. A record that arrives later shows the
        jump (``offer``), but at the end of a topic none may ever arrive: an input
        would wait for ever on records the broker holds. So when the drains are
        stuck and a topic partition whose known end is past what was offered has
        delivered nothing for ``stale_s``, its missing records are read directly.
        A record read so and delivered again later is passed over as a repeat.
        """
        assert self.refill is not None
        now = self.monotonic()
        for sequencer in list(self._sequencers.values()):
            for topic in self.inputs:
                tp = (topic, sequencer.partition)
                end = sequencer.known_end(topic)
                expected = sequencer.expected(topic)
                if end is None or end <= expected or tp in self._paused:
                    continue
                if now - self._arrived.get(tp, self._started_at) < self.stale_s:
                    continue
                missing = await self.refill.read(
                    topic, sequencer.partition, expected, end
                )
                log.warning(
                    "the consumer delivered nothing of records the broker holds: "
                    "read them from the broker",
                    extra={
                        "topic": topic,
                        "partition": sequencer.partition,
                        "expected": expected,
                        "end": end,
                        "found": len(missing),
                    },
                )
                self._arrived[tp] = now
                for found in missing:
                    await self._offer(sequencer, found, None)

    async def _apply_ready(
        self,
    ) -> tuple[list[Publication], list[Any], dict[tuple[str, int], int]]:
        publications: list[Publication] = []
        handles: list[Any] = []
        offsets: dict[tuple[str, int], int] = {}
        for sequencer in list(self._sequencers.values()):
            applied = await self._drain_partition(sequencer, publications, handles)
            if applied:
                self.states.save_progress(sequencer.progress)
                for topic, offset in sequencer.progress.next_offsets.items():
                    offsets[(topic, sequencer.partition)] = offset
        return publications, handles, offsets

    async def _publish(self, publications: list[Publication]) -> list[Awaitable[Any]]:
        # The whole drain's records at once: a batch per topic partition and one
        # acknowledgement to wait for, rather than one per record.
        if not publications:
            return []
        if isinstance(self.publisher, BatchPublisher):
            return [await self.publisher.publish_many(publications)]
        return [await self.publisher.publish(p) for p in publications]

    async def _drain_partition(
        self,
        sequencer: PartitionSequencer,
        publications: list[Publication],
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
            publications.extend(self.processor.handle(step, sequencer.progress))
            handles.append(step.handle)
            applied += 1
            asked.clear()
