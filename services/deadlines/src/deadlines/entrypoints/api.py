"""The deadlines read API: ``python -m deadlines api`` (FastAPI on DEADLINES_PORT).

=======  ===========================================  ================================
Method   Path                                         Answers
=======  ===========================================  ================================
GET      /cases/{case_id}/timeline                    every clock of one case
GET      /due?from=&to=&coordinator_id=&school_urn=   clocks due (and overdue) in a
         &include_overdue=                            range of at most 366 days
GET      /summary                                     clocks by clock and status
GET      /timeliness?from=&to=&format=json|csv        the DfE's timeliness_20_week
                                                      and requests figures for a
                                                      period of at most 1,096 days
GET      /access-log                                  who read which timeline
=======  ===========================================  ================================

- ``/cases/{case_id}/timeline``: each clock's status, due date, act-by day, legal
  basis, what started and stopped it, and its history;
- ``/due``: clocks not yet stopped that fall due in the range (default: today in
  London and six weeks on), and with ``include_overdue`` (default true) every overdue
  clock due before it;
- ``/summary``: counts of clocks by clock and status (set, open, approaching, overdue,
  met, late, cancelled, with an exception);
- ``/timeliness``: the counts of ``deadlines.application.timeliness``, under the
  column names of the DfE's files; ``format=csv`` answers one CSV row.

Every route but the probes and ``/metrics`` needs an OpenID Connect bearer token
(``sendkit.auth``): 401 without a valid one, 403 when the token's roles do not reach
what is asked. ``POLICY`` says who reads what: a coordinator reads the cases of their
team (and those no coordinator has yet), a SENCO only the cases of the schools in their
token, and managers, panel officers, administrators and auditors every case. The lists
and the counts (``/due``, ``/summary``, ``/timeliness``) hold only the cases the caller
may read, and naming a coordinator or school beyond the caller's reach in ``/due`` is
refused with 403 rather than answered empty. Each timeline read is recorded in the
access log before it is answered; auditors read that log at ``GET /access-log``.
``DeadlinesApiSettings`` adds the AUTH_* names to the service's own; with
``AUTH_MODE=off`` (``SEND_ENV=development`` only) no token is read and every caller
has every role, as ``sendkit.auth.web`` says.

The read model is built by subscriber threads of this process
(``DEADLINES_PROJECTOR_ENABLED``); ``/readyz`` fails when the store cannot be read or a
subscriber thread has died. Bad query parameters are answered 422 with problem details
naming each field at fault.

Known limits: the rows of ``/due`` are not recorded in the access log one case at a
time (they hold pseudonymous case ids, school URNs and dates, nothing more than the
topics carry); every request reads all of the read model's documents, which suits a
county's caseload but would want indexed queries for a much larger one.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import Response

from deadlines.adapters.readmodel_store import projector_loops, read_case, read_cases
from deadlines.application import readmodel
from deadlines.application.processor import SOURCE
from deadlines.application.timeliness import timeliness as count_timeliness
from deadlines.settings import DeadlinesApiSettings, DeadlinesSettings
from sendkit.auth import (
    CaseScope,
    Grant,
    NotAuthorized,
    Policy,
    Principal,
    Reach,
    Role,
    ServiceAuth,
)
from sendkit.background import BackgroundLoop, loops_bootstrapped, stop_then_close
from sendkit.calendar import london_date
from sendkit.events import utcnow
from sendkit.logging import configure_logging
from sendkit.problems import ErrorMap
from sendkit.store import EventStore, open_store
from sendkit.web import create_app as create_service_app
from sendkit.web import serve

log = logging.getLogger(__name__)

SERVICE_NAME = "deadlines"
DEFAULT_WINDOW = timedelta(weeks=6)
MAX_DUE_DAYS = 366
"""The longest range ``/due`` answers, both days counted: a year, leap day included."""
MAX_TIMELINESS_DAYS = 1096
"""The longest period ``/timeliness`` counts, both days counted: three years."""

CLOCKS_READ = "clocks.read"
REPORTS_READ = "reports.read"

READ_CLOCKS: tuple[Grant, ...] = (
    Grant(Role.EHC_COORDINATOR, Reach.TEAM),
    Grant(Role.TEAM_MANAGER, Reach.ALL),
    Grant(Role.SENCO, Reach.SCHOOL),
    Grant(Role.PANEL_OFFICER, Reach.ALL),
    Grant(Role.SERVICE_ADMIN, Reach.ALL),
    Grant(Role.AUDITOR, Reach.ALL),
)
"""Reading clocks: the team's for a coordinator, a SENCO's schools', all for the rest.

