"""The published models of plans' events: names, strictness, tolerant reading, and
agreement with what the deadlines rules table reads."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from deadlines.domain import contract as deadlines_contract
from deadlines.domain.model import FieldKind
from send_schemas import plans as contract
from send_schemas.topics import PLANS, topic_by_name
from sendkit.events import check_event_type

CASE_ID = "0b9e7f7e-1c1d-4c55-9d0b-5d3f6e2a1a10"
ADVICE_ID = "5d1c0c1e-8f53-4c1b-9b1e-0b0f6c7f2a11"


def test_every_event_has_its_versioned_type_string() -> None:
    for model in contract.EVENT_MODELS:
        assert f"send.plans.{model.__name__}.v1" == model.EVENT_TYPE
        assert check_event_type(model.EVENT_TYPE)
    assert len(contract.EVENTS_BY_TYPE) == len(contract.EVENT_MODELS) == 18


def test_the_topic_is_the_registered_one_owned_by_plans() -> None:
    assert topic_by_name(contract.TOPIC) is PLANS
    assert PLANS.owner == contract.OWNER == "plans"


def test_every_payload_carries_the_case_id() -> None:
    for model in contract.EVENT_MODELS:
        assert model.model_fields["case_id"].is_required(), model.__name__


def test_every_type_the_deadlines_rules_read_is_published_with_their_fields() -> None:
    kinds = {FieldKind.DATE: date, FieldKind.BOOL: bool}
    read = [
        spec
        for spec in deadlines_contract.EVENT_SPECS
        if spec.type.startswith("send.plans.")
    ]

    assert {spec.type for spec in read} <= set(contract.EVENTS_BY_TYPE)
    for spec in read:
        fields = contract.EVENTS_BY_TYPE[spec.type].model_fields
        for wanted in spec.fields:
            assert wanted.name in fields, (spec.type, wanted.name)
            field = fields[wanted.name]
            if wanted.required:
                assert field.is_required(), (spec.type, wanted.name)
            if wanted.kind in kinds:
                assert kinds[wanted.kind] in (
                    field.annotation,
                    *getattr(field.annotation, "__args__", ()),
                ), (spec.type, wanted.name)


def test_producing_refuses_a_field_the_contract_does_not_have() -> None:
    with pytest.raises(ValidationError, match="primary_need"):
        contract.PlanIssued.model_validate(
            {
                "case_id": CASE_ID,
                "issued_on": "2026-03-17",
                "setting_urn": 123456,
                "setting_type": "mainstream_academy",
                "start_date": "2026-09-01",
                "primary_need": "ASD",
            }
        )


@pytest.mark.parametrize(
    ("model", "data", "match"),
    [
        (contract.AdviceRequested, {"advice_id": "A1"}, "advice_id"),
        (contract.AdviceRequested, {"body": "astrology"}, "body"),
        (contract.PlanCeased, {"reason": "bored"}, "reason"),
        (contract.PlanIssued, {"setting_type": "boarding"}, "setting_type"),
        (contract.PlanIssued, {"setting_urn": 99999}, "setting_urn"),
        (contract.PlanIssued, {"setting_urn": None}, "setting_urn is required"),
        (contract.PlanAmended, {"changes": []}, "changes"),
        (contract.PlanAmended, {"changes": ["F", "Z"]}, "changes"),
        (contract.PlanAmended, {"changes": ["F", "F"]}, "more than once"),
        (contract.PlanAmended, {"setting_urn": 654321}, "section I"),
        (
            contract.PlanAmended,
            {"changes": ["I"], "setting_urn": 654321},
            "needs its setting_type",
        ),
        (contract.DraftCommentsReceived, {"respondent": "aunt"}, "respondent"),
        (contract.TimeLimitExceptionRecorded, {"reason": "d"}, "does not apply"),
        (contract.TimeLimitExceptionRecorded, {"instance": "A1"}, "instance"),
        (
            contract.TimeLimitExceptionRecorded,
            {"clock": "reassessment_plan", "instance": ADVICE_ID},
            "only an advice exception",
        ),
    ],
)
def test_the_contract_bounds_its_values(
    model: type[contract.PlansEvent], data: dict[str, Any], match: str
) -> None:
    valid: dict[str, dict[str, Any]] = {
        "AdviceRequested": {
            "advice_id": ADVICE_ID,
            "body": "health",
            "received_by_body_on": "2025-10-08",
        },
        "PlanCeased": {"ceased_on": "2026-05-01", "reason": "needs_met"},
        "PlanIssued": {
            "issued_on": "2026-03-17",
            "setting_urn": 123456,
            "setting_type": "mainstream_academy",
            "start_date": "2026-09-01",
        },
        "PlanAmended": {"issued_on": "2026-04-20", "changes": ["F"]},
        "DraftCommentsReceived": {"received_on": "2026-03-09", "respondent": "parent"},
        "TimeLimitExceptionRecorded": {
            "clock": "advice",
            "reason": "c",
            "instance": ADVICE_ID,
        },
    }
    fields = {"case_id": CASE_ID, **valid[model.__name__]}
    model.model_validate(fields)

    with pytest.raises(ValidationError, match=match):
        model.model_validate({**fields, **data})


def test_home_education_and_education_otherwise_name_no_urn() -> None:
    for setting_type in contract.SETTING_TYPES_WITHOUT_URN:
        issued = contract.PlanIssued(
            case_id=CASE_ID,
            issued_on=date(2026, 3, 17),
            setting_urn=None,
            setting_type=setting_type,  # type: ignore[arg-type]
            start_date=date(2026, 3, 17),
        )
        assert issued.model_dump(mode="json")["setting_urn"] is None


def test_subscribers_read_tolerantly_ignoring_fields_added_later() -> None:
    event = contract.parse_plans_event(
        "send.plans.PlanCeased.v1",
        {
            "case_id": CASE_ID,
            "ceased_on": "2026-05-01",
            "reason": "maximum_age",
            "added_in_v1_1": True,
        },
    )

    assert isinstance(event, contract.PlanCeased)
    assert event.reason == "maximum_age"


def test_an_unknown_type_is_named_in_the_error() -> None:
    with pytest.raises(contract.UnknownPlansEvent, match="PlanLost"):
        contract.parse_plans_event("send.plans.PlanLost.v1", {})


def test_the_code_lists_match_their_literal_types() -> None:
    pairs = [
        (contract.AdviceBody, contract.ADVICE_BODIES),
        (contract.CeaseReason, contract.CEASE_REASONS),
        (contract.SettingType, contract.SETTING_TYPES),
        (contract.PlanSection, contract.PLAN_SECTIONS),
        (contract.Respondent, contract.RESPONDENTS),
    ]
    for literal, codes in pairs:
        assert literal.__args__ == codes  # type: ignore[attr-defined]


def test_plans_corrections_carry_what_the_deadlines_engine_reads() -> None:
    correction = deadlines_contract.CORRECTIONS_BY_TYPE[
        contract.PlanCorrected.EVENT_TYPE
    ]
    fields = contract.PlanCorrected.model_fields

    assert {"field", "old_value", "new_value", "event_id"} <= set(fields)
    # Each correctable event's date is a field the engine corrects on that event.
    for event_type, name in contract.CORRECTABLE_DATES.items():
        assert event_type in correction.targets[name], (event_type, name)
    engine_pairs = {
        (event_type, name)
        for name, types in correction.targets.items()
        for event_type in types
    }
    assert engine_pairs == set(contract.CORRECTABLE_DATES.items())


def test_a_correction_names_the_date_of_the_event_it_corrects() -> None:
    base = {
        "case_id": CASE_ID,
        "event_id": ADVICE_ID,
        "event_type": "send.plans.PlanIssued.v1",
        "field": "issued_on",
        "old_value": "2026-03-17",
        "new_value": "2026-03-20",
    }
    contract.PlanCorrected.model_validate(base)

    with pytest.raises(ValidationError, match="its date is issued_on"):
        contract.PlanCorrected.model_validate({**base, "field": "served_on"})
    with pytest.raises(ValidationError, match="changes the date"):
        contract.PlanCorrected.model_validate({**base, "new_value": "2026-03-17"})
    with pytest.raises(ValidationError):
        contract.PlanCorrected.model_validate(
            {**base, "event_type": "send.plans.AdviceRequested.v1"}
        )
