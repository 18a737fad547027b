"""What placement knows of a case from other services: intake's request, plans' plan.

Placement never reads another service's database; it follows their topics and folds
the events it needs into one ``CaseFacts`` per case, with ``observe``. From intake's
``RequestReceived`` it keeps the London date of the request, the national curriculum
year the child was in then and the school; from the plans service, whether a plan is
in draft, issued, ceased or transferred out, and each time a plan was issued or
amended naming a setting. Nothing personal is among them.

The curriculum year moves on each September. ``CaseFacts.year_in(academic_year)`` is
the year the child is in during the school year that begins in ``academic_year``:
the year stated at the request, plus the school years since the one the request was
made in. It assumes the child moves up every September; a child taught out of their
year group, or who repeats a year, is placed wrongly, and nothing in the published
facts says so.

A plan transferred in from another council comes with no request to intake, so its
child's year is unknown until a request is recorded; such children are left out of
phase-transfer cohorts and listed apart (``year_unknown``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from send_schemas import intake as intake_contract
from send_schemas import plans as plans_contract
from sendkit.calendar import academic_year, london_date

CURRICULUM_YEAR_MIN = intake_contract.CURRICULUM_YEAR_MIN
CURRICULUM_YEAR_MAX = intake_contract.CURRICULUM_YEAR_MAX


class PlanStatus(StrEnum):
    """Where the case's EHC plan is, as the plans service has published it."""

    DRAFT = "draft"
    ISSUED = "issued"
    CEASED = "ceased"
    TRANSFERRED_OUT = "transferred_out"


ENDED = frozenset({PlanStatus.CEASED, PlanStatus.TRANSFERRED_OUT})


@dataclass(frozen=True, slots=True)
class Naming:
    """A plan issued (``issued``) or amended (``amended``) naming a setting."""

    issued_on: date
    by: str
    setting_urn: int | None
    setting_type: str | None


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """The other services' facts about one case that placement's rules use."""

    case_id: str
    received_on: date | None = None
    curriculum_year: int | None = None
    year_recorded_in: int | None = None
    school_urn: int | None = None
    plan_status: PlanStatus | None = None
    plan_issued_on: date | None = None
    plan_ended_on: date | None = None
    namings: tuple[Naming, ...] = ()

    @property
    def plan_ended(self) -> bool:
        return self.plan_status in ENDED

    @property
    def plan_issued(self) -> bool:
        return self.plan_status is PlanStatus.ISSUED

    @property
    def setting_urn(self) -> int | None:
        """The setting the child is at: the plan's latest named one, else the school
        named in the request."""
        for naming in reversed(self.namings):
            if naming.setting_urn is not None:
                return naming.setting_urn
        return self.school_urn

    def year_in(self, school_year: int) -> int | None:
        """The curriculum year in the school year beginning in ``school_year``.

        None when the year is unknown or the child is not yet of nursery age; years
        past 13 stay at 14 (19 to 25).
        """
        if self.curriculum_year is None or self.year_recorded_in is None:
            return None
        year = self.curriculum_year + (school_year - self.year_recorded_in)
        if year < CURRICULUM_YEAR_MIN:
            return None
        return min(year, CURRICULUM_YEAR_MAX)

    def year_on(self, day: date) -> int | None:
        """The curriculum year on ``day``."""
        return self.year_in(academic_year(day))

    # The document kept in placement's store -------------------------------------------

    def to_document(self) -> dict[str, Any]:
        return {
            "received_on": _iso(self.received_on),
            "curriculum_year": self.curriculum_year,
            "year_recorded_in": self.year_recorded_in,
            "school_urn": self.school_urn,
            "plan_status": None if self.plan_status is None else str(self.plan_status),
            "plan_issued_on": _iso(self.plan_issued_on),
            "plan_ended_on": _iso(self.plan_ended_on),
            "namings": [
                {
                    "issued_on": naming.issued_on.isoformat(),
                    "by": naming.by,
                    "setting_urn": naming.setting_urn,
                    "setting_type": naming.setting_type,
                }
                for naming in self.namings
            ],
        }

    @classmethod
    def from_document(cls, case_id: str, document: Mapping[str, Any]) -> CaseFacts:
        status = document.get("plan_status")
        return cls(
            case_id=case_id,
            received_on=_date(document.get("received_on")),
            curriculum_year=document.get("curriculum_year"),
            year_recorded_in=document.get("year_recorded_in"),
            school_urn=document.get("school_urn"),
            plan_status=None if status is None else PlanStatus(status),
            plan_issued_on=_date(document.get("plan_issued_on")),
            plan_ended_on=_date(document.get("plan_ended_on")),
            namings=tuple(
                Naming(
                    issued_on=date.fromisoformat(item["issued_on"]),
                    by=item["by"],
                    setting_urn=item.get("setting_urn"),
                    setting_type=item.get("setting_type"),
                )
                for item in document.get("namings", ())
            ),
        )


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _date(value: object) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


