"""The events the placement service publishes on ``send.placement.events``.

Each model is the public ``data`` of one event type; its CloudEvents ``type`` is the
model's ``EVENT_TYPE`` (``send.placement.<Name>.v1``) and its ``subject`` the case id,
which the payload repeats as ``case_id`` and which is the Kafka key. A panel considers
many cases, but its events are still keyed by case: scheduling a panel publishes one
``CaseListedForPanel`` per case, each carrying the panel's id and date.

Only what a subscriber needs is published: setting identifiers, dates, outcome codes,
the transfer a child is due to make, the costs of the options put to the panel, and
transport eligibility. The family's and the settings' views, the reasons a setting
declined or a panel decided as it did, and every note stay in placement's store and are
served by its API, never published.

A school or college is named by a number and its kind: ``urn`` is the unique reference
number of Get Information about Schools (6 digits, 100000 to 999999), ``ukprn`` the UK
Register of Learning Providers number a college or training provider has (8 digits,
10000000 to 19999999). Money is in pence, as integers. Dates are local dates in
Europe/London.

The models forbid unknown fields, so placement cannot publish more than the contract
allows. Subscribers should read with ``parse_placement_event``, which ignores fields a
newer version of the contract may add.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from send_schemas.intake import CaseId, CurriculumYear

OWNER = "placement"
TOPIC = "send.placement.events"

URN_MIN = 100000
URN_MAX = 999999
UKPRN_MIN = 10000000
UKPRN_MAX = 19999999
MAX_PENCE = 500_000_000
"""Five million pounds: more than any placement costs a year, so a typo is caught."""

SettingIdKind = Literal["urn", "ukprn"]
SETTING_ID_KINDS: tuple[str, ...] = ("urn", "ukprn")
SETTING_ID_RANGES: dict[str, tuple[int, int]] = {
    "urn": (URN_MIN, URN_MAX),
    "ukprn": (UKPRN_MIN, UKPRN_MAX),
}

Requester = Literal["parent", "young_person"]
REQUESTERS: tuple[str, ...] = ("parent", "young_person")
RequestKind = Literal["named_setting", "change_of_setting"]
REQUEST_KINDS: tuple[str, ...] = ("named_setting", "change_of_setting")
ConsultationOutcome = Literal["place_offered", "declined"]
CONSULTATION_OUTCOMES: tuple[str, ...] = ("place_offered", "declined")
PanelOutcome = Literal["setting_named", "declined", "deferred"]
PANEL_OUTCOMES: tuple[str, ...] = ("setting_named", "declined", "deferred")
Transfer = Literal["school", "post16"]
TRANSFERS: tuple[str, ...] = ("school", "post16")
Phase = Literal[
    "into_reception",
    "infant_to_junior",
    "first_to_middle",
    "primary_to_middle",
    "middle_to_secondary",
    "primary_to_secondary",
    "secondary_to_post16",
]
PHASES: tuple[str, ...] = (
    "into_reception",
    "infant_to_junior",
    "first_to_middle",
    "primary_to_middle",
    "middle_to_secondary",
    "primary_to_secondary",
    "secondary_to_post16",
)
"""The moves between phases of education, named by what the child leaves and joins."""

PlacementId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="An id the placement service gave (a UUID).",
    ),
]
SettingId = Annotated[
    int,
    Field(
        ge=URN_MIN,
        le=UKPRN_MAX,
        description="A URN (100000-999999) or UKPRN (10000000-19999999), as "
        "setting_id_kind says.",
    ),
]
TransferYear = Annotated[
    int,
    Field(ge=2000, le=2100, description="The calendar year of the September move."),
]
Pence = Annotated[int, Field(ge=0, le=MAX_PENCE, description="An amount in pence.")]


def setting_id_problem(setting_id: int, kind: str) -> str | None:
    """What is wrong with ``setting_id`` as a number of ``kind``, or None."""
    low, high = SETTING_ID_RANGES.get(kind, (0, -1))
    if isinstance(setting_id, bool) or not low <= setting_id <= high:
        digits = 6 if kind == "urn" else 8
        return f"must be a {kind.upper()}: {digits} digits from {low} to {high}"
    return None


def _check_optional_setting(setting_id: int | None, kind: str | None) -> None:
    if (setting_id is None) != (kind is None):
        raise ValueError("setting_id and setting_id_kind go together")
    if setting_id is not None and kind is not None:
        problem = setting_id_problem(setting_id, kind)
        if problem is not None:
            raise ValueError(f"setting_id {problem}")


class PlacementEvent(BaseModel):
    """The public data of one placement event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    EVENT_TYPE: ClassVar[str]

    case_id: CaseId


