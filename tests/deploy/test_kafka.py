"""Kafka as rendered: the clusters' shape, a KafkaTopic per registry topic, and ACLs.

The ACL tests do not compare the KafkaUsers with the generator's output. They evaluate
the rendered rules the way Kafka's simple authoriser does (literal and prefixed
resource names, ``All``, and the operations that imply ``Describe``) and ask, for every
principal and every topic of ``send_schemas.topics``: may it write? may it read?
The answers must be exactly what the registry says: write only what it owns (its
dead-letter topics included), read only what it consumes.
"""

from __future__ import annotations

from typing import Any

import pytest
from deploy_support import by_name, of_kind, pod_spec, render

from deadlines.settings import DeadlinesSettings
from deadlines.ticker import BARRIER_TOPICS
from notify.settings import NotifySettings
from send_schemas.topics import all_topics

IMPLIES_DESCRIBE = {"Read", "Write", "Delete", "Alter"}
PRINCIPALS = sorted(
    {t.owner for t in all_topics()} | {c for t in all_topics() for c in t.consumers}
)


def allowed(user: dict[str, Any], operation: str, kind: str, name: str) -> bool:
    """Whether the user's ACLs allow ``operation`` on resource ``kind``/``name``."""
    for rule in user["spec"]["authorization"]["acls"]:
        resource = rule["resource"]
        if resource["type"] != kind:
            continue
        pattern = resource.get("patternType", "literal")
        if pattern == "literal":
            matches = resource["name"] in (name, "*")
        elif pattern == "prefix":
            matches = name.startswith(resource["name"])
        else:
            raise AssertionError(f"unexpected pattern type {pattern}")
        if rule.get("type", "allow") != "allow":
            raise AssertionError("these manifests use allow rules only")
        operations = set(rule["operations"])
        if not matches:
            continue
        if operation in operations or "All" in operations:
            return True
        if operation == "Describe" and operations & IMPLIES_DESCRIBE:
            return True
        if operation == "DescribeConfigs" and "AlterConfigs" in operations:
            return True
    return False


def _users() -> dict[str, dict[str, Any]]:
    return by_name(render("overlays/prod"), "KafkaUser")


def _user(principal: str) -> dict[str, Any]:
    return _users()[f"send-{principal}"]


# Clusters ----------------------------------------------------------------------------


def _pools(overlay: str) -> list[dict[str, Any]]:
    return of_kind(render(f"overlays/{overlay}"), "KafkaNodePool")


def _kafka(overlay: str) -> dict[str, Any]:
    clusters = of_kind(render(f"overlays/{overlay}"), "Kafka")
    assert len(clusters) == 1
    return clusters[0]


def test_prod_has_three_controllers_three_brokers_and_two_in_sync_of_three() -> None:
    kafka = _kafka("prod")
    config = kafka["spec"]["kafka"]["config"]
    roles = {
        tuple(sorted(pool["spec"]["roles"])): pool["spec"]["replicas"]
        for pool in _pools("prod")
    }

    assert roles == {("controller",): 3, ("broker",): 3}
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert config["auto.create.topics.enable"] is False
    assert kafka["spec"]["kafka"]["version"] == "4.3.1"


def test_prod_clients_authenticate_over_tls_and_are_authorised_by_acls() -> None:
    kafka = _kafka("prod")["spec"]["kafka"]

    assert kafka["authorization"] == {"type": "simple"}
    for listener in kafka["listeners"]:
        assert listener["tls"] is True
        assert listener["authentication"] == {"type": "scram-sha-512"}


def test_dev_is_one_dual_role_node_with_one_replica_of_everything() -> None:
    config = _kafka("dev")["spec"]["kafka"]["config"]
    pools = _pools("dev")

    assert [(sorted(p["spec"]["roles"]), p["spec"]["replicas"]) for p in pools] == [
        (["broker", "controller"], 1)
    ]
    assert config["default.replication.factor"] == 1
    assert config["min.insync.replicas"] == 1
    assert {
        t["spec"]["replicas"] for t in of_kind(render("overlays/dev"), "KafkaTopic")
    } == {1}