OBSERVED_TYPES: frozenset[str] = frozenset(
    {
        intake_contract.RequestReceived.EVENT_TYPE,
        intake_contract.RequestCorrected.EVENT_TYPE,
        plans_contract.DraftPlanIssued.EVENT_TYPE,
        plans_contract.PlanIssued.EVENT_TYPE,
        plans_contract.PlanAmended.EVENT_TYPE,
        plans_contract.PlanCeased.EVENT_TYPE,
        plans_contract.PlanTransferredOut.EVENT_TYPE,
        plans_contract.PlanTransferredIn.EVENT_TYPE,
    }
)
"""The other services' event types that change a case's facts."""


def observe(facts: CaseFacts, event_type: str, data: dict[str, Any]) -> CaseFacts:
    """The facts after one of intake's or plans' events (others change nothing).

    Raises pydantic's ``ValidationError`` for an event that breaks its contract.
    """
    if event_type not in OBSERVED_TYPES:
        return facts
    if event_type.startswith("send.intake."):
        return _observe_intake(
            facts, intake_contract.parse_intake_event(event_type, data)
        )
    return _observe_plans(facts, plans_contract.parse_plans_event(event_type, data))


def _observe_intake(facts: CaseFacts, event: intake_contract.IntakeEvent) -> CaseFacts:
    if isinstance(event, intake_contract.RequestReceived):
        received_on = london_date(event.received_at)
        return replace(
            facts,
            received_on=received_on,
            curriculum_year=event.curriculum_year,
            year_recorded_in=academic_year(received_on),
            school_urn=event.school_urn,
        )
    if (
        isinstance(event, intake_contract.RequestCorrected)
        and event.field == "received_at"
    ):
        # The year stated stays anchored to when it was stated: a corrected legal
        # date of receipt does not change which year the child was in.
        return replace(
            facts, received_on=london_date(datetime.fromisoformat(event.new_value))
        )
    return facts


def _observe_plans(facts: CaseFacts, event: plans_contract.PlansEvent) -> CaseFacts:
    if isinstance(event, plans_contract.DraftPlanIssued):
        if facts.plan_status is None:
            return replace(facts, plan_status=PlanStatus.DRAFT)
        return facts
    if isinstance(event, plans_contract.PlanIssued):
        naming = Naming(
            event.issued_on, "issued", event.setting_urn, event.setting_type
        )
        return replace(
            facts,
            plan_status=PlanStatus.ISSUED,
            plan_issued_on=event.issued_on,
            plan_ended_on=None,
            namings=_with(facts.namings, naming),
        )
    if isinstance(event, plans_contract.PlanAmended):
        if event.setting_urn is None and event.setting_type is None:
            return facts
        naming = Naming(
            event.issued_on, "amended", event.setting_urn, event.setting_type
        )
        return replace(facts, namings=_with(facts.namings, naming))
    if isinstance(event, plans_contract.PlanTransferredIn):
        return replace(
            facts,
            plan_status=PlanStatus.ISSUED,
            plan_issued_on=event.transferred_on,
            plan_ended_on=None,
        )
    if isinstance(event, plans_contract.PlanCeased):
        return replace(
            facts, plan_status=PlanStatus.CEASED, plan_ended_on=event.ceased_on
        )
    if isinstance(event, plans_contract.PlanTransferredOut):
        return replace(
            facts,
            plan_status=PlanStatus.TRANSFERRED_OUT,
            plan_ended_on=event.transferred_on,
        )
    return facts


def _with(namings: tuple[Naming, ...], naming: Naming) -> tuple[Naming, ...]:
    """The namings with one more, in the order of their dates."""
    if naming in namings:
        return namings
    return tuple(sorted((*namings, naming), key=lambda n: n.issued_on))
