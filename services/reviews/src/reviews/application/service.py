"""The reviews service's command handlers, reactions and queries, over any store.

A staff command is handled by ``sendkit.commands.run_command``: in one store
transaction, check the idempotency key, load the case's stream, fold it, ``decide``,
append with the version read, and record the answer under the key. A conflict with
another writer is retried on the fresh stream a bounded number of times, then refused
as a conflict.

A reaction to another service's event (``react``) is the subscriber's handler: it runs
inside the transaction in which ``sendkit.subscriber`` marks the event processed, and
decides and appends with ``sendkit.commands.decide_in``, so a reaction and its
bookkeeping commit together and a redelivered event changes nothing.

Every event carries ``Metadata``: the acting staff id (``"system"`` for reactions and
when the caller names none), the correlation id in effect (``sendkit.logging``; a
reaction keeps the one its source event carried), and as causation id the id of the
command, or of the event reacted to.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from reviews.application.reactions import reaction_to
from reviews.application.read_model import ReviewIndex, UpcomingReview
from reviews.domain import (
    Case,
    CaseNotFound,
    Context,
    InvalidQuery,
    Reaction,
    RecordReviewListSent,
    StaffCommand,
    decide,
    fold,
)
from reviews.domain.decide import check_review_list
from sendkit.calendar import months_after
from sendkit.commands import (
    DEFAULT_ATTEMPTS,
    CommandAnswer,
    Histories,
    decide_in,
    run_command,
    run_streams_command,
)
from sendkit.envelope import ReceivedEvent
from sendkit.events import SYSTEM_ACTOR, Metadata, NewEvent, RecordedEvent, utcnow
from sendkit.idempotency import Idempotency
from sendkit.logging import (
    correlation_scope,
    current_correlation_id,
    get_correlation_id,
)
from sendkit.store.base import EventStore, Transaction

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

MAX_WINDOW_MONTHS = 12
"""The longest window a review list covers."""


def new_review_id() -> str:
    """A fresh id for a review being arranged."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class CaseHistory:
    """One case as it stands, with every event that made it so."""

    case: Case
    events: list[RecordedEvent]


