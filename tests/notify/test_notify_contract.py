"""The published contract of notify's events (``send_schemas.notify``)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from send_schemas import notify as contract
from send_schemas.topics import topic_by_name
from sendkit.events import check_event_type

SENT = {
    "alert_id": "7efe5982-82f0-5652-8a3d-9af78e8d91b3",
    "clock_event_id": "ev-1",
    "case_id": "3f6c2a4e-8d1b-4c7a-9e2f-5b0a1c3d4e6f",
    "clock_id": "decision",
    "alert_kind": "approaching",
    "channel": "email",
    "recipient_role": "coordinator",
    "recipient_staff_id": "ehcco-01",
    "attempts": 1,
}


def test_types_are_versioned_and_the_topic_is_notify_s() -> None:
    assert [m.EVENT_TYPE for m in contract.EVENT_MODELS] == [
        "send.notify.NotificationSent.v1",
        "send.notify.NotificationFailed.v1",
        "send.notify.NotificationDelivered.v1",
        "send.notify.NotificationDeliveryFailed.v1",
    ]
    for model in contract.EVENT_MODELS:
        check_event_type(model.EVENT_TYPE)
    assert topic_by_name(contract.TOPIC).owner == contract.OWNER == "notify"


def test_no_field_can_carry_an_address_or_a_name() -> None:
    for model in contract.EVENT_MODELS:
        fields = json.dumps(model.model_json_schema()["properties"]).lower()
        assert "email_address" not in fields
        assert "address" not in set(model.model_fields)
        assert not {"name", "child_name", "recipient_email"} & set(model.model_fields)


def test_producing_refuses_fields_and_values_outside_the_contract() -> None:
    contract.NotificationSent.model_validate(SENT)

    with pytest.raises(ValidationError, match="Extra inputs"):
        contract.NotificationSent.model_validate({**SENT, "to": "a@b.example"})
    with pytest.raises(ValidationError, match="case_id"):
        contract.NotificationSent.model_validate({**SENT, "case_id": "Case 12"})
    with pytest.raises(ValidationError, match="channel"):
        contract.NotificationSent.model_validate({**SENT, "channel": "pigeon"})
    with pytest.raises(ValidationError, match="failure"):
        contract.NotificationFailed.model_validate({**SENT, "reason": "x"})