def test_dev_has_no_users_because_its_cluster_has_no_authorisation() -> None:
    # Strimzi refuses a KafkaUser with ACLs on a cluster without authorisation.
    docs = render("overlays/dev")

    assert "authorization" not in _kafka("dev")["spec"]["kafka"]
    assert of_kind(docs, "KafkaUser") == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_pool_and_topic_belongs_to_the_one_cluster(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    name = _kafka(overlay)["metadata"]["name"]

    for doc in docs:
        if doc["apiVersion"].startswith("kafka.strimzi.io/") and doc["kind"] != "Kafka":
            assert doc["metadata"]["labels"]["strimzi.io/cluster"] == name


# Topics ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_registry_topic_has_a_kafka_topic_and_nothing_else_has(
    overlay: str,
) -> None:
    topics = by_name(render(f"overlays/{overlay}"), "KafkaTopic")
    registry = {t.name: t for t in all_topics()}

    assert set(topics) == set(registry)
    for name, topic in registry.items():
        spec = topics[name]["spec"]
        assert spec.get("topicName", name) == name
        assert spec["partitions"] == topic.partitions
        assert int(spec["config"]["retention.ms"]) == topic.retention_ms


def test_prod_topics_have_three_replicas_and_domain_topics_keep_everything() -> None:
    topics = by_name(render("overlays/prod"), "KafkaTopic")

    assert {t["spec"]["replicas"] for t in topics.values()} == {3}
    assert topics["send.intake.events"]["spec"]["config"]["retention.ms"] == -1
    assert topics["send.clock.ticks"]["spec"]["config"]["retention.ms"] > 0


# Users and ACLs ----------------------------------------------------------------------


def test_every_principal_of_the_registry_has_a_user_and_one_subscriber_exists() -> None:
    users = _users()

    assert set(users) == {f"send-{p}" for p in PRINCIPALS} | {"send-subscriber"}
    for user in users.values():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_writes_exactly_the_topics_it_owns(principal: str) -> None:
    user = _user(principal)

    writable = {t.name for t in all_topics() if allowed(user, "Write", "topic", t.name)}

    assert writable == {t.name for t in all_topics() if t.owner == principal}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_reads_exactly_the_topics_it_consumes(principal: str) -> None:
    user = _user(principal)

    readable = {t.name for t in all_topics() if allowed(user, "Read", "topic", t.name)}

    assert readable == {t.name for t in all_topics() if principal in t.consumers}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_creates_no_registry_topic_and_touches_no_one_elses_group(
    principal: str,
) -> None:
    user = _user(principal)
    others = [p for p in PRINCIPALS if p != principal]
    consumes = any(principal in t.consumers for t in all_topics())

    assert not any(allowed(user, "Create", "topic", t.name) for t in all_topics())
    assert not any(allowed(user, "Alter", "topic", t.name) for t in all_topics())
    assert not any(allowed(user, "Read", "group", f"send-{o}") for o in others)
    assert allowed(user, "Read", "group", f"send-{principal}") is consumes


def test_faust_apps_may_use_their_own_group_and_internal_topics_only() -> None:
    deadlines_id = DeadlinesSettings.model_fields["app_id"].default
    notify_id = NotifySettings.model_fields["app_id"].default
    changelog = f"{deadlines_id}-case-clocks-changelog"
    replay = f"{deadlines_id}-replay-2"

    deadlines = _user("deadlines")
    notify = _user("notify")

    for operation in ("Create", "Read", "Write", "Describe"):
        assert allowed(deadlines, operation, "topic", changelog)
        assert allowed(deadlines, operation, "topic", f"{replay}-case-clocks-changelog")
        assert not allowed(notify, operation, "topic", changelog)
    assert allowed(deadlines, "Read", "group", replay)
    assert allowed(notify, "Read", "group", notify_id)
    assert not allowed(notify, "Read", "group", deadlines_id)


