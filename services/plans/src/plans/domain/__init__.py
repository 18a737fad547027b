"""The plans domain: the state of a case, the commands, and pure decide and evolve.

Nothing here does input or output. ``decide(plan, command, context)`` returns the events
a command causes, or raises a ``PlansError``; ``evolve(plan, event)`` folds one recorded
event into the case. The time and who is acting come in through ``Context``, so the
same inputs always give the same answer.
"""

from plans.domain.commands import (
    AmendPlan,
    CeasePlan,
    Command,
    Context,
    CorrectPlan,
    DecideNotToIssuePlan,
    DecideReassessment,
    IssueDraftPlan,
    IssuePlan,
    NotifyTransferOut,
    OpenAssessment,
    ProposeAmendment,
    RecordAdviceReceived,
    RecordDraftComments,
    RecordTimeLimitException,
    RequestAdvice,
    RequestClosed,
    RequestReassessment,
    SendNewCouncilNotice,
    TransferPlanIn,
    TransferPlanOut,
)
from plans.domain.decide import decide
from plans.domain.errors import (
    AdviceNotFound,
    CaseNotFound,
    CommentWindowOpen,
    ImpossibleTransition,
    InvalidCommand,
    PlansError,
)
from plans.domain.model import NEED_TYPES, Plan, Status, evolve, fold

__all__ = [
    "NEED_TYPES",
    "AdviceNotFound",
    "AmendPlan",
    "CaseNotFound",
    "CeasePlan",
    "Command",
    "CommentWindowOpen",
    "Context",
    "CorrectPlan",
    "DecideNotToIssuePlan",
    "DecideReassessment",
    "ImpossibleTransition",
    "InvalidCommand",
    "IssueDraftPlan",
    "IssuePlan",
    "NotifyTransferOut",
    "OpenAssessment",
    "Plan",
    "PlansError",
    "ProposeAmendment",
    "RecordAdviceReceived",
    "RecordDraftComments",
    "RecordTimeLimitException",
    "RequestAdvice",
    "RequestClosed",
    "RequestReassessment",
    "SendNewCouncilNotice",
    "Status",
    "TransferPlanIn",
    "TransferPlanOut",
    "decide",
    "evolve",
    "fold",
]
