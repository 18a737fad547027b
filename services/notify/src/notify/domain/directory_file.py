"""The staff directory as a CSV file (a council starts with a spreadsheet).

The file has a header row naming at least ``staff_id, name, email, role,
manager_id``, in any order, and may add ``mobile`` (a UK mobile number) and
``school_urn`` (the school of a SENCO); further columns are ignored, and an empty
optional cell means none. Every row is checked as the HTTP API checks an entry
(``notify.domain.directory.build_member``), and every problem found is reported at
once, with its line number, so a bad file is fixed in one pass.
"""

from __future__ import annotations

import csv
import io

from notify.domain.directory import (
    InvalidStaff,
    StaffMember,
    build_member,
)
from notify.errors import DirectoryError

COLUMNS = ("staff_id", "name", "email", "role", "manager_id")
OPTIONAL_COLUMNS = ("mobile", "school_urn")
_REQUIRED = ("staff_id", "name", "email", "role")


class InvalidDirectoryFile(DirectoryError):
    """A directory CSV with bad rows; ``field_errors`` names each ``line N.field``."""

    def __init__(self, message: str, field_errors: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.field_errors = field_errors


def parse_directory_csv(text: str, source: str = "the CSV") -> list[StaffMember]:
    """The members a directory CSV lists; ``InvalidDirectoryFile`` names every bad
    row (and a repeated staff id) at once."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidDirectoryFile(
            f"staff directory {source} lacks the column(s) {', '.join(missing)}: "
            f"its header row must name {', '.join(COLUMNS)}",
            [("header", f"missing column {column}") for column in missing],
        )

    members: list[StaffMember] = []
    problems: list[tuple[str, str]] = []
    lines: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        values = {c: (row.get(c) or "").strip() for c in (*COLUMNS, *OPTIONAL_COLUMNS)}
        empty = [c for c in _REQUIRED if not values[c]]
        if empty:
            problems += [(f"line {line}.{c}", "is empty") for c in empty]
            continue
        try:
            member = build_member(
                staff_id=values["staff_id"],
                name=values["name"],
                email=values["email"],
                role=values["role"],
                manager_id=values["manager_id"] or None,
                mobile=values["mobile"] or None,
                school_urn=values["school_urn"] or None,
            )
        except InvalidStaff as error:
            problems += [(f"line {line}.{f}", m) for f, m in error.field_errors]
            continue
        if member.staff_id in lines:
            problems.append(
                (
                    f"line {line}.staff_id",
                    f"{member.staff_id!r} is already on line {lines[member.staff_id]}:"
                    " give every member of staff one row",
                )
            )
            continue
        lines[member.staff_id] = line
        members.append(member)
    if problems:
        raise InvalidDirectoryFile(
            f"staff directory {source} has rows notify cannot use: "
            + "; ".join(f"{f}: {m}" for f, m in problems),
            problems,
        )
    return members
