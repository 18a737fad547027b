"""Daily digests, termly SENCO lists and the SENCO's review alerts, over real SMTP.

The ledger is a real SQLite file or PostgreSQL database, the mail server is the devstack
mail catcher, and the clock is the test's: the scheduler runs when the test says, at the
times it says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from notify_factories import (
    COORDINATOR,
    MANAGER,
    SCHOOL_URN,
    SENCO,
    FakeClock,
    approaching,
    clock_event,
    coordinator_assigned,
    new_case,
    overdue,
    request_received,
    review_approaching,
    review_arranged,
    review_cycle_started,
    seed,
    withdrawn,
)
from notify_servers import LINK_BASE, text_of, wired

from devstack.smtp import MailCatcher
from notify.bootstrap import NotifyRuntime
from notify.domain.delivery import AlertStatus
from notify.domain.directory import StaffMember
from notify.domain.preferences import Preferences

DIGEST = Preferences(daily_digest=True)
SPRING_TERM = "2026-01-05/2026-03-27"


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


def events(runtime: NotifyRuntime, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    with runtime.db.transaction() as tx:
        return [(e.type.split(".")[2], e.data) for e in tx.events.read_stream(case_id)]


def assigned(runtime: NotifyRuntime, school: int | None = SCHOOL_URN) -> str:
    case = new_case()
    runtime.handlers.handle_intake_event(
        coordinator_assigned(case, COORDINATOR.staff_id)
    )
    if school is not None:
        runtime.handlers.handle_intake_event(request_received(case, school))
    return case


def unfolded(subject: str) -> str:
    return " ".join(subject.split())


def test_a_day_of_approaching_alerts_is_one_email(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher, clock: FakeClock
) -> None:
    # Monday 10 February 2025, 09:00 in London.
    with wired(tmp_path, catcher, None, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: DIGEST})
        cases = [assigned(runtime) for _ in range(3)]
        for day, case in zip((19, 17, 18), cases, strict=True):
            runtime.handlers.handle_deadlines_event(
                approaching(case, due_on=date(2025, 2, day))
            )

        # Nothing goes yet; an overdue alert still goes at once.
        assert runtime.delivery.deliver_due().attempted == 0
        runtime.handlers.handle_deadlines_event(overdue(cases[0]))
        assert runtime.delivery.deliver_due().sent == 2
        assert runtime.scheduler.run().digests == 0
        clock.now = datetime(2025, 2, 11, 7, 29, tzinfo=UTC)
        assert runtime.scheduler.run().digests == 0

        clock.now = datetime(2025, 2, 11, 7, 30, tzinfo=UTC)
        gathered = runtime.scheduler.run()
        again = runtime.scheduler.run()
        runtime.delivery.deliver_due()

        assert (gathered.digests, gathered.digest_alerts, again.digests) == (1, 3, 0)
        digests = [
            m for m in catcher.wait_for_messages(3) if "Daily digest" in m.subject
        ]
        assert len(digests) == 1
        [digest] = digests
        assert list(digest.envelope_to) == [COORDINATOR.email]
        assert unfolded(digest.subject) == (
            "[SEND] Daily digest Tue 11 Feb 2025: 3 deadlines approaching"
        )
        body = text_of(catcher, digest)
        # Soonest first: the case due on the 17th, then the 18th, then the 19th.
        positions = [body.index(f"case {c}") for c in (cases[1], cases[2], cases[0])]
        assert positions == sorted(positions)
        assert f"{LINK_BASE}/{cases[1]}" in body
        # One event per alert it carried, each naming the digest.
        carried = [
            data
            for case in cases
            for kind, data in events(runtime, case)
            if data["alert_kind"] == "approaching"
        ]
        assert len(carried) == 3
        assert len({d["bundle_id"] for d in carried}) == 1
        assert carried[0]["bundle_id"] is not None


def test_an_alert_raised_after_the_digest_time_waits_for_the_next_one(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher
) -> None:
    clock = FakeClock(datetime(2025, 2, 11, 7, 45, tzinfo=UTC))
    with wired(tmp_path, catcher, None, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: DIGEST})
        case = assigned(runtime)
        runtime.handlers.handle_deadlines_event(approaching(case))

        same_morning = runtime.scheduler.run()
        clock.now = datetime(2025, 2, 12, 7, 30, tzinfo=UTC)
        next_morning = runtime.scheduler.run()

        assert (same_morning.digests, next_morning.digests) == (0, 1)


def test_a_withdrawn_alert_leaves_the_digest_or_is_corrected_after_it(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher, clock: FakeClock
) -> None:
    with wired(tmp_path, catcher, None, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: DIGEST})
        kept, dropped, late = (assigned(runtime) for _ in range(3))
        events_by_case = {c: approaching(c) for c in (kept, dropped, late)}
        for event in events_by_case.values():
            runtime.handlers.handle_deadlines_event(event)

        # Withdrawn while held: never sent.
        runtime.handlers.handle_deadlines_event(
            withdrawn(dropped, events_by_case[dropped].id, "corrected")
        )
        clock.now = datetime(2025, 2, 11, 7, 30, tzinfo=UTC)
        runtime.scheduler.run()
        runtime.delivery.deliver_due()
        [digest] = catcher.wait_for_messages(1)
        body = text_of(catcher, digest)
        assert f"case {kept}" in body
        assert f"case {dropped}" not in body
        assert "2 deadlines approaching" in unfolded(digest.subject)

        # Withdrawn after the digest was sent: a correction to the same person.
        runtime.handlers.handle_deadlines_event(
            withdrawn(late, events_by_case[late].id, "corrected")
        )
        runtime.delivery.deliver_due()
        _, correction = catcher.wait_for_messages(2)
        assert list(correction.envelope_to) == [COORDINATOR.email]
        assert unfolded(correction.subject).startswith("[SEND] Correction:")
        assert f"case {late}" in unfolded(correction.subject)
        assert events(runtime, dropped) == []


def test_the_senco_of_the_school_hears_of_review_clocks_only(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher, clock: FakeClock
) -> None:
    with wired(tmp_path, catcher, None, clock, database_url=ledger_url) as runtime:
        seed(runtime.db)
        case = assigned(runtime)
        unknown_school = assigned(runtime, school=None)

        runtime.handlers.handle_deadlines_event(review_approaching(case))
        runtime.handlers.handle_deadlines_event(approaching(case))
        runtime.handlers.handle_deadlines_event(review_approaching(unknown_school))
        runtime.delivery.deliver_due()

        to = sorted(
            (m.envelope_to[0], unfolded(m.subject).split(":")[1].strip())
            for m in catcher.wait_for_messages(4)
        )
        assert to == sorted(
            [
                (COORDINATOR.email, "Annual review, case " + case),
                (SENCO.email, "Annual review, case " + case),
                (COORDINATOR.email, "Decision whether to assess, case " + case),
                (COORDINATOR.email, "Annual review, case " + unknown_school),
            ]
        )
        senco_mail = next(m for m in catcher.messages() if SENCO.email in m.envelope_to)
        assert "as the SENCO of the child's school" in text_of(catcher, senco_mail)
        # A school notify does not know is a failed notification, not a silence.
        [(kind, data)] = [
            (k, d)
            for k, d in events(runtime, unknown_school)
            if d["recipient_role"] == "senco"
        ]
        assert (kind, data["failure"]) == ("NotificationFailed", "no_recipient")


def follow_review(
    runtime: NotifyRuntime,
    case: str,
    due_on: date,
    *,
    setting: int | None = None,
) -> None:
    if setting is not None:
        runtime.handlers.handle_reviews_event(review_cycle_started(case, setting))
    runtime.handlers.handle_deadlines_event(
        clock_event(case, "ClockSet", due_on=due_on)
    )


def test_each_senco_gets_the_term_s_reviews_once_per_term(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher
) -> None:
    clock = FakeClock(datetime(2025, 12, 16, 12, 0, tzinfo=UTC))
    with wired(
        tmp_path, catcher, None, clock, database_url=ledger_url, term_dates=SPRING_TERM
    ) as runtime:
        seed(runtime.db)
        on_list = assigned(runtime)
        moved_here = assigned(runtime, school=100999)
        next_term = assigned(runtime)
        held_early = assigned(runtime)
        no_senco = assigned(runtime, school=100777)
        follow_review(runtime, on_list, date(2026, 1, 19))
        runtime.handlers.handle_reviews_event(
            review_arranged(on_list, date(2026, 1, 14))
        )
        follow_review(runtime, moved_here, date(2026, 3, 2), setting=SCHOOL_URN)
        runtime.handlers.handle_deadlines_event(
            clock_event(
                moved_here,
                "ClockDueDateChanged",
                due_on=date(2026, 3, 9),
                previous_due_on="2026-03-02",
                counts_from="2025-03-10",
            )
        )
        follow_review(runtime, next_term, date(2026, 4, 20))
        follow_review(runtime, held_early, date(2026, 2, 12))
        runtime.handlers.handle_deadlines_event(
            clock_event(
                held_early,
                "ClockMet",
                due_on=date(2026, 2, 12),
                stopped_on="2025-12-01",
                stopped_by="send.reviews.ReviewHeld.v1",
            )
        )
        follow_review(runtime, no_senco, date(2026, 1, 26))

        # The day before the lists are due (10 working days before 5 January).
        assert runtime.scheduler.run().review_lists == 0
        clock.now = datetime(2025, 12, 17, 7, 0, tzinfo=UTC)
        made = runtime.scheduler.run()
        again = runtime.scheduler.run()
        runtime.delivery.deliver_due()

        assert (made.review_lists, made.listed_reviews, made.unlisted_reviews) == (
            1,
            2,
            1,
        )
        assert (again.review_lists, again.unlisted_reviews) == (0, 0)
        [sent] = catcher.wait_for_messages(1)
        assert list(sent.envelope_to) == [SENCO.email]
        assert unfolded(sent.subject) == (
            f"[SEND] 2 annual reviews due next term at school {SCHOOL_URN} "
            "(term starts Mon 5 Jan 2026)"
        )
        body = text_of(catcher, sent)
        assert (
            f"- Case {on_list}: due Monday 19 January 2026; meeting arranged for "
            "Wednesday 14 January 2026." in body
        )
        assert f"- Case {moved_here}: due Monday 9 March 2026; no meeting" in body
        assert next_term not in body
        assert held_early not in body
        assert "Legal basis: CFA 2014 s.44(1)" in body
        listed = [d for c in (on_list, moved_here) for _, d in events(runtime, c)]
        assert {(d["alert_kind"], d["recipient_role"]) for d in listed} == {
            ("review_list", "senco")
        }
        assert len({d["bundle_id"] for d in listed}) == 1
        [(kind, data)] = events(runtime, no_senco)
        assert (kind, data["failure"], data["alert_kind"]) == (
            "NotificationFailed",
            "no_recipient",
            "review_list",
        )

        # A SENCO added before the term starts gets the list; the first does not
        # get it again.
        with runtime.db.transaction() as tx:
            tx.put_staff(
                StaffMember(
                    "senco-02",
                    "Lee Deputy",
                    "lee.d@school.example",
                    "senco",
                    school_urn=SCHOOL_URN,
                )
            )
        clock.now = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
        late = runtime.scheduler.run()
        runtime.delivery.deliver_due()
        assert late.review_lists == 1
        assert [m.envelope_to[0] for m in catcher.wait_for_messages(2)] == [
            SENCO.email,
            "lee.d@school.example",
        ]
        # Once the term has started it is too late for its lists.
        clock.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        assert runtime.scheduler.run().review_lists == 0


def test_a_list_that_cannot_be_sent_is_escalated_per_case(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher
) -> None:
    clock = FakeClock(datetime(2025, 12, 17, 7, 0, tzinfo=UTC))
    with wired(
        tmp_path,
        catcher,
        None,
        clock,
        database_url=ledger_url,
        term_dates=SPRING_TERM,
        max_attempts=1,
    ) as runtime:
        senco = StaffMember(
            "senco-09",
            "Kim Senco",
            "kim.s@school.example",
            "senco",
            manager_id=MANAGER.staff_id,
            school_urn=SCHOOL_URN,
        )
        seed(runtime.db, [COORDINATOR, MANAGER, senco])
        case = assigned(runtime)
        follow_review(runtime, case, date(2026, 1, 19))
        catcher.faults.reject_recipient(senco.email, 550)

        runtime.scheduler.run()
        runtime.delivery.deliver_due()

        [escalation] = catcher.wait_for_messages(1)
        assert list(escalation.envelope_to) == [MANAGER.email]
        assert "termly list of reviews" in unfolded(escalation.subject)
        kinds = [(k, d["alert_kind"]) for k, d in events(runtime, case)]
        assert kinds == [
            ("NotificationFailed", "review_list"),
            ("NotificationSent", "escalation"),
        ]
        with runtime.db.transaction() as tx:
            counts = tx.count_by_status()
        assert counts == {AlertStatus.FAILED: 2, AlertStatus.SENT: 1}


def test_python_m_notify_schedule_records_what_is_due_as_of_a_time(
    tmp_path: Path, ledger_url: str, catcher: MailCatcher, clock: FakeClock
) -> None:
    with wired(tmp_path, catcher, None, clock, database_url=ledger_url) as runtime:
        seed(runtime.db, preferences={COORDINATOR.staff_id: DIGEST})
        runtime.handlers.handle_deadlines_event(approaching(assigned(runtime)))
    env = dict(os.environ)
    env.update(
        {
            "NOTIFY_DATABASE_URL": ledger_url,
            "NOTIFY_DIRECTORY_CSV": "",
            "LOG_FORMAT": "text",
        }
    )

    def schedule(at: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "notify", "schedule", "--at", at],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        answer: dict[str, Any] = json.loads(done.stdout.decode().splitlines()[-1])
        return answer

    early, due, again = (
        schedule("2025-02-11T07:29:00+00:00"),
        schedule("2025-02-11T07:30:00Z"),
        schedule("2025-02-11T09:00:00Z"),
    )

    assert (early["digests"], due["digests"], again["digests"]) == (0, 1, 0)
    assert due["digest_alerts"] == 1
    refused = subprocess.run(
        [sys.executable, "-m", "notify", "schedule", "--at", "2025-02-11T07:30"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert b"has no offset" in refused.stderr
