"""The rules of placement: from a case, a command and its context to the events.

Every rule is checked here, whichever entry point a command came through:

- a case must be known: from intake's request or the plans service (``context.facts``)
  or from placement's own events; and once its plan has ceased or been transferred to
  another council, nothing more can be arranged for it (no request, consultation,
  submission, listing, decision, transfer, move or transport decision);
- a setting is a URN (6 digits, 100000 to 999999) or a UKPRN (8 digits, 10000000 to
  19999999), as its kind says;
- dates of facts are not in the future (London) and not before the request was
  received, when that is known; an answer is no earlier than its consultation, a
  communication no earlier than the panel;
- a request to change setting needs an issued plan; the same request is not recorded
  twice;
- a setting is not consulted again while an earlier consultation of it is unanswered;
  an answer is given once, and a declined place needs its reasons;
- a panel submission compares 1 to 10 different settings, each consulted for this
  case, and is not replaced while the case waits on a panel;
- a case is listed for a panel only with a submission not yet decided, on one panel at
  a time, for a meeting no earlier than the submission; a panel decides a case once,
  not before it meets; naming a setting needs one of the submission's options, and
  declining needs reasons; the family is told of a decision once;
- a phase transfer is recorded once per transfer and year (identifying again records
  nothing);
- a post-16 move is proposed for a future day, at most the calendar's planning
  horizon (three years) ahead, for a young person with an issued plan in Year 12 or
  later (when the year is known);
- a referral to transport needs a current decision that the child is eligible, and is
  made once per decision.

Values that break a rule raise ``InvalidCommand`` naming each field (answered 422); a
command the case's state rules out raises ``ImpossibleTransition`` (409); something
named that does not exist raises a ``NotFound`` kind (404).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from placement.domain.commands import (
    AnswerConsultation,
    CommunicateDecision,
    ConsultSetting,
    Context,
    DecidePanel,
    DecideTransport,
    ListForPanel,
    OptionInput,
    PrepareSubmission,
    ProposePost16Move,
    RecordTransferDue,
    ReferTransport,
    RequestSetting,
)
from placement.domain.errors import (
    CaseNotFound,
    ConsultationNotFound,
    ImpossibleTransition,
    InvalidCommand,
    NotListed,
)
from placement.domain.model import FINAL_OUTCOMES, Case, Option, Setting
from placement.domain.phases import PHASE_TRANSFERS
from send_schemas import placement as contract
from sendkit.calendar import latest_planned_day, london_date
from sendkit.events import NewEvent

MAX_TEXT = 4000
MAX_OPTIONS = 10
MAX_PANEL_AHEAD_DAYS = 366
POST16_FIRST_YEAR = 12


class _Problems:
    """Collects every bad field of a command before refusing it once."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.found.append((field, message))

    def check(self, ok: bool, field: str, message: str) -> None:
        if not ok:
            self.add(field, message)

    def raise_if_any(self) -> None:
        if self.found:
            raise InvalidCommand(self.found)


def _event(
    model: contract.PlacementEvent,
    context: Context,
    private: dict[str, Any] | None = None,
) -> NewEvent:
    kept = {k: v for k, v in (private or {}).items() if v is not None}
    return NewEvent(
        type=model.EVENT_TYPE,
        data=model.model_dump(mode="json"),
        metadata=context.metadata,
        private=kept or None,
    )


def _text_ok(value: str | None, *, required: bool) -> bool:
    if value is None:
        return not required
    return bool(value.strip()) and len(value) <= MAX_TEXT


def _optional_text(problems: _Problems, field: str, value: str | None) -> None:
    problems.check(
        _text_ok(value, required=False),
        field,
        f"must be non-blank and at most {MAX_TEXT} characters when given",
    )


def _check_setting(
    problems: _Problems, setting_id: object, kind: str, prefix: str = ""
) -> None:
    if kind not in contract.SETTING_ID_KINDS:
        problems.add(f"{prefix}setting_id_kind", "must be urn or ukprn")
        return
    problem = (
        "must be a whole number"
        if not isinstance(setting_id, int) or isinstance(setting_id, bool)
        else contract.setting_id_problem(setting_id, kind)
    )
    if problem is not None:
        problems.add(f"{prefix}setting_id", problem)