Panel officers read every case, as ``sendkit.auth.READ_CASE`` lets them in the other
services (a panel may be put any case); managers, administrators and auditors oversee
the whole service's deadlines, so their reach is every team's."""

POLICY = Policy(
    SERVICE_NAME,
    {
        CLOCKS_READ: READ_CLOCKS,
        REPORTS_READ: READ_CLOCKS,
    },
)
"""Who may do what: ``clocks.read`` is a timeline and ``/due``, ``reports.read`` the
counts (``/summary``, ``/timeliness``), each over the cases within the reader's
reach."""

TIMELINE_FIELDS = ("school_urn", "coordinator_id", "received_at", "clocks")
"""What a timeline shows of a case, named in its access-log entry."""


class CaseNotFound(LookupError):
    """No clock event of the case has been read: an unknown id, or a new request."""

    def __init__(self, case_id: str) -> None:
        super().__init__(
            f"no clock events for case {case_id} yet: check the case id, or wait "
            "until the processor has handled its request"
        )
        self.case_id = case_id


class InvalidQuery(ValueError):
    """Query parameters that are each valid but do not make sense together."""

    def __init__(self, message: str, field_errors: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.field_errors = list(field_errors)


def api_settings(settings: DeadlinesSettings | None = None) -> DeadlinesApiSettings:
    """``settings`` with the AUTH_* names, from the environment if it lacks them."""
    if isinstance(settings, DeadlinesApiSettings):
        return settings
    if settings is None:
        return DeadlinesApiSettings()
    return DeadlinesApiSettings(**settings.model_dump())


def check_range(first: date, last: date, *, longest_days: int, what: str) -> None:
    """Refuse a range that ends before it starts or is longer than ``longest_days``."""
    if last < first:
        raise InvalidQuery(
            f"the range ends ({last.isoformat()}) before it starts "
            f"({first.isoformat()}): give 'to' on or after 'from'",
            [("query.to", "must be on or after 'from'")],
        )
    days = (last - first).days + 1
    if days > longest_days:
        raise InvalidQuery(
            f"{what} covers at most {longest_days} days, both counted; "
            f"{first.isoformat()} to {last.isoformat()} is {days}: ask for a shorter "
            "range, in parts if need be",
            [("query.to", f"must be at most {longest_days - 1} days after 'from'")],
        )


def create_app(
    settings: DeadlinesSettings | None = None,
    *,
    store: EventStore | None = None,
    projector: bool | None = None,
) -> FastAPI:
    """The read API over ``store`` (opened from the settings when not given).

    Settings without the AUTH_* names (a plain ``DeadlinesSettings``) take them from
    the environment; ``sendkit.auth.AuthConfigError`` says what is unset.
    """
    settings = api_settings(settings)
    owned = store is None
    store = store or open_store(settings.database_url, SOURCE)
    run_projector = settings.projector_enabled if projector is None else projector
    loops: list[BackgroundLoop] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_projector:
            loops.extend(
                projector_loops(
                    store,
                    bootstrap=settings.kafka_bootstrap_servers,
                    app_id=settings.app_id,
                    clocks_topic=settings.clocks_topic,
                    intake_topic=settings.intake_topic,
                    registry=app.state.metrics.registry,
                )
            )
            for loop in loops:
                loop.start()
        try:
            yield
        finally:
            # Joined (bounded) before the store closes; left open if one overstays.
            stop_then_close(
                loops, store.close if owned else None, what="the read model store"
            )

    def store_readable() -> bool:
        with store.transaction() as tx:
            tx.get_document(readmodel.CASES, "~readiness")
        return True

    def projector_alive() -> bool:
        return all(loop.is_alive() for loop in loops)

    def case_scope(case_id: str) -> CaseScope:
        return readmodel.scope_of(read_case(store, case_id), case_id)

    checks = {"store": store_readable}
    if run_projector:
        checks["projector"] = projector_alive
        # Set once each projector's consumer has reached Kafka; no request per probe.
        checks["kafka_bootstrapped"] = loops_bootstrapped(lambda: loops)
    auth = ServiceAuth.from_settings(
        settings, POLICY, store=store, case_scope=case_scope
    )
    app = create_service_app(
        SERVICE_NAME,
        readiness_checks=checks,
        error_map=ErrorMap()
        .register(InvalidQuery, 422, slug="invalid-query", title="Invalid query")
        .register(CaseNotFound, 404, slug="case-not-found", title="Case not found"),
        lifespan=lifespan,
        description="Statutory clocks of each case: timelines, what is due, counts.",
    )
    auth.install(app)
    app.state.store = store

    # Who may call each route, as POLICY says: each gives the route its principal.
    may_read_case = auth.require(CLOCKS_READ)
    may_list = auth.require(CLOCKS_READ, listing=True)
    may_count = auth.require(REPORTS_READ, listing=True)

    def readable(staff: Principal, action: str) -> list[dict[str, Any]]:
        return [
            doc
            for doc in read_cases(store)
            if auth.permits(staff, POLICY.qualified(action), readmodel.scope_of(doc))
        ]

    def refuse_beyond_reach(staff: Principal, scope: CaseScope, parameter: str) -> None:
        action = POLICY.qualified(CLOCKS_READ)
        if auth.permits(staff, action, scope):
            return
        # Codes and pseudonymous ids only, as sendkit.auth logs its own refusals.
        log.warning(
            "refused GET /due with 403: %s beyond reach",
            parameter,
            extra={
                "status": 403,
                "reason": "forbidden",
                "action": action,
                "route": "/due",
                "staff_id": staff.staff_id,
                "parameter": parameter,
            },
        )
        raise NotAuthorized(action, staff)

    @app.get("/cases/{case_id}/timeline", summary="Every clock of one case")
    def case_timeline(
        case_id: Annotated[str, Path(min_length=1, max_length=100)],
        request: Request,
        staff: Principal = may_read_case,
    ) -> dict[str, Any]:
        doc = read_case(store, case_id)
        if doc is None:
            raise CaseNotFound(case_id)
        auth.record_read(request, staff, case_id, TIMELINE_FIELDS)
        return readmodel.timeline(doc)

    @app.get("/due", summary="Clocks due or overdue in a date range")
    def due(
        first: Annotated[date | None, Query(alias="from")] = None,
        last: Annotated[date | None, Query(alias="to")] = None,
        coordinator_id: Annotated[
            str | None, Query(min_length=1, max_length=64)
        ] = None,
        school_urn: Annotated[int | None, Query(ge=100000, le=999999)] = None,
        include_overdue: bool = True,
        staff: Principal = may_list,
    ) -> dict[str, Any]:
        first = first or london_date(utcnow())
        if last is None:
            if first > date.max - DEFAULT_WINDOW:
                raise InvalidQuery(
                    f"'from' ({first.isoformat()}) leaves no room for the default "
                    "six weeks: give 'to' as well",
                    [("query.from", "too late in the calendar without 'to'")],
                )
            last = first + DEFAULT_WINDOW
        check_range(first, last, longest_days=MAX_DUE_DAYS, what="/due")
        if coordinator_id is not None:
            refuse_beyond_reach(
                staff, CaseScope(coordinator_id=coordinator_id), "coordinator_id"
            )
        if school_urn is not None:
            refuse_beyond_reach(
                staff, CaseScope.of(None, school_urns=[school_urn]), "school_urn"
            )
        items = readmodel.due(
            readable(staff, CLOCKS_READ),
            first=first,
            last=last,
            coordinator_id=coordinator_id,
            school_urn=school_urn,
            include_overdue=include_overdue,
        )
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "count": len(items),
            "items": items,
        }

    @app.get("/summary", summary="Counts of clocks by clock and status")
    def summary(staff: Principal = may_count) -> dict[str, Any]:
        return readmodel.summary(readable(staff, REPORTS_READ))

    @app.get(
        "/timeliness",
        summary="EHC plans within 20 weeks and requests decided within 6 weeks",
        description="The counts of the DfE's timeliness_20_week.csv and requests.csv "
        "for the period from 'from' to 'to' (both included), under the files' own "
        "column names; format=csv answers them as one CSV row.",
        responses={200: {"content": {"text/csv": {}}}},
    )
    def timeliness(
        first: Annotated[date, Query(alias="from")],
        last: Annotated[date, Query(alias="to")],
        output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
        staff: Principal = may_count,
    ) -> Any:
        check_range(first, last, longest_days=MAX_TIMELINESS_DAYS, what="/timeliness")
        figures = count_timeliness(
            readable(staff, REPORTS_READ), first=first, last=last
        )
        if output == "csv":
            name = f"timeliness_{first.isoformat()}_{last.isoformat()}.csv"
            return Response(
                figures.as_csv(),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return figures.as_json()

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deadlines api",
        description="Serve the deadlines read API (settings from DEADLINES_* and "
        "AUTH_*).",
    )
    parser.parse_args(argv)
    settings = DeadlinesApiSettings()
    configure_logging(
        "deadlines", log_format=settings.log_format, level=settings.log_level
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    log.info(
        "deadlines read API starting",
        extra={"host": settings.host, "port": settings.port},
    )
    serve(
        create_app(settings), host=settings.host, port=settings.port, access_log=False
    )
    return 0
