"""Placement's HTTP API: consultations, the placement panel, phase transfers, transport.

Run it with ``python -m placement``, or with
``uvicorn --factory placement.entrypoints.http:create_app``.

======  ==================================================  ============================
Method  Path                                                Does
======  ==================================================  ============================
POST    /cases/{case_id}/setting-requests                   record a request for a
                                                            setting (201)
POST    /cases/{case_id}/consultations                      consult a setting (201)
POST    /cases/{case_id}/consultations/{id}/answer          record its answer
POST    /cases/{case_id}/panel-submissions                  prepare a panel submission
POST    /panels                                             schedule a panel (201)
POST    /panels/{panel_id}/cases                            list more cases on it
POST    /panels/{panel_id}/cases/{case_id}/decision         record the panel's decision
POST    /panels/{panel_id}/cases/{case_id}/communication    record that it was told
POST    /cases/{case_id}/post16-moves                       propose a post-16 move
POST    /cases/{case_id}/transport-eligibility              decide travel assistance
POST    /cases/{case_id}/transport-referral                 refer to the transport team
POST    /phase-transfers/{year}/identify                    identify a year's transfers
                                                            (``identified_on`` optional)
GET     /phase-transfers/{year}?status=                     that year's cohort
GET     /cases/{case_id}                                    a case, its facts, history
GET     /panels?from_on=&to_on=, /panels/{panel_id}         panels and their cases
======  ==================================================  ============================

Every command accepts ``Idempotency-Key`` (see ``sendkit.idempotency``). Errors are
RFC 9457 problem details: 422 for invalid values (each bad field named), 404 for an
unknown case, consultation or panel, 409 for a command the case's state rules out, and
nothing is written in any of those cases.

Every route but the probes needs an OpenID Connect bearer token (``sendkit.auth``):
401 without a valid one, 403 when the token's roles do not reach the case (``POLICY``
below says who may do what). The token's pseudonymous staff id is the actor of every
event. Reading a case (``GET /cases/{case_id}``) is recorded in the access log before
it is answered; auditors read that log at ``GET /access-log``. The panels and the
phase-transfer cohort show each caller only the cases they may read, and scheduling a
panel needs the right to record a panel decision on every case it lists. With
``AUTH_MODE=off`` (development only) the ``X-Staff-Id`` header names who acts instead.

Placement's facts name no coordinator, so a case's scope for those checks comes from
intake's events: the subscriber records each case's school (``RequestReceived``) and
coordinator (``CoordinatorAssigned``) as it consumes them (``FactsFollower``), and the
settings the case's plan names are added to its schools. A case intake never told
placement of (a plan transferred in) has no coordinator and, until a plan names one, no
school.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from placement.adapters.relay import start_relay_thread
from placement.adapters.store import open_placement_store
from placement.adapters.subscribers import start_subscriber_threads
from placement.application.facts import load_facts
from placement.application.index import PanelView
from placement.application.service import PlacementService, new_id
from placement.domain import (
    AnswerConsultation,
    CaseNotFound,
    CommunicateDecision,
    ConsultationNotFound,
    ConsultSetting,
    DecidePanel,
    DecideTransport,
    ImpossibleTransition,
    InvalidCommand,
    NotFound,
    NotListed,
    OptionInput,
    PanelNotFound,
    PlacementError,
    PrepareSubmission,
    ProposePost16Move,
    ReferTransport,
    RequestSetting,
)
from placement.domain.phases import TransferStatus
from placement.entrypoints.api_models import (
    AnswerBody,
    CaseOut,
    CohortOut,
    CommandOut,
    CommunicationBody,
    ConsultationBody,
    IdentifyBody,
    PanelBody,
    PanelCasesBody,
    PanelDecisionBody,
    PanelListOut,
    PanelOut,
    Post16MoveBody,
    SettingRequestBody,
    SubmissionBody,
    TransportDecisionBody,
    TransportReferralBody,
)
from placement.settings import PlacementSettings
from sendkit.auth import (
    ACT_ON_CASE,
    ADMINISTER,
    MANAGE_CASELOAD,
    READ_CASE,
    RECORD_PANEL_DECISION,
    CaseScope,
    NotAuthorized,
    Policy,
    Principal,
    ServiceAuth,
)
from sendkit.auth.scope import stored_case_scope
from sendkit.background import loops_bootstrapped, stop_then_close
from sendkit.calendar import london_date
from sendkit.commands import CommandAnswer
from sendkit.idempotency import REPLAYED_HEADER, Idempotency, idempotency_from_request
from sendkit.problems import ErrorMap
from sendkit.store import EventStore
from sendkit.web import create_app as create_service_app

log = logging.getLogger(__name__)

SERVICE_NAME = "placement"

ERRORS = (
    ErrorMap()
    .register(PlacementError, 400, slug="placement-error", title="Request not accepted")
    .register(InvalidCommand, 422, slug="validation-error", title="Invalid request")
    .register(NotFound, 404, slug="not-found", title="Not found")
    .register(CaseNotFound, 404, slug="case-not-found", title="Case not found")
    .register(
        ConsultationNotFound,
        404,
        slug="consultation-not-found",
        title="Consultation not found",
    )
    .register(PanelNotFound, 404, slug="panel-not-found", title="Panel not found")
    .register(NotListed, 404, slug="not-listed", title="Case not on this panel")
    .register(
        ImpossibleTransition,
        409,
        slug="impossible-transition",
        title="Not possible in the case's current state",
    )
)
"""Which placement error answers which status: the one place it is said."""

POLICY = Policy(
    SERVICE_NAME,
    {
        "cases.read": READ_CASE,
        "cases.write": ACT_ON_CASE,
        "panels.schedule": RECORD_PANEL_DECISION,
        "panels.decide": RECORD_PANEL_DECISION,
        "transfers.identify": (*MANAGE_CASELOAD, *ADMINISTER),
    },
)
"""Who may do what: the shared grants of ``sendkit.auth.policy``, one per action.

