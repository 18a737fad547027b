"""The reviews service's errors: one root, and a kind for each way a command fails.

The HTTP entry point maps each kind to a status in one place: ``InvalidCommand`` and
``InvalidQuery`` 422, ``CaseNotFound`` and ``ReviewNotFound`` 404,
``ImpossibleTransition`` (and its kinds) 409.
"""

from __future__ import annotations

from collections.abc import Sequence


class ReviewsError(Exception):
    """Root of every error the reviews service raises on purpose."""


class _FieldErrors(ReviewsError):
    def __init__(self, field_errors: Sequence[tuple[str, str]], what: str) -> None:
        self.field_errors: tuple[tuple[str, str], ...] = tuple(field_errors)
        named = "; ".join(f"{field} {message}" for field, message in self.field_errors)
        super().__init__(f"the {what} has invalid values: {named}")


class InvalidCommand(_FieldErrors):
    """A command with values no case could accept; ``field_errors`` names each one."""

    def __init__(self, field_errors: Sequence[tuple[str, str]]) -> None:
        super().__init__(field_errors, "command")


class InvalidQuery(_FieldErrors):
    """A query whose parameters cannot be answered; ``field_errors`` names each one."""

    def __init__(self, field_errors: Sequence[tuple[str, str]]) -> None:
        super().__init__(field_errors, "query")


class CaseNotFound(ReviewsError):
    """The reviews service has heard nothing of this case."""

    def __init__(self, case_id: str) -> None:
        super().__init__(
            f"the reviews service knows no case {case_id}: a case appears here when "
            "its final plan is issued (or its coordinator assigned); check the id"
        )
        self.case_id = case_id


class ReviewNotFound(ReviewsError):
    """No review with this id was arranged for the case."""

    def __init__(self, case_id: str, review_id: str) -> None:
        super().__init__(
            f"case {case_id} has no review {review_id}: use the review_id returned "
            "when the review was arranged"
        )
        self.case_id = case_id
        self.review_id = review_id


class ImpossibleTransition(ReviewsError):
    """The case is in a state where this command cannot apply; nothing was written."""


class NoActivePlan(ImpossibleTransition):
    """The case has no issued plan, or its plan has ceased or moved away."""


class ReviewInProgress(ImpossibleTransition):
    """Another review of the case is arranged and not yet decided."""


class NotYetHeld(ImpossibleTransition):
    """The review meeting has not been recorded as held, so this cannot follow it."""


class AlreadyRecorded(ImpossibleTransition):
    """This fact of the review is recorded already; each is recorded once."""
