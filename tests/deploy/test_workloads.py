"""Invariants of every rendered Deployment: probes, resources, security, budgets.

Each check reads the objects kustomize rendered for an overlay, not the generator's
tables, so a hand-written patch in an overlay is held to the same rules.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from deploy_support import (
    OVERLAYS,
    by_name,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    selects,
)

from deadlines.settings import DeadlinesSettings
from sendkit.settings import ServiceSettings, env_name

HTTP_PATHS = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}


def _deployments(overlay: str) -> list[dict[str, Any]]:
    return of_kind(render(f"overlays/{overlay}"), "Deployment")


def _ids(overlay: str) -> list[str]:
    return [d["metadata"]["name"] for d in _deployments(overlay)]


CASES = [
    pytest.param(overlay, name, id=f"{overlay}-{name}")
    for overlay in OVERLAYS
    for name in _ids(overlay)
]

SHARED_PODS: dict[str, list[str]] = {}
"""Pods of more than one process: none, now that notify's ledger is in PostgreSQL."""


def _deployment(overlay: str, name: str) -> dict[str, Any]:
    return by_name(render(f"overlays/{overlay}"), "Deployment")[name]


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = pod_spec(deployment)["containers"]
    return containers


CONTAINER_CASES = [
    pytest.param(overlay, name, c["name"], id=f"{overlay}-{name}-{c['name']}")
    for overlay in OVERLAYS
    for name in _ids(overlay)
    for c in _containers(_deployment(overlay, name))
]


def _container(deployment: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The pod's container ``name``, or its first (its main process)."""
    containers = _containers(deployment)
    if name is None:
        return containers[0]
    return next(c for c in containers if c["name"] == name)


@pytest.mark.parametrize(("overlay", "name"), CASES)
def test_one_process_per_pod_unless_it_shares_a_volume(overlay: str, name: str) -> None:
    names = [c["name"] for c in _containers(_deployment(overlay, name))]

    # Each process has probes of its own; a second one only where it must share a
    # ReadWriteOnce volume with the first.
    assert names == SHARED_PODS.get(name, names[:1])


@pytest.mark.parametrize(("overlay", "name", "part"), CONTAINER_CASES)
def test_probes(overlay: str, name: str, part: str) -> None:
    container = _container(_deployment(overlay, name), part)
    serves = bool(container.get("ports"))

    assert "startupProbe" in container
    assert "livenessProbe" in container
    if serves:
        assert "readinessProbe" in container
    for probe_name, path in HTTP_PATHS.items():
        probe = container.get(probe_name, {})
        if "httpGet" in probe:
            assert probe["httpGet"]["path"] == path
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    liveness = container["livenessProbe"]
    assert budget >= liveness["periodSeconds"] * liveness.get("failureThreshold", 3)


def test_faust_workers_get_half_an_hour_to_recover_their_tables() -> None:
    for overlay in OVERLAYS:
        startup = _container(_deployment(overlay, "deadlines-worker"))["startupProbe"]

        assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800


@pytest.mark.parametrize(("overlay", "name", "part"), CONTAINER_CASES)
def test_processes_without_http_are_judged_by_a_heartbeat_file(
    overlay: str, name: str, part: str
) -> None:
    container = _container(_deployment(overlay, name), part)
    if container.get("ports") and "httpGet" in container["livenessProbe"]:
        return
    if "tcpSocket" in container["livenessProbe"]:
        assert name == "mail-catcher"  # the dev catcher is judged by its SMTP port
        return
    env = {e["name"]: e.get("value") for e in container.get("env", ())}

    command = container["livenessProbe"]["exec"]["command"]

    assert command[:2] == ["python", "-c"]
    assert command[3] == env["SEND_HEARTBEAT_FILE"]
    assert command[3].startswith("/tmp/")  # on the writable emptyDir
    assert container["startupProbe"]["exec"]["command"] == command


@pytest.mark.parametrize(("overlay", "name", "part"), CONTAINER_CASES)
def test_requests_and_a_memory_limit_but_no_cpu_limit(
    overlay: str, name: str, part: str
) -> None:
    resources = _container(_deployment(overlay, name), part)["resources"]

    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"memory"}


