"""The JSON bodies placement's HTTP API accepts and returns.

Request bodies refuse unknown fields, so a misspelt field is a 422 naming it rather
than a value silently ignored. Their constraints repeat the domain's for the OpenAPI
document; the domain checks them again, with the rules that need the time, the case or
its plan (nothing in the future, a URN that fits its kind, a consulted setting).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from placement.application.index import PanelView
from placement.application.service import CaseView, CohortEntry, CohortView
from placement.domain.facts import CaseFacts
from placement.domain.model import Listing, Setting
from send_schemas import intake as intake_contract
from send_schemas import placement as contract
from sendkit.events import RecordedEvent

Text = Annotated[str, Field(min_length=1, max_length=4000)]
SettingId = Annotated[
    int,
    Field(
        ge=contract.URN_MIN,
        le=contract.UKPRN_MAX,
        description="A URN (6 digits) or a UKPRN (8 digits), as setting_id_kind says.",
    ),
]
Pence = Annotated[int, Field(ge=0, le=contract.MAX_PENCE)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SettingRequestBody(_Body):
    """A parent's or young person's request for a particular school or college."""

    requested_by: contract.Requester
    request_kind: contract.RequestKind
    setting_id: SettingId
    setting_id_kind: contract.SettingIdKind
    requested_on: date = Field(description="London date; not in the future.")
    views: Text | None = Field(
        default=None, description="Their views, kept private to placement."
    )


class ConsultationBody(_Body):
    """A school or college consulted about being named, and the day it was sent."""

    setting_id: SettingId
    setting_id_kind: contract.SettingIdKind
    sent_on: date


class AnswerBody(_Body):
    """The consulted setting's answer."""

    outcome: contract.ConsultationOutcome
    answered_on: date
    reasons: Text | None = Field(
        default=None, description="Required when the setting declined; private."
    )


class OptionBody(_Body):
    """A setting to put to the panel and its yearly costs, in pence, by who pays."""

    setting_id: SettingId
    setting_id_kind: contract.SettingIdKind
    education_pence: Pence
    health_pence: Pence
    social_care_pence: Pence


class SubmissionBody(_Body):
    """A submission to the SEND placement panel."""

    prepared_on: date
    options: list[OptionBody] = Field(min_length=1, max_length=10)
    family_views: Text | None = None
    setting_views: Text | None = None


class PanelBody(_Body):
    """A new panel: the day it meets and the cases on its agenda."""

    panel_on: date
    case_ids: list[intake_contract.CaseId] = Field(min_length=1, max_length=60)


class PanelCasesBody(_Body):
    """More cases for an existing panel's agenda."""

    case_ids: list[intake_contract.CaseId] = Field(min_length=1, max_length=60)


class PanelDecisionBody(_Body):
    """The panel's decision on one case."""

    outcome: contract.PanelOutcome
    setting_id: SettingId | None = None
    setting_id_kind: contract.SettingIdKind | None = None
    reasons: Text | None = Field(
        default=None, description="Required when the panel declined; private."
    )


class CommunicationBody(_Body):
    """The day the family was told of the panel's decision."""

    communicated_on: date


class IdentifyBody(_Body):
    """Optional: the day the council identified the cohort (default today)."""

    identified_on: date | None = Field(
        default=None, description="London date; not in the future."
    )


class Post16MoveBody(_Body):
    """A proposed move between post-16 institutions."""

    move_on: date
    note: Text | None = None


class TransportDecisionBody(_Body):
    """Whether the child or young person is eligible for travel assistance."""

    eligible: StrictBool
    decided_on: date
    reasons: Text | None = None


class TransportReferralBody(_Body):
    """A referral to the SEN transport team."""

    referred_on: date
    notes: Text | None = Field(
        default=None, description="What the transport team needs to know; private."
    )


# Answers ----------------------------------------------------------------------------


