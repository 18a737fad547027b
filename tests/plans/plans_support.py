"""Helpers shared by the plans tests: the fixed clock, intake's agreement, bodies.

The dates follow one case through the statutory process, all before ``NOW``:
assessment agreed Mon 6 Oct 2025; advice received by the body Wed 8 Oct; draft served
Mon 2 Mar 2026 (comments until Mon 16 Mar, so the earliest final plan is Tue 17 Mar,
the worked example of STATUTORY_CLOCKS.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from plans.application.reactions import IntakeReactions
from sendkit.envelope import ReceivedEvent
from sendkit.events import Metadata
from sendkit.store import EventStore

NOW = datetime(2026, 6, 1, 11, 0, tzinfo=UTC)
"""The fixed "now" of every plans test: Monday 1 June 2026, noon in London."""

AGREED_ON = date(2025, 10, 6)
DRAFT_SERVED_ON = date(2026, 3, 2)
WINDOW_ENDS_ON = date(2026, 3, 16)
EARLIEST_FINAL_ON = date(2026, 3, 17)

PERSONAL = (
    "Dr Example Psychologist",
    "needs can be met at SEN support",
    "we would like more speech therapy",
    "add weekly physiotherapy to section F",
    "moved following a tenancy change",
    "Exampleshire County Council",
    "Sampleton Borough Council",
)
"""Synthetic personal and free-text values: they must never reach a topic."""


class Unset:
    """The type of ``UNSET``: no value given, as against ``None`` given."""


UNSET = Unset()


class FixedClock:
    """A clock that says what the test tells it to."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def new_case_id() -> str:
    return str(uuid.uuid4())


def intake_event(
    case_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    key: str | Unset | None = UNSET,
) -> ReceivedEvent:
    """An intake event about ``case_id`` as the subscriber receives it.

    Its Kafka key is the case id, as intake's relay writes it, unless ``key`` says
    otherwise (``None`` is a record without a key).
    """
    return ReceivedEvent(
        id=event_id or str(uuid.uuid4()),
        type=event_type,
        source="/send/intake",
        subject=case_id,
        time=NOW,
        data=data,
        metadata=Metadata(actor="ehcco-1", correlation_id=f"corr-{case_id[:8]}"),
        sequence=1,
        topic="send.intake.events",
        partition=0,
        offset=0,
        key=case_id if isinstance(key, Unset) else key,
    )


def request_received(case_id: str, *, key: str | Unset | None = UNSET) -> ReceivedEvent:
    """Intake's ``RequestReceived`` for ``case_id``: the request of 1 Sep 2025."""
    return intake_event(
        case_id,
        "send.intake.RequestReceived.v1",
        {
            "case_id": case_id,
            "requester_type": "parent",
            "channel": "email",
            "received_at": "2025-09-01T09:00:00Z",
            "school_urn": 123456,
            "curriculum_year": 4,
        },
        key=key,
    )


def agreement(
    case_id: str,
    notified_on: date = AGREED_ON,
    *,
    event_id: str | None = None,
    event_type: str = "send.intake.AssessmentAgreed.v1",
    data: dict[str, Any] | None = None,
    key: str | Unset | None = UNSET,
) -> ReceivedEvent:
    """Intake's ``AssessmentAgreed`` for ``case_id`` as the subscriber receives it."""
    return ReceivedEvent(
        id=event_id or str(uuid.uuid4()),
        type=event_type,
        source="/send/intake",
        subject=case_id,
        time=NOW,
        data=(
            data
            if data is not None
            else {"case_id": case_id, "notified_on": notified_on.isoformat()}
        ),
        metadata=Metadata(actor="ehcco-1", correlation_id=f"corr-{case_id[:8]}"),
        sequence=2,
        topic="send.intake.events",
        partition=0,
        offset=0,
        key=case_id if isinstance(key, Unset) else key,
    )


def open_assessment(
    store: EventStore, reactions: IntakeReactions, notified_on: date = AGREED_ON
) -> str:
    """A new case whose assessment intake agreed, opened as the subscriber opens it."""
    case_id = new_case_id()
    with store.transaction() as tx:
        reactions(request_received(case_id), tx)
        reactions(agreement(case_id, notified_on), tx)
    return case_id


def final_plan_body(**changes: Any) -> dict[str, Any]:
    """A valid body of POST /cases/{id}/final-plan, with ``changes`` (None removes)."""
    body: dict[str, Any] = {
        "issued_on": EARLIEST_FINAL_ON.isoformat(),
        "setting_urn": 123456,
        "setting_type": "mainstream_academy",
        "start_date": "2026-09-01",
        "primary_need": "SLCN",
        "secondary_need": "ASD",
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def types_of(store: EventStore, case_id: str) -> list[str]:
    """The short names of a case's events, oldest first."""
    return [event.type.split(".")[2] for event in store.read_stream(case_id)]
