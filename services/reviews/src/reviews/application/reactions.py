"""What the reviews service makes of the plans and intake services' events.

``reaction_to(event)`` reads one consumed event and returns the ``Reaction`` it calls
for, or ``None`` for the many event types reviews has no use for (advice, drafts,
intake's decisions). The published models of ``send_schemas.plans`` and
``send_schemas.intake`` read the data tolerantly (fields added later are ignored), and
an event that breaks its contract raises pydantic's ``ValidationError``, and one whose
data or Kafka key names another case than its subject raises ``Unprocessable``; the
subscriber sends both to the dead-letter topic.

A plan transferred in from another council is not followed yet: its review dates depend
on the other council's last review, which ``PlanTransferredIn`` does not carry, so such
a case appears here only once the plans service issues or amends its plan.
"""

from __future__ import annotations

from reviews.domain import (
    EndReviewCycle,
    FollowCoordinator,
    Reaction,
    RecordPlanAmendment,
    StartReviewCycle,
)
from send_schemas import intake, plans
from sendkit.envelope import ReceivedEvent
from sendkit.subscriber import Unprocessable

FOLLOWED_TYPES: frozenset[str] = frozenset(
    {
        plans.PlanIssued.EVENT_TYPE,
        plans.PlanAmended.EVENT_TYPE,
        plans.PlanCeased.EVENT_TYPE,
        plans.PlanTransferredOut.EVENT_TYPE,
        intake.CoordinatorAssigned.EVENT_TYPE,
    }
)
"""The event types reviews reacts to; every other type is acknowledged and skipped."""


def reaction_to(event: ReceivedEvent) -> Reaction | None:
    """The reaction ``event`` calls for, or ``None`` if reviews has no use for it."""
    if event.type not in FOLLOWED_TYPES:
        return None
    case_id = event.subject
    if event.data.get("case_id") != case_id:
        raise Unprocessable(
            f"{event.type} {event.id} names a case_id other than its subject: the "
            "producer must key each event by the case it is about"
        )
    if event.key != case_id:
        raise Unprocessable(
            f"{event.type} {event.id} has the Kafka key {event.key!r} but is about "
            f"case {case_id}: its producer's relay keys each event by its case, so "
            "this record was written by something else"
        )

    parsed = (
        intake.parse_intake_event(event.type, event.data)
        if event.type.startswith("send.intake.")
        else plans.parse_plans_event(event.type, event.data)
    )
    match parsed:
        case intake.CoordinatorAssigned():
            return FollowCoordinator(case_id, parsed.coordinator_id)
        case plans.PlanIssued():
            return StartReviewCycle(case_id, parsed.issued_on, parsed.setting_urn)
        case plans.PlanAmended():
            return RecordPlanAmendment(case_id, parsed.issued_on, parsed.setting_urn)
        case plans.PlanCeased():
            return EndReviewCycle(case_id, parsed.ceased_on, "plan_ceased")
        case plans.PlanTransferredOut():
            return EndReviewCycle(
                case_id, parsed.transferred_on, "plan_transferred_out"
            )
    return None