def _check_day(
    problems: _Problems,
    field: str,
    day: date,
    context: Context,
    *,
    not_before: date | None = None,
    what: str = "the request was received",
) -> None:
    """A fact's date: not in the future, not before ``not_before`` (or the request)."""
    today = london_date(context.now)
    earliest = not_before
    if earliest is None and context.facts is not None:
        earliest = context.facts.received_on
    if day > today:
        problems.add(field, f"must not be in the future (today is {today} in London)")
    elif earliest is not None and day < earliest:
        problems.add(field, f"must not be before {earliest}, when {what}")


def _require_known(case: Case, context: Context) -> None:
    if not case.exists and context.facts is None:
        raise CaseNotFound(case.case_id)


def _require_plan_open(case: Case, context: Context, doing: str) -> None:
    facts = context.facts
    if facts is not None and facts.plan_ended:
        raise ImpossibleTransition(
            f"the plan of case {case.case_id} is {facts.plan_status} (on "
            f"{facts.plan_ended_on}): {doing} is not possible for an ended plan"
        )


# Requests and consultations -----------------------------------------------------------


def _request(case: Case, command: RequestSetting, context: Context) -> list[NewEvent]:
    _require_known(case, context)

    problems = _Problems()
    problems.check(
        command.requested_by in contract.REQUESTERS,
        "requested_by",
        "must be parent or young_person",
    )
    problems.check(
        command.request_kind in contract.REQUEST_KINDS,
        "request_kind",
        "must be named_setting or change_of_setting",
    )
    _check_setting(problems, command.setting_id, command.setting_id_kind)
    _check_day(problems, "requested_on", command.requested_on, context)
    _optional_text(problems, "views", command.views)
    problems.raise_if_any()

    _require_plan_open(case, context, "a request for a setting")
    if command.request_kind == "change_of_setting" and not (
        context.facts is not None and context.facts.plan_issued
    ):
        raise ImpossibleTransition(
            f"case {case.case_id} has no issued plan whose setting could change: "
            "record the request as named_setting while the plan is in draft"
        )
    setting = Setting(command.setting_id, command.setting_id_kind)
    for earlier in case.requests:
        if (earlier.setting, earlier.request_kind, earlier.requested_on) == (
            setting,
            command.request_kind,
            command.requested_on,
        ):
            raise ImpossibleTransition(
                f"this request for {setting.kind} {setting.setting_id} on "
                f"{command.requested_on} is already recorded as {earlier.request_id}"
            )

    requested = contract.SettingRequested(
        case_id=case.case_id,
        request_id=command.request_id,
        requested_by=command.requested_by,
        request_kind=command.request_kind,
        setting_id=command.setting_id,
        setting_id_kind=command.setting_id_kind,
        requested_on=command.requested_on,
    )
    return [_event(requested, context, {"views": command.views})]


def _consult(case: Case, command: ConsultSetting, context: Context) -> list[NewEvent]:
    _require_known(case, context)

    problems = _Problems()
    _check_setting(problems, command.setting_id, command.setting_id_kind)
    _check_day(problems, "sent_on", command.sent_on, context)
    problems.raise_if_any()

    _require_plan_open(case, context, "consulting a setting")
    setting = Setting(command.setting_id, command.setting_id_kind)
    for earlier in case.consultations:
        if earlier.setting == setting and earlier.is_open:
            raise ImpossibleTransition(
                f"{setting.kind} {setting.setting_id} was consulted on "
                f"{earlier.sent_on} ({earlier.consultation_id}) and has not answered: "
                "record its answer before consulting it again"
            )

    consulted = contract.SettingConsulted(
        case_id=case.case_id,
        consultation_id=command.consultation_id,
        setting_id=command.setting_id,
        setting_id_kind=command.setting_id_kind,
        sent_on=command.sent_on,
    )
    return [_event(consulted, context)]


def _answer(
    case: Case, command: AnswerConsultation, context: Context
) -> list[NewEvent]:
    _require_known(case, context)
    consultation = case.consultation(command.consultation_id)
    if consultation is None:
        raise ConsultationNotFound(case.case_id, command.consultation_id)
    if not consultation.is_open:
        raise ImpossibleTransition(
            f"consultation {command.consultation_id} was already answered "
            f"({consultation.outcome}, on {consultation.answered_on})"
        )

    problems = _Problems()
    problems.check(
        command.outcome in contract.CONSULTATION_OUTCOMES,
        "outcome",
        "must be place_offered or declined",
    )
    _check_day(
        problems,
        "answered_on",
        command.answered_on,
        context,
        not_before=consultation.sent_on,
        what="the consultation was sent",
    )
    problems.check(
        _text_ok(command.reasons, required=command.outcome == "declined"),
        "reasons",
        f"must say why the setting declined (1 to {MAX_TEXT} characters)"
        if command.outcome == "declined"
        else f"must be non-blank and at most {MAX_TEXT} characters when given",
    )
    problems.raise_if_any()

    answered = contract.ConsultationAnswered(
        case_id=case.case_id,
        consultation_id=command.consultation_id,
        answered_on=command.answered_on,
        outcome=command.outcome,
    )
    return [_event(answered, context, {"reasons": command.reasons})]


