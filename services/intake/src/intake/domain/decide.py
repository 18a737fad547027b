"""The rules of intake: from a case and a command to the events it causes.

Every rule is checked here, whichever entry point a command came through:

- a request names a requester type, a channel, a school URN of 6 digits (100000 to
  999999), a national curriculum year from -2 to 14 (see ``send_schemas.intake``), a
  pseudonymous child reference, and a date of birth that makes the child under 25 on the
  day the request was received (the Children and Families Act covers young people up to
  25); the received timestamp has a time zone, is not in the future, and falls on or
  after 1 September 2014 in London, when EHC needs assessments began;
- a decision is taken once, on an open case awaiting it, dated (the day the family was
  told) no earlier than the London date of the request and no later than today;
- an exception names a clock that still runs for the case and a reason a to d, with
  evidence; the same reason is not recorded twice on one clock;
- a withdrawal applies to an open case and is dated between the request and today;
- a presentation to the Local Area Surgery is recorded once per case, dated no earlier
  than the London date of the request, no later than today, and no later than the
  decision when there is one (see below);
- a correction replaces ``received_at``, a decision's ``notified_on`` or the surgery's
  ``presented_on`` with a different valid value (a new ``received_at`` is held to the
  request's rules for its timestamp), keeping the request no later than the
  presentation and the presentation no later than the decision, and says why.

The surgery presentation stops the council's local target of presenting each request
within 6 weeks; the rules a coordinator expects of it:

- It may be recorded late, and after the decision, so the record is complete; it may
  not be dated after the decision, because the surgery considers a request before the
  council decides on it, and the decision has already ended the target by then. A
  late record dated in time makes the target met wherever it stands among the
  recorded events: the deadlines engine ends a clock on its earliest-dated stop, so a
  target the decision ended late turns met when a presentation dated in time arrives.
- A refused case takes it (the refusal closes the case, but the presentation before it
  still happened and still counts); a withdrawn case does not, since withdrawal
  cancelled the target and no report counts a cancelled one, the same reason a
  withdrawn case takes no exception.
- A second presentation is refused (409): the target counts the first, and a surgery
  that looks at a request again does not restart it. A wrong date is corrected with a
  correction of ``presented_on`` (published as ``SurgeryPresentationCorrected``), so the
  deadlines service recomputes the clock from the right date, as for any correction.

Values that break a rule raise ``InvalidCommand`` naming each field (answered 422); a
command the case's state rules out raises ``ImpossibleTransition`` (409).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter

from intake.domain.commands import (
    CORRECTABLE,
    AssignCoordinator,
    Command,
    Context,
    CorrectRequest,
    ReceiveRequest,
    RecordDecision,
    RecordSurgeryPresentation,
    RecordTimeLimitException,
    WithdrawRequest,
)
from intake.domain.errors import (
    CaseNotFound,
    CoordinatorChanged,
    ImpossibleTransition,
    InvalidCommand,
)
from intake.domain.model import Case, Status
from send_schemas import intake as contract
from sendkit import calendar
from sendkit.calendar import london_date
from sendkit.events import NewEvent

MAX_AGE_YEARS = 25
MAX_TEXT = 4000

_PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_OUTCOMES = ("agreed", "refused")
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)

# A clock that a refusal cancels cannot take an exception afterwards; the no-plan
# notice clock only runs once an assessment is agreed.
_CLOCK_NEEDS = {
    "decision": frozenset(
        {Status.AWAITING_DECISION, Status.ASSESSMENT_AGREED, Status.ASSESSMENT_REFUSED}
    ),
    "no_plan_notice": frozenset({Status.ASSESSMENT_AGREED}),
    "final_plan": frozenset({Status.AWAITING_DECISION, Status.ASSESSMENT_AGREED}),
}


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


EHC_ASSESSMENTS_BEGAN = calendar.SUPPORTED_FROM
"""No request for an EHC needs assessment can predate Part 3 of the 2014 Act, the
first day of the calendar's supported range."""


