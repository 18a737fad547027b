"""Writes the published contract from the models: JSON Schemas, AsyncAPI, samples.

``python -m send_schemas.generate`` writes, under ``schemas/``:

- ``json/<owner>/<Name>/v<N>.json``: the JSON Schema (draft 2020-12) of each
  registered event type's ``data``, with its ``$id``. Producer models forbid unknown
  fields, but the published schema is open (``additionalProperties`` is never false),
  so a subscriber validating with it keeps working when a later release adds an
  optional field.
- ``json/envelope/kafka-headers.json``: the schema of the record headers every event
  carries (CloudEvents 1.0, Kafka binary mode), as ``sendkit.envelope.to_kafka`` writes
  them.
- ``asyncapi.yaml``: an AsyncAPI 3.0 document of every topic in ``send_schemas.topics``
  with its Kafka bindings, headers, key and messages.
- ``samples/<owner>/<Name>/v<N>/r<K>-<variant>.json``: golden sample records (key,
  headers, data; synthetic values). Samples are written once and never changed: a run
  adds a new revision ``r<K+1>`` only when the model has a field that no earlier sample
  carries, so the samples keep every shape a version has had. The compatibility gate
  (``tests/contract``) checks them against the current schemas.

``--check`` writes nothing and exits 1, listing the differences, if any file is not what
the models give; the contract tests run the same check. ``--list`` prints the types.

The record headers are built here by ``kafka_headers``, a copy of the rules of
``sendkit.envelope.to_kafka``: this package is the contract subscribers install and must
not pull in the kernel. ``tests/contract`` proves the two give the same headers.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError

from send_schemas import topics as topic_registry
from send_schemas.registry import (
    INTERNAL_TOPICS,
    KEY_FIELD,
    SCHEMA_BASE_URI,
    EventType,
    event_types,
)
from send_schemas.topics import Topic

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
CONTRACT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
HEADERS_SCHEMA_PATH = "envelope/kafka-headers.json"
CONTENT_TYPE = "application/json"
SPECVERSION = "1.0"

CASE_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
STAFF_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TYPE_PATTERN = r"^send\.[a-z][a-z0-9]*\.[A-Z][A-Za-z0-9]*\.v[1-9][0-9]*$"
TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"

# Synthetic values for the golden samples. Strings with a pattern take the value for
# that pattern; ids are derived from the field name, so every run gives the same bytes.
SAMPLE_CASE_ID = "5a1d3c2e-7b4f-4e6a-9c8d-0f1e2d3c4b5a"
SAMPLE_STAFF_ID = "ehcco-0007"
SAMPLE_DATE = "2025-01-06"
SAMPLE_DATETIME = "2025-01-06T09:30:00Z"
SAMPLE_TIME = "2025-01-06T09:30:00.000000Z"
SAMPLE_CORRELATION_ID = "corr-5a1d3c2e"
SAMPLE_PATTERN_VALUES: Mapping[str, str] = {
    CASE_ID_PATTERN: SAMPLE_CASE_ID,
    STAFF_ID_PATTERN: SAMPLE_STAFF_ID,
    TYPE_PATTERN: "send.intake.RequestReceived.v1",
}
# Plain strings that a reader expects in a certain shape, named by field.
SAMPLE_FIELD_VALUES: Mapping[str, str] = {
    "old_value": "2025-01-06T09:30:00Z",
    "new_value": "2025-01-07T10:15:00Z",
    "clock": "decision",
    "exception_reason": "a",
    "stopped_by": "send.intake.AssessmentAgreed.v1",
    "cancelled_by": "send.intake.RequestWithdrawn.v1",
    "alert_kind": "approaching",
    "recipient_role": "coordinator",
    "failure": "permanent",
    "rules_version": "2025.1",
}
# Whole-sample values for models whose fields constrain each other (by type).
SAMPLE_OVERRIDES: Mapping[str, Mapping[str, Any]] = {
    "send.intake.SurgeryPresentationCorrected.v1": {
        "field": "presented_on",
        "old_value": "2025-02-10",
        "new_value": "2025-02-11",
    },
    "send.plans.PlanAmended.v1": {"changes": ["I"]},
    "send.plans.PlanCorrected.v1": {
        "event_type": "send.plans.PlanIssued.v1",
        "field": "issued_on",
        "old_value": "2025-01-06",
        "new_value": "2025-01-07",
    },
}
_SAMPLE_NAMESPACE = uuid.UUID("0b7e4c1a-6f2d-5e3b-8a9c-1d2e3f4a5b6c")

SERVERS: Mapping[str, Any] = {
    "local": {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": (
            "The single-node development broker that `make run` starts (plain text, "
            "no authentication). Its port is chosen at start-up and printed."
        ),
    },
    "production": {
        "host": "{cluster}-kafka-bootstrap.{namespace}.svc:9093",
        "protocol": "kafka-secure",
        "description": (
            "The council's Strimzi-managed cluster: TLS on port 9093, each subscriber "
            "authenticating as its own read-only KafkaUser (SCRAM-SHA-512 or mutual "
            "TLS). See docs/subscribing.md."
        ),
        "variables": {
            "cluster": {"default": "send", "description": "The Kafka resource name."},
            "namespace": {
                "default": "send",
                "description": "The Kubernetes namespace of the cluster.",
            },
        },
        "security": [
            {"$ref": "#/components/securitySchemes/scram"},
            {"$ref": "#/components/securitySchemes/mutualTls"},
        ],
    },
}


class GenerateError(Exception):
    """The contract cannot be generated from the models as they are."""


# JSON Schema --------------------------------------------------------------------------


def _open(node: Any) -> Any:
    """``node`` with every ``additionalProperties: false`` removed (readers' schema)."""
    if isinstance(node, dict):
        return {
            key: _open(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_open(value) for value in node]
    return node


def model_schema(
    model: type[BaseModel],
    *,
    type_string: str,
    owner: str,
    topic: str,
    schema_id: str,
    key_field: str = KEY_FIELD,
) -> dict[str, Any]:
    """The published JSON Schema of a model's data, open to unknown fields."""
    generated = _open(model.model_json_schema(mode="validation"))
    name, version = type_string.rsplit(".", 2)[-2:]
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id,
        "title": f"{name} {version}",
        "description": " ".join((generated.pop("description", "") or "").split()),
        "x-send-type": type_string,
        "x-send-owner": owner,
        "x-send-topic": topic,
        "x-send-key": key_field,
    }
    generated.pop("title", None)
    schema.update(generated)
    return schema


def published_schema(entry: EventType) -> dict[str, Any]:
    """The JSON Schema published for one registered type."""
    return model_schema(
        entry.model,
        type_string=entry.type,
        owner=entry.owner,
        topic=entry.topic.name,
        schema_id=entry.schema_id,
        key_field=entry.key_field,
    )


def headers_schema() -> dict[str, Any]:
    """The schema of every event record's headers (all values UTF-8 strings)."""

    def text(description: str, **rules: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **rules}

    properties = {
        "ce_specversion": text("CloudEvents version.", const=SPECVERSION),
        "ce_id": text(
            "The event id, assigned when the event was recorded (a UUID today; "
            "treat it as opaque). A redelivered or replayed event has the same id: "
            "drop repeats by it.",
            minLength=1,
        ),
        "ce_source": text(
            "The producing service: /send/<owner>.", pattern=r"^/send/[a-z][a-z0-9]*$"
        ),
        "ce_type": text(
            "The event type, send.<owner>.<Name>.v<N>; the payload's schema is "
            "json/<owner>/<Name>/v<N>.json.",
            pattern=TYPE_PATTERN,
        ),
        "ce_time": text(
            "When the event was recorded, RFC 3339 in UTC with microseconds. The "
            "facts' own dates are in the payload.",
            format="date-time",
            pattern=TIME_PATTERN,
        ),
        "ce_subject": text(
            "The pseudonymous case id; equal to the record key.",
            pattern=CASE_ID_PATTERN,
        ),
        "ce_partitionkey": text(
            "CloudEvents partitioning extension: the case id, equal to the key.",
            pattern=CASE_ID_PATTERN,
        ),
        "content-type": text(
            "The payload's media type (CloudEvents datacontenttype).",
            const=CONTENT_TYPE,
        ),
        "ce_actor": text(
            "Who caused the event: a pseudonymous staff id, or 'system'.",
            pattern=STAFF_ID_PATTERN,
        ),
        "ce_correlationid": text(
            "The id of the request the event belongs to, carried across services.",
            minLength=1,
        ),
        "ce_causationid": text(
            "The id of the command or event that directly caused this one; absent "
            "when not known.",
            minLength=1,
        ),
        "ce_sequence": text(
            "The event's position in its case's stream at the producer (1, 2, ...), "
            "in decimal: a gap or a step back shows a missed or repeated event.",
            pattern=r"^[1-9][0-9]*$",
        ),
    }
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_BASE_URI + HEADERS_SCHEMA_PATH,
        "title": "CloudEvents Kafka headers",
        "description": (
            "The headers of every event record, in CloudEvents 1.0 binary mode: "
            "each attribute a ce_<name> header, datacontenttype as content-type, "
            "names and values UTF-8. Other headers may be added; ignore those you "
            "do not know."
        ),
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name != "ce_causationid"],
    }


