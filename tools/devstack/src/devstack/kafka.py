"""A real Apache Kafka broker for development and tests, run from Maven Central's jars.

``fetch_jars`` copies the broker's class path (``tools/kafka/pom.xml``) into the
git-ignored ``.cache/kafka-<version>/libs`` once; ``start_broker`` formats KRaft storage
and runs one combined broker and controller on 127.0.0.1, waits until a TCP connect and
an admin metadata round trip both succeed, and returns a ``KafkaBroker`` whose ``stop``
ends the JVM (SIGTERM, then SIGKILL after 30 s). The same code serves ``make run``
(``python -m devstack.kafka run``) and the tests' ``kafka_bootstrap`` fixture.

No JVM outlives its launcher: each runs in its own process group (so a Ctrl-C in the
terminal reaches Python, which stops it in order), every live broker is stopped at
interpreter exit, and the JVM is asked by ``PR_SET_PDEATHSIG`` to die with the Python
thread that started it, which covers a launcher killed by SIGKILL. That last guard is
Linux-only and is tied to the starting thread, so start brokers from a thread that
lives as long as they should (the main thread, as pytest and the CLI do). A launcher
killed outright leaves its run directory on disk; the next start in the same checkout
removes such directories once no process uses them.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol

from kafka.errors import KafkaError

from devstack.kafka_config import (
    BROKER_GC,
    BROKER_HEAP,
    KAFKA_VERSION,
    LOOPBACK,
    TOOL_JVM,
    BrokerLayout,
    broker_log4j2_properties,
    free_port,
    new_cluster_id,
    render_properties,
    server_properties,
    tools_log4j2_properties,
)
from devstack.kafka_errors import BrokerStartError, JarFetchError, KafkaLauncherError
from devstack.kafka_topics import create_project_topics, describe_cluster

log = logging.getLogger("devstack.kafka")

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# Jars every broker needs; a copy without them is incomplete whatever Maven said.
REQUIRED_JARS = (f"kafka_2.13-{KAFKA_VERSION}.jar", "log4j-slf4j-impl-")
NOT_ON_CLASS_PATH = ("-test.jar", "-sources.jar", "-javadoc.jar", "-scaladoc.jar")
COMPLETE_MARKER = ".complete"
LOG_TAIL_LINES = 40
ERROR_CONTEXT_LINES = 12
_ERROR_LINE = re.compile(r"\] (ERROR|FATAL) |^Error: |^Exception in thread ")
DEFAULT_READY_TIMEOUT_S = 120.0
DEFAULT_STOP_TIMEOUT_S = 30.0
PORT_IN_USE = "Address already in use"
START_ATTEMPTS = 3
# An ephemeral run directory with no broker pid yet is young: a launcher is filling it.
STALE_AFTER_S = 600.0
PR_SET_PDEATHSIG = 1


def repo_root() -> Path:
    """The checkout this package lives in: the nearest folder holding the Kafka POM."""
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "tools" / "kafka" / "pom.xml").is_file():
                return folder
    raise KafkaLauncherError(
        "cannot find tools/kafka/pom.xml above this package or the current directory; "
        "run from a checkout of the project"
    )


def cache_home(root: Path | None = None) -> Path:
    return (root or repo_root()) / ".cache" / f"kafka-{KAFKA_VERSION}"


# -- fetching the class path -----------------------------------------------------------


def fetch_jars(
    *, root: Path | None = None, mvn: str = "mvn", force: bool = False
) -> Path:
    """The folder of the broker's jars, fetched with Maven unless a full copy exists.

    A copy is complete when its marker names the POM it came from, so editing the POM
    fetches again. Maven copies into a private folder that is renamed into place, and a
    file lock keeps two launchers from fetching at once.
    """
    root = root or repo_root()
    pom = root / "tools" / "kafka" / "pom.xml"
    home = cache_home(root)
    libs = home / "libs"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if not force and _is_complete(libs, digest):
        return libs

    home.mkdir(parents=True, exist_ok=True)
    with _file_lock(home / ".fetch.lock"):
        if not force and _is_complete(libs, digest):
            return libs
        partial = home / f"libs.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            seconds = _run_maven(mvn, pom, partial)
            _check_copy(partial)
            (partial / COMPLETE_MARKER).write_text(digest + "\n")
            if libs.exists():
                retired = home / f"libs.old-{os.getpid()}-{uuid.uuid4().hex[:6]}"
                libs.rename(retired)
                shutil.rmtree(retired, ignore_errors=True)
            partial.rename(libs)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    jars = len(list(libs.glob("*.jar")))
    log.info(
        "kafka jars fetched: %d jars in %.1fs",
        jars,
        seconds,
        extra={"libs": str(libs), "jars": jars, "seconds": round(seconds, 2)},
    )
    return libs


def class_path(libs: Path) -> str:
    """Every jar in ``libs``, in a stable order, filtered as upstream's script does."""
    jars = sorted(
        path
        for path in libs.glob("*.jar")
        if not any(path.name.endswith(suffix) for suffix in NOT_ON_CLASS_PATH)
    )
    return os.pathsep.join(str(path) for path in jars)


