"""A local stand-in for GOV.UK Notify's API, for the tests and the demo.

``NotifyStub`` is an HTTP server on loopback that speaks the part of Notify's v2 API
the notify service uses, so the official ``notifications-python-client`` is exercised
unchanged against it:

- ``POST /v2/notifications/sms`` and ``POST /v2/notifications/email``: checked as
  Notify checks them (required and unknown fields, a UUID template of the right type,
  a UK mobile number or an email address, ``personalisation`` an object holding every
  placeholder of the template, ``reference`` at most 1,000 characters), rendered from
  the stub's templates, answered ``201`` with Notify's response body;
- ``GET /v2/notifications?reference=&status=&template_type=&older_than=``: newest
  first, 250 a page, with ``links``;
- ``GET /v2/notifications/{id}``: one notification, ``404 NoResultFound`` otherwise.

Every request must carry ``Authorization: Bearer <JWT>`` as Notify requires: HS256,
``iss`` the service id, ``iat`` within 30 seconds of the stub's clock, signed with the
secret of an API key ``{name}-{service_id}-{secret}`` the stub was given. Errors have
Notify's shape, ``{"errors": [{"error": type, "message": text}], "status_code": n}``:
400 ``ValidationError`` / ``BadRequestError``, 401 and 403 ``AuthError``, 404, 429
``RateLimitError``, 500 ``Exception``.

A test (or ``POST /_stub/faults``) can make it fail: the next N sends answer a given
status (``fail_next``), sends to one number or address answer 400 (``reject``), the
next N sends are accepted but their answer held back for a while (``hold_next``: the
notification exists, the caller does not hear of it, as when a process dies before
Notify's answer arrives), and a recipient's message ends in a given status instead of
``delivered`` (``outcome``). Notify's simulator numbers and addresses behave as on
Notify (07700900002 / perm-fail@simulator.notify, 07700900003 /
temp-fail@simulator.notify).

After each accepted message the stub moves it to its final status and, when a
callback URL is configured, posts the delivery receipt to it with the configured bearer
token, retrying a refused callback a few times, as Notify does.

Run it alone with::

    python -m devstack.notify_stub --port 8007 \\
        --callback-url http://127.0.0.1:8006/callbacks/govuk-notify \\
        --callback-token <the token notify expects>

and give notify ``NOTIFY_GOVUK_API_KEY=devstack.notify_stub.DEFAULT_API_KEY`` (printed
by ``--print-api-key``), ``NOTIFY_GOVUK_BASE_URL=http://127.0.0.1:8007`` and the
template ids ``DEFAULT_EMAIL_TEMPLATE_ID`` and ``DEFAULT_SMS_TEMPLATE_ID``.

It binds only loopback addresses and calls back only loopback URLs: its controls and
what it keeps (every message's text and recipient) are unauthenticated. It keeps
everything in memory; nothing survives a restart. Letters, received texts, templates'
own endpoints and rate limiting by volume are not imitated.
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import logging
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from sendkit.logging import configure_logging

log = logging.getLogger(__name__)

DEFAULT_PORT = 8007
TOKEN_WINDOW_S = 30
PAGE_SIZE = 250
MAX_REFERENCE = 1000
CALLBACK_ATTEMPTS = 5

DEFAULT_SERVICE_ID = "5b3d0a5e-8a91-4b7c-9c2e-1f6d2a7b4c01"
DEFAULT_SECRET = "9e0f7c3a-2d4b-4e8f-a1c6-7b5d3e9f0a12"  # noqa: S105 (a dev-only key)
DEFAULT_KEY_NAME = "devstack"
DEFAULT_API_KEY = f"{DEFAULT_KEY_NAME}-{DEFAULT_SERVICE_ID}-{DEFAULT_SECRET}"
"""The stub's API key: for the tests and the demo only, never a real service's."""

DEFAULT_EMAIL_TEMPLATE_ID = "2f4e6a8c-0b1d-4f3a-9c5e-7a9b1c3d5e01"
DEFAULT_SMS_TEMPLATE_ID = "2f4e6a8c-0b1d-4f3a-9c5e-7a9b1c3d5e02"

_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
_PLACEHOLDER = re.compile(r"\(\(([^()]+)\)\)")
_EMAIL = re.compile(r"^[^\s@]+@([^.\s@]+\.)+[^.\s@]+$")
_FINAL = frozenset(
    {"delivered", "permanent-failure", "temporary-failure", "technical-failure"}
)
_STATUSES = frozenset(
    {"created", "sending", "pending", "sent", *_FINAL, "failed", "accepted"}
)
SIMULATED_OUTCOMES = {
    "+447700900002": "permanent-failure",
    "+447700900003": "temporary-failure",
    "perm-fail@simulator.notify": "permanent-failure",
    "temp-fail@simulator.notify": "temporary-failure",
}

_ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthError",
    403: "AuthError",
    404: "NoResultFound",
    429: "RateLimitError",
    500: "Exception",
}
_ERROR_MESSAGES = {
    400: "Bad request",
    429: "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class NotifyStubError(ValueError):
    """The stub was set up or asked for something it cannot do."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _now_text(moment: float | None = None) -> str:
    stamp = datetime.fromtimestamp(time.time() if moment is None else moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key of the stub's service: ``{name}-{service_id}-{secret}``."""

    name: str
    service_id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{self.name}-{self.service_id}-{self.secret}"

    @classmethod
    def parse(cls, text: str) -> ApiKey:
        tail = text[-74:]
        if len(text) <= 74 or tail[0] != "-" or not _UUID.match(tail[1:37]):
            raise NotifyStubError(
                "an API key is {name}-{service id uuid}-{secret uuid}"
            )
        return cls(text[:-74], tail[1:37], tail[38:])


DEFAULT_KEY = ApiKey(DEFAULT_KEY_NAME, DEFAULT_SERVICE_ID, DEFAULT_SECRET)


@dataclass(frozen=True, slots=True)
class Template:
    """A Notify template: its type, and subject and body with ((placeholders))."""

    id: str
    type: str
    body: str
    subject: str | None = None
    version: int = 1
    name: str = "template"

    def placeholders(self) -> list[str]:
        text = f"{self.subject or ''}\n{self.body}"
        return list(dict.fromkeys(p.strip() for p in _PLACEHOLDER.findall(text)))

    def render(self, values: Mapping[str, Any]) -> tuple[str | None, str]:
        lowered = {str(k).lower(): v for k, v in values.items()}

        def fill(match: re.Match[str]) -> str:
            value = lowered.get(match.group(1).strip().lower(), "")
            if isinstance(value, list):
                return "\n".join(f"* {item}" for item in value)
            return str(value)

        subject = _PLACEHOLDER.sub(fill, self.subject) if self.subject else None
        return subject, _PLACEHOLDER.sub(fill, self.body)


DEFAULT_TEMPLATES = (
    Template(
        DEFAULT_EMAIL_TEMPLATE_ID,
        "email",
        "((body))",
        "((subject))",
        name="SEND alert email",
    ),
    Template(DEFAULT_SMS_TEMPLATE_ID, "sms", "((body))", name="SEND alert text"),
)


@dataclass
class StubNotification:
    """One message the stub accepted, as Notify would keep it."""

    id: str
    type: str
    recipient: str
    template: Template
    personalisation: dict[str, Any]
    reference: str | None
    subject: str | None
    body: str
    created_at: float
    status: str = "created"
    sent_at: float | None = None
    completed_at: float | None = None

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "email_address": self.recipient if self.type == "email" else None,
            "phone_number": self.recipient if self.type == "sms" else None,
            "line_1": None,
            "postcode": None,
            "type": self.type,
            "status": self.status,
            "template": {
                "id": self.template.id,
                "version": self.template.version,
                "uri": f"{base_url}/v2/template/{self.template.id}",
            },
            "body": self.body,
            "subject": self.subject,
            "created_at": _now_text(self.created_at),
            "created_by_name": None,
            "sent_at": _now_text(self.sent_at) if self.sent_at else None,
            "completed_at": _now_text(self.completed_at) if self.completed_at else None,
            "scheduled_for": None,
            "one_click_unsubscribe_url": None,
            "personalisation": dict(self.personalisation),
        }

    def receipt(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "to": self.recipient,
            "status": self.status,
            "created_at": _now_text(self.created_at),
            "completed_at": _now_text(self.completed_at) if self.completed_at else None,
            "sent_at": _now_text(self.sent_at) if self.sent_at else None,
            "notification_type": self.type,
            "template_id": self.template.id,
            "template_version": self.template.version,
        }


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One delivery receipt the stub posted, and what the receiver answered."""

    notification_id: str
    status: str
    attempt: int
    answer: int | None
    error: str | None = None


class ApiError(Exception):
    """An answer in Notify's error shape."""

    def __init__(self, status: int, message: str, error_type: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type or _ERROR_TYPES.get(status, "Exception")
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "errors": [{"error": self.error_type, "message": self.message}],
            "status_code": self.status,
        }