# Golden samples -----------------------------------------------------------------------


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: Mapping[str, Any] = root["$defs"][ref.removeprefix("#/$defs/")]
        return resolved
    return node


def _sample_value(
    name: str, node: Mapping[str, Any], root: Mapping[str, Any], owner: str
) -> Any:
    if name == KEY_FIELD:
        return SAMPLE_CASE_ID
    node = _resolve(node, root)
    if "anyOf" in node:
        choices = [c for c in node["anyOf"] if _resolve(c, root).get("type") != "null"]
        return _sample_value(name, choices[0], root, owner) if choices else None
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "string":
        if "pattern" in node:
            try:
                return SAMPLE_PATTERN_VALUES[node["pattern"]]
            except KeyError:
                raise GenerateError(
                    f"no sample value for pattern {node['pattern']!r} (field {name}): "
                    "add one to SAMPLE_PATTERN_VALUES in send_schemas.generate"
                ) from None
        if name in SAMPLE_FIELD_VALUES:
            return SAMPLE_FIELD_VALUES[name]
        fmt = node.get("format")
        if fmt == "date":
            return SAMPLE_DATE
        if fmt == "date-time":
            return SAMPLE_DATETIME
        if fmt == "uuid" or name.endswith("_id"):
            return str(uuid.uuid5(_SAMPLE_NAMESPACE, f"{owner}:{name}"))
        return f"synthetic {name.replace('_', ' ')}"
    if kind == "integer":
        low, high = node.get("minimum", 1), node.get("maximum", 1)
        return min(max(1, low), high)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [_sample_value(name, node.get("items", {}), root, owner)]
    if kind == "object" and "properties" in node:
        # A nested model (an option of a panel submission): every field filled.
        return {
            field: _sample_value(field, child, root, owner)
            for field, child in node["properties"].items()
        }
    if kind == "null":
        return None
    raise GenerateError(
        f"cannot make a sample value for field {name} ({dict(node)!r}): give it a "
        "simple JSON type or extend send_schemas.generate._sample_value"
    )


