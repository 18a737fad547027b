"""The read model of the deadlines service: one JSON document per case.

It is built from the service's own clock events (``send.deadlines.events``) and from
the two intake facts the queries filter on (``RequestReceived.school_urn`` and
``CoordinatorAssigned.coordinator_id``). ``apply_clock_event`` and
``apply_intake_event`` fold one event into a case's document, each validated against
its published model first (``send_schemas.deadlines`` and ``send_schemas.intake``), so
an event that breaks the contract raises and the subscriber dead-letters it; a
``RequestReceived`` must also name its own case and fall in the calendar's supported
range, as the worker requires before it counts a case's clocks. An intake event of a
type the contract does not know (a newer version of intake) is only noted among the
case's facts, its data unread. ``timeline``, ``due`` and
``summary`` answer the API's questions from documents (``deadlines.application.
timeliness`` the DfE's counts), and ``scope_of`` gives access control a case's
coordinator and school. Nothing here touches a store.

A case document::

    {"case_id": ..., "school_urn": 100001, "coordinator_id": "ehcco-7",
     "received_at": "...", "facts": {"<intake event id>": "RequestReceived", ...},
     "clocks": {"decision": {...one clock...}, ...}}

A clock's ``status`` is ``open``, ``approaching`` (an alert lead time was reached),
``overdue``, or one of the final ``met``, ``late`` and ``cancelled``: what the clock
events have said so far, so an overdue clock shows as such only once a tick has told
the processor the date. Each clock keeps its ``history``, the clock events about it in
the order they came, each once (by event id), which makes folding a repeat harmless
even without the subscriber's processed-id marks.

A clock's ``started`` says what started it: the day, and the id and type of the
starting event as its ``ClockSet`` names them (``started_by_event_id``,
``started_by``), whichever service published that event; the timeline adds the types
its rule starts on (``rule_starts``). ``stopped`` and ``cancelled`` give the day, the
type and the id of the event that ended it. Clock events from a worker older than
those fields lack them: the start's id is then the ``ClockSet``'s causation id, and its
type is known only when the rule starts on one event type; such a clock of a rule with
several start types (an annual review, started by a plan issued or a review held)
shows no start type, and its stop no id. A replay of the
worker re-emits the same event ids, which the read model drops as repeats, so only a
read model rebuilt from a clock topic written by a newer worker gains them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from deadlines.domain import rules
from deadlines.domain.errors import RulesError
from send_schemas import intake
from send_schemas.deadlines import CLOCK_EVENTS
from sendkit.auth.policy import CaseScope
from sendkit.calendar import supported_moment_problem
from sendkit.envelope import ReceivedEvent

CASES = "cases"
"""The document collection of the read model: one document per case id."""

OPEN = "open"
APPROACHING = "approaching"
OVERDUE = "overdue"
MET = "met"
LATE = "late"
CANCELLED = "cancelled"
FINAL = frozenset({MET, LATE, CANCELLED})
STATUSES = (OPEN, APPROACHING, OVERDUE, MET, LATE, CANCELLED)

# What each clock event's history entry keeps besides its id, type and time.
_HISTORY_FIELDS = (
    "due_on",
    "act_by",
    "previous_due_on",
    "lead_working_days",
    "alert_on",
    "overdue_since",
    "started_by",
    "started_by_event_id",
    "stopped_on",
    "stopped_by",
    "stopped_by_event_id",
    "days_late",
    "cancelled_on",
    "cancelled_by",
    "cancelled_by_event_id",
    "breach_voided",
    "reason",
    "alert_id",
    "alert_kind",
)


class ReadModelError(ValueError):
    """An event cannot be folded into the read model; the message says why."""


def new_case(case_id: str) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "school_urn": None,
        "coordinator_id": None,
        "received_at": None,
        "facts": {},
        "clocks": {},
    }


# Folding events -----------------------------------------------------------------------


def apply_intake_event(
    doc: dict[str, Any] | None, event: ReceivedEvent
) -> dict[str, Any] | None:
    """The case document after an intake event, or ``None`` if it changes nothing.

    Raises pydantic's ``ValidationError`` for data that breaks intake's published
    model, and ``ReadModelError`` for a request about another case or received
    outside the supported range; the document is then left as it was.
    """
    parsed = _valid_intake_event(event)
    if not isinstance(parsed, intake.RequestReceived | intake.CoordinatorAssigned):
        if doc is None or event.id in doc["facts"]:
            return None
        doc = _copy(doc)
        doc["facts"][event.id] = event.name
        return doc
    doc = _copy(doc) if doc is not None else new_case(event.subject)
    doc["facts"][event.id] = event.name
    if isinstance(parsed, intake.RequestReceived):
        doc["school_urn"] = parsed.school_urn
        doc["received_at"] = parsed.model_dump(mode="json")["received_at"]
    else:
        doc["coordinator_id"] = parsed.coordinator_id
    return doc


def _valid_intake_event(event: ReceivedEvent) -> intake.IntakeEvent | None:
    """The event's data as intake's published model, or None for a type it lacks."""
    if event.type not in intake.EVENTS_BY_TYPE:
        return None
    parsed = intake.parse_intake_event(event.type, event.data)
    if parsed.case_id != event.subject:
        raise ReadModelError(
            f"{event.name} {event.id} names case {parsed.case_id} in its data but "
            f"{event.subject} as its subject: intake publishes them equal"
        )
    if isinstance(parsed, intake.RequestReceived):
        problem = supported_moment_problem(parsed.received_at)
        if problem is not None:
            raise ReadModelError(
                f"RequestReceived {event.id} field 'received_at': {problem}"
            )
    return parsed


def apply_clock_event(
    doc: dict[str, Any] | None, event: ReceivedEvent
) -> dict[str, Any]:
    """The case document after one clock event (unchanged content for a repeat)."""
    model = CLOCK_EVENTS.get(event.type)
    if model is None:
        raise ReadModelError(
            f"{event.type!r} is not a deadlines event type; known: "
            + ", ".join(sorted(CLOCK_EVENTS))
        )
    data = model.model_validate(event.data).model_dump(mode="json")
    doc = _copy(doc) if doc is not None else new_case(event.subject)
    clock_id = data["clock_id"]
    clock = doc["clocks"].get(clock_id)
    if clock is None:
        clock = doc["clocks"][clock_id] = _new_clock(data)
    if any(entry["id"] == event.id for entry in clock["history"]):
        return doc

    _common(clock, data)
    name = event.name
    if name == "ClockSet":
        _set(clock, data, event)
    elif name == "ClockApproaching":
        if clock["status"] in (OPEN, APPROACHING):
            clock["status"] = APPROACHING
        clock["last_alert"] = {
            "kind": "approaching",
            "lead_working_days": data["lead_working_days"],
            "alert_on": data["alert_on"],
        }
    elif name == "ClockOverdue":
        if clock["status"] not in FINAL:
            clock["status"] = OVERDUE
        clock["overdue_since"] = data["overdue_since"]
    elif name in ("ClockMet", "ClockLate"):
        clock["status"] = MET if name == "ClockMet" else LATE
        clock["stopped"] = {
            "on": data["stopped_on"],
            "by": data["stopped_by"],
            "by_event_id": data.get("stopped_by_event_id"),
            "days_late": data.get("days_late", 0),
        }
        clock["cancelled"] = None
    elif name == "ClockCancelled":
        clock["status"] = CANCELLED
        clock["cancelled"] = {
            "on": data["cancelled_on"],
            "by": data["cancelled_by"],
            "by_event_id": data.get("cancelled_by_event_id"),
            "breach_voided": data["breach_voided"],
        }
    elif name == "ClockExceptionApplied":
        clock["exception"] = {"reason": data["reason"], "text": data["reason_text"]}
    elif name == "ClockDueDateChanged":
        # The engine withdraws the alerts of the old date and starts counting again.
        if clock["status"] not in (MET, LATE, CANCELLED):
            clock["status"] = OPEN
        clock["stopped"] = None if clock["status"] == OPEN else clock["stopped"]
        clock["overdue_since"] = None
        clock["counts_from"] = data["counts_from"]
    elif name == "AlertWithdrawn":
        kind = data["alert_kind"]
        if (kind, clock["status"]) in (
            ("overdue", OVERDUE),
            ("approaching", APPROACHING),
        ):
            clock["status"] = OPEN
        if kind == "overdue":
            clock["overdue_since"] = None

    entry = {"id": event.id, "type": name, "time": event.time.isoformat()}
    entry.update({key: data[key] for key in _HISTORY_FIELDS if key in data})
    clock["history"].append(entry)
    return doc


def _new_clock(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "clock_id": data["clock_id"],
        "clock": data["clock"],
        "title": data["title"],
        "status": OPEN,
        "kind": None,
        "statutory": data["statutory"],
        "authority": data["authority"],
        "due_on": data["due_on"],
        "act_by": data["act_by"],
        "legal_basis": data["legal_basis"],
        "rules_version": data["rules_version"],
        "escalate": data["escalate"],
        "started": None,
        "counts_from": None,
        "guidance_due_on": None,
        "action": None,
        "stopped": None,
        "cancelled": None,
        "exception": None,
        "overdue_since": None,
        "last_alert": None,
        "history": [],
    }


def _common(clock: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key in (
        "title",
        "due_on",
        "act_by",
        "legal_basis",
        "escalate",
        "rules_version",
    ):
        clock[key] = data[key]
    if data.get("exception_reason") and clock["exception"] is None:
        clock["exception"] = {"reason": data["exception_reason"], "text": None}


def _set(clock: dict[str, Any], data: Mapping[str, Any], event: ReceivedEvent) -> None:
    clock["kind"] = data["kind"]
    clock["counts_from"] = data["counts_from"]
    clock["guidance_due_on"] = data.get("guidance_due_on")
    clock["action"] = data["action"]
    clock["lead_working_days"] = list(data["lead_working_days"])
    # A worker older than the started_by fields left them out: the event being
    # processed (ce_causationid) is then the best guess of the starting event's id.
    clock["started"] = {
        "on": data["started_on"],
        "by_event_id": data.get("started_by_event_id") or event.metadata.causation_id,
        "by_event_type": data.get("started_by"),
    }


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    # Documents are plain JSON; a deep copy keeps the caller's version untouched.
    return {
        **doc,
        "facts": dict(doc["facts"]),
        "clocks": {
            key: {**clock, "history": list(clock["history"])}
            for key, clock in doc["clocks"].items()
        },
    }


# Answering ----------------------------------------------------------------------------


def scope_of(doc: Mapping[str, Any] | None, case_id: str | None = None) -> CaseScope:
    """What access control needs of a case: its coordinator and school, if known.

    A case the read model does not know, or whose intake facts it has not seen yet,
    has neither: every team's staff may reach it and no SENCO may.
    """
    if doc is None:
        return CaseScope.of(case_id)
    return CaseScope.of(
        doc.get("case_id", case_id),
        coordinator_id=doc.get("coordinator_id"),
        school_urns=[doc.get("school_urn")],
    )


def _started_by(clock: Mapping[str, Any]) -> dict[str, Any] | None:
    started = clock.get("started")
    if started is None:
        return None
    starts = _start_types(clock["clock"], clock["rules_version"])
    by_type = started.get("by_event_type")
    if by_type is None and len(set(starts)) == 1:
        # Set by a worker older than ``started_by``: a rule with one start event
        # type can only have started by that type.
        by_type = starts[0]
    return {**started, "by_event_type": by_type, "rule_starts": starts}


def _start_types(clock: str, version: str) -> list[str]:
    try:
        rule = rules.ruleset(version).rule(clock)
    except RulesError:
        return []
    return [start.event_type for start in rule.starts]


def timeline(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Every clock of one case, oldest set first, with what started and stopped it."""
    clocks = []
    for clock in doc["clocks"].values():
        view = {key: value for key, value in clock.items() if key != "started"}
        view["started"] = _started_by(clock)
        clocks.append(view)
    clocks.sort(
        key=lambda c: (c["history"][0]["time"] if c["history"] else "", c["clock_id"])
    )
    return {
        "case_id": doc["case_id"],
        "school_urn": doc["school_urn"],
        "coordinator_id": doc["coordinator_id"],
        "received_at": doc["received_at"],
        "clocks": clocks,
    }


