"""What staff, and other services' events, ask the reviews service to do, as values.

Commands are imperative (``ArrangeReview``), the events they cause past tense
(``ReviewArranged``). Values arrive already parsed into Python types but not yet
checked against the rules: ``decide`` does that, so the rules hold whichever entry
point a command comes through.

The first group comes from staff over HTTP. The second group (``StartReviewCycle``,
``RecordPlanAmendment``, ``EndReviewCycle``, ``FollowCoordinator``) is what the
subscribers make of the plans and intake services' events; they record facts another
service has already decided, so they refuse nothing a valid event can say.
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


# From staff ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArrangeReview:
    """Arrange a review meeting for ``meeting_on``, convened by a setting.

    ``setting_urn`` None means the setting the plan names. ``kind`` is ``annual`` or
    ``interim``; an interim review answers the case's open interim review request.
    ``arranged_on`` None means today.
    """

    case_id: str
    review_id: str
    meeting_on: date
    invitee_roles: tuple[str, ...]
    setting_urn: int | None = None
    kind: str = "annual"
    arranged_on: date | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RearrangeReview:
    """Move a review meeting that has not been held to ``meeting_on``."""

    case_id: str
    review_id: str
    meeting_on: date
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordPapersSent:
    """Record that the invitations went and the advice was circulated on ``sent_on``."""

    case_id: str
    review_id: str
    sent_on: date


@dataclass(frozen=True, slots=True)
class RecordReviewHeld:
    """Record that the review meeting was held on ``held_on``, and who attended."""

    case_id: str
    review_id: str
    held_on: date
    attendee_roles: tuple[str, ...]
    child_views_gathered: bool
    recommendations: str | None = None


@dataclass(frozen=True, slots=True)
class RecordReportReceived:
    """Record that the setting's review report reached the council, ``received_on``."""

    case_id: str
    review_id: str
    received_on: date


@dataclass(frozen=True, slots=True)
class DecideReview:
    """Issue the council's decision after a review: ``maintain``, ``amend``, ``cease``.

    An ``amend`` decision carries the proposed amendments; ``notified_on`` is the day
    the parent or young person was told.
    """

    case_id: str
    review_id: str
    decision: str
    notified_on: date
    proposed_amendments: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RecordReferralsMade:
    """Record that the referrals to outside agencies for a review were made."""

    case_id: str
    review_id: str
    made_on: date


@dataclass(frozen=True, slots=True)
class RecordReviewListSent:
    """Record that the case's next review was on the list sent to its SENCO."""

    case_id: str
    setting_urn: int
    sent_on: date
    term_starts_on: date


@dataclass(frozen=True, slots=True)
class RequestInterimReview:
    """Record a request for an interim review, for a significant change."""

    case_id: str
    requested_on: date
    reason: str
    details: str | None = None


# From other services' events ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartReviewCycle:
    """The plans service issued the final plan on ``issued_on``."""

    case_id: str
    issued_on: date
    setting_urn: int | None


@dataclass(frozen=True, slots=True)
class RecordPlanAmendment:
    """The plans service issued an amended plan on ``amended_on``."""

    case_id: str
    amended_on: date
    setting_urn: int | None


@dataclass(frozen=True, slots=True)
class EndReviewCycle:
    """The plans service ceased the plan, or transferred it out, on ``ended_on``."""

    case_id: str
    ended_on: date
    reason: str


@dataclass(frozen=True, slots=True)
class FollowCoordinator:
    """Intake assigned ``coordinator_id`` to the case."""

    case_id: str
    coordinator_id: str


StaffCommand = (
    ArrangeReview
    | RearrangeReview
    | RecordPapersSent
    | RecordReviewHeld
    | RecordReportReceived
    | DecideReview
    | RecordReferralsMade
    | RecordReviewListSent
    | RequestInterimReview
)
Reaction = StartReviewCycle | RecordPlanAmendment | EndReviewCycle | FollowCoordinator
Command = StaffCommand | Reaction