def sample_data(entry: EventType, *, full: bool) -> dict[str, Any]:
    """The data a producer would publish: ``full`` sets every optional field too.

    Built from the schema, checked by the producer model, and dumped the way the
    services dump it (``model_dump(mode="json")``, so defaults appear as values).
    """
    schema = entry.model.model_json_schema(mode="validation")
    required = set(schema.get("required", ()))
    values = {
        name: _sample_value(name, node, schema, entry.owner)
        for name, node in schema.get("properties", {}).items()
        if full or name in required
    }
    overrides = SAMPLE_OVERRIDES.get(entry.type, {})
    values.update({k: v for k, v in overrides.items() if k in values})
    try:
        model = entry.model.model_validate(values)
    except ValidationError as error:
        raise GenerateError(
            f"the sample values for {entry.type} do not satisfy its model: {error}; "
            "add its values to SAMPLE_OVERRIDES in send_schemas.generate"
        ) from None
    data: dict[str, Any] = model.model_dump(mode="json")
    return data


def kafka_headers(
    *,
    event_id: str,
    source: str,
    event_type: str,
    time: str,
    case_id: str,
    actor: str,
    correlation_id: str,
    causation_id: str | None,
    sequence: int,
) -> list[tuple[str, str]]:
    """The headers ``sendkit.envelope.to_kafka`` writes, in its order, as text."""
    headers = [
        ("ce_specversion", SPECVERSION),
        ("ce_id", event_id),
        ("ce_source", source),
        ("ce_type", event_type),
        ("ce_time", time),
        ("ce_subject", case_id),
        ("ce_partitionkey", case_id),
        ("content-type", CONTENT_TYPE),
        ("ce_actor", actor),
        ("ce_correlationid", correlation_id),
    ]
    if causation_id is not None:
        headers.append(("ce_causationid", causation_id))
    headers.append(("ce_sequence", str(sequence)))
    return headers


def sample_record(
    entry: EventType, data: Mapping[str, Any], name: str
) -> dict[str, Any]:
    """A golden sample: the record key, headers and value of one published event."""
    case_id = str(data[entry.key_field])
    headers = kafka_headers(
        event_id=str(uuid.uuid5(_SAMPLE_NAMESPACE, f"{entry.type}:{name}")),
        source=entry.source,
        event_type=entry.type,
        time=SAMPLE_TIME,
        case_id=case_id,
        actor=SAMPLE_STAFF_ID,
        correlation_id=SAMPLE_CORRELATION_ID,
        causation_id=str(uuid.uuid5(_SAMPLE_NAMESPACE, f"cause:{entry.type}")),
        sequence=1,
    )
    return {"key": case_id, "headers": dict(headers), "data": dict(data)}


