"""Running one command against one stream: load, decide, append, answer.

``run_command`` is the loop every service's command handlers share. In one store
transaction it checks the idempotency key, reads the stream, asks the caller's pure
``decide`` for new events, appends them with the version it read, builds the answer and
records it under the key. If another writer moved the stream on in between (a
``VersionConflict``, possible with stores that do not serialise writers), the whole step
is repeated on the fresh stream, up to ``attempts`` times, and then ``CommandConflict``
is raised, which HTTP answers with 409. A domain error raised by ``decide`` rolls the
transaction back, so nothing is written.

``run_streams_command`` is the same loop for a command that writes to several streams
at once (one panel listing several cases), all or nothing; its ``decide`` also gets
the transaction, to read the service's documents in the same snapshot it decides on.
``run_command`` is the one-stream case of it.

``decide_in`` is the load, decide and append step on its own, for code that already
holds a transaction (a subscriber's handler).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sendkit.events import NewEvent, RecordedEvent
from sendkit.idempotency import Idempotency
from sendkit.store.base import EventStore, Transaction, VersionConflict

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

Histories = Mapping[str, Sequence[RecordedEvent]]
"""Each stream's events as read in the command's transaction, by stream id."""
DecideStreams = Callable[[Transaction, Histories], Mapping[str, Sequence[NewEvent]]]
AnswerStreams = Callable[
    [Histories, Mapping[str, Sequence[RecordedEvent]]], dict[str, Any]
]


def decide_in(
    tx: Transaction, stream_id: str, decide: Decide
) -> tuple[list[RecordedEvent], list[RecordedEvent]]:
    """Read ``stream_id`` in ``tx``, decide on it, append what was decided.

    Returns the history read and the events appended (none if ``decide`` returned
    none). It is the step ``run_command`` takes, for callers that already hold a
    transaction: a subscriber's handler deciding on a consumed event appends in the
    transaction that marks the event processed. A ``VersionConflict`` propagates, for
    the caller to retry on the fresh stream.
    """
    history = tx.read_stream(stream_id)
    new_events = decide(history)
    version = history[-1].version if history else 0
    recorded = tx.append(stream_id, version, new_events) if new_events else []
    return history, recorded


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

    def decide_streams(tx: Transaction, histories: Histories) -> dict[str, Any]:
        return {stream_id: decide(histories[stream_id])}

    def answer_streams(
        histories: Histories, recorded: Mapping[str, Sequence[RecordedEvent]]
    ) -> dict[str, Any]:
        return answer(histories[stream_id], recorded.get(stream_id, []))

    return run_streams_command(
        store,
        [stream_id],
        decide_streams,
        answer_streams,
        idempotency=idempotency,
        attempts=attempts,
    )


def run_streams_command(
    store: EventStore,
    stream_ids: Iterable[str],
    decide: DecideStreams,
    answer: AnswerStreams,
    *,
    idempotency: Idempotency | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
) -> CommandAnswer:
    """Decide on several streams together and append to each, in one transaction.

    A command that concerns several cases at once (listing cases for one panel) is
    recorded on every case or on none. ``decide(tx, histories)`` gets the
    transaction too, so that it can read the service's documents (its read model of
    other services' facts) as they stand at the moment it decides; it returns the new
    events by stream id, and may leave streams out. Events are appended in the order
    of ``stream_ids``; a stream id given twice is read once.
    """
    ids = list(dict.fromkeys(stream_ids))
    conflicted = ids[0] if ids else ""
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

                histories = {stream_id: tx.read_stream(stream_id) for stream_id in ids}
                decided = decide(tx, histories)
                strays = sorted(set(decided) - set(ids))
                if strays:
                    raise ValueError(
                        f"decide returned events for streams it was not given "
                        f"({', '.join(strays)}): list every stream a command writes "
                        "in stream_ids"
                    )

                recorded: dict[str, list[RecordedEvent]] = {}
                for stream_id in ids:
                    new_events = decided.get(stream_id) or ()
                    if not new_events:
                        continue
                    history = histories[stream_id]
                    version = history[-1].version if history else 0
                    recorded[stream_id] = tx.append(stream_id, version, new_events)

                body = answer(histories, recorded)
                if idempotency is not None:
                    idempotency.record(tx, body)
                every = [
                    event for stream_id in ids for event in recorded.get(stream_id, [])
                ]
                return CommandAnswer(body=body, recorded=every)
        except VersionConflict as conflict:
            conflicted = conflict.stream_id
            log.info(
                "stream moved on while deciding; retrying",
                extra={
                    "stream_id": conflict.stream_id,
                    "attempt": attempt,
                    "expected": conflict.expected,
                    "actual": conflict.actual,
                },
            )
    raise CommandConflict(conflicted, attempts)
