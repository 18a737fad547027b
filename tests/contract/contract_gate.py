"""The compatibility gate: may the current models be published as the same versions?

A published version keeps FULL transitive compatibility: a subscriber on any schema
of that version reads every event ever published under it, and an old subscriber reads
what the current producer writes. The gate holds the current schemas (generated from
the models) against two records of what was published:

- the golden samples (``schemas/samples/<owner>/<Name>/v<N>/r<K>-*.json``), which are
  written once per shape a version has had and never changed. Each must validate
  against the current schema (a current reader reads old events), each of its fields
  must still exist (nothing removed, however long ago it was added), and its key must
  still be the case id its data names (the key did not change);
- the committed schemas (``schemas/json``), i.e. the last published contract. The
  current samples must validate against them (an old reader reads new events), and
  comparing the two schemas field by field must find no removed field, no change of a
  field's type or constraints (enum values, pattern, format, bounds), no newly required
  field, no change of key or topic.

Each problem is a ``Breach``; an empty list means the change is compatible. A breaking
change is published as a new version of the type instead (``docs/subscribing.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

REMOVED = "removed field"
RETYPED = "retyped or re-constrained field"
NEW_REQUIRED = "new required field"
KEY_CHANGED = "changed key"
TOPIC_CHANGED = "changed topic"
OLD_SAMPLE_REJECTED = "old sample rejected by the current schema"
NEW_SAMPLE_REJECTED = "current sample rejected by the published schema"
HEADERS_REJECTED = "headers rejected"

# Keywords that decide which values a field accepts. A change to any of them turns
# away data that one side or the other writes; titles, descriptions and defaults do not.
_CONSTRAINTS = (
    "type",
    "format",
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
)


@dataclass(frozen=True, slots=True)
class Breach:
    """One reason the current contract would break a subscriber."""

    event_type: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.event_type}: {self.rule}: {self.detail}"


def validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def errors(schema: Mapping[str, Any], instance: Any) -> list[str]:
    """Why ``instance`` fails ``schema``, one line per error (empty when it passes)."""
    found = validator(schema).iter_errors(instance)
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in found
    )


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: Mapping[str, Any] = root["$defs"][ref.removeprefix("#/$defs/")]
        return resolved
    return node


def shape(node: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """What a field accepts, as a comparable value (refs resolved, order ignored)."""
    node = _resolve(node, root)
    if "anyOf" in node or "oneOf" in node:
        return (
            "anyOf",
            frozenset(shape(c, root) for c in node.get("anyOf") or node["oneOf"]),
        )
    parts: list[Any] = []
    for keyword in _CONSTRAINTS:
        if keyword in node:
            value = node[keyword]
            if isinstance(value, list):
                value = frozenset(map(str, value))
            parts.append((keyword, value))
    if "items" in node:
        parts.append(("items", shape(node["items"], root)))
    if "properties" in node:
        parts.append(
            (
                "properties",
                frozenset(
                    (name, shape(child, root))
                    for name, child in node["properties"].items()
                ),
            )
        )
        parts.append(("required", frozenset(node.get("required", ()))))
    return tuple(parts)


def compare(
    event_type: str, published: Mapping[str, Any], current: Mapping[str, Any]
) -> list[Breach]:
    """What the current schema breaks of the published one, field by field."""
    found = []
    if published.get("x-send-key") != current.get("x-send-key"):
        found.append(
            Breach(
                event_type,
                KEY_CHANGED,
                f"the key was {published.get('x-send-key')!r} and is now "
                f"{current.get('x-send-key')!r}: a new key reorders a case's events",
            )
        )
    if published.get("x-send-topic") != current.get("x-send-topic"):
        found.append(
            Breach(
                event_type,
                TOPIC_CHANGED,
                f"published on {published.get('x-send-topic')!r}, now on "
                f"{current.get('x-send-topic')!r}: subscribers would stop seeing it",
            )
        )
    old_fields = published.get("properties", {})
    new_fields = current.get("properties", {})
    for name, old in old_fields.items():
        if name not in new_fields:
            found.append(Breach(event_type, REMOVED, f"{name!r} is gone"))
        elif shape(old, published) != shape(new_fields[name], current):
            found.append(
                Breach(
                    event_type,
                    RETYPED,
                    f"{name!r} accepted {_brief(old, published)} and now accepts "
                    f"{_brief(new_fields[name], current)}",
                )
            )
    for name in current.get("required", ()):
        if name not in published.get("required", ()):
            found.append(
                Breach(
                    event_type,
                    NEW_REQUIRED,
                    f"{name!r} is required now; events published before lack it",
                )
            )
    return found


def _brief(node: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    node = _resolve(node, root)
    kept = {k: node[k] for k in (*_CONSTRAINTS, "anyOf", "items") if k in node}
    return repr(kept)


def check_golden(
    event_type: str,
    current: Mapping[str, Any],
    headers: Mapping[str, Any],
    golden: Mapping[str, Mapping[str, Any]],
) -> list[Breach]:
    """Old samples against the current schemas: valid, nothing removed, same key."""
    found = []
    key_field = current.get("x-send-key")
    properties = current.get("properties", {})
    for name, record in sorted(golden.items()):
        data = record["data"]
        found.extend(
            Breach(event_type, OLD_SAMPLE_REJECTED, f"{name}: {line}")
            for line in errors(current, data)
        )
        found.extend(
            Breach(event_type, HEADERS_REJECTED, f"{name} headers: {line}")
            for line in errors(headers, record["headers"])
        )
        found.extend(
            Breach(event_type, REMOVED, f"{name} carries {field!r}, which is gone")
            for field in data
            if field not in properties
        )
        key = record["key"]
        named = data.get(key_field) if isinstance(key_field, str) else None
        subject = record["headers"].get("ce_subject")
        if not (key == named == subject == record["headers"].get("ce_partitionkey")):
            found.append(
                Breach(
                    event_type,
                    KEY_CHANGED,
                    f"{name}: key {key!r} is no longer the {key_field!r} of its data "
                    f"({named!r}) and its subject ({subject!r})",
                )
            )
        if record["headers"].get("ce_type") != event_type:
            found.append(
                Breach(
                    event_type,
                    OLD_SAMPLE_REJECTED,
                    f"{name}: ce_type is {record['headers'].get('ce_type')!r}",
                )
            )
    return found


def check_published(
    event_type: str,
    published: Mapping[str, Any],
    current: Mapping[str, Any],
    published_headers: Mapping[str, Any],
    samples: Mapping[str, Mapping[str, Any]],
) -> list[Breach]:
    """The current schema and samples against the last published contract."""
    found = compare(event_type, published, current)
    for name, record in sorted(samples.items()):
        found.extend(
            Breach(event_type, NEW_SAMPLE_REJECTED, f"{name}: {line}")
            for line in errors(published, record["data"])
        )
        found.extend(
            Breach(event_type, HEADERS_REJECTED, f"{name} headers: {line}")
            for line in errors(published_headers, record["headers"])
        )
    return found


def gate(
    event_type: str,
    *,
    current: Mapping[str, Any],
    current_headers: Mapping[str, Any],
    current_samples: Mapping[str, Mapping[str, Any]],
    golden: Mapping[str, Mapping[str, Any]],
    published: Mapping[str, Any] | None,
    published_headers: Mapping[str, Any],
) -> list[Breach]:
    """Every breach of one type and version; ``published`` None for a new version."""
    found = check_golden(event_type, current, current_headers, golden)
    if published is not None:
        found.extend(
            check_published(
                event_type, published, current, published_headers, current_samples
            )
        )
    return found


def rules(breaches: Sequence[Breach]) -> set[str]:
    return {breach.rule for breach in breaches}
