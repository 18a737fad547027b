"""The errors of the deadlines domain, under one root.

``UnusableEvent`` is raised for an input event the rules cannot read (a missing or
malformed date, a naive timestamp, a date, timestamp or year outside the calendar's
supported range, an exception reason that does not apply to the named clock); the case
state is left unchanged, so the caller can dead-letter the message and go on.
``RulesError`` means the rules table or the council configuration is wrong, which is a
defect to fix before start-up, not a property of any one event.
"""

from __future__ import annotations


class DeadlinesError(Exception):
    """Root of the deadlines service's errors."""


class RulesError(DeadlinesError):
    """The rules table or the council configuration is inconsistent."""


class UnusableEvent(DeadlinesError):
    """An input event cannot be used by the rules; its message says what to fix."""

    def __init__(self, event_id: str, event_type: str, problem: str) -> None:
        super().__init__(f"event {event_id} ({event_type}): {problem}")
        self.event_id = event_id
        self.event_type = event_type
        self.problem = problem
