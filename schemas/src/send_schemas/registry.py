"""The one registry of published event types: type string, model, version, topic, owner.

An owner's events live in one module of this package (``send_schemas.intake``,
``send_schemas.notify``, ...). A module is an owner module when it defines ``OWNER``
(the owning service) and ``TOPIC`` (its topic in ``send_schemas.topics``); every
pydantic model defined in it with a non-empty ``EVENT_TYPE`` class attribute is a
published event type. Nothing else has to be registered: a new owner (placement, say)
slots in by adding ``send_schemas/placement.py`` with ``OWNER``, ``TOPIC`` and its
models, then running ``python -m send_schemas.generate``.

A type string has the form ``send.<owner>.<Name>.v<N>``. ``<Name>`` is the model's class
name, or the class name less a ``V<N>`` suffix, so a breaking change can be published as
``RequestReceivedV2`` (type ``send.intake.RequestReceived.v2``) beside the v1 model.
Every event is keyed by its case id (the ``case_id`` field, also the CloudEvents
subject), and its CloudEvents ``source`` is ``/send/<owner>``.

``registry()`` builds the registry once from the package's modules. Its ``problems``
list what breaks the rules above (a type string of the wrong shape or owner, a topic
owned by another service, a model without ``case_id`` or that accepts unknown fields,
a type registered twice); the contract tests fail while any are listed, and
``event_types()`` refuses to answer.

Topics that are declared in ``send_schemas.topics`` and may have no registered type yet
are named in ``PENDING_TOPICS`` with the reason; every other topic without a type fails
the contract tests. An entry has no effect once its topic has a type, and should then
be removed.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from send_schemas import topics as topic_registry
from send_schemas.topics import Topic

TYPE_PREFIX = "send"
KEY_FIELD = "case_id"
SCHEMA_BASE_URI = "https://send-casework.example/schemas/json/"
"""The base of every schema's ``$id``: an identifier, not an address to fetch from."""

PENDING_TOPICS: Mapping[str, str] = {
    "send.clock.ticks": (
        "ticks carry only the time for the deadlines processor, not case events; "
        "their format and the ticker that writes them are not written yet"
    ),
}

RETIRED_TYPES: Mapping[str, str] = {}
"""Versions no longer published, each with the date its deprecation period ended.

A published version is only ever removed this way: its model goes, its golden samples
stay, and this table says when and why it stopped.
"""

INTERNAL_TOPICS: Mapping[str, str] = {
    "send.clock.ticks": (
        "Internal to the platform: only the deadlines processor reads it, and its "
        "messages are not part of the published contract."
    ),
}
"""Declared topics that carry no case events and are not for subscribers."""

# Modules of this package that hold no event models.
_NOT_OWNER_MODULES = frozenset({"registry", "generate", "personal_data", "topics"})
_TYPE = re.compile(
    r"^send\.(?P<owner>[a-z][a-z0-9]*)\.(?P<name>[A-Z][A-Za-z0-9]*)"
    r"\.v(?P<version>[1-9][0-9]*)$"
)


ModelClass = type[BaseModel]


class RegistryError(Exception):
    """Root of the registry's errors."""


class UnknownEventType(RegistryError, KeyError):
    """A type string that no registered model describes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidRegistry(RegistryError):
    """The models break the registry's rules; ``problems`` says how."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "the event registry is inconsistent; fix these in send_schemas:\n- "
            + "\n- ".join(self.problems)
        )


@dataclass(frozen=True, slots=True)
class EventType:
    """One published event type and version."""

    type: str
    name: str
    version: int
    owner: str
    topic: Topic
    model: ModelClass
    key_field: str = KEY_FIELD

    @property
    def source(self) -> str:
        """The CloudEvents ``source`` (``ce_source``) of this owner's events."""
        return f"/send/{self.owner}"

    @property
    def schema_path(self) -> PurePosixPath:
        """Where its JSON Schema is, under ``schemas/json``: ``intake/X/v1.json``."""
        return PurePosixPath(self.owner, self.name, f"v{self.version}.json")

    @property
    def samples_path(self) -> PurePosixPath:
        """Where its golden samples are, under ``schemas/samples``."""
        return PurePosixPath(self.owner, self.name, f"v{self.version}")

    @property
    def schema_id(self) -> str:
        return SCHEMA_BASE_URI + str(self.schema_path)

    @property
    def summary(self) -> str:
        """The first paragraph of the model's docstring, on one line."""
        doc = (self.model.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split())


@dataclass(frozen=True, slots=True)
class Registry:
    """Every registered type, and whatever breaks the rules."""

    types: tuple[EventType, ...]
    owner_modules: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())

    def by_type(self) -> dict[str, EventType]:
        return {entry.type: entry for entry in self.types}

    def on_topic(self, name: str) -> tuple[EventType, ...]:
        return tuple(entry for entry in self.types if entry.topic.name == name)


def parse_type(event_type: str) -> tuple[str, str, int] | None:
    """``(owner, name, version)`` of a well-formed type string, else None."""
    match = _TYPE.match(event_type)
    if match is None:
        return None
    return match["owner"], match["name"], int(match["version"])


def models_of(module: ModuleType) -> list[ModelClass]:
    """The event models a module defines: pydantic models with an ``EVENT_TYPE``."""
    found: list[ModelClass] = []
    for value in vars(module).values():
        if not (isinstance(value, type) and issubclass(value, BaseModel)):
            continue
        event_type = getattr(value, "EVENT_TYPE", None)
        defined_here = value.__module__ == module.__name__
        if defined_here and isinstance(event_type, str) and event_type:
            found.append(value)
    return found


