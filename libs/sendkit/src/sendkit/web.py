"""The FastAPI app factory every HTTP service starts from.

``create_app(service_name, readiness_checks=..., error_map=...)`` returns an app with:

- ``GET /healthz``: liveness: 200 while the process answers and none of its background
  loops (a relay or subscriber thread, tracked in ``sendkit.health.PROGRESS``) has
  stalled, that is gone ``SEND_STALL_SECONDS`` without progress while work waited;
  otherwise 503 with problem details naming the stalled loops. A loop that merely
  cannot reach Kafka with no work known to wait is not stalled, so a Kafka outage
  does not fail it;
- ``GET /readyz``: runs each readiness check (a cheap callable that raises, or returns
  ``False``, when its dependency is not usable) and answers 200, or 503 with problem
  details naming every check that failed;
- ``GET /metrics``: Prometheus text, including a request counter and a latency
  histogram labelled by route template;
- a middleware that adopts the ``X-Correlation-ID`` header (or generates an id), holds
  it in ``sendkit.logging``'s context for the request, echoes it on the response, logs
  one line per request and counts it. A header value longer than 128 characters, or
  with a character outside letters, digits and ``. _ : -`` (or not starting with a
  letter or digit), is not adopted: the request goes on under a fresh id, which the
  response echoes, and a warning gives the refused value's length (not the value).
  Replacing rather than refusing keeps a client with a careless id working, while
  nothing it sent reaches a log line or a Kafka header;
- a request body limit (``max_body_bytes``, ``SEND_MAX_BODY_BYTES``, 1 MiB by
  default): a ``Content-Length`` above it is answered 413 (``/problems/body-too-large``,
  field ``body``) before anything is read, and a body sent without one (chunked) is
  cut off with the same answer once it passes the limit, before it is parsed;
- no NUL characters: a JSON body holding the escape ``\u0000`` (or a raw NUL byte), or
  a path or query string holding ``%00``, is answered 400 (``/problems/nul-character``)
  naming where it was, before any model sees it. The services share no request base
  model, so this is done on the raw request, for every route at once;
- RFC 9457 problem details (``sendkit.problems``) for every error answer: invalid input
  (422 ``/problems/validation-error``, one entry in ``errors`` per bad field, ``body``
  for a body that is not JSON, or that nests too deeply or is not UTF-8, which FastAPI
  itself would answer with a bare 400), ``HTTPException``, unknown routes (404),
  wrong methods (405), every exception class in ``error_map``, and any other exception
  (500, with no internals beyond the correlation id to quote). Only a bare HTTP
  status (an unknown route, a wrong method, an ``HTTPException`` a route raises) has
  the type ``about:blank``; a service's routes raise errors of its ``error_map``.

The kernel's own errors are mapped by default: a reused idempotency key 422, a command
that kept conflicting 409, a store that is locked or unreachable 503.

Command routes share three pieces: ``StaffIdHeader``, the ``X-Staff-Id`` header naming
who acts (``actor_of`` turns its absence into ``system``); ``IdempotencyKey`` from
``sendkit.idempotency``; and ``command_response``, which answers a ``CommandAnswer``
with the route's status, or with the recorded status and ``Idempotent-Replayed: true``
when it replays an earlier answer.

``serve(app, host=..., port=...)`` runs an app with uvicorn, its stop bounded by
``SEND_SHUTDOWN_TIMEOUT_SECONDS`` (``sendkit.health.http_stop_budget``); every
service's ``python -m`` entry point serves through it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sendkit.commands import CommandAnswer, CommandConflict
from sendkit.events import SYSTEM_ACTOR
from sendkit.health import (
    PROGRESS,
    HealthSettings,
    ProgressRegistry,
    http_stop_budget,
)
from sendkit.idempotency import REPLAYED_HEADER, IdempotencyError
from sendkit.logging import (
    CORRELATION_HEADER,
    acceptable_correlation_id,
    correlation_scope,
    get_correlation_id,
)
from sendkit.metrics import UNMATCHED_ROUTE, HttpMetrics
from sendkit.problems import (
    ABOUT_BLANK,
    ErrorMap,
    FieldError,
    Problem,
    field_errors_of,
    problem_type,
    status_title,
    validation_field_errors,
)
from sendkit.settings import HttpLimits
from sendkit.store.base import StoreUnavailable

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], object]
"""Raises, or returns ``False``, when what it checks is not usable."""

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

STAFF_ID_HEADER = "X-Staff-Id"

StaffIdHeader = Annotated[
    str | None,
    Header(
        alias=STAFF_ID_HEADER,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The pseudonymous id of the member of staff acting.",
    ),
]
"""A route parameter: who acts, as the ``X-Staff-Id`` header names them."""


def actor_of(staff_id: str | None) -> str:
    """The actor to record: the staff id given, or ``system`` when none was."""
    return staff_id or SYSTEM_ACTOR


def command_response(
    result: CommandAnswer, status_code: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The answer to a command: its body with the route's status, or on a replay the
    recorded status and ``Idempotent-Replayed: true``."""
    answer_headers = dict(headers or {})
    if result.replayed:
        answer_headers[REPLAYED_HEADER] = "true"
        status_code = result.status_code or status_code
    return JSONResponse(result.body, status_code=status_code, headers=answer_headers)


