"""Placement's command handlers and queries, over any ``EventStore``.

A command on one case is handled by ``sendkit.commands.run_streams_command`` on the
case's stream: in one store transaction, check the idempotency key, load the case's
stream and its facts from intake and plans (the read model documents), fold, ``decide``,
append with the version read, and record the answer under the key. A conflict with
another writer is retried on the fresh stream a bounded number of times, then refused
as a conflict.

Two commands write to many cases at once, all or nothing, in one transaction:
scheduling a panel (``schedule_panel``) lists every case on it, and identifying a
year's phase transfers (``identify_transfers``) records ``PhaseTransferDue`` for each
child in the cohort who has none for that year yet, so identifying again records
nothing new. The cohort is found from the facts as they stand in that transaction.

Every event carries ``Metadata``: the acting staff id (``"system"`` when the caller
names none), the correlation id in effect (``sendkit.logging``), and as causation id
the id of the command, shared by every event that command caused.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from placement.application.facts import FactsFollower, all_facts, load_facts
from placement.application.index import PanelView, PlacementIndex
from placement.domain import (
    Case,
    CaseFacts,
    CaseNotFound,
    Command,
    Context,
    ImpossibleTransition,
    InvalidCommand,
    ListForPanel,
    NotFound,
    PanelNotFound,
    RecordTransferDue,
    decide,
    fold,
)
from placement.domain.phases import (
    PhaseConfig,
    TransferStatus,
    act_by_for,
    cohort,
    due_on,
    guidance_due_on,
    identifiable_years,
    naming_for,
    transfer_due,
    transfer_status,
)
from sendkit.calendar import london_date
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

MAX_PANEL_CASES = 60
"""More cases than any panel hears in a sitting; a longer list is a mistake."""


def new_id() -> str:
    """A fresh id for a consultation, submission, request or panel."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class CaseView:
    """One case as placement sees it: its own state and history, and the facts."""

    case: Case
    facts: CaseFacts | None
    events: list[RecordedEvent]


@dataclass(frozen=True, slots=True)
class CohortEntry:
    """One child of a year's phase-transfer cohort and where the transfer stands."""

    case_id: str
    phase: str
    transfer: str
    transfer_year: int
    leaving_year: int
    setting_urn: int | None
    due_on: date
    act_by: date | None
    guidance_due_on: date | None
    status: TransferStatus
    identified_on: date | None
    named_on: date | None
    named_setting_urn: int | None


@dataclass(frozen=True, slots=True)
class CohortView:
    """A year's cohort, and the children with plans whose year is not known."""

    transfer_year: int
    entries: list[CohortEntry]
    year_unknown: list[str]


def _events_out(recorded: Sequence[RecordedEvent]) -> list[dict[str, str]]:
    return [{"id": event.id, "type": event.type} for event in recorded]


