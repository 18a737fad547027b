"""Notify's database held in memory, for unit tests.

It keeps the same promises as the SQLite adapter, and the same behaviour suite runs
against both: one writer at a time, and all-or-nothing transactions (the ledger's
tables are restored, and the event store's transaction is not committed, when the
block raises). Nothing survives the process.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from notify.adapters.sqlite_db import NOTIFY_SOURCE
from notify.application.ports import (
    AlertRecord,
    HeldNotice,
    NotifyDatabase,
    NotifyTransaction,
    ReviewDue,
)
from notify.domain.delivery import AlertStatus
from notify.domain.directory import StaffMember
from notify.domain.preferences import Preferences
from notify.errors import LedgerError
from sendkit.store.base import Transaction
from sendkit.store.memory import InMemoryEventStore

_LIVE = (AlertStatus.PENDING, AlertStatus.SENDING)


@dataclass
class _CaseSchool:
    request_school_urn: int | None = None
    setting_urn: int | None = None
    meeting_on: date | None = None


@dataclass
class _Tables:
    alerts: dict[str, AlertRecord] = field(default_factory=dict)
    coordinators: dict[str, str | None] = field(default_factory=dict)
    held: dict[str, HeldNotice] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    staff: dict[str, StaffMember] = field(default_factory=dict)
    preferences: dict[str, Preferences] = field(default_factory=dict)
    schools: dict[str, _CaseSchool] = field(default_factory=dict)
    reviews: dict[tuple[str, str], ReviewDue] = field(default_factory=dict)


class _MemoryNotifyTransaction(NotifyTransaction):
    def __init__(self, events: Transaction, tables: _Tables) -> None:
        self._events = events
        self._t = tables

    @property
    def events(self) -> Transaction:
        return self._events

    def get_meta(self, key: str) -> str | None:
        return self._t.meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._t.meta[key] = value

    def get_staff(self, staff_id: str) -> StaffMember | None:
        return self._t.staff.get(staff_id)

    def put_staff(self, member: StaffMember) -> bool:
        new = member.staff_id not in self._t.staff
        self._t.staff[member.staff_id] = member
        return new

    def delete_staff(self, staff_id: str) -> bool:
        self._t.preferences.pop(staff_id, None)
        return self._t.staff.pop(staff_id, None) is not None

    def list_staff(
        self, *, role: str | None = None, school_urn: int | None = None
    ) -> list[StaffMember]:
        return [
            m
            for _, m in sorted(self._t.staff.items())
            if (role is None or m.role == role)
            and (school_urn is None or m.school_urn == school_urn)
        ]

    def managed_by(self, manager_id: str) -> list[str]:
        return sorted(
            m.staff_id for m in self._t.staff.values() if m.manager_id == manager_id
        )

    def get_preferences(self, staff_id: str) -> Preferences | None:
        return self._t.preferences.get(staff_id)

    def put_preferences(self, staff_id: str, preferences: Preferences) -> None:
        self._t.preferences[staff_id] = preferences

    def set_request_school(self, case_id: str, school_urn: int) -> None:
        self._t.schools.setdefault(
            case_id, _CaseSchool()
        ).request_school_urn = school_urn

    def set_setting(self, case_id: str, school_urn: int) -> None:
        self._t.schools.setdefault(case_id, _CaseSchool()).setting_urn = school_urn

    def school_of(self, case_id: str) -> int | None:
        found = self._t.schools.get(case_id)
        if found is None:
            return None
        if found.setting_urn is not None:
            return found.setting_urn
        return found.request_school_urn

    def set_meeting(self, case_id: str, meeting_on: date | None) -> None:
        self._t.schools.setdefault(case_id, _CaseSchool()).meeting_on = meeting_on

    def open_review(self, due: ReviewDue) -> None:
        self._t.reviews[(due.case_id, due.clock_id)] = due

    def close_review(self, case_id: str, clock_id: str) -> None:
        self._t.reviews.pop((case_id, clock_id), None)

    def reviews_due(self, first: date, last: date) -> list[ReviewDue]:
        found = []
        for due in self._t.reviews.values():
            if not first <= due.due_on <= last:
                continue
            school = self._t.schools.get(due.case_id)
            found.append(
                ReviewDue(
                    case_id=due.case_id,
                    clock_id=due.clock_id,
                    due_on=due.due_on,
                    legal_basis=due.legal_basis,
                    school_urn=self.school_of(due.case_id),
                    meeting_on=school.meeting_on if school else None,
                )
            )
        return sorted(
            found,
            key=lambda d: (d.school_urn or 0, d.due_on, d.case_id, d.clock_id),
        )

    def set_coordinator(self, case_id: str, coordinator_id: str | None) -> None:
        self._t.coordinators[case_id] = coordinator_id

    def coordinator_of(self, case_id: str) -> str | None:
        return self._t.coordinators.get(case_id)

    def hold(self, held: HeldNotice) -> None:
        self._t.held.setdefault(held.notice.event_id, held)

    def take_held(self, case_id: str) -> list[HeldNotice]:
        taken = [h for h in self._t.held.values() if h.notice.case_id == case_id]
        for held in taken:
            del self._t.held[held.notice.event_id]
        return taken

    def drop_held(self, event_id: str) -> bool:
        return self._t.held.pop(event_id, None) is not None

    def add_alert(self, alert: AlertRecord) -> bool:
        if alert.alert_id in self._t.alerts:
            return False
        self._t.alerts[alert.alert_id] = copy.deepcopy(alert)
        return True

    def save_alert(self, alert: AlertRecord) -> None:
        if alert.alert_id not in self._t.alerts:
            raise LedgerError(
                f"alert {alert.alert_id} is not in the ledger: record it with "
                "add_alert before saving a new state"
            )
        self._t.alerts[alert.alert_id] = copy.deepcopy(alert)

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        alert = self._t.alerts.get(alert_id)
        return copy.deepcopy(alert)

    def alerts_from(self, source_event_id: str) -> list[AlertRecord]:
        return [
            copy.deepcopy(a)
            for a in self._t.alerts.values()
            if a.source_event_id == source_event_id
        ]

    def due_alerts(self, now: datetime, limit: int) -> list[AlertRecord]:
        order = {alert_id: i for i, alert_id in enumerate(self._t.alerts)}
        due = [
            a
            for a in self._t.alerts.values()
            if a.status in _LIVE
            and a.next_attempt_at is not None
            and a.next_attempt_at <= now
        ]
        due.sort(key=lambda a: (a.next_attempt_at or now, order[a.alert_id]))
        return [copy.deepcopy(a) for a in due[:limit]]

    def next_attempt_at(self) -> datetime | None:
        times = [
            a.next_attempt_at
            for a in self._t.alerts.values()
            if a.status in _LIVE and a.next_attempt_at is not None
        ]
        return min(times, default=None)

    def claimed_alerts(self) -> list[AlertRecord]:
        return [
            copy.deepcopy(a)
            for a in self._t.alerts.values()
            if a.status is AlertStatus.SENDING
        ]

    def held_alerts(self, up_to: date) -> list[AlertRecord]:
        return [
            copy.deepcopy(a)
            for a in self._t.alerts.values()
            if a.status is AlertStatus.HELD
            and a.digest_on is not None
            and a.digest_on <= up_to
        ]

    def bundle_items(self, bundle_id: str) -> list[AlertRecord]:
        return [
            copy.deepcopy(a)
            for a in self._t.alerts.values()
            if a.bundle_id == bundle_id
        ]

    def alert_by_provider_id(self, provider_id: str) -> AlertRecord | None:
        for alert in self._t.alerts.values():
            if alert.provider_id == provider_id:
                return copy.deepcopy(alert)
        return None

    def count_by_status(self) -> dict[AlertStatus, int]:
        counts: dict[AlertStatus, int] = {}
        for alert in self._t.alerts.values():
            counts[alert.status] = counts.get(alert.status, 0) + 1
        return counts


class InMemoryNotifyDatabase(NotifyDatabase):
    """Notify's ledger, read model and event store in process memory."""

    def __init__(self, source: str = NOTIFY_SOURCE) -> None:
        self.store = InMemoryEventStore(source)
        self._tables = _Tables()
        self._writer = threading.RLock()

    @contextmanager
    def _open(self) -> Iterator[NotifyTransaction]:
        with self._writer:
            working = copy.deepcopy(self._tables)
            with self.store.transaction() as events:
                yield _MemoryNotifyTransaction(events, working)
            self._tables = working

    def transaction(self) -> AbstractContextManager[NotifyTransaction]:
        return self._open()

    def close(self) -> None:
        """Nothing to release."""
