"""What staff ask the intake service to do, as plain values.

Commands are imperative (``ReceiveRequest``), the events they cause past tense
(``RequestReceived``). Values arrive already parsed into Python types but not yet
checked against the rules: ``decide`` does that, so the rules hold whichever entry
point a command comes through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sendkit.events import Metadata


@dataclass(frozen=True, slots=True)
class Context:
    """What a decision may depend on besides the case: the time, and who is acting."""

    now: datetime
    metadata: Metadata


@dataclass(frozen=True, slots=True)
class ReceiveRequest:
    """Record a request for an EHC needs assessment as it arrived."""

    case_id: str
    requester_type: str
    child_reference: str
    date_of_birth: date
    school_urn: int
    curriculum_year: int
    channel: str
    received_at: datetime
    child_name: str | None = None
    requester_name: str | None = None


@dataclass(frozen=True, slots=True)
class AssignCoordinator:
    """Make ``coordinator_id`` the case's EHC coordinator.

    With ``only_from`` set, the case moves only if it is still with that coordinator;
    moving all of a leaving coordinator's cases uses it so that a case reassigned in
    the meantime is left where it is.
    """

    case_id: str
    coordinator_id: str
    only_from: str | None = None


@dataclass(frozen=True, slots=True)
class RecordDecision:
    """Record the decision whether to assess (``agreed`` or ``refused``)."""

    case_id: str
    outcome: str
    notified_on: date
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RecordTimeLimitException:
    """Record that a statutory exception (reason a to d) applies to one clock."""

    case_id: str
    clock: str
    reason: str
    evidence: str


@dataclass(frozen=True, slots=True)
class WithdrawRequest:
    """Record that the request was withdrawn (on ``withdrawn_on``, today if None)."""

    case_id: str
    withdrawn_on: date | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordSurgeryPresentation:
    """Record that the request was presented to the Local Area Surgery.

    ``note`` (what the surgery said, say) stays in intake's store and is never
    published.
    """

    case_id: str
    presented_on: date
    note: str | None = None


CORRECTABLE: tuple[str, ...] = ("received_at", "notified_on", "presented_on")
"""The facts ``CorrectRequest`` can correct: ``RequestCorrected``'s two fields, and
``presented_on``, whose correction is published as ``SurgeryPresentationCorrected``."""


@dataclass(frozen=True, slots=True)
class CorrectRequest:
    """Replace a wrongly recorded fact with ``new_value`` (an ISO 8601 string)."""

    case_id: str
    field: str
    new_value: str
    reason: str


Command = (
    ReceiveRequest
    | AssignCoordinator
    | RecordDecision
    | RecordTimeLimitException
    | WithdrawRequest
    | RecordSurgeryPresentation
    | CorrectRequest
)
