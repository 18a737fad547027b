"""Start, watch and stop the platform's processes for `make run` and end-to-end tests.

Each process runs in its own process group with its output in a log file under the run
directory, so a person can read what each one said. A process counts as up when its
readiness probe answers (an HTTP URL returning 200, or a line in its log); if it exits
first, the start fails at once with the tail of its log. A log is kept across runs
(``--keep-data``), so only what this start wrote to it counts: the ready line, and
the tail shown when a start fails, are looked for after the size the log had when the
process started. ``Stack.start_all`` starts a
group of processes that need nothing of each other side by side and waits for them
all. Stopping sends SIGTERM to the group, waits, then sends SIGKILL, so nothing is
left behind. Should the supervisor itself be killed outright, Linux sends each child
SIGTERM (``PR_SET_PDEATHSIG``), so they stop as they would at Ctrl-C; that guard is
tied to the thread that started the child, so start processes from the main thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT_S = 90.0
DEFAULT_STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 30
PR_SET_PDEATHSIG = 1


def exit_status(returncode: int | None) -> str:
    """How a process ended, in words: ``exited with code 3``, ``was killed by ...``."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (exit status {returncode})"
    return f"exited with code {returncode}"


class ProcessStartError(RuntimeError):
    """A process exited, or did not become ready, while it was being started."""


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How to run one process and how to tell that it is ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    ready_log_line: str | None = None
    cwd: Path | None = None
    # A process that shuts something down in turn (the Kafka launcher stops its JVM,
    # waiting up to 30 s) needs longer than the default before SIGKILL.
    stop_timeout: float = DEFAULT_STOP_TIMEOUT_S


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _terminated_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux for SIGTERM when this thread dies, if it can."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would tell us.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


class ManagedProcess:
    """One running process of a ``Stack``."""

    def __init__(self, spec: ProcessSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self._log_file = log_path.open("ab")
        # Appended to across runs: an earlier run's ready line must not count now.
        self._log_start = self._log_file.tell()
        self.process = subprocess.Popen(
            list(spec.argv),
            env={**os.environ, **spec.env},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=spec.cwd,
            start_new_session=True,
            preexec_fn=_terminated_with_parent(),
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        """What this process has written to its log (not what earlier runs left)."""
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(self._log_start)
                return log_file.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def is_ready(self) -> bool:
        if self.spec.ready_url is not None:
            try:
                # The stack builds every probe URL itself, on loopback.
                probe = self.spec.ready_url
                with urllib.request.urlopen(probe, timeout=2) as answer:  # noqa: S310
                    return bool(answer.status == 200)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False
        if self.spec.ready_log_line is not None:
            return self.spec.ready_log_line in self.log_text()
        return True

    def wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            self.check_starting(deadline, timeout)
            time.sleep(0.2)

    def check_starting(self, deadline: float, timeout: float) -> None:
        """Raise ``ProcessStartError`` if it has exited, or ``deadline`` has passed."""
        if not self.running:
            raise ProcessStartError(
                f"{self.spec.name} {exit_status(self.process.returncode)} "
                f"before it was ready; the end of {self.log_path}:\n"
                f"{self.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise ProcessStartError(
                f"{self.spec.name} was not ready after {timeout:.0f} s; "
                f"the end of {self.log_path}:\n{self.log_tail()}"
            )

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float | None = None) -> None:
        timeout = self.spec.stop_timeout if timeout is None else timeout
        if self.running:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "process did not stop in time", extra={"component": self.spec.name}
                )
                self.signal(signal.SIGKILL)
                self.process.wait(timeout)
        # A child that outlived its group leader is killed with the group as well.
        self.signal(signal.SIGKILL)
        self._log_file.close()


class Stack:
    """Processes started in order and stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[ManagedProcess] = []

    def start(
        self, spec: ProcessSpec, timeout: float = DEFAULT_START_TIMEOUT_S
    ) -> ManagedProcess:
        managed = ManagedProcess(spec, self.log_dir / f"{spec.name}.log")
        self.processes.append(managed)
        managed.wait_until_ready(timeout)
        log.info(
            "process ready", extra={"component": spec.name, "pid": managed.process.pid}
        )
        return managed

    def start_all(
        self, specs: Sequence[ProcessSpec], timeout: float = DEFAULT_START_TIMEOUT_S
    ) -> list[tuple[ManagedProcess, float]]:
        """Start every process of ``specs`` at once, then wait until each is ready.

        Processes that do not need each other start side by side, so their imports
        and connections overlap instead of queueing. Returns each process with the
        seconds it took to be ready; raises ``ProcessStartError`` as soon as one
        exits, or when one is not ready within ``timeout`` (the rest keep running
        until ``stop()``).
        """
        started = time.monotonic()
        deadline = started + timeout
        group: list[ManagedProcess] = []
        for spec in specs:
            managed = ManagedProcess(spec, self.log_dir / f"{spec.name}.log")
            self.processes.append(managed)
            group.append(managed)
        ready: dict[str, float] = {}
        while len(ready) < len(group):
            for managed in group:
                if managed.spec.name in ready:
                    continue
                if managed.is_ready():
                    ready[managed.spec.name] = time.monotonic() - started
                    log.info(
                        "process ready",
                        extra={
                            "component": managed.spec.name,
                            "pid": managed.process.pid,
                        },
                    )
                    continue
                managed.check_starting(deadline, timeout)
            time.sleep(0.2)
        return [(managed, ready[managed.spec.name]) for managed in group]

    def stopped(self) -> str | None:
        """What became of the first process that is no longer running, or None.

        The answer names the process, its pid and its exit status (a signal by name)
        and quotes the end of its log; a supervisor checks this while it waits on the
        stack, so a process that died is reported as itself rather than as the
        silence it leaves.
        """
        for managed in self.processes:
            if not managed.running:
                return (
                    f"{managed.spec.name} (pid {managed.process.pid}) "
                    f"{exit_status(managed.process.returncode)}; the end of "
                    f"{managed.log_path}:\n{managed.log_tail()}"
                )
        return None

    def check_alive(self) -> None:
        """Raise ``ProcessStartError`` if a process of the stack has stopped."""
        stopped = self.stopped()
        if stopped is not None:
            raise ProcessStartError(f"a process stopped unexpectedly: {stopped}")

    def stop(self) -> None:
        for managed in reversed(self.processes):
            try:
                managed.stop()
            except OSError as error:
                # One process that cannot be stopped must not keep the rest running.
                log.error(
                    "could not stop a process: %s",
                    error,
                    extra={"component": managed.spec.name},
                )
        self.processes.clear()

    def pids(self) -> dict[str, int]:
        """The process id of each process started, by name."""
        return {managed.spec.name: managed.process.pid for managed in self.processes}

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
