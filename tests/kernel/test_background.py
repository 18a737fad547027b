"""Background loops: started, stopped, reported dead; clients connected with retry."""

from __future__ import annotations

import threading

import pytest
from kafka.errors import KafkaTimeoutError

from sendkit.background import BackgroundLoop, connect_with_retry

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
