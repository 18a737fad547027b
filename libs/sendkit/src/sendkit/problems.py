"""RFC 9457 problem details: the one shape of every error answer.

Every 4xx and 5xx answer of every service is ``application/problem+json`` with the
members ``type``, ``title``, ``status``, ``detail`` and ``instance``, plus two
extensions: ``correlation_id`` (quote it to an operator to find the logs) and, for
invalid input, ``errors``: one ``{"field": ..., "message": ...}`` per bad field, where
``field`` is a dotted path into the JSON body (``items.0.school_urn``) or, for the
other parts of a request, the part and the name (``query.status``,
``header.idempotency-key``).

``type`` is a relative URI reference ``/problems/<slug>`` naming the kind of problem;
``about:blank`` is used for plain HTTP statuses (404, 405), as the RFC suggests.

Domain errors reach clients through an ``ErrorMap``: each service states, in one place,
which of its exception classes answers which status. An exception may expose
``field_errors`` (a sequence of ``(field, message)`` pairs) to name the fields at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
ABOUT_BLANK = "about:blank"


def problem_type(slug: str) -> str:
    """The ``type`` URI reference of the problem kind called ``slug``."""
    return f"/problems/{slug}"


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field of a request and what is wrong with it."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem details object (RFC 9457 section 3)."""

    status: int
    title: str
    detail: str
    type: str = ABOUT_BLANK
    instance: str | None = None
    errors: Sequence[FieldError] = ()
    extensions: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.instance is not None:
            body["instance"] = self.instance
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        if self.extensions:
            for key, value in self.extensions.items():
                body.setdefault(key, value)
        return body

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            self.as_dict(),
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=dict(headers) if headers else None,
        )


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """How one exception class is answered: a status, a problem kind and a title."""

    status: int
    slug: str
    title: str


class ErrorMap:
    """Which exception answers which status: the one place a service declares it.

    Lookup follows the exception's class hierarchy, so registering a service's root
    error gives every subclass a default, and a subclass may be registered apart.
    """

    def __init__(self, rules: Mapping[type[Exception], ErrorRule] | None = None):
        self._rules: dict[type[Exception], ErrorRule] = dict(rules or {})

    def register(
        self,
        error: type[Exception],
        status: int,
        *,
        slug: str | None = None,
        title: str | None = None,
    ) -> ErrorMap:
        self._rules[error] = ErrorRule(
            status=status,
            slug=slug or _slug(error.__name__),
            title=title or status_title(status),
        )
        return self

    def classes(self) -> Iterable[type[Exception]]:
        return self._rules.keys()

    def update(self, other: ErrorMap) -> ErrorMap:
        """Take every rule of ``other``, replacing any rule for the same class."""
        self._rules.update(other._rules)
        return self

    def rule_for(self, error: BaseException) -> ErrorRule | None:
        for cls in type(error).__mro__:
            rule = self._rules.get(cls)
            if rule is not None:
                return rule
        return None


def _slug(name: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def field_errors_of(error: BaseException) -> list[FieldError]:
    """The ``field_errors`` an exception names, as ``FieldError`` values."""
    raw = getattr(error, "field_errors", None) or ()
    found: list[FieldError] = []
    for item in raw:
        if isinstance(item, FieldError):
            found.append(item)
        else:
            field, message = item
            found.append(FieldError(str(field), str(message)))
    return found


_LOCATION_PREFIX = {
    "query": "query",
    "path": "path",
    "header": "header",
    "cookie": "cookie",
}


def field_name(loc: Sequence[int | str]) -> str:
    """A dotted field name for a pydantic error location.

    Body fields are named from the body's root (``received_at``, ``cases.3``); the
    other parts of a request keep their part as a prefix (``query.limit``).
    """
    parts = [str(p) for p in loc]
    if not parts:
        return "body"
    head, rest = parts[0], parts[1:]
    if head == "body":
        return ".".join(rest) if rest else "body"
    if head in _LOCATION_PREFIX:
        return ".".join([_LOCATION_PREFIX[head], *rest])
    return ".".join(parts)


def clean_message(message: str) -> str:
    """A pydantic message without its ``Value error, `` prefix."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def validation_field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """One ``FieldError`` per pydantic error, in the order pydantic reported them."""
    found: list[FieldError] = []
    for error in errors:
        loc = error.get("loc", ())
        if error.get("type") == "json_invalid":
            found.append(FieldError("body", "the body is not valid JSON"))
            continue
        found.append(
            FieldError(field_name(loc), clean_message(str(error.get("msg", ""))))
        )
    return found
