"""Notify's HTTP API: ``python -m notify api`` (FastAPI on NOTIFY_HOST:NOTIFY_PORT).

The staff directory and preferences:

- ``GET /staff?role=&school_urn=``, ``GET /staff/{staff_id}``;
- ``POST /staff`` (201, 409 if the id exists), ``PUT /staff/{staff_id}`` (create or
  replace: 201 or 200), ``DELETE /staff/{staff_id}`` (204; 409 while they manage
  anyone);
- ``POST /staff/import`` with a CSV body (``text/csv``): all rows or none, 422 naming
  every bad row as ``line N.field``;
- ``GET`` and ``PUT /staff/{staff_id}/preferences``: channels per kind (``email``,
  ``sms``, ``both``, ``none``; ``none`` only for approaching alerts), SMS quiet hours,
  the daily digest.

GOV.UK Notify's delivery receipts: ``POST /callbacks/govuk-notify``, with the bearer
token of ``NOTIFY_GOVUK_CALLBACK_TOKEN`` (compared in constant time; a missing or
wrong token is a 401 ``/problems/unauthenticated``, as a bad OpenID Connect token is,
and changes nothing).

``GET /alerts/{alert_id}`` answers where an alert is (status, attempts, channel,
provider, delivery status), without its address or text. ``/healthz``, ``/readyz``
and ``/metrics`` come from ``sendkit.web``. Every error is RFC 9457 problem details.
``/readyz`` reads the event store's last position, which takes no ledger lock, so a
replica holding the ledger does not make the others unready; it does need a free
connection of the store's pool, which ten requests all waiting for the ledger would
hold.

Every route but the probes and the receipts callback needs an OpenID Connect bearer
token (``sendkit.auth``, ADR 009): 401 without a valid one, 403 when its roles are not
granted the route's action (``POLICY`` below). Changing the directory or anyone's
preferences, and importing a CSV, is a ``service_admin``'s; reading the directory,
preferences and alerts is also an ``auditor``'s. The callback carries GOV.UK Notify's
own token instead: ``ServiceAuth`` checks a token only on a route that asks for an
action, and the callback asks for none. Auditors read the access log at
``GET /access-log``.

Known limit: reading the directory shows staff's contact details (email, mobile), but
the kernel's access log records reads of a case (``AccessEntry.case_id``) and has no
subject for a member of staff, so those reads are not in the access log; each is a log
line (reader's and subjects' pseudonymous ids, endpoint, field names, no values)
instead, which a council keeping its logs can audit but ``GET /access-log`` does not
show.
"""

from __future__ import annotations

import argparse
import hmac
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from notify.application.receipts import Receipt
from notify.application.staff import (
    InvalidPreferences,
    StaffConflict,
    StaffNotFound,
)
from notify.bootstrap import NotifyRuntime, build_runtime
from notify.domain.directory import InvalidStaff, StaffMember, StaffRole, build_member
from notify.domain.directory_file import InvalidDirectoryFile
from notify.domain.preferences import (
    ChannelChoice,
    PreferenceKind,
    Preferences,
    QuietHours,
)
from notify.errors import NotifyError
from notify.settings import NotifyApiSettings, NotifySettings
from sendkit.auth import (
    ADMINISTER,
    UNALLOCATED,
    AuthSettings,
    Grant,
    NotAuthenticated,
    Policy,
    Principal,
    Reach,
    Role,
    ServiceAuth,
)
from sendkit.health import store_answers
from sendkit.logging import configure_logging
from sendkit.problems import ErrorMap
from sendkit.web import create_app as create_service_app
from sendkit.web import serve

log = logging.getLogger(__name__)

StaffIdPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="A staff id.")
]
CSV_TYPES = ("text/csv", "text/plain", "application/csv")

SERVICE_NAME = "notify"

ADMINISTER_OR_AUDIT: tuple[Grant, ...] = (
    *ADMINISTER,
    Grant(Role.AUDITOR, Reach.ALL),
)

