"""Who the staff are: ids, names, contact details, roles, and who manages whom.

The directory holds EHC coordinators, their managers, the SENCOs of schools (found by
the school's URN) and panel officers. The alert policy asks it three questions: a
person by id, the manager of a person, and the SENCOs of a school. ``Directory`` is
those questions; ``StaffDirectory`` answers them from memory (a CSV being checked, a
test), and notify's database answers them from its staff table, which the HTTP API
maintains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from notify.domain.contacts import InvalidContact, normalise_email, normalise_uk_mobile
from notify.errors import DirectoryError
from send_schemas.intake import URN_MAX, URN_MIN

STAFF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""The pseudonymous staff id of the published contract (send_schemas.intake)."""

MAX_NAME_LENGTH = 200


class StaffRole(StrEnum):
    """What a member of staff does, as far as alerts are concerned."""

    COORDINATOR = "coordinator"
    MANAGER = "manager"
    SENCO = "senco"
    PANEL_OFFICER = "panel_officer"


ROLE_ALIASES: dict[str, StaffRole] = {
    "ehcco": StaffRole.COORDINATOR,
    "ehc_coordinator": StaffRole.COORDINATOR,
    "ehc coordinator": StaffRole.COORDINATOR,
    "team_manager": StaffRole.MANAGER,
    "panel officer": StaffRole.PANEL_OFFICER,
    "panel": StaffRole.PANEL_OFFICER,
}
"""Spellings a council's spreadsheet uses for the roles, read as the role."""


def normalise_role(value: str) -> StaffRole:
    """The role ``value`` names (case-insensitive, aliases accepted), or ValueError."""
    text = value.strip().lower()
    try:
        return StaffRole(text)
    except ValueError:
        pass
    alias = ROLE_ALIASES.get(text)
    if alias is None:
        raise ValueError(
            f"{value!r} is not a role: use one of "
            + ", ".join(role.value for role in StaffRole)
        )
    return alias


@dataclass(frozen=True, slots=True)
class StaffMember:
    """One member of staff who may receive alerts.

    ``mobile`` is a UK mobile number as ``+447...`` (None: no text messages);
    ``school_urn`` is the school a SENCO works at.
    """

    staff_id: str
    name: str
    email: str
    role: str
    manager_id: str | None = None
    mobile: str | None = None
    school_urn: int | None = None


class InvalidStaff(DirectoryError, ValueError):
    """A directory entry notify cannot keep; ``field_errors`` names each bad field."""

    def __init__(self, message: str, field_errors: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.field_errors = field_errors


def build_member(
    *,
    staff_id: str,
    name: str,
    email: str,
    role: str,
    manager_id: str | None = None,
    mobile: str | None = None,
    school_urn: int | str | None = None,
) -> StaffMember:
    """A checked, normalised ``StaffMember``, or ``InvalidStaff`` naming every fault.

    Empty strings count as absent for the optional fields. A SENCO needs the URN of
    their school; nobody is their own manager.
    """
    problems: list[tuple[str, str]] = []
    staff_id = staff_id.strip()
    if not STAFF_ID.match(staff_id):
        problems.append(
            (
                "staff_id",
                "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit",
            )
        )
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_LENGTH:
        problems.append(("name", f"must be 1 to {MAX_NAME_LENGTH} characters"))
    try:
        email = normalise_email(email)
    except InvalidContact as error:
        problems.append(("email", str(error)))
    number: str | None = None
    if mobile is not None and mobile.strip():
        try:
            number = normalise_uk_mobile(mobile)
        except InvalidContact as error:
            problems.append(("mobile", str(error)))
    try:
        chosen = normalise_role(role)
    except ValueError as error:
        chosen = None
        problems.append(("role", str(error)))
    manager = (manager_id or "").strip() or None
    if manager is not None and not STAFF_ID.match(manager):
        problems.append(("manager_id", "must be a staff id"))
    elif manager is not None and manager == staff_id:
        problems.append(("manager_id", "a member of staff cannot manage themselves"))
    urn = _urn(school_urn, problems)
    if chosen is StaffRole.SENCO and urn is None and not _named(problems, "school_urn"):
        problems.append(("school_urn", "a SENCO needs the URN of their school"))

    if problems or chosen is None:
        raise InvalidStaff(
            f"the directory entry {staff_id!r} has invalid fields: "
            + "; ".join(f"{f}: {m}" for f, m in problems),
            problems,
        )
    return StaffMember(
        staff_id=staff_id,
        name=name,
        email=email,
        role=chosen.value,
        manager_id=manager,
        mobile=number,
        school_urn=urn,
    )


def _named(problems: list[tuple[str, str]], field: str) -> bool:
    return any(f == field for f, _ in problems)


def _urn(value: int | str | None, problems: list[tuple[str, str]]) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        urn = int(str(value).strip())
    except ValueError:
        urn = -1
    if not URN_MIN <= urn <= URN_MAX:
        problems.append(("school_urn", f"must be a school URN, {URN_MIN} to {URN_MAX}"))
        return None
    return urn


class Directory(Protocol):
    """The questions the alert policy asks about staff."""

    def get(self, staff_id: str) -> StaffMember | None: ...

    def manager_of(self, staff_id: str) -> StaffMember | None: ...

    def sencos_at(self, school_urn: int) -> list[StaffMember]: ...


class StaffDirectory:
    """An immutable lookup of staff by id, held in memory."""

    def __init__(self, members: Iterable[StaffMember]) -> None:
        by_id: dict[str, StaffMember] = {}
        for member in members:
            if member.staff_id in by_id:
                raise DirectoryError(
                    f"staff id {member.staff_id!r} appears twice in the directory; "
                    "give every member of staff one row"
                )
            by_id[member.staff_id] = member
        self._by_id = by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[StaffMember]:
        return iter(self._by_id.values())

    def get(self, staff_id: str) -> StaffMember | None:
        return self._by_id.get(staff_id)

    def manager_of(self, staff_id: str) -> StaffMember | None:
        """The manager of ``staff_id``, if both are in the directory."""
        member = self._by_id.get(staff_id)
        if member is None or not member.manager_id:
            return None
        return self._by_id.get(member.manager_id)

    def sencos_at(self, school_urn: int) -> list[StaffMember]:
        """The SENCOs of the school with ``school_urn``, by staff id."""
        return sorted(
            (
                m
                for m in self._by_id.values()
                if m.role == StaffRole.SENCO and m.school_urn == school_urn
            ),
            key=lambda m: m.staff_id,
        )
