"""Plans' reaction to intake's events, without a broker: the handler in a transaction.

The subscriber calls the handler inside the transaction that marks the intake event
processed; here the tests open that transaction themselves. The same reaction through
the real broker and ``IdempotentSubscriber`` is in ``test_plans_kafka.py``.
"""

from __future__ import annotations

from datetime import date

import pytest
from plans_support import AGREED_ON, agreement, new_case_id, types_of
from pydantic import ValidationError

from plans.application.reactions import IntakeReactions
from sendkit.store import InMemoryEventStore
from sendkit.subscriber import Unprocessable


def test_an_agreement_to_assess_opens_the_assessment(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()
    agreed = agreement(case_id, date(2025, 10, 6))

    with store.transaction() as tx:
        reactions(agreed, tx)

    (opened,) = store.read_stream(case_id)
    assert opened.type == "send.plans.AssessmentOpened.v1"
    assert opened.data == {"case_id": case_id, "agreed_on": "2025-10-06"}
    assert opened.private is None
    assert opened.metadata.actor == "system"
    assert opened.metadata.causation_id == agreed.id
    assert opened.metadata.correlation_id == agreed.metadata.correlation_id


def test_the_same_agreement_again_opens_nothing_more(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()
    agreed = agreement(case_id)

    for event in (agreed, agreed, agreement(case_id)):
        with store.transaction() as tx:
            reactions(event, tx)

    assert types_of(store, case_id) == ["AssessmentOpened"]


@pytest.mark.parametrize(
    "event_type",
    [
        "send.intake.RequestReceived.v1",
        "send.intake.AssessmentRefused.v1",
        "send.intake.RequestWithdrawn.v1",
        "send.intake.SomethingAddedLater.v1",
    ],
)
def test_other_intake_events_change_nothing(
    store: InMemoryEventStore, reactions: IntakeReactions, event_type: str
) -> None:
    case_id = new_case_id()

    with store.transaction() as tx:
        reactions(agreement(case_id, event_type=event_type, data={}), tx)

    assert store.read_all() == []


def test_fields_added_by_a_later_intake_version_are_ignored(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()
    data = {"case_id": case_id, "notified_on": "2025-10-06", "panel_id": "P-7"}

    with store.transaction() as tx:
        reactions(agreement(case_id, data=data), tx)

    assert types_of(store, case_id) == ["AssessmentOpened"]


@pytest.mark.parametrize(
    "broken",
    [
        {"case_id": None},
        {"case_id": "CASE"},
        {"notified_on": "6 October"},
        {"notified_on": None},
    ],
)
def test_an_agreement_that_breaks_intakes_contract_is_refused_for_dead_letters(
    store: InMemoryEventStore, reactions: IntakeReactions, broken: dict[str, str]
) -> None:
    case_id = new_case_id()
    data = {"case_id": case_id, "notified_on": "2025-10-06", **broken}
    data = {key: value for key, value in data.items() if value is not None}

    with pytest.raises(ValidationError), store.transaction() as tx:
        reactions(agreement(case_id, data=data), tx)

    assert store.read_all() == []


def test_an_agreement_whose_subject_is_another_case_is_unprocessable(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    event = agreement(
        new_case_id(), data={"case_id": new_case_id(), "notified_on": "2025-10-06"}
    )

    with (
        pytest.raises(Unprocessable, match="as its subject"),
        store.transaction() as tx,
    ):
        reactions(event, tx)

    assert store.read_all() == []


def test_with_the_processed_mark_a_redelivery_is_not_even_handled(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    # What IdempotentSubscriber does around the handler, in one transaction.
    case_id = new_case_id()
    agreed = agreement(case_id, AGREED_ON)
    handled = 0
    for _ in range(2):
        with store.transaction() as tx:
            if not tx.is_processed("plans", agreed.id):
                reactions(agreed, tx)
                handled += 1
                tx.mark_processed("plans", agreed.id)

    assert handled == 1
    assert types_of(store, case_id) == ["AssessmentOpened"]
