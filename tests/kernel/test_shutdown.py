"""``sendkit.health.supervised``: SIGTERM stops a process's loops, and a stop that
overstays its timeout, or a second signal, ends the process with status 3.

Each case is a real process given real signals; what it printed tells which path it
took, its exit status tells how it ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sendkit.health import EXIT_OVERDUE

# A process that says "looping" and then waits for its stop; with "stubborn" it then
# ignores the stop (a loop stuck in a call that never returns).
PROGRAM = """
import sys, threading, time
from sendkit.health import PROGRESS, supervised
from sendkit.logging import configure_logging

configure_logging("test", log_format="text")
with supervised("test-process") as shutdown:
    with PROGRESS.tracking("loop") as progress:
        progress.record(0, 0)
        print("looping", flush=True)
        shutdown.stop.wait()
        print("stop seen", flush=True)
        if sys.argv[1] == "stubborn":
            threading.Event().wait()
print("stopped cleanly", flush=True)
"""

GUARD_S = 60.0  # only against a hang: no assertion is about how long anything took


def start(
    mode: str, tmp_path: Path, timeout_s: float, heartbeat: Path | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "SEND_SHUTDOWN_TIMEOUT_SECONDS": str(timeout_s)}
    env.pop("SEND_HEARTBEAT_FILE", None)
    if heartbeat is not None:
        env["SEND_HEARTBEAT_FILE"] = str(heartbeat)
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "looping":
            return process
    process.kill()
    raise AssertionError(f"the program never started: {process.wait()}")


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=GUARD_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output


def test_sigterm_stops_the_loops_and_the_process_exits_0(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    process = start("polite", tmp_path, 30, heartbeat)
    beating = heartbeat.exists()

    process.send_signal(signal.SIGTERM)
    code, output = finish(process)

    assert code == 0, output
    assert beating
    assert "asked to stop by signal SIGTERM" in output
    assert "stopped cleanly" in output


def test_a_stop_that_overstays_its_timeout_exits_with_status_3(
    tmp_path: Path,
) -> None:
    process = start("stubborn", tmp_path, 1)

    process.send_signal(signal.SIGTERM)
    code, output = finish(process)

    assert code == EXIT_OVERDUE == 3, output
    assert "stop seen" in output
    assert "did not stop within 1 s" in output
    assert "stopped cleanly" not in output


def test_a_second_signal_ends_the_process_at_once(tmp_path: Path) -> None:
    process = start("stubborn", tmp_path, 600)
    assert process.stdout is not None

    process.send_signal(signal.SIGTERM)
    assert process.stdout.readline().strip() != ""  # the stop was logged...
    process.send_signal(signal.SIGINT)
    code, output = finish(process)

    assert code == EXIT_OVERDUE, output
    assert "got SIGINT again while stopping; exiting now" in output
    assert "did not stop within" not in output


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_shutdown_timeout_that_is_not_a_positive_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, timeout: str
) -> None:
    from pydantic import ValidationError

    from sendkit.health import HealthSettings

    monkeypatch.setenv("SEND_SHUTDOWN_TIMEOUT_SECONDS", timeout)

    with pytest.raises(ValidationError, match="SEND_SHUTDOWN_TIMEOUT_SECONDS"):
        HealthSettings()
