"""Loops that run beside a service's HTTP app: an outbox relay, a subscriber.

``BackgroundLoop(name, loop)`` runs ``loop(stop_event)`` on a daemon thread from
``start()`` until ``stop()`` sets the event and joins the thread. The app's lifespan
starts one per loop, stops them in its shutdown, and its readiness check asks
``is_alive()``: a loop that died of a defect makes the process unready at once, and
stays in ``sendkit.health.PROGRESS`` as a loop that never makes progress, so
``/healthz`` fails after ``SEND_STALL_SECONDS`` and Kubernetes restarts the pod
(readiness alone would only take it out of the Service), rather than serving commands
whose events are never published or reactions that never happen.

``connect_with_retry(make, stop_event)`` builds a client that must reach Kafka when it
is made (kafka-python's consumer waits up to 30 seconds for a broker, then raises),
retrying with a backoff that doubles up to a cap, so a loop started before the broker
is up waits for it instead of dying. While it waits it counts as alive (a broker that
is down, with no work known to wait, is no reason to restart).

A loop that fails on a transient error (``KafkaError``, ``StoreUnavailable`` or
``OSError``: a broker restarting, a store briefly unreachable) is not dead: the loop
logs the error and is run again from the start after a backoff that doubles up to
``RESTART_MAX_S``, so it reconnects (a loop that calls ``connect_with_retry`` makes
fresh clients). Only any other exception, a defect, ends the thread.

``bootstrapped`` tells whether a Kafka client of the loop has reached a broker at
least once: ``connect_with_retry`` and the outbox relay (``sendkit.relay``) say so
for the loop whose thread they run on (``mark_bootstrapped``). It never goes back to
``False``, so a readiness check built on it (``loops_bootstrapped``) fails until the
first contact and is not affected by a later outage, and it costs no request.

``stop_then_close(loops, close)`` is the shutdown order of an app: every loop is
asked to stop at once, all are joined within one shared timeout (by default the loops'
share of ``SEND_SHUTDOWN_TIMEOUT_SECONDS``, ``sendkit.health.http_stop_budget``), and
``close`` (the store's) runs only if none is still running. A loop still inside the
store after the timeout keeps the store open, which is left to the process's exit;
closing it under the thread could crash the interpreter (SQLite) or fail the thread's
write. A loop's own ``stop_timeout_s`` (``STOP_TIMEOUT_S`` unless given) bounds a
``stop()`` called on that loop alone; it is the default loops' share, so a loop
stopped on its own fits the same budget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol, Self, TypeVar

from kafka.errors import KafkaError

from sendkit.health import (
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    PROGRESS,
    HealthSettings,
    Progress,
    http_stop_budget,
)
from sendkit.store.base import StoreUnavailable

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = http_stop_budget(
    HealthSettings(shutdown_timeout_seconds=DEFAULT_SHUTDOWN_TIMEOUT_S)
).loops_s
"""How long ``stop()`` waits for one loop by default: the loops' share of the default
shutdown timeout (10 s of 20)."""
RESTART_INITIAL_S = 1.0
RESTART_MAX_S = 30.0

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    StoreUnavailable,
    OSError,
)
"""Errors after which a loop is run again, after a backoff, rather than given up."""

_current = threading.local()

Loop = Callable[[threading.Event], None]
"""Runs until the event it is given is set."""

_T = TypeVar("_T")


class BackgroundLoop:
    """One ``Loop`` on a daemon thread, from ``start()`` until ``stop()``."""

    def __init__(
        self,
        name: str,
        loop: Loop,
        *,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        restart_initial_s: float = RESTART_INITIAL_S,
        restart_max_s: float = RESTART_MAX_S,
    ) -> None:
        self.name = name
        self._loop = loop
        self._stop_timeout_s = stop_timeout_s
        self._restart_initial_s = restart_initial_s
        self._restart_max_s = restart_max_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._died: Progress | None = None
        self._bootstrapped = threading.Event()
        self.restarts = 0

    def _run(self) -> None:
        _current.loop = self
        delay = self._restart_initial_s
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self._loop(self._stop)
                return
            except TRANSIENT_ERRORS as error:
                if self._stop.is_set():
                    return
                if time.monotonic() - began > self._restart_max_s:
                    delay = self._restart_initial_s  # it ran well for a while
                self.restarts += 1
                log.error(
                    "background loop %s failed (%s: %s); running it again in %.0f s",
                    self.name,
                    type(error).__name__,
                    _first_line(error),
                    delay,
                    extra={"loop": self.name, "error_type": type(error).__name__},
                )
                # Nothing is known to wait while it backs off: a broker outage is
                # no reason for the liveness probe to restart the process.
                with PROGRESS.tracking(f"{self.name} (restarting)") as progress:
                    progress.record(0, None)
                    if self._stop.wait(delay):
                        return
                delay = min(self._restart_max_s, delay * 2)
            except Exception:
                # What reaches here is a defect, and is_alive() now tells the
                # readiness check. A loop that never progresses tells the liveness
                # check, which restarts the process.
                log.exception(
                    "background loop %s died", self.name, extra={"loop": self.name}
                )
                self._died = PROGRESS.track(f"{self.name} (died)")
                raise

    def start(self) -> Self:
        self._thread.start()
        log.info("background loop %s started", self.name, extra={"loop": self.name})
        return self

    @property
    def loop(self) -> Loop:
        """The function the thread runs."""
        return self._loop

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def bootstrapped(self) -> bool:
        """Whether a Kafka client of this loop has reached a broker at least once."""
        return self._bootstrapped.is_set()

    def mark_bootstrapped(self) -> None:
        self._bootstrapped.set()

    def request_stop(self) -> None:
        """Ask the loop to stop after its current round, without waiting."""
        self._stop.set()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Ask the loop to stop after its current round and wait for it, at most
        ``timeout_s`` (or the loop's own stop timeout, whichever is shorter); return
        whether the thread has stopped."""
        self._stop.set()
        died, self._died = self._died, None
        if died is not None:
            PROGRESS.untrack(died)
        if self._thread.ident is None:
            return True
        wait = self._stop_timeout_s if timeout_s is None else timeout_s
        wait = min(wait, self._stop_timeout_s)
        self._thread.join(wait)
        if self._thread.is_alive():
            log.error(
                "background loop %s did not stop within %.1f s",
                self.name,
                wait,
                extra={"loop": self.name},
            )
            return False
        return True


