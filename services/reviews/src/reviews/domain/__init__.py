"""The reviews domain: a case's review cycle, the commands, and pure decide and evolve.

Nothing here does input or output. ``decide(case, command, context)`` returns the events
a command causes, or raises a ``ReviewsError``; ``evolve(case, event)`` folds one
recorded event into the case. The time and who is acting come in through ``Context``,
so the same inputs always give the same answer.
"""

from reviews.domain.commands import (
    ArrangeReview,
    Command,
    Context,
    DecideReview,
    EndReviewCycle,
    FollowCoordinator,
    Reaction,
    RearrangeReview,
    RecordPapersSent,
    RecordPlanAmendment,
    RecordReferralsMade,
    RecordReportReceived,
    RecordReviewHeld,
    RecordReviewListSent,
    RequestInterimReview,
    StaffCommand,
    StartReviewCycle,
)
from reviews.domain.decide import decide
from reviews.domain.errors import (
    AlreadyRecorded,
    CaseNotFound,
    ImpossibleTransition,
    InvalidCommand,
    InvalidQuery,
    NoActivePlan,
    NotYetHeld,
    ReviewInProgress,
    ReviewNotFound,
    ReviewsError,
)
from reviews.domain.model import (
    Case,
    InterimRequest,
    ListSent,
    PlanStatus,
    Review,
    ReviewStatus,
    evolve,
    fold,
)

__all__ = [
    "AlreadyRecorded",
    "ArrangeReview",
    "Case",
    "CaseNotFound",
    "Command",
    "Context",
    "DecideReview",
    "EndReviewCycle",
    "FollowCoordinator",
    "ImpossibleTransition",
    "InterimRequest",
    "InvalidCommand",
    "InvalidQuery",
    "ListSent",
    "NoActivePlan",
    "NotYetHeld",
    "PlanStatus",
    "Reaction",
    "RearrangeReview",
    "RecordPapersSent",
    "RecordPlanAmendment",
    "RecordReferralsMade",
    "RecordReportReceived",
    "RecordReviewHeld",
    "RecordReviewListSent",
    "RequestInterimReview",
    "Review",
    "ReviewInProgress",
    "ReviewNotFound",
    "ReviewStatus",
    "ReviewsError",
    "StaffCommand",
    "StartReviewCycle",
    "decide",
    "evolve",
    "fold",
]
