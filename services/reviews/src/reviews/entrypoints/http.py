"""The reviews HTTP API: the annual review cycle's commands and the review lists.

Run it with ``python -m reviews``, or with
``uvicorn --factory reviews.entrypoints.http:create_app``.

=======  ====================================================  =======================
Method   Path                                                  Does
=======  ====================================================  =======================
POST     /cases/{case_id}/reviews                              arrange a review (201)
POST     /cases/{case_id}/reviews/{review_id}/rearrangement    move its meeting
POST     /cases/{case_id}/reviews/{review_id}/papers           invitations and advice
POST     /cases/{case_id}/reviews/{review_id}/meeting          the meeting held
POST     /cases/{case_id}/reviews/{review_id}/report           the report received
POST     /cases/{case_id}/reviews/{review_id}/decision         maintain, amend, cease
POST     /cases/{case_id}/reviews/{review_id}/referrals        referrals to agencies
POST     /cases/{case_id}/interim-review-requests              request an interim one
POST     /schools/{urn}/review-lists                           the SENCO's list sent
GET      /cases/{case_id}                                      the cycle and history
GET      /schools/{urn}/upcoming-reviews?term_start=&term_end= a SENCO's termly list
GET      /coordinators/{id}/upcoming-reviews?from=&to=         a coordinator's list
=======  ====================================================  =======================

Every command accepts ``Idempotency-Key`` (see ``sendkit.idempotency``). Errors are
RFC 9457 problem details: 422 for invalid values (each bad field named), 404 for an
unknown case or review, 409 for a command the case's state rules out (no issued plan,
a ceased plan, a second decision, a decision before the meeting), and nothing is
written in any of those cases.

A case appears here when the plans service issues its final plan (or intake assigns
its coordinator): the subscribers record those events, so reviews can be arranged only
once ``PlanIssued`` has been consumed.

Every route but the probes needs an OpenID Connect bearer token (``sendkit.auth``):
401 without a valid one, 403 when the token's roles do not reach the case (``POLICY``
below says who may do what: a SENCO records the meeting and the report for a school of
theirs, and reads only their schools' cases and lists). The token's pseudonymous staff
id is the actor of every event. Reading a case (``GET /cases/{case_id}``) is recorded
in the access log before it is answered; auditors read that log at ``GET /access-log``.
Each review list shows its caller only the rows they may read. With ``AUTH_MODE=off``
(development only) the ``X-Staff-Id`` header names who acts instead, as before.

A case's scope for those checks is its coordinator (followed from intake) and the
settings its plan and reviews name, as reviews' own events record them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from reviews.adapters.relay import start_relay_thread
from reviews.adapters.store import open_reviews_store
from reviews.adapters.subscribers import start_subscriber_threads
from reviews.application.read_model import UpcomingReview
from reviews.application.service import ReviewsService, new_review_id
from reviews.domain import (
    ArrangeReview,
    CaseNotFound,
    DecideReview,
    ImpossibleTransition,
    InvalidCommand,
    InvalidQuery,
    RearrangeReview,
    RecordPapersSent,
    RecordReferralsMade,
    RecordReportReceived,
    RecordReviewHeld,
    RequestInterimReview,
    ReviewNotFound,
    ReviewsError,
    fold,
)
from reviews.entrypoints.api_models import (
    ArrangeReviewBody,
    CaseOut,
    CommandOut,
    InterimReviewRequestBody,
    PapersSentBody,
    RearrangeReviewBody,
    ReferralsMadeBody,
    ReportReceivedBody,
    ReviewDecisionBody,
    ReviewHeldBody,
    ReviewListSentBody,
    UpcomingReviewOut,
    UpcomingReviewsOut,
)
from reviews.settings import ReviewsSettings
from send_schemas.intake import URN_MAX, URN_MIN
from sendkit.auth import (
    ACT_ON_CASE,
    READ_CASE,
    RECORD_PANEL_DECISION,
    RECORD_SCHOOL_ACT,
    CaseScope,
    Grant,
    Policy,
    Principal,
    Reach,
    Role,
    ServiceAuth,
)
from sendkit.background import loops_bootstrapped, stop_then_close
from sendkit.commands import CommandAnswer
from sendkit.idempotency import Idempotency, IdempotencyKey
from sendkit.problems import ErrorMap
from sendkit.store import EventStore
from sendkit.web import command_response
from sendkit.web import create_app as create_service_app

log = logging.getLogger(__name__)

SERVICE_NAME = "reviews"

ERRORS = (
    ErrorMap()
    .register(ReviewsError, 400, slug="reviews-error", title="Request not accepted")
    .register(InvalidCommand, 422, slug="validation-error", title="Invalid request")
    .register(InvalidQuery, 422, slug="validation-error", title="Invalid request")
    .register(CaseNotFound, 404, slug="case-not-found", title="Case not found")
    .register(ReviewNotFound, 404, slug="review-not-found", title="Review not found")
    .register(
        ImpossibleTransition,
        409,
        slug="impossible-transition",
        title="Not possible in the case's current state",
    )
)
"""Which reviews error answers which status: the one place it is said."""

POLICY = Policy(
    SERVICE_NAME,
    {
        "cases.read": READ_CASE,
        "cases.write": ACT_ON_CASE,
        "cases.record-school-act": RECORD_SCHOOL_ACT,
        "cases.decide": RECORD_PANEL_DECISION,
        "lists.read": READ_CASE,
        "lists.send": (
            Grant(Role.EHC_COORDINATOR, Reach.TEAM),
            Grant(Role.TEAM_MANAGER, Reach.TEAM),
        ),
    },
)
"""Who may do what: what a school does (the meeting held, its report) is
``cases.record-school-act``; the decision after a review is a panel's; a list is read
through ``lists.read`` and then shows only the rows its reader may read."""

PERSONAL_FIELDS = (
    "reviews.recommendations",
    "reviews.proposed_amendments",
    "interim_requests",
    "history.private",
)
"""What ``GET /cases/{case_id}`` shows that the access log must record being read."""

_PSEUDONYM = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

RelayFactory = Callable[[ReviewsSettings, EventStore, CollectorRegistry], Any]
"""Starts a relay and returns a handle with ``is_alive()`` and ``stop()``."""

SubscribersFactory = Callable[
    [ReviewsSettings, EventStore, ReviewsService, CollectorRegistry], Sequence[Any]
]
"""Starts the subscribers and returns handles with ``is_alive()`` and ``stop()``."""


def _listed(first: date, last: date, rows: list[UpcomingReview]) -> UpcomingReviewsOut:
    return UpcomingReviewsOut(
        first_day=first,
        last_day=last,
        total=len(rows),
        reviews=[UpcomingReviewOut.of(row) for row in rows],
    )


def case_scope_of(store: EventStore) -> Callable[[str], CaseScope]:
    """A case's coordinator and the settings its plan and reviews name."""

    def scope(case_id: str) -> CaseScope:
        case = fold(case_id, store.read_stream(case_id))
        settings = [case.setting_urn, *(r.setting_urn for r in case.reviews)]
        return CaseScope.of(
            case_id, coordinator_id=case.coordinator_id, school_urns=settings
        )

    return scope


