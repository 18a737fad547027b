"""The registry of event types, the topics, and what the services' code publishes.

The services are checked by a static scan of their source (``contract_scan``): every
own-prefix type string, every ``<Model>.EVENT_TYPE`` and the type of every event a
service makes to publish must be a registered type of that service's own owner.
"""

from __future__ import annotations

import textwrap
import types
from pathlib import Path
from typing import ClassVar

import pytest
from contract_files import REPO
from contract_scan import scan
from pydantic import BaseModel, ConfigDict

from send_schemas.registry import (
    PENDING_TOPICS,
    UnknownEventType,
    build_registry,
    event_type,
    event_types,
    registry,
    topic_problems,
)
from send_schemas.topics import TOPICS, Topic


def test_the_registry_has_no_problems() -> None:
    built = registry()

    assert built.problems == (), "\n".join(built.problems)
    assert {entry.owner for entry in built.types} >= {"intake", "deadlines", "notify"}


def test_every_type_is_on_its_owners_topic_with_its_version() -> None:
    for entry in event_types():
        assert entry.topic.owner == entry.owner, entry.type
        assert entry.type == f"send.{entry.owner}.{entry.name}.v{entry.version}"
        assert entry.type == entry.model.EVENT_TYPE  # type: ignore[attr-defined]
        assert "case_id" in entry.model.model_fields
        assert entry.source == f"/send/{entry.owner}"


def test_every_topic_has_a_producer_and_a_consumer() -> None:
    problems = topic_problems(registry())

    assert problems == [], "\n".join(problems)


def test_a_type_is_found_by_its_type_string() -> None:
    first = event_types()[0]

    assert event_type(first.type) is first
    with pytest.raises(UnknownEventType, match="not a registered event type"):
        event_type("send.intake.RequestInvented.v1")


# The checks themselves, on made-up modules --------------------------------------------


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str


def _module(
    name: str, owner: str | None, topic: str | None, **models: type
) -> types.ModuleType:
    module = types.ModuleType(f"fake_{name}")
    if owner is not None:
        module.OWNER = owner  # type: ignore[attr-defined]
    if topic is not None:
        module.TOPIC = topic  # type: ignore[attr-defined]
    for attribute, model in models.items():
        model.__module__ = module.__name__
        setattr(module, attribute, model)
    return module


def _model(name: str, event_type_string: str, base: type[BaseModel] = _Base) -> type:
    return type(
        name,
        (base,),
        {
            "EVENT_TYPE": event_type_string,
            "__annotations__": {"EVENT_TYPE": ClassVar[str]},
        },
    )


TEST_TOPICS = (
    Topic("send.alpha.events", owner="alpha", consumers=("beta",)),
    Topic("send.beta.events", owner="beta", consumers=("alpha",)),
)


def test_a_consistent_module_registers_its_models() -> None:
    module = _module(
        "alpha",
        "alpha",
        "send.alpha.events",
        ThingHappened=_model("ThingHappened", "send.alpha.ThingHappened.v1"),
        ThingHappenedV2=_model("ThingHappenedV2", "send.alpha.ThingHappened.v2"),
    )

    built = build_registry([module], TEST_TOPICS)

    assert built.problems == ()
    assert [(e.type, e.version) for e in built.types] == [
        ("send.alpha.ThingHappened.v1", 1),
        ("send.alpha.ThingHappened.v2", 2),
    ]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        pytest.param(
            _module(
                "wrong_topic",
                "alpha",
                "send.beta.events",
                ThingHappened=_model("ThingHappened", "send.alpha.ThingHappened.v1"),
            ),
            "says 'beta' owns",
            id="topic-owned-by-another-service",
        ),
        pytest.param(
            _module(
                "wrong_prefix",
                "alpha",
                "send.alpha.events",
                ThingHappened=_model("ThingHappened", "send.beta.ThingHappened.v1"),
            ),
            "names owner 'beta'",
            id="type-of-another-owner",
        ),
        pytest.param(
            _module(
                "bad_shape",
                "alpha",
                "send.alpha.events",
                ThingHappened=_model("ThingHappened", "alpha.thing-happened"),
            ),
            "is not of the form",
            id="type-string-shape",
        ),
        pytest.param(
            _module(
                "no_key",
                "alpha",
                "send.alpha.events",
                ThingHappened=type(
                    "ThingHappened",
                    (BaseModel,),
                    {
                        "model_config": ConfigDict(extra="forbid"),
                        "EVENT_TYPE": "send.alpha.ThingHappened.v1",
                        "__annotations__": {"EVENT_TYPE": ClassVar[str], "n": int},
                    },
                ),
            ),
            "has no 'case_id' field",
            id="no-case-id",
        ),
        pytest.param(
            _module(
                "tolerant",
                "alpha",
                "send.alpha.events",
                ThingHappened=type(
                    "ThingHappened",
                    (BaseModel,),
                    {
                        "EVENT_TYPE": "send.alpha.ThingHappened.v1",
                        "__annotations__": {
                            "EVENT_TYPE": ClassVar[str],
                            "case_id": str,
                        },
                    },
                ),
            ),
            "accepts unknown fields",
            id="producer-model-not-strict",
        ),
        pytest.param(
            _module(
                "unnamed",
                None,
                None,
                ThingHappened=_model("ThingHappened", "send.alpha.ThingHappened.v1"),
            ),
            "no OWNER and TOPIC",
            id="models-without-owner",
        ),
        pytest.param(
            _module(
                "undeclared_topic",
                "alpha",
                "send.alpha.stuff",
                ThingHappened=_model("ThingHappened", "send.alpha.ThingHappened.v1"),
            ),
            "does not declare",
            id="topic-not-declared",
        ),
        pytest.param(
            _module(
                "misnamed",
                "alpha",
                "send.alpha.events",
                Other=_model("Other", "send.alpha.ThingHappened.v1"),
            ),
            "name the class ThingHappened",
            id="class-name-differs",
        ),
    ],
)
def test_a_rule_broken_by_a_module_is_reported(
    module: types.ModuleType, expected: str
) -> None:
    built = build_registry([module], TEST_TOPICS)

    assert any(expected in problem for problem in built.problems), built.problems


