"""Each image's environment, built as its Dockerfile stage builds it, runs what it must.

With no Docker engine, the build stages are replayed here: their ``ENV`` settings, their
``COPY`` of build-context files (through .dockerignore) into a scratch folder, and their
``RUN uv sync ...`` commands with the machine's uv, into a scratch virtual environment.
Only the base image differs (this machine's Python 3.11 for the slim image's). Then
every process a rendered Deployment runs from that image is started from that
environment: HTTP APIs serve ``/healthz`` and ``/readyz`` and stop on SIGTERM; the
other processes import or print their usage. So an entry point that is missing, or a
dependency the service imports but its package does not declare, fails here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy_support import REPO, by_name, of_kind, render
from dockerfile_model import IgnoreRules, Stage, copy_parts, parse

from devstack.kafka_config import free_port

STAGES = {stage.name: stage for stage in parse((REPO / "Dockerfile").read_text())}
START_ATTEMPTS = 150
ATTEMPT_PAUSE_S = 0.2


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to replay the image builds: pip install uv==0.13.8")
    return uv


def _env_pairs(arguments: str) -> dict[str, str]:
    pairs = {}
    for word in shlex.split(arguments):
        key, _, value = word.partition("=")
        pairs[key] = value
    return pairs


def _copy_context(sources: list[str], destination: Path, rules: IgnoreRules) -> None:
    """Docker's COPY from the build context: files into a folder (or onto a name),
    folders' contents into the destination folder, minus what .dockerignore drops."""
    for source in sources:
        origin = REPO / source.rstrip("/")
        if origin.is_file():
            target = destination / origin.name if destination.is_dir() else destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
            continue
        for file in origin.rglob("*"):
            relative = file.relative_to(REPO).as_posix()
            if not file.is_file() or rules.ignored(relative):
                continue
            target = destination / file.relative_to(origin)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)


def _replay(stage: Stage, root: Path, env: dict[str, str], rules: IgnoreRules) -> None:
    workdir = root / "src"
    for instruction in stage.instructions:
        if instruction.keyword == "ENV":
            env.update(_env_pairs(instruction.arguments))
        elif instruction.keyword == "WORKDIR":
            workdir = root / instruction.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            flags, sources, destination = copy_parts(instruction)
            assert "from" not in flags, "a build stage copies from the context only"
            target = workdir / destination
            if destination.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
            _copy_context(sources, target, rules)
        elif instruction.keyword == "RUN":
            words = shlex.split(instruction.arguments)
            if words[:4] == ["python", "-m", "pip", "install"]:
                # The image installs uv from PyPI; here the machine's own is used, so
                # the two must be the same version for the replay to mean anything.
                version = subprocess.run(
                    [_uv(), "--version"], capture_output=True, text=True, check=True
                ).stdout.split()[1]
                assert words[4:] == [f"uv=={version}"]
                continue
            assert words[0] == "uv", f"cannot replay RUN {instruction.arguments}"
            scratch_env = {
                **env,
                "UV_PROJECT_ENVIRONMENT": str(root / "app/.venv"),
                "UV_PYTHON": "python3.11",
                "UV_COMPILE_BYTECODE": "0",
            }
            result = subprocess.run(
                [_uv(), *words[1:]],
                cwd=workdir,
                env=scratch_env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, result.stderr
        elif instruction.keyword not in {"ARG", "LABEL"}:
            raise AssertionError(f"cannot replay {instruction.keyword}")


@pytest.fixture(scope="session")
def image_python(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], Path]]:
    """The Python of a service image's virtual environment, built once per run."""
    built: dict[str, Path] = {}
    rules = IgnoreRules.read(REPO / ".dockerignore")

    def python_of(service: str) -> Path:
        if service not in built:
            root = tmp_path_factory.mktemp(f"image-{service}")
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("UV_", "VIRTUAL_ENV"))
            }
            _replay(STAGES["build"], root, env, rules)
            _replay(STAGES[f"build-{service}"], root, env, rules)
            built[service] = root / "app/.venv/bin/python"
        return built[service]

    yield python_of
    # Each environment is a few hundred megabytes of copied packages.
    for python in built.values():
        shutil.rmtree(python.parents[3], ignore_errors=True)


