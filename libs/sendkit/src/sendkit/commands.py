"""Running one command against one stream: load, decide, append, answer.

``run_command`` is the loop every service's command handlers share. In one store
transaction it checks the idempotency key, reads the stream, asks the caller's pure
``decide`` for new events, appends them with the version it read, builds the answer and
records it under the key. If another writer moved the stream on in between (a
``VersionConflict``, possible with stores that do not serialise writers), the whole step
is repeated on the fresh stream, up to ``attempts`` times, and then ``CommandConflict``
is raised, which HTTP answers with 409. A domain error raised by ``decide`` rolls the
transaction back, so nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sendkit.events import NewEvent, RecordedEvent
from sendkit.idempotency import Idempotency
from sendkit.store.base import EventStore, VersionConflict

log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 5


class CommandConflict(Exception):
    """The stream kept changing under the command; the client should retry later."""

    def __init__(self, stream_id: str, attempts: int) -> None:
        super().__init__(
            f"case {stream_id} was changed by other commands {attempts} times while "
            "this one was being decided: read the case again and resend if it still "
            "applies"
        )
        self.stream_id = stream_id
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """What a command produced, or the recorded answer of an earlier identical one."""

    body: dict[str, Any]
    recorded: list[RecordedEvent] = field(default_factory=list)
    replayed: bool = False
    status_code: int | None = None
    """The status to answer with on a replay; ``None`` means the route's own."""


Decide = Callable[[Sequence[RecordedEvent]], Sequence[NewEvent]]
Answer = Callable[[Sequence[RecordedEvent], Sequence[RecordedEvent]], dict[str, Any]]


def run_command(
    store: EventStore,
    stream_id: str,
    decide: Decide,
    answer: Answer,
    *,
    idempotency: Idempotency | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
) -> CommandAnswer:
    """Decide on ``stream_id``'s history and append the result, atomically.

    ``decide(history)`` returns the new events (possibly none) or raises a domain
    error; ``answer(history, recorded)`` builds the JSON answer from what was there and
    what was appended.
    """
    for attempt in range(1, attempts + 1):
        try:
            with store.transaction() as tx:
                if idempotency is not None:
                    earlier = idempotency.recorded(tx)
                    if earlier is not None:
                        return CommandAnswer(
                            body=earlier.body,
                            replayed=True,
                            status_code=earlier.status_code,
                        )

                history = tx.read_stream(stream_id)
                new_events = decide(history)

                version = history[-1].version if history else 0
                recorded = (
                    tx.append(stream_id, version, new_events) if new_events else []
                )

                body = answer(history, recorded)
                if idempotency is not None:
                    idempotency.record(tx, body)
                return CommandAnswer(body=body, recorded=recorded)
        except VersionConflict as conflict:
            log.info(
                "stream moved on while deciding; retrying",
                extra={
                    "stream_id": stream_id,
                    "attempt": attempt,
                    "expected": conflict.expected,
                    "actual": conflict.actual,
                },
            )
    raise CommandConflict(stream_id, attempts)
