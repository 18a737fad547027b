"""Process health: whether each loop makes progress, the heartbeat file, a bounded stop.

A pod's liveness should say whether its work moves, not whether Kafka answers, so a
Kafka outage restarts nothing that has nothing to do, while a consumer stuck with work
waiting is restarted. Every long-running loop (an outbox relay, a subscriber, a faust
worker's timer, the ticker) keeps a ``Progress`` in a ``ProgressRegistry`` (``PROGRESS``
for the process) and records each round with ``progress.record(done, waiting)``:

- a round that did something (``done > 0``), or found nothing to do (``waiting == 0``),
  or failed without knowing of any waiting work (``waiting is None``: the broker is
  down and no lag is known) is *fine*: the loop is alive;
- a round that did nothing while work is known to wait (``done == 0 and waiting > 0``:
  events the relay read and could not publish, records behind a consumer's position,
  transient failures that outlasted the retry budget) is *blocked*.

A loop is *stalled* when its last fine round is older than the stall time (a loop that
has never had a fine round counts from when it was tracked). Two consumers of that:

- ``Heartbeat`` keeps the file named by ``SEND_HEARTBEAT_FILE`` for the exec probes of
  processes without an HTTP server: its modification time is set to the oldest of the
  loops' last fine rounds, so the file ages as soon as any loop stops having them, and
  it is written only once every loop has had one (a faust worker's first round comes
  after its table recovery, so the startup probe's budget covers recovery). A probe
  fails when the file is older than its limit (300 s in ``deploy/``).
- ``sendkit.web``'s ``/healthz`` answers 503 naming the stalled loops of its process
  (stall time ``SEND_STALL_SECONDS``), for HTTP pods that run a relay or a subscriber
  on a thread.

``Shutdown`` turns SIGTERM and SIGINT into a ``threading.Event`` the loops watch, and
bounds how long stopping may take (``SEND_SHUTDOWN_TIMEOUT_SECONDS``, 20 by default):
a process still running that long after the signal logs what it was doing and exits
with status ``EXIT_OVERDUE`` (3), so the supervisor never waits for SIGKILL and an
operator can tell a forced stop from a clean one (status 0). A second signal forces the
exit at once. ``supervised(name)`` puts both around a process's main loop::

    with supervised("intake-relay") as shutdown:
        run_exclusively(make_relay, lock, shutdown.stop)

An HTTP process stops in two steps that share the same timeout
(``http_stop_budget``): uvicorn answers the requests in flight for up to half of it
(``timeout_graceful_shutdown``, ``sendkit.web.serve``), then the app's lifespan waits
for its relay and subscriber threads, all together, for up to the other half
(``sendkit.background.stop_then_close``). So every process, HTTP or not, is done with
its work ``SEND_SHUTDOWN_TIMEOUT_SECONDS`` after SIGTERM, and the deploy tests check
that this, a pod's preStop sleep and ``EXIT_MARGIN_S`` fit in its grace period.

``track_faust_progress(app, topics)`` adds the faust equivalent of a round: a timer
that compares the worker's committed offsets with the partitions' high-water marks.

Known weakness: a Kafka outage longer than the stall time does restart the relays that
have events waiting to publish and the consumers whose lag was known before the outage
(their work is known to wait and does not move); a restart is harmless to them, since
each resumes from its checkpoint or committed offsets, and idle loops are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

EXIT_OVERDUE = 3
"""The exit status of a process that did not stop within its shutdown timeout."""

DEFAULT_SHUTDOWN_TIMEOUT_S = 20.0
EXIT_MARGIN_S = 5.0
"""What a process needs after its shutdown timeout to be gone: the timeout's own log
line and exit, closing a store, the interpreter's exit. Grace periods allow for it."""
DEFAULT_STALL_S = 300.0
FAUST_ROUND_INTERVAL_S = 10.0


