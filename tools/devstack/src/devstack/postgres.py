"""A throw-away PostgreSQL cluster on loopback, for tests and local runs.

``start_cluster`` makes a private temporary directory, runs ``initdb`` into it, starts
the server on a free port of 127.0.0.1 (its unix socket lives in the same directory)
and returns a ``PostgresCluster`` once a client can log in; ``stop`` ends the server
and removes the directory. ``python -m devstack.postgres run`` does the same from a
terminal and prints the DSN until Ctrl-C.

The server binaries come from ``POSTGRES_BIN_DIR`` when set, else from the newest
``/usr/lib/postgresql/<version>/bin`` (where Debian's ``postgresql`` package puts
them), else from ``pg_config --bindir`` or the ``PATH``. PostgreSQL refuses to run as
root, so when this process is root the cluster is run as the ``postgres`` system user
(``POSTGRES_RUN_AS`` names another); the directory is handed to that user.

The server is started directly rather than through ``pg_ctl start``, so that it is this
process's child: it is asked by ``PR_SET_PDEATHSIG`` to shut down at once (SIGQUIT) when
the thread that started it dies, which covers a launcher killed by SIGKILL, and every
live cluster is stopped at interpreter exit. ``stop`` sends SIGINT, the fast shutdown
``pg_ctl stop -m fast`` sends, then SIGQUIT and SIGKILL if the server lingers.

Clients log in over TCP as ``postgres`` with a random password drawn at start (local
socket connections are trusted, and the socket's directory is private to the cluster's
user). By default the cluster is not durable (``fsync``, ``synchronous_commit`` and
``full_page_writes`` off), which is right for a directory deleted after the run and
several times faster on a small machine; ``durable=True`` keeps PostgreSQL's defaults,
for measurements that should resemble production.

Known limit: a launcher killed outright stops its server (see above) but leaves the
server's ``sendkit-pg-*`` directory in the temporary folder; nothing removes it until
the system cleans that folder.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import psycopg

from devstack.kafka_config import LOOPBACK, free_port

log = logging.getLogger("devstack.postgres")

INSTALL_HINT = (
    "install the PostgreSQL server (Debian: `apt-get install -y postgresql`) or point "
    "POSTGRES_BIN_DIR at a folder holding `postgres` and `initdb`"
)
SUPERUSER = "postgres"
DEFAULT_READY_TIMEOUT_S = 60.0
DEFAULT_STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 30
START_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1
_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_PORT_TAKEN = re.compile(r"could not bind IPv4 address|Address already in use")

# Settings for a cluster nobody keeps: nothing is forced to disk.
NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresLauncherError(Exception):
    """Root of the launcher's errors; every message says how to fix the problem."""


class PostgresNotInstalled(PostgresLauncherError):
    """No PostgreSQL server binaries were found."""


class ClusterStartError(PostgresLauncherError):
    """``initdb`` failed or the server did not accept a login in time."""


# -- finding the binaries --------------------------------------------------------------


def find_bin_dir() -> Path:
    """The folder holding ``postgres`` and ``initdb``; ``PostgresNotInstalled`` if
    there is none."""
    configured = os.environ.get("POSTGRES_BIN_DIR", "").strip()
    if configured:
        # A folder named on purpose is the only one looked at.
        if _is_bin_dir(Path(configured)):
            return Path(configured)
        raise PostgresNotInstalled(
            f"POSTGRES_BIN_DIR={configured} holds no executable `postgres` and "
            f"`initdb`: {INSTALL_HINT}"
        )
    candidates: list[Path] = []
    if _DEBIAN_ROOT.is_dir():
        versions = [p for p in _DEBIAN_ROOT.iterdir() if p.name.isdigit()]
        candidates += [
            p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)
        ]
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    on_path = shutil.which("postgres")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)

    for folder in candidates:
        if _is_bin_dir(folder):
            return folder
    raise PostgresNotInstalled(
        f"no PostgreSQL server found on this machine: {INSTALL_HINT}"
    )


def _is_bin_dir(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in ("postgres", "initdb"))


