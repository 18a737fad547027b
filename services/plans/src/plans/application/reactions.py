"""What plans does when intake's events arrive: open the assessment intake agreed.

``IntakeReactions`` is the handler of ``sendkit.subscriber.IdempotentSubscriber`` on
``send.intake.events`` (consumer ``plans``). For ``AssessmentAgreed`` it decides
``OpenAssessment`` on the case's plans stream and appends ``AssessmentOpened`` through
``sendkit.commands.decide_in`` in the subscriber's transaction, the one that marks the
intake event processed, so the case is opened exactly once however often the event is
delivered. ``RequestReceived`` and ``CoordinatorAssigned`` record, in the same
transaction, the case's school and coordinator for access control
(``sendkit.auth.scope``), since plans' own events name neither. Every other intake event
is of no concern to plans and is passed over (still marked processed).

The opened event's metadata names the system as actor, carries the intake event's
correlation id, and has the intake event's id as causation id.

A withdrawal or a corrected decision date at intake after the assessment was agreed
is not yet reflected here: the plans case stays open, and its dates are checked
against the decision date first received.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from plans.application.service import Clock
from plans.domain import Context, OpenAssessment, decide, fold
from send_schemas import intake as intake_contract
from sendkit.auth.scope import remember_intake_scope
from sendkit.commands import decide_in
from sendkit.envelope import ReceivedEvent
from sendkit.events import SYSTEM_ACTOR, Metadata, NewEvent, RecordedEvent, utcnow
from sendkit.store.base import Transaction
from sendkit.subscriber import Unprocessable

log = logging.getLogger(__name__)


class IntakeReactions:
    """Handles each intake event inside the subscriber's transaction."""

    def __init__(self, *, clock: Clock = utcnow) -> None:
        self.clock = clock

    def __call__(self, event: ReceivedEvent, tx: Transaction) -> None:
        remember_intake_scope(event, tx)
        if event.type != intake_contract.AssessmentAgreed.EVENT_TYPE:
            return
        model = intake_contract.AssessmentAgreed
        # Read tolerantly: a later intake version may add fields plans does not know.
        agreed = model.model_validate(
            {
                key: value
                for key, value in event.data.items()
                if key in model.model_fields
            }
        )
        if agreed.case_id != event.subject:
            raise Unprocessable(
                f"event {event.id} names case {agreed.case_id} in its data but "
                f"{event.subject} as its subject: intake publishes them equal"
            )

        case_id = agreed.case_id
        command = OpenAssessment(case_id=case_id, agreed_on=agreed.notified_on)
        context = Context(
            now=self.clock(),
            metadata=Metadata(
                actor=SYSTEM_ACTOR,
                correlation_id=event.metadata.correlation_id,
                causation_id=event.id,
            ),
        )

        def decide_on(history: Sequence[RecordedEvent]) -> list[NewEvent]:
            return decide(fold(case_id, history), command, context)

        _, opened = decide_in(tx, case_id, decide_on)
        log.info(
            "assessment of case %s %s",
            case_id,
            "opened" if opened else "was already open",
            extra={
                "case_id": case_id,
                "event_id": event.id,
                "agreed_on": agreed.notified_on.isoformat(),
                "opened": bool(opened),
            },
        )
