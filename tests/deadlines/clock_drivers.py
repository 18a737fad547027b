"""One clock's story told to the engine or to the processor, with the same questions.

A driver plays steps (``deadlines_support.Step``: a day brings a round of ticks, a fact
is recorded on the latest day) and answers with what was published about one clock,
as ``(short type, id, JSON data)``: the engine's outputs, or the clock event records
the processor published (real CloudEvents records in, through the pipeline as the
worker runs it, ``test_processor_clocks.Harness``). So each lifecycle test is written
once and run against both, as the processor must publish what the engine decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Protocol

from deadlines_support import Case, Step, at, short
from test_processor_clocks import Harness, Log, case_id

from deadlines.domain.engine import CaseState, apply, tick
from deadlines.domain.evaluate import EngineConfig

Published = tuple[str, str, dict[str, Any]]
"""A clock event as (its short type, its id, its JSON data)."""

DRIVERS = ("engine", "processor")


class Driver(Protocol):
    async def play(self, steps: Iterable[Step]) -> list[Published]:
        """Play ``steps``; return what they published about the clock, in order."""
        ...


class EngineDriver:
    """``engine.apply`` and ``engine.tick`` on one case's state."""

    def __init__(self, clock_id: str, config: EngineConfig, today: date) -> None:
        self.clock_id = clock_id
        self.config = config
        self.today = today
        self.case = Case()
        self.state: CaseState | None = None

    async def play(self, steps: Iterable[Step]) -> list[Published]:
        published: list[Published] = []
        for step in steps:
            if isinstance(step, date):
                self.today = step
                if self.state is None:
                    continue
                self.state, outputs = tick(self.state, at(step, 8), self.config)
            else:
                event = self.case.event(*step, recorded_at=at(self.today, 10))
                self.state, outputs = apply(self.state, event, self.config)
            published += [
                (short(o), o.id, o.data())
                for o in outputs
                if o.fields["clock_id"] == self.clock_id
            ]
        return published


class ProcessorDriver:
    """The clock processor and its pipeline over an in-memory log and table."""

    def __init__(
        self, clock_id: str, config: EngineConfig, today: date, name: str
    ) -> None:
        self.clock_id = clock_id
        self.today = today
        self.harness = Harness(Log(), config)
        self.case = case_id(name)

    async def play(self, steps: Iterable[Step]) -> list[Published]:
        count = len(self.harness.outputs(self.case))
        self.today = await self.harness.play(self.case, steps, self.today)
        return [
            (event.name, event.id, event.data)
            for event in self.harness.outputs(self.case)[count:]
            if event.data["clock_id"] == self.clock_id
        ]


def driver(
    kind: str, clock_id: str, config: EngineConfig, today: date, name: str
) -> Driver:
    """The driver ``kind`` (one of ``DRIVERS``) for the clock ``clock_id``."""
    if kind == "engine":
        return EngineDriver(clock_id, config, today)
    return ProcessorDriver(clock_id, config, today, name)


def named(published: Iterable[Published], name: str) -> list[dict[str, Any]]:
    """The data of the published events of type ``name``."""
    return [data for kind, _, data in published if kind == name]


def the(published: Sequence[Published], name: str) -> tuple[str, dict[str, Any]]:
    """The id and data of the one published event of type ``name``."""
    found = [(event_id, data) for kind, event_id, data in published if kind == name]
    assert len(found) == 1, f"expected one {name}, got {[p[0] for p in published]}"
    return found[0]
