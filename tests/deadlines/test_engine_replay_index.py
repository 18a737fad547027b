"""The bench's in-process replay ticks the same cases in the same order either way.

``devstack.bench.replay`` finds the cases a round of ticks wakes from a heap of their
wake-up days; with ``pass_over_every_case`` it looks at every case, as the processor
does. Over a small synthetic county history both must make the very same clock events
in the very same order, or the replay's time would not be the processor's work.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from deadlines.domain.engine import Emitted
from devstack.bench.history import HistorySpec, ensure_history
from devstack.bench.replay import replay


@pytest.fixture(scope="module")
def small_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _summary = ensure_history(
        HistorySpec("county", scale=0.02, seed=11), tmp_path_factory.mktemp("history")
    )
    return path


def _outputs(path: Path, *, pass_over_every_case: bool) -> tuple[list[str], int]:
    made: list[str] = []

    def sink(outputs: Sequence[Emitted]) -> None:
        made.extend(json.dumps(o.to_dict(), sort_keys=True) for o in outputs)

    result = replay(path, sink=sink, pass_over_every_case=pass_over_every_case)
    return made, result.tick_calls


def test_the_heap_of_wake_up_days_ticks_as_the_pass_over_every_case(
    small_history: Path,
) -> None:
    from_heap, heap_calls = _outputs(small_history, pass_over_every_case=False)
    from_pass, pass_calls = _outputs(small_history, pass_over_every_case=True)

    assert from_heap == from_pass
    assert heap_calls == pass_calls
    kinds = {json.loads(line)["type"] for line in from_heap}
    # The rounds of ticks did raise alerts, so the order of ticks was compared.
    assert "send.deadlines.ClockApproaching.v1" in kinds
    assert "send.deadlines.ClockOverdue.v1" in kinds
