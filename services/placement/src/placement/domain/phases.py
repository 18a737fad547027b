"""Phase transfers: which children with plans move phase in a September, and by when.

A child changes phase of education at the end of certain national curriculum years:
into Reception from the nursery year N2 (-1), infant to junior school after Year 2,
primary to secondary school after Year 6, and secondary school to a post-16
institution after Year 11. A council with infant and junior schools, or with first,
middle and upper schools, has other transfers; the council's ``PhaseConfig`` lists
them, each limited if need be to the children at given schools (by URN).

For a move in September of year ``Y`` the plan must be amended to name the next school
"before 15 February" of ``Y`` (Reg 18(1)(b)), so the last day is 14 February, and for a
move to post-16 before 31 March (Reg 18(1)(a)), last day 30 March. The deadlines
service keeps those clocks from the ``PhaseTransferDue`` events placement publishes;
the dates here are for the cohort list, from the same calendar functions.

A child's transfer is counted as done (``named``) once an amended plan naming a
setting is issued on or after 1 September of the school year before the move (the 12
months before it), whether before or after the transfer was identified: that is what
stops the deadlines clock, which ends at the earliest-dated such amendment wherever it
was recorded. ``named_late`` when that was after the due date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from placement.domain.facts import CaseFacts, Naming
from send_schemas import placement as contract
from sendkit.calendar import academic_year, academic_year_start, act_by, day_before

SCHOOL = "school"
POST16 = "post16"

PHASE_TRANSFERS: dict[str, str] = {
    phase: POST16 if phase == "secondary_to_post16" else SCHOOL
    for phase in contract.PHASES
}
"""Each phase transfer and its kind: ``post16`` (a 31 March deadline) or ``school``."""


@dataclass(frozen=True, slots=True)
class TransferRule:
    """Children leaving ``leaving_year`` in the summer make the move ``phase``.

    With ``schools``, only a child whose setting is one of those URNs moves; a child
    at one of ``except_schools`` never does (a middle school's Year 6 stays on).
    """

    phase: str
    leaving_year: int
    transfer: str = SCHOOL
    schools: frozenset[int] | None = None
    except_schools: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        kind = PHASE_TRANSFERS.get(self.phase)
        if kind is None:
            raise ValueError(
                f"phase {self.phase!r} is not a phase transfer: use one of "
                + ", ".join(PHASE_TRANSFERS)
            )
        if kind != self.transfer:
            raise ValueError(
                f"phase {self.phase} is a {kind} transfer, not {self.transfer}"
            )

    def applies(self, year: int, setting_urn: int | None) -> bool:
        if year != self.leaving_year:
            return False
        if setting_urn is not None and setting_urn in self.except_schools:
            return False
        return self.schools is None or setting_urn in self.schools


INTO_RECEPTION = TransferRule("into_reception", -1)
PRIMARY_TO_SECONDARY = TransferRule("primary_to_secondary", 6)
SECONDARY_TO_POST16 = TransferRule("secondary_to_post16", 11, transfer=POST16)


def infant_to_junior(schools: frozenset[int] | None) -> TransferRule:
    """Year 2 to 3: for every child (``None``) or the children at these schools."""
    return TransferRule("infant_to_junior", 2, schools=schools)


@dataclass(frozen=True, slots=True)
class PhaseConfig:
    """The council's phase transfers; the first rule that applies to a child wins."""

    rules: tuple[TransferRule, ...] = (
        INTO_RECEPTION,
        PRIMARY_TO_SECONDARY,
        SECONDARY_TO_POST16,
    )

    def rule_for(self, year: int, setting_urn: int | None) -> TransferRule | None:
        for rule in self.rules:
            if rule.applies(year, setting_urn):
                return rule
        return None


def due_on(transfer: str, transfer_year: int) -> date:
    """The last day to issue the amended plan: 14 February, or 30 March for post-16."""
    if transfer == POST16:
        return day_before(transfer_year, 3, 31)
    return day_before(transfer_year, 2, 15)


def guidance_due_on(transfer: str, transfer_year: int) -> date | None:
    """The Code of Practice's "by 15 February" (para 9.179), shown beside the law's."""
    return date(transfer_year, 2, 15) if transfer == SCHOOL else None


def window_opens_on(transfer_year: int) -> date:
    """1 September of the school year before the move: 12 months before it."""
    return academic_year_start(transfer_year - 1)


def identifiable_years(today: date) -> tuple[int, int]:
    """The transfer years that may be identified today: the next two Septembers."""
    this_school_year = academic_year(today)
    return this_school_year + 1, this_school_year + 2


@dataclass(frozen=True, slots=True)
class TransferDue:
    """One child due to move phase in September of ``transfer_year``."""

    case_id: str
    phase: str
    transfer: str
    transfer_year: int
    leaving_year: int
    setting_urn: int | None

    @property
    def due_on(self) -> date:
        return due_on(self.transfer, self.transfer_year)


def transfer_due(
    facts: CaseFacts, transfer_year: int, config: PhaseConfig
) -> TransferDue | None:
    """The child's move in September of ``transfer_year``, if they have one.

    Only a child with an issued plan that has not ended is due; the year looked at is
    the one the child is in during the school year before the move.
    """
    if not facts.plan_issued:
        return None
    year = facts.year_in(transfer_year - 1)
    if year is None:
        return None
    rule = config.rule_for(year, facts.setting_urn)
    if rule is None:
        return None
    return TransferDue(
        case_id=facts.case_id,
        phase=rule.phase,
        transfer=rule.transfer,
        transfer_year=transfer_year,
        leaving_year=year,
        setting_urn=facts.setting_urn,
    )


def cohort(
    every: Iterable[CaseFacts], transfer_year: int, config: PhaseConfig
) -> list[TransferDue]:
    """Every child with a plan due to move phase in September of ``transfer_year``."""
    found = [transfer_due(facts, transfer_year, config) for facts in every]
    return sorted(
        (due for due in found if due is not None),
        key=lambda due: (due.leaving_year, due.case_id),
    )


class TransferStatus(StrEnum):
    """Where one child's phase transfer stands."""

    DUE = "due"
    """In the cohort, not yet identified: no clock runs for it yet."""
    IDENTIFIED = "identified"
    """Identified, the due date not yet passed, no plan naming the next setting."""
    OVERDUE = "overdue"
    """The due date has passed and no plan naming the next setting was issued."""
    NAMED = "named"
    """An amended plan naming the next setting was issued by the due date."""
    NAMED_LATE = "named_late"
    """An amended plan naming the next setting was issued after the due date."""
    PLAN_ENDED = "plan_ended"
    """The plan ceased or was transferred to another council; no clock runs."""


def naming_for(facts: CaseFacts, transfer_year: int) -> Naming | None:
    """The earliest amendment naming a setting in the 12 months before the move.

    An amendment issued in that window counts even if it came before the transfer was
    identified, as it does for the deadlines clock: the duty of Reg 18 is met by it.
    """
    opens = window_opens_on(transfer_year)
    for naming in facts.namings:  # kept in the order of their dates
        if naming.by == "amended" and naming.issued_on >= opens:
            return naming
    return None


def transfer_status(
    facts: CaseFacts,
    transfer: str,
    transfer_year: int,
    *,
    identified_on: date | None,
    today: date,
) -> TransferStatus:
    """The status of a child's move, from the plan's facts and today's date."""
    if facts.plan_ended:
        return TransferStatus.PLAN_ENDED
    due = due_on(transfer, transfer_year)
    naming = naming_for(facts, transfer_year)
    if naming is not None:
        return (
            TransferStatus.NAMED
            if naming.issued_on <= due
            else TransferStatus.NAMED_LATE
        )
    if today > due:
        return TransferStatus.OVERDUE
    return (
        TransferStatus.IDENTIFIED if identified_on is not None else TransferStatus.DUE
    )


def act_by_for(transfer: str, transfer_year: int) -> date | None:
    """The working day to act by when the due date is a weekend or bank holiday."""
    return act_by(due_on(transfer, transfer_year))
