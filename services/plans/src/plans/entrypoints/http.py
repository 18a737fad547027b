"""Plans' HTTP API: the commands and queries of a case from assessment to plan's end.

Run it with ``python -m plans``, or with
``uvicorn --factory plans.entrypoints.http:create_app``.

====  ====================================================  ==========================
POST  /cases/{case_id}/advice-requests                      request advice
POST  /cases/{case_id}/advice-requests/{advice_id}/receipt  record advice received
POST  /cases/{case_id}/no-plan-notice                       decide not to issue a plan
POST  /cases/{case_id}/draft-plans                          serve a (revised) draft
POST  /cases/{case_id}/draft-comments                       record the family's answer
POST  /cases/{case_id}/final-plan                           issue the final plan
POST  /cases/{case_id}/amendment-notices                    propose amendments
POST  /cases/{case_id}/amendments                           issue the amended plan
POST  /cases/{case_id}/cessation                            cease the plan
POST  /cases/{case_id}/transfer-out-notice                  a move to another council
POST  /cases/{case_id}/transfer-out                         transfer the plan out
POST  /transfers-in                                         take a plan in (201)
POST  /cases/{case_id}/new-council-notice                   the notice after a transfer
POST  /cases/{case_id}/reassessment-requests                request a re-assessment
POST  /cases/{case_id}/reassessment-decision                decide on the re-assessment
POST  /cases/{case_id}/time-limit-exceptions                record an exception
POST  /cases/{case_id}/corrections                          correct a recorded date
GET   /cases/{case_id}                                      the plan state and history
====  ====================================================  ==========================

A case opens when intake's ``AssessmentAgreed`` reaches the subscriber
(``PLANS_SUBSCRIBER_ENABLED``), under intake's case id; until then its commands answer
404. Every command accepts ``Idempotency-Key`` (see ``sendkit.idempotency``). Errors
are RFC 9457 problem details: 422 for invalid values (each bad field named), 404 for an
unknown case or advice request, 409 for a command the case's state rules out (type
``/problems/comment-window-open`` for a final plan inside the draft's comment window),
and nothing is written in any of those cases.

Every route but the probes needs an OpenID Connect bearer token (``sendkit.auth``):
401 without a valid one, 403 when the token's roles do not reach the case (``POLICY``
below says who may do what). The token's pseudonymous staff id is the actor of every
event. Reading a case (``GET /cases/{case_id}``) is recorded in the access log before
it is answered; auditors read that log at ``GET /access-log``. With ``AUTH_MODE=off``
(development only) the ``X-Staff-Id`` header names who acts instead, as before.

Plans' own events name no coordinator, so a case's scope for those checks comes from
intake's events: the subscriber records each case's school (``RequestReceived``) and
coordinator (``CoordinatorAssigned``) as it consumes them (``IntakeReactions``), and
the setting a plan names is added to its schools. A case intake never told plans of (a
plan transferred in) has no coordinator and no school until then.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from plans.adapters.relay import start_relay_thread
from plans.adapters.store import open_plans_store
from plans.adapters.subscriber import start_subscriber_thread
from plans.application.reactions import IntakeReactions
from plans.application.service import PlansService, new_id
from plans.domain import (
    AdviceNotFound,
    AmendPlan,
    CaseNotFound,
    CeasePlan,
    Command,
    CommentWindowOpen,
    CorrectPlan,
    DecideNotToIssuePlan,
    DecideReassessment,
    ImpossibleTransition,
    InvalidCommand,
    IssueDraftPlan,
    IssuePlan,
    NotifyTransferOut,
    PlansError,
    ProposeAmendment,
    RecordAdviceReceived,
    RecordDraftComments,
    RecordTimeLimitException,
    RequestAdvice,
    RequestReassessment,
    SendNewCouncilNotice,
    TransferPlanIn,
    TransferPlanOut,
    fold,
)
from plans.entrypoints.api_models import (
    AdviceReceivedBody,
    AdviceRequestBody,
    AmendmentBody,
    AmendmentNoticeBody,
    CaseOut,
    CessationBody,
    CommandOut,
    CorrectionBody,
    DraftCommentsBody,
    DraftPlanBody,
    FinalPlanBody,
    NewCouncilNoticeBody,
    NoPlanBody,
    ReassessmentDecisionBody,
    ReassessmentRequestBody,
    TimeLimitExceptionBody,
    TransferInBody,
    TransferOutBody,
    TransferOutNoticeBody,
)
from plans.settings import PlansSettings
from sendkit.auth import (
    ACT_ON_CASE,
    OPEN_CASE,
    READ_CASE,
    RECORD_PANEL_DECISION,
    CaseScope,
    Policy,
    Principal,
    ServiceAuth,
)
from sendkit.auth.scope import stored_case_scope
from sendkit.background import loops_bootstrapped, stop_then_close
from sendkit.idempotency import IdempotencyKey
from sendkit.problems import ErrorMap
from sendkit.store import EventStore
from sendkit.subscriber import Handler
from sendkit.web import command_response
from sendkit.web import create_app as create_service_app

log = logging.getLogger(__name__)

SERVICE_NAME = "plans"

ERRORS = (
    ErrorMap()
    .register(PlansError, 400, slug="plans-error", title="Request not accepted")
    .register(InvalidCommand, 422, slug="validation-error", title="Invalid request")
    .register(CaseNotFound, 404, slug="case-not-found", title="Case not found")
    .register(
        AdviceNotFound, 404, slug="advice-not-found", title="Advice request not found"
    )
    .register(
        ImpossibleTransition,
        409,
        slug="impossible-transition",
        title="Not possible in the case's current state",
    )
    .register(
        CommentWindowOpen,
        409,
        slug="comment-window-open",
        title="The draft plan's comment window is still open",
    )
)
"""Which plans error answers which status: the one place it is said."""

POLICY = Policy(
    SERVICE_NAME,
    {
        "cases.create": OPEN_CASE,
        "cases.read": READ_CASE,
        "cases.write": ACT_ON_CASE,
        "cases.decide": RECORD_PANEL_DECISION,
    },
)
"""Who may do what: ``cases.decide`` is a decision a panel takes (no plan, ceasing the
plan, a re-assessment); the rest of the casework is ``cases.write``."""

PERSONAL_FIELDS = (
    "comments",
    "no_plan.reasons",
    "final_plan.primary_need",
    "final_plan.secondary_need",
    "amendments.summary",
    "cessation.note",
    "reassessments.reasons",
    "history.private",
)
"""What ``GET /cases/{case_id}`` shows that the access log must record being read."""

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CaseId = Annotated[str, Path(pattern=_UUID, description="The case id (a UUID).")]
AdviceId = Annotated[
    str, Path(pattern=_UUID, description="The advice_id the request was given.")
]

RelayFactory = Callable[[PlansSettings, EventStore, CollectorRegistry], Any]
"""Starts a relay and returns a handle with ``is_alive()`` and ``stop()``."""
SubscriberFactory = Callable[
    [PlansSettings, EventStore, Handler, CollectorRegistry], Any
]
"""Starts the intake subscriber and returns a handle with ``is_alive()``, ``stop()``."""


def case_scope_of(store: EventStore) -> Callable[[str], CaseScope]:
    """A case's coordinator and school from intake's events, and its plan's setting."""
    from_intake = stored_case_scope(store)

    def scope(case_id: str) -> CaseScope:
        known = from_intake(case_id)
        plan = fold(case_id, store.read_stream(case_id))
        settings = [plan.setting_urn, *(a.setting_urn for a in plan.amendments)]
        return CaseScope.of(
            case_id,
            coordinator_id=known.coordinator_id,
            school_urns=[*known.school_urns, *settings],
        )

    return scope


