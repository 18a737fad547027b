"""Plans' reaction to intake's events, without a broker: the handler in a transaction.

The subscriber calls the handler inside the transaction that marks the intake event
processed; here the tests open that transaction themselves. The same reaction through
the real broker and ``IdempotentSubscriber`` (and its dead-letter topic) is in
``test_plans_kafka.py``. Each case starts with intake's ``RequestReceived``, as on the
topic; an agreement without one, or on a record keyed by another case, is refused for
the dead-letter topic, and a withdrawn or refused request ends the assessment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from plans_support import (
    AGREED_ON,
    agreement,
    final_plan_body,
    intake_event,
    new_case_id,
    request_received,
    types_of,
)
from pydantic import ValidationError

from plans.application import intake_requests
from plans.application.reactions import IntakeReactions
from plans.application.service import PlansService, new_id
from plans.domain import (
    AmendPlan,
    ImpossibleTransition,
    IssueDraftPlan,
    IssuePlan,
    RequestAdvice,
    RequestClosed,
)
from sendkit.envelope import ReceivedEvent
from sendkit.store import InMemoryEventStore
from sendkit.subscriber import Unprocessable
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""


def handle(
    store: InMemoryEventStore, reactions: IntakeReactions, *events: ReceivedEvent
) -> None:
    for event in events:
        with store.transaction() as tx:
            reactions(event, tx)


def withdrawal(case_id: str, on: str = "2025-11-03") -> ReceivedEvent:
    return intake_event(
        case_id,
        "send.intake.RequestWithdrawn.v1",
        {"case_id": case_id, "withdrawn_on": on},
    )


def refusal(case_id: str, on: str = "2025-10-06") -> ReceivedEvent:
    return intake_event(
        case_id,
        "send.intake.AssessmentRefused.v1",
        {"case_id": case_id, "notified_on": on},
    )


def test_an_agreement_to_assess_opens_the_assessment(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()
    agreed = agreement(case_id, date(2025, 10, 6))

    handle(store, reactions, request_received(case_id), agreed)

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

    handle(store, reactions, request_received(case_id))
    for event in (agreed, agreed, agreement(case_id)):
        with store.transaction() as tx:
            reactions(event, tx)

    assert types_of(store, case_id) == ["AssessmentOpened"]


@pytest.mark.parametrize("kind", ["received", "withdrawn", "refused", "later"])
def test_intake_events_but_the_agreement_append_nothing(
    store: InMemoryEventStore, reactions: IntakeReactions, kind: str
) -> None:
    case_id = new_case_id()
    event = {
        "received": request_received(case_id),
        "withdrawn": withdrawal(case_id),
        "refused": refusal(case_id),
        "later": intake_event(case_id, "send.intake.SomethingAddedLater.v1", {}),
    }[kind]

    handle(store, reactions, event)

    assert store.read_all() == []


def test_a_request_received_is_known_and_open(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()

    handle(store, reactions, request_received(case_id))

    with store.transaction() as tx:
        assert intake_requests.is_known(tx, case_id)
        assert intake_requests.closure_of(tx, case_id) is None
        assert not intake_requests.is_known(tx, new_case_id())


def test_fields_added_by_a_later_intake_version_are_ignored(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()
    data = {"case_id": case_id, "notified_on": "2025-10-06", "panel_id": "P-7"}

    handle(store, reactions, request_received(case_id), agreement(case_id, data=data))

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
    handle(store, reactions, request_received(case_id))
    handled = 0
    for _ in range(2):
        with store.transaction() as tx:
            if not tx.is_processed("plans", agreed.id):
                reactions(agreed, tx)
                handled += 1
                tx.mark_processed("plans", agreed.id)

    assert handled == 1
    assert types_of(store, case_id) == ["AssessmentOpened"]


@pytest.mark.parametrize("key", [None, "another-case", ""])
def test_a_record_keyed_by_anything_but_its_case_is_unprocessable(
    store: InMemoryEventStore, reactions: IntakeReactions, key: str | None
) -> None:
    case_id = new_case_id()
    handle(store, reactions, request_received(case_id))

    with (
        pytest.raises(Unprocessable, match="Kafka key"),
        store.transaction() as tx,
    ):
        reactions(agreement(case_id, key=key), tx)

    assert store.read_stream(case_id) == []


def test_a_request_keyed_by_another_case_is_not_recorded(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()

    with (
        pytest.raises(Unprocessable, match="Kafka key"),
        store.transaction() as tx,
    ):
        reactions(request_received(case_id, key=new_case_id()), tx)

    with store.transaction() as tx:
        assert not intake_requests.is_known(tx, case_id)


def test_an_agreement_for_a_case_intake_never_received_is_unprocessable(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()

    with (
        pytest.raises(Unprocessable, match="never published a request"),
        store.transaction() as tx,
    ):
        reactions(agreement(case_id), tx)

    assert store.read_all() == []


@pytest.mark.parametrize("closing", [withdrawal, refusal])
def test_an_agreement_after_the_request_ended_is_unprocessable(
    store: InMemoryEventStore,
    reactions: IntakeReactions,
    closing: Callable[..., ReceivedEvent],
) -> None:
    case_id = new_case_id()
    handle(store, reactions, request_received(case_id), closing(case_id))

    with pytest.raises(Unprocessable, match="whose request"), store.transaction() as tx:
        reactions(agreement(case_id), tx)

    assert store.read_all() == []


def test_a_redelivered_agreement_after_a_withdrawal_changes_nothing(
    store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case_id = new_case_id()
    agreed = agreement(case_id)
    handle(store, reactions, request_received(case_id), agreed, withdrawal(case_id))

    handle(store, reactions, agreed)

    assert types_of(store, case_id) == ["AssessmentOpened"]


@pytest.mark.parametrize(
    ("closing", "outcome", "on"),
    [(withdrawal, "withdrawn", "2025-11-03"), (refusal, "refused", "2025-10-06")],
)
def test_a_withdrawn_or_refused_request_refuses_every_assessment_step(
    store: InMemoryEventStore,
    reactions: IntakeReactions,
    service: PlansService,
    closing: Callable[..., ReceivedEvent],
    outcome: str,
    on: str,
) -> None:
    # A refusal cannot follow an agreement at intake today; plans refuses the steps
    # all the same if one ever arrives.
    case_id = new_case_id()
    handle(store, reactions, request_received(case_id), agreement(case_id))
    handle(store, reactions, closing(case_id))
    with store.transaction() as tx:
        assert intake_requests.closure_of(tx, case_id) == RequestClosed(
            outcome, date.fromisoformat(on)
        )

    commands = [
        RequestAdvice(case_id, new_id(), "health", date(2025, 11, 10)),
        IssueDraftPlan(case_id, date(2025, 11, 10)),
        IssuePlan(
            case_id,
            issued_on=date(2026, 1, 5),
            setting_urn=123456,
            setting_type="mainstream_academy",
            start_date=date(2026, 1, 5),
            primary_need="SLCN",
        ),
    ]
    for command in commands:
        with pytest.raises(ImpossibleTransition, match=f"as {outcome} on {on}"):
            service.handle(command)

    assert types_of(store, case_id) == ["AssessmentOpened"]


def test_a_withdrawal_after_the_final_plan_leaves_the_plan_standing(
    store: InMemoryEventStore,
    reactions: IntakeReactions,
    service: PlansService,
) -> None:
    case_id = new_case_id()
    handle(store, reactions, request_received(case_id), agreement(case_id))
    service.handle(IssueDraftPlan(case_id, date(2026, 3, 2)))
    body = final_plan_body()
    service.handle(
        IssuePlan(
            case_id,
            issued_on=date.fromisoformat(body["issued_on"]),
            setting_urn=body["setting_urn"],
            setting_type=body["setting_type"],
            start_date=date.fromisoformat(body["start_date"]),
            primary_need=body["primary_need"],
        )
    )

    handle(store, reactions, withdrawal(case_id, "2026-04-01"))
    service.handle(AmendPlan(case_id, issued_on=date(2026, 5, 1), changes=("F",)))

    assert types_of(store, case_id)[-2:] == ["PlanIssued", "PlanAmended"]
