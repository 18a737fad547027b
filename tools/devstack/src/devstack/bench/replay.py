"""Rebuilding every clock from the beginning, in-process: the engine over a history.

``replay(path)`` reads a history (``devstack.bench.history``) in order and does what
the deadlines processor does with each input, without Kafka: a domain event goes to
``engine.apply`` for its case with its partition's latest tick as "now", and a round of
ticks runs ``engine.tick`` for every case of every partition whose next wake-up day has
come, as ``ClockProcessor._tick`` does, keeping a state only when the engine returns a
new one. The processor finds those cases by passing over every case of the partition;
the replay keeps their wake-up days in a heap instead (``--pass-over-every-case`` does
as the processor does, to measure what that pass costs).
The outputs are counted, not serialised or published, so the figure is the cost of the
state rebuild itself; the faust worker's cost over Kafka is measured separately
(``devstack.bench.kafka_bench``).

Run it in a process of its own (``python -m devstack.bench.replay --history FILE``) so
its peak resident set (``VmHWM``) is the replay's alone; it prints one JSON object.
``--profile FILE`` runs it under cProfile and adds the functions that took the most
time to the JSON.

The garbage collector is tuned for a process whose state lives long, as a deadlines
worker's does (``tune_gc``): what was made before the replay is frozen out of the
collections and the youngest generation is collected after 100,000 allocations instead
of 700, so a collection no longer walks the states over and over. Over the county
that saves about a second of 13. ``--default-gc`` keeps Python's settings, to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import heapq
import json
import pstats
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from deadlines.application.partitioning import case_partition
from deadlines.domain import engine
from deadlines.domain.engine import CaseEvent, CaseState, Emitted, EngineConfig
from deadlines.domain.errors import DeadlinesError
from devstack.bench.history import read_history
from devstack.bench.machine import own_peak_rss_mib, own_rss_mib
from send_schemas.topics import PARTITIONS
from sendkit.calendar import london_date
from sendkit.envelope import parse_time


@dataclass(slots=True)
class ReplayResult:
    """What one replay did and what it cost.

    ``cpu_s`` is the process's CPU time over the replay, ``apply_s`` and ``tick_s``
    the CPU time of the calls to ``engine.apply`` and of the rounds of ticks (finding
    the cases due included), and ``wall_s`` the time on the clock, which on a shared
    machine also counts the time the replay waited for a core.
    """

    events: int = 0
    tick_rounds: int = 0
    cases: int = 0
    outputs: Counter[str] = field(default_factory=Counter)
    unusable: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    apply_s: float = 0.0
    tick_s: float = 0.0
    tick_calls: int = 0
    rss_start_mib: float | None = None
    rss_end_mib: float | None = None
    peak_rss_mib: float | None = None
    profile: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events_per_s(self) -> float | None:
        return self.events / self.wall_s if self.wall_s > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "tick_rounds": self.tick_rounds,
            "tick_calls": self.tick_calls,
            "cases": self.cases,
            "outputs": sum(self.outputs.values()),
            "outputs_by_type": dict(sorted(self.outputs.items())),
            "unusable_events": self.unusable,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "apply_s": round(self.apply_s, 3),
            "tick_s": round(self.tick_s, 3),
            "other_s": round(self.cpu_s - self.apply_s - self.tick_s, 3),
            "events_per_s": round(self.events_per_s, 1) if self.events_per_s else None,
            "apply_us_per_event": round(self.apply_s / self.events * 1e6, 1)
            if self.events
            else None,
            "tick_us_per_case": round(self.tick_s / self.tick_calls * 1e6, 2)
            if self.tick_calls
            else None,
            "rss_start_mib": _round(self.rss_start_mib),
            "rss_end_mib": _round(self.rss_end_mib),
            "peak_rss_mib": _round(self.peak_rss_mib),
            "peak_rss_above_start_mib": _round(
                None
                if self.peak_rss_mib is None or self.rss_start_mib is None
                else self.peak_rss_mib - self.rss_start_mib
            ),
            "profile": self.profile,
            "phases": self.phases,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _WakeIndex:
    """The cases of one partition by their next wake-up day, in a heap.

    A round of ticks pops the cases whose day has come instead of passing over every
    case of the partition, and ticks them in the order the cases were first seen, the
    order a pass over them would take. Every case with a wake-up day has an entry for
    that day; an entry left behind by a day that moved is dropped when it comes up.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[date, int, str]] = []
        self._position: dict[str, int] = {}

    def add(self, case_id: str, wake_on: date | None) -> None:
        if wake_on is None:
            return
        position = self._position.setdefault(case_id, len(self._position))
        heapq.heappush(self._heap, (wake_on, position, case_id))

    def due(self, today: date) -> list[str]:
        """The cases with an entry on or before ``today``, removed, first seen first."""
        found: dict[int, str] = {}
        heap = self._heap
        while heap and heap[0][0] <= today:
            _day, position, case_id = heapq.heappop(heap)
            found[position] = case_id
        return [found[position] for position in sorted(found)]


