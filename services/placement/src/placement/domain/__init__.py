"""The placement domain: a case's placement state, the commands, pure decide and evolve.

Nothing here does input or output. ``decide(case, command, context)`` returns the
events a command causes, or raises a ``PlacementError``; ``evolve(case, event)`` folds
one recorded event into the case. The time, who is acting and what intake and plans
have said about the case (``CaseFacts``) come in through ``Context``, so the same
inputs always give the same answer. ``phases`` says which children move phase when.
"""

from placement.domain.commands import (
    AnswerConsultation,
    Command,
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
from placement.domain.decide import decide
from placement.domain.errors import (
    CaseNotFound,
    ConsultationNotFound,
    ImpossibleTransition,
    InvalidCommand,
    NotFound,
    NotListed,
    PanelNotFound,
    PlacementError,
)
from placement.domain.facts import CaseFacts, PlanStatus, observe
from placement.domain.model import Case, evolve, fold

__all__ = [
    "AnswerConsultation",
    "Case",
    "CaseFacts",
    "CaseNotFound",
    "Command",
    "CommunicateDecision",
    "ConsultSetting",
    "ConsultationNotFound",
    "Context",
    "DecidePanel",
    "DecideTransport",
    "ImpossibleTransition",
    "InvalidCommand",
    "ListForPanel",
    "NotFound",
    "NotListed",
    "OptionInput",
    "PanelNotFound",
    "PlacementError",
    "PlanStatus",
    "PrepareSubmission",
    "ProposePost16Move",
    "RecordTransferDue",
    "ReferTransport",
    "RequestSetting",
    "decide",
    "evolve",
    "fold",
    "observe",
]
