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
GET     /phase-transfers/{year}?status=                     that year's cohort
GET     /cases/{case_id}                                    a case, its facts, history
GET     /panels?from_on=&to_on=, /panels/{panel_id}         panels and their cases
======  ==================================================  ============================

Every command accepts ``Idempotency-Key`` (see ``sendkit.idempotency``). Errors are
RFC 9457 problem details: 422 for invalid values (each bad field named), 404 for an
unknown case, consultation or panel, 409 for a command the case's state rules out, and
nothing is written in any of those cases.

Who acts is read from the ``X-Staff-Id`` header, a pseudonymous staff id, and is
``system`` when the header is absent. Access control is not part of this service yet:
any caller can act as any staff id and read any case's private details, so the API
must only be reachable from inside the council's network until authentication lands.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from placement.adapters.relay import start_relay_thread
from placement.adapters.store import open_placement_store
from placement.adapters.subscribers import start_subscriber_threads
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
from sendkit.calendar import london_date
from sendkit.commands import CommandAnswer
from sendkit.events import SYSTEM_ACTOR
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

StaffId = Annotated[
    str | None,
    Header(
        alias="X-Staff-Id",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The pseudonymous id of the member of staff acting.",
    ),
]
Keyed = Annotated[Idempotency | None, Depends(idempotency_from_request)]
Year = Annotated[int, Path(ge=2000, le=2100, description="The September's year.")]

BackgroundFactory = Callable[[PlacementSettings, EventStore, CollectorRegistry], Any]
"""Starts a relay and returns a handle with ``is_alive()`` and ``stop()``."""
SubscribersFactory = Callable[..., list[Any]]
"""Starts the subscribers with a handler and returns their handles."""


def _actor(staff_id: str | None) -> str:
    return staff_id or SYSTEM_ACTOR


def _answer(
    result: CommandAnswer, status_code: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if result.replayed:
        headers[REPLAYED_HEADER] = "true"
        status_code = result.status_code or status_code
    return JSONResponse(result.body, status_code=status_code, headers=headers)


def _case_routes(service: PlacementService) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/cases/{case_id}/setting-requests", status_code=201, response_model=CommandOut
    )
    def request_setting(
        case_id: str,
        body: SettingRequestBody,
        idempotency: Keyed,
        staff_id: StaffId = None,
    ) -> JSONResponse:
        request_id = new_id()
        command = RequestSetting(
            case_id=case_id, request_id=request_id, **body.model_dump()
        )
        result = service.handle(
            command,
            actor=_actor(staff_id),
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
        staff_id: StaffId = None,
    ) -> JSONResponse:
        consultation_id = new_id()
        command = ConsultSetting(
            case_id=case_id, consultation_id=consultation_id, **body.model_dump()
        )
        result = service.handle(
            command,
            actor=_actor(staff_id),
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
        staff_id: StaffId = None,
    ) -> JSONResponse:
        command = AnswerConsultation(
            case_id=case_id, consultation_id=consultation_id, **body.model_dump()
        )
        result = service.handle(
            command, actor=_actor(staff_id), idempotency=idempotency
        )
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
        staff_id: StaffId = None,
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
            actor=_actor(staff_id),
            idempotency=idempotency,
            answer_with={"submission_id": submission_id},
        )
        return _answer(result, 201)

    @router.post("/cases/{case_id}/post16-moves", response_model=CommandOut)
    def propose_post16_move(
        case_id: str,
        body: Post16MoveBody,
        idempotency: Keyed,
        staff_id: StaffId = None,
    ) -> JSONResponse:
        command = ProposePost16Move(case_id=case_id, **body.model_dump())
        result = service.handle(
            command, actor=_actor(staff_id), idempotency=idempotency
        )
        return _answer(result, 200)

    @router.post("/cases/{case_id}/transport-eligibility", response_model=CommandOut)
    def decide_transport(
        case_id: str,
        body: TransportDecisionBody,
        idempotency: Keyed,
        staff_id: StaffId = None,
    ) -> JSONResponse:
        command = DecideTransport(case_id=case_id, **body.model_dump())
        result = service.handle(
            command, actor=_actor(staff_id), idempotency=idempotency
        )
        return _answer(result, 200)

    @router.post("/cases/{case_id}/transport-referral", response_model=CommandOut)
    def refer_transport(
        case_id: str,
        body: TransportReferralBody,
        idempotency: Keyed,
        staff_id: StaffId = None,
    ) -> JSONResponse:
        command = ReferTransport(case_id=case_id, **body.model_dump())
        result = service.handle(
            command, actor=_actor(staff_id), idempotency=idempotency
        )
        return _answer(result, 200)

    @router.get("/cases/{case_id}", response_model=CaseOut)
    def read_case(case_id: str) -> CaseOut:
        return CaseOut.of(service.case(case_id), london_date(service.clock()))

    return router


