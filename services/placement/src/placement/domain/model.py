"""The placement side of one case, folded from placement's own events.

A case collects the settings the family asked for, the consultations of schools and
colleges (each open until the setting answers), the submission to the SEND placement
panel (a later one replaces it), its listings on panels with each panel's decision and
when the family was told, the phase transfers identified for it, proposed post-16
moves, and the current transport decision with its referral. The private parts of the
events (views, reasons, notes) are kept beside the public facts, for the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from send_schemas import placement as contract
from sendkit.calendar import london_date
from sendkit.events import RecordedEvent


@dataclass(frozen=True, slots=True)
class Setting:
    """A school or college: its URN or UKPRN."""

    setting_id: int
    kind: str

    def as_data(self) -> dict[str, Any]:
        return {"setting_id": self.setting_id, "setting_id_kind": self.kind}


@dataclass(frozen=True, slots=True)
class SettingRequest:
    """A parent's or young person's request for a setting."""

    request_id: str
    requested_by: str
    request_kind: str
    setting: Setting
    requested_on: date
    views: str | None = None


@dataclass(frozen=True, slots=True)
class Consultation:
    """A setting consulted about naming it; open until it answers."""

    consultation_id: str
    setting: Setting
    sent_on: date
    answered_on: date | None = None
    outcome: str | None = None
    reasons: str | None = None

    @property
    def is_open(self) -> bool:
        return self.answered_on is None


@dataclass(frozen=True, slots=True)
class Option:
    """One setting put to the panel, with its yearly costs in pence."""

    setting: Setting
    education_pence: int
    health_pence: int
    social_care_pence: int

    @property
    def annual_cost_pence(self) -> int:
        return self.education_pence + self.health_pence + self.social_care_pence

    def as_data(self) -> dict[str, Any]:
        return {
            **self.setting.as_data(),
            "education_pence": self.education_pence,
            "health_pence": self.health_pence,
            "social_care_pence": self.social_care_pence,
            "annual_cost_pence": self.annual_cost_pence,
        }


@dataclass(frozen=True, slots=True)
class Submission:
    """The case as put to the panel: the options compared and everyone's views."""

    submission_id: str
    prepared_on: date
    options: tuple[Option, ...]
    family_views: str | None = None
    setting_views: str | None = None

    def offers(self, setting: Setting) -> bool:
        return any(option.setting == setting for option in self.options)


FINAL_OUTCOMES = frozenset({"setting_named", "declined"})


