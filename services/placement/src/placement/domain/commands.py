"""What staff (or placement itself) ask the placement service to do, as plain values.

Commands are imperative (``ConsultSetting``), the events they cause past tense
(``SettingConsulted``). Values arrive parsed into Python types but not yet checked
against the rules: ``decide`` does that, so the rules hold whichever entry point a
command comes through. Ids a command creates (a consultation's, a panel's) are chosen
by the caller, so that deciding stays a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from placement.domain.facts import CaseFacts
from sendkit.events import Metadata


@dataclass(frozen=True, slots=True)
class Context:
    """What a decision may depend on besides the case: the time, who is acting, and
    what intake and plans have said about the case (None if nothing yet)."""

    now: datetime
    metadata: Metadata
    facts: CaseFacts | None = None


@dataclass(frozen=True, slots=True)
class RequestSetting:
    """Record a parent's or young person's request for a school or college."""

    case_id: str
    request_id: str
    requested_by: str
    request_kind: str
    setting_id: int
    setting_id_kind: str
    requested_on: date
    views: str | None = None


@dataclass(frozen=True, slots=True)
class ConsultSetting:
    """Record that the council consulted a school or college about naming it."""

    case_id: str
    consultation_id: str
    setting_id: int
    setting_id_kind: str
    sent_on: date


@dataclass(frozen=True, slots=True)
class AnswerConsultation:
    """Record a consulted setting's answer: a place offered, or declined (reasons)."""

    case_id: str
    consultation_id: str
    outcome: str
    answered_on: date
    reasons: str | None = None


@dataclass(frozen=True, slots=True)
class OptionInput:
    """One option for the panel as entered: a setting and its costs in pence."""

    setting_id: int
    setting_id_kind: str
    education_pence: int
    health_pence: int
    social_care_pence: int


@dataclass(frozen=True, slots=True)
class PrepareSubmission:
    """Prepare the case's submission to the SEND placement panel."""

    case_id: str
    submission_id: str
    prepared_on: date
    options: tuple[OptionInput, ...]
    family_views: str | None = None
    setting_views: str | None = None


@dataclass(frozen=True, slots=True)
class ListForPanel:
    """Put the case on the agenda of the panel ``panel_id`` meeting on ``panel_on``."""

    case_id: str
    panel_id: str
    panel_on: date


@dataclass(frozen=True, slots=True)
class DecidePanel:
    """Record the panel's decision on the case."""

    case_id: str
    panel_id: str
    outcome: str
    setting_id: int | None = None
    setting_id_kind: str | None = None
    reasons: str | None = None


@dataclass(frozen=True, slots=True)
class CommunicateDecision:
    """Record the day the family was told of the panel's decision."""

    case_id: str
    panel_id: str
    communicated_on: date


@dataclass(frozen=True, slots=True)
class RecordTransferDue:
    """Record that the child moves phase in September of ``transfer_year``.

    ``identified_on`` is the London day the council identified the move; without it,
    the day the command is handled.
    """

    case_id: str
    transfer: str
    transfer_year: int
    phase: str
    leaving_year: int
    identified_on: date | None = None


@dataclass(frozen=True, slots=True)
class ProposePost16Move:
    """Record a proposed move between post-16 institutions on ``move_on``."""

    case_id: str
    move_on: date
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DecideTransport:
    """Record whether the child or young person is eligible for travel assistance."""

    case_id: str
    eligible: bool
    decided_on: date
    reasons: str | None = None


@dataclass(frozen=True, slots=True)
class ReferTransport:
    """Refer the case to the SEN transport team to arrange travel."""

    case_id: str
    referred_on: date
    notes: str | None = None


Command = (
    RequestSetting
    | ConsultSetting
    | AnswerConsultation
    | PrepareSubmission
    | ListForPanel
    | DecidePanel
    | CommunicateDecision
    | RecordTransferDue
    | ProposePost16Move
    | DecideTransport
    | ReferTransport
)
