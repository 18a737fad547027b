"""Keeps personal details off the topics: the detection rule and the reviewed list.

The published events carry a pseudonymous case id and the facts a subscriber needs.
A child's or family's name, date of birth, address, email address, phone number, any
identifier that names a person outside this platform (a UPN, an NHS number), the type
of need, and free text stay in the owning service's store. ``findings`` looks at every
field of a published schema, nested ones included, and reports one that:

- is named like a personal detail: a word of its snake_case name is one of
  ``PERSONAL_WORDS`` (``child_name``, ``date_of_birth``, ``home_address``,
  ``primary_need``, ``notes``, ...);
- has a personal format (``email``, ``idn-email``);
- is free text: a string that is not constrained to be a code. A string is a code when
  it has an enum or const, a pattern, or a format (a date, a timestamp, a UUID), or
  when its name ends in ``_id`` (an identifier this platform assigns, pseudonymous by
  rule). A ``max_length`` alone does not make a code: a short note is still a note.

A finding is accepted only if ``ALLOWED`` names it (an event type pattern and a field
path) with the reason it is not personal data. The contract tests fail on any other
finding, and on an allow-list entry that no longer matches anything, so the list stays
a true record of what was reviewed. Adding an entry is a review decision: say in the
reason where the value comes from and why no person's details can reach it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

NAME = "name"
BIRTH = "date of birth"
ADDRESS = "address"
EMAIL = "email address"
PHONE = "phone number"
IDENTIFIER = "personal identifier"
NEED = "type of need"
FREE_TEXT = "free text"

PERSONAL_WORDS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "name",
            "names",
            "forename",
            "forenames",
            "surname",
            "firstname",
            "lastname",
            "fullname",
            "nickname",
        ),
        NAME,
    ),
    **dict.fromkeys(("dob", "birth", "birthday", "born", "age"), BIRTH),
    **dict.fromkeys(
        ("address", "addresses", "postcode", "street", "town", "uprn", "home"), ADDRESS
    ),
    **dict.fromkeys(("email", "mail"), EMAIL),
    **dict.fromkeys(("phone", "telephone", "mobile", "tel", "sms"), PHONE),
    **dict.fromkeys(("upn", "uln", "nhs", "ni", "reference"), IDENTIFIER),
    **dict.fromkeys(
        ("need", "needs", "sen", "diagnosis", "disability", "condition"), NEED
    ),
    **dict.fromkeys(
        (
            "note",
            "notes",
            "comment",
            "comments",
            "text",
            "narrative",
            "evidence",
            "summary",
            "details",
        ),
        FREE_TEXT,
    ),
}
PERSONAL_FORMATS: Mapping[str, str] = {"email": EMAIL, "idn-email": EMAIL}
CODE_FORMATS = frozenset({"date", "date-time", "time", "duration", "uuid", "uri"})


@dataclass(frozen=True, slots=True)
class Allowed:
    """A reviewed field: which event types (a glob), which field, and why it is safe."""

    types: str
    field: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        return finding.field == self.field and fnmatch.fnmatchcase(
            finding.event_type, self.types
        )


@dataclass(frozen=True, slots=True)
class Finding:
    """A field of a published event that looks like a personal detail."""

    event_type: str
    field: str
    category: str
    why: str

    def __str__(self) -> str:
        return f"{self.event_type} field {self.field!r}: {self.category} ({self.why})"


_RULES_TABLE = (
    "copied from the deadlines service's clock rules table (code, not casework): "
    "the same for every case under a rule, so no person's details can reach it"
)

ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "send.deadlines.*.v1",
        "clock",
        "The rule's name (decision, final_plan, annual_review...), " + _RULES_TABLE,
    ),
    Allowed("send.deadlines.*.v1", "title", "The clock's title, " + _RULES_TABLE),
    Allowed(
        "send.deadlines.*.v1",
        "legal_basis",
        "The citation of the regulation, " + _RULES_TABLE,
    ),
    Allowed(
        "send.deadlines.*.v1",
        "rules_version",
        "The version label of the rules table the clock was set under, " + _RULES_TABLE,
    ),
    Allowed(
        "send.deadlines.*.v1",
        "exception_reason",
        "An exception reason code (a to d of the regulation, or a local code) copied "
        "from the intake event's enum; the evidence text stays in intake",
    ),
    Allowed(
        "send.deadlines.Clock*.v1",
        "action",
        "What must be done, in a sentence, " + _RULES_TABLE,
    ),
    Allowed(
        "send.deadlines.ClockSet.v1",
        "guidance_note",
        "A note on the statutory guidance's date, " + _RULES_TABLE,
    ),
    Allowed(
        "send.deadlines.Clock*.v1",
        "stopped_by",
        "The event type (send.<owner>.<Name>.v<N>) that stopped the clock, or "
        "'window closed'; set by the deadlines engine, never typed by a person",
    ),
    Allowed(
        "send.deadlines.ClockCancelled.v1",
        "cancelled_by",
        "The event type that cancelled the clock; set by the deadlines engine",
    ),
    Allowed(
        "send.deadlines.ClockExceptionApplied.v1",
        "reason",
        "The exception reason code of the rule that applies; set by the engine",
    ),
    Allowed(
        "send.deadlines.ClockExceptionApplied.v1",
        "reason_text",
        "The wording of the statutory exception for the reason code, "
        + _RULES_TABLE
        + "; the staff member's evidence text stays in intake",
    ),
    Allowed(
        "send.deadlines.AlertWithdrawn.v1",
        "reason",
        "Why the engine withdrew the alert (a fixed phrase per cause, such as a "
        "corrected due date); set by the engine, never typed by a person",
    ),
    Allowed(
        "send.intake.RequestCorrected.v1",
        "old_value",
        "The corrected fact's earlier value: an ISO 8601 timestamp (received_at) or "
        "date (notified_on), as the enum 'field' says; intake validates both",
    ),
    Allowed(
        "send.intake.RequestCorrected.v1",
        "new_value",
        "The corrected fact's new value: an ISO 8601 timestamp or date, validated "
        "by intake",
    ),
    Allowed(
        "send.notify.Notification*.v1",
        "alert_kind",
        "An open code (approaching, overdue, correction) set by notify from the "
        "clock event; open so a new kind does not break readers",
    ),
    Allowed(
        "send.notify.Notification*.v1",
        "recipient_role",
        "An open code (coordinator, manager) set by notify; the recipient is named "
        "only by pseudonymous staff id",
    ),
    Allowed(
        "send.notify.NotificationFailed.v1",
        "failure",
        "An open code (permanent, retries_exhausted, no_recipient) set by notify",
    ),
    Allowed(
        "send.notify.NotificationFailed.v1",
        "reason",
        "The provider's error text for an operator. Notify removes anything shaped "
        "like an email address and caps the length (notify.application.records."
        "redact); it does not remove phone numbers, so GOV.UK Notify SMS errors "
        "must be checked before SMS goes live",
    ),
)


def _words(name: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: Mapping[str, Any] = root.get("$defs", {})[
            ref.removeprefix("#/$defs/")
        ]
        return resolved
    return node


def _branches(
    node: Mapping[str, Any], root: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The alternatives of a field's schema, ``null`` left out, refs resolved."""
    node = _resolve(node, root)
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives is None:
        return [node]
    found = []
    for choice in alternatives:
        found.extend(_branches(choice, root))
    return [choice for choice in found if choice.get("type") != "null"]