@pytest.mark.parametrize(("overlay", "name", "part"), CONTAINER_CASES)
def test_security_context_meets_the_restricted_standard(
    overlay: str, name: str, part: str
) -> None:
    deployment = _deployment(overlay, name)
    pod = pod_spec(deployment)
    container = _container(deployment, part)
    context = container["securityContext"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in context
    assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize(("overlay", "name"), CASES)
def test_its_service_account_exists_and_mounts_no_token(
    overlay: str, name: str
) -> None:
    docs = render(f"overlays/{overlay}")
    account = pod_spec(_deployment(overlay, name))["serviceAccountName"]

    assert by_name(docs, "ServiceAccount")[account]["automountServiceAccountToken"] is (
        False
    )


@pytest.mark.parametrize(("overlay", "name"), CASES)
def test_exactly_one_disruption_budget_of_one_covers_it(
    overlay: str, name: str
) -> None:
    docs = render(f"overlays/{overlay}")
    labels = pod_labels(_deployment(overlay, name))

    budgets = [
        pdb
        for pdb in of_kind(docs, "PodDisruptionBudget")
        if selects(pdb["spec"]["selector"], labels)
    ]

    assert len(budgets) == 1
    assert budgets[0]["spec"] == {
        "maxUnavailable": 1,
        "selector": budgets[0]["spec"]["selector"],
    }


@pytest.mark.parametrize(("overlay", "name"), CASES)
def test_its_selector_picks_its_own_pods_only(overlay: str, name: str) -> None:
    deployments = _deployments(overlay)
    deployment = _deployment(overlay, name)
    selector = deployment["spec"]["selector"]

    matching = [
        d["metadata"]["name"] for d in deployments if selects(selector, pod_labels(d))
    ]

    assert matching == [name]


@pytest.mark.parametrize(("overlay", "name", "part"), CONTAINER_CASES)
def test_config_and_secret_references_are_as_documented(
    overlay: str, name: str, part: str
) -> None:
    docs = render(f"overlays/{overlay}")
    config_maps = by_name(docs, "ConfigMap")
    container = _container(_deployment(overlay, name), part)

    for source in container.get("envFrom", ()):
        assert source["configMapRef"]["name"] in config_maps
    for env in container.get("env", ()):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            continue
        # Every Secret is made by an operator or by the council, never by these files.
        assert (
            ref["name"].endswith("-db-app")  # CloudNativePG
            or ref["name"].startswith("send-")  # Strimzi KafkaUser
            or ref["name"].startswith("notify-")  # the council's SMTP / Notify keys
        ), ref


@pytest.mark.parametrize(("overlay", "name", "part"), CONTAINER_CASES)
def test_http_apis_listen_where_their_settings_and_service_say(
    overlay: str, name: str, part: str
) -> None:
    docs = render(f"overlays/{overlay}")
    deployment = _deployment(overlay, name)
    container = _container(deployment, part)
    if name == "mail-catcher" or not container.get("ports"):
        return
    config = {}
    for source in container["envFrom"]:
        config.update(
            by_name(docs, "ConfigMap")[source["configMapRef"]["name"]]["data"]
        )
    service = container["args"][0].upper()
    port = container["ports"][0]

    services = [
        s
        for s in of_kind(docs, "Service")
        if selects({"matchLabels": s["spec"]["selector"]}, pod_labels(deployment))
    ]

    assert config[f"{service}_HOST"] == "0.0.0.0"  # noqa: S104 - in its own pod
    assert int(config[f"{service}_PORT"]) == port["containerPort"]
    assert port["name"] == "http"
    assert len(services) == 1
    assert services[0]["spec"]["ports"][0]["targetPort"] == "http"
    assert services[0]["spec"]["ports"][0]["port"] == port["containerPort"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shared_settings_names_are_the_kernels(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    common = next(
        cm["data"]
        for cm in of_kind(docs, "ConfigMap")
        if cm["metadata"]["name"].startswith("send-common")
    )
    kernel_names = {
        alias.choices[0]
        for field in ServiceSettings.model_fields.values()
        if (alias := field.validation_alias) is not None
    }

    # The Kafka security names are the ones the kernel is yet to read (see
    # docs/operations.md); every other shared name must be one it reads today.
    unknown = {k for k in common if not k.startswith("KAFKA_")} - kernel_names

    assert unknown == set()
    assert "KAFKA_BOOTSTRAP_SERVERS" in common
    assert common["SEND_ENV"] == {"dev": "development", "prod": "production"}[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_named_with_a_registry_and_a_tag(overlay: str) -> None:
    images = {_container(d)["image"] for d in _deployments(overlay)}

    for image in images:
        name, _, tag = image.rpartition(":")
        assert "/" in name, image
        assert tag, image
        assert tag != "latest", image


def test_single_writer_workloads_never_overlap_in_a_rollout() -> None:
    # The relays publish one at a time; two tickers would double every tick.
    for overlay in OVERLAYS:
        for deployment in _deployments(overlay):
            name = deployment["metadata"]["name"]
            if name.endswith(("-relay", "-ticker")):
                assert deployment["spec"]["strategy"] == {"type": "Recreate"}, name
                assert deployment["spec"]["replicas"] == 1, name


def test_no_workload_keeps_state_on_a_volume() -> None:
    # The read model and notify's ledger are in PostgreSQL, shared by the replicas.
    for overlay in OVERLAYS:
        docs = render(f"overlays/{overlay}")
        assert of_kind(docs, "PersistentVolumeClaim") == []
        for deployment in of_kind(docs, "Deployment"):
            volumes = pod_spec(deployment)["volumes"]
            assert not any("persistentVolumeClaim" in v for v in volumes)


def test_prod_runs_two_of_each_http_api_and_of_the_stream_processors() -> None:
    deployments = {d["metadata"]["name"]: d for d in _deployments("prod")}

    for name in (
        "intake-api",
        "plans-api",
        "reviews-api",
        "placement-api",
        "deadlines-api",
        "notify-api",
        "deadlines-worker",
        "notify-worker",
    ):
        assert deployments[name]["spec"]["replicas"] == 2, name
        assert deployments[name]["spec"]["strategy"]["type"] == "RollingUpdate", name
    assert all(
        count == 1
        for count in {
            d["metadata"]["name"]: d["spec"]["replicas"] for d in _deployments("dev")
        }.values()
    )


def test_the_read_model_and_the_ledger_come_from_their_own_clusters() -> None:
    docs = render("overlays/prod")
    clusters = {c["metadata"]["name"] for c in of_kind(docs, "Cluster")}
    wanted = {
        "deadlines-api": ("DEADLINES_DATABASE_URL", "deadlines-db"),
        "notify-api": ("NOTIFY_DATABASE_URL", "notify-db"),
        "notify-worker": ("NOTIFY_DATABASE_URL", "notify-db"),
    }

    for name, (env_name_, cluster) in wanted.items():
        env = {e["name"]: e for e in _container(_deployment("prod", name))["env"]}
        ref = env[env_name_]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"{cluster}-app", "key": "uri"}, name
        assert cluster in clusters
    # The worker and the ticker have no database: only the read API reads it.
    for name in ("deadlines-worker", "deadlines-ticker"):
        env = _container(_deployment("prod", name)).get("env", [])
        assert "DEADLINES_DATABASE_URL" not in {e["name"] for e in env}, name


def _settings_env_names(service: str) -> set[str]:
    module = importlib.import_module(f"{service}.settings")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    ]
    assert classes, f"{service}.settings defines no ServiceSettings subclass"
    return {env_name(cls, name) for cls in classes for name in cls.model_fields}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_configured_name_is_one_its_service_reads(overlay: str) -> None:
    # A misspelt name (NOTIFY_SMTP_STARTLS) would be ignored silently by the service.
    docs = render(f"overlays/{overlay}")
    faust_names = {"FAUST_DATADIR"}  # faust's own, read at import

    for config_map in of_kind(docs, "ConfigMap"):
        name = config_map["metadata"]["name"]
        if name.startswith("send-common"):
            continue
        service = name.split("-config")[0]
        unknown = set(config_map["data"]) - _settings_env_names(service) - faust_names

        assert unknown == set(), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deadlines_and_notify_are_given_the_same_usable_term_dates(
    overlay: str,
) -> None:
    # Notify sends the termly SENCO lists; deadlines sets their local target from
    # its own copy of the terms, so the two must agree.
    config_maps = {
        cm["metadata"]["name"].split("-config")[0]: cm["data"]
        for cm in of_kind(render(f"overlays/{overlay}"), "ConfigMap")
    }
    deadlines_terms = config_maps["deadlines"]["DEADLINES_TERM_DATES"]

    settings = DeadlinesSettings(
        term_dates=deadlines_terms,
        local_targets=config_maps["deadlines"]["DEADLINES_LOCAL_TARGETS"],
    )

    assert deadlines_terms == config_maps["notify"]["NOTIFY_TERM_DATES"]
    # At least a school year of autumn, spring and summer terms.
    assert len(settings.council().terms) >= 3
    assert settings.council().local_amounts == {}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_in_app_relays_and_subscribers_are_off_where_a_process_of_their_own_runs(
    overlay: str,
) -> None:
    docs = render(f"overlays/{overlay}")
    names = {d["metadata"]["name"] for d in of_kind(docs, "Deployment")}
    data: dict[str, str] = {}
    for config_map in of_kind(docs, "ConfigMap"):
        data.update(config_map["data"])

    for key, value in data.items():
        service = key.split("_")[0].lower()
        if key.endswith("_RELAY_ENABLED") and f"{service}-relay" in names:
            assert value == "false", key
        if key.endswith(("_SUBSCRIBER_ENABLED", "_SUBSCRIBERS_ENABLED")):
            assert f"{service}-subscriber" in names, key
            assert value == "false", key


@pytest.mark.parametrize(("overlay", "name"), CASES)
def test_service_links_are_off(overlay: str, name: str) -> None:
    # A Service named intake would otherwise put INTAKE_PORT=tcp://<ip>:8001 into
    # every pod's environment, which IntakeSettings would read as its port.
    assert pod_spec(_deployment(overlay, name))["enableServiceLinks"] is False
