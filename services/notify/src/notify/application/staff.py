"""Keeping the staff directory and each person's preferences: the API's use cases.

Every change is checked before anything is written: an entry by
``notify.domain.directory.build_member`` (addresses, UK mobile numbers, roles, a
SENCO's school), and against the rest of the directory (a manager must exist, a
person managing others cannot be removed). A CSV import is all or nothing: every row
is checked, with the file's own managers counted as existing, and either every row is
written or none is, with every bad row named.

``import_csv_if_changed`` is the start-up bootstrap of ``NOTIFY_DIRECTORY_CSV``: it
imports the file only when its content differs from the last one imported, so edits
made through the API are not overwritten by an unchanged file at every restart.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from notify.application.ports import NotifyDatabase, NotifyTransaction
from notify.domain.directory import InvalidStaff, StaffMember
from notify.domain.directory_file import InvalidDirectoryFile, parse_directory_csv
from notify.domain.preferences import (
    DEFAULT_PREFERENCES,
    Preferences,
    preference_problems,
)
from notify.errors import DirectoryError

log = logging.getLogger(__name__)

CSV_HASH_KEY = "directory_csv_sha256"


class StaffNotFound(DirectoryError, LookupError):
    """No member of staff has the id asked for."""

    def __init__(self, staff_id: str) -> None:
        super().__init__(
            f"no member of staff has id {staff_id!r}: check the id, or add them with "
            "POST /staff"
        )


class StaffConflict(DirectoryError):
    """The change clashes with the directory as it is."""


class InvalidPreferences(DirectoryError, ValueError):
    """Preferences notify cannot keep; ``field_errors`` names each problem."""

    def __init__(self, message: str, field_errors: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.field_errors = field_errors


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an all-or-nothing import wrote."""

    created: int
    updated: int

    @property
    def imported(self) -> int:
        return self.created + self.updated


def _check_manager(
    tx: NotifyTransaction, member: StaffMember, also: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    if member.manager_id is None:
        return []
    if member.manager_id in also or tx.get_staff(member.manager_id) is not None:
        return []
    return [
        (
            "manager_id",
            f"no member of staff has id {member.manager_id!r}: add the manager first",
        )
    ]


class StaffService:
    """The directory's use cases over notify's database."""

    def __init__(self, db: NotifyDatabase) -> None:
        self._db = db

    def members(
        self, *, role: str | None = None, school_urn: int | None = None
    ) -> list[StaffMember]:
        with self._db.transaction() as tx:
            return tx.list_staff(role=role, school_urn=school_urn)

    def get(self, staff_id: str) -> StaffMember:
        with self._db.transaction() as tx:
            member = tx.get_staff(staff_id)
        if member is None:
            raise StaffNotFound(staff_id)
        return member

    def create(self, member: StaffMember) -> StaffMember:
        with self._db.transaction() as tx:
            if tx.get_staff(member.staff_id) is not None:
                raise StaffConflict(
                    f"a member of staff with id {member.staff_id!r} already exists: "
                    f"change them with PUT /staff/{member.staff_id}"
                )
            self._check(tx, member)
            tx.put_staff(member)
        log.info(
            "staff member added",
            extra={"staff_id": member.staff_id, "role": member.role},
        )
        return member

    def replace(self, member: StaffMember) -> bool:
        """Create or replace ``member``; ``True`` if they are new."""
        with self._db.transaction() as tx:
            self._check(tx, member)
            preferences = tx.get_preferences(member.staff_id)
            if preferences is not None:
                problems = preference_problems(preferences, member)
                if problems:
                    raise InvalidStaff(
                        f"{member.staff_id}'s preferences need what this change "
                        "removes: change the preferences first",
                        [("mobile", message) for _, message in problems],
                    )
            created = tx.put_staff(member)
        log.info(
            "staff member saved",
            extra={"staff_id": member.staff_id, "new": created},
        )
        return created

    def delete(self, staff_id: str) -> None:
        with self._db.transaction() as tx:
            if tx.get_staff(staff_id) is None:
                raise StaffNotFound(staff_id)
            managed = tx.managed_by(staff_id)
            if managed:
                raise StaffConflict(
                    f"{staff_id} manages {', '.join(managed)}: give them another "
                    "manager before removing this one"
                )
            tx.delete_staff(staff_id)
        log.info("staff member removed", extra={"staff_id": staff_id})

    def preferences(self, staff_id: str) -> Preferences:
        with self._db.transaction() as tx:
            if tx.get_staff(staff_id) is None:
                raise StaffNotFound(staff_id)
            return tx.get_preferences(staff_id) or DEFAULT_PREFERENCES

    def set_preferences(self, staff_id: str, preferences: Preferences) -> Preferences:
        with self._db.transaction() as tx:
            member = tx.get_staff(staff_id)
            if member is None:
                raise StaffNotFound(staff_id)
            problems = preference_problems(preferences, member)
            if problems:
                raise InvalidPreferences(
                    f"the preferences of {staff_id} cannot be kept: "
                    + "; ".join(f"{f}: {m}" for f, m in problems),
                    problems,
                )
            tx.put_preferences(staff_id, preferences)
        log.info("preferences saved", extra={"staff_id": staff_id})
        return preferences

    def import_csv(self, text: str, source: str = "the CSV") -> ImportResult:
        """Create or replace every member the CSV lists, or none (all or nothing)."""
        members = parse_directory_csv(text, source)
        with self._db.transaction() as tx:
            return self._import(tx, members, source)

    def _import(
        self, tx: NotifyTransaction, members: list[StaffMember], source: str
    ) -> ImportResult:
        listed = frozenset(m.staff_id for m in members)
        problems: list[tuple[str, str]] = []
        for line, member in enumerate(members, start=2):
            for field, message in _check_manager(tx, member, listed):
                problems.append((f"line {line}.{field}", message))
            preferences = tx.get_preferences(member.staff_id)
            if preferences is not None:
                problems += [
                    (f"line {line}.mobile", message)
                    for _, message in preference_problems(preferences, member)
                ]
        if problems:
            raise InvalidDirectoryFile(
                f"staff directory {source} has rows notify cannot use: "
                + "; ".join(f"{f}: {m}" for f, m in problems),
                problems,
            )
        created = sum(1 for member in members if tx.put_staff(member))
        log.info(
            "staff directory imported",
            extra={"source": source, "new": created, "rows": len(members)},
        )
        return ImportResult(created=created, updated=len(members) - created)

    def import_csv_if_changed(self, text: str, source: str) -> ImportResult | None:
        """Import ``text`` unless it is the file imported last; ``None`` if it is."""
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        members = parse_directory_csv(text, source)
        with self._db.transaction() as tx:
            if tx.get_meta(CSV_HASH_KEY) == digest:
                return None
            result = self._import(tx, members, source)
            tx.set_meta(CSV_HASH_KEY, digest)
        return result

    @staticmethod
    def _check(tx: NotifyTransaction, member: StaffMember) -> None:
        problems = _check_manager(tx, member)
        if problems:
            raise InvalidStaff(
                f"the directory entry {member.staff_id!r} cannot be kept: "
                + "; ".join(f"{f}: {m}" for f, m in problems),
                problems,
            )