@dataclass
class FaultPlan:
    """The failures the stub answers instead of accepting. Guarded by the stub."""

    failures: list[int] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    holds: list[float] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "fail_next": list(self.failures),
            "rejected": dict(self.rejected),
            "hold_next": list(self.holds),
            "outcomes": dict(self.outcomes),
        }


def normalise_uk_mobile(value: str) -> str:
    """``value`` as ``+447...``; ``ApiError`` with Notify's messages otherwise."""
    text = re.sub(r"[\s().\-]", "", value)
    international = text.startswith("+")
    digits = text.lstrip("+")
    if not digits.isdigit():
        raise ApiError(
            400, "phone_number Must not contain letters or symbols", "ValidationError"
        )
    if digits.startswith("0044"):
        digits = digits[4:]
    elif digits.startswith("44") and (international or len(digits) == 12):
        digits = digits[2:]
    elif international:
        raise ApiError(
            400, "Cannot send to international mobile numbers", "BadRequestError"
        )
    digits = digits.removeprefix("0")
    if not digits.startswith("7"):
        raise ApiError(400, "phone_number Not a UK mobile number", "ValidationError")
    if len(digits) > 10:
        raise ApiError(400, "phone_number Too many digits", "ValidationError")
    if len(digits) < 10:
        raise ApiError(400, "phone_number Not enough digits", "ValidationError")
    return f"+44{digits}"