def due(
    docs: Iterable[Mapping[str, Any]],
    *,
    first: date,
    last: date,
    coordinator_id: str | None = None,
    school_urn: int | None = None,
    include_overdue: bool = True,
) -> list[dict[str, Any]]:
    """Clocks not yet stopped that fall due from ``first`` to ``last`` (both included).

    With ``include_overdue``, every overdue clock due before ``first`` is listed too.
    ``coordinator_id`` and ``school_urn`` keep only the cases that have them.
    """
    items = []
    for doc in docs:
        if coordinator_id is not None and doc.get("coordinator_id") != coordinator_id:
            continue
        if school_urn is not None and doc.get("school_urn") != school_urn:
            continue
        for clock in doc["clocks"].values():
            if clock["status"] in FINAL or clock.get("started") is None:
                continue
            due_on = date.fromisoformat(clock["due_on"])
            in_range = first <= due_on <= last
            earlier_overdue = (
                include_overdue and clock["status"] == OVERDUE and due_on < first
            )
            if not (in_range or earlier_overdue):
                continue
            items.append(
                {
                    "case_id": doc["case_id"],
                    "coordinator_id": doc.get("coordinator_id"),
                    "school_urn": doc.get("school_urn"),
                    "clock_id": clock["clock_id"],
                    "clock": clock["clock"],
                    "title": clock["title"],
                    "statutory": clock["statutory"],
                    "authority": clock["authority"],
                    "status": clock["status"],
                    "due_on": clock["due_on"],
                    "act_by": clock["act_by"],
                    "legal_basis": clock["legal_basis"],
                    "exception_reason": (clock.get("exception") or {}).get("reason"),
                    "escalate": clock["escalate"],
                    "overdue_since": clock.get("overdue_since"),
                }
            )
    items.sort(key=lambda i: (i["due_on"], i["case_id"], i["clock_id"]))
    return items


def summary(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of clocks by clock and status, with and without exceptions.

    ``set`` counts every clock started; it equals the sum of the six statuses.
    ``with_exception`` counts the clocks (in any status) an exception applies to.
    """
    per_clock: dict[str, Counter[str]] = {}
    statutory: dict[str, bool] = {}
    cases = 0
    for doc in docs:
        cases += 1
        for clock in doc["clocks"].values():
            if clock.get("started") is None:
                continue
            counts = per_clock.setdefault(clock["clock"], Counter())
            statutory[clock["clock"]] = clock["statutory"]
            counts["set"] += 1
            counts[clock["status"]] += 1
            if clock.get("exception"):
                counts["with_exception"] += 1
    keys = ("set", *STATUSES, "with_exception")
    clocks = {
        name: {"statutory": statutory[name], **{key: counts[key] for key in keys}}
        for name, counts in sorted(per_clock.items())
    }
    totals = {key: sum(c[key] for c in per_clock.values()) for key in keys}
    return {"cases": cases, "clocks": clocks, "totals": totals}