def current_samples(entry: EventType) -> dict[str, dict[str, Any]]:
    """The samples the current model gives, by variant: ``full``, ``defaults``."""
    full = sample_data(entry, full=True)
    defaults = sample_data(entry, full=False)
    variants = {"full": full}
    if defaults != full:
        variants["defaults"] = defaults
    return variants


def _sample_files(samples_dir: Path) -> list[Path]:
    return sorted(samples_dir.glob("r*-*.json")) if samples_dir.is_dir() else []


def new_sample_files(entry: EventType, samples_dir: Path) -> dict[str, dict[str, Any]]:
    """Golden sample files to add for ``entry`` (file name to content), maybe none.

    A first revision when there is none; a next one when the model has a field that
    no existing sample carries.
    """
    existing = _sample_files(samples_dir)
    covered: set[str] = set()
    revisions = [0]
    for path in existing:
        covered.update(json.loads(path.read_text(encoding="utf-8"))["data"])
        revisions.append(int(path.name.split("-", 1)[0].removeprefix("r")))
    variants = current_samples(entry)
    if existing and set(variants["full"]) <= covered:
        return {}
    revision = max(revisions) + 1
    return {
        f"r{revision}-{variant}.json": sample_record(
            entry, data, f"r{revision}-{variant}"
        )
        for variant, data in variants.items()
    }


# AsyncAPI -----------------------------------------------------------------------------


def _channel_id(topic: Topic) -> str:
    return topic.name


def _message_id(entry: EventType) -> str:
    return entry.type


def _message(entry: EventType, example: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": entry.type,
        "title": f"{entry.name} v{entry.version}",
        "summary": entry.summary,
        "contentType": CONTENT_TYPE,
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEventHeaders"},
                {
                    "type": "object",
                    "properties": {
                        "ce_type": {"const": entry.type},
                        "ce_source": {"const": entry.source},
                    },
                },
            ]
        },
        "payload": {"$ref": f"./json/{entry.schema_path}"},
        "correlationId": {"location": "$message.header#/ce_correlationid"},
        "bindings": {
            "kafka": {
                "key": {"$ref": "#/components/schemas/CaseKey"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": "synthetic",
                "summary": "A synthetic event (no real person).",
                "headers": dict(example["headers"]),
                "payload": dict(example["data"]),
            }
        ],
    }


def _retention(topic: Topic) -> str:
    if topic.retention_ms < 0:
        return "kept forever (retention.ms -1)"
    days = topic.retention_ms / 86_400_000
    return f"kept {days:g} days (retention.ms {topic.retention_ms})"