class PlacementService:
    """Handles placement commands and answers placement queries."""

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Clock = utcnow,
        attempts: int = DEFAULT_ATTEMPTS,
        phases: PhaseConfig | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.attempts = attempts
        self.phases = phases or PhaseConfig()
        self.index = PlacementIndex(store)
        self.follower = FactsFollower()

    def _context(
        self, actor: str, command_id: str, facts: CaseFacts | None, now: datetime
    ) -> Context:
        return Context(
            now=now,
            metadata=Metadata(
                actor=actor,
                correlation_id=current_correlation_id(),
                causation_id=command_id,
            ),
            facts=facts,
        )

    # Commands on one case ------------------------------------------------------------

    def handle(
        self,
        command: Command,
        *,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
        answer_with: Mapping[str, Any] | None = None,
    ) -> CommandAnswer:
        """Decide ``command`` on its case and record the events; answer with the case.

        ``answer_with`` adds values to the answer (the id of what the command made),
        so that a replayed answer carries them too. Raises the domain's
        ``PlacementError`` kinds, or ``CommandConflict``.
        """
        with correlation_scope(get_correlation_id()):
            return self._handle(command, actor, idempotency, dict(answer_with or {}))

    def _handle(
        self,
        command: Command,
        actor: str,
        idempotency: Idempotency | None,
        extra: dict[str, Any],
    ) -> CommandAnswer:
        case_id = command.case_id
        command_id = new_id()
        now = self.clock()

        def decide_on(
            tx: Transaction, histories: Histories
        ) -> dict[str, list[NewEvent]]:
            facts = load_facts(tx, case_id)
            context = self._context(actor, command_id, facts, now)
            return {
                case_id: decide(fold(case_id, histories[case_id]), command, context)
            }

        def answer(
            histories: Histories, recorded: Mapping[str, Sequence[RecordedEvent]]
        ) -> dict[str, Any]:
            mine = list(recorded.get(case_id, []))
            case = fold(case_id, [*histories[case_id], *mine])
            return {
                "case_id": case_id,
                **extra,
                "version": case.version,
                "events": _events_out(mine),
            }

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

    # Panels ------------------------------------------------------------------------

    def schedule_panel(
        self,
        panel_on: date | None,
        case_ids: Sequence[str],
        *,
        panel_id: str | None = None,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
    ) -> CommandAnswer:
        """List every case of ``case_ids`` for a panel, on all of them or on none.

        Without ``panel_id`` a new panel meeting on ``panel_on`` is scheduled; with
        it, the cases join that panel (which must exist) on its date.
        """
        with correlation_scope(get_correlation_id()):
            return self._schedule_panel(
                panel_on, list(case_ids), panel_id, actor, idempotency
            )

    def _schedule_panel(
        self,
        panel_on: date | None,
        case_ids: list[str],
        panel_id: str | None,
        actor: str,
        idempotency: Idempotency | None,
    ) -> CommandAnswer:
        problems: list[tuple[str, str]] = []
        if not 1 <= len(case_ids) <= MAX_PANEL_CASES:
            problems.append(
                ("case_ids", f"must list 1 to {MAX_PANEL_CASES} cases for the panel")
            )
        seen: set[str] = set()
        for position, case_id in enumerate(case_ids):
            if case_id in seen:
                problems.append((f"case_ids.{position}", "is listed twice"))
            seen.add(case_id)
        if panel_id is None:
            panel_id = new_id()
            if panel_on is None:
                problems.append(("panel_on", "must give the day the panel meets"))
        else:
            existing = self.index.panel(panel_id)
            if existing is None:
                raise PanelNotFound(panel_id)
            panel_on = existing.panel_on
        if problems or panel_on is None:  # a missing date is among the problems
            raise InvalidCommand(problems)

        command_id = new_id()
        now = self.clock()
        meets_on = panel_on
        chosen_id = panel_id

        def decide_all(
            tx: Transaction, histories: Histories
        ) -> dict[str, list[NewEvent]]:
            decided: dict[str, list[NewEvent]] = {}
            field_errors: list[tuple[str, str]] = []
            refusals: list[str] = []
            for position, case_id in enumerate(case_ids):
                facts = load_facts(tx, case_id)
                context = self._context(actor, command_id, facts, now)
                command = ListForPanel(case_id, chosen_id, meets_on)
                try:
                    decided[case_id] = decide(
                        fold(case_id, histories[case_id]), command, context
                    )
                except NotFound:
                    field_errors.append(
                        (f"case_ids.{position}", "is not a case placement knows")
                    )
                except InvalidCommand as invalid:
                    field_errors += [
                        (f"case_ids.{position}.{field}", message)
                        for field, message in invalid.field_errors
                    ]
                except ImpossibleTransition as refused:
                    refusals.append(str(refused))
            if field_errors:
                raise InvalidCommand(field_errors)
            if refusals:
                raise ImpossibleTransition(
                    "no case was listed, because: " + "; ".join(refusals)
                )
            return decided

        def answer(
            histories: Histories, recorded: Mapping[str, Sequence[RecordedEvent]]
        ) -> dict[str, Any]:
            every = [event for case_id in case_ids for event in recorded[case_id]]
            return {
                "panel_id": chosen_id,
                "panel_on": meets_on.isoformat(),
                "case_ids": case_ids,
                "events": _events_out(every),
            }

        result = run_streams_command(
            self.store,
            case_ids,
            decide_all,
            answer,
            idempotency=idempotency,
            attempts=self.attempts,
        )
        log.info(
            "%d cases listed for panel %s on %s",
            len(result.recorded),
            chosen_id,
            meets_on,
            extra={
                "panel_id": chosen_id,
                "panel_on": meets_on.isoformat(),
                "cases": len(case_ids),
                "replayed": result.replayed,
                "actor": actor,
            },
        )
        return result

    def panel(self, panel_id: str) -> PanelView:
        """One panel; ``PanelNotFound`` if none was scheduled under the id."""
        found = self.index.panel(panel_id)
        if found is None:
            raise PanelNotFound(panel_id)
        return found

    def panels(
        self, *, from_on: date | None = None, to_on: date | None = None
    ) -> list[PanelView]:
        """The panels meeting between the dates given (both included)."""
        return [
            view
            for view in self.index.panels()
            if (from_on is None or view.panel_on >= from_on)
            and (to_on is None or view.panel_on <= to_on)
        ]

    # Phase transfers ------------------------------------------------------------------

    def identify_transfers(
        self,
        transfer_year: int,
        *,
        identified_on: date | None = None,
        actor: str = SYSTEM_ACTOR,
        idempotency: Idempotency | None = None,
    ) -> CommandAnswer:
        """Record ``PhaseTransferDue`` for each child due to move in that September.

        ``identified_on`` is the London day the council identified the cohort (a day
        recorded late, or a replayed year); without it, today. The next two
        Septembers are counted from that day.
        """
        with correlation_scope(get_correlation_id()):
            return self._identify(transfer_year, identified_on, actor, idempotency)

    def _identify(
        self,
        transfer_year: int,
        identified_on: date | None,
        actor: str,
        idempotency: Idempotency | None,
    ) -> CommandAnswer:
        now = self.clock()
        today = london_date(now)
        if identified_on is not None and identified_on > today:
            raise InvalidCommand(
                [
                    (
                        "identified_on",
                        f"must not be in the future (today is {today} in London)",
                    )
                ]
            )
        on = identified_on or today
        first, last = identifiable_years(on)
        if not first <= transfer_year <= last:
            raise InvalidCommand(
                [
                    (
                        "path.year",
                        f"must be {first} or {last}: transfers are identified for the "
                        f"next two Septembers after {on}",
                    )
                ]
            )

        with self.store.transaction() as tx:
            candidates = [
                due.case_id for due in cohort(all_facts(tx), transfer_year, self.phases)
            ]
        command_id = new_id()

        def decide_all(
            tx: Transaction, histories: Histories
        ) -> dict[str, list[NewEvent]]:
            decided: dict[str, list[NewEvent]] = {}
            for case_id in candidates:
                facts = load_facts(tx, case_id)
                due = (
                    None
                    if facts is None
                    else transfer_due(facts, transfer_year, self.phases)
                )
                if due is None:
                    continue  # left the cohort since it was read
                command = RecordTransferDue(
                    case_id=case_id,
                    transfer=due.transfer,
                    transfer_year=transfer_year,
                    phase=due.phase,
                    leaving_year=due.leaving_year,
                    identified_on=on,
                )
                context = self._context(actor, command_id, facts, now)
                decided[case_id] = decide(
                    fold(case_id, histories[case_id]), command, context
                )
            return decided

        def answer(
            histories: Histories, recorded: Mapping[str, Sequence[RecordedEvent]]
        ) -> dict[str, Any]:
            identified = [case_id for case_id in candidates if recorded.get(case_id)]
            every = [event for case_id in identified for event in recorded[case_id]]
            return {
                "transfer_year": transfer_year,
                "cohort": len(candidates),
                "identified": identified,
                "already_identified": len(candidates) - len(identified),
                "events": _events_out(every),
            }

        result = run_streams_command(
            self.store,
            candidates,
            decide_all,
            answer,
            idempotency=idempotency,
            attempts=self.attempts,
        )
        log.info(
            "phase transfers of %d identified: %d new of a cohort of %d",
            transfer_year,
            len(result.recorded),
            len(candidates),
            extra={
                "transfer_year": transfer_year,
                "identified": len(result.recorded),
                "cohort": len(candidates),
                "replayed": result.replayed,
                "actor": actor,
            },
        )
        return result

    def cohort(self, transfer_year: int) -> CohortView:
        """The children moving phase in September of ``transfer_year``, with status.

        The cohort is who is due by the plans and years known now, together with
        every child already identified for that year whose plan has since ended.
        """
        today = london_date(self.clock())
        with self.store.transaction() as tx:
            every = all_facts(tx)
        cases = {case.case_id: case for case in self.index.cases()}
        facts_by_id = {facts.case_id: facts for facts in every}

        entries: dict[str, CohortEntry] = {}
        for due in cohort(every, transfer_year, self.phases):
            facts = facts_by_id[due.case_id]
            case = cases.get(due.case_id)
            record = (
                None if case is None else case.transfer(due.transfer, transfer_year)
            )
            entries[due.case_id] = self._entry(
                facts,
                due.phase,
                due.transfer,
                transfer_year,
                due.leaving_year,
                None if record is None else record.identified_on,
                today,
            )
        for case in cases.values():
            if case.case_id in entries:
                continue
            for record in case.transfers:
                if record.transfer_year != transfer_year:
                    continue
                facts = facts_by_id.get(case.case_id) or CaseFacts(case.case_id)
                entries[case.case_id] = self._entry(
                    facts,
                    record.phase,
                    record.transfer,
                    transfer_year,
                    record.leaving_year,
                    record.identified_on,
                    today,
                )

        year_unknown = [
            facts.case_id
            for facts in every
            if facts.plan_issued and facts.year_in(transfer_year - 1) is None
        ]
        ordered = sorted(
            entries.values(), key=lambda entry: (entry.leaving_year, entry.case_id)
        )
        return CohortView(transfer_year, ordered, year_unknown)

    def _entry(
        self,
        facts: CaseFacts,
        phase: str,
        transfer: str,
        transfer_year: int,
        leaving_year: int,
        identified_on: date | None,
        today: date,
    ) -> CohortEntry:
        naming = naming_for(facts, transfer_year)
        return CohortEntry(
            case_id=facts.case_id,
            phase=phase,
            transfer=transfer,
            transfer_year=transfer_year,
            leaving_year=leaving_year,
            setting_urn=facts.setting_urn,
            due_on=due_on(transfer, transfer_year),
            act_by=act_by_for(transfer, transfer_year),
            guidance_due_on=guidance_due_on(transfer, transfer_year),
            status=transfer_status(
                facts,
                transfer,
                transfer_year,
                identified_on=identified_on,
                today=today,
            ),
            identified_on=identified_on,
            named_on=None if naming is None else naming.issued_on,
            named_setting_urn=None if naming is None else naming.setting_urn,
        )

    # Queries ----------------------------------------------------------------------

    def case(self, case_id: str) -> CaseView:
        """One case's state, history and facts; ``CaseNotFound`` if unknown."""
        with self.store.transaction() as tx:
            events = tx.read_stream(case_id)
            facts = load_facts(tx, case_id)
        if not events and facts is None:
            raise CaseNotFound(case_id)
        return CaseView(case=fold(case_id, events), facts=facts, events=events)
