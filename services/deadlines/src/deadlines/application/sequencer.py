"""One partition's inputs put in an order that a replay from offset 0 repeats.

The processor reads five domain topics and the tick topic, all partitioned by case id.
Kafka keeps order within a topic partition but says nothing about the order between
topics, and a consumer starting from offset 0 is handed them in whatever interleaving
its fetches produce. A clock's history depends on whether a decision was applied before
or after the tick that made it overdue, so the processor fixes that order itself, from
data that is in the log:

- a tick carries a barrier (``Tick.after``): the domain topics' end offsets on its
  partition when it was sent. The barriers are made monotonic (each tick's effective
  barrier is the largest seen so far), so they cut every domain topic into epochs;
- a tick is applied once every domain event below its barrier has been applied;
- a domain event is applied once every tick whose barrier does not exceed the event's
  offset has been applied. When no tick is waiting, that means the tick partition must
  be caught up: its end offset, read after the event arrived, must not be ahead of the
  ticks applied. The caller reads end offsets from the broker when ``next`` asks;
- among the domain events that may go, the oldest record timestamp goes first.

Known limits, in full: ordering between two domain topics inside one epoch follows
record timestamps among what has arrived, so a replay may apply, say, a plan event and
an intake event of the same case between the same two ticks in the other order; the
engine derives clocks from the facts' own dates, so the clocks and output ids are the
same, but the order of their outputs may differ. A tick whose barrier was read just
before an event was appended, and that is itself appended after the processor has
already read the tick partition's end for that event, is applied after the event the
first time and before it on a replay; the window is the ticker's time between reading
offsets and sending, a few milliseconds. A tick whose barrier can never be reached (a
topic recreated under it) is clamped to the topic's end, and an input kept waiting
longer than ``max_wait_s``, while nothing else arrives, is let through; both are logged
as warnings, because either may make a replay differ.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from deadlines.application.ticks import Tick

log = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_S = 30.0


@dataclass(slots=True)
class Progress:
    """How far one partition's inputs have been applied; kept with the case states.

    ``next_offsets`` holds, per input topic, the offset of the next record to apply;
    ``barrier`` the effective barrier of the last tick applied; ``now`` the latest time
    a tick brought.
    """

    partition: int
    next_offsets: dict[str, int] = field(default_factory=dict)
    barrier: dict[str, int] = field(default_factory=dict)
    now: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "next_offsets": dict(sorted(self.next_offsets.items())),
            "barrier": dict(sorted(self.barrier.items())),
            "now": None if self.now is None else self.now.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        now = data.get("now")
        return cls(
            partition=int(data["partition"]),
            next_offsets={str(k): int(v) for k, v in data["next_offsets"].items()},
            barrier={str(k): int(v) for k, v in data["barrier"].items()},
            now=None if now is None else datetime.fromisoformat(now),
        )


@dataclass(slots=True)
class Pending:
    """An input record waiting for its turn.

    ``tick`` is the parsed tick for a record of the tick topic (``None`` with
    ``tick_error`` set when it could not be read); ``handle`` is whatever the caller
    needs to acknowledge the record once its effects are durable.
    """

    topic: str
    partition: int
    offset: int
    timestamp: float
    offered_at: float
    record: Any = None
    handle: Any = None
    tick: Tick | None = None
    tick_error: str | None = None

    @property
    def is_tick(self) -> bool:
        return self.tick is not None or self.tick_error is not None


class Need(Enum):
    """What the caller must find out before the sequencer can say more."""

    TICKS_END = "ticks_end"
    DOMAIN_END = "domain_end"


@dataclass(frozen=True, slots=True)
class Blocked:
    """Nothing may go yet. With ``need``, an end offset of ``topic`` would help."""

    need: Need | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class _Seen:
    end: int
    at: float


class PartitionSequencer:
    """Decides, for one partition, which waiting input is applied next."""

    def __init__(
        self,
        progress: Progress,
        *,
        domain_topics: Sequence[str],
        ticks_topic: str,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
    ) -> None:
        self.progress = progress
        self.domain_topics = tuple(domain_topics)
        self.ticks_topic = ticks_topic
        self.max_wait_s = max_wait_s
        self._rank = {topic: index for index, topic in enumerate(self.domain_topics)}
        self._queues: dict[str, deque[Pending]] = {
            topic: deque() for topic in (*self.domain_topics, ticks_topic)
        }
        self._ends: dict[str, _Seen] = {}
        self._warned: set[tuple[str, int]] = set()

    @property
    def partition(self) -> int:
        return self.progress.partition

    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def queued(self, topic: str) -> int:
        """How many records of ``topic`` wait here for their turn."""
        return len(self._queues[topic])

    def known_end(self, topic: str) -> int | None:
        """The end offset of ``topic`` last read from the broker, if one was."""
        seen = self._ends.get(topic)
        return None if seen is None else seen.end

    def offer(self, item: Pending) -> bool:
        """Queue ``item``; ``False`` if it was applied before (a redelivery)."""
        if item.topic not in self._queues:
            raise ValueError(
                f"topic {item.topic!r} is not an input of this sequencer; inputs: "
                + ", ".join(self._queues)
            )
        queue = self._queues[item.topic]
        last = (
            queue[-1].offset
            if queue
            else self.progress.next_offsets.get(item.topic, 0) - 1
        )
        if item.offset <= last:
            return False
        queue.append(item)
        return True

    def expected(self, topic: str) -> int:
        """The offset of ``topic`` that would follow what was offered (or applied)."""
        queue = self._queues[topic]
        return queue[-1].offset + 1 if queue else self._next(topic)

    def observe_end(self, topic: str, end_offset: int, at: float) -> None:
        """Record a topic partition's end offset, as read from the broker at ``at``."""
        self._ends[topic] = _Seen(end_offset, at)

    def next(self, now: float, *, idle_s: float = 0.0) -> Pending | Blocked | None:
        """The input to apply now (its progress already counted), or why there is none.

        ``None`` means nothing is waiting. The caller applies a returned input before
        calling again. ``idle_s`` is how long no input has arrived and nothing has been
        applied: an input is let go out of turn only once it has waited ``max_wait_s``
        and the whole pipeline has been idle that long, so a slow replay, where what
        an input waits for is still on its way, never triggers it.
        """
        ticks = self._queues[self.ticks_topic]
        head_tick = ticks[0] if ticks else None
        barrier = self._barrier_of(head_tick) if head_tick is not None else None

        if head_tick is not None and barrier is not None:
            short = [
                topic
                for topic in self.domain_topics
                if self._reached(topic) < barrier[topic]
            ]
            if not short:
                return self._release_tick(head_tick, barrier)
            blockers = [t for t in short if not self._queues[t]]
        else:
            blockers = []

        ready = [
            queue[0]
            for topic, queue in self._queues.items()
            if topic != self.ticks_topic
            and queue
            and self._may_go(queue[0], barrier, head_tick is not None)
        ]
        if ready:
            item = min(
                ready, key=lambda i: (i.timestamp, self._rank[i.topic], i.offset)
            )
            return self._release_event(item)

        if not self.pending():
            return None

        # Something waits. Ask for what would decide it, then give up after a while.
        if head_tick is not None and blockers:
            for topic in blockers:
                seen = self._ends.get(topic)
                if seen is None or seen.at < head_tick.offered_at:
                    return Blocked(Need.DOMAIN_END, topic)
        elif head_tick is None:
            seen = self._ends.get(self.ticks_topic)
            oldest = min(
                queue[0].offered_at for queue in self._queues.values() if queue
            )
            if seen is None or seen.at < oldest:
                return Blocked(Need.TICKS_END, self.ticks_topic)
        if idle_s < self.max_wait_s:
            return Blocked()
        return self._overdue_release(now, barrier) or Blocked()

    # Rules ------------------------------------------------------------------------

    def _next(self, topic: str) -> int:
        return self.progress.next_offsets.get(topic, 0)

    def _reached(self, topic: str) -> int:
        # The pipeline offers a topic's records in offset order and checks any jump
        # with the broker first (``Pipeline.offer``), so offsets skipped below a
        # queued record are known not to exist (a gap in the log).
        queue = self._queues[topic]
        return max(self._next(topic), queue[0].offset) if queue else self._next(topic)

    def _barrier_of(self, tick: Pending) -> dict[str, int]:
        after = tick.tick.after if tick.tick is not None else {}
        barrier = {}
        for topic in self.domain_topics:
            wanted = max(self.progress.barrier.get(topic, 0), after.get(topic, 0))
            seen = self._ends.get(topic)
            if (
                seen is not None
                and seen.at >= tick.offered_at
                and seen.end < wanted
                and seen.end <= self._next(topic)
            ):
                if (topic, tick.offset) not in self._warned:
                    self._warned.add((topic, tick.offset))
                    log.warning(
                        "tick barrier beyond the end of its topic: clamped",
                        extra={
                            "topic": topic,
                            "partition": self.partition,
                            "barrier": wanted,
                            "end_offset": seen.end,
                            "tick_offset": tick.offset,
                        },
                    )
                wanted = seen.end
            barrier[topic] = wanted
        return barrier

    def _may_go(
        self, item: Pending, barrier: Mapping[str, int] | None, tick_waiting: bool
    ) -> bool:
        if tick_waiting and barrier is not None:
            return item.offset < barrier[item.topic]
        seen = self._ends.get(self.ticks_topic)
        return (
            seen is not None
            and seen.at >= item.offered_at
            and self._next(self.ticks_topic) >= seen.end
        )

    def _release_tick(self, item: Pending, barrier: Mapping[str, int]) -> Pending:
        self._queues[self.ticks_topic].popleft()
        self.progress.barrier = dict(barrier)
        self.progress.next_offsets[self.ticks_topic] = item.offset + 1
        if item.tick is not None and (
            self.progress.now is None or item.tick.now > self.progress.now
        ):
            self.progress.now = item.tick.now
        return item

    def _release_event(self, item: Pending) -> Pending:
        self._queues[item.topic].popleft()
        self.progress.next_offsets[item.topic] = item.offset + 1
        return item

    def _overdue_release(
        self, now: float, barrier: Mapping[str, int] | None
    ) -> Pending | None:
        heads = [queue[0] for queue in self._queues.values() if queue]
        oldest = min(heads, key=lambda i: i.offered_at)
        if now - oldest.offered_at < self.max_wait_s:
            return None
        log.warning(
            "input waited too long for its turn: applied out of replay order",
            extra={
                "topic": oldest.topic,
                "partition": oldest.partition,
                "offset": oldest.offset,
                "waited_s": round(now - oldest.offered_at, 1),
            },
        )
        if oldest.is_tick:
            return self._release_tick(
                oldest, barrier if barrier is not None else self._barrier_of(oldest)
            )
        return self._release_event(oldest)
