"""Access control: OpenID Connect bearer tokens, roles, per-case scope, the access log.

The pieces, each in its own module:

- ``sendkit.auth.settings``: ``AuthSettings``, the AUTH_* names a service's settings
  class inherits (issuer, audience, JWKS, claim names, teams, AUTH_MODE);
- ``sendkit.auth.tokens``: ``TokenVerifier`` and ``JwksCache``, which verify a JWT
  against the issuer's published keys (RS256/ES256 only) and read it as a ``Principal``;
- ``sendkit.auth.policy``: the roles, the reaches (all, team, own caseload, school), the
  shared grants (``READ_CASE``, ``ACT_ON_CASE``, ...) and ``Policy``, the declaration of
  every action a service offers; how a case's team is known is said there;
- ``sendkit.auth.web``: ``ServiceAuth``, which a FastAPI app installs, with
  ``require(action)`` for each route, the 401/403 problem answers and the auditors'
  ``GET /access-log``;
- ``sendkit.auth.access_log``: the record of reads of personal details;
- ``sendkit.auth.scope``: case scopes kept from intake's events, for a service whose
  own read model has no coordinator or school.

A service adopts it with its settings class inheriting ``AuthSettings``, a ``Policy``,
one ``ServiceAuth.from_settings(...).install(app)``, a ``staff: Principal = may_x``
parameter on each route (with ``may_x = auth.require("...")`` made beside the routes;
``staff.actor`` is the actor of the events), and ``auth.record_read`` where personal
details are answered.

The names below are imported from their modules when first used, so a process that
needs only ``AuthSettings`` (a stream worker's settings class inherits it) does not
load the web framework, the JWT library and the stores with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sendkit.auth.access_log import (
        AccessEntry,
        AccessLog,
    )
    from sendkit.auth.policy import (
        ACT_ON_CASE,
        ADMINISTER,
        MANAGE_CASELOAD,
        OPEN_CASE,
        READ_ACCESS_LOG,
        READ_CASE,
        RECORD_PANEL_DECISION,
        RECORD_SCHOOL_ACT,
        UNALLOCATED,
        CaseScope,
        Grant,
        Policy,
        Principal,
        Reach,
        Role,
        Teams,
    )
    from sendkit.auth.settings import (
        AuthSettings,
    )
    from sendkit.auth.tokens import (
        AuthConfigError,
        AuthError,
        JwksCache,
        NotAuthenticated,
        TokenVerifier,
    )
    from sendkit.auth.web import (
        AUTH_MODE_HEADER,
        NotAuthorized,
        ServiceAuth,
    )

_MODULE_OF = {
    "AccessEntry": "sendkit.auth.access_log",
    "AccessLog": "sendkit.auth.access_log",
    "ACT_ON_CASE": "sendkit.auth.policy",
    "ADMINISTER": "sendkit.auth.policy",
    "MANAGE_CASELOAD": "sendkit.auth.policy",
    "OPEN_CASE": "sendkit.auth.policy",
    "READ_ACCESS_LOG": "sendkit.auth.policy",
    "READ_CASE": "sendkit.auth.policy",
    "RECORD_PANEL_DECISION": "sendkit.auth.policy",
    "RECORD_SCHOOL_ACT": "sendkit.auth.policy",
    "UNALLOCATED": "sendkit.auth.policy",
    "CaseScope": "sendkit.auth.policy",
    "Grant": "sendkit.auth.policy",
    "Policy": "sendkit.auth.policy",
    "Principal": "sendkit.auth.policy",
    "Reach": "sendkit.auth.policy",
    "Role": "sendkit.auth.policy",
    "Teams": "sendkit.auth.policy",
    "AuthSettings": "sendkit.auth.settings",
    "AuthConfigError": "sendkit.auth.tokens",
    "AuthError": "sendkit.auth.tokens",
    "JwksCache": "sendkit.auth.tokens",
    "NotAuthenticated": "sendkit.auth.tokens",
    "TokenVerifier": "sendkit.auth.tokens",
    "AUTH_MODE_HEADER": "sendkit.auth.web",
    "NotAuthorized": "sendkit.auth.web",
    "ServiceAuth": "sendkit.auth.web",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ACT_ON_CASE",
    "ADMINISTER",
    "AUTH_MODE_HEADER",
    "MANAGE_CASELOAD",
    "OPEN_CASE",
    "READ_ACCESS_LOG",
    "READ_CASE",
    "RECORD_PANEL_DECISION",
    "RECORD_SCHOOL_ACT",
    "UNALLOCATED",
    "AccessEntry",
    "AccessLog",
    "AuthConfigError",
    "AuthError",
    "AuthSettings",
    "CaseScope",
    "Grant",
    "JwksCache",
    "NotAuthenticated",
    "NotAuthorized",
    "Policy",
    "Principal",
    "Reach",
    "Role",
    "ServiceAuth",
    "Teams",
    "TokenVerifier",
]
