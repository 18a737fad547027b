"""The review lists, kept by catching up with the event store.

``ReviewIndex`` folds every reviews event, in global position order, into one ``Case``
per case id, and remembers the last position it applied. Each query first reads
whatever was committed after that position, so a list is never older than the last
command or reaction this process or any other recorded. The index lives in memory and
is rebuilt from position 0 when the process starts, which takes seconds for a county's
tens of thousands of events; a persisted index would be needed for a national store.

The upcoming reviews of a school are the cases whose plan names that school (the
setting of the issued plan, or of the latest amendment naming one) and whose next
review falls due in the window asked for: the list a SENCO must receive before the
term starts. Those of a coordinator are the cases intake last assigned to them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from reviews.domain import Case, PlanStatus, Review, evolve
from sendkit.calendar import act_by
from sendkit.store.base import EventStore


@dataclass(frozen=True, slots=True)
class UpcomingReview:
    """One case's next review: when it is due, and the meeting arranged, if any."""

    case_id: str
    due_on: date
    act_by: date | None
    """The working day to act by when ``due_on`` is a weekend or bank holiday."""
    based_on: str
    """``plan_issued`` or ``review_held``: what the 12 months start with."""
    base_on: date
    setting_urn: int | None
    coordinator_id: str | None
    review: Review | None
    """The review arranged for this due date (not yet held), if there is one."""
    listed_on: date | None
    """When this review was last on a list sent to the setting's SENCO."""

    @classmethod
    def of(cls, case: Case) -> UpcomingReview | None:
        due_on = case.next_review_due_on
        base_on = case.next_review_base
        if due_on is None or base_on is None:
            return None
        return cls(
            case_id=case.case_id,
            due_on=due_on,
            act_by=act_by(due_on),
            based_on="plan_issued"
            if case.last_review_held_on is None
            else "review_held",
            base_on=base_on,
            setting_urn=case.setting_urn,
            coordinator_id=case.coordinator_id,
            review=_arranged_not_held(case),
            listed_on=case.list_sent.sent_on
            if case.list_sent is not None and case.list_sent.review_due_on == due_on
            else None,
        )


def _arranged_not_held(case: Case) -> Review | None:
    # A review held but not yet decided belongs to the 12 months it ended.
    review = case.review_in_progress
    return review if review is not None and review.held_on is None else None


class ReviewIndex:
    """Every case's review cycle, caught up from ``store.iter_all`` on demand."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._cases: dict[str, Case] = {}
        self._position = 0
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        """The global position of the last event applied."""
        return self._position

    def catch_up(self) -> int:
        """Apply every event committed since the checkpoint; return the new position."""
        with self._lock:
            for event in self._store.iter_all(after=self._position):
                case = self._cases.get(event.stream_id) or Case(case_id=event.stream_id)
                self._cases[event.stream_id] = evolve(case, event)
                self._position = event.position
            return self._position

    def _matching(self, wanted: Callable[[Case], bool]) -> list[Case]:
        self.catch_up()
        with self._lock:
            return [case for case in self._cases.values() if wanted(case)]

    def upcoming(
        self,
        first: date,
        last: date,
        *,
        setting_urn: int | None = None,
        coordinator_id: str | None = None,
        include_overdue: bool = False,
    ) -> list[UpcomingReview]:
        """Next reviews due from ``first`` to ``last`` (both included), soonest first.

        With ``include_overdue``, reviews that fell due before ``first`` and have not
        been held are listed too.
        """

        def wanted(case: Case) -> bool:
            return (
                case.plan_status is PlanStatus.ACTIVE
                and (setting_urn is None or case.setting_urn == setting_urn)
                and (coordinator_id is None or case.coordinator_id == coordinator_id)
            )

        found = []
        for case in self._matching(wanted):
            upcoming = UpcomingReview.of(case)
            if upcoming is None or upcoming.due_on > last:
                continue
            if upcoming.due_on >= first or include_overdue:
                found.append(upcoming)
        found.sort(key=lambda row: (row.due_on, row.case_id))
        return found