class ReviewsService:
    """Handles reviews commands and reactions, and answers reviews queries."""

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Clock = utcnow,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.attempts = attempts
        self.index = ReviewIndex(store)

    # --- commands from staff ----------------------------------------------------

    def _context(self, actor: str) -> Context:
        """The context of one staff command; its events share its causation id."""
        return Context(
            now=self.clock(),
            metadata=Metadata(
                actor=actor,
                correlation_id=current_correlation_id(),
                causation_id=str(uuid.uuid4()),
            ),
        )

    def handle(
        self,
        command: StaffCommand,
        *,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
    ) -> CommandAnswer:
        """Decide ``command`` on its case and record the events; answer with the case.

        Raises the domain's ``ReviewsError`` kinds, or ``CommandConflict``.
        """
        with correlation_scope(get_correlation_id()):
            return self._handle(command, actor, idempotency)

    def _handle(
        self, command: StaffCommand, actor: str, idempotency: Idempotency | None
    ) -> CommandAnswer:
        case_id = command.case_id
        context = self._context(actor)

        def decide_on(history: Sequence[RecordedEvent]) -> list[NewEvent]:
            return decide(fold(case_id, history), command, context)

        def answer(
            history: Sequence[RecordedEvent], recorded: Sequence[RecordedEvent]
        ) -> dict[str, Any]:
            case = fold(case_id, [*history, *recorded])
            body: dict[str, Any] = {
                "case_id": case_id,
                "plan_status": str(case.plan_status),
                "version": case.version,
                "events": [{"id": e.id, "type": e.type} for e in recorded],
            }
            review_id = getattr(command, "review_id", None)
            review = case.review(review_id) if review_id is not None else None
            if review is not None:
                body["review_id"] = review.review_id
                body["review_status"] = str(review.status)
            due_on = case.next_review_due_on
            body["next_review_due_on"] = due_on.isoformat() if due_on else None
            return body

        result = run_command(
            self.store,
            case_id,
            decide_on,
            answer,
            idempotency=idempotency,
            attempts=self.attempts,
        )
        log.info(
            "%s handled on case %s",
            type(command).__name__,
            case_id,
            extra={
                "command": type(command).__name__,
                "case_id": case_id,
                "events": [e.type for e in result.recorded],
                "replayed": result.replayed,
                "actor": actor,
            },
        )
        return result

    def send_review_list(
        self,
        setting_urn: int,
        term_starts_on: date,
        term_ends_on: date,
        sent_on: date,
        *,
        include_overdue: bool = False,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
    ) -> CommandAnswer:
        """Record that the setting's SENCO was sent the list of the term's reviews.

        Every case the list names (as ``upcoming_reviews`` answers for the window)
        gets a ``ReviewListSentToSenco``, all in one transaction: either every case
        records the list or none does. A case whose plan stopped naming the setting
        since the list was read is left out.
        """
        with correlation_scope(get_correlation_id()):
            return self._send_review_list(
                setting_urn,
                term_starts_on,
                term_ends_on,
                sent_on,
                include_overdue,
                actor,
                idempotency,
            )

    def _send_review_list(
        self,
        setting_urn: int,
        first: date,
        last: date,
        sent_on: date,
        include_overdue: bool,
        actor: str,
        idempotency: Idempotency | None,
    ) -> CommandAnswer:
        listed = self.upcoming_reviews(
            first,
            last,
            setting_urn=setting_urn,
            include_overdue=include_overdue,
            fields=("term_start", "term_end"),
        )
        context = self._context(actor)

        def decide_on(tx: Transaction, histories: Histories) -> dict[str, Any]:
            check_review_list(sent_on, context)
            decided: dict[str, list[NewEvent]] = {}
            for case_id, history in histories.items():
                case = fold(case_id, history)
                due_on = case.next_review_due_on
                if case.setting_urn != setting_urn or due_on is None or due_on > last:
                    continue
                command = RecordReviewListSent(case_id, setting_urn, sent_on, first)
                decided[case_id] = decide(case, command, context)
            return decided

        def answer(
            histories: Histories, recorded: Mapping[str, Sequence[RecordedEvent]]
        ) -> dict[str, Any]:
            cases = []
            for case_id, history in histories.items():
                case = fold(case_id, [*history, *recorded.get(case_id, [])])
                due_on = case.next_review_due_on
                cases.append(
                    {
                        "case_id": case_id,
                        "review_due_on": due_on.isoformat() if due_on else None,
                        "recorded": bool(recorded.get(case_id)),
                    }
                )
            return {
                "setting_urn": setting_urn,
                "term_start": first.isoformat(),
                "term_end": last.isoformat(),
                "sent_on": sent_on.isoformat(),
                "total": len(cases),
                "recorded": sum(1 for row in cases if row["recorded"]),
                "cases": cases,
            }

        result = run_streams_command(
            self.store,
            [row.case_id for row in listed],
            decide_on,
            answer,
            idempotency=idempotency,
            attempts=self.attempts,
        )
        log.info(
            "review list for setting %s recorded on %d case(s)",
            setting_urn,
            len(result.recorded),
            extra={
                "setting_urn": setting_urn,
                "term_start": first.isoformat(),
                "events": len(result.recorded),
                "replayed": result.replayed,
                "actor": actor,
            },
        )
        return result

    # --- reactions to other services' events ------------------------------------

    def react(self, event: ReceivedEvent, tx: Transaction) -> None:
        """Record what a consumed plans or intake event means for the case's reviews.

        The ``sendkit.subscriber.Handler`` of both subscribers. Raises pydantic's
        ``ValidationError`` or ``Unprocessable`` for an event that breaks its contract.
        """
        reaction = reaction_to(event)
        if reaction is None:
            return
        recorded = self.apply(reaction, tx, event.metadata.correlation_id, event.id)
        log.info(
            "%s recorded %d event(s) on case %s",
            event.name,
            len(recorded),
            reaction.case_id,
            extra={
                "source_type": event.type,
                "source_id": event.id,
                "case_id": reaction.case_id,
                "events": [e.type for e in recorded],
            },
        )

    def apply(
        self,
        reaction: Reaction,
        tx: Transaction,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> list[RecordedEvent]:
        """Decide ``reaction`` on its case inside ``tx`` and append what it causes."""
        case_id = reaction.case_id
        context = Context(
            now=self.clock(),
            metadata=Metadata(
                actor=SYSTEM_ACTOR,
                correlation_id=correlation_id,
                causation_id=causation_id,
            ),
        )

        def decide_on(history: Sequence[RecordedEvent]) -> list[NewEvent]:
            return decide(fold(case_id, history), reaction, context)

        _, recorded = decide_in(tx, case_id, decide_on)
        return recorded

    # --- queries ----------------------------------------------------------------

    def case(self, case_id: str) -> CaseHistory:
        """One case and its history; ``CaseNotFound`` if reviews knows nothing of it."""
        events = self.store.read_stream(case_id)
        if not events:
            raise CaseNotFound(case_id)
        return CaseHistory(case=fold(case_id, events), events=events)

    def upcoming_reviews(
        self,
        first: date,
        last: date,
        *,
        setting_urn: int | None = None,
        coordinator_id: str | None = None,
        include_overdue: bool = False,
        fields: tuple[str, str] = ("query.from", "query.to"),
    ) -> list[UpcomingReview]:
        """The next reviews due from ``first`` to ``last``; ``fields`` name the two
        bounds in the errors (``query.term_start``, or ``term_start`` in a body)."""
        first_name = fields[0].rsplit(".", 1)[-1]
        if last < first:
            raise InvalidQuery(
                [(fields[1], f"must not be before {first_name} ({first})")]
            )
        if last > months_after(first, MAX_WINDOW_MONTHS):
            raise InvalidQuery(
                [
                    (
                        fields[1],
                        f"must be within {MAX_WINDOW_MONTHS} months of {first_name}",
                    )
                ]
            )
        return self.index.upcoming(
            first,
            last,
            setting_urn=setting_urn,
            coordinator_id=coordinator_id,
            include_overdue=include_overdue,
        )