class CommandOut(BaseModel):
    """The answer to a command on one case (with the id of anything it created)."""

    model_config = ConfigDict(extra="allow")

    case_id: str
    version: int
    events: list[dict[str, str]]


class SettingOut(BaseModel):
    setting_id: int
    setting_id_kind: str

    @classmethod
    def of(cls, setting: Setting | None) -> SettingOut | None:
        if setting is None:
            return None
        return cls(setting_id=setting.setting_id, setting_id_kind=setting.kind)


class NamingOut(BaseModel):
    issued_on: date
    by: str
    setting_urn: int | None
    setting_type: str | None


class FactsOut(BaseModel):
    """What intake and plans have said about the case."""

    received_on: date | None
    curriculum_year_now: int | None
    curriculum_year_at_request: int | None
    school_urn: int | None
    setting_urn: int | None
    plan_status: str | None
    plan_issued_on: date | None
    plan_ended_on: date | None
    namings: list[NamingOut]

    @classmethod
    def of(cls, facts: CaseFacts | None, today: date) -> FactsOut | None:
        if facts is None:
            return None
        return cls(
            received_on=facts.received_on,
            curriculum_year_now=facts.year_on(today),
            curriculum_year_at_request=facts.curriculum_year,
            school_urn=facts.school_urn,
            setting_urn=facts.setting_urn,
            plan_status=None if facts.plan_status is None else str(facts.plan_status),
            plan_issued_on=facts.plan_issued_on,
            plan_ended_on=facts.plan_ended_on,
            namings=[
                NamingOut(
                    issued_on=n.issued_on,
                    by=n.by,
                    setting_urn=n.setting_urn,
                    setting_type=n.setting_type,
                )
                for n in facts.namings
            ],
        )


class ListingOut(BaseModel):
    panel_id: str
    panel_on: date
    submission_id: str
    outcome: str | None
    setting: SettingOut | None
    reasons: str | None
    communicated_on: date | None

    @classmethod
    def of(cls, listing: Listing) -> ListingOut:
        return cls(
            panel_id=listing.panel_id,
            panel_on=listing.panel_on,
            submission_id=listing.submission_id,
            outcome=listing.outcome,
            setting=SettingOut.of(listing.setting),
            reasons=listing.reasons,
            communicated_on=listing.communicated_on,
        )


class EventOut(BaseModel):
    """One event of a case's history, with its private part."""

    id: str
    type: str
    version: int
    position: int
    time: datetime
    actor: str
    correlation_id: str
    causation_id: str | None
    data: dict[str, Any]
    private: dict[str, Any] | None

    @classmethod
    def of(cls, event: RecordedEvent) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            version=event.version,
            position=event.position,
            time=event.time,
            actor=event.metadata.actor,
            correlation_id=event.metadata.correlation_id,
            causation_id=event.metadata.causation_id,
            data=event.data,
            private=event.private,
        )