def default_error_map() -> ErrorMap:
    return (
        ErrorMap()
        .register(
            IdempotencyError, 422, slug="idempotency-key", title="Idempotency key"
        )
        .register(CommandConflict, 409, slug="conflict", title="Conflict")
        .register(
            StoreUnavailable, 503, slug="store-unavailable", title="Store unavailable"
        )
    )


def route_template(scope: Scope) -> str:
    """The path template of the route that answered, such as ``/cases/{case_id}``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    root = scope.get("root_path", "")
    return f"{root}{path}" if root and not path.startswith(root) else path


def _instance(request: Request) -> str:
    return request.url.path


def _extensions() -> dict[str, Any]:
    correlation_id = get_correlation_id()
    return {"correlation_id": correlation_id} if correlation_id else {}


class RequestContextMiddleware:
    """Correlation id, request log, metrics and the last-resort 500 answer.

    It is an ASGI middleware inside Starlette's error middleware, so it also sees the
    exceptions no handler took; it answers those itself with a 500 problem, which keeps
    the correlation header and the metrics right for them too.
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-correlation-id":
                incoming = value.decode("latin-1")
                break
        adopted = acceptable_correlation_id(incoming)

        with correlation_scope(adopted) as correlation_id:
            if incoming is not None and adopted is None:
                # Its length only: the value itself is what may not be logged.
                log.warning(
                    "%s refused (%d characters, or characters outside the safe "
                    "set); the request goes on under a fresh id",
                    CORRELATION_HEADER,
                    len(incoming),
                    extra={"header": CORRELATION_HEADER, "length": len(incoming)},
                )
            status = 500
            started = False

            async def send_with_context(message: Message) -> None:
                nonlocal status, started
                if message["type"] == "http.response.start":
                    started = True
                    status = message["status"]
                    headers = list(message.get("headers", ()))
                    headers.append(
                        (CORRELATION_HEADER.lower().encode(), correlation_id.encode())
                    )
                    message = {**message, "headers": headers}
                await send(message)

            began = time.perf_counter()
            try:
                await self.app(scope, receive, send_with_context)
            except Exception:
                log.exception(
                    "unhandled error answering %s %s",
                    scope.get("method"),
                    route_template(scope),
                    extra={"path": scope.get("path")},
                )
                if started:
                    raise
                problem = Problem(
                    status=500,
                    title="Internal Server Error",
                    detail=(
                        "the service failed to answer this request; nothing more is "
                        "shown here: quote the correlation id to an operator"
                    ),
                    type=problem_type("internal-error"),
                    instance=scope.get("path"),
                    extensions={"correlation_id": correlation_id},
                )
                await problem.response()(scope, receive, send_with_context)
            finally:
                elapsed = time.perf_counter() - began
                route = route_template(scope)
                method = str(scope.get("method", ""))
                self.metrics.observe(method, route, status, elapsed)
                level = (
                    logging.DEBUG if scope.get("path") in PROBE_PATHS else logging.INFO
                )
                log.log(
                    level,
                    "%s %s answered %s",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )


