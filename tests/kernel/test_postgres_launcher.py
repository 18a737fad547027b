"""The throw-away PostgreSQL launcher and the fixtures built on it: a private cluster
on loopback that dies with its launcher, and tests that fail, not skip, without one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import (
    PostgresNotInstalled,
    find_bin_dir,
    start_cluster,
)

TESTS = Path(__file__).resolve().parents[1]
DEADLINE_S = 60.0


def is_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting to be reaped counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_a_cluster_listens_on_loopback_with_a_password_and_is_removed_on_stop() -> None:
    cluster = start_cluster()
    try:
        with psycopg.connect(cluster.dsn()) as db:
            settings = dict(
                db.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN"
                    " ('listen_addresses', 'fsync', 'synchronous_commit', 'port')"
                ).fetchall()
            )
        wrong = cluster.dsn().replace(cluster.password, "not-the-password")
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(wrong).close()
        socket = cluster.socket_dir / f".s.PGSQL.{cluster.port}"
        assert socket.exists()
        assert cluster.is_running()
    finally:
        cluster.stop()

    assert settings == {
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "synchronous_commit": "off",
        "port": str(cluster.port),
    }
    assert not cluster.is_running()
    assert not cluster.home.exists()
    cluster.stop()  # a second stop is harmless


def test_a_durable_cluster_keeps_postgresqls_defaults() -> None:
    with start_cluster(durable=True) as cluster, psycopg.connect(cluster.dsn()) as db:
        row = db.execute("SELECT current_setting('fsync')").fetchone()

    assert row == ("on",)


LAUNCH_AND_WAIT = """
import sys, time
from devstack.postgres import start_cluster
cluster = start_cluster()
print(cluster.pid, cluster.home, flush=True)
time.sleep(600)
"""


def test_the_server_dies_with_a_launcher_killed_outright(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCH_AND_WAIT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert launcher.stdout is not None
        line = launcher.stdout.readline().split()
        assert line, "the launcher printed nothing"
        server_pid, home = int(line[0]), Path(line[1])
        assert not is_gone(server_pid)

        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + DEADLINE_S
        while not is_gone(server_pid):
            if time.monotonic() > deadline:
                os.kill(server_pid, signal.SIGKILL)
                raise AssertionError("postgres outlived its killed launcher")
            time.sleep(0.05)
    finally:
        launcher.kill()
        launcher.wait()
        if launcher.stdout is not None:
            launcher.stdout.close()
    # The known limit: the directory stays behind; this test tidies it.
    subprocess.run(["rm", "-rf", str(home)], check=True)


def test_a_bin_dir_without_postgres_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTGRES_BIN_DIR", str(tmp_path))

    with pytest.raises(PostgresNotInstalled, match=r"apt-get install -y postgresql"):
        find_bin_dir()


def run_pytest_with(
    tmp_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run one test that needs PostgreSQL in a separate pytest, with ``env``."""
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        'pytest_plugins = ["postgres_fixture"]\n'
    )
    (tmp_path / "test_needs_postgres.py").write_text(
        "def test_it(postgres_database):\n    pass\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    clean = {k: v for k, v in os.environ.items() if k != "POSTGRES_DSN"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA"],
        cwd=tmp_path,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S * 2,
        check=False,
    )


def test_without_postgresql_a_test_fails_and_says_how_to_install_it(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "no-binaries"
    empty.mkdir()

    result = run_pytest_with(tmp_path, {"POSTGRES_BIN_DIR": str(empty)})

    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout
    assert "skipped" not in result.stdout
    assert "apt-get install -y postgresql" in result.stdout


def test_an_unreachable_postgres_dsn_fails_the_test(tmp_path: Path) -> None:
    from devstack.kafka_config import free_port

    dsn = f"postgresql://u:p@127.0.0.1:{free_port()}/x?connect_timeout=2"

    result = run_pytest_with(tmp_path, {"POSTGRES_DSN": dsn})

    assert result.returncode == 1, result.stdout
    assert "POSTGRES_DSN is set but the server does not answer" in result.stdout