_SEND_FIELDS = {
    "sms": (
        {"phone_number", "template_id"},
        {"personalisation", "reference", "sms_sender_id"},
    ),
    "email": (
        {"email_address", "template_id"},
        {
            "personalisation",
            "reference",
            "email_reply_to_id",
            "one_click_unsubscribe_url",
            "sanitise_content_for",
        },
    ),
}


class NotifyStub:
    """The stand-in server; a context manager that starts and stops it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keys: Iterable[ApiKey] = (DEFAULT_KEY,),
        templates: Iterable[Template] = DEFAULT_TEMPLATES,
        callback_url: str | None = None,
        callback_token: str | None = None,
        deliver_after_s: float = 0.2,
        callback_retry_s: float = 1.0,
        clock: Any = time.time,
    ) -> None:
        if not _loopback(host):
            raise NotifyStubError(
                f"the stub binds only loopback addresses, not {host!r}: its controls "
                "and the messages it keeps are unauthenticated"
            )
        if callback_url is not None:
            target = urlsplit(callback_url).hostname or ""
            if urlsplit(callback_url).scheme not in ("http", "https") or not _loopback(
                target
            ):
                raise NotifyStubError(
                    f"the stub calls back only loopback http(s) URLs, not "
                    f"{callback_url!r}"
                )
        self.host = host
        self._port = port
        self._keys: dict[str, list[ApiKey]] = {}
        for key in keys:
            self._keys.setdefault(key.service_id, []).append(key)
        self.templates = {t.id: t for t in templates}
        self.callback_url = callback_url
        self.callback_token = callback_token
        self.deliver_after_s = deliver_after_s
        self.callback_retry_s = callback_retry_s
        self.clock = clock
        self.faults = FaultPlan()
        self._lock = threading.Lock()
        self._notifications: list[StubNotification] = []
        self._callbacks: list[CallbackAttempt] = []
        self._requests: list[tuple[str, str, int]] = []
        self._queue: list[tuple[float, int, str, int]] = []
        self._queue_seq = 0
        self._queue_ready = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # Life cycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> NotifyStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        serve = threading.Thread(
            target=self._server.serve_forever, name="notify-stub-http", daemon=True
        )
        deliver = threading.Thread(
            target=self._run_deliveries, name="notify-stub-callbacks", daemon=True
        )
        self._threads = [serve, deliver]
        for thread in self._threads:
            thread.start()
        log.info("notify stub listening", extra={"url": self.base_url})
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        with self._queue_ready:
            self._queue_ready.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(10)

    def __enter__(self) -> NotifyStub:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # Controls -------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` sends with ``status`` (after authentication)."""
        if not 400 <= status <= 599:
            raise NotifyStubError(f"{status} is not an error status: use 4xx or 5xx")
        with self._lock:
            self.faults.failures += [status] * count

    def reject(self, recipient: str, status: int = 400) -> None:
        """Answer every send to ``recipient`` (a number or address) with ``status``."""
        with self._lock:
            self.faults.rejected[self._recipient_key(recipient)] = status

    def hold_next(self, count: int, seconds: float = 60.0) -> None:
        """Accept the next ``count`` sends but answer each only after ``seconds``
        (or ``release_held``)."""
        with self._lock:
            self.faults.holds += [seconds] * count
            self._released.clear()

    def release_held(self) -> None:
        self._released.set()

    def set_outcome(self, recipient: str, status: str) -> None:
        """End messages to ``recipient`` in ``status`` rather than delivered."""
        if status not in _FINAL:
            raise NotifyStubError(f"{status!r} is not a final status: {sorted(_FINAL)}")
        with self._lock:
            self.faults.outcomes[self._recipient_key(recipient)] = status

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = FaultPlan()
        self._released.set()

    def notifications(self) -> list[StubNotification]:
        """Every message accepted, oldest first."""
        with self._lock:
            return list(self._notifications)

    def callbacks(self) -> list[CallbackAttempt]:
        with self._lock:
            return list(self._callbacks)

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every API request, in order."""
        with self._lock:
            return list(self._requests)

    @staticmethod
    def _recipient_key(recipient: str) -> str:
        if "@" in recipient:
            return recipient.strip().lower()
        try:
            return normalise_uk_mobile(recipient)
        except ApiError:
            return recipient.strip()

    # Authentication -------------------------------------------------------------------

    def authenticate(self, header: str | None) -> ApiKey:
        """The API key a request's bearer token was signed with, as Notify checks."""
        if not header:
            raise ApiError(401, "Unauthorized: authentication token must be provided")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "Unauthorized: authentication bearer scheme must be used"
            )
        token = token.strip()
        try:
            head = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ApiError(
                403, "Invalid token: signature, api token not found"
            ) from None
        if head.get("alg") != "HS256":
            raise ApiError(403, "Invalid token: algorithm used is not HS256")
        issuer = claims.get("iss")
        if not issuer:
            raise ApiError(403, "Invalid token: iss field not provided")
        keys = self._keys.get(str(issuer))
        if not keys:
            raise ApiError(403, "Invalid token: service not found")
        for key in keys:
            try:
                verified = jwt.decode(
                    token,
                    key.secret,
                    algorithms=["HS256"],
                    options={"verify_iat": False, "verify_exp": False},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                raise ApiError(403, "Invalid token: signature") from None
            issued = verified.get("iat")
            if not isinstance(issued, int | float):
                raise ApiError(403, "Invalid token: iat field not provided")
            if abs(self.clock() - issued) > TOKEN_WINDOW_S:
                raise ApiError(
                    403,
                    "Error: Your system clock must be accurate to within 30 seconds",
                )
            return key
        raise ApiError(403, "Invalid token: API key not found")

    # Sending --------------------------------------------------------------------------

    def send(self, kind: str, body: Any) -> tuple[dict[str, Any], float]:
        """Accept one message; its 201 body and how long to hold the answer."""
        with self._lock:
            if self.faults.failures:
                status = self.faults.failures.pop(0)
                raise ApiError(status, _ERROR_MESSAGES.get(status, "Request failed"))

        notification = self._validated(kind, body)
        with self._lock:
            rejected = self.faults.rejected.get(notification.recipient)
            if rejected is not None:
                raise ApiError(
                    rejected,
                    "Can't send to this recipient using a team-only API key"
                    if rejected == 400
                    else _ERROR_MESSAGES.get(rejected, "Request failed"),
                )
            hold = self.faults.holds.pop(0) if self.faults.holds else 0.0
            self._notifications.append(notification)
            self._schedule(notification.id, 1, self.deliver_after_s)
        content: dict[str, Any] = {"body": notification.body}
        if kind == "email":
            content.update(
                subject=notification.subject, from_email="send.alerts@notify.example"
            )
        else:
            content["from_number"] = "SEND"
        answer = {
            "id": notification.id,
            "reference": notification.reference,
            "content": content,
            "uri": f"{self.base_url}/v2/notifications/{notification.id}",
            "template": {
                "id": notification.template.id,
                "version": notification.template.version,
                "uri": f"{self.base_url}/services/{DEFAULT_SERVICE_ID}/templates/"
                f"{notification.template.id}",
            },
            "scheduled_for": None,
        }
        return answer, hold

    def _validated(self, kind: str, body: Any) -> StubNotification:
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON supplied in POST data", "BadRequestError")
        required, optional = _SEND_FIELDS[kind]
        problems = [
            f"{name} is a required property" for name in sorted(required - body.keys())
        ]
        extra = sorted(body.keys() - required - optional)
        if extra:
            verb = "was" if len(extra) == 1 else "were"
            problems.append(
                "Additional properties are not allowed "
                f"({', '.join(extra)} {verb} unexpected)"
            )
        if problems:
            raise ApiError(400, "; ".join(problems), "ValidationError")
        template_id = body["template_id"]
        if not isinstance(template_id, str) or not _UUID.match(template_id):
            raise ApiError(400, "template_id is not a valid UUID", "ValidationError")
        personalisation = body.get("personalisation") or {}
        if not isinstance(personalisation, dict):
            raise ApiError(
                400,
                f"personalisation {personalisation} is not of type object",
                "ValidationError",
            )
        reference = body.get("reference")
        if reference is not None and (
            not isinstance(reference, str) or len(reference) > MAX_REFERENCE
        ):
            raise ApiError(
                400,
                f"reference must be a string of at most {MAX_REFERENCE} characters",
                "ValidationError",
            )
        if kind == "sms":
            raw = body["phone_number"]
            if not isinstance(raw, str):
                raise ApiError(400, "phone_number is not a string", "ValidationError")
            recipient = normalise_uk_mobile(raw)
        else:
            raw = body["email_address"]
            if not isinstance(raw, str) or not _EMAIL.match(raw.strip()):
                raise ApiError(
                    400, "email_address Not a valid email address", "ValidationError"
                )
            recipient = raw.strip().lower()
        template = self.templates.get(template_id.lower())
        if template is None:
            raise ApiError(400, "Template not found", "BadRequestError")
        if template.type != kind:
            raise ApiError(
                400,
                f"{template.type} template is not suitable for {kind} notification",
                "BadRequestError",
            )
        lowered = {str(k).lower() for k in personalisation}
        missing = [p for p in template.placeholders() if p.lower() not in lowered]
        if missing:
            raise ApiError(
                400, f"Missing personalisation: {', '.join(missing)}", "BadRequestError"
            )
        subject, text = template.render(personalisation)
        return StubNotification(
            id=str(uuid.uuid4()),
            type=kind,
            recipient=recipient,
            template=template,
            personalisation=dict(personalisation),
            reference=reference,
            subject=subject,
            body=text,
            created_at=self.clock(),
        )

    def wait_for_release(self, seconds: float) -> None:
        self._released.wait(seconds)

    # Reading --------------------------------------------------------------------------

    def get(self, notification_id: str) -> dict[str, Any]:
        if not _UUID.match(notification_id):
            raise ApiError(
                400, "notification_id is not a valid UUID", "ValidationError"
            )
        with self._lock:
            for notification in self._notifications:
                if notification.id == notification_id:
                    return notification.as_json(self.base_url)
        raise ApiError(404, "No result found")

    def search(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        statuses = query.get("status", [])
        unknown = [s for s in statuses if s not in _STATUSES]
        if unknown:
            raise ApiError(
                400,
                f"status {unknown[0]} is not one of [{', '.join(sorted(_STATUSES))}]",
                "ValidationError",
            )
        kinds = query.get("template_type", [])
        if any(k not in ("sms", "email", "letter") for k in kinds):
            raise ApiError(
                400,
                f"template_type {kinds[0]} is not one of [sms, email, letter]",
                "ValidationError",
            )
        reference = next(iter(query.get("reference", [])), None)
        older_than = next(iter(query.get("older_than", [])), None)
        with self._lock:
            found = list(reversed(self._notifications))
        if older_than is not None:
            ids = [n.id for n in found]
            found = found[ids.index(older_than) + 1 :] if older_than in ids else []
        found = [
            n
            for n in found
            if (reference is None or n.reference == reference)
            and (not statuses or n.status in statuses)
            and (not kinds or n.type in kinds)
        ]
        page = found[:PAGE_SIZE]
        links = {"current": f"{self.base_url}/v2/notifications"}
        if len(found) > PAGE_SIZE:
            links["next"] = f"{self.base_url}/v2/notifications?older_than={page[-1].id}"
        return {
            "notifications": [n.as_json(self.base_url) for n in page],
            "links": links,
        }

    # Statuses and callbacks -----------------------------------------------------------

    def _schedule(self, notification_id: str, attempt: int, delay: float) -> None:
        # Called with the lock held.
        self._queue_seq += 1
        heapq.heappush(
            self._queue,
            (time.monotonic() + delay, self._queue_seq, notification_id, attempt),
        )
        self._queue_ready.notify_all()

    def _run_deliveries(self) -> None:
        while not self._stopping.is_set():
            with self._queue_ready:
                while not self._stopping.is_set():
                    if self._queue and self._queue[0][0] <= time.monotonic():
                        _, _, notification_id, attempt = heapq.heappop(self._queue)
                        break
                    wait = self._queue[0][0] - time.monotonic() if self._queue else 1.0
                    self._queue_ready.wait(max(wait, 0.01))
                else:
                    return
                notification = next(
                    (n for n in self._notifications if n.id == notification_id), None
                )
                if notification is None:
                    continue
                if notification.status not in _FINAL:
                    now = self.clock()
                    notification.sent_at = now
                    notification.completed_at = now
                    notification.status = self.faults.outcomes.get(
                        notification.recipient,
                        SIMULATED_OUTCOMES.get(notification.recipient, "delivered"),
                    )
                receipt = notification.receipt()
            if self.callback_url:
                self._call_back(notification_id, receipt, attempt)

    def _call_back(
        self, notification_id: str, receipt: dict[str, Any], attempt: int
    ) -> None:
        if self.callback_url is None:
            return
        headers = {"Content-Type": "application/json"}
        if self.callback_token:
            headers["Authorization"] = f"Bearer {self.callback_token}"
        answer: int | None = None
        error: str | None = None
        try:
            response = httpx.post(
                self.callback_url, json=receipt, headers=headers, timeout=10.0
            )
            answer = response.status_code
        except httpx.HTTPError as failure:
            error = repr(failure)
        with self._lock:
            self._callbacks.append(
                CallbackAttempt(
                    notification_id, receipt["status"], attempt, answer, error
                )
            )
            if (answer is None or answer >= 300) and attempt < CALLBACK_ATTEMPTS:
                self._schedule(notification_id, attempt + 1, self.callback_retry_s)
        if answer is None or answer >= 300:
            log.warning(
                "delivery receipt not accepted",
                extra={
                    "notification_id": notification_id,
                    "attempt": attempt,
                    "answer": answer,
                    "error": error,
                },
            )


class _Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the stub."""

    owner: NotifyStub
    server_version = "notify-stub/1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("notify stub: %s", format % args)

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The caller went away (a held answer to a process that was killed).
            log.info("the caller left before the answer", extra={"status": status})
        with self.owner._lock:
            self.owner._requests.append(
                (self.command, urlsplit(self.path).path, status)
            )

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError:
            raise ApiError(
                400, "Invalid JSON supplied in POST data", "BadRequestError"
            ) from None

    def _api(self, action: Any) -> None:
        try:
            self.owner.authenticate(self.headers.get("Authorization"))
            result = action()
        except ApiError as error:
            self._answer(error.status, error.body())
            return
        if isinstance(result, tuple):
            body, hold = result
            if hold:
                self.owner.wait_for_release(hold)
            self._answer(201, body)
        else:
            self._answer(200, result)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/healthz":
            self._answer(200, {"status": "ok"})
        elif parts.path == "/_stub/notifications":
            self._answer(
                200,
                [n.as_json(self.owner.base_url) for n in self.owner.notifications()],
            )
        elif parts.path == "/_stub/callbacks":
            self._answer(200, [_attempt(a) for a in self.owner.callbacks()])
        elif parts.path == "/_stub/faults":
            self._answer(200, self.owner.faults.as_json())
        elif parts.path == "/v2/notifications":
            query = parse_qs(parts.query)
            self._api(lambda: self.owner.search(query))
        elif parts.path.startswith("/v2/notifications/"):
            notification_id = parts.path.rsplit("/", 1)[1]
            self._api(lambda: self.owner.get(notification_id))
        else:
            self._not_found()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/v2/notifications/sms", "/v2/notifications/email"):
            kind = path.rsplit("/", 1)[1]

            def send() -> tuple[dict[str, Any], float]:
                return self.owner.send(kind, self._json_body())

            self._api(send)
        elif path == "/_stub/faults":
            try:
                self._set_faults(self._json_body())
            except (ApiError, NotifyStubError, TypeError, ValueError) as error:
                self._answer(400, {"error": str(error)})
                return
            self._answer(200, self.owner.faults.as_json())
        elif path == "/_stub/release":
            self.owner.release_held()
            self._answer(200, {"released": True})
        elif path.startswith("/v2/"):
            self._api(_no_such_endpoint)
        else:
            self._not_found()

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path == "/_stub/faults":
            self.owner.clear_faults()
            self._answer(200, self.owner.faults.as_json())
        else:
            self._not_found()

    def _not_found(self) -> None:
        self._answer(
            404,
            {
                "message": "The requested URL was not found on the server.",
                "result": "error",
            },
        )

    def _set_faults(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise NotifyStubError("send a JSON object of faults")
        if "fail_next" in body:
            self.owner.fail_next(int(body["fail_next"]), int(body.get("status", 500)))
        if "reject" in body:
            self.owner.reject(str(body["reject"]), int(body.get("status", 400)))
        if "hold_next" in body:
            self.owner.hold_next(int(body["hold_next"]), float(body.get("seconds", 60)))
        if "outcome" in body:
            outcome = body["outcome"]
            self.owner.set_outcome(str(outcome["to"]), str(outcome["status"]))


def _no_such_endpoint() -> dict[str, Any]:
    raise ApiError(404, "Not found: the stub does not serve this endpoint")


def _attempt(attempt: CallbackAttempt) -> dict[str, Any]:
    return {
        "notification_id": attempt.notification_id,
        "status": attempt.status,
        "attempt": attempt.attempt,
        "answer": attempt.answer,
        "error": attempt.error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.notify_stub",
        description="Run a local stand-in for GOV.UK Notify's API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--callback-url", default=None)
    parser.add_argument("--callback-token", default=None)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--deliver-after", type=float, default=0.5)
    parser.add_argument("--print-api-key", action="store_true")
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    args = parser.parse_args(argv)
    if args.print_api_key:
        print(args.api_key)
        return 0
    configure_logging("notify-stub", log_format=args.log_format, level="INFO")
    stub = NotifyStub(
        host=args.host,
        port=args.port,
        keys=[ApiKey.parse(args.api_key)],
        callback_url=args.callback_url,
        callback_token=args.callback_token,
        deliver_after_s=args.deliver_after,
    )
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with stub:
        log.info(
            "notify stub ready",
            extra={"url": stub.base_url, "callback_url": args.callback_url},
        )
        print(f"notify stub ready on {stub.base_url}", flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
