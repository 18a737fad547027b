"""The Dockerfile's structure, read without a Docker engine (there is none here).

Each service target must be a final stage that runs as a non-root user, starts Python
in exec form, carries only the virtual environment its own build stage made with
``uv sync --frozen --no-dev --package <member>``, and installs nothing itself.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from deploy_support import REPO, of_kind, render
from dockerfile_model import IgnoreRules, Stage, copy_parts, parse

SERVICES = ("intake", "plans", "reviews", "placement", "deadlines", "notify")
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|make|build-essential|cmake|cargo|rustc|libc6-dev|"
    r"python3-dev|apt-get|apt|apk|pip|uv)\b"
)
STAGES = parse((REPO / "Dockerfile").read_text())
BY_NAME = {stage.name: stage for stage in STAGES}


def _target(service: str) -> Stage:
    return BY_NAME[service]


def test_every_service_has_a_target_and_a_build_stage() -> None:
    assert set(SERVICES) <= set(BY_NAME)
    for service in SERVICES:
        assert f"build-{service}" in BY_NAME


def test_targets_start_from_the_slim_runtime_and_not_from_a_build_stage() -> None:
    runtime = BY_NAME["runtime"]
    build = BY_NAME["build"]

    assert runtime.base == build.base == "${PYTHON_IMAGE}"
    default = re.search(
        r"^ARG PYTHON_IMAGE=(\S+)$", (REPO / "Dockerfile").read_text(), re.M
    )
    assert default is not None
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", default.group(1))
    for service in SERVICES:
        assert _target(service).base == "runtime"


@pytest.mark.parametrize("service", SERVICES)
def test_the_target_runs_as_an_unprivileged_user(service: str) -> None:
    users = _target(service).all("USER")

    assert len(users) == 1
    uid, _, gid = users[0].arguments.partition(":")
    assert int(uid) >= 1000
    assert int(gid) >= 1000


def test_the_runtime_stage_creates_that_user_without_a_login() -> None:
    runs = " ".join(i.arguments for i in BY_NAME["runtime"].all("RUN"))

    assert "useradd --system --uid 10001" in runs
    assert "--shell /usr/sbin/nologin" in runs
    for service in SERVICES:
        assert _target(service).all("USER")[0].arguments == "10001:10001"


@pytest.mark.parametrize("service", SERVICES)
def test_the_target_starts_python_in_exec_form(service: str) -> None:
    target = _target(service)
    entrypoint = target.all("ENTRYPOINT")
    command = target.all("CMD")

    assert len(entrypoint) == 1
    assert entrypoint[0].exec_form() == ["python", "-m"]
    assert len(command) == 1
    default = command[0].exec_form()
    assert default is not None
    assert default[0] == service


@pytest.mark.parametrize("service", SERVICES)
def test_the_target_copies_only_its_own_virtual_environment(service: str) -> None:
    target = _target(service)
    copies = [copy_parts(i) for i in target.all("COPY")]

    assert target.all("RUN") == []
    assert copies == [({"from": f"build-{service}"}, ["/app/.venv"], "/app/.venv")]


@pytest.mark.parametrize("stage", ["runtime", *SERVICES])
def test_no_stage_of_the_final_image_installs_anything(stage: str) -> None:
    for run in BY_NAME[stage].all("RUN"):
        assert not BUILD_TOOLS.search(run.arguments), run.arguments


@pytest.mark.parametrize("service", SERVICES)
def test_the_build_stage_installs_that_members_locked_dependencies(
    service: str,
) -> None:
    stage = BY_NAME[f"build-{service}"]
    runs = [i.arguments for i in stage.all("RUN")]
    member = f"send-{service}"

    assert stage.base == "build"
    assert runs == [
        f"uv sync --frozen --no-dev --package {member} --no-install-workspace",
        f"uv sync --frozen --no-dev --package {member} --no-editable",
    ]
    pyproject = tomllib.loads(
        (REPO / "services" / service / "pyproject.toml").read_text()
    )
    assert pyproject["project"]["name"] == member


def test_the_build_stage_copies_the_lock_and_every_workspace_member() -> None:
    build = BY_NAME["build"]
    sources = {src for i in build.all("COPY") for src in copy_parts(i)[1]}
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]
    members = []
    for pattern in workspace["workspace"]["members"]:
        members += [p.parent for p in REPO.glob(f"{pattern}/pyproject.toml")]

    assert {"uv.lock", "pyproject.toml"} <= sources
    for member in members:
        assert f"{member.relative_to(REPO).as_posix()}/pyproject.toml" in sources
    env = " ".join(i.arguments for i in build.all("ENV"))
    assert "UV_PYTHON_DOWNLOADS=never" in env
    assert "UV_PROJECT_ENVIRONMENT=/app/.venv" in env


def test_dockerignore_keeps_everything_the_dockerfile_copies() -> None:
    rules = IgnoreRules.read(REPO / ".dockerignore")
    copied = {
        src.rstrip("/")
        for stage in STAGES
        for instruction in stage.all("COPY")
        for src in copy_parts(instruction)[1]
        if "from" not in copy_parts(instruction)[0]
    }

    for source in sorted(copied):
        path = REPO / source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        assert files, source
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if "__pycache__" in relative:
                continue
            assert not rules.ignored(relative), relative


def test_dockerignore_leaves_out_local_state_and_other_folders() -> None:
    rules = IgnoreRules.read(REPO / ".dockerignore")

    for path in (
        ".git/config",
        ".venv/bin/python",
        ".run/intake.db",
        "tests/conftest.py",
        "deploy/base/kustomization.yaml",
        "tools/devstack/src/devstack/kafka.py",
        "services/intake/src/intake/__pycache__/x.cpython-311.pyc",
        "notify.some-test-data/tables",
    ):
        assert rules.ignored(path), path
    assert not rules.ignored("services/notify/src/notify/settings.py")


def test_every_image_the_manifests_run_is_a_dockerfile_target() -> None:
    for overlay in ("dev", "prod"):
        for deployment in of_kind(render(f"overlays/{overlay}"), "Deployment"):
            image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
            repository = image.rpartition(":")[0].rpartition("/")[2]

            assert repository.removeprefix("send-") in SERVICES, image
