"""Access control for a service's FastAPI app: one object, one line per route.

A service builds one ``ServiceAuth`` from its settings, its ``Policy`` and a scope hook
(``case_scope(case_id) -> CaseScope``, read from the service's own read model), calls
``auth.install(app)`` once, and gives every route a principal that the policy allows::

    auth = ServiceAuth.from_settings(settings, POLICY, store=store, case_scope=scope)
    auth.install(app)

    may_decide = auth.require("cases.decide")

    @router.post("/cases/{case_id}/decision")
    def record_decision(
        case_id: str, body: DecisionBody, staff: Principal = may_decide
    ) -> ...:
        service.handle(command, actor=staff.actor)

(A default value rather than ``Annotated[...]``: a module with ``from __future__ import
annotations`` keeps annotations as strings, which FastAPI evaluates in the module's
globals, where a ``ServiceAuth`` made inside a factory is not.)

``require(action)`` checks, before the route runs, that the request carries a valid
bearer token (else 401, with ``WWW-Authenticate``) and that one of the token's roles
has a grant of ``action`` whose reach covers the case: the one the path's ``case_id``
names by default, the coordinator named by ``coordinator="<param>"``, the school named
by ``school="<param>"``, or, on a route that names none, a new case (else 403); with
``listing=True`` the role alone is checked and the route filters its rows. Each
refusal is problem details and one log line with the action, the reason code and the
pseudonymous ids only. ``auth.permits(staff, action, scope)`` filters lists row by row.

A route that shows a case's personal details calls ``auth.record_read(request, staff,
case_id, fields)`` once it has the case and before it answers; the auditors' endpoint
``GET /access-log`` (action ``access-log.read``) is added by ``install``.

With ``AUTH_MODE=off`` (refused by the settings outside development) no token is read:
every request acts with every role as the ``X-Staff-Id`` header names (or ``system``),
a WARNING says so at start-up, and every answer carries ``X-Auth-Mode: off``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sendkit.auth.access_log import AccessEntry, AccessLog
from sendkit.auth.policy import (
    UNALLOCATED,
    CaseScope,
    Policy,
    Principal,
    Role,
    Teams,
)
from sendkit.auth.settings import AuthSettings
from sendkit.auth.tokens import (
    AuthError,
    NotAuthenticated,
    TokenVerifier,
    teams_of,
)
from sendkit.events import SYSTEM_ACTOR
from sendkit.logging import get_correlation_id
from sendkit.problems import Problem, problem_type
from sendkit.store.base import EventStore

log = logging.getLogger(__name__)

KEYS_UNAVAILABLE = "keys_unavailable"
KEYS_RETRY_AFTER_S = 5
"""Seconds a caller is asked to wait while the issuer's keys cannot be fetched."""

AUTH_MODE_HEADER = "X-Auth-Mode"
STAFF_ID_HEADER = "X-Staff-Id"
ACCESS_LOG_ACTION = "access-log.read"

CaseScopeHook = Callable[[str], CaseScope]
"""The scope of a case from the service's read model (empty when it is unknown)."""


class NotAuthorized(AuthError):
    """The principal's roles do not allow the action on this case (answered 403)."""

    def __init__(self, action: str, principal: Principal) -> None:
        roles = ", ".join(sorted(principal.roles)) or "none"
        super().__init__(
            f"your roles ({roles}) do not allow {action} here: it needs one of the "
            "roles the service's policy grants it, for a case within your reach"
        )
        self.action = action
        self.principal = principal


class AccessEntryOut(BaseModel):
    """One read of a case's personal details (no personal data)."""

    id: str
    at: datetime
    staff_id: str
    roles: list[str]
    case_id: str
    endpoint: str
    fields: list[str]
    correlation_id: str
    service: str

    @classmethod
    def of(cls, entry: AccessEntry) -> AccessEntryOut:
        return cls(
            id=entry.id,
            at=entry.at,
            staff_id=entry.staff_id,
            roles=list(entry.roles),
            case_id=entry.case_id,
            endpoint=entry.endpoint,
            fields=list(entry.fields),
            correlation_id=entry.correlation_id,
            service=entry.service,
        )


class AccessLogOut(BaseModel):
    """A page of the access log and how many entries matched in all."""

    total: int
    offset: int
    limit: int
    entries: list[AccessEntryOut]


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An OpenID Connect access token (JWT) from the council's issuer.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
StaffIdHeader = Annotated[
    str | None,
    Header(
        alias=STAFF_ID_HEADER,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="AUTH_MODE=off only: the pseudonymous id of who acts.",
    ),
]