def _is_code(name: str, node: Mapping[str, Any]) -> bool:
    return (
        "enum" in node
        or "const" in node
        or "pattern" in node
        or node.get("format") in CODE_FORMATS
        or name.endswith("_id")
        or name.endswith("_ids")
    )


def _fields(
    node: Mapping[str, Any], root: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(path, name, schema)`` of every property, nested objects and arrays too."""
    for name, child in _resolve(node, root).get("properties", {}).items():
        path = f"{prefix}{name}"
        for branch in _branches(child, root):
            yield path, name, branch
            if branch.get("type") == "object" or "properties" in branch:
                yield from _fields(branch, root, f"{path}.")
            items = branch.get("items")
            if isinstance(items, Mapping):
                for item in _branches(items, root):
                    yield f"{path}[]", name, item
                    if "properties" in item:
                        yield from _fields(item, root, f"{path}[].")


def findings(event_type: str, schema: Mapping[str, Any]) -> list[Finding]:
    """Every field of ``schema`` that looks like a personal detail, reviewed or not."""
    found: dict[str, Finding] = {}
    for path, name, node in _fields(schema, schema):
        if path in found:
            continue
        hits = [PERSONAL_WORDS[word] for word in _words(name) if word in PERSONAL_WORDS]
        if hits:
            found[path] = Finding(event_type, path, hits[0], "named like one")
        elif node.get("format") in PERSONAL_FORMATS:
            category = PERSONAL_FORMATS[node["format"]]
            found[path] = Finding(
                event_type, path, category, f"format {node['format']}"
            )
        elif node.get("type") == "string" and not _is_code(name, node):
            found[path] = Finding(
                event_type, path, FREE_TEXT, "a string with no enum, pattern or format"
            )
    return list(found.values())


def unreviewed(
    found: Iterable[Finding], allowed: Iterable[Allowed] = ALLOWED
) -> list[Finding]:
    """The findings no allow-list entry accepts."""
    entries = list(allowed)
    return [f for f in found if not any(entry.matches(f) for entry in entries)]


def unused(
    found: Iterable[Finding], allowed: Iterable[Allowed] = ALLOWED
) -> list[Allowed]:
    """Allow-list entries that accept no finding (stale: remove them)."""
    hits = list(found)
    return [entry for entry in allowed if not any(entry.matches(f) for f in hits)]