@dataclass(frozen=True, slots=True)
class Listing:
    """The case on one panel's agenda, and what the panel did with it."""

    panel_id: str
    panel_on: date
    submission_id: str
    outcome: str | None = None
    setting: Setting | None = None
    reasons: str | None = None
    communicated_on: date | None = None

    @property
    def decided(self) -> bool:
        return self.outcome is not None


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A phase transfer identified for the case."""

    transfer: str
    transfer_year: int
    phase: str
    leaving_year: int
    identified_on: date


@dataclass(frozen=True, slots=True)
class TransportDecision:
    """Whether the child is eligible for travel assistance, and any referral."""

    eligible: bool
    decided_on: date
    reasons: str | None = None
    referred_on: date | None = None
    referral_notes: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """Everything placement itself recorded about one case."""

    case_id: str
    version: int = 0
    requests: tuple[SettingRequest, ...] = ()
    consultations: tuple[Consultation, ...] = ()
    submission: Submission | None = None
    listings: tuple[Listing, ...] = ()
    transfers: tuple[TransferRecord, ...] = ()
    post16_moves: tuple[date, ...] = ()
    transport: TransportDecision | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0

    def consultation(self, consultation_id: str) -> Consultation | None:
        for consultation in self.consultations:
            if consultation.consultation_id == consultation_id:
                return consultation
        return None

    def listing(self, panel_id: str) -> Listing | None:
        for listing in self.listings:
            if listing.panel_id == panel_id:
                return listing
        return None

    @property
    def open_listing(self) -> Listing | None:
        """The panel the case waits on, listed and not yet decided."""
        for listing in self.listings:
            if not listing.decided:
                return listing
        return None

    def transfer(self, transfer: str, transfer_year: int) -> TransferRecord | None:
        for record in self.transfers:
            if (record.transfer, record.transfer_year) == (transfer, transfer_year):
                return record
        return None

    @property
    def named_setting(self) -> Setting | None:
        """The setting the latest panel decision named, if it named one."""
        for listing in reversed(self.listings):
            if listing.outcome == "setting_named":
                return listing.setting
        return None


def _setting(data: dict[str, Any]) -> Setting:
    return Setting(int(data["setting_id"]), str(data["setting_id_kind"]))


def _date_or(value: object, default: date) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else default


def _replace_in(items: tuple[Any, ...], old: Any, new: Any) -> tuple[Any, ...]:
    return tuple(new if item is old else item for item in items)


def evolve(case: Case, event: RecordedEvent) -> Case:
    """The case after ``event``; an event of another type only moves the version."""
    case = replace(case, version=event.version)
    data, private = event.data, event.private or {}
    kind = event.type

    if kind == contract.SettingRequested.EVENT_TYPE:
        request = SettingRequest(
            request_id=data["request_id"],
            requested_by=data["requested_by"],
            request_kind=data["request_kind"],
            setting=_setting(data),
            requested_on=date.fromisoformat(data["requested_on"]),
            views=private.get("views"),
        )
        return replace(case, requests=(*case.requests, request))
    if kind == contract.SettingConsulted.EVENT_TYPE:
        consultation = Consultation(
            consultation_id=data["consultation_id"],
            setting=_setting(data),
            sent_on=date.fromisoformat(data["sent_on"]),
        )
        return replace(case, consultations=(*case.consultations, consultation))
    if kind == contract.ConsultationAnswered.EVENT_TYPE:
        found = case.consultation(data["consultation_id"])
        if found is None:
            return case
        answered = replace(
            found,
            answered_on=date.fromisoformat(data["answered_on"]),
            outcome=data["outcome"],
            reasons=private.get("reasons"),
        )
        return replace(
            case, consultations=_replace_in(case.consultations, found, answered)
        )
    if kind == contract.PanelSubmissionPrepared.EVENT_TYPE:
        submission = Submission(
            submission_id=data["submission_id"],
            prepared_on=date.fromisoformat(data["prepared_on"]),
            options=tuple(
                Option(
                    setting=_setting(option),
                    education_pence=option["education_pence"],
                    health_pence=option["health_pence"],
                    social_care_pence=option["social_care_pence"],
                )
                for option in data["options"]
            ),
            family_views=private.get("family_views"),
            setting_views=private.get("setting_views"),
        )
        return replace(case, submission=submission)
    if kind == contract.CaseListedForPanel.EVENT_TYPE:
        listing = Listing(
            panel_id=data["panel_id"],
            panel_on=date.fromisoformat(data["panel_on"]),
            submission_id=case.submission.submission_id if case.submission else "",
        )
        return replace(case, listings=(*case.listings, listing))
    if kind == contract.PanelDecided.EVENT_TYPE:
        listed = case.listing(data["panel_id"])
        if listed is None:
            return case
        setting_id = data.get("setting_id")
        decided = replace(
            listed,
            outcome=data["outcome"],
            setting=None if setting_id is None else _setting(data),
            reasons=private.get("reasons"),
        )
        return replace(case, listings=_replace_in(case.listings, listed, decided))
    if kind == contract.PanelDecisionCommunicated.EVENT_TYPE:
        listed = case.listing(data["panel_id"])
        if listed is None:
            return case
        told = replace(
            listed, communicated_on=date.fromisoformat(data["communicated_on"])
        )
        return replace(case, listings=_replace_in(case.listings, listed, told))
    if kind == contract.PhaseTransferDue.EVENT_TYPE:
        record = TransferRecord(
            transfer=data["transfer"],
            transfer_year=data["transfer_year"],
            phase=data["phase"],
            leaving_year=data["leaving_year"],
            identified_on=_date_or(
                private.get("identified_on"), london_date(event.time)
            ),
        )
        return replace(case, transfers=(*case.transfers, record))
    if kind == contract.Post16MoveProposed.EVENT_TYPE:
        move_on = date.fromisoformat(data["move_on"])
        return replace(case, post16_moves=(*case.post16_moves, move_on))
    if kind == contract.TransportEligibilityDecided.EVENT_TYPE:
        decision = TransportDecision(
            eligible=data["eligible"],
            decided_on=date.fromisoformat(data["decided_on"]),
            reasons=private.get("reasons"),
        )
        return replace(case, transport=decision)
    if kind == contract.TransportReferred.EVENT_TYPE and case.transport is not None:
        referred = replace(
            case.transport,
            referred_on=date.fromisoformat(data["referred_on"]),
            referral_notes=private.get("notes"),
        )
        return replace(case, transport=referred)
    return case


def fold(case_id: str, events: Iterable[RecordedEvent]) -> Case:
    """The case built from its whole stream, oldest event first."""
    case = Case(case_id=case_id)
    for event in events:
        case = evolve(case, event)
    return case