def replay(
    path: Path,
    *,
    config: EngineConfig = engine.DEFAULT_CONFIG,
    partitions: int = PARTITIONS,
    progress: Callable[[ReplayResult], None] | None = None,
    sink: Callable[[Sequence[Emitted]], None] | None = None,
    pass_over_every_case: bool = False,
) -> ReplayResult:
    """Apply every event and tick of the history at ``path``; return the costs.

    ``sink``, if given, is handed every step's outputs in the order they were made,
    so two versions of the engine can be compared output for output (its own cost is
    counted in the CPU time, so leave it out when measuring). A round of ticks finds
    the cases whose wake-up day has come in a heap of those days; with
    ``pass_over_every_case`` it looks at every case of each partition instead, as the
    processor does. Either way the same cases are ticked in the same order.
    """
    result = ReplayResult(rss_start_mib=own_rss_mib())
    states: dict[str, CaseState] = {}
    partition_of: dict[str, int] = {}
    by_partition: list[list[str]] = [[] for _ in range(partitions)]
    waking = [_WakeIndex() for _ in range(partitions)]
    now_of: list[datetime | None] = [None] * partitions
    clock, cpu = time.perf_counter, time.process_time
    counts = result.outputs
    started, cpu_started = clock(), _cpu_seconds()

    for line in read_history(path):
        if line.is_tick:
            now = parse_time(line.payload)
            began = cpu()
            today = london_date(now)
            for number in range(partitions):
                now_of[number] = now
                index = waking[number]
                candidates = (
                    by_partition[number] if pass_over_every_case else index.due(today)
                )
                for case_id in candidates:
                    state = states[case_id]
                    # As the processor does: a case whose next wake-up day has not
                    # come is passed over without a call.
                    if state.wake_on is None or today < state.wake_on:
                        continue
                    new, outputs = engine.tick(state, now, config)
                    result.tick_calls += 1
                    if not pass_over_every_case:
                        index.add(case_id, new.wake_on)
                    if new is not state:
                        states[case_id] = new
                        if outputs:
                            counts.update([output.type for output in outputs])
                            if sink is not None:
                                sink(outputs)
            result.tick_s += cpu() - began
            result.tick_rounds += 1
            if progress is not None and result.tick_rounds % 30 == 0:
                progress(result)
            continue

        case_id = line.case_id
        known = partition_of.get(case_id)
        if known is None:
            known = partition_of[case_id] = case_partition(case_id, partitions)
        number = known
        event = CaseEvent(
            line.event_id, line.event_type, case_id, line.data(), line.recorded_at
        )
        previous = states.get(case_id)
        began = cpu()
        try:
            new, outputs = engine.apply(previous, event, config, now=now_of[number])
        except DeadlinesError:
            # The processor dead-letters such an event; the history should have none.
            result.unusable += 1
            continue
        finally:
            result.apply_s += cpu() - began
        result.events += 1
        if previous is None:
            by_partition[number].append(case_id)
        if not pass_over_every_case and (
            previous is None or new.wake_on != previous.wake_on
        ):
            waking[number].add(case_id, new.wake_on)
        states[case_id] = new
        if outputs:
            counts.update([output.type for output in outputs])
            if sink is not None:
                sink(outputs)

    result.wall_s = clock() - started
    result.cpu_s = _cpu_seconds() - cpu_started
    result.cases = len(states)
    result.rss_end_mib = own_rss_mib()
    result.peak_rss_mib = own_peak_rss_mib()
    return result


GC_THRESHOLDS = (100_000, 50, 100)
"""The collector's thresholds for a long-lived state (Python's are 700, 10, 10)."""


def tune_gc() -> dict[str, Any]:
    """Freeze what exists now out of the collections and raise the thresholds.

    The engine makes few reference cycles, so collecting rarely frees little later
    than collecting often would; what it saves is the walks over every live state.
    Returns the settings, for the JSON.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return {"frozen": gc.get_freeze_count(), "thresholds": list(GC_THRESHOLDS)}


def top_functions(stats: pstats.Stats, limit: int = 20) -> list[dict[str, Any]]:
    """The functions with the most time of their own, from a cProfile run."""
    rows: list[dict[str, Any]] = []
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, own, cumulative, _) in table.items():
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 3),
                "cumulative_s": round(cumulative, 3),
            }
        )
    rows.sort(key=lambda row: row["own_s"], reverse=True)
    return rows[:limit]


ENGINE_PHASES = (
    ("deadlines/domain/engine.py", "apply", "engine.apply (whole)"),
    ("deadlines/domain/engine.py", "tick", "engine.tick (whole)"),
    ("deadlines/domain/evaluate.py", "derive", "derive every clock from the facts"),
    ("deadlines/domain/engine.py", "_reconcile", "compare with published clocks"),
    ("deadlines/domain/engine.py", "_alerts", "alerts time brings"),
    ("deadlines/domain/engine.py", "_wake_on", "next wake-up day"),
    ("deadlines/domain/engine.py", "own", "copies of the clocks a step changes"),
    ("deadlines/domain/engine.py", "output_id", "output ids (uuid5)"),
    ("deadlines/domain/engine.py", "base", "the fields every clock event carries"),
    ("sendkit/calendar.py", "working_days_before", "working-day arithmetic"),
    ("sendkit/calendar.py", "london_date", "London date of a moment"),
)
"""Functions whose cumulative time says where the replay's time goes."""