class SettingRequested(PlacementEvent):
    """The parent or young person asked for a particular school or college to be named
    (``named_setting``) or for a change of the setting the plan names
    (``change_of_setting``), on ``requested_on``."""

    EVENT_TYPE: ClassVar[str] = "send.placement.SettingRequested.v1"

    request_id: PlacementId
    requested_by: Requester
    request_kind: RequestKind
    setting_id: SettingId
    setting_id_kind: SettingIdKind
    requested_on: date

    @model_validator(mode="after")
    def _setting_fits_kind(self) -> SettingRequested:
        _check_optional_setting(self.setting_id, self.setting_id_kind)
        return self


class SettingConsulted(PlacementEvent):
    """The council consulted a school or college about naming it, sending the
    consultation on ``sent_on``; the setting's 15 days to answer count from then."""

    EVENT_TYPE: ClassVar[str] = "send.placement.SettingConsulted.v1"

    consultation_id: PlacementId
    setting_id: SettingId
    setting_id_kind: SettingIdKind
    sent_on: date

    @model_validator(mode="after")
    def _setting_fits_kind(self) -> SettingConsulted:
        _check_optional_setting(self.setting_id, self.setting_id_kind)
        return self


class ConsultationAnswered(PlacementEvent):
    """The setting consulted as ``consultation_id`` answered on ``answered_on``: it
    offered a place, or declined."""

    EVENT_TYPE: ClassVar[str] = "send.placement.ConsultationAnswered.v1"

    consultation_id: PlacementId
    answered_on: date
    outcome: ConsultationOutcome


class PanelOption(BaseModel):
    """One setting put to the panel, with its yearly cost split by who pays.

    Every option is costed the same way, so the panel compares like with like:
    ``annual_cost_pence`` is the sum of the education, health and social care parts
    (placement computes it, so it always is).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    setting_id: SettingId
    setting_id_kind: SettingIdKind
    education_pence: Pence
    health_pence: Pence
    social_care_pence: Pence
    annual_cost_pence: Pence

    @model_validator(mode="after")
    def _setting_fits_kind(self) -> PanelOption:
        _check_optional_setting(self.setting_id, self.setting_id_kind)
        return self


class PanelSubmissionPrepared(PlacementEvent):
    """A submission to the SEND placement panel was prepared on ``prepared_on``, with
    the options it compares. A later submission for the case replaces it."""

    EVENT_TYPE: ClassVar[str] = "send.placement.PanelSubmissionPrepared.v1"

    submission_id: PlacementId
    prepared_on: date
    options: list[PanelOption] = Field(min_length=1, max_length=10)


class CaseListedForPanel(PlacementEvent):
    """The case is on the agenda of the panel ``panel_id``, which meets on
    ``panel_on``; one such event is published for each case on the panel."""

    EVENT_TYPE: ClassVar[str] = "send.placement.CaseListedForPanel.v1"

    panel_id: PlacementId
    panel_on: date


class PanelDecided(PlacementEvent):
    """The panel ``panel_id`` decided the case on ``decided_on`` (its meeting day):
    it named a setting, declined the request, or deferred the decision.

    ``setting_id`` and ``setting_id_kind`` are set when the outcome is
    ``setting_named`` (placement publishes them then and only then).
    """

    EVENT_TYPE: ClassVar[str] = "send.placement.PanelDecided.v1"

    panel_id: PlacementId
    outcome: PanelOutcome
    decided_on: date
    setting_id: SettingId | None = None
    setting_id_kind: SettingIdKind | None = None

    @model_validator(mode="after")
    def _setting_whole(self) -> PanelDecided:
        _check_optional_setting(self.setting_id, self.setting_id_kind)
        return self


class PanelDecisionCommunicated(PlacementEvent):
    """The family was told of the panel's decision on ``communicated_on``."""

    EVENT_TYPE: ClassVar[str] = "send.placement.PanelDecisionCommunicated.v1"

    panel_id: PlacementId
    communicated_on: date