def _event(
    model: contract.IntakeEvent, context: Context, private: dict[str, Any] | None = None
) -> NewEvent:
    kept = {k: v for k, v in (private or {}).items() if v is not None}
    return NewEvent(
        type=model.EVENT_TYPE,
        data=model.model_dump(mode="json"),
        metadata=context.metadata,
        private=kept or None,
    )


def _is_aware(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() is not None


def _received_at_problem(moment: datetime, context: Context) -> str | None:
    """What is wrong with a request's received timestamp, or None.

    The bounds are compared as instants before any London date is taken, so a
    timestamp of year 1 or 9999 is refused here rather than failing the conversion;
    one that passes has a London date from 1 September 2014 to today.
    """
    if not _is_aware(moment):
        return "must include a time zone offset, such as 'Z'"
    if moment > context.now:
        return "must not be in the future"
    if moment < calendar.london_day_starts_at(EHC_ASSESSMENTS_BEGAN):
        return (
            f"must not be before {EHC_ASSESSMENTS_BEGAN}, when requests for EHC needs "
            "assessments began (Children and Families Act 2014)"
        )
    return None


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _text_ok(value: str | None, *, required: bool) -> bool:
    if value is None:
        return not required
    return bool(value.strip()) and len(value) <= MAX_TEXT


def _require_case(case: Case) -> None:
    if not case.exists:
        raise CaseNotFound(case.case_id)


def _receive(case: Case, command: ReceiveRequest, context: Context) -> list[NewEvent]:
    if case.exists:
        raise ImpossibleTransition(
            f"case {case.case_id} already holds a request: a case takes one request; "
            "receive a new request without a case id to open a new case"
        )

    problems = _Problems()
    problems.check(
        command.requester_type in contract.REQUESTER_TYPES,
        "requester_type",
        "must be one of " + ", ".join(contract.REQUESTER_TYPES),
    )
    problems.check(
        command.channel in contract.CHANNELS,
        "channel",
        "must be one of " + ", ".join(contract.CHANNELS),
    )
    problems.check(
        not isinstance(command.school_urn, bool)
        and contract.URN_MIN <= command.school_urn <= contract.URN_MAX,
        "school_urn",
        f"must be a school URN: 6 digits from {contract.URN_MIN} to {contract.URN_MAX}",
    )
    problems.check(
        not isinstance(command.curriculum_year, bool)
        and contract.CURRICULUM_YEAR_MIN
        <= command.curriculum_year
        <= contract.CURRICULUM_YEAR_MAX,
        "curriculum_year",
        f"must be from {contract.CURRICULUM_YEAR_MIN} to "
        f"{contract.CURRICULUM_YEAR_MAX} (-2 N1, -1 N2, 0 Reception, 14 post-19)",
    )
    problems.check(
        bool(_PSEUDONYM.match(command.child_reference)),
        "child_reference",
        "must be a pseudonymous reference of 1 to 64 letters, digits, '.', '_' or '-'",
    )
    for name, value in (
        ("child_name", command.child_name),
        ("requester_name", command.requester_name),
    ):
        problems.check(
            _text_ok(value, required=False),
            name,
            f"must be non-blank and at most {MAX_TEXT} characters when given",
        )

    received_on: date | None = None
    received_problem = _received_at_problem(command.received_at, context)
    if received_problem is not None:
        problems.add("received_at", received_problem)
    else:
        received_on = london_date(command.received_at)

    if received_on is not None:
        if command.date_of_birth > received_on:
            problems.add("date_of_birth", "must not be after the day of the request")
        elif _age_on(command.date_of_birth, received_on) >= MAX_AGE_YEARS:
            problems.add(
                "date_of_birth",
                f"makes the young person {MAX_AGE_YEARS} or older on the day of the "
                "request, past the age an EHC plan covers",
            )
    problems.raise_if_any()

    received = contract.RequestReceived(
        case_id=case.case_id,
        requester_type=command.requester_type,
        channel=command.channel,
        received_at=command.received_at,
        school_urn=command.school_urn,
        curriculum_year=command.curriculum_year,
    )
    private = {
        "child_reference": command.child_reference,
        "date_of_birth": command.date_of_birth.isoformat(),
        "child_name": command.child_name,
        "requester_name": command.requester_name,
    }
    return [_event(received, context, private)]


def _assign(case: Case, command: AssignCoordinator, context: Context) -> list[NewEvent]:
    _require_case(case)
    if not _PSEUDONYM.match(command.coordinator_id):
        raise InvalidCommand(
            [
                (
                    "coordinator_id",
                    "must be a pseudonymous staff id of 1 to 64 characters",
                )
            ]
        )
    if command.only_from is not None and case.coordinator_id != command.only_from:
        raise CoordinatorChanged(
            f"case {case.case_id} is now with coordinator {case.coordinator_id}, not "
            f"{command.only_from}: it was left where it is"
        )
    if not case.is_open:
        raise ImpossibleTransition(
            f"case {case.case_id} is {case.status}: a closed case takes no coordinator"
        )
    if case.coordinator_id == command.coordinator_id:
        return []

    assigned = contract.CoordinatorAssigned(
        case_id=case.case_id,
        coordinator_id=command.coordinator_id,
        previous_coordinator_id=case.coordinator_id,
    )
    return [_event(assigned, context)]


def _decision_date_problems(
    case: Case, notified_on: date, context: Context, field: str
) -> list[tuple[str, str]]:
    assert case.received_at is not None  # a case that exists has a request
    received_on = london_date(case.received_at)
    today = london_date(context.now)
    if notified_on < received_on:
        return [(field, f"must not be before the request, received on {received_on}")]
    if notified_on > today:
        return [(field, f"must not be in the future (today is {today} in London)")]
    return []


def _decide_assessment(
    case: Case, command: RecordDecision, context: Context
) -> list[NewEvent]:
    _require_case(case)
    if case.status is Status.WITHDRAWN:
        raise ImpossibleTransition(
            f"case {case.case_id} was withdrawn on {case.withdrawn_on}: a withdrawn "
            "request takes no decision"
        )
    if case.decided:
        raise ImpossibleTransition(
            f"case {case.case_id} was already decided ({case.status}, notified on "
            f"{case.notified_on}): record a correction to change the date"
        )

    problems = _Problems()
    problems.check(command.outcome in _OUTCOMES, "outcome", "must be agreed or refused")
    problems.check(
        _text_ok(command.note, required=False),
        "note",
        f"must be non-blank and at most {MAX_TEXT} characters when given",
    )
    date_problems = _decision_date_problems(
        case, command.notified_on, context, "notified_on"
    )
    presented_on = case.presented_on
    if not date_problems and presented_on and command.notified_on < presented_on:
        date_problems.append(
            (
                "notified_on",
                f"must not be before the surgery presentation on {presented_on}",
            )
        )
    problems.found += date_problems
    problems.raise_if_any()

    model: contract.IntakeEvent
    if command.outcome == "agreed":
        model = contract.AssessmentAgreed(
            case_id=case.case_id, notified_on=command.notified_on
        )
    else:
        model = contract.AssessmentRefused(
            case_id=case.case_id, notified_on=command.notified_on
        )
    return [_event(model, context, {"note": command.note})]


def _record_exception(
    case: Case, command: RecordTimeLimitException, context: Context
) -> list[NewEvent]:
    _require_case(case)

    problems = _Problems()
    problems.check(
        command.clock in contract.CLOCKS,
        "clock",
        "must be one of " + ", ".join(contract.CLOCKS),
    )
    problems.check(
        command.reason in contract.EXCEPTION_REASONS,
        "reason",
        "must be a, b, c or d (the exceptions the Regulations list)",
    )
    problems.check(
        _text_ok(command.evidence, required=True),
        "evidence",
        f"must say what shows the exception applies (1 to {MAX_TEXT} characters)",
    )
    problems.raise_if_any()

    if case.status not in _CLOCK_NEEDS[command.clock]:
        raise ImpossibleTransition(
            f"the {command.clock} clock does not run for case {case.case_id} while it "
            f"is {case.status}: no exception can apply to it"
        )
    if (command.clock, command.reason) in case.exceptions:
        raise ImpossibleTransition(
            f"exception ({command.reason}) is already recorded on the {command.clock} "
            f"clock of case {case.case_id}"
        )

    recorded = contract.TimeLimitExceptionRecorded(
        case_id=case.case_id,
        clock=command.clock,
        reason=command.reason,
    )
    return [_event(recorded, context, {"evidence": command.evidence})]


def _withdraw(case: Case, command: WithdrawRequest, context: Context) -> list[NewEvent]:
    _require_case(case)
    if not case.is_open:
        raise ImpossibleTransition(
            f"case {case.case_id} is {case.status}: only an open request can be "
            "withdrawn"
        )

    withdrawn_on = command.withdrawn_on or london_date(context.now)
    problems = _Problems()
    date_problems = _decision_date_problems(case, withdrawn_on, context, "withdrawn_on")
    presented_on = case.presented_on
    if not date_problems and presented_on and withdrawn_on < presented_on:
        date_problems.append(
            (
                "withdrawn_on",
                f"must not be before the surgery presentation on {presented_on}",
            )
        )
    problems.found += date_problems
    problems.check(
        _text_ok(command.reason, required=False),
        "reason",
        f"must be non-blank and at most {MAX_TEXT} characters when given",
    )
    problems.raise_if_any()

    withdrawn = contract.RequestWithdrawn(
        case_id=case.case_id, withdrawn_on=withdrawn_on
    )
    return [_event(withdrawn, context, {"reason": command.reason})]


def _presentation_date_problems(
    case: Case, presented_on: date, context: Context, field: str
) -> list[tuple[str, str]]:
    problems = _decision_date_problems(case, presented_on, context, field)
    if not problems and case.notified_on and presented_on > case.notified_on:
        problems.append(
            (
                field,
                f"must not be after the decision, notified on {case.notified_on}: "
                "the surgery considers a request before the council decides",
            )
        )
    if not problems and case.withdrawn_on and presented_on > case.withdrawn_on:
        problems.append(
            (field, f"must not be after the withdrawal on {case.withdrawn_on}")
        )
    return problems


def _present(
    case: Case, command: RecordSurgeryPresentation, context: Context
) -> list[NewEvent]:
    _require_case(case)
    if case.status is Status.WITHDRAWN:
        raise ImpossibleTransition(
            f"case {case.case_id} was withdrawn on {case.withdrawn_on}: its surgery "
            "target was cancelled, so no presentation is recorded"
        )
    if case.presented_on is not None:
        raise ImpossibleTransition(
            f"case {case.case_id} was already presented to the Local Area Surgery on "
            f"{case.presented_on}: to change that date, record a correction of "
            "presented_on"
        )

    problems = _Problems()
    problems.found += _presentation_date_problems(
        case, command.presented_on, context, "presented_on"
    )
    problems.check(
        _text_ok(command.note, required=False),
        "note",
        f"must be non-blank and at most {MAX_TEXT} characters when given",
    )
    problems.raise_if_any()

    presented = contract.RequestPresentedAtSurgery(
        case_id=case.case_id, presented_on=command.presented_on
    )
    return [_event(presented, context, {"note": command.note})]


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidCommand(
            [("new_value", "must be a date as 'YYYY-MM-DD', such as '2025-02-14'")]
        ) from None


def _correct_presentation(
    case: Case, command: CorrectRequest, context: Context
) -> list[NewEvent]:
    if case.presented_on is None:
        raise ImpossibleTransition(
            f"case {case.case_id} has no surgery presentation yet, so there is no "
            "presented date to correct: record the presentation instead"
        )
    new_date = _parse_date(command.new_value)
    date_problems = _presentation_date_problems(case, new_date, context, "new_value")
    if date_problems:
        raise InvalidCommand(date_problems)
    if new_date == case.presented_on:
        raise InvalidCommand(
            [("new_value", f"is the value already recorded ({case.presented_on})")]
        )

    corrected = contract.SurgeryPresentationCorrected(
        case_id=case.case_id,
        field="presented_on",
        old_value=case.presented_on,
        new_value=new_date,
    )
    return [_event(corrected, context, {"reason": command.reason})]


def _parse_received_at(value: str) -> datetime | str:
    """The new ``received_at``, or the problem with it."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "must be an ISO 8601 timestamp, such as '2025-01-06T09:30:00Z'"
    if not _is_aware(moment):
        return "must include a time zone offset, such as 'Z'"
    return moment


def _correct(case: Case, command: CorrectRequest, context: Context) -> list[NewEvent]:
    _require_case(case)

    problems = _Problems()
    problems.check(
        command.field in CORRECTABLE,
        "field",
        "must be one of " + ", ".join(CORRECTABLE),
    )
    problems.check(
        _text_ok(command.reason, required=True),
        "reason",
        f"must say why the fact was wrong (1 to {MAX_TEXT} characters)",
    )
    problems.raise_if_any()
    if command.field == "presented_on":
        return _correct_presentation(case, command, context)

    old: str
    new: str
    if command.field == "received_at":
        assert case.received_at is not None
        parsed = _parse_received_at(command.new_value)
        if isinstance(parsed, str):
            raise InvalidCommand([("new_value", parsed)])
        received_problem = _received_at_problem(parsed, context)
        if received_problem is not None:
            raise InvalidCommand([("new_value", received_problem)])
        new_on = london_date(parsed)
        if case.notified_on is not None and case.notified_on < new_on:
            raise InvalidCommand(
                [
                    (
                        "new_value",
                        f"would put the request after its decision, notified on "
                        f"{case.notified_on}: correct the decision's date first",
                    )
                ]
            )
        if case.presented_on is not None and case.presented_on < new_on:
            raise InvalidCommand(
                [
                    (
                        "new_value",
                        f"would put the request after its surgery presentation on "
                        f"{case.presented_on}: correct the presentation's date first",
                    )
                ]
            )
        if case.date_of_birth is not None and case.date_of_birth > new_on:
            raise InvalidCommand(
                [("new_value", "would put the request before the child's birth")]
            )
        old = _utc_text(case.received_at)
        new = _utc_text(parsed)
    else:
        if case.notified_on is None:
            raise ImpossibleTransition(
                f"case {case.case_id} has no decision yet, so there is no notified "
                "date to correct: record the decision instead"
            )
        new_date = _parse_date(command.new_value)
        date_problems = _decision_date_problems(case, new_date, context, "new_value")
        presented_on = case.presented_on
        if not date_problems and presented_on and new_date < presented_on:
            date_problems.append(
                (
                    "new_value",
                    f"must not be before the surgery presentation on {presented_on}: "
                    "correct the presentation's date first",
                )
            )
        if date_problems:
            raise InvalidCommand(date_problems)
        old = case.notified_on.isoformat()
        new = new_date.isoformat()

    if old == new:
        raise InvalidCommand([("new_value", f"is the value already recorded ({old})")])

    corrected = contract.RequestCorrected(
        case_id=case.case_id,
        field=command.field,
        old_value=old,
        new_value=new,
    )
    return [_event(corrected, context, {"reason": command.reason})]


def _utc_text(moment: datetime) -> str:
    """A timestamp spelt as the contract spells ``received_at`` on the wire."""
    text: str = _TIMESTAMP.dump_python(moment.astimezone(UTC), mode="json")
    return text


_HANDLERS: dict[type[Any], Callable[[Case, Any, Context], list[NewEvent]]] = {
    ReceiveRequest: _receive,
    AssignCoordinator: _assign,
    RecordDecision: _decide_assessment,
    RecordTimeLimitException: _record_exception,
    WithdrawRequest: _withdraw,
    RecordSurgeryPresentation: _present,
    CorrectRequest: _correct,
}


def decide(case: Case, command: Command, context: Context) -> list[NewEvent]:
    """The events ``command`` causes on ``case``, or an ``IntakeError`` saying why not.

    An empty list means the command asks for what is already so (assigning the
    coordinator a case already has), and nothing needs recording.
    """
    return _HANDLERS[type(command)](case, command, context)