def server_version(bin_dir: Path) -> str:
    """``postgres --version`` of the binaries in ``bin_dir``, e.g. ``15.18``."""
    result = subprocess.run(
        [str(bin_dir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"(\d+(?:\.\d+)+)", result.stdout)
    return found.group(1) if found else result.stdout.strip()


# -- the cluster -----------------------------------------------------------------------


class PostgresCluster:
    """One server this launcher started: where it listens, how to log in and stop."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        home: Path,
        port: int,
        password: str,
        version: str,
        initdb_seconds: float,
        ready_seconds: float,
    ) -> None:
        self.process = process
        self.home = home
        self.port = port
        self.password = password
        self.version = version
        self.initdb_seconds = initdb_seconds
        self.ready_seconds = ready_seconds
        self._stop_lock = threading.Lock()
        self._stopped = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def start_seconds(self) -> float:
        """From ``initdb`` to the first successful login."""
        return self.initdb_seconds + self.ready_seconds

    def dsn(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL logging in as the superuser to ``database``."""
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@{LOOPBACK}:"
            f"{self.port}/{quote(database, safe='')}"
        )

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log_file, lines)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Fast shutdown (SIGINT), escalating after ``timeout``; removes the directory.

        Safe to call more than once and from ``atexit``.
        """
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            _LIVE_CLUSTERS.discard(self)
            started = time.monotonic()
            _end_server(self.process, timeout)
            shutil.rmtree(self.home, ignore_errors=True)
        log.info(
            "postgres stopped in %.1fs (pid %d, exit %s)",
            time.monotonic() - started,
            self.pid,
            self.process.returncode,
            extra={"pid": self.pid, "exit_code": self.process.returncode},
        )

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostgresCluster(port={self.port}, pid={self.pid}, home={self.home})"


_LIVE_CLUSTERS: set[PostgresCluster] = set()


@atexit.register
def _stop_live_clusters() -> None:
    for cluster in list(_LIVE_CLUSTERS):
        cluster.stop()


def start_cluster(
    *,
    port: int | None = None,
    durable: bool = False,
    settings: Mapping[str, str] | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT_S,
    parent_dir: Path | None = None,
) -> PostgresCluster:
    """Initialise and start a fresh cluster; return it once a client can log in.

    ``settings`` are extra server settings (``{"max_connections": "300"}``), given as
    ``-c`` options. The directory is made under ``parent_dir`` (the system's temporary
    folder by default). Raises ``PostgresNotInstalled`` or ``ClusterStartError`` (with
    the tail of the server's log); nothing is left running or on disk then.
    """
    bin_dir = find_bin_dir()
    version = server_version(bin_dir)
    owner = _cluster_user()
    home = Path(tempfile.mkdtemp(prefix="sendkit-pg-", dir=parent_dir))
    try:
        password = secrets.token_urlsafe(18)
        started = time.monotonic()
        _initdb(bin_dir, home, owner, password)
        initialised = time.monotonic() - started
        attempt = 1
        while True:
            chosen = port or free_port()
            try:
                cluster = _start_server(
                    bin_dir,
                    home,
                    owner,
                    port=chosen,
                    password=password,
                    version=version,
                    settings={
                        **({} if durable else NOT_DURABLE),
                        **(settings or {}),
                    },
                    ready_timeout=ready_timeout,
                )
            except _PortTaken:
                # Another process took the port between our probe and the bind.
                if port is not None or attempt >= START_ATTEMPTS:
                    raise
                attempt += 1
                continue
            break
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    cluster.initdb_seconds = initialised
    log.info(
        "postgres %s ready on %s:%d in %.1fs (initdb %.1fs, start %.1fs)",
        version,
        LOOPBACK,
        cluster.port,
        cluster.start_seconds,
        cluster.initdb_seconds,
        cluster.ready_seconds,
        extra={
            "port": cluster.port,
            "pid": cluster.pid,
            "home": str(home),
            "initdb_seconds": round(cluster.initdb_seconds, 2),
            "ready_seconds": round(cluster.ready_seconds, 2),
        },
    )
    return cluster


class _PortTaken(ClusterStartError):
    pass


def _cluster_user() -> pwd.struct_passwd | None:
    """The user the server runs as: None (this user) unless this process is root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("POSTGRES_RUN_AS", "").strip() or "postgres"
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ClusterStartError(
            f"PostgreSQL refuses to run as root and there is no user {name!r} to run "
            "it as: install Debian's postgresql package (which creates `postgres`), "
            "set POSTGRES_RUN_AS to an unprivileged user, or run the tests as one"
        ) from None


def _uid(owner: pwd.struct_passwd | None) -> int | None:
    return None if owner is None else owner.pw_uid


def _gid(owner: pwd.struct_passwd | None) -> int | None:
    return None if owner is None else owner.pw_gid


def _groups(owner: pwd.struct_passwd | None) -> list[int] | None:
    # Root's supplementary groups must not follow it into the cluster's user.
    return None if owner is None else []


def _initdb(
    bin_dir: Path, home: Path, owner: pwd.struct_passwd | None, password: str
) -> None:
    password_file = home / "password"
    password_file.write_text(password + "\n")
    if owner is not None:
        for path in (home, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    command = [
        str(bin_dir / "initdb"),
        *("-D", str(home / "data")),
        *("-U", SUPERUSER, f"--pwfile={password_file}"),
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        *("--encoding=UTF8", "--locale=C"),
        # The directory is deleted after the run; waiting for the disk buys nothing.
        "--no-sync",
        "--no-instructions",
    ]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            cwd=home,
            stdin=subprocess.DEVNULL,
            user=_uid(owner),
            group=_gid(owner),
            extra_groups=_groups(owner),
        )
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ClusterStartError(
            f"initdb failed (exit {result.returncode}) in {home}; check that the "
            f"temporary folder is writable by the cluster's user. initdb said:\n"
            f"{_last_lines(result.stdout + result.stderr, LOG_TAIL_LINES)}"
        )


def _start_server(
    bin_dir: Path,
    home: Path,
    owner: pwd.struct_passwd | None,
    *,
    port: int,
    password: str,
    version: str,
    settings: Mapping[str, str],
    ready_timeout: float,
) -> PostgresCluster:
    server_settings = {
        "listen_addresses": LOOPBACK,
        "port": str(port),
        "unix_socket_directories": str(home),
        "max_connections": "200",
        **settings,
    }
    command = [str(bin_dir / "postgres"), "-D", str(home / "data")]
    for name, value in server_settings.items():
        command += ["-c", f"{name}={value}"]

    log_file = home / "server.log"
    offset = log_file.stat().st_size if log_file.exists() else 0
    with log_file.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=home,
            start_new_session=True,  # a Ctrl-C in the terminal reaches Python only
            preexec_fn=_die_with_parent(signal.SIGQUIT),
            user=_uid(owner),
            group=_gid(owner),
            extra_groups=_groups(owner),
        )
    cluster = PostgresCluster(
        process=process,
        home=home,
        port=port,
        password=password,
        version=version,
        initdb_seconds=0.0,
        ready_seconds=0.0,
    )
    _LIVE_CLUSTERS.add(cluster)
    started = time.monotonic()
    try:
        _wait_until_ready(cluster, ready_timeout, offset)
    except BaseException:
        _LIVE_CLUSTERS.discard(cluster)
        _end_server(process, DEFAULT_STOP_TIMEOUT_S)
        raise
    cluster.ready_seconds = time.monotonic() - started
    return cluster