def _is_complete(libs: Path, digest: str) -> bool:
    marker = libs / COMPLETE_MARKER
    return marker.is_file() and marker.read_text().strip() == digest


def _run_maven(mvn: str, pom: Path, output: Path) -> float:
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output}",
    ]
    started = time.monotonic()
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise JarFetchError(
            f"{mvn!r} is not installed; install Maven and Java 17 "
            "(apt-get install maven openjdk-17-jdk-headless)"
        ) from error
    if result.returncode != 0:
        tail = _tail_text(result.stdout + result.stderr, LOG_TAIL_LINES)
        raise JarFetchError(
            f"Maven could not fetch the Kafka {KAFKA_VERSION} jars (exit "
            f"{result.returncode}); check that Maven Central is reachable. "
            "Maven said:\n"
            f"{tail}"
        )
    return time.monotonic() - started


def _check_copy(libs: Path) -> None:
    names = [path.name for path in libs.glob("*.jar")]
    missing = [
        jar for jar in REQUIRED_JARS if not any(n.startswith(jar) for n in names)
    ]
    if missing:
        raise JarFetchError(
            f"Maven's copy in {libs} lacks {', '.join(missing)}; "
            "check tools/kafka/pom.xml"
        )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the broker process ----------------------------------------------------------------


class KafkaBroker:
    """One broker JVM this launcher started, its address, and how to stop it."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        layout: BrokerLayout,
        port: int,
        controller_port: int,
        cluster_id: str,
        ephemeral: bool,
        format_seconds: float,
        ready_seconds: float,
        log_offset: int = 0,
    ) -> None:
        self.process = process
        self.layout = layout
        self.port = port
        self.controller_port = controller_port
        self.cluster_id = cluster_id
        self.ephemeral = ephemeral
        self.format_seconds = format_seconds
        self.ready_seconds = ready_seconds
        # Where this JVM's output starts in a console log kept across restarts.
        self.log_offset = log_offset
        self._stop_lock = threading.Lock()
        self._stopped = False

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def run_dir(self) -> Path:
        return self.layout.run_dir

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines this JVM wrote to its console log."""
        return _tail_text(_read_log(self.layout.console_log, self.log_offset), lines)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """End the JVM: SIGTERM (a controlled shutdown), then SIGKILL after ``timeout``.

        Safe to call more than once and from ``atexit``; an ephemeral run directory is
        removed afterwards.
        """
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            _LIVE_BROKERS.discard(self)
            started = time.monotonic()
            _end_process(self.process, timeout)
            self.layout.pid_file.unlink(missing_ok=True)
            if self.ephemeral:
                shutil.rmtree(self.run_dir, ignore_errors=True)
        log.info(
            "kafka broker stopped in %.1fs (pid %d, exit %s)",
            time.monotonic() - started,
            self.pid,
            self.process.returncode,
            extra={"pid": self.pid, "exit_code": self.process.returncode},
        )

    def __enter__(self) -> KafkaBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaBroker(bootstrap={self.bootstrap_servers!r}, pid={self.pid})"


_LIVE_BROKERS: set[KafkaBroker] = set()


