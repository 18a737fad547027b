"""The wording of alert emails and text messages.

An alert says what is due, when (and, when the due date is not a working day, the
working day to act by), under which regulation, the case reference and a link to the
case in the casework system (``NOTIFY_CASE_LINK_BASE`` followed by the case id). It
never names the child, in a subject line, a text message or anywhere else: notify is
never told a name, and the case id is a pseudonymous reference that staff look up in
the casework system. Text is plain, in British English; a text message is one or two
SMS fragments long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from notify.domain.alerts import AlertKind, ClockNotice, RecipientRole, Withdrawal
from sendkit.calendar import act_by as act_by_day

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


def case_link(base: str | None, case_id: str) -> str | None:
    """The address of the case in the casework system, if a base is configured."""
    if not base:
        return None
    return f"{base.rstrip('/')}/{case_id}"


def _link_lines(link: str | None) -> list[str]:
    return [f"Open the case: {link}"] if link else []


def _why_line(role: RecipientRole, coordinator_name: str | None) -> str:
    if role is RecipientRole.COORDINATOR:
        return "You receive this as the case's EHC coordinator."
    if role is RecipientRole.SENCO:
        return (
            "You receive this as the SENCO of the child's school, which holds the "
            "review."
        )
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
    link: str | None = None,
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
        *_link_lines(link),
        "",
        _why_line(role, coordinator_name),
        "",
        _FOOTER,
    ]
    return EmailContent(subject=subject, body="\n".join(lines) + "\n")


def compose_sms(notice: ClockNotice, link: str | None = None) -> str:
    """The text message of an approaching or overdue clock: what, when, which
    regulation, the case reference and the link; no name of anyone."""
    title = clock_title(notice.clock, notice.title)
    if notice.kind is AlertKind.APPROACHING:
        when = f"due {_short_date(notice.due_on)}{_lead_phrase(notice)}"
        head = "SEND alert"
    else:
        when = f"was due {_short_date(notice.due_on)}, not recorded as done"
        head = "SEND OVERDUE"
        if notice.exception_applies:
            head += " (exception applies)"
    act_by = f", act by {_short_date(notice.act_by)}" if notice.act_by else ""
    text = (
        f"{head}: {title}, case {notice.case_id}, {when}{act_by}. {notice.legal_basis}."
    )
    if link:
        text += f" {link}"
    return text


def compose_correction_sms(original: ClockNotice, withdrawal: Withdrawal) -> str:
    """The short text that takes back an alert sent by SMS."""
    title = _in_sentence(clock_title(original.clock, original.title))
    return (
        f"SEND correction: disregard the earlier alert about the {title}, case "
        f"{original.case_id} (due {_short_date(original.due_on)}): the facts of the "
        "case were corrected."
    )


def compose_correction(
    original: ClockNotice, withdrawal: Withdrawal, link: str | None = None
) -> EmailContent:
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
        *_link_lines(link),
        "",
        _FOOTER,
    ]
    return EmailContent(subject=subject, body="\n".join(lines) + "\n")


def compose_digest(
    day: date, notices: Sequence[ClockNotice], link_base: str | None = None
) -> EmailContent:
    """One email gathering a person's approaching alerts of one day, soonest first."""
    ordered = sorted(notices, key=lambda n: (n.due_on, n.case_id, n.clock_id))
    count = len(ordered)
    noun = "deadline" if count == 1 else "deadlines"
    subject = (
        f"{SUBJECT_PREFIX} Daily digest {_short_date(day)}: {count} {noun} approaching"
    )
    lines = [
        f"{count} statutory or local {noun} on your cases fall due soon, soonest "
        "first.",
        "",
    ]
    for notice in ordered:
        title = clock_title(notice.clock, notice.title)
        act_by = f", act by {_short_date(notice.act_by)}" if notice.act_by else ""
        lines.append(
            f"- Due {_short_date(notice.due_on)}{_lead_phrase(notice)}{act_by}: "
            f"{title}, case {notice.case_id}. {notice.legal_basis}."
        )
        if notice.action:
            lines.append(f"  What to do: {notice.action}")
        link = case_link(link_base, notice.case_id)
        if link:
            lines.append(f"  {link}")
    lines += [
        "",
        "You receive this digest instead of one email per alert because you chose a "
        "daily digest. Overdue deadlines are still sent at once.",
        "",
        _FOOTER,
    ]
    return EmailContent(subject=subject, body="\n".join(lines) + "\n")