def test_the_ticker_writes_ticks_and_may_only_describe_the_barrier_topics() -> None:
    ticker = _user("ticker")

    assert allowed(ticker, "Write", "topic", "send.clock.ticks")
    for topic in BARRIER_TOPICS:
        assert allowed(ticker, "Describe", "topic", topic)
        assert not allowed(ticker, "Read", "topic", topic)


def test_the_subscriber_reads_the_published_topics_and_writes_nothing() -> None:
    subscriber = _users()["send-subscriber"]
    events = {t.name for t in all_topics() if t.name.endswith(".events")}

    readable = {
        t.name for t in all_topics() if allowed(subscriber, "Read", "topic", t.name)
    }

    assert readable == events
    for operation in ("Write", "Create", "Delete", "Alter", "AlterConfigs"):
        assert not any(
            allowed(subscriber, operation, "topic", t.name) for t in all_topics()
        )
    assert allowed(subscriber, "Read", "group", "send-subscriber-transport")


def test_the_evaluator_tells_literal_from_prefix_and_implied_describe() -> None:
    user = {
        "spec": {
            "authorization": {
                "acls": [
                    {
                        "resource": {
                            "type": "topic",
                            "name": "a",
                            "patternType": "literal",
                        },
                        "operations": ["Read"],
                    },
                    {
                        "resource": {
                            "type": "group",
                            "name": "g-",
                            "patternType": "prefix",
                        },
                        "operations": ["Read"],
                    },
                ]
            }
        }
    }

    assert allowed(user, "Read", "topic", "a")
    assert allowed(user, "Describe", "topic", "a")
    assert not allowed(user, "Read", "topic", "ab")
    assert not allowed(user, "Write", "topic", "a")
    assert allowed(user, "Read", "group", "g-1")
    assert not allowed(user, "Read", "topic", "g-1")


def test_every_prod_workload_authenticates_as_an_existing_user() -> None:
    docs = render("overlays/prod")
    users = by_name(docs, "KafkaUser")

    for deployment in of_kind(docs, "Deployment"):
        container = pod_spec(deployment)["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        username = env["KAFKA_SASL_USERNAME"]["value"]
        password = env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}

        assert username in users
        assert password == {"name": username, "key": "password"}
        assert "/etc/send/kafka-ca" in mounts
        if deployment["metadata"]["name"] == "deadlines-ticker":
            assert username == "send-ticker"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_kafka_client_pod_is_admitted_by_the_listeners(overlay: str) -> None:
    docs = render(f"overlays/{overlay}")
    listeners = _kafka(overlay)["spec"]["kafka"]["listeners"]

    for deployment in of_kind(docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if deployment["metadata"]["name"] == "mail-catcher":
            assert "send-casework/kafka-client" not in labels
            continue
        for listener in listeners:
            peers = [p for p in listener["networkPolicyPeers"] if "podSelector" in p]
            assert any(
                all(
                    labels.get(k) == v
                    for k, v in peer["podSelector"]["matchLabels"].items()
                )
                for peer in peers
            ), deployment["metadata"]["name"]


def test_the_configured_consumer_groups_are_ones_the_acls_grant() -> None:
    docs = render("overlays/prod")
    users = by_name(docs, "KafkaUser")
    checked = []

    for config_map in of_kind(docs, "ConfigMap"):
        for key, group in config_map["data"].items():
            if not key.endswith(("_CONSUMER_GROUP", "_APP_ID")):
                continue
            principal = key.split("_")[0].lower()
            # reviews names one group per followed topic under its prefix
            for candidate in (group, f"{group}.intake"):
                assert allowed(users[f"send-{principal}"], "Read", "group", candidate)
            checked.append(principal)

    assert sorted(checked) == ["deadlines", "notify", "placement", "plans", "reviews"]