class HealthError(Exception):
    """Root of the health module's errors."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class HealthSettings(BaseSettings):
    """The process-health names every process reads, unprefixed.

    =============================  =======  ==========================================
    Environment name               Default  Meaning
    =============================  =======  ==========================================
    SEND_HEARTBEAT_FILE            (none)   file kept fresh while every loop is fine
    SEND_SHUTDOWN_TIMEOUT_SECONDS  20       longest stop after SIGTERM, then exit 3
    SEND_STALL_SECONDS             300      loop stalled after this long blocked
    =============================  =======  ==========================================
    """

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", populate_by_name=True, frozen=True
    )

    heartbeat_file: Path | None = Field(
        default=None,
        validation_alias=_env("SEND_HEARTBEAT_FILE"),
        description="A file whose age tells an exec probe how long since every loop "
        "of the process last made progress or found nothing to do; unset: none.",
    )
    shutdown_timeout_seconds: float = Field(
        default=DEFAULT_SHUTDOWN_TIMEOUT_S,
        gt=0,
        validation_alias=_env("SEND_SHUTDOWN_TIMEOUT_SECONDS"),
        description="How long a process may take to stop after SIGTERM before it "
        "exits with status 3; keep it below terminationGracePeriodSeconds.",
    )
    stall_seconds: float = Field(
        default=DEFAULT_STALL_S,
        gt=0,
        validation_alias=_env("SEND_STALL_SECONDS"),
        description="How long a loop may go without progress while work waits "
        "before /healthz reports it stalled.",
    )


# --- progress -------------------------------------------------------------------------


class Progress:
    """One loop's record of its rounds; made by ``ProgressRegistry.track``."""

    def __init__(self, name: str, registry: ProgressRegistry) -> None:
        self.name = name
        self._registry = registry
        self.tracked_at = registry.now()
        self.last_fine: float | None = None
        self.last_round: float | None = None
        self.done_total = 0
        self.waiting: int | None = None

    def record(self, done: int, waiting: int | None = None) -> None:
        """Record one round: ``done`` items handled, ``waiting`` known to wait after it
        (``None``: not known). See the module docstring for what counts as fine."""
        now = self._registry.now()
        self.last_round = now
        self.done_total += done
        self.waiting = waiting
        if done > 0 or not waiting:
            self.last_fine = now
            self._registry.changed()

    def stalled(self, after_s: float, now: float | None = None) -> bool:
        """Whether the last fine round (or the tracking, before any) is too old."""
        now = self._registry.now() if now is None else now
        since = self.last_fine if self.last_fine is not None else self.tracked_at
        return now - since > after_s

    def describe(self, now: float) -> dict[str, Any]:
        since = self.last_fine if self.last_fine is not None else self.tracked_at
        return {
            "seconds_since_fine": round(now - since, 3),
            "fine_yet": self.last_fine is not None,
            "done": self.done_total,
            "waiting": self.waiting,
        }


