"""``Idempotency-Key`` support for command endpoints, shared by every service.

A client that may retry a command sends ``Idempotency-Key: <token>``. The first
successful answer is recorded under that key *in the same store transaction as the
command's appends*, so either both the events and the answer exist or neither does. A
retry with the same key and the same request (method, path and JSON body, compared
after canonicalising the JSON) gets the recorded answer back, with the same status and
body and the header ``Idempotent-Replayed: true``, and appends nothing. The same key
with a different request is refused with 422 (``IdempotencyKeyMismatch``), following
the IETF ``Idempotency-Key`` header draft, which reserves 409 for requests still in
flight; here requests with one key never overlap, because the check and the record
happen inside one serialised store transaction.

Only successful answers are recorded. An answer of 4xx wrote nothing, so a retry is
decided afresh: a request refused because the case was not ready may succeed later.

Keys are held per store (one per service) in the scope ``"http"``; a key is a token of
1 to 255 visible ASCII characters. Records are kept indefinitely; the store offers no
expiry yet, which costs one small row per keyed command.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from sendkit.store.base import IdempotencyRecord, Transaction

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_SCOPE = "http"

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyError(Exception):
    """Root of the errors of idempotent command handling."""


class InvalidIdempotencyKey(IdempotencyError):
    """The header is present but is not a usable key."""

    field_errors = (
        ("header.idempotency-key", "must be 1 to 255 visible ASCII characters"),
    )

    def __init__(self) -> None:
        super().__init__(
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters, "
            "such as a UUID generated once per command and reused on every retry"
        )


class IdempotencyKeyMismatch(IdempotencyError):
    """The key was already used for a different request."""

    field_errors = (("header.idempotency-key", "already used for a different request"),)

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request: "
            "use a new key for a new command, and reuse a key only to retry the "
            "identical request"
        )
        self.key = key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """A digest of what makes two requests the same command.

    JSON bodies are canonicalised (sorted keys, no spaces), so a client that
    re-serialises the same values is still retrying, not sending something new.
    """
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode("utf-8"), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Idempotency:
    """One keyed command: where its answer is kept and what it must match."""

    key: str
    fingerprint: str
    status_code: int
    scope: str = DEFAULT_SCOPE

    def recorded(self, tx: Transaction) -> IdempotencyRecord | None:
        """The answer already recorded for this key, or ``None`` if it is new.

        Raises ``IdempotencyKeyMismatch`` if the key was used for another request.
        """
        record = tx.get_idempotency(self.scope, self.key)
        if record is not None and record.fingerprint != self.fingerprint:
            raise IdempotencyKeyMismatch(self.key)
        return record

    def record(self, tx: Transaction, body: dict[str, Any]) -> None:
        """Record ``body`` as the answer, in the transaction that appends the events."""
        tx.put_idempotency(
            self.scope,
            IdempotencyRecord(
                key=self.key,
                fingerprint=self.fingerprint,
                status_code=self.status_code,
                body=body,
            ),
        )


async def idempotency_from_request(request: Request) -> Idempotency | None:
    """A FastAPI dependency: the request's ``Idempotency-Key``, or ``None``.

    The status recorded is the route's success status, so a replay answers exactly as
    the first request did.
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _KEY.match(key):
        raise InvalidIdempotencyKey()
    route = request.scope.get("route")
    status_code = getattr(route, "status_code", None) or 200
    body = await request.body()
    return Idempotency(
        key=key,
        fingerprint=fingerprint(request.method, request.url.path, body),
        status_code=int(status_code),
    )


IdempotencyKey = Annotated[Idempotency | None, Depends(idempotency_from_request)]
"""A route parameter: the command's ``Idempotency-Key``, or ``None`` without one."""