POLICY = Policy(
    SERVICE_NAME,
    {
        "staff.write": ADMINISTER,
        "staff.read": ADMINISTER_OR_AUDIT,
        "alerts.read": ADMINISTER_OR_AUDIT,
    },
)
"""Who may do what: ``staff.write`` is every change to the directory or to anyone's
preferences (the CSV import too); ``staff.read`` reads the directory and preferences;
``alerts.read`` is ``GET /alerts/{id}``. Every grant reaches all, so no case's scope is
ever looked up."""

CONTACT_FIELDS = ("name", "email", "mobile")
"""What a directory answer shows of a person, named in the log line of each read."""


class StaffFields(BaseModel):
    """A directory entry as the API takes it (checked again by the domain)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=254)
    role: str = Field(
        description="coordinator, manager, senco or panel_officer",
        examples=["coordinator"],
    )
    manager_id: str | None = None
    mobile: str | None = Field(default=None, description="A UK mobile number.")
    school_urn: int | None = Field(default=None, description="A SENCO's school.")

    def member(self, staff_id: str) -> StaffMember:
        return build_member(
            staff_id=staff_id,
            name=self.name,
            email=self.email,
            role=self.role,
            manager_id=self.manager_id,
            mobile=self.mobile,
            school_urn=self.school_urn,
        )


class NewStaff(StaffFields):
    staff_id: str = Field(min_length=1, max_length=64)


class PreferencesIn(BaseModel):
    """One person's preferences; what is left out takes its default."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[PreferenceKind, ChannelChoice] = Field(
        default_factory=dict,
        description="Per kind (approaching, overdue): email, sms, both or none.",
    )
    quiet_hours: str | None = Field(
        default=str(QuietHours.parse("20:00-08:00")),
        description="London hours without texts, HH:MM-HH:MM; null: none.",
    )
    daily_digest: bool = Field(
        default=False,
        description="Gather approaching alerts into one email a day.",
    )

    @field_validator("quiet_hours")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        return None if value is None else str(QuietHours.parse(value))

    def preferences(self) -> Preferences:
        return Preferences(
            channels=self.channels,
            quiet_hours=QuietHours.parse(self.quiet_hours)
            if self.quiet_hours
            else None,
            daily_digest=self.daily_digest,
        )


