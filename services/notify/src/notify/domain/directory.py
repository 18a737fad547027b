"""Who the staff are: ids, names, addresses and who manages whom.

The directory is read-only here: the notify service loads it at start-up (from a CSV
file today) and asks it for a case coordinator's address and their manager. The later
directory with an HTTP API keeps the same two questions, so the alert policy does not
change when the source does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from notify.errors import DirectoryError


@dataclass(frozen=True, slots=True)
class StaffMember:
    """One member of staff who may receive alerts."""

    staff_id: str
    name: str
    email: str
    role: str
    manager_id: str | None = None


class StaffDirectory:
    """An immutable lookup of staff by id."""

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
