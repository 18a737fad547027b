"""The Kafka launcher says which signal stopped it, and who sent it.

``python -m devstack.kafka run`` exits 0 when it is asked to stop, which its
supervisor can only report as an unexpected stop with code 0; its log must then say
what asked. The launcher's watch loop runs here in a process of its own with a
stand-in for the broker (a JVM adds nothing to what is checked), and the test sends
it a real signal.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devstack.kafka import _watch

WATCHER = textwrap.dedent(
    """
    import logging, sys
    from devstack.kafka import _watch

    class Broker:
        pid = 4242
        watched = False

        def is_running(self):
            if not self.watched:
                print("watching", flush=True)
                self.watched = True
            return True

        def log_tail(self):
            return ""

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    sys.exit(_watch(Broker(), []))
    """
)
# A bound wait for a process asked to stop; not a timed assertion.
EXIT_WAIT_S = 60.0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_launcher_logs_the_signal_that_stopped_it_and_its_sender(
    stop_signal: signal.Signals, tmp_path: Path
) -> None:
    with (tmp_path / "launcher.log").open("wb") as log_file:
        launcher = subprocess.Popen(
            [sys.executable, "-c", WATCHER],
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    assert launcher.stdout is not None
    try:
        # Said once the loop watches, with the stop signals already blocked.
        assert launcher.stdout.readline() == b"watching\n"
        launcher.send_signal(stop_signal)
        code = launcher.wait(EXIT_WAIT_S)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        launcher.stdout.close()

    said = (tmp_path / "launcher.log").read_text()
    assert code == 0, said
    assert f"received {stop_signal.name} from pid {os.getpid()} (" in said
    assert "stopping the broker" in said


class _Broker:
    """A broker that never exits by itself."""

    pid = 4242

    def is_running(self) -> bool:
        return True

    def log_tail(self, lines: int = 30) -> str:
        return ""


def test_a_signal_noted_while_the_broker_started_is_logged_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="devstack.kafka")

    code = _watch(_Broker(), [int(signal.SIGTERM)])

    assert code == 0
    assert "received SIGTERM while the broker was starting" in caplog.text
