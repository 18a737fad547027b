"""Plans' command handlers and queries, over any ``EventStore``.

A command is handled by ``sendkit.commands.run_streams_command``: in one store
transaction, check the idempotency key, load the case's stream, fold it, read what the
subscriber recorded of intake's request (``plans.application.intake_requests``: a
withdrawn or refused request ends the assessment), ``decide``, append with the version
read, and record the answer under the key. A conflict with another writer is
retried on the fresh stream a bounded number of times, then refused as a conflict.

Every event carries ``Metadata``: the acting staff id (``"system"`` when the caller
names none), the correlation id in effect (``sendkit.logging``), and as causation id
the id of the command, shared by every event that command caused.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plans.application import intake_requests
from plans.domain import (
    CaseNotFound,
    Command,
    Context,
    Plan,
    RequestAdvice,
    RequestClosed,
    decide,
    fold,
)
from sendkit.commands import (
    DEFAULT_ATTEMPTS,
    CommandAnswer,
    Histories,
    run_streams_command,
)
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


def new_id() -> str:
    """A fresh id for a case transferred in, or a request for advice."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class CaseHistory:
    """One case as it stands, with every event that made it so.

    ``request_closed`` is intake's word that the request was withdrawn or refused.
    """

    plan: Plan
    events: list[RecordedEvent]
    request_closed: RequestClosed | None = None


class PlansService:
    """Handles plans commands and answers plans queries."""

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

    def context(
        self,
        actor: str,
        causation_id: str,
        request_closed: RequestClosed | None = None,
    ) -> Context:
        """What a decision made now, by ``actor``, because of ``causation_id`` sees."""
        return Context(
            now=self.clock(),
            metadata=Metadata(
                actor=actor,
                correlation_id=current_correlation_id(),
                causation_id=causation_id,
            ),
            request_closed=request_closed,
        )

    def handle(
        self,
        command: Command,
        *,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
    ) -> CommandAnswer:
        """Decide ``command`` on its case and record the events; answer with the case.

        Raises the domain's ``PlansError`` kinds, or ``CommandConflict``.
        """
        with correlation_scope(get_correlation_id()):
            return self._handle(command, actor, idempotency)

    def _handle(
        self, command: Command, actor: str, idempotency: Idempotency | None
    ) -> CommandAnswer:
        case_id = command.case_id
        command_id = str(uuid.uuid4())

        def decide_on(
            tx: Transaction, histories: Histories
        ) -> dict[str, list[NewEvent]]:
            closed = intake_requests.closure_of(tx, case_id)
            context = self.context(actor, command_id, closed)
            plan = fold(case_id, histories[case_id])
            return {case_id: decide(plan, command, context)}

        def answer(
            histories: Histories,
            recorded_by_case: Mapping[str, Sequence[RecordedEvent]],
        ) -> dict[str, Any]:
            history = histories[case_id]
            recorded = recorded_by_case.get(case_id, [])
            plan = fold(case_id, [*history, *recorded])
            body: dict[str, Any] = {
                "case_id": case_id,
                "status": str(plan.status),
                "version": plan.version,
                "events": [{"id": e.id, "type": e.type} for e in recorded],
            }
            if isinstance(command, RequestAdvice):
                body["advice_id"] = command.advice_id
            return body

        result = run_streams_command(
            self.store,
            [case_id],
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

    def case(self, case_id: str) -> CaseHistory:
        """One case and its history; ``CaseNotFound`` if plans never opened it."""
        with self.store.transaction() as tx:
            events = tx.read_stream(case_id)
            closed = intake_requests.closure_of(tx, case_id)
        if not events:
            raise CaseNotFound(case_id)
        return CaseHistory(
            plan=fold(case_id, events), events=events, request_closed=closed
        )