# The panel ---------------------------------------------------------------------------


def _option_problems(
    problems: _Problems, case: Case, options: Sequence[OptionInput]
) -> None:
    if not 1 <= len(options) <= MAX_OPTIONS:
        problems.add("options", f"must list 1 to {MAX_OPTIONS} settings to compare")
        return
    consulted = {consultation.setting for consultation in case.consultations}
    seen: set[Setting] = set()
    for index, option in enumerate(options):
        prefix = f"options.{index}."
        before = len(problems.found)
        _check_setting(problems, option.setting_id, option.setting_id_kind, prefix)
        for part in ("education_pence", "health_pence", "social_care_pence"):
            value = getattr(option, part)
            problems.check(
                isinstance(value, int)
                and not isinstance(value, bool)
                and 0 <= value <= contract.MAX_PENCE,
                prefix + part,
                f"must be a whole number of pence from 0 to {contract.MAX_PENCE}",
            )
        if len(problems.found) > before:
            continue
        setting = Setting(option.setting_id, option.setting_id_kind)
        if setting in seen:
            problems.add(prefix + "setting_id", "is listed twice: compare each once")
        elif setting not in consulted:
            problems.add(
                prefix + "setting_id",
                "was not consulted for this case: consult the setting before "
                "putting it to the panel",
            )
        seen.add(setting)


def _prepare(
    case: Case, command: PrepareSubmission, context: Context
) -> list[NewEvent]:
    _require_known(case, context)

    problems = _Problems()
    _check_day(problems, "prepared_on", command.prepared_on, context)
    _option_problems(problems, case, command.options)
    _optional_text(problems, "family_views", command.family_views)
    _optional_text(problems, "setting_views", command.setting_views)
    problems.raise_if_any()

    _require_plan_open(case, context, "a panel submission")
    waiting = case.open_listing
    if waiting is not None:
        raise ImpossibleTransition(
            f"case {case.case_id} is listed for panel {waiting.panel_id} on "
            f"{waiting.panel_on} with its current submission: record the panel's "
            "decision (or deferral) before preparing another"
        )

    options = [
        Option(
            Setting(option.setting_id, option.setting_id_kind),
            option.education_pence,
            option.health_pence,
            option.social_care_pence,
        )
        for option in command.options
    ]
    prepared = contract.PanelSubmissionPrepared(
        case_id=case.case_id,
        submission_id=command.submission_id,
        prepared_on=command.prepared_on,
        options=[contract.PanelOption(**option.as_data()) for option in options],
    )
    private = {
        "family_views": command.family_views,
        "setting_views": command.setting_views,
    }
    return [_event(prepared, context, private)]


def _list(case: Case, command: ListForPanel, context: Context) -> list[NewEvent]:
    _require_known(case, context)
    _require_plan_open(case, context, "listing the case for a panel")
    submission = case.submission
    if submission is None:
        raise ImpossibleTransition(
            f"case {case.case_id} has no panel submission: prepare one first"
        )
    waiting = case.open_listing
    if waiting is not None:
        raise ImpossibleTransition(
            f"case {case.case_id} is already listed for panel {waiting.panel_id} on "
            f"{waiting.panel_on}: record that panel's decision or deferral first"
        )
    for listing in case.listings:
        if (
            listing.submission_id == submission.submission_id
            and listing.outcome in FINAL_OUTCOMES
        ):
            raise ImpossibleTransition(
                f"panel {listing.panel_id} already decided case {case.case_id} "
                f"({listing.outcome}) on its current submission: prepare a new "
                "submission to put the case to a panel again"
            )

    today = london_date(context.now)
    problems = _Problems()
    if command.panel_on < submission.prepared_on:
        problems.add(
            "panel_on",
            f"must not be before {submission.prepared_on}, when the case's submission "
            "was prepared",
        )
    elif (command.panel_on - today).days > MAX_PANEL_AHEAD_DAYS:
        problems.add("panel_on", "must be within a year from today")
    problems.raise_if_any()

    listed = contract.CaseListedForPanel(
        case_id=case.case_id, panel_id=command.panel_id, panel_on=command.panel_on
    )
    return [_event(listed, context)]