@atexit.register
def _stop_live_brokers() -> None:
    for broker in list(_LIVE_BROKERS):
        broker.stop()


def start_broker(
    *,
    run_dir: Path | None = None,
    port: int | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
    overrides: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> KafkaBroker:
    """Start one broker and return it once it answers metadata requests.

    Without ``run_dir`` the broker gets a fresh directory under ``.run/kafka-ephemeral``
    that ``stop`` removes. A given ``run_dir`` is kept: a second start there reuses its
    storage, cluster id and controller port (and its broker port unless ``port`` is
    given). ``overrides`` replace lines of the generated ``server.properties``. Raises
    ``BrokerStartError``, with the tail of the broker's log, if the JVM exits or is not
    ready within ``ready_timeout`` seconds; the JVM is gone by then.
    """
    root = root or repo_root()
    libs = fetch_jars(root=root)
    java = _java_executable()
    ephemeral = run_dir is None
    if run_dir is None:
        run_dir = _new_ephemeral_run_dir(root)
    layout = BrokerLayout(run_dir.resolve())
    _refuse_if_running(layout)

    attempt = 1
    while True:
        plan = _plan_start(layout, port)
        try:
            broker = _start_once(
                layout,
                java=java,
                classpath=class_path(libs),
                plan=plan,
                ephemeral=ephemeral,
                ready_timeout=ready_timeout,
                overrides=overrides or {},
            )
        except _PortTaken as error:
            # Another process took a port between our probe and the broker's bind. Only
            # ports picked for a fresh storage can be picked again.
            if not plan.fresh or port is not None or attempt >= START_ATTEMPTS:
                _discard_failed(layout, ephemeral)
                raise BrokerStartError(str(error)) from None
            log.warning("kafka ports taken meanwhile; retrying with others")
            _forget_storage(layout)
            attempt += 1
            continue
        except BaseException:
            _discard_failed(layout, ephemeral)
            raise
        return broker


class _PortTaken(BrokerStartError):
    pass


@dataclass(frozen=True, slots=True)
class _StartPlan:
    """The identity and ports a start will use, fresh or read back from the run dir."""

    cluster_id: str
    port: int
    controller_port: int
    fresh: bool


def _plan_start(layout: BrokerLayout, port: int | None) -> _StartPlan:
    state = _read_state(layout)
    if layout.meta_properties.exists():
        if state is None:
            raise BrokerStartError(
                f"{layout.data_dir} holds formatted Kafka storage the launcher did not "
                f"make (no {layout.state_file.name}); delete {layout.run_dir} or pick "
                "another KAFKA_RUN_DIR"
            )
        return _StartPlan(
            cluster_id=state["cluster_id"],
            port=port or state["port"],
            controller_port=state["controller_port"],
            fresh=False,
        )
    _forget_storage(layout)
    broker_port = port or free_port()
    return _StartPlan(
        cluster_id=new_cluster_id(),
        port=broker_port,
        controller_port=free_port(exclude={broker_port}),
        fresh=True,
    )


def _start_once(
    layout: BrokerLayout,
    *,
    java: str,
    classpath: str,
    plan: _StartPlan,
    ephemeral: bool,
    ready_timeout: float,
    overrides: Mapping[str, str],
) -> KafkaBroker:
    for folder in (layout.data_dir, layout.logs_dir, layout.tmp_dir):
        folder.mkdir(parents=True, exist_ok=True)
    config = server_properties(
        port=plan.port,
        controller_port=plan.controller_port,
        data_dir=layout.data_dir,
        overrides=overrides,
    )
    layout.server_properties.write_text(render_properties(config))
    layout.log4j_properties.write_text(broker_log4j2_properties(layout.server_log))
    layout.tools_log4j_properties.write_text(tools_log4j2_properties())

    started = time.monotonic()
    if plan.fresh:
        _format_storage(
            layout, java=java, classpath=classpath, cluster_id=plan.cluster_id
        )
        _write_state(layout, plan)
    formatted = time.monotonic()

    log_offset = layout.console_log.stat().st_size if layout.console_log.exists() else 0
    process = _launch_jvm(layout, java=java, classpath=classpath, ephemeral=ephemeral)
    layout.pid_file.write_text(f"{process.pid}\n")
    broker = KafkaBroker(
        process=process,
        layout=layout,
        port=plan.port,
        controller_port=plan.controller_port,
        cluster_id=plan.cluster_id,
        ephemeral=ephemeral,
        format_seconds=formatted - started,
        ready_seconds=0.0,
        log_offset=log_offset,
    )
    _LIVE_BROKERS.add(broker)
    try:
        _wait_until_ready(broker, timeout=ready_timeout)
    except BaseException:
        _LIVE_BROKERS.discard(broker)
        _end_process(process, DEFAULT_STOP_TIMEOUT_S)
        raise
    broker.ready_seconds = time.monotonic() - formatted
    log.info(
        "kafka broker ready on %s in %.1fs (format %.1fs, start %.1fs)",
        broker.bootstrap_servers,
        broker.format_seconds + broker.ready_seconds,
        broker.format_seconds,
        broker.ready_seconds,
        extra={
            "bootstrap": broker.bootstrap_servers,
            "pid": process.pid,
            "run_dir": str(layout.run_dir),
            "format_seconds": round(broker.format_seconds, 2),
            "ready_seconds": round(broker.ready_seconds, 2),
        },
    )
    return broker


def _format_storage(
    layout: BrokerLayout, *, java: str, classpath: str, cluster_id: str
) -> None:
    command = [
        java,
        *TOOL_JVM,
        f"-Djava.io.tmpdir={layout.tmp_dir}",
        f"-Dlog4j2.configurationFile={layout.tools_log4j_properties}",
        "-cp",
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "--cluster-id",
        cluster_id,
        "--config",
        str(layout.server_properties),
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        cwd=layout.run_dir,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise BrokerStartError(
            f"formatting Kafka storage in {layout.data_dir} failed (exit "
            f"{result.returncode}); check {layout.server_properties}. The storage tool "
            f"said:\n{_tail_text(result.stdout + result.stderr, LOG_TAIL_LINES)}"
        )


def _launch_jvm(
    layout: BrokerLayout, *, java: str, classpath: str, ephemeral: bool
) -> subprocess.Popen[bytes]:
    command = [
        java,
        *BROKER_HEAP,
        *BROKER_GC,
        "-Djava.awt.headless=true",
        f"-Djava.io.tmpdir={layout.tmp_dir}",
        f"-Dkafka.logs.dir={layout.logs_dir}",
        f"-Dlog4j2.configurationFile={layout.log4j_properties}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(layout.server_properties),
    ]
    # A test broker's data is thrown away, so it may die hard; a kept one shuts down.
    death_signal = signal.SIGKILL if ephemeral else signal.SIGTERM
    with layout.console_log.open("ab") as console:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            cwd=layout.run_dir,
            start_new_session=True,
            preexec_fn=_die_with_parent(death_signal),
        )


def _die_with_parent(death_signal: signal.Signals) -> Callable[[], None]:
    """A ``preexec_fn`` asking Linux to send ``death_signal`` when this thread dies."""
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        log.warning("prctl is unavailable; a killed launcher may leave its JVM running")
        return lambda: None

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody will signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return in_child


def _wait_until_ready(broker: KafkaBroker, *, timeout: float) -> None:
    """Return once the broker port accepts a connection and answers a metadata request.

    Kafka opens its client port only after the broker is unfenced, so the connect alone
    is already meaningful; the round trip proves it is our cluster answering.
    """
    deadline = time.monotonic() + timeout
    waiting_for = "the broker port to accept connections"
    while True:
        code = broker.process.poll()
        if code is not None:
            raise _start_failure(broker, f"the broker exited with code {code}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _start_failure(
                broker, f"the broker was not ready after {timeout:.0f}s ({waiting_for})"
            )
        if _accepts_connections(broker.port):
            waiting_for = "an answer to a metadata request"
            try:
                cluster = describe_cluster(
                    broker.bootstrap_servers, timeout_s=max(1.0, min(5.0, remaining))
                )
            except KafkaError as error:
                waiting_for = f"an answer to a metadata request; last error {error!r}"
            else:
                if cluster.get("cluster_id") == broker.cluster_id:
                    return
                waiting_for = (
                    f"its own cluster id; {cluster.get('cluster_id')!r} answered on "
                    f"port {broker.port}"
                )
        time.sleep(0.2)


def _start_failure(broker: KafkaBroker, reason: str) -> BrokerStartError:
    # Stop first, so the log holds the JVM's last words and the port is free again.
    _end_process(broker.process, DEFAULT_STOP_TIMEOUT_S)
    text = _read_log(broker.layout.console_log, broker.log_offset)
    kind = _PortTaken if PORT_IN_USE in text else BrokerStartError
    return kind(
        f"Kafka did not start: {reason}. From {broker.layout.console_log}:\n"
        f"{failure_excerpt(text)}"
    )


def failure_excerpt(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a broker log, led by its first error if older.

    A broker that fails at start logs the cause once and then dozens of lines of orderly
    shutdown, so the tail alone often misses the one line that matters.
    """
    all_lines = text.rstrip().splitlines()
    tail_start = max(0, len(all_lines) - lines)
    first_error = next(
        (i for i, line in enumerate(all_lines) if _ERROR_LINE.search(line)), None
    )
    parts: list[str] = []
    if first_error is not None and first_error < tail_start:
        cause = all_lines[
            first_error : min(first_error + ERROR_CONTEXT_LINES, tail_start)
        ]
        parts += ["(first error)", *cause, "(...)", f"(last {lines} lines)"]
    parts += all_lines[tail_start:]
    return "\n".join(parts)


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) == 0


def _end_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    # The JVM leads its own process group, so this also reaches anything it spawned;
    # the pid cannot have been reused, as the process is not yet reaped.
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning(
            "kafka broker ignored SIGTERM for %.0fs; killing it",
            timeout,
            extra={"pid": process.pid},
        )
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerStartError(
            "no java on PATH (nor in JAVA_HOME); install Java 17, for example "
            "apt-get install openjdk-17-jdk-headless"
        )
    return found


# -- run directories -------------------------------------------------------------------


def _new_ephemeral_run_dir(root: Path) -> Path:
    parent = root / ".run" / "kafka-ephemeral"
    parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_run_dirs(parent)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = parent / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    BrokerLayout(run_dir).ephemeral_marker.write_text("removed when its broker stops\n")
    return run_dir


def _sweep_stale_run_dirs(parent: Path) -> None:
    """Remove ephemeral run dirs left by launchers that were killed outright."""
    for run_dir in parent.iterdir():
        layout = BrokerLayout(run_dir)
        if not layout.ephemeral_marker.exists():
            continue
        pid = _read_pid(layout)
        if pid is None:
            age = time.time() - run_dir.stat().st_mtime
            stale = age > STALE_AFTER_S
        else:
            stale = not _pid_runs_in(pid, layout.run_dir)
        if stale:
            shutil.rmtree(run_dir, ignore_errors=True)


def _refuse_if_running(layout: BrokerLayout) -> None:
    pid = _read_pid(layout)
    if pid is not None and _pid_runs_in(pid, layout.run_dir):
        raise BrokerStartError(
            f"a broker (pid {pid}) already runs in {layout.run_dir}; stop it first or "
            "pick another KAFKA_RUN_DIR"
        )


def _read_pid(layout: BrokerLayout) -> int | None:
    try:
        return int(layout.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_runs_in(pid: int, run_dir: Path) -> bool:
    """Whether ``pid`` is a live process whose command line names ``run_dir``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(run_dir).encode() in cmdline


def _read_state(layout: BrokerLayout) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        return None
    return state


def _write_state(layout: BrokerLayout, plan: _StartPlan) -> None:
    state = {
        "kafka_version": KAFKA_VERSION,
        "cluster_id": plan.cluster_id,
        "port": plan.port,
        "controller_port": plan.controller_port,
    }
    layout.state_file.write_text(json.dumps(state, indent=2) + "\n")


def _forget_storage(layout: BrokerLayout) -> None:
    shutil.rmtree(layout.data_dir, ignore_errors=True)
    layout.state_file.unlink(missing_ok=True)


def _discard_failed(layout: BrokerLayout, ephemeral: bool) -> None:
    layout.pid_file.unlink(missing_ok=True)
    if ephemeral:
        shutil.rmtree(layout.run_dir, ignore_errors=True)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read_log(path: Path, offset: int = 0) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"


# -- the command line ------------------------------------------------------------------


def _port_from_env() -> int | None:
    raw = os.environ.get("KAFKA_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise KafkaLauncherError(f"KAFKA_PORT={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def _run_dir_from_env(root: Path) -> Path:
    raw = os.environ.get("KAFKA_RUN_DIR", "").strip()
    return Path(raw) if raw else root / ".run" / "kafka"


STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
WATCH_INTERVAL_S = 0.5


class _Watched(Protocol):
    """What the launcher's watch loop needs of a broker (``KafkaBroker`` has it)."""

    @property
    def pid(self) -> int: ...

    def is_running(self) -> bool: ...

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str: ...


def _run(ready_timeout: float) -> int:
    stop_requested: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # Only note it: stopping here could interleave with the main loop's own stop.
        stop_requested.append(signum)

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, request_stop)

    root = repo_root()
    broker = start_broker(
        run_dir=_run_dir_from_env(root),
        port=_port_from_env(),
        ready_timeout=ready_timeout,
    )
    try:
        create_project_topics(broker.bootstrap_servers)
        print(broker.bootstrap_servers, flush=True)
        return _watch(broker, stop_requested)
    finally:
        broker.stop()


def _watch(broker: _Watched, stop_requested: list[int]) -> int:
    """Watch ``broker`` until a stop signal arrives (0) or it exits by itself (1).

    Which signal stopped the launcher, and who sent it, is logged: the launcher then
    exits 0, which the supervisor sees only as an unexpected stop. While watching,
    the stop signals are blocked and taken with ``sigtimedwait``, whose answer names
    the sender; one that came during the start reached ``stop_requested`` through the
    handler, which cannot tell who sent it. The broker's JVM was started before the
    signals were blocked, so it does not inherit the mask.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        while not stop_requested:
            if not broker.is_running():
                log.error(
                    "kafka broker exited by itself; its log ends:\n%s",
                    broker.log_tail(),
                    extra={"pid": broker.pid},
                )
                return 1
            received = signal.sigtimedwait(STOP_SIGNALS, WATCH_INTERVAL_S)
            if received is not None:
                _log_stop_signal(received.si_signo, received.si_pid, broker.pid)
                return 0
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _log_stop_signal(stop_requested[0], None, broker.pid)
    return 0


def _log_stop_signal(signum: int, sender: int | None, broker_pid: int) -> None:
    name = signal.Signals(signum).name
    if sender is None:
        who = "while the broker was starting (sender unknown)"
    elif sender == 0:
        who = "from the kernel (pid 0, such as a terminal's Ctrl-C)"
    else:
        who = f"from pid {sender} ({_command_line(sender)})"
    log.info(
        "kafka launcher received %s %s; stopping the broker",
        name,
        who,
        extra={"signal": name, "sender_pid": sender, "pid": broker_pid},
    )


def _command_line(pid: int) -> str:
    """The command line of ``pid``, shortened, or why it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "no longer running"
    shown = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return shown[:200] or "no command line"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.kafka",
        description=(
            f"Apache Kafka {KAFKA_VERSION} for development. Environment: KAFKA_PORT "
            "(broker port, default free or the one used last), KAFKA_RUN_DIR (default "
            ".run/kafka)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="fetch the broker jars into .cache/ and exit")
    run = commands.add_parser(
        "run",
        help="start the broker, create the topics, print its address, run until stopped"
        " (Ctrl-C or SIGTERM)",
    )
    run.add_argument("--ready-timeout", type=float, default=DEFAULT_READY_TIMEOUT_S)
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # kafka-python logs every connection at INFO; the launcher's own lines suffice.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        if args.command == "fetch":
            print(fetch_jars(), flush=True)
            return 0
        return _run(args.ready_timeout)
    except KafkaLauncherError as error:
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