class ProgressRegistry:
    """The loops of one process and what listens to their progress (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.now = clock
        self._lock = threading.Lock()
        self._loops: list[Progress] = []
        self._listeners: list[Callable[[], None]] = []

    def track(self, name: str) -> Progress:
        progress = Progress(name, self)
        with self._lock:
            self._loops.append(progress)
        self.changed()
        return progress

    def untrack(self, progress: Progress) -> None:
        with self._lock:
            if progress in self._loops:
                self._loops.remove(progress)
        self.changed()

    @contextmanager
    def tracking(self, name: str) -> Iterator[Progress]:
        """A ``Progress`` tracked for the duration of the block."""
        progress = self.track(name)
        try:
            yield progress
        finally:
            self.untrack(progress)

    def loops(self) -> list[Progress]:
        with self._lock:
            return list(self._loops)

    def oldest_fine(self) -> float | None:
        """The oldest of the loops' last fine rounds; ``None`` when there is no loop or
        one has not had a fine round yet."""
        loops = self.loops()
        if not loops or any(p.last_fine is None for p in loops):
            return None
        return min(p.last_fine for p in loops if p.last_fine is not None)

    def stalled(self, after_s: float) -> list[Progress]:
        now = self.now()
        return [p for p in self.loops() if p.stalled(after_s, now)]

    def report(self, after_s: float) -> dict[str, dict[str, Any]]:
        """Each loop's state by name, with ``stalled``; for ``/healthz``."""
        now = self.now()
        report: dict[str, dict[str, Any]] = {}
        for progress in self.loops():
            name = progress.name
            if name in report:  # two loops of one name: tell them apart
                name = f"{name}#{sum(1 for n in report if n.startswith(name))}"
            report[name] = progress.describe(now) | {
                "stalled": progress.stalled(after_s, now)
            }
        return report

    def add_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def changed(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


PROGRESS = ProgressRegistry()
"""The process's loops: relays, subscribers and the rest track themselves here."""


# --- the heartbeat file ---------------------------------------------------------------


class Heartbeat:
    """Keeps ``path``'s modification time at the oldest of the loops' last fine rounds.

    ``start()`` removes a file left by an earlier container of the pod (``/tmp`` is an
    emptyDir that outlives a container restart), so the startup probe waits for this
    process's own first fine round. Writes are at most one a second.
    """

    def __init__(
        self,
        path: str | Path,
        registry: ProgressRegistry = PROGRESS,
        *,
        min_step_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self._registry = registry
        self._min_step_s = min_step_s
        self._written: float | None = None
        self._lock = threading.Lock()
        self._failing = False

    def start(self) -> Heartbeat:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            raise HealthError(
                f"cannot remove the old heartbeat file {self.path} ({error}): point "
                "SEND_HEARTBEAT_FILE at a writable place such as /tmp/heartbeat"
            ) from error
        self._registry.add_listener(self.sync)
        self.sync()
        log.info(
            "heartbeat file %s kept while every loop is fine",
            self.path,
            extra={"heartbeat_file": str(self.path)},
        )
        return self

    def stop(self) -> None:
        self._registry.remove_listener(self.sync)

    def sync(self) -> None:
        """Bring the file's time up to the registry's oldest fine round."""
        oldest = self._registry.oldest_fine()
        if oldest is None:
            return
        with self._lock:
            if self._written is not None and oldest - self._written < self._min_step_s:
                return
            try:
                self.path.touch(exist_ok=True)
                os.utime(self.path, (oldest, oldest))
            except OSError as error:
                # Said once: a probe that cannot read the file fails on its own.
                if not self._failing:
                    log.error(
                        "cannot write the heartbeat file %s: %s",
                        self.path,
                        error,
                        extra={"heartbeat_file": str(self.path)},
                    )
                self._failing = True
                return
            self._failing = False
            self._written = oldest


def start_heartbeat(
    settings: HealthSettings | None = None, registry: ProgressRegistry = PROGRESS
) -> Heartbeat | None:
    """The heartbeat ``SEND_HEARTBEAT_FILE`` asks for, started; ``None`` if unset."""
    settings = settings or HealthSettings()
    if settings.heartbeat_file is None:
        return None
    return Heartbeat(settings.heartbeat_file, registry).start()


# --- stopping -------------------------------------------------------------------------


class Shutdown:
    """SIGTERM and SIGINT set ``stop``; a stop that takes too long ends the process.

    ``install()`` must be called from the main thread. ``request(reason)`` starts the
    same stop without a signal (a loop died, say). After ``timeout_s`` the process
    exits with ``EXIT_OVERDUE`` whatever it is doing; work in flight then is abandoned,
    which the relay and the subscribers survive by design (their checkpoints and
    offsets cover only finished work).
    """

    def __init__(
        self,
        name: str,
        *,
        timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
        exit: Callable[[int], object] = os._exit,
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.stop = threading.Event()
        self._exit = exit
        self._watchdog: threading.Timer | None = None
        self._previous: dict[int, Any] = {}
        self._lock = threading.RLock()
        self._requested = False

    def install(self) -> Shutdown:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def uninstall(self) -> None:
        """Put the earlier handlers back and disarm the timeout."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        with self._lock:
            if self._watchdog is not None:
                self._watchdog.cancel()

    def request(self, reason: str) -> None:
        """Ask every loop to stop, and start counting the shutdown timeout; ``reason``
        completes "asked to stop by ..." in the log (``"signal SIGTERM"``)."""
        # A signal's handler may run in the middle of this very method on the main
        # thread (a second signal), so the lock is re-entrant and the first thing
        # done is to say that a stop was asked for.
        with self._lock:
            if self._requested:
                return
            self._requested = True
            self._watchdog = threading.Timer(self.timeout_s, self._overdue)
            self._watchdog.daemon = True
            self._watchdog.name = f"shutdown-timeout {self.name}"
            self._watchdog.start()
        log.info(
            "%s asked to stop by %s; stopping within %.0f s",
            self.name,
            reason,
            self.timeout_s,
            extra={"component": self.name, "reason": reason},
        )
        self.stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._requested:
            log.warning(
                "%s got %s again while stopping; exiting now",
                self.name,
                name,
                extra={"component": self.name, "signal": name},
            )
            self._force()
            return
        self.request(f"signal {name}")

    def _overdue(self) -> None:
        # The names of the threads still running say which loop held on.
        threads = sorted(thread.name for thread in threading.enumerate())
        log.error(
            "%s did not stop within %.0f s; exiting with status %d",
            self.name,
            self.timeout_s,
            EXIT_OVERDUE,
            extra={"component": self.name, "threads": threads},
        )
        self._force()

    def _force(self) -> None:
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):  # exiting: nothing more to say
                handler.flush()
        sys.stderr.flush()
        self._exit(EXIT_OVERDUE)


@contextmanager
def supervised(
    name: str,
    settings: HealthSettings | None = None,
    registry: ProgressRegistry = PROGRESS,
) -> Iterator[Shutdown]:
    """A process's stop signals, shutdown timeout and heartbeat file, for a block run
    on the main thread; yields the ``Shutdown`` whose ``stop`` the loops watch."""
    settings = settings or HealthSettings()
    shutdown = Shutdown(name, timeout_s=settings.shutdown_timeout_seconds).install()
    heartbeat = None
    try:
        heartbeat = start_heartbeat(settings, registry)
        yield shutdown
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        shutdown.uninstall()


@dataclass(frozen=True, slots=True)
class HttpStopBudget:
    """How an HTTP process shares its shutdown timeout after SIGTERM.

    ``requests_s`` is how long uvicorn waits for the requests in flight before it
    cancels them (whole seconds, as uvicorn takes them); ``loops_s`` is how long the
    app's lifespan then waits for all of its background loops together. Their sum is
    the shutdown timeout, for any timeout of two seconds or more.
    """

    requests_s: int
    loops_s: float

    @property
    def total_s(self) -> float:
        return self.requests_s + self.loops_s


def http_stop_budget(settings: HealthSettings | None = None) -> HttpStopBudget:
    """``SEND_SHUTDOWN_TIMEOUT_SECONDS`` split between the requests in flight and the
    background loops: half each, the requests' half rounded down to a whole second
    (at least one) and the loops given the rest."""
    total = (settings or HealthSettings()).shutdown_timeout_seconds
    requests_s = max(1, math.floor(total / 2))
    # A timeout under two seconds leaves the loops nothing after the requests' one
    # second; they still get a moment to see the stop rather than none at all.
    return HttpStopBudget(requests_s, max(total - requests_s, 0.5))


# --- readiness ------------------------------------------------------------------------


class _Answers(Protocol):
    def last_position(self) -> int: ...


class _Alive(Protocol):
    def is_alive(self) -> bool: ...


def store_answers(store: _Answers) -> Callable[[], None]:
    """A readiness check: the store answers a one-row query (raises if it cannot)."""

    def check() -> None:
        store.last_position()

    return check


def loops_alive(loops: Callable[[], Iterable[_Alive]]) -> Callable[[], bool]:
    """A readiness check: every loop ``loops()`` returns now is running."""
    return lambda: all(loop.is_alive() for loop in loops())


# --- faust ----------------------------------------------------------------------------


def faust_round(
    consumer: Any, topics: Sequence[str] | frozenset[str], seen: dict[Any, int]
) -> tuple[int, int | None]:
    """One round for a faust consumer: ``(offsets committed since the last round, lag
    known now)`` over the assigned partitions of ``topics``; lag ``None`` when no
    partition's high-water mark is known yet. ``seen`` keeps the committed offsets
    between rounds."""
    done = 0
    lag: int | None = None
    for tp in list(consumer.assignment()):
        if tp.topic not in topics:
            continue  # a table's changelog: faust commits no offsets there
        committed = _committed_offset(consumer, tp)
        if committed is not None:
            done += max(committed - seen.get(tp, committed), 0)
            seen[tp] = committed
        try:
            highwater = consumer.highwater(tp)
        except (AssertionError, KeyError, ValueError):
            highwater = None  # revoked meanwhile
        if highwater is None or highwater < 0:
            continue
        lag = (lag or 0) + max(int(highwater) - (committed or 0), 0)
    return done, lag


def _committed_offset(consumer: Any, tp: Any) -> int | None:
    # faust keeps the offset it last committed for each partition (and the group's
    # committed offset, read at assignment) in Consumer._committed_offset; no public
    # accessor exists in faust-streaming 0.15.
    offsets = getattr(consumer, "_committed_offset", None)
    value = offsets.get(tp) if offsets is not None else None
    return int(value) if value is not None else None


def track_faust_progress(
    app: Any,
    topics: Iterable[str],
    *,
    name: str = "faust-worker",
    interval_s: float = FAUST_ROUND_INTERVAL_S,
    registry: ProgressRegistry = PROGRESS,
) -> None:
    """Add a timer to the faust ``app`` that records a round every ``interval_s``:
    fine while committed offsets of ``topics`` advance or their lag is zero, blocked
    while lag waits and nothing is committed. faust starts timers only after table
    recovery, so the loop is tracked (and the heartbeat file written) from then on."""
    wanted = frozenset(topics)
    state: dict[str, Any] = {"progress": None, "seen": {}, "blocked": False}

    async def record_round() -> None:
        progress = state["progress"]
        if progress is None:
            progress = state["progress"] = registry.track(name)
            log.info(
                "%s: progress tracked from this first round after recovery",
                name,
                extra={"loop": name},
            )
        done, lag = faust_round(app.consumer, wanted, state["seen"])
        progress.record(done, lag)
        blocked = done == 0 and bool(lag)
        if blocked and not state["blocked"]:  # said once per spell
            log.warning(
                "%s made no progress with %d records waiting",
                name,
                lag,
                extra={"loop": name, "lag": lag},
            )
        state["blocked"] = blocked

    app.timer(interval=interval_s, name=f"{name}-progress")(record_round)
