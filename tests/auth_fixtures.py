"""Fixtures of access control every test folder shares: a local OIDC issuer and tokens.

Registered from ``tests/conftest.py`` (``pytest_plugins``). ``local_issuer`` is one
``devstack.issuer.LocalIssuer`` serving on loopback for the whole run; ``auth_env``
points the AUTH_* settings of any app made in the test at it (through the environment,
so ``IntakeSettings(...)`` and ``create_app()`` both pick them up); ``mint`` makes the
``Authorization`` header of a token for any staff id and roles, and ``manager_headers``
that of a team manager, who may do everything the service tests do to a case. The apps
under test verify these tokens through the real path: discovery-free JWKS fetch over
HTTP, signature, issuer, audience and expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from devstack.issuer import LocalIssuer

Mint = Callable[..., dict[str, str]]
MANAGER_ID = "mgr-1"


@pytest.fixture(scope="session")
def local_issuer() -> Iterator[LocalIssuer]:
    """The run's local issuer, serving its discovery document and JWKS on loopback."""
    with LocalIssuer() as issuer:
        yield issuer


@pytest.fixture
def auth_env(
    local_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The AUTH_* settings of the local issuer, set in the environment for this test."""
    env = local_issuer.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AUTH_TEAM_MEMBERS", "AUTH_DEFAULT_TEAM", "AUTH_ROLE_NAMES"):
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.fixture
def mint(local_issuer: LocalIssuer) -> Mint:
    """``mint(staff_id, roles, **claims)``: the Authorization header of a new token."""

    def make(
        staff_id: str = MANAGER_ID,
        roles: Iterable[str] = ("team_manager",),
        **claims: Any,
    ) -> dict[str, str]:
        return local_issuer.headers_for(staff_id, roles, **claims)

    return make


@pytest.fixture
def manager_headers(mint: Mint) -> dict[str, str]:
    """A team manager of the default team: acts on every case the tests make."""
    return mint(MANAGER_ID, ["team_manager"])
