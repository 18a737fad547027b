"""The list of cases, kept by catching up with the event store.

``CaseIndex`` folds every intake event, in global position order, into one ``Case``
per case id, and remembers the last position it applied (its checkpoint). Each query
first reads whatever was committed after that position, so a list is never older than
the last command this process or any other answered. The index lives in memory and is
rebuilt from position 0 when the process starts, which takes seconds for a county's
tens of thousands of events; a persisted index would be needed for a national store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from intake.domain.model import Case, Status, evolve
from sendkit.store.base import EventStore

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """One row of a case list: the facts staff filter and sort by, no personal data."""

    case_id: str
    status: Status
    received_at: datetime
    school_urn: int
    curriculum_year: int
    requester_type: str
    channel: str
    coordinator_id: str | None
    notified_on: date | None
    presented_on: date | None
    version: int

    @classmethod
    def of(cls, case: Case) -> CaseSummary:
        assert case.status is not None
        assert case.received_at is not None
        assert case.school_urn is not None
        assert case.curriculum_year is not None
        return cls(
            case_id=case.case_id,
            status=case.status,
            received_at=case.received_at,
            school_urn=case.school_urn,
            curriculum_year=case.curriculum_year,
            requester_type=case.requester_type or "",
            channel=case.channel or "",
            coordinator_id=case.coordinator_id,
            notified_on=case.notified_on,
            presented_on=case.presented_on,
            version=case.version,
        )


class CaseIndex:
    """Every case's current state, caught up from ``store.read_all`` on demand."""

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

    def cases(
        self,
        *,
        coordinator_id: str | None = None,
        school_urn: int | None = None,
        statuses: Iterable[Status] | None = None,
    ) -> list[CaseSummary]:
        """The cases matching every filter given, oldest request first."""
        self.catch_up()
        wanted = frozenset(statuses) if statuses is not None else None
        with self._lock:
            found = [
                case
                for case in self._cases.values()
                if case.exists
                and (coordinator_id is None or case.coordinator_id == coordinator_id)
                and (school_urn is None or case.school_urn == school_urn)
                and (wanted is None or case.status in wanted)
            ]
        summaries = [CaseSummary.of(case) for case in found]
        summaries.sort(key=lambda summary: (summary.received_at, summary.case_id))
        return summaries
