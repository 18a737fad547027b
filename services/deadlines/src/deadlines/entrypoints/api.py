"""The deadlines read API: ``python -m deadlines api`` (FastAPI on DEADLINES_PORT).

- ``GET /cases/{case_id}/timeline``: every clock of one case, its status, due date,
  act-by day, legal basis, what started and stopped it, and its history;
- ``GET /due?from=&to=&coordinator_id=&school_urn=&include_overdue=``: clocks not yet
  stopped that fall due in the range (default: today in London and six weeks on), and
  with ``include_overdue`` (default true) every overdue clock due before it;
- ``GET /summary``: counts of clocks by clock and status (set, open, approaching,
  overdue, met, late, cancelled, with an exception).

The read model is built by subscriber threads of this process
(``DEADLINES_PROJECTOR_ENABLED``); ``/readyz`` fails when the store cannot be read or a
subscriber thread has died. Bad query parameters are answered 422 with problem details.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, HTTPException, Path, Query

from deadlines.adapters.readmodel_store import projector_loops, read_case, read_cases
from deadlines.application import readmodel
from deadlines.application.processor import SOURCE
from deadlines.settings import DeadlinesSettings
from sendkit.background import BackgroundLoop
from sendkit.calendar import london_date
from sendkit.events import utcnow
from sendkit.logging import configure_logging
from sendkit.problems import ErrorMap
from sendkit.store import EventStore, open_store
from sendkit.web import create_app as create_service_app

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(weeks=6)


class InvalidQuery(ValueError):
    """Query parameters that are each valid but do not make sense together."""

    def __init__(self, message: str, field_errors: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.field_errors = list(field_errors)


def create_app(
    settings: DeadlinesSettings | None = None,
    *,
    store: EventStore | None = None,
    projector: bool | None = None,
) -> FastAPI:
    """The read API over ``store`` (opened from the settings when not given)."""
    settings = settings or DeadlinesSettings()
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
            for loop in loops:
                loop.stop()
            if owned:
                store.close()

    def store_readable() -> bool:
        with store.transaction() as tx:
            tx.get_document(readmodel.CASES, "~readiness")
        return True

    def projector_alive() -> bool:
        return all(loop.is_alive() for loop in loops)

    checks = {"store": store_readable}
    if run_projector:
        checks["projector"] = projector_alive
    app = create_service_app(
        "deadlines",
        readiness_checks=checks,
        error_map=ErrorMap().register(
            InvalidQuery, 422, slug="invalid-query", title="Invalid query"
        ),
        lifespan=lifespan,
        description="Statutory clocks of each case: timelines, what is due, counts.",
    )
    app.state.store = store

    @app.get("/cases/{case_id}/timeline", summary="Every clock of one case")
    def case_timeline(
        case_id: Annotated[str, Path(min_length=1, max_length=100)],
    ) -> dict[str, Any]:
        doc = read_case(store, case_id)
        if doc is None:
            raise HTTPException(
                404,
                f"no clock events for case {case_id} yet: check the case id, or wait "
                "until the processor has handled its request",
            )
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
    ) -> dict[str, Any]:
        first = first or london_date(utcnow())
        last = last or first + DEFAULT_WINDOW
        if last < first:
            raise InvalidQuery(
                f"the range ends ({last.isoformat()}) before it starts "
                f"({first.isoformat()}): give 'to' on or after 'from'",
                [("to", "must be on or after 'from'")],
            )
        items = readmodel.due(
            read_cases(store),
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
    def summary() -> dict[str, Any]:
        return readmodel.summary(read_cases(store))

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deadlines api",
        description="Serve the deadlines read API (settings from DEADLINES_*).",
    )
    parser.parse_args(argv)
    settings = DeadlinesSettings()
    configure_logging(
        "deadlines", log_format=settings.log_format, level=settings.log_level
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    log.info(
        "deadlines read API starting",
        extra={"host": settings.host, "port": settings.port},
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )
    return 0
