"""The published models of intake's events: names, strictness and tolerant reading."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from send_schemas import intake as contract
from send_schemas.topics import INTAKE, topic_by_name
from sendkit.events import check_event_type

CASE_ID = "0b9e7f7e-1c1d-4c55-9d0b-5d3f6e2a1a10"


def test_every_event_has_its_versioned_type_string() -> None:
    names = [model.__name__ for model in contract.EVENT_MODELS]

    assert names == [
        "RequestReceived",
        "CoordinatorAssigned",
        "AssessmentAgreed",
        "AssessmentRefused",
        "TimeLimitExceptionRecorded",
        "RequestWithdrawn",
        "RequestCorrected",
        "RequestPresentedAtSurgery",
        "SurgeryPresentationCorrected",
    ]
    for model in contract.EVENT_MODELS:
        assert f"send.intake.{model.__name__}.v1" == model.EVENT_TYPE
        assert check_event_type(model.EVENT_TYPE)


def test_the_topic_is_the_registered_one_owned_by_intake() -> None:
    assert topic_by_name(contract.TOPIC) is INTAKE
    assert INTAKE.owner == contract.OWNER == "intake"


def test_producing_refuses_a_field_the_contract_does_not_have() -> None:
    with pytest.raises(ValidationError, match="date_of_birth"):
        contract.RequestReceived(
            case_id=CASE_ID,
            requester_type="parent",
            channel="email",
            received_at="2025-01-06T09:30:00Z",  # type: ignore[arg-type]
            school_urn=123456,
            curriculum_year=3,
            date_of_birth="2016-05-14",  # type: ignore[call-arg]
        )


def test_the_received_timestamp_needs_a_zone_and_is_published_in_utc() -> None:
    fields = {
        "case_id": CASE_ID,
        "requester_type": "school",
        "channel": "portal",
        "school_urn": 100000,
        "curriculum_year": -2,
    }
    with pytest.raises(ValidationError, match="timezone"):
        contract.RequestReceived.model_validate(
            {**fields, "received_at": "2025-01-06T09:30"}
        )

    received = contract.RequestReceived.model_validate(
        {**fields, "received_at": "2024-07-01T08:15:00+01:00"}
    )
    assert received.model_dump(mode="json")["received_at"] == "2024-07-01T07:15:00Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [("school_urn", 99999), ("curriculum_year", 15), ("case_id", "not-a-uuid")],
)
def test_the_contract_bounds_its_values(field: str, value: object) -> None:
    data = {
        "case_id": CASE_ID,
        "requester_type": "parent",
        "channel": "email",
        "received_at": "2025-01-06T09:30:00Z",
        "school_urn": 123456,
        "curriculum_year": 3,
        field: value,
    }

    with pytest.raises(ValidationError, match=field):
        contract.RequestReceived.model_validate(data)


def test_subscribers_read_tolerantly_ignoring_fields_added_later() -> None:
    event = contract.parse_intake_event(
        "send.intake.TimeLimitExceptionRecorded.v1",
        {"case_id": CASE_ID, "clock": "decision", "reason": "d", "added_in_v1_1": 7},
    )

    assert isinstance(event, contract.TimeLimitExceptionRecorded)
    assert event.reason == "d"


def test_an_unknown_type_is_named_in_the_error() -> None:
    with pytest.raises(contract.UnknownIntakeEvent, match="RequestLost"):
        contract.parse_intake_event("send.intake.RequestLost.v1", {})


def test_the_fields_the_deadlines_processor_reads_are_there() -> None:
    assert "received_at" in contract.RequestReceived.model_fields
    assert "notified_on" in contract.AssessmentAgreed.model_fields
    assert "notified_on" in contract.AssessmentRefused.model_fields
    assert {"field", "old_value", "new_value"} <= set(
        contract.RequestCorrected.model_fields
    )
    assert {"clock", "reason"} <= set(contract.TimeLimitExceptionRecorded.model_fields)
