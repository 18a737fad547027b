"""The published models of the reviews events: names, strictness, tolerant reading, and
agreement with what the deadlines rules read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deadlines.domain.contract import EVENT_SPECS
from deadlines.domain.model import EventSpec
from send_schemas import reviews as contract
from send_schemas.topics import INTAKE, PLANS, REVIEWS, dead_letter_topic, topic_by_name
from sendkit.events import check_event_type

CASE_ID = "0b9e7f7e-1c1d-4c55-9d0b-5d3f6e2a1a10"
REVIEW_ID = "5a4e2b36-93c1-4f0e-8d55-2f7f3c9b1d42"


def test_every_event_has_its_versioned_type_string() -> None:
    for model in contract.EVENT_MODELS:
        assert f"send.reviews.{model.__name__}.v1" == model.EVENT_TYPE
        assert check_event_type(model.EVENT_TYPE)
    assert len(contract.EVENTS_BY_TYPE) == len(contract.EVENT_MODELS) == 12


def test_the_topic_is_the_registered_one_and_reviews_reads_plans_and_intake() -> None:
    assert topic_by_name(contract.TOPIC) is REVIEWS
    assert REVIEWS.owner == contract.OWNER == "reviews"
    assert "reviews" in PLANS.consumers
    assert "reviews" in INTAKE.consumers
    assert topic_by_name(dead_letter_topic("reviews", INTAKE.name)).owner == "reviews"


@pytest.mark.parametrize(
    "spec",
    [spec for spec in EVENT_SPECS if spec.type.startswith("send.reviews.")],
    ids=lambda spec: spec.type,
)
def test_every_field_the_deadlines_rules_read_is_published(spec: EventSpec) -> None:
    model = contract.EVENTS_BY_TYPE[spec.type]

    for field in spec.fields:
        assert field.name in model.model_fields, (spec.type, field.name)


def test_the_fixed_fields_of_the_review_events() -> None:
    def fields(model: type[contract.ReviewsEvent]) -> set[str]:
        return set(model.model_fields)

    assert fields(contract.ReviewCycleStarted) == {
        "case_id",
        "issued_on",
        "setting_urn",
    }
    assert fields(contract.ReviewPapersSent) == {"case_id", "review_id", "sent_on"}
    assert fields(contract.ReviewReportReceived) == {
        "case_id",
        "review_id",
        "received_on",
    }
    assert fields(contract.ReviewDecided) == {
        "case_id",
        "review_id",
        "decision",
        "notified_on",
    }
    assert fields(contract.InterimReviewRequested) == {
        "case_id",
        "requested_on",
        "reason",
    }
    assert {"meeting_on", "setting_urn", "invitee_roles"} <= fields(
        contract.ReviewArranged
    )
    assert {"held_on", "child_views_gathered", "attendee_roles"} <= fields(
        contract.ReviewHeld
    )


def test_producing_refuses_a_field_the_contract_does_not_have() -> None:
    with pytest.raises(ValidationError, match="proposed_amendments"):
        contract.ReviewDecided(
            case_id=CASE_ID,
            review_id=REVIEW_ID,
            decision="amend",
            notified_on="2026-03-18",
            proposed_amendments="Synthetic",  # type: ignore[call-arg]
        )


def test_roles_are_published_once_each_in_a_fixed_order() -> None:
    held = contract.ReviewHeld(
        case_id=CASE_ID,
        review_id=REVIEW_ID,
        held_on="2026-03-04",
        child_views_gathered=True,
        attendee_roles=["senco", "parent", "child"],
    )

    assert held.attendee_roles == ["parent", "child", "senco"]
    with pytest.raises(ValidationError, match="more than once"):
        contract.ReviewHeld.model_validate(
            {**held.model_dump(), "attendee_roles": ["parent", "parent"]}
        )
    with pytest.raises(ValidationError, match="attendee_roles"):
        contract.ReviewHeld.model_validate({**held.model_dump(), "attendee_roles": []})


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (contract.ReviewDecided, {"decision": "postpone"}, "decision"),
        (contract.ReviewArranged, {"kind": "urgent"}, "kind"),
        (contract.ReviewArranged, {"setting_urn": 99999}, "setting_urn"),
        (contract.ReviewArranged, {"review_id": "R-1"}, "review_id"),
        (contract.ReviewArranged, {"invitee_roles": ["cousin"]}, "invitee_roles"),
        (contract.InterimReviewRequested, {"reason": "whim"}, "reason"),
    ],
)
def test_the_contract_bounds_its_values(
    model: type[contract.ReviewsEvent], data: dict[str, object], field: str
) -> None:
    valid: dict[str, object] = {
        "case_id": CASE_ID,
        "review_id": REVIEW_ID,
        "kind": "annual",
        "meeting_on": "2026-03-04",
        "arranged_on": "2026-01-12",
        "setting_urn": 123456,
        "invitee_roles": ["parent"],
        "decision": "maintain",
        "notified_on": "2026-03-18",
        "requested_on": "2026-01-05",
        "reason": "needs_changed",
    }
    known = {k: v for k, v in valid.items() if k in model.model_fields}
    model.model_validate(known)

    with pytest.raises(ValidationError, match=field):
        model.model_validate({**known, **data})


def test_subscribers_read_tolerantly_ignoring_fields_added_later() -> None:
    event = contract.parse_reviews_event(
        "send.reviews.ReviewDecided.v1",
        {
            "case_id": CASE_ID,
            "review_id": REVIEW_ID,
            "decision": "cease",
            "notified_on": "2026-03-18",
            "added_in_v1_1": True,
        },
    )

    assert isinstance(event, contract.ReviewDecided)
    assert event.decision == "cease"


def test_an_unknown_type_is_named_in_the_error() -> None:
    with pytest.raises(contract.UnknownReviewsEvent, match="ReviewForgotten"):
        contract.parse_reviews_event("send.reviews.ReviewForgotten.v1", {})
