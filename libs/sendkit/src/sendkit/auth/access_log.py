"""The access log: who read which case's personal details, when, and through what.

Every answer that shows a case's personal details is recorded first, in the service's
own store (documents of the collection ``access_log``), so a council can audit reads as
it audits changes. An entry holds the pseudonymous staff id and roles of the reader,
the time (UTC), the case id, the endpoint (method and route template), the names of
the personal fields the answer holds, and the correlation id of the request: never a
value of those fields, so the log itself holds no personal data. If the entry cannot
be written the read fails (503) rather than being served unrecorded.

Keys sort by time (``<UTC timestamp>-<random>``), so ``list_documents`` returns the log
in order. Known limit: a query reads the whole collection and filters it in memory,
which suits a county's years of reads on SQLite or PostgreSQL but would want an indexed
table for a national one; entries are never deleted here, so retention is for the
council's own housekeeping.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sendkit.auth.policy import Principal
from sendkit.events import utcnow
from sendkit.logging import current_correlation_id
from sendkit.store.base import EventStore

COLLECTION = "access_log"

_SEQUENCE = itertools.count()


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One read of a case's personal details."""

    id: str
    at: datetime
    staff_id: str
    roles: tuple[str, ...]
    case_id: str
    endpoint: str
    fields: tuple[str, ...]
    correlation_id: str
    service: str

    def as_document(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "staff_id": self.staff_id,
            "roles": list(self.roles),
            "case_id": self.case_id,
            "endpoint": self.endpoint,
            "fields": list(self.fields),
            "correlation_id": self.correlation_id,
            "service": self.service,
        }

    @classmethod
    def of(cls, key: str, document: dict[str, Any]) -> AccessEntry:
        return cls(
            id=key,
            at=datetime.fromisoformat(document["at"]),
            staff_id=document["staff_id"],
            roles=tuple(document.get("roles", ())),
            case_id=document["case_id"],
            endpoint=document["endpoint"],
            fields=tuple(document.get("fields", ())),
            correlation_id=document.get("correlation_id", ""),
            service=document.get("service", ""),
        )


class AccessLog:
    """Records and answers reads of personal details, in one service's store."""

    def __init__(
        self,
        store: EventStore,
        service: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.service = service
        self.clock = clock

    def record(
        self,
        principal: Principal,
        case_id: str,
        endpoint: str,
        fields: Iterable[str],
    ) -> AccessEntry:
        """Record that ``principal`` read ``fields`` of ``case_id`` at ``endpoint``."""
        at = self.clock()
        # The counter orders two reads of one microsecond; the random part keeps
        # replicas (each with its own counter) from ever sharing a key.
        key = f"{at:%Y%m%dT%H%M%S.%fZ}-{next(_SEQUENCE):010d}-{uuid.uuid4().hex[:8]}"
        entry = AccessEntry(
            id=key,
            at=at,
            staff_id=principal.staff_id,
            roles=tuple(sorted(principal.roles)),
            case_id=case_id,
            endpoint=endpoint,
            fields=tuple(fields),
            correlation_id=current_correlation_id(),
            service=self.service,
        )
        with self.store.transaction() as tx:
            tx.put_document(COLLECTION, entry.id, entry.as_document())
        return entry

    def entries(
        self,
        *,
        case_id: str | None = None,
        staff_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AccessEntry]:
        """The entries matching every filter given, oldest first."""
        with self.store.transaction() as tx:
            rows = tx.list_documents(COLLECTION)
        found = []
        for key, document in rows:
            entry = AccessEntry.of(key, document)
            if (
                (case_id is None or entry.case_id == case_id)
                and (staff_id is None or entry.staff_id == staff_id)
                and (since is None or entry.at >= since)
                and (until is None or entry.at < until)
            ):
                found.append(entry)
        return found