_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""A JSON ``\\u0000`` escape: an odd run of backslashes before ``u0000``."""


class _BodyRefused(StarletteHTTPException):
    """A body the limits refuse, raised from ``receive`` so FastAPI passes it on.

    It carries the problem kind its answer has, which is the one the same refusal
    has when it is made from the headers alone (``body-too-large``, ``nul-character``).
    """

    def __init__(self, status_code: int, detail: str, slug: str, message: str) -> None:
        super().__init__(status_code, detail)
        self.slug = slug
        self.field_errors = [FieldError("body", message)]


def _holds_nul(body: bytes) -> bool:
    return b"\x00" in body or _NUL_ESCAPE.search(body) is not None


class RequestLimitsMiddleware:
    """The body size limit and the NUL refusal, applied before any route parses."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        refusal = self._refuse_head(scope)
        if refusal is not None:
            await refusal.response()(scope, receive, send)
            return

        limit = self.max_body_bytes
        received = bytearray()

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request":
                return message
            received.extend(message.get("body", b""))
            if len(received) > limit:
                raise _BodyRefused(
                    413, _too_large(limit), "body-too-large", _TOO_LARGE_FIELD
                )
            if not message.get("more_body", False) and _holds_nul(bytes(received)):
                raise _BodyRefused(
                    400,
                    _NUL_DETAIL.format(where="the body"),
                    "nul-character",
                    _NUL_FIELD,
                )
            return message

        await self.app(scope, limited_receive, send)

    def _refuse_head(self, scope: Scope) -> Problem | None:
        where = None
        if b"%00" in scope.get("query_string", b""):
            where = "the query string"
        elif "\x00" in scope.get("path", "") or b"%00" in scope.get("raw_path", b""):
            where = "the path"
        if where is not None:
            return _refusal(
                scope, 400, _NUL_DETAIL.format(where=where), "nul-character"
            )
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return _refusal(
                        scope, 400, "Content-Length is not a number", "bad-request"
                    )
                if length > self.max_body_bytes:
                    return _refusal(
                        scope,
                        413,
                        _too_large(self.max_body_bytes),
                        "body-too-large",
                        [FieldError("body", _TOO_LARGE_FIELD)],
                    )
        return None


_NUL_DETAIL = (
    "{where} holds a NUL character (\\u0000 or %00), which no field accepts: remove it"
)
_NUL_FIELD = "holds a NUL character"
_TOO_LARGE_FIELD = "is longer than this service reads"

_FASTAPI_BODY_ERROR = "There was an error parsing the body"
"""FastAPI's 400 for a body its reader failed on other than by JSON syntax (which it
reports as invalid input): the exception it raises is chained to the cause."""


def _too_large(limit: int) -> str:
    return (
        f"the request body is longer than {limit} bytes, the most this service "
        "reads: send less (SEND_MAX_BODY_BYTES sets the limit)"
    )


def _refusal(
    scope: Scope,
    status: int,
    detail: str,
    slug: str,
    errors: list[FieldError] | None = None,
) -> Problem:
    return Problem(
        status=status,
        title=status_title(status),
        detail=detail,
        type=problem_type(slug),
        instance=scope.get("path"),
        errors=errors or (),
        extensions=_extensions(),
    )


def _unreadable_body(exc: StarletteHTTPException) -> FieldError | None:
    """What was wrong with a body FastAPI could not read, if ``exc`` says so.

    Malformed JSON reaches the handlers as invalid input, but a body too deeply
    nested for the JSON reader (a ``RecursionError``) or not UTF-8 is answered by
    FastAPI with a bare 400; both are input the client must change, so they are
    answered as the same kind of 422 as malformed JSON.
    """
    cause = exc.__cause__
    if exc.status_code != 400 or exc.detail != _FASTAPI_BODY_ERROR or cause is None:
        return None
    if isinstance(cause, RecursionError):
        return FieldError("body", "nests arrays or objects too deeply to be read")
    return FieldError("body", "the body is not valid JSON")


def _invalid_input(request: Request, errors: list[FieldError]) -> Response:
    """The one 422 answer for input refused before any route ran."""
    names = ", ".join(dict.fromkeys(e.field for e in errors))
    return Problem(
        status=422,
        title="Invalid request",
        detail=f"the request has invalid or missing fields: {names}",
        type=problem_type("validation-error"),
        instance=_instance(request),
        errors=errors,
        extensions=_extensions(),
    ).response()


