"""Intake's HTTP API: the commands and queries of requests for an EHC needs assessment.

Run it with ``python -m intake``, or with
``uvicorn --factory intake.entrypoints.http:create_app``.

=======  ================================================  ===========================
Method   Path                                              Does
=======  ================================================  ===========================
POST     /cases                                            receive a request (201)
GET      /cases?coordinator_id=&school_urn=&status=        list cases
GET      /cases/{case_id}                                  read a case and its history
POST     /cases/{case_id}/coordinator                      assign or reassign
POST     /cases/{case_id}/decision                         agree or refuse to assess
POST     /cases/{case_id}/time-limit-exceptions            record an exception
POST     /cases/{case_id}/withdrawal                       withdraw the request
POST     /cases/{case_id}/surgery-presentation             presented to the surgery
POST     /cases/{case_id}/corrections                      correct a recorded fact
POST     /coordinators/{coordinator_id}/reassignment       move all their open cases
=======  ================================================  ===========================

Every command accepts ``Idempotency-Key`` (see ``sendkit.idempotency``). Errors are
RFC 9457 problem details: 422 for invalid values (each bad field named), 404 for an
unknown case, 409 for a command the case's state rules out, and nothing is written in
any of those cases.

Every route but the probes needs an OpenID Connect bearer token (``sendkit.auth``):
401 without a valid one, 403 when the token's roles do not reach the case (``POLICY``
below says who may do what). The token's pseudonymous staff id is the actor of every
event. Reading a case (``GET /cases/{case_id}``) is recorded in the access log before
it is answered; auditors read that log at ``GET /access-log``. The list of cases shows
each caller only the cases they may read. With ``AUTH_MODE=off`` (development only) the
``X-Staff-Id`` header names who acts instead, as before.

A case's scope for those checks is its coordinator and school as intake's own events
record them; its team is its coordinator's (see ``sendkit.auth.policy``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from intake.adapters.relay import start_relay_thread
from intake.adapters.store import open_intake_store
from intake.application.read_model import DEFAULT_LIMIT, MAX_LIMIT
from intake.application.service import IntakeService, new_case_id
from intake.domain import (
    AssignCoordinator,
    CaseNotFound,
    CorrectRequest,
    ImpossibleTransition,
    IntakeError,
    InvalidCommand,
    ReceiveRequest,
    RecordDecision,
    RecordSurgeryPresentation,
    RecordTimeLimitException,
    Status,
    WithdrawRequest,
    fold,
)
from intake.entrypoints.api_models import (
    AssignCoordinatorBody,
    CaseListOut,
    CaseOut,
    CaseSummaryOut,
    CommandOut,
    CorrectionBody,
    DecisionBody,
    ReassignAllBody,
    ReceiveRequestBody,
    SurgeryPresentationBody,
    TimeLimitExceptionBody,
    WithdrawalBody,
)
from intake.settings import IntakeSettings
from sendkit.auth import (
    ACT_ON_CASE,
    MANAGE_CASELOAD,
    OPEN_CASE,
    READ_CASE,
    RECORD_PANEL_DECISION,
    CaseScope,
    Policy,
    Principal,
    ServiceAuth,
)
from sendkit.background import loops_bootstrapped, stop_then_close
from sendkit.commands import CommandAnswer
from sendkit.idempotency import REPLAYED_HEADER, Idempotency, idempotency_from_request
from sendkit.problems import ErrorMap
from sendkit.store import EventStore
from sendkit.web import create_app as create_service_app

log = logging.getLogger(__name__)

SERVICE_NAME = "intake"

ERRORS = (
    ErrorMap()
    .register(IntakeError, 400, slug="intake-error", title="Request not accepted")
    .register(InvalidCommand, 422, slug="validation-error", title="Invalid request")
    .register(CaseNotFound, 404, slug="case-not-found", title="Case not found")
    .register(
        ImpossibleTransition,
        409,
        slug="impossible-transition",
        title="Not possible in the case's current state",
    )
)
"""Which intake error answers which status: the one place it is said."""

POLICY = Policy(
    SERVICE_NAME,
    {
        "cases.create": OPEN_CASE,
        "cases.read": READ_CASE,
        "cases.assign": MANAGE_CASELOAD,
        "cases.decide": RECORD_PANEL_DECISION,
        "cases.write": ACT_ON_CASE,
        "coordinators.reassign": MANAGE_CASELOAD,
    },
)
"""Who may do what: the shared grants of ``sendkit.auth.policy``, one per action."""

PERSONAL_FIELDS = (
    "child_reference",
    "child_name",
    "date_of_birth",
    "requester_name",
    "history.private",
)
"""What ``GET /cases/{case_id}`` shows that the access log must record being read."""

Keyed = Annotated[Idempotency | None, Depends(idempotency_from_request)]

RelayFactory = Callable[[IntakeSettings, EventStore, CollectorRegistry], Any]
"""Starts a relay and returns a handle with ``is_alive()`` and ``stop()``."""


def case_scope_of(store: EventStore) -> Callable[[str], CaseScope]:
    """A case's coordinator and school, as its own events record them."""

    def scope(case_id: str) -> CaseScope:
        case = fold(case_id, store.read_stream(case_id))
        return CaseScope.of(
            case_id, coordinator_id=case.coordinator_id, school_urns=[case.school_urn]
        )

    return scope


