"""The intake domain: the state of a case, the commands, and pure decide and evolve.

Nothing here does input or output. ``decide(case, command, context)`` returns the events
a command causes, or raises an ``IntakeError``; ``evolve(case, event)`` folds one
recorded event into the case. The time and who is acting come in through ``Context``,
so the same inputs always give the same answer.
"""

from intake.domain.commands import (
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
from intake.domain.decide import decide
from intake.domain.errors import (
    CaseNotFound,
    CoordinatorChanged,
    ImpossibleTransition,
    IntakeError,
    InvalidCommand,
)
from intake.domain.model import Case, Status, evolve, fold

__all__ = [
    "AssignCoordinator",
    "Case",
    "CaseNotFound",
    "Command",
    "Context",
    "CoordinatorChanged",
    "CorrectRequest",
    "ImpossibleTransition",
    "IntakeError",
    "InvalidCommand",
    "ReceiveRequest",
    "RecordDecision",
    "RecordSurgeryPresentation",
    "RecordTimeLimitException",
    "Status",
    "WithdrawRequest",
    "decide",
    "evolve",
    "fold",
]