def test_a_type_registered_twice_is_reported() -> None:
    first = _module(
        "one",
        "alpha",
        "send.alpha.events",
        A=_model("ThingHappened", "send.alpha.ThingHappened.v1"),
    )
    second = _module(
        "two",
        "alpha",
        "send.alpha.events",
        B=_model("ThingHappened", "send.alpha.ThingHappened.v1"),
    )

    built = build_registry([first, second], TEST_TOPICS)

    assert any("registered twice" in problem for problem in built.problems)


def test_topics_without_producer_or_consumer_or_unknown_pending_are_reported() -> None:
    module = _module(
        "alpha",
        "alpha",
        "send.alpha.events",
        ThingHappened=_model("ThingHappened", "send.alpha.ThingHappened.v1"),
    )
    declared = (
        *TEST_TOPICS,
        Topic("send.gamma.events", owner="gamma", consumers=()),
    )
    built = build_registry([module], declared)

    problems = topic_problems(
        built, declared, pending={"send.alpha.events": "x", "send.delta.events": "y"}
    )

    assert any("send.beta.events has no producer" in p for p in problems)
    assert any("send.gamma.events has no consumer" in p for p in problems)
    assert any("names send.delta.events" in p for p in problems)
    assert (
        topic_problems(built, TEST_TOPICS, pending={"send.beta.events": "later"}) == []
    )


def test_pending_topics_are_declared_topics() -> None:
    names = {topic.name for topic in TOPICS}

    assert set(PENDING_TOPICS) <= names


# What the services publish ------------------------------------------------------------


def test_the_services_publish_only_registered_types_of_their_own() -> None:
    result = scan(REPO, registry().by_type())

    assert result.files > 0
    assert result.problems == [], "\n".join(result.problems)
    published_by = {(r.service, r.event_type) for r in result.references if r.published}
    assert ("intake", "send.intake.RequestReceived.v1") in published_by
    assert ("notify", "send.notify.NotificationSent.v1") in published_by


def _service(root: Path, name: str, source: str) -> None:
    package = root / "services" / name / "src" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "publish.py").write_text(textwrap.dedent(source))


def test_the_scan_reports_what_breaks_the_rules(tmp_path: Path) -> None:
    _service(
        tmp_path,
        "intake",
        """
        from sendkit.events import NewEvent
        from send_schemas.intake import RequestReceived
        from send_schemas.notify import NotificationSent

        UNREGISTERED = "send.intake.RequestInvented.v1"

        class Local:
            EVENT_TYPE = "send.intake.Local.v1"

        def a(data):
            return NewEvent(type=f"send.intake.{data}.v1", data=data)

        def b(data):
            return NewEvent(NotificationSent.EVENT_TYPE, data)

        def c(data, model):
            return NewEvent(type=model.EVENT_TYPE, data=data)

        def d(data):
            return NewEvent(type=RequestReceived.EVENT_TYPE, data=data)
        """,
    )

    problems = scan(tmp_path, registry().by_type()).problems

    text = "\n".join(problems)
    assert "RequestInvented.v1, which is not in the registry" in text
    assert "class Local defines EVENT_TYPE" in text
    assert "NewEvent(type=...) is given" in text
    assert "only the notify service writes that type" in text
    assert "cannot tell which model 'model' is" in text
    assert not any("publish.py:20" in p for p in problems), text  # d() is fine


def test_the_scan_follows_an_annotated_base_class(tmp_path: Path) -> None:
    _service(
        tmp_path,
        "intake",
        """
        from sendkit.events import NewEvent
        from send_schemas import intake as contract

        def make(model: contract.IntakeEvent, data):
            return NewEvent(type=model.EVENT_TYPE, data=data)
        """,
    )

    result = scan(tmp_path, registry().by_type())

    assert result.problems == []
    assert "send.intake.RequestReceived.v1" in result.published()