def _wait_until_ready(cluster: PostgresCluster, timeout: float, offset: int) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if not cluster.is_running():
            text = _read_from(cluster.log_file, offset)
            kind = _PortTaken if _PORT_TAKEN.search(text) else ClusterStartError
            raise kind(
                f"postgres exited with code {cluster.process.returncode} before it "
                f"accepted a login on port {cluster.port}. Its log said:\n"
                f"{_last_lines(text, LOG_TAIL_LINES)}"
            )
        try:
            with psycopg.connect(cluster.dsn(), connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError as error:
            last_error = error
        if time.monotonic() > deadline:
            raise ClusterStartError(
                f"postgres did not accept a login on {LOOPBACK}:{cluster.port} within "
                f"{timeout:.0f}s (last error: {last_error}); its log said:\n"
                f"{_last_lines(_read_from(cluster.log_file, offset), LOG_TAIL_LINES)}"
            )
        time.sleep(0.05)


def _die_with_parent(death_signal: signal.Signals) -> Callable[[], None]:
    """A ``preexec_fn`` asking Linux to signal the child when this thread dies.

    Python runs it after switching to the cluster's user, which matters: a change of
    user clears the parent-death signal.
    """
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        log.warning(
            "prctl is unavailable; a killed launcher may leave postgres running"
        )
        return lambda: None

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody will signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return in_child


def _end_server(process: subprocess.Popen[bytes], timeout: float) -> None:
    # SIGINT is the fast shutdown: clients are disconnected, nothing is waited for.
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            log.warning(
                "postgres ignored %s for %.0fs; escalating",
                sig.name,
                timeout,
                extra={"pid": process.pid},
            )


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int) -> str:
    return _last_lines(_read_from(path, 0), lines)


def _last_lines(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# -- command line ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m devstack.postgres run``: a cluster until Ctrl-C, DSN on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.postgres",
        description="Run a throw-away PostgreSQL cluster on loopback.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start a cluster and keep it until Ctrl-C")
    run.add_argument("--port", type=int, default=None)
    run.add_argument(
        "--durable", action="store_true", help="keep fsync and synchronous commit on"
    )
    commands.add_parser("which", help="print the server binaries' folder and version")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    try:
        if arguments.command == "which":
            folder = find_bin_dir()
            print(f"{folder} (PostgreSQL {server_version(folder)})")
            return 0
        cluster = start_cluster(port=arguments.port, durable=arguments.durable)
    except PostgresLauncherError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    print(cluster.dsn(), flush=True)
    try:
        while not stopped.wait(1.0) and cluster.is_running():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