def _answer(
    result: CommandAnswer, status_code: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if result.replayed:
        headers[REPLAYED_HEADER] = "true"
        status_code = result.status_code or status_code
    return JSONResponse(result.body, status_code=status_code, headers=headers)


def _routes(service: IntakeService, auth: ServiceAuth) -> APIRouter:
    router = APIRouter()

    # Who may call each route, as POLICY says: each gives the route its principal.
    may_create = auth.require("cases.create")
    may_read = auth.require("cases.read")
    may_list = auth.require("cases.read", listing=True)
    may_assign = auth.require("cases.assign")
    may_decide = auth.require("cases.decide")
    may_write = auth.require("cases.write")
    may_reassign = auth.require("coordinators.reassign", coordinator="coordinator_id")

    @router.post("/cases", status_code=201, response_model=CommandOut)
    def receive_request(
        body: ReceiveRequestBody,
        idempotency: Keyed,
        staff: Principal = may_create,
    ) -> JSONResponse:
        command = ReceiveRequest(case_id=new_case_id(), **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        location = f"/cases/{result.body['case_id']}"
        return _answer(result, 201, {"Location": location})

    @router.get("/cases", response_model=CaseListOut)
    def list_cases(
        staff: Principal = may_list,
        coordinator_id: str | None = None,
        school_urn: Annotated[int | None, Query(ge=100000, le=999999)] = None,
        status: Annotated[list[Status] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> CaseListOut:
        found = [
            summary
            for summary in service.cases(
                coordinator_id=coordinator_id, school_urn=school_urn, statuses=status
            )
            if auth.permits(
                staff,
                "intake:cases.read",
                CaseScope.of(
                    summary.case_id,
                    coordinator_id=summary.coordinator_id,
                    school_urns=[summary.school_urn],
                ),
            )
        ]
        page = found[offset : offset + limit]
        return CaseListOut(
            total=len(found),
            offset=offset,
            limit=limit,
            cases=[CaseSummaryOut.of(summary) for summary in page],
        )

    @router.get("/cases/{case_id}", response_model=CaseOut)
    def read_case(
        case_id: str,
        request: Request,
        staff: Principal = may_read,
    ) -> CaseOut:
        found = service.case(case_id)
        auth.record_read(request, staff, case_id, PERSONAL_FIELDS)
        return CaseOut.of(found)

    @router.post("/cases/{case_id}/coordinator", response_model=CommandOut)
    def assign_coordinator(
        case_id: str,
        body: AssignCoordinatorBody,
        idempotency: Keyed,
        staff: Principal = may_assign,
    ) -> JSONResponse:
        command = AssignCoordinator(case_id=case_id, coordinator_id=body.coordinator_id)
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/cases/{case_id}/decision", response_model=CommandOut)
    def record_decision(
        case_id: str,
        body: DecisionBody,
        idempotency: Keyed,
        staff: Principal = may_decide,
    ) -> JSONResponse:
        command = RecordDecision(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/cases/{case_id}/time-limit-exceptions", response_model=CommandOut)
    def record_time_limit_exception(
        case_id: str,
        body: TimeLimitExceptionBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RecordTimeLimitException(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/cases/{case_id}/withdrawal", response_model=CommandOut)
    def withdraw_request(
        case_id: str,
        body: WithdrawalBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = WithdrawRequest(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/cases/{case_id}/surgery-presentation", response_model=CommandOut)
    def record_surgery_presentation(
        case_id: str,
        body: SurgeryPresentationBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RecordSurgeryPresentation(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/cases/{case_id}/corrections", response_model=CommandOut)
    def correct_request(
        case_id: str,
        body: CorrectionBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = CorrectRequest(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/coordinators/{coordinator_id}/reassignment")
    def reassign_all(
        coordinator_id: str,
        body: ReassignAllBody,
        idempotency: Keyed,
        staff: Principal = may_reassign,
    ) -> JSONResponse:
        result = service.reassign_all(
            coordinator_id,
            body.to_coordinator_id,
            actor=staff.actor,
            idempotency=idempotency,
        )
        return _answer(result, 200)

    return router


def create_app(
    settings: IntakeSettings | None = None,
    *,
    store: EventStore | None = None,
    clock: Callable[[], datetime] | None = None,
    relay_factory: RelayFactory | None = None,
) -> FastAPI:
    """The intake FastAPI app; with no arguments, configured from the environment.

    A ``store`` passed in is the caller's to close; one opened from the settings is
    closed when the app shuts down, once the relay thread has stopped (left open, with
    an error logged, if it did not stop in time). With ``INTAKE_RELAY_ENABLED``, the
    outbox relay runs as a thread from start-up to shutdown, publishing while this
    replica holds the relay lock (``relay_factory`` replaces it in tests), and
    ``/readyz`` waits until its producer has reached Kafka once.
    """
    settings = settings or IntakeSettings()
    owns_store = store is None
    store = store if store is not None else open_intake_store(settings)
    service = (
        IntakeService(store, clock=clock) if clock is not None else IntakeService(store)
    )

    relay_holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.index.catch_up()
        if settings.relay_enabled:
            start = relay_factory or start_relay_thread
            relay_holder["relay"] = start(settings, store, app.state.metrics.registry)
        log.info(
            "intake started",
            extra={
                "relay_enabled": settings.relay_enabled,
                "position": service.index.position,
            },
        )
        try:
            yield
        finally:
            # uvicorn takes no new requests by now. The relay is joined (bounded)
            # before the store closes, and the store stays open if it did not stop.
            relay = relay_holder.pop("relay", None)
            stop_then_close(
                [relay] if relay is not None else [],
                store.close if owns_store else None,
                what="intake's event store",
            )
            log.info("intake stopped")

    def store_answers() -> None:
        store.last_position()

    def relay_running() -> bool:
        relay = relay_holder.get("relay")
        return relay is None or bool(relay.is_alive())

    checks: dict[str, Callable[[], object]] = {"event_store": store_answers}
    if settings.relay_enabled:
        checks["outbox_relay"] = relay_running
        # Set once the relay's producer has reached Kafka; no request per probe.
        checks["kafka_producer"] = loops_bootstrapped(
            lambda: [relay_holder["relay"]] if "relay" in relay_holder else []
        )

    auth = ServiceAuth.from_settings(
        settings, POLICY, store=store, case_scope=case_scope_of(store)
    )
    app = create_service_app(
        SERVICE_NAME,
        readiness_checks=checks,
        error_map=ERRORS,
        lifespan=lifespan,
        description="Requests for an EHC needs assessment and the decision to assess.",
    )
    auth.install(app)
    app.state.intake = service
    app.state.store = store
    app.include_router(_routes(service, auth))
    return app
