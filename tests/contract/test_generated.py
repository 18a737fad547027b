"""The committed contract is what the models give, and says what the kernel sends.

Regenerate with ``python -m send_schemas.generate`` (``--check`` only compares).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import yaml  # type: ignore[import-untyped]
from contract_files import (
    ASYNCAPI,
    JSON_ROOT,
    SCHEMAS,
    committed_headers_schema,
    read_json,
)
from contract_gate import errors
from jsonschema import Draft202012Validator

from send_schemas.generate import (
    JSON_SCHEMA_DIALECT,
    SAMPLE_TIME,
    current_samples,
    headers_schema,
    kafka_headers,
    plan,
    sample_record,
)
from send_schemas.registry import INTERNAL_TOPICS, event_types
from send_schemas.topics import TOPICS
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent

REGENERATE = "run `python -m send_schemas.generate` and commit schemas/"


def test_the_committed_contract_is_what_the_models_give() -> None:
    differences = plan(SCHEMAS).differences()

    assert differences == [], (
        "the published contract differs from the models; "
        + REGENERATE
        + ":\n"
        + "\n".join(differences)
    )


def test_the_check_command_agrees() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "send_schemas.generate", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_published_schema_is_draft_2020_12_open_and_identified() -> None:
    ids = set()
    for entry in event_types():
        schema = read_json(JSON_ROOT / str(entry.schema_path))

        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == JSON_SCHEMA_DIALECT
        assert schema["$id"].endswith(f"/json/{entry.schema_path}")
        assert schema["x-send-type"] == entry.type
        assert schema["x-send-key"] == "case_id"
        assert "case_id" in schema["required"]
        assert not any(
            node.get("additionalProperties") is False for node in _walk(schema)
        ), f"{entry.type}: the published schema must be open to unknown fields"
        ids.add(schema["$id"])
    assert len(ids) == len(event_types())


def test_a_published_schema_accepts_a_field_a_later_release_adds() -> None:
    for entry in event_types():
        schema = read_json(JSON_ROOT / str(entry.schema_path))
        data = {**current_samples(entry)["full"], "added_in_a_later_release": 1}

        assert errors(schema, data) == [], entry.type


def _recorded(entry: Any, data: dict[str, Any], causation: str | None) -> RecordedEvent:
    return RecordedEvent(
        id="0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        stream_id=data["case_id"],
        version=3,
        position=42,
        type=entry.type,
        source=entry.source,
        time=datetime(2025, 1, 6, 9, 30, tzinfo=UTC),
        data=data,
        metadata=Metadata(
            actor="ehcco-0007", correlation_id="c-1", causation_id=causation
        ),
        private={"child_name": "Never Published"},
    )


def test_the_sample_headers_are_exactly_what_the_kernel_writes() -> None:
    for entry in event_types():
        data = current_samples(entry)["full"]
        for causation in ("cause-1", None):
            record = to_kafka(_recorded(entry, data, causation))

            ours = kafka_headers(
                event_id="0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                source=entry.source,
                event_type=entry.type,
                time=SAMPLE_TIME,
                case_id=data["case_id"],
                actor="ehcco-0007",
                correlation_id="c-1",
                causation_id=causation,
                sequence=3,
            )

            assert [(k, v.decode()) for k, v in record.headers] == ours
            assert record.key == data["case_id"].encode()
            assert errors(committed_headers_schema(), dict(ours)) == []


def test_the_headers_schema_names_every_header_the_kernel_writes() -> None:
    entry = event_types()[0]
    record = to_kafka(_recorded(entry, current_samples(entry)["full"], "cause-1"))
    schema = headers_schema()

    assert [name for name, _ in record.headers] == list(schema["properties"])
    assert set(schema["required"]) == set(schema["properties"]) - {"ce_causationid"}
    assert errors(schema, {k: v.decode() for k, v in record.headers}) == []
    broken = {k: v.decode() for k, v in record.headers} | {"ce_specversion": "0.3"}
    assert errors(schema, broken) != []


def test_the_asyncapi_document_describes_every_topic_and_message() -> None:
    document = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))

    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    assert set(channels) == {topic.name for topic in TOPICS}
    for topic in TOPICS:
        kafka = channels[topic.name]["bindings"]["kafka"]
        assert channels[topic.name]["address"] == topic.name
        assert kafka["partitions"] == topic.partitions
        assert kafka["topicConfiguration"]["retention.ms"] == topic.retention_ms
    for entry in event_types():
        message = document["components"]["messages"][entry.type]
        assert entry.type in channels[entry.topic.name]["messages"]
        assert message["payload"] == {"$ref": f"./json/{entry.schema_path}"}
        assert message["bindings"]["kafka"]["key"] == {
            "$ref": "#/components/schemas/CaseKey"
        }
        constants = message["headers"]["allOf"][1]["properties"]
        assert constants["ce_type"] == {"const": entry.type}
        example = message["examples"][0]
        assert (
            errors(read_json(JSON_ROOT / str(entry.schema_path)), example["payload"])
            == []
        )
        assert errors(headers_schema(), example["headers"]) == []
    headers = document["components"]["schemas"]["CloudEventHeaders"]
    assert headers["properties"] == headers_schema()["properties"]
    operations = {op["channel"]["$ref"] for op in document["operations"].values()}
    assert operations == {
        f"#/channels/{topic.name}"
        for topic in TOPICS
        if any(e.topic.name == topic.name for e in event_types())
    }
    assert set(INTERNAL_TOPICS) <= set(channels)


def test_a_sample_record_keys_by_case_id() -> None:
    for entry in event_types():
        data = current_samples(entry)["full"]
        record = sample_record(entry, data, "x")

        assert record["key"] == data["case_id"] == record["headers"]["ce_subject"]
        assert record["headers"]["ce_partitionkey"] == record["key"]
