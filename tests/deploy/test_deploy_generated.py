"""The generated manifests are current, and the generator's tables match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import DEPLOY, REPO, load_generator

from deadlines.settings import DeadlinesSettings
from notify.settings import NotifySettings
from send_schemas.topics import all_topics

generate = load_generator()


def test_generated_files_are_what_the_generator_writes_today() -> None:
    stale = generate.differences()

    assert stale == [], (
        f"stale generated manifests {stale}: the topic registry, the settings or "
        "deploy/generate.py changed; run `python deploy/generate.py` and commit"
    )


def test_check_mode_names_a_stale_file_and_fails(tmp_path: Path) -> None:
    generate.write(tmp_path)
    topics = tmp_path / "base/kafka/topics.yaml"
    topics.write_text(topics.read_text().replace("partitions: 6", "partitions: 5", 1))

    assert generate.differences(tmp_path) == ["base/kafka/topics.yaml"]


def test_the_script_runs_in_check_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "generate.py"), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def test_every_owner_and_consumer_of_the_registry_is_a_principal() -> None:
    named = {t.owner for t in all_topics()} | {
        c for t in all_topics() for c in t.consumers
    }

    principals = {p.name for p in generate.principals()}

    assert named <= principals
    assert principals - named == {generate.SUBSCRIBER}


def test_faust_app_ids_fall_under_their_principals_group_and_topic_prefix() -> None:
    # faust uses the app id as the consumer group and the prefix of its own topics;
    # the ACLs grant the prefix send-<principal>, so the configured ids must start so.
    by_name = {p.name: p for p in generate.principals()}
    deadlines = by_name["deadlines"]
    notify = by_name["notify"]
    configured = {service.name: service.config for service in generate.SERVICES}

    for app_id in (
        DeadlinesSettings.model_fields["app_id"].default,
        configured["deadlines"]["DEADLINES_APP_ID"],
    ):
        assert deadlines.group_prefix is not None
        assert deadlines.internal_topic_prefix is not None
        assert app_id.startswith(deadlines.group_prefix)
        assert app_id.startswith(deadlines.internal_topic_prefix)
    for app_id in (
        NotifySettings.model_fields["app_id"].default,
        configured["notify"]["NOTIFY_APP_ID"],
    ):
        assert notify.group_prefix is not None
        assert app_id.startswith(notify.group_prefix)


def test_an_extra_describe_of_an_unknown_topic_is_refused() -> None:
    registry = tuple(t for t in all_topics() if t.name != "send.plans.events")

    with pytest.raises(generate.GenerateError, match=r"send\.plans\.events"):
        generate.principals(registry)