def _decide_panel(case: Case, command: DecidePanel, context: Context) -> list[NewEvent]:
    _require_known(case, context)
    listing = case.listing(command.panel_id)
    if listing is None:
        raise NotListed(case.case_id, command.panel_id)
    if listing.decided:
        raise ImpossibleTransition(
            f"panel {command.panel_id} already decided case {case.case_id} "
            f"({listing.outcome}): a panel decides a case once"
        )
    today = london_date(context.now)
    if listing.panel_on > today:
        raise ImpossibleTransition(
            f"panel {command.panel_id} meets on {listing.panel_on}: record its "
            "decision on or after that day"
        )
    _require_plan_open(case, context, "a panel decision")

    problems = _Problems()
    named = command.outcome == "setting_named"
    problems.check(
        command.outcome in contract.PANEL_OUTCOMES,
        "outcome",
        "must be setting_named, declined or deferred",
    )
    has_setting = command.setting_id is not None or command.setting_id_kind is not None
    if named:
        if command.setting_id is None or command.setting_id_kind is None:
            problems.add("setting_id", "must name the setting the panel chose")
        else:
            before = len(problems.found)
            _check_setting(problems, command.setting_id, command.setting_id_kind)
            submission = case.submission
            setting = Setting(command.setting_id, command.setting_id_kind)
            if len(problems.found) == before and not (
                submission is not None and submission.offers(setting)
            ):
                problems.add(
                    "setting_id",
                    "was not one of the options put to the panel",
                )
    elif has_setting:
        problems.add("setting_id", "is only given when the panel names a setting")
    problems.check(
        _text_ok(command.reasons, required=command.outcome == "declined"),
        "reasons",
        f"must give the panel's reasons for declining (1 to {MAX_TEXT} characters)"
        if command.outcome == "declined"
        else f"must be non-blank and at most {MAX_TEXT} characters when given",
    )
    problems.raise_if_any()

    decided = contract.PanelDecided(
        case_id=case.case_id,
        panel_id=command.panel_id,
        outcome=command.outcome,
        decided_on=listing.panel_on,
        setting_id=command.setting_id if named else None,
        setting_id_kind=command.setting_id_kind if named else None,
    )
    return [_event(decided, context, {"reasons": command.reasons})]


def _communicate(
    case: Case, command: CommunicateDecision, context: Context
) -> list[NewEvent]:
    _require_known(case, context)
    listing = case.listing(command.panel_id)
    if listing is None:
        raise NotListed(case.case_id, command.panel_id)
    if not listing.decided:
        raise ImpossibleTransition(
            f"panel {command.panel_id} has not decided case {case.case_id} yet: "
            "record its decision first"
        )
    if listing.communicated_on is not None:
        raise ImpossibleTransition(
            f"the family was already told of panel {command.panel_id}'s decision on "
            f"{listing.communicated_on}"
        )

    problems = _Problems()
    _check_day(
        problems,
        "communicated_on",
        command.communicated_on,
        context,
        not_before=listing.panel_on,
        what="the panel met",
    )
    problems.raise_if_any()

    told = contract.PanelDecisionCommunicated(
        case_id=case.case_id,
        panel_id=command.panel_id,
        communicated_on=command.communicated_on,
    )
    return [_event(told, context)]


# Transfers and moves ------------------------------------------------------------------


def _record_transfer(
    case: Case, command: RecordTransferDue, context: Context
) -> list[NewEvent]:
    _require_known(case, context)
    if case.transfer(command.transfer, command.transfer_year) is not None:
        return []
    _require_plan_open(case, context, "a phase transfer")

    problems = _Problems()
    problems.check(
        PHASE_TRANSFERS.get(command.phase) == command.transfer,
        "phase",
        "must be a phase transfer of the kind given in transfer",
    )
    problems.raise_if_any()

    due = contract.PhaseTransferDue(
        case_id=case.case_id,
        transfer=command.transfer,
        transfer_year=command.transfer_year,
        phase=command.phase,
        leaving_year=command.leaving_year,
    )
    # The day it was identified is placement's own record, not part of the contract.
    identified_on = command.identified_on or london_date(context.now)
    return [_event(due, context, {"identified_on": identified_on.isoformat()})]