class ReceiptIn(BaseModel):
    """GOV.UK Notify's delivery receipt (the fields notify reads; the rest ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=100)
    reference: str | None = Field(default=None, max_length=1000)
    status: str = Field(min_length=1, max_length=50)
    completed_at: datetime | None = None


def staff_json(member: StaffMember) -> dict[str, Any]:
    return {
        "staff_id": member.staff_id,
        "name": member.name,
        "email": member.email,
        "role": member.role,
        "manager_id": member.manager_id,
        "mobile": member.mobile,
        "school_urn": member.school_urn,
    }


class AlertNotFound(NotifyError, LookupError):
    """No alert of the ledger has the id asked for."""

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert has id {alert_id}: check the id")
        self.alert_id = alert_id


class UnsupportedMediaType(NotifyError):
    """A directory import sent as something other than CSV text."""

    def __init__(self, media: str) -> None:
        super().__init__(f"send the CSV as text/csv, not {media or 'no content type'}")
        self.field_errors = [("header.content-type", "must be text/csv")]


def error_map() -> ErrorMap:
    return (
        ErrorMap()
        .register(AlertNotFound, 404, slug="alert-not-found", title="Not found")
        .register(
            UnsupportedMediaType,
            415,
            slug="unsupported-media-type",
            title="Unsupported media type",
        )
        .register(StaffNotFound, 404, slug="staff-not-found", title="Not found")
        .register(StaffConflict, 409, slug="staff-conflict", title="Conflict")
        .register(InvalidStaff, 422, slug="invalid-staff", title="Invalid entry")
        .register(
            InvalidDirectoryFile, 422, slug="invalid-directory", title="Invalid CSV"
        )
        .register(
            InvalidPreferences,
            422,
            slug="invalid-preferences",
            title="Invalid preferences",
        )
    )


def _token_matches(header: str | None, token: str | None) -> bool:
    if not token or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _log_contact_read(
    request: Request, reader: Principal, members: Sequence[StaffMember]
) -> None:
    # Pseudonymous ids and field names only: never a name, address or number.
    route = getattr(request.scope.get("route"), "path", request.url.path)
    log.info(
        "staff contact details read",
        extra={
            "staff_id": reader.staff_id,
            "roles": sorted(reader.roles),
            "endpoint": f"{request.method} {route}",
            "subjects": [m.staff_id for m in members],
            "fields": list(CONTACT_FIELDS),
        },
    )


def create_app(
    settings: NotifySettings | None = None,
    *,
    runtime: NotifyRuntime | None = None,
    auth_settings: AuthSettings | None = None,
) -> FastAPI:
    """The API over ``runtime`` (built from the settings when not given).

    Tokens are verified as ``auth_settings`` say, else as ``settings`` do when they
    are ``NotifyApiSettings``, else as the AUTH_* environment does;
    ``AuthConfigError`` names what is missing.
    """
    settings = settings or (runtime.settings if runtime else NotifyApiSettings())
    if auth_settings is None:
        auth_settings = (
            settings if isinstance(settings, AuthSettings) else AuthSettings()
        )
    owned = runtime is None
    parts = runtime or build_runtime(settings)
    token = (
        settings.govuk_callback_token.get_secret_value()
        if settings.govuk_callback_token
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                parts.db.close()
            log.info("notify API stopped")

    app = create_service_app(
        "notify",
        # One plain read of the event store, in the ledger's database, outside any
        # ledger transaction: a ledger step takes the ledger lock (PostgreSQL) or the
        # file's write lock (SQLite), which another replica may hold for longer than
        # the probe waits.
        readiness_checks={"database": store_answers(parts.db.store)},
        error_map=error_map(),
        lifespan=lifespan,
        description="The staff directory, preferences and GOV.UK Notify receipts.",
    )
    app.state.runtime = parts
    staff = parts.staff
    auth = ServiceAuth.from_settings(
        auth_settings,
        POLICY,
        store=parts.db.store,
        case_scope=lambda _case_id: UNALLOCATED,
    )
    auth.install(app)
    may_write = auth.require("staff.write")
    may_read = auth.require("staff.read")
    may_list = auth.require("staff.read", listing=True)
    may_read_alerts = auth.require("alerts.read")

    @app.get("/staff", summary="The staff directory")
    def list_staff(
        request: Request,
        role: StaffRole | None = None,
        school_urn: Annotated[int | None, Query(ge=100000, le=999999)] = None,
        reader: Principal = may_list,
    ) -> dict[str, Any]:
        found = staff.members(role=role.value if role else None, school_urn=school_urn)
        _log_contact_read(request, reader, found)
        return {"count": len(found), "staff": [staff_json(m) for m in found]}

    @app.post("/staff", status_code=201, summary="Add a member of staff")
    def add_staff(body: NewStaff, admin: Principal = may_write) -> JSONResponse:
        member = staff.create(body.member(body.staff_id))
        return JSONResponse(
            staff_json(member),
            status_code=201,
            headers={"Location": f"/staff/{member.staff_id}"},
        )

    @app.post("/staff/import", summary="Import a directory CSV, all rows or none")
    async def import_staff(
        request: Request,
        content_type: Annotated[str | None, Header()] = None,
        admin: Principal = may_write,
    ) -> dict[str, Any]:
        media = (content_type or "").split(";")[0].strip().lower()
        if media not in CSV_TYPES:
            raise UnsupportedMediaType(media)
        raw = await request.body()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidDirectoryFile(
                "the CSV is not UTF-8 text: save it as CSV UTF-8",
                [("body", "is not UTF-8")],
            ) from error
        result = staff.import_csv(text, "the uploaded CSV")
        return {
            "imported": result.imported,
            "created": result.created,
            "updated": result.updated,
        }

    @app.get("/staff/{staff_id}", summary="One member of staff")
    def get_staff(
        request: Request, staff_id: StaffIdPath, reader: Principal = may_read
    ) -> dict[str, Any]:
        member = staff.get(staff_id)
        _log_contact_read(request, reader, [member])
        return staff_json(member)

    @app.put("/staff/{staff_id}", summary="Add or replace a member of staff")
    def put_staff(
        staff_id: StaffIdPath, body: StaffFields, admin: Principal = may_write
    ) -> JSONResponse:
        member = body.member(staff_id)
        created = staff.replace(member)
        return JSONResponse(staff_json(member), status_code=201 if created else 200)

    @app.delete("/staff/{staff_id}", status_code=204, summary="Remove a member")
    def delete_staff(staff_id: StaffIdPath, admin: Principal = may_write) -> Response:
        staff.delete(staff_id)
        return Response(status_code=204)

    @app.get("/staff/{staff_id}/preferences", summary="How they want alerts")
    def get_preferences(
        staff_id: StaffIdPath, reader: Principal = may_read
    ) -> dict[str, object]:
        return staff.preferences(staff_id).to_dict()

    @app.put("/staff/{staff_id}/preferences", summary="Set how they want alerts")
    def put_preferences(
        staff_id: StaffIdPath, body: PreferencesIn, admin: Principal = may_write
    ) -> dict[str, object]:
        return staff.set_preferences(staff_id, body.preferences()).to_dict()

    @app.post("/callbacks/govuk-notify", summary="GOV.UK Notify delivery receipts")
    def govuk_receipt(
        body: ReceiptIn,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, str]:
        if not _token_matches(authorization, token):
            log.warning("delivery receipt refused: wrong or missing bearer token")
            # The platform's 401, with its challenge, as for an OpenID Connect token.
            raise NotAuthenticated(
                "no_token" if not authorization else "wrong_callback_token",
                "the callback's bearer token is missing or wrong: set the token in "
                "GOV.UK Notify's callback settings to NOTIFY_GOVUK_CALLBACK_TOKEN",
            )
        outcome = parts.receipts.record(
            Receipt(
                notification_id=body.id,
                reference=body.reference,
                status=body.status,
                completed_at=body.completed_at,
            )
        )
        return {"outcome": outcome.value}

    @app.get("/alerts/{alert_id}", summary="Where one alert is")
    def get_alert(
        alert_id: Annotated[str, Path(min_length=1, max_length=100)],
        reader: Principal = may_read_alerts,
    ) -> dict[str, Any]:
        with parts.db.transaction() as tx:
            alert = tx.get_alert(alert_id)
        if alert is None:
            raise AlertNotFound(alert_id)
        return {
            "alert_id": alert.alert_id,
            "case_id": alert.case_id or None,
            "kind": alert.kind.value,
            "channel": alert.channel.value,
            "provider": alert.provider.value,
            "recipient_role": alert.role.value,
            "recipient_staff_id": alert.staff_id,
            "status": alert.status.value,
            "attempts": alert.attempts,
            "next_attempt_at": alert.next_attempt_at.isoformat()
            if alert.next_attempt_at
            else None,
            "delivery_status": alert.delivery_status,
            "bundle_id": alert.bundle_id,
        }

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notify api",
        description="Serve notify's HTTP API (settings from NOTIFY_* and AUTH_*).",
    )
    parser.parse_args(argv)
    settings = NotifyApiSettings()
    configure_logging(
        "notify", log_format=settings.log_format, level=settings.log_level
    )
    log.info(
        "notify API starting", extra={"host": settings.host, "port": settings.port}
    )
    serve(
        create_app(settings), host=settings.host, port=settings.port, access_log=False
    )
    return 0