def asyncapi_document(
    types: Sequence[EventType] | None = None,
    declared_topics: Sequence[Topic] = topic_registry.TOPICS,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every topic and every registered message."""
    entries = list(event_types() if types is None else types)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in declared_topics:
        on_topic = [e for e in entries if e.topic.name == topic.name]
        channel_id = _channel_id(topic)
        if topic.name in INTERNAL_TOPICS:
            description = (
                f"{topic.description} {INTERNAL_TOPICS[topic.name]} "
                f"{topic.partitions} partitions; {_retention(topic)}."
            )
        else:
            state = "" if on_topic else " No event types are published on it yet."
            description = (
                f"{topic.description} Written only by the {topic.owner} service; "
                f"keyed by case id; {topic.partitions} partitions; "
                f"{_retention(topic)}.{state}"
            )
        channels[channel_id] = {
            "address": topic.name,
            "title": topic.name,
            "description": description,
            "messages": {
                _message_id(e): {"$ref": f"#/components/messages/{_message_id(e)}"}
                for e in on_topic
            },
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": ["delete"],
                        "retention.ms": topic.retention_ms,
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        if not on_topic:
            continue
        operations[f"publish.{topic.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "title": f"{topic.owner} publishes",
            "summary": (
                f"The {topic.owner} service writes these events, in order per case."
            ),
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{_message_id(e)}"}
                for e in on_topic
            ],
        }
        for entry in on_topic:
            example = sample_record(entry, sample_data(entry, full=True), "example")
            messages[_message_id(entry)] = _message(entry, example)

    headers = headers_schema()
    header_schema = {k: v for k, v in headers.items() if k not in ("$schema", "$id")}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:send-casework:events",
        "info": {
            "title": "SEND casework events",
            "version": CONTRACT_VERSION,
            "description": (
                "The events of an English council's SEND casework platform: requests "
                "for EHC needs assessments, decisions, plans, reviews, placements, "
                "statutory clocks and alerts. Every event is a CloudEvent 1.0 in "
                "Kafka binary mode: ce_* headers, a JSON payload, the pseudonymous "
                "case id as key and subject. Events of one case are in order on one "
                "partition; delivery is at least once, so drop repeats by ce_id. "
                "No names, dates of birth, addresses, contact details, free-text "
                "notes or types of need are published. Generated from send_schemas "
                "by python -m send_schemas.generate; see docs/subscribing.md."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": copy.deepcopy(dict(SERVERS)),
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "CloudEventHeaders": header_schema,
                "CaseKey": {
                    "type": "string",
                    "description": (
                        "The record key: the pseudonymous case id as UTF-8 bytes. "
                        "Equal to ce_subject, ce_partitionkey and the payload's "
                        "case_id."
                    ),
                    "pattern": CASE_ID_PATTERN,
                },
            },
            "messages": messages,
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": (
                        "SASL SCRAM-SHA-512 over TLS as the subscriber's KafkaUser."
                    ),
                },
                "mutualTls": {
                    "type": "X509",
                    "description": (
                        "Mutual TLS with the subscriber's KafkaUser certificate."
                    ),
                },
            },
        },
    }


def render_yaml(document: Mapping[str, Any]) -> str:
    text: str = yaml.safe_dump(
        document,
        sort_keys=False,
        allow_unicode=True,
        width=88,
        default_flow_style=False,
    )
    return "# Generated by `python -m send_schemas.generate`: do not edit.\n" + text


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# Files --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """What the generator would write: generated files, new samples, stale files."""

    generated: dict[Path, str]
    new_samples: dict[Path, str]
    stale: tuple[Path, ...]

    def differences(self) -> list[str]:
        """Each file that is missing, differs or should not be there."""
        found = []
        for path, text in self.generated.items():
            if not path.is_file():
                found.append(f"missing: {path}")
            elif path.read_text(encoding="utf-8") != text:
                found.append(f"differs from the models: {path}")
        found.extend(f"no golden sample yet: {path}" for path in self.new_samples)
        found.extend(f"not generated from any model: {path}" for path in self.stale)
        return found


def default_root() -> Path:
    """The ``schemas/`` folder of the source tree this module belongs to."""
    return Path(__file__).resolve().parents[2]


def plan(root: Path, types: Iterable[EventType] | None = None) -> Plan:
    """Everything the models give, against what is under ``root`` (``schemas/``)."""
    entries = list(event_types() if types is None else types)
    json_root = root / "json"
    generated: dict[Path, str] = {
        json_root / HEADERS_SCHEMA_PATH: render_json(headers_schema()),
        root / "asyncapi.yaml": render_yaml(asyncapi_document(entries)),
    }
    new_samples: dict[Path, str] = {}
    for entry in entries:
        generated[json_root / str(entry.schema_path)] = render_json(
            published_schema(entry)
        )
        samples_dir = root / "samples" / str(entry.samples_path)
        for name, record in new_sample_files(entry, samples_dir).items():
            new_samples[samples_dir / name] = render_json(record)
    on_disk = set(json_root.rglob("*.json")) if json_root.is_dir() else set()
    stale = tuple(sorted(on_disk - set(generated)))
    return Plan(generated, new_samples, stale)


def write(found: Plan) -> list[Path]:
    """Write a plan's files and remove its stale ones; samples are only ever added."""
    changed = []
    for path, text in {**found.generated, **found.new_samples}.items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    for path in found.stale:
        path.unlink()
        changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m send_schemas.generate",
        description="Write the JSON Schemas, AsyncAPI document and golden samples.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the schemas/ folder (default: this one)",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 on any difference"
    )
    parser.add_argument("--list", action="store_true", help="print the event types")
    arguments = parser.parse_args(argv)
    root = arguments.root or default_root()

    if arguments.list:
        for entry in event_types():
            sys.stdout.write(
                f"{entry.type}\t{entry.topic.name}\tjson/{entry.schema_path}\n"
            )
        return 0
    found = plan(root)
    if arguments.check:
        differences = found.differences()
        for line in differences:
            sys.stderr.write(line + "\n")
        if differences:
            sys.stderr.write(
                "the published contract is out of date: run "
                "`python -m send_schemas.generate` and commit schemas/\n"
            )
        return 1 if differences else 0
    for path in write(found):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
