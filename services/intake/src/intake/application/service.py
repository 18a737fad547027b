"""Intake's command handlers and queries, over any ``EventStore``.

A command is handled by ``sendkit.commands.run_command``: in one store transaction,
check the idempotency key, load the case's stream, fold it, ``decide``, append with the
version read, and record the answer under the key. A conflict with another writer is
retried on the fresh stream a bounded number of times, then refused as a conflict.

Every event carries ``Metadata``: the acting staff id (``"system"`` when the caller
names none), the correlation id in effect (``sendkit.logging``), and as causation id
the id of the command, shared by every event that command caused.

Moving all of a coordinator's cases (``reassign_all``) handles each case in its own
transaction, so each case moves or stays whole, and reports per case what happened;
with an idempotency key, each case's answer is recorded with its move, so a retry after
a crash finishes the job without moving any case twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from intake.application.read_model import CaseIndex, CaseSummary
from intake.domain import (
    AssignCoordinator,
    Case,
    CaseNotFound,
    Command,
    Context,
    ImpossibleTransition,
    InvalidCommand,
    Status,
    decide,
    fold,
)
from intake.domain.model import OPEN_STATUSES
from sendkit.commands import (
    DEFAULT_ATTEMPTS,
    CommandAnswer,
    CommandConflict,
    run_command,
)
from sendkit.events import SYSTEM_ACTOR, Metadata, RecordedEvent, utcnow
from sendkit.idempotency import Idempotency
from sendkit.logging import (
    correlation_scope,
    current_correlation_id,
    get_correlation_id,
)
from sendkit.store.base import EventStore, StoreUnavailable

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def new_case_id() -> str:
    """A fresh pseudonymous case id."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class CaseHistory:
    """One case as it stands, with every event that made it so."""

    case: Case
    events: list[RecordedEvent]


class IntakeService:
    """Handles intake commands and answers intake queries."""

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
        self.index = CaseIndex(store)

    def _context(self, actor: str, command_id: str) -> Context:
        return Context(
            now=self.clock(),
            metadata=Metadata(
                actor=actor,
                correlation_id=current_correlation_id(),
                causation_id=command_id,
            ),
        )

    def handle(
        self,
        command: Command,
        *,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
    ) -> CommandAnswer:
        """Decide ``command`` on its case and record the events; answer with the case.

        Raises the domain's ``IntakeError`` kinds, or ``CommandConflict``.
        """
        with correlation_scope(get_correlation_id()):
            return self._handle(command, actor, idempotency)

    def _handle(
        self, command: Command, actor: str, idempotency: Idempotency | None
    ) -> CommandAnswer:
        case_id = command.case_id
        command_id = str(uuid.uuid4())

        def decide_on(history: Sequence[RecordedEvent]) -> list[Any]:
            return decide(
                fold(case_id, history), command, self._context(actor, command_id)
            )

        def answer(
            history: Sequence[RecordedEvent], recorded: Sequence[RecordedEvent]
        ) -> dict[str, Any]:
            case = fold(case_id, [*history, *recorded])
            return {
                "case_id": case_id,
                "status": str(case.status),
                "version": case.version,
                "events": [{"id": e.id, "type": e.type} for e in recorded],
            }

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

    def reassign_all(
        self,
        from_coordinator_id: str,
        to_coordinator_id: str,
        *,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
    ) -> CommandAnswer:
        """Move every open case of one coordinator to another, each case atomically."""
        with correlation_scope(get_correlation_id()):
            return self._reassign_all(
                from_coordinator_id, to_coordinator_id, actor, idempotency
            )

    def _reassign_all(
        self,
        from_coordinator_id: str,
        to_coordinator_id: str,
        actor: str,
        idempotency: Idempotency | None,
    ) -> CommandAnswer:
        if from_coordinator_id == to_coordinator_id:
            raise InvalidCommand(
                [("to_coordinator_id", "must differ from the coordinator leaving")]
            )
        if idempotency is not None:
            with self.store.transaction() as tx:
                earlier = idempotency.recorded(tx)
            if earlier is not None:
                return CommandAnswer(
                    body=earlier.body, replayed=True, status_code=earlier.status_code
                )

        cases = self.index.cases(
            coordinator_id=from_coordinator_id, statuses=OPEN_STATUSES
        )
        results = [
            self._move_one(
                case, from_coordinator_id, to_coordinator_id, actor, idempotency
            )
            for case in cases
        ]
        counts = {
            outcome: sum(1 for r in results if r["outcome"] == outcome)
            for outcome in ("reassigned", "unchanged", "skipped", "failed")
        }
        body = {
            "from_coordinator_id": from_coordinator_id,
            "to_coordinator_id": to_coordinator_id,
            "total": len(results),
            **counts,
            "cases": results,
        }
        log.info(
            "moved %s of %s cases from coordinator %s to %s",
            counts["reassigned"],
            len(results),
            from_coordinator_id,
            to_coordinator_id,
            extra={"counts": counts, "actor": actor},
        )

        if idempotency is None:
            return CommandAnswer(body=body)
        with self.store.transaction() as tx:
            earlier = idempotency.recorded(tx)
            if earlier is not None:  # an identical request finished first
                return CommandAnswer(
                    body=earlier.body, replayed=True, status_code=earlier.status_code
                )
            idempotency.record(tx, body)
        return CommandAnswer(body=body)

    def _move_one(
        self,
        summary: CaseSummary,
        from_id: str,
        to_id: str,
        actor: str,
        idempotency: Idempotency | None,
    ) -> dict[str, Any]:
        case_id = summary.case_id
        command = AssignCoordinator(case_id, to_id, only_from=from_id)
        per_case = (
            replace(idempotency, key=f"{idempotency.key}/{case_id}", status_code=200)
            if idempotency is not None
            else None
        )
        command_id = str(uuid.uuid4())

        def decide_on(history: Sequence[RecordedEvent]) -> list[Any]:
            return decide(
                fold(case_id, history), command, self._context(actor, command_id)
            )

        def answer(
            history: Sequence[RecordedEvent], recorded: Sequence[RecordedEvent]
        ) -> dict[str, Any]:
            version = recorded[-1].version if recorded else history[-1].version
            outcome = "reassigned" if recorded else "unchanged"
            return {"case_id": case_id, "outcome": outcome, "version": version}

        try:
            result = run_command(
                self.store,
                case_id,
                decide_on,
                answer,
                idempotency=per_case,
                attempts=self.attempts,
            )
        except ImpossibleTransition as refused:
            return {"case_id": case_id, "outcome": "skipped", "detail": str(refused)}
        except (CommandConflict, StoreUnavailable) as failed:
            log.warning(
                "could not move case %s: %s",
                case_id,
                failed,
                extra={"case_id": case_id, "error": type(failed).__name__},
            )
            return {"case_id": case_id, "outcome": "failed", "detail": str(failed)}
        return result.body

    def case(self, case_id: str) -> CaseHistory:
        """One case and its history; ``CaseNotFound`` if no request made it."""
        events = self.store.read_stream(case_id)
        if not events:
            raise CaseNotFound(case_id)
        return CaseHistory(case=fold(case_id, events), events=events)

    def cases(
        self,
        *,
        coordinator_id: str | None = None,
        school_urn: int | None = None,
        statuses: Iterable[Status] | None = None,
    ) -> list[CaseSummary]:
        """The cases matching every filter given, oldest request first."""
        return self.index.cases(
            coordinator_id=coordinator_id, school_urn=school_urn, statuses=statuses
        )
