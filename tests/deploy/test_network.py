"""Network policies, evaluated: which pod may reach what, and who may reach it.

The evaluation follows Kubernetes' rules for the parts these manifests use: a pod
selected by any policy of a type is isolated for that type, and what the policies
selecting it allow is the union of their rules. Each test states the design's answer
for one kind of traffic and checks every rendered Deployment against it.
"""

from __future__ import annotations

from typing import Any

import pytest
from deploy_support import OVERLAYS, of_kind, pod_labels, render, selects

DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
}


def _policies_for(
    docs: list[dict[str, Any]], labels: dict[str, str], kind: str
) -> list:
    return [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if kind in p["spec"]["policyTypes"]
        and selects(p["spec"]["podSelector"], labels)
    ]


def _egress_peers(docs: list[dict[str, Any]], labels: dict[str, str]) -> list[tuple]:
    """(peer, ports) for every egress rule that applies to a pod with ``labels``."""
    found = []
    for policy in _policies_for(docs, labels, "Egress"):
        for rule in policy["spec"].get("egress", ()):
            ports = tuple(sorted(str(p["port"]) for p in rule.get("ports", ())))
            for peer in rule.get("to", ()):
                found.append((peer, ports))
    return found


def _cases() -> list[Any]:
    return [
        pytest.param(
            overlay, d["metadata"]["name"], id=f"{overlay}-{d['metadata']['name']}"
        )
        for overlay in OVERLAYS
        for d in of_kind(render(f"overlays/{overlay}"), "Deployment")
    ]


def _deployment(overlay: str, name: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    docs = render(f"overlays/{overlay}")
    deployment = next(
        d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == name
    )
    return docs, pod_labels(deployment)


@pytest.mark.parametrize(("overlay", "name"), _cases())
def test_every_pod_is_isolated_both_ways(overlay: str, name: str) -> None:
    docs, labels = _deployment(overlay, name)

    assert _policies_for(docs, labels, "Ingress")
    assert _policies_for(docs, labels, "Egress")


@pytest.mark.parametrize(("overlay", "name"), _cases())
def test_egress_is_dns_kafka_its_own_database_and_mail_for_notify(
    overlay: str, name: str
) -> None:
    docs, labels = _deployment(overlay, name)
    service = labels["send-casework/service"]
    peers = _egress_peers(docs, labels)

    databases = {
        peer["podSelector"]["matchLabels"]["cnpg.io/cluster"]
        for peer, _ in peers
        if "cnpg.io/cluster" in peer.get("podSelector", {}).get("matchLabels", {})
    }
    outside = [ports for peer, ports in peers if "ipBlock" in peer]
    kafka = [
        ports
        for peer, ports in peers
        if peer.get("podSelector", {}).get("matchLabels", {}).get("strimzi.io/kind")
        == "Kafka"
    ]
    dns = [
        ports
        for peer, ports in peers
        if peer.get("namespaceSelector") == DNS["namespaceSelector"]
    ]

    assert dns == [("53", "53")]
    # Notify's worker and API share its ledger; of deadlines, only the read API has a
    # database (its read model).
    if service in {"intake", "plans", "reviews", "placement", "notify"} or (
        name == "deadlines-api"
    ):
        assert databases == {f"{service}-db"}
    else:
        assert databases == set()
    if service == "notify":
        assert outside == [("25", "443", "465", "587")]
    else:
        assert outside == []
    if labels.get("send-casework/kafka-client") == "true":
        assert kafka == [("9092", "9093")]
    else:
        assert kafka == []


@pytest.mark.parametrize(("overlay", "name"), _cases())
def test_only_http_apis_take_traffic_from_ingress_and_monitoring(
    overlay: str, name: str
) -> None:
    docs, labels = _deployment(overlay, name)
    rules = [
        rule
        for policy in _policies_for(docs, labels, "Ingress")
        for rule in policy["spec"].get("ingress", ())
    ]

    sources = [
        next(iter(peer["namespaceSelector"]["matchLabels"]))
        for rule in rules
        for peer in rule["from"]
        if "namespaceSelector" in peer
    ]

    if labels.get("send-casework/serves-http") == "true":
        assert sorted(sources) == ["send-casework/ingress", "send-casework/monitoring"]
        assert [p["port"] for rule in rules for p in rule["ports"]] == ["http"]
    elif name == "mail-catcher":
        assert sources == []
        assert [peer["podSelector"] for rule in rules for peer in rule["from"]] == [
            {"matchLabels": {"send-casework/service": "notify"}}
        ]
    else:
        assert rules == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_exactly_the_pods_with_an_http_server_are_labelled_as_serving_it(
    overlay: str,
) -> None:
    for deployment in of_kind(render(f"overlays/{overlay}"), "Deployment"):
        name = deployment["metadata"]["name"]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        serves = any(
            port.get("name") == "http"
            for container in containers
            for port in container.get("ports", ())
        )

        labelled = pod_labels(deployment).get("send-casework/serves-http") == "true"

        # The dev mail catcher serves SMTP, not HTTP: no ingress for it.
        assert labelled == (serves and name != "mail-catcher"), name
