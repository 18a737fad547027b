"""An open-loop HTTP load generator on loopback, light enough to leave the CPU alone.

``open_loop(target, rate, duration)`` sends ``rate * duration`` requests at fixed
intervals, whatever the server's answers do: request ``i`` is due at ``start + i /
rate``, and its latency runs from that moment to the end of its answer, so time spent
waiting for a free connection (or for a slow event loop) counts, and a server that falls
behind shows it in the tail rather than by slowing the generator (no coordinated
omission). Connections are HTTP/1.1 keep-alive, opened as needed up to
``max_connections``; a request still unanswered ``drain_s`` after the last one was due
counts as unanswered and its latency as the time it had waited by then.

The client speaks only the HTTP it needs (a request line, headers, a
``Content-Length`` or chunked answer), because a full client library costs more CPU
per request than the service under test on a 2-core machine.

``find_max_rate`` steps the rate up a ladder and returns the highest rate whose p99
stayed within the limit with every request answered with success.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devstack.bench.stats import Summary, summarize

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_DRAIN_S = 10.0
CONNECT_TIMEOUT_S = 5.0


class LoadError(RuntimeError):
    """The load generator cannot run as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go and what each one is: ``body(i)`` gives request i's body."""

    host: str
    port: int
    method: str
    path: str
    body: Callable[[int], bytes]
    headers: tuple[tuple[str, str], ...] = ()

    def request_bytes(self, index: int) -> bytes:
        body = self.body(index)
        lines = [
            f"{self.method} {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


@dataclass(slots=True)
class LoadResult:
    """One run at one rate: what was sent, answered, and how long it took."""

    rate: float
    duration_s: float
    scheduled: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    elapsed_s: float = 0.0
    max_start_lag_ms: float = 0.0
    connections: int = 0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def succeeded(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def failed(self) -> int:
        return self.scheduled - self.succeeded

    def summary(self) -> Summary:
        return summarize(self.latencies_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "rate_per_s": self.rate,
            "duration_s": self.duration_s,
            "scheduled": self.scheduled,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "unanswered": self.unanswered,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "achieved_per_s": round(self.succeeded / self.elapsed_s, 1)
            if self.elapsed_s
            else None,
            "max_start_lag_ms": round(self.max_start_lag_ms, 2),
            "connections": self.connections,
            "latency_ms": self.summary().to_json() if self.latencies_ms else None,
        }


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 answer; its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise LoadError(f"not an HTTP answer: {lines[0]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    keep = headers.get("connection", "").lower() != "close"
    return status, keep


async def _run(
    target: Target,
    rate: float,
    duration_s: float,
    *,
    max_connections: int,
    drain_s: float,
    first_index: int,
) -> LoadResult:
    result = LoadResult(rate=rate, duration_s=duration_s)
    count = max(1, int(rate * duration_s))
    result.scheduled = count
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    opened = 0
    slots = asyncio.Semaphore(max_connections)
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    due_times: dict[int, float] = {}

    async def take() -> _Connection:
        nonlocal opened
        await slots.acquire()
        try:
            return idle.get_nowait()
        except asyncio.QueueEmpty:
            opened += 1
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), CONNECT_TIMEOUT_S
            )
            return _Connection(reader, writer)

    async def one(index: int, due: float) -> None:
        connection: _Connection | None = None
        try:
            connection = await take()
            connection.writer.write(target.request_bytes(first_index + index))
            await connection.writer.drain()
            status, keep = await _read_answer(connection.reader)
            result.latencies_ms.append((loop.time() - due) * 1000.0)
            result.statuses[status] += 1
            if keep:
                idle.put_nowait(connection)
                connection = None
        except (OSError, asyncio.IncompleteReadError, LoadError, TimeoutError) as error:
            result.errors[type(error).__name__] += 1
            result.latencies_ms.append((loop.time() - due) * 1000.0)
        finally:
            if connection is not None:
                connection.close()
            slots.release()
            due_times.pop(index, None)

    started = loop.time()
    for index in range(count):
        due = started + index / rate
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        lag = (loop.time() - due) * 1000.0
        result.max_start_lag_ms = max(result.max_start_lag_ms, lag)
        due_times[index] = due
        task = asyncio.create_task(one(index, due))
        pending.add(task)
        task.add_done_callback(pending.discard)

    if pending:
        _done, still = await asyncio.wait(set(pending), timeout=drain_s)
        cut_off = loop.time()
        for task in still:
            task.cancel()
        for due in list(due_times.values()):
            result.latencies_ms.append((cut_off - due) * 1000.0)
        result.unanswered = len(still)
    result.elapsed_s = loop.time() - started
    result.connections = opened
    while not idle.empty():
        idle.get_nowait().close()
    return result


def open_loop(
    target: Target,
    rate: float,
    duration_s: float,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    drain_s: float = DEFAULT_DRAIN_S,
    first_index: int = 0,
) -> LoadResult:
    """Send ``rate`` requests a second for ``duration_s`` seconds; the results."""
    if rate <= 0 or duration_s <= 0:
        raise LoadError("the rate and the duration must both be above 0")
    return asyncio.run(
        _run(
            target,
            rate,
            duration_s,
            max_connections=max_connections,
            drain_s=drain_s,
            first_index=first_index,
        )
    )


@dataclass(frozen=True, slots=True)
class RampResult:
    """The steps of one ramp and the highest rate that kept within the limit."""

    limit_ms: float
    steps: tuple[LoadResult, ...]
    max_rate: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "p99_limit_ms": self.limit_ms,
            "max_sustained_rate_per_s": self.max_rate,
            "steps": [
                {
                    "rate_per_s": step.rate,
                    "p50_ms": round(step.summary().p50, 2),
                    "p99_ms": round(step.summary().p99, 2),
                    "count": step.scheduled,
                    "failed": step.failed,
                    "within_limit": passes(step, self.limit_ms),
                }
                for step in self.steps
            ],
        }


def passes(step: LoadResult, limit_ms: float) -> bool:
    """Whether a step kept its p99 within the limit with every request a success."""
    return step.failed == 0 and step.summary().p99 <= limit_ms


def step_duration(rate: float, *, minimum_s: float, samples: int) -> float:
    """Long enough for ``samples`` requests at ``rate``, and at least ``minimum_s``."""
    return max(minimum_s, samples / rate)


def find_max_rate(
    target: Target,
    rates: Sequence[float],
    *,
    limit_ms: float = 50.0,
    minimum_s: float = 5.0,
    samples: int = 300,
    between: Callable[[], None] | None = None,
    first_index: int = 0,
) -> RampResult:
    """Step up ``rates`` until a step's p99 passes ``limit_ms`` (or a request fails)."""
    steps: list[LoadResult] = []
    best: float | None = None
    index = first_index
    for rate in rates:
        duration = step_duration(rate, minimum_s=minimum_s, samples=samples)
        step = open_loop(target, rate, duration, first_index=index)
        index += step.scheduled
        steps.append(step)
        if not passes(step, limit_ms):
            break
        best = rate
        if between is not None:
            between()
    return RampResult(limit_ms, tuple(steps), best)
