"""Background loops: started, stopped, reported dead; clients connected with retry."""

from __future__ import annotations

import threading

import pytest
from kafka.errors import KafkaTimeoutError

from sendkit.background import (
    STOP_TIMEOUT_S,
    BackgroundLoop,
    connect_with_retry,
    stop_loops,
)
from sendkit.health import HealthSettings, http_stop_budget

# Guards against a hang only; nothing asserts how long anything took.
WAIT_S = 30.0


def test_a_loop_runs_until_stopped_and_is_then_no_longer_alive() -> None:
    entered = threading.Event()
    seen_stop: list[bool] = []

    def loop(stop: threading.Event) -> None:
        entered.set()
        seen_stop.append(stop.wait(WAIT_S))

    running = BackgroundLoop("test-loop", loop).start()
    assert entered.wait(WAIT_S)
    assert running.is_alive()

    running.stop()

    assert not running.is_alive()
    assert seen_stop == [True]


def test_a_loop_that_dies_of_a_defect_reports_itself_not_alive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def loop(stop: threading.Event) -> None:
        raise RuntimeError("a defect")

    running = BackgroundLoop("failing-loop", loop).start()
    running._thread.join(WAIT_S)

    assert not running.is_alive()
    assert "background loop failing-loop died" in caplog.text
    running.stop()


def test_stopping_a_loop_never_started_returns_at_once() -> None:
    BackgroundLoop("idle", lambda stop: None).stop()


def test_a_client_is_made_again_after_kafka_errors() -> None:
    attempts: list[int] = []

    def make() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise KafkaTimeoutError("Unable to bootstrap")
        return "client"

    made = connect_with_retry(make, threading.Event(), what="test", initial_s=0.01)

    assert made == "client"
    assert len(attempts) == 3


def test_no_client_is_made_once_asked_to_stop() -> None:
    stop = threading.Event()

    def make() -> str:
        stop.set()
        raise KafkaTimeoutError("Unable to bootstrap")

    assert connect_with_retry(make, stop, what="test", initial_s=0.01) is None


def test_other_errors_are_not_retried() -> None:
    def make() -> str:
        raise ValueError("bad configuration")

    with pytest.raises(ValueError, match="bad configuration"):
        connect_with_retry(make, threading.Event(), what="test")


class _SlowToStop:
    """A stand-in loop whose stop takes ``takes_s`` on the test's clock, and which
    records the wait it was given."""

    def __init__(self, clock: list[float], takes_s: float) -> None:
        self.clock = clock
        self.takes_s = takes_s
        self.requested = False
        self.given: list[float | None] = []

    def request_stop(self) -> None:
        self.requested = True

    def stop(self, timeout_s: float | None = None) -> None:
        self.given.append(timeout_s)
        self.clock[0] += min(self.takes_s, timeout_s or self.takes_s)

    def is_alive(self) -> bool:
        return self.takes_s > (self.given[-1] or 0) if self.given else True


def test_loops_stopped_together_share_one_timeout() -> None:
    now = [100.0]
    first, second, third = (_SlowToStop(now, s) for s in (7.0, 2.0, 5.0))

    stopped = stop_loops([first, second, third], 10.0, clock=lambda: now[0])

    # Every loop was asked before any was waited for, and each wait was what the
    # loops before it had left of the ten seconds.
    assert [first.requested, second.requested, third.requested] == [True] * 3
    assert [first.given, second.given, third.given] == [[10.0], [3.0], [1.0]]
    assert not stopped  # the third needed five seconds and had one


def test_a_loop_s_own_stop_timeout_caps_the_shared_one() -> None:
    entered = threading.Event()
    release = threading.Event()

    def stubborn(stop: threading.Event) -> None:
        entered.set()
        release.wait(WAIT_S)

    loop = BackgroundLoop("stubborn", stubborn, stop_timeout_s=0.05).start()
    assert entered.wait(WAIT_S)
    try:
        stopped = stop_loops([loop], WAIT_S)
        still_running = loop.is_alive()
    finally:
        release.set()

    assert not stopped
    assert still_running


def test_the_http_stop_budget_splits_the_shutdown_timeout() -> None:
    default = http_stop_budget(HealthSettings(shutdown_timeout_seconds=20))
    odd = http_stop_budget(HealthSettings(shutdown_timeout_seconds=45))
    tiny = http_stop_budget(HealthSettings(shutdown_timeout_seconds=1))

    assert (default.requests_s, default.loops_s) == (10, 10.0)
    assert (odd.requests_s, odd.loops_s) == (22, 23.0)
    assert odd.total_s == 45
    # Below two seconds each part keeps a minimum, so the sum is over the timeout.
    assert (tiny.requests_s, tiny.loops_s) == (1, 0.5)
    # A loop stopped on its own by default fits the default loops' share.
    assert default.loops_s >= STOP_TIMEOUT_S