class ServiceAuth:
    """Authentication, the policy's checks and the access log of one service."""

    def __init__(
        self,
        settings: AuthSettings,
        policy: Policy,
        *,
        store: EventStore,
        case_scope: CaseScopeHook,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.case_scope = case_scope
        self.service = policy.service
        self.enabled = settings.auth_mode == "on"
        self.teams: Teams = teams_of(settings)
        self.verifier = (verifier or TokenVerifier(settings)) if self.enabled else None
        self.access_log = AccessLog(store, policy.service)

    @classmethod
    def from_settings(
        cls,
        settings: AuthSettings,
        policy: Policy,
        *,
        store: EventStore,
        case_scope: CaseScopeHook,
    ) -> ServiceAuth:
        """The service's access control; ``AuthConfigError`` names what is unset."""
        return cls(settings, policy, store=store, case_scope=case_scope)

    # --- checks -----------------------------------------------------------------------

    def require(
        self,
        action: str,
        *,
        case: str = "case_id",
        coordinator: str | None = None,
        school: str | None = None,
        listing: bool = False,
    ) -> Any:
        """A dependency giving the principal if the policy allows ``action`` here.

        With ``listing`` the route answers a list it filters row by row with
        ``permits``: any role with a grant of ``action`` may call it.
        """
        qualified = self.policy.qualified(action)
        roles = self.policy.roles_for(qualified)  # an undeclared action fails here

        def scope_of(request: Request) -> CaseScope:
            params = request.path_params
            if coordinator is not None:
                return CaseScope(coordinator_id=str(params.get(coordinator, "")))
            if school is not None:
                raw = str(params.get(school, ""))
                urns = [int(raw)] if raw.isdigit() else []
                return CaseScope.of(None, school_urns=urns)
            if case in params:
                return self.case_scope(str(params[case]))
            return UNALLOCATED

        def check(request: Request, principal: Principal) -> Principal:
            if listing:
                if principal.roles & roles:
                    return principal
                self._log_refusal(request, 403, qualified, "forbidden", principal, None)
                raise NotAuthorized(qualified, principal)
            scope = scope_of(request)
            if not self.permits(principal, qualified, scope):
                self._log_refusal(
                    request, 403, qualified, "forbidden", principal, scope
                )
                raise NotAuthorized(qualified, principal)
            return principal

        if self.enabled:

            def verified(request: Request, credentials: Credentials) -> Principal:
                return check(request, self.authenticate(request, credentials))

            return Depends(verified)

        def unverified(request: Request, staff_id: StaffIdHeader = None) -> Principal:
            return check(request, self.development_principal(staff_id))

        return Depends(unverified)

    def authenticate(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> Principal:
        """The principal of the request's bearer token; ``NotAuthenticated`` if none."""
        assert self.verifier is not None
        if credentials is None or credentials.scheme.lower() != "bearer":
            error = NotAuthenticated(
                "no_token",
                "this API needs an OpenID Connect bearer token: send "
                "'Authorization: Bearer <token>'",
            )
            self._log_refusal(request, 401, None, error.reason, None, None)
            raise error
        try:
            return self.verifier.verify(credentials.credentials)
        except NotAuthenticated as error:
            status = 503 if error.reason == KEYS_UNAVAILABLE else 401
            self._log_refusal(request, status, None, error.reason, None, None)
            raise

    def development_principal(self, staff_id: str | None) -> Principal:
        """AUTH_MODE=off: whoever the header names, with every role."""
        actor = staff_id or SYSTEM_ACTOR
        return Principal(
            staff_id=actor,
            roles=frozenset(Role),
            team=self.teams.team_of(actor),
            verified=False,
        )

    def permits(self, principal: Principal, action: str, scope: CaseScope) -> bool:
        """Whether the policy lets ``principal`` do ``action`` on ``scope``."""
        return self.policy.permits(principal, action, scope, self.teams)

    def may_read(self, principal: Principal, action: str, case_id: str) -> bool:
        """Whether ``principal`` may do ``action`` on the case ``case_id``."""
        return self.permits(principal, action, self.case_scope(case_id))

    # --- the access log ---------------------------------------------------------------

    def record_read(
        self,
        request: Request,
        principal: Principal,
        case_id: str,
        fields: tuple[str, ...],
    ) -> None:
        """Record that ``principal`` is being shown ``fields`` of ``case_id``."""
        route = getattr(request.scope.get("route"), "path", request.url.path)
        entry = self.access_log.record(
            principal, case_id, f"{request.method} {route}", fields
        )
        log.info(
            "personal details of case %s read",
            case_id,
            extra={
                "case_id": case_id,
                "staff_id": principal.staff_id,
                "endpoint": entry.endpoint,
                "access_entry": entry.id,
            },
        )

    # --- the app ----------------------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        """Add the 401/403 answers, the auditors' endpoint and the off-mode warning."""
        app.state.auth = self
        app.add_exception_handler(NotAuthenticated, self._unauthenticated)
        app.add_exception_handler(NotAuthorized, self._forbidden)
        self._add_access_log_route(app)
        if not self.enabled:
            log.warning(
                "AUTHENTICATION IS OFF for %s (AUTH_MODE=off, SEND_ENV=development): "
                "any caller may act as any staff id with every role; never expose "
                "this process beyond this machine",
                self.service,
                extra={"auth_mode": "off", "service": self.service},
            )
            app.add_middleware(_AuthModeHeader)
        else:
            log.info(
                "bearer tokens verified for %s",
                self.service,
                extra={
                    "auth_mode": "on",
                    "issuer": self.settings.auth_issuer,
                    "audience": self.settings.auth_audience,
                },
            )

    def _add_access_log_route(self, app: FastAPI) -> None:
        log_reader = self.require(ACCESS_LOG_ACTION)

        @app.get(
            "/access-log",
            response_model=AccessLogOut,
            tags=["audit"],
            summary="Who read which case's personal details (auditors)",
        )
        def read_access_log(
            staff: Principal = log_reader,
            case_id: Annotated[str | None, Query(max_length=64)] = None,
            staff_id: Annotated[str | None, Query(max_length=64)] = None,
            since: AwareDatetime | None = None,
            until: AwareDatetime | None = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            offset: Annotated[int, Query(ge=0)] = 0,
        ) -> AccessLogOut:
            found = self.access_log.entries(
                case_id=case_id,
                staff_id=staff_id,
                since=since,
                until=until,
            )
            return AccessLogOut(
                total=len(found),
                offset=offset,
                limit=limit,
                entries=[AccessEntryOut.of(e) for e in found[offset : offset + limit]],
            )

    async def _unauthenticated(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAuthenticated)
        if exc.reason == KEYS_UNAVAILABLE:
            # Not the caller's fault: their token may well be good. A 401 would send
            # them to sign in again; a 503 tells them to try again shortly.
            return Problem(
                status=503,
                title="Service unavailable",
                detail=exc.detail,
                type=problem_type("keys-unavailable"),
                instance=request.url.path,
                extensions=_extensions(reason=exc.reason),
            ).response(headers={"Retry-After": str(KEYS_RETRY_AFTER_S)})
        challenge = f'Bearer realm="{self.service}"'
        if exc.reason != "no_token":
            challenge += f', error="invalid_token", error_description="{exc.detail}"'
        return Problem(
            status=401,
            title="Not authenticated",
            detail=exc.detail,
            type=problem_type("unauthenticated"),
            instance=request.url.path,
            extensions=_extensions(reason=exc.reason),
        ).response(headers={"WWW-Authenticate": challenge})

    async def _forbidden(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAuthorized)
        return Problem(
            status=403,
            title="Forbidden",
            detail=str(exc),
            type=problem_type("forbidden"),
            instance=request.url.path,
            extensions=_extensions(action=exc.action),
        ).response()

    def _log_refusal(
        self,
        request: Request,
        status: int,
        action: str | None,
        reason: str,
        principal: Principal | None,
        scope: CaseScope | None,
    ) -> None:
        # Only codes and pseudonymous ids: never the token, a name or a claim's value.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        log.warning(
            "refused %s %s with %s: %s",
            request.method,
            route,
            status,
            reason,
            extra={
                "status": status,
                "reason": reason,
                "action": action,
                "route": route,
                "staff_id": principal.staff_id if principal else None,
                "case_id": scope.case_id if scope else None,
            },
        )


def _extensions(**values: str) -> dict[str, str]:
    correlation_id = get_correlation_id()
    found = dict(values)
    if correlation_id:
        found["correlation_id"] = correlation_id
    return found


class _AuthModeHeader:
    """Marks every answer of a process with verification off: ``X-Auth-Mode: off``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"x-auth-mode", b"off")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, marked)