def _install_problem_handlers(app: FastAPI, error_map: ErrorMap) -> None:
    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _invalid_input(request, validation_field_errors(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return _invalid_input(request, [unreadable])
        title = status_title(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail else title
        if exc.status_code == 404 and detail == title:
            detail = f"there is nothing at {request.url.path}: check the path"
        # The kernel's own refusals have a kind of their own; a bare HTTP status
        # (an unknown route, a wrong method) is about:blank, as RFC 9457 suggests.
        slug = exc.slug if isinstance(exc, _BodyRefused) else None
        return Problem(
            status=exc.status_code,
            title=title,
            detail=detail,
            type=ABOUT_BLANK if slug is None else problem_type(slug),
            instance=_instance(request),
            errors=field_errors_of(exc),
            extensions=_extensions(),
        ).response(headers=exc.headers)

    async def domain_error(request: Request, exc: Exception) -> Response:
        rule = error_map.rule_for(exc)
        if rule is None:  # registered by class, so a rule exists; defensive only
            raise exc
        if rule.status >= 500:
            log.warning(
                "answered %s: %s", rule.status, exc, extra={"error": type(exc).__name__}
            )
        return Problem(
            status=rule.status,
            title=rule.title,
            detail=str(exc),
            type=problem_type(rule.slug),
            instance=_instance(request),
            errors=field_errors_of(exc),
            extensions=_extensions(),
        ).response()

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for error_class in error_map.classes():
        app.add_exception_handler(error_class, domain_error)


def _install_probes(
    app: FastAPI,
    service_name: str,
    checks: Mapping[str, ReadinessCheck],
    metrics: HttpMetrics,
    progress: ProgressRegistry,
    stall_after_s: float,
) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> Response:
        loops = progress.report(stall_after_s)
        stalled = [name for name, state in loops.items() if state["stalled"]]
        if stalled:
            log.error(
                "liveness failed: %s made no progress for %.0f s with work waiting",
                ", ".join(stalled),
                stall_after_s,
                extra={"stalled": stalled},
            )
            return Problem(
                status=503,
                title="Stalled",
                detail=(
                    f"no progress for more than {stall_after_s:.0f} s while work "
                    "waited: " + ", ".join(stalled)
                ),
                type=problem_type("stalled"),
                instance=_instance(request),
                extensions={"loops": loops, **_extensions()},
            ).response()
        return JSONResponse({"status": "ok", "service": service_name})

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> Response:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                outcome = check()
            except Exception as error:
                log.warning(
                    "readiness check %s failed: %s",
                    name,
                    error,
                    extra={"check": name},
                )
                results[name] = f"failed: {type(error).__name__}"
                continue
            results[name] = "failed" if outcome is False else "ok"
        failed = [name for name, result in results.items() if result != "ok"]
        if failed:
            return Problem(
                status=503,
                title="Not ready",
                detail="readiness checks failed: " + ", ".join(failed),
                type=problem_type("not-ready"),
                instance=_instance(request),
                extensions={"checks": results, **_extensions()},
            ).response()
        return JSONResponse(
            {"status": "ready", "service": service_name, "checks": results}
        )

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        content, media_type = metrics.render()
        return Response(content=content, media_type=media_type)


def create_app(
    service_name: str,
    *,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    error_map: ErrorMap | None = None,
    lifespan: Any = None,
    version: str = "0.1.0",
    description: str = "",
    metrics: HttpMetrics | None = None,
    progress: ProgressRegistry | None = None,
    stall_after_s: float | None = None,
    max_body_bytes: int | None = None,
) -> FastAPI:
    """A FastAPI app with probes, metrics, correlation ids and problem details.

    ``error_map`` is the service's own mapping of domain errors to statuses; the
    kernel's defaults are added to it unless it registers those classes itself.
    ``app.state.metrics`` is the ``HttpMetrics`` whose registry ``/metrics`` serves.
    ``/healthz`` judges the loops of ``progress`` (the process's ``PROGRESS`` unless
    given) against ``stall_after_s`` (``SEND_STALL_SECONDS`` unless given). Request
    bodies longer than ``max_body_bytes`` (``SEND_MAX_BODY_BYTES`` unless given) are
    answered 413.
    """
    rules = default_error_map()
    if error_map is not None:
        rules.update(error_map)

    app = FastAPI(
        title=service_name,
        version=version,
        description=description,
        lifespan=lifespan,
    )
    app.state.service_name = service_name
    app.state.metrics = metrics or HttpMetrics(service_name)
    app.state.error_map = rules

    _install_problem_handlers(app, rules)
    if stall_after_s is None:
        stall_after_s = HealthSettings().stall_seconds
    _install_probes(
        app,
        service_name,
        readiness_checks or {},
        app.state.metrics,
        PROGRESS if progress is None else progress,
        stall_after_s,
    )
    if max_body_bytes is None:
        max_body_bytes = HttpLimits().max_body_bytes
    # Added first, so it runs inside the request context (correlation id, metrics).
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app


def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    access_log: bool = True,
    health: HealthSettings | None = None,
) -> None:
    """Serve ``app`` with uvicorn until SIGTERM or SIGINT, the platform's way.

    uvicorn then stops taking connections and waits for the requests in flight for
    the requests' share of ``SEND_SHUTDOWN_TIMEOUT_SECONDS``
    (``sendkit.health.http_stop_budget``), cancels what is left, and runs the app's
    lifespan shutdown, which stops its loops within the other share. Logging is the
    platform's (``sendkit.logging``), not uvicorn's own configuration.
    """
    budget = http_stop_budget(health)
    log.info(
        "serving on %s:%d; a stop waits up to %d s for requests in flight",
        host,
        port,
        budget.requests_s,
        extra={"host": host, "port": port, "requests_grace_s": budget.requests_s},
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=access_log,
        timeout_graceful_shutdown=budget.requests_s,
    )
