"""No personal detail is published unless the reviewed allow-list gives its reason."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from send_schemas.generate import model_schema, published_schema
from send_schemas.personal_data import (
    ALLOWED,
    BIRTH,
    EMAIL,
    FREE_TEXT,
    NAME,
    NEED,
    PHONE,
    Allowed,
    findings,
    unreviewed,
    unused,
)
from send_schemas.registry import event_types


def _all_findings() -> list:  # type: ignore[type-arg]
    found = []
    for entry in event_types():
        found.extend(findings(entry.type, published_schema(entry)))
    return found


def test_no_published_field_is_an_unreviewed_personal_detail() -> None:
    problems = unreviewed(_all_findings())

    assert problems == [], (
        "published fields that look like personal details; keep them in the "
        "service's store, constrain them to codes, or add a reviewed entry with its "
        "reason to send_schemas.personal_data.ALLOWED:\n"
        + "\n".join(map(str, problems))
    )


def test_every_allow_list_entry_is_still_needed_and_has_a_reason() -> None:
    stale = unused(_all_findings())

    assert stale == [], f"allow-list entries that match no field (remove them): {stale}"
    for entry in ALLOWED:
        assert len(entry.reason.split()) >= 6, entry


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    EVENT_TYPE: ClassVar[str] = "send.test.ThingHappened.v1"

    case_id: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]


class _Address(BaseModel):
    line_1: str
    postcode: str


def _schema(model: type[BaseModel]) -> dict:  # type: ignore[type-arg]
    return model_schema(
        model,
        type_string="send.test.ThingHappened.v1",
        owner="test",
        topic="send.test.events",
        schema_id="https://example.invalid/x.json",
    )


def _found(model: type[BaseModel]) -> dict[str, str]:
    return {
        f.field: f.category
        for f in findings("send.test.ThingHappened.v1", _schema(model))
    }


@pytest.mark.parametrize(
    ("field", "annotation", "category"),
    [
        ("child_name", str, NAME),
        ("surname", Literal["x"], NAME),
        ("date_of_birth", str, BIRTH),
        ("dob", int, BIRTH),
        ("parent_email", str, EMAIL),
        (
            "contact",
            Annotated[str, Field(json_schema_extra={"format": "email"})],
            EMAIL,
        ),
        ("mobile_number", str, PHONE),
        ("primary_need", Literal["asd", "slcn"], NEED),
        ("notes", Annotated[str, Field(max_length=200)], FREE_TEXT),
        ("outcome_summary", str, FREE_TEXT),
        ("comment", str | None, FREE_TEXT),
        ("decision_wording", Annotated[str, Field(max_length=40)], FREE_TEXT),
        ("tags", list[str], FREE_TEXT),
    ],
)
def test_a_personal_detail_is_found_by_its_name_format_or_freedom(
    field: str, annotation: object, category: str
) -> None:
    model = type(
        "ThingHappened",
        (_Event,),
        {"__annotations__": {field: annotation}},
    )

    found = _found(model)

    path = f"{field}[]" if field == "tags" else field
    assert found.get(path) == category, found


def test_a_nested_address_is_found() -> None:
    model = type("ThingHappened", (_Event,), {"__annotations__": {"home": _Address}})

    found = _found(model)

    assert found["home.postcode"] is not None
    assert found["home.line_1"] == FREE_TEXT


def test_codes_ids_dates_and_numbers_are_not_findings() -> None:
    model = type(
        "ThingHappened",
        (_Event,),
        {
            "__annotations__": {
                "outcome": Literal["agreed", "refused"],
                "coordinator_id": str,
                "school_urn": int,
                "decided_on": Annotated[
                    str, Field(json_schema_extra={"format": "date"})
                ],
                "reference_code": Annotated[str, Field(pattern=r"^[A-Z]{3}$")],
            }
        },
    )

    found = _found(model)

    # ``reference`` is a personal identifier by name even when it is a pattern.
    assert found == {"reference_code": "personal identifier"}


def test_an_allow_list_entry_accepts_only_the_fields_it_names() -> None:
    model = type(
        "ThingHappened",
        (_Event,),
        {"__annotations__": {"title": str, "notes": str}},
    )
    found = findings("send.test.ThingHappened.v1", _schema(model))
    entry = Allowed("send.test.*.v1", "title", "the title comes from a fixed table")

    left = unreviewed(found, [entry])

    assert [f.field for f in left] == ["notes"]
    assert unused(found, [entry, Allowed("send.other.*", "title", "n/a")])[0].types == (
        "send.other.*"
    )
