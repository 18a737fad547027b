"""Helpers shared by the reviews tests: the fixed clock, a case with a plan, bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from reviews.application.service import ReviewsService
from reviews.domain import EndReviewCycle, FollowCoordinator, StartReviewCycle

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
"""The fixed "now" of every reviews test: Friday 20 March 2026, noon in London."""
TODAY = date(2026, 3, 20)
PLAN_ISSUED = date(2025, 3, 10)
SETTING = 123456
OTHER_SETTING = 654321


class FixedClock:
    """A clock that says what the test tells it to."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def new_case_id() -> str:
    return str(uuid.uuid4())


def issue_plan(
    service: ReviewsService,
    case_id: str | None = None,
    *,
    issued_on: date = PLAN_ISSUED,
    setting_urn: int | None = SETTING,
) -> str:
    """Record, as the plans subscriber would, that the case's final plan was issued."""
    case_id = case_id or new_case_id()
    with service.store.transaction() as tx:
        service.apply(StartReviewCycle(case_id, issued_on, setting_urn), tx, "corr-t")
    return case_id


def end_plan(
    service: ReviewsService, case_id: str, ended_on: date, reason: str = "plan_ceased"
) -> None:
    with service.store.transaction() as tx:
        service.apply(EndReviewCycle(case_id, ended_on, reason), tx, "corr-t")


def assign_coordinator(service: ReviewsService, case_id: str, coordinator: str) -> None:
    with service.store.transaction() as tx:
        service.apply(FollowCoordinator(case_id, coordinator), tx, "corr-t")


def arrange_body(**changes: Any) -> dict[str, Any]:
    """A valid body of POST /cases/{id}/reviews, with ``changes`` (None removes)."""
    body: dict[str, Any] = {
        "meeting_on": "2026-03-04",
        "arranged_on": "2026-01-12",
        "invitee_roles": ["parent", "senco", "ehc_coordinator", "health"],
        "note": "Synthetic note: room booked in the library",
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


HELD_BODY: dict[str, Any] = {
    "held_on": "2026-03-04",
    "attendee_roles": ["parent", "senco", "child"],
    "child_views_gathered": True,
    "recommendations": "Synthetic recommendation: add speech therapy to section F",
}
AMEND_BODY: dict[str, Any] = {
    "decision": "amend",
    "notified_on": "2026-03-18",
    "proposed_amendments": "Synthetic amendment: weekly speech and language sessions",
}