def _routes(service: PlansService, auth: ServiceAuth) -> APIRouter:
    router = APIRouter()

    # Who may call each route, as POLICY says: each gives the route its principal.
    may_create = auth.require("cases.create")
    may_read = auth.require("cases.read")
    may_write = auth.require("cases.write")
    may_decide = auth.require("cases.decide")

    def run(
        command: Command,
        idempotency: IdempotencyKey,
        staff: Principal,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return command_response(result, status_code, headers)

    @router.post("/cases/{case_id}/advice-requests", response_model=CommandOut)
    def request_advice(
        case_id: CaseId,
        body: AdviceRequestBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RequestAdvice(
            case_id=case_id, advice_id=new_id(), **body.model_dump()
        )
        return run(command, idempotency, staff)

    @router.post(
        "/cases/{case_id}/advice-requests/{advice_id}/receipt",
        response_model=CommandOut,
    )
    def record_advice_received(
        case_id: CaseId,
        advice_id: AdviceId,
        body: AdviceReceivedBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RecordAdviceReceived(
            case_id=case_id, advice_id=advice_id, received_on=body.received_on
        )
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/no-plan-notice", response_model=CommandOut)
    def decide_not_to_issue(
        case_id: CaseId,
        body: NoPlanBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_decide,
    ) -> JSONResponse:
        command = DecideNotToIssuePlan(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/draft-plans", response_model=CommandOut)
    def issue_draft_plan(
        case_id: CaseId,
        body: DraftPlanBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = IssueDraftPlan(case_id=case_id, served_on=body.served_on)
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/draft-comments", response_model=CommandOut)
    def record_draft_comments(
        case_id: CaseId,
        body: DraftCommentsBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RecordDraftComments(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/final-plan", response_model=CommandOut)
    def issue_plan(
        case_id: CaseId,
        body: FinalPlanBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = IssuePlan(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/amendment-notices", response_model=CommandOut)
    def propose_amendment(
        case_id: CaseId,
        body: AmendmentNoticeBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = ProposeAmendment(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/amendments", response_model=CommandOut)
    def amend_plan(
        case_id: CaseId,
        body: AmendmentBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        fields = body.model_dump()
        fields["changes"] = tuple(fields["changes"])
        return run(AmendPlan(case_id=case_id, **fields), idempotency, staff)

    @router.post("/cases/{case_id}/cessation", response_model=CommandOut)
    def cease_plan(
        case_id: CaseId,
        body: CessationBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_decide,
    ) -> JSONResponse:
        command = CeasePlan(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/transfer-out-notice", response_model=CommandOut)
    def notify_transfer_out(
        case_id: CaseId,
        body: TransferOutNoticeBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = NotifyTransferOut(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/transfer-out", response_model=CommandOut)
    def transfer_plan_out(
        case_id: CaseId,
        body: TransferOutBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = TransferPlanOut(case_id=case_id, transferred_on=body.transferred_on)
        return run(command, idempotency, staff)

    @router.post("/transfers-in", status_code=201, response_model=CommandOut)
    def transfer_plan_in(
        body: TransferInBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_create,
    ) -> JSONResponse:
        command = TransferPlanIn(case_id=new_id(), **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        location = f"/cases/{result.body['case_id']}"
        return command_response(result, 201, {"Location": location})

    @router.post("/cases/{case_id}/new-council-notice", response_model=CommandOut)
    def send_new_council_notice(
        case_id: CaseId,
        body: NewCouncilNoticeBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = SendNewCouncilNotice(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/reassessment-requests", response_model=CommandOut)
    def request_reassessment(
        case_id: CaseId,
        body: ReassessmentRequestBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RequestReassessment(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/reassessment-decision", response_model=CommandOut)
    def decide_reassessment(
        case_id: CaseId,
        body: ReassessmentDecisionBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_decide,
    ) -> JSONResponse:
        command = DecideReassessment(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/time-limit-exceptions", response_model=CommandOut)
    def record_time_limit_exception(
        case_id: CaseId,
        body: TimeLimitExceptionBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RecordTimeLimitException(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.post("/cases/{case_id}/corrections", response_model=CommandOut)
    def correct_plan(
        case_id: CaseId,
        body: CorrectionBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = CorrectPlan(case_id=case_id, **body.model_dump())
        return run(command, idempotency, staff)

    @router.get("/cases/{case_id}", response_model=CaseOut)
    def read_case(
        case_id: CaseId, request: Request, staff: Principal = may_read
    ) -> CaseOut:
        found = service.case(case_id)
        auth.record_read(request, staff, case_id, PERSONAL_FIELDS)
        return CaseOut.of(found)

    return router


def create_app(
    settings: PlansSettings | None = None,
    *,
    store: EventStore | None = None,
    clock: Callable[[], datetime] | None = None,
    relay_factory: RelayFactory | None = None,
    subscriber_factory: SubscriberFactory | None = None,
) -> FastAPI:
    """The plans FastAPI app; with no arguments, configured from the environment.

    A ``store`` passed in is the caller's to close; one opened from the settings is
    closed when the app shuts down. With ``PLANS_RELAY_ENABLED`` the outbox relay, and
    with ``PLANS_SUBSCRIBER_ENABLED`` the subscriber to intake's topic, run as threads
    from start-up to shutdown (the factories replace them in tests).
    """
    settings = settings or PlansSettings()
    owns_store = store is None
    store = store if store is not None else open_plans_store(settings)
    service = (
        PlansService(store, clock=clock) if clock is not None else PlansService(store)
    )
    reactions = IntakeReactions(clock=clock) if clock is not None else IntakeReactions()

    loops: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = app.state.metrics.registry
        if settings.relay_enabled:
            start_relay = relay_factory or start_relay_thread
            loops["outbox_relay"] = start_relay(settings, store, registry)
        if settings.subscriber_enabled:
            start_subscriber = subscriber_factory or start_subscriber_thread
            loops["intake_subscriber"] = start_subscriber(
                settings, store, reactions, registry
            )
        log.info(
            "plans started",
            extra={
                "relay_enabled": settings.relay_enabled,
                "subscriber_enabled": settings.subscriber_enabled,
                "position": store.last_position(),
            },
        )
        try:
            yield
        finally:
            # The loops stop side by side and are joined (bounded) before the store
            # closes; it stays open if one did not stop.
            running = [loops.pop(name) for name in list(loops)]
            stop_then_close(
                running,
                store.close if owns_store else None,
                what="plans' event store",
            )
            log.info("plans stopped")

    def store_answers() -> None:
        store.last_position()

    def running(name: str) -> Callable[[], bool]:
        def check() -> bool:
            loop = loops.get(name)
            return loop is None or bool(loop.is_alive())

        return check

    checks: dict[str, Callable[[], object]] = {"event_store": store_answers}
    if settings.relay_enabled:
        checks["outbox_relay"] = running("outbox_relay")
    if settings.subscriber_enabled:
        checks["intake_subscriber"] = running("intake_subscriber")
    if settings.relay_enabled or settings.subscriber_enabled:
        # Set once each loop's Kafka client has reached a broker; no request per probe.
        checks["kafka_bootstrapped"] = loops_bootstrapped(lambda: list(loops.values()))

    auth = ServiceAuth.from_settings(
        settings, POLICY, store=store, case_scope=case_scope_of(store)
    )
    app = create_service_app(
        SERVICE_NAME,
        readiness_checks=checks,
        error_map=ERRORS,
        lifespan=lifespan,
        description="EHC needs assessments, draft and final plans, amendments, "
        "ceasing and transfers.",
    )
    auth.install(app)
    app.state.plans = service
    app.state.reactions = reactions
    app.state.store = store
    app.include_router(_routes(service, auth))
    return app
