"""The compatibility gate over every published version, and proof that it bites.

Old (golden) samples must validate against the current schemas, current samples
against the committed schemas, and no field may be removed, retyped or newly required,
and no key changed, within a version (``contract_gate``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

import pytest
from contract_files import (
    SAMPLES_ROOT,
    committed_headers_schema,
    committed_schema,
    golden_samples,
)
from contract_gate import (
    HEADERS_REJECTED,
    KEY_CHANGED,
    NEW_REQUIRED,
    NEW_SAMPLE_REJECTED,
    OLD_SAMPLE_REJECTED,
    REMOVED,
    RETYPED,
    TOPIC_CHANGED,
    Breach,
    gate,
    rules,
)
from pydantic import BaseModel, ConfigDict, Field

from send_schemas import intake
from send_schemas.generate import (
    current_samples,
    headers_schema,
    model_schema,
    new_sample_files,
    published_schema,
    render_json,
    sample_record,
)
from send_schemas.registry import (
    RETIRED_TYPES,
    EventType,
    event_type,
    event_types,
    parse_type,
)

TYPES = event_types()


def _current_records(entry: EventType) -> dict[str, dict[str, Any]]:
    return {
        name: sample_record(entry, data, name)
        for name, data in current_samples(entry).items()
    }


def _gate(
    entry: EventType,
    *,
    current: dict[str, Any] | None = None,
    current_records: dict[str, dict[str, Any]] | None = None,
    current_headers: dict[str, Any] | None = None,
) -> list[Breach]:
    return gate(
        entry.type,
        current=current if current is not None else published_schema(entry),
        current_headers=current_headers or headers_schema(),
        current_samples=current_records or _current_records(entry),
        golden=golden_samples(entry),
        published=committed_schema(entry),
        published_headers=committed_headers_schema(),
    )


@pytest.mark.parametrize("entry", TYPES, ids=[t.type for t in TYPES])
def test_the_current_models_keep_every_published_version_compatible(
    entry: EventType,
) -> None:
    breaches = _gate(entry)

    assert breaches == [], (
        "a breaking change to a published version; publish it as a new version "
        "(a new model with EVENT_TYPE ...v<N+1>) beside the old one instead:\n"
        + "\n".join(map(str, breaches))
    )


def test_every_registered_version_has_golden_samples() -> None:
    missing = [t.type for t in TYPES if not golden_samples(t)]

    assert missing == [], (
        f"no golden samples for {missing}: run `python -m send_schemas.generate`"
    )


def test_every_golden_sample_belongs_to_a_registered_or_retired_version() -> None:
    known = {str(t.samples_path) for t in TYPES}
    retired = {
        "/".join((owner, name, f"v{version}"))
        for owner, name, version in map(parse_type, RETIRED_TYPES)  # type: ignore[misc]
    }
    folders = {
        str(path.parent.relative_to(SAMPLES_ROOT))
        for path in SAMPLES_ROOT.rglob("r*-*.json")
    }

    orphans = folders - known - retired

    assert orphans == set(), (
        f"golden samples of versions no model publishes: {sorted(orphans)}; a "
        "published version is removed only after its deprecation period, and is "
        "then listed in send_schemas.registry.RETIRED_TYPES"
    )


# The gate catches a broken change -----------------------------------------------------

RECEIVED = event_type(intake.RequestReceived.EVENT_TYPE)


def _remove_field(schema: dict[str, Any]) -> None:
    del schema["properties"]["school_urn"]
    schema["required"].remove("school_urn")


def _retype_field(schema: dict[str, Any]) -> None:
    schema["properties"]["school_urn"] = {"type": "string", "pattern": "^[0-9]{6}$"}


def _require_new_field(schema: dict[str, Any]) -> None:
    schema["properties"]["local_authority"] = {"type": "integer"}
    schema["required"].append("local_authority")


def _change_key(schema: dict[str, Any]) -> None:
    schema["x-send-key"] = "school_urn"


def _narrow_enum(schema: dict[str, Any]) -> None:
    schema["properties"]["channel"]["enum"].remove("letter")


def _widen_enum(schema: dict[str, Any]) -> None:
    schema["properties"]["channel"]["enum"].append("carrier_pigeon")


def _move_topic(schema: dict[str, Any]) -> None:
    schema["x-send-topic"] = "send.plans.events"


def _make_nullable(schema: dict[str, Any]) -> None:
    old = schema["properties"]["curriculum_year"]
    schema["properties"]["curriculum_year"] = {"anyOf": [old, {"type": "null"}]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(_remove_field, {REMOVED}, id="removed-field"),
        pytest.param(_retype_field, {RETYPED, OLD_SAMPLE_REJECTED}, id="retyped-field"),
        pytest.param(
            _require_new_field, {NEW_REQUIRED, OLD_SAMPLE_REJECTED}, id="new-required"
        ),
        pytest.param(_change_key, {KEY_CHANGED}, id="changed-key"),
        pytest.param(_narrow_enum, {RETYPED}, id="enum-value-removed"),
        pytest.param(_widen_enum, {RETYPED}, id="enum-value-added"),
        pytest.param(_move_topic, {TOPIC_CHANGED}, id="moved-topic"),
        pytest.param(_make_nullable, {RETYPED}, id="made-nullable"),
    ],
)
def test_the_gate_rejects_a_deliberately_broken_schema(
    change: Callable[[dict[str, Any]], None], expected: set[str]
) -> None:
    broken = copy.deepcopy(published_schema(RECEIVED))
    change(broken)

    breaches = _gate(RECEIVED, current=broken)

    assert expected <= rules(breaches), breaches


def test_the_gate_accepts_a_new_optional_field() -> None:
    grown = copy.deepcopy(published_schema(RECEIVED))
    grown["properties"]["local_authority"] = {"type": ["integer", "null"]}
    records = _current_records(RECEIVED)
    for record in records.values():
        record["data"]["local_authority"] = 825

    assert _gate(RECEIVED, current=grown, current_records=records) == []


def test_the_gate_rejects_a_model_whose_new_samples_old_readers_refuse() -> None:
    # The producer starts writing the URN as a string: the committed schema (an old
    # reader's) refuses the new samples, and the old samples fail the new schema.
    class RequestReceived(BaseModel):
        model_config = ConfigDict(extra="forbid")

        EVENT_TYPE: ClassVar[str] = RECEIVED.type

        case_id: intake.CaseId
        requester_type: intake.RequesterType
        channel: intake.Channel
        received_at: intake.UtcTimestamp
        school_urn: str = Field(pattern=r"^URN[0-9]{6}$")
        curriculum_year: intake.CurriculumYear

    broken = EventType(
        RECEIVED.type, RECEIVED.name, 1, "intake", RECEIVED.topic, RequestReceived
    )
    records = {
        "full": sample_record(
            broken,
            {**current_samples(RECEIVED)["full"], "school_urn": "URN123456"},
            "full",
        )
    }
    schema = model_schema(
        RequestReceived,
        type_string=RECEIVED.type,
        owner="intake",
        topic=RECEIVED.topic.name,
        schema_id=RECEIVED.schema_id,
    )

    found = rules(_gate(RECEIVED, current=schema, current_records=records))

    assert {RETYPED, OLD_SAMPLE_REJECTED, NEW_SAMPLE_REJECTED} <= found


def test_the_gate_rejects_a_header_the_kernel_stops_sending() -> None:
    changed = copy.deepcopy(headers_schema())
    changed["required"].append("ce_dataschema")

    breaches = _gate(RECEIVED, current_headers=changed)

    assert HEADERS_REJECTED in rules(breaches)


def test_the_gate_rejects_a_golden_sample_whose_key_is_not_its_case_id() -> None:
    golden = copy.deepcopy(golden_samples(RECEIVED))
    name, record = next(iter(golden.items()))
    record["key"] = "3f2e1d0c-9b8a-4765-8432-10fedcba9876"

    breaches = gate(
        RECEIVED.type,
        current=published_schema(RECEIVED),
        current_headers=headers_schema(),
        current_samples={},
        golden={name: record},
        published=None,
        published_headers=committed_headers_schema(),
    )

    assert rules(breaches) == {KEY_CHANGED}


# Golden samples are added, never rewritten --------------------------------------------


def test_golden_samples_are_written_once_and_a_new_field_adds_a_revision(
    tmp_path: Path,
) -> None:
    class ThingHappened(BaseModel):
        model_config = ConfigDict(extra="forbid")

        EVENT_TYPE: ClassVar[str] = "send.intake.ThingHappened.v1"

        case_id: intake.CaseId
        happened_on: date

    class ThingHappenedLater(ThingHappened):
        note_code: intake.ExceptionReason | None = None

    first = EventType(
        "send.intake.ThingHappened.v1",
        "ThingHappened",
        1,
        "intake",
        RECEIVED.topic,
        ThingHappened,
    )
    later = EventType(
        first.type, first.name, 1, "intake", RECEIVED.topic, ThingHappenedLater
    )

    written = new_sample_files(first, tmp_path)
    for name, record in written.items():
        (tmp_path / name).write_text(render_json(record))

    assert sorted(written) == ["r1-full.json"]
    assert new_sample_files(first, tmp_path) == {}
    revision = new_sample_files(later, tmp_path)
    assert sorted(revision) == ["r2-defaults.json", "r2-full.json"]
    assert revision["r2-full.json"]["data"]["note_code"] == "a"
    assert (
        json.loads((tmp_path / "r1-full.json").read_text()) == written["r1-full.json"]
    )
