"""Scheduled sends: each person's daily digest and each SENCO's termly list.

``Scheduler.run`` is called by the delivery thread between passes (and once by
``python -m notify deliver``); each run records what has fallen due since the last,
so a worker that was down catches up when it starts. Both kinds are idempotent: a
digest's id is derived from the person and the day, a list's from the term, the
school and the SENCO, and the ledger records an id once.

- **Digests.** At ``digest_time`` London time (07:30 by default) the alerts held for
  each person's digest of that day are gathered into one email, soonest due first.
  An alert raised after the digest of its day was gathered waits for the next day's.
- **Termly lists.** From ``lead`` working days before a term starts until the day
  before, each SENCO of a school with annual reviews due in that term receives the
  list of them: case references, due dates, meeting dates if arranged. The reviews
  are the open ``annual_review`` clocks the deadlines service published (their due
  dates are derived there, from the reviews service's facts), at the school the plan
  names (the reviews service's events) or, failing that, the school the request
  named (intake's). A school with reviews due and no SENCO in the directory gets a
  ``NotificationFailed`` (``no_recipient``) per review, once per term.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from notify.application.ports import (
    AlertRecord,
    NotifyDatabase,
    NotifyTransaction,
    ReviewDue,
    TransactionDirectory,
)
from notify.application.records import (
    Routing,
    digest_alert,
    failed_event,
    record_event,
    review_list_alerts,
)
from notify.domain.alerts import AlertKind, Channel, RecipientRole, derived_id
from notify.domain.delivery import AlertStatus, FailureKind
from notify.domain.messages import ReviewLine
from notify.domain.preferences import DEFAULT_DIGEST_TIME, digest_due
from notify.domain.terms import Term, term_to_list
from sendkit.calendar import london_date
from sendkit.events import utcnow

log = logging.getLogger(__name__)

DEFAULT_LIST_LEAD_WORKING_DAYS = 10


@dataclass(frozen=True, slots=True)
class ScheduleReport:
    """What one run recorded: digests and lists (messages), alerts carried."""

    digests: int = 0
    digest_alerts: int = 0
    review_lists: int = 0
    listed_reviews: int = 0
    unlisted_reviews: int = 0


class Scheduler:
    """Records the digests and termly lists that have fallen due."""

    def __init__(
        self,
        db: NotifyDatabase,
        *,
        routing: Routing | None = None,
        digest_time: time = DEFAULT_DIGEST_TIME,
        terms: Sequence[Term] = (),
        list_lead_working_days: int = DEFAULT_LIST_LEAD_WORKING_DAYS,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._routing = routing or Routing()
        self._digest_time = digest_time
        self._terms = tuple(terms)
        self._lead = list_lead_working_days
        self._now = now

    def run(self) -> ScheduleReport:
        now = self._now()
        digests, carried = self.gather_digests(now)
        lists, listed, unlisted = self.make_review_lists(now)
        if digests or lists or unlisted:
            log.info(
                "scheduled sends recorded",
                extra={
                    "digests": digests,
                    "digest_alerts": carried,
                    "review_lists": lists,
                    "listed_reviews": listed,
                    "unlisted_reviews": unlisted,
                },
            )
        return ScheduleReport(digests, carried, lists, listed, unlisted)

    # Digests --------------------------------------------------------------------------

    def _last_digest_day(self, now: datetime) -> date:
        today = london_date(now)
        if now >= digest_due(today, self._digest_time):
            return today
        return today - timedelta(days=1)

    def gather_digests(self, now: datetime) -> tuple[int, int]:
        """Gather every held alert whose digest is due; (digests, alerts) recorded."""
        last_day = self._last_digest_day(now)
        digests = carried = 0
        with self._db.transaction() as tx:
            groups: dict[tuple[str, date], list[AlertRecord]] = defaultdict(list)
            for alert in tx.held_alerts(last_day):
                if alert.staff_id is not None and alert.digest_on is not None:
                    groups[(alert.staff_id, alert.digest_on)].append(alert)
            for (staff_id, day), items in sorted(groups.items()):
                made = self._digest(tx, staff_id, day, items, now)
                if made:
                    digests += 1
                    carried += len(items)
        return digests, carried

    def _digest(
        self,
        tx: NotifyTransaction,
        staff_id: str,
        day: date,
        items: list[AlertRecord],
        now: datetime,
    ) -> bool:
        member = TransactionDirectory(tx).get(staff_id)
        if member is None:
            # Left the directory while their alerts waited: send each to the address
            # it was raised for, rather than lose it.
            for item in items:
                tx.save_alert(
                    item.evolve(
                        status=AlertStatus.PENDING, next_attempt_at=now, updated_at=now
                    )
                )
            return False
        digest = digest_alert(member, day, items, now=now, routing=self._routing)
        if not tx.add_alert(digest):
            # That day's digest was gathered already (these were raised while it
            # was): they go in the next one.
            for item in items:
                tx.save_alert(
                    item.evolve(digest_on=day + timedelta(days=1), updated_at=now)
                )
            return False
        for item in items:
            tx.save_alert(
                item.evolve(
                    status=AlertStatus.BUNDLED,
                    bundle_id=digest.alert_id,
                    updated_at=now,
                )
            )
        return True

    # Termly SENCO lists ---------------------------------------------------------------

    def make_review_lists(self, now: datetime) -> tuple[int, int, int]:
        """Record the lists of the term whose lists are due; (lists, reviews on them,
        reviews with no SENCO to list them for)."""
        today = london_date(now)
        term = term_to_list(self._terms, today, self._lead)
        if term is None:
            return 0, 0, 0
        lists = listed = unlisted = 0
        with self._db.transaction() as tx:
            by_school: dict[int, list[ReviewDue]] = defaultdict(list)
            for due in tx.reviews_due(term.starts_on, term.ends_on):
                if due.school_urn is not None:
                    by_school[due.school_urn].append(due)
            directory = TransactionDirectory(tx)
            for urn, dues in sorted(by_school.items()):
                sencos = directory.sencos_at(urn)
                if not sencos:
                    unlisted += self._no_senco(tx, term, urn, dues, now)
                    continue
                lines = _lines(dues)
                for senco in sencos:
                    message, items = review_list_alerts(
                        senco,
                        term_starts_on=term.starts_on,
                        term_ends_on=term.ends_on,
                        school_urn=urn,
                        reviews=lines,
                        now=now,
                        routing=self._routing,
                    )
                    if not tx.add_alert(message):
                        continue
                    for item in items:
                        tx.add_alert(item)
                    lists += 1
                    listed += len(items)
        return lists, listed, unlisted

    @staticmethod
    def _no_senco(
        tx: NotifyTransaction,
        term: Term,
        urn: int,
        dues: list[ReviewDue],
        now: datetime,
    ) -> int:
        source = f"review-list/{term.starts_on.isoformat()}/{urn}/-"
        recorded = 0
        for due in dues:
            alert = AlertRecord(
                alert_id=derived_id(source, due.case_id),
                source_event_id=source,
                case_id=due.case_id,
                kind=AlertKind.REVIEW_LIST,
                channel=Channel.EMAIL,
                role=RecipientRole.SENCO,
                staff_id=None,
                address=None,
                subject="",
                body="",
                notice={
                    "kind": AlertKind.REVIEW_LIST.value,
                    "clock_id": due.clock_id,
                    "due_on": due.due_on.isoformat(),
                    "term_starts_on": term.starts_on.isoformat(),
                },
                correlation_id=derived_id(source),
                created_at=now,
                status=AlertStatus.FAILED,
                last_error=f"no SENCO of school {urn} is in the staff directory",
                updated_at=now,
            )
            if tx.add_alert(alert):
                record_event(
                    tx,
                    due.case_id,
                    failed_event(
                        alert,
                        FailureKind.NO_RECIPIENT,
                        f"no SENCO of school {urn} is in the staff directory: add "
                        "one with role senco and that school_urn",
                        None,
                    ),
                )
                recorded += 1
        if recorded:
            log.error(
                "termly review list has nobody to go to",
                extra={"school_urn": urn, "reviews": recorded},
            )
        return recorded


def _lines(dues: list[ReviewDue]) -> list[ReviewLine]:
    # A case has one open annual review clock at a time; keep the earliest if not.
    first: dict[str, ReviewDue] = {}
    for due in sorted(dues, key=lambda d: (d.due_on, d.clock_id)):
        first.setdefault(due.case_id, due)
    return [
        ReviewLine(
            case_id=due.case_id,
            due_on=due.due_on,
            legal_basis=due.legal_basis,
            meeting_on=due.meeting_on,
        )
        for due in first.values()
    ]