def _visible(
    auth: ServiceAuth, staff: Principal, rows: list[UpcomingReview]
) -> list[UpcomingReview]:
    return [
        row
        for row in rows
        if auth.permits(
            staff,
            "reviews:cases.read",
            CaseScope.of(
                row.case_id,
                coordinator_id=row.coordinator_id,
                school_urns=[row.setting_urn],
            ),
        )
    ]


def _routes(service: ReviewsService, auth: ServiceAuth) -> APIRouter:
    router = APIRouter()

    # Who may call each route, as POLICY says: each gives the route its principal.
    may_read = auth.require("cases.read")
    may_write = auth.require("cases.write")
    may_record_school_act = auth.require("cases.record-school-act")
    may_decide = auth.require("cases.decide")
    may_read_school_list = auth.require("lists.read", school="urn")
    may_read_coordinator_list = auth.require("lists.read", coordinator="coordinator_id")
    may_send_list = auth.require("lists.send", school="urn")

    def run(
        command: Any, staff: Principal, idempotency: Idempotency | None
    ) -> CommandAnswer:
        return service.handle(command, actor=staff.actor, idempotency=idempotency)

    @router.post("/cases/{case_id}/reviews", status_code=201, response_model=CommandOut)
    def arrange_review(
        case_id: str,
        body: ArrangeReviewBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        fields = body.model_dump()
        command = ArrangeReview(
            case_id=case_id,
            review_id=new_review_id(),
            **{**fields, "invitee_roles": tuple(fields["invitee_roles"])},
        )
        result = run(command, staff, idempotency)
        location = f"/cases/{case_id}/reviews/{result.body['review_id']}"
        return command_response(result, 201, {"Location": location})

    @router.post(
        "/cases/{case_id}/reviews/{review_id}/rearrangement", response_model=CommandOut
    )
    def rearrange_review(
        case_id: str,
        review_id: str,
        body: RearrangeReviewBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RearrangeReview(case_id, review_id, **body.model_dump())
        return command_response(run(command, staff, idempotency), 200)

    @router.post(
        "/cases/{case_id}/reviews/{review_id}/papers", response_model=CommandOut
    )
    def record_papers_sent(
        case_id: str,
        review_id: str,
        body: PapersSentBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RecordPapersSent(case_id, review_id, body.sent_on)
        return command_response(run(command, staff, idempotency), 200)

    @router.post(
        "/cases/{case_id}/reviews/{review_id}/meeting", response_model=CommandOut
    )
    def record_review_held(
        case_id: str,
        review_id: str,
        body: ReviewHeldBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_record_school_act,
    ) -> JSONResponse:
        command = RecordReviewHeld(
            case_id,
            review_id,
            held_on=body.held_on,
            attendee_roles=tuple(body.attendee_roles),
            child_views_gathered=body.child_views_gathered,
            recommendations=body.recommendations,
        )
        return command_response(run(command, staff, idempotency), 200)

    @router.post(
        "/cases/{case_id}/reviews/{review_id}/report", response_model=CommandOut
    )
    def record_report_received(
        case_id: str,
        review_id: str,
        body: ReportReceivedBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_record_school_act,
    ) -> JSONResponse:
        command = RecordReportReceived(case_id, review_id, body.received_on)
        return command_response(run(command, staff, idempotency), 200)

    @router.post(
        "/cases/{case_id}/reviews/{review_id}/decision", response_model=CommandOut
    )
    def decide_review(
        case_id: str,
        review_id: str,
        body: ReviewDecisionBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_decide,
    ) -> JSONResponse:
        command = DecideReview(case_id, review_id, **body.model_dump())
        return command_response(run(command, staff, idempotency), 200)

    @router.post(
        "/cases/{case_id}/reviews/{review_id}/referrals", response_model=CommandOut
    )
    def record_referrals_made(
        case_id: str,
        review_id: str,
        body: ReferralsMadeBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RecordReferralsMade(case_id, review_id, body.made_on)
        return command_response(run(command, staff, idempotency), 200)

    @router.post("/schools/{urn}/review-lists")
    def record_review_list_sent(
        urn: Annotated[int, Path(ge=URN_MIN, le=URN_MAX)],
        body: ReviewListSentBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_send_list,
    ) -> JSONResponse:
        result = service.send_review_list(
            urn,
            body.term_start,
            body.term_end,
            body.sent_on,
            include_overdue=body.include_overdue,
            actor=staff.actor,
            idempotency=idempotency,
        )
        return command_response(result, 200)

    @router.post(
        "/cases/{case_id}/interim-review-requests",
        status_code=201,
        response_model=CommandOut,
    )
    def request_interim_review(
        case_id: str,
        body: InterimReviewRequestBody,
        idempotency: IdempotencyKey,
        staff: Principal = may_write,
    ) -> JSONResponse:
        command = RequestInterimReview(case_id, **body.model_dump())
        return command_response(run(command, staff, idempotency), 201)

    @router.get("/cases/{case_id}", response_model=CaseOut)
    def read_case(
        case_id: str, request: Request, staff: Principal = may_read
    ) -> CaseOut:
        found = service.case(case_id)
        auth.record_read(request, staff, case_id, PERSONAL_FIELDS)
        return CaseOut.of(found)

    @router.get("/schools/{urn}/upcoming-reviews", response_model=UpcomingReviewsOut)
    def school_upcoming_reviews(
        urn: Annotated[int, Path(ge=URN_MIN, le=URN_MAX)],
        term_start: date,
        term_end: date,
        include_overdue: bool = False,
        staff: Principal = may_read_school_list,
    ) -> UpcomingReviewsOut:
        rows = service.upcoming_reviews(
            term_start,
            term_end,
            setting_urn=urn,
            include_overdue=include_overdue,
            fields=("query.term_start", "query.term_end"),
        )
        return _listed(term_start, term_end, _visible(auth, staff, rows))

    @router.get(
        "/coordinators/{coordinator_id}/upcoming-reviews",
        response_model=UpcomingReviewsOut,
    )
    def coordinator_upcoming_reviews(
        coordinator_id: Annotated[str, Path(pattern=_PSEUDONYM)],
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
        include_overdue: bool = False,
        staff: Principal = may_read_coordinator_list,
    ) -> UpcomingReviewsOut:
        rows = service.upcoming_reviews(
            first,
            last,
            coordinator_id=coordinator_id,
            include_overdue=include_overdue,
            fields=("query.from", "query.to"),
        )
        return _listed(first, last, _visible(auth, staff, rows))

    return router


def create_app(
    settings: ReviewsSettings | None = None,
    *,
    store: EventStore | None = None,
    clock: Callable[[], datetime] | None = None,
    relay_factory: RelayFactory | None = None,
    subscribers_factory: SubscribersFactory | None = None,
) -> FastAPI:
    """The reviews FastAPI app; with no arguments, configured from the environment.

    A ``store`` passed in is the caller's to close; one opened from the settings is
    closed when the app shuts down. With ``REVIEWS_RELAY_ENABLED`` the outbox relay,
    and with ``REVIEWS_SUBSCRIBERS_ENABLED`` the plans and intake subscribers, run as
    threads from start-up to shutdown (the factories replace them in tests).
    """
    settings = settings or ReviewsSettings()
    owns_store = store is None
    store = store if store is not None else open_reviews_store(settings)
    service = (
        ReviewsService(store, clock=clock)
        if clock is not None
        else ReviewsService(store)
    )

    loops: dict[str, list[Any]] = {"relay": [], "subscribers": []}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.index.catch_up()
        registry = app.state.metrics.registry
        if settings.relay_enabled:
            start_relay = relay_factory or start_relay_thread
            loops["relay"].append(start_relay(settings, store, registry))
        if settings.subscribers_enabled:
            start_subscribers = subscribers_factory or start_subscriber_threads
            loops["subscribers"].extend(
                start_subscribers(settings, store, service, registry)
            )
        log.info(
            "reviews started",
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
            running = [*loops["subscribers"], *loops["relay"]]
            loops["subscribers"].clear()
            loops["relay"].clear()
            stop_then_close(
                running,
                store.close if owns_store else None,
                what="the reviews event store",
            )
            log.info("reviews stopped")

    def store_answers() -> None:
        store.last_position()

    def alive(kind: str) -> Callable[[], bool]:
        return lambda: all(handle.is_alive() for handle in loops[kind])

    checks: dict[str, Callable[[], object]] = {"event_store": store_answers}
    if settings.relay_enabled:
        checks["outbox_relay"] = alive("relay")
    if settings.subscribers_enabled:
        checks["subscribers"] = alive("subscribers")
    if settings.relay_enabled or settings.subscribers_enabled:
        # Set once each loop's Kafka client has reached a broker; no request per probe.
        checks["kafka_bootstrapped"] = loops_bootstrapped(
            lambda: [*loops["relay"], *loops["subscribers"]]
        )

    auth = ServiceAuth.from_settings(
        settings, POLICY, store=store, case_scope=case_scope_of(store)
    )
    app = create_service_app(
        SERVICE_NAME,
        readiness_checks=checks,
        error_map=ERRORS,
        lifespan=lifespan,
        description="The annual review cycle of EHC plans, and interim reviews.",
    )
    auth.install(app)
    app.state.reviews = service
    app.state.store = store
    app.include_router(_routes(service, auth))
    return app