@dataclass(frozen=True, slots=True)
class ReviewLine:
    """One review on a SENCO's termly list."""

    case_id: str
    due_on: date
    legal_basis: str
    meeting_on: date | None = None


def compose_review_list(
    term_starts_on: date,
    term_ends_on: date,
    school_urn: int,
    reviews: Sequence[ReviewLine],
    link_base: str | None = None,
) -> EmailContent:
    """The termly list of a school's annual reviews, sent to its SENCO."""
    ordered = sorted(reviews, key=lambda r: (r.due_on, r.case_id))
    count = len(ordered)
    noun = "review" if count == 1 else "reviews"
    subject = (
        f"{SUBJECT_PREFIX} {count} annual {noun} due next term at school "
        f"{school_urn} (term starts {_short_date(term_starts_on)})"
    )
    lines = [
        f"School URN: {school_urn}",
        f"Term: {long_date(term_starts_on)} to {long_date(term_ends_on)}",
        "",
        (
            "This annual review of an EHC plan at your school falls due this term. "
            "It must be held by its due date"
            if count == 1
            else f"These {count} annual reviews of EHC plans at your school fall due "
            "this term. Each must be held by its due date"
        )
        + "; invite the family and the professionals at least 2 weeks before the "
        "meeting and send the council the report within 2 weeks of it.",
        "",
    ]
    for review in ordered:
        when = f"due {long_date(review.due_on)}"
        act_by = act_by_day(review.due_on)
        if act_by is not None:
            when += f" (act by {_short_date(act_by)}, not a working day)"
        meeting = (
            f"; meeting arranged for {long_date(review.meeting_on)}"
            if review.meeting_on
            else "; no meeting arranged yet"
        )
        lines.append(f"- Case {review.case_id}: {when}{meeting}.")
        link = case_link(link_base, review.case_id)
        if link:
            lines.append(f"  {link}")
    basis = ordered[0].legal_basis if ordered else ""
    lines += [
        "",
        *([f"Legal basis: {basis}."] if basis else []),
        "You receive this as the SENCO of the school the EHC "
        + ("plan names" if count == 1 else "plans name")
        + ". Look each case up by its reference with the council's EHC team.",
        "",
        _FOOTER,
    ]
    return EmailContent(subject=subject, body="\n".join(lines) + "\n")


def compose_escalation(
    *,
    case_id: str | None,
    what: str,
    recipient: str,
    channel: str,
    reason: str,
    original_subject: str,
    original_body: str,
    link: str | None = None,
) -> EmailContent:
    """The email that tells a manager an alert did not reach its recipient."""
    about = f", case {case_id}" if case_id else ""
    subject = f"{SUBJECT_PREFIX} Not delivered: {what}{about}"
    lines = [
        *([f"Case reference: {case_id}", ""] if case_id else []),
        f"An alert for {recipient} could not be delivered by {channel}: {reason}.",
        "Please make sure they know, and correct their contact details in the staff "
        "directory if they are wrong.",
        *_link_lines(link),
        "",
        "The alert was:",
        "",
        *(f"> {line}" if line else ">" for line in [original_subject, ""]),
        *(f"> {line}" if line else ">" for line in original_body.splitlines()),
        "",
        "You receive this as their manager.",
        "",
        _FOOTER,
    ]
    return EmailContent(subject=subject, body="\n".join(lines) + "\n")
