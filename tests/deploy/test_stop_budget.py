"""Every workload's stop fits in its pod's grace period, as rendered for each overlay.

Kubernetes counts ``terminationGracePeriodSeconds`` from the moment it starts stopping
a pod: the preStop hook runs first, then the process gets SIGTERM, and whatever still
runs at the end is killed. A process of the platform is done with its work
``SEND_SHUTDOWN_TIMEOUT_SECONDS`` after SIGTERM (an HTTP one splits it between the
requests in flight and its background loops, ``sendkit.health.http_stop_budget``; the
others exit with status 3 when it runs out) and needs ``EXIT_MARGIN_S`` more to be
gone. So for every container: preStop + shutdown timeout + margin <= grace period.

The timeout is read as the container would read it: its own ``env`` first, then the
ConfigMaps of its ``envFrom``, then the kernel's default.
"""

from __future__ import annotations

from typing import Any

import pytest
from deploy_support import OVERLAYS, by_name, load_generator, of_kind, pod_spec, render

from notify.entrypoints.worker import SMTP_TIMEOUTS_PER_SEND
from notify.settings import NotifySettings
from sendkit.background import STOP_TIMEOUT_S
from sendkit.health import EXIT_MARGIN_S, HealthSettings, http_stop_budget
from sendkit.settings import env_name

SHUTDOWN_NAME = env_name(HealthSettings, "shutdown_timeout_seconds")
SMTP_TIMEOUT_NAME = env_name(NotifySettings, "smtp_timeout_seconds")
DEFAULT_GRACE_S = 30  # Kubernetes' own, for a pod that names none

NOT_THE_PLATFORMS = {"mail-catcher": "dev's aiosmtpd, which reads no SEND_* name"}
"""Hand-written workloads that run no process of the platform, and why."""


def _generated_workloads() -> set[str]:
    generator = load_generator()
    return {w.name for service in generator.SERVICES for w in service.workloads}


def _cases() -> list[Any]:
    cases = []
    for overlay in OVERLAYS:
        for deployment in of_kind(render(f"overlays/{overlay}"), "Deployment"):
            name = deployment["metadata"]["name"]
            if name in NOT_THE_PLATFORMS:
                continue
            for container in pod_spec(deployment)["containers"]:
                cases.append(
                    pytest.param(
                        overlay,
                        name,
                        container["name"],
                        id=f"{overlay}-{name}-{container['name']}",
                    )
                )
    return cases


def _environment(
    docs: list[dict[str, Any]], container: dict[str, Any]
) -> dict[str, str]:
    """The plain values the container's environment holds (``env`` wins)."""
    found: dict[str, str] = {}
    config_maps = by_name(docs, "ConfigMap")
    for source in container.get("envFrom", []):
        found.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            found[item["name"]] = item["value"]
    return found


def _pre_stop_s(container: dict[str, Any]) -> int:
    hook = container.get("lifecycle", {}).get("preStop")
    if hook is None:
        return 0
    command = hook["exec"]["command"]
    unknown = f"a preStop hook other than `sleep N` ({command}): teach this test it"
    assert command[0] == "sleep", unknown
    assert len(command) == 2, unknown
    return int(command[1])


def _shutdown_of(environment: dict[str, str]) -> HealthSettings:
    """The kernel's health settings with the container's shutdown timeout (the field's
    default, not this test run's environment, when the container sets none)."""
    default = HealthSettings.model_fields["shutdown_timeout_seconds"].default
    return HealthSettings(
        shutdown_timeout_seconds=environment.get(SHUTDOWN_NAME, default)
    )


def _container(overlay: str, name: str, part: str) -> tuple[Any, ...]:
    docs = render(f"overlays/{overlay}")
    deployment = by_name(docs, "Deployment")[name]
    spec = pod_spec(deployment)
    container = next(c for c in spec["containers"] if c["name"] == part)
    grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)
    return docs, container, grace


@pytest.mark.parametrize(("overlay", "name", "part"), _cases())
def test_the_stop_and_the_pre_stop_sleep_fit_in_the_grace_period(
    overlay: str, name: str, part: str
) -> None:
    docs, container, grace = _container(overlay, name, part)
    health = _shutdown_of(_environment(docs, container))
    pre_stop = _pre_stop_s(container)

    assert pre_stop + health.shutdown_timeout_seconds + EXIT_MARGIN_S <= grace, (
        f"{name}: preStop {pre_stop} s + shutdown timeout "
        f"{health.shutdown_timeout_seconds} s + margin {EXIT_MARGIN_S} s is more than "
        f"its grace period of {grace} s"
    )
    if container.get("ports"):
        # An HTTP process: the requests' wait and the loops' wait, one after the other.
        budget = http_stop_budget(health)
        assert budget.total_s <= health.shutdown_timeout_seconds
        assert pre_stop + budget.total_s + EXIT_MARGIN_S <= grace
        # A loop stopped on its own (not through the shared wait) fits as well.
        assert budget.loops_s >= STOP_TIMEOUT_S


def test_the_notify_worker_waits_out_a_send_before_its_shutdown_timeout() -> None:
    # The delivery thread finishes the send in progress, which may take four SMTP
    # timeouts; a watchdog firing first would cut a send the server may have taken.
    for overlay in OVERLAYS:
        docs, container, _ = _container(overlay, "notify-worker", "worker")
        environment = _environment(docs, container)
        health = _shutdown_of(environment)
        smtp_timeout = float(
            environment.get(
                SMTP_TIMEOUT_NAME,
                NotifySettings.model_fields["smtp_timeout_seconds"].default,
            )
        )

        longest_send = SMTP_TIMEOUTS_PER_SEND * smtp_timeout
        assert longest_send + EXIT_MARGIN_S <= health.shutdown_timeout_seconds, overlay


def test_every_workload_is_held_to_the_budget_or_named_as_not_the_platforms() -> None:
    for overlay in OVERLAYS:
        names = {
            d["metadata"]["name"]
            for d in of_kind(render(f"overlays/{overlay}"), "Deployment")
        }
        checked = {case.values[1] for case in _cases() if case.values[0] == overlay}

        assert names - checked <= set(NOT_THE_PLATFORMS), overlay
        assert checked == names & _generated_workloads(), overlay