class PhaseTransferDue(PlacementEvent):
    """A child with an EHC plan moves phase in September of ``transfer_year``.

    ``transfer`` is ``school`` for a move between school phases (the plan must name
    the next school before 15 February of that year) or ``post16`` for a move from
    secondary school to a post-16 institution (before 31 March). ``phase`` names the
    move and ``leaving_year`` is the national curriculum year the child leaves.
    """

    EVENT_TYPE: ClassVar[str] = "send.placement.PhaseTransferDue.v1"

    transfer: Transfer
    transfer_year: TransferYear
    phase: Phase
    leaving_year: CurriculumYear


class Post16MoveProposed(PlacementEvent):
    """A move between post-16 institutions at another time than a phase transfer is
    proposed for ``move_on``; the plan must name the new one five months before."""

    EVENT_TYPE: ClassVar[str] = "send.placement.Post16MoveProposed.v1"

    move_on: date


class TransportEligibilityDecided(PlacementEvent):
    """The council decided on ``decided_on`` whether the child or young person is
    eligible for travel assistance to their setting. A later decision replaces it."""

    EVENT_TYPE: ClassVar[str] = "send.placement.TransportEligibilityDecided.v1"

    eligible: bool
    decided_on: date


class TransportReferred(PlacementEvent):
    """The case was referred to the SEN transport team on ``referred_on``, to arrange
    travel to the setting named (when one is). The team reads the pick-up details
    from placement's API."""

    EVENT_TYPE: ClassVar[str] = "send.placement.TransportReferred.v1"

    referred_on: date
    setting_id: SettingId | None = None
    setting_id_kind: SettingIdKind | None = None

    @model_validator(mode="after")
    def _setting_whole(self) -> TransportReferred:
        _check_optional_setting(self.setting_id, self.setting_id_kind)
        return self


EVENT_MODELS: tuple[type[PlacementEvent], ...] = (
    SettingRequested,
    SettingConsulted,
    ConsultationAnswered,
    PanelSubmissionPrepared,
    CaseListedForPanel,
    PanelDecided,
    PanelDecisionCommunicated,
    PhaseTransferDue,
    Post16MoveProposed,
    TransportEligibilityDecided,
    TransportReferred,
)
EVENTS_BY_TYPE: dict[str, type[PlacementEvent]] = {
    m.EVENT_TYPE: m for m in EVENT_MODELS
}


class UnknownPlacementEvent(KeyError):
    """A type string that no placement model describes."""


def parse_placement_event(event_type: str, data: dict[str, Any]) -> PlacementEvent:
    """The model of one published placement event, ignoring fields it does not know.

    Raises ``UnknownPlacementEvent`` for a type it has no model of, and pydantic's
    ``ValidationError`` for data that breaks the contract.
    """
    model = EVENTS_BY_TYPE.get(event_type)
    if model is None:
        raise UnknownPlacementEvent(
            f"{event_type!r} is not a placement event type: expected one of "
            + ", ".join(sorted(EVENTS_BY_TYPE))
        )
    known = {key: value for key, value in data.items() if key in model.model_fields}
    if event_type == PanelSubmissionPrepared.EVENT_TYPE:
        option_fields = PanelOption.model_fields
        known["options"] = [
            {k: v for k, v in option.items() if k in option_fields}
            for option in known.get("options", [])
            if isinstance(option, dict)
        ]
    return model.model_validate(known)
