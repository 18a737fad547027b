"""The intake service's errors: one root, and a kind for each way a command fails.

The HTTP entry point maps each kind to a status in one place: ``InvalidCommand`` 422,
``CaseNotFound`` 404, ``ImpossibleTransition`` 409.
"""

from __future__ import annotations

from collections.abc import Sequence


class IntakeError(Exception):
    """Root of every error the intake service raises on purpose."""


class InvalidCommand(IntakeError):
    """A command with values no case could accept; ``field_errors`` names each one."""

    def __init__(self, field_errors: Sequence[tuple[str, str]]) -> None:
        self.field_errors: tuple[tuple[str, str], ...] = tuple(field_errors)
        named = "; ".join(f"{field} {message}" for field, message in self.field_errors)
        super().__init__(f"the command has invalid values: {named}")


class CaseNotFound(IntakeError):
    """No request was ever received under this case id."""

    def __init__(self, case_id: str) -> None:
        super().__init__(
            f"there is no case {case_id}: check the id returned when the request "
            "was received"
        )
        self.case_id = case_id


class ImpossibleTransition(IntakeError):
    """The case is in a state where this command cannot apply; nothing was written."""


class CoordinatorChanged(ImpossibleTransition):
    """A move of one coordinator's cases met a case that is no longer theirs."""
