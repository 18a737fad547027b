"""Helpers shared by the intake tests: the fixed clock and a valid request body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
"""The fixed "now" of every intake test: Monday 10 March 2025, noon in London."""


class FixedClock:
    """A clock that says what the test tells it to."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def request_body(**changes: Any) -> dict[str, Any]:
    """A valid JSON body of POST /cases, with ``changes`` applied (None removes)."""
    body: dict[str, Any] = {
        "requester_type": "parent",
        "child_reference": "CHILD-0001",
        "date_of_birth": "2016-05-14",
        "school_urn": 123456,
        "curriculum_year": 3,
        "channel": "email",
        "received_at": "2025-01-06T09:30:00Z",
        "child_name": "Sam Example",
        "requester_name": "Alex Example",
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body
