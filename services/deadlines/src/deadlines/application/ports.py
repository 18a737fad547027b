"""What the processor needs from the outside world, as small interfaces.

The faust worker provides them over a faust table and the app's consumer and producer
(``deadlines.adapters.faust_ports``); the tests provide them over a dict and lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, runtime_checkable

import orjson

from deadlines.application.sequencer import Progress
from deadlines.domain.engine import CaseState
from sendkit.envelope import OutgoingRecord

STATE_FORMAT = 1


def compact_json(
    value: Any, *, default: Callable[[Any], Any] | None = None, option: int = 0
) -> bytes:
    """``orjson.dumps`` in a bytes object of its own length.

    orjson returns bytes whose allocation is rounded up far past their length (a
    4.5 KB state kept 14.5 KiB; a county's states in the table grew by a factor of
    three), and never shrinks it, so what is kept or queued is copied out once.
    """
    return bytes(memoryview(orjson.dumps(value, default=default, option=option)))


def _plain(value: object) -> object:
    # orjson writes dicts, dataclasses, dates and enums itself; a fact's data may be
    # another kind of mapping.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not stored in a case state")


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case's engine state and how many clock events have been published for it.

    ``published`` numbers the case's output events (their ``ce_sequence``), so each
    output carries a position in its case's clock history, as every stream event does.
    """

    state: CaseState
    published: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "engine": self.state.to_dict(),
            "published": self.published,
        }

    def encode(self) -> bytes:
        """The JSON of ``to_dict`` as bytes, made by orjson straight from the engine's
        dataclasses.

        orjson writes a dataclass as an object of all its fields, so a clock's
        object also has its ``clock_id`` and the wake-up day it keeps in memory;
        ``CaseState.from_dict`` reads the keys it knows and passes over the others
        (a test holds the two forms to each other).
        """
        return compact_json(
            {"format": STATE_FORMAT, "engine": self.state, "published": self.published},
            default=_plain,
        )

    @classmethod
    def decode(cls, raw: bytes) -> StoredCase:
        """A state written by ``encode`` (or as the JSON of ``to_dict``)."""
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(
                "stored case state is not a JSON object: start the processor with a "
                "new DEADLINES_APP_ID to rebuild the table"
            )
        return cls.from_dict(data)

    @staticmethod
    def wake_on_of(raw: bytes) -> date | None:
        """The next wake-up day of an encoded state, without building the state."""
        day = orjson.loads(raw).get("engine", {}).get("wake_on")
        return None if day is None else date.fromisoformat(day)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredCase:
        if data.get("format") != STATE_FORMAT:
            raise ValueError(
                f"stored case state has format {data.get('format')!r}, not "
                f"{STATE_FORMAT}: it was written by another version of the processor; "
                "start it with a new DEADLINES_APP_ID to rebuild the table"
            )
        return cls(
            state=CaseState.from_dict(data["engine"]), published=int(data["published"])
        )


@dataclass(frozen=True, slots=True)
class InputRecord:
    """A consumed record, as the processor reads it (``sendkit.envelope`` can too)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class Publication:
    """A record to publish: a clock event or a dead letter."""

    topic: str
    record: OutgoingRecord


class CaseStates(Protocol):
    """The cases' states and each partition's progress.

    ``save`` and ``save_progress`` are seen by ``load`` at once but become durable
    only when written: ``take`` sets aside what was saved since the last ``take``
    (each key's latest value), and ``write`` of what was taken, which the pipeline
    calls after the outputs they imply are acknowledged by Kafka, returns what to
    await for the writes to be durable (the changelog records' deliveries; nothing
    for a plain mapping). ``flush`` is ``write(take())``.
    """

    def load(self, case_id: str) -> StoredCase | None: ...
    def save(self, case_id: str, case: StoredCase) -> None: ...
    def waking(self, partition: int, today: date) -> Iterable[str]: ...
    def load_progress(self, partition: int) -> Progress | None: ...
    def save_progress(self, progress: Progress) -> None: ...
    def take(self) -> Mapping[bytes, Any]: ...
    def write(self, taken: Mapping[bytes, Any]) -> Sequence[Awaitable[Any]]: ...
    def flush(self) -> Sequence[Awaitable[Any]]: ...
    def forget(self) -> None: ...


class Offsets(Protocol):
    """Offsets read from the broker."""

    async def end_offset(self, topic: str, partition: int) -> int: ...
    async def start_offsets(
        self, topics: Iterable[str], partition: int
    ) -> dict[str, int]: ...


class Publisher(Protocol):
    """Hands a record to the producer; the awaitable resolves once Kafka has it."""

    async def publish(self, publication: Publication) -> Awaitable[Any]: ...


@runtime_checkable
class BatchPublisher(Publisher, Protocol):
    """A ``Publisher`` that also hands many records over at once.

    ``publish_many`` keeps the order of the records bound for each topic partition;
    the awaitable it returns resolves once Kafka has every one of them.
    """

    async def publish_many(
        self, publications: Sequence[Publication]
    ) -> Awaitable[Any]: ...
