"""Who may do what to which case: roles, reaches, and each service's policy.

A service declares its ``Policy``: every action it offers (``"intake:cases.write"``)
with the grants that allow it. A ``Grant`` is a role and a ``Reach``, how far the role
goes for that action:

- ``ALL``: any case;
- ``TEAM``: a case whose coordinator is in the member's team, or a case no coordinator
  has yet (the team's queue of new requests, which every team shares);
- ``OWN``: a case assigned to the member (their caseload);
- ``SCHOOL``: a case of one of the schools (URNs) in the member's token.

The rules of the service are the grants below, shared by every service so that the
same words mean the same everywhere: a coordinator acts on their own caseload and reads
the team's; a manager acts on the team's; a SENCO reads only their schools' cases and
records only what a school does (review meetings, reports); a panel officer records
panel decisions (and reads the cases put to the panel); an administrator maintains the
directory and settings; an auditor reads everything, the access log included.

How a case's team is known: it is the team of the case's coordinator, looked up in
``AUTH_TEAM_MEMBERS`` (staff id to team), and ``AUTH_DEFAULT_TEAM`` for anyone the map
does not name. A member's own team is their token's team claim, else the same lookup.
A council with one SEND team configures nothing; one with several keeps the map (and
its provider's team claim) in step. Moving a coordinator to another team in the map
moves their caseload with them, since the team is looked up at each request, not
recorded with the case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """The roles a token can carry (by these names, or mapped by AUTH_ROLE_NAMES)."""

    EHC_COORDINATOR = "ehc_coordinator"
    TEAM_MANAGER = "team_manager"
    SENCO = "senco"
    PANEL_OFFICER = "panel_officer"
    SERVICE_ADMIN = "service_admin"
    AUDITOR = "auditor"


class Reach(StrEnum):
    """How far a grant goes: which cases it covers."""

    ALL = "all"
    TEAM = "team"
    OWN = "own"
    SCHOOL = "school"


@dataclass(frozen=True, slots=True)
class Grant:
    """A role allowed an action on the cases within its reach."""

    role: Role
    reach: Reach


@dataclass(frozen=True, slots=True)
class CaseScope:
    """What access control needs to know of a case: whose it is and which schools.

    A service builds it from its own read model. A case the read model does not know
    (or one not yet assigned) has no coordinator and no schools: it is in every team's
    queue, on no school's list, and in nobody's own caseload.
    """

    case_id: str | None = None
    coordinator_id: str | None = None
    school_urns: frozenset[int] = frozenset()

    @classmethod
    def of(
        cls,
        case_id: str | None,
        *,
        coordinator_id: str | None = None,
        school_urns: Iterable[int | None] = (),
    ) -> CaseScope:
        return cls(
            case_id=case_id,
            coordinator_id=coordinator_id,
            school_urns=frozenset(urn for urn in school_urns if urn is not None),
        )


UNALLOCATED = CaseScope()
"""The scope of a command that makes a new case, or names no case."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The member of staff a request acts for, as their verified token says.

    ``staff_id`` is pseudonymous (the token's configured claim), and is the actor
    recorded on every event the request causes. ``verified`` is False only when
    AUTH_MODE=off, where the principal is made up from the X-Staff-Id header.
    """

    staff_id: str
    roles: frozenset[Role]
    team: str
    school_urns: frozenset[int] = frozenset()
    verified: bool = True

    @property
    def actor(self) -> str:
        """The actor to record on events."""
        return self.staff_id


@dataclass(frozen=True, slots=True)
class Teams:
    """Which team each member of staff is in (``AUTH_TEAM_MEMBERS``, default team)."""

    members: Mapping[str, str] = field(default_factory=dict)
    default: str = "send"

    def team_of(self, staff_id: str) -> str:
        return self.members.get(staff_id, self.default)


# The shared rules, named by what the action is.
READ_CASE: tuple[Grant, ...] = (
    Grant(Role.EHC_COORDINATOR, Reach.TEAM),
    Grant(Role.TEAM_MANAGER, Reach.TEAM),
    Grant(Role.SENCO, Reach.SCHOOL),
    Grant(Role.PANEL_OFFICER, Reach.ALL),
    Grant(Role.AUDITOR, Reach.ALL),
)
"""Reading a case (or a list of cases, filtered to those each reader may see)."""

OPEN_CASE: tuple[Grant, ...] = (
    Grant(Role.EHC_COORDINATOR, Reach.TEAM),
    Grant(Role.TEAM_MANAGER, Reach.TEAM),
)
"""Making a new case: a request received, a plan transferred in."""

ACT_ON_CASE: tuple[Grant, ...] = (
    Grant(Role.EHC_COORDINATOR, Reach.OWN),
    Grant(Role.TEAM_MANAGER, Reach.TEAM),
)
"""Casework: recording what the council did on a case."""

RECORD_SCHOOL_ACT: tuple[Grant, ...] = (
    *ACT_ON_CASE,
    Grant(Role.SENCO, Reach.SCHOOL),
)
"""What a school does and its SENCO may record: a review meeting held, its report."""

RECORD_PANEL_DECISION: tuple[Grant, ...] = (
    *ACT_ON_CASE,
    Grant(Role.PANEL_OFFICER, Reach.ALL),
)
"""A decision a panel takes, recorded by its officer or by the case's caseworkers."""

MANAGE_CASELOAD: tuple[Grant, ...] = (Grant(Role.TEAM_MANAGER, Reach.TEAM),)
"""Allocating cases to coordinators, and moving a coordinator's caseload."""

READ_ACCESS_LOG: tuple[Grant, ...] = (Grant(Role.AUDITOR, Reach.ALL),)
"""Reading the log of who read which case's personal details."""

ADMINISTER: tuple[Grant, ...] = (Grant(Role.SERVICE_ADMIN, Reach.ALL),)
"""Maintaining the staff directory and the service's settings."""


class Policy:
    """Every action one service offers, with the grants that allow it."""

    def __init__(self, service: str, actions: Mapping[str, Iterable[Grant]]) -> None:
        self.service = service
        self._grants: dict[str, tuple[Grant, ...]] = {
            self.qualified("access-log.read"): READ_ACCESS_LOG
        }
        for name, grants in actions.items():
            self._grants[self.qualified(name)] = tuple(grants)

    def qualified(self, action: str) -> str:
        """``cases.write`` as ``intake:cases.write``; a qualified name is kept."""
        return action if ":" in action else f"{self.service}:{action}"

    @property
    def actions(self) -> dict[str, tuple[Grant, ...]]:
        return dict(self._grants)

    def grants(self, action: str) -> tuple[Grant, ...]:
        """The grants of ``action``; a KeyError names an action the policy lacks."""
        name = self.qualified(action)
        try:
            return self._grants[name]
        except KeyError:
            raise KeyError(
                f"the {self.service} policy has no action {name!r}: declare it in the "
                "service's Policy before a route requires it"
            ) from None

    def roles_for(self, action: str) -> frozenset[Role]:
        """The roles that may do ``action`` on some case."""
        return frozenset(grant.role for grant in self.grants(action))

    def permits(
        self, principal: Principal, action: str, scope: CaseScope, teams: Teams
    ) -> bool:
        """Whether ``principal`` may do ``action`` on the case ``scope`` describes."""
        return any(
            grant.role in principal.roles
            and reaches(grant.reach, principal, scope, teams)
            for grant in self.grants(action)
        )


def reaches(reach: Reach, principal: Principal, scope: CaseScope, teams: Teams) -> bool:
    """Whether a grant of ``reach`` held by ``principal`` covers ``scope``."""
    if reach is Reach.ALL:
        return True
    if reach is Reach.OWN:
        return scope.coordinator_id == principal.staff_id
    if reach is Reach.TEAM:
        coordinator = scope.coordinator_id
        return coordinator is None or teams.team_of(coordinator) == principal.team
    return bool(scope.school_urns & principal.school_urns)