def _panel_routes(service: PlacementService) -> APIRouter:
    router = APIRouter()

    @router.post("/panels", status_code=201)
    def schedule_panel(
        body: PanelBody, idempotency: Keyed, staff_id: StaffId = None
    ) -> JSONResponse:
        result = service.schedule_panel(
            body.panel_on,
            body.case_ids,
            actor=_actor(staff_id),
            idempotency=idempotency,
        )
        location = f"/panels/{result.body['panel_id']}"
        return _answer(result, 201, {"Location": location})

    @router.post("/panels/{panel_id}/cases")
    def list_more_cases(
        panel_id: str,
        body: PanelCasesBody,
        idempotency: Keyed,
        staff_id: StaffId = None,
    ) -> JSONResponse:
        result = service.schedule_panel(
            None,
            body.case_ids,
            panel_id=panel_id,
            actor=_actor(staff_id),
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
        staff_id: StaffId = None,
    ) -> JSONResponse:
        command = DecidePanel(case_id=case_id, panel_id=panel_id, **body.model_dump())
        result = service.handle(
            command, actor=_actor(staff_id), idempotency=idempotency
        )
        return _answer(result, 200)

    @router.post(
        "/panels/{panel_id}/cases/{case_id}/communication", response_model=CommandOut
    )
    def communicate_decision(
        panel_id: str,
        case_id: str,
        body: CommunicationBody,
        idempotency: Keyed,
        staff_id: StaffId = None,
    ) -> JSONResponse:
        command = CommunicateDecision(
            case_id=case_id, panel_id=panel_id, **body.model_dump()
        )
        result = service.handle(
            command, actor=_actor(staff_id), idempotency=idempotency
        )
        return _answer(result, 200)

    @router.get("/panels", response_model=PanelListOut)
    def list_panels(
        from_on: date | None = None, to_on: date | None = None
    ) -> PanelListOut:
        views = service.panels(from_on=from_on, to_on=to_on)
        return PanelListOut(panels=[PanelOut.of(view) for view in views])

    @router.get("/panels/{panel_id}", response_model=PanelOut)
    def read_panel(panel_id: str) -> PanelOut:
        return PanelOut.of(service.panel(panel_id))

    return router


def _transfer_routes(service: PlacementService) -> APIRouter:
    router = APIRouter()

    @router.post("/phase-transfers/{year}/identify")
    def identify_transfers(
        year: Year, idempotency: Keyed, staff_id: StaffId = None
    ) -> JSONResponse:
        result = service.identify_transfers(
            year, actor=_actor(staff_id), idempotency=idempotency
        )
        return _answer(result, 200)

    @router.get("/phase-transfers/{year}", response_model=CohortOut)
    def read_cohort(
        year: Year,
        status: Annotated[list[TransferStatus] | None, Query()] = None,
    ) -> CohortOut:
        view = service.cohort(year)
        if status is not None:
            wanted = set(status)
            kept = [entry for entry in view.entries if entry.status in wanted]
            view = replace(view, entries=kept)
        return CohortOut.of(view)

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
            for kind in ("subscribers", "relay"):
                for loop in running[kind]:
                    loop.stop()
                running[kind] = []
            if owns_store:
                store.close()
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

    app = create_service_app(
        SERVICE_NAME,
        readiness_checks=checks,
        error_map=ERRORS,
        lifespan=lifespan,
        description="School consultations, the SEND placement panel, phase transfers "
        "and transport.",
    )
    app.state.placement = service
    app.state.store = store
    app.include_router(_case_routes(service))
    app.include_router(_panel_routes(service))
    app.include_router(_transfer_routes(service))
    return app
