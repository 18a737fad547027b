"""The placement service's errors: one root, and a kind for each way a command fails.

The HTTP entry point maps each kind to a status in one place: ``InvalidCommand`` 422,
the ``NotFound`` kinds 404 (case, consultation, panel, a case's place on a panel),
``ImpossibleTransition`` 409.
"""

from __future__ import annotations

from collections.abc import Sequence


class PlacementError(Exception):
    """Root of every error the placement service raises on purpose."""


class InvalidCommand(PlacementError):
    """A command with values the case cannot accept; ``field_errors`` names each one."""

    def __init__(self, field_errors: Sequence[tuple[str, str]]) -> None:
        self.field_errors: tuple[tuple[str, str], ...] = tuple(field_errors)
        named = "; ".join(f"{field} {message}" for field, message in self.field_errors)
        super().__init__(f"the command has invalid values: {named}")


class NotFound(PlacementError):
    """Something the command names does not exist; nothing was written."""


class CaseNotFound(NotFound):
    """Placement knows no case under this id, from intake, plans or its own events."""

    def __init__(self, case_id: str) -> None:
        super().__init__(
            f"placement knows no case {case_id}: a case becomes known here when "
            "intake's request or a plan for it arrives (moments after it is "
            "recorded); check the id, or retry shortly if the request is new"
        )
        self.case_id = case_id


class ConsultationNotFound(NotFound):
    """The case has no consultation under this id."""

    def __init__(self, case_id: str, consultation_id: str) -> None:
        super().__init__(
            f"case {case_id} has no consultation {consultation_id}: use the "
            "consultation_id returned when the setting was consulted"
        )
        self.case_id = case_id
        self.consultation_id = consultation_id


class PanelNotFound(NotFound):
    """No panel was ever scheduled under this id."""

    def __init__(self, panel_id: str) -> None:
        super().__init__(
            f"there is no panel {panel_id}: use the panel_id returned when the panel "
            "was scheduled"
        )
        self.panel_id = panel_id


class NotListed(NotFound):
    """The case is not on the agenda of this panel."""

    def __init__(self, case_id: str, panel_id: str) -> None:
        super().__init__(
            f"case {case_id} is not listed for panel {panel_id}: list it for the panel "
            "first, or use the panel the case was listed for"
        )
        self.case_id = case_id
        self.panel_id = panel_id


class ImpossibleTransition(PlacementError):
    """The case is in a state where this command cannot apply; nothing was written."""