WORKER_PHASES = (
    ("deadlines/application/pipeline.py", "drain", "the pipeline's drains (all below)"),
    ("deadlines/application/processor.py", "handle", "the processor, per input"),
    ("deadlines/domain/engine.py", "apply", "engine.apply"),
    ("deadlines/domain/engine.py", "tick", "engine.tick"),
    ("sendkit/envelope.py", "from_kafka", "reading input envelopes"),
    ("deadlines/application/processor.py", "clock_record", "clock events as records"),
    ("deadlines/adapters/faust_ports.py", "publish", "handing outputs to the producer"),
    ("deadlines/adapters/table_states.py", "save", "case states to plain JSON"),
    ("deadlines/adapters/table_states.py", "flush", "writing states to the table"),
    ("faust/tables/base.py", "send_changelog", "changelog records of the table"),
    (
        "aiokafka/producer/sender.py",
        "_send_produce_req",
        "produce requests on the wire",
    ),
    ("selectors.py", "select", "waiting for the network (idle)"),
)
"""Functions whose cumulative time says where the deadlines worker's time goes."""


def phase_times(
    stats: pstats.Stats,
    phases: tuple[tuple[str, str, str], ...] = ENGINE_PHASES,
    *,
    total_of: str | None = "replay",
) -> list[dict[str, Any]]:
    """The cumulative time of each phase, and its share of the run.

    The share is of ``total_of``'s cumulative time, or of the whole profiled time
    (the profiled thread's own times summed) when ``total_of`` is None.
    """
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    if total_of is None:
        total = float(stats.total_tt)  # type: ignore[attr-defined]
    else:
        total = max(
            (row[3] for (_p, _l, name), row in table.items() if name == total_of),
            default=0.0,
        )
    found: list[dict[str, Any]] = []
    for suffix, name, meaning in phases:
        cumulative = sum(
            row[3]
            for (path, _line, function), row in table.items()
            if function == name and path.endswith(suffix)
        )
        found.append(
            {
                "function": f"{suffix}:{name}",
                "meaning": meaning,
                "cumulative_s": round(cumulative, 3),
                "share": round(cumulative / total, 3) if total else None,
            }
        )
    return found


def _short(filename: str) -> str:
    for marker in ("/src/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.bench.replay",
        description="Replay a history through the clock engine in-process; print JSON.",
    )
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="write every clock event made, in order, as JSON lines (id, type, "
        "subject, data) to compare two engines; adds its own cost to the times",
    )
    parser.add_argument(
        "--progress", action="store_true", help="report progress on stderr"
    )
    parser.add_argument(
        "--pass-over-every-case",
        action="store_true",
        help="find the cases a round of ticks wakes by looking at every case, as the "
        "processor does, instead of from a heap of wake-up days",
    )
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep Python's garbage collector settings instead of tune_gc's",
    )
    args = parser.parse_args(argv)
    gc_settings: dict[str, Any] = (
        {"thresholds": list(gc.get_threshold())} if args.default_gc else tune_gc()
    )

    def report(result: ReplayResult) -> None:
        print(
            f"replay: {result.events:,} events, {result.tick_rounds} tick rounds",
            file=sys.stderr,
            flush=True,
        )

    reporter = report if args.progress else None
    with contextlib.ExitStack() as stack:
        sink: Callable[[Sequence[Emitted]], None] | None = None
        if args.outputs is not None:
            out = stack.enter_context(args.outputs.open("w", encoding="utf-8"))

            def write(outputs: Sequence[Emitted]) -> None:
                for output in outputs:
                    out.write(json.dumps(output.to_dict(), sort_keys=True) + "\n")

            sink = write
        result = _run(args, reporter, sink)
    print(json.dumps({**result.to_json(), "gc": gc_settings}))
    return 0


def _run(
    args: argparse.Namespace,
    reporter: Callable[[ReplayResult], None] | None,
    sink: Callable[[Sequence[Emitted]], None] | None,
) -> ReplayResult:
    options: dict[str, Any] = {
        "progress": reporter,
        "sink": sink,
        "pass_over_every_case": args.pass_over_every_case,
    }
    if args.profile is None:
        return replay(args.history, **options)
    profiler = cProfile.Profile()
    result = profiler.runcall(replay, args.history, **options)
    profiler.dump_stats(str(args.profile))
    stats = pstats.Stats(str(args.profile))
    result.profile = top_functions(stats, args.top)
    result.phases = phase_times(stats)
    return result


if __name__ == "__main__":
    sys.exit(main())