def build_registry(
    modules: Iterable[ModuleType],
    declared_topics: Iterable[Topic] = topic_registry.TOPICS,
) -> Registry:
    """The registry of the event models in ``modules``, checked against the topics."""
    topics = {topic.name: topic for topic in declared_topics}
    problems: list[str] = []
    entries: dict[str, EventType] = {}
    owner_modules: list[str] = []
    for module in modules:
        owner = getattr(module, "OWNER", None)
        topic_name = getattr(module, "TOPIC", None)
        models = models_of(module)
        if not isinstance(owner, str) or not isinstance(topic_name, str):
            if models:
                problems.append(
                    f"{module.__name__} defines event models but no OWNER and TOPIC: "
                    "declare both at the top of the module"
                )
            continue
        owner_modules.append(module.__name__)
        topic = topics.get(topic_name)
        if topic is None:
            problems.append(
                f"{module.__name__}.TOPIC is {topic_name!r}, which send_schemas.topics "
                "does not declare: add it to TOPICS or fix the name"
            )
            continue
        if topic.owner != owner:
            problems.append(
                f"{module.__name__} (owner {owner!r}) publishes on {topic_name}, which "
                f"send_schemas.topics says {topic.owner!r} owns: each topic has one "
                "writer, so use the owner's own topic"
            )
        for model in models:
            entry = _entry(model, owner, topic, problems)
            if entry is None:
                continue
            if entry.type in entries:
                problems.append(
                    f"{entry.type} is registered twice ({entries[entry.type].model} "
                    f"and {model}): give the new model a new version"
                )
                continue
            entries[entry.type] = entry
    ordered = sorted(entries.values(), key=lambda e: (e.owner, e.name, e.version))
    return Registry(tuple(ordered), tuple(owner_modules), tuple(problems))


def _entry(
    model: ModelClass, owner: str, topic: Topic, problems: list[str]
) -> EventType | None:
    event_type: str = model.EVENT_TYPE  # type: ignore[attr-defined]
    where = f"{model.__module__}.{model.__qualname__}"
    parsed = parse_type(event_type)
    if parsed is None:
        problems.append(
            f"{where}.EVENT_TYPE {event_type!r} is not of the form "
            "'send.<owner>.<Name>.v<N>' (e.g. 'send.intake.RequestReceived.v1')"
        )
        return None
    type_owner, name, version = parsed
    if type_owner != owner:
        problems.append(
            f"{where}.EVENT_TYPE {event_type!r} names owner {type_owner!r}, but its "
            f"module's OWNER is {owner!r}"
        )
    if model.__name__ not in (name, f"{name}V{version}"):
        problems.append(
            f"{where} publishes {event_type!r}: name the class {name} (or "
            f"{name}V{version}) so code and contract read alike"
        )
    if KEY_FIELD not in model.model_fields:
        problems.append(
            f"{where} has no {KEY_FIELD!r} field: every event is keyed by its case id"
        )
    if model.model_config.get("extra") != "forbid":
        problems.append(
            f"{where} accepts unknown fields: producer models set "
            "model_config = ConfigDict(extra='forbid')"
        )
    return EventType(event_type, name, version, owner, topic, model)


def owner_modules() -> list[ModuleType]:
    """Every module of this package that may define event models, imported."""
    import send_schemas

    modules = []
    for info in sorted(
        pkgutil.iter_modules(send_schemas.__path__), key=lambda m: m.name
    ):
        if info.name.startswith("_") or info.name in _NOT_OWNER_MODULES:
            continue
        modules.append(importlib.import_module(f"send_schemas.{info.name}"))
    return modules


@cache
def registry() -> Registry:
    """The registry of this package's models (built once)."""
    return build_registry(owner_modules())


def event_types() -> tuple[EventType, ...]:
    """Every registered type; ``InvalidRegistry`` if the models break the rules."""
    built = registry()
    if built.problems:
        raise InvalidRegistry(built.problems)
    return built.types


def event_type(type_string: str) -> EventType:
    """The registered type of a ``ce_type``; ``UnknownEventType`` if there is none."""
    found = {entry.type: entry for entry in event_types()}.get(type_string)
    if found is None:
        raise UnknownEventType(
            f"{type_string!r} is not a registered event type; registered types are "
            "listed in schemas/asyncapi.yaml (python -m send_schemas.generate "
            "--list prints them)"
        )
    return found


def topic_problems(
    built: Registry,
    declared_topics: Iterable[Topic] = topic_registry.TOPICS,
    pending: Mapping[str, str] = PENDING_TOPICS,
) -> list[str]:
    """What is wrong with the topics: no producer, no consumer, unknown pending names.

    A pending topic stops being pending by itself once a type is registered on it, so
    the owner adding its models need not edit this module.
    """
    problems = []
    for topic in declared_topics:
        produced = built.on_topic(topic.name)
        if not produced and topic.name not in pending:
            problems.append(
                f"{topic.name} has no producer: no registered event type is published "
                f"on it (add {topic.owner}'s models, or list it in PENDING_TOPICS "
                "with the reason)"
            )
        if not topic.consumers:
            problems.append(
                f"{topic.name} has no consumer in send_schemas.topics: a topic nobody "
                "reads should not exist"
            )
    names = {topic.name for topic in declared_topics}
    problems.extend(
        f"PENDING_TOPICS names {name}, which send_schemas.topics does not declare"
        for name in pending
        if name not in names
    )
    return problems


def describe(entry: EventType) -> dict[str, Any]:
    """A plain summary of one type, for listings."""
    return {
        "type": entry.type,
        "owner": entry.owner,
        "topic": entry.topic.name,
        "model": f"{entry.model.__module__}.{entry.model.__qualname__}",
        "schema": f"schemas/json/{entry.schema_path}",
    }
