"""Every overlay renders with a real kustomize; every core object is valid Kubernetes.

Core objects are validated with ``kubernetes-validate``'s strict schemas (unknown fields
are errors) for the oldest and the newest Kubernetes release this project targets. The
operators' custom resources (Strimzi, CloudNativePG) have no bundled schema; the kinds
allowed are listed here, so an object of any other kind fails rather than passing
unchecked, and their fields are checked by the invariant tests beside this one.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from deploy_support import OVERLAYS, kustomize_command, of_kind, render

KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")
CUSTOM_KINDS = {
    ("kafka.strimzi.io/v1", "Kafka"),
    ("kafka.strimzi.io/v1", "KafkaNodePool"),
    ("kafka.strimzi.io/v1", "KafkaTopic"),
    ("kafka.strimzi.io/v1", "KafkaUser"),
    ("postgresql.cnpg.io/v1", "Cluster"),
}
CORE_KINDS = {
    "ConfigMap",
    "Deployment",
    "Namespace",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
}


def _name(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def test_a_real_kustomize_is_installed() -> None:
    # Fails (never skips) with the install line when neither kubectl nor kustomize is
    # on the PATH.
    assert kustomize_command()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_renders_into_one_namespace(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    namespaces = of_kind(docs, "Namespace")

    assert len(namespaces) == 1
    namespace = namespaces[0]["metadata"]["name"]
    assert namespace == {"dev": "send-dev", "prod": "send"}[overlay]
    assert {
        doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"
    } == {namespace}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_of_a_known_kind_and_named_once(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    kinds = {(doc["apiVersion"], doc["kind"]) for doc in docs}
    names = [_name(doc) for doc in docs]

    unknown = {k for k in kinds if k not in CUSTOM_KINDS and k[1] not in CORE_KINDS}
    assert unknown == set()
    assert len(names) == len(set(names))


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_core_object_validates_strictly(overlay: str, version: str) -> None:
    docs = [
        doc
        for doc in render(f"overlays/{overlay}")
        if (doc["apiVersion"], doc["kind"]) not in CUSTOM_KINDS
    ]
    failures = []

    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{_name(doc)}: {error.message}")

    assert len(docs) > 40
    assert failures == []


def test_the_validator_rejects_a_misspelt_field() -> None:
    # The strict schemas are what catch a typo such as periodSecond; prove they do.
    deployment = of_kind(render("overlays/prod"), "Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["periodSecond"] = 10

    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecond"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_are_rendered(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    literal_secrets = [
        f"{_name(doc)} {env['name']}"
        for doc in of_kind(docs, "Deployment")
        for container in doc["spec"]["template"]["spec"]["containers"]
        for env in container.get("env", ())
        if "value" in env
        and any(
            word in env["name"]
            for word in ("PASSWORD", "SECRET", "API_KEY", "TOKEN", "DATABASE_URL")
        )
    ]
    config_secrets = [
        f"{_name(doc)} {key}"
        for doc in of_kind(docs, "ConfigMap")
        for key in doc.get("data", {})
        if any(word in key for word in ("PASSWORD", "SECRET", "API_KEY", "TOKEN"))
    ]

    assert of_kind(docs, "Secret") == []
    assert literal_secrets == []
    assert config_secrets == []
