"""What the deployment tests share: the generator, a real kustomize, rendered overlays.

Rendering needs a real kustomize: ``kubectl kustomize`` (kubectl embeds kustomize) or a
``kustomize`` binary, in that order, or the command named by ``$KUSTOMIZE``. When none
is on the PATH the tests fail, with the line that installs one; they never skip and
never fall back to an imitation.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "prod")
PART_OF = "send-casework"

INSTALL_KUSTOMIZE = (
    "rendering deploy/ needs a real kustomize and none was found: install kubectl "
    "(it embeds kustomize; `kubectl kustomize DIR`), or build kustomize with "
    "`GOBIN=/usr/local/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1`, "
    "or name the command in $KUSTOMIZE (for example KUSTOMIZE='kustomize build')"
)


def load_generator() -> ModuleType:
    """``deploy/generate.py`` as a module (it is a script, not a package)."""
    name = "send_deploy_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DEPLOY / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def kustomize_command() -> tuple[str, ...]:
    """The command that renders a kustomization directory given as its last argument."""
    named = os.environ.get("KUSTOMIZE", "").strip()
    if named:
        return tuple(shlex.split(named))
    if shutil.which("kubectl"):
        return ("kubectl", "kustomize")
    if shutil.which("kustomize"):
        return ("kustomize", "build")
    pytest.fail(INSTALL_KUSTOMIZE)


@functools.cache
def render_text(directory: str) -> str:
    """The YAML stream kustomize renders for ``deploy/<directory>``."""
    command = [*kustomize_command(), str(DEPLOY / directory)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False
        )
    except FileNotFoundError:
        pytest.fail(INSTALL_KUSTOMIZE)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}"
        )
    return result.stdout


@functools.cache
def _parsed(directory: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all(render_text(directory), loader) if doc)


def render(directory: str) -> list[dict[str, Any]]:
    """The rendered objects of ``deploy/<directory>``, a fresh copy each call."""
    return copy.deepcopy(list(_parsed(directory)))


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def by_name(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(docs, kind)}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a selector (``matchLabels`` only, as these manifests use) matches."""
    if set(selector) - {"matchLabels"}:
        raise AssertionError(f"selector uses more than matchLabels: {selector}")
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())
