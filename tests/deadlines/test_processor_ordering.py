"""The order the processor applies one partition's inputs in: replayable, from the log.

A tick goes after the events below its barrier and before those at or above it; an
event with no tick waiting goes only once the tick partition is known to be caught up.
"""

from __future__ import annotations

from datetime import UTC, datetime

from deadlines.application.sequencer import (
    Blocked,
    Need,
    PartitionSequencer,
    Pending,
    Progress,
)
from deadlines.application.ticks import Tick

INTAKE = "send.intake.events"
PLANS = "send.plans.events"
TICKS = "send.clock.ticks"
NOW = datetime(2025, 2, 3, 9, tzinfo=UTC)


def sequencer(max_wait_s: float = 30.0) -> PartitionSequencer:
    return PartitionSequencer(
        Progress(partition=0, next_offsets={INTAKE: 0, PLANS: 0, TICKS: 0}),
        domain_topics=(INTAKE, PLANS),
        ticks_topic=TICKS,
        max_wait_s=max_wait_s,
    )


def event(
    topic: str, offset: int, *, at: float = 0.0, timestamp: float = 0.0
) -> Pending:
    return Pending(topic, 0, offset, timestamp=timestamp or offset, offered_at=at)


def tick(offset: int, after: dict[str, int], *, at: float = 0.0) -> Pending:
    return Pending(
        TICKS, 0, offset, timestamp=0.0, offered_at=at, tick=Tick(NOW, "t", after)
    )


def released(
    seq: PartitionSequencer, now: float = 1.0, idle_s: float = 0.0
) -> list[tuple[str, int]]:
    """Everything the sequencer lets go, in order, until it blocks or runs dry."""
    out = []
    while isinstance(step := seq.next(now, idle_s=idle_s), Pending):
        out.append((step.topic, step.offset))
    return out


def test_a_tick_waits_for_the_events_below_its_barrier() -> None:
    seq = sequencer()
    seq.offer(tick(0, {INTAKE: 2, PLANS: 0}))

    # Nothing of intake has arrived: the tick cannot go, and asks about intake's end.
    assert seq.next(1.0) == Blocked(Need.DOMAIN_END, INTAKE)
    seq.observe_end(INTAKE, 2, at=1.0)
    assert seq.next(1.0) == Blocked()

    seq.offer(event(INTAKE, 0))
    seq.offer(event(INTAKE, 1))
    seq.offer(event(INTAKE, 2))
    assert released(seq) == [(INTAKE, 0), (INTAKE, 1), (TICKS, 0)]
    # Offset 2 is at the barrier: after the tick, and now the tick partition is to be
    # checked before it goes.
    assert seq.next(1.0) == Blocked(Need.TICKS_END, TICKS)
    assert seq.progress.now == NOW
    assert seq.progress.barrier == {INTAKE: 2, PLANS: 0}


def test_an_event_at_the_barrier_waits_for_the_tick_even_when_it_arrives_first() -> (
    None
):
    seq = sequencer()
    seq.offer(event(INTAKE, 0))
    seq.offer(event(INTAKE, 1))

    # The tick partition has a tick the sequencer has not seen yet.
    assert seq.next(1.0) == Blocked(Need.TICKS_END, TICKS)
    seq.observe_end(TICKS, 1, at=1.0)
    assert seq.next(1.0) == Blocked()

    seq.offer(tick(0, {INTAKE: 1, PLANS: 0}))
    # Offset 1 goes after the tick; the tick partition's end seen above says no
    # other tick is to come.
    assert released(seq) == [(INTAKE, 0), (TICKS, 0), (INTAKE, 1)]


def test_an_event_goes_at_once_when_the_tick_partition_is_caught_up() -> None:
    seq = sequencer()
    seq.offer(event(PLANS, 0, at=0.5))
    seq.observe_end(TICKS, 0, at=1.0)

    assert released(seq) == [(PLANS, 0)]


def test_an_end_offset_read_before_the_event_arrived_is_not_trusted() -> None:
    seq = sequencer()
    seq.observe_end(TICKS, 0, at=1.0)
    seq.offer(event(INTAKE, 0, at=2.0))

    assert seq.next(2.0) == Blocked(Need.TICKS_END, TICKS)


def test_events_of_two_topics_in_one_epoch_go_oldest_record_first() -> None:
    seq = sequencer()
    seq.offer(event(INTAKE, 0, timestamp=30.0))
    seq.offer(event(PLANS, 0, timestamp=10.0))
    seq.offer(event(PLANS, 1, timestamp=40.0))
    seq.observe_end(TICKS, 0, at=1.0)

    assert released(seq) == [(PLANS, 0), (INTAKE, 0), (PLANS, 1)]


def test_barriers_only_grow_so_a_late_tick_with_a_smaller_one_cannot_go_back() -> None:
    seq = sequencer()
    for offset in range(3):
        seq.offer(event(INTAKE, offset))
    seq.offer(tick(0, {INTAKE: 2}))
    seq.offer(tick(1, {INTAKE: 1}))  # a second sender read its barrier earlier

    assert released(seq) == [(INTAKE, 0), (INTAKE, 1), (TICKS, 0), (TICKS, 1)]
    assert seq.progress.barrier[INTAKE] == 2


def test_offsets_missing_below_a_queued_record_do_not_hold_a_tick() -> None:
    seq = sequencer()
    seq.offer(event(INTAKE, 5))  # 0..4 are gone (retention, or never written)
    seq.offer(tick(0, {INTAKE: 3}))

    assert released(seq)[0] == (TICKS, 0)


def test_a_barrier_beyond_the_topic_end_is_clamped() -> None:
    seq = sequencer()
    seq.offer(tick(0, {INTAKE: 10}, at=0.5))
    assert seq.next(1.0) == Blocked(Need.DOMAIN_END, INTAKE)

    seq.observe_end(INTAKE, 0, at=1.0)  # the topic was recreated under the tick

    assert released(seq) == [(TICKS, 0)]
    assert seq.progress.barrier[INTAKE] == 0


def test_an_input_kept_waiting_too_long_while_nothing_arrives_is_let_go() -> None:
    seq = sequencer(max_wait_s=5.0)
    seq.offer(event(INTAKE, 0, at=0.0))
    seq.observe_end(TICKS, 3, at=1.0)  # ticks the sequencer is never handed

    assert seq.next(4.0, idle_s=4.0) == Blocked()
    # Long enough, but inputs were still arriving a moment ago: it keeps waiting.
    assert seq.next(6.0, idle_s=1.0) == Blocked()
    assert released(seq, now=6.0, idle_s=5.5) == [(INTAKE, 0)]


def test_a_record_applied_before_is_refused_and_a_queued_one_not_queued_twice() -> None:
    seq = PartitionSequencer(
        Progress(partition=0, next_offsets={INTAKE: 4, TICKS: 0}),
        domain_topics=(INTAKE,),
        ticks_topic=TICKS,
    )

    assert not seq.offer(event(INTAKE, 3))
    assert seq.offer(event(INTAKE, 4))
    assert not seq.offer(event(INTAKE, 4))
    assert seq.pending() == 1


def test_progress_survives_its_json_form() -> None:
    progress = Progress(
        partition=3, next_offsets={INTAKE: 7, TICKS: 2}, barrier={INTAKE: 5}, now=NOW
    )

    assert Progress.from_dict(progress.to_dict()) == progress
