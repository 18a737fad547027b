"""The events the reviews service publishes on ``send.reviews.events``.

Each model is the public ``data`` of one event type; its CloudEvents ``type`` is the
model's ``EVENT_TYPE`` (``send.reviews.<Name>.v1``) and its ``subject`` the case id,
which the payload repeats as ``case_id``. The case id is the one intake gave the case,
so one case's intake, plans and reviews events share a Kafka key.

Only what a subscriber needs is published: dates, review ids, the convening setting's
URN, the roles invited and attending (never names), whether the child's or young
person's views were gathered, the decision code and the interim review's reason code.
The recommendations of the meeting, the proposed amendments, the reasons for moving a
meeting and every note stay in the reviews store and are served by its API.

The review cycle follows the plan: ``ReviewCycleStarted`` records the plans service's
``PlanIssued`` (the issue date starts the 12 months within which the first review must
be held), ``PlanAmendmentRecorded`` its ``PlanAmended`` and ``ReviewCycleEnded`` its
``PlanCeased`` or ``PlanTransferredOut``. ``ReviewCoordinatorAssigned`` follows intake's
``CoordinatorAssigned``, so a coordinator's list of reviews can be answered here.

A review is arranged (``ReviewArranged``; arranged again under the same ``review_id``
when the meeting moves, which replaces the earlier date), its invitations and advice
are sent (``ReviewPapersSent``), the meeting is held (``ReviewHeld``), the setting's
report reaches the council (``ReviewReportReceived``) and the council decides
(``ReviewDecided``). A decision to amend is the amendment notice of Reg 22: the
final amended plan's clock starts on its ``notified_on``. Two facts serve the council's
local targets: ``AgencyReferralsMade`` (referrals 8 weeks before the meeting) and
``ReviewListSentToSenco`` (each SENCO has the list of the next term's reviews before
the term starts), recorded on every case the list named.

The models forbid unknown fields, so the reviews service cannot publish more than the
contract allows. Subscribers should read with ``parse_reviews_event``, which ignores
fields a newer version of the contract may add. Dates are local dates in
Europe/London.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from send_schemas.intake import CaseId, SchoolUrn, StaffId

OWNER = "reviews"
TOPIC = "send.reviews.events"

Role = Literal[
    "parent",
    "young_person",
    "child",
    "senco",
    "head_teacher",
    "teacher",
    "ehc_coordinator",
    "educational_psychologist",
    "health",
    "social_care",
    "careers_adviser",
    "post16_provider",
    "other",
]
ROLES: tuple[str, ...] = (
    "parent",
    "young_person",
    "child",
    "senco",
    "head_teacher",
    "teacher",
    "ehc_coordinator",
    "educational_psychologist",
    "health",
    "social_care",
    "careers_adviser",
    "post16_provider",
    "other",
)
"""The roles a review invites or sees attend; a person is published only by role."""

FAMILY_ROLES: tuple[str, ...] = ("parent", "young_person")
"""Reg 20(2)(a): the child's parent or the young person must be invited."""

Decision = Literal["maintain", "amend", "cease"]
DECISIONS: tuple[str, ...] = ("maintain", "amend", "cease")

ReviewKind = Literal["annual", "interim"]
REVIEW_KINDS: tuple[str, ...] = ("annual", "interim")

InterimReason = Literal[
    "needs_changed",
    "provision_changed",
    "placement_at_risk",
    "exclusion",
    "family_request",
    "setting_request",
    "other",
]
INTERIM_REASONS: tuple[str, ...] = (
    "needs_changed",
    "provision_changed",
    "placement_at_risk",
    "exclusion",
    "family_request",
    "setting_request",
    "other",
)
"""Why an interim review was asked for: a significant change in needs or provision."""

CycleEndReason = Literal["plan_ceased", "plan_transferred_out"]
CYCLE_END_REASONS: tuple[str, ...] = ("plan_ceased", "plan_transferred_out")

ReviewId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The id the reviews service gave the review when it was arranged.",
    ),
]


def _distinct_in_order(roles: list[str]) -> list[str]:
    if len(set(roles)) != len(roles):
        raise ValueError("lists a role more than once")
    return sorted(roles, key=ROLES.index)


Roles = Annotated[list[Role], AfterValidator(_distinct_in_order)]
"""Roles without repeats, in the order of ``ROLES``, so a repeat is byte-identical."""