class CaseOut(BaseModel):
    """One case's placement: requests, consultations, panels, transfers, transport."""

    case_id: str
    version: int
    facts: FactsOut | None
    requests: list[dict[str, Any]]
    consultations: list[dict[str, Any]]
    submission: dict[str, Any] | None
    listings: list[ListingOut]
    transfers: list[dict[str, Any]]
    post16_moves: list[date]
    transport: dict[str, Any] | None
    history: list[EventOut]

    @classmethod
    def of(cls, found: CaseView, today: date) -> CaseOut:
        case = found.case
        submission = case.submission
        transport = case.transport
        return cls(
            case_id=case.case_id,
            version=case.version,
            facts=FactsOut.of(found.facts, today),
            requests=[
                {
                    "request_id": r.request_id,
                    "requested_by": r.requested_by,
                    "request_kind": r.request_kind,
                    **r.setting.as_data(),
                    "requested_on": r.requested_on.isoformat(),
                    "views": r.views,
                }
                for r in case.requests
            ],
            consultations=[
                {
                    "consultation_id": c.consultation_id,
                    **c.setting.as_data(),
                    "sent_on": c.sent_on.isoformat(),
                    "answered_on": None
                    if c.answered_on is None
                    else c.answered_on.isoformat(),
                    "outcome": c.outcome,
                    "reasons": c.reasons,
                }
                for c in case.consultations
            ],
            submission=None
            if submission is None
            else {
                "submission_id": submission.submission_id,
                "prepared_on": submission.prepared_on.isoformat(),
                "options": [option.as_data() for option in submission.options],
                "family_views": submission.family_views,
                "setting_views": submission.setting_views,
            },
            listings=[ListingOut.of(listing) for listing in case.listings],
            transfers=[
                {
                    "transfer": t.transfer,
                    "transfer_year": t.transfer_year,
                    "phase": t.phase,
                    "leaving_year": t.leaving_year,
                    "identified_on": t.identified_on.isoformat(),
                }
                for t in case.transfers
            ],
            post16_moves=list(case.post16_moves),
            transport=None
            if transport is None
            else {
                "eligible": transport.eligible,
                "decided_on": transport.decided_on.isoformat(),
                "reasons": transport.reasons,
                "referred_on": None
                if transport.referred_on is None
                else transport.referred_on.isoformat(),
                "referral_notes": transport.referral_notes,
            },
            history=[EventOut.of(event) for event in found.events],
        )


class PanelCaseOut(BaseModel):
    case_id: str
    outcome: str | None
    setting: SettingOut | None
    communicated_on: date | None


class PanelOut(BaseModel):
    """A panel: its date and its cases, with each decision (no reasons)."""

    panel_id: str
    panel_on: date
    cases: list[PanelCaseOut]

    @classmethod
    def of(cls, view: PanelView) -> PanelOut:
        return cls(
            panel_id=view.panel_id,
            panel_on=view.panel_on,
            cases=[
                PanelCaseOut(
                    case_id=case_id,
                    outcome=listing.outcome,
                    setting=SettingOut.of(listing.setting),
                    communicated_on=listing.communicated_on,
                )
                for case_id, listing in view.cases
            ],
        )


class PanelListOut(BaseModel):
    panels: list[PanelOut]


class CohortEntryOut(BaseModel):
    """One child due to move phase, and where the plan naming the next setting is."""

    case_id: str
    phase: str
    transfer: str
    leaving_year: int
    setting_urn: int | None
    due_on: date
    act_by: date | None
    guidance_due_on: date | None
    status: str
    identified_on: date | None
    named_on: date | None
    named_setting_urn: int | None

    @classmethod
    def of(cls, entry: CohortEntry) -> CohortEntryOut:
        return cls(
            case_id=entry.case_id,
            phase=entry.phase,
            transfer=entry.transfer,
            leaving_year=entry.leaving_year,
            setting_urn=entry.setting_urn,
            due_on=entry.due_on,
            act_by=entry.act_by,
            guidance_due_on=entry.guidance_due_on,
            status=str(entry.status),
            identified_on=entry.identified_on,
            named_on=entry.named_on,
            named_setting_urn=entry.named_setting_urn,
        )


class CohortOut(BaseModel):
    """A September's phase-transfer cohort, counted by status."""

    transfer_year: int
    total: int
    by_status: dict[str, int]
    children: list[CohortEntryOut]
    year_unknown: list[str] = Field(
        description="Cases with an issued plan whose curriculum year is not known."
    )

    @classmethod
    def of(cls, view: CohortView) -> CohortOut:
        counts: dict[str, int] = {}
        for entry in view.entries:
            counts[str(entry.status)] = counts.get(str(entry.status), 0) + 1
        return cls(
            transfer_year=view.transfer_year,
            total=len(view.entries),
            by_status=counts,
            children=[CohortEntryOut.of(entry) for entry in view.entries],
            year_unknown=view.year_unknown,
        )