class _Stoppable(Protocol):
    def stop(self, timeout_s: float | None = ..., /) -> object: ...

    def is_alive(self) -> bool: ...


def stop_loops(
    loops: Iterable[_Stoppable],
    timeout_s: float | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Ask every loop to stop at once, then wait for them side by side: each
    ``stop`` is given what is left of ``timeout_s`` (each loop's own stop timeout
    when ``None``). Return whether every one has stopped."""
    loops = list(loops)
    for loop in loops:
        request = getattr(loop, "request_stop", None)
        if request is not None:
            request()
    deadline = None if timeout_s is None else clock() + timeout_s
    for loop in loops:
        if deadline is None:
            loop.stop()
        else:
            loop.stop(max(deadline - clock(), 0.0))
    return not any(loop.is_alive() for loop in loops)


def stop_then_close(
    loops: Iterable[_Stoppable],
    close: Callable[[], None] | None,
    *,
    what: str,
    timeout_s: float | None = None,
) -> bool:
    """Stop ``loops`` within ``timeout_s`` all together (``stop_loops``; by default
    the loops' share of ``SEND_SHUTDOWN_TIMEOUT_SECONDS``), then ``close()`` only if
    all have stopped.

    A loop still running after the timeout may be inside the store: the store is
    then left open for the process's exit, and an error says so. Return whether
    ``close`` ran (``True`` also when there was nothing to close).
    """
    loops = list(loops)
    if timeout_s is None:
        timeout_s = http_stop_budget().loops_s
    if not stop_loops(loops, timeout_s):
        running = [
            getattr(loop, "name", repr(loop)) for loop in loops if loop.is_alive()
        ]
        log.error(
            "%s left open: %s still running after the stop timeout; the process's "
            "exit will end them",
            what,
            ", ".join(running),
            extra={"running": running},
        )
        return False
    if close is not None:
        close()
    return True


def mark_bootstrapped() -> None:
    """Say that a Kafka client of the loop running on this thread reached a broker
    (nothing happens on a thread that is not a ``BackgroundLoop``'s)."""
    loop = getattr(_current, "loop", None)
    if loop is not None:
        loop.mark_bootstrapped()


def on_loop_thread() -> bool:
    """Whether this thread is a ``BackgroundLoop``'s."""
    return getattr(_current, "loop", None) is not None


def bootstrapped_here() -> bool:
    """Whether the loop running on this thread has reached a broker before."""
    loop = getattr(_current, "loop", None)
    return loop is not None and bool(loop.bootstrapped)


def loops_bootstrapped(loops: Callable[[], Iterable[object]]) -> Callable[[], bool]:
    """A readiness check: every loop ``loops()`` returns has reached Kafka once.

    Loops without a ``bootstrapped`` attribute (stand-ins in tests) count as having
    reached it. The check makes no request: it reads flags the loops set.
    """
    return lambda: all(bool(getattr(loop, "bootstrapped", True)) for loop in loops())


def connect_with_retry(
    make: Callable[[], _T],
    stop_event: threading.Event,
    *,
    what: str,
    initial_s: float = 1.0,
    max_s: float = 30.0,
) -> _T | None:
    """``make()``, retried on ``KafkaError`` until it succeeds or ``stop_event`` is set.

    Returns ``None`` only when asked to stop before a client could be made.
    """
    with PROGRESS.tracking(f"connecting {what}") as progress:
        return _connect(make, stop_event, progress, what, initial_s, max_s)


def _connect(
    make: Callable[[], _T],
    stop_event: threading.Event,
    progress: Progress,
    what: str,
    initial_s: float,
    max_s: float,
) -> _T | None:
    delay = initial_s
    while not stop_event.is_set():
        progress.record(0, None)  # nothing is known to wait yet
        try:
            made = make()
        except KafkaError as error:
            log.error(
                "cannot connect the %s to Kafka; retrying in %.0f s",
                what,
                delay,
                extra={"client": what, "error_type": type(error).__name__},
            )
            if stop_event.wait(delay):
                break
            delay = min(max_s, delay * 2)
            continue
        mark_bootstrapped()
        return made
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
