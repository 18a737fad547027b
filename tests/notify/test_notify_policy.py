"""The alert policy and the wording of alerts, as pure functions."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from notify_factories import (
    COORDINATOR,
    LEGAL_BASIS,
    LONE_COORDINATOR,
    MANAGER,
    ORPHAN_COORDINATOR,
    directory,
)

from notify.domain.alerts import (
    AlertKind,
    ClockNotice,
    RecipientRole,
    Withdrawal,
    alert_id,
    message_id,
    recipients_for,
)
from notify.domain.delivery import RetryPolicy
from notify.domain.messages import compose_alert, compose_correction

CASE = "3f6c2a4e-8d1b-4c7a-9e2f-5b0a1c3d4e6f"


def notice(kind: AlertKind = AlertKind.APPROACHING, **changes: object) -> ClockNotice:
    fields: dict[str, object] = {
        "event_id": "clock-event-1",
        "kind": kind,
        "case_id": CASE,
        "clock_id": "decision",
        "clock": "decision",
        "due_on": date(2025, 2, 17),
        "act_by": None,
        "legal_basis": LEGAL_BASIS,
        "statutory": True,
        "escalate": True,
        "lead": 5,
        "title": "Decision whether to assess",
        "action": "Decide whether to assess and tell the family.",
    }
    fields.update(changes)
    return ClockNotice(**fields)  # type: ignore[arg-type]


def roles(recipients: list[Any]) -> list[tuple[RecipientRole, str | None, bool]]:
    return [(r.role, r.staff_id, r.reachable) for r in recipients]


def test_approaching_goes_to_the_coordinator_only() -> None:
    found = recipients_for(notice(), COORDINATOR.staff_id, directory())

    assert roles(found) == [(RecipientRole.COORDINATOR, COORDINATOR.staff_id, True)]


def test_overdue_goes_to_the_coordinator_and_their_manager() -> None:
    found = recipients_for(notice(AlertKind.OVERDUE), COORDINATOR.staff_id, directory())

    assert roles(found) == [
        (RecipientRole.COORDINATOR, COORDINATOR.staff_id, True),
        (RecipientRole.MANAGER, MANAGER.staff_id, True),
    ]


def test_overdue_with_an_exception_is_not_escalated() -> None:
    overdue = notice(AlertKind.OVERDUE, escalate=False, exception_reason="c")

    found = recipients_for(overdue, COORDINATOR.staff_id, directory())

    assert roles(found) == [(RecipientRole.COORDINATOR, COORDINATOR.staff_id, True)]
    assert overdue.exception_applies


def test_overdue_local_target_is_not_escalated_and_is_no_exception() -> None:
    local = notice(AlertKind.OVERDUE, escalate=False, statutory=False)

    found = recipients_for(local, COORDINATOR.staff_id, directory())

    assert [r.role for r in found] == [RecipientRole.COORDINATOR]
    assert not local.exception_applies
    assert "local target" in compose_alert(local, RecipientRole.COORDINATOR).body


def test_missing_people_are_named_as_problems_not_dropped() -> None:
    unknown = recipients_for(notice(), "ehcco-unknown", directory())
    no_manager = recipients_for(
        notice(AlertKind.OVERDUE), LONE_COORDINATOR.staff_id, directory()
    )
    gone_manager = recipients_for(
        notice(AlertKind.OVERDUE), ORPHAN_COORDINATOR.staff_id, directory()
    )

    assert roles(unknown) == [(RecipientRole.COORDINATOR, "ehcco-unknown", False)]
    assert "not in the staff directory" in (unknown[0].problem or "")
    assert roles(no_manager)[1] == (RecipientRole.MANAGER, None, False)
    assert "has no manager" in (no_manager[1].problem or "")
    assert roles(gone_manager)[1] == (RecipientRole.MANAGER, "mgr-gone", False)


def test_alert_ids_are_stable_and_differ_by_event_and_recipient() -> None:
    first = alert_id("event-1", RecipientRole.COORDINATOR, "ehcco-01")

    assert first == alert_id("event-1", RecipientRole.COORDINATOR, "ehcco-01")
    # Pinned: a different id for the same cause would resend every alert on replay.
    assert first == "7efe5982-82f0-5652-8a3d-9af78e8d91b3"
    assert first != alert_id("event-2", RecipientRole.COORDINATOR, "ehcco-01")
    assert first != alert_id("event-1", RecipientRole.MANAGER, "ehcco-01")
    assert first != alert_id("event-1", RecipientRole.COORDINATOR, "ehcco-02")
    assert message_id(first, "council.example") == f"<{first}@council.example>"


def test_approaching_email_says_what_when_which_regulation_and_case() -> None:
    content = compose_alert(notice(), RecipientRole.COORDINATOR)

    assert content.subject == (
        f"[SEND] Due Mon 17 Feb 2025: Decision whether to assess, case {CASE}"
    )
    assert f"Case reference: {CASE}" in content.body
    assert "due on Monday 17 February 2025 (in 5 working days)" in content.body
    assert "SEND Regulations 2014, reg 5(1) (statutory time limit)" in content.body
    assert "What to do: Decide whether to assess" in content.body
    assert "Act by" not in content.body
    assert "exception" not in content.body.lower()


def test_act_by_is_given_when_the_due_date_is_not_a_working_day() -> None:
    weekend = notice(due_on=date(2025, 5, 26), act_by=date(2025, 5, 23))

    content = compose_alert(weekend, RecipientRole.COORDINATOR)

    assert "Act by Friday 23 May 2025" in content.body
    assert "due on Monday 26 May 2025" in content.body


def test_due_today_and_one_day_read_naturally() -> None:
    assert "(today)" in compose_alert(notice(lead=0), RecipientRole.COORDINATOR).body
    one = compose_alert(notice(lead=1), RecipientRole.COORDINATOR).body
    assert "(in 1 working day)" in one


def test_overdue_email_for_the_manager_says_why_they_receive_it() -> None:
    content = compose_alert(
        notice(AlertKind.OVERDUE), RecipientRole.MANAGER, COORDINATOR.name
    )

    assert content.subject.startswith("[SEND] Overdue: Decision whether to assess")
    assert "was due Mon 17 Feb 2025" in content.subject
    assert "manager of the case's EHC coordinator (Alex Coordinator)" in content.body
    assert "has not been recorded as done" in content.body


def test_overdue_email_with_an_exception_says_one_applies() -> None:
    content = compose_alert(
        notice(AlertKind.OVERDUE, escalate=False, exception_reason="d"),
        RecipientRole.COORDINATOR,
    )

    assert "Overdue (exception applies)" in content.subject
    assert "An exception to the time limit applies" in content.body
    assert "away from the area for 4 weeks" in content.body
    assert "not escalated" in content.body


def test_correction_takes_the_earlier_alert_back() -> None:
    original = notice()
    withdrawal = Withdrawal(
        "withdraw-1", CASE, original.event_id, "request date corrected"
    )

    content = compose_correction(original, withdrawal)

    assert content.subject.startswith("[SEND] Correction: disregard the earlier alert")
    assert CASE in content.subject
    assert "(request date corrected)" in content.body
    assert "due Monday 17 February 2025" in content.body


def test_the_coordinator_email_names_no_other_person() -> None:
    body = compose_alert(notice(AlertKind.OVERDUE), RecipientRole.COORDINATOR).body

    assert COORDINATOR.name not in body
    assert MANAGER.name not in body


def test_retry_delays_double_up_to_the_cap() -> None:
    policy = RetryPolicy(
        max_attempts=4, base_delay=timedelta(seconds=2), max_delay=timedelta(seconds=5)
    )

    delays = [policy.delay_after(n).total_seconds() for n in (1, 2, 3, 4, 100)]

    assert delays == [2.0, 4.0, 5.0, 5.0, 5.0]
    assert not policy.exhausted(3)
    assert policy.exhausted(4)


def test_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="positive"):
        RetryPolicy(base_delay=timedelta(seconds=10), max_delay=timedelta(seconds=1))