def _processes() -> list[Any]:
    """Each process the manifests run (every container of every pod), once."""
    seen: dict[tuple[str, tuple[str, ...]], tuple[str, str, str]] = {}
    for overlay in ("dev", "prod"):
        for deployment in of_kind(render(f"overlays/{overlay}"), "Deployment"):
            name = deployment["metadata"]["name"]
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                service = container["image"].rpartition(":")[0].rpartition("/")[2]
                key = (service.removeprefix("send-"), tuple(container["args"]))
                seen.setdefault(key, (name, container["name"], overlay))
    return [
        pytest.param(
            service,
            args,
            name,
            component,
            overlay,
            id=name if name.endswith(component) else f"{name}-{component}",
        )
        for (service, args), (name, component, overlay) in sorted(seen.items())
    ]


def _run(python: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(python), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=python.parents[3],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def _serve(python: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [str(python), "-m", *args],
        env=env,
        cwd=python.parents[3],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    port = next(v for k, v in env.items() if k.endswith("_PORT"))
    base = f"http://127.0.0.1:{port}"
    try:
        health = None
        for _ in range(START_ATTEMPTS):
            if process.poll() is not None:
                break
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(ATTEMPT_PAUSE_S)
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert health is not None, "the API never answered /healthz"
        assert health.status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    log = process.stderr.read() if process.stderr else ""
    # uvicorn shuts the app down on SIGTERM, then re-raises the signal it caught, so
    # a clean stop ends with the lifespan's shutdown logged and -SIGTERM or 0.
    assert code in (0, -signal.SIGTERM), log[-2000:]
    assert "Application shutdown complete." in log


def _api_env(service: str, overlay: str, tmp: Path) -> dict[str, str]:
    """The API's rendered configuration, pointed at loopback and scratch stores."""
    docs = render(f"overlays/{overlay}")
    config: dict[str, str] = {}
    for config_map in by_name(docs, "ConfigMap").values():
        name = config_map["metadata"]["name"]
        if name.startswith(("send-common", f"{service}-config")):
            config.update(config_map["data"])
    prefix = service.upper()
    config.update(
        {
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(free_port()),
            f"{prefix}_DATABASE_URL": f"sqlite:///{tmp / 'store.db'}",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "SEND_ENV": "test",
        }
    )
    if service == "deadlines":
        config["DEADLINES_PROJECTOR_ENABLED"] = "false"
    if service == "notify":
        config["NOTIFY_DIRECTORY_CSV"] = ""  # the Secret's file is not mounted here
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), **config}


@pytest.mark.parametrize(
    ("service", "args", "deployment", "component", "overlay"), _processes()
)
def test_the_process_starts_from_its_images_environment(
    service: str,
    args: tuple[str, ...],
    deployment: str,
    component: str,
    overlay: str,
    tmp_path: Path,
    image_python: Callable[[str], Path],
) -> None:
    python = image_python(service)

    if component == "api":
        _serve(python, args, _api_env(service, overlay, tmp_path))
    elif component in {"relay", "subscriber"}:
        # These start consuming or publishing at once, so they are imported (their
        # main is behind __name__) rather than run.
        _run(
            python,
            "-c",
            "import importlib, sys; m = importlib.import_module(sys.argv[1]); "
            "sys.exit(0 if callable(m.main) else 1)",
            args[0],
        )
    elif component == "worker":
        usage = _run(python, "-m", args[0], "--help")
        assert args[1] in usage
        _run(python, "-c", f"import {args[0]}.entrypoints.{args[1]}")
    elif component == "ticker":
        assert "--every" in _run(python, "-m", *args, "--help")
    elif component in {"catcher", "smtp"}:  # the dev mail catcher's container
        assert "--listen" in _run(python, "-m", args[0], "--help")
    else:
        raise AssertionError(f"no start check for {deployment}: add one here")


@pytest.mark.parametrize("service", ["intake", "notify"])
def test_the_environment_holds_only_that_members_dependencies(
    service: str, image_python: Callable[[str], Path]
) -> None:
    python = image_python(service)
    absent = ["pytest", "hypothesis", "ruff", "devstack", "testcontainers"]
    if service == "intake":
        absent += ["faust", "aiosmtpd", "notifications_python_client"]

    found = _run(
        python,
        "-c",
        "import importlib.util, sys; "
        "print(','.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))",
        service,
        *absent,
    )

    assert found.strip() == service
    assert not str(python).startswith(sys.prefix)
