"""The plans service's errors: one root, and a kind for each way a command fails.

The HTTP entry point maps each kind to a status in one place: ``InvalidCommand`` 422,
``CaseNotFound`` and ``AdviceNotFound`` 404, ``ImpossibleTransition`` 409, and its
``CommentWindowOpen`` 409 under a problem type of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date


class PlansError(Exception):
    """Root of every error the plans service raises on purpose."""


class InvalidCommand(PlansError):
    """A command with values the case cannot accept; ``field_errors`` names each one."""

    def __init__(self, field_errors: Sequence[tuple[str, str]]) -> None:
        self.field_errors: tuple[tuple[str, str], ...] = tuple(field_errors)
        named = "; ".join(f"{field} {message}" for field, message in self.field_errors)
        super().__init__(f"the command has invalid values: {named}")


class CaseNotFound(PlansError):
    """Plans holds no case under this id: no assessment was opened, no plan came in."""

    def __init__(self, case_id: str) -> None:
        super().__init__(
            f"plans has no case {case_id}: a case opens here when intake's agreement "
            "to assess it arrives (moments after intake records the decision), or "
            "when a plan is transferred in; check the id, or retry shortly if the "
            "assessment was only just agreed"
        )
        self.case_id = case_id


class AdviceNotFound(PlansError):
    """The case has no request for advice under this id."""

    def __init__(self, case_id: str, advice_id: str) -> None:
        super().__init__(
            f"case {case_id} has no request for advice {advice_id}: use the advice_id "
            "returned when the advice was requested"
        )
        self.case_id = case_id
        self.advice_id = advice_id


class ImpossibleTransition(PlansError):
    """The case is in a state where this command cannot apply; nothing was written."""


class CommentWindowOpen(ImpossibleTransition):
    """A final plan dated inside the draft's comment window, without written consent."""

    def __init__(
        self, case_id: str, served_on: date, window_ends_on: date, issued_on: date
    ) -> None:
        earliest = date.fromordinal(window_ends_on.toordinal() + 1)
        message = (
            f"is inside the comment window of the draft served on {served_on}, which "
            f"runs until {window_ends_on}: issue the final plan on or after "
            f"{earliest}, or first record the parent's or young person's written "
            "agreement to an earlier final plan with their comments"
        )
        super().__init__(f"case {case_id}: issued_on {issued_on} {message}")
        self.field_errors = (("issued_on", message),)
        self.case_id = case_id
        self.window_ends_on = window_ends_on