def _propose_move(
    case: Case, command: ProposePost16Move, context: Context
) -> list[NewEvent]:
    _require_known(case, context)

    today = london_date(context.now)
    problems = _Problems()
    problems.check(
        command.move_on > today,
        "move_on",
        f"must be a day after today ({today}): a move is proposed before it happens",
    )
    latest = latest_planned_day(today)
    problems.check(
        command.move_on <= latest,
        "move_on",
        f"must be at most three years ahead (on or before {latest}): a move further "
        "off cannot be planned yet",
    )
    _optional_text(problems, "note", command.note)
    problems.raise_if_any()

    _require_plan_open(case, context, "a post-16 move")
    facts = context.facts
    if facts is None or not facts.plan_issued:
        raise ImpossibleTransition(
            f"case {case.case_id} has no issued plan to name a new institution"
        )
    year = facts.year_on(today)
    if year is not None and year < POST16_FIRST_YEAR:
        raise ImpossibleTransition(
            f"the young person of case {case.case_id} is in year {year}: a move "
            "between post-16 institutions is for Year 12 or later; a move from "
            "school to post-16 is a phase transfer"
        )
    if command.move_on in case.post16_moves:
        raise ImpossibleTransition(
            f"a move on {command.move_on} is already proposed for case {case.case_id}"
        )

    proposed = contract.Post16MoveProposed(
        case_id=case.case_id, move_on=command.move_on
    )
    return [_event(proposed, context, {"note": command.note})]


# Transport ----------------------------------------------------------------------------


def _decide_transport(
    case: Case, command: DecideTransport, context: Context
) -> list[NewEvent]:
    _require_known(case, context)

    problems = _Problems()
    problems.check(
        isinstance(command.eligible, bool), "eligible", "must be true or false"
    )
    _check_day(problems, "decided_on", command.decided_on, context)
    _optional_text(problems, "reasons", command.reasons)
    problems.raise_if_any()

    _require_plan_open(case, context, "a transport decision")
    current = case.transport
    if current is not None and (current.eligible, current.decided_on) == (
        command.eligible,
        command.decided_on,
    ):
        return []
    if current is not None and command.decided_on < current.decided_on:
        raise InvalidCommand(
            [
                (
                    "decided_on",
                    f"must not be before {current.decided_on}, the date of the "
                    "decision it replaces",
                )
            ]
        )

    decided = contract.TransportEligibilityDecided(
        case_id=case.case_id,
        eligible=command.eligible,
        decided_on=command.decided_on,
    )
    return [_event(decided, context, {"reasons": command.reasons})]


def _refer_transport(
    case: Case, command: ReferTransport, context: Context
) -> list[NewEvent]:
    _require_known(case, context)
    decision = case.transport
    if decision is None or not decision.eligible:
        raise ImpossibleTransition(
            f"case {case.case_id} has no decision that the child is eligible for "
            "travel assistance: record one before referring to the transport team"
        )
    if decision.referred_on is not None:
        raise ImpossibleTransition(
            f"case {case.case_id} was referred to the transport team on "
            f"{decision.referred_on} for its current decision"
        )
    _require_plan_open(case, context, "a transport referral")

    problems = _Problems()
    _check_day(
        problems,
        "referred_on",
        command.referred_on,
        context,
        not_before=decision.decided_on,
        what="eligibility was decided",
    )
    _optional_text(problems, "notes", command.notes)
    problems.raise_if_any()

    setting = case.named_setting
    if setting is None and context.facts is not None:
        urn = context.facts.setting_urn
        setting = None if urn is None else Setting(urn, "urn")
    referred = contract.TransportReferred(
        case_id=case.case_id,
        referred_on=command.referred_on,
        setting_id=None if setting is None else setting.setting_id,
        setting_id_kind=None if setting is None else setting.kind,
    )
    return [_event(referred, context, {"notes": command.notes})]


_HANDLERS: dict[type[Any], Callable[[Case, Any, Context], list[NewEvent]]] = {
    RequestSetting: _request,
    ConsultSetting: _consult,
    AnswerConsultation: _answer,
    PrepareSubmission: _prepare,
    ListForPanel: _list,
    DecidePanel: _decide_panel,
    CommunicateDecision: _communicate,
    RecordTransferDue: _record_transfer,
    ProposePost16Move: _propose_move,
    DecideTransport: _decide_transport,
    ReferTransport: _refer_transport,
}


def decide(case: Case, command: Any, context: Context) -> list[NewEvent]:
    """The events ``command`` causes on ``case``, or a ``PlacementError`` saying why.

    An empty list means the command asks for what is already so (a transfer already
    identified, the same transport decision again), and nothing needs recording.
    """
    return _HANDLERS[type(command)](case, command, context)