``cases.write`` is the casework on one case (requests, consultations, submissions,
post-16 moves, transport); ``panels.schedule`` and ``panels.decide`` are the panel's
(listing cases, its decisions and telling the family), checked on every case they
name; ``transfers.identify`` runs over the whole council's cohort, so it is a team
manager's or an administrator's."""

PERSONAL_FIELDS = (
    "requests.views",
    "consultations.reasons",
    "submission.family_views",
    "submission.setting_views",
    "listings.reasons",
    "transport.reasons",
    "transport.referral_notes",
    "history.private",
)
"""What ``GET /cases/{case_id}`` shows that the access log must record being read."""

READ = POLICY.qualified("cases.read")

Keyed = Annotated[Idempotency | None, Depends(idempotency_from_request)]
Year = Annotated[int, Path(ge=2000, le=2100, description="The September's year.")]

BackgroundFactory = Callable[[PlacementSettings, EventStore, CollectorRegistry], Any]
"""Starts a relay and returns a handle with ``is_alive()`` and ``stop()``."""
SubscribersFactory = Callable[..., list[Any]]
"""Starts the subscribers with a handler and returns their handles."""


def case_scope_of(store: EventStore) -> Callable[[str], CaseScope]:
    """A case's coordinator and school from intake's events, and its plan's settings.

    The school in the facts is added too, so a case followed before the scope was kept
    still has its school.
    """
    from_intake = stored_case_scope(store)

    def scope(case_id: str) -> CaseScope:
        known = from_intake(case_id)
        with store.transaction() as tx:
            facts = load_facts(tx, case_id)
        schools = (
            []
            if facts is None
            else [facts.school_urn, *(naming.setting_urn for naming in facts.namings)]
        )
        return CaseScope.of(
            case_id,
            coordinator_id=known.coordinator_id,
            school_urns=[*known.school_urns, *schools],
        )

    return scope


def _check_each_case(
    auth: ServiceAuth, staff: Principal, action: str, case_ids: list[str]
) -> None:
    """Refuse (403) a command on many cases unless ``action`` reaches every one."""
    qualified = POLICY.qualified(action)
    refused = [c for c in case_ids if not auth.may_read(staff, qualified, c)]
    if refused:
        # Codes and pseudonymous ids only, as the route checks log their refusals.
        log.warning(
            "refused %s on %d of its cases",
            qualified,
            len(refused),
            extra={
                "status": 403,
                "reason": "forbidden",
                "action": qualified,
                "staff_id": staff.staff_id,
                "case_ids": refused,
            },
        )
        raise NotAuthorized(qualified, staff)


def _readable(auth: ServiceAuth, staff: Principal, case_id: str) -> bool:
    return auth.may_read(staff, READ, case_id)


def _visible_panel(auth: ServiceAuth, staff: Principal, view: PanelView) -> PanelOut:
    kept = tuple(pair for pair in view.cases if _readable(auth, staff, pair[0]))
    return PanelOut.of(replace(view, cases=kept))


def _answer(
    result: CommandAnswer, status_code: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if result.replayed:
        headers[REPLAYED_HEADER] = "true"
        status_code = result.status_code or status_code
    return JSONResponse(result.body, status_code=status_code, headers=headers)


def _case_routes(service: PlacementService, auth: ServiceAuth) -> APIRouter:
    router = APIRouter()

    # Who may call each route, as POLICY says: each gives the route its principal.
    may_read = auth.require("cases.read")
    may_write = auth.require("cases.write")

    @router.post(
        "/cases/{case_id}/setting-requests", status_code=201, response_model=CommandOut
    )
    def request_setting(
        case_id: str,
        body: SettingRequestBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        request_id = new_id()
        command = RequestSetting(
            case_id=case_id, request_id=request_id, **body.model_dump()
        )
        result = service.handle(
            command,
            actor=staff.actor,
            idempotency=idempotency,
            answer_with={"request_id": request_id},
        )
        return _answer(result, 201)

    @router.post(
        "/cases/{case_id}/consultations", status_code=201, response_model=CommandOut
    )
    def consult_setting(
        case_id: str,
        body: ConsultationBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        consultation_id = new_id()
        command = ConsultSetting(
            case_id=case_id, consultation_id=consultation_id, **body.model_dump()
        )
        result = service.handle(
            command,
            actor=staff.actor,
            idempotency=idempotency,
            answer_with={"consultation_id": consultation_id},
        )
        return _answer(result, 201, {"Location": f"/cases/{case_id}"})

    @router.post(
        "/cases/{case_id}/consultations/{consultation_id}/answer",
        response_model=CommandOut,
    )
    def answer_consultation(
        case_id: str,
        consultation_id: str,
        body: AnswerBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = AnswerConsultation(
            case_id=case_id, consultation_id=consultation_id, **body.model_dump()
        )
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post(
        "/cases/{case_id}/panel-submissions",
        status_code=201,
        response_model=CommandOut,
    )
    def prepare_submission(
        case_id: str,
        body: SubmissionBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        submission_id = new_id()
        command = PrepareSubmission(
            case_id=case_id,
            submission_id=submission_id,
            prepared_on=body.prepared_on,
            options=tuple(
                OptionInput(**option.model_dump()) for option in body.options
            ),
            family_views=body.family_views,
            setting_views=body.setting_views,
        )
        result = service.handle(
            command,
            actor=staff.actor,
            idempotency=idempotency,
            answer_with={"submission_id": submission_id},
        )
        return _answer(result, 201)

    @router.post("/cases/{case_id}/post16-moves", response_model=CommandOut)
    def propose_post16_move(
        case_id: str,
        body: Post16MoveBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = ProposePost16Move(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/cases/{case_id}/transport-eligibility", response_model=CommandOut)
    def decide_transport(
        case_id: str,
        body: TransportDecisionBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = DecideTransport(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post("/cases/{case_id}/transport-referral", response_model=CommandOut)
    def refer_transport(
        case_id: str,
        body: TransportReferralBody,
        idempotency: Keyed,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = ReferTransport(case_id=case_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.get("/cases/{case_id}", response_model=CaseOut)
    def read_case(
        case_id: str, request: Request, staff: Principal = may_read
    ) -> CaseOut:
        found = service.case(case_id)
        auth.record_read(request, staff, case_id, PERSONAL_FIELDS)
        return CaseOut.of(found, london_date(service.clock()))

    return router


def _panel_routes(service: PlacementService, auth: ServiceAuth) -> APIRouter:
    router = APIRouter()

    # Scheduling names its cases in the body, not the path: the role is checked
    # first, then every case listed (``_check_each_case``). A panel and the list of
    # panels show each reader only the cases they may read.
    may_schedule = auth.require("panels.schedule", listing=True)
    may_decide = auth.require("panels.decide")
    may_list = auth.require("cases.read", listing=True)

    @router.post("/panels", status_code=201)
    def schedule_panel(
        body: PanelBody, idempotency: Keyed, staff: Principal = may_schedule
    ) -> JSONResponse:
        _check_each_case(auth, staff, "panels.schedule", body.case_ids)
        result = service.schedule_panel(
            body.panel_on,
            body.case_ids,
            actor=staff.actor,
            idempotency=idempotency,
        )
        location = f"/panels/{result.body['panel_id']}"
        return _answer(result, 201, {"Location": location})

    @router.post("/panels/{panel_id}/cases")
    def list_more_cases(
        panel_id: str,
        body: PanelCasesBody,
        idempotency: Keyed,
        staff: Principal = may_schedule,
    ) -> JSONResponse:
        _check_each_case(auth, staff, "panels.schedule", body.case_ids)
        result = service.schedule_panel(
            None,
            body.case_ids,
            panel_id=panel_id,
            actor=staff.actor,
            idempotency=idempotency,
        )
        return _answer(result, 200)

    @router.post(
        "/panels/{panel_id}/cases/{case_id}/decision", response_model=CommandOut
    )
    def decide_panel(
        panel_id: str,
        case_id: str,
        body: PanelDecisionBody,
        idempotency: Keyed,
        staff: Principal = may_decide,
    ) -> JSONResponse:
        command = DecidePanel(case_id=case_id, panel_id=panel_id, **body.model_dump())
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.post(
        "/panels/{panel_id}/cases/{case_id}/communication", response_model=CommandOut
    )
    def communicate_decision(
        panel_id: str,
        case_id: str,
        body: CommunicationBody,
        idempotency: Keyed,
        staff: Principal = may_decide,
    ) -> JSONResponse:
        command = CommunicateDecision(
            case_id=case_id, panel_id=panel_id, **body.model_dump()
        )
        result = service.handle(command, actor=staff.actor, idempotency=idempotency)
        return _answer(result, 200)

    @router.get("/panels", response_model=PanelListOut)
    def list_panels(
        staff: Principal = may_list,
        from_on: date | None = None,
        to_on: date | None = None,
    ) -> PanelListOut:
        views = service.panels(from_on=from_on, to_on=to_on)
        return PanelListOut(
            panels=[_visible_panel(auth, staff, view) for view in views]
        )

    @router.get("/panels/{panel_id}", response_model=PanelOut)
    def read_panel(panel_id: str, staff: Principal = may_list) -> PanelOut:
        return _visible_panel(auth, staff, service.panel(panel_id))

    return router


def _transfer_routes(service: PlacementService, auth: ServiceAuth) -> APIRouter:
    router = APIRouter()

    may_identify = auth.require("transfers.identify")
    may_list = auth.require("cases.read", listing=True)

    @router.post("/phase-transfers/{year}/identify")
    def identify_transfers(
        year: Year,
        idempotency: Keyed,
        body: IdentifyBody | None = None,
        staff: Principal = may_identify,
    ) -> JSONResponse:
        result = service.identify_transfers(
            year,
            identified_on=None if body is None else body.identified_on,
            actor=staff.actor,
            idempotency=idempotency,
        )
        return _answer(result, 200)

    @router.get("/phase-transfers/{year}", response_model=CohortOut)
    def read_cohort(
        year: Year,
        staff: Principal = may_list,
        status: Annotated[list[TransferStatus] | None, Query()] = None,
    ) -> CohortOut:
        view = service.cohort(year)
        wanted = None if status is None else set(status)
        kept = [
            entry
            for entry in view.entries
            if (wanted is None or entry.status in wanted)
            and _readable(auth, staff, entry.case_id)
        ]
        unknown = [c for c in view.year_unknown if _readable(auth, staff, c)]
        return CohortOut.of(replace(view, entries=kept, year_unknown=unknown))

    return router


def create_app(
    settings: PlacementSettings | None = None,
    *,
    store: EventStore | None = None,
    clock: Callable[[], datetime] | None = None,
    relay_factory: BackgroundFactory | None = None,
    subscribers_factory: SubscribersFactory | None = None,
) -> FastAPI:
    """The placement FastAPI app; with no arguments, configured from the environment.

    A ``store`` passed in is the caller's to close; one opened from the settings is
    closed when the app shuts down. With ``PLACEMENT_RELAY_ENABLED`` the outbox relay,
    and with ``PLACEMENT_SUBSCRIBERS_ENABLED`` the subscribers to intake's and plans'
    topics, run as threads from start-up to shutdown (the factories replace them in
    tests).
    """
    settings = settings or PlacementSettings()
    owns_store = store is None
    store = store if store is not None else open_placement_store(settings)
    phases = settings.phase_config()
    service = (
        PlacementService(store, clock=clock, phases=phases)
        if clock is not None
        else PlacementService(store, phases=phases)
    )

    running: dict[str, list[Any]] = {"relay": [], "subscribers": []}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.index.catch_up()
        registry = app.state.metrics.registry
        if settings.relay_enabled:
            start = relay_factory or start_relay_thread
            running["relay"] = [start(settings, store, registry)]
        if settings.subscribers_enabled:
            follow = subscribers_factory or start_subscriber_threads
            running["subscribers"] = list(
                follow(settings, store, service.follower, registry)
            )
        log.info(
            "placement started",
            extra={
                "relay_enabled": settings.relay_enabled,
                "subscribers_enabled": settings.subscribers_enabled,
                "position": service.index.position,
            },
        )
        try:
            yield
        finally:
            # The loops stop side by side and are joined (bounded) before the store
            # closes; it stays open if one did not stop.
            stopping = [*running["subscribers"], *running["relay"]]
            running["subscribers"], running["relay"] = [], []
            stop_then_close(
                stopping,
                store.close if owns_store else None,
                what="placement's event store",
            )
            log.info("placement stopped")

    def store_answers() -> None:
        store.last_position()

    def all_alive(kind: str) -> Callable[[], bool]:
        return lambda: all(loop.is_alive() for loop in running[kind])

    checks: dict[str, Callable[[], object]] = {"event_store": store_answers}
    if settings.relay_enabled:
        checks["outbox_relay"] = all_alive("relay")
    if settings.subscribers_enabled:
        checks["subscribers"] = all_alive("subscribers")
    if settings.relay_enabled or settings.subscribers_enabled:
        # Set once each loop's Kafka client has reached a broker; no request per probe.
        checks["kafka_bootstrapped"] = loops_bootstrapped(
            lambda: [*running["relay"], *running["subscribers"]]
        )

    auth = ServiceAuth.from_settings(
        settings, POLICY, store=store, case_scope=case_scope_of(store)
    )
    app = create_service_app(
        SERVICE_NAME,
        readiness_checks=checks,
        error_map=ERRORS,
        lifespan=lifespan,
        description="School consultations, the SEND placement panel, phase transfers "
        "and transport.",
    )
    auth.install(app)
    app.state.placement = service
    app.state.store = store
    app.include_router(_case_routes(service, auth))
    app.include_router(_panel_routes(service, auth))
    app.include_router(_transfer_routes(service, auth))
    return app
