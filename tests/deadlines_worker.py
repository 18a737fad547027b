"""The deadlines worker as a process of its own, for the tests that drive it end to end.

``DeadlinesWorker(env)`` starts ``python -m deadlines worker`` with ``env`` added to
this process's environment (the broker, an application id and a topic prefix of the
test's own), collects its output on a thread, ``wait_ready()`` returns once it says it
is ready (or fails with its last lines), ``tail()`` gives those lines for a failing
test's report, and ``stop()`` sends SIGTERM and, if it overstays, kills its process
group. Imported by module name (``from deadlines_worker import DeadlinesWorker``):
``tests/`` is on the path, as for ``auth_fixtures``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from deadlines.entrypoints.worker import READY_MESSAGE

# Guards against a hang only; nothing asserts how long anything took.
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


class DeadlinesWorker:
    """``python -m deadlines worker``, its output kept for a failing test's report."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        ready_timeout_s: float = READY_TIMEOUT_S,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deadlines", "worker"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY_MESSAGE in line:
                self.ready.set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "the deadlines worker did not get ready:\n" + self.tail()
                )

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.lines[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(self.stop_timeout_s)
        self._reader.join(5)
