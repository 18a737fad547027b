"""The wording of alert emails.

An alert says what is due, when (and, when the due date is not a working day, the
working day to act by), under which regulation, and the case reference. It never names
the child: notify is never told a name, and the case id is a pseudonymous reference a
coordinator looks up in the casework system. Text is plain, in British English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from notify.domain.alerts import AlertKind, ClockNotice, RecipientRole, Withdrawal

SUBJECT_PREFIX = "[SEND]"

_CLOCK_TITLES = {
    "decision": "decision whether to assess",
    "final_plan": "final EHC plan",
    "no_plan_notice": "notice that no plan will be issued",
}

EXCEPTION_REASONS = {
    "a": "advice was requested from a school during its holiday window",
    "b": "advice was requested from an early years provider while it was closed",
    "c": "exceptional personal circumstances of the child, young person or parent",
    "d": "the child, young person or parent was away from the area for 4 weeks or more",
}
"""The exception reasons of Regs 5(4), 10(4), 13(3) and 27(3), in plain words."""


@dataclass(frozen=True, slots=True)
class EmailContent:
    """The subject and plain-text body of one email."""

    subject: str
    body: str


def clock_title(clock: str, title: str | None = None) -> str:
    """A readable name for a clock: its published title, else one made from its id."""
    if title and title.strip():
        return title.strip()
    known = _CLOCK_TITLES.get(clock)
    if known:
        return known
    return clock.replace("_", " ").replace("-", " ").strip() or "statutory step"


def _in_sentence(title: str) -> str:
    # "Final EHC plan" reads "the final EHC plan" mid-sentence; "EHC plan" stays.
    if len(title) > 1 and title[0].isupper() and not title[1].isupper():
        return title[0].lower() + title[1:]
    return title


def long_date(day: date) -> str:
    """``Monday 17 February 2025``."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def _short_date(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def _lead_phrase(notice: ClockNotice) -> str:
    if notice.lead is None:
        return ""
    if notice.lead == 0:
        return " (today)"
    unit = "working day" if notice.lead == 1 else "working days"
    return f" (in {notice.lead} {unit})"


def _basis_line(notice: ClockNotice) -> str:
    kind = "statutory time limit" if notice.statutory else "local target"
    return f"Legal basis: {notice.legal_basis} ({kind})."


def _act_by_lines(notice: ClockNotice) -> list[str]:
    if notice.act_by is None:
        return []
    return [
        f"Act by {long_date(notice.act_by)}: the due date is not a working day, "
        "and the regulations do not move it."
    ]


def _exception_lines(notice: ClockNotice) -> list[str]:
    if not notice.exception_applies:
        if notice.kind is AlertKind.OVERDUE and not notice.statutory:
            return [
                "This is a local target, not a statutory limit, so it is not escalated."
            ]
        return []
    code = notice.exception_reason
    reason = f" ({EXCEPTION_REASONS.get(code, code)})" if code else ""
    return [
        f"An exception to the time limit applies{reason}. The due date is unchanged "
        "and the duty to act as soon as practicable remains, so this is not escalated "
        "as a breach of the limit."
    ]


def _why_line(role: RecipientRole, coordinator_name: str | None) -> str:
    if role is RecipientRole.COORDINATOR:
        return "You receive this as the case's EHC coordinator."
    whose = f" ({coordinator_name})" if coordinator_name else ""
    return (
        f"You receive this as the manager of the case's EHC coordinator{whose}, "
        "because a statutory time limit has been missed."
    )


_FOOTER = (
    "This message was sent by the SEND casework system. Look the case up by its "
    "reference; this email holds no personal details of the child or family."
)


def compose_alert(
    notice: ClockNotice,
    role: RecipientRole,
    coordinator_name: str | None = None,
) -> EmailContent:
    """The email that tells ``role`` about an approaching or overdue clock."""
    subject_title = clock_title(notice.clock, notice.title)
    title = _in_sentence(subject_title)
    due = long_date(notice.due_on)
    if notice.kind is AlertKind.APPROACHING:
        subject = (
            f"{SUBJECT_PREFIX} Due {_short_date(notice.due_on)}: {subject_title}, "
            f"case {notice.case_id}"
        )
        opening = f"The {title} for case {notice.case_id} is due on {due}"
        opening += _lead_phrase(notice) + "."
    else:
        flag = "Overdue (exception applies)" if notice.exception_applies else "Overdue"
        subject = (
            f"{SUBJECT_PREFIX} {flag}: {subject_title}, case {notice.case_id}, "
            f"was due {_short_date(notice.due_on)}"
        )
        opening = (
            f"The {title} for case {notice.case_id} was due on {due} and has not "
            "been recorded as done."
        )

    lines = [
        f"Case reference: {notice.case_id}",
        "",
        opening,
        *_act_by_lines(notice),
        *([f"What to do: {notice.action}"] if notice.action else []),
        _basis_line(notice),
        *_exception_lines(notice),
        "",
        _why_line(role, coordinator_name),
        "",
        _FOOTER,
    ]
    return EmailContent(subject=subject, body="\n".join(lines) + "\n")


def compose_correction(original: ClockNotice, withdrawal: Withdrawal) -> EmailContent:
    """The short email that takes back an alert already sent."""
    title = _in_sentence(clock_title(original.clock, original.title))
    what = (
        "was approaching" if original.kind is AlertKind.APPROACHING else "was overdue"
    )
    subject = (
        f"{SUBJECT_PREFIX} Correction: disregard the earlier alert about the {title}, "
        f"case {original.case_id}"
    )
    reason = f" ({withdrawal.reason})" if withdrawal.reason else ""
    lines = [
        f"Case reference: {original.case_id}",
        "",
        f"An earlier email said the {title} for case {original.case_id} {what} "
        f"(due {long_date(original.due_on)}, {original.legal_basis}).",
        f"That no longer holds: the facts of the case were corrected{reason}.",
        "Please disregard it. You will be alerted again if anything falls due.",
        "",
        _FOOTER,
    ]
    return EmailContent(subject=subject, body="\n".join(lines) + "\n")
