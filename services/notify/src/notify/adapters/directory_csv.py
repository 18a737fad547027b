"""Loading the staff directory from a CSV file (a council starts with a spreadsheet).

The file has a header row with the columns ``staff_id, name, email, role,
manager_id``, in any order; further columns are ignored, and an empty ``manager_id``
means the person has no manager in the directory. Every problem found is reported at
once, with its line number, so a bad file is fixed in one pass.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from notify.domain.directory import StaffDirectory, StaffMember
from notify.errors import DirectoryError

COLUMNS = ("staff_id", "name", "email", "role", "manager_id")
_REQUIRED = ("staff_id", "name", "email", "role")
_STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""The pseudonymous staff id of the published contract (send_schemas.intake)."""


def _looks_like_address(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(local and at and "." in domain and not any(c.isspace() for c in value))


def load_directory(path: str | Path) -> StaffDirectory:
    """Read the directory CSV at ``path``; ``DirectoryError`` if it is unusable."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DirectoryError(
            f"cannot read the staff directory {source} ({error.strerror}): set "
            "NOTIFY_DIRECTORY_CSV to a readable CSV file with the columns "
            + ", ".join(COLUMNS)
        ) from error

    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DirectoryError(
            f"staff directory {source} lacks the column(s) {', '.join(missing)}: "
            f"its header row must name {', '.join(COLUMNS)}"
        )

    members: list[StaffMember] = []
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}
        empty = [c for c in _REQUIRED if not values[c]]
        if empty:
            problems.append(f"line {line}: empty {', '.join(empty)}")
            continue
        bad_ids = [
            c
            for c in ("staff_id", "manager_id")
            if values[c] and not _STAFF_ID.match(values[c])
        ]
        if bad_ids:
            problems.append(
                f"line {line}: {', '.join(bad_ids)} must be letters, digits, '.', '_' "
                "or '-' (at most 64)"
            )
            continue
        if not _looks_like_address(values["email"]):
            problems.append(f"line {line}: {values['email']!r} is not an email address")
            continue
        members.append(
            StaffMember(
                staff_id=values["staff_id"],
                name=values["name"],
                email=values["email"],
                role=values["role"],
                manager_id=values["manager_id"] or None,
            )
        )
    if problems:
        raise DirectoryError(
            f"staff directory {source} has rows notify cannot use: "
            + "; ".join(problems)
        )
    return StaffDirectory(members)