class ReviewsEvent(BaseModel):
    """The public data of one reviews event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    EVENT_TYPE: ClassVar[str]

    case_id: CaseId


class ReviewCycleStarted(ReviewsEvent):
    """The final plan issued on ``issued_on`` starts the annual review cycle.

    The first review is due by the last day of the 12 months starting with
    ``issued_on``. ``setting_urn`` is the setting the plan names (null when it names
    none, as for elective home education); its SENCO receives the review lists.
    """

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewCycleStarted.v1"

    issued_on: date
    setting_urn: SchoolUrn | None


class PlanAmendmentRecorded(ReviewsEvent):
    """The plan was amended on ``amended_on``; the review cycle keeps its dates.

    ``setting_urn`` is the setting the amended plan names when it names a new one.
    ``review_id`` is the review whose decision to amend this plan carries out, if any.
    """

    EVENT_TYPE: ClassVar[str] = "send.reviews.PlanAmendmentRecorded.v1"

    amended_on: date
    setting_urn: SchoolUrn | None
    review_id: ReviewId | None


class ReviewCycleEnded(ReviewsEvent):
    """The plan ceased or moved to another council on ``ended_on``: no more reviews."""

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewCycleEnded.v1"

    ended_on: date
    reason: CycleEndReason


class ReviewCoordinatorAssigned(ReviewsEvent):
    """The case's reviews are with ``coordinator_id``, as intake assigned it."""

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewCoordinatorAssigned.v1"

    coordinator_id: StaffId
    previous_coordinator_id: StaffId | None


class ReviewArranged(ReviewsEvent):
    """A review meeting was arranged on ``arranged_on`` for ``meeting_on``.

    The same ``review_id`` arranged again moves the meeting: the later event replaces
    the earlier date. ``setting_urn`` is the setting that convenes it (null when the
    council convenes it itself); ``invitee_roles`` who is invited, by role. The
    invitations and advice are due 2 weeks before ``meeting_on``.
    """

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewArranged.v1"

    review_id: ReviewId
    kind: ReviewKind
    meeting_on: date
    arranged_on: date
    setting_urn: SchoolUrn | None
    invitee_roles: Roles = Field(min_length=1)


class ReviewPapersSent(ReviewsEvent):
    """The invitations were sent and the advice circulated on ``sent_on``."""

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewPapersSent.v1"

    review_id: ReviewId
    sent_on: date


class ReviewHeld(ReviewsEvent):
    """The review meeting was held on ``held_on``; the next 12 months start with it.

    ``attendee_roles`` says who attended, by role; ``child_views_gathered`` whether
    the child's or young person's views were gathered for it. The recommendations are
    kept in the reviews store.
    """

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewHeld.v1"

    review_id: ReviewId
    held_on: date
    child_views_gathered: bool
    attendee_roles: Roles = Field(min_length=1)


class ReviewReportReceived(ReviewsEvent):
    """The setting's report of the review reached the council on ``received_on``."""

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewReportReceived.v1"

    review_id: ReviewId
    received_on: date


class ReviewDecided(ReviewsEvent):
    """The council decided to maintain, amend or cease the plan, notified on
    ``notified_on``.

    An ``amend`` decision is the notice of the proposed amendments (Reg 22): the
    comment window and the final amended plan's 8 weeks start with it. The proposed
    amendments are kept in the reviews store.
    """

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewDecided.v1"

    review_id: ReviewId
    decision: Decision
    notified_on: date


class AgencyReferralsMade(ReviewsEvent):
    """The referrals to outside agencies a review needs (social care, therapies,
    CAMHS) were made on ``made_on``; the council's local target is 8 weeks before the
    meeting."""

    EVENT_TYPE: ClassVar[str] = "send.reviews.AgencyReferralsMade.v1"

    review_id: ReviewId
    made_on: date


class ReviewListSentToSenco(ReviewsEvent):
    """The case's next review was on the list sent to its setting's SENCO on
    ``sent_on``, for the term starting ``term_starts_on``; the council's local target
    is before the term starts."""

    EVENT_TYPE: ClassVar[str] = "send.reviews.ReviewListSentToSenco.v1"

    setting_urn: SchoolUrn
    sent_on: date
    term_starts_on: date
    review_due_on: date


class InterimReviewRequested(ReviewsEvent):
    """An interim review was asked for on ``requested_on`` for a significant change."""

    EVENT_TYPE: ClassVar[str] = "send.reviews.InterimReviewRequested.v1"

    requested_on: date
    reason: InterimReason


EVENT_MODELS: tuple[type[ReviewsEvent], ...] = (
    ReviewCycleStarted,
    PlanAmendmentRecorded,
    ReviewCycleEnded,
    ReviewCoordinatorAssigned,
    ReviewArranged,
    ReviewPapersSent,
    ReviewHeld,
    ReviewReportReceived,
    ReviewDecided,
    AgencyReferralsMade,
    ReviewListSentToSenco,
    InterimReviewRequested,
)
EVENTS_BY_TYPE: dict[str, type[ReviewsEvent]] = {m.EVENT_TYPE: m for m in EVENT_MODELS}


class UnknownReviewsEvent(KeyError):
    """A type string that no reviews model describes."""


def parse_reviews_event(event_type: str, data: dict[str, Any]) -> ReviewsEvent:
    """The model of one published reviews event, ignoring fields it does not know.

    Raises ``UnknownReviewsEvent`` for a type it has no model of, and pydantic's
    ``ValidationError`` for data that breaks the contract.
    """
    model = EVENTS_BY_TYPE.get(event_type)
    if model is None:
        raise UnknownReviewsEvent(
            f"{event_type!r} is not a reviews event type: expected one of "
            + ", ".join(sorted(EVENTS_BY_TYPE))
        )
    known = {key: value for key, value in data.items() if key in model.model_fields}
    return model.model_validate(known)
