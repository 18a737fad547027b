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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from kafka.errors import KafkaError

from sendkit.health import PROGRESS, Progress

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0

Loop = Callable[[threading.Event], None]
"""Runs until the event it is given is set."""

_T = TypeVar("_T")


class BackgroundLoop:
    """One ``Loop`` on a daemon thread, from ``start()`` until ``stop()``."""

    def __init__(
        self, name: str, loop: Loop, *, stop_timeout_s: float = STOP_TIMEOUT_S
    ) -> None:
        self.name = name
        self._loop = loop
        self._stop_timeout_s = stop_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._died: Progress | None = None

    def _run(self) -> None:
        try:
            self._loop(self._stop)
        except Exception:
            # The loops retry their transient failures themselves; what reaches here
            # is a defect, and is_alive() now tells the readiness check. A loop that
            # never progresses tells the liveness check, which restarts the process.
            log.exception(
                "background loop %s died", self.name, extra={"loop": self.name}
            )
            self._died = PROGRESS.track(f"{self.name} (died)")
            raise

    def start(self) -> BackgroundLoop:
        self._thread.start()
        log.info("background loop %s started", self.name, extra={"loop": self.name})
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def request_stop(self) -> None:
        """Ask the loop to stop after its current round, without waiting."""
        self._stop.set()

    def stop(self) -> None:
        """Ask the loop to stop after its current round and wait for it."""
        self._stop.set()
        died, self._died = self._died, None
        if died is not None:
            PROGRESS.untrack(died)
        if self._thread.ident is None:
            return
        self._thread.join(self._stop_timeout_s)
        if self._thread.is_alive():
            log.error(
                "background loop %s did not stop within %.0f s",
                self.name,
                self._stop_timeout_s,
                extra={"loop": self.name},
            )


def stop_loops(loops: Iterable[BackgroundLoop]) -> None:
    """Ask every loop to stop at once, then wait for each: they stop side by side."""
    loops = list(loops)
    for loop in loops:
        loop.request_stop()
    for loop in loops:
        loop.stop()


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
            return make()
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
    return None
