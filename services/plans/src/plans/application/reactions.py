"""What plans does when intake's events arrive: open, or close, the assessment.

``IntakeReactions`` is the handler of ``sendkit.subscriber.IdempotentSubscriber`` on
``send.intake.events`` (consumer ``plans``). Every record must be keyed by the case it
is about (its Kafka key equal to its subject, as intake's relay writes it); one that
is not raises ``Unprocessable`` and goes to ``plans.send.intake.events.dlq``.

For ``AssessmentAgreed`` it decides ``OpenAssessment`` on the case's plans stream and
appends ``AssessmentOpened`` through ``sendkit.commands.decide_in`` in the subscriber's
transaction, the one that marks the intake event processed, so the case is opened
exactly once however often the event is delivered. An agreement for a case whose
request intake never published, or whose request intake had already withdrawn or
refused, is dead-lettered rather than opened. ``RequestReceived`` records that intake
received the case's request, and ``RequestWithdrawn`` and ``AssessmentRefused`` that it
ended (``plans.application.intake_requests``); from then on the command handlers refuse
every step of the assessment. ``RequestReceived`` and ``CoordinatorAssigned`` also
record, in the same transaction, the case's school and coordinator for access control
(``sendkit.auth.scope``), since plans' own events name neither. Every other intake
event is of no concern to plans and is passed over (still marked processed).

The opened event's metadata names the system as actor, carries the intake event's
correlation id, and has the intake event's id as causation id.

A corrected decision date at intake after the assessment was agreed is not yet
reflected here: plans' dates are checked against the decision date first received. A
withdrawal recorded at intake after the final plan was issued leaves the plan as it
is (a plan ends by being ceased, in plans).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

from plans.application import intake_requests
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

_FOLLOWED = frozenset(
    {
        intake_contract.RequestReceived.EVENT_TYPE,
        intake_contract.RequestWithdrawn.EVENT_TYPE,
        intake_contract.AssessmentRefused.EVENT_TYPE,
        intake_contract.AssessmentAgreed.EVENT_TYPE,
    }
)


class IntakeReactions:
    """Handles each intake event inside the subscriber's transaction."""

    def __init__(self, *, clock: Clock = utcnow) -> None:
        self.clock = clock

    def __call__(self, event: ReceivedEvent, tx: Transaction) -> None:
        if event.key != event.subject:
            raise Unprocessable(
                f"event {event.id} has the Kafka key {event.key!r} but is about case "
                f"{event.subject}: intake keys each event by its case, so the record "
                "was not written by intake's relay"
            )
        remember_intake_scope(event, tx)
        if event.type not in _FOLLOWED:
            return
        if event.type == intake_contract.RequestReceived.EVENT_TYPE:
            # Only the case's existence is kept; the request's fields are not read.
            self._check_case(event, event.data.get("case_id"))
            intake_requests.record_received(tx, event.subject)
            return
        # Read tolerantly: a later intake version may add fields plans does not know.
        parsed = intake_contract.parse_intake_event(event.type, event.data)
        self._check_case(event, parsed.case_id)
        match parsed:
            case intake_contract.RequestWithdrawn():
                self._close(tx, event, "withdrawn", parsed.withdrawn_on)
            case intake_contract.AssessmentRefused():
                self._close(tx, event, "refused", parsed.notified_on)
            case intake_contract.AssessmentAgreed():
                self._open(tx, event, parsed)

    @staticmethod
    def _check_case(event: ReceivedEvent, case_id: object) -> None:
        if case_id != event.subject:
            raise Unprocessable(
                f"event {event.id} names case {case_id} in its data but "
                f"{event.subject} as its subject: intake publishes them equal"
            )

    def _close(
        self, tx: Transaction, event: ReceivedEvent, outcome: str, closed_on: date
    ) -> None:
        intake_requests.record_closed(tx, event.subject, outcome, closed_on)
        log.info(
            "request of case %s %s at intake",
            event.subject,
            outcome,
            extra={
                "case_id": event.subject,
                "event_id": event.id,
                "outcome": outcome,
                "closed_on": closed_on.isoformat(),
            },
        )

    def _open(
        self,
        tx: Transaction,
        event: ReceivedEvent,
        agreed: intake_contract.AssessmentAgreed,
    ) -> None:
        case_id = agreed.case_id
        if not intake_requests.is_known(tx, case_id):
            raise Unprocessable(
                f"event {event.id} agrees to assess case {case_id}, but intake never "
                "published a request for it: plans opens only cases intake received"
            )
        closed = intake_requests.closure_of(tx, case_id)
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
            if closed is not None and not history:
                raise Unprocessable(
                    f"event {event.id} agrees to assess case {case_id}, whose request "
                    f"intake recorded as {closed.outcome} on {closed.closed_on}: "
                    "intake decides a request once, and only an open one"
                )
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
