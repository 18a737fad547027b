"""The benchmark harness runs, at toy size, and measures what it says it measures.

The history is checked against the figures it is shaped on and the published event
contract; the in-process replay against the history it reads; the load generator
against a loopback server of the test's own, which counts what it received. The last
test runs ``python -m devstack.bench --tiny`` whole: its own Kafka broker, the
platform, every step, and the JSON and document it writes. No figure is asserted to
be fast or slow: only that each was measured.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deadlines.domain.engine import alert_day
from devstack.bench import cli
from devstack.bench.e2e import received_at_for_alert_today
from devstack.bench.history import (
    HistorySpec,
    ensure_history,
    figures_for,
    read_history,
)
from devstack.bench.loadgen import Target, find_max_rate, open_loop
from devstack.bench.replay import replay
from devstack.demo_data import generate_caseload
from send_schemas import intake, plans, reviews
from sendkit.calendar import london_date

SPEC = HistorySpec("county", scale=0.02, seed=7)

# The history --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    return ensure_history(SPEC, tmp_path_factory.mktemp("history"))


def test_the_history_has_the_caseload_and_requests_of_the_figures(
    history: tuple[Path, Any],
) -> None:
    _path, summary = history
    figures = figures_for(SPEC)
    assert figures.reviews is not None

    assert summary.existing_plans == round(figures.reviews.plans * SPEC.scale)
    planned = generate_caseload(figures, SPEC.year, SPEC.scale, SPEC.seed)
    assert summary.new_requests == len(planned)
    by_type = summary.by_type
    assert by_type[intake.RequestReceived.EVENT_TYPE] == len(planned)
    assert by_type[intake.CoordinatorAssigned.EVENT_TYPE] == len(planned)
    agreed = sum(case.outcome == "agreed" for case in planned)
    assert by_type[intake.AssessmentAgreed.EVENT_TYPE] == agreed
    assert by_type[plans.AdviceRequested.EVENT_TYPE] == 3 * agreed
    # Every plan at the start is issued once, and so is every new plan.
    assert (
        by_type[plans.PlanIssued.EVENT_TYPE]
        == summary.existing_plans + (by_type[plans.DraftPlanIssued.EVENT_TYPE])
    )
    held = by_type[reviews.ReviewHeld.EVENT_TYPE]
    assert 0 < held <= summary.existing_plans
    assert by_type[reviews.ReviewDecided.EVENT_TYPE] == held
    assert summary.events == sum(by_type.values())


def test_the_history_is_in_time_order_with_a_round_of_ticks_every_day(
    history: tuple[Path, Any],
) -> None:
    path, summary = history
    lines = list(read_history(path))

    stamps = [line.recorded_us for line in lines]
    assert stamps == sorted(stamps)
    ticks = [line for line in lines if line.is_tick]
    assert len(ticks) == summary.ticks
    days = [london_date(line.recorded_at) for line in ticks]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))
    assert len(lines) - len(ticks) == summary.events
    assert len({line.event_id for line in lines if not line.is_tick}) == summary.events


def test_every_event_of_the_history_keeps_the_published_contract(
    history: tuple[Path, Any],
) -> None:
    path, _summary = history
    parsers = {
        "i": intake.parse_intake_event,
        "p": plans.parse_plans_event,
        "r": reviews.parse_reviews_event,
    }
    checked: Counter[str] = Counter()

    for line in read_history(path):
        if line.is_tick:
            continue
        model = parsers[line.kind](line.event_type, line.data())
        assert model.case_id == line.case_id
        checked[line.kind] += 1

    assert set(checked) == {"i", "p", "r"}


# The in-process replay ----------------------------------------------------------------


def test_the_replay_applies_every_event_and_tick_of_the_history(
    history: tuple[Path, Any],
) -> None:
    path, summary = history

    result = replay(path)

    assert result.events == summary.events
    assert result.tick_rounds == summary.ticks
    assert result.cases == summary.cases
    assert result.unusable == 0
    outputs = result.to_json()["outputs_by_type"]
    # Every case gets clocks; the year's reviews meet or miss theirs; ticks alert.
    assert outputs["send.deadlines.ClockSet.v1"] >= summary.cases
    assert outputs["send.deadlines.ClockMet.v1"] > 0
    assert outputs["send.deadlines.ClockApproaching.v1"] > 0
    assert result.peak_rss_mib is not None
    assert result.peak_rss_mib > 0


def test_the_end_to_end_request_is_due_its_first_alert_today() -> None:
    now = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)

    received = received_at_for_alert_today(now)

    due = london_date(received) + timedelta(weeks=6)
    today = london_date(now)
    assert alert_day(due, 10) <= today < alert_day(due, 5)
    assert received < now


# The load generator -------------------------------------------------------------------


class _Server:
    """A loopback HTTP/1.1 server that answers 201 and counts the bodies it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                self.bodies.append(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._answer, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> _Server:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as running:
        yield running


def _target(port: int) -> Target:
    return Target(
        host="127.0.0.1",
        port=port,
        method="POST",
        path="/cases",
        body=lambda index: json.dumps({"n": index}).encode(),
    )


def test_open_loop_sends_every_scheduled_request_once(server: _Server) -> None:
    result = open_loop(_target(server.port), rate=40.0, duration_s=0.5, first_index=7)

    assert result.scheduled == 20
    assert result.succeeded == 20
    assert result.failed == 0
    assert len(result.latencies_ms) == 20
    assert sorted(json.loads(b)["n"] for b in server.bodies) == list(range(7, 27))
    assert result.to_json()["latency_ms"]["count"] == 20


def test_a_server_that_is_not_there_fails_every_request() -> None:
    from devstack.kafka_config import free_port

    result = open_loop(_target(free_port()), rate=20.0, duration_s=0.25)

    assert result.succeeded == 0
    assert result.failed == result.scheduled == 5
    assert sum(result.errors.values()) == 5


def test_the_ramp_climbs_while_steps_pass_and_stops_at_one_that_fails(
    server: _Server,
) -> None:
    ramp = find_max_rate(
        _target(server.port),
        [10.0, 20.0],
        limit_ms=60_000.0,
        minimum_s=0.2,
        samples=2,
    )

    assert ramp.max_rate == 20.0
    assert [step.rate for step in ramp.steps] == [10.0, 20.0]

    nobody = find_max_rate(
        _target(server.port), [10.0, 20.0], limit_ms=-1.0, minimum_s=0.2, samples=2
    )
    assert nobody.max_rate is None
    assert len(nobody.steps) == 1


# The whole harness, tiny --------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.timeout(1200)
def test_make_bench_runs_every_step_at_toy_size(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "performance.md"
    results_dir = tmp_path / "bench" / "results"
    lines: list[str] = []

    class Out:
        def write(self, text: str) -> int:
            lines.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    status = cli.main(
        [
            "--tiny",
            "--results-dir",
            str(results_dir),
            "--doc",
            str(doc),
            "--run-dir",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        out=Out(),  # type: ignore[arg-type]
    )

    assert status == 0, "".join(lines)
    (written,) = results_dir.glob("*.json")
    results = json.loads(written.read_text())
    for section in (
        "throughput",
        "end_to_end",
        "intake_latency",
        "memory",
        "replay_county",
        "replay_national",
        "targets",
    ):
        assert section in results, section
    run = results["throughput"]["runs"][0]
    assert run["worker"]["inputs"] == results["throughput"]["topic"]["records"]
    assert run["bare"]["records"] == run["tool"]["records"] == run["worker"]["inputs"]
    e2e = results["end_to_end"]["runs"][0]
    assert e2e["clock_events_seen"] == e2e["emails_seen"] == e2e["requests"]
    assert results["intake_latency"]["steady"]["runs"][0]["failed"] == 0
    memory = results["memory"]["processes"]
    assert set(memory) >= {"intake-api", "deadlines-worker", "notify-worker"}
    assert all(value and value["rss_mib"] > 0 for value in memory.values())
    text = doc.read_text()
    assert "### Targets" in text
    assert written.name in text
    # Every process the run started is gone.
    for value in memory.values():
        assert not Path(f"/proc/{value['pid']}").exists()
